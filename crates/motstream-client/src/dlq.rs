//! The dead-letter topic read back for `motstream dlq`: every partition from the low watermark
//! (or the last N per partition) up to the high watermark seen at the start, without a consumer
//! group's commits, so reading changes nothing for the service; and its rendering, as text and
//! JSON, by letter (`tail`) and by reason code (`count`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use motstream_ingest::dlq_headers as h;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

/// Where the dead-letter topic is.
#[derive(Debug, Clone)]
pub struct Source {
    pub brokers: String,
    pub topic: String,
    /// Extra librdkafka consumer properties.
    pub kafka: BTreeMap<String, String>,
    /// Give up waiting for the broker after this long.
    pub timeout: Duration,
}

/// One dead letter as read back.
#[derive(Debug, Clone)]
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Letter {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads every partition of the topic from `max(low, high - last)` (all of it when `last` is
/// `None`) up to the high watermark seen at the start.
pub fn read(src: &Source, last: Option<usize>) -> anyhow::Result<Vec<Letter>> {
    let topic = src.topic.clone();
    let extra = &src.kafka;
    let group = format!("motstream-dlq-reader-{}", std::process::id());
    let consumer: BaseConsumer = motstream_ingest::kafka_config(
        &src.brokers,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
        ],
        extra,
    )
    .create()
    .context("creating the Kafka consumer")?;
    let md = consumer
        .fetch_metadata(Some(&topic), src.timeout)
        .with_context(|| format!("reading metadata of {} from {}", topic, src.brokers))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if parts.is_empty() {
        anyhow::bail!("topic {} not found at {}", topic, src.brokers);
    }
    let mut tpl = TopicPartitionList::new();
    // Partition -> the offset to stop before.
    let mut until = BTreeMap::new();
    for p in parts {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p, src.timeout)
            .with_context(|| format!("reading the offsets of {}[{p}]", topic))?;
        let from = match last {
            Some(n) => high
                .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX))
                .max(low),
            None => low,
        };
        if from < high {
            tpl.add_partition_offset(&topic, p, Offset::Offset(from))
                .context("assigning a partition")?;
            until.insert(p, high);
        }
    }
    let mut letters = Vec::new();
    if until.is_empty() {
        return Ok(letters);
    }
    consumer.assign(&tpl).context("assigning the partitions")?;
    let deadline = Instant::now() + src.timeout;
    while !until.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!(
                "timed out after {} reading {} ({} partitions not read to the end)",
                motstream_core::units::short_duration(src.timeout),
                topic,
                until.len()
            );
        }
        let Some(r) = consumer.poll(left.min(Duration::from_millis(200))) else {
            continue;
        };
        let m = r.with_context(|| format!("reading {}", topic))?;
        let p = m.partition();
        let Some(&end) = until.get(&p) else { continue };
        if m.offset() < end {
            letters.push(Letter {
                partition: p,
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|hd| (hd.key.to_owned(), hd.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        if m.offset() + 1 >= end {
            until.remove(&p);
        }
    }
    Ok(letters)
}

/// Bytes for a terminal: text as text (control characters escaped), else hex; at most
/// `max` bytes.
fn show_bytes(b: &[u8], max: usize) -> String {
    let (shown, more) = if b.len() > max {
        (&b[..max], format!(" ... ({} more bytes)", b.len() - max))
    } else {
        (b, String::new())
    };
    match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == ' ') => format!("{s}{more}"),
        Ok(s) => format!("{s:?}{more}"),
        Err(_) => {
            let hex: String = shown.iter().map(|x| format!("{x:02x}")).collect();
            format!("hex {hex}{more}")
        }
    }
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok()).map_or_else(
        || "-".into(),
        |ms| {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        },
    )
}

/// Headers other than motstream's own, as `key=value`.
fn original_headers(l: &Letter) -> Vec<String> {
    l.headers
        .iter()
        .filter(|(k, _)| !k.starts_with("motstream-"))
        .map(|(k, v)| format!("{k}={}", show_bytes(v, 200)))
        .collect()
}

pub fn tail_text(letters: &[Letter], topic: &str, max_payload: usize) -> String {
    let mut out = String::new();
    if letters.is_empty() {
        let _ = writeln!(out, "no dead letters in {topic}");
        return out;
    }
    for l in letters {
        let unknown = || "?".to_owned();
        let _ = writeln!(
            out,
            "{}  {topic}[{}]@{}  from {}[{}]@{}",
            time(l.timestamp_ms),
            l.partition,
            l.offset,
            l.header(h::SOURCE_TOPIC).unwrap_or_else(unknown),
            l.header(h::SOURCE_PARTITION).unwrap_or_else(unknown),
            l.header(h::SOURCE_OFFSET).unwrap_or_else(unknown),
        );
        let _ = writeln!(
            out,
            "  reason   {} ({})",
            l.header(h::REASON).unwrap_or_else(unknown),
            l.header(h::REASON_CODE).unwrap_or_else(unknown),
        );
        if let Some(k) = &l.key {
            let _ = writeln!(out, "  key      {}", show_bytes(k, 200));
        }
        let hs = original_headers(l);
        if !hs.is_empty() {
            let _ = writeln!(out, "  headers  {}", hs.join(" "));
        }
        let _ = writeln!(
            out,
            "  payload  {} bytes: {}\n",
            l.payload.len(),
            show_bytes(&l.payload, max_payload)
        );
    }
    out
}

