//! The dedupe store's batches (`claim_many`, `complete_many`, `release_many`, which run as
//! `TransactWriteItems` calls) against a scripted DynamoDB on loopback, for the failures moto's
//! server cannot produce: a cancellation whose reasons do not match the items, cancellations
//! round after round by conflicts, and a transaction failing otherwise than by a cancellation.
//! No moto needed.
//!
//! Each test scripts the answers by operation and key, then checks the store's answers and the
//! calls it made: the keys of every transaction and which single calls followed. A batch's
//! answers must be those of the single calls, so where the batch gives up on transactions the
//! singles are scripted with answers a transaction could not have given (a take-over, a
//! failure), to tell the two apart.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tcrelay_aws::testing::moto_options;
use tcrelay_aws::{DedupeConfig, DynamoDedupeStore};
use tcrelay_core::clock::ManualClock;
use tcrelay_core::ports::{
    ClaimOutcome, ClaimToken, Completion, DedupeRecord, DedupeStore, RecordState, StoreError,
};

/// A transaction's operation, as the fake names calls (see [`Call::op`]).
const TRANSACT: &str = "TransactWriteItems";

/// Where the store's clock stands: the scripted records' expiries are relative to it.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_359_200, 0).expect("a valid timestamp")
}

/// One request the scripted DynamoDB received.
#[derive(Debug, Clone)]
struct Call {
    /// `X-Amz-Target` without the service's prefix: `TransactWriteItems`, `PutItem`, ...
    op: String,
    body: Value,
}

impl Call {
    /// The items of a transaction, or the single call's request as its one item.
    fn items(&self) -> Vec<&Value> {
        if self.op == TRANSACT {
            let items = self.body["TransactItems"].as_array();
            items
                .map(|items| items.iter().collect())
                .unwrap_or_default()
        } else {
            vec![&self.body]
        }
    }

    /// The dedupe keys the call writes (or reads), in order.
    fn keys(&self) -> Vec<String> {
        self.items().into_iter().map(item_key).collect()
    }

    /// The single call's key (the first, of a transaction).
    fn key(&self) -> String {
        self.keys().into_iter().next().unwrap_or_default()
    }

    /// The claim tokens of the claims the call puts, in order.
    fn tokens(&self) -> Vec<String> {
        self.items()
            .into_iter()
            .map(|item| {
                let item = item.get("Put").unwrap_or(item);
                item["Item"]["claimToken"]["S"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

/// The key of a transaction's item (`Put`, `Update` or `Delete`) or of a single call's request.
fn item_key(item: &Value) -> String {
    let write = ["Put", "Update", "Delete"]
        .iter()
        .find_map(|kind| item.get(*kind))
        .unwrap_or(item);
    let pk = write["Item"]["pk"]["S"]
        .as_str()
        .or(write["Key"]["pk"]["S"].as_str());
    pk.unwrap_or_default().to_owned()
}

/// A scripted answer: status and awsJson1_0 body.
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    /// Success without output.
    fn ok() -> Reply {
        Reply {
            status: StatusCode::OK,
            body: json!({}),
        }
    }

    /// Success with the old item (`ReturnValues: ALL_OLD`).
    fn old_item(item: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: json!({ "Attributes": item }),
        }
    }

    /// A `GetItem` that found `item`.
    fn found(item: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: json!({ "Item": item }),
        }
    }

    /// A service error of type `kind` (DynamoDB's short name, e.g. `InternalServerError`).
    fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("a valid status"),
            body: json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
                "message": message,
            }),
        }
    }

    /// A cancelled transaction with these reasons.
    fn cancelled(reasons: Vec<Value>) -> Reply {
        Reply {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": reasons,
            }),
        }
    }

    /// A single call whose condition failed, with the old item when it is given.
    fn condition_failed(old: Option<Value>) -> Reply {
        let mut reply = Reply::error(
            400,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        );
        if let Some(old) = old {
            reply.body["Item"] = old;
        }
        reply
    }

    /// A call the test did not expect: an error its assertions on the calls then report.
    fn unscripted(call: &Call) -> Reply {
        Reply::error(500, "InternalServerError", &format!("unscripted {call:?}"))
    }
}

/// The reason of an item not written because another item failed.
fn not_written() -> Value {
    json!({ "Code": "None" })
}

/// The reason of an item that met a concurrent transaction.
fn conflict() -> Value {
    json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" })
}

/// The reason of an item whose own condition failed, with the old item when it is given.
fn condition(old: Option<Value>) -> Value {
    let mut reason = json!({
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
    });
    if let Some(old) = old {
        reason["Item"] = old;
    }
    reason
}

