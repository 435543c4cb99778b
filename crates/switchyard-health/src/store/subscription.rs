//! A subscription to health changes, and the self-healing Redis subscriber behind it.
//!
//! Both stores deliver the same sequence: a [`HealthEvent::Snapshot`] first, then
//! [`HealthEvent::Changed`] events, and another snapshot whenever events may have been missed
//! (a lagging reader in memory; a reconnect to Redis). A reader can therefore keep a correct
//! view by replacing it on snapshots and patching it on changes.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::memory::MemoryStore;
use super::redis::RedisStore;
use crate::model::{HealthChange, HealthEvent};

/// Events buffered between the Redis task and the reader.
const REDIS_BUFFER: usize = 256;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often an idle subscriber checks that its connection is alive (a silent half-open TCP
/// connection would otherwise go unnoticed).
const PING_EVERY: Duration = Duration::from_secs(5);

/// Receives [`HealthEvent`]s. Dropping it stops any background task.
pub struct HealthSubscription {
    inner: Inner,
}

enum Inner {
    Memory {
        store: MemoryStore,
        rx: broadcast::Receiver<HealthChange>,
        resync: bool,
    },
    Redis {
        rx: mpsc::Receiver<HealthEvent>,
        task: JoinHandle<()>,
    },
}

impl Drop for HealthSubscription {
    fn drop(&mut self) {
        if let Inner::Redis { task, .. } = &self.inner {
            task.abort();
        }
    }
}

impl std::fmt::Debug for HealthSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Memory { .. } => "memory",
            Inner::Redis { .. } => "redis",
        };
        f.debug_struct("HealthSubscription")
            .field("kind", &kind)
            .finish()
    }
}

impl HealthSubscription {
    pub(super) fn memory(store: MemoryStore, rx: broadcast::Receiver<HealthChange>) -> Self {
        HealthSubscription {
            inner: Inner::Memory {
                store,
                rx,
                resync: true,
            },
        }
    }

    pub(super) fn redis(store: RedisStore) -> Self {
        let (tx, rx) = mpsc::channel(REDIS_BUFFER);
        let task = tokio::spawn(redis_subscriber(store, tx));
        HealthSubscription {
            inner: Inner::Redis { rx, task },
        }
    }

    /// The next event; `None` only once the source is gone for good.
    pub async fn recv(&mut self) -> Option<HealthEvent> {
        match &mut self.inner {
            Inner::Memory { store, rx, resync } => {
                if std::mem::take(resync) {
                    return Some(HealthEvent::Snapshot(store.snapshot()));
                }
                match rx.recv().await {
                    Ok(change) => Some(HealthEvent::Changed(change)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Some(HealthEvent::Snapshot(store.snapshot()))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            }
            Inner::Redis { rx, .. } => rx.recv().await,
        }
    }

    /// The subscription as a `Stream`.
    pub fn into_stream(self) -> impl Stream<Item = HealthEvent> + Send {
        futures::stream::unfold(self, |mut sub| async move {
            let ev = sub.recv().await?;
            Some((ev, sub))
        })
    }
}

/// Subscribes, sends a snapshot, forwards messages; on any failure waits and starts over.
/// Ends when the reader is dropped.
async fn redis_subscriber(store: RedisStore, tx: mpsc::Sender<HealthEvent>) {
    let mut backoff = BACKOFF_MIN;
    while !tx.is_closed() {
        match subscribe_once(&store, &tx).await {
            Session::ReaderGone => return,
            Session::Ended { was_connected } => {
                if was_connected {
                    backoff = BACKOFF_MIN;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Session {
    ReaderGone,
    Ended { was_connected: bool },
}

async fn subscribe_once(store: &RedisStore, tx: &mpsc::Sender<HealthEvent>) -> Session {
    let conn = store.conn();
    let deadline = conn.op_timeout();
    let channel = store.channel();
    let pubsub = match tokio::time::timeout(deadline, conn.client().get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "health subscriber: connect failed");
            conn.set_degraded(true);
            return Session::Ended {
                was_connected: false,
            };
        }
        Err(_) => {
            conn.set_degraded(true);
            return Session::Ended {
                was_connected: false,
            };
        }
    };
    let (mut sink, mut stream) = pubsub.split();
    if !matches!(
        tokio::time::timeout(deadline, sink.subscribe(&channel)).await,
        Ok(Ok(()))
    ) {
        return Session::Ended {
            was_connected: false,
        };
    }
    // Subscribed first, then read: a change between the two arrives as an event after the
    // snapshot, so nothing is missed.
    let snapshot = match store.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "health subscriber: snapshot failed");
            return Session::Ended {
                was_connected: false,
            };
        }
    };
    if tx.send(HealthEvent::Snapshot(snapshot)).await.is_err() {
        return Session::ReaderGone;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    tracing::info!("health subscriber: connection lost, reconnecting");
                    return Session::Ended { was_connected: true };
                };
                match serde_json::from_slice::<HealthChange>(msg.get_payload_bytes()) {
                    Ok(change) => {
                        if tx.send(HealthEvent::Changed(change)).await.is_err() {
                            return Session::ReaderGone;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "health subscriber: bad event ignored"),
                }
            }
            _ = ping.tick() => {
                let alive = tokio::time::timeout(deadline, sink.ping::<redis::Value>()).await;
                if !matches!(alive, Ok(Ok(_))) {
                    tracing::info!("health subscriber: ping failed, reconnecting");
                    return Session::Ended { was_connected: true };
                }
            }
            () = tx.closed() => return Session::ReaderGone,
        }
    }
}
