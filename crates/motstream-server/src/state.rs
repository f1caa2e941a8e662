//! The aggregator behind ingest, the status views and the exporter. Maps the catalog to the
//! window crate's topology and each classified event to an observation; nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use motstream_core::{Catalog, Classification, InteractionEvent, Verdict};
use motstream_ingest::{Apply, PartitionKey, Sink};
use motstream_window::{
    Aggregator, ExpIdx, ExperienceSpec, ExperienceStatus, MotIdx, MotKey, MotSpec, MotStatus,
    Observation, PartitionId, PartitionWriter, QueryError, Topology, WindowConfig,
};
use serde_json::{Value, json};

use crate::config::ServiceConfig;

/// The catalog and the aggregator it sizes.
#[derive(Debug)]
pub struct AggregatorState {
    pub catalog: Arc<Catalog>,
    pub agg: Aggregator,
    /// Events applied (replayed or live), for tests and benchmarks.
    applied: AtomicU64,
    /// Alert transitions (the service's feed), shown in `/status`.
    pub alerts: Arc<crate::alert_feed::AlertFeed>,
    /// Owned and followed partitions (the global view).
    pub replicas: crate::replicas::Replicas,
    /// Which alert rules report insufficient data, for the status views.
    pub coverage: crate::coverage::CoverageView,
    /// The last status of every MOT, shared by /status, ListMots and the watchers.
    snapshot: Mutex<Option<Snapshot>>,
    /// Held while every MOT's status is computed, so that callers who miss the snapshot at
    /// once wait for one computation and share it instead of each taking a core from ingest.
    computing: Mutex<()>,
}

/// How long a computed status of every MOT is reused: watchers tick at their own phase and
/// dashboards poll the same windows, so without this 1,000 watchers would recompute 1,000
/// times a second. Every answer carries the time it was computed at.
pub const SHARED_FOR: Duration = Duration::from_millis(50);

/// A shared answer is also reused for this many times what it took to compute, so that
/// callers polling without pause spend at most a ninth of a core on recomputing it. At 1,000
/// MOTs every MOT's status takes 17-31 ms, so reused for 50 ms only it was recomputed 20 times
/// a second under polling, a third to half of a core; benches/queries.rs measured ingest at
/// 86.3% of its rate under 64 callers with that, 93.3-97.0% with this.
pub const REUSE_PER_COST: u32 = 8;

/// The most a shared answer is reused, however long it took: a dashboard's numbers stay
/// within a second of the windows at any catalog size, at the cost of the bound above.
pub const SHARED_AT_MOST: Duration = Duration::from_secs(1);

/// How long an answer that took `cost` to compute is reused: see [`REUSE_PER_COST`].
pub fn reuse_for(cost: Duration) -> Duration {
    cost.saturating_mul(REUSE_PER_COST)
        .clamp(SHARED_FOR, SHARED_AT_MOST)
}

/// Until when an answer whose computation began at `started` and ends now is served.
pub(crate) fn served_until(started: Instant) -> Instant {
    let done = Instant::now();
    done + reuse_for(done.saturating_duration_since(started))
}

#[derive(Debug)]
struct Snapshot {
    window_ms: u64,
    /// Until when it is served: [`reuse_for`] its computation after it was computed.
    until: Instant,
    now_ms: i64,
    all: Arc<Vec<ExperienceStatus>>,
}