/// Another request's live in-progress claim of `key`.
fn live_claim(key: &str, full_state: bool) -> Value {
    json!({
        "pk": { "S": key },
        "state": { "S": "in-progress" },
        "fullState": { "BOOL": full_state },
        "expiresAt": { "N": (now().timestamp() + 3600).to_string() },
        "inProgressExpiresAt": { "N": (now().timestamp_millis() + 60_000).to_string() },
        "claimToken": { "S": "another-request" },
    })
}

/// A live completed record of `key`, just completed: a claim that finds it does not renew it
/// (that takes a record in the second half of its life).
fn completed(key: &str, full_state: bool) -> Value {
    json!({
        "pk": { "S": key },
        "state": { "S": "completed" },
        "fullState": { "BOOL": full_state },
        "expiresAt": { "N": (now().timestamp() + 30 * 86_400).to_string() },
        "claimToken": { "S": "another-request" },
    })
}

/// An in-progress claim of `key` whose request died: expired at the store's now.
fn expired_claim(key: &str) -> Value {
    json!({
        "pk": { "S": key },
        "state": { "S": "in-progress" },
        "fullState": { "BOOL": false },
        "expiresAt": { "N": (now().timestamp() + 3600).to_string() },
        "inProgressExpiresAt": { "N": (now().timestamp_millis() - 1).to_string() },
        "claimToken": { "S": "another-request" },
    })
}

type Script = dyn Fn(&Call, usize) -> Reply + Send + Sync;

/// The scripted DynamoDB's state: every call received, and the script.
struct Fake {
    calls: Mutex<Vec<Call>>,
    script: Box<Script>,
}

/// Answers a call from the script, given the call and how many calls of its operation came
/// before it.
async fn answer(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let op = target.rsplit('.').next().unwrap_or_default().to_owned();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call = Call { op, body };
    let reply = {
        let mut calls = fake.calls.lock().unwrap_or_else(|e| e.into_inner());
        let nth = calls.iter().filter(|c| c.op == call.op).count();
        calls.push(call.clone());
        (fake.script)(&call, nth)
    };
    let content_type = [(CONTENT_TYPE, "application/x-amz-json-1.0")];
    (reply.status, content_type, reply.body.to_string()).into_response()
}

/// A dedupe store on a scripted DynamoDB.
struct Scripted {
    fake: Arc<Fake>,
    store: DynamoDedupeStore,
}

