//! The client's HTTPS end to end: reqwest on rustls with ring as the crypto provider (the client
//! installs it; the workspace's reqwest has none) and the system's root certificates, against the
//! fake served over TLS on loopback with a self-signed certificate.
//!
//! With the system's roots the server must be refused; in a child process that trusts the
//! certificate (`loopback_tls::run_trusting`), the handshake must succeed.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use loopback_tls::SelfSigned;
use tradecloud_client::{ClientError, TradecloudClient};

use crate::common::{Fake, config, handle};

/// This test's name, for the child's filter.
const NAME: &str = "tls::https_with_trusted_and_untrusted_certificates";

/// Serves the fake over HTTPS on 127.0.0.1 with the certificate and key (PEM files); returns
/// the client's base URL, by the name the certificate is for.
async fn start_tls(fake: Fake, cert: &Path, key: &Path) -> String {
    let acceptor = loopback_tls::acceptor(cert, key);
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
    if let Some((cert, key)) = loopback_tls::trusted_in_child() {
        // The child: the certificate is among the trusted roots.
        let base = start_tls(Fake::default(), &cert, &key).await;
        let client = TradecloudClient::new(config(&base)).unwrap();
        let order = client.fetch_order("o-1").await.unwrap();
        assert_eq!(order["id"], "o-1");
        return;
    }

    let certificate = SelfSigned::generate("tradecloud-client");

    // Untrusted here: the ordinary roots do not include a fresh self-signed certificate.
    let base = start_tls(Fake::default(), &certificate.cert, &certificate.key).await;
    let client = TradecloudClient::new(config(&base)).unwrap();
    let err = client.fetch_order("o-1").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { reason } if reason.contains("certificate")),
        "{err:?}"
    );

    loopback_tls::run_trusting(NAME, &certificate);
}
