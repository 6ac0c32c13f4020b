//! Tradecloud's own published examples, wrapped into webhook bodies (`realworld_cases`): every
//! JSON example decodes with its payload unchanged, and every tXML example decodes to the shape
//! of its JSON twin, with nothing reported as unexpected.

use crate::liberal::{latin1, utf16};
use crate::realworld_cases;

use tradecloud_model::{Format, decode_webhook};

#[test]
fn tradecloud_examples_decode_as_their_json_twins() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    for case in &cases {
        let d = decode_webhook(&case.body, Some(case.content_type))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let format = if case.is_txml() {
            Format::Txml
        } else {
            Format::Json
        };
        assert_eq!(d.format, format, "{}", case.name);
        assert!(d.leniencies.is_empty(), "{}: {:?}", case.name, d.leniencies);
        assert_eq!(d.body.event_name, case.event_name(), "{}", case.name);
        assert_eq!(d.body.object_id(), case.object_id(), "{}", case.name);
        let departures = realworld_cases::departures(case, &d.payload);
        assert!(departures.is_empty(), "{}: {departures:#?}", case.name);
    }
}

#[test]
fn tradecloud_txml_examples_in_latin1_and_utf16_decode_as_in_utf8() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.is_txml()) {
        let text = std::str::from_utf8(&case.body).unwrap();
        let declaration = "encoding=\"UTF-8\"";
        assert!(text.contains(declaration), "{}", case.name);
        // An accented place name, as a European buyer's tXML would carry.
        let text = text
            .replace("Rotterdam", "Düsseldorf-Süd")
            .replace("Street 123", "Straße 123");
        if !text.contains("Düsseldorf") && !text.contains("Straße") {
            continue;
        }
        let utf8 = decode_webhook(text.as_bytes(), Some("application/xml"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let rendered = utf8.payload.to_string();
        assert!(
            rendered.contains("Düsseldorf-Süd") || rendered.contains("Straße 123"),
            "{}",
            case.name
        );
        let encoded = [
            (
                "ISO-8859-1",
                latin1(&text.replace(declaration, "encoding=\"ISO-8859-1\"")),
            ),
            (
                "UTF-16LE",
                utf16(
                    &text.replace(declaration, "encoding=\"UTF-16\""),
                    false,
                    true,
                ),
            ),
            (
                "UTF-16BE",
                utf16(
                    &text.replace(declaration, "encoding=\"UTF-16\""),
                    true,
                    true,
                ),
            ),
        ];
        for (encoding, body) in encoded {
            let d = decode_webhook(&body, Some(case.content_type))
                .unwrap_or_else(|e| panic!("{} in {encoding}: {e}", case.name));
            assert_eq!(d.payload, utf8.payload, "{} in {encoding}", case.name);
            assert_eq!(d.body, utf8.body, "{} in {encoding}", case.name);
            assert_eq!(d.leniencies, utf8.leniencies, "{} in {encoding}", case.name);
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} examples carry the place names"
    );
}
