//! The boundary between the wire and the aggregator: request fields parsed and checked (each
//! error naming its field), domain statuses turned into protobuf messages, filters matched.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use motstream_core::Catalog;
use motstream_core::catalog::Mot;
use motstream_proto::v1 as pb;
use motstream_window::{ChannelStatus, ExperienceStatus, MotStatus, QueryError, UnidentifiedMot};
use tonic::Status;

use crate::alert_feed::{AlertFeed, AlertState, AlertTransition};

/// The most windows one `GetMot` may ask for.
pub const MAX_WINDOWS: usize = 8;
/// Bounds of `WatchMotsRequest.min_interval`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3_600);

/// A window as asked for: the caller's text (echoed back) and its length.
#[derive(Debug, Clone)]
pub struct Window {
    pub text: String,
    pub ms: u64,
}

/// Parses a human duration for `field`. Empty text gives `default`. Zero and unparsable
/// values are INVALID_ARGUMENT; windows longer than `retention_ms` are OUT_OF_RANGE.
pub fn window(field: &str, text: &str, default: &str, retention_ms: u64) -> Result<Window, Status> {
    let text = if text.trim().is_empty() {
        default
    } else {
        text.trim()
    };
    let d = humantime::parse_duration(text).map_err(|e| {
        Status::invalid_argument(format!(
            "{field}: {text:?} is not a duration such as 5m or 1h: {e}"
        ))
    })?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Err(Status::invalid_argument(format!(
            "{field}: {text:?} is empty; a window is at least 1ms"
        )));
    }
    if ms > retention_ms {
        return Err(Status::out_of_range(format!(
            "{field}: {text:?} is longer than the retention ({})",
            motstream_core::units::short_duration(Duration::from_millis(retention_ms))
        )));
    }
    Ok(Window {
        text: text.to_owned(),
        ms,
    })
}

/// Parses `min_interval` (default 1s, 100ms to 1h).
pub fn min_interval(text: &str) -> Result<Duration, Status> {
    if text.trim().is_empty() {
        return Ok(Duration::from_secs(1));
    }
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        Status::invalid_argument(format!(
            "min_interval: {text:?} is not a duration such as 1s: {e}"
        ))
    })?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(Status::invalid_argument(format!(
            "min_interval: {text:?} is not between 100ms and 1h"
        )));
    }
    Ok(d)
}

/// `field` as a count in 1..=1000, with 0 meaning 100.
pub fn page_size(field: &str, n: i32) -> Result<usize, Status> {
    match n {
        0 => Ok(100),
        1..=1000 => Ok(n as usize),
        _ => Err(Status::invalid_argument(format!(
            "{field}: {n} is not between 1 and 1000 (0 means 100)"
        ))),
    }
}

/// Maps the aggregator's query errors: only a window can be wrong once ids are resolved.
pub fn query_error(field: &str, e: QueryError) -> Status {
    match e {
        QueryError::BadWindow(..) => Status::out_of_range(format!("{field}: {e}")),
        QueryError::UnknownMot(..) | QueryError::UnknownExperience(..) => {
            Status::not_found(e.to_string())
        }
    }
}

/// The caller's deadline (`grpc-timeout`), if it sent one. tonic cancels a unary call whose
/// deadline passes; streams check it themselves.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Option<Instant>);

impl Deadline {
    pub fn of<T>(req: &tonic::Request<T>) -> Self {
        let at = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        Self(at)
    }

