//! One part of a `/`-separated key: the dedupe keys (`msg/<class>/<id>/…`), the store's lookup of
//! them by id, and a shipment line's id (`<order>/<line>/<schedule>`).

use std::borrow::Cow;

/// `text` as one part of a `/`-separated key: `%` written `%25`, then `/` written `%2F`.
///
/// Ids and other texts from Tradecloud may contain `/`, the separator, so unescaped one part
/// could be read as two and two different inputs could give one key (`a/b` + `c` and `a` +
/// `b/c`). `%` is escaped first, so an input that already looks escaped (`a%2Fb`) stays
/// distinct from the escape of `a/b`: the encoding is reversible. Every key writer and reader
/// calls this one function, so keys written and keys looked up agree byte for byte. Borrowed
/// when there is nothing to escape, the usual case.
pub fn key_part(text: &str) -> Cow<'_, str> {
    if text.contains(['%', '/']) {
        Cow::Owned(text.replace('%', "%25").replace('/', "%2F"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_empty_are_borrowed_unchanged() {
        assert!(matches!(key_part("o-1 ü"), Cow::Borrowed("o-1 ü")));
        assert!(matches!(key_part(""), Cow::Borrowed("")));
    }

    #[test]
    fn separator_and_escape_character_are_escaped() {
        assert_eq!(key_part("a/b"), "a%2Fb");
        assert_eq!(key_part("/"), "%2F");
        assert_eq!(key_part("100%"), "100%25");
        assert_eq!(key_part("a/b%c/"), "a%2Fb%25c%2F");
    }

    #[test]
    fn text_that_looks_escaped_is_escaped_again() {
        // `%` first: `a%2Fb` and `a/b` stay two parts.
        assert_eq!(key_part("a%2Fb"), "a%252Fb");
        assert_ne!(key_part("a%2Fb"), key_part("a/b"));
    }

    #[test]
    fn no_part_contains_a_separator() {
        for text in ["a/b", "a%2F/b", "//", "%/%"] {
            assert!(!key_part(text).contains('/'), "{text}");
        }
    }
}
