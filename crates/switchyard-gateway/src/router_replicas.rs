//! Spreading a gateway's calls over every router replica behind one DNS name.
//!
//! A gRPC channel is one long-lived HTTP/2 connection, so a gateway given `http://router:4001`
//! would send everything to whichever replica that name first resolved to (a Kubernetes
//! ClusterIP Service balances connections, not calls). The name is resolved again every
//! [`RESOLVE_EVERY`], each address it yields gets its own connection ([`crate::router_h2`]), and
//! each call goes to the replica with the fewest calls in flight (ties taken in turn). Replicas
//! that come and go are followed; a failed lookup keeps the replicas known. An IP address is
//! one replica and is never looked up.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::router_h2::{Connection, TransportError};

/// How often the router's name is resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(10);

/// Turns a host and port into the addresses it stands for now (DNS, or a test's list).
pub trait Resolve: Send + Sync + 'static {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = std::io::Result<Vec<SocketAddr>>> + Send;
}

/// The system resolver.
pub struct Dns;

impl Resolve for Dns {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Why a router address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("router address {0:?}: expected http://host:port")]
    Invalid(String),
}

/// One replica: its connection and how many calls it has in flight.
struct Replica {
    connection: Connection,
    in_flight: AtomicUsize,
}

/// The replicas a call can go to.
struct Replicas {
    host: String,
    port: u16,
    authority: http::uri::Authority,
    by_name: bool,
    known: RwLock<Vec<Arc<Replica>>>,
    turn: AtomicUsize,
}

impl Replicas {
    #[cfg(test)]
    fn snapshot(&self) -> Vec<Arc<Replica>> {
        self.known.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Makes the known replicas those at `found` (connections to addresses still there are
    /// kept). An empty list changes nothing.
    fn follow(&self, found: Vec<SocketAddr>) {
        let found = replicas(found);
        if found.is_empty() {
            return;
        }
        let Ok(mut known) = self.known.write() else {
            return;
        };
        let next: Vec<Arc<Replica>> = found
            .iter()
            .map(|a| {
                known
                    .iter()
                    .find(|r| r.connection.addr() == *a)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Replica {
                            connection: Connection::new(*a, self.authority.clone()),
                            in_flight: AtomicUsize::new(0),
                        })
                    })
            })
            .collect();
        *known = next;
    }

    /// The replica for the next call: the fewest calls in flight, ties taken in turn.
    fn pick(&self) -> Option<Arc<Replica>> {
        let known = self.known.read().ok()?;
        let n = known.len();
        if n == 0 {
            return None;
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| &known[(start + i) % n])
            .min_by_key(|r| r.in_flight.load(Ordering::Relaxed))
            .cloned()
    }
}

/// The gRPC transport to the router(s) at one address (a tower service, what tonic's clients
/// call).
#[derive(Clone)]
pub struct RouterTransport {
    replicas: Arc<Replicas>,
    resolver: Arc<dyn ResolveDyn>,
}

/// [`Resolve`] behind a pointer.
trait ResolveDyn: Send + Sync {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

impl<R: Resolve> ResolveDyn for R {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(Resolve::resolve(self, host, port))
    }
}

/// The transport to the router(s) at `uri` (`http://host:port`). An IP address is used as it
/// is; a name is followed with `resolver` (needs a Tokio runtime). Connects lazily and again
/// after a failure, so the gateway can start before the router.
pub fn channel(uri: &http::Uri, resolver: impl Resolve) -> Result<RouterTransport, AddressError> {
    let invalid = || AddressError::Invalid(uri.to_string());
    let host = uri
        .host()
        .ok_or_else(invalid)?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri.authority().ok_or_else(invalid)?.clone();
    let ip = host.parse::<std::net::IpAddr>().ok();
    let replicas = Arc::new(Replicas {
        host,
        port,
        authority,
        by_name: ip.is_none(),
        known: RwLock::new(Vec::new()),
        turn: AtomicUsize::new(0),
    });
    let resolver: Arc<dyn ResolveDyn> = Arc::new(resolver);
    match ip {
        Some(ip) => replicas.follow(vec![SocketAddr::new(ip, port)]),
        None => {
            let (weak, resolver) = (Arc::downgrade(&replicas), resolver.clone());
            tokio::spawn(async move {
                loop {
                    let Some(r) = weak.upgrade() else { return };
                    if let Ok(found) = resolver.resolve(&r.host, r.port).await {
                        r.follow(found);
                    }
                    drop(r);
                    tokio::time::sleep(RESOLVE_EVERY).await;
                }
            });
        }
    }
    Ok(RouterTransport { replicas, resolver })
}

