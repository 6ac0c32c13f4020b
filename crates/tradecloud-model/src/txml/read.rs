//! tXML → JSON, in one pass: each element becomes its JSON value as it closes, typed by the
//! schema, so no tree of the document is ever built beside the result.
//!
//! The value built is charged to the body's budget ([`crate::budget`]) as JSON's is: an
//! element is one value, and the object it becomes a part of pays for its keys and its map's
//! first node. Without it, a body of elements of one child each (`<a><b/></a>`, every one a
//! whole B-tree node for a few bytes) held several times the memory bound.

use std::borrow::Cow;
use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use serde_json::{Map, Value};

use crate::budget::{Budget, MAP_NODE_UNITS, UNIT_COST_BYTES};
use crate::error::{DecodeError, Location};
use crate::lenient::Leniencies;
use crate::normalize::{expected_words, number_value};
use crate::num::parse_bool;
use crate::schema::{Shape, WEBHOOK_ROOT, field_for_element, global_field, global_list_element};

/// The deepest nesting accepted. Tradecloud's messages nest about ten levels; the cap keeps a
/// hostile body of thousands of nested elements from costing more than a quick refusal.
pub const MAX_DEPTH: usize = 64;

/// Where an element's value goes in its parent object.
#[derive(Clone, Copy)]
enum Slot<'a> {
    /// One item of the list `key`, whose items' own name is `item`; `named_as_list` when the
    /// element carries the list's own name rather than its item's (how `"documents": null` is
    /// written, and a wrapping writer's wrapper: `<lines><line>…</line></lines>`).
    Item {
        key: &'a str,
        named_as_list: bool,
        item: &'a str,
    },
    /// The field `key`, known to the schema.
    Field { key: &'a str },
    /// A field the schema does not know: repeated, it becomes a list.
    Unknown { key: &'a str },
}

impl<'a> Slot<'a> {
    fn key(&self) -> &'a str {
        match *self {
            Slot::Item { key, .. } | Slot::Field { key } | Slot::Unknown { key } => key,
        }
    }
}

/// An element being read.
struct Frame<'a> {
    /// The element's name as written, prefix included (what its end tag must repeat).
    qname: &'a str,
    slot: Slot<'a>,
    shape: Option<&'static Shape>,
    offset: usize,
    nil: bool,
    /// The element's text: borrowed from the body while it is one piece (almost always), so
    /// a leaf costs no copy until its value is made, and indentation none at all.
    text: Cow<'a, str>,
    /// The children read so far; `None` while there are none.
    map: Option<Map<String, Value>>,
    /// Children that were to be single but repeated, and were made a list: a set, because
    /// every later repeat asks it, and a list searched each time made a body of many such
    /// names quadratic (a 6 MB body took 36 s). Made on the first repeat: most elements have
    /// none, and a new set draws its hash keys.
    repeated: Option<HashSet<&'a str>>,
    /// Lists whose only item so far is an empty element under the list's own name (`<lines/>`):
    /// Jackson's XmlMapper, wrapping lists as it does by default, writes an empty list so, and
    /// the JSON twin has `[]`, not a list of one empty item. Such a list is emptied when this
    /// element closes, unless more items came (then the items are named by the list, and the
    /// empty one is an item). A few names at most: the lists of one object.
    empty_lists: Option<Vec<&'a str>>,
    /// Whether an item of the list this element is named after was read inside it: the
    /// element is the list's wrapper ([`Slot::Item`]).
    wraps: bool,
}

impl<'a> Frame<'a> {
    /// Whether the element has no content: not nil, no children, and no text but white
    /// space (an indented empty wrapper, `<notes>\n  </notes>`).
    fn is_empty(&self) -> bool {
        !self.nil && self.map.is_none() && is_blank(&self.text)
    }

    /// The name without its prefix, split the way quick-xml's `local_name` splits it.
    fn name(&self) -> &'a str {
        local_part(self.qname)
    }
}

fn local_part(qname: &str) -> &str {
    // A byte loop: names are a few bytes long, too short for `split_once`'s searcher to pay
    // (it showed at 2.5% of the decode's profile).
    match qname.bytes().position(|b| b == b':') {
        Some(colon) => &qname[colon + 1..],
        None => qname,
    }
}

