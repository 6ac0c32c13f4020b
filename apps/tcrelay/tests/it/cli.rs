//! The command line as an operator uses it: the built binary on a real database file.

use crate::common;

use std::process::Output;

use tcrelay_core::envelope::{ENVELOPE_SCHEMA, Envelope, Source};
use tcrelay_core::ports::EventSink;
use tcrelay_sqlite::SqliteStore;
use tradecloud_model::{Format, ObjectKind};

use common::{stdout, tcrelay};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn envelope(id: &str, n: u32) -> Envelope {
    Envelope {
        schema: ENVELOPE_SCHEMA.to_owned(),
        source: Source::Poll,
        kind: ObjectKind::Order,
        event_name: None,
        id: id.to_owned(),
        version: Some(u64::from(n)),
        last_updated_at: Some(format!("2025-01-06T08:00:00.{n:03}Z")),
        message_id: None,
        dedupe_key: format!("state/order/{id}/{n}"),
        received_at: "2025-01-06T08:00:01.000Z".to_owned(),
        format: Format::Json,
        changed_lines: None,
        payload: serde_json::json!({"id": id, "version": n, "price": "1.10"}).into(),
    }
}

/// A new local database in a temporary folder (kept while the folder lives), its path, and the
/// store on it.
fn queue_db() -> (tempfile::TempDir, String, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = SqliteStore::open(&path).unwrap();
    (dir, path.to_str().unwrap().to_owned(), store)
}

fn stats(db: &str) -> serde_json::Value {
    let o = tcrelay(&["--db", db, "queue", "stats", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).expect("stats JSON")
}

#[tokio::test]
async fn stored_ids_and_event_names_cannot_forge_rows_in_listings() {
    // Ids and event names come from request bodies; a newline or an escape sequence in one must
    // not add a row to (or repaint) an operator's `queue list` or `trace`.
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let forged_id = "o-1\n       9  order  poll  o-2";
    let mut e = envelope(forged_id, 1);
    e.event_name = Some("OrderIssuedByBuyer\u{1b}[2J\n      10  forged".to_owned());
    store.enqueue(&[e]).await.unwrap();
    for args in [vec!["queue", "list"], vec!["trace", forged_id]] {
        let o = tcrelay(&[&["--db", db][..], &args[..]].concat(), &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(!out.contains('\u{1b}'), "{args:?}: {out}");
        assert!(
            !out.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("9 ") || l.starts_with("10 ")
            }),
            "{args:?}: a forged row: {out}"
        );
        assert!(out.contains("\\n"), "{args:?}: escaped: {out}");
    }
}

#[tokio::test]
async fn export_names_the_id_to_acknowledge_and_up_to_pins_the_batch() {
    // A consumer acknowledges up to the last id it exported, not the newest id in the queue:
    // messages enqueued after its export must stay pending.
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let batch: Vec<Envelope> = (1..=3).map(|n| envelope("o1", n)).collect();
    store.enqueue(&batch).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3);
    assert!(stderr(&o).contains("queue ack --up-to 3"), "{}", stderr(&o));
    // Enqueued after the export: the acknowledgement of the batch leaves them pending.
    let later: Vec<Envelope> = (4..=5).map(|n| envelope("o2", n)).collect();
    store.enqueue(&later).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "3"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 2);
    let o = tcrelay(&["--db", db, "queue", "export", "--up-to", "4"], &[]);
    let lines: Vec<Envelope> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, later[..1]);
    assert!(stderr(&o).contains("queue ack --up-to 4"), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "queue", "export", "--up-to", "3"], &[]);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("exported 0"), "{}", stderr(&o));
}

/// `queue ack --up-to` an id no message ever had (a typo: 30 for 3) would acknowledge every
/// message up to the newest, those enqueued after the consumer's export too, which the ERP then
/// never receives (housekeeping deletes them later). Refused, naming the id and the highest one
/// exported, and nothing is acknowledged; so is an id the queue gave after the export.
#[tokio::test]
async fn ack_up_to_an_id_no_message_had_is_refused_and_acknowledges_nothing() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "1"], &[]);
    assert!(!o.status.success(), "an empty queue has no id 1");
    assert!(
        stderr(&o).contains("nothing has been exported yet"),
        "{}",
        stderr(&o)
    );

    let batch: Vec<Envelope> = (1..=3).map(|n| envelope("o1", n)).collect();
    store.enqueue(&batch).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Enqueued after the consumer's export of ids 1 to 3, which meant to acknowledge 3.
    let later: Vec<Envelope> = (4..=5).map(|n| envelope("o2", n)).collect();
    store.enqueue(&later).await.unwrap();
    for up_to in ["30", "5"] {
        let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", up_to], &[]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains(up_to) && err.contains("exported up to 3"),
            "{err}"
        );
        assert!(err.contains("nothing was acknowledged"), "{err}");
        assert_eq!(stats(db)["pending"], 5);
    }

    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "3"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 2);
}

