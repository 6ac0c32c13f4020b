//! The [`Quarantine`] contract, as the webhook relies on it (it answers Tradecloud's refused
//! request 4xx, which Tradecloud never sends again, only after `keep` answered `Ok`):
//!
//! - A request kept is read back by an operator field for field: the body byte for byte
//!   (binary, not UTF-8, tXML in another encoding, empty, larger than SQS's largest message),
//!   the headers as given (the webhook has taken the credentials out) in their order with
//!   repeated names and any text, the method, the path with its query, the content type or
//!   none, the time received to the nanosecond, and the reason verbatim.
//! - Every `keep` that answered `Ok` is its own entry, a byte-identical retry too: Tradecloud's
//!   retry of a refused request is another delivery an operator may need.
//!
//! Each rule is a function taking a [`Subject`]: a fresh, empty quarantine an operator can
//! read. [`quarantine_conformance!`](crate::quarantine_conformance) expands to one
//! `#[tokio::test]` per rule, so a failure names the rule:
//!
//! ```text
//! tcrelay_core::quarantine_conformance!(subject());
//! ```
//!
//! where `subject()` is an async fn (or any expression with `.await`) returning a [`Subject`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{Quarantine, QuarantinedRequest};

/// A quarantine under test, with an operator's reader. Every rule gets a fresh, empty one.
#[async_trait]
pub trait Subject: Send + Sync {
    /// The quarantine.
    fn quarantine(&self) -> &dyn Quarantine;
    /// Every request kept so far, as an operator reads them (a claim check followed), in any
    /// order.
    async fn kept(&self) -> Vec<QuarantinedRequest>;
    /// The message size above which the quarantine claim-checks (`None`: it has no such
    /// threshold), set small by the subject so the rules cross it cheaply.
    fn claim_check_threshold(&self) -> Option<usize>;
}

/// The time every rule's requests arrived: nanoseconds, so a store that keeps less loses some.
fn received_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123456789Z")
        .expect("a time")
        .with_timezone(&Utc)
}

/// A refused POST with `body`.
pub fn request(body: Vec<u8>) -> QuarantinedRequest {
    QuarantinedRequest {
        received_at: received_at(),
        method: "POST".to_owned(),
        uri: "/webhook/orders".to_owned(),
        content_type: Some("application/json".to_owned()),
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-request-id".to_owned(), "r-1".to_owned()),
        ],
        body,
        reason: "orderEvent.order.id is missing".to_owned(),
    }
}

async fn keep(s: &dyn Subject, request: &QuarantinedRequest) {
    s.quarantine()
        .keep(request)
        .await
        .unwrap_or_else(|e| panic!("keep ({} bytes): {e}", request.body.len()));
}

/// Keeps `request` alone and asserts it reads back equal.
async fn round_trip(s: &dyn Subject, request: &QuarantinedRequest) {
    keep(s, request).await;
    let kept = s.kept().await;
    assert_eq!(kept.len(), 1, "one request kept, read {}", kept.len());
    let got = &kept[0];
    // Field by field first, so a failure names the field (bodies are long).
    assert_eq!(got.method, request.method, "method");
    assert_eq!(got.uri, request.uri, "uri");
    assert_eq!(got.content_type, request.content_type, "content type");
    assert_eq!(got.headers, request.headers, "headers");
    assert_eq!(got.reason, request.reason, "reason");
    assert_eq!(got.received_at, request.received_at, "received at");
    assert!(
        got.body == request.body,
        "body: {} bytes kept, {} given",
        got.body.len(),
        request.body.len()
    );
    assert_eq!(got, request);
}

/// A JSON body and every field read back as kept.
pub async fn a_kept_request_reads_back_field_for_field(s: &dyn Subject) {
    let body = br#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"order":{}}}"#.to_vec();
    round_trip(s, &request(body)).await;
}

