//! The state topic: a compacted Kafka topic (`<source topic>.state`) holding each source
//! partition's window state with the source offset it covers, as a base (the whole state)
//! and the latest delta since that base (what changed: the ring buckets written since the
//! base, and the small rest of the state whole).
//!
//! Publishing: on the ingest loop's tick, after the events of the batch are applied and the
//! sink's periodic upkeep ran, every live partition whose applied offset moved since its
//! last publication is snapshotted by the sink *under its writer lock together with that
//! offset*, so the covered offset is never ahead of (nor behind) what the state holds. A
//! partition publishes a base first, then a delta each tick, and a new base once the delta
//! outgrows the average record since the base (`Published::delta_pays`) or the base is
//! [`BASE_AT_MOST_EVERY`] old: a busy partition with days of history publishes its recent
//! buckets each second, not all of its history. The records go to the state partition
//! with the source partition's number (modulo the state topic's partition count), keyed
//! `<topic index>/<partition>` (base) and `<topic index>/<partition>/delta`, so compaction
//! keeps one of each per source partition, and a restore reads only the tail of one state
//! partition. One producer, idempotent, so a partition's records land in the order they
//! were sent: a delta is after its base.
//!
//! Restoring: on assignment, the partition's latest base and the latest delta after it are
//! read back (the last records of its state partition, widening the look-back until a base
//! with its key is found) and handed to the sink; ingest then resumes from the covered
//! offset instead of replaying the retention. See [`resume_plan`] for how that meets the
//! committed offset.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::metrics as m;
use crate::partition::PartState;
use crate::sink::{PartitionKey, Sink, SnapshotKind};

/// Largest snapshot record, bytes (the state topic's `max.message.bytes`).
pub(crate) const MAX_RECORD_BYTES: usize = 32 << 20;

/// A partition publishes a new base at least this often, so that a base lost in delivery
/// (its deltas then apply to nothing) is replaced within this long.
pub(crate) const BASE_AT_MOST_EVERY: Duration = Duration::from_secs(600);

/// What was last published of a partition.
#[derive(Debug, Clone, Copy)]
struct Published {
    /// The applied offset it covered.
    offset: i64,
    /// The base deltas are relative to and when it was taken.
    base: u64,
    base_at: Instant,
    /// The records queued since the base, the base included, and their bytes.
    records: usize,
    bytes: usize,
}

impl Published {
    /// Whether a delta of `len` bytes is worth sending rather than a new base. A delta holds
    /// every bucket written since its base, so it grows as the base ages; what a partition
    /// publishes per second, averaged from one base to the next, is lowest when the base is
    /// renewed once the next delta would be larger than that average so far, which is the
    /// rule. In `--bench snapshot`'s busy partition (1,000 MOTs, 3 days, an 8 MB base) the
    /// delta grows from 0.55 MB after 1 s by about 4.8 KB a second, so the base is renewed
    /// about every minute; renewed at half the base size, it waited the whole ten minutes
    /// and averaged about 2.0 MB/s where this averages about 0.8 MB/s (from the sizes the
    /// bench prints, between which the delta grows about linearly).
    fn delta_pays(&self, len: usize) -> bool {
        len.saturating_mul(self.records) <= self.bytes
    }

    /// After a record of `len` bytes at `offset` is queued.
    fn sent(self, offset: i64, len: usize) -> Self {
        Self {
            offset,
            records: self.records + 1,
            bytes: self.bytes.saturating_add(len),
            ..self
        }
    }
}

/// The state topic of source topic `topic`.
pub fn state_topic_name(topic: &str) -> String {
    format!("{topic}.state")
}

pub(crate) struct StateContext {
    log: crate::QuietLog,
}

crate::quiet_client_context!(StateContext, log);

impl ProducerContext for StateContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => metrics::counter!(m::STATE_PUBLISHED).increment(1),
            Err((e, _)) => {
                // The next tick publishes a newer snapshot anyway: nothing to retry.
                metrics::counter!(m::STATE_FAILURES).increment(1);
                warn!(error = %e, "publishing a partition snapshot failed");
            }
        }
    }
}

