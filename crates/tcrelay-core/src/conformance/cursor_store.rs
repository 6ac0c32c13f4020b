//! The [`CursorStore`] contract, as the DynamoDB store implements it and the SQLite store and
//! the poll crate's memory store follow it:
//!
//! - `read` of a stream never written is `None`; `read` never takes a lease.
//! - `acquire` takes the lease when there is none, when it is the caller's already (a renewal,
//!   running from now), or when it expired; a live lease of another owner gives `None`. A
//!   lease is live up to and including its expiry instant. The first `acquire` creates the
//!   stream at version 0 without a value.
//! - `checkpoint` stores the value verbatim and bumps the version only when the version is
//!   still the one given *and* the caller is the lease's owner; `Conflict` otherwise, writing
//!   nothing (not even on a stream that does not exist). Only owner and version are compared:
//!   an owner whose lease ran out may still checkpoint until another run takes the lease over,
//!   and a value before the stored one is stored like any other (a poll run that found pages
//!   unsorted writes the cursor it started with back). The window start and the walk it is
//!   given are stored verbatim with the value, each on its own (none given: none stored), and
//!   returned by `acquire` and `read`.
//! - `renew` (the running owner's heartbeat) moves the lease's end to now + the lease, for the
//!   recorded owner only, even after its lease ran out as long as nobody took it over; after a
//!   release or a take-over, by anyone else, or on a stream never seen, it is `Conflict` and
//!   writes nothing (it never takes a free lease, unlike `acquire`).
//! - `release` by the owner frees the lease; by anyone else, or on a stream never seen, it is a
//!   no-op.
//! - `set` writes unconditionally, clears the window start and the walk and bumps the version
//!   (a new stream starts at 1), leaving any lease as it is, so a running owner's next
//!   checkpoint conflicts instead of overwriting it.
//!
//! Each rule is a function taking a [`Subject`]: a fresh, empty store and a way to move the
//! store's clock. [`cursor_store_conformance!`](crate::cursor_store_conformance) expands to
//! one `#[tokio::test]` per rule, so a failure names the rule:
//!
//! ```text
//! tcrelay_core::cursor_store_conformance!(subject());
//! ```
//!
//! where `subject()` is an async fn (or any expression with `.await`) returning a [`Subject`].

use std::time::Duration;

use crate::ports::{Cursor, CursorStore, StoreError};

/// The lease every rule takes: long, so that only [`Subject::advance`] ends it.
pub const LEASE: Duration = Duration::from_secs(300);
const SECOND: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// A store under test. Every rule gets a fresh one whose streams were never written.
pub trait Subject: Send + Sync {
    /// The store.
    fn store(&self) -> &dyn CursorStore;
    /// Moves the clock the store compares leases with forward by `by` (at millisecond
    /// precision, with no time passing otherwise), so the rules step over a lease's expiry
    /// without sleeping.
    fn advance(&self, by: Duration);
}

/// A cursor of `value` at `version`.
pub fn cursor(value: Option<&str>, version: u64) -> Cursor {
    Cursor {
        value: value.map(str::to_owned),
        version,
        window_start: None,
        walk: None,
    }
}

/// A walk as the poll run stores one: JSON text several KB long (it holds a page's ids), with
/// quotes, braces, escapes and non-ASCII characters, so a store that trims, re-encodes or cuts
/// it short fails.
pub fn a_walk() -> String {
    let ids: Vec<String> = (0..700).map(|i| format!("\"o-{i:05}-ü\"")).collect();
    format!(
        "{{\"offset\":200,\"bound\":\"2026-03-01T10:00:00.000Z\",\"note\":\"a \\\"quoted\\\" ‘word’\\n\",\"seen\":[{}]}}",
        ids.join(",")
    )
}

