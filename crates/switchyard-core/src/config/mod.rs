//! Configuration: LiteLLM's `config.yaml` read as-is, or Switchyard's native keys, validated
//! into one [`Config`] with errors that name the offending key.
//!
//! Parse, then validate: [`load`] merges the file with `SWITCHYARD__…` environment overrides and
//! resolves `os.environ/VAR` references; [`validate`] applies defaults and LiteLLM's meanings and
//! records a note for each interpretation, which `switchyard check` prints.

mod capacity;
mod catalog;
mod deployments;
pub mod diff;
mod discovery;
mod error;
mod expand;
mod lenient;
mod load;
mod model;
mod providers;
mod raw;
mod tls;
mod validate;

pub use capacity::{Capacity, QueueSettings, SpillAfter};
pub use catalog::{Catalog, DiscoveredModel, HostModels};
pub use discovery::{AutoFallbacks, DiscoverySpec, glob_match};
pub use error::{ConfigError, EnvSource, ProcessEnv};
pub use expand::expand;
pub use lenient::parse_duration;
pub use load::{ENV_PREFIX, Format};
pub use model::*;
pub use validate::{DEFAULT_LISTEN, DEFAULT_ROUTER_LISTEN};

/// Loads and validates a configuration file.
pub fn load_file(path: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    load_str(path, &text, None, env)
}

/// Loads and validates configuration text; `origin` names it in errors.
pub fn load_str(
    origin: &str,
    text: &str,
    format: Option<Format>,
    env: &dyn EnvSource,
) -> Result<Config, ConfigError> {
    let tree = load::read_tree(origin, text, format, env)?;
    let (raw, ignored) = load::parse_raw(tree)?;
    validate::validate(raw, ignored, env)
}

#[cfg(test)]
mod tests;
