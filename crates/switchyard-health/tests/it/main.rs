//! Integration tests of the health crate against the simulator and a real Redis
//! (127.0.0.1:6379; Redis tests print "skipped: Redis not reachable" and pass without it).
//! One test binary, so the crate is linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;
mod counters;
mod degraded;
mod discovery;
mod lease;
mod prober;
mod store;