/// Where the partition's snapshots go and come from.
pub(crate) struct StateTopic {
    /// Per source topic (by index): its state topic's name and partition count.
    topics: Vec<(String, i32)>,
    producer: ThreadedProducer<StateContext>,
    reader_config: ClientConfig,
    /// What was last published per partition. A std `Mutex` taken by the ingest thread only
    /// (tick and rebalance callbacks, which run inside its `poll`).
    published: Mutex<HashMap<PartitionKey, Published>>,
    /// Base ids: distinct across instances and restarts, so a delta is never applied to
    /// another owner's base of the same partition.
    ids: std::collections::hash_map::RandomState,
    next_id: std::sync::atomic::AtomicU64,
    timeout: Duration,
}

impl StateTopic {
    /// Makes sure each source topic's state topic exists (compacted, as many partitions as
    /// its source) and connects to them. `base` carries the brokers and user properties.
    pub(crate) fn new(
        base: &ClientConfig,
        sources: &[String],
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        let mut topics = Vec::with_capacity(sources.len());
        for s in sources {
            let name = state_topic_name(s);
            let n = crate::state_admin::ensure(base, s, &name, timeout)?;
            topics.push((name, n));
        }
        let mut pc = base.clone();
        pc.set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .set("message.max.bytes", (MAX_RECORD_BYTES + 4096).to_string())
            .set("acks", "all");
        let producer = pc.create_with_context(StateContext {
            log: crate::QuietLog::new("state-topic producer"),
        })?;
        let mut rc = base.clone();
        rc.set("group.id", reader_group())
            .set("enable.auto.commit", "false")
            .set("fetch.max.bytes", (MAX_RECORD_BYTES * 2).to_string())
            .set(
                "max.partition.fetch.bytes",
                (MAX_RECORD_BYTES + 4096).to_string(),
            )
            .set(
                "receive.message.max.bytes",
                (MAX_RECORD_BYTES * 2 + 65536).to_string(),
            );
        info!(topics = ?topics, "state topics ready");
        Ok(Self {
            topics,
            producer,
            reader_config: rc,
            published: Mutex::new(HashMap::new()),
            ids: std::collections::hash_map::RandomState::new(),
            next_id: std::sync::atomic::AtomicU64::new(0),
            timeout,
        })
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, Published>> {
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn target(&self, part: PartitionKey) -> Option<(&str, i32)> {
        let (name, n) = self.topics.get(usize::from(part.topic))?;
        Some((name.as_str(), part.partition.rem_euclid((*n).max(1))))
    }

    fn new_id(&self) -> u64 {
        use std::hash::BuildHasher;
        // Relaxed: a counter only made unique, not ordered.
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.ids.hash_one(n)
    }

    /// Publishes a snapshot (base or delta) of every live partition whose applied offset
    /// moved.
    pub(crate) fn publish(
        &self,
        sink: &dyn Sink,
        parts: &HashMap<PartitionKey, PartState>,
        now_ms: i64,
    ) {
        let mut published = self.published();
        for (key, st) in parts {
            let last = published.get(key).copied();
            if !st.live || st.replay_until < 0 || last.is_some_and(|p| p.offset == st.next_apply) {
                continue;
            }
            let delta = last
                .filter(|p| p.base_at.elapsed() < BASE_AT_MOST_EVERY)
                .and_then(|p| {
                    let bytes =
                        sink.snapshot(*key, st.next_apply, now_ms, SnapshotKind::Delta(p.base))?;
                    p.delta_pays(bytes.len()).then_some((bytes, p))
                });
            let (bytes, base, record) = match delta {
                Some((bytes, p)) => (bytes, p, delta_key(*key)),
                None => {
                    let id = self.new_id();
                    // A base resets what the next delta is relative to: until it is queued,
                    // no delta of the old base may follow it.
                    published.remove(key);
                    let Some(bytes) =
                        sink.snapshot(*key, st.next_apply, now_ms, SnapshotKind::Base(id))
                    else {
                        continue;
                    };
                    let p = Published {
                        offset: st.next_apply,
                        base: id,
                        base_at: Instant::now(),
                        records: 0,
                        bytes: 0,
                    };
                    (bytes, p, record_key(*key))
                }
            };
            if bytes.len() > MAX_RECORD_BYTES {
                warn!(
                    partition = key.partition,
                    bytes = bytes.len(),
                    "partition snapshot too large for the state topic; not published"
                );
                continue;
            }
            let Some((topic, p)) = self.target(*key) else {
                continue;
            };
            metrics::counter!(m::STATE_BYTES).increment(bytes.len() as u64);
            let rec = BaseRecord::to(topic)
                .key(&record)
                .payload(&bytes)
                .partition(p);
            match self.producer.send(rec) {
                Ok(()) => {
                    published.insert(*key, base.sent(st.next_apply, bytes.len()));
                }
                Err((e, _)) => {
                    metrics::counter!(m::STATE_FAILURES).increment(1);
                    debug!(error = %e, "queueing a partition snapshot failed; retried next tick");
                }
            }
        }
        published.retain(|k, _| parts.contains_key(k));
    }

    /// The latest base of `part` and the latest delta after it, if the state topic holds a
    /// base. Blocks up to the request timeout; `None` on any error (ingest then replays the
    /// raw events).
    pub(crate) fn latest(&self, part: PartitionKey) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let (topic, p) = self.target(part)?;
        let want = record_key(part);
        let want_delta = delta_key(part);
        let reader: BaseConsumer = match self.reader_config.create() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "creating the state reader failed");
                return None;
            }
        };
        let (lo, hi) = reader.fetch_watermarks(topic, p, self.timeout).ok()?;
        let deadline = Instant::now() + self.timeout;
        let mut back = 16i64;
        loop {
            let from = (hi - back).max(lo);
            if from >= hi {
                return None;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Offset(from))
                .ok()?;
            reader.assign(&tpl).ok()?;
            let mut found = None;
            let mut delta = None;
            // The offset last read: `from` itself is still to read (it may be the only
            // record, `hi - 1`).
            let mut at = from - 1;
            while at < hi - 1 && Instant::now() < deadline {
                match reader.poll(Duration::from_millis(200)) {
                    Some(Ok(msg)) => {
                        at = msg.offset();
                        if msg.key() == Some(want.as_bytes()) {
                            found = msg.payload().map(<[u8]>::to_vec);
                            // Only a delta after its base can be of it.
                            delta = None;
                        } else if msg.key() == Some(want_delta.as_bytes()) {
                            delta = msg.payload().map(<[u8]>::to_vec);
                        }
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "reading the state topic failed");
                        return None;
                    }
                    None => {
                        // Compaction leaves gaps: the position says when the end is reached.
                        if let Ok(pos) = reader.position()
                            && let Some(Offset::Offset(o)) =
                                pos.find_partition(topic, p).map(|e| e.offset())
                            && o >= hi
                        {
                            break;
                        }
                    }
                }
            }
            if found.is_some() || from == lo || Instant::now() >= deadline {
                return found.map(|b| (b, delta));
            }
            back = back.saturating_mul(8);
        }
    }

    /// Forgets what was published for `part` (revoked): a later owner publishes afresh.
    pub(crate) fn forget(&self, part: PartitionKey) {
        self.published().remove(&part);
    }

    pub(crate) fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            warn!(error = %e, "partition snapshots still queued at shutdown");
        }
    }
}

