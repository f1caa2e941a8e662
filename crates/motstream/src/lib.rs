//! The `motstream` command line: flags, environment and config file resolved into the
//! settings each subcommand's crate runs with. No service logic here: the service is
//! `motstream-server`, the query client `motstream-client`, the load generator
//! `motstream-loadgen`.

pub mod alerts;
pub mod catalog_cmd;
pub mod cli;
pub mod config;
pub mod dlq_cmd;
pub mod logging;
