//! `motstream loadgen` against the real broker: it delivers exactly the requested count, stops
//! at whichever of count and duration comes first and says which, says when the asked rate is
//! not reached, and exits as its --help documents (0 delivered, 3 not delivered).

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use motstream_core::Decoder;
use motstream_core::codec::CONTENT_TYPE_HEADER;
use motstream_tests::service::binary;
use motstream_tests::{brokers, consume, create_topic, message_count, now_ms, unique};

/// Exit status and stderr of `motstream loadgen ARGS`, killed (failing the test) after
/// `timeout`.
fn loadgen(name: &str, args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    let log = std::env::temp_dir().join(format!("{name}.log"));
    let mut child = Command::new(binary())
        .arg("loadgen")
        .args(args)
        .env_remove("MOTSTREAM_BROKERS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starting loadgen");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for loadgen") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "loadgen {args:?} still running after {timeout:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).expect("loadgen's log");
    (status.code(), err)
}

/// The final line (the one naming the topic).
fn final_line<'a>(err: &'a str, topic: &str) -> &'a str {
    let needle = format!(" sent to {topic} in ");
    err.lines()
        .find(|l| l.starts_with("loadgen: ") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no final line in:\n{err}"))
}

/// The number of events the final line says were sent.
fn sent(line: &str) -> i64 {
    line.trim_start_matches("loadgen: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

/// Every message of `topic` decodes, is keyed by its journey id, and no event id repeats.
fn check_events(topic: &str, n: usize) {
    let got = consume(topic, n, Duration::from_secs(120));
    let decoder = Decoder::default();
    let mut ids = HashSet::with_capacity(n);
    for m in &got {
        let e = decoder
            .decode(&m.payload, m.header(CONTENT_TYPE_HEADER), now_ms())
            .expect("every generated event is valid");
        assert_eq!(
            m.key.as_deref(),
            e.journey_id.as_deref().map(str::as_bytes),
            "keyed by journey id"
        );
        ids.insert(
            format!("{:?}", m.header(CONTENT_TYPE_HEADER)) + e.event_id.as_deref().unwrap_or(""),
        );
    }
    assert_eq!(ids.len(), n, "no event twice");
    assert_eq!(
        message_count(topic),
        n as i64,
        "exactly the requested count, nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_count_is_delivered_in_both_formats() {
    let topic = unique("loadgen");
    create_topic(&topic, 4).await;
    for format in ["proto", "json"] {
        let (code, err) = loadgen(
            &topic,
            &[
                "--brokers",
                &brokers(),
                "--topic",
                &topic,
                "--rate",
                "2000",
                "--count",
                "3000",
                "--format",
                format,
            ],
            Duration::from_secs(120),
        );
        assert_eq!(code, Some(0), "{err}");
        let line = final_line(&err, &topic);
        assert!(
            line.contains("3000 acknowledged, 0 failed") && line.contains("asked 2000/s)"),
            "{line}"
        );
        assert!(line.ends_with("stopped: count reached (3000)"), "{line}");
    }
    check_events(&topic, 6000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaced_count_delivers_exactly_the_count_and_exits_0() {
    let topic = unique("loadgen-max");
    create_topic(&topic, 4).await;
    let (code, err) = loadgen(
        &topic,
        &[
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--rate",
            "0",
            "--count",
            "100000",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{err}");
    let line = final_line(&err, &topic);
    assert_eq!(sent(line), 100_000, "{line}");
    for part in [
        "100000 acknowledged, 0 failed",
        "as fast as possible",
        "delivery latency p50 ",
        " MB/s; ",
        "stopped: count reached (100000)",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    check_events(&topic, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_up_before_the_count_stops_the_run_and_says_so() {
    let topic = unique("loadgen-dur");
    create_topic(&topic, 4).await;
    let (code, err) = loadgen(
        &topic,
        &[
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--rate",
            "1000",
            "--count",
            "100000",
            "--duration",
            "1s",
        ],
        Duration::from_secs(120),
    );
    // Everything sent was delivered: not reaching the count is reported, not an error.
    assert_eq!(code, Some(0), "{err}");
    let line = final_line(&err, &topic);
    let n = sent(line);
    assert!(
        line.ends_with(&format!(
            "stopped: --duration 1s was up first: count NOT reached ({n} of 100000)"
        )),
        "{line}"
    );
    assert!(n > 0 && n < 100_000, "{line}");
    assert!(
        line.contains(&format!("{n} acknowledged, 0 failed")),
        "{line}"
    );
    // It stopped at 1 s of sending (the line prints the time to two decimals).
    let secs: f64 = line
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line}"));
    assert!((1.0..1.5).contains(&secs), "{line}");
    assert_eq!(message_count(&topic), n, "what it sent, all of it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_rate_is_reported_in_progress_and_final_lines() {
    let topic = unique("loadgen-fast");
    create_topic(&topic, 4).await;
    // No machine sends fifty million events a second through one producer.
    let (code, err) = loadgen(
        &topic,
        &[
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--rate",
            "50000000",
            "--duration",
            "3s",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(code, Some(0), "{err}");
    let progress = err
        .lines()
        .find(|l| l.starts_with("loadgen: ") && l.contains(" sent ("))
        .unwrap_or_else(|| panic!("no progress line in:\n{err}"));
    assert!(
        progress.contains("asked 50000000/s: rate NOT reached"),
        "{progress}"
    );
    let line = final_line(&err, &topic);
    assert!(
        line.contains("asked 50000000/s: rate NOT reached"),
        "{line}"
    );
    assert!(line.ends_with("stopped: --duration 3s was up"), "{line}");
}

#[test]
fn undelivered_events_exit_3_saying_how_many() {
    // Nothing listens on this port: every event times out undelivered.
    let port = motstream_tests::service::free_port();
    let topic = unique("loadgen-nobroker");
    let (code, err) = loadgen(
        &topic,
        &[
            "--brokers",
            &format!("127.0.0.1:{port}"),
            "--topic",
            &topic,
            "--count",
            "50",
            "--rate",
            "0",
            "--kafka-property",
            "message.timeout.ms=1000",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(3), "{err}");
    let line = final_line(&err, &topic);
    assert!(line.contains("0 acknowledged, 50 failed"), "{line}");
    assert!(
        err.contains("error: 50 of 50 events were not delivered"),
        "{err}"
    );
}