/// A partition id unique across consumed topics: topic index in the high bits.
pub(crate) fn partition_id(k: PartitionKey) -> PartitionId {
    PartitionId((i32::from(k.topic) << 20) | (k.partition & 0xF_FFFF))
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The window layout for the configured retention and lateness: the default tiers, with the
/// coarsest ones stretched or shrunk to the retention.
pub fn window_config(cfg: &ServiceConfig) -> WindowConfig {
    let mut w = WindowConfig {
        allowed_lateness_ms: ms(cfg.lateness),
        max_future_skew_ms: ms(cfg.max_future_skew).min(3_600_000),
        ..WindowConfig::default()
    };
    let retention = ms(cfg.retention);
    if let Some(t) = w.counter_tiers.last_mut() {
        t.retention_ms = retention;
    }
    if let Some(t) = w.detail_tiers.last_mut() {
        t.retention_ms = retention;
    }
    w
}

/// The window crate's view of the catalog: each MOT's experience, target and impact weight, and
/// each experience's SCO.
pub fn topology(catalog: &Catalog) -> anyhow::Result<Topology> {
    let mots = catalog
        .mots
        .iter()
        .map(|m| MotSpec {
            experience: ExpIdx(m.experience.0),
            target: m.target,
            impact_weight: m.impact_weight,
        })
        .collect();
    let experiences = catalog
        .experiences
        .iter()
        .map(|e| ExperienceSpec {
            sco: MotIdx(e.sco_mot.0),
            journey_timeout_ms: e.journey_timeout.map(ms),
        })
        .collect();
    Topology::new(mots, experiences).map_err(|e| anyhow::anyhow!("{e}"))
}

impl AggregatorState {
    /// An empty aggregator for the catalog, with the configured windows.
    pub fn new(catalog: Arc<Catalog>, cfg: &ServiceConfig) -> anyhow::Result<Self> {
        let topology = topology(&catalog)?;
        let agg = Aggregator::new(topology, window_config(cfg))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context(
                "retention and lateness (--retention, --lateness) do not fit the window tiers",
            )?;
        // The exporter's monotonic counters (see motstream_window's `live` module).
        let agg = if cfg.exporter {
            agg.with_live_totals()
        } else {
            agg
        };
        Ok(Self {
            coverage: crate::coverage::CoverageView::new(&catalog, cfg.alerts.min_coverage),
            catalog,
            agg,
            applied: AtomicU64::new(0),
            alerts: Arc::new(crate::alert_feed::AlertFeed::default()),
            replicas: Default::default(),
            snapshot: Mutex::new(None),
            computing: Mutex::new(()),
        })
    }

    /// Every experience's status over the last `window_ms`, and the time it is as of; reused
    /// for the same window for [`reuse_for`] its computation (50 ms to 1 s). Blocks while
    /// another caller computes it (tens of ms at 1,000 MOTs): call it from a blocking thread,
    /// never an async worker.
    pub fn all(&self, window_ms: u64) -> Result<(Arc<Vec<ExperienceStatus>>, i64), QueryError> {
        // A std mutex: held for a pointer copy, never across an await or the computation.
        let lock = || self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let cached = || {
            lock()
                .as_ref()
                .filter(|c| c.window_ms == window_ms && Instant::now() < c.until)
                .map(|c| (Arc::clone(&c.all), c.now_ms))
        };
        if let Some(hit) = cached() {
            return Ok(hit);
        }
        // A std mutex held across the computation, on purpose: callers queue here (on
        // blocking threads) and find the first one's answer when they get in.
        let _computing = self.computing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cached() {
            return Ok(hit);
        }
        let now_ms = crate::now_ms();
        let started = Instant::now();
        let all = Arc::new(self.agg.status_all(window_ms, now_ms)?);
        *lock() = Some(Snapshot {
            window_ms,
            until: served_until(started),
            now_ms,
            all: Arc::clone(&all),
        });
        Ok((all, now_ms))
    }

    /// Events applied so far.
    pub fn applied(&self) -> u64 {
        // Relaxed: a statistic; nothing is read in its light.
        self.applied.load(Ordering::Relaxed)
    }

    fn mot_json(&self, s: &MotStatus, now_ms: i64) -> Value {
        let m = &self.catalog.mots[s.mot.0 as usize];
        json!({
            "mot": m.id,
            "experience": self.catalog.experiences[s.experience.0 as usize].id,
            "owner": m.owner.name,
            "team": m.owner.team,
            "window_ms": s.window_ms,
            "resolution_ms": s.span.resolution_ms,
            "amount": s.amount,
            "successes": s.successes,
            "failures": s.failures,
            "smoto_rate": s.smoto_rate,
            "target": s.target,
            "error_budget_remaining": s.error_budget_remaining,
            "burn_rate": s.burn_rate,
            "trend": s.trend.as_ref().and_then(|t| t.rate_delta),
            "latency_p50_ms": s.latency.p50_ms,
            "latency_p90_ms": s.latency.p90_ms,
            "latency_p99_ms": s.latency.p99_ms,
            "top_failure_reasons": s.top_reasons.iter().map(|r| json!({"reason": r.reason, "count": r.count})).collect::<Vec<_>>(),
            "worst_channel": s.worst_channel.as_ref().map(|c| c.channel.clone()),
            "channels": s.channels.iter().map(|c| json!({
                "channel": c.channel, "amount": c.counts.amount(), "successes": c.counts.successes,
                "failures": c.counts.failures, "smoto_rate": c.success_rate,
            })).collect::<Vec<_>>(),
            "channels_other": {
                "amount": s.channels_other.amount(), "successes": s.channels_other.successes,
                "failures": s.channels_other.failures,
            },
            "impact": s.impact,
            "late": s.late,
            "rejected_future": s.rejected_future,
            "warming": s.warming,
            "data_since_ms": s.data_since_ms,
            "coverage": crate::coverage::CoverageView::window_coverage(s, now_ms),
            "insufficient_data": self.coverage.insufficient(s, now_ms),
        })
    }

    fn experience_json(&self, e: &ExperienceStatus) -> Value {
        json!({
            "experience": self.catalog.experiences[e.experience.0 as usize].id,
            "amount": e.amount,
            "smoto_rate": e.smoto_rate,
            "journeys_started": e.journeys_started,
            "journeys_completed": e.journeys_completed,
            "journeys_abandoned": e.journeys_abandoned,
            "sco_rate": e.sco_rate,
            "journeys_in_flight": e.journeys_in_flight,
            "journeys_stalled": e.journeys_stalled,
            "journey_timeout_ms": e.journey_timeout_ms,
            "mots_per_sco_p50": e.mots_per_sco_p50,
            "mots_per_sco_p95": e.mots_per_sco_p95,
            "warming": e.warming,
            "funnel": e.funnel.iter().map(|f| json!({
                "mot": self.catalog.mots[f.mot.0 as usize].id,
                "journeys_reached": f.journeys_reached,
                "journeys_abandoned_here": f.journeys_abandoned_here,
            })).collect::<Vec<_>>(),
        })
    }
}

/// One partition's run of events, applied under its writer.
struct Run<'p> {
    writer: PartitionWriter<'p>,
    catalog: &'p Catalog,
    now_ms: i64,
    applied: u64,
}

