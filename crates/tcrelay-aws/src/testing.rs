//! Set-up for tests against moto's server (feature `testing`): where moto is, clients for it
//! with short bounds, uniquely named resources, and reading a queue back.
//!
//! `scripts/test.sh` starts moto and exports [`MOTO_URL_VAR`]; [`moto_url`] panics without it,
//! so a test that needs moto fails loudly instead of being skipped. Every resource gets a UUID
//! in its name, so tests run in parallel against one moto.
//!
//! ```no_run
//! # async fn example() {
//! use tcrelay_aws::testing::{MotoOptions, MotoResources, receive_all};
//!
//! let aws = MotoResources::create(
//!     "webhook",
//!     MotoOptions {
//!         quarantine: true,
//!         ..MotoOptions::from_env()
//!     },
//! )
//! .await;
//! // ... run the code under test against aws.queue_url, aws.quarantine(), aws.table, aws.bucket ...
//! let messages = receive_all(&aws.clients.sqs, &aws.queue_url).await;
//! # }
//! ```

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, QueueAttributeName};

use crate::config::{AwsClients, AwsConfigOptions};
use crate::table::create_table_if_missing;

/// The environment variable with moto's URL, e.g. `http://127.0.0.1:5000`.
pub const MOTO_URL_VAR: &str = "TCRELAY_TEST_MOTO_URL";

/// moto's URL, from [`MOTO_URL_VAR`]. Panics with instructions when it is not set: tests that
/// need moto are never skipped silently.
pub fn moto_url() -> String {
    std::env::var(MOTO_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{MOTO_URL_VAR} is not set: this test needs moto's server. Run scripts/test.sh, or \
             start `.venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p <port>` and export \
             {MOTO_URL_VAR}=http://127.0.0.1:<port>"
        )
    })
}

/// Client options for moto at `url`: dummy credentials, `us-east-1`, and short bounds (20 s an
/// operation, 2 s to connect, 2 attempts) so a broken test fails fast. Adjust the fields where a
/// test needs other bounds.
pub fn moto_options(url: &str) -> AwsConfigOptions {
    let mut options = AwsConfigOptions::emulator(url);
    options.region = Some("us-east-1".to_owned());
    options.operation_timeout = Some(Duration::from_secs(20));
    options.connect_timeout = Some(Duration::from_secs(2));
    options.max_attempts = Some(2);
    options
}

/// Clients for the moto of [`moto_url`], built with [`moto_options`].
pub async fn moto_clients() -> AwsClients {
    AwsClients::new(&moto_options(&moto_url()).load().await)
}

/// `{prefix}-{UUID}`: a unique lowercase name, valid for queues, tables and buckets when
/// `prefix` is (lowercase letters, digits and hyphens; at most 30 characters for a bucket).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a uniquely named queue (a FIFO queue, `….fifo`, when `fifo`); returns its URL.
pub async fn create_queue(clients: &AwsClients, prefix: &str, fifo: bool) -> String {
    create_queue_with(clients, prefix, fifo, None).await
}

async fn create_queue_with(
    clients: &AwsClients,
    prefix: &str,
    fifo: bool,
    visibility_timeout: Option<Duration>,
) -> String {
    let mut request = clients.sqs.create_queue();
    if fifo {
        request = request
            .queue_name(format!("{}.fifo", unique_name(prefix)))
            .attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        request = request.queue_name(unique_name(prefix));
    }
    if let Some(timeout) = visibility_timeout {
        request = request.attributes(
            QueueAttributeName::VisibilityTimeout,
            timeout.as_secs().to_string(),
        );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue in moto: {e:?}"))
        .queue_url
        .expect("queue url")
}

/// Makes `dlq_url` the dead-letter queue of `queue_url` (a RedrivePolicy, three receives).
pub async fn attach_dead_letter_queue(clients: &AwsClients, queue_url: &str, dlq_url: &str) {
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DLQ attributes from moto: {e:?}"))
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("the DLQ's ARN");
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}"#),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("set the RedrivePolicy in moto: {e:?}"));
}

/// Creates a uniquely named table the way the functions do ([`create_table_if_missing`]);
/// returns its name.
pub async fn create_table(clients: &AwsClients, prefix: &str) -> String {
    let name = unique_name(prefix);
    create_table_if_missing(&clients.dynamodb, &name)
        .await
        .unwrap_or_else(|e| panic!("create table in moto: {e}"));
    name
}

/// Creates a uniquely named bucket; returns its name.
pub async fn create_bucket(clients: &AwsClients, prefix: &str) -> String {
    let name = unique_name(prefix);
    clients
        .s3
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket in moto: {e:?}"));
    name
}

/// Stores `value` as a new, uniquely named Secrets Manager secret in the moto at `url`; returns
/// its ARN.
pub async fn create_secret(url: &str, prefix: &str, value: &str) -> String {
    let sdk = moto_options(url).load().await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(unique_name(prefix))
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret in moto: {e:?}"))
        .arn
        .expect("secret arn")
}

