//! The poll loop against a Tradecloud that orders its answers in its own way (newest first) and
//! whose objects can leave the result set (a status filter): the cases the scripted world of
//! `run.rs` cannot play; and walks of such answers too large for one run.

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
}

impl World {
    fn put(&mut self, id: &str, at: i64, value: Value) {
        self.objects.insert(id.to_owned(), (at, true, value));
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
}

#[async_trait]
impl PollApi for Api {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
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

/// Polls until a run catches up, at most `runs` runs, each within the page bound; the runs it
/// took.
async fn poll_until_caught_up(h: &H, c: &PollConfig, runs: u32) -> u32 {
    for run in 1..=runs {
        let s = poll(h, c, &format!("run-{run}")).await;
        assert!(s.pages <= c.max_pages, "run-{run}: {s:?}");
        if s.stop == Some(StopReason::CaughtUp) {
            return run;
        }
    }
    panic!(
        "not caught up after {runs} runs; cursor {:?}, walk {:?}",
        h.cursors.value("orders"),
        h.cursors.walk("orders")
    );
}

/// Every (id, lastUpdatedAt) on the queue, each once, and each of `states` among them.
fn assert_on_queue_once(h: &H, states: &[(String, String)]) {
    let mut sent: Vec<(String, String)> = h
        .sink
        .envelopes()
        .into_iter()
        .map(|e| (e.id, e.last_updated_at.unwrap_or_default()))
        .collect();
    sent.sort();
    let before = sent.len();
    sent.dedup();
    assert_eq!(sent.len(), before, "a state went out twice: {sent:?}");
    for state in states {
        assert!(sent.contains(state), "{state:?} is not on the queue");
    }
}

fn open_states(h: &H) -> Vec<(String, String)> {
    h.api
        .world
        .lock()
        .unwrap()
        .objects
        .iter()
        .filter(|(_, (_, open, _))| *open)
        .map(|(id, (at, _, _))| (id.clone(), ms_to_timestamp(*at)))
        .collect()
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
    let runs = poll_until_caught_up(&h, &c, 4).await;
    assert!(runs <= 3, "{runs} more runs");
    assert_eq!(
        h.cursors.walk("orders"),
        None,
        "an ended walk is still stored"
    );
    assert_eq!(h.cursors.window_start("orders"), None);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 50)));
    assert_on_queue_once(&h, &open_states(&h));
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
    poll_until_caught_up(&h, &c, 6).await;
    let mut states = open_states(&h);
    states.extend(served_then);
    assert_on_queue_once(&h, &states);
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
    poll_until_caught_up(&h, &c, 6).await;
    assert_on_queue_once(&h, &open_states(&h));
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
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    *h.api.hook.lock().unwrap() = Some(Box::new(move |_: &mut World, _, r: &PageRequest| {
        seen.lock()
            .unwrap()
            .push((r.last_updated.clone(), r.offset));
    }));
    poll(&h, &c, "run-1").await;
    let first = requests.lock().unwrap()[0].clone();
    assert_eq!(
        first.1, 0,
        "went on with the other cursor's walk: {first:?}"
    );
    assert!(first.0.as_str() < moved.as_str(), "{first:?}");
}
