//! JSON → typed JSON value in one pass: each value gets its type from the schema while it is
//! parsed, so a webhook body is never walked a second time to be normalised.
//!
//! The result and the deviations it records are those of a plain `serde_json::Value` parse
//! followed by [`crate::normalize::normalize_lenient`] (a test checks this on every body the
//! fuzzers kept), except that deviations are recorded in the order of the document.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::budget::{Budget, MAP_NODE_UNITS, OverBudget};
use crate::lenient::{Leniencies, Path};
use crate::normalize::{expected_words, number_value};
use crate::num::parse_bool;
use crate::schema::{Shape, field, global_field};

/// The key serde_json's `arbitrary_precision` feature hands a number through: a map with this
/// one key and the number's digits as a string (how `serde_json::Value` itself reads numbers).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a one-pass read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The JSON is malformed.
    Json(serde_json::Error),
    /// The body holds more values than [`crate::budget::value_budget`] allows for its size.
    OverBudget {
        /// The budget.
        limit: usize,
    },
}

/// A body as [`parse_typed`] read it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedJson {
    /// The value, numbers and booleans typed.
    pub value: Value,
    /// Whether typing changed anything (a quoted number or boolean became one). When not,
    /// `value` is what a plain parse of the same bytes gives, so the bytes themselves are a
    /// faithful JSON text of it.
    pub retyped: bool,
}

/// Parses `body` (JSON) into its value, typing numbers and booleans by `shape` as
/// [`crate::normalize::normalize_lenient`] would, recording what does not fit in
/// `leniencies`, and refusing a body of more values and keys than
/// [`crate::budget::value_budget`] allows.
pub fn parse_typed(
    body: &[u8],
    shape: &'static Shape,
    leniencies: &mut Leniencies,
) -> Result<TypedJson, ReadError> {
    let mut ctx = Ctx {
        out: leniencies,
        budget: Budget::for_body(body.len()),
        exceeded: None,
        retyped: false,
    };
    match read::<BuildValue, _>(serde_json::Deserializer::from_slice(body), shape, &mut ctx) {
        Ok(value) => Ok(TypedJson {
            value,
            retyped: ctx.retyped,
        }),
        // The visitor stops the parse with an error of its own when the budget runs out.
        Err(e) => match ctx.exceeded {
            Some(over) => Err(ReadError::OverBudget { limit: over.limit }),
            None => Err(ReadError::Json(e)),
        },
    }
}

/// Whether `body` (JSON) reads as exactly what it says: [`parse_typed`] would type nothing in
/// it and find nothing that does not fit `shape`. Builds no value, so it costs a fraction of
/// a parse: when it holds, the bytes themselves are the typed payload and can be forwarded as
/// they are, and a view of a few fields can be read from them with plain serde.
/// `Err` when `body` is not JSON. Text, not bytes: the poller holds each object as text
/// already, and reading it as text spares checking every string's UTF-8 again.
pub fn reads_as_sent(body: &str, shape: &'static Shape) -> Result<bool, serde_json::Error> {
    let mut leniencies = Leniencies::new();
    let mut ctx = Ctx {
        out: &mut leniencies,
        // Nothing is built, so nothing needs a bound.
        budget: Budget::unlimited(),
        exceeded: None,
        retyped: false,
    };
    read::<BuildNothing, _>(serde_json::Deserializer::from_str(body), shape, &mut ctx)?;
    Ok(!ctx.retyped && ctx.out.total() == 0)
}

/// The one reader behind [`parse_typed`] and [`reads_as_sent`]: the typing rules in one place,
/// what is built from them chosen by `B`.
fn read<'de, B: Build, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    shape: &'static Shape,
    ctx: &mut Ctx<'_>,
) -> Result<B::Out, serde_json::Error> {
    Typed::<B> {
        shape: Some(shape),
        typing: true,
        path: &Path::Root,
        ctx,
        build: PhantomData,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value))
}

