//! `DynamoDedupeStore`: dedupe records in DynamoDB, after the design of Powertools' idempotency
//! utility: a conditional put claims a key, expiry is checked explicitly in the condition (the TTL
//! sweeper may lag by days), an in-progress claim has its own short expiry so a crashed request
//! does not swallow the event, and a failed request deletes its claim.
//!
//! Item: `pk` (S, the dedupe key), `state` (S, `in-progress` | `completed`), `fullState` (BOOL),
//! `expiresAt` (N, epoch seconds, the table's TTL attribute; renewed by a claim that finds the
//! record completed with less than half of the TTL left), `inProgressExpiresAt` (N, epoch
//! milliseconds, only while in progress), `claimToken` (S, the [`ClaimToken`] of the claim that
//! wrote it: complete and release go by it, and a poll run takes over an earlier run's claim in
//! progress by it, [`Claimant::takes_over`]).
//!
//! Many claims, completions or releases at once go in `TransactWriteItems` calls with the same
//! conditions (the `batch` module), answering each item as the single call would.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use tcrelay_core::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, RecordState,
    StoreError,
};

use crate::clock::{Clock, system_clock};
use crate::error::{describe, unavailable};

mod batch;

/// Attribute names of a dedupe item.
const PK: &str = "pk";
const STATE: &str = "state";
const FULL_STATE: &str = "fullState";
const EXPIRES_AT: &str = "expiresAt";
const IN_PROGRESS_EXPIRES_AT: &str = "inProgressExpiresAt";
const CLAIM_TOKEN: &str = "claimToken";
const IN_PROGRESS: &str = "in-progress";
const COMPLETED: &str = "completed";

/// A claim is granted when the key is absent, its record expired, or its in-progress claim
/// expired; `:now` is epoch seconds, `:nowms` epoch milliseconds. A macro, so the condition of
/// a poll run's claims below extends it at compile time and cannot drift from it.
macro_rules! claim_condition {
    () => {
        "attribute_not_exists(pk) OR expiresAt < :now \
         OR (#state = :inprogress AND inProgressExpiresAt < :nowms)"
    };
}
/// [`claim_condition!`], for a claim made by nobody in particular (a webhook request).
const CLAIM_CONDITION: &str = claim_condition!();
/// [`claim_condition!`], or the claim in progress of another run of the same stream that took
/// the lease no later ([`Claimant::takes_over`] in DynamoDB's terms, which compares strings by
/// their bytes): `:runs`, `:own` and `:takenby` are the claimant's
/// [`Claimant::runs_prefix`], [`Claimant::own_prefix`] and [`Claimant::taken_by_bound`].
const CLAIM_BY_RUN_CONDITION: &str = concat!(
    claim_condition!(),
    " OR (#state = :inprogress AND begins_with(claimToken, :runs) \
     AND NOT begins_with(claimToken, :own) AND claimToken < :takenby)"
);
/// Marks a key completed under the token `:token`, until `:exp`, as a full state or not
/// (`:full`, what the token's claim was).
const COMPLETE_UPDATE: &str = "SET #state = :completed, fullState = :full, expiresAt = :exp, \
     claimToken = :token REMOVE inProgressExpiresAt";
/// The first try of a completion: the claim is still ours (or the record is gone), so the
/// record's flag becomes what this request sent.
const COMPLETE_CONDITION: &str = "attribute_not_exists(pk) OR claimToken = :token";
/// A completion of an event whose claim is no longer ours, over a record another request
/// completed: that record's `fullState` stays (set, it says a complete state was sent).
const COMPLETE_KEEPING_UPDATE: &str =
    "SET #state = :completed, expiresAt = :exp, claimToken = :token";
/// A live completed record (`:now` is epoch seconds); a macro, so its complement below is
/// derived from it at compile time and cannot drift.
macro_rules! live_completed {
    () => {
        "#state = :completed AND expiresAt >= :now"
    };
}
/// [`COMPLETE_KEEPING_UPDATE`] holds over a live completed record only.
const COMPLETED_CONDITION: &str = live_completed!();
/// Over anything else (absent, expired, another claim in progress) an event's completion
/// records what it sent, [`COMPLETE_UPDATE`]: a claim in progress' `fullState` says nothing of
/// what was sent (a poll run killed before it sent would otherwise make later events of the
/// same state duplicates that never reach the queue). The exact complement of
/// [`COMPLETED_CONDITION`], so a record completed between the two writes sends the completion
/// round again instead of losing that record's full state.
const NOT_COMPLETED_CONDITION: &str = concat!("NOT (", live_completed!(), ")");
/// How many times an event's completion no longer ours tries the pair of writes; each failure
/// means another request wrote the key between them, and twice is already a rare race.
const MAX_COMPLETION_ROUNDS: usize = 3;
/// A release removes only our own in-progress claim.
const RELEASE_CONDITION: &str = "#state = :inprogress AND claimToken = :token";
/// Renews a completed record found in the second half of its life: it lives until `:exp`.
const RENEW_UPDATE: &str = "SET expiresAt = :exp";
/// Only a live completed record, and never to an earlier expiry (`:now` is epoch seconds).
const RENEW_CONDITION: &str = "#state = :completed AND expiresAt >= :now AND expiresAt < :exp";

