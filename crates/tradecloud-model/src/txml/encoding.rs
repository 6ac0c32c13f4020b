//! A tXML body's character encoding, and its text as UTF-8.
//!
//! XML may come in any encoding its declaration names (`<?xml version="1.0"
//! encoding="ISO-8859-1"?>`), and must be readable in UTF-16. The encoding is decided, first
//! that applies: a byte-order mark (UTF-8 or UTF-16); UTF-16 without one, told by the
//! document's first character `<` (the XML specification's appendix F); the declaration's
//! `encoding`, read from the ASCII-compatible prolog, when it names another than UTF-8; UTF-8
//! for a body that is valid UTF-8; the content type's `charset`; else UTF-8. A body in UTF-8 is read where it lies; any other is transcoded once, before it is
//! parsed, with the labels and decoders of the Encoding Standard (`encoding_rs`, as browsers
//! do: `ISO-8859-1` is read as `windows-1252`, of which it is a subset).

use std::borrow::Cow;

use encoding_rs::{DecoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE};

use crate::error::DecodeError;

/// How far into the body the XML declaration is looked for: it must come first, and is
/// never longer than this in practice (`<?xml version="1.0" encoding="…" standalone="…"?>`).
const DECLARATION_MAX: usize = 256;

/// The UTF-8 byte-order mark.
const UTF_8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A body in UTF-16: its code units (after the byte-order mark, if any) and their byte order.
pub(crate) struct Utf16<'a> {
    /// The body's bytes from its first character on.
    pub units: &'a [u8],
    /// Whether each unit is big-endian.
    pub big_endian: bool,
}

/// The body as UTF-16, if it is: by its byte-order mark, or without one by its first character
/// `<` as UTF-16 writes it (the XML specification's appendix F). One place for the rule, which
/// both the format sniffing and the transcoding follow.
pub(crate) fn utf16_units(body: &[u8]) -> Option<Utf16<'_>> {
    let (units, big_endian) = match body {
        [0xFF, 0xFE, rest @ ..] => (rest, false),
        [0xFE, 0xFF, rest @ ..] => (rest, true),
        [b'<', 0, ..] => (body, false),
        [0, b'<', ..] => (body, true),
        _ => return None,
    };
    Some(Utf16 { units, big_endian })
}

/// `bytes` as UTF-8 text: borrowed when it is UTF-8 already, else transcoded from the encoding
/// the body says it is in (see the module's documentation). `charset` is the content type's
/// `charset` parameter, if any.
///
/// An encoding label no decoder is known for is refused ([`DecodeError::UnknownEncoding`]),
/// unless the body is valid UTF-8 (all ASCII included), which is then read as UTF-8. Bytes that are not valid in the encoding are refused as UTF-8's are
/// ([`DecodeError::InvalidUtf8`], or [`DecodeError::InvalidEncoding`] naming the encoding).
pub fn to_utf8<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, DecodeError> {
    let (encoding, body) = if bytes.starts_with(UTF_8_BOM) {
        // The UTF-8 mark is left for the parser, which skips it (as it always did).
        (UTF_8, bytes)
    } else if let Some(Utf16 { units, big_endian }) = utf16_units(bytes) {
        (if big_endian { UTF_16BE } else { UTF_16LE }, units)
    } else {
        match labelled(bytes, charset)? {
            Labelled::Utf8(text) => return Ok(Cow::Borrowed(text)),
            Labelled::In(encoding) => (encoding, bytes),
        }
    };
    if encoding == UTF_8 {
        return std::str::from_utf8(body).map(Cow::Borrowed).map_err(|e| {
            DecodeError::InvalidUtf8 {
                offset: e.valid_up_to(),
            }
        });
    }
    let skipped = bytes.len() - body.len();
    transcode(encoding, body)
        .map(Cow::Owned)
        .map_err(|offset| DecodeError::InvalidEncoding {
            encoding: encoding.name(),
            offset: skipped + offset,
        })
}

/// The encoding of a body without a byte-order mark. The document's own declaration decides
/// first: it travels with the bytes. Without one (or with one that says UTF-8), a body that is
/// valid UTF-8 is read as UTF-8 whatever the `charset` says (a header set by a proxy or a
/// default could otherwise turn `é` into `Ã©`, and the ids the relay reads with it); only a body
/// that is not UTF-8 takes the `charset`'s encoding.
fn labelled<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Labelled<'a>, DecodeError> {
    // Asked only of a body UTF-8 cannot read (so not all ASCII either).
    let known = |label: &str| {
        encoding_for(label).ok_or_else(|| DecodeError::UnknownEncoding {
            label: label.chars().take(64).collect(),
        })
    };
    let declared = declared_encoding(bytes).filter(|l| !l.is_empty());
    if let Some(encoding) = declared.and_then(encoding_for)
        && encoding != UTF_8
    {
        return Ok(Labelled::In(encoding));
    }
    let not_utf8 = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(Labelled::Utf8(text)),
        Err(e) => e,
    };
    // A label no decoder is known for refuses only a body that UTF-8 cannot read either: a 4xx
    // is a message Tradecloud drops.
    if let Some(label) = declared {
        known(label)?;
    }
    match charset.map(str::trim).filter(|l| !l.is_empty()) {
        Some(label) => Ok(Labelled::In(known(label)?)),
        None => Err(DecodeError::InvalidUtf8 {
            offset: not_utf8.valid_up_to(),
        }),
    }
}