#[track_caller]
fn assert_conflict(result: Result<Cursor, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

async fn acquire(s: &dyn Subject, stream: &str, owner: &str) -> Option<Cursor> {
    s.store().acquire(stream, owner, LEASE).await.unwrap()
}

async fn read(s: &dyn Subject, stream: &str) -> Option<Cursor> {
    s.store().read(stream).await.unwrap()
}

async fn checkpoint(s: &dyn Subject, owner: &str, version: u64, value: &str) -> Cursor {
    s.store()
        .checkpoint("orders", owner, version, value, None, None)
        .await
        .unwrap_or_else(|e| panic!("checkpoint by {owner} on version {version}: {e:?}"))
}

async fn checkpoint_with(
    s: &dyn Subject,
    owner: &str,
    version: u64,
    value: &str,
    window_start: Option<&str>,
    walk: Option<&str>,
) -> Cursor {
    s.store()
        .checkpoint("orders", owner, version, value, window_start, walk)
        .await
        .unwrap_or_else(|e| panic!("checkpoint by {owner} on version {version}: {e:?}"))
}

/// A stream never written reads `None`.
pub async fn an_unseen_stream_reads_none(s: &dyn Subject) {
    assert_eq!(read(s, "orders").await, None);
    assert_eq!(read(s, "shipments").await, None);
}

/// A checkpoint of a stream nobody acquired conflicts and creates nothing.
pub async fn an_unacquired_stream_cannot_be_checkpointed(s: &dyn Subject) {
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-a", 0, "t", None, None)
            .await,
        "checkpoint of a stream never acquired",
    );
    assert_eq!(read(s, "orders").await, None);
}

/// Releasing a stream never seen is a no-op that creates nothing.
pub async fn releasing_an_unseen_stream_does_nothing(s: &dyn Subject) {
    s.store().release("orders", "run-a").await.unwrap();
    assert_eq!(read(s, "orders").await, None);
}

/// The first acquire of a stream gets version 0 without a value, and creates the stream.
pub async fn a_free_stream_is_acquired_at_version_0(s: &dyn Subject) {
    assert_eq!(acquire(s, "orders", "run-a").await, Some(cursor(None, 0)));
    assert_eq!(read(s, "orders").await, Some(cursor(None, 0)));
}

/// While a lease is live every other owner is refused, on that stream only.
pub async fn a_live_lease_refuses_other_owners(s: &dyn Subject) {
    assert!(acquire(s, "orders", "run-a").await.is_some());
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    assert_eq!(acquire(s, "orders", "run-c").await, None);
    // Another stream is independent.
    assert_eq!(
        acquire(s, "shipments", "run-b").await,
        Some(cursor(None, 0))
    );
    // A refused acquire writes nothing.
    assert_eq!(read(s, "orders").await, Some(cursor(None, 0)));
}

/// The owner may acquire again (a renewal): it gets the cursor and the lease runs from then.
pub async fn the_owner_renews_its_lease(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", 0, "t1").await;
    s.advance(LEASE / 2);
    assert_eq!(acquire(s, "orders", "run-a").await, Some(c1));
    // Past the first lease's end, within the renewed one.
    s.advance(LEASE / 2 + SECOND);
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    s.advance(LEASE / 2);
    assert!(acquire(s, "orders", "run-b").await.is_some());
}

/// A lease is live up to and including its expiry instant; after it anyone may take it, and
/// gets the cursor as it was.
pub async fn a_lease_is_live_until_its_expiry_and_free_after(s: &dyn Subject) {
    let held = acquire(s, "orders", "run-a").await.unwrap();
    s.advance(LEASE - SECOND);
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    s.advance(SECOND);
    assert_eq!(
        acquire(s, "orders", "run-b").await,
        None,
        "still live exactly at the expiry"
    );
    s.advance(MS);
    assert_eq!(acquire(s, "orders", "run-b").await, Some(held));
}

/// Checkpoints by the owner store the value verbatim and bump the version each time.
pub async fn checkpoints_by_the_owner_advance_the_cursor(s: &dyn Subject) {
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", c0.version, "2026-03-01T10:00:00.123Z").await;
    assert_eq!(c1, cursor(Some("2026-03-01T10:00:00.123Z"), 1));
    let c2 = checkpoint(s, "run-a", c1.version, "2026-03-01T10:05:00.000Z").await;
    assert_eq!(c2, cursor(Some("2026-03-01T10:05:00.000Z"), 2));
    assert_eq!(read(s, "orders").await, Some(c2));
    // Values are kept verbatim, whatever Tradecloud wrote.
    let odd = "2026-03-01T12:00:00.1234567+01:00";
    let c3 = checkpoint(s, "run-a", 2, odd).await;
    assert_eq!(c3, cursor(Some(odd), 3));
    assert_eq!(read(s, "orders").await, Some(c3));
}

