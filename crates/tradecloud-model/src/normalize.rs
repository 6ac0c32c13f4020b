//! Gives numbers and booleans their JSON types, by the schema, in a decoded body.
//!
//! Tradecloud has sent numbers as quoted strings, and tXML has no types at all; after this
//! pass both arrive at the ERP as JSON numbers and booleans with their exact digits, so the
//! same message gives the same payload whichever way it came.

use serde_json::{Number, Value};
use std::str::FromStr;

use crate::lenient::{Leniencies, Path};
use crate::num::{json_type, parse_bool, parse_decimal};
use crate::schema::{Shape, field, global_field};

/// The JSON value for the text of a number field: a number with exactly these digits; or, if
/// JSON cannot write it as is (`010`, `+5`) but it is a decimal, the text as a string (the
/// typed view still reads it); `None` if it is no number at all.
pub fn number_value(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(n) = Number::from_str(trimmed) {
        return Some(Value::Number(n));
    }
    parse_decimal(trimmed).map(|_| Value::String(text.to_owned()))
}

/// Normalises `value` in place according to `shape`. Values that do not fit the shape are left
/// as sent.
pub fn normalize(value: &mut Value, shape: &Shape) {
    normalize_lenient(value, shape, &mut Leniencies::new());
}

/// Normalises `value` in place according to `shape`, recording every value that does not fit
/// (left as sent) in `leniencies`. Fields the shape does not list get their type from
/// [`global_field`] when their name means the same everywhere.
pub fn normalize_lenient(value: &mut Value, shape: &Shape, leniencies: &mut Leniencies) {
    walk(value, Some(shape), &Path::Root, leniencies);
}

fn walk(value: &mut Value, shape: Option<&Shape>, path: &Path<'_>, out: &mut Leniencies) {
    match (shape, value) {
        (_, Value::Null) => {}
        (Some(Shape::Obj(fields)), Value::Object(map)) => {
            for (name, v) in map.iter_mut() {
                let known = field(fields, name)
                    .map(|f| &f.shape)
                    .or_else(|| global_field(name));
                walk(v, known, &Path::Key(path, name), out);
            }
        }
        (None, Value::Object(map)) => {
            for (name, v) in map.iter_mut() {
                walk(v, global_field(name), &Path::Key(path, name), out);
            }
        }
        (Some(Shape::List { of, .. }), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, Some(of), &Path::Index(path, i), out);
            }
        }
        (None, Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, None, &Path::Index(path, i), out);
            }
        }
        (Some(Shape::Num), Value::Number(_))
        | (Some(Shape::Bool), Value::Bool(_))
        | (Some(Shape::Str), Value::String(_))
        | (None, _) => {}
        (Some(Shape::Num), v @ Value::String(_)) => {
            if let Value::String(s) = &*v
                && let Some(Value::Number(n)) = number_value(s)
            {
                *v = Value::Number(n);
            } else if !matches!(&*v, Value::String(s) if number_value(s).is_some()) {
                out.push(path, "a number", "a string");
            }
        }
        (Some(Shape::Bool), v @ Value::String(_)) => {
            if let Value::String(s) = &*v
                && let Some(b) = parse_bool(s)
            {
                *v = Value::Bool(b);
            } else {
                out.push(path, "true or false", "a string");
            }
        }
        (Some(expected), v) => out.push(path, expected_words(expected), json_type(v)),
    }
}

/// A shape in the words of [`json_type`].
pub fn expected_words(shape: &Shape) -> &'static str {
    match shape {
        Shape::Str => "a string",
        Shape::Num => "a number",
        Shape::Bool => "true or false",
        Shape::Obj(_) => "an object",
        Shape::List { .. } => "an array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ORDER_SHAPE;
    use serde_json::json;

    #[test]
    fn quoted_numbers_and_booleans_become_typed_with_exact_digits() {
        let mut order: Value = serde_json::from_str(
            r#"{"version":"7","indicators":{"deliveryOverdue":"true"},
                "lines":[{"deliverySchedule":[{"quantity":"12.50","position":"0001"}]}],
                "unknownNumber":"3"}"#,
        )
        .unwrap();
        normalize(&mut order, &ORDER_SHAPE);
        let expected: Value = serde_json::from_str(
            r#"{"version":7,"indicators":{"deliveryOverdue":true},
                "lines":[{"deliverySchedule":[{"quantity":12.50,"position":"0001"}]}],
                "unknownNumber":"3"}"#,
        )
        .unwrap();
        assert_eq!(order, expected);
        // The exact digits survive (12.50, not 12.5).
        assert_eq!(
            order["lines"][0]["deliverySchedule"][0]["quantity"].to_string(),
            "12.50"
        );
    }

    #[test]
    fn values_that_do_not_fit_are_left_as_sent_and_reported_with_their_path() {
        let mut order = json!({"version": "seven",
            "lines": [{"deliverySchedule": [{"quantity": "lots"}], "buyerLine": 5,
                       "indicators": {"shipped": "maybe"}}]});
        let before = order.clone();
        let mut out = Leniencies::new();
        normalize_lenient(&mut order, &ORDER_SHAPE, &mut out);
        assert_eq!(order, before);
        let reported: Vec<String> = out.kept().iter().map(|l| l.to_string()).collect();
        assert_eq!(
            reported,
            [
                "lines[0].buyerLine: expected an object, found a number; forwarded as sent",
                "lines[0].deliverySchedule[0].quantity: expected a number, found a string; forwarded as sent",
                "lines[0].indicators.shipped: expected true or false, found a string; forwarded as sent",
                "version: expected a number, found a string; forwarded as sent",
            ]
        );
    }

    #[test]
    fn fields_in_unlisted_places_get_their_type_from_the_global_table() {
        let mut body = json!({"somethingNew": {"quantity": "3", "cancelled": "false",
            "deliverySchedule": [{"quantity": "1.50"}], "value": "7"}});
        normalize(&mut body, &ORDER_SHAPE);
        let expected: Value = serde_json::from_str(
            r#"{"somethingNew": {"quantity": 3, "cancelled": false,
                "deliverySchedule": [{"quantity": 1.50}], "value": "7"}}"#,
        )
        .unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn leading_zeros_stay_a_string_but_count_as_a_number() {
        assert_eq!(number_value("010"), Some(Value::String("010".into())));
        assert_eq!(number_value("x"), None);
        assert_eq!(number_value(" 5 ").unwrap().to_string(), "5");
    }
}
