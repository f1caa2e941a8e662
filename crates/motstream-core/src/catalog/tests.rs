#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

const AIRLINE: &str = include_str!("../../../../deploy/catalog/airline.yaml");
const TELECOM: &str = include_str!("../../../../deploy/catalog/telecom-repair.yaml");

const SMALL: &str = "\
version: 1
defaults:
  target: 0.95
  owner: { name: N, team: t, contact: c }
experiences:
  - id: e
    name: E
    manager: { name: M, team: t, contact: c }
    sco: b
    mots:
      - id: a
        name: A
      - id: b
        name: B
        target: 0.99
";

fn problems(text: &str) -> Vec<String> {
    Catalog::from_yaml(text, "cat.yaml")
        .unwrap_err()
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn shipped_airline_catalog_loads_with_defaults_applied() {
    let c = Catalog::from_yaml(AIRLINE, "airline.yaml").unwrap();
    assert_eq!(c.experiences.len(), 1);
    assert_eq!(c.mots.len(), 5);
    let bag = c.mot(c.mot_idx("bag-drop").unwrap());
    assert_eq!(bag.target, 0.97);
    assert_eq!(bag.kind, "self-service", "inherited type");
    assert_eq!(bag.smoto.max_duration, Some(Duration::from_secs(240)));
    assert_eq!(bag.alert_policy.burn_rates.len(), 4, "inherited rules");
    assert_eq!(bag.alert_policy.floor.as_ref().unwrap().below, 0.85);
    let lounge = c.mot(c.mot_idx("lounge-entry").unwrap());
    assert_eq!(lounge.alert_policy.min_events, 50);
    assert_eq!(
        lounge.smoto.max_duration,
        Some(Duration::from_secs(600)),
        "inherited limit"
    );
    let exp = c.experience(c.experience_idx("airline-departure").unwrap());
    assert_eq!(c.mot(exp.sco_mot).id, "boarding-gate");
    assert_eq!(c.longest_rule_window(), Duration::from_secs(3 * 86_400));
}

#[test]
fn shipped_telecom_catalog_loads_with_default_owner() {
    let c = Catalog::from_yaml(TELECOM, "telecom-repair.yaml").unwrap();
    let diag = c.mot(c.mot_idx("remote-diagnosis").unwrap());
    assert_eq!(diag.owner.team, "repair-ops");
    assert_eq!(diag.alert_policy.for_duration, Duration::from_secs(120));
    assert_eq!(
        c.mot(c.mot_idx("engineer-visit").unwrap()).owner.team,
        "field-ops"
    );
}

#[test]
fn misspelt_field_names_file_line_and_field() {
    let text = SMALL.replace("        target: 0.99", "        targt: 0.99");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "cat.yaml:15: experiences[0].mots[1].targt: unknown field; did you mean target? (known here: id, name, type,"
        ),
        "{p:?}"
    );
}

#[test]
fn five_different_problems_are_all_reported_in_the_catalogs_words() {
    let text = "\
version: 1
defaults:
  target: high
  owner: { name: N, team: t, contact: c }
experiences:
  - id: e
    name: E
    manager: { name: M, team: t, contact: c }
    sco: z
    mots:
      - id: a
        name: A
        targt: 0.9
      - id: b
        smoto: { max_duration: soon }
";
    let p = problems(text);
    let soon = humantime::parse_duration("soon").unwrap_err().to_string();
    let want = [
        r#"cat.yaml:3: defaults.target: must be a number, not the text "high""#.to_owned(),
        r#"cat.yaml:9: experiences[0].sco: "z" is not one of this experience's MOTs (a, b)"#
            .to_owned(),
        "cat.yaml:13: experiences[0].mots[0].targt: unknown field; did you mean target?".to_owned(),
        "cat.yaml:14: experiences[0].mots[1].name: missing: text is required".to_owned(),
        format!(
            r#"cat.yaml:15: experiences[0].mots[1].smoto.max_duration: "soon" is not a duration such as 90s, 5m or 6h: {soon}"#
        ),
    ];
    assert_eq!(p.len(), want.len(), "{p:#?}");
    for (got, want) in p.iter().zip(&want) {
        assert!(got.starts_with(want.as_str()), "{got}\nwanted {want}");
    }
    assert!(
        p.iter()
            .all(|l| !l.contains("f64") && !l.contains("invalid type")),
        "no Rust words: {p:#?}"
    );
}