impl crate::context::IngestContext {
    /// On assignment, after `Sink::assigned`: restores the partition from its latest
    /// snapshot if there is a usable one, and returns where to resume (see [`resume_plan`]).
    pub(crate) fn restore_from_state(
        &self,
        key: PartitionKey,
        committed: Option<i64>,
    ) -> Option<(i64, i64, i64, Option<i64>)> {
        let started = Instant::now();
        let (bytes, delta) = self.state.as_ref()?.latest(key)?;
        let Some(covered) = self.sink.restore(key, &bytes, delta.as_deref()) else {
            warn!(
                partition = key.partition,
                bytes = bytes.len(),
                "the latest partition snapshot is unusable; replaying raw events"
            );
            return None;
        };
        metrics::counter!(m::STATE_RESTORED).increment(1);
        let plan = resume_plan(covered, committed);
        info!(
            partition = key.partition,
            bytes = bytes.len(),
            delta_bytes = delta.as_ref().map_or(0, Vec::len),
            covered,
            committed = committed.unwrap_or(-1),
            secs = started.elapsed().as_secs_f64(),
            "partition restored from the state topic"
        );
        Some(plan)
    }
}

/// The state topics of `cfg`'s sources, when asked for. If they cannot be set up (e.g. the
/// broker is down at start), ingest runs without them and says so: restores fall back to
/// replaying raw events.
pub(crate) fn open(cfg: &crate::IngestConfig) -> Option<StateTopic> {
    if !cfg.state_topic {
        return None;
    }
    let base = crate::kafka_config(&cfg.brokers, &[], &cfg.kafka);
    match StateTopic::new(&base, &cfg.topics, Duration::from_secs(10)) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "state topics unavailable: partitions will be rebuilt by replay and no snapshots published");
            None
        }
    }
}

