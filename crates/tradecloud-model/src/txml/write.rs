//! JSON → tXML.

use serde_json::{Map, Value};
use std::fmt::Write as _;

use crate::schema::{Shape, field};

/// Why a value cannot be written as tXML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The document must be an object.
    #[error("a tXML document must be a JSON object")]
    NotAnObject,
    /// tXML has no way to write a list of lists.
    #[error("{path}: a list inside a list cannot be written as tXML")]
    NestedList {
        /// Where.
        path: String,
    },
    /// A field name that is not a valid XML element name.
    #[error("{path}: {name:?} is not a valid XML element name")]
    BadName {
        /// Where.
        path: String,
        /// The name.
        name: String,
    },
}

/// Writes `value` as a tXML document with root element `root`, lists written by `shape`.
///
/// `null` is written as `xsi:nil="true"`; an empty list of the schema as an empty element
/// under the list's own name (`<lines/>`, how a wrapping writer puts it, which the reader reads
/// as `[]`), any other empty list is left out (tXML has no other way to write it).
pub fn write_document(root: &str, value: &Value, shape: &Shape) -> Result<String, EncodeError> {
    let Value::Object(map) = value else {
        return Err(EncodeError::NotAnObject);
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let nil_decl = if contains_null(value) {
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    } else {
        ""
    };
    let _ = writeln!(out, "<{root}{nil_decl}>");
    write_fields(&mut out, map, Some(shape.fields()), 1, "")?;
    let _ = writeln!(out, "</{root}>");
    Ok(out)
}

fn contains_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(contains_null),
        Value::Object(map) => map.values().any(contains_null),
        _ => false,
    }
}

fn write_fields(
    out: &mut String,
    map: &Map<String, Value>,
    fields: Option<&'static [crate::schema::Field]>,
    depth: usize,
    path: &str,
) -> Result<(), EncodeError> {
    for (name, value) in map {
        let child_path = format!("{path}.{name}");
        let known = fields.and_then(|f| field(f, name));
        match (known.map(|f| f.shape), value) {
            (Some(Shape::List { item, .. }), Value::Array(items))
                if items.is_empty() && item != name.as_str() =>
            {
                write_element(
                    out,
                    name,
                    &Value::String(String::new()),
                    None,
                    depth,
                    &child_path,
                )?;
            }
            (Some(Shape::List { item, of }), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    write_element(out, item, v, Some(of), depth, &format!("{child_path}[{i}]"))?;
                }
            }
            (shape, Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    if v.is_array() {
                        return Err(EncodeError::NestedList {
                            path: format!("{child_path}[{i}]")
                                .trim_start_matches('.')
                                .to_owned(),
                        });
                    }
                    write_element(out, name, v, shape.as_ref(), depth, &child_path)?;
                }
            }
            (shape, v) => write_element(out, name, v, shape.as_ref(), depth, &child_path)?,
        }
    }
    Ok(())
}

fn write_element(
    out: &mut String,
    name: &str,
    value: &Value,
    shape: Option<&Shape>,
    depth: usize,
    path: &str,
) -> Result<(), EncodeError> {
    if !is_xml_name(name) {
        return Err(EncodeError::BadName {
            path: path.trim_start_matches('.').to_owned(),
            name: name.to_owned(),
        });
    }
    let indent = "  ".repeat(depth);
    match value {
        Value::Null => {
            let _ = writeln!(out, "{indent}<{name} xsi:nil=\"true\"/>");
        }
        Value::Bool(b) => {
            let _ = writeln!(out, "{indent}<{name}>{b}</{name}>");
        }
        Value::Number(n) => {
            let _ = writeln!(out, "{indent}<{name}>{n}</{name}>");
        }
        Value::String(s) if s.is_empty() => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Value::String(s) => {
            let _ = writeln!(
                out,
                "{indent}<{name}>{}</{name}>",
                quick_xml::escape::escape(s)
            );
        }
        Value::Object(map) if map.is_empty() => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Value::Object(map) => {
            let _ = writeln!(out, "{indent}<{name}>");
            let fields = match shape {
                Some(Shape::Obj(fields)) => Some(*fields),
                _ => None,
            };
            write_fields(out, map, fields, depth + 1, path)?;
            let _ = writeln!(out, "{indent}</{name}>");
        }
        Value::Array(_) => {
            return Err(EncodeError::NestedList {
                path: path.trim_start_matches('.').to_owned(),
            });
        }
    }
    Ok(())
}

/// A conservative check of XML's Name production (ASCII letters, digits, `_`, `-`, `.`;
/// starting with a letter or `_`), enough for JSON field names.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}
