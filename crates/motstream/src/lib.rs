//! The motstream service and command-line tool: everything with I/O (files, Kafka, servers)
//! lives here or in the crates it wires together; the domain logic does not.

pub mod alert_feed;
pub mod alerting;
pub mod catalog_cmd;
pub mod cli;
pub mod client;
pub mod config;
pub mod embedded;
pub mod exporter;
pub mod grpc;
pub mod http;
pub mod loadgen;
pub mod logging;
pub mod produce;
pub mod replicas;
pub mod run;
pub mod snapshots;
pub mod state;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
