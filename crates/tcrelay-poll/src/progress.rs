//! What the cursor record keeps of a run that stopped part-way (`Cursor::walk`, as JSON), so
//! that the next run goes on where it stood instead of starting over: a run that must start
//! over every time, and cannot get further than the last one in its time or page bound, never
//! moves the cursor again, and the stream stalls. Three things are kept:
//! - a walk of a result set by offset ([`StoredWalk`], the `walk` module);
//! - paging by offset inside one timestamp that fills whole pages ([`StoredTie`], the `tie`
//!   module);
//! - a move by time not yet checked by the next page's `total` ([`StoredMove`]): a run whose
//!   time ends right after such a move (a deadline that leaves one page a run, every run)
//!   would otherwise never store one.
//!
//! Each is kept with the cursor value, endpoint and filters it belongs to ([`Belongs`]), so a
//! stored progress of another result set is never taken for this one's; and with what runs
//! learned of the stream's Tradecloud ([`Marks`]), which is also kept alone when there is no
//! progress to keep ([`Stored::Marks`]):
//! - whether its answers were found out of time order: a stream whose Tradecloud once
//!   answered unsorted walks every result set from then on instead of paging by time (a page
//!   sorted by chance, with a change elsewhere keeping its `total` up, hides a skip from the
//!   check);
//! - the smaller page size a run went on with after pages too large to read, until a run
//!   catches up: a run whose time ends right after halving (a deadline that leaves it one
//!   request) would otherwise leave the next to ask the same page too large again, every run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tradecloud_model::timestamp;

use crate::api::EndpointMode;
use crate::object::Polled;
use crate::tie::{StoredTie, Tie};
use crate::walk::{StoredWalk, Walk};

/// What a stored progress belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Belongs {
    /// The cursor value stored with it. A checkpoint by a build that does not know stored
    /// progress moves the cursor and leaves the progress as it was: it is then not continued.
    cursor: String,
    /// `poll` or `search`: the offsets index one endpoint's result set.
    endpoint: String,
    /// The further filters asked with (a `status`, say): a change of configuration makes
    /// another result set.
    filters: Map<String, Value>,
    /// What runs learned of the stream, kept across runs.
    #[serde(flatten)]
    marks: Marks,
}

/// What runs learned of a stream's Tradecloud that later runs go on with (stored with the
/// cursor, with or without progress).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Marks {
    /// Whether the stream's answers were found out of time order: runs walk every result set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unsorted: bool,
    /// Objects asked per page after pages of the configured size were too large to read, until
    /// a run catches up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) page_limit: Option<u32>,
}

impl Marks {
    /// Whether there is nothing to keep.
    pub(crate) fn is_empty(self) -> bool {
        self == Self::default()
    }
}

impl Belongs {
    /// Progress stored with the cursor `value`, of requests in `mode` with `filters`, with what
    /// runs learned of the stream (`marks`).
    pub(crate) fn new(
        value: &str,
        mode: EndpointMode,
        filters: &Map<String, Value>,
        marks: Marks,
    ) -> Self {
        Self {
            cursor: value.to_owned(),
            endpoint: endpoint_name(mode).to_owned(),
            filters: filters.clone(),
            marks,
        }
    }

    /// The stored cursor's instant, when the progress belongs to the cursor `value` and to
    /// requests in `mode` with `filters`.
    fn to(
        &self,
        value: Option<&str>,
        mode: EndpointMode,
        filters: &Map<String, Value>,
    ) -> Option<DateTime<Utc>> {
        let value = value?;
        if self.cursor != value || self.endpoint != endpoint_name(mode) || self.filters != *filters
        {
            return None;
        }
        timestamp::parse(value).ok()
    }
}

fn endpoint_name(mode: EndpointMode) -> &'static str {
    match mode {
        EndpointMode::Poll => "poll",
        EndpointMode::Search => "search",
    }
}

/// A move by time past a full page that the next page's `total` was to check, stored because
/// the run stopped before it asked that page: the next run asks it, exactly as this run would
/// have, and stores the move only if its `total` allows it (`run::Moved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredMove {
    #[serde(flatten)]
    of: Belongs,
    /// The position the move went to, as it would be stored.
    move_to: String,
    /// What the next page's `total` must count.
    expected_total: u64,
    /// Where the move went from, and its page's objects between there and where it went:
    /// the next run asks that position's `total` again after the page at the move's
    /// (`run::Moved::from`). Absent in what builds before it stored, and for pages larger than
    /// that check is made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    move_from: Option<MoveFrom>,
}