impl Scripted {
    /// Serves `script` on a loopback port; the store's client makes one attempt per call, so
    /// each scripted answer is one call of the store (an SDK retry would take the next one).
    async fn start(script: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static) -> Self {
        let fake = Arc::new(Fake {
            calls: Mutex::new(Vec::new()),
            script: Box::new(script),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut options = moto_options(&url);
        options.max_attempts = Some(1);
        let client = aws_sdk_dynamodb::Client::new(&options.load().await);
        let store = DynamoDedupeStore::new(client, DedupeConfig::new("dedupe"))
            .with_clock(ManualClock::at(now()).clock());
        Scripted { fake, store }
    }

    fn calls(&self) -> Vec<Call> {
        self.fake
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The keys of each transaction, in the order they were made.
    fn transactions(&self) -> Vec<Vec<String>> {
        let calls = self.calls();
        let transactions = calls.iter().filter(|call| call.op == TRANSACT);
        transactions.map(Call::keys).collect()
    }

    /// The claim tokens of the `nth` transaction's puts.
    fn transaction_tokens(&self, nth: usize) -> Vec<String> {
        let calls = self.calls();
        let mut transactions = calls.iter().filter(|call| call.op == TRANSACT);
        transactions.nth(nth).expect("that transaction").tokens()
    }

    /// The other calls as `"Operation key"`, sorted: in which order the single calls go does
    /// not matter (a chunk never holds a key twice).
    fn singles(&self) -> Vec<String> {
        let calls = self.calls();
        let singles = calls.iter().filter(|call| call.op != TRANSACT);
        let mut singles: Vec<String> = singles
            .map(|call| format!("{} {}", call.op, call.key()))
            .collect();
        singles.sort();
        singles
    }

    /// The claim token the single `PutItem` of `key` wrote.
    fn single_claim_token(&self, key: &str) -> String {
        let calls = self.calls();
        let mut puts = calls
            .iter()
            .filter(|call| call.op == "PutItem" && call.key() == key);
        let put = puts.next().expect("a PutItem of that key");
        assert!(puts.next().is_none(), "{key} was put more than once");
        put.tokens().remove(0)
    }
}

/// A batch's answer in short, to compare whole batches: a value by its `Debug`, an error by
/// its kind (the messages are checked where they matter).
fn short<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(StoreError::Unavailable(_)) => "unavailable".to_owned(),
        Err(StoreError::Corrupt(_)) => "corrupt".to_owned(),
        Err(StoreError::Conflict(_)) => "conflict".to_owned(),
    }
}

/// Claims' answers in short: [`claimed`], [`exists`], or the error's kind.
fn claim_answers(results: &[Result<ClaimOutcome, StoreError>]) -> Vec<String> {
    let answer = |result: &Result<ClaimOutcome, StoreError>| match result {
        Ok(ClaimOutcome::Claimed(token)) => claimed(token.as_str()),
        Ok(ClaimOutcome::Exists(DedupeRecord { state, full_state })) => exists(*state, *full_state),
        Err(_) => short(result),
    };
    results.iter().map(answer).collect()
}

/// A granted claim under `token`, in short.
fn claimed(token: &str) -> String {
    format!("claimed {token}")
}

/// A claim that found a live record, in short.
fn exists(state: RecordState, full_state: bool) -> String {
    format!("exists {state:?} full_state={full_state}")
}

/// The message of an `Unavailable` answer.
fn unavailable_message<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> &str {
    match result {
        Err(StoreError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Claims of `keys` held under fresh tokens, to complete or release.
fn held(keys: &[&str]) -> Vec<(String, ClaimToken)> {
    let held = keys
        .iter()
        .map(|key| ((*key).to_owned(), ClaimToken::generate(false)));
    held.collect()
}

/// Four claims of distinct keys, one chunk.
const FOUR: [(&str, bool); 4] = [("a", true), ("b", false), ("c", true), ("d", false)];
/// Five full-state claims, `a` to `e`.
const FIVE: [(&str, bool); 5] = [
    ("a", true),
    ("b", true),
    ("c", true),
    ("d", true),
    ("e", true),
];

/// A cancellation whose reasons do not pair up with the items (none at all, fewer, more) says
/// nothing reliable about any item: every claim goes through the single call and gets its
/// answer, even where the reasons, paired up, would have answered it.
#[tokio::test]
async fn claims_cancelled_with_reasons_not_matching_the_items_go_to_the_single_calls() {
    for count in [0, 2, 5] {
        let dynamo = Scripted::start(move |call, _| match (call.op.as_str(), &*call.key()) {
            (TRANSACT, _) => Reply::cancelled(vec![condition(Some(completed("a", true))); count]),
            ("PutItem", "a") => Reply::ok(),
            ("PutItem", "b") => Reply::condition_failed(Some(live_claim("b", false))),
            ("PutItem", "c") => Reply::error(500, "InternalServerError", "put failed"),
            ("PutItem", "d") => Reply::condition_failed(Some(completed("d", true))),
            _ => Reply::unscripted(call),
        })
        .await;
        let answers = dynamo.store.claim_many(&FOUR, None).await;
        assert_eq!(
            dynamo.transactions(),
            [strings(&["a", "b", "c", "d"])],
            "{count} reasons"
        );
        assert_eq!(
            dynamo.singles(),
            ["PutItem a", "PutItem b", "PutItem c", "PutItem d"],
            "{count} reasons"
        );
        assert_eq!(
            claim_answers(&answers),
            [
                claimed(&dynamo.single_claim_token("a")),
                exists(RecordState::InProgress, false),
                "unavailable".to_owned(),
                exists(RecordState::Completed, true),
            ],
            "{count} reasons"
        );
        assert!(
            unavailable_message(&answers[2]).contains("PutItem"),
            "{answers:?}"
        );
    }
}

/// An unclear cancellation after a round that answered some items leaves those answered: the
/// pending ones go through the single call, and so does the one the first round had already
/// left to it (its condition failed without the old item).
#[tokio::test]
async fn an_unclear_later_round_sends_only_the_pending_claims_to_the_single_calls() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(Some(live_claim("b", true))),
            not_written(),
            not_written(),
            condition(None),
        ]),
        (TRANSACT, 1) => Reply::cancelled(vec![conflict()]),
        ("PutItem", _) if call.key() == "e" => Reply::condition_failed(None),
        ("PutItem", _) => Reply::ok(),
        ("GetItem", 0) => Reply::found(completed("e", false)),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FIVE, None).await;
    assert_eq!(
        dynamo.transactions(),
        [
            strings(&["a", "b", "c", "d", "e"]),
            strings(&["a", "c", "d"])
        ]
    );
    assert_eq!(
        dynamo.singles(),
        [
            "GetItem e",
            "PutItem a",
            "PutItem c",
            "PutItem d",
            "PutItem e"
        ]
    );
    assert_eq!(
        claim_answers(&answers),
        [
            claimed(&dynamo.single_claim_token("a")),
            exists(RecordState::InProgress, true),
            claimed(&dynamo.single_claim_token("c")),
            claimed(&dynamo.single_claim_token("d")),
            exists(RecordState::Completed, false),
        ]
    );
}

