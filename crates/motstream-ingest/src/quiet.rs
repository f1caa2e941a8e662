//! Rate limiting of repeated Kafka client complaints. While a broker is unreachable librdkafka
//! reports the same failure many times a second (an outage wrote 320 lines in 10 s); one line
//! per kind per [`HOLD`], saying how many were held back, tells the same story.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after one line of a kind the same kind stays quiet.
pub(crate) const HOLD: Duration = Duration::from_secs(10);

/// Kinds remembered at most (a bound, should the kinds vary without end).
const MAX_KINDS: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Quiet {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    /// Whether a line of `kind` should be written at `now`: `Some(n)` with the `n` lines of
    /// that kind held back since the last one written, `None` to hold this one back.
    pub(crate) fn admit(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get_mut(kind) {
            Some((last, held)) if now.duration_since(*last) < HOLD => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                (*last, *held) = (now, 0);
                Some(n)
            }
            None => {
                if seen.len() >= MAX_KINDS {
                    seen.retain(|_, (last, _)| now.duration_since(*last) < HOLD);
                }
                if seen.len() < MAX_KINDS {
                    seen.insert(kind.to_owned(), (now, 0));
                }
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_hold_are_counted_and_reported_with_the_next_line() {
        let q = Quiet::default();
        let t0 = Instant::now();
        assert_eq!(q.admit("BrokerTransportFailure", t0), Some(0));
        for i in 1..=31 {
            assert_eq!(
                q.admit(
                    "BrokerTransportFailure",
                    t0 + Duration::from_millis(i * 300)
                ),
                None
            );
        }
        assert_eq!(
            q.admit("AllBrokersDown", t0 + Duration::from_secs(1)),
            Some(0),
            "another kind"
        );
        assert_eq!(q.admit("BrokerTransportFailure", t0 + HOLD), Some(31));
        assert_eq!(
            q.admit("BrokerTransportFailure", t0 + HOLD + Duration::from_secs(1)),
            None
        );
    }
}