/// Checks that `stored`, just checkpointed by run-a, is what `read` returns, also after a
/// checkpoint of run-a's on the version before conflicts; then run-a releases the stream and
/// run-b acquires it, getting `stored`, which is returned.
async fn handed_on(s: &dyn Subject, stored: &Cursor) -> Cursor {
    assert_eq!(read(s, "orders").await.as_ref(), Some(stored));
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-a", stored.version - 1, "t-stale", None, None)
            .await,
        "checkpoint on a stale version",
    );
    assert_eq!(read(s, "orders").await.as_ref(), Some(stored));
    s.store().release("orders", "run-a").await.unwrap();
    let next = acquire(s, "orders", "run-b").await.unwrap();
    assert_eq!(&next, stored);
    next
}

/// A checkpoint stores its window start verbatim (or none), which `acquire` and `read`
/// return; the next checkpoint replaces it, one without clears it, and so does `set`. A
/// checkpoint that conflicts leaves it as it was.
pub async fn checkpoints_store_and_clear_the_window_start(s: &dyn Subject) {
    let window = "2026-03-01T09:59:59.999Z";
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    assert_eq!(c0.window_start, None);
    let c1 = checkpoint_with(s, "run-a", c0.version, "t1", Some(window), None).await;
    assert_eq!(c1.window_start.as_deref(), Some(window));
    assert_eq!(c1.value.as_deref(), Some("t1"));
    let next = handed_on(s, &c1).await;
    let other = "2026-03-01T10:00:00.000123Z";
    let c2 = checkpoint_with(s, "run-b", next.version, "t2", Some(other), None).await;
    assert_eq!(c2.window_start.as_deref(), Some(other));
    let c3 = checkpoint(s, "run-b", c2.version, "t3").await;
    assert_eq!(c3, cursor(Some("t3"), c2.version + 1));
    assert_eq!(read(s, "orders").await, Some(c3.clone()));
    let c4 = checkpoint_with(s, "run-b", c3.version, "t4", Some(window), None).await;
    let set = s.store().set("orders", "t0").await.unwrap();
    assert_eq!(set, cursor(Some("t0"), c4.version + 1));
    assert_eq!(read(s, "orders").await, Some(set));
}

/// A checkpoint stores its walk verbatim (or none), however long and whatever it holds, which
/// `acquire` and `read` return; the next checkpoint replaces it and one without clears it. A
/// checkpoint that conflicts leaves it as it was. The poll run writes a page's ids into it, so
/// it is several KB of JSON.
pub async fn checkpoints_store_and_clear_the_walk(s: &dyn Subject) {
    let walk = a_walk();
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    assert_eq!(c0.walk, None);
    let c1 = checkpoint_with(s, "run-a", c0.version, "t1", None, Some(&walk)).await;
    assert_eq!(c1.walk.as_deref(), Some(walk.as_str()));
    assert_eq!(c1.value.as_deref(), Some("t1"));
    assert_eq!(c1.window_start, None);
    // The next run gets it with the cursor, to go on with the walk.
    let next = handed_on(s, &c1).await;
    let other = r#"{"offset":300}"#;
    let c2 = checkpoint_with(s, "run-b", next.version, "t1", None, Some(other)).await;
    assert_eq!(c2.walk.as_deref(), Some(other));
    assert_eq!(read(s, "orders").await, Some(c2.clone()));
    // The walk ended: the checkpoint after it has none.
    let c3 = checkpoint(s, "run-b", c2.version, "t2").await;
    assert_eq!(c3, cursor(Some("t2"), c2.version + 1));
    assert_eq!(read(s, "orders").await, Some(c3.clone()));
    s.store().release("orders", "run-b").await.unwrap();
    assert_eq!(acquire(s, "orders", "run-c").await, Some(c3));
}

