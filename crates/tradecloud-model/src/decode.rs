//! The one decode entry point for webhook bodies, and the decoders for fetched or polled objects.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{DecodeError, Location};
use crate::fields::{self, Member, trim_xml_space};
use crate::kind::{Format, ObjectKind};
use crate::lenient::{Leniencies, Path};
use crate::normalize::normalize_lenient;
use crate::num::json_type;
use crate::schema::{ORDER_SHAPE, SHIPMENT_SHAPE, Shape, WEBHOOK_BODY_SHAPE, field};
use crate::txml;
use crate::types::{Order, Shipment};

/// A decoded webhook body: the few fields the relay reads, and the complete JSON it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWebhook {
    /// What the relay reads.
    pub body: WebhookBody,
    /// The whole body as JSON (tXML converted to the same shape), numbers and booleans typed.
    pub payload: Value,
    /// What Tradecloud sent.
    pub format: Format,
    /// Values that did not fit the schema, forwarded as sent: for the host to log and count.
    pub leniencies: Leniencies,
    /// Whether the body's own text is a JSON text of `payload`: a JSON body in which nothing
    /// needed typing (no quoted number or boolean). Its text can then be forwarded as sent
    /// ([`DecodedWebhook::payload_text`]) instead of `payload` written out again.
    pub verbatim: bool,
}

impl DecodedWebhook {
    /// The JSON text of `payload` within `body`, the bytes this was decoded from: the body
    /// without its byte-order mark and surrounding whitespace, when [`Self::verbatim`].
    pub fn payload_text<'b>(&self, body: &'b [u8]) -> Option<&'b str> {
        if !self.verbatim {
            return None;
        }
        let body = without_bom(body);
        std::str::from_utf8(body.trim_ascii()).ok()
    }
}

/// What the relay reads from a webhook body: only these must be readable; everything else is
/// forwarded as sent, whatever its type.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    /// Tradecloud's event name; an open set, unknown names are kept.
    pub event_name: String,
    kind: ObjectKind,
    object_id: String,
    version: Option<u64>,
    last_updated_at: Option<String>,
    message_id: Option<String>,
    line_ids: Vec<String>,
    line_count: usize,
}

/// Limits of a decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most lines an event may carry (order lines; shipment lines loose and in load carriers).
    pub max_lines: usize,
}

/// Lines an event may carry by default: far above Tradecloud's largest orders (hundreds of
/// lines), far below what would strain a 512 MB Lambda.
pub const DEFAULT_MAX_LINES: usize = 10_000;

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_lines: DEFAULT_MAX_LINES,
        }
    }
}

/// The event keys a webhook body may carry, with the kind each means.
const EVENT_KEYS: [(&str, ObjectKind); 6] = [
    ("orderEvent", ObjectKind::Order),
    ("singleDeliveryOrderEvent", ObjectKind::SingleDeliveryOrder),
    ("simpleOrderEvent", ObjectKind::SingleDeliveryOrder),
    ("orderDocumentsEvent", ObjectKind::OrderDocuments),
    ("shipment", ObjectKind::Shipment),
    ("shipmentEvent", ObjectKind::Shipment),
];

/// An event field that holds nothing: an object without members, or a blank string (an empty
/// XML element whose shape the schema does not know).
fn is_empty_event(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::String(text) => text.trim().is_empty(),
        _ => false,
    }
}

impl WebhookBody {
    /// What the event is about.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// The order id or shipment id (checked present and non-empty when decoded).
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The object's `lastUpdatedAt`, as Tradecloud wrote it (shipments: else
    /// `meta.lastUpdatedAt`).
    pub fn last_updated_at(&self) -> Option<&str> {
        self.last_updated_at.as_deref()
    }

    /// The object's `version` (also when sent as a quoted whole number).
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// `meta.messageId`: body level first, else inside the event.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Identifiers of the lines the event carries: order line ids; for shipments, which have
    /// no line ids, `purchaseOrderNumber/purchaseOrderLinePosition/deliverySchedulePosition`.
    pub fn line_ids(&self) -> Vec<String> {
        self.line_ids.clone()
    }

    /// How many lines the event carries (with or without an id).
    pub fn line_count(&self) -> usize {
        self.line_count
    }

