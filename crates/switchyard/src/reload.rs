//! Reloading this process's configuration without a restart.
//!
//! One [`Reloader`] per process owns the running config and fans a new one out to the parts the
//! process runs: the router (its state swapped atomically: requests already running finish on
//! the config they started with, see `switchyard_router::RouterService::reload`), the gateway
//! (its app rebuilt with the new options, see `switchyard_gateway::LiveApp`) and the prober
//! (its targets). [`Reloader::apply`] takes a config built in code (model discovery);
//! [`Reloader::reload_file`] reads the file, and runs on SIGHUP ([`Reloader::on_sighup`]), on a
//! change of the file ([`Reloader::watch_file`]) and from the gateway's `/admin/reload`.
//!
//! A file is parsed and validated first. A refused one (or a config a part cannot apply) leaves
//! everything as it was and is reported: in the log, in `switchyard_config_reload_total
//! {result="error"}`, and in the status the admin route shows. Keys that only take effect at
//! start keep their running value and are reported as needing a restart.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use switchyard_core::config::diff::{ConfigDiff, diff, fingerprint, keep_restart_only};
use switchyard_core::config::{Config, ProcessEnv};
use switchyard_gateway::{AppState, ConfigAdmin, LiveApp, RouterChannel};
use switchyard_health::{Prober, now_ms};
use switchyard_proto as pb;
use switchyard_router::RouterService;
use tokio::sync::watch;

/// What set a reload off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The process received SIGHUP.
    Sighup,
    /// The config file's content changed.
    FileChange,
    /// `POST /admin/reload` on this process's gateway.
    Admin,
    /// The gateway's admin route, passed on to a router over gRPC.
    Gateway,
    /// Model discovery found other models.
    Discovery,
    /// Code calling [`Reloader::apply`] for another reason.
    Api,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Sighup => "sighup",
            Cause::FileChange => "file",
            Cause::Admin => "admin",
            Cause::Gateway => "gateway",
            Cause::Discovery => "discovery",
            Cause::Api => "api",
        }
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this process was started without a config file to reload")]
    NoFile,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Router(#[from] switchyard_router::ReloadError),
    #[error("cannot watch {path}: {reason}")]
    Watch { path: String, reason: String },
}

/// The outcome of one reload.
#[derive(Clone, Debug)]
pub struct Report {
    pub cause: Cause,
    /// `applied`, `unchanged` or `error`.
    pub result: &'static str,
    /// The generation in service after this reload.
    pub generation: u64,
    pub config_hash: String,
    pub diff: ConfigDiff,
    pub error: Option<String>,
}

impl Report {
    pub fn to_json(&self, service: &str) -> Value {
        let d = &self.diff;
        json!({
            "service": service,
            "result": self.result,
            "cause": self.cause.as_str(),
            "generation": self.generation,
            "config_hash": self.config_hash,
            "changes": {
                "deployments_added": d.deployments_added,
                "deployments_removed": d.deployments_removed,
                "deployments_changed": d.deployments_changed,
                "groups_added": d.groups_added,
                "groups_removed": d.groups_removed,
                "groups_changed": d.groups_changed,
                "settings_changed": d.settings_changed,
            },
            "needs_restart": d.needs_restart,
            "error": self.error,
        })
    }
}

/// The gateway as a reload replaces it: the app in service and what every new one shares.
pub(crate) struct GatewayPart {
    pub live: LiveApp,
    /// The state the app was built from (router handle, keys, usage, metrics, admin).
    pub base: AppState,
}

