//! Dedupe records, with the semantics of the DynamoDB store (Powertools' idempotency design):
//! a claim is a conditional insert in one immediate transaction, expiry is checked explicitly
//! against the clock (nothing sweeps the table behind our back), an in-progress claim has its own
//! short expiry so a crashed request does not swallow the event, and a failed request deletes its
//! claim.
//!
//! Row: `key`, `state` (`in-progress` | `completed`), `full_state` (0/1), `expires_at` (epoch
//! ms: the record's time to live, set at claim and again at completion, and renewed by a claim
//! that finds the record completed with less than half of the TTL left) and
//! `in_progress_expires_at` (epoch ms, only while in progress), `claim_token` (the
//! [`ClaimToken`] of the claim that wrote it: complete and release go by it, and a poll run
//! takes over an earlier run's claim in progress by it, [`Claimant::takes_over`]). A record is
//! expired when its
//! `expires_at` is before now, or it is in progress and its `in_progress_expires_at` is before
//! now; an expired record is treated exactly like an absent one. (DynamoDB keeps `expiresAt` in
//! seconds because its TTL sweeper wants seconds; here both are milliseconds, which differs from
//! it by less than a second and lets tests step exactly over the boundary.)

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tcrelay_core::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, RecordState,
    StoreError,
};

use crate::clock::millis;
use crate::db::{Ctx, SqliteStore};
use crate::error::DbError;

pub(crate) const IN_PROGRESS: &str = "in-progress";
const COMPLETED: &str = "completed";

/// A stored row, before the expiry check.
struct Row {
    record: DedupeRecord,
    expires_at: i64,
    in_progress_expires_at: Option<i64>,
    claim_token: Option<String>,
}

impl Row {
    /// Whether the record is live at `now_ms` (same rule as the DynamoDB store).
    fn is_live(&self, now_ms: i64) -> bool {
        !(self.expires_at < now_ms
            || self.record.state == RecordState::InProgress
                && self.in_progress_expires_at.is_some_and(|at| at < now_ms))
    }

    /// The record if it is live at `now_ms`.
    fn live(self, now_ms: i64) -> Option<DedupeRecord> {
        self.is_live(now_ms).then_some(self.record)
    }
}

fn read(conn: &Connection, key: &str) -> Result<Option<Row>, DbError> {
    let raw = conn
        .prepare_cached(
            "SELECT state, full_state, expires_at, in_progress_expires_at, claim_token \
             FROM dedupe WHERE key = ?1",
        )?
        .query_row([key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((state, full_state, expires_at, in_progress_expires_at, claim_token)) = raw else {
        return Ok(None);
    };
    let state = match state.as_str() {
        IN_PROGRESS => RecordState::InProgress,
        COMPLETED => RecordState::Completed,
        other => {
            return Err(DbError::Corrupt(format!(
                "dedupe record {key:?} has state {other:?}"
            )));
        }
    };
    let full_state = match full_state {
        0 => false,
        1 => true,
        other => {
            return Err(DbError::Corrupt(format!(
                "dedupe record {key:?} has full_state {other}"
            )));
        }
    };
    Ok(Some(Row {
        record: DedupeRecord { state, full_state },
        expires_at,
        in_progress_expires_at,
        claim_token,
    }))
}

impl SqliteStore {
    /// Deletes expired dedupe records; returns how many. Optional housekeeping (expired records
    /// already count as absent): SQLite has no TTL sweeper, so a long-running process calls this
    /// now and then to keep the file from growing.
    pub async fn purge_expired_dedupe(&self) -> Result<u64, StoreError> {
        let purged = self
            .run("dedupe purge", |ctx| {
                let n = ctx.conn.execute(
                    "DELETE FROM dedupe WHERE expires_at < ?1 \
                     OR (state = ?2 AND in_progress_expires_at < ?1)",
                    params![ctx.now_ms, IN_PROGRESS],
                )?;
                Ok(n as u64)
            })
            .await?;
        tracing::debug!(purged, "expired dedupe records purged");
        Ok(purged)
    }
}

/// Claims `key` `by` a claimant or nobody inside the open transaction (see
/// [`DedupeStore::claim_as`]).
fn claim_in(
    ctx: &Ctx<'_>,
    key: &str,
    full_state: bool,
    by: Option<&Claimant>,
) -> Result<ClaimOutcome, DbError> {
    let tx = &*ctx.conn;
    let ttl = millis(ctx.options.dedupe_ttl);
    let expires_at = ctx.now_ms.saturating_add(ttl);
    let blocking = read(tx, key)?.filter(|row| {
        row.is_live(ctx.now_ms)
            && !by.is_some_and(|by| by.takes_over(row.record.state, row.claim_token.as_deref()))
    });
    if let Some(row) = blocking {
        // Found in the second half of its life, a completed record lives for the TTL again:
        // a poll re-asks the state at its cursor for as long as its stream stays quiet, and
        // once the record had expired the unchanged state was sent again (as the DynamoDB
        // store; at most one write per half TTL).
        if row.record.state == RecordState::Completed
            && row.expires_at.saturating_sub(ctx.now_ms) < ttl / 2
        {
            tx.prepare_cached(
                "UPDATE dedupe SET expires_at = ?2 WHERE key = ?1 AND state = ?3 \
                 AND expires_at < ?2",
            )?
            .execute(params![key, expires_at, COMPLETED])?;
        }
        return Ok(ClaimOutcome::Exists(row.record));
    }
    let in_progress_until = ctx
        .now_ms
        .saturating_add(millis(ctx.options.in_progress_expiry));
    let token = ClaimToken::generate_for(full_state, by);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO dedupe \
         (key, state, full_state, expires_at, in_progress_expires_at, claim_token) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        key,
        IN_PROGRESS,
        full_state,
        expires_at,
        in_progress_until,
        token.as_str()
    ])?;
    Ok(ClaimOutcome::Claimed(token))
}

