//! Deterministic streams of interaction events, with malformed messages among them, and the
//! ground truth they must produce.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use motstream_core::codec::{CONTENT_TYPE_HEADER, encode};
use motstream_core::{
    Catalog, Classification, Encoding, InteractionEvent, Outcome, Verdict, classify,
};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Value, json};

/// The shipped airline catalog, which the service uses by default.
pub fn airline() -> Catalog {
    Catalog::from_yaml(
        include_str!("../../deploy/catalog/airline.yaml"),
        "airline.yaml",
    )
    .expect("valid catalog")
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Msg {
    pub key: String,
    pub payload: Vec<u8>,
    pub content_type: Option<&'static str>,
    /// `None`: valid; `Some(reason code)`: must be dead-lettered with it.
    pub reject: Option<&'static str>,
}

/// What the messages must add up to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Truth {
    /// Per catalog MOT: (moments of magic, moments of misery).
    pub mots: BTreeMap<String, (u64, u64)>,
    /// Unidentified MOT ids and their counts.
    pub unidentified: BTreeMap<String, u64>,
    /// Dead letters by message key: the reason code.
    pub rejects: BTreeMap<String, &'static str>,
}

impl Truth {
    pub fn valid(&self) -> u64 {
        self.mots.values().map(|(a, b)| a + b).sum::<u64>()
            + self.unidentified.values().sum::<u64>()
    }

    pub fn add(&mut self, other: &Truth) {
        for (k, (a, b)) in &other.mots {
            let e = self.mots.entry(k.clone()).or_default();
            e.0 += a;
            e.1 += b;
        }
        for (k, n) in &other.unidentified {
            *self.unidentified.entry(k.clone()).or_default() += n;
        }
        self.rejects
            .extend(other.rejects.iter().map(|(k, v)| (k.clone(), *v)));
    }
}

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const UNIDENTIFIED: [&str; 2] = ["duty-free", "car-park-exit"];
const REASONS: [&str; 4] = [
    "kiosk-offline",
    "payment-declined",
    "queue-timeout",
    "document-rejected",
];
const CHANNELS: [&str; 4] = ["kiosk", "desk", "web", "app"];

/// `n` messages; one in `malformed_every` is malformed (of eight kinds, in turn). Event times
/// fall within the last `spread` before `now_ms`. `tag` makes keys unique across workloads.
/// Every four events share a journey id.
pub fn workload(
    tag: &str,
    n: usize,
    malformed_every: usize,
    seed: u64,
    now_ms: i64,
    spread: Duration,
) -> (Vec<Msg>, Truth) {
    workload_with(tag, n, malformed_every, seed, now_ms, spread, true)
}

/// [`workload`], with journey ids or without.
pub fn workload_with(
    tag: &str,
    n: usize,
    malformed_every: usize,
    seed: u64,
    now_ms: i64,
    spread: Duration,
    journeys: bool,
) -> (Vec<Msg>, Truth) {
    let catalog = airline();
    let mut rng = Rng::new(seed);
    let mut msgs = Vec::with_capacity(n);
    let mut truth = Truth::default();
    let spread_ms = spread.as_millis() as u64;
    let mut bad = 0usize;
    for i in 0..n {
        let key = format!("{tag}-j{}", i / 4);
        if malformed_every > 0 && i % malformed_every == malformed_every - 1 {
            let (payload, ct, reason) = malformed(bad, now_ms);
            bad += 1;
            let key = format!("{tag}-bad{i}");
            truth.rejects.insert(key.clone(), reason);
            msgs.push(Msg {
                key,
                payload,
                content_type: ct,
                reject: Some(reason),
            });
            continue;
        }
        let mot: Cow<'static, str> = if rng.below(50) == 0 {
            Cow::Borrowed(UNIDENTIFIED[rng.below(2) as usize])
        } else {
            Cow::Owned(
                catalog.mots[rng.below(catalog.mots.len() as u64) as usize]
                    .id
                    .clone(),
            )
        };
        let failed = rng.below(10) == 0;
        let e = InteractionEvent {
            event_id: Some(Cow::Owned(format!("{tag}-e{i}"))),
            mot_id: mot,
            experience_id: None,
            journey_id: journeys.then(|| Cow::Owned(key.clone())),
            event_time_ms: now_ms - rng.below(spread_ms.max(1)) as i64,
            outcome: if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            failure_reason: failed.then(|| Cow::Borrowed(REASONS[rng.below(4) as usize])),
            channel: Some(Cow::Borrowed(CHANNELS[rng.below(4) as usize])),
            // Up to 5 minutes: some successes are too slow for their MOT's SMOTO rule.
            duration_ms: Some(rng.below(300_000) as u32),
            producer_id: Some(Cow::Borrowed("workload")),
            attributes: Vec::new(),
        };
        match classify(&e, &catalog).expect("generated events match the catalog") {
            Classification::Known { verdict, .. } => {
                let t = truth.mots.entry(e.mot_id.to_string()).or_default();
                if verdict == Verdict::Magic {
                    t.0 += 1
                } else {
                    t.1 += 1
                }
            }
            Classification::Unidentified => {
                *truth.unidentified.entry(e.mot_id.to_string()).or_default() += 1
            }
        }
        let (enc, ct) = match i % 3 {
            0 => (Encoding::Json, Some("application/json")),
            1 => (Encoding::Protobuf, Some("application/x-protobuf")),
            _ => (Encoding::Protobuf, None),
        };
        msgs.push(Msg {
            key,
            payload: encode(&e, enc),
            content_type: ct,
            reject: None,
        });
    }
    (msgs, truth)
}

