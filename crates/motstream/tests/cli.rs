//! The binary, run as a user runs it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn motstream(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_motstream"));
    c.args(args).current_dir(root());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MOTSTREAM_")) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("motstream-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn catalog_check_summarises_a_valid_catalog() {
    for (file, mots) in [("airline.yaml", 5), ("telecom-repair.yaml", 5)] {
        let out = motstream(
            &["catalog", "check", &format!("deploy/catalog/{file}")],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        assert!(
            s.contains(&format!("valid. 1 experience, {mots} MOTs")),
            "{s}"
        );
    }
    let s = text(&motstream(&["catalog", "check", "deploy/catalog/airline.yaml"], &[]).stdout);
    assert!(s.contains("SCO: boarding-gate succeeds"), "{s}");
    assert!(
        s.contains("bag-drop         self-service  airport-ground-ops  97%"),
        "{s}"
    );
}

#[test]
fn catalog_check_json_lists_every_mot() {
    let out = motstream(
        &["catalog", "check", "--json", "deploy/catalog/airline.yaml"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["experiences"][0]["mots"].as_array().unwrap().len(), 5);
    assert_eq!(
        v["experiences"][0]["mots"][1]["owner"]["team"],
        "airport-ground-ops"
    );
}

#[test]
fn invalid_catalog_exits_nonzero_naming_file_line_and_field() {
    let good = std::fs::read_to_string(root().join("deploy/catalog/airline.yaml")).unwrap();
    let bad = good.replacen("    target: 0.97", "    target: 97", 1);
    let line = bad.lines().position(|l| l == "        target: 97").unwrap() + 1;
    let p = tmp("bad-target.yaml", &bad);
    let out = motstream(&["catalog", "check", p.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let want = format!(
        "{}:{line}: experiences[0].mots[1].target: 97 is not a ratio",
        p.display()
    );
    assert!(err.contains(&want), "{err}\nwanted {want}");
    assert!(out.stdout.is_empty());
}

#[test]
fn misspelt_catalog_key_exits_nonzero_naming_its_line() {
    let good = std::fs::read_to_string(root().join("deploy/catalog/airline.yaml")).unwrap();
    let bad = good.replacen(
        "    runbook: https://runbooks.example.com/airline/bag-drop",
        "    run_book: https://x",
        1,
    );
    let line = bad.lines().position(|l| l.contains("run_book")).unwrap() + 1;
    let p = tmp("bad-key.yaml", &bad);
    let out = motstream(&["catalog", "check", p.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:{line}: experiences[0].mots[1].run_book: unknown field; did you mean runbook?",
            p.display()
        )),
        "{err}"
    );
}

#[test]
fn missing_catalog_file_is_a_clear_error() {
    let out = motstream(&["catalog", "check", "nope.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading catalog nope.yaml"));
}

#[test]
fn config_precedence_is_flag_then_env_then_file_then_default() {
    let file = tmp(
        "motstream.toml",
        "group_id = \"g-file\"\nbrokers = \"file:9092\"\ndlq_topic = \"dlq-file\"\nlateness = \"2m\"\n[kafka]\n\"client.id\" = \"c-file\"\n",
    );
    let out = motstream(
        &[
            "config",
            "show",
            "--config",
            file.to_str().unwrap(),
            "--group-id",
            "g-flag",
        ],
        &[
            ("MOTSTREAM_GROUP_ID", "g-env"),
            ("MOTSTREAM_BROKERS", "env:9092"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "group_id = \"g-flag\"  # flag",
        "brokers = \"env:9092\"  # env",
        "dlq_topic = \"dlq-file\"  # file",
        "lateness = \"2m\"  # file",
        "retention = \"3d\"  # default",
        "\"client.id\" = \"c-file\"",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }
}

#[test]
fn config_file_with_unknown_key_names_file_line_and_key() {
    let file = tmp("typo.toml", "group_id = \"g\"\ngrup = \"x\"\n");
    let out = motstream(&["config", "show", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&file.display().to_string())
            && err.contains("line 2")
            && err.contains("unknown field `grup`"),
        "{err}"
    );
}

#[test]
fn dlq_topic_that_is_also_consumed_is_refused() {
    let out = motstream(
        &["config", "show", "--topics", "a,b", "--dlq-topic", "b"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("dlq_topic: \"b\" is also a consumed topic"));
}
