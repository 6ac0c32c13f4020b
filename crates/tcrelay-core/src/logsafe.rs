//! Escaping text from outside before it reaches a log line or an operator's listing.
//!
//! Request ids, XML element names quoted in decode errors, ids and event names from bodies are
//! written by whoever sends the request. A raw newline in one of them forges a log line (say
//! `outcome=enqueued status=202`) in the local runner's text logs, and an ESC byte drives the
//! operator's terminal. Unicode's bidirectional controls do the same by other means (a
//! right-to-left override shows the text after it reversed, so `202=sutats` reads
//! `status=202`), and its line and paragraph separators break the line in viewers that honour
//! them. Everything such a string reaches goes through [`escape_control`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL and C1), bidirectional control (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and line or paragraph separator (U+2028,
/// U+2029) written as an escape: `\n`, `\r`, `\t`, else `\u{1b}`, `\u{202e}` and the like.
/// Borrowed when there is nothing to escape (the usual case), so the cost on the hot path is
/// one scan.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` changes how the text around it is shown: a control character, a bidirectional
/// control, or a line or paragraph separator.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            escape_control("plain ü"),
            Cow::Borrowed("plain ü")
        ));
        assert_eq!(
            escape_control("id\noutcome=enqueued status=202"),
            "id\\noutcome=enqueued status=202"
        );
        assert_eq!(escape_control("</a\u{1b}[2J>\r\t"), "</a\\u{1b}[2J>\\r\\t");
        assert_eq!(escape_control("\u{7f}\u{9b}\0"), "\\u{7f}\\u{9b}\\u{0}");
        assert_eq!(
            escape_control("PO\u{202e}1\u{2066}\u{2069}\u{200f}\u{61c}\u{2028}\u{2029}"),
            "PO\\u{202e}1\\u{2066}\\u{2069}\\u{200f}\\u{61c}\\u{2028}\\u{2029}"
        );
        // Right-to-left text itself is kept: only the invisible controls are escaped.
        assert!(matches!(escape_control("طلب שלום"), Cow::Borrowed(_)));
    }
}
