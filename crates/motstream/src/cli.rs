//! The command line. Each subcommand's flags also read `MOTSTREAM_*` environment variables;
//! service settings can come from a config file too (flags > env > file > defaults).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServiceArgs;
use crate::logging::LogFormat;
use motstream_loadgen::loadgen::LoadgenArgs;
use motstream_server::embedded::{DEFAULT_LINGER_MS, DEFAULT_PARTITIONS, DemoSettings};

/// motstream: every customer interaction as live operational truth.
///
/// With no subcommand it runs the embedded default: an in-process Kafka-protocol broker,
/// simulated journeys, and the whole pipeline with its servers on localhost.
#[derive(Debug, Parser)]
#[command(
    name = "motstream",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "MOTSTREAM_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// The service settings of the embedded default.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The simulator settings of the embedded default.
    #[command(flatten)]
    pub demo: DemoArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands. Parsed once per process, so the size difference between variants is
/// irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with catalog files.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Run the service: consume from Kafka, keep the windows, serve status and health.
    Run(ServiceArgs),
    /// Produce simulated journeys into a Kafka topic at a steady rate.
    Loadgen(LoadgenArgs),
    /// Show the effective service configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Query MOTs from a running service over gRPC (`mot get bag-drop`, `mot top --by burn`).
    #[command(subcommand)]
    Mot(motstream_client::MotCmd),
    /// Query experiences from a running service over gRPC.
    #[command(subcommand)]
    Experience(motstream_client::ExperienceCmd),
    /// A live table of MOT statuses from a running service (gRPC WatchMots).
    Watch(motstream_client::WatchArgs),
    /// Alert transitions from a running service; `--follow` keeps streaming new ones.
    Alerts(motstream_client::AlertsArgs),
    /// MOT ids seen in events but absent from the catalog.
    Unidentified(motstream_client::UnidentifiedArgs),
    /// Read the dead-letter topic: the latest rejected events and why, or counts by reason.
    #[command(subcommand)]
    Dlq(crate::dlq_cmd::DlqCmd),
}

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// Validate a catalog and print a summary; exits 1 naming file, line and field if invalid.
    Check(CatalogCheck),
}

#[derive(Debug, Args)]
pub struct CatalogCheck {
    /// The catalog file (YAML).
    pub file: PathBuf,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration and where each value came from.
    Show(ServiceArgs),
}

/// Settings of the embedded default, beside the service's own.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated interactions per second.
    #[arg(long, env = "MOTSTREAM_DEMO_RATE", default_value_t = 100.0)]
    pub rate: f64,
    /// Scenario file scripting incidents; default: the airline demo for the airline catalog.
    #[arg(long, env = "MOTSTREAM_DEMO_SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Simulator seed: the same seed gives the same journeys.
    #[arg(long, env = "MOTSTREAM_DEMO_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Partitions of the embedded topic. More make the embedded broker busier (see
    /// `motstream_server::embedded::DEFAULT_PARTITIONS`).
    #[arg(long, env = "MOTSTREAM_DEMO_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: i32,
    /// How long the simulator's producer batches per partition, in ms. Shorter means fresher
    /// windows but a busier embedded broker (see `motstream_server::embedded::DEFAULT_LINGER_MS`).
    #[arg(long, env = "MOTSTREAM_DEMO_LINGER_MS", default_value_t = DEFAULT_LINGER_MS)]
    pub linger_ms: u32,
}

impl DemoArgs {
    /// The embedded default's settings.
    pub fn settings(&self) -> DemoSettings {
        DemoSettings {
            rate: self.rate,
            scenario: self.scenario.clone(),
            seed: self.seed,
            partitions: self.partitions,
            linger_ms: self.linger_ms,
        }
    }
}

/// The command line with each setting's default appended to its help, from
/// `ServiceConfig::default_texts` (the one place defaults live), in every subcommand that has it.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    with_defaults(
        Cli::command(),
        &motstream_server::config::ServiceConfig::default_texts(),
    )
}

fn with_defaults(mut cmd: clap::Command, defaults: &[(&'static str, String)]) -> clap::Command {
    for (id, text) in defaults {
        if cmd.get_arguments().any(|a| a.get_id() == *id) {
            cmd = cmd.mut_arg(*id, |a| {
                let add = |h: Option<&clap::builder::StyledStr>| {
                    format!(
                        "{} [default: {text}]",
                        h.map(ToString::to_string).unwrap_or_default()
                    )
                };
                let long = a.get_long_help().map(|h| add(Some(h)));
                let short = add(a.get_help());
                let a = a.help(short);
                match long {
                    Some(l) => a.long_help(l),
                    None => a,
                }
            });
        }
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |s| with_defaults(s, defaults));
    }
    cmd
}
