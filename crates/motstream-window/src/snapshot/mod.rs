//! Snapshots: one partition's whole window state as compact, versioned bytes, with the
//! source offset it covers, and the restore of a partition from them.
//!
//! What is kept is the state itself, not the events: per MOT its head (current bucket of
//! each counter tier) and every non-empty ring bucket (counters; latency bins, reason and
//! channel tallies, late/rejected counts), per experience its journey and impact buckets and
//! MOTs-per-SCO bins, the label interners, the unidentified-MOT table, the open journeys,
//! the watermark and the partition's statistics. So its size depends on how many buckets
//! hold data (bounded by the ring geometry), never on how many events made them.
//!
//! A snapshot is whole (a *base*, named by a caller-chosen id) or a *delta* of a base: all of
//! the partition's state except the ring buckets outside the span of buckets written since
//! the base (tracked by the writer, so late events, head rotations that close old buckets
//! and journeys abandoned ahead of the watermark are in it). [`crate::Aggregator::apply_delta`] puts a delta onto its base (or onto an earlier delta
//! applied to it) and gives what a whole snapshot taken at the delta would hold. A busy
//! partition's delta holds the buckets since its base, not the history its rings hold.
//!
//! Format (version 4: version 3 plus the base id and the delta's first time after the stamp;
//! version 3 was version 2 plus each open journey's last MOT after its MOTs-seen bits,
//! and each MOT's journey funnel ring after its detail ring; version 2 was version 1 plus
//! each open journey's last-failed flag, the in-flight gauges after the journeys, and each
//! MOT's earliest event time after its touched flag; older versions are refused with
//! [`SnapshotError::OtherVersion`]), all integers LEB128 varints (signed ones zigzag):
//! `"MSWS"`, version byte, layout fingerprint (8 bytes LE), caller stamp (8 bytes LE),
//! base id (8 bytes LE), delta's first time (flag + value) and, for a delta, its last time,
//! partition, next offset (flag + value), reference time, watermark (flag + value), nine
//! statistics, reasons, channels, unidentified MOTs, journeys, MOTs, experiences. A bucket
//! is written as its index relative to the reference time's bucket in its tier, so most
//! take one or two bytes; its ring slot follows from the index and is checked for
//! duplicates. [`decode`] validates everything against the aggregator's layout and returns
//! an error naming the field at fault; it never panics and never allocates more than its
//! input could describe.
//!
//! A snapshot is taken under the partition's writer lock, together with the offset the
//! writer was told ([`crate::PartitionWriter::set_next_offset`]), so it holds exactly the
//! events before that offset: restoring it and replaying from that offset neither loses
//! nor double-counts one.
//!
//! What is not kept: ring buckets whose values are all zero (a restored ring reads them as
//! empty), and the writer's caches (cursors, slot memos), which rebuild themselves.

mod decode;
mod delta;
mod encode;
mod restore;
mod wire;

use std::sync::Arc;

pub(crate) use decode::decode;
pub(crate) use encode::encode;

use crate::partition::PartitionId;

const MAGIC: &[u8; 4] = b"MSWS";
const VERSION: u8 = 4;

/// Why snapshot bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a window snapshot at all (no magic).
    #[error("snapshot: not a window snapshot (magic mismatch)")]
    NotASnapshot,
    /// A window snapshot of a format version this build does not read (an older build's):
    /// the partition is rebuilt by replaying from Kafka instead.
    #[error(
        "snapshot: format version {found}, this build reads version {expected} only; the partition is rebuilt from Kafka instead"
    )]
    OtherVersion {
        /// The snapshot's version byte.
        found: u8,
        /// The one this build writes and reads.
        expected: u8,
    },
    /// Written with another window layout (tiers, bounds, MOT or experience count).
    #[error(
        "snapshot: written with another window layout (fingerprint {found:016x}, expected {expected:016x})"
    )]
    OtherLayout {
        /// The snapshot's fingerprint.
        found: u64,
        /// This aggregator's.
        expected: u64,
    },
    /// Written with another caller stamp (e.g. another catalog).
    #[error("snapshot: stamp {found:016x} is not the expected {expected:016x}")]
    OtherStamp {
        /// The snapshot's stamp.
        found: u64,
        /// The one asked for.
        expected: u64,
    },
    /// A delta of another base than the one it was applied to.
    #[error("snapshot: a delta of base {found:016x} cannot apply to base {expected:016x}")]
    OtherBase {
        /// The delta's base.
        found: u64,
        /// The base it was applied to.
        expected: u64,
    },
    /// [`crate::Aggregator::apply_delta`] was given a whole snapshot, or a delta of another partition.
    #[error("snapshot: {0}")]
    NotADelta(&'static str),
    /// The bytes break the format.
    #[error("snapshot.{field}: {why} at byte {offset}")]
    Malformed {
        /// What was being read.
        field: &'static str,
        /// Byte offset in the input.
        offset: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// A decoded, validated snapshot of one partition, ready for
/// [`crate::Aggregator::restore_partition`].
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) d: Box<Decoded>,
}

impl Snapshot {
    /// The partition it is a snapshot of.
    pub fn partition(&self) -> PartitionId {
        self.d.partition
    }

    /// The next source offset to consume after it: every event before it is in the state.
    /// `None` if the writer was never told one.
    pub fn next_offset(&self) -> Option<i64> {
        self.d.next_offset
    }

    /// The base it is (a whole snapshot) or is a delta of.
    pub fn base(&self) -> u64 {
        self.d.base
    }

    /// Whether it is a delta (for [`crate::Aggregator::apply_delta`] onto its base) rather than whole.
    pub fn is_delta(&self) -> bool {
        self.d.delta.is_some()
    }

