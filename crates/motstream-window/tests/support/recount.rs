//! The naive recount the model test compares the aggregator against: the same acceptance
//! rules (skew, lateness against the partition's watermark, journeys, expiry), applied to a
//! plain list of events, and the checks of every status field against it.

use std::collections::HashMap;

use motstream_window::*;

pub const MAX_JOURNEYS: usize = 5;
pub const REASONS: [&str; 3] = ["timeout", "declined", "offline"];
pub const CHANNELS: [&str; 3] = ["kiosk", "app", "web"];

#[derive(Debug, Clone)]
pub struct Ev {
    pub partition: usize,
    /// `None`: an unidentified MOT.
    pub mot: Option<usize>,
    pub unidentified: u8,
    pub back_ms: i64,
    pub success: bool,
    pub duration: Option<u32>,
    pub reason: Option<usize>,
    pub channel: Option<usize>,
    pub journey: Option<u8>,
}

pub fn unidentified_id(n: u8) -> String {
    format!("mystery-{n}")
}

pub fn journey_id(n: u8) -> String {
    format!("j{n}")
}

/// What the aggregator should have kept, recomputed naively.
#[derive(Debug, Default)]
pub struct Model {
    pub accepted: Vec<(usize, i64, Ev)>,
    pub late: Vec<(usize, i64)>,
    pub future: Vec<(usize, i64)>,
    pub started: Vec<(usize, i64)>,
    pub completed: Vec<(usize, i64, u32)>,
    pub abandoned: Vec<(usize, i64)>,
    /// Per journey's first interaction with a MOT: (MOT, event time).
    pub reached: Vec<(usize, i64)>,
    /// Per abandoned journey: (the MOT of its latest interaction, abandonment time).
    pub abandoned_at: Vec<(usize, i64)>,
    pub unidentified: HashMap<String, (u64, i64, i64, Option<String>)>,
}

#[derive(Debug)]
pub struct ModelJourney {
    last_seen: i64,
    interactions: u32,
    reached: bool,
    mots_seen: Vec<usize>,
    last_mot: usize,
}

#[derive(Debug)]
pub struct ModelPartition {
    pub lateness: i64,
    pub skew: i64,
    pub timeout: i64,
    pub wm: Option<i64>,
    pub open: HashMap<(u8, usize), ModelJourney>,
}

impl ModelPartition {
    pub fn apply(&mut self, m: &mut Model, ev: &Ev, now: i64) {
        let t = now - ev.back_ms;
        let future = t > now + self.skew;
        let Some(mot) = ev.mot else {
            if !future {
                let e = m
                    .unidentified
                    .entry(unidentified_id(ev.unidentified))
                    .or_insert((0, t, t, None));
                e.0 += 1;
                e.1 = e.1.min(t);
                e.2 = e.2.max(t);
                if e.3.is_none() {
                    e.3 = ev.channel.map(|c| CHANNELS[c].to_owned());
                }
            }
            return;
        };
        if future {
            m.future.push((mot, self.wm.unwrap_or(now)));
            return;
        }
        if let Some(wm) = self.wm
            && t < wm - self.lateness
        {
            m.late.push((mot, wm));
            return;
        }
        m.accepted.push((mot, t, ev.clone()));
        self.wm = Some(self.wm.map_or(t, |w| w.max(t)));
        if let Some(j) = ev.journey {
            let exp = mot / 3;
            let sco = ev.success && mot == exp * 3 + 2;
            let len = self.open.len();
            match self.open.get_mut(&(j, exp)) {
                Some(o) => {
                    if t >= o.last_seen {
                        o.last_mot = mot;
                    }
                    if !o.mots_seen.contains(&mot) {
                        o.mots_seen.push(mot);
                        m.reached.push((mot, t));
                    }
                    o.last_seen = o.last_seen.max(t);
                    if !o.reached {
                        o.interactions += 1;
                        if sco {
                            o.reached = true;
                            m.completed.push((exp, t, o.interactions));
                        }
                    }
                }
                None if len >= MAX_JOURNEYS => {}
                None => {
                    self.open.insert(
                        (j, exp),
                        ModelJourney {
                            last_seen: t,
                            interactions: 1,
                            reached: sco,
                            mots_seen: vec![mot],
                            last_mot: mot,
                        },
                    );
                    m.started.push((exp, t));
                    m.reached.push((mot, t));
                    if sco {
                        m.completed.push((exp, t, 1));
                    }
                }
            }
        }
    }

