//! The `switchyard-sim` binary: YAML config, the `{"listening":…}` line, control endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_serves_config_and_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.yaml");
    std::fs::write(
        &path,
        "flavor: ollama\nmodels:\n  - name: llama3.2:1b\n    context_length: 8192\n  - {name: big, context_length: 131072, token_scale: 1.2}\ndefault_num_ctx: 2048\nchunk_delay_ms: 0\ndefault_output_tokens: 4\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-sim"))
        .arg("--config")
        .arg(&path)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let base = format!("http://{}", first["listening"].as_str().unwrap());
    let c = reqwest::Client::new();

    let r = c
        .post(format!("{base}/_sim/faults"))
        .json(&json!({"model": "llama3.2:1b", "fault": {"kind": "status", "code": 500, "message": "load failed"}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let chat = json!({"model": "llama3.2:1b", "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    let r = c
        .post(format!("{base}/api/chat"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = c
        .post(format!("{base}/api/chat"))
        .json(&chat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["eval_count"], 4);

    let reqs: Value = c
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reqs.as_array().unwrap().len(), 2);
    assert_eq!(reqs[0]["path"], "/api/chat");
    let mut with_ctx = chat.clone();
    with_ctx["options"] = json!({"num_ctx": 4096});
    let _ = c
        .post(format!("{base}/api/chat"))
        .json(&with_ctx)
        .send()
        .await
        .unwrap();
    let stats: Value = c
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The capacity counters sit beside these (see tests/capacity.rs).
    let pick = |m: &str| json!({"requests": stats[m]["requests"], "reloads": stats[m]["reloads"], "busy": stats[m]["busy"]});
    assert_eq!(
        pick("llama3.2:1b"),
        json!({"requests": 3, "reloads": 1, "busy": 0})
    );
    assert_eq!(pick("big"), json!({"requests": 0, "reloads": 0, "busy": 0}));
    let r = c
        .delete(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    child.start_kill().unwrap();
    let _ = child.wait().await;
}
