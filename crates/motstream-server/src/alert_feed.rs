//! Where alert transitions meet the rest of the service. The alert engine publishes every
//! transition here; the gRPC API (`WatchAlerts`, `ListAlerts`, a MOT's alert state), the
//! exporter (alert state gauges) and the CLI read from here. It keeps the currently active
//! alerts, a bounded history, and a broadcast channel whose bounded buffer means a slow
//! subscriber lags (and is told so) instead of growing memory.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// An alert's state after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's for-duration.
    Pending,
    /// The owner is being alerted.
    Firing,
    /// The condition cleared (or never lasted long enough); the episode is over.
    Resolved,
}

impl AlertState {
    /// The wire name: `pending`, `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of one alert's state, with everything an owner needs to act on it: the one
/// type the service passes around. The engine emits it (from `motstream_alert::Transition`,
/// which names MOTs and rules by index), the feed keeps it, every receiver delivers it (its
/// serde form is the alerts topic's and the webhook's JSON, and what a restart reads back),
/// and the gRPC API converts it to its proto message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// Stable for one episode of one (MOT, rule): the same from pending to resolved.
    pub alert_id: String,
    pub state: AlertState,
    /// When the transition happened, ms since the Unix epoch.
    pub at_ms: i64,
    /// When the episode began.
    pub episode_ms: i64,
    /// The catalog rule name (`page-fast-burn`, `floor`).
    pub rule: String,
    /// alertname, severity, experience, mot, owner, team, rule, source: what Alertmanager
    /// routes on, so they travel as labels and the accessors below read them.
    pub labels: BTreeMap<String, String>,
    /// SMOTO rate, target, burn rates, budget left, top reasons, channel, runbook, dashboard.
    pub annotations: BTreeMap<String, String>,
}

impl AlertTransition {
    /// A label's value, empty when absent.
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
    /// The alert's name, e.g. `SmotoBurnPage`.
    pub fn alertname(&self) -> &str {
        self.label("alertname")
    }
    /// `page` or `ticket`.
    pub fn severity(&self) -> &str {
        self.label("severity")
    }
    pub fn experience_id(&self) -> &str {
        self.label("experience")
    }
    pub fn mot_id(&self) -> &str {
        self.label("mot")
    }
    pub fn owner(&self) -> &str {
        self.label("owner")
    }
    pub fn team(&self) -> &str {
        self.label("team")
    }
}

struct Inner {
    /// Pending and firing alerts by alert id.
    active: BTreeMap<String, Arc<AlertTransition>>,
    /// The newest transitions, oldest first.
    history: VecDeque<Arc<AlertTransition>>,
}

/// The service-wide alert feed. Cheap to share behind an `Arc`.
pub struct AlertFeed {
    inner: Mutex<Inner>,
    history_cap: usize,
    tx: broadcast::Sender<Arc<AlertTransition>>,
    /// Whether this instance hands transitions to the receivers (see
    /// [`crate::alerting::deliverer`]); every instance evaluates and fills its feed.
    deliverer: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AlertFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertFeed")
            .field("history_cap", &self.history_cap)
            .finish_non_exhaustive()
    }
}

