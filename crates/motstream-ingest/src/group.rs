//! The consumer's standing in its group and with the brokers, as librdkafka's statistics
//! report it (once a second), and the two judgements made from it: whether ingest may call
//! itself ready, and whether the consumer is wedged and must be recreated.
//!
//! Statistics rather than our own probes: they cost no request, they describe the connections
//! the consumer really uses (the group coordinator, each assigned partition's leader), and
//! librdkafka produces them even while the ingest thread has nothing to fetch. Their absence
//! is a finding too: the ingest thread stopped polling.

use std::time::{Duration, Instant};

use rdkafka::statistics::Statistics;

/// How often librdkafka reports (its `statistics.interval.ms`).
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// No report for this long: the ingest thread is not polling (blocked in a broker request).
const STATS_STALE: Duration = Duration::from_secs(4);
/// A rebalance normally settles within a few seconds; only a longer one makes ingest unready,
/// so that a cooperative rebalance (which leaves the kept partitions live) does not flap
/// every instance's readiness.
const SETTLE_GRACE: Duration = Duration::from_secs(5);
/// The group coordinator answers, yet the consumer has waited this long for its own
/// unassignment to complete: librdkafka will not get out of that by itself (the
/// "wait-unassign-to-complete" wedge seen after a long outage), so ingest recreates the
/// consumer.
pub(crate) const WEDGE_AFTER: Duration = Duration::from_secs(5);
/// The other unsettled join states wait on the broker, which may rightly hold a rebalance
/// until every old member rejoins or its session (6 s) expires: after an outage longer than
/// the session, librdkafka rejoins under a new member id and the broker waits out the old
/// one. Recreating then would only add another stale member, so these count as wedged only
/// after several sessions.
const WEDGE_WAITING_AFTER: Duration = Duration::from_secs(30);

/// With the coordinator connected, librdkafka leaves the `init` join state (sends its
/// JoinGroup) within a second. It stays there while it still awaits the response to a request
/// queued during an outage, which can take the request's own timeout (minutes for a
/// JoinGroup): seen once in five 60 s outages, 13 s and counting after the broker's return.
const WEDGE_INIT_AFTER: Duration = Duration::from_secs(4);

/// Join states in which librdkafka waits for its own unassignment to complete, not for the
/// broker. (`wait-assign-call` and `wait-unassign-call` wait for the ingest thread to serve
/// the rebalance callback, which it does at its next poll: a new consumer would not help.)
const UNASSIGN_STATES: [&str; 2] = [
    "wait-unassign-to-complete",
    "wait-incr-unassign-to-complete",
];

/// What one statistics report says about the group and the brokers ingest depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientSnapshot {
    /// librdkafka's group state: `up` once the coordinator is known and connected.
    pub group_state: String,
    /// librdkafka's join state: `steady` once an assignment is in force.
    pub join_state: String,
    /// Partitions librdkafka counts as assigned.
    pub assignment_size: i32,
    /// Assigned partitions whose leader is unknown or not connected, `topic/partition`.
    pub leaders_down: Vec<String>,
    /// Some broker connection is up: the cluster answers, even if the group coordinator is
    /// not (yet) found.
    pub any_broker_up: bool,
}

impl ClientSnapshot {
    /// Reads a report; `assigned` are the partitions ingest holds.
    pub(crate) fn from_stats<'a>(
        stats: &Statistics,
        assigned: impl Iterator<Item = (&'a str, i32)>,
    ) -> Self {
        let (group_state, join_state, assignment_size) = stats.cgrp.as_ref().map_or_else(
            || ("none".to_owned(), "none".to_owned(), 0),
            |g| (g.state.clone(), g.join_state.clone(), g.assignment_size),
        );
        let leaders_down = assigned
            .filter(|(topic, partition)| {
                let leader = stats
                    .topics
                    .get(*topic)
                    .and_then(|t| t.partitions.get(partition))
                    .map_or(-1, |p| p.leader);
                // -1: no known leader. Otherwise the learned broker with that id must be up.
                leader < 0
                    || !stats
                        .brokers
                        .values()
                        .any(|b| b.nodeid == leader && b.state == "UP")
            })
            .map(|(topic, partition)| format!("{topic}/{partition}"))
            .collect();
        let any_broker_up = stats
            .brokers
            .values()
            .any(|b| b.state == "UP" && b.source != "logical" && b.source != "internal");
        Self {
            group_state,
            join_state,
            assignment_size,
            leaders_down,
            any_broker_up,
        }
    }

    /// The coordinator and every assigned partition's leader are connected.
    pub(crate) fn broker_answers(&self) -> bool {
        self.group_state == "up" && self.leaders_down.is_empty()
    }

