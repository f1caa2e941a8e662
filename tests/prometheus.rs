//! The exporter as Prometheus sees it: a real Prometheus (Debian package) scrapes a
//! `motstream run` fed through the real broker, and its HTTP API must return the produced
//! counts; `promtool check metrics` accepts the live page; and every metric the shipped
//! dashboards and rules use is one the live page exposes (or a recording rule built from them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use motstream_tests::prometheus::{Prometheus, exposed_names, value};
use motstream_tests::service::ServiceProcess;
use motstream_tests::service::http_text;
use motstream_tests::workload::{Truth, airline, produce_all, total, workload};
use motstream_tests::{create_topic, now_ms, unique};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// A service on fresh topics that has applied `n` produced events (1% malformed), and the
/// `run` arguments that start another instance on the same topics and group.
async fn fed(name: &str, n: usize) -> (ServiceProcess, Truth, Vec<String>) {
    let (events, dlq, group) = (
        unique(name),
        unique(&format!("{name}-dlq")),
        unique(&format!("{name}-group")),
    );
    create_topic(&events, 4).await;
    create_topic(&dlq, 1).await;
    let args: Vec<String> = [
        "--topics",
        &events,
        "--dlq-topic",
        &dlq,
        "--group-id",
        &group,
        // A restart must rebuild by replaying the log (what these tests check the counters
        // against), not restore a snapshot that the clean stop may have published.
        "--state-topic",
        "false",
    ]
    .map(String::from)
    .to_vec();
    let svc = start(name, &args);
    let (msgs, truth) = workload(name, n, 100, 7, now_ms(), Duration::from_secs(90));
    produce_all(&events, &msgs);
    let want = truth.valid();
    svc.wait_status("1h", WAIT, |s| total(s) >= want);
    (svc, truth, args)
}

fn start(name: &str, args: &[String]) -> ServiceProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServiceProcess::start(&unique(name), &args)
}

/// [`fed`], then stopped and started again: the new instance rebuilds its partitions by
/// replaying the events, and is returned once it has all of them in its windows.
async fn restarted(name: &str, n: usize) -> (ServiceProcess, Truth, Vec<String>) {
    let (first, truth, args) = fed(name, n).await;
    first.stop();
    let svc = start(name, &args);
    let want = truth.valid();
    svc.wait_status("1h", WAIT, |s| {
        total(s) >= want && s["health"]["ready"].as_bool() == Some(true)
    });
    (svc, truth, args)
}

