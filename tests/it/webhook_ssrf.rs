//! The webhook URL policy table.

use std::net::IpAddr;

use creditlink::bank::{UrlPolicy, UrlPolicyError};
use url::Url;

const STRICT: UrlPolicy = UrlPolicy {
    allow_http: false,
    allow_private: false,
};
const SANDBOX: UrlPolicy = UrlPolicy {
    allow_http: true,
    allow_private: true,
};

fn check(policy: UrlPolicy, url: &str) -> Result<(), UrlPolicyError> {
    policy.check_url(&url.parse::<Url>().expect("url"))
}

#[test]
fn policy_table() {
    // (url, allowed by STRICT, allowed by SANDBOX)
    let table: &[(&str, bool, bool)] = &[
        ("https://hooks.bank.example/credit", true, true),
        ("https://93.184.216.34/hook", true, true),
        ("https://[2606:4700::1111]/hook", true, true),
        ("http://hooks.bank.example/credit", false, true),
        ("ftp://hooks.bank.example/", false, false),
        ("https://user:pass@hooks.bank.example/", false, false),
        ("https://token@hooks.bank.example/", false, false),
        ("https://127.0.0.1/", false, true),
        ("https://127.8.9.10/", false, true),
        ("https://[::1]/", false, true),
        ("https://10.1.2.3/", false, true),
        ("https://172.16.0.1/", false, true),
        ("https://192.168.1.1/", false, true),
        ("https://100.64.0.1/", false, true),
        ("https://169.254.10.10/", false, true),
        ("https://[fe80::1]/", false, true),
        ("https://[fc00::1]/", false, true),
        ("https://[fd12:3456::1]/", false, true),
        ("https://224.0.0.1/", false, true),
        ("https://[ff02::1]/", false, true),
        ("https://0.0.0.0/", false, true),
        ("https://[::]/", false, true),
        ("https://255.255.255.255/", false, true),
        ("https://[::ffff:127.0.0.1]/", false, true),
        ("https://[::ffff:10.0.0.1]/", false, true),
        ("https://[64:ff9b::a00:1]/", false, true),
        // IPv4 carried inside IPv6 by transition mechanisms is judged by that IPv4 address.
        ("https://[2002:7f00:1::]/", false, true), // 6to4 → 127.0.0.1
        ("https://[2002:a00:1::1]/", false, true), // 6to4 → 10.0.0.1
        ("https://[2002:5db8:d822::1]/", true, true), // 6to4 → 93.184.216.34
        (
            "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            false,
            true,
        ), // Teredo client → 127.0.0.1
        ("https://[2001:0:a00:1::1]/", false, true), // Teredo server → 10.0.0.1
        ("https://[64:ff9b:1::7f00:1]/", false, true), // NAT64 local-use /96 → 127.0.0.1
        ("https://[64:ff9b:1:7f00:0:100::]/", false, true), // NAT64 local-use /48 → 127.0.0.1
        ("https://[::127.0.0.1]/", false, true),   // IPv4-compatible
        ("https://[::8.8.8.8]/", false, true),     // IPv4-compatible: deprecated, never public
        ("https://[fe80::5efe:a00:1]/", false, true), // ISATAP
        ("https://[2606:4700::5efe:a00:1]/", false, true), // ISATAP id on a public prefix → 10.0.0.1
        ("https://192.88.99.1/", false, true),             // 6to4 relay anycast
        ("https://[2002:a9fe:a9fe::]/", false, false),     // 6to4 → metadata
        ("https://[64:ff9b::a9fe:a9fe]/", false, false),   // NAT64 → metadata
        (
            "https://[2001:0:4136:e378:8000:63bf:5601:5601]/",
            false,
            false,
        ), // Teredo client → metadata
        ("https://[::169.254.169.254]/", false, false),    // IPv4-compatible → metadata
        // Metadata services are refused even in the sandbox.
        ("https://169.254.169.254/latest/meta-data/", false, false),
        ("http://169.254.169.254/", false, false),
        ("https://[::ffff:169.254.169.254]/", false, false),
        ("https://[fd00:ec2::254]/", false, false),
        ("https://100.100.100.200/", false, false),
    ];
    for &(url, strict, sandbox) in table {
        assert_eq!(
            check(STRICT, url).is_ok(),
            strict,
            "strict policy, {url}: {:?}",
            check(STRICT, url)
        );
        assert_eq!(
            check(SANDBOX, url).is_ok(),
            sandbox,
            "sandbox policy, {url}: {:?}",
            check(SANDBOX, url)
        );
    }
}

#[test]
fn refusals_name_the_reason() {
    assert!(
        matches!(check(STRICT, "http://hooks.bank.example/"), Err(UrlPolicyError::Scheme(s)) if s == "http")
    );
    assert!(matches!(
        check(STRICT, "https://u:p@hooks.bank.example/"),
        Err(UrlPolicyError::Credentials)
    ));
    match check(STRICT, "https://169.254.169.254/") {
        Err(UrlPolicyError::Forbidden { addr, class }) => {
            assert_eq!(addr, "169.254.169.254".parse::<IpAddr>().expect("ip"));
            assert_eq!(class, "cloud metadata");
        }
        other => panic!("{other:?}"),
    }
    match check(STRICT, "https://[fc00::1]/") {
        Err(UrlPolicyError::Forbidden { class, .. }) => assert_eq!(class, "unique-local"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn host_names_are_checked_by_what_they_resolve_to() {
    let policy = UrlPolicy {
        allow_http: true,
        allow_private: false,
    };
    let url: Url = "http://localhost:8080/hooks".parse().expect("url");
    // `localhost` passes the syntax check but resolves to loopback.
    assert!(policy.check_url(&url).is_ok());
    match policy.resolve(&url).await {
        Err(UrlPolicyError::Forbidden { class, .. }) => assert_eq!(class, "loopback"),
        other => panic!("{other:?}"),
    }
    let addrs = SANDBOX
        .resolve(&url)
        .await
        .expect("sandbox allows localhost");
    assert!(
        addrs
            .iter()
            .all(|a| a.port() == 8080 && a.ip().is_loopback())
    );

    let missing: Url = "https://no-such-host.invalid/".parse().expect("url");
    let err = STRICT.resolve(&missing).await.expect_err("unresolvable");
    assert!(
        err.is_retryable(),
        "a DNS failure may be transient: {err:?}"
    );
}

/// The resolver the sender's HTTP client uses applies the policy to the addresses it hands out, so a name
/// that rebinds to a private address between the pre-check and the connection is still refused.
#[tokio::test]
async fn the_sender_resolver_refuses_forbidden_answers() {
    use reqwest::dns::Resolve as _;
    let name = |s: &str| s.parse::<reqwest::dns::Name>().expect("name");
    let strict = creditlink::bank::PolicyResolver::new(STRICT);
    let err = match strict.resolve(name("localhost")).await {
        Ok(addrs) => panic!(
            "localhost resolved through the strict policy: {:?}",
            addrs.collect::<Vec<_>>()
        ),
        Err(err) => err,
    };
    assert!(err.to_string().contains("loopback"), "{err}");
    let sandbox = creditlink::bank::PolicyResolver::new(SANDBOX);
    let addrs: Vec<_> = sandbox
        .resolve(name("localhost"))
        .await
        .expect("sandbox")
        .collect();
    assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
}
