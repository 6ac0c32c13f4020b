//! The same end-to-end on moto's server: the AWS adapters (SQS queue and quarantine queue,
//! DynamoDB dedupe and cursors, S3 claim check) over the real wire protocol. Small volume,
//! because moto serves a few hundred requests a second.

use crate::common;

use std::time::Duration;

use async_trait::async_trait;
use tcrelay::Ports;
use tcrelay_aws::read_claim_checked;
use tcrelay_aws::testing::{MotoOptions, MotoResources, drain};
use tcrelay_aws::{AwsPorts, AwsSettings};
use tcrelay_core::Envelope;
use tcrelay_core::ports::QuarantinedRequest;
use tcrelay_demo::check::QueuedMessage;
use tcrelay_demo::scenario::{self, QueueReader, ScenarioOptions};

struct SqsReader {
    aws: MotoResources,
}

impl SqsReader {
    /// Receives and deletes every message, until the queue stays empty for a while; their
    /// bodies, claim checks followed.
    async fn drain(&self, url: &str) -> Result<Vec<String>, String> {
        let messages = drain(&self.aws.clients.sqs, url, 3, Duration::from_secs(120)).await?;
        let mut bodies = Vec::new();
        for m in messages {
            let attributes = m.message_attributes().cloned().unwrap_or_default();
            let body = read_claim_checked(
                &self.aws.clients.s3,
                m.body().unwrap_or_default(),
                &attributes,
            )
            .await
            .map_err(|e| e.to_string())?;
            bodies.push(body);
        }
        Ok(bodies)
    }
}

#[async_trait]
impl QueueReader for SqsReader {
    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, String> {
        self.drain(&self.aws.queue_url)
            .await?
            .iter()
            .enumerate()
            .map(|(i, body)| {
                serde_json::from_str::<Envelope>(body)
                    .map(|envelope| QueuedMessage {
                        position: i as i64,
                        envelope,
                    })
                    .map_err(|e| format!("not an envelope: {e}"))
            })
            .collect()
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedRequest>, String> {
        self.drain(self.aws.quarantine())
            .await?
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| format!("not a quarantined request: {e}")))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_channel_through_the_aws_adapters_on_moto() {
    common::show_relay_logs();
    // moto_options' few SDK retries (2 attempts): a failing call becomes a 503 the simulator
    // retries, as in production.
    let mut options = MotoOptions {
        quarantine: true,
        visibility_timeout: Some(Duration::from_secs(60)),
        // A standard queue: a FIFO queue would drop duplicates itself and hide ours.
        fifo: false,
        ..MotoOptions::from_env()
    };
    // Bounds every AWS call, so one request (dedupe claim, send, complete) ends well within the
    // claim expiry below even on a loaded machine.
    options.aws.operation_timeout = Some(Duration::from_secs(10));
    let aws = MotoResources::create("tcrelay-e2e", options).await;

    let resources = AwsSettings {
        queue_url: aws.queue_url.clone(),
        queue_fifo: false,
        quarantine_queue_url: Some(aws.quarantine().to_owned()),
        dedupe_table: aws.table.clone(),
        claim_check_bucket: Some(aws.bucket.clone()),
        dedupe_ttl: Duration::from_secs(86_400),
        // Longer than a request can take (three calls of at most 10 s): a shorter expiry lets a
        // retry take over a claim whose request is still sending, and both enqueue. Short
        // enough that claims a killed poll run left behind free up within the drain timeout.
        in_progress_expiry: Duration::from_secs(45),
        endpoint_url: Some(aws.url.clone()),
        claim_check: Default::default(),
    };
    let ports = Ports::aws(AwsPorts::with_fixed_thresholds(
        aws.clients.clone(),
        &resources,
    ))
    .unwrap();
    let reader = SqsReader { aws };
    let options = ScenarioOptions {
        // A standard SQS queue does not keep order; the order rule is checked on SQLite.
        check_order: false,
        // The queue stalls for twice a short budget and DynamoDB slows down: requests run out
        // of time while their sends and completions go on after the answer (and the
        // simulator, whose own request timeout is 2 s, hangs up on many of them first).
        queue_stall: true,
        request_budget: Duration::from_secs(4),
        dedupe_slow: true,
        // Small volume: moto serves a few hundred requests a second.
        ..common::every_fault(5, Duration::from_secs(12), 300)
    };
    let report = scenario::run(&options, ports, &reader)
        .await
        .expect("scenario runs");
    let table = common::assert_every_fault_passed(&report, 300);
    common::assert_stalled_and_slowed(&report, &table);
}
