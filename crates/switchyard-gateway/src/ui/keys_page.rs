//! The keys page (master key only): the virtual keys with their allow-lists and limits, a form
//! to create one (its secret is shown once) and a delete button per key. Listing uses the
//! `/key/list` handler; the page's script calls `/ui/api/key/generate` and `/key/delete`.

use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use super::html::{self, esc};
use crate::AppState;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "all".into(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// `GET /ui/keys`
pub(super) async fn page(State(state): State<AppState>) -> Response {
    if state.keys.is_none() {
        return html::page(
            "Keys",
            "/ui/keys",
            "<p>Virtual keys need a master key (<code>general_settings.master_key</code>) and a \
             usage ledger.</p>",
        );
    }
    let listed = crate::routes::keys::list(State(state.clone())).await;
    let rows = match listed {
        Ok(axum::Json(v)) => v["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| {
                        let id = text(&k["key_id"]);
                        format!(
                            "<tr data-key-id=\"{id}\"><th scope=\"row\">{alias}<br><span class=\"hint\">{hint} · {id}</span></th>\
                             <td>{models}</td><td>{rpm}</td><td>{tpm}</td><td>{budget}</td><td>{spend}</td><td>{expires}</td>\
                             <td><button type=\"button\" class=\"danger\" data-delete=\"{id}\">Delete<span class=\"sr\"> key {alias}</span></button></td></tr>",
                            id = esc(&id),
                            alias = esc(&text(&k["key_alias"])),
                            hint = esc(&text(&k["key_hint"])),
                            models = esc(&text(&k["models"])),
                            rpm = esc(&text(&k["rpm_limit"])),
                            tpm = esc(&text(&k["tpm_limit"])),
                            budget = esc(&text(&k["max_budget"])),
                            spend = esc(&text(&k["spend"])),
                            expires = esc(&text(&k["expires"])),
                        )
                    })
                    .collect::<String>()
            })
            .unwrap_or_default(),
        Err(e) => format!(
            "<tr><td colspan=\"8\" class=\"error\">{}</td></tr>",
            esc(&e.message)
        ),
    };
    let groups: String = state
        .router
        .list_models()
        .await
        .map(|m| m.groups)
        .unwrap_or_default()
        .iter()
        .map(|g| {
            format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"models\" value=\"{n}\"> {n}</label>",
                n = esc(&g.name)
            )
        })
        .collect();
    html::page(
        "Keys",
        "/ui/keys",
        &format!(
            r#"<form id="key-create" class="card">
<h2>Create a key</h2>
<label for="k-alias">Alias</label><input id="k-alias" name="key_alias" autocomplete="off">
<fieldset><legend>Allowed model groups (none ticked: all)</legend>{groups}</fieldset>
<div class="row">
<span><label for="k-rpm">Requests per minute</label><input id="k-rpm" name="rpm_limit" type="number" min="0" inputmode="numeric"></span>
<span><label for="k-tpm">Tokens per minute</label><input id="k-tpm" name="tpm_limit" type="number" min="0" inputmode="numeric"></span>
<span><label for="k-budget">Token budget</label><input id="k-budget" name="max_budget" type="number" min="0" inputmode="numeric"></span>
<span><label for="k-period">Budget period</label><input id="k-period" name="budget_duration" placeholder="30d"></span>
<span><label for="k-duration">Expires after</label><input id="k-duration" name="duration" placeholder="90d"></span>
</div>
<button type="submit">Create</button>
<p id="key-new" role="status" aria-live="polite"></p>
</form>
<div class="scroll"><table id="keys"><caption>Virtual keys</caption><thead><tr><th scope="col">Key</th>
<th scope="col">Models</th><th scope="col">RPM</th><th scope="col">TPM</th><th scope="col">Budget</th>
<th scope="col">Spent</th><th scope="col">Expires</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
<tbody>{rows}</tbody></table></div>"#
        ),
    )
}
