//! Ingest under a burst of dashboard queries: the whole service in-process (ingest from the
//! real broker, the aggregator, HTTP and gRPC) drains a backlog of `--events` events of a
//! 1,000-MOT catalog while `--callers` concurrent callers (half polling `/status?window=5m`,
//! half `GetMot` of a random MOT over 5m) call in every other phase of `--phase-ms` and pause
//! in the others; `--rounds` drains. Prints, per drain and over all, ingest's median applied
//! rate in the phases with callers against the phases without, and the calls completed.
//!
//! cargo bench -p motstream-benches --bench queries -- --brokers 127.0.0.1:PORT \
//!     [--events 1000000] [--callers 64] [--pause-ms 100] [--partitions 4] [--rounds 3] [--phase-ms 1000]
//!
//! `--pause-ms` is each caller's pause between its calls (100: dashboards refreshing 10 times a
//! second each; 0: back to back, which measures the callers' own CPU competing with ingest on
//! the same cores as much as the server). Callers run on their own runtime in this process.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use motstream_benches::{bench_event, create_topic, generated_catalog_yaml};
use motstream_core::codec::{CONTENT_TYPE_HEADER, encode_into};
use motstream_core::{Catalog, Encoding};
use motstream_loadgen::produce::send_when_room;
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_client::MotQueryClient;
use motstream_server::config::ServiceConfig;
use motstream_server::{Service, now_ms};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const MOTS: usize = 1_000;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: {v:?} is not valid"))
        })
        .unwrap_or(default)
}

/// Produces `n` events of the catalog's MOTs into `topic` (untimed), event times in the last
/// minute.
fn backlog(brokers: &str, topic: &str, n: u64, catalog: &Catalog) {
    let producer: ThreadedProducer<DefaultProducerContext> = motstream_ingest::kafka_config(
        brokers,
        &[
            ("linger.ms", "20"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            ("compression.type", "lz4"),
        ],
        &Default::default(),
    )
    .create()
    .expect("producer");
    let mots: Vec<&str> = catalog.mots.iter().map(|m| m.id.as_str()).collect();
    let now = now_ms();
    let mut payload = Vec::new();
    for i in 0..n as usize {
        let key = format!("j-{}", i % 10_000);
        let e = bench_event(
            mots[i % mots.len()],
            &key,
            i,
            now - 60_000 + (i as i64 % 60_000),
        );
        payload.clear();
        encode_into(&e, Encoding::Protobuf, &mut payload);
        let rec = BaseRecord::<str, [u8]>::to(topic)
            .key(&key)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: CONTENT_TYPE_HEADER,
                value: Some(Encoding::Protobuf.content_type()),
            }));
        send_when_room(&producer, rec, Duration::from_micros(500)).expect("produced");
        if i % 200_000 == 0 {
            eprintln!("backlog: {i} of {n} produced");
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("backlog flushed");
}

struct Outcome {
    /// Ingest's applied rate over each phase with the callers calling, and each without.
    with: Vec<f64>,
    without: Vec<f64>,
    calls: u64,
    errors: u64,
}

