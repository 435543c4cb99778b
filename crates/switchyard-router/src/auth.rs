//! Who is calling the router over the network, and what their request may claim.
//!
//! The router's `ChatRequest` carries `api_key_id` (whose usage and budget it is) and
//! `allowed_groups` (the key's allow-list). Only Switchyard's gateway, which has checked the key
//! itself, may set them: it proves it with the internal secret. Any other caller must present a
//! key, as over HTTP, and the router sets both fields from that key, whatever the request says.
//! A router built for `serve` mode has no [`RouterAuth`]: the gateway calls it in process.

use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_proto as pb;
use switchyard_proto::auth::{GrpcAuth, Presented};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// A virtual key as the router needs it.
#[derive(Clone, Debug)]
pub struct ResolvedKey {
    /// The key's public id (usage is recorded under it).
    pub key_id: String,
    /// Groups the key may reach (empty = all).
    pub allowed_groups: Vec<String>,
    /// Whether the key has expired.
    pub expired: bool,
    /// Whether the key has rate limits or a budget, which only the HTTP API enforces.
    pub limited: bool,
}

/// Looks a presented key up (the gateway's virtual keys, in the ledger's database).
pub trait KeyResolver: Send + Sync {
    /// `Ok(None)`: no such key.
    fn resolve<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ResolvedKey>, String>>;
}

/// The caller of one gRPC call.
#[derive(Debug)]
pub(crate) enum Identity {
    /// The service is open, or the caller holds the internal secret: the request is taken as is.
    Trusted,
    /// The master key.
    Master,
    /// A virtual key.
    Key(ResolvedKey),
}

/// The router's gRPC authentication: credentials accepted, and where virtual keys are found.
pub struct RouterAuth {
    grpc: GrpcAuth,
    keys: Option<Arc<dyn KeyResolver>>,
}

impl RouterAuth {
    /// `keys`: where virtual keys are looked up (`None`: only the secret and the master key).
    pub fn new(grpc: GrpcAuth, keys: Option<Arc<dyn KeyResolver>>) -> Self {
        RouterAuth { grpc, keys }
    }

    pub(crate) async fn identify(&self, md: &MetadataMap) -> Result<Identity, Status> {
        let key = match self.grpc.check(md)? {
            Presented::Open | Presented::Internal => return Ok(Identity::Trusted),
            Presented::Master => return Ok(Identity::Master),
            Presented::Key(k) => k,
        };
        let Some(keys) = &self.keys else {
            return Err(Status::unauthenticated(
                "invalid API key (this router has no ledger to look virtual keys up in; use the HTTP API)",
            ));
        };
        match keys.resolve(&key).await {
            Ok(Some(k)) if k.expired => Err(Status::unauthenticated("this API key has expired")),
            Ok(Some(k)) => Ok(Identity::Key(k)),
            Ok(None) => Err(Status::unauthenticated("invalid API key")),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up an API key");
                Err(Status::unavailable(format!(
                    "cannot check the API key now: {e}"
                )))
            }
        }
    }
}

impl Identity {
    /// Sets what `req` may claim about its caller; refuses what this caller may not do.
    /// `chat`: the request will be run (rate limits and budgets matter).
    pub(crate) fn apply(&self, req: &mut pb::ChatRequest, chat: bool) -> Result<(), Status> {
        self.apply_to(
            &req.model,
            &mut req.api_key_id,
            &mut req.allowed_groups,
            chat,
        )
    }

    /// [`apply`](Self::apply) for any request that names a model and claims an identity
    /// (`runs`: it will be run, so rate limits and budgets matter).
    pub(crate) fn apply_to(
        &self,
        model: &str,
        api_key_id: &mut String,
        allowed_groups: &mut Vec<String>,
        runs: bool,
    ) -> Result<(), Status> {
        match self {
            Identity::Trusted => Ok(()),
            Identity::Master => {
                *api_key_id = "master".into();
                allowed_groups.clear();
                Ok(())
            }
            Identity::Key(k) => {
                if !k.allowed_groups.is_empty() && !k.allowed_groups.iter().any(|g| g == model) {
                    return Err(Status::permission_denied(format!(
                        "this API key may not use the model `{model}`; it may use: {}",
                        k.allowed_groups.join(", ")
                    )));
                }
                if runs && k.limited {
                    return Err(Status::permission_denied(
                        "this API key has rate limits or a token budget, which only the HTTP API enforces: send this request to the gateway (/v1/chat/completions)",
                    ));
                }
                api_key_id.clone_from(&k.key_id);
                allowed_groups.clone_from(&k.allowed_groups);
                Ok(())
            }
        }
    }

    /// The groups this caller may see (`None`: all).
    pub(crate) fn allowed_groups(&self) -> Option<&[String]> {
        match self {
            Identity::Key(k) if !k.allowed_groups.is_empty() => Some(&k.allowed_groups),
            _ => None,
        }
    }
}