#[derive(Debug, Default)]
struct Status {
    generation: u64,
    config_hash: String,
    loaded_at_ms: u64,
    /// The digest of the file's content last read (valid or not): a change event whose content
    /// is the same does nothing.
    file_digest: Option<u64>,
    last: Option<Value>,
    last_error: Option<Value>,
    needs_restart: Vec<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

struct ReloadMetrics {
    registry: Registry,
    reloads: Family<ResultLabels, Counter>,
    generation: Gauge,
}

impl ReloadMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reload",
            "Configuration reloads by result (applied, unchanged, error)",
            reloads.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the configuration in service (1 at start, +1 per applied reload)",
            generation.clone(),
        );
        for result in ["applied", "unchanged", "error"] {
            let _ = reloads.get_or_create(&ResultLabels { result });
        }
        generation.set(1);
        ReloadMetrics {
            registry,
            reloads,
            generation,
        }
    }
}

/// One process's configuration reload (see the module docs).
pub struct Reloader {
    service: &'static str,
    path: OnceLock<PathBuf>,
    router: Option<RouterService>,
    prober: Option<Arc<Prober>>,
    gateway: OnceLock<GatewayPart>,
    /// A split-mode gateway's router: the admin route asks it to reload too.
    remote_router: OnceLock<pb::router_client::RouterClient<RouterChannel>>,
    /// The config in service; locked for the length of a reload, so reloads run one at a time.
    running: tokio::sync::Mutex<Config>,
    status: Mutex<Status>,
    metrics: ReloadMetrics,
    /// Dropped with the reloader: the watch and signal tasks end.
    alive: watch::Sender<()>,
    /// Model discovery: the file's config is expanded with the catalog before it is applied.
    discovery: OnceLock<Arc<crate::discovery::Discovery>>,
}

