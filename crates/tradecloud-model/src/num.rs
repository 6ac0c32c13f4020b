//! Lenient number handling for the typed view.
//!
//! Tradecloud has sent numbers as quoted strings (release note TC-6431), so decimal and integer
//! fields accept both `12.5` and `"12.5"`. Decimals are `rust_decimal::Decimal`, never `f64`;
//! they serialize back as JSON numbers with their exact digits (serde_json's arbitrary precision).

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::str::FromStr;

/// Parses the text of a JSON number or of a quoted number into a decimal.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// Turns a decimal into a JSON number with exactly its digits.
pub fn decimal_to_json(value: &Decimal) -> serde_json::Number {
    serde_json::Number::from_str(&value.to_string()).expect("a decimal prints as a JSON number")
}

/// `Option<Decimal>` fields: number or quoted number; `null` or absent is `None`.
pub mod opt_decimal {
    use super::*;

    /// Serializes as a JSON number with the decimal's exact digits.
    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => decimal_to_json(d).serialize(s),
            None => s.serialize_none(),
        }
    }

    /// Accepts a number, a quoted number, or null. A JSON number beyond the decimal's range
    /// (`1e-30`, 30 digits) is `None`: it is legitimate JSON, forwarded as sent, which the typed
    /// view cannot hold (and whose spelling serde_json may change to an exponent the decimal's
    /// parser reads differently: `0.000…1` fits by rounding, `1e-30` does not).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(parse_decimal(&n.to_string())),
            Value::String(s) => parse_decimal(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a decimal number"))),
            other => Err(serde::de::Error::custom(format!(
                "expected a decimal number, found {}",
                json_type(&other)
            ))),
        }
    }
}

/// `Option<u64>` fields such as `version`: number or quoted number.
pub mod opt_u64 {
    use super::*;

    /// Serializes as a JSON integer.
    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_u64(*v),
            None => s.serialize_none(),
        }
    }

    /// Accepts an integer, a quoted integer, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let parse = |text: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a whole number")))
        };
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => parse(&n.to_string()).map(Some),
            Value::String(s) => parse(&s).map(Some),
            other => Err(serde::de::Error::custom(format!(
                "expected a whole number, found {}",
                json_type(&other)
            ))),
        }
    }
}

/// `Option<bool>` fields: `true`/`false`, also quoted.
pub mod opt_bool {
    use super::*;

    /// Serializes as a JSON boolean.
    pub fn serialize<S: Serializer>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_bool(*v),
            None => s.serialize_none(),
        }
    }

    /// Accepts a boolean, `"true"`/`"false"`, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            Value::String(s) => parse_bool(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not true or false"))),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, found {}",
                json_type(&other)
            ))),
        }
    }
}

/// `true`/`false` (also `1`/`0`, as XML Schema's boolean allows).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A JSON value's type in words, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
