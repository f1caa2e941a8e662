//! gRPC watchers of `motstream run`, fed by the real broker: a watcher sees a change within
//! one interval and at most one message per MOT per interval; a watcher that never reads is
//! dropped without growing the server's memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use motstream_proto::v1 as pb;
use motstream_tests::grpc::{
    WAIT, client, client_with, event, rss_kib, send, start, threaded_producer, topics,
};
use motstream_tests::workload::total;
use motstream_tests::{now_ms, unique};
use rdkafka::producer::Producer;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_a_change_within_one_interval_and_at_most_one_message_per_mot_per_interval()
{
    let t = topics("grpc-watch", 1).await;
    let svc = start("grpc-watch", &t, &[]);
    let mut c = client(&svc).await;
    let interval = Duration::from_millis(1_000);
    let mut stream = c
        .watch_mots(pb::WatchMotsRequest {
            filter: Some(pb::MotFilter {
                experience_id: "airline-departure".into(),
                ..Default::default()
            }),
            window: "5m".into(),
            min_interval: "1s".into(),
        })
        .await
        .expect("WatchMots")
        .into_inner();
    // The snapshot: every MOT of the experience, once, before any change.
    let mut snapshot = BTreeMap::new();
    while snapshot.len() < 5 {
        let m = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("snapshot within 10 s")
            .expect("stream ok")
            .expect("stream open");
        assert!(
            snapshot.insert(m.mot_id.clone(), m.amount).is_none(),
            "one snapshot message per MOT"
        );
    }
    assert!(
        snapshot.values().all(|&a| a == 0),
        "nothing produced yet: {snapshot:?}"
    );

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Ok(Some(m)) = stream.message().await {
            if tx.send((Instant::now(), m)).is_err() {
                break;
            }
        }
    });
    // One bag-drop event; when the service has applied it (seen over HTTP), the watcher must
    // have it within one interval.
    let producer = threaded_producer();
    send(&producer, &t.events, &event("bag-drop", false, now_ms(), 0));
    producer.flush(Duration::from_secs(10)).expect("ack");
    let http = svc.http;
    let visible = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, s)) = motstream_tests::service::http_get(http, "/status?window=5m")
                && total(&s) >= 1
            {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "the event was never applied");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("poller");
    let (at, m) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an update within 10 s")
        .expect("reader alive");
    assert_eq!(
        (m.mot_id.as_str(), m.amount, m.failures),
        ("bag-drop", 1, 1)
    );
    let lag = at.saturating_duration_since(visible);
    assert!(
        lag <= interval + Duration::from_millis(250),
        "the watcher saw the change {lag:?} after it was applied (interval {interval:?})"
    );

    // A burst of 60 events over 3 s: bag-drop changes every 50 ms, yet is sent at most once
    // per interval.
    let started = Instant::now();
    for n in 1..=60 {
        send(&producer, &t.events, &event("bag-drop", true, now_ms(), n));
        producer.flush(Duration::from_secs(10)).expect("ack");
        std::thread::sleep(Duration::from_millis(50));
    }
    tokio::time::sleep(interval * 2).await;
    let mut times = vec![at];
    let mut last_amount = 1;
    while let Ok(Some((t, m))) = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await {
        assert_eq!(m.mot_id, "bag-drop", "only bag-drop changed");
        times.push(t);
        last_amount = m.amount;
    }
    assert_eq!(last_amount, 61, "the last update carries every event");
    let burst = started.elapsed();
    assert!(
        times.len() as u128 <= burst.as_millis() / interval.as_millis() + 2,
        "{} messages over {burst:?} at one per {interval:?}",
        times.len()
    );
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= interval * 7 / 10,
            "two bag-drop messages {gap:?} apart"
        );
    }
    reader.abort();
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_is_dropped_and_the_server_memory_stays_bounded() {
    const MOTS: usize = 500;
    let mut yaml = String::from(
        "version: 1\ndefaults: { target: 0.98 }\nexperiences:\n  - id: big\n    name: Big\n    \
         manager: { name: M, team: t, contact: m@example.com }\n    sco: m0000\n    mots:\n",
    );
    for i in 0..MOTS {
        yaml.push_str(&format!(
            "      - {{ id: m{i:04}, name: M{i}, channels: [kiosk], owner: {{ name: O{i}, team: t{}, contact: o@example.com }} }}\n",
            i % 7
        ));
    }
    let catalog = std::env::temp_dir().join(format!("{}.yaml", unique("grpc-big")));
    std::fs::write(&catalog, yaml).expect("catalog");
    let t = topics("grpc-stall", 1).await;
    let cat = catalog.display().to_string();
    let svc = start(
        "grpc-stall",
        &t,
        &[
            "--catalog",
            &cat,
            "--grpc-max-watchers",
            "2",
            "--grpc-watch-buffer",
            "64",
        ],
    );
    let pid = svc.child.id();

    // Traffic to every MOT, so that each changes every 100 ms, from a thread until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (topic, stop) = (t.events.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let p = threaded_producer();
            let mut n = 0u64;
            // Relaxed: a stop flag; nothing else is published through it.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = Instant::now();
                for i in 0..MOTS {
                    n += 1;
                    send(
                        &p,
                        &topic,
                        &event(&format!("m{i:04}"), !n.is_multiple_of(9), now_ms(), n),
                    );
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(t0.elapsed()));
            }
            let _ = p.flush(Duration::from_secs(10));
            n
        })
    };
    // Warm up: every MOT's rings exist before the baseline is taken.
    svc.wait_status("5m", WAIT, |s| {
        s["mots"]
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m["amount"].as_u64().unwrap_or(0) > 0))
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let baseline = rss_kib(pid);

    // A watcher on a connection with a 64 KiB window that never reads.
    let mut stalled_client = client_with(&svc, |e| {
        e.initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
    })
    .await;
    let req = || pb::WatchMotsRequest {
        min_interval: "100ms".into(),
        ..Default::default()
    };
    let mut stalled = stalled_client
        .watch_mots(req())
        .await
        .expect("stalled watcher")
        .into_inner();
    // A reader beside it measures what the stalled one is offered.
    let mut reader_client = client(&svc).await;
    let mut reader = reader_client
        .watch_mots(req())
        .await
        .expect("reading watcher")
        .into_inner();
    let read_for = Duration::from_secs(25);
    let started = Instant::now();
    let (mut bytes, mut messages) = (0usize, 0u64);
    let mut peak = baseline;
    while started.elapsed() < read_for {
        match tokio::time::timeout(Duration::from_secs(5), reader.message()).await {
            Ok(Ok(Some(m))) => {
                bytes += prost::Message::encoded_len(&m);
                messages += 1;
            }
            other => panic!("the reading watcher stopped: {other:?}\n{}", svc.log_tail()),
        }
        if messages % 500 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    peak = peak.max(rss_kib(pid));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = traffic.join().expect("traffic thread");
    drop(reader);

    // The stalled watcher was dropped: its place is free for a new watcher.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _again = loop {
        match reader_client.watch_mots(req()).await {
            Ok(s) => break s,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("the stalled watcher still holds its place: {s:?}"),
        }
    };
    assert!(
        svc.log_tail().contains("too slow; dropped")
            || std::fs::read_to_string(&svc.log)
                .unwrap_or_default()
                .contains("too slow; dropped"),
        "the server logs the drop"
    );
    // When the stalled client finally reads, it gets what was in flight, then the reason.
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("the stalled stream ended without a status"),
            Ok(Err(s)) => break s,
            Err(_) => panic!("the stalled stream neither ended nor delivered"),
        }
    };
    assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
    assert!(end.message().contains("too slowly"), "{}", end.message());

    let offered_mib = bytes as f64 / (1 << 20) as f64;
    let grown_mib = peak.saturating_sub(baseline) as f64 / 1024.0;
    // The figures, for whoever reads the test's output.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "stalled watcher: {produced} events produced, {messages} messages ({offered_mib:.1} MiB) \
         offered in {read_for:?}; server RSS {:.1} MiB at the start, peak growth {grown_mib:.1} MiB",
            baseline as f64 / 1024.0
        );
    }
    assert!(
        offered_mib >= 8.0,
        "the watchers were offered {offered_mib:.1} MiB: too little to tell"
    );
    // Buffering for the stalled watcher would grow RSS by about what was offered. Half of it
    // is the bound: jemalloc keeps freed pages for up to 10 s before returning them, so RSS
    // also holds recently freed transient memory (2.2-6.0 MiB growth measured with ~18.8 MiB
    // offered).
    assert!(
        grown_mib < offered_mib / 2.0 && grown_mib < 16.0,
        "server RSS grew {grown_mib:.1} MiB while {offered_mib:.1} MiB was offered to a watcher that never read"
    );
    svc.stop();
}
