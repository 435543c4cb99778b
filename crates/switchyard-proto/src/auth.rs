//! Who may call Switchyard's gRPC services (the router's and the ledger's).
//!
//! Exists because those services listen on the network in split mode, and whatever they are told
//! (`api_key_id`, `allowed_groups`, usage records, keys) must come from a caller that has
//! authenticated. Two credentials are known here:
//! - the **internal secret**, shared by Switchyard's own processes and sent as
//!   [`INTERNAL_HEADER`] metadata; a caller that presents it is one of ours and is trusted as such;
//! - the **master key**, sent as `authorization: Bearer …` (or `x-api-key`), as over HTTP.
//!
//! Any other bearer key is the caller's business (the router looks virtual keys up). Comparisons
//! are constant-time over SHA-256 digests, so neither bytes nor lengths leak through timing.
//! With neither a secret nor a master key configured, the services stay open, as before.

#![warn(clippy::all)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Metadata key that carries the internal secret.
pub const INTERNAL_HEADER: &str = "x-switchyard-internal";

/// Environment variable that sets the internal secret (over the configuration file).
pub const INTERNAL_SECRET_ENV: &str = "SWITCHYARD_INTERNAL_SECRET";

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The secret Switchyard's processes present to each other.
#[derive(Clone)]
pub struct InternalSecret {
    digest: [u8; 32],
    value: AsciiMetadataValue,
}

impl std::fmt::Debug for InternalSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalSecret(..)")
    }
}

impl InternalSecret {
    /// A secret as configured; `None` if it cannot be sent as metadata (not visible ASCII).
    pub fn new(secret: &str) -> Option<Self> {
        let value = AsciiMetadataValue::try_from(secret).ok()?;
        Some(InternalSecret {
            digest: digest(secret),
            value,
        })
    }

    /// The secret every process derives from the same master key: hex SHA-256 of a
    /// domain-separation label and the key, so it differs from the key and from the virtual keys'
    /// HMAC secret, and cannot be turned back into the master key.
    pub fn derived_from_master(master_key: &str) -> Option<Self> {
        let mut h = Sha256::new();
        h.update(b"switchyard internal grpc secret v1\0");
        h.update(master_key.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self::new(&hex)
    }

    /// The configured secret, else one derived from the master key, else none.
    pub fn resolve(configured: Option<&str>, master_key: Option<&str>) -> Option<Self> {
        match configured.filter(|s| !s.is_empty()) {
            Some(s) => Self::new(s),
            None => master_key
                .filter(|k| !k.is_empty())
                .and_then(Self::derived_from_master),
        }
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let d: [u8; 32] = Sha256::digest(presented).into();
        bool::from(d.ct_eq(&self.digest))
    }

    /// Adds the secret to a request's metadata.
    pub fn attach(&self, md: &mut MetadataMap) {
        md.insert(INTERNAL_HEADER, self.value.clone());
    }

    /// Adds the secret to an HTTP/2 request's headers (for a channel below tonic's client).
    pub fn attach_http<B>(&self, req: &mut tonic::codegen::http::Request<B>) {
        let mut md = MetadataMap::from_headers(std::mem::take(req.headers_mut()));
        self.attach(&mut md);
        *req.headers_mut() = md.into_headers();
    }
}

/// A client-side interceptor that sends the internal secret (if any) with every call. Small (one
/// pointer), so clients that hold it stay small.
#[derive(Clone, Debug, Default)]
pub struct SendSecret(Option<std::sync::Arc<InternalSecret>>);

impl SendSecret {
    pub fn new(secret: Option<InternalSecret>) -> Self {
        SendSecret(secret.map(std::sync::Arc::new))
    }
}

impl Interceptor for SendSecret {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(s) = &self.0 {
            s.attach(req.metadata_mut());
        }
        Ok(req)
    }
}

/// A channel whose every call carries the internal secret (when there is one).
pub type AuthedChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, SendSecret>;

/// `channel`, sending `secret` with every call.
pub fn authed(channel: tonic::transport::Channel, secret: Option<InternalSecret>) -> AuthedChannel {
    tonic::service::interceptor::InterceptedService::new(channel, SendSecret::new(secret))
}

/// What a caller presented, once checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// Nothing is configured: the service is open to all, as it always was.
    Open,
    /// The internal secret: one of Switchyard's own processes.
    Internal,
    /// The master key.
    Master,
    /// Some other bearer key (a virtual key, or a wrong one): for the service to look up.
    Key(String),
}

