//! Rate limiting of repeated Kafka client complaints. While a broker is unreachable librdkafka
//! reports the same failure many times a second (an outage wrote 320 lines in 10 s); one line
//! per kind per [`HOLD`], saying how many were held back, tells the same story.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use tracing::{error, info, warn};

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

/// One Kafka client's complaints, written through a [`Quiet`]: each kind once per [`HOLD`],
/// naming the client and how many lines like it were held back. Every long-lived client of
/// the service logs through one of these; with rdkafka's default context each wrote its own
/// copy of every connection failure several times a second (a 30 s outage of one instance:
/// 734 lines at info and above, 91 with every client quieted).
#[derive(Debug)]
pub struct QuietLog {
    client: &'static str,
    quiet: Quiet,
}

impl QuietLog {
    /// `client` names the client in every line (e.g. "state follower").
    pub fn new(client: &'static str) -> Self {
        Self {
            client,
            quiet: Quiet::default(),
        }
    }

    /// An error the client reports (its `ClientContext::error`).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        // Keyed by the error, not the reason: the reason carries changing counts and times.
        if let Some(held) = self.quiet.admit(&error.to_string(), Instant::now()) {
            if held > 0 {
                warn!(client = self.client, error = %error, reason, held_back = held, "Kafka client error ({held} more like it in the last {}s)", HOLD.as_secs());
            } else {
                warn!(client = self.client, error = %error, reason, "Kafka client error");
            }
        }
    }

    /// A librdkafka log line (its `ClientContext::log`).
    pub fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel as L;
        let Some(held) = self
            .quiet
            .admit(&format!("log {fac} {level:?}"), Instant::now())
        else {
            return;
        };
        let client = self.client;
        // librdkafka's own target, as rdkafka's default context logs it, so that
        // `RUST_LOG=librdkafka=debug` selects every client's lines.
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                error!(target: "librdkafka", client, facility = fac, held_back = held, "{message}")
            }
            L::Warning => {
                warn!(target: "librdkafka", client, facility = fac, held_back = held, "{message}")
            }
            L::Notice | L::Info => {
                info!(target: "librdkafka", client, facility = fac, held_back = held, "{message}")
            }
            L::Debug => {
                tracing::debug!(target: "librdkafka", client, facility = fac, held_back = held, "{message}")
            }
        }
    }

    /// A failure the caller met using the client (a poll's error, say): `what` is the line.
    pub fn warn(&self, what: &'static str, error: &KafkaError) {
        if let Some(held) = self
            .quiet
            .admit(&format!("{what}: {error}"), Instant::now())
        {
            warn!(client = self.client, error = %error, held_back = held, "{what}");
        }
    }
}

/// Implements `rdkafka::ClientContext` for a context type by writing the client's errors and
/// log lines through its [`QuietLog`] field: `quiet_client_context!(Type, field)`.
#[macro_export]
macro_rules! quiet_client_context {
    ($ty:ty, $field:tt) => {
        impl ::rdkafka::ClientContext for $ty {
            fn error(&self, error: ::rdkafka::error::KafkaError, reason: &str) {
                self.$field.error(&error, reason);
            }

            fn log(&self, level: ::rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
                self.$field.log(level, fac, message);
            }
        }
    };
}

/// A client context that only logs, through a [`QuietLog`]: for consumers and producers that
/// need no callbacks of their own.
#[derive(Debug)]
pub struct QuietContext(pub QuietLog);

impl QuietContext {
    pub fn new(client: &'static str) -> Self {
        Self(QuietLog::new(client))
    }
}

crate::quiet_client_context!(QuietContext, 0);

impl ConsumerContext for QuietContext {}

impl rdkafka::producer::ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
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
