//! The operator commands as an operator runs them: requests quarantined
//! by a real `tcrelay serve`, then `quarantine replay|drop`, `trace`, `doctor`, the `--json`
//! listings and `completions`, each the built binary on the real database file.

use crate::common;

use std::process::Output;

const CREDENTIALS: &str = "tc:pw";
const ORDER_ID: &str = "f00dcafe-0500-4a00-8b00-000000000500-PO500";
/// The webhook credential of `serve`'s environment, which a replay requires.
const SERVE_ENV: (&str, &str) = ("TCRELAY_WEBHOOK_BASIC", CREDENTIALS);

use common::{stdout, tcrelay};

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Two requests quarantined by `serve`: a 500-line order over a 10-line cap (413), and an
/// order event without its order (400).
async fn quarantine_two(db: &str) {
    let serve = common::serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_BASIC", CREDENTIALS),
            ("TCRELAY_MAX_LINES", "10"),
        ],
    )
    .expect("tcrelay serve starts");
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/webhook/order-500-lines.json"
    ))
    .unwrap();
    let client = reqwest::Client::new();
    for (body, status) in [
        (body, 413),
        (br#"{"eventName": "OrderIssuedByBuyer"}"#.to_vec(), 400),
    ] {
        let response = common::post_order(&client, &serve.addr, CREDENTIALS, body)
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    serve.kill();
}

#[tokio::test]
async fn replay_relays_what_now_passes_and_keeps_the_rest_then_drop_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let db = path.to_str().unwrap();
    quarantine_two(db).await;
    let listed = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    let ids: Vec<i64> = listed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["uri"], "/webhook/orders");

    // Under the same cap it is refused again: kept, once, and the exit code says so.
    let o = tcrelay(
        &["--db", db, "quarantine", "replay", &ids[0].to_string()],
        &[SERVE_ENV, ("TCRELAY_MAX_LINES", "10")],
    );
    assert!(!o.status.success());
    assert!(stdout(&o).contains("413"), "{}", stdout(&o));
    assert!(stdout(&o).contains("kept"), "{}", stdout(&o));
    let still = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    assert_eq!(
        still, listed,
        "a failed replay changes nothing in the quarantine"
    );

    // With the default cap the order goes through; the body without an order stays.
    let o = tcrelay(
        &["--db", db, "quarantine", "replay", "--all", "--json"],
        &[SERVE_ENV],
    );
    assert!(!o.status.success(), "one of the two is still refused");
    let replayed: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(replayed[0]["id"], ids[0]);
    assert_eq!(replayed[0]["status"], 202);
    assert_eq!(replayed[0]["outcome"], "enqueued");
    assert_eq!(replayed[0]["removed"], true);
    assert_eq!(replayed[1]["status"], 400);
    assert_eq!(replayed[1]["removed"], false);
    assert!(replayed[1]["reason"].is_string(), "{replayed:?}");
    let left = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    assert_eq!(left, listed[1..], "only the refused one is left, as it was");

    // On the queue exactly once; replaying the same request again is a duplicate.
    let queued = json_lines(&tcrelay(&["--db", db, "queue", "list", "--json"], &[]));
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["objectId"], ORDER_ID);

    let trace = json_lines(&tcrelay(&["--db", db, "trace", ORDER_ID, "--json"], &[]));
    let trace = &trace[0];
    assert_eq!(trace["queue"].as_array().unwrap().len(), 1, "{trace}");
    assert_eq!(trace["queue"][0]["id"], queued[0]["id"]);
    let dedupe = trace["dedupe"].as_array().unwrap();
    assert!(!dedupe.is_empty(), "{trace}");
    assert!(
        dedupe
            .iter()
            .all(|d| d["live"] == true && d["key"].as_str().unwrap().contains(ORDER_ID)),
        "{trace}"
    );
    assert_eq!(trace["quarantine"].as_array().unwrap().len(), 0, "{trace}");
    let text = stdout(&tcrelay(&["--db", db, "trace", ORDER_ID], &[]));
    assert!(text.contains("queue messages: 1"), "{text}");
    // Another object's trace is empty, not this one's (and, finding nothing, exits 1).
    let o = tcrelay(&["--db", db, "trace", "PO-unknown", "--json"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let other: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(other["queue"].as_array().unwrap().len(), 0);
    assert_eq!(other["dedupe"].as_array().unwrap().len(), 0);

    let o = tcrelay(
        &["--db", db, "quarantine", "drop", &ids[1].to_string()],
        &[],
    );
    assert!(o.status.success());
    assert!(stdout(&o).contains(&format!("dropped {}", ids[1])));
    let o = tcrelay(
        &["--db", db, "quarantine", "drop", &ids[1].to_string()],
        &[],
    );
    assert!(
        !o.status.success(),
        "dropping what is not there is an error"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&ids[1].to_string()));
    assert!(json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[])).is_empty());
}

