//! The poll loop against a Tradecloud that orders its answers in its own way (newest first, or
//! by id whatever the times) and whose objects can leave the result set (a status filter) or
//! come in pages too large to read: the cases the scripted world of `run.rs` cannot play; and
//! walks of such answers too large for one run, continued by the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tcrelay_core::ports::{ApiError, CursorStore};
use tcrelay_core::testing::{MemoryDedupe, MemorySink};
use tcrelay_poll::testing::{MemoryCursorStore, ms_to_timestamp, order_json};
use tcrelay_poll::{
    NoDeadline, PageRequest, PollApi, PollConfig, PollPorts, PollStream, PolledPage, RunRequest,
    StopReason, StreamSummary, run_stream,
};
use tradecloud_model::timestamp;

const T0: i64 = 1_735_689_600_000;
const START: &str = "2024-12-31T00:00:00.000Z";
const ORDERS: PollStream = PollStream::Orders;

type Hook = Box<dyn FnMut(&mut World, usize, &PageRequest) + Send>;

#[derive(Default)]
struct World {
    /// id -> (at ms, open, value)
    objects: HashMap<String, (i64, bool, Value)>,
    descending: bool,
    /// Answers in id order (an index order), whatever the times.
    by_id: bool,
}

impl World {
    fn put(&mut self, id: &str, at: i64, value: Value) {
        self.objects.insert(id.to_owned(), (at, true, value));
    }
    /// Ids in the result set's order (all open objects, whatever the filter).
    fn order(&self) -> Vec<(i64, String)> {
        let mut m: Vec<(i64, String)> = self
            .objects
            .iter()
            .filter(|(_, (_, open, _))| *open)
            .map(|(id, (at, _, _))| (*at, id.clone()))
            .collect();
        m.sort();
        if self.descending {
            m.reverse();
        }
        m
    }
    fn page(&self, r: &PageRequest) -> PolledPage {
        let after = timestamp::parse(&r.last_updated)
            .unwrap()
            .timestamp_millis();
        let mut m: Vec<(&i64, &String, &Value)> = self
            .objects
            .iter()
            .filter(|(_, (at, open, _))| *at > after && *open)
            .map(|(id, (at, _, v))| (at, id, v))
            .collect();
        m.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
        if self.descending {
            m.reverse();
        }
        if self.by_id {
            m.sort_by(|a, b| a.1.cmp(b.1));
        }
        let total = m.len() as u64;
        let items: Vec<Value> = m
            .into_iter()
            .skip(r.offset as usize)
            .take(r.limit as usize)
            .map(|(_, _, v)| v.clone())
            .collect();
        PolledPage::of_values(&items, Some(total), None)
    }
}

#[derive(Default)]
struct Api {
    world: Mutex<World>,
    hook: Mutex<Option<Hook>>,
    served: Mutex<usize>,
    /// Pages asked with a larger limit than this are too large to read (large orders).
    too_large_above: Mutex<Option<u32>>,
    /// Every request as (lastUpdatedAfter, offset, limit).
    requests: Mutex<Vec<(String, u32, u32)>>,
}

#[async_trait]
impl PollApi for Api {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        self.requests
            .lock()
            .unwrap()
            .push((r.last_updated.clone(), r.offset, r.limit));
        if self
            .too_large_above
            .lock()
            .unwrap()
            .is_some_and(|max| r.limit > max)
        {
            return Err(ApiError::TooLarge(
                "answer larger than the client reads".into(),
            ));
        }
        let mut world = self.world.lock().unwrap();
        let page = world.page(r);
        let served = {
            let mut s = self.served.lock().unwrap();
            *s += 1;
            *s
        };
        if let Some(h) = self.hook.lock().unwrap().as_mut() {
            h(&mut world, served, r);
        }
        Ok(page)
    }
}

struct H {
    api: Arc<Api>,
    cursors: Arc<MemoryCursorStore>,
    sink: Arc<MemorySink>,
    ports: PollPorts,
}

