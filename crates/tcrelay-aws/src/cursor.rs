//! `DynamoCursorStore`: poll cursors in the dedupe table, one item per stream.
//!
//! Item: `pk` (S, `cursor#<stream>`), `cursor` (S, the `lastUpdatedAt` Tradecloud returned,
//! verbatim; absent before the first checkpoint), `version` (N, bumped by every write of the
//! cursor), `leaseOwner` (S) and `leaseExpiresAt` (N, epoch milliseconds) while a run holds it,
//! `windowStart` (S, the poll window's start while runs have not caught up; absent otherwise),
//! `walk` (S, where a walk by offset stood when the last run stopped in it, the poll run's text
//! verbatim; absent otherwise). No `expiresAt`: cursor items never expire.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use tcrelay_core::ports::{Cursor, CursorStore, StoreError};

use crate::clock::{Clock, system_clock};
use crate::dedupe::number;
use crate::error::unavailable;

/// The partition key prefix of cursor items, apart from dedupe keys in the same table.
pub const CURSOR_KEY_PREFIX: &str = "cursor#";

/// Poll cursors with leases in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoCursorStore {
    client: aws_sdk_dynamodb::Client,
    table_name: String,
    clock: Clock,
}

impl std::fmt::Debug for DynamoCursorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoCursorStore")
            .field("table_name", &self.table_name)
            .finish_non_exhaustive()
    }
}

/// Whether an SDK error is DynamoDB's conditional-check failure.
fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl DynamoCursorStore {
    /// A store in `table_name` (the dedupe table), on the system clock.
    pub fn new(client: aws_sdk_dynamodb::Client, table_name: impl Into<String>) -> Self {
        DynamoCursorStore {
            client,
            table_name: table_name.into(),
            clock: system_clock(),
        }
    }

    /// Uses `clock` for "now" (tests move it to expire leases without waiting).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn key(stream: &str) -> AttributeValue {
        AttributeValue::S(format!("{CURSOR_KEY_PREFIX}{stream}"))
    }

    fn now_ms(&self) -> i64 {
        (self.clock)().timestamp_millis()
    }
}

fn parse_cursor(item: &HashMap<String, AttributeValue>) -> Result<Cursor, StoreError> {
    let value = match item.get("cursor") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::S(s)) => Some(s.clone()),
        Some(_) => return Err(StoreError::Corrupt("cursor is not a string".into())),
    };
    let version = number(item, "version")?.unwrap_or(0);
    let version = u64::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("negative cursor version {version}")))?;
    let window_start = match item.get("windowStart") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::S(s)) => Some(s.clone()),
        Some(_) => return Err(StoreError::Corrupt("windowStart is not a string".into())),
    };
    let walk = match item.get("walk") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::S(s)) => Some(s.clone()),
        Some(_) => return Err(StoreError::Corrupt("walk is not a string".into())),
    };
    Ok(Cursor {
        value,
        version,
        window_start,
        walk,
    })
}

/// The attributes a checkpoint writes when given and removes when not, as (name placeholder,
/// value placeholder, value): a checkpoint leaves nothing of an earlier one's behind.
type Optional<'a> = [(&'static str, &'static str, Option<&'a str>)];

/// The checkpoint's update expression: the value and the version, each given optional
/// attribute SET and each other one REMOVEd (DynamoDB refuses an empty REMOVE clause).
fn checkpoint_update(optional: &Optional<'_>) -> String {
    let mut set = vec![
        "#cursor = :value".to_owned(),
        "#version = #version + :one".to_owned(),
    ];
    let mut remove = Vec::new();
    for (name, placeholder, value) in optional {
        match value {
            Some(_) => set.push(format!("{name} = {placeholder}")),
            None => remove.push(*name),
        }
    }
    let mut update = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        update.push_str(" REMOVE ");
        update.push_str(&remove.join(", "));
    }
    update
}

