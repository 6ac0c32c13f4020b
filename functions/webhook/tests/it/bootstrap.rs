//! The real `webhook` binary (what cargo-lambda packages as `bootstrap`) run as Lambda runs it:
//! a child process with Lambda's environment, fed the API Gateway v2 events in `events/` by the
//! Lambda Runtime API emulator, with moto's server as AWS (SQS, DynamoDB, S3) and the Tradecloud
//! simulator as Tradecloud. Checks the API Gateway responses, the queue and the quarantine queue.
//!
//! Needs `TCRELAY_TEST_MOTO_URL` (set by scripts/test.sh); fails loudly without it.
//! `LAMBDA_EMULATOR_ECHO=1` echoes the function's output while a test runs.

use std::time::Duration;

use base64::Engine as _;
use lambda_runtime_emulator::{ApiGatewayResponse, FunctionProcess, read_event};
use serde_json::Value;
use tcrelay_aws::testing::{
    MotoOptions, MotoResources, create_secret, receive_all, string_attribute,
};
use tradecloud_sim::{SimConfig, Simulator};

/// The order id the sample events name.
const ORDER_ID: &str = "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189";
/// API Gateway's limit on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// This test's own queue, quarantine queue, table and bucket in moto.
async fn aws() -> MotoResources {
    let options = MotoOptions {
        quarantine: true,
        ..MotoOptions::from_env()
    };
    MotoResources::create("webhook-boot", options).await
}

async fn simulator() -> Simulator {
    Simulator::start(SimConfig::seeded(17))
        .await
        .expect("simulator starts")
}

/// The variables the deployment template gives the function (docs/config.md).
fn webhook_env(aws: &MotoResources, sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        ("TRADECLOUD_API_URL", sim.base_url()),
        ("TRADECLOUD_USERNAME", sim.username().to_owned()),
        ("TRADECLOUD_PASSWORD", sim.password().to_owned()),
        // The credential the sample events carry.
        ("TCRELAY_WEBHOOK_BASIC", "tradecloud:change-me".to_owned()),
        ("TCRELAY_QUEUE_URL", aws.queue_url.clone()),
        ("TCRELAY_QUARANTINE_QUEUE_URL", aws.quarantine().to_owned()),
        ("TCRELAY_DEDUPE_TABLE", aws.table.clone()),
        ("TCRELAY_CLAIM_CHECK_BUCKET", aws.bucket.clone()),
        ("TCRELAY_AWS_ENDPOINT_URL", aws.url.clone()),
        ("RUST_LOG", "info".to_owned()),
    ]
}

