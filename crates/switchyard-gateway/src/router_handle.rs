//! How the gateway reaches the router: over gRPC (split mode, any transport), or in `serve` mode
//! by calling the router's service implementation directly — the same `Router` trait methods the
//! gRPC server calls, request metadata included, but without protobuf encoding, HTTP/2 framing
//! and body channels in between (about a seventh of a small request's CPU time).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use switchyard_proto as pb;
use switchyard_proto::router_client::RouterClient;
use tonic::{Request, Status};

use crate::RouterChannel;

/// The events of one chat request, as the router sends them.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ChatEvent, Status>> + Send>>;

/// A router service in this process.
pub type InProcessRouter = Arc<dyn pb::router_server::Router<ChatStream = EventStream>>;

/// The router, wherever it runs.
#[derive(Clone)]
pub enum RouterHandle {
    Grpc(RouterClient<RouterChannel>),
    InProcess(InProcessRouter),
}

impl RouterHandle {
    pub async fn chat(&self, req: Request<pb::ChatRequest>) -> Result<EventStream, Status> {
        match self {
            RouterHandle::Grpc(c) => {
                let mut c = c.clone();
                Ok(Box::pin(c.chat(req).await?.into_inner()))
            }
            RouterHandle::InProcess(r) => Ok(r.chat(req).await?.into_inner()),
        }
    }

    pub async fn embed(&self, req: Request<pb::EmbedRequest>) -> Result<pb::EmbedResponse, Status> {
        match self {
            RouterHandle::Grpc(c) => Ok(c.clone().embed(req).await?.into_inner()),
            RouterHandle::InProcess(r) => Ok(r.embed(req).await?.into_inner()),
        }
    }

    pub async fn list_models(&self) -> Result<pb::ListModelsResponse, Status> {
        let req = Request::new(pb::ListModelsRequest {});
        match self {
            RouterHandle::Grpc(c) => Ok(c.clone().list_models(req).await?.into_inner()),
            RouterHandle::InProcess(r) => Ok(r.list_models(req).await?.into_inner()),
        }
    }

    pub async fn explain(&self, req: pb::ChatRequest) -> Result<pb::ExplainResponse, Status> {
        let req = Request::new(req);
        match self {
            RouterHandle::Grpc(c) => Ok(c.clone().explain(req).await?.into_inner()),
            RouterHandle::InProcess(r) => Ok(r.explain(req).await?.into_inner()),
        }
    }
}
