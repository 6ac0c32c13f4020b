//! `tcrelay serve` against clients that hold connections (SECURITY.md): a half-sent
//! request line, an idle kept-alive connection, and more connections than the cap. Over real
//! TCP on loopback, with the SQLite ports.

use crate::common;

use std::time::Duration;

use tcrelay::{RunningServer, ServerLimits};
use tcrelay_sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond every limit used here: a connection still open then was never closed.
const NEVER: Duration = Duration::from_secs(10);

async fn serve(limits: ServerLimits) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("limits.db")).unwrap();
    (common::start_sqlite(&store, limits).await, dir)
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(NEVER, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    received
}

const GET_UNAUTHENTICATED: &[u8] =
    b"GET /webhook/orders/o-1 HTTP/1.1\r\nHost: relay\r\nConnection: keep-alive\r\n\r\n";

#[tokio::test]
async fn a_half_sent_request_line_is_closed_after_the_header_timeout() {
    let (server, _dir) = serve(ServerLimits {
        header_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    until_closed(&mut stream).await;
    // A connection that never sends a byte is no different.
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    until_closed(&mut silent).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (server, _dir) = serve(ServerLimits {
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(GET_UNAUTHENTICATED).await.unwrap();
    let answer = until_closed(&mut stream).await;
    // Answered first (keep-alive asked for), then closed for idling.
    assert!(answer.starts_with(b"HTTP/1.1 401"), "{answer:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_is_free() {
    let (server, _dir) = serve(ServerLimits {
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        max_connections: 2,
    })
    .await;
    let addr = server.local_addr();
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /webhook HTTP/1.1\r\n").await.unwrap();
        holders.push(s);
    }
    // The kernel accepts the third connection into the backlog; the server does not serve it.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET_UNAUTHENTICATED).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // One holder leaves: its slot goes to the waiting connection.
    drop(holders.pop());
    let n = tokio::time::timeout(NEVER, third.read(&mut buf))
        .await
        .expect("answered once a slot was free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 401"), "{:?}", &buf[..n]);
    drop(holders);
    server.shutdown().await.unwrap();
}

#[test]
fn the_limits_are_read_from_the_environment_and_refuse_zero() {
    let env = tcrelay_core::env::env_map(&[
        ("TCRELAY_HEADER_TIMEOUT_MS", "1500"),
        ("TCRELAY_IDLE_TIMEOUT_MS", "2500"),
        ("TCRELAY_MAX_CONNECTIONS", "7"),
    ]);
    assert_eq!(
        ServerLimits::from_env_map(&env).unwrap(),
        ServerLimits {
            header_timeout: Duration::from_millis(1500),
            idle_timeout: Duration::from_millis(2500),
            max_connections: 7,
        }
    );
    assert_eq!(
        ServerLimits::from_env_map(&tcrelay_core::env::env_map(&[])).unwrap(),
        ServerLimits::default()
    );
    for var in [
        "TCRELAY_HEADER_TIMEOUT_MS",
        "TCRELAY_IDLE_TIMEOUT_MS",
        "TCRELAY_MAX_CONNECTIONS",
    ] {
        let err =
            ServerLimits::from_env_map(&tcrelay_core::env::env_map(&[(var, "0")])).unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
}
