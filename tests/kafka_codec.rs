//! Events produced to a real Kafka topic with rdkafka, in both encodings and with malformed
//! messages among them, come back out and decode to exactly what was sent, or to the right
//! error.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use motstream_core::codec::{CONTENT_TYPE_HEADER, encode};
use motstream_core::{Decoder, Encoding, InteractionEvent, Outcome};
use motstream_tests::{Consumed, consume, create_topic, now_ms, producer, unique};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

/// A message to produce: payload, `content-type` header, and what decoding it must give (the
/// event id, or the reason code of the rejection).
type Sent<'a> = (Vec<u8>, Option<&'a str>, Result<String, &'a str>);

fn event(i: usize, now: i64) -> InteractionEvent<'static> {
    let mots = [
        "online-check-in",
        "bag-drop",
        "security",
        "lounge-entry",
        "boarding-gate",
    ];
    InteractionEvent {
        event_id: Some(Cow::Owned(format!("ev-{i}"))),
        mot_id: Cow::Borrowed(mots[i % mots.len()]),
        experience_id: i
            .is_multiple_of(3)
            .then_some(Cow::Borrowed("airline-departure")),
        journey_id: Some(Cow::Owned(format!("j-{}", i / 5))),
        event_time_ms: now - (i as i64) * 37,
        outcome: if i.is_multiple_of(7) {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        failure_reason: i
            .is_multiple_of(7)
            .then_some(Cow::Borrowed("kiosk-offline")),
        channel: Some(Cow::Borrowed(if i.is_multiple_of(2) {
            "kiosk"
        } else {
            "desk"
        })),
        duration_ms: Some((i as u32 * 1_013) % 300_000),
        producer_id: Some(Cow::Borrowed("kafka-codec-test")),
        attributes: if i.is_multiple_of(4) {
            vec![
                (Cow::Borrowed("airport"), Cow::Borrowed("AMS")),
                (Cow::Owned(format!("k{i}")), Cow::Borrowed("é✈")),
            ]
        } else {
            Vec::new()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_protobuf_events_round_trip_through_real_kafka_and_malformed_ones_are_rejected() {
    let topic = unique("codec");
    create_topic(&topic, 3).await;
    let producer = producer();
    let now = now_ms();

    // (payload, content-type header, what decoding must give: Ok(event id) or Err(reason))
    let mut sent: Vec<Sent<'_>> = Vec::new();
    let mut originals = HashMap::new();
    for i in 0..300 {
        let e = event(i, now);
        let (encoding, header) = match i % 3 {
            0 => (Encoding::Json, Some("application/json")),
            1 => (Encoding::Protobuf, Some("application/x-protobuf")),
            // No header: the decoder must detect the encoding.
            _ => (
                if i % 2 == 0 {
                    Encoding::Json
                } else {
                    Encoding::Protobuf
                },
                None,
            ),
        };
        sent.push((encode(&e, encoding), header, Ok(format!("ev-{i}"))));
        originals.insert(format!("ev-{i}"), e);
    }
    let mut future = event(1, now);
    future.event_time_ms = now + 3_600_000;
    let mut bad_proto_utf8 = vec![0x12, 0x03, b'b', 0xff, b'g'];
    bad_proto_utf8.extend(encode(&event(2, now), Encoding::Protobuf));
    for (payload, header, reason) in [
        (
            b"{\"mot_id\": \"bag-drop\", ".to_vec(),
            Some("application/json"),
            "not_json",
        ),
        (
            format!("{{\"event_time_ms\":{now},\"outcome\":\"success\"}}").into_bytes(),
            None,
            "missing_field",
        ),
        (
            format!("{{\"mot_id\":\"m\",\"event_time_ms\":{now},\"outcome\":\"maybe\"}}")
                .into_bytes(),
            None,
            "unknown_outcome",
        ),
        (
            encode(&future, Encoding::Protobuf),
            Some("application/x-protobuf"),
            "future_timestamp",
        ),
        (
            bad_proto_utf8,
            Some("application/x-protobuf"),
            "invalid_utf8",
        ),
        (vec![0xff, 0xff, 0xff, 0xff], None, "unrecognised_payload"),
        (Vec::new(), None, "empty_payload"),
        (b"{}".to_vec(), Some("text/csv"), "unsupported_content_type"),
    ] {
        sent.push((payload, header, Err(reason)));
    }

    for (i, (payload, header, _)) in sent.iter().enumerate() {
        let key = format!("j-{}", i / 5);
        let mut record = FutureRecord::to(&topic).key(&key).payload(payload);
        if let Some(ct) = header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: CONTENT_TYPE_HEADER,
                value: Some(*ct),
            }));
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("producing message {i}: {e}"));
    }

    let got = consume(&topic, sent.len(), Duration::from_secs(60));
    let decoder = Decoder::default();
    let mut by_payload: HashMap<&[u8], &Result<String, &str>> = HashMap::new();
    for (payload, _, want) in &sent {
        by_payload.insert(payload, want);
    }
    let mut decoded = 0;
    let mut rejected: Vec<&str> = Vec::new();
    for Consumed {
        payload, headers, ..
    } in &got
    {
        let ct = headers
            .iter()
            .find(|(k, _)| k == CONTENT_TYPE_HEADER)
            .and_then(|(_, v)| v.as_deref());
        let want = by_payload
            .get(payload.as_slice())
            .expect("a message we sent");
        match (decoder.decode(payload, ct, now_ms()), want) {
            (Ok(e), Ok(id)) => {
                assert_eq!(e.event_id.as_deref(), Some(id.as_str()));
                assert_eq!(&e.into_owned(), &originals[id]);
                decoded += 1;
            }
            (Err(e), Err(reason)) => {
                assert_eq!(e.reason(), *reason, "{e}");
                rejected.push(reason);
            }
            (got, want) => panic!("decoding gave {got:?}, expected {want:?}"),
        }
    }
    assert_eq!(decoded, 300);
    rejected.sort_unstable();
    let mut want: Vec<&str> = sent
        .iter()
        .filter_map(|(_, _, w)| w.as_ref().err().copied())
        .collect();
    want.sort_unstable();
    assert_eq!(rejected, want);
}
