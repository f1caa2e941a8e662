//! The alert side of the API in-process: what the alert engine publishes into the feed is what
//! WatchAlerts streams, ListAlerts lists and a MOT's alert state shows. (The broker-backed tests
//! in `tests/grpc*.rs` cover the rest; no alert engine runs there.)

use std::collections::BTreeMap;
use std::sync::Arc;

use motstream_core::Catalog;
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_server::MotQuery;
use tokio_stream::StreamExt;
use tonic::Request;

use super::QueryService;
use crate::alert_feed::{AlertFeed, AlertState, AlertTransition};
use crate::config::ServiceConfig;
use crate::state::AggregatorState;

fn service(alerts: &Arc<AlertFeed>) -> (QueryService, tokio::sync::watch::Sender<bool>) {
    let catalog =
        Catalog::from_yaml(motstream_loadgen::files::BUILTIN_CATALOG, "airline").expect("catalog");
    let state = AggregatorState::new(Arc::new(catalog), &ServiceConfig::defaults()).expect("state");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let q = QueryService::new(Arc::new(state), Arc::clone(alerts), 8, 16, stopping);
    (q, stop)
}

fn transition(mot: &str, team: &str, state: AlertState, at_ms: i64) -> AlertTransition {
    AlertTransition {
        alert_id: format!("{mot}/page-fast-burn"),
        state,
        at_ms,
        episode_ms: at_ms,
        rule: "page-fast-burn".into(),
        labels: crate::alert_feed::test_labels(&[("mot", mot), ("team", team)]),
        annotations: BTreeMap::from([("burn_rate".to_owned(), "15.2".to_owned())]),
    }
}

fn filter(f: impl FnOnce(&mut pb::MotFilter)) -> Option<pb::MotFilter> {
    let mut m = pb::MotFilter::default();
    f(&mut m);
    Some(m)
}

#[tokio::test]
async fn published_transitions_are_streamed_listed_and_shown_as_the_mot_alert_state() {
    let alerts = Arc::new(AlertFeed::default());
    let (q, _stop) = service(&alerts);
    let req = pb::WatchAlertsRequest {
        filter: filter(|f| f.team = "airport-ground-ops".into()),
    };
    let mut stream = q
        .watch_alerts(Request::new(req))
        .await
        .expect("WatchAlerts")
        .into_inner();
    alerts.publish(transition(
        "security",
        "security-ops",
        AlertState::Pending,
        1,
    ));
    alerts.publish(transition(
        "bag-drop",
        "airport-ground-ops",
        AlertState::Firing,
        2,
    ));
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("a transition within 5 s")
        .expect("stream open")
        .expect("no error");
    assert_eq!(
        (got.mot_id.as_str(), got.state.as_str(), got.at_ms),
        ("bag-drop", "firing", 2),
        "the filter kept only the team's alert"
    );
    assert_eq!(
        got.annotations.get("burn_rate").map(String::as_str),
        Some("15.2")
    );

    let list = |f: Option<pb::MotFilter>| pb::ListAlertsRequest {
        filter: f,
        limit: 0,
    };
    let all = q
        .list_alerts(Request::new(list(None)))
        .await
        .expect("ListAlerts")
        .into_inner();
    let at: Vec<i64> = all.transitions.iter().map(|t| t.at_ms).collect();
    assert_eq!(at, vec![2, 1], "newest first");
    let pending = q
        .list_alerts(Request::new(list(filter(|f| {
            f.alert_state = "pending".into()
        }))))
        .await
        .expect("ListAlerts")
        .into_inner();
    assert_eq!(pending.transitions.len(), 1);

    let mot = q
        .get_mot(Request::new(pb::GetMotRequest {
            mot_id: "bag-drop".into(),
            windows: vec![],
        }))
        .await
        .expect("GetMot")
        .into_inner();
    assert_eq!(mot.windows[0].alert_state, "firing");
    let firing = q
        .list_mots(Request::new(pb::ListMotsRequest {
            filter: filter(|f| f.alert_state = "firing".into()),
            ..Default::default()
        }))
        .await
        .expect("ListMots")
        .into_inner();
    let ids: Vec<&str> = firing.mots.iter().map(|m| m.mot_id.as_str()).collect();
    assert_eq!(ids, ["bag-drop"]);

    alerts.publish(transition(
        "bag-drop",
        "airport-ground-ops",
        AlertState::Resolved,
        3,
    ));
    let resolved = stream.next().await.expect("open").expect("no error");
    assert_eq!(resolved.state, "resolved");
    let inactive = q
        .list_alerts(Request::new(list(filter(|f| {
            f.alert_state = "inactive".into()
        }))))
        .await
        .expect("ListAlerts")
        .into_inner();
    assert_eq!(inactive.transitions.len(), 1, "inactive matches resolved");
}

