// Switchyard console: theme switch, short polling of live tables, the playground and key forms.
// Plain JavaScript, no library; every request goes to this gateway.
"use strict";
(function () {
  const UI = { "x-switchyard-ui": "1" };
  const root = document.documentElement;

  // Theme: saved choice, else the system's.
  const saved = localStorage.getItem("switchyard-theme");
  if (saved) root.dataset.theme = saved;
  function isDark() {
    return root.dataset.theme ? root.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function showTheme(btn) {
    btn.setAttribute("aria-pressed", String(isDark()));
    btn.textContent = isDark() ? "Light theme" : "Dark theme";
  }

  // Live regions: re-fetch [data-poll] every data-interval ms, keeping open <details> open.
  function poll(el) {
    const every = Number(el.dataset.interval || 3000);
    async function tick() {
      try {
        const r = await fetch(el.dataset.poll, { credentials: "same-origin", cache: "no-store" });
        if (r.redirected || r.status === 401) { location.href = "/ui/login"; return; }
        if (r.ok) {
          const open = new Set(Array.from(el.querySelectorAll("details[open]")).map((d) => d.dataset.request));
          el.innerHTML = await r.text();
          el.querySelectorAll("details").forEach((d) => { if (open.has(d.dataset.request)) d.open = true; });
          el.dataset.updated = String(Date.now());
        }
      } catch (e) { /* the next tick tries again */ }
      setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  // Playground.
  function requestBody(stream) {
    const text = document.getElementById("pg-messages").value.trim();
    let body;
    try {
      const v = JSON.parse(text);
      body = Array.isArray(v) ? { messages: v } : v;
    } catch (e) {
      body = { messages: [{ role: "user", content: text }] };
    }
    if (!body.model) body.model = document.getElementById("pg-model").value;
    const max = Number(document.getElementById("pg-max").value);
    if (max > 0 && body.max_tokens === undefined) body.max_tokens = max;
    body.stream = stream;
    return body;
  }
  function status(text) { document.getElementById("pg-status").textContent = text; }
  async function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: Object.assign({ "content-type": "application/json" }, UI),
      body: JSON.stringify(body),
    });
  }
  async function plan() {
    const body = requestBody(false);
    delete body.stream;
    status("Planning…");
    const r = await post("/ui/api/v1/explain", body);
    const v = await r.json();
    const tbody = document.querySelector("#plan tbody");
    tbody.textContent = "";
    if (!r.ok) { status((v.error && v.error.message) || "explain failed"); return; }
    (v.deployments || []).forEach((d) => {
      const tr = document.createElement("tr");
      tr.dataset.deployment = d.deployment;
      tr.dataset.verdict = d.verdict;
      cell(tr, d.rank == null ? "—" : String(d.rank));
      cell(tr, d.deployment);
      cell(tr, d.group);
      cell(tr, d.verdict);
      cell(tr, String(d.prompt_tokens));
      cell(tr, String(d.context_window));
      cell(tr, d.reason || "");
      tbody.appendChild(tr);
    });
    status(v.error ? "No deployment can take this request: " + (v.error.message || "") : "Plan for group " + (v.model || body.model) + ".");
  }
  async function send() {
    const answer = document.getElementById("answer");
    const served = document.getElementById("served");
    answer.textContent = ""; served.textContent = "";
    status("Sending…");
    const r = await post("/ui/api/v1/chat/completions", requestBody(true));
    const dep = r.headers.get("x-switchyard-deployment");
    if (!r.ok || !r.body) {
      let msg = "HTTP " + r.status;
      try { const v = await r.json(); msg = (v.error && v.error.message) || msg; } catch (e) { /* not JSON */ }
      status(msg); return;
    }
    served.textContent = "Served by " + (dep || "?") + " (group " + (r.headers.get("x-switchyard-group") || "?") + ")";
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        try {
          const ev = JSON.parse(data);
          if (ev.error) { status("Error: " + (ev.error.message || "")); continue; }
          const c = ev.choices && ev.choices[0];
          if (c && c.delta && c.delta.content) answer.textContent += c.delta.content;
          if (ev.model) served.dataset.model = ev.model;
        } catch (e) { /* keep-alive or partial line */ }
      }
    }
    status("Done.");
  }

  // Keys.
  async function createKey(form) {
    const body = {};
    const models = Array.from(form.querySelectorAll("input[name=models]:checked")).map((i) => i.value);
    if (models.length) body.models = models;
    ["key_alias", "budget_duration", "duration"].forEach((n) => { const v = form.elements[n].value.trim(); if (v) body[n] = v; });
    ["rpm_limit", "tpm_limit", "max_budget"].forEach((n) => { const v = form.elements[n].value; if (v !== "") body[n] = Number(v); });
    const r = await post("/ui/api/key/generate", body);
    const v = await r.json();
    const out = document.getElementById("key-new");
    if (!r.ok) { out.textContent = (v.error && v.error.message) || "failed"; out.className = "error"; return; }
    out.className = "";
    out.textContent = "New key (shown once, copy it now): ";
    const code = document.createElement("code");
    code.id = "new-key";
    code.textContent = v.key;
    out.appendChild(code);
    setTimeout(() => location.reload(), 4000);
  }
  async function deleteKey(id) {
    if (!window.confirm("Delete this key? Clients using it will be refused.")) return;
    const r = await post("/ui/api/key/delete", { keys: [id] });
    if (r.ok) location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const t = document.getElementById("theme");
    if (t) {
      showTheme(t);
      t.addEventListener("click", () => {
        root.dataset.theme = isDark() ? "light" : "dark";
        localStorage.setItem("switchyard-theme", root.dataset.theme);
        showTheme(t);
      });
    }
    document.querySelectorAll("[data-poll]").forEach(poll);
    const p = document.getElementById("pg-plan");
    if (p) p.addEventListener("click", () => plan().catch((e) => status(String(e))));
    const s = document.getElementById("pg-send");
    if (s) s.addEventListener("click", () => send().catch((e) => status(String(e))));
    const f = document.getElementById("pg-file");
    if (f) f.addEventListener("change", async () => {
      if (f.files && f.files[0]) document.getElementById("pg-messages").value = await f.files[0].text();
    });
    const kc = document.getElementById("key-create");
    if (kc) kc.addEventListener("submit", (e) => { e.preventDefault(); createKey(kc).catch(() => {}); });
    document.querySelectorAll("[data-delete]").forEach((b) =>
      b.addEventListener("click", () => deleteKey(b.dataset.delete)));
  });
})();
