//! The router's and the ledger's gRPC services, once a master key is configured, serve only
//! callers that authenticate: Switchyard's own processes with the internal secret, or a client
//! with a key as over HTTP. A caller's `api_key_id` and `allowed_groups` are believed only from
//! the gateway; anyone else gets the ones of the key it presented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use serde_json::{Value, json};
use switchyard_ledger::proto::ledger_client::LedgerClient;
use switchyard_ledger::proto::{ListKeysRequest, RecordBatch, UsageQuery};
use switchyard_proto as pb;
use switchyard_proto::router_client::RouterClient;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

const MASTER: &str = "sk-test-master-key-grpc";

/// A ledger, a router and a gateway, each started as its subcommand starts it, on port 0.
struct Split {
    router: String,
    ledger: String,
    gateway: String,
    _stops: Vec<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

fn stop_signal(stops: &mut Vec<oneshot::Sender<()>>) -> impl Future<Output = ()> + use<> {
    let (tx, rx) = oneshot::channel::<()>();
    stops.push(tx);
    async {
        let _ = rx.await;
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The three services with a master key (and `extra` lines under `general_settings`).
async fn split(sim_url: &str, extra: &str) -> Split {
    let settings = format!("general_settings:\n  master_key: {MASTER}\n{extra}");
    split_with_gateway_env(sim_url, &settings, &[]).await
}

/// The three services, `settings` appended to the seed config, the gateway's configuration read
/// with `gateway_env` as its environment.
async fn split_with_gateway_env(
    sim_url: &str,
    settings: &str,
    gateway_env: &[(&str, &str)],
) -> Split {
    let dir = tempfile::tempdir().unwrap();
    let mut stops = Vec::new();
    let mut text = common::seed_config_text(sim_url);
    text.push_str(settings);
    // `ledger` and `gateway` borrow their arguments for as long as they serve.
    let config: &'static _ = Box::leak(Box::new(common::config_from(&text)));
    let ledger_dir: &'static _ = Box::leak(Box::new(dir.path().join("ledger")));
    let ledger = switchyard::ledger(config, ledger_dir, any_port(), stop_signal(&mut stops))
        .await
        .unwrap();
    let ledger_url = format!("http://{}", ledger.addr);
    tokio::spawn(ledger.serve);

    text.push_str(&format!("ledger:\n  address: {ledger_url}\n"));
    let config: &'static _ = Box::leak(Box::new(common::config_from(&text)));
    // Boxed: the router's start-up future holds a whole `Config` (clippy's large_futures).
    let router = Box::pin(switchyard::router(
        config.clone(),
        any_port(),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().join("router")),
            embedded_prober: Some(false),
            ..Default::default()
        },
        stop_signal(&mut stops),
    ))
    .await
    .unwrap();
    let router_url: &'static str = Box::leak(format!("http://{}", router.addr).into_boxed_str());
    tokio::spawn(router.serve);
    let env: std::collections::HashMap<String, String> = gateway_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let gateway_config: &'static _ = Box::leak(Box::new(
        switchyard_core::config::load_str("test.yaml", &text, None, &env).unwrap(),
    ));
    let gateway = switchyard::gateway(
        gateway_config,
        router_url,
        any_port(),
        stop_signal(&mut stops),
    )
    .await
    .unwrap();
    let gateway_url = format!("http://{}", gateway.addr);
    tokio::spawn(gateway.serve);
    Split {
        router: router_url.to_string(),
        ledger: ledger_url,
        gateway: gateway_url,
        _stops: stops,
        _dir: dir,
    }
}

fn with_metadata<T>(msg: T, md: &[(&'static str, &str)]) -> Request<T> {
    let mut req = Request::new(msg);
    for (k, v) in md {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn chat_request(model: &str, api_key_id: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        model: model.into(),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some("hello there".into()),
            ..Default::default()
        }],
        api_key_id: api_key_id.into(),
        ..Default::default()
    }
}

fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect_lazy()
}

fn router_client(url: &str) -> RouterClient<Channel> {
    RouterClient::new(channel(url))
}

fn ledger_client(url: &str) -> LedgerClient<Channel> {
    LedgerClient::new(channel(url))
}

/// Runs a chat over gRPC to its end; the error status, or the events.
async fn chat(
    router: &str,
    req: Request<pb::ChatRequest>,
) -> Result<Vec<pb::chat_event::Event>, tonic::Status> {
    let mut client = router_client(router);
    let mut stream = client.chat(req).await?.into_inner();
    let mut events = Vec::new();
    while let Some(ev) = stream.message().await? {
        events.extend(ev.event);
    }
    Ok(events)
}

