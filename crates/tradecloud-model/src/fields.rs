//! The one reading of the few fields the relay keys, orders and envelopes an object by: its id,
//! `lastUpdatedAt`, `version` and `meta.messageId` (and an event's line ids).
//!
//! Every channel reads them here: the webhook POST's event ([`crate::WebhookBody`]), the
//! object a GET fetched and a poll page's item (`tcrelay_core::envelope::ObjectState`, which
//! the poller reads in its one pass over an order's text). One state must give one key
//! whichever channel brings it (docs/dedupe.md), so an odd value must read alike on all three:
//! before this module each channel had its own rules, and a numeric `messageId`, a time of
//! white space only or an order with both `orderId` and `id` read differently on one channel
//! than on another (a state relayed twice), and a numeric `id` stopped a poll stream for good.
//!
//! The reading is the liberal one: a text is read without the XML white space around it (a
//! tXML leaf may be indented), a number where a text belongs is read by its digits (usable, and
//! the digits a tXML twin would carry), a text of white space only is absent, and any other
//! type is absent. Tradecloud's documented forms (strings, `YYYY-MM-DDThh:mm:ss.SSSZ`) read as
//! they always did, so their keys are unchanged.

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::num::json_type;

/// One member of an object, as far as the rules look at it; a member that is absent or
/// `null` is no `Member` at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member<'a> {
    /// A JSON string, borrowed from the text or value when it can be.
    Text(Cow<'a, str>),
    /// A JSON number, as its digits (serde_json's exact spelling of it, `arbitrary_precision`).
    Number(Cow<'a, str>),
    /// Any other type, by its name in the words of [`json_type`] (`a boolean`, `an object`…).
    Other(&'static str),
}

impl<'a> Member<'a> {
    /// The member `value` (`None` for `null`).
    pub fn of_value(value: &'a Value) -> Option<Self> {
        match value {
            Value::Null => None,
            Value::String(s) => Some(Member::Text(Cow::Borrowed(s))),
            Value::Number(n) => Some(Member::Number(Cow::Borrowed(n.as_str()))),
            other => Some(Member::Other(json_type(other))),
        }
    }

    /// The member whose JSON text is `raw` (`None` for `null`), without building a value: a
    /// string without escapes is borrowed from the text, so the poller's one pass over an
    /// order allocates nothing here for Tradecloud's usual fields. `Err` when `raw` is not JSON.
    pub fn of_raw(raw: &'a RawValue) -> serde_json::Result<Option<Self>> {
        let text = raw.get();
        match text.trim_start().as_bytes().first() {
            Some(b'"') => Ok(Some(Member::Text(
                match serde_json::from_str::<&'a str>(text) {
                    Ok(s) => Cow::Borrowed(s),
                    // Escapes: the text has to be unescaped into a string of its own.
                    Err(_) => Cow::Owned(serde_json::from_str::<String>(text)?),
                },
            ))),
            // A number without an exponent is its digits as a value's are (serde_json keeps them
            // verbatim and spells only an exponent its own way): `version` allocates nothing.
            Some(b'-' | b'0'..=b'9') if !text.contains(['e', 'E']) => {
                Ok(Some(Member::Number(Cow::Borrowed(text.trim()))))
            }
            // A value for the rest: rare, and it spells a number as a value's does.
            _ => {
                Ok(Member::of_value(&serde_json::from_str::<Value>(text)?).map(Member::into_owned))
            }
        }
    }

    /// The member with its text copied out of what it borrowed.
    pub fn into_owned(self) -> Member<'static> {
        match self {
            Member::Text(s) => Member::Text(Cow::Owned(s.into_owned())),
            Member::Number(n) => Member::Number(Cow::Owned(n.into_owned())),
            Member::Other(t) => Member::Other(t),
        }
    }

    /// The type it has, in the words of [`json_type`], for a report of a field of the wrong type.
    pub fn json_type(&self) -> &'static str {
        match self {
            Member::Text(_) => "a string",
            Member::Number(_) => "a number",
            Member::Other(t) => t,
        }
    }
}

/// A text field (`lastUpdatedAt`, `meta.messageId`, a line's `id`, …): a string without the
/// XML white space around it, a number by its digits; absent when blank or of another type.
pub fn text(member: Option<Member<'_>>) -> Option<String> {
    match member? {
        Member::Text(s) => Some(trim_xml_space(&s))
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        Member::Number(digits) => Some(digits.into_owned()),
        Member::Other(_) => None,
    }
}

/// The object's id, read as [`text`]; one of white space only is kept as written, so a poll
/// item with such an id is keyed by it rather than stopping its stream at "no id" (a webhook
/// POST refuses it: an event needs an id it can name).
pub fn id(member: Option<Member<'_>>) -> Option<String> {
    match member? {
        Member::Text(s) if trim_xml_space(&s).is_empty() && !s.is_empty() => Some(s.into_owned()),
        member => text(Some(member)),
    }
}

