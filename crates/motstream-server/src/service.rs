//! The service: `Service::start` and `run` (what `motstream run` runs). Loads the catalog, builds the aggregator, starts ingest on
//! its own thread and the HTTP server, and stops all of it cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use motstream_core::{Catalog, Limits};
use motstream_ingest::{Health, IngestConfig};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::alert_feed::AlertFeed;
use crate::config::ServiceConfig;
use crate::state::AggregatorState;

/// Loads the configured catalog, or the built-in one.
pub fn load_catalog(cfg: &ServiceConfig) -> anyhow::Result<Catalog> {
    motstream_loadgen::files::load_catalog_or_builtin(cfg.catalog.as_deref())
}

/// A running service, for `run` and for tests that start it in-process.
#[derive(Debug)]
pub struct Service {
    /// Where the HTTP server listens (useful when configured with port 0).
    pub http_addr: SocketAddr,
    /// Where the gRPC query service listens (useful when configured with port 0).
    pub grpc_addr: SocketAddr,
    /// The gRPC query service, for its watcher counts.
    pub grpc: crate::grpc::QueryService,
    pub health: Arc<Health>,
    pub state: Arc<AggregatorState>,
    /// Alert transitions, for the gRPC API, the exporter and the CLI.
    pub alerts: Arc<AlertFeed>,
    alert_engine: Option<crate::alerting::AlertEngine>,
    stop_ingest: Arc<AtomicBool>,
    stop_http: watch::Sender<bool>,
    ingest: Option<std::thread::JoinHandle<Result<(), motstream_ingest::IngestError>>>,
    http: tokio::task::JoinHandle<()>,
    grpc_task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts ingest and the servers.
    pub async fn start(cfg: &ServiceConfig) -> anyhow::Result<Self> {
        let brokers = cfg.brokers.clone().context(
            "brokers: not set. `motstream run` needs --brokers (or MOTSTREAM_BROKERS); \
             the embedded broker is for the no-argument default",
        )?;
        let catalog = Arc::new(load_catalog(cfg)?);
        info!(catalog = %catalog.origin, experiences = catalog.experiences.len(), mots = catalog.mots.len(), "catalog loaded");
        let state = Arc::new(AggregatorState::new(Arc::clone(&catalog), cfg)?);
        let health = Arc::new(Health::default());
        let limits = Limits {
            max_future_skew_ms: i64::try_from(cfg.max_future_skew.as_millis()).unwrap_or(i64::MAX),
            ..Limits::default()
        };
        let ingest_brokers = brokers.clone();
        let ingest_cfg = IngestConfig {
            brokers,
            group_id: cfg.group_id.clone(),
            topics: cfg.topics.clone(),
            dlq_topic: cfg.dlq_topic.clone(),
            kafka: cfg.kafka.clone(),
            lookback: cfg.retention + cfg.lateness,
            limits,
            batch_max: 5_000,
            dedup_window: cfg.dedup_window,
            dedup_capacity: 1_000_000,
            state_topic: cfg.state_topic,
        };
        // One feed for the engine, gRPC and the exporter: the one /status reads.
        let alerts: Arc<AlertFeed> = Arc::clone(&state.alerts);
        // Installed before ingest starts, so that ingest's metric descriptions reach it.
        let metrics_routes = if cfg.exporter {
            let exporter = crate::exporter::Exporter::new(
                crate::exporter::recorder()?,
                Arc::clone(&state),
                Arc::clone(&alerts),
                Arc::clone(&health),
                cfg.retention,
            );
            crate::exporter::router(Arc::new(exporter))
        } else {
            axum::Router::new()
        };
        // The browser dashboard at `/`, behind the gRPC token when there is one; read before
        // ingest starts, so that a bad token file stops nothing half-started.
        let web = motstream_web::WebConfig {
            token: cfg
                .grpc_token_file
                .as_ref()
                .map(crate::grpc::read_token)
                .transpose()?,
        };
        let stop_ingest = Arc::new(AtomicBool::new(false));
        let ingest = {
            let (catalog, sink, health, stop) = (
                Arc::clone(&catalog),
                Arc::clone(&state) as Arc<dyn motstream_ingest::Sink>,
                Arc::clone(&health),
                Arc::clone(&stop_ingest),
            );
            std::thread::Builder::new()
                .name("ingest".into())
                .spawn(move || {
                    let r = motstream_ingest::run(
                        &ingest_cfg,
                        catalog,
                        sink,
                        Arc::clone(&health),
                        stop,
                    );
                    if let Err(e) = &r {
                        error!(error = %e, "ingest failed");
                        health.set_failed(e.to_string());
                    }
                    r
                })
                .context("starting the ingest thread")?
        };
        if cfg.state_topic {
            crate::snapshots::start_follower(&ingest_brokers, cfg, &state, &stop_ingest)?;
        }
        let dashboard = motstream_web::router(Arc::clone(&state) as _, web);
        let (stop_http, mut rx) = watch::channel(false);
        let (http_addr, http) = crate::http::serve(
            cfg.metrics_listen,
            Arc::clone(&health),
            Arc::clone(&state) as Arc<dyn crate::http::StatusSource>,
            metrics_routes.merge(dashboard),
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )
        .await?;
        info!(%http_addr, metrics = cfg.exporter, "HTTP server listening (dashboard /, /healthz, /readyz, /status, /metrics)");
        let (grpc_addr, grpc, grpc_task) = crate::grpc::serve(
            &crate::grpc::GrpcSettings::from_config(cfg),
            Arc::clone(&state),
            Arc::clone(&alerts),
            Arc::clone(&health),
            stop_http.subscribe(),
        )
        .await?;
        info!(%grpc_addr, tls = cfg.grpc_tls_cert.is_some(), token = cfg.grpc_token_file.is_some(), "gRPC query service listening (motstream.v1.MotQuery, health, reflection)");
        let alert_engine =
            crate::alerting::start(cfg, Arc::clone(&state), Arc::clone(&alerts)).await?;
        // Ends with the servers.
        tokio::spawn(crate::reject_log::run(
            Arc::clone(&health),
            crate::reject_log::EVERY,
            cfg.dlq_topic.clone(),
            stop_http.subscribe(),
        ));
        Ok(Self {
            http_addr,
            grpc_addr,
            grpc,
            health,
            state,
            alerts,
            alert_engine: Some(alert_engine),
            stop_ingest,
            stop_http,
            ingest: Some(ingest),
            http,
            grpc_task,
        })
    }