    /// DEADLINE_EXCEEDED once the deadline has passed.
    pub fn check(&self) -> Result<(), Status> {
        match self.0 {
            Some(at) if Instant::now() >= at => Err(Status::deadline_exceeded(
                "the call's deadline passed before the answer was ready",
            )),
            _ => Ok(()),
        }
    }
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(s: &str) -> Option<Duration> {
    let (digits, unit) = s.split_at(s.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A checked `MotFilter`.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub experience: Option<motstream_core::ExpIdx>,
    pub owner: Option<String>,
    pub team: Option<String>,
    /// For MOTs: firing, pending or inactive; for alert transitions: pending, firing or
    /// resolved (inactive matches resolved).
    pub alert_state: Option<String>,
}

impl Filter {
    /// Checks `f` (absent: match everything). `states` lists the accepted `alert_state`s.
    pub fn parse(
        f: Option<&pb::MotFilter>,
        catalog: &Catalog,
        states: &[&str],
    ) -> Result<Self, Status> {
        let Some(f) = f else {
            return Ok(Self::default());
        };
        let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let experience = match nonempty(&f.experience_id) {
            None => None,
            Some(id) => Some(catalog.experience_idx(&id).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "filter.experience_id: {id:?} is not an experience in the catalog"
                ))
            })?),
        };
        let alert_state = match nonempty(&f.alert_state) {
            Some(s) if !states.contains(&s.as_str()) => {
                return Err(Status::invalid_argument(format!(
                    "filter.alert_state: {s:?} is not one of {}",
                    states.join(", ")
                )));
            }
            s => s,
        };
        // Like an unknown experience, a team or owner nobody in the catalog has is a mistake to
        // report, not an empty answer.
        let team = nonempty(&f.team);
        if let Some(t) = &team
            && !catalog
                .mots
                .iter()
                .any(|m| m.owner.team.eq_ignore_ascii_case(t))
        {
            let teams: std::collections::BTreeSet<&str> =
                catalog.mots.iter().map(|m| m.owner.team.as_str()).collect();
            return Err(Status::invalid_argument(format!(
                "filter.team: {t:?} owns no MOT in the catalog (teams: {})",
                teams.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let owner = nonempty(&f.owner);
        if let Some(o) = &owner
            && !catalog.mots.iter().any(|m| {
                m.owner.name.eq_ignore_ascii_case(o) || m.owner.contact.eq_ignore_ascii_case(o)
            })
        {
            return Err(Status::invalid_argument(format!(
                "filter.owner: {o:?} is neither the name nor the contact of any MOT owner in the catalog"
            )));
        }
        Ok(Self {
            experience,
            owner,
            team,
            alert_state,
        })
    }

    /// Whether a catalog MOT in `state` matches.
    pub fn matches_mot(&self, m: &Mot, state: &str) -> bool {
        self.experience.is_none_or(|e| m.experience == e)
            && self.owner.as_deref().is_none_or(|o| {
                m.owner.name.eq_ignore_ascii_case(o) || m.owner.contact.eq_ignore_ascii_case(o)
            })
            && self
                .team
                .as_deref()
                .is_none_or(|t| m.owner.team.eq_ignore_ascii_case(t))
            && self.alert_state.as_deref().is_none_or(|s| s == state)
    }

    /// Whether an alert transition matches.
    pub fn matches_alert(&self, t: &AlertTransition, catalog: &Catalog) -> bool {
        let state = t.state.as_str();
        self.experience.is_none_or(|e| {
            catalog
                .experience_idx(t.experience_id())
                .is_some_and(|x| x == e)
        }) && self
            .owner
            .as_deref()
            .is_none_or(|o| t.owner().eq_ignore_ascii_case(o))
            && self
                .team
                .as_deref()
                .is_none_or(|x| t.team().eq_ignore_ascii_case(x))
            && self
                .alert_state
                .as_deref()
                .is_none_or(|s| s == state || (s == "inactive" && t.state == AlertState::Resolved))
    }
}

/// A MOT's alert state as the API names it.
pub fn alert_state(alerts: &AlertFeed, mot_id: &str) -> &'static str {
    state_name(alerts.mot_state(mot_id))
}

/// Every MOT's alert state as the API names it, from one read of the active alerts: for the
/// calls that name many MOTs, instead of a read of the feed per MOT.
pub fn alert_states(alerts: &AlertFeed) -> impl Fn(&str) -> &'static str {
    let mut by_mot: HashMap<String, AlertState> = HashMap::new();
    for t in alerts.active() {
        let s = by_mot.entry(t.mot_id().to_owned()).or_insert(t.state);
        *s = (*s).max(t.state);
    }
    move |mot_id| state_name(by_mot.get(mot_id).copied())
}

fn state_name(s: Option<AlertState>) -> &'static str {
    match s {
        Some(AlertState::Firing) => "firing",
        Some(AlertState::Pending) => "pending",
        Some(AlertState::Resolved) | None => "inactive",
    }
}

