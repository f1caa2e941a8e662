//! The aggregator's hot path and its reads: updates/s at 1 and 2 writer threads (each thread
//! its own partition, as one Kafka consumer per partition) with 1,000 and 100,000 MOT keys,
//! counter-only and with latency + failure reason recorded; and the cost of one MOT's full
//! status (per window) and of the status of all MOTs. Reads as elements/s. Memory per MOT is
//! printed from the setup, and so is a paired measurement of two writers against one (see
//! `paired_scaling`; it runs whatever criterion filter is given). The two writer threads are
//! pinned one per core and allocate their own partition and input, as a consumer thread does.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use motstream_window::{
    Aggregator, ExpIdx, ExperienceSpec, MotIdx, MotKey, MotSpec, Observation, PartitionId,
    PartitionState, Topology, WindowConfig,
};

const BASE_MS: i64 = 1_700_000_000_000;
const BATCH: usize = 1_024;
const REASONS: [&str; 8] = [
    "timeout",
    "card-declined",
    "bag-overweight",
    "no-seat",
    "system-error",
    "agent-unavailable",
    "document-invalid",
    "cancelled",
];
const CHANNELS: [&str; 4] = ["kiosk", "app", "web", "counter"];

/// 10 MOTs per experience, the last one its SCO.
fn topology(mots: usize) -> Topology {
    let specs = (0..mots)
        .map(|i| MotSpec {
            experience: ExpIdx((i / 10) as u32),
            target: 0.98,
            impact_weight: 1.0 + (i % 3) as f64,
        })
        .collect();
    let exps = (0..mots.div_ceil(10))
        .map(|e| ExperienceSpec {
            sco: MotIdx(((e * 10 + 9).min(mots - 1)) as u32),
            journey_timeout_ms: None,
        })
        .collect();
    Topology::new(specs, exps).expect("bench topology is valid")
}

#[derive(Debug)]
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counters,
    LatencyReason,
    Full,
}

/// One batch of events on the MOTs `keys[from..]` (wrapping), event times increasing over
/// ~1 s from `start_ms`.
fn batch(
    keys: &[u32],
    from: usize,
    kind: Kind,
    seed: u64,
    start_ms: i64,
) -> Vec<Observation<'static>> {
    let mut r = Rng(seed | 1);
    (0..BATCH)
        .map(|i| {
            let x = r.next();
            let success = x % 100 >= 5;
            let detail = kind != Kind::Counters;
            Observation {
                mot: MotKey::Known(MotIdx(keys[(from + i) % keys.len()])),
                event_time_ms: start_ms + (i as i64 * 1_000) / BATCH as i64,
                success,
                duration_ms: detail.then(|| 20 + ((x >> 40) as u32 % 5_000)),
                failure_reason: (detail && !success)
                    .then(|| REASONS[(x >> 8) as usize % REASONS.len()]),
                channel: (kind == Kind::Full).then(|| CHANNELS[(x >> 4) as usize % CHANNELS.len()]),
                journey_id: None,
            }
        })
        .collect()
}

/// One pass: every key once (a few twice, to fill the last batch), in random order. At 1,000
/// keys the buffer (~100 KB) stays in the core's cache beside the keys' heads, as a decoded
/// event does in the service; the input is not what is measured.
fn stream(keys: usize, kind: Kind, seed: u64) -> Vec<Vec<Observation<'static>>> {
    let mut r = Rng(seed | 1);
    let mut order: Vec<u32> = (0..keys as u32).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (r.next() % (i as u64 + 1)) as usize);
    }
    (0..keys.div_ceil(BATCH).max(1))
        .map(|i| {
            batch(
                &order,
                i * BATCH,
                kind,
                seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
                BASE_MS,
            )
        })
        .collect()
}

