//! Paging by offset inside one timestamp that fills whole pages (a bulk change), and what of it
//! the cursor record keeps when a run stops inside it.
//!
//! Time cannot move past a page of one timestamp: the loop pages by offset under the same
//! `lastUpdatedAfter` until a page shows an object after that timestamp, pages overlapping by a
//! tenth. A timestamp holding more objects than one run may fetch (its page bound, its share of
//! the Lambda's time) would so be paged from its start by every run, each stopping at the same
//! place, and the cursor would never move again. So after each full page the progress is
//! stored beside the cursor ([`StoredTie`], in `Cursor::walk`), and the next run goes on from
//! there: the page after the last one relayed first, then, when objects before it changed
//! between the runs (they left the timestamp, and the rest shifted back), that page itself.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tradecloud_model::timestamp;

use crate::object::Polled;
use crate::progress::{Belongs, Kept, Resumed};

/// Paging inside one timestamp.
#[derive(Debug)]
pub(crate) struct Tie {
    /// The timestamp, parsed.
    pub(crate) at: DateTime<Utc>,
    /// The timestamp as Tradecloud sent it.
    pub(crate) last_updated_at: String,
    /// Ids of the timestamp's objects seen since paging in it (re)started, or, when continued
    /// from an earlier run, since then and on the last page that run relayed: the first
    /// object of the next page must be one of them, or objects left the timestamp and the
    /// rest shifted past the overlap.
    seen: HashSet<String>,
    /// The timestamp's objects seen in all, earlier runs' included: the matches the move past
    /// the timestamp leaves out (`run::Moved`).
    counted: u64,
    /// Ids of the timestamp's objects on the last page relayed, and its offset: what is stored.
    last_page: Vec<String>,
    /// Where each of `last_page` lay in its page as served ([`Polled::index`]), while
    /// [`Self::page_in_order`]: items left out of the paging (those it cannot place) still
    /// took a place, and counting places in `last_page` alone read every page after one of
    /// them as objects having joined the timestamp (it started over, every time).
    last_places: Vec<usize>,
    last_offset: u32,
    /// While paging continued from an earlier run looks for its place.
    looking: Option<Look>,
    /// Whether it was continued from an earlier run.
    continued: bool,
    /// Whether `last_page` holds the ids in the order they were served: a page noted in this
    /// run. The stored page is kept sorted (a stable text), so paging continued from an
    /// earlier run knows which ids its last page held, not where.
    page_in_order: bool,
    /// When the last page relayed seemed to end the timestamp, its one object after it last
    /// on it (pages of two): that object (id, `lastUpdatedAt`). The next page, begun by it,
    /// tells whether the timestamp ended there (`run::StreamRun::page_loop`).
    pub(crate) ending: Option<(String, DateTime<Utc>)>,
}

/// Where paging continued from an earlier run looks for its place: the page after the last
/// one relayed (what the run would have asked next: a run that can fetch one page still moves
/// on), then that page itself (objects before it left the timestamp between the runs; objects
/// seldom join a timestamp, as a change gets a new time and only an object committed late keeps
/// an old one, so the rest mostly shift back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Ahead,
    Back,
}

impl Tie {
    /// Paging inside the timestamp of `last`, of the full first page (offset 0) `items`, all
    /// of that timestamp.
    pub(crate) fn begin(last: &Polled, items: &[Polled]) -> Self {
        let mut tie = Self {
            at: last.at,
            last_updated_at: last.last_updated_at.clone(),
            seen: HashSet::new(),
            counted: 0,
            last_page: Vec::new(),
            last_places: Vec::new(),
            last_offset: 0,
            looking: None,
            continued: false,
            page_in_order: false,
            ending: None,
        };
        tie.note(items, 0);
        tie
    }