fn i64_ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One MOT's status on the wire.
pub fn mot_status(
    s: &MotStatus,
    catalog: &Catalog,
    window: &str,
    as_of_ms: i64,
    state: &str,
) -> pb::MotStatus {
    let m = catalog.mot(motstream_core::MotIdx(s.mot.0));
    let e = catalog.experience(m.experience);
    pb::MotStatus {
        mot_id: m.id.clone(),
        experience_id: e.id.clone(),
        window: window.to_owned(),
        resolution_ms: i64_ms(s.span.resolution_ms),
        as_of_ms,
        amount: s.amount,
        successes: s.successes,
        failures: s.failures,
        late: s.late,
        smoto_rate: s.smoto_rate,
        target: s.target,
        error_budget_remaining: s.error_budget_remaining,
        burn_rate: s.burn_rate,
        trend: s.trend.as_ref().and_then(|t| t.rate_delta),
        latency_p50_ms: s.latency.p50_ms,
        latency_p90_ms: s.latency.p90_ms,
        latency_p99_ms: s.latency.p99_ms,
        top_failure_reasons: s
            .top_reasons
            .iter()
            .map(|r| pb::ReasonCount {
                reason: r.reason.clone(),
                count: r.count,
            })
            .collect(),
        worst_channel: s
            .worst_channel
            .as_ref()
            .map(|c| c.channel.clone())
            .unwrap_or_default(),
        channels: s.channels.iter().map(channel).collect(),
        channels_other: Some(pb::ChannelStatus {
            channel: String::new(),
            amount: s.channels_other.amount(),
            failures: s.channels_other.failures,
            successes: s.channels_other.successes,
            smoto_rate: s.channels_other.success_rate(),
        }),
        impact: s.impact.unwrap_or(0.0),
        alert_state: state.to_owned(),
        warming: s.warming,
        data_since_ms: s.data_since_ms,
        coverage: crate::coverage::CoverageView::window_coverage(s, as_of_ms),
        // Filled by the caller, which has the alert policy (`AggregatorState::coverage`).
        insufficient_data: Vec::new(),
    }
}

fn channel(c: &ChannelStatus) -> pb::ChannelStatus {
    pb::ChannelStatus {
        channel: c.channel.clone(),
        amount: c.counts.amount(),
        failures: c.counts.failures,
        successes: c.counts.successes,
        smoto_rate: Some(c.success_rate),
    }
}

/// Catalog facts about a MOT.
pub fn mot_info(m: &Mot, catalog: &Catalog) -> pb::MotInfo {
    pb::MotInfo {
        mot_id: m.id.clone(),
        name: m.name.clone(),
        experience_id: catalog.experience(m.experience).id.clone(),
        r#type: m.kind.clone(),
        owner_name: m.owner.name.clone(),
        owner_team: m.owner.team.clone(),
        owner_contact: m.owner.contact.clone(),
        target: m.target,
        runbook_url: m.runbook.clone().unwrap_or_default(),
        impact_weight: m.impact_weight,
    }
}

/// An experience and its MOT table.
pub fn experience(
    e: &ExperienceStatus,
    catalog: &Catalog,
    window: &str,
) -> pb::GetExperienceResponse {
    let x = catalog.experience(motstream_core::ExpIdx(e.experience.0));
    pb::GetExperienceResponse {
        experience_id: x.id.clone(),
        name: x.name.clone(),
        window: window.to_owned(),
        sco_mot_id: catalog.mot(x.sco_mot).id.clone(),
        sco_rate: e.sco_rate,
        journeys_started: e.journeys_started,
        journeys_completed: e.journeys_completed,
        journeys_abandoned: e.journeys_abandoned,
        journeys_in_flight: e.journeys_in_flight,
        journeys_stalled: e.journeys_stalled,
        journey_timeout_ms: e.journey_timeout_ms,
        mots_per_sco_p50: e.mots_per_sco_p50.map(f64::from),
        mots_per_sco_p95: e.mots_per_sco_p95.map(f64::from),
        mots: e
            .mots
            .iter()
            .map(|s| {
                let m = catalog.mot(motstream_core::MotIdx(s.mot.0));
                pb::MotRow {
                    mot_id: m.id.clone(),
                    name: m.name.clone(),
                    amount: s.amount,
                    r#type: m.kind.clone(),
                    owner_name: m.owner.name.clone(),
                    owner_team: m.owner.team.clone(),
                    alignment: s.smoto_rate.map(|r| r - s.target),
                    trend: s.trend.as_ref().and_then(|t| t.rate_delta),
                    ratio: s.smoto_rate,
                    impact: s.impact.unwrap_or(0.0),
                    target: s.target,
                }
            })
            .collect(),
        funnel: e
            .funnel
            .iter()
            .map(|f| pb::FunnelStep {
                mot_id: catalog.mot(motstream_core::MotIdx(f.mot.0)).id.clone(),
                journeys_reached: f.journeys_reached,
                journeys_abandoned_here: f.journeys_abandoned_here,
            })
            .collect(),
        coverage: None,
    }
}