    /// Reads what the relay needs from a webhook body's JSON.
    pub fn from_payload(payload: &Value) -> Result<WebhookBody, DecodeError> {
        Self::read(payload, &mut Leniencies::new())
    }

    /// Reads what the relay needs from a webhook body's JSON, recording needed fields of an
    /// unexpected but usable type (a quoted version, a numeric id) in `leniencies`.
    pub fn read(payload: &Value, leniencies: &mut Leniencies) -> Result<WebhookBody, DecodeError> {
        let Value::Object(map) = payload else {
            return Err(DecodeError::NotAnObject {
                found: json_type(payload),
            });
        };
        let event_name = match map.get("eventName") {
            None | Some(Value::Null) => return Err(DecodeError::MissingEventName),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(invalid("eventName", "must not be empty"));
            }
            Some(Value::String(s)) => trim_xml_space(s).to_owned(),
            Some(other) => {
                return Err(invalid(
                    "eventName",
                    &format!("expected a string, found {}", json_type(other)),
                ));
            }
        };
        let present: Vec<_> = EVENT_KEYS
            .iter()
            .filter_map(|&(key, kind)| match map.get(key) {
                None | Some(Value::Null) => None,
                Some(v) => Some((key, kind, v)),
            })
            .collect();
        let (key, kind, event) = match present.as_slice() {
            [] => return Err(DecodeError::MissingEvent),
            [one] => *one,
            several => {
                // An XML writer may put out an empty element for each event field it has no
                // value for (`<shipment/>`, read as `{}`), as a JSON writer may write `{}`:
                // beside one event that has content, empty ones say "absent", as null does.
                let mut with_content = several.iter().filter(|(_, _, v)| !is_empty_event(v));
                match (with_content.next(), with_content.next()) {
                    (Some(one), None) => *one,
                    _ => {
                        return Err(DecodeError::MultipleEvents(
                            several.iter().map(|(k, _, _)| (*k).to_owned()).collect(),
                        ));
                    }
                }
            }
        };
        let Value::Object(event) = event else {
            return Err(invalid(
                key,
                &format!("expected an object, found {}", json_type(event)),
            ));
        };
        let root = Path::Root;
        let event_path = Path::Key(&root, key);
        let view = if kind == ObjectKind::Shipment {
            ObjectView::shipment(event, &event_path, leniencies)?
        } else {
            ObjectView::order(event, &event_path, "orderId", leniencies)?
        };
        let body_meta = match map.get("meta") {
            Some(Value::Object(meta)) => text_at(
                meta.get("messageId"),
                &Path::Key(&Path::Key(&root, "meta"), "messageId"),
                leniencies,
            ),
            None | Some(Value::Null) => None,
            Some(other) => {
                leniencies.push(&Path::Key(&root, "meta"), "an object", json_type(other));
                None
            }
        };
        Ok(WebhookBody {
            event_name,
            kind,
            object_id: view.id,
            version: view.version,
            last_updated_at: view.last_updated_at,
            message_id: body_meta.or(view.message_id),
            line_ids: view.line_ids,
            line_count: view.line_count,
        })
    }
}

/// What the relay and the poll loop read of one order or shipment.
#[derive(Debug, Clone, PartialEq)]
struct ObjectView {
    id: String,
    version: Option<u64>,
    last_updated_at: Option<String>,
    message_id: Option<String>,
    line_ids: Vec<String>,
    line_count: usize,
}

impl ObjectView {
    /// `missing_key` names the id in the error when there is none: webhook events carry
    /// `orderId`, fetched and polled orders `id`.
    fn order(
        event: &Map<String, Value>,
        path: &Path<'_>,
        missing_key: &'static str,
        out: &mut Leniencies,
    ) -> Result<ObjectView, DecodeError> {
        let present = |key| event.get(key).filter(|v| !v.is_null());
        let (id_key, id) = match fields::order_id_member(present("orderId"), present("id")) {
            (_, None) => (missing_key, None),
            chosen => chosen,
        };
        let id = required_id(id, &Path::Key(path, id_key), out)?;
        let lines_path = Path::Key(path, "lines");
        let (line_ids, line_count) = match event.get("lines") {
            Some(Value::Array(lines)) => {
                let ids = lines
                    .iter()
                    .enumerate()
                    .filter_map(|(i, line)| match line {
                        Value::Object(line) => text_at(
                            line.get("id"),
                            &Path::Key(&Path::Index(&lines_path, i), "id"),
                            out,
                        ),
                        _ => None,
                    })
                    .collect();
                (ids, lines.len())
            }
            None | Some(Value::Null) => (Vec::new(), 0),
            Some(other) => {
                out.push(&lines_path, "an array", json_type(other));
                (Vec::new(), 0)
            }
        };
        Ok(ObjectView {
            id,
            version: version_at(event, path, out),
            last_updated_at: last_updated_at(event, path, out),
            message_id: meta_text(event, path, "messageId", out),
            line_ids,
            line_count,
        })
    }

