//! Configuration of a simulated backend: which server it imitates and which models it serves.
//!
//! The same types are built in code by the gateway's tests and loaded from YAML by the binary.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Which real server the simulator imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Ollama's native API (`/api/*`) plus its OpenAI compatibility layer (`/v1/*`).
    Ollama,
    /// llama.cpp `llama-server` in single-model mode (OpenAI-compatible).
    #[serde(alias = "llama_cpp", alias = "llama.cpp", alias = "llama-cpp")]
    LlamaCpp,
}

/// One model served by the simulator.
#[derive(Clone, Debug, Deserialize)]
pub struct SimModel {
    /// Model name, e.g. `llama3.2:1b`; for llama.cpp the single model alias.
    pub name: String,
    /// Trained context, reported by `/api/show` as `<arch>.context_length`.
    pub context_length: u32,
    /// GGUF architecture, default `llama`.
    #[serde(default = "default_architecture")]
    pub architecture: String,
    /// llama.cpp only: per-slot context (400 past it); default = `context_length`.
    #[serde(default)]
    pub n_ctx: Option<u32>,
    /// Multiplies this model's prompt token counts (simulates a tokenizer that produces more tokens
    /// than a client estimated). Default 1.0.
    #[serde(default = "default_token_scale")]
    pub token_scale: f32,
    /// Generations served at once (Ollama `OLLAMA_NUM_PARALLEL`; llama.cpp `--parallel`, reported
    /// as `total_slots`). Default: unlimited.
    #[serde(default)]
    pub num_parallel: Option<u32>,
    /// Ollama only: requests allowed to wait for a slot before the next one gets 503
    /// (`OLLAMA_MAX_QUEUE`, default 512). llama.cpp queues without bound.
    #[serde(default)]
    pub max_queue: Option<u32>,
    /// Prompt processing speed: the first token comes `prompt tokens / this` seconds after the
    /// slot was taken. Default: instant.
    #[serde(default)]
    pub prompt_tokens_per_s: Option<f64>,
    /// Generation speed: one output token every `1 / this` seconds (overrides `chunk_delay`).
    /// Default: the simulator's `chunk_delay`.
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
    /// What `/api/show` says the model can do; default `completion` and `tools`
    /// (`["embedding"]` for an embedding model).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

fn default_architecture() -> String {
    "llama".to_owned()
}

fn default_token_scale() -> f32 {
    1.0
}

impl SimModel {
    /// A model with the defaults (`llama` architecture, no token scaling).
    pub fn new(name: &str, context_length: u32) -> Self {
        Self {
            name: name.to_owned(),
            context_length,
            architecture: default_architecture(),
            n_ctx: None,
            token_scale: default_token_scale(),
            num_parallel: None,
            max_queue: None,
            prompt_tokens_per_s: None,
            tokens_per_s: None,
            capabilities: None,
        }
    }

    /// This model with `slots` generations at once and (Ollama) `max_queue` waiting.
    #[must_use]
    pub fn with_slots(mut self, slots: u32, max_queue: Option<u32>) -> Self {
        self.num_parallel = Some(slots);
        self.max_queue = max_queue;
        self
    }

    /// This model with a prompt processing and a generation speed (tokens per second).
    #[must_use]
    pub fn with_speed(mut self, prompt_tokens_per_s: f64, tokens_per_s: f64) -> Self {
        self.prompt_tokens_per_s = Some(prompt_tokens_per_s);
        self.tokens_per_s = Some(tokens_per_s);
        self
    }

    /// Ollama's `capabilities` for this model.
    pub fn capabilities(&self) -> Vec<String> {
        self.capabilities
            .clone()
            .unwrap_or_else(|| vec!["completion".to_owned(), "tools".to_owned()])
    }

    /// llama.cpp per-slot context: `n_ctx` or the trained context.
    pub fn slot_ctx(&self) -> u32 {
        self.n_ctx.unwrap_or(self.context_length)
    }
}

/// Everything the simulator needs to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Which server to imitate.
    pub flavor: Flavor,
    /// Models served (llama.cpp uses the first one only).
    pub models: Vec<SimModel>,
    /// Ollama `num_ctx` when the request sends none.
    pub default_num_ctx: u32,
    /// Delay between streamed chunks (0 = as fast as possible).
    pub chunk_delay: Duration,
    /// Answer length when nothing else limits it.
    pub default_output_tokens: u32,
}

impl SimConfig {
    /// An Ollama server with these models and the default settings.
    pub fn ollama(models: Vec<SimModel>) -> Self {
        Self {
            flavor: Flavor::Ollama,
            models,
            default_num_ctx: 4096,
            chunk_delay: Duration::ZERO,
            default_output_tokens: 8,
        }
    }

    /// A llama.cpp server serving `model` and the default settings.
    pub fn llamacpp(model: SimModel) -> Self {
        Self {
            flavor: Flavor::LlamaCpp,
            models: vec![model],
            ..Self::ollama(Vec::new())
        }
    }

    /// Reads the binary's YAML (or JSON, a YAML subset) configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses the binary's configuration format:
    /// `{flavor, models: [{name, context_length, ...}], default_num_ctx, chunk_delay_ms, default_output_tokens}`.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let file: FileConfig = serde_yaml::from_str(text)?;
        if file.models.is_empty() {
            return Err(ConfigError::NoModels);
        }
        Ok(Self {
            flavor: file.flavor,
            models: file.models,
            default_num_ctx: file.default_num_ctx,
            chunk_delay: Duration::from_millis(file.chunk_delay_ms),
            default_output_tokens: file.default_output_tokens,
        })
    }
}

/// Errors while loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML for [`SimConfig`].
    #[error("invalid configuration: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// `models` is empty.
    #[error("invalid configuration: `models` must list at least one model")]
    NoModels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    flavor: Flavor,
    models: Vec<SimModel>,
    #[serde(default = "default_num_ctx")]
    default_num_ctx: u32,
    #[serde(default)]
    chunk_delay_ms: u64,
    #[serde(default = "default_output_tokens")]
    default_output_tokens: u32,
}

fn default_num_ctx() -> u32 {
    4096
}

fn default_output_tokens() -> u32 {
    8
}
