//! What ingest feeds: the aggregator, behind a trait so that ingest knows nothing of windows.

use motstream_core::{Classification, InteractionEvent};

/// One Kafka partition of one consumed topic. `topic` indexes [`crate::IngestConfig::topics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic: u16,
    pub partition: i32,
}

/// Which snapshot [`Sink::snapshot`] is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// The whole state, named by this id; later deltas are relative to it.
    Base(u64),
    /// What changed since base `0` was taken (of the same partition, by the same sink).
    Delta(u64),
}

/// Receives the classified events of each partition, in offset order, and the partition's
/// life cycle. Called from the ingest thread only, one call at a time (except
/// [`Sink::follow`], from the follower's thread).
pub trait Sink: Send + Sync + 'static {
    /// The partition was assigned and is to be rebuilt by replay: its state starts empty
    /// and warming. Not called when [`Sink::restore`] succeeded.
    fn assigned(&self, part: PartitionKey);
    /// The replay reached the committed offset: the partition's state is complete.
    fn live(&self, part: PartitionKey);
    /// The partition was revoked or lost: drop its state.
    fn revoked(&self, part: PartitionKey);
    /// Applies a run of one partition's valid, classified events, in offset order: `events`
    /// is called once and hands each event to the [`Apply`] it is given. Ingest calls this
    /// once per partition per polled batch, so that the sink takes its per-partition state
    /// (and any lock on it) once per run, not once per event. `now_ms` is the ingest clock.
    fn apply_batch(&self, part: PartitionKey, now_ms: i64, events: &mut dyn FnMut(&mut dyn Apply));
    /// Applies one valid, classified event: a run of one (tests and tools).
    fn apply(
        &self,
        part: PartitionKey,
        event: &InteractionEvent<'_>,
        class: Classification,
        now_ms: i64,
    ) {
        self.apply_batch(part, now_ms, &mut |a| a.apply(event, class));
    }
    /// Called about once a second from the ingest loop, with or without events, for
    /// periodic upkeep (e.g. closing timed-out journeys). `now_ms` is the ingest clock.
    fn tick(&self, _now_ms: i64) {}
    /// The partition's state as snapshot bytes of `kind`, recording first (under the same
    /// lock as the state) that every event before `next_offset` is applied, so the snapshot
    /// covers exactly those. `None`: nothing to publish. Called on the tick, after `tick`.
    fn snapshot(
        &self,
        _part: PartitionKey,
        _next_offset: i64,
        _now_ms: i64,
        _kind: SnapshotKind,
    ) -> Option<Vec<u8>> {
        None
    }
    /// On assignment, instead of `assigned`: replaces whatever the partition held with the
    /// state in `base` (a [`SnapshotKind::Base`] from [`Sink::snapshot`]) with `delta` (a
    /// later delta, possibly of another base, which is then left out) applied, marked
    /// warming until `live`; returns the next offset to consume after it. `None`: the bytes
    /// are unusable, nothing changed, and ingest calls `assigned` and replays the raw events.
    fn restore(&self, _part: PartitionKey, _base: &[u8], _delta: Option<&[u8]>) -> Option<i64> {
        None
    }
    /// A snapshot of a partition published by whichever instance owns it, read from the
    /// state topic by the follower ([`crate::follow_state`]) with the time it was published
    /// (ms). Called from the follower's thread, for owned partitions too.
    fn follow(&self, _part: PartitionKey, _bytes: &[u8], _published_ms: i64) {}
    /// The follower found the state topic of source topic `name` (index `topic`) with
    /// `partitions` partitions: the deployment's partitions, for reporting missing ones.
    fn following(&self, _topic: u16, _name: &str, _partitions: i32) {}
}

/// Takes the events of one [`Sink::apply_batch`] run.
pub trait Apply {
    /// Applies one valid, classified event of the run's partition.
    fn apply(&mut self, event: &InteractionEvent<'_>, class: Classification);
    /// A live event (not a replayed one) of the run's partition was rejected as further ahead
    /// of the ingest clock than the allowed skew and sent to the dead-letter topic; sinks that
    /// count such rejections per MOT count it here. Default: nothing.
    fn rejected_future(&mut self, _mot_id: &str) {}
}