#[tokio::test]
async fn a_replay_that_cannot_pass_says_why_and_keeps_the_entry() {
    use tcrelay_core::ports::{Quarantine as _, QuarantinedRequest};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("why.db");
    let db = path.to_str().unwrap();
    // A body over the size limit is refused before it is read: kept without its body.
    let serve = common::serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_BASIC", CREDENTIALS),
            ("TCRELAY_MAX_BODY_BYTES", "1000"),
        ],
    )
    .expect("tcrelay serve starts");
    let response = common::post_order(
        &reqwest::Client::new(),
        &serve.addr,
        CREDENTIALS,
        vec![b' '; 5000],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 413);
    serve.kill();
    // A GET kept earlier; replayed with no Tradecloud login configured, the relay answers 503.
    let store = tcrelay_sqlite::SqliteStore::open(&path).unwrap();
    store
        .keep(&QuarantinedRequest {
            received_at: chrono::Utc::now(),
            method: "GET".to_owned(),
            uri: "/webhook/orders/o-1".to_owned(),
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            reason: "order o-1 not found".to_owned(),
        })
        .await
        .unwrap();
    drop(store);
    let listed = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    assert_eq!(listed.len(), 2, "{listed:?}");

    let o = tcrelay(
        &["--db", db, "quarantine", "replay", "--all", "--json"],
        &[SERVE_ENV],
    );
    assert!(!o.status.success(), "neither left the quarantine");
    let replayed: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    // Not sent through the relay as an empty body (refused as malformed, hiding why).
    assert_eq!(
        replayed[0]["status"],
        serde_json::Value::Null,
        "{replayed:?}"
    );
    assert_eq!(replayed[0]["outcome"], "not-replayed");
    let reason = replayed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("body was not kept") && reason.contains("larger than the limit"),
        "{reason}"
    );
    // A refusal the relay does not quarantine gives its problem's detail.
    assert_eq!(replayed[1]["status"], 503);
    let reason = replayed[1]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("TRADECLOUD_USERNAME"), "{replayed:?}");
    assert!(replayed.iter().all(|r| r["removed"] == false));
    let still = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    assert_eq!(still, listed, "both kept as they were");

    let text = stdout(&tcrelay(
        &["--db", db, "quarantine", "replay", "--all"],
        &[SERVE_ENV],
    ));
    assert!(
        text.contains("- not-replayed  kept: its body was not kept"),
        "{text}"
    );
    assert!(
        text.contains("503 unavailable  kept: GET webhooks need"),
        "{text}"
    );
}