fn h() -> H {
    let api = Arc::new(Api::default());
    let cursors = Arc::new(MemoryCursorStore::new());
    let sink = Arc::new(MemorySink::new());
    let ports = PollPorts {
        api: api.clone(),
        cursors: cursors.clone(),
        dedupe: Arc::new(MemoryDedupe::default()),
        sink: sink.clone(),
    };
    H {
        api,
        cursors,
        sink,
        ports,
    }
}

async fn poll(h: &H, c: &PollConfig, owner: &str) -> StreamSummary {
    run_stream(
        &h.ports,
        c,
        ORDERS,
        &RunRequest::scheduled(owner),
        &NoDeadline,
    )
    .await
    .unwrap()
}

fn order(id: &str, ms: i64) -> Value {
    order_json(id, 1, ms, &[(&format!("{id}-l1"), ms, "Issued", None)])
}

fn walk_config() -> PollConfig {
    PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        page_limit: 10,
        max_pages: 3,
        ..PollConfig::default()
    }
}

/// `n` orders `o00`.. changed at `T0 + 1 + i`, answered newest first: every page unsorted.
fn newest_first_backlog(h: &H, n: i64) {
    let mut w = h.api.world.lock().unwrap();
    w.descending = true;
    for i in 0..n {
        let id = format!("o{i:02}");
        w.put(&id, T0 + 1 + i, order(&id, T0 + 1 + i));
    }
}

/// Runs up to `runs` runs (`between` called before each but the first); the run that caught
/// up, or a panic naming where the stream stood.
async fn runs_until_caught_up(
    h: &H,
    c: &PollConfig,
    runs: u32,
    mut between: impl FnMut(&H, u32),
) -> u32 {
    let mut log = Vec::new();
    for run in 1..=runs {
        if run > 1 {
            between(h, run);
        }
        let s = poll(h, c, &format!("run-{run}")).await;
        // One more request at the bound, for the `total` of the run's last move by time.
        assert!(
            s.pages <= c.max_pages + 1,
            "run-{run} over its page bound: {s:?}"
        );
        log.push(format!(
            "run-{run}: stop {:?}, pages {}, cursor {:?}",
            s.stop.as_ref().map(StopReason::as_str),
            s.pages,
            s.cursor_after
        ));
        if s.stop == Some(StopReason::CaughtUp) {
            return run;
        }
    }
    let requests = h.api.requests.lock().unwrap();
    let tail: Vec<_> = requests.iter().rev().take(8).rev().collect();
    panic!(
        "STALLED: not caught up after {runs} runs; cursor {:?} (start {START}); stored walk \
         {:?}\n{}\nlast requests (after, offset, limit): {tail:?}",
        h.cursors.value("orders"),
        h.cursors.walk("orders"),
        log.join("\n")
    );
}

fn assert_on_queue_once(h: &H) {
    let mut sent: Vec<(String, String)> = h
        .sink
        .envelopes()
        .into_iter()
        .map(|e| (e.id, e.last_updated_at.unwrap_or_default()))
        .collect();
    sent.sort();
    let before = sent.len();
    sent.dedup();
    assert_eq!(sent.len(), before, "a state went out twice");
    let open: Vec<(String, String)> = h
        .api
        .world
        .lock()
        .unwrap()
        .objects
        .iter()
        .filter(|(_, (_, open, _))| *open)
        .map(|(id, (at, _, _))| (id.clone(), ms_to_timestamp(*at)))
        .collect();
    for state in open {
        assert!(sent.contains(&state), "{state:?} is not on the queue");
    }
}

