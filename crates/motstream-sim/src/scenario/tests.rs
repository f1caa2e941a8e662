use std::time::Duration;

use super::*;
use crate::tests_support::{airline, telecom};

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_yaml(text, "s.yaml", &airline())
}

fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn airline_demo_loads_against_the_airline_catalog() {
    let catalog = airline();
    let s = Scenario::from_yaml(AIRLINE_DEMO, "airline-demo.yaml", &catalog)
        .expect("the shipped scenario is valid");
    let [kiosk] = s.incidents() else {
        panic!("one incident expected: {:?}", s.incidents())
    };
    assert_eq!(kiosk.mot_id, "bag-drop");
    assert_eq!(kiosk.mot, catalog.mot_idx("bag-drop").expect("declared"));
    assert_eq!(kiosk.channel.as_deref(), Some("kiosk"));
    assert_eq!(kiosk.from, Duration::from_secs(120));
    assert_eq!(kiosk.until, Some(Duration::from_secs(240)));
    assert_eq!(kiosk.reason.as_deref(), Some("kiosk-offline"));
    let lounge = catalog.mot_idx("lounge-entry").expect("declared");
    assert_eq!(s.settings(lounge).and_then(|m| m.visit), Some(0.2));
    assert!(s.description().is_some_and(|d| d.contains("kiosk")));
}

#[test]
fn default_for_picks_the_airline_demo_only_for_the_airline_catalog() {
    let s = Scenario::default_for(&airline());
    assert_eq!(s.origin(), "deploy/scenarios/airline-demo.yaml");
    assert_eq!(s.incidents().len(), 1);
    let t = Scenario::default_for(&telecom());
    assert_eq!(t, Scenario::none());
}

#[test]
fn scenario_with_unknown_mot_names_file_line_and_field() {
    let text = "\
incidents:
  - mot: bag-drop
    failure_rate: 0.5
    from: 1m
  - mot: bag-drp
    failure_rate: 0.5
    from: 1m
";
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "s.yaml:5: incidents[1].mot: `bag-drp` is not a MOT of the catalog (airline.yaml); \
             it declares online-check-in, bag-drop,"
        ),
        "{p:?}"
    );
}

#[test]
fn every_problem_is_reported_at_once_sorted_by_line() {
    let text = "\
mots:
  lounge-entry:
    visit: 1.5
  boarding-gate:
    visit: 0.5
  nowhere:
    failure_rate: 0.1
incidents:
  - mot: security
    channel: kiosk
    failure_rate: 2
    from: 5m
    until: 3m
    reason: ''
  - mot: security
    from: soon
";
    let p = problems(text);
    let want = [
        "s.yaml:3: mots.lounge-entry.visit: 1.5 is not a probability (more than 0, at most 1)",
        "s.yaml:5: mots.boarding-gate.visit: 0.5: the SCO MOT of airline-departure is part of \
         every journey (visit must be 1)",
        "s.yaml:6: mots.nowhere: `nowhere` is not a MOT of the catalog",
        "s.yaml:10: incidents[0].channel: `kiosk` is not a channel of security (it is used on \
         lane, fast-track)",
        "s.yaml:11: incidents[0].failure_rate: 2 is not a probability (0 to 1)",
        "s.yaml:13: incidents[0].until: 3m must be after from (5m)",
        "s.yaml:14: incidents[0].reason: must not be empty",
        "s.yaml:15: incidents[1]: an incident needs failure_rate, slowdown or both",
        "s.yaml:16: incidents[1].from: `soon` is not a duration",
    ];
    assert_eq!(p.len(), want.len(), "{p:#?}");
    for (got, want) in p.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\n  should start with\n{want}");
    }
}

#[test]
fn unknown_key_points_at_its_line() {
    let text = "\
incidents:
  - mot: bag-drop
    chanel: kiosk
    failure_rate: 0.5
    from: 1m
";
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:3: incidents[0]: unknown field `chanel`"),
        "{p:?}"
    );
    let p = problems("incidents:\n  - mot: bag-drop\n    from: [1]\n");
    assert!(p[0].starts_with("s.yaml:3:"), "{p:?}");
}

#[test]
fn blank_file_is_an_empty_scenario() {
    let s = load("# nothing yet\n").expect("a blank file is valid");
    assert!(s.incidents().is_empty());
}

#[test]
fn incident_applies_only_inside_its_window_and_on_its_channel() {
    let s = Scenario::default_for(&airline());
    let i = &s.incidents()[0];
    assert!(!i.applies(119_999, "kiosk"));
    assert!(i.applies(120_000, "kiosk"));
    assert!(i.applies(239_999, "kiosk"));
    assert!(!i.applies(240_000, "kiosk"));
    assert!(!i.applies(150_000, "desk"));
    let open =
        load("incidents:\n  - mot: security\n    slowdown: 3\n    from: 0s\n").expect("valid");
    assert!(open.incidents()[0].applies(i64::MAX, "lane"));
    assert_eq!(open.incidents()[0].failure_rate, None);
}
