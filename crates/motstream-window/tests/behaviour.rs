//! Black-box behaviour of the aggregator: lateness, skew, rotation under concurrency,
//! journeys, unidentified MOTs, rebalance and status views. Time is always passed in.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use motstream_window::*;

const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

/// Experience 0: MOTs 0 (check-in), 1 (bag drop), 2 (boarding, the SCO).
fn aggregator(config: WindowConfig) -> Aggregator {
    let mots = (0..3)
        .map(|i| MotSpec {
            experience: ExpIdx(0),
            target: 0.98,
            impact_weight: 1.0 + i as f64,
        })
        .collect();
    Aggregator::new(
        Topology::new(
            mots,
            vec![ExperienceSpec {
                sco: MotIdx(2),
                journey_timeout_ms: None,
            }],
        )
        .unwrap(),
        config,
    )
    .unwrap()
}

fn obs(mot: u32, t: i64, success: bool) -> Observation<'static> {
    Observation::new(MotKey::Known(MotIdx(mot)), t, success)
}

fn journey(mot: u32, t: i64, success: bool, id: &'static str) -> Observation<'static> {
    Observation {
        journey_id: Some(id),
        ..obs(mot, t, success)
    }
}

#[test]
fn late_event_beyond_lateness_is_counted_not_applied() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    assert_eq!(w.apply(&obs(0, NOW, true), NOW), Applied::Applied);
    // 10 min is the default allowed lateness; 11 min behind the watermark is late.
    assert_eq!(w.apply(&obs(0, NOW - 11 * MIN, false), NOW), Applied::Late);
    drop(w);
    let s = agg.status_mot(MotIdx(0), (30 * MIN) as u64, NOW).unwrap();
    assert_eq!((s.amount, s.failures, s.late), (1, 0, 1));
    assert_eq!(p.stats().late, 1);
}

#[test]
fn out_of_order_event_within_lateness_lands_in_its_own_bucket() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    w.apply(&obs(0, NOW, true), NOW);
    assert_eq!(
        w.apply(&obs(0, NOW - 3 * MIN, false), NOW),
        Applied::Applied
    );
    drop(w);
    // The last minute does not hold it; the last five do.
    assert_eq!(
        agg.status_mot(MotIdx(0), (MIN) as u64, NOW)
            .unwrap()
            .failures,
        0
    );
    assert_eq!(
        agg.status_mot(MotIdx(0), (5 * MIN) as u64, NOW)
            .unwrap()
            .failures,
        1
    );
    assert_eq!(
        agg.status_mot(MotIdx(0), (5 * MIN) as u64, NOW)
            .unwrap()
            .late,
        0
    );
}

#[test]
fn future_event_beyond_skew_is_rejected_and_counted() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    assert_eq!(
        w.apply(&obs(0, NOW + 5_000, true), NOW),
        Applied::Applied,
        "within the 10 s skew"
    );
    assert_eq!(
        w.apply(&obs(0, NOW + 60_000, true), NOW),
        Applied::RejectedFuture
    );
    drop(w);
    // The accepted event counts once `now` reaches its bucket.
    assert_eq!(
        agg.status_mot(MotIdx(0), (MIN) as u64, NOW).unwrap().amount,
        0
    );
    let s = agg
        .status_mot(MotIdx(0), (MIN) as u64, NOW + 5_000)
        .unwrap();
    assert_eq!((s.amount, s.rejected_future), (1, 1));
}

#[test]
fn replay_of_old_events_is_judged_late_against_the_watermark_not_the_clock() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.begin_rebuild(PartitionId(0));
    let mut w = p.writer();
    // Replaying yesterday in order: nothing is late, though `now` is a day ahead.
    for i in 0..100 {
        assert_eq!(
            w.apply(&obs(0, NOW - 24 * 60 * MIN + i * 1_000, true), NOW),
            Applied::Applied
        );
    }
    drop(w);
    let s = agg
        .status_mot(MotIdx(0), 3 * 24 * 60 * MIN as u64, NOW)
        .unwrap();
    assert_eq!((s.amount, s.late), (100, 0));
}