/// Cancelled three times by conflicts with concurrent writers (no item's own condition
/// failed): after the third transaction the claims go through the single calls.
#[tokio::test]
async fn claims_cancelled_by_conflicts_three_times_go_to_the_single_calls() {
    let dynamo = Scripted::start(|call, _| match call.op.as_str() {
        TRANSACT => Reply::cancelled(vec![conflict(); 3]),
        "PutItem" => Reply::ok(),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FIVE[..3], None).await;
    let abc = strings(&["a", "b", "c"]);
    assert_eq!(dynamo.transactions(), [abc.clone(), abc.clone(), abc]);
    assert_eq!(dynamo.singles(), ["PutItem a", "PutItem b", "PutItem c"]);
    let tokens = ["a", "b", "c"].map(|key| claimed(&dynamo.single_claim_token(key)));
    assert_eq!(claim_answers(&answers), tokens);
}

/// A claim whose condition failed on another request's live claim is answered from the
/// cancellation's old item; the others, not written because of it, go again in the next
/// transaction, under that transaction's tokens.
#[tokio::test]
async fn a_live_claim_in_a_cancellation_answers_exists_and_the_rest_go_again() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(Some(live_claim("b", true))),
            not_written(),
            not_written(),
        ]),
        (TRANSACT, 1) => Reply::ok(),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FOUR, None).await;
    assert_eq!(
        dynamo.transactions(),
        [strings(&["a", "b", "c", "d"]), strings(&["a", "c", "d"])]
    );
    assert!(dynamo.singles().is_empty(), "{:?}", dynamo.singles());
    let tokens = dynamo.transaction_tokens(1);
    assert_eq!(
        claim_answers(&answers),
        [
            claimed(&tokens[0]),
            exists(RecordState::InProgress, true),
            claimed(&tokens[1]),
            claimed(&tokens[2]),
        ]
    );
}

/// Three rounds, each cancelled: the first two answer the item whose own condition failed
/// (reason `None` for the items not written because of it), the third only conflicts. What is
/// left after the third goes through the single calls.
#[tokio::test]
async fn claims_left_after_three_cancelled_rounds_go_to_the_single_calls() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(Some(live_claim("b", false))),
            not_written(),
            not_written(),
            not_written(),
        ]),
        (TRANSACT, 1) => Reply::cancelled(vec![
            not_written(),
            condition(Some(completed("c", true))),
            conflict(),
            not_written(),
        ]),
        (TRANSACT, 2) => Reply::cancelled(vec![conflict(), not_written(), not_written()]),
        ("PutItem", _) if call.key() == "d" => Reply::condition_failed(Some(live_claim("d", true))),
        ("PutItem", _) => Reply::ok(),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FIVE, None).await;
    assert_eq!(
        dynamo.transactions(),
        [
            strings(&["a", "b", "c", "d", "e"]),
            strings(&["a", "c", "d", "e"]),
            strings(&["a", "d", "e"]),
        ]
    );
    assert_eq!(dynamo.singles(), ["PutItem a", "PutItem d", "PutItem e"]);
    assert_eq!(
        claim_answers(&answers),
        [
            claimed(&dynamo.single_claim_token("a")),
            exists(RecordState::InProgress, false),
            exists(RecordState::Completed, true),
            exists(RecordState::InProgress, true),
            claimed(&dynamo.single_claim_token("e")),
        ]
    );
}

