//! Conformance suites (feature `testing`): a port's contract written once, as one async function
//! per rule, and run against every implementation of the port from that adapter's own tests.

pub mod cursor_store;
pub mod dedupe_store;
pub mod event_sink;
pub mod quarantine;

use std::future::Future;
use std::path::PathBuf;
use std::task::Poll;

/// Tradecloud's published examples (`shared/tradecloud/realworld` beside the clone, or where
/// `TCRELAY_REALWORLD_DIR` points), each file's name and bytes, in name order; empty (said in
/// one line) when the folder is absent and `TCRELAY_SKIP_REALWORLD=1` asks to run without it.
/// Absent without that, it panics, so a missing folder is never a silent pass (as
/// `tradecloud-model`'s real-world tests).
fn realworld_files() -> Vec<(String, Vec<u8>)> {
    let dir = match std::env::var("TCRELAY_REALWORLD_DIR") {
        Ok(dir) => PathBuf::from(dir),
        // This crate sits two levels below the workspace root; `shared/` is beside the clone.
        Err(_) => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tradecloud/realworld")
        }
    };
    if !dir.join("SOURCES.md").is_file() {
        let skip = std::env::var("TCRELAY_SKIP_REALWORLD").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "Tradecloud's published examples are missing at {} (../shared/tradecloud/realworld \
             beside the clone, or where TCRELAY_REALWORLD_DIR points); set \
             TCRELAY_SKIP_REALWORLD=1 to run the other rules without them",
            dir.display()
        );
        println!(
            "TCRELAY_SKIP_REALWORLD=1: no real-world bodies at {}",
            dir.display()
        );
        return Vec::new();
    }
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Polls every future until all are done; their outputs in order (so the rules need no
/// runtime of their own).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *output = Some(out),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
