//! JSON strings written fast, byte for byte as serde_json writes them.
//!
//! The relay sends JSON text inside JSON (each SQS message body is an envelope, carried as a
//! string of a `SendMessageBatch` request), so every `"` of it is escaped: in an envelope about
//! one byte in seven. serde_json's escape looks at one byte at a time; sonic-rs's SIMD escape
//! (the `json-escape-simd` crate: SSE2, AVX2 or NEON, chosen at run time) looks at 16 or 32 and
//! took half the time over an envelope (BENCHMARKS.md, "Poll cost", round 8). Both escape the
//! same characters the same way: `"`, `\`, and control characters, `\b \f \n \r \t` by name and
//! the others as lower-case `\u00xx`; nothing else, not even U+2028. The tests compare the two
//! on any text, on this machine's instruction set and, under qemu, on arm64's (NEON), which the
//! Lambda functions run on (`scripts/test-arm64.sh`).
//!
//! This is its own crate so that those tests build for arm64 in seconds, without the AWS SDK.
//!
//! It also mends the one kind of JSON string serde_json cannot read although JSON's grammar
//! allows it: an escaped UTF-16 surrogate that is not half of a pair ([`lone_surrogates_mended`]).

mod surrogates;

pub use surrogates::lone_surrogates_mended;

/// The longest text escaped in one go. [`json_escape_simd::escape_into`] reserves room for
/// every byte of its input escaped to six: a message body near SQS's 1 MiB would make it
/// reserve 6 MiB. Longer texts are escaped piece by piece.
pub const PIECE: usize = 16 * 1024;

/// The spare capacity [`write_string`] may reserve beyond what it writes, for a text of
/// `len` bytes: a buffer sized with this on top never grows.
pub const fn scratch_room(len: usize) -> usize {
    let len = if len < PIECE { len } else { PIECE };
    len * 6 + 35
}

/// Appends `text` to `out` as a JSON string: quoted and escaped, the bytes serde_json writes.
///
/// Each byte's escape depends on that byte alone, and no byte of a multi-byte character is
/// escaped, so a text cut at character boundaries escapes to the same bytes piece by piece.
pub fn write_string(out: &mut Vec<u8>, text: &str) {
    if text.len() <= PIECE {
        json_escape_simd::escape_into(text, out);
        return;
    }
    out.push(b'"');
    let mut scratch = Vec::with_capacity(scratch_room(PIECE));
    let mut rest = text;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(rest.floor_char_boundary(PIECE));
        scratch.clear();
        json_escape_simd::escape_into(piece, &mut scratch);
        // Without the quotes each piece was given.
        out.extend_from_slice(&scratch[1..scratch.len() - 1]);
        rest = tail;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn written(text: &str) -> String {
        let mut out = b"[".to_vec();
        write_string(&mut out, text);
        String::from_utf8(out).expect("UTF-8")
    }

    fn check(text: &str) {
        let expected = format!("[{}", serde_json::to_string(text).unwrap());
        assert_eq!(written(text), expected, "{text:?}");
    }

    /// Every character JSON escapes, and some it does not.
    const AWKWARD: &str = "{\"quote\":\"\\\"\",\"nl\":\"a\nb\r\tc\u{8}\u{c}\",\"ctl\":\"\u{0}\u{1}\u{1f}\u{7f}\",\"é\":\"€ 😀 \u{2028}\u{2029} \u{fffe}\u{ffff}\",\"slash\":\"</\"}";

    #[test]
    fn every_byte_alone_and_in_a_run_is_written_as_serde_json_writes_it() {
        check("");
        check(AWKWARD);
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            check(&c.to_string());
            // At every place of a SIMD register of 16, 32 or 64 bytes, and after it.
            for at in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
                check(&format!("{}{c}{}", "x".repeat(at), "y".repeat(70)));
            }
        }
    }

    /// Texts longer than one piece, each cut landing in another place: inside a character of
    /// two, three or four bytes, on a quote, on a control character.
    #[test]
    fn long_texts_are_written_piece_by_piece_as_serde_json_writes_them_whole() {
        for shift in 0..8 {
            let head = "x".repeat(PIECE - 4 + shift);
            let tail = AWKWARD.repeat(PIECE * 2 / AWKWARD.len());
            check(&format!("{head}é€😀\"\u{1}{tail}"));
        }
        check(&"\"".repeat(3 * PIECE + 1));
        check(&"😀".repeat(PIECE));
    }

    #[test]
    fn the_room_bounds_what_is_reserved() {
        for len in [0, 1, 100, PIECE, PIECE + 1, 10 * PIECE] {
            let text = "\"".repeat(len);
            let mut out = Vec::with_capacity(2 * len + 2 + scratch_room(len));
            let capacity = out.capacity();
            write_string(&mut out, &text);
            assert_eq!(out.capacity(), capacity, "{len}");
        }
    }

    /// Any text, with JSON's special characters often (`any::<String>()` has no control
    /// characters).
    fn text() -> impl Strategy<Value = String> {
        let char = prop_oneof![
            4 => any::<char>(),
            1 => prop::sample::select(vec!['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '\u{2028}']),
            2 => prop::char::range('a', 'z'),
        ];
        prop::collection::vec(char, 0..300).prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_is_written_as_serde_json_writes_it(text in text()) {
            check(&text);
        }
    }
}
