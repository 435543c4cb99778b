//! The console's access rules and page contents over plain HTTP (no browser needed): the login
//! sets a Secure, HttpOnly, SameSite=Strict cookie and nothing else opens a page; a virtual key
//! reaches only the playground; writes need the console's header; pages and assets name no
//! other origin; the console's explain is `/v1/explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const MASTER: &str = "sk-console-http-master";

async fn stack() -> (switchyard_sim::SimHandle, common::Serve, tempfile::TempDir) {
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    let data = tempfile::tempdir().unwrap();
    let serve = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            data_dir: Some(data.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    (sim, serve, data)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `key`; returns the `Cookie` header to send, or the failed response's status.
async fn login(serve: &common::Serve, key: &str) -> Result<String, StatusCode> {
    let resp = no_redirects()
        .post(serve.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .await
        .unwrap();
    let Some(cookie) = resp.headers().get(SET_COOKIE) else {
        return Err(resp.status());
    };
    let cookie = cookie.to_str().unwrap().to_owned();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(
        !resp.headers()[LOCATION].to_str().unwrap().contains(key),
        "the key is never in a URL"
    );
    Ok(cookie.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn only_a_good_key_opens_the_console_and_virtual_keys_only_the_playground() {
    let (_sim, serve, _data) = stack().await;
    let http = no_redirects();
    let page = http.get(serve.url("/ui/fleet")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/ui/login");
    assert_eq!(
        login(&serve, "sk-wrong").await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    let master = login(&serve, MASTER).await.unwrap();
    let fleet = http
        .get(serve.url("/ui/fleet"))
        .header(COOKIE, &master)
        .send()
        .await
        .unwrap();
    assert_eq!(fleet.status(), 200);
    assert!(
        fleet
            .text()
            .await
            .unwrap()
            .contains("local-large/mistral:7b")
    );

    let created: Value = http
        .post(serve.url("/key/generate"))
        .bearer_auth(MASTER)
        .json(&json!({"models": ["local-small"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let virtual_key = login(&serve, created["key"].as_str().unwrap())
        .await
        .unwrap();
    for path in [
        "/ui/keys",
        "/ui/fleet",
        "/ui/requests",
        "/ui/usage",
        "/ui/api/key/list",
        "/ui/api/v1/usage/summary",
    ] {
        let r = http
            .get(serve.url(path))
            .header(COOKIE, &virtual_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let pg = http
        .get(serve.url("/ui/playground"))
        .header(COOKIE, &virtual_key)
        .send()
        .await
        .unwrap();
    assert_eq!(pg.status(), 200);
    let html = pg.text().await.unwrap();
    assert!(html.contains("<option>local-small</option>"));
    assert!(
        !html.contains("<option>local-large</option>"),
        "only the key's groups are offered"
    );
}

#[tokio::test]
async fn console_writes_need_its_header_and_its_explain_is_the_api_explain() {
    let (_sim, serve, _data) = stack().await;
    let http = no_redirects();
    let cookie = login(&serve, MASTER).await.unwrap();
    let body = json!({"model": "local-small", "messages": [{"role": "user", "content": common::words(3000)}]});
    let bare = http
        .post(serve.url("/ui/api/v1/explain"))
        .header(COOKIE, &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bare.status(),
        StatusCode::FORBIDDEN,
        "a cross-site form cannot write"
    );
    let ui: Value = http
        .post(serve.url("/ui/api/v1/explain"))
        .header(COOKIE, &cookie)
        .header("x-switchyard-ui", "1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api: Value = http
        .post(serve.url("/v1/explain"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui, api);
    // The cookie does not open the API itself: clients there still send the key.
    let api_with_cookie = http
        .post(serve.url("/v1/explain"))
        .header(COOKIE, &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(api_with_cookie.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_and_assets_name_no_other_origin() {
    let (_sim, serve, _data) = stack().await;
    let http = no_redirects();
    let cookie = login(&serve, MASTER).await.unwrap();
    let mut total = 0;
    for path in [
        "/ui/login",
        "/ui/fleet",
        "/ui/requests",
        "/ui/usage",
        "/ui/playground",
        "/ui/keys",
        "/ui/assets/console.css",
        "/ui/assets/console.js",
    ] {
        let r = http
            .get(serve.url(path))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        let text = r.text().await.unwrap();
        total += text.len();
        for needle in ["http://", "https://", "src=\"//", "href=\"//", "url("] {
            // The SVG namespace is an identifier, not a request.
            let hits = text
                .matches(needle)
                .count()
                .saturating_sub(text.matches("http://www.w3.org/2000/svg").count());
            assert_eq!(hits, 0, "{path} refers to another origin ({needle})");
        }
    }
    eprintln!("console pages and assets: {total} bytes in all");
}
