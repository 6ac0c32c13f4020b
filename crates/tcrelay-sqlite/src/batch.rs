//! Group commit of the webhook's hot writes (dedupe claims, completions, releases, enqueues).
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and one webhook request
//! makes several commits, so the fsync, not the CPU, bounds the requests a second when each call
//! commits alone. Instead, a call made while another batch is committing waits in a queue; the
//! thread that finishes the batch takes every queued call, runs each in its own savepoint inside
//! one `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. So N
//! concurrent calls cost one fsync, and a lone call costs what it did before (no waiting for
//! company: a call that finds nobody committing starts a batch at once).
//!
//! What a caller sees is unchanged: its future resolves only after the transaction holding its
//! write is committed (as durable as [`Durability`](crate::Durability) says), with its own
//! result. A call that fails rolls back its savepoint alone and gets its own error; the others in
//! the batch go on. If the batch itself fails (BEGIN, a savepoint, or COMMIT), every call in it
//! gets an error, including those whose own work succeeded: nothing in a failed batch is
//! reported as done, because none of it was committed. Calls in one batch see the writes of the
//! calls before them, exactly as if they had committed one after the other in that order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::db::{Ctx, SqliteOptions, lock};
use crate::error::DbError;

/// One call waiting to be run in a batch.
pub(crate) trait Job: Send {
    /// Runs the call's work inside the batch's transaction; `true` when it succeeded (its
    /// savepoint is kept).
    fn run(&mut self, ctx: Ctx<'_>) -> bool;
    /// Answers the caller: its own result if the batch committed (`None`), else `failure`.
    fn finish(self: Box<Self>, failure: Option<&DbError>);
}

/// A call's work and the channel its answer goes back on.
pub(crate) struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T, DbError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, DbError>>,
}