/// Drains a fresh backlog with a fresh service; `callers` query in every other phase of
/// `--phase-ms`, and pause in the others.
fn drain(
    brokers: &str,
    catalog_path: &std::path::Path,
    catalog: &Catalog,
    callers: usize,
) -> Outcome {
    let n: u64 = arg("--events", 1_000_000);
    let pause = Duration::from_millis(arg("--pause-ms", 100));
    let topic = format!("bench-queries-{}-{}", std::process::id(), now_ms());
    create_topic(brokers, &topic, arg("--partitions", 4));
    create_topic(brokers, &format!("{topic}.dlq"), 1);
    backlog(brokers, &topic, n, catalog);
    let mut cfg = ServiceConfig::for_brokers(brokers);
    cfg.topics = vec![topic.clone()];
    cfg.dlq_topic = format!("{topic}.dlq");
    cfg.group_id = format!("{topic}-group");
    cfg.catalog = Some(catalog_path.to_owned());
    cfg.grpc_listen = ([127, 0, 0, 1], 0).into();
    cfg.metrics_listen = ([127, 0, 0, 1], 0).into();
    // The recorder is process-wide: the second service could not install it again.
    cfg.exporter = false;
    cfg.alerts.topic = None;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let service = server_rt.block_on(Service::start(&cfg)).expect("service");
    let (http, grpc) = (service.http_addr, service.grpc_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("caller")
        .enable_all()
        .build()
        .expect("client runtime");
    let mot_ids: Arc<Vec<String>> = Arc::new(catalog.mots.iter().map(|m| m.id.clone()).collect());
    for c in 0..callers {
        let (stop, active, calls, errors, ids) = (
            Arc::clone(&stop),
            Arc::clone(&active),
            Arc::clone(&calls),
            Arc::clone(&errors),
            Arc::clone(&mot_ids),
        );
        client_rt.spawn(async move {
            let http_client = reqwest::Client::new();
            let mut grpc_client =
                match tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                    .expect("endpoint")
                    .connect()
                    .await
                {
                    Ok(ch) => Some(MotQueryClient::new(ch)),
                    Err(_) => None,
                };
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                // Relaxed: a flag polled by the callers.
                if !active.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let ok = if c % 2 == 0 {
                    // The body read, as a dashboard reads it (left unread, the connection is
                    // not reused and every call opens a new one).
                    match http_client
                        .get(format!("http://{http}/status?window=5m"))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    }
                } else if let Some(g) = grpc_client.as_mut() {
                    i = (i + 7) % ids.len();
                    g.get_mot(pb::GetMotRequest {
                        mot_id: ids[i].clone(),
                        windows: vec!["5m".into()],
                    })
                    .await
                    .is_ok()
                } else {
                    false
                };
                // Relaxed: counters read once the run ends.
                if ok {
                    calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
    }
    // Timed from the first applied event, so joining the group is not counted. The first
    // two phases are left out: the windows' first touch of their memory falls in them.
    let phase = Duration::from_millis(arg("--phase-ms", 1_000));
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut phase_start: Option<(Instant, u64)> = None;
    let mut phases = 0u32;
    let mut last_report = Instant::now();
    loop {
        let a = service.state.applied();
        if a >= n || Instant::now() > deadline {
            break;
        }
        match phase_start {
            None if a > 0 => phase_start = Some((Instant::now(), a)),
            Some((t0, a0)) if t0.elapsed() >= phase => {
                let rate = (a - a0) as f64 / t0.elapsed().as_secs_f64();
                // Relaxed: see the callers.
                let on = active.load(Ordering::Relaxed);
                if phases >= 2 {
                    if on {
                        with.push(rate)
                    } else {
                        without.push(rate)
                    }
                }
                phases += 1;
                active.store(callers > 0 && !on, Ordering::Relaxed);
                phase_start = Some((Instant::now(), a));
            }
            _ => {}
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!("drain: {a} of {n} applied");
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    client_rt.shutdown_timeout(Duration::from_secs(5));
    server_rt.block_on(service.stop()).expect("service stopped");
    Outcome {
        with,
        without,
        calls: calls.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let brokers: String = arg(
        "--brokers",
        std::env::var("MOTSTREAM_TEST_BROKERS").unwrap_or_default(),
    );
    assert!(
        !brokers.is_empty(),
        "queries: pass --brokers or set MOTSTREAM_TEST_BROKERS"
    );
    let callers: usize = arg("--callers", 64);
    let yaml = generated_catalog_yaml(MOTS, 10);
    let catalog = Catalog::from_yaml(&yaml, "generated.yaml").expect("catalog");
    let path = std::env::temp_dir().join(format!("motstream-queries-{}.yaml", std::process::id()));
    std::fs::write(&path, yaml).expect("catalog written");
    // Alternated within one drain, phase by phase: separate drains without callers ran at
    // 526,710-828,670 events/s on this kind of machine (2026-12-04), a wider spread than the
    // effect measured, while neighbouring seconds of one drain see the same machine.
    let rounds: usize = arg("--rounds", 3);
    let mut runs = Vec::new();
    for round in 1..=rounds.max(1) {
        eprintln!("queries: round {round} of {rounds}");
        runs.push(drain(&brokers, &path, &catalog, callers));
    }
    let _ = std::fs::remove_file(&path);
    let pause: u64 = arg("--pause-ms", 100);
    println!(
        "| round | phases with / without {callers} callers | ingest applied/s with (median) | without (median) | share | calls completed | call errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (r, o) in runs.iter().enumerate() {
        let (w, wo) = (median(o.with.clone()), median(o.without.clone()));
        println!(
            "| {} | {} / {} | {w:.0} | {wo:.0} | {:.1}% | {} | {} |",
            r + 1,
            o.with.len(),
            o.without.len(),
            w * 100.0 / wo,
            o.calls,
            o.errors
        );
    }
    let all_with = median(runs.iter().flat_map(|o| o.with.iter().copied()).collect());
    let all_without = median(
        runs.iter()
            .flat_map(|o| o.without.iter().copied())
            .collect(),
    );
    println!(
        "all phases: with {callers} callers ({pause} ms between calls), ingest ran at {:.1}% of its rate without them ({all_with:.0} against {all_without:.0} events/s, medians)",
        all_with * 100.0 / all_without
    );
}
