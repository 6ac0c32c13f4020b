//! Helpers shared by the integration tests: a quick simulator configuration, an HTTP client,
//! and a webhook receiver over raw TCP that can answer any status or drop the connection.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tradecloud_sim::{RetryPolicy, SimConfig, Simulator};

pub const USER: &str = "buyer-integration@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// A small world and a fast sender, for tests.
pub fn config(seed: u64) -> SimConfig {
    SimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        retry: RetryPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(80),
            ..RetryPolicy::fast()
        },
        ..SimConfig::seeded(seed)
    }
}

pub async fn start(seed: u64) -> Simulator {
    Simulator::start(config(seed))
        .await
        .expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

/// Logs in and returns (access token, refresh token).
pub async fn login(sim: &Simulator) -> (String, String) {
    let r = client()
        .get(format!("{}/authentication/login", sim.base_url()))
        .header("Authorization", basic())
        .send()
        .await
        .expect("login request");
    assert_eq!(r.status(), 200, "login answers 200");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .unwrap_or_else(|| panic!("{n} header"))
            .to_str()
            .expect("ascii")
            .to_string()
    };
    (h("Set-Authorization"), h("Set-Refresh-Token"))
}

/// POSTs a poll/search body with the given Authorization header; returns status and JSON.
pub async fn post_json(url: &str, auth: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(url)
        .header("Authorization", auth)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// What the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Wait this many milliseconds, then answer the status.
    Slow(u64, u16),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub answer: Answer,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Decides the answer from the request and how many earlier requests had the same key.
pub type Decide = Arc<dyn Fn(&Received, usize) -> Answer + Send + Sync>;

/// A webhook receiver on 127.0.0.1:0 speaking just enough HTTP/1.1 (one request per
/// connection), so it can also drop connections mid-request, which an HTTP framework won't.
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// `key` groups requests for the `Decide` count (e.g. path + message id).
    pub async fn start(key: fn(&Received) -> String, decide: Decide) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log2 = Arc::clone(&log);
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, counts, decide) =
                    (Arc::clone(&log2), Arc::clone(&counts), Arc::clone(&decide));
                tokio::spawn(async move {
                    let _ = serve(stream, log, counts, key, decide).await;
                });
            }
        });
        Self { addr, log, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: fn(&Received) -> String,
    decide: Decide,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Ok(());
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or("").split(' ');
    let method = start.next().unwrap_or("").to_string();
    let target = start.next().unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut received = Received {
        method,
        target,
        headers,
        body: buf[head_end..head_end + length].to_vec(),
        answer: Answer::Drop,
    };
    let k = key(&received);
    let seen = {
        let mut counts = counts.lock().unwrap();
        let c = counts.entry(k).or_insert(0);
        *c += 1;
        *c - 1
    };
    received.answer = decide(&received, seen);
    log.lock().unwrap().push(received.clone());
    match received.answer {
        Answer::Drop => Ok(()),
        Answer::Slow(ms, status) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let response =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            // The sender may have given up already; a failed write is expected then.
            let _ = stream.write_all(response.as_bytes()).await;
            Ok(())
        }
        Answer::Status(status) => {
            let response =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await
        }
    }
}