#[test]
fn doctor_checks_the_file_and_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doctor.db");
    let db = path.to_str().unwrap();

    let o = tcrelay(&["--db", db, "doctor"], &[]);
    assert!(!o.status.success());
    assert!(stdout(&o).starts_with("FAIL  file"), "{}", stdout(&o));
    assert!(!path.exists(), "doctor creates nothing");

    std::fs::write(&path, "not a database").unwrap();
    let o = tcrelay(&["--db", db, "doctor"], &[]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("FAIL  schema"), "{}", stdout(&o));

    std::fs::remove_file(&path).unwrap();
    // `cursor set` prepares a database, as before a first `serve`.
    let set = tcrelay(
        &[
            "--db",
            db,
            "cursor",
            "set",
            "orders",
            "2025-01-01T00:00:00.000Z",
            "--force",
        ],
        &[],
    );
    assert!(set.status.success());
    let o = tcrelay(&["--db", db, "doctor"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert!(lines.iter().all(|l| l.starts_with("ok    ")), "{lines:?}");
    assert!(
        lines.contains(&format!(
            "ok    schema version {}",
            tcrelay_sqlite::SCHEMA_VERSION
        )),
        "{lines:?}"
    );

    let cursors = json_lines(&tcrelay(&["--db", db, "cursor", "show", "--json"], &[]));
    assert_eq!(cursors.len(), 3);
    assert_eq!(cursors[0]["stream"], "orders");
    assert_eq!(cursors[0]["value"], "2025-01-01T00:00:00.000Z");
    assert_eq!(cursors[1]["value"], serde_json::Value::Null);

    // A file of an older schema (a running older `serve` may use it): checked, not migrated,
    // or that `serve` could not start again.
    let older = tcrelay_sqlite::SCHEMA_VERSION - 1;
    let user_version = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    };
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {older}"))
        .unwrap();
    let o = tcrelay(&["--db", db, "doctor"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("ok    schema version {older}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("ok    integrity"), "{}", stdout(&o));
    assert_eq!(user_version(), older, "doctor migrated the file");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = tcrelay(&["completions", shell], &[]);
        assert!(o.status.success(), "{shell}");
        let script = stdout(&o);
        for word in ["quarantine", "replay", "trace", "doctor"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    assert!(!tcrelay(&["completions", "cmd.exe"], &[]).status.success());
}

#[test]
fn log_lines_are_json_on_request_and_never_coloured_into_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let db = path.to_str().unwrap();
    let set = [
        "--db",
        db,
        "cursor",
        "set",
        "orders",
        "2025-01-01T00:00:00.000Z",
        "--force",
    ];
    let info = [("RUST_LOG", "info")];

    let o = tcrelay(&[&["--log-format", "json"][..], &set[..]].concat(), &info);
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "SQLite store open"),
        "{stderr}"
    );

    let o = tcrelay(
        &set,
        &[("RUST_LOG", "info"), ("TCRELAY_LOG_FORMAT", "text")],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("SQLite store open"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colours into a pipe: {stderr:?}"
    );
}

#[tokio::test]
async fn replay_refuses_without_serves_environment_and_names_the_settings_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.db");
    let db = path.to_str().unwrap();
    quarantine_two(db).await;
    let listed = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));

    // A plain shell: the defaults would decide (here: relay the order refused under
    // TCRELAY_MAX_LINES=10), so nothing is replayed.
    let o = tcrelay(&["--db", db, "quarantine", "replay", "--all"], &[]);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("needs serve's environment")
            && err.contains("TCRELAY_WEBHOOK_BASIC")
            && err.contains("set -a"),
        "{err}"
    );
    let still = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    assert_eq!(still, listed, "nothing replayed");

    // With it: the settings in force on stderr (never the credential), and no log line
    // about GET webhooks when none is replayed.
    let o = tcrelay(
        &[
            "--db",
            db,
            "quarantine",
            "replay",
            &listed[0]["id"].to_string(),
        ],
        &[
            SERVE_ENV,
            ("TCRELAY_MAX_LINES", "10"),
            ("TCRELAY_EVENT_DENY", "OrderResentByBuyer"),
        ],
    );
    assert!(!o.status.success(), "still over the cap");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("TCRELAY_MAX_LINES=10")
            && err.contains("TCRELAY_EVENT_DENY=OrderResentByBuyer")
            && err.contains("TCRELAY_EVENT_ALLOW=(every event)"),
        "{err}"
    );
    assert!(!err.contains(CREDENTIALS), "{err}");
    assert!(
        !err.contains("WARN") && !err.contains("GET webhooks"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line of settings: {err}");
}

#[tokio::test]
async fn an_id_given_twice_is_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.db");
    let db = path.to_str().unwrap();
    quarantine_two(db).await;
    let listed = json_lines(&tcrelay(&["--db", db, "quarantine", "list", "--json"], &[]));
    let id = listed[0]["id"].to_string();
    let o = tcrelay(
        &["--db", db, "quarantine", "replay", &id, &id, "--json"],
        &[SERVE_ENV],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let replayed = json_lines(&o);
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["status"], 202);
    assert_eq!(replayed[0]["removed"], true);
    let queued = json_lines(&tcrelay(&["--db", db, "queue", "list", "--json"], &[]));
    assert_eq!(queued.len(), 1, "{queued:?}");
}
