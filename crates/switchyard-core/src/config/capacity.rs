//! Capacity settings: how many requests a deployment serves at once and per minute, its
//! shuffle weight, and how long a request waits for its preferred group before it may spill to
//! the next group of its chain.
//!
//! They live apart from the rest of the deployment keys because they are read the same way from
//! both dialects: LiteLLM's per-deployment `max_parallel_requests`, `rpm`, `tpm` and `weight`
//! (in `litellm_params`) and the native deployment keys of the same names, plus
//! `routing.queue_timeout`, `routing.max_queue_depth`, `routing.spill_after` and the per-group
//! `groups.<name>.spill_after`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::error::ConfigError;
use super::lenient::{Number, Seconds, parse_duration};
use super::model::Group;

/// What one deployment can take. `None` everywhere: no limit known (never queued for).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Requests served at once (`max_parallel_requests`); when unset, a llama.cpp server's
    /// `/props` `total_slots` is used once the prober has read it.
    pub max_parallel: Option<u32>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens (prompt + completion) per minute.
    pub tpm: Option<u64>,
    /// Relative share under `simple-shuffle` (LiteLLM's `weight`).
    pub weight: Option<u32>,
}

impl Capacity {
    /// Whether any limit is configured (weights are not limits).
    pub fn is_limited(&self) -> bool {
        self.max_parallel.is_some() || self.limits_rate()
    }