impl Apply for Run<'_> {
    fn apply(&mut self, e: &InteractionEvent<'_>, class: Classification) {
        let (mot, success, reason) = match class {
            Classification::Known { mot, verdict, why } => (
                MotKey::Known(MotIdx(mot.0)),
                verdict == Verdict::Magic,
                why.failure_reason(e),
            ),
            Classification::Unidentified => (
                MotKey::Unidentified(&e.mot_id),
                e.outcome == motstream_core::Outcome::Success,
                e.failure_reason.as_deref(),
            ),
        };
        let obs = Observation {
            mot,
            event_time_ms: e.event_time_ms,
            success,
            duration_ms: e.duration_ms,
            failure_reason: reason,
            channel: e.channel.as_deref(),
            journey_id: e.journey_id.as_deref(),
        };
        self.writer.apply(&obs, self.now_ms);
        self.applied += 1;
    }

    /// Counts a future-dated event that ingest dead-lettered, under its MOT when the catalog
    /// knows it, so `motstream_mot_future_events_total` counts the `future_timestamp` rejects.
    fn rejected_future(&mut self, mot_id: &str) {
        let mot = match self.catalog.mot_idx(mot_id) {
            Some(m) => MotKey::Known(MotIdx(m.0)),
            None => MotKey::Unidentified(mot_id),
        };
        self.writer.reject_future(mot, self.now_ms);
    }
}

impl Sink for AggregatorState {
    fn assigned(&self, part: PartitionKey) {
        let id = partition_id(part);
        self.replicas.own(id, || self.agg.begin_rebuild(id));
    }

    fn live(&self, part: PartitionKey) {
        self.agg.finish_rebuild(partition_id(part));
    }

    fn revoked(&self, part: PartitionKey) {
        self.replicas.disown(&self.agg, partition_id(part));
    }

    fn apply_batch(&self, part: PartitionKey, now_ms: i64, events: &mut dyn FnMut(&mut dyn Apply)) {
        // Once per run: the registry lookup (a dashmap read; `partition` creates it if absent,
        // though ingest has assigned it already) and the partition's writer lock, which only
        // the ingest thread takes, so it is never contended.
        let id = partition_id(part);
        let p = self
            .agg
            .get_partition(id)
            .unwrap_or_else(|| self.agg.partition(id));
        let mut run = Run {
            writer: p.writer(),
            catalog: &self.catalog,
            now_ms,
            applied: 0,
        };
        events(&mut run);
        // Relaxed: a statistic.
        self.applied.fetch_add(run.applied, Ordering::Relaxed);
    }

