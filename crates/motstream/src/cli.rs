//! The command line. Each subcommand's flags also read `MOTSTREAM_*` environment variables;
//! service settings can come from a config file too (flags > env > file > defaults).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServiceArgs;
use crate::embedded::DemoArgs;
use crate::loadgen::LoadgenArgs;
use crate::logging::LogFormat;

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
    Mot(crate::client::MotCmd),
    /// Query experiences from a running service over gRPC.
    #[command(subcommand)]
    Experience(crate::client::ExperienceCmd),
    /// A live table of MOT statuses from a running service (gRPC WatchMots).
    Watch(crate::client::WatchArgs),
    /// Alert transitions from a running service; `--follow` keeps streaming new ones.
    Alerts(crate::client::AlertsArgs),
    /// MOT ids seen in events but absent from the catalog.
    Unidentified(crate::client::UnidentifiedArgs),
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
