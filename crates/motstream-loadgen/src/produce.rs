//! Simulated journeys into Kafka: the producer loop behind the embedded default, and the
//! send-with-backpressure step it shares with `motstream loadgen` and the benches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use motstream_core::Encoding;
use motstream_core::codec::{CONTENT_TYPE_HEADER, encode_into};
use motstream_sim::{SimEvent, Simulator};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

/// Delivery outcomes, counted by librdkafka's delivery callbacks.
#[derive(Debug, Default)]
pub struct Deliveries {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// The last delivery error, for the progress line.
    pub last_error: std::sync::Mutex<Option<String>>,
}

/// Counts each delivery report.
#[derive(Debug, Default, Clone)]
pub struct Counting(pub Arc<Deliveries>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            // Relaxed: counters read for progress reports only.
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.0.failed(e),
        }
    }
}

impl Deliveries {
    /// Counts an event that will not reach the topic.
    fn failed(&self, e: &KafkaError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e.to_string());
        }
        // Relaxed: read for progress reports only.
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands `rec` to the producer, waiting `backoff` at a time while librdkafka's local queue is
/// full (its thread drains it). Any other error is the record's own (too large, unknown
/// topic, ...) and is returned: retrying it would spin for ever.
pub fn send_when_room<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    mut rec: BaseRecord<'_, str, [u8], C::DeliveryOpaque>,
    backoff: Duration,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                std::thread::sleep(backoff);
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// A producer suited to a steady stream of small events.
pub fn producer(
    brokers: &str,
    extra: &std::collections::BTreeMap<String, String>,
) -> Result<ThreadedProducer<Counting>, KafkaError> {
    motstream_ingest::kafka_config(
        brokers,
        &[
            ("linger.ms", "5"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("queue.buffering.max.messages", "1000000"),
        ],
        extra,
    )
    .create_with_context(Counting::default())
}

/// Where the loop stops.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub until: Option<Instant>,
    pub count: Option<u64>,
}

/// Runs the simulator in real time and produces every event it emits, keyed by journey id
/// with a `content-type` header, until `stop`, the deadline or the count. Returns how many
/// were handed to the producer (one it refused counts as a failed delivery). `sent` is
/// updated as it goes, for progress reports.
pub fn run(
    sim: &mut Simulator,
    producer: &ThreadedProducer<Counting>,
    topic: &str,
    encoding: Encoding,
    limit: Limit,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> u64 {
    let mut buf: Vec<SimEvent> = Vec::new();
    // librdkafka copies the payload, so one buffer serves every event.
    let mut payload = Vec::new();
    let mut n: u64 = 0;
    let content_type = encoding.content_type();
    // Acquire pairs with the Release store of whoever asks the loop to stop.
    while !stop.load(Ordering::Acquire) && limit.until.is_none_or(|t| Instant::now() < t) {
        sim.advance(crate::now_ms(), &mut buf);
        for ev in buf.drain(..) {
            if limit.count.is_some_and(|c| n >= c) {
                return n;
            }
            payload.clear();
            encode_into(&ev.event, encoding, &mut payload);
            let rec = BaseRecord::to(topic)
                .key(ev.key.as_str())
                .payload(payload.as_slice())
                .headers(OwnedHeaders::new().insert(Header {
                    key: CONTENT_TYPE_HEADER,
                    value: Some(content_type),
                }));
            if let Err(e) = send_when_room(producer, rec, Duration::from_millis(1)) {
                producer.context().0.failed(&e);
            }
            n += 1;
            // Relaxed: a progress counter.
            sent.store(n, Ordering::Relaxed);
        }
        if limit.count.is_some_and(|c| n >= c) {
            return n;
        }
        let wait = sim
            .next_due_ms()
            .map_or(5, |due| (due - crate::now_ms()).clamp(0, 5));
        std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(5)));
    }
    n
}

/// Waits for every handed-over event to be acknowledged (or fail), up to `timeout`.
pub fn flush(producer: &ThreadedProducer<Counting>, timeout: Duration) -> Result<(), KafkaError> {
    producer.flush(timeout)
}
