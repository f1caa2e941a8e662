//! `motstream loadgen`: the simulator's journeys into any Kafka at the asked rate (or as fast as
//! it goes), for the asked count or duration, with progress, and a verdict on the rate.

mod delivery;
mod plan;
mod report;
mod send;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use motstream_core::Encoding;
use motstream_sim::Simulator;
use rdkafka::producer::Producer;

use plan::{Limits, Pace};
use report::{Final, Snapshot};
use send::{Progress, Target};

/// Exit status when some events handed to the producer were not delivered.
pub const EXIT_UNDELIVERED: u8 = 3;

/// How long to wait, once sending stops, for the last acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a progress line is printed (redrawn in place on a terminal).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

const EXIT_CODES: &str = "\
Exit status:
  0  every event sent was acknowledged by the broker (also when --duration was up before
     --count, or the asked rate was not reached: the final line says so)
  1  loadgen could not run (bad catalog, scenario or --rate, no producer) or its sending
     thread panicked
  2  bad command line
  3  some events were not delivered (failed, or not acknowledged within 60 s)";

/// Wire encoding of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Proto,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = EXIT_CODES)]
pub struct LoadgenArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "MOTSTREAM_BROKERS")]
    pub brokers: String,
    /// Topic to produce to.
    #[arg(long, default_value = "mot.interactions")]
    pub topic: String,
    /// Events per second, on the simulator's schedule (steady: no daily wave); 0 sends as fast
    /// as the producer and broker take them.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Stop after this long, e.g. 60s or 5m. With --count, whichever comes first. Default:
    /// 60s without --count, no limit with it.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Send exactly this many events.
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
    /// Extra librdkafka producer property (repeatable), e.g. compression.type=none.
    #[arg(long = "kafka-property", value_parser = motstream_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

#[allow(clippy::print_stderr)]
fn print(line: &str, tty: bool) {
    if tty {
        eprint!("\r{line:<130}");
    } else {
        eprintln!("{line}");
    }
}

/// Runs `work` on its own thread, calling `tick` every `every` until it ends, and returns
/// what it returned, or the message it panicked with. Returns as soon as the thread ends,
/// however it ends: the thread holds a channel's only sender, which unwinding drops too.
fn supervise<T: Send>(
    work: impl FnOnce() -> T + Send,
    every: Duration,
    mut tick: impl FnMut(),
) -> Result<T, String> {
    std::thread::scope(|s| {
        let (alive, ended) = std::sync::mpsc::channel::<()>();
        let worker = s.spawn(move || {
            let _alive = alive;
            work()
        });
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(every) {
            tick();
        }
        worker.join().map_err(|payload| {
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned())
        })
    })
}

/// Produces until the count or duration, waits for every acknowledgement and prints the
/// final line. Exits 0 when every event sent was delivered, [`EXIT_UNDELIVERED`] when not.
pub fn run(args: &LoadgenArgs) -> anyhow::Result<ExitCode> {
    let pace = Pace::from_rate(args.rate).map_err(anyhow::Error::msg)?;
    let limits = Limits::new(args.count, args.duration);
    let catalog = Arc::new(crate::files::load_catalog_or_builtin(
        args.catalog.as_deref(),
    )?);
    let scenario = match &args.scenario {
        Some(_) => crate::files::load_scenario(args.scenario.as_ref(), &catalog)?,
        None => motstream_sim::Scenario::none(),
    };
    let start_ms = crate::now_ms();
    let mut sim = Simulator::new(catalog, scenario, pace.sim_config(args.seed), start_ms)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let extra: BTreeMap<String, String> = args.kafka_properties.iter().cloned().collect();
    let producer = send::producer(&args.brokers, &extra).context("creating the producer")?;
    let tally = Arc::clone(&producer.context().0);
    let progress = Progress::default();
    let to = Target {
        producer: &producer,
        topic: &args.topic,
        encoding: match args.format {
            Format::Json => Encoding::Json,
            Format::Proto => Encoding::Protobuf,
        },
    };
    let tty = std::io::stderr().is_terminal();
    let begun = Instant::now();
    let snapshot = || {
        let elapsed = begun.elapsed();
        let sim_ms = progress.sim_ms.load(Ordering::Relaxed);
        Snapshot {
            elapsed,
            // Relaxed: progress counters; a slightly stale value only delays a report.
            sent: progress.sent.load(Ordering::Relaxed),
            bytes: progress.bytes.load(Ordering::Relaxed),
            acked: tally.acked.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
            lag_ms: u64::try_from(elapsed.as_millis())
                .unwrap_or(u64::MAX)
                .saturating_sub(sim_ms),
        }
    };
    let mut prev = Snapshot::default();
    let outcome = supervise(
        || send::run(&mut sim, start_ms, to, pace, limits, &progress),
        PROGRESS_EVERY,
        || {
            let now = snapshot();
            print(&report::progress(pace, limits, &now, &prev), tty);
            prev = now;
        },
    );
    let sending = begun.elapsed();
    let flushed = producer.flush(FLUSH_TIMEOUT);
    if tty {
        // Keep the last progress line; the final line goes below it.
        print_line("");
    }
    let (acked, failed) = (
        tally.acked.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    let sent = match outcome {
        Ok(sent) => sent,
        Err(panic) => anyhow::bail!(
            "loadgen's sending thread panicked ({panic}) after handing over {} events, of \
             which {acked} were acknowledged",
            progress.sent.load(Ordering::Relaxed)
        ),
    };
    print_line(
        &Final {
            topic: &args.topic,
            pace,
            limits,
            sent,
            sending,
            acked,
            failed,
            p50_us: tally.latency.quantile(0.50),
            p99_us: tally.latency.quantile(0.99),
        }
        .line(),
    );
    let dropped = sim.stats().dropped_arrivals;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "the simulator dropped arriving journeys: more than {} were in flight",
            plan::MAX_JOURNEYS
        );
    }
    if failed > 0 || acked < sent.events {
        let last = tally.last_error.lock().ok().and_then(|e| e.clone());
        let why = match (&flushed, last) {
            (Err(e), _) => format!("not all acknowledged within {FLUSH_TIMEOUT:?}: {e}"),
            (Ok(()), Some(e)) => format!("last error: {e}"),
            (Ok(()), None) => "no error reported".to_owned(),
        };
        print_line(&format!(
            "error: {} of {} events were not delivered ({why})",
            sent.events - acked.min(sent.events),
            sent.events
        ));
        return Ok(ExitCode::from(EXIT_UNDELIVERED));
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stderr)]
fn print_line(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_is_an_error_with_its_message_not_a_hang() {
        let mut ticks = 0;
        let r: Result<u64, String> = supervise(
            || panic!("simulated failure"),
            Duration::from_secs(3_600),
            || ticks += 1,
        );
        assert_eq!(r, Err("simulated failure".to_owned()));
        assert_eq!(ticks, 0, "returned when the thread ended, not at a tick");
        let r: Result<u64, String> =
            supervise(|| panic!("{} events", 7), Duration::from_secs(3_600), || {});
        assert_eq!(r, Err("7 events".to_owned()));
    }

    #[test]
    fn a_finishing_worker_returns_its_value() {
        assert_eq!(supervise(|| 42, Duration::from_secs(3_600), || {}), Ok(42));
    }
}
