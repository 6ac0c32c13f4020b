//! Concurrent webhook requests and poll runs on one file: nothing lost, nothing twice, and no
//! `SQLITE_BUSY` reaching the caller.

use std::collections::{BTreeMap, HashSet};

use tcrelay_core::ports::{Completion, DedupeStore, EventSink, RecordState};
use tcrelay_sqlite::SqliteStore;

use crate::common::{order, temp_db};

const TASKS: usize = 8;
const PER_TASK: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_claims_and_enqueues_land_exactly_once() {
    let (_dir, path) = temp_db();
    // Default options (synchronous=FULL), as the runner uses them. Two handles = two
    // connections on the file, as `tcrelay serve` and an operator's `tcrelay queue ack` would
    // be, so SQLite's own locking (busy_timeout, BEGIN IMMEDIATE) is exercised too, not just
    // our mutex.
    let handles = [
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    ];

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = handles[t % 2].clone();
            tokio::spawn(async move {
                let mut won_contested = Vec::new();
                for i in 0..PER_TASK {
                    // A key of this task's own: the relay's claim, enqueue, complete.
                    let key = format!("task{t}:item{i}");
                    let claim = store.claim(&key, false).await.unwrap();
                    let token = claim.token().expect("an own key is free");
                    store.enqueue(&[order(&key)]).await.unwrap();
                    assert_eq!(
                        store.complete(&key, token).await.unwrap(),
                        Completion::Completed
                    );
                    // A key every task races for (the same change by webhook and by poll).
                    let contested = format!("contested:{i}");
                    if store
                        .claim(&contested, true)
                        .await
                        .unwrap()
                        .token()
                        .is_some()
                    {
                        won_contested.push(i);
                    }
                }
                won_contested
            })
        })
        .collect();
    let mut winners: BTreeMap<usize, usize> = BTreeMap::new();
    for task in tasks {
        for i in task.await.expect("no task failed or panicked") {
            *winners.entry(i).or_default() += 1;
        }
    }
    assert_eq!(winners.len(), PER_TASK, "every contested key was claimed");
    assert!(
        winners.values().all(|&n| n == 1),
        "and by one task only: {winners:?}"
    );

    let store = SqliteStore::open(&path).unwrap();
    let exported = store.export(false).await.unwrap();
    assert_eq!(exported.len(), TASKS * PER_TASK);
    let keys: Vec<String> = exported
        .iter()
        .map(|q| q.envelope().unwrap().dedupe_key)
        .collect();
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        keys.len(),
        "no key twice"
    );
    // Each task's enqueues are in the queue in the order it made them.
    for t in 0..TASKS {
        let prefix = format!("task{t}:");
        let own: Vec<&String> = keys.iter().filter(|k| k.starts_with(&prefix)).collect();
        let expected: Vec<String> = (0..PER_TASK).map(|i| format!("task{t}:item{i}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "task {t}");
    }
    for key in keys.iter().step_by(97) {
        assert_eq!(
            store.lookup(key).await.unwrap().map(|r| r.state),
            Some(RecordState::Completed)
        );
    }
    store.check_integrity().await.unwrap();
}
