//! The alert engine end to end: the real broker, `motstream run`, a real Alertmanager
//! (Debian's prometheus-alertmanager on a loopback port) and webhook receivers served here.
//!
//! One MOT degrades: a firing alert with its owner's labels must reach Alertmanager within
//! 2 s of the windows crossing the threshold and be routed to the owner's receiver; after
//! recovery it resolves; Alertmanager notifies once per state (our resends add nothing), and
//! the generic webhook and the alerts topic each see exactly one firing and one resolved
//! transition. A restart replays the history from the alerts topic.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use motstream_tests::hooks::{Hit, Hooks};
use motstream_tests::service::{ServiceProcess, free_port};
use motstream_tests::workload::{outcome_events, produce_all};
use motstream_tests::{consume, create_topic, message_count, unique};
use serde_json::Value;
use sha2::Sha256;

const CATALOG: &str = "
version: 1
defaults:
  owner: { name: Platform, team: motstream-platform, contact: platform@example.com }
  dashboard_url: http://grafana.invalid/d/mot?var-experience={experience}&var-mot={mot}
experiences:
  - id: airline-departure
    name: Airline departure
    manager: { name: Amara Okafor, team: customer-experience, contact: amara@example.com }
    sco: bag-drop
    mots:
      - id: bag-drop
        name: Bag drop
        channels: [kiosk, desk]
        owner: { name: Lars Eriksen, team: airport-ground-ops, contact: ground@example.com }
        target: 0.97
        runbook: https://runbooks.example.com/bag-drop
        # Short windows so that the test runs in seconds: only a floor rule over one minute.
        alert_policy:
          burn_rates: []
          floor: { below: 0.8, over: 1m, min_events: 30, severity: page }
      - id: security
        name: Security
        owner: { name: Desk, team: security-ops, contact: sec@example.com }
        target: 0.95
";

const SECRET: &str = "test-secret";

/// Alertmanager routing by team (like deploy/alertmanager/alertmanager.yml), with short
/// timers, every receiver a path on the test's webhook server.
fn am_config(hooks: &str) -> String {
    format!(
        "route:
  receiver: default
  group_by: [alertname, experience, mot]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['team=\"airport-ground-ops\"']
      receiver: airport-ground-ops
    - matchers: ['team=\"security-ops\"']
      receiver: security-ops
inhibit_rules:
  - source_matchers: ['severity=\"page\"']
    target_matchers: ['severity=\"ticket\"']
    equal: [experience, mot]
receivers:
  - name: default
    webhook_configs: [{{ url: '{hooks}/default', send_resolved: true }}]
  - name: airport-ground-ops
    webhook_configs: [{{ url: '{hooks}/airport-ground-ops', send_resolved: true }}]
  - name: security-ops
    webhook_configs: [{{ url: '{hooks}/security-ops', send_resolved: true }}]
"
    )
}

/// A running Alertmanager, killed (by its own pid) when dropped.
struct Alertmanager {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn alertmanager(hooks: &Hooks) -> Alertmanager {
    let dir = std::env::temp_dir().join(unique("motstream-am"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, am_config(&hooks.base())).expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.join("am.log")).expect("log");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting prometheus-alertmanager (Debian package; scripts/test.d installs it)");
    let am = Alertmanager {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: TempDir(dir),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while motstream_tests::service::http_get(([127, 0, 0, 1], port).into(), "/api/v2/status")
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "alertmanager did not start in 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    am
}

/// Alertmanager's alerts about `mot`, as its API lists them.
fn am_alerts(am: &Alertmanager, mot: &str) -> Vec<Value> {
    let port: u16 = am
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let (_, v) =
        motstream_tests::service::http_get(([127, 0, 0, 1], port).into(), "/api/v2/alerts")
            .expect("alertmanager API");
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["mot"] == mot)
        .cloned()
        .collect()
}

/// AM webhook notifications (`status` firing / resolved) received on `path`.
fn notifications<'a>(hits: &'a [Hit], path: &str) -> Vec<&'a Hit> {
    hits.iter().filter(|h| h.path == path).collect()
}