    fn shipment(
        event: &Map<String, Value>,
        path: &Path<'_>,
        out: &mut Leniencies,
    ) -> Result<ObjectView, DecodeError> {
        let id = required_id(event.get("id"), &Path::Key(path, "id"), out)?;
        let mut line_ids = Vec::new();
        let mut line_count = 0;
        let mut read_lines =
            |lines: Option<&Value>, lines_path: &Path<'_>, out: &mut Leniencies| match lines {
                Some(Value::Array(lines)) => {
                    line_count += lines.len();
                    line_ids.extend(lines.iter().map(|line| {
                        // A position sent as a number is its digits; `/` and `%` inside a part are
                        // escaped, so that two different lines never join to one id.
                        let part = |key: &str| {
                            let text = fields::text(line.get(key).and_then(Member::of_value))
                                .unwrap_or_default();
                            crate::key::key_part(&text).into_owned()
                        };
                        format!(
                            "{}/{}/{}",
                            part("purchaseOrderNumber"),
                            part("purchaseOrderLinePosition"),
                            part("deliverySchedulePosition")
                        )
                    }));
                }
                None | Some(Value::Null) => {}
                Some(other) => out.push(lines_path, "an array", json_type(other)),
            };
        read_lines(event.get("lines"), &Path::Key(path, "lines"), out);
        if let Some(Value::Array(carriers)) = event.get("loadCarriers") {
            let carriers_path = Path::Key(path, "loadCarriers");
            for (i, carrier) in carriers.iter().enumerate() {
                let carrier_path = Path::Index(&carriers_path, i);
                read_lines(
                    carrier.get("lines"),
                    &Path::Key(&carrier_path, "lines"),
                    out,
                );
            }
        }
        Ok(ObjectView {
            id,
            version: version_at(event, path, out),
            last_updated_at: last_updated_at(event, path, out),
            message_id: meta_text(event, path, "messageId", out),
            line_ids,
            line_count,
        })
    }
}

/// The member `value` of a needed text field, its misfit reported: a number is usable (read
/// by its digits), anything else but a string is read as absent.
fn text_member<'v>(
    value: Option<&'v Value>,
    path: &Path<'_>,
    out: &mut Leniencies,
) -> Option<Member<'v>> {
    let member = value.and_then(Member::of_value)?;
    if !matches!(member, Member::Text(_)) {
        out.push(path, "a string", member.json_type());
    }
    Some(member)
}

/// A needed text field, read by the one rule every channel reads it by ([`fields::text`]):
/// a string without the white space around it, a number as its digits (usable, so read, and
/// reported); anything else is reported and read as absent.
fn text_at(value: Option<&Value>, path: &Path<'_>, out: &mut Leniencies) -> Option<String> {
    fields::text(text_member(value, path, out))
}

fn required_id(
    value: Option<&Value>,
    path: &Path<'_>,
    out: &mut Leniencies,
) -> Result<String, DecodeError> {
    // An id of white space only is none an event can be relayed under.
    match fields::id(text_member(value, path, out)) {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(DecodeError::MissingId {
            path: path.to_string(),
        }),
    }
}

fn version_of(value: &Value) -> Option<u64> {
    fields::version(Member::of_value(value))
}

