//! `tcrelay serve` takes its credentials from AWS Secrets Manager, as the Lambdas do
//! (docs/local-runner.md): here from moto's, named by `TCRELAY_AWS_ENDPOINT_URL`, with the
//! local SQLite backend. Needs `TCRELAY_TEST_MOTO_URL` (scripts/test.sh).

use crate::common;

use tcrelay_aws::testing::{create_secret, moto_url};

async fn post(addr: &str, user: &str, password: &str) -> u16 {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/webhook/order-issued-by-buyer.json"
    ))
    .unwrap();
    common::post_order(
        &reqwest::Client::new(),
        addr,
        &format!("{user}:{password}"),
        body,
    )
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
    let serve = common::serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_SECRET_ARN", &arn),
            ("TCRELAY_AWS_ENDPOINT_URL", &url),
        ],
    )
    .expect("tcrelay serve starts");
    assert_eq!(
        post(&serve.addr, "tradecloud", "from-the-secret").await,
        202
    );
    assert_eq!(post(&serve.addr, "tradecloud", "change-me").await, 401);
    serve.kill();

    // A secret that is not there stops start-up with the variable's name.
    let gone = format!("{arn}-gone");
    let exited = common::serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_SECRET_ARN", &gone),
            ("TCRELAY_AWS_ENDPOINT_URL", &url),
        ],
    )
    .expect_err("start-up fails");
    assert!(!exited.status.success());
    let stderr = &exited.stderr;
    assert!(stderr.contains("TCRELAY_WEBHOOK_SECRET_ARN"), "{stderr}");
}