/// Completes the claim `token` holds on `key` inside the open transaction (see
/// [`DedupeStore::complete`]).
fn complete_in(ctx: &Ctx<'_>, key: &str, token: &ClaimToken) -> Result<Completion, DbError> {
    let expires_at = ctx.now_ms.saturating_add(millis(ctx.options.dedupe_ttl));
    let tx = &*ctx.conn;
    // A corrupt old record was nobody's live claim: it is overwritten below.
    let live = read(tx, key)
        .ok()
        .flatten()
        .filter(|row| row.is_live(ctx.now_ms));
    let taken_over = live
        .as_ref()
        .is_some_and(|row| row.claim_token.as_deref() != Some(token.as_str()));
    // Over any record, as the DynamoDB store: if the claim was meanwhile released, expired or
    // taken over, recording the message as sent is still right (it was sent).
    let full_state = token.completes_full_state(live.as_ref().map(|row| &row.record));
    tx.prepare_cached(
        "INSERT INTO dedupe \
         (key, state, full_state, expires_at, in_progress_expires_at, claim_token) \
         VALUES (?1, ?2, ?3, ?4, NULL, ?5) \
         ON CONFLICT (key) DO UPDATE SET state = excluded.state, \
            full_state = excluded.full_state, expires_at = excluded.expires_at, \
            in_progress_expires_at = NULL, claim_token = excluded.claim_token",
    )?
    .execute(params![
        key,
        COMPLETED,
        full_state,
        expires_at,
        token.as_str()
    ])?;
    Ok(if taken_over {
        Completion::TakenOver
    } else {
        Completion::Completed
    })
}

/// Releases the claim `token` holds on `key` inside the open transaction (see
/// [`DedupeStore::release`]).
fn release_in(ctx: &Ctx<'_>, key: &str, token: &ClaimToken) -> Result<(), DbError> {
    // Only our own in-progress claim: a completed record must stay, or the next delivery
    // of an event that did reach the queue would be enqueued again; and a claim another
    // request took over after ours expired is theirs to finish.
    let n = ctx
        .conn
        .prepare_cached("DELETE FROM dedupe WHERE key = ?1 AND state = ?2 AND claim_token = ?3")?
        .execute(params![key, IN_PROGRESS, token.as_str()])?;
    if n == 0 {
        tracing::debug!("dedupe release: no in-progress claim of ours to remove");
    }
    Ok(())
}

impl SqliteStore {
    /// Runs `each` on every item in one call of the group commit (one transaction), in order,
    /// each item answered on its own: an item that fails wrote nothing (each writes once, last),
    /// so the others stand; a failed commit fails them all.
    async fn run_each<I, T, F>(
        &self,
        operation: &'static str,
        items: Vec<I>,
        each: F,
    ) -> Vec<Result<T, StoreError>>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(&Ctx<'_>, &I) -> Result<T, DbError> + Send + 'static,
    {
        let n = items.len();
        let answers = self
            .run_batched(operation, move |ctx| {
                Ok(items
                    .iter()
                    .map(|item| each(&ctx, item))
                    .collect::<Vec<_>>())
            })
            .await;
        match answers {
            Ok(answers) => answers
                .into_iter()
                .map(|answer| answer.map_err(|e| e.into_store(operation)))
                .collect(),
            Err(e) => {
                let message = e.to_string();
                (0..n)
                    .map(|_| Err(StoreError::Unavailable(message.clone())))
                    .collect()
            }
        }
    }
}

#[async_trait]
impl DedupeStore for SqliteStore {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError> {
        let (key, by) = (key.to_owned(), by.cloned());
        // Batched: the read and the insert run inside one immediate transaction, an atomic
        // step against every other connection, which is what DynamoDB's conditional put gives
        // the other adapter.
        self.run_batched("dedupe claim", move |ctx| {
            claim_in(&ctx, &key, full_state, by.as_ref())
        })
        .await
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError> {
        let (key, token) = (key.to_owned(), token.clone());
        // Batched (one immediate transaction): the read of the old record and the write are one
        // step, as DynamoDB's UpdateItem returning the old item is for the other adapter.
        self.run_batched("dedupe complete", move |ctx| {
            complete_in(&ctx, &key, &token)
        })
        .await
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let (key, token) = (key.to_owned(), token.clone());
        self.run_batched("dedupe release", move |ctx| release_in(&ctx, &key, &token))
            .await
    }

    async fn claim_many(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        let keys: Vec<(String, bool)> = keys
            .iter()
            .map(|(key, full_state)| ((*key).to_owned(), *full_state))
            .collect();
        let by = by.cloned();
        self.run_each("dedupe claims", keys, move |ctx, (key, full_state)| {
            claim_in(ctx, key, *full_state, by.as_ref())
        })
        .await
    }

    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<Completion, StoreError>> {
        self.run_each(
            "dedupe completions",
            claims.to_vec(),
            |ctx, (key, token)| complete_in(ctx, key, token),
        )
        .await
    }

    async fn release_many(&self, claims: &[(String, ClaimToken)]) -> Vec<Result<(), StoreError>> {
        self.run_each("dedupe releases", claims.to_vec(), |ctx, (key, token)| {
            release_in(ctx, key, token)
        })
        .await
    }

    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        let key = key.to_owned();
        self.run("dedupe lookup", move |ctx| {
            Ok(read(ctx.conn, &key)?.and_then(|row| row.live(ctx.now_ms)))
        })
        .await
    }
}
