//! The alert engine's thread: every tick, one bulk read of the windows, the state machines,
//! and for each transition a status read (reasons, channel) for its annotations. It runs on
//! its own thread so evaluation never competes with the async servers, and it only ever
//! `try_send`s to the receivers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use motstream_alert::{Change, Engine, EngineConfig, Policy, Transition, content};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::deliverer::{Elected, Election};
use super::{QUEUE, Sinks};
use crate::alert_feed::{AlertFeed, AlertState, AlertTransition};
use crate::config::ServiceConfig;
use crate::state::AggregatorState;

/// The running engine and its receivers.
#[derive(Debug)]
pub struct AlertEngine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Election>>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
}

/// An engine that no longer evaluates; what is left is handing over delivery (leaving the
/// election's group) and draining the receivers' queues, see [`Halted::finish`].
#[derive(Debug)]
pub struct Halted {
    election: Option<Election>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
}

/// Longest a stopping engine waits for the hand-over and the receivers together. In an
/// outage each of them waits out its own broker timeout (the election's leave and record
/// flush, a queued transition's send): taken one after another, and before ingest's final
/// commit, they could add up past the service's 10 s bound.
pub const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// Longest a stopping engine waits for its evaluation to end (a tick's evaluation takes
/// milliseconds; taking delivery over can block on the broker).
const HALT_WITHIN: Duration = Duration::from_secs(2);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Builds one transition's delivery (pending ones too: the feed shows them); `None` only if the
/// transition names no rule of the engine's policy.
fn outgoing(state: &AggregatorState, engine: &Engine, t: &Transition) -> Option<AlertTransition> {
    let policy = engine.policy();
    let rule = policy.mots.get(t.mot.0 as usize)?.rules.get(t.rule)?;
    let status_state = match t.change {
        Change::Pending => AlertState::Pending,
        Change::Firing => AlertState::Firing,
        Change::Resolved { .. } => AlertState::Resolved,
    };
    // Reasons and the worst channel over the rule's short window: what is failing now.
    let short = match rule.kind {
        motstream_alert::RuleKind::Burn { short, .. } => short,
        motstream_alert::RuleKind::Floor { over, .. } => over,
    };
    let detail = policy.windows_ms.get(short).and_then(|&w| {
        state
            .agg
            .status_mot(motstream_window::MotIdx(t.mot.0), w, t.at_ms)
            .ok()
    });
    let c = content::build(
        &state.catalog,
        &policy.windows_ms,
        t.mot,
        rule,
        t.episode_ms,
        &t.eval,
        detail.as_ref(),
    );
    Some(AlertTransition {
        alert_id: c.alert_id,
        state: status_state,
        at_ms: t.at_ms,
        episode_ms: t.episode_ms,
        rule: rule.name.clone(),
        labels: c.labels,
        annotations: c.annotations,
    })
}

/// Compiles the policy, replays the history, starts the receivers and the engine thread.
pub async fn start(
    cfg: &ServiceConfig,
    state: Arc<AggregatorState>,
    feed: Arc<AlertFeed>,
) -> anyhow::Result<AlertEngine> {
    let a = &cfg.alerts;
    let policy = Policy::compile(&state.catalog);
    for note in policy.capped_notes(&state.catalog) {
        info!(note = %note, "alert threshold capped for a low target");
    }
    let mut engine = Engine::new(
        policy,
        EngineConfig {
            resolve_hold_ms: ms(a.resolve_hold),
            min_coverage: a.min_coverage,
            ..EngineConfig::default()
        },
    );
    let brokers = cfg.brokers.clone().unwrap_or_default();
    if let Some(topic) = a.topic.clone() {
        let (b, k) = (brokers.clone(), cfg.kafka.clone());
        let replayed = tokio::task::spawn_blocking(move || {
            super::kafka::replay(&b, &k, &topic, 10_000, Duration::from_secs(10))
        })
        .await?;
        match replayed {
            Ok(list) => restore(&state, &mut engine, &feed, list),
            Err(e) => warn!(error = %e, "alert history not replayed; starting empty"),
        }
    }
    let client = super::http_client()?;
    let mut sinks = Sinks::default();
    let mut receivers = Vec::new();
    if !a.alertmanager_urls.is_empty() {
        let (tx, rx) = mpsc::channel(QUEUE);
        sinks.queues.push(("alertmanager", tx));
        receivers.push(tokio::spawn(super::alertmanager::run(
            client.clone(),
            a.alertmanager_urls.clone(),
            a.resend,
            rx,
        )));
    }
    if let Some(url) = a.webhook_url.clone() {
        let (tx, rx) = mpsc::channel(QUEUE);
        sinks.queues.push(("webhook", tx));
        receivers.push(tokio::spawn(super::webhook::run(
            client.clone(),
            url,
            a.webhook_secret.clone(),
            rx,
        )));
    }
    if let Some(topic) = a.topic.clone() {
        let producer = super::kafka::producer(&brokers, &cfg.kafka)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        sinks.queues.push(("kafka", tx));
        receivers.push(tokio::spawn(super::kafka::run(producer, topic, rx)));
    }
    let election = elect(cfg, &sinks).await;
    info!(
        rules = engine.policy().rule_count(),
        windows = engine.policy().windows_ms.len(),
        tick = ?a.tick,
        receivers = ?sinks.queues.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "alert engine started"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tick = a.tick;
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || run_loop(&state, engine, &feed, sinks, election, tick, &stop))?
    };
    Ok(AlertEngine {
        stop,
        thread: Some(thread),
        receivers,
    })
}

