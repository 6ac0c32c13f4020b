//! `tcrelay serve` takes its credentials from AWS Secrets Manager, as the Lambdas do
//! (docs/local-runner.md): here from moto's, named by `TCRELAY_AWS_ENDPOINT_URL`, with the
//! local SQLite backend. Needs `TCRELAY_TEST_MOTO_URL` (scripts/test.sh).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use tcrelay_aws::testing::{create_secret, moto_url};

/// `tcrelay serve` with only these variables (and PATH); stdout piped.
fn serve(db: &str, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tcrelay"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .args([
            "--db",
            db,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--poll-interval",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcrelay serve")
}

/// The address from the first line `serve` prints.
fn listen_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listen line");
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned()
}

async fn post(addr: &str, user: &str, password: &str) -> u16 {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/webhook/order-issued-by-buyer.json"
    ))
    .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    reqwest::Client::new()
        .post(format!("http://{addr}/webhook/orders"))
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("serve answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn webhook_credentials_come_from_secrets_manager() {
    let url = moto_url();
    let arn = create_secret(
        &url,
        "tcrelay-serve",
        r#"{"basic": ["tradecloud:from-the-secret"]}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db");
    let db = db.to_str().unwrap();
    let mut child = serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_SECRET_ARN", &arn),
            ("TCRELAY_AWS_ENDPOINT_URL", &url),
        ],
    );
    let addr = listen_address(&mut child);
    assert_eq!(post(&addr, "tradecloud", "from-the-secret").await, 202);
    assert_eq!(post(&addr, "tradecloud", "change-me").await, 401);
    child.kill().unwrap();
    child.wait().unwrap();

    // A secret that is not there stops start-up with the variable's name.
    let gone = format!("{arn}-gone");
    let child = serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_SECRET_ARN", &gone),
            ("TCRELAY_AWS_ENDPOINT_URL", &url),
        ],
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TCRELAY_WEBHOOK_SECRET_ARN"), "{stderr}");
}
