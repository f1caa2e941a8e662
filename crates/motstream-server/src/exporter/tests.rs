//! The rendered page for a known handful of events, without a broker.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use motstream_core::{InteractionEvent, Outcome, classify};
use motstream_ingest::{Health, PartitionKey, Sink};

use super::Exporter;
use crate::alert_feed::{AlertFeed, AlertState, AlertTransition};
use crate::config::ServiceConfig;
use crate::service::load_catalog;
use crate::state::AggregatorState;

const NOW: i64 = 1_700_000_000_000;

fn event(mot: &str, ok: bool, ms: u32, channel: &str) -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: None,
        mot_id: Cow::Owned(mot.to_owned()),
        experience_id: None,
        journey_id: None,
        event_time_ms: NOW - 1_000,
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        failure_reason: (!ok).then_some(Cow::Borrowed("kiosk-offline")),
        channel: Some(Cow::Owned(channel.to_owned())),
        duration_ms: Some(ms),
        producer_id: None,
        attributes: Vec::new(),
    }
}

fn exporter() -> (Exporter, Arc<AggregatorState>, Arc<AlertFeed>) {
    let cfg = ServiceConfig::defaults();
    let catalog = Arc::new(load_catalog(&cfg).expect("built-in catalog"));
    let state = Arc::new(AggregatorState::new(catalog, &cfg).expect("aggregator"));
    let alerts = Arc::new(AlertFeed::default());
    // A recorder of its own, not the global one: tests in one process must not share it.
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let e = Exporter::new(
        handle,
        Arc::clone(&state),
        Arc::clone(&alerts),
        Arc::new(Health::default()),
        cfg.retention,
    );
    (e, state, alerts)
}

fn apply(state: &AggregatorState, e: &InteractionEvent<'_>) {
    let part = PartitionKey {
        topic: 0,
        partition: 0,
    };
    let class = classify(e, &state.catalog).expect("a valid event");
    state.apply(part, e, class, NOW);
}

/// A page alert on bag-drop, in `state`.
fn transition(state: AlertState) -> AlertTransition {
    AlertTransition {
        alert_id: "a1".into(),
        state,
        at_ms: NOW,
        episode_ms: NOW,
        rule: "page-fast-burn".into(),
        labels: crate::alert_feed::test_labels(&[("owner", "Lars Eriksen")]),
        annotations: BTreeMap::new(),
    }
}

/// The value of the one line that starts with `series`.
fn value(page: &str, series: &str) -> Option<String> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

const BAG: &str = r#"experience="airline-departure",mot="bag-drop",owner="Lars Eriksen",team="airport-ground-ops""#;

#[test]
fn counters_histogram_breakdowns_and_alert_state_follow_the_applied_events() {
    let (e, state, alerts) = exporter();
    apply(&state, &event("bag-drop", true, 90, "kiosk"));
    apply(&state, &event("bag-drop", true, 400, "sms-bot"));
    apply(&state, &event("bag-drop", false, 2_000, "kiosk"));
    apply(&state, &event("no-such-mot", true, 10, "kiosk"));
    alerts.publish(transition(AlertState::Firing));
    let page = e.render(NOW);
    let v = |s: &str| value(&page, s).unwrap_or_else(|| panic!("no {s} in\n{page}"));
    assert_eq!(
        v(&format!(
            "motstream_mot_interactions_total{{{BAG},outcome=\"success\"}}"
        )),
        "2"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_interactions_total{{{BAG},outcome=\"failure\"}}"
        )),
        "1"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_duration_seconds_bucket{{{BAG},le=\"0.1\"}}"
        )),
        "1"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_duration_seconds_bucket{{{BAG},le=\"0.5\"}}"
        )),
        "2"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_duration_seconds_bucket{{{BAG},le=\"+Inf\"}}"
        )),
        "3"
    );
    assert_eq!(
        v(&format!("motstream_mot_duration_seconds_sum{{{BAG}}}")),
        "2.49"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_window_interactions{{{BAG},window=\"5m\"}}"
        )),
        "3"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_failure_reasons{{{BAG},window=\"1h\",reason=\"kiosk-offline\"}}"
        )),
        "1"
    );
    // kiosk is one of bag-drop's catalog channels; sms-bot is not, so it is _other.
    assert_eq!(
        v(&format!(
            "motstream_mot_channel_interactions{{{BAG},window=\"1h\",channel=\"kiosk\",outcome=\"failure\"}}"
        )),
        "1"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_channel_interactions{{{BAG},window=\"1h\",channel=\"_other\",outcome=\"success\"}}"
        )),
        "1"
    );
    assert_eq!(
        v(&format!(
            "motstream_mot_alert_firing{{{BAG},alertname=\"SmotoBurnPage\",severity=\"page\"}}"
        )),
        "1"
    );
    assert_eq!(v("motstream_unidentified_interactions_total"), "1");
    assert_eq!(
        v("motstream_unidentified_mot_interactions{mot=\"no-such-mot\"}"),
        "1"
    );
    assert!(
        !page.contains("sms-bot"),
        "unbounded channel leaked:\n{page}"
    );
}

#[test]
fn resolved_alerts_leave_the_page() {
    let (e, _, alerts) = exporter();
    let mut t = transition(AlertState::Pending);
    alerts.publish(t.clone());
    let page = e.render(NOW);
    assert_eq!(
        value(
            &page,
            &format!(
                "motstream_mot_alert_firing{{{BAG},alertname=\"SmotoBurnPage\",severity=\"page\"}}"
            )
        )
        .as_deref(),
        Some("0"),
        "pending is 0:\n{page}"
    );
    t.state = AlertState::Resolved;
    alerts.publish(t);
    assert!(!e.render(NOW).contains("motstream_mot_alert_firing{"));
}

#[test]
fn alerts_for_mots_outside_the_catalog_stay_off_the_page() {
    let (e, _, alerts) = exporter();
    for (i, (experience, mot)) in [
        ("airline-departure", "no-such-mot"),
        ("no-such-experience", "bag-drop"),
    ]
    .into_iter()
    .enumerate()
    {
        alerts.publish(AlertTransition {
            alert_id: format!("a{i}"),
            labels: crate::alert_feed::test_labels(&[("experience", experience), ("mot", mot)]),
            ..transition(AlertState::Firing)
        });
    }
    let page = e.render(NOW);
    assert!(
        !page.contains("motstream_mot_alert_firing{"),
        "an alert outside the catalog was exported:\n{page}"
    );
}
