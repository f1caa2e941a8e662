//! Simulated traffic into Kafka: the one producer loop behind the embedded default,
//! `motstream loadgen` and the e2e bench, and the catalog and scenario files they start from.
//!
//! Owns no service state: it produces, it never consumes or aggregates.

pub mod files;
pub mod loadgen;
pub mod produce;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