/// The review's loss: `queue export --up-to 10`, then a mistyped `queue ack --up-to 12`
/// acknowledged 11 and 12, which no export handed out, so the ERP never got them (housekeeping
/// deletes them later). `ack` accepts only ids up to the highest an export wrote: above it, by
/// `--up-to` or one by one, it refuses with exit code 1, naming that id and what to do.
#[tokio::test]
async fn ack_refuses_ids_no_export_handed_out() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let batch: Vec<Envelope> = (1..=15).map(|n| envelope("o1", n)).collect();
    store.enqueue(&batch).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "export", "--up-to", "10"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 10);

    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "12"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("12") && err.contains("exported up to 10"),
        "{err}"
    );
    assert!(err.contains("nothing was acknowledged"), "{err}");
    assert!(err.contains("queue export"), "what to do: {err}");
    assert_eq!(stats(db)["pending"], 15);

    // One by one: the exported one is acknowledged, the other named and left pending.
    let o = tcrelay(&["--db", db, "queue", "ack", "9", "12"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("acknowledged 1"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("12") && err.contains("exported up to 10"),
        "{err}"
    );
    assert_eq!(stats(db)["pending"], 14);
    assert_eq!(stats(db)["exportedUpTo"], 10);

    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "10"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 5);
    // A later export hands out the rest: then they can be acknowledged.
    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    assert_eq!(stdout(&o).lines().count(), 5);
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "15"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 0);
}

/// A database from before the export mark (schema version 5): the consumer exported with the
/// older build, then upgraded. Its first `ack` of that batch still works (the mark starts at
/// every id given before the upgrade); a message enqueued after the upgrade needs an export.
#[tokio::test]
async fn after_an_upgrade_the_batch_exported_before_can_be_acknowledged() {
    let (_dir, db, store) = queue_db();
    let batch: Vec<Envelope> = (1..=3).map(|n| envelope("o1", n)).collect();
    store.enqueue(&batch).await.unwrap();
    drop(store);
    // As the older build left it: no mark table, schema version 5.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE queue_export; PRAGMA user_version = 5")
        .unwrap();
    let db = db.as_str();
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "3"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 0);

    let store = SqliteStore::open(db).unwrap();
    store.enqueue(&[envelope("o2", 4)]).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "4"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported up to 3"), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 1);
}

/// A writer that takes `lines` lines and then fails, as a consumer's pipe that broke.
struct CutAfter {
    lines: usize,
    out: Vec<u8>,
}

impl std::io::Write for CutAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.iter().filter(|&&b| b == b'\n').count() >= self.lines {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "reader gone",
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An export whose output was cut (the consumer's pipe broke after a line) fails, and hands
/// out nothing it did not finish: `ack` of the ids it did not write stays refused, so a
/// consumer acknowledging "the batch" after a failed export cannot lose the rest.
#[tokio::test]
async fn an_export_cut_short_lets_no_unwritten_id_be_acknowledged() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let batch: Vec<Envelope> = (1..=3).map(|n| envelope("o1", n)).collect();
    store.enqueue(&batch).await.unwrap();
    let mut cut = CutAfter {
        lines: 1,
        out: Vec::new(),
    };
    let exported = tcrelay::ops::queue_export(&store, false, None, &mut cut).await;
    assert!(exported.is_err(), "a cut output is a failed export");
    assert_eq!(String::from_utf8_lossy(&cut.out).lines().count(), 1);
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "3"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "queue", "ack", "2"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stats(db)["pending"], 3);
}

