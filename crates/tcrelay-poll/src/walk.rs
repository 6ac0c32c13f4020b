//! A walk of one result set (a fixed `lastUpdatedAfter`) by offset, for answers that are not
//! in time order, and what of it the cursor record keeps when a run stops inside it.
//!
//! A walk can vouch for a time only once it has reached the end of its result set (see
//! [`Walk::bound`]); until then the cursor cannot move. A set larger than one run can walk (its
//! page bound, its share of the Lambda's time) would so be walked from its start by every run
//! and never end: the stream would stall. So a run that walks the result set it started with
//! stores the walk's progress beside the cursor after each page ([`StoredWalk`], in
//! `Cursor::walk`), and the next run continues from there: it fetches the last page the walk
//! relayed again and checks that the walk still continues over it ([`Walk::continues`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tradecloud_model::timestamp;

use crate::object::Polled;
use crate::progress::{Belongs, Kept, Resumed};

/// A walk of one result set by offset.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// The newest `lastUpdatedAt` known to exist when the walk began: of what the run had
    /// fetched before it, or (for a walk continued from an earlier run) what that run knew,
    /// its first page included. Every change made during the walk is newer.
    before: Option<(String, DateTime<Utc>)>,
    /// The objects of the last page relayed, by id, with their `lastUpdatedAt` as sent.
    previous: HashMap<String, String>,
    /// That page's offset.
    previous_offset: u32,
    /// The largest `lastUpdatedAt` of the walk's first page, as sent and parsed.
    first_max: Option<(String, DateTime<Utc>)>,
    /// Whether the walk saw any object after its position.
    any_after: bool,
    /// The largest `lastUpdatedAt` over the whole walk, as sent and parsed (earlier runs'
    /// part of it included: a walk that ends in a run that saw only its last page must still
    /// know the times its earlier pages showed).
    newest: Option<(String, DateTime<Utc>)>,
    /// Pages the walk relayed since it (re)started, earlier runs' included.
    pub(crate) pages: u32,
    /// While a walk continued from an earlier run (or after pages too large to read) looks for
    /// its place: where it looked last.
    finding: Option<Finding>,
}

/// Where a continued walk looks for its place, in turn, until a page continues it: the page
/// after the last one relayed (what the walk would have asked next: a run that can fetch only
/// one page still moves on), that page itself (objects before it left the result set: it
/// shifted back), then on and on from the first (objects changed or were created before it: it
/// shifted forward, by as many as changed between the runs). Every page looked at is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    Ahead,
    Back,
    Forward,
}

/// Where a walk that reached the end of its result set lets the position move.
#[derive(Debug)]
pub(crate) enum Bound {
    /// To this time: every object at or before it was seen.
    To(String, DateTime<Utc>),
    /// The walk saw objects after the position, but no time it can vouch for: walk again.
    Again,
    /// Nothing after the position at all.
    Nothing,
}

impl Walk {
    /// A walk starting now, after the run fetched objects up to `before`.
    pub(crate) fn after(before: Option<(String, DateTime<Utc>)>) -> Self {
        Self {
            before,
            ..Self::default()
        }
    }

    /// Whether `items`, fetched at `offset`, continue the walk without a gap. At offset 0
    /// nothing lies before them. Further on, the page must hold an object of the last page
    /// relayed unchanged (same id, same `lastUpdatedAt`): unchanged objects keep their order
    /// in the result set, so every unchanged object the walk has not seen lies after that one,
    /// on this page or a later one, however others moved; an object that changed has a time
    /// after the walk's bound and is asked for again after the walk. Comparing the time too
    /// matters: an object that changed may have moved to exactly this page's start while the
    /// objects before it shifted past the overlap.
    pub(crate) fn continues(&self, items: &[Polled], offset: u32) -> bool {
        offset == 0
            || items.iter().any(|item| {
                self.previous
                    .get(&item.id)
                    .is_some_and(|at| *at == item.last_updated_at)
            })
    }

