//! Engine tests against policy edges: min-events guard, low targets, hysteresis, suppression
//! while rebuilding, burn states, and the alert's content.

use motstream_core::{Catalog, MotIdx};
use motstream_window::{BulkCounts, Counts};

use crate::*;

const CATALOG: &str = "
version: 1
defaults:
  owner: { name: Olu Ade, team: ops, contact: ops@example.com }
  dashboard_url: http://grafana/d/mot?var-experience={experience}&var-mot={mot}
  alert_policy:
    min_events: 20
    burn_rates:
      - { name: page-fast-burn, severity: page, factor: 14.4, long: 1h, short: 5m }
experiences:
  - id: air
    name: Air
    manager: { name: M, team: t, contact: m@example.com }
    sco: gate
    mots:
      - { id: gate, name: Gate, target: 0.98, runbook: https://rb/gate }
      - { id: lounge, name: Lounge, target: 0.85 }
      - id: bags
        name: Bags
        target: 0.97
        owner: { name: Lars, team: ground, contact: g@example.com }
        alert_policy: { floor: { below: 0.85, over: 5m, min_events: 30, severity: page } }
";

fn catalog() -> Catalog {
    Catalog::from_yaml(CATALOG, "t.yaml").expect("valid catalog")
}

/// Windows: 5m (index 0), 1h (index 1). `per_mot[m] = (5m counts, 1h counts)`.
fn counts(per_mot: &[(Counts, Counts)], warming: &[bool]) -> BulkCounts {
    let n = per_mot.len();
    let mut v = vec![Counts::default(); 2 * n];
    for (m, (short, long)) in per_mot.iter().enumerate() {
        v[m] = *short;
        v[n + m] = *long;
    }
    // Data since long before any of these tests' instants: every window is covered (coverage
    // has its own tests in `coverage_tests`).
    BulkCounts::from_parts(n, vec![300_000, 3_600_000], v, warming.to_vec())
        .with_data_since(vec![Some(-LONG_AGO); n])
}

const LONG_AGO: i64 = 1_000_000_000_000;

fn c(successes: u64, failures: u64) -> Counts {
    Counts {
        successes,
        failures,
    }
}

fn engine() -> Engine {
    let p = Policy::compile(&catalog());
    assert_eq!(p.windows_ms, vec![300_000, 3_600_000]);
    Engine::new(
        p,
        EngineConfig {
            hysteresis_band: 0.1,
            resolve_hold_ms: 0,
            ..EngineConfig::default()
        },
    )
}

const OK: (Counts, Counts) = (
    Counts {
        successes: 1000,
        failures: 0,
    },
    Counts {
        successes: 1000,
        failures: 0,
    },
);

#[test]
fn a_burn_above_the_threshold_over_both_windows_fires_and_only_then() {
    let mut e = engine();
    // gate: target 0.98, 14.4x = failure ratio 0.288. 30% over both windows fires.
    let t = e.tick(&counts(&[(c(70, 30), c(700, 300)), OK, OK], &[]), 1);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].mot, t[0].rule, t[0].change),
        (MotIdx(0), 0, Change::Firing)
    );
    assert_eq!(t[0].eval.burn_state, BurnState::Critical);
    // Only the short window above: increasing, no alert.
    let mut e = engine();
    let t = e.tick(&counts(&[(c(70, 30), c(990, 10)), OK, OK], &[]), 1);
    assert!(t.is_empty());
    let ev = evaluate(
        &e.policy().mots[0].rules[0],
        0.98,
        &counts(&[(c(70, 30), c(990, 10)), OK, OK], &[]),
        MotIdx(0),
        0.1,
    );
    assert_eq!(ev.burn_state, BurnState::Increasing);
    let ev = evaluate(
        &e.policy().mots[0].rules[0],
        0.98,
        &counts(&[(c(99, 1), c(700, 300)), OK, OK], &[]),
        MotIdx(0),
        0.1,
    );
    assert_eq!(ev.burn_state, BurnState::Recovering);
}

