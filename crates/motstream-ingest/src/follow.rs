//! The follower: reads every partition of the state topics, from the beginning and then as
//! snapshots are published, and hands each one to the sink, so that an instance holds a
//! copy of the partitions it does not own and answers for the whole deployment. Not a group
//! member (it assigns the partitions by hand and commits nothing): every instance reads
//! everything. Runs on its own thread until `shutdown`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::sink::Sink;
use crate::state_topic::{MAX_RECORD_BYTES, parse_record_key, state_topic_name};

/// Follows the state topics of `topics` until `shutdown` is set. Waits for them to exist
/// (ingest creates them). `kafka` carries the brokers and user properties.
pub fn follow_state(
    brokers: &str,
    kafka: &std::collections::BTreeMap<String, String>,
    topics: &[String],
    sink: Arc<dyn Sink>,
    shutdown: Arc<AtomicBool>,
) {
    let mut cc = crate::kafka_config(brokers, &[], kafka);
    cc.set("group.id", crate::state_topic::reader_group())
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", (MAX_RECORD_BYTES * 2).to_string())
        .set(
            "max.partition.fetch.bytes",
            (MAX_RECORD_BYTES + 4096).to_string(),
        )
        .set(
            "receive.message.max.bytes",
            (MAX_RECORD_BYTES * 2 + 65536).to_string(),
        );
    let consumer: BaseConsumer<crate::QuietContext> =
        match cc.create_with_context(crate::QuietContext::new("state follower")) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "creating the state follower failed: no global view");
                return;
            }
        };
    let names: Vec<String> = topics.iter().map(|t| state_topic_name(t)).collect();
    let stopped = || shutdown.load(Ordering::Acquire);
    // Wait for every state topic's metadata, then read all their partitions from the start.
    let tpl = loop {
        if stopped() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let mut all = true;
        for (i, n) in names.iter().enumerate() {
            match consumer.fetch_metadata(Some(n), Duration::from_secs(5)) {
                Ok(md) => match md.topics().iter().find(|t| t.name() == n) {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        for p in t.partitions() {
                            let _ = tpl.add_partition_offset(n, p.id(), Offset::Beginning);
                        }
                        if let (Ok(ti), Some(src)) = (u16::try_from(i), topics.get(i)) {
                            sink.following(ti, src, t.partitions().len() as i32);
                        }
                    }
                    _ => all = false,
                },
                Err(_) => all = false,
            }
        }
        if all {
            break tpl;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if let Err(e) = consumer.assign(&tpl) {
        warn!(error = %e, "assigning the state topics failed: no global view");
        return;
    }
    info!(topics = ?names, partitions = tpl.count(), "following the state topics");
    while !stopped() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                let Some(topic) = names.iter().position(|n| n == msg.topic()) else {
                    continue;
                };
                let (Some(key), Some(payload)) = (msg.key(), msg.payload()) else {
                    continue;
                };
                let Some(part) = parse_record_key(key) else {
                    continue;
                };
                if usize::from(part.topic) != topic {
                    continue;
                }
                let at = msg.timestamp().to_millis().unwrap_or(0);
                sink.follow(part, payload, at);
            }
            Some(Err(e)) => consumer
                .context()
                .0
                .warn("reading the state topics failed", &e),
            None => {}
        }
    }
}