fn version_at(event: &Map<String, Value>, path: &Path<'_>, out: &mut Leniencies) -> Option<u64> {
    let version_path = Path::Key(path, "version");
    let member = Member::of_value(event.get("version")?)?;
    let misfit = match &member {
        Member::Text(_) => Some("a string"),
        Member::Number(_) => None,
        Member::Other(t) => Some(*t),
    };
    let read = fields::version(Some(member));
    match misfit {
        // Normalisation types a quoted whole number; a string left did not read as one.
        Some(found) => out.push(&version_path, "a whole number", found),
        None if read.is_none() => out.push(&version_path, "a whole number", "another number"),
        None => {}
    }
    read
}

/// `lastUpdatedAt`, else `meta.lastUpdatedAt` ([`fields::last_updated_at`]), misfits reported.
fn last_updated_at(
    event: &Map<String, Value>,
    path: &Path<'_>,
    out: &mut Leniencies,
) -> Option<String> {
    let own = text_member(
        event.get("lastUpdatedAt"),
        &Path::Key(path, "lastUpdatedAt"),
        out,
    );
    fields::last_updated_at(own, || meta_member(event, path, "lastUpdatedAt", out))
}

fn meta_member<'v>(
    event: &'v Map<String, Value>,
    path: &Path<'_>,
    key: &'static str,
    out: &mut Leniencies,
) -> Option<Member<'v>> {
    match event.get("meta")? {
        Value::Object(meta) => text_member(
            meta.get(key),
            &Path::Key(&Path::Key(path, "meta"), key),
            out,
        ),
        // Reported once, by normalisation, as a field of the wrong type.
        _ => None,
    }
}

fn meta_text(
    event: &Map<String, Value>,
    path: &Path<'_>,
    key: &'static str,
    out: &mut Leniencies,
) -> Option<String> {
    fields::text(meta_member(event, path, key, out))
}

fn invalid(path: &str, message: &str) -> DecodeError {
    DecodeError::InvalidField {
        path: path.to_owned(),
        message: message.to_owned(),
        at: None,
    }
}

/// Reads a typed view from JSON, naming the offending field's full path on failure.
fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        DecodeError::InvalidField {
            path,
            message: e.into_inner().to_string(),
            at: None,
        }
    })
}

/// Decides JSON or tXML from the content type (`application/json`, `text/json`, `…+json`;
/// `application/xml`, `text/xml`, `…+xml`) unless the body's first character says the other,
/// else from the body's first character after white space and a byte-order mark: `<` tXML,
/// `{` or `[` JSON. Tradecloud does not document the
/// content type of its tXML (`application/txml`, `text/txml`… would all be reasonable), so no
/// content type is refused for itself: only a body that is neither, sent with a content type
/// that is not generic, is refused as of an unsupported media type.
pub fn detect_format(body: &[u8], content_type: Option<&str>) -> Result<Format, DecodeError> {
    let essence = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    // A JSON or XML label names the format unless the body plainly is the other one (a
    // sender that labels its tXML `application/json`): a 400 would cost the message, and the
    // label's reader could only refuse it. A body that is neither is read as labelled, so its
    // error is that reader's.
    let labelled = |format: Format| Ok(sniff(body).unwrap_or(format));
    match essence.as_str() {
        "application/json" | "text/json" => labelled(Format::Json),
        "application/xml" | "text/xml" => labelled(Format::Txml),
        s if s.ends_with("+json") => labelled(Format::Json),
        s if s.ends_with("+xml") => labelled(Format::Txml),
        // Missing or generic: the body decides, and says what is wrong with it.
        ""
        | "text/plain"
        | "application/octet-stream"
        | "*/*"
        | "application/x-www-form-urlencoded" => sniff(body),
        // Any other: the body decides too, but one that is neither is of a type we do not read.
        other => match sniff(body) {
            Err(DecodeError::UnknownFormat(_)) => {
                Err(DecodeError::UnsupportedMediaType(other.to_owned()))
            }
            sniffed => sniffed,
        },
    }
}

