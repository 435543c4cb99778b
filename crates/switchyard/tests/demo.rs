//! `switchyard demo` runs the simulator, `serve` and a traffic generator: within a short run,
//! traffic reaches all three of the seed's models and the console answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sends_traffic_to_all_three_models() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let demo = common::spawn_switchyard(&[
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--duration-secs",
        "120",
        "--interval-ms",
        "100",
        "--data-dir",
        data_dir,
    ])
    .await;
    let client = common::client();
    let url = demo.url("/v1/usage/summary");
    common::eventually(90, "requests served by all three models", || {
        let client = client.clone();
        let url = url.clone();
        async move {
            let Ok(resp) = client.get(&url).send().await else {
                return false;
            };
            let Ok(v) = resp.json::<serde_json::Value>().await else {
                return false;
            };
            let served: Vec<&str> = v["models"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter(|x| x["requests"].as_u64().unwrap_or(0) > 0)
                        .filter_map(|x| x["model"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            served.len() >= 3
        }
    })
    .await;
    let console = client.get(demo.url("/ui/fleet")).send().await.unwrap();
    assert_eq!(console.status(), 200);
    let page = console.text().await.unwrap();
    for model in ["llama3.2:1b", "llama3.1:8b", "mistral:7b"] {
        assert!(page.contains(model), "the fleet page lists {model}");
    }
}
