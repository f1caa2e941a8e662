//! The journey tracker of one partition (journeys are keyed by journey id, which is the Kafka
//! key, so a journey lives in one partition). Private to the partition's writer.
//!
//! A journey is keyed by a 64-bit hash of (journey id, experience): storing the hash rather
//! than the id means no allocation per new journey once the table has grown to its working
//! size. Two live journeys colliding (probability ~n²/2^65, ~3·10^-10 at 100,000 open
//! journeys) would be tracked as one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::hash::PreHashed;
use crate::snapshot::JourneyRaw;

#[derive(Debug, Clone, Copy)]
struct Journey {
    last_seen_ms: i64,
    exp: u32,
    interactions: u32,
    /// Bit `i` = the experience's `i`-th MOT was seen (first 64 MOTs of an experience).
    mots_seen: u64,
    /// The MOT (index) of the interaction with the latest event time: where the journey
    /// stopped if it is abandoned. It takes bytes that were padding: an entry stays 32.
    last_mot: u32,
    reached_sco: bool,
    /// The latest interaction (in arrival order) failed: the journey is stalled after a
    /// failure until a later interaction succeeds.
    last_failed: bool,
}

/// What one interaction did to its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Step {
    /// The interaction opened a new journey.
    pub started: bool,
    /// The interaction reached the SCO; the journey's interaction count at that point.
    pub completed: Option<u32>,
    /// The table was full: the journey is not tracked.
    pub overflow: bool,
    /// The journey's first interaction with this MOT (the funnel's "reached"); never for a
    /// MOT beyond the experience's 64th, whose visits are not told apart.
    pub reached: bool,
}

/// One interaction as the tracker sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Touch {
    pub exp: u32,
    /// The MOT's index.
    pub mot: u32,
    /// The MOT's position in its experience's MOT list.
    pub position: u32,
    /// It is the experience's SCO MOT and it succeeded.
    pub sco: bool,
    pub failed: bool,
    pub t_ms: i64,
}

/// A journey as seen by [`crate::PartitionState::journey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyView {
    /// Interactions counted, up to and including the SCO if reached.
    pub interactions: u32,
    /// Positions (in [`crate::Topology::experience_mots`]) of the MOTs seen, first 64 only.
    pub mots_seen_positions: Vec<u32>,
    /// Whether the journey reached its experience's SCO.
    pub reached_sco: bool,
    /// Largest event time seen, in ms.
    pub last_seen_ms: i64,
}

/// What one [`JourneyTracker::expire`] pass closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireReport {
    /// Journeys closed without reaching their SCO (counted as abandoned).
    pub abandoned: u64,
    /// Journeys closed after reaching their SCO (already counted as completed).
    pub closed_completed: u64,
    /// Journeys still open after the pass.
    pub open: u64,
}

/// Journeys of one experience that are under way, as of the latest expiry pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InFlight {
    /// Open journeys that have not reached their SCO.
    pub in_flight: u64,
    /// Of those, the ones whose latest interaction failed: customers stuck after a failure,
    /// who will count as abandoned at the timeout unless they succeed first.
    pub stalled: u64,
}

#[derive(Debug)]
pub(crate) struct JourneyTracker {
    open: HashMap<u64, Journey, PreHashed>,
    max: usize,
    /// Per experience index, its journey timeout in ms.
    timeouts_ms: Box<[i64]>,
    /// Used for an experience index beyond `timeouts_ms` (none from a valid topology).
    default_timeout_ms: i64,
    /// Per experience index, as of the latest [`JourneyTracker::expire`] pass.
    in_flight: Box<[InFlight]>,
}

impl JourneyTracker {
    /// `timeouts_ms[e]`: experience `e`'s journey timeout; `default_timeout_ms` for others.
    pub fn new(max: usize, timeouts_ms: Vec<i64>, default_timeout_ms: i64) -> Self {
        Self {
            open: HashMap::with_hasher(PreHashed),
            max,
            in_flight: vec![InFlight::default(); timeouts_ms.len()].into_boxed_slice(),
            timeouts_ms: timeouts_ms.into_boxed_slice(),
            default_timeout_ms,
        }
    }

