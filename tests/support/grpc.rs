//! Helpers for the gRPC tests: services on fresh topics, tonic clients, single events.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use motstream_core::codec::{CONTENT_TYPE_HEADER, encode};
use motstream_core::{Encoding, InteractionEvent, Outcome};
use motstream_proto::v1::mot_query_client::MotQueryClient;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::service::ServiceProcess;
use crate::{create_topic, unique};

pub const WAIT: Duration = Duration::from_secs(180);

#[derive(Debug)]
pub struct Topics {
    pub events: String,
    pub args: Vec<String>,
}

pub async fn topics(name: &str, partitions: i32) -> Topics {
    let events = unique(name);
    let dlq = unique(&format!("{name}-dlq"));
    create_topic(&events, partitions).await;
    create_topic(&dlq, 1).await;
    let args = vec![
        "--topics".into(),
        events.clone(),
        "--dlq-topic".into(),
        dlq,
        "--group-id".into(),
        unique(&format!("{name}-group")),
    ];
    Topics { events, args }
}

pub fn start(name: &str, t: &Topics, extra: &[&str]) -> ServiceProcess {
    let mut args: Vec<&str> = t.args.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    ServiceProcess::start(&unique(name), &args)
}

pub async fn client_with(
    svc: &ServiceProcess,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> MotQueryClient<Channel> {
    let ep = Endpoint::from_shared(format!("http://{}", svc.grpc_addr())).expect("endpoint");
    let channel = ep_connect(configure(ep)).await;
    MotQueryClient::new(channel)
}

pub async fn ep_connect(ep: Endpoint) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ep.connect().await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no gRPC server: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn client(svc: &ServiceProcess) -> MotQueryClient<Channel> {
    client_with(svc, |e| e).await
}

/// Asserts the call failed with `code` and a message starting with `field`.
#[track_caller]
pub fn expect_err<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, field: &str) {
    match r {
        Ok(v) => panic!("expected {code:?} naming {field}, got {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{field}: {}", s.message());
            assert!(
                s.message().starts_with(field),
                "the message names {field}: {:?}",
                s.message()
            );
        }
    }
}

pub fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

/// Sends one event and waits for the broker's acknowledgement.
pub fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, e: &InteractionEvent<'_>) {
    let payload = encode(e, Encoding::Protobuf);
    let key = e.mot_id.to_string();
    let headers = OwnedHeaders::new().insert(Header {
        key: CONTENT_TYPE_HEADER,
        value: Some("application/x-protobuf"),
    });
    crate::send_record(
        p,
        BaseRecord::<str, [u8]>::to(topic)
            .key(key.as_str())
            .payload(payload.as_slice())
            .headers(headers),
    );
}

pub fn threaded_producer() -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", crate::brokers())
        .set("linger.ms", "2")
        .create()
        .expect("producer")
}

pub fn event(mot: &str, success: bool, t_ms: i64, n: u64) -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: Some(Cow::Owned(format!("{mot}-{n}-{t_ms}"))),
        mot_id: Cow::Owned(mot.to_owned()),
        experience_id: None,
        journey_id: None,
        event_time_ms: t_ms,
        outcome: if success {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        failure_reason: (!success).then_some(Cow::Borrowed("printer-jam")),
        channel: Some(Cow::Borrowed("kiosk")),
        duration_ms: Some(1_000 + (n % 50) as u32),
        producer_id: None,
        attributes: Vec::new(),
    }
}

/// The service's resident memory, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .expect("VmRSS in /proc/<pid>/status")
}
