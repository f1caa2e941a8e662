#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::event::Outcome;

const NOW: i64 = 1_795_000_000_000;

fn sample() -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: Some("ev-1".into()),
        mot_id: "bag-drop".into(),
        experience_id: Some("airline-departure".into()),
        journey_id: Some("j-42".into()),
        event_time_ms: NOW - 1_000,
        outcome: Outcome::Failure,
        failure_reason: Some("kiosk-offline".into()),
        channel: Some("kiosk".into()),
        duration_ms: Some(95_000),
        producer_id: Some("bagdrop-svc".into()),
        attributes: vec![
            ("airport".into(), "AMS".into()),
            ("gate".into(), "D7".into()),
        ],
    }
}

fn decode_err(payload: &[u8], ct: Option<&str>) -> EventError {
    let d = Decoder::default();
    d.decode(payload, ct.map(str::as_bytes), NOW).unwrap_err()
}

#[test]
fn json_and_protobuf_decode_to_the_same_event() {
    let e = sample();
    let d = Decoder::default();
    let json = encode_json(&e);
    let from_json = d
        .decode(&json, Some(b"application/json"), NOW)
        .unwrap()
        .into_owned();
    let proto = encode_proto(&e);
    let from_proto = d.decode(&proto, None, NOW).unwrap().into_owned();
    assert_eq!(from_json, e);
    assert_eq!(from_proto, e);
}

#[test]
fn json_strings_without_escapes_are_borrowed_from_the_payload() {
    let payload = br#"{"mot_id":"bag-drop","event_time_ms":1794999999000,"outcome":"success","channel":"web\u0021"}"#;
    let d = Decoder::default();
    let e = d.decode(payload, None, NOW).unwrap();
    assert!(matches!(e.mot_id, Cow::Borrowed(_)));
    assert_eq!(e.channel.as_deref(), Some("web!"));
}

#[test]
fn encoding_is_detected_without_a_content_type_header() {
    assert_eq!(Encoding::detect(b"  {\"a\":1}"), Encoding::Json);
    assert_eq!(
        Encoding::detect(&encode_proto(&sample())),
        Encoding::Protobuf
    );
}

#[test]
fn content_type_parameters_and_vendor_types_are_understood() {
    let j = Encoding::from_content_type;
    assert_eq!(
        j(b"application/json; charset=utf-8").unwrap(),
        Encoding::Json
    );
    assert_eq!(
        j(b"application/vnd.motstream.event.v1+json").unwrap(),
        Encoding::Json
    );
    assert_eq!(j(b"application/protobuf").unwrap(), Encoding::Protobuf);
    assert_eq!(
        j(b"text/csv").unwrap_err().reason(),
        "unsupported_content_type"
    );
}

#[test]
fn rfc3339_event_time_is_accepted_in_json() {
    let p =
        br#"{"mot_id":"m","event_time":"2026-11-18T11:06:38.500Z","outcome":"OUTCOME_SUCCESS"}"#;
    let d = Decoder::default();
    let e = d.decode(p, None, NOW).unwrap();
    assert_eq!(e.event_time_ms, NOW - 1_500);
}