fn digest(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

fn config_hash(c: &Config) -> String {
    format!("{:016x}", digest(&fingerprint(c)))
}

impl Reloader {
    /// The reloader of a process named `service` running `config` with these parts.
    pub(crate) fn new(
        service: &'static str,
        config: Config,
        router: Option<RouterService>,
        prober: Option<Arc<Prober>>,
    ) -> Arc<Self> {
        let status = Status {
            generation: 1,
            config_hash: config_hash(&config),
            loaded_at_ms: now_ms(),
            ..Status::default()
        };
        Arc::new(Reloader {
            service,
            path: OnceLock::new(),
            router,
            prober,
            gateway: OnceLock::new(),
            remote_router: OnceLock::new(),
            running: tokio::sync::Mutex::new(config),
            status: Mutex::new(status),
            metrics: ReloadMetrics::new(),
            alive: watch::channel(()).0,
            discovery: OnceLock::new(),
        })
    }

    pub(crate) fn set_gateway(&self, part: GatewayPart) {
        let _ = self.gateway.set(part);
    }

    pub(crate) fn set_remote_router(&self, channel: RouterChannel) {
        let _ = self
            .remote_router
            .set(pb::router_client::RouterClient::new(channel));
    }

    /// The admin route's handle on this reloader.
    pub(crate) fn admin(self: &Arc<Self>) -> Arc<dyn ConfigAdmin> {
        Arc::new(Admin(Arc::downgrade(self)))
    }

    /// What a router's `Reload` rpc calls.
    pub(crate) fn router_hook(self: &Arc<Self>) -> Arc<dyn switchyard_router::ReloadHook> {
        Arc::new(Hook(Arc::downgrade(self)))
    }

    /// Expands every config this reloader reads from the file with model discovery's catalog,
    /// and lets [`Reloader::apply_catalog`] apply a new catalog.
    pub(crate) fn set_discovery(&self, discovery: Arc<crate::discovery::Discovery>) {
        let _ = self.discovery.set(discovery);
    }

    /// A new discovery catalog: the file's config expanded with it is put into service (under
    /// the same lock as a file reload, so the two cannot interleave). `None`: nothing changed.
    pub async fn apply_catalog(
        &self,
        catalog: switchyard_core::config::Catalog,
    ) -> Option<Result<Report, Report>> {
        let mut running = self.running.lock().await;
        let config = self.discovery.get()?.set_catalog(catalog)?;
        Some(
            self.apply_locked(&mut running, config, Cause::Discovery)
                .await,
        )
    }

    /// The file [`Reloader::reload_file`] reads.
    pub fn set_path(&self, path: impl Into<PathBuf>) {
        let _ = self.path.set(path.into());
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation in service: 1 at start, one more per applied reload.
    pub fn generation(&self) -> u64 {
        self.lock_status().generation
    }

    /// This process's reload metrics (Prometheus text).
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.metrics.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The status the admin route shows (JSON).
    pub fn status_json(&self) -> Value {
        let s = self.lock_status();
        json!({
            "service": self.service,
            "file": self.path.get().map(|p| p.display().to_string()),
            "generation": s.generation,
            "config_hash": s.config_hash,
            "loaded_at_ms": s.loaded_at_ms,
            "last_reload": s.last,
            "last_error": s.last_error,
            "needs_restart": s.needs_restart,
        })
    }

    /// Puts `config` into service in every part of this process (see the module docs).
    pub async fn apply(&self, config: Config, cause: Cause) -> Result<Report, Report> {
        let mut running = self.running.lock().await;
        self.apply_locked(&mut running, config, cause).await
    }

    /// Reads, parses and validates the config file, then applies it.
    pub async fn reload_file(&self, cause: Cause) -> Result<Report, Report> {
        self.reload_text(cause, None).await
    }

    /// [`Reloader::reload_file`] with the file's content when the caller has already read it.
    async fn reload_text(&self, cause: Cause, text: Option<String>) -> Result<Report, Report> {
        let mut running = self.running.lock().await;
        let config = match self.read_file(text).await {
            Ok(c) => c,
            Err(e) => return Err(self.refused(cause, &e)),
        };
        let Some(discovery) = self.discovery.get() else {
            return self.apply_locked(&mut running, config, cause).await;
        };
        // The file's wildcard entries, expanded with the current catalog; the previous file
        // config comes back if this one is refused.
        let previous = discovery.base();
        let expanded = discovery.set_base(config);
        let result = self.apply_locked(&mut running, expanded, cause).await;
        if result.is_err() {
            discovery.set_base(previous);
        }
        result
    }

    /// The same, only when the file's content differs from what was last read (a change event).
    async fn reload_if_changed(&self) -> Option<Result<Report, Report>> {
        let path = self.path.get()?;
        let text = tokio::fs::read_to_string(path).await.ok()?;
        if self.lock_status().file_digest == Some(digest(&text)) {
            return None;
        }
        Some(self.reload_text(Cause::FileChange, Some(text)).await)
    }

    /// Parses and validates the config file: `text` when already read, else read now.
    async fn read_file(&self, text: Option<String>) -> Result<Config, ReloadError> {
        let path = self.path.get().ok_or(ReloadError::NoFile)?;
        let shown = path.display().to_string();
        let text = match text {
            Some(t) => t,
            None => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| ReloadError::Read {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?,
        };
        self.lock_status().file_digest = Some(digest(&text));
        switchyard_core::config::load_str(&shown, &text, None, &ProcessEnv)
            .map_err(|e| ReloadError::Invalid(e.to_string()))
    }

    async fn apply_locked(
        &self,
        running: &mut Config,
        config: Config,
        cause: Cause,
    ) -> Result<Report, Report> {
        let d = diff(running, &config);
        if !d.needs_restart.is_empty() {
            tracing::warn!(
                service = self.service,
                keys = ?d.needs_restart,
                "config: these keys changed but take effect only after a restart; their running values are kept"
            );
        }
        if d.is_empty() {
            let report = {
                let mut s = self.lock_status();
                s.needs_restart.clone_from(&d.needs_restart);
                Report {
                    cause,
                    result: "unchanged",
                    generation: s.generation,
                    config_hash: s.config_hash.clone(),
                    diff: d,
                    error: None,
                }
            };
            self.record(&report);
            return Ok(report);
        }
        if let Some(router) = &self.router
            && let Err(e) = router.reload(config.clone()).await
        {
            return Err(self.refused(cause, &ReloadError::Router(e)));
        }
        let mut next = config;
        keep_restart_only(running, &mut next);
        if let Some(g) = self.gateway.get() {
            let mut state = g.base.clone();
            state.options = crate::gateway_options(&next);
            g.live.replace(switchyard_gateway::app(state));
        }
        if let Some(p) = &self.prober {
            p.reconfigure(&next);
        }
        let report = {
            let mut s = self.lock_status();
            s.generation += 1;
            s.config_hash = config_hash(&next);
            s.loaded_at_ms = now_ms();
            s.needs_restart.clone_from(&d.needs_restart);
            Report {
                cause,
                result: "applied",
                generation: s.generation,
                config_hash: s.config_hash.clone(),
                diff: d,
                error: None,
            }
        };
        *running = next;
        self.metrics
            .generation
            .set(i64::try_from(report.generation).unwrap_or(i64::MAX));
        tracing::info!(
            service = self.service,
            cause = cause.as_str(),
            generation = report.generation,
            added = ?report.diff.deployments_added,
            removed = ?report.diff.deployments_removed,
            changed = ?report.diff.deployments_changed,
            settings = ?report.diff.settings_changed,
            "config reloaded"
        );
        self.record(&report);
        Ok(report)
    }

    /// Reports a refused reload: the running config stays.
    fn refused(&self, cause: Cause, e: &ReloadError) -> Report {
        tracing::error!(
            service = self.service,
            cause = cause.as_str(),
            error = %e,
            "config reload refused; the running configuration stays"
        );
        let report = {
            let s = self.lock_status();
            Report {
                cause,
                result: "error",
                generation: s.generation,
                config_hash: s.config_hash.clone(),
                diff: ConfigDiff::default(),
                error: Some(e.to_string()),
            }
        };
        self.lock_status().last_error = Some(json!({
            "message": e.to_string(),
            "cause": cause.as_str(),
            "at_ms": now_ms(),
        }));
        self.record(&report);
        report
    }

    fn record(&self, report: &Report) {
        self.metrics
            .reloads
            .get_or_create(&ResultLabels {
                result: report.result,
            })
            .inc();
        let mut last = report.to_json(self.service);
        if let Some(o) = last.as_object_mut() {
            o.insert("at_ms".into(), now_ms().into());
        }
        self.lock_status().last = Some(last);
    }

    /// Reloads the file on every SIGHUP, for as long as this reloader lives.
    pub fn on_sighup(self: &Arc<Self>) -> Result<(), ReloadError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hup = signal(SignalKind::hangup()).map_err(|e| ReloadError::Watch {
                path: "SIGHUP".into(),
                reason: e.to_string(),
            })?;
            let weak = Arc::downgrade(self);
            let mut alive = self.alive.subscribe();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        got = hup.recv() => if got.is_none() { break },
                        _ = alive.changed() => break,
                    }
                    let Some(r) = weak.upgrade() else { break };
                    tracing::info!(service = r.service, "SIGHUP: reloading the configuration");
                    let _ = r.reload_file(Cause::Sighup).await;
                }
            });
        }
        Ok(())
    }

    /// Reloads the file whenever its content changes, for as long as this reloader lives. Its
    /// directory is watched (see [`crate::config_watch`]), and only changes that can concern
    /// the file count: the directory may also hold the usage database and logs, written on
    /// every request, which would otherwise wake the reloader per request and keep the
    /// directory from ever being quiet. The changes are gathered until they stop for a moment,
    /// then the content is compared with what was last read.
    pub fn watch_file(self: &Arc<Self>, path: &Path) -> Result<(), ReloadError> {
        use futures::StreamExt;
        self.set_path(path);
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut changes =
            crate::config_watch::changes(&dir, path.file_name().map(ToOwned::to_owned)).map_err(
                |e| ReloadError::Watch {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                },
            )?;
        // The content in service, so the first event compares against it.
        if let Ok(text) = std::fs::read_to_string(path) {
            self.lock_status().file_digest = Some(digest(&text));
        }
        let weak = Arc::downgrade(self);
        let mut alive = self.alive.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = changes.next() => if got.is_none() { break },
                    _ = alive.changed() => break,
                }
                // Writers truncate, then write, and a symlink swap is several steps.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.next()).await {}
                let Some(r) = weak.upgrade() else { break };
                let _ = r.reload_if_changed().await;
            }
        });
        Ok(())
    }
}

