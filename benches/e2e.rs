//! End-to-end benchmark: a producer at a fixed offered rate into the real broker, motstream's
//! ingest and aggregator consuming, stepping the rate up until freshness p99 passes 1 s or
//! consumption falls behind. Prints a table and writes it as JSON.
//!
//! cargo bench -p motstream-benches --bench e2e -- --brokers 127.0.0.1:PORT \
//!     [--rates 50000,100000,200000,300000,400000] [--step-secs 20] [--partitions 4] \
//!     [--format proto|json] [--json target/e2e.json] [--catch-up 2000000] [--no-exporter] \
//!     [--kafka PROPERTY=VALUE ...] [--compression lz4|none|zstd|...]
//!
//! The Prometheus exporter is on as in the service (live counters kept per event, the
//! recorder installed, `/metrics` rendered by a scraper thread once a second); `--no-exporter`
//! turns all of that off, to measure what the exporter costs.
//!
//! Freshness is the time from an event's production (its event time is set when it is sent)
//! to its being applied to the aggregator. CPU is the whole benchmark process (producer,
//! consumer and aggregator; not the broker), per million events consumed.
//!
//! `--catch-up N` first measures ingest alone: N events are produced (untimed), then ingest
//! starts and drains the backlog; its events/s is what the consumer and aggregator sustain when
//! they do not share the two cores with a producer.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use motstream_benches::{arg, bench_event, cpu_secs, create_topic, peak_rss_mib};
use motstream_core::codec::{CONTENT_TYPE_HEADER, encode_into};
use motstream_core::{Classification, Encoding, InteractionEvent, Limits};
use motstream_ingest::{Apply, Health, IngestConfig, PartitionKey, Sink};
use motstream_loadgen::produce::send_when_room;
use motstream_server::config::ServiceConfig;
use motstream_server::now_ms;
use motstream_server::state::AggregatorState;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde::Serialize;

/// The service's allocator (see `ALLOCATOR` in crates/motstream/src/main.rs), so the bench's
/// ingest and its producer allocate as `motstream run` and `motstream loadgen` do.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Whether the exporter is on (see the top of the file).
static EXPORTER: AtomicBool = AtomicBool::new(true);

/// librdkafka properties for ingest's consumer (`--kafka`, repeatable), as the service's
/// `--kafka-property` passes them.
static KAFKA: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// The load generator's compression codec (`--compression`, default lz4).
static COMPRESSION: OnceLock<String> = OnceLock::new();
/// `--state-topic`: ingest publishes partition snapshots to `<topic>.state` each second.
static STATE_TOPIC: AtomicBool = AtomicBool::new(false);

fn service_config(brokers: &str) -> ServiceConfig {
    ServiceConfig {
        exporter: EXPORTER.load(Ordering::Relaxed),
        ..ServiceConfig::for_brokers(brokers)
    }
}

