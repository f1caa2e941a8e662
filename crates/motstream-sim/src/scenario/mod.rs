//! Scenario files: how MOTs behave when healthy, and scripted incidents. Format (annotated
//! example: `deploy/scenarios/airline-demo.yaml`):
//!
//! ```yaml
//! description: A kiosk outage at bag drop.   # optional, free text
//! mots:                        # optional: healthy behaviour per MOT id (all keys optional)
//!   lounge-entry:
//!     visit: 0.2               # share of journeys that pass through it, (0, 1]; default 1
//!     failure_rate: 0.03       # probability an interaction fails; default (1 - target) / 3
//!     typical_duration: 90s    # median reported duration; default from smoto.max_duration
//!     reasons: [desk-closed, not-eligible]   # failure reasons, most common first
//! incidents:                   # optional
//!   - name: kiosk outage       # optional label
//!     mot: bag-drop
//!     channel: kiosk           # optional: only this channel (one the MOT is used on)
//!     failure_rate: 0.8        # probability of failure while active, [0, 1]
//!     slowdown: 3              # optional: durations multiplied by this while active (> 0)
//!     from: 2m                 # offset from the simulation start
//!     until: 5m                # optional: the incident never ends without it
//!     reason: kiosk-offline    # optional: the failure reason of the failures it adds
//! ```
//!
//! An incident needs `failure_rate`, `slowdown` or both. Loading checks the file against the
//! catalog and reports every problem at once, each as `file:line: field: message`.

mod check;
mod raw;

use std::time::Duration;

use motstream_core::yaml::parse_error;
use motstream_core::{Catalog, MotIdx};

use check::Checker;
pub use motstream_core::yaml::Problem as ScenarioProblem;

/// A scenario that cannot be used, with every problem found in it, sorted by line; the same
/// `file:line: field: message` error as the catalog's.
pub type ScenarioError = motstream_core::yaml::FileError;
use raw::RawScenario;

/// The demo scenario shipped for the airline catalog (`deploy/scenarios/airline-demo.yaml`): a
/// bag-drop kiosk outage from minute 2 to minute 4.
pub const AIRLINE_DEMO: &str = include_str!("../../../../deploy/scenarios/airline-demo.yaml");

/// Built-in scenarios: (experience id that selects it, origin, text).
const BUILTIN: [(&str, &str, &str); 1] = [(
    "airline-departure",
    "deploy/scenarios/airline-demo.yaml",
    AIRLINE_DEMO,
)];

/// A scripted incident: while active, interactions with `mot` (on `channel`, if set) fail with
/// probability `failure_rate` instead of their healthy one, and take `slowdown` times longer.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// The label from the file, if any.
    pub name: Option<String>,
    /// The MOT affected, in the catalog the scenario was loaded against.
    pub mot: MotIdx,
    /// The MOT's id (checked against the catalog when a simulator is built).
    pub mot_id: String,
    /// Only this channel, or every channel.
    pub channel: Option<String>,
    /// Probability of failure while active, in [0, 1]; `None` leaves the failure rate alone.
    pub failure_rate: Option<f64>,
    /// Factor on durations of interactions that start while active (> 0; 1 = none).
    pub slowdown: f64,
    /// Start, as an offset from the simulation's start time (inclusive).
    pub from: Duration,
    /// End, as an offset from the simulation's start time (exclusive); `None`: never ends.
    pub until: Option<Duration>,
    /// Failure reason of the failures the incident adds; the MOT's usual reasons otherwise.
    pub reason: Option<String>,
}

impl Incident {
    /// Whether the incident is active `offset_ms` after the simulation start, for `channel`.
    pub fn applies(&self, offset_ms: i64, channel: &str) -> bool {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        offset_ms >= ms(self.from)
            && self.until.is_none_or(|u| offset_ms < ms(u))
            && self.channel.as_deref().is_none_or(|c| c == channel)
    }
}

/// Healthy behaviour of one MOT; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MotSettings {
    pub visit: Option<f64>,
    pub failure_rate: Option<f64>,
    pub typical_duration: Option<Duration>,
    pub reasons: Option<Vec<String>>,
}

/// A loaded, checked scenario, bound to the catalog it was loaded against.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    origin: String,
    description: Option<String>,
    mots: Vec<(MotIdx, String, MotSettings)>,
    incidents: Vec<Incident>,
}

impl Default for Scenario {
    /// [`Scenario::none`].
    fn default() -> Self {
        Self::none()
    }
}

impl Scenario {
    /// No incidents and default behaviour for every MOT.
    pub fn none() -> Self {
        Self {
            origin: "none".to_owned(),
            description: None,
            mots: Vec::new(),
            incidents: Vec::new(),
        }
    }

    /// Parses a scenario and checks it against `catalog`. `origin` names the file in errors.
    pub fn from_yaml(text: &str, origin: &str, catalog: &Catalog) -> Result<Self, ScenarioError> {
        let raw = if is_blank(text) {
            RawScenario::default()
        } else {
            serde_norway::from_str(text).map_err(|e| parse_error(&e, text, origin))?
        };
        let mut c = Checker::new(text, catalog);
        let mots = raw
            .mots
            .iter()
            .filter_map(|(id, s)| c.mot_settings(id, s))
            .collect();
        let incidents = raw
            .incidents
            .iter()
            .enumerate()
            .filter_map(|(i, inc)| c.incident(i, inc))
            .collect();
        let mut problems = c.into_problems();
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(ScenarioError {
                origin: origin.to_owned(),
                problems,
            });
        }
        Ok(Self {
            origin: origin.to_owned(),
            description: raw.description,
            mots,
            incidents,
        })
    }

    /// The built-in scenario for this catalog: the airline demo for a catalog that declares
    /// `airline-departure` (and everything the demo names), otherwise [`Scenario::none`].
    pub fn default_for(catalog: &Catalog) -> Self {
        BUILTIN
            .iter()
            .filter(|(exp, _, _)| catalog.experience_idx(exp).is_some())
            .find_map(|(_, origin, text)| Self::from_yaml(text, origin, catalog).ok())
            .unwrap_or_else(Self::none)
    }

    /// Where the scenario came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The file's description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The scripted incidents, in file order.
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// The healthy-behaviour settings of `mot`, if the scenario has any.
    pub(crate) fn settings(&self, mot: MotIdx) -> Option<&MotSettings> {
        self.mots
            .iter()
            .find(|(m, _, _)| *m == mot)
            .map(|(_, _, s)| s)
    }

    /// Every MOT the scenario refers to, with the id it had when loaded.
    pub(crate) fn referenced_mots(&self) -> impl Iterator<Item = (MotIdx, &str)> {
        self.mots
            .iter()
            .map(|(m, id, _)| (*m, id.as_str()))
            .chain(self.incidents.iter().map(|i| (i.mot, i.mot_id.as_str())))
    }
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

#[cfg(test)]
mod tests;
