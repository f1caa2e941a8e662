//! A broker outage of 60 s (longer than the 6 s session, so every member's assignment is lost)
//! with one and with two instances in one group on an 8-partition topic: `/readyz` is 503
//! while the broker is down, every instance rejoins and is ready within 15 s of the broker's
//! return, the counts are exact, and SIGTERM stops each within the documented 10 s, as SIGINT
//! does an instance in the middle of the outage.
//!
//! Its own test binary, because it stops the broker every other test uses (cargo runs test
//! binaries one at a time), and its two tests take one lock so that neither pauses the broker
//! under the other. `scripts/outage-repeat` runs it five times.
//! `MOTSTREAM_OUTAGE_SECS` shortens the outage for a quick look (default 60).

use std::process::Command;
use std::time::{Duration, Instant};

use motstream_tests::service::{ServiceProcess, Topics};
use motstream_tests::workload::{Truth, merged, produce_all, total, workload};
use motstream_tests::{now_ms, unique};

/// Held for the whole of a scenario: the broker is shared by both tests of this binary.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Each instance answers for its own partitions (the state topic's global view is off), so
/// that the instances' counts add up to the truth and moved partitions are rebuilt by replay.
const REPLAY: &[&str] = &["--state-topic", "false"];
/// Readiness may trail the broker's departure by this much (one statistics report).
const DETECT: Duration = Duration::from_secs(2);
/// Every instance is ready again within this long of the broker's return.
const RECOVER: Duration = Duration::from_secs(15);
/// `motstream run` exits within this long of SIGINT or SIGTERM (`SHUTDOWN_WITHIN`).
const STOP_BOUND: Duration = Duration::from_secs(10);

fn outage() -> Duration {
    let secs = std::env::var("MOTSTREAM_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn kafka(action: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka");
    let status = Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .expect("running scripts/kafka");
    assert!(status.success(), "scripts/kafka {action} failed");
}

/// Resumes the broker when a test fails while it is paused, so the tests after it find one.
struct ResumeOnDrop(bool);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        if self.0 {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka");
            let _ = Command::new("bash").arg(script).arg("resume").status();
        }
    }
}

fn ready(s: &ServiceProcess) -> bool {
    s.get("/readyz").0 == 200
}

