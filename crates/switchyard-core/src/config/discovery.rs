//! Wildcard deployments: `model: ollama/*` (LiteLLM's spelling) or native `model: "*"`.
//!
//! Such an entry is not a deployment yet: it names a host and a pattern. Validation turns it into
//! a [`DiscoverySpec`], and [`expand`](super::expand) later makes one group per model the host
//! lists, from a [`Catalog`](super::Catalog) the prober fills. Everything else the entry says
//! (options, timeouts, order, a window) is kept in the spec's prototype deployment, which every
//! discovered deployment copies.

use super::deployments::{Builder, to_u32};
use super::error::ConfigError;
use super::model::{Deployment, Provider};
use super::raw::RawDiscovery;
use crate::tokens::TemplateFamily;

/// How discovered chat groups are chained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoFallbacks {
    /// No chain: each discovered group stands alone.
    #[default]
    None,
    /// From the smallest window to the largest: each group falls back to every larger one.
    ByContext,
}

/// One wildcard entry, validated.
#[derive(Clone, Debug)]
pub struct DiscoverySpec {
    /// The entry's key path (`model_list[3]`, `deployments[0]`), for notes.
    pub key: String,
    /// The group name, with `*` where the model's name goes (`ollama/*`, `*`, `local-*`).
    pub name_template: String,
    /// Globs on the backend's model name: only models matching one are taken (empty: all).
    pub include: Vec<String>,
    /// Globs on the backend's model name: models matching one are left out.
    pub exclude: Vec<String>,
    /// Largest window a discovered deployment gets, whatever the model was trained for.
    pub max_context: Option<u32>,
    pub auto_fallbacks: AutoFallbacks,
    /// The chat-template family, when configured (else guessed from each model's name).
    pub template: Option<TemplateFamily>,
    /// What every discovered deployment copies: host, key, options, timeouts, order, and the
    /// configured window (a cap, and the window of a model whose server does not say). Its
    /// `model` is the pattern (`*`, `llama3*`).
    pub prototype: Deployment,
}

impl DiscoverySpec {
    pub fn provider(&self) -> Provider {
        self.prototype.provider
    }

    pub fn api_base(&self) -> &str {
        &self.prototype.api_base
    }

    /// `ollama/* at http://gpu:11434 (model_list[3])`: where a discovered deployment came from.
    pub fn label(&self) -> String {
        let prefix = match self.provider() {
            Provider::Ollama => "ollama",
            Provider::OpenAi => "openai",
        };
        format!(
            "{prefix}/{} at {} ({})",
            self.prototype.model,
            self.api_base(),
            self.key
        )
    }

    /// The public group name of a backend model: the template with `*` replaced by the model's
    /// name, without Ollama's implicit `:latest` tag (clients ask for `llama3.2`).
    pub fn group_name(&self, model: &str) -> String {
        let shown = model.strip_suffix(":latest").unwrap_or(model);
        self.name_template.replacen('*', shown, 1)
    }

    /// Whether the model passes the pattern and the include and exclude globs.
    pub fn admits(&self, model: &str) -> bool {
        let names = |m: &str| {
            let short = m.strip_suffix(":latest").unwrap_or(m).to_owned();
            [m.to_owned(), short]
        };
        let matches = |globs: &[String]| {
            globs
                .iter()
                .any(|g| names(model).iter().any(|n| glob_match(g, n)))
        };
        names(model)
            .iter()
            .any(|n| glob_match(&self.prototype.model, n))
            && (self.include.is_empty() || matches(&self.include))
            && !matches(&self.exclude)
    }

    /// The window a discovered model gets, and how it was arrived at: what the server reports
    /// (`reported`, read from `source`), capped by `max_context` and the configured window; the
    /// configured window alone when the server does not say.
    pub fn window(&self, reported: Option<u32>, source: &str) -> (Option<u32>, String) {
        let caps = [
            self.max_context.map(|c| (c, "max_context")),
            self.prototype
                .context_window
                .map(|c| (c, "the configured window")),
        ];
        let cap = caps.into_iter().flatten().min_by_key(|(c, _)| *c);
        match (reported, cap) {
            (Some(r), Some((c, why))) if c < r => {
                (Some(c), format!("{source} {r}, capped at {c} by {why}"))
            }
            (Some(r), _) => (Some(r), source.to_owned()),
            (None, _) => match self.prototype.context_window {
                Some(w) => (
                    Some(w),
                    "configured on the wildcard entry (the server does not say)".to_owned(),
                ),
                None => (None, "unknown (the server does not say)".to_owned()),
            },
        }
    }
}

