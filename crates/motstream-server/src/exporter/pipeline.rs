//! The service's own series that are read from its state at scrape time (the ingest loop's
//! counters, lag and batch timings come through the `metrics` facade instead).

use motstream_ingest::Health;

use super::text::Text;
use crate::state::AggregatorState;

pub(crate) fn render(t: &mut Text, state: &AggregatorState, health: &Health) {
    let report = health.report();
    t.family(
        "motstream_ready",
        "gauge",
        "1 when every assigned partition is live and the broker is reachable.",
    );
    t.int("motstream_ready", &[], &[], u64::from(report.ready));

    let parts = state.agg.partitions();
    let rebuilding = parts.iter().filter(|p| p.is_warming()).count() as u64;
    let name = "motstream_partitions";
    t.family(
        name,
        "gauge",
        "Partitions held by this instance, live or being rebuilt by replay.",
    );
    t.int(
        name,
        &[],
        &[("state", "live")],
        parts.len() as u64 - rebuilding,
    );
    t.int(name, &[], &[("state", "rebuilding")], rebuilding);

    let name = "motstream_journeys_open";
    t.family(
        name,
        "gauge",
        "Journeys being tracked that have neither reached their SCO nor timed out.",
    );
    let open: u64 = parts.iter().map(|p| p.stats().journeys_open).sum();
    t.int(name, &[], &[], open);

    let name = "motstream_window_applied_events_total";
    t.family(
        name,
        "counter",
        "Events applied to the rolling windows, live or replayed while rebuilding.",
    );
    t.int(name, &[], &[], state.applied());

    let name = "motstream_window_memory_bytes";
    t.family(
        name,
        "gauge",
        "Heap bytes held by the rolling windows of every partition.",
    );
    t.int(name, &[], &[], state.agg.memory_bytes() as u64);

    let name = "motstream_build_info";
    t.family(name, "gauge", "The running version, always 1.");
    t.int(name, &[("version", env!("CARGO_PKG_VERSION"))], &[], 1);
}