/// Puts replayed transitions into the feed and resumes the episodes still firing.
fn restore(
    state: &AggregatorState,
    engine: &mut Engine,
    feed: &AlertFeed,
    list: Vec<AlertTransition>,
) {
    let mut last: BTreeMap<String, Arc<AlertTransition>> = BTreeMap::new();
    for o in list {
        let o = feed.publish(o);
        last.insert(o.alert_id.clone(), o);
    }
    for o in last.values().filter(|o| o.state == AlertState::Firing) {
        let mot = state.catalog.mot_idx(o.mot_id());
        let resumed = mot.is_some_and(|m| engine.restore_firing(m, &o.rule, o.episode_ms));
        if resumed {
            info!(alert = %o.alert_id, "firing alert resumed from the alerts topic");
        } else {
            // Its MOT or rule left the catalog: close the episode rather than leave it active.
            let mut r = AlertTransition::clone(o);
            r.state = AlertState::Resolved;
            r.at_ms = crate::now_ms();
            feed.publish(r);
        }
    }
}

/// With receivers and the state topic's global view, the group on the coordination topic
/// decides who delivers. Without the global view each instance judges only its own partitions,
/// so each must deliver what it finds; without receivers there is nothing to deduplicate; and
/// the embedded default (state topic off) is one instance by construction.
async fn elect(cfg: &ServiceConfig, sinks: &Sinks) -> Election {
    let Some(brokers) = cfg.brokers.as_deref() else {
        return Election::Alone;
    };
    if sinks.queues.is_empty() || !cfg.state_topic {
        return Election::Alone;
    }
    match Elected::start(brokers, &cfg.group_id, &cfg.kafka).await {
        Ok(e) => Election::Group(e),
        Err(e) => {
            error!(error = %e, "alert-deliverer election unavailable: this instance delivers on its own, so several instances each notify");
            Election::Alone
        }
    }
}

/// This instance became the deliverer: take the firing set over from what the previous one
/// delivered. Its firing alerts are adopted (same ids; the engine resolves those whose
/// condition has cleared, through the normal hold), and alerts firing here that nobody
/// delivered are sent now. Alertmanager gets the adopted ones too, since it forgets an alert
/// that is not re-sent; the webhook and the alerts topic do not get them twice.
fn take_over(
    state: &AggregatorState,
    engine: &mut Engine,
    feed: &AlertFeed,
    sinks: &Sinks,
    elected: &Elected,
) {
    let delivered = match elected.delivered() {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "taking over alert delivery without the record of what was delivered: alerts firing now are sent again");
            Default::default()
        }
    };
    let mut adopted = std::collections::BTreeSet::new();
    for t in delivered.values().filter(|t| t.state == AlertState::Firing) {
        let Some(mot) = state.catalog.mot_idx(t.mot_id()) else {
            // Its MOT left the catalog: nothing will resolve it but this.
            let mut r = t.clone();
            r.state = AlertState::Resolved;
            r.at_ms = crate::now_ms();
            let r = feed.publish(r);
            sinks.offer(&r);
            elected.record(&r);
            continue;
        };
        if engine.restore_firing(mot, &t.rule, t.episode_ms) {
            adopted.insert((t.mot_id().to_owned(), t.rule.clone()));
            // The local episode of the same condition, if any, is superseded by the adopted id.
            for local in feed.active() {
                if local.alert_id != t.alert_id
                    && local.mot_id() == t.mot_id()
                    && local.rule == t.rule
                {
                    let mut r = AlertTransition::clone(&local);
                    r.state = AlertState::Resolved;
                    r.at_ms = crate::now_ms();
                    feed.publish(r);
                }
            }
            let t = feed.publish(t.clone());
            sinks.offer_to("alertmanager", &t);
        }
    }
    let mut sent = 0usize;
    for local in feed.active() {
        let key = (local.mot_id().to_owned(), local.rule.clone());
        if local.state == AlertState::Firing && !adopted.contains(&key) {
            sinks.offer(&local);
            elected.record(&local);
            sent += 1;
        }
    }
    info!(
        adopted = adopted.len(),
        sent_now = sent,
        "alert delivery taken over"
    );
}

