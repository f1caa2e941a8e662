//! `motstream run` against the real broker: exact counts, dead letters, crash and restart, and
//! two instances sharing a consumer group.

use std::time::Duration;

use motstream_tests::service::{ServiceProcess, Topics};
use motstream_tests::workload::{Truth, counts, merged, produce_all, total, workload};
use motstream_tests::{consume, message_count, now_ms, unique, wait_for};

const WAIT: Duration = Duration::from_secs(180);

/// These tests cover rebuilding by replay (the fallback when no snapshot exists) and the
/// per-instance view, so the state topic is off; `state_topic.rs` covers it.
fn start(name: &str, t: &Topics) -> ServiceProcess {
    ServiceProcess::start(
        &unique(name),
        &[
            "--topics",
            &t.events,
            "--dlq-topic",
            &t.dlq,
            "--group-id",
            &t.group,
            "--state-topic",
            "false",
        ],
    )
}

/// Events the instance replayed to rebuild its partitions (from its health report).
fn replayed(status: &serde_json::Value) -> i64 {
    status["health"]["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["rebuild_until"].as_i64().unwrap_or(0) - p["rebuild_from"].as_i64().unwrap_or(0))
        .sum()
}

fn assert_exact(got: &Truth, want: &Truth) {
    assert_eq!(
        got.mots, want.mots,
        "per-MOT (magic, misery) counts differ from the ground truth"
    );
    assert_eq!(
        got.unidentified, want.unidentified,
        "unidentified MOT counts differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_mixed_events_count_exactly_and_malformed_ones_are_dead_lettered_with_reasons()
 {
    let t = Topics::create("exact", 4).await;
    let (msgs, truth) = workload("exact", 100_000, 100, 1, now_ms(), Duration::from_secs(90));
    assert_eq!(truth.rejects.len(), 1_000);
    let svc = start("exact", &t);
    produce_all(&t.events, &msgs);
    let want = truth.valid();
    let status = svc.wait_status("1h", WAIT, |s| total(s) >= want);
    assert_exact(&counts(&status), &truth);

    let dead = consume(&t.dlq, truth.rejects.len(), Duration::from_secs(60));
    let mut seen = std::collections::BTreeMap::new();
    for d in &dead {
        let key = String::from_utf8(d.key.clone().expect("dead letters keep their key"))
            .expect("utf-8 key");
        let code = std::str::from_utf8(
            d.header("motstream-reason-code")
                .expect("reason code header"),
        )
        .expect("utf-8");
        let reason = std::str::from_utf8(d.header("motstream-reason").expect("reason header"))
            .expect("utf-8");
        assert!(!reason.is_empty());
        assert_eq!(
            d.header("motstream-source-topic"),
            Some(t.events.as_bytes())
        );
        assert!(d.header("motstream-source-offset").is_some());
        let original = msgs
            .iter()
            .find(|m| m.key == key)
            .expect("a message we sent");
        assert_eq!(
            d.payload, original.payload,
            "the dead letter carries the original payload"
        );
        if let Some(ct) = original.content_type {
            assert_eq!(
                d.header("content-type"),
                Some(ct.as_bytes()),
                "original headers are kept"
            );
        }
        seen.insert(key, code.to_owned());
    }
    let want_rejects: std::collections::BTreeMap<String, String> = truth
        .rejects
        .iter()
        .map(|(k, v)| (k.clone(), (*v).to_owned()))
        .collect();
    assert_eq!(
        seen, want_rejects,
        "the DLQ holds exactly the malformed messages, each with its reason"
    );
    let (code, ready) = svc.get("/readyz");
    assert_eq!(code, 200, "{ready}");
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_mid_stream_and_restart_loses_nothing_and_counts_nothing_twice() {
    let t = Topics::create("crash", 4).await;
    let now = now_ms();
    let (first, mut truth) = workload("crash1", 40_000, 200, 2, now, Duration::from_secs(60));
    let (second, truth2) = workload("crash2", 40_000, 200, 3, now, Duration::from_secs(60));
    truth.add(&truth2);

    let svc = start("crash-a", &t);
    produce_all(&t.events, &first);
    // Mid-stream: some of the first half applied (and committed), not necessarily all.
    svc.wait_status("1h", WAIT, |s| total(s) >= 10_000);
    svc.kill9();
    produce_all(&t.events, &second);

    let svc = start("crash-b", &t);
    let want = truth.valid();
    let status = svc.wait_status("1h", WAIT, |s| total(s) >= want);
    assert_exact(&counts(&status), &truth);
    assert!(
        replayed(&status) > 0,
        "the restarted instance rebuilt its windows by replaying what was committed"
    );
    // Settled: nothing more arrives later (a double count would push it past the truth).
    std::thread::sleep(Duration::from_secs(3));
    assert_exact(&counts(&svc.status("1h")), &truth);
    // Every reject is dead-lettered (the crash may repeat some), and nothing else is.
    let want_keys: std::collections::BTreeSet<String> = truth.rejects.keys().cloned().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = usize::try_from(message_count(&t.dlq)).unwrap_or(0);
        let dead = consume(&t.dlq, n, Duration::from_secs(60));
        let keys: std::collections::BTreeSet<String> = dead
            .iter()
            .map(|d| {
                String::from_utf8(d.key.clone().expect("dead letters keep their key"))
                    .expect("utf-8 key")
            })
            .collect();
        if keys == want_keys {
            break;
        }
        assert!(
            keys.is_subset(&want_keys) && std::time::Instant::now() < deadline,
            "the DLQ holds {} distinct keys, {} not malformed; {} malformed ones missing",
            keys.len(),
            keys.difference(&want_keys).count(),
            want_keys.difference(&keys).count()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_partitions_merge_exactly_and_the_survivor_takes_over() {
    let t = Topics::create("pair", 4).await;
    let (msgs, truth) = workload("pair", 40_000, 100, 4, now_ms(), Duration::from_secs(60));
    let a = start("pair-a", &t);
    let b = start("pair-b", &t);
    // Produce only once the group has split the partitions: otherwise the first instance can
    // count everything before the second joins, and the split is never exercised.
    let owned = |s: &serde_json::Value| s["health"]["partitions"].as_array().map_or(0, Vec::len);
    wait_for(
        WAIT,
        Duration::from_millis(250),
        || {
            let (pa, pb) = (owned(&a.status("1h")), owned(&b.status("1h")));
            if pa > 0 && pb > 0 && pa + pb == 4 {
                Ok(())
            } else {
                Err((pa, pb))
            }
        },
        |(pa, pb)| format!("the group never split the partitions: {pa} and {pb}"),
    );
    produce_all(&t.events, &msgs);
    let want = truth.valid();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (sa, sb) = (a.status("1h"), b.status("1h"));
        if total(&sa) + total(&sb) >= want {
            assert_exact(&merged(&[sa.clone(), sb.clone()]), &truth);
            let (pa, pb) = (owned(&sa), owned(&sb));
            assert_eq!(pa + pb, 4, "every partition owned once: {pa} + {pb}");
            assert!(
                pa > 0 && pb > 0,
                "partitions split between the instances: {pa} and {pb}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "merged total {} of {want}",
            total(&sa) + total(&sb)
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    a.stop();
    // The survivor is assigned everything, rebuilds the partitions it took over, and alone
    // counts every event exactly once.
    let status = b.wait_status("1h", WAIT, |s| {
        s["health"]["partitions"].as_array().map_or(0, Vec::len) == 4
            && s["health"]["ready"] == true
            && total(s) >= want
    });
    assert_exact(&counts(&status), &truth);
    assert!(
        replayed(&status) > 0,
        "the survivor rebuilt the partitions it took over"
    );
    b.stop();
}
