//! What the dashboard reads: a trait the service implements over its state, so that this
//! crate never depends on the service and the page's numbers are the ones the service's
//! own status function computes (the same as gRPC, `/status` and the exporter).

use std::time::Duration;

use serde_json::Value;

/// Why a data request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    /// The request is malformed (a bad window, a bad number): 400 with the message.
    BadRequest(String),
    /// An id the catalog does not know: 404 with the message.
    NotFound(String),
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) => f.write_str(m),
        }
    }
}

/// The service's views, as JSON. Every method may block (a status of every MOT takes tens of
/// milliseconds at 1,000 MOTs): the routes call them on the blocking pool, never on an async
/// worker. `status` is called once a second per distinct window that a connected browser
/// watches (not per browser).
pub trait DashboardSource: Send + Sync + 'static {
    /// The catalog facts the page shows beside the numbers: per experience its id, name,
    /// manager and SCO MOT; per MOT, in journey order, its id, name, type, owner (name, team,
    /// contact), target, runbook and dashboard links.
    fn catalog(&self) -> Value;

    /// Every MOT's and experience's status over the last `window`, ending at the time the
    /// answer's `now_ms` names, the unidentified MOTs and the alerts: the document `/status`
    /// serves, read from the service's shared status snapshot.
    fn status(&self, window: Duration) -> Result<Value, DataError>;

    /// One MOT's successes and failures over `window` ending at `now_ms`, in at most `points`
    /// steps (the same buckets its status reads, so the steps add up to its counts).
    fn series(
        &self,
        mot_id: &str,
        window: Duration,
        points: usize,
        now_ms: i64,
    ) -> Result<Value, DataError>;
}
