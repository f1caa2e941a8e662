//! The ingest loop: poll a batch, decode, classify and apply it, settle dead-letter
//! acknowledgements, commit what is safe, and look after paused and rebuilding partitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use motstream_core::codec::CONTENT_TYPE_HEADER;
use motstream_core::{Catalog, Classification, Decoder, EventError, InteractionEvent, classify};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::config::{IngestConfig, IngestError};
use crate::context::{IngestContext, Parts, now_ms};
use crate::dlq::{Ack, Dlq};
use crate::health::Health;
use crate::metrics as m;
use crate::partition::PartState;
use crate::sink::{Apply, PartitionKey, Sink};
use crate::{kafka_config, lifecycle};

/// How long a partition stays paused after a failed dead-letter write, at first and at most.
const PAUSE_FIRST: Duration = Duration::from_secs(2);
const PAUSE_MAX: Duration = Duration::from_secs(30);

/// Moves acknowledged dead-letter writes out of `inflight`; a failed one holds its
/// partition's commit point below it (see `PartState::commit_point`). Returns the failed ones.
pub(crate) fn settle_acks(parts: &mut Parts, acks: Vec<Ack>) -> Vec<(PartitionKey, i64, String)> {
    let mut failed = Vec::new();
    for (key, offset, err) in acks {
        if let Some(st) = parts.get_mut(&key) {
            st.inflight.remove(&offset);
            if let Some(e) = err {
                st.dead_letter_failed(offset);
                failed.push((key, offset, e));
            }
        }
    }
    failed
}

/// Per-batch tallies, recorded in the metrics once per batch rather than once per event.
#[derive(Default)]
struct Tally {
    events: u64,
    bytes: u64,
    replayed: u64,
    duplicates: u64,
    rejects: HashMap<&'static str, u64>,
}

struct Loop<'c> {
    consumer: &'c BaseConsumer<IngestContext>,
    ctx: &'c IngestContext,
    catalog: &'c Catalog,
    decoder: Decoder,
}

