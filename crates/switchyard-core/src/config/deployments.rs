//! Reading deployments and fallback chains: LiteLLM's `model_list` entries and Switchyard's
//! native `deployments`, with a note for every interpretation (which key gave the window, what
//! was passed to Ollama), and the `fallbacks` forms resolved to group indices.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::discovery::is_wildcard;
use super::error::{ConfigError, EnvSource};
use super::lenient::{Number, Seconds};
use super::model::*;
use super::providers::{self, Route};
use super::raw::*;
use super::tls;
use crate::tokens::TemplateFamily;

const DEFAULT_OLLAMA_BASE: &str = "http://localhost:11434";

/// An Ollama `litellm_params.max_tokens` below this is an output limit (LiteLLM's meaning), not
/// the context window the seed configuration uses it for: no chat model Ollama serves has a
/// window this small, and Switchyard's default output reserve alone is 512 tokens.
pub(super) const MIN_OLLAMA_WINDOW: u32 = 1024;

/// The window of a hosted link (OpenAI, Groq, …) whose config gives none: every current chat
/// model of those providers holds at least this; `check` says to set the real one.
pub(super) const HOSTED_DEFAULT_WINDOW: u32 = 8192;

pub(super) struct Builder<'a> {
    pub(super) env: &'a dyn EnvSource,
    pub(super) notes: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) groups: Vec<Group>,
    pub(super) group_ix: HashMap<String, GroupIx>,
    pub(super) deployments: Vec<Deployment>,
    /// Wildcard entries, expanded once the hosts' models are known.
    pub(super) discovery: Vec<super::DiscoverySpec>,
    pub(super) unservable: Vec<Unservable>,
}

pub(super) fn to_u32(n: Number, key: &str) -> Result<u32, ConfigError> {
    u32::try_from(n.0).map_err(|_| ConfigError::invalid(key, format!("{} is too large", n.0)))
}

pub(super) fn parse_addr(text: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("\"{text}\" is not an address like 0.0.0.0:4000"),
        )
    })
}

fn parse_template(
    configured: Option<&str>,
    model: &str,
    key: &str,
) -> Result<TemplateFamily, ConfigError> {
    match configured {
        Some(name) => TemplateFamily::parse(name).ok_or_else(|| {
            ConfigError::invalid(
                key,
                format!("\"{name}\" is not one of: llama3, mistral, chatml"),
            )
        }),
        None => Ok(TemplateFamily::from_model_name(model)),
    }
}

fn parse_mode(configured: Option<&str>, key: &str) -> Result<Mode, ConfigError> {
    match configured {
        None => Ok(Mode::Chat),
        Some(m) => Mode::parse(m).ok_or_else(|| {
            ConfigError::invalid(
                key,
                format!("\"{m}\" is not a mode Switchyard serves; use chat or embedding"),
            )
        }),
    }
}

fn normalise_base(
    base: &str,
    provider: Provider,
    key: &str,
    notes: &mut Vec<String>,
) -> Result<String, ConfigError> {
    let trimmed = base.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(ConfigError::invalid(
            key,
            format!("\"{base}\" is not an http:// or https:// URL"),
        ));
    }
    if let Some(stripped) = trimmed.strip_suffix("/v1") {
        let why = match provider {
            Provider::Ollama => "Ollama's native API lives at the root, not under /v1",
            Provider::OpenAi => "Switchyard appends /v1/chat/completions itself",
        };
        notes.push(format!("{key}: trailing /v1 removed ({why})"));
        return Ok(stripped.to_string());
    }
    Ok(trimmed.to_string())
}

