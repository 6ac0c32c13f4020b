//! The two dedupe keys (docs/design.md, "Dedupe: two keys").
//!
//! - The **message key** identifies one webhook message, so Tradecloud's retries of it are
//!   suppressed. It is built from what the message says about itself, not from `meta.messageId`
//!   alone, because nothing promises that a retry keeps the same `messageId`.
//! - The **state key** identifies one state of an object (class, id, `lastUpdatedAt`), written by
//!   every channel, so a poll or GET result already relayed, or a webhook event whose complete
//!   state was already relayed, reaches the ERP once.
//!
//! Keys are readable (`msg/order/<id>/…`) for the operator looking at the table; each
//! variable part is escaped so no two different inputs give the same key. docs/dedupe.md
//! describes the encoding and why keys stored by earlier versions stay valid.

use sha2::{Digest, Sha256};
use tradecloud_model::{ObjectClass, key_part, timestamp};

/// The event names that deliberately re-deliver an unchanged state (a user pressed "resend").
/// They are keyed on `meta.messageId` so each resend goes through while retries of it do not.
pub const RESEND_EVENTS: [&str; 3] = [
    "OrderResentByBuyer",
    "OrderResentBySupplier",
    "ShipmentResentByBuyer",
];

/// What every dedupe key starts with: message keys, state keys, and keys too long to store
/// as they are. The SAM template's IAM condition (`dynamodb:LeadingKeys`) confines the webhook
/// to these, so it cannot touch the poller's cursor items; a new kind of key needs its prefix
/// here and there.
pub const KEY_PREFIXES: [&str; 3] = ["msg/", "state/", "hashed/"];

/// What the keys of whole objects (a GET's fetch, a poll) start with: state keys, and those too
/// long to store as they are. The poller, which relays only whole objects, is confined to these
/// (and its cursors) by the template's IAM condition.
pub const OBJECT_KEY_PREFIXES: [&str; 2] = ["state/", "hashed/"];

/// Longest key we store as is. DynamoDB allows 2048 bytes for a partition key; anything longer
/// than this (only possible with absurd ids) is replaced by its hash, which stays unique.
const MAX_KEY_LEN: usize = 1024;

/// Whether `event_name` is one of the [`RESEND_EVENTS`].
pub fn is_resend_event(event_name: &str) -> bool {
    RESEND_EVENTS.contains(&event_name)
}

/// What the message key of a webhook event is built from.
#[derive(Debug, Clone, Copy)]
pub struct MessageKeyParts<'a> {
    /// The object class (both order forms are one class).
    pub class: ObjectClass,
    /// Order id or shipment id.
    pub id: &'a str,
    /// Tradecloud's `eventName`.
    pub event_name: &'a str,
    /// The object's `lastUpdatedAt`, when the event has one.
    pub last_updated_at: Option<&'a str>,
    /// `meta.messageId`, when the event has one.
    pub message_id: Option<&'a str>,
    /// The ids of the lines the event carries (order events carry the affected lines only).
    pub line_ids: &'a [&'a str],
    /// The raw request body, hashed when nothing else identifies the message.
    pub raw_body: &'a [u8],
}

/// The message key of a webhook POST:
///
/// - resend events: class + id + `meta.messageId` (`msg/<class>/<id>/resend/<messageId>`), or
///   the body hash when there is no `messageId`;
/// - events with a `lastUpdatedAt`: class + id + `lastUpdatedAt` + `eventName` + a digest of the
///   sorted line ids (`msg/<class>/<id>/<lastUpdatedAt>/<eventName>/L<count>-<digest>`), because
///   one action can emit several events at the same `lastUpdatedAt`, each for other lines;
/// - otherwise `meta.messageId` (`…/mid/<messageId>`), else a SHA-256 of the raw body
///   (`…/body/<sha256>`).
pub fn message_key(parts: &MessageKeyParts<'_>) -> String {
    let prefix = format!("msg/{}/{}", parts.class.as_str(), key_part(parts.id));
    let message_id = parts.message_id.filter(|m| !m.is_empty());
    let last_updated_at = parts.last_updated_at.filter(|t| !t.is_empty());
    let key = if is_resend_event(parts.event_name) {
        match message_id {
            Some(mid) => format!("{prefix}/resend/{}", key_part(mid)),
            None => format!("{prefix}/body/{}", sha256_hex(parts.raw_body)),
        }
    } else if let Some(at) = last_updated_at {
        format!(
            "{prefix}/{}/{}/{}",
            key_part(&normalise_timestamp(at)),
            key_part(parts.event_name),
            lines_digest(parts.line_ids)
        )
    } else if let Some(mid) = message_id {
        format!("{prefix}/mid/{}", key_part(mid))
    } else {
        format!("{prefix}/body/{}", sha256_hex(parts.raw_body))
    };
    bounded(key)
}

