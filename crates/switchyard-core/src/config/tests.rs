#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mixed;

use std::collections::HashMap;

use super::*;

const SEED: &str = include_str!("../../../../fixtures/seed-config.yaml");

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str("test.yaml", text, None, &env(&[]))
}

#[test]
fn seed_config_loads_unchanged() {
    let c = load(SEED).unwrap();
    assert_eq!(c.groups.len(), 3);
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["local-small", "local-medium", "local-large"]);
    let windows: Vec<_> = c.deployments.iter().map(|d| d.context_window).collect();
    assert_eq!(windows, [Some(2048), Some(8192), Some(32768)]);
    assert!(c.deployments.iter().all(|d| d.provider == Provider::Ollama));
    assert_eq!(c.deployments[0].model, "llama3.2:1b");
    assert_eq!(c.deployments[0].api_base, "http://ollama-vm:11434");
    let small = c.group("local-small").unwrap();
    let medium = c.group("local-medium").unwrap();
    let large = c.group("local-large").unwrap();
    assert_eq!(c.groups[small].fallbacks, vec![medium, large]);
    assert_eq!(c.groups[medium].fallbacks, vec![large]);
    assert!(c.groups[large].fallbacks.is_empty());
    assert_eq!(c.routing.num_retries, 2);
    assert_eq!(c.routing.strategy, Strategy::UsageBased);
    assert_eq!(c.gateway.listen.port(), 4000);
    assert!(
        c.notes.iter().any(|n| n.contains("local-small")
            && n.contains("context window 2048 from litellm_params.max_tokens")),
        "{:#?}",
        c.notes
    );
}

#[test]
fn litellm_list_of_maps_fallbacks() {
    let text = r#"
model_list:
  - model_name: a
    litellm_params: {model: ollama/x, api_base: "http://h:1", max_tokens: 100}
  - model_name: b
    litellm_params: {model: ollama/y, api_base: "http://h:1", max_tokens: 200}
  - model_name: c
    litellm_params: {model: openai/z, api_base: "http://h:2/v1"}
    model_info: {max_input_tokens: 300}
router_settings:
  fallbacks: [{"a": ["c", "b"]}]
"#;
    let c = load(text).unwrap();
    let (a, b, cc) = (
        c.group("a").unwrap(),
        c.group("b").unwrap(),
        c.group("c").unwrap(),
    );
    assert_eq!(c.groups[a].fallbacks, vec![cc, b]);
    assert!(c.groups[b].fallbacks.is_empty());
    assert_eq!(c.deployments[2].api_base, "http://h:2");
    assert_eq!(c.deployments[2].provider, Provider::OpenAi);
    assert_eq!(c.deployments[2].context_window, Some(300));
}

#[test]
fn errors_name_the_key() {
    let bad_group = SEED.replace("    - local-medium\n", "    - local-mediun\n");
    let e = load(&bad_group).unwrap_err();
    assert_eq!(e.key(), Some("router_settings.fallbacks[1]"), "{e}");
    assert!(e.to_string().contains("local-mediun"));

    let bad_type = SEED.replace("max_tokens: 8192", "max_tokens: lots");
    let e = load(&bad_type).unwrap_err();
    assert_eq!(
        e.key(),
        Some("model_list[1].litellm_params.max_tokens"),
        "{e}"
    );

    // A provider Switchyard does not serve no longer fails the file: the entry is listed under
    // its key, with the reason, and the chain's link to it is skipped with a note.
    let bad_provider = SEED.replace("ollama/mistral:7b", "bedrock/mistral:7b");
    let c = load(&bad_provider).unwrap();
    assert_eq!(c.unservable.len(), 1);
    assert_eq!(c.unservable[0].key, "model_list[2]");
    assert!(
        c.unservable[0].reason.contains("bedrock"),
        "{:?}",
        c.unservable
    );
    assert!(c.group("local-large").is_none());
    assert!(
        c.unservable_reason("local-large")
            .unwrap()
            .contains("not the OpenAI API")
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("link \"local-large\" skipped")),
        "{:#?}",
        c.notes
    );

    let bad_strategy = SEED.replace("usage-based-routing", "fastest");
    let e = load(&bad_strategy).unwrap_err();
    assert_eq!(e.key(), Some("router_settings.routing_strategy"), "{e}");
}

#[test]
fn sections_of_the_wrong_shape_say_so() {
    let listed = format!("{SEED}gateway:\n  - listen: 127.0.0.1:0\n");
    let e = load(&listed).unwrap_err();
    assert_eq!(e.key(), Some("gateway"), "{e}");
    assert!(e.to_string().contains("must be a mapping"), "{e}");
    assert!(e.to_string().contains("not a list"), "{e}");

    let scalar = format!("{SEED}routing: fast\n");
    let e = load(&scalar).unwrap_err();
    assert_eq!(e.key(), Some("routing"), "{e}");
    assert!(e.to_string().contains("not a single value"), "{e}");

    let mapped = "model_list:\n  local-small: {model: ollama/llama3.2:1b}\n";
    let e = load(mapped).unwrap_err();
    assert_eq!(e.key(), Some("model_list"), "{e}");
    assert!(e.to_string().contains("must be a list"), "{e}");

    // An empty section is fine, as before.
    assert!(load(&format!("{SEED}gateway:\n")).is_ok());
}

#[test]
fn unknown_keys_are_warnings() {
    let text = format!("{SEED}\nsurprise: 1\n");
    let c = load(&text).unwrap();
    assert!(
        c.warnings.iter().any(|w| w.starts_with("surprise")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn env_references_and_overrides() {
    let text = SEED.replace("http://ollama-vm:11434", "os.environ/OLLAMA_HOST_URL");
    let e = load(&text).unwrap_err();
    assert!(matches!(e, ConfigError::MissingEnv { .. }), "{e}");
    assert_eq!(e.key(), Some("model_list[0].litellm_params.api_base"));

    let vars = env(&[
        ("OLLAMA_HOST_URL", "http://127.0.0.1:9"),
        ("SWITCHYARD__GATEWAY__LISTEN", "127.0.0.1:4999"),
        ("SWITCHYARD__ROUTER_SETTINGS__NUM_RETRIES", "5"),
    ]);
    let c = load_str("t.yaml", &text, None, &vars).unwrap();
    assert_eq!(c.deployments[0].api_base, "http://127.0.0.1:9");
    assert_eq!(c.gateway.listen.port(), 4999);
    assert_eq!(c.routing.num_retries, 5);
}

#[test]
fn native_schema() {
    let text = r#"
deployments:
  - {group: small, provider: ollama, model: "llama3.2:1b", api_base: "http://127.0.0.1:1", context_window: 2048}
  - {group: big, provider: openai, model: smol, api_base: "http://127.0.0.1:2", context_window: 4096}
fallbacks: [small, big]
routing: {reserve_output_tokens: 256, cooldown_time: "500ms", first_byte_timeout: 3}
gateway: {listen: "127.0.0.1:0"}
"#;
    let c = load(text).unwrap();
    assert_eq!(c.routing.reserve_output_tokens, 256);
    assert_eq!(
        c.routing.cooldown_time,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(
        c.deployments[1].timeouts.first_byte,
        std::time::Duration::from_secs(3)
    );
    assert_eq!(c.groups[0].fallbacks, vec![1]);
}

#[test]
fn fallbacks_to_self_or_duplicates_are_rejected() {
    let text = SEED.replace("    - local-large\n", "    - local-small\n");
    let e = load(&text).unwrap_err();
    assert_eq!(e.key(), Some("router_settings.fallbacks[2]"), "{e}");
}
