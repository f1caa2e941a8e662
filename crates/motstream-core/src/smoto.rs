//! SMOTO classification: is this interaction a Successful MOT Outcome (a moment of magic) or
//! not (a moment of misery), and why. A pure function of the event and the catalog.

use crate::catalog::{Catalog, MotIdx};
use crate::error::EventError;
use crate::event::{InteractionEvent, Outcome};

/// Magic or misery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A Successful MOT Outcome.
    Magic,
    /// Not one.
    Misery,
}

/// Why an interaction got its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Reported successful, within every limit of the SMOTO rule.
    ReportedSuccess,
    /// Reported failed.
    ReportedFailure,
    /// Reported successful but slower than the rule's maximum duration.
    TooSlow { duration_ms: u32, max_ms: u64 },
}

impl Why {
    /// The failure reason to record for this verdict, given the event's own: the event's for a
    /// reported failure (or `unspecified`), `too_slow` when the rule's limit made it a failure.
    pub fn failure_reason<'e>(&self, event: &'e InteractionEvent<'_>) -> Option<&'e str> {
        match self {
            Self::ReportedSuccess => None,
            Self::ReportedFailure => Some(event.failure_reason.as_deref().unwrap_or("unspecified")),
            Self::TooSlow { .. } => Some("too_slow"),
        }
    }
}

/// The result of classifying one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// The catalog declares the MOT.
    Known {
        mot: MotIdx,
        verdict: Verdict,
        why: Why,
    },
    /// The MOT id is not in the catalog: counted as an *unidentified MOT*, not dropped.
    Unidentified,
}

/// Classifies one validated event against the catalog. Fails only when the event names an
/// experience that contradicts the catalog (a producer bug worth a dead-letter entry).
pub fn classify(
    event: &InteractionEvent<'_>,
    catalog: &Catalog,
) -> Result<Classification, EventError> {
    let Some(mot) = catalog.mot_idx(&event.mot_id) else {
        return Ok(Classification::Unidentified);
    };
    let m = catalog.mot(mot);
    if let Some(exp) = event.experience_id.as_deref() {
        let owner = &catalog.experience(m.experience).id;
        if exp != owner {
            return Err(EventError::ExperienceMismatch {
                given: exp.to_owned(),
                mot: m.id.clone(),
                catalog: owner.clone(),
            });
        }
    }
    let why = match event.outcome {
        Outcome::Failure => Why::ReportedFailure,
        Outcome::Success => match (m.smoto.max_duration, event.duration_ms) {
            (Some(max), Some(d)) if u128::from(d) > max.as_millis() => Why::TooSlow {
                duration_ms: d,
                max_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
            },
            _ => Why::ReportedSuccess,
        },
    };
    let verdict = match why {
        Why::ReportedSuccess => Verdict::Magic,
        _ => Verdict::Misery,
    };
    Ok(Classification::Known { mot, verdict, why })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::borrow::Cow;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_yaml(
            include_str!("../../../deploy/catalog/airline.yaml"),
            "airline.yaml",
        )
        .unwrap()
    }

    fn event(mot: &str, outcome: Outcome, duration_ms: Option<u32>) -> InteractionEvent<'static> {
        InteractionEvent {
            event_id: None,
            mot_id: Cow::Owned(mot.to_owned()),
            experience_id: None,
            journey_id: None,
            event_time_ms: 1_795_000_000_000,
            outcome,
            failure_reason: None,
            channel: None,
            duration_ms,
            producer_id: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn reported_success_within_the_limit_is_magic() {
        let c = catalog();
        let got = classify(&event("bag-drop", Outcome::Success, Some(60_000)), &c).unwrap();
        assert_eq!(
            got,
            Classification::Known {
                mot: c.mot_idx("bag-drop").unwrap(),
                verdict: Verdict::Magic,
                why: Why::ReportedSuccess
            }
        );
    }

    #[test]
    fn reported_success_slower_than_max_duration_is_misery_too_slow() {
        let c = catalog();
        let e = event("bag-drop", Outcome::Success, Some(240_001));
        let Classification::Known { verdict, why, .. } = classify(&e, &c).unwrap() else {
            panic!("bag-drop is in the catalog")
        };
        assert_eq!(verdict, Verdict::Misery);
        assert_eq!(
            why,
            Why::TooSlow {
                duration_ms: 240_001,
                max_ms: 240_000
            }
        );
        assert_eq!(why.failure_reason(&e), Some("too_slow"));
    }

    #[test]
    fn reported_failure_keeps_its_reason_or_is_unspecified() {
        let c = catalog();
        let mut e = event("security", Outcome::Failure, None);
        let Classification::Known { why, .. } = classify(&e, &c).unwrap() else {
            panic!("security is in the catalog")
        };
        assert_eq!(why.failure_reason(&e), Some("unspecified"));
        e.failure_reason = Some("scanner-down".into());
        assert_eq!(why.failure_reason(&e), Some("scanner-down"));
    }

    #[test]
    fn mot_absent_from_the_catalog_is_unidentified_not_an_error() {
        let c = catalog();
        let got = classify(&event("duty-free", Outcome::Success, None), &c).unwrap();
        assert_eq!(got, Classification::Unidentified);
    }

    #[test]
    fn experience_contradicting_the_catalog_is_rejected_naming_both() {
        let c = catalog();
        let mut e = event("bag-drop", Outcome::Success, None);
        e.experience_id = Some("broadband-repair".into());
        let err = classify(&e, &c).unwrap_err();
        assert_eq!(err.reason(), "experience_mismatch");
        assert!(err.to_string().contains("\"airline-departure\""), "{err}");
    }
}