/// A walk of several pages (answers newest first) reaches its end without having seen `o`: it
/// changed during the walk and moved to an offset already passed. Its line changed before the
/// walk's bound must still count as changed for the next run: a walk of several pages keeps the
/// window start, and a walk from its bound follows.
#[tokio::test]
async fn a_walk_of_several_pages_keeps_the_window_for_an_object_it_did_not_see() {
    let h = h();
    let mut c = PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        ..PollConfig::default()
    };
    c.changed_lines_only = true;
    c.page_limit = 10;
    h.api.world.lock().unwrap().descending = true;
    h.api
        .world
        .lock()
        .unwrap()
        .put("first", T0, order("first", T0));
    let s = poll(&h, &c, "run-1").await;
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    {
        let mut w = h.api.world.lock().unwrap();
        for i in 0..30 {
            let id = format!("b{i:02}");
            w.put(&id, T0 + 101 + i, order(&id, T0 + 101 + i));
        }
        w.put(
            "o",
            T0 + 100,
            order_json(
                "o",
                1,
                T0 + 100,
                &[("dropped", T0 + 100, "Confirmed", None)],
            ),
        );
    }
    let base = *h.api.served.lock().unwrap();
    *h.api.hook.lock().unwrap() = Some(Box::new(move |w: &mut World, served, _| {
        if served == base + 1 {
            w.put(
                "o",
                T0 + 300,
                order_json(
                    "o",
                    2,
                    T0 + 300,
                    &[
                        ("dropped", T0 + 100, "Confirmed", None),
                        ("relayed", T0 + 300, "Confirmed", None),
                    ],
                ),
            );
        }
    }));
    // The walk ends without having seen `o` and does not count as caught up.
    poll(&h, &c, "run-2").await;
    poll(&h, &c, "run-3").await;
    let o: Vec<_> = h
        .sink
        .envelopes()
        .into_iter()
        .filter(|e| e.id == "o")
        .collect();
    assert_eq!(o.len(), 1);
    assert_eq!(
        o[0].changed_lines,
        Some(vec!["dropped".to_owned(), "relayed".to_owned()]),
        "o's line changed at T0 + 100 (before the cursor the walk set) must count as changed"
    );
}

/// With a status filter, an order leaving it between two pages lowers the `total` without any
/// skip. The `total` check is left out under a status filter: taken for a page sorted by
/// chance, it would send the cursor back to the run's start on every run, and a backlog larger
/// than one run's walk would never move.
#[tokio::test]
async fn an_order_leaving_the_status_filter_does_not_stall_a_sorted_backlog() {
    let h = h();
    let c = PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        page_limit: 10,
        max_pages: 5,
        order_status_filter: Some(json!({"processStatus": ["Issued"]})),
        ..PollConfig::default()
    };
    {
        let mut w = h.api.world.lock().unwrap();
        for i in 0..200 {
            let id = format!("o{i:03}");
            w.put(&id, T0 + 1 + i, order(&id, T0 + 1 + i));
        }
    }
    // One order of the backlog (the newest still open) leaves the filter after the first
    // page of each run (it got confirmed: a new time, and no longer `Issued`).
    let mut k = 0;
    *h.api.hook.lock().unwrap() = Some(Box::new(move |w: &mut World, served, _| {
        if served % 5 == 1 {
            let newest = w
                .objects
                .iter()
                .filter(|(_, (_, open, _))| *open)
                .max_by_key(|(_, (at, _, _))| *at)
                .map(|(id, _)| id.clone())
                .unwrap();
            k += 1;
            let e = w.objects.get_mut(&newest).unwrap();
            e.0 = T0 + 100_000 + k;
            e.1 = false;
        }
    }));
    for run in 0..6 {
        let s = poll(&h, &c, &format!("run-{run}")).await;
        assert_eq!(s.deviations.unsorted_pages, 0, "run-{run}: {s:?}");
    }
    let cursor = h.cursors.value("orders");
    assert!(
        cursor.as_deref().unwrap_or(START) > ms_to_timestamp(T0 + 100).as_str(),
        "a sorted backlog did not move: {cursor:?}"
    );
}

