//! The console at `/ui` in a real headless Chromium (Debian's `chromium` and `chromedriver`),
//! against a live gateway over the simulator, all on ephemeral ports. Each test skips, saying
//! so, when Chromium or chromedriver is not installed.
//!
//! Chromium is driven over the W3C WebDriver protocol with the test's own HTTP client
//! ([`webdriver`]): a handful of calls, no browser-automation crate to build.
//!
//! Screenshots of every page at desktop and phone widths go to `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimHandle};

const MASTER: &str = "sk-console-master-key";
/// The fleet page's refresh interval (`ui::fleet::REFRESH_MS`).
const FLEET_REFRESH: Duration = Duration::from_millis(2000);

mod webdriver {
    //! The few W3C WebDriver calls these tests make, over reqwest.
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::process::Stdio;

    use serde_json::{Value, json};

    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

    fn find_exe(env: &str, names: &[&str]) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        names.iter().map(PathBuf::from).find(|p| p.is_file())
    }

    /// Skips the test, saying why, or fails it when `SWITCHYARD_REQUIRE_BROWSER` is set (CI,
    /// where a missing browser is a broken install, not a reason to pass).
    fn skip(why: &str) -> Option<Browser> {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_BROWSER").is_none(),
            "SWITCHYARD_REQUIRE_BROWSER is set but {why}"
        );
        eprintln!("SKIPPED: {why}");
        None
    }

    /// chromedriver plus one Chromium session; both end when dropped.
    pub struct Browser {
        _driver: tokio::process::Child,
        base: String,
        http: reqwest::Client,
        _profile: tempfile::TempDir,
    }

    impl Browser {
        /// `None` (after saying why) when Chromium or chromedriver is missing.
        pub async fn start() -> Option<Browser> {
            let Some(driver) = find_exe(
                "SWITCHYARD_CHROMEDRIVER",
                &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
            ) else {
                return skip(
                    "chromedriver not found (apt-get install chromium chromium-driver, or set SWITCHYARD_CHROMEDRIVER)",
                );
            };
            let Some(chromium) = find_exe(
                "SWITCHYARD_CHROMIUM",
                &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
            ) else {
                return skip(
                    "chromium not found (apt-get install chromium chromium-driver, or set SWITCHYARD_CHROMIUM)",
                );
            };
            // A free port: bind port 0, read it, let chromedriver take it.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = tokio::process::Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let http = reqwest::Client::new();
            super::common::eventually(30, "chromedriver is ready", || {
                let r = http.get(format!("{base}/status")).send();
                async move {
                    match r.await {
                        Ok(r) => r
                            .json::<Value>()
                            .await
                            .map(|v| v["value"]["ready"] == true)
                            .unwrap_or(false),
                        Err(_) => false,
                    }
                }
            })
            .await;
            let profile = tempfile::tempdir().unwrap();
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            }}});
            let v: Value = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = v["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
                .to_owned();
            Some(Browser {
                _driver: child,
                base: format!("{base}/session/{id}"),
                http,
                _profile: profile,
            })
        }

        async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
            let mut req = self.http.request(method, format!("{}{path}", self.base));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            if v["value"].get("error").is_some() {
                panic!("WebDriver {path}: {}", v["value"]);
            }
            v["value"].clone()
        }

        pub async fn goto(&self, url: &str) {
            self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
                .await;
        }

        /// Runs `script` (a function body) in the page and returns its value.
        pub async fn js(&self, script: &str, args: Value) -> Value {
            self.call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": script, "args": args})),
            )
            .await
        }

        pub async fn url(&self) -> String {
            self.call(reqwest::Method::GET, "/url", None)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        async fn element(&self, css: &str) -> String {
            let v = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            v[ELEMENT].as_str().unwrap().to_owned()
        }

        /// Types `text` into the element `css` selects, as a person would.
        pub async fn type_into(&self, css: &str, text: &str) {
            let e = self.element(css).await;
            self.call(
                reqwest::Method::POST,
                &format!("/element/{e}/clear"),
                Some(json!({})),
            )
            .await;
            self.call(
                reqwest::Method::POST,
                &format!("/element/{e}/value"),
                Some(json!({"text": text})),
            )
            .await;
        }

        pub async fn click(&self, css: &str) {
            let e = self.element(css).await;
            self.call(
                reqwest::Method::POST,
                &format!("/element/{e}/click"),
                Some(json!({})),
            )
            .await;
        }

        /// The page's `document.body.innerText`.
        pub async fn text(&self) -> String {
            self.js("return document.body.innerText;", json!([]))
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        pub async fn resize(&self, width: u32, height: u32) {
            self.call(
                reqwest::Method::POST,
                "/window/rect",
                Some(json!({"width": width, "height": height})),
            )
            .await;
        }

        /// Writes a PNG of the viewport to `target/ui-screenshots/NAME.png`.
        pub async fn screenshot(&self, name: &str) {
            let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
            let png = super::base64_decode(b64.as_str().unwrap());
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|c| *c != b'=').collect();
        let mut n = 0u32;
        for (i, c) in data.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A simulator, and `serve` over it with a master key, a SQLite ledger and a prober every
/// second.
struct Stack {
    sim: SimHandle,
    serve: common::Serve,
    _data: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let sim = common::reference_ollama().await;
        let mut text = common::seed_config_text(&sim.base_url());
        text.push_str(&format!(
            "general_settings:\n  master_key: {MASTER}\nprober:\n  interval: 1\n"
        ));
        let data = tempfile::tempdir().unwrap();
        let serve = common::serve_with(
            common::config_from(&text),
            switchyard::ServeOptions {
                data_dir: Some(data.path().to_path_buf()),
                embedded_prober: Some(true),
                ..Default::default()
            },
        )
        .await;
        Stack {
            sim,
            serve,
            _data: data,
        }
    }

    fn url(&self, path: &str) -> String {
        self.serve.url(path)
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = common::client()
            .request(method, self.url(path))
            .bearer_auth(MASTER);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// A chat request through the API; returns its request id.
    async fn chat(&self, model: &str, words: usize) -> String {
        let resp = common::client()
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .json(&common::chat_body(model, &common::words(words), false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.headers()["x-request-id"].to_str().unwrap().to_owned()
    }

    /// Waits until the ledger holds `n` requests.
    async fn ledger_has(&self, n: u64) {
        common::eventually(20, "the ledger records the requests", || async move {
            let v = self
                .api(reqwest::Method::GET, "/v1/usage/summary", None)
                .await;
            v["requests"].as_u64().unwrap_or(0) >= n
        })
        .await;
    }
}

async fn login(b: &webdriver::Browser, stack: &Stack, key: &str) {
    b.goto(&stack.url("/ui/login")).await;
    b.type_into("#key", key).await;
    b.click("form button[type=submit]").await;
    // A click does not wait for the navigation it starts: a `goto` right after it could cancel the
    // form's POST before the cookie is set. Wait until the login has answered: a page away from
    // the form, or the form again with its error.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let away = !b.url().await.ends_with("/ui/login");
        if away || b.text().await.contains("not accepted") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the login form did not answer within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the page until `check` holds on its text.
async fn page_shows(b: &webdriver::Browser, secs: u64, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = b.text().await;
        if check(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\npage:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_wrong_key_fails() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    // No session: pages send a person to the login form.
    b.goto(&stack.url("/ui/fleet")).await;
    assert!(b.url().await.ends_with("/ui/login"));
    login(&b, &stack, "sk-not-the-key").await;
    page_shows(&b, 10, "the login error", |t| {
        t.contains("That key was not accepted")
    })
    .await;
    b.goto(&stack.url("/ui/fleet")).await;
    assert!(
        b.url().await.ends_with("/ui/login"),
        "a failed login opens nothing"
    );
    // The key never appears in a URL, and the cookie is out of the page's reach.
    login(&b, &stack, MASTER).await;
    page_shows(&b, 10, "the fleet page", |t| {
        t.contains("local-small/llama3.2:1b")
    })
    .await;
    assert!(!b.url().await.contains(MASTER));
    let cookies = b.js("return document.cookie;", json!([])).await;
    assert_eq!(cookies, "", "the session cookie is HttpOnly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_shows_a_deployment_going_down_and_back_within_one_refresh() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    login(&b, &stack, MASTER).await;
    let dep = "local-small/llama3.2:1b";
    let row_health = format!(
        "const r = document.querySelector('tr[data-deployment=\"{dep}\"] td.health'); return r ? r.innerText.trim() : '';"
    );
    for (action, want) in [("stop", "down"), ("start", "up")] {
        if action == "stop" {
            stack.sim.stop_model("llama3.2:1b");
        } else {
            stack.sim.start_model("llama3.2:1b");
        }
        // When the API says so…
        common::eventually(30, &format!("the API reports {dep} {want}"), || async {
            let v = stack.api(reqwest::Method::GET, "/v1/models", None).await;
            v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["deployments"].as_array().cloned().unwrap_or_default())
                .any(|d| d["id"] == dep && d["health"] == want)
        })
        .await;
        let since = Instant::now();
        // …the open page shows it by its next refresh.
        loop {
            let shown = b.js(&row_health, json!([])).await;
            if shown == want {
                break;
            }
            assert!(
                since.elapsed() < FLEET_REFRESH + Duration::from_millis(1500),
                "the fleet page still shows {shown} for {dep} {:?} after the API said {want}",
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_appears_on_the_requests_page_with_its_attempts() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    // The small model fails once: the request takes two attempts.
    stack.sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "injected for the console test".into(),
        },
        Some(1),
    ));
    let id = stack.chat("local-small", 20).await;
    stack.ledger_has(1).await;
    login(&b, &stack, MASTER).await;
    b.goto(&stack.url("/ui/requests")).await;
    let summary = format!("details[data-request=\"{id}\"] summary");
    page_shows(&b, 10, "the request", |t| {
        t.contains("2 attempts, 1 failed")
    })
    .await;
    b.click(&summary).await;
    let attempts = b
        .js(
            &format!(
                "return Array.from(document.querySelectorAll('details[data-request=\"{id}\"] tbody tr')).map(r => r.innerText);"
            ),
            json!([]),
        )
        .await;
    let rows: Vec<String> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("local-small/llama3.2:1b") && rows[0].contains("server_error"),
        "{rows:?}"
    );
    assert!(
        rows[0].contains("injected for the console test"),
        "{rows:?}"
    );
    assert!(rows[1].contains("ok"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_chart_shares_match_the_usage_summary() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    for _ in 0..3 {
        stack.chat("local-small", 10).await;
    }
    stack.chat("local-large", 10).await;
    // Too long for the small model's window: served by the medium one.
    stack.chat("local-small", 3000).await;
    stack.ledger_has(5).await;
    let summary = stack
        .api(reqwest::Method::GET, "/v1/usage/summary", None)
        .await;
    login(&b, &stack, MASTER).await;
    b.goto(&stack.url("/ui/usage")).await;
    let parts = b
        .js(
            "return Array.from(document.querySelectorAll('#share-requests g.part')).map(g => [g.dataset.model, Number(g.dataset.share)]);",
            json!([]),
        )
        .await;
    let parts = parts.as_array().unwrap();
    let models = summary["models"].as_array().unwrap();
    assert_eq!(parts.len(), models.len(), "{parts:?} vs {summary}");
    assert_eq!(models.len(), 3, "{summary}");
    for m in models {
        let part = parts
            .iter()
            .find(|p| p[0] == m["model"])
            .unwrap_or_else(|| panic!("no bar part for {}", m["model"]));
        let drawn = part[1].as_f64().unwrap();
        let want = m["share_of_requests"].as_f64().unwrap();
        assert!(
            (drawn - want).abs() < 1e-4,
            "{}: drawn {drawn}, summary {want}",
            m["model"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_plan_matches_explain() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    login(&b, &stack, MASTER).await;
    b.goto(&stack.url("/ui/playground")).await;
    // A prompt too long for the small model: the plan shows it excluded and why.
    let prompt = common::words(2500);
    let messages = json!([{"role": "user", "content": prompt}]);
    b.js(
        "document.getElementById('pg-messages').value = arguments[0];",
        json!([messages.to_string()]),
    )
    .await;
    b.click("#pg-plan").await;
    let mut rows = Value::Null;
    for _ in 0..100 {
        rows = b
            .js(
                "return Array.from(document.querySelectorAll('#plan tbody tr')).map(r => [r.dataset.deployment, r.dataset.verdict, r.cells[0].innerText, r.cells[6].innerText]);",
                json!([]),
            )
            .await;
        if !rows.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let explain = stack
        .api(
            reqwest::Method::POST,
            "/v1/explain",
            Some(json!({"model": "local-small", "max_tokens": 64, "messages": messages})),
        )
        .await;
    let want: Vec<Value> = explain["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            json!([
                d["deployment"],
                d["verdict"],
                d["rank"]
                    .as_u64()
                    .map_or("—".to_string(), |r| r.to_string()),
                d["reason"]
            ])
        })
        .collect();
    assert_eq!(rows, Value::Array(want), "explain: {explain}");
    assert!(
        explain["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["verdict"] == "excluded"),
        "{explain}"
    );
    // Send it and watch the answer stream in, with the deployment that served it.
    b.click("#pg-send").await;
    page_shows(&b, 20, "the streamed answer", |t| {
        t.contains("Served by local-medium/")
    })
    .await;
    let answer = b
        .js(
            "return document.getElementById('answer').innerText;",
            json!([]),
        )
        .await;
    assert!(!answer.as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pages_are_not_reachable_with_a_virtual_key() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    let created = stack
        .api(
            reqwest::Method::POST,
            "/key/generate",
            Some(json!({"key_alias": "console-test", "models": ["local-small"]})),
        )
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    login(&b, &stack, &key).await;
    page_shows(&b, 10, "the playground", |t| t.contains("Show the plan")).await;
    for page in ["/ui/keys", "/ui/fleet", "/ui/usage", "/ui/requests"] {
        b.goto(&stack.url(page)).await;
        let text = b.text().await;
        assert!(
            text.contains("Only the master key may open this page"),
            "{page}: {text}"
        );
        assert!(!text.contains("console-test"), "{page} shows the key list");
    }
    let status = b
        .js(
            "return fetch('/ui/api/key/list').then(r => r.status);",
            json!([]),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_every_page_at_desktop_and_phone_widths() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    stack
        .api(
            reqwest::Method::POST,
            "/key/generate",
            Some(json!({"key_alias": "laptop", "models": ["local-small"], "rpm_limit": 60})),
        )
        .await;
    stack.sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "injected".into(),
        },
        Some(1),
    ));
    for (model, words) in [
        ("local-small", 10),
        ("local-small", 40),
        ("local-large", 20),
        ("local-small", 3000),
    ] {
        stack.chat(model, words).await;
    }
    stack.ledger_has(4).await;
    b.goto(&stack.url("/ui/login")).await;
    for (width, height, kind) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        b.resize(width, height).await;
        b.goto(&stack.url("/ui/login")).await;
        b.screenshot(&format!("login-{kind}")).await;
    }
    login(&b, &stack, MASTER).await;
    page_shows(&b, 10, "the fleet page", |t| t.contains("Fleet")).await;
    for (width, height, kind) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        b.resize(width, height).await;
        for page in ["fleet", "requests", "usage", "keys", "playground"] {
            b.goto(&stack.url(&format!("/ui/{page}"))).await;
            if page == "requests" {
                b.click("details.req summary").await;
            }
            if page == "playground" {
                b.click("#pg-plan").await;
                page_shows(&b, 10, "the plan", |t| t.contains("candidate")).await;
            }
            b.screenshot(&format!("{page}-{kind}")).await;
        }
    }
    // The dark theme, once.
    b.resize(1280, 900).await;
    b.goto(&stack.url("/ui/usage")).await;
    b.click("#theme").await;
    b.screenshot("usage-desktop-dark").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_page_creates_a_working_key_and_deletes_it() {
    let Some(b) = webdriver::Browser::start().await else {
        return;
    };
    let stack = Stack::start().await;
    login(&b, &stack, MASTER).await;
    b.goto(&stack.url("/ui/keys")).await;
    b.type_into("#k-alias", "from-the-console").await;
    b.click("input[name=models][value=local-small]").await;
    b.type_into("#k-rpm", "30").await;
    b.click("#key-create button[type=submit]").await;
    page_shows(&b, 10, "the new key", |t| t.contains("shown once")).await;
    let key = b
        .js(
            "return document.getElementById('new-key').innerText;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    // The key works on the API, for its group only.
    let ok = common::client()
        .post(stack.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let other = common::client()
        .post(stack.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&common::chat_body("local-large", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    // The page reloads with the key listed; delete it there.
    page_shows(&b, 15, "the key in the list", |t| {
        t.contains("from-the-console")
    })
    .await;
    b.js("window.confirm = () => true;", json!([])).await;
    b.click("button[data-delete]").await;
    common::eventually(10, "the key is deleted", || {
        let key = key.clone();
        let url = stack.url("/v1/models");
        async move {
            common::client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .map(|r| r.status() == 401)
                .unwrap_or(false)
        }
    })
    .await;
}
