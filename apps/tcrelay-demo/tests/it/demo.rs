//! `tcrelay-demo` as a user runs it: a child process that exits 0 and prints the summary.

use std::process::Command;
use std::time::{Duration, Instant};

use tcrelay::ops;
use tcrelay_sqlite::{SqliteOptions, SqliteStore};

#[test]
fn a_short_demo_passes_its_own_check() {
    let started = Instant::now();
    // An operator's database named for `tcrelay` in the same shell is not the demo's.
    let dir = tempfile::tempdir().unwrap();
    let operators_db = dir.path().join("operator.db");
    let output = Command::new(env!("CARGO_BIN_EXE_tcrelay-demo"))
        .args(["--duration", "10s", "--seed", "3"])
        .env_remove("RUST_LOG")
        .env("TCRELAY_DB", &operators_db)
        .output()
        .expect("run tcrelay-demo");
    assert!(
        !operators_db.exists(),
        "the demo wrote into TCRELAY_DB's database"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "channel",
        "POST JSON",
        "POST tXML",
        "GET",
        "poll",
        "quarantined: 3 (exactly the malformed requests sent)",
        "ground-truth check: PASSED",
        "demo passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    // Progress lines came while it ran.
    assert!(stdout.matches("enqueued").count() >= 4, "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(240));
}

/// `--db` is honoured and kept, so the operator commands can be tried on the demo's data; the
/// relay's log lines about the injected faults stay out of the way.
#[test]
fn the_demo_keeps_its_database_when_given_one_and_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.db");
    let db = path.to_str().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_tcrelay-demo"))
            .args(["--duration", "5s", "--seed", "4", "--db", db])
            .env_remove("RUST_LOG")
            .env_remove("TCRELAY_DB")
            .output()
            .expect("run tcrelay-demo")
    };
    let output = run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "no log lines by default: {stderr}"
    );
    assert!(stdout.contains("the database is kept"), "{stdout}");
    assert!(path.is_file());

    // The summary's queue and quarantine are the kept file's, as `tcrelay --db FILE queue stats
    // --json` and `quarantine list --json` show them: the same functions of the `tcrelay`
    // library, since its binary is built only for its own package's tests.
    let on_queue: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("on the queue: ")?.strip_suffix(" envelopes"))
        .expect("the summary's queue count")
        .parse()
        .unwrap();
    let (stats, quarantined) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open_existing(&path, SqliteOptions::default()).unwrap();
        let mut stats = Vec::new();
        ops::queue_stats(&store, true, &mut stats).await.unwrap();
        let mut quarantined = Vec::new();
        ops::quarantine_list(&store, true, &mut quarantined)
            .await
            .unwrap();
        (stats, quarantined)
    });
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["pending"], on_queue, "{stdout}");
    assert_eq!(String::from_utf8_lossy(&quarantined).lines().count(), 3);

    // A second run would mix its messages with the first's: refused, the file untouched.
    let again = run();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}
