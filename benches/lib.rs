//! Shared fixtures for motstream's benchmarks.

use std::borrow::Cow;
use std::fmt::Write as _;

use motstream_core::{Catalog, InteractionEvent, Outcome};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// The airline example catalog, as shipped.
pub fn airline_catalog() -> Catalog {
    Catalog::from_yaml(
        include_str!("../deploy/catalog/airline.yaml"),
        "deploy/catalog/airline.yaml",
    )
    .expect("the shipped airline catalog is valid")
}

/// A catalog of `mots` MOTs (`m{e}-{i}`) in experiences of `per_exp` each (`e{e}`, SCO at
/// `m{e}-0`), each with the SRE Workbook's four burn-rate rules and a floor rule.
pub fn generated_catalog(mots: usize, per_exp: usize) -> Catalog {
    Catalog::from_yaml(&generated_catalog_yaml(mots, per_exp), "generated.yaml")
        .expect("the generated catalog is valid")
}

/// The YAML of [`generated_catalog`], for a service that reads its catalog from a file.
pub fn generated_catalog_yaml(mots: usize, per_exp: usize) -> String {
    let mut y = String::from(
        "version: 1
defaults:
  owner: { name: O, team: t, contact: o@example.com }
  alert_policy:
    min_events: 20
    burn_rates:
      - { name: page-fast-burn, severity: page, factor: 14.4, long: 1h, short: 5m }
      - { name: page-slow-burn, severity: page, factor: 6, long: 6h, short: 30m }
      - { name: ticket-fast-burn, severity: ticket, factor: 3, long: 24h, short: 2h }
      - { name: ticket-slow-burn, severity: ticket, factor: 1, long: 3d, short: 6h }
    floor: { below: 0.8, over: 5m, min_events: 30, severity: page }
experiences:
",
    );
    for e in 0..mots.div_ceil(per_exp) {
        let _ = write!(
            y,
            "  - id: e{e}\n    name: E{e}\n    manager: {{ name: M, team: t, contact: m@example.com }}\n    sco: m{e}-0\n    mots:\n"
        );
        for m in 0..per_exp.min(mots - e * per_exp) {
            let _ = writeln!(y, "      - {{ id: m{e}-{m}, name: M{m}, target: 0.98 }}");
        }
    }
    y
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

/// The load benchmarks' event: one in 13 fails with a reason, journeys keyed by `key`.
pub fn bench_event<'a>(
    mot: &'a str,
    key: &'a str,
    i: usize,
    event_time_ms: i64,
) -> InteractionEvent<'a> {
    let failed = i.is_multiple_of(13);
    InteractionEvent {
        event_id: None,
        mot_id: Cow::Borrowed(mot),
        experience_id: None,
        journey_id: Some(Cow::Borrowed(key)),
        event_time_ms,
        outcome: if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        failure_reason: failed.then_some(Cow::Borrowed("printer-jam")),
        channel: Some(Cow::Borrowed("kiosk")),
        duration_ms: Some((i % 90_000) as u32),
        producer_id: Some(Cow::Borrowed("e2e-bench")),
        attributes: Vec::new(),
    }
}

/// Creates a topic on the benchmark's broker; panics if it cannot (a benchmark set-up error).
pub fn create_topic(brokers: &str, name: &str, partitions: i32) {
    create_topic_with(brokers, name, partitions, &[]);
}

/// [`create_topic`] with topic configs, e.g. `("retention.ms", "604800000")`.
pub fn create_topic_with(brokers: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .expect("admin client");
        let t = configs.iter().fold(
            NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
            |t, (k, v)| t.set(k, v),
        );
        for r in admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .expect("create topics")
        {
            r.expect("topic created");
        }
    });
}

/// utime + stime of this process, in seconds, from /proc.
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (1-based) of /proc/pid/stat; `after` starts at field 3. Linux reports
    // them in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's peak resident set (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The value after `--name` on a command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}
