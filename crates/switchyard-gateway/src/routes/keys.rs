//! `/key/generate`, `/key/info`, `/key/list`, `/key/update`, `/key/delete`: virtual keys with
//! LiteLLM's field names where they overlap (`models`, `max_budget` — in tokens here —,
//! `budget_duration`, `rpm_limit`, `tpm_limit`, `max_parallel_requests`, `duration` / `expires`,
//! `key_alias`, `metadata`). The master key only (the auth middleware checks).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use switchyard_ledger::proto::{DeleteKeysRequest, KeyLookup, VirtualKey};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::keys::{VirtualKeys, generate_plain, now_ms};

fn keys(state: &AppState) -> Result<&Arc<VirtualKeys>, ApiError> {
    state.keys.as_ref().ok_or_else(|| {
        ApiError::invalid(
            "virtual keys need a master key (general_settings.master_key) and a usage ledger",
            None,
        )
    })
}

fn backend_error(e: String) -> ApiError {
    ApiError::router_unavailable(format!("the key store is unavailable: {e}"))
}

const FIELDS: &[&str] = &[
    "key",
    "key_alias",
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "duration",
    "expires",
    "metadata",
];

/// `Some(None)` when the field is present as `null` (clear it), `None` when absent.
fn field<T: DeserializeOwned>(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<Option<T>>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => serde_json::from_value(v.clone())
            .map(|t| Some(Some(t)))
            .map_err(|e| ApiError::invalid(format!("{name}: {e}"), Some(name))),
    }
}

fn duration_secs(text: &str, name: &str) -> Result<u64, ApiError> {
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            ApiError::invalid(
                format!("{name}: {text:?} is not a duration such as \"30d\", \"12h\" or \"90s\""),
                Some(name),
            )
        })
}

fn parse_expires(v: &Value) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64().map(|s| s.saturating_mul(1000)).ok_or_else(|| {
            ApiError::invalid("expires: not a Unix time in seconds", Some("expires"))
        }),
        Value::String(s) => humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("expires: {s:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"),
                    Some("expires"),
                )
            }),
        _ => Err(ApiError::invalid(
            "expires: give an RFC 3339 time or Unix seconds",
            Some("expires"),
        )),
    }
}

/// Applies the fields of `body` to `k` (absent: unchanged; `null`: cleared).
async fn apply(
    state: &AppState,
    k: &mut VirtualKey,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(unknown) = body.keys().find(|f| !FIELDS.contains(&f.as_str())) {
        return Err(ApiError::invalid(
            format!(
                "unknown field `{unknown}`; supported: {}",
                FIELDS[1..].join(", ")
            ),
            Some(unknown),
        ));
    }
    if let Some(v) = field::<String>(body, "key_alias")? {
        k.key_alias = v.unwrap_or_default();
    }
    if let Some(v) = field::<Vec<String>>(body, "models")? {
        let models = v.unwrap_or_default();
        if !models.is_empty() {
            let groups = state
                .router
                .list_models()
                .await
                .map_err(|s| ApiError::router_unavailable(s.message()))?
                .groups;
            if let Some(bad) = models
                .iter()
                .find(|m| !groups.iter().any(|g| &g.name == *m))
            {
                return Err(ApiError::invalid(
                    format!("models: `{bad}` is not a model group (see GET /v1/models)"),
                    Some("models"),
                ));
            }
        }
        k.models = models;
    }
    if let Some(v) = field::<u64>(body, "max_budget")? {
        k.max_budget = v;
    }
    if let Some(v) = field::<String>(body, "budget_duration")? {
        k.budget_duration_s = v
            .map(|t| duration_secs(&t, "budget_duration"))
            .transpose()?;
    }
    if let Some(v) = field::<u32>(body, "rpm_limit")? {
        k.rpm_limit = v;
    }
    if let Some(v) = field::<u64>(body, "tpm_limit")? {
        k.tpm_limit = v;
    }
    if let Some(v) = field::<u32>(body, "max_parallel_requests")? {
        k.max_parallel_requests = v;
    }
    if let Some(v) = field::<String>(body, "duration")? {
        k.expires_ms =
            match v {
                Some(t) => {
                    let secs = duration_secs(&t, "duration")?;
                    Some(now_ms().saturating_add(
                        i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                    ))
                }
                None => None,
            };
    }
    if let Some(v) = body.get("expires") {
        k.expires_ms = match v {
            Value::Null => None,
            v => Some(parse_expires(v)?),
        };
    }
    if let Some(v) = field::<Map<String, Value>>(body, "metadata")? {
        k.metadata_json = v.map(|m| Value::Object(m).to_string()).unwrap_or_default();
    }
    Ok(())
}

fn rfc3339(ms: i64) -> Value {
    let Ok(ms) = u64::try_from(ms) else {
        return Value::Null;
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    Value::String(humantime::format_rfc3339_seconds(t).to_string())
}

fn info_json(k: &VirtualKey) -> Value {
    json!({
        "key_id": k.key_id,
        "key_alias": if k.key_alias.is_empty() { Value::Null } else { k.key_alias.clone().into() },
        "key_hint": k.key_hint,
        "models": k.models,
        "max_budget": k.max_budget,
        "budget_duration": k.budget_duration_s.map(|s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string()),
        "rpm_limit": k.rpm_limit,
        "tpm_limit": k.tpm_limit,
        "max_parallel_requests": k.max_parallel_requests,
        "expires": k.expires_ms.map_or(Value::Null, rfc3339),
        "metadata": serde_json::from_str::<Value>(&k.metadata_json).unwrap_or(json!({})),
        "created_at": rfc3339(k.created_ms),
    })
}

async fn info_with_spend(keys: &VirtualKeys, k: &VirtualKey) -> Value {
    let mut v = info_json(k);
    if keys.budgets.enforceable()
        && let Ok(s) = keys.budgets.spend(k, now_ms()).await
    {
        v["spend"] = s.spent.into();
        v["budget_reset_at"] = s.resets_at_ms.map_or(Value::Null, rfc3339);
    }
    v
}

fn body_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid("the body must be a JSON object", None)),
    }
}