/// DynamoDB limits a string partition key to 2048 bytes; longer dedupe keys (a message key with
/// hundreds of line ids) are stored under their SHA-256 instead, which is just as unique.
const MAX_PLAIN_KEY_BYTES: usize = 1024;

/// Settings of a [`DynamoDedupeStore`].
#[derive(Debug, Clone)]
pub struct DedupeConfig {
    /// The table (partition key `pk`, string; TTL on `expiresAt`).
    pub table_name: String,
    /// How long a completed record suppresses duplicates. Default: 30 days.
    pub ttl: Duration,
    /// How long an in-progress claim blocks others before it counts as abandoned. Longer than
    /// a request may take (API Gateway stops at 30 s). Default: 60 s.
    pub in_progress_expiry: Duration,
}

impl DedupeConfig {
    /// Defaults for `table_name`.
    pub fn new(table_name: impl Into<String>) -> Self {
        DedupeConfig {
            table_name: table_name.into(),
            ttl: Duration::from_secs(30 * 24 * 3600),
            in_progress_expiry: Duration::from_secs(60),
        }
    }
}

/// Dedupe records in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoDedupeStore {
    client: aws_sdk_dynamodb::Client,
    config: DedupeConfig,
    clock: Clock,
}

impl std::fmt::Debug for DynamoDedupeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDedupeStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DynamoDedupeStore {
    /// A store in `config.table_name`, on the system clock.
    pub fn new(client: aws_sdk_dynamodb::Client, config: DedupeConfig) -> Self {
        DynamoDedupeStore {
            client,
            config,
            clock: system_clock(),
        }
    }

