//! A self-signed certificate for `localhost`, a TLS acceptor that serves it on loopback, and the
//! way a test gets the certificate trusted: the HTTPS clients' tests (`tradecloud-client`,
//! `tcrelay-aws`) each check that their client refuses the certificate with the system's roots
//! and accepts it once it is among them.
//!
//! The system's roots on Linux come from `SSL_CERT_FILE` when it is set (rustls-native-certs,
//! rustls-platform-verifier). Setting it inside the test process would need `unsafe`
//! (`std::env::set_var`), which the workspace forbids, and would leak into the other tests; so
//! the test runs itself again as a child process with `SSL_CERT_FILE` naming the certificate
//! ([`run_trusting`]), and the child finds it with [`trusted_in_child`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Set in the child: the private key of the certificate `SSL_CERT_FILE` names.
const KEY_ENV: &str = "TCRELAY_TEST_TLS_KEY";

/// A certificate and its key as PEM files in a directory of their own, removed on drop.
pub struct SelfSigned {
    dir: PathBuf,
    /// The certificate (PEM), for `localhost`.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl SelfSigned {
    /// A fresh self-signed certificate for `localhost`, written under the temporary directory
    /// in a directory named after `label` and this process.
    pub fn generate(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{label}-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).expect("certificate written");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key written");
        Self { dir, cert, key }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS acceptor serving the certificate and key (PEM files), on ring.
pub fn acceptor(cert: &Path, key: &Path) -> TlsAcceptor {
    let cert = CertificateDer::from_pem_file(cert).expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("certificate and key match");
    TlsAcceptor::from(Arc::new(server))
}

/// In the child [`run_trusting`] started: the certificate (now among the trusted roots) and
/// its key. `None` in the test's own process.
pub fn trusted_in_child() -> Option<(PathBuf, PathBuf)> {
    match (std::env::var_os("SSL_CERT_FILE"), std::env::var_os(KEY_ENV)) {
        (Some(cert), Some(key)) => Some((cert.into(), key.into())),
        _ => None,
    }
}

/// Runs the test `name` (its full path in the test binary) again in a child process that
/// trusts `certificate`, and panics unless that run passed.
pub fn run_trusting(name: &str, certificate: &SelfSigned) {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SSL_CERT_FILE", &certificate.cert)
        .env(KEY_ENV, &certificate.key)
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child (certificate trusted) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