/// The state key: class + id + `lastUpdatedAt` (`state/<class>/<id>/<lastUpdatedAt>`), the same
/// for both order forms and for every channel. The timestamp is written as its instant
/// ([`canonical_instant`]) so `+00:00` and `Z` spellings, or `.1Z` and `.100Z`, agree.
pub fn state_key(class: ObjectClass, id: &str, last_updated_at: &str) -> String {
    bounded(format!(
        "state/{}/{}/{}",
        class.as_str(),
        key_part(id),
        key_part(&normalise_timestamp(last_updated_at))
    ))
}

/// The key a poll claims when it sends an object's state whole without checking which of its
/// changes webhook events relayed (too many to check; docs/design.md, "Webhook and poll
/// together"): the state key with `/whole` after it (`state/<class>/<id>/<lastUpdatedAt>/whole`),
/// so a later run that reads the same state finds it sent. No state key has a fourth part (each
/// part is escaped), so none equals it.
pub fn whole_state_key(class: ObjectClass, id: &str, last_updated_at: &str) -> String {
    bounded(format!(
        "state/{}/{}/{}/whole",
        class.as_str(),
        key_part(id),
        key_part(&normalise_timestamp(last_updated_at))
    ))
}

/// The state key of an object without a `lastUpdatedAt` (never seen from Tradecloud, but a
/// GET must not fail for it): class + id + SHA-256 of the object's JSON
/// (`state/<class>/<id>/content-<sha256>`), so the same content is still relayed once.
pub fn content_state_key(class: ObjectClass, id: &str, object: &serde_json::Value) -> String {
    let json = serde_json::to_vec(object).unwrap_or_default();
    bounded(format!(
        "state/{}/{}/content-{}",
        class.as_str(),
        key_part(id),
        sha256_hex(&json)
    ))
}

/// The key an object state is claimed under, by whichever channel brings it whole (a GET's
/// fetched object, a poll page's item): its [`state_key`] when it has an id and a
/// `lastUpdatedAt` (read by `tradecloud_model::fields`; a time that is no date-time, a number
/// say, is keyed as written, as [`canonical_instant`] keeps it), else its
/// [`content_state_key`] (`object` is asked only then). An object without an id has nothing
/// else to tell it from another: two such objects of one time are different states, and one
/// key for both would answer the second as a duplicate and lose it. One rule for every
/// channel, so one state gives one key whichever channel brings it.
pub fn object_state_key(
    class: ObjectClass,
    id: &str,
    last_updated_at: Option<&str>,
    object: impl FnOnce() -> serde_json::Value,
) -> String {
    match last_updated_at {
        Some(at) if !id.is_empty() => state_key(class, id, at),
        _ => content_state_key(class, id, &object()),
    }
}

/// The instant a date-time names, written one way per instant: in UTC with `Z`, with exactly
/// three fraction digits when the instant has no finer part (Tradecloud's own
/// `YYYY-MM-DDThh:mm:ss.SSSZ`, so every key stored before full precision was kept is still the
/// same key), else with six or nine digits (`.1231Z` is `.123100Z`, never cut to `.123Z`).
/// `.1Z` and `.100Z` name one instant and give one text. A text that does not parse is kept as
/// given: an odd timestamp still identifies the state, it just cannot be normalised, and it
/// cannot equal a canonical text (that would have parsed).
pub fn canonical_instant(text: &str) -> String {
    timestamp::parse(text).map_or_else(|_| text.to_owned(), timestamp::format_exact)
}

fn normalise_timestamp(text: &str) -> String {
    canonical_instant(text)
}