fn apply_batch(p: &PartitionState, events: &[Observation<'_>], now_ms: i64) {
    let mut w = p.writer();
    for e in events {
        black_box(w.apply(e, now_ms));
    }
}

#[allow(clippy::print_stderr)]
fn report_memory(agg: &Aggregator, label: &str) {
    let parts = agg.partitions();
    let mots: usize = parts.iter().map(|p| p.mots_with_state().len()).sum();
    let bytes = agg.memory_bytes();
    let (late, future) = parts
        .iter()
        .map(|p| p.stats())
        .fold((0, 0), |(l, f), s| (l + s.late, f + s.rejected_future));
    eprintln!(
        "window memory [{label}]: one MOT with counter + detail rings = {} bytes = {:.1} KiB (budget 64 KiB); \
         measured {:.1} MiB for {mots} MOT states = {:.1} KiB each, incl. experience rollups and label tables \
         (rings are allocated on a MOT's first rotation / first detail); late {late}, rejected {future}",
        agg.mot_memory_bytes(),
        agg.mot_memory_bytes() as f64 / 1024.0,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / mots.max(1) as f64 / 1024.0,
    );
}

fn updates(c: &mut Criterion) {
    let mut g = c.benchmark_group("window_update");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (keys, kind, kname) in [
        (1_000, Kind::Counters, "counters"),
        (1_000, Kind::LatencyReason, "latency_reason"),
        (1_000, Kind::Full, "latency_reason_channel"),
        (100_000, Kind::Counters, "counters"),
    ] {
        let now = BASE_MS + 1_000;
        // One thread, one partition.
        let agg = Aggregator::new(topology(keys), WindowConfig::default()).expect("default config");
        let p = agg.partition(PartitionId(0));
        let events = stream(keys, kind, 7);
        for b in &events {
            apply_batch(&p, b, now); // allocate every key's state before measuring
        }
        report_memory(&agg, &format!("{kname}, {keys} keys"));
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut next = 0;
        g.bench_function(BenchmarkId::new(format!("{kname}/1_thread"), keys), |b| {
            b.iter(|| {
                next = (next + 1) % events.len();
                apply_batch(&p, &events[next], now)
            })
        });
        drop(p);
        drop(agg);

        // Two OS threads writing concurrently, each to its own partition. The threads live
        // for the whole benchmark, so a sample times the writes, not thread start-up; each
        // sample hands both the number of batches to apply and waits for both to finish.
        let agg = Aggregator::new(topology(keys), WindowConfig::default()).expect("default config");
        g.throughput(Throughput::Elements(2 * BATCH as u64));
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        std::thread::scope(|s| {
            let (done_tx, done) = mpsc::channel::<Done>();
            let agg = &agg;
            let go: Vec<mpsc::Sender<Job>> = [(0i32, 7u64), (1, 11)]
                .into_iter()
                .map(|(i, seed)| {
                    let (tx, rx) = mpsc::channel::<Job>();
                    let done_tx = done_tx.clone();
                    let core = cores.get(i as usize).copied();
                    s.spawn(move || {
                        if let Some(c) = core {
                            core_affinity::set_for_current(c);
                        }
                        // Each writer allocates and first touches its own partition and
                        // input, as a consumer thread does.
                        let p = agg.partition(PartitionId(i));
                        let e = stream(keys, kind, seed);
                        for b in &e {
                            apply_batch(&p, b, now);
                        }
                        let mut ctl = Control::new(seed);
                        while let Some(job) = spin_recv(&rx) {
                            let start = Instant::now();
                            let mut marks = Vec::new();
                            for b in 0..job.batches as usize {
                                match job.work {
                                    Work::Window => apply_batch(&p, &e[b % e.len()], now),
                                    Work::Memory => ctl.memory(),
                                    Work::Alu => ctl.alu(),
                                }
                                if job.slice > 0 && (b as u64 + 1).is_multiple_of(job.slice) {
                                    marks.push(start.elapsed());
                                }
                            }
                            black_box(&ctl);
                            let _ = done_tx.send((i, marks));
                        }
                    });
                    tx
                })
                .collect();
            g.bench_function(BenchmarkId::new(format!("{kname}/2_threads"), keys), |b| {
                // The time is the slower writer's.
                b.iter_custom(|iters| trial(&go, &done, &[0, 1], Job::new(Work::Window, iters)).0)
            });
            paired_scaling(&go, &done, &format!("{kname}, {keys} keys"));
            // Dropping the senders ends the writers; the scope joins them.
            drop(go);
        });
    }
    g.finish();
}

/// What a writer thread runs: batches of its partition's events, or of a control that
/// shares nothing (see [`Control`]).
#[derive(Clone, Copy, Debug)]
enum Work {
    Window,
    Memory,
    Alu,
}

#[derive(Clone, Copy)]
struct Job {
    work: Work,
    batches: u64,
    /// When not 0, also note the time every `slice` batches (see `series`).
    slice: u64,
}

impl Job {
    fn new(work: Work, batches: u64) -> Self {
        Self {
            work,
            batches,
            slice: 0,
        }
    }
}

/// A writer's reply: its index and, for a series, the time at the end of each slice.
type Done = (i32, Vec<Duration>);

/// The three trials of a round: writer 0 alone, writer 1 alone, both.
const TRIALS: [&[usize]; 3] = [&[0], &[1], &[0, 1]];

/// Workloads that share nothing between the writer threads, for reading the window's scaling
/// against: a `BATCH` of random increments in a 128 KiB table of the thread's own (past L1,
/// inside L2, like a 1,000-key partition: bound by memory latency), and a `BATCH` of steps of
/// four independent xorshift generators (bound by the execution units).
#[derive(Debug)]
struct Control {
    table: Vec<u64>,
    rng: [Rng; 4],
    acc: [u64; 4],
}

impl Control {
    fn new(seed: u64) -> Self {
        Self {
            table: vec![0; 1 << 14],
            rng: [1, 3, 5, 9].map(|k| Rng(seed.wrapping_mul(31) | k)),
            acc: [0; 4],
        }
    }

    fn memory(&mut self) {
        let mask = self.table.len() - 1;
        for _ in 0..BATCH {
            let x = self.rng[0].next();
            let slot = &mut self.table[(x as usize) & mask];
            *slot = slot.wrapping_add(x >> 32);
        }
    }

    fn alu(&mut self) {
        for _ in 0..BATCH / 4 {
            for (a, r) in self.acc.iter_mut().zip(&mut self.rng) {
                *a ^= r.next();
            }
        }
    }
}

/// The next job, waited for on the CPU instead of asleep, so that neither vCPU idles between
/// trials, as a consumer under load does not. With a blocking wait, timed per slice, 9 of 12
/// window trials began at about half speed, for 15 ms to about 1 s.
fn spin_recv(rx: &mpsc::Receiver<Job>) -> Option<Job> {
    loop {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
}

/// Runs `job` on each of the writer threads `which`; returns the wall time and the writers'
/// replies.
fn trial(
    go: &[mpsc::Sender<Job>],
    done: &mpsc::Receiver<Done>,
    which: &[usize],
    job: Job,
) -> (Duration, Vec<Done>) {
    let start = Instant::now();
    for &i in which {
        go[i].send(job).expect("writer thread alive");
    }
    let replies = which
        .iter()
        .map(|_| done.recv().expect("writer thread alive"))
        .collect();
    (start.elapsed(), replies)
}

/// Two threads against one, measured in adjacent short trials on the same writer threads and
/// partitions, and printed: writer 0 alone, writer 1 alone, both (in rotating order), and the
/// same three trials of each [`Control`] in the same round.
///
/// Timed in ~4 ms slices (`WINDOW_SERIES=1`), a window writer on this VM runs at full speed or
/// at about half for spells of tens of ms to over a second, on either core and sometimes on
/// both, alone (the other writer spinning) as well as beside the other writer, while both
/// controls on the same cores show almost none; two writers together both run at full speed
/// outside a spell. What causes the spells is not known (this guest has no hardware counters). A 100 ms trial that
/// meets one reads slow whichever of the three it is, so the median of the rounds' ratios
/// says how often spells came; the best trial of each kind over the rounds is the one a spell
/// slowed least, and the ratio of those bests says whether two writers slow each other.
#[allow(clippy::print_stderr)]
fn paired_scaling(go: &[mpsc::Sender<Job>], done: &mpsc::Receiver<Done>, label: &str) {
    const ROUNDS: usize = 21;
    let works = [Work::Window, Work::Memory, Work::Alu];
    // ~100 ms alone for each workload.
    let sizes = works.map(|w| {
        let probe = 200;
        let t = trial(go, done, &[0], Job::new(w, probe)).0.as_secs_f64();
        ((probe as f64 * 0.1 / t.max(1e-6)) as u64).max(1)
    });
    if std::env::var_os("WINDOW_SERIES").is_some() {
        series(go, done, label, &works, &sizes);
    }
    // rates[work][round] = M events/s of [writer 0 alone, writer 1 alone, both].
    let mut rates = vec![Vec::with_capacity(ROUNDS); works.len()];
    for round in 0..ROUNDS {
        for (k, (&w, &n)) in works.iter().zip(&sizes).enumerate() {
            let mut r = [0.0; 3];
            for step in 0..3 {
                let x = (round + step) % 3;
                let which = TRIALS[x];
                let secs = trial(go, done, which, Job::new(w, n)).0.as_secs_f64();
                r[x] = (which.len() as u64 * n * BATCH as u64) as f64 / secs / 1e6;
            }
            rates[k].push(r);
        }
    }
    let ratio = |r: [f64; 3]| r[2] / r[0].max(r[1]);
    let summary: Vec<String> = works
        .iter()
        .zip(&rates)
        .map(|(w, rs)| {
            let mut ratios: Vec<f64> = rs.iter().map(|&r| ratio(r)).collect();
            ratios.sort_by(f64::total_cmp);
            let best = [0, 1, 2].map(|x| rs.iter().map(|r| r[x]).fold(0.0, f64::max));
            format!(
                "{w:?}: best {:.2}x (alone {:.1} and {:.1}, both {:.1} M/s), median of rounds \
                 {:.2}x",
                ratio(best),
                best[0],
                best[1],
                best[2],
                ratios[ratios.len() / 2],
            )
        })
        .collect();
    eprintln!(
        "window scaling [{label}]: both writers / the faster writer alone, {ROUNDS} rounds of \
         ~100 ms trials; {}",
        summary.join("; ")
    );
}

/// Prints each writer's rate per slice of ~4 ms over ~1 s, for each of `works` alone and
/// together.
#[allow(clippy::print_stderr)]
fn series(
    go: &[mpsc::Sender<Job>],
    done: &mpsc::Receiver<Done>,
    label: &str,
    works: &[Work],
    sizes: &[u64],
) {
    for (&w, &n) in works.iter().zip(sizes) {
        for which in TRIALS {
            // `n` batches take ~100 ms alone.
            let slice = (n / 25).max(1);
            let job = Job {
                work: w,
                batches: n * 10,
                slice,
            };
            for (writer, marks) in trial(go, done, which, job).1 {
                let mut prev = Duration::ZERO;
                let rates: Vec<String> = marks
                    .iter()
                    .map(|&m| {
                        let r = (slice * BATCH as u64) as f64 / (m - prev).as_secs_f64() / 1e6;
                        prev = m;
                        format!("{r:.0}")
                    })
                    .collect();
                eprintln!(
                    "window series [{label}] {w:?} {which:?} writer {writer}, M/s per {slice} \
                     batches: {}",
                    rates.join(" ")
                );
            }
        }
    }
}

/// An aggregator of `keys` MOTs (in 10-MOT experiences) with 3 days of traffic in 4
/// partitions: one event per MOT every 10 s for the first experience (which holds the MOT of
/// the one-MOT status bench), one per minute for the rest.
fn populated(keys: usize, now: i64) -> Aggregator {
    let agg = Aggregator::new(topology(keys), WindowConfig::default()).expect("default config");
    let parts: Vec<_> = (0..4).map(|i| agg.partition(PartitionId(i))).collect();
    let mut r = Rng(99);
    let three_days = 72 * 3_600_000;
    let mut writers: Vec<_> = parts.iter().map(|p| p.writer()).collect();
    let mut t = now - three_days;
    while t <= now {
        let tenth = (t / 10_000) % 6 == 0;
        for m in 0..keys {
            if m >= 10 && !tenth {
                continue;
            }
            let x = r.next();
            let success = x % 100 >= 3;
            let obs = Observation {
                mot: MotKey::Known(MotIdx(m as u32)),
                event_time_ms: t,
                success,
                duration_ms: Some(20 + (x >> 40) as u32 % 5_000),
                failure_reason: (!success).then(|| REASONS[(x >> 8) as usize % REASONS.len()]),
                channel: Some(CHANNELS[(x >> 4) as usize % CHANNELS.len()]),
                journey_id: None,
            };
            black_box(writers[(x >> 32) as usize % 4].apply(&obs, now));
        }
        t += 10_000;
    }
    drop(writers);
    agg
}

fn snapshots(c: &mut Criterion) {
    let now = BASE_MS + 123_456;
    let keys = 1_000;
    let agg = populated(keys, now);
    report_memory(
        &agg,
        &format!("snapshot aggregator, {keys} keys, 4 partitions, 3 days of traffic"),
    );
    let mut g = c.benchmark_group("window_status");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    for (name, w) in [
        ("1m", 60_000u64),
        ("5m", 300_000),
        ("30m", 1_800_000),
        ("1h", 3_600_000),
        ("2h", 7_200_000),
        ("6h", 21_600_000),
        ("24h", 86_400_000),
        ("3d", 259_200_000),
    ] {
        g.bench_function(BenchmarkId::new("one_mot_4_partitions", name), |b| {
            b.iter(|| black_box(agg.status_mot(MotIdx(3), w, now)))
        });
    }
    g.throughput(Throughput::Elements(keys as u64));
    for (name, w) in [("5m", 300_000u64), ("1h", 3_600_000), ("3d", 259_200_000)] {
        g.bench_function(BenchmarkId::new("all_1000_mots_4_partitions", name), |b| {
            b.iter(|| black_box(agg.status_all(w, now)))
        });
    }
    g.finish();
}

criterion_group!(benches, updates, snapshots);
criterion_main!(benches);
