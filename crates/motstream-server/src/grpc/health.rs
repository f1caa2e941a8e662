//! grpc.health.v1 answered from ingest's health report at the moment of each call: SERVING
//! when ingest is ready, NOT_SERVING while it is not (starting, a partition rebuilding or
//! paused, the broker unreachable, the group membership unsettled or lost): the same report
//! and the same truth as `/readyz`. Computed per call rather than copied on a timer, so a
//! probe never sees SERVING while `/readyz` already says rebuilding. `Watch` polls the report
//! and sends each change.

use std::sync::Arc;
use std::time::Duration;

use motstream_ingest::Health;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health as HealthApi;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// How often `Watch` re-reads the report.
const WATCH_POLL: Duration = Duration::from_millis(250);

/// The services health answers for: the server as a whole ("") and the query API.
const SERVICES: [&str; 2] = ["", "motstream.v1.MotQuery"];

#[derive(Debug, Clone)]
pub struct IngestHealth {
    health: Arc<Health>,
    stopping: watch::Receiver<bool>,
}

impl IngestHealth {
    pub fn new(health: Arc<Health>, stopping: watch::Receiver<bool>) -> Self {
        Self { health, stopping }
    }

    fn status(&self, service: &str) -> Option<ServingStatus> {
        SERVICES.contains(&service).then(|| {
            if *self.stopping.borrow() {
                ServingStatus::NotServing
            } else if self.health.report().ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        })
    }
}

fn response(s: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: s.into() }
}

#[tonic::async_trait]
impl HealthApi for IngestHealth {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &req.get_ref().service;
        self.status(service)
            .map(|s| Response::new(response(s)))
            .ok_or_else(|| Status::not_found(format!("service: {service:?} is not served here")))
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = req.into_inner().service;
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            let mut stopping = this.stopping.clone();
            let mut last = None;
            loop {
                // The spec: an unknown service is reported, not refused, as it may appear later.
                let s = this
                    .status(&service)
                    .unwrap_or(ServingStatus::ServiceUnknown);
                if last != Some(s) {
                    if tx.send(Ok(response(s))).await.is_err() {
                        return;
                    }
                    last = Some(s);
                }
                tokio::select! {
                    () = tokio::time::sleep(WATCH_POLL) => {}
                    () = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
