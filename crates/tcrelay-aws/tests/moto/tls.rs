//! The SDK clients' HTTPS end to end (no moto): `tcrelay_aws::https_client`, rustls with ring as
//! the crypto provider and the system's root certificates, against a loopback server with a
//! self-signed certificate that answers every request as SQS answers an empty ListQueues.
//!
//! The system's roots on Linux come from `SSL_CERT_FILE` when it is set (rustls-native-certs).
//! Setting it inside this process would need `unsafe` (`std::env::set_var`), which the workspace
//! forbids, and would leak into the other tests: so the test runs itself again as a child
//! process with `SSL_CERT_FILE` naming the certificate, and there the call must succeed. In this
//! process, with the ordinary roots, the same server must be refused.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use aws_sdk_sqs::error::SdkError;
use tcrelay_aws::{AwsClients, AwsConfigOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Set in the child: the private key of the certificate `SSL_CERT_FILE` names.
const KEY_ENV: &str = "TCRELAY_TEST_TLS_KEY";
/// This test's name, for the child's filter.
const NAME: &str = "tls::sdk_https_with_trusted_and_untrusted_certificates";

/// What SQS (JSON protocol) answers to a ListQueues without queues.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
content-length: 2\r\nconnection: close\r\n\r\n{}";

/// Serves HTTPS on 127.0.0.1 with the certificate and key (PEM files), one request per
/// connection; returns the endpoint URL, by the name the certificate is for.
async fn start_tls(cert: &Path, key: &Path) -> String {
    let cert = CertificateDer::from_pem_file(cert).unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
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
    if let (Some(cert), Some(key)) = (std::env::var_os("SSL_CERT_FILE"), std::env::var_os(KEY_ENV))
    {
        // The child: the certificate is among the trusted roots.
        let endpoint = start_tls(Path::new(&cert), Path::new(&key)).await;
        let listed = sqs(&endpoint).await.list_queues().send().await.unwrap();
        assert!(listed.queue_urls().is_empty());
        return;
    }

    let dir = std::env::temp_dir().join(format!("tcrelay-aws-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();

    // Untrusted here: the ordinary roots do not include a fresh self-signed certificate.
    let endpoint = start_tls(&cert, &key).await;
    let err = sqs(&endpoint).await.list_queues().send().await.unwrap_err();
    let chain = format!("{err:?}");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)) && chain.to_lowercase().contains("certificate"),
        "{chain}"
    );

    let out = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("SSL_CERT_FILE", &cert)
        .env(KEY_ENV, &key)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child (certificate trusted) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
