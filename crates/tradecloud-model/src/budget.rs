//! The value budget both webhook readers charge as they build a body's JSON value, so that
//! decoding keeps peak memory within 64 MiB plus eight times the body's size however the
//! body is made: a body that would need more is refused ([`crate::DecodeError::TooManyValues`],
//! HTTP 413) as soon as its budget runs out, never after the memory is spent.

use serde_json::Value;

/// What a decoded value costs at most, in bytes, counting each value (JSON value, tXML
/// element) and each object key as one unit: the value's slot with its list's spare
/// capacity, a key's or a short text's heap block, a map node's share once the map holds
/// more than one key. A body of tiny values (`[0,0,…]`, two bytes each) costs some 30 times
/// its size as JSON values; the budget below keeps every body within the memory bound however
/// it is made.
pub const UNIT_COST_BYTES: usize = 128;

/// The keys and values one B-tree node of std's `BTreeMap` holds (its `2 * B - 1`, B = 6):
/// serde_json's `Map` is a `BTreeMap` (the `preserve_order` feature is off; a test checks).
const MAP_NODE_CAPACITY: usize = 11;

/// The units a non-empty object's map costs beyond its keys and values: its first B-tree node,
/// allocated whole on the first insert (eleven key and value slots and a small header, some
/// 640 bytes). An object of one key (`{"a":0}`, `<a><b/></a>`) costs that for a few bytes of
/// body, and the units of its key and value alone cover less than half of that; once the node
/// is paid for, the next ten keys fill it, and a map's further nodes are within its keys' units.
pub const MAP_NODE_UNITS: usize = (MAP_NODE_CAPACITY * (size_of::<String>() + size_of::<Value>())
    + 2 * size_of::<usize>())
.div_ceil(UNIT_COST_BYTES);

/// How many units a body of `body_len` bytes may spend: what fits in 64 MiB plus eight times
/// its size at [`UNIT_COST_BYTES`] each. Tradecloud's messages spend about one unit per 11
/// bytes of JSON or 13 of tXML, far below this: a 500-line order (1.1 MB as JSON, 1.3 MB as
/// tXML) spends some 100,000 units, a sixth of its budget; one of the same make at the 6 MB
/// size limit would spend about 60% of its own.
pub fn value_budget(body_len: usize) -> usize {
    (64 * 1024 * 1024 + 8 * body_len) / UNIT_COST_BYTES
}

/// A body spent its budget: it holds more values than its size allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the body holds more values and keys than its size allows (a budget of {limit} units)")]
pub struct OverBudget {
    /// The budget for the body's size.
    pub limit: usize,
}

/// What is left of one body's budget while it is read.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: usize,
    left: usize,
}

impl Budget {
    /// The budget of a body of `body_len` bytes ([`value_budget`]).
    pub fn for_body(body_len: usize) -> Budget {
        let limit = value_budget(body_len);
        Budget { limit, left: limit }
    }

    /// A budget of exactly `units`, for tests that pin what a read spends.
    #[cfg(test)]
    pub(crate) fn of_units(units: usize) -> Budget {
        Budget {
            limit: units,
            left: units,
        }
    }

    /// No bound, for a read that builds nothing.
    pub fn unlimited() -> Budget {
        Budget {
            limit: usize::MAX,
            left: usize::MAX,
        }
    }

    /// Spends `units`, or says the body has no more to spend.
    pub fn charge(&mut self, units: usize) -> Result<(), OverBudget> {
        self.left = self
            .left
            .checked_sub(units)
            .ok_or(OverBudget { limit: self.limit })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    #[test]
    fn maps_are_b_trees_as_the_node_cost_assumes() {
        // With `preserve_order` (enabled by any crate of the build), `Map` would be an
        // `IndexMap`, whose costs differ: its keys would keep their insertion order.
        let mut map = Map::new();
        map.insert("b".to_owned(), json!(0));
        map.insert("a".to_owned(), json!(0));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b"]);
        // A leaf node of 11 keys and values, 632 bytes with 64-bit pointers: five units.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(MAP_NODE_UNITS, 5);
    }

    #[test]
    fn a_budget_refuses_what_it_does_not_have() {
        let mut budget = Budget::for_body(0);
        let limit = value_budget(0);
        assert_eq!(limit, 524_288);
        assert_eq!(budget.charge(limit - 1), Ok(()));
        assert_eq!(budget.charge(2), Err(OverBudget { limit }));
        assert_eq!(budget.charge(1), Ok(()));
        assert_eq!(budget.charge(1), Err(OverBudget { limit }));
        assert_eq!(Budget::unlimited().charge(usize::MAX), Ok(()));
    }
}
