//! Bounded memory: no body within the size limit raises peak memory by more than 64 MB plus
//! eight times its size. Measured as the peak resident set of a child process (this test
//! binary, run again for one body) during one decode through the public API: the child resets
//! its high-water mark (`/proc/self/clear_refs`), decodes, and reports how far its peak rose
//! above where it started.
//!
//! The bodies are the worst cases found: many empty lines, in JSON and in tXML. The line cap
//! is raised for the measurement (it would refuse these bodies only after reading them, and must
//! not be what keeps the measurement small); the cap itself is tested in `bad_input.rs`.

use std::process::Command;

use tradecloud_model::{DecodeLimits, decode_webhook_with};

const CHILD: &str = "TCRELAY_MEMORY_CHILD";
const TEST_NAME: &str = "many_empty_lines_stay_within_the_memory_bound";

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kb * 1024
}

fn body(kind: &str) -> (Vec<u8>, &'static str, usize) {
    match kind {
        "json" => {
            let lines = vec!["{}"; 100_000].join(",");
            let body = format!(
                r#"{{"eventName":"OrderIssuedByBuyer","orderEvent":{{"orderId":"o-1","lines":[{lines}]}}}}"#
            );
            (body.into_bytes(), "application/json", 100_000)
        }
        _ => {
            let body = format!(
                "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent><orderId>o-1</orderId>{}</orderEvent></WebhookBody>",
                "<line/>".repeat(200_000)
            );
            (body.into_bytes(), "application/xml", 200_000)
        }
    }
}

/// The child's part: decode one body, print `<body bytes> <peak rise in bytes>`.
fn measure(kind: &str) {
    let (body, content_type, lines) = body(kind);
    let limits = DecodeLimits {
        max_lines: usize::MAX,
    };
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident set");
    let start = status_bytes("VmRSS:");
    let decoded = decode_webhook_with(&body, Some(content_type), &limits).expect("decodes");
    let peak = status_bytes("VmHWM:");
    assert_eq!(decoded.body.line_count(), lines);
    assert!(decoded.payload["orderEvent"]["lines"][lines - 1].is_object());
    println!("MEASURED {} {}", body.len(), peak.saturating_sub(start));
}

#[test]
fn many_empty_lines_stay_within_the_memory_bound() {
    if let Ok(kind) = std::env::var(CHILD) {
        measure(&kind);
        return;
    }
    for kind in ["json", "txml"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, kind)
            .output()
            .expect("the child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind} child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let measured = stdout
            .lines()
            .find_map(|l| l.split("MEASURED ").nth(1))
            .unwrap_or_else(|| panic!("{kind} child reported nothing: {stdout}"));
        let mut numbers = measured.split(' ').map(|n| n.parse::<usize>().unwrap());
        let (size, rise) = (numbers.next().unwrap(), numbers.next().unwrap());
        let bound = 64 * 1024 * 1024 + 8 * size;
        println!("{kind}: {size} bytes, peak rose {rise} bytes (bound {bound})");
        assert!(
            rise <= bound,
            "{kind}: peak rose {rise} bytes, over {bound}"
        );
        // The measurement measures: decoding thousands of lines costs something.
        assert!(rise > 0, "{kind}: no rise measured");
    }
}