    /// Whether `items`, the page at `offset`, continue the paging without a gap: the first
    /// object is one of the timestamp's objects seen, and not one seen at an offset before
    /// `offset`. Objects that leave the timestamp before `offset` shift the rest back, which
    /// the overlap absorbs; an object that joins it (one Tradecloud commits late with this
    /// timestamp, or one changed in this very millisecond) sorts among its objects, and when it
    /// lands at an offset already passed it shifts the rest forward: the page then begins with
    /// an object the last page held before `offset`, and the joined object was never served.
    /// Only a page noted in this run tells where its objects lay ([`Tie::page_in_order`]).
    pub(crate) fn overlaps(&self, items: &[Polled], offset: u32) -> bool {
        let Some(first) = items.first() else {
            return false;
        };
        if first.at != self.at || !self.seen.contains(&first.id) {
            return false;
        }
        if !self.page_in_order {
            return true;
        }
        // Where the first object lay on the last page; one seen on an earlier page lay
        // further back still. Places count every item served, those left out of the paging
        // too (`first` may follow one of them).
        let expected = offset.saturating_sub(self.last_offset) as usize + first.index;
        self.last_page
            .iter()
            .position(|id| *id == first.id)
            .is_some_and(|at| self.last_places[at] >= expected)
    }

    /// Notes a page fetched at `offset` and relayed.
    pub(crate) fn note(&mut self, items: &[Polled], offset: u32) {
        self.looking = None;
        self.last_page.clear();
        self.last_places.clear();
        for item in items.iter().filter(|i| i.at == self.at) {
            if self.seen.insert(item.id.clone()) {
                self.counted += 1;
            }
            self.last_page.push(item.id.clone());
            self.last_places.push(item.index);
        }
        self.last_offset = offset;
        self.page_in_order = true;
    }

    /// The offset of the last page relayed.
    pub(crate) fn last_offset(&self) -> u32 {
        self.last_offset
    }

    /// The timestamp's objects seen in all.
    pub(crate) fn counted(&self) -> u64 {
        self.counted
    }

    /// The ids of the timestamp's objects seen, as far as this run knows them (all in this
    /// run, and the last page of an earlier run's paging gone on with).
    pub(crate) fn seen_ids(&self) -> impl Iterator<Item = &str> {
        self.seen.iter().map(String::as_str)
    }

    /// The offset paging continued from an earlier run asks first, with pages of `step`
    /// objects between offsets; from then on it looks for its place ([`Look`]).
    pub(crate) fn go_on(&mut self, step: u32) -> u32 {
        self.looking = Some(Look::Ahead);
        self.last_offset.saturating_add(step)
    }

    /// After a page that does not overlap ([`Self::overlaps`]): the offset to look at next
    /// while paging continued from an earlier run looks for its place, `None` when it gave up
    /// or is not looking: paging in the timestamp then starts over.
    pub(crate) fn look_further(&mut self) -> Option<u32> {
        match self.looking? {
            Look::Ahead => {
                self.looking = Some(Look::Back);
                Some(self.last_offset)
            }
            Look::Back => {
                self.looking = None;
                None
            }
        }
    }

    /// Whether it was continued from an earlier run: its pages then do not show the whole
    /// result set as it is now (objects that changed between the runs may lie at offsets
    /// passed before, in an order that is not by time).
    pub(crate) fn continued(&self) -> bool {
        self.continued
    }

    /// Whether it looked for its place and has not found it ([`Look`]): the page ahead did not
    /// hold it. Paging continued from an earlier run that has asked no page yet is not: a run
    /// that stops before its first request (no time left for one) learned nothing of it, and
    /// forgetting it began the timestamp again, every such run.
    pub(crate) fn is_looking(&self) -> bool {
        self.looking == Some(Look::Back)
    }

    /// The progress, to be stored for the next run (`of`: the cursor value, endpoint and
    /// filters it belongs to): paging under `after`.
    pub(crate) fn stored(&self, of: Belongs, after: &str) -> StoredTie {
        let mut page = self.last_page.clone();
        // A stable text for the same progress.
        page.sort();
        StoredTie {
            of,
            after: after.to_owned(),
            tie: self.last_updated_at.clone(),
            offset: self.last_offset,
            page,
            seen: self.counted,
            ending: self
                .ending
                .as_ref()
                .map(|(id, at)| (id.clone(), timestamp::format_exact(*at))),
        }
    }
}

/// Paging inside a timestamp as the cursor record keeps it (the `progress` module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredTie {
    /// The cursor value, endpoint and filters it belongs to.
    #[serde(flatten)]
    of: Belongs,
    /// The `lastUpdatedAfter` paged under.
    after: String,
    /// The timestamp, as Tradecloud sent it.
    tie: String,
    /// The offset of the last page relayed.
    offset: u32,
    /// Ids of the timestamp's objects on that page.
    page: Vec<String>,
    /// The timestamp's objects seen in all.
    seen: u64,
    /// The object after the timestamp that page ended with, when it seemed to end the
    /// timestamp ([`Tie::ending`]). Absent in what builds before it stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ending: Option<(String, String)>,
}

