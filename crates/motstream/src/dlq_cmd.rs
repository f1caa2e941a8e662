//! `motstream dlq`: the dead-letter topic, read directly from Kafka. `tail` shows the latest
//! dead letters, each with the reason it was rejected (the `motstream-reason*` headers), where
//! it came from and its original payload; `count` tallies the topic by reason code. It reads
//! without a consumer group's commits, so it changes nothing for the service.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use motstream_client::dlq;

/// `motstream dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCmd {
    /// The latest dead letters: reason, source, headers and original payload, oldest first.
    Tail(DlqTail),
    /// Dead letters in the topic by reason code, most frequent first.
    Count(DlqCount),
}

/// Where the dead-letter topic is.
#[derive(Debug, Clone, Args)]
pub struct DlqSource {
    /// Kafka bootstrap servers (the embedded default prints its broker's).
    #[arg(long, env = "MOTSTREAM_BROKERS")]
    pub brokers: String,
    /// The dead-letter topic (the service's `dlq_topic`).
    #[arg(long, env = "MOTSTREAM_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Extra librdkafka consumer property (repeatable), e.g. `security.protocol=SASL_SSL`.
    #[arg(long = "kafka-property", value_parser = motstream_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Give up waiting for the broker after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DlqSource {
    /// The topic to read: `--dlq-topic`, else the service's default.
    fn source(&self) -> dlq::Source {
        dlq::Source {
            brokers: self.brokers.clone(),
            topic: self.topic(),
            kafka: self.kafka_properties.iter().cloned().collect(),
            timeout: self.timeout,
        }
    }

    fn topic(&self) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| motstream_server::config::ServiceConfig::defaults().dlq_topic)
    }
}

#[derive(Debug, Args)]
pub struct DlqTail {
    /// How many of the latest dead letters (over all partitions).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Payload bytes shown per dead letter (the rest is elided).
    #[arg(long, default_value_t = 1024)]
    pub max_payload: usize,
    #[command(flatten)]
    pub source: DlqSource,
}

#[derive(Debug, Args)]
pub struct DlqCount {
    #[command(flatten)]
    pub source: DlqSource,
}

/// `motstream dlq tail|count`.
pub fn run(cmd: &DlqCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DlqCmd::Tail(a) => {
            let mut letters = dlq::read(&a.source.source(), Some(a.limit))?;
            letters.sort_by_key(|l| (l.timestamp_ms, l.partition, l.offset));
            let skip = letters.len().saturating_sub(a.limit);
            let letters = &letters[skip..];
            let text = if a.source.json {
                letters
                    .iter()
                    .map(|l| format!("{}\n", dlq::letter_json(l)))
                    .collect()
            } else {
                dlq::tail_text(letters, &a.source.topic(), a.max_payload)
            };
            out(&text)?;
        }
        DlqCmd::Count(a) => {
            let letters = dlq::read(&a.source.source(), None)?;
            let text = if a.source.json {
                format!("{:#}\n", dlq::count_json(&letters, &a.source.topic()))
            } else {
                dlq::count_text(&letters, &a.source.topic())
            };
            out(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .context("writing to stdout")
}
