//! The hot path the service runs: classified events through the service's own sink
//! (`AggregatorState`, what ingest feeds), on one thread, as the one ingest thread calls it.
//!
//! - `per_event`: `Sink::apply` for each event, which takes the partition registry lookup and
//!   the partition's writer lock per event: the path ingest took before it applied batches.
//! - `per_batch`: `Sink::apply_batch` once per partition per polled batch (runs of
//!   `BATCH / PARTITIONS` events), the path ingest takes now.
//!
//! Event times advance: each partition's event clock moves 1 ms every `EVENTS_PER_MS` events
//! (10,000 events/s per partition, 80,000/s over the 8 partitions), so the 1 s buckets rotate
//! as they do in the service, instead of one second replayed.
//! Workloads, over 1,000 and 100,000 MOTs: `counters` (outcome only, no journey), `latency_reason`
//! (a duration on every event and a failure reason on one in 13, no journey), and `journeys`
//! (outcome only, each event in one of 10,000 journeys in flight, 1,250 per partition, at a MOT
//! of the journey's experience picked at random: the journey tracker and the per-MOT funnel on
//! top of the counters; a journey that reaches its SCO starts again under the same id).

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use motstream_core::{Catalog, Classification, InteractionEvent, Outcome, classify};
use motstream_ingest::{PartitionKey, Sink};
use motstream_server::config::ServiceConfig;
use motstream_server::state::AggregatorState;

const PARTITIONS: usize = 8;
/// One polled batch: what ingest applies between two polls at full speed.
const BATCH: usize = 4_096;
const EVENTS_PER_MS: usize = 10;
const START: i64 = 1_700_000_000_000;
/// Journeys in flight per partition in the `journeys` workload.
const JOURNEYS_PER_PARTITION: usize = 1_250;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Counters,
    LatencyReason,
    Journeys,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Counters => "counters",
            Self::LatencyReason => "latency_reason",
            Self::Journeys => "journeys",
        }
    }
}

/// One batch of events, grouped by partition as ingest groups a polled batch, with the
/// classification ingest would have made.
struct Input {
    ids: Vec<String>,
    journeys: Vec<String>,
    /// Per event: partition, MOT index, journey index (the `journeys` workload only).
    picks: Vec<(usize, usize, Option<usize>)>,
    workload: Workload,
}

impl Input {
    fn new(catalog: &Catalog, workload: Workload, seed: u64) -> Self {
        let ids: Vec<String> = catalog.mots.iter().map(|m| m.id.clone()).collect();
        let journeys: Vec<String> = (0..PARTITIONS * JOURNEYS_PER_PARTITION)
            .map(|j| format!("j-{j}"))
            .collect();
        let mut x = seed | 1;
        let mut next = move || {
            // xorshift: cheap, repeatable random picks.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let picks = (0..BATCH)
            .map(|i| {
                let part = i / (BATCH / PARTITIONS);
                if workload == Workload::Journeys {
                    // A journey keyed to this partition, at a MOT of its own experience.
                    let j = part * JOURNEYS_PER_PARTITION
                        + (next() % JOURNEYS_PER_PARTITION as u64) as usize;
                    let exp = &catalog.experiences[j % catalog.experiences.len()];
                    let mot = exp.mots[(next() % exp.mots.len() as u64) as usize];
                    (part, mot.0 as usize, Some(j))
                } else {
                    (part, (next() % ids.len() as u64) as usize, None)
                }
            })
            .collect();
        Self {
            ids,
            journeys,
            picks,
            workload,
        }
    }

    /// The batch's events with their event times set from `clock` (per partition, ms).
    fn events(&self, clock: &[i64; PARTITIONS]) -> Vec<(usize, InteractionEvent<'_>)> {
        self.picks
            .iter()
            .enumerate()
            .map(|(i, &(part, mot, journey))| {
                let detail = self.workload == Workload::LatencyReason;
                let failed = i % 13 == 0;
                let e = InteractionEvent {
                    event_id: None,
                    mot_id: Cow::Borrowed(&self.ids[mot]),
                    experience_id: None,
                    journey_id: journey.map(|j| Cow::Borrowed(self.journeys[j].as_str())),
                    event_time_ms: clock[part]
                        + ((i % (BATCH / PARTITIONS)) / EVENTS_PER_MS) as i64,
                    outcome: if failed {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                    failure_reason: (detail && failed).then_some(Cow::Borrowed("printer-jam")),
                    channel: None,
                    duration_ms: detail.then_some((i % 90_000) as u32),
                    producer_id: None,
                    attributes: Vec::new(),
                };
                (part, e)
            })
            .collect()
    }
}

fn key(part: usize) -> PartitionKey {
    PartitionKey {
        topic: 0,
        partition: part as i32,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink");
    g.throughput(Throughput::Elements(BATCH as u64));
    for mots in [1_000usize, 100_000] {
        let catalog = Arc::new(motstream_benches::generated_catalog(mots, 10));
        for workload in [
            Workload::Counters,
            Workload::LatencyReason,
            Workload::Journeys,
        ] {
            let input = Input::new(&catalog, workload, 7);
            for batched in [false, true] {
                let state = AggregatorState::new(Arc::clone(&catalog), &ServiceConfig::defaults())
                    .expect("aggregator");
                for p in 0..PARTITIONS {
                    state.assigned(key(p));
                    state.live(key(p));
                }
                let mut clock = [START; PARTITIONS];
                let id = BenchmarkId::new(
                    format!(
                        "{}/{}",
                        workload.name(),
                        if batched { "per_batch" } else { "per_event" }
                    ),
                    mots,
                );
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let mut spent = std::time::Duration::ZERO;
                        for _ in 0..iters {
                            // Built outside the timed part: ingest decodes these from messages.
                            let events = input.events(&clock);
                            let classes: Vec<Classification> = events
                                .iter()
                                .map(|(_, e)| classify(e, &catalog).expect("classified"))
                                .collect();
                            let now = clock.iter().max().copied().unwrap_or(START)
                                + (BATCH / PARTITIONS / EVENTS_PER_MS) as i64;
                            let t0 = std::time::Instant::now();
                            if batched {
                                for (run, cls) in events
                                    .chunks(BATCH / PARTITIONS)
                                    .zip(classes.chunks(BATCH / PARTITIONS))
                                {
                                    state.apply_batch(key(run[0].0), now, &mut |sink| {
                                        for ((_, e), &class) in run.iter().zip(cls) {
                                            sink.apply(e, class);
                                        }
                                    });
                                }
                            } else {
                                for ((p, e), &class) in events.iter().zip(&classes) {
                                    state.apply(key(*p), e, class, now);
                                }
                            }
                            spent += t0.elapsed();
                            black_box(state.applied());
                            for t in &mut clock {
                                *t += (BATCH / PARTITIONS / EVENTS_PER_MS) as i64;
                            }
                        }
                        spent
                    });
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