    fn steady(&self) -> bool {
        self.join_state == "steady"
    }
}

/// Follows the reports over time. Every method takes `now`, so tests need no clock.
#[derive(Debug, Default)]
pub(crate) struct GroupTracker {
    last: Option<(ClientSnapshot, Instant)>,
    /// When the current join state was first reported.
    join_since: Option<Instant>,
    /// Since when the coordinator has answered while the join state was not steady, without
    /// a break; `None` when steady or the coordinator is away.
    unsettled_up_since: Option<Instant>,
}

impl GroupTracker {
    pub(crate) fn observe(&mut self, snap: ClientSnapshot, now: Instant) {
        let same_join = self
            .last
            .as_ref()
            .is_some_and(|(s, _)| s.join_state == snap.join_state);
        if !same_join {
            self.join_since = Some(now);
        }
        // The wedge seen in a long outage's wake sits in `query-coord` (coordinator never
        // found) with a broker connection up: the cluster answering is what counts.
        let cluster_up = snap.group_state == "up" || snap.any_broker_up;
        self.unsettled_up_since = if snap.steady() || !cluster_up {
            None
        } else {
            self.unsettled_up_since.or(Some(now))
        };
        self.last = Some((snap, now));
    }

    /// The last report, if it is recent.
    pub(crate) fn fresh(&self, now: Instant) -> Option<&ClientSnapshot> {
        self.last
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < STATS_STALE)
            .map(|(s, _)| s)
    }

    pub(crate) fn last(&self) -> Option<&ClientSnapshot> {
        self.last.as_ref().map(|(s, _)| s)
    }

    /// Why the client's view forbids readiness, one sentence each (empty: it allows it).
    pub(crate) fn unready_reasons(&self, now: Instant) -> Vec<String> {
        let Some((snap, at)) = &self.last else {
            return vec!["no report from the Kafka client yet".to_owned()];
        };
        let age = now.saturating_duration_since(*at);
        if age >= STATS_STALE {
            return vec![format!(
                "the Kafka client has not reported for {} s (ingest is blocked in a broker request)",
                age.as_secs()
            )];
        }
        let mut reasons = Vec::new();
        if snap.group_state != "up" {
            reasons.push(format!(
                "Kafka unreachable: no connection to the group coordinator (group state {})",
                snap.group_state
            ));
        }
        if !snap.leaders_down.is_empty() {
            reasons.push(format!(
                "Kafka unreachable: no connection to the leader of {}",
                snap.leaders_down.join(", ")
            ));
        }
        let unsettled = self
            .join_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if !snap.steady() && unsettled >= SETTLE_GRACE {
            reasons.push(format!(
                "not a settled member of the consumer group: join state {} for {} s",
                snap.join_state,
                unsettled.as_secs()
            ));
        }
        reasons
    }

    /// Why the consumer must be recreated, when it must: the coordinator has answered for
    /// [`WEDGE_AFTER`] while the consumer waits for an unassignment, or for
    /// [`WEDGE_WAITING_AFTER`] while it waits on the broker, and it still has not settled.
    pub(crate) fn wedged(&self, now: Instant) -> Option<String> {
        let unsettled = self.unsettled_up_since?;
        let (snap, _) = self.last.as_ref()?;
        let entered = self.join_since.unwrap_or(unsettled).max(unsettled);
        let (since, limit) = if UNASSIGN_STATES.contains(&snap.join_state.as_str()) {
            // Counted from entering this state: the wait for a join before it is the
            // broker's, which has its own limit.
            (entered, WEDGE_AFTER)
        } else if snap.join_state == "init" {
            (entered, WEDGE_INIT_AFTER)
        } else {
            (unsettled, WEDGE_WAITING_AFTER)
        };
        let stuck = now.saturating_duration_since(since);
        (stuck >= limit).then(|| {
            format!(
                "join state {} for {} s while Kafka answers",
                snap.join_state,
                stuck.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(group: &str, join: &str) -> ClientSnapshot {
        ClientSnapshot {
            group_state: group.to_owned(),
            join_state: join.to_owned(),
            assignment_size: 2,
            leaders_down: Vec::new(),
            any_broker_up: group == "up",
        }
    }

    #[test]
    fn a_steady_member_with_connected_brokers_may_be_ready() {
        let t0 = Instant::now();
        let mut g = GroupTracker::default();
        assert!(!g.unready_reasons(t0).is_empty(), "no report yet");
        g.observe(snap("up", "steady"), t0);
        assert!(g.unready_reasons(t0).is_empty());
        assert!(g.wedged(t0 + Duration::from_secs(60)).is_none());
    }

    #[test]
    fn a_stale_report_is_not_trusted() {
        let t0 = Instant::now();
        let mut g = GroupTracker::default();
        g.observe(snap("up", "steady"), t0);
        let r = g.unready_reasons(t0 + STATS_STALE);
        assert!(r[0].contains("not reported"), "{r:?}");
        assert!(g.fresh(t0 + STATS_STALE).is_none());
    }

    #[test]
    fn coordinator_or_leader_away_means_unreachable() {
        let t0 = Instant::now();
        let mut g = GroupTracker::default();
        g.observe(snap("wait-broker-transport", "steady"), t0);
        assert!(g.unready_reasons(t0)[0].contains("coordinator"));
        let mut s = snap("up", "steady");
        s.leaders_down.push("events/3".to_owned());
        assert!(!s.broker_answers());
        g.observe(s, t0);
        assert!(g.unready_reasons(t0)[0].contains("events/3"));
    }

    #[test]
    fn a_short_rebalance_keeps_readiness_a_long_one_does_not() {
        let t0 = Instant::now();
        let mut g = GroupTracker::default();
        g.observe(snap("up", "steady"), t0);
        g.observe(snap("up", "wait-join"), t0 + Duration::from_secs(1));
        assert!(g.unready_reasons(t0 + Duration::from_secs(3)).is_empty());
        g.observe(snap("up", "wait-join"), t0 + Duration::from_secs(6));
        let r = g.unready_reasons(t0 + Duration::from_secs(6));
        assert!(r[0].contains("wait-join for 5 s"), "{r:?}");
    }

    #[test]
    fn unsettled_while_the_coordinator_answers_is_a_wedge_but_an_outage_is_not() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut g = GroupTracker::default();
        // Broker away for a minute: nothing to recreate, librdkafka reconnects by itself.
        for n in 0..60 {
            g.observe(
                snap("wait-broker-transport", "wait-unassign-to-complete"),
                s(n),
            );
        }
        assert!(g.wedged(s(60)).is_none());
        // Back: the clock starts now.
        g.observe(snap("up", "wait-unassign-to-complete"), s(61));
        assert!(
            g.wedged(s(61) + WEDGE_AFTER - Duration::from_secs(1))
                .is_none()
        );
        let why = g.wedged(s(61) + WEDGE_AFTER).expect("wedged");
        assert!(why.contains("wait-unassign-to-complete"), "{why}");
        // Settling clears it.
        g.observe(snap("up", "steady"), s(70));
        assert!(g.wedged(s(80)).is_none());
    }

    #[test]
    fn the_unassign_limit_counts_from_entering_the_unassign_state() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut g = GroupTracker::default();
        // Ten seconds waiting for a join (stale members' sessions), then an unassignment.
        g.observe(snap("up", "wait-join"), s(0));
        g.observe(snap("up", "wait-join"), s(10));
        g.observe(snap("up", "wait-incr-unassign-to-complete"), s(11));
        assert!(g.wedged(s(12)).is_none());
        assert!(g.wedged(s(11) + WEDGE_AFTER).is_some());
        // Serving a rebalance callback is the ingest thread's business, not a wedge.
        let mut g = GroupTracker::default();
        g.observe(snap("up", "wait-assign-call"), s(0));
        assert!(g.wedged(s(12)).is_none());
    }

    #[test]
    fn not_even_asking_to_join_while_the_coordinator_answers_is_a_wedge() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut g = GroupTracker::default();
        g.observe(snap("wait-coord", "init"), s(0));
        assert!(g.wedged(s(30)).is_none(), "no coordinator: an outage");
        g.observe(snap("up", "init"), s(30));
        assert!(g.wedged(s(33)).is_none());
        assert!(g.wedged(s(30) + WEDGE_INIT_AFTER).is_some());
    }

    #[test]
    fn stuck_unassigning_while_the_coordinator_is_never_found_is_a_wedge_once_a_broker_answers() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut g = GroupTracker::default();
        let mut stuck = snap("query-coord", "wait-incr-unassign-to-complete");
        g.observe(stuck.clone(), s(0));
        assert!(g.wedged(s(60)).is_none(), "no broker: an outage");
        stuck.any_broker_up = true;
        g.observe(stuck, s(60));
        assert!(g.wedged(s(60) + WEDGE_AFTER).is_some());
    }

    #[test]
    fn waiting_on_the_broker_to_finish_a_join_is_given_several_sessions() {
        let t0 = Instant::now();
        let mut g = GroupTracker::default();
        g.observe(snap("up", "wait-join"), t0);
        assert!(
            g.wedged(t0 + Duration::from_secs(12)).is_none(),
            "a stale member's session"
        );
        assert!(g.wedged(t0 + WEDGE_WAITING_AFTER).is_some());
    }
}
