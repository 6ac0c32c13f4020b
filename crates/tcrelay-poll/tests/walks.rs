//! The poll loop against a Tradecloud that orders its answers in its own way (newest first) and
//! whose objects can leave the result set (a status filter): the cases the scripted world of
//! `run.rs` cannot play.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use tcrelay_core::ports::ApiError;
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