#[test]
fn json_event_time_offsets_are_honoured_and_bad_ones_dead_lettered() {
    let d = Decoder::default();
    // NOW - 1.5 s, written in a +02:00 zone: two hours ahead on the wall clock, same instant.
    let p = br#"{"mot_id":"m","event_time":"2026-11-18T13:06:38.500+02:00","outcome":"success"}"#;
    assert_eq!(d.decode(p, None, NOW).unwrap().event_time_ms, NOW - 1_500);
    for t in [
        "2026-11-18T13:06:38.500+25:00",
        "2026-11-18T13:06:38.500+99:99",
        "soon",
    ] {
        let p = format!(r#"{{"mot_id":"m","event_time":"{t}","outcome":"success"}}"#);
        let e = d.decode(p.as_bytes(), None, NOW).unwrap_err();
        assert_eq!(e.reason(), "bad_timestamp", "{t}");
        assert!(e.to_string().starts_with("event.event_time: "), "{e}");
    }
}

#[test]
fn each_bad_input_is_rejected_naming_its_field() {
    let t = NOW - 10;
    let cases: Vec<(String, Option<&str>, &str, &str)> = vec![
        ("".into(), None, "empty_payload", "payload: empty"),
        (
            "{\"mot_id\": ".into(),
            None,
            "not_json",
            "payload: not JSON",
        ),
        (
            "[1,2]".into(),
            Some("application/json"),
            "wrong_type",
            "event:",
        ),
        (
            format!(r#"{{"event_time_ms":{t},"outcome":"success"}}"#),
            None,
            "missing_field",
            "event.mot_id: missing",
        ),
        (
            r#"{"mot_id":"m","outcome":"success"}"#.into(),
            None,
            "missing_field",
            "event.event_time_ms: missing",
        ),
        (
            r#"{"mot_id":"m","event_time_ms":"soon","outcome":"success"}"#.into(),
            None,
            "wrong_type",
            "event.event_time_ms:",
        ),
        (
            r#"{"mot_id":"m","event_time_ms":1.5,"outcome":"success"}"#.into(),
            None,
            "wrong_type",
            "event.event_time_ms:",
        ),
        (
            r#"{"mot_id":"m","event_time_ms":1700000,"outcome":"success"}"#.into(),
            None,
            "bad_timestamp",
            "before 2000",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{},"outcome":"success"}}"#,
                NOW + 3_600_000
            ),
            None,
            "future_timestamp",
            "event.event_time_ms: 3600000 ms in the future",
        ),
        (
            format!(r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"meh"}}"#),
            None,
            "unknown_outcome",
            "event.outcome: unknown value \"meh\"",
        ),
        (
            format!(r#"{{"mot_id":"m","event_time_ms":{t}}}"#),
            None,
            "missing_field",
            "event.outcome: missing",
        ),
        (
            format!(r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","duration_ms":-5}}"#),
            None,
            "negative_duration",
            "event.duration_ms: -5",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","duration_ms":999999999999}}"#
            ),
            None,
            "absurd_duration",
            "event.duration_ms",
        ),
        (
            format!(
                r#"{{"mot_id":"{}","event_time_ms":{t},"outcome":"success"}}"#,
                "x".repeat(129)
            ),
            None,
            "oversize_field",
            "event.mot_id: 129 bytes",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","mot_id2":1,"channel":7}}"#
            ),
            None,
            "wrong_type",
            "event.channel:",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","attributes":{{{}}}}}"#,
                (0..17)
                    .map(|i| format!("\"k{i}\":\"v\""))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None,
            "too_many_attributes",
            "event.attributes: 17 entries",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","attributes":{{"a":"1","a":"2"}}}}"#
            ),
            None,
            "duplicate_attribute",
            "duplicate key \"a\"",
        ),
        (
            format!(
                r#"{{"mot_id":"m","event_time_ms":{t},"outcome":"success","attributes":{{"a":1}}}}"#
            ),
            None,
            "wrong_type",
            "event.attributes:",
        ),
        (
            "{}".into(),
            Some("text/plain"),
            "unsupported_content_type",
            "payload: unsupported content-type",
        ),
    ];
    for (payload, ct, reason, message) in cases {
        let err = decode_err(payload.as_bytes(), ct);
        assert_eq!(err.reason(), reason, "{payload}: {err}");
        assert!(
            err.to_string().contains(message),
            "{payload}: {err} lacks {message:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_named_for_json_and_protobuf() {
    let err = decode_err(b"{\"mot_id\":\"b\xffd\"}", None);
    assert_eq!(err.reason(), "invalid_utf8");
    assert!(
        err.to_string()
            .starts_with("payload (at byte 12): invalid UTF-8"),
        "{err}"
    );

    // Field 2 (mot_id), length-delimited, with an invalid byte.
    let err = decode_err(&[0x12, 0x02, b'a', 0xff], Some("application/x-protobuf"));
    assert_eq!(
        err,
        EventError::InvalidUtf8 {
            field: "event.mot_id".into()
        }
    );
}

#[test]
fn text_without_content_type_is_reported_as_neither_json_nor_protobuf() {
    let err = decode_err(b"bag-drop,failure,kiosk-offline", None);
    assert_eq!(err.reason(), "unrecognised_payload", "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("payload: neither JSON nor protobuf")
            && text.contains("\"bag-drop,failure,kiosk-offline\"")
            && text.contains("content-type application/json"),
        "{text}"
    );
    // Declared protobuf stays a protobuf error.
    let err = decode_err(b"bag-drop,failure", Some("application/x-protobuf"));
    assert_eq!(err.reason(), "not_protobuf", "{err}");
}

#[test]
fn oversize_payload_is_rejected_before_parsing() {
    let big = vec![b' '; 70_000];
    assert_eq!(decode_err(&big, None).reason(), "payload_too_large");
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

proptest! {

    #[test]
    fn arbitrary_bytes_never_panic_either_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let d = Decoder::default();
        let _ = d.decode(&bytes, Some(b"application/json"), NOW).map(|e| e.into_owned());
        let _ = d.decode(&bytes, Some(b"application/x-protobuf"), NOW).map(|e| e.into_owned());
        let _ = d.decode(&bytes, None, NOW).map(|e| e.into_owned());
    }

    #[test]
    fn arbitrary_json_like_text_never_panics(s in "[{}\\[\\]\":,a-z0-9_ .-]{0,200}") {
        let d = Decoder::default();
        let _ = d.decode(s.as_bytes(), None, NOW).map(|e| e.into_owned());
    }

    #[test]
    fn json_and_protobuf_round_trip_to_equal_events(e in arb_event()) {
        let d = Decoder::default();
        let j = d.decode(&encode_json(&e), None, NOW).unwrap().into_owned();
        let p = d.decode(&encode_proto(&e), None, NOW).unwrap().into_owned();
        prop_assert_eq!(&j, &e);
        prop_assert_eq!(&p, &e);
    }

}
