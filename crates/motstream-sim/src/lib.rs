//! A deterministic journey simulator driven by the catalog: customers arrive per experience at a
//! time-varying Poisson rate scaled to a requested number of events per second, walk the
//! experience's MOTs in journey order, succeed, fail, retry or abandon, and produce the
//! interaction events operational systems would emit. A scenario file scripts incidents (a MOT,
//! optionally one channel, failing more often or slower for a while) so that a demo shows an
//! alert fire and resolve.
//!
//! This crate owns the simulated population and its events, nothing else. It must never do I/O
//! (the caller reads files and produces to Kafka), never read a clock (the caller passes the
//! time to [`Simulator::advance`]), and never depend on hash-map iteration order or any source
//! of randomness but its seed: the same seed, catalog, scenario, config and calls give the same
//! events.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use motstream_core::Catalog;
//! # use motstream_sim::{Scenario, SimConfig, Simulator};
//! # fn demo(catalog: Arc<Catalog>, now_ms: impl Fn() -> i64) -> Result<(), motstream_sim::SimError> {
//! let scenario = Scenario::default_for(&catalog);
//! let cfg = SimConfig { seed: 42, events_per_sec: 200.0, ..SimConfig::default() };
//! let mut sim = Simulator::new(catalog, scenario, cfg, now_ms())?;
//! let mut batch = Vec::new();
//! loop {
//!     sim.advance(now_ms(), &mut batch);
//!     for e in batch.drain(..) {
//!         // produce e.event, encoded with motstream_core::codec::encode, under key e.key
//!     }
//!     // sleep until sim.next_due_ms() or the next tick
//! }
//! # }
//! ```

mod arrivals;
mod behaviour;
mod config;
mod journey;
mod rng;
mod scenario;
mod sim;
#[cfg(test)]
mod tests_support;

use motstream_core::InteractionEvent;

pub use config::SimConfig;
pub use scenario::{AIRLINE_DEMO, Incident, Scenario, ScenarioError, ScenarioProblem};
pub use sim::Simulator;

/// The `producer_id` of every simulated event.
pub const PRODUCER_ID: &str = "motstream-sim";

/// One simulated event and the Kafka key to produce it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    /// The journey id (also in `event.journey_id`): the Kafka key, so that a journey's events
    /// stay in one partition, in order.
    pub key: String,
    /// The event. Ids are `sim-<seed>-e<n>` (events) and `sim-<seed>-j<n>` (journeys);
    /// `event_time_ms` is the simulated time of the interaction's end.
    pub event: InteractionEvent<'static>,
}

/// Counters since the simulator was created. Journey counts include the journeys simulated to
/// warm up; event counts only what was emitted or skipped from the start time on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events emitted, unidentified ones included.
    pub events: u64,
    /// Emitted events whose MOT is not in the catalog.
    pub unidentified_events: u64,
    /// Journeys begun.
    pub journeys_started: u64,
    /// Journeys ended after their SCO MOT succeeded.
    pub journeys_with_sco: u64,
    /// Journeys ended without it: abandoned, or given up at the SCO MOT.
    pub journeys_without_sco: u64,
    /// Journeys in progress now (at most [`SimConfig::max_active_journeys`]).
    pub active_journeys: u64,
    /// Arrivals dropped because [`SimConfig::max_active_journeys`] were in progress.
    pub dropped_arrivals: u64,
    /// Events simulated but not emitted because they fell in a pause longer than
    /// [`SimConfig::max_catch_up`].
    pub skipped_events: u64,
}

/// Why a simulator cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A [`SimConfig`] field is out of range.
    #[error("sim.{field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    /// The scenario was loaded against another catalog.
    #[error(
        "scenario {scenario} names MOT `{mot}`, which catalog {catalog} does not declare at the \
         same place: load the scenario against the catalog being simulated"
    )]
    CatalogMismatch {
        scenario: String,
        mot: String,
        catalog: String,
    },
}
