//! The broker stops for ten seconds mid-stream and comes back: nothing lost, nothing counted
//! twice, and the service is healthy again without a restart. Its own test binary, because it
//! stops the broker that every other test uses (cargo runs test binaries one at a time).

use std::process::Command;
use std::time::Duration;

use motstream_tests::service::{ServiceProcess, Topics};
use motstream_tests::workload::{counts, produce_all, total, workload};
use motstream_tests::{now_ms, unique};

fn kafka(action: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka");
    let status = Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .expect("running scripts/kafka");
    assert!(status.success(), "scripts/kafka {action} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_for_ten_seconds_loses_nothing_and_the_service_recovers_by_itself() {
    let t = Topics::create("outage", 4).await;
    let now = now_ms();
    let (before, mut truth) = workload("outage1", 20_000, 100, 5, now, Duration::from_secs(60));
    let (after, truth2) = workload("outage2", 20_000, 100, 6, now, Duration::from_secs(60));
    truth.add(&truth2);

    let svc = ServiceProcess::start_on(&unique("outage"), &t);
    produce_all(&t.events, &before);
    svc.wait_status("1h", Duration::from_secs(120), |s| {
        total(s) >= truth.valid() - truth2.valid()
    });

    kafka("pause");
    let down = std::time::Instant::now();
    // While the broker is away the service says so instead of pretending to be ready.
    let saw_unready = {
        let mut saw = false;
        while down.elapsed() < Duration::from_secs(10) {
            let (code, _) = svc.get("/readyz");
            saw |= code == 503;
            std::thread::sleep(Duration::from_millis(500));
        }
        saw
    };
    kafka("resume");
    produce_all(&t.events, &after);

    let status = svc.wait_status("1h", Duration::from_secs(180), |s| {
        total(s) >= truth.valid()
    });
    assert_eq!(counts(&status).mots, truth.mots);
    assert_eq!(counts(&status).unidentified, truth.unidentified);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        counts(&svc.status("1h")).mots,
        truth.mots,
        "nothing counted twice after recovery"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while svc.get("/readyz").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again within 60 s: {}",
            svc.get("/readyz").1
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(saw_unready, "readiness never reported the outage");
    svc.stop();
}
