//! The webhook's one-pass JSON reader (`json::parse_typed`) gives exactly what a plain
//! `serde_json::Value` parse followed by the schema's normalisation gives: the same payload and
//! the same deviations (in document order rather than key order). Checked on every JSON body
//! the fuzzers kept, every webhook fixture, and hand-made bodies with each kind of misfit.

use std::path::Path;

use serde_json::Value;
use tradecloud_model::decode::parse_json;
use tradecloud_model::json::{parse_typed, reads_as_sent};
use tradecloud_model::lenient::Leniencies;
use tradecloud_model::normalize::normalize_lenient;
use tradecloud_model::schema::{ORDER_SHAPE, SHIPMENT_SHAPE, WEBHOOK_BODY_SHAPE};

fn rendered(l: &Leniencies) -> Vec<String> {
    let mut kept: Vec<String> = l.kept().iter().map(ToString::to_string).collect();
    kept.sort();
    kept
}

/// Compares both readings of `body`; returns whether it parsed at all.
fn same_as_two_passes(name: &str, body: &[u8]) -> bool {
    let Ok(mut expected) = parse_json(body) else {
        // What the plain parse refuses, the one-pass reader refuses too.
        assert!(
            parse_typed(body, &WEBHOOK_BODY_SHAPE, &mut Leniencies::new()).is_err(),
            "{name}: read in one pass, refused by the plain parse"
        );
        return false;
    };
    let mut two_pass = Leniencies::new();
    normalize_lenient(&mut expected, &WEBHOOK_BODY_SHAPE, &mut two_pass);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut one_pass = Leniencies::new();
    let read = parse_typed(body, &WEBHOOK_BODY_SHAPE, &mut one_pass)
        .unwrap_or_else(|e| panic!("{name}: refused in one pass: {e:?}"));
    assert_eq!(read.value, expected, "{name}: payloads differ");
    // Not retyped: the bytes are a faithful text of the payload (the webhook forwards them).
    if !read.retyped {
        let plain = parse_json(body).expect("parsed above");
        assert_eq!(
            read.value, plain,
            "{name}: not retyped, yet not the plain parse"
        );
    }
    assert_eq!(one_pass.total(), two_pass.total(), "{name}: deviations");
    // The check that builds nothing agrees: as sent exactly when nothing was typed or misfit.
    assert_eq!(
        reads_as_sent(
            std::str::from_utf8(body).expect("parsed above, so UTF-8"),
            &WEBHOOK_BODY_SHAPE
        )
        .expect("JSON"),
        !read.retyped && one_pass.total() == 0,
        "{name}: reads_as_sent"
    );
    // The same for the order or shipment inside, read on its own as the poller reads one.
    for (member, shape) in [("orderEvent", &ORDER_SHAPE), ("shipment", &SHIPMENT_SHAPE)] {
        let Some(object) = parse_json(body).expect("parsed above").get(member).cloned() else {
            continue;
        };
        let text = serde_json::to_string(&object).unwrap();
        let mut typed = Leniencies::new();
        let read = parse_typed(text.as_bytes(), shape, &mut typed).unwrap();
        assert_eq!(
            reads_as_sent(&text, shape).expect("JSON"),
            !read.retyped && typed.total() == 0,
            "{name}: reads_as_sent of {member}"
        );
    }
    // Which deviations are kept depends on the order met once there are more than are kept.
    if two_pass.total() <= tradecloud_model::lenient::MAX_KEPT {
        assert_eq!(rendered(&one_pass), rendered(&two_pass), "{name}");
    }
    true
}

#[test]
fn one_pass_json_reads_as_parse_then_normalise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [
        "fuzz/corpus/decode_json",
        "fuzz/corpus/decode_any",
        "fuzz/regressions/decode_json",
        "tests/fixtures/webhook",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("a directory entry").path()));
    }
    files.sort();
    let mut parsed = 0;
    for path in &files {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        if same_as_two_passes(&path.display().to_string(), &body) {
            parsed += 1;
        }
    }
    // The corpus holds hundreds of bodies that parse; a moved folder must not pass silently.
    assert!(
        parsed >= 50,
        "only {parsed} JSON bodies parsed of {}",
        files.len()
    );

    let misfits: [Value; 6] = [
        serde_json::json!({"eventName": "E", "orderEvent": {"orderId": "o", "version": "7",
            "lines": [{"id": 5, "deliverySchedule": {"quantity": "1"}, "buyerLine": [1],
                       "indicators": {"deliveryOverdue": "maybe", "shipped": "true"},
                       "prices": {"grossPrice": {"priceInTransactionCurrency": {"value": "010"}}}}],
            "buyerOrder": "text", "somethingNew": {"quantity": "3", "cancelled": "false"}}}),
        serde_json::json!([1, 2, 3]),
        serde_json::json!({"eventName": "E", "orderEvent": [], "meta": 5}),
        serde_json::json!({"eventName": "E", "orderEvent": {"lines": {}, "version": true}}),
        serde_json::json!({"eventName": "E", "shipment": {"id": 1, "lines": "x",
            "loadCarriers": [{"lines": [{"quantity": "x1"}]}]}}),
        serde_json::json!({"eventName": "E", "orderEvent": {"lines":
            [{"deliverySchedule": [{"quantity": "1e3"}, {"quantity": -2.50}, {"quantity": null}]}]}}),
    ];
    for (i, body) in misfits.iter().enumerate() {
        assert!(same_as_two_passes(
            &format!("misfit {i}"),
            &serde_json::to_vec(body).unwrap()
        ));
    }
}
