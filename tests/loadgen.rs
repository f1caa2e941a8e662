//! `motstream loadgen` against the real broker delivers exactly the requested count.

use std::process::Command;
use std::time::Duration;

use motstream_core::Decoder;
use motstream_core::codec::CONTENT_TYPE_HEADER;
use motstream_tests::service::binary;
use motstream_tests::{brokers, consume, create_topic, message_count, now_ms, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_delivers_the_requested_count() {
    let topic = unique("loadgen");
    create_topic(&topic, 4).await;
    for format in ["proto", "json"] {
        let out = Command::new(binary())
            .args([
                "loadgen",
                "--brokers",
                &brokers(),
                "--topic",
                &topic,
                "--rate",
                "2000",
                "--count",
                "3000",
                "--duration",
                "60s",
                "--format",
                format,
            ])
            .output()
            .expect("running loadgen");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("3000 sent") && err.contains("3000 acknowledged, 0 failed"),
            "{err}"
        );
    }
    let got = consume(&topic, 6000, Duration::from_secs(60));
    let decoder = Decoder::default();
    let mut ids = std::collections::HashSet::new();
    for m in &got {
        let e = decoder
            .decode(&m.payload, m.header(CONTENT_TYPE_HEADER), now_ms())
            .expect("every generated event is valid");
        assert_eq!(
            m.key.as_deref(),
            e.journey_id.as_deref().map(str::as_bytes),
            "keyed by journey id"
        );
        ids.insert(
            format!("{:?}", m.header(CONTENT_TYPE_HEADER)) + e.event_id.as_deref().unwrap_or(""),
        );
    }
    assert_eq!(ids.len(), 6000, "no event twice");
    assert_eq!(
        message_count(&topic),
        6000,
        "exactly the requested count, nothing more"
    );
}
