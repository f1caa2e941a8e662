//! The sending loop of `motstream loadgen`: the simulator's events, encoded and handed to
//! librdkafka, paced by the simulator's schedule or as fast as the producer takes them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use motstream_core::Encoding;
use motstream_core::codec::{CONTENT_TYPE_HEADER, encode_into};
use motstream_sim::{SimEvent, Simulator};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::delivery::Timed;
use super::plan::{Limits, Pace, Stop};
use crate::produce::send_when_room;

/// Simulated time the paced loop advances at most per batch, in ms, and events a step aims at
/// most for: they bound a batch (and the memory it holds) when the loop catches up after
/// falling behind, at any rate.
const MAX_STEP_MS: i64 = 10;
const MAX_BATCH: f64 = 10_000.0;
/// Longest nap between paced batches, in ms: short enough to keep batches small and the
/// limits checked often.
const MAX_NAP_MS: i64 = 2;
/// How long to wait for room when librdkafka's queue is full: its threads drain it in
/// batches, so a short wait is enough and a long one would leave the broker idle.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_micros(200);

/// The producer for loadgen. Batches are large (librdkafka's default of 10,000 per request,
/// lingering 5 ms) and lz4-compressed like the e2e bench's producer; idempotence with
/// `acks=all` keeps retries from duplicating an event, so the topic gets exactly what was
/// sent. Every delivery is reported: loadgen counts and times each one. `extra` overrides.
pub fn producer(
    brokers: &str,
    extra: &BTreeMap<String, String>,
) -> Result<ThreadedProducer<Timed>, KafkaError> {
    motstream_ingest::kafka_config(
        brokers,
        &[
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("compression.type", "lz4"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("queue.buffering.max.messages", "1000000"),
        ],
        extra,
    )
    .create_with_context(Timed::default())
}

/// Counters the loop updates as it goes, for progress reports.
#[derive(Debug, Default)]
pub struct Progress {
    /// Events handed to the producer (a refused one counts, and is a failed delivery).
    pub sent: AtomicU64,
    /// Their key and payload bytes.
    pub bytes: AtomicU64,
    /// How far the simulator's clock has run since the loop started, in ms: real time since
    /// then minus this is how far the sending trails the schedule, however long a batch takes.
    pub sim_ms: AtomicU64,
}

/// Events between progress updates within a batch.
const PROGRESS_EVERY: u64 = 1024;

/// What the loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub events: u64,
    pub bytes: u64,
    pub stop: Stop,
    /// How far the simulator's clock trailed real time when the loop stopped, in ms.
    pub lag_ms: u64,
}

/// Where one run sends.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub producer: &'a ThreadedProducer<Timed>,
    pub topic: &'a str,
    pub encoding: Encoding,
}

impl std::fmt::Debug for Target<'_> {
    // The producer has no Debug of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("topic", &self.topic)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// Sends the simulator's events until `limits`, keyed by journey id, with a `content-type`
/// header. Each event's `event_time_ms` is the wall-clock time it is handed over (the
/// simulator decides what happens and in what order; the send decides when), so consumers
/// see fresh events at any pace. `sim_start_ms` is the start time the simulator was made
/// with: paced, its clock runs from there in step with real time from this call on, so the
/// time it took to make (its warm-up) is neither a backlog nor a burst.
pub fn run(
    sim: &mut Simulator,
    sim_start_ms: i64,
    to: Target<'_>,
    pace: Pace,
    limits: Limits,
    progress: &Progress,
) -> Sent {
    let tally = &to.producer.context().0;
    let mut buf: Vec<SimEvent> = Vec::new();
    // librdkafka copies key and payload, so one buffer serves every event.
    let mut payload = Vec::new();
    let content_type = to.encoding.content_type();
    let (mut events, mut bytes) = (0u64, 0u64);
    let start_us = tally.stamp();
    let mut sim_clock = sim_start_ms;
    let step_ms = match pace {
        Pace::Rate(r) => ((MAX_BATCH * 1000.0 / r) as i64).clamp(1, MAX_STEP_MS),
        Pace::Unpaced => 1,
    };
    let elapsed_ms = |now_us: usize| i64::try_from(now_us.saturating_sub(start_us) / 1000);
    loop {
        let now_us = tally.stamp();
        let elapsed = Duration::from_micros(now_us.saturating_sub(start_us) as u64);
        let due = sim_start_ms.saturating_add(elapsed_ms(now_us).unwrap_or(i64::MAX));
        let lag = u64::try_from(due - sim_clock).unwrap_or(0);
        if let Some(stop) = limits.reached(events, elapsed) {
            let lag_ms = if pace == Pace::Unpaced { 0 } else { lag };
            return Sent {
                events,
                bytes,
                stop,
                lag_ms,
            };
        }
        let target = match pace {
            Pace::Rate(_) => due.min(sim_clock + step_ms),
            Pace::Unpaced => sim_clock + step_ms,
        };
        if target > sim_clock {
            sim.advance(target, &mut buf);
            sim_clock = target;
            // Relaxed: a progress counter, read by the reporter only.
            let ran = u64::try_from(sim_clock - sim_start_ms).unwrap_or(0);
            progress.sim_ms.store(ran, Ordering::Relaxed);
        }
        let left = limits.count.map_or(u64::MAX, |c| c - events);
        let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        // Draining all of `buf`: events past the count are dropped, never sent.
        for mut ev in buf.drain(..).take(take) {
            let stamp = tally.stamp();
            ev.event.event_time_ms = tally.wall_ms(stamp);
            payload.clear();
            encode_into(&ev.event, to.encoding, &mut payload);
            let rec = BaseRecord::with_opaque_to(to.topic, stamp)
                .key(ev.key.as_str())
                .payload(payload.as_slice())
                .headers(OwnedHeaders::new().insert(Header {
                    key: CONTENT_TYPE_HEADER,
                    value: Some(content_type),
                }));
            if let Err(e) = send_when_room(to.producer, rec, QUEUE_FULL_BACKOFF) {
                tally.failed(&e);
            }
            events += 1;
            bytes += (ev.key.len() + payload.len()) as u64;
            if events % PROGRESS_EVERY == 0 {
                // Relaxed: progress counters, read by the reporter only.
                progress.sent.store(events, Ordering::Relaxed);
                progress.bytes.store(bytes, Ordering::Relaxed);
            }
        }
        // Relaxed: progress counters, read by the reporter only.
        progress.sent.store(events, Ordering::Relaxed);
        progress.bytes.store(bytes, Ordering::Relaxed);
        // Paced and on schedule: nothing is due before the next millisecond at the earliest.
        if matches!(pace, Pace::Rate(_)) && sim_clock >= due {
            let next = sim.next_due_ms().unwrap_or(i64::MAX);
            let nap = (next - sim_clock).clamp(0, MAX_NAP_MS);
            std::thread::sleep(Duration::from_millis(u64::try_from(nap).unwrap_or(1)));
        }
    }
}
