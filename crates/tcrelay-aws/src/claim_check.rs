//! The S3 claim check, in the format of the Amazon SQS Extended Client Library, so Java and
//! Python consumers (`amazon-sqs-java-extended-client-lib`, `sqs-extended-client`) read our
//! messages unchanged.
//!
//! A message too large for SQS is stored as an S3 object under a random UUID key; the SQS
//! message body becomes the pointer
//! `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"…","s3Key":"…"}]`
//! (Jackson's typed-array form, as the Java library writes it) and the message attribute
//! `ExtendedPayloadSize` (type `Number`) carries the payload's size in bytes. That is the name the
//! Java library writes since 2.0; 1.x wrote `SQSLargePayloadSize`, which the current libraries
//! still read. We write the current name and read both.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};
use tcrelay_core::ConfigError;
use tcrelay_core::env::{Env, get, number};

use crate::SQS_MAX_MESSAGE_BYTES;
use crate::error::describe;

/// Messages larger than this many bytes (body plus attributes) go through the claim check (1 to
/// 1048576); the queue's `MaximumMessageSize`, when it can be asked and is lower, caps it.
pub const TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES: &str = "TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES";
/// `2.x` (default: `ExtendedPayloadSize` and the payload-offloading pointer class) or `1.x`
/// (`SQSLargePayloadSize` and `com.amazon.sqs.javamessaging.MessageS3Pointer`, for consumers
/// on the Extended Client's 1.x versions).
pub const TCRELAY_CLAIM_CHECK_FORMAT: &str = "TCRELAY_CLAIM_CHECK_FORMAT";
/// The threshold when the queue cannot be asked: SQS's default `MaximumMessageSize` before
/// 2025, which every queue created with older defaults has.
pub const FALLBACK_THRESHOLD: usize = 262_144;

/// The claim-check settings of the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCheckSettings {
    /// [`TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES`]; `None`: the queue's `MaximumMessageSize`.
    pub threshold: Option<usize>,
    /// [`TCRELAY_CLAIM_CHECK_FORMAT`]`=1.x`.
    pub legacy_format: bool,
}

impl ClaimCheckSettings {
    /// Reads [`TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES`] and [`TCRELAY_CLAIM_CHECK_FORMAT`].
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let threshold = match get(env, TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES) {
            None => None,
            Some(_) => match number(env, TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES, 0)? {
                n @ 1..=1_048_576 => Some(n as usize),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES,
                        reason: "must be between 1 and 1048576".into(),
                    });
                }
            },
        };
        let legacy_format = match get(env, TCRELAY_CLAIM_CHECK_FORMAT) {
            None | Some("2.x") => false,
            Some("1.x") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: TCRELAY_CLAIM_CHECK_FORMAT,
                    reason: format!("{other:?} is neither 2.x nor 1.x"),
                });
            }
        };
        Ok(Self {
            threshold,
            legacy_format,
        })
    }
}

/// The claim-check threshold of `queue_url`: the queue's `MaximumMessageSize`
/// (GetQueueAttributes), or the override of `settings` when there is one and the queue's limit
/// is not lower. When the queue cannot be asked the relay still works, with the override or
/// else [`FALLBACK_THRESHOLD`]: a threshold below the queue's limit only claim-checks more,
/// one above it would answer every message between the two 503 for ever (and fail every poll
/// run at its page), which is why a lower limit of the queue caps even the override.
pub async fn claim_check_threshold(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    settings: &ClaimCheckSettings,
) -> usize {
    let Some(wanted) = settings.threshold else {
        return queue_limit(sqs, queue_url).await;
    };
    match ask_queue_limit(sqs, queue_url).await {
        Ok(limit) if limit < wanted => {
            tracing::error!(
                variable = TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES,
                threshold = wanted,
                queue = queue_url,
                queue_limit = limit,
                "TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES is above the queue's MaximumMessageSize, \
                 which would refuse every message between the two: claim-checking above the \
                 queue's limit instead; lower the setting or raise the queue's limit"
            );
            limit
        }
        _ => wanted,
    }
}

