//! The dead-letter topic: every rejected message, with its original key, payload and headers,
//! plus headers saying why and where it came from. Writes are asynchronous; their
//! acknowledgements come back through [`Dlq::drain`] and gate the commits.

use std::sync::Mutex;
use std::time::Duration;

use motstream_core::EventError;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::dlq_headers as h;
use crate::sink::PartitionKey;

/// One acknowledgement: the source partition and offset, and the error if the write failed.
pub(crate) type Ack = (PartitionKey, i64, Option<String>);

pub(crate) struct DlqContext {
    /// A std `Mutex`: pushed by librdkafka's delivery thread, drained once per batch by the
    /// ingest thread; both hold it for a push or a swap.
    acks: Mutex<Vec<Ack>>,
    log: crate::QuietLog,
}

crate::quiet_client_context!(DlqContext, log);

impl ProducerContext for DlqContext {
    type DeliveryOpaque = Box<(PartitionKey, i64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let err = result.as_ref().err().map(|(e, _)| e.to_string());
        let (part, offset) = *opaque;
        self.acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((part, offset, err));
    }
}

pub(crate) struct Dlq {
    producer: ThreadedProducer<DlqContext>,
    topic: String,
}

impl Dlq {
    pub(crate) fn new(mut config: ClientConfig, topic: String) -> Result<Self, KafkaError> {
        // Idempotent and acknowledged by all replicas: a dead letter is the only copy of a
        // rejected interaction that anyone will look at.
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "20");
        let producer = config.create_with_context(DlqContext {
            acks: Mutex::new(Vec::new()),
            log: crate::QuietLog::new("dead-letter producer"),
        })?;
        Ok(Self { producer, topic })
    }

    /// Queues one rejected message. Blocks only while librdkafka's local queue is full.
    pub(crate) fn send(
        &self,
        part: PartitionKey,
        msg: &BorrowedMessage<'_>,
        err: &EventError,
    ) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new();
        if let Some(orig) = msg.headers() {
            for hd in orig.iter() {
                headers = headers.insert(hd);
            }
        }
        let reason = err.to_string();
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        for (key, value) in [
            (h::REASON, reason.as_str()),
            (h::REASON_CODE, err.reason()),
            (h::SOURCE_TOPIC, msg.topic()),
            (h::SOURCE_PARTITION, partition.as_str()),
            (h::SOURCE_OFFSET, offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new((part, msg.offset())))
            .payload(msg.payload().unwrap_or_default())
            .headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The producer's own thread drains the queue; wait for room.
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Acknowledgements received since the last call.
    pub(crate) fn drain(&self) -> Vec<Ack> {
        std::mem::take(
            &mut *self
                .producer
                .context()
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Waits up to `timeout` for every queued write to be acknowledged.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}
