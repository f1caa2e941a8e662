//! Helpers for integration tests against the real Kafka broker that `scripts/kafka up` starts.
//! `scripts/test` exports its address as `MOTSTREAM_TEST_BROKERS`.

pub mod grpc;
pub mod hooks;
pub mod prometheus;
pub mod service;
pub mod workload;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, FutureProducer, ThreadedProducer};

/// Calls `attempt` every `every` until it succeeds and returns its value; after `timeout`,
/// panics with `fail` applied to the last failed attempt's value.
pub fn wait_for<T, L>(
    timeout: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> Result<T, L>,
    fail: impl FnOnce(L) -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{}", fail(last)),
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// Hands a record to the producer, waiting while its local queue is full (librdkafka's
/// thread drains it). Any other error fails the test: retrying it would spin forever.
pub fn send_record(p: &ThreadedProducer<DefaultProducerContext>, mut r: BaseRecord<'_, str, [u8]>) {
    loop {
        match p.send(r) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                r = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, back)) => panic!("producing to {}: {e}", back.topic),
        }
    }
}

/// The broker's bootstrap address. Panics with the fix when the tests run without one: these
/// tests are meant to fail loudly, never to pass without a broker.
pub fn brokers() -> String {
    std::env::var("MOTSTREAM_TEST_BROKERS").unwrap_or_else(|_| {
        panic!(
            "MOTSTREAM_TEST_BROKERS is not set: run scripts/test, or `scripts/kafka up` and \
             export the address it prints"
        )
    })
}

/// A name no other test (or earlier run) uses, so tests can run in parallel on one broker.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    // Relaxed: only uniqueness within this process matters, not ordering with other memory.
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Creates a topic and waits until it exists.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create_topics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// A producer that waits for the broker's acknowledgement of every message.
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// A message as consumed: key, payload and headers, owned.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Consumed {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Reads `count` messages from the start of `topic` in a fresh consumer group, or panics after
/// `timeout` saying how many arrived.
pub fn consume(topic: &str, count: usize, timeout: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived from {topic} within {timeout:?}",
            out.len()
        );
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consuming");
        out.push(Consumed {
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers: msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    out
}

/// How many messages `topic` holds: the sum of its partitions' high watermarks (the tests
/// never delete, so low watermarks are 0).
pub fn message_count(topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .map_or(0, |(_, hi)| hi)
        })
        .sum()
}
