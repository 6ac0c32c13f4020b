//! The relay lock: a `tcrelay serve` that starts alone on its database releases the dedupe
//! claims a process that ended left in progress; beside a relaying process it releases none.

use tcrelay_core::ports::{
    ClaimOutcome, Claimant, DedupeRecord, DedupeStore, RecordState, StoreError,
};
use tcrelay_sqlite::SqliteStore;

use crate::common::temp_db;

async fn in_progress(store: &SqliteStore, key: &str) -> Result<(), StoreError> {
    let outcome = store.claim(key, false).await?;
    assert!(outcome.token().is_some(), "{outcome:?}");
    Ok(())
}

fn record(state: RecordState, full_state: bool) -> Option<DedupeRecord> {
    Some(DedupeRecord { state, full_state })
}

/// One test of this file at a time: one starts a process, which until its `exec` holds every
/// lock file this process has open, so a lock another test just dropped would still be held.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_process_alone_releases_every_claim_in_progress_and_keeps_completed_records() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path) = temp_db();
    let killed = SqliteStore::open(&path).unwrap();
    // What a killed process leaves: a webhook request's claim, a poll run's, a completed one.
    in_progress(&killed, "webhook").await.unwrap();
    let run = Claimant::poll_run("orders", "run-1", chrono::Utc::now());
    let polled = killed.claim_as("polled", true, Some(&run)).await.unwrap();
    assert!(polled.token().is_some());
    let done = killed.claim("done", true).await.unwrap();
    killed
        .complete("done", done.token().unwrap())
        .await
        .unwrap();
    drop(killed);

    let restarted = SqliteStore::open(&path).unwrap();
    let start = restarted.start_relaying().await.unwrap();
    assert_eq!(start.released, Some(2));
    assert_eq!(restarted.lookup("webhook").await.unwrap(), None);
    assert_eq!(restarted.lookup("polled").await.unwrap(), None);
    assert_eq!(
        restarted.lookup("done").await.unwrap(),
        record(RecordState::Completed, true)
    );
    assert!(matches!(
        restarted.claim("webhook", false).await.unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    // Beside the database, named apart from SQLite's own dot-file lock (`<database>.lock`).
    assert_eq!(
        restarted.relay_lock_path(),
        std::fs::canonicalize(&path)
            .unwrap()
            .with_file_name("tcrelay.db-relay.lock")
    );
    assert!(restarted.relay_lock_path().exists());
}

#[tokio::test]
async fn a_process_beside_a_relaying_one_releases_none_of_its_claims() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path) = temp_db();
    let first = SqliteStore::open(&path).unwrap();
    let first_lock = first.start_relaying().await.unwrap();
    assert_eq!(first_lock.released, Some(0));
    // The first process is relaying this webhook request right now.
    in_progress(&first, "webhook").await.unwrap();

    let second = SqliteStore::open(&path).unwrap();
    let second_lock = second.start_relaying().await.unwrap();
    assert_eq!(second_lock.released, None);
    assert_eq!(
        second.lookup("webhook").await.unwrap(),
        record(RecordState::InProgress, false)
    );

    // A third starts while the second still relays, the first gone: still not alone.
    drop(first_lock);
    let third = SqliteStore::open(&path).unwrap();
    assert_eq!(third.start_relaying().await.unwrap().released, None);
    drop(second_lock);
    // Alone at last: the first process's claim is one nobody can complete.
    let fourth = SqliteStore::open(&path).unwrap();
    assert_eq!(fourth.start_relaying().await.unwrap().released, Some(1));
    assert_eq!(fourth.lookup("webhook").await.unwrap(), None);
}