/// The body without a UTF-8 byte-order mark, which some senders put before JSON or XML.
fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The first character of a UTF-16 body (after its byte-order mark, if any) that is not white
/// space: `None` for a body that is not UTF-16 (by its mark, or by starting with `<`, as
/// XML's appendix F tells them), `Some(None)` for one that is only white space.
fn utf16_first(body: &[u8]) -> Option<Option<char>> {
    let crate::txml::encoding::Utf16 { units, big_endian } =
        crate::txml::encoding::utf16_units(body)?;
    let unit = units
        .chunks_exact(2)
        .map(|u| {
            let u = [u[0], u[1]];
            if big_endian {
                u16::from_be_bytes(u)
            } else {
                u16::from_le_bytes(u)
            }
        })
        .find(|&u| !matches!(u, 0x20 | 0x09 | 0x0A | 0x0D));
    Some(unit.map(|u| char::from_u32(u32::from(u)).unwrap_or(char::REPLACEMENT_CHARACTER)))
}

fn sniff(body: &[u8]) -> Result<Format, DecodeError> {
    if let Some(first) = utf16_first(body) {
        return match first {
            None => Err(DecodeError::Empty),
            Some('<') => Ok(Format::Txml),
            // JSON is UTF-8 only: its reader will say so.
            Some('{' | '[') => Ok(Format::Json),
            Some(other) => Err(DecodeError::UnknownFormat(other)),
        };
    }
    let body = without_bom(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeError::Empty),
        Some(b'{') | Some(b'[') => Ok(Format::Json),
        Some(b'<') => Ok(Format::Txml),
        Some(_) => {
            let text = String::from_utf8_lossy(body);
            let first = text.trim_start().chars().next().unwrap_or('?');
            Err(DecodeError::UnknownFormat(first))
        }
    }
}

/// Parses JSON bytes into a value, with a located error.
pub fn parse_json(body: &[u8]) -> Result<Value, DecodeError> {
    let body = without_bom(body);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DecodeError::Empty);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(DecodeError::InvalidUtf8 {
            offset: e.valid_up_to(),
        });
    }
    serde_json::from_slice(body).map_err(json_error)
}

/// Parses a webhook body's JSON, typed by the schema as it is read (one pass; see
/// [`crate::json`]), with the same errors as [`parse_json`].
fn parse_webhook_json(
    body: &[u8],
    leniencies: &mut Leniencies,
) -> Result<crate::json::TypedJson, DecodeError> {
    let body = without_bom(body);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DecodeError::Empty);
    }
    // A lone surrogate escape, which serde_json refuses, is read as U+FFFD from a copy; the
    // body's text is then no longer the payload's (`retyped`).
    let replaced = lone_surrogates_replaced(body, leniencies);
    let body = replaced.as_deref().unwrap_or(body);
    // serde_json checks the UTF-8 of every string it reads, and any other byte outside ASCII
    // is a syntax error, so invalid UTF-8 always fails the parse: the body is only scanned
    // for it then, to name the offset, never on the way to a success.
    let typed = crate::json::parse_typed(body, &WEBHOOK_BODY_SHAPE, leniencies);
    typed
        .map(|mut typed| {
            typed.retyped |= replaced.is_some();
            typed
        })
        .map_err(|e| match e {
            crate::json::ReadError::OverBudget { limit } => DecodeError::TooManyValues { limit },
            crate::json::ReadError::Json(e) => match std::str::from_utf8(body) {
                Err(utf8) => DecodeError::InvalidUtf8 {
                    offset: utf8.valid_up_to(),
                },
                Ok(_) => json_error(e),
            },
        })
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        at: Location {
            line: e.line(),
            column: e.column(),
        },
        message: strip_position(&e.to_string()),
    }
}

/// `body` with each lone surrogate escape mended to `\uFFFD` (see
/// [`tcrelay_json_string::lone_surrogates_mended`]: Jackson writes a Java text cut in the
/// middle of an emoji so), each reported as a leniency (the character is not forwarded as
/// sent); `None` when it has none.
fn lone_surrogates_replaced(body: &[u8], leniencies: &mut Leniencies) -> Option<Vec<u8>> {
    let (text, offsets) = tcrelay_json_string::lone_surrogates_mended(body)?;
    for at in offsets {
        leniencies.push_dropped_at(
            || format!("(byte {at})"),
            "a whole UTF-16 surrogate pair",
            "a lone surrogate escape, read as U+FFFD",
        );
    }
    Some(text)
}

