//! Counters the routing strategies read, shared across router replicas: requests in flight per
//! deployment (least-busy) and requests/tokens per minute (usage-based).
//!
//! Like [`crate::HealthStore`], each is a closed enum over an in-process and a Redis backend.
//! Calls on the Redis backend fail fast (the connection's deadline) and the error can be
//! ignored: a strategy then works on what it last knew.

mod inflight;
mod limits;
mod usage;

pub use self::inflight::{InflightCounter, SlotTry};
pub use self::limits::{Admission, KeyLimiter, KeyLimits, LimitDenied};
pub use self::usage::UsageWindow;
