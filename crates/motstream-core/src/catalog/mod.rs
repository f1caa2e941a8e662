//! The catalog: the YAML file that declares experiences, MOTs, SMOTO rules, targets, owners,
//! runbooks and alert policy (format in docs/formats.md, "Catalog format"; annotated examples under
//! `deploy/catalog/`).
//!
//! Loading checks everything and reports every problem at once, each with its line and field,
//! so that a bad catalog stops start-up with a message that says where to look.

mod model;
mod raw;
mod shape;
mod validate;

use std::time::Duration;

pub use crate::yaml::Problem;

/// A catalog that cannot be used, with every problem found in it.
pub type CatalogError = crate::yaml::FileError;
pub use model::{
    AlertPolicy, BurnRule, ExpIdx, Experience, FloorRule, Mot, MotIdx, Person, Severity, SmotoRule,
};

/// A loaded, valid catalog. Immutable: a changed file is loaded as a new catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Where it was loaded from (a path, or a name for embedded catalogs).
    pub origin: String,
    pub experiences: Vec<Experience>,
    pub mots: Vec<Mot>,
    /// URL template of the MOT drill-down dashboard; `{mot}` and `{experience}` are replaced.
    pub dashboard_url: Option<String>,
    index: model::Index,
}

impl Catalog {
    /// Parses and checks a catalog. `origin` names the file in error messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, CatalogError> {
        validate::load(text, origin)
    }

    /// The MOT with this id, if the catalog declares it. A hash lookup, no allocation.
    pub fn mot_idx(&self, id: &str) -> Option<MotIdx> {
        self.index.mots.get(id).copied()
    }

    /// The experience with this id.
    pub fn experience_idx(&self, id: &str) -> Option<ExpIdx> {
        self.index.experiences.get(id).copied()
    }

    /// The MOT at `idx`. Panics only if `idx` came from another catalog.
    pub fn mot(&self, idx: MotIdx) -> &Mot {
        &self.mots[idx.0 as usize]
    }

    /// The experience at `idx`.
    pub fn experience(&self, idx: ExpIdx) -> &Experience {
        &self.experiences[idx.0 as usize]
    }

    /// The longest window any alert rule of any MOT looks at: how much history a rebuilt
    /// partition needs at the least.
    pub fn longest_rule_window(&self) -> Duration {
        self.mots
            .iter()
            .flat_map(|m| {
                let p = &m.alert_policy;
                p.burn_rates
                    .iter()
                    .map(|r| r.long)
                    .chain(p.floor.as_ref().map(|f| f.over))
            })
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