/// The other reasons a claim's condition fails: without the old item (a DynamoDB-compatible
/// store that does not return it) the single call finds out; with a claim that expired since
/// the condition was checked the claim goes again; with a record that cannot be read the
/// answer is that it is corrupt.
#[tokio::test]
async fn each_kind_of_failed_claim_condition_is_answered_as_the_single_call_would() {
    let corrupt = json!({ "pk": { "S": "c" }, "state": { "S": "weird" } });
    let dynamo = Scripted::start(move |call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            condition(None),
            condition(Some(expired_claim("b"))),
            condition(Some(corrupt.clone())),
            not_written(),
            not_written(),
        ]),
        (TRANSACT, 1) => Reply::ok(),
        ("PutItem", 0) => Reply::condition_failed(None),
        ("GetItem", 0) => Reply::found(live_claim("a", true)),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FIVE, None).await;
    assert_eq!(
        dynamo.transactions(),
        [
            strings(&["a", "b", "c", "d", "e"]),
            strings(&["b", "d", "e"]),
        ]
    );
    assert_eq!(dynamo.singles(), ["GetItem a", "PutItem a"]);
    let tokens = dynamo.transaction_tokens(1);
    assert_eq!(
        claim_answers(&answers),
        [
            exists(RecordState::InProgress, true),
            claimed(&tokens[0]),
            "corrupt".to_owned(),
            claimed(&tokens[1]),
            claimed(&tokens[2]),
        ]
    );
}

/// A round that leaves fewer claims pending than are worth a transaction sends them to the
/// single calls instead of another transaction.
#[tokio::test]
async fn claims_left_too_few_for_a_transaction_go_to_the_single_calls() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(Some(live_claim("b", true))),
            not_written(),
        ]),
        ("PutItem", _) => Reply::ok(),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo.store.claim_many(&FIVE[..3], None).await;
    assert_eq!(dynamo.transactions(), [strings(&["a", "b", "c"])]);
    assert_eq!(dynamo.singles(), ["PutItem a", "PutItem c"]);
    assert_eq!(
        claim_answers(&answers),
        [
            claimed(&dynamo.single_claim_token("a")),
            exists(RecordState::InProgress, true),
            claimed(&dynamo.single_claim_token("c")),
        ]
    );
}

/// A transaction that fails otherwise than by a cancellation (a 500, or a 400 other than a
/// cancellation) may or may not have been applied: each of its items is answered `Unavailable`
/// naming the operation, and none goes again as a single call (a claim granted by a
/// transaction that did happen would be answered `Exists` there, a duplicate lost).
#[tokio::test]
async fn a_transaction_failing_otherwise_fails_each_item_and_calls_nothing_else() {
    for (status, kind) in [(500, "InternalServerError"), (400, "ValidationException")] {
        let script = move |call: &Call, _: usize| match call.op.as_str() {
            TRANSACT => Reply::error(status, kind, "scripted failure"),
            _ => Reply::unscripted(call),
        };
        let claims = Scripted::start(script).await;
        let claim_results = claims.store.claim_many(&FIVE[..3], None).await;
        let completions = Scripted::start(script).await;
        let completion_results = completions
            .store
            .complete_many(&held(&["a", "b", "c"]))
            .await;
        let releases = Scripted::start(script).await;
        let release_results = releases.store.release_many(&held(&["a", "b", "c"])).await;

        let cases: [(&Scripted, Vec<&str>, &str); 3] = [
            (
                &claims,
                claim_results.iter().map(unavailable_message).collect(),
                "claims",
            ),
            (
                &completions,
                completion_results.iter().map(unavailable_message).collect(),
                "completions",
            ),
            (
                &releases,
                release_results.iter().map(unavailable_message).collect(),
                "releases",
            ),
        ];
        for (dynamo, messages, what) in cases {
            assert_eq!(
                dynamo.transactions(),
                [strings(&["a", "b", "c"])],
                "{kind}, {what}"
            );
            assert!(
                dynamo.singles().is_empty(),
                "{kind}, {what}: {:?}",
                dynamo.singles()
            );
            assert_eq!(messages.len(), 3);
            for message in messages {
                let operation = format!("TransactWriteItems (dedupe {what})");
                assert!(
                    message.contains(&operation) && message.contains("scripted failure"),
                    "{kind}, {what}: {message}"
                );
            }
        }
    }
}

/// A completion whose condition failed (another request's live claim holds the key) goes to
/// the single call, which records it and reports the take-over; the others go again in the
/// next transaction.
#[tokio::test]
async fn a_completion_whose_condition_failed_goes_to_the_single_call() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(None),
            not_written(),
            conflict(),
        ]),
        (TRANSACT, 1) => Reply::ok(),
        // The single call: ours no longer (the condition), no completed record to keep, then
        // recorded as the event it sent, not as the other claim's full state.
        ("UpdateItem", 0) if conditional(call) => Reply::condition_failed(None),
        ("UpdateItem", 1) if keeps_a_completed_record(call) => Reply::condition_failed(None),
        ("UpdateItem", 2) if records_what_it_sent(call, false) => {
            Reply::old_item(live_claim("b", true))
        }
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo
        .store
        .complete_many(&held(&["a", "b", "c", "d"]))
        .await;
    assert_eq!(
        dynamo.transactions(),
        [strings(&["a", "b", "c", "d"]), strings(&["a", "c", "d"])]
    );
    assert_eq!(
        dynamo.singles(),
        ["UpdateItem b", "UpdateItem b", "UpdateItem b"]
    );
    let answers: Vec<String> = answers.iter().map(short).collect();
    assert_eq!(
        answers,
        ["Completed", "TakenOver", "Completed", "Completed"]
    );
}