/// What [`MotoResources::create`] makes, and how its clients are built. Start from
/// [`MotoOptions::from_env`] or [`MotoOptions::new`] and change fields with struct update syntax.
#[derive(Debug, Clone)]
pub struct MotoOptions {
    /// How the clients are built; `endpoint_url` must be moto's URL. [`moto_options`] by default.
    pub aws: AwsConfigOptions,
    /// The queue is a FIFO queue (the quarantine queue is always a standard one, as deployed).
    pub fifo: bool,
    /// Create a quarantine queue as well ([`MotoResources::quarantine`]).
    pub quarantine: bool,
    /// The queues' visibility timeout; `None` leaves SQS's default (30 s).
    pub visibility_timeout: Option<Duration>,
}

impl MotoOptions {
    /// A standard queue, no quarantine queue, clients for moto at `url` with [`moto_options`].
    pub fn new(url: &str) -> Self {
        MotoOptions {
            aws: moto_options(url),
            fifo: false,
            quarantine: false,
            visibility_timeout: None,
        }
    }

    /// [`MotoOptions::new`] for the moto of [`moto_url`] (panics when it is not set).
    pub fn from_env() -> Self {
        Self::new(&moto_url())
    }
}

/// One test's own resources in moto: a queue, maybe a quarantine queue, a table (made as the
/// functions make it) and a bucket, all uniquely named, with the clients that made them.
#[derive(Debug, Clone)]
pub struct MotoResources {
    /// moto's URL (the clients' endpoint), for code under test that builds its own clients.
    pub url: String,
    /// Clients for moto, built from [`MotoOptions::aws`] (the resources themselves are made
    /// with [`moto_options`]' bounds).
    pub clients: AwsClients,
    /// The queue's URL.
    pub queue_url: String,
    /// The quarantine queue's URL, when [`MotoOptions::quarantine`] asked for one.
    pub quarantine_url: Option<String>,
    /// The DynamoDB table (dedupe records and cursors).
    pub table: String,
    /// The S3 bucket (claim checks).
    pub bucket: String,
}

impl MotoResources {
    /// Creates the resources, each named `{prefix}-…-{UUID}`. `prefix`: lowercase letters,
    /// digits and hyphens, at most 30 characters (a bucket name's limit). Panics when moto
    /// refuses or cannot be reached.
    pub async fn create(prefix: &str, options: MotoOptions) -> Self {
        assert!(
            !prefix.is_empty()
                && prefix.len() <= 30
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "resource name prefix {prefix:?}: use 1 to 30 lowercase letters, digits and hyphens"
        );
        let url = options
            .aws
            .endpoint_url
            .clone()
            .expect("MotoOptions::aws names moto's URL as its endpoint_url");
        let clients = AwsClients::new(&options.aws.load().await);
        // The resources are made with moto_options' bounds, not the test's: a test that gives
        // its clients a 1 s attempt timeout to provoke an outage must not fail its own setup
        // when moto is slow under a loaded machine.
        let setup = AwsClients::new(&moto_options(&url).load().await);
        let queue_url =
            create_queue_with(&setup, prefix, options.fifo, options.visibility_timeout).await;
        let quarantine_url = if options.quarantine {
            let prefix = format!("{prefix}-quarantine");
            Some(create_queue_with(&setup, &prefix, false, options.visibility_timeout).await)
        } else {
            None
        };
        let table = create_table(&setup, prefix).await;
        let bucket = create_bucket(&setup, prefix).await;
        MotoResources {
            url,
            clients,
            queue_url,
            quarantine_url,
            table,
            bucket,
        }
    }

    /// The quarantine queue's URL; panics when the resources were created without one.
    pub fn quarantine(&self) -> &str {
        self.quarantine_url
            .as_deref()
            .expect("created without a quarantine queue: set MotoOptions::quarantine")
    }
}

/// Every message now on a queue, with their message attributes, received without deleting
/// them (each stays hidden for a minute): batches until one comes back empty. For queues the
/// code under test has finished writing to. Panics when a receive fails.
pub async fn receive_all(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Message> {
    let mut all = Vec::new();
    for _ in 0..50 {
        let batch = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(60)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive from moto: {e:?}"))
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    all
}

/// Receives and deletes every message on a queue, with their message attributes, in the order
/// received, until `quiet_rounds` receives in a row come back empty. An error when a receive or
/// delete fails or the queue is not quiet within `timeout`.
pub async fn drain(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    quiet_rounds: u32,
    timeout: Duration,
) -> Result<Vec<Message>, String> {
    let deadline = Instant::now() + timeout;
    let mut all = Vec::new();
    let mut empty = 0;
    while empty < quiet_rounds {
        if Instant::now() > deadline {
            return Err(format!("{queue_url} did not drain within {timeout:?}"));
        }
        let batch = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("receive from {queue_url}: {e:?}"))?
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for message in batch {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("delete from {queue_url}: {e:?}"))?;
            all.push(message);
        }
    }
    Ok(all)
}

/// A message's `String` attribute `name`, if it has one.
pub fn string_attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.message_attributes()?.get(name)?.string_value()
}
