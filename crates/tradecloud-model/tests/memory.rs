//! Bounded memory: no body within the size limit raises peak memory by more than 64 MB plus
//! eight times its size. Measured as the peak resident set of a child process (this test
//! binary, run again for one body) during one decode through the public API: the child resets
//! its high-water mark (`/proc/self/clear_refs`), decodes, and reports how far its peak rose
//! above where it started.
//!
//! The bodies are the worst cases found: many empty lines, in JSON and in tXML, and the shapes
//! that cost the most memory per byte (tiny values, short keys, objects of one key), as large
//! as the webhook accepts (refused by the value budget) and as large as the budget admits
//! (decoded). The line cap
//! is raised for the measurement (it would refuse these bodies only after reading them, and must
//! not be what keeps the measurement small); the cap itself is tested in `it/bad_input.rs`.

use std::process::Command;

use tradecloud_model::{DecodeLimits, decode_webhook_with};

const CHILD: &str = "TCRELAY_MEMORY_CHILD";
const TEST_NAME: &str = "many_empty_lines_stay_within_the_memory_bound";

/// Every measured body: the issue's two, and the adversarial JSON and tXML shapes.
const KINDS: [&str; 15] = [
    "json",
    "txml",
    "json-zeros",
    "json-zeros-1mb",
    "json-empty-lists",
    "json-empty-strings",
    "json-short-keys",
    "json-one-key-objects",
    "json-one-key-objects-1.7mb",
    "json-one-key-objects-540kb",
    "txml-nested-chain",
    "txml-one-key-objects",
    "txml-one-key-objects-760kb",
    "txml-utf16",
    "txml-utf16-one-key-objects",
];

/// The bodies that must decode: the issue's two, and adversarial ones just small enough for
/// the budget to admit (the costliest bodies that are relayed). The rest hold more than their
/// size allows, and are refused as too large (413).
const RELAYED: [&str; 6] = [
    "json",
    "txml",
    "txml-utf16",
    "json-zeros-1mb",
    "json-one-key-objects-540kb",
    "txml-one-key-objects-760kb",
];

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

/// The webhook's default size limit (`TCRELAY_MAX_BODY_BYTES`): the adversarial bodies below
/// are made as large as it allows.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A JSON order event whose `lines` holds `count` copies of `item`, and what `lines` then is.
fn json_lines(item: &str, count: usize) -> Vec<u8> {
    let lines = vec![item; count].join(",");
    format!(
        r#"{{"eventName":"OrderIssuedByBuyer","orderEvent":{{"orderId":"o-1","lines":[{lines}]}}}}"#
    )
    .into_bytes()
}

/// A JSON order event with `filler` (a value of many tiny values) under an unknown key, grown
/// until the body is as large as the webhook accepts.
fn json_filler(open: &str, item: &str, close: &str) -> Vec<u8> {
    json_filler_of(MAX_BODY_BYTES, open, item, close)
}

/// [`json_filler`] grown to `size` bytes.
fn json_filler_of(size: usize, open: &str, item: &str, close: &str) -> Vec<u8> {
    let head =
        r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","lines":[{}],"filler":"#;
    let room = size - head.len() - open.len() - close.len() - 2;
    let count = room / (item.len() + 1);
    let mut body = String::with_capacity(MAX_BODY_BYTES);
    body.push_str(head);
    body.push_str(open);
    body.push_str(&vec![item; count].join(","));
    body.push_str(close);
    body.push_str("}}");
    body.into_bytes()
}

/// A tXML order event (one line) with `item` repeated under it until the body is as large as
/// the webhook accepts.
fn txml_filler(item: &str) -> Vec<u8> {
    txml_filler_of(MAX_BODY_BYTES, item)
}

/// [`txml_filler`] grown to `size` bytes.
fn txml_filler_of(size: usize, item: &str) -> Vec<u8> {
    let head = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent><orderId>o-1</orderId><line/>";
    let tail = "</orderEvent></WebhookBody>";
    let count = (size - head.len() - tail.len()) / item.len();
    [head, &item.repeat(count), tail].concat().into_bytes()
}

