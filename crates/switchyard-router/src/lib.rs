//! The router service: the gRPC face of Switchyard's routing.
//!
//! [`RouterService`] implements the `Router` service of `proto/`. The gateway calls it over a
//! real network connection in split mode, and in `serve` mode calls the same trait methods
//! directly, so both modes run the same code. A chat request's work writes its events into a
//! bounded channel; the channel closing (the caller went away) cancels the backend request. A
//! streamed request's work runs as its own task; an unstreamed one's is driven by the reader of
//! its events (see `driven`), which saves the runtime's idle worker several wake-ups.
//! Over the network, every call is authenticated first (see `auth`).

mod allow;
mod attempt;
mod auth;
mod backend_count;
mod boundary;
mod capacity;
mod chat;
mod count_cost;
mod driven;
mod embed;
mod explain;
mod failures;
mod metrics;
mod metrics_capacity;
mod queue;
mod reload;
mod route_error;
#[cfg(test)]
mod routing_cost;
mod seam;
mod shared;
mod spill;
mod state;
mod strategy;
mod tokenizers;
mod trace;
mod usage;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use switchyard_core::config::Config;
use switchyard_proto as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub use auth::{KeyResolver, ResolvedKey, RouterAuth};
pub use capacity::Slots;
pub use queue::Queues;
pub use reload::{ReloadError, ReloadOutcome};
pub use shared::Shared;
pub use state::{RouterState, StateError};
pub use usage::{AttemptUsage, RequestRecord, SinkStats, UsageSink};

/// Events buffered between a request's task and the caller.
const EVENT_BUFFER: usize = 32;

/// Reloads the configuration of the process a router runs in, when its `Reload` rpc asks (the
/// process owns the file and its other parts; see `switchyard::reload`).
pub trait ReloadHook: Send + Sync {
    /// Reloads (or, with `status_only`, reports the status): whether the config was accepted,
    /// and the report as JSON.
    fn reload(
        &self,
        cause: String,
        status_only: bool,
    ) -> futures::future::BoxFuture<'static, (bool, String)>;
}

/// The router service.
#[derive(Clone)]
pub struct RouterService {
    /// The running state; each call works on the snapshot it took when it started.
    live: Arc<reload::Live>,
    /// `None`: every caller is trusted (in process, where only the gateway can call).
    auth: Option<Arc<RouterAuth>>,
    /// What the `Reload` rpc calls; `None`: it answers "unimplemented".
    reload_hook: Option<Arc<dyn ReloadHook>>,
}

impl RouterService {
    pub fn new(config: Config) -> Result<Self, StateError> {
        Self::with_usage_sink(config, None)
    }

    /// A router whose finished requests are handed to `sink` (the usage ledger's recorder).
    pub fn with_usage_sink(
        config: Config,
        sink: Option<Arc<dyn UsageSink>>,
    ) -> Result<Self, StateError> {
        Self::build(config, sink, None)
    }

    /// The full constructor: usage sink, and where tokenizers fetched from Ollama are cached.
    /// Starts background discovery of exact tokenizers (needs a Tokio runtime).
    pub fn build(
        config: Config,
        sink: Option<Arc<dyn UsageSink>>,
        tokenizer_cache: Option<std::path::PathBuf>,
    ) -> Result<Self, StateError> {
        let mut state = RouterState::new(config)?;
        state.usage_sink = sink;
        tokenizers::discover_ollama(
            &state.config,
            state.tokens.clone(),
            tokenizer_cache.clone(),
            &|_| false,
        );
        state.backend_counting.detect_all();
        Ok(RouterService {
            live: Arc::new(reload::Live::new(state, tokenizer_cache)),
            auth: None,
            reload_hook: None,
        })
    }

    /// Puts `config` into service without a restart: requests already running finish on the
    /// config they started with, the next ones use the new one. What is known about
    /// deployments that still exist (same id) carries over; restart-only keys keep their running
    /// value and are listed in the outcome. A config equal to the running one changes nothing.
    pub async fn reload(&self, config: Config) -> Result<ReloadOutcome, ReloadError> {
        self.live.reload(config).await
    }

    /// The config generation: 1 at start, one more for every reload that changed something.
    pub fn generation(&self) -> u64 {
        self.live.generation()
    }