#[test]
fn each_window_answer_states_the_resolution_used() {
    let agg = aggregator(WindowConfig::default());
    for (w, res, detail) in [
        (MIN, 1_000, MIN),
        (60 * MIN, MIN, 30 * MIN),
        (72 * 60 * MIN, 10 * MIN, 720 * MIN),
    ] {
        let s = agg.status_mot(MotIdx(0), w as u64, NOW).unwrap();
        assert_eq!(s.span.resolution_ms, res as u64, "window {w}");
        assert_eq!(
            s.detail_span.map(|d| d.resolution_ms),
            Some(detail as u64),
            "window {w}"
        );
        assert!(s.span.to_ms > NOW && s.span.from_ms <= NOW - w);
    }
}

#[test]
fn empty_window_gives_zero_amount_and_no_rates_never_nan() {
    let agg = aggregator(WindowConfig::default());
    let s = agg.status_mot(MotIdx(1), 5 * MIN as u64, NOW).unwrap();
    assert_eq!(s.amount, 0);
    assert_eq!(
        (
            s.smoto_rate,
            s.burn_rate,
            s.error_budget_remaining,
            s.impact
        ),
        (None, None, None, None)
    );
    assert_eq!((s.latency.p50_ms, s.worst_channel.is_none()), (None, true));
    let e = agg
        .status_experience(ExpIdx(0), 5 * MIN as u64, NOW)
        .unwrap();
    assert_eq!(
        (e.sco_rate, e.smoto_rate, e.mots_per_sco_p50),
        (None, None, None)
    );
}

#[test]
fn status_reports_burn_rate_budget_trend_reasons_worst_channel_and_impact() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    // Previous 5 minutes: 100 successes. Current 5 minutes: 90 successes, 10 failures.
    for i in 0..100 {
        w.apply(&obs(0, NOW - 9 * MIN + i * 100, true), NOW);
    }
    for i in 0..100 {
        let mut o = obs(0, NOW - 4 * MIN + i * 100, i % 10 != 0);
        o.failure_reason = Some(if i % 20 == 0 { "timeout" } else { "declined" });
        o.channel = Some(if i % 10 == 0 { "kiosk" } else { "app" });
        o.duration_ms = Some(100 + i as u32);
        w.apply(&o, NOW);
    }
    w.apply(&obs(1, NOW - MIN, false), NOW);
    drop(w);
    let s = agg.status_mot(MotIdx(0), 5 * MIN as u64, NOW).unwrap();
    assert_eq!((s.amount, s.successes, s.failures), (100, 90, 10));
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    assert!(
        close(s.burn_rate, 5.0),
        "0.1 failure ratio / 0.02 budget = 5, got {:?}",
        s.burn_rate
    );
    assert!(close(s.error_budget_remaining, -4.0));
    let t = s.trend.unwrap();
    assert_eq!(t.previous.amount(), 100);
    assert_eq!(t.direction, Some(TrendDirection::Down));
    assert_eq!(
        s.top_reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.count))
            .collect::<Vec<_>>(),
        vec![("declined", 5), ("timeout", 5)]
    );
    assert_eq!(
        s.worst_channel.unwrap().channel,
        "app",
        "kiosk has only 10 interactions, below the minimum of 20"
    );
    // Impact: MOT 0 has 10 failures of weight 1, MOT 1 one failure of weight 2.
    assert!(close(s.impact, 10.0 / 12.0), "{:?}", s.impact);
    assert_eq!(s.latency.count, 100);
}

