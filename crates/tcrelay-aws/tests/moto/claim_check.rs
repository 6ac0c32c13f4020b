//! Following a claim check (`read_claim_checked`, what the local CLI shows as the message the
//! ERP reads) when the message and the S3 object disagree, against moto's S3: each mismatch is
//! refused with its own error instead of handing on a wrong payload.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::MessageAttributeValue;
use tcrelay_aws::claim_check::{LEGACY_PAYLOAD_SIZE_ATTRIBUTE, PAYLOAD_SIZE_ATTRIBUTE};
use tcrelay_aws::testing::{create_bucket, moto_clients};
use tcrelay_aws::{AwsClients, ClaimCheckError, PayloadS3Pointer, read_claim_checked};

/// Message attributes of a claim check whose size attribute `name` reads `size`.
fn announcing(name: &str, size: &str) -> HashMap<String, MessageAttributeValue> {
    let value = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(size)
        .build()
        .unwrap();
    HashMap::from([(name.to_owned(), value)])
}

/// Puts `bytes` into a fresh bucket as a producer would; returns the message body pointing at it.
async fn stored(clients: &AwsClients, bytes: &[u8]) -> String {
    let bucket = create_bucket(clients, "tcrelay").await;
    let key = uuid::Uuid::new_v4().to_string();
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(bytes.to_vec()))
        .send()
        .await
        .expect("put the payload");
    PayloadS3Pointer { bucket, key }.to_body()
}

/// A stored payload longer or shorter than the message announced (truncated, or another
/// object under the key) is refused with both sizes, under either attribute name.
#[tokio::test]
async fn a_payload_of_another_size_than_announced_is_refused_with_both_sizes() {
    let clients = moto_clients().await;
    let payload = r#"{"schema":"tcrelay.envelope/1","id":"o-1"}"#;
    let body = stored(&clients, payload.as_bytes()).await;
    let size = payload.len() as u64;
    // The announced size reads it back: the refusals below are the sizes' doing alone.
    let exact = announcing(PAYLOAD_SIZE_ATTRIBUTE, &size.to_string());
    assert_eq!(
        read_claim_checked(&clients.s3, &body, &exact)
            .await
            .unwrap(),
        payload
    );
    for name in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
        for announced in [size - 1, size + 1] {
            let attributes = announcing(name, &announced.to_string());
            let result = read_claim_checked(&clients.s3, &body, &attributes).await;
            assert!(
                matches!(
                    result,
                    Err(ClaimCheckError::SizeMismatch { announced: a, actual })
                        if a == announced && actual == size
                ),
                "{name} {announced}: {result:?}"
            );
        }
    }
}

/// A payload of the announced size that is not UTF-8 is refused as such, not handed on.
#[tokio::test]
async fn a_payload_that_is_not_utf8_is_refused() {
    let clients = moto_clients().await;
    // Latin-1 "ü" inside JSON: the right length, the wrong encoding.
    let payload = b"{\"id\":\"M\xfcller\"}";
    let body = stored(&clients, payload).await;
    let attributes = announcing(PAYLOAD_SIZE_ATTRIBUTE, &payload.len().to_string());
    let result = read_claim_checked(&clients.s3, &body, &attributes).await;
    assert!(
        matches!(result, Err(ClaimCheckError::NotUtf8)),
        "{result:?}"
    );
}

/// A size attribute that is not a whole number of bytes makes the message a malformed claim
/// check, naming the value, even when the pointer leads to a readable object.
#[tokio::test]
async fn a_size_attribute_that_is_no_number_is_a_malformed_pointer() {
    let clients = moto_clients().await;
    let payload = r#"{"id":"o-1"}"#;
    let body = stored(&clients, payload.as_bytes()).await;
    for size in ["abc", "-1", "1.5", ""] {
        for name in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
            let result = read_claim_checked(&clients.s3, &body, &announcing(name, size)).await;
            let Err(ClaimCheckError::MalformedPointer(why)) = &result else {
                panic!("{name} {size:?}: {result:?}");
            };
            assert!(why.contains(&format!("{size:?}")), "{why}");
        }
    }
}
