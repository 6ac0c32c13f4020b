//! Writes that went through but answered too late. A call whose answer outlives the SDK's
//! attempt timeout is sent again by the SDK, and the retry meets what the first attempt wrote:
//! a claim its own, a checkpoint already made. Over the wire against moto, through a loopback
//! proxy that holds back the answer on its first connection (the SDK gives up on that
//! connection and retries on a new one, which the proxy passes straight through).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tcrelay_aws::testing::{moto_clients, moto_options, moto_url};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore};
use tcrelay_core::conformance::cursor_store::a_walk;
use tcrelay_core::ports::{ClaimOutcome, Completion, CursorStore, DedupeStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the SDK waits for one attempt's answer here: well above what moto takes while the
/// other tests load it (500 ms was too short once under CI's load; production uses 3 s).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the proxy holds back the first connection's answer: well past the attempt timeout.
const HELD_BACK: Duration = Duration::from_secs(4);

/// A loopback TCP proxy to moto that holds back the answer on its first connection by
/// [`HELD_BACK`]; returns its URL.
async fn late_first_answer_proxy() -> String {
    let moto = moto_url();
    let upstream = moto
        .strip_prefix("http://")
        .expect("moto is served over http")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let first = Arc::new(AtomicBool::new(true));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let hold = first.swap(false, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(&upstream).await {
                    pipe(client, server, hold).await;
                }
            });
        }
    });
    url
}

/// Copies bytes both ways until either side closes; with `hold`, the first bytes of the
/// answer wait [`HELD_BACK`].
async fn pipe(client: TcpStream, server: TcpStream, hold: bool) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    let mut held = hold;
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if std::mem::take(&mut held) {
            tokio::time::sleep(HELD_BACK).await;
        }
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    requests.abort();
}

/// A DynamoDB client through a [`late_first_answer_proxy`], retrying after the attempt
/// timeout (up to twice: a retry slowed by a loaded moto still meets the same write).
async fn late_client() -> aws_sdk_dynamodb::Client {
    let mut options = moto_options(&late_first_answer_proxy().await);
    options.operation_attempt_timeout = Some(ATTEMPT_TIMEOUT);
    options.max_attempts = Some(3);
    aws_sdk_dynamodb::Client::new(&options.load().await)
}

/// A fresh table in moto, made directly (not through the proxy).
async fn table() -> String {
    tcrelay_aws::testing::create_table(&moto_clients().await, "late").await
}

#[tokio::test]
async fn a_claim_whose_answer_came_too_late_is_granted_on_the_retry() {
    let table = table().await;
    let late = DynamoDedupeStore::new(late_client().await, DedupeConfig::new(table.clone()));
    let outcome = late.claim("k", true).await.unwrap();
    let ClaimOutcome::Claimed(token) = outcome else {
        panic!("expected the claim granted, got {outcome:?}");
    };
    // The claim is really held, and completing it under its token is a plain completion.
    let direct = DynamoDedupeStore::new(moto_clients().await.dynamodb, DedupeConfig::new(table));
    assert!(matches!(
        direct.claim("k", true).await.unwrap(),
        ClaimOutcome::Exists(_)
    ));
    assert_eq!(
        direct.complete("k", &token).await.unwrap(),
        Completion::Completed
    );
}

#[tokio::test]
async fn a_checkpoint_whose_answer_came_too_late_succeeds_on_the_retry() {
    let table = table().await;
    let direct = DynamoCursorStore::new(moto_clients().await.dynamodb, &table);
    let lease = Duration::from_secs(60);
    let held = direct
        .acquire("orders", "run-1", lease)
        .await
        .unwrap()
        .expect("a free lease");
    let late = DynamoCursorStore::new(late_client().await, &table);
    let value = "2025-01-01T00:00:00.000Z";
    // With a window start and a walk: the retry knows its own write by them too.
    let (window, walk) = ("2024-12-31T00:00:00.000Z", a_walk());
    let moved = late
        .checkpoint(
            "orders",
            "run-1",
            held.version,
            value,
            Some(window),
            Some(&walk),
        )
        .await
        .unwrap();
    assert_eq!(moved.version, held.version + 1);
    assert_eq!(moved.value.as_deref(), Some(value));
    assert_eq!(moved.window_start.as_deref(), Some(window));
    assert_eq!(moved.walk.as_deref(), Some(walk.as_str()));
    // Moved once, not twice, and still ours: the next checkpoint goes on from there.
    let read = direct.read("orders").await.unwrap().expect("the cursor");
    assert_eq!(read.version, held.version + 1);
    direct
        .checkpoint(
            "orders",
            "run-1",
            read.version,
            "2025-01-02T00:00:00.000Z",
            None,
            None,
        )
        .await
        .unwrap();
}