impl RouterTransport {
    async fn call(
        self,
        req: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, TransportError> {
        let mut replica = self.replicas.pick();
        if replica.is_none() && self.replicas.by_name {
            // Not looked up yet (or never answered): look up now.
            let r = &self.replicas;
            let found = self
                .resolver
                .resolve(&r.host, r.port)
                .await
                .map_err(|e| TransportError::Resolve(r.host.clone(), e))?;
            r.follow(found);
            replica = r.pick();
        }
        let replica = replica.ok_or_else(|| {
            TransportError::Resolve(
                self.replicas.host.clone(),
                std::io::Error::other("the name has no address"),
            )
        })?;
        replica.in_flight.fetch_add(1, Ordering::Relaxed);
        // The call stays in flight until its answer has been read (or dropped).
        let done = InFlight(replica.clone());
        replica.connection.call(req, done).await
    }
}

/// Counts a call out of its replica's in-flight calls when dropped.
struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for RouterTransport {
    type Response = http::Response<tonic::body::Body>;
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.clone().call(req))
    }
}

/// The replicas among a lookup's addresses: those of the first address's family (a dual-stack
/// name lists each replica twice; `localhost` is 127.0.0.1 and ::1, one machine, where a
/// router bound to one of them is not on the other), each once.
fn replicas(found: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = found.first() else {
        return Vec::new();
    };
    let v4 = first.is_ipv4();
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in found {
        if a.is_ipv4() == v4 && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn by_name() -> Replicas {
        Replicas {
            host: "router".into(),
            port: 4001,
            authority: http::uri::Authority::from_static("router:4001"),
            by_name: true,
            known: RwLock::new(Vec::new()),
            turn: AtomicUsize::new(0),
        }
    }

    fn addrs(r: &Replicas) -> Vec<SocketAddr> {
        r.snapshot().iter().map(|x| x.connection.addr()).collect()
    }

    #[test]
    fn localhost_and_dual_stack_names_are_not_several_replicas() {
        let v4: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let v6: SocketAddr = "[::1]:4001".parse().unwrap();
        assert_eq!(replicas(vec![v4, v6]), vec![v4]);
        assert_eq!(replicas(vec![v6, v4]), vec![v6]);
        let a: SocketAddr = "10.0.0.1:4001".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:4001".parse().unwrap();
        let a6: SocketAddr = "[fd00::1]:4001".parse().unwrap();
        assert_eq!(replicas(vec![a, a6, b, a]), vec![a, b]);
    }

    #[test]
    fn replicas_that_come_and_go_are_followed_and_kept_ones_keep_their_connection() {
        let r = by_name();
        r.follow(vec![at(1), at(2)]);
        assert_eq!(addrs(&r), vec![at(1), at(2)]);
        let kept = r.snapshot()[1].clone();
        r.follow(vec![at(2), at(3)]);
        assert_eq!(addrs(&r), vec![at(2), at(3)]);
        assert!(Arc::ptr_eq(&kept, &r.snapshot()[0]));
        // A lookup that finds nothing keeps what is known.
        r.follow(vec![]);
        assert_eq!(addrs(&r), vec![at(2), at(3)]);
    }

    #[test]
    fn calls_go_to_the_least_busy_replica_and_ties_take_turns() {
        let r = by_name();
        r.follow(vec![at(1), at(2), at(3)]);
        let picks: Vec<SocketAddr> = (0..6)
            .map(|_| r.pick().unwrap().connection.addr())
            .collect();
        for a in [at(1), at(2), at(3)] {
            assert_eq!(picks.iter().filter(|p| **p == a).count(), 2, "{picks:?}");
        }
        let busy = r.snapshot();
        busy[0].in_flight.store(3, Ordering::Relaxed);
        busy[1].in_flight.store(1, Ordering::Relaxed);
        for _ in 0..5 {
            assert_eq!(r.pick().unwrap().connection.addr(), at(3));
        }
    }
}