/// With the exporter on: renders the whole /metrics page once a second (a scrape interval
/// shorter than Prometheus' usual 15 s) until `stop`; returns (scrapes, bytes of the last).
fn scraper(
    state: &Arc<AggregatorState>,
    health: &Arc<Health>,
    stop: &Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<(u64, usize)>> {
    if !EXPORTER.load(Ordering::Relaxed) {
        return None;
    }
    let exporter = motstream_server::exporter::Exporter::new(
        motstream_server::exporter::recorder().expect("the Prometheus recorder"),
        Arc::clone(state),
        Arc::new(motstream_server::alert_feed::AlertFeed::default()),
        Arc::clone(health),
        Duration::from_secs(3 * 86_400),
    );
    let stop = Arc::clone(stop);
    Some(std::thread::spawn(move || {
        let (mut n, mut bytes) = (0, 0);
        while !stop.load(Ordering::Acquire) {
            bytes = exporter.render(now_ms()).len();
            n += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        (n, bytes)
    }))
}

fn report_scrapes(s: Option<std::thread::JoinHandle<(u64, usize)>>) {
    match s.map(|h| h.join()) {
        Some(Ok((n, bytes))) => eprintln!("exporter: on, {n} renders of /metrics ({bytes} bytes)"),
        Some(Err(_)) => eprintln!("exporter: the scraper thread panicked"),
        None => eprintln!("exporter: off"),
    }
}

/// The aggregator, plus a freshness histogram and an applied-events counter.
struct Measured {
    inner: Arc<AggregatorState>,
    freshness_ms: Mutex<Histogram<u64>>,
    applied: AtomicU64,
}

impl Sink for Measured {
    fn assigned(&self, p: PartitionKey) {
        self.inner.assigned(p);
    }
    fn live(&self, p: PartitionKey) {
        self.inner.live(p);
    }
    fn revoked(&self, p: PartitionKey) {
        self.inner.revoked(p);
    }
    fn tick(&self, now: i64) {
        self.inner.tick(now);
    }
    fn snapshot(
        &self,
        p: PartitionKey,
        next_offset: i64,
        now: i64,
        kind: motstream_ingest::SnapshotKind,
    ) -> Option<Vec<u8>> {
        self.inner.snapshot(p, next_offset, now, kind)
    }
    fn restore(&self, p: PartitionKey, base: &[u8], delta: Option<&[u8]>) -> Option<i64> {
        self.inner.restore(p, base, delta)
    }
    fn apply_batch(&self, p: PartitionKey, now: i64, events: &mut dyn FnMut(&mut dyn Apply)) {
        // Called from the one ingest thread: the lock is never contended; taken once per run.
        let Ok(mut freshness) = self.freshness_ms.lock() else {
            return;
        };
        let mut applied = 0;
        self.inner.apply_batch(p, now, &mut |inner| {
            let mut timed = Timed {
                inner,
                freshness: &mut freshness,
                applied: &mut applied,
            };
            events(&mut timed);
        });
        // Relaxed: a statistic read by the reporting thread; no other memory depends on it.
        self.applied.fetch_add(applied, Ordering::Relaxed);
    }
}

/// Records each applied event's freshness (wall clock minus event time) on its way through.
struct Timed<'a> {
    inner: &'a mut dyn Apply,
    freshness: &'a mut Histogram<u64>,
    applied: &'a mut u64,
}

impl Apply for Timed<'_> {
    fn apply(&mut self, e: &InteractionEvent<'_>, c: Classification) {
        self.inner.apply(e, c);
        let lag = (now_ms() - e.event_time_ms).max(0) as u64;
        let _ = self.freshness.record(lag);
        *self.applied += 1;
    }
}

impl Measured {
    /// An empty aggregator for the catalog, configured as the service would be.
    fn new(brokers: &str, catalog: &Arc<motstream_core::Catalog>) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(
                AggregatorState::new(Arc::clone(catalog), &service_config(brokers))
                    .expect("aggregator for the airline catalog"),
            ),
            freshness_ms: Mutex::new(
                Histogram::new_with_bounds(1, 600_000, 3).expect("histogram bounds"),
            ),
            applied: AtomicU64::new(0),
        })
    }
}

