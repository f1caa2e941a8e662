//! What ingest is configured with, and why it can fail to start or run.

use std::collections::BTreeMap;
use std::time::Duration;

use motstream_core::Limits;
use rdkafka::error::KafkaError;
use thiserror::Error;

/// What ingest needs to know.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub brokers: String,
    pub group_id: String,
    pub topics: Vec<String>,
    pub dlq_topic: String,
    /// librdkafka properties, applied last (they override motstream's own settings).
    pub kafka: BTreeMap<String, String>,
    /// How far back a newly assigned partition is replayed: retention plus allowed lateness.
    pub lookback: Duration,
    pub limits: Limits,
    /// Most messages applied between two commits (default 5,000).
    pub batch_max: usize,
    /// Drop events whose id was seen in the same partition within this much event time;
    /// `None`: off. Remembers at most `dedup_capacity` ids per partition.
    pub dedup_window: Option<Duration>,
    pub dedup_capacity: usize,
    /// Publish each partition's window snapshot to `<topic>.state` (compacted, created if
    /// absent) and restore assigned partitions from it instead of replaying the retention.
    pub state_topic: bool,
}

/// Why ingest could not start or had to stop.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("creating the Kafka {what}: {source}")]
    Client {
        what: &'static str,
        source: KafkaError,
    },
    #[error("subscribing to {topics:?}: {source}")]
    Subscribe {
        topics: Vec<String>,
        source: KafkaError,
    },
}
