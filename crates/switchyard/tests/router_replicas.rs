//! A gateway whose router address is a name with several addresses (a Kubernetes headless
//! Service) sends its calls to every router replica, and follows replicas that come and go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use switchyard_gateway::router_replicas::{self, Resolve, RouterTransport};
use switchyard_proto as pb;
use switchyard_proto::router_client::RouterClient;
use tokio::sync::oneshot;

/// A name's addresses as the test sets them.
#[derive(Clone, Default)]
struct Addresses(Arc<Mutex<Vec<SocketAddr>>>);

impl Resolve for Addresses {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// A router in this process with its own simulated Ollama.
struct Replica {
    addr: SocketAddr,
    sim: switchyard_sim::SimHandle,
    _stop: oneshot::Sender<()>,
}

async fn replica() -> Replica {
    let sim = common::reference_ollama().await;
    let config = common::config_from(&common::seed_config_text(&sim.base_url()));
    let (tx, rx) = oneshot::channel::<()>();
    let router = switchyard::router(
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
    let addr = router.addr;
    tokio::spawn(router.serve);
    Replica {
        addr,
        sim,
        _stop: tx,
    }
}

fn served(r: &Replica) -> usize {
    r.sim.request_count("llama3.2:1b")
}

async fn chat(client: &mut RouterClient<RouterTransport>) -> bool {
    let req = pb::ChatRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        model: "local-small".into(),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some("hello there".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = match client.chat(req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chat failed: {e}");
            return false;
        }
    };
    let mut stream = resp.into_inner();
    while let Ok(Some(_)) = stream.message().await {}
    true
}

#[tokio::test]
async fn calls_reach_every_replica_behind_the_name_and_follow_a_new_one() {
    let (a, b, c) = (replica().await, replica().await, replica().await);
    let addresses = Addresses::default();
    *addresses.0.lock().unwrap() = vec![a.addr, b.addr];
    // A name (not an IP): the channel resolves it, here through the test's list.
    let uri = tonic::codegen::http::Uri::from_static("http://routers.invalid:4001");
    let channel = router_replicas::channel(&uri, addresses.clone()).unwrap();
    let mut client = RouterClient::new(channel);

    let client_ref = client.clone();
    common::eventually(30, "both replicas serve calls", || {
        let mut cl = client_ref.clone();
        let (a, b) = (&a, &b);
        async move {
            chat(&mut cl).await;
            served(a) > 0 && served(b) > 0
        }
    })
    .await;
    // Balanced, not all on one: 40 more calls land on both.
    let (a0, b0) = (served(&a), served(&b));
    for _ in 0..40 {
        assert!(
            chat(&mut client).await,
            "a call failed with two replicas up"
        );
    }
    assert!(
        served(&a) > a0 && served(&b) > b0,
        "a: {a0}->{}, b: {b0}->{}",
        served(&a),
        served(&b)
    );

    // A third replica appears (a scaled-up Deployment): it gets calls once the name lists it.
    *addresses.0.lock().unwrap() = vec![a.addr, b.addr, c.addr];
    common::eventually(60, "the new replica serves calls", || {
        let mut cl = client_ref.clone();
        let c = &c;
        async move {
            chat(&mut cl).await;
            served(c) > 0
        }
    })
    .await;
}
