//! Property tests of the config parser: random text, and the user's seed config with one value
//! replaced by anything, never panic the loader; every refusal names a key or says what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_core::config::{Format, load_str};

const SEED: &str = include_str!("../../../fixtures/seed-config.yaml");

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        ".{0,10}".prop_map(Value::String),
        Just(json!("os.environ/SWITCHYARD_PROPTEST_UNSET")),
        Just(json!("5s")),
        Just(json!("http://127.0.0.1:1")),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths into the seed config (as JSON pointers) and new top-level sections.
const PATHS: &[&str] = &[
    "/model_list",
    "/model_list/0",
    "/model_list/0/model_name",
    "/model_list/0/litellm_params",
    "/model_list/0/litellm_params/model",
    "/model_list/0/litellm_params/api_base",
    "/model_list/0/litellm_params/max_tokens",
    "/model_list/1/litellm_params/max_tokens",
    "/router_settings",
    "/router_settings/routing_strategy",
    "/router_settings/num_retries",
    "/router_settings/fallbacks",
    "/router_settings/fallbacks/1",
    "/general_settings",
    "/routing",
    "/gateway",
    "/state",
    "/ledger",
    "/prober",
    "/deployments",
];

fn seed_json() -> Value {
    let cfg = config::Config::builder()
        .add_source(config::File::from_str(SEED, config::FileFormat::Yaml))
        .build()
        .unwrap();
    cfg.try_deserialize().unwrap()
}

fn set(root: &mut Value, pointer: &str, v: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        Some(root)
    } else {
        root.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(m)) => {
            m.insert(last.to_string(), v);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a[i] = v;
            }
        }
        _ => {}
    }
}

fn load(text: &str, format: Format) {
    let env: HashMap<String, String> = HashMap::new();
    if let Err(e) = load_str("prop.yaml", text, Some(format), &env) {
        assert!(!e.to_string().trim().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in ".{0,300}") {
        load(&text, Format::Yaml);
        load(&text, Format::Json);
    }

    #[test]
    fn the_seed_config_with_one_value_replaced_never_panics(
        path in prop::sample::select(PATHS),
        v in json_value(),
    ) {
        let mut cfg = seed_json();
        set(&mut cfg, path, v);
        load(&cfg.to_string(), Format::Json);
    }

    #[test]
    fn the_seed_config_cut_short_never_panics(cut in 0usize..600) {
        let cut = cut.min(SEED.len());
        if SEED.is_char_boundary(cut) {
            load(&SEED[..cut], Format::Yaml);
        }
    }
}

#[test]
fn the_seed_config_itself_loads() {
    let env: HashMap<String, String> = HashMap::new();
    load_str("seed.yaml", SEED, Some(Format::Yaml), &env).unwrap();
}
