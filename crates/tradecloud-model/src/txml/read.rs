//! tXML → JSON.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};
use std::collections::HashSet;

use crate::error::{DecodeError, Location};
use crate::normalize::number_value;
use crate::num::parse_bool;
use crate::schema::{Shape, field_for_element};

/// The deepest nesting accepted. Tradecloud's messages nest about ten levels; the cap keeps a
/// hostile body of thousands of nested elements from costing more than a quick refusal.
pub const MAX_DEPTH: usize = 64;

/// One element, as read.
struct Node {
    name: String,
    offset: usize,
    nil: bool,
    text: String,
    children: Vec<Node>,
}

/// Reads `bytes` as a tXML document whose root must be `root`, converting it by `shape`.
pub fn read_document(
    bytes: &[u8],
    root: &'static str,
    shape: &Shape,
) -> Result<Value, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(DecodeError::Empty);
    }
    let tree = parse_tree(text)?;
    if tree.name != root {
        return Err(DecodeError::WrongRoot {
            expected: root,
            found: tree.name,
        });
    }
    Converter { text: bytes }.convert(&tree, Some(shape), "")
}

fn parse_tree(text: &str) -> Result<Node, DecodeError> {
    let bytes = text.as_bytes();
    // Computing a location scans the text up to the offset, so it is only ever done for an
    // error: done for every event, it made reading quadratic in the body size (a 1.3 MB
    // 500-line order took minutes in a debug build).
    let at = |offset: u64| Location::of_offset(bytes, offset as usize);
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let start = reader.buffer_position();
        let event = reader.read_event().map_err(|e| DecodeError::Xml {
            at: at(reader.error_position()),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep {
                        limit: MAX_DEPTH,
                        at: at(start),
                    });
                }
                if root.is_some() {
                    return Err(xml_error(at(start), "content after the root element"));
                }
                stack.push(new_node(&e, start as usize, bytes)?);
            }
            Event::Empty(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep {
                        limit: MAX_DEPTH,
                        at: at(start),
                    });
                }
                if root.is_some() {
                    return Err(xml_error(at(start), "content after the root element"));
                }
                let node = new_node(&e, start as usize, bytes)?;
                attach(&mut stack, &mut root, node);
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| xml_error(at(start), "closing tag without an opening tag"))?;
                attach(&mut stack, &mut root, node);
            }
            Event::Text(t) => {
                push_text(&mut stack, &t.xml10_content(), bytes, start)?;
            }
            Event::CData(t) => {
                push_text(&mut stack, &t.xml10_content(), bytes, start)?;
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| xml_error(at(start), &e.to_string()))?
                        .map(String::from)
                } else {
                    let name = r.xml10_content();
                    // Only XML's five predefined entities: nothing is ever expanded from a DTD.
                    match quick_xml::escape::resolve_xml_entity(&name) {
                        Some(s) => Some(s.to_owned()),
                        None => {
                            return Err(DecodeError::XmlEntity {
                                name: name.into_owned(),
                                at: at(start),
                            });
                        }
                    }
                };
                let resolved = resolved
                    .ok_or_else(|| xml_error(at(start), "character reference to no character"))?;
                push_text(&mut stack, &resolved, bytes, start)?;
            }
            Event::DocType(_) => return Err(DecodeError::XmlDoctype { at: at(start) }),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_error(
            Location::of_offset(bytes, bytes.len()),
            &format!("the document ends inside <{}>", open.name),
        ));
    }
    root.ok_or_else(|| xml_error(Location::of_offset(bytes, 0), "no root element"))
}

fn xml_error(at: Location, message: &str) -> DecodeError {
    DecodeError::Xml {
        at,
        message: message.to_owned(),
    }
}

/// `text` and `offset` locate the element, for an error only.
fn new_node(e: &BytesStart<'_>, offset: usize, text: &[u8]) -> Result<Node, DecodeError> {
    let name = e.local_name().as_ref().to_owned();
    let mut nil = false;
    for attr in e.attributes() {
        let attr =
            attr.map_err(|err| xml_error(Location::of_offset(text, offset), &err.to_string()))?;
        // xsi:nil="true" is how XML writes JSON's null.
        if attr.key.local_name().as_ref() == "nil"
            && matches!(attr.value.as_ref().trim(), "true" | "1")
        {
            nil = true;
        }
    }
    Ok(Node {
        name,
        offset,
        nil,
        text: String::new(),
        children: Vec::new(),
    })
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

/// `body` and `offset` locate the text, for an error only.
fn push_text(stack: &mut [Node], text: &str, body: &[u8], offset: u64) -> Result<(), DecodeError> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(xml_error(
            Location::of_offset(body, offset as usize),
            "text outside the root element",
        )),
    }
}