/// Where a stored move went from ([`StoredMove::move_from`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MoveFrom {
    /// The position, as asked.
    pub(crate) after: String,
    /// How many of the page's objects the request after the move leaves out.
    pub(crate) passed: u64,
    /// Those objects, as (id, `lastUpdatedAt`).
    #[serde(default)]
    pub(crate) seen: Vec<(String, String)>,
}

impl StoredMove {
    /// A move to `to` whose next page's `total` must count `expected_total`, stored with the
    /// cursor `value`; `from` is where it went from and how many of its page's objects it
    /// passed.
    pub(crate) fn new(of: Belongs, to: &str, expected_total: u64, from: Option<MoveFrom>) -> Self {
        Self {
            of,
            move_to: to.to_owned(),
            expected_total,
            move_from: from,
        }
    }
}

impl Kept for StoredMove {
    fn belongs(&self) -> &Belongs {
        &self.of
    }

    fn belongs_mut(&mut self) -> &mut Belongs {
        &mut self.of
    }

    /// The move: `None` when it goes to a time that is none. It may go to the cursor or before
    /// it: a run that pages by time from the lookback before the cursor can need a page to get
    /// past it, and with one page a run only the stored move gets the next run further.
    fn resume(self, _value_at: DateTime<Utc>) -> Option<Resumed> {
        let to_at = timestamp::parse(&self.move_to).ok()?;
        // An origin that is no time is as none: the move is checked by its `total` alone.
        let from = self.move_from.and_then(|from| {
            let at = timestamp::parse(&from.after).ok()?;
            let seen = from
                .seen
                .into_iter()
                .map(|(id, text)| Some((id, timestamp::parse(&text).ok()?)))
                .collect::<Option<Vec<_>>>()?;
            Some(Origin {
                after: from.after,
                at,
                passed: from.passed,
                seen,
            })
        });
        Some(Resumed::Move {
            to: (self.move_to, to_at),
            expected_total: self.expected_total,
            from,
        })
    }
}

/// Where a move by time went from, for the check of its old position's `total` (`run::Moved`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The position, as asked.
    pub(crate) after: String,
    /// Its instant.
    pub(crate) at: DateTime<Utc>,
    /// How many of the move's page's objects the request after the move leaves out.
    pub(crate) passed: u64,
    /// Those objects, by id and `lastUpdatedAt`, when the page was small enough to keep them:
    /// one seen again with a newer time has left the range the move passed.
    pub(crate) seen: Vec<(String, DateTime<Utc>)>,
}

/// The most of [`Origin::seen`] stored with a move: a move past a timestamp paged inside knows
/// every object of it it saw, and the stored progress must stay a small item. Fewer known only
/// subtract fewer ([`Origin::still_between`]).
const STORED_SEEN: usize = 100;

impl Origin {
    /// As stored with a move ([`StoredMove`]).
    pub(crate) fn to_stored(&self) -> MoveFrom {
        MoveFrom {
            after: self.after.clone(),
            passed: self.passed,
            seen: self
                .seen
                .iter()
                .take(STORED_SEEN)
                .map(|(id, at)| (id.clone(), timestamp::format_exact(*at)))
                .collect(),
        }
    }

    /// How many of the objects the move passed may still lie between its two positions: all
    /// less those of [`Self::seen`] served since with a newer time (in `since`: they changed,
    /// and a change only makes an object newer).
    pub(crate) fn still_between(&self, since: &[Polled]) -> u64 {
        let left = self
            .seen
            .iter()
            .filter(|(id, at)| since.iter().any(|i| i.id == *id && i.at > *at))
            .count() as u64;
        self.passed.saturating_sub(left)
    }
}

/// A kind of progress, stored with what it belongs to.
pub(crate) trait Kept: Sized {
    /// What it belongs to.
    fn belongs(&self) -> &Belongs;

    /// What it belongs to, to change its marks.
    fn belongs_mut(&mut self) -> &mut Belongs;

    /// The progress to go on with, stored beside the cursor at `value_at` (checked to be the
    /// one it belongs to): `None` when it is not consistent in itself.
    fn resume(self, value_at: DateTime<Utc>) -> Option<Resumed>;

