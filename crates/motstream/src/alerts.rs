//! The alert engine's settings: flags, `MOTSTREAM_*` variables and the config file's
//! `[alerts]` table, in that precedence, over [`AlertSettings::default`].

use std::path::Path;
use std::time::Duration;

use clap::Args;
use motstream_server::config::AlertSettings;
use serde::Deserialize;

use crate::config::{Resolver, duration, file_duration};

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
    /// empty: off.
    #[arg(long, env = "MOTSTREAM_ALERTS_TOPIC")]
    pub alerts_topic: Option<String>,
    /// How often every alert rule is evaluated.
    #[arg(long, env = "MOTSTREAM_ALERT_TICK", value_parser = duration)]
    pub alert_tick: Option<Duration>,
    /// How often firing alerts are re-sent to Alertmanager.
    #[arg(long, env = "MOTSTREAM_ALERT_RESEND", value_parser = duration)]
    pub alert_resend: Option<Duration>,
    /// How long a firing alert's condition must stay clear before it resolves.
    #[arg(long, env = "MOTSTREAM_ALERT_RESOLVE_HOLD", value_parser = duration)]
    pub alert_resolve_hold: Option<Duration>,
    /// Share (0..=1) of a rule's longest window the MOT's data must cover before the rule is
    /// judged; until then it reports insufficient data, so a new MOT or a restart without
    /// history never alerts on minutes of data.
    #[arg(long, env = "MOTSTREAM_ALERT_MIN_COVERAGE")]
    pub alert_min_coverage: Option<f64>,
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
    alert_min_coverage: Option<f64>,
}

fn check_url(key: &str, u: &str) -> anyhow::Result<()> {
    let ok = reqwest::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("{key}: {u:?} is not an http(s) URL")
    }
}

/// Resolves flags/env over the file's `[alerts]` table (read from `path`) over the
/// defaults, recording each key's source in `r`.
pub(crate) fn resolve(
    args: &AlertArgs,
    file: AlertFile,
    path: &Path,
    r: &mut Resolver<'_>,
) -> anyhow::Result<AlertSettings> {
    let d = AlertSettings::default();
    let tick = file_duration(path, "[alerts] alert_tick", file.alert_tick)?;
    let resend = file_duration(path, "[alerts] alert_resend", file.alert_resend)?;
    let hold = file_duration(path, "[alerts] alert_resolve_hold", file.alert_resolve_hold)?;
    let s = AlertSettings {
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
        min_coverage: r.pick(
            "alert_min_coverage",
            args.alert_min_coverage,
            file.alert_min_coverage,
            d.min_coverage,
        ),
    };
    if !(0.0..=1.0).contains(&s.min_coverage) {
        anyhow::bail!(
            "alert_min_coverage: {} is not a share between 0 and 1",
            s.min_coverage
        );
    }
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
