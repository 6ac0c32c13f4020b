//! The sink and quarantine contracts (`tcrelay_core::conformance::event_sink` and `::quarantine`)
//! on SQS queues (standard and FIFO) with the S3 claim check, over the wire against moto, as
//! `AwsPorts` wires them: each queue's claim-check threshold is its own `MaximumMessageSize`.
//! The adapters are built by hand (both queue types, both claim-check formats) and by
//! `AwsPorts::with_clients` from `AwsSettings`, the one wiring the Lambdas use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextMut;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_sdk_sqs::types::QueueAttributeName;
use tcrelay_aws::testing::{
    create_bucket, drain, moto_clients, moto_options, moto_url, unique_name,
};
use tcrelay_aws::{
    AwsClients, AwsPorts, AwsSettings, ClaimCheck, ClaimCheckSettings, SqsQuarantine, SqsSink,
    SqsSinkConfig, Threshold, read_claim_checked,
};
use tcrelay_core::conformance::{event_sink, quarantine};
use tcrelay_core::ports::{EventSink, Quarantine, QuarantinedRequest};

/// The queues' `MaximumMessageSize`, so their claim-check threshold: SQS's smallest but a few
/// steps, so the rules cross it with small envelopes.
const QUEUE_LIMIT: usize = 4096;

/// Makes SQS refuse, while on, the batch entries whose `eventName` attribute is
/// [`event_sink::REFUSED_EVENT`], as SQS refuses a message it will never take: an invalid
/// `DelaySeconds` (over 900 on a standard queue, refused entry by entry on HTTP 200; any on a
/// FIFO queue, whose whole call moto then refuses).
#[derive(Debug, Clone, Default)]
struct RefuseEvent(Arc<AtomicBool>);

impl Intercept for RefuseEvent {
    fn name(&self) -> &'static str {
        "RefuseEvent"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.0.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(input) = context.input_mut().downcast_mut::<SendMessageBatchInput>() {
            for entry in input.entries.iter_mut().flatten() {
                let refused = entry
                    .message_attributes
                    .as_ref()
                    .and_then(|attrs| attrs.get("eventName"))
                    .and_then(|name| name.string_value())
                    == Some(event_sink::REFUSED_EVENT);
                if refused {
                    entry.delay_seconds = Some(901);
                }
            }
        }
        Ok(())
    }
}

/// A uniquely named queue (FIFO when `fifo`) of [`QUEUE_LIMIT`] bytes; its URL.
async fn queue(clients: &AwsClients, fifo: bool) -> String {
    let name = unique_name("tcrelay-conformance");
    let mut request = clients.sqs.create_queue().attributes(
        QueueAttributeName::MaximumMessageSize,
        QUEUE_LIMIT.to_string(),
    );
    request = if fifo {
        request
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
    } else {
        request.queue_name(name)
    };
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue in moto: {e:?}"))
        .queue_url
        .expect("queue url")
}

/// Every message now on `queue_url`, received and deleted, each as its consumer reads it (a
/// claim check followed).
async fn consume(clients: &AwsClients, queue_url: &str) -> Vec<String> {
    let messages = drain(&clients.sqs, queue_url, 2, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut texts = Vec::with_capacity(messages.len());
    for message in messages {
        let empty = Default::default();
        let text = read_claim_checked(
            &clients.s3,
            message.body().unwrap_or_default(),
            message.message_attributes().unwrap_or(&empty),
        )
        .await
        .unwrap_or_else(|e| panic!("follow the claim check: {e}"));
        texts.push(text);
    }
    texts
}

/// The SQS sink on a fresh queue with a bucket, its threshold the queue's own.
pub struct SqsQueue {
    clients: AwsClients,
    queue_url: String,
    fifo: bool,
    refusing: RefuseEvent,
    sink: Arc<SqsSink>,
}

/// The SQS sink on a fresh queue (FIFO when `fifo`) with a bucket, claim-checking in the
/// Extended Client's 1.x format when `legacy`.
async fn sqs_queue_in(fifo: bool, legacy: bool) -> SqsQueue {
    let clients = moto_clients().await;
    let queue_url = queue(&clients, fifo).await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let refusing = RefuseEvent::default();
    let sdk = moto_options(&moto_url()).load().await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(refusing.clone())
            .build(),
    );
    let mut config = SqsSinkConfig::new(&queue_url);
    config.claim_check_threshold =
        Threshold::of_queue(&clients.sqs, &queue_url, &ClaimCheckSettings::default());
    config.retry_base_delay = Duration::from_millis(1);
    let sink = Arc::new(SqsSink::new(
        sqs,
        config,
        Some(ClaimCheck::new(clients.s3.clone(), bucket).with_legacy_format(legacy)),
    ));
    SqsQueue {
        clients,
        queue_url,
        fifo,
        refusing,
        sink,
    }
}