    /// The largest event time in it, ms; `None` if no event was applied.
    pub fn watermark_ms(&self) -> Option<i64> {
        (self.d.watermark != crate::partition::NO_WATERMARK).then_some(self.d.watermark)
    }
}

/// One detail bucket's values (tag, late/rejected counts, largest latency, non-zero latency
/// bins, reason and channel tallies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetailRaw {
    pub tag: u32,
    pub late: u32,
    pub future: u32,
    pub max_ms: u32,
    pub hist: Vec<(u16, u32)>,
    pub reasons: LabelRaw<1>,
    pub channels: LabelRaw<2>,
}

impl DetailRaw {
    pub fn is_zero(&self) -> bool {
        self.late == 0
            && self.future == 0
            && self.max_ms == 0
            && self.hist.is_empty()
            && self.reasons.is_zero()
            && self.channels.is_zero()
    }
}

/// A bucket's label tallies: `(label id, counters)` in slot order, then "other".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelRaw<const V: usize> {
    pub ids: Vec<(u16, [u32; V])>,
    pub other: [u32; V],
}

impl<const V: usize> LabelRaw<V> {
    fn is_zero(&self) -> bool {
        self.ids.is_empty() && self.other.iter().all(|&c| c == 0)
    }
}

/// One unidentified MOT's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnidentifiedRaw {
    pub id: Arc<str>,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub channel: Option<Arc<str>>,
}

/// One open journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JourneyRaw {
    pub last_seen_ms: i64,
    pub exp: u32,
    pub interactions: u32,
    pub mots_seen: u64,
    /// The MOT index where the journey stopped (its latest interaction in event time).
    pub last_mot: u32,
    pub reached_sco: bool,
    /// The journey's latest interaction failed (it counts as stalled).
    pub last_failed: bool,
}

/// One MOT's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MotRaw {
    pub idx: u32,
    pub touched: bool,
    /// The earliest event time counted (0: none).
    pub earliest_ms: i64,
    /// Per counter tier: tag, successes and failures.
    pub head: Vec<(u32, [u32; 2])>,
    pub ring: Option<MotRingRaw>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MotRingRaw {
    pub late_total: u64,
    pub future_total: u64,
    /// `(slot, tag, [successes, failures])`.
    pub counters: Vec<(usize, u32, [u32; 2])>,
    pub detail: Option<Vec<(usize, DetailRaw)>>,
    /// The journey funnel ring if allocated: `(slot, tag, [reached, abandoned here])`.
    pub funnel: Option<Vec<(usize, u32, [u32; 2])>>,
}

/// One experience's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpRaw {
    pub idx: u32,
    pub touched: bool,
    /// Per counter tier: tag and impact-weighted failures.
    pub head: Vec<(u32, u64)>,
    pub ring: Option<ExpRingRaw>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpRingRaw {
    /// `(slot, tag, [started, completed, abandoned], weighted failures)`.
    pub counters: Vec<(usize, u32, [u32; 3], u64)>,
    pub mps: Vec<MpsRaw>,
}

/// One MOTs-per-SCO bucket: `(slot, tag, largest count, non-zero bins)`.
pub(crate) type MpsRaw = (usize, u32, u32, Vec<(u8, u32)>);

/// Everything a snapshot holds, validated.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub partition: PartitionId,
    /// The base it is or is a delta of (0: an unnamed whole snapshot).
    pub base: u64,
    /// For a delta: the first and last times whose buckets (in every tier) it holds.
    pub delta: Option<(i64, i64)>,
    pub next_offset: Option<i64>,
    /// The time bucket positions are relative to and around which fresh rings are made.
    pub ref_ms: i64,
    pub watermark: i64,
    pub stats: [u64; 9],
    pub reasons: Vec<Arc<str>>,
    pub channels: Vec<Arc<str>>,
    pub unidentified: Vec<UnidentifiedRaw>,
    pub unidentified_overflow: u64,
    pub journeys: Vec<(u64, JourneyRaw)>,
    /// Per experience, the in-flight gauges as of the original's last expiry pass.
    pub in_flight: Vec<crate::journey::InFlight>,
    pub mots: Vec<MotRaw>,
    pub exps: Vec<ExpRaw>,
}

/// A hash of everything in the layout that decides what a snapshot's bytes mean.
pub(crate) fn fingerprint(shared: &crate::partition::Shared) -> u64 {
    let l = &shared.layout;
    let c = &l.config;
    let tiers = |t: &[crate::config::Tier]| {
        t.iter()
            .map(|t| format!("{}x{}", t.res_ms, t.cap))
            .collect::<Vec<_>>()
            .join(",")
    };
    let s = format!(
        "c[{}] d[{}] mots {} exps {} r {} ch {} u {} j {} lb {}",
        tiers(&l.counter),
        tiers(&l.detail),
        shared.topology.mot_count(),
        shared.topology.experience_count(),
        c.max_reasons_per_partition,
        c.max_channels_per_partition,
        c.max_unidentified_per_partition,
        c.max_journeys_per_partition,
        c.max_label_bytes,
    );
    crate::hash::hash_str(&s, u64::from(VERSION))
}

/// The bucket index `d` buckets from `ref_index`, given as a signed offset of tags modulo
/// 2^31 (what the encoder writes): tags are the low 31 bits of the index.
pub(crate) fn signed_tag_offset(tag: u32, ref_tag: u32) -> i64 {
    let d = i64::from(tag.wrapping_sub(ref_tag) & 0x7FFF_FFFF);
    if d >= 1 << 30 { d - (1 << 31) } else { d }
}