#[async_trait]
impl CursorStore for DynamoCursorStore {
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<Cursor>, StoreError> {
        let now = self.now_ms();
        let until =
            now.saturating_add(i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2));
        // Free (no item, or no lease), ours already (a renewal), or expired.
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .update_expression(
                "SET #owner = :owner, #until = :until, #version = if_not_exists(#version, :zero)",
            )
            .condition_expression(
                "attribute_not_exists(#owner) OR #owner = :owner OR #until < :now",
            )
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_names("#until", "leaseExpiresAt")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                let cursor = parse_cursor(&item)?;
                tracing::debug!(
                    stream,
                    owner,
                    version = cursor.version,
                    "cursor lease acquired"
                );
                Ok(Some(cursor))
            }
            Err(err) if is_condition_failure(&err) => {
                tracing::info!(stream, owner, "cursor lease held by another run");
                Ok(None)
            }
            Err(err) => Err(unavailable("DynamoDB UpdateItem (cursor acquire)", &err)),
        }
    }

    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<Cursor, StoreError> {
        let optional = [
            ("#window", ":window", window_start),
            ("#walk", ":walk", walk),
        ];
        // Conditional on the version read and on still being the lease owner: a run whose lease
        // was taken over must not move the cursor under the new owner.
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .update_expression(checkpoint_update(&optional))
            .condition_expression("#version = :expected AND #owner = :owner")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_names("#window", "windowStart")
            .expression_attribute_names("#walk", "walk");
        // Only the values the expression names: DynamoDB refuses an unused one.
        for (_, placeholder, value) in optional {
            if let Some(value) = value {
                request = request
                    .expression_attribute_values(placeholder, AttributeValue::S(value.to_owned()));
            }
        }
        let result = request
            .expression_attribute_values(":value", AttributeValue::S(value.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => parse_cursor(&output.attributes.unwrap_or_default()),
            Err(err) if is_condition_failure(&err) => {
                // The SDK's retry of this very checkpoint, whose first attempt went through but
                // answered after the attempt timeout, finds it made: still our lease, one
                // version on, our value, window start and walk. A run that took that for a lost
                // lease would stop (and fail) for nothing.
                let old = match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        failed.item.as_ref()
                    }
                    _ => None,
                };
                if let Some(old) = old
                    && old
                        .get("leaseOwner")
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|held_by| held_by == owner)
                    && let Ok(made) = parse_cursor(old)
                    && made.version == expected_version + 1
                    && made.value.as_deref() == Some(value)
                    && made.window_start.as_deref() == window_start
                    && made.walk.as_deref() == walk
                {
                    return Ok(made);
                }
                Err(StoreError::Conflict(format!(
                    "cursor {stream}: version is no longer {expected_version} or {owner} lost the lease"
                )))
            }
            Err(err) => Err(unavailable("DynamoDB UpdateItem (cursor checkpoint)", &err)),
        }
    }

    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        let until = self
            .now_ms()
            .saturating_add(i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2));
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .update_expression("SET #until = :until")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_names("#until", "leaseExpiresAt")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => Err(StoreError::Conflict(format!(
                "cursor {stream}: {owner} no longer holds the lease"
            ))),
            Err(err) => Err(unavailable("DynamoDB UpdateItem (cursor renew)", &err)),
        }
    }

    async fn release(&self, stream: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .update_expression("REMOVE #owner, #until")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_names("#until", "leaseExpiresAt")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not ours (expired and taken over, or never held): nothing to give up.
            Err(err) if is_condition_failure(&err) => {
                tracing::debug!(stream, owner, "cursor release: lease not held");
                Ok(())
            }
            Err(err) => Err(unavailable("DynamoDB UpdateItem (cursor release)", &err)),
        }
    }

    async fn read(&self, stream: &str) -> Result<Option<Cursor>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("DynamoDB GetItem (cursor read)", &e))?;
        output.item.as_ref().map(parse_cursor).transpose()
    }

    async fn set(&self, stream: &str, value: &str) -> Result<Cursor, StoreError> {
        // ADD creates the version at 1 on a new item; the lease is left as it is. The window
        // start and the walk go: the operator says where the next run starts.
        let output = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("pk", Self::key(stream))
            .update_expression("SET #cursor = :value REMOVE #window, #walk ADD #version :one")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#window", "windowStart")
            .expression_attribute_names("#walk", "walk")
            .expression_attribute_values(":value", AttributeValue::S(value.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| unavailable("DynamoDB UpdateItem (cursor set)", &e))?;
        tracing::info!(stream, "cursor set by operator");
        parse_cursor(&output.attributes.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_sets_what_it_is_given_and_removes_the_rest() {
        let update = |window: Option<&str>, walk: Option<&str>| {
            checkpoint_update(&[("#window", ":window", window), ("#walk", ":walk", walk)])
        };
        let base = "SET #cursor = :value, #version = #version + :one";
        assert_eq!(update(None, None), format!("{base} REMOVE #window, #walk"));
        assert_eq!(
            update(Some("w"), None),
            format!("{base}, #window = :window REMOVE #walk")
        );
        assert_eq!(
            update(None, Some("k")),
            format!("{base}, #walk = :walk REMOVE #window")
        );
        assert_eq!(
            update(Some("w"), Some("k")),
            format!("{base}, #window = :window, #walk = :walk")
        );
    }
}
