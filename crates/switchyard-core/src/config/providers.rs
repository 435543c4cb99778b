//! What a LiteLLM `model:` string names: a local Ollama or OpenAI-compatible server, a hosted
//! OpenAI-compatible provider (with LiteLLM's default base URL and key variables), or something
//! Switchyard cannot serve, with the reason `check` lists.
//!
//! A mixed LiteLLM file (local models beside `anthropic/…` or a bare `gpt-3.5-turbo`) must load
//! the part that can be served, so classifying an entry never fails the whole file: only an
//! entry Switchyard would serve but that is written wrong is an error.

/// A hosted provider that speaks the OpenAI API, as LiteLLM knows it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Hosted {
    /// LiteLLM's prefix (`groq`), or `openai` for OpenAI itself and bare names.
    pub prefix: &'static str,
    /// LiteLLM's default `api_base` for the provider.
    pub base: &'static str,
    /// Environment variables LiteLLM reads the key from, in its order.
    pub key_vars: &'static [&'static str],
}

/// LiteLLM's OpenAI-compatible hosted providers, with the base URL and key variables its source
/// uses (`litellm/litellm_core_utils/get_llm_provider_logic.py` and each provider's
/// `get_openai_compatible_provider_info`). DeepSeek: LiteLLM defaults to `/beta`; DeepSeek
/// documents `https://api.deepseek.com/v1` as its OpenAI-compatible base, which is used here.
pub(super) const HOSTED: &[Hosted] = &[
    Hosted {
        prefix: "openai",
        base: "https://api.openai.com/v1",
        key_vars: &["OPENAI_API_KEY"],
    },
    Hosted {
        prefix: "groq",
        base: "https://api.groq.com/openai/v1",
        key_vars: &["GROQ_API_KEY"],
    },
    Hosted {
        prefix: "openrouter",
        base: "https://openrouter.ai/api/v1",
        key_vars: &["OPENROUTER_API_KEY", "OR_API_KEY"],
    },
    Hosted {
        prefix: "together_ai",
        base: "https://api.together.ai/v1",
        key_vars: &[
            "TOGETHER_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHERAI_API_KEY",
        ],
    },
    Hosted {
        prefix: "deepseek",
        base: "https://api.deepseek.com/v1",
        key_vars: &["DEEPSEEK_API_KEY"],
    },
    Hosted {
        prefix: "mistral",
        base: "https://api.mistral.ai/v1",
        key_vars: &["MISTRAL_API_KEY"],
    },
    Hosted {
        prefix: "fireworks_ai",
        base: "https://api.fireworks.ai/inference/v1",
        key_vars: &[
            "FIREWORKS_API_KEY",
            "FIREWORKS_AI_API_KEY",
            "FIREWORKSAI_API_KEY",
        ],
    },
    Hosted {
        prefix: "xai",
        base: "https://api.x.ai/v1",
        key_vars: &["XAI_API_KEY"],
    },
    Hosted {
        prefix: "cerebras",
        base: "https://api.cerebras.ai/v1",
        key_vars: &["CEREBRAS_API_KEY"],
    },
    Hosted {
        prefix: "nvidia_nim",
        base: "https://integrate.api.nvidia.com/v1",
        key_vars: &["NVIDIA_NIM_API_KEY"],
    },
    Hosted {
        prefix: "sambanova",
        base: "https://api.sambanova.ai/v1",
        key_vars: &["SAMBANOVA_API_KEY"],
    },
];

/// Prefixes of local OpenAI-compatible servers: an `api_base` is required.
const LOCAL_COMPATIBLE: &[&str] = &[
    "hosted_vllm",
    "llamacpp",
    "llama_cpp",
    "openai_compatible",
    "vllm",
    "lm_studio",
];

/// What one `model:` string asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Ollama's native API (`ollama/`, `ollama_chat/`).
    Ollama(String),
    /// An OpenAI-compatible server: a local one (needs `api_base`), or OpenAI itself when
    /// `openai/` or a bare name comes without one (`hosted` is then OpenAI).
    Compatible {
        model: String,
        hosted: &'static Hosted,
    },
    /// A local server's prefix (`hosted_vllm/`, `llamacpp/`, …): `api_base` is required.
    Local(String),
    /// A hosted OpenAI-compatible provider other than OpenAI (`groq/`, `openrouter/`, …).
    Hosted {
        model: String,
        hosted: &'static Hosted,
    },
    /// Not servable, and why.
    Unservable(String),
}

/// Providers that do not speak the OpenAI API, with what they speak instead.
fn foreign(prefix: &str) -> Option<&'static str> {
    Some(match prefix {
        "anthropic" => "Anthropic's Messages API",
        "gemini" | "vertex_ai" | "vertex_ai_beta" | "palm" => "Google's Gemini / Vertex AI API",
        "bedrock" | "bedrock_converse" | "sagemaker" | "sagemaker_chat" => {
            "AWS's signed APIs (Bedrock, SageMaker)"
        }
        "azure" | "azure_ai" | "azure_text" => {
            "Azure's deployment paths, api-version and api-key header"
        }
        "cohere" | "cohere_chat" => "Cohere's API",
        "huggingface" | "replicate" | "watsonx" | "watsonx_text" | "cloudflare" | "ai21"
        | "voyage" | "jina_ai" | "databricks" | "predibase" | "clarifai" | "oci" | "snowflake" => {
            "that provider's own API"
        }
        _ => return None,
    })
}

