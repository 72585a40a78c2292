//! The dashboard's login and its refusals over plain HTTP (the browser suite, `tests/browser/`, covers the
//! same in a real browser): the authorization-code + PKCE round trip through the simulator's login page, the
//! session cookie's attributes, tenancy, CSRF and same-origin checks, logout revoking the session, and the
//! simulator's code grant refusing a wrong verifier and a second use.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::e2e_support::{BANK_B, http, person_body, sandbox, sandbox_banks};

/// A client that does not follow redirects: each hop of the login is checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()[LOCATION].to_str().expect("ascii").to_owned()
}

fn cookie_value(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            let value = c[name.len() + 1..].split(';').next().unwrap_or_default();
            (value.to_owned(), c.to_owned())
        })
}

/// Logs in as `username`; returns the session cookie header value.
async fn login(daemon: &str, username: &str, password: &str) -> String {
    let c = client();
    let start = c.get(format!("{daemon}/ui/login")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let (state_cookie, _) = cookie_value(&start, "__Host-creditlink-login").expect("login cookie");
    let authorize = url::Url::parse(&location(&start)).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    let page = c.get(authorize.as_str()).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"username\"") && html.contains("id=\"Login\""));
    let mut form: Vec<(String, String)> = q.into_iter().collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let mut post_url = authorize.clone();
    post_url.set_query(None);
    let back = c.post(post_url).form(&form).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    let callback = location(&back);
    assert!(
        callback.starts_with(&format!("{daemon}/ui/callback?code=")),
        "{callback}"
    );
    let done = c
        .get(&callback)
        .header(COOKIE, format!("__Host-creditlink-login={state_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let (session, attributes) = cookie_value(&done, "__Host-creditlink-session").expect("session");
    for a in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(a), "{attributes} lacks {a}");
    }
    assert!(!attributes.contains("Domain"));
    // The same callback again (a replayed code and state) is refused.
    let again = c
        .get(&callback)
        .header(COOKIE, format!("__Host-creditlink-login={state_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    format!("__Host-creditlink-session={session}")
}

#[tokio::test]
async fn a_rep_logs_in_sees_only_their_bank_and_state_changes_need_csrf_and_origin() {
    let (sb, _dir) = sandbox(creditlink::sim::SimOptions::default()).await;
    let (a, b) = sandbox_banks(&sb).await;
    let mine = a
        .post()
        .json(&person_body("UI-MINE-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 202);
    let theirs = b
        .post()
        .json(&b.person_body("UI-THEIRS-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 202);
    let theirs: Value = theirs.json().await.unwrap();
    let d = &sb.daemon_url;
    let users = sb.info["ui_users"].as_array().expect("ui_users");
    let rep = users
        .iter()
        .find(|u| u["bank"] == a.account_id.as_str())
        .expect("a rep of bank A");
    assert_eq!(rep["role"], "bank");
    assert!(
        users
            .iter()
            .any(|u| u["role"] == "admin" && u.get("bank").is_none())
    );
    assert!(users.iter().any(|u| u["bank"] == BANK_B));

    let session = login(
        d,
        rep["username"].as_str().unwrap(),
        rep["password"].as_str().unwrap(),
    )
    .await;
    let c = client();
    let page = c
        .get(format!("{d}/ui/requests"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("UI-MINE-1"));
    assert!(!html.contains("UI-THEIRS-1"));
    let theirs_id = theirs["id"].as_str().unwrap();
    for suffix in ["", "/report"] {
        let r = c
            .get(format!("{d}/ui/requests/{theirs_id}{suffix}"))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "bank B's request{suffix}");
    }
    let csv = c
        .get(format!("{d}/ui/requests.csv"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(csv.starts_with(b"\xef\xbb\xbfid,bank,"));
    let csv = String::from_utf8_lossy(&csv);
    assert!(csv.contains("UI-MINE-1") && !csv.contains("UI-THEIRS-1"));

    // The CSRF token is on the page; without it, or from another origin, logout is refused.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf token in the page")
        .to_owned();
    let logout = |origin: &str, token: &str| {
        c.post(format!("{d}/ui/logout"))
            .header(COOKIE, &session)
            .header("origin", origin)
            .form(&[("csrf", token)])
            .send()
    };
    assert_eq!(logout(d, "wrong").await.unwrap().status(), 403);
    assert_eq!(
        logout("http://evil.example", &csrf).await.unwrap().status(),
        403
    );
    let no_origin = c
        .post(format!("{d}/ui/logout"))
        .header(COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403, "neither Origin nor Sec-Fetch-Site");
    let out = logout(d, &csrf).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = c
        .get(format!("{d}/ui/requests"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session is gone");
    sb.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulator_refuses_a_wrong_verifier_a_reused_code_and_a_foreign_redirect_uri() {
    let (sb, _dir) = sandbox(creditlink::sim::SimOptions::default()).await;
    let sf = sb.sim.base_url().to_owned();
    let redirect = format!("{}/ui/callback", sb.daemon_url);
    let verifier = "a".repeat(43);
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier))
    };
    let c = client();
    let foreign = c
        .get(format!("{sf}/services/oauth2/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "3MVG9creditlink.sandbox.consumer"),
            ("redirect_uri", "http://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400, "an error page, never a redirect");
    let code = || async {
        let r = c
            .post(format!("{sf}/services/oauth2/authorize"))
            .form(&[
                ("response_type", "code"),
                ("client_id", "3MVG9creditlink.sandbox.consumer"),
                ("redirect_uri", redirect.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", "s1"),
                ("username", "rep@demobanka.sim"),
                ("password", "demo-bank-a-password"),
            ])
            .send()
            .await
            .unwrap();
        let to = url::Url::parse(&location(&r)).unwrap();
        let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "s1");
        q["code"].clone()
    };
    let redeem = |code: String, verifier: String| {
        http()
            .post(format!("{sf}/services/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "3MVG9creditlink.sandbox.consumer"),
                ("redirect_uri", redirect.as_str()),
                ("code", code.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
    };
    let wrong = redeem(code().await, "b".repeat(43)).await.unwrap();
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let good = code().await;
    let ok = redeem(good.clone(), verifier.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let token: Value = ok.json().await.unwrap();
    assert!(token["access_token"].as_str().is_some());
    let reused = redeem(good, verifier).await.unwrap();
    assert_eq!(reused.status(), 400, "a code is single-use");
    sb.stop().await.unwrap();
}