impl<'a> Builder<'a> {
    /// The group named `name`, created with `mode` if new; a deployment of another mode than
    /// its group's is an error (`key` names it).
    fn group(&mut self, name: &str, mode: Mode, key: &str) -> Result<GroupIx, ConfigError> {
        if let Some(&g) = self.group_ix.get(name) {
            let have = self.groups[g].mode;
            if have != mode {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "model group \"{name}\" already serves {} and this deployment serves {}; one group cannot mix them",
                        have.as_str(),
                        mode.as_str()
                    ),
                ));
            }
            return Ok(g);
        }
        let g = self.groups.len();
        self.groups.push(Group {
            name: name.to_string(),
            deployments: Vec::new(),
            fallbacks: Vec::new(),
            context_fallbacks: Vec::new(),
            mode,
            spill_after: None,
        });
        self.group_ix.insert(name.to_string(), g);
        Ok(g)
    }

    /// Fallbacks lead only to groups of the same mode: a chat request is never sent to an
    /// embedding model, or the reverse (such links, from `default_fallbacks` say, are dropped
    /// with a note).
    pub(super) fn drop_cross_mode_fallbacks(&mut self) {
        let modes: Vec<Mode> = self.groups.iter().map(|g| g.mode).collect();
        for g in &mut self.groups {
            let mode = g.mode;
            let before = g.fallbacks.len() + g.context_fallbacks.len();
            g.fallbacks.retain(|&f| modes.get(f) == Some(&mode));
            g.context_fallbacks.retain(|&f| modes.get(f) == Some(&mode));
            if g.fallbacks.len() + g.context_fallbacks.len() != before {
                self.notes.push(format!(
                    "group {}: fallbacks to groups that do not serve {} were dropped",
                    g.name,
                    mode.as_str()
                ));
            }
        }
    }

    fn unique_id(&self, wanted: String) -> String {
        if !self.deployments.iter().any(|d| d.id == wanted) {
            return wanted;
        }
        (2..)
            .map(|n| format!("{wanted}#{n}"))
            .find(|c| !self.deployments.iter().any(|d| &d.id == c))
            .unwrap_or(wanted)
    }

    pub(super) fn litellm_model(
        &mut self,
        i: usize,
        m: RawLiteLlmModel,
        defaults: &Timeouts,
        tls_defaults: &tls::TlsDefaults,
    ) -> Result<(), ConfigError> {
        let key = format!("model_list[{i}]");
        if m.model_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.model_name"),
                "must not be empty",
            ));
        }
        let p = m.litellm_params;
        let model_key = format!("{key}.litellm_params.model");
        let route =
            providers::classify(&p.model).map_err(|r| ConfigError::invalid(&model_key, r))?;
        let (provider, model, hosted) = match route {
            Route::Ollama(n) => (Provider::Ollama, n, None),
            Route::Local(n) => (Provider::OpenAi, n, None),
            Route::Compatible { model, hosted } => {
                if !p.model.contains('/') {
                    self.notes.push(format!(
                        "{model_key}: bare name \"{}\": LiteLLM sends it to OpenAI's API (openai/{})",
                        p.model, p.model
                    ));
                }
                (
                    Provider::OpenAi,
                    model,
                    p.api_base.is_none().then_some(hosted),
                )
            }
            Route::Hosted { model, hosted } => (Provider::OpenAi, model, Some(hosted)),
            Route::Unservable(reason) => {
                self.set_aside(&m.model_name, key, &p.model, reason);
                return Ok(());
            }
        };
        if hosted.is_some() && is_wildcard(&model) {
            let reason = format!(
                "\"{}\" is a wildcard route to OpenAI's hosted API; discovery lists servers of yours (give openai/* an api_base)",
                p.model
            );
            self.set_aside(&m.model_name, key, &p.model, reason);
            return Ok(());
        }
        let info = m.model_info;
        let mode_key = format!("{key}.model_info.mode");
        let mode = match parse_mode(info.as_ref().and_then(|i| i.mode.as_deref()), &mode_key) {
            Ok(mode) => mode,
            Err(e) => {
                self.set_aside(&m.model_name, key, &p.model, e.to_string());
                return Ok(());
            }
        };
        let base_key = format!("{key}.litellm_params.api_base");
        let api_base = match (&p.api_base, provider, hosted) {
            (Some(b), _, _) => normalise_base(b, provider, &base_key, &mut self.notes)?,
            (None, Provider::Ollama, _) => {
                let b = self
                    .env
                    .get("OLLAMA_API_BASE")
                    .unwrap_or_else(|| DEFAULT_OLLAMA_BASE.to_string());
                self.notes.push(format!(
                    "{base_key}: not set; using {b} (OLLAMA_API_BASE or Ollama's default)"
                ));
                normalise_base(&b, provider, &base_key, &mut self.notes)?
            }
            (None, Provider::OpenAi, Some(h)) => {
                self.notes.push(format!(
                    "{base_key}: not set; {}/ means {} (LiteLLM's default)",
                    h.prefix, h.base
                ));
                normalise_base(h.base, provider, &base_key, &mut self.notes)?
            }
            (None, Provider::OpenAi, None) => {
                return Err(ConfigError::invalid(
                    base_key,
                    "required for an OpenAI-compatible deployment",
                ));
            }
        };
        let mut api_key = p.api_key.clone();
        if let Some(h) = hosted
            && api_key.is_none()
        {
            match h
                .key_vars
                .iter()
                .find_map(|v| self.env.get(v).filter(|k| !k.is_empty()).map(|k| (v, k)))
            {
                Some((var, k)) => {
                    self.notes.push(format!(
                        "{key}.litellm_params.api_key: not set; using ${var} (LiteLLM reads it for {}/)",
                        h.prefix
                    ));
                    api_key = Some(k);
                }
                None => {
                    self.set_aside(
                        &m.model_name,
                        key,
                        &p.model,
                        format!(
                            "a hosted {}/ model with no api_key, and {} is not set: LiteLLM would call {} without a key",
                            h.prefix,
                            h.key_vars.join(" / "),
                            h.base
                        ),
                    );
                    return Ok(());
                }
            }
        }
        let tls = tls::litellm(&key, &p, tls_defaults, &api_base, &mut self.notes)?;
        let label = format!(
            "{} ({} via {} at {})",
            m.model_name,
            model,
            provider.as_str(),
            api_base
        );
        let (window, source) = if let Some(n) = info.as_ref().and_then(|i| i.max_input_tokens) {
            let k = format!("{key}.model_info.max_input_tokens");
            (
                Some(to_u32(n, &k)?),
                WindowSource::Config("model_info.max_input_tokens".into()),
            )
        } else if let Some(n) = p.num_ctx {
            let k = format!("{key}.litellm_params.num_ctx");
            (
                Some(to_u32(n, &k)?),
                WindowSource::Config("litellm_params.num_ctx".into()),
            )
        } else if let (Some(n), Provider::Ollama) = (p.max_tokens, provider)
            && n.0 >= u64::from(MIN_OLLAMA_WINDOW)
        {
            let k = format!("{key}.litellm_params.max_tokens");
            (
                Some(to_u32(n, &k)?),
                WindowSource::Config("litellm_params.max_tokens".into()),
            )
        } else if hosted.is_some() {
            (
                Some(HOSTED_DEFAULT_WINDOW),
                WindowSource::Config(format!(
                    "the default for hosted links ({HOSTED_DEFAULT_WINDOW}; set model_info.max_input_tokens to the model's real window)"
                )),
            )
        } else {
            (None, WindowSource::Unknown)
        };
        match (&source, window) {
            (WindowSource::Config(src), Some(w)) if src == "litellm_params.max_tokens" => self.notes.push(format!(
                "{label}: context window {w} from litellm_params.max_tokens (on an Ollama deployment a value of {MIN_OLLAMA_WINDOW} or more is read as the usable context the author verified, not an output limit; sent as options.num_ctx={w} on every request)"
            )),
            (WindowSource::Config(src), Some(w)) => {
                let sent = if provider == Provider::Ollama {
                    format!("; sent as options.num_ctx={w} on every request")
                } else {
                    String::new()
                };
                self.notes.push(format!("{label}: context window {w} from {src}{sent}"));
            }
            _ => self.notes.push(format!(
                "{label}: context window not configured; read from the backend when it answers, until then requests are not filtered by fit for it"
            )),
        }
        let max_output_tokens = match p.max_tokens {
            Some(n) if !matches!(&source, WindowSource::Config(s) if s == "litellm_params.max_tokens") =>
            {
                let n = to_u32(n, &format!("{key}.litellm_params.max_tokens"))?;
                let why = if provider == Provider::Ollama && n < MIN_OLLAMA_WINDOW {
                    format!(
                        "below {MIN_OLLAMA_WINDOW} tokens, too small to be a context window (no model Ollama serves has one that small, and the default output reserve alone is 512)"
                    )
                } else if provider == Provider::Ollama {
                    "the context window is configured by a key that takes precedence, so this is LiteLLM's output limit".to_string()
                } else {
                    "on an OpenAI-compatible deployment it is LiteLLM's output limit, not the context window (that is model_info.max_input_tokens)".to_string()
                };
                self.notes.push(format!(
                    "{label}: litellm_params.max_tokens {n} read as an output limit: {why}; sent as the output limit of requests that set none"
                ));
                Some(n)
            }
            _ => None,
        };
        let mut timeouts = defaults.clone();
        if let Some(Seconds(t)) = p.timeout {
            timeouts.total = t;
        }
        if let Some(Seconds(t)) = p.stream_timeout {
            timeouts.first_byte = t;
        }
        let mut options = serde_json::Map::new();
        let mut silent_truncation = false;
        let mut continuation = Continuation::Auto;
        for (k, v) in p.extra {
            if k == "continuation" {
                let ck = format!("{key}.litellm_params.continuation");
                continuation = v.as_str().and_then(Continuation::parse).ok_or_else(|| {
                    ConfigError::invalid(ck, "expected \"auto\", \"prefill\" or \"completions\"")
                })?;
            } else if k == "truncate" && provider == Provider::Ollama {
                silent_truncation = v.as_bool().unwrap_or(false);
                self.notes.push(format!("{key}.litellm_params.truncate: sent as Ollama's top-level truncate={silent_truncation}"));
            } else if provider == Provider::Ollama {
                self.notes.push(format!(
                    "{key}.litellm_params.{k}: passed to Ollama as options.{k}"
                ));
                options.insert(k, v);
            } else {
                self.warnings.push(format!(
                    "{key}.litellm_params.{k}: not used for OpenAI-compatible deployments"
                ));
            }
        }
        let capacity = super::capacity::capacity(
            &format!("{key}.litellm_params"),
            &label,
            p.max_parallel_requests,
            p.rpm,
            p.tpm,
            p.weight,
            &mut self.notes,
        )?;
        header_safe_key(&format!("{key}.litellm_params.api_key"), api_key.as_deref())?;
        let order = match p.order {
            Some(n) => to_u32(n, &format!("{key}.litellm_params.order"))?,
            None => u32::MAX,
        };
        let tokenizer = info.as_ref().and_then(|i| i.tokenizer.clone());
        let template = parse_template(
            info.as_ref().and_then(|i| i.template.as_deref()),
            &model,
            &format!("{key}.model_info.template"),
        )?;
        let wildcard = is_wildcard(&model);
        let id = info
            .as_ref()
            .and_then(|i| i.id.clone())
            .unwrap_or_else(|| format!("{}/{}", m.model_name, model));
        let id = if wildcard { id } else { self.unique_id(id) };
        if mode == Mode::Embedding && !wildcard {
            self.notes.push(format!(
                "{label}: an embedding model (model_info.mode: embedding): served on /v1/embeddings, routed by its longest input; chat requests to it get 400"
            ));
        }
        let (discovery, configured_template) = match info {
            Some(i) => {
                let t = i.template.as_deref().and_then(TemplateFamily::parse);
                (i.discovery, t)
            }
            None => (None, None),
        };
        let deployment = Deployment {
            id,
            group: 0,
            provider,
            model,
            api_base,
            api_key,
            context_window: window,
            window_source: source,
            keep_alive: p.keep_alive,
            options,
            silent_truncation,
            continuation,
            tokenizer,
            template,
            order,
            timeouts,
            mode,
            capacity,
            tls,
            hosted: hosted.is_some(),
            max_output_tokens,
            discovered: None,
        };
        if wildcard {
            return self.wildcard(
                &key,
                &m.model_name,
                &format!("{key}.model_name"),
                deployment,
                discovery,
                configured_template,
            );
        }
        self.discovery_on_plain_entry(&format!("{key}.model_info"), &discovery);
        self.push_deployment(deployment, &m.model_name, &key)
    }

    /// Adds a (non-wildcard) deployment to its group, creating the group if new.
    fn push_deployment(
        &mut self,
        mut deployment: Deployment,
        group: &str,
        key: &str,
    ) -> Result<(), ConfigError> {
        let g = self.group(group, deployment.mode, key)?;
        deployment.group = g;
        let ix = self.deployments.len();
        self.groups[g].deployments.push(ix);
        self.deployments.push(deployment);
        Ok(())
    }

    /// Lists an entry that cannot be served; the rest of the file still loads.
    fn set_aside(&mut self, group: &str, key: String, model: &str, reason: String) {
        self.unservable.push(Unservable {
            group: group.to_string(),
            key,
            model: model.to_string(),
            reason,
        });
    }

    pub(super) fn native_deployment(
        &mut self,
        i: usize,
        d: RawDeployment,
        defaults: &Timeouts,
    ) -> Result<(), ConfigError> {
        let key = format!("deployments[{i}]");
        if d.group.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.group"),
                "must not be empty",
            ));
        }
        let provider = match d.provider.as_str() {
            "ollama" => Provider::Ollama,
            "openai" | "llamacpp" | "llama.cpp" => Provider::OpenAi,
            other => {
                return Err(ConfigError::invalid(
                    format!("{key}.provider"),
                    format!("\"{other}\" is not one of: ollama, openai"),
                ));
            }
        };
        let base_key = format!("{key}.api_base");
        let api_base = match d.api_base {
            Some(b) => normalise_base(&b, provider, &base_key, &mut self.notes)?,
            None if provider == Provider::Ollama => DEFAULT_OLLAMA_BASE.to_string(),
            None => {
                return Err(ConfigError::invalid(
                    base_key,
                    "required for an OpenAI-compatible deployment",
                ));
            }
        };
        let window = d
            .context_window
            .map(|n| to_u32(n, &format!("{key}.context_window")))
            .transpose()?;
        let label = format!(
            "{} ({} via {} at {})",
            d.group,
            d.model,
            provider.as_str(),
            api_base
        );
        let source = match window {
            Some(w) => {
                self.notes
                    .push(format!("{label}: context window {w} from context_window"));
                WindowSource::Config("context_window".into())
            }
            None => {
                self.notes.push(format!(
                    "{label}: context window not configured; read from the backend"
                ));
                WindowSource::Unknown
            }
        };
        let order = match d.order {
            Some(n) => to_u32(n, &format!("{key}.order"))?,
            None => u32::MAX,
        };
        let continuation = match d.continuation.as_deref() {
            None => Continuation::Auto,
            Some(c) => Continuation::parse(c).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.continuation"),
                    "expected \"auto\", \"prefill\" or \"completions\"",
                )
            })?,
        };
        let template = parse_template(d.template.as_deref(), &d.model, &format!("{key}.template"))?;
        let configured_template = d.template.as_deref().and_then(TemplateFamily::parse);
        let tls = tls::native(&key, d.tls.as_ref(), &api_base, &mut self.notes)?;
        header_safe_key(&format!("{key}.api_key"), d.api_key.as_deref())?;
        let wildcard = is_wildcard(&d.model);
        let id = d.id.unwrap_or_else(|| format!("{}/{}", d.group, d.model));
        let id = if wildcard { id } else { self.unique_id(id) };
        let mode = parse_mode(d.mode.as_deref(), &format!("{key}.mode"))?;
        if mode == Mode::Embedding && !wildcard {
            self.notes.push(format!(
                "{label}: an embedding model (mode: embedding): served on /v1/embeddings, routed by its longest input; chat requests to it get 400"
            ));
        }
        let capacity = super::capacity::capacity(
            &key,
            &label,
            d.max_parallel_requests,
            d.rpm,
            d.tpm,
            d.weight,
            &mut self.notes,
        )?;
        let deployment = Deployment {
            id,
            group: 0,
            provider,
            model: d.model,
            api_base,
            api_key: d.api_key,
            context_window: window,
            window_source: source,
            keep_alive: d.keep_alive,
            options: d
                .options
                .map(|o| o.into_iter().collect())
                .unwrap_or_default(),
            silent_truncation: d.silent_truncation.unwrap_or(false),
            continuation,
            template,
            tokenizer: d.tokenizer,
            order,
            timeouts: defaults.clone(),
            mode,
            capacity,
            tls,
            hosted: false,
            max_output_tokens: None,
            discovered: None,
        };
        if wildcard {
            return self.wildcard(
                &key,
                &d.group,
                &format!("{key}.group"),
                deployment,
                d.discovery,
                configured_template,
            );
        }
        self.discovery_on_plain_entry(&key, &d.discovery);
        self.push_deployment(deployment, &d.group, &key)
    }

    pub(super) fn resolve_group(&self, name: &str, key: &str) -> Result<GroupIx, ConfigError> {
        self.group_ix.get(name).copied().ok_or_else(|| {
            let known: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            ConfigError::invalid(
                key,
                format!(
                    "unknown model group \"{name}\" (groups: {})",
                    known.join(", ")
                ),
            )
        })
    }

    /// The note for a fallback link to a name that is no group because every deployment of it
    /// was set aside as unservable; `None` when the name is unknown or a group.
    fn unservable_link(&self, name: &str, key: &str) -> Option<String> {
        if self.group_ix.contains_key(name) {
            return None;
        }
        let u = self.unservable.iter().find(|u| u.group == name)?;
        Some(format!(
            "{key}: link \"{name}\" skipped: its deployments are not served ({}: {})",
            u.model, u.reason
        ))
    }

    /// Whether a fallback link names an unservable group (noted, then skipped).
    pub(super) fn skips_link(&mut self, name: &str, key: &str) -> bool {
        match self.unservable_link(name, key) {
            Some(note) => {
                self.notes.push(note);
                true
            }
            None => false,
        }
    }

    /// Applies one `fallbacks`-style setting; returns `(group, chain)` pairs. Links to groups
    /// whose deployments are all unservable are skipped with a note.
    pub(super) fn fallback_pairs(
        &mut self,
        raw: RawFallbacks,
        key: &str,
    ) -> Result<Vec<(GroupIx, Vec<GroupIx>)>, ConfigError> {
        let mut pairs = Vec::new();
        let mut skipped = Vec::new();
        let mut add_map = |this: &Self,
                           map: BTreeMap<String, Vec<String>>,
                           key: String,
                           skipped: &mut Vec<String>|
         -> Result<(), ConfigError> {
            for (from, to) in map {
                if let Some(note) = this.unservable_link(&from, &key) {
                    skipped.push(note);
                    continue;
                }
                let g = this.resolve_group(&from, &key)?;
                let mut chain = Vec::new();
                for (j, t) in to.iter().enumerate() {
                    let tk = format!("{key}.{from}[{j}]");
                    if let Some(note) = this.unservable_link(t, &tk) {
                        skipped.push(note);
                        continue;
                    }
                    let tg = this.resolve_group(t, &tk)?;
                    if tg == g {
                        return Err(ConfigError::invalid(
                            tk,
                            format!("\"{from}\" cannot fall back to itself"),
                        ));
                    }
                    if !chain.contains(&tg) {
                        chain.push(tg);
                    }
                }
                pairs.push((g, chain));
            }
            Ok(())
        };
        match raw {
            RawFallbacks::Chain(list) => {
                let mut resolved = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    let k = format!("{key}[{i}]");
                    if let Some(note) = self.unservable_link(name, &k) {
                        skipped.push(note);
                        continue;
                    }
                    let g = self.resolve_group(name, &k)?;
                    if resolved.contains(&g) {
                        return Err(ConfigError::invalid(
                            k,
                            format!("\"{name}\" appears twice in the chain"),
                        ));
                    }
                    resolved.push(g);
                }
                for (i, &g) in resolved.iter().enumerate() {
                    pairs.push((g, resolved[i + 1..].to_vec()));
                }
            }
            RawFallbacks::Maps(maps) => {
                for (i, map) in maps.into_iter().enumerate() {
                    add_map(self, map, format!("{key}[{i}]"), &mut skipped)?;
                }
            }
            RawFallbacks::Map(map) => add_map(self, map, key.to_string(), &mut skipped)?,
        }
        self.notes.extend(skipped);
        Ok(pairs)
    }

    /// Deployments sharing an `api_base` share one connection pool, so they must agree on TLS.
    pub(super) fn check_shared_hosts(&self) -> Result<(), ConfigError> {
        let mut seen: HashMap<&str, (&TlsSettings, &str)> = HashMap::new();
        for d in &self.deployments {
            match seen.get(d.api_base.as_str()) {
                Some((tls, other)) if *tls != &d.tls => {
                    return Err(ConfigError::invalid(
                        d.id.clone(),
                        format!(
                            "TLS settings differ from those of {other}, which shares api_base {}; one host takes one setting",
                            d.api_base
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(&d.api_base, (&d.tls, &d.id));
                }
            }
        }
        Ok(())
    }
}

pub(super) fn fallbacks_description(raw: &RawFallbacks) -> &'static str {
    match raw {
        RawFallbacks::Chain(_) => {
            "a plain list, read as one ordered chain: each group falls back to every group after it"
        }
        RawFallbacks::Maps(_) | RawFallbacks::Map(_) => {
            "LiteLLM's list of maps: each group falls back to its listed groups, in order"
        }
    }
}

/// An `api_key` travels as `Authorization: Bearer <key>`: a control character (a newline pasted
/// with it, say) cannot be sent in a header, so it is refused here, naming the key, instead of
/// failing every attempt.
fn header_safe_key(key: &str, api_key: Option<&str>) -> Result<(), ConfigError> {
    match api_key {
        Some(k) if k.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) => {
            Err(ConfigError::invalid(
                key,
                "contains a control character (a newline?): it cannot be sent in an HTTP header",
            ))
        }
        _ => Ok(()),
    }
}