/// Whether `text` matches the glob `pattern` (`*`: any run of characters, `?`: one).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a backend model name is a pattern (the entry is a wildcard entry).
pub(super) fn is_wildcard(model: &str) -> bool {
    model.contains('*') || model.contains('?')
}

impl Builder<'_> {
    /// Records a wildcard entry as a [`DiscoverySpec`] instead of a deployment.
    pub(super) fn wildcard(
        &mut self,
        key: &str,
        group_template: &str,
        group_key: &str,
        prototype: Deployment,
        raw: Option<RawDiscovery>,
        template: Option<TemplateFamily>,
    ) -> Result<(), ConfigError> {
        let stars = group_template.matches('*').count();
        if stars != 1 {
            return Err(ConfigError::invalid(
                group_key,
                format!(
                    "\"{group_template}\": a wildcard entry (model {}) names its groups with one `*`, replaced by each discovered model's name (e.g. \"ollama/*\" or \"*\")",
                    prototype.model
                ),
            ));
        }
        let raw = raw.unwrap_or_default();
        let dkey = format!("{key}.discovery");
        let globs = |list: Option<Vec<String>>, name: &str| -> Result<Vec<String>, ConfigError> {
            let list = list.unwrap_or_default();
            if let Some(i) = list.iter().position(|g| g.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    format!("{dkey}.{name}[{i}]"),
                    "must not be empty",
                ));
            }
            Ok(list)
        };
        let include = globs(raw.include, "include")?;
        let exclude = globs(raw.exclude, "exclude")?;
        let max_context = raw
            .max_context
            .map(|n| to_u32(n, &format!("{dkey}.max_context")))
            .transpose()?;
        if max_context == Some(0) {
            return Err(ConfigError::invalid(
                format!("{dkey}.max_context"),
                "must be greater than zero",
            ));
        }
        let auto_fallbacks = match raw.auto_fallbacks.as_deref() {
            None | Some("none") => AutoFallbacks::None,
            Some("by_context") => AutoFallbacks::ByContext,
            Some(other) => {
                return Err(ConfigError::invalid(
                    format!("{dkey}.auto_fallbacks"),
                    format!("\"{other}\" is not one of: by_context, none"),
                ));
            }
        };
        let spec = DiscoverySpec {
            key: key.to_owned(),
            name_template: group_template.to_owned(),
            include,
            exclude,
            max_context,
            auto_fallbacks,
            template,
            prototype,
        };
        let source = match spec.provider() {
            Provider::Ollama => "/api/tags, each window from /api/show",
            Provider::OpenAi => {
                "/v1/models, each window from its meta.n_ctx_train or the server's /props n_ctx"
            }
        };
        let mut how = format!(
            "{}: discovery: one group per model the host lists ({source}), named {}",
            spec.label(),
            spec.name_template
        );
        if let Some(c) = spec.max_context {
            how.push_str(&format!("; windows capped at {c} (max_context)"));
        }
        if spec.provider() == Provider::Ollama {
            how.push_str("; each window is sent as options.num_ctx");
        }
        if spec.auto_fallbacks == AutoFallbacks::ByContext {
            how.push_str(
                "; chat groups fall back from the smallest window to the largest (auto_fallbacks: by_context)",
            );
        }
        how.push_str("; the list is polled every prober interval");
        self.notes.push(how);
        self.discovery.push(spec);
        Ok(())
    }

    /// A `discovery:` block on an entry that is not a wildcard does nothing: say so.
    pub(super) fn discovery_on_plain_entry(&mut self, key: &str, raw: &Option<RawDiscovery>) {
        if raw.is_some() {
            self.warnings.push(format!(
                "{key}.discovery: ignored: only a wildcard entry (model: ollama/* or \"*\") discovers models"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("*", "llama3.2:1b"));
        assert!(glob_match("llama*", "llama3.2:1b"));
        assert!(glob_match("*embed*", "nomic-embed-text:latest"));
        assert!(glob_match("qwen?:*", "qwen3:8b"));
        assert!(!glob_match("qwen?:*", "qwen:8b"));
        assert!(!glob_match("llama*", "tinyllama"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
    }
}
