//! `tcrelay --backend aws doctor`: whether the resources the settings name are there and
//! usable, one [`Check`] each — the dedupe table's key schema and time to live, both queues,
//! the queue's MaximumMessageSize (the claim-check threshold) and FIFO agreeing with the
//! settings, the claim-check bucket writable, the secrets readable. Nothing is changed except
//! one probe object put in the bucket and deleted again.

use aws_sdk_dynamodb::types::{KeyType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::error::describe;
use crate::table::TTL_ATTRIBUTE;
use crate::{AwsClients, AwsSettings, Secrets, is_fifo_queue_url};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was checked and what was found.
    pub detail: String,
}

fn ok(detail: String) -> Check {
    Check { ok: true, detail }
}

fn fail(detail: String) -> Check {
    Check { ok: false, detail }
}

/// Runs every check; `secret_arns` are the configured secrets (name of the setting, ARN).
pub async fn check(
    clients: &AwsClients,
    secrets: &Secrets,
    resources: &AwsSettings,
    secret_arns: &[(&str, String)],
) -> Vec<Check> {
    let mut checks = vec![table(clients, &resources.dedupe_table).await];
    checks.push(ttl(clients, &resources.dedupe_table).await);
    checks.push(queue(clients, "queue", &resources.queue_url, resources.queue_fifo).await);
    if let Some(url) = &resources.quarantine_queue_url {
        checks.push(queue(clients, "quarantine queue", url, is_fifo_queue_url(url)).await);
    }
    if let Some(name) = &resources.claim_check_bucket {
        checks.push(bucket(clients, name).await);
    }
    for (setting, arn) in secret_arns {
        checks.push(match secrets.read(arn).await {
            Ok(_) => ok(format!("secret {setting} readable")),
            Err(e) => fail(format!("secret {setting}: {e}")),
        });
    }
    checks
}

async fn table(clients: &AwsClients, name: &str) -> Check {
    let described = match clients
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
    {
        Ok(d) => d,
        Err(e) => return fail(format!("table {name}: {}", describe("DescribeTable", &e))),
    };
    let keys: Vec<(String, KeyType)> = described
        .table()
        .map(|t| t.key_schema())
        .unwrap_or_default()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    if keys == [("pk".to_owned(), KeyType::Hash)] {
        ok(format!("table {name}: key schema pk (HASH)"))
    } else {
        fail(format!(
            "table {name}: key schema {keys:?}, the relay needs exactly pk (HASH)"
        ))
    }
}

async fn ttl(clients: &AwsClients, name: &str) -> Check {
    let described = match clients
        .dynamodb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
    {
        Ok(d) => d,
        Err(e) => {
            return fail(format!(
                "table {name} TTL: {}",
                describe("DescribeTimeToLive", &e)
            ));
        }
    };
    let description = described.time_to_live_description();
    let status = description.and_then(|d| d.time_to_live_status());
    let attribute = description.and_then(|d| d.attribute_name());
    match (status, attribute) {
        (Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling), Some(TTL_ATTRIBUTE)) => {
            ok(format!("table {name}: TTL on {TTL_ATTRIBUTE}"))
        }
        _ => fail(format!(
            "table {name}: TTL is {status:?} on {attribute:?}; expired dedupe records are only deleted with TTL enabled on {TTL_ATTRIBUTE}"
        )),
    }
}

async fn queue(clients: &AwsClients, what: &str, url: &str, fifo_setting: bool) -> Check {
    let attributes = match clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return fail(format!(
                "{what} {url}: {}",
                describe("GetQueueAttributes", &e)
            ));
        }
    };
    let get =
        |name: QueueAttributeName| attributes.attributes().and_then(|a| a.get(&name)).cloned();
    let fifo = get(QueueAttributeName::FifoQueue).is_some_and(|v| v == "true");
    let size = get(QueueAttributeName::MaximumMessageSize).unwrap_or_else(|| "?".into());
    if fifo != fifo_setting || fifo != is_fifo_queue_url(url) {
        return fail(format!(
            "{what} {url}: FifoQueue is {fifo}, the settings say {fifo_setting}"
        ));
    }
    ok(format!(
        "{what} {url}: {}, MaximumMessageSize {size} (larger envelopes are claim-checked)",
        if fifo { "FIFO" } else { "standard" }
    ))
}

async fn bucket(clients: &AwsClients, name: &str) -> Check {
    let key = format!("tcrelay-doctor/{}", uuid::Uuid::new_v4());
    if let Err(e) = clients
        .s3
        .put_object()
        .bucket(name)
        .key(&key)
        .body(Vec::new().into())
        .send()
        .await
    {
        return fail(format!("bucket {name}: {}", describe("PutObject", &e)));
    }
    match clients
        .s3
        .delete_object()
        .bucket(name)
        .key(&key)
        .send()
        .await
    {
        Ok(_) => ok(format!("bucket {name}: writable")),
        Err(e) => fail(format!(
            "bucket {name}: writable, but the probe {key} could not be deleted: {}",
            describe("DeleteObject", &e)
        )),
    }
}
