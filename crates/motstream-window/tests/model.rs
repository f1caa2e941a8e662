//! Model test: random event streams (in order, out of order within and beyond the allowed
//! lateness, from the future within and beyond the skew, across bucket and resolution
//! boundaries) on several partitions written by several threads, with readers running
//! meanwhile. Every status, for every window, must equal a brute-force recount over the
//! span it reports, and merging per-partition aggregates must equal the aggregator's view.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use motstream_window::*;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;
const MOTS: usize = 6;
const PARTS: usize = 3;

#[path = "support/recount.rs"]
mod recount;

use recount::*;

/// One configuration under test, with the time scales its streams are drawn at.
#[derive(Debug, Clone)]
struct Params {
    config: WindowConfig,
    windows: Vec<u64>,
    /// Largest gap between two operations, ms.
    max_step: i64,
}

impl Params {
    fn lateness(&self) -> i64 {
        self.config.allowed_lateness_ms as i64
    }
    fn skew(&self) -> i64 {
        self.config.max_future_skew_ms as i64
    }
    fn timeout(&self) -> i64 {
        self.config.journey_timeout_ms as i64
    }
}

/// Small tiers so that a few hundred events wrap every ring many times.
fn small() -> Params {
    let t = |r, k| TierSpec {
        resolution_ms: r,
        retention_ms: k,
    };
    Params {
        config: WindowConfig {
            counter_tiers: vec![t(1_000, 20_000), t(5_000, 120_000), t(30_000, 600_000)],
            detail_tiers: vec![t(5_000, 20_000), t(60_000, 600_000)],
            allowed_lateness_ms: 60_000,
            max_future_skew_ms: 3_000,
            journey_timeout_ms: 120_000,
            max_journeys_per_partition: MAX_JOURNEYS,
            ..WindowConfig::default()
        },
        windows: vec![1_000, 5_000, 20_000, 60_000, 120_000, 300_000, 600_000],
        max_step: 5_000,
    }
}

/// The production defaults, with streams spanning hours to days.
fn default() -> Params {
    const MIN: u64 = 60_000;
    Params {
        config: WindowConfig {
            max_journeys_per_partition: MAX_JOURNEYS,
            ..WindowConfig::default()
        },
        windows: vec![
            MIN,
            5 * MIN,
            30 * MIN,
            60 * MIN,
            120 * MIN,
            360 * MIN,
            1_440 * MIN,
            4_320 * MIN,
        ],
        max_step: 30 * MIN as i64,
    }
}