/// Whether `text` is only whitespace; indentation is ASCII, so that is checked first, without
/// `trim`'s Unicode tables.
fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_whitespace()) || text.trim().is_empty()
}

/// Where a child element goes, and its shape: the parent's table first, then what the element's
/// name means wherever it appears.
fn resolve<'a>(
    parent: Option<&'static Shape>,
    element: &'a str,
) -> (Slot<'a>, Option<&'static Shape>) {
    if let Some(Shape::Obj(fields)) = parent
        && let Some(fld) = field_for_element(fields, element)
    {
        return match &fld.shape {
            Shape::List { item, of } => (
                Slot::Item {
                    key: fld.name,
                    named_as_list: element == fld.name && *item != fld.name,
                    item,
                },
                Some(*of),
            ),
            shape => (Slot::Field { key: fld.name }, Some(shape)),
        };
    }
    if let Some((list, of)) = global_list_element(element) {
        return (
            Slot::Item {
                key: list,
                named_as_list: false,
                item: element,
            },
            of,
        );
    }
    match global_field(element) {
        Some(Shape::List { item, of }) => (
            Slot::Item {
                key: element,
                named_as_list: *item != element,
                item,
            },
            Some(*of),
        ),
        Some(shape) => (Slot::Field { key: element }, Some(shape)),
        None => (Slot::Unknown { key: element }, None),
    }
}

/// Reads `bytes` as a tXML document whose root is expected to be `root` (another root is
/// read all the same, and reported in `leniencies`), converting it by `shape`; values that
/// do not fit the shape are kept as read and recorded in `leniencies`. A body of
/// more elements and keys than [`crate::budget::value_budget`] allows for its size is refused
/// with [`DecodeError::TooManyValues`].
pub fn read_document(
    bytes: &[u8],
    root: &'static str,
    shape: &'static Shape,
    leniencies: &mut Leniencies,
) -> Result<Value, DecodeError> {
    read_document_in(bytes, None, root, shape, leniencies)
}

/// [`read_document`] for a body whose content type's `charset` parameter is `charset`: a body
/// in another encoding than UTF-8 is transcoded first ([`super::encoding::to_utf8`]).
///
/// The budget stays that of the body as received, and a transcoded body pays for its text
/// from it: the copy (at most three times the body's size: a byte of a single-byte
/// encoding, or two of UTF-16, become at most three of UTF-8) and as much again for the
/// values' texts, which may be longer than the bytes they were read from.
pub fn read_document_in(
    bytes: &[u8],
    charset: Option<&str>,
    root: &'static str,
    shape: &'static Shape,
    leniencies: &mut Leniencies,
) -> Result<Value, DecodeError> {
    let text = super::encoding::to_utf8(bytes, charset)?;
    read_text(
        &text,
        matches!(text, Cow::Owned(_)),
        Budget::for_body(bytes.len()),
        root,
        shape,
        leniencies,
    )
}

/// Reads `text` as [`read_document_in`] does, within `budget`, which first pays for the copy
/// when `text` was `transcoded`.
fn read_text(
    text: &str,
    transcoded: bool,
    mut budget: Budget,
    root: &'static str,
    shape: &'static Shape,
    leniencies: &mut Leniencies,
) -> Result<Value, DecodeError> {
    if text.trim().is_empty() {
        return Err(DecodeError::Empty);
    }
    if transcoded {
        budget.charge((2 * text.len()).div_ceil(UNIT_COST_BYTES))?;
    }
    Doc {
        text,
        root,
        shape,
        stack: Vec::new(),
        done: None,
        out: leniencies,
        budget,
        pending_high: None,
    }
    .read()
}

struct Doc<'a, 'l> {
    text: &'a str,
    root: &'static str,
    shape: &'static Shape,
    stack: Vec<Frame<'a>>,
    done: Option<Value>,
    out: &'l mut Leniencies,
    budget: Budget,
    /// The first half of a surrogate pair read from a character reference, with its offset,
    /// waiting for the second ([`Doc::char_ref`]).
    pending_high: Option<(u32, u64)>,
}