    /// Closes journeys idle past the timeout, also while no events arrive.
    fn tick(&self, now_ms: i64) {
        for p in self.agg.partitions() {
            p.writer().expire_journeys(now_ms);
        }
    }

    fn snapshot(
        &self,
        part: PartitionKey,
        next_offset: i64,
        now_ms: i64,
        kind: motstream_ingest::SnapshotKind,
    ) -> Option<Vec<u8>> {
        crate::snapshots::snapshot(self, part, next_offset, now_ms, kind)
    }

    fn restore(&self, part: PartitionKey, base: &[u8], delta: Option<&[u8]>) -> Option<i64> {
        crate::snapshots::restore(self, part, base, delta)
    }

    fn follow(&self, part: PartitionKey, bytes: &[u8], published_ms: i64) {
        let stamp = crate::snapshots::catalog_stamp(&self.catalog);
        self.replicas
            .follow(&self.agg, partition_id(part), bytes, published_ms, stamp);
    }

    fn following(&self, topic: u16, name: &str, partitions: i32) {
        self.replicas.set_partitions(topic, name, partitions);
    }
}

impl crate::http::StatusSource for AggregatorState {
    fn status(&self, window: Duration) -> Result<Value, String> {
        let (exps, now_ms) = self.all(ms(window)).map_err(|e| e.to_string())?;
        let unidentified = self.agg.unidentified();
        Ok(json!({
            "window_ms": ms(window),
            "now_ms": now_ms,
            "mots": exps.iter().flat_map(|e| e.mots.iter()).map(|m| self.mot_json(m, now_ms)).collect::<Vec<_>>(),
            "experiences": exps.iter().map(|e| self.experience_json(e)).collect::<Vec<_>>(),
            "unidentified": unidentified.mots.iter().map(|u| json!({
                "mot": u.id, "count": u.count, "first_seen_ms": u.first_seen_ms,
                "last_seen_ms": u.last_seen_ms, "example_channel": u.example_channel,
            })).collect::<Vec<_>>(),
            "unidentified_overflow": unidentified.overflow,
            "alerts": crate::alerting::status_json(&self.alerts),
            "view": self.replicas.status_json(&self.agg, now_ms),
        }))
    }
}