/// A full-state completion whose claim is no longer ours records a full state (it sent one)
/// in the second call, without trying to keep another record's flag; an event's keeps a live
/// completed record's flag when the second call's condition holds.
#[tokio::test]
async fn a_completion_no_longer_ours_records_what_it_sent() {
    completed_taken_over(true, |call, nth| match (call.op.as_str(), nth) {
        ("UpdateItem", 0) if conditional(call) => Reply::condition_failed(None),
        ("UpdateItem", 1) if records_what_it_sent(call, true) => {
            Reply::old_item(live_claim("b", false))
        }
        _ => Reply::unscripted(call),
    })
    .await;
    completed_taken_over(false, |call, nth| match (call.op.as_str(), nth) {
        ("UpdateItem", 0) if conditional(call) => Reply::condition_failed(None),
        ("UpdateItem", 1) if keeps_a_completed_record(call) => {
            Reply::old_item(completed("b", true))
        }
        _ => Reply::unscripted(call),
    })
    .await;
}

/// A claim whose put went through while its answer came too late (the SDK's attempt timeout)
/// is retried by the SDK, and the retry's condition fails on the claim the first attempt
/// wrote. That claim is ours: it is granted under the token it carries, not answered "in
/// progress elsewhere", which would block the key until the claim expired with nobody to
/// complete it.
#[tokio::test]
async fn a_retried_put_finding_its_own_claim_is_granted() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        ("PutItem", 0) => Reply::condition_failed(Some(call.body["Item"].clone())),
        _ => Reply::unscripted(call),
    })
    .await;
    let answer = dynamo.store.claim("k", true).await;
    let Ok(ClaimOutcome::Claimed(token)) = &answer else {
        panic!("expected the claim granted, got {answer:?}");
    };
    assert!(token.full_state());
    assert_eq!(dynamo.calls()[0].tokens(), [token.as_str()]);
    assert_eq!(dynamo.singles(), ["PutItem k"]);
}

/// An event's completion no longer ours, when another request completes the key as a full
/// state between its "keep a completed record" and its "record an event" writes, finds the
/// second's condition failed and keeps the full state in the next round: the record never
/// loses the full state another request sent.
#[tokio::test]
async fn a_full_state_completed_between_an_events_writes_is_kept() {
    let (answer, singles) = complete_b(false, |call, nth| match (call.op.as_str(), nth) {
        ("UpdateItem", 0) if conditional(call) => Reply::condition_failed(None),
        ("UpdateItem", 1) if keeps_a_completed_record(call) => Reply::condition_failed(None),
        ("UpdateItem", 2) if records_what_it_sent(call, false) => Reply::condition_failed(None),
        ("UpdateItem", 3) if keeps_a_completed_record(call) => {
            Reply::old_item(completed("b", true))
        }
        _ => Reply::unscripted(call),
    })
    .await;
    assert_eq!(short(&answer), "TakenOver");
    assert_eq!(singles, vec!["UpdateItem b"; 4]);
}

/// An event's completion whose pair of writes keeps failing (the record changing between
/// every two calls) gives up after three rounds with an error naming the race, instead of
/// looping or overwriting.
#[tokio::test]
async fn an_events_completion_racing_without_end_gives_up() {
    let (answer, singles) = complete_b(false, |call, _| {
        if conditional(call) || keeps_a_completed_record(call) || records_what_it_sent(call, false)
        {
            Reply::condition_failed(None)
        } else {
            Reply::unscripted(call)
        }
    })
    .await;
    assert_eq!(short(&answer), "unavailable");
    assert!(
        unavailable_message(&answer).contains("kept racing"),
        "{}",
        unavailable_message(&answer)
    );
    assert_eq!(singles, vec!["UpdateItem b"; 7]);
}