/// What [`labelled`] found: text already checked as UTF-8 (not checked again), or the
/// encoding to read the bytes in.
enum Labelled<'a> {
    Utf8(&'a str),
    In(&'static Encoding),
}

/// The decoder for `label`. A declaration that says UTF-16 in a prolog that reads as ASCII
/// contradicts itself (a UTF-16 document would have come with a byte-order mark or as
/// `<\0`, both handled before): its bytes are UTF-8, as the XML specification's appendix F
/// and the Encoding Standard both read it. The `replacement` decoder, which the Encoding
/// Standard gives a few obsolete labels to keep them from being read at all, reads nothing,
/// so those labels are unknown here.
///
/// Java names encodings with `_` where the Encoding Standard's labels have `-` (`ISO8859_1`,
/// `ISO8859_15`, `EUC_JP`, `KOI8_R`), and a Java sender may write its name into the
/// declaration; such a label is read as its `-` spelling (`iso8859-1` and the others are
/// standard labels), so a Latin-1 body declared the Java way is read as Latin-1, not refused.
fn encoding_for(label: &str) -> Option<&'static Encoding> {
    let encoding = Encoding::for_label_no_replacement(label.as_bytes()).or_else(|| {
        label
            .contains('_')
            .then(|| Encoding::for_label_no_replacement(label.replace('_', "-").as_bytes()))
            .flatten()
    })?;
    Some(if encoding == UTF_16LE || encoding == UTF_16BE {
        UTF_8
    } else {
        encoding
    })
}

/// The `encoding` of the XML declaration the body opens with, read as ASCII. White space
/// before the declaration is skipped: the XML reader accepts it there, so a body it reads
/// must not lose its declared encoding to it (a Latin-1 body would be refused as UTF-8).
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let lead = bytes
        .iter()
        .take(DECLARATION_MAX)
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    let bytes = &bytes[lead..];
    let head = &bytes[..bytes.len().min(DECLARATION_MAX)];
    let decl = head.strip_prefix(b"<?xml")?;
    if !decl.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    // `encoding` always follows `version`, and is never part of another pseudo-attribute's
    // name or value that comes before it (`version` is digits, the name is fixed).
    let (_, rest) = decl.split_once("encoding")?;
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|&q| q == '"' || q == '\'')?;
    let (label, _) = rest[1..].split_once(quote)?;
    Some(label.trim())
}

/// `body` decoded from `encoding` into UTF-8, or the offset of its first byte that is not
/// valid in it.
fn transcode(encoding: &'static Encoding, body: &[u8]) -> Result<String, usize> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(body.len())
        .ok_or(0usize)?;
    let mut text = String::with_capacity(capacity);
    let (result, read) = decoder.decode_to_string_without_replacement(body, &mut text, true);
    match result {
        DecoderResult::InputEmpty => {
            text.shrink_to_fit();
            Ok(text)
        }
        DecoderResult::Malformed(bad, after) => Err(read - usize::from(after) - usize::from(bad)),
        // The buffer holds the worst case: never full.
        DecoderResult::OutputFull => Err(read),
    }
}

