//! From the raw file to a [`Config`]: defaults, LiteLLM's meanings, cross-references, and a note
//! for every interpretation so `switchyard check` can say how each value was read.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ConfigError, EnvSource};
use super::lenient::{Number, Seconds};
use super::model::*;
use super::raw::*;
use crate::tokens::TemplateFamily;

/// Default port of the OpenAI-compatible API (LiteLLM's, so clients need no change).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:4000";
/// Default address of the router's gRPC service.
pub const DEFAULT_ROUTER_LISTEN: &str = "127.0.0.1:4001";
const DEFAULT_OLLAMA_BASE: &str = "http://localhost:11434";
const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;

struct Builder<'a> {
    env: &'a dyn EnvSource,
    notes: Vec<String>,
    warnings: Vec<String>,
    groups: Vec<Group>,
    group_ix: HashMap<String, GroupIx>,
    deployments: Vec<Deployment>,
}

fn to_u32(n: Number, key: &str) -> Result<u32, ConfigError> {
    u32::try_from(n.0).map_err(|_| ConfigError::invalid(key, format!("{} is too large", n.0)))
}

fn parse_addr(text: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("\"{text}\" is not an address like 0.0.0.0:4000"),
        )
    })
}

/// Splits LiteLLM's `provider/model` into our provider and the backend's model name.
fn split_model(model: &str, key: &str) -> Result<(Provider, String), ConfigError> {
    let Some((prefix, name)) = model.split_once('/') else {
        return Err(ConfigError::invalid(
            key,
            format!(
                "\"{model}\" has no provider prefix; write e.g. ollama/{model} or openai/{model}"
            ),
        ));
    };
    if name.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "the model name after the provider prefix is empty",
        ));
    }
    let provider = match prefix {
        "ollama" | "ollama_chat" => Provider::Ollama,
        "openai" | "hosted_vllm" | "llamacpp" | "llama_cpp" | "openai_compatible" | "vllm"
        | "lm_studio" => Provider::OpenAi,
        other => {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "provider \"{other}\" is not supported; use ollama/, ollama_chat/ or openai/ (any OpenAI-compatible server)"
                ),
            ));
        }
    };
    Ok((provider, name.to_string()))
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