impl Loop<'_> {
    /// Applies the polled messages, grouped by partition in each partition's offset order, so
    /// that the sink takes each partition's state once per batch rather than once per event.
    /// `order` is a buffer reused across batches.
    fn apply_all(
        &self,
        parts: &mut Parts,
        batch: &[BorrowedMessage<'_>],
        order: &mut Vec<(PartitionKey, u32)>,
        now: i64,
        tally: &mut Tally,
        failed: &mut Vec<(PartitionKey, i64, String)>,
    ) {
        order.clear();
        order.extend(
            batch
                .iter()
                .enumerate()
                .filter_map(|(i, m)| Some((self.ctx.key_of(m)?, u32::try_from(i).ok()?))),
        );
        // Stable: a partition's messages keep their (offset) order.
        order.sort_by_key(|&(key, _)| key);
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            let key = run[0].0;
            // Revoked since it was fetched, or paused: it will be read again from its offset.
            let Some(st) = parts.get_mut(&key) else {
                continue;
            };
            if st.paused_until.is_some() {
                continue;
            }
            self.ctx.sink.apply_batch(key, now, &mut |sink| {
                for &(_, i) in run {
                    self.handle(st, key, &batch[i as usize], now, tally, failed, sink);
                }
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle(
        &self,
        st: &mut PartState,
        key: PartitionKey,
        msg: &BorrowedMessage<'_>,
        now: i64,
        tally: &mut Tally,
        failed: &mut Vec<(PartitionKey, i64, String)>,
        sink: &mut dyn Apply,
    ) {
        let offset = msg.offset();
        if offset < st.next_apply {
            // Read again after a seek back: applied already. Only a dead-letter write that
            // failed is made again.
            if let Some(from) = st.dlq_retry_from
                && offset >= from
                && let Err(err) = self.decode(msg, now)
            {
                self.dead_letter(st, key, msg, &err, failed);
            }
            return;
        }
        st.dlq_retry_from = None;
        let replay = offset < st.replay_until;
        match self.decode(msg, now) {
            Ok((event, _)) if Self::duplicate(st, &event) => tally.duplicates += 1,
            Ok((event, class)) => sink.apply(&event, class),
            // Rejects below the committed offset went to the dead-letter topic before.
            Err(err) if !replay => {
                *tally.rejects.entry(err.reason()).or_default() += 1;
                if let EventError::FutureTimestamp { mot_id, .. } = &err {
                    sink.rejected_future(mot_id);
                }
                self.dead_letter(st, key, msg, &err, failed);
            }
            Err(_) => {}
        }
        if replay {
            st.replayed += 1;
            tally.replayed += 1;
        } else {
            tally.events += 1;
            tally.bytes += msg.payload().map_or(0, <[u8]>::len) as u64;
        }
        st.next_apply = offset + 1;
    }

    /// Decodes, validates and classifies the message's payload.
    fn decode<'m>(
        &self,
        msg: &'m BorrowedMessage<'_>,
        now: i64,
    ) -> Result<(InteractionEvent<'m>, Classification), EventError> {
        let payload = msg.payload().unwrap_or_default();
        let content_type = msg.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key.eq_ignore_ascii_case(CONTENT_TYPE_HEADER))
                .and_then(|h| h.value)
        });
        let event = self.decoder.decode(payload, content_type, now)?;
        let class = classify(&event, self.catalog)?;
        Ok((event, class))
    }

    fn duplicate(st: &mut PartState, event: &InteractionEvent<'_>) -> bool {
        match (&mut st.dedup, event.event_id.as_deref()) {
            (Some(d), Some(id)) => d.is_duplicate(id, event.event_time_ms),
            _ => false,
        }
    }

    fn dead_letter(
        &self,
        st: &mut PartState,
        key: PartitionKey,
        msg: &BorrowedMessage<'_>,
        err: &motstream_core::EventError,
        failed: &mut Vec<(PartitionKey, i64, String)>,
    ) {
        match self.ctx.dlq.send(key, msg, err) {
            Ok(()) => {
                st.inflight.insert(msg.offset());
            }
            Err(e) => {
                st.dead_letter_failed(msg.offset());
                failed.push((key, msg.offset(), e.to_string()));
            }
        }
    }

    /// Pauses the partition and rewinds it to the failed offset, so that nothing past the
    /// dead letter is committed before the dead letter is written.
    fn pause_for_dlq(&self, parts: &mut Parts, key: PartitionKey, offset: i64, error: &str) {
        let Some(st) = parts.get_mut(&key) else {
            return;
        };
        let topic = self.ctx.topic(key).to_owned();
        let wait = if st.paused_until.is_some() {
            PAUSE_MAX
        } else {
            PAUSE_FIRST
        };
        st.paused_until = Some(Instant::now() + wait);
        st.dead_letter_failed(offset);
        metrics::counter!(m::DLQ_FAILURES).increment(1);
        warn!(
            topic,
            partition = key.partition,
            offset,
            error,
            "dead-letter write failed; partition paused"
        );
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(&topic, key.partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            warn!(error = %e, "pausing the partition failed");
        }
        if let Err(e) = self.consumer.seek(
            &topic,
            key.partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        ) {
            warn!(error = %e, "seeking back to the failed dead letter failed");
        }
        self.ctx.report(key, st);
    }

    /// Commit points of live partitions that moved past what was sent.
    fn commits(
        &self,
        parts: &mut Parts,
        sent: &mut HashMap<PartitionKey, i64>,
    ) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (key, st) in parts.iter() {
            let cp = st.commit_point();
            let last = sent
                .get(key)
                .copied()
                .unwrap_or(st.committed)
                .max(st.committed);
            if st.live && st.replay_until >= 0 && cp > last {
                let _ = tpl.add_partition_offset(
                    self.ctx.topic(*key),
                    key.partition,
                    Offset::Offset(cp),
                );
                sent.insert(*key, cp);
            }
        }
        tpl
    }

    /// Once a second: resume paused partitions, finish stuck rebuilds, report progress.
    fn tick(&self, parts: &mut Parts, sent: &mut HashMap<PartitionKey, i64>, log_progress: bool) {
        let now = Instant::now();
        let positions = self.consumer.position().ok();
        for (key, st) in parts.iter_mut() {
            if st.paused_until.is_some_and(|t| t <= now) {
                st.paused_until = None;
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition(self.ctx.topic(*key), key.partition);
                if let Err(e) = self.consumer.resume(&tpl) {
                    warn!(error = %e, "resuming the partition failed");
                }
                info!(
                    topic = self.ctx.topic(*key),
                    partition = key.partition,
                    "partition resumed; retrying its dead letters"
                );
            }
            if !st.live {
                // Offsets the consumer never hands out (transaction markers, compacted
                // records) can sit just below the committed offset: the position says the
                // replay is over even when no message reached it.
                let position = positions
                    .as_ref()
                    .and_then(|p| p.find_partition(self.ctx.topic(*key), key.partition))
                    .map(|e| e.offset());
                if let Some(Offset::Offset(pos)) = position
                    && pos >= st.replay_until
                    && st.next_apply < st.replay_until
                {
                    st.next_apply = st.replay_until;
                }
                if log_progress && !st.caught_up() {
                    let total = (st.replay_until - st.rebuild_from).max(1);
                    let done = (st.next_apply - st.rebuild_from).max(0);
                    let secs = st.since.elapsed().as_secs_f64().max(0.001);
                    let rate = st.replayed as f64 / secs;
                    let eta = if rate > 0.0 {
                        (total - done) as f64 / rate
                    } else {
                        f64::INFINITY
                    };
                    info!(
                        topic = self.ctx.topic(*key),
                        partition = key.partition,
                        percent = done * 100 / total,
                        events_per_sec = rate.round(),
                        eta_secs = eta.round(),
                        "rebuilding partition"
                    );
                    metrics::gauge!(m::REBUILD_REMAINING, "topic" => self.ctx.topic(*key).to_owned(), "partition" => key.partition.to_string()).set((total - done) as f64);
                }
            }
            self.ctx.report(*key, st);
        }
        // Re-send commits that may have failed.
        for (key, st) in parts.iter() {
            if sent.get(key).is_some_and(|&s| s > st.committed) {
                sent.remove(key);
            }
        }
    }

    fn go_live(&self, parts: &mut Parts) {
        for (key, st) in parts.iter_mut() {
            if !st.live && st.caught_up() {
                st.live = true;
                self.ctx.sink.live(*key);
                metrics::gauge!(m::REBUILD_REMAINING, "topic" => self.ctx.topic(*key).to_owned(), "partition" => key.partition.to_string()).set(0.0);
                info!(
                    topic = self.ctx.topic(*key),
                    partition = key.partition,
                    events = st.replayed,
                    secs = st.since.elapsed().as_secs_f64(),
                    "partition rebuilt, live"
                );
                self.ctx.report(*key, st);
            }
        }
    }
}

