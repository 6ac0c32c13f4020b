//! The consumer contract (docs/consumers.md) from the consumer's side: the relay on moto, its
//! queues read by the official Amazon SQS Extended Client for Python through
//! `examples/python/consume.py`, on a standard queue, a FIFO queue, a claim-checked message
//! (a real event padded with an unknown field to 1.2 MB) and the quarantine queue.
//!
//! What the consumer reads must be, byte for byte in its numbers, what the relay produced: the
//! same requests go through the same relay on SQLite, and the envelopes must be equal apart from
//! `receivedAt`. Every envelope is checked against docs/envelope.schema.json with Python's
//! jsonschema, and every field it has must be one the schema documents.
//!
//! Needs moto (`TCRELAY_TEST_MOTO_URL`) and the venv of scripts/test.sh (`TCRELAY_TEST_VENV`);
//! fails loudly without them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tcrelay::{Ports, RelayParts, RunningServer, ServeOptions};
use tcrelay_aws::testing::{MotoOptions, MotoResources};
use tcrelay_aws::{AwsPorts, AwsSettings};
use tcrelay_core::ports::QuarantinedRequest;
use tcrelay_core::{EventFilter, WebhookCredentials, WebhookSettings};
use tcrelay_sqlite::SqliteStore;

const USER: &str = "tradecloud";
const PASSWORD: &str = "consumer-test-password";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("apps/tcrelay sits two levels below the workspace root")
        .to_path_buf()
}

fn python() -> PathBuf {
    let venv = std::env::var("TCRELAY_TEST_VENV").unwrap_or_else(|_| {
        panic!(
            "TCRELAY_TEST_VENV is not set: this test runs the Python consumer example with the \
             venv of scripts/test.sh (source scripts/venv.sh, then export \
             TCRELAY_TEST_VENV=$PWD/.venv)"
        )
    });
    Path::new(&venv).join("bin/python")
}

/// The webhook bodies sent, with the route each goes to: real Tradecloud shapes from the
/// fixture corpus, in JSON and tXML, and one over SQS's 1 MiB limit.
fn requests() -> Vec<(&'static str, &'static str, String, Vec<u8>)> {
    let fixtures = workspace_root().join("tests/fixtures/webhook");
    let read = |name: &str| {
        std::fs::read(fixtures.join(name)).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
    };
    let mut all = Vec::new();
    for (name, route) in [
        ("order-issued-by-buyer.json", "orders"),
        ("simple-order-event.json", "orders"),
        ("quoted-numbers.json", "orders"),
        ("unknown-fields-and-event.json", "orders"),
        ("order-documents-attached.json", "order-documents"),
        ("shipment-issued.json", "shipments"),
        ("supplier-proposal.xml", "orders"),
        ("single-delivery-split-line.xml", "orders"),
        // 1.1 MB pretty-printed, under 1 MiB as a compact envelope: no claim check.
        ("order-500-lines.json", "orders"),
    ] {
        let content_type = if name.ends_with(".xml") {
            "application/xml"
        } else {
            "application/json"
        };
        let mut body = read(name);
        if name == "unknown-fields-and-event.json" {
            // Padded with an unknown field (passed through) to 1.2 MB: claim-checked through S3.
            let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            value["padding"] = "x".repeat(1_200_000).into();
            body = serde_json::to_vec(&value).unwrap();
        }
        all.push((name, route, content_type.to_owned(), body));
    }
    all
}

/// An authenticated request that is not a Tradecloud message: answered 400 and quarantined.
const MALFORMED: &[u8] = b"{\"eventName\": \"OrderIssuedByBuyer\", \"orderEvent\": [1.10, ";

fn settings() -> WebhookSettings {
    let mut credentials = WebhookCredentials::new();
    credentials.add_basic(USER, PASSWORD);
    WebhookSettings {
        credentials,
        filter: EventFilter::allow_all(),
        max_body_bytes: 8 * 1024 * 1024,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 1,
        request_budget: std::time::Duration::from_secs(25),
    }
}

async fn start_relay(ports: Ports) -> RunningServer {
    tcrelay::start(
        RelayParts {
            webhook: settings(),
            ports,
            api: None,
            poll_api: None,
            poll: Default::default(),
        },
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: None,
            limits: Default::default(),
        },
    )
    .await
    .expect("start the relay")
}

