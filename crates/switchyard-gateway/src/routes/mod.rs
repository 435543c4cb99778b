//! HTTP handlers, one module per resource.

pub mod chat;
pub mod explain;
pub mod health;
pub mod keys;
pub mod models;
pub mod usage;