/// Completes `b` under a claim of a full state or not against `script`, and asserts that it
/// was taken over and took two single calls.
async fn completed_taken_over(
    full_state: bool,
    script: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static,
) {
    let (answer, singles) = complete_b(full_state, script).await;
    assert_eq!(short(&answer), "TakenOver", "full state: {full_state}");
    assert_eq!(singles, ["UpdateItem b", "UpdateItem b"]);
}

/// Completes `b` under a fresh claim (of a full state or not) against `script`: the answer, and
/// the single calls it took.
async fn complete_b(
    full_state: bool,
    script: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static,
) -> (Result<Completion, StoreError>, Vec<String>) {
    let dynamo = Scripted::start(script).await;
    let answer = dynamo
        .store
        .complete("b", &ClaimToken::generate(full_state))
        .await;
    (answer, dynamo.singles())
}

/// Whether a single `UpdateItem` is the completion that holds only while the claim is ours.
fn conditional(call: &Call) -> bool {
    call.body["ConditionExpression"]
        .as_str()
        .is_some_and(|c| c.contains("claimToken = :token"))
}

/// Whether a single `UpdateItem` is the completion of an event's claim no longer ours over a
/// live completed record, keeping its `fullState`.
fn keeps_a_completed_record(call: &Call) -> bool {
    call.body["ConditionExpression"]
        .as_str()
        .is_some_and(|c| c.starts_with("#state = :completed"))
        && call.body["UpdateExpression"]
            .as_str()
            .is_some_and(|u| !u.contains("fullState"))
}

/// Whether a single `UpdateItem` is the completion of a claim no longer ours recording
/// `fullState` as `full` (what the claim was for): a full state's over anything
/// (unconditional), an event's over anything but a live completed record.
fn records_what_it_sent(call: &Call, full: bool) -> bool {
    let condition = call.body["ConditionExpression"].as_str();
    let guarded = if full {
        condition.is_none()
    } else {
        condition.is_some_and(|c| c.starts_with("NOT (#state = :completed"))
    };
    guarded
        && call.body["UpdateExpression"]
            .as_str()
            .is_some_and(|u| u.contains("fullState = :full"))
        && call.body["ExpressionAttributeValues"][":full"] == json!({ "BOOL": full })
}

/// A release whose condition failed has no claim of ours to remove: it is answered done, with
/// no single call; the others go again in the next transaction.
#[tokio::test]
async fn a_release_whose_condition_failed_is_done() {
    let dynamo = Scripted::start(|call, nth| match (call.op.as_str(), nth) {
        (TRANSACT, 0) => Reply::cancelled(vec![
            not_written(),
            condition(None),
            not_written(),
            not_written(),
        ]),
        (TRANSACT, 1) => Reply::ok(),
        _ => Reply::unscripted(call),
    })
    .await;
    let answers = dynamo
        .store
        .release_many(&held(&["a", "b", "c", "d"]))
        .await;
    assert_eq!(
        dynamo.transactions(),
        [strings(&["a", "b", "c", "d"]), strings(&["a", "c", "d"])]
    );
    assert!(dynamo.singles().is_empty(), "{:?}", dynamo.singles());
    let answers: Vec<String> = answers.iter().map(short).collect();
    assert_eq!(answers, ["()", "()", "()", "()"]);
}

/// Single-call answers for completions and releases that tell them from a transaction's: a
/// take-over, a failure.
fn settle_singles(call: &Call) -> Reply {
    match (call.op.as_str(), &*call.key()) {
        ("UpdateItem" | "DeleteItem", "a") => Reply::ok(),
        ("UpdateItem", "b") if conditional(call) => Reply::condition_failed(None),
        ("UpdateItem", "b") if keeps_a_completed_record(call) => Reply::condition_failed(None),
        ("UpdateItem", "b") if records_what_it_sent(call, false) => {
            Reply::old_item(live_claim("b", true))
        }
        ("DeleteItem", "b") => Reply::condition_failed(None),
        ("UpdateItem" | "DeleteItem", "c") => {
            Reply::error(500, "InternalServerError", "single call failed")
        }
        _ => Reply::unscripted(call),
    }
}