impl<T, F> Pending<T, F> {
    /// A job running `work` and answering on `reply`.
    pub(crate) fn new(work: F, reply: tokio::sync::oneshot::Sender<Result<T, DbError>>) -> Self {
        Pending {
            work: Some(work),
            result: None,
            reply,
        }
    }
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(Ctx<'_>) -> Result<T, DbError> + Send,
{
    fn run(&mut self, ctx: Ctx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(ctx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<&DbError>) {
        let answer = match (self.result, failure) {
            // Its own error says more than the batch's (and it was rolled back either way).
            (Some(Err(own)), _) => Err(own),
            (_, Some(batch)) => Err(batch.shared()),
            (Some(Ok(value)), None) => Ok(value),
            // Its work panicked; the savepoint was rolled back.
            (None, None) => Err(DbError::Task("the call panicked".to_owned())),
        };
        // The caller may have stopped waiting (its request's deadline); the write stands.
        let _ = self.reply.send(answer);
    }
}

/// The queue of calls waiting for the next batch.
#[derive(Default)]
pub(crate) struct Batcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: Vec<Box<dyn Job>>,
    /// A thread is running batches; it takes `jobs` before it stops.
    committing: bool,
}

impl Batcher {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; if something did, the queue is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`; `true` when the caller must start a committing thread (none is running).
    pub(crate) fn push(&self, job: Box<dyn Job>) -> bool {
        let mut state = self.state();
        state.jobs.push(job);
        !std::mem::replace(&mut state.committing, true)
    }

    /// How many calls wait, and whether a committing thread runs (tests).
    #[cfg(test)]
    fn snapshot(&self) -> (usize, bool) {
        let state = self.state();
        (state.jobs.len(), state.committing)
    }

    /// The committing thread: runs batches until the queue is empty.
    pub(crate) fn lead(
        self: &Arc<Self>,
        conn: &Mutex<Connection>,
        options: &SqliteOptions,
        clock: &Clock,
    ) {
        // If this thread dies anyway (a bug outside the caught job panics), the queued callers
        // get an error instead of waiting for ever, and the next call starts a new thread.
        struct Abandon<'a>(&'a Batcher);
        impl Drop for Abandon<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut state = self.0.state();
                    state.committing = false;
                    let failure = DbError::Task("the batch commit thread panicked".to_owned());
                    for job in std::mem::take(&mut state.jobs) {
                        job.finish(Some(&failure));
                    }
                }
            }
        }
        let _abandon = Abandon(self);
        loop {
            let jobs = {
                let mut state = self.state();
                if state.jobs.is_empty() {
                    state.committing = false;
                    return;
                }
                std::mem::take(&mut state.jobs)
            };
            let mut conn = lock(conn);
            commit(&mut conn, jobs, options, clock);
        }
    }
}

/// Runs `jobs` in one transaction, each in its own savepoint, commits, and answers them all.
fn commit(
    conn: &mut Connection,
    mut jobs: Vec<Box<dyn Job>>,
    options: &SqliteOptions,
    clock: &Clock,
) {
    let failure = run_all(conn, &mut jobs, options, clock)
        .and_then(|()| conn.execute_batch("COMMIT").map_err(DbError::from))
        .err();
    if failure.is_some()
        && !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "rollback of a failed batch failed");
    }
    if let Some(failure) = &failure {
        tracing::warn!(error = %failure, calls = jobs.len(), "SQLite batch failed");
    }
    for job in jobs {
        job.finish(failure.as_ref());
    }
}

fn run_all(
    conn: &mut Connection,
    jobs: &mut [Box<dyn Job>],
    options: &SqliteOptions,
    clock: &Clock,
) -> Result<(), DbError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in jobs.iter_mut() {
        conn.execute_batch("SAVEPOINT call")?;
        let now = clock();
        let ok = catch_unwind(AssertUnwindSafe(|| {
            job.run(Ctx {
                conn: &mut *conn,
                now_ms: now.timestamp_millis(),
                now,
                options,
            })
        }))
        .unwrap_or(false);
        if !ok {
            conn.execute_batch("ROLLBACK TO call")?;
        }
        conn.execute_batch("RELEASE call")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::params;
    use tcrelay_core::ports::StoreError;

    use crate::db::{SqliteStore, lock};
    use crate::error::DbError;

    /// What a test call does after inserting its cursor row.
    #[derive(Clone, Copy)]
    enum Then {
        Succeed,
        Fail,
        Panic,
        /// Ends the batch's transaction behind its back, so the batch cannot go on.
        Rollback,
    }

    type Call = tokio::task::JoinHandle<Result<(), StoreError>>;

    fn call(store: &SqliteStore, stream: &'static str, then: Then) -> Call {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .run_batched("test", move |ctx| {
                    ctx.conn.execute(
                        "INSERT INTO cursor (stream, version) VALUES (?1, 1)",
                        params![stream],
                    )?;
                    match then {
                        Then::Succeed => Ok(()),
                        Then::Fail => Err(DbError::Corrupt(format!("{stream} fails"))),
                        Then::Panic => panic!("{stream} panics"),
                        Then::Rollback => Ok(ctx.conn.execute_batch("ROLLBACK")?),
                    }
                })
                .await
        })
    }

    /// The rows committed, read on a connection of its own.
    fn committed(store: &SqliteStore) -> Vec<String> {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT stream FROM cursor ORDER BY stream")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    async fn until(mut ready: impl FnMut() -> bool) {
        for _ in 0..2000 {
            if ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the calls did not queue up");
    }

    /// Runs `calls` (each a stream and what it does) as one batch, in that order, and returns
    /// their answers.
    /// The connection is held while a first call's committing thread waits for it, so the
    /// others queue up behind it and that thread takes them all at once afterwards.
    async fn one_batch(
        store: &SqliteStore,
        calls: &[(&'static str, Then)],
    ) -> Vec<Result<(), StoreError>> {
        let conn = std::sync::Arc::clone(&store.conn);
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let holder = std::thread::spawn(move || {
            let _guard = lock(&conn);
            locked_tx.send(()).unwrap();
            held_rx.recv().unwrap();
        });
        locked_rx.await.unwrap();
        let first = call(store, "first", Then::Succeed);
        until(|| store.batch.snapshot() == (0, true)).await;
        // One at a time: tasks spawned together may reach the queue in any order, and the
        // batch runs its calls in the order they queued.
        let mut handles: Vec<Call> = Vec::new();
        for (queued, &(stream, then)) in calls.iter().enumerate() {
            handles.push(call(store, stream, then));
            until(|| store.batch.snapshot().0 == queued + 1).await;
        }
        held_tx.send(()).unwrap();
        holder.join().unwrap();
        first.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for h in handles {
            answers.push(h.await.expect("the call task itself does not panic"));
        }
        answers
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("b.db")).unwrap();
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_call_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let (_dir, store) = store();
        let answers = one_batch(
            &store,
            &[
                ("a", Then::Succeed),
                ("b", Then::Fail),
                ("c", Then::Panic),
                ("d", Then::Succeed),
            ],
        )
        .await;
        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(
            matches!(answers[1], Err(StoreError::Corrupt(_))),
            "{answers:?}"
        );
        assert!(
            matches!(answers[2], Err(StoreError::Unavailable(_))),
            "{answers:?}"
        );
        assert!(answers[3].is_ok(), "{answers:?}");
        assert_eq!(committed(&store), ["a", "d", "first"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_fails_every_call_in_it_and_commits_none() {
        let (_dir, store) = store();
        let answers = one_batch(
            &store,
            &[
                ("a", Then::Succeed),
                ("b", Then::Rollback),
                ("c", Then::Succeed),
            ],
        )
        .await;
        for answer in &answers {
            assert!(
                matches!(answer, Err(StoreError::Unavailable(_))),
                "{answers:?}"
            );
        }
        assert_eq!(committed(&store), ["first"]);
        // The next batch works again, on a clean connection.
        call(&store, "after", Then::Succeed).await.unwrap().unwrap();
        assert_eq!(committed(&store), ["after", "first"]);
        assert_eq!(store.batch.snapshot().0, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_in_one_batch_see_the_writes_before_them() {
        let (_dir, store) = store();
        // The second insert of "a" hits the first one's row, uncommitted as it still is.
        let answers = one_batch(&store, &[("a", Then::Succeed), ("a", Then::Succeed)]).await;
        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(answers[1].is_err(), "{answers:?}");
        assert_eq!(committed(&store), ["a", "first"]);
    }
}