/// `POST /key/generate`
pub async fn generate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state)?;
    let body = body_object(body)?;
    if body.contains_key("key") {
        return Err(ApiError::invalid(
            "key: keys are generated, not chosen",
            Some("key"),
        ));
    }
    let plain = generate_plain();
    let mut k = VirtualKey {
        key_hash: keys.hash(&plain),
        key_id: uuid::Uuid::new_v4().simple().to_string(),
        created_ms: now_ms(),
        key_hint: format!("{}…", plain.get(..7).unwrap_or("sk-")),
        ..Default::default()
    };
    apply(&state, &mut k, &body).await?;
    keys.backend().put(k.clone()).await.map_err(backend_error)?;
    keys.invalidate(&k.key_hash);
    let mut out = info_json(&k);
    // The only time the key itself is shown.
    out["key"] = plain.into();
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct KeyParam {
    key: Option<String>,
}

/// Finds a key given as the plain key (`sk-…`) or its id.
async fn find(keys: &VirtualKeys, key: &str) -> Result<VirtualKey, ApiError> {
    let lookup = if key.starts_with("sk-") {
        KeyLookup {
            key_hash: keys.hash(key),
            key_id: String::new(),
        }
    } else {
        KeyLookup {
            key_hash: String::new(),
            key_id: key.to_owned(),
        }
    };
    keys.backend()
        .get(lookup)
        .await
        .map_err(backend_error)?
        .ok_or_else(|| ApiError::not_found("no such key"))
}

/// `GET /key/info?key=…`
pub async fn info(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<KeyParam>,
) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state)?;
    let key = p
        .key
        .ok_or_else(|| ApiError::invalid("give ?key= (the key or its key_id)", Some("key")))?;
    let k = find(keys, &key).await?;
    Ok(Json(
        json!({"key": k.key_id, "info": info_with_spend(keys, &k).await}),
    ))
}

/// `GET /key/list`
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state)?;
    let all = keys.backend().list().await.map_err(backend_error)?;
    let mut out = Vec::with_capacity(all.len());
    for k in &all {
        out.push(info_with_spend(keys, k).await);
    }
    Ok(Json(json!({"keys": out})))
}

/// `POST /key/update`
pub async fn update(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state)?;
    let body = body_object(body)?;
    let key = match body.get("key") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::invalid(
                "key: give the key or its key_id",
                Some("key"),
            ));
        }
    };
    let mut k = find(keys, &key).await?;
    apply(&state, &mut k, &body).await?;
    keys.backend().put(k.clone()).await.map_err(backend_error)?;
    keys.invalidate(&k.key_hash);
    Ok(Json(info_with_spend(keys, &k).await))
}

/// `POST /key/delete` with `{"keys": [...]}` (keys or key ids).
pub async fn delete(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let keys = keys(&state)?;
    let list: Vec<String> = match body.get("keys") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::invalid(format!("keys: {e}"), Some("keys")))?,
        None => {
            return Err(ApiError::invalid(
                "keys: give a list of keys or key ids",
                Some("keys"),
            ));
        }
    };
    let mut req = DeleteKeysRequest::default();
    let mut deleted = Vec::new();
    for key in &list {
        let k = find(keys, key).await?;
        keys.invalidate(&k.key_hash);
        req.key_hashes.push(k.key_hash);
        deleted.push(k.key_id);
    }
    keys.backend().delete(req).await.map_err(backend_error)?;
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// A budget check's verdict for the chat route.
pub(crate) async fn check_budget(keys: &VirtualKeys, k: &VirtualKey) -> Result<(), ApiError> {
    let Some(max) = k.max_budget else {
        return Ok(());
    };
    let s =
        keys.budgets.spend(k, now_ms()).await.map_err(|e| {
            ApiError::router_unavailable(format!("cannot check the key's budget: {e}"))
        })?;
    if s.spent < max {
        return Ok(());
    }
    let when = match s.resets_at_ms {
        Some(ms) => format!("; it resets at {}", rfc3339(ms).as_str().unwrap_or("")),
        None => String::new(),
    };
    Err(ApiError {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        kind: "budget_exceeded",
        code: "budget_exceeded".into(),
        message: format!(
            "Budget has been exceeded: this key has used {} of its max_budget of {max} tokens{}{when}",
            s.spent,
            k.budget_duration_s
                .map(|d| format!(
                    " per {}",
                    humantime::format_duration(std::time::Duration::from_secs(d))
                ))
                .unwrap_or_default(),
        ),
        param: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Budgets;

    #[test]
    fn budget_windows_start_at_creation_and_repeat() {
        let k = VirtualKey {
            created_ms: 1_000,
            budget_duration_s: Some(60),
            ..Default::default()
        };
        assert_eq!(Budgets::window(&k, 1_000), (1_000, Some(61_000)));
        assert_eq!(Budgets::window(&k, 130_000), (121_000, Some(181_000)));
        let forever = VirtualKey::default();
        assert_eq!(Budgets::window(&forever, 5), (0, None));
    }
}