    /// Per experience index, its journeys under way as of the latest expiry pass.
    pub fn in_flight(&self) -> &[InFlight] {
        &self.in_flight
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Records one interaction of journey `key` (see [`Touch`]).
    pub fn observe(&mut self, key: u64, x: Touch) -> Step {
        let bit = if x.position < 64 {
            1u64 << x.position
        } else {
            0
        };
        let len = self.open.len();
        match self.open.entry(key) {
            Entry::Occupied(e) => {
                let j = e.into_mut();
                // Ties go to the later arrival, like `last_failed`.
                if x.t_ms >= j.last_seen_ms {
                    j.last_mot = x.mot;
                }
                j.last_seen_ms = j.last_seen_ms.max(x.t_ms);
                let reached = j.mots_seen & bit == 0 && bit != 0;
                j.mots_seen |= bit;
                if j.reached_sco {
                    return Step {
                        reached,
                        ..Step::default()
                    };
                }
                j.interactions = j.interactions.saturating_add(1);
                j.reached_sco = x.sco;
                j.last_failed = x.failed;
                Step {
                    completed: x.sco.then_some(j.interactions),
                    reached,
                    ..Step::default()
                }
            }
            Entry::Vacant(_) if len >= self.max => Step {
                overflow: true,
                ..Step::default()
            },
            Entry::Vacant(v) => {
                v.insert(Journey {
                    last_seen_ms: x.t_ms,
                    exp: x.exp,
                    interactions: 1,
                    mots_seen: bit,
                    last_mot: x.mot,
                    reached_sco: x.sco,
                    last_failed: x.failed,
                });
                Step {
                    started: true,
                    completed: x.sco.then_some(1),
                    overflow: false,
                    reached: bit != 0,
                }
            }
        }
    }

    /// Closes every journey idle for at least the timeout as of event time `clock_ms`;
    /// `abandoned(exp, last_mot, at_ms)` is called for each one that did not reach its SCO,
    /// with `at_ms` = its last interaction + the timeout. Recounts [`JourneyTracker::in_flight`]
    /// on the way (the pass visits every journey anyway).
    pub fn expire(
        &mut self,
        clock_ms: i64,
        mut abandoned: impl FnMut(u32, u32, i64),
    ) -> ExpireReport {
        let mut r = ExpireReport::default();
        let (timeouts, default) = (&self.timeouts_ms, self.default_timeout_ms);
        let in_flight = &mut self.in_flight;
        in_flight.fill(InFlight::default());
        self.open.retain(|_, j| {
            let timeout = timeouts.get(j.exp as usize).copied().unwrap_or(default);
            let deadline = j.last_seen_ms.saturating_add(timeout);
            if deadline > clock_ms {
                if !j.reached_sco
                    && let Some(f) = in_flight.get_mut(j.exp as usize)
                {
                    f.in_flight += 1;
                    f.stalled += u64::from(j.last_failed);
                }
                return true;
            }
            if j.reached_sco {
                r.closed_completed += 1;
            } else {
                r.abandoned += 1;
                abandoned(j.exp, j.last_mot, deadline);
            }
            false
        });
        r.open = self.open.len() as u64;
        r
    }

    pub fn view(&self, key: u64) -> Option<JourneyView> {
        self.open.get(&key).map(|j| JourneyView {
            interactions: j.interactions,
            mots_seen_positions: (0..64).filter(|i| j.mots_seen & (1u64 << i) != 0).collect(),
            reached_sco: j.reached_sco,
            last_seen_ms: j.last_seen_ms,
        })
    }

    pub fn memory_bytes(&self) -> usize {
        // hashbrown: one control byte plus the entry per bucket.
        self.open.capacity() * (size_of::<(u64, Journey)>() + 1)
    }
}

impl JourneyTracker {
    /// For [`crate::snapshot`]: every open journey, by key.
    pub(crate) fn raw(&self) -> Vec<(u64, JourneyRaw)> {
        let mut v: Vec<_> = self
            .open
            .iter()
            .map(|(&k, j)| {
                (
                    k,
                    JourneyRaw {
                        last_seen_ms: j.last_seen_ms,
                        exp: j.exp,
                        interactions: j.interactions,
                        mots_seen: j.mots_seen,
                        last_mot: j.last_mot,
                        reached_sco: j.reached_sco,
                        last_failed: j.last_failed,
                    },
                )
            })
            .collect();
        // Key order: the encoding of equal states is equal bytes.
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// For [`crate::snapshot`]: reopens a journey (the decoder bounds the count by `max`).
    pub(crate) fn insert_raw(&mut self, key: u64, j: &JourneyRaw) {
        self.open.insert(
            key,
            Journey {
                last_seen_ms: j.last_seen_ms,
                exp: j.exp,
                interactions: j.interactions,
                mots_seen: j.mots_seen,
                last_mot: j.last_mot,
                reached_sco: j.reached_sco,
                last_failed: j.last_failed,
            },
        );
    }

    /// For [`crate::snapshot`]: the gauges as the original's last expiry pass left them.
    pub(crate) fn set_in_flight(&mut self, gauges: &[InFlight]) {
        for (mine, theirs) in self.in_flight.iter_mut().zip(gauges) {
            *mine = *theirs;
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interaction at position `position` of experience `exp`, whose MOTs are numbered
    /// `exp * 10 + position`.
    fn at(exp: u32, position: u32, sco: bool, failed: bool, t_ms: i64) -> Touch {
        Touch {
            exp,
            mot: exp * 10 + position,
            position,
            sco,
            failed,
            t_ms,
        }
    }

    #[test]
    fn a_journey_entry_stays_32_bytes() {
        assert_eq!(size_of::<Journey>(), 32);
    }

    #[test]
    fn journey_reaching_sco_records_interactions_needed_and_ignores_later_ones() {
        let mut t = JourneyTracker::new(10, vec![1_000; 4], 1_000);
        assert_eq!(
            t.observe(1, at(0, 0, false, false, 10)),
            Step {
                started: true,
                completed: None,
                overflow: false,
                reached: true,
            }
        );
        let reached = Step {
            reached: true,
            ..Step::default()
        };
        assert_eq!(t.observe(1, at(0, 1, false, false, 20)), reached);
        assert_eq!(t.observe(1, at(0, 2, true, false, 30)).completed, Some(3));
        assert_eq!(t.observe(1, at(0, 2, true, false, 40)), Step::default());
        assert_eq!(
            t.observe(1, at(0, 3, false, false, 50)),
            reached,
            "a MOT first seen after the SCO is still reached"
        );
        let v = t.view(1).expect("open journey");
        assert_eq!(v.mots_seen_positions, vec![0, 1, 2, 3]);
        assert!(v.reached_sco);
    }

    #[test]
    fn idle_journey_without_sco_is_abandoned_at_last_seen_plus_timeout() {
        let mut t = JourneyTracker::new(10, vec![1_000; 4], 1_000);
        t.observe(1, at(3, 0, false, false, 100));
        t.observe(2, at(3, 0, true, false, 100));
        t.observe(3, at(3, 0, false, false, 900));
        let mut seen = Vec::new();
        let r = t.expire(1_100, |e, _, at| seen.push((e, at)));
        assert_eq!(seen, vec![(3, 1_100)]);
        assert_eq!(
            r,
            ExpireReport {
                abandoned: 1,
                closed_completed: 1,
                open: 1
            }
        );
    }

    #[test]
    fn expiry_pass_counts_journeys_in_flight_and_stalled_per_experience_with_its_own_timeout() {
        // Experience 0 abandons after 1 s, experience 1 after 10 s.
        let mut t = JourneyTracker::new(10, vec![1_000, 10_000], 5_000);
        t.observe(1, at(0, 0, false, true, 0)); // failed, then idle: stalled
        t.observe(2, at(0, 0, false, true, 0));
        t.observe(2, at(0, 1, false, false, 500)); // failed, then succeeded: under way
        t.observe(3, at(0, 1, true, false, 500)); // reached its SCO: not in flight
        t.observe(4, at(1, 0, false, true, 0)); // stalled, longer timeout
        let r = t.expire(900, |_, _, _| {});
        assert_eq!(r.abandoned, 0);
        assert_eq!(
            t.in_flight(),
            &[
                InFlight {
                    in_flight: 2,
                    stalled: 1
                },
                InFlight {
                    in_flight: 1,
                    stalled: 1
                }
            ]
        );
        let mut seen = Vec::new();
        let r = t.expire(1_200, |e, _, at| seen.push((e, at)));
        // Journey 1 is abandoned at 0 + 1 s; journey 4 (same idle time) is still open.
        assert_eq!(seen, vec![(0, 1_000)]);
        assert_eq!(r.abandoned, 1);
        assert_eq!(t.in_flight()[0].stalled, 0);
        assert_eq!(t.in_flight()[1].stalled, 1);
    }

    #[test]
    fn full_journey_table_counts_overflow_instead_of_growing() {
        let mut t = JourneyTracker::new(1, vec![1_000], 1_000);
        t.observe(1, at(0, 0, false, false, 0));
        assert!(t.observe(2, at(0, 0, false, false, 0)).overflow);
        assert_eq!(t.len(), 1);
    }
}

#[cfg(test)]
mod funnel_tests {
    use super::*;

    fn touch(mot: u32, position: u32, failed: bool, t_ms: i64) -> Touch {
        Touch {
            exp: 0,
            mot,
            position,
            sco: false,
            failed,
            t_ms,
        }
    }

    #[test]
    fn each_mot_is_reached_once_per_journey_and_beyond_the_64th_never() {
        let mut t = JourneyTracker::new(10, vec![1_000], 1_000);
        let reached = |s: Step| s.reached;
        assert!(reached(t.observe(1, touch(5, 0, false, 0))));
        assert!(!reached(t.observe(1, touch(5, 0, true, 10))), "a retry");
        assert!(reached(t.observe(1, touch(6, 1, false, 20))));
        assert!(
            reached(t.observe(2, touch(6, 1, false, 20))),
            "another journey"
        );
        assert!(!reached(t.observe(1, touch(99, 64, false, 30))));
        assert!(!reached(t.observe(3, touch(99, 64, false, 30))));
    }

    #[test]
    fn an_abandoned_journey_stops_at_its_latest_interaction_in_event_time() {
        let mut t = JourneyTracker::new(10, vec![1_000], 1_000);
        t.observe(1, touch(5, 0, false, 100));
        t.observe(1, touch(7, 2, true, 300));
        // Arrives last but happened earlier: the journey still stopped at MOT 7.
        t.observe(1, touch(6, 1, false, 200));
        // A tie in event time goes to the later arrival.
        t.observe(2, touch(5, 0, false, 100));
        t.observe(2, touch(6, 1, false, 100));
        let mut seen = Vec::new();
        t.expire(5_000, |e, mot, at| seen.push((e, mot, at)));
        seen.sort_unstable();
        assert_eq!(seen, vec![(0, 6, 1_100), (0, 7, 1_300)]);
    }

    #[test]
    fn the_last_mot_survives_the_snapshot_form() {
        let mut t = JourneyTracker::new(10, vec![1_000], 1_000);
        t.observe(1, touch(5, 0, false, 100));
        t.observe(1, touch(6, 1, false, 200));
        let raw = t.raw();
        let mut u = JourneyTracker::new(10, vec![1_000], 1_000);
        for (k, j) in &raw {
            u.insert_raw(*k, j);
        }
        let mut seen = Vec::new();
        u.expire(5_000, |_, mot, _| seen.push(mot));
        assert_eq!(seen, vec![6]);
    }
}
