//! Live updates: one status computation per watched window per second, shared by every
//! browser watching that window. Each window has a task that computes the status, serialises
//! it once and publishes it on a `watch` channel; a browser's Server-Sent Events stream only
//! copies the newest text out. So a thousand browsers cost one status per second plus the
//! bytes, and a browser too slow to read skips to the newest snapshot instead of queueing.
//! A task stops when its last browser leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::source::{DashboardSource, DataError};

/// How often a watched window's status is recomputed and sent: within the page's promise of
/// updates within a second.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// Distinct windows watched at once; more are refused (503), so that requests naming ever new
/// windows cannot make the server compute ever more statuses per second.
pub(crate) const MAX_WINDOWS: usize = 8;

/// A published snapshot: the status document as JSON text, or the error it gave.
pub(crate) type Snapshot = Option<Result<Arc<str>, String>>;

/// The per-window feeds.
pub(crate) struct Hub {
    source: Arc<dyn DashboardSource>,
    /// A std mutex: held only to look up or insert a feed, never across an await.
    feeds: Mutex<HashMap<u64, watch::Sender<Snapshot>>>,
}

impl Hub {
    pub(crate) fn new(source: Arc<dyn DashboardSource>) -> Self {
        Self {
            source,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, watch::Sender<Snapshot>>> {
        // The map stays consistent if a holder panicked: entries are inserted whole.
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Windows with a running feed.
    #[cfg(test)]
    pub(crate) fn watched(&self) -> usize {
        self.lock().len()
    }

    /// A receiver of `window`'s snapshots, starting its feed if none runs.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        window: Duration,
    ) -> Result<watch::Receiver<Snapshot>, DataError> {
        let key = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut feeds = self.lock();
        if let Some(tx) = feeds.get(&key) {
            return Ok(tx.subscribe());
        }
        if feeds.len() >= MAX_WINDOWS {
            return Err(DataError::BadRequest(format!(
                "window: {MAX_WINDOWS} different windows are watched already; use one of them"
            )));
        }
        let (tx, rx) = watch::channel(None);
        feeds.insert(key, tx.clone());
        drop(feeds);
        let hub = Arc::clone(self);
        tokio::spawn(async move { hub.feed(key, window, tx).await });
        Ok(rx)
    }

    async fn feed(self: Arc<Self>, key: u64, window: Duration, tx: watch::Sender<Snapshot>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            {
                // Checked under the lock that `subscribe` takes, so that no browser subscribes
                // to a feed that is about to stop.
                let mut feeds = self.lock();
                if tx.receiver_count() == 0 {
                    feeds.remove(&key);
                    return;
                }
            }
            let source = Arc::clone(&self.source);
            // A status of thousands of MOTs takes milliseconds: off the async workers.
            let snap = tokio::task::spawn_blocking(move || {
                source
                    .status(window)
                    .map_err(|e| e.to_string())
                    .and_then(|v| serde_json::to_string(&v).map_err(|e| e.to_string()))
                    .map(Arc::<str>::from)
            })
            .await
            .unwrap_or_else(|e| Err(format!("computing the status failed: {e}")));
            tx.send_replace(Some(snap));
        }
    }
}
