//! The I/O-free core of Switchyard.
//!
//! Everything here is pure logic over values: the configuration model and its validation, prompt
//! size prediction, candidate planning and the failure classes that drive fallback. The router
//! service, the backend clients and the gateway build on it; none of it touches a socket, so it
//! is tested without any server.

pub mod bound;
pub mod calibration;
pub mod config;
pub mod cooldown;
pub mod failure;
pub mod plan;
pub mod template;
pub mod tokens;

pub use failure::FailureClass;