pub fn letter_json(l: &Letter) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    json!({
        "partition": l.partition,
        "offset": l.offset,
        "timestamp_ms": l.timestamp_ms,
        "reason": l.header(h::REASON),
        "reason_code": l.header(h::REASON_CODE),
        "source_topic": l.header(h::SOURCE_TOPIC),
        "source_partition": l.header(h::SOURCE_PARTITION).and_then(|p| p.parse::<i64>().ok()),
        "source_offset": l.header(h::SOURCE_OFFSET).and_then(|o| o.parse::<i64>().ok()),
        "key": l.key.as_deref().map(text),
        "headers": l.headers.iter().filter(|(k, _)| !k.starts_with("motstream-"))
            .map(|(k, v)| (k.clone(), Value::String(text(v)))).collect::<serde_json::Map<_, _>>(),
        "payload": std::str::from_utf8(&l.payload).ok(),
        "payload_hex": std::str::from_utf8(&l.payload).is_err()
            .then(|| l.payload.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    })
}

/// (reason code, count, latest timestamp), most frequent first, ties by code.
fn tally(letters: &[Letter]) -> Vec<(String, u64, Option<i64>)> {
    let mut by: BTreeMap<String, (u64, Option<i64>)> = BTreeMap::new();
    for l in letters {
        let code = l
            .header(h::REASON_CODE)
            .unwrap_or_else(|| "(no reason header)".into());
        let e = by.entry(code).or_default();
        e.0 += 1;
        e.1 = e.1.max(l.timestamp_ms);
    }
    let mut v: Vec<_> = by.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

pub fn count_text(letters: &[Letter], topic: &str) -> String {
    let rows = tally(letters);
    let mut out = String::new();
    let w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max("REASON".len());
    let _ = writeln!(out, "{:<w$}  {:>7}  LAST", "REASON", "COUNT");
    for (code, n, last) in &rows {
        let _ = writeln!(out, "{code:<w$}  {n:>7}  {}", time(*last));
    }
    let _ = writeln!(out, "{} dead letters in {topic}", letters.len());
    out
}

pub fn count_json(letters: &[Letter], topic: &str) -> Value {
    json!({
        "topic": topic,
        "total": letters.len(),
        "reasons": tally(letters).into_iter().map(|(code, n, last)| json!({
            "reason_code": code, "count": n, "last_ms": last,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(code: &str, t: i64, payload: &[u8]) -> Letter {
        Letter {
            partition: 0,
            offset: t,
            timestamp_ms: Some(t),
            key: Some(b"j-1".to_vec()),
            payload: payload.to_vec(),
            headers: vec![
                ("content-type".into(), b"text/plain".to_vec()),
                (h::REASON.into(), format!("why {code}").into_bytes()),
                (h::REASON_CODE.into(), code.as_bytes().to_vec()),
                (h::SOURCE_TOPIC.into(), b"mot.interactions".to_vec()),
                (h::SOURCE_PARTITION.into(), b"3".to_vec()),
                (h::SOURCE_OFFSET.into(), b"42".to_vec()),
            ],
        }
    }

    #[test]
    fn tail_shows_reason_source_original_headers_and_payload() {
        let text = tail_text(&[letter("not_json", 0, b"{oops")], "dlq", 1024);
        assert!(
            text.contains("dlq[0]@0  from mot.interactions[3]@42"),
            "{text}"
        );
        assert!(text.contains("reason   why not_json (not_json)"), "{text}");
        assert!(
            text.contains("headers  content-type=text/plain\n"),
            "{text}"
        );
        assert!(text.contains("payload  5 bytes: {oops"), "{text}");
    }

    #[test]
    fn binary_payloads_show_as_hex_and_long_ones_are_elided() {
        assert_eq!(show_bytes(&[0xff, 0x00], 10), "hex ff00");
        assert_eq!(show_bytes(b"abcdef", 3), "abc ... (3 more bytes)");
        assert_eq!(show_bytes(b"a\tb", 10), "\"a\\tb\"");
    }

    #[test]
    fn count_orders_reasons_by_frequency() {
        let ls = [
            letter("missing_field", 1, b"{}"),
            letter("not_json", 2, b"x"),
            letter("not_json", 3, b"y"),
        ];
        let t = tally(&ls);
        assert_eq!(
            t,
            vec![
                ("not_json".to_owned(), 2, Some(3)),
                ("missing_field".to_owned(), 1, Some(1)),
            ]
        );
        assert!(count_text(&ls, "dlq").ends_with("3 dead letters in dlq\n"));
    }
}
