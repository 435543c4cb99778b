//! Spreading a gateway's calls over every router replica behind one DNS name.
//!
//! A gRPC channel is one long-lived HTTP/2 connection, so a gateway given `http://router:4001`
//! would send everything to whichever replica that name first resolved to (a Kubernetes
//! ClusterIP Service balances connections, not calls). When the name resolves to several
//! addresses (a headless Service, or several A records) the channel balances calls across all of
//! them (tower's power of two choices over in-flight calls), re-resolving the name every
//! [`RESOLVE_EVERY`] so replicas that come and go are followed. With one address, or none, the
//! channel keeps a single endpoint for the name itself, exactly as before.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// How often the router's name is resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(10);

/// Key of the endpoint that connects by name (used until the name yields several addresses).
const BY_NAME: &str = "";

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

/// The router endpoint's connection settings (shared by the by-name and per-address endpoints).
fn configure(e: Endpoint) -> Endpoint {
    e.tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
}

/// A channel to the router(s) at `endpoint`. An IP address connects to that address alone; a
/// name is followed with `resolver` (needs a Tokio runtime).
pub fn channel(endpoint: Endpoint, resolver: impl Resolve) -> Channel {
    let endpoint = configure(endpoint);
    let uri = endpoint.uri().clone();
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return endpoint.connect_lazy();
    }
    let scheme = uri.scheme_str().unwrap_or("http").to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let (channel, changes) = Channel::balance_channel::<String>(16);
    // Cannot fail: the channel was just made with room for 16 changes.
    let _ = changes.try_send(Change::Insert(BY_NAME.to_string(), endpoint.clone()));
    tokio::spawn(async move {
        let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
        loop {
            // A failed lookup keeps what is known: the connections that exist may still work.
            if let Ok(found) = resolver.resolve(&host, port).await {
                let found = replicas(found);
                for change in plan(&current, &found) {
                    let sent = match change {
                        Step::Add(a) => match Endpoint::from_shared(format!("{scheme}://{a}")) {
                            Ok(e) => {
                                changes
                                    .send(Change::Insert(a.to_string(), configure(e)))
                                    .await
                            }
                            Err(_) => Ok(()),
                        },
                        Step::Remove(a) => changes.send(Change::Remove(a.to_string())).await,
                        Step::ByName(true) => {
                            changes
                                .send(Change::Insert(BY_NAME.to_string(), endpoint.clone()))
                                .await
                        }
                        Step::ByName(false) => {
                            changes.send(Change::Remove(BY_NAME.to_string())).await
                        }
                    };
                    if sent.is_err() {
                        return; // The channel is gone: nothing to keep up to date.
                    }
                }
                current = if found.len() > 1 {
                    found
                } else {
                    BTreeSet::new()
                };
            }
            tokio::time::sleep(RESOLVE_EVERY).await;
        }
    });
    channel
}

/// The replicas among a lookup's addresses: those of the first address's family (a dual-stack
/// name lists each replica twice; `localhost` is 127.0.0.1 and ::1, one machine, where a
/// router bound to one of them is not on the other).
fn replicas(found: Vec<SocketAddr>) -> BTreeSet<SocketAddr> {
    let Some(first) = found.first() else {
        return BTreeSet::new();
    };
    let v4 = first.is_ipv4();
    found
        .iter()
        .filter(|a| a.is_ipv4() == v4)
        .copied()
        .collect()
}

/// One change to the balanced set.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Add(SocketAddr),
    Remove(SocketAddr),
    /// Whether the by-name endpoint should be in the set.
    ByName(bool),
}

/// What turns the balanced set for `current` into the one for `found`. Several addresses are
/// balanced one by one; one address or none leaves (or puts back) the by-name endpoint.
fn plan(current: &BTreeSet<SocketAddr>, found: &BTreeSet<SocketAddr>) -> Vec<Step> {
    let mut steps = Vec::new();
    if found.len() > 1 {
        steps.extend(found.difference(current).map(|a| Step::Add(*a)));
        if current.is_empty() {
            steps.push(Step::ByName(false));
        }
        steps.extend(current.difference(found).map(|a| Step::Remove(*a)));
    } else if !current.is_empty() {
        steps.push(Step::ByName(true));
        steps.extend(current.iter().map(|a| Step::Remove(*a)));
    }
    steps
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(ports: &[u16]) -> BTreeSet<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([10, 0, 0, 1], *p)))
            .collect()
    }

    #[test]
    fn localhost_and_dual_stack_names_are_not_several_replicas() {
        let v4: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let v6: SocketAddr = "[::1]:4001".parse().unwrap();
        assert_eq!(replicas(vec![v4, v6]).len(), 1);
        assert!(plan(&BTreeSet::new(), &replicas(vec![v6, v4])).is_empty());
        let a: SocketAddr = "10.0.0.1:4001".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:4001".parse().unwrap();
        let a6: SocketAddr = "[fd00::1]:4001".parse().unwrap();
        assert_eq!(replicas(vec![a, a6, b]), [a, b].into_iter().collect());
    }

    #[test]
    fn one_address_keeps_the_by_name_endpoint() {
        assert!(plan(&set(&[]), &set(&[1])).is_empty());
        assert!(plan(&set(&[]), &set(&[])).is_empty());
    }

    #[test]
    fn several_addresses_are_added_before_the_by_name_endpoint_goes() {
        let steps = plan(&set(&[]), &set(&[1, 2]));
        assert_eq!(
            steps,
            vec![
                Step::Add(set(&[1]).into_iter().next().unwrap()),
                Step::Add(set(&[2]).into_iter().next().unwrap()),
                Step::ByName(false)
            ]
        );
    }

    #[test]
    fn replicas_that_come_and_go_are_followed() {
        let a = |p| set(&[p]).into_iter().next().unwrap();
        assert_eq!(
            plan(&set(&[1, 2]), &set(&[2, 3])),
            vec![Step::Add(a(3)), Step::Remove(a(1))]
        );
        // Back to one: the by-name endpoint returns before the addresses leave.
        assert_eq!(
            plan(&set(&[2, 3]), &set(&[3])),
            vec![Step::ByName(true), Step::Remove(a(2)), Step::Remove(a(3))]
        );
    }
}
