//! Logs never carry secrets. In a binary of its own: tracing caches per-callsite interest
//! process-wide, so a test subscriber set on one thread misses events while other tests run.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{Fake, PASSWORD, Step, USER, config, start};
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};

/// Logs at every level, ours and the HTTP stack's, never carry the password or a token.
#[tokio::test]
async fn logs_carry_no_secrets() {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (fake, base) = start(Fake::default()).await;
    let client = TradecloudClient::new(ClientConfig {
        refresh_interval: Duration::from_millis(20),
        ..config(&base)
    })
    .unwrap();
    client.fetch_order("a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    fake.script([Step::Status(401, None), Step::Status(503, None)]);
    client.fetch_order("b").await.unwrap();
    client.logout().await.unwrap();
    let bad = TradecloudClient::new(ClientConfig {
        credentials: Credentials::new(USER, "wrong-password"),
        ..config(&base)
    })
    .unwrap();
    bad.fetch_order("c").await.unwrap_err();
    // A username with a line break (a secret file's trailing newline, say) must not start a
    // line of its own in a text log, where it could pass for another event.
    let forged = TradecloudClient::new(ClientConfig {
        credentials: Credentials::new("ops@example.com\nINFO forged: logged in", "x"),
        ..config(&base)
    })
    .unwrap();
    forged.fetch_order("d").await.unwrap_err();

    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("logged in to Tradecloud"), "{logs}");
    assert!(logs.contains("ops@example.com"), "{logs}");
    assert!(
        !logs.lines().any(|line| line.starts_with("INFO forged")),
        "a username's line break reached the log raw:\n{logs}"
    );
    assert!(logs.contains("retrying"), "{logs}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [
        PASSWORD,
        "wrong-password",
        basic.as_str(),
        "access-1",
        "access-2",
        "refresh-1",
        "refresh-2",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