impl<'a> Doc<'a, '_> {
    /// Computing a location scans the text up to the offset, so it is only ever done for an
    /// error: done for every event, it made reading quadratic in the body size.
    fn at(&self, offset: u64) -> Location {
        Location::of_offset(self.text.as_bytes(), offset as usize)
    }

    fn read(mut self) -> Result<Value, DecodeError> {
        let mut reader = Reader::from_str(self.text);
        reader.config_mut().trim_text(false);
        // The open frames hold each start tag's name borrowed from the body, so end tags are
        // matched against them in `end`, sparing quick-xml a copy of every name.
        reader.config_mut().check_end_names = false;
        loop {
            let start = reader.buffer_position();
            let event = reader.read_event().map_err(|e| DecodeError::Xml {
                at: self.at(reader.error_position()),
                message: e.to_string(),
            })?;
            if self.pending_high.is_some()
                && !matches!(&event, Event::GeneralRef(r) if r.is_char_ref())
            {
                // Nothing follows a surrogate's first half to pair with.
                self.lone_surrogate()?;
            }
            match event {
                Event::Start(e) => self.open(&e, start)?,
                Event::Empty(e) => {
                    self.open(&e, start)?;
                    self.close(start)?;
                }
                Event::End(e) => {
                    self.end(e.name().as_ref(), start)?;
                    self.close(start)?;
                }
                Event::Text(t) => {
                    let raw: &str = &t;
                    if raw.bytes().all(|b| b.is_ascii_whitespace())
                        && self.stack.last().is_none_or(|f| f.map.is_some())
                    {
                        // Indentation between elements: nothing to keep.
                        continue;
                    }
                    self.push_text(t.xml10_content(), start)?;
                }
                Event::CData(t) => self.push_text(t.xml10_content(), start)?,
                Event::GeneralRef(r) if r.is_char_ref() => self.char_ref(&r, start)?,
                Event::GeneralRef(r) => {
                    let resolved = {
                        let name = r.xml10_content();
                        // Only XML's five predefined entities: nothing is ever expanded from a DTD.
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(s) => Some(Cow::Borrowed(s)),
                            None => {
                                return Err(DecodeError::XmlEntity {
                                    name: name.into_owned(),
                                    at: self.at(start),
                                });
                            }
                        }
                    };
                    let resolved = resolved.ok_or_else(|| {
                        xml_error(self.at(start), "character reference to no character")
                    })?;
                    self.push_text(resolved, start)?;
                }
                Event::DocType(_) => return Err(DecodeError::XmlDoctype { at: self.at(start) }),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if self.pending_high.is_some() {
            self.lone_surrogate()?;
        }
        if let Some(open) = self.stack.last() {
            return Err(xml_error(
                Location::of_offset(self.text.as_bytes(), self.text.len()),
                &format!("the document ends inside <{}>", open.name()),
            ));
        }
        self.done.ok_or_else(|| {
            xml_error(
                Location::of_offset(self.text.as_bytes(), 0),
                "no root element",
            )
        })
    }

    fn open(&mut self, e: &BytesStart<'a>, start: u64) -> Result<(), DecodeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(DecodeError::TooDeep {
                limit: MAX_DEPTH,
                at: self.at(start),
            });
        }
        if self.done.is_some() {
            return Err(xml_error(self.at(start), "content after the root element"));
        }
        // Every element becomes a value: charged before it is read, so an over-budget body
        // stops here.
        self.budget.charge(1)?;
        let qname = self.name_of(e, start)?;
        let name = local_part(qname);
        let mut nil = false;
        // Attributes carrying data: tXML has none (JSON has no place for them), so they are
        // not forwarded, but reported, so that one that ever carries data is noticed.
        let mut dropped: Vec<String> = Vec::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| xml_error(self.at(start), &err.to_string()))?;
            let local = attr.key.local_name();
            let local: &str = local.as_ref();
            if local == "nil" {
                // xsi:nil="true" is how XML writes JSON's null.
                nil |= matches!(attr.value.as_ref().trim(), "true" | "1");
            } else if attr.key.as_namespace_binding().is_some()
                || (attr.key.prefix().is_some()
                    && matches!(local, "schemaLocation" | "noNamespaceSchemaLocation"))
            {
                // Namespace declarations and schema hints (xsi:schemaLocation): no data.
            } else {
                let name: &str = attr.key.as_ref();
                dropped.push(name.to_owned());
            }
        }
        let (slot, shape) = match self.stack.last_mut() {
            None => {
                // The root's name carries no data (JSON has no root) and is known only from
                // the Swagger UI's example of the order webhook: another name must not cost
                // the message. The body is read by its content, which must still be a webhook
                // body's (an `eventName` and an event), and the name is reported.
                if name != self.root {
                    let path = format!("<{name}>");
                    self.out.push_dropped_at(
                        || path,
                        expected_root(self.root),
                        "another root element",
                    );
                }
                (Slot::Field { key: name }, Some(self.shape))
            }
            Some(parent) => match parent.slot {
                // An item inside an element named as its list: the list wrapped, as a
                // wrapping writer puts it. The items are the list's, of its items' shape.
                Slot::Item {
                    key,
                    named_as_list: true,
                    item,
                } if name == item => {
                    parent.wraps = true;
                    (
                        Slot::Item {
                            key,
                            named_as_list: false,
                            item,
                        },
                        parent.shape,
                    )
                }
                _ => resolve(parent.shape, name),
            },
        };
        let frame = Frame {
            qname,
            slot,
            shape,
            offset: start as usize,
            nil,
            text: Cow::Borrowed(""),
            map: None,
            repeated: None,
            empty_lists: None,
            wraps: false,
        };
        for name in dropped {
            let path = if self.out.kept().len() < crate::lenient::MAX_KEPT {
                if self.stack.is_empty() {
                    // The root is the document itself: no path of its own.
                    format!("@{name}")
                } else {
                    format!("{}@{name}", self.path_with(&frame))
                }
            } else {
                String::new()
            };
            self.out
                .push_dropped_at(move || path, "no XML attribute", "an XML attribute");
        }
        self.stack.push(frame);
        Ok(())
    }

    /// A character reference, read as the Java text its writer had: a Java writer writes a
    /// UTF-16 unit it cannot encode as a reference of its own (an emoji as two,
    /// `&#xd83d;&#xde00;`), a half of one cut off by a length limit alone, and U+0000 as
    /// `&#0;`. XML allows none of these, and Jackson writes the same texts in JSON as
    /// `\ud83d\ude00`, `\ud83d` and `\u0000`: a pair is read as its character, a lone half as
    /// U+FFFD (reported, as in JSON), U+0000 as itself. Only a number that is no UTF-16 text's
    /// (past U+10FFFF, or not a number) is refused.
    fn char_ref(&mut self, r: &BytesRef<'_>, start: u64) -> Result<(), DecodeError> {
        let code = match r.resolve_char_ref() {
            Ok(Some(c)) => Some(u32::from(c)),
            Ok(None) => None,
            Err(e) => match char_ref_code(r) {
                Some(code @ (0 | 0xD800..=0xDFFF)) => Some(code),
                _ => return Err(xml_error(self.at(start), &e.to_string())),
            },
        };
        let code =
            code.ok_or_else(|| xml_error(self.at(start), "character reference to no character"))?;
        match code {
            0xD800..=0xDBFF => {
                if self.pending_high.is_some() {
                    self.lone_surrogate()?;
                }
                self.pending_high = Some((code, start));
                Ok(())
            }
            0xDC00..=0xDFFF => match self.pending_high.take() {
                Some((high, _)) => {
                    let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))
                        .expect("a surrogate pair is a character");
                    self.push_text(Cow::Owned(String::from(c)), start)
                }
                None => {
                    self.pending_high = Some((code, start));
                    self.lone_surrogate()
                }
            },
            _ => {
                let c = char::from_u32(code).expect("checked by quick-xml or zero");
                self.push_text(Cow::Owned(String::from(c)), start)
            }
        }
    }

    /// The surrogate half held in `pending_high` has no partner: U+FFFD, reported.
    fn lone_surrogate(&mut self) -> Result<(), DecodeError> {
        let Some((_, at)) = self.pending_high.take() else {
            return Ok(());
        };
        self.out.push_dropped_at(
            || format!("(byte {at})"),
            "a whole UTF-16 surrogate pair",
            "a lone surrogate reference, read as U+FFFD",
        );
        self.push_text(Cow::Borrowed("\u{FFFD}"), at)
    }

    /// An end tag must close the innermost open element, by the same name, as XML requires
    /// (the check quick-xml makes when asked, with the same messages).
    fn end(&self, found: &str, start: u64) -> Result<(), DecodeError> {
        let ill_formed = match self.stack.last() {
            Some(open) if open.qname == found => return Ok(()),
            Some(open) => quick_xml::errors::IllFormedError::MismatchedEndTag {
                expected: open.qname.to_owned(),
                found: found.to_owned(),
            },
            None => quick_xml::errors::IllFormedError::UnmatchedEndTag(found.to_owned()),
        };
        Err(xml_error(
            self.at(start),
            &quick_xml::Error::IllFormed(ill_formed).to_string(),
        ))
    }

    /// The element's name with its prefix, borrowed from the body (names are never escaped).
    fn name_of(&self, e: &BytesStart<'a>, start: u64) -> Result<&'a str, DecodeError> {
        let qname = e.name();
        let qname: &str = qname.as_ref();
        // Find the same bytes inside the body so the name lives as long as the body does.
        let base = self.text.as_ptr() as usize;
        let ptr = qname.as_ptr() as usize;
        if ptr >= base && ptr + qname.len() <= base + self.text.len() {
            let from = ptr - base;
            if let Some(name) = self.text.get(from..from + qname.len()) {
                return Ok(name);
            }
        }
        Err(xml_error(self.at(start), "element name is not valid UTF-8"))
    }

    fn push_text(&mut self, text: Cow<'a, str>, start: u64) -> Result<(), DecodeError> {
        match self.stack.last_mut() {
            Some(frame) => {
                if frame.text.is_empty() {
                    frame.text = text;
                } else {
                    frame.text.to_mut().push_str(&text);
                }
                Ok(())
            }
            None if is_blank(&text) => Ok(()),
            None => Err(xml_error(self.at(start), "text outside the root element")),
        }
    }

    fn close(&mut self, start: u64) -> Result<(), DecodeError> {
        let frame = self
            .stack
            .pop()
            .ok_or_else(|| xml_error(self.at(start), "closing tag without an opening tag"))?;
        let mut frame = frame;
        let empty = frame.is_empty();
        // A wrapper holding only its items gives its parent those items.
        let spread = frame.wraps && frame.map.as_ref().is_some_and(|map| map.len() == 1);
        let value = if spread {
            let map = frame.map.take().expect("checked");
            map.into_iter()
                .next()
                .map_or(Value::Null, |(_, items)| items)
        } else {
            self.value_of(&mut frame)?
        };
        match self.stack.last_mut() {
            None => {
                self.done = Some(value);
                Ok(())
            }
            Some(_) => self.attach(frame, value, empty, spread),
        }
    }

    /// The finished element's JSON value, typed by its shape; what does not fit is kept as read.
    fn value_of(&mut self, frame: &mut Frame<'a>) -> Result<Value, DecodeError> {
        if frame.nil {
            return Ok(Value::Null);
        }
        if let Some(mut map) = frame.map.take() {
            for key in frame.empty_lists.take().into_iter().flatten() {
                if let Some(Value::Array(items)) = map.get_mut(key) {
                    items.clear();
                }
            }
            if !is_blank(&frame.text) {
                return Err(DecodeError::InvalidField {
                    path: self.path_with(frame),
                    message: format!(
                        "expected elements, found text {:?}",
                        frame.text.trim().chars().take(40).collect::<String>()
                    ),
                    at: Some(self.at(frame.offset as u64)),
                });
            }
            let value = Value::Object(map);
            if let Some(shape @ (Shape::Str | Shape::Num | Shape::Bool)) = frame.shape {
                self.lenient(frame, expected_words(shape), "an object");
            }
            return Ok(value);
        }
        // Copied once, when it becomes a string (a number copies its digits, a boolean
        // nothing).
        let text = std::mem::take(&mut frame.text);
        Ok(match frame.shape {
            // A number or a boolean has no empty value: an empty element (`<version/>`, how
            // Jackson's XmlMapper writes a null field by default) is the JSON twin's null.
            // A text's empty element stays the empty text (a split line's `<position/>`).
            Some(Shape::Num | Shape::Bool) if is_blank(&text) => Value::Null,
            Some(Shape::Num) => match number_value(&text) {
                Some(v) => v,
                None => {
                    self.lenient(frame, "a number", "a string");
                    Value::String(text.into_owned())
                }
            },
            Some(Shape::Bool) => match parse_bool(&text) {
                Some(b) => Value::Bool(b),
                None => {
                    self.lenient(frame, "true or false", "a string");
                    Value::String(text.into_owned())
                }
            },
            Some(Shape::Obj(_)) if is_blank(&text) => Value::Object(Map::new()),
            Some(Shape::Obj(_)) => {
                self.lenient(frame, "an object", "a string");
                Value::String(text.into_owned())
            }
            _ => Value::String(text.into_owned()),
        })
    }

    /// Attaches a finished child's `value` to its parent; `empty` when the child had no
    /// content ([`Frame::is_empty`]), `spread` when it was a list's wrapper and `value` the
    /// list's items.
    fn attach(
        &mut self,
        child: Frame<'a>,
        value: Value,
        empty: bool,
        spread: bool,
    ) -> Result<(), DecodeError> {
        let key = child.slot.key();
        let parent = self.stack.last_mut().expect("attach has a parent");
        if parent.map.is_none() {
            // The first child allocates the map's first node whole: an element of one child
            // costs far more than its two units.
            self.budget.charge(MAP_NODE_UNITS)?;
            if is_blank(&parent.text) {
                // Indentation before the first child.
                parent.text = Cow::Borrowed("");
            }
        }
        let map = parent.map.get_or_insert_with(Map::new);
        let mut repeated_field = false;
        match child.slot {
            // The list itself is null: the writer puts JSON's `"documents": null` as
            // `<documents xsi:nil="true"/>`, under the list's name, not an item's.
            Slot::Item {
                named_as_list: true,
                ..
            } if child.nil => {
                if let serde_json::map::Entry::Vacant(slot) = map.entry(key) {
                    self.budget.charge(1)?;
                    slot.insert(Value::Null);
                }
            }
            Slot::Item { named_as_list, .. } => match map.get_mut(key) {
                Some(Value::Array(items)) if spread => {
                    if let Some(lists) = parent.empty_lists.as_mut()
                        && lists.contains(&key)
                    {
                        // An empty wrapper before this one was the empty list, not an item.
                        items.clear();
                        lists.retain(|list| *list != key);
                    }
                    if let Value::Array(more) = value {
                        items.extend(more);
                    }
                }
                Some(Value::Array(items)) => {
                    items.push(value);
                    if let Some(lists) = parent.empty_lists.as_mut() {
                        // A second item: the list's elements are its items.
                        lists.retain(|list| *list != key);
                    }
                }
                Some(_) => {
                    // Only after the list was given as nil (above): say so, never panic.
                    let item_path = self.path_with(&child);
                    // The list's path, without the index the item would have had.
                    let path = match item_path.rsplit_once('[') {
                        Some((list, _)) => list.to_owned(),
                        None => item_path,
                    };
                    return Err(DecodeError::InvalidField {
                        path,
                        message: format!("<{}> after the list was given as nil", child.name()),
                        at: Some(self.at(child.offset as u64)),
                    });
                }
                None if spread => {
                    self.budget.charge(1)?;
                    map.insert(key.to_owned(), value);
                }
                None => {
                    self.budget.charge(1)?;
                    map.insert(key.to_owned(), Value::Array(vec![value]));
                    if named_as_list && empty {
                        parent.empty_lists.get_or_insert_with(Vec::new).push(key);
                    }
                }
            },
            // A field is almost always new to its object: one search, for its entry.
            Slot::Field { .. } => match map.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    self.budget.charge(1)?;
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(mut slot) => {
                    let existing = slot.get_mut();
                    // One value expected, several sent: kept, all of them, as a list.
                    match existing {
                        Value::Array(items) if made_a_list(parent.repeated.as_ref(), key) => {
                            items.push(value)
                        }
                        _ => {
                            let first = existing.take();
                            *existing = Value::Array(vec![first, value]);
                            parent.repeated.get_or_insert_with(HashSet::new).insert(key);
                            repeated_field = true;
                        }
                    }
                }
            },
            Slot::Unknown { .. } => match map.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    self.budget.charge(1)?;
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(mut slot) => match slot.get_mut() {
                    Value::Array(items) if made_a_list(parent.repeated.as_ref(), key) => {
                        items.push(value)
                    }
                    existing => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, value]);
                        parent.repeated.get_or_insert_with(HashSet::new).insert(key);
                    }
                },
            },
        }
        if repeated_field {
            self.lenient(&child, "one element", "a repeated element");
        }
        Ok(())
    }

    fn lenient(&mut self, frame: &Frame<'a>, expected: &'static str, found: &'static str) {
        // The path is only rendered for a deviation that is kept.
        let path = if self.out.kept().len() < crate::lenient::MAX_KEPT {
            self.path_with(frame)
        } else {
            String::new()
        };
        self.out.push_at(move || path, expected, found);
    }

    /// The JSON path of `frame`, which is not (or no longer) on the stack; the open elements
    /// before it are its ancestors.
    fn path_with(&self, frame: &Frame<'a>) -> String {
        let mut path = String::new();
        let chain = self.stack.iter().skip(1).chain(std::iter::once(frame));
        let mut parents = self.stack.iter();
        for f in chain {
            let parent = parents.next();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(f.slot.key());
            if let Slot::Item { .. } = f.slot {
                let index = parent
                    .and_then(|p| p.map.as_ref())
                    .and_then(|m| m.get(f.slot.key()))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                path.push_str(&format!("[{index}]"));
            }
        }
        path
    }
}

