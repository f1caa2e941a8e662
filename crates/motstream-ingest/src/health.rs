//! Health and readiness, written by the ingest thread and read by the servers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::group::{ClientSnapshot, GroupTracker};
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
    /// Facts an operator should know that do not make it unready, e.g. that this instance
    /// holds no partitions.
    pub notes: Vec<String>,
    /// How many partitions this instance holds (`partitions` lists them).
    pub partitions_held: usize,
    /// The consumer's membership as librdkafka last reported it (`None`: no report yet).
    pub group: Option<GroupReport>,
    pub partitions: Vec<PartitionReport>,
    /// Events rejected to the dead-letter topic since start, by reason code.
    pub rejected: BTreeMap<&'static str, u64>,
}

/// The consumer's group membership, from librdkafka's statistics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupReport {
    /// `up` once the group coordinator is known and connected.
    pub state: String,
    /// `steady` once an assignment is in force; anything else is a rebalance in progress.
    pub join_state: String,
    /// Partitions librdkafka counts as assigned to this member.
    pub assignment_size: i32,
    /// How many times ingest recreated its consumer because it was stuck outside the group.
    pub consumer_restarts: u64,
}

#[derive(Debug, Default)]
struct State {
    running: bool,
    /// The group gave this instance its first assignment (possibly empty). Until then the
    /// partitions it will own are unknown, so no absence of rebuilds means ready.
    assigned: bool,
    stopped: Option<String>,
    /// The last client error about the broker. It holds until the broker is seen answering
    /// again (messages fetched, or a statistics report taken after it with the coordinator
    /// and every leader connected), never by time alone: an outage is not over because
    /// librdkafka stopped repeating that it is on.
    broker_error: Option<(String, Instant)>,
    /// The group took the assignment away (session lost): set until the next assignment.
    lost: bool,
    group: GroupTracker,
    consumer_restarts: u64,
    partitions: BTreeMap<PartitionKey, PartitionReport>,
    rejected: BTreeMap<&'static str, u64>,
}

/// Shared health. A std `Mutex`, not an async one: it is held for a few field updates, never
/// across an await, and written about once per batch.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

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
        self.with(|s| {
            s.assigned = true;
            s.lost = false;
        });
    }

    /// The group revoked this instance's partitions as lost (its session expired).
    pub(crate) fn assignment_lost(&self) {
        self.with(|s| s.lost = true);
    }

    /// A statistics report from the consumer.
    pub(crate) fn client_report(&self, snap: ClientSnapshot, now: Instant) {
        self.with(|s| {
            if snap.broker_answers() && s.broker_error.as_ref().is_some_and(|(_, at)| *at <= now) {
                s.broker_error = None;
            }
            s.group.observe(snap, now);
        });
    }

    /// Why the consumer must be recreated, if it must (see [`GroupTracker::wedged`]).
    pub(crate) fn wedged(&self, now: Instant) -> Option<String> {
        self.with(|s| s.group.wedged(now))
    }

    /// The consumer is being recreated: forget what the old one reported.
    pub(crate) fn consumer_restarted(&self) {
        self.with(|s| {
            s.consumer_restarts += 1;
            s.group = GroupTracker::default();
            s.assigned = false;
        });
    }

    /// Whether the last fresh report says the broker answers (`false`: unknown or away).
    pub(crate) fn broker_answers(&self, now: Instant) -> bool {
        self.with(|s| {
            s.broker_error.is_none()
                && s.group
                    .fresh(now)
                    .is_some_and(ClientSnapshot::broker_answers)
        })
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
        self.report_at(Instant::now())
    }

    /// The health at `now`.
    pub(crate) fn report_at(&self, now: Instant) -> HealthReport {
        self.with(|s| {
            let mut reasons = Vec::new();
            if let Some(why) = &s.stopped {
                reasons.push(format!("ingest stopped: {why}"));
            } else if !s.running {
                reasons.push("ingest is starting".to_owned());
            } else if !s.assigned {
                reasons.push("waiting for the consumer group to assign partitions".to_owned());
            }
            if let Some((e, _)) = &s.broker_error {
                reasons.push(format!("Kafka unreachable: {e}"));
            }
            if s.running && s.stopped.is_none() {
                reasons.extend(s.group.unready_reasons(now));
            }
            if s.lost {
                reasons.push(
                    "the group took this instance's partitions away (session lost); rejoining"
                        .to_owned(),
                );
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
            let mut notes = Vec::new();
            if s.assigned && s.partitions.is_empty() {
                notes.push(
                    "holds no partitions: the group gave this instance none (more members than \
                     partitions, or the topics are missing); it consumes nothing"
                        .to_owned(),
                );
            }
            HealthReport {
                live: s.running,
                ready: s.running && reasons.is_empty(),
                reasons,
                notes,
                partitions_held: s.partitions.len(),
                group: s.group.last().map(|g| GroupReport {
                    state: g.group_state.clone(),
                    join_state: g.join_state.clone(),
                    assignment_size: g.assignment_size,
                    consumer_restarts: s.consumer_restarts,
                }),
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

    use std::time::Duration;

    fn steady() -> ClientSnapshot {
        ClientSnapshot {
            group_state: "up".to_owned(),
            join_state: "steady".to_owned(),
            assignment_size: 0,
            leaders_down: Vec::new(),
            any_broker_up: true,
        }
    }

    fn down() -> ClientSnapshot {
        ClientSnapshot {
            group_state: "wait-broker-transport".to_owned(),
            any_broker_up: false,
            ..steady()
        }
    }

    fn running(now: Instant) -> Health {
        let h = Health::default();
        h.set_running(true);
        h.client_report(steady(), now);
        h
    }

    #[test]
    fn not_ready_until_the_group_has_assigned_partitions() {
        let t0 = Instant::now();
        let h = running(t0);
        let r = h.report_at(t0);
        assert!(r.live && !r.ready, "{r:?}");
        assert!(r.reasons[0].contains("assign"), "{r:?}");
        h.set_assigned();
        assert!(h.report_at(t0).ready);
    }

    #[test]
    fn a_broker_error_holds_until_the_broker_is_seen_answering_not_until_time_passes() {
        let t0 = Instant::now();
        let h = running(t0);
        h.set_assigned();
        h.broker_error("Disconnected".to_owned());
        let later = Instant::now();
        // Reports keep coming while the broker is away: an hour without a fresh error is
        // still an outage.
        for n in 0..3 {
            h.client_report(down(), later + Duration::from_secs(n));
        }
        let r = h.report_at(later + Duration::from_secs(2));
        assert!(!r.ready, "{r:?}");
        assert!(
            r.reasons.iter().any(|w| w.contains("Disconnected")),
            "{r:?}"
        );
        h.client_report(steady(), later + Duration::from_secs(3));
        assert!(h.report_at(later + Duration::from_secs(3)).ready);
    }

    #[test]
    fn a_lost_assignment_is_unready_until_the_next_assignment() {
        let t0 = Instant::now();
        let h = running(t0);
        h.set_assigned();
        h.assignment_lost();
        let r = h.report_at(t0);
        assert!(!r.ready && r.reasons[0].contains("session lost"), "{r:?}");
        h.set_assigned();
        assert!(h.report_at(t0).ready);
    }

    #[test]
    fn an_instance_without_partitions_says_so() {
        let t0 = Instant::now();
        let h = running(t0);
        h.set_assigned();
        let r = h.report_at(t0);
        assert!(r.ready, "{r:?}");
        assert_eq!(r.partitions_held, 0);
        assert!(r.notes[0].contains("holds no partitions"), "{r:?}");
    }
}