    /// The progress to go on with, if it belongs to the cursor `value` and requests in `mode`
    /// with `filters`, and is consistent in itself (its marks need the cursor only: [`resume`]).
    fn resume_for(
        self,
        value: Option<&str>,
        mode: EndpointMode,
        filters: &Map<String, Value>,
    ) -> Option<Resumed> {
        let value_at = self.belongs().to(value, mode, filters)?;
        self.resume(value_at)
    }
}

/// Progress stored by a run, as the cursor record keeps it (the JSON kinds are told apart by
/// their fields: `moveTo` for a move, `tie` for paging inside a timestamp, `page` for a walk;
/// none of them for the marks alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stored {
    /// A move by time waiting for its check.
    Move(StoredMove),
    /// Paging inside one timestamp.
    Tie(StoredTie),
    /// A walk of a result set.
    Walk(StoredWalk),
    /// No progress: only what runs learned of the stream ([`Marks`], not empty).
    Marks(Belongs),
}

impl Stored {
    /// The JSON text stored.
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("stored progress writes as JSON")
    }

    /// What it belongs to.
    fn belongs(&self) -> &Belongs {
        match self {
            Stored::Move(stored) => stored.belongs(),
            Stored::Tie(stored) => stored.belongs(),
            Stored::Walk(stored) => stored.belongs(),
            Stored::Marks(of) => of,
        }
    }

    /// What it belongs to, to change its marks.
    fn belongs_mut(&mut self) -> &mut Belongs {
        match self {
            Stored::Move(stored) => stored.belongs_mut(),
            Stored::Tie(stored) => stored.belongs_mut(),
            Stored::Walk(stored) => stored.belongs_mut(),
            Stored::Marks(of) => of,
        }
    }
}

/// The progress stored as `text`, its marks replaced by `marks`, when a run would go on with it
/// ([`resume`]: stored with the cursor `value`, of requests in `mode` with `filters`, consistent
/// in itself); `None` otherwise (what to keep is then the marks alone), and for a move by time
/// in a stream `marks` says is unsorted (such a stream walks). Progress no run would go on with
/// must not carry the marks: the next run would drop them with it.
pub(crate) fn with_marks(
    text: &str,
    value: &str,
    mode: EndpointMode,
    filters: &Map<String, Value>,
    marks: Marks,
) -> Option<String> {
    let mut stored = serde_json::from_str::<Stored>(text).ok()?;
    stored.belongs_mut().marks = marks;
    let text = stored.to_text();
    // Read back as the next run would, with the new marks.
    resume(&text, Some(value), mode, filters)?.progress?;
    Some(text)
}

/// What the progress stored as `text` is, for operators (`tcrelay cursor show`): `walk`,
/// `timestamp` (paging inside one timestamp), `move` (a move by time to check), `unsorted` (only
/// the mark that the answers were found out of time order), `smaller-pages` (only the page size
/// of [`kept_page_limit`]), or `unreadable` (not this build's format: the next run starts from
/// the cursor).
pub fn progress_kind(text: &str) -> &'static str {
    match serde_json::from_str::<Stored>(text) {
        Ok(Stored::Walk(_)) => "walk",
        Ok(Stored::Tie(_)) => "timestamp",
        Ok(Stored::Move(_)) => "move",
        Ok(Stored::Marks(of)) if of.marks.unsorted => "unsorted",
        Ok(Stored::Marks(of)) if of.marks.page_limit.is_some() => "smaller-pages",
        _ => "unreadable",
    }
}

/// The page size stored as `text` says the next run asks with, when smaller than configured
/// (pages of the configured size were too large to read and no run caught up since), for
/// operators (`tcrelay cursor show`).
pub fn kept_page_limit(text: &str) -> Option<u32> {
    let stored = serde_json::from_str::<Stored>(text).ok()?;
    stored.belongs().marks.page_limit
}

/// Whether the progress stored as `text` carries the mark that the stream's answers were found
/// out of time order (runs walk every result set, and a move or paging inside a timestamp
/// stored with it is not gone on with), for operators (`tcrelay cursor show`): the mark is
/// mostly kept with a walk, not alone, so [`progress_kind`] does not show it.
pub fn kept_unsorted(text: &str) -> bool {
    serde_json::from_str::<Stored>(text).is_ok_and(|stored| stored.belongs().marks.unsorted)
}

