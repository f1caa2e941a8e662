//! gRPC query benchmark: the whole service in-process (ingest from the real broker, the
//! aggregator, the gRPC server), a simulator producing at a steady rate, and tonic clients over
//! loopback. Measures:
//! - GetMot latency (p50, p99, max) and calls/s at 1, 16 and 64 concurrent clients, each client
//!   its own connection, while ingest runs: first back to back (each client's next call as soon
//!   as the last answered: the saturation throughput, where latency is mostly queueing), then
//!   paced like dashboards at `--paced` calls/s per client (far below saturation, so no call
//!   waits for an earlier one; latency is from sending to the answer);
//! - WatchMots with 1,000 subscribers at `min_interval` 1s: updates each receives per second,
//!   the lag from the server's `as_of_ms` to receipt, and how many were dropped.
//!
//! cargo bench -p motstream-benches --bench grpc -- --brokers 127.0.0.1:PORT \
//!     [--rate 2000] [--secs 10] [--clients 1,16,64] [--paced 20] [--watchers 1000] [--watch-secs 30]
//!
//! The server and the clients share this process and the machine's cores; the clients run on
//! their own runtime so that they do not queue behind the server's tasks.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use motstream_benches::{cpu_secs, create_topic};
use motstream_core::{Catalog, Encoding};
use motstream_loadgen::files::BUILTIN_CATALOG;
use motstream_loadgen::produce::{self, Limit};
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_client::MotQueryClient;
use motstream_server::Service;
use motstream_server::config::ServiceConfig;
use motstream_sim::{Scenario, SimConfig, Simulator};
use tonic::transport::{Channel, Endpoint};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Args {
    brokers: String,
    rate: f64,
    secs: u64,
    clients: Vec<usize>,
    paced: f64,
    watchers: usize,
    watch_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        brokers: std::env::var("MOTSTREAM_TEST_BROKERS").unwrap_or_default(),
        rate: 2_000.0,
        secs: 10,
        clients: vec![1, 16, 64],
        paced: 20.0,
        watchers: 1_000,
        watch_secs: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--brokers" => a.brokers = v(),
            "--rate" => a.rate = v().parse().expect("--rate: a number"),
            "--secs" => a.secs = v().parse().expect("--secs: seconds"),
            "--clients" => {
                a.clients = v()
                    .split(',')
                    .map(|c| c.parse().expect("--clients: comma-separated counts"))
                    .collect()
            }
            "--paced" => a.paced = v().parse().expect("--paced: calls/s per client"),
            "--watchers" => a.watchers = v().parse().expect("--watchers: a count"),
            "--watch-secs" => a.watch_secs = v().parse().expect("--watch-secs: seconds"),
            // `cargo bench` passes --bench.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !a.brokers.is_empty(),
        "--brokers (or MOTSTREAM_TEST_BROKERS) is required: start one with scripts/kafka up"
    );
    a
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn connect(addr: std::net::SocketAddr) -> MotQueryClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect");
    MotQueryClient::new(ch)
}

struct Latency {
    clients: usize,
    calls: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    errors: u64,
}

/// `paced`: calls/s per client, or back to back when `None`.
async fn get_mot_step(
    addr: std::net::SocketAddr,
    clients: usize,
    secs: u64,
    paced: Option<f64>,
) -> Latency {
    const MOTS: [&str; 5] = [
        "online-check-in",
        "bag-drop",
        "security",
        "lounge-entry",
        "boarding-gate",
    ];
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let mut errors = 0u64;
            let mut n = i;
            let period = paced.map(|r| Duration::from_secs_f64(1.0 / r));
            // Clients start spread over one period, as independent dashboards would.
            let mut next = Instant::now()
                + period.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / clients as f64));
            while Instant::now() < until {
                n += 1;
                let req = pb::GetMotRequest {
                    mot_id: MOTS[n % MOTS.len()].into(),
                    windows: vec!["5m".into()],
                };
                if let Some(p) = period {
                    tokio::time::sleep_until(next.into()).await;
                    next += p;
                }
                let t0 = Instant::now();
                match c.get_mot(req).await {
                    Ok(r) if r.get_ref().windows.len() == 1 => {
                        let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
                    }
                    _ => errors += 1,
                }
            }
            (h, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.expect("client task");
        all.add(&h).expect("same bounds");
        errors += e;
    }
    let took = started.elapsed().as_secs_f64();
    Latency {
        clients,
        calls: all.len(),
        per_sec: all.len() as f64 / took,
        p50_us: all.value_at_quantile(0.50),
        p99_us: all.value_at_quantile(0.99),
        max_us: all.max(),
        errors,
    }
}

struct WatchResult {
    watchers: usize,
    opened: usize,
    ended_early: u64,
    messages: u64,
    min_per_watcher_per_sec: f64,
    mean_per_watcher_per_sec: f64,
    lag_p50_ms: u64,
    lag_p99_ms: u64,
    cpu_pct: f64,
}

