//! Switchyard's benchmark tooling, as a library so the `switchyard-loadgen` binary stays a thin
//! command line and the pieces (target address checks, response scanning, histogram summaries,
//! `/proc` readings, the Markdown report) can be unit-tested without a server.
//!
//! The load generator measures what a client of the gateway sees: per-request latency, time to
//! first content for streams, throughput and errors, and beside them the CPU time and memory of
//! the server processes under test, read from `/proc`.

pub mod capacity;
pub mod conversation;
pub mod load;
pub mod passthrough;
pub mod procfs;
pub mod prompt;
pub mod report;
mod report_tokenizers;
pub mod scan;
pub mod summary;
pub mod target;