/// serde_json appends " at line L column C" to its messages; we report the location apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Decodes a webhook body: JSON or tXML by `content_type` (`application/json`,
/// `application/xml`, `text/xml`; any other: sniffed, see [`detect_format`]), into what the
/// relay reads and the complete JSON payload, within the default [`DecodeLimits`]. tXML in
/// another encoding than UTF-8 is transcoded ([`txml::encoding`]).
pub fn decode_webhook(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<DecodedWebhook, DecodeError> {
    decode_webhook_with(body, content_type, &DecodeLimits::default())
}

/// [`decode_webhook`] within `limits`.
pub fn decode_webhook_with(
    body: &[u8],
    content_type: Option<&str>,
    limits: &DecodeLimits,
) -> Result<DecodedWebhook, DecodeError> {
    let format = detect_format(body, content_type)?;
    let mut leniencies = Leniencies::new();
    let (payload, verbatim) = match format {
        // Both readers type every value as they read it: no second pass.
        Format::Json => {
            let typed = parse_webhook_json(body, &mut leniencies)?;
            (typed.value, !typed.retyped)
        }
        Format::Txml => {
            let charset = content_type.and_then(txml::encoding::charset_of);
            (txml::from_txml_in(body, charset, &mut leniencies)?, false)
        }
    };
    let body = WebhookBody::read(&payload, &mut leniencies)?;
    if body.line_count > limits.max_lines {
        return Err(DecodeError::TooManyLines {
            count: body.line_count,
            limit: limits.max_lines,
        });
    }
    Ok(DecodedWebhook {
        body,
        payload,
        format,
        leniencies,
        verbatim,
    })
}

/// A fetched or polled object: the typed view, the complete JSON, and what did not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedObject<T> {
    /// The typed view, read from the payload with every value that does not fit left out.
    pub view: T,
    /// The object as JSON, numbers and booleans typed, everything else as sent.
    pub payload: Value,
    /// Values that did not fit the schema, forwarded as sent.
    pub leniencies: Leniencies,
}

/// Decodes an order as fetched (`GET /order/{id}`) or polled: typed view and complete JSON.
pub fn decode_order(json: &[u8]) -> Result<(Order, Value), DecodeError> {
    let value = parse_json(json)?;
    order_from_value(value)
}

/// Reads an order from a JSON value (one item of a poll page).
pub fn order_from_value(value: Value) -> Result<(Order, Value), DecodeError> {
    read_order(value).map(|d| (d.view, d.payload))
}

/// Reads an order from a JSON value, with the deviations it tolerated. Only the id must be
/// readable; a value of another type than the schema's is left out of the typed view,
/// forwarded as sent, and reported.
pub fn read_order(value: Value) -> Result<DecodedObject<Order>, DecodeError> {
    read_object(value, &ORDER_SHAPE, |v, out| {
        let Value::Object(map) = v else {
            unreachable!("checked an object")
        };
        ObjectView::order(map, &Path::Root, "id", out).map(|_| ())
    })
}

/// Decodes a shipment as fetched (`GET /shipment/{id}`) or polled: typed view and complete JSON.
pub fn decode_shipment(json: &[u8]) -> Result<(Shipment, Value), DecodeError> {
    let value = parse_json(json)?;
    shipment_from_value(value)
}

/// Reads a shipment from a JSON value (one item of a poll page).
pub fn shipment_from_value(value: Value) -> Result<(Shipment, Value), DecodeError> {
    read_shipment(value).map(|d| (d.view, d.payload))
}

/// Reads a shipment from a JSON value, with the deviations it tolerated (see [`read_order`]).
pub fn read_shipment(value: Value) -> Result<DecodedObject<Shipment>, DecodeError> {
    read_object(value, &SHIPMENT_SHAPE, |v, out| {
        let Value::Object(map) = v else {
            unreachable!("checked an object")
        };
        ObjectView::shipment(map, &Path::Root, out).map(|_| ())
    })
}

