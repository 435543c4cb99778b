//! The playground: paste messages (or a whole chat request), see the router's plan for them
//! (`/v1/explain`: every deployment, its verdict and reason), then send them and watch the
//! answer stream in, with the deployment that served it. The page's script does the calls.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::html::{self, esc};
use crate::AppState;
use crate::keys::Caller;

const EXAMPLE: &str = r#"[
  {"role": "system", "content": "You are a concise assistant."},
  {"role": "user", "content": "Summarise why small models suit automation tasks."}
]"#;

/// `GET /ui/playground`
pub(super) async fn page(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Response {
    // A virtual key with an allow-list is offered only its groups.
    let allowed = caller
        .map(|c| c.0.allowed_groups().to_vec())
        .unwrap_or_default();
    let groups = state
        .router
        .list_models()
        .await
        .map(|m| m.groups)
        .unwrap_or_default();
    let options: String = groups
        .iter()
        .filter(|g| allowed.is_empty() || allowed.contains(&g.name))
        .map(|g| format!("<option>{}</option>", esc(&g.name)))
        .collect();
    html::page(
        "Playground",
        "/ui/playground",
        &format!(
            r#"<form id="playground" class="card">
<div class="row">
<label for="pg-model">Model group</label>
<select id="pg-model" name="model">{options}</select>
<label for="pg-max">Max output tokens</label>
<input id="pg-max" name="max_tokens" type="number" min="1" value="64" inputmode="numeric">
</div>
<label for="pg-messages">Messages (a JSON array of messages, a whole chat request object, or plain text)</label>
<textarea id="pg-messages" name="messages" rows="8" spellcheck="false">{example}</textarea>
<label for="pg-file">Or load a JSON request</label>
<input id="pg-file" type="file" accept="application/json,.json">
<div class="row">
<button type="button" id="pg-plan">Show the plan</button>
<button type="button" id="pg-send">Send and stream</button>
</div>
<p id="pg-status" class="hint" role="status" aria-live="polite"></p>
</form>
<section aria-labelledby="h-plan"><h2 id="h-plan">Plan</h2>
<div class="scroll"><table id="plan"><thead><tr><th scope="col">Try</th><th scope="col">Deployment</th>
<th scope="col">Group</th><th scope="col">Verdict</th><th scope="col">Prompt tokens</th>
<th scope="col">Window</th><th scope="col">Reason</th></tr></thead><tbody></tbody></table></div>
</section>
<section aria-labelledby="h-answer"><h2 id="h-answer">Answer</h2>
<p id="served" class="hint"></p>
<pre id="answer" aria-live="polite"></pre>
</section>"#,
            example = esc(EXAMPLE)
        ),
    )
}
