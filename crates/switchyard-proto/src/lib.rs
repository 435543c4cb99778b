//! Generated gRPC types for the router service (`proto/switchyard/router/v1/router.proto`).
//!
//! Kept in its own crate so the gateway, the router and external clients share one definition,
//! and so the generated code is compiled once.

#![allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

pub mod auth;

pub mod router {
    pub mod v1 {
        tonic::include_proto!("switchyard.router.v1");
    }
}

pub use router::v1::*;
