//! Decode + validate + classify of one typical event (254 bytes as JSON, 99 as protobuf),
//! JSON and protobuf: the per-event work of ingest before the aggregator. Reads as events/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use motstream_benches::{airline_catalog, typical_event};
use motstream_core::codec::encode;
use motstream_core::{Classification, Decoder, Encoding, classify};
use motstream_server::now_ms;
use prost::Message;

fn bench(c: &mut Criterion) {
    let catalog = airline_catalog();
    let now = now_ms();
    let event = typical_event(now);
    let mut group = c.benchmark_group("decode_validate_classify");
    group.throughput(Throughput::Elements(1));
    for (name, encoding, header) in [
        ("json", Encoding::Json, Some(&b"application/json"[..])),
        (
            "protobuf",
            Encoding::Protobuf,
            Some(&b"application/x-protobuf"[..]),
        ),
        ("json_detected", Encoding::Json, None),
    ] {
        let payload = encode(&event, encoding);
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{name}: {} bytes", payload.len());
        }
        let decoder = Decoder::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                let e = decoder
                    .decode(black_box(&payload), header, now)
                    .expect("the fixture is valid");
                match classify(&e, &catalog).expect("the fixture matches the catalog") {
                    Classification::Known { mot, verdict, .. } => black_box((mot, verdict)),
                    Classification::Unidentified => unreachable!("bag-drop is in the catalog"),
                };
            })
        });
    }
    group.finish();

    // Baselines: the bare libraries on the same payloads, no validation or classification, so
    // the figures above can be read against what this machine does for the parsing alone.
    let mut group = c.benchmark_group("baseline_parse_only");
    group.throughput(Throughput::Elements(1));
    let json = encode(&event, Encoding::Json);
    group.bench_function("serde_json_borrowed_struct", |b| {
        b.iter(|| {
            let e: BorrowedJson<'_> =
                serde_json::from_slice(black_box(&json)).expect("the fixture is valid");
            black_box(e.mot_id.len());
        })
    });
    let proto = encode(&event, Encoding::Protobuf);
    let mut reused = motstream_proto::v1::InteractionEvent::default();
    group.bench_function("prost_merge_into_reused_message", |b| {
        b.iter(|| {
            reused.clear();
            reused
                .merge(black_box(&proto[..]))
                .expect("the fixture is valid");
            black_box(reused.mot_id.len());
        })
    });
    group.finish();
}

/// The JSON event as plain borrowed fields, for the baseline.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct BorrowedJson<'a> {
    event_id: &'a str,
    mot_id: &'a str,
    experience_id: &'a str,
    journey_id: &'a str,
    event_time_ms: i64,
    outcome: &'a str,
    failure_reason: &'a str,
    channel: &'a str,
    duration_ms: u32,
    producer_id: &'a str,
}

criterion_group!(benches, bench);
criterion_main!(benches);
