//! The unary calls of `motstream.v1.MotQuery`: GetMot, ListMots, GetExperience,
//! ListUnidentifiedMots and ListAlerts. Each reads the aggregator synchronously, on tokio's
//! blocking pool, never on an async worker (benches/window.rs, README: one MOT over one window
//! 4 to 15 µs; every MOT of a 1,000-MOT catalog, as ListMots and WatchMots read it, 17 to 31
//! ms), converts at the boundary and answers.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use motstream_core::MotIdx;
use motstream_proto::v1 as pb;
use motstream_window::{ExperienceStatus, MotStatus};
use tonic::Status;

use super::convert::{self, Filter, Window};
use crate::alert_feed::AlertFeed;
use crate::state::AggregatorState;

/// Alert states a MOT filter accepts.
pub const MOT_STATES: &[&str] = &["firing", "pending", "inactive"];
/// Alert states an alert filter accepts.
pub const ALERT_STATES: &[&str] = &["pending", "firing", "resolved", "inactive"];

/// The alert states an active alert can be in.
pub const ACTIVE_STATES: &[&str] = &["pending", "firing"];

/// How long a computed status is reused by watchers, lists and GetMot: watchers tick at their
/// own phase and dashboards poll the same MOTs, so without this 1,000 watchers would recompute
/// 1,000 times a second. Every answer carries the `as_of_ms` it was computed at.
const SHARED_FOR: Duration = crate::state::SHARED_FOR;

/// What the handlers read. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub state: Arc<AggregatorState>,
    pub alerts: Arc<AlertFeed>,
    /// The longest window any tier retains, ms.
    pub retention_ms: u64,
    /// One MOT over one window, by (MOT index, window ms): GetMot's answers, reused for
    /// [`SHARED_FOR`] so that many dashboards polling the same MOT cost one computation.
    mot_cache: Arc<Mutex<HashMap<(u32, u64), CachedMot>>>,
}

#[derive(Debug, Clone)]
struct CachedMot {
    at: Instant,
    now_ms: i64,
    status: Arc<MotStatus>,
}

/// Entries kept in the GetMot cache before it is emptied (windows are free text).
const MOT_CACHE_MAX: usize = 4_096;

impl Ctx {
    pub fn new(state: Arc<AggregatorState>, alerts: Arc<AlertFeed>) -> Self {
        let retention_ms = state
            .agg
            .config()
            .counter_tiers
            .iter()
            .map(|t| t.retention_ms)
            .max()
            .unwrap_or(0);
        Self {
            state,
            alerts,
            retention_ms,
            mot_cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn window(&self, field: &str, text: &str, default: &str) -> Result<Window, Status> {
        convert::window(field, text, default, self.retention_ms)
    }

    /// Every experience's status over `w`, and the time it is as of: the service's shared
    /// snapshot ([`AggregatorState::all`]). Blocks while another caller computes it: call it
    /// from the blocking pool, never an async worker.
    pub fn all(&self, w: &Window) -> Result<(Arc<Vec<ExperienceStatus>>, i64), Status> {
        self.state
            .all(w.ms)
            .map_err(|e| convert::query_error("window", e))
    }

    /// One MOT's status over `window_ms`, and the time it is as of; reused for up to 50 ms.
    fn mot(
        &self,
        idx: MotIdx,
        window_ms: u64,
        field: &str,
    ) -> Result<(Arc<MotStatus>, i64), Status> {
        // A std mutex: held for a lookup or an insert, never across the computation.
        let lock = || self.mot_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = lock().get(&(idx.0, window_ms))
            && c.at.elapsed() < SHARED_FOR
        {
            return Ok((Arc::clone(&c.status), c.now_ms));
        }
        let now_ms = crate::now_ms();
        let status = Arc::new(
            self.state
                .agg
                .status_mot(motstream_window::MotIdx(idx.0), window_ms, now_ms)
                .map_err(|e| convert::query_error(field, e))?,
        );
        let mut cache = lock();
        if cache.len() >= MOT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            (idx.0, window_ms),
            CachedMot {
                at: Instant::now(),
                now_ms,
                status: Arc::clone(&status),
            },
        );
        Ok((status, now_ms))
    }

    /// The matching MOTs' statuses on the wire, in catalog order.
    pub fn matching(&self, filter: &Filter, w: &Window) -> Result<Vec<pb::MotStatus>, Status> {
        let (all, now_ms) = self.all(w)?;
        let catalog = &self.state.catalog;
        let alert_state = convert::alert_states(&self.alerts);
        let mut out = Vec::new();
        for e in all.iter() {
            if filter.experience.is_some_and(|x| x.0 != e.experience.0) {
                continue;
            }
            for s in &e.mots {
                let m = catalog.mot(MotIdx(s.mot.0));
                let state = alert_state(&m.id);
                if filter.matches_mot(m, state) {
                    let mut st = convert::mot_status(s, catalog, &w.text, now_ms, state);
                    st.insufficient_data = self.state.coverage.insufficient(s, now_ms);
                    out.push(st);
                }
            }
        }
        Ok(out)
    }

    pub fn get_mot(&self, r: &pb::GetMotRequest) -> Result<pb::GetMotResponse, Status> {
        let catalog = &self.state.catalog;
        let idx = catalog.mot_idx(r.mot_id.trim()).ok_or_else(|| {
            if r.mot_id.trim().is_empty() {
                Status::invalid_argument("mot_id: empty")
            } else {
                Status::not_found(format!(
                    "mot_id: {:?} is not a MOT in the catalog",
                    r.mot_id
                ))
            }
        })?;
        if r.windows.len() > convert::MAX_WINDOWS {
            return Err(Status::invalid_argument(format!(
                "windows: {} windows asked for, at most {}",
                r.windows.len(),
                convert::MAX_WINDOWS
            )));
        }
        let windows = if r.windows.is_empty() {
            vec![self.window("windows[0]", "", "5m")?]
        } else {
            r.windows
                .iter()
                .enumerate()
                .map(|(i, t)| self.window(&format!("windows[{i}]"), t, "5m"))
                .collect::<Result<Vec<_>, _>>()?
        };
        let m = catalog.mot(idx);
        let state = convert::alert_state(&self.alerts, &m.id);
        let mut out = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let (s, as_of_ms) = self.mot(idx, w.ms, &format!("windows[{i}]"))?;
            let mut st = convert::mot_status(&s, catalog, &w.text, as_of_ms, state);
            st.insufficient_data = self.state.coverage.insufficient(&s, as_of_ms);
            out.push(st);
        }
        Ok(pb::GetMotResponse {
            mot: Some(convert::mot_info(m, catalog)),
            windows: out,
            coverage: Some(self.coverage()),
        })
    }