/// The `group.id` of the state readers. librdkafka refuses `assign` without one, but a
/// consumer that only assigns never joins its group nor commits, so the id is a label: one
/// per process, so that no broker-side group is shared by accident.
pub(crate) fn reader_group() -> String {
    format!("motstream-state-reader-{}", std::process::id())
}

fn record_key(part: PartitionKey) -> String {
    format!("{}/{}", part.topic, part.partition)
}

fn delta_key(part: PartitionKey) -> String {
    format!("{}/{}/delta", part.topic, part.partition)
}

/// The partition a state record's key names (`<topic index>/<partition>`, with `/delta` for
/// a delta: the record says which it is itself).
pub(crate) fn parse_record_key(key: &[u8]) -> Option<PartitionKey> {
    let s = std::str::from_utf8(key).ok()?;
    let s = s.strip_suffix("/delta").unwrap_or(s);
    let (t, p) = s.split_once('/')?;
    Some(PartitionKey {
        topic: t.parse().ok()?,
        partition: p.parse().ok()?,
    })
}

/// Where a partition resumes after its state was restored from a snapshot covering the
/// events before `covered`, given the group's committed offset (`None`: none yet).
/// Returns `(seek to, replay until, next offset to apply, resend dead letters from)`.
///
/// - `covered <= committed`: events in `covered..committed` were applied and dead-lettered
///   before; they are replayed into the state without side effects, as in a rebuild.
/// - `covered > committed`: the state holds events the group has not committed, possibly
///   with dead-letter writes that never landed. Consumption restarts at the committed
///   offset without applying anything below `covered` again, but rejects in
///   `committed..covered` are dead-lettered again (at least once), and the commit is held at
///   `committed` until consumption passes `covered`.
pub(crate) fn resume_plan(covered: i64, committed: Option<i64>) -> (i64, i64, i64, Option<i64>) {
    match committed {
        Some(c) if covered <= c => (covered, c, covered, None),
        Some(c) => (c, c, covered, Some(c)),
        None => (covered, covered, covered, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_base_is_taken_once_the_delta_outgrows_the_average_record_since_the_base() {
        let mut p = Published {
            offset: 0,
            base: 1,
            base_at: Instant::now(),
            records: 0,
            bytes: 0,
        }
        .sent(10, 8_000);
        // A delta as large as the base still breaks even; one byte more does not.
        assert!(p.delta_pays(8_000));
        assert!(!p.delta_pays(8_001));
        // Deltas growing 1,000 bytes a second from 500: the fourth (3,500 bytes) is larger
        // than the average record so far ((8,000 + 500 + 1,500 + 2,500) / 4 = 3,125).
        let mut sent = 0;
        for k in 0..20 {
            let len = 500 + 1_000 * k;
            if !p.delta_pays(len) {
                break;
            }
            p = p.sent(11 + k as i64, len);
            sent += 1;
        }
        assert_eq!((sent, p.records, p.offset), (3, 4, 13));
    }

    #[test]
    fn a_snapshot_behind_the_commit_replays_the_gap_without_side_effects() {
        assert_eq!(resume_plan(100, Some(250)), (100, 250, 100, None));
    }

    #[test]
    fn a_snapshot_ahead_of_the_commit_applies_nothing_twice_but_resends_dead_letters() {
        assert_eq!(resume_plan(300, Some(250)), (250, 250, 300, Some(250)));
        assert_eq!(resume_plan(300, None), (300, 300, 300, None));
    }

    #[test]
    fn record_keys_round_trip_and_junk_is_refused() {
        let k = PartitionKey {
            topic: 2,
            partition: 17,
        };
        assert_eq!(parse_record_key(record_key(k).as_bytes()), Some(k));
        assert_eq!(parse_record_key(delta_key(k).as_bytes()), Some(k));
        for junk in [
            &b"17"[..],
            b"a/b",
            b"1/",
            b"\xff/1",
            b"70000/1",
            b"1/2/base",
            b"1/delta",
        ] {
            assert_eq!(parse_record_key(junk), None);
        }
    }

    #[test]
    fn a_snapshot_at_the_commit_is_live_at_once() {
        let (start, until, next, resend) = resume_plan(250, Some(250));
        assert_eq!((start, until, next, resend), (250, 250, 250, None));
        assert!(PartState::new(start, until, 250).live);
    }
}
