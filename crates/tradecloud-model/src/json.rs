//! JSON → typed JSON value in one pass: each value gets its type from the schema while it is
//! parsed, so a webhook body is never walked a second time to be normalised.
//!
//! The result and the deviations it records are those of a plain `serde_json::Value` parse
//! followed by [`crate::normalize::normalize_lenient`] (a test checks this on every body the
//! fuzzers kept), except that deviations are recorded in the order of the document.

use std::fmt;
use std::str::FromStr;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::lenient::{Leniencies, Path};
use crate::normalize::{expected_words, number_value};
use crate::num::parse_bool;
use crate::schema::{Shape, field, global_field};

/// The key serde_json's `arbitrary_precision` feature hands a number through: a map with this
/// one key and the number's digits as a string (how `serde_json::Value` itself reads numbers).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `body` (JSON) into its value, typing numbers and booleans by `shape` as
/// [`crate::normalize::normalize_lenient`] would, and recording what does not fit in
/// `leniencies`.
pub fn parse_typed(
    body: &[u8],
    shape: &'static Shape,
    leniencies: &mut Leniencies,
) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Typed {
        shape: Some(shape),
        path: &Path::Root,
        out: leniencies,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// One value being read: its expected shape (`None`: unknown place, typed by the global
/// table only inside objects) and its path for the deviations.
struct Typed<'p, 'l> {
    shape: Option<&'static Shape>,
    path: &'p Path<'p>,
    out: &'l mut Leniencies,
}

impl Typed<'_, '_> {
    fn mismatch(&mut self, found: &'static str) {
        if let Some(expected) = self.shape {
            self.out.push(self.path, expected_words(expected), found);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Typed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Typed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, b: bool) -> Result<Value, E> {
        if !matches!(self.shape, None | Some(Shape::Bool)) {
            self.mismatch("a boolean");
        }
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(self.number(n.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(self.number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        let n = Number::from_f64(n).ok_or_else(|| E::custom("not a JSON number"))?;
        Ok(self.number(n))
    }

    // serde_json hands every string over borrowed (from the body or its scratch buffer), so
    // the one copy is made here, and none for a quoted number that becomes a number.
    fn visit_str<E: serde::de::Error>(mut self, s: &str) -> Result<Value, E> {
        match self.shape {
            Some(Shape::Num) => match number_value(s) {
                Some(Value::Number(n)) => return Ok(Value::Number(n)),
                // Not writable as a JSON number (`010`), but a number: kept as sent, silently.
                Some(_) => {}
                None => self.mismatch("a string"),
            },
            Some(Shape::Bool) => match parse_bool(s) {
                Some(b) => return Ok(Value::Bool(b)),
                None => self.mismatch("a string"),
            },
            Some(Shape::Obj(_) | Shape::List { .. }) => self.mismatch("a string"),
            Some(Shape::Str) | None => {}
        }
        Ok(Value::String(s.to_owned()))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let of = match self.shape {
            Some(Shape::List { of, .. }) => Some(*of),
            None => None,
            Some(_) => {
                // Not a list where one is expected: reported, and kept exactly as sent.
                self.mismatch("an array");
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                return Ok(Value::Array(items));
            }
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let path = Path::Index(self.path, items.len());
            let item = seq.next_element_seed(Typed {
                shape: of,
                path: &path,
                out: self.out,
            })?;
            match item {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            if !matches!(self.shape, None | Some(Shape::Obj(_))) {
                self.mismatch("an object");
            }
            return Ok(Value::Object(Map::new()));
        };
        if first == NUMBER_TOKEN {
            let digits: String = map.next_value()?;
            let n = Number::from_str(&digits).map_err(A::Error::custom)?;
            return Ok(self.number(n));
        }
        let fields = match self.shape {
            Some(Shape::Obj(fields)) => Some(*fields),
            None => None,
            Some(_) => {
                // Not an object where one is expected: reported, and kept exactly as sent.
                self.mismatch("an object");
                let mut object = Map::new();
                let value: Value = map.next_value()?;
                object.insert(first, value);
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    object.insert(key, value);
                }
                return Ok(Value::Object(object));
            }
        };
        let mut object = Map::new();
        let mut key = Some(first);
        while let Some(name) = key {
            let shape = match fields {
                Some(fields) => field(fields, &name)
                    .map(|f| &f.shape)
                    .or_else(|| global_field(&name)),
                None => global_field(&name),
            };
            let path = Path::Key(self.path, &name);
            let value = map.next_value_seed(Typed {
                shape,
                path: &path,
                out: self.out,
            })?;
            object.insert(name, value);
            key = map.next_key::<String>()?;
        }
        Ok(Value::Object(object))
    }
}

impl Typed<'_, '_> {
    fn number(mut self, n: Number) -> Value {
        if !matches!(self.shape, None | Some(Shape::Num)) {
            self.mismatch("a number");
        }
        Value::Number(n)
    }
}