/// What a read builds from the values it meets: a `serde_json::Value` ([`BuildValue`]) or
/// nothing ([`BuildNothing`], for [`reads_as_sent`]).
trait Build {
    /// A value built.
    type Out;
    /// An array being built.
    type List;
    /// An object being built.
    type Object;
    fn null() -> Self::Out;
    fn bool(b: bool) -> Self::Out;
    fn number(n: Number) -> Self::Out;
    fn string(s: &str) -> Self::Out;
    fn list(capacity: usize) -> Self::List;
    fn push(list: &mut Self::List, item: Self::Out);
    fn list_done(list: Self::List) -> Self::Out;
    fn object() -> Self::Object;
    fn insert(object: &mut Self::Object, key: Cow<'_, str>, value: Self::Out);
    fn object_done(object: Self::Object) -> Self::Out;
}

/// Builds the `serde_json::Value`.
struct BuildValue;

impl Build for BuildValue {
    type Out = Value;
    type List = Vec<Value>;
    type Object = Map<String, Value>;
    fn null() -> Value {
        Value::Null
    }
    fn bool(b: bool) -> Value {
        Value::Bool(b)
    }
    fn number(n: Number) -> Value {
        Value::Number(n)
    }
    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }
    fn list(capacity: usize) -> Vec<Value> {
        Vec::with_capacity(capacity)
    }
    fn push(list: &mut Vec<Value>, item: Value) {
        list.push(item);
    }
    fn list_done(list: Vec<Value>) -> Value {
        Value::Array(list)
    }
    fn object() -> Map<String, Value> {
        Map::new()
    }
    fn insert(object: &mut Map<String, Value>, key: Cow<'_, str>, value: Value) {
        object.insert(key.into_owned(), value);
    }
    fn object_done(object: Map<String, Value>) -> Value {
        Value::Object(object)
    }
}

/// Builds nothing: the read only types and checks.
struct BuildNothing;

impl Build for BuildNothing {
    type Out = ();
    type List = ();
    type Object = ();
    fn null() {}
    fn bool(_: bool) {}
    fn number(_: Number) {}
    fn string(_: &str) {}
    fn list(_: usize) {}
    fn push((): &mut (), (): ()) {}
    fn list_done((): ()) {}
    fn object() {}
    fn insert((): &mut (), _: Cow<'_, str>, (): ()) {}
    fn object_done((): ()) {}
}

/// What the whole read shares: the deviations met, and what is left of the budget.
struct Ctx<'l> {
    out: &'l mut Leniencies,
    budget: Budget,
    /// The budget ran out: the error that stopped the parse was ours, not the JSON's.
    exceeded: Option<OverBudget>,
    /// A string was read as a number or a boolean.
    retyped: bool,
}

impl Ctx<'_> {
    fn charge<E: serde::de::Error>(&mut self, units: usize) -> Result<(), E> {
        self.budget.charge(units).map_err(|over| {
            self.exceeded = Some(over);
            E::custom(over)
        })
    }
}

/// One value being read: its expected shape (`None`: unknown place, typed by the global
/// table only inside objects) and its path for the deviations. Without `typing`, the value
/// is kept exactly as sent (inside a value that did not fit its shape), only counted.
struct Typed<'p, 'c, 'l, B> {
    shape: Option<&'static Shape>,
    typing: bool,
    path: &'p Path<'p>,
    ctx: &'c mut Ctx<'l>,
    build: PhantomData<B>,
}

impl<'l, B: Build> Typed<'_, '_, 'l, B> {
    fn mismatch(&mut self, found: &'static str) {
        if let Some(expected) = self.shape {
            self.ctx
                .out
                .push(self.path, expected_words(expected), found);
        }
    }

    /// A value inside this one, at `path`.
    fn child<'q, 'd>(
        &'d mut self,
        shape: Option<&'static Shape>,
        path: &'q Path<'q>,
    ) -> Typed<'q, 'd, 'l, B> {
        Typed {
            shape: if self.typing { shape } else { None },
            typing: self.typing,
            path,
            ctx: self.ctx,
            build: PhantomData,
        }
    }

    fn number(mut self, n: Number) -> B::Out {
        if !matches!(self.shape, None | Some(Shape::Num)) {
            self.mismatch("a number");
        }
        B::number(n)
    }
}

impl<'de, B: Build> DeserializeSeed<'de> for Typed<'_, '_, '_, B> {
    type Value = B::Out;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<B::Out, D::Error> {
        self.ctx.charge::<D::Error>(1)?;
        de.deserialize_any(self)
    }
}

