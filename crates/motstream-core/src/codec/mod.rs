//! Decoding Kafka message payloads into [`InteractionEvent`]s, and encoding them (for the
//! simulator, load generator and tests).
//!
//! The encoding comes from the message's `content-type` header when there is one; otherwise it
//! is detected: a JSON event is an object, so its first non-blank byte is `{`, a byte that never
//! starts a valid protobuf `InteractionEvent` (it would be field 15 with the deprecated group
//! wire type).

mod json;
mod proto;
mod rfc3339;

use crate::error::EventError;
use crate::event::{InteractionEvent, RawEvent};
use crate::limits::Limits;

pub use json::{encode_json, encode_json_into};
pub use proto::{encode_proto, encode_proto_into};

/// The name of the Kafka header that says how the payload is encoded.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// `content-type` value of JSON events.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `content-type` value of protobuf events.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";

/// A wire encoding of interaction events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    /// The `content-type` header value for this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => CONTENT_TYPE_JSON,
            Self::Protobuf => CONTENT_TYPE_PROTOBUF,
        }
    }

    /// Reads a `content-type` header value. Parameters (`; charset=utf-8`) are ignored; the
    /// media types accepted are `application/json` and `application/*+json`, and
    /// `application/x-protobuf`, `application/protobuf` and `application/vnd.google.protobuf`.
    pub fn from_content_type(value: &[u8]) -> Result<Self, EventError> {
        // Called for every message: byte comparisons only, no allocation.
        let media = value
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let is = |m: &[u8]| media.eq_ignore_ascii_case(m);
        let ends_with = |suffix: &[u8]| {
            media.len() > suffix.len()
                && media[media.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        };
        let starts_with = |prefix: &[u8]| {
            media.len() > prefix.len() && media[..prefix.len()].eq_ignore_ascii_case(prefix)
        };
        if is(b"application/x-protobuf")
            || is(b"application/protobuf")
            || is(b"application/vnd.google.protobuf")
            || is(b"application/octet-stream")
        {
            Ok(Self::Protobuf)
        } else if is(b"application/json") || (starts_with(b"application/") && ends_with(b"+json")) {
            Ok(Self::Json)
        } else {
            Err(EventError::UnsupportedContentType(
                String::from_utf8_lossy(value).into_owned(),
            ))
        }
    }

    /// Guesses the encoding of a payload that came without a `content-type` header.
    pub fn detect(payload: &[u8]) -> Self {
        match payload.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Self::Json,
            _ => Self::Protobuf,
        }
    }
}

/// Decodes and validates events against its [`Limits`]. Both encodings borrow strings from the
/// payload, so decoding allocates nothing for a typical event (attributes, and JSON strings
/// with escapes, are the exceptions).
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one payload. `content_type` is the raw `content-type` header value, if the
    /// message had one; `now_ms` is the receiver's clock, used only to reject events too far in
    /// the future. Never panics, whatever the bytes.
    pub fn decode<'a>(
        &self,
        payload: &'a [u8],
        content_type: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<InteractionEvent<'a>, EventError> {
        if payload.is_empty() {
            return Err(EventError::Empty);
        }
        if payload.len() > self.limits.max_payload_bytes {
            return Err(EventError::PayloadTooLarge {
                len: payload.len(),
                max: self.limits.max_payload_bytes,
            });
        }
        let encoding = match content_type {
            Some(ct) => Encoding::from_content_type(ct)?,
            None => Encoding::detect(payload),
        };
        let mut raw = RawEvent::default();
        match encoding {
            Encoding::Json => json::decode(payload, &mut raw)?,
            Encoding::Protobuf if content_type.is_none() => proto::decode(payload, &mut raw)
                .map_err(|e| match e {
                    // Guessed, not declared: say so, rather than blame protobuf for a text.
                    EventError::NotProtobuf(why) => {
                        EventError::Unrecognised(undetected(payload, &why))
                    }
                    e => e,
                })?,
            Encoding::Protobuf => proto::decode(payload, &mut raw)?,
        }
        raw.validate(&self.limits, now_ms)
    }
}

/// Why a payload without content-type is neither encoding: it does not start with `{` (so
/// not JSON), and what protobuf made of it; text is quoted (its start), so that a CSV line or
/// a log line is recognisable.
fn undetected(payload: &[u8], proto_error: &str) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) if text.chars().all(|c| !c.is_control() || c.is_whitespace()) => {
            let start: String = text.chars().take(40).collect();
            let more = if text.chars().count() > 40 { "..." } else { "" };
            format!(
                "it is text ({start:?}{more}) that does not start with '{{', and not protobuf ({proto_error})"
            )
        }
        _ => format!("it does not start with '{{', and is not protobuf ({proto_error})"),
    }
}

/// Encodes an event in the given encoding.
pub fn encode(event: &InteractionEvent<'_>, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => encode_json(event),
        Encoding::Protobuf => encode_proto(event),
    }
}

/// Appends the event's encoding to `out`: for producers that reuse one buffer per event.
pub fn encode_into(event: &InteractionEvent<'_>, encoding: Encoding, out: &mut Vec<u8>) {
    match encoding {
        Encoding::Json => encode_json_into(event, out),
        Encoding::Protobuf => encode_proto_into(event, out),
    }
}

#[cfg(test)]
mod tests;

/// The protobuf reader's raw view, before validation: for the tests that hold the hand-written
/// reader to prost's (in motstream-proto, so that this crate need not depend on it).
#[doc(hidden)]
pub mod wire {
    pub use super::proto::{OUTCOME_FAILURE, OUTCOME_SUCCESS};
    use crate::error::EventError;
    pub use crate::event::RawEvent;

    /// Reads the wire format into a [`RawEvent`], as ingest's decoder does before validating.
    pub fn decode_protobuf(payload: &[u8]) -> Result<RawEvent<'_>, EventError> {
        let mut raw = RawEvent::default();
        super::proto::decode(payload, &mut raw).map(|()| raw)
    }
}
