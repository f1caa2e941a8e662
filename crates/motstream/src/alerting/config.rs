//! The alert engine's settings: flags, `MOTSTREAM_*` variables and the config file's
//! `[alerts]` table, in that precedence, over the defaults here.

use std::time::Duration;

use std::path::Path;

use clap::Args;
use serde::Deserialize;

use crate::config::{Resolver, Source, duration, file_duration};

/// Alert flags, flattened into the service's. No argument group of its own: a group would
/// count as a top-level argument and conflict with every subcommand.
#[derive(Debug, Clone, Default, Args)]
#[group(skip)]
pub struct AlertArgs {
    /// Alertmanager base URL(s), comma-separated, e.g. http://127.0.0.1:9093; alerts are
    /// POSTed to <url>/api/v2/alerts [default: none].
    #[arg(
        long = "alertmanager-url",
        env = "MOTSTREAM_ALERTMANAGER_URLS",
        value_delimiter = ','
    )]
    pub alertmanager_urls: Option<Vec<String>>,
    /// Generic JSON webhook receiving every firing and resolved transition [default: none].
    #[arg(long, env = "MOTSTREAM_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,
    /// Key of the webhook's HMAC-SHA256 signature header (X-Motstream-Signature) [default: unsigned].
    #[arg(long, env = "MOTSTREAM_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// Kafka topic of alert transitions (keyed by alert id; replayed into the history at start);
    /// empty: off [default: mot.alerts].
    #[arg(long, env = "MOTSTREAM_ALERTS_TOPIC")]
    pub alerts_topic: Option<String>,
    /// How often every alert rule is evaluated [default: 1s].
    #[arg(long, env = "MOTSTREAM_ALERT_TICK", value_parser = duration)]
    pub alert_tick: Option<Duration>,
    /// How often firing alerts are re-sent to Alertmanager [default: 1m].
    #[arg(long, env = "MOTSTREAM_ALERT_RESEND", value_parser = duration)]
    pub alert_resend: Option<Duration>,
    /// How long a firing alert's condition must stay clear before it resolves [default: 10s].
    #[arg(long, env = "MOTSTREAM_ALERT_RESOLVE_HOLD", value_parser = duration)]
    pub alert_resolve_hold: Option<Duration>,
}

/// The `[alerts]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFile {
    alertmanager_urls: Option<Vec<String>>,
    alert_webhook_url: Option<String>,
    alert_webhook_secret: Option<String>,
    alerts_topic: Option<String>,
    alert_tick: Option<String>,
    alert_resend: Option<String>,
    alert_resolve_hold: Option<String>,
}

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
        }
    }
}

fn check_url(key: &str, u: &str) -> anyhow::Result<()> {
    let ok = reqwest::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("{key}: {u:?} is not an http(s) URL")
    }
}

impl AlertSettings {
    /// Resolves flags/env over the file's `[alerts]` table (read from `path`) over the
    /// defaults, recording each key's source in `r`.
    pub(crate) fn resolve(
        args: &AlertArgs,
        file: AlertFile,
        path: &Path,
        r: &mut Resolver<'_>,
    ) -> anyhow::Result<Self> {
        let d = Self::default();
        let tick = file_duration(path, "[alerts] alert_tick", file.alert_tick)?;
        let resend = file_duration(path, "[alerts] alert_resend", file.alert_resend)?;
        let hold = file_duration(path, "[alerts] alert_resolve_hold", file.alert_resolve_hold)?;
        let s = Self {
            alertmanager_urls: r
                .pick(
                    "alertmanager_urls",
                    args.alertmanager_urls.clone(),
                    file.alertmanager_urls,
                    d.alertmanager_urls,
                )
                .into_iter()
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            webhook_url: r
                .pick_opt(
                    "alert_webhook_url",
                    args.alert_webhook_url.clone(),
                    file.alert_webhook_url,
                    d.webhook_url,
                )
                .filter(|u| !u.trim().is_empty()),
            webhook_secret: r
                .pick_opt(
                    "alert_webhook_secret",
                    args.alert_webhook_secret.clone(),
                    file.alert_webhook_secret,
                    d.webhook_secret,
                )
                .filter(|s| !s.is_empty()),
            // An empty topic turns the topic off.
            topic: r
                .pick_opt(
                    "alerts_topic",
                    args.alerts_topic.clone(),
                    file.alerts_topic,
                    d.topic,
                )
                .filter(|t| !t.trim().is_empty()),
            tick: r.pick("alert_tick", args.alert_tick, tick, d.tick),
            resend: r.pick("alert_resend", args.alert_resend, resend, d.resend),
            resolve_hold: r.pick(
                "alert_resolve_hold",
                args.alert_resolve_hold,
                hold,
                d.resolve_hold,
            ),
        };
        for u in &s.alertmanager_urls {
            check_url("alertmanager_urls", u)?;
        }
        if let Some(u) = &s.webhook_url {
            check_url("alert_webhook_url", u)?;
        }
        if s.tick < Duration::from_millis(10) || s.tick > Duration::from_secs(60) {
            anyhow::bail!("alert_tick: {:?} is outside 10ms..=60s", s.tick);
        }
        if s.resend < Duration::from_secs(1) {
            anyhow::bail!("alert_resend: {:?} is under 1s", s.resend);
        }
        Ok(s)
    }

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
        ];
        let mut out = String::from("[alerts]\n");
        for (k, v) in lines {
            out.push_str(&format!("{k} = {v}  # {}\n", src(k)));
        }
        out
    }
}