    /// The offset a continued walk asks first, with pages of `step` objects between offsets,
    /// and from then on looks for its place (see [`Finding`]).
    /// A walk that relayed no page yet (stored when a run found the order untrustworthy with
    /// no time left to walk) begins at offset 0.
    pub(crate) fn go_on(&mut self, step: u32) -> u32 {
        if self.pages == 0 {
            return 0;
        }
        self.finding = Some(Finding::Ahead);
        self.previous_offset.saturating_add(step)
    }

    /// After a page at `offset` that does not continue the walk ([`Self::continues`]): the
    /// offset to look at next while a continued walk looks for its place, `None` when it gave
    /// up (the result set ended, `full` false, without the place found) or is not looking: the
    /// walk then starts over.
    pub(crate) fn look_further(&mut self, offset: u32, full: bool, step: u32) -> Option<u32> {
        let (next, finding) = match self.finding? {
            Finding::Ahead => (self.previous_offset, Finding::Back),
            Finding::Back => (
                self.previous_offset.saturating_add(step.saturating_mul(2)),
                Finding::Forward,
            ),
            Finding::Forward => (offset.saturating_add(step), Finding::Forward),
        };
        // Past the end of the result set there is nothing more to look at (the page after the
        // last one relayed may be short and still be looked back from).
        if !full && finding == Finding::Forward {
            self.finding = None;
            return None;
        }
        self.finding = Some(finding);
        Some(next)
    }

    /// Whether the walk looked for its place and has not found it ([`Finding`]): a page it
    /// asked did not continue it. A continued walk that has asked no page yet (its first look,
    /// [`Finding::Ahead`], only ever set by [`Self::go_on`]) is not: a run that stops before
    /// its first request (no time left for one) learned nothing of the stored walk, and taking
    /// it for lost began the walk again, every such run.
    pub(crate) fn is_looking(&self) -> bool {
        matches!(self.finding, Some(Finding::Back | Finding::Forward))
    }

    /// Notes a page fetched at `offset` and relayed.
    pub(crate) fn note(&mut self, items: &[Polled], offset: u32, pos_at: DateTime<Utc>) {
        let first_page = self.pages == 0;
        self.finding = None;
        self.previous = items
            .iter()
            .map(|i| (i.id.clone(), i.last_updated_at.clone()))
            .collect();
        self.previous_offset = offset;
        self.pages += 1;
        for item in items {
            if first_page && self.first_max.as_ref().is_none_or(|(_, at)| item.at > *at) {
                self.first_max = Some((item.last_updated_at.clone(), item.at));
            }
            self.any_after |= item.at > pos_at;
            if self.newest.as_ref().is_none_or(|(_, at)| item.at > *at) {
                self.newest = Some((item.last_updated_at.clone(), item.at));
            }
        }
    }

    /// The newest time the walk saw, over all its runs.
    pub(crate) fn newest(&self) -> Option<&(String, DateTime<Utc>)> {
        self.newest.as_ref()
    }

    /// The newest time the walk knows existed when it began: of its first page or of anything
    /// fetched before it.
    fn known(&self) -> Option<&(String, DateTime<Utc>)> {
        [&self.first_max, &self.before]
            .into_iter()
            .flatten()
            .max_by_key(|(_, at)| *at)
    }

    /// Where the position may move once the walk reached the end: the newest time that existed
    /// when the walk began, that is of its first page or of anything the run fetched before it.
    /// Every change made during the walk is newer than that, and every object that did not
    /// change during the walk was seen by it; so every object at or before that time was seen.
    ///
    /// When no such time is after `pos` (a first page of answers at `pos`, an inclusive
    /// Tradecloud filling it) the walk can vouch for no time after `pos`: the oldest time after
    /// `pos` it saw is not enough, as an object it had passed may have changed to an earlier
    /// time than that while it walked. It asks for another walk: that one begins after this one
    /// fetched its times after `pos`, so it can always move.
    pub(crate) fn bound(&self, pos_at: DateTime<Utc>) -> Bound {
        match self.known() {
            Some((text, at)) if *at > pos_at => Bound::To(text.clone(), *at),
            _ if self.any_after => Bound::Again,
            _ => Bound::Nothing,
        }
    }