    /// Stops ingest (finishing the batch, committing, leaving the group) and the servers.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // Each step's time goes in one line at the end: a slow exit then says which step
        // took the time, or that none of them did.
        let started = std::time::Instant::now();
        // Evaluation stops first, so that no alert is judged on partitions ingest is dropping.
        let halted = match self.alert_engine.take() {
            Some(a) => Some(a.halt().await),
            None => None,
        };
        let halt_took = started.elapsed();
        // Release pairs with the ingest loop's Acquire load.
        self.stop_ingest.store(true, Ordering::Release);
        // Ingest's final commit and the alerts' hand-over each have their own bound; run side
        // by side, a broker outage costs the longer of them, not their sum.
        let ingest = self.ingest.take();
        let ingest = async move {
            let r = match ingest {
                Some(t) => tokio::task::spawn_blocking(move || t.join())
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|j| j.map_err(|_| anyhow::anyhow!("the ingest thread panicked")))
                    .and_then(|r| r.map_err(anyhow::Error::from)),
                None => Ok(()),
            };
            (r, started.elapsed())
        };
        let alerts = async move {
            if let Some(h) = halted {
                h.finish().await;
            }
            started.elapsed()
        };
        let ((ingested, ingest_took), alerts_took) = tokio::join!(ingest, alerts);
        let _ = self.stop_http.send(true);
        let servers = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(&mut self.http, &mut self.grpc_task)
        })
        .await;
        info!(
            halt_ms = crate::state::ms(halt_took),
            ingest_ms = crate::state::ms(ingest_took),
            alerts_ms = crate::state::ms(alerts_took),
            total_ms = crate::state::ms(started.elapsed()),
            servers_closed = servers.is_ok(),
            "shutdown steps done"
        );
        ingested
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, stopping"),
        () = term => info!("SIGTERM received, stopping"),
    }
}