/// The window start and the walk are stored each on its own: a checkpoint may give either,
/// both or neither, and gets back just what it gave.
pub async fn the_window_start_and_the_walk_are_independent(s: &dyn Subject) {
    let (window, walk) = ("2026-03-01T09:59:59.999Z", a_walk());
    let mut version = acquire(s, "orders", "run-a").await.unwrap().version;
    for (window_start, walk) in [
        (Some(window), None),
        (None, Some(walk.as_str())),
        (Some(window), Some(walk.as_str())),
        (None, None),
        (Some(window), Some(walk.as_str())),
        (Some(window), None),
    ] {
        let c = checkpoint_with(s, "run-a", version, "t", window_start, walk).await;
        let expected = Cursor {
            value: Some("t".to_owned()),
            version: version + 1,
            window_start: window_start.map(str::to_owned),
            walk: walk.map(str::to_owned),
        };
        assert_eq!(
            c,
            expected,
            "window start {window_start:?}, walk given: {}",
            walk.is_some()
        );
        assert_eq!(read(s, "orders").await, Some(expected));
        version = c.version;
    }
}

/// `set` clears the walk with the window start: the operator says where the next run starts,
/// and a walk stored before would take it elsewhere.
pub async fn set_clears_the_walk(s: &dyn Subject) {
    let walk = a_walk();
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint_with(s, "run-a", c0.version, "t1", Some("t0"), Some(&walk)).await;
    let set = s.store().set("orders", "t-set").await.unwrap();
    assert_eq!(set, cursor(Some("t-set"), c1.version + 1));
    assert_eq!(read(s, "orders").await, Some(set.clone()));
    assert_eq!(acquire(s, "orders", "run-a").await, Some(set));
}

/// A checkpoint may store a value before the stored one: the store compares owner and version,
/// never values. A poll run that paged by time past its start and then found pages unsorted
/// writes the cursor it started with back, so a run stopped before its walk ends skips nothing.
pub async fn a_checkpoint_may_move_the_cursor_back(s: &dyn Subject) {
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", c0.version, "2026-03-01T10:05:00.000Z").await;
    let c2 = checkpoint(s, "run-a", c1.version, "2026-03-01T10:00:00.000Z").await;
    assert_eq!(c2, cursor(Some("2026-03-01T10:00:00.000Z"), 2));
    assert_eq!(read(s, "orders").await, Some(c2));
}

/// A checkpoint on a version other than the stored one conflicts and writes nothing.
pub async fn a_checkpoint_on_another_version_conflicts(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", 0, "t1").await;
    let store = s.store();
    assert_conflict(
        store
            .checkpoint("orders", "run-a", 0, "t-stale", None, None)
            .await,
        "checkpoint on a stale version",
    );
    assert_conflict(
        store
            .checkpoint("orders", "run-a", 7, "t-future", None, None)
            .await,
        "checkpoint on a version never stored",
    );
    assert_eq!(read(s, "orders").await, Some(c1));
}

/// A checkpoint by an owner that does not hold the lease conflicts and writes nothing.
pub async fn a_checkpoint_by_another_owner_conflicts(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-b", 0, "t-b", None, None)
            .await,
        "checkpoint by an owner without the lease",
    );
    assert_eq!(read(s, "orders").await, Some(cursor(None, 0)));
    // The holder's checkpoint on the same version still goes through.
    assert_eq!(
        checkpoint(s, "run-a", 0, "t-a").await,
        cursor(Some("t-a"), 1)
    );
}

/// An owner whose expired lease was taken over can neither checkpoint nor release it; the
/// new owner can do both.
pub async fn an_owner_whose_lease_was_taken_over_is_fenced(s: &dyn Subject) {
    let held = acquire(s, "orders", "run-a").await.unwrap();
    s.advance(LEASE + MS);
    let taken = acquire(s, "orders", "run-b").await.unwrap();
    assert_eq!(taken, held);
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-a", held.version, "t-a", None, None)
            .await,
        "checkpoint by the owner of a lease taken over",
    );
    assert_eq!(read(s, "orders").await, Some(held));
    // Its release is a no-op: the new owner keeps the lease.
    s.store().release("orders", "run-a").await.unwrap();
    assert_eq!(acquire(s, "orders", "run-c").await, None);
    let moved = checkpoint(s, "run-b", taken.version, "t-b").await;
    assert_eq!(moved, cursor(Some("t-b"), 1));
    s.store().release("orders", "run-b").await.unwrap();
    assert_eq!(acquire(s, "orders", "run-c").await, Some(moved));
}

/// An owner whose lease ran out but was not taken over still checkpoints: only owner and
/// version are compared (DynamoDB's condition), the version guards against lost updates.
pub async fn an_expired_lease_not_taken_over_still_checkpoints(s: &dyn Subject) {
    let c = acquire(s, "orders", "run-a").await.unwrap();
    s.advance(LEASE * 2);
    assert_eq!(
        checkpoint(s, "run-a", c.version, "t1").await,
        cursor(Some("t1"), 1)
    );
}

