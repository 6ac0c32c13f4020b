//! The decoders' invariants, in one place: every fuzz target checks them on each input, and
//! `crates/tradecloud-model/tests/it/fuzz_regressions.rs` replays the committed corpus and crashes through
//! them on stable Rust (both include this file with `#[path]`).
//!
//! For any bytes and content type: no panic (a panicking decode would kill the webhook's
//! request, and on Lambda API Gateway answers for the dead function, by some reports 500,
//! which Tradecloud drops), and every refusal
//! is a `DecodeError` that says what is wrong (its Display, which becomes the problem+json
//! `detail` the relay answers with, is never empty) and maps to the answer the relay gives
//! (415 exactly for an unsupported content type with a body neither JSON nor XML, else 400; the mapping itself lives in
//! `tcrelay_core::webhook`). Hangs and memory are bounded by the fuzzer's `-timeout` and
//! `-rss_limit_mb`.

use tradecloud_model::DecodeError;

/// The fuzz targets, by the name of their corpus folder.
pub const TARGETS: [&str; 3] = ["decode_json", "decode_txml", "decode_any"];

/// Content types the `decode_any` target picks from with its input's first byte: the ones
/// Tradecloud may send, the generic ones the relay sniffs, a tXML type Tradecloud might use
/// (read by its body, like every type not JSON or XML), and some it refuses with 415 when the
/// body is neither JSON nor XML.
pub const CONTENT_TYPES: [Option<&str>; 13] = [
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/xml"),
    Some("text/xml; charset=UTF-8"),
    Some("application/vnd.tradecloud+json"),
    Some("application/soap+xml"),
    Some("application/txml"),
    Some("text/plain"),
    Some("application/octet-stream"),
    Some("*/*"),
    Some("text/html"),
    Some(""),
];

/// Runs `data` through target `target` as its fuzz target does; panics on a broken invariant.
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "decode_json" => {
            check_webhook(data, Some("application/json"));
            // Fetched and polled objects go through the same JSON reader.
            check_refusal(tradecloud_model::decode_order(data).err(), None);
            check_refusal(tradecloud_model::decode_shipment(data).err(), None);
        }
        "decode_txml" => check_webhook(data, Some("application/xml")),
        "decode_any" => {
            let Some((&pick, body)) = data.split_first() else {
                return;
            };
            let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
            check_webhook(body, content_type);
        }
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// Decodes a webhook body and checks what comes back.
pub fn check_webhook(body: &[u8], content_type: Option<&str>) {
    check_refusal(
        tradecloud_model::decode_webhook(body, content_type).err(),
        content_type,
    );
}

fn check_refusal(error: Option<DecodeError>, content_type: Option<&str>) {
    let Some(error) = error else {
        return;
    };
    let detail = error.to_string();
    assert!(
        !detail.trim().is_empty(),
        "a refusal without a detail: {error:?}"
    );
    if error.is_unsupported_media_type() {
        // 415 is about the content type alone: never said of a body sent without one.
        assert!(
            content_type.is_some(),
            "415 without a content type: {error:?}"
        );
    }
}