fn record(tally: Tally, started: Instant) {
    if tally.events > 0 {
        metrics::counter!(m::EVENTS).increment(tally.events);
        metrics::counter!(m::BYTES).increment(tally.bytes);
    }
    if tally.duplicates > 0 {
        metrics::counter!(m::DUPLICATES).increment(tally.duplicates);
    }
    if tally.replayed > 0 {
        metrics::counter!(m::REPLAYED).increment(tally.replayed);
    }
    for (reason, n) in tally.rejects {
        metrics::counter!(m::REJECTS, "reason" => reason).increment(n);
    }
    metrics::histogram!(m::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
}

/// Runs ingest on the calling thread until `shutdown` is set, then commits what was applied
/// and leaves the group. Broker outages are waited out (librdkafka reconnects with backoff);
/// health says what is wrong meanwhile. A consumer that stays outside the group while a
/// broker answers (see [`crate::group::WEDGE_AFTER`]) is replaced by a new one, its
/// partitions' state dropped (the new assignment rebuilds it). Returns within
/// [`crate::lifecycle::STOP_WITHIN`] of `shutdown` being set unless a rebalance callback is
/// blocked in a broker request; the service bounds that case itself.
pub fn run(
    cfg: &IngestConfig,
    catalog: Arc<Catalog>,
    sink: Arc<dyn Sink>,
    health: Arc<Health>,
    shutdown: Arc<AtomicBool>,
) -> Result<(), IngestError> {
    m::describe();
    let dlq = Arc::new(
        Dlq::new(
            kafka_config(&cfg.brokers, &[], &cfg.kafka),
            cfg.dlq_topic.clone(),
        )
        .map_err(|source| IngestError::Client {
            what: "dead-letter producer",
            source,
        })?,
    );
    // Shared with the consumers that replace this one if it wedges, like the dead letters.
    let state = crate::state_topic::open(cfg).map(Arc::new);
    loop {
        let consumer = lifecycle::connect(cfg, &sink, &health, &dlq, &state, &shutdown)?;
        info!(brokers = %cfg.brokers, group = %cfg.group_id, topics = ?cfg.topics, dlq = %cfg.dlq_topic, "ingest started");
        health.set_running(true);
        match consume(cfg, &consumer, &catalog, &health, &shutdown) {
            Ended::Shutdown => {
                lifecycle::close(consumer, lifecycle::CLOSE_WITHIN);
                // The dead-letter and state-topic producers' destroy joins their broker
                // threads: dropped on return, it would be outside ingest's bound.
                lifecycle::close_within(
                    (dlq, state),
                    "ingest producers",
                    lifecycle::PRODUCERS_CLOSE_WITHIN,
                );
                info!("ingest stopped");
                health.set_stopped("shut down".to_owned());
                return Ok(());
            }
            Ended::Wedged(why) => lifecycle::replace(consumer, &health, &why),
        }
    }
}

/// Why [`consume`] returned.
enum Ended {
    /// Shutdown was asked for; the final commit is done.
    Shutdown,
    /// The consumer is stuck outside the group; why.
    Wedged(String),
}

fn consume(
    cfg: &IngestConfig,
    consumer: &BaseConsumer<IngestContext>,
    catalog: &Catalog,
    health: &Health,
    shutdown: &AtomicBool,
) -> Ended {
    let ctx = consumer.context();
    let lp = Loop {
        consumer,
        ctx,
        catalog,
        decoder: Decoder::new(cfg.limits),
    };
    let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(cfg.batch_max.max(1));
    let mut order = Vec::with_capacity(batch.capacity());
    let mut sent: HashMap<PartitionKey, i64> = HashMap::new();
    let mut last_tick = Instant::now();
    let mut last_progress = Instant::now();
    let mut failed = Vec::new();
    let mut rebalances_seen = 0;
    // Acquire pairs with the Release store of whoever asks for shutdown.
    while !shutdown.load(Ordering::Acquire) {
        let mut broker_ok = true;
        let mut timeout = Duration::from_millis(100);
        while batch.len() < batch.capacity() {
            let polled = consumer.poll(timeout);
            // A rebalance callback ran inside that poll: messages fetched before it for the
            // partitions it assigned or revoked belong to the old assignment. A revoked one's
            // would be skipped anyway; a re-assigned one's would be applied ahead of its
            // replay and make the replay look done. Messages returned after the callback
            // are the new assignment's.
            if let Some(touched) = ctx.take_touched(&mut rebalances_seen)
                && !touched.is_empty()
            {
                batch.retain(|m| ctx.key_of(m).is_none_or(|k| !touched.contains(&k)));
            }
            match polled {
                Some(Ok(msg)) => batch.push(msg),
                Some(Err(e)) => {
                    broker_ok = false;
                    health.broker_error(e.to_string());
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
        if broker_ok && !batch.is_empty() {
            health.broker_ok();
        }
        let started = Instant::now();
        let now = now_ms();
        let mut tally = Tally::default();
        let commit = {
            let mut parts = ctx.parts();
            lp.apply_all(&mut parts, &batch, &mut order, now, &mut tally, &mut failed);
            failed.extend(settle_acks(&mut parts, ctx.dlq.drain()));
            for (key, offset, error) in failed.drain(..) {
                lp.pause_for_dlq(&mut parts, key, offset, &error);
            }
            lp.go_live(&mut parts);
            if last_tick.elapsed() >= Duration::from_secs(1) {
                if let Some(why) = health.wedged(Instant::now()) {
                    return Ended::Wedged(why);
                }
                let progress = last_progress.elapsed() >= Duration::from_secs(2);
                lp.tick(&mut parts, &mut sent, progress);
                ctx.sink.tick(now);
                if let Some(s) = &ctx.state {
                    s.publish(&*ctx.sink, &parts, now);
                }
                if progress {
                    last_progress = Instant::now();
                }
                last_tick = Instant::now();
            }
            lp.commits(&mut parts, &mut sent)
        };
        batch.clear();
        health.add_rejects(&tally.rejects);
        record(tally, started);
        if commit.count() > 0 {
            metrics::counter!(m::COMMITS).increment(1);
            if let Err(e) = consumer.commit(&commit, CommitMode::Async) {
                warn!(error = %e, "queueing an offset commit failed");
            }
        }
    }
    shut_down(consumer, &lp);
    Ended::Shutdown
}

/// Finishes cleanly: dead letters written, final offsets committed, group left.
fn shut_down(consumer: &BaseConsumer<IngestContext>, lp: &Loop<'_>) {
    let ctx = lp.ctx;
    info!("ingest stopping: flushing dead letters and committing");
    let broker = ctx.health.broker_answers(Instant::now());
    // With the broker away nothing would land: do not spend the shutdown bound waiting.
    let flush = if broker {
        lifecycle::FLUSH_WITHIN
    } else {
        Duration::ZERO
    };
    if let Err(e) = ctx.dlq.flush(flush) {
        warn!(error = %e, "dead-letter writes still pending at shutdown");
    }
    let commit = {
        let mut parts = ctx.parts();
        // Failed writes hold the final commit below them; the next start writes them again.
        settle_acks(&mut parts, ctx.dlq.drain());
        // A consumer with paused partitions can hang while closing: resume them first.
        let mut paused = TopicPartitionList::new();
        for (key, st) in parts.iter_mut() {
            if st.paused_until.take().is_some() {
                let _ = paused.add_partition(ctx.topic(*key), key.partition);
            }
        }
        if paused.count() > 0 {
            let _ = consumer.resume(&paused);
        }
        if let Some(s) = &ctx.state {
            s.publish(&*ctx.sink, &parts, crate::context::now_ms());
        }
        lp.commits(&mut parts, &mut HashMap::new())
    };
    // A synchronous commit waits for the coordinator, however long it is away.
    let mode = if broker {
        CommitMode::Sync
    } else {
        CommitMode::Async
    };
    if let Some(s) = &ctx.state {
        s.flush(flush);
    }
    if commit.count() > 0
        && let Err(e) = consumer.commit(&commit, mode)
    {
        warn!(error = %e, "final offset commit failed");
    }
    consumer.unsubscribe();
    // Serve the revocation so that the group rebalances now, not after the session timeout.
    let deadline = Instant::now() + lifecycle::REVOKE_WITHIN;
    while Instant::now() < deadline && !ctx.parts().is_empty() {
        let _ = consumer.poll(Duration::from_millis(100));
    }
}