/// A cold-started `webhook` process under its own Runtime API.
async fn cold_start(env: Vec<(&'static str, String)>) -> FunctionProcess {
    FunctionProcess::cold_start("webhook", env!("CARGO_BIN_EXE_webhook"), env)
        .await
        .expect("webhook starts")
}

/// The event in `events/<file>`.
fn event(file: &str) -> Value {
    read_event(format!(
        "{}/../../events/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// Invokes the function with an API Gateway v2 event and decodes its API Gateway response;
/// panics (with the function's output) on an error answer.
async fn invoke(function: &FunctionProcess, event: Value) -> ApiGatewayResponse {
    let response = function
        .invoke_for_response(event, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("invocation failed: {e}"));
    ApiGatewayResponse::from_response(&response).unwrap_or_else(|e| panic!("{e}"))
}

/// A message taken off a queue.
struct Message {
    body: Value,
    message: aws_sdk_sqs::types::Message,
}

impl Message {
    fn attribute(&self, name: &str) -> Option<&str> {
        string_attribute(&self.message, name)
    }
}

/// Every message on a queue (hidden for a minute once received), until it is empty.
async fn drain(aws: &MotoResources, queue_url: &str) -> Vec<Message> {
    receive_all(&aws.clients.sqs, queue_url)
        .await
        .into_iter()
        .map(|message| Message {
            body: serde_json::from_str(message.body().unwrap_or_default())
                .expect("queue message is JSON"),
            message,
        })
        .collect()
}

/// The function's stdout are its CloudWatch logs: JSON, one object a line.
async fn assert_json_logs(function: &FunctionProcess) {
    function
        .wait_for_stdout(Duration::from_secs(10), |lines| !lines.is_empty())
        .await;
    let lines = function.stdout_lines();
    assert!(!lines.is_empty(), "no output:\n{}", function.output());
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "stdout line is not a JSON object: {line}"
        );
    }
}

#[tokio::test]
async fn post_events_enqueue_once_and_every_copy_is_a_duplicate_even_after_a_cold_start() {
    let aws = aws().await;
    let sim = simulator().await;
    let function = cold_start(webhook_env(&aws, &sim)).await;

    let first = invoke(&function, event("post-order-json.json")).await;
    assert_eq!(first.status, 202, "{}", first.json());
    assert_eq!(first.json()["outcome"], "enqueued");
    assert_eq!(first.json()["id"], ORDER_ID);
    assert_eq!(first.json()["kind"], "order");
    assert!(
        first
            .headers
            .get("content-type")
            .is_some_and(|t| t.contains("json")),
        "{:?}",
        first.headers
    );
    let dedupe_key = first.json()["dedupeKey"].clone();
    assert!(dedupe_key.is_string(), "{}", first.json());

    // Tradecloud delivers the same event again: answered 200, not enqueued twice.
    let again = invoke(&function, event("post-order-json.json")).await;
    assert_eq!(
        (again.status, &again.json()["outcome"]),
        (200, &Value::from("duplicate")),
        "{}",
        again.json()
    );
    assert_eq!(again.json()["dedupeKey"], dedupe_key);
    // The same message in tXML (base64 body) is the same message.
    let txml = invoke(&function, event("post-order-txml.json")).await;
    assert_eq!(
        (txml.status, &txml.json()["outcome"]),
        (200, &Value::from("duplicate")),
        "{}",
        txml.json()
    );
    assert_eq!(txml.json()["dedupeKey"], dedupe_key);
    assert_json_logs(&function).await;
    // API Gateway's request id reaches the logs.
    let logged = function
        .wait_for_stdout(Duration::from_secs(10), |lines| {
            lines.iter().any(|l| l.contains("post-json-1"))
        })
        .await;
    assert!(logged, "{}", function.output());
    // One CloudWatch EMF line per request: one enqueued, two duplicates.
    let emf = |function: &FunctionProcess| -> Vec<Value> {
        function
            .stdout_json()
            .into_iter()
            .filter(|line| line["_aws"]["CloudWatchMetrics"].is_array())
            .collect()
    };
    function
        .wait_for_stdout(Duration::from_secs(10), |lines| {
            lines
                .iter()
                .filter(|l| l.contains("CloudWatchMetrics"))
                .count()
                >= 3
        })
        .await;
    let metrics = emf(&function);
    assert_eq!(metrics.len(), 3, "{}", function.output());
    let total = |name: &str| {
        metrics
            .iter()
            .map(|m| m[name].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        (total("Received"), total("Enqueued"), total("Duplicates")),
        (3, 1, 2)
    );
    // The binary counts dedupe take-overs on every line: none here.
    assert_eq!(total("TakeOvers"), 0);
    assert!(metrics.iter().all(|m| m["Function"] == "webhook"
        && m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TradecloudRelay"));
    drop(function);

    // A new instance (cold start) finds the dedupe record in DynamoDB.
    let second = cold_start(webhook_env(&aws, &sim)).await;
    let later = invoke(&second, event("post-order-json.json")).await;
    assert_eq!(
        (later.status, &later.json()["outcome"]),
        (200, &Value::from("duplicate")),
        "{}",
        later.json()
    );

    let messages = drain(&aws, &aws.queue_url).await;
    assert_eq!(messages.len(), 1, "exactly one envelope");
    let envelope = &messages[0].body;
    assert_eq!(envelope["dedupeKey"], dedupe_key);
    assert_eq!(envelope["source"], "webhook-post");
    assert_eq!(envelope["kind"], "order");
    assert_eq!(envelope["id"], ORDER_ID);
    assert_eq!(envelope["version"], 3);
    assert_eq!(envelope["lastUpdatedAt"], "2025-04-23T10:01:53.812Z");
    assert_eq!(envelope["eventName"], "OrderLinesAcceptedBySupplier");
    assert_eq!(
        envelope["messageId"],
        "5f0c3c5e-2b7e-4a59-9d1e-0f2a4b6c8d10"
    );
    assert_eq!(envelope["format"], "json");
    // The payload is the webhook body as Tradecloud sent it.
    assert_eq!(envelope["payload"]["orderEvent"]["orderId"], ORDER_ID);
    assert_eq!(
        envelope["payload"]["meta"]["messageId"],
        envelope["messageId"]
    );
    assert_eq!(messages[0].attribute("source"), Some("webhook-post"));
    assert_eq!(messages[0].attribute("id"), Some(ORDER_ID));
    assert!(drain(&aws, aws.quarantine()).await.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn get_events_fetch_the_order_from_tradecloud_and_enqueue_it_once() {
    let aws = aws().await;
    let sim = simulator().await;
    // The GET events name an order of the documentation's example, which the simulator's
    // seeded world does not hold (its ids are generated; it has no call to add an order). So
    // the test rewrites the id in the event (rawPath, requestContext.http.path, rawQueryString
    // and queryStringParameters) to an order the simulator has; the rest of the event is
    // unchanged.
    let order = sim
        .objects()
        .into_iter()
        .find(|o| o.class == "order")
        .expect("the simulator has orders");
    let retarget = |file: &str| -> Value {
        let text = event(file).to_string();
        assert!(text.contains(ORDER_ID), "{file} names {ORDER_ID}");
        serde_json::from_str(&text.replace(ORDER_ID, &order.id)).expect("event JSON")
    };
    let function = cold_start(webhook_env(&aws, &sim)).await;

    let by_path = invoke(&function, retarget("get-order-by-path.json")).await;
    assert_eq!(by_path.status, 202, "{}", by_path.json());
    assert_eq!(by_path.json()["outcome"], "enqueued");
    assert_eq!(by_path.json()["id"], order.id.as_str());
    // The same order, unchanged, by query: fetched again and found to be a duplicate.
    let by_query = invoke(&function, retarget("get-order-by-query.json")).await;
    assert_eq!(
        (by_query.status, &by_query.json()["outcome"]),
        (200, &Value::from("duplicate")),
        "{}",
        by_query.json()
    );
    assert_eq!(by_query.json()["dedupeKey"], by_path.json()["dedupeKey"]);
    // An order Tradecloud does not have (the unmodified sample event) is answered 404, so
    // Tradecloud drops the notification; the request is kept in the quarantine queue.
    let unknown = invoke(&function, event("get-order-by-path.json")).await;
    assert_eq!(unknown.status, 404, "{}", unknown.json());
    assert_json_logs(&function).await;

    let messages = drain(&aws, &aws.queue_url).await;
    assert_eq!(messages.len(), 1, "exactly one envelope");
    let envelope = &messages[0].body;
    assert_eq!(envelope["source"], "webhook-get");
    assert_eq!(envelope["kind"], "order");
    assert_eq!(envelope["id"], order.id.as_str());
    assert_eq!(envelope["version"], order.version);
    assert_eq!(envelope["lastUpdatedAt"], order.last_updated_at.as_str());
    assert_eq!(envelope["dedupeKey"], by_path.json()["dedupeKey"]);
    assert_eq!(envelope["payload"]["id"], order.id.as_str());
    // The refused GET is kept in the quarantine queue (docs/config.md: 404s are kept), without
    // the credential.
    let kept = drain(&aws, aws.quarantine()).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body["method"], "GET");
    assert_eq!(
        kept[0].body["uri"],
        format!("/webhook/orders/{ORDER_ID}").as_str()
    );
    assert!(
        kept[0].body["reason"]
            .as_str()
            .is_some_and(|r| r.contains(ORDER_ID)),
        "{}",
        kept[0].body
    );
    assert!(
        !kept[0].body.to_string().contains("Basic "),
        "{}",
        kept[0].body
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_401_and_a_malformed_body_is_400_and_quarantined() {
    let aws = aws().await;
    let sim = simulator().await;
    let function = cold_start(webhook_env(&aws, &sim)).await;

    let refused = invoke(&function, event("post-bad-credentials.json")).await;
    assert_eq!(refused.status, 401, "{}", refused.json());
    assert_eq!(refused.json()["requestId"], "bad-credentials-1");
    assert!(
        refused.headers.contains_key("www-authenticate"),
        "{:?}",
        refused.headers
    );

    let malformed_event = event("post-malformed-body.json");
    let malformed = invoke(&function, malformed_event.clone()).await;
    assert_eq!(malformed.status, 400, "{}", malformed.json());
    assert_eq!(malformed.json()["requestId"], "malformed-1");
    assert_json_logs(&function).await;

    assert!(drain(&aws, &aws.queue_url).await.is_empty());
    let kept = drain(&aws, aws.quarantine()).await;
    assert_eq!(
        kept.len(),
        1,
        "only the authenticated malformed request is kept"
    );
    let request = &kept[0].body;
    assert_eq!(request["method"], "POST");
    assert!(
        request["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/webhook")),
        "{request}"
    );
    let body = base64::engine::general_purpose::STANDARD
        .decode(request["body"].as_str().expect("body"))
        .expect("base64 body");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        malformed_event["body"].as_str().unwrap()
    );
    let headers = request["headers"].as_array().expect("headers");
    assert!(
        headers.iter().all(|h| !h[0]
            .as_str()
            .unwrap_or_default()
            .eq_ignore_ascii_case("authorization")),
        "the credential is not kept: {request}"
    );
    assert!(
        request["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{request}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_queue_url_stops_the_cold_start_with_a_message_naming_it() {
    // No AWS call is made before the settings are read, so this needs neither moto nor the
    // simulator: every other variable is set, TCRELAY_QUEUE_URL is not.
    let env: Vec<(&str, String)> = vec![
        ("TRADECLOUD_API_URL", "http://127.0.0.1:9/v2".into()),
        ("TCRELAY_WEBHOOK_BASIC", "tradecloud:change-me".into()),
        (
            "TCRELAY_QUARANTINE_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/quarantine".into(),
        ),
        ("TCRELAY_DEDUPE_TABLE", "relay".into()),
        ("TCRELAY_CLAIM_CHECK_BUCKET", "claims".into()),
        ("TCRELAY_AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
    ];
    let function = cold_start(env).await;
    // The process stops; the reason goes to the Runtime API's /init/error before it exits, so
    // Lambda answers invocations with it (not just Runtime.ExitError), and to the logs.
    let failure = function
        .assert_init_fails_naming(
            "Runtime.ConfigError",
            "TCRELAY_QUEUE_URL",
            event("post-order-json.json"),
            Duration::from_secs(20),
        )
        .await;
    // tcrelay_lambda::start_failed logs the reason as the line's `error` field.
    assert!(failure.logged_at("/fields/error"), "{failure:?}");
    assert!(
        function
            .stderr_lines()
            .iter()
            .any(|l| l.contains("TCRELAY_QUEUE_URL")),
        "{}",
        function.output()
    );
}

#[tokio::test]
async fn credentials_from_secrets_manager_as_the_template_passes_them() {
    // The template passes only secret ARNs: no plain-text credential in the environment.
    let aws = aws().await;
    let sim = simulator().await;
    let webhook_secret = create_secret(
        &aws.url,
        "webhook",
        r#"{"basic": ["tradecloud:change-me"], "bearer": []}"#,
    )
    .await;
    let login_secret = create_secret(
        &aws.url,
        "tradecloud",
        &serde_json::json!({"username": sim.username(), "password": sim.password()}).to_string(),
    )
    .await;
    let plain_text = [
        "TCRELAY_WEBHOOK_BASIC",
        "TRADECLOUD_USERNAME",
        "TRADECLOUD_PASSWORD",
    ];
    let mut env: Vec<(&'static str, String)> = webhook_env(&aws, &sim)
        .into_iter()
        .filter(|(k, _)| !plain_text.contains(k))
        .collect();
    env.push(("TCRELAY_WEBHOOK_SECRET_ARN", webhook_secret.clone()));
    env.push(("TCRELAY_TRADECLOUD_SECRET_ARN", login_secret));
    let function = cold_start(env.clone()).await;

    // The Tradecloud login from its secret serves a GET webhook.
    post_refuse_and_get(&function, &sim).await;
    let output = function.output();
    assert!(
        !output.contains("change-me") && !output.contains(sim.password()),
        "a credential reached the logs:\n{output}"
    );
    drop(function);

    // A secret that is not there stops the cold start with the variable's name.
    let env: Vec<(&'static str, String)> = env
        .into_iter()
        .map(|(k, v)| match k {
            "TCRELAY_WEBHOOK_SECRET_ARN" => (k, format!("{webhook_secret}-gone")),
            _ => (k, v),
        })
        .collect();
    let function = cold_start(env).await;
    let status = function
        .wait_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("the function did not stop:\n{}", function.output()));
    assert!(!status.success(), "{status}");
    assert!(
        function.output().contains("TCRELAY_WEBHOOK_SECRET_ARN"),
        "{}",
        function.output()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn no_credential_reaches_the_logs_at_the_trace_level() {
    // What Lambda sets when the function's logging configuration asks for TRACE (docs/config.md:
    // AWS_LAMBDA_LOG_LEVEL wins over RUST_LOG), as an operator chasing a fault would: every
    // crate's TRACE lines are on, lambda_runtime's dump of each raw event among them.
    let aws = aws().await;
    let sim = simulator().await;
    let mut env = webhook_env(&aws, &sim);
    env.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()));
    let function = cold_start(env).await;

    // A GET logs in to Tradecloud with the integration user's password.
    post_refuse_and_get(&function, &sim).await;
    function
        .wait_for_stdout(Duration::from_secs(10), |lines| {
            lines.iter().any(|l| l.contains("TRACE"))
        })
        .await;

    let output = function.output();
    assert!(
        output.contains("TRACE"),
        "the TRACE level is on (else this test checks nothing):\n{output}"
    );
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let login = format!("{}:{}", sim.username(), sim.password());
    for secret in [
        "change-me".to_owned(),
        "wrong-password".to_owned(),
        b64("tradecloud:change-me"),
        b64("tradecloud:wrong-password"),
        sim.password().to_owned(),
        b64(&login),
        // The token the login gave, which the GET's fetch sends.
        "Bearer ".to_owned(),
    ] {
        let at = output.find(&secret);
        assert!(
            at.is_none(),
            "a credential ({secret}) reached the logs: …{}…",
            &output[at.unwrap().saturating_sub(300)..(at.unwrap() + 100).min(output.len())]
        );
    }
    sim.shutdown().await;
}

/// Invokes `function` with a POST (202), one with wrong credentials (401) and a GET of one of
/// the simulator's orders (202, which logs in to Tradecloud): every path a credential passes.
async fn post_refuse_and_get(function: &FunctionProcess, sim: &Simulator) {
    let posted = invoke(function, event("post-order-json.json")).await;
    assert_eq!(posted.status, 202, "{}", posted.json());
    let refused = invoke(function, event("post-bad-credentials.json")).await;
    assert_eq!(refused.status, 401, "{}", refused.json());
    let order = sim
        .objects()
        .into_iter()
        .find(|o| o.class == "order")
        .expect("the simulator has orders");
    let get = event("get-order-by-path.json")
        .to_string()
        .replace(ORDER_ID, &order.id);
    let fetched = invoke(function, serde_json::from_str(&get).unwrap()).await;
    assert_eq!(fetched.status, 202, "{}", fetched.json());
}
