//! Configuration errors, each naming the key at fault.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("{key}: environment variable {var} is not set (referenced as os.environ/{var})")]
    MissingEnv { key: String, var: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The key path the error is about, if it names one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { key, .. } | ConfigError::MissingEnv { key, .. } => Some(key),
        }
    }
}

/// Where environment values come from: the process environment in production, a map in tests
/// (so no test mutates the real environment).
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
    /// Every variable, for prefix-based overrides.
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