/// An unsorted result set larger than one run can walk (3 pages of 10, 50 orders): each run
/// used to walk it from its start to its page bound and stop there, and the cursor never
/// moved. The walk's progress is stored with the cursor after each page, and each run goes on
/// from the last page the one before relayed.
#[tokio::test]
async fn a_result_set_too_large_for_one_run_is_walked_on_by_the_next() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    let dry = RunRequest {
        dry_run: true,
        ..RunRequest::scheduled("dry")
    };
    let planned = run_stream(&h.ports, &c, ORDERS, &dry, &NoDeadline)
        .await
        .unwrap();
    assert_eq!(planned.stop, Some(StopReason::MaxPages));
    assert!(h.cursors.checkpoints().is_empty(), "a dry run wrote");

    let first = poll(&h, &c, "run-0").await;
    assert_eq!(first.stop, Some(StopReason::MaxPages));
    assert!(h.cursors.walk("orders").is_some(), "no walk stored");
    assert!(
        h.cursors.value("orders") <= Some(START.to_owned()),
        "the cursor moved before the walk ended"
    );
    let runs = runs_until_caught_up(&h, &c, 4, |_, _| {}).await;
    assert!(runs <= 3, "{runs} more runs");
    assert_eq!(
        h.cursors.walk("orders"),
        None,
        "an ended walk is still stored"
    );
    assert_eq!(h.cursors.window_start("orders"), None);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 50)));
    assert_on_queue_once(&h);
    assert_eq!(h.sink.envelopes().len(), 50);
}

/// Objects that change between the runs of a walk, before and after its stored page, and an
/// object created meanwhile: every state served and every state held at the end is on the
/// queue once.
#[tokio::test]
async fn changes_between_the_runs_of_a_walk_are_relayed_once() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    let first = poll(&h, &c, "run-0").await;
    assert_eq!(first.stop, Some(StopReason::MaxPages));
    let served_then: Vec<(String, String)> = h
        .sink
        .envelopes()
        .into_iter()
        .map(|e| (e.id, e.last_updated_at.unwrap_or_default()))
        .collect();
    {
        let mut w = h.api.world.lock().unwrap();
        // Seen by the first run (newest first), not yet seen, and new.
        w.put("o45", T0 + 1_001, order("o45", T0 + 1_001));
        w.put("o05", T0 + 1_002, order("o05", T0 + 1_002));
        w.put("n00", T0 + 1_003, order("n00", T0 + 1_003));
    }
    runs_until_caught_up(&h, &c, 6, |_, _| {}).await;
    assert_on_queue_once(&h);
    for state in served_then {
        assert!(sent(&h).contains(&state), "{state:?} is not on the queue");
    }
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 1_003)));
}

/// Objects leave the result set (a status filter) before the stored page between two runs,
/// shifting the rest back further than a page: the page fetched again holds nothing of the
/// stored one, and the walk starts over instead of going on past objects it never saw.
#[tokio::test]
async fn a_stored_walk_the_set_shifted_under_starts_over() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    poll(&h, &c, "run-0").await;
    {
        // The 12 newest (the first run's first pages) leave the filter: the 28 seen by the
        // first run so far shift to below offset 18, and 28-29 (never seen) into its place.
        let mut w = h.api.world.lock().unwrap();
        for i in 38..50 {
            w.objects.get_mut(&format!("o{i:02}")).unwrap().1 = false;
        }
    }
    runs_until_caught_up(&h, &c, 6, |_, _| {}).await;
    assert_on_queue_once(&h);
}