impl Kept for StoredTie {
    fn belongs(&self) -> &Belongs {
        &self.of
    }

    fn belongs_mut(&mut self) -> &mut Belongs {
        &mut self.of
    }

    /// The paging to go on with: `None` when it is not consistent in itself (no page, a
    /// timestamp before its position) or its position is after the cursor (it would pass
    /// objects not relayed).
    fn resume(self, value_at: DateTime<Utc>) -> Option<Resumed> {
        let after_at = timestamp::parse(&self.after).ok()?;
        let at = timestamp::parse(&self.tie).ok()?;
        // The search endpoints include their position: paging inside a timestamp there asks
        // from that very timestamp.
        if self.page.is_empty() || after_at > value_at || at < after_at {
            return None;
        }
        let seen: HashSet<String> = self.page.iter().cloned().collect();
        Some(Resumed::Tie {
            after: (self.after, after_at),
            tie: Tie {
                at,
                last_updated_at: self.tie,
                seen,
                counted: self.seen.max(self.page.len() as u64),
                last_page: self.page,
                last_places: Vec::new(),
                last_offset: self.offset,
                looking: None,
                continued: true,
                page_in_order: false,
                // One that is no time is as none: the page after it is checked as any.
                ending: self
                    .ending
                    .and_then(|(id, text)| Some((id, timestamp::parse(&text).ok()?))),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::api::EndpointMode;
    use crate::progress::{self, Marks, Stored};

    const AFTER: &str = "2025-01-01T00:00:00.000Z";
    const T: &str = "2025-01-01T00:00:05.000Z";
    const CURSOR: &str = "2025-01-01T00:00:00.000Z";

    fn item(id: &str, at: &str) -> Polled {
        Polled::order_at(id, at)
    }

    /// A page of the timestamp's objects `ids`, each at its place.
    fn page(ids: &[&str]) -> Vec<Polled> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let mut item = item(id, T);
                item.index = i;
                item
            })
            .collect()
    }

    /// Paged `a..d` at offset 0 and `c..f` at offset 2.
    fn paged() -> Tie {
        let first = page(&["a", "b", "c", "d"]);
        let mut tie = Tie::begin(&first[3], &first);
        let second = page(&["c", "d", "e", "f"]);
        assert!(tie.overlaps(&second, 2));
        tie.note(&second, 2);
        tie
    }

    fn stored_and_resumed(tie: &Tie, value: &str) -> Option<Tie> {
        let none = Map::new();
        let text = Stored::Tie(tie.stored(
            Belongs::new(value, EndpointMode::Poll, &none, Marks::default()),
            AFTER,
        ))
        .to_text();
        match progress::resume(&text, Some(value), EndpointMode::Poll, &none)?.progress? {
            Resumed::Tie { after, tie } => {
                assert_eq!(after.0, AFTER);
                Some(tie)
            }
            other => panic!("not a tie: {other:?}"),
        }
    }

    #[test]
    fn a_page_that_seemed_to_end_the_timestamp_is_stored_so() {
        let mut tie = paged();
        assert_eq!(stored_and_resumed(&tie, CURSOR).unwrap().ending, None);
        let next = (
            "g".to_owned(),
            timestamp::parse("2025-01-01T00:00:07.000Z").unwrap(),
        );
        tie.ending = Some(next.clone());
        let resumed = stored_and_resumed(&tie, CURSOR).unwrap();
        assert_eq!(resumed.ending, Some(next));
        assert_eq!(resumed.counted(), tie.counted());
    }

    #[test]
    fn paging_stored_before_the_stream_was_found_unsorted_is_not_gone_on_with() {
        let none = Map::new();
        let unsorted = Marks {
            unsorted: true,
            page_limit: Some(2),
        };
        let text = Stored::Tie(paged().stored(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, unsorted),
            AFTER,
        ))
        .to_text();
        let r = progress::resume(&text, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert!(r.progress.is_none(), "{:?}", r.progress);
        assert_eq!(r.marks, unsorted);
        assert!(stored_and_resumed(&paged(), CURSOR).is_some());
    }

    #[test]
    fn a_page_overlaps_only_when_it_starts_with_an_object_of_the_timestamp_seen() {
        let tie = paged();
        assert_eq!(tie.counted(), 6);
        // The next page (pages of 4 moving by 3) begins where the last one (`c..f`, offset 2)
        // held `f`.
        assert!(tie.overlaps(&page(&["f", "g"]), 5));
        // An object of another time first, or one not seen: a gap may lie before it.
        assert!(!tie.overlaps(&[item("f", "2025-01-01T00:00:06.000Z")], 5));
        assert!(!tie.overlaps(&page(&["h", "i"]), 5));
        assert!(!tie.overlaps(&[], 5));
    }

    #[test]
    fn a_page_shifted_forward_by_an_object_joining_the_timestamp_does_not_overlap() {
        let tie = paged();
        // An object before offset 4 left the timestamp: the page there begins with `f`, at
        // offset 5 before (the rest shifted back, within the overlap).
        assert!(tie.overlaps(&page(&["f", "g"]), 4));
        // An object joined the timestamp at an offset passed (a late commit, or a change in
        // this millisecond): `e`, at offset 4 before, begins the page at 5, and whatever joined
        // lies before it.
        assert!(!tie.overlaps(&page(&["e", "f"]), 5));
        // Shifted by more than the last page: an object seen on an earlier page first.
        assert!(!tie.overlaps(&page(&["b", "c"]), 5));
    }

    #[test]
    fn stored_paging_goes_on_with_its_last_page_and_its_count() {
        let tie = paged();
        let mut resumed = stored_and_resumed(&tie, CURSOR).unwrap();
        assert_eq!(resumed.at, tie.at);
        assert_eq!(resumed.counted(), 6);
        // Only the last page is checked against, and only by id: its stored ids are sorted, so
        // where each lay is not known.
        assert!(resumed.overlaps(&page(&["e", "x"]), 5));
        assert!(resumed.overlaps(&page(&["c", "x"]), 5));
        assert!(!resumed.overlaps(&page(&["a", "x"]), 5));
        // Ahead of the last page (offset 2, pages of 4 moving by 3), then that page, then over.
        assert_eq!(resumed.go_on(3), 5);
        // No page asked yet: not looking (a run that stops now keeps what is stored).
        assert!(!resumed.is_looking());
        assert_eq!(resumed.look_further(), Some(2));
        assert!(resumed.is_looking());
        assert_eq!(resumed.look_further(), None);
        assert!(!resumed.is_looking());
        // Found: noted, counted once per new object, and no longer looking.
        let mut found = stored_and_resumed(&tie, CURSOR).unwrap();
        found.go_on(3);
        found.note(&page(&["f", "g", "h"]), 5);
        assert_eq!(found.counted(), 8);
        assert_eq!(found.look_further(), None);
    }

    #[test]
    fn stored_paging_after_its_cursor_or_not_after_its_position_is_not_gone_on_with() {
        let tie = paged();
        // Its position after the cursor stored with it.
        assert!(stored_and_resumed(&tie, "2024-12-31T00:00:00.000Z").is_none());
        // A timestamp before the position paged under, or no page: not a tie. At the position
        // (the search endpoints include it): a tie.
        let none = Map::new();
        let later = "2025-01-01T00:00:06.000Z";
        let at_later = Belongs::new(later, EndpointMode::Poll, &none, Marks::default());
        let text = Stored::Tie(tie.stored(at_later, later)).to_text();
        assert!(progress::resume(&text, Some(later), EndpointMode::Poll, &none).is_none());
        let at_t = Belongs::new(T, EndpointMode::Search, &none, Marks::default());
        let text = Stored::Tie(tie.stored(at_t, T)).to_text();
        assert!(progress::resume(&text, Some(T), EndpointMode::Search, &none).is_some());
        let of = Belongs::new(CURSOR, EndpointMode::Poll, &none, Marks::default());
        let empty = Tie {
            last_page: Vec::new(),
            ..paged()
        };
        let text = Stored::Tie(empty.stored(of, AFTER)).to_text();
        assert!(progress::resume(&text, Some(CURSOR), EndpointMode::Poll, &none).is_none());
    }
}
