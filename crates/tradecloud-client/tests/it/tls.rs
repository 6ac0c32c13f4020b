//! The client's HTTPS end to end: reqwest on rustls with ring as the crypto provider (the client
//! installs it; the workspace's reqwest has none) and the system's root certificates, against the
//! fake served over TLS on loopback with a self-signed certificate.
//!
//! The system's roots on Linux come from `SSL_CERT_FILE` when it is set (rustls-native-certs).
//! Setting it inside this process would need `unsafe` (`std::env::set_var`), which the workspace
//! forbids, and would leak into the other tests: so the test runs itself again as a child
//! process with `SSL_CERT_FILE` naming the certificate, and there the handshake must succeed.
//! In this process, with the ordinary roots, the same server must be refused.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tradecloud_client::{ClientError, TradecloudClient};

use crate::common::{Fake, config, handle};

/// Set in the child: the private key of the certificate `SSL_CERT_FILE` names.
const KEY_ENV: &str = "TCRELAY_TEST_TLS_KEY";
/// This test's name, for the child's filter.
const NAME: &str = "tls::https_with_trusted_and_untrusted_certificates";

/// Serves the fake over HTTPS on 127.0.0.1 with the certificate and key (PEM files); returns
/// the client's base URL, by the name the certificate is for.
async fn start_tls(fake: Fake, cert: &Path, key: &Path) -> String {
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
    let app = Router::new().fallback(handle).with_state(Arc::new(fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A refused handshake (the untrusted case) ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    format!("https://localhost:{port}/v2")
}

#[tokio::test]
async fn https_with_trusted_and_untrusted_certificates() {
    if let (Some(cert), Some(key)) = (std::env::var_os("SSL_CERT_FILE"), std::env::var_os(KEY_ENV))
    {
        // The child: the certificate is among the trusted roots.
        let base = start_tls(Fake::default(), Path::new(&cert), Path::new(&key)).await;
        let client = TradecloudClient::new(config(&base)).unwrap();
        let order = client.fetch_order("o-1").await.unwrap();
        assert_eq!(order["id"], "o-1");
        return;
    }

    let dir = std::env::temp_dir().join(format!("tradecloud-client-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();

    // Untrusted here: the ordinary roots do not include a fresh self-signed certificate.
    let base = start_tls(Fake::default(), &cert, &key).await;
    let client = TradecloudClient::new(config(&base)).unwrap();
    let err = client.fetch_order("o-1").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { reason } if reason.contains("certificate")),
        "{err:?}"
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