fn malformed(kind: usize, now_ms: i64) -> (Vec<u8>, Option<&'static str>, &'static str) {
    let json = |s: String| s.into_bytes();
    match kind % 8 {
        0 => (
            b"{\"mot_id\": \"bag-drop\", \"outc".to_vec(),
            Some("application/json"),
            "not_json",
        ),
        1 => (
            json(format!(
                "{{\"event_time_ms\":{now_ms},\"outcome\":\"success\"}}"
            )),
            None,
            "missing_field",
        ),
        2 => (
            json(format!(
                "{{\"mot_id\":\"security\",\"event_time_ms\":{now_ms},\"outcome\":\"meh\"}}"
            )),
            None,
            "unknown_outcome",
        ),
        3 => (
            json(format!(
                "{{\"mot_id\":\"security\",\"event_time_ms\":{},\"outcome\":\"success\"}}",
                now_ms + 86_400_000
            )),
            Some("application/json"),
            "future_timestamp",
        ),
        4 => (
            vec![0x12, 0x02, b'a', 0xff, 0x28, 0x01],
            Some("application/x-protobuf"),
            "invalid_utf8",
        ),
        5 => (
            b"mot_id,outcome\nbag-drop,success\n".to_vec(),
            Some("text/csv"),
            "unsupported_content_type",
        ),
        6 => (
            json(format!(
                "{{\"mot_id\":\"security\",\"event_time_ms\":{now_ms},\"outcome\":\"success\",\"duration_ms\":-3}}"
            )),
            None,
            "negative_duration",
        ),
        _ => (
            json(format!(
                "{{\"mot_id\":\"{}\",\"event_time_ms\":{now_ms},\"outcome\":\"success\"}}",
                "m".repeat(500)
            )),
            None,
            "oversize_field",
        ),
    }
}

/// Produces every message, keyed, with its content-type header, and waits for all acks.
pub fn produce_all(topic: &str, msgs: &[Msg]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", super::brokers())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "10")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    for m in msgs {
        let mut r = BaseRecord::<str, [u8]>::to(topic)
            .key(m.key.as_str())
            .payload(m.payload.as_slice());
        if let Some(ct) = m.content_type {
            r = r.headers(OwnedHeaders::new().insert(Header {
                key: CONTENT_TYPE_HEADER,
                value: Some(ct),
            }));
        }
        super::send_record(&p, r);
    }
    p.flush(Duration::from_secs(120))
        .expect("every message acknowledged");
}

/// Per-MOT (successes, failures) and unidentified counts from a `/status` answer.
pub fn counts(status: &Value) -> Truth {
    let mut t = Truth::default();
    for m in status["mots"].as_array().into_iter().flatten() {
        let ok = m["successes"].as_u64().unwrap_or(0);
        let bad = m["failures"].as_u64().unwrap_or(0);
        if ok + bad > 0 {
            t.mots
                .insert(m["mot"].as_str().unwrap_or("?").to_owned(), (ok, bad));
        }
    }
    for u in status["unidentified"].as_array().into_iter().flatten() {
        t.unidentified.insert(
            u["mot"].as_str().unwrap_or("?").to_owned(),
            u["count"].as_u64().unwrap_or(0),
        );
    }
    t
}

/// Sums the counts of several instances' status answers.
pub fn merged(statuses: &[Value]) -> Truth {
    let mut t = Truth::default();
    for s in statuses {
        t.add(&counts(s));
    }
    t
}

/// The total number of events a status answer counts.
pub fn total(status: &Value) -> u64 {
    counts(status).valid()
}

/// `n` JSON events of `mot`, each its own journey (spread over the partitions): successes at
/// the desk stamped 20 s back, or failures at the kiosk with reason `kiosk-offline` stamped
/// now. The alert tests degrade and recover a MOT with these. The 20 s give the MOT more data
/// than the 8% of a 1m window the engine needs before it judges a rule (window coverage), so
/// an alert's delivery time after the failures is what a test measures.
pub fn outcome_events(mot: &str, n: usize, ok: bool) -> Vec<Msg> {
    let t = super::now_ms() - if ok { 20_000 } else { 0 };
    (0..n)
        .map(|i| {
            let mut e = json!({
                "mot_id": mot,
                "event_time_ms": t,
                "outcome": if ok { "success" } else { "failure" },
                "channel": if ok { "desk" } else { "kiosk" },
                "journey_id": format!("j-{t}-{i}"),
            });
            if !ok {
                e["failure_reason"] = json!("kiosk-offline");
            }
            Msg {
                key: format!("j-{t}-{i}"),
                payload: serde_json::to_vec(&e).expect("json"),
                content_type: Some("application/json"),
                reject: None,
            }
        })
        .collect()
}
