//! Reload without restart, in `serve` and in split mode: a stream started before the reload
//! finishes on the deployment it started on, the next request uses the new config, an invalid
//! file changes nothing and is reported (admin route and metric), and the triggers (a file
//! change, a Kubernetes-style symlink swap, SIGHUP, `POST /admin/reload`) all work. Readiness is
//! the admin route's generation, polled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimHandle};
use tokio::sync::oneshot;

const KEY: &str = "sk-reload-test";

/// `chat` served by deployment `chat_id` (`model` on the simulator), plus a deployment that
/// every version keeps (`kept`, group `spare`).
fn config_text(sim: &SimHandle, chat_id: &str, model: &str, extra: &str) -> String {
    format!(
        r#"
general_settings: {{master_key: {KEY}}}
model_list:
  - model_name: chat
    litellm_params: {{model: "ollama/{model}", api_base: "{b}", max_tokens: 8192}}
    model_info: {{id: {chat_id}}}
  - model_name: spare
    litellm_params: {{model: "ollama/llama3.1:8b", api_base: "{b}", max_tokens: 8192}}
    model_info: {{id: kept}}
routing: {{idle_timeout: 30}}
{extra}
"#,
        b = sim.base_url()
    )
}

fn v1(sim: &SimHandle) -> String {
    config_text(sim, "old", "llama3.2:1b", "")
}

fn v2(sim: &SimHandle) -> String {
    config_text(sim, "new", "mistral:7b", "")
}

/// Parses, but fails validation: a deployment without a model.
const INVALID: &str =
    "model_list:\n  - model_name: broken\n    litellm_params: {api_base: \"http://127.0.0.1:1\"}\n";

