//! The alerts topic: every fired or resolved transition as JSON, keyed by alert id (so one
//! alert's transitions stay in order on one partition), and the replay that refills the
//! history after a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use motstream_ingest::QuietContext;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::alert_feed::AlertTransition;

/// A producer for the alerts topic: idempotent, so librdkafka's retries never duplicate or
/// reorder a transition.
pub fn producer(
    brokers: &str,
    extra: &BTreeMap<String, String>,
) -> anyhow::Result<FutureProducer<QuietContext>> {
    motstream_ingest::kafka_config(
        brokers,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "0"),
            ("message.timeout.ms", "30000"),
        ],
        extra,
    )
    .create_with_context(QuietContext::new("alerts-topic producer"))
    .map_err(|e| anyhow::anyhow!("creating the alerts-topic producer: {e}"))
}

/// Produces every queued transition until the queue closes, in order.
pub async fn run(
    producer: FutureProducer<QuietContext>,
    topic: String,
    mut rx: mpsc::Receiver<Arc<AlertTransition>>,
) {
    while let Some(o) = rx.recv().await {
        let payload = match serde_json::to_vec(&*o) {
            Ok(p) => p,
            Err(e) => {
                warn!(alert = %o.alert_id, error = %e, "alerts topic: payload not encodable");
                continue;
            }
        };
        let rec = FutureRecord::to(&topic).key(&o.alert_id).payload(&payload);
        // librdkafka retries until message.timeout.ms; waiting here keeps the order.
        match producer.send(rec, Duration::from_secs(5)).await {
            Ok(_) => {
                info!(alert = %o.alert_id, state = %o.state, %topic, "alert transition produced")
            }
            Err((e, _)) => {
                warn!(alert = %o.alert_id, state = %o.state, %topic, error = %e, "alert transition not produced")
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(5))
    })
    .await;
}

/// Reads the alerts topic from the start to its current end (at most `timeout`) and returns
/// the newest `cap` transitions, oldest first. Blocking: call from a blocking task.
pub fn replay(
    brokers: &str,
    extra: &BTreeMap<String, String>,
    topic: &str,
    cap: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<AlertTransition>> {
    let consumer: BaseConsumer = motstream_ingest::kafka_config(
        brokers,
        &[
            ("group.id", "motstream-alert-replay"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
        ],
        extra,
    )
    .create()
    .map_err(|e| anyhow::anyhow!("creating the alerts-topic reader: {e}"))?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| anyhow::anyhow!("alerts topic {topic}: metadata: {e}"))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        let (lo, hi) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| anyhow::anyhow!("alerts topic {topic}[{p}]: watermarks: {e}"))?;
        if hi > lo {
            ends.insert(p, hi);
            tpl.add_partition_offset(topic, p, Offset::Offset(lo))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| anyhow::anyhow!("alerts topic {topic}: assign: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut bad = 0u64;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(r) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = r.map_err(|e| anyhow::anyhow!("alerts topic {topic}: {e}"))?;
        match m.payload().map(serde_json::from_slice::<AlertTransition>) {
            Some(Ok(o)) => out.push(o),
            _ => bad += 1,
        }
        if ends
            .get(&m.partition())
            .is_some_and(|&hi| m.offset() + 1 >= hi)
        {
            ends.remove(&m.partition());
        }
    }
    if !ends.is_empty() {
        warn!(%topic, "alert history replay timed out; the history is partial");
    }
    // Leave the partitions before the consumer closes, so closing has nothing to wait for.
    let _ = consumer.unassign();
    drop(consumer);
    out.sort_by_key(|o| o.at_ms);
    if out.len() > cap {
        out.drain(..out.len() - cap);
    }
    info!(%topic, transitions = out.len(), unreadable = bad, "alert history replayed");
    Ok(out)
}
