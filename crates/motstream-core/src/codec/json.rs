//! The JSON form. Parsed with a hand-written visitor so that strings without escapes are
//! borrowed from the payload, unknown fields are skipped without being built, and a value of the
//! wrong type is reported under its field's name.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::EventError;
use crate::event::{InteractionEvent, Outcome, RawEvent};

/// Parses into `out`, borrowing strings without escapes from `payload`.
pub(super) fn decode<'a>(payload: &'a [u8], out: &mut RawEvent<'a>) -> Result<(), EventError> {
    // RFC 8259 JSON is UTF-8; checking the whole payload once gives a clearer error than
    // serde_json's per-string one, and lets the parser skip re-validating.
    let text = std::str::from_utf8(payload).map_err(|e| EventError::InvalidUtf8 {
        field: format!("payload (at byte {})", e.valid_up_to()),
    })?;
    let failed_field = Cell::new(None);
    let mut outcome = None;
    let mut event_time = None;
    let mut de = serde_json::Deserializer::from_str(text);
    // The seed fills `out` in place: the event is a few hundred bytes, and moving it through
    // serde's return values showed up as memmove in profiles.
    EventSeed {
        out: &mut *out,
        outcome: &mut outcome,
        event_time: &mut event_time,
        failed_field: &failed_field,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| match failed_field.get() {
        _ if e.is_syntax() || e.is_eof() => EventError::NotJson(e.to_string()),
        Some(field) => EventError::WrongType {
            field,
            detail: e.to_string(),
        },
        None => EventError::WrongType {
            field: "event",
            detail: e.to_string(),
        },
    })?;
    if let Some(o) = outcome.filter(|o: &Cow<'_, str>| !o.is_empty()) {
        out.outcome = Some(Outcome::parse(&o)?);
    }
    if let Some(t) = event_time.filter(|t: &Cow<'_, str>| !t.is_empty()) {
        let ms = super::rfc3339::parse_ms(&t)?;
        match out.event_time_ms {
            Some(given) if given != ms => {
                return Err(EventError::BadTimestamp {
                    field: super::rfc3339::FIELD,
                    detail: format!(
                        "{t:?} ({ms}) disagrees with event_time_ms {given}; give one of them"
                    ),
                });
            }
            _ => out.event_time_ms = Some(ms),
        }
    }
    Ok(())
}

struct EventSeed<'s, 'de> {
    out: &'s mut RawEvent<'de>,
    outcome: &'s mut Option<Cow<'de, str>>,
    event_time: &'s mut Option<Cow<'de, str>>,
    failed_field: &'s Cell<Option<&'static str>>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an interaction event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let out = self.out;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let Some(key) = key.0 else { continue };
            macro_rules! field {
                ($name:literal, $ty:ty) => {{
                    self.failed_field.set(Some(concat!("event.", $name)));
                    let v = map.next_value::<$ty>()?;
                    self.failed_field.set(None);
                    v
                }};
            }
            match &*key {
                "event_id" => out.event_id = field!("event_id", Str<'de>).0,
                "mot_id" => out.mot_id = field!("mot_id", Str<'de>).0,
                "experience_id" => out.experience_id = field!("experience_id", Str<'de>).0,
                "journey_id" => out.journey_id = field!("journey_id", Str<'de>).0,
                "event_time_ms" => out.event_time_ms = field!("event_time_ms", Int).0,
                "event_time" => *self.event_time = field!("event_time", Str<'de>).0,
                "outcome" => *self.outcome = field!("outcome", Str<'de>).0,
                "failure_reason" => out.failure_reason = field!("failure_reason", Str<'de>).0,
                "channel" => out.channel = field!("channel", Str<'de>).0,
                "duration_ms" => out.duration_ms = field!("duration_ms", Int).0,
                "producer_id" => out.producer_id = field!("producer_id", Str<'de>).0,
                "attributes" => out.attributes = field!("attributes", Attrs<'de>).0,
                // Unknown fields are skipped so that producers can add fields before consumers
                // know them; free-form data belongs in `attributes`.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A string or null, borrowed from the input when it has no escapes.
struct Str<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number (or null). Fractions and out-of-range numbers are errors, not truncations.
struct Int(Option<i64>);

impl<'de> de::Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of milliseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Int(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(|v| Int(Some(v)))
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Int(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An object of string values.
struct Attrs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de> de::Deserialize<'de> for Attrs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attrs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Str(k)) = map.next_key::<Str<'de>>()? {
                    let Str(v) = map.next_value::<Str<'de>>()?;
                    out.push((k.unwrap_or_default(), v.unwrap_or_default()));
                }
                Ok(Attrs(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attrs(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Serialize)]
struct JsonOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    mot_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    experience_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journey_id: Option<&'a str>,
    event_time_ms: i64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    producer_id: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<&'a str, &'a str>,
}

/// Encodes an event as JSON, omitting absent fields.
pub fn encode_json(e: &InteractionEvent<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_json_into(e, &mut out);
    out
}

/// Appends the event's JSON encoding (see [`encode_json`]) to `out`.
pub fn encode_json_into(e: &InteractionEvent<'_>, buf: &mut Vec<u8>) {
    let out = JsonOut {
        event_id: e.event_id.as_deref(),
        mot_id: &e.mot_id,
        experience_id: e.experience_id.as_deref(),
        journey_id: e.journey_id.as_deref(),
        event_time_ms: e.event_time_ms,
        outcome: e.outcome.as_str(),
        failure_reason: e.failure_reason.as_deref(),
        channel: e.channel.as_deref(),
        duration_ms: e.duration_ms,
        producer_id: e.producer_id.as_deref(),
        attributes: e.attributes.iter().map(|(k, v)| (&**k, &**v)).collect(),
    };
    // Serializing plain strings and numbers into a Vec cannot fail.
    serde_json::to_writer(buf, &out).expect("serializing an event to JSON cannot fail");
}
