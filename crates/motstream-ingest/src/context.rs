//! The consumer's context: rebalance handling (rebuild on assign, commit and drop on revoke),
//! commit acknowledgements, broker errors and statistics. librdkafka calls all of these from
//! inside `poll`, on the ingest thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tracing::{error, info, warn};

use crate::dlq::Dlq;
use crate::group::ClientSnapshot;
use crate::health::{Health, PartitionReport};
use crate::metrics::LAG;
use crate::partition::PartState;
use crate::sink::{PartitionKey, Sink};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) type Parts = HashMap<PartitionKey, PartState>;

/// Longest single broker request of a rebalance callback (see `IngestContext::retry`).
const ATTEMPT: Duration = Duration::from_secs(2);

pub(crate) struct IngestContext {
    pub topics: Vec<String>,
    /// Every assigned partition. A std `Mutex` taken by the ingest thread once per batch and by
    /// the rebalance callbacks, which librdkafka runs on the same thread inside `poll`; so it is
    /// never contended, and never held across a `poll`.
    pub parts: Mutex<Parts>,
    pub sink: Arc<dyn Sink>,
    pub health: Arc<Health>,
    /// Shared with the consumers that replace this one if it wedges.
    pub dlq: Arc<Dlq>,
    /// How far back (ms) a newly assigned partition is replayed: retention plus lateness.
    pub lookback_ms: i64,
    pub request_timeout: Duration,
    /// De-duplication window (ms of event time) and capacity per partition, when on.
    pub dedup: Option<(i64, usize)>,
    /// Holds back repeats of the client's complaints (see [`crate::quiet`]).
    pub quiet: crate::quiet::QuietLog,
    /// The partitions the rebalance callbacks assigned or revoked since the ingest loop last
    /// looked, so it can drop the messages of theirs it fetched before (see
    /// `IngestContext::take_touched`). `rebalances` counts the callbacks, so the loop only
    /// takes the lock after one.
    pub touched: Mutex<Vec<PartitionKey>>,
    pub rebalances: AtomicU64,
    /// Where partition snapshots are published and restored from, when on; shared with the
    /// consumers that replace this one.
    pub state: Option<Arc<crate::state_topic::StateTopic>>,
    /// Set when shutdown is asked for. The rebalance callbacks run inside `poll`, where the
    /// ingest loop cannot see it, and ask the broker with retries: they give up on it.
    pub shutdown: Arc<std::sync::atomic::AtomicBool>,
}

impl IngestContext {
    /// The partitions touched by rebalances since the last call, if the rebalance count moved
    /// past `seen` (which it updates).
    pub(crate) fn take_touched(&self, seen: &mut u64) -> Option<Vec<PartitionKey>> {
        // Relaxed: the callbacks run on this same thread, inside `poll`.
        let n = self.rebalances.load(Ordering::Relaxed);
        if n == *seen {
            return None;
        }
        *seen = n;
        let mut t = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(std::mem::take(&mut *t))
    }

