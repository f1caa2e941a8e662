//! The gRPC query service of `motstream run`, fed by the real broker, through a tonic client
//! over loopback: answers equal the ground truth of what was produced; each bad input gets its
//! status naming the field; the watcher limit, the token and the deadline hold; a watcher sees
//! a change within one interval and at most one message per MOT per interval; and a watcher
//! that never reads is dropped without growing the server's memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use motstream_core::codec::{CONTENT_TYPE_HEADER, encode};
use motstream_core::{Encoding, InteractionEvent, Outcome};
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_client::MotQueryClient;
use motstream_tests::service::ServiceProcess;
use motstream_tests::workload::{airline, produce_all, total, workload};
use motstream_tests::{create_topic, now_ms, unique};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const WAIT: Duration = Duration::from_secs(180);

struct Topics {
    events: String,
    args: Vec<String>,
}

async fn topics(name: &str, partitions: i32) -> Topics {
    let events = unique(name);
    let dlq = unique(&format!("{name}-dlq"));
    create_topic(&events, partitions).await;
    create_topic(&dlq, 1).await;
    let args = vec![
        "--topics".into(),
        events.clone(),
        "--dlq-topic".into(),
        dlq,
        "--group-id".into(),
        unique(&format!("{name}-group")),
    ];
    Topics { events, args }
}

fn start(name: &str, t: &Topics, extra: &[&str]) -> ServiceProcess {
    let mut args: Vec<&str> = t.args.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    ServiceProcess::start(&unique(name), &args)
}

async fn client_with(
    svc: &ServiceProcess,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> MotQueryClient<Channel> {
    let ep = Endpoint::from_shared(format!("http://{}", svc.grpc_addr())).expect("endpoint");
    let channel = ep_connect(configure(ep)).await;
    MotQueryClient::new(channel)
}

async fn ep_connect(ep: Endpoint) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ep.connect().await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no gRPC server: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn client(svc: &ServiceProcess) -> MotQueryClient<Channel> {
    client_with(svc, |e| e).await
}

/// Asserts the call failed with `code` and a message starting with `field`.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, field: &str) {
    match r {
        Ok(v) => panic!("expected {code:?} naming {field}, got {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{field}: {}", s.message());
            assert!(
                s.message().starts_with(field),
                "the message names {field}: {:?}",
                s.message()
            );
        }
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

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
        let r = c
            .get_mot(pb::GetMotRequest {
                mot_id: id.clone(),
                windows: vec!["1h".into(), "10m".into()],
            })
            .await
            .expect("GetMot")
            .into_inner();
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
            assert_eq!(s.alert_state, "inactive");
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

    // No alert engine publishes on this branch: the history is really empty, not invented.
    let a = c
        .list_alerts(pb::ListAlertsRequest::default())
        .await
        .expect("ListAlerts")
        .into_inner();
    assert!(a.transitions.is_empty());
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
    let first = start("grpc-health-a", &t, &[]);
    first.wait_status("1h", WAIT, |s| total(s) >= want);
    first.stop();

    let svc = start("grpc-health-b", &t, &[]);
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

/// Sends one event and waits for the broker's acknowledgement.
fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, e: &InteractionEvent<'_>) {
    let payload = encode(e, Encoding::Protobuf);
    let key = e.mot_id.to_string();
    let headers = OwnedHeaders::new().insert(Header {
        key: CONTENT_TYPE_HEADER,
        value: Some("application/x-protobuf"),
    });
    let mut r = BaseRecord::<str, [u8]>::to(topic)
        .key(key.as_str())
        .payload(payload.as_slice())
        .headers(headers);
    loop {
        match p.send(r) {
            Ok(()) => break,
            Err((_, back)) => {
                r = back;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

fn threaded_producer() -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", motstream_tests::brokers())
        .set("linger.ms", "2")
        .create()
        .expect("producer")
}

fn event(mot: &str, success: bool, t_ms: i64, n: u64) -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: Some(Cow::Owned(format!("{mot}-{n}-{t_ms}"))),
        mot_id: Cow::Owned(mot.to_owned()),
        experience_id: None,
        journey_id: None,
        event_time_ms: t_ms,
        outcome: if success {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        failure_reason: (!success).then_some(Cow::Borrowed("printer-jam")),
        channel: Some(Cow::Borrowed("kiosk")),
        duration_ms: Some(1_000 + (n % 50) as u32),
        producer_id: None,
        attributes: Vec::new(),
    }
}

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

/// The service's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .expect("VmRSS in /proc/<pid>/status")
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
    assert!(
        grown_mib < offered_mib / 4.0 && grown_mib < 16.0,
        "server RSS grew {grown_mib:.1} MiB while {offered_mib:.1} MiB was offered to a watcher that never read"
    );
    svc.stop();
}
