//! The operator commands on `--backend aws`, the built binary against moto: `doctor` on the
//! resources the settings name, `dlq redrive` with the DLQ found from the queue's
//! RedrivePolicy, and `cursor set|show` on the dedupe table. Needs `TCRELAY_TEST_MOTO_URL`
//! (scripts/test.sh).

use crate::common;

use common::{stdout, tcrelay};
use tcrelay_aws::testing::{
    MotoOptions, MotoResources, attach_dead_letter_queue, create_queue, create_table, moto_clients,
    moto_url, receive_all,
};

#[tokio::test]
async fn doctor_checks_every_resource_and_names_the_one_missing() {
    let aws = MotoResources::create(
        "doctor",
        MotoOptions {
            fifo: true,
            quarantine: true,
            ..MotoOptions::from_env()
        },
    )
    .await;
    let env = |bucket: &str| {
        vec![
            ("TCRELAY_QUEUE_URL", aws.queue_url.clone()),
            ("TCRELAY_QUARANTINE_QUEUE_URL", aws.quarantine().to_owned()),
            ("TCRELAY_DEDUPE_TABLE", aws.table.clone()),
            ("TCRELAY_CLAIM_CHECK_BUCKET", bucket.to_owned()),
            ("TCRELAY_AWS_ENDPOINT_URL", aws.url.clone()),
        ]
    };
    let run = |env: Vec<(&'static str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        tcrelay(&["--backend", "aws", "doctor"], &env)
    };
    let o = run(env(&aws.bucket));
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines.iter().all(|l| l.starts_with("ok    ")), "{text}");
    assert!(text.contains("key schema pk (HASH)"), "{text}");
    assert!(text.contains("TTL on expiresAt"), "{text}");
    assert!(text.contains("FIFO, MaximumMessageSize"), "{text}");

    let o = run(env("no-such-bucket-tcrelay"));
    let text = stdout(&o);
    assert!(!o.status.success(), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("bucket no-such-bucket-tcrelay"),
        "{text}"
    );

    // A queue that is not there is named too.
    let mut gone = env(&aws.bucket);
    gone[1].1 = format!("{}-gone", aws.quarantine());
    let o = run(gone);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("FAIL  quarantine queue"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn dlq_redrive_finds_the_dlq_and_moves_everything_back() {
    let clients = moto_clients().await;
    let dlq = create_queue(&clients, "cli-dlq", false).await;
    let queue = create_queue(&clients, "cli-main", false).await;
    attach_dead_letter_queue(&clients, &queue, &dlq).await;
    for i in 0..3 {
        clients
            .sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
    let url = moto_url();
    let env = [
        ("TCRELAY_QUEUE_URL", queue.as_str()),
        ("TCRELAY_AWS_ENDPOINT_URL", url.as_str()),
    ];
    let o = tcrelay(
        &["--backend", "aws", "dlq", "redrive", "--min-age", "0"],
        &env,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("moved 3 message(s)"), "{}", stdout(&o));
    let mut bodies: Vec<String> = receive_all(&clients.sqs, &queue)
        .await
        .iter()
        .map(|m| m.body().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
    assert!(receive_all(&clients.sqs, &dlq).await.is_empty());

    let o = tcrelay(&["dlq", "redrive"], &env);
    assert!(!o.status.success(), "SQS only");
}

#[tokio::test]
async fn cursor_set_and_show_work_on_the_dedupe_table() {
    let clients = moto_clients().await;
    let table = create_table(&clients, "cli-cursor").await;
    let url = moto_url();
    let env = [
        ("TCRELAY_DEDUPE_TABLE", table.as_str()),
        ("TCRELAY_AWS_ENDPOINT_URL", url.as_str()),
    ];
    let at = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let o = tcrelay(&["--backend", "aws", "cursor", "set", "orders", &at], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains(&at), "{}", stdout(&o));
    let o = tcrelay(&["--backend", "aws", "cursor", "show", "--json"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let value = |stream: &str| {
        shown
            .iter()
            .find(|c| c["stream"] == stream)
            .map(|c| c["value"].clone())
    };
    assert_eq!(value("orders"), Some(serde_json::json!(at)), "{shown:?}");
    assert_eq!(
        value("shipments"),
        Some(serde_json::Value::Null),
        "{shown:?}"
    );
}