fn states(hits: &[&Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.json()["status"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn bag_drop(status: &Value) -> Value {
    status["mots"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mot"] == "bag-drop")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_degraded_mot_pages_its_owner_through_every_receiver_once_and_resolves() {
    let events_topic = unique("alerts-events");
    let alerts_topic = unique("alerts-out");
    create_topic(&events_topic, 2).await;
    create_topic(&alerts_topic, 1).await;
    let dlq = unique("alerts-dlq");
    create_topic(&dlq, 1).await;
    let dir = std::env::temp_dir().join(unique("motstream-alert-catalog"));
    std::fs::create_dir_all(&dir).expect("dir");
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).expect("catalog");

    let am_hooks = Hooks::start();
    let generic = Hooks::start();
    let am = alertmanager(&am_hooks);
    let webhook_url = format!("{}/generic", generic.base());
    let group = unique("alerts-group");
    let args = [
        "--topics",
        events_topic.as_str(),
        "--dlq-topic",
        dlq.as_str(),
        "--group-id",
        group.as_str(),
        "--catalog",
        catalog.to_str().expect("utf-8 path"),
        "--alertmanager-url",
        am.base.as_str(),
        "--alert-webhook-url",
        webhook_url.as_str(),
        "--alert-webhook-secret",
        SECRET,
        "--alerts-topic",
        alerts_topic.as_str(),
        "--alert-resend",
        "1s",
        "--alert-resolve-hold",
        "2s",
    ];
    let svc = ServiceProcess::start(&unique("alerts"), &args);

    // Healthy first, and the service ready (no partition rebuilding: alerts are not suppressed).
    produce_all(&events_topic, &outcome_events("bag-drop", 100, true));
    svc.wait_status("1m", Duration::from_secs(30), |s| {
        s["health"]["ready"] == true && bag_drop(s)["amount"].as_u64() == Some(100)
    });
    assert!(am_alerts(&am, "bag-drop").is_empty());

    // Degrade: 150 failures make the 1-minute SMOTO rate 40%, below the 80% floor.
    produce_all(&events_topic, &outcome_events("bag-drop", 150, false));
    let crossed = Instant::now();
    let firing = loop {
        let a = am_alerts(&am, "bag-drop");
        if let Some(a) = a.into_iter().find(|a| a["status"]["state"] == "active") {
            break a;
        }
        assert!(
            crossed.elapsed() < Duration::from_secs(10),
            "no alert reached Alertmanager; log:\n{}",
            svc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let latency = crossed.elapsed();
    assert!(
        latency <= Duration::from_secs(2),
        "the alert reached Alertmanager {latency:?} after the failures were acknowledged by the broker (at most 2 s)"
    );
    for (k, v) in [
        ("alertname", "MotSmotoFloor"),
        ("severity", "page"),
        ("experience", "airline-departure"),
        ("mot", "bag-drop"),
        ("owner", "Lars Eriksen"),
        ("team", "airport-ground-ops"),
    ] {
        assert_eq!(firing["labels"][k], v, "label {k}: {firing:#}");
    }
    let ann = &firing["annotations"];
    assert_eq!(ann["smoto_rate"], "40.00%", "{ann:#}");
    assert_eq!(ann["target"], "97.00%");
    assert_eq!(ann["runbook_url"], "https://runbooks.example.com/bag-drop");
    assert_eq!(
        ann["dashboard_url"],
        "http://grafana.invalid/d/mot?var-experience=airline-departure&var-mot=bag-drop"
    );
    assert!(
        ann["top_failure_reasons"]
            .as_str()
            .unwrap_or("")
            .starts_with("kiosk-offline (150)"),
        "{ann:#}"
    );
    assert!(
        ann["most_affected_channel"]
            .as_str()
            .unwrap_or("")
            .starts_with("kiosk"),
        "{ann:#}"
    );

    // Routed to the owner's receiver.
    am_hooks.wait(
        "the page at the owner's receiver",
        Duration::from_secs(15),
        |h| states(&notifications(h, "/airport-ground-ops")) == ["firing"],
    );
    let active = svc.status("1m")["alerts"]["active"].clone();
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{active:#}");
    assert_eq!(active[0]["state"], "firing");

    // Recover: 1000 successes bring the rate to 88%, above the floor and its hysteresis band.
    produce_all(&events_topic, &outcome_events("bag-drop", 1000, true));
    am_hooks.wait(
        "the resolve at the owner's receiver",
        Duration::from_secs(30),
        |h| states(&notifications(h, "/airport-ground-ops")) == ["firing", "resolved"],
    );
    // Resends continue for a few intervals: they must not notify again.
    std::thread::sleep(Duration::from_secs(6));
    let hits = am_hooks.hits();
    assert_eq!(
        states(&notifications(&hits, "/airport-ground-ops")),
        ["firing", "resolved"],
        "one notification per state"
    );
    assert!(
        notifications(&hits, "/default").is_empty(),
        "routed by team, not to the default"
    );
    assert!(notifications(&hits, "/security-ops").is_empty());

    // The generic webhook: exactly one firing and one resolved, signed.
    let g = generic.hits();
    let payloads: Vec<Value> = g.iter().map(Hit::json).collect();
    assert_eq!(
        payloads
            .iter()
            .map(|p| p["state"].as_str().unwrap_or("?"))
            .collect::<Vec<_>>(),
        ["firing", "resolved"],
        "{payloads:#?}"
    );
    assert_eq!(payloads[0]["alert_id"], payloads[1]["alert_id"]);
    assert_eq!(payloads[0]["labels"]["team"], "airport-ground-ops");
    for h in &g {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(&h.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(h.headers.get("x-motstream-signature"), Some(&want));
    }

    // The alerts topic: the same two transitions, keyed by alert id.
    let msgs = consume(&alerts_topic, 2, Duration::from_secs(30));
    assert_eq!(
        message_count(&alerts_topic),
        2,
        "exactly two transitions produced"
    );
    let id = payloads[0]["alert_id"].as_str().expect("alert id");
    for (m, want) in msgs.iter().zip(["firing", "resolved"]) {
        let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
        assert_eq!(v["state"], want);
        assert_eq!(m.key.as_deref(), Some(id.as_bytes()));
    }

    // /status shows no active alert and both transitions.
    let s = svc.status("1m");
    assert_eq!(s["alerts"]["active"].as_array().map(Vec::len), Some(0));
    let recent = |s: &Value| {
        s["alerts"]["recent"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["alert_id"].as_str().unwrap_or("").to_owned(),
                    t["state"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        recent(&s),
        [
            (id.to_owned(), "resolved".to_owned()),
            (id.to_owned(), "firing".to_owned())
        ]
    );

    // A restart replays the history from the alerts topic.
    svc.stop();
    let svc = ServiceProcess::start(&unique("alerts-restarted"), &args);
    let s = svc.wait_status("1m", Duration::from_secs(30), |s| {
        s["health"]["ready"] == true && recent(s).len() == 2
    });
    assert_eq!(
        recent(&s),
        [
            (id.to_owned(), "resolved".to_owned()),
            (id.to_owned(), "firing".to_owned())
        ],
        "history after restart"
    );
    assert_eq!(s["alerts"]["active"].as_array().map(Vec::len), Some(0));
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