/// Waits until the instances' merged counts reach `truth`, then checks them exactly.
fn wait_exact(svcs: &[ServiceProcess], truth: &Truth, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses: Vec<_> = svcs.iter().map(|s| s.status("1h")).collect();
        let sum: u64 = statuses.iter().map(total).sum();
        if sum >= truth.valid() {
            let got = merged(&statuses);
            assert_eq!(got.mots, truth.mots, "{what}: per-MOT counts");
            assert_eq!(got.unidentified, truth.unidentified, "{what}: unidentified");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {sum} of {} events counted within {timeout:?}; logs:\n{}",
            truth.valid(),
            svcs.iter()
                .map(|s| s.log_tail())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `signal` (`TERM`, `INT`) and the time to exit, which must be within [`STOP_BOUND`] and
/// clean.
fn stop_timed(mut s: ServiceProcess, signal: &str) -> Duration {
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &s.child.id().to_string()])
        .status();
    loop {
        if let Ok(Some(status)) = s.child.try_wait() {
            // Measured when the exit is seen: up to one poll late, never early.
            let took = t0.elapsed();
            assert!(
                status.success(),
                "exited with {status} after SIG{signal}; log:\n{}",
                s.log_tail()
            );
            // Checked here too: the check below runs only while the process is up, so an exit
            // first seen past the bound would pass it.
            assert!(
                took < STOP_BOUND,
                "exited {took:?} after SIG{signal}, not within {STOP_BOUND:?}; log:\n{}",
                s.log_tail()
            );
            return took;
        }
        assert!(
            t0.elapsed() < STOP_BOUND,
            "not stopped within {STOP_BOUND:?} of SIG{signal}; log:\n{}",
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn outage_scenario(instances: usize) {
    let _broker = BROKER.lock().await;
    let name = format!("outage{instances}");
    let t = Topics::create(&name, 8).await;
    let now = now_ms();
    let spread = Duration::from_secs(60);
    // Small enough that rebuilding after the lost assignment takes well under a second even on
    // a loaded machine: the time to ready measures the rejoin, not the replay.
    let (before, mut truth) = workload(&format!("{name}a"), 10_000, 100, 11, now, spread);
    let (after, truth2) = workload(&format!("{name}b"), 10_000, 100, 12, now, spread);

    let svcs: Vec<ServiceProcess> = (0..instances)
        .map(|i| ServiceProcess::start_on_with(&unique(&format!("{name}-{i}")), &t, REPLAY))
        .collect();
    // One more instance, in a group of its own so the counts above are not shared with it:
    // it gets SIGINT in the middle of the outage, when its session is long lost.
    let probe_group = unique(&format!("{name}-sigint-group"));
    let sigint = ServiceProcess::start(
        &unique(&format!("{name}-sigint")),
        &[
            "--topics",
            &t.events,
            "--dlq-topic",
            &t.dlq,
            "--group-id",
            &probe_group,
        ],
    );
    produce_all(&t.events, &before);
    wait_exact(&svcs, &truth, Duration::from_secs(120), "before the outage");
    // Ready and every partition held once. With cooperative rebalancing the second instance's
    // share arrives in a second round, after both already say ready: wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held: Vec<usize> = svcs
            .iter()
            .map(|s| s.get("/readyz").1["partitions_held"].as_u64().unwrap_or(0) as usize)
            .collect();
        if svcs.iter().all(ready) && held.iter().sum::<usize>() == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all ready with every partition held once before the outage: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    kafka("pause");
    let mut paused = ResumeOnDrop(true);
    let down = Instant::now();
    let mut ready_while_down = Vec::new();
    let mut probes = 0;
    let mut sigint = Some(sigint);
    let mut sigint_exit = None;
    while down.elapsed() < outage() {
        if down.elapsed() >= outage() * 2 / 3
            && let Some(p) = sigint.take()
        {
            sigint_exit = Some(stop_timed(p, "INT"));
        }
        for (i, s) in svcs.iter().enumerate() {
            let (code, body) = s.get("/readyz");
            probes += 1;
            if code != 503 && down.elapsed() >= DETECT {
                ready_while_down.push(format!(
                    "instance {i} at {:.1} s: {code} {body}",
                    down.elapsed().as_secs_f64()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    kafka("resume");
    paused.0 = false;
    let back = Instant::now();
    let mut ready_after = vec![None; svcs.len()];
    while ready_after.iter().any(Option::is_none) && back.elapsed() < RECOVER {
        for (i, s) in svcs.iter().enumerate() {
            if ready_after[i].is_none() && ready(s) {
                ready_after[i] = Some(back.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "outage with {instances} instance(s): {:.0} s down, {probes} /readyz probes, \
             {} ready while down; ready after return: {ready_after:?}",
            outage().as_secs_f64(),
            ready_while_down.len(),
        );
    }
    assert!(
        ready_while_down.is_empty(),
        "/readyz said ready while the broker was down:\n{}",
        ready_while_down.join("\n")
    );
    for (i, r) in ready_after.iter().enumerate() {
        assert!(
            r.is_some(),
            "instance {i} not ready within {RECOVER:?} of the broker's return: {}\nlog:\n{}",
            svcs[i].get("/readyz").1,
            svcs[i].log_tail()
        );
    }

    produce_all(&t.events, &after);
    truth.add(&truth2);
    wait_exact(&svcs, &truth, Duration::from_secs(120), "after the outage");
    std::thread::sleep(Duration::from_secs(3));
    wait_exact(
        &svcs,
        &truth,
        Duration::ZERO,
        "3 s later (nothing counted twice)",
    );
    let held: Vec<usize> = svcs
        .iter()
        .map(|s| s.get("/readyz").1["partitions_held"].as_u64().unwrap_or(0) as usize)
        .collect();
    assert_eq!(
        held.iter().sum::<usize>(),
        8,
        "every partition held once after: {held:?}"
    );
    let stops: Vec<Duration> = svcs.into_iter().map(|s| stop_timed(s, "TERM")).collect();
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "outage with {instances} instance(s): SIGINT during the outage exited in \
             {sigint_exit:?}; SIGTERM after it in {stops:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_through_a_60_s_outage_is_unready_while_down_and_ready_within_15_s_of_return()
{
    outage_scenario(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_through_a_60_s_outage_both_rejoin_within_15_s_with_exact_counts() {
    outage_scenario(2).await;
}
