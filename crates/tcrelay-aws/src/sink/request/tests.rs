//! The requests `BatchSerializer` writes are the SDK's own, byte for byte: each input goes
//! through a client with the SDK's serializer and one with ours, and the serialized requests
//! (caught before signing, so no network, clock or credentials are involved) are compared.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{BehaviorVersion, ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::builders::SendMessageBatchRequestEntryBuilder;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use aws_smithy_runtime_api::client::ser_de::SharedRequestSerializer;
use proptest::prelude::*;

use super::with_batch_requests;

thread_local! {
    /// Requests `BatchSerializer` wrote on this thread: proof that the SDK called it, since its
    /// requests cannot be told from the SDK's own by their bytes.
    pub(super) static WRITTEN: Cell<usize> = const { Cell::new(0) };
}

/// The requests `BatchSerializer` writes while `call` runs (on this thread, as a
/// current-thread runtime runs it).
async fn written_during(call: impl std::future::Future<Output = ()>) -> usize {
    let before = WRITTEN.with(Cell::get);
    call.await;
    WRITTEN.with(Cell::get) - before
}

/// A serialized request: its serializer (by its `Debug`), method, path, headers (sorted) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caught {
    serializer: String,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Keeps the request as serialized and stops the call there.
#[derive(Debug, Clone, Default)]
struct Catch(Arc<Mutex<Option<Caught>>>);

impl Intercept for Catch {
    fn name(&self) -> &'static str {
        "Catch"
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        headers.sort();
        *self.0.lock().unwrap() = Some(Caught {
            serializer: format!("{:?}", cfg.load::<SharedRequestSerializer>()),
            method: request.method().to_owned(),
            uri: request.uri().to_owned(),
            headers,
            body: request.body().bytes().expect("an in-memory body").to_vec(),
        });
        Err("caught".into())
    }
}

/// A client that never reaches the network: every call stops after serialization.
fn client(catch: &Catch) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .http_client(crate::config::https_client())
            .interceptor(catch.clone())
            .build(),
    )
}

/// The request each serializer writes for `entries` (`None`: the member left out).
async fn both(queue_url: Option<&str>, entries: Option<Vec<SendMessageBatchRequestEntry>>) {
    let (sdk, ours) = (Catch::default(), Catch::default());
    for (catch, client, by_us) in [
        (&sdk, client(&sdk), 0),
        (&ours, with_batch_requests(client(&ours)), 1),
    ] {
        let call = async {
            let error = client
                .send_message_batch()
                .set_queue_url(queue_url.map(str::to_owned))
                .set_entries(entries.clone())
                .send()
                .await
                .expect_err("the catch stops every call");
            assert!(
                catch.0.lock().unwrap().is_some(),
                "not serialized: {error:?}"
            );
        };
        assert_eq!(
            written_during(call).await,
            by_us,
            "written by BatchSerializer"
        );
    }
    let sdk = sdk.0.lock().unwrap().take().unwrap();
    let ours = ours.0.lock().unwrap().take().unwrap();
    assert!(
        sdk.serializer.contains("SendMessageBatchRequestSerializer"),
        "{}",
        sdk.serializer
    );
    assert!(
        ours.serializer.contains("BatchSerializer")
            && !ours
                .serializer
                .contains("SendMessageBatchRequestSerializer"),
        "{}",
        ours.serializer
    );
    let strip = |c: &Caught| Caught {
        serializer: String::new(),
        ..c.clone()
    };
    assert_eq!(
        String::from_utf8_lossy(&ours.body),
        String::from_utf8_lossy(&sdk.body)
    );
    assert_eq!(strip(&ours), strip(&sdk));
}

/// Every character class JSON escapes, and some it does not.
const AWKWARD: &str = "{\"quote\":\"\\\"\",\"nl\":\"a\nb\r\tc\u{8}\u{c}\",\"ctl\":\"\u{0}\u{1}\u{1f}\u{7f}\",\"é\":\"€ 😀 \u{2028}\u{2029} \u{fffe}\u{ffff}\",\"slash\":\"</\"}";

fn attribute(data_type: &str) -> aws_sdk_sqs::types::builders::MessageAttributeValueBuilder {
    MessageAttributeValue::builder().data_type(data_type)
}

