//! HTTP handlers, one module per resource.

pub mod admin;
pub mod chat;
mod choices;
pub mod completions;
pub(crate) mod dispatch;
pub mod embeddings;
pub mod explain;
pub mod health;
pub mod keys;
pub mod models;
pub mod responses;
pub mod usage;