/// Which file a process reloads from, and whether a change of it reloads (SIGHUP always does).
#[derive(Clone, Debug)]
pub struct Follow {
    pub path: PathBuf,
    pub watch: bool,
}

impl Follow {
    /// Sets `reloader` to follow this file.
    pub fn start(&self, reloader: &Arc<Reloader>) -> Result<(), ReloadError> {
        reloader.set_path(&self.path);
        if self.watch {
            reloader.watch_file(&self.path)?;
        }
        reloader.on_sighup()
    }
}

/// How long the events that concern the config file must stop before the file is read.
const SETTLE: Duration = Duration::from_millis(150);

/// `/admin/reload` of a gateway (see `switchyard_gateway::ConfigAdmin`): reloads this process,
/// and in split mode asks the router to reload from its own file too.
struct Admin(Weak<Reloader>);

impl Admin {
    async fn ask_router(r: &Reloader, status_only: bool) -> Option<(bool, Value)> {
        let mut client = r.remote_router.get()?.clone();
        let req = pb::ReloadRequest {
            cause: Cause::Gateway.as_str().into(),
            status_only,
        };
        Some(match client.reload(req).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                let report = serde_json::from_str(&resp.report_json)
                    .unwrap_or_else(|_| json!({"report": resp.report_json}));
                (resp.ok, report)
            }
            Err(s) => (
                false,
                json!({"error": format!("the router did not reload: {}", s.message())}),
            ),
        })
    }
}

