//! Creating the DynamoDB table for tests and the local runner (the SAM template creates the real
//! one): partition key `pk` (string), on-demand billing, TTL on `expiresAt`.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use tcrelay_core::ports::StoreError;

use crate::error::unavailable;

/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Creates `table_name` unless it exists, waits until it is active, and enables TTL on
/// `expiresAt`. Safe to call concurrently and repeatedly.
pub async fn create_table_if_missing(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<(), StoreError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Unavailable(e.to_string());
    let created = client
        .create_table()
        .table_name(table_name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table = table_name, "DynamoDB table created"),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(unavailable("DynamoDB CreateTable", &err)),
    }

    // DynamoDB creates tables asynchronously; TTL can be set once the table is active.
    let mut active = false;
    for _ in 0..300 {
        let described = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| unavailable("DynamoDB DescribeTable", &e))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !active {
        return Err(StoreError::Unavailable(format!(
            "table {table_name} did not become active"
        )));
    }

    let ttl = client
        .describe_time_to_live()
        .table_name(table_name)
        .send()
        .await
        .map_err(|e| unavailable("DynamoDB DescribeTimeToLive", &e))?;
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(build)?;
    match client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // A concurrent caller enabled it first ("TimeToLive is already enabled").
        Err(err)
            if err
                .as_service_error()
                .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::message(e))
                .is_some_and(|m| m.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(err) => Err(unavailable("DynamoDB UpdateTimeToLive", &err)),
    }
}
