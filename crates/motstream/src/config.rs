//! Resolves the service configuration from flags, `MOTSTREAM_*` environment variables and a TOML config
//! file, in that precedence, over the defaults defined here and nowhere else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use motstream_server::config::{ServiceConfig, Source};
use serde::Deserialize;

use crate::cli::ConfigCmd;

pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration such as 90s or 5m: {e}"))
}

/// Settings shared by every command that runs the pipeline. Each flag has an environment
/// variable; anything unset falls back to the config file, then to the default.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// TOML config file; its keys are these flags' long names with `_` for `-`.
    #[arg(long, env = "MOTSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers: required by `run`. The no-argument default runs its own
    /// embedded broker and refuses this.
    #[arg(long, env = "MOTSTREAM_BROKERS")]
    pub brokers: Option<String>,
    /// Consumer group id.
    #[arg(long, env = "MOTSTREAM_GROUP_ID")]
    pub group_id: Option<String>,
    /// Topics to consume, comma-separated.
    #[arg(long, env = "MOTSTREAM_TOPICS", value_delimiter = ',')]
    pub topics: Option<Vec<String>>,
    /// Dead-letter topic for rejected events.
    #[arg(long, env = "MOTSTREAM_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Catalog file. Unset: the airline example built into the binary.
    #[arg(long, env = "MOTSTREAM_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// How much history the windows keep.
    #[arg(long, env = "MOTSTREAM_RETENTION", value_parser = duration)]
    pub retention: Option<Duration>,
    /// How late an event may arrive and still land in its own bucket.
    #[arg(long, env = "MOTSTREAM_LATENESS", value_parser = duration)]
    pub lateness: Option<Duration>,
    /// How far ahead of this clock an event's time may be.
    #[arg(long, env = "MOTSTREAM_MAX_FUTURE_SKEW", value_parser = duration)]
    pub max_future_skew: Option<Duration>,
    /// gRPC query service address.
    #[arg(long, env = "MOTSTREAM_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// Open gRPC watch streams (WatchMots, WatchAlerts) allowed at once.
    #[arg(long, env = "MOTSTREAM_GRPC_MAX_WATCHERS")]
    pub grpc_max_watchers: Option<usize>,
    /// Messages buffered per gRPC watcher before it is dropped as too slow.
    #[arg(long, env = "MOTSTREAM_GRPC_WATCH_BUFFER")]
    pub grpc_watch_buffer: Option<usize>,
    /// PEM certificate chain for gRPC over TLS (with --grpc-tls-key); unset: plaintext.
    #[arg(long, env = "MOTSTREAM_GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key for gRPC over TLS (with --grpc-tls-cert).
    #[arg(long, env = "MOTSTREAM_GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<PathBuf>,
    /// File holding the bearer token gRPC queries must present; unset: no check.
    #[arg(long, env = "MOTSTREAM_GRPC_TOKEN_FILE")]
    pub grpc_token_file: Option<PathBuf>,
    /// Prometheus /metrics and health address.
    #[arg(long, env = "MOTSTREAM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Drop events whose id was seen in the same partition within this much event time (for
    /// emitters without idempotent producers); unset: off.
    #[arg(long, env = "MOTSTREAM_DEDUP_WINDOW", value_parser = duration)]
    pub dedup_window: Option<Duration>,
    /// Serve Prometheus /metrics with per-MOT series. `false` also stops
    /// keeping the exporter's per-event counters (for measuring what the exporter costs).
    #[arg(long, env = "MOTSTREAM_EXPORTER")]
    pub exporter: Option<bool>,
    /// Publish each partition's window state to the compacted topic `<topic>.state`, restore
    /// assigned partitions from it instead of replaying the retention, and follow the other
    /// instances' partitions for a deployment-wide view.
    #[arg(long, env = "MOTSTREAM_STATE_TOPIC")]
    pub state_topic: Option<bool>,
    /// Extra librdkafka property (repeatable), e.g. `security.protocol=SASL_SSL`; overrides the
    /// config file's `[kafka]` table key by key.
    #[arg(long = "kafka-property", env = "MOTSTREAM_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = motstream_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    #[command(flatten)]
    pub alerts: crate::alerts::AlertArgs,
}