/// The member an order's id is read from: `orderId` (the webhook event's name for it) when
/// present and not `null`, else `id` (the API's); with the name of the one chosen. Shipments
/// have only `id`.
pub fn order_id_member<T>(order_id: Option<T>, id: Option<T>) -> (&'static str, Option<T>) {
    match order_id {
        Some(order_id) => ("orderId", Some(order_id)),
        None => ("id", id),
    }
}

/// `lastUpdatedAt`, else `meta.lastUpdatedAt` (where shipments carry their time; for orders
/// too, as the poll needs a time), each read as [`text`]: a blank or unusable `lastUpdatedAt`
/// gives way to the other. `meta` is asked only then (the webhook reports a misfit it reads).
pub fn last_updated_at<'m>(
    own: Option<Member<'_>>,
    meta: impl FnOnce() -> Option<Member<'m>>,
) -> Option<String> {
    text(own).or_else(|| text(meta()))
}

/// `version`: a whole number, or a text of one (Tradecloud once quoted numbers, TC-6431;
/// tXML has no numbers), white space around it ignored; absent otherwise.
pub fn version(member: Option<Member<'_>>) -> Option<u64> {
    match member? {
        Member::Text(s) => s.trim().parse().ok(),
        Member::Number(digits) => digits.parse().ok(),
        Member::Other(_) => None,
    }
}

/// `text` without the XML white space (space, tab, carriage return, line feed) around it. tXML
/// is often indented inside its leaves (`<orderId>\n  o-1\n</orderId>`), and the texts the
/// relay reads (ids, event name, timestamps, message id) must read as their JSON twins do;
/// the payload keeps them as sent.
pub fn trim_xml_space(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    /// Whatever the member's JSON, its text and its value give one member.
    #[test]
    fn a_members_text_reads_as_its_value() {
        for text in [
            r#""o-1""#,
            r#""o-\u0031""#,
            r#"" \t ""#,
            r#""""#,
            "12345",
            "1E+3",
            "2.5e-3",
            "-0.50",
            "0",
            "true",
            "[1]",
            r#"{"a":1}"#,
            "null",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let raw = raw(text);
            assert_eq!(
                Member::of_raw(&raw).unwrap(),
                Member::of_value(&value),
                "{text}"
            );
        }
        // The usual members are read where they lie, without a copy.
        assert!(matches!(
            Member::of_raw(&raw(r#""plain""#)).unwrap(),
            Some(Member::Text(Cow::Borrowed("plain")))
        ));
        assert!(matches!(
            Member::of_raw(&raw("17")).unwrap(),
            Some(Member::Number(Cow::Borrowed("17")))
        ));
    }

    #[test]
    fn texts_are_trimmed_numbers_read_by_their_digits_and_blanks_absent() {
        let text_of = |v: Value| text(Member::of_value(&v));
        assert_eq!(
            text_of(Value::from(" \n2025-01-02T00:00:00.000Z\t")).as_deref(),
            Some("2025-01-02T00:00:00.000Z")
        );
        assert_eq!(text_of(serde_json::json!(12345)).as_deref(), Some("12345"));
        assert_eq!(text_of(Value::from(" \t")), None);
        assert_eq!(text_of(Value::from("")), None);
        assert_eq!(text_of(Value::Bool(true)), None);
        assert_eq!(text_of(Value::Null), None);
        // An id of white space only is kept as written; an empty one is absent.
        let id_of = |v: Value| id(Member::of_value(&v));
        assert_eq!(id_of(Value::from("  ")).as_deref(), Some("  "));
        assert_eq!(id_of(Value::from("")), None);
        assert_eq!(id_of(serde_json::json!(123)).as_deref(), Some("123"));
        assert_eq!(id_of(Value::from(" o-1 ")).as_deref(), Some("o-1"));
    }

    #[test]
    fn an_orders_id_is_its_order_id_when_it_has_one() {
        assert_eq!(order_id_member(Some(1), Some(2)), ("orderId", Some(1)));
        assert_eq!(order_id_member(None, Some(2)), ("id", Some(2)));
        assert_eq!(order_id_member::<u8>(None, None), ("id", None));
    }

    #[test]
    fn a_blank_time_gives_way_to_the_meta_time() {
        let (blank, meta) = (Value::from(" "), Value::from("t"));
        assert_eq!(
            last_updated_at(Member::of_value(&blank), || Member::of_value(&meta)).as_deref(),
            Some("t")
        );
    }

    #[test]
    fn a_version_is_a_whole_number_or_a_text_of_one() {
        let version_of = |v: Value| version(Member::of_value(&v));
        assert_eq!(version_of(serde_json::json!(7)), Some(7));
        assert_eq!(version_of(Value::from(" 7 ")), Some(7));
        assert_eq!(version_of(serde_json::json!(7.5)), None);
        assert_eq!(version_of(serde_json::json!(-1)), None);
        assert_eq!(version_of(Value::Bool(true)), None);
    }
}