    /// Uses `clock` for "now" (tests move it to expire records without waiting).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn pk(key: &str) -> AttributeValue {
        AttributeValue::S(storage_key(key))
    }

    /// The item a claim of `key` under `token` writes at `now`.
    fn claim_item(
        &self,
        key: &str,
        full_state: bool,
        token: &ClaimToken,
        now: chrono::DateTime<chrono::Utc>,
    ) -> HashMap<String, AttributeValue> {
        let expires_at = now.timestamp() + secs(self.config.ttl);
        let in_progress_until = now.timestamp_millis() + millis(self.config.in_progress_expiry);
        HashMap::from([
            (PK.to_owned(), Self::pk(key)),
            (STATE.to_owned(), AttributeValue::S(IN_PROGRESS.to_owned())),
            (FULL_STATE.to_owned(), AttributeValue::Bool(full_state)),
            (
                EXPIRES_AT.to_owned(),
                AttributeValue::N(expires_at.to_string()),
            ),
            (
                IN_PROGRESS_EXPIRES_AT.to_owned(),
                AttributeValue::N(in_progress_until.to_string()),
            ),
            (
                CLAIM_TOKEN.to_owned(),
                AttributeValue::S(token.as_str().to_owned()),
            ),
        ])
    }

    /// An `UpdateItem` of `key` by `expression` (one of the completion's three), with its values.
    fn complete_request(
        &self,
        key: &str,
        expression: &str,
        values: HashMap<String, AttributeValue>,
    ) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.config.table_name)
            .key(PK, Self::pk(key))
            .update_expression(expression)
            .expression_attribute_names("#state", STATE)
            .set_expression_attribute_values(Some(values))
    }

    /// Completes `key` for an event's claim that is no longer ours: over a live completed record
    /// keeping its `fullState` (another request sent a complete state), over anything else
    /// recording an event. The two writes' conditions are complementary, so each failure means
    /// the record changed between them, and the pair is tried again.
    async fn complete_event_no_longer_ours(
        &self,
        key: &str,
        token: &ClaimToken,
        expires_at: i64,
    ) -> Result<UpdateItemOutput, StoreError> {
        for _ in 0..MAX_COMPLETION_ROUNDS {
            for keep_completed in [true, false] {
                if let Some(output) = self
                    .complete_if(key, token, expires_at, keep_completed)
                    .await?
                {
                    return Ok(output);
                }
            }
        }
        Err(StoreError::Unavailable(
            "dedupe completion kept racing with concurrent writers".to_owned(),
        ))
    }

    /// One write of [`Self::complete_event_no_longer_ours`]: over a live completed record only,
    /// keeping its flag (`keep_completed`), or over anything but one, recording the token's;
    /// `None` when its condition failed.
    async fn complete_if(
        &self,
        key: &str,
        token: &ClaimToken,
        expires_at: i64,
        keep_completed: bool,
    ) -> Result<Option<UpdateItemOutput>, StoreError> {
        let mut values = complete_values(token, expires_at);
        let (update, condition) = if keep_completed {
            values.remove(":full");
            (COMPLETE_KEEPING_UPDATE, COMPLETED_CONDITION)
        } else {
            (COMPLETE_UPDATE, NOT_COMPLETED_CONDITION)
        };
        let now = (self.clock)().timestamp();
        values.insert(":now".to_owned(), AttributeValue::N(now.to_string()));
        let result = self
            .complete_request(key, update, values)
            .condition_expression(condition)
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output)),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(unavailable("DynamoDB UpdateItem (dedupe complete)", &err)),
        }
    }

    /// Reads the item under `key` with a consistent read.
    async fn get(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.config.table_name)
            .key(PK, Self::pk(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("DynamoDB GetItem (dedupe)", &e))?;
        Ok(output.item)
    }

    /// The record of `item` when it keeps a claim `by` a claimant or nobody from being
    /// granted: live, and not a claim in progress the claimant takes over.
    fn blocking(
        &self,
        item: &HashMap<String, AttributeValue>,
        by: Option<&Claimant>,
    ) -> Result<Option<DedupeRecord>, StoreError> {
        let record = self.live(item)?;
        let token = item.get(CLAIM_TOKEN).and_then(|v| v.as_s().ok());
        Ok(record.filter(|record| {
            !by.is_some_and(|by| by.takes_over(record.state, token.map(String::as_str)))
        }))
    }

    /// Whether a stored record is still live at the clock's now.
    fn live(
        &self,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Option<DedupeRecord>, StoreError> {
        let record = parse_record(item)?;
        let now = (self.clock)();
        // A record without expiry never expires; the claim condition treats it the same way.
        if number(item, EXPIRES_AT)?.is_some_and(|at| at < now.timestamp()) {
            return Ok(None);
        }
        if record.state == RecordState::InProgress
            && number(item, IN_PROGRESS_EXPIRES_AT)?.is_some_and(|at| at < now.timestamp_millis())
        {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Renews `key`'s completed `record` (stored as `item`) when less than half of the TTL is
    /// left: it then lives for the TTL again from now. A poll re-asks the state at its cursor on
    /// every run for as long as its stream stays quiet (the lookback), and once the record had
    /// expired, after one TTL, the next run sent the unchanged state again (and again every
    /// TTL). At most one write per half TTL for a record found again and again. Best effort:
    /// the claim's answer stands whatever the renewal does (a failure is logged; the record
    /// then expires as before).
    async fn renew_if_late(
        &self,
        key: &str,
        record: &DedupeRecord,
        item: &HashMap<String, AttributeValue>,
    ) {
        if record.state != RecordState::Completed {
            return;
        }
        let now = (self.clock)().timestamp();
        let ttl = secs(self.config.ttl);
        let Ok(Some(expires_at)) = number(item, EXPIRES_AT) else {
            return;
        };
        if expires_at.saturating_sub(now) >= ttl / 2 {
            return;
        }
        let renewed = now.saturating_add(ttl);
        let result = self
            .client
            .update_item()
            .table_name(&self.config.table_name)
            .key(PK, Self::pk(key))
            .update_expression(RENEW_UPDATE)
            .condition_expression(RENEW_CONDITION)
            .expression_attribute_names("#state", STATE)
            .set_expression_attribute_values(Some(HashMap::from([
                (
                    ":completed".to_owned(),
                    AttributeValue::S(COMPLETED.to_owned()),
                ),
                (":now".to_owned(), AttributeValue::N(now.to_string())),
                (":exp".to_owned(), AttributeValue::N(renewed.to_string())),
            ])))
            .send()
            .await;
        match result {
            Ok(_) => tracing::debug!(dedupe_key = key, "completed dedupe record renewed"),
            // Expired, claimed again, or renewed by another request meanwhile: nothing to do.
            Err(err) if condition_failed(&err) => {}
            Err(err) => tracing::warn!(
                dedupe_key = key,
                error = %describe("DynamoDB UpdateItem (dedupe renewal)", &err),
                "could not renew the completed dedupe record; it expires one TTL after it was written"
            ),
        }
    }
}

#[async_trait]
impl DedupeStore for DynamoDedupeStore {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError> {
        // A conditional-check failure whose record then turns out gone or expired (released or
        // expired in between) is retried; twice more is plenty for such a race.
        for _ in 0..3 {
            let now = (self.clock)();
            let token = ClaimToken::generate_for(full_state, by);
            let result = self
                .client
                .put_item()
                .table_name(&self.config.table_name)
                .set_item(Some(self.claim_item(key, full_state, &token, now)))
                .condition_expression(claim_condition(by))
                .expression_attribute_names("#state", STATE)
                .set_expression_attribute_values(Some(claim_values(now, by)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old_item = match result {
                Ok(_) => return Ok(ClaimOutcome::Claimed(token)),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        failed.item.clone()
                    }
                    _ => return Err(unavailable("DynamoDB PutItem (dedupe claim)", &err)),
                },
            };
            // The item that failed the condition is live by definition; without it (an older
            // DynamoDB-compatible store) read it.
            let item = match old_item {
                Some(item) => Some(item),
                None => self.get(key).await?,
            };
            // Our own claim: the SDK retried a put whose first attempt went through but whose
            // answer came too late (the attempt timeout). Answering "in progress" would block
            // the key until the claim expires, with nobody to complete it.
            if item.as_ref().is_some_and(|item| claimed_by(item, &token)) {
                return Ok(ClaimOutcome::Claimed(token));
            }
            if let Some(item) = item
                && let Some(record) = self.blocking(&item, by)?
            {
                self.renew_if_late(key, &record, &item).await;
                return Ok(ClaimOutcome::Exists(record));
            }
        }
        Err(StoreError::Unavailable(
            "dedupe claim kept racing with concurrent writers".to_owned(),
        ))
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError> {
        let expires_at = (self.clock)().timestamp() + secs(self.config.ttl);
        let ours = self
            .complete_request(key, COMPLETE_UPDATE, complete_values(token, expires_at))
            .condition_expression(COMPLETE_CONDITION)
            .send()
            .await;
        match ours {
            Ok(_) => return Ok(Completion::Completed),
            Err(err) if condition_failed(&err) => {}
            Err(err) => return Err(unavailable("DynamoDB UpdateItem (dedupe complete)", &err)),
        }
        // The claim is no longer ours. Recording the message as sent is still right (it was
        // sent). The flag follows `ClaimToken::completes_full_state`, in conditional writes: a
        // full state's completion records a full state over anything; an event's keeps the
        // flag of a record another request completed. The old item tells whether another claim
        // had taken the key over, in the same call.
        let output = if token.full_state() {
            self.complete_request(key, COMPLETE_UPDATE, complete_values(token, expires_at))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| unavailable("DynamoDB UpdateItem (dedupe complete)", &e))?
        } else {
            self.complete_event_no_longer_ours(key, token, expires_at)
                .await?
        };
        let Some(old) = output.attributes.filter(|old| !old.is_empty()) else {
            return Ok(Completion::Completed);
        };
        // A corrupt or expired old record was nobody's live claim: ours simply lapsed.
        let live = self.live(&old).ok().flatten().is_some();
        Ok(if live && !claimed_by(&old, token) {
            Completion::TakenOver
        } else {
            Completion::Completed
        })
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.config.table_name)
            .key(PK, Self::pk(key))
            .condition_expression(RELEASE_CONDITION)
            .expression_attribute_names("#state", STATE)
            .set_expression_attribute_values(Some(release_values(token)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone, completed, or claimed by another request after ours expired: there is no
            // claim of ours to give up, and the other record must stay.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!("dedupe release: no in-progress claim of ours to remove");
                Ok(())
            }
            Err(err) => Err(unavailable("DynamoDB DeleteItem (dedupe release)", &err)),
        }
    }

    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        match self.get(key).await? {
            Some(item) => self.live(&item),
            None => Ok(None),
        }
    }

    async fn claim_many(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        self.claim_batch(keys, by).await
    }

    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<Completion, StoreError>> {
        self.complete_batch(claims).await
    }

    async fn release_many(&self, claims: &[(String, ClaimToken)]) -> Vec<Result<(), StoreError>> {
        self.release_batch(claims).await
    }
}

