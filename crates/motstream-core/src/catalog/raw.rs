//! The catalog file exactly as written: what serde reads, before defaults and checks.
//! `deny_unknown_fields` everywhere, so a misspelt key is an error with its line, not a silently
//! ignored setting.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    pub version: u32,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub experiences: Vec<RawExperience>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub target: Option<f64>,
    pub impact_weight: Option<f64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub smoto: Option<RawSmoto>,
    pub owner: Option<RawPerson>,
    pub alert_policy: Option<RawAlertPolicy>,
    pub dashboard_url: Option<String>,
    /// A human duration: how long a journey may be idle before it counts as abandoned.
    pub journey_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExperience {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub manager: RawPerson,
    pub sco: String,
    #[serde(default)]
    pub journey_timeout: Option<String>,
    pub mots: Vec<RawMot>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    pub name: String,
    pub team: String,
    pub contact: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMot {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub owner: Option<RawPerson>,
    pub smoto: Option<RawSmoto>,
    pub target: Option<f64>,
    pub runbook: Option<String>,
    pub impact_weight: Option<f64>,
    pub alert_policy: Option<RawAlertPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmoto {
    /// A human duration (`90s`, `3m`); an interaction that took longer is a failure even when
    /// reported successful. `none` clears an inherited limit.
    pub max_duration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertPolicy {
    pub min_events: Option<u64>,
    #[serde(rename = "for")]
    pub for_duration: Option<String>,
    pub burn_rates: Option<Vec<RawBurnRule>>,
    pub floor: Option<RawFloor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurnRule {
    pub name: String,
    pub severity: String,
    pub factor: f64,
    pub long: String,
    pub short: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFloor {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub below: Option<f64>,
    pub over: Option<String>,
    pub min_events: Option<u64>,
    pub severity: Option<String>,
}

fn enabled() -> bool {
    true
}