/// A cursor moved by a build that does not know walks (its checkpoint leaves the walk as it
/// was) or by an operator's `cursor set` (which clears it): the stored walk is not continued,
/// and the run walks from the new cursor.
#[tokio::test]
async fn a_walk_stored_with_another_cursor_is_not_continued() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    poll(&h, &c, "run-0").await;
    let walk = h.cursors.walk("orders").unwrap();
    let moved = ms_to_timestamp(T0 + 40);
    let version = h.cursors.read("orders").await.unwrap().unwrap().version;
    h.cursors
        .acquire("orders", "old", Duration::from_secs(60))
        .await
        .unwrap();
    h.cursors
        .checkpoint("orders", "old", version, &moved, None, Some(&walk))
        .await
        .unwrap();
    h.cursors.release("orders", "old").await.unwrap();
    let asked_before = h.api.requests.lock().unwrap().len();
    poll(&h, &c, "run-1").await;
    let first = h.api.requests.lock().unwrap()[asked_before].clone();
    assert_eq!(
        first.1, 0,
        "went on with the other cursor's walk: {first:?}"
    );
    assert!(first.0.as_str() < moved.as_str(), "{first:?}");
}

/// Large orders: a page of 10 is too large to read, a page of 5 is fine. The smaller pages go
/// on with the walk the run continued (they used to start it from offset 0, overwriting the
/// stored progress: every run stored the same offset and the cursor never moved), and the page
/// bound is the run's, over the smaller pages too.
#[tokio::test]
async fn pages_too_large_to_read_go_on_with_a_continued_walk() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    *h.api.too_large_above.lock().unwrap() = Some(5);
    // 50 orders in pages of 5 (step 4): 12 pages, at most 3 a run.
    runs_until_caught_up(&h, &c, 12, |_, _| {}).await;
    assert_on_queue_once(&h);
}

/// A page bound of one page (`TCRELAY_POLL_MAX_PAGES=1`; a deadline leaving one page per run
/// acts the same): a continued walk asks the page after the last one relayed first, so each
/// run moves one page on (it used to fetch the stored page again and store the same offset).
#[tokio::test]
async fn a_one_page_budget_moves_a_continued_walk_a_page_a_run() {
    let h = h();
    let c = PollConfig {
        max_pages: 1,
        ..walk_config()
    };
    newest_first_backlog(&h, 30);
    // 30 orders, step 9: pages at 0, 9, 18, 27: 4 runs if each run went one page further.
    runs_until_caught_up(&h, &c, 10, |_, _| {}).await;
    assert_on_queue_once(&h);
}

/// Newest first, and between two runs 10 orders (a page) the walk has not reached yet change:
/// they move to the front and shift the stored page forward by a whole page. The continued walk
/// looks further on for a page holding an object of the stored page unchanged (it used to start
/// over from offset 0, every run, and never end).
#[tokio::test]
async fn a_page_of_changes_between_runs_does_not_restart_a_continued_walk() {
    let h = h();
    let c = walk_config();
    newest_first_backlog(&h, 50);
    let mut k = 0;
    runs_until_caught_up(&h, &c, 8, |h, _| {
        // The 10 oldest orders (the end of the newest-first order, not yet walked) change.
        let mut w = h.api.world.lock().unwrap();
        let oldest: Vec<String> = w
            .order()
            .into_iter()
            .rev()
            .take(10)
            .map(|(_, id)| id)
            .collect();
        for id in oldest {
            k += 1;
            let at = T0 + 10_000 + k;
            w.put(&id, at, order(&id, at));
        }
    })
    .await;
}

fn sent(h: &H) -> Vec<(String, String)> {
    h.sink
        .envelopes()
        .into_iter()
        .map(|e| (e.id, e.last_updated_at.unwrap_or_default()))
        .collect()
}