#[test]
fn stale_buckets_are_reset_on_rotation_never_double_counted_under_concurrent_reads() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    const PER_SECOND: u64 = 40;
    let progress = AtomicI64::new(NOW);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // 2,000 seconds: the 1 s ring (611 slots) wraps three times.
            for sec in 0..2_000i64 {
                let t = NOW + sec * 1_000;
                let mut w = p.writer();
                for i in 0..PER_SECOND {
                    w.apply(&obs(0, t + i as i64, true), t + 999);
                }
                drop(w);
                // Relaxed: a progress hint for the reader; the data is read through the
                // aggregator's own seqlocks.
                progress.store(t + 999, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        });
        s.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let now = progress.load(Ordering::Relaxed);
                let st = agg.status_mot(MotIdx(0), 10_000, now).unwrap();
                let seconds = (st.span.to_ms - st.span.from_ms) / 1_000;
                assert!(
                    st.amount <= PER_SECOND * seconds as u64,
                    "double count: {} in {seconds} s",
                    st.amount
                );
                if st.span.resolution_ms == 1_000 {
                    // Every second before `now`'s was complete when the read began.
                    let complete = ((now / 1_000) * 1_000 - st.span.from_ms.max(NOW)) / 1_000;
                    assert!(
                        st.amount >= PER_SECOND * complete as u64,
                        "lost counts: {} < {complete} s",
                        st.amount
                    );
                }
                reads += 1;
            }
        });
    });
    let st = agg
        .status_mot(MotIdx(0), 10 * MIN as u64, NOW + 2_000_000 - 1)
        .unwrap();
    assert_eq!(st.amount, PER_SECOND * 601);
}

#[test]
fn writers_sharing_a_partition_are_serialised_and_lose_no_update() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(7));
    std::thread::scope(|s| {
        for th in 0..2 {
            let p = &p;
            s.spawn(move || {
                for i in 0..20_000i64 {
                    p.writer()
                        .apply(&obs(th, NOW - (i % 5_000), i % 3 != 0), NOW);
                }
            });
        }
    });
    let s0 = agg.status_mot(MotIdx(0), 10 * MIN as u64, NOW).unwrap();
    let s1 = agg.status_mot(MotIdx(1), 10 * MIN as u64, NOW).unwrap();
    assert_eq!((s0.amount, s1.amount), (20_000, 20_000));
}

#[test]
fn journey_reaching_sco_counts_completed_and_interactions_needed() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    // j1: check-in, failed bag drop, bag drop, boarding = 4 interactions to SCO.
    w.apply(&journey(0, NOW - 50_000, true, "j1"), NOW);
    w.apply(&journey(1, NOW - 40_000, false, "j1"), NOW);
    w.apply(&journey(1, NOW - 30_000, true, "j1"), NOW);
    w.apply(&journey(2, NOW - 20_000, true, "j1"), NOW);
    // j2: straight through.
    for m in 0..3 {
        w.apply(&journey(m, NOW - 10_000 + i64::from(m), true, "j2"), NOW);
    }
    // j3: still going.
    w.apply(&journey(0, NOW - 5_000, true, "j3"), NOW);
    drop(w);
    let v = p.journey("j1", ExpIdx(0)).unwrap();
    assert_eq!(
        (v.interactions, v.reached_sco, v.mots_seen_positions.clone()),
        (4, true, vec![0, 1, 2])
    );
    let e = agg
        .status_experience(ExpIdx(0), 5 * MIN as u64, NOW)
        .unwrap();
    assert_eq!(
        (
            e.journeys_started,
            e.journeys_completed,
            e.journeys_abandoned
        ),
        (3, 2, 0)
    );
    assert_eq!(e.sco_rate, Some(1.0));
    assert_eq!(
        (e.mots_per_sco_count, e.mots_per_sco_p50, e.mots_per_sco_p95),
        (2, Some(3), Some(4))
    );
    assert_eq!(e.mots.len(), 3);
}

#[test]
fn journey_idle_past_timeout_is_abandoned_on_expire() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    w.apply(&journey(0, NOW, true, "lost"), NOW);
    w.apply(&journey(0, NOW, true, "done"), NOW);
    w.apply(&journey(2, NOW + 1, true, "done"), NOW + 1);
    let later = NOW + 45 * MIN;
    w.apply(&obs(1, later, true), later); // moves the watermark past the 30 min timeout
    let r = w.expire_journeys(later);
    assert_eq!((r.abandoned, r.closed_completed, r.open), (1, 1, 0));
    drop(w);
    let e = agg
        .status_experience(ExpIdx(0), 60 * MIN as u64, later)
        .unwrap();
    assert_eq!(
        (
            e.journeys_started,
            e.journeys_completed,
            e.journeys_abandoned
        ),
        (2, 1, 1)
    );
    assert_eq!(e.sco_rate, Some(0.5));
    assert_eq!(p.stats().journeys_abandoned, 1);
}

