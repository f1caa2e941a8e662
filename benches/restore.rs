//! Restore benchmark: how long a partition's owner takes to be ready again after kill -9 and a
//! restart, with N events of history spread over 3 days, restoring from the state topic
//! against rebuilding by replay of the raw events. Runs the real `motstream run` (release
//! build) against a real broker:
//!
//! cargo build --release -p motstream
//! cargo bench -p motstream-benches --bench restore -- --brokers 127.0.0.1:PORT \
//!     [--events 1000000,10000000,50000000] [--partitions 8] [--bin target/release/motstream]
//!
//! Per N: N events (the airline catalog's MOTs, protobuf, record timestamps = event times,
//! spread evenly over the 3 days up to an hour before production began) are produced to a
//! fresh topic; instance A (state topic on) builds its windows by replay (no state exists yet)
//! and publishes snapshots; A is killed with SIGKILL and B starts with the same static member
//! id (`group.instance.id`, as for a rolling restart), restores from the state topic, and is
//! timed to ready with every event counted; B is killed and C starts with the state topic off,
//! rebuilding by replay, timed the same way. "Ready" is /readyz 200 and /status?window=3d counting all N.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use motstream_benches::{airline_catalog, arg, bench_event, create_topic_with};
use motstream_core::Encoding;
use motstream_core::codec::{CONTENT_TYPE_HEADER, encode_into};
use motstream_loadgen::produce::send_when_room;
use motstream_server::now_ms;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

