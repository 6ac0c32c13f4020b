//! `SendMessageBatch` requests written by us instead of the SDK's serializer.
//!
//! Every message body is an envelope, JSON text, so SQS's JSON protocol carries it escaped: each
//! `"` of the body becomes `\"`. The SDK's JSON writer (`aws-smithy-json`) escapes a string that
//! needs any escape one byte at a time into a string of its own, then copies that; on the poll
//! path it was about a fifth of the relay's CPU (BENCHMARKS.md, "Poll cost", round 7). Here the
//! texts are written by `tcrelay-json-string` (a SIMD escape that writes serde_json's bytes,
//! which are the SDK's) into the request's one buffer.
//!
//! The request is otherwise the one the SDK writes: the same method, path and headers, the same
//! members in the same order (a test compares both byte for byte, every member set). Only the
//! serializer is replaced, through the SDK's own seam: an interceptor puts it in the request's
//! config bag before serialization, where the orchestrator looks it up. Signing, retries,
//! endpoint resolution and the response stay the SDK's.

use aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::ser_de::{SerializeRequest, SharedRequestSerializer};
use aws_smithy_types::body::SdkBody;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use tcrelay_json_string::{scratch_room, write_string};

/// The client `client` with [`BatchRequests`] added: the same configuration, connections and
/// credentials, its `SendMessageBatch` requests written here.
pub(crate) fn with_batch_requests(client: aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(BatchRequests)
            .build(),
    )
}

/// Puts [`BatchSerializer`] in the config bag of every `SendMessageBatch` call.
#[derive(Debug)]
pub(crate) struct BatchRequests;

impl Intercept for BatchRequests {
    fn name(&self) -> &'static str {
        "BatchRequests"
    }

    // A read hook, so any interceptor's changes to the input (tests make some) come first.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .input()
            .downcast_ref::<SendMessageBatchInput>()
            .is_some()
        {
            cfg.interceptor_state()
                .store_put(SharedRequestSerializer::new(BatchSerializer));
        }
        Ok(())
    }
}

/// Writes a `SendMessageBatch` request as the SDK's serializer does (awsJson1.0 with the
/// query-compatible header), the texts written by [`write_string`].
#[derive(Debug)]
struct BatchSerializer;

impl SerializeRequest for BatchSerializer {
    fn serialize_input(&self, input: Input, _: &mut ConfigBag) -> Result<HttpRequest, BoxError> {
        let input = input
            .downcast::<SendMessageBatchInput>()
            .map_err(|_| "BatchSerializer was given another operation's input")?;
        #[cfg(test)]
        tests::WRITTEN.with(|written| written.set(written.get() + 1));
        let entries = input.entries();
        let texts: usize = entries.iter().map(|e| e.message_body.len()).sum();
        let longest = entries.iter().map(|e| e.message_body.len()).max();
        // Room for the bodies with an escape in about one byte in eight (an envelope's quotes),
        // the members around them, and the escape's scratch room for the longest piece, so the
        // buffer rarely grows.
        let mut body = Vec::with_capacity(
            texts + texts / 8 + 512 * entries.len() + 256 + scratch_room(longest.unwrap_or(0)),
        );
        write_batch(&mut body, &input)?;
        let mut request = HttpRequest::new(SdkBody::empty());
        request.set_method("POST")?;
        request.set_uri("/")?;
        let headers = request.headers_mut();
        headers.try_insert("content-type", "application/x-amz-json-1.0")?;
        headers.try_insert("x-amz-target", "AmazonSQS.SendMessageBatch")?;
        headers.try_insert("x-amzn-query-mode", "true")?;
        headers.try_insert("content-length", body.len().to_string())?;
        *request.body_mut() = SdkBody::from(body);
        Ok(request)
    }
}