impl AlertFeed {
    /// A feed keeping `history_cap` transitions and buffering `subscriber_buffer` per
    /// subscriber before that subscriber lags.
    pub fn new(history_cap: usize, subscriber_buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(subscriber_buffer.max(1));
        Self {
            inner: Mutex::new(Inner {
                active: BTreeMap::new(),
                history: VecDeque::with_capacity(history_cap.min(4096)),
            }),
            history_cap: history_cap.max(1),
            tx,
            deliverer: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn set_deliverer(&self, on: bool) {
        // Relaxed: a flag shown in /status, ordering nothing else.
        self.deliverer
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_deliverer(&self) -> bool {
        self.deliverer.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a transition and sends it to every subscriber.
    pub fn publish(&self, t: AlertTransition) -> Arc<AlertTransition> {
        let t = Arc::new(t);
        {
            let mut g = self.lock();
            match t.state {
                AlertState::Pending | AlertState::Firing => {
                    g.active.insert(t.alert_id.clone(), Arc::clone(&t));
                }
                AlertState::Resolved => {
                    g.active.remove(&t.alert_id);
                }
            }
            if g.history.len() == self.history_cap {
                g.history.pop_front();
            }
            g.history.push_back(Arc::clone(&t));
        }
        // No subscribers is not an error.
        let _ = self.tx.send(Arc::clone(&t));
        t
    }

    /// A stream of transitions published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AlertTransition>> {
        self.tx.subscribe()
    }

    /// The pending and firing alerts.
    pub fn active(&self) -> Vec<Arc<AlertTransition>> {
        self.lock().active.values().cloned().collect()
    }

    /// Up to `limit` of the newest transitions that `keep` accepts, newest first.
    pub fn history(
        &self,
        limit: usize,
        keep: impl Fn(&AlertTransition) -> bool,
    ) -> Vec<Arc<AlertTransition>> {
        self.lock()
            .history
            .iter()
            .rev()
            .filter(|t| keep(t))
            .take(limit)
            .cloned()
            .collect()
    }

    /// A MOT's most severe active state (firing over pending), if any alert of it is active.
    pub fn mot_state(&self, mot_id: &str) -> Option<AlertState> {
        self.lock()
            .active
            .values()
            .filter(|t| t.mot_id() == mot_id)
            .map(|t| t.state)
            .max()
    }
}

/// Orders active alerts for people: firing before pending, `page` before `ticket`, then the
/// longest in its state first, ties by alert id (so the order is stable between calls).
pub fn sort_active(list: &mut [Arc<AlertTransition>]) {
    list.sort_by(|a, b| {
        b.state
            .cmp(&a.state)
            .then_with(|| (a.severity() != "page").cmp(&(b.severity() != "page")))
            .then(a.at_ms.cmp(&b.at_ms))
            .then_with(|| a.alert_id.cmp(&b.alert_id))
    });
}

impl Default for AlertFeed {
    fn default() -> Self {
        Self::new(10_000, 1_024)
    }
}

/// Labels for tests: a page alert's defaults with `over` replacing or adding some.
#[cfg(test)]
pub(crate) fn test_labels(over: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = [
        ("alertname", "SmotoBurnPage"),
        ("severity", "page"),
        ("experience", "airline-departure"),
        ("mot", "bag-drop"),
        ("owner", "Owner"),
        ("team", "airport-ground-ops"),
        ("rule", "page-fast-burn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in over {
        l.insert((*k).to_owned(), (*v).to_owned());
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, mot: &str, state: AlertState, at_ms: i64) -> AlertTransition {
        AlertTransition {
            alert_id: id.into(),
            state,
            at_ms,
            episode_ms: 1,
            rule: "page-fast-burn".into(),
            labels: test_labels(&[("mot", mot), ("experience", "x")]),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn active_follows_transitions_and_history_is_bounded() {
        let feed = AlertFeed::new(2, 8);
        let mut rx = feed.subscribe();
        feed.publish(t("a", "bag-drop", AlertState::Pending, 1));
        feed.publish(t("a", "bag-drop", AlertState::Firing, 2));
        assert_eq!(feed.mot_state("bag-drop"), Some(AlertState::Firing));
        feed.publish(t("a", "bag-drop", AlertState::Resolved, 3));
        assert_eq!(feed.mot_state("bag-drop"), None);
        assert!(feed.active().is_empty());
        let h = feed.history(10, |_| true);
        assert_eq!(
            h.iter().map(|t| t.at_ms).collect::<Vec<_>>(),
            vec![3, 2],
            "newest first, capped at 2"
        );
        assert_eq!(rx.try_recv().map(|t| t.at_ms).ok(), Some(1));
    }

    #[test]
    fn active_alerts_are_the_latest_state_of_each_unresolved_episode_firing_first() {
        let feed = AlertFeed::new(100, 8);
        feed.publish(t("old", "bag-drop", AlertState::Firing, 1));
        feed.publish(t("old", "bag-drop", AlertState::Resolved, 2));
        feed.publish(t("p", "security", AlertState::Pending, 3));
        feed.publish(t("f2", "lounge-entry", AlertState::Pending, 4));
        feed.publish(t("f2", "lounge-entry", AlertState::Firing, 6));
        let mut ticket = t("f1", "bag-drop", AlertState::Firing, 5);
        ticket.labels.insert("severity".into(), "ticket".into());
        feed.publish(ticket);
        feed.publish(t("f3", "boarding-gate", AlertState::Firing, 7));
        let mut active = feed.active();
        sort_active(&mut active);
        let got: Vec<_> = active
            .iter()
            .map(|t| (t.alert_id.as_str(), t.state, t.at_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                ("f2", AlertState::Firing, 6),
                ("f3", AlertState::Firing, 7),
                ("f1", AlertState::Firing, 5),
                ("p", AlertState::Pending, 3),
            ],
            "the resolved episode is gone; firing pages, then firing tickets, then pending"
        );
    }
}
