//! The same end-to-end on moto's server: the AWS adapters (SQS queue and quarantine queue,
//! DynamoDB dedupe and cursors, S3 claim check) over the real wire protocol. Small volume,
//! because moto serves a few hundred requests a second.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use tcrelay::Ports;
use tcrelay::check::QueuedMessage;
use tcrelay::metrics::Channel;
use tcrelay::scenario::{self, QueueReader, ScenarioOptions};
use tcrelay_aws::{AwsClients, AwsConfigOptions, create_table_if_missing, read_claim_checked};
use tcrelay_core::Envelope;
use tcrelay_core::config::AwsResources;
use tcrelay_core::ports::QuarantinedRequest;

fn moto_url() -> String {
    std::env::var("TCRELAY_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "TCRELAY_TEST_MOTO_URL is not set: this test needs moto's server. Run scripts/test.sh, \
             or start `.venv/bin/moto_server -H 127.0.0.1 -p <port>` and export \
             TCRELAY_TEST_MOTO_URL=http://127.0.0.1:<port>"
        )
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

struct SqsReader {
    clients: AwsClients,
    queue_url: String,
    quarantine_url: String,
}

impl SqsReader {
    /// Receives and deletes every message, until the queue stays empty for a while.
    async fn drain(&self, url: &str) -> Result<Vec<String>, String> {
        let mut bodies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut empty_rounds = 0;
        while empty_rounds < 3 {
            if Instant::now() > deadline {
                return Err(format!("{url} did not drain"));
            }
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| format!("receive: {e:?}"))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                empty_rounds += 1;
                continue;
            }
            empty_rounds = 0;
            for m in messages {
                let attributes = m.message_attributes().cloned().unwrap_or_default();
                let body =
                    read_claim_checked(&self.clients.s3, m.body().unwrap_or_default(), &attributes)
                        .await
                        .map_err(|e| e.to_string())?;
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| format!("delete: {e:?}"))?;
                bodies.push(body);
            }
        }
        Ok(bodies)
    }
}

#[async_trait]
impl QueueReader for SqsReader {
    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, String> {
        self.drain(&self.queue_url)
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
        self.drain(&self.quarantine_url)
            .await?
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| format!("not a quarantined request: {e}")))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_channel_through_the_aws_adapters_on_moto() {
    let url = moto_url();
    let mut options = AwsConfigOptions::emulator(&url);
    options.region = Some("us-east-1".into());
    // Bounds every AWS call, so one request (dedupe claim, send, complete) ends well within the
    // claim expiry below even on a loaded machine.
    options.operation_timeout = Some(Duration::from_secs(10));
    options.connect_timeout = Some(Duration::from_secs(2));
    // Few SDK retries: a failing call becomes a 503 the simulator retries, as in production.
    options.max_attempts = Some(2);
    let clients = AwsClients::new(&options.load().await);

    // A standard queue: a FIFO queue would drop duplicates itself and hide ours.
    let mut queue_urls = Vec::new();
    for name in [unique("tcrelay-e2e"), unique("tcrelay-e2e-quarantine")] {
        let out = clients
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, "60")
            .send()
            .await
            .expect("create queue");
        queue_urls.push(out.queue_url.expect("queue url"));
    }
    let table = unique("tcrelay-e2e");
    create_table_if_missing(&clients.dynamodb, &table)
        .await
        .expect("table");
    let bucket = unique("tcrelay-e2e");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");

    let resources = AwsResources {
        queue_url: queue_urls[0].clone(),
        queue_fifo: false,
        quarantine_queue_url: queue_urls[1].clone(),
        dedupe_table: table,
        claim_check_bucket: bucket,
        dedupe_ttl: Duration::from_secs(86_400),
        // Longer than a request can take (three calls of at most 10 s): a shorter expiry lets a
        // retry take over a claim whose request is still sending, and both enqueue. Short
        // enough that claims a killed poll run left behind free up within the drain timeout.
        in_progress_expiry: Duration::from_secs(45),
        endpoint_url: Some(url),
    };
    let ports = Ports::aws(&clients, &resources);
    let reader = SqsReader {
        clients: clients.clone(),
        queue_url: queue_urls[0].clone(),
        quarantine_url: queue_urls[1].clone(),
    };
    let options = ScenarioOptions {
        seed: 5,
        duration: Duration::from_secs(12),
        changes: 300,
        poll_interval: Duration::from_secs(2),
        queue_outage: true,
        kill_a_poll_run: true,
        duplicate_rate: 0.05,
        progress: true,
        drain_timeout: Duration::from_secs(120),
        // A standard SQS queue does not keep order; the order rule is checked on SQLite.
        check_order: false,
    };
    let report = scenario::run(&options, ports, &reader)
        .await
        .expect("scenario runs");
    let table = report.table();
    println!("{table}");
    assert!(report.check.passed(), "{table}");
    assert_eq!(report.quarantine, Ok(()), "{table}");
    assert!(report.changes >= 300, "{table}");
    for channel in Channel::ALL {
        let c = report
            .channels
            .iter()
            .find(|(ch, _)| *ch == channel)
            .unwrap()
            .1;
        assert!(
            c.enqueued > 0,
            "{} enqueued nothing\n{table}",
            channel.as_str()
        );
    }
    assert!(
        report.retried_answers > 0,
        "the queue outage answered no 503\n{table}"
    );
    assert_eq!(report.quarantined, 3, "{table}");
}
