//! The alert engine's effective settings and their defaults. The binary resolves them from
//! flags, `MOTSTREAM_*` variables and the config file's `[alerts]` table.

use std::time::Duration;

use crate::config::Source;

/// The effective alert settings.
#[derive(Clone, PartialEq)]
pub struct AlertSettings {
    pub alertmanager_urls: Vec<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    /// `None`: no alerts topic (no Kafka delivery, no history replay).
    pub topic: Option<String>,
    pub tick: Duration,
    pub resend: Duration,
    pub resolve_hold: Duration,
    /// The share (0..=1) of a rule's longest window the MOT's data must cover before the rule
    /// is judged (`motstream_alert::coverage`).
    pub min_coverage: f64,
}

impl std::fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("alertmanager_urls", &self.alertmanager_urls)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("topic", &self.topic)
            .field("tick", &self.tick)
            .field("resend", &self.resend)
            .field("resolve_hold", &self.resolve_hold)
            .field("min_coverage", &self.min_coverage)
            .finish()
    }
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            alertmanager_urls: Vec::new(),
            webhook_url: None,
            webhook_secret: None,
            topic: Some("mot.alerts".into()),
            tick: Duration::from_secs(1),
            resend: Duration::from_secs(60),
            resolve_hold: Duration::from_secs(10),
            min_coverage: motstream_alert::coverage::DEFAULT_MIN_COVERAGE,
        }
    }
}

impl AlertSettings {
    /// `key = value` lines for `config show`, the secret masked.
    pub fn render(&self, src: impl Fn(&str) -> Source) -> String {
        let h = |d: Duration| format!("{:?}", motstream_core::units::short_duration(d));
        let lines = [
            ("alertmanager_urls", format!("{:?}", self.alertmanager_urls)),
            (
                "alert_webhook_url",
                format!("{:?}", self.webhook_url.clone().unwrap_or_default()),
            ),
            (
                "alert_webhook_secret",
                format!(
                    "{:?}",
                    if self.webhook_secret.is_some() {
                        "***"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "alerts_topic",
                format!("{:?}", self.topic.clone().unwrap_or_default()),
            ),
            ("alert_tick", h(self.tick)),
            ("alert_resend", h(self.resend)),
            ("alert_resolve_hold", h(self.resolve_hold)),
            ("alert_min_coverage", self.min_coverage.to_string()),
        ];
        let mut out = String::from("[alerts]\n");
        for (k, v) in lines {
            out.push_str(&format!("{k} = {v}  # {}\n", src(k)));
        }
        out
    }
}
