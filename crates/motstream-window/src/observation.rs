//! The borrowed per-event input of the hot path and what became of it.

use crate::topology::MotIdx;

/// Which MOT an interaction is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MotKey<'a> {
    /// A MOT of the catalog.
    Known(MotIdx),
    /// An id the catalog does not know; tracked in the bounded unidentified-MOT table.
    Unidentified(&'a str),
}

/// One classified interaction, borrowed from the decoded message. Whether it was a
/// Successful MOT Outcome was decided upstream (SMOTO classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    /// The MOT.
    pub mot: MotKey<'a>,
    /// When the interaction happened, in ms since the Unix epoch (event time; any `i64`).
    pub event_time_ms: i64,
    /// `true` for a moment of magic (SMOTO met), `false` for a moment of misery.
    pub success: bool,
    /// How long the interaction took, in ms; recorded in the latency histogram.
    pub duration_ms: Option<u32>,
    /// Why it failed; tallied only when `success` is `false`.
    pub failure_reason: Option<&'a str>,
    /// The channel (e.g. `kiosk`); tallied with its own success/failure counts.
    pub channel: Option<&'a str>,
    /// The journey (the Kafka key); `None` for interactions outside a tracked journey.
    pub journey_id: Option<&'a str>,
}

impl<'a> Observation<'a> {
    /// An interaction with nothing but its MOT, time and outcome (no latency, reason,
    /// channel or journey); set the others with struct update syntax.
    pub fn new(mot: MotKey<'a>, event_time_ms: i64, success: bool) -> Self {
        Self {
            mot,
            event_time_ms,
            success,
            duration_ms: None,
            failure_reason: None,
            channel: None,
            journey_id: None,
        }
    }
}

/// What [`crate::PartitionWriter::apply`] did with an observation. Every outcome is counted
/// somewhere; nothing is dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Counted in its own bucket of every tier that still holds that bucket.
    Applied,
    /// Older than the partition's watermark minus the allowed lateness: counted as late for
    /// its MOT (in the bucket of the watermark), not applied.
    Late,
    /// Further ahead of `now_ms` than the allowed skew: counted as rejected for its MOT (or
    /// the partition, for an unidentified MOT), not applied.
    RejectedFuture,
    /// A MOT id absent from the catalog: counted in the unidentified-MOT table.
    Unidentified,
    /// A [`MotIdx`] outside the topology (a caller bug): counted per partition, not applied.
    UnknownMotIndex,
}
