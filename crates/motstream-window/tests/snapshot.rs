//! Snapshots: a partition restored from its snapshot answers every query exactly as the
//! original did, keeps doing so as both apply the same further events (so the writer's
//! interners, journeys and watermark came back too), and re-encodes to the same bytes; bad
//! bytes are refused with an error, never a panic.

#![allow(clippy::unwrap_used)]

use motstream_window::*;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;
const MOTS: usize = 6;
const STAMP: u64 = 0x5EED;
const REASONS: [&str; 4] = ["timeout", "declined", "jam", "other"];
const CHANNELS: [&str; 3] = ["kiosk", "app", "desk"];

fn tier(resolution_ms: u64, retention_ms: u64) -> TierSpec {
    TierSpec {
        resolution_ms,
        retention_ms,
    }
}

/// Small tiers so that a few hundred events wrap every ring, and small bounds so that the
/// label, unidentified and journey tables fill up.
fn small() -> WindowConfig {
    WindowConfig {
        counter_tiers: vec![
            tier(1_000, 20_000),
            tier(5_000, 120_000),
            tier(30_000, 600_000),
        ],
        detail_tiers: vec![tier(5_000, 20_000), tier(60_000, 600_000)],
        allowed_lateness_ms: 60_000,
        max_future_skew_ms: 3_000,
        journey_timeout_ms: 120_000,
        max_journeys_per_partition: 6,
        max_unidentified_per_partition: 2,
        max_reasons_per_partition: 3,
        max_channels_per_partition: 2,
        ..WindowConfig::default()
    }
}

const WINDOWS: [u64; 7] = [1_000, 5_000, 20_000, 60_000, 120_000, 300_000, 600_000];

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
struct Ev {
    mot: Option<usize>,
    unidentified: u8,
    back_ms: i64,
    success: bool,
    duration: Option<u32>,
    reason: Option<usize>,
    channel: Option<usize>,
    journey: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Event(Ev),
    Expire,
}

fn ops() -> impl Strategy<Value = Vec<(i64, Op)>> {
    let ev = (
        prop_oneof![9 => (0..MOTS).prop_map(Some), 1 => Just(None)],
        0u8..4,
        prop_oneof![6 => 0i64..2_000, 2 => 0i64..30_000, 2 => 0i64..120_000, 1 => -6_000i64..0],
        prop::bool::weighted(0.8),
        prop::option::weighted(0.7, prop_oneof![0u32..40, 1u32..20_000_000]),
        prop::option::weighted(0.8, 0..REASONS.len()),
        prop::option::weighted(0.6, 0..CHANNELS.len()),
        prop::option::weighted(0.7, 0u8..10),
    )
        .prop_map(
            |(mot, unidentified, back_ms, success, duration, reason, channel, journey)| Ev {
                mot,
                unidentified,
                back_ms,
                success,
                duration,
                reason,
                channel,
                journey,
            },
        );
    let op = prop_oneof![12 => ev.prop_map(Op::Event), 1 => Just(Op::Expire)];
    let step = prop_oneof![6 => 0i64..300, 2 => 0i64..5_000, 1 => 0i64..200_000];
    prop::collection::vec((step, op), 1..300)
}

fn apply(p: &PartitionState, now: i64, op: &Op, offset: i64) {
    let mut w = p.writer();
    match op {
        Op::Event(e) => {
            let uid = format!("unknown-{}", e.unidentified);
            let jid = e.journey.map(|j| format!("j-{j}"));
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
            w.apply(&obs, now);
            w.set_next_offset(offset + 1);
        }
        Op::Expire => {
            w.expire_journeys(now);
        }
    }
}

/// Everything a query can see of an aggregator at `now`.
fn views(agg: &Aggregator, now: i64) -> Vec<String> {
    let mut v = Vec::new();
    for w in WINDOWS {
        v.push(format!("{:?}", agg.status_all(w, now).unwrap()));
    }
    v.push(format!("{:?}", agg.unidentified()));
    for p in agg.partitions() {
        v.push(format!("{:?} {:?}", p.stats(), p.mots_with_state()));
        for j in 0..10 {
            for e in 0..2 {
                v.push(format!("{:?}", p.journey(&format!("j-{j}"), ExpIdx(e))));
            }
        }
    }
    v
}

fn snapshot_of(p: &PartitionState, now: i64) -> Vec<u8> {
    p.writer().encode_snapshot(STAMP, now)
}

