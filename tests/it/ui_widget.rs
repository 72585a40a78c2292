//! The report-request widget over plain HTTP (the browser suite, `tests/browser/widget.test.mjs`, drives the
//! whole popup flow in chromium): `[[banks]] allowed_origins` validation with file and line, the script's
//! headers, the login refused for an origin no bank allows, the popup kept able to reach its opener, the
//! preflight answers, and the widget API refusing calls without a widget session.

use reqwest::StatusCode;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, LOCATION, ORIGIN,
};

use crate::config_support::{ConfigDir, SECRET_FILES, VALID, VALID_ENV, assert_problem};
use crate::e2e_support::{person_body, sandbox};

#[test]
fn allowed_origins_must_be_exact_https_origins_or_loopback_http() {
    let bank = "contacts = [\"ops@bank-a.test\"]\n";
    assert!(VALID.contains(bank), "the valid config's first bank");
    let line = VALID[..VALID.find(bank).unwrap()].lines().count() + 2;
    let toml = VALID.replacen(
        bank,
        &format!(
            "{bank}allowed_origins = [\"https://intranet.bank-a.test\", \"http://localhost:3000\", \
             \"http://intranet.bank-a.test\", \"https://intranet.bank-a.test/app\", \"*\"]\n"
        ),
        1,
    );
    let errors = ConfigDir::new(&toml, SECRET_FILES)
        .load(VALID_ENV)
        .expect_err("bad origins refused");
    assert_problem(&errors, line, &["element 2", "must be https://"]);
    assert_problem(
        &errors,
        line,
        &["element 3", "\"https://intranet.bank-a.test\""],
    );
    assert_problem(&errors, line, &["element 4", "not an origin"]);

    let good = VALID.replacen(
        bank,
        &format!("{bank}allowed_origins = [\"https://intranet.bank-a.test\", \"http://127.0.0.1:8082\"]\n"),
        1,
    );
    let config = ConfigDir::new(&good, SECRET_FILES)
        .load(VALID_ENV)
        .expect("valid origins");
    assert_eq!(
        config.banks[0].allowed_origins,
        ["https://intranet.bank-a.test", "http://127.0.0.1:8082"]
    );
}

fn everything() -> creditlink::outbox::ListFilter {
    creditlink::outbox::ListFilter {
        limit: 1000,
        ..Default::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_widget_answers_only_configured_origins() {
    let (sb, _dir) = sandbox(Default::default()).await;
    let d = sb.daemon_url.clone();
    let demo = sb.info["banks"][0]["widget_demo_url"]
        .as_str()
        .expect("widget_demo_url")
        .to_owned();
    let allowed = url::Url::parse(&demo)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert_ne!(
        allowed,
        url::Url::parse(&d).unwrap().origin().ascii_serialization()
    );
    let evil = "https://evil.example";
    let c = client();

    // The demo page embeds the daemon's script; the script may be loaded by any page.
    let page = c.get(&demo).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&format!("{d}/ui/widget.js")) && page.contains("<creditlink-report-request")
    );
    let script = c.get(format!("{d}/ui/widget.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        script.headers()["cross-origin-resource-policy"],
        "cross-origin"
    );

    // The login: refused at once for an origin no bank allows; for an allowed one, off to Salesforce with PKCE,
    // from a page that keeps its opener.
    let refused = c
        .get(format!("{d}/ui/widget/login?origin={evil}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let start = c
        .get(format!("{d}/ui/widget/login"))
        .query(&[("origin", &allowed)])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    assert_eq!(start.headers()["cross-origin-opener-policy"], "unsafe-none");
    let to = start.headers()[LOCATION].to_str().unwrap();
    assert!(
        to.contains("/services/oauth2/authorize?") && to.contains("code_challenge_method=S256")
    );

    // Preflights: precise for an allowed origin, a bare 403 otherwise.
    let preflight = |origin: &str, method: &str, headers: &str| {
        c.request(
            reqwest::Method::OPTIONS,
            format!("{d}/ui/widget/api/report-requests"),
        )
        .header(ORIGIN, origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
    };
    let ok = preflight(
        &allowed,
        "POST",
        "authorization,content-type,idempotency-key,x-csrf-token",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], allowed.as_str());
    assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_METHODS], "POST");
    assert!(
        ok.headers()[ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("x-csrf-token")
    );
    assert!(!ok.headers().contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    for (origin, method, headers) in [
        (evil, "POST", "authorization"),
        (allowed.as_str(), "PUT", "authorization"),
        (allowed.as_str(), "POST", "cookie"),
    ] {
        let r = preflight(origin, method, headers).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{origin} {method} {headers}"
        );
        assert!(!r.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    // Without a widget session: 401 problem documents, CORS-readable only by the allowed origin, nothing stored.
    let before = sb.outbox.list(&everything()).await.unwrap().len();
    for (origin, token) in [
        (allowed.as_str(), None),
        (allowed.as_str(), Some("forged")),
        (evil, Some("forged")),
    ] {
        let mut req = c
            .post(format!("{d}/ui/widget/api/report-requests"))
            .header(ORIGIN, origin)
            .header("x-csrf-token", "x")
            .json(&person_body("LN-WIDGET-FORGED"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
        assert_eq!(
            r.headers()
                .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap()),
            (origin == allowed).then_some(allowed.as_str())
        );
    }
    assert_eq!(sb.outbox.list(&everything()).await.unwrap().len(), before);
    sb.stop().await.unwrap();
}