#[test]
fn warming_partition_expires_journeys_by_watermark_only() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.begin_rebuild(PartitionId(0));
    let mut w = p.writer();
    w.apply(&journey(0, NOW - 24 * 60 * MIN, true, "old"), NOW);
    // The wall clock is a day ahead, but the replay has not reached the timeout yet.
    assert_eq!(w.expire_journeys(NOW).abandoned, 0);
    w.apply(
        &journey(2, NOW - 24 * 60 * MIN + 10 * MIN, true, "old"),
        NOW,
    );
    drop(w);
    agg.finish_rebuild(PartitionId(0));
    assert_eq!(p.writer().expire_journeys(NOW).closed_completed, 1);
}

#[test]
fn full_journey_table_counts_overflow_and_keeps_counting_mots() {
    let agg = aggregator(WindowConfig {
        max_journeys_per_partition: 2,
        ..WindowConfig::default()
    });
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    for id in ["a", "b", "c", "d"] {
        w.apply(&journey(0, NOW, true, id), NOW);
    }
    drop(w);
    assert_eq!(p.stats().journeys_overflow, 2);
    assert_eq!(
        agg.status_mot(MotIdx(0), MIN as u64, NOW).unwrap().amount,
        4
    );
}

#[test]
fn unidentified_mots_are_tracked_bounded_with_overflow() {
    let agg = aggregator(WindowConfig {
        max_unidentified_per_partition: 2,
        ..WindowConfig::default()
    });
    for part in 0..2 {
        let p = agg.partition(PartitionId(part));
        let mut w = p.writer();
        for (i, id) in ["seat-upgrade", "lounge", "seat-upgrade", "wifi"]
            .iter()
            .enumerate()
        {
            let mut o = obs(0, NOW - 1_000 * i as i64, true);
            o.mot = MotKey::Unidentified(id);
            o.channel = Some("app");
            assert_eq!(w.apply(&o, NOW), Applied::Unidentified);
        }
    }
    let u = agg.unidentified();
    let ids: Vec<(&str, u64)> = u.mots.iter().map(|m| (m.id.as_str(), m.count)).collect();
    assert_eq!(ids, vec![("seat-upgrade", 4), ("lounge", 2)]);
    assert_eq!(u.overflow, 2, "wifi found each partition's table full");
    assert_eq!(
        (u.mots[0].first_seen_ms, u.mots[0].last_seen_ms),
        (NOW - 2_000, NOW)
    );
    assert_eq!(u.mots[0].example_channel.as_deref(), Some("app"));
}

#[test]
fn unknown_mot_index_is_counted_not_applied() {
    let agg = aggregator(WindowConfig::default());
    let p = agg.partition(PartitionId(0));
    assert_eq!(
        p.writer().apply(&obs(99, NOW, true), NOW),
        Applied::UnknownMotIndex
    );
    assert_eq!(p.stats().unknown_mot_index, 1);
}

#[test]
fn dropped_partition_leaves_every_view_and_reports_its_mots() {
    let agg = aggregator(WindowConfig::default());
    agg.partition(PartitionId(0))
        .writer()
        .apply(&obs(1, NOW, true), NOW);
    agg.partition(PartitionId(1))
        .writer()
        .apply(&obs(0, NOW, true), NOW);
    let d = agg.drop_partition(PartitionId(0)).unwrap();
    assert_eq!(d.mots, vec![MotIdx(1)]);
    assert_eq!(
        agg.status_mot(MotIdx(1), MIN as u64, NOW).unwrap().amount,
        0
    );
    assert_eq!(
        agg.status_mot(MotIdx(0), MIN as u64, NOW).unwrap().amount,
        1
    );
    assert!(agg.drop_partition(PartitionId(0)).is_none());
}