/// The dashboard reads the same status document as `/status` (one number everywhere), the
/// catalog facts it shows beside the numbers, and per-MOT series from the same rings.
impl motstream_web::DashboardSource for AggregatorState {
    fn catalog(&self) -> Value {
        let c = &self.catalog;
        let person = |p: &motstream_core::catalog::Person| json!({"name": p.name, "team": p.team, "contact": p.contact});
        json!({
            "experiences": c.experiences.iter().map(|e| json!({
                "id": e.id, "name": e.name, "description": e.description, "manager": person(&e.manager),
                "sco": c.mot(e.sco_mot).id,
                "mots": e.mots.iter().map(|m| c.mot(*m).id.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "mots": c.mots.iter().map(|m| json!({
                "id": m.id, "name": m.name, "experience": c.experience(m.experience).id,
                "type": m.kind, "channels": m.channels, "owner": person(&m.owner),
                "target": m.target, "runbook": m.runbook, "impact_weight": m.impact_weight,
                "dashboard_url": c.dashboard_url.as_ref().map(|u| {
                    u.replace("{mot}", &m.id).replace("{experience}", &c.experience(m.experience).id)
                }),
            })).collect::<Vec<_>>(),
        })
    }

    fn status(&self, window: Duration) -> Result<Value, motstream_web::DataError> {
        crate::http::StatusSource::status(self, window)
            .map_err(motstream_web::DataError::BadRequest)
    }

    fn series(
        &self,
        mot_id: &str,
        window: Duration,
        points: usize,
        now_ms: i64,
    ) -> Result<Value, motstream_web::DataError> {
        let idx = self.catalog.mot_idx(mot_id).ok_or_else(|| {
            motstream_web::DataError::NotFound(format!("mot: {mot_id:?} is not in the catalog"))
        })?;
        let s = self
            .agg
            .mot_series(MotIdx(idx.0), ms(window), points, now_ms)
            .map_err(|e| motstream_web::DataError::BadRequest(e.to_string()))?;
        Ok(json!({
            "mot": mot_id, "window_ms": ms(window), "now_ms": now_ms,
            "from_ms": s.span.from_ms, "to_ms": s.span.to_ms, "resolution_ms": s.span.resolution_ms,
            "step_ms": s.step_ms, "target": self.catalog.mot(idx).target,
            "points": s.points.iter().map(|p| match p.counts {
                Some(c) => json!([p.from_ms, c.successes, c.failures]),
                None => json!([p.from_ms, null, null]),
            }).collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use motstream_core::{Outcome, classify};
    use motstream_window::{ExpIdx, MotIdx};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const MIN: i64 = 60_000;

    #[test]
    fn a_shared_answer_is_reused_for_eight_times_its_cost_within_bounds() {
        assert_eq!(reuse_for(Duration::from_micros(300)), SHARED_FOR);
        assert_eq!(
            reuse_for(Duration::from_millis(25)),
            Duration::from_millis(200)
        );
        assert_eq!(reuse_for(Duration::from_secs(3)), SHARED_AT_MOST);
    }

    #[test]
    fn a_dead_lettered_future_event_is_counted_for_its_mot() {
        let cfg = ServiceConfig::defaults();
        let catalog = Arc::new(crate::service::load_catalog(&cfg).expect("built-in catalog"));
        let state = AggregatorState::new(catalog, &cfg).expect("aggregator");
        let part = PartitionKey {
            topic: 0,
            partition: 0,
        };
        state.assigned(part);
        state.live(part);
        let id = state.catalog.mots[1].id.clone();
        state.apply_batch(part, NOW, &mut |run| {
            run.rejected_future(&id);
            run.rejected_future(&id);
            run.rejected_future("not-in-the-catalog");
        });
        let live = state
            .agg
            .live_snapshot()
            .expect("the exporter's counters are on");
        let future: Vec<u64> = live.mots.iter().map(|m| m.rejected_future).collect();
        assert_eq!(future[1], 2, "{future:?}");
        assert_eq!(future.iter().sum::<u64>(), 2, "{future:?}");
        let s = state
            .agg
            .status_mot(motstream_window::MotIdx(1), 300_000, NOW)
            .expect("status");
        assert_eq!(s.rejected_future, 2);
    }

    #[test]
    fn the_tick_closes_journeys_that_went_idle() {
        let cfg = ServiceConfig::defaults();
        let catalog = Arc::new(crate::service::load_catalog(&cfg).expect("built-in catalog"));
        let state = AggregatorState::new(catalog, &cfg).expect("aggregator");
        let topo = state.agg.topology();
        let sco = topo.experience(ExpIdx(0)).expect("an experience").sco;
        let mot = (0..topo.mot_count() as u32)
            .map(MotIdx)
            .find(|&m| m != sco && topo.mot(m).is_some_and(|s| s.experience == ExpIdx(0)))
            .expect("a MOT of the experience that is not its SCO");
        let e = InteractionEvent {
            event_id: None,
            mot_id: Cow::Owned(state.catalog.mots[mot.0 as usize].id.clone()),
            experience_id: None,
            journey_id: Some(Cow::Borrowed("j-1")),
            event_time_ms: NOW - 1_000,
            outcome: Outcome::Success,
            failure_reason: None,
            channel: None,
            duration_ms: None,
            producer_id: None,
            attributes: Vec::new(),
        };
        let class = classify(&e, &state.catalog).expect("a valid event");
        let part = PartitionKey {
            topic: 0,
            partition: 0,
        };
        state.apply(part, &e, class, NOW);
        let abandoned = |now| {
            state
                .agg
                .status_experience(ExpIdx(0), 3_600_000, now)
                .expect("status")
                .journeys_abandoned
        };
        state.tick(NOW + MIN);
        assert_eq!(abandoned(NOW + MIN), 0, "still open a minute later");
        // Past the 30-minute journey timeout plus the 5-minute lateness, with no event since.
        let later = NOW + 40 * MIN;
        state.tick(later);
        assert_eq!(abandoned(later), 1);
    }
}
