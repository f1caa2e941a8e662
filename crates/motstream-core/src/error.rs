//! The one error type for a rejected event. Its message names the field; [`EventError::reason`]
//! is the stable code used for dead-letter headers and metric labels.

use thiserror::Error;

/// Why an event was rejected. Messages name the offending field (`event.mot_id: missing`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("payload: empty")]
    Empty,
    #[error("payload: {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge { len: usize, max: usize },
    #[error(
        "payload: unsupported content-type {0:?} (expected application/json or application/x-protobuf)"
    )]
    UnsupportedContentType(String),
    #[error("payload: not JSON: {0}")]
    NotJson(String),
    #[error("payload: not protobuf: {0}")]
    NotProtobuf(String),
    /// No content-type header, and the payload decodes as neither encoding.
    #[error(
        "payload: neither JSON nor protobuf, and no content-type header says which: {0} (send content-type application/json or application/x-protobuf)"
    )]
    Unrecognised(String),
    #[error("{field}: invalid UTF-8")]
    InvalidUtf8 { field: String },
    #[error("{field}: missing")]
    Missing { field: &'static str },
    #[error("{field}: {detail}")]
    WrongType { field: &'static str, detail: String },
    /// `field` is `event.event_time_ms` or, for an RFC 3339 string, `event.event_time`.
    #[error("{field}: {detail}")]
    BadTimestamp { field: &'static str, detail: String },
    #[error(
        "event.event_time_ms: {ahead_ms} ms in the future, beyond the allowed skew of {max_ms} ms"
    )]
    FutureTimestamp {
        /// The event's MOT, so that the rejection can be counted for it.
        mot_id: String,
        ahead_ms: i64,
        max_ms: i64,
    },
    #[error("event.outcome: unknown value {0:?} (expected \"success\" or \"failure\")")]
    UnknownOutcome(String),
    #[error("event.duration_ms: {0} is negative")]
    NegativeDuration(i64),
    #[error("event.duration_ms: {value} exceeds the limit of {max} ms")]
    AbsurdDuration { value: i64, max: i64 },
    #[error("{field}: {len} bytes exceeds the limit of {max}")]
    Oversize {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("event.attributes: {count} entries exceed the limit of {max}")]
    TooManyAttributes { count: usize, max: usize },
    #[error("event.attributes: duplicate key {0:?}")]
    DuplicateAttribute(String),
    #[error(
        "event.experience_id: {given:?} does not own MOT {mot:?} (the catalog puts it in {catalog:?})"
    )]
    ExperienceMismatch {
        given: String,
        mot: String,
        catalog: String,
    },
}

impl EventError {
    /// A short, stable, low-cardinality code for this kind of rejection: the value of the
    /// dead-letter `motstream-reason-code` header and of the `reason` metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty_payload",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::NotJson(_) => "not_json",
            Self::NotProtobuf(_) => "not_protobuf",
            Self::Unrecognised(_) => "unrecognised_payload",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::Missing { .. } => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::BadTimestamp { .. } => "bad_timestamp",
            Self::FutureTimestamp { .. } => "future_timestamp",
            Self::UnknownOutcome(_) => "unknown_outcome",
            Self::NegativeDuration(_) => "negative_duration",
            Self::AbsurdDuration { .. } => "absurd_duration",
            Self::Oversize { .. } => "oversize_field",
            Self::TooManyAttributes { .. } => "too_many_attributes",
            Self::DuplicateAttribute(_) => "duplicate_attribute",
            Self::ExperienceMismatch { .. } => "experience_mismatch",
        }
    }

    /// Every value [`EventError::reason`] can return, for pre-registering metric series.
    pub const REASONS: [&'static str; 18] = [
        "empty_payload",
        "payload_too_large",
        "unsupported_content_type",
        "not_json",
        "not_protobuf",
        "unrecognised_payload",
        "invalid_utf8",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
        "future_timestamp",
        "unknown_outcome",
        "negative_duration",
        "absurd_duration",
        "oversize_field",
        "too_many_attributes",
        "duplicate_attribute",
        "experience_mismatch",
    ];
}