fn openai() -> &'static Hosted {
    &HOSTED[0]
}

/// Classifies a LiteLLM `model:` string; `Err` only for a string no provider could mean.
pub(super) fn classify(model: &str) -> Result<Route, String> {
    if model.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let Some((prefix, name)) = model.split_once('/') else {
        return Ok(bare(model));
    };
    if name.is_empty() {
        return Err("the model name after the provider prefix is empty".into());
    }
    let name = name.to_string();
    if matches!(prefix, "ollama" | "ollama_chat") {
        return Ok(Route::Ollama(name));
    }
    if prefix == "openai" || prefix == "custom_openai" || prefix == "text-completion-openai" {
        return Ok(Route::Compatible {
            model: name,
            hosted: openai(),
        });
    }
    if LOCAL_COMPATIBLE.contains(&prefix) {
        return Ok(Route::Local(name));
    }
    // A wildcard is model discovery on a server of the user's (`ollama/*`, `openai/*` with an
    // `api_base`); a hosted provider's catalogue is not discovered.
    if super::discovery::is_wildcard(model) {
        return Ok(Route::Unservable(format!(
            "\"{model}\" is a wildcard route to a hosted or unsupported provider; discovery (ollama/*, openai/* with api_base) lists servers of yours"
        )));
    }
    if let Some(hosted) = HOSTED.iter().find(|h| h.prefix == prefix) {
        return Ok(Route::Hosted {
            model: name,
            hosted,
        });
    }
    Ok(Route::Unservable(match foreign(prefix) {
        Some(api) => format!(
            "provider \"{prefix}\" speaks {api}, not the OpenAI API; Switchyard serves ollama/, openai/ (any OpenAI-compatible server) and hosted OpenAI-compatible providers ({})",
            hosted_prefixes()
        ),
        None => format!(
            "provider \"{prefix}\" is not one Switchyard serves; use ollama/, openai/ (any OpenAI-compatible server, with api_base) or a hosted OpenAI-compatible provider ({})",
            hosted_prefixes()
        ),
    }))
}

/// A bare name means what LiteLLM makes of it: OpenAI's API, except names its model list gives
/// to another provider.
fn bare(model: &str) -> Route {
    let lower = model.to_ascii_lowercase();
    let other = if lower.starts_with("claude") {
        Some("anthropic")
    } else if lower.starts_with("gemini") {
        Some("gemini")
    } else if lower.starts_with("command") {
        Some("cohere")
    } else {
        None
    };
    match other {
        Some(p) => Route::Unservable(format!(
            "bare name \"{model}\": LiteLLM sends it to {p}, which speaks {}, not the OpenAI API",
            foreign(p).unwrap_or("its own API")
        )),
        None => Route::Compatible {
            model: model.to_string(),
            hosted: openai(),
        },
    }
}

/// `groq/, openrouter/, …` for messages.
pub(super) fn hosted_prefixes() -> String {
    HOSTED
        .iter()
        .skip(1)
        .map(|h| format!("{}/", h.prefix))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether an entry with this `model:` will be listed as unservable whatever its other keys say
/// (its `os.environ/` references are then not resolved: a missing cloud key must not stop the
/// local models from loading).
pub(super) fn surely_unservable(model: &str) -> bool {
    matches!(classify(model), Ok(Route::Unservable(_)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes_and_bare_names() {
        assert_eq!(classify("ollama/x").unwrap(), Route::Ollama("x".into()));
        assert!(matches!(
            classify("gpt-3.5-turbo").unwrap(),
            Route::Compatible { hosted, .. } if hosted.prefix == "openai"
        ));
        assert!(matches!(
            classify("groq/llama-3.1-8b-instant").unwrap(),
            Route::Hosted { hosted, .. } if hosted.base == "https://api.groq.com/openai/v1"
        ));
        assert!(matches!(
            classify("hosted_vllm/m").unwrap(),
            Route::Local(_)
        ));
        for m in [
            "anthropic/claude-3",
            "bedrock/x",
            "gemini/gemini-pro",
            "claude-3-opus",
            "groq/*",
            "anthropic/*",
            "mistralai/mistral-7b-instruct",
            "auto_router/adaptive_router",
        ] {
            assert!(matches!(classify(m).unwrap(), Route::Unservable(_)), "{m}");
        }
        assert!(classify("ollama/").is_err());
        // Discovery's: classified like any entry of their prefix.
        assert_eq!(classify("ollama/*").unwrap(), Route::Ollama("*".into()));
        assert!(matches!(
            classify("openai/*").unwrap(),
            Route::Compatible { .. }
        ));
    }
}