/// Whether the stored `item` was written under `token`.
fn claimed_by(item: &HashMap<String, AttributeValue>, token: &ClaimToken) -> bool {
    item.get(CLAIM_TOKEN)
        .and_then(|v| v.as_s().ok())
        .is_some_and(|stored| stored == token.as_str())
}

/// The condition of a claim `by` a claimant or nobody.
fn claim_condition(by: Option<&Claimant>) -> &'static str {
    match by {
        Some(_) => CLAIM_BY_RUN_CONDITION,
        None => CLAIM_CONDITION,
    }
}

/// The values of [`claim_condition`] at `now`, `by` a claimant or nobody.
fn claim_values(
    now: chrono::DateTime<chrono::Utc>,
    by: Option<&Claimant>,
) -> HashMap<String, AttributeValue> {
    let mut values = HashMap::from([
        (
            ":now".to_owned(),
            AttributeValue::N(now.timestamp().to_string()),
        ),
        (
            ":nowms".to_owned(),
            AttributeValue::N(now.timestamp_millis().to_string()),
        ),
        (
            ":inprogress".to_owned(),
            AttributeValue::S(IN_PROGRESS.to_owned()),
        ),
    ]);
    if let Some(by) = by {
        values.insert(
            ":runs".to_owned(),
            AttributeValue::S(by.runs_prefix().to_owned()),
        );
        values.insert(
            ":own".to_owned(),
            AttributeValue::S(by.own_prefix().to_owned()),
        );
        values.insert(
            ":takenby".to_owned(),
            AttributeValue::S(by.taken_by_bound().to_owned()),
        );
    }
    values
}

