//! Replays the router fuzz target's corpus and every crash it found (`fuzz/corpus/router`,
//! `fuzz/regressions/router`) through the same case the fuzzer runs, on stable and in CI: a
//! status outside the documented set, a caught panic, or anything done without valid
//! credentials fails here as it failed under the fuzzer.

use std::path::{Path, PathBuf};

use tcrelay_core::fuzzing::run_case;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn replay(files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| run_case(&data));
        assert!(outcome.is_ok(), "{} broke a promise", file.display());
    }
}

#[test]
fn the_corpus_keeps_every_promise() {
    let files = inputs(&fuzz_dir().join("corpus/router"));
    // The hand-written seeds alone are 24; an empty directory would prove nothing.
    assert!(files.len() >= 24, "only {} corpus inputs", files.len());
    replay(&files);
}

#[test]
fn every_crash_the_fuzzer_found_stays_fixed() {
    let found = inputs(&fuzz_dir().join("regressions/router"));
    // Two findings are committed: fewer means the folder moved and nothing was replayed.
    assert!(found.len() >= 2, "only {} regression inputs", found.len());
    replay(&found);
}