/// The server side: which credentials a service accepts.
#[derive(Clone, Default)]
pub struct GrpcAuth {
    secret: Option<InternalSecret>,
    master: Option<[u8; 32]>,
}

impl GrpcAuth {
    /// Accepts `secret` and `master_key`; with neither, every caller is let in.
    pub fn new(secret: Option<InternalSecret>, master_key: Option<&str>) -> Self {
        GrpcAuth {
            secret,
            master: master_key.filter(|k| !k.is_empty()).map(digest),
        }
    }

    /// Whether anything is required of callers.
    pub fn is_open(&self) -> bool {
        self.secret.is_none() && self.master.is_none()
    }

    /// Checks a call's metadata. A wrong internal secret, or no credential at all, is refused
    /// here; a bearer key that is not the master key is handed back for the caller to judge.
    pub fn check(&self, md: &MetadataMap) -> Result<Presented, Status> {
        if self.is_open() {
            return Ok(Presented::Open);
        }
        if let Some(v) = md.get(INTERNAL_HEADER) {
            return match &self.secret {
                Some(s) if s.matches(v.as_bytes()) => Ok(Presented::Internal),
                _ => Err(Status::unauthenticated(format!(
                    "wrong {INTERNAL_HEADER}: this service's internal secret differs (set the same {INTERNAL_SECRET_ENV} or general_settings.internal_secret, or the same master key, on every service)"
                ))),
            };
        }
        let Some(key) = bearer(md) else {
            return Err(Status::unauthenticated(
                "missing credentials: send `authorization: Bearer <key>` metadata (the master key or a virtual key)",
            ));
        };
        match &self.master {
            Some(m) if bool::from(digest(key).ct_eq(m)) => Ok(Presented::Master),
            _ => Ok(Presented::Key(key.to_owned())),
        }
    }

    /// [`check`](Self::check) for a service that knows no virtual keys: only the internal
    /// secret or the master key get in.
    pub fn require_internal_or_master(&self, md: &MetadataMap) -> Result<(), Status> {
        match self.check(md)? {
            Presented::Open | Presented::Internal | Presented::Master => Ok(()),
            Presented::Key(_) => Err(Status::unauthenticated(
                "invalid credentials: this service accepts only the master key or the internal secret",
            )),
        }
    }
}

/// The key in `authorization: Bearer KEY` (or `x-api-key: KEY`), trimmed.
fn bearer(md: &MetadataMap) -> Option<&str> {
    if let Some(v) = md.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let k = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        return (!k.is_empty()).then_some(k);
    }
    md.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn open_without_configuration() {
        let a = GrpcAuth::new(None, None);
        assert_eq!(a.check(&md(&[])).unwrap(), Presented::Open);
    }

    #[test]
    fn secret_master_and_other_keys() {
        let master = "sk-master-123456";
        let s = InternalSecret::resolve(None, Some(master)).unwrap();
        let a = GrpcAuth::new(Some(s.clone()), Some(master));
        let mut with_secret = MetadataMap::new();
        s.attach(&mut with_secret);
        assert_eq!(a.check(&with_secret).unwrap(), Presented::Internal);
        assert_eq!(
            a.check(&md(&[("authorization", "Bearer sk-master-123456")]))
                .unwrap(),
            Presented::Master
        );
        assert_eq!(
            a.check(&md(&[("authorization", "Bearer sk-other")]))
                .unwrap(),
            Presented::Key("sk-other".into())
        );
        assert!(a.check(&md(&[])).is_err());
        assert!(a.check(&md(&[(INTERNAL_HEADER, "guess")])).is_err());
        // The derived secret is not the master key itself.
        assert!(a.check(&md(&[(INTERNAL_HEADER, master)])).is_err());
        assert!(
            a.require_internal_or_master(&md(&[("x-api-key", "sk-other")]))
                .is_err()
        );
    }

    #[test]
    fn a_configured_secret_wins_over_the_derived_one() {
        let s = InternalSecret::resolve(Some("configured-secret"), Some("sk-master-123")).unwrap();
        let a = GrpcAuth::new(Some(s), Some("sk-master-123"));
        assert_eq!(
            a.check(&md(&[(INTERNAL_HEADER, "configured-secret")]))
                .unwrap(),
            Presented::Internal
        );
    }
}
