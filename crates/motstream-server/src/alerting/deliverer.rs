//! Which instance delivers notifications. Every instance evaluates the rules on the global view
//! (the state topic's followed partitions included), so every instance would fire the same
//! alert; exactly one of them hands transitions to the receivers. Kafka's group protocol picks
//! it: the instances join the group `<group>.alert-deliverer` on a one-partition topic of the
//! same name, and the member assigned that partition delivers. No consensus of our own.
//!
//! The same topic (compacted, keyed by alert id) is the record of what was delivered: the
//! deliverer writes every transition it hands over, and an instance taking over reads it back
//! to adopt the firing alerts its predecessor sent (same alert ids), resolve those whose
//! condition has cleared, and send only what was never sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use motstream_ingest::{QuietContext, QuietLog};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use tracing::{info, warn};

use crate::alert_feed::AlertTransition;

/// The coordination topic (and group) of a deployment whose ingest group is `group`.
pub fn topic_name(group: &str) -> String {
    format!("{group}.alert-deliverer")
}

/// How one instance learns whether it delivers.
#[derive(Debug)]
pub enum Election {
    /// One instance by construction (the embedded default): always the deliverer.
    Alone,
    /// Decided by the group; see [`Elected`].
    Group(Elected),
}

impl Election {
    pub fn is_deliverer(&self) -> bool {
        match self {
            Self::Alone => true,
            Self::Group(e) => e.leader.load(Ordering::Acquire),
        }
    }
}

/// The election's consumer thread and the delivered-transitions record.
pub struct Elected {
    leader: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    producer: ThreadedProducer<QuietContext>,
    topic: String,
    brokers: String,
    kafka: BTreeMap<String, String>,
}

impl std::fmt::Debug for Elected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elected")
            .field("topic", &self.topic)
            .field("leader", &self.leader.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct ElectionContext {
    topic: String,
    leader: Arc<AtomicBool>,
    log: QuietLog,
}

motstream_ingest::quiet_client_context!(ElectionContext, log);

impl ConsumerContext for ElectionContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Cooperative assignment: `Assign` lists what was added, `Revoke` what was taken away
        // (also when the assignment was lost after a session timeout).
        let ours = |tpl: &rdkafka::TopicPartitionList| {
            tpl.elements().iter().any(|e| e.topic() == self.topic)
        };
        match rebalance {
            Rebalance::Assign(tpl) if ours(tpl) => {
                // Release pairs with the engine's Acquire load.
                self.leader.store(true, Ordering::Release);
                info!(topic = %self.topic, "this instance now delivers alert notifications");
            }
            Rebalance::Revoke(tpl) if ours(tpl) => {
                self.leader.store(false, Ordering::Release);
                info!(topic = %self.topic, "this instance no longer delivers alert notifications");
            }
            Rebalance::Error(e) => {
                warn!(error = %e, "alert-deliverer election: rebalance error");
            }
            _ => {}
        }
    }
}

impl Elected {
    /// Creates the coordination topic if absent (one partition, compacted), joins its group
    /// and starts polling on a thread of its own.
    pub async fn start(
        brokers: &str,
        group: &str,
        kafka: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let topic = topic_name(group);
        ensure_topic(brokers, kafka, &topic).await?;
        let leader = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<ElectionContext> = motstream_ingest::kafka_config(
            brokers,
            &[
                ("group.id", &topic),
                // Sticky: a joining instance does not take the partition from the deliverer.
                ("partition.assignment.strategy", "cooperative-sticky"),
                ("enable.auto.commit", "false"),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("reconnect.backoff.max.ms", "1000"),
            ],
            kafka,
        )
        .create_with_context(ElectionContext {
            topic: topic.clone(),
            leader: Arc::clone(&leader),
            log: QuietLog::new("alert-deliverer election"),
        })
        .map_err(|e| anyhow::anyhow!("alert-deliverer election consumer: {e}"))?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| anyhow::anyhow!("alert-deliverer election: subscribe {topic}: {e}"))?;
        let producer: ThreadedProducer<QuietContext> =
            motstream_ingest::kafka_config(brokers, &[("linger.ms", "0")], kafka)
                .create_with_context(QuietContext::new("alert-deliverer record producer"))
                .map_err(|e| anyhow::anyhow!("alert-deliverer record producer: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, leader) = (Arc::clone(&stop), Arc::clone(&leader));
            std::thread::Builder::new()
                .name("alert-election".into())
                .spawn(move || {
                    // Acquire pairs with the Release store in `stop`.
                    while !stop.load(Ordering::Acquire) {
                        // The group's messages are never read here: polling serves the
                        // rebalance callbacks and keeps the membership alive.
                        if let Some(Err(e)) = consumer.poll(Duration::from_millis(200)) {
                            consumer.context().log.warn("alert-deliverer election", &e);
                        }
                    }
                    leader.store(false, Ordering::Release);
                    // Leave the group so that another instance takes over now, not after the
                    // session timeout.
                    consumer.unsubscribe();
                    for _ in 0..10 {
                        let _ = consumer.poll(Duration::from_millis(100));
                    }
                })?
        };
        info!(%topic, "alert-deliverer election joined");
        Ok(Self {
            leader,
            stop,
            thread: Some(thread),
            producer,
            topic,
            brokers: brokers.to_owned(),
            kafka: kafka.clone(),
        })
    }

    /// Records a transition handed to the receivers, keyed by its alert id.
    pub fn record(&self, t: &AlertTransition) {
        let Ok(payload) = serde_json::to_vec(t) else {
            return;
        };
        let rec = BaseRecord::to(&self.topic)
            .key(&t.alert_id)
            .payload(&payload)
            .partition(0);
        if let Err((e, _)) = self.producer.send(rec) {
            warn!(alert = %t.alert_id, error = %e, "alert-deliverer record not written: a successor may send this transition again");
        }
    }

    /// The last delivered transition of every alert, by id. Blocking (reads the record to its
    /// end, at most 10 s).
    pub fn delivered(&self) -> anyhow::Result<BTreeMap<String, AlertTransition>> {
        // What this instance wrote itself must be readable before the read below.
        let _ = self.producer.flush(Duration::from_secs(5));
        let list = super::kafka::replay(
            &self.brokers,
            &self.kafka,
            &self.topic,
            usize::MAX,
            Duration::from_secs(10),
        )?;
        let mut last = BTreeMap::new();
        for t in list {
            last.insert(t.alert_id.clone(), t);
        }
        Ok(last)
    }

    /// Leaves the group (another instance takes over at once) and flushes the record.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

impl Drop for Elected {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The coordination topic: one partition, compacted, the broker's replication factor.
/// Bounded: the service's start waits for this, and a broker that does not answer a creation
/// (librdkafka's mock cluster, a missing ACL) must not hold it for long.
async fn ensure_topic(
    brokers: &str,
    kafka: &BTreeMap<String, String>,
    topic: &str,
) -> anyhow::Result<()> {
    let base = motstream_ingest::kafka_config(brokers, &[], kafka);
    let name = topic.to_owned();
    let create = tokio::task::spawn_blocking(move || {
        motstream_ingest::ensure_compacted_topic(&base, &name, 1, -1, &[], Duration::from_secs(10))
    });
    tokio::time::timeout(Duration::from_secs(15), create)
        .await
        .map_err(|_| anyhow::anyhow!("creating {topic}: no answer within 15 s"))??
        .map_err(|e| anyhow::anyhow!("creating {topic}: {e}"))?;
    Ok(())
}
