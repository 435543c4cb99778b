//! Who is calling, as the auth middleware established it; handlers read it from the request's
//! extensions.

use std::sync::Arc;

use switchyard_health::KeyLimits;
use switchyard_ledger::proto::VirtualKey;

/// The caller of one request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No master key is configured: the API is open.
    Open,
    /// The master key: everything, including key management.
    Master,
    /// A virtual key.
    Key(Arc<VirtualKey>),
}

impl Caller {
    /// The id usage is recorded under.
    pub fn api_key_id(&self) -> &str {
        match self {
            Caller::Open => "",
            Caller::Master => "master",
            Caller::Key(k) => &k.key_id,
        }
    }

    /// Groups this caller may reach; empty = all.
    pub fn allowed_groups(&self) -> &[String] {
        match self {
            Caller::Key(k) => &k.models,
            _ => &[],
        }
    }
}

/// The rate limits of a key.
pub fn limits_of(k: &VirtualKey) -> KeyLimits {
    KeyLimits {
        rpm: k.rpm_limit,
        tpm: k.tpm_limit,
        parallel: k.max_parallel_requests,
    }
}
