//! TLS to backends: an HTTPS simulator with a CA made in the test (rcgen), reached with the CA
//! configured, refused without it, reached with `ssl_verify: false`, with a client certificate,
//! and as the last link of a chain after a local plain-http model failed. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel, SimTls};

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server: SimTls,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Switchyard test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();

    let mut client_params = CertificateParams::new(vec!["switchyard-client".to_string()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        client_cert: write("client.pem", &client.pem()),
        client_key: write("client.key", &client_key.serialize_pem()),
        server: SimTls {
            cert_pem: server.pem(),
            key_pem: server_key.serialize_pem(),
            client_ca_pem: None,
        },
        _dir: dir,
    }
}

async fn https_sim(tls: &SimTls) -> SimHandle {
    SimHandle::start_tls(SimConfig::llamacpp(SimModel::new("smol", 8192)), tls)
        .await
        .unwrap()
}

/// One OpenAI-compatible deployment at `base` with `extra` litellm_params.
fn remote_config(base: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: remote
    litellm_params: {{model: openai/smol, api_base: "{base}/v1" {extra}}}
    model_info: {{max_input_tokens: 8192}}
router_settings: {{num_retries: 0}}
"#
    )
}

async fn ask(gw: &common::Serve, model: &str) -> (u16, Value) {
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body(model, "hello over TLS", false))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn the_ca_file_makes_the_backend_trusted() {
    let pki = pki();
    let sim = https_sim(&pki.server).await;
    assert!(sim.base_url().starts_with("https://localhost:"));
    let extra = format!(", ssl_verify: \"{}\"", pki.ca.display());
    let gw = common::serve(common::config_from(&remote_config(&sim.base_url(), &extra))).await;
    let (status, body) = ask(&gw, "remote").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn without_the_ca_the_backend_is_refused_naming_the_certificate() {
    let pki = pki();
    let sim = https_sim(&pki.server).await;
    let gw = common::serve(common::config_from(&remote_config(&sim.base_url(), ""))).await;
    let (status, body) = ask(&gw, "remote").await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert!(
        sim.requests().is_empty(),
        "no request may pass an untrusted handshake"
    );
}

#[tokio::test]
async fn ssl_verify_false_accepts_the_certificate() {
    let pki = pki();
    let sim = https_sim(&pki.server).await;
    let gw = common::serve(common::config_from(&remote_config(
        &sim.base_url(),
        ", ssl_verify: false",
    )))
    .await;
    let (status, body) = ask(&gw, "remote").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_client_certificate_is_presented() {
    let pki = pki();
    let mut tls = pki.server.clone();
    tls.client_ca_pem = Some(std::fs::read_to_string(&pki.ca).unwrap());
    let sim = https_sim(&tls).await;
    let ca = format!(", ssl_verify: \"{}\"", pki.ca.display());
    // Without a client certificate the server ends the handshake.
    let gw = common::serve(common::config_from(&remote_config(&sim.base_url(), &ca))).await;
    let (status, body) = ask(&gw, "remote").await;
    assert_eq!(status, 502, "{body}");
    // With one it answers.
    let extra = format!(
        "{ca}, ssl_certificate: \"{}\", ssl_certificate_key: \"{}\"",
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let gw = common::serve(common::config_from(&remote_config(&sim.base_url(), &extra))).await;
    let (status, body) = ask(&gw, "remote").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_failing_local_model_falls_back_to_the_https_link() {
    let pki = pki();
    let remote = https_sim(&pki.server).await;
    let local = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    local.add_fault(FaultRule::always(Fault::Status {
        code: 500,
        message: "GPU is gone".into(),
    }));
    let text = format!(
        r#"
model_list:
  - model_name: local
    litellm_params: {{model: ollama/llama3.2:1b, api_base: "{local}", max_tokens: 4096}}
  - model_name: remote
    litellm_params: {{model: openai/smol, api_base: "{remote}/v1", ssl_verify: "{ca}"}}
    model_info: {{max_input_tokens: 8192}}
router_settings:
  fallbacks: [local, remote]
  num_retries: 0
"#,
        local = local.base_url(),
        remote = remote.base_url(),
        ca = pki.ca.display(),
    );
    let gw = common::serve(common::config_from(&text)).await;
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("local", "hello", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let model = r.headers()["x-switchyard-model"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(model, "smol", "the https link answered");
    let text = common::sse_text(&common::sse_payloads(&r.text().await.unwrap()));
    assert!(!text.is_empty());
    assert_eq!(local.requests().len(), 1);
    assert_eq!(remote.requests().len(), 1);
}

#[tokio::test]
async fn a_group_with_no_servable_deployment_gets_a_clear_400() {
    let sim = common::reference_ollama().await;
    let text = format!(
        r#"
model_list:
  - model_name: local
    litellm_params: {{model: ollama/llama3.2:1b, api_base: "{}", max_tokens: 2048}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-3-5-sonnet, api_key: os.environ/UNSET_ANTHROPIC_KEY}}
router_settings:
  fallbacks: [local, claude]
"#,
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    let (status, body) = ask(&gw, "claude").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "model_not_servable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("anthropic"), "{message}");
    let (status, body) = ask(&gw, "local").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = ask(&gw, "no-such-model").await;
    assert_eq!(status, 404);
}

#[test]
fn check_lists_what_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        r#"
model_list:
  - model_name: local
    litellm_params: {model: ollama/llama3.2:1b, api_base: "http://127.0.0.1:9", max_tokens: 20}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet}
  - model_name: gpt-3.5-turbo
    litellm_params: {model: gpt-3.5-turbo}
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", path.to_str().unwrap()])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Not served (2 of"), "{stdout}");
    assert!(
        stdout.contains("model_list[1]: claude (anthropic/claude-3-5-sonnet)"),
        "{stdout}"
    );
    assert!(stdout.contains("OPENAI_API_KEY is not set"), "{stdout}");
    assert!(
        stdout.contains("max_tokens 20 read as an output limit"),
        "{stdout}"
    );
}

/// Discovery trusts an `https://` Ollama as its wildcard entry says: the CA file reaches the
/// prober's listing (`/api/tags`, `/api/show`) as well as the attempts.
#[tokio::test]
async fn discovery_lists_an_https_host_with_its_ca_file() {
    let pki = pki();
    let sim = SimHandle::start_tls(
        SimConfig::ollama(vec![
            SimModel::new("llama3.2:1b", 4096),
            SimModel::new("qwen3:8b", 40960),
        ]),
        &pki.server,
    )
    .await
    .unwrap();
    let text = format!(
        r#"
model_list:
  - model_name: "ollama/*"
    litellm_params: {{model: "ollama/*", api_base: "{}", ssl_verify: "{}"}}
    model_info:
      discovery: {{max_context: 32768, auto_fallbacks: by_context}}
prober: {{interval: 0.1, timeout: 2}}
"#,
        sim.base_url(),
        pki.ca.display()
    );
    let gw = common::serve(common::config_from(&text)).await;
    let url = gw.url("/v1/models");
    common::eventually(20, "the https host's models are discovered", || {
        let url = url.clone();
        async move {
            let v: Value = common::client()
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ids: Vec<&str> = v["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
                .unwrap_or_default();
            ids.contains(&"ollama/llama3.2:1b") && ids.contains(&"ollama/qwen3:8b")
        }
    })
    .await;
    let (status, body) = ask(&gw, "ollama/qwen3:8b").await;
    assert_eq!(status, 200, "{body}");
}