/// Paging inside one timestamp (a full page of `T0 + 1`): the last page of it also serves `b`
/// at `T0 + 5`, which changes before the next request. The page is relayed whole, as a page by
/// time is (docs/polling.md, step 3): only the timestamp's objects were, and `b`'s served
/// state never reached the queue.
#[tokio::test]
async fn the_last_page_inside_a_timestamp_is_relayed_whole() {
    let h = h();
    let c = PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        page_limit: 10,
        ..PollConfig::default()
    };
    {
        let mut w = h.api.world.lock().unwrap();
        for i in 0..15 {
            let id = format!("t{i:02}");
            w.put(&id, T0 + 1, order(&id, T0 + 1));
        }
        w.put("b", T0 + 5, order("b", T0 + 5));
    }
    *h.api.hook.lock().unwrap() = Some(Box::new(|w: &mut World, served, _| {
        if served == 2 {
            w.put("b", T0 + 100, order("b", T0 + 100));
        }
    }));
    let s = poll(&h, &c, "run-1").await;
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    let served = ("b".to_owned(), ms_to_timestamp(T0 + 5));
    assert!(
        sent(&h).contains(&served),
        "{served:?} was served on the tie's last page and is not on the queue: {:?}",
        sent(&h)
    );
}

/// Answers in id order; orders `a01`..`a19` were created one after the other (ids and times in
/// step), `z` changed at `T0 + 15`. The run pages by time through pages sorted by chance, and
/// the move past its last page (page bound 2; a deadline does the same) is one no later page's
/// `total` checked: it is not stored (it used to be, past `z`, which no page showed, and no run
/// asked for `z` again). And the run that found the skip with no page left stores a walk to
/// begin, so the next run walks instead of finding it again.
#[tokio::test]
async fn a_move_by_time_no_page_checked_is_not_stored() {
    let h = h();
    let c = PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        page_limit: 10,
        max_pages: 2,
        ..PollConfig::default()
    };
    {
        let mut w = h.api.world.lock().unwrap();
        w.by_id = true;
        for i in 1..20 {
            let id = format!("a{i:02}");
            w.put(&id, T0 + i, order(&id, T0 + i));
        }
        w.put("z", T0 + 15, order("z", T0 + 15));
    }
    let s = poll(&h, &c, "run-1").await;
    assert_eq!(s.stop, Some(StopReason::MaxPages));
    let cursor = h.cursors.value("orders").unwrap();
    runs_until_caught_up(&h, &c, 5, |_, _| {}).await;
    let z = ("z".to_owned(), ms_to_timestamp(T0 + 15));
    assert!(
        sent(&h).contains(&z),
        "run-1 stopped on its page bound with the cursor at {cursor}; {z:?}, which no page \
         showed, is not on the queue"
    );
}

/// A page bound of one page on pages in time order: each run moves by time one page, stored
/// once one more request's `total` allows it (without that request no move would ever be
/// stored: every run's only page ends with an unchecked move).
#[tokio::test]
async fn a_one_page_bound_still_moves_by_time() {
    let h = h();
    let c = PollConfig {
        max_pages: 1,
        ..walk_config()
    };
    {
        let mut w = h.api.world.lock().unwrap();
        for i in 0..30 {
            let id = format!("o{i:02}");
            w.put(&id, T0 + 1 + i, order(&id, T0 + 1 + i));
        }
    }
    let runs = runs_until_caught_up(&h, &c, 6, |_, _| {}).await;
    assert!(runs >= 3, "{runs}");
    assert_on_queue_once(&h);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 30)));
}

/// A page bound of one page on pages sorted by chance (answers in id order, `z` hidden between
/// them): the extra request's `total` shows the skip, the run stores a walk to begin, and the
/// next runs walk the set a page at a time instead of paging by time into it again.
#[tokio::test]
async fn a_one_page_bound_on_pages_sorted_by_chance_walks() {
    let h = h();
    let c = PollConfig {
        max_pages: 1,
        ..walk_config()
    };
    {
        let mut w = h.api.world.lock().unwrap();
        w.by_id = true;
        for i in 1..30 {
            let id = format!("a{i:02}");
            w.put(&id, T0 + i, order(&id, T0 + i));
        }
        w.put("z", T0 + 15, order("z", T0 + 15));
    }
    let mut walked = false;
    runs_until_caught_up(&h, &c, 12, |h, _| {
        walked |= h.cursors.walk("orders").is_some();
    })
    .await;
    assert!(walked, "no run stored a walk");
    assert_on_queue_once(&h);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 29)));
}