/// Scrapes until the page declares every name in `want`, or panics after a minute.
fn page_with(svc: &ServiceProcess, want: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = live_page(svc);
        let names = exposed_names(&page);
        if want.iter().all(|w| names.contains(*w)) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never declared all of {want:?}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The sum of every sample of the page whose line starts with `prefix` and contains `tag`.
fn page_sum(page: &str, prefix: &str, tag: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(tag))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn live_page(svc: &ServiceProcess) -> String {
    let (code, page) = http_text(svc.http, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{page}");
    page
}

/// `{mot: value}` of a query whose result is labelled by `mot`.
fn by_mot(result: &[Value]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|s| {
            (
                s["metric"]["mot"].as_str().unwrap_or("?").to_owned(),
                value(s),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_per_mot_counts_equal_to_what_was_produced() {
    let (svc, truth, _) = fed("prom-exact", 20_000).await;
    let prom = Prometheus::start(
        &unique("prom-exact"),
        svc.http,
        &[repo().join("deploy/prometheus/rules/recording.yml")],
    );
    let want = |f: fn(&(u64, u64)) -> u64| -> BTreeMap<String, f64> {
        truth
            .mots
            .iter()
            .map(|(m, c)| (m.clone(), f(c) as f64))
            .collect()
    };
    let q = |promql: &str, expect: &BTreeMap<String, f64>| {
        prom.wait_query(promql, Duration::from_secs(60), |r| &by_mot(r) == expect);
    };
    q(
        "sum by (mot) (motstream_mot_interactions_total{outcome=\"success\"})",
        &want(|c| c.0),
    );
    q(
        "sum by (mot) (motstream_mot_interactions_total{outcome=\"failure\"})",
        &want(|c| c.1),
    );
    // Every generated event reports a duration: the histogram counts all of them.
    q(
        "sum by (mot) (motstream_mot_duration_seconds_count)",
        &want(|c| c.0 + c.1),
    );
    q(
        "sum by (mot) (motstream_mot_duration_seconds_bucket{le=\"+Inf\"})",
        &want(|c| c.0 + c.1),
    );
    q(
        "sum by (mot) (motstream_mot_window_interactions{window=\"1h\"})",
        &want(|c| c.0 + c.1),
    );
    let targets: BTreeMap<String, f64> = airline()
        .mots
        .iter()
        .map(|m| (m.id.clone(), m.target))
        .collect();
    q("motstream_mot_smoto_target", &targets);
    // The shipped recording rules evaluate over the exported series.
    q("motstream:mot_smoto_target", &targets);

    let scalar = |promql: &str, expect: f64| {
        prom.wait_query(promql, Duration::from_secs(60), |r| {
            r.len() == 1 && value(&r[0]) == expect
        });
    };
    let unidentified: u64 = truth.unidentified.values().sum();
    assert!(unidentified > 0, "the workload has unidentified MOTs");
    scalar(
        "sum(motstream_unidentified_interactions_total)",
        unidentified as f64,
    );
    scalar(
        "sum(motstream_unidentified_mot_interactions)",
        unidentified as f64,
    );
    scalar(
        "sum(motstream_ingest_rejected_total)",
        truth.rejects.len() as f64,
    );
    scalar("motstream_ready", 1.0);
    scalar("count(motstream_mot_info)", airline().mots.len() as f64);
    // Late events: none in this workload (all within the allowed lateness).
    scalar("sum(motstream_mot_late_events_total)", 0.0);
    svc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_check_metrics_prints_nothing_for_the_live_page() {
    let (svc, _, _) = fed("prom-lint", 5_000).await;
    // Once the consumer's lag (every 5 s) is in: every family the service has is on the page.
    let page = page_with(&svc, &["motstream_ingest_consumer_lag"]);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool: install the Debian package `prometheus`");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), page.as_bytes())
        .expect("writing to promtool");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}",
        out.status
    );
    assert!(page.contains("motstream_mot_interactions_total{"), "{page}");
    svc.stop();
}

/// Metric names a PromQL expression reads: identifiers starting with `motstream`, outside
/// strings, label matchers and ranges, not called as functions, not Grafana variables.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let mut word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'$') {
                    word.push('*');
                }
                let called = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
                if word.starts_with("motstream") && !called {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every string under a key named `expr`, `query` or `definition`, anywhere in `v`.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| queries(x, out)),
        _ => {}
    }
}

/// (recorded names, every rule expression with where it is) from deploy/prometheus/rules.
fn rules() -> (BTreeSet<String>, Vec<(String, String)>) {
    let mut recorded = BTreeSet::new();
    let mut exprs = Vec::new();
    for f in ["recording.yml", "alerts.yml"] {
        let path = repo().join("deploy/prometheus/rules").join(f);
        let text = std::fs::read_to_string(&path).expect("rule file");
        let doc: serde_norway::Value = serde_norway::from_str(&text).expect("rule file parses");
        for g in doc["groups"].as_sequence().into_iter().flatten() {
            for r in g["rules"].as_sequence().into_iter().flatten() {
                let name = r["record"].as_str().or(r["alert"].as_str()).unwrap_or("?");
                if let Some(rec) = r["record"].as_str() {
                    recorded.insert(rec.to_owned());
                }
                let expr = r["expr"].as_str().unwrap_or("").to_owned();
                exprs.push((format!("{f}: {name}"), expr));
            }
        }
    }
    (recorded, exprs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_rules_use_only_metrics_the_live_page_exposes() {
    let (recorded, rule_exprs) = rules();
    // A restarted instance: it has rebuilt partitions (rebuild gauges) besides everything else.
    let (svc, _, args) = restarted("prom-dash", 5_000).await;
    // Live traffic after the rebuild (some malformed), so that librdkafka reports the
    // consumer's lag and the rejects counter has a series.
    let (more, _) = workload(
        "prom-dash-live",
        200,
        20,
        8,
        now_ms(),
        Duration::from_secs(10),
    );
    produce_all(&args[1], &more);
    let exposed = exposed_names(&page_with(
        &svc,
        &[
            "motstream_ingest_consumer_lag",
            "motstream_ingest_rebuild_remaining_events",
        ],
    ));
    svc.stop();
    let known = |n: &str| match n.strip_suffix('*') {
        // A name completed by a Grafana variable (`...:rate$window`): some name must fit.
        Some(prefix) => exposed
            .iter()
            .chain(&recorded)
            .any(|x| x.starts_with(prefix)),
        None => exposed.contains(n) || recorded.contains(n),
    };
    let mut missing = Vec::new();
    for (at, expr) in &rule_exprs {
        for n in promql_metric_names(expr) {
            if !known(&n) {
                missing.push(format!("{at}: {n}"));
            }
        }
    }
    let dir = repo().join("deploy/grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dashboards dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "dashboards: {files:?}");
    let mut used = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("dashboard");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", f.display()));
        let mut qs = Vec::new();
        queries(&v, &mut qs);
        assert!(!qs.is_empty(), "{} has no queries", f.display());
        for q in qs {
            for n in promql_metric_names(&q) {
                used.insert(n.clone());
                if !known(&n) {
                    missing.push(format!("{}: {n}", f.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metrics used but neither exposed by a live scrape nor recorded:\n{}\nexposed: {exposed:?}",
        missing.join("\n")
    );
    assert!(
        used.contains("motstream_mot_interactions_total")
            || used.iter().any(|n| n.starts_with("motstream:mot_")),
        "the extractor found the dashboards' metrics: {used:?}"
    );
}

#[test]
fn the_promql_extractor_skips_functions_labels_strings_ranges_and_variables() {
    let got = promql_metric_names(
        "sum by (mot) (rate(motstream_a_total{mot=~\"$mot\", x='motstream_no'}[$__rate_interval])) \
         / on(mot) group_left motstream:b:rate5m > bool ${threshold} + motstream_c + motstream:d:rate$w",
    );
    let want: BTreeSet<String> = [
        "motstream_a_total",
        "motstream:b:rate5m",
        "motstream_c",
        "motstream:d:rate*",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_does_not_count_replayed_history_again() {
    let (svc, truth, _) = restarted("prom-replay", 5_000).await;
    let page = page_with(&svc, &["motstream_mot_interactions_total"]);
    // The windows hold the whole history again ...
    let valid: u64 = truth.mots.values().map(|(a, b)| a + b).sum();
    let held = page_sum(&page, "motstream_mot_window_interactions{", "window=\"1h\"");
    assert_eq!(held, valid as f64, "{page}");
    // ... but the counters, counting live-applied events only, did not count the replay.
    assert_eq!(
        page_sum(&page, "motstream_mot_interactions_total{", ""),
        0.0,
        "{page}"
    );
    assert!(
        page_sum(&page, "motstream_ingest_replayed_events_total", "") > 0.0,
        "{page}"
    );
    svc.stop();
}