    pub fn list_mots(&self, r: &pb::ListMotsRequest) -> Result<pb::ListMotsResponse, Status> {
        let filter = Filter::parse(r.filter.as_ref(), &self.state.catalog, MOT_STATES)?;
        let order = pb::OrderBy::try_from(r.order_by).map_err(|_| {
            Status::invalid_argument(format!("order_by: {} is not an OrderBy value", r.order_by))
        })?;
        let w = self.window("window", &r.window, "5m")?;
        let size = convert::page_size("page_size", r.page_size)?;
        let fingerprint = query_fingerprint(r, &w);
        let offset = if r.page_token.is_empty() {
            0
        } else {
            parse_token(&r.page_token, fingerprint)?
        };
        let mut mots = self.matching(&filter, &w)?;
        sort(&mut mots, order);
        let total = mots.len();
        let page: Vec<_> = mots.into_iter().skip(offset).take(size).collect();
        let next = offset + page.len();
        Ok(pb::ListMotsResponse {
            mots: page,
            next_page_token: if next < total {
                format!("{next:x}.{fingerprint:016x}")
            } else {
                String::new()
            },
            coverage: Some(self.coverage()),
        })
    }

    pub fn get_experience(
        &self,
        r: &pb::GetExperienceRequest,
    ) -> Result<pb::GetExperienceResponse, Status> {
        let catalog = &self.state.catalog;
        let id = r.experience_id.trim();
        let idx = catalog.experience_idx(id).ok_or_else(|| {
            if id.is_empty() {
                Status::invalid_argument("experience_id: empty")
            } else {
                Status::not_found(format!(
                    "experience_id: {id:?} is not an experience in the catalog"
                ))
            }
        })?;
        let w = self.window("window", &r.window, "1h")?;
        let e = self
            .state
            .agg
            .status_experience(motstream_window::ExpIdx(idx.0), w.ms, crate::now_ms())
            .map_err(|e| convert::query_error("window", e))?;
        let mut out = convert::experience(&e, catalog, &w.text);
        out.coverage = Some(self.coverage());
        Ok(out)
    }

    /// Which partitions the answer merges (see [`crate::replicas`]).
    fn coverage(&self) -> pb::Coverage {
        crate::replicas::coverage_pb(
            &self
                .state
                .replicas
                .coverage(&self.state.agg, crate::now_ms()),
        )
    }

    pub fn unidentified(&self) -> pb::ListUnidentifiedMotsResponse {
        let u = self.state.agg.unidentified();
        pb::ListUnidentifiedMotsResponse {
            mots: u.mots.iter().map(convert::unidentified).collect(),
            overflow: u.overflow,
        }
    }