/// A body of every byte value, not UTF-8, is kept byte for byte.
pub async fn a_binary_body_is_kept_byte_for_byte(s: &dyn Subject) {
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend((0..=255u8).rev());
    body.extend_from_slice(b"\xff\xfe\x00\x00{\"a\":\"\xc3\x28\xed\xa0\x80\"}\r\n");
    let mut r = request(body);
    r.content_type = Some("application/octet-stream".to_owned());
    round_trip(s, &r).await;
}

/// A tXML body in ISO-8859-1 (not UTF-8), with a byte-order mark's look-alike, CDATA and a
/// DOCTYPE, is kept byte for byte.
pub async fn a_txml_body_in_another_encoding_is_kept_byte_for_byte(s: &dyn Subject) {
    let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<!DOCTYPE x>\n".to_vec();
    body.extend_from_slice(b"<tXML xmlns=\"http://www.tradecloud1.com/\"><order><description>Gr\xf6\xdfe \xbd &amp; <![CDATA[<b>\x00</b>]]></description></order></tXML>");
    let mut r = request(body);
    r.content_type = Some("application/xml; charset=ISO-8859-1".to_owned());
    r.reason = "tXML: <order> has no <id>".to_owned();
    round_trip(s, &r).await;
}

/// An empty body, no content type and no headers are kept as such.
pub async fn an_empty_request_is_kept_as_empty(s: &dyn Subject) {
    let mut r = request(Vec::new());
    r.content_type = None;
    r.headers = Vec::new();
    r.method = "GET".to_owned();
    r.uri = "/webhook/orders/o%201?x=%C3%A9&y&z=".to_owned();
    r.reason = String::new();
    round_trip(s, &r).await;
}

