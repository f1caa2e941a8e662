//! Creates a state topic when absent: compacted, with as many partitions as its source topic
//! and the replication factor of the source's first partition.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::info;

use crate::state_topic::MAX_RECORD_BYTES;

/// Wakes the thread that blocks on a future.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives one admin future on the calling thread: rdkafka's admin futures are completed by
/// its own background thread, so a park/unpark loop is all they need (no async runtime in
/// the ingest crate).
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Partitions and replication factor of `topic`, if it exists.
fn describe(
    c: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Option<(i32, i32)>, KafkaError> {
    let md = c.fetch_metadata(Some(topic), timeout)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| {
            let rf = t
                .partitions()
                .first()
                .map_or(1, |p| p.replicas().len() as i32);
            (t.partitions().len() as i32, rf.max(1))
        }))
}

/// Makes sure `state` exists; returns its partition count.
pub(crate) fn ensure(
    base: &ClientConfig,
    source: &str,
    state: &str,
    timeout: Duration,
) -> Result<i32, KafkaError> {
    let mut cc = base.clone();
    cc.remove("group.id");
    let probe: BaseConsumer = cc.create()?;
    if let Some((n, _)) = describe(&probe, state, timeout)? {
        return Ok(n);
    }
    let (partitions, rf) = describe(&probe, source, timeout)?.unwrap_or((1, 1));
    let max_bytes = MAX_RECORD_BYTES.to_string();
    create_compacted(
        base,
        &probe,
        state,
        partitions,
        rf,
        &[
            ("max.message.bytes", &max_bytes),
            // Roll and clean often: only the latest snapshot per key matters, and a restore
            // reads the partition's tail, so old versions should not linger for days.
            ("segment.ms", "600000"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ],
        timeout,
    )
}

/// Makes sure the compacted topic `name` exists, creating it with `partitions`, replication
/// `rf` (-1: the broker's default) and `configs` if absent; returns its partition count.
/// Blocking, each broker request bounded by `timeout`.
pub fn ensure_compacted_topic(
    base: &ClientConfig,
    name: &str,
    partitions: i32,
    rf: i32,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<i32, KafkaError> {
    let mut cc = base.clone();
    cc.remove("group.id");
    let probe: BaseConsumer = cc.create()?;
    if let Some((n, _)) = describe(&probe, name, timeout)? {
        return Ok(n);
    }
    create_compacted(base, &probe, name, partitions, rf, configs, timeout)
}

/// Creates the compacted topic `name` that `probe` found absent (another instance may create
/// it meanwhile) and returns its partition count as the broker then describes it.
fn create_compacted(
    base: &ClientConfig,
    probe: &BaseConsumer,
    name: &str,
    partitions: i32,
    rf: i32,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<i32, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base.create()?;
    let topic = configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(rf))
            .set("cleanup.policy", "compact"),
        |t, (k, v)| t.set(k, v),
    );
    let results = block_on(admin.create_topics(
        [&topic],
        &AdminOptions::new().request_timeout(Some(timeout)),
    ))?;
    for r in results {
        match r {
            Ok(_) => info!(
                topic = name,
                partitions,
                replication = rf,
                "compacted topic created"
            ),
            // Another instance created it meanwhile.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                tracing::warn!(topic = t, error = %code, "creating a compacted topic failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(describe(probe, name, timeout)?.map_or(partitions, |(n, _)| n))
}
