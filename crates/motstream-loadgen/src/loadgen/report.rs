//! The lines `motstream loadgen` prints: a progress line while it runs and one final line.
//! Pure formatting of counters passed in, so tests pin every wording.

use std::time::Duration;

use super::plan::{Limits, Pace, Stop, behind};
use super::send::Sent;

/// Counters at one moment of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Since the sending started.
    pub elapsed: Duration,
    pub sent: u64,
    pub bytes: u64,
    pub acked: u64,
    pub failed: u64,
    /// How far the sending trails the simulator's schedule, in ms.
    pub lag_ms: u64,
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-3)
}

fn mb_per_sec(bytes: u64, d: Duration) -> String {
    format!("{:.1} MB/s", per_sec(bytes, d) / 1e6)
}

/// "asked 5000/s", and whether the schedule is kept.
fn pace_note(pace: Pace, lag_ms: u64) -> String {
    match pace.asked() {
        None => "as fast as possible".to_owned(),
        Some(asked) if behind(pace, lag_ms) => format!(
            "asked {asked:.0}/s: rate NOT reached, {:.1}s behind schedule",
            lag_ms as f64 / 1000.0
        ),
        Some(asked) => format!("asked {asked:.0}/s"),
    }
}

/// The line printed while running: totals, the rate since `prev`, and the time left.
pub fn progress(pace: Pace, limits: Limits, now: &Snapshot, prev: &Snapshot) -> String {
    let interval = now.elapsed.saturating_sub(prev.elapsed);
    let rate = per_sec(now.sent.saturating_sub(prev.sent), interval);
    let by_duration = limits
        .duration
        .map(|d| d.saturating_sub(now.elapsed).as_secs_f64());
    let by_count = limits.count.and_then(|c| {
        let left = c.saturating_sub(now.sent) as f64;
        (rate > 0.0).then(|| left / rate)
    });
    let eta = match (by_duration, by_count) {
        (Some(d), Some(c)) => format!(", ETA {:.0}s", d.min(c)),
        (Some(t), None) | (None, Some(t)) => format!(", ETA {t:.0}s"),
        (None, None) => String::new(),
    };
    format!(
        "loadgen: {:.0}s: {} sent ({rate:.0}/s, {}), {} acked, {} failed, {}{eta}",
        now.elapsed.as_secs_f64(),
        now.sent,
        pace_note(pace, now.lag_ms),
        now.acked,
        now.failed,
        mb_per_sec(now.bytes.saturating_sub(prev.bytes), interval),
    )
}

/// The last line: what was sent and how fast, what was delivered and how quickly, and why it
/// stopped. `sending` is the time from the first send to the stop; `p50_us`/`p99_us` the
/// delivery latency quantiles.
pub struct Final<'a> {
    pub topic: &'a str,
    pub pace: Pace,
    pub limits: Limits,
    pub sent: Sent,
    pub sending: Duration,
    pub acked: u64,
    pub failed: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

fn ms(us: Option<u64>) -> String {
    us.map_or("-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1000.0))
}

impl Final<'_> {
    pub fn line(&self) -> String {
        let s = &self.sent;
        let stopped = match (s.stop, self.limits.count, self.limits.duration) {
            (Stop::Count, Some(c), _) => format!("count reached ({c})"),
            (Stop::Duration, Some(c), Some(d)) => format!(
                "--duration {} was up first: count NOT reached ({} of {c})",
                humantime::format_duration(d),
                s.events
            ),
            (Stop::Duration, None, Some(d)) => {
                format!("--duration {} was up", humantime::format_duration(d))
            }
            // Not produced by `Limits::reached`.
            (Stop::Count, None, _) | (Stop::Duration, _, None) => "stopped".to_owned(),
        };
        format!(
            "loadgen: {} sent to {} in {:.2}s ({:.0}/s, {}), {} acknowledged, {} failed; \
             delivery latency p50 {}, p99 {}; {}; stopped: {stopped}",
            s.events,
            self.topic,
            self.sending.as_secs_f64(),
            per_sec(s.events, self.sending),
            pace_note(self.pace, s.lag_ms),
            self.acked,
            self.failed,
            ms(self.p50_us),
            ms(self.p99_us),
            mb_per_sec(s.bytes, self.sending),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::plan::BEHIND_MS;

    fn snap(secs: u64, sent: u64, lag_ms: u64) -> Snapshot {
        Snapshot {
            elapsed: Duration::from_secs(secs),
            sent,
            bytes: sent * 100,
            acked: sent / 2,
            failed: 1,
            lag_ms,
        }
    }

    #[test]
    fn progress_shows_the_current_rate_and_the_nearer_end() {
        let limits = Limits::new(Some(10_000), Some(Duration::from_secs(60)));
        let line = progress(
            Pace::Rate(1_000.0),
            limits,
            &snap(2, 2_000, 3),
            &snap(1, 1_000, 0),
        );
        assert_eq!(
            line,
            "loadgen: 2s: 2000 sent (1000/s, asked 1000/s), 1000 acked, 1 failed, 0.1 MB/s, ETA 8s"
        );
    }

    #[test]
    fn progress_says_when_the_rate_is_not_reached() {
        let limits = Limits::new(None, Some(Duration::from_secs(10)));
        let line = progress(
            Pace::Rate(300_000.0),
            limits,
            &snap(3, 600_000, BEHIND_MS + 700),
            &snap(2, 400_000, 0),
        );
        assert!(
            line.contains("(200000/s, asked 300000/s: rate NOT reached, 1.2s behind schedule)"),
            "{line}"
        );
        assert!(line.ends_with("ETA 7s"), "{line}");
    }

    fn fin(stop: Stop, limits: Limits, lag_ms: u64, pace: Pace) -> String {
        Final {
            topic: "t",
            pace,
            limits,
            sent: Sent {
                events: 500,
                bytes: 50_000,
                stop,
                lag_ms,
            },
            sending: Duration::from_millis(500),
            acked: 500,
            failed: 0,
            p50_us: Some(2_500),
            p99_us: Some(12_000),
        }
        .line()
    }

    #[test]
    fn final_line_reports_rate_latency_bytes_and_why_it_stopped() {
        let line = fin(Stop::Count, Limits::new(Some(500), None), 0, Pace::Unpaced);
        assert_eq!(
            line,
            "loadgen: 500 sent to t in 0.50s (1000/s, as fast as possible), 500 acknowledged, \
             0 failed; delivery latency p50 2.5 ms, p99 12.0 ms; 0.1 MB/s; stopped: count \
             reached (500)"
        );
    }

    #[test]
    fn final_line_says_the_count_was_not_reached_when_the_duration_is_up_first() {
        let limits = Limits::new(Some(100_000), Some(Duration::from_secs(1)));
        let line = fin(Stop::Duration, limits, 0, Pace::Rate(1_000.0));
        assert!(line.contains("(1000/s, asked 1000/s)"), "{line}");
        assert!(
            line.ends_with(
                "stopped: --duration 1s was up first: count NOT reached (500 of 100000)"
            ),
            "{line}"
        );
    }

    #[test]
    fn final_line_says_the_rate_was_not_reached_when_behind_at_the_end() {
        let limits = Limits::new(None, Some(Duration::from_secs(1)));
        let line = fin(Stop::Duration, limits, 2_000, Pace::Rate(5_000.0));
        assert!(
            line.contains("(1000/s, asked 5000/s: rate NOT reached, 2.0s behind schedule)"),
            "{line}"
        );
        assert!(line.ends_with("stopped: --duration 1s was up"), "{line}");
    }
}