    /// Whether every object the walk saw is at or before `to_at` (its bound), so that, walked
    /// in one page, nothing changed while it walked.
    pub(crate) fn saw_nothing_after(&self, to_at: DateTime<Utc>) -> bool {
        self.newest
            .as_ref()
            .is_none_or(|(_, newest)| *newest <= to_at)
    }

    /// The walk's progress, to be stored for the next run (`of`: the cursor value, endpoint
    /// and filters it belongs to): the walk is of the result set after `after`.
    pub(crate) fn stored(&self, of: Belongs, after: &str) -> StoredWalk {
        let mut page: Vec<(String, String)> = self
            .previous
            .iter()
            .map(|(id, at)| (id.clone(), at.clone()))
            .collect();
        // A stable text for the same progress.
        page.sort();
        StoredWalk {
            of,
            after: after.to_owned(),
            offset: self.previous_offset,
            page,
            known: self.known().map(|(text, _)| text.clone()),
            any_after: self.any_after,
            newest: self.newest.as_ref().map(|(text, _)| text.clone()),
            pages: self.pages,
        }
    }
}

/// A walk's progress as the cursor record keeps it (the `progress` module): enough to go on
/// where it stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredWalk {
    /// The cursor value, endpoint and filters it belongs to.
    #[serde(flatten)]
    of: Belongs,
    /// The walk's fixed `lastUpdatedAfter` (`lastUpdatedSince` for the search endpoints).
    after: String,
    /// The offset of the last page the walk relayed.
    offset: u32,
    /// That page's objects as (id, `lastUpdatedAt` as sent), to check the walk continues;
    /// none before the walk's first page (`pages` 0: the next run begins the walk).
    page: Vec<(String, String)>,
    /// The newest time known to exist when the walk began ([`Walk::bound`]).
    known: Option<String>,
    /// Whether the walk saw an object after `after`.
    any_after: bool,
    /// The newest time the walk saw ([`Walk::newest`]); absent in what older builds stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    newest: Option<String>,
    /// Pages relayed so far.
    pages: u32,
}

impl Kept for StoredWalk {
    fn belongs(&self) -> &Belongs {
        &self.of
    }

    fn belongs_mut(&mut self) -> &mut Belongs {
        &mut self.of
    }