/// The number a character reference (`#x…` or `#…`) names, when it is one.
fn char_ref_code(r: &str) -> Option<u32> {
    let num = r.strip_prefix('#')?;
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// What a report of an unexpected root element says was expected.
fn expected_root(root: &'static str) -> &'static str {
    if root == WEBHOOK_ROOT {
        "the root element <WebhookBody>"
    } else {
        "the root element its type names"
    }
}

/// Whether the child `key` was made a list by repeating (a frame's `repeated`).
fn made_a_list(repeated: Option<&HashSet<&str>>, key: &str) -> bool {
    repeated.is_some_and(|keys| keys.contains(key))
}

fn xml_error(at: Location, message: &str) -> DecodeError {
    DecodeError::Xml {
        at,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::WEBHOOK_BODY_SHAPE;

    /// The fewest units `text` reads within.
    fn least_budget(text: &str, transcoded: bool) -> usize {
        let reads = |units| {
            read_text(
                text,
                transcoded,
                Budget::of_units(units),
                WEBHOOK_ROOT,
                &WEBHOOK_BODY_SHAPE,
                &mut Leniencies::new(),
            )
            .is_ok()
        };
        let (mut low, mut high) = (0, 1_000_000);
        assert!(reads(high));
        while low < high {
            let mid = (low + high) / 2;
            if reads(mid) {
                high = mid
            } else {
                low = mid + 1
            }
        }
        low
    }

    #[test]
    fn a_transcoded_copy_pays_for_itself_and_its_texts_from_the_budget() {
        let text = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
            <orderId>o-1</orderId><lines><item><id>l-1</id></item></lines></orderEvent>\
            </WebhookBody>";
        let read_in_place = least_budget(text, false);
        let transcoded = least_budget(text, true);
        assert_eq!(
            transcoded,
            read_in_place + (2 * text.len()).div_ceil(UNIT_COST_BYTES),
            "the copy and as much again for the values' texts"
        );
    }
}
