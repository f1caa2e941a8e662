//! The protobuf form. Decoded by a small hand-written reader of the wire format that borrows
//! every string straight from the payload: no copy, no allocation (but for attributes), and
//! encoded by a small hand-written writer from the borrowed event. prost's generated type is
//! the reference both are tested against.

use std::borrow::Cow;

use crate::error::EventError;
use crate::event::{InteractionEvent, Outcome, RawEvent};

/// Field numbers of `motstream.v1.InteractionEvent`.
mod field {
    pub const EVENT_ID: u32 = 1;
    pub const MOT_ID: u32 = 2;
    pub const EXPERIENCE_ID: u32 = 3;
    pub const JOURNEY_ID: u32 = 4;
    pub const EVENT_TIME_MS: u32 = 5;
    pub const OUTCOME: u32 = 6;
    pub const FAILURE_REASON: u32 = 7;
    pub const CHANNEL: u32 = 8;
    pub const DURATION_MS: u32 = 9;
    pub const PRODUCER_ID: u32 = 10;
    pub const ATTRIBUTES: u32 = 11;
}

/// `motstream.v1.Outcome`'s numbers (held to the generated enum by motstream-proto's tests).
pub const OUTCOME_SUCCESS: i32 = 1;
pub const OUTCOME_FAILURE: i32 = 2;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const START_GROUP: u32 = 3;
const END_GROUP: u32 = 4;
const FIXED32: u32 = 5;
/// Nesting limit for skipped groups, as prost's recursion limit, so hostile input cannot
/// exhaust the stack.
const MAX_DEPTH: u32 = 100;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What can go wrong reading the wire format: small and `Copy`, so that the reader's results
/// stay in registers; turned into an [`EventError`] once, on the way out.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Truncated,
    Overflow,
    PastEnd(u64),
    BadKey,
    BadWireType { number: u32, wire: u32 },
    Unclosed(u32),
    MismatchedGroup,
    TooDeep,
    Utf8(&'static str),
    Outcome(i32),
}

impl From<Wire> for EventError {
    #[cold]
    fn from(w: Wire) -> Self {
        let bad = |s: String| EventError::NotProtobuf(s);
        match w {
            Wire::Truncated => bad("truncated field".into()),
            Wire::Overflow => bad("varint overflows 64 bits".into()),
            Wire::PastEnd(len) => bad(format!("length {len} runs past the end of the message")),
            Wire::BadKey => bad("a field key with field number 0 or wider than 32 bits".into()),
            Wire::BadWireType { number, wire } => {
                bad(format!("field {number} has unexpected wire type {wire}"))
            }
            Wire::Unclosed(n) => bad(format!("group {n} is not closed")),
            Wire::MismatchedGroup => bad("mismatched end of group".into()),
            Wire::TooDeep => bad("groups nested too deep".into()),
            Wire::Utf8(field) => EventError::InvalidUtf8 {
                field: field.to_owned(),
            },
            Wire::Outcome(v) => EventError::UnknownOutcome(v.to_string()),
        }
    }
}

impl<'a> Reader<'a> {
    #[inline]
    fn varint(&mut self) -> Result<u64, Wire> {
        // Most varints here (tags, lengths) are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, Wire> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(Wire::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte may only carry the top bit of a 64-bit value.
                if i == 9 && b > 1 {
                    return Err(Wire::Overflow);
                }
                return Ok(v);
            }
        }
        Err(Wire::Overflow)
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], Wire> {
        let len = self.varint()?;
        let rest = self.buf.len() - self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= rest => {
                let b = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(b)
            }
            _ => Err(Wire::PastEnd(len)),
        }
    }

    fn skip(&mut self, wire: u32, number: u32, depth: u32) -> Result<(), Wire> {
        let n = match wire {
            VARINT => return self.varint().map(drop),
            LEN => return self.bytes().map(drop),
            FIXED64 => 8,
            FIXED32 => 4,
            // Deprecated groups: skip to the matching end.
            START_GROUP if depth < MAX_DEPTH => loop {
                match self.tag()? {
                    None => return Err(Wire::Unclosed(number)),
                    Some((n, END_GROUP)) if n == number => return Ok(()),
                    Some((_, END_GROUP)) => return Err(Wire::MismatchedGroup),
                    Some((n, w)) => self.skip(w, n, depth + 1)?,
                }
            },
            START_GROUP => return Err(Wire::TooDeep),
            _ => return Err(Wire::BadWireType { number, wire }),
        };
        if self.buf.len() - self.pos < n {
            return Err(Wire::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// The next field's (number, wire type), or `None` at the end.
    #[inline]
    fn tag(&mut self) -> Result<Option<(u32, u32)>, Wire> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        // The whole key must fit in 32 bits (field numbers stop at 2^29 - 1), as prost and
        // protoc require; a wider varint is malformed even if its field number would fit.
        match u32::try_from(self.varint()?) {
            Ok(tag) if tag >> 3 != 0 => Ok(Some((tag >> 3, tag & 7))),
            _ => Err(Wire::BadKey),
        }
    }

    /// A length-delimited UTF-8 field; empty reads as absent.
    #[inline]
    fn text(
        &mut self,
        number: u32,
        wire: u32,
        field: &'static str,
    ) -> Result<Option<Cow<'a, str>>, Wire> {
        expect_wire(number, wire, LEN)?;
        let s = std::str::from_utf8(self.bytes()?).map_err(|_| Wire::Utf8(field))?;
        Ok((!s.is_empty()).then_some(Cow::Borrowed(s)))
    }
}

#[inline]
fn expect_wire(number: u32, wire: u32, want: u32) -> Result<(), Wire> {
    if wire == want {
        Ok(())
    } else {
        Err(Wire::BadWireType { number, wire })
    }
}

