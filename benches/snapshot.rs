//! Partition snapshots (the state topic's records): their size, and the time to encode one
//! and to decode + restore one, for one partition holding 1,000 MOTs. Two shapes:
//!
//! - `full`: every MOT has events in every bucket of every tier (1 s for 10 min, 1 min for
//!   6 h, 10 min for 3 days), with latencies, failure reasons and channels, and journeys
//!   open: the largest a snapshot of 1,000 MOTs gets with the default tiers, whatever the
//!   event count.
//! - `hour`: every MOT has events over the last hour only (a fresh deployment).
//! - `delta`: what a busy partition publishes each second instead: the `full` partition
//!   takes a base, then gets one more second of events (10 per MOT, 10,000 in all) and
//!   encodes its delta. Timed: encoding the delta (the publisher's work under the writer
//!   lock) and a follower's decode of it, applied to the base it keeps decoded and
//!   installed (the base's own decode is set-up, not timed: a follower decodes a base once).
//!   Then the delta's size after 10 s to 10 min of such seconds is printed.
//!
//! The sizes are printed from the setup (before compression; the state topic's producer
//! compresses with lz4). Reads as bytes/s.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use motstream_window::{
    Aggregator, ExpIdx, ExperienceSpec, MotIdx, MotKey, MotSpec, Observation, PartitionId,
    PartitionState, Topology, WindowConfig,
};

const NOW: i64 = 1_800_000_000_000;
const MOTS: usize = 1_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const REASONS: [&str; 4] = ["timeout", "card-declined", "no-seat", "system-error"];
const CHANNELS: [&str; 3] = ["kiosk", "app", "web"];

/// 10 MOTs per experience, the last one its SCO.
fn topology() -> Topology {
    let specs = (0..MOTS)
        .map(|i| MotSpec {
            experience: ExpIdx((i / 10) as u32),
            target: 0.98,
            impact_weight: 1.0,
        })
        .collect();
    let exps = (0..MOTS / 10)
        .map(|e| ExperienceSpec {
            sco: MotIdx((e * 10 + 9) as u32),
            journey_timeout_ms: None,
        })
        .collect();
    Topology::new(specs, exps).expect("bench topology is valid")
}

/// Event times that put at least one event in every bucket of every default counter tier
/// back to `span` before `NOW`, oldest first.
fn times(span: i64) -> Vec<i64> {
    let mut t: Vec<i64> = Vec::new();
    for (step, back) in [(10 * MIN, 72 * HOUR), (MIN, 6 * HOUR), (SEC, 10 * MIN)] {
        let back = back.min(span);
        let mut x = NOW - back;
        while x <= NOW {
            t.push(x);
            x += step;
        }
    }
    t.sort_unstable();
    t.dedup();
    t
}

/// A partition filled with one event per MOT per time in `times(span)`.
fn filled(span: i64) -> (Aggregator, std::sync::Arc<PartitionState>, u64) {
    let agg = Aggregator::new(topology(), WindowConfig::default()).expect("default config");
    let p = agg.begin_rebuild(PartitionId(0));
    let mut n = 0u64;
    {
        let mut w = p.writer();
        for (k, t) in times(span).into_iter().enumerate() {
            for m in 0..MOTS {
                let i = k * MOTS + m;
                let success = !i.is_multiple_of(7);
                let journey = format!("j-{}", i % 20_000);
                let obs = Observation {
                    mot: MotKey::Known(MotIdx(m as u32)),
                    event_time_ms: t,
                    success,
                    duration_ms: Some((i % 5_000) as u32 * 13),
                    failure_reason: (!success).then_some(REASONS[i % REASONS.len()]),
                    channel: Some(CHANNELS[i % CHANNELS.len()]),
                    journey_id: Some(&journey),
                };
                w.apply(&obs, NOW);
                n += 1;
            }
        }
        w.set_next_offset(n as i64);
    }
    agg.finish_rebuild(PartitionId(0));
    (agg, p, n)
}

#[allow(clippy::print_stderr)]
fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_1000_mots");
    g.sample_size(10);
    for (name, span) in [("full", 72 * HOUR), ("hour", HOUR)] {
        let (_agg, p, events) = filled(span);
        let bytes = p.writer().encode_snapshot(1, NOW);
        eprintln!(
            "snapshot {name}: {} bytes ({:.1} bytes per MOT) for {events} events, {} journeys open",
            bytes.len(),
            bytes.len() as f64 / MOTS as f64,
            p.stats().journeys_open
        );
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(p.writer().encode_snapshot(1, NOW)))
        });
        let target = Aggregator::new(topology(), WindowConfig::default()).expect("default config");
        g.bench_function(BenchmarkId::new("decode_restore", name), |b| {
            b.iter(|| {
                let snap = target.decode_snapshot(&bytes, 1).expect("valid snapshot");
                black_box(target.restore_partition(snap, false))
            })
        });
    }
    delta(&mut g);
    g.finish();
}

/// The `delta` shape (module doc).
#[allow(clippy::print_stderr)]
fn delta(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let (_agg, p, _) = filled(72 * HOUR);
    let base = p.writer().encode_base(1, NOW, 7);
    one_more_second(&p, 0);
    let bytes = p.writer().encode_delta(1, NOW + SEC, 7);
    eprintln!(
        "snapshot delta: {} bytes after 1 s of 10,000 events, against a base of {} bytes",
        bytes.len(),
        base.len()
    );
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("encode", "delta"), |b| {
        b.iter(|| black_box(p.writer().encode_delta(1, NOW + SEC, 7)))
    });
    let target = Aggregator::new(topology(), WindowConfig::default()).expect("default config");
    g.bench_function(BenchmarkId::new("follow_apply_install", "delta"), |b| {
        b.iter_batched(
            || target.decode_snapshot(&base, 1).expect("valid base"),
            |kept| {
                let d = target.decode_snapshot(&bytes, 1).expect("valid delta");
                let state = target.apply_delta(kept, d).expect("a delta of the base");
                black_box(target.install_copy(&state, false))
            },
            BatchSize::LargeInput,
        )
    });
    // How a delta grows as its base ages, which is what the publisher's choice between a
    // delta and a new base weighs (not timed).
    let mut at = 1;
    for upto in [10, 60, 120, 300, 600] {
        while at < upto {
            one_more_second(&p, at);
            at += 1;
        }
        let bytes = p.writer().encode_delta(1, NOW + upto * SEC, 7);
        eprintln!("snapshot delta: {} bytes after {upto} s", bytes.len());
    }
}

/// Applies second `k` after the base: 10 events per MOT, each MOT busy.
fn one_more_second(p: &PartitionState, k: i64) {
    let mut w = p.writer();
    for e in 0..10 {
        for m in 0..MOTS {
            let obs = Observation {
                mot: MotKey::Known(MotIdx(m as u32)),
                event_time_ms: NOW + SEC * k + SEC * e / 10,
                success: m % 9 != 0,
                duration_ms: Some(250),
                failure_reason: (m % 9 == 0).then_some(REASONS[0]),
                channel: Some(CHANNELS[m % CHANNELS.len()]),
                journey_id: None,
            };
            w.apply(&obs, NOW + SEC * (k + 1));
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
