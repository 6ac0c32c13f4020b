//! Deviations a decode tolerated: a field of a type the schema does not expect, forwarded as
//! sent; or, in tXML, an attribute, which JSON has no place for and is not forwarded.
//!
//! A refusal costs the message (Tradecloud never retries a 4xx), so only the few fields the
//! relay needs must be readable; everything else that does not fit the schema is kept exactly as
//! it came and reported here, for the host to log once per message and count.

use std::fmt;

/// How many deviations are kept per message; the rest are only counted, so a body of thousands
/// of odd lines costs no more memory than a few.
pub const MAX_KEPT: usize = 20;

/// One tolerated deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leniency {
    /// The field's path in the payload, e.g. `orderEvent.lines[3].deliverySchedule[0].quantity`.
    pub path: String,
    /// What the schema expects there (`a number`, `an object`, …).
    pub expected: &'static str,
    /// What came, in the same words.
    pub found: &'static str,
    /// Whether it is in the payload as sent: all are but a tXML attribute (path
    /// `…element@name`), which the payload has no place for.
    pub forwarded: bool,
}

impl fmt::Display for Leniency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}; {}",
            self.path,
            self.expected,
            self.found,
            if self.forwarded {
                "forwarded as sent"
            } else {
                "not forwarded"
            }
        )
    }
}

/// The deviations of one decode: the first [`MAX_KEPT`] and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leniencies {
    kept: Vec<Leniency>,
    total: usize,
}

impl Leniencies {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one; `path` is only rendered while fewer than [`MAX_KEPT`] are kept.
    pub fn push(&mut self, path: &Path<'_>, expected: &'static str, found: &'static str) {
        self.push_at(|| path.to_string(), expected, found);
    }

    /// Records one whose path `path` renders, called only while fewer than [`MAX_KEPT`] are
    /// kept.
    pub fn push_at(
        &mut self,
        path: impl FnOnce() -> String,
        expected: &'static str,
        found: &'static str,
    ) {
        self.record(path, expected, found, true);
    }

    /// Records one that is not in the payload (a tXML attribute), as [`Leniencies::push_at`].
    pub fn push_dropped_at(
        &mut self,
        path: impl FnOnce() -> String,
        expected: &'static str,
        found: &'static str,
    ) {
        self.record(path, expected, found, false);
    }

    fn record(
        &mut self,
        path: impl FnOnce() -> String,
        expected: &'static str,
        found: &'static str,
        forwarded: bool,
    ) {
        self.total += 1;
        if self.kept.len() < MAX_KEPT {
            self.kept.push(Leniency {
                path: path(),
                expected,
                found,
                forwarded,
            });
        }
    }

    /// The kept deviations, in the order met.
    pub fn kept(&self) -> &[Leniency] {
        &self.kept
    }

    /// How many deviations there were, kept or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// True when the decode met nothing unexpected.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// A field's path, as a chain of segments on the stack: built for free while walking, rendered
/// only when a deviation is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The document itself.
    Root,
    /// Field `name` of the object at the parent path.
    Key(&'a Path<'a>, &'a str),
    /// Item `index` of the list at the parent path.
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, name) => f.write_str(name),
            Path::Key(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_the_error_paths_and_only_the_first_are_kept() {
        let root = Path::Root;
        let event = Path::Key(&root, "orderEvent");
        let lines = Path::Key(&event, "lines");
        let line = Path::Index(&lines, 3);
        let qty = Path::Key(&line, "quantity");
        assert_eq!(qty.to_string(), "orderEvent.lines[3].quantity");
        let mut l = Leniencies::new();
        for _ in 0..MAX_KEPT + 5 {
            l.push(&qty, "a number", "a string");
        }
        assert_eq!(l.total(), MAX_KEPT + 5);
        assert_eq!(l.kept().len(), MAX_KEPT);
        assert_eq!(
            l.kept()[0].to_string(),
            "orderEvent.lines[3].quantity: expected a number, found a string; forwarded as sent"
        );
    }
}