    /// Whether requests or tokens per minute are limited (its answers are counted per minute).
    pub fn limits_rate(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// How long a request waits for a free slot in its preferred group before the next group of its
/// chain that fits, has a free slot and has nobody waiting in its own queue may serve it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpillAfter {
    /// Always wait for the preferred group (until `queue_timeout`).
    Never,
    /// Spill after this long; zero spills at once ("least busy among the models that fit").
    After(Duration),
}

impl fmt::Display for SpillAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpillAfter::Never => f.write_str("never"),
            SpillAfter::After(d) if d.is_zero() => f.write_str("0"),
            SpillAfter::After(d) => write!(f, "{d:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for SpillAfter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = SpillAfter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"never\", or a duration: seconds as a number or \"500ms\", \"5s\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SpillAfter, E> {
                Ok(SpillAfter::After(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SpillAfter, E> {
                u64::try_from(v)
                    .map(|s| SpillAfter::After(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("{v} is negative; expected a duration")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SpillAfter, E> {
                Duration::try_from_secs_f64(v)
                    .map(SpillAfter::After)
                    .map_err(|_| E::custom(format!("{v} is not a valid duration in seconds")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SpillAfter, E> {
                if v.trim() == "never" {
                    return Ok(SpillAfter::Never);
                }
                parse_duration(v).map(SpillAfter::After).ok_or_else(|| {
                    E::custom(format!(
                        "\"{v}\" is neither \"never\" nor a duration like \"500ms\" or \"5s\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The router's own queue, used when every fitting deployment of a request's preferred group is
/// at capacity.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// Longest a request waits for a slot; past it: 429 with `Retry-After`.
    pub timeout: Duration,
    /// Most requests waiting at once in one group's queue; more: 429 with `Retry-After`.
    pub max_depth: u32,
    /// Default spill policy of every group (`groups.<name>.spill_after` overrides it).
    pub spill_after: SpillAfter,
    /// How often a waiting request looks again at slots other router replicas may have freed
    /// (this replica's own releases wake it at once).
    pub recheck: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            timeout: Duration::from_secs(60),
            max_depth: 512,
            spill_after: SpillAfter::Never,
            recheck: Duration::from_millis(50),
        }
    }
}

/// Native per-group settings (`groups.<name>`), which a LiteLLM file may carry as well.
#[derive(Debug, Default, Deserialize)]
pub struct RawGroupSettings {
    pub spill_after: Option<SpillAfter>,
}

/// Reads one deployment's capacity keys; `key` is the path of the map that holds them.
pub(super) fn capacity(
    key: &str,
    label: &str,
    max_parallel: Option<Number>,
    rpm: Option<Number>,
    tpm: Option<Number>,
    weight: Option<Number>,
    notes: &mut Vec<String>,
) -> Result<Capacity, ConfigError> {
    let small = |n: Option<Number>, name: &str| -> Result<Option<u32>, ConfigError> {
        n.map(|Number(v)| {
            u32::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.{name}"),
                    format!("{v} is not a whole number from 1 to {}", u32::MAX),
                )
            })
        })
        .transpose()
    };
    let c = Capacity {
        max_parallel: small(max_parallel, "max_parallel_requests")?,
        rpm: small(rpm, "rpm")?,
        tpm: match tpm {
            Some(Number(0)) => {
                return Err(ConfigError::invalid(
                    format!("{key}.tpm"),
                    "must be at least 1",
                ));
            }
            other => other.map(|n| n.0),
        },
        weight: small(weight, "weight")?,
    };
    if let Some(n) = c.max_parallel {
        notes.push(format!(
            "{label}: serves at most {n} request(s) at once (max_parallel_requests), counted across router replicas; more wait in the router's queue or spill (see routing.spill_after)"
        ));
    }
    if c.rpm.is_some() || c.tpm.is_some() {
        let what: Vec<String> = [
            c.rpm.map(|r| format!("{r} requests")),
            c.tpm.map(|t| format!("{t} tokens")),
        ]
        .into_iter()
        .flatten()
        .collect();
        notes.push(format!(
            "{label}: at most {} per minute (rpm/tpm): a deployment at its limit is full, like one with no free slot; usage-based-routing prefers the one with the most room",
            what.join(" and ")
        ));
    }
    if let Some(w) = c.weight {
        notes.push(format!(
            "{label}: weight {w}: simple-shuffle tries it first in proportion to its weight within its group"
        ));
    }
    Ok(c)
}

/// Reads `routing.queue_timeout`, `routing.max_queue_depth`, `routing.spill_after` and
/// `routing.queue_recheck`.
pub(super) fn queue_settings(
    timeout: Option<Seconds>,
    max_depth: Option<Number>,
    spill_after: Option<SpillAfter>,
    recheck: Option<Seconds>,
    notes: &mut Vec<String>,
) -> Result<QueueSettings, ConfigError> {
    let d = QueueSettings::default();
    let max_depth = match max_depth {
        Some(Number(n)) => u32::try_from(n).map_err(|_| {
            ConfigError::invalid("routing.max_queue_depth", format!("{n} is too large"))
        })?,
        None => d.max_depth,
    };
    let recheck = recheck.map_or(d.recheck, |s| s.0);
    if recheck.is_zero() {
        return Err(ConfigError::invalid(
            "routing.queue_recheck",
            "must be longer than 0",
        ));
    }
    let q = QueueSettings {
        timeout: timeout.map_or(d.timeout, |s| s.0),
        max_depth,
        spill_after: spill_after.unwrap_or(d.spill_after),
        recheck,
    };
    notes.push(format!(
        "capacity queue: a request whose preferred group is full waits up to {:?} (routing.queue_timeout), at most {} waiting per group (routing.max_queue_depth); spill to the next group after {} (routing.spill_after) unless a group says otherwise",
        q.timeout, q.max_depth, q.spill_after
    ));
    Ok(q)
}

/// Applies `groups.<name>` settings to the groups they name.
pub(super) fn apply_group_settings(
    groups: &mut [Group],
    raw: Option<BTreeMap<String, RawGroupSettings>>,
    notes: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (name, s) in raw.unwrap_or_default() {
        let Some(g) = groups.iter_mut().find(|g| g.name == name) else {
            let known: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            return Err(ConfigError::invalid(
                format!("groups.{name}"),
                format!(
                    "no model group is called \"{name}\" (groups: {})",
                    known.join(", ")
                ),
            ));
        };
        if let Some(sa) = s.spill_after {
            notes.push(format!(
                "group {name}: spill_after {sa}: {}",
                match sa {
                    SpillAfter::Never => "waits for its own deployments, never spills to the next group for load".to_owned(),
                    SpillAfter::After(d) if d.is_zero() => "when its deployments are full, the next group that fits and has a free slot (and nobody queued) serves at once".to_owned(),
                    SpillAfter::After(d) => format!("a request that waited {d:?} for a free slot may be served by the next group that fits and has one (and nobody queued)"),
                }
            ));
            g.spill_after = Some(sa);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::HashMap;

    use super::super::{Config, ConfigError, load_str};
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        load_str("test.yaml", text, None, &HashMap::<String, String>::new())
    }

    const LITELLM: &str = r#"
model_list:
  - model_name: small
    litellm_params: {model: ollama/llama3.2:1b, max_tokens: 2048, max_parallel_requests: 2, rpm: 60, tpm: 90000, weight: 3}
  - model_name: large
    litellm_params: {model: ollama/mistral:7b, max_tokens: 32768}
router_settings: {fallbacks: [small, large]}
"#;

    #[test]
    fn litellm_capacity_keys_are_read_and_not_passed_to_ollama() {
        let c = load(LITELLM).unwrap();
        let d = &c.deployments[0];
        assert_eq!(
            d.capacity,
            Capacity {
                max_parallel: Some(2),
                rpm: Some(60),
                tpm: Some(90000),
                weight: Some(3),
            }
        );
        assert!(d.options.is_empty(), "{:?}", d.options);
        assert!(!c.deployments[1].capacity.is_limited());
        assert!(
            c.warnings
                .iter()
                .all(|w| !w.contains("rpm") && !w.contains("weight")),
            "{:?}",
            c.warnings
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("at most 2 request(s) at once"))
        );
        // Defaults: wait for the preferred group, bounded.
        assert_eq!(c.routing.queue.spill_after, SpillAfter::Never);
        assert_eq!(c.routing.queue.timeout, Duration::from_secs(60));
        assert_eq!(c.routing.queue.max_depth, 512);
    }

    #[test]
    fn native_keys_queue_settings_and_per_group_spill() {
        let c = load(
            r#"
deployments:
  - {group: small, provider: ollama, model: "llama3.2:1b", context_window: 2048, max_parallel_requests: 1}
  - {group: medium, provider: openai, model: m, api_base: "http://127.0.0.1:1", tpm: 1000, weight: 2}
  - {group: large, provider: ollama, model: "mistral:7b", context_window: 32768}
fallbacks: [small, medium, large]
routing: {queue_timeout: 5s, max_queue_depth: 8, spill_after: 0, queue_recheck: 20ms}
groups:
  small: {spill_after: "2s"}
  medium: {spill_after: never}
"#,
        )
        .unwrap();
        assert_eq!(c.deployments[0].capacity.max_parallel, Some(1));
        assert_eq!(c.deployments[1].capacity.tpm, Some(1000));
        assert_eq!(c.deployments[1].capacity.weight, Some(2));
        let q = &c.routing.queue;
        assert_eq!(q.timeout, Duration::from_secs(5));
        assert_eq!(q.max_depth, 8);
        assert_eq!(q.recheck, Duration::from_millis(20));
        let g = |n: &str| c.group(n).unwrap();
        assert_eq!(
            c.spill_after(g("small")),
            SpillAfter::After(Duration::from_secs(2))
        );
        assert_eq!(c.spill_after(g("medium")), SpillAfter::Never);
        assert_eq!(c.spill_after(g("large")), SpillAfter::After(Duration::ZERO));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = load(&format!("{LITELLM}groups: {{tiny: {{spill_after: 1s}}}}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("groups.tiny") && e.contains("small, large"),
            "{e}"
        );
        let e = load(&format!("{LITELLM}routing: {{spill_after: later}}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("spill_after") && e.contains("never"), "{e}");
        let e = load(&LITELLM.replace("max_parallel_requests: 2", "max_parallel_requests: 0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model_list[0].litellm_params.max_parallel_requests"),
            "{e}"
        );
    }
}