    pub fn expire(&mut self, m: &mut Model, now: i64) {
        let wall = now - self.lateness;
        let clock = self.wm.map_or(wall, |w| w.max(wall));
        self.open.retain(|&(_, exp), j| {
            let deadline = j.last_seen + self.timeout;
            if deadline > clock {
                return true;
            }
            if !j.reached {
                m.abandoned.push((exp, deadline));
                m.abandoned_at.push((j.last_mot, deadline));
            }
            false
        });
    }
}

pub fn within(s: &Span, t: i64) -> bool {
    s.from_ms <= t && t < s.to_ms
}

pub fn nearest_rank(sorted: &[u32], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

pub fn counts_in(m: &Model, mot: usize, s: &Span) -> Counts {
    let mut c = Counts::default();
    for (_, _, e) in m
        .accepted
        .iter()
        .filter(|(x, t, _)| *x == mot && within(s, *t))
    {
        if e.success {
            c.successes += 1;
        } else {
            c.failures += 1;
        }
    }
    c
}

pub fn check_mot(topo: &Topology, m: &Model, s: &MotStatus) {
    let mot = s.mot.0 as usize;
    let c = counts_in(m, mot, &s.span);
    assert_eq!(
        (s.successes, s.failures),
        (c.successes, c.failures),
        "counts of MOT {mot} over {:?}",
        s.span
    );
    assert_eq!(s.smoto_rate, c.success_rate());
    if let Some(t) = &s.trend {
        assert_eq!(t.current, counts_in(m, mot, &t.span), "trend current");
        assert_eq!(
            t.previous,
            counts_in(m, mot, &t.previous_span),
            "trend previous"
        );
        assert_eq!(t.previous_span.to_ms, t.span.from_ms);
    }
    // Impact: weighted share of the experience's failures over the same span.
    let exp = topo.mot(s.mot).unwrap().experience;
    let wfp = |i: usize| (topo.mot(MotIdx(i as u32)).unwrap().impact_weight * 256.0).round();
    let total: f64 = topo
        .experience_mots(exp)
        .iter()
        .map(|x| wfp(x.0 as usize) * counts_in(m, x.0 as usize, &s.span).failures as f64)
        .sum();
    let want = (total > 0.0).then(|| (wfp(mot) * c.failures as f64 / total).min(1.0));
    assert_eq!(s.impact, want, "impact of MOT {mot}");

    let Some(d) = s.detail_span else {
        assert_eq!(s.latency.count, 0);
        return;
    };
    let in_d: Vec<&Ev> = m
        .accepted
        .iter()
        .filter(|(x, t, _)| *x == mot && within(&d, *t))
        .map(|(_, _, e)| e)
        .collect();
    let mut lat: Vec<u32> = in_d.iter().filter_map(|e| e.duration).collect();
    lat.sort_unstable();
    assert_eq!(
        s.latency.count,
        lat.len() as u64,
        "latency count of MOT {mot} over {d:?}"
    );
    for (q, got) in [
        (0.5, s.latency.p50_ms),
        (0.9, s.latency.p90_ms),
        (0.99, s.latency.p99_ms),
    ] {
        match got {
            None => assert!(lat.is_empty()),
            Some(got) => {
                let exact = nearest_rank(&lat, q);
                if exact < f64::from(LATENCY_OVERFLOW_MS) {
                    let err = if exact == 0.0 {
                        got
                    } else {
                        (got - exact).abs() / exact
                    };
                    assert!(err <= 0.02, "p{q} {got} vs exact {exact}");
                }
            }
        }
    }
    let mut reasons: HashMap<&str, u64> = HashMap::new();
    for e in in_d.iter().filter(|e| !e.success) {
        if let Some(r) = e.reason {
            *reasons.entry(REASONS[r]).or_default() += 1;
        }
    }
    let mut want: Vec<(String, u64)> = reasons.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let got: Vec<(String, u64)> = s
        .top_reasons
        .iter()
        .map(|r| (r.reason.clone(), r.count))
        .collect();
    assert_eq!(got, want, "reasons of MOT {mot}");
    assert_eq!(s.reasons_other, 0);
    let mut channels: HashMap<&str, Counts> = HashMap::new();
    for e in &in_d {
        if let Some(c) = e.channel {
            let x = channels.entry(CHANNELS[c]).or_default();
            if e.success {
                x.successes += 1
            } else {
                x.failures += 1
            }
        }
    }
    let worst = channels
        .iter()
        .filter(|(_, c)| c.amount() >= StatusOptions::default().min_channel_amount)
        .map(|(n, c)| (*n, *c, c.success_rate().unwrap()))
        .min_by(|x, y| {
            x.2.total_cmp(&y.2)
                .then_with(|| y.1.amount().cmp(&x.1.amount()))
                .then_with(|| x.0.cmp(y.0))
        });
    assert_eq!(
        s.worst_channel
            .as_ref()
            .map(|w| (w.channel.as_str(), w.counts)),
        worst.map(|w| (w.0, w.1))
    );
    let mut want: Vec<(&str, Counts)> = channels.iter().map(|(n, c)| (*n, *c)).collect();
    want.sort_by(|a, b| b.1.amount().cmp(&a.1.amount()).then_with(|| a.0.cmp(b.0)));
    let got: Vec<(&str, Counts)> = s
        .channels
        .iter()
        .map(|c| (c.channel.as_str(), c.counts))
        .collect();
    assert_eq!(got, want, "channels of MOT {mot} over {d:?}");
    assert_eq!(s.channels_other, Counts::default());
    let late = m
        .late
        .iter()
        .filter(|(x, at)| *x == mot && within(&d, *at))
        .count() as u64;
    let future = m
        .future
        .iter()
        .filter(|(x, at)| *x == mot && within(&d, *at))
        .count() as u64;
    assert_eq!(
        (s.late, s.rejected_future),
        (late, future),
        "late/future of MOT {mot} over {d:?}"
    );
}

pub fn check_experience(m: &Model, e: &ExperienceStatus) {
    let exp = e.experience.0 as usize;
    let n = |v: &[(usize, i64)]| {
        v.iter()
            .filter(|(x, t)| *x == exp && within(&e.span, *t))
            .count() as u64
    };
    let completed = m
        .completed
        .iter()
        .filter(|(x, t, _)| *x == exp && within(&e.span, *t))
        .count() as u64;
    assert_eq!(
        (
            e.journeys_started,
            e.journeys_completed,
            e.journeys_abandoned
        ),
        (n(&m.started), completed, n(&m.abandoned)),
        "journeys of experience {exp} over {:?}",
        e.span
    );
    let mut mps: Vec<u32> = match e.detail_span {
        Some(d) => m
            .completed
            .iter()
            .filter(|(x, t, _)| *x == exp && within(&d, *t))
            .map(|c| c.2)
            .collect(),
        None => Vec::new(),
    };
    mps.sort_unstable();
    assert_eq!(e.mots_per_sco_count, mps.len() as u64);
    assert_eq!(
        e.mots_per_sco_p50,
        (!mps.is_empty()).then(|| nearest_rank(&mps, 0.5) as u32)
    );
    assert_eq!(
        e.mots_per_sco_p95,
        (!mps.is_empty()).then(|| nearest_rank(&mps, 0.95) as u32)
    );
    assert_eq!(e.amount, e.mots.iter().map(|s| s.amount).sum::<u64>());
    let want: Vec<(u32, Option<u64>, u64)> = e
        .mots
        .iter()
        .map(|s| {
            let mot = s.mot.0 as usize;
            let at = |v: &[(usize, i64)]| {
                v.iter()
                    .filter(|(x, t)| *x == mot && within(&e.span, *t))
                    .count() as u64
            };
            (s.mot.0, Some(at(&m.reached)), at(&m.abandoned_at))
        })
        .collect();
    let got: Vec<(u32, Option<u64>, u64)> = e
        .funnel
        .iter()
        .map(|f| (f.mot.0, f.journeys_reached, f.journeys_abandoned_here))
        .collect();
    assert_eq!(got, want, "funnel of experience {exp} over {:?}", e.span);
    assert_eq!(
        e.funnel
            .iter()
            .map(|f| f.journeys_abandoned_here)
            .sum::<u64>(),
        e.journeys_abandoned,
        "every abandoned journey stopped at one of its MOTs"
    );
}