async fn watch_step(addr: std::net::SocketAddr, watchers: usize, secs: u64) -> WatchResult {
    // 50 streams per connection: under h2's default limit of concurrent streams.
    let conns = watchers.div_ceil(50);
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(connect(addr).await);
    }
    let ended = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let measure_from = Instant::now() + Duration::from_secs(5);
    let until = measure_from + Duration::from_secs(secs);
    for i in 0..watchers {
        let mut c = clients[i % conns].clone();
        let ended = Arc::clone(&ended);
        tasks.push(tokio::spawn(async move {
            let req = pb::WatchMotsRequest {
                filter: None,
                window: "5m".into(),
                min_interval: "1s".into(),
            };
            let mut s = match c.watch_mots(req).await {
                Ok(s) => s.into_inner(),
                Err(_) => return None,
            };
            let mut lag = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).expect("histogram");
            let mut n = 0u64;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, s.message()).await {
                    Ok(Ok(Some(m))) => {
                        if Instant::now() >= measure_from {
                            n += 1;
                            let _ = lag.record((now_ms() - m.as_of_ms).max(1) as u64);
                        }
                    }
                    Ok(_) => {
                        // Relaxed: a counter read after every task has finished.
                        ended.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(_) => break,
                }
            }
            Some((n, lag))
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let mut lag = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).expect("histogram");
    let (mut opened, mut messages, mut min_n) = (0usize, 0u64, u64::MAX);
    for t in tasks {
        if let Some((n, h)) = t.await.expect("watch task") {
            opened += 1;
            messages += n;
            min_n = min_n.min(n);
            lag.add(&h).expect("same bounds");
        }
    }
    let took = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    WatchResult {
        watchers,
        opened,
        ended_early: ended.load(Ordering::Relaxed),
        messages,
        min_per_watcher_per_sec: if opened > 0 {
            min_n as f64 / secs as f64
        } else {
            0.0
        },
        mean_per_watcher_per_sec: messages as f64 / opened.max(1) as f64 / secs as f64,
        lag_p50_ms: lag.value_at_quantile(0.50),
        lag_p99_ms: lag.value_at_quantile(0.99),
        cpu_pct: cpu / took * 100.0,
    }
}

fn main() {
    let a = args();
    let topic = format!("bench-grpc-{}-{}", std::process::id(), now_ms());
    create_topic(&a.brokers, &topic, 4);
    let mut cfg = ServiceConfig::for_brokers(&a.brokers);
    cfg.topics = vec![topic.clone()];
    cfg.dlq_topic = format!("{topic}.dlq");
    cfg.group_id = format!("{topic}-group");
    cfg.grpc_listen = ([127, 0, 0, 1], 0).into();
    cfg.metrics_listen = ([127, 0, 0, 1], 0).into();
    cfg.grpc_max_watchers = a.watchers + 16;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let service = server_rt.block_on(Service::start(&cfg)).expect("service");
    let addr = service.grpc_addr;

    // The simulator producing at a steady rate for the whole run.
    let catalog = Arc::new(Catalog::from_yaml(BUILTIN_CATALOG, "airline").expect("catalog"));
    let mut sim = Simulator::new(
        Arc::clone(&catalog),
        Scenario::default_for(&catalog),
        SimConfig {
            seed: 7,
            events_per_sec: a.rate,
            ..SimConfig::default()
        },
        now_ms(),
    )
    .expect("simulator");
    let producer = produce::producer(&a.brokers, &Default::default()).expect("producer");
    let stop = Arc::new(AtomicBool::new(false));
    let sim_thread = {
        let (stop, topic) = (Arc::clone(&stop), topic.clone());
        std::thread::spawn(move || {
            let sent = AtomicU64::new(0);
            let n = produce::run(
                &mut sim,
                &producer,
                &topic,
                Encoding::Protobuf,
                Limit {
                    until: None,
                    count: None,
                },
                &stop,
                &sent,
            );
            let _ = produce::flush(&producer, Duration::from_secs(10));
            n
        })
    };
    // Let ingest take its partitions and the windows fill a little.
    let ready = Instant::now() + Duration::from_secs(60);
    while !service.health.report().ready || service.state.applied() < 1_000 {
        assert!(Instant::now() < ready, "ingest not ready within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");

    let applied0 = service.state.applied();
    let t0 = Instant::now();
    println!(
        "\nGetMot over loopback, windows [5m], ingest running at {} events/s offered ({}s per step)\n",
        a.rate, a.secs
    );
    println!(
        "{:>8} {:>14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "clients", "mode", "calls", "calls/s", "p50 µs", "p99 µs", "max µs", "errors"
    );
    for paced in [None, Some(a.paced)] {
        for &n in &a.clients {
            let r = client_rt.block_on(get_mot_step(addr, n, a.secs, paced));
            let mode = paced.map_or("back to back".into(), |p| format!("{p}/s each"));
            println!(
                "{:>8} {:>14} {:>10} {:>10.0} {:>10} {:>10} {:>10} {:>7}",
                r.clients, mode, r.calls, r.per_sec, r.p50_us, r.p99_us, r.max_us, r.errors
            );
        }
    }
    let ingest_rate = (service.state.applied() - applied0) as f64 / t0.elapsed().as_secs_f64();
    println!("ingest applied {ingest_rate:.0} events/s during the GetMot steps");

    println!(
        "\nWatchMots: {} subscribers, window 5m, min_interval 1s, {}s measured after 5s of warm-up\n",
        a.watchers, a.watch_secs
    );
    let r = client_rt.block_on(watch_step(addr, a.watchers, a.watch_secs));
    println!(
        "opened {}/{}; ended early (dropped) {}; {} updates = {:.0}/s; per watcher {:.2}/s mean, {:.2}/s min; \
         lag as_of->received p50 {} ms, p99 {} ms; process CPU {:.0}% of one core; RSS {:.0} MiB",
        r.opened,
        r.watchers,
        r.ended_early,
        r.messages,
        r.messages as f64 / a.watch_secs as f64,
        r.mean_per_watcher_per_sec,
        r.min_per_watcher_per_sec,
        r.lag_p50_ms,
        r.lag_p99_ms,
        r.cpu_pct,
        rss_mib(),
    );

    // Release pairs with the producer loop's Acquire load.
    stop.store(true, Ordering::Release);
    let produced = sim_thread.join().expect("simulator thread");
    println!(
        "\nproduced {produced} events in all; ingest applied {}",
        service.state.applied()
    );
    drop(client_rt);
    server_rt
        .block_on(service.stop())
        .expect("stopping the service");
}