/// Starts ingest of `{tag}-events` into `sink` on its own thread, in a group of its own.
fn start_ingest(
    brokers: &str,
    tag: &str,
    catalog: &Arc<motstream_core::Catalog>,
    sink: &Arc<Measured>,
    health: &Arc<Health>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(), motstream_ingest::IngestError>> {
    let ic = IngestConfig {
        brokers: brokers.to_owned(),
        group_id: format!("{tag}-group"),
        topics: vec![format!("{tag}-events")],
        dlq_topic: format!("{tag}-dlq"),
        kafka: KAFKA.get().cloned().unwrap_or_default(),
        lookback: Duration::from_secs(3600),
        limits: Limits::default(),
        batch_max: 5_000,
        dedup_window: None,
        dedup_capacity: 0,
        // Relaxed: set once in main before any ingest starts.
        state_topic: STATE_TOPIC.load(Ordering::Relaxed),
    };
    let (catalog, sink, health, stop) = (
        Arc::clone(catalog),
        Arc::clone(sink) as Arc<dyn Sink>,
        Arc::clone(health),
        Arc::clone(stop),
    );
    std::thread::spawn(move || motstream_ingest::run(&ic, catalog, sink, health, stop))
}

/// The benchmark's producer: large batches (lz4 unless `--compression` says otherwise),
/// lingering `linger_ms`.
fn producer(brokers: &str, linger_ms: &str) -> ThreadedProducer<DefaultProducerContext> {
    motstream_ingest::kafka_config(
        brokers,
        &[
            ("linger.ms", linger_ms),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            (
                "compression.type",
                COMPRESSION.get().map_or("lz4", String::as_str),
            ),
            // Delivery reports for every message took 7.7% of this process's CPU samples at
            // 300,000 events/s (the producer's polling thread), CPU the broker and ingest
            // need; failures are still reported.
            ("delivery.report.only.error", "true"),
        ],
        &BTreeMap::new(),
    )
    .create()
    .expect("producer")
}

/// Hands one event to the producer, waiting `backoff` at a time while its queue is full.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    payload: &[u8],
    content_type: &str,
    backoff: Duration,
) {
    let rec = BaseRecord::<str, [u8]>::to(topic)
        .key(key)
        .payload(payload)
        .headers(OwnedHeaders::new().insert(Header {
            key: CONTENT_TYPE_HEADER,
            value: Some(content_type),
        }));
    if let Err(e) = send_when_room(producer, rec, backoff) {
        panic!("producing to {topic}: {e}");
    }
}

#[derive(Debug, Serialize)]
struct Step {
    offered_per_sec: u64,
    produced_per_sec: f64,
    consumed_per_sec: f64,
    freshness_p50_ms: u64,
    freshness_p99_ms: u64,
    freshness_max_ms: u64,
    cpu_secs_per_million: f64,
    peak_rss_mib: f64,
    events: u64,
}

