//! What ingest feeds: the aggregator, behind a trait so that ingest knows nothing of windows.

use motstream_core::{Classification, InteractionEvent};

/// One Kafka partition of one consumed topic. `topic` indexes [`crate::IngestConfig::topics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic: u16,
    pub partition: i32,
}

/// Receives the classified events of each partition, in offset order, and the partition's
/// life cycle. Called from the ingest thread only, one call at a time.
pub trait Sink: Send + Sync + 'static {
    /// The partition was assigned: its state starts empty and warming (being rebuilt).
    fn assigned(&self, part: PartitionKey);
    /// The replay reached the committed offset: the partition's state is complete.
    fn live(&self, part: PartitionKey);
    /// The partition was revoked or lost: drop its state.
    fn revoked(&self, part: PartitionKey);
    /// Applies one valid, classified event. `now_ms` is the ingest clock.
    fn apply(
        &self,
        part: PartitionKey,
        event: &InteractionEvent<'_>,
        class: Classification,
        now_ms: i64,
    );
    /// A live event (not a replayed one) was rejected as further ahead of `now_ms` than the
    /// allowed skew and sent to the dead-letter topic; sinks that count such rejections per
    /// MOT count it here. Default: nothing.
    fn rejected_future(&self, _part: PartitionKey, _mot_id: &str, _now_ms: i64) {}
    /// Called about once a second from the ingest loop, with or without events, for
    /// periodic upkeep (e.g. closing timed-out journeys). `now_ms` is the ingest clock.
    fn tick(&self, _now_ms: i64) {}
}
