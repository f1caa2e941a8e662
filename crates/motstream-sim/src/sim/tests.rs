use std::collections::BTreeSet;
use std::time::Duration;

use motstream_core::codec::encode;
use motstream_core::{Decoder, Encoding};

use super::*;
use crate::tests_support::{airline, telecom};

/// 2023-11-14T22:13:20Z: any time after 2000 works.
const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn sim(cfg: SimConfig, scenario: Scenario) -> Simulator {
    Simulator::new(Arc::new(airline()), scenario, cfg, T0).expect("valid config and scenario")
}

fn demo() -> Scenario {
    Scenario::default_for(&airline())
}

/// A flat load, as a load generator would ask for.
fn flat(events_per_sec: f64) -> SimConfig {
    SimConfig {
        events_per_sec,
        wave_amplitude: 0.0,
        ..SimConfig::default()
    }
}

/// Advances from `T0` to `T0 + until_ms` in steps of `step_ms`.
fn run(sim: &mut Simulator, until_ms: i64, step_ms: i64) -> Vec<SimEvent> {
    let mut out = Vec::new();
    let mut now = T0;
    while now < T0 + until_ms {
        now = (now + step_ms).min(T0 + until_ms);
        sim.advance(now, &mut out);
    }
    out
}

fn mot_of(e: &SimEvent) -> &str {
    &e.event.mot_id
}

fn failed(e: &SimEvent) -> bool {
    e.event.outcome == Outcome::Failure
}

#[test]
fn same_seed_gives_the_same_events() {
    let cfg = SimConfig {
        seed: 7,
        unidentified_ratio: 0.05,
        ..SimConfig::default()
    };
    let a = run(&mut sim(cfg.clone(), demo()), 3 * MIN, 1000);
    let b = run(&mut sim(cfg.clone(), demo()), 3 * MIN, 1000);
    assert!(a.len() > 10_000);
    assert_eq!(a, b);
    let c = run(
        &mut sim(SimConfig { seed: 8, ..cfg }, demo()),
        3 * MIN,
        1000,
    );
    assert_ne!(a.len(), c.len());
}

#[test]
fn chunking_of_advance_calls_does_not_change_the_events() {
    let a = run(&mut sim(SimConfig::default(), demo()), 3 * MIN, 1000);
    let mut s = sim(SimConfig::default(), demo());
    let (mut b, mut now) = (Vec::new(), T0);
    for step in [1, 333, 7_000, 0, 2, 9_999].iter().cycle() {
        now = (now + step).min(T0 + 3 * MIN);
        s.advance(now, &mut b);
        if now == T0 + 3 * MIN {
            break;
        }
    }
    assert_eq!(a, b);
    // With catch-up unbounded, one call generates the whole stretch.
    let unbounded = SimConfig {
        max_catch_up: Duration::MAX,
        ..SimConfig::default()
    };
    let mut c = Vec::new();
    sim(unbounded, demo()).advance(T0 + 3 * MIN, &mut c);
    assert_eq!(a, c);
}

#[test]
fn events_are_in_event_time_order_and_never_after_now() {
    let mut s = sim(SimConfig::default(), demo());
    let (mut last, mut out) = (T0 - 1, Vec::new());
    for k in 1..=120 {
        let now = T0 + k * 1000;
        out.clear();
        s.advance(now, &mut out);
        for e in &out {
            assert!(e.event.event_time_ms > now - 1000 && e.event.event_time_ms <= now);
            assert!(e.event.event_time_ms >= last);
            last = e.event.event_time_ms;
        }
    }
}

#[test]
fn ids_are_unique_and_the_key_is_the_journey_id() {
    let out = run(&mut sim(SimConfig::default(), demo()), 2 * MIN, 1000);
    let ids: BTreeSet<_> = out.iter().map(|e| e.event.event_id.clone()).collect();
    assert_eq!(ids.len(), out.len());
    for e in &out {
        assert_eq!(e.event.journey_id.as_deref(), Some(e.key.as_str()));
        assert!(e.key.starts_with("sim-1-j"));
        assert_eq!(e.event.producer_id.as_deref(), Some(PRODUCER_ID));
        assert_eq!(e.event.experience_id.as_deref(), Some("airline-departure"));
    }
}

