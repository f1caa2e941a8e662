//! The catalog as this crate sees it: MOTs and experiences numbered densely from zero, with
//! targets and impact weights. The binary builds it from the YAML catalog; nothing here knows
//! names.

use crate::error::ConfigError;

/// A MOT known to the catalog: an index in `0..Topology::mot_count()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MotIdx(pub u32);

/// An experience known to the catalog: an index in `0..Topology::experience_count()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpIdx(pub u32);

/// One MOT of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct MotSpec {
    /// The experience this MOT belongs to.
    pub experience: ExpIdx,
    /// The SMOTO target: the objective share of successful interactions, strictly between 0
    /// and 1 (e.g. `0.98`). Its complement is the error budget.
    pub target: f64,
    /// How much a failure of this MOT weighs in its experience's impact shares; 0..=1e9 (kept to 1/256).
    pub impact_weight: f64,
}

/// One experience of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperienceSpec {
    /// The experience's final MOT: a journey that reaches it successfully is a Successful
    /// Customer Outcome (SCO). Must belong to this experience.
    pub sco: MotIdx,
    /// How long (event time) a journey of this experience may go without an interaction
    /// before it is closed, abandoned if it did not reach its SCO; `None`: the window
    /// config's `journey_timeout_ms`. In 1..2^61 ms.
    pub journey_timeout_ms: Option<u64>,
}

/// MOTs and experiences, validated. Immutable once built; shared by every partition.
#[derive(Debug, Clone)]
pub struct Topology {
    mots: Vec<MotSpec>,
    experiences: Vec<ExperienceSpec>,
    exp_mots: Vec<Vec<MotIdx>>,
    /// Position of each MOT inside its experience's MOT list (the journey tracker's bit).
    position: Vec<u32>,
    /// Impact weight in 1/256 units, for the experience's weighted-failure rollup.
    weight_fp: Vec<u64>,
}

/// The longest journey timeout: far beyond any use, and small enough that event time plus it
/// cannot overflow.
pub(crate) const MAX_TIMEOUT_MS: u64 = i64::MAX as u64 / 4;

/// Fixed-point scale of impact weights.
pub(crate) const WEIGHT_SCALE: f64 = 256.0;