/// `body` (UTF-8) as UTF-16LE with its byte-order mark: transcoded before it is read.
fn utf16(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// A JSON object of `count` distinct short keys, each with a tiny value.
fn json_keys(count: usize) -> String {
    let keys: Vec<String> = (0..count).map(|i| format!(r#""{i:x}":0"#)).collect();
    format!("{{{}}}", keys.join(","))
}

/// The body of one measured case: bytes, content type, and the lines it carries.
fn body(kind: &str) -> (Vec<u8>, &'static str, usize) {
    match kind {
        "json" => (json_lines("{}", 100_000), "application/json", 100_000),
        "txml" => {
            let body = format!(
                "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent><orderId>o-1</orderId>{}</orderEvent></WebhookBody>",
                "<line/>".repeat(200_000)
            );
            (body.into_bytes(), "application/xml", 200_000)
        }
        // The shapes that cost the most per byte, each as large as the size limit allows:
        // many tiny numbers, empty lists, empty strings, and short keys.
        "json-zeros" => (json_filler("[", "0", "]"), "application/json", 1),
        // Small enough to be relayed: the budget admits it, and it stays within the bound.
        "json-zeros-1mb" => (
            json_filler_of(1_000_000, "[", "0", "]"),
            "application/json",
            1,
        ),
        "json-empty-lists" => (json_filler("[", "[]", "]"), "application/json", 1),
        "json-empty-strings" => (json_filler("[", r#""""#, "]"), "application/json", 1),
        "json-short-keys" => {
            // Objects of 4096 distinct short keys each (a key costs more than a list item).
            (
                json_filler("[", &json_keys(4096), "]"),
                "application/json",
                1,
            )
        }
        // Objects of one key: each allocates a whole B-tree node for a few bytes of JSON.
        "json-one-key-objects" => (json_filler("[", r#"{"a":0}"#, "]"), "application/json", 1),
        // The same at the size a reviewer measured it (209,000 objects): accepted once, at
        // nearly twice the bound.
        "json-one-key-objects-1.7mb" => (
            json_filler_of(1_675_000, "[", r#"{"a":0}"#, "]"),
            "application/json",
            1,
        ),
        // Just under the budget, which admits some 69,000 such objects.
        "json-one-key-objects-540kb" => (
            json_filler_of(540_000, "[", r#"{"a":0}"#, "]"),
            "application/json",
            1,
        ),
        // tXML's costliest shapes: every element a map of one key, nested as deep as the
        // reader allows, or side by side.
        "txml-nested-chain" => {
            let chain = format!("{}<b/>{}", "<a>".repeat(58), "</a>".repeat(58));
            (txml_filler(&chain), "application/xml", 1)
        }
        "txml-one-key-objects" => (txml_filler("<f><b/></f>"), "application/xml", 1),
        // Just under the budget, which admits some 71,000 such elements.
        "txml-one-key-objects-760kb" => {
            (txml_filler_of(760_000, "<f><b/></f>"), "application/xml", 1)
        }
        // UTF-16: the text is transcoded to UTF-8 (a copy) before it is read.
        "txml-utf16" => {
            let (body, content_type, lines) = body("txml");
            (utf16(&body), content_type, lines)
        }
        "txml-utf16-one-key-objects" => (
            utf16(&txml_filler_of((MAX_BODY_BYTES - 2) / 2, "<f><b/></f>")),
            "application/xml",
            1,
        ),
        other => panic!("no body {other}"),
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
    let decoded = decode_webhook_with(&body, Some(content_type), &limits);
    let peak = status_bytes("VmHWM:");
    let outcome = if decoded.is_ok() {
        "decoded"
    } else {
        "refused"
    };
    match decoded {
        Ok(decoded) => {
            assert_eq!(decoded.body.line_count(), lines);
            assert!(decoded.payload["orderEvent"]["lines"][lines - 1].is_object());
        }
        // The adversarial bodies at the size limit hold more values than their size allows:
        // refused as too large (413, kept in the quarantine), after bounded work.
        Err(e) if !RELAYED.contains(&kind) => {
            assert!(e.is_too_large(), "{kind}: {e}");
        }
        Err(e) => panic!("{kind}: {e}"),
    }
    assert!(
        body.len() <= MAX_BODY_BYTES,
        "{kind}: larger than the limit"
    );
    println!(
        "MEASURED {} {} {outcome}",
        body.len(),
        peak.saturating_sub(start)
    );
}

#[test]
fn many_empty_lines_stay_within_the_memory_bound() {
    if let Ok(kind) = std::env::var(CHILD) {
        measure(&kind);
        return;
    }
    // Every body is measured before any failure is reported, so one run shows them all.
    let mut over = Vec::new();
    for kind in KINDS {
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
        let mut fields = measured.split(' ');
        let mut number = || fields.next().unwrap().parse::<usize>().unwrap();
        let (size, rise) = (number(), number());
        let outcome = fields.next().unwrap();
        let bound = 64 * 1024 * 1024 + 8 * size;
        println!("{kind}: {size} bytes, {outcome}, peak rose {rise} bytes (bound {bound})");
        if rise > bound {
            over.push(format!("{kind}: peak rose {rise} bytes, over {bound}"));
        }
        // The measurement measures: decoding thousands of lines costs something.
        assert!(rise > 0, "{kind}: no rise measured");
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}
