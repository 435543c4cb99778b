//! From the raw file to a [`Config`]: defaults, LiteLLM's meanings, cross-references, and a note
//! for every interpretation so `switchyard check` can say how each value was read.

use std::collections::HashMap;
use std::time::Duration;

use super::deployments::{Builder, fallbacks_description, parse_addr, to_u32};
use super::error::{ConfigError, EnvSource};
use super::lenient::{Number, Seconds};
use super::model::*;
use super::raw::*;
use super::tls::TlsDefaults;

/// Default port of the OpenAI-compatible API (LiteLLM's, so clients need no change).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:4000";
/// Default address of the router's gRPC service.
pub const DEFAULT_ROUTER_LISTEN: &str = "127.0.0.1:4001";
const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;

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
        discovery: Vec::new(),
        unservable: Vec::new(),
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
            b.notes.push(format!("{key}: {name}: {}", strategy_note(s)));
            s
        }
        None => {
            b.notes.push(format!(
                "routing strategy: ordered (default): {}",
                strategy_note(Strategy::Ordered)
            ));
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
        backend_tokenize_timeout: dur(
            routing_raw.backend_tokenize_timeout,
            None,
            Duration::from_millis(250),
        ),
        timeouts: timeouts.clone(),
        queue: super::capacity::queue_settings(
            routing_raw.queue_timeout,
            routing_raw.max_queue_depth,
            routing_raw.spill_after,
            routing_raw.queue_recheck,
            &mut b.notes,
        )?,
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
    let tls_defaults = TlsDefaults {
        ssl_verify: ls.ssl_verify.clone(),
        ssl_certificate: ls.ssl_certificate.clone(),
    };
    for (i, m) in litellm.into_iter().enumerate() {
        b.litellm_model(i, m, &timeouts, &tls_defaults)?;
    }
    for (i, d) in native.into_iter().enumerate() {
        b.native_deployment(i, d, &timeouts)?;
    }
    if b.deployments.is_empty() && b.discovery.is_empty() {
        let listed: Vec<String> = b
            .unservable
            .iter()
            .map(|u| format!("{} ({}): {}", u.key, u.model, u.reason))
            .collect();
        return Err(ConfigError::invalid(
            "model_list",
            format!("no deployment can be served: {}", listed.join("; ")),
        ));
    }
    b.check_shared_hosts()?;
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
            let key = format!("router_settings.default_fallbacks[{i}]");
            if b.skips_link(name, &key) {
                continue;
            }
            resolved.push(b.resolve_group(name, &key)?);
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
    b.drop_cross_mode_fallbacks();
    super::capacity::apply_group_settings(&mut b.groups, raw.groups, &mut b.notes)?;
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
        metrics_listen: lr
            .metrics_listen
            .as_deref()
            .map(|a| parse_addr(a, "ledger.metrics_listen"))
            .transpose()?,
    };
    let pr = raw.prober.unwrap_or_default();
    let prober = ProberSettings {
        enabled: pr.enabled.unwrap_or(true),
        interval: pr.interval.map(|s| s.0).unwrap_or(Duration::from_secs(5)),
        timeout: pr.timeout.map(|s| s.0).unwrap_or(Duration::from_secs(2)),
        metrics_listen: pr
            .metrics_listen
            .as_deref()
            .map(|a| parse_addr(a, "prober.metrics_listen"))
            .transpose()?,
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
    let internal_secret = internal_secret(
        b.env,
        gw.internal_secret.or_else(|| {
            raw.general_settings
                .as_ref()
                .and_then(|g| g.internal_secret.clone())
        }),
        master_key.is_some(),
        &mut b.notes,
    )?;
    let gateway = GatewaySettings {
        listen,
        router_address,
        max_body_bytes,
        sse_keepalive,
        master_key,
        internal_secret,
        metrics_require_key: gw.metrics_require_key.unwrap_or(true),
        max_messages: match gw.max_messages.map(|n| n.0) {
            None => 4096,
            Some(0) => {
                return Err(ConfigError::invalid(
                    "gateway.max_messages",
                    "must be at least 1",
                ));
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        },
        header_read_timeout: positive(gw.header_read_timeout, 10, "gateway.header_read_timeout")?,
        body_read_timeout: positive(gw.body_read_timeout, 30, "gateway.body_read_timeout")?,
        shutdown_grace: gw.shutdown_grace.map_or(Duration::from_secs(30), |s| s.0),
        cors_allow_origins: cors_origins(gw.cors_allow_origins)?,
    };

    let discovery = std::mem::take(&mut b.discovery);
    let mut config = Config::new(
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
    );
    config.discovery = discovery;
    config.unservable = b.unservable;
    Ok(config)
}

/// What a routing strategy does, as `check` explains it.
fn strategy_note(s: Strategy) -> &'static str {
    match s {
        Strategy::Ordered => {
            "within a group, deployments are tried in file order; the fallback chain orders the groups"
        }
        Strategy::SimpleShuffle => {
            "within a group, deployments are tried in a random order; the fallback chain orders the groups"
        }
        Strategy::LeastBusy => {
            "within a group, the deployment with the fewest requests in flight (across router replicas, through Redis) goes first; the fallback chain orders the groups"
        }
        Strategy::LatencyBased => {
            "within a group, the deployment with the lowest probe latency goes first; the fallback chain orders the groups"
        }
        Strategy::UsageBased => {
            "within a group, the deployment with the fewest tokens this minute (then requests, shared through Redis) goes first; the fallback chain orders the groups"
        }
        Strategy::WarmFirst => {
            "within a group, a deployment with its model already loaded goes first; the fallback chain orders the groups"
        }
    }
}

