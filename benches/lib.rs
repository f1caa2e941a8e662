//! Shared fixtures for motstream's benchmarks.

use std::borrow::Cow;

use motstream_core::{Catalog, InteractionEvent, Outcome};

/// The airline example catalog, as shipped.
pub fn airline_catalog() -> Catalog {
    Catalog::from_yaml(
        include_str!("../deploy/catalog/airline.yaml"),
        "deploy/catalog/airline.yaml",
    )
    .expect("the shipped airline catalog is valid")
}

/// A typical event: every common field set, no attributes; 254 bytes as JSON, 99 as protobuf.
pub fn typical_event(now_ms: i64) -> InteractionEvent<'static> {
    InteractionEvent {
        event_id: Some(Cow::Borrowed("e-7f3a9c2d41")),
        mot_id: Cow::Borrowed("bag-drop"),
        experience_id: Some(Cow::Borrowed("airline-departure")),
        journey_id: Some(Cow::Borrowed("j-48151623")),
        event_time_ms: now_ms - 1_500,
        outcome: Outcome::Failure,
        failure_reason: Some(Cow::Borrowed("printer-jam")),
        channel: Some(Cow::Borrowed("kiosk")),
        duration_ms: Some(95_000),
        producer_id: Some(Cow::Borrowed("kiosk-ams")),
        attributes: Vec::new(),
    }
}