    /// This service with every call authenticated by `auth` (a router listening on a socket).
    pub fn with_auth(mut self, auth: RouterAuth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// This service with its `Reload` rpc answered by `hook`.
    pub fn with_reload_hook(mut self, hook: Arc<dyn ReloadHook>) -> Self {
        self.reload_hook = Some(hook);
        self
    }

    async fn identify(&self, md: &tonic::metadata::MetadataMap) -> Result<auth::Identity, Status> {
        match &self.auth {
            Some(a) => a.identify(md).await,
            None => Ok(auth::Identity::Trusted),
        }
    }

    /// The tonic server wrapping this service (mount it on a transport, or call it in process).
    pub fn into_server(self) -> pb::router_server::RouterServer<Self> {
        pb::router_server::RouterServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// The running state (a snapshot: a reload does not change the one returned).
    pub fn state(&self) -> Arc<RouterState> {
        self.live.snapshot()
    }

    /// The Prometheus exposition of this router's metrics, with deployment health refreshed
    /// from the health view.
    pub fn render_metrics(&self) -> String {
        let state = self.live.snapshot();
        for d in &state.config.deployments {
            let h = state.shared.view.get(&d.id);
            let v = match h.status {
                switchyard_health::Status::Up => 1,
                switchyard_health::Status::Down => 0,
                switchyard_health::Status::Unknown => -1,
            };
            state.metrics.set_health(&d.id, v, h.loaded);
        }
        for (ix, d) in state.config.deployments.iter().enumerate() {
            if let Some(l) = capacity::limit(&state, ix) {
                let in_use = state.capacity.seen(&d.id);
                state.metrics.capacity.slots(&d.id, l.slots, in_use);
            }
        }
        let redis_errors = state.shared.redis.as_ref().map(|r| r.error_count());
        let sink = state.usage_sink.as_ref().and_then(|s| s.stats());
        state.metrics.set_process(redis_errors, sink);
        state.metrics.render()
    }

    /// The dry-run plan for a request (what `Explain` answers), without a gRPC round trip.
    pub fn explain_local(&self, req: &pb::ChatRequest) -> pb::ExplainResponse {
        explain::explain(&self.live.snapshot(), req)
    }
}

type ChatStream = Pin<Box<dyn Stream<Item = Result<pb::ChatEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::router_server::Router for RouterService {
    type ChatStream = ChatStream;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let incoming = request
            .metadata()
            .get(switchyard_telemetry::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let who = self.identify(request.metadata()).await?;
        let mut req = request.into_inner();
        who.apply(&mut req, true)?;
        let span = trace::request_span(&req, incoming.as_deref());
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let state = self.live.snapshot();
        let stream = req.stream;
        let work = async move { chat::run(&state, req, tx, incoming).await }.instrument(span);
        if stream {
            // A stream's events come one by one over its whole life; measured, the reader
            // driving them costs more wake-ups than a task of their own.
            tokio::spawn(work);
            Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
        } else {
            Ok(Response::new(Box::pin(driven::DrivenStream::new(work, rx))))
        }
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let who = self.identify(request.metadata()).await?;
        let mut models = explain::list_models(&self.live.snapshot());
        if let Some(allowed) = who.allowed_groups() {
            models.groups.retain(|g| allowed.contains(&g.name));
            for g in &mut models.groups {
                g.fallbacks.retain(|f| allowed.contains(f));
            }
        }
        Ok(Response::new(models))
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let incoming = request
            .metadata()
            .get(switchyard_telemetry::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let who = self.identify(request.metadata()).await?;
        let mut req = request.into_inner();
        embed::apply_identity(&who, &mut req)?;
        // A task of its own, so a caller that leaves mid-request still gets its usage recorded.
        let state = self.live.snapshot();
        let work = tokio::spawn(async move { embed::run(&state, req, incoming).await });
        work.await
            .map(Response::new)
            .map_err(|e| Status::internal(format!("the embeddings request failed: {e}")))
    }

    async fn explain(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        let who = self.identify(request.metadata()).await?;
        let mut req = request.into_inner();
        who.apply(&mut req, false)?;
        Ok(Response::new(explain::explain(&self.live.snapshot(), &req)))
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        let who = self.identify(request.metadata()).await?;
        if matches!(who, auth::Identity::Key(_)) {
            return Err(Status::permission_denied(
                "only the master key or the internal secret may reload the router",
            ));
        }
        let Some(hook) = &self.reload_hook else {
            return Err(Status::unimplemented(
                "this router has no configuration file to reload",
            ));
        };
        let req = request.into_inner();
        let (ok, report_json) = hook.reload(req.cause, req.status_only).await;
        Ok(Response::new(pb::ReloadResponse { ok, report_json }))
    }
}