/// A duration that must be greater than zero, with a default in seconds.
fn positive(
    v: Option<super::lenient::Seconds>,
    default_secs: u64,
    key: &str,
) -> Result<Duration, ConfigError> {
    let d = v.map_or(Duration::from_secs(default_secs), |s| s.0);
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

/// `gateway.cors_allow_origins`: `*` (the default, as LiteLLM allows browser clients), or
/// origins such as `https://chat.example.org` (scheme, host and port; no path).
fn cors_origins(raw: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let Some(origins) = raw else {
        return Ok(vec!["*".into()]);
    };
    for (i, o) in origins.iter().enumerate() {
        let key = format!("gateway.cors_allow_origins[{i}]");
        if o == "*" {
            if origins.len() > 1 {
                return Err(ConfigError::invalid(
                    key,
                    "`*` allows every origin; list no other origin beside it",
                ));
            }
            continue;
        }
        let rest = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && !host.contains('/')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if !valid {
            return Err(ConfigError::invalid(
                &key,
                format!(
                    "{o:?} is not an origin: expected `*` or scheme://host[:port], e.g. https://chat.example.org"
                ),
            ));
        }
    }
    Ok(origins)
}

/// The internal gRPC secret: `SWITCHYARD_INTERNAL_SECRET`, else the configured one.
fn internal_secret(
    env: &dyn EnvSource,
    configured: Option<String>,
    have_master_key: bool,
    notes: &mut Vec<String>,
) -> Result<Option<String>, ConfigError> {
    const KEY: &str = "general_settings.internal_secret";
    let secret = env
        .get("SWITCHYARD_INTERNAL_SECRET")
        .filter(|s| !s.is_empty())
        .or(configured.filter(|s| !s.is_empty()));
    match &secret {
        Some(s) if s.len() < 16 => {
            return Err(ConfigError::invalid(
                KEY,
                "too short: use at least 16 characters",
            ));
        }
        Some(s) if !s.bytes().all(|c| c.is_ascii_graphic()) => {
            return Err(ConfigError::invalid(
                KEY,
                "use visible ASCII characters only (it is sent as gRPC metadata)",
            ));
        }
        Some(_) => notes.push(
            "internal secret set: the router's and the ledger's gRPC services accept calls with it (Switchyard's own processes) or with the master key".into(),
        ),
        None if have_master_key => notes.push(
            "internal secret derived from the master key: the router's and the ledger's gRPC services need it or the master key (every process with the same master key agrees on it)".into(),
        ),
        None => notes.push(
            "no master key and no internal secret: the router's and the ledger's gRPC services are open to anyone who can reach them".into(),
        ),
    }
    Ok(secret)
}