/// MOTs 0-2 form experience 0 (SCO = MOT 2), MOTs 3-5 experience 1 (SCO = MOT 5).
fn topology() -> Topology {
    let mots = (0..MOTS)
        .map(|i| MotSpec {
            experience: ExpIdx((i / 3) as u32),
            target: 0.9,
            impact_weight: 0.5 + i as f64,
        })
        .collect();
    Topology::new(
        mots,
        vec![
            ExperienceSpec {
                sco: MotIdx(2),
                journey_timeout_ms: None,
            },
            ExperienceSpec {
                sco: MotIdx(5),
                journey_timeout_ms: None,
            },
        ],
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Event(Ev),
    Expire(usize),
}

fn ev(p: &Params) -> impl Strategy<Value = Ev> + use<> {
    let back = prop_oneof![
        6 => 0i64..2_000,
        2 => 0i64..30_000,
        2 => 0i64..(2 * p.lateness()),
        1 => -(2 * p.skew())..0,
    ];
    (
        0..PARTS,
        prop_oneof![9 => (0..MOTS).prop_map(Some), 1 => Just(None)],
        0u8..3,
        back,
        prop::bool::weighted(0.8),
        prop::option::weighted(0.7, prop_oneof![0u32..40, 1u32..5_000_000]),
        prop::option::weighted(0.8, 0..REASONS.len()),
        prop::option::weighted(0.6, 0..CHANNELS.len()),
        prop::option::weighted(0.7, 0u8..8),
    )
        .prop_map(
            |(
                partition,
                mot,
                unidentified,
                back_ms,
                success,
                duration,
                reason,
                channel,
                journey,
            )| Ev {
                partition,
                mot,
                unidentified,
                back_ms,
                success,
                duration,
                reason,
                channel,
                journey,
            },
        )
}

fn ops(p: &Params) -> impl Strategy<Value = Vec<(i64, Op)>> + use<> {
    let op = prop_oneof![12 => ev(p).prop_map(Op::Event), 1 => (0..PARTS).prop_map(Op::Expire)];
    let step = prop_oneof![6 => 0i64..300, 2 => 0i64..5_000, 1 => 0i64..p.max_step];
    prop::collection::vec((step, op), 1..300)
}

fn run(params: &Params, ops: &[(i64, Op)], threads: usize) {
    let agg = Aggregator::new(topology(), params.config.clone()).unwrap();
    let topo = agg.topology().clone();
    // Assign times, then split the stream by partition (each partition's own order).
    let mut now = T0;
    let mut per_part: Vec<Vec<(i64, Op)>> = vec![Vec::new(); PARTS];
    for (dt, op) in ops {
        now += dt;
        let p = match op {
            Op::Event(e) => e.partition,
            Op::Expire(p) => *p,
        };
        per_part[p].push((now, op.clone()));
    }
    let now_final = now;
    let parts: Vec<_> = (0..PARTS)
        .map(|p| agg.partition(PartitionId(p as i32)))
        .collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A reader snapshotting meanwhile must never panic nor see more than was written.
        let (agg_r, done_r, ops_len) = (&agg, &done, ops.len() as u64);
        let reader = s.spawn(move || {
            while !done_r.load(Ordering::Relaxed) {
                for st in agg_r.status_all(params.windows[3], now_final).unwrap() {
                    assert!(st.amount <= ops_len);
                }
                std::thread::yield_now();
            }
        });
        let mut writers = Vec::new();
        for th in 0..threads {
            let (parts, per_part) = (&parts, &per_part);
            writers.push(s.spawn(move || {
                // This thread owns partitions p ≡ th (mod threads); it interleaves them.
                let mine: Vec<usize> = (0..PARTS).filter(|p| p % threads == th).collect();
                let mut next = [0usize; PARTS];
                loop {
                    let mut progressed = false;
                    for &p in &mine {
                        let Some((now, op)) = per_part[p].get(next[p]) else {
                            continue;
                        };
                        next[p] += 1;
                        progressed = true;
                        let mut w = parts[p].writer();
                        match op {
                            Op::Event(e) => {
                                let uid = unidentified_id(e.unidentified);
                                let jid = e.journey.map(journey_id);
                                let obs = Observation {
                                    mot: match e.mot {
                                        Some(m) => MotKey::Known(MotIdx(m as u32)),
                                        None => MotKey::Unidentified(&uid),
                                    },
                                    event_time_ms: now - e.back_ms,
                                    success: e.success,
                                    duration_ms: e.duration,
                                    failure_reason: e.reason.map(|r| REASONS[r]),
                                    channel: e.channel.map(|c| CHANNELS[c]),
                                    journey_id: jid.as_deref(),
                                };
                                w.apply(&obs, *now);
                            }
                            Op::Expire(_) => {
                                w.expire_journeys(*now);
                            }
                        }
                    }
                    if !progressed {
                        break;
                    }
                }
            }));
        }
        for w in writers {
            w.join().unwrap();
        }
        // Relaxed: a stop flag; the scope's join orders everything else.
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    });

    let mut model = Model::default();
    for stream in &per_part {
        let mut mp = ModelPartition {
            lateness: params.lateness(),
            skew: params.skew(),
            timeout: params.timeout(),
            wm: None,
            open: HashMap::new(),
        };
        for (now, op) in stream {
            match op {
                Op::Event(e) => mp.apply(&mut model, e, *now),
                Op::Expire(_) => mp.expire(&mut model, *now),
            }
        }
    }

    for &w in &params.windows {
        for mot in 0..MOTS {
            let s = agg.status_mot(MotIdx(mot as u32), w, now_final).unwrap();
            assert!(
                s.span.to_ms - s.span.from_ms >= w as i64,
                "span covers the window"
            );
            check_mot(&topo, &model, &s);
            // Merging per-partition aggregates (in any order) equals the aggregator's view.
            let plan = agg.plan(w, now_final).unwrap();
            let each: Vec<MotAggregate> = parts
                .iter()
                .map(|p| p.mot_aggregate(MotIdx(mot as u32), &plan))
                .collect();
            let mut fwd = MotAggregate::default();
            each.iter().for_each(|a| fwd.merge(a));
            let mut rev = MotAggregate::default();
            each.iter().rev().for_each(|a| rev.merge(a));
            assert_eq!(fwd.counts, rev.counts);
            assert_eq!(fwd.latency, rev.latency);
            assert_eq!(fwd.trend, rev.trend);
            let same_plan = s.span == plan.counts_span()
                && s.detail_span == plan.detail_span()
                && s.trend.as_ref().map(|t| (t.span, t.previous_span)) == plan.trend_spans();
            if fwd.is_complete() && same_plan {
                assert_eq!(
                    (fwd.counts.successes, fwd.counts.failures),
                    (s.successes, s.failures)
                );
                assert_eq!(fwd.latency.count(), s.latency.count);
            }
        }
        let all = agg.status_all(w, now_final).unwrap();
        assert_eq!(all.len(), 2);
        for e in &all {
            check_experience(&model, e);
            for s in &e.mots {
                check_mot(&topo, &model, s);
            }
        }
    }
    let u = agg.unidentified();
    let mut want: Vec<UnidentifiedMot> = model
        .unidentified
        .iter()
        .map(|(id, (count, first, last, ch))| UnidentifiedMot {
            id: id.clone(),
            count: *count,
            first_seen_ms: *first,
            last_seen_ms: *last,
            example_channel: ch.clone(),
        })
        .collect();
    want.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
    // The example channel is the first seen *per partition*; merged, any of them will do.
    let strip = |v: &[UnidentifiedMot]| -> Vec<(String, u64, i64, i64)> {
        v.iter()
            .map(|m| (m.id.clone(), m.count, m.first_seen_ms, m.last_seen_ms))
            .collect()
    };
    assert_eq!(strip(&u.mots), strip(&want));
    assert_eq!(u.overflow, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_window_equals_a_brute_force_recount_across_partitions_and_threads(
        ops in ops(&small()),
        threads in 1usize..=3,
    ) {
        run(&small(), &ops, threads);
    }

    #[test]
    fn default_tiers_equal_a_brute_force_recount_over_days_of_event_time(
        ops in ops(&default()),
        threads in 1usize..=2,
    ) {
        run(&default(), &ops, threads);
    }
}
