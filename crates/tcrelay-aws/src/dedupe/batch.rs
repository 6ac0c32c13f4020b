//! Many claims, completions or releases in one `TransactWriteItems` call, with the conditions of
//! the single-item calls. A transaction is all or nothing: when one item's condition fails,
//! DynamoDB cancels it whole and says, item by item, why (`CancellationReasons`, with the old
//! item of a failed claim). The items whose own condition failed are answered from that reason
//! (a claim: the key exists; a release: nothing of ours to remove; a completion: another claim
//! took the key over, which the single call then records and reports), and the rest go again
//! in a new transaction. Whatever is left after a few rounds, or alone, or whose reason says too
//! little, goes through the single-item call, so the answers are exactly theirs.
//!
//! A transaction never holds one key twice (DynamoDB refuses that): a key given again goes in a
//! later transaction, so it is written after its earlier occurrence, as one call after the
//! other would write it.
//!
//! A transactional write costs twice the write capacity of a single one (2 WCU per item of up to
//! 1 KB): fewer round trips, not fewer capacity units. Batches smaller than
//! [`MIN_TRANSACT_ITEMS`] therefore go through the single calls: the webhook's two claims of one
//! message cost 2 WCU to complete that way, not 4, for one more round trip.

use std::collections::HashSet;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use tcrelay_core::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeStore, StoreError,
};

use super::{
    COMPLETE_CONDITION, COMPLETE_UPDATE, DynamoDedupeStore, PK, RELEASE_CONDITION, STATE,
    claim_condition, claim_values, complete_values, release_values, secs, storage_key,
};
use crate::error::unavailable;

/// DynamoDB's limit of items in one transaction.
const MAX_TRANSACT_ITEMS: usize = 100;
/// Transactions tried for one chunk before what is left goes through the single-item calls:
/// each round answers the items whose own condition failed, so a third cancellation means
/// something else (conflicts with concurrent writers) is going on.
const MAX_ROUNDS: usize = 3;

/// The fewest items worth a transaction. A transaction saves round trips and the SDK's CPU per
/// call (about 650 µs per call in the poll profile) but doubles the write capacity, so a page of
/// the poller (up to 100) goes in one, and a webhook message's two keys do not.
const MIN_TRANSACT_ITEMS: usize = 3;
/// The claims' operation, for logs and errors.
const CLAIMS: &str = "DynamoDB TransactWriteItems (dedupe claims)";
/// The cancellation code of an item whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// What one transaction did.
enum Transacted {
    /// Every write happened.
    Done,
    /// None happened; one reason per item, in order.
    Cancelled(Vec<CancellationReason>),
}

/// What one round of a chunk came to.
enum Round {
    /// Every pending item's slot is answered: the round's writes happened, or it failed
    /// otherwise than by a cancellation and each slot holds the error.
    Answered,
    /// None happened; one reason per pending item, in order.
    Cancelled(Vec<CancellationReason>),
    /// Cancelled with reasons that do not match the items: left to the single calls.
    Unclear,
}

/// Splits the indexes of `keys` into chunks of at most [`MAX_TRANSACT_ITEMS`], none holding a
/// stored key twice, in order: a key given again starts a later chunk.
fn chunks<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut in_chunk: HashSet<String> = HashSet::new();
    for (i, key) in keys.enumerate() {
        let stored = storage_key(key);
        let full = chunks
            .last()
            .is_none_or(|chunk| chunk.len() == MAX_TRANSACT_ITEMS);
        if full || in_chunk.contains(&stored) {
            chunks.push(Vec::new());
            in_chunk.clear();
        }
        in_chunk.insert(stored);
        chunks.last_mut().expect("a chunk was pushed").push(i);
    }
    chunks
}

/// The answers gathered so far, one slot per item; every slot is filled before they go back.
fn collect<T>(slots: Vec<Option<Result<T, StoreError>>>) -> Vec<Result<T, StoreError>> {
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "dedupe batch: an item was left unanswered".to_owned(),
                ))
            })
        })
        .collect()
}

/// A transaction's failure, for each of the items it held.
fn failed_for_all<T>(
    pending: &[usize],
    message: &str,
    slots: &mut [Option<Result<T, StoreError>>],
) {
    for &i in pending {
        slots[i] = Some(Err(StoreError::Unavailable(message.to_owned())));
    }
}

