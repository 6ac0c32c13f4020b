//! Helpers shared by the end-to-end tests in `tests/`: a moto server of the test's own (so a
//! test may stop and resume it), a webhook served on a loopback socket, and the fixture corpus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository's `tests/fixtures` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Reads one fixture file, e.g. `webhook/order-issued-by-buyer.json`.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = fixtures_dir().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", full.display()))
}

/// A moto server process owned by one test, on a free loopback port.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts `moto_server` from the virtual environment `scripts/test.sh` made
    /// (`TCRELAY_TEST_VENV`). Panics with instructions when it is not there: these tests must
    /// never be skipped silently.
    pub async fn start() -> Moto {
        let venv = std::env::var("TCRELAY_TEST_VENV").unwrap_or_else(|_| {
            panic!(
                "TCRELAY_TEST_VENV is not set: run the tests with scripts/test.sh, which installs \
                 moto's server into .venv and points the tests at it"
            )
        });
        let port = free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/moto_server.py");
        let child = Command::new(format!("{venv}/bin/python"))
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto ({}): {e}", script.display()));
        let url = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, url };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not listen on port {port} within 10 s");
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never answered,
    /// as with an AWS service that hangs. Its state survives, unlike a restart.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        signal(self.child.id(), "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill {sig} {pid} failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Serves `router` on a free loopback port until the test ends; returns its address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}