/// `L<count>-<first 32 hex digits of SHA-256 over the sorted, distinct ids>`. Sorted so the
/// order in which Tradecloud lists the lines does not matter.
///
/// The ids are joined by newlines when none contains one: that join is unambiguous for such
/// ids, and it is how every key stored so far was made, so those keys stay valid. Ids with a
/// newline (never seen from Tradecloud, but a body can say anything) are digested as a JSON
/// array instead, marked `Lj<count>-`, which no newline join can produce: `["a\nb","c"]` and
/// `["a","b\nc"]` joined by newlines were one key and a different message went unrelayed.
fn lines_digest(line_ids: &[&str]) -> String {
    let mut ids: Vec<&str> = line_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.iter().any(|id| id.contains('\n')) {
        let json = serde_json::to_vec(&ids).unwrap_or_default();
        let digest = Sha256::digest(&json);
        return format!("Lj{}-{}", ids.len(), &hex::encode(digest)[..32]);
    }
    let digest = Sha256::digest(ids.join("\n").as_bytes());
    format!("L{}-{}", ids.len(), &hex::encode(digest)[..32])
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn bounded(key: String) -> String {
    if key.len() <= MAX_KEY_LEN {
        key
    } else {
        format!("hashed/{}", sha256_hex(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_keyed_by_its_time_only_with_an_id() {
        let class = ObjectClass::Order;
        let a = serde_json::json!({"lastUpdatedAt": "2025-04-23T10:01:53.812Z", "n": 1});
        let b = serde_json::json!({"lastUpdatedAt": "2025-04-23T10:01:53.812Z", "n": 2});
        let at = Some("2025-04-23T10:01:53.812Z");
        assert_eq!(
            object_state_key(class, "o-1", at, || unreachable!(
                "not asked with an id and time"
            )),
            state_key(class, "o-1", "2025-04-23T10:01:53.812Z")
        );
        // A time that is no date-time is keyed as written.
        assert_eq!(
            object_state_key(class, "o-1", Some("1745402513812"), || unreachable!()),
            "state/order/o-1/1745402513812"
        );
        // Without a time, or without an id, by content: two id-less objects of one time differ.
        assert_eq!(
            object_state_key(class, "o-1", None, || a.clone()),
            content_state_key(class, "o-1", &a)
        );
        let (ka, kb) = (
            object_state_key(class, "", at, || a.clone()),
            object_state_key(class, "", at, || b.clone()),
        );
        assert_ne!(ka, kb);
        assert_eq!(ka, content_state_key(class, "", &a));
    }

    #[test]
    fn every_kind_of_key_starts_with_a_declared_prefix() {
        let starts = |key: &str| KEY_PREFIXES.iter().any(|p| key.starts_with(p));
        let long_id = "x".repeat(MAX_KEY_LEN + 1);
        let mut keys = vec![
            state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z"),
            whole_state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z"),
            whole_state_key(ObjectClass::Order, &long_id, "t"),
            state_key(ObjectClass::Shipment, &long_id, "t"),
            content_state_key(ObjectClass::Order, "o-1", &serde_json::json!({"a": 1})),
        ];
        for (event_name, last_updated_at, message_id, id) in [
            ("OrderResentByBuyer", None, Some("m-1"), "o-1"),
            ("OrderResentByBuyer", None, None, "o-1"),
            (
                "OrderIssuedByBuyer",
                Some("2025-04-23T10:01:53.812Z"),
                None,
                "o-1",
            ),
            ("OrderIssuedByBuyer", None, Some("m-1"), "o-1"),
            ("OrderIssuedByBuyer", None, None, "o-1"),
            ("OrderIssuedByBuyer", None, None, long_id.as_str()),
        ] {
            keys.push(message_key(&MessageKeyParts {
                class: ObjectClass::Order,
                id,
                event_name,
                last_updated_at,
                message_id,
                line_ids: &["l-1"],
                raw_body: b"{}",
            }));
        }
        assert!(keys.iter().any(|k| k.starts_with("hashed/")), "{keys:?}");
        // The keys of whole objects (the first five) stay within the poller's prefixes.
        for key in &keys[..5] {
            assert!(
                OBJECT_KEY_PREFIXES.iter().any(|p| key.starts_with(p)),
                "{key} starts with none of {OBJECT_KEY_PREFIXES:?}"
            );
        }
        for key in &keys {
            assert!(starts(key), "{key} starts with none of {KEY_PREFIXES:?}");
        }
    }

    #[test]
    fn a_whole_state_marker_is_no_state_key() {
        // An id or time ending in `/whole` is escaped, so no state key reads as a marker.
        let at = "2025-04-23T10:01:53.812Z";
        let marker = whole_state_key(ObjectClass::Order, "o-1", at);
        assert_eq!(marker, format!("state/order/o-1/{at}/whole"));
        assert_ne!(
            marker,
            state_key(ObjectClass::Order, "o-1", &format!("{at}/whole"))
        );
        assert_ne!(
            marker,
            state_key(ObjectClass::Order, &format!("o-1/{at}"), "whole")
        );
        // Spellings of one instant give one marker, as they give one state key.
        assert_eq!(
            marker,
            whole_state_key(ObjectClass::Order, "o-1", "2025-04-23T12:01:53.812+02:00")
        );
    }

    fn parts<'a>(event: &'a str, lines: &'a [&'a str]) -> MessageKeyParts<'a> {
        MessageKeyParts {
            class: ObjectClass::Order,
            id: "o-1",
            event_name: event,
            last_updated_at: Some("2025-04-23T10:01:53.812Z"),
            message_id: Some("m-1"),
            line_ids: lines,
            raw_body: b"{}",
        }
    }

    #[test]
    fn message_key_names_class_id_time_event_and_lines() {
        let key = message_key(&parts("OrderLinesAcceptedBySupplier", &["l1", "l2"]));
        assert!(
            key.starts_with(
                "msg/order/o-1/2025-04-23T10:01:53.812Z/OrderLinesAcceptedBySupplier/L2-"
            ),
            "{key}"
        );
    }

    #[test]
    fn message_key_ignores_message_id_and_body_when_time_is_known() {
        // A retry may carry a fresh messageId (not documented either way) and a new body
        // serialisation; it must still be the same message.
        let a = parts("OrderLinesAcceptedBySupplier", &["l1", "l2"]);
        let mut b = a;
        b.message_id = Some("m-2");
        b.raw_body = b"{ }";
        let lines_reordered = ["l2", "l1"];
        b.line_ids = &lines_reordered;
        assert_eq!(message_key(&a), message_key(&b));
    }

    #[test]
    fn events_of_one_action_at_one_time_get_different_keys() {
        let accepted = message_key(&parts("OrderLinesAcceptedBySupplier", &["l1"]));
        let rejected = message_key(&parts("OrderLinesRejectedBySupplier", &["l2"]));
        let accepted_other_lines = message_key(&parts("OrderLinesAcceptedBySupplier", &["l3"]));
        assert_ne!(accepted, rejected);
        assert_ne!(accepted, accepted_other_lines);
    }

    #[test]
    fn resend_events_key_on_message_id() {
        let first = parts("OrderResentByBuyer", &["l1"]);
        let mut second = first;
        second.message_id = Some("m-2");
        assert_eq!(message_key(&first), "msg/order/o-1/resend/m-1");
        assert_ne!(message_key(&first), message_key(&second));
        let mut shipment = first;
        shipment.class = ObjectClass::Shipment;
        shipment.event_name = "ShipmentResentByBuyer";
        assert_eq!(message_key(&shipment), "msg/shipment/o-1/resend/m-1");
    }

    #[test]
    fn resend_without_message_id_falls_back_to_body_hash() {
        let mut p = parts("OrderResentBySupplier", &[]);
        p.message_id = None;
        let key = message_key(&p);
        assert_eq!(key, format!("msg/order/o-1/body/{}", sha256_hex(b"{}")));
    }

    #[test]
    fn without_time_message_id_then_body_hash() {
        let mut p = parts("OrderLinesAcceptedBySupplier", &["l1"]);
        p.last_updated_at = None;
        assert_eq!(message_key(&p), "msg/order/o-1/mid/m-1");
        p.message_id = Some("");
        let by_body = message_key(&p);
        assert_eq!(by_body, format!("msg/order/o-1/body/{}", sha256_hex(b"{}")));
        p.raw_body = b"{\"x\":1}";
        assert_ne!(message_key(&p), by_body);
    }

    #[test]
    fn state_key_is_shared_by_order_forms_and_normalises_time() {
        let a = state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z");
        let b = state_key(ObjectClass::Order, "o-1", "2025-04-23T12:01:53.812+02:00");
        assert_eq!(a, "state/order/o-1/2025-04-23T10:01:53.812Z");
        assert_eq!(a, b);
        assert_ne!(
            a,
            state_key(ObjectClass::Shipment, "o-1", "2025-04-23T10:01:53.812Z")
        );
        assert_ne!(
            a,
            state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.813Z")
        );
        // Unparseable timestamps are kept verbatim rather than refused.
        assert_eq!(
            state_key(ObjectClass::Order, "o-1", "yesterday"),
            "state/order/o-1/yesterday"
        );
    }

    #[test]
    fn separators_in_ids_cannot_forge_another_key() {
        let tricky = state_key(ObjectClass::Order, "a/b", "t");
        let plain = state_key(ObjectClass::Order, "a", "b/t");
        assert_ne!(tricky, plain);
        assert_eq!(tricky, "state/order/a%2Fb/t");
        assert_ne!(
            state_key(ObjectClass::Order, "a%2Fb", "t"),
            tricky,
            "an id that looks escaped is escaped again"
        );
    }

    #[test]
    fn line_ids_with_newlines_cannot_share_a_key() {
        // Joined by newlines both were "a\nb\nc": a different message answered as a duplicate.
        let a = message_key(&parts("OrderLinesAcceptedBySupplier", &["a\nb", "c"]));
        let b = message_key(&parts("OrderLinesAcceptedBySupplier", &["a", "b\nc"]));
        let c = message_key(&parts("OrderLinesAcceptedBySupplier", &["a", "b", "c"]));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
        assert!(a.contains("/Lj2-"), "{a}");
    }

    #[test]
    fn keys_of_newline_free_line_ids_are_the_ones_stored_before() {
        // Written by the previous version (newline join); it must not change, or a retry of a
        // message relayed before an upgrade would be relayed again.
        assert_eq!(
            lines_digest(&["l2", "l1"]),
            format!("L2-{}", &hex::encode(Sha256::digest(b"l1\nl2"))[..32])
        );
        assert_eq!(lines_digest(&[]), format!("L0-{}", &sha256_hex(b"")[..32]));
    }

    #[test]
    fn timestamps_keep_full_precision_and_name_the_instant() {
        let at = |t| state_key(ObjectClass::Order, "o-1", t);
        // Finer than a millisecond: no longer cut.
        assert_ne!(
            at("2025-04-23T10:01:53.1231Z"),
            at("2025-04-23T10:01:53.1239Z")
        );
        assert_eq!(
            at("2025-04-23T10:01:53.1231Z"),
            "state/order/o-1/2025-04-23T10:01:53.123100Z"
        );
        assert_ne!(
            at("2025-04-23T10:01:53.1231Z"),
            at("2025-04-23T10:01:53.123Z")
        );
        // One instant, several spellings: one key, in the form stored before.
        assert_eq!(at("2025-04-23T10:01:53.1Z"), at("2025-04-23T10:01:53.100Z"));
        assert_eq!(
            at("2025-04-23T10:01:53.100000000+00:00"),
            "state/order/o-1/2025-04-23T10:01:53.100Z"
        );
        assert_eq!(
            at("2025-04-23T10:01:53.123456789Z"),
            "state/order/o-1/2025-04-23T10:01:53.123456789Z"
        );
        let a = message_key(&MessageKeyParts {
            last_updated_at: Some("2025-04-23T10:01:53.1231Z"),
            ..parts("OrderLinesAcceptedBySupplier", &["l1"])
        });
        let b = message_key(&MessageKeyParts {
            last_updated_at: Some("2025-04-23T10:01:53.1239Z"),
            ..parts("OrderLinesAcceptedBySupplier", &["l1"])
        });
        assert_ne!(a, b);
    }

    #[test]
    fn absurdly_long_keys_are_hashed_and_stay_distinct() {
        let long_a = "a".repeat(3000);
        let long_b = "b".repeat(3000);
        let ka = state_key(ObjectClass::Order, &long_a, "t");
        let kb = state_key(ObjectClass::Order, &long_b, "t");
        assert!(ka.len() <= MAX_KEY_LEN && ka.starts_with("hashed/"));
        assert_ne!(ka, kb);
    }
}
