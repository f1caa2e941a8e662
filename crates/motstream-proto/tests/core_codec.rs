//! motstream-core's hand-written protobuf reader and writer, held to what prost (the generated
//! code) reads and writes. Here rather than in core, so that core does not depend on this
//! crate (and through it on tonic).
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use motstream_core::codec::wire::{RawEvent, decode_protobuf};
use motstream_core::codec::{Decoder, Encoding, encode, encode_into, encode_proto};
use motstream_core::error::EventError;
use motstream_core::event::{InteractionEvent, Outcome};
use motstream_proto::v1 as pb;
use proptest::prelude::*;

const NOW: i64 = 1_795_000_000_000;

/// The generated message for an event.
fn to_proto(e: &InteractionEvent<'_>) -> pb::InteractionEvent {
    let s = |c: &Option<Cow<'_, str>>| c.as_deref().unwrap_or_default().to_owned();
    pb::InteractionEvent {
        event_id: s(&e.event_id),
        mot_id: e.mot_id.to_string(),
        experience_id: s(&e.experience_id),
        journey_id: s(&e.journey_id),
        event_time_ms: e.event_time_ms,
        outcome: match e.outcome {
            Outcome::Success => pb::Outcome::Success,
            Outcome::Failure => pb::Outcome::Failure,
        } as i32,
        failure_reason: s(&e.failure_reason),
        channel: s(&e.channel),
        duration_ms: e.duration_ms.map(i64::from),
        producer_id: s(&e.producer_id),
        attributes: e
            .attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn the_outcome_numbers_are_the_protos() {
    assert_eq!(
        motstream_core::codec::wire::OUTCOME_SUCCESS,
        pb::Outcome::Success as i32
    );
    assert_eq!(
        motstream_core::codec::wire::OUTCOME_FAILURE,
        pb::Outcome::Failure as i32
    );
}

fn decode_err(payload: &[u8], ct: Option<&str>) -> EventError {
    Decoder::default()
        .decode(payload, ct.map(str::as_bytes), NOW)
        .expect_err("rejected")
}

fn sample() -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: Some("ev-1".into()),
        mot_id: "bag-drop".into(),
        experience_id: None,
        journey_id: Some("j-42".into()),
        event_time_ms: NOW - 1_000,
        outcome: Outcome::Failure,
        failure_reason: Some("kiosk-offline".into()),
        channel: None,
        duration_ms: Some(95_000),
        producer_id: None,
        attributes: Vec::new(),
    }
}

#[test]
fn protobuf_garbage_and_unknown_enum_values_are_rejected() {
    let err = decode_err(&[0x12, 0x7f, b'a'], Some("application/x-protobuf"));
    assert_eq!(err.reason(), "not_protobuf", "{err}");
    let mut e = to_proto(&sample());
    e.outcome = 7;
    let err = decode_err(&prost::Message::encode_to_vec(&e), None);
    assert_eq!(err, EventError::UnknownOutcome("7".into()));
}

fn arb_text(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::string::string_regex(&format!("[a-zA-Z0-9 _\\-\"\\\\é✈]{{1,{max}}}")).unwrap(),
    )
}

prop_compose! {
    fn arb_event()(
        event_id in arb_text(40),
        mot_id in "[a-z][a-z0-9-]{0,30}",
        experience_id in arb_text(40),
        journey_id in arb_text(40),
        age in 0i64..1_000_000_000,
        success in any::<bool>(),
        failure_reason in arb_text(60),
        channel in arb_text(20),
        duration_ms in proptest::option::of(0u32..86_400_000),
        producer_id in arb_text(40),
        attributes in proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,20}", 0..5),
    ) -> InteractionEvent<'static> {
        InteractionEvent {
            event_id: event_id.map(Cow::Owned),
            mot_id: Cow::Owned(mot_id),
            experience_id: experience_id.map(Cow::Owned),
            journey_id: journey_id.map(Cow::Owned),
            event_time_ms: NOW - age,
            outcome: if success { Outcome::Success } else { Outcome::Failure },
            failure_reason: failure_reason.map(Cow::Owned),
            channel: channel.map(Cow::Owned),
            duration_ms,
            producer_id: producer_id.map(Cow::Owned),
            attributes: attributes.into_iter().map(|(k, v)| (Cow::Owned(k), Cow::Owned(v))).collect(),
        }
    }
}

/// What prost makes of the bytes, in the hand decoder's terms.
fn via_prost(bytes: &[u8]) -> Option<pb::InteractionEvent> {
    <pb::InteractionEvent as prost::Message>::decode(bytes).ok()
}

fn via_hand(bytes: &[u8]) -> Result<RawEvent<'_>, EventError> {
    decode_protobuf(bytes)
}

fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let s = |c: &Option<Cow<'_, str>>| c.as_deref().unwrap_or_default().to_owned();
    match (via_prost(bytes), via_hand(bytes)) {
        (None, Err(_)) => {}
        (Some(p), Err(EventError::UnknownOutcome(v))) => prop_assert_eq!(v, p.outcome.to_string()),
        (Some(p), Ok(h)) => {
            prop_assert_eq!(s(&h.event_id), p.event_id);
            prop_assert_eq!(s(&h.mot_id), p.mot_id);
            prop_assert_eq!(s(&h.experience_id), p.experience_id);
            prop_assert_eq!(s(&h.journey_id), p.journey_id);
            prop_assert_eq!(h.event_time_ms.unwrap_or_default(), p.event_time_ms);
            prop_assert_eq!(s(&h.failure_reason), p.failure_reason);
            prop_assert_eq!(s(&h.channel), p.channel);
            prop_assert_eq!(h.duration_ms, p.duration_ms);
            prop_assert_eq!(s(&h.producer_id), p.producer_id);
            let outcome = match h.outcome {
                None => 0,
                Some(Outcome::Success) => 1,
                Some(Outcome::Failure) => 2,
            };
            prop_assert_eq!(outcome, p.outcome);
            let mut attrs: Vec<(String, String)> = h
                .attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            attrs.sort();
            let mut want: Vec<(String, String)> = p.attributes.into_iter().collect();
            want.sort();
            prop_assert_eq!(attrs, want);
        }
        (p, h) => prop_assert!(
            false,
            "prost {:?} but hand decoder {:?}",
            p,
            h.map(|_| "ok")
        ),
    }
    Ok(())
}

prop_compose! {
    fn arb_wire()(
        strings in proptest::collection::vec(("[a-z0-9]{0,6}", 1u32..12), 0..8),
        ints in proptest::collection::vec((any::<i64>(), prop_oneof![Just(5u32), Just(6), Just(9)]), 0..4),
        attrs in proptest::collection::vec(("[a-z]{0,3}", "[a-z]{0,3}"), 0..4),
        unknown in proptest::collection::vec((12u32..40, any::<u64>()), 0..3),
    ) -> Vec<u8> {
        use prost::encoding::{encode_key, encode_varint, WireType};
        let mut b = Vec::new();
        for (s, n) in strings {
            if matches!(n, 5 | 6 | 9 | 11) { continue; }
            encode_key(n, WireType::LengthDelimited, &mut b);
            encode_varint(s.len() as u64, &mut b);
            b.extend_from_slice(s.as_bytes());
        }
        for (v, n) in ints {
            encode_key(n, WireType::Varint, &mut b);
            encode_varint(v as u64, &mut b);
        }
        for (k, v) in attrs {
            let mut e = Vec::new();
            prost::encoding::string::encode(1, &k, &mut e);
            prost::encoding::string::encode(2, &v, &mut e);
            encode_key(11, WireType::LengthDelimited, &mut b);
            encode_varint(e.len() as u64, &mut b);
            b.extend(e);
        }
        for (n, v) in unknown {
            encode_key(n, WireType::Varint, &mut b);
            encode_varint(v, &mut b);
        }
        b
    }
}

#[test]
fn a_field_key_wider_than_32_bits_is_malformed_as_prost_says() {
    // Field 9, wire type 1, spelled as a 5-byte varint whose value exceeds u32::MAX; then the
    // fixed64 it announces. Found by the arbitrary-bytes property below.
    let bytes = [201, 128, 128, 128, 16, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(via_prost(&bytes).is_none());
    assert!(via_hand(&bytes).is_err());
}

proptest! {
    #[test]
    fn hand_protobuf_reader_agrees_with_prost_on_wellformed_messages(bytes in arb_wire()) {
        agree(&bytes)?;
    }

    #[test]
    fn hand_protobuf_reader_agrees_with_prost_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        agree(&bytes)?;
    }

    #[test]
    fn hand_protobuf_encoder_writes_what_prost_writes(
        mut e in arb_event(),
        t in prop_oneof![Just(0i64), Just(-1i64), any::<i64>()],
        d in prop_oneof![Just(None), Just(Some(0u32)), proptest::option::of(any::<u32>())],
    ) {
        // The edges the decoding strategy rarely draws: zero, negative and huge numbers.
        e.event_time_ms = t;
        e.duration_ms = d;
        let mine = encode_proto(&e);
        let reference = to_proto(&e);
        // prost writes its map in hash order: bytes compare only with one attribute or none.
        if e.attributes.len() <= 1 {
            prop_assert_eq!(&mine, &prost::Message::encode_to_vec(&reference));
        }
        prop_assert_eq!(via_prost(&mine), Some(reference));
        for enc in [Encoding::Protobuf, Encoding::Json] {
            let mut appended = b"prefix".to_vec();
            encode_into(&e, enc, &mut appended);
            prop_assert_eq!(&appended[6..], &encode(&e, enc)[..]);
        }
    }
}