/// Stored progress ready to go on with.
#[derive(Debug)]
pub(crate) enum Resumed {
    /// A walk: its position (`lastUpdatedAfter`, as sent and parsed), the offset of its last
    /// page (logged; where it asks from is [`Walk::go_on`]'s), the walk.
    Walk {
        after: (String, DateTime<Utc>),
        offset: u32,
        walk: Walk,
    },
    /// Paging inside a timestamp: its position and where it stood.
    Tie {
        after: (String, DateTime<Utc>),
        tie: Tie,
    },
    /// A move by time: where to, what the `total` after it must count, and where it went
    /// from with how many of its page's objects it passed.
    Move {
        to: (String, DateTime<Utc>),
        expected_total: u64,
        from: Option<Origin>,
    },
}

impl Resumed {
    /// The position it goes on from, as sent.
    pub(crate) fn after(&self) -> &str {
        match self {
            Resumed::Walk { after, .. } | Resumed::Tie { after, .. } => &after.0,
            Resumed::Move { to, .. } => &to.0,
        }
    }

    /// The offset of the last page relayed, for the log.
    pub(crate) fn offset(&self) -> Option<u32> {
        match self {
            Resumed::Walk { offset, .. } => Some(*offset),
            Resumed::Tie { tie, .. } => Some(tie.last_offset()),
            Resumed::Move { .. } => None,
        }
    }

    /// What it is, for the log.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Resumed::Walk { .. } => "walk",
            Resumed::Tie { .. } => "timestamp",
            Resumed::Move { .. } => "move",
        }
    }
}

/// What a run goes on with from the cursor record: the progress, and what earlier runs
/// learned of the stream.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The progress to go on with, if any.
    pub(crate) progress: Option<Resumed>,
    /// What earlier runs learned of the stream.
    pub(crate) marks: Marks,
}

