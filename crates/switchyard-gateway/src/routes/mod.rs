//! HTTP handlers, one module per resource.

pub mod chat;
mod dispatch;
pub mod explain;
pub mod health;
pub mod keys;
pub mod models;
pub mod responses;
pub mod usage;
