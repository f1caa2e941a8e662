//! The motstream service and command-line tool: everything with I/O (files, Kafka, servers)
//! lives here or in the crates it wires together; the domain logic does not.

pub mod catalog_cmd;
pub mod cli;
pub mod config;
pub mod logging;
