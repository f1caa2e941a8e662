//! The per-(MOT, rule) state machine: inactive -> pending (for-duration) -> firing ->
//! resolved. Pure: the caller evaluates the condition and passes the time.

/// Where one (MOT, rule) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Inactive,
    /// The condition holds, not yet for the rule's for-duration.
    Pending,
    Firing,
}

/// The rule's condition on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Crossed: fires (after the for-duration).
    Met,
    /// Not crossed, but within the hysteresis band just below the threshold: a firing alert
    /// stays firing, nothing new starts.
    Held,
    /// Not crossed (or too few events to judge).
    Clear,
    /// The numbers are incomplete (a partition is rebuilding): nothing changes either way.
    Suppressed,
    /// The MOT's data covers too little of the rule's window to judge it (a new MOT, or a
    /// restart without history; see [`crate::coverage`]): nothing changes either way.
    InsufficientData,
}

/// A change of state to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Pending,
    Firing,
    /// The episode is over. `fired`: it had reached firing (a pending that never lasted
    /// long enough ends with `fired: false` and is not delivered to receivers).
    Resolved {
        fired: bool,
    },
}

/// One (MOT, rule)'s state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleState {
    pub phase: Phase,
    /// When the current episode began (pending or firing), ms: it names the episode.
    pub episode_ms: i64,
    /// Since when a firing alert's condition has been clear, ms.
    pub clear_since_ms: Option<i64>,
}

impl RuleState {
    /// Advances one tick. `for_ms`: how long the condition must hold before firing;
    /// `hold_ms`: how long a firing alert's condition must stay clear before it resolves.
    pub fn step(
        &mut self,
        cond: Condition,
        now_ms: i64,
        for_ms: i64,
        hold_ms: i64,
    ) -> Option<Change> {
        match (self.phase, cond) {
            (_, Condition::Suppressed | Condition::InsufficientData) => None,
            (Phase::Inactive, Condition::Met) => {
                self.episode_ms = now_ms;
                self.clear_since_ms = None;
                if for_ms <= 0 {
                    self.phase = Phase::Firing;
                    Some(Change::Firing)
                } else {
                    self.phase = Phase::Pending;
                    Some(Change::Pending)
                }
            }
            (Phase::Inactive, Condition::Held | Condition::Clear) => None,
            (Phase::Pending, Condition::Met) => (now_ms - self.episode_ms >= for_ms).then(|| {
                self.phase = Phase::Firing;
                Change::Firing
            }),
            (Phase::Pending, Condition::Held | Condition::Clear) => {
                self.phase = Phase::Inactive;
                Some(Change::Resolved { fired: false })
            }
            (Phase::Firing, Condition::Met | Condition::Held) => {
                self.clear_since_ms = None;
                None
            }
            (Phase::Firing, Condition::Clear) => {
                let since = *self.clear_since_ms.get_or_insert(now_ms);
                (now_ms - since >= hold_ms).then(|| {
                    self.phase = Phase::Inactive;
                    self.clear_since_ms = None;
                    Change::Resolved { fired: true }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Condition::*;

    fn run(
        s: &mut RuleState,
        conds: &[(Condition, i64)],
        for_ms: i64,
        hold_ms: i64,
    ) -> Vec<Option<Change>> {
        conds
            .iter()
            .map(|&(c, t)| s.step(c, t, for_ms, hold_ms))
            .collect()
    }

    #[test]
    fn fires_after_the_for_duration_and_resolves_after_the_hold() {
        let mut s = RuleState::default();
        let got = run(
            &mut s,
            &[
                (Met, 0),
                (Met, 500),
                (Met, 1_000),
                (Clear, 2_000),
                (Clear, 2_500),
                (Clear, 3_000),
            ],
            1_000,
            1_000,
        );
        assert_eq!(
            got,
            vec![
                Some(Change::Pending),
                None,
                Some(Change::Firing),
                None,
                None,
                Some(Change::Resolved { fired: true })
            ]
        );
        assert_eq!(s.phase, Phase::Inactive);
    }

    #[test]
    fn zero_for_duration_fires_at_once_and_episodes_are_named_by_their_start() {
        let mut s = RuleState::default();
        assert_eq!(s.step(Met, 7, 0, 0), Some(Change::Firing));
        assert_eq!(s.episode_ms, 7);
        assert_eq!(
            s.step(Clear, 8, 0, 0),
            Some(Change::Resolved { fired: true })
        );
        assert_eq!(s.step(Met, 9, 0, 0), Some(Change::Firing));
        assert_eq!(s.episode_ms, 9);
    }

    #[test]
    fn a_pending_that_clears_ends_unfired() {
        let mut s = RuleState::default();
        let got = run(&mut s, &[(Met, 0), (Held, 100), (Met, 200)], 1_000, 0);
        assert_eq!(
            got,
            vec![
                Some(Change::Pending),
                Some(Change::Resolved { fired: false }),
                Some(Change::Pending)
            ]
        );
    }

    #[test]
    fn hysteresis_keeps_a_firing_alert_through_the_band_and_a_brief_clear() {
        let mut s = RuleState::default();
        // Oscillating around the threshold: Met / Held never resolves; a clear shorter than
        // the hold is forgiven when the condition returns.
        let got = run(
            &mut s,
            &[
                (Met, 0),
                (Held, 1),
                (Met, 2),
                (Held, 3),
                (Clear, 4),
                (Held, 5),
                (Clear, 6),
                (Clear, 9),
            ],
            0,
            5,
        );
        assert_eq!(got.iter().filter(|c| c.is_some()).count(), 1, "{got:?}");
        assert_eq!(
            s.phase,
            Phase::Firing,
            "clear since 6, hold 5: not yet at 9"
        );
        assert_eq!(
            s.step(Clear, 11, 0, 5),
            Some(Change::Resolved { fired: true })
        );
        // Held never starts an episode.
        assert_eq!(s.step(Held, 12, 0, 5), None);
    }

    #[test]
    fn suppression_freezes_every_phase() {
        for start in [Phase::Inactive, Phase::Pending, Phase::Firing] {
            let mut s = RuleState {
                phase: start,
                episode_ms: 0,
                clear_since_ms: None,
            };
            assert_eq!(s.step(Suppressed, 1_000_000, 0, 0), None);
            assert_eq!(s.phase, start);
        }
        // A firing alert does not resolve while warming, however long.
        let mut s = RuleState {
            phase: Phase::Firing,
            episode_ms: 0,
            clear_since_ms: Some(0),
        };
        assert_eq!(s.step(Suppressed, 1_000_000, 0, 10), None);
        assert_eq!(s.phase, Phase::Firing);
    }
}
