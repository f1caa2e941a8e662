//! The in-memory interaction event, shared by both wire encodings, and its validation.

use std::borrow::Cow;

use crate::error::EventError;
use crate::limits::Limits;

/// The outcome the emitter reported. Whether it is a *Successful MOT Outcome* is decided by
/// [`crate::smoto::classify`], which can add limits such as a maximum duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// The JSON spelling: `"success"` or `"failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// Parses the JSON spelling, case-insensitively; also accepts the protobuf enum names
    /// (`OUTCOME_SUCCESS`) so that emitters using protobuf's JSON mapping are understood.
    pub fn parse(s: &str) -> Result<Self, EventError> {
        let t = s.trim();
        let t = t
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("outcome_"))
            .map_or(t, |_| &t[8..]);
        if t.eq_ignore_ascii_case("success") {
            Ok(Self::Success)
        } else if t.eq_ignore_ascii_case("failure") {
            Ok(Self::Failure)
        } else {
            Err(EventError::UnknownOutcome(s.to_owned()))
        }
    }
}

/// One customer interaction with one Moment of Truth, borrowed from the message it was decoded
/// from where the encoding allows (JSON strings without escapes; protobuf strings from the
/// decoder's reused message).
///
/// Empty strings and absent fields are the same thing (protobuf cannot tell them apart), so
/// optional text fields are `None` rather than `Some("")`. Attributes are sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionEvent<'a> {
    /// Producer-assigned unique id, for optional de-duplication.
    pub event_id: Option<Cow<'a, str>>,
    /// The MOT, as declared in the catalog (or an unidentified one). Never empty.
    pub mot_id: Cow<'a, str>,
    /// The experience; optional when the catalog knows the MOT.
    pub experience_id: Option<Cow<'a, str>>,
    /// The journey (also the Kafka key); `None` for interactions outside a tracked journey.
    pub journey_id: Option<Cow<'a, str>>,
    /// When the interaction happened, in ms since the Unix epoch.
    pub event_time_ms: i64,
    /// The reported outcome.
    pub outcome: Outcome,
    /// Why it failed, when it did and the emitter said.
    pub failure_reason: Option<Cow<'a, str>>,
    /// The channel, e.g. `kiosk`.
    pub channel: Option<Cow<'a, str>>,
    /// How long the interaction took, in ms (0 to [`Limits::max_duration_ms`]).
    pub duration_ms: Option<u32>,
    /// Which system emitted the event.
    pub producer_id: Option<Cow<'a, str>>,
    /// Free attributes, sorted by key, keys unique.
    pub attributes: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl InteractionEvent<'_> {
    /// Detaches the event from the buffer it borrows from.
    pub fn into_owned(self) -> InteractionEvent<'static> {
        fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        InteractionEvent {
            event_id: own(self.event_id),
            mot_id: Cow::Owned(self.mot_id.into_owned()),
            experience_id: own(self.experience_id),
            journey_id: own(self.journey_id),
            event_time_ms: self.event_time_ms,
            outcome: self.outcome,
            failure_reason: own(self.failure_reason),
            channel: own(self.channel),
            duration_ms: self.duration_ms,
            producer_id: own(self.producer_id),
            attributes: self
                .attributes
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        }
    }
}

/// The fields as they arrive, before validation: what both decoders produce. `None` and empty
/// mean absent.
#[derive(Debug, Default)]
pub struct RawEvent<'a> {
    pub event_id: Option<Cow<'a, str>>,
    pub mot_id: Option<Cow<'a, str>>,
    pub experience_id: Option<Cow<'a, str>>,
    pub journey_id: Option<Cow<'a, str>>,
    pub event_time_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub failure_reason: Option<Cow<'a, str>>,
    pub channel: Option<Cow<'a, str>>,
    pub duration_ms: Option<i64>,
    pub producer_id: Option<Cow<'a, str>>,
    pub attributes: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

fn non_empty(c: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    c.filter(|s| !s.is_empty())
}