const THREE_DAYS_MS: i64 = 3 * 86_400_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A minimal HTTP/1.1 GET of a JSON body; `None` while the server is not answering.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((code, serde_json::from_str(&body).ok()?))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Produces `n` events spread evenly over the last 3 days, oldest first, each record stamped
/// with its event time (replay looks offsets up by time). Prints progress every 5 s.
#[allow(clippy::print_stderr)]
fn produce(brokers: &str, topic: &str, n: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> = motstream_ingest::kafka_config(
        brokers,
        &[
            ("linger.ms", "20"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            ("compression.type", "lz4"),
            ("delivery.report.only.error", "true"),
        ],
        &BTreeMap::new(),
    )
    .create()
    .expect("producer");
    let catalog = airline_catalog();
    let mots: Vec<String> = catalog.mots.iter().map(|m| m.id.clone()).collect();
    let keys: Vec<String> = (0..10_000).map(|i| format!("j-{i}")).collect();
    let ct = Encoding::Protobuf.content_type();
    // An hour short of 3 days, so that the oldest events are still inside the 3-day window
    // when the last instance has rebuilt (50 million take minutes to produce and replay).
    let start_ms = now_ms() - THREE_DAYS_MS + 3_600_000;
    let span = (now_ms() - start_ms).max(1);
    let began = Instant::now();
    let mut last = Instant::now();
    let mut payload = Vec::new();
    for i in 0..n {
        let t = start_ms + (i128::from(i) * i128::from(span) / i128::from(n.max(1))) as i64;
        let idx = i as usize;
        let e = bench_event(&mots[idx % mots.len()], &keys[idx % keys.len()], idx, t);
        payload.clear();
        encode_into(&e, Encoding::Protobuf, &mut payload);
        let rec = BaseRecord::<str, [u8]>::to(topic)
            .key(&keys[idx % keys.len()])
            .payload(&payload)
            .timestamp(t)
            .headers(OwnedHeaders::new().insert(Header {
                key: CONTENT_TYPE_HEADER,
                value: Some(ct),
            }));
        if let Err(e) = send_when_room(&producer, rec, Duration::from_millis(1)) {
            panic!("producing to {topic}: {e}");
        }
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            let secs = began.elapsed().as_secs_f64();
            eprintln!(
                "restore: produced {i} of {n} ({:.0}/s, eta {:.0}s)",
                i as f64 / secs,
                (n - i) as f64 / (i as f64 / secs).max(1.0)
            );
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
}

struct Instance {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Instance {
    fn start(bin: &PathBuf, brokers: &str, topic: &str, state_topic: bool, name: &str) -> Self {
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .args(["run", "--log-format", "json", "--brokers", brokers])
            .args(["--topics", topic, "--dlq-topic", &format!("{topic}.dlq")])
            .args(["--group-id", &format!("{topic}-group")])
            .args(["--metrics-listen", &http.to_string()])
            .args(["--grpc-listen", "127.0.0.1:0"])
            .args(["--alerts-topic", &format!("{topic}.alerts")])
            .args(["--state-topic", if state_topic { "true" } else { "false" }])
            // The same static member for every restart: the broker hands the partitions to
            // the restarted process at once instead of waiting out the dead one's session.
            .args([
                "--kafka-property",
                &format!("group.instance.id={topic}-member"),
            ])
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("starting motstream (cargo build --release -p motstream first)");
        Self { child, http, log }
    }

    /// Waits until ready with all `n` events counted; the time it took from `since`.
    #[allow(clippy::print_stderr)]
    fn ready_with(&self, n: u64, since: Instant, limit: Duration) -> Duration {
        let mut last = Instant::now();
        loop {
            let ready = get(self.http, "/readyz").is_some_and(|(c, _)| c == 200);
            if ready {
                let counted = get(self.http, "/status?window=3d").map_or(0, |(_, v)| counted(&v));
                if counted >= n {
                    return since.elapsed();
                }
            }
            assert!(
                since.elapsed() < limit,
                "not ready with {n} events within {limit:?}; log: {}",
                self.log.display()
            );
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                eprintln!(
                    "restore: waiting for ready ({:.0}s, ready={ready})",
                    since.elapsed().as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let Ok(mut s) = TcpStream::connect(self.http) else {
            return 0.0;
        };
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn counted(status: &Value) -> u64 {
    status["mots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["amount"].as_u64())
        .sum()
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let brokers = arg(&args, "--brokers")
        .or_else(|| std::env::var("MOTSTREAM_TEST_BROKERS").ok())
        .unwrap_or_else(|| {
            eprintln!(
                "restore: no broker. Start one with `scripts/kafka up` and pass --brokers ADDR."
            );
            std::process::exit(2)
        });
    let sizes: Vec<u64> = arg(&args, "--events")
        .unwrap_or_else(|| "1000000,10000000,50000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let partitions: i32 = arg(&args, "--partitions")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let bin = arg(&args, "--bin").map_or_else(
        || {
            // target/release/deps/restore-<hash> -> target/release/motstream
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(|d| d.parent())
                .expect("target dir")
                .join("motstream")
        },
        PathBuf::from,
    );
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p motstream",
        bin.display()
    );
    let limit = Duration::from_secs(1800);
    println!("events,partitions,first_build_s,restore_s,replay_s,snapshot_bytes");
    for n in sizes {
        let topic = format!("restore-{}-{n}", std::process::id());
        // A week's retention whatever the broker's default (the project's broker keeps 24 h;
        // the history is 3 days old).
        create_topic_with(
            &brokers,
            &topic,
            partitions,
            &[("retention.ms", "604800000")],
        );
        let t0 = Instant::now();
        produce(&brokers, &topic, n);
        eprintln!(
            "restore: {n} events produced in {:.1}s",
            t0.elapsed().as_secs_f64()
        );

        let since = Instant::now();
        let a = Instance::start(&bin, &brokers, &topic, true, &format!("{topic}-a"));
        let first = a.ready_with(n, since, limit);
        // Let a tick publish the snapshots of the now idle partitions, and see them delivered.
        let deadline = Instant::now() + Duration::from_secs(30);
        while a.metric("motstream_state_snapshots_published_total") < f64::from(partitions)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(2));
        let bytes = a.metric("motstream_state_snapshot_bytes_total");
        a.kill9();

        let since = Instant::now();
        let b = Instance::start(&bin, &brokers, &topic, true, &format!("{topic}-b"));
        let restore = b.ready_with(n, since, limit);
        b.kill9();

        let since = Instant::now();
        let c = Instance::start(&bin, &brokers, &topic, false, &format!("{topic}-c"));
        let replay = c.ready_with(n, since, limit);
        c.kill9();
        eprintln!(
            "restore: {n} events over 3 days on {partitions} partitions: ready after kill -9 + restart in {:.2}s from the state topic, {:.2}s by replay (first build {:.2}s; snapshots published {bytes:.0} bytes)",
            restore.as_secs_f64(),
            replay.as_secs_f64(),
            first.as_secs_f64()
        );
        println!(
            "{n},{partitions},{:.2},{:.2},{:.2},{bytes:.0}",
            first.as_secs_f64(),
            restore.as_secs_f64(),
            replay.as_secs_f64()
        );
    }
}