/// `motstream run`: runs until SIGINT or SIGTERM.
pub fn run(cfg: &ServiceConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let exit = ExitWatch::default();
    let result = rt.block_on(async {
        // Listen before starting, so that a signal during start-up (history replay, topic
        // metadata) stops the service cleanly instead of killing it.
        let stop = tokio::spawn(signal());
        let service = Service::start(cfg).await?;
        let _ = stop.await;
        exit.arm(SHUTDOWN_WITHIN.saturating_sub(EXIT_MARGIN));
        match tokio::time::timeout(STEPS_WITHIN, service.stop()).await {
            Ok(r) => r,
            Err(_) => {
                error!(
                    secs = STEPS_WITHIN.as_secs(),
                    "not stopped in time; exiting anyway (uncommitted events are re-read at the next start)"
                );
                Ok(())
            }
        }
    });
    // Do not wait for a blocking task still joining a stuck ingest thread.
    rt.shutdown_background();
    // After "shutdown steps done": time between the two lines is spent in drops.
    info!("exiting");
    exit.done();
    result
}

/// `motstream run` exits within this long of SIGINT or SIGTERM, whatever state Kafka is in:
/// ingest's own bound ([`motstream_ingest::STOP_WITHIN`]) plus time for the servers to close,
/// cut at [`STEPS_WITHIN`], and an exit watch for anything that blocks after that. Past it
/// the process exits without the final commit, which costs re-reading (never
/// double-counting) the last events at the next start.
pub const SHUTDOWN_WITHIN: Duration = Duration::from_secs(10);

/// The shutdown's steps (`Service::stop`) get this long; the rest of [`SHUTDOWN_WITHIN`] is
/// for what follows them: the drops at the end of the stop, the runtime's shutdown and the
/// process's exit. With the whole bound given to the steps, a stop that ran out of time
/// exited just past it.
const STEPS_WITHIN: Duration = Duration::from_secs(9);

/// What the exit watch leaves of [`SHUTDOWN_WITHIN`] for the process to end once it acts.
const EXIT_MARGIN: Duration = Duration::from_millis(500);

/// Ends the process if `run` has not returned in time after a signal. The steps are bounded
/// and their Kafka clients are closed on threads of their own, but a drop or a runtime
/// shutdown that blocks on librdkafka cannot be interrupted from the thread it blocks: only a
/// thread that is not waiting on it can keep the documented bound.
#[derive(Debug, Default)]
struct ExitWatch {
    /// Whether `run` is done; held by the watch while it ends the process, so that `run`
    /// cannot be returning (and the process exiting) at the same time.
    done: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl ExitWatch {
    /// Starts watching: past `within`, the process exits (with success, as a stop that ran out
    /// of time does).
    fn arm(&self, within: Duration) {
        let done = Arc::clone(&self.done);
        let spawned = std::thread::Builder::new()
            .name("exit-watch".into())
            .spawn(move || {
                let (lock, cv) = &*done;
                let guard = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (guard, _) = cv
                    .wait_timeout_while(guard, within, |done| !*done)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !*guard {
                    error!(
                        ms = crate::state::ms(within),
                        "shutdown not over in time; exiting now"
                    );
                    std::process::exit(0);
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "no thread to bound the exit with; it is not bounded");
        }
    }

    /// `run` is returning: the watch ends.
    fn done(&self) {
        let (lock, cv) = &*self.done;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_all();
    }
}
