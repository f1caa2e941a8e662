//! The consumer's life: created and subscribed with motstream's settings, closed within a
//! bound, and replaced when librdkafka leaves it stuck outside the group.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{info, warn};

use crate::config::{IngestConfig, IngestError};
use crate::context::IngestContext;
use crate::dlq::Dlq;
use crate::group::STATS_INTERVAL;
use crate::health::Health;
use crate::kafka_config;
use crate::sink::Sink;
use crate::state_topic::StateTopic;

/// Longest wait for dead-letter writes at shutdown (none while the broker is away).
pub(crate) const FLUSH_WITHIN: Duration = Duration::from_secs(2);
/// Longest wait for the group to take the partitions back at shutdown.
pub(crate) const REVOKE_WITHIN: Duration = Duration::from_secs(3);
/// Longest wait for librdkafka to close the consumer (leave the group) at shutdown.
pub(crate) const CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// Longest wait for the dead-letter and state-topic producers to be destroyed at shutdown
/// (each purges what is left and flushes for at most 500 ms first).
pub(crate) const PRODUCERS_CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// Longest wait for a wedged consumer to close before it is abandoned.
const REPLACE_CLOSE_WITHIN: Duration = Duration::from_secs(3);
/// Ingest returns this long after shutdown is asked for, at most, unless a rebalance callback
/// is blocked in a broker request: the last batch, [`FLUSH_WITHIN`], the final commit,
/// [`REVOKE_WITHIN`], [`CLOSE_WITHIN`] and [`PRODUCERS_CLOSE_WITHIN`].
pub const STOP_WITHIN: Duration = Duration::from_secs(8);

/// Creates the consumer with motstream's settings (the user's `cfg.kafka` override them) and
/// subscribes it.
pub(crate) fn connect(
    cfg: &IngestConfig,
    sink: &Arc<dyn Sink>,
    health: &Arc<Health>,
    dlq: &Arc<Dlq>,
    state: &Option<Arc<StateTopic>>,
    shutdown: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<BaseConsumer<IngestContext>, IngestError> {
    let ctx = IngestContext {
        state: state.clone(),
        topics: cfg.topics.clone(),
        parts: Default::default(),
        sink: Arc::clone(sink),
        health: Arc::clone(health),
        dlq: Arc::clone(dlq),
        lookback_ms: i64::try_from(cfg.lookback.as_millis()).unwrap_or(i64::MAX),
        request_timeout: Duration::from_secs(10),
        dedup: cfg.dedup_window.map(|w| {
            (
                i64::try_from(w.as_millis()).unwrap_or(i64::MAX),
                cfg.dedup_capacity,
            )
        }),
        touched: Default::default(),
        rebalances: Default::default(),
        quiet: crate::quiet::QuietLog::new("ingest consumer"),
        shutdown: Arc::clone(shutdown),
    };
    let stats_ms = STATS_INTERVAL.as_millis().to_string();
    let cc = kafka_config(
        &cfg.brokers,
        &[
            ("group.id", &cfg.group_id),
            // Incremental rebalancing: a membership change moves only the partitions that
            // change owner; the others keep their windows and stay live (the eager default
            // revoked every partition on every instance and rebuilt them all from the log).
            ("partition.assignment.strategy", "cooperative-sticky"),
            // Offsets are committed by hand, after the events they cover are applied.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // The broker's minimum by default. After an outage longer than the session,
            // librdkafka rejoins under a new member id and the broker holds the rebalance until
            // the old id's session expires, counted from when it loads the group: with 10 s the
            // instances were ready 11-15 s after the broker's return (tests/ingest_outage_group.rs
            // on a loaded machine), too close to the 15 s asked. A shorter session also hands a
            // dead instance's partitions over sooner. The heartbeat runs on librdkafka's own thread, so a busy ingest loop
            // does not miss it (max.poll.interval.ms guards the loop).
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
            // Readiness and the wedge check read the group and broker states from these
            // reports (see `group.rs`); the per-partition lag metric too.
            ("statistics.interval.ms", &stats_ms),
            // After an outage librdkafka retries a broker with exponential backoff, by default
            // up to 10 s apart: ingest could sit out 10 s of a broker that is back. One
            // connection attempt a second is cheap.
            ("reconnect.backoff.max.ms", "1000"),
            // When the prefetch queue is full (queued.max.messages.kbytes), librdkafka
            // postpones the partition's next fetch by this long (default 1 s). Catching up on
            // a backlog, ingest drains a full queue well within a second and then sat idle for
            // the rest of it: the e2e catch-up ran at ~165,000 events/s with the machine 80%
            // idle.
            ("fetch.queue.backoff.ms", "10"),
        ],
        &cfg.kafka,
    );
    let consumer: BaseConsumer<IngestContext> =
        cc.create_with_context(ctx)
            .map_err(|source| IngestError::Client {
                what: "consumer",
                source,
            })?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| IngestError::Subscribe {
            topics: cfg.topics.clone(),
            source,
        })?;
    Ok(consumer)
}

/// Closes the consumer (revoking what it still holds and leaving the group), waiting at most
/// `within`. The close is the consumer's `Drop`, which polls until librdkafka says it is
/// closed; a wedged consumer never is: see [`close_within`].
pub(crate) fn close(consumer: BaseConsumer<IngestContext>, within: Duration) {
    close_within(consumer, "ingest consumer", within);
}

/// Drops a Kafka client (or anything holding one) on a thread of its own, waiting at most
/// `within`; past it the thread is abandoned, to finish on its own or to end with the
/// process, and one line says so.
///
/// A librdkafka client's drop can wait on the broker for as long as it is away: a consumer in
/// a group polls until it has left it (a wedged one never has), and destroying any client
/// joins its internal threads. Neither a shutdown nor a replacement may wait on that past its
/// own bound.
pub(crate) fn close_within<T: Send + 'static>(client: T, what: &'static str, within: Duration) {
    let (hand, handed) = std::sync::mpsc::channel::<T>();
    let (done, closed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("ingest-close".into())
        .spawn(move || {
            if let Ok(client) = handed.recv() {
                drop(client);
                let _ = done.send(());
            }
        });
    // Handed over only once the thread runs: a failed spawn would otherwise drop the client
    // here, in the wait this avoids.
    if let Err(e) = spawned {
        warn!(client = what, error = %e, "no thread to close a Kafka client on; it is leaked");
        std::mem::forget(client);
        return;
    }
    // The thread waits on `handed` until this arrives, so the send cannot fail.
    let _ = hand.send(client);
    if closed.recv_timeout(within).is_err() {
        warn!(
            client = what,
            ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX),
            "a Kafka client did not close in time; it is left closing on its own thread"
        );
    }
}

/// Replaces a wedged consumer: its partitions' state is dropped (no commit: the group has
/// moved on without it) and it is closed; the caller creates the next one.
pub(crate) fn replace(consumer: BaseConsumer<IngestContext>, health: &Health, why: &str) {
    warn!(
        why,
        "the consumer is stuck outside its group; recreating it"
    );
    let ctx = consumer.context();
    ctx.drop_all("consumer recreated");
    // Acks of dead letters sent for the dropped partitions: their offsets are re-read and
    // re-sent by whoever owns the partitions next.
    drop(ctx.dlq.drain());
    health.consumer_restarted();
    close(consumer, REPLACE_CLOSE_WITHIN);
    info!("old consumer closed or abandoned; joining the group afresh");
}
