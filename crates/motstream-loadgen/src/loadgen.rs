//! `motstream loadgen`: simulated journeys into any Kafka at a steady rate, with progress.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use motstream_core::Encoding;
use motstream_sim::{SimConfig, Simulator};
use rdkafka::producer::Producer;

use crate::produce::{self, Limit};

/// Wire encoding of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Proto,
}

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "MOTSTREAM_BROKERS")]
    pub brokers: String,
    /// Topic to produce to.
    #[arg(long, default_value = "mot.interactions")]
    pub topic: String,
    /// Interactions per second (steady: no daily wave).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long to produce, e.g. 60s or 5m.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many events (whichever of count and duration comes first).
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(long, value_enum, default_value = "proto")]
    pub format: Format,
    /// Catalog the journeys follow; default: the built-in airline example.
    #[arg(long, env = "MOTSTREAM_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Scenario with incidents; default: none (steady, healthy load).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Extra librdkafka producer property (repeatable).
    #[arg(long = "kafka-property", value_parser = motstream_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

#[allow(clippy::print_stderr)]
fn progress(line: &str, tty: bool) {
    if tty {
        eprint!("\r{line:<100}");
    } else {
        eprintln!("{line}");
    }
}

/// Produces until the duration or count, then waits for every acknowledgement. Fails if any
/// event could not be delivered.
pub fn run(args: &LoadgenArgs) -> anyhow::Result<()> {
    let catalog = Arc::new(crate::files::load_catalog_or_builtin(
        args.catalog.as_deref(),
    )?);
    let scenario = match &args.scenario {
        Some(_) => crate::files::load_scenario(args.scenario.as_ref(), &catalog)?,
        None => motstream_sim::Scenario::none(),
    };
    let cfg = SimConfig {
        seed: args.seed,
        events_per_sec: args.rate,
        wave_amplitude: 0.0,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(Arc::clone(&catalog), scenario, cfg, crate::now_ms())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let extra: BTreeMap<String, String> = args.kafka_properties.iter().cloned().collect();
    let producer = produce::producer(&args.brokers, &extra).context("creating the producer")?;
    let encoding = match args.format {
        Format::Json => Encoding::Json,
        Format::Proto => Encoding::Protobuf,
    };
    let deliveries = Arc::clone(&producer.context().0);
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let start = Instant::now();
    let limit = Limit {
        until: Some(start + args.duration),
        count: args.count,
    };
    let tty = std::io::stderr().is_terminal();
    let total = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let n = produce::run(
                &mut sim,
                &producer,
                &args.topic,
                encoding,
                limit,
                &stop,
                &sent,
            );
            // Release pairs with the reporter's Acquire load below.
            stop.store(true, Ordering::Release);
            n
        });
        // A terminal line is redrawn in place every 200 ms; a log gets a line every 5 s.
        let mut printed: Option<Instant> = None;
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(200));
            if !tty && printed.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                continue;
            }
            printed = Some(Instant::now());
            let (n, acked, failed) = (
                sent.load(Ordering::Relaxed),
                deliveries.acked.load(Ordering::Relaxed),
                deliveries.failed.load(Ordering::Relaxed),
            );
            let secs = start.elapsed().as_secs_f64();
            let left = args.duration.as_secs_f64() - secs;
            let eta = match args.count {
                Some(c) if n > 0 => left.min((c - n.min(c)) as f64 / (n as f64 / secs)),
                _ => left,
            };
            progress(
                &format!(
                    "loadgen: {n} sent, {acked} acked, {failed} errors, {:.0}/s, ETA {:.0}s",
                    n as f64 / secs.max(0.001),
                    eta.max(0.0)
                ),
                tty,
            );
        }
        worker.join().unwrap_or(0)
    });
    let flushed = produce::flush(&producer, Duration::from_secs(60));
    let (acked, failed) = (
        deliveries.acked.load(Ordering::Relaxed),
        deliveries.failed.load(Ordering::Relaxed),
    );
    let secs = start.elapsed().as_secs_f64();
    if tty {
        progress("", true);
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "\rloadgen: {total} sent to {} in {secs:.1}s ({:.0}/s), {acked} acknowledged, {failed} failed",
            args.topic,
            total as f64 / secs.max(0.001)
        );
    }
    if let Ok(last) = deliveries.last_error.lock()
        && let Some(e) = last.as_ref()
    {
        tracing::warn!(error = %e, "last delivery error");
    }
    flushed.context("waiting for acknowledgements")?;
    if failed > 0 || acked < total {
        anyhow::bail!(
            "{} of {total} events were not delivered",
            total - acked.min(total)
        );
    }
    Ok(())
}