/// `queue_url`'s `MaximumMessageSize` (at most SQS's limit), or [`FALLBACK_THRESHOLD`] when the
/// queue cannot be asked.
async fn queue_limit(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    match ask_queue_limit(sqs, queue_url).await {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(
                queue = queue_url,
                %error,
                threshold = FALLBACK_THRESHOLD,
                "cannot read the queue's MaximumMessageSize; claim-checking above the fallback"
            );
            FALLBACK_THRESHOLD
        }
    }
}

/// `queue_url`'s `MaximumMessageSize` (at most SQS's limit), or why it cannot be read.
async fn ask_queue_limit(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<usize, String> {
    let asked = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize)
        .send()
        .await;
    let size = asked.as_ref().ok().and_then(|out| {
        out.attributes()?
            .get(&aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize)?
            .parse::<usize>()
            .ok()
    });
    match size {
        Some(size) => Ok(size.min(SQS_MAX_MESSAGE_BYTES)),
        None => Err(match &asked {
            Err(e) => describe("SQS GetQueueAttributes", e),
            Ok(_) => "no MaximumMessageSize in the answer".to_owned(),
        }),
    }
}

/// A queue's claim-check threshold in bytes: fixed, or the queue's own `MaximumMessageSize`
/// ([`claim_check_threshold`]), asked once, when a message first needs it or when
/// [`Self::prefetch`] starts the question early.
///
/// Asking at start-up cost a Lambda cold start one SQS round trip per queue before it could
/// take its first request (about half of the webhook's Init Duration); asked in the
/// background, the round trip overlaps the first request's dedupe claim instead.
#[derive(Clone)]
pub struct Threshold(Arc<Source>);

enum Source {
    Fixed(usize),
    Queue {
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        settings: ClaimCheckSettings,
        asked: tokio::sync::OnceCell<usize>,
    },
}

impl std::fmt::Debug for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_ref() {
            Source::Fixed(bytes) => f.debug_tuple("Threshold::Fixed").field(bytes).finish(),
            Source::Queue {
                queue_url,
                settings,
                asked,
                ..
            } => f
                .debug_struct("Threshold::Queue")
                .field("queue_url", queue_url)
                .field("override", &settings.threshold)
                .field("asked", &asked.get())
                .finish(),
        }
    }
}

impl From<usize> for Threshold {
    fn from(bytes: usize) -> Self {
        Self::fixed(bytes)
    }
}

impl Threshold {
    /// Always `bytes`.
    pub fn fixed(bytes: usize) -> Self {
        Self(Arc::new(Source::Fixed(bytes)))
    }

    /// `queue_url`'s threshold as [`claim_check_threshold`] finds it (the queue's
    /// `MaximumMessageSize`, or the override of `settings` unless the queue's limit is lower),
    /// asked of SQS once, on first need. The queue is asked even with an override: one above
    /// the queue's limit would have SQS refuse every message between the two for ever.
    pub fn of_queue(
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        settings: &ClaimCheckSettings,
    ) -> Self {
        Self(Arc::new(Source::Queue {
            sqs: sqs.clone(),
            queue_url: queue_url.to_owned(),
            settings: *settings,
            asked: tokio::sync::OnceCell::new(),
        }))
    }

    /// The threshold, asking the queue if nobody has yet; concurrent callers share one
    /// question.
    pub async fn bytes(&self) -> usize {
        match self.0.as_ref() {
            Source::Fixed(bytes) => *bytes,
            Source::Queue {
                sqs,
                queue_url,
                settings,
                asked,
            } => {
                *asked
                    .get_or_init(|| claim_check_threshold(sqs, queue_url, settings))
                    .await
            }
        }
    }

    /// Starts asking the queue in the background (on the current tokio runtime, if there is
    /// one), so the first message rarely waits for the answer.
    pub fn prefetch(&self) {
        if matches!(self.0.as_ref(), Source::Fixed(_)) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let threshold = self.clone();
            runtime.spawn(async move { threshold.bytes().await });
        }
    }
}