/// The progress stored as `text` beside the cursor `value`, if it is one to go on with: it was
/// stored with this very cursor value and asks what this run would ask (`mode`, `filters`), and
/// it is consistent in itself ([`Kept::resume`]); with its marks, which are gone on with when
/// the progress is not. The marks need only the cursor value: they are what runs learned of the
/// stream's Tradecloud, which another endpoint or status filter (another result set) does not
/// change; dropped with the progress of a configuration change, a stream found unsorted paged
/// by time again, past objects no page showed (with a status filter the `total` check is off).
/// Anything else, an unreadable text included, is `None`: the run starts from the cursor, as
/// if nothing were stored.
pub(crate) fn resume(
    text: &str,
    value: Option<&str>,
    mode: EndpointMode,
    filters: &Map<String, Value>,
) -> Option<Resume> {
    let stored = serde_json::from_str::<Stored>(text).ok()?;
    if value != Some(stored.belongs().cursor.as_str()) {
        return None;
    }
    let marks = stored.belongs().marks;
    let progress = match stored {
        Stored::Walk(stored) => stored.resume_for(value, mode, filters),
        Stored::Tie(stored) => stored.resume_for(value, mode, filters),
        Stored::Move(stored) => stored.resume_for(value, mode, filters),
        Stored::Marks(_) => None,
    };
    // A stream found unsorted walks from the cursor: a move by time and paging inside a
    // timestamp both trust the order (one stored before the finding may have passed objects
    // no page showed), so only a walk is gone on with.
    let progress = progress.filter(|p| !marks.unsorted || matches!(p, Resumed::Walk { .. }));
    // Progress that is not consistent in itself is not gone on with; its marks still are.
    if progress.is_none() && marks.is_empty() {
        return None;
    }
    Some(Resume { progress, marks })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CURSOR: &str = "2025-01-01T00:00:01.000Z";
    const LATER: &str = "2025-01-01T00:00:02.000Z";

    #[test]
    fn a_stored_move_keeps_where_it_went_from() {
        let none = Map::new();
        let at = |text: &str| timestamp::parse(text).unwrap();
        let origin = Origin {
            after: CURSOR.into(),
            at: at(CURSOR),
            passed: 2,
            seen: vec![("a".into(), at(LATER)), ("b".into(), at(LATER))],
        };
        let text = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, Marks::default()),
            LATER,
            7,
            Some(origin.to_stored()),
        ))
        .to_text();
        match resume(&text, Some(CURSOR), EndpointMode::Poll, &none).and_then(|r| r.progress) {
            Some(Resumed::Move { from, .. }) => assert_eq!(from, Some(origin.clone())),
            other => panic!("{other:?}"),
        }
        // Of the objects it passed, one served since with a newer time has left the range;
        // one served at the same time, or another object, has not.
        let newer = "2025-01-01T00:00:03.000Z";
        let since = [
            Polled::order_at("a", newer),
            Polled::order_at("b", LATER),
            Polled::order_at("c", newer),
        ];
        assert_eq!(origin.still_between(&since), 1);
        assert_eq!(origin.still_between(&[]), 2);
    }

    #[test]
    fn a_stored_move_goes_on_with_its_own_cursor_only() {
        let none = Map::new();
        let text = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, Marks::default()),
            LATER,
            7,
            None,
        ))
        .to_text();
        match resume(&text, Some(CURSOR), EndpointMode::Poll, &none).and_then(|r| r.progress) {
            Some(Resumed::Move {
                to,
                expected_total,
                from,
            }) => {
                assert_eq!(to.0, LATER);
                assert_eq!(expected_total, 7);
                assert_eq!(from, None);
            }
            other => panic!("{other:?}"),
        }
        // Another cursor, endpoint or filter: not this run's.
        let mut status = Map::new();
        status.insert("status".into(), json!("Issued"));
        assert!(resume(&text, Some(LATER), EndpointMode::Poll, &none).is_none());
        assert!(resume(&text, None, EndpointMode::Poll, &none).is_none());
        assert!(resume(&text, Some(CURSOR), EndpointMode::Search, &none).is_none());
        assert!(resume(&text, Some(CURSOR), EndpointMode::Poll, &status).is_none());
        // A move to the cursor or before it is gone on with too: the page after it is what
        // gets the stream past the cursor. One to a time that is none is not.
        let back = Stored::Move(StoredMove::new(
            Belongs::new(LATER, EndpointMode::Poll, &none, Marks::default()),
            CURSOR,
            7,
            None,
        ))
        .to_text();
        assert!(resume(&back, Some(LATER), EndpointMode::Poll, &none).is_some());
        let odd = back.replace(CURSOR, "yesterday");
        assert!(resume(&odd, Some(LATER), EndpointMode::Poll, &none).is_none());
    }

    #[test]
    fn each_kind_reads_back_as_itself() {
        let none = Map::new();
        let of = Belongs::new(CURSOR, EndpointMode::Poll, &none, Marks::default());
        let a_move = Stored::Move(StoredMove::new(of, LATER, 3, None));
        let text = a_move.to_text();
        assert!(text.contains("\"moveTo\""), "{text}");
        assert_eq!(serde_json::from_str::<Stored>(&text).unwrap(), a_move);
        assert!(serde_json::from_str::<Stored>("{not json").is_err());
        assert!(resume("{\"cursor\":1}", Some(CURSOR), EndpointMode::Poll, &none).is_none());
        assert_eq!(progress_kind(&text), "move");
        let mark = Stored::Marks(Belongs::new(CURSOR, EndpointMode::Poll, &none, UNSORTED));
        assert_eq!(progress_kind(&mark.to_text()), "unsorted");
        let smaller = Stored::Marks(Belongs::new(CURSOR, EndpointMode::Poll, &none, PAGES_OF_25));
        assert_eq!(progress_kind(&smaller.to_text()), "smaller-pages");
        assert_eq!(kept_page_limit(&smaller.to_text()), Some(25));
        assert_eq!(kept_page_limit(&mark.to_text()), None);
        let bare = Stored::Marks(Belongs::new(
            CURSOR,
            EndpointMode::Poll,
            &none,
            Marks::default(),
        ));
        assert_eq!(progress_kind(&bare.to_text()), "unreadable");
        assert_eq!(progress_kind("{not json"), "unreadable");
    }

    const UNSORTED: Marks = Marks {
        unsorted: true,
        page_limit: None,
    };
    const PAGES_OF_25: Marks = Marks {
        unsorted: false,
        page_limit: Some(25),
    };

    #[test]
    fn the_marks_go_on_with_their_cursor_with_or_without_progress() {
        let none = Map::new();
        let both = Marks {
            unsorted: true,
            page_limit: Some(25),
        };
        let alone = Stored::Marks(Belongs::new(CURSOR, EndpointMode::Poll, &none, both)).to_text();
        assert!(alone.contains("\"pageLimit\":25"), "{alone}");
        let r = resume(&alone, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert!(r.progress.is_none());
        assert_eq!(r.marks, both);
        // Another cursor's marks are not this one's (`cursor set` clears them so).
        assert!(resume(&alone, Some(LATER), EndpointMode::Poll, &none).is_none());
        // Another endpoint or status filter is another result set, not another Tradecloud:
        // the marks go on, the progress does not.
        let mut status = Map::new();
        status.insert("status".into(), json!("Issued"));
        for (mode, filters) in [(EndpointMode::Search, &none), (EndpointMode::Poll, &status)] {
            let r = resume(&alone, Some(CURSOR), mode, filters).unwrap();
            assert_eq!(r.marks, both);
        }

        let a_move = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, PAGES_OF_25),
            LATER,
            7,
            None,
        ))
        .to_text();
        let r = resume(&a_move, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert!(matches!(r.progress, Some(Resumed::Move { .. })));
        assert_eq!(r.marks, PAGES_OF_25);
        let r = resume(&a_move, Some(CURSOR), EndpointMode::Search, &none).unwrap();
        assert!(r.progress.is_none(), "{:?}", r.progress);
        assert_eq!(r.marks, PAGES_OF_25);
        assert_eq!(progress_kind(&a_move), "move");
        assert_eq!(kept_page_limit(&a_move), Some(25));

        // A move in a stream marked unsorted is not gone on with: the run walks from the
        // cursor, with the marks.
        let unsorted_move = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, both),
            LATER,
            7,
            None,
        ))
        .to_text();
        let r = resume(&unsorted_move, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert!(r.progress.is_none(), "{:?}", r.progress);
        assert_eq!(r.marks, both);
        assert!(resume(&unsorted_move, Some(LATER), EndpointMode::Poll, &none).is_none());
    }

    #[test]
    fn with_marks_keeps_only_progress_a_run_would_go_on_with() {
        let none = Map::new();
        let poll = EndpointMode::Poll;
        let a_move = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, poll, &none, Marks::default()),
            LATER,
            7,
            None,
        ));
        let both = Marks {
            unsorted: true,
            page_limit: Some(25),
        };
        let text = with_marks(&a_move.to_text(), CURSOR, poll, &none, PAGES_OF_25).unwrap();
        let r = resume(&text, Some(CURSOR), poll, &none).unwrap();
        assert_eq!(r.marks, PAGES_OF_25);
        match r.progress {
            Some(Resumed::Move {
                to, expected_total, ..
            }) => {
                assert_eq!((to.0.as_str(), expected_total), (LATER, 7));
            }
            other => panic!("{other:?}"),
        }
        // Stored with another cursor, endpoint or filters (the next run would drop it, and the
        // marks with it), unreadable, the marks alone, or a move in a stream found unsorted
        // since: nothing to keep.
        let mut status = Map::new();
        status.insert("status".into(), json!("Issued"));
        let text = a_move.to_text();
        assert!(with_marks(&text, LATER, poll, &none, PAGES_OF_25).is_none());
        assert!(with_marks(&text, CURSOR, EndpointMode::Search, &none, PAGES_OF_25).is_none());
        assert!(with_marks(&text, CURSOR, poll, &status, PAGES_OF_25).is_none());
        assert!(with_marks(&text, CURSOR, poll, &none, both).is_none());
        assert!(with_marks("{not json", CURSOR, poll, &none, both).is_none());
        let alone = Stored::Marks(Belongs::new(CURSOR, poll, &none, UNSORTED));
        assert!(with_marks(&alone.to_text(), CURSOR, poll, &none, both).is_none());
    }

    #[test]
    fn the_marks_of_progress_not_gone_on_with_still_are() {
        let none = Map::new();
        // A move to a time that is none: not consistent in itself.
        let odd = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, PAGES_OF_25),
            "yesterday",
            7,
            None,
        ))
        .to_text();
        let r = resume(&odd, Some(CURSOR), EndpointMode::Poll, &none).unwrap();
        assert!(r.progress.is_none());
        assert_eq!(r.marks, PAGES_OF_25);
        let bare = odd.replace(",\"pageLimit\":25", "");
        assert!(!bare.contains("pageLimit"), "{bare}");
        assert!(resume(&bare, Some(CURSOR), EndpointMode::Poll, &none).is_none());
    }
}