struct Running {
    addr: SocketAddr,
    reloader: Arc<switchyard::Reloader>,
    _stop: oneshot::Sender<()>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

async fn serve(path: &Path) -> Running {
    let config = switchyard::load_config(path.to_str().unwrap()).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let bound = switchyard::serve(
        config,
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            embedded_prober: Some(false),
            ..Default::default()
        },
        async {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    tokio::spawn(bound.serve);
    Running {
        addr: bound.addr,
        reloader: bound.reloader,
        _stop: tx,
    }
}

/// `serve` on [`v1`] written to a new directory's `config.yaml`, the file watched.
async fn serve_v1_watched() -> (SimHandle, tempfile::TempDir, std::path::PathBuf, Running) {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, v1(&sim)).unwrap();
    let sy = serve(&path).await;
    sy.reloader.watch_file(&path).unwrap();
    (sim, dir, path, sy)
}

async fn status(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_generation(http: &reqwest::Client, base: &str, at_least: u64, router: bool) {
    common::eventually(30, &format!("generation {at_least}"), || async {
        let s = status(http, base).await;
        let own = s["generation"].as_u64().unwrap_or(0) >= at_least;
        let theirs = !router || s["router"]["generation"].as_u64().unwrap_or(0) >= at_least;
        own && theirs
    })
    .await;
}

/// A streamed chat whose first content chunk has arrived; the rest is read by [`Open::finish`].
struct Open {
    deployment: String,
    body: String,
    rest: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
}

async fn open_stream(http: &reqwest::Client, base: &str) -> Open {
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({
            "model": "chat",
            "messages": [{"role": "user", "content": "tell me a story [[tokens=12]]"}],
            "stream": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deployment = resp.headers()["x-switchyard-deployment"]
        .to_str()
        .unwrap()
        .to_string();
    let mut rest = resp.bytes_stream().boxed();
    let mut body = String::new();
    while !common::sse_text(&common::sse_payloads(&body)).contains(char::is_alphabetic) {
        let chunk = rest.next().await.expect("the stream ended early").unwrap();
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    Open {
        deployment,
        body,
        rest,
    }
}

impl Open {
    async fn finish(mut self) -> String {
        while let Some(chunk) = self.rest.next().await {
            self.body
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        self.body
    }
}

/// The deployment that served one unstreamed request to `chat`.
async fn served_by(http: &reqwest::Client, base: &str) -> String {
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&common::chat_body("chat", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["x-switchyard-deployment"]
        .to_str()
        .unwrap()
        .to_string()
}

fn assert_complete(body: &str) {
    let payloads = common::sse_payloads(body);
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "{body}"
    );
    assert!(!body.contains("\"error\""), "{body}");
    let finishes = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|v| v["choices"][0]["finish_reason"].is_string())
        .count();
    assert_eq!(finishes, 1, "{body}");
}

fn metric(page: &str, line_start: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_page(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Stalls the old deployment's next stream after two chunks, so it is still running when the
/// config changes under it.
fn stall_old(sim: &SimHandle) {
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 2,
            stall: Duration::from_secs(2),
        },
        Some(1),
    ));
}

#[tokio::test]
async fn serve_reloads_on_file_change_streams_finish_on_their_config_and_invalid_files_change_nothing()
 {
    let (sim, _dir, path, sy) = serve_v1_watched().await;
    let http = common::client();
    let base = sy.url("");
    assert_eq!(status(&http, &base).await["generation"], 1);
    assert_eq!(served_by(&http, &base).await, "old");

    stall_old(&sim);
    let open = open_stream(&http, &base).await;
    assert_eq!(open.deployment, "old");

    std::fs::write(&path, v2(&sim)).unwrap();
    wait_generation(&http, &base, 2, false).await;
    let s = status(&http, &base).await;
    let last = &s["last_reload"];
    assert_eq!(last["result"], "applied", "{s}");
    assert_eq!(last["cause"], "file", "{s}");
    assert_eq!(last["changes"]["deployments_added"], json!(["new"]), "{s}");
    assert_eq!(
        last["changes"]["deployments_removed"],
        json!(["old"]),
        "{s}"
    );

    // The next request uses the new config; the stream started before goes on where it was.
    assert_eq!(served_by(&http, &base).await, "new");
    assert_complete(&open.finish().await);
    assert_eq!(sim.request_count("llama3.2:1b"), 2);
    assert_eq!(sim.request_count("mistral:7b"), 1);

    // An invalid file: reported, and everything stays as it was.
    std::fs::write(&path, INVALID).unwrap();
    common::eventually(30, "the invalid file reported", || async {
        status(&http, &base).await["last_error"].is_object()
    })
    .await;
    let s = status(&http, &base).await;
    assert_eq!(s["generation"], 2, "{s}");
    assert_eq!(s["last_reload"]["result"], "error", "{s}");
    assert!(
        s["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("model"),
        "{s}"
    );
    let page = metrics_page(&http, &base).await;
    assert_eq!(
        metric(&page, "switchyard_config_reload_total{result=\"error\"}"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        metric(&page, "switchyard_config_generation "),
        Some(2.0),
        "{page}"
    );
    assert_eq!(served_by(&http, &base).await, "new");

    // The admin route says the same, in the API's error shape.
    let resp = http
        .post(sy.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "config_invalid", "{body}");
    assert_eq!(body["reload"]["generation"], 2, "{body}");
}

#[tokio::test]
async fn admin_route_reloads_reports_restart_only_keys_and_needs_the_master_key() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, v1(&sim)).unwrap();
    let sy = serve(&path).await;
    sy.reloader.set_path(&path);
    let http = common::client();
    let base = sy.url("");

    for key in [None, Some("sk-wrong")] {
        let mut req = http.post(sy.url("/admin/reload"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }

    // The same file again: nothing changes.
    let resp = http
        .post(sy.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(
        (r["result"].as_str(), r["generation"].as_u64()),
        (Some("unchanged"), Some(1)),
        "{r}"
    );

    // A listen address cannot change: reported, the rest applied.
    let text = v2(&sim) + "gateway: {listen: \"127.0.0.1:1\", max_messages: 3}\n";
    std::fs::write(&path, text).unwrap();
    let r: Value = http
        .post(sy.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "applied", "{r}");
    assert_eq!(r["cause"], "admin", "{r}");
    assert_eq!(r["generation"], 2, "{r}");
    assert_eq!(r["needs_restart"], json!(["gateway.listen"]), "{r}");
    assert_eq!(r["changes"]["settings_changed"], json!(["gateway"]), "{r}");
    assert_eq!(served_by(&http, &base).await, "new");
    // The gateway's reloadable options took effect: four messages are now too many.
    let four: Vec<Value> = (0..4)
        .map(|_| json!({"role": "user", "content": "hi"}))
        .collect();
    let resp = http
        .post(sy.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "chat", "messages": four}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

/// A Kubernetes ConfigMap volume: `config.yaml -> ..data/config.yaml`, `..data -> ..TIMESTAMP`;
/// an update writes a new timestamped directory and renames a new `..data` link over the old.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_style_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(d.join("..v1/config.yaml"), v1(&sim)).unwrap();
    symlink("..v1", d.join("..data")).unwrap();
    symlink("..data/config.yaml", d.join("config.yaml")).unwrap();
    let path = d.join("config.yaml");
    let sy = serve(&path).await;
    sy.reloader.watch_file(&path).unwrap();
    let http = common::client();
    let base = sy.url("");
    assert_eq!(served_by(&http, &base).await, "old");

    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(d.join("..v2/config.yaml"), v2(&sim)).unwrap();
    symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..v1")).unwrap();

    wait_generation(&http, &base, 2, false).await;
    assert_eq!(served_by(&http, &base).await, "new");
}

/// The config's directory often holds files written on every request (the usage database, its
/// spool, logs). Their writes must not hold a reload back: the reloader waits for the events
/// that concern the config file to stop, and these never would.
#[tokio::test]
async fn a_change_is_seen_while_other_files_in_the_directory_are_written_all_the_time() {
    let (sim, dir, path, sy) = serve_v1_watched().await;
    let http = common::client();
    let base = sy.url("");
    assert_eq!(served_by(&http, &base).await, "old");

    let busy = dir.path().join("switchyard-usage.db-wal");
    let writer = tokio::spawn(async move {
        use std::io::Write;
        let mut f = std::fs::File::create(&busy).unwrap();
        loop {
            f.write_all(b"a usage record\n").unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    std::fs::write(&path, v2(&sim)).unwrap();
    wait_generation(&http, &base, 2, false).await;
    assert_eq!(served_by(&http, &base).await, "new");
    writer.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_reloads_on_sighup() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, v1(&sim)).unwrap();
    let p = path.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let sy = common::spawn_switchyard(&[
        "serve",
        "--config",
        p,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--no-watch",
    ])
    .await;
    let http = common::client();
    let base = sy.url("");
    assert_eq!(served_by(&http, &base).await, "old");
    std::fs::write(&path, v2(&sim)).unwrap();
    common::signal(&sy.child, "HUP");
    wait_generation(&http, &base, 2, false).await;
    let s = status(&http, &base).await;
    assert_eq!(s["last_reload"]["cause"], "sighup", "{s}");
    assert_eq!(served_by(&http, &base).await, "new");
}

/// Gateway and router as two processes: the gateway's admin route reloads both; a stream through
/// both finishes on the deployment it started on; an invalid file leaves both as they were.
#[tokio::test]
async fn split_mode_gateway_and_router_reload_their_own_parts() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, v1(&sim)).unwrap();
    let p = path.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let router = common::spawn_switchyard(&[
        "router",
        "--config",
        p,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--no-prober",
        "--no-watch",
    ])
    .await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard(&[
        "gateway",
        "--config",
        p,
        "--listen",
        "127.0.0.1:0",
        "--router",
        &router_url,
        "--no-watch",
    ])
    .await;
    let http = common::client();
    let base = gateway.url("");
    let s = status(&http, &base).await;
    assert_eq!(
        (s["generation"].as_u64(), s["router"]["generation"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["router"]["config_hash"], s["config_hash"], "{s}");
    assert_eq!(served_by(&http, &base).await, "old");

    stall_old(&sim);
    let open = open_stream(&http, &base).await;
    assert_eq!(open.deployment, "old");
    std::fs::write(&path, v2(&sim)).unwrap();
    let resp = http
        .post(gateway.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["router"]["result"], "applied", "{r}");
    assert_eq!(r["router"]["service"], "router", "{r}");
    assert_eq!(
        r["router"]["changes"]["deployments_added"],
        json!(["new"]),
        "{r}"
    );
    wait_generation(&http, &base, 2, true).await;
    assert_eq!(served_by(&http, &base).await, "new");
    assert_complete(&open.finish().await);
    assert_eq!(sim.request_count("llama3.2:1b"), 2);

    // An invalid file: refused by both, reported, nothing changes.
    std::fs::write(&path, INVALID).unwrap();
    let resp = http
        .post(gateway.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reload"]["result"], "error", "{body}");
    assert_eq!(body["reload"]["router"]["result"], "error", "{body}");
    let s = status(&http, &base).await;
    assert_eq!(
        (s["generation"].as_u64(), s["router"]["generation"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    assert!(s["router"]["last_error"].is_object(), "{s}");
    let page = metrics_page(&http, &base).await;
    assert_eq!(
        metric(&page, "switchyard_config_reload_total{result=\"error\"}"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(served_by(&http, &base).await, "new");
}
