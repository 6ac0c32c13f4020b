//! `kill -9` in the middle of a stream of enqueues: everything that was acknowledged (`Ok`)
//! before the kill is in the queue after a restart, once, and the file is intact.
//!
//! The test binary plays both parts: the parent runs the test, which starts this same binary,
//! filtered to this same test, with [`CHILD_DB`] set; in the child the test body is the writer:
//! concurrent tasks that claim, enqueue and complete like the relay and print `ACK <id> <key>`
//! for each envelope whose enqueue and completion returned `Ok`, until the parent SIGKILLs it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use tcrelay_core::ports::{DedupeStore, RecordState};
use tcrelay_sqlite::SqliteStore;

use crate::common::{order, temp_db};

/// Set in the child: the database file to write to.
const CHILD_DB: &str = "TCRELAY_SQLITE_CRASH_CHILD_DB";
/// Set in the child: a prefix making its keys distinct from earlier rounds'.
const CHILD_ROUND: &str = "TCRELAY_SQLITE_CRASH_CHILD_ROUND";
const TEST_NAME: &str = "durability::acknowledged_enqueues_survive_sigkill";

#[test]
fn acknowledged_enqueues_survive_sigkill() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        let round = std::env::var(CHILD_ROUND).expect("round");
        child(Path::new(&db), &round);
        return;
    }
    let (_dir, path) = temp_db();
    let mut acked: Vec<(i64, String)> = Vec::new();
    for round in 0..3 {
        // Kill after a different number of acknowledgements each round; the child keeps
        // writing between our read and the kill, so the kill lands mid-transaction at a
        // different point each time.
        let kill_after = 40 + 25 * round;
        acked.extend(run_and_kill(&path, round, kill_after));
        verify(&path, &acked);
    }
}

/// Runs one child round; returns the (id, key) pairs it acknowledged before dying.
fn run_and_kill(path: &Path, round: usize, kill_after: usize) -> Vec<(i64, String)> {
    // The writer's stderr goes to a file beside the database, shown if it dies on its own.
    let stderr_path = path.with_extension(format!("child{round}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_ROUND, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn the test binary as the writer");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = String::new();
    while acked.len() < kill_after {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!(
                "the writer ended on its own ({status}) after {} acks",
                acked.len()
            );
        }
        acked.extend(parse_ack(&line));
    }
    child.kill().expect("SIGKILL the writer"); // Child::kill is SIGKILL on Unix.
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer was killed, not finished: {status}"
    );
    // Lines it printed before dying were acknowledged too.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    acked.extend(rest.lines().filter_map(parse_ack));
    acked
}

fn parse_ack(line: &str) -> Option<(i64, String)> {
    let rest = line.trim_end().strip_prefix("ACK ")?;
    let (id, key) = rest.split_once(' ')?;
    Some((id.parse().ok()?, key.to_owned()))
}

/// Reopens the file as a restarted process would and checks every acknowledgement.
fn verify(path: &Path, acked: &[(i64, String)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(path).expect("reopen after kill -9");
        store.check_integrity().await.expect("integrity_check ok");
        let exported = store.export(true).await.unwrap();
        assert!(exported.windows(2).all(|w| w[0].id < w[1].id));
        let stored: HashMap<i64, String> = exported
            .iter()
            .map(|q| (q.id, q.envelope().unwrap().dedupe_key))
            .collect();
        let unique: HashSet<&String> = stored.values().collect();
        assert_eq!(unique.len(), stored.len(), "no key enqueued twice");
        for (id, key) in acked {
            assert_eq!(
                stored.get(id),
                Some(key),
                "acknowledged id {id} ({key}) is present"
            );
            assert_eq!(
                store.lookup(key).await.unwrap().map(|r| r.state),
                Some(RecordState::Completed),
                "{key} completed"
            );
        }
        assert!(stored.len() >= acked.len());
        // Each writer's acknowledgements are in its own order in the queue.
        let mut last_id: HashMap<&str, i64> = HashMap::new();
        for (id, key) in acked {
            let writer = &key[..key.rfind('-').unwrap()];
            if let Some(previous) = last_id.insert(writer, *id) {
                assert!(previous < *id, "{writer}: {previous} then {id}");
            }
        }
    });
}

/// Concurrent writers in the child, as concurrent webhook requests would be.
const WRITERS: usize = 4;

/// The writer: [`WRITERS`] tasks that claim, enqueue, complete and print, in batches of 1 to 3,
/// until killed.
fn child(db: &Path, round: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(db).expect("child open");
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                let prefix = format!("r{round}-w{w}-");
                tokio::spawn(async move {
                    let mut n = 0usize;
                    // Bounded so that an orphaned writer stops by itself.
                    for batch_no in 0..20_000usize {
                        let keys: Vec<String> = (0..1 + batch_no % 3)
                            .map(|_| {
                                n += 1;
                                format!("{prefix}{n}")
                            })
                            .collect();
                        let mut tokens = Vec::new();
                        for key in &keys {
                            let claim = store.claim(key, true).await.unwrap();
                            tokens.push(claim.token().cloned().expect("a fresh key is free"));
                        }
                        let batch: Vec<_> = keys.iter().map(|k| order(k)).collect();
                        let ids = store.enqueue_returning_ids(&batch).await.unwrap();
                        for (key, token) in keys.iter().zip(&tokens) {
                            store.complete(key, token).await.unwrap();
                        }
                        // One lock for the batch's lines, so writers' lines never interleave.
                        let mut stdout = std::io::stdout().lock();
                        for (id, key) in ids.iter().zip(&keys) {
                            writeln!(stdout, "ACK {id} {key}").unwrap();
                        }
                        stdout.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}