/// Headers are kept as given, in order, with repeated names, empty values and any text
/// (a value that was not UTF-8 reaches the quarantine as U+FFFD; SQS refuses U+FFFE/U+FFFF raw).
pub async fn headers_are_kept_in_order_with_repeats_and_any_text(s: &dyn Subject) {
    let mut r = request(b"{}".to_vec());
    r.headers = vec![
        ("x-b".to_owned(), "2".to_owned()),
        ("x-a".to_owned(), "1".to_owned()),
        ("x-b".to_owned(), "3".to_owned()),
        ("x-empty".to_owned(), String::new()),
        (
            "x-odd".to_owned(),
            "é \u{FFFD} \u{FFFE}\u{FFFF} \"q\" \\ \t ‘’ 😀".to_owned(),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    round_trip(s, &r).await;
}

/// The reason is kept verbatim: quotes, line breaks, control characters and noncharacters that
/// a body's names (quoted in it) may hold.
pub async fn the_reason_is_kept_verbatim(s: &dyn Subject) {
    let mut r = request(b"<x/>".to_vec());
    r.reason = "unknown element <a\u{1}b> in \"order\"\nline 2\r\n\u{0}\u{7f}\u{FFFE}\u{FFFF}\u{2028} é 😀 \\".to_owned();
    round_trip(s, &r).await;
}

/// A body larger than SQS's largest message (6 MB, a webhook's largest) is kept byte for byte.
pub async fn a_body_over_sqs_s_limit_is_kept_byte_for_byte(s: &dyn Subject) {
    let body: Vec<u8> = (0..6_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    round_trip(s, &request(body)).await;
}

/// The same request kept twice (Tradecloud's retry of a refused request) is kept twice.
pub async fn a_request_kept_twice_is_kept_twice(s: &dyn Subject) {
    let r = request(b"{\"same\":true}".to_vec());
    keep(s, &r).await;
    keep(s, &r).await;
    let kept = s.kept().await;
    assert_eq!(kept, vec![r.clone(), r]);
}

/// Requests whose documents are on either side of the claim-check threshold, and exactly at
/// it, are each kept field for field. The reason grows one character at a time (the body's
/// base64 grows four at a time), across the span the message's attributes can take.
pub async fn requests_around_the_claim_check_threshold_are_kept(s: &dyn Subject) {
    let Some(threshold) = s.claim_check_threshold() else {
        return;
    };
    let mut base = request(Vec::new());
    base.reason = String::new();
    let empty = serde_json::to_string(&base).expect("JSON").len();
    // A body that leaves the document 200 bytes short of the threshold, whole base64 quads.
    let body_len = (threshold.saturating_sub(empty + 200)) / 4 * 3;
    base.body = (0..body_len).map(|i| (i % 256) as u8).collect();
    let start = serde_json::to_string(&base).expect("JSON").len();
    let requests: Vec<QuarantinedRequest> = (0..=(threshold + 8 - start))
        .map(|n| {
            let mut r = base.clone();
            r.reason = "r".repeat(n);
            r
        })
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| serde_json::to_string(r).expect("JSON").len() == threshold),
        "one document is exactly at the threshold"
    );
    for r in &requests {
        keep(s, r).await;
    }
    let mut kept = s.kept().await;
    kept.sort_by_key(|r| r.reason.len());
    assert_eq!(kept.len(), requests.len(), "each kept once");
    for (got, want) in kept.iter().zip(&requests) {
        assert!(
            got == want,
            "the request of a {}-byte reason changed",
            want.reason.len()
        );
    }
}

/// Requests kept at once (concurrent refusals) are each kept once.
pub async fn requests_kept_at_once_are_each_kept(s: &dyn Subject) {
    let requests: Vec<QuarantinedRequest> = (0..12u8)
        .map(|n| {
            let mut r = request(vec![n, 0xff, n]);
            r.reason = format!("refusal {n}");
            r
        })
        .collect();
    let answers = super::join_all(requests.iter().map(|r| s.quarantine().keep(r)).collect()).await;
    for (n, answer) in answers.into_iter().enumerate() {
        answer.unwrap_or_else(|e| panic!("keep {n}: {e}"));
    }
    let mut kept = s.kept().await;
    kept.sort_by(|a, b| a.body.cmp(&b.body));
    assert_eq!(kept, requests);
}

/// Every one of Tradecloud's published example files (JSON, tXML, HTTP text), as the body
/// of a refused request, is kept byte for byte.
pub async fn real_bodies_are_kept_byte_for_byte(s: &dyn Subject) {
    let files = super::realworld_files();
    let requests: Vec<QuarantinedRequest> = files
        .into_iter()
        .map(|(name, body)| {
            let mut r = request(body);
            r.reason = format!("refused: {name}");
            r
        })
        .collect();
    for r in &requests {
        keep(s, r).await;
    }
    let mut kept = s.kept().await;
    kept.sort_by(|a, b| a.reason.cmp(&b.reason));
    assert_eq!(kept.len(), requests.len());
    for (got, want) in kept.iter().zip(&requests) {
        assert_eq!(got.reason, want.reason);
        assert!(got.body == want.body, "{}: body changed", want.reason);
    }
}

/// Expands to one `#[tokio::test]` per rule of [`crate::conformance::quarantine`], each on a
/// fresh subject from `$subject` (an expression whose `.await` is a
/// [`Subject`](crate::conformance::quarantine::Subject)).
#[macro_export]
macro_rules! quarantine_conformance {
    ($subject:expr) => {
        $crate::quarantine_conformance!(@rules $subject;
            a_kept_request_reads_back_field_for_field,
            a_binary_body_is_kept_byte_for_byte,
            a_txml_body_in_another_encoding_is_kept_byte_for_byte,
            an_empty_request_is_kept_as_empty,
            headers_are_kept_in_order_with_repeats_and_any_text,
            the_reason_is_kept_verbatim,
            a_body_over_sqs_s_limit_is_kept_byte_for_byte,
            a_request_kept_twice_is_kept_twice,
            requests_kept_at_once_are_each_kept,
            real_bodies_are_kept_byte_for_byte,
            requests_around_the_claim_check_threshold_are_kept,
        );
    };
    (@rules $subject:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let subject = $subject.await;
                $crate::conformance::quarantine::$rule(&subject).await;
            }
        )*
    };
}