    pub fn list_alerts(&self, r: &pb::ListAlertsRequest) -> Result<pb::ListAlertsResponse, Status> {
        let catalog = &self.state.catalog;
        let filter = Filter::parse(r.filter.as_ref(), catalog, ALERT_STATES)?;
        let limit = convert::page_size("limit", r.limit)?;
        let list = self
            .alerts
            .history(limit, |t| filter.matches_alert(t, catalog));
        Ok(pb::ListAlertsResponse {
            transitions: list.iter().map(|t| convert::alert(t)).collect(),
        })
    }

    pub fn list_active_alerts(
        &self,
        r: &pb::ListActiveAlertsRequest,
    ) -> Result<pb::ListActiveAlertsResponse, Status> {
        let catalog = &self.state.catalog;
        let filter = Filter::parse(r.filter.as_ref(), catalog, ACTIVE_STATES)?;
        let mut list: Vec<_> = self
            .alerts
            .active()
            .into_iter()
            .filter(|t| filter.matches_alert(t, catalog))
            .collect();
        crate::alert_feed::sort_active(&mut list);
        Ok(pb::ListActiveAlertsResponse {
            alerts: list.iter().map(|t| convert::alert(t)).collect(),
        })
    }
}

/// Orders by the key asked for, ties (and empty windows, last) by MOT id.
fn sort(mots: &mut [pb::MotStatus], order: pb::OrderBy) {
    use std::cmp::Ordering;
    // Present values before absent ones, whatever the direction.
    let by = |a: Option<f64>, b: Option<f64>, desc: bool| match (a, b) {
        (Some(x), Some(y)) if desc => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match order {
        pb::OrderBy::Unspecified => {}
        pb::OrderBy::SmotoRate => {
            mots.sort_by(|a, b| by(a.smoto_rate, b.smoto_rate, false).then(a.mot_id.cmp(&b.mot_id)))
        }
        pb::OrderBy::BurnRate => {
            mots.sort_by(|a, b| by(a.burn_rate, b.burn_rate, true).then(a.mot_id.cmp(&b.mot_id)))
        }
        pb::OrderBy::Impact => mots
            .sort_by(|a, b| by(Some(a.impact), Some(b.impact), true).then(a.mot_id.cmp(&b.mot_id))),
        pb::OrderBy::Amount => {
            mots.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.mot_id.cmp(&b.mot_id)))
        }
    }
}

/// Ties a page token to the query it came from, so that a token is not reused with another
/// filter, order or window.
fn query_fingerprint(r: &pb::ListMotsRequest, w: &Window) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.order_by.hash(&mut h);
    w.ms.hash(&mut h);
    if let Some(f) = &r.filter {
        (&f.experience_id, &f.owner, &f.team, &f.alert_state).hash(&mut h);
    }
    h.finish()
}

fn parse_token(token: &str, fingerprint: u64) -> Result<usize, Status> {
    let bad = |why: &str| Status::invalid_argument(format!("page_token: {token:?} {why}"));
    let (offset, fp) = token
        .split_once('.')
        .ok_or_else(|| bad("is not a token this server issued"))?;
    let offset =
        usize::from_str_radix(offset, 16).map_err(|_| bad("is not a token this server issued"))?;
    let fp = u64::from_str_radix(fp, 16).map_err(|_| bad("is not a token this server issued"))?;
    if fp != fingerprint {
        return Err(bad(
            "belongs to a different query (filter, order_by and window must stay the same)",
        ));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_are_tied_to_their_query() {
        let r = pb::ListMotsRequest::default();
        let w = Window {
            text: "5m".into(),
            ms: 300_000,
        };
        let fp = query_fingerprint(&r, &w);
        assert_eq!(parse_token(&format!("2.{fp:016x}"), fp).ok(), Some(2));
        let other = query_fingerprint(
            &pb::ListMotsRequest {
                order_by: 2,
                ..r.clone()
            },
            &w,
        );
        assert!(parse_token(&format!("2.{fp:016x}"), other).is_err());
        assert!(parse_token("garbage", fp).is_err());
    }

    #[test]
    fn burn_rate_order_puts_the_worst_first_and_empty_windows_last() {
        let s = |id: &str, burn: Option<f64>| pb::MotStatus {
            mot_id: id.into(),
            burn_rate: burn,
            ..Default::default()
        };
        let mut v = vec![
            s("a", None),
            s("b", Some(1.0)),
            s("c", Some(3.0)),
            s("d", Some(1.0)),
        ];
        sort(&mut v, pb::OrderBy::BurnRate);
        let ids: Vec<_> = v.iter().map(|m| m.mot_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "d", "a"]);
    }
}
