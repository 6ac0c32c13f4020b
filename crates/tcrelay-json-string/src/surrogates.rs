//! Lone surrogate escapes: grammatical JSON that is no Unicode text.
//!
//! Tradecloud runs on the JVM, where a text is UTF-16: one cut in the middle of a character
//! outside the Basic Multilingual Plane (an emoji in a free-text field cut to a length) keeps
//! half of its surrogate pair, and Jackson's generator writes that half as an escape of its own
//! (`"…\ud83d"`). RFC 8259 §7 allows such an escape ("the ABNF allows it, the behavior is
//! unpredictable"); serde_json refuses it, so a body or answer with one could not be read at
//! all. Mending it to U+FFFD, the replacement character, loses that half character only.

use memchr::memmem;

/// `json` with every `\uXXXX` escape of a UTF-16 surrogate that is not half of a pair written
/// `\uFFFD`, and the byte offset of each mended escape's backslash; `None` when it has none
/// (the common case costs one SIMD search for `\u`).
///
/// The mended text has the same length, so a parse error's position is the original's. An
/// escaped backslash before a `u` (`\\ud800`) is no escape: a backslash escapes the next one
/// when an odd number of backslashes precedes it. A cut-off escape (`\ud8`) is left for the
/// parser to refuse.
pub fn lone_surrogates_mended(json: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    let unit = |at: usize| -> Option<u16> {
        let digits = json.get(at..at + 4)?;
        digits.iter().try_fold(0u16, |unit, &digit| {
            Some(unit << 4 | u16::from((digit as char).to_digit(16)? as u8))
        })
    };
    let mut mended: Option<(Vec<u8>, Vec<usize>)> = None;
    // Escapes before this offset were read already (the low half of a pair).
    let mut read_to = 0;
    for at in memmem::find_iter(json, b"\\u") {
        if at < read_to {
            continue;
        }
        let backslashes_before = json[..at].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes_before % 2 == 1 {
            continue;
        }
        let lone = match unit(at + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = json.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(unit(at + 8), Some(0xDC00..=0xDFFF));
                if paired {
                    read_to = at + 12;
                }
                !paired
            }
            Some(0xDC00..=0xDFFF) => true,
            _ => false,
        };
        if lone {
            let (text, offsets) = mended.get_or_insert_with(|| (json.to_vec(), Vec::new()));
            text[at + 2..at + 6].copy_from_slice(b"FFFD");
            offsets.push(at);
        }
    }
    mended
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lone_halves_are_mended_and_pairs_and_escaped_backslashes_are_not() {
        let json = br#"{"a":"\ud83d\ude00 \\udc00 \uDC00","b":"\ud800","c":"\\\ud83d x"}"#;
        let (text, offsets) = lone_surrogates_mended(json).unwrap();
        assert_eq!(
            text,
            br#"{"a":"\ud83d\ude00 \\udc00 \uFFFD","b":"\uFFFD","c":"\\\uFFFD x"}"#.to_vec()
        );
        assert_eq!(offsets.len(), 3);
        for at in offsets {
            assert_eq!(&json[at..at + 2], b"\\u", "offset {at}");
        }
        let parsed: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(parsed["a"], "\u{1F600} \\udc00 \u{FFFD}");
        assert_eq!(parsed["c"], "\\\u{FFFD} x");
    }

    #[test]
    fn a_high_half_before_another_high_half_is_lone_and_the_second_can_pair() {
        let (text, offsets) = lone_surrogates_mended(br#""\ud83d\ud83d\ude00""#).unwrap();
        assert_eq!(text, br#""\uFFFD\ud83d\ude00""#.to_vec());
        assert_eq!(offsets, [1]);
    }

    #[test]
    fn text_without_a_lone_half_is_left_alone() {
        for json in [
            &br#"{"a":"\u00e9 \n \ud83d\ude00"}"#[..],
            b"\\ud8",
            b"\\u",
            b"\\",
            b"",
            br#""\\\\ud800""#,
            br#""\uzzzz""#,
        ] {
            assert_eq!(lone_surrogates_mended(json), None, "{json:?}");
        }
    }

    proptest! {
        /// Whatever Jackson writes for a Java text (any UTF-16 units, lone halves included,
        /// each escaped or literal) reads after the mend as the text with each lone half
        /// replaced, and a text serde_json reads is never changed.
        #[test]
        fn a_mended_text_reads_as_the_units_with_lone_halves_replaced(
            units in proptest::collection::vec(
                prop_oneof![Just(0x5Cu16), Just(0x75), Just(0x22), 0xD800u16..0xE000, 0x20u16..0x7F],
                0..24,
            ),
            escape_all in any::<bool>(),
        ) {
            let mut json = String::from("\"");
            for unit in char::decode_utf16(units.iter().copied()) {
                match unit {
                    Ok(c) if !escape_all && c != '"' && c != '\\' && !c.is_control() => json.push(c),
                    Ok(c) => {
                        let mut buf = [0u16; 2];
                        for half in c.encode_utf16(&mut buf) {
                            json.push_str(&format!("\\u{half:04x}"));
                        }
                    }
                    Err(lone) => json.push_str(&format!("\\u{:04x}", lone.unpaired_surrogate())),
                }
            }
            json.push('"');
            let expected = String::from_utf16_lossy(&units);
            match lone_surrogates_mended(json.as_bytes()) {
                None => {
                    let read: String = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(read, expected);
                }
                Some((text, _)) => {
                    prop_assert!(serde_json::from_str::<String>(&json).is_err());
                    let read: String = serde_json::from_slice(&text).unwrap();
                    prop_assert_eq!(read, expected);
                }
            }
        }
    }
}
