//! The journey funnel of an experience: per MOT, in journey order, the journeys that reached
//! it and the abandoned ones that stopped there, over the same windows as every other count,
//! merged over partitions by addition, and kept by a partition's snapshot.

#![allow(clippy::unwrap_used)]

use motstream_window::*;

const NOW: i64 = 1_700_000_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const TIMEOUT: i64 = MIN;
const STAMP: u64 = 0xF00D;

/// Experience 0: MOTs 0 (check-in), 1 (bag drop), 2 (boarding, the SCO). Journeys are
/// abandoned after a minute idle; lateness is 10 s, so a tick at `t` closes journeys idle
/// since before `t - 10 s - 1 min`.
fn aggregator() -> Aggregator {
    let topo = one_experience(3, MotIdx(2));
    let config = WindowConfig {
        allowed_lateness_ms: 10 * SEC as u64,
        ..WindowConfig::default()
    };
    Aggregator::new(topo, config).unwrap()
}

/// One experience of `n` MOTs with `sco` as its SCO, journeys abandoned after `TIMEOUT`.
fn one_experience(n: usize, sco: MotIdx) -> Topology {
    let mots = (0..n)
        .map(|_| MotSpec {
            experience: ExpIdx(0),
            target: 0.9,
            impact_weight: 1.0,
        })
        .collect();
    Topology::new(
        mots,
        vec![ExperienceSpec {
            sco,
            journey_timeout_ms: Some(TIMEOUT as u64),
        }],
    )
    .unwrap()
}

fn step(w: &mut PartitionWriter<'_>, journey: &str, mot: u32, t: i64, success: bool) {
    let o = Observation {
        journey_id: Some(journey),
        ..Observation::new(MotKey::Known(MotIdx(mot)), t, success)
    };
    assert_eq!(w.apply(&o, t), Applied::Applied);
}

/// `(reached, abandoned here)` per MOT, in journey order.
fn funnel(agg: &Aggregator, window_ms: i64, now: i64) -> Vec<(Option<u64>, u64)> {
    let s = agg
        .status_experience(ExpIdx(0), window_ms as u64, now)
        .unwrap();
    assert_eq!(
        s.funnel.iter().map(|f| f.mot).collect::<Vec<_>>(),
        s.mots.iter().map(|m| m.mot).collect::<Vec<_>>(),
        "one step per MOT, in journey order"
    );
    assert_eq!(
        s.funnel
            .iter()
            .map(|f| f.journeys_abandoned_here)
            .sum::<u64>(),
        s.journeys_abandoned
    );
    s.funnel
        .iter()
        .map(|f| (f.journeys_reached, f.journeys_abandoned_here))
        .collect()
}

/// Four journeys: one completes, one stops after check-in, one after two tries at bag drop
/// (the second failing), one gets no further than check-in but is still open.
fn four_journeys(p: &PartitionState, t0: i64) {
    let mut w = p.writer();
    for (j, mot, dt, ok) in [
        ("done", 0, 0, true),
        ("done", 1, 1, true),
        ("done", 2, 2, true),
        ("quit-early", 0, 0, true),
        ("stuck", 0, 0, true),
        ("stuck", 1, 1, true),
        ("stuck", 1, 2, false),
        ("open", 0, 50, true),
    ] {
        step(&mut w, j, mot, t0 + dt * SEC, ok);
    }
}

#[test]
fn each_journey_counts_once_at_every_mot_it_reached_and_once_where_it_stopped() {
    let agg = aggregator();
    let p = agg.partition(PartitionId(0));
    four_journeys(&p, NOW);
    let before = NOW + 55 * SEC;
    p.writer().expire_journeys(before);
    assert_eq!(
        funnel(&agg, 5 * MIN, before),
        vec![(Some(4), 0), (Some(2), 0), (Some(1), 0)],
        "nothing abandoned before the timeout"
    );
    // Past "quit-early"'s and "stuck"'s timeouts, not "open"'s (last seen 50 s later).
    let after = NOW + 2 * SEC + TIMEOUT + 10 * SEC + 1;
    p.writer().expire_journeys(after);
    assert_eq!(
        funnel(&agg, 5 * MIN, after),
        vec![(Some(4), 1), (Some(2), 1), (Some(1), 0)]
    );
    let s = agg
        .status_experience(ExpIdx(0), 5 * MIN as u64, after)
        .unwrap();
    assert_eq!(
        (
            s.journeys_started,
            s.journeys_completed,
            s.journeys_abandoned
        ),
        (4, 1, 2)
    );
}

#[test]
fn funnel_counts_leave_a_window_as_it_moves_on_and_stay_in_longer_ones() {
    let agg = aggregator();
    let p = agg.partition(PartitionId(0));
    four_journeys(&p, NOW);
    let later = NOW + 10 * MIN;
    p.writer().expire_journeys(later);
    // The journeys reached their MOTs 10 min ago and were abandoned 8 to 9 min ago.
    assert_eq!(
        funnel(&agg, 5 * MIN, later),
        vec![(Some(0), 0), (Some(0), 0), (Some(0), 0)]
    );
    assert_eq!(
        funnel(&agg, 60 * MIN, later),
        vec![(Some(4), 2), (Some(2), 1), (Some(1), 0)],
        "\"open\" was abandoned too by now, after check-in"
    );
    // Three days on, the longest window no longer holds them either.
    let gone = NOW + 73 * 60 * MIN;
    assert_eq!(
        funnel(&agg, 72 * 60 * MIN, gone),
        vec![(Some(0), 0), (Some(0), 0), (Some(0), 0)]
    );
}

