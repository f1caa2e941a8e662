//! The gRPC query service (`motstream.v1.MotQuery`), with grpc.health.v1 and server
//! reflection beside it, optional TLS and an optional bearer token.
//!
//! Health follows ingest: NOT_SERVING while ingest is not ready (starting, a partition
//! rebuilding or paused, the broker unreachable), SERVING otherwise, read at each call.
//! The token, when configured, guards MotQuery only: health and reflection stay open for
//! probes and tooling, and reveal no data.

mod convert;
mod health;
mod limits;
mod query;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use motstream_ingest::Health;
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_server::{MotQuery, MotQueryServer};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tracing::error;

pub use query::Ctx;
pub use watch::{WatchStream, Watchers};

use crate::alert_feed::AlertFeed;
use crate::state::AggregatorState;

/// The server's settings (from `ServiceConfig`).
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    pub listen: SocketAddr,
    /// Open WatchMots and WatchAlerts streams allowed at once; more get RESOURCE_EXHAUSTED.
    pub max_watchers: usize,
    /// Messages buffered per watcher before it is dropped as too slow.
    pub watch_buffer: usize,
    /// PEM certificate chain and key: both set turns TLS on.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A file holding the bearer token MotQuery calls must present; unset: no check.
    pub token_file: Option<PathBuf>,
}

impl GrpcSettings {
    pub fn from_config(cfg: &crate::config::ServiceConfig) -> Self {
        Self {
            listen: cfg.grpc_listen,
            max_watchers: cfg.grpc_max_watchers,
            watch_buffer: cfg.grpc_watch_buffer,
            tls_cert: cfg.grpc_tls_cert.clone(),
            tls_key: cfg.grpc_tls_key.clone(),
            token_file: cfg.grpc_token_file.clone(),
        }
    }
}

/// `motstream.v1.MotQuery` over the service's state.
#[derive(Debug, Clone)]
pub struct QueryService {
    ctx: Ctx,
    watchers: Arc<Watchers>,
}

impl QueryService {
    pub fn new(
        state: Arc<AggregatorState>,
        alerts: Arc<AlertFeed>,
        max_watchers: usize,
        watch_buffer: usize,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            ctx: Ctx::new(state, alerts),
            watchers: Arc::new(Watchers::new(max_watchers, watch_buffer, stopping)),
        }
    }

    /// Watcher bookkeeping (open and dropped watchers).
    pub fn watchers(&self) -> &Arc<Watchers> {
        &self.watchers
    }
}

/// Runs a unary handler on tokio's blocking pool, answering DEADLINE_EXCEEDED rather than a
/// late answer. A status read takes microseconds for one MOT but tens of milliseconds for every
/// MOT of a large catalog (ListMots); run inline, a burst of dashboard queries would hold every
/// async worker and stall the servers. Concurrent reads of all MOTs share one computation
/// (`Ctx::all`), so the pool's threads mostly wait rather than compete with ingest for cores.
async fn unary<T: Send + 'static, R: Send + 'static>(
    ctx: &Ctx,
    req: Request<T>,
    f: impl FnOnce(&Ctx, &T) -> Result<R, Status> + Send + 'static,
) -> Result<Response<R>, Status> {
    let deadline = convert::Deadline::of(&req);
    deadline.check()?;
    let ctx = ctx.clone();
    let r = tokio::task::spawn_blocking(move || f(&ctx, req.get_ref()))
        .await
        .map_err(|e| Status::internal(format!("the query failed: {e}")))??;
    deadline.check()?;
    Ok(Response::new(r))
}

#[tonic::async_trait]
impl MotQuery for QueryService {
    async fn get_mot(
        &self,
        req: Request<pb::GetMotRequest>,
    ) -> Result<Response<pb::GetMotResponse>, Status> {
        limits::get_mot(req.get_ref())?;
        unary(&self.ctx, req, |c, r| c.get_mot(r)).await
    }

    async fn list_mots(
        &self,
        req: Request<pb::ListMotsRequest>,
    ) -> Result<Response<pb::ListMotsResponse>, Status> {
        limits::list_mots(req.get_ref())?;
        unary(&self.ctx, req, |c, r| c.list_mots(r)).await
    }

    async fn get_experience(
        &self,
        req: Request<pb::GetExperienceRequest>,
    ) -> Result<Response<pb::GetExperienceResponse>, Status> {
        limits::get_experience(req.get_ref())?;
        unary(&self.ctx, req, |c, r| c.get_experience(r)).await
    }

    async fn list_unidentified_mots(
        &self,
        req: Request<pb::ListUnidentifiedMotsRequest>,
    ) -> Result<Response<pb::ListUnidentifiedMotsResponse>, Status> {
        unary(&self.ctx, req, |c, _| Ok(c.unidentified())).await
    }

