//! `tcrelay demo` as a user runs it: a child process that exits 0 and prints the summary.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_short_demo_passes_its_own_check() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tcrelay"))
        .args(["demo", "--duration", "10s", "--seed", "3"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run tcrelay demo");
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