#[test]
fn two_partitions_merge_by_addition() {
    let both = aggregator();
    let (p0, p1) = (
        both.partition(PartitionId(0)),
        both.partition(PartitionId(1)),
    );
    let (one, other) = (aggregator(), aggregator());
    for (p, t0) in [
        (&p0, NOW),
        (&p1, NOW + 7 * SEC),
        (&one.partition(PartitionId(0)), NOW),
        (&other.partition(PartitionId(1)), NOW + 7 * SEC),
    ] {
        four_journeys(p, t0);
        p.writer().expire_journeys(NOW + 5 * MIN);
    }
    let now = NOW + 5 * MIN;
    let sum: Vec<(Option<u64>, u64)> = funnel(&one, 10 * MIN, now)
        .iter()
        .zip(funnel(&other, 10 * MIN, now))
        .map(|(a, b)| (a.0.zip(b.0).map(|(x, y)| x + y), a.1 + b.1))
        .collect();
    assert_eq!(funnel(&both, 10 * MIN, now), sum);
    assert_eq!(sum, vec![(Some(8), 4), (Some(4), 2), (Some(2), 0)]);
    // The per-partition aggregates add up to the same numbers.
    let plan = both.plan(10 * MIN as u64, now).unwrap();
    let mut merged = MotAggregate::default();
    for p in [&p0, &p1] {
        merged.merge(&p.mot_aggregate(MotIdx(1), &plan));
    }
    assert_eq!(
        (merged.journeys_reached, merged.journeys_abandoned_here),
        (4, 2)
    );
}

#[test]
fn a_restored_partition_keeps_its_funnel_and_where_open_journeys_stand() {
    let agg = aggregator();
    let p = agg.partition(PartitionId(2));
    four_journeys(&p, NOW);
    p.writer().expire_journeys(NOW + 55 * SEC);
    let bytes = p.writer().encode_snapshot(STAMP, NOW + 55 * SEC);
    let copy = aggregator();
    let q = copy.restore_partition(copy.decode_snapshot(&bytes, STAMP).unwrap(), false);
    let now = NOW + 55 * SEC;
    assert_eq!(funnel(&copy, 5 * MIN, now), funnel(&agg, 5 * MIN, now));
    // The open journeys' last MOTs came back: both abandon them where the original does.
    let later = NOW + 5 * MIN;
    p.writer().expire_journeys(later);
    q.writer().expire_journeys(later);
    assert_eq!(
        funnel(&copy, 10 * MIN, later),
        vec![(Some(4), 2), (Some(2), 1), (Some(1), 0)]
    );
    assert_eq!(
        funnel(&copy, 10 * MIN, later),
        funnel(&agg, 10 * MIN, later)
    );
}

#[test]
fn a_snapshot_of_the_previous_format_version_is_refused_by_name() {
    let agg = aggregator();
    let p = agg.partition(PartitionId(0));
    four_journeys(&p, NOW);
    let mut bytes = p.writer().encode_snapshot(STAMP, NOW);
    bytes[4] = 3;
    let e = agg.decode_snapshot(&bytes, STAMP).unwrap_err();
    assert_eq!(
        e,
        SnapshotError::OtherVersion {
            found: 3,
            expected: 4
        }
    );
    assert!(e.to_string().contains("version 3"), "{e}");
}

#[test]
fn mots_beyond_the_64th_of_an_experience_report_no_reached_count_but_still_where_journeys_stopped()
{
    let n = 66;
    let agg = Aggregator::new(one_experience(n, MotIdx(0)), WindowConfig::default()).unwrap();
    let p = agg.partition(PartitionId(0));
    {
        let mut w = p.writer();
        step(&mut w, "far", 63, NOW, true);
        step(&mut w, "far", 65, NOW + SEC, true);
    }
    let later = NOW + TIMEOUT + 20 * MIN;
    p.writer().expire_journeys(later);
    let s = agg
        .status_experience(ExpIdx(0), 60 * MIN as u64, later)
        .unwrap();
    let at = |i: usize| {
        let f = s.funnel[i];
        (f.journeys_reached, f.journeys_abandoned_here)
    };
    assert_eq!(s.funnel.len(), n);
    assert_eq!(
        (at(63), at(64), at(65)),
        ((Some(1), 0), (None, 0), (None, 1))
    );
}

#[test]
fn a_funnel_ring_costs_what_funnel_memory_bytes_says_and_only_once_a_journey_reaches_the_mot() {
    let agg = Aggregator::new(one_experience(3, MotIdx(2)), WindowConfig::default()).unwrap();
    let p = agg.partition(PartitionId(0));
    {
        let mut w = p.writer();
        // The journey table and MOT 1's funnel exist, MOT 0's counter ring too (a rotation
        // allocates it), but no journey has reached MOT 0 yet.
        step(&mut w, "j", 1, NOW, true);
        for t in [NOW, NOW + 2 * SEC] {
            let o = Observation::new(MotKey::Known(MotIdx(0)), t, true);
            assert_eq!(w.apply(&o, t), Applied::Applied);
        }
    }
    let before = p.memory_bytes();
    // The same journey reaches MOT 0: no new journey entry, only MOT 0's funnel ring.
    step(&mut p.writer(), "j", 0, NOW + 3 * SEC, true);
    assert_eq!(p.memory_bytes() - before, agg.funnel_memory_bytes());
    assert_eq!(
        agg.funnel_memory_bytes(),
        16_884,
        "the figure README and the docs give for the default configuration"
    );
}