impl<'de, B: Build> Visitor<'de> for Typed<'_, '_, '_, B> {
    type Value = B::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, b: bool) -> Result<B::Out, E> {
        if !matches!(self.shape, None | Some(Shape::Bool)) {
            self.mismatch("a boolean");
        }
        Ok(B::bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<B::Out, E> {
        Ok(self.number(n.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<B::Out, E> {
        Ok(self.number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<B::Out, E> {
        let n = Number::from_f64(n).ok_or_else(|| E::custom("not a JSON number"))?;
        Ok(self.number(n))
    }

    // serde_json hands every string over borrowed (from the body or its scratch buffer), so
    // the one copy is made here, and none for a quoted number that becomes a number.
    fn visit_str<E: serde::de::Error>(mut self, s: &str) -> Result<B::Out, E> {
        match self.shape {
            Some(Shape::Num) => match number_value(s) {
                Some(Value::Number(n)) => {
                    self.ctx.retyped = true;
                    return Ok(B::number(n));
                }
                // Not writable as a JSON number (`010`), but a number: kept as sent, silently.
                Some(_) => {}
                None => self.mismatch("a string"),
            },
            Some(Shape::Bool) => match parse_bool(s) {
                Some(b) => {
                    self.ctx.retyped = true;
                    return Ok(B::bool(b));
                }
                None => self.mismatch("a string"),
            },
            Some(Shape::Obj(_) | Shape::List { .. }) => self.mismatch("a string"),
            Some(Shape::Str) | None => {}
        }
        Ok(B::string(s))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<B::Out, E> {
        Ok(B::null())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<B::Out, E> {
        Ok(B::null())
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<B::Out, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<B::Out, A::Error> {
        let of = match self.shape {
            Some(Shape::List { of, .. }) => Some(*of),
            None => None,
            Some(_) => {
                // Not a list where one is expected: reported, and kept exactly as sent.
                self.mismatch("an array");
                self.typing = false;
                None
            }
        };
        let mut items = B::list(seq.size_hint().unwrap_or(0).min(4096));
        let mut len = 0;
        loop {
            let path = Path::Index(self.path, len);
            let item = seq.next_element_seed(self.child(of, &path))?;
            match item {
                Some(item) => B::push(&mut items, item),
                None => break,
            }
            len += 1;
        }
        Ok(B::list_done(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<B::Out, A::Error> {
        let first = match map.next_key_seed(FirstKey)? {
            None => {
                if !matches!(self.shape, None | Some(Shape::Obj(_))) {
                    self.mismatch("an object");
                }
                return Ok(B::object_done(B::object()));
            }
            Some(FirstKeyIs::Number) => {
                let digits: Cow<'de, str> = map.next_value_seed(Text)?;
                let n = Number::from_str(&digits).map_err(A::Error::custom)?;
                return Ok(self.number(n));
            }
            Some(FirstKeyIs::Name(name)) => name,
        };
        let fields = match self.shape {
            Some(Shape::Obj(fields)) => Some(*fields),
            None => None,
            Some(_) => {
                // Not an object where one is expected: reported, and kept exactly as sent.
                self.mismatch("an object");
                self.typing = false;
                None
            }
        };
        // The map's first node is allocated whole with its first key: an object of one key
        // costs far more than its two units.
        self.ctx.charge::<A::Error>(MAP_NODE_UNITS)?;
        let mut object = B::object();
        let mut key = Some(first);
        while let Some(name) = key {
            // A key costs a unit of its own: short distinct keys are the costliest shape.
            self.ctx.charge::<A::Error>(1)?;
            let shape = match (self.typing, fields) {
                (false, _) => None,
                (true, Some(fields)) => field(fields, &name)
                    .map(|f| &f.shape)
                    .or_else(|| global_field(&name)),
                (true, None) => global_field(&name),
            };
            let path = Path::Key(self.path, &name);
            let value = map.next_value_seed(self.child(shape, &path))?;
            B::insert(&mut object, name, value);
            key = map.next_key_seed(Text)?;
        }
        Ok(B::object_done(object))
    }
}

/// Reads a string borrowed from the body where it can be (no escapes in it), else copied.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Cow<'de, str>, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s))
    }
}

/// What the first key of a map says it is: a number (the `arbitrary_precision` token) or an
/// object's first field.
enum FirstKeyIs<'de> {
    Number,
    Name(Cow<'de, str>),
}

/// Reads a map's first key, recognising the number token without allocating it: every number
/// of a body arrives as such a map, so an owned token would cost an allocation per number.
struct FirstKey;

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = FirstKeyIs<'de>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<FirstKeyIs<'de>, D::Error> {
        Ok(match Text.deserialize(de)? {
            name if name == NUMBER_TOKEN => FirstKeyIs::Number,
            name => FirstKeyIs::Name(name),
        })
    }
}