#[tokio::test]
async fn queue_export_ack_and_stats() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    // Two batches, interleaving objects, so order is not just by id string.
    let first: Vec<Envelope> = (1..=3)
        .map(|n| envelope(&format!("o{}", 4 - n), n))
        .collect();
    let second: Vec<Envelope> = (4..=5).map(|n| envelope("o1", n)).collect();
    store.enqueue(&first).await.unwrap();
    store.enqueue(&second).await.unwrap();
    let sent: Vec<Envelope> = first.into_iter().chain(second).collect();

    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Envelope> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one envelope"))
        .collect();
    assert_eq!(lines, sent, "export is every envelope, in queue order");
    // Decimals stay as written.
    assert!(stdout(&o).contains(r#""price":"1.10""#));

    assert_eq!(stats(db)["pending"], 5);
    let o = tcrelay(&["--db", db, "queue", "ack", "--up-to", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("acknowledged 2"), "{}", stdout(&o));
    let o = tcrelay(&["--db", db, "queue", "ack", "4"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("acknowledged 1"), "{}", stdout(&o));
    let s = stats(db);
    assert_eq!(
        (s["pending"].as_u64(), s["acked"].as_u64()),
        (Some(2), Some(3))
    );

    // Export shows the pending ones only, still in order; --all shows every one.
    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    let ids: Vec<u64> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<Envelope>(l)
                .unwrap()
                .version
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![3, 5]);
    let o = tcrelay(&["--db", db, "queue", "export", "--all"], &[]);
    assert_eq!(stdout(&o).lines().count(), 5);

    let o = tcrelay(&["--db", db, "queue", "list", "--all"], &[]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).lines().count(),
        6,
        "header and five rows: {}",
        stdout(&o)
    );

    // An id not on the queue (a typo for 5) fails and is named; the known ones are acknowledged,
    // an already acknowledged one again is no error.
    let o = tcrelay(&["--db", db, "queue", "ack", "4", "55", "3"], &[]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("acknowledged 1"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("so not acknowledged: 55"),
        "{}",
        stderr(&o)
    );
    let s = stats(db);
    assert_eq!(
        (s["pending"].as_u64(), s["acked"].as_u64()),
        (Some(1), Some(4))
    );

    // Acknowledging nothing is refused, with a hint.
    let o = tcrelay(&["--db", db, "queue", "ack"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--up-to"), "{}", stderr(&o));

    let o = tcrelay(&["--db", db, "quarantine", "export"], &[]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn cursor_set_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let db = path.to_str().unwrap();
    // `set` may create the database (a backfill start before the first `serve`).
    let days_ago = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    let at = &days_ago(20);
    let later = &days_ago(10);
    let o = tcrelay(&["--db", db, "cursor", "set", "orders", at], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "cursor", "show", "shipments"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("never polled"), "{}", stdout(&o));
    let o = tcrelay(&["--db", db, "cursor", "show", "orders"], &[]);
    assert!(stdout(&o).contains(at), "{}", stdout(&o));
    let o = tcrelay(&["--db", db, "cursor", "set", "orders", later], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "cursor", "show"], &[]);
    let out = stdout(&o);
    assert!(
        out.contains(later.as_str()) && !out.contains(at.as_str()),
        "{out}"
    );
    assert!(out.contains("shipments"), "every stream is listed: {out}");

    let o = tcrelay(&["--db", db, "cursor", "set", "invoices", at], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown stream \"invoices\""),
        "{}",
        stderr(&o)
    );
    let o = tcrelay(&["--db", db, "cursor", "set", "orders", "yesterday"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ISO 8601"), "{}", stderr(&o));
    // A value without an offset is accepted (read as UTC): the message must not demand one.
    assert!(!stderr(&o).contains("with offset"), "{}", stderr(&o));
    // A mistyped year would silence the stream until then: refused, the cursor kept.
    let o = tcrelay(
        &[
            "--db",
            db,
            "cursor",
            "set",
            "orders",
            "2205-01-01T00:00:00.000Z",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("in the future"), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "cursor", "show", "orders"], &[]);
    assert!(!stdout(&o).contains("2205"), "{}", stdout(&o));
}

#[test]
fn with_the_aws_backend_local_commands_are_refused_and_cursor_commands_need_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let db = path.to_str().unwrap();
    let recent = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    // `serve`'s environment, so a replay gets as far as the backend check.
    let env = [("TCRELAY_WEBHOOK_BASIC", "tc:pw")];
    let run = |args: &[&str]| {
        tcrelay(
            &[&["--db", db, "--backend", "aws"][..], args].concat(),
            &env,
        )
    };
    for args in [
        &["quarantine", "list"][..],
        &["quarantine", "export"],
        &["quarantine", "drop", "1"],
        &["quarantine", "replay", "1"],
        &["quarantine", "replay", "--all"],
        &["queue", "stats"],
        &["trace", "o-1"],
    ] {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert!(
            stderr(&o).contains("commands read the local SQLite database"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // The cursors live in the dedupe table: without it, named.
    for args in [
        &["cursor", "show"][..],
        &["cursor", "show", "orders"],
        &["cursor", "set", "orders", &recent],
    ] {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert!(
            stderr(&o).contains("TCRELAY_DEDUPE_TABLE is required with --backend aws"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // A value `cursor set` refuses is refused first, whatever the backend.
    let o = run(&["cursor", "set", "orders", "2205-01-01T00:00:00.000Z"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("in the future"), "{}", stderr(&o));
    assert!(!path.exists(), "no local database was created");
}

#[test]
fn bad_flags_and_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let cred = ("TCRELAY_WEBHOOK_BASIC", "tc:pw");

    let o = tcrelay(&["--db", db, "serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("TCRELAY_WEBHOOK_BASIC"),
        "{}",
        stderr(&o)
    );

    let o = tcrelay(
        &["--db", db, "serve", "--listen", "127.0.0.1:0"],
        &[cred, ("TCRELAY_POLL_STREAMS", "orders")],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TCRELAY_POLL_START"), "{}", stderr(&o));

    // Streams to poll but no login to poll with: refused at start, not a silent "polling off".
    let o = tcrelay(
        &["--db", db, "serve", "--listen", "127.0.0.1:0"],
        &[
            cred,
            ("TCRELAY_POLL_STREAMS", "orders"),
            ("TCRELAY_POLL_START", "2025-01-01T00:00:00.000Z"),
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no Tradecloud login"), "{}", stderr(&o));

    let o = tcrelay(
        &["--db", db, "serve", "--listen", "127.0.0.1:0"],
        &[cred, ("TCRELAY_DEDUPE_TTL_DAYS", "0")],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("TCRELAY_DEDUPE_TTL_DAYS"),
        "{}",
        stderr(&o)
    );

    let o = tcrelay(
        &[
            "--db",
            db,
            "--backend",
            "aws",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        &[cred],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TCRELAY_QUEUE_URL"), "{}", stderr(&o));

    // An address another process holds: named, not a panic or a silent exit.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = tcrelay(&["--db", db, "serve", "--listen", &addr], &[cred]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("give another --listen"),
        "{}",
        stderr(&o)
    );

    let o = tcrelay(&["serve", "--poll-interval", "soon"], &[cred]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--poll-interval"), "{}", stderr(&o));

    let o = tcrelay(&["serve", "--listen", "localhost"], &[cred]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--listen"), "{}", stderr(&o));

    let o = tcrelay(&["--backend", "azure", "queue", "stats"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--backend"), "{}", stderr(&o));
}

/// A unit's environment file that leaves `TCRELAY_DB` or `TCRELAY_LOG_FORMAT` blank counts
/// them as unset, as every other setting (docs/config.md): clap refused them as a missing value
/// of `--db` / `--log-format`, flags the operator never gave. A wrong `TCRELAY_LOG_FORMAT` is
/// refused naming the variable, not only the flag.
#[test]
fn blank_flag_variables_count_as_unset_and_a_wrong_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path().join("tcrelay.db")).unwrap());
    let o = common::command(&[("TCRELAY_DB", ""), ("TCRELAY_LOG_FORMAT", " ")])
        .current_dir(dir.path())
        .args(["queue", "stats", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(stats["pending"], 0, "the default ./tcrelay.db was read");

    let db = dir.path().join("tcrelay.db");
    let db = db.to_str().unwrap();
    let o = tcrelay(
        &["--db", db, "queue", "stats"],
        &[("TCRELAY_LOG_FORMAT", "xml")],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TCRELAY_LOG_FORMAT"), "{}", stderr(&o));
    for format in ["json", "text"] {
        let o = tcrelay(
            &["--db", db, "queue", "stats"],
            &[("TCRELAY_LOG_FORMAT", format)],
        );
        assert!(o.status.success(), "{format}: {}", stderr(&o));
    }
    let o = tcrelay(&["--db", db, "--log-format", "xml", "queue", "stats"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--log-format"), "{}", stderr(&o));
}

#[test]
fn read_only_commands_refuse_a_missing_database_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mistyped.db");
    let db = path.to_str().unwrap();
    for args in [
        &["queue", "list"][..],
        &["queue", "list", "--all"],
        &["queue", "export"],
        &["queue", "stats"],
        &["queue", "stats", "--json"],
        &["queue", "ack", "--up-to", "3"],
        &["quarantine", "list"],
        &["quarantine", "export"],
        &["cursor", "show"],
        &["cursor", "show", "orders"],
    ] {
        let o = tcrelay(&[&["--db", db][..], args].concat(), &[]);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
        assert!(
            stderr(&o).contains(&format!("no database at {db}")),
            "{args:?}: {}",
            stderr(&o)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

#[tokio::test]
async fn operator_commands_are_quiet_and_a_closed_pipe_ends_them_silently() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let db = path.to_str().unwrap();
    let store = SqliteStore::open(&path).unwrap();
    // Far more than a pipe buffer (64 KiB), so the command is still writing when the reader
    // goes away.
    let many: Vec<Envelope> = (1..=3000).map(|n| envelope(&format!("o{n}"), n)).collect();
    store.enqueue(&many).await.unwrap();
    drop(store);

    // Quiet: no log lines (the store's INFO "SQLite store open" among them) on a good run.
    for args in [
        &["queue", "stats"][..],
        &["queue", "list", "--limit", "3000"],
    ] {
        let o = tcrelay(&[&["--db", db][..], args].concat(), &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?} wrote to stderr");
        assert!(!stdout(&o).contains("INFO"), "{}", stdout(&o));
    }

    // `tcrelay queue export | head -1`, and the same for list.
    for args in [
        &["queue", "export"][..],
        &["queue", "list", "--limit", "3000"],
    ] {
        let mut child = common::command(&[])
            .args([&["--db", db][..], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcrelay");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        // The reader is gone (stdout dropped above): the next writes fail with EPIPE.
        let o = child.wait_with_output().unwrap();
        assert_eq!(stderr(&o), "", "{args:?} complained about the closed pipe");
        assert!(o.status.success(), "{args:?}: {}", o.status);
    }
}

/// The tables and `user_version` of a SQLite file, and its bytes, to show nothing changed.
fn snapshot(path: &std::path::Path) -> (Vec<String>, i64, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    (tables, version, bytes)
}

const READING: [&[&str]; 7] = [
    &["queue", "list"],
    &["queue", "stats"],
    &["quarantine", "list"],
    &["quarantine", "export"],
    &["trace", "o-1"],
    &["cursor", "show"],
    &["cursor", "show", "orders"],
];

/// Another application's SQLite file in `dir` (a table `accounts` with a row): a mistyped `--db`.
fn other_applications_database(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id INTEGER); INSERT INTO accounts VALUES (1);")
        .unwrap();
    path
}

#[test]
fn commands_refuse_a_file_that_is_not_a_tcrelay_database_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = other_applications_database(&dir);
    let db = path.to_str().unwrap();
    let before = snapshot(&path);
    let recent = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    // `queue export` writes the highest id it handed out.
    let writing: [&[&str]; 5] = [
        &["queue", "export"],
        &["queue", "ack", "--up-to", "1"],
        &["quarantine", "drop", "1"],
        &["quarantine", "replay", "1"],
        &["cursor", "set", "orders", &recent],
    ];
    let env = [("TCRELAY_WEBHOOK_BASIC", "tc:pw")];
    for args in READING.iter().chain(&writing) {
        let o = tcrelay(&[&["--db", db][..], args].concat(), &env);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{db} is not a tcrelay database")) && err.contains("accounts"),
            "{args:?}: {err}"
        );
        assert_eq!(snapshot(&path), before, "{args:?} changed the file");
    }

    // An empty file: nothing to read, and reading it does not make it a database.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let db = empty.to_str().unwrap();
    for args in READING {
        let o = tcrelay(&[&["--db", db][..], args].concat(), &[]);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert!(
            stderr(&o).contains("is not a tcrelay database"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "{args:?}");
    }
    // A write may still prepare it, as it may create a missing file.
    let o = tcrelay(&["--db", db, "cursor", "set", "orders", &recent], &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A directory is named as one, not as "no database".
    let db = dir.path().to_str().unwrap();
    let o = tcrelay(&["--db", db, "queue", "stats"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("{db} is a directory")),
        "{}",
        stderr(&o)
    );
}

/// `serve` on a `--db` that is another application's SQLite file (a mistyped path) refuses it
/// and changes nothing, as the operator commands do: it used to switch the file to WAL, add
/// its tables and schema version, and vacuum it, taking the other application's database over.
/// An empty file and a missing one are still prepared, as `cursor set` prepares them.
#[test]
fn serve_refuses_another_applications_database_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = other_applications_database(&dir);
    let db = path.to_str().unwrap();
    let before = snapshot(&path);
    let env = [("TCRELAY_WEBHOOK_BASIC", "tc:pw")];
    let exited =
        common::serve(db, &env).expect_err("serve started on another application's database");
    assert!(!exited.status.success());
    assert!(
        exited
            .stderr
            .contains(&format!("{db} is not a tcrelay database"))
            && exited.stderr.contains("accounts"),
        "{}",
        exited.stderr
    );
    assert_eq!(snapshot(&path), before, "serve changed the file");

    // An empty file and a missing one: prepared, and served.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for path in [empty, dir.path().join("new.db")] {
        let serve = common::serve(path.to_str().unwrap(), &env).unwrap();
        drop(serve);
        assert!(
            snapshot(&path).0.contains(&"outbound".to_owned()),
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn reading_commands_leave_an_older_schema_unmigrated_and_say_how_to_migrate() {
    let (_dir, db, store) = queue_db();
    store.enqueue(&[envelope("o-1", 1)]).await.unwrap();
    drop(store);
    let path = std::path::PathBuf::from(&db);
    let older = tcrelay_sqlite::SCHEMA_VERSION - 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {older}"))
        .unwrap();
    let before = snapshot(&path);
    for args in READING {
        let o = tcrelay(&[&["--db", db.as_str()][..], args].concat(), &[]);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("schema version {older}"))
                && err.contains("run `tcrelay serve` of this build once to migrate it"),
            "{args:?}: {err}"
        );
        assert_eq!(snapshot(&path).1, before.1, "{args:?} migrated the file");
    }
    // A newer one is refused too, naming the version.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let o = tcrelay(&["--db", db.as_str(), "queue", "stats"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("999"), "{}", stderr(&o));
    // On the current schema they read as before.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "PRAGMA user_version = {}",
            tcrelay_sqlite::SCHEMA_VERSION
        ))
        .unwrap();
    for args in READING {
        let o = tcrelay(&[&["--db", db.as_str()][..], args].concat(), &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stats(&db)["pending"], 1);
}

/// `queue list` of object ids longer than its old fixed column (the demo's are 40 and more
/// characters) pushed the event and time columns of those rows right, out of line with the
/// header and the other rows. Each column is as wide as its widest entry.
#[tokio::test]
async fn queue_list_keeps_its_columns_in_line_for_long_object_ids() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let long = format!("order-{}", "0123456789".repeat(5));
    let mut batch = vec![envelope("o-1", 1), envelope(&long, 2), envelope("o-3", 3)];
    for (e, event) in batch.iter_mut().zip(["Issued", "Accepted", "Changed"]) {
        e.event_name = Some(format!("OrderBy{event}"));
    }
    store.enqueue(&batch).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "list"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[2].contains(&long), "{out}");
    let event_at = lines[0]
        .find("event")
        .expect("header names the event column");
    let enqueued_at = lines[0]
        .find("enqueued")
        .expect("header names the time column");
    for line in &lines[1..] {
        assert_eq!(line.find("OrderBy"), Some(event_at), "event column:\n{out}");
        assert_eq!(line.find("20"), Some(enqueued_at), "time column:\n{out}");
        // Columns stay apart: at least two spaces before each.
        assert_eq!(&line[event_at - 2..event_at], "  ", "{out}");
    }
}

#[tokio::test]
async fn queue_list_says_how_many_messages_its_limit_left_out() {
    let (_dir, db, store) = queue_db();
    let db = db.as_str();
    let batch: Vec<Envelope> = (1..=5).map(|n| envelope(&format!("o{n}"), n)).collect();
    store.enqueue(&batch).await.unwrap();
    let o = tcrelay(&["--db", db, "queue", "list", "--limit", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3, "header and two rows");
    let err = stderr(&o);
    assert!(
        err.contains("3 more message(s) not shown")
            && err.contains("--limit")
            && err.contains("queue export"),
        "{err}"
    );
    let o = tcrelay(
        &["--db", db, "queue", "list", "--limit", "2", "--json"],
        &[],
    );
    assert_eq!(stdout(&o).lines().count(), 2);
    assert!(stderr(&o).contains("3 more"), "{}", stderr(&o));
    // All shown: nothing said.
    let o = tcrelay(&["--db", db, "queue", "list", "--limit", "5"], &[]);
    assert_eq!(stderr(&o), "");
    store.record_exported(4).await.unwrap();
    assert_eq!(
        store.ack_up_to(4).await.unwrap(),
        tcrelay_sqlite::AckedUpTo::Acked(4)
    );
    let o = tcrelay(&["--db", db, "queue", "list", "--all", "--limit", "1"], &[]);
    assert!(
        stderr(&o).contains("4 more") && stderr(&o).contains("queue export --all"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn trace_refuses_an_empty_object_id() {
    use tcrelay_core::ports::{Quarantine as _, QuarantinedRequest};
    let (_dir, db, store) = queue_db();
    store
        .keep(&QuarantinedRequest {
            received_at: chrono::Utc::now(),
            method: "POST".to_owned(),
            uri: "/webhook/orders".to_owned(),
            content_type: None,
            headers: Vec::new(),
            body: b"{}".to_vec(),
            reason: "malformed".to_owned(),
        })
        .await
        .unwrap();
    for id in ["", "  "] {
        let o = tcrelay(&["--db", db.as_str(), "trace", id, "--json"], &[]);
        assert!(!o.status.success(), "{id:?}: {}", stdout(&o));
        assert_eq!(stdout(&o), "");
        assert!(stderr(&o).contains("object id is empty"), "{}", stderr(&o));
    }
}

#[test]
fn cursor_set_refuses_a_time_before_the_dedupe_records_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let db = path.to_str().unwrap();
    // A typo for 2025: everything since would be sent again, most of it without a record.
    let o = tcrelay(
        &[
            "--db",
            db,
            "cursor",
            "set",
            "orders",
            "0025-01-01T00:00:00Z",
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("TCRELAY_DEDUPE_TTL_DAYS: 30 days")
            && err.contains("duplicates")
            && err.contains("--force"),
        "{err}"
    );
    assert!(!path.exists(), "a refused value creates no database");
    let forty_days_ago = (chrono::Utc::now() - chrono::Duration::days(40))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let o = tcrelay(
        &["--db", db, "cursor", "set", "orders", &forty_days_ago],
        &[],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    // Within a longer lifetime of the records it is no backfill past them.
    let o = tcrelay(
        &["--db", db, "cursor", "set", "orders", &forty_days_ago],
        &[("TCRELAY_DEDUPE_TTL_DAYS", "60")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay(
        &[
            "--db",
            db,
            "cursor",
            "set",
            "orders",
            "2020-01-01T00:00:00.000Z",
            "--force",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "cursor", "show", "orders"], &[]);
    assert!(
        stdout(&o).contains("2020-01-01T00:00:00.000Z"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn serve_refuses_a_connection_cap_out_of_range_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cap.db");
    // Through `common::serve`: a `serve` that announced itself (and then lived on with its
    // server task dead, as before) fails the test instead of hanging it.
    let exited = common::serve(
        db.to_str().unwrap(),
        &[
            ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
            ("TCRELAY_MAX_CONNECTIONS", "9999999999999999999"),
        ],
    )
    .expect_err("serve started with a cap it cannot serve");
    assert!(!exited.status.success());
    assert!(
        exited.stderr.contains("TCRELAY_MAX_CONNECTIONS")
            && exited.stderr.contains("between 1 and"),
        "{}",
        exited.stderr
    );
}

#[test]
fn a_taken_admin_address_stops_serve_before_it_announces_or_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("admin.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let o = tcrelay(
        &[
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            &admin,
        ],
        &[("TCRELAY_WEBHOOK_BASIC", "tc:pw")],
    );
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "", "nothing announced");
    assert!(
        stderr(&o).contains(&format!("cannot listen on {admin}")),
        "{}",
        stderr(&o)
    );
    // Which of the two addresses, by its flag.
    assert!(stderr(&o).contains("--admin-listen"), "{}", stderr(&o));
    // The OS's reason once, not again as a cause.
    assert_eq!(stderr(&o).matches("os error").count(), 1, "{}", stderr(&o));
}

/// A stdout whose reader is already gone: every write the command makes fails with EPIPE, as
/// under `tcrelay ... | head -1` once `head` has its line.
fn reader_gone() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

/// Runs the built `tcrelay` with `args`, its stdout a pipe nobody reads ([`reader_gone`]).
fn tcrelay_reader_gone(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::command(env)
        .args(args)
        .stdout(reader_gone())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run tcrelay")
}

/// `tcrelay doctor | head -1`, `tcrelay quarantine drop 1 2 3 | head -1`: a reader that goes
/// away after the first line must neither cut a command's work short (the other ids left
/// undone) nor turn its failure (a missing id, a failed check) into exit code 0, nor panic.
/// Before, the first write's EPIPE ended every command at once with exit code 0.
#[tokio::test]
async fn a_reader_that_goes_away_cuts_no_work_short_and_hides_no_failure() {
    use tcrelay_core::ports::Quarantine as _;

    let (dir, db, store) = queue_db();
    let db = db.as_str();
    store
        .enqueue(&[envelope("o-1", 1), envelope("o-2", 2)])
        .await
        .unwrap();
    for n in 0..3 {
        store
            .keep(&malformed_post(format!("{{\"broken\": {n}").into_bytes()))
            .await
            .unwrap();
    }
    let kept = || {
        let o = tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().count()
    };
    assert_eq!(kept(), 3);

    // Every id dropped, not only the first whose line found the reader gone.
    let o = tcrelay_reader_gone(&["--db", db, "quarantine", "drop", "1", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kept(), 1, "drop stopped at the first id");
    // A mistyped id is still a failure.
    let o = tcrelay_reader_gone(&["--db", db, "quarantine", "drop", "3", "99"], &[]);
    assert!(!o.status.success(), "drop of a missing id succeeded");
    assert!(stderr(&o).contains("99"), "{}", stderr(&o));
    assert_eq!(kept(), 0);

    let o = tcrelay(&["--db", db, "queue", "export"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay_reader_gone(&["--db", db, "queue", "ack", "1", "99"], &[]);
    assert!(!o.status.success(), "ack of a missing id succeeded");
    assert!(stderr(&o).contains("99"), "{}", stderr(&o));
    assert_eq!(stats(db)["acked"], 1);

    // A replay that keeps the request: exit code 1, as with a reader.
    store
        .keep(&malformed_post(b"{\"broken\": ".to_vec()))
        .await
        .unwrap();
    let o = tcrelay_reader_gone(
        &["--db", db, "quarantine", "replay", "--all"],
        &[("TCRELAY_WEBHOOK_BASIC", "tc:pw")],
    );
    assert!(
        !o.status.success(),
        "a replay that kept its entry succeeded"
    );
    assert_eq!(kept(), 1);

    // A failed check after the first line (`doctor | head -1`): still a failure.
    let foreign = other_applications_database(&dir);
    let o = tcrelay_reader_gone(&["--db", foreign.to_str().unwrap(), "doctor"], &[]);
    assert!(!o.status.success(), "doctor's FAIL became exit code 0");

    // No panic (clap_complete's writer panics on a write error).
    let o = tcrelay_reader_gone(&["completions", "bash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// The docs' `--db /var/lib/tcrelay/tcrelay.db` on a machine where the folder was never made:
/// `serve` and `cursor set` (the commands that create the file) said "unable to open database
/// file" three times and the path four, but not that the folder is missing, nor what to do.
#[test]
fn a_database_in_a_missing_folder_is_named_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("no-such-folder");
    let path = folder.join("tcrelay.db");
    let db = path.to_str().unwrap();
    let recent = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    for (args, env) in [
        (
            vec!["--db", db, "serve", "--listen", "127.0.0.1:0"],
            vec![("TCRELAY_WEBHOOK_BASIC", "tc:pw")],
        ),
        (vec!["--db", db, "cursor", "set", "orders", &recent], vec![]),
    ] {
        let o = tcrelay(&args, &env);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{args:?}: no error line: {err}"));
        assert!(
            line.contains(&format!("{} does not exist", folder.display())),
            "{args:?}: {line}"
        );
        assert!(line.contains("--db"), "{args:?}: {line}");
        assert_eq!(line.matches(db).count(), 1, "{args:?}: {line}");
        assert!(!folder.exists(), "{args:?} created the folder");
    }
}

/// A file that is not SQLite at all (a mistyped `--db` onto a log file, a torn copy): the
/// error said SQLite's reason three times ("file is not a database: file is not a database:
/// Error code 26: file is not a database"), printing the cause chain of an error whose message
/// already quoted it.
#[test]
fn a_file_that_is_not_sqlite_is_refused_in_one_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let db = path.to_str().unwrap();
    for args in [&["queue", "stats"][..], &["queue", "ack", "1"]] {
        let o = tcrelay(&[&["--db", db][..], args].concat(), &[]);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("not a database").count(), 1, "{args:?}: {err}");
        assert!(err.contains(db), "{args:?}: {err}");
    }
}

/// Ctrl-C stops `serve` gracefully: it waits for the requests in flight, up to their budget
/// (25 s by default) and a send that outlived one (30 s more). An operator at a terminal who
/// presses Ctrl-C again wants out now, as with most servers; before, the second SIGINT was
/// swallowed by the handler of the first and the wait went on. (A supervisor's SIGTERM keeps
/// the graceful wait: only a second SIGINT cuts it short.)
#[tokio::test]
async fn a_second_ctrl_c_stops_serve_without_waiting_for_requests_in_flight() {
    use tokio::io::AsyncWriteExt as _;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut serve = common::serve(db.to_str().unwrap(), &[("TCRELAY_WEBHOOK_BASIC", "tc:pw")])
        .expect("serve starts");
    // A request whose body never arrives: in flight until its 25 s budget runs out.
    let mut stalled = tokio::net::TcpStream::connect(&serve.addr).await.unwrap();
    stalled
        .write_all(
            b"POST /webhook/orders HTTP/1.1\r\nhost: x\r\nauthorization: Basic dGM6cHc=\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    serve.signal("INT");
    // The first waits for the request in flight.
    assert!(
        serve
            .wait_for_exit(std::time::Duration::from_secs(1))
            .is_none(),
        "the first Ctrl-C did not wait for the request in flight"
    );
    serve.signal("INT");
    let status = serve
        .wait_for_exit(std::time::Duration::from_secs(5))
        .expect("a second Ctrl-C did not stop serve");
    assert!(!status.success(), "cut short, it exits non-zero: {status}");
    drop(stalled);
}

/// A POST to the orders route that the webhook refused as malformed JSON, as the quarantine
/// keeps it.
fn malformed_post(body: Vec<u8>) -> tcrelay_core::ports::QuarantinedRequest {
    tcrelay_core::ports::QuarantinedRequest {
        received_at: chrono::Utc::now(),
        method: "POST".to_owned(),
        uri: "/webhook/orders".to_owned(),
        content_type: Some("application/json".to_owned()),
        headers: Vec::new(),
        body,
        reason: "malformed JSON".to_owned(),
    }
}

/// A claim that expires while its request still runs can be taken over by Tradecloud's retry,
/// and both enqueue: the webhook Lambda refuses such an expiry at start, and so must `serve`
/// and `quarantine replay`, which relay through the same router under the same budget.
#[tokio::test]
async fn serve_and_replay_refuse_a_claim_expiry_within_the_request_budget_naming_both() {
    use tcrelay_core::ports::Quarantine as _;
    let (dir, db, store) = queue_db();
    store.keep(&malformed_post(b"{".to_vec())).await.unwrap();
    drop(store);
    let unsafe_env = [
        ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
        // 10 s, under the default budget of 25 s.
        ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "10"),
    ];
    let named = |text: &str| {
        text.contains("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS")
            && text.contains("TCRELAY_REQUEST_BUDGET_MS")
    };
    let exited =
        common::serve(&db, &unsafe_env).expect_err("serve started with a claim expiry of 10 s");
    assert!(!exited.status.success());
    assert!(named(&exited.stderr), "{}", exited.stderr);
    let o = tcrelay(&["--db", &db, "quarantine", "replay", "--all"], &unsafe_env);
    assert!(!o.status.success());
    assert!(named(&stderr(&o)), "{}", stderr(&o));
    // Nothing replayed: the request is still kept.
    let o = tcrelay(&["--db", &db, "quarantine", "list", "--json"], &[]);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));

    // A budget under the expiry is served.
    let mut safe_env = unsafe_env.to_vec();
    safe_env.push(("TCRELAY_REQUEST_BUDGET_MS", "9000"));
    let fresh = dir.path().join("fresh.db");
    let serve = common::serve(fresh.to_str().unwrap(), &safe_env).expect("serve starts");
    drop(serve);
}

/// An operator's `sqlite3` shell left in a transaction (or another process writing for long)
/// holds the database's write lock: the commands that write, and `serve`, must say what to do,
/// not only SQLite's "database is locked".
#[test]
fn a_database_locked_by_another_process_is_named_with_what_to_do() {
    let (_dir, db, store) = queue_db();
    drop(store);
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let o = tcrelay(&["--db", &db, "queue", "ack", "--up-to", "1"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("database is locked"), "{err}");
    assert!(
        err.contains("another process") && err.contains("sqlite3"),
        "no hint of what holds the lock: {err}"
    );
    let exited = common::serve(&db, &[("TCRELAY_WEBHOOK_BASIC", "tc:pw")])
        .expect_err("serve started on a locked database");
    assert!(
        exited.stderr.contains("another process") && exited.stderr.contains("sqlite3"),
        "{}",
        exited.stderr
    );
    holder.execute_batch("ROLLBACK").unwrap();
}

/// `trace` of an id the database knows nothing of (a mistyped id, or one whose records have
/// expired) says so and exits 1, as a lookup that finds nothing should; one it knows exits 0.
#[tokio::test]
async fn trace_of_an_unknown_id_says_nothing_was_found_and_exits_1() {
    let (_dir, db, store) = queue_db();
    store.enqueue(&[envelope("o-known", 1)]).await.unwrap();
    for json in [false, true] {
        let mut args = vec!["--db", db.as_str(), "trace", "o-unknown"];
        if json {
            args.push("--json");
        }
        let o = tcrelay(&args, &[]);
        assert_eq!(o.status.code(), Some(1), "{json}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("nothing") && stderr(&o).contains("o-unknown"),
            "{}",
            stderr(&o)
        );
        args[3] = "o-known";
        let o = tcrelay(&args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let queued = if json {
            let trace: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
            trace["queue"].as_array().unwrap().len()
        } else {
            usize::from(stdout(&o).contains("queue messages: 1"))
        };
        assert_eq!(queued, 1, "{}", stdout(&o));
    }
}

/// A port of loopback nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `--backend aws` on a workstation without a region (the SDK then asks EC2's instance
/// metadata, which is not there) against a DynamoDB it cannot reach: the command says so in
/// its one `error:` line, as every command does. Before, the SDK's WARNs (each a `Debug` dump
/// of the metadata service's failed answer) and the adapter's WARN of the very error the
/// command then printed came first.
#[test]
fn aws_commands_print_their_error_once_without_the_sdks_dumps() {
    let imds = format!("http://127.0.0.1:{}", closed_port());
    let dynamodb = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
        ("HOME", "/nonexistent"),
        ("TCRELAY_AWS_ENDPOINT_URL", dynamodb.as_str()),
        ("TCRELAY_DEDUPE_TABLE", "tcrelay-dedupe"),
    ];
    let o = tcrelay(&["--backend", "aws", "cursor", "show", "orders"], &env);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("Connection refused"),
        "{err}"
    );
}

/// `queue ack` with neither `--up-to` nor an id, or with both, is a wrong command line: exit
/// code 2 and clap's usage, as the exit code table says and as `quarantine drop` without ids
/// answers; it was exit code 1, which the table keeps for work left undone, so a consumer's
/// script could not tell its own mistake from a message not acknowledged.
#[tokio::test]
async fn queue_ack_without_ids_or_with_both_forms_is_a_usage_error() {
    let (_dir, db, store) = queue_db();
    store
        .enqueue(&[envelope("o-1", 1), envelope("o-2", 2)])
        .await
        .unwrap();
    for args in [
        &["queue", "ack"][..],
        &["queue", "ack", "--up-to", "2", "1"],
    ] {
        let o = tcrelay(&[&["--db", db.as_str()][..], args].concat(), &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Usage:"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stats(&db)["acked"], 0, "nothing acknowledged");
}

/// `serve --backend aws` where no AWS region is configured (no `AWS_REGION`, no profile's
/// region, no instance metadata: a VM outside EC2) stops at start-up naming what to set. It
/// used to announce itself and then answer every webhook 503 ("Missing Region" in a WARN), a
/// relay that looks up but relays nothing.
#[test]
fn serve_on_aws_without_a_region_stops_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let exited = common::serve_with(
        &["--backend", "aws"],
        db.to_str().unwrap(),
        &[
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
            ("HOME", "/nonexistent"),
            ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
            (
                "TCRELAY_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/erp",
            ),
            (
                "TCRELAY_QUARANTINE_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/quarantine",
            ),
            ("TCRELAY_DEDUPE_TABLE", "tcrelay-dedupe"),
            ("TCRELAY_CLAIM_CHECK_BUCKET", "tcrelay-claims"),
        ],
        "0",
    )
    .expect_err("serve started without an AWS region");
    assert!(!exited.status.success());
    assert!(exited.stderr.contains("AWS_REGION"), "{}", exited.stderr);
}
