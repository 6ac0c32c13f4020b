//! The SDK clients' HTTPS end to end (no moto): `tcrelay_aws::https_client`, rustls with ring as
//! the crypto provider and the system's root certificates, against a loopback server with a
//! self-signed certificate that answers every request as SQS answers an empty ListQueues.
//!
//! With the system's roots the server must be refused; in a child process that trusts the
//! certificate (`loopback_tls::run_trusting`), the call must succeed.

use std::path::Path;

use aws_sdk_sqs::error::SdkError;
use loopback_tls::SelfSigned;
use tcrelay_aws::{AwsClients, AwsConfigOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// This test's name, for the child's filter.
const NAME: &str = "tls::sdk_https_with_trusted_and_untrusted_certificates";

/// What SQS (JSON protocol) answers to a ListQueues without queues.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
content-length: 2\r\nconnection: close\r\n\r\n{}";

/// Serves HTTPS on 127.0.0.1 with the certificate and key (PEM files), one request per
/// connection; returns the endpoint URL, by the name the certificate is for.
async fn start_tls(cert: &Path, key: &Path) -> String {
    let acceptor = loopback_tls::acceptor(cert, key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake (the untrusted case) ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                read_request(&mut tls).await;
                let _ = tls.write_all(RESPONSE).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}")
}

/// Reads one HTTP/1.1 request: the head, then `content-length` bytes of body.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() >= end + 4 + length {
            return;
        }
    }
}

/// An SQS client for `endpoint`, one attempt per call.
async fn sqs(endpoint: &str) -> aws_sdk_sqs::Client {
    let mut options = AwsConfigOptions::emulator(endpoint);
    options.max_attempts = Some(1);
    AwsClients::new(&options.load().await).sqs
}

#[tokio::test]
async fn sdk_https_with_trusted_and_untrusted_certificates() {
    if let Some((cert, key)) = loopback_tls::trusted_in_child() {
        // The child: the certificate is among the trusted roots.
        let endpoint = start_tls(&cert, &key).await;
        let listed = sqs(&endpoint).await.list_queues().send().await.unwrap();
        assert!(listed.queue_urls().is_empty());
        return;
    }

    let certificate = SelfSigned::generate("tcrelay-aws");

    // Untrusted here: the ordinary roots do not include a fresh self-signed certificate.
    let endpoint = start_tls(&certificate.cert, &certificate.key).await;
    let err = sqs(&endpoint).await.list_queues().send().await.unwrap_err();
    let chain = format!("{err:?}");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)) && chain.to_lowercase().contains("certificate"),
        "{chain}"
    );

    loopback_tls::run_trusting(NAME, &certificate);
}