#[test]
fn rebuild_marks_the_partition_warming_and_its_mots_affected_until_finished() {
    let agg = aggregator(WindowConfig::default());
    agg.partition(PartitionId(3))
        .writer()
        .apply(&obs(1, NOW, true), NOW);
    let fresh = agg.begin_rebuild(PartitionId(3));
    assert_eq!(
        agg.status_mot(MotIdx(1), MIN as u64, NOW).unwrap().amount,
        0,
        "state starts empty"
    );
    fresh.writer().apply(&obs(2, NOW, true), NOW);
    let r = agg.warming();
    assert_eq!(r.partitions, vec![PartitionId(3)]);
    assert_eq!(
        r.mots,
        vec![MotIdx(1), MotIdx(2)],
        "held before, and seen in the replay so far"
    );
    assert!(agg.status_mot(MotIdx(1), MIN as u64, NOW).unwrap().warming);
    assert!(!agg.status_mot(MotIdx(0), MIN as u64, NOW).unwrap().warming);
    assert!(agg.finish_rebuild(PartitionId(3)));
    assert_eq!(agg.warming(), WarmingReport::default());
    assert!(!agg.status_mot(MotIdx(2), MIN as u64, NOW).unwrap().warming);
}

#[test]
fn queries_name_the_bad_argument() {
    let agg = aggregator(WindowConfig::default());
    assert_eq!(
        agg.status_mot(MotIdx(9), MIN as u64, NOW),
        Err(QueryError::UnknownMot(9, 3))
    );
    assert_eq!(
        agg.status_experience(ExpIdx(4), MIN as u64, NOW),
        Err(QueryError::UnknownExperience(4, 1))
    );
    let e = agg.status_all(0, NOW).unwrap_err();
    assert!(e.to_string().starts_with("window_ms: 0"), "{e}");
}

#[test]
fn reasons_and_channels_beyond_their_bounds_count_as_other() {
    let agg = aggregator(WindowConfig {
        max_reasons_per_partition: 3,
        ..WindowConfig::default()
    });
    let p = agg.partition(PartitionId(0));
    let mut w = p.writer();
    let reasons: Vec<String> = (0..12).map(|i| format!("reason-{i:02}")).collect();
    for (i, r) in reasons.iter().enumerate() {
        let mut o = obs(0, NOW - i as i64, false);
        o.failure_reason = Some(r);
        w.apply(&o, NOW);
    }
    drop(w);
    let s = agg.status_mot(MotIdx(0), MIN as u64, NOW).unwrap();
    let listed: u64 = s.top_reasons.iter().map(|r| r.count).sum();
    assert_eq!(
        s.top_reasons.len(),
        3,
        "only 3 reasons interned per partition"
    );
    assert_eq!(
        listed + s.reasons_other,
        12,
        "every failure with a reason is accounted for"
    );
}

#[test]
fn one_mot_stays_within_64_kib_with_the_default_configuration() {
    let agg = aggregator(WindowConfig::default());
    assert!(
        agg.mot_memory_bytes() <= 64 * 1024,
        "{} bytes",
        agg.mot_memory_bytes()
    );
    let p = agg.partition(PartitionId(0));
    // Fill a MOT's counter and detail rings (a rotation allocates the counter ring).
    let fill = |mot: u32| {
        let mut o = obs(mot, NOW, false);
        o.duration_ms = Some(5);
        o.failure_reason = Some("x");
        o.channel = Some("app");
        p.writer().apply(&o, NOW);
        p.writer().apply(&obs(mot, NOW + 2_000, true), NOW + 2_000);
    };
    fill(1); // also creates the experience's rings and interns the labels
    let before = p.memory_bytes();
    fill(0);
    let one_mot = p.memory_bytes() - before;
    assert!(one_mot <= 64 * 1024, "{one_mot} bytes");
    assert_eq!(
        // + its head and ring cell, and the writer's slot memo per detail tier (3 × 12 bytes),
        // all allocated with the partition.
        one_mot + size_of::<[u8; 64]>() + 16 + 3 * 12,
        agg.mot_memory_bytes(),
        "accounting agrees"
    );
}