#[tokio::test]
async fn every_member_is_written_as_the_sdk_writes_it() {
    let full = SendMessageBatchRequestEntry::builder()
        .id("m0")
        .message_body(AWKWARD)
        .delay_seconds(7)
        .message_attributes(
            "string",
            attribute("String").string_value(AWKWARD).build().unwrap(),
        )
        .message_attributes(
            "number",
            attribute("Number").string_value("1024").build().unwrap(),
        )
        .message_attributes(
            "binary",
            attribute("Binary")
                .binary_value(Blob::new(b"\x00\xff binary \"".to_vec()))
                .build()
                .unwrap(),
        )
        .message_attributes(
            "lists",
            attribute("String.custom")
                .string_list_values("one \"1\"")
                .string_list_values("two\n")
                .binary_list_values(Blob::new(b"\x01".to_vec()))
                .binary_list_values(Blob::new(Vec::new()))
                .build()
                .unwrap(),
        )
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
                .build()
                .unwrap(),
        )
        .message_deduplication_id("order/42/\"7\"")
        .message_group_id("order/42")
        .build()
        .unwrap();
    let minimal = SendMessageBatchRequestEntry::builder()
        .id("m1")
        .message_body("plain")
        .build()
        .unwrap();
    let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/erp.fifo";
    both(Some(url), Some(vec![full, minimal])).await;
}

#[tokio::test]
async fn absent_and_empty_members_are_written_as_the_sdk_writes_them() {
    both(None, None).await;
    both(Some("q"), None).await;
    both(Some("q"), Some(Vec::new())).await;
    let empty_attributes = SendMessageBatchRequestEntry::builder()
        .id("")
        .message_body("")
        .set_message_attributes(Some(HashMap::new()))
        .set_message_system_attributes(Some(HashMap::new()))
        .build()
        .unwrap();
    both(Some("q"), Some(vec![empty_attributes])).await;
}

/// Bodies longer than one escaped piece, each cut landing in another place: inside a
/// character of two, three or four bytes, on a quote, on a control character.
#[tokio::test]
async fn long_bodies_are_escaped_piece_by_piece_as_the_sdk_escapes_them_whole() {
    let bodies: Vec<String> = (0..8)
        .map(|shift| {
            let head = "x".repeat(tcrelay_json_string::PIECE - 4 + shift);
            let tail = AWKWARD.repeat(tcrelay_json_string::PIECE * 2 / AWKWARD.len());
            format!("{head}é€😀\"\u{1}{tail}")
        })
        .collect();
    assert!(
        bodies
            .iter()
            .all(|b| b.len() > 2 * tcrelay_json_string::PIECE)
    );
    both(Some("q"), Some(numbered(&bodies, |entry| entry))).await;
}

/// An entry per body, with ids `m0`, `m1`, … and the members `more` adds.
fn numbered(
    bodies: &[String],
    more: impl Fn(SendMessageBatchRequestEntryBuilder) -> SendMessageBatchRequestEntryBuilder,
) -> Vec<SendMessageBatchRequestEntry> {
    bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            more(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{index}"))
                    .message_body(body),
            )
            .build()
            .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn other_operations_keep_the_sdk_serializer() {
    let catch = Catch::default();
    let call = async {
        with_batch_requests(client(&catch))
            .send_message()
            .queue_url("q")
            .message_body("{\"a\":1}")
            .send()
            .await
            .expect_err("the catch stops every call");
    };
    assert_eq!(written_during(call).await, 0);
    let caught = catch.0.lock().unwrap().take().unwrap();
    assert!(
        caught.serializer.contains("SendMessageRequestSerializer"),
        "{}",
        caught.serializer
    );
}

/// Any text, with JSON's special characters often (`any::<String>()` has no control
/// characters).
fn text() -> impl Strategy<Value = String> {
    let char = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '\u{2028}']),
    ];
    prop::collection::vec(char, 0..64).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any text in any member that carries text.
    #[test]
    fn any_text_is_written_as_the_sdk_writes_it(
        bodies in prop::collection::vec(text(), 1..4),
        value in text(),
        group in text(),
        delay in any::<i32>(),
    ) {
        let entries = numbered(&bodies, |entry| {
            entry
                .delay_seconds(delay)
                .message_attributes(
                    value.clone(),
                    attribute("String").string_value(&value).build().unwrap(),
                )
                .message_group_id(&group)
        });
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(both(Some(&value), Some(entries)));
    }
}
