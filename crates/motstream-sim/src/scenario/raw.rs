//! The scenario file exactly as written: what serde reads, before checks against the catalog.
//! `deny_unknown_fields` everywhere, so a misspelt key is an error with its line, not a silently
//! ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    #[serde(default)]
    pub description: Option<String>,
    /// Healthy behaviour per MOT id; a BTreeMap so that checks run in a fixed order.
    #[serde(default)]
    pub mots: BTreeMap<String, RawMotSettings>,
    #[serde(default)]
    pub incidents: Vec<RawIncident>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMotSettings {
    pub visit: Option<f64>,
    pub failure_rate: Option<f64>,
    pub typical_duration: Option<String>,
    pub reasons: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIncident {
    pub name: Option<String>,
    pub mot: String,
    pub channel: Option<String>,
    pub failure_rate: Option<f64>,
    pub slowdown: Option<f64>,
    pub from: String,
    pub until: Option<String>,
    pub reason: Option<String>,
}