#[tokio::test]
async fn a_watcher_that_falls_behind_the_alert_feed_is_told_so() {
    // A feed buffering 2 transitions per subscriber: the watcher's task reads them as they
    // come, so to make it lag, publish more than that before it runs.
    let alerts = Arc::new(AlertFeed::new(100, 2));
    let (q, _stop) = service(&alerts);
    let mut stream = q
        .watch_alerts(Request::new(pb::WatchAlertsRequest::default()))
        .await
        .expect("WatchAlerts")
        .into_inner();
    for i in 0..10 {
        alerts.publish(transition("bag-drop", "t", AlertState::Pending, i));
    }
    let mut end = None;
    while let Some(item) = stream.next().await {
        if let Err(s) = item {
            end = Some(s);
            break;
        }
    }
    let end = end.expect("the stream ends with a status");
    assert_eq!(end.code(), tonic::Code::ResourceExhausted, "{end:?}");
    assert!(end.message().contains("behind"), "{}", end.message());
}

#[tokio::test]
async fn watches_end_with_unavailable_when_the_server_stops() {
    let alerts = Arc::new(AlertFeed::default());
    let (q, stop) = service(&alerts);
    let mut mots = q
        .watch_mots(Request::new(pb::WatchMotsRequest::default()))
        .await
        .expect("WatchMots")
        .into_inner();
    let mut al = q
        .watch_alerts(Request::new(pb::WatchAlertsRequest::default()))
        .await
        .expect("WatchAlerts")
        .into_inner();
    // The snapshot: the five airline MOTs.
    for _ in 0..5 {
        mots.next().await.expect("open").expect("snapshot");
    }
    stop.send(true).expect("receivers alive");
    let code = mots.next().await.and_then(Result::err).map(|e| e.code());
    assert_eq!(code, Some(tonic::Code::Unavailable));
    let code = al.next().await.and_then(Result::err).map(|e| e.code());
    assert_eq!(code, Some(tonic::Code::Unavailable));
    assert!(mots.next().await.is_none() && al.next().await.is_none());
}

#[tokio::test]
async fn active_alerts_list_what_is_firing_now_not_transitions_resolved_since() {
    let alerts = Arc::new(AlertFeed::default());
    let (q, _stop) = service(&alerts);
    // bag-drop fired and resolved long ago; security is pending; lounge-entry fires now.
    alerts.publish(transition(
        "bag-drop",
        "airport-ground-ops",
        AlertState::Firing,
        1,
    ));
    alerts.publish(transition(
        "bag-drop",
        "airport-ground-ops",
        AlertState::Resolved,
        2,
    ));
    alerts.publish(transition(
        "security",
        "security-ops",
        AlertState::Pending,
        3,
    ));
    alerts.publish(transition(
        "lounge-entry",
        "lounge-ops",
        AlertState::Pending,
        4,
    ));
    alerts.publish(transition(
        "lounge-entry",
        "lounge-ops",
        AlertState::Firing,
        5,
    ));
    let active = |f: Option<pb::MotFilter>| {
        let q = &q;
        async move {
            q.list_active_alerts(Request::new(pb::ListActiveAlertsRequest { filter: f }))
                .await
                .expect("ListActiveAlerts")
                .into_inner()
                .alerts
                .into_iter()
                .map(|t| (t.mot_id, t.state, t.at_ms))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        active(None).await,
        vec![
            ("lounge-entry".to_owned(), "firing".to_owned(), 5),
            ("security".to_owned(), "pending".to_owned(), 3),
        ],
        "each active alert once, firing first; the resolved bag-drop alert is not listed"
    );
    assert_eq!(
        active(filter(|f| f.alert_state = "firing".into())).await,
        vec![("lounge-entry".to_owned(), "firing".to_owned(), 5)]
    );
    // ListAlerts' `firing` filter, by contrast, still lists bag-drop's old transition.
    let history = q
        .list_alerts(Request::new(pb::ListAlertsRequest {
            filter: filter(|f| f.alert_state = "firing".into()),
            limit: 10,
        }))
        .await
        .expect("ListAlerts")
        .into_inner();
    assert!(history.transitions.iter().any(|t| t.mot_id == "bag-drop"));
    let bad = q
        .list_active_alerts(Request::new(pb::ListActiveAlertsRequest {
            filter: filter(|f| f.alert_state = "resolved".into()),
        }))
        .await
        .expect_err("resolved is never active");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
}