#[test]
fn wrong_types_anywhere_name_what_was_expected() {
    let text = SMALL.replace("version: 1", "version: one").replace(
        "        target: 0.99",
        "        target: [1]\n        channels: web",
    );
    let p = problems(&text);
    assert_eq!(
        p,
        vec![
            r#"cat.yaml:1: version: must be a whole number of zero or more, not the text "one""#,
            "cat.yaml:15: experiences[0].mots[1].target: must be a number, not a list",
            r#"cat.yaml:16: experiences[0].mots[1].channels: must be a list, not the text "web""#,
        ]
    );
}

#[test]
fn every_semantic_problem_is_reported_with_its_line() {
    let text = SMALL
        .replace("        target: 0.99", "        target: 1.5")
        .replace("    sco: b", "    sco: z")
        .replace("      - id: a\n        name: A", "      - id: a\n        name: A\n        smoto: { max_duration: soon }\n        runbook: ftp://x");
    let p = problems(&text);
    assert_eq!(
        p,
        vec![
            r#"cat.yaml:9: experiences[0].sco: "z" is not one of this experience's MOTs (a, b)"#,
            r#"cat.yaml:13: experiences[0].mots[0].smoto.max_duration: "soon" is not a duration such as 90s, 5m or 6h: unknown time unit "soon""#.to_owned().replace("unknown time unit \"soon\"", &humantime::parse_duration("soon").unwrap_err().to_string()).as_str(),
            r#"cat.yaml:14: experiences[0].mots[0].runbook: "ftp://x" is not an http(s) URL"#,
            "cat.yaml:17: experiences[0].mots[1].target: 1.5 is not a ratio between 0 and 1 (exclusive)",
        ]
    );
}

#[test]
fn duplicate_mot_ids_and_missing_owner_are_errors() {
    let text = SMALL
        .replace("  owner: { name: N, team: t, contact: c }\n", "")
        .replace("      - id: b\n", "      - id: a\n");
    let p = problems(&text).join("\n");
    assert!(p.contains("cat.yaml:8: experiences[0].sco"), "{p}");
    assert!(
        p.contains(
            "cat.yaml:12: experiences[0].mots[1].id: MOT \"a\" is declared twice (first at line 10)"
        ),
        "{p}"
    );
    assert!(
        p.contains("cat.yaml:10: experiences[0].mots[0].owner: missing"),
        "{p}"
    );
}

#[test]
fn burn_rule_with_short_window_longer_than_long_is_an_error() {
    let text = SMALL.replace(
        "  owner: { name: N, team: t, contact: c }\n",
        "  owner: { name: N, team: t, contact: c }\n  alert_policy:\n    burn_rates:\n      - name: r\n        severity: wake\n        factor: 2\n        long: 5m\n        short: 1h\n",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("cat.yaml:8: defaults.alert_policy.burn_rates[0].severity: \"wake\""),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("cat.yaml:11: defaults.alert_policy.burn_rates[0].short: must be shorter"),
        "{p:?}"
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let p = problems("version: 1\nexperiences: [\n");
    assert!(p[0].starts_with("cat.yaml:"), "{p:?}");
    assert!(
        p[0].split(':').nth(1).unwrap().parse::<usize>().is_ok(),
        "{p:?}"
    );
}

#[test]
fn journey_timeout_comes_from_the_experience_then_the_defaults_then_the_service() {
    let none = Catalog::from_yaml(SMALL, "cat.yaml").unwrap();
    assert_eq!(none.experiences[0].journey_timeout, None, "service default");
    let text = SMALL.replace(
        "  target: 0.95\n",
        "  target: 0.95\n  journey_timeout: 45m\n",
    );
    let inherited = Catalog::from_yaml(&text, "cat.yaml").unwrap();
    assert_eq!(
        inherited.experiences[0].journey_timeout,
        Some(Duration::from_secs(45 * 60))
    );
    let own = text.replace("    sco: b\n", "    sco: b\n    journey_timeout: 2h\n");
    let own = Catalog::from_yaml(&own, "cat.yaml").unwrap();
    assert_eq!(
        own.experiences[0].journey_timeout,
        Some(Duration::from_secs(7200))
    );
    let bad = SMALL.replace("    sco: b\n", "    sco: b\n    journey_timeout: 0s\n");
    assert_eq!(
        problems(&bad),
        vec!["cat.yaml:10: experiences[0].journey_timeout: must be longer than zero"]
    );
}
