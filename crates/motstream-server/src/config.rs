//! The service's effective configuration: every setting with its default, defined here and
//! nowhere else. The binary resolves flags, `MOTSTREAM_*` variables and the config file over
//! these defaults; tests and benchmarks start from [`ServiceConfig::defaults`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use motstream_core::units::short_duration;

pub use crate::alerting::config::AlertSettings;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flag => "flag",
            Self::Env => "env",
            Self::File => "file",
            Self::Default => "default",
        })
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `None`: run the embedded broker.
    pub brokers: Option<String>,
    pub group_id: String,
    pub topics: Vec<String>,
    pub dlq_topic: String,
    /// `None`: the built-in airline catalog.
    pub catalog: Option<PathBuf>,
    pub retention: Duration,
    pub lateness: Duration,
    pub max_future_skew: Duration,
    pub grpc_listen: SocketAddr,
    /// gRPC watch streams allowed at once.
    pub grpc_max_watchers: usize,
    /// Messages buffered per gRPC watcher.
    pub grpc_watch_buffer: usize,
    /// TLS certificate and key for gRPC; both `None`: plaintext.
    pub grpc_tls_cert: Option<PathBuf>,
    pub grpc_tls_key: Option<PathBuf>,
    /// Bearer token file for gRPC queries; `None`: no check.
    pub grpc_token_file: Option<PathBuf>,
    pub metrics_listen: SocketAddr,
    /// De-duplication window by event id; `None`: off.
    pub dedup_window: Option<Duration>,
    /// Serve /metrics with per-MOT series, and keep the live counters they need.
    pub exporter: bool,
    /// Publish and restore partition state through `<topic>.state`, and follow the other
    /// instances' partitions from it.
    pub state_topic: bool,
    /// librdkafka properties passed through verbatim.
    pub kafka: BTreeMap<String, String>,
    /// The alert engine's receivers and timing.
    pub alerts: AlertSettings,
    /// Each setting's source, by key, for `config show` and start-up logs.
    pub sources: BTreeMap<&'static str, Source>,
}

impl ServiceConfig {
    /// Every default, in one place.
    pub fn defaults() -> Self {
        Self {
            brokers: None,
            group_id: "motstream".into(),
            topics: vec!["mot.interactions".into()],
            dlq_topic: "mot.interactions.dlq".into(),
            catalog: None,
            retention: Duration::from_secs(3 * 86_400),
            lateness: Duration::from_secs(300),
            max_future_skew: Duration::from_secs(300),
            grpc_listen: ([127, 0, 0, 1], 50051).into(),
            grpc_max_watchers: 4096,
            grpc_watch_buffer: 1024,
            grpc_tls_cert: None,
            grpc_tls_key: None,
            grpc_token_file: None,
            metrics_listen: ([127, 0, 0, 1], 9464).into(),
            dedup_window: None,
            exporter: true,
            state_topic: true,
            kafka: BTreeMap::new(),
            alerts: Default::default(),
            sources: BTreeMap::new(),
        }
    }

    /// Each setting's default as `--help` shows it, by flag id: taken from [`Self::defaults`],
    /// so the help text never repeats a value. Settings unset by default are absent.
    pub fn default_texts() -> Vec<(&'static str, String)> {
        let d = Self::defaults();
        let a = AlertSettings::default();
        let mut v = vec![
            ("group_id", d.group_id),
            ("topics", d.topics.join(",")),
            ("dlq_topic", d.dlq_topic),
            ("retention", short_duration(d.retention)),
            ("lateness", short_duration(d.lateness)),
            ("max_future_skew", short_duration(d.max_future_skew)),
            ("grpc_listen", d.grpc_listen.to_string()),
            ("grpc_max_watchers", d.grpc_max_watchers.to_string()),
            ("grpc_watch_buffer", d.grpc_watch_buffer.to_string()),
            ("metrics_listen", d.metrics_listen.to_string()),
            ("exporter", d.exporter.to_string()),
            ("state_topic", d.state_topic.to_string()),
            ("alert_tick", short_duration(a.tick)),
            ("alert_resend", short_duration(a.resend)),
            ("alert_resolve_hold", short_duration(a.resolve_hold)),
            ("alert_min_coverage", a.min_coverage.to_string()),
        ];
        if let Some(t) = a.topic {
            v.push(("alerts_topic", t));
        }
        v
    }

    /// The defaults with `brokers` set: for benchmarks and tests that start parts in-process.
    pub fn for_brokers(brokers: &str) -> Self {
        Self {
            brokers: Some(brokers.to_owned()),
            ..Self::defaults()
        }
    }

    /// Resolves the effective configuration. `matches` are the subcommand's own, so that each
    /// `key = value  # source` lines, TOML-shaped, secrets in `kafka` properties masked.
    pub fn render(&self) -> String {
        let src = |k: &str| self.sources.get(k).copied().unwrap_or(Source::Default);
        let mut out = String::new();
        let mut line = |k: &'static str, v: String| {
            out.push_str(&format!("{k} = {v}  # {}\n", src(k)).replace(",  # ", ", from "))
        };
        line(
            "brokers",
            self.brokers.as_ref().map_or_else(
                || "\"\"  # unset: the embedded broker,".into(),
                |b| format!("{b:?}"),
            ),
        );
        line("group_id", format!("{:?}", self.group_id));
        line("topics", format!("{:?}", self.topics));
        line("dlq_topic", format!("{:?}", self.dlq_topic));
        line(
            "catalog",
            self.catalog.as_ref().map_or_else(
                || "\"\"  # unset: the built-in airline example,".into(),
                |c| format!("{:?}", c.display().to_string()),
            ),
        );
        line("retention", format!("{:?}", short_duration(self.retention)));
        line("lateness", format!("{:?}", short_duration(self.lateness)));
        line(
            "max_future_skew",
            format!("{:?}", short_duration(self.max_future_skew)),
        );
        line("grpc_listen", format!("{:?}", self.grpc_listen.to_string()));
        line("grpc_max_watchers", self.grpc_max_watchers.to_string());
        line("grpc_watch_buffer", self.grpc_watch_buffer.to_string());
        let path = |p: &Option<PathBuf>, unset: &str| {
            p.as_ref().map_or_else(
                || format!("\"\"  # unset: {unset},"),
                |p| format!("{:?}", p.display().to_string()),
            )
        };
        line("grpc_tls_cert", path(&self.grpc_tls_cert, "plaintext"));
        line("grpc_tls_key", path(&self.grpc_tls_key, "plaintext"));
        line(
            "grpc_token_file",
            path(&self.grpc_token_file, "no token check"),
        );
        line(
            "metrics_listen",
            format!("{:?}", self.metrics_listen.to_string()),
        );
        line(
            "dedup_window",
            self.dedup_window.map_or_else(
                || "\"\"  # unset: off,".into(),
                |d| format!("{:?}", short_duration(d)),
            ),
        );
        line("exporter", self.exporter.to_string());
        line("state_topic", self.state_topic.to_string());
        out.push_str(&format!("[kafka]  # {}\n", src("kafka_properties")));
        for (k, v) in &self.kafka {
            let secret = ["password", "secret", "key"].iter().any(|s| k.contains(s));
            out.push_str(&format!(
                "{k:?} = {:?}\n",
                if secret { "***" } else { v.as_str() }
            ));
        }
        out.push_str(&self.alerts.render(src));
        out
    }
}