/// The config file, as written. Unknown keys are errors, reported with their line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    brokers: Option<String>,
    group_id: Option<String>,
    topics: Option<Vec<String>>,
    dlq_topic: Option<String>,
    catalog: Option<PathBuf>,
    retention: Option<String>,
    lateness: Option<String>,
    max_future_skew: Option<String>,
    grpc_listen: Option<SocketAddr>,
    grpc_max_watchers: Option<usize>,
    grpc_watch_buffer: Option<usize>,
    grpc_tls_cert: Option<PathBuf>,
    grpc_tls_key: Option<PathBuf>,
    grpc_token_file: Option<PathBuf>,
    metrics_listen: Option<SocketAddr>,
    dedup_window: Option<String>,
    exporter: Option<bool>,
    state_topic: Option<bool>,
    #[serde(default)]
    kafka: BTreeMap<String, String>,
    #[serde(default)]
    alerts: crate::alerts::AlertFile,
}

pub(crate) struct Resolver<'m> {
    matches: &'m ArgMatches,
    sources: BTreeMap<&'static str, Source>,
}

impl Resolver<'_> {
    pub(crate) fn pick<T>(
        &mut self,
        key: &'static str,
        arg: Option<T>,
        file: Option<T>,
        default: T,
    ) -> T {
        let (v, s) = match (arg, file) {
            (Some(v), _) => match self.matches.value_source(key) {
                Some(ValueSource::EnvVariable) => (v, Source::Env),
                _ => (v, Source::Flag),
            },
            (None, Some(v)) => (v, Source::File),
            (None, None) => (default, Source::Default),
        };
        self.sources.insert(key, s);
        v
    }

    /// [`Resolver::pick`] for a setting that may stay unset: `default` is usually `None`.
    pub(crate) fn pick_opt<T>(
        &mut self,
        key: &'static str,
        arg: Option<T>,
        file: Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        self.pick(key, arg.map(Some), file.map(Some), default)
    }
}

pub(crate) fn file_duration(
    path: &Path,
    key: &str,
    v: Option<String>,
) -> anyhow::Result<Option<Duration>> {
    v.map(|s| duration(&s).map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display())))
        .transpose()
}