struct Converter<'a> {
    text: &'a [u8],
}

impl Converter<'_> {
    fn at(&self, node: &Node) -> Location {
        Location::of_offset(self.text, node.offset)
    }

    fn invalid(&self, node: &Node, path: &str, message: String) -> DecodeError {
        DecodeError::InvalidField {
            path: path.trim_start_matches('.').to_owned(),
            message,
            at: Some(self.at(node)),
        }
    }

    fn convert(
        &self,
        node: &Node,
        shape: Option<&Shape>,
        path: &str,
    ) -> Result<Value, DecodeError> {
        if node.nil {
            return Ok(Value::Null);
        }
        match shape {
            Some(Shape::Obj(fields)) => self.object(node, Some(fields), path),
            Some(Shape::Str) => Ok(Value::String(self.leaf_text(node, path)?.to_owned())),
            Some(Shape::Num) => {
                let text = self.leaf_text(node, path)?;
                number_value(text).ok_or_else(|| {
                    self.invalid(node, path, format!("expected a number, found {text:?}"))
                })
            }
            Some(Shape::Bool) => {
                let text = self.leaf_text(node, path)?;
                parse_bool(text).map(Value::Bool).ok_or_else(|| {
                    self.invalid(
                        node,
                        path,
                        format!("expected true or false, found {text:?}"),
                    )
                })
            }
            // A list reached directly (never from the schema tables): read the items.
            Some(Shape::List { of, .. }) => self.convert(node, Some(of), path),
            None if node.children.is_empty() => Ok(Value::String(node.text.clone())),
            None => self.object(node, None, path),
        }
    }

    fn leaf_text<'n>(&self, node: &'n Node, path: &str) -> Result<&'n str, DecodeError> {
        match node.children.first() {
            Some(child) => Err(self.invalid(
                node,
                path,
                format!("expected a value, found element <{}>", child.name),
            )),
            None => Ok(&node.text),
        }
    }

    fn object(
        &self,
        node: &Node,
        fields: Option<&'static [crate::schema::Field]>,
        path: &str,
    ) -> Result<Value, DecodeError> {
        if !node.text.trim().is_empty() {
            return Err(self.invalid(
                node,
                path,
                format!(
                    "expected elements, found text {:?}",
                    node.text.trim().chars().take(40).collect::<String>()
                ),
            ));
        }
        let mut map = Map::new();
        // Unknown elements that repeat become arrays; remember which ones we made.
        let mut repeated_unknown: HashSet<String> = HashSet::new();
        for child in &node.children {
            let known = fields.and_then(|f| field_for_element(f, &child.name));
            match known {
                Some(fld) => match fld.shape {
                    // The list itself is null: the writer puts JSON's `"documents": null` as
                    // `<documents xsi:nil="true"/>`, under the list's name, not an item's.
                    // Read as a list holding one null it would fail the typed view.
                    Shape::List { item, .. }
                        if child.nil && child.name == fld.name && item != fld.name =>
                    {
                        map.entry(fld.name).or_insert(Value::Null);
                    }
                    Shape::List { of, .. } => {
                        let entry = map
                            .entry(fld.name)
                            .or_insert_with(|| Value::Array(Vec::new()));
                        let Value::Array(items) = entry else {
                            // Only after the list was given as nil (above): say so, never panic.
                            return Err(self.invalid(
                                child,
                                &format!("{path}.{}", fld.name),
                                format!("<{}> after the list was given as nil", child.name),
                            ));
                        };
                        let item_path = format!("{path}.{}[{}]", fld.name, items.len());
                        let value = self.convert(child, Some(of), &item_path)?;
                        if let Value::Array(items) = map.get_mut(fld.name).expect("inserted above")
                        {
                            items.push(value);
                        }
                    }
                    shape => {
                        let child_path = format!("{path}.{}", fld.name);
                        if map.contains_key(fld.name) {
                            return Err(self.invalid(
                                child,
                                &child_path,
                                format!("<{}> appears more than once", child.name),
                            ));
                        }
                        let value = self.convert(child, Some(&shape), &child_path)?;
                        map.insert(fld.name.to_owned(), value);
                    }
                },
                None => {
                    let child_path = format!("{path}.{}", child.name);
                    let value = self.convert(child, None, &child_path)?;
                    match map.get_mut(&child.name) {
                        None => {
                            map.insert(child.name.clone(), value);
                        }
                        Some(Value::Array(items)) if repeated_unknown.contains(&child.name) => {
                            items.push(value)
                        }
                        Some(existing) => {
                            let first = existing.take();
                            *existing = Value::Array(vec![first, value]);
                            repeated_unknown.insert(child.name.clone());
                        }
                    }
                }
            }
        }
        Ok(Value::Object(map))
    }
}
