//! The ingest pipeline's own metrics, named once here. Per-MOT series are not recorded here:
//! they are derived from the aggregator when scraped.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub(crate) const EVENTS: &str = "motstream_ingest_events_total";
pub(crate) const BYTES: &str = "motstream_ingest_bytes_total";
pub(crate) const REJECTS: &str = "motstream_ingest_rejected_total";
pub(crate) const REPLAYED: &str = "motstream_ingest_replayed_events_total";
pub(crate) const DLQ_FAILURES: &str = "motstream_ingest_dlq_failures_total";
pub(crate) const BATCH_SECONDS: &str = "motstream_ingest_batch_apply_seconds";
pub(crate) const LAG: &str = "motstream_ingest_consumer_lag";
pub(crate) const REBUILD_REMAINING: &str = "motstream_ingest_rebuild_remaining_events";
pub(crate) const COMMITS: &str = "motstream_ingest_commits_total";
pub(crate) const DUPLICATES: &str = "motstream_ingest_duplicates_total";
pub(crate) const STATE_PUBLISHED: &str = "motstream_state_snapshots_published_total";
pub(crate) const STATE_FAILURES: &str = "motstream_state_snapshot_failures_total";
pub(crate) const STATE_BYTES: &str = "motstream_state_snapshot_bytes_total";
pub(crate) const STATE_RESTORED: &str = "motstream_state_partitions_restored_total";

pub(crate) fn describe() {
    describe_counter!(
        EVENTS,
        "Interaction events consumed live (valid and rejected)."
    );
    describe_counter!(BYTES, Unit::Bytes, "Payload bytes consumed live.");
    describe_counter!(
        REJECTS,
        "Events rejected to the dead-letter topic, by reason code."
    );
    describe_counter!(
        REPLAYED,
        "Events re-applied while rebuilding partition state."
    );
    describe_counter!(
        DLQ_FAILURES,
        "Dead-letter writes that failed after retries."
    );
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Time to decode, classify and apply one batch."
    );
    describe_gauge!(LAG, "Messages behind the partition's high watermark.");
    describe_gauge!(
        REBUILD_REMAINING,
        "Events left to replay before the partition is live."
    );
    describe_counter!(COMMITS, "Offset commits sent.");
    describe_counter!(
        DUPLICATES,
        "Events dropped as duplicates of a recent event id."
    );
    describe_counter!(
        STATE_PUBLISHED,
        "Partition snapshots acknowledged by the state topic."
    );
    describe_counter!(
        STATE_FAILURES,
        "Partition snapshots that could not be queued or delivered."
    );
    describe_counter!(
        STATE_BYTES,
        Unit::Bytes,
        "Bytes of partition snapshots sent to the state topic (before compression)."
    );
    describe_counter!(
        STATE_RESTORED,
        "Assigned partitions restored from the state topic instead of replayed."
    );
}

/// Describes every metric and creates the unlabelled counters at zero, so that a scrape shows
/// them (and `rate()` over them works) before their first event. Call once the process's
/// recorder is installed; calling it again changes nothing.
pub fn register() {
    describe();
    for c in [EVENTS, BYTES, REPLAYED, DLQ_FAILURES, COMMITS, DUPLICATES] {
        metrics::counter!(c).increment(0);
    }
}
