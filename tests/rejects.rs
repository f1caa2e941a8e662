//! One message of every reject kind (and a few valid ones with awkward times) through the
//! real broker into `motstream run`: each lands in the dead-letter topic with its reason code,
//! each counter METRICS.md documents counts what it says, and an RFC 3339 time with an offset
//! is counted at its own instant.

use std::collections::BTreeMap;
use std::time::Duration;

use motstream_tests::service::{ServiceProcess, Topics};
use motstream_tests::workload::{Msg, produce_all};
use motstream_tests::{consume, now_ms, unique, wait_for};

const JSON: Option<&str> = Some("application/json");

fn json(key: &str, body: String, reject: Option<&'static str>) -> Msg {
    Msg {
        key: key.to_owned(),
        payload: body.into_bytes(),
        content_type: JSON,
        reject,
    }
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
fn sample(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// `time` as RFC 3339 in a `+02:00` zone, with milliseconds.
fn rfc3339_plus_two(ms: i64) -> String {
    let local = ms + 2 * 3_600_000;
    let (days, in_day) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+02:00",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reject_kind_is_dead_lettered_with_its_reason_and_counted_as_documented() {
    // One partition: lateness is judged against the partition's watermark.
    let t = Topics::create("rejects", 1).await;
    let svc = ServiceProcess::start(
        &unique("rejects"),
        &[
            "--topics",
            &t.events,
            "--dlq-topic",
            &t.dlq,
            "--group-id",
            &t.group,
            "--dedup-window",
            "10m",
        ],
    );
    let now = now_ms();
    let ev = |mot: &str, rest: &str| format!(r#"{{"mot_id":"{mot}",{rest}}}"#);
    let at = |ms: i64| format!(r#""event_time_ms":{ms},"outcome":"success""#);
    let mut msgs = vec![
        // Valid first, so that the watermark is now when the late event comes.
        json("ok-security", ev("security", &at(now - 1_000)), None),
        // A minute old, written in a +02:00 zone (two hours ahead on the wall clock).
        json(
            "ok-plus-two",
            ev(
                "lounge-entry",
                &format!(
                    r#""event_time":"{}","outcome":"success""#,
                    rfc3339_plus_two(now - 60_000)
                ),
            ),
            None,
        ),
        json(
            "ok-dup",
            ev(
                "online-check-in",
                &format!(r#""event_id":"e-1",{}"#, at(now - 2_000)),
            ),
            None,
        ),
        // Counted as a duplicate, not applied, not dead-lettered.
        json(
            "dup",
            ev(
                "online-check-in",
                &format!(r#""event_id":"e-1",{}"#, at(now - 2_000)),
            ),
            None,
        ),
        // An hour behind the watermark: late, counted, not applied, not dead-lettered.
        json("late", ev("security", &at(now - 3_600_000)), None),
        Msg {
            key: "empty".into(),
            payload: Vec::new(),
            content_type: JSON,
            reject: Some("empty_payload"),
        },
        json(
            "too-large",
            ev("bag-drop", &format!(r#""pad":"{}""#, "x".repeat(70_000))),
            Some("payload_too_large"),
        ),
        Msg {
            key: "csv".into(),
            payload: b"bag-drop,success".to_vec(),
            content_type: Some("text/csv"),
            reject: Some("unsupported_content_type"),
        },
        json("not-json", r#"{"mot_id":"#.into(), Some("not_json")),
        Msg {
            key: "not-proto".into(),
            payload: vec![0xff, 0xff, 0xff, 0xff],
            content_type: Some("application/x-protobuf"),
            reject: Some("not_protobuf"),
        },
        Msg {
            key: "utf8".into(),
            payload: b"{\"mot_id\":\"\xff\"}".to_vec(),
            content_type: JSON,
            reject: Some("invalid_utf8"),
        },
        json(
            "missing",
            format!(r#"{{{}}}"#, at(now)),
            Some("missing_field"),
        ),
        json(
            "wrong-type",
            ev("bag-drop", r#""event_time_ms":"soon","outcome":"success""#),
            Some("wrong_type"),
        ),
        json(
            "ms-before-2000",
            ev("bag-drop", &at(1_700_000)),
            Some("bad_timestamp"),
        ),
        json(
            "unknown-outcome",
            ev(
                "bag-drop",
                &format!(r#""event_time_ms":{now},"outcome":"meh""#),
            ),
            Some("unknown_outcome"),
        ),
        json(
            "negative-duration",
            ev("bag-drop", &format!(r#"{},"duration_ms":-1"#, at(now))),
            Some("negative_duration"),
        ),
        json(
            "absurd-duration",
            ev(
                "bag-drop",
                &format!(r#"{},"duration_ms":86400001"#, at(now)),
            ),
            Some("absurd_duration"),
        ),
        json(
            "oversize",
            ev(
                "bag-drop",
                &format!(r#"{},"channel":"{}""#, at(now), "c".repeat(65)),
            ),
            Some("oversize_field"),
        ),
        json(
            "attrs",
            ev(
                "bag-drop",
                &format!(
                    r#"{},"attributes":{{{}}}"#,
                    at(now),
                    (0..17)
                        .map(|i| format!(r#""k{i}":"v""#))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
            Some("too_many_attributes"),
        ),
        json(
            "dup-attr",
            ev(
                "bag-drop",
                &format!(r#"{},"attributes":{{"a":"1","a":"2"}}"#, at(now)),
            ),
            Some("duplicate_attribute"),
        ),
        json(
            "mismatch",
            ev(
                "bag-drop",
                &format!(r#"{},"experience_id":"telecom-repair""#, at(now)),
            ),
            Some("experience_mismatch"),
        ),
    ];
    for (i, text) in [
        "2026-12-02T09:41:41.704+25:00",
        "2026-12-02T09:41:41.704+99:99",
        "2026-12-02T09:41:41.704",
        "yesterday",
    ]
    .iter()
    .enumerate()
    {
        msgs.push(json(
            &format!("bad-time-{i}"),
            ev(
                "bag-drop",
                &format!(r#""event_time":"{text}","outcome":"success""#),
            ),
            Some("bad_timestamp"),
        ));
    }
    for i in 0..3 {
        msgs.push(json(
            &format!("future-{i}"),
            ev("bag-drop", &at(now + 3_600_000 + i)),
            Some("future_timestamp"),
        ));
    }
    produce_all(&t.events, &msgs);

    let page = wait_for(
        Duration::from_secs(120),
        Duration::from_millis(250),
        || {
            let (code, page) = motstream_tests::service::http_text(svc.http, "/metrics")
                .map_err(|e| e.to_string())?;
            let consumed = sample(&page, "motstream_ingest_events_total", &[]);
            if code == 200 && consumed >= msgs.len() as f64 {
                Ok(page)
            } else {
                Err(format!("{consumed} of {} consumed", msgs.len()))
            }
        },
        |e| format!("not all consumed: {e}; log:\n{}", svc.log_tail()),
    );

    // Dead letters: exactly the rejects, each with its reason code.
    let want: BTreeMap<String, &str> = msgs
        .iter()
        .filter_map(|m| m.reject.map(|r| (m.key.clone(), r)))
        .collect();
    let dead = consume(&t.dlq, want.len(), Duration::from_secs(60));
    let got: BTreeMap<String, &str> = dead
        .iter()
        .map(|d| {
            let key = String::from_utf8(d.key.clone().unwrap_or_default()).expect("utf-8 key");
            let code = d
                .header("motstream-reason-code")
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| want.values().find(|w| **w == c).copied())
                .unwrap_or("?");
            (key, code)
        })
        .collect();
    assert_eq!(got, want, "dead letters by key: reason code");
    for d in &dead {
        let reason = d
            .header("motstream-reason")
            .and_then(|r| std::str::from_utf8(r).ok())
            .unwrap_or("");
        if d.key
            .as_deref()
            .is_some_and(|k| k.starts_with(b"bad-time-"))
        {
            assert!(
                reason.starts_with("event.event_time: \"2026-")
                    || reason.starts_with("event.event_time: \"yesterday\""),
                "{reason}"
            );
        }
    }

    // Each documented reject counter counts what its text says.
    let mut by_reason: BTreeMap<&str, f64> = BTreeMap::new();
    for r in want.values() {
        *by_reason.entry(r).or_default() += 1.0;
    }
    for (reason, n) in &by_reason {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            sample(&page, "motstream_ingest_rejected_total", &[&label]),
            *n,
            "motstream_ingest_rejected_total{{{label}}}"
        );
    }
    let future = sample(&page, "motstream_mot_future_events_total", &[]);
    assert_eq!(
        future,
        sample(
            &page,
            "motstream_ingest_rejected_total",
            &["reason=\"future_timestamp\""]
        ),
        "the future counter equals the future rejects"
    );
    assert_eq!(
        sample(
            &page,
            "motstream_mot_future_events_total",
            &["mot=\"bag-drop\""]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &page,
            "motstream_mot_late_events_total",
            &["mot=\"security\""]
        ),
        1.0
    );
    assert_eq!(sample(&page, "motstream_mot_late_events_total", &[]), 1.0);
    assert_eq!(sample(&page, "motstream_ingest_duplicates_total", &[]), 1.0);
    assert_eq!(
        sample(&page, "motstream_ingest_dlq_failures_total", &[]),
        0.0
    );

    // The +02:00 event is a minute old: inside a 2-minute window, outside a 30-second one.
    let amount = |window: &str, mot: &str| {
        svc.status(window)["mots"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mot"] == mot)
            .and_then(|m| m["amount"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(amount("2m", "lounge-entry"), 1);
    assert_eq!(amount("30s", "lounge-entry"), 0);
    assert_eq!(
        sample(
            &page,
            "motstream_mot_interactions_total",
            &["mot=\"lounge-entry\""]
        ),
        1.0
    );
    svc.stop();
}