fn served(events: &[pb::chat_event::Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, pb::chat_event::Event::Route(_)))
}

/// A new virtual key and its id.
async fn generate_key(gateway: &str, body: Value) -> (String, String) {
    let r = common::client()
        .post(format!("{gateway}/key/generate"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    (
        v["key"].as_str().unwrap().to_string(),
        v["key_id"].as_str().unwrap().to_string(),
    )
}

/// The ids usage was recorded under, asked of the ledger with the master key.
async fn recorded_key_ids(ledger: &str) -> Vec<String> {
    let mut client = ledger_client(ledger);
    let auth = bearer(MASTER);
    let r = client
        .query(with_metadata(
            UsageQuery::default(),
            &[("authorization", auth.as_str())],
        ))
        .await
        .unwrap()
        .into_inner();
    r.records.into_iter().map(|r| r.api_key_id).collect()
}

#[tokio::test]
async fn callers_without_credentials_are_refused_by_the_router_and_the_ledger() {
    let sim = common::reference_ollama().await;
    let s = split(&sim.base_url(), "").await;

    let mut router = router_client(&s.router);
    let e = router
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = chat(
        &s.router,
        Request::new(chat_request("local-small", "someone-else")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = router
        .explain(chat_request("local-small", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // A wrong bearer key is no better.
    let e = router
        .list_models(with_metadata(
            pb::ListModelsRequest {},
            &[("authorization", "Bearer sk-guess")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let mut ledger = ledger_client(&s.ledger);
    let e = ledger.query(UsageQuery::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = ledger.list_keys(ListKeysRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = ledger.record(RecordBatch::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // Nor may a virtual key (or any other key) read the ledger.
    let e = ledger
        .list_keys(with_metadata(
            ListKeysRequest {},
            &[("authorization", "Bearer sk-guess")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // The master key may.
    let auth = bearer(MASTER);
    ledger
        .list_keys(with_metadata(
            ListKeysRequest {},
            &[("authorization", auth.as_str())],
        ))
        .await
        .unwrap();
    assert!(sim.requests().is_empty(), "nothing reached a backend");
}

#[tokio::test]
async fn a_caller_posing_as_the_gateway_without_the_secret_is_refused() {
    let sim = common::reference_ollama().await;
    let s = split(&sim.base_url(), "").await;
    for secret in ["", "not-the-secret", MASTER] {
        let mut req = chat_request("local-small", "someone-else");
        req.allowed_groups = vec![];
        let md: Vec<(&'static str, &str)> = if secret.is_empty() {
            vec![]
        } else {
            vec![("x-switchyard-internal", secret)]
        };
        let e = chat(&s.router, with_metadata(req, &md)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "secret {secret:?}: {e:?}");
    }
    let mut ledger = ledger_client(&s.ledger);
    let e = ledger
        .query(with_metadata(
            UsageQuery::default(),
            &[("x-switchyard-internal", "not-the-secret")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(sim.requests().is_empty(), "nothing reached a backend");
}

#[tokio::test]
async fn a_virtual_key_over_grpc_gets_its_own_identity_and_allow_list() {
    let sim = common::reference_ollama().await;
    let s = split(&sim.base_url(), "").await;
    let (key, key_id) = generate_key(
        &s.gateway,
        json!({"models": ["local-small"], "key_alias": "direct"}),
    )
    .await;
    let auth = bearer(&key);
    let md = [("authorization", auth.as_str())];

    // It sees only its groups.
    let mut router = router_client(&s.router);
    let models = router
        .list_models(with_metadata(pb::ListModelsRequest {}, &md))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = models.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["local-small"]);
    assert!(models.groups[0].fallbacks.is_empty(), "{models:?}");

    // It claims another key's identity and every group: the router uses the key's.
    let mut req = chat_request("local-small", "someone-else");
    req.allowed_groups = vec!["local-large".into()];
    let events = chat(&s.router, with_metadata(req, &md)).await.unwrap();
    assert!(served(&events), "{events:?}");
    // A group outside its list is refused before any attempt.
    let e = chat(
        &s.router,
        with_metadata(chat_request("local-large", "someone-else"), &md),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The record is charged to the key, not to whom the request named.
    common::eventually(20, "the record of the direct call", || async {
        recorded_key_ids(&s.ledger).await.contains(&key_id)
    })
    .await;
    assert!(
        !recorded_key_ids(&s.ledger)
            .await
            .iter()
            .any(|id| id == "someone-else")
    );

    // A key with rate limits is sent to the HTTP API, which enforces them.
    let (limited, _) = generate_key(&s.gateway, json!({"rpm_limit": 5})).await;
    let auth = bearer(&limited);
    let e = chat(
        &s.router,
        with_metadata(
            chat_request("local-small", ""),
            &[("authorization", auth.as_str())],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("HTTP API"), "{e:?}");
}

#[tokio::test]
async fn the_master_key_over_grpc_is_served_as_the_master() {
    let sim = common::reference_ollama().await;
    let s = split(&sim.base_url(), "").await;
    let auth = bearer(MASTER);
    let events = chat(
        &s.router,
        with_metadata(
            chat_request("local-small", "someone-else"),
            &[("authorization", auth.as_str())],
        ),
    )
    .await
    .unwrap();
    assert!(served(&events), "{events:?}");
    common::eventually(20, "the master's record", || async {
        recorded_key_ids(&s.ledger).await == ["master"]
    })
    .await;
}

#[tokio::test]
async fn the_gateway_with_the_secret_still_serves_split_mode() {
    let sim = common::reference_ollama().await;
    let s = split(&sim.base_url(), "").await;
    let http = common::client();
    // Chat through the gateway, which calls the router with the secret derived from the master
    // key; the router records to the ledger with it too.
    let r = http
        .post(format!("{}/v1/chat/completions", s.gateway))
        .bearer_auth(MASTER)
        .json(&common::chat_body("local-small", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let models = http
        .get(format!("{}/v1/models", s.gateway))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    // Keys are stored in and read from the ledger with the secret.
    let (key, _) = generate_key(&s.gateway, json!({"models": ["local-small"]})).await;
    let r = http
        .post(format!("{}/v1/chat/completions", s.gateway))
        .bearer_auth(&key)
        .json(&common::chat_body("local-small", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // And /v1/usage reads them back through the ledger.
    common::eventually(20, "both records in /v1/usage", || async {
        let v: Value = http
            .get(format!("{}/v1/usage", s.gateway))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
}

#[tokio::test]
async fn a_configured_secret_is_used_between_the_services() {
    let sim = common::reference_ollama().await;
    let secret = "a-configured-internal-secret-0123";
    let s = split(&sim.base_url(), &format!("  internal_secret: {secret}\n")).await;
    // The gateway, configured alike, is served.
    let r = common::client()
        .post(format!("{}/v1/chat/completions", s.gateway))
        .bearer_auth(MASTER)
        .json(&common::chat_body("local-small", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Whoever holds the secret is trusted with the identity it names.
    let events = chat(
        &s.router,
        with_metadata(
            chat_request("local-small", "team-a"),
            &[("x-switchyard-internal", secret)],
        ),
    )
    .await
    .unwrap();
    assert!(served(&events), "{events:?}");
    common::eventually(20, "team-a's record", || async {
        recorded_key_ids(&s.ledger)
            .await
            .contains(&"team-a".to_string())
    })
    .await;
}

#[tokio::test]
async fn a_gateway_with_another_secret_gets_503_naming_the_secret() {
    let sim = common::reference_ollama().await;
    let s = split_with_gateway_env(
        &sim.base_url(),
        &format!("general_settings:\n  master_key: {MASTER}\n"),
        &[("SWITCHYARD_INTERNAL_SECRET", "not-the-routers-secret-0123")],
    )
    .await;
    let r = common::client()
        .post(format!("{}/v1/chat/completions", s.gateway))
        .bearer_auth(MASTER)
        .json(&common::chat_body("local-small", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("x-switchyard-internal"), "{body}");
    assert!(sim.requests().is_empty(), "nothing reached a backend");
}

#[tokio::test]
async fn without_a_master_key_or_a_secret_the_services_stay_open() {
    let sim = common::reference_ollama().await;
    let s = split_with_gateway_env(&sim.base_url(), "", &[]).await;
    let events = chat(
        &s.router,
        Request::new(chat_request("local-small", "someone-else")),
    )
    .await
    .unwrap();
    assert!(served(&events), "{events:?}");
    router_client(&s.router)
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap();
    common::eventually(20, "the record, under the id the caller gave", || async {
        let mut ledger = ledger_client(&s.ledger);
        let r = ledger
            .query(UsageQuery::default())
            .await
            .unwrap()
            .into_inner();
        r.records.iter().any(|r| r.api_key_id == "someone-else")
    })
    .await;
}