#[test]
fn min_events_guard_keeps_a_quiet_mot_from_paging_on_two_failures() {
    let mut e = engine();
    // 2 failures of 3: a burn of 33x, but 3 < 20 events in each window.
    assert!(
        e.tick(&counts(&[(c(1, 2), c(1, 2)), OK, OK], &[]), 1)
            .is_empty()
    );
    // 19 in the short window: still guarded; 20 in both: fires.
    assert!(
        e.tick(&counts(&[(c(9, 10), c(100, 100)), OK, OK], &[]), 2)
            .is_empty()
    );
    let t = e.tick(&counts(&[(c(10, 10), c(100, 100)), OK, OK], &[]), 3);
    assert_eq!(t.len(), 1);
    // The floor rule has its own minimum (30): at 29 events only the burn rule (min 20) fires.
    let mut e = engine();
    let t = e.tick(&counts(&[OK, OK, (c(10, 19), c(10, 19))], &[]), 1);
    assert_eq!(t.iter().map(|t| t.rule).collect::<Vec<_>>(), vec![0]);
    let t = e.tick(&counts(&[OK, OK, (c(10, 20), c(10, 20))], &[]), 2);
    assert_eq!(t.iter().map(|t| t.rule).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn a_low_target_still_pages_when_nearly_everything_fails() {
    let mut e = engine();
    // lounge: target 0.85, max burn 6.7x, threshold capped at 6.0x (90% failing).
    // 89% failing is a burn of 5.93x: not yet; 95% (6.33x) fires, where 14.4x never could.
    assert!(
        e.tick(&counts(&[OK, (c(11, 89), c(11, 89)), OK], &[]), 1)
            .is_empty()
    );
    let t = e.tick(&counts(&[OK, (c(5, 95), c(5, 95)), OK], &[]), 2);
    assert_eq!((t.len(), t[0].mot), (1, MotIdx(1)));
    assert!((t[0].eval.threshold - 6.0).abs() < 1e-9);
}

#[test]
fn hysteresis_band_keeps_an_alert_firing_just_below_the_threshold() {
    let mut e = engine();
    let high = (c(70, 30), c(700, 300)); // 15x
    let band = (c(73, 27), c(730, 270)); // 13.5x: within 10% below 14.4x
    let low = (c(80, 20), c(800, 200)); // 10x: below the band
    assert_eq!(e.tick(&counts(&[high, OK, OK], &[]), 1).len(), 1);
    for t in 2..10 {
        let w = if t % 2 == 0 { band } else { high };
        assert!(
            e.tick(&counts(&[w, OK, OK], &[]), t).is_empty(),
            "flapped at {t}"
        );
    }
    let t = e.tick(&counts(&[low, OK, OK], &[]), 10);
    assert_eq!(t[0].change, Change::Resolved { fired: true });
    // And the band alone does not start an alert.
    assert!(e.tick(&counts(&[band, OK, OK], &[]), 11).is_empty());
}

#[test]
fn rebuilding_partitions_suppress_new_alerts_and_keep_firing_ones() {
    let mut e = engine();
    let bad = (c(70, 30), c(700, 300));
    assert!(
        e.tick(&counts(&[bad, OK, OK], &[true, false, false]), 1)
            .is_empty(),
        "no fire while warming"
    );
    assert_eq!(
        e.tick(&counts(&[bad, OK, OK], &[]), 2).len(),
        1,
        "fires once complete"
    );
    // Warming with numbers that look fine (a partition's history is missing): no resolve.
    assert!(
        e.tick(&counts(&[OK, OK, OK], &[true, false, false]), 3)
            .is_empty()
    );
    assert_eq!(e.state(MotIdx(0), 0).map(|s| s.phase), Some(Phase::Firing));
    assert_eq!(
        e.tick(&counts(&[OK, OK, OK], &[]), 4)[0].change,
        Change::Resolved { fired: true }
    );
}

#[test]
fn restored_alerts_resolve_under_their_own_episode() {
    let mut e = engine();
    assert!(e.restore_firing(MotIdx(2), "floor", 123));
    assert!(!e.restore_firing(MotIdx(2), "nope", 1));
    let t = e.tick(&counts(&[OK, OK, OK], &[]), 500);
    assert_eq!(
        (t.len(), t[0].episode_ms, t[0].change),
        (1, 123, Change::Resolved { fired: true })
    );
}

#[test]
fn content_carries_the_owner_labels_and_the_course_correction_annotations() {
    let cat = catalog();
    let mut e = engine();
    let t = e.tick(&counts(&[OK, OK, (c(50, 50), c(500, 500))], &[]), 1_000);
    let floor = t.iter().find(|t| t.rule == 1).expect("floor fired");
    let rule = &e.policy().mots[2].rules[1];
    let a = content::build(
        &cat,
        &e.policy().windows_ms,
        MotIdx(2),
        rule,
        floor.episode_ms,
        &floor.eval,
        None,
    );
    assert_eq!(a.alert_id, "air/bags/floor/1000");
    for (k, v) in [
        ("alertname", "MotSmotoFloor"),
        ("severity", "page"),
        ("experience", "air"),
        ("mot", "bags"),
        ("owner", "Lars"),
        ("team", "ground"),
    ] {
        assert_eq!(a.labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(a.annotations["smoto_rate"], "50.00%");
    assert_eq!(a.annotations["target"], "97.00%");
    assert_eq!(
        a.annotations["dashboard_url"],
        "http://grafana/d/mot?var-experience=air&var-mot=bags"
    );
    assert!(
        a.annotations["error_budget_left"].starts_with('-'),
        "{:?}",
        a.annotations
    );
    assert!(
        !a.annotations.contains_key("runbook_url"),
        "bags has no runbook"
    );
    let gate_rule = &e.policy().mots[0].rules[0];
    let g = content::build(
        &cat,
        &e.policy().windows_ms,
        MotIdx(0),
        gate_rule,
        5,
        &floor.eval,
        None,
    );
    assert_eq!(g.annotations["runbook_url"], "https://rb/gate");
    assert_eq!(g.labels["alertname"], "MotPageFastBurn");
}

/// Counts the reads of each window.
struct Reads(BulkCounts, std::cell::RefCell<Vec<usize>>);

impl WindowCounts for Reads {
    fn counts(&self, w: usize, mot: MotIdx) -> Counts {
        self.1.borrow_mut()[w] += 1;
        self.0.counts(w, mot)
    }
    fn warming(&self, mot: MotIdx) -> bool {
        WindowCounts::warming(&self.0, mot)
    }
    fn data_since(&self, mot: MotIdx) -> Option<i64> {
        WindowCounts::data_since(&self.0, mot)
    }
}

#[test]
fn long_windows_are_read_only_when_a_rule_is_near_its_threshold_or_firing() {
    let mut e = engine();
    let reads = |b: BulkCounts| Reads(b, std::cell::RefCell::new(vec![0; 2]));
    // Healthy: every MOT's 5m window read once (shared by its rules), no 1h window.
    let r = reads(counts(&[OK, OK, OK], &[]));
    assert!(e.tick(&r, 1).is_empty());
    assert_eq!(*r.1.borrow(), vec![3, 0]);
    // gate's short window burns: its long window is read too, and it fires.
    let bad = (c(70, 30), c(700, 300));
    let r = reads(counts(&[bad, OK, OK], &[]));
    assert_eq!(e.tick(&r, 2).len(), 1);
    assert_eq!(*r.1.borrow(), vec![3, 1]);
    // Firing: the long window keeps being read, even with a healthy short window, so the
    // resolve carries both burn rates and the burn state.
    let r = reads(counts(&[(c(100, 0), c(700, 300)), OK, OK], &[]));
    let t = e.tick(&r, 3);
    assert_eq!(*r.1.borrow(), vec![3, 1]);
    assert_eq!(t[0].eval.burn_state, BurnState::Recovering);
}