/// The pointer class name the Extended Client writes (payload-offloading library).
pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
/// The pointer class name of the Java library's 1.x versions, still accepted when reading.
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
/// The message attribute carrying the offloaded payload's size (Extended Client 2.x and later).
pub const PAYLOAD_SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
/// The same attribute as named by the Java library's 1.x versions; read, never written.
pub const LEGACY_PAYLOAD_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// A failure to store or follow a claim check.
#[derive(Debug, thiserror::Error)]
pub enum ClaimCheckError {
    /// S3 failed (transient for the caller).
    #[error("S3: {0}")]
    S3(String),
    /// The message claims an offloaded payload but its pointer cannot be read.
    #[error("malformed claim-check pointer: {0}")]
    MalformedPointer(String),
    /// The stored payload does not have the size the message announced.
    #[error("claim-checked payload is {actual} bytes, the message announced {announced}")]
    SizeMismatch {
        /// The size in the message attribute.
        announced: u64,
        /// The size of the S3 object.
        actual: u64,
    },
    /// The payload is not UTF-8 text.
    #[error("claim-checked payload is not UTF-8")]
    NotUtf8,
}

/// Where an offloaded payload lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadS3Pointer {
    /// The bucket.
    #[serde(rename = "s3BucketName")]
    pub bucket: String,
    /// The object key.
    #[serde(rename = "s3Key")]
    pub key: String,
}

impl PayloadS3Pointer {
    /// The SQS message body for this pointer, exactly as the Extended Client writes it.
    pub fn to_body(&self) -> String {
        self.to_body_of(POINTER_CLASS)
    }

    /// The body with the pointer class `class` ([`POINTER_CLASS`] or [`LEGACY_POINTER_CLASS`]).
    pub fn to_body_of(&self, class: &str) -> String {
        // A (class name, fields) tuple serialises as the two-element array Jackson writes; the
        // struct keeps the field order `s3BucketName`, `s3Key`.
        serde_json::to_string(&(class, self)).expect("a pair of strings serialises")
    }

    /// Parses a pointer body (current or legacy class name).
    pub fn from_body(body: &str) -> Result<Self, ClaimCheckError> {
        let (class, pointer): (String, PayloadS3Pointer) = serde_json::from_str(body)
            .map_err(|e| ClaimCheckError::MalformedPointer(e.to_string()))?;
        if class != POINTER_CLASS && class != LEGACY_POINTER_CLASS {
            return Err(ClaimCheckError::MalformedPointer(format!(
                "unknown pointer class {class:?}"
            )));
        }
        Ok(pointer)
    }
}

/// Stores payloads in an S3 bucket for the claim check.
#[derive(Debug, Clone)]
pub struct ClaimCheck {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key_prefix: String,
    legacy_format: bool,
}

impl ClaimCheck {
    /// Payloads go to `bucket` under random UUID keys. The client must use path-style
    /// addressing for emulators (see [`crate::AwsClients`]).
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        ClaimCheck {
            s3,
            bucket: bucket.into(),
            key_prefix: String::new(),
            legacy_format: false,
        }
    }

    /// Writes the Extended Client 1.x format ([`LEGACY_POINTER_CLASS`],
    /// [`LEGACY_PAYLOAD_SIZE_ATTRIBUTE`]) when `legacy` is true.
    pub fn with_legacy_format(mut self, legacy: bool) -> Self {
        self.legacy_format = legacy;
        self
    }

    /// The message body for `pointer` in the configured format.
    pub fn pointer_body(&self, pointer: &PayloadS3Pointer) -> String {
        if self.legacy_format {
            pointer.to_body_of(LEGACY_POINTER_CLASS)
        } else {
            pointer.to_body()
        }
    }

    /// The name of the payload size attribute in the configured format.
    pub fn size_attribute(&self) -> &'static str {
        if self.legacy_format {
            LEGACY_PAYLOAD_SIZE_ATTRIBUTE
        } else {
            PAYLOAD_SIZE_ATTRIBUTE
        }
    }

    /// Puts keys under a prefix (for example `quarantine/`), like the Java library's
    /// `s3KeyPrefix`; the key stays a UUID after it.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The bucket payloads go to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores `payload` and returns the pointer to it.
    pub async fn store(&self, payload: &[u8]) -> Result<PayloadS3Pointer, ClaimCheckError> {
        let key = format!("{}{}", self.key_prefix, uuid::Uuid::new_v4());
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(payload.to_vec()))
            .send()
            .await
            .map_err(|e| ClaimCheckError::S3(describe("S3 PutObject", &e)))?;
        tracing::debug!(bucket = %self.bucket, key = %key, bytes = payload.len(), "payload claim-checked to S3");
        Ok(PayloadS3Pointer {
            bucket: self.bucket.clone(),
            key,
        })
    }
}