    fn touch(&self, tpl: &TopicPartitionList) {
        let mut t = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.extend(
            tpl.elements()
                .iter()
                .filter_map(|e| self.key(e.topic(), e.partition())),
        );
        // Relaxed: read on this same thread (see `take_touched`).
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn parts(&self) -> MutexGuard<'_, Parts> {
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key of a fetched message's partition. With one subscribed topic (the usual case)
    /// every message is from it, which saves reading the topic's name per message: a C string,
    /// so a `strlen` and a UTF-8 check, about 3% of the ingest thread at 300,000 events/s.
    pub(crate) fn key_of(&self, msg: &BorrowedMessage<'_>) -> Option<PartitionKey> {
        match self.topics.as_slice() {
            [only] if !only.starts_with('^') => Some(PartitionKey {
                topic: 0,
                partition: msg.partition(),
            }),
            _ => self.key(msg.topic(), msg.partition()),
        }
    }

    pub(crate) fn key(&self, topic: &str, partition: i32) -> Option<PartitionKey> {
        let t = self.topics.iter().position(|t| t == topic)?;
        Some(PartitionKey {
            topic: u16::try_from(t).ok()?,
            partition,
        })
    }

    pub(crate) fn topic(&self, key: PartitionKey) -> &str {
        self.topics
            .get(usize::from(key.topic))
            .map_or("?", String::as_str)
    }

    fn new_state(&self, start: i64, until: i64, committed: i64) -> PartState {
        let mut st = PartState::new(start, until, committed);
        st.dedup = self.dedup.map(|(w, cap)| crate::dedup::Dedup::new(w, cap));
        st
    }

    pub(crate) fn report(&self, key: PartitionKey, st: &PartState) {
        self.health.set_partition(
            key,
            PartitionReport {
                topic: self.topic(key).to_owned(),
                partition: key.partition,
                state: st.state_name(),
                next_offset: st.next_apply,
                rebuild_from: st.rebuild_from,
                rebuild_until: st.replay_until,
                committed: st.committed,
            },
        );
    }

    /// Asks the broker, in attempts of at most [`ATTEMPT`] for up to three request timeouts,
    /// before giving up on a request made during a rebalance. Short attempts, because the
    /// callback blocks the ingest thread: a shutdown asked for meanwhile (e.g. in a broker
    /// outage) is seen between attempts and ends the retries, so the service still stops
    /// within its bound instead of waiting out a 10 s request three times.
    fn retry<T>(&self, what: &str, mut f: impl FnMut(Duration) -> KafkaResult<T>) -> Option<T> {
        let give_up = Instant::now() + self.request_timeout * 3;
        let per_attempt = self.request_timeout.min(ATTEMPT);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match f(per_attempt) {
                Ok(v) => return Some(v),
                Err(e) => {
                    warn!(attempt, error = %e, "{what} failed during rebalance");
                    // Acquire pairs with the Release store of whoever asks for shutdown.
                    if self.shutdown.load(Ordering::Acquire) || Instant::now() >= give_up {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
    }

    fn on_assign(&self, c: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let wanted: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let committed = self.retry("reading committed offsets", |t| {
            c.committed_offsets(tpl.clone(), t)
        });
        let mut times = TopicPartitionList::new();
        let since = now_ms().saturating_sub(self.lookback_ms);
        for (t, p) in &wanted {
            // An error here only means the list is malformed, which it is not.
            let _ = times.add_partition_offset(t, *p, Offset::Offset(since));
        }
        let starts = self.retry("looking up offsets by time", |t| {
            c.offsets_for_times(times.clone(), t)
        });
        let offset_in = |list: &Option<TopicPartitionList>, t: &str, p: i32| match list
            .as_ref()
            .and_then(|l| l.find_partition(t, p))
            .map(|e| e.offset())
        {
            Some(Offset::Offset(n)) => Some(n),
            _ => None,
        };
        let mut parts = self.parts();
        for (t, p) in wanted {
            let Some(key) = self.key(&t, p) else { continue };
            if committed.is_none() || starts.is_none() {
                // The broker did not answer: consume from the committed offset without a
                // rebuild, and say so; the windows miss history until it ages out.
                error!(topic = %t, partition = p, "could not rebuild: the broker did not answer; consuming from the committed offset with partial history");
                self.health
                    .broker_error(format!("{t}/{p} assigned without rebuild"));
                let st = self.new_state(-1, -1, -1);
                self.sink.assigned(key);
                self.sink.live(key);
                self.report(key, &st);
                parts.insert(key, st);
                continue;
            }
            let done = offset_in(&committed, &t, p);
            let from = offset_in(&starts, &t, p);
            // A restore replaces whatever the partition held (e.g. a follower's copy, which
            // keeps answering meanwhile); only without one does the state start empty.
            let resumed = self.restore_from_state(key, done);
            if resumed.is_none() {
                self.sink.assigned(key);
            }
            let window = match resumed {
                Some((s, u, _, _)) => Some((s, u)),
                None => match (done, from) {
                    (Some(c), Some(r)) if r < c => Some((r, c)),
                    (Some(c), _) => Some((c, c)),
                    (None, Some(r)) => Some((r, r)),
                    (None, None) => self.start_at_end(c, &t, p, since),
                },
            };
            let Some((start, until)) = window else {
                // The end could not be read: librdkafka resolves it when it fetches. Starting at
                // 0 instead would read the whole log, all of it older than the lookback, as live.
                warn!(topic = %t, partition = p, "could not read the end offset; consuming from the end as librdkafka finds it");
                if let Err(e) = tpl.set_partition_offset(&t, p, Offset::End) {
                    error!(topic = %t, partition = p, error = %e, "cannot set the start offset");
                }
                let st = self.new_state(-1, -1, -1);
                self.sink.live(key);
                self.report(key, &st);
                parts.insert(key, st);
                continue;
            };
            if let Err(e) = tpl.set_partition_offset(&t, p, Offset::Offset(start)) {
                error!(topic = %t, partition = p, error = %e, "cannot set the start offset");
            }
            let mut st = self.new_state(start, until, done.unwrap_or(-1));
            if let Some((_, _, next, resend)) = resumed {
                (st.next_apply, st.dlq_retry_from) = (next, resend);
            }
            if st.live {
                self.sink.live(key);
                info!(topic = %t, partition = p, offset = start, "partition assigned, live");
            } else {
                info!(topic = %t, partition = p, from = start, until, events = until - start, "partition assigned, rebuilding its windows");
            }
            self.report(key, &st);
            parts.insert(key, st);
        }
    }

    /// Where a partition with nothing newer than the lookback starts: at its end, live. Events
    /// may have been written since the first lookup (a topic's first events, produced as the
    /// group forms), and starting at the end as it is now would skip them, so this takes the
    /// end first and then asks again; what the second lookup does not find is older than the
    /// lookback, and everything from the end taken before is kept. Both requests go through
    /// [`Self::retry`], so a shutdown during an outage ends them. `None`: the end is unknown.
    fn start_at_end(
        &self,
        c: &BaseConsumer<Self>,
        t: &str,
        p: i32,
        since: i64,
    ) -> Option<(i64, i64)> {
        let (_, hi) = self.retry("reading the end offset", |to| c.fetch_watermarks(t, p, to))?;
        let mut again = TopicPartitionList::new();
        // An error here only means the list is malformed, which it is not.
        let _ = again.add_partition_offset(t, p, Offset::Offset(since));
        let found = self.retry("looking up offsets by time", |to| {
            c.offsets_for_times(again.clone(), to)
        });
        match found
            .as_ref()
            .and_then(|l| l.find_partition(t, p))
            .map(|e| e.offset())
        {
            Some(Offset::Offset(r)) if r < hi => Some((r, r)),
            _ => Some((hi, hi)),
        }
    }

    fn on_revoke(&self, c: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let lost = c.assignment_lost();
        if lost {
            self.health.assignment_lost();
        }
        // Let pending dead-letter writes land so that the final commit covers them.
        if !lost && let Err(e) = self.dlq.flush(Duration::from_secs(5)) {
            warn!(error = %e, "dead-letter writes still pending at revocation");
        }
        let acks = self.dlq.drain();
        let mut parts = self.parts();
        crate::consumer::settle_acks(&mut parts, acks);
        let mut commit = TopicPartitionList::new();
        for e in tpl.elements() {
            let Some(key) = self.key(e.topic(), e.partition()) else {
                continue;
            };
            let Some(st) = parts.remove(&key) else {
                continue;
            };
            let cp = st.commit_point();
            if !lost && st.live && cp > st.committed {
                let _ = commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(cp));
            }
            self.sink.revoked(key);
            if let Some(s) = &self.state {
                s.forget(key);
            }
            self.health.remove_partition(key);
            info!(
                topic = e.topic(),
                partition = e.partition(),
                committed = cp,
                lost,
                "partition revoked, state dropped"
            );
        }
        drop(parts);
        // A synchronous commit waits for the coordinator: with the broker away it would hold
        // the revocation (and a shutdown) for as long as the outage lasts.
        let mode = if self.health.broker_answers(Instant::now()) {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        if commit.count() > 0
            && let Err(e) = c.commit(&commit, mode)
        {
            warn!(error = %e, "final commit at revocation failed; the next owner re-sends those dead letters");
        }
    }
}

impl IngestContext {
    /// Drops every partition's state without a commit, as for a lost assignment.
    pub(crate) fn drop_all(&self, why: &str) {
        let mut parts = self.parts();
        let mut t = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, _) in parts.drain() {
            self.sink.revoked(key);
            if let Some(s) = &self.state {
                s.forget(key);
            }
            self.health.remove_partition(key);
            t.push(key);
            info!(
                topic = self.topic(key),
                partition = key.partition,
                why,
                "partition state dropped"
            );
        }
        // Relaxed: read on this same thread (see `take_touched`).
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }
}

impl ClientContext for IngestContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.quiet.error(&error, reason);
        self.health.broker_error(format!("{error}: {reason}"));
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.quiet.log(level, fac, log_message);
    }

    fn stats(&self, stats: Statistics) {
        let snap = {
            let parts = self.parts();
            ClientSnapshot::from_stats(&stats, parts.keys().map(|k| (self.topic(*k), k.partition)))
        };
        self.health.client_report(snap, Instant::now());
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                // -1 is librdkafka's "unknown", and partition -1 its internal UA partition.
                if *p >= 0 && part.consumer_lag >= 0 {
                    metrics::gauge!(LAG, "topic" => topic.clone(), "partition" => p.to_string())
                        .set(part.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(&self, c: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
        self.touch(tpl);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // A cooperative rebalance ends with an assignment that may add nothing: no
                // offsets to look up (the broker refuses an empty lookup).
                if tpl.count() > 0 {
                    self.on_assign(c, tpl);
                }
                self.health.set_assigned();
                if cooperative {
                    c.incremental_assign(tpl)
                } else {
                    c.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(c, tpl);
                if cooperative {
                    c.incremental_unassign(tpl)
                } else {
                    c.unassign()
                }
            }
            other => {
                error!(error = ?other, "rebalance error");
                // librdkafka requires the assignment to be cleared after a rebalance error
                // (`assign(NULL)`, valid under both protocols): drop the state with it, or
                // the partitions would stay live here with nothing fetching them.
                self.drop_all("rebalance error");
                c.unassign()
            }
        };
        if let Err(e) = result {
            error!(error = %e, "applying the new assignment failed");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                let mut parts = self.parts();
                for e in offsets.elements() {
                    if let (Some(key), Offset::Offset(o)) =
                        (self.key(e.topic(), e.partition()), e.offset())
                        && let Some(st) = parts.get_mut(&key)
                    {
                        st.committed = st.committed.max(o);
                        // /healthz shows the commit as it lands, not the one found at assignment.
                        self.report(key, st);
                    }
                }
            }
            // Retried on the next tick: the commit point is recomputed from the state.
            Err(e) => warn!(error = %e, "offset commit failed"),
        }
    }
}