fn check_len(field: &'static str, s: &Option<Cow<'_, str>>, max: usize) -> Result<(), EventError> {
    match s {
        Some(v) if v.len() > max => Err(EventError::Oversize {
            field,
            len: v.len(),
            max,
        }),
        _ => Ok(()),
    }
}

impl<'a> RawEvent<'a> {
    /// Applies every documented rule, in field order, and returns the first violation.
    pub(crate) fn validate(
        self,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<InteractionEvent<'a>, EventError> {
        let mot_id = non_empty(self.mot_id).ok_or(EventError::Missing {
            field: "event.mot_id",
        })?;
        let event_id = non_empty(self.event_id);
        let experience_id = non_empty(self.experience_id);
        let journey_id = non_empty(self.journey_id);
        let failure_reason = non_empty(self.failure_reason);
        let channel = non_empty(self.channel);
        let producer_id = non_empty(self.producer_id);
        let id = limits.max_id_bytes;
        check_len("event.event_id", &event_id, id)?;
        check_len("event.mot_id", &Some(Cow::Borrowed(&*mot_id)), id)?;
        check_len("event.experience_id", &experience_id, id)?;
        check_len("event.journey_id", &journey_id, id)?;
        check_len("event.producer_id", &producer_id, id)?;
        check_len(
            "event.failure_reason",
            &failure_reason,
            limits.max_reason_bytes,
        )?;
        check_len("event.channel", &channel, limits.max_channel_bytes)?;

        let event_time_ms = match self.event_time_ms {
            None | Some(0) => {
                return Err(EventError::Missing {
                    field: "event.event_time_ms",
                });
            }
            Some(t) if t < limits.min_event_time_ms => {
                return Err(EventError::BadTimestamp {
                    field: "event.event_time_ms",
                    detail: format!(
                        "{t} is before 2000-01-01 (expected milliseconds since the Unix epoch)"
                    ),
                });
            }
            Some(t) => t,
        };
        let ahead_ms = event_time_ms.saturating_sub(now_ms);
        if ahead_ms > limits.max_future_skew_ms {
            return Err(EventError::FutureTimestamp {
                mot_id: mot_id.into_owned(),
                ahead_ms,
                max_ms: limits.max_future_skew_ms,
            });
        }
        let outcome = self.outcome.ok_or(EventError::Missing {
            field: "event.outcome",
        })?;
        let duration_ms = match self.duration_ms {
            None => None,
            Some(d) if d < 0 => return Err(EventError::NegativeDuration(d)),
            Some(d) if d > limits.max_duration_ms => {
                return Err(EventError::AbsurdDuration {
                    value: d,
                    max: limits.max_duration_ms,
                });
            }
            Some(d) => Some(u32::try_from(d).map_err(|_| EventError::AbsurdDuration {
                value: d,
                max: limits.max_duration_ms,
            })?),
        };

        let mut attributes = self.attributes;
        if attributes.len() > limits.max_attributes {
            return Err(EventError::TooManyAttributes {
                count: attributes.len(),
                max: limits.max_attributes,
            });
        }
        for (k, v) in &attributes {
            if k.len() > limits.max_attribute_key_bytes {
                return Err(EventError::Oversize {
                    field: "event.attributes.key",
                    len: k.len(),
                    max: limits.max_attribute_key_bytes,
                });
            }
            if v.len() > limits.max_attribute_value_bytes {
                return Err(EventError::Oversize {
                    field: "event.attributes.value",
                    len: v.len(),
                    max: limits.max_attribute_value_bytes,
                });
            }
        }
        // Sorted so both encodings (a JSON object keeps order, a protobuf map does not) give
        // equal events; at most 16 entries, so this is cheap.
        attributes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = attributes.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EventError::DuplicateAttribute(w[0].0.to_string()));
        }

        Ok(InteractionEvent {
            event_id,
            mot_id,
            experience_id,
            journey_id,
            event_time_ms,
            outcome,
            failure_reason,
            channel,
            duration_ms,
            producer_id,
            attributes,
        })
    }
}