fn run_loop(
    state: &AggregatorState,
    mut engine: Engine,
    feed: &AlertFeed,
    sinks: Sinks,
    election: Election,
    tick: Duration,
    stop: &AtomicBool,
) -> Election {
    let mut delivering = false;
    let windows = engine.policy().windows_ms.clone();
    // Sums of final buckets between ticks: a long window then costs its last few buckets.
    let mut cache = motstream_window::CountsCache::default();
    let mut next = Instant::now();
    // Acquire pairs with the Release store in `stop`.
    let stopped = || stop.load(Ordering::Acquire);
    while !stopped() {
        next += tick;
        let now = crate::now_ms();
        let deliverer = election.is_deliverer();
        if deliverer
            && !delivering
            && let Election::Group(e) = &election
        {
            take_over(state, &mut engine, feed, &sinks, e);
        }
        delivering = deliverer;
        feed.set_deliverer(deliverer);
        match state.agg.counts_reader_cached(&windows, now, &mut cache) {
            Ok(counts) => {
                for t in engine.tick(&counts, now) {
                    let Some(o) = outgoing(state, &engine, &t) else {
                        continue;
                    };
                    info!(alert = %o.alert_id, state = %o.state, burn_long = ?t.eval.burn_long, burn_short = ?t.eval.burn_short, "alert transition");
                    let o = feed.publish(o);
                    let fired =
                        matches!(t.change, Change::Firing | Change::Resolved { fired: true });
                    if fired && delivering {
                        sinks.offer(&o);
                        if let Election::Group(e) = &election {
                            e.record(&o);
                        }
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "alert evaluation failed: the rules' windows do not fit the retention")
            }
        }
        let now = Instant::now();
        if next > now {
            // In slices, so that a stop does not wait out the tick.
            while !stopped() && Instant::now() < next {
                std::thread::sleep(
                    next.saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(50)),
                );
            }
        } else {
            // Fell behind (a slow tick): start the cadence again from now rather than burst.
            next = now;
        }
    }
    // Closing the queues lets the receivers drain and end; the election is handed back so the
    // caller can leave its group beside the rest of the shutdown.
    drop(sinks);
    election
}

impl AlertEngine {
    /// Stops evaluating (within a 50 ms slice of the tick's wait, or once the tick in progress
    /// ends, at most [`HALT_WITHIN`]) and returns what is left to finish. The service halts
    /// the engine before ingest drops partitions at shutdown, so that no evaluation sees them
    /// gone and resolves alerts that still hold.
    pub async fn halt(mut self) -> Halted {
        // Release pairs with the loop's Acquire load.
        self.stop.store(true, Ordering::Release);
        let election = match self.thread.take() {
            None => None,
            // A tick taking delivery over reads the record back (up to 15 s with the broker
            // away): the shutdown does not wait for that; the thread ends on its own.
            Some(t) => match tokio::time::timeout(
                HALT_WITHIN,
                tokio::task::spawn_blocking(move || t.join()),
            )
            .await
            {
                Ok(Ok(Ok(election))) => Some(election),
                Ok(_) => {
                    error!("the alert engine thread panicked; nothing to hand over");
                    None
                }
                Err(_) => {
                    warn!(
                        secs = HALT_WITHIN.as_secs(),
                        "alert evaluation did not stop in time; shutting down beside it"
                    );
                    None
                }
            },
        };
        Halted {
            election,
            receivers: std::mem::take(&mut self.receivers),
        }
    }

    /// [`Self::halt`], then [`Halted::finish`].
    pub async fn stop(self) {
        self.halt().await.finish().await;
    }
}

impl Halted {
    /// Leaves the election's group (another instance delivers at once) and lets the receivers
    /// drain their queues, side by side and within [`FINISH_WITHIN`] in all. Past it the rest
    /// is left running and the process exits without it: a transition not yet delivered is
    /// the successor's to send (it adopts the firing set from the record).
    pub async fn finish(mut self) {
        let deadline = tokio::time::Instant::now() + FINISH_WITHIN;
        let election = self.election.take();
        let leave = tokio::task::spawn_blocking(move || drop(election));
        let drain = async {
            for r in self.receivers.drain(..) {
                if tokio::time::timeout_at(deadline, r).await.is_err() {
                    warn!(
                        secs = FINISH_WITHIN.as_secs(),
                        "an alert receiver did not drain in time; its queued transitions are left"
                    );
                    break;
                }
            }
        };
        let (left, ()) = tokio::join!(tokio::time::timeout_at(deadline, leave), drain);
        if left.is_err() {
            warn!(
                secs = FINISH_WITHIN.as_secs(),
                "the alert-deliverer election did not close in time; its group notices after the session timeout"
            );
        }
    }
}