impl Topology {
    /// Validates and builds a topology. Each experience's MOT list is the MOTs that name it,
    /// in index order. Every problem is reported at once, naming the field.
    pub fn new(mots: Vec<MotSpec>, experiences: Vec<ExperienceSpec>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        if mots.len() > u32::MAX as usize || experiences.len() > u32::MAX as usize {
            problems.push("topology: more than 2^32 MOTs or experiences".to_owned());
        }
        let mut exp_mots = vec![Vec::new(); experiences.len()];
        let mut position = Vec::with_capacity(mots.len());
        for (i, m) in mots.iter().enumerate() {
            if !(m.target > 0.0 && m.target < 1.0) {
                problems.push(format!(
                    "mots[{i}].target: {} is not strictly between 0 and 1",
                    m.target
                ));
            }
            if !(m.impact_weight >= 0.0 && m.impact_weight <= 1e9) {
                problems.push(format!(
                    "mots[{i}].impact_weight: {} is not in 0..=1e9",
                    m.impact_weight
                ));
            }
            match exp_mots.get_mut(m.experience.0 as usize) {
                Some(list) => {
                    position.push(list.len() as u32);
                    list.push(MotIdx(i as u32));
                }
                None => {
                    position.push(0);
                    problems.push(format!(
                        "mots[{i}].experience: {} is not an experience index (there are {})",
                        m.experience.0,
                        experiences.len()
                    ));
                }
            }
        }
        for (e, spec) in experiences.iter().enumerate() {
            if let Some(t) = spec.journey_timeout_ms
                && (t == 0 || t > MAX_TIMEOUT_MS)
            {
                problems.push(format!(
                    "experiences[{e}].journey_timeout_ms: {t} is not in 1..2^61"
                ));
            }
            match mots.get(spec.sco.0 as usize) {
                Some(m) if m.experience.0 as usize == e => {}
                Some(m) => problems.push(format!(
                    "experiences[{e}].sco: MOT {} belongs to experience {}, not {e}",
                    spec.sco.0, m.experience.0
                )),
                None => problems.push(format!(
                    "experiences[{e}].sco: {} is not a MOT index (there are {})",
                    spec.sco.0,
                    mots.len()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let weight_fp = mots
            .iter()
            .map(|m| (m.impact_weight * WEIGHT_SCALE).round() as u64)
            .collect();
        Ok(Self {
            weight_fp,
            mots,
            experiences,
            exp_mots,
            position,
        })
    }

    /// How many MOTs the catalog declares.
    pub fn mot_count(&self) -> usize {
        self.mots.len()
    }

    /// How many experiences the catalog declares.
    pub fn experience_count(&self) -> usize {
        self.experiences.len()
    }

    /// The MOT's spec, or `None` for an index out of range.
    pub fn mot(&self, mot: MotIdx) -> Option<&MotSpec> {
        self.mots.get(mot.0 as usize)
    }

    /// The experience's spec, or `None` for an index out of range.
    pub fn experience(&self, exp: ExpIdx) -> Option<&ExperienceSpec> {
        self.experiences.get(exp.0 as usize)
    }

    /// The experience's MOTs in index order; empty for an index out of range.
    pub fn experience_mots(&self, exp: ExpIdx) -> &[MotIdx] {
        self.exp_mots.get(exp.0 as usize).map_or(&[], Vec::as_slice)
    }

    /// Each experience's journey timeout in ms, in experience index order, `default_ms` where
    /// the experience sets none.
    pub(crate) fn journey_timeouts_ms(&self, default_ms: i64) -> Vec<i64> {
        self.experiences
            .iter()
            .map(|e| {
                e.journey_timeout_ms
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(default_ms)
            })
            .collect()
    }

    /// The MOT's impact weight in 1/256 units; 0 for an index out of range.
    pub(crate) fn weight_fp(&self, mot: MotIdx) -> u64 {
        self.weight_fp.get(mot.0 as usize).copied().unwrap_or(0)
    }

    /// Position of the MOT in its experience's list (0-based); 0 for an index out of range.
    pub(crate) fn position(&self, mot: MotIdx) -> u32 {
        self.position.get(mot.0 as usize).copied().unwrap_or(0)
    }
}

/// For unit tests: one experience of `mots` MOTs (target 0.98, weight 1), the last its SCO.
#[cfg(test)]
pub(crate) fn one_experience(mots: u32) -> Topology {
    let spec = |_| MotSpec {
        experience: ExpIdx(0),
        target: 0.98,
        impact_weight: 1.0,
    };
    Topology::new(
        (0..mots).map(spec).collect(),
        vec![ExperienceSpec {
            sco: MotIdx(mots - 1),
            journey_timeout_ms: None,
        }],
    )
    .expect("topology")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mot(e: u32) -> MotSpec {
        MotSpec {
            experience: ExpIdx(e),
            target: 0.98,
            impact_weight: 1.0,
        }
    }

    #[test]
    fn topology_derives_experience_mot_lists_in_index_order() {
        let t = Topology::new(
            vec![mot(0), mot(1), mot(0)],
            vec![
                ExperienceSpec {
                    sco: MotIdx(2),
                    journey_timeout_ms: None,
                },
                ExperienceSpec {
                    sco: MotIdx(1),
                    journey_timeout_ms: None,
                },
            ],
        )
        .expect("valid topology");
        assert_eq!(t.experience_mots(ExpIdx(0)), &[MotIdx(0), MotIdx(2)]);
        assert_eq!(t.position(MotIdx(2)), 1);
        assert!(t.experience_mots(ExpIdx(9)).is_empty());
    }

    #[test]
    fn topology_reports_every_bad_field_at_once() {
        let bad = MotSpec {
            experience: ExpIdx(5),
            target: 1.0,
            impact_weight: f64::NAN,
        };
        let err = Topology::new(
            vec![bad, mot(0)],
            vec![ExperienceSpec {
                sco: MotIdx(0),
                journey_timeout_ms: None,
            }],
        )
        .expect_err("invalid topology");
        let text = err.to_string();
        assert!(text.contains("mots[0].target"), "{text}");
        assert!(text.contains("mots[0].impact_weight"), "{text}");
        assert!(text.contains("mots[0].experience"), "{text}");
        assert!(text.contains("experiences[0].sco"), "{text}");
    }
}
