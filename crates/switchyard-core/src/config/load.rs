//! Reading a configuration: file, then `SWITCHYARD__…` environment overrides, then
//! `os.environ/VAR` references, then the typed parse that names the key of any error.

use serde_json::Value;

use super::error::{ConfigError, EnvSource};
use super::raw::RawConfig;

/// Prefix of environment overrides: `SWITCHYARD__GATEWAY__LISTEN=0.0.0.0:4000`.
pub const ENV_PREFIX: &str = "SWITCHYARD";

/// The file's text format.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    fn from_path(path: &str) -> Self {
        if path.ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }

    fn config_format(self) -> config::FileFormat {
        match self {
            Format::Yaml => config::FileFormat::Yaml,
            Format::Json => config::FileFormat::Json,
        }
    }
}

/// Reads and merges the sources into one untyped tree.
pub fn read_tree(
    path: &str,
    text: &str,
    format: Option<Format>,
    env: &dyn EnvSource,
) -> Result<Value, ConfigError> {
    let format = format.unwrap_or_else(|| Format::from_path(path));
    let overrides: config::Map<String, String> = env
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, format.config_format()))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(overrides)),
        )
        .build()
        .map_err(|e| ConfigError::Read {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let mut tree: Value = built.try_deserialize().map_err(|e| ConfigError::Read {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    if tree.is_null() {
        tree = Value::Object(serde_json::Map::new());
    }
    resolve_env_refs(&mut tree, String::new(), env)?;
    Ok(tree)
}

/// Replaces every string `os.environ/NAME` with the value of `NAME` (LiteLLM's convention).
fn resolve_env_refs(
    value: &mut Value,
    key: String,
    env: &dyn EnvSource,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix("os.environ/") {
                let var = var.trim().to_string();
                match env.get(&var) {
                    Some(v) => *s = v,
                    None => return Err(ConfigError::MissingEnv { key, var }),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_env_refs(item, format!("{key}[{i}]"), env)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let path = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                if path == "model_list"
                    && let Value::Array(items) = v
                {
                    for (i, item) in items.iter_mut().enumerate() {
                        // An entry that is set aside anyway (a cloud provider Switchyard does not
                        // serve) must not fail the file for want of that provider's key.
                        let model = item
                            .pointer("/litellm_params/model")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !super::providers::surely_unservable(model) {
                            resolve_env_refs(item, format!("{path}[{i}]"), env)?;
                        }
                    }
                    continue;
                }
                resolve_env_refs(v, path, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Top-level sections that hold `key: value` settings.
const MAPPING_SECTIONS: &[&str] = &[
    "router_settings",
    "general_settings",
    "litellm_settings",
    "environment_variables",
    "routing",
    "gateway",
    "router",
    "state",
    "ledger",
    "prober",
];

/// Top-level sections that hold a list of entries.
const LIST_SECTIONS: &[&str] = &["model_list", "deployments"];

/// A section of the wrong shape, said plainly. Left to serde, `gateway:` written as a list reads
/// as "gateway[0]: invalid type: map, expected a string" (a struct may be given as a sequence).
fn check_section_shapes(tree: &Value) -> Result<(), ConfigError> {
    let Value::Object(top) = tree else {
        return Err(ConfigError::invalid(
            "(top level)",
            "the file must be a mapping of sections (`model_list:`, `router_settings:`, …)",
        ));
    };
    for (key, value) in top {
        let shape = match value {
            Value::Null => continue,
            Value::Array(_) => "a list",
            Value::Object(_) => "a mapping",
            _ => "a single value",
        };
        if MAPPING_SECTIONS.contains(&key.as_str()) && !value.is_object() {
            return Err(ConfigError::invalid(
                key.clone(),
                format!(
                    "must be a mapping of settings (indented `name: value` lines), not {shape}"
                ),
            ));
        }
        if LIST_SECTIONS.contains(&key.as_str()) && !value.is_array() {
            return Err(ConfigError::invalid(
                key.clone(),
                format!("must be a list of entries (lines starting with `- `), not {shape}"),
            ));
        }
    }
    Ok(())
}

/// Parses the tree into the raw schema. Returns the paths of keys that were not understood.
pub fn parse_raw(tree: Value) -> Result<(RawConfig, Vec<String>), ConfigError> {
    check_section_shapes(&tree)?;
    let mut ignored = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
    let de = serde_ignored::Deserializer::new(tree, &mut on_ignored);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        ConfigError::invalid(key, e.into_inner().to_string())
    })?;
    Ok((raw, ignored))
}