fn attribute<'a>(entry: &'a [u8]) -> Result<(Cow<'a, str>, Cow<'a, str>), Wire> {
    let mut r = Reader { buf: entry, pos: 0 };
    let (mut k, mut v) = (None, None);
    while let Some((number, wire)) = r.tag()? {
        match number {
            1 => k = r.text(number, wire, "event.attributes.key")?,
            2 => v = r.text(number, wire, "event.attributes.value")?,
            _ => r.skip(wire, number, 0)?,
        }
    }
    Ok((k.unwrap_or_default(), v.unwrap_or_default()))
}

/// Reads the wire format into `out`. Later occurrences of a field win, as protobuf specifies;
/// unknown fields are skipped; a map entry with a repeated key replaces the earlier one.
pub(crate) fn decode<'a>(payload: &'a [u8], out: &mut RawEvent<'a>) -> Result<(), EventError> {
    read(payload, out).map_err(EventError::from)
}

fn read<'a>(payload: &'a [u8], out: &mut RawEvent<'a>) -> Result<(), Wire> {
    use field::*;
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let mut outcome: i32 = 0;
    while let Some((number, wire)) = r.tag()? {
        match number {
            EVENT_ID => out.event_id = r.text(number, wire, "event.event_id")?,
            MOT_ID => out.mot_id = r.text(number, wire, "event.mot_id")?,
            EXPERIENCE_ID => out.experience_id = r.text(number, wire, "event.experience_id")?,
            JOURNEY_ID => out.journey_id = r.text(number, wire, "event.journey_id")?,
            FAILURE_REASON => out.failure_reason = r.text(number, wire, "event.failure_reason")?,
            CHANNEL => out.channel = r.text(number, wire, "event.channel")?,
            PRODUCER_ID => out.producer_id = r.text(number, wire, "event.producer_id")?,
            EVENT_TIME_MS | DURATION_MS | OUTCOME => {
                expect_wire(number, wire, VARINT)?;
                // int64 and enum values are two's complement in a varint.
                let v = r.varint()? as i64;
                match number {
                    EVENT_TIME_MS => out.event_time_ms = Some(v),
                    DURATION_MS => out.duration_ms = Some(v),
                    // An enum is an int32: the varint's low 32 bits, as prost reads it.
                    _ => outcome = v as i32,
                }
            }
            ATTRIBUTES => {
                expect_wire(number, wire, LEN)?;
                let (k, v) = attribute(r.bytes()?)?;
                match out.attributes.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(e) => e.1 = v,
                    None => out.attributes.push((k, v)),
                }
            }
            _ => r.skip(wire, number, 0)?,
        }
    }
    out.outcome = match outcome {
        0 => None,
        OUTCOME_SUCCESS => Some(Outcome::Success),
        OUTCOME_FAILURE => Some(Outcome::Failure),
        other => return Err(Wire::Outcome(other)),
    };
    Ok(())
}

/// Encodes an event as protobuf.
pub fn encode_proto(e: &InteractionEvent<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_proto_into(e, &mut out);
    out
}

/// Appends the event's protobuf encoding to `out`: the bytes prost writes for
/// the generated `InteractionEvent` message of `e`, with attributes in the event's order (prost's map has none). Written
/// straight from the borrowed event, because building the generated message copies every string into a new
/// allocation and the load generators encode every event they send.
pub fn encode_proto_into(e: &InteractionEvent<'_>, out: &mut Vec<u8>) {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn varint_len(v: u64) -> usize {
        (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
    }
    fn key(out: &mut Vec<u8>, number: u32, wire: u32) {
        varint(out, u64::from(number << 3 | wire));
    }
    // proto3 leaves out empty strings and zero numbers.
    fn string(out: &mut Vec<u8>, number: u32, s: &str) {
        if !s.is_empty() {
            key(out, number, LEN);
            varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    fn string_len(number: u32, s: &str) -> usize {
        if s.is_empty() {
            0
        } else {
            varint_len(u64::from(number << 3)) + varint_len(s.len() as u64) + s.len()
        }
    }
    fn opt<'s>(s: &'s Option<Cow<'_, str>>) -> &'s str {
        s.as_deref().unwrap_or_default()
    }
    string(out, field::EVENT_ID, opt(&e.event_id));
    string(out, field::MOT_ID, &e.mot_id);
    string(out, field::EXPERIENCE_ID, opt(&e.experience_id));
    string(out, field::JOURNEY_ID, opt(&e.journey_id));
    if e.event_time_ms != 0 {
        key(out, field::EVENT_TIME_MS, VARINT);
        // int64: two's complement, so a negative time takes ten bytes, as in prost.
        varint(out, e.event_time_ms as u64);
    }
    let outcome = match e.outcome {
        Outcome::Success => OUTCOME_SUCCESS,
        Outcome::Failure => OUTCOME_FAILURE,
    };
    if outcome != 0 {
        key(out, field::OUTCOME, VARINT);
        varint(out, i64::from(outcome) as u64);
    }
    string(out, field::FAILURE_REASON, opt(&e.failure_reason));
    string(out, field::CHANNEL, opt(&e.channel));
    if let Some(ms) = e.duration_ms {
        // `optional`: written even when zero.
        key(out, field::DURATION_MS, VARINT);
        varint(out, u64::from(ms));
    }
    string(out, field::PRODUCER_ID, opt(&e.producer_id));
    for (k, v) in &e.attributes {
        // A map entry is a message of key (1) and value (2).
        key(out, field::ATTRIBUTES, LEN);
        varint(out, (string_len(1, k) + string_len(2, v)) as u64);
        string(out, 1, k);
        string(out, 2, v);
    }
}
