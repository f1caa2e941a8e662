//! Latency percentiles stay within 2% of the exact (nearest-rank) percentiles on random
//! data, both from the histogram directly and through the aggregator.

#![allow(clippy::unwrap_used)]

use motstream_window::*;
use proptest::prelude::*;

fn exact(sorted: &[u32], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

fn assert_within_two_percent(values: &[u32], got: impl Fn(f64) -> Option<f64>) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    for q in [0.5, 0.9, 0.99, 0.999, 0.0, 1.0] {
        let want = exact(&sorted, q);
        let got = got(q).unwrap();
        let err = if want == 0.0 {
            got
        } else {
            (got - want).abs() / want
        };
        assert!(err <= 0.02, "q={q}: got {got}, exact {want}, error {err}");
    }
}

/// Log-uniform over 1 ms .. 2^24 ms, uniform small values, and tight clusters.
fn latencies() -> impl Strategy<Value = Vec<u32>> {
    let one = prop_oneof![
        (0.0f64..24.0).prop_map(|e| 2f64.powf(e) as u32),
        0u32..100,
        (1_000u32..1_100),
        (50_000u32..5_000_000),
    ];
    prop::collection::vec(one, 1..2_000)
}

proptest! {
    #[test]
    fn histogram_percentiles_are_within_two_percent_of_exact(values in latencies()) {
        let mut h = LatencyHistogram::default();
        for &v in &values {
            h.record(v);
        }
        assert_within_two_percent(&values, |q| h.percentile(q));
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_all_values(a in latencies(), b in latencies()) {
        let (mut ha, mut hb, mut all) = (LatencyHistogram::default(), LatencyHistogram::default(), LatencyHistogram::default());
        a.iter().for_each(|&v| { ha.record(v); all.record(v) });
        b.iter().for_each(|&v| { hb.record(v); all.record(v) });
        ha.merge(&hb);
        prop_assert_eq!(ha, all);
    }
}

#[test]
fn status_latency_percentiles_are_within_two_percent_over_partitions() {
    let topo = Topology::new(
        vec![MotSpec {
            experience: ExpIdx(0),
            target: 0.99,
            impact_weight: 1.0,
        }],
        vec![ExperienceSpec {
            sco: MotIdx(0),
            journey_timeout_ms: None,
        }],
    )
    .unwrap();
    let agg = Aggregator::new(topo, WindowConfig::default()).unwrap();
    let now = 1_700_000_000_000;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut values = Vec::new();
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = 2f64.powf((x % 20_000) as f64 / 1_000.0) as u32;
        values.push(v);
        let p = agg.partition(PartitionId(i % 4));
        let obs = Observation {
            duration_ms: Some(v),
            ..Observation::new(MotKey::Known(MotIdx(0)), now - (x % 50_000) as i64, true)
        };
        assert_eq!(p.writer().apply(&obs, now), Applied::Applied);
    }
    let s = agg.status_mot(MotIdx(0), 5 * 60_000, now).unwrap();
    assert_eq!(s.latency.count, values.len() as u64);
    let pick = |q: f64| match q {
        0.5 => s.latency.p50_ms,
        0.9 => s.latency.p90_ms,
        0.99 => s.latency.p99_ms,
        _ => None,
    };
    let mut sorted = values.clone();
    sorted.sort_unstable();
    for q in [0.5, 0.9, 0.99] {
        let want = exact(&sorted, q);
        let got = pick(q).unwrap();
        assert!(
            (got - want).abs() / want <= 0.02,
            "q={q}: got {got}, exact {want}"
        );
    }
}
