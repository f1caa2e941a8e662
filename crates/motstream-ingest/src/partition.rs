//! One assigned partition's progress: where its replay starts and ends, what has been applied,
//! and which dead-letter writes are still unacknowledged.

use std::collections::BTreeSet;

use crate::dedup::Dedup;
use std::time::Instant;

/// Where an assigned partition stands. Offsets are Kafka offsets of the source partition.
#[derive(Debug)]
pub(crate) struct PartState {
    /// First offset replayed to rebuild the state.
    pub rebuild_from: i64,
    /// The committed offset found at assignment: offsets below it were applied (and their
    /// rejects dead-lettered) before, by this or another instance; they are replayed into the
    /// state without side effects.
    pub replay_until: i64,
    /// The next offset to apply. Anything below was applied to this instance's state; a
    /// message below it that arrives again (after a seek back) is not applied twice.
    pub next_apply: i64,
    /// The offset this instance committed last (-1: none).
    pub committed: i64,
    /// Offsets whose dead-letter write is not acknowledged yet: the commit stops below them.
    pub inflight: BTreeSet<i64>,
    /// After a failed dead-letter write: rejects at or above this offset are sent again when
    /// the partition is re-read.
    pub dlq_retry_from: Option<i64>,
    /// Paused because the dead-letter topic could not be written; retried at this instant.
    pub paused_until: Option<Instant>,
    /// Events replayed so far and when the replay started, for progress and ETA.
    pub replayed: u64,
    pub since: Instant,
    pub live: bool,
    /// Recently seen event ids, when de-duplication is on.
    pub dedup: Option<Dedup>,
}

impl PartState {
    pub(crate) fn new(start: i64, replay_until: i64, committed: i64) -> Self {
        Self {
            rebuild_from: start,
            replay_until,
            next_apply: start,
            committed,
            inflight: BTreeSet::new(),
            dlq_retry_from: None,
            paused_until: None,
            replayed: 0,
            since: Instant::now(),
            live: start >= replay_until,
            dedup: None,
        }
    }

    /// The offset it is safe to commit: everything below is applied and every reject below is
    /// in the dead-letter topic.
    /// A failed write holds the commit below it until it is written again, whatever happens
    /// first: the retry, a shutdown or a revocation.
    pub(crate) fn commit_point(&self) -> i64 {
        let lowest_unacked = self.inflight.first().copied().unwrap_or(i64::MAX);
        let lowest_failed = self.dlq_retry_from.unwrap_or(i64::MAX);
        self.next_apply.min(lowest_unacked).min(lowest_failed)
    }

    /// Records a dead-letter write that failed: it is sent again when the partition is re-read.
    pub(crate) fn dead_letter_failed(&mut self, offset: i64) {
        self.dlq_retry_from = Some(self.dlq_retry_from.map_or(offset, |o| o.min(offset)));
    }

    /// Whether the replay has reached the committed offset.
    pub(crate) fn caught_up(&self) -> bool {
        self.next_apply >= self.replay_until
    }

    pub(crate) fn state_name(&self) -> &'static str {
        if self.paused_until.is_some() {
            "paused"
        } else if self.live {
            "live"
        } else {
            "rebuilding"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_stops_below_the_lowest_unacknowledged_dead_letter_write() {
        let mut p = PartState::new(0, 0, -1);
        p.next_apply = 100;
        assert_eq!(p.commit_point(), 100);
        p.inflight.insert(42);
        p.inflight.insert(77);
        assert_eq!(p.commit_point(), 42);
        p.inflight.remove(&42);
        assert_eq!(p.commit_point(), 77);
    }

    #[test]
    fn commit_stops_below_a_failed_dead_letter_write_once_its_ack_is_settled() {
        let mut p = PartState::new(0, 0, -1);
        p.next_apply = 100;
        p.inflight.insert(42);
        // The broker answered: the write failed. It leaves `inflight`, but the commit must not
        // move past it.
        p.inflight.remove(&42);
        p.dead_letter_failed(42);
        assert_eq!(p.commit_point(), 42);
        p.dead_letter_failed(60);
        assert_eq!(p.commit_point(), 42, "the lowest failed write holds");
    }

    #[test]
    fn partition_with_nothing_to_replay_is_live_at_once() {
        assert!(PartState::new(10, 10, 10).live);
        let p = PartState::new(3, 10, 10);
        assert!(!p.live && !p.caught_up());
    }
}
