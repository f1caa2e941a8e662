//! Kafka ingest: consumes interaction events as a consumer group, decodes, validates and
//! classifies them, hands each to a [`Sink`] (the aggregator), sends rejects to a dead-letter
//! topic, and commits offsets only after what they cover is applied and every reject among
//! them is acknowledged by the dead-letter topic.
//!
//! State is rebuilt from the log, never trusted from commits: on assignment a partition is
//! replayed from `offsets_for_times(now - lookback)` up to its committed offset before it goes
//! live, so a crash, restart or rebalance neither loses nor double-counts an interaction.
//! Applying is idempotent by offset, so seeking back (to retry a failed dead-letter write)
//! re-applies nothing.
//!
//! Everything here runs on one dedicated OS thread (rdkafka's `BaseConsumer` and its
//! rebalance callbacks); nothing awaits.

mod config;
mod consumer;
mod context;
mod dedup;
mod dlq;
mod follow;
mod group;
mod health;
mod lifecycle;
mod metrics;
mod partition;
mod quiet;
mod sink;
mod state_admin;
mod state_topic;

pub use config::{IngestConfig, IngestError};
pub use consumer::run;
pub use follow::follow_state;
pub use health::{GroupReport, Health, HealthReport, PartitionReport};
pub use lifecycle::STOP_WITHIN;
pub use metrics::register as register_metrics;
pub use quiet::{QuietContext, QuietLog};
pub use sink::{Apply, PartitionKey, Sink, SnapshotKind};
pub use state_admin::ensure_compacted_topic;
pub use state_topic::state_topic_name;

/// A librdkafka configuration for `brokers`: motstream's own settings for this client first,
/// then the user's `extra` properties, which override them.
pub fn kafka_config(
    brokers: &str,
    own: &[(&str, &str)],
    extra: &std::collections::BTreeMap<String, String>,
) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in own {
        c.set(*k, *v);
    }
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

/// Parses a librdkafka property given as `KEY=VALUE` (the `--kafka-property` flags).
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Headers added to every dead-letter message, beside the original ones.
pub mod dlq_headers {
    /// The human reason, naming the field (`event.mot_id: missing`).
    pub const REASON: &str = "motstream-reason";
    /// The stable reason code (`missing_field`).
    pub const REASON_CODE: &str = "motstream-reason-code";
    pub const SOURCE_TOPIC: &str = "motstream-source-topic";
    pub const SOURCE_PARTITION: &str = "motstream-source-partition";
    pub const SOURCE_OFFSET: &str = "motstream-source-offset";
}