/// Runs completions and releases of a, b, c against `transact` (the transactions' answers,
/// by round) and [`settle_singles`]; checks that every item went through the single call
/// after `rounds` transactions and got its answer.
async fn assert_settled_by_single_calls(
    transact: impl Fn(usize) -> Reply + Clone + Send + Sync + 'static,
    rounds: usize,
) {
    let script = move |call: &Call, nth: usize| match call.op.as_str() {
        TRANSACT => transact(nth),
        _ => settle_singles(call),
    };
    let abc = strings(&["a", "b", "c"]);

    let completions = Scripted::start(script.clone()).await;
    let answers = completions
        .store
        .complete_many(&held(&["a", "b", "c"]))
        .await;
    assert_eq!(completions.transactions(), vec![abc.clone(); rounds]);
    assert_eq!(
        completions.singles(),
        [
            "UpdateItem a",
            "UpdateItem b",
            "UpdateItem b",
            "UpdateItem b",
            "UpdateItem c"
        ]
    );
    let short_answers: Vec<String> = answers.iter().map(short).collect();
    assert_eq!(short_answers, ["Completed", "TakenOver", "unavailable"]);
    assert!(unavailable_message(&answers[2]).contains("UpdateItem"));

    let releases = Scripted::start(script).await;
    let answers = releases.store.release_many(&held(&["a", "b", "c"])).await;
    assert_eq!(releases.transactions(), vec![abc; rounds]);
    assert_eq!(
        releases.singles(),
        ["DeleteItem a", "DeleteItem b", "DeleteItem c"]
    );
    let short_answers: Vec<String> = answers.iter().map(short).collect();
    assert_eq!(short_answers, ["()", "()", "unavailable"]);
    assert!(unavailable_message(&answers[2]).contains("DeleteItem"));
}

/// Completions and releases cancelled with reasons that do not pair up with the items go
/// through the single calls, with their answers.
#[tokio::test]
async fn completions_and_releases_cancelled_unclearly_go_to_the_single_calls() {
    assert_settled_by_single_calls(|_| Reply::cancelled(vec![not_written()]), 1).await;
}

/// Completions and releases cancelled three times by conflicts go through the single calls
/// after the third transaction.
#[tokio::test]
async fn completions_and_releases_cancelled_three_times_go_to_the_single_calls() {
    let conflicts = |_| Reply::cancelled(vec![conflict(), not_written(), conflict()]);
    assert_settled_by_single_calls(conflicts, 3).await;
}

/// A completed record of `key` in the last hour of its life (the store's TTL: 30 days).
fn completed_late(key: &str) -> Value {
    let mut record = completed(key, false);
    record["expiresAt"]["N"] = json!((now().timestamp() + 3600).to_string());
    record
}

/// A claim, single or in a transaction, that finds a completed record in the second half of
/// its life renews it with one conditional `UpdateItem` each (a live completed record only,
/// never to an earlier expiry): a poll re-asks the state at a quiet stream's cursor on every
/// run, and once the record expired the state was sent again. The renewal is best effort: the
/// claim answers `Exists` whether it went through, failed its condition, or failed.
#[tokio::test]
async fn a_claim_finding_a_completed_record_late_in_its_life_renews_it() {
    let dynamo = Scripted::start(|call, _| match (call.op.as_str(), &*call.key()) {
        (TRANSACT, _) => Reply::cancelled(vec![
            condition(Some(completed_late("a"))),
            condition(Some(completed_late("b"))),
            condition(Some(completed("c", false))),
        ]),
        ("PutItem", "single") => Reply::condition_failed(Some(completed_late("single"))),
        ("UpdateItem", "a") => Reply::ok(),
        ("UpdateItem", "b") => Reply::condition_failed(None),
        ("UpdateItem", "single") => Reply::error(500, "InternalServerError", "renewal failed"),
        _ => Reply::unscripted(call),
    })
    .await;
    let single = dynamo.store.claim("single", true).await;
    let batch = dynamo
        .store
        .claim_many(&[("a", true), ("b", true), ("c", true)], None)
        .await;
    let late = exists(RecordState::Completed, false);
    assert_eq!(
        claim_answers(&batch),
        [late.clone(), late.clone(), late.clone()]
    );
    assert_eq!(claim_answers(&[single]), [late]);
    // `c` was completed just now: left alone.
    assert_eq!(
        dynamo.singles(),
        [
            "PutItem single",
            "UpdateItem a",
            "UpdateItem b",
            "UpdateItem single"
        ]
    );
    let renewal = dynamo
        .calls()
        .into_iter()
        .find(|call| call.op == "UpdateItem")
        .expect("a renewal");
    assert_eq!(renewal.body["UpdateExpression"], "SET expiresAt = :exp");
    assert_eq!(
        renewal.body["ConditionExpression"],
        "#state = :completed AND expiresAt >= :now AND expiresAt < :exp"
    );
    let values = &renewal.body["ExpressionAttributeValues"];
    assert_eq!(
        values[":exp"]["N"],
        (now().timestamp() + 30 * 86_400).to_string()
    );
    assert_eq!(values[":now"]["N"], now().timestamp().to_string());
}
