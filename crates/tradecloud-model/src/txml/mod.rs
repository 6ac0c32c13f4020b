//! tXML, Tradecloud's XML form of its JSON messages: "a one-to-one mapping of the JSON format".
//!
//! The root element is the type name (`<WebhookBody>`; another name is read all the same,
//! and reported, as the name carries no data); object fields are child elements of the
//! same name; lists have no wrapper and repeat one element per item under a singular name
//! (`lines` → `<line>`). A wrapping writer's list is read too: the items inside an element
//! of the list's own name (`<lines><line>…</line></lines>`), and that element empty
//! (`<lines/>`) as the empty list. [`crate::schema`] says which elements are lists and which leaves are
//! numbers or booleans, so that reading gives exactly the JSON the same message has.
//!
//! Reading refuses document type declarations and any entity other than XML's predefined five,
//! so no entity can be expanded, and caps nesting depth. A body in another encoding than UTF-8
//! (UTF-16, or what its declaration or the content type's `charset` names) is transcoded to
//! UTF-8 first ([`encoding`]).

pub mod encoding;
mod read;
mod write;

pub use read::{MAX_DEPTH, read_document, read_document_in};
pub use write::{EncodeError, write_document};

use serde_json::Value;

use crate::error::DecodeError;
use crate::lenient::Leniencies;
use crate::schema::{WEBHOOK_BODY_SHAPE, WEBHOOK_ROOT};

/// Reads a tXML webhook body (`<WebhookBody>`) into its JSON value.
pub fn from_txml(bytes: &[u8]) -> Result<Value, DecodeError> {
    from_txml_lenient(bytes, &mut Leniencies::new())
}

/// Reads a tXML webhook body (`<WebhookBody>`) into its JSON value, recording each value that
/// does not fit the schema (kept as read) in `leniencies`.
pub fn from_txml_lenient(bytes: &[u8], leniencies: &mut Leniencies) -> Result<Value, DecodeError> {
    from_txml_in(bytes, None, leniencies)
}

/// [`from_txml_lenient`] for a body sent with the content type's `charset` parameter, the
/// encoding assumed when neither a byte-order mark nor the XML declaration says
/// ([`encoding::to_utf8`]).
pub fn from_txml_in(
    bytes: &[u8],
    charset: Option<&str>,
    leniencies: &mut Leniencies,
) -> Result<Value, DecodeError> {
    read_document_in(
        bytes,
        charset,
        WEBHOOK_ROOT,
        &WEBHOOK_BODY_SHAPE,
        leniencies,
    )
}

/// Writes a webhook body JSON value as tXML (`<WebhookBody>`).
pub fn to_txml(body: &Value) -> Result<String, EncodeError> {
    write_document(WEBHOOK_ROOT, body, &WEBHOOK_BODY_SHAPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsi_nil_true_or_1_reads_as_null_and_delivery_history_is_a_list() {
        let xml = r#"<WebhookBody xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <eventName>OrderLinesDeliveryHistorySetByBuyer</eventName>
            <orderEvent>
              <orderId>o-1</orderId>
              <reason xsi:nil="1"/>
              <portalUrl xsi:nil="true"/>
              <line>
                <id>l-1</id>
                <deliveryHistoryLine><position>1</position><quantity>2.50</quantity></deliveryHistoryLine>
                <buyerLine><item><dimension><attribute>mass</attribute><measure>5</measure></dimension></item></buyerLine>
              </line>
            </orderEvent>
          </WebhookBody>"#;
        let value = from_txml(xml.as_bytes()).unwrap();
        let event = &value["orderEvent"];
        assert!(event["reason"].is_null() && event["portalUrl"].is_null());
        let line = &event["lines"][0];
        assert_eq!(line["deliveryHistory"][0]["quantity"].to_string(), "2.50");
        assert_eq!(
            line["buyerLine"]["item"]["dimensions"][0]["measure"].to_string(),
            "5"
        );
    }
}
