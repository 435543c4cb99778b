//! Mixed LiteLLM files: local and hosted models, providers that cannot be served, bare names,
//! `max_tokens` as an output limit, TLS keys.

use super::*;

fn with_env(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_str("test.yaml", text, None, &env(pairs))
}

const MIXED: &str = r#"
model_list:
  - model_name: local
    litellm_params: {model: ollama/llama3.2:1b, api_base: "http://127.0.0.1:1", max_tokens: 2048}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/MY_OPENAI_KEY}
  - model_name: gpt-3.5-turbo
    litellm_params: {model: gpt-3.5-turbo}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: fast
    litellm_params: {model: groq/llama-3.1-8b-instant, api_key: os.environ/GROQ_API_KEY}
    model_info: {max_input_tokens: 131072}
router_settings:
  fallbacks: [{"local": ["claude", "gpt-4o"]}]
"#;

#[test]
fn mixed_file_loads_what_can_be_served_and_lists_the_rest() {
    // ANTHROPIC_API_KEY is not set: the claude entry is set aside anyway, so it does not matter.
    let c = with_env(
        MIXED,
        &[("MY_OPENAI_KEY", "sk-test"), ("GROQ_API_KEY", "gsk-test")],
    )
    .unwrap();
    let gpt4o = &c.deployments[c.groups[c.group("gpt-4o").unwrap()].deployments[0]];
    assert_eq!(gpt4o.api_base, "https://api.openai.com");
    assert_eq!(gpt4o.model, "gpt-4o");
    assert_eq!(gpt4o.api_key.as_deref(), Some("sk-test"));
    assert!(gpt4o.hosted);
    assert_eq!(gpt4o.context_window, Some(8192), "the documented default");
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("default for hosted links"))
    );
    let fast = &c.deployments[c.groups[c.group("fast").unwrap()].deployments[0]];
    assert_eq!(fast.api_base, "https://api.groq.com/openai");
    assert_eq!(fast.context_window, Some(131072));
    // A bare name is OpenAI's, and without a key (none in the file, OPENAI_API_KEY unset) it is
    // listed, as is the Anthropic entry.
    let listed: Vec<&str> = c.unservable.iter().map(|u| u.group.as_str()).collect();
    assert_eq!(listed, ["gpt-3.5-turbo", "claude"]);
    assert!(
        c.unservable[0].reason.contains("OPENAI_API_KEY"),
        "{:?}",
        c.unservable
    );
    assert!(
        c.unservable[1].reason.contains("Anthropic"),
        "{:?}",
        c.unservable
    );
    // The chain skips the unservable link.
    let local = c.group("local").unwrap();
    assert_eq!(c.groups[local].fallbacks, vec![c.group("gpt-4o").unwrap()]);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("link \"claude\" skipped"))
    );
}

#[test]
fn a_bare_name_uses_openai_api_key() {
    let c = with_env(
        MIXED,
        &[
            ("MY_OPENAI_KEY", "sk-test"),
            ("GROQ_API_KEY", "gsk-test"),
            ("OPENAI_API_KEY", "sk-env"),
        ],
    )
    .unwrap();
    let g = c.group("gpt-3.5-turbo").unwrap();
    let d = &c.deployments[c.groups[g].deployments[0]];
    assert_eq!(d.api_base, "https://api.openai.com");
    assert_eq!(d.api_key.as_deref(), Some("sk-env"));
    assert!(c.notes.iter().any(|n| n.contains("bare name")));
}

#[test]
fn a_servable_entry_still_needs_its_env_vars() {
    let e = with_env(MIXED, &[("GROQ_API_KEY", "gsk-test")]).unwrap_err();
    assert!(matches!(e, ConfigError::MissingEnv { .. }), "{e}");
    assert_eq!(e.key(), Some("model_list[1].litellm_params.api_key"));
}

#[test]
fn nothing_servable_is_an_error_listing_why() {
    let text = "model_list:\n  - model_name: c\n    litellm_params: {model: anthropic/claude-3}\n";
    let e = load(text).unwrap_err().to_string();
    assert!(e.contains("no deployment can be served"), "{e}");
    assert!(
        e.contains("model_list[0]") && e.contains("anthropic"),
        "{e}"
    );
}

