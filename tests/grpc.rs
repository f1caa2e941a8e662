//! The gRPC query service of `motstream run`, fed by the real broker, through a tonic client
//! over loopback: answers equal the ground truth of what was produced; each bad input gets its
//! status naming the field; the watcher limit, the token and the deadline hold; health follows
//! ingest's readiness. Watchers: tests/grpc_watch.rs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_client::MotQueryClient;
use motstream_tests::grpc::{WAIT, client, close, ep_connect, expect_err, start, topics};
use motstream_tests::workload::{airline, produce_all, total, workload};
use motstream_tests::{now_ms, unique};
use tonic::Code;
use tonic::transport::Endpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_ground_truth_of_what_was_produced() {
    let t = topics("grpc-truth", 4).await;
    let (msgs, truth) = workload("grpct", 20_000, 100, 21, now_ms(), Duration::from_secs(90));
    let svc = start("grpc-truth", &t, &[]);
    produce_all(&t.events, &msgs);
    let want = truth.valid();
    svc.wait_status("1h", WAIT, |s| total(s) >= want);
    let mut c = client(&svc).await;
    let catalog = airline();

    // ListMots, two to a page, by amount.
    let mut listed = BTreeMap::new();
    let mut amounts = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = c
            .list_mots(pb::ListMotsRequest {
                order_by: pb::OrderBy::Amount.into(),
                window: "1h".into(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListMots")
            .into_inner();
        pages += 1;
        for m in &r.mots {
            listed.insert(m.mot_id.clone(), (m.successes, m.failures));
            amounts.push(m.amount);
        }
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(pages, 3, "5 MOTs two to a page");
    assert_eq!(listed, truth.mots, "ListMots (magic, misery) per MOT");
    assert!(
        amounts.windows(2).all(|w| w[0] >= w[1]),
        "ordered by amount: {amounts:?}"
    );

    // GetMot over two windows that both hold every event.
    for (id, &(ok, bad)) in &truth.mots {
        // The alert engine runs on this workload too: a MOT's alert state must be what its
        // alert history says, whenever that did not change during the call.
        let before = alert_state_from_history(&mut c, id).await;
        let r = c
            .get_mot(pb::GetMotRequest {
                mot_id: id.clone(),
                windows: vec!["1h".into(), "10m".into()],
            })
            .await
            .expect("GetMot")
            .into_inner();
        let after = alert_state_from_history(&mut c, id).await;
        let info = r.mot.expect("catalog facts");
        let m = catalog.mot(catalog.mot_idx(id).expect("catalog MOT"));
        assert_eq!(
            (info.owner_team.as_str(), info.target),
            (m.owner.team.as_str(), m.target)
        );
        assert_eq!(r.windows.len(), 2);
        for s in &r.windows {
            assert_eq!(
                (s.successes, s.failures, s.amount),
                (ok, bad, ok + bad),
                "{id} over {}",
                s.window
            );
            let rate = ok as f64 / (ok + bad) as f64;
            assert!(
                close(s.smoto_rate, rate),
                "{id} smoto_rate {:?} vs {rate}",
                s.smoto_rate
            );
            let burn = (bad as f64 / (ok + bad) as f64) / (1.0 - m.target);
            assert!(
                close(s.burn_rate, burn),
                "{id} burn_rate {:?} vs {burn}",
                s.burn_rate
            );
            assert!(close(s.error_budget_remaining, 1.0 - burn));
            if before == after {
                assert_eq!(s.alert_state, before, "{id}: alert state vs ListAlerts");
            } else {
                assert!(
                    [before.as_str(), after.as_str()].contains(&s.alert_state.as_str()),
                    "{id}: {} is neither {before} nor {after}",
                    s.alert_state
                );
            }
            let reasons: u64 = s.top_failure_reasons.iter().map(|r| r.count).sum();
            assert!(
                reasons <= bad && (bad == 0 || reasons > 0),
                "{id}: reasons {reasons} of {bad} failures"
            );
        }
        assert_eq!(r.windows[0].window, "1h");
        assert_eq!(
            r.windows[1].resolution_ms, 1_000,
            "10m is read at 1 s buckets"
        );
    }

    // The experience's MOT table has the same amounts.
    let e = c
        .get_experience(pb::GetExperienceRequest {
            experience_id: "airline-departure".into(),
            window: "1h".into(),
        })
        .await
        .expect("GetExperience")
        .into_inner();
    let rows: BTreeMap<String, u64> = e
        .mots
        .iter()
        .map(|m| (m.mot_id.clone(), m.amount))
        .collect();
    let want_rows: BTreeMap<String, u64> = truth
        .mots
        .iter()
        .map(|(k, (a, b))| (k.clone(), a + b))
        .collect();
    assert_eq!(rows, want_rows, "GetExperience MOT table amounts");
    assert!(e.journeys_started > 0, "journeys were started");
    for m in &e.mots {
        let ratio = m.ratio.expect("every MOT had traffic");
        assert!(close(m.alignment, ratio - m.target));
    }

    let u = c
        .list_unidentified_mots(pb::ListUnidentifiedMotsRequest {})
        .await
        .expect("ListUnidentifiedMots")
        .into_inner();
    let got: BTreeMap<String, u64> = u.mots.iter().map(|m| (m.mot_id.clone(), m.count)).collect();
    assert_eq!(got, truth.unidentified, "unidentified MOT ids and counts");
    assert_eq!(u.overflow, 0);

    // Whatever the engine published on this workload is about catalog MOTs, with a state.
    let a = c
        .list_alerts(pb::ListAlertsRequest::default())
        .await
        .expect("ListAlerts")
        .into_inner();
    for t in &a.transitions {
        assert!(catalog.mot_idx(&t.mot_id).is_some(), "{t:?}");
        assert!(
            ["pending", "firing", "resolved"].contains(&t.state.as_str()),
            "{t:?}"
        );
    }
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_status_naming_the_field() {
    let t = topics("grpc-errors", 1).await;
    let svc = start("grpc-errors", &t, &["--retention", "1d"]);
    let mut c = client(&svc).await;
    let get = |mot: &str, windows: &[&str]| pb::GetMotRequest {
        mot_id: mot.into(),
        windows: windows.iter().map(|w| (*w).to_owned()).collect(),
    };
    expect_err(
        c.get_mot(get("bag-drop", &["5x"])).await,
        Code::InvalidArgument,
        "windows[0]",
    );
    expect_err(
        c.get_mot(get("bag-drop", &["1m", "0s"])).await,
        Code::InvalidArgument,
        "windows[1]",
    );
    expect_err(
        c.get_mot(get("bag-drop", &["1m"; 9])).await,
        Code::InvalidArgument,
        "windows",
    );
    expect_err(
        c.get_mot(get("bag-drop", &["2d"])).await,
        Code::OutOfRange,
        "windows[0]",
    );
    expect_err(
        c.get_mot(get("no-such-mot", &[])).await,
        Code::NotFound,
        "mot_id",
    );
    expect_err(
        c.get_mot(get("", &[])).await,
        Code::InvalidArgument,
        "mot_id",
    );
    assert!(
        c.get_mot(get("bag-drop", &["1d"])).await.is_ok(),
        "the retention itself is allowed"
    );

    let exp = |id: &str, w: &str| pb::GetExperienceRequest {
        experience_id: id.into(),
        window: w.into(),
    };
    expect_err(
        c.get_experience(exp("no-such-journey", "")).await,
        Code::NotFound,
        "experience_id",
    );
    expect_err(
        c.get_experience(exp("airline-departure", "30d")).await,
        Code::OutOfRange,
        "window",
    );

    let list = |f: pb::MotFilter, size: i32, token: &str, window: &str| pb::ListMotsRequest {
        filter: Some(f),
        order_by: 0,
        window: window.into(),
        page_size: size,
        page_token: token.into(),
    };
    let none = pb::MotFilter::default;
    expect_err(
        c.list_mots(list(none(), 1001, "", "")).await,
        Code::InvalidArgument,
        "page_size",
    );
    expect_err(
        c.list_mots(list(none(), -1, "", "")).await,
        Code::InvalidArgument,
        "page_size",
    );
    expect_err(
        c.list_mots(list(none(), 0, "garbage", "")).await,
        Code::InvalidArgument,
        "page_token",
    );
    expect_err(
        c.list_mots(list(none(), 0, "", "soon")).await,
        Code::InvalidArgument,
        "window",
    );
    expect_err(
        c.list_mots(list(none(), 0, "", "36h")).await,
        Code::OutOfRange,
        "window",
    );
    let state = pb::MotFilter {
        alert_state: "burning".into(),
        ..none()
    };
    expect_err(
        c.list_mots(list(state, 0, "", "")).await,
        Code::InvalidArgument,
        "filter.alert_state",
    );
    let exp_filter = pb::MotFilter {
        experience_id: "moon-landing".into(),
        ..none()
    };
    expect_err(
        c.list_mots(list(exp_filter, 0, "", "")).await,
        Code::InvalidArgument,
        "filter.experience_id",
    );
    // A token from one query does not page another.
    let first = c
        .list_mots(list(none(), 2, "", "5m"))
        .await
        .expect("ListMots")
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let by_burn = pb::ListMotsRequest {
        order_by: pb::OrderBy::BurnRate.into(),
        ..list(none(), 2, &first.next_page_token, "5m")
    };
    expect_err(
        c.list_mots(by_burn).await,
        Code::InvalidArgument,
        "page_token",
    );
    let ok = c
        .list_mots(list(none(), 2, &first.next_page_token, "5m"))
        .await
        .expect("next page")
        .into_inner();
    assert_eq!(ok.mots.len(), 2);

    let watch = |interval: &str, window: &str| pb::WatchMotsRequest {
        filter: None,
        window: window.into(),
        min_interval: interval.into(),
    };
    expect_err(
        c.watch_mots(watch("10ms", "")).await,
        Code::InvalidArgument,
        "min_interval",
    );
    expect_err(
        c.watch_mots(watch("2h", "")).await,
        Code::InvalidArgument,
        "min_interval",
    );
    expect_err(
        c.watch_mots(watch("1s", "2d")).await,
        Code::OutOfRange,
        "window",
    );
    expect_err(
        c.list_alerts(pb::ListAlertsRequest {
            filter: None,
            limit: 5000,
        })
        .await,
        Code::InvalidArgument,
        "limit",
    );
    let alerts = pb::WatchAlertsRequest {
        filter: Some(pb::MotFilter {
            alert_state: "exploded".into(),
            ..none()
        }),
    };
    expect_err(
        c.watch_alerts(alerts).await,
        Code::InvalidArgument,
        "filter.alert_state",
    );
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_limit_the_token_and_the_deadline_hold() {
    let t = topics("grpc-limits", 1).await;
    let token = std::env::temp_dir().join(unique("grpc-token"));
    std::fs::write(&token, "s3cret-token\n").expect("token file");
    let token_arg = token.display().to_string();
    let svc = start(
        "grpc-limits",
        &t,
        &["--grpc-max-watchers", "2", "--grpc-token-file", &token_arg],
    );
    let mut anonymous = client(&svc).await;
    expect_err(
        anonymous
            .list_unidentified_mots(pb::ListUnidentifiedMotsRequest {})
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    let channel =
        ep_connect(Endpoint::from_shared(format!("http://{}", svc.grpc_addr())).expect("endpoint"))
            .await;
    let with = |token: &'static str| {
        move |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", token.parse().expect("ascii"));
            Ok(r)
        }
    };
    let mut wrong = MotQueryClient::with_interceptor(channel.clone(), with("Bearer guess"));
    expect_err(
        wrong
            .list_unidentified_mots(pb::ListUnidentifiedMotsRequest {})
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    let mut c = MotQueryClient::with_interceptor(channel, with("Bearer s3cret-token"));
    c.list_unidentified_mots(pb::ListUnidentifiedMotsRequest {})
        .await
        .expect("the right token passes");

    let watch = || pb::WatchMotsRequest {
        min_interval: "100ms".into(),
        ..Default::default()
    };
    let first = c
        .watch_mots(watch())
        .await
        .expect("first watcher")
        .into_inner();
    let second = c
        .watch_alerts(pb::WatchAlertsRequest::default())
        .await
        .expect("second watcher")
        .into_inner();
    expect_err(
        c.watch_mots(watch()).await,
        Code::ResourceExhausted,
        "watchers",
    );
    expect_err(
        c.watch_alerts(pb::WatchAlertsRequest::default()).await,
        Code::ResourceExhausted,
        "watchers",
    );
    drop(first);
    drop(second);
    // The server notices the closed streams and frees their places.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match c.watch_mots(watch()).await {
            Ok(s) => break s.into_inner(),
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("a place should be free again: {s:?}"),
        }
    };
    drop(third.message().await);

    // A stream ends at the caller's deadline, with DEADLINE_EXCEEDED.
    let mut req = tonic::Request::new(watch());
    req.set_timeout(Duration::from_millis(1_500));
    let started = Instant::now();
    let mut s = c
        .watch_mots(req)
        .await
        .expect("watch with a deadline")
        .into_inner();
    let end = loop {
        match s.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(e) => break e,
        }
    };
    assert_eq!(end.code(), Code::DeadlineExceeded, "{end:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(5),
        "ended after {took:?}"
    );
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_is_not_serving_while_partitions_rebuild_and_serving_once_live() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let t = topics("grpc-health", 4).await;
    let (msgs, truth) = workload("grpch", 150_000, 0, 31, now_ms(), Duration::from_secs(60));
    produce_all(&t.events, &msgs);
    let want = truth.valid();
    // The first instance consumes and commits everything, so the next one must replay it.
    // The state topic is off: this is about rebuilding by replay, which a restore skips.
    let first = start("grpc-health-a", &t, &["--state-topic", "false"]);
    first.wait_status("1h", WAIT, |s| total(s) >= want);
    first.stop();

    // Small fetches make the replay take seconds on any machine, so that the rebuilding state
    // is there to be observed rather than a race against a fast replay.
    let svc = start(
        "grpc-health-b",
        &t,
        &[
            "--kafka-property",
            "max.partition.fetch.bytes=2048",
            "--state-topic",
            "false",
        ],
    );
    let channel =
        ep_connect(Endpoint::from_shared(format!("http://{}", svc.grpc_addr())).expect("endpoint"))
            .await;
    let mut health = HealthClient::new(channel);
    let mut check = async || {
        let r = health
            .check(HealthCheckRequest {
                service: "motstream.v1.MotQuery".into(),
            })
            .await
            .expect("health check");
        ServingStatus::try_from(r.into_inner().status).expect("a known status")
    };
    let deadline = Instant::now() + WAIT;
    let mut seen_rebuilding = false;
    loop {
        let (_, ready) = svc.get("/readyz");
        let rebuilding = ready["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r.as_str().is_some_and(|r| r.contains("rebuilding")));
        let status = check().await;
        if rebuilding {
            seen_rebuilding = true;
            // SERVING is right only if the rebuild ended between the two reads.
            let (_, after) = svc.get("/readyz");
            assert!(
                status == ServingStatus::NotServing || after["ready"] == true,
                "SERVING while rebuilding: {ready}"
            );
        }
        if ready["ready"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen_rebuilding,
        "the replay of 150,000 events was too quick to observe"
    );
    // Health is read from the same report at each call, so it follows at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while check().await != ServingStatus::Serving {
        assert!(Instant::now() < deadline, "not SERVING 5 s after ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total(&svc.status("1h")),
        want,
        "the rebuilt windows hold every event"
    );
    svc.stop();
}

/// A MOT's alert state as ListAlerts tells it: firing if the newest transition of any of its
/// alerts is firing, else pending if one is pending, else inactive.
async fn alert_state_from_history(
    c: &mut MotQueryClient<tonic::transport::Channel>,
    mot: &str,
) -> String {
    let list = c
        .list_alerts(pb::ListAlertsRequest {
            filter: None,
            limit: 1000,
        })
        .await
        .expect("ListAlerts")
        .into_inner();
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    // Newest first: the first transition seen of an alert is its current state.
    for t in list.transitions.iter().filter(|t| t.mot_id == mot) {
        newest
            .entry(t.alert_id.clone())
            .or_insert_with(|| t.state.clone());
    }
    let has = |s: &str| newest.values().any(|v| v == s);
    if has("firing") {
        "firing".into()
    } else if has("pending") {
        "pending".into()
    } else {
        "inactive".into()
    }
}
