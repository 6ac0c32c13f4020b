//! Escaping text from outside before it reaches a log line or an operator's listing.
//!
//! Request ids, XML element names quoted in decode errors, ids and event names from bodies are
//! written by whoever sends the request. A raw newline in one of them forges a log line (say
//! `outcome=enqueued status=202`) in the local runner's text logs, and an ESC byte drives the
//! operator's terminal. Everything such a string reaches goes through [`escape_control`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL and C1) written as an escape: `\n`, `\r`,
/// `\t`, else `\u{1b}` and the like. Borrowed when there is nothing to escape (the usual
/// case), so the cost on the hot path is one scan.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    }
}