#[test]
fn a_small_ollama_max_tokens_is_an_output_limit() {
    // LiteLLM's aliases_config.yaml: max_tokens 20 on an Ollama model is an output limit.
    let text = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: ollama/llama2, api_base: "http://127.0.0.1:1", temperature: 0.1, max_tokens: 20}
"#;
    let c = load(text).unwrap();
    let d = &c.deployments[0];
    assert_eq!(d.context_window, None);
    assert_eq!(d.max_output_tokens, Some(20));
    assert!(!d.options.contains_key("max_tokens"));
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("max_tokens 20 read as an output limit")),
        "{:#?}",
        c.notes
    );
    // The seed's 2048 is still a window.
    let seed = load(SEED).unwrap();
    assert_eq!(seed.deployments[0].context_window, Some(2048));
    assert_eq!(seed.deployments[0].max_output_tokens, None);
}

#[test]
fn https_and_tls_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not checked here").unwrap();
    let ca = ca.to_str().unwrap();
    let text = format!(
        r#"
model_list:
  - model_name: a
    litellm_params: {{model: openai/m, api_base: "https://a.example:8443/v1", ssl_verify: false}}
  - model_name: b
    litellm_params: {{model: openai/m, api_base: "https://b.example/v1", ssl_verify: "{ca}", ssl_certificate: "{ca}"}}
  - model_name: c
    litellm_params: {{model: openai/m, api_base: "https://c.example"}}
deployments:
  - {{group: d, provider: openai, model: m, api_base: "https://d.example", tls: {{ca_file: "{ca}", client_cert: "{ca}", client_key: "{ca}"}}}}
"#
    );
    let c = load(&text).unwrap();
    assert_eq!(c.deployments[0].api_base, "https://a.example:8443");
    assert!(c.deployments[0].tls.insecure);
    assert!(
        !c.deployments[0].hosted,
        "an api_base of the user's is not a hosted link"
    );
    assert_eq!(c.deployments[1].tls.ca_file.as_deref(), Some(ca));
    assert_eq!(c.deployments[1].tls.client_cert.as_deref(), Some(ca));
    assert_eq!(c.deployments[2].tls, TlsSettings::default());
    assert_eq!(c.deployments[3].tls.client_key.as_deref(), Some(ca));
    assert!(c.notes.iter().any(|n| n.contains("NOT verified")));

    let missing = text.replace(ca, "/nonexistent/ca.pem");
    let e = load(&missing).unwrap_err();
    assert_eq!(
        e.key(),
        Some("model_list[1].litellm_params.ssl_verify"),
        "{e}"
    );

    // One host, two TLS settings: refused.
    let clash = r#"
model_list:
  - model_name: a
    litellm_params: {model: openai/m, api_base: "https://h.example", ssl_verify: false}
  - model_name: b
    litellm_params: {model: openai/n, api_base: "https://h.example"}
"#;
    let e = load(clash).unwrap_err().to_string();
    assert!(e.contains("TLS settings differ"), "{e}");
}

#[test]
fn litellm_settings_ssl_verify_is_every_deployments_default() {
    let text = r#"
model_list:
  - model_name: a
    litellm_params: {model: openai/m, api_base: "https://a.example"}
litellm_settings: {ssl_verify: false}
"#;
    assert!(load(text).unwrap().deployments[0].tls.insecure);
}

#[test]
fn wildcards_and_unknown_prefixes_are_listed() {
    let text = r#"
model_list:
  - model_name: local
    litellm_params: {model: ollama/x, api_base: "http://127.0.0.1:1"}
  - model_name: "*"
    litellm_params: {model: "openai/*"}
  - model_name: m
    litellm_params: {model: mistralai/mistral-7b-instruct}
  - model_name: img
    litellm_params: {model: openai/dall-e-3, api_base: "http://127.0.0.1:2"}
    model_info: {mode: image_generation}
"#;
    let c = load(text).unwrap();
    assert_eq!(c.deployments.len(), 1);
    let keys: Vec<&str> = c.unservable.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["model_list[1]", "model_list[2]", "model_list[3]"]);
    assert!(c.unservable[0].reason.contains("wildcard"));
    assert!(c.unservable[2].reason.contains("image_generation"));
}