impl DynamoDedupeStore {
    /// Runs `writes` as one transaction. `Err` with the failure's description when it failed
    /// otherwise than by a cancellation (its outcome may be unknown, as a single call's is).
    async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
        operation: &str,
    ) -> Result<Transacted, String> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Transacted::Done),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Ok(
                    Transacted::Cancelled(cancelled.cancellation_reasons().to_vec()),
                ),
                _ => Err(unavailable(operation, &err).to_string()),
            },
        }
    }

    /// Runs one round's `writes` (one per pending item) as a transaction. When it goes
    /// through, the j-th pending item's slot gets `done(j)`; when it fails otherwise than by a
    /// cancellation (or the writes cannot be built), each pending item's slot gets the error.
    async fn round<T>(
        &self,
        pending: &[usize],
        writes: Result<Vec<TransactWriteItem>, aws_sdk_dynamodb::error::BuildError>,
        operation: &str,
        slots: &mut [Option<Result<T, StoreError>>],
        mut done: impl FnMut(usize) -> T,
    ) -> Round {
        let transacted = match writes {
            Ok(writes) => self.transact(writes, operation).await,
            Err(e) => Err(format!("{operation}: {e}")),
        };
        match transacted {
            Ok(Transacted::Done) => {
                for (j, &i) in pending.iter().enumerate() {
                    slots[i] = Some(Ok(done(j)));
                }
                Round::Answered
            }
            Ok(Transacted::Cancelled(reasons)) if reasons.len() == pending.len() => {
                Round::Cancelled(reasons)
            }
            Ok(Transacted::Cancelled(_)) => Round::Unclear,
            Err(message) => {
                failed_for_all(pending, &message, slots);
                Round::Answered
            }
        }
    }

    /// [`DedupeStore::claim_many`](tcrelay_core::ports::DedupeStore::claim_many) in
    /// transactions.
    pub(super) async fn claim_batch(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        let mut slots: Vec<Option<Result<ClaimOutcome, StoreError>>> =
            (0..keys.len()).map(|_| None).collect();
        for chunk in chunks(keys.iter().map(|(key, _)| *key)) {
            let left = self.claim_chunk(keys, by, chunk, &mut slots).await;
            for i in left {
                let (key, full_state) = keys[i];
                slots[i] = Some(self.claim_as(key, full_state, by).await);
            }
        }
        collect(slots)
    }

    /// Claims the keys of `chunk` in transactions; returns those left for the single call.
    async fn claim_chunk(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
        mut pending: Vec<usize>,
        slots: &mut [Option<Result<ClaimOutcome, StoreError>>],
    ) -> Vec<usize> {
        let mut single = Vec::new();
        for _ in 0..MAX_ROUNDS {
            if pending.len() < MIN_TRANSACT_ITEMS {
                break;
            }
            let now = (self.clock)();
            let tokens: Vec<ClaimToken> = pending
                .iter()
                .map(|&i| ClaimToken::generate_for(keys[i].1, by))
                .collect();
            let writes = pending.iter().zip(&tokens).map(|(&i, token)| {
                let (key, full_state) = keys[i];
                Put::builder()
                    .table_name(&self.config.table_name)
                    .set_item(Some(self.claim_item(key, full_state, token, now)))
                    .condition_expression(claim_condition(by))
                    .expression_attribute_names("#state", STATE)
                    .set_expression_attribute_values(Some(claim_values(now, by)))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map(|put| TransactWriteItem::builder().put(put).build())
            });
            let granted = |j: usize| ClaimOutcome::Claimed(tokens[j].clone());
            let writes = writes.collect();
            let reasons = match self.round(&pending, writes, CLAIMS, slots, granted).await {
                Round::Cancelled(reasons) => reasons,
                Round::Unclear => break,
                Round::Answered => return single,
            };
            let mut retry = Vec::new();
            for (&i, reason) in pending.iter().zip(&reasons) {
                match (reason.code(), reason.item()) {
                    (Some(CONDITION_FAILED), Some(old)) => match self.blocking(old, by) {
                        Ok(Some(record)) => {
                            self.renew_if_late(keys[i].0, &record, old).await;
                            slots[i] = Some(Ok(ClaimOutcome::Exists(record)));
                        }
                        // Expired (or left by a run that lost the lease) since the condition
                        // was checked: claim it again.
                        Ok(None) => retry.push(i),
                        Err(e) => slots[i] = Some(Err(e)),
                    },
                    // An older DynamoDB-compatible store without the old item: the single call
                    // reads it.
                    (Some(CONDITION_FAILED), None) => single.push(i),
                    // Not written because another item failed, or a conflict: try again.
                    _ => retry.push(i),
                }
            }
            pending = retry;
        }
        single.extend(pending);
        single
    }

    /// [`DedupeStore::complete_many`](tcrelay_core::ports::DedupeStore::complete_many) in
    /// transactions.
    pub(super) async fn complete_batch(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<Completion, StoreError>> {
        let mut slots: Vec<Option<Result<Completion, StoreError>>> =
            (0..claims.len()).map(|_| None).collect();
        for chunk in chunks(claims.iter().map(|(key, _)| key.as_str())) {
            let left = self.complete_chunk(claims, chunk, &mut slots).await;
            for i in left {
                let (key, token) = &claims[i];
                slots[i] = Some(self.complete(key, token).await);
            }
        }
        collect(slots)
    }

    /// Completes the claims of `chunk` in transactions; returns those left for the single call:
    /// every key whose claim is no longer ours (lapsed or taken over), which the single call
    /// records as what this request sent (or a complete state another request sent), reporting
    /// a take-over.
    async fn complete_chunk(
        &self,
        claims: &[(String, ClaimToken)],
        chunk: Vec<usize>,
        slots: &mut [Option<Result<Completion, StoreError>>],
    ) -> Vec<usize> {
        self.settle_chunk(chunk, slots, Completion::Completed, |store, i| {
            let (key, token) = &claims[i];
            let now = (store.clock)();
            let values = complete_values(token, now.timestamp() + secs(store.config.ttl));
            Update::builder()
                .table_name(&store.config.table_name)
                .key(PK, DynamoDedupeStore::pk(key))
                .update_expression(COMPLETE_UPDATE)
                .condition_expression(COMPLETE_CONDITION)
                .expression_attribute_names("#state", STATE)
                .set_expression_attribute_values(Some(values))
                .build()
                .map(|update| TransactWriteItem::builder().update(update).build())
        })
        .await
    }

    /// [`DedupeStore::release_many`](tcrelay_core::ports::DedupeStore::release_many) in
    /// transactions.
    pub(super) async fn release_batch(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<(), StoreError>> {
        let mut slots: Vec<Option<Result<(), StoreError>>> =
            (0..claims.len()).map(|_| None).collect();
        for chunk in chunks(claims.iter().map(|(key, _)| key.as_str())) {
            let left = self
                .settle_chunk(chunk, &mut slots, (), |store, i| {
                    let (key, token) = &claims[i];
                    Delete::builder()
                        .table_name(&store.config.table_name)
                        .key(PK, DynamoDedupeStore::pk(key))
                        .condition_expression(RELEASE_CONDITION)
                        .expression_attribute_names("#state", STATE)
                        .set_expression_attribute_values(Some(release_values(token)))
                        .build()
                        .map(|delete| TransactWriteItem::builder().delete(delete).build())
                })
                .await;
            // A release whose condition failed has nothing of ours to remove: answered there.
            for i in left {
                let (key, token) = &claims[i];
                slots[i] = Some(self.release(key, token).await);
            }
        }
        collect(slots)
    }

    /// Completions or releases of `chunk` in transactions, each item's write made by `write`:
    /// a transaction that goes through answers `done` for each of its items; a cancelled one
    /// sends the items whose own condition failed to the single call when `done` is a
    /// completion (a take-over to record), answers them `done` when it is a release (nothing of
    /// ours there), and tries the others again. Returns the items left for the single call.
    async fn settle_chunk<T: Clone + SettleAnswer>(
        &self,
        mut pending: Vec<usize>,
        slots: &mut [Option<Result<T, StoreError>>],
        done: T,
        write: impl Fn(&Self, usize) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError>,
    ) -> Vec<usize> {
        let mut single = Vec::new();
        for _ in 0..MAX_ROUNDS {
            if pending.len() < MIN_TRANSACT_ITEMS {
                break;
            }
            let writes = pending.iter().map(|&i| write(self, i)).collect();
            let answer = |_| done.clone();
            let reasons = match self
                .round(&pending, writes, T::OPERATION, slots, answer)
                .await
            {
                Round::Cancelled(reasons) => reasons,
                Round::Unclear => break,
                Round::Answered => return single,
            };
            let mut retry = Vec::new();
            for (&i, reason) in pending.iter().zip(&reasons) {
                match reason.code() {
                    Some(CONDITION_FAILED) if T::CONDITION_FAILED_IS_DONE => {
                        tracing::debug!("dedupe release: no in-progress claim of ours to remove");
                        slots[i] = Some(Ok(done.clone()));
                    }
                    Some(CONDITION_FAILED) => single.push(i),
                    _ => retry.push(i),
                }
            }
            pending = retry;
        }
        single.extend(pending);
        single
    }
}

/// What a settling write answers, by kind.
trait SettleAnswer {
    /// The operation, for logs and errors.
    const OPERATION: &'static str;
    /// Whether an item whose condition failed is answered (a release: nothing of ours to
    /// remove) rather than sent to the single call (a completion: a take-over to record).
    const CONDITION_FAILED_IS_DONE: bool;
}

impl SettleAnswer for Completion {
    const OPERATION: &'static str = "DynamoDB TransactWriteItems (dedupe completions)";
    const CONDITION_FAILED_IS_DONE: bool = false;
}

impl SettleAnswer for () {
    const OPERATION: &'static str = "DynamoDB TransactWriteItems (dedupe releases)";
    const CONDITION_FAILED_IS_DONE: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_100_distinct_keys_in_order() {
        let keys: Vec<String> = (0..250).map(|i| format!("k{i}")).collect();
        let split = chunks(keys.iter().map(String::as_str));
        let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(split.concat(), (0..250).collect::<Vec<_>>());
    }

    #[test]
    fn a_repeated_key_starts_a_later_chunk() {
        let split = chunks(["a", "b", "a", "c", "a"].into_iter());
        assert_eq!(split, [vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn long_keys_repeat_by_their_stored_key() {
        let long = "x".repeat(5_000);
        let split = chunks([long.as_str(), "y", long.as_str()].into_iter());
        assert_eq!(split, [vec![0, 1], vec![2]]);
    }
}
