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
//! stored progress of another result set is never taken for this one's; and with whether the
//! stream's answers were found out of time order, which is also kept alone when there is no
//! progress to keep ([`Stored::Unsorted`]): a stream whose Tradecloud once answered unsorted
//! walks every result set from then on instead of paging by time (a page sorted by chance,
//! with a change elsewhere keeping its `total` up, hides a skip from the check).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tradecloud_model::timestamp;

use crate::api::EndpointMode;
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
    /// Whether the stream's answers were found out of time order: runs walk every result set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unsorted: bool,
}

impl Belongs {
    /// Progress stored with the cursor `value`, of requests in `mode` with `filters`, by a run
    /// that found the answers `unsorted` or not.
    pub(crate) fn new(
        value: &str,
        mode: EndpointMode,
        filters: &Map<String, Value>,
        unsorted: bool,
    ) -> Self {
        Self {
            cursor: value.to_owned(),
            endpoint: endpoint_name(mode).to_owned(),
            filters: filters.clone(),
            unsorted,
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
}

impl StoredMove {
    /// A move to `to` whose next page's `total` must count `expected_total`, stored with the
    /// cursor `value`.
    pub(crate) fn new(of: Belongs, to: &str, expected_total: u64) -> Self {
        Self {
            of,
            move_to: to.to_owned(),
            expected_total,
        }
    }
}

/// Progress stored by a run, as the cursor record keeps it (the JSON kinds are told apart by
/// their fields: `moveTo` for a move, `tie` for paging inside a timestamp, `page` for a walk;
/// none of them for the mark alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stored {
    /// A move by time waiting for its check.
    Move(StoredMove),
    /// Paging inside one timestamp.
    Tie(StoredTie),
    /// A walk of a result set.
    Walk(StoredWalk),
    /// No progress: only that the stream's answers were found unsorted (`unsorted` set).
    Unsorted(Belongs),
}

impl Stored {
    /// The JSON text stored.
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("stored progress writes as JSON")
    }
}

/// What the progress stored as `text` is, for operators (`tcrelay cursor show`): `walk`,
/// `timestamp` (paging inside one timestamp), `move` (a move by time to check), `unsorted` (only
/// the mark that the answers were found out of time order), or `unreadable` (not this build's
/// format: the next run starts from the cursor).
pub fn progress_kind(text: &str) -> &'static str {
    match serde_json::from_str::<Stored>(text) {
        Ok(Stored::Walk(_)) => "walk",
        Ok(Stored::Tie(_)) => "timestamp",
        Ok(Stored::Move(_)) => "move",
        Ok(Stored::Unsorted(of)) if of.unsorted => "unsorted",
        _ => "unreadable",
    }
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
    /// A move by time: where to, and what the `total` after it must count.
    Move {
        to: (String, DateTime<Utc>),
        expected_total: u64,
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

/// What a run goes on with from the cursor record: the progress, and whether the stream's
/// answers were found unsorted.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The progress to go on with, if any.
    pub(crate) progress: Option<Resumed>,
    /// Whether earlier runs found the answers out of time order.
    pub(crate) unsorted: bool,
}

/// The progress stored as `text` beside the cursor `value`, if it is one to go on with: it was
/// stored with this very cursor value and asks what this run would ask (`mode`, `filters`), and
/// it is consistent in itself (a walk or paging inside a timestamp starts at or before the
/// cursor, as one after it would pass objects not relayed). A move may go to the cursor or
/// before it: a run that pages by time from the lookback before the cursor can need a page to
/// get past it, and with one page a run only the stored move gets the next run further.
/// Anything else, an unreadable text included, is `None`: the run starts from the cursor, as if
/// nothing were stored.
pub(crate) fn resume(
    text: &str,
    value: Option<&str>,
    mode: EndpointMode,
    filters: &Map<String, Value>,
) -> Option<Resume> {
    let (of, progress) = match serde_json::from_str::<Stored>(text).ok()? {
        Stored::Walk(stored) => {
            let of = stored.belongs().clone();
            let value_at = of.to(value, mode, filters)?;
            (of, Some(stored.resume(value_at)?))
        }
        Stored::Tie(stored) => {
            let of = stored.belongs().clone();
            let value_at = of.to(value, mode, filters)?;
            (of, Some(stored.resume(value_at)?))
        }
        Stored::Move(stored) => {
            stored.of.to(value, mode, filters)?;
            let to_at = timestamp::parse(&stored.move_to).ok()?;
            let progress = Resumed::Move {
                to: (stored.move_to, to_at),
                expected_total: stored.expected_total,
            };
            (stored.of, Some(progress))
        }
        Stored::Unsorted(of) => {
            of.to(value, mode, filters)?;
            if !of.unsorted {
                return None;
            }
            (of, None)
        }
    };
    Some(Resume {
        progress,
        unsorted: of.unsorted,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CURSOR: &str = "2025-01-01T00:00:01.000Z";
    const LATER: &str = "2025-01-01T00:00:02.000Z";

    #[test]
    fn a_stored_move_goes_on_with_its_own_cursor_only() {
        let none = Map::new();
        let text = Stored::Move(StoredMove::new(
            Belongs::new(CURSOR, EndpointMode::Poll, &none, false),
            LATER,
            7,
        ))
        .to_text();
        match resume(&text, Some(CURSOR), EndpointMode::Poll, &none).and_then(|r| r.progress) {
            Some(Resumed::Move { to, expected_total }) => {
                assert_eq!(to.0, LATER);
                assert_eq!(expected_total, 7);
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
            Belongs::new(LATER, EndpointMode::Poll, &none, false),
            CURSOR,
            7,
        ))
        .to_text();
        assert!(resume(&back, Some(LATER), EndpointMode::Poll, &none).is_some());
        let odd = back.replace(CURSOR, "yesterday");
        assert!(resume(&odd, Some(LATER), EndpointMode::Poll, &none).is_none());
    }

    #[test]
    fn each_kind_reads_back_as_itself() {
        let none = Map::new();
        let of = Belongs::new(CURSOR, EndpointMode::Poll, &none, false);
        let a_move = Stored::Move(StoredMove::new(of, LATER, 3));
        let text = a_move.to_text();
        assert!(text.contains("\"moveTo\""), "{text}");
        assert_eq!(serde_json::from_str::<Stored>(&text).unwrap(), a_move);
        assert!(serde_json::from_str::<Stored>("{not json").is_err());
        assert!(resume("{\"cursor\":1}", Some(CURSOR), EndpointMode::Poll, &none).is_none());
        assert_eq!(progress_kind(&text), "move");
        let mark = Stored::Unsorted(Belongs::new(CURSOR, EndpointMode::Poll, &none, true));
        assert_eq!(progress_kind(&mark.to_text()), "unsorted");
        let bare = Stored::Unsorted(Belongs::new(CURSOR, EndpointMode::Poll, &none, false));
        assert_eq!(progress_kind(&bare.to_text()), "unreadable");
        assert_eq!(progress_kind("{not json"), "unreadable");
    }
}