/// Produces `n` events as fast as the producer goes (untimed), then times ingest alone
/// applying all of them. Returns (events/s, CPU s per million events, peak RSS MiB).
fn catch_up(
    brokers: &str,
    n: u64,
    partitions: i32,
    encoding: Encoding,
    catalog: &Arc<motstream_core::Catalog>,
) -> (f64, f64, f64) {
    let tag = format!("e2e-catchup-{}", now_ms());
    let (topic, dlq) = (format!("{tag}-events"), format!("{tag}-dlq"));
    create_topic(brokers, &topic, partitions);
    create_topic(brokers, &dlq, 1);
    let producer = producer(brokers, "20");
    let ct = encoding.content_type();
    let mots: Vec<String> = catalog.mots.iter().map(|m| m.id.clone()).collect();
    let now = now_ms();
    let mut payload = Vec::new();
    for i in 0..n as usize {
        let key = format!("j-{}", i % 10_000);
        let event = bench_event(
            &mots[i % mots.len()],
            &key,
            i,
            now - 60_000 + (i as i64 % 60_000),
        );
        payload.clear();
        encode_into(&event, encoding, &mut payload);
        send(
            &producer,
            &topic,
            &key,
            &payload,
            ct,
            Duration::from_micros(500),
        );
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("backlog produced");
    drop(producer);
    let sink = Measured::new(brokers, catalog);
    let stop = Arc::new(AtomicBool::new(false));
    let health = Arc::new(Health::default());
    let scrapes = scraper(&sink.inner, &health, &stop);
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let ingest = start_ingest(brokers, &tag, catalog, &sink, &health, &stop);
    // Timed from the first applied event, so group joining is not counted.
    let mut first: Option<(Instant, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_report = Instant::now();
    while sink.applied.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        let a = sink.applied.load(Ordering::Relaxed);
        if first.is_none() && a > 0 {
            first = Some((Instant::now(), cpu_secs()));
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!(
                "catch-up: {a} of {n} applied ({:.0}%)",
                a as f64 * 100.0 / n as f64
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (t0, c0) = first.unwrap_or((start, cpu0));
    let applied = sink.applied.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c0;
    stop.store(true, Ordering::Release);
    let _ = ingest.join();
    report_scrapes(scrapes);
    (
        applied as f64 / secs,
        cpu / (applied as f64 / 1e6),
        peak_rss_mib(),
    )
}

fn run_step(
    brokers: &str,
    rate: u64,
    secs: u64,
    partitions: i32,
    encoding: Encoding,
    catalog: &Arc<motstream_core::Catalog>,
) -> Step {
    let tag = format!("e2e-{}-{rate}", now_ms());
    let (topic, dlq) = (format!("{tag}-events"), format!("{tag}-dlq"));
    create_topic(brokers, &topic, partitions);
    create_topic(brokers, &dlq, 1);
    let sink = Measured::new(brokers, catalog);
    let health = Arc::new(Health::default());
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = scraper(&sink.inner, &health, &stop);
    let ingest = start_ingest(brokers, &tag, catalog, &sink, &health, &stop);
    let ready_by = Instant::now() + Duration::from_secs(30);
    while !health.report().ready && Instant::now() < ready_by {
        std::thread::sleep(Duration::from_millis(50));
    }

    let producer = producer(brokers, "5");
    let mots: Vec<String> = catalog.mots.iter().map(|m| m.id.clone()).collect();
    let keys: Vec<String> = (0..10_000).map(|i| format!("j-{i}")).collect();
    let ct = encoding.content_type();
    let start = Instant::now();
    let cpu0 = cpu_secs();
    let mut sent: u64 = 0;
    let mut warm_at: Option<(Instant, u64, f64)> = None;
    // librdkafka copies the payload, so one buffer serves every event.
    let mut payload = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let i = sent as usize;
            let event = bench_event(&mots[i % mots.len()], &keys[i % keys.len()], i, now_ms());
            payload.clear();
            encode_into(&event, encoding, &mut payload);
            send(
                &producer,
                &topic,
                &keys[i % keys.len()],
                &payload,
                ct,
                Duration::from_micros(200),
            );
            sent += 1;
        }
        // Measure after a few seconds of warm-up: the first seconds include group joining.
        if warm_at.is_none() && start.elapsed() >= Duration::from_secs(secs.min(20) / 4) {
            if let Ok(mut h) = sink.freshness_ms.lock() {
                h.reset();
            }
            warm_at = Some((
                Instant::now(),
                sink.applied.load(Ordering::Relaxed),
                cpu_secs(),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let produced_secs = start.elapsed().as_secs_f64();
    let (t_warm, applied_warm, cpu_warm) = warm_at.unwrap_or((start, 0, cpu0));
    let end = Instant::now();
    let applied_end = sink.applied.load(Ordering::Relaxed);
    let cpu_end = cpu_secs();
    let consumed_per_sec =
        (applied_end - applied_warm) as f64 / end.duration_since(t_warm).as_secs_f64();
    let cpu_per_million = if applied_end > applied_warm {
        (cpu_end - cpu_warm) / ((applied_end - applied_warm) as f64 / 1e6)
    } else {
        f64::NAN
    };
    let _ = producer.flush(Duration::from_secs(30));
    // Let the consumer drain, bounded, so the next step starts clean.
    let drain_by = Instant::now() + Duration::from_secs(20);
    while sink.applied.load(Ordering::Relaxed) < sent && Instant::now() < drain_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (p50, p99, max) = sink
        .freshness_ms
        .lock()
        .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
        .unwrap_or_default();
    stop.store(true, Ordering::Release);
    let _ = ingest.join();
    report_scrapes(scrapes);
    Step {
        offered_per_sec: rate,
        produced_per_sec: sent as f64 / produced_secs,
        consumed_per_sec,
        freshness_p50_ms: p50,
        freshness_p99_ms: p99,
        freshness_max_ms: max,
        cpu_secs_per_million: cpu_per_million,
        peak_rss_mib: peak_rss_mib(),
        events: sent,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(brokers) =
        arg(&args, "--brokers").or_else(|| std::env::var("MOTSTREAM_TEST_BROKERS").ok())
    else {
        eprintln!(
            "e2e: no broker. Start one with `scripts/kafka up` and pass --brokers ADDR (or set MOTSTREAM_TEST_BROKERS)."
        );
        return;
    };
    let rates: Vec<u64> = arg(&args, "--rates")
        .unwrap_or_else(|| "50000,100000,200000,300000,400000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let secs: u64 = arg(&args, "--step-secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let partitions: i32 = arg(&args, "--partitions")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let encoding = match arg(&args, "--format").as_deref() {
        Some("json") => Encoding::Json,
        _ => Encoding::Protobuf,
    };
    let json_out = arg(&args, "--json").unwrap_or_else(|| "target/e2e.json".into());
    let exporter = !args.iter().any(|a| a == "--no-exporter");
    let kafka: BTreeMap<String, String> = args
        .windows(2)
        .filter(|w| w[0] == "--kafka")
        .filter_map(|w| w[1].split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if !kafka.is_empty() {
        eprintln!("ingest consumer properties: {kafka:?}");
    }
    let _ = KAFKA.set(kafka);
    let _ = COMPRESSION.set(arg(&args, "--compression").unwrap_or_else(|| "lz4".into()));
    EXPORTER.store(exporter, Ordering::Relaxed);
    // Relaxed: read by ingest threads started after this.
    STATE_TOPIC.store(args.iter().any(|a| a == "--state-topic"), Ordering::Relaxed);
    let catalog = Arc::new(motstream_benches::airline_catalog());
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "motstream e2e: broker {brokers}, {partitions} partitions, {encoding:?}, {secs} s per step, {cores} cores ({machine}), exporter {}, state topic {}",
        if exporter { "on" } else { "off" },
        // Relaxed: set above on this thread.
        if STATE_TOPIC.load(Ordering::Relaxed) {
            "on"
        } else {
            "off"
        }
    );
    println!(
        "{:>10} {:>11} {:>11} {:>9} {:>9} {:>9} {:>12} {:>9}",
        "offered/s",
        "produced/s",
        "consumed/s",
        "fresh p50",
        "fresh p99",
        "max",
        "CPU s/Mev",
        "peak RSS"
    );
    let mut catch_up_report = serde_json::Value::Null;
    if let Some(n) = arg(&args, "--catch-up").and_then(|s| s.parse::<u64>().ok()) {
        let (rate, cpu, rss) = catch_up(&brokers, n, partitions, encoding, &catalog);
        println!(
            "catch-up: ingest alone applied a backlog of {n} events at {rate:.0} events/s, {cpu:.2} CPU s per million, peak RSS {rss:.0} MiB"
        );
        catch_up_report = serde_json::json!({ "events": n, "events_per_sec": rate, "cpu_secs_per_million": cpu, "peak_rss_mib": rss });
    }
    let mut steps = Vec::new();
    for rate in rates {
        let s = run_step(&brokers, rate, secs, partitions, encoding, &catalog);
        println!(
            "{:>10} {:>11.0} {:>11.0} {:>7}ms {:>7}ms {:>7}ms {:>12.2} {:>6.0}MiB",
            s.offered_per_sec,
            s.produced_per_sec,
            s.consumed_per_sec,
            s.freshness_p50_ms,
            s.freshness_p99_ms,
            s.freshness_max_ms,
            s.cpu_secs_per_million,
            s.peak_rss_mib
        );
        let behind = s.consumed_per_sec < 0.95 * s.produced_per_sec
            || s.produced_per_sec < 0.95 * s.offered_per_sec as f64;
        let stale = s.freshness_p99_ms > 1_000;
        steps.push(s);
        if behind || stale {
            println!(
                "stopping: {}",
                if stale {
                    "freshness p99 above 1 s"
                } else {
                    "consumption (or production) fell behind the offered rate"
                }
            );
            break;
        }
    }
    let report = serde_json::json!({ "exporter": exporter, "broker": brokers, "partitions": partitions, "format": format!("{encoding:?}"), "step_secs": secs, "cores": cores, "cpu": machine, "catch_up": catch_up_report, "steps": steps });
    // cargo runs benches in the package's directory, where `target/` need not exist.
    if let Some(dir) = std::path::Path::new(&json_out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&json_out, format!("{report:#}\n")) {
        Ok(()) => println!("wrote {json_out}"),
        Err(e) => eprintln!("writing {json_out}: {e}"),
    }
}