/// Resolves the effective configuration. `matches` are the subcommand's own, so that each
/// value's source (flag or environment) is known.
pub fn resolve(args: &ServiceArgs, matches: &ArgMatches) -> anyhow::Result<ServiceConfig> {
    let (file, path) = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config file {}", p.display()))?;
            // toml's message carries the line, column and key of the problem.
            let f: FileConfig =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            (f, p.clone())
        }
        None => (FileConfig::default(), PathBuf::new()),
    };
    let retention = file_duration(&path, "retention", file.retention)?;
    let lateness = file_duration(&path, "lateness", file.lateness)?;
    let skew = file_duration(&path, "max_future_skew", file.max_future_skew)?;
    let dedup = file_duration(&path, "dedup_window", file.dedup_window)?;
    let mut r = Resolver {
        matches,
        sources: BTreeMap::new(),
    };
    let brokers = r.pick_opt("brokers", args.brokers.clone(), file.brokers, None);
    let catalog = r.pick_opt("catalog", args.catalog.clone(), file.catalog, None);
    let mut kafka = file.kafka;
    let kafka_source = if args.kafka_properties.is_empty() {
        if kafka.is_empty() {
            Source::Default
        } else {
            Source::File
        }
    } else if matches.value_source("kafka_properties") == Some(ValueSource::EnvVariable) {
        Source::Env
    } else {
        Source::Flag
    };
    kafka.extend(args.kafka_properties.iter().cloned());
    let alerts = crate::alerts::resolve(&args.alerts, file.alerts, &path, &mut r)?;
    let d = ServiceConfig::defaults();
    let mut cfg = ServiceConfig {
        brokers,
        group_id: r.pick("group_id", args.group_id.clone(), file.group_id, d.group_id),
        topics: r.pick("topics", args.topics.clone(), file.topics, d.topics),
        dlq_topic: r.pick(
            "dlq_topic",
            args.dlq_topic.clone(),
            file.dlq_topic,
            d.dlq_topic,
        ),
        catalog,
        retention: r.pick("retention", args.retention, retention, d.retention),
        lateness: r.pick("lateness", args.lateness, lateness, d.lateness),
        max_future_skew: r.pick(
            "max_future_skew",
            args.max_future_skew,
            skew,
            d.max_future_skew,
        ),
        grpc_listen: r.pick(
            "grpc_listen",
            args.grpc_listen,
            file.grpc_listen,
            d.grpc_listen,
        ),
        grpc_max_watchers: r.pick(
            "grpc_max_watchers",
            args.grpc_max_watchers,
            file.grpc_max_watchers,
            d.grpc_max_watchers,
        ),
        grpc_watch_buffer: r.pick(
            "grpc_watch_buffer",
            args.grpc_watch_buffer,
            file.grpc_watch_buffer,
            d.grpc_watch_buffer,
        ),
        grpc_tls_cert: r.pick_opt(
            "grpc_tls_cert",
            args.grpc_tls_cert.clone(),
            file.grpc_tls_cert,
            None,
        ),
        grpc_tls_key: r.pick_opt(
            "grpc_tls_key",
            args.grpc_tls_key.clone(),
            file.grpc_tls_key,
            None,
        ),
        grpc_token_file: r.pick_opt(
            "grpc_token_file",
            args.grpc_token_file.clone(),
            file.grpc_token_file,
            None,
        ),
        metrics_listen: r.pick(
            "metrics_listen",
            args.metrics_listen,
            file.metrics_listen,
            d.metrics_listen,
        ),
        dedup_window: r.pick_opt("dedup_window", args.dedup_window, dedup, d.dedup_window),
        exporter: r.pick("exporter", args.exporter, file.exporter, d.exporter),
        state_topic: r.pick(
            "state_topic",
            args.state_topic,
            file.state_topic,
            d.state_topic,
        ),
        kafka,
        alerts,
        sources: BTreeMap::new(),
    };
    r.sources.insert("kafka_properties", kafka_source);
    cfg.sources = r.sources;
    if cfg.topics.iter().any(|t| t.trim().is_empty()) || cfg.topics.is_empty() {
        anyhow::bail!("topics: must name at least one topic, none empty");
    }
    if cfg.grpc_max_watchers == 0 || cfg.grpc_watch_buffer == 0 {
        anyhow::bail!("grpc_max_watchers, grpc_watch_buffer: must be at least 1");
    }
    if cfg.grpc_tls_cert.is_some() != cfg.grpc_tls_key.is_some() {
        anyhow::bail!("grpc_tls_cert, grpc_tls_key: set both for TLS, or neither");
    }
    if cfg.topics.contains(&cfg.dlq_topic) {
        anyhow::bail!(
            "dlq_topic: {:?} is also a consumed topic; rejected events would loop",
            cfg.dlq_topic
        );
    }
    Ok(cfg)
}

/// `motstream config show`.
pub fn show(cmd: &ConfigCmd, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let ConfigCmd::Show(args) = cmd;
    let leaf = matches
        .subcommand_matches("config")
        .and_then(|m| m.subcommand_matches("show"))
        .context("argument matches for `config show`")?;
    let cfg = resolve(args, leaf)?;
    #[allow(clippy::print_stdout)]
    {
        print!("{}", cfg.render());
    }
    Ok(ExitCode::SUCCESS)
}