/// The payload size announced by a message's attributes, if the message is a claim check.
pub fn announced_payload_size(
    attributes: &HashMap<String, MessageAttributeValue>,
) -> Result<Option<u64>, ClaimCheckError> {
    let Some(value) = attributes
        .get(PAYLOAD_SIZE_ATTRIBUTE)
        .or_else(|| attributes.get(LEGACY_PAYLOAD_SIZE_ATTRIBUTE))
    else {
        return Ok(None);
    };
    let text = value.string_value().unwrap_or_default();
    text.trim().parse::<u64>().map(Some).map_err(|_| {
        ClaimCheckError::MalformedPointer(format!(
            "payload size attribute {text:?} is not a number"
        ))
    })
}

/// The message's real body: the body itself, or, for a claim check (an `ExtendedPayloadSize` or
/// `SQSLargePayloadSize` attribute), the S3 object the pointer names. Used by tests and by the
/// local CLI to read what the ERP would read.
pub async fn read_claim_checked(
    s3: &aws_sdk_s3::Client,
    body: &str,
    attributes: &HashMap<String, MessageAttributeValue>,
) -> Result<String, ClaimCheckError> {
    let Some(announced) = announced_payload_size(attributes)? else {
        return Ok(body.to_owned());
    };
    let pointer = PayloadS3Pointer::from_body(body)?;
    let object = s3
        .get_object()
        .bucket(&pointer.bucket)
        .key(&pointer.key)
        .send()
        .await
        .map_err(|e| ClaimCheckError::S3(describe("S3 GetObject", &e)))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| ClaimCheckError::S3(format!("S3 GetObject body: {e}")))?
        .into_bytes();
    if bytes.len() as u64 != announced {
        return Err(ClaimCheckError::SizeMismatch {
            announced,
            actual: bytes.len() as u64,
        });
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| ClaimCheckError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_check_settings_are_read_and_bounded() {
        let read = |pairs: &[(&str, &str)]| {
            ClaimCheckSettings::from_env_map(&tcrelay_core::env::env_map(pairs))
        };
        assert_eq!(read(&[]).unwrap(), ClaimCheckSettings::default());
        let s = read(&[
            (TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES, "262144"),
            (TCRELAY_CLAIM_CHECK_FORMAT, "1.x"),
        ])
        .unwrap();
        assert_eq!(s.threshold, Some(262_144));
        assert!(s.legacy_format);
        assert!(
            !read(&[(TCRELAY_CLAIM_CHECK_FORMAT, "2.x")])
                .unwrap()
                .legacy_format
        );
        for (var, value) in [
            (TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES, "0"),
            (TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES, "1048577"),
            (TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES, "big"),
            (TCRELAY_CLAIM_CHECK_FORMAT, "3"),
        ] {
            let err = read(&[(var, value)]).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn pointer_body_has_the_extended_client_shape() {
        let pointer = PayloadS3Pointer {
            bucket: "b".into(),
            key: "k".into(),
        };
        assert_eq!(
            pointer.to_body(),
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#
        );
        assert_eq!(
            PayloadS3Pointer::from_body(&pointer.to_body()).unwrap(),
            pointer
        );
    }

    #[test]
    fn legacy_pointer_class_is_read_and_unknown_ones_refused() {
        let legacy =
            r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#;
        assert_eq!(PayloadS3Pointer::from_body(legacy).unwrap().key, "k");
        let other = r#"["x.Y",{"s3BucketName":"b","s3Key":"k"}]"#;
        assert!(PayloadS3Pointer::from_body(other).is_err());
        assert!(PayloadS3Pointer::from_body("{}").is_err());
    }

    #[test]
    fn both_size_attribute_names_are_read() {
        for name in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
            let mut attrs = HashMap::new();
            attrs.insert(
                name.to_owned(),
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value("42")
                    .build()
                    .unwrap(),
            );
            assert_eq!(announced_payload_size(&attrs).unwrap(), Some(42));
        }
        assert_eq!(announced_payload_size(&HashMap::new()).unwrap(), None);
    }
}
