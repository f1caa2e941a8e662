//! Rolling event-time windows, the per-partition aggregator, the journey tracker and the
//! status views of motstream.
//!
//! **Owns:** per Kafka partition, per MOT, multi-resolution rings of success/failure counts
//! (default 1 s for 10 min, 1 min for 6 h, 10 min for 3 days) and coarser rings of latency
//! histograms, failure reasons, channels and late/rejected counts; per experience, journey
//! counts (started, completed at SCO, abandoned) and the MOTs-per-SCO distribution; the
//! bounded table of unidentified MOTs; and the one function that turns these into status
//! views ([`Aggregator::status_mot`], [`Aggregator::status_experience`],
//! [`Aggregator::status_all`]).
//!
//! **Must never:** do I/O, spawn threads or tasks, read a clock (time comes in as `now_ms`
//! and event times), print, allocate per event in the steady state, take a lock shared by
//! partitions on the hot path, or depend on other motstream crates (the binary maps the
//! catalog to [`Topology`] and decoded events to [`Observation`]).
//!
//! Wiring, per partition assignment:
//! ```
//! use motstream_window::*;
//! let topo = Topology::new(
//!     vec![MotSpec { experience: ExpIdx(0), target: 0.98, impact_weight: 1.0 }],
//!     vec![ExperienceSpec { sco: MotIdx(0), journey_timeout_ms: None }],
//! )?;
//! let agg = Aggregator::new(topo, WindowConfig::default())?;
//! let now = 1_700_000_000_000;
//! let part = agg.begin_rebuild(PartitionId(3)); // or agg.partition(..) when not replaying
//! {
//!     let mut w = part.writer(); // once per batch
//!     let obs = Observation {
//!         mot: MotKey::Known(MotIdx(0)), event_time_ms: now - 5, success: true,
//!         duration_ms: Some(120), failure_reason: None, channel: Some("kiosk"),
//!         journey_id: Some("j-1"),
//!     };
//!     assert_eq!(w.apply(&obs, now), Applied::Applied);
//!     w.expire_journeys(now);
//! }
//! agg.finish_rebuild(PartitionId(3));
//! let s = agg.status_mot(MotIdx(0), 5 * 60_000, now)?;
//! assert_eq!((s.amount, s.smoto_rate), (1, Some(1.0)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod aggregator;
mod bucket;
mod bulk;
mod cache;
mod config;
mod error;
mod hash;
mod head;
mod histogram;
mod journey;
mod labels;
mod live;
mod observation;
mod partition;
mod plan;
mod ring;
mod series;
mod snapshot;
mod state;
mod status;
mod topology;
mod unidentified;
mod writer;

pub use aggregate::{Counts, ExperienceAggregate, MotAggregate};
pub use aggregator::{Aggregator, DroppedPartition, WarmingReport};
pub use bulk::{BulkCounts, CountsReader};
pub use cache::CountsCache;
pub use config::{StatusOptions, TierSpec, WindowConfig};
pub use error::{ConfigError, QueryError};
pub use histogram::{
    CountHistogram, LATENCY_BINS, LATENCY_OVERFLOW_MS, LatencyHistogram, MPS_BINS,
};
pub use journey::{ExpireReport, JourneyView};
pub use labels::LABEL_SLOTS;
pub use live::{DURATION_BOUNDS_MS, LiveExperienceCounts, LiveMotCounts, LiveSnapshot, MPS_BOUNDS};
pub use observation::{Applied, MotKey, Observation};
pub use partition::{PartitionId, PartitionState, PartitionStats};
pub use plan::{Span, WindowPlan};
pub use series::{MotSeries, SeriesPoint};
pub use snapshot::{Snapshot, SnapshotError};
pub use status::{
    ChannelStatus, ExperienceStatus, FunnelStep, LatencySummary, MotStatus, ReasonCount, Trend,
    TrendDirection,
};
pub use topology::{ExpIdx, ExperienceSpec, MotIdx, MotSpec, Topology};
pub use unidentified::{UnidentifiedMot, UnidentifiedReport};
pub use writer::PartitionWriter;
