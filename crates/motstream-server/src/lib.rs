//! The motstream service: its state (the aggregator behind ingest, the alert feed), the HTTP
//! server (/healthz, /readyz, /status), the Prometheus exporter, the gRPC query service, alert
//! delivery (Alertmanager, webhook, Kafka), the embedded default, and [`service::Service`],
//! which starts and stops all of it.
//!
//! Everything with I/O on the serving side lives here; the domain logic (catalog, windows,
//! alert rules) lives in the crates this one wires together. Never parses a command line:
//! the binary resolves [`config::ServiceConfig`] and hands it in.

pub mod alert_feed;
pub mod alerting;
pub mod banner;
pub mod config;
pub mod coverage;
pub mod embedded;
pub mod exporter;
pub mod grpc;
pub mod http;
pub mod reject_log;
pub mod replicas;
pub mod service;
pub mod snapshots;
pub mod state;

pub use motstream_loadgen::now_ms;
pub use service::{Service, run, signal};
