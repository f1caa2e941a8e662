//! One alert per condition across a cluster: three instances in one group on an 8-partition
//! topic, each evaluating the rules on the global view (the state topic), one of them chosen
//! by Kafka's group protocol to deliver. A MOT failing 60% produces exactly one firing and one
//! resolved transition at the webhook and on the alerts topic, with one alert id, also when
//! the delivering instance is killed (kill -9) between the two; and no instance keeps the
//! alert active once its condition has cleared.

use std::time::{Duration, Instant};

use motstream_tests::hooks::{Hit, Hooks};
use motstream_tests::service::ServiceProcess;
use motstream_tests::workload::{outcome_events, produce_all};
use motstream_tests::{consume, create_topic, message_count, unique};
use serde_json::Value;

const CATALOG: &str = "
version: 1
defaults:
  owner: { name: Platform, team: motstream-platform, contact: platform@example.com }
experiences:
  - id: airline-departure
    name: Airline departure
    manager: { name: Amara Okafor, team: customer-experience, contact: amara@example.com }
    sco: bag-drop
    mots:
      - id: bag-drop
        name: Bag drop
        owner: { name: Lars Eriksen, team: airport-ground-ops, contact: ground@example.com }
        target: 0.97
        # Short windows so that the test runs in seconds: only a floor rule over one minute.
        alert_policy:
          burn_rates: []
          floor: { below: 0.8, over: 1m, min_events: 30, severity: page }
";

fn amount(s: &Value) -> Option<u64> {
    s["mots"]
        .as_array()?
        .iter()
        .find(|m| m["mot"] == "bag-drop")?
        .get("amount")?
        .as_u64()
}

fn states(hits: &[Hit]) -> Vec<(String, String)> {
    hits.iter()
        .map(|h| {
            let v = h.json();
            (
                v["state"].as_str().unwrap_or("?").to_owned(),
                v["alert_id"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// The one instance that says it delivers, waiting for the group to pick one.
fn deliverer(svcs: &[Option<ServiceProcess>], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let flags: Vec<(usize, bool)> = svcs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                Some((i, s.status("1m")["alerts"]["deliverer"] == true))
            })
            .collect();
        let on: Vec<usize> = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
        if on.len() == 1 {
            return on[0];
        }
        assert!(
            on.len() <= 1 || Instant::now() < deadline,
            "more than one deliverer: {flags:?}"
        );
        assert!(Instant::now() < deadline, "no deliverer: {flags:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_firing_and_one_resolved_per_receiver_across_three_instances_and_a_killed_deliverer() {
    let events_topic = unique("cluster-alerts-events");
    let alerts_topic = unique("cluster-alerts-out");
    let dlq = unique("cluster-alerts-dlq");
    create_topic(&events_topic, 8).await;
    create_topic(&alerts_topic, 1).await;
    create_topic(&dlq, 1).await;
    let dir = std::env::temp_dir().join(unique("motstream-cluster-catalog"));
    std::fs::create_dir_all(&dir).expect("dir");
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).expect("catalog");
    let hooks = Hooks::start();
    let webhook_url = format!("{}/generic", hooks.base());
    let group = unique("cluster-alerts-group");
    let args = [
        "--topics",
        events_topic.as_str(),
        "--dlq-topic",
        dlq.as_str(),
        "--group-id",
        group.as_str(),
        "--catalog",
        catalog.to_str().expect("utf-8 path"),
        "--alert-webhook-url",
        webhook_url.as_str(),
        "--alerts-topic",
        alerts_topic.as_str(),
        "--alert-resolve-hold",
        "2s",
    ];
    let mut svcs: Vec<Option<ServiceProcess>> = (0..3)
        .map(|i| {
            Some(ServiceProcess::start(
                &unique(&format!("cluster-{i}")),
                &args,
            ))
        })
        .collect();

    // Healthy first: every instance sees all 100 (the global view), and one delivers. 20 s of
    // data before the failures, so that the rule's window is covered.
    produce_all(&events_topic, &outcome_events("bag-drop", 100, true));
    for s in svcs.iter().flatten() {
        s.wait_status("1m", Duration::from_secs(60), |s| {
            s["health"]["ready"] == true && amount(s) == Some(100)
        });
    }
    let first = deliverer(&svcs, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(20));

    // Degrade: 150 failures of 250 make the one-minute SMOTO rate 40%, below the 80% floor.
    produce_all(&events_topic, &outcome_events("bag-drop", 150, false));
    hooks.wait("the firing notification", Duration::from_secs(30), |h| {
        h.len() == 1
    });
    for s in svcs.iter().flatten() {
        s.wait_status("1m", Duration::from_secs(10), |s| amount(s) == Some(250));
    }

    // The deliverer dies with the alert firing; another instance takes over.
    svcs[first].take().expect("the deliverer").kill9();
    let second = deliverer(&svcs, Duration::from_secs(30));
    assert_ne!(first, second);

    // Recover: 1000 successes bring the rate to 88%, above the floor.
    produce_all(&events_topic, &outcome_events("bag-drop", 1000, true));
    hooks.wait("the resolved notification", Duration::from_secs(30), |h| {
        h.len() >= 2
    });
    // Time for a duplicate to show up if one were coming.
    std::thread::sleep(Duration::from_secs(6));
    let got = states(&hooks.hits());
    assert_eq!(got.len(), 2, "exactly two webhook notifications: {got:?}");
    assert_eq!(got[0].0, "firing", "{got:?}");
    assert_eq!(got[1].0, "resolved", "{got:?}");
    assert_eq!(
        got[0].1, got[1].1,
        "one alert id whoever delivered: {got:?}"
    );

    let msgs = consume(&alerts_topic, 2, Duration::from_secs(30));
    assert_eq!(
        message_count(&alerts_topic),
        2,
        "exactly two on the alerts topic"
    );
    for (m, want) in msgs.iter().zip(["firing", "resolved"]) {
        let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
        assert_eq!(v["state"], want);
        assert_eq!(m.key.as_deref(), Some(got[0].1.as_bytes()));
    }

    // No survivor keeps the alert active, whichever instance fired it.
    for s in svcs.iter().flatten() {
        s.wait_status("1m", Duration::from_secs(15), |s| {
            s["alerts"]["active"].as_array().is_some_and(Vec::is_empty)
        });
    }
    for s in svcs.into_iter().flatten() {
        s.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