/// The content type's `charset` parameter, unquoted.
pub fn charset_of(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_read_from_the_prolog() {
        let decl = |s: &str| declared_encoding(s.as_bytes()).map(str::to_owned);
        assert_eq!(
            decl("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(
            decl("<?xml version='1.0' encoding = 'windows-1252' standalone='yes'?>").as_deref(),
            Some("windows-1252")
        );
        assert_eq!(decl("<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(decl("<a encoding=\"latin1\"/>"), None);
        assert_eq!(decl("<?xml-stylesheet encoding=\"latin1\"?>"), None);
    }

    #[test]
    fn charset_parameters_are_found_quoted_or_not() {
        assert_eq!(
            charset_of("text/xml; charset=ISO-8859-1"),
            Some("ISO-8859-1")
        );
        assert_eq!(
            charset_of("application/xml;Charset=\"utf-16\""),
            Some("utf-16")
        );
        assert_eq!(charset_of("application/xml"), None);
        assert_eq!(charset_of("application/xml; boundary=x"), None);
    }

    #[test]
    fn the_mark_then_the_declaration_then_the_charset_decide() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        assert!(
            to_utf8(latin1, Some("utf-8"))
                .unwrap()
                .ends_with("<a>café</a>")
        );
        let bare = b"<a>caf\xe9</a>";
        assert_eq!(to_utf8(bare, Some("latin1")).unwrap(), "<a>café</a>");
        // A UTF-8 body is not read in the charset's encoding: it would turn é into Ã©.
        assert_eq!(
            to_utf8("<a>café</a>".as_bytes(), Some("ISO-8859-1")).unwrap(),
            "<a>café</a>"
        );
        // A declaration that says UTF-8 over Latin-1 bytes: the charset says what they are.
        let mislabelled = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>caf\xe9</a>";
        assert!(
            to_utf8(mislabelled, Some("ISO-8859-1"))
                .unwrap()
                .ends_with("<a>café</a>")
        );
        assert_eq!(
            to_utf8(bare, None),
            Err(DecodeError::InvalidUtf8 { offset: 6 })
        );
        // UTF-16, with and without a mark, whatever the charset says.
        let utf16: Vec<u8> = "\u{feff}<a>café</a>"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(to_utf8(&utf16, Some("latin1")).unwrap(), "<a>café</a>");
        assert_eq!(to_utf8(&utf16[2..], None).unwrap(), "<a>café</a>");
        // A UTF-8 body is borrowed, not copied.
        assert!(matches!(
            to_utf8("<a>café</a>".as_bytes(), None),
            Ok(Cow::Borrowed(_))
        ));
        // "UTF-16" declared in a prolog that reads as ASCII: the bytes are UTF-8.
        let liar = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>café</a>";
        assert_eq!(to_utf8(liar.as_bytes(), None).unwrap(), liar);
    }

    #[test]
    fn java_encoding_names_are_read_as_their_standard_labels() {
        // Latin-1 bytes under Java's name for Latin-1: read as Latin-1, as under `ISO-8859-1`.
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO8859_1\"?><a>caf\xe9</a>";
        assert_eq!(
            to_utf8(latin1, None).unwrap(),
            "<?xml version=\"1.0\" encoding=\"ISO8859_1\"?><a>café</a>"
        );
        // The declaration decides, as it does for `ISO-8859-1`: UTF-8 bytes under it are read
        // as Latin-1.
        let utf8 = "<?xml version=\"1.0\" encoding=\"ISO8859_1\"?><a>é</a>";
        let standard = utf8.replace("ISO8859_1", "ISO-8859-1");
        assert_eq!(
            to_utf8(utf8.as_bytes(), None).unwrap(),
            to_utf8(standard.as_bytes(), None)
                .unwrap()
                .replace("ISO-8859-1", "ISO8859_1")
        );
        assert!(
            to_utf8(utf8.as_bytes(), None)
                .unwrap()
                .ends_with("<a>Ã©</a>")
        );
        for (java, standard) in [
            ("ISO8859_15", "ISO-8859-15"),
            ("ISO8859_2", "ISO-8859-2"),
            ("EUC_JP", "EUC-JP"),
            ("KOI8_R", "KOI8-R"),
        ] {
            assert_eq!(encoding_for(java), encoding_for(standard), "{java}");
            assert!(encoding_for(java).is_some(), "{java}");
        }
        // A standard label spelled with `_` keeps its own meaning; an unknown one stays unknown.
        assert_eq!(encoding_for("iso_8859-1"), encoding_for("ISO-8859-1"));
        assert_eq!(encoding_for("x_klingon"), None);
        let unknown = b"<?xml version=\"1.0\" encoding=\"x_klingon\"?><a>\xe9</a>";
        assert_eq!(
            to_utf8(unknown, None),
            Err(DecodeError::UnknownEncoding {
                label: "x_klingon".into()
            })
        );
    }

    #[test]
    fn unknown_labels_and_bad_bytes_are_named() {
        let body = b"<?xml version=\"1.0\" encoding=\"x-klingon\"?><a>\xe9</a>";
        let e = to_utf8(body, None).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnknownEncoding {
                label: "x-klingon".into()
            }
        );
        assert!(e.to_string().contains("x-klingon"), "{e}");
        // All ASCII: read whatever the label; so is a body that is valid UTF-8.
        let ascii = b"<?xml version=\"1.0\" encoding=\"x-klingon\"?><a>e</a>";
        assert!(to_utf8(ascii, None).is_ok());
        let utf8 = "<?xml version=\"1.0\" encoding=\"x-klingon\"?><a>é</a>";
        assert_eq!(to_utf8(utf8.as_bytes(), None).unwrap(), utf8);
        // A lone surrogate in UTF-16LE, at byte 8 (after the mark and three characters).
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend("<a>".encode_utf16().flat_map(u16::to_le_bytes));
        utf16.extend([0x00, 0xd8]);
        utf16.extend("</a>".encode_utf16().flat_map(u16::to_le_bytes));
        let e = to_utf8(&utf16, None).unwrap_err();
        assert_eq!(
            e,
            DecodeError::InvalidEncoding {
                encoding: "UTF-16LE",
                offset: 8
            }
        );
        assert!(e.to_string().contains("UTF-16LE"), "{e}");
    }
}