    type WatchMotsStream = WatchStream<pb::MotStatus>;

    async fn watch_mots(
        &self,
        req: Request<pb::WatchMotsRequest>,
    ) -> Result<Response<Self::WatchMotsStream>, Status> {
        limits::watch_mots(req.get_ref())?;
        let deadline = convert::Deadline::of(&req);
        watch::watch_mots(&self.ctx, &self.watchers, req.get_ref(), deadline).map(Response::new)
    }

    type WatchAlertsStream = WatchStream<pb::AlertTransition>;

    async fn watch_alerts(
        &self,
        req: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        limits::watch_alerts(req.get_ref())?;
        let deadline = convert::Deadline::of(&req);
        watch::watch_alerts(&self.ctx, &self.watchers, req.get_ref(), deadline).map(Response::new)
    }

    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        limits::list_alerts(req.get_ref())?;
        unary(&self.ctx, req, |c, r| c.list_alerts(r)).await
    }

    async fn list_active_alerts(
        &self,
        req: Request<pb::ListActiveAlertsRequest>,
    ) -> Result<Response<pb::ListActiveAlertsResponse>, Status> {
        unary(&self.ctx, req, |c, r| c.list_active_alerts(r)).await
    }
}

/// Checks `authorization: Bearer <token>` in constant time for the token's length.
#[derive(Clone)]
struct BearerCheck {
    want: Arc<str>,
}

impl tonic::service::Interceptor for BearerCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let got = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("authorization: missing `Bearer <token>` metadata")
            })?;
        let (a, b) = (got.as_bytes(), self.want.as_bytes());
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0;
        if same {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "authorization: the bearer token is not valid",
            ))
        }
    }
}

/// The bearer token in `path` (surrounding whitespace trimmed), for gRPC and the dashboard.
pub(crate) fn read_token(path: &PathBuf) -> anyhow::Result<Arc<str>> {
    let t = std::fs::read_to_string(path)
        .with_context(|| format!("grpc_token_file: reading {}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        anyhow::bail!("grpc_token_file: {} is empty", path.display());
    }
    Ok(Arc::from(t))
}

fn tls(settings: &GrpcSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    match (&settings.tls_cert, &settings.tls_key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => {
            let cert = std::fs::read(c)
                .with_context(|| format!("grpc_tls_cert: reading {}", c.display()))?;
            let key = std::fs::read(k)
                .with_context(|| format!("grpc_tls_key: reading {}", k.display()))?;
            Ok(Some(
                ServerTlsConfig::new().identity(Identity::from_pem(cert, key)),
            ))
        }
        (Some(_), None) => anyhow::bail!("grpc_tls_key: must be set with grpc_tls_cert"),
        (None, Some(_)) => anyhow::bail!("grpc_tls_cert: must be set with grpc_tls_key"),
    }
}

/// Binds `settings.listen` and serves until `stop` flips to true. Returns the bound address
/// (useful with port 0), the query service (for its watcher counts) and the server task.
pub async fn serve(
    settings: &GrpcSettings,
    state: Arc<AggregatorState>,
    alerts: Arc<AlertFeed>,
    health: Arc<Health>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, QueryService, tokio::task::JoinHandle<()>)> {
    let query = QueryService::new(
        state,
        alerts,
        settings.max_watchers,
        settings.watch_buffer,
        stop.clone(),
    );
    let token = settings.token_file.as_ref().map(read_token).transpose()?;
    let tls = tls(settings)?;
    let health_service = tonic_health::pb::health_server::HealthServer::new(
        health::IngestHealth::new(health, stop.clone()),
    );
    // Both reflection versions: older tools (grpcurl < 1.9, grpcio's reflection client) ask
    // v1alpha, newer ones v1.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(motstream_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .context("building the gRPC reflection service")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building the gRPC reflection service (v1alpha)")?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("grpc_listen: binding {}: {e}", settings.listen))?;
    let bound = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .context("grpc_tls_cert/grpc_tls_key: not a usable certificate and key")?;
    }
    // Explicit, not left to tonic's default: requests up to this size reach the handlers,
    // whose field limits (`limits`) answer INVALID_ARGUMENT; larger ones get OUT_OF_RANGE.
    let mot_query =
        MotQueryServer::new(query.clone()).max_decoding_message_size(limits::MAX_REQUEST_BYTES);
    let router = match token {
        Some(want) => builder
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(tonic::service::interceptor::InterceptedService::new(
                mot_query,
                BearerCheck { want },
            )),
        None => builder
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(mot_query),
    };
    let mut stop_serving = stop;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_serving.wait_for(|s| *s).await;
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            error!(error = %e, "gRPC server failed");
        }
    });
    Ok((bound, query, task))
}

#[cfg(test)]
mod tests;