/// Sends every request and the malformed one; asserts the answers (2xx, then 400).
async fn deliver(server: &RunningServer) {
    let client = reqwest::Client::new();
    let addr = server.local_addr();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let post = |route: &str, content_type: &str, body: Vec<u8>| {
        client
            .post(format!("http://{addr}/webhook/{route}"))
            .header("authorization", format!("Basic {auth}"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (name, route, content_type, body) in requests() {
        let answer = post(route, &content_type, body).await.expect("POST");
        assert!(
            answer.status().is_success(),
            "{name}: {} {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
    }
    let answer = post("orders", "application/json", MALFORMED.to_vec())
        .await
        .expect("POST");
    assert_eq!(answer.status(), 400, "a malformed body is refused");
}

/// One message as consume.py --jsonl prints it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consumed {
    body: String,
    attributes: BTreeMap<String, Option<String>>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

/// Reads (and deletes) every message of a queue with the official extended client.
fn consume(moto_url: &str, queue_url: &str, quarantine: bool) -> Vec<Consumed> {
    let script = workspace_root().join("examples/python/consume.py");
    let mut command = Command::new(python());
    command
        .arg(&script)
        .args(["--queue-url", queue_url, "--jsonl", "--empty-receives", "3"])
        // The extended client builds its S3 client from the environment, as a consumer's would.
        .env("AWS_ENDPOINT_URL", moto_url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stderr(Stdio::inherit());
    if quarantine {
        command.arg("--quarantine");
    }
    let output = command.output().expect("run consume.py");
    assert!(
        output.status.success(),
        "consume.py failed: {}",
        output.status
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Checks envelopes against docs/envelope.schema.json with Python's jsonschema.
fn assert_conform_to_schema(envelopes: &[&str]) {
    let root = workspace_root();
    let mut child = Command::new(python())
        .arg(root.join("examples/python/validate.py"))
        .arg(root.join("docs/envelope.schema.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run validate.py");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = envelopes.iter().map(|e| format!("{e}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("validate.py");
    writer.join().unwrap().expect("write to validate.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "envelopes do not conform to the schema:\n{}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{} envelopes checked, 0 invalid", envelopes.len())),
        "{stdout}"
    );

    // Every field the relay writes is one the schema documents (the schema itself lets
    // consumers ignore new fields, so it would not notice an undocumented one).
    let schema: Value = serde_json::from_slice(
        &std::fs::read(root.join("docs/envelope.schema.json")).expect("read the schema"),
    )
    .expect("the schema is JSON");
    let documented = schema["properties"].as_object().expect("properties");
    for envelope in envelopes {
        let value: Value = serde_json::from_str(envelope).unwrap();
        for field in value.as_object().unwrap().keys() {
            assert!(
                documented.contains_key(field),
                "envelope field {field:?} is not in docs/envelope.schema.json"
            );
        }
    }
}

/// The envelope without `receivedAt` (the time of each run), keyed by its dedupe key.
fn by_dedupe_key<'a>(bodies: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for body in bodies {
        let mut value: Value = serde_json::from_str(body).expect("an envelope is JSON");
        let object = value.as_object_mut().expect("an envelope is an object");
        assert!(object.remove("receivedAt").is_some(), "receivedAt missing");
        let key = object["dedupeKey"].as_str().expect("dedupeKey").to_owned();
        assert!(
            map.insert(key.clone(), value).is_none(),
            "{key} twice on the queue"
        );
    }
    map
}

/// What the relay on SQLite produced for the same requests.
async fn expected_envelopes() -> (Vec<String>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("expected.db")).unwrap();
    let server = start_relay(Ports::sqlite(&store)).await;
    deliver(&server).await;
    server.shutdown().await.unwrap();
    let envelopes = store
        .export_page(0, 1000, true)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.json)
        .collect();
    let quarantined = store.quarantine_count().await.unwrap() as usize;
    (envelopes, quarantined)
}

async fn relay_to_moto(fifo: bool) -> MotoResources {
    let aws = MotoResources::create(
        if fifo {
            "consumer-fifo"
        } else {
            "consumer-std"
        },
        MotoOptions {
            fifo,
            quarantine: true,
            ..MotoOptions::from_env()
        },
    )
    .await;
    let resources = AwsSettings {
        queue_url: aws.queue_url.clone(),
        queue_fifo: fifo,
        quarantine_queue_url: Some(aws.quarantine().to_owned()),
        dedupe_table: aws.table.clone(),
        claim_check_bucket: Some(aws.bucket.clone()),
        dedupe_ttl: Duration::from_secs(86_400),
        in_progress_expiry: Duration::from_secs(60),
        endpoint_url: Some(aws.url.clone()),
        claim_check: Default::default(),
    };
    let server = start_relay(
        Ports::aws(AwsPorts::with_fixed_thresholds(
            aws.clients.clone(),
            &resources,
        ))
        .unwrap(),
    )
    .await;
    deliver(&server).await;
    server.shutdown().await.unwrap();
    aws
}

async fn consumer_reads_what_the_relay_wrote(fifo: bool) {
    let (expected, expected_quarantined) = expected_envelopes().await;
    assert!(expected.len() >= 8, "the requests gave {}", expected.len());
    assert_eq!(expected_quarantined, 1);

    let aws = relay_to_moto(fifo).await;
    let consumed = consume(&aws.url, &aws.queue_url, false);

    // The claim check really happened: the large envelope went through S3, as its pointer.
    let objects = aws
        .clients
        .s3
        .list_objects_v2()
        .bucket(&aws.bucket)
        .send()
        .await
        .expect("list the bucket");
    // consume.py leaves payloads to the lifecycle rule (a message whose delete fails must not
    // come back pointing at a deleted payload): the large envelope's is there.
    assert_eq!(
        objects.key_count(),
        Some(1),
        "the claim-checked payload in S3"
    );
    let large = consumed
        .iter()
        .filter(|m| m.body.len() > tcrelay_aws::SQS_MAX_MESSAGE_BYTES)
        .count();
    assert_eq!(
        large, 1,
        "one envelope over 1 MiB, read through its claim check"
    );

    let bodies: Vec<&str> = consumed.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        by_dedupe_key(bodies.iter().copied()),
        by_dedupe_key(expected.iter().map(String::as_str)),
        "the consumer reads exactly what the relay produced"
    );
    assert_conform_to_schema(&bodies);

    // Digit for digit: the decimals of the fixtures arrive as written, trailing zeros included.
    let order = consumed
        .iter()
        .find(|m| {
            m.body
                .contains("\"id\":\"0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b-PO1024\"")
        })
        .expect("the simple order event");
    assert!(order.body.contains("\"value\":87.30"), "{}", order.body);

    for message in &consumed {
        let envelope: Value = serde_json::from_str(&message.body).unwrap();
        let attribute = |name: &str| message.attributes.get(name).cloned().flatten();
        assert_eq!(attribute("kind").as_deref(), envelope["kind"].as_str());
        assert_eq!(attribute("id").as_deref(), envelope["id"].as_str());
        assert_eq!(attribute("source").as_deref(), Some("webhook-post"));
        assert_eq!(
            attribute("eventName").as_deref(),
            envelope["eventName"].as_str()
        );
        // The extended client removes its size attribute once it has followed the pointer.
        assert!(!message.attributes.contains_key("ExtendedPayloadSize"));
        if fifo {
            let kind = envelope["kind"].as_str().unwrap();
            let class = if kind == "single-delivery-order" {
                "order"
            } else {
                kind
            };
            assert_eq!(
                message.group_id.as_deref(),
                Some(format!("{class}:{}", envelope["id"].as_str().unwrap()).as_str())
            );
            let key = envelope["dedupeKey"].as_str().unwrap();
            let id = message.deduplication_id.as_deref().expect("FIFO dedup id");
            assert_eq!(id.len(), 64, "SHA-256 in hex");
            assert_eq!(id, sha256_hex(key));
        } else {
            assert_eq!(message.group_id, None);
        }
    }

    let quarantined = consume(&aws.url, aws.quarantine(), true);
    assert_eq!(quarantined.len(), expected_quarantined);
    let request: QuarantinedRequest =
        serde_json::from_str(&quarantined[0].body).expect("a quarantined request");
    assert_eq!(request.body, MALFORMED);
    assert_eq!(request.uri, "/webhook/orders");
    assert_eq!(
        quarantined[0]
            .attributes
            .get("kind")
            .cloned()
            .flatten()
            .as_deref(),
        Some("quarantined-request")
    );
    assert!(
        request
            .headers
            .iter()
            .all(|(name, _)| name != "authorization"),
        "credentials are never kept"
    );
}

fn sha256_hex(text: &str) -> String {
    // The same digest the relay computes, through the envelope's own method.
    let envelope = tcrelay_core::Envelope {
        schema: String::new(),
        source: tcrelay_core::Source::Poll,
        kind: tradecloud_model::ObjectKind::Order,
        event_name: None,
        id: String::new(),
        version: None,
        last_updated_at: None,
        message_id: None,
        dedupe_key: text.to_owned(),
        received_at: String::new(),
        format: tradecloud_model::Format::Json,
        changed_lines: None,
        payload: Value::Null.into(),
    };
    envelope.deduplication_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_extended_client_reads_a_standard_queue() {
    consumer_reads_what_the_relay_wrote(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_extended_client_reads_a_fifo_queue() {
    consumer_reads_what_the_relay_wrote(true).await;
}

#[test]
fn consume_example_refuses_unknown_envelope_schemas() {
    // The example's handle() is what a consumer copies: it must refuse a future schema rather
    // than import it wrongly.
    let output = Command::new(python())
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); import consume\n\
             consume.handle(consume.parse('{\"schema\":\"tradecloud-relay/1\",\"kind\":\"order\",\
             \"id\":\"o1\",\"source\":\"poll\",\"version\":1}'))\n\
             try:\n    consume.handle({'schema': 'tradecloud-relay/2'})\n\
             except ValueError as e:\n    print('refused:', e)\n",
        )
        .arg(workspace_root().join("examples/python"))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("order o1 - (version 1, via poll)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: unknown envelope schema 'tradecloud-relay/2'"),
        "{stdout}"
    );
}