impl ConfigAdmin for Admin {
    fn status(&self) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            let Some(r) = self.0.upgrade() else {
                return json!({"error": "shutting down"});
            };
            let mut status = r.status_json();
            if let Some((_, router)) = Self::ask_router(&r, true).await
                && let Some(o) = status.as_object_mut()
            {
                o.insert("router".into(), router);
            }
            status
        })
    }

    fn reload(&self) -> BoxFuture<'_, Result<Value, Value>> {
        Box::pin(async move {
            let Some(r) = self.0.upgrade() else {
                return Err(json!({"error": "shutting down"}));
            };
            let (mut ok, mut report) = match r.reload_file(Cause::Admin).await {
                Ok(rep) => (true, rep.to_json(r.service)),
                Err(rep) => (false, rep.to_json(r.service)),
            };
            if let Some((router_ok, router)) = Self::ask_router(&r, false).await {
                if !router_ok && ok {
                    ok = false;
                    if let Some(o) = report.as_object_mut() {
                        let e = router["error"]
                            .as_str()
                            .unwrap_or("the router refused the configuration");
                        o.insert("error".into(), format!("router: {e}").into());
                    }
                }
                if let Some(o) = report.as_object_mut() {
                    o.insert("router".into(), router);
                }
            }
            if ok { Ok(report) } else { Err(report) }
        })
    }
}

/// A split-mode router's `Reload` rpc: reloads (or reports) this process.
struct Hook(Weak<Reloader>);

impl switchyard_router::ReloadHook for Hook {
    fn reload(&self, cause: String, status_only: bool) -> BoxFuture<'static, (bool, String)> {
        let weak = self.0.clone();
        Box::pin(async move {
            let Some(r) = weak.upgrade() else {
                return (false, json!({"error": "shutting down"}).to_string());
            };
            if status_only {
                return (true, r.status_json().to_string());
            }
            tracing::info!(cause, "reload asked over gRPC");
            match r.reload_file(Cause::Gateway).await {
                Ok(rep) => (true, rep.to_json(r.service).to_string()),
                Err(rep) => (false, rep.to_json(r.service).to_string()),
            }
        })
    }
}
