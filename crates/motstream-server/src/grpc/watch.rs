//! The server streams: WatchMots and WatchAlerts.
//!
//! Each watcher holds a permit of a semaphore sized by the watcher limit, and a bounded
//! buffer. WatchMots runs one task per watcher: a snapshot first, then every `min_interval`
//! the MOTs whose status changed since it last sent them (so at most one message per MOT per
//! interval). When the buffer is full the client is not keeping up: the task stops, releases
//! its permit, and the stream ends with RESOURCE_EXHAUSTED the next time it is read. Memory per
//! watcher is thus bounded by the buffer, whatever the client does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use motstream_proto::v1 as pb;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio_stream::Stream;
use tonic::Status;
use tracing::{info, warn};

use super::convert::{self, Deadline, Filter};
use super::query::{ALERT_STATES, Ctx, MOT_STATES};

/// How long a watcher's buffer may stay full before the watcher is dropped as too slow.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// Watcher bookkeeping shared by both streams.
#[derive(Debug)]
pub struct Watchers {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Messages buffered per watcher before it counts as too slow.
    pub buffer: usize,
    /// Watchers dropped for not keeping up, since start.
    pub dropped: AtomicU64,
    /// Flips to true when the server stops: every watch then ends with UNAVAILABLE, so that
    /// graceful shutdown does not wait for clients that would watch forever.
    stopping: watch::Receiver<bool>,
}

impl Watchers {
    pub fn new(limit: usize, buffer: usize, stopping: watch::Receiver<bool>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            buffer: buffer.max(1),
            dropped: AtomicU64::new(0),
            stopping,
        }
    }

    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "watchers: the server already serves its limit of {} watchers (grpc_max_watchers)",
                self.limit
            ))
        })
    }

    /// Watchers currently open.
    pub fn active(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}

/// The stream handed to tonic: buffered messages, unless the producer ended it with a status,
/// which then comes first (a dropped client learns why as soon as it reads again).
pub struct WatchStream<T> {
    rx: mpsc::Receiver<T>,
    /// `None` once resolved without a status (the producer stopped because the client left).
    end: Option<oneshot::Receiver<Status>>,
    done: bool,
}

impl<T> WatchStream<T> {
    fn new(rx: mpsc::Receiver<T>, end: oneshot::Receiver<Status>) -> Self {
        Self {
            rx,
            end: Some(end),
            done: false,
        }
    }

    /// Polls the end signal: `Some(status)` if the producer ended the stream with one.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Option<Status> {
        let end = self.end.as_mut()?;
        match Pin::new(end).poll(cx) {
            Poll::Ready(Ok(status)) => {
                self.end = None;
                Some(status)
            }
            Poll::Ready(Err(_)) => {
                self.end = None;
                None
            }
            Poll::Pending => None,
        }
    }
}

impl<T> std::fmt::Debug for WatchStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("done", &self.done)
            .finish()
    }
}