/// Release by the owner frees the lease at once, and the next owner starts where the last
/// one ended; release by another owner does nothing; after its release the old owner cannot
/// checkpoint.
pub async fn release_frees_the_lease_for_the_next_owner(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", 0, "t1").await;
    s.store().release("orders", "run-b").await.unwrap();
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    s.store().release("orders", "run-a").await.unwrap();
    assert_eq!(acquire(s, "orders", "run-b").await, Some(c1.clone()));
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-a", c1.version, "t2", None, None)
            .await,
        "checkpoint after giving the lease up",
    );
    assert_eq!(read(s, "orders").await, Some(c1));
}

/// `set` on a new stream creates it at version 1 with the value and no lease.
pub async fn set_creates_a_stream_at_version_1_without_a_lease(s: &dyn Subject) {
    let value = "2026-01-01T00:00:00.000Z";
    let set = s.store().set("orders", value).await.unwrap();
    assert_eq!(set, cursor(Some(value), 1));
    assert_eq!(read(s, "orders").await, Some(set.clone()));
    assert_eq!(acquire(s, "orders", "run-a").await, Some(set));
}

/// `set` writes unconditionally and bumps the version, so the running owner's next
/// checkpoint conflicts instead of overwriting it; the lease stays with its owner.
pub async fn set_fences_the_running_owner_and_leaves_its_lease(s: &dyn Subject) {
    let c0 = acquire(s, "orders", "run-a").await.unwrap();
    let c1 = checkpoint(s, "run-a", c0.version, "t1").await;
    let backfill = s
        .store()
        .set("orders", "2024-06-01T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(
        backfill,
        cursor(Some("2024-06-01T00:00:00.000Z"), c1.version + 1)
    );
    assert_conflict(
        s.store()
            .checkpoint("orders", "run-a", c1.version, "t2", None, None)
            .await,
        "checkpoint on the version read before a set",
    );
    assert_eq!(read(s, "orders").await, Some(backfill.clone()));
    // The lease is untouched: still the owner's, refused to others.
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    assert_eq!(acquire(s, "orders", "run-a").await, Some(backfill.clone()));
    let again = checkpoint(s, "run-a", backfill.version, "t3").await;
    assert_eq!(again, cursor(Some("t3"), backfill.version + 1));
}

/// Of many acquires at once on a free stream exactly one wins, and only it can checkpoint.
pub async fn concurrent_acquires_have_exactly_one_winner(s: &dyn Subject) {
    let owners: Vec<String> = (0..8).map(|i| format!("run-{i}")).collect();
    let outcomes = super::join_all(
        owners
            .iter()
            .map(|owner| s.store().acquire("orders", owner, LEASE))
            .collect(),
    )
    .await;
    let winners: Vec<&String> = owners
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Ok(Some(_))))
        .map(|(owner, _)| owner)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0];
    for owner in owners.iter().filter(|owner| *owner != winner) {
        assert_conflict(
            s.store()
                .checkpoint("orders", owner, 0, "t", None, None)
                .await,
            &format!("checkpoint by {owner}, which lost the race"),
        );
    }
    assert_eq!(checkpoint(s, winner, 0, "t").await, cursor(Some("t"), 1));
}