pub fn unidentified(u: &UnidentifiedMot) -> pb::UnidentifiedMot {
    pb::UnidentifiedMot {
        mot_id: u.id.clone(),
        count: u.count,
        first_seen_ms: u.first_seen_ms,
        last_seen_ms: u.last_seen_ms,
        example_channel: u.example_channel.clone().unwrap_or_default(),
    }
}

pub fn alert(t: &AlertTransition) -> pb::AlertTransition {
    pb::AlertTransition {
        alert_id: t.alert_id.clone(),
        alertname: t.alertname().to_owned(),
        severity: t.severity().to_owned(),
        experience_id: t.experience_id().to_owned(),
        mot_id: t.mot_id().to_owned(),
        owner: t.owner().to_owned(),
        team: t.team().to_owned(),
        state: t.state.as_str().to_owned(),
        at_ms: t.at_ms,
        annotations: t
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_name_their_field_and_pick_the_right_code() {
        let day = 86_400_000;
        assert_eq!(
            window("window", "", "5m", day).map(|w| w.ms).ok(),
            Some(300_000)
        );
        let bad = window("windows[1]", "5x", "5m", day)
            .err()
            .map(|s| (s.code(), s.message().to_owned()));
        assert!(
            matches!(&bad, Some((tonic::Code::InvalidArgument, m)) if m.starts_with("windows[1]: \"5x\"")),
            "{bad:?}"
        );
        let zero = window("window", "0s", "5m", day).err().map(|s| s.code());
        assert_eq!(zero, Some(tonic::Code::InvalidArgument));
        let long = window("window", "2d", "5m", day).err().map(|s| s.code());
        assert_eq!(long, Some(tonic::Code::OutOfRange));
    }

    #[test]
    fn grpc_timeout_units_parse_and_garbage_is_ignored() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }

    #[test]
    fn alert_states_read_once_agree_with_the_per_mot_read() {
        let feed = AlertFeed::default();
        let t = |id: &str, mot: &str, state| AlertTransition {
            alert_id: id.into(),
            state,
            at_ms: 1,
            episode_ms: 1,
            rule: "page-fast-burn".into(),
            labels: crate::alert_feed::test_labels(&[("mot", mot)]),
            annotations: Default::default(),
        };
        feed.publish(t("a", "bag-drop", AlertState::Pending));
        feed.publish(t("b", "bag-drop", AlertState::Firing));
        feed.publish(t("c", "security", AlertState::Pending));
        feed.publish(t("d", "check-in", AlertState::Firing));
        feed.publish(t("d", "check-in", AlertState::Resolved));
        let states = alert_states(&feed);
        for (mot, want) in [
            ("bag-drop", "firing"),
            ("security", "pending"),
            ("check-in", "inactive"),
            ("boarding", "inactive"),
        ] {
            assert_eq!((mot, states(mot)), (mot, want));
            assert_eq!((mot, alert_state(&feed, mot)), (mot, want));
        }
    }

    #[test]
    fn page_sizes_and_intervals_are_bounded() {
        assert_eq!(page_size("page_size", 0).ok(), Some(100));
        assert_eq!(page_size("page_size", 1000).ok(), Some(1000));
        assert!(page_size("page_size", 1001).is_err());
        assert!(page_size("page_size", -1).is_err());
        assert!(min_interval("50ms").is_err());
        assert!(min_interval("2h").is_err());
        assert_eq!(min_interval("").ok(), Some(Duration::from_secs(1)));
    }
}