fn read_object<T: DeserializeOwned>(
    mut value: Value,
    shape: &'static Shape,
    needed: impl FnOnce(&Value, &mut Leniencies) -> Result<(), DecodeError>,
) -> Result<DecodedObject<T>, DecodeError> {
    if !value.is_object() {
        return Err(DecodeError::NotAnObject {
            found: json_type(&value),
        });
    }
    let mut leniencies = Leniencies::new();
    normalize_lenient(&mut value, shape, &mut leniencies);
    // The needed fields are checked on their own; their deviations were reported by
    // normalisation already, so they are not counted twice.
    needed(&value, &mut Leniencies::new())?;
    // Almost every object fits its shape whole: then the typed view reads the payload itself,
    // and only an object with a misfit pays for a copy to blank it in (the copy and its drop
    // were about a tenth of the poller's CPU per order in perf).
    let view = if fits_entirely(&value, Some(shape)) && version_fits(&value) {
        typed(&value, "")?
    } else {
        let mut fitting = value.clone();
        drop_misfits(&mut fitting, Some(shape));
        // `version` is a number to the schema but must be whole to the typed view.
        if !version_fits(&fitting)
            && let Some(version) = fitting.get_mut("version")
        {
            *version = Value::Null;
        }
        typed(&fitting, "")?
    };
    Ok(DecodedObject {
        view,
        payload: value,
        leniencies,
    })
}

/// How a value fits the shape the schema gives it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The typed view reads it as it is.
    Fits,
    /// A number where a string is expected: the typed view reads its digits.
    AsText,
    /// Another type: left out of the typed view.
    Misfit,
}

/// How `value` fits `shape`, this level only.
fn fit(shape: Option<&Shape>, value: &Value) -> Fit {
    let fits = match (shape, value) {
        (_, Value::Null) | (None, _) => true,
        (Some(Shape::Str), Value::String(_)) => true,
        (Some(Shape::Str), Value::Number(_)) => return Fit::AsText,
        // A number beyond the decimal's range (`1E-30`, 30 digits) is legitimate JSON the typed
        // view cannot hold: left out of the view, forwarded as sent.
        (Some(Shape::Num), Value::Number(n)) => crate::num::parse_decimal(n.as_str()).is_some(),
        // `number_value` reads whatever `parse_decimal` reads: one parse is enough.
        (Some(Shape::Num), Value::String(s)) => crate::num::parse_decimal(s).is_some(),
        (Some(Shape::Bool), Value::Bool(_)) => true,
        (Some(Shape::Bool), Value::String(s)) => crate::num::parse_bool(s).is_some(),
        (Some(Shape::Obj(_)), Value::Object(_)) | (Some(Shape::List { .. }), Value::Array(_)) => {
            true
        }
        _ => false,
    };
    if fits { Fit::Fits } else { Fit::Misfit }
}

/// Whether the typed view can read `value` as it is: every value, at every depth, fits.
fn fits_entirely(value: &Value, shape: Option<&Shape>) -> bool {
    if fit(shape, value) != Fit::Fits {
        return false;
    }
    match (shape, value) {
        (Some(Shape::Obj(fields)), Value::Object(map)) => map
            .iter()
            .all(|(name, v)| fits_entirely(v, field(fields, name).map(|f| &f.shape))),
        (Some(Shape::List { of, .. }), Value::Array(items)) => items
            .iter()
            .all(|item| !item.is_null() && fits_entirely(item, Some(of))),
        _ => true,
    }
}

/// Whether `version` is absent, null or whole: the schema's number, which the typed view
/// needs whole.
fn version_fits(object: &Value) -> bool {
    object
        .get("version")
        .is_none_or(|v| v.is_null() || version_of(v).is_some())
}