#[track_caller]
fn assert_renew_conflict(result: Result<(), StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

/// A heartbeat keeps the lease from other owners for as long as it beats, each renewal
/// running from its own time; once it stops, the lease ends one lease after the last beat.
pub async fn renewals_keep_the_lease_while_they_beat(s: &dyn Subject) {
    let held = acquire(s, "orders", "run-a").await.unwrap();
    for _ in 0..4 {
        s.advance(LEASE / 2);
        s.store().renew("orders", "run-a", LEASE).await.unwrap();
        assert_eq!(acquire(s, "orders", "run-b").await, None);
    }
    // Two whole leases have passed since the acquire: only the renewals kept it.
    s.advance(LEASE);
    assert_eq!(
        acquire(s, "orders", "run-b").await,
        None,
        "live exactly at the end of the last renewal"
    );
    s.advance(MS);
    assert_eq!(acquire(s, "orders", "run-b").await, Some(held));
}

/// A renewal by anyone but the lease's owner, or of a stream never seen, conflicts and
/// writes nothing: the owner's lease ends when it would have.
pub async fn a_renewal_by_another_owner_conflicts(s: &dyn Subject) {
    assert_renew_conflict(
        s.store().renew("orders", "run-a", LEASE).await,
        "renewal of a stream never acquired",
    );
    assert_eq!(read(s, "orders").await, None);
    acquire(s, "orders", "run-a").await.unwrap();
    s.advance(LEASE / 2);
    assert_renew_conflict(
        s.store().renew("orders", "run-b", LEASE).await,
        "renewal by an owner without the lease",
    );
    s.advance(LEASE / 2 + MS);
    assert!(
        acquire(s, "orders", "run-c").await.is_some(),
        "run-b's renewal must not have extended run-a's lease"
    );
}

/// After its release, or after a take-over, the old owner's heartbeat conflicts (the run
/// learns it lost the stream) and does not take the lease back.
pub async fn a_renewal_after_release_or_take_over_conflicts(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    s.store().release("orders", "run-a").await.unwrap();
    assert_renew_conflict(
        s.store().renew("orders", "run-a", LEASE).await,
        "renewal after release",
    );
    assert!(
        acquire(s, "orders", "run-b").await.is_some(),
        "a renewal after release must not take the free lease"
    );
    s.advance(LEASE + MS);
    let taken = acquire(s, "orders", "run-c").await.unwrap();
    assert_renew_conflict(
        s.store().renew("orders", "run-b", LEASE).await,
        "renewal after a take-over",
    );
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    let moved = checkpoint(s, "run-c", taken.version, "t-c").await;
    assert_eq!(moved, cursor(Some("t-c"), taken.version + 1));
}

/// An owner whose lease ran out without a take-over renews it (a heartbeat delayed by a slow
/// store), and the lease is live again for others.
pub async fn an_expired_lease_not_taken_over_is_renewed(s: &dyn Subject) {
    acquire(s, "orders", "run-a").await.unwrap();
    s.advance(LEASE + SECOND);
    s.store().renew("orders", "run-a", LEASE).await.unwrap();
    assert_eq!(acquire(s, "orders", "run-b").await, None);
    s.advance(LEASE + MS);
    assert!(acquire(s, "orders", "run-b").await.is_some());
}

/// Expands to one `#[tokio::test]` per rule of [`conformance::cursor_store`](crate::conformance::cursor_store),
/// each named after its rule and run on a fresh subject from `$subject.await` (a
/// [`Subject`](crate::conformance::cursor_store::Subject)). The calling crate needs `tokio`.
#[macro_export]
macro_rules! cursor_store_conformance {
    ($subject:expr) => {
        $crate::cursor_store_conformance!(@rules $subject;
            an_unseen_stream_reads_none,
            an_unacquired_stream_cannot_be_checkpointed,
            releasing_an_unseen_stream_does_nothing,
            a_free_stream_is_acquired_at_version_0,
            a_live_lease_refuses_other_owners,
            the_owner_renews_its_lease,
            a_lease_is_live_until_its_expiry_and_free_after,
            checkpoints_by_the_owner_advance_the_cursor,
            checkpoints_store_and_clear_the_window_start,
            checkpoints_store_and_clear_the_walk,
            the_window_start_and_the_walk_are_independent,
            set_clears_the_walk,
            a_checkpoint_may_move_the_cursor_back,
            a_checkpoint_on_another_version_conflicts,
            a_checkpoint_by_another_owner_conflicts,
            an_owner_whose_lease_was_taken_over_is_fenced,
            an_expired_lease_not_taken_over_still_checkpoints,
            release_frees_the_lease_for_the_next_owner,
            set_creates_a_stream_at_version_1_without_a_lease,
            set_fences_the_running_owner_and_leaves_its_lease,
            concurrent_acquires_have_exactly_one_winner,
            renewals_keep_the_lease_while_they_beat,
            a_renewal_by_another_owner_conflicts,
            a_renewal_after_release_or_take_over_conflicts,
            an_expired_lease_not_taken_over_is_renewed,
        );
    };
    (@rules $subject:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let subject = $subject.await;
                $crate::conformance::cursor_store::$rule(&subject).await;
            }
        )*
    };
}
