//! Gives numbers and booleans their JSON types, by the schema, in a decoded body.
//!
//! Tradecloud has sent numbers as quoted strings, and tXML has no types at all; after this
//! pass both arrive at the ERP as JSON numbers and booleans with their exact digits, so the
//! same message gives the same payload whichever way it came.

use serde_json::{Number, Value};
use std::str::FromStr;

use crate::num::{parse_bool, parse_decimal};
use crate::schema::{Shape, field};

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
/// alone: the typed view reports them with their path.
pub fn normalize(value: &mut Value, shape: &Shape) {
    match (shape, value) {
        (Shape::Obj(fields), Value::Object(map)) => {
            for (name, v) in map.iter_mut() {
                if let Some(fld) = field(fields, name) {
                    normalize(v, &fld.shape);
                }
            }
        }
        (Shape::List { of, .. }, Value::Array(items)) => {
            for item in items {
                normalize(item, of);
            }
        }
        (Shape::Num, v @ Value::String(_)) => {
            if let Value::String(s) = &*v
                && let Some(Value::Number(n)) = number_value(s)
            {
                *v = Value::Number(n);
            }
        }
        (Shape::Bool, v @ Value::String(_)) => {
            if let Value::String(s) = &*v
                && let Some(b) = parse_bool(s)
            {
                *v = Value::Bool(b);
            }
        }
        _ => {}
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
    fn values_that_are_not_numbers_are_left_for_the_typed_view_to_report() {
        let mut order =
            json!({"version": "seven", "lines": [{"deliverySchedule": [{"quantity": "lots"}]}]});
        let before = order.clone();
        normalize(&mut order, &ORDER_SHAPE);
        assert_eq!(order, before);
    }

    #[test]
    fn leading_zeros_stay_a_string_but_count_as_a_number() {
        assert_eq!(number_value("010"), Some(Value::String("010".into())));
        assert_eq!(number_value("x"), None);
        assert_eq!(number_value(" 5 ").unwrap().to_string(), "5");
    }
}
