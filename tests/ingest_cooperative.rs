//! Cooperative rebalancing: a second instance joining the group while events flow takes half of
//! the first one's partitions, and only those: the first keeps the others' windows, live,
//! without replaying them, and the two instances' counts add up to the ground truth exactly
//! (what the first had fetched but not applied of a partition it gave up is the second's to
//! apply). And an instance the group gives no partition is ready and says it holds none.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use motstream_tests::service::{ServiceProcess, Topics};
use motstream_tests::workload::{merged, produce_all, total, workload};
use motstream_tests::{now_ms, unique};
use serde_json::Value;

const PARTITIONS: usize = 8;
/// Each instance answers for its own partitions (the state topic's global view is off), so
/// that the instances' counts add up to the truth and moved partitions are rebuilt by replay.
const REPLAY: &[&str] = &["--state-topic", "false"];

/// The partitions an instance's `/readyz` lists, with their states.
fn held(s: &ServiceProcess) -> Vec<(i64, String)> {
    s.get("/readyz").1["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap_or(-1),
                p["state"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// Partitions named by log lines whose message is `message`.
fn logged(s: &ServiceProcess, message: &str) -> Vec<i64> {
    std::fs::read_to_string(&s.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .filter_map(|v| v["partition"].as_i64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_instance_moves_only_the_partitions_it_takes_and_counts_stay_exact() {
    let t = Topics::create("coop", PARTITIONS as i32).await;
    let now = now_ms();
    let spread = Duration::from_secs(60);
    let (first, mut truth) = workload("coop1", 20_000, 100, 21, now, spread);
    let (second, truth2) = workload("coop2", 20_000, 100, 22, now, spread);

    let a = ServiceProcess::start_on_with(&unique("coop-a"), &t, REPLAY);
    produce_all(&t.events, &first);
    a.wait_status("1h", Duration::from_secs(120), |s| {
        total(s) >= truth.valid()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.get("/readyz").0 != 200 || held(&a).len() != PARTITIONS {
        assert!(
            Instant::now() < deadline,
            "A not ready with every partition: {}",
            a.get("/readyz").1
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The second half flows while B joins: 40 chunks over about 4 s.
    let flow = {
        let events = t.events.clone();
        std::thread::spawn(move || {
            for chunk in second.chunks(500) {
                produce_all(&events, chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let b = ServiceProcess::start_on_with(&unique("coop-b"), &t, REPLAY);
    // Until B holds its share: A's samples, to check that what A keeps never leaves `live`.
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (ha, hb) = (held(&a), held(&b));
        let settled = ha.len() + hb.len() == PARTITIONS
            && !hb.is_empty()
            && ha.iter().chain(&hb).all(|(_, st)| st == "live")
            && a.get("/readyz").0 == 200
            && b.get("/readyz").0 == 200;
        samples.push(ha.clone());
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle within 90 s: A {ha:?}, B {hb:?}\nA:\n{}\nB:\n{}",
            a.log_tail(),
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let kept: BTreeSet<i64> = held(&a).into_iter().map(|(p, _)| p).collect();
    let taken: BTreeSet<i64> = held(&b).into_iter().map(|(p, _)| p).collect();
    let revoked: BTreeSet<i64> = logged(&a, "partition revoked").into_iter().collect();
    assert_eq!(
        revoked, taken,
        "A gave up exactly what B took (kept {kept:?})"
    );
    assert!(
        !kept.is_empty() && !taken.is_empty(),
        "{kept:?} / {taken:?}"
    );
    let assigned_to_a = logged(&a, "partition assigned");
    assert_eq!(
        assigned_to_a.len(),
        PARTITIONS,
        "A was assigned each partition once, at start, and never again: {assigned_to_a:?}"
    );
    for sample in &samples {
        for (p, st) in sample {
            if kept.contains(p) {
                assert_eq!(st, "live", "kept partition {p} left live: {sample:?}");
            }
        }
    }

    flow.join().expect("the producing thread");
    truth.add(&truth2);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let statuses = [a.status("1h"), b.status("1h")];
        let sum: u64 = statuses.iter().map(total).sum();
        if sum >= truth.valid() {
            let got = merged(&statuses);
            assert_eq!(got.mots, truth.mots);
            assert_eq!(got.unidentified, truth.unidentified);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sum} of {} counted",
            truth.valid()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    b.stop();
    a.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_the_group_gives_no_partition_is_ready_and_says_it_holds_none() {
    let t = Topics::create("nopart", 1).await;
    let a = ServiceProcess::start_on_with(&unique("nopart-a"), &t, REPLAY);
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.get("/readyz").0 != 200 || held(&a).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "A not ready: {}",
            a.get("/readyz").1
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let b = ServiceProcess::start_on_with(&unique("nopart-b"), &t, REPLAY);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, r) = b.get("/readyz");
        if code == 200 {
            assert_eq!(r["partitions_held"], 0, "{r}");
            let note = r["notes"][0].as_str().unwrap_or_default();
            assert!(note.contains("holds no partitions"), "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "B not ready: {r}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, h) = b.get("/healthz");
    assert_eq!(code, 200, "{h}");
    assert!(
        h["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("holds no partitions")),
        "{h}"
    );
    assert_eq!(held(&a).len(), 1, "A kept its partition");
    b.stop();
    a.stop();
}
