//! The quarantine: the contract (`tcrelay_core::conformance::quarantine`), then requests
//! listed and exported in order.

use chrono::{DateTime, Utc};
use tcrelay_core::ports::{Quarantine, QuarantinedRequest};
use tcrelay_sqlite::SqliteStore;

use crate::common::temp_db;

fn request(n: u8, body: Vec<u8>) -> QuarantinedRequest {
    QuarantinedRequest {
        received_at: DateTime::parse_from_rfc3339("2026-03-01T12:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::seconds(i64::from(n)),
        method: "POST".to_owned(),
        uri: format!("/webhook/orders?try={n}"),
        content_type: n
            .is_multiple_of(2)
            .then(|| "application/xml; charset=utf-8".to_owned()),
        headers: vec![
            ("x-request-id".to_owned(), format!("req-{n}")),
            ("user-agent".to_owned(), "Tradecloud ✓".to_owned()),
            ("x-request-id".to_owned(), "repeated header".to_owned()),
        ],
        body,
        reason: format!("orderEvent.lines[{n}].id: missing"),
    }
}

mod contract {
    tcrelay_core::quarantine_conformance!(crate::common::fresh_db());
}

#[tokio::test]
async fn kept_requests_round_trip_byte_for_byte() {
    let (_dir, path) = temp_db();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe, b'\n']).collect();
    let requests = vec![
        request(0, binary),
        request(1, Vec::new()),
        request(2, b"<not xml".to_vec()),
    ];
    {
        let store = SqliteStore::open(&path).unwrap();
        for r in &requests {
            store.keep(r).await.unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.quarantine_count().await.unwrap(), 3);
    let listed = store.quarantine_list(0, 100).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.request.clone()).collect::<Vec<_>>(),
        requests
    );
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));

    let page = store.quarantine_list(listed[0].id, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].request, requests[1]);

    // The export is the SQS quarantine's document plus id and keptAt, one per line.
    let lines = store.quarantine_export().await.unwrap();
    assert_eq!(lines.len(), 3);
    for (line, (entry, original)) in lines.iter().zip(listed.iter().zip(&requests)) {
        assert!(!line.contains('\n'));
        let parsed: QuarantinedRequest = serde_json::from_str(line).unwrap();
        assert_eq!(&parsed, original);
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["id"].as_i64(), Some(entry.id));
        assert!(value["keptAt"].is_string());
    }
}

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_reason_quoting_the_request_cannot_forge_a_log_line() {
    // Refusal reasons quote request text (an XML end tag's name); the store logs the reason.
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut forged = request(1, b"<x/>".to_vec());
    forged.reason =
        "end tag </eventName\n2099-01-01T00:00:00Z  INFO outcome=enqueued status=202>".to_owned();
    store.keep(&forged).await.unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request quarantined"), "{logs}");
    assert!(logs.contains("\\n2099-01-01"), "escaped: {logs}");
    assert!(
        !logs.lines().any(|line| line.starts_with("2099")),
        "a forged line: {logs}"
    );
}
