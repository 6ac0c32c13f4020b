//! One outgoing SQS message: body, attributes, FIFO ids, its size as SQS counts it, and the claim
//! check that replaces a too-large body with an S3 pointer.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use crate::claim_check::{ClaimCheck, Threshold};

/// A message attribute (`String` or `Number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub name: String,
    pub data_type: &'static str,
    pub value: String,
}

impl Attribute {
    /// A `String` attribute. SQS refuses a value with a character outside XML's set (control
    /// characters but tab, newline and carriage return; U+FFFE, U+FFFF), and would refuse it on
    /// every retry; such characters (possible in an id or event name a body carries) become
    /// U+FFFD here. The attributes are for filtering: the envelope in the body keeps the value
    /// exactly.
    pub fn string(name: &str, value: &str) -> Self {
        let refused = |c: char| {
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
        };
        let value = if value.contains(refused) {
            value.replace(refused, "\u{FFFD}")
        } else {
            value.to_owned()
        };
        Attribute {
            name: name.to_owned(),
            data_type: "String",
            value,
        }
    }

    /// SQS counts name, data type and value towards the message size.
    fn size(&self) -> usize {
        self.name.len() + self.data_type.len() + self.value.len()
    }

    fn to_sqs(&self) -> Result<MessageAttributeValue, String> {
        MessageAttributeValue::builder()
            .data_type(self.data_type)
            .string_value(&self.value)
            .build()
            .map_err(|e| format!("message attribute {}: {e}", self.name))
    }
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub(crate) struct OutgoingMessage {
    pub body: String,
    pub attributes: Vec<Attribute>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl OutgoingMessage {
    /// The size SQS counts against its message and batch limits: body plus attributes.
    pub fn size(&self) -> usize {
        self.body.len() + self.attributes.iter().map(Attribute::size).sum::<usize>()
    }

    /// Replaces the body with an S3 pointer when the message exceeds `threshold`, as the
    /// Extended Client does (it too counts the attributes). Without a claim check configured a
    /// too-large message is refused here rather than by SQS, with a reason an operator can act on.
    pub async fn claim_check_if_large(
        mut self,
        claim_check: Option<&ClaimCheck>,
        threshold: &Threshold,
    ) -> Result<Self, String> {
        let threshold = threshold.bytes().await;
        if self.size() <= threshold {
            return Ok(self);
        }
        let Some(claim_check) = claim_check else {
            return Err(format!(
                "message of {} bytes exceeds the SQS limit of {threshold} bytes and no claim-check bucket is configured",
                self.size()
            ));
        };
        let payload_size = self.body.len();
        let pointer = claim_check
            .store(self.body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        self.body = claim_check.pointer_body(&pointer);
        self.attributes.push(Attribute {
            name: claim_check.size_attribute().to_owned(),
            data_type: "Number",
            value: payload_size.to_string(),
        });
        Ok(self)
    }

    /// The attributes as the SDK wants them.
    pub fn sqs_attributes(
        &self,
    ) -> Result<std::collections::HashMap<String, MessageAttributeValue>, String> {
        self.attributes
            .iter()
            .map(|a| Ok((a.name.clone(), a.to_sqs()?)))
            .collect()
    }

    /// A `SendMessageBatch` entry with the given entry id.
    pub fn to_batch_entry(&self, id: &str) -> Result<SendMessageBatchRequestEntry, String> {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(&self.body)
            .set_message_attributes(Some(self.sqs_attributes()?))
            .set_message_group_id(self.group_id.clone())
            .set_message_deduplication_id(self.deduplication_id.clone())
            .build()
            .map_err(|e| format!("batch entry: {e}"))
    }
}

/// Makes JSON text acceptable to SQS, which refuses characters outside XML's set. serde_json
/// already escapes control characters; the two noncharacters U+FFFE and U+FFFF can still appear
/// raw inside strings (never elsewhere, JSON's structure is ASCII), and `\uXXXX` escapes of them
/// are the same JSON value.
pub(crate) fn sqs_safe_json(json: String) -> String {
    if !json.contains(['\u{FFFE}', '\u{FFFF}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '\u{FFFE}' => out.push_str("\\ufffe"),
            '\u{FFFF}' => out.push_str("\\uffff"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_attributes_hold_only_characters_sqs_accepts() {
        let sqs_accepts = |c: char| {
            matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}'
        };
        let odd = "Order\u{1}Issued\u{1b}[2J\u{FFFE}\u{FFFF}\tby é 😀";
        let attribute = Attribute::string("eventName", odd);
        assert!(
            attribute.value.chars().all(sqs_accepts),
            "{:?}",
            attribute.value
        );
        assert_eq!(
            attribute.value,
            "Order\u{FFFD}Issued\u{FFFD}[2J\u{FFFD}\u{FFFD}\tby é 😀"
        );
        assert_eq!(Attribute::string("id", "o-1").value, "o-1");
    }

    #[test]
    fn size_counts_body_and_attribute_names_types_and_values() {
        let message = OutgoingMessage {
            body: "12345".into(),
            attributes: vec![Attribute::string("id", "abc")],
            group_id: Some("ignored by the size".into()),
            deduplication_id: None,
        };
        assert_eq!(message.size(), 5 + 2 + "String".len() + 3);
    }

    #[tokio::test]
    async fn a_message_over_the_threshold_without_a_bucket_is_refused() {
        let message = OutgoingMessage {
            body: "x".repeat(20),
            attributes: vec![Attribute::string("id", "abc")],
            group_id: None,
            deduplication_id: None,
        };
        // 20 bytes of body fit, the attribute pushes it over: attributes count.
        let err = message
            .clone()
            .claim_check_if_large(None, &25.into())
            .await
            .unwrap_err();
        assert!(err.contains("no claim-check bucket"), "{err}");
        let kept = message
            .claim_check_if_large(None, &31.into())
            .await
            .unwrap();
        assert_eq!(kept.body.len(), 20);
    }

    #[test]
    fn noncharacters_are_escaped_and_the_json_value_is_unchanged() {
        let value = serde_json::json!({"a": "x\u{FFFF}y\u{FFFE}"});
        let raw = serde_json::to_string(&value).unwrap();
        let safe = sqs_safe_json(raw.clone());
        assert!(!safe.contains('\u{FFFF}') && !safe.contains('\u{FFFE}'));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
        let plain = r#"{"a":"b"}"#.to_owned();
        assert_eq!(sqs_safe_json(plain.clone()), plain);
    }
}