impl<T> Stream for WatchStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(status) = self.poll_end(cx) {
            self.done = true;
            // Free what the client will never read.
            self.rx.close();
            while self.rx.try_recv().is_ok() {}
            return Poll::Ready(Some(Err(status)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(m)) => Poll::Ready(Some(Ok(m))),
            // The producer sends its status, if any, before it lets go of the sender.
            Poll::Ready(None) => match self.poll_end(cx) {
                Some(status) => {
                    self.done = true;
                    Poll::Ready(Some(Err(status)))
                }
                None if self.end.is_none() => {
                    self.done = true;
                    Poll::Ready(None)
                }
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Why a watcher's task stopped.
enum Stop {
    /// The client went away.
    Gone,
    /// The client fell behind; the status says so.
    Ended(Status),
}

/// Queues one message. A full buffer is waited on for at most [`STALL_AFTER`]: a burst (a
/// snapshot larger than the buffer) passes as the client reads, a client that stopped reading
/// is dropped.
async fn push<T>(tx: &mpsc::Sender<T>, m: T, what: &str) -> Result<(), Stop> {
    let m = match tx.try_send(m) {
        Ok(()) => return Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stop::Gone),
        Err(mpsc::error::TrySendError::Full(m)) => m,
    };
    match tokio::time::timeout(STALL_AFTER, tx.send(m)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Stop::Gone),
        Err(_) => Err(Stop::Ended(Status::resource_exhausted(format!(
            "{what}: the client read too slowly: {} messages stayed buffered for {}s; \
             the watch was dropped. Read faster, raise min_interval or narrow the filter",
            tx.max_capacity(),
            STALL_AFTER.as_secs()
        )))),
    }
}

/// Awaits `deadline`, forever if there is none.
async fn expiry(deadline: Deadline) {
    match deadline.0 {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the watch reached the call's deadline")
}

fn server_stopping() -> Status {
    Status::unavailable("the server is stopping; reconnect to another instance or retry")
}

/// Starts a WatchMots stream.
pub fn watch_mots(
    ctx: &Ctx,
    watchers: &Arc<Watchers>,
    req: &pb::WatchMotsRequest,
    deadline: Deadline,
) -> Result<WatchStream<pb::MotStatus>, Status> {
    let filter = Filter::parse(req.filter.as_ref(), &ctx.state.catalog, MOT_STATES)?;
    let w = ctx.window("window", &req.window, "5m")?;
    let interval = convert::min_interval(&req.min_interval)?;
    let permit = watchers.admit()?;
    let (tx, rx) = mpsc::channel(watchers.buffer);
    let (end_tx, end) = oneshot::channel();
    let (ctx, watchers) = (ctx.clone(), Arc::clone(watchers));
    tokio::spawn(async move {
        let _permit = permit;
        let mut stopping = watchers.stopping.clone();
        let stop = tokio::select! {
            stop = run_mots(&ctx, &filter, &w, interval, &tx) => stop,
            _ = stopping.wait_for(|s| *s) => Stop::Ended(server_stopping()),
            () = expiry(deadline) => Stop::Ended(deadline_exceeded()),
        };
        if let Stop::Ended(status) = stop {
            if status.code() == tonic::Code::ResourceExhausted {
                // Relaxed: a statistic.
                watchers.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(window = %w.text, buffer = watchers.buffer, "WatchMots client too slow; dropped");
            }
            let _ = end_tx.send(status);
        }
    });
    Ok(WatchStream::new(rx, end))
}

async fn run_mots(
    ctx: &Ctx,
    filter: &Filter,
    w: &convert::Window,
    interval: Duration,
    tx: &mpsc::Sender<pb::MotStatus>,
) -> Stop {
    // What each MOT looked like when last sent, its time stamp zeroed: a MOT is sent again
    // only when something other than the time moved.
    let mut sent: HashMap<String, pb::MotStatus> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tx.closed() => return Stop::Gone,
        }
        // On the blocking pool: every matching MOT's status can take tens of milliseconds.
        let (c, f, win) = (ctx.clone(), filter.clone(), w.clone());
        let mots = match tokio::task::spawn_blocking(move || c.matching(&f, &win)).await {
            Ok(Ok(m)) => m,
            Ok(Err(status)) => return Stop::Ended(status),
            Err(e) => return Stop::Ended(Status::internal(format!("the status read failed: {e}"))),
        };
        for mut m in mots {
            // Compared with its time stamp zeroed; cloned only when it is sent.
            let as_of_ms = std::mem::take(&mut m.as_of_ms);
            // Coverage follows the time stamp (`data_since_ms` is compared): not a change.
            let coverage = std::mem::take(&mut m.coverage);
            if sent.get(&m.mot_id) == Some(&m) {
                continue;
            }
            let key = m.clone();
            m.as_of_ms = as_of_ms;
            m.coverage = coverage;
            if let Err(stop) = push(tx, m, "WatchMots").await {
                return stop;
            }
            sent.insert(key.mot_id.clone(), key);
        }
    }
}

/// Starts a WatchAlerts stream: transitions published from now on that match the filter.
pub fn watch_alerts(
    ctx: &Ctx,
    watchers: &Arc<Watchers>,
    req: &pb::WatchAlertsRequest,
    deadline: Deadline,
) -> Result<WatchStream<pb::AlertTransition>, Status> {
    let filter = Filter::parse(req.filter.as_ref(), &ctx.state.catalog, ALERT_STATES)?;
    let permit = watchers.admit()?;
    let mut feed = ctx.alerts.subscribe();
    let (tx, rx) = mpsc::channel(watchers.buffer);
    let (end_tx, end) = oneshot::channel();
    let (ctx, mut stopping) = (ctx.clone(), watchers.stopping.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let expiry = expiry(deadline);
        tokio::pin!(expiry);
        let stop = loop {
            let t = tokio::select! {
                t = feed.recv() => t,
                () = tx.closed() => break Stop::Gone,
                _ = stopping.wait_for(|s| *s) => break Stop::Ended(server_stopping()),
                () = &mut expiry => break Stop::Ended(deadline_exceeded()),
            };
            match t {
                Ok(t) if filter.matches_alert(&t, &ctx.state.catalog) => {
                    if let Err(stop) = push(&tx, convert::alert(&t), "WatchAlerts").await {
                        break stop;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    break Stop::Ended(Status::resource_exhausted(format!(
                        "WatchAlerts: the client fell {n} transitions behind the alert feed; \
                         the watch was dropped (ListAlerts has the history)"
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    info!("alert feed closed; ending WatchAlerts");
                    break Stop::Ended(Status::unavailable(
                        "the alert feed closed: the server is stopping",
                    ));
                }
            }
        };
        if let Stop::Ended(status) = stop {
            let _ = end_tx.send(status);
        }
    });
    Ok(WatchStream::new(rx, end))
}
