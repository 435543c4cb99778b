//! The router's gRPC service as `switchyard router` serves it: the router's own service, except
//! that an unstreamed chat's response headers wait for its first event.
//!
//! tonic sends a server-streaming call's response headers as soon as the service returns its
//! stream, and the events follow when they exist. An unstreamed request's events all come at once,
//! after the backend has answered (the route, the whole answer, the finish and the usage), and the
//! gateway waits for the first of them anyway before it answers its caller. Sent early, the headers
//! cost the router a socket write of their own and the gateway a read and two task wake-ups per
//! request, for nothing. Held until the first event, headers, events and trailers leave in one
//! write. Streamed requests keep their early headers: the gateway opens a slow stream before its
//! first token, to send keep-alives on it.

use futures::StreamExt;
use switchyard_proto as pb;
use switchyard_router::RouterService;
use tonic::{Request, Response, Status};

/// Largest message either way (the router's own limit, see `RouterService::into_server`).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

type ChatStream = <RouterService as pb::router_server::Router>::ChatStream;

/// [`RouterService`] with an unstreamed chat's response headers sent with its first event.
pub(crate) struct HeadersWithFirstEvent(pub RouterService);

impl HeadersWithFirstEvent {
    pub(crate) fn into_server(self) -> pb::router_server::RouterServer<Self> {
        pb::router_server::RouterServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl pb::router_server::Router for HeadersWithFirstEvent {
    type ChatStream = ChatStream;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<ChatStream>, Status> {
        let stream = request.get_ref().stream;
        let response = self.0.chat(request).await?;
        if stream {
            return Ok(response);
        }
        let (metadata, mut events, extensions) = response.into_parts();
        // Reading the first event drives the request's work (the router's unstreamed events
        // are read by whoever drives them); dropped here, the work still finishes and records
        // the caller as gone, exactly as when tonic's reader is dropped.
        let events: ChatStream = match events.next().await {
            Some(first) => Box::pin(futures::stream::once(async move { first }).chain(events)),
            None => Box::pin(futures::stream::empty()),
        };
        Ok(Response::from_parts(metadata, events, extensions))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        self.0.list_models(request).await
    }

    async fn explain(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        self.0.explain(request).await
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        self.0.embed(request).await
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        pb::router_server::Router::reload(&self.0, request).await
    }
}
