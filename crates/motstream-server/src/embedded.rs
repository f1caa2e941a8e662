//! The no-argument default: an in-process Kafka-protocol broker (librdkafka's mock cluster),
//! the journey simulator producing into it, and the whole service consuming from it, so that
//! one command shows motstream working end to end.
//!
//! The mock broker keeps about 5 MiB per partition (a librdkafka constant) and drops older
//! messages beyond that. The live pipeline keeps up, so nothing it needs is dropped; the broker
//! lives in this process, so a restart starts from an empty log anyway. It is a demo and a
//! playground, not a store. Its cost grows with the number of produce batches it keeps, which
//! is why the simulator batches for a second here (see [`DEFAULT_LINGER_MS`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use motstream_core::Encoding;
use motstream_sim::{SimConfig, Simulator};
use rdkafka::mocking::MockCluster;
use tracing::info;

use crate::config::ServiceConfig;
use crate::service::{Service, load_catalog, signal};
use motstream_loadgen::files::load_scenario;
use motstream_loadgen::produce::{self, Limit};

/// Settings of the embedded default, beside the service's own (the binary's `DemoArgs`
/// document each one and give the defaults).
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// Simulated interactions per second.
    pub rate: f64,
    /// Scenario file scripting incidents; `None`: the catalog's default scenario.
    pub scenario: Option<PathBuf>,
    /// Simulator seed: the same seed gives the same journeys.
    pub seed: u64,
    /// Partitions of the embedded topic.
    pub partitions: i32,
    /// How long the simulator's producer batches per partition, in ms (see
    /// [`DEFAULT_LINGER_MS`]).
    pub linger_ms: u32,
}

/// How long the simulator's producer batches per partition on the embedded broker.
///
/// The mock broker keeps each partition's log as a list of produce batches and finds a fetch
/// offset by walking that list from its oldest batch (librdkafka's `rd_kafka_mock_msgset_find`),
/// and it answers each fetch with one batch. Its only bound is 5 MiB or 100 000 batches per
/// partition, and no API or property (`test.mock.*` has only the broker count and RTT) changes
/// that, nor does it implement DeleteRecords. So its CPU is (batches fetched per second) x
/// (batches kept per partition), and grows until the 5 MiB bound is reached. With P
/// partitions, a linger of L s and R events/s, that is P/L walks a second of a list of up to
/// 5 MiB / (R L / P events) batches: it grows with P squared. With the 5 ms linger of
/// `produce::producer` nearly every event is its own batch, and the broker thread went from
/// 0.8% of a core at start to 47.6% after 1 h 51 min (issue 18). Batching for a second and
/// [`DEFAULT_PARTITIONS`] keep the lists short and reach the bound within minutes, so the
/// demo's CPU stays flat, for at most a second's more delay in a demo whose windows are
/// minutes.
pub const DEFAULT_LINGER_MS: u32 = 1000;

/// Partitions of the embedded topic. Two show partitioned state (and its merge by addition)
/// while keeping the mock broker flat (see [`DEFAULT_LINGER_MS`]): measured over 70 minutes
/// at 100 events/s, its thread used 0.6-0.9 s per 10 minutes with 2 partitions, and went from
/// 1.2 s to 3.5 s per 10 minutes over its first 50 minutes with 8, the old default.
pub const DEFAULT_PARTITIONS: i32 = 2;

fn embedded_producer_overrides(linger_ms: u32) -> std::collections::BTreeMap<String, String> {
    [("linger.ms".to_string(), linger_ms.to_string())]
        .into_iter()
        .collect()
}

/// Runs the embedded default until SIGINT or SIGTERM.
pub fn run(mut cfg: ServiceConfig, demo: &DemoSettings) -> anyhow::Result<()> {
    if cfg.brokers.is_some() {
        anyhow::bail!(
            "brokers: the no-argument default runs its own broker. To consume from your Kafka use \
             `motstream run --brokers ...`; to feed it, `motstream loadgen --brokers ...`"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        // The mock cluster must outlive everything that talks to it; it stays on this thread.
        let cluster = MockCluster::new(1).context("starting the embedded Kafka broker")?;
        let bootstrap = cluster.bootstrap_servers();
        for t in &cfg.topics {
            cluster
                .create_topic(t, demo.partitions, 1)
                .with_context(|| format!("creating topic {t}"))?;
        }
        cluster
            .create_topic(&cfg.dlq_topic, 1, 1)
            .context("creating the dead-letter topic")?;
        if let Some(t) = &cfg.alerts.topic {
            cluster
                .create_topic(t, 1, 1)
                .context("creating the alerts topic")?;
        }
        cfg.brokers = Some(bootstrap.clone());
        // One in-memory instance: nothing to restore after a restart and no peer to follow;
        // and the mock cluster answers topic creation with configs by timing out.
        cfg.state_topic = false;
        let service = Service::start(&cfg).await?;

        let catalog = Arc::new(load_catalog(&cfg)?);
        let scenario = load_scenario(demo.scenario.as_ref(), &catalog)?;
        let sim_cfg = SimConfig {
            seed: demo.seed,
            events_per_sec: demo.rate,
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(Arc::clone(&catalog), scenario, sim_cfg, crate::now_ms())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let producer = produce::producer(&bootstrap, &embedded_producer_overrides(demo.linger_ms))
            .context("creating the simulator's producer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let sim_thread = {
            let (stop, topic) = (Arc::clone(&stop), cfg.topics[0].clone());
            std::thread::Builder::new()
                .name("simulator".into())
                .spawn(move || {
                    let sent = AtomicU64::new(0);
                    produce::run(
                        &mut sim,
                        &producer,
                        &topic,
                        Encoding::Protobuf,
                        Limit {
                            until: None,
                            count: None,
                        },
                        &stop,
                        &sent,
                    );
                    let _ = produce::flush(&producer, std::time::Duration::from_secs(5));
                })?
        };
        let http = service.http_addr;
        let grpc = service.grpc_addr;
        let topic = &cfg.topics[0];
        info!(broker = %bootstrap, %http, %grpc, rate = demo.rate, "embedded default running");
        let exe = crate::banner::self_command();
        let banner = crate::banner::Banner {
            exe: &exe,
            rate: demo.rate,
            bootstrap: &bootstrap,
            topic,
            dlq: &cfg.dlq_topic,
            http,
            grpc,
        };
        #[allow(clippy::print_stdout)]
        {
            println!("{}", banner.render());
        }
        signal().await;
        // Release pairs with the simulator loop's Acquire load.
        stop.store(true, Ordering::Release);
        let _ = tokio::task::spawn_blocking(move || sim_thread.join()).await;
        service.stop().await?;
        drop(cluster);
        info!("embedded default stopped");
        Ok(())
    })
}
