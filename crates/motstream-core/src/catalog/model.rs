//! The validated catalog: experiences, their Moments of Truth, SMOTO rules, targets, owners and
//! alert policy, with every default already applied.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

/// Index of a MOT in [`super::Catalog::mots`]; stable for the life of a loaded catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MotIdx(pub u32);

/// Index of an experience in [`super::Catalog::experiences`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpIdx(pub u32);

/// A person or team that owns something and can be contacted about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    /// The team: the label alerts are routed by.
    pub team: String,
    /// Where to reach them: an e-mail address, a pager handle or a chat channel.
    pub contact: String,
}

/// A customer experience (journey type) with one Successful Customer Outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Experience {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The Experience Manager.
    pub manager: Person,
    /// The MOT whose success completes the journey: the SCO.
    pub sco_mot: MotIdx,
    /// The experience's MOTs, in journey order as declared.
    pub mots: Vec<MotIdx>,
    /// How long a journey may go without an interaction before it is closed, abandoned if it
    /// did not reach the SCO (`journey_timeout`, or `defaults.journey_timeout`); `None`: the
    /// service's default (`--journey-timeout`, 30 minutes).
    pub journey_timeout: Option<Duration>,
}

/// The rule that says whether one interaction was a Successful MOT Outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmotoRule {
    /// An interaction reported successful but slower than this is a failure (`too_slow`).
    pub max_duration: Option<Duration>,
}

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Wake someone: the customer is affected now.
    Page,
    /// Handle in working hours.
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Ticket => "ticket",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "page" => Some(Self::Page),
            "ticket" => Some(Self::Ticket),
            _ => None,
        }
    }
}

/// A multiwindow burn-rate rule (SRE Workbook): fires when the error budget burns faster than
/// `factor` times the sustainable rate over both the long and the short window.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnRule {
    pub name: String,
    pub severity: Severity,
    /// Burn-rate threshold: 1.0 spends exactly the error budget over the SLO period.
    pub factor: f64,
    pub long: Duration,
    pub short: Duration,
}

/// Fires when the SMOTO rate over `over` is below `below`, given at least `min_events`: fast
/// course correction regardless of the error budget.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRule {
    pub below: f64,
    pub over: Duration,
    pub min_events: u64,
    pub severity: Severity,
}

/// When a MOT's owner is alerted.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    /// A rule may fire only when each of its windows holds at least this many interactions, so
    /// that a low-traffic MOT does not page on two failures.
    pub min_events: u64,
    /// How long a condition must hold before the alert fires.
    pub for_duration: Duration,
    pub burn_rates: Vec<BurnRule>,
    pub floor: Option<FloorRule>,
}

impl AlertPolicy {
    /// The SRE Workbook's recommended multiwindow, multi-burn-rate rules.
    pub fn sre_workbook() -> Self {
        let rule = |name: &str, severity, factor, long, short| BurnRule {
            name: name.to_owned(),
            severity,
            factor,
            long: Duration::from_secs(long),
            short: Duration::from_secs(short),
        };
        Self {
            min_events: 20,
            for_duration: Duration::ZERO,
            burn_rates: vec![
                rule("page-fast-burn", Severity::Page, 14.4, 3600, 300),
                rule("page-slow-burn", Severity::Page, 6.0, 6 * 3600, 1800),
                rule("ticket-fast-burn", Severity::Ticket, 3.0, 24 * 3600, 7200),
                rule(
                    "ticket-slow-burn",
                    Severity::Ticket,
                    1.0,
                    3 * 86_400,
                    6 * 3600,
                ),
            ],
            floor: None,
        }
    }
}

/// One Moment of Truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Mot {
    pub id: String,
    pub name: String,
    pub experience: ExpIdx,
    /// What kind of interaction it is (`digital`, `self-service`, `assisted`, ...): the Type
    /// column of the MOT table.
    pub kind: String,
    /// Channels the MOT is expected on (informational; bounds the channel label).
    pub channels: Vec<String>,
    /// The MOT Manager: who is alerted.
    pub owner: Person,
    pub smoto: SmotoRule,
    /// SMOTO target ratio, in (0, 1); its complement is the error budget.
    pub target: f64,
    pub runbook: Option<String>,
    /// Relative weight of this MOT's failures in its experience's impact (>= 0).
    pub impact_weight: f64,
    pub alert_policy: AlertPolicy,
}

/// FxHash (rustc's multiply-rotate hash): several times cheaper than SipHash on short ids, and
/// classification hashes one id per event. SipHash's flooding resistance is not needed here:
/// the tables are built once from the catalog and only looked up afterwards, so a hostile id
/// can at worst compare against the few catalog ids that share its hash.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The lookup tables built once at load, so that classification is a hash of a borrowed string.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    pub mots: FxMap<Box<str>, MotIdx>,
    pub experiences: FxMap<Box<str>, ExpIdx>,
}
