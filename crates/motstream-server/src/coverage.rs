//! "Insufficient data" in the status views (`/status`, GetMot, ListMots, WatchMots): how much
//! of a window a MOT's data covers, and which of its alert rules the alert engine is holding
//! back because their windows are not covered enough yet (motstream_alert's `coverage`).

use motstream_alert::Policy;
use motstream_core::Catalog;
use motstream_window::MotStatus;

/// The compiled alert policy and the coverage share the engine applies.
#[derive(Debug)]
pub struct CoverageView {
    policy: Policy,
    min_coverage: f64,
}

impl CoverageView {
    pub fn new(catalog: &Catalog, min_coverage: f64) -> Self {
        Self {
            policy: Policy::compile(catalog),
            min_coverage,
        }
    }

    /// The share (0..=1) of `s`'s window that its MOT's data covers at `now_ms`.
    pub fn window_coverage(s: &MotStatus, now_ms: i64) -> f64 {
        motstream_alert::coverage::coverage(s.data_since_ms, now_ms, s.window_ms)
    }

    /// The names of the MOT's rules reporting insufficient data at `now_ms`.
    pub fn insufficient(&self, s: &MotStatus, now_ms: i64) -> Vec<String> {
        let Some(m) = self.policy.mots.get(s.mot.0 as usize) else {
            return Vec::new();
        };
        motstream_alert::coverage::insufficient(
            &m.rules,
            &self.policy.windows_ms,
            s.data_since_ms,
            now_ms,
            self.min_coverage,
        )
        .into_iter()
        .map(str::to_owned)
        .collect()
    }
}