async fn sqs_queue(fifo: bool) -> SqsQueue {
    sqs_queue_in(fifo, false).await
}

#[async_trait::async_trait]
impl event_sink::Subject for SqsQueue {
    fn sink(&self) -> &dyn EventSink {
        self.sink.as_ref()
    }

    async fn receive(&self) -> Vec<String> {
        consume(&self.clients, &self.queue_url).await
    }

    fn keeps_order(&self) -> bool {
        self.fifo
    }

    fn refuse(&self, on: bool) {
        self.refusing.0.store(on, Ordering::SeqCst);
    }

    fn claim_check_threshold(&self) -> Option<usize> {
        Some(QUEUE_LIMIT)
    }
}

/// The SQS quarantine on a fresh queue with a bucket, its threshold the queue's own.
pub struct SqsQuarantineQueue {
    clients: AwsClients,
    queue_url: String,
    quarantine: Arc<SqsQuarantine>,
}

async fn sqs_quarantine(fifo: bool) -> SqsQuarantineQueue {
    let clients = moto_clients().await;
    let queue_url = queue(&clients, fifo).await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let quarantine = Arc::new(
        SqsQuarantine::new(
            clients.sqs.clone(),
            &queue_url,
            Some(ClaimCheck::new(clients.s3.clone(), bucket).with_key_prefix("quarantine/")),
        )
        .with_claim_check_threshold(Threshold::of_queue(
            &clients.sqs,
            &queue_url,
            &ClaimCheckSettings::default(),
        )),
    );
    SqsQuarantineQueue {
        clients,
        queue_url,
        quarantine,
    }
}

#[async_trait::async_trait]
impl quarantine::Subject for SqsQuarantineQueue {
    fn quarantine(&self) -> &dyn Quarantine {
        self.quarantine.as_ref()
    }

    async fn kept(&self) -> Vec<QuarantinedRequest> {
        consume(&self.clients, &self.queue_url)
            .await
            .iter()
            .map(|text| {
                serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("not a quarantined request ({e}): {text:.300}"))
            })
            .collect()
    }

    fn claim_check_threshold(&self) -> Option<usize> {
        Some(QUEUE_LIMIT)
    }
}

/// The sink and the quarantine as `AwsPorts` wires them for the webhook from its settings: a
/// FIFO queue, a quarantine queue, one bucket, each threshold asked of its queue.
async fn wired() -> (SqsQueue, SqsQuarantineQueue) {
    let setup = moto_clients().await;
    let queue_url = queue(&setup, true).await;
    let quarantine_url = queue(&setup, false).await;
    let bucket = create_bucket(&setup, "tcrelay").await;
    let refusing = RefuseEvent::default();
    let mut clients = AwsClients::new(&moto_options(&moto_url()).load().await);
    clients.sqs = aws_sdk_sqs::Client::from_conf(
        clients
            .sqs
            .config()
            .to_builder()
            .interceptor(refusing.clone())
            .build(),
    );
    let settings = AwsSettings {
        queue_url: queue_url.clone(),
        queue_fifo: true,
        quarantine_queue_url: Some(quarantine_url.clone()),
        dedupe_table: unique_name("unused"),
        claim_check_bucket: Some(bucket),
        dedupe_ttl: Duration::from_secs(3600),
        in_progress_expiry: Duration::from_secs(60),
        endpoint_url: Some(moto_url()),
        claim_check: ClaimCheckSettings::default(),
    };
    let ports = AwsPorts::with_clients(clients, &settings);
    let sink = SqsQueue {
        clients: setup.clone(),
        queue_url,
        fifo: true,
        refusing,
        sink: ports.sink,
    };
    let quarantine = SqsQuarantineQueue {
        clients: setup,
        queue_url: quarantine_url,
        quarantine: ports
            .quarantine
            .expect("the webhook's ports keep a quarantine"),
    };
    (sink, quarantine)
}

mod standard_sink {
    tcrelay_core::event_sink_conformance!(super::sqs_queue(false));
}

mod fifo_sink {
    tcrelay_core::event_sink_conformance!(super::sqs_queue(true));
}

mod fifo_sink_legacy_claim_check {
    tcrelay_core::event_sink_conformance!(super::sqs_queue_in(true, true));
}

mod wired_sink {
    async fn subject() -> super::SqsQueue {
        super::wired().await.0
    }
    tcrelay_core::event_sink_conformance!(subject());
}

mod wired_quarantine {
    async fn subject() -> super::SqsQuarantineQueue {
        super::wired().await.1
    }
    tcrelay_core::quarantine_conformance!(subject());
}

mod standard_quarantine {
    tcrelay_core::quarantine_conformance!(super::sqs_quarantine(false));
}

mod fifo_quarantine {
    tcrelay_core::quarantine_conformance!(super::sqs_quarantine(true));
}
