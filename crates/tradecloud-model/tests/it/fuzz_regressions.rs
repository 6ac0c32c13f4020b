//! Replays the fuzzers' minimized corpus and every crash they found (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the same invariants the fuzz targets check, on stable
//! Rust, so `cargo test` keeps each finding fixed without nightly or libFuzzer.

#[path = "../../../../fuzz/invariants.rs"]
mod invariants;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, with its target.
fn inputs(kind: &str) -> Vec<(&'static str, PathBuf)> {
    let mut found = Vec::new();
    for target in invariants::TARGETS {
        let dir = fuzz_dir().join(kind).join(target);
        // A renamed target or moved folder must fail, not replay nothing.
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
                found.push((target, path));
            }
        }
    }
    found.sort();
    found
}

fn replay(kind: &str) -> usize {
    let inputs = inputs(kind);
    for (target, path) in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        // A broken invariant panics; name the input so it can be run under the fuzzer.
        let outcome = std::panic::catch_unwind(|| invariants::run_target(target, &data));
        assert!(
            outcome.is_ok(),
            "{path:?} breaks the {target} invariants (see the panic above)"
        );
    }
    inputs.len()
}

#[test]
fn the_minimized_fuzz_corpus_keeps_the_decode_invariants() {
    let count = replay("corpus");
    // The corpus is committed: an empty run means the folders moved, not that all is well.
    assert!(count > 0, "no corpus found under {:?}", fuzz_dir());
}

#[test]
fn every_crash_the_fuzzers_found_stays_fixed() {
    // Zero files is fine (no decode crash found yet); a missing folder is not (see inputs).
    let count = replay("regressions");
    println!("{count} fuzz regression inputs replayed");
}
