//! Health and readiness, written by the ingest thread and read by the servers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::sink::PartitionKey;

/// One partition as health reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// `rebuilding`, `live`, or `paused` (dead-letter topic unavailable).
    pub state: &'static str,
    /// The next offset to apply.
    pub next_offset: i64,
    /// Where the replay started and where it ends (the committed offset).
    pub rebuild_from: i64,
    pub rebuild_until: i64,
    /// The offset committed last by this instance (-1: none yet).
    pub committed: i64,
}

/// A snapshot of health.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// The ingest thread is running.
    pub live: bool,
    /// Consuming live data with complete state: no partition rebuilding or paused, the
    /// broker reachable.
    pub ready: bool,
    /// Why not ready or not healthy, one sentence each.
    pub reasons: Vec<String>,
    pub partitions: Vec<PartitionReport>,
    /// Events rejected to the dead-letter topic since start, by reason code.
    pub rejected: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct State {
    running: bool,
    /// The group gave this instance its first assignment (possibly empty). Until then the
    /// partitions it will own are unknown, so no absence of rebuilds means ready.
    assigned: bool,
    stopped: Option<String>,
    broker_error: Option<(String, Instant)>,
    partitions: BTreeMap<PartitionKey, PartitionReport>,
    rejected: BTreeMap<&'static str, u64>,
}

/// Shared health. A std `Mutex`, not an async one: it is held for a few field updates, never
/// across an await, and written about once per batch.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

/// How long after the last broker error the broker still counts as unreachable.
const BROKER_ERROR_HOLD_SECS: u64 = 5;

impl Health {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic while holding this lock cannot leave the plain fields inconsistent, so a
        // poisoned lock is still usable.
        let mut g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.with(|s| s.running = running);
    }

    /// Marks ingest as failed for good (the service should be restarted).
    pub fn set_failed(&self, why: String) {
        self.set_stopped(format!("failed: {why}"));
    }

    pub(crate) fn set_stopped(&self, why: String) {
        self.with(|s| {
            s.running = false;
            s.stopped = Some(why);
        });
    }

    pub(crate) fn set_assigned(&self) {
        self.with(|s| s.assigned = true);
    }

    pub(crate) fn broker_error(&self, e: String) {
        self.with(|s| s.broker_error = Some((e, Instant::now())));
    }

    pub(crate) fn broker_ok(&self) {
        self.with(|s| s.broker_error = None);
    }

    pub(crate) fn set_partition(&self, key: PartitionKey, report: PartitionReport) {
        self.with(|s| s.partitions.insert(key, report));
    }

    /// Adds one batch's rejects, by reason code.
    pub(crate) fn add_rejects(&self, batch: &std::collections::HashMap<&'static str, u64>) {
        if batch.is_empty() {
            return;
        }
        self.with(|s| {
            for (reason, n) in batch {
                *s.rejected.entry(reason).or_default() += n;
            }
        });
    }

    /// Events rejected since start, by reason code.
    pub fn rejected(&self) -> BTreeMap<&'static str, u64> {
        self.with(|s| s.rejected.clone())
    }

    pub(crate) fn remove_partition(&self, key: PartitionKey) {
        self.with(|s| s.partitions.remove(&key));
    }

    /// The current health.
    pub fn report(&self) -> HealthReport {
        self.with(|s| {
            let mut reasons = Vec::new();
            if let Some(why) = &s.stopped {
                reasons.push(format!("ingest stopped: {why}"));
            } else if !s.running {
                reasons.push("ingest is starting".to_owned());
            } else if !s.assigned {
                reasons.push("waiting for the consumer group to assign partitions".to_owned());
            }
            if let Some((e, at)) = &s.broker_error
                && at.elapsed().as_secs() < BROKER_ERROR_HOLD_SECS
            {
                reasons.push(format!("Kafka unreachable: {e}"));
            }
            for p in s.partitions.values() {
                match p.state {
                    "rebuilding" => {
                        let span = (p.rebuild_until - p.rebuild_from).max(1);
                        let done = (p.next_offset - p.rebuild_from).clamp(0, span);
                        reasons.push(format!(
                            "{}/{} rebuilding: {}% ({} of {} events)",
                            p.topic,
                            p.partition,
                            done * 100 / span,
                            done,
                            span
                        ));
                    }
                    "paused" => reasons.push(format!(
                        "{}/{} paused at offset {}: the dead-letter topic cannot be written",
                        p.topic, p.partition, p.next_offset
                    )),
                    _ => {}
                }
            }
            HealthReport {
                live: s.running,
                ready: s.running && reasons.is_empty(),
                reasons,
                partitions: s.partitions.values().cloned().collect(),
                rejected: s.rejected.clone(),
            }
        })
    }

    /// Whether any partition is being rebuilt (its MOTs' windows are incomplete).
    pub fn rebuilding(&self) -> bool {
        self.with(|s| s.partitions.values().any(|p| p.state == "rebuilding"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_the_group_has_assigned_partitions() {
        let h = Health::default();
        h.set_running(true);
        let r = h.report();
        assert!(r.live && !r.ready, "{r:?}");
        assert!(r.reasons[0].contains("assign"), "{r:?}");
        h.set_assigned();
        assert!(h.report().ready);
    }
}
