//! What can be wrong with a body, said so that a person can act on it.

use std::fmt;

/// A place in the body: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub fn of_offset(text: &[u8], offset: usize) -> Location {
        let before = &text[..offset.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a body could not be decoded. Every variant but `UnsupportedMediaType`, `TooManyLines`
/// and `TooManyValues` means the body is malformed or invalid (HTTP 400); those mean we do
/// not read that content type (415), or not that many lines or values (413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The content type is neither JSON nor XML, and neither is the body (a body of any other
    /// content type is read by its first character: `<` tXML, `{` or `[` JSON).
    #[error(
        "content type {0:?} is not supported, and the body is neither JSON nor XML: send application/json, application/xml or text/xml"
    )]
    UnsupportedMediaType(String),
    /// Nothing, or only white space, was sent.
    #[error("the body is empty")]
    Empty,
    /// The bytes are not UTF-8.
    #[error("the body is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The tXML body names a character encoding (in its XML declaration or the content type's
    /// `charset`) that no decoder is known for, and is not all ASCII.
    #[error(
        "the body's character encoding {label:?} (from its XML declaration or the content type's charset) is unknown"
    )]
    UnknownEncoding {
        /// The label as sent (its first 64 characters).
        label: String,
    },
    /// The tXML body's bytes are not valid in the encoding it is in (other than UTF-8, which
    /// is [`DecodeError::InvalidUtf8`]).
    #[error("the body is not valid {encoding} (first bad byte at offset {offset})")]
    InvalidEncoding {
        /// The encoding's name (`UTF-16LE`, `Shift_JIS`, …).
        encoding: &'static str,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The body starts with neither `{` nor `<`.
    #[error("the body is neither JSON nor XML: it starts with {0:?}")]
    UnknownFormat(char),
    /// The JSON is not well formed.
    #[error("malformed JSON at {at}: {message}")]
    Json {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// The XML is not well formed.
    #[error("malformed XML at {at}: {message}")]
    Xml {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A document type declaration: refused, because it is how entity expansion attacks start.
    #[error(
        "XML document type declarations (<!DOCTYPE …>) are not accepted (at {at}); tXML never needs one"
    )]
    XmlDoctype {
        /// Where.
        at: Location,
    },
    /// A reference to an entity other than XML's five predefined ones.
    #[error(
        "XML entity reference &{name}; is not accepted (at {at}); only &amp; &lt; &gt; &apos; &quot; and character references are"
    )]
    XmlEntity {
        /// The entity's name.
        name: String,
        /// Where.
        at: Location,
    },
    /// More nested elements than any Tradecloud message has.
    #[error("XML nested deeper than {limit} elements at {at}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where.
        at: Location,
    },
    /// The JSON document is not an object.
    #[error("the body must be a JSON object, found {found}")]
    NotAnObject {
        /// What came instead.
        found: &'static str,
    },
    /// No `eventName`.
    #[error("eventName is missing")]
    MissingEventName,
    /// No event object.
    #[error(
        "no event: expected one of orderEvent, singleDeliveryOrderEvent, simpleOrderEvent, orderDocumentsEvent, shipment, shipmentEvent"
    )]
    MissingEvent,
    /// More than one event object.
    #[error("more than one event: {}; a webhook body carries exactly one", .0.join(", "))]
    MultipleEvents(Vec<String>),
    /// The object has no id.
    #[error("{path} is missing or empty")]
    MissingId {
        /// Where the id should be (`orderEvent.orderId`, `shipment.id`, `id`).
        path: String,
    },
    /// More lines than the configured limit (HTTP 413: the message is kept, not relayed).
    #[error("the event carries {count} lines, more than the limit of {limit} (TCRELAY_MAX_LINES)")]
    TooManyLines {
        /// Lines in the event.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// More values than a body of its size may hold without breaking the memory bound (HTTP
    /// 413: the message is kept, not relayed; see [`crate::budget`]). Only a body of many tiny
    /// values (`[0,0,…]`, `<a><b/></a>`…) comes near; Tradecloud's messages stay far below.
    #[error(
        "the body holds more values, keys and objects than its size allows (a budget of {limit} units; a body of many tiny values)"
    )]
    TooManyValues {
        /// The budget for this body's size, in units of [`crate::budget::UNIT_COST_BYTES`].
        limit: usize,
    },
    /// A field has a value of the wrong type or form.
    #[error("{path}: {message}{}", at.map(|a| format!(" (at {a})")).unwrap_or_default())]
    InvalidField {
        /// The field's path, e.g. `orderEvent.lines[3].deliverySchedule[0].quantity`.
        path: String,
        /// What is wrong.
        message: String,
        /// Where, when known (tXML).
        at: Option<Location>,
    },
}

impl From<crate::budget::OverBudget> for DecodeError {
    fn from(over: crate::budget::OverBudget) -> Self {
        DecodeError::TooManyValues { limit: over.limit }
    }
}

impl DecodeError {
    /// True for the one error that is about the content type rather than the body (HTTP 415).
    pub fn is_unsupported_media_type(&self) -> bool {
        matches!(self, DecodeError::UnsupportedMediaType(_))
    }

    /// True for the errors about the body's size in lines or values (HTTP 413).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            DecodeError::TooManyLines { .. } | DecodeError::TooManyValues { .. }
        )
    }

    /// The path of the offending field, when the error is about one field.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            DecodeError::InvalidField { path, .. } | DecodeError::MissingId { path } => Some(path),
            DecodeError::MissingEventName => Some("eventName"),
            _ => None,
        }
    }

    /// Where in the body, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            DecodeError::Json { at, .. }
            | DecodeError::Xml { at, .. }
            | DecodeError::XmlDoctype { at }
            | DecodeError::XmlEntity { at, .. }
            | DecodeError::TooDeep { at, .. } => Some(*at),
            DecodeError::InvalidField { at, .. } => *at,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "ab\ncdé\nf".as_bytes();
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text, 3),
            Location { line: 2, column: 1 }
        );
        // "é" is two bytes but one column.
        let after_e = text.iter().position(|&b| b == b'\n').unwrap() + 1 + 4;
        assert_eq!(
            Location::of_offset(text, after_e),
            Location { line: 2, column: 4 }
        );
    }
}
