//! Alert evaluation for 10,000 MOTs per tick: one counts-only bulk read of every rule window
//! over all partitions, then every (MOT, rule) state machine. The catalog gives each MOT the
//! SRE Workbook's four burn-rate rules plus a floor rule (50,000 rules, 7 distinct windows:
//! 5m, 30m, 1h, 2h, 6h, 24h, 3d); the aggregator holds 3 days of history in 2 partitions, with
//! traffic in every window of every MOT; 1% of MOTs are failing (their rules fire and read
//! every window each tick). Target: under 50 ms per tick on one core.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use motstream_alert::{Engine, EngineConfig, Policy};
use motstream_core::Catalog;
use motstream_window::{
    Aggregator, CountsCache, MotIdx, MotKey, Observation, PartitionId, WindowConfig,
};

const MOTS: usize = 10_000;
const PER_EXP: usize = 10;
const NOW: i64 = 1_700_000_000_000;

fn catalog() -> Catalog {
    motstream_benches::generated_catalog(MOTS, PER_EXP)
}

fn aggregator(c: &Catalog) -> Aggregator {
    let agg = Aggregator::new(
        motstream_server::state::topology(c).expect("topology"),
        WindowConfig::default(),
    )
    .expect("aggregator");
    // Event times, oldest first: every 10 min over 3 days, every minute over the last 6 h,
    // every second over the last 10 min, so every tier of every window has data.
    let mut times: Vec<i64> = (0..432)
        .map(|i| NOW - (3 * 86_400_000 - i * 600_000))
        .collect();
    times.extend((0..360).map(|i| NOW - (6 * 3_600_000 - i * 60_000)));
    times.extend((0..600).map(|i| NOW - (600_000 - i * 1_000)));
    times.sort_unstable();
    let parts = [agg.partition(PartitionId(0)), agg.partition(PartitionId(1))];
    for (k, &t) in times.iter().enumerate() {
        let p = &parts[k % 2];
        let mut w = p.writer();
        for m in 0..MOTS as u32 {
            // 1% of MOTs fail half the time: some rules fire; the rest fail 1 in 100.
            let success = if m % 100 == 0 {
                k % 2 == 0
            } else {
                k % 100 != 0
            };
            let obs = Observation::new(MotKey::Known(MotIdx(m)), t, success);
            w.apply(&obs, t);
        }
    }
    agg
}

#[allow(clippy::print_stderr)]
fn bench(c: &mut Criterion) {
    let cat = catalog();
    let agg = aggregator(&cat);
    let policy = Policy::compile(&cat);
    let windows = policy.windows_ms.clone();
    let mut engine = Engine::new(policy, EngineConfig::default());
    let mut cache = CountsCache::default();
    let first = engine.tick(
        &agg.counts_reader_cached(&windows, NOW, &mut cache)
            .expect("reader"),
        NOW,
    );
    eprintln!(
        "alert bench: {} MOTs, {} rules, windows {:?} ms; first tick: {} transitions; aggregator {} MiB",
        MOTS,
        engine.policy().rule_count(),
        windows,
        first.len(),
        agg.memory_bytes() >> 20
    );
    let mut g = c.benchmark_group("alert");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    // What the service does every tick: read lazily (each MOT's windows only as its rules
    // need them), the final part of long windows from the cache kept between ticks.
    g.bench_function("tick_10k_mots", |b| {
        // One second later each tick, as in the service: windows slide, minute boundaries pass.
        let mut now = NOW;
        b.iter(|| {
            now += 1_000;
            let counts = agg
                .counts_reader_cached(&windows, now, &mut cache)
                .expect("reader");
            black_box(engine.tick(&counts, now).len())
        })
    });
    // The same without the cache: every window read whole, as on the first tick or after
    // every partition was rebuilt.
    g.bench_function("tick_10k_mots_uncached", |b| {
        let mut now = NOW;
        b.iter(|| {
            now += 1_000;
            let counts = agg.counts_reader(&windows, now).expect("reader");
            black_box(engine.tick(&counts, now).len())
        })
    });
    // Every window of every MOT read (the worst case: every rule near its threshold).
    g.bench_function("bulk_read_10k_mots_7_windows", |b| {
        b.iter(|| black_box(agg.counts_bulk(&windows, NOW).expect("bulk")))
    });
    let counts = agg.counts_bulk(&windows, NOW).expect("bulk");
    g.bench_function("state_machines_50k_rules", |b| {
        b.iter(|| black_box(engine.tick(&counts, NOW).len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