/// Removes from a copy every value whose type does not fit `shape` (a number where a string
/// is expected is kept as its digits), so that the typed view reads what fits and skips the
/// rest instead of failing on it.
fn drop_misfits(value: &mut Value, shape: Option<&Shape>) {
    match fit(shape, value) {
        Fit::Fits => {}
        Fit::AsText => {
            *value = Value::String(value.to_string());
            return;
        }
        Fit::Misfit => {
            *value = Value::Null;
            return;
        }
    }
    match (shape, value) {
        (Some(Shape::Obj(fields)), Value::Object(map)) => {
            for (name, v) in map.iter_mut() {
                let known = field(fields, name).map(|f| &f.shape);
                drop_misfits(v, known);
            }
        }
        (Some(Shape::List { of, .. }), Value::Array(items)) => {
            for item in items {
                drop_misfits(item, Some(of));
                // A list's typed items cannot be null; an empty one keeps the view's indices
                // those of the payload's items (the echo filter keeps lines by index).
                if item.is_null() {
                    match of {
                        Shape::Obj(_) => *item = Value::Object(serde_json::Map::new()),
                        Shape::Str => *item = Value::String(String::new()),
                        Shape::List { .. } => *item = Value::Array(Vec::new()),
                        Shape::Num | Shape::Bool => {}
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(reason: Value, version: Value) -> Value {
        json!({
            "id": "o-1",
            "reason": reason,
            "version": version,
            "buyerOrder": {"purchaseOrderNumber": "PO-1"},
            "lines": [{"id": "l-1"}]
        })
    }

    #[test]
    fn a_json_body_nothing_was_typed_in_is_its_payload_text() {
        let body = b"\xEF\xBB\xBF {\"eventName\":\"OrderIssuedByBuyer\",\"orderEvent\":{\"orderId\":\"o-1\",\"version\":3}}\n";
        let decoded = decode_webhook(body, Some("application/json")).unwrap();
        let text = decoded.payload_text(body).expect("nothing typed");
        assert_eq!(
            text,
            r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","version":3}}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap(),
            decoded.payload
        );

        // A quoted number is typed: the text no longer reads as the payload.
        let quoted =
            br#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","version":"3"}}"#;
        let decoded = decode_webhook(quoted, Some("application/json")).unwrap();
        assert!(!decoded.verbatim);
        assert_eq!(decoded.payload_text(quoted), None);
        assert_eq!(decoded.payload["orderEvent"]["version"], 3);
    }

    #[test]
    fn lone_surrogate_escapes_are_replaced_and_reported_and_nothing_else_is_touched() {
        let mut l = Leniencies::new();
        let body = br#"{"a":"\ud83d\ude00 \\udc00 \uDC00","b":"\ud800"}"#;
        let copy = lone_surrogates_replaced(body, &mut l).unwrap();
        assert_eq!(
            copy,
            br#"{"a":"\ud83d\ude00 \\udc00 \uFFFD","b":"\uFFFD"}"#.to_vec()
        );
        assert_eq!(l.total(), 2);
        assert!(
            l.kept()[0].to_string().contains("U+FFFD"),
            "{}",
            l.kept()[0]
        );
        // Nothing to replace: no copy. Cut-off escapes are left for the parse to refuse.
        for plain in [&br#"{"a":"\u00e9 \n"}"#[..], b"{\\", b"\\ud8", b"\\"] {
            assert_eq!(
                lone_surrogates_replaced(plain, &mut Leniencies::new()),
                None
            );
        }
        let d = decode_webhook(
            br#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","reason":"\ud83d"}}"#,
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(d.payload["orderEvent"]["reason"], "\u{FFFD}");
        assert!(!d.verbatim, "the text is not the payload's");
        assert_eq!(d.leniencies.total(), 1);
    }

    #[test]
    fn an_object_that_fits_is_read_in_place_and_one_that_does_not_through_a_copy() {
        let fitting = order(json!("late"), json!(3));
        assert!(fits_entirely(&fitting, Some(&ORDER_SHAPE)) && version_fits(&fitting));
        let read = read_order(fitting.clone()).unwrap();
        assert_eq!(read.view.reason.as_deref(), Some("late"));
        assert_eq!(read.view.version, Some(3));
        assert_eq!(read.payload, fitting);

        // A number where a string is expected: the view reads its digits.
        let as_text = order(json!(42), json!(3));
        assert!(!fits_entirely(&as_text, Some(&ORDER_SHAPE)));
        let read = read_order(as_text.clone()).unwrap();
        assert_eq!(read.view.reason.as_deref(), Some("42"));
        assert_eq!(read.payload, as_text, "the payload is forwarded as sent");

        // Another type, and a version that is not whole: left out of the view only.
        let misfit = order(json!({"code": 1}), json!(2.5));
        assert!(!fits_entirely(&misfit, Some(&ORDER_SHAPE)) && !version_fits(&misfit));
        let read = read_order(misfit.clone()).unwrap();
        assert_eq!((read.view.reason, read.view.version), (None, None));
        assert_eq!(read.view.lines.map(|l| l.len()), Some(1));
        assert_eq!(read.payload, misfit);
    }
}
