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
    let (stats, quarantined, exported) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open_existing(&path, SqliteOptions::default()).unwrap();
        let mut stats = Vec::new();
        ops::queue_stats(&store, true, &mut stats).await.unwrap();
        let mut quarantined = Vec::new();
        ops::quarantine_list(&store, true, &mut quarantined)
            .await
            .unwrap();
        let mut exported = Vec::new();
        ops::queue_export(&store, true, None, &mut exported)
            .await
            .unwrap();
        (stats, quarantined, exported)
    });
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["pending"], on_queue, "{stdout}");
    assert_eq!(String::from_utf8_lossy(&quarantined).lines().count(), 3);
    assert_conform_to_schema(&exported);

    // A second run would mix its messages with the first's: refused, the file untouched.
    let again = run();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

/// Every envelope of the demo, from every channel (webhook POST in JSON and tXML, GET, poll),
/// against docs/envelope.schema.json with Python's jsonschema, as a consumer would check them
/// (`examples/python/validate.py`, the venv of scripts/test.sh).
fn assert_conform_to_schema(exported: &[u8]) {
    use std::io::Write as _;
    let text = String::from_utf8_lossy(exported);
    let sources: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| {
            let envelope: serde_json::Value = serde_json::from_str(l).unwrap();
            envelope["source"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        sources,
        ["poll", "webhook-get", "webhook-post"]
            .map(str::to_owned)
            .into(),
        "every channel's envelopes are checked"
    );
    let venv = std::env::var("TCRELAY_TEST_VENV").expect(
        "TCRELAY_TEST_VENV is not set: this test checks envelopes with the venv of \
         scripts/test.sh (source scripts/venv.sh, then export TCRELAY_TEST_VENV=$PWD/.venv)",
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(std::path::Path::new(&venv).join("bin/python"))
        .arg(root.join("examples/python/validate.py"))
        .arg(root.join("docs/envelope.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run validate.py");
    let mut stdin = child.stdin.take().unwrap();
    let input = exported.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("validate.py");
    writer.join().unwrap().expect("write to validate.py");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "envelopes do not conform to the schema:\n{}{report}",
        String::from_utf8_lossy(&output.stderr)
    );
    let count = text.lines().count();
    assert!(
        report.contains(&format!("{count} envelopes checked, 0 invalid")),
        "{report}"
    );
}
