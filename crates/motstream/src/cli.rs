//! The command line. Each subcommand's flags also read `MOTSTREAM_*` environment variables;
//! service settings can come from a config file too (flags > env > file > defaults).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServiceArgs;
use crate::logging::LogFormat;

/// motstream: every customer interaction as live operational truth.
#[derive(Debug, Parser)]
#[command(name = "motstream", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "MOTSTREAM_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with catalog files.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Show the effective service configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
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