fn restore(bytes: &[u8]) -> (Aggregator, std::sync::Arc<PartitionState>) {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let snap = agg.decode_snapshot(bytes, STAMP).unwrap();
    let p = agg.restore_partition(snap, false);
    (agg, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_partition_answers_as_the_original_before_and_after_more_events(
        ops in ops(),
        split in 0.0f64..1.0,
    ) {
        let agg = Aggregator::new(topology(), small()).unwrap();
        let p = agg.partition(PartitionId(3));
        let k = ((ops.len() as f64) * split) as usize;
        let mut now = T0;
        for (i, (dt, op)) in ops[..k].iter().enumerate() {
            now += dt;
            apply(&p, now, op, i as i64);
        }
        let bytes = snapshot_of(&p, now);
        let (agg2, p2) = restore(&bytes);
        prop_assert_eq!(p2.id(), PartitionId(3));
        prop_assert_eq!(p2.writer().next_offset(), p.writer().next_offset());
        prop_assert_eq!(views(&agg2, now), views(&agg, now));
        prop_assert_eq!(snapshot_of(&p2, now), bytes, "re-encodes to the same bytes");
        for (i, (dt, op)) in ops[k..].iter().enumerate() {
            now += dt;
            apply(&p, now, op, (k + i) as i64);
            apply(&p2, now, op, (k + i) as i64);
        }
        prop_assert_eq!(views(&agg2, now), views(&agg, now));
        prop_assert_eq!(snapshot_of(&p2, now), snapshot_of(&p, now));
    }

    #[test]
    fn a_base_with_its_deltas_applied_is_the_whole_snapshot_at_each_delta(
        ops in ops(),
        a in 0.0f64..1.0,
        b in 0.0f64..1.0,
    ) {
        let agg = Aggregator::new(topology(), small()).unwrap();
        let p = agg.partition(PartitionId(3));
        let (k1, k2) = {
            let n = ops.len() as f64;
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            ((n * x) as usize, (n * y) as usize)
        };
        let mut now = T0;
        let run = |from: usize, to: usize, now: &mut i64| {
            for (i, (dt, op)) in ops[from..to].iter().enumerate() {
                *now += dt;
                apply(&p, *now, op, (from + i) as i64);
            }
        };
        run(0, k1, &mut now);
        let base = p.writer().encode_base(STAMP, now, 7);
        let follower = Aggregator::new(topology(), small()).unwrap();
        let mut copy = follower.decode_snapshot(&base, STAMP).unwrap();
        prop_assert!(!copy.is_delta());
        prop_assert_eq!(copy.base(), 7);
        for (from, to) in [(k1, k2), (k2, ops.len())] {
            run(from, to, &mut now);
            let delta = p.writer().encode_delta(STAMP, now, 7);
            let d = follower.decode_snapshot(&delta, STAMP).unwrap();
            prop_assert!(d.is_delta());
            copy = follower.apply_delta(copy, d).unwrap();
            follower.install_copy(&copy, false);
            prop_assert_eq!(views(&follower, now), views(&agg, now));
            let whole = snapshot_of(&p, now);
            prop_assert_eq!(snapshot_of(&follower.partition(PartitionId(3)), now), whole);
        }
    }

    #[test]
    fn corrupted_snapshots_are_refused_or_restore_without_panicking(
        ops in ops(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let agg = Aggregator::new(topology(), small()).unwrap();
        let p = agg.partition(PartitionId(0));
        let mut now = T0;
        for (i, (dt, op)) in ops.iter().enumerate() {
            now += dt;
            apply(&p, now, op, i as i64);
        }
        let mut bytes = snapshot_of(&p, now);
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= b;
        }
        let agg2 = Aggregator::new(topology(), small()).unwrap();
        if let Ok(snap) = agg2.decode_snapshot(&bytes, STAMP) {
            let p2 = agg2.restore_partition(snap, false);
            // Whatever it holds must be queryable and writable.
            let _ = views(&agg2, now);
            for (i, (dt, op)) in ops.iter().take(20).enumerate() {
                apply(&p2, now + dt, op, i as i64);
            }
            let _ = views(&agg2, now);
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let agg = Aggregator::new(topology(), small()).unwrap();
        let empty = snapshot_of(&agg.partition(PartitionId(0)), T0);
        // Magic, version, fingerprint and stamp: 21 bytes.
        let mut bytes = empty[..21].to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(snap) = agg.decode_snapshot(&bytes, STAMP) {
            agg.restore_partition(snap, false);
            let _ = views(&agg, T0);
        }
    }
}

#[test]
fn every_strict_prefix_of_a_snapshot_is_refused() {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let p = agg.partition(PartitionId(1));
    let ev = |i: i64| {
        Op::Event(Ev {
            mot: Some((i % MOTS as i64) as usize),
            unidentified: 0,
            back_ms: i % 3_000,
            success: i % 4 != 0,
            duration: Some((i * 37) as u32),
            reason: Some((i % 4) as usize),
            channel: Some((i % 3) as usize),
            journey: Some((i % 7) as u8),
        })
    };
    for i in 0..200 {
        apply(&p, T0 + i * 700, &ev(i), i);
    }
    let bytes = snapshot_of(&p, T0 + 200 * 700);
    for n in 0..bytes.len() {
        assert!(
            agg.decode_snapshot(&bytes[..n], STAMP).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(agg.decode_snapshot(&longer, STAMP).is_err());
    assert!(agg.decode_snapshot(&bytes, STAMP).is_ok());
}

#[test]
fn a_delta_holds_journeys_abandoned_ahead_of_the_watermark_of_a_quiet_partition() {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let p = agg.partition(PartitionId(4));
    for (i, mot) in [0usize, 3, 1].into_iter().enumerate() {
        let e = Ev {
            mot: Some(mot),
            unidentified: 0,
            back_ms: 0,
            success: true,
            duration: None,
            reason: None,
            channel: None,
            journey: Some(i as u8),
        };
        apply(&p, T0, &Op::Event(e), i as i64);
    }
    let base = p.writer().encode_base(STAMP, T0, 9);
    // No events since the base: the journeys close on the wall clock, in the bucket of their
    // last interaction + timeout, ahead of the watermark.
    let later = T0 + 600_000;
    apply(&p, later, &Op::Expire, 3);
    assert_eq!(p.stats().journeys_abandoned, 3);
    let follower = Aggregator::new(topology(), small()).unwrap();
    let kept = follower.decode_snapshot(&base, STAMP).unwrap();
    let delta = follower
        .decode_snapshot(&p.writer().encode_delta(STAMP, later, 9), STAMP)
        .unwrap();
    let state = follower.apply_delta(kept, delta).unwrap();
    follower.install_copy(&state, false);
    assert_eq!(views(&follower, later), views(&agg, later));
    assert_eq!(
        snapshot_of(&follower.partition(PartitionId(4)), later),
        snapshot_of(&p, later)
    );
}

#[test]
fn a_delta_of_another_base_or_a_whole_snapshot_as_delta_is_refused() {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let p = agg.partition(PartitionId(1));
    let decode = |bytes: Vec<u8>| agg.decode_snapshot(&bytes, STAMP).unwrap();
    let base = || decode(p.writer().encode_base(STAMP, T0, 7));
    let other = decode(p.writer().encode_delta(STAMP, T0, 8));
    assert!(matches!(
        agg.apply_delta(base(), other),
        Err(SnapshotError::OtherBase {
            found: 8,
            expected: 7
        })
    ));
    assert!(matches!(
        agg.apply_delta(base(), base()),
        Err(SnapshotError::NotADelta(_))
    ));
}

#[test]
fn another_layout_or_stamp_is_refused_by_name() {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let bytes = snapshot_of(&agg.partition(PartitionId(0)), T0);
    let other = Aggregator::new(topology(), WindowConfig::default()).unwrap();
    assert!(matches!(
        other.decode_snapshot(&bytes, STAMP),
        Err(SnapshotError::OtherLayout { .. })
    ));
    assert!(matches!(
        agg.decode_snapshot(&bytes, STAMP + 1),
        Err(SnapshotError::OtherStamp { .. })
    ));
    assert_eq!(
        agg.decode_snapshot(b"{\"json\": 1}", STAMP).unwrap_err(),
        SnapshotError::NotASnapshot
    );
}

#[test]
fn a_restore_while_warming_reports_the_partition_until_finished() {
    let agg = Aggregator::new(topology(), small()).unwrap();
    let p = agg.partition(PartitionId(2));
    apply(
        &p,
        T0,
        &Op::Event(Ev {
            mot: Some(1),
            unidentified: 0,
            back_ms: 0,
            success: true,
            duration: None,
            reason: None,
            channel: None,
            journey: None,
        }),
        41,
    );
    let bytes = snapshot_of(&p, T0);
    let snap = agg.decode_snapshot(&bytes, STAMP).unwrap();
    assert_eq!(snap.next_offset(), Some(42));
    assert_eq!(snap.watermark_ms(), Some(T0));
    agg.restore_partition(snap, true);
    assert_eq!(agg.warming().partitions, vec![PartitionId(2)]);
    assert_eq!(agg.status_mot(MotIdx(1), 60_000, T0).unwrap().amount, 1);
    assert!(agg.finish_rebuild(PartitionId(2)));
    assert!(agg.warming().partitions.is_empty());
}