/// The request body: the input's members in the SDK's order, absent ones left out. Written
/// member by member rather than through serde, so that each text goes through
/// [`write_string`]; the rare attribute maps go through serde_json.
fn write_batch(out: &mut Vec<u8>, input: &SendMessageBatchInput) -> serde_json::Result<()> {
    let mut batch = Object::open(out);
    if let Some(url) = &input.queue_url {
        write_string(batch.member("QueueUrl"), url);
    }
    if let Some(entries) = &input.entries {
        let out = batch.member("Entries");
        out.push(b'[');
        for (index, entry) in entries.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_entry(out, entry)?;
        }
        out.push(b']');
    }
    batch.close();
    Ok(())
}

/// One `SendMessageBatchRequestEntry`.
fn write_entry(out: &mut Vec<u8>, entry: &SendMessageBatchRequestEntry) -> serde_json::Result<()> {
    let mut object = Object::open(out);
    write_string(object.member("Id"), &entry.id);
    write_string(object.member("MessageBody"), &entry.message_body);
    if let Some(delay) = entry.delay_seconds {
        serde_json::to_writer(object.member("DelaySeconds"), &delay)?;
    }
    if let Some(attributes) = &entry.message_attributes {
        // The map's own iteration order, as the SDK writes it.
        serde_json::to_writer(
            object.member("MessageAttributes"),
            &Map(attributes
                .iter()
                .map(|(name, value)| (name.as_str(), Attribute::from(value)))),
        )?;
    }
    if let Some(attributes) = &entry.message_system_attributes {
        serde_json::to_writer(
            object.member("MessageSystemAttributes"),
            &Map(attributes
                .iter()
                .map(|(name, value)| (name.as_str(), Attribute::from(value)))),
        )?;
    }
    if let Some(id) = &entry.message_deduplication_id {
        write_string(object.member("MessageDeduplicationId"), id);
    }
    if let Some(id) = &entry.message_group_id {
        write_string(object.member("MessageGroupId"), id);
    }
    object.close();
    Ok(())
}

/// A JSON object being written: commas between its members.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes the member's name (a constant with nothing to escape); its value goes after it.
    fn member(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// A `MessageAttributeValue` or `MessageSystemAttributeValue` (the same members).
struct Attribute<'a> {
    string: Option<&'a str>,
    binary: Option<&'a Blob>,
    strings: Option<&'a [String]>,
    binaries: Option<&'a [Blob]>,
    data_type: &'a str,
}

/// `From` for each SDK type with an attribute's members (distinct types, the same fields).
macro_rules! attribute_from {
    ($($value:ty),*) => {$(
        impl<'a> From<&'a $value> for Attribute<'a> {
            fn from(value: &'a $value) -> Self {
                Attribute {
                    string: value.string_value.as_deref(),
                    binary: value.binary_value.as_ref(),
                    strings: value.string_list_values.as_deref(),
                    binaries: value.binary_list_values.as_deref(),
                    data_type: &value.data_type,
                }
            }
        }
    )*};
}

attribute_from!(MessageAttributeValue, MessageSystemAttributeValue);

impl Serialize for Attribute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let base64 = |blob: &Blob| aws_smithy_types::base64::encode(blob.as_ref());
        let mut map = serializer.serialize_map(None)?;
        if let Some(value) = self.string {
            map.serialize_entry("StringValue", value)?;
        }
        if let Some(value) = self.binary {
            map.serialize_entry("BinaryValue", &base64(value))?;
        }
        if let Some(values) = self.strings {
            map.serialize_entry("StringListValues", values)?;
        }
        if let Some(values) = self.binaries {
            map.serialize_key("BinaryListValues")?;
            map.serialize_value(&Seq(values.iter().map(base64)))?;
        }
        map.serialize_entry("DataType", self.data_type)?;
        map.end()
    }
}

/// A sequence written from an iterator, without collecting it.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for item in self.0.clone() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// A map written from an iterator of pairs, in its order.
struct Map<I>(I);

impl<'a, I, V> Serialize for Map<I>
where
    I: Iterator<Item = (&'a str, V)> + Clone,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.0.clone() {
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests;
