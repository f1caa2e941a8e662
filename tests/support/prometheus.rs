//! A real Prometheus server (the Debian package's `prometheus` binary) scraping a motstream
//! under test, and helpers to read the text exposition format and PromQL.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::service::{free_port, http_get, http_text};
use super::wait_for;

/// Metric names a text page declares (`# TYPE` lines), with `_bucket`, `_sum` and `_count`
/// added for histograms, as PromQL sees them.
pub fn exposed_names(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in page.lines() {
        let mut w = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (w.next(), w.next(), w.next(), w.next())
        {
            if kind == "histogram" || kind == "summary" {
                for s in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{s}"));
                }
            }
            out.insert(name.to_owned());
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running Prometheus, killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping `target` (host:port) every second
    /// and evaluating `rule_files` every second.
    pub fn start(name: &str, target: SocketAddr, rule_files: &[PathBuf]) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-prometheus"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let rules: String = rule_files
            .iter()
            .map(|p| format!("  - {:?}\n", p.display().to_string()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rules}\
             scrape_configs:\n  - job_name: motstream\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, config).expect("prometheus config");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus: install the Debian package `prometheus` (scripts/test.d/10-prometheus-rules.sh does)");
        let p = Self { child, addr, dir };
        p.wait_ready(Duration::from_secs(60));
        p
    }

    fn wait_ready(&self, timeout: Duration) {
        wait_for(
            timeout,
            Duration::from_millis(200),
            || match http_text(self.addr, "/-/ready") {
                Ok((200, _)) => Ok(()),
                other => Err(other),
            },
            |last| {
                format!(
                    "prometheus not ready within {timeout:?} (last: {last:?}):\n{}",
                    self.log_tail()
                )
            },
        );
    }

    /// The last lines of Prometheus' log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// An instant query; the `data.result` vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", urlencode(promql));
        match http_get(self.addr, &path) {
            Ok((200, v)) => v["data"]["result"].as_array().cloned().unwrap_or_default(),
            other => panic!("query {promql}: {other:?}\n{}", self.log_tail()),
        }
    }

    /// Polls `promql` until `done` holds for its result, or panics after `timeout`.
    pub fn wait_query(
        &self,
        promql: &str,
        timeout: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        wait_for(
            timeout,
            Duration::from_millis(500),
            || {
                let r = self.query(promql);
                if done(&r) { Ok(r) } else { Err(r) }
            },
            |r| {
                format!(
                    "{promql} never gave the expected result within {timeout:?}; last: {r:?}\n{}",
                    self.log_tail()
                )
            },
        )
    }
}

/// A sample's value as a float (Prometheus sends `[time, "value"]`).
pub fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
