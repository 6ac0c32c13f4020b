//! Tradecloud's own published examples, wrapped into webhook bodies (`realworld_cases`): every
//! JSON example decodes with its payload unchanged, and every tXML example decodes to the shape
//! of its JSON twin, with nothing reported as unexpected.

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
