//! Window coverage on a fake clock: a MOT whose traffic starts at `T0` (a new MOT, or a
//! restart without history), its windows holding what that traffic put in them at each tick.

use motstream_core::{Catalog, MotIdx};
use motstream_window::{BulkCounts, Counts};

use crate::*;

const CATALOG: &str = "
version: 1
defaults:
  owner: { name: O, team: t, contact: o@example.com }
  alert_policy:
    min_events: 20
    burn_rates:
      - { name: page-fast-burn, severity: page, factor: 14.4, long: 1h, short: 5m }
      - { name: page-slow-burn, severity: page, factor: 6, long: 6h, short: 30m }
      - { name: ticket-fast-burn, severity: ticket, factor: 3, long: 24h, short: 2h }
      - { name: ticket-slow-burn, severity: ticket, factor: 1, long: 3d, short: 6h }
experiences:
  - id: e
    name: E
    manager: { name: M, team: t, contact: m@example.com }
    sco: bags
    mots:
      - id: bags
        name: Bags
        target: 0.97
        alert_policy: { floor: { below: 0.85, over: 1m, min_events: 30, severity: page } }
";

const T0: i64 = 1_800_000_000_000;
const SEC: i64 = 1_000;
/// Interactions per second of the simulated MOT.
const RATE: u64 = 10;

fn engine() -> Engine {
    Engine::new(
        Policy::compile(&Catalog::from_yaml(CATALOG, "t.yaml").expect("valid catalog")),
        EngineConfig::default(),
    )
}

/// The windows at `now` when traffic at `RATE` with `failure_ratio` failing began at `T0`.
fn windows(e: &Engine, now: i64, failure_ratio: f64) -> BulkCounts {
    let elapsed = (now - T0).max(0);
    let counts = e
        .policy()
        .windows_ms
        .iter()
        .map(|&w| {
            let amount = (elapsed.min(w as i64) / SEC) as u64 * RATE;
            let failures = (amount as f64 * failure_ratio).round() as u64;
            Counts {
                successes: amount - failures,
                failures,
            }
        })
        .collect();
    BulkCounts::from_parts(1, e.policy().windows_ms.clone(), counts, Vec::new())
        .with_data_since(vec![(elapsed > 0).then_some(T0)])
}

/// Ticks every second from `T0 + 1 s` to `T0 + secs`; every transition with its second.
fn run(e: &mut Engine, secs: i64, failure_ratio: f64) -> Vec<(i64, String, Change)> {
    let mut out = Vec::new();
    for s in 1..=secs {
        let now = T0 + s * SEC;
        let w = windows(e, now, failure_ratio);
        for t in e.tick(&w, now) {
            let rule = &e.policy().mots[t.mot.0 as usize].rules[t.rule];
            out.push((s, rule.name.clone(), t.change));
        }
    }
    out
}

#[test]
fn a_real_fast_burn_from_a_mots_first_second_pages_within_the_short_window() {
    let mut e = engine();
    // 60% failing on a 97% target: a burn of 20x, above the fast page's 14.4x.
    let got = run(&mut e, 300, 0.6);
    let page = got
        .iter()
        .find(|(_, r, c)| r == "page-fast-burn" && *c == Change::Firing)
        .unwrap_or_else(|| panic!("no fast-burn page in the first 5 minutes: {got:?}"));
    assert!(page.0 <= 300, "paged at {} s", page.0);
    // Not on seconds of data: the 1h window needs 8% of it (4.8 min) covered first.
    assert!(page.0 >= 288, "paged at {} s", page.0);
    // The floor rule (1m window) judges after 4.8 s of data and pages at once.
    assert!(
        got.iter()
            .any(|(s, r, c)| r == "floor" && *c == Change::Firing && *s <= 10),
        "{got:?}"
    );
    // Nothing tickets on five minutes of data.
    assert!(
        got.iter().all(|(_, r, _)| !r.starts_with("ticket")),
        "{got:?}"
    );
}

#[test]
fn a_slight_burn_does_not_ticket_within_the_first_hour_of_data_but_does_once_covered() {
    let mut e = engine();
    // 4% failing on a 97% target: a burn of 1.33x, above the 1x slow ticket.
    let got = run(&mut e, 3_600, 0.04);
    assert!(got.is_empty(), "{got:?}");
    let bags = e.policy().mots[0].clone();
    let slow = bags
        .rules
        .iter()
        .position(|r| r.name == "ticket-slow-burn")
        .expect("the slow ticket rule");
    let hour = T0 + 3_600 * SEC;
    let w = windows(&e, hour, 0.04);
    let ev = e.tick(&w, hour);
    assert!(ev.is_empty());
    let windows_ms = e.policy().windows_ms.clone();
    let why = crate::coverage::insufficient(&bags.rules, &windows_ms, Some(T0), hour, 0.08);
    assert_eq!(
        why,
        vec!["ticket-fast-burn", "ticket-slow-burn"],
        "reported as insufficient data an hour in"
    );
    // Once 8% of 3 days (5.76 h) is covered, the rule judges and tickets: it was the missing
    // data that held it, not the burn.
    let later = T0 + 5 * 3_600 * SEC + 46 * 60 * SEC;
    let w = windows(&e, later, 0.04);
    let t = e.tick(&w, later);
    assert_eq!(
        t.iter().map(|t| (t.rule, t.change)).collect::<Vec<_>>(),
        vec![(slow, Change::Firing)]
    );
    assert_eq!(
        e.state(MotIdx(0), slow).map(|s| s.phase),
        Some(Phase::Firing)
    );
}

#[test]
fn insufficient_data_freezes_a_firing_alert_instead_of_resolving_it() {
    let mut s = RuleState {
        phase: Phase::Firing,
        episode_ms: 0,
        clear_since_ms: Some(0),
    };
    assert_eq!(s.step(Condition::InsufficientData, 1_000_000, 0, 0), None);
    assert_eq!(s.phase, Phase::Firing);
}

#[test]
fn coverage_is_the_share_of_the_window_since_the_first_event() {
    use crate::coverage::coverage;
    assert_eq!(coverage(None, T0, 60_000), 0.0);
    assert_eq!(coverage(Some(T0), T0 + 30_000, 60_000), 0.5);
    assert_eq!(coverage(Some(T0), T0 + 90_000, 60_000), 1.0);
    assert_eq!(coverage(Some(T0 + 5), T0, 60_000), 0.0);
}