/// The values of [`COMPLETE_UPDATE`].
fn complete_values(token: &ClaimToken, expires_at: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            ":completed".to_owned(),
            AttributeValue::S(COMPLETED.to_owned()),
        ),
        (":exp".to_owned(), AttributeValue::N(expires_at.to_string())),
        (
            ":token".to_owned(),
            AttributeValue::S(token.as_str().to_owned()),
        ),
        (":full".to_owned(), AttributeValue::Bool(token.full_state())),
    ])
}

/// Whether an `UpdateItem` failed its condition.
fn condition_failed(err: &SdkError<UpdateItemError, HttpResponse>) -> bool {
    err.as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

/// The values of [`RELEASE_CONDITION`].
fn release_values(token: &ClaimToken) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            ":inprogress".to_owned(),
            AttributeValue::S(IN_PROGRESS.to_owned()),
        ),
        (
            ":token".to_owned(),
            AttributeValue::S(token.as_str().to_owned()),
        ),
    ])
}

/// The partition key for a dedupe key (see [`MAX_PLAIN_KEY_BYTES`]).
fn storage_key(key: &str) -> String {
    if key.len() <= MAX_PLAIN_KEY_BYTES {
        key.to_owned()
    } else {
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(key.as_bytes()))
        )
    }
}

fn parse_record(item: &HashMap<String, AttributeValue>) -> Result<DedupeRecord, StoreError> {
    let state = match item
        .get(STATE)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some(IN_PROGRESS) => RecordState::InProgress,
        Some(COMPLETED) => RecordState::Completed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "dedupe record with state {other:?}"
            )));
        }
    };
    let full_state = match item.get(FULL_STATE) {
        None => false,
        Some(AttributeValue::Bool(b)) => *b,
        Some(_) => {
            return Err(StoreError::Corrupt(
                "dedupe record fullState is not a boolean".into(),
            ));
        }
    };
    Ok(DedupeRecord { state, full_state })
}

/// A numeric attribute, `None` when absent.
pub(crate) fn number(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer: {n}"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_short_ones_kept() {
        assert_eq!(storage_key("order:1:t"), "order:1:t");
        let long = "x".repeat(5_000);
        let stored = storage_key(&long);
        assert!(stored.starts_with("sha256:") && stored.len() == 7 + 64);
        assert_ne!(storage_key(&"y".repeat(5_000)), stored);
    }

    #[test]
    fn records_parse_and_bad_ones_are_corrupt() {
        let mut item = HashMap::new();
        item.insert(STATE.to_owned(), AttributeValue::S(COMPLETED.to_owned()));
        item.insert(FULL_STATE.to_owned(), AttributeValue::Bool(true));
        assert_eq!(
            parse_record(&item).unwrap(),
            DedupeRecord {
                state: RecordState::Completed,
                full_state: true
            }
        );
        item.insert(STATE.to_owned(), AttributeValue::S("weird".to_owned()));
        assert!(matches!(parse_record(&item), Err(StoreError::Corrupt(_))));
    }
}