    /// The walk to go on with: `None` when it is not consistent in itself, or its position is
    /// after the cursor (a walk starts at or before it; one after it would pass objects not
    /// relayed).
    fn resume(self, value_at: DateTime<Utc>) -> Option<Resumed> {
        if self.page.is_empty() != (self.pages == 0) {
            return None;
        }
        let after_at = timestamp::parse(&self.after).ok()?;
        if after_at > value_at {
            return None;
        }
        let parsed = |text: Option<String>| match text {
            Some(text) => timestamp::parse(&text).ok().map(|at| Some((text, at))),
            None => Some(None),
        };
        let before = parsed(self.known)?;
        let newest = parsed(self.newest)?;
        Some(Resumed::Walk {
            after: (self.after, after_at),
            offset: self.offset,
            walk: Walk {
                before,
                previous: self.page.into_iter().collect(),
                previous_offset: self.offset,
                first_max: None,
                any_after: self.any_after,
                newest,
                pages: self.pages,
                finding: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use serde_json::{Map, Value};

    use super::*;
    use crate::api::EndpointMode;
    use crate::progress::{self, Marks, Stored};

    const AFTER: &str = "2025-01-01T00:00:00.000Z";
    const CURSOR: &str = "2025-01-01T00:00:01.000Z";

    fn item(id: &str, at: &str) -> Polled {
        Polled::order_at(id, at)
    }

    /// The text `walk` is stored as with `cursor`, of the result set after `after`.
    fn stored(
        walk: &Walk,
        cursor: &str,
        after: &str,
        mode: EndpointMode,
        filters: &Map<String, Value>,
    ) -> String {
        Stored::Walk(walk.stored(Belongs::new(cursor, mode, filters, Marks::default()), after))
            .to_text()
    }

    /// A walk gone on with.
    struct Back {
        after: (String, DateTime<Utc>),
        offset: u32,
        walk: Walk,
    }

    /// The walk stored as `text`, as a run with the cursor `value` would go on with it: its
    /// position, offset and the walk.
    fn resume(
        text: &str,
        value: Option<&str>,
        mode: EndpointMode,
        filters: &Map<String, Value>,
    ) -> Option<Back> {
        match progress::resume(text, value, mode, filters)?.progress? {
            Resumed::Walk {
                after,
                offset,
                walk,
            } => Some(Back {
                after,
                offset,
                walk,
            }),
            other => panic!("not a walk: {other:?}"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        timestamp::parse(text).unwrap()
    }

    /// A walk that relayed a first page `a, b, c` at offset 0 and `c, d, e` at offset 2.
    fn walked() -> Walk {
        let mut walk = Walk::after(None);
        let first = [
            item("a", "2025-01-01T00:00:05.000Z"),
            item("b", "2025-01-01T00:00:09.000Z"),
            item("c", "2025-01-01T00:00:03.000Z"),
        ];
        walk.note(&first, 0, at(AFTER));
        let second = [
            item("c", "2025-01-01T00:00:03.000Z"),
            item("d", "2025-01-01T00:00:07.000Z"),
            item("e", "2025-01-01T00:00:02.000Z"),
        ];
        assert!(walk.continues(&second, 2));
        walk.note(&second, 2, at(AFTER));
        walk
    }

    #[test]
    fn a_page_continues_the_walk_only_over_an_object_of_the_last_page_unchanged() {
        let walk = walked();
        // Shifted forward past the overlap: still holds `d` as it was.
        assert!(walk.continues(
            &[
                item("x", "2025-01-01T00:00:04.000Z"),
                item("d", "2025-01-01T00:00:07.000Z")
            ],
            4
        ));
        // Shifted back past the overlap: nothing of the last page.
        assert!(!walk.continues(&[item("f", "2025-01-01T00:00:04.000Z")], 4));
        // `e` changed and moved to exactly this page's start: the objects between may have
        // been passed.
        assert!(!walk.continues(
            &[
                item("e", "2025-01-01T00:00:20.000Z"),
                item("g", "2025-01-01T00:00:04.000Z")
            ],
            4
        ));
        // From the set's start nothing can lie before the page.
        assert!(walk.continues(&[item("f", "2025-01-01T00:00:04.000Z")], 0));
    }

    #[test]
    fn a_stored_walk_goes_on_with_its_last_page_and_its_bound() {
        let walk = walked();
        let filters = Map::new();
        let text = stored(&walk, CURSOR, AFTER, EndpointMode::Poll, &filters);
        let resumed = resume(&text, Some(CURSOR), EndpointMode::Poll, &filters).unwrap();
        assert_eq!(resumed.after, (AFTER.to_owned(), at(AFTER)));
        assert_eq!(resumed.offset, 2);
        assert_eq!(resumed.walk.pages, 2);
        // The last page is checked against; the first is not.
        assert!(
            resumed
                .walk
                .continues(&[item("e", "2025-01-01T00:00:02.000Z")], 2)
        );
        assert!(
            !resumed
                .walk
                .continues(&[item("a", "2025-01-01T00:00:05.000Z")], 2)
        );
        // The bound is the first page's newest time (`b`), not `d`'s, which a later page saw:
        // and pages fetched after the resume do not count as the first.
        let mut walk = resumed.walk;
        walk.note(&[item("z", "2025-01-01T00:01:00.000Z")], 2, at(AFTER));
        match walk.bound(at(AFTER)) {
            Bound::To(text, _) => assert_eq!(text, "2025-01-01T00:00:09.000Z"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_continued_walk_looks_ahead_then_back_then_on_for_its_place() {
        let mut walk = walked();
        // The last page relayed was at offset 2; pages of 3 move by 2.
        assert_eq!(walk.go_on(2), 4);
        assert_eq!(walk.look_further(4, true, 2), Some(2));
        assert_eq!(walk.look_further(2, true, 2), Some(6));
        assert_eq!(walk.look_further(6, true, 2), Some(8));
        // The end of the result set without the place found: start over.
        assert_eq!(walk.look_further(8, false, 2), None);
        // A short page ahead may still have shifted back: look back before giving up.
        let mut walk = walked();
        walk.go_on(2);
        assert_eq!(walk.look_further(4, false, 2), Some(2));
        assert_eq!(walk.look_further(2, false, 2), None);
        // Found: a page that continues is noted, and a later miss starts over.
        let mut walk = walked();
        walk.go_on(2);
        walk.note(&[item("e", "2025-01-01T00:00:02.000Z")], 4, at(AFTER));
        assert_eq!(walk.look_further(6, true, 2), None);
        // A walk not yet begun begins at 0, and does not look for a place.
        let mut fresh = Walk::after(None);
        assert_eq!(fresh.go_on(2), 0);
        assert_eq!(fresh.look_further(2, true, 2), None);
    }

    #[test]
    fn a_walk_stored_before_its_first_page_begins_at_offset_zero() {
        let none = Map::new();
        let before = Some((
            "2025-01-01T00:00:04.000Z".to_owned(),
            at("2025-01-01T00:00:04.000Z"),
        ));
        let text = stored(
            &Walk::after(before),
            CURSOR,
            AFTER,
            EndpointMode::Poll,
            &none,
        );
        let mut resumed = resume(&text, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert_eq!(resumed.walk.pages, 0);
        assert_eq!(resumed.walk.go_on(9), 0);
        // Its bound is still what the run that stored it knew.
        match resumed.walk.bound(at(AFTER)) {
            Bound::To(text, _) => assert_eq!(text, "2025-01-01T00:00:04.000Z"),
            other => panic!("{other:?}"),
        }
        // A page with no pages relayed, or pages relayed with no page, is not a walk.
        let odd = text.replace("\"pages\":0", "\"pages\":2");
        assert!(resume(&odd, Some(CURSOR), EndpointMode::Poll, &none).is_none());
    }

    #[test]
    fn a_stored_walk_of_another_result_set_or_cursor_is_not_continued() {
        let walk = walked();
        let none = Map::new();
        let text = stored(&walk, CURSOR, AFTER, EndpointMode::Poll, &none);
        let mut status = Map::new();
        status.insert("status".into(), json!("Issued"));
        let resume =
            |text: &str, value, mode, filters| resume(text, value, mode, filters).is_some();
        assert!(resume(&text, Some(CURSOR), EndpointMode::Poll, &none));
        // The cursor moved by a checkpoint that left the walk as it was.
        assert!(!resume(
            &text,
            Some("2025-01-01T00:00:02.000Z"),
            EndpointMode::Poll,
            &none
        ));
        assert!(!resume(&text, None, EndpointMode::Poll, &none));
        assert!(!resume(&text, Some(CURSOR), EndpointMode::Search, &none));
        assert!(!resume(&text, Some(CURSOR), EndpointMode::Poll, &status));
        assert!(!resume(
            "{not a walk",
            Some(CURSOR),
            EndpointMode::Poll,
            &none
        ));
        // A walk after its cursor would pass objects not relayed.
        let late = stored(&walk, AFTER, CURSOR, EndpointMode::Poll, &none);
        assert!(!resume(&late, Some(AFTER), EndpointMode::Poll, &none));
        // The same progress gives the same text.
        assert_eq!(
            text,
            stored(&walk, CURSOR, AFTER, EndpointMode::Poll, &none)
        );
    }
}