fn normalise_base(
    base: &str,
    provider: Provider,
    key: &str,
    notes: &mut Vec<String>,
) -> Result<String, ConfigError> {
    let trimmed = base.trim().trim_end_matches('/');
    if trimmed.starts_with("https://") {
        // The backend client is built without TLS: local model servers speak plain HTTP, and a
        // TLS stack would double the gateway's dependencies for a case none of our users has.
        return Err(ConfigError::invalid(
            key,
            format!(
                "\"{base}\": https is not supported by this build; use the server's plain http:// address"
            ),
        ));
    }
    if !trimmed.starts_with("http://") {
        return Err(ConfigError::invalid(
            key,
            format!("\"{base}\" is not an http:// URL"),
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
    fn group(&mut self, name: &str) -> GroupIx {
        if let Some(&g) = self.group_ix.get(name) {
            return g;
        }
        let g = self.groups.len();
        self.groups.push(Group {
            name: name.to_string(),
            deployments: Vec::new(),
            fallbacks: Vec::new(),
            context_fallbacks: Vec::new(),
        });
        self.group_ix.insert(name.to_string(), g);
        g
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

    fn litellm_model(
        &mut self,
        i: usize,
        m: RawLiteLlmModel,
        defaults: &Timeouts,
    ) -> Result<(), ConfigError> {
        let key = format!("model_list[{i}]");
        if m.model_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.model_name"),
                "must not be empty",
            ));
        }
        let p = m.litellm_params;
        let (provider, model) = split_model(&p.model, &format!("{key}.litellm_params.model"))?;
        let base_key = format!("{key}.litellm_params.api_base");
        let api_base = match (&p.api_base, provider) {
            (Some(b), _) => normalise_base(b, provider, &base_key, &mut self.notes)?,
            (None, Provider::Ollama) => {
                let b = self
                    .env
                    .get("OLLAMA_API_BASE")
                    .unwrap_or_else(|| DEFAULT_OLLAMA_BASE.to_string());
                self.notes.push(format!(
                    "{base_key}: not set; using {b} (OLLAMA_API_BASE or Ollama's default)"
                ));
                normalise_base(&b, provider, &base_key, &mut self.notes)?
            }
            (None, Provider::OpenAi) => {
                return Err(ConfigError::invalid(
                    base_key,
                    "required for an OpenAI-compatible deployment",
                ));
            }
        };
        if p.model.starts_with("ollama/") {
            self.notes.push(format!(
                "{key}.litellm_params.model: {}: LiteLLM's ollama/ prefix means /api/generate with a prompt it renders itself; Switchyard sends /api/chat (the model's own template) for both ollama/ and ollama_chat/",
                p.model
            ));
        }
        let info = m.model_info;
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
        } else if let (Some(n), Provider::Ollama) = (p.max_tokens, provider) {
            let k = format!("{key}.litellm_params.max_tokens");
            (
                Some(to_u32(n, &k)?),
                WindowSource::Config("litellm_params.max_tokens".into()),
            )
        } else {
            (None, WindowSource::Unknown)
        };
        match (&source, window) {
            (WindowSource::Config(src), Some(w)) if src == "litellm_params.max_tokens" => self.notes.push(format!(
                "{label}: context window {w} from litellm_params.max_tokens (on an Ollama deployment this is read as the usable context the author verified, not an output limit; sent as options.num_ctx={w} on every request)"
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
        if provider == Provider::OpenAi
            && p.max_tokens.is_some()
            && !matches!(&source, WindowSource::Config(s) if s == "litellm_params.max_tokens")
        {
            self.warnings.push(format!(
                "{key}.litellm_params.max_tokens: on an OpenAI-compatible deployment this is an output limit; not used as the context window (set model_info.max_input_tokens)"
            ));
        }
        let mut timeouts = defaults.clone();
        if let Some(Seconds(t)) = p.timeout {
            timeouts.total = t;
        }
        if let Some(Seconds(t)) = p.stream_timeout {
            timeouts.first_byte = t;
        }
        let mut options = serde_json::Map::new();
        let mut silent_truncation = false;
        let mut continuation = Continuation::Prefill;
        for (k, v) in p.extra {
            if k == "continuation" {
                let ck = format!("{key}.litellm_params.continuation");
                continuation = v.as_str().and_then(Continuation::parse).ok_or_else(|| {
                    ConfigError::invalid(ck, "expected \"prefill\" or \"completions\"")
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
        for (name, v) in [("rpm", p.rpm), ("tpm", p.tpm), ("weight", p.weight)] {
            if v.is_some() {
                self.warnings.push(format!(
                    "{key}.litellm_params.{name}: accepted, not used by the ordered strategy"
                ));
            }
        }
        let api_key = p.api_key;
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
        let id = info
            .as_ref()
            .and_then(|i| i.id.clone())
            .unwrap_or_else(|| format!("{}/{}", m.model_name, model));
        let id = self.unique_id(id);
        let group = self.group(&m.model_name);
        let ix = self.deployments.len();
        self.groups[group].deployments.push(ix);
        self.deployments.push(Deployment {
            id,
            group,
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
        });
        Ok(())
    }

    fn native_deployment(
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
            None => Continuation::Prefill,
            Some(c) => Continuation::parse(c).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.continuation"),
                    "expected \"prefill\" or \"completions\"",
                )
            })?,
        };
        let template = parse_template(d.template.as_deref(), &d.model, &format!("{key}.template"))?;
        let id = self.unique_id(d.id.unwrap_or_else(|| format!("{}/{}", d.group, d.model)));
        let group = self.group(&d.group);
        let ix = self.deployments.len();
        self.groups[group].deployments.push(ix);
        self.deployments.push(Deployment {
            id,
            group,
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
        });
        Ok(())
    }

    fn resolve_group(&self, name: &str, key: &str) -> Result<GroupIx, ConfigError> {
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

    /// Applies one `fallbacks`-style setting; returns `(group, chain)` pairs.
    fn fallback_pairs(
        &self,
        raw: RawFallbacks,
        key: &str,
    ) -> Result<Vec<(GroupIx, Vec<GroupIx>)>, ConfigError> {
        let mut pairs = Vec::new();
        let mut add_map =
            |map: BTreeMap<String, Vec<String>>, key: String| -> Result<(), ConfigError> {
                for (from, to) in map {
                    let g = self.resolve_group(&from, &key)?;
                    let mut chain = Vec::new();
                    for (j, t) in to.iter().enumerate() {
                        let tk = format!("{key}.{from}[{j}]");
                        let tg = self.resolve_group(t, &tk)?;
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
                    let g = self.resolve_group(name, &format!("{key}[{i}]"))?;
                    if resolved.contains(&g) {
                        return Err(ConfigError::invalid(
                            format!("{key}[{i}]"),
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
                    add_map(map, format!("{key}[{i}]"))?;
                }
            }
            RawFallbacks::Map(map) => add_map(map, key.to_string())?,
        }
        Ok(pairs)
    }
}

fn fallbacks_description(raw: &RawFallbacks) -> &'static str {
    match raw {
        RawFallbacks::Chain(_) => {
            "a plain list, read as one ordered chain: each group falls back to every group after it"
        }
        RawFallbacks::Maps(_) | RawFallbacks::Map(_) => {
            "LiteLLM's list of maps: each group falls back to its listed groups, in order"
        }
    }
}

/// Turns a raw file into a validated configuration.
pub fn validate(
    raw: RawConfig,
    ignored: Vec<String>,
    env: &dyn EnvSource,
) -> Result<Config, ConfigError> {
    let mut b = Builder {
        env,
        notes: Vec::new(),
        warnings: ignored
            .into_iter()
            .map(|k| format!("{k}: unknown key, ignored"))
            .collect(),
        groups: Vec::new(),
        group_ix: HashMap::new(),
        deployments: Vec::new(),
    };
    let rs = raw.router_settings.unwrap_or_default();
    let routing_raw = raw.routing.unwrap_or_default();
    let ls = raw.litellm_settings.unwrap_or_default();

    // --- routing settings: ours win over LiteLLM's ---
    let dur = |ours: Option<Seconds>, theirs: Option<Seconds>, default: Duration| {
        ours.or(theirs).map(|s| s.0).unwrap_or(default)
    };
    let timeouts = Timeouts {
        connect: dur(routing_raw.connect_timeout, None, Duration::from_secs(2)),
        first_byte: dur(
            routing_raw.first_byte_timeout,
            rs.stream_timeout,
            Duration::from_secs(120),
        ),
        idle: dur(routing_raw.idle_timeout, None, Duration::from_secs(60)),
        total: dur(
            routing_raw.total_timeout,
            rs.timeout.or(ls.request_timeout),
            Duration::from_secs(600),
        ),
    };
    let strategy_name = routing_raw
        .strategy
        .clone()
        .map(|s| (s, "routing.strategy"))
        .or_else(|| {
            rs.routing_strategy
                .clone()
                .map(|s| (s, "router_settings.routing_strategy"))
        });
    let strategy = match &strategy_name {
        Some((name, key)) => {
            let s = Strategy::parse(name).ok_or_else(|| {
                ConfigError::invalid(
                    *key,
                    format!("unknown strategy \"{name}\" (known: ordered, simple-shuffle, least-busy, latency-based-routing, usage-based-routing, usage-based-routing-v2, warm-first)"),
                )
            })?;
            if s == Strategy::Ordered {
                b.notes.push(format!(
                    "{key}: {name}: candidates are tried in fallback-chain order"
                ));
            } else {
                b.notes.push(format!(
                    "{key}: {name} accepted; in this version candidates are tried in fallback-chain order after the fit and health filters"
                ));
            }
            s
        }
        None => {
            b.notes.push(
                "routing strategy: ordered (default): candidates are tried in fallback-chain order"
                    .into(),
            );
            Strategy::Ordered
        }
    };
    let num = |ours: Option<Number>,
               theirs: Option<Number>,
               key: &str,
               default: u32|
     -> Result<u32, ConfigError> {
        match ours.or(theirs) {
            Some(n) => to_u32(n, key),
            None => Ok(default),
        }
    };
    let num_retries = num(
        routing_raw.num_retries,
        rs.num_retries.or(ls.num_retries),
        "router_settings.num_retries",
        2,
    )?;
    let allowed_fails = num(
        routing_raw.allowed_fails,
        rs.allowed_fails,
        "router_settings.allowed_fails",
        3,
    )?;
    let reserve = num(
        routing_raw.reserve_output_tokens,
        None,
        "routing.reserve_output_tokens",
        512,
    )?;
    let margin_tokens = num(
        routing_raw.safety_margin_tokens,
        None,
        "routing.safety_margin_tokens",
        16,
    )?;
    let margin_ratio = routing_raw.safety_margin_ratio.unwrap_or(0.02);
    if !(0.0..=1.0).contains(&margin_ratio) {
        return Err(ConfigError::invalid(
            "routing.safety_margin_ratio",
            "must be between 0 and 1",
        ));
    }
    let truncation_ratio = routing_raw.truncation_ratio.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&truncation_ratio) {
        return Err(ConfigError::invalid(
            "routing.truncation_ratio",
            "must be between 0 and 1",
        ));
    }
    let routing = RoutingSettings {
        strategy,
        num_retries,
        retry_backoff: dur(
            routing_raw.retry_backoff,
            rs.retry_after,
            Duration::from_millis(50),
        ),
        allowed_fails,
        cooldown_time: dur(
            routing_raw.cooldown_time,
            rs.cooldown_time,
            Duration::from_secs(5),
        ),
        reserve_output_tokens: reserve,
        safety_margin_ratio: margin_ratio as f32,
        safety_margin_tokens: margin_tokens,
        truncation_ratio: truncation_ratio as f32,
        timeouts: timeouts.clone(),
    };
    b.notes.push(format!(
        "retries: {num_retries} extra passes over the candidates after all failed (router_settings.num_retries or routing.num_retries), backoff {:?}",
        routing.retry_backoff
    ));
    b.notes.push(format!(
        "cooldown: a deployment failing {allowed_fails} times within 60s is skipped for {:?}",
        routing.cooldown_time
    ));
    b.notes.push(format!(
        "output reserve: the request's max_tokens, else {reserve} tokens (routing.reserve_output_tokens)"
    ));

    // --- deployments ---
    let litellm = raw.model_list.unwrap_or_default();
    let native = raw.deployments.unwrap_or_default();
    if litellm.is_empty() && native.is_empty() {
        return Err(ConfigError::invalid(
            "model_list",
            "no deployments: add model_list (LiteLLM) or deployments entries",
        ));
    }
    for (i, m) in litellm.into_iter().enumerate() {
        b.litellm_model(i, m, &timeouts)?;
    }
    for (i, d) in native.into_iter().enumerate() {
        b.native_deployment(i, d, &timeouts)?;
    }
    for g in &mut b.groups {
        // Stable sort keeps file order among equal `order` values.
        let deps = &b.deployments;
        g.deployments.sort_by_key(|&d| deps[d].order);
    }

    // --- fallbacks ---
    let fallbacks = match (raw.fallbacks, rs.fallbacks) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "fallbacks",
                "set either fallbacks or router_settings.fallbacks, not both",
            ));
        }
        (Some(f), None) => Some((f, "fallbacks")),
        (None, Some(f)) => Some((f, "router_settings.fallbacks")),
        (None, None) => None,
    };
    if let Some((f, key)) = fallbacks {
        b.notes
            .push(format!("{key}: {}", fallbacks_description(&f)));
        for (g, chain) in b.fallback_pairs(f, key)? {
            b.groups[g].fallbacks = chain;
        }
    }
    if let Some(defaults) = rs.default_fallbacks {
        let mut resolved = Vec::new();
        for (i, name) in defaults.iter().enumerate() {
            resolved
                .push(b.resolve_group(name, &format!("router_settings.default_fallbacks[{i}]"))?);
        }
        for (gi, g) in b.groups.iter_mut().enumerate() {
            if g.fallbacks.is_empty() {
                g.fallbacks = resolved.iter().copied().filter(|&x| x != gi).collect();
            }
        }
    }
    let cw = match (raw.context_window_fallbacks, rs.context_window_fallbacks) {
        (Some(f), _) => Some((f, "context_window_fallbacks")),
        (None, Some(f)) => Some((f, "router_settings.context_window_fallbacks")),
        (None, None) => None,
    };
    if let Some((f, key)) = cw {
        for (g, chain) in b.fallback_pairs(f, key)? {
            b.groups[g].context_fallbacks = chain;
        }
    }
    for g in &b.groups {
        let chain: Vec<&str> = g
            .fallbacks
            .iter()
            .map(|&f| b.groups[f].name.as_str())
            .collect();
        let window = g
            .deployments
            .iter()
            .filter_map(|&d| b.deployments[d].context_window)
            .max()
            .map(|w| w.to_string())
            .unwrap_or_else(|| "unknown".into());
        b.notes.push(format!(
            "group {}: {} deployment(s), largest window {window}, falls back to [{}]",
            g.name,
            g.deployments.len(),
            chain.join(", ")
        ));
    }
    if let Some(Number(n)) = rs.max_fallbacks {
        b.notes.push(format!(
            "router_settings.max_fallbacks: {n} accepted (every group in the chain is tried)"
        ));
    }
    if rs.enable_pre_call_checks.is_some() {
        b.notes.push("router_settings.enable_pre_call_checks: always on in Switchyard (prompt + output reserve must fit)".into());
    }

    // --- settings parsed but not used yet ---
    for (key, present) in [("litellm_settings.callbacks", ls.callbacks.is_some())] {
        if present {
            b.warnings
                .push(format!("{key}: accepted, not used by this version"));
        }
    }

    // --- shared state, ledger, prober ---
    let st = raw.state.unwrap_or_default();
    let redis_url = match (st.redis_url, rs.redis_url, rs.redis_host) {
        (Some(u), _, _) => Some((u, "state.redis_url")),
        (None, Some(u), _) => Some((u, "router_settings.redis_url")),
        (None, None, Some(host)) => {
            let port = rs.redis_port.map(|p| p.0).unwrap_or(6379);
            let auth = rs
                .redis_password
                .map(|p| format!(":{p}@"))
                .unwrap_or_default();
            Some((
                format!("redis://{auth}{host}:{port}"),
                "router_settings.redis_host",
            ))
        }
        _ => None,
    };
    if let Some((u, key)) = &redis_url {
        if !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://")) {
            return Err(ConfigError::invalid(*key, "expected a redis:// URL"));
        }
        b.notes.push(format!(
            "{key}: shared state (health, cooldowns, counters) in Redis"
        ));
    } else {
        b.notes.push(
            "state: no Redis configured; health and counters are kept in this process".into(),
        );
    }
    let state = StateSettings {
        redis_url: redis_url.map(|(u, _)| u),
        key_prefix: st.key_prefix.unwrap_or_else(|| "switchyard".into()),
    };
    let lr = raw.ledger.unwrap_or_default();
    let database_url = lr.database_url.or_else(|| {
        raw.general_settings
            .as_ref()
            .and_then(|g| g.database_url.clone())
    });
    if let Some(u) = &database_url
        && !(u.starts_with("postgres://")
            || u.starts_with("postgresql://")
            || u.starts_with("sqlite:"))
    {
        return Err(ConfigError::invalid(
            "ledger.database_url",
            "expected postgres://… or sqlite:…",
        ));
    }
    let ledger = LedgerSettings {
        database_url,
        listen: parse_addr(
            lr.listen.as_deref().unwrap_or("127.0.0.1:4002"),
            "ledger.listen",
        )?,
        address: lr.address,
        spool_path: lr.spool_path,
        spool_max_bytes: lr.spool_max_bytes.map(|n| n.0).unwrap_or(256 * 1024 * 1024),
    };
    let pr = raw.prober.unwrap_or_default();
    let prober = ProberSettings {
        enabled: pr.enabled.unwrap_or(true),
        interval: pr.interval.map(|s| s.0).unwrap_or(Duration::from_secs(5)),
        timeout: pr.timeout.map(|s| s.0).unwrap_or(Duration::from_secs(2)),
    };
    if prober.interval.is_zero() {
        return Err(ConfigError::invalid(
            "prober.interval",
            "must be greater than zero",
        ));
    }

    // --- services ---
    let gw = raw.gateway.unwrap_or_default();
    let listen = parse_addr(
        gw.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
        "gateway.listen",
    )?;
    let router_raw = raw.router.unwrap_or_default();
    let router_listen = parse_addr(
        router_raw
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_ROUTER_LISTEN),
        "router.listen",
    )?;
    let metrics_listen = router_raw
        .metrics_listen
        .as_deref()
        .map(|a| parse_addr(a, "router.metrics_listen"))
        .transpose()?;
    let router_address = gw
        .router_address
        .unwrap_or_else(|| format!("http://{router_listen}"));
    let max_body = gw.max_body_bytes.map(|n| n.0).unwrap_or(DEFAULT_MAX_BODY);
    let max_body_bytes = usize::try_from(max_body)
        .map_err(|_| ConfigError::invalid("gateway.max_body_bytes", "too large"))?;
    let sse_keepalive = gw
        .sse_keepalive
        .map(|s| s.0)
        .unwrap_or(Duration::from_secs(10));
    if sse_keepalive.is_zero() {
        return Err(ConfigError::invalid(
            "gateway.sse_keepalive",
            "must be greater than zero",
        ));
    }
    let master_key = gw
        .master_key
        .or_else(|| {
            raw.general_settings
                .as_ref()
                .and_then(|g| g.master_key.clone())
        })
        .filter(|k| !k.is_empty());
    match &master_key {
        Some(k) if k.len() < 8 => {
            return Err(ConfigError::invalid(
                "general_settings.master_key",
                "too short: use at least 8 characters",
            ));
        }
        Some(_) => b
            .notes
            .push("master key set: every API route needs it (health endpoints stay open)".into()),
        None => b
            .notes
            .push("no master key: the API is open to anyone who can reach it".into()),
    }
    let gateway = GatewaySettings {
        listen,
        router_address,
        max_body_bytes,
        sse_keepalive,
        master_key,
        metrics_require_key: gw.metrics_require_key.unwrap_or(true),
    };

    Ok(Config::new(
        gateway,
        RouterServiceSettings {
            listen: router_listen,
            metrics_listen,
        },
        (state, ledger, prober),
        routing,
        b.groups,
        b.deployments,
        b.notes,
        b.warnings,
    ))
}
