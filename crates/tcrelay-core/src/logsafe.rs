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

/// A panic's message (its `&str` or `String` payload, else "unknown panic"), escaped by
/// [`escape_control`]: a panic may format text from a request (an id, an event name), and its
/// message reaches a log line.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    escape_control(message).into_owned()
}

/// Replaces Rust's default panic hook, which writes the message raw to stderr (the Lambda's
/// log, `tcrelay serve`'s terminal or journal), with one that logs it escaped: one `ERROR`
/// event (target `panic`) through the installed `tracing` subscriber, so it has the log's
/// format (JSON in a Lambda), with the thread, the location and, when `RUST_BACKTRACE` asks
/// for one, the backtrace, each escaped ([`escape_control`]), so nothing a panic formats can
/// start a line of its own or reorder the text around it. Before a subscriber is installed, or
/// when its filter turns ERROR off, the same fields go to stderr as one line. Installed once at
/// start-up, after the subscriber, by each binary.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let thread = std::thread::current();
        let thread = escape_control(thread.name().unwrap_or("<unnamed>")).into_owned();
        let location = info
            .location()
            .map(|l| escape_control(&l.to_string()).into_owned())
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                Some(escape_control(&backtrace.to_string()).into_owned())
            }
            _ => None,
        };
        // Not dropped where the filter turns ERROR off: then stderr, as Rust's own hook.
        if tracing::dispatcher::has_been_set()
            && tracing::enabled!(target: "panic", tracing::Level::ERROR)
        {
            tracing::error!(
                target: "panic",
                panic = %message,
                thread = %thread,
                location = %location,
                backtrace = backtrace.as_deref(),
                "thread panicked"
            );
        } else {
            let backtrace = backtrace
                .map(|b| format!(" backtrace={b}"))
                .unwrap_or_default();
            eprintln!("thread '{thread}' panicked at {location}: {message}{backtrace}");
        }
    }));
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