#[test]
fn rate_matches_requested_events_per_second_within_5_percent() {
    let catalog = airline();
    for (rate, unidentified) in [(500.0, 0.0), (50.0, 0.0), (400.0, 0.1)] {
        let cfg = SimConfig {
            unidentified_ratio: unidentified,
            ..flat(rate)
        };
        let mut s = sim(cfg, Scenario::none());
        let out = run(&mut s, MIN, 1000);
        let got = out.len() as f64 / 60.0;
        assert!((got / rate - 1.0).abs() < 0.05, "{got} events/s for {rate}");
        let unknown = out
            .iter()
            .filter(|e| catalog.mot_idx(mot_of(e)).is_none())
            .count();
        let share = unknown as f64 / out.len() as f64;
        assert!((share - unidentified).abs() < 0.01, "{share}");
        assert_eq!(s.stats().unidentified_events, unknown as u64);
        assert_eq!(s.stats().events, out.len() as u64);
    }
}

#[test]
fn wave_averages_to_the_requested_rate_over_its_period() {
    let cfg = SimConfig {
        events_per_sec: 50.0,
        wave_amplitude: 0.5,
        wave_period: Duration::from_secs(1200),
        ..SimConfig::default()
    };
    let out = run(&mut sim(cfg, Scenario::none()), 20 * MIN, 5000);
    let got = out.len() as f64 / 1200.0;
    assert!((got / 50.0 - 1.0).abs() < 0.05, "{got}");
    // The wave rises in the first half of the period and falls in the second (events lag
    // arrivals by about a journey's length, a small part of the period).
    let half = |k: i64| {
        let from = T0 + k * 10 * MIN;
        let n = out
            .iter()
            .filter(|e| (from..from + 10 * MIN).contains(&e.event.event_time_ms))
            .count();
        n as f64
    };
    assert!(half(0) > 1.5 * half(1), "{} vs {}", half(0), half(1));
}

#[test]
fn active_journeys_are_capped_and_overflow_is_counted() {
    let cfg = SimConfig {
        max_active_journeys: 50,
        ..flat(500.0)
    };
    let mut s = sim(cfg, Scenario::none());
    let out = run(&mut s, MIN, 1000);
    let st = s.stats();
    assert!(
        st.active_journeys <= 50 && st.dropped_arrivals > 1000,
        "{st:?}"
    );
    assert!(!out.is_empty());
}

#[test]
fn long_pause_is_skipped_not_replayed() {
    let mut s = sim(SimConfig::default(), demo());
    let mut out = Vec::new();
    s.advance(T0 + 1000, &mut out);
    out.clear();
    s.advance(T0 + 10 * MIN, &mut out);
    let first = out.first().map(|e| e.event.event_time_ms);
    assert!(
        first.is_some_and(|t| t >= T0 + 10 * MIN - 10_000),
        "{first:?}"
    );
    assert!(s.stats().skipped_events > 1000, "{:?}", s.stats());
    // Journeys are under way again when emission resumes: 10 s at about 100 events/s (the
    // wave is +-20%).
    assert!((700..1400).contains(&out.len()), "{}", out.len());
}

#[test]
fn events_validate_against_the_default_limits() {
    let cfg = SimConfig {
        unidentified_ratio: 0.2,
        ..SimConfig::default()
    };
    let out = run(&mut sim(cfg, demo()), 3 * MIN, 1000);
    let decoder = Decoder::default();
    for e in &out {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let bytes = encode(&e.event, encoding);
            let ct = encoding.content_type().as_bytes();
            let back = decoder.decode(&bytes, Some(ct), e.event.event_time_ms);
            assert_eq!(back.as_ref(), Ok(&e.event), "{encoding:?}");
        }
    }
}

#[test]
fn scenario_loaded_for_another_catalog_is_rejected() {
    let err = Simulator::new(Arc::new(telecom()), demo(), SimConfig::default(), T0);
    assert!(
        matches!(err, Err(SimError::CatalogMismatch { ref mot, .. }) if mot == "lounge-entry" || mot == "bag-drop" || mot == "online-check-in"),
        "{err:?}"
    );
    let bad = SimConfig {
        speed: 0.0,
        ..SimConfig::default()
    };
    let err = Simulator::new(Arc::new(airline()), Scenario::none(), bad, T0);
    assert!(matches!(err, Err(SimError::Config { field: "speed", .. })));
}

mod journeys;