/// A database reached through a symbolic link is the file it points to (SQLite keeps its WAL
/// beside the target): a process started on one path is beside a process relaying on the other.
#[cfg(unix)]
#[tokio::test]
async fn a_process_on_a_link_to_the_database_releases_none_of_the_claims_of_one_on_the_file() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, path) = temp_db();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    for (relaying, starting) in [(&path, &link), (&link, &path)] {
        let first = SqliteStore::open(relaying).unwrap();
        let first_lock = first.start_relaying().await.unwrap();
        in_progress(&first, "webhook").await.unwrap();

        let second = SqliteStore::open(starting).unwrap();
        assert_eq!(second.start_relaying().await.unwrap().released, None);
        assert_eq!(
            second.lookup("webhook").await.unwrap(),
            record(RecordState::InProgress, false),
            "a process on {starting:?} beside one on {relaying:?}"
        );
        drop(first_lock);
        // Alone: the claim left in progress is released, for the next round.
        let third = SqliteStore::open(relaying).unwrap();
        assert_eq!(third.start_relaying().await.unwrap().released, Some(1));
    }
}

/// Set in the child process of [`a_process_locks_a_lock_file_another_user_made`]: the
/// database it checks, as another user.
#[cfg(unix)]
const CHILD_DB: &str = "TCRELAY_TEST_RELAY_LOCK_DB";
/// The test that is both parent and child, as the child runs it (`--exact`).
#[cfg(unix)]
const OTHER_USER_TEST: &str = "relay_lock::a_process_locks_a_lock_file_another_user_made";

/// A lock file made by another user (root ran the first relaying command on the service's
/// database: a `quarantine replay`; writable by its owner only) is locked all the same by
/// the service's `serve`: a lock needs the file open, not writable. Relaying without it, the
/// `serve` would be invisible to the next process started as root, which would release its live
/// claims. Not run as root, the lock file is made read-only to this user; run as root (which
/// writes any file), this test binary, copied where another user can run it, runs the check as
/// `nobody` on a lock file root made.
///
/// The test binary plays both parts, as in `durability.rs`: with [`CHILD_DB`] set, this same
/// test is the child's check. (The check used to be a test of its own, `#[ignore]`d and run by
/// this one: run alone, e.g. by `--include-ignored`, it found no database and passed having
/// checked nothing, and every other run reported a skipped test that was not skipped.)
#[cfg(unix)]
#[tokio::test]
async fn a_process_locks_a_lock_file_another_user_made() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::os::unix::process::CommandExt as _;
    const NOBODY: u32 = 65534;
    if let Some(path) = std::env::var_os(CHILD_DB) {
        as_another_user_start_relaying_alone(std::path::Path::new(&path)).await;
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;

    let (dir, path) = temp_db();
    // A process killed while it relayed left this claim in progress.
    let killed = SqliteStore::open(&path).unwrap();
    in_progress(&killed, "webhook").await.unwrap();
    let lock = killed.relay_lock_path();
    drop(killed);
    std::fs::write(&lock, b"").unwrap();
    if std::fs::metadata(&lock).unwrap().uid() != 0 {
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o444)).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let start = store.start_relaying().await.unwrap();
        assert_eq!(start.released, Some(1), "{start:?}");
        return;
    }
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The service user's directory, database and a copy of this test binary (the build's may
    // lie under a private home, e.g. /root); the lock file stays root's.
    let exe = dir.path().join("relay-lock-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    for owned in [dir.path(), path.as_path(), exe.as_path()] {
        std::os::unix::fs::chown(owned, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let searchable = dir
        .path()
        .ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0));
    assert!(
        searchable,
        "the temporary directory {:?} must be reachable by another user (set TMPDIR)",
        dir.path()
    );

    let child = std::process::Command::new(&exe)
        .args([
            "--exact",
            OTHER_USER_TEST,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    let err = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{out}\n{err}");
    assert!(out.contains("test result: ok. 1 passed;"), "{out}\n{err}");
}

/// The child process's part of [`a_process_locks_a_lock_file_another_user_made`]: alone on
/// the database, it releases the claim left in progress, which only a process holding the lock
/// does.
#[cfg(unix)]
async fn as_another_user_start_relaying_alone(path: &std::path::Path) {
    let store = SqliteStore::open(path).unwrap();
    let start = store.start_relaying().await.unwrap();
    assert_eq!(start.released, Some(1), "{start:?}");
    assert_eq!(store.lookup("webhook").await.unwrap(), None);
}
