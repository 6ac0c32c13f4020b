//! The command line as an operator uses it: the built binary on a real database file.

mod common;

use std::process::Output;

use tcrelay_core::envelope::{ENVELOPE_SCHEMA, Envelope, Source};
use tcrelay_core::ports::EventSink;
use tcrelay_sqlite::SqliteStore;
use tradecloud_model::{Format, ObjectKind};

fn tcrelay(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::command(env)
        .args(args)
        .output()
        .expect("run tcrelay")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

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
        payload: serde_json::json!({"id": id, "version": n, "price": "1.10"}),
    }
}

fn stats(db: &str) -> serde_json::Value {
    let o = tcrelay(&["--db", db, "queue", "stats", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).expect("stats JSON")
}

#[tokio::test]
async fn queue_export_ack_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let db = path.to_str().unwrap();
    let store = SqliteStore::open(&path).unwrap();
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
    let o = tcrelay(&["--db", db, "cursor", "show", "orders"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("never polled"), "{}", stdout(&o));

    let at = "2025-02-03T04:05:06.789Z";
    let o = tcrelay(&["--db", db, "cursor", "set", "orders", at], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tcrelay(&["--db", db, "cursor", "show", "orders"], &[]);
    assert!(stdout(&o).contains(at), "{}", stdout(&o));
    let o = tcrelay(
        &[
            "--db",
            db,
            "cursor",
            "set",
            "orders",
            "2025-03-01T00:00:00.000Z",
        ],
        &[],
    );
    assert!(o.status.success());
    let o = tcrelay(&["--db", db, "cursor", "show"], &[]);
    let out = stdout(&o);
    assert!(
        out.contains("2025-03-01T00:00:00.000Z") && !out.contains(at),
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
