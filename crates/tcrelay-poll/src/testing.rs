//! In-memory fakes for tests (feature `testing`): a cursor store with leases and a scripted
//! Tradecloud poll API whose world can change between pages.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tcrelay_core::ports::{ApiError, Cursor, CursorStore, StoreError};
use tradecloud_model::timestamp;

use crate::api::{EndpointMode, PageRequest, PollApi, PollStream, PolledPage};
use crate::run::Deadline;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not poison the fake for the assertions that follow.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Default)]
struct CursorRecord {
    value: Option<String>,
    version: u64,
    window_start: Option<String>,
    walk: Option<String>,
    lease: Option<(String, DateTime<Utc>)>,
}

/// A [`CursorStore`] in memory with the DynamoDB adapter's semantics: leases per owner with an
/// expiry, live up to and including it; checkpoints conditional on version and lease owner only
/// (an owner whose lease ran out may checkpoint until another run takes it over), never creating
/// a stream.
#[derive(Debug, Default)]
pub struct MemoryCursorStore {
    records: Mutex<HashMap<String, CursorRecord>>,
    checkpoints: Mutex<Vec<(String, String, String)>>,
    down: Mutex<bool>,
    /// Where [`MemoryCursorStore::advance`] stopped the clock; the system clock until then.
    stopped_at: Mutex<Option<DateTime<Utc>>>,
}

impl MemoryCursorStore {
    /// An empty, working store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every successful checkpoint as (stream, owner, value), in order.
    pub fn checkpoints(&self) -> Vec<(String, String, String)> {
        lock(&self.checkpoints).clone()
    }

    /// The stored window start of `stream` ([`Cursor::window_start`]).
    pub fn window_start(&self, stream: &str) -> Option<String> {
        lock(&self.records)
            .get(stream)
            .and_then(|r| r.window_start.clone())
    }

    /// The stored walk of `stream` ([`Cursor::walk`]).
    pub fn walk(&self, stream: &str) -> Option<String> {
        lock(&self.records).get(stream).and_then(|r| r.walk.clone())
    }

    /// The stored cursor value of `stream`.
    pub fn value(&self, stream: &str) -> Option<String> {
        lock(&self.records)
            .get(stream)
            .and_then(|r| r.value.clone())
    }

    /// Makes every call fail as unavailable (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        *lock(&self.down) = down;
    }

    /// Stops the store's clock (leases are compared with it) and moves it on by `by`, so tests
    /// step over a lease's expiry without sleeping. Until the first call the store runs on the
    /// system clock; after it, time stands still but for further calls.
    pub fn advance(&self, by: Duration) {
        let mut stopped_at = lock(&self.stopped_at);
        let now = stopped_at.unwrap_or_else(Utc::now);
        *stopped_at = Some(later(now, by));
    }

    fn now(&self) -> DateTime<Utc> {
        lock(&self.stopped_at).unwrap_or_else(Utc::now)
    }

    fn check(&self) -> Result<(), StoreError> {
        if *lock(&self.down) {
            Err(StoreError::Unavailable("fake cursor store is down".into()))
        } else {
            Ok(())
        }
    }
}

/// `at + by`, saturating at the end of time (a lease of `Duration::MAX` never ends).
fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn cursor_of(record: &CursorRecord) -> Cursor {
    Cursor {
        value: record.value.clone(),
        version: record.version,
        window_start: record.window_start.clone(),
        walk: record.walk.clone(),
    }
}

#[async_trait]
impl CursorStore for MemoryCursorStore {
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<Cursor>, StoreError> {
        self.check()?;
        let now = self.now();
        let mut records = lock(&self.records);
        let record = records.entry(stream.to_owned()).or_default();
        if let Some((holder, until)) = &record.lease
            && holder != owner
            && *until >= now
        {
            return Ok(None);
        }
        record.lease = Some((owner.to_owned(), later(now, lease_for)));
        Ok(Some(cursor_of(record)))
    }

    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<Cursor, StoreError> {
        self.check()?;
        let mut records = lock(&self.records);
        let Some(record) = records.get_mut(stream) else {
            return Err(StoreError::Conflict(format!("{stream} was never acquired")));
        };
        // Like DynamoDB's condition: the owner, not the lease's expiry.
        let holds = record
            .lease
            .as_ref()
            .is_some_and(|(holder, _)| holder == owner);
        if !holds {
            return Err(StoreError::Conflict(format!(
                "{owner} does not hold the lease"
            )));
        }
        if record.version != expected_version {
            return Err(StoreError::Conflict(format!(
                "version is {}, not {expected_version}",
                record.version
            )));
        }
        record.value = Some(value.to_owned());
        record.window_start = window_start.map(str::to_owned);
        record.walk = walk.map(str::to_owned);
        record.version += 1;
        lock(&self.checkpoints).push((stream.to_owned(), owner.to_owned(), value.to_owned()));
        Ok(cursor_of(record))
    }

    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        self.check()?;
        let now = self.now();
        let mut records = lock(&self.records);
        match records.get_mut(stream).and_then(|r| r.lease.as_mut()) {
            Some((holder, until)) if holder == owner => {
                *until = later(now, lease_for);
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "{owner} does not hold the lease of {stream}"
            ))),
        }
    }

    async fn release(&self, stream: &str, owner: &str) -> Result<(), StoreError> {
        self.check()?;
        let mut records = lock(&self.records);
        if let Some(record) = records.get_mut(stream)
            && record
                .lease
                .as_ref()
                .is_some_and(|(holder, _)| holder == owner)
        {
            record.lease = None;
        }
        Ok(())
    }

    async fn read(&self, stream: &str) -> Result<Option<Cursor>, StoreError> {
        self.check()?;
        Ok(lock(&self.records).get(stream).map(cursor_of))
    }

    async fn set(&self, stream: &str, value: &str) -> Result<Cursor, StoreError> {
        self.check()?;
        let mut records = lock(&self.records);
        let record = records.entry(stream.to_owned()).or_default();
        record.value = Some(value.to_owned());
        record.window_start = None;
        record.walk = None;
        record.version += 1;
        Ok(cursor_of(record))
    }
}

#[cfg(test)]
mod conformance {
    //! The memory store against the `CursorStore` contract every adapter is held to.

    use std::time::Duration;

    use tcrelay_core::conformance::cursor_store::Subject;
    use tcrelay_core::ports::CursorStore;

    use super::MemoryCursorStore;

    impl Subject for MemoryCursorStore {
        fn store(&self) -> &dyn CursorStore {
            self
        }

        fn advance(&self, by: Duration) {
            MemoryCursorStore::advance(self, by);
        }
    }

    async fn subject() -> MemoryCursorStore {
        let store = MemoryCursorStore::new();
        // Stopped from the start, so a lease's expiry is exactly where the contract steps.
        store.advance(Duration::ZERO);
        store
    }

    tcrelay_core::cursor_store_conformance!(subject());
}

/// `YYYY-MM-DDThh:mm:ss.SSSZ` of epoch milliseconds.
pub fn ms_to_timestamp(ms: i64) -> String {
    timestamp::format(DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// An order as polled: `lines` are `(line id, line lastUpdatedAt ms, processStatus,
/// inProgressStatus)`.
pub fn order_json(
    id: &str,
    version: u64,
    at_ms: i64,
    lines: &[(&str, i64, &str, Option<&str>)],
) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(line_id, line_ms, process, in_progress)| {
            let mut status = json!({"processStatus": process});
            if let Some(p) = in_progress {
                status["inProgressStatus"] = json!(p);
            }
            json!({"id": line_id, "lastUpdatedAt": ms_to_timestamp(*line_ms), "status": status,
                   "buyerLine": {"position": line_id}})
        })
        .collect();
    json!({"id": id, "version": version, "lastUpdatedAt": ms_to_timestamp(at_ms),
           "buyerOrder": {"purchaseOrderNumber": format!("PO-{id}")}, "lines": lines})
}

/// A shipment as polled, one line changed with it.
pub fn shipment_json(id: &str, at_ms: i64) -> Value {
    let at = ms_to_timestamp(at_ms);
    json!({"id": id, "meta": {"lastUpdatedAt": at},
           "lines": [{"purchaseOrderNumber": "PO-1", "purchaseOrderLinePosition": "1",
                      "meta": {"lastUpdatedAt": at}}]})
}

/// A hook run after each page is served, to change the world while a client pages.
pub type BetweenPages = Box<dyn FnMut(&mut ScriptedWorld, usize) + Send>;

/// The objects of a [`ScriptedPollApi`], per stream, by id.
#[derive(Debug, Default, Clone)]
pub struct ScriptedWorld {
    objects: HashMap<PollStream, HashMap<String, (i64, Value)>>,
    /// Answer in id order instead of by `lastUpdatedAt` (stable between requests).
    pub unsorted: bool,
    /// `lastUpdatedAfter` includes objects at exactly that time.
    pub inclusive_after: bool,
}

impl ScriptedWorld {
    /// Adds or replaces an object; `at_ms` must match its `lastUpdatedAt`.
    pub fn put(&mut self, stream: PollStream, id: &str, at_ms: i64, value: Value) {
        self.objects
            .entry(stream)
            .or_default()
            .insert(id.to_owned(), (at_ms, value));
    }

    /// Every (id, lastUpdatedAt) of a stream's current objects.
    pub fn states(&self, stream: PollStream) -> Vec<(String, String)> {
        let mut states: Vec<(String, String)> = self
            .objects
            .get(&stream)
            .map(|m| {
                m.iter()
                    .map(|(id, (ms, _))| (id.clone(), ms_to_timestamp(*ms)))
                    .collect()
            })
            .unwrap_or_default();
        states.sort();
        states
    }

    /// The newest `lastUpdatedAt` of a stream.
    pub fn newest(&self, stream: PollStream) -> Option<String> {
        self.objects
            .get(&stream)?
            .values()
            .map(|(ms, _)| *ms)
            .max()
            .map(ms_to_timestamp)
    }

    fn page(&self, request: &PageRequest) -> PolledPage {
        let after = timestamp::parse(&request.last_updated)
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MIN);
        let inclusive = request.mode == EndpointMode::Search || self.inclusive_after;
        let mut matches: Vec<(&i64, &String, &Value)> = self
            .objects
            .get(&request.stream)
            .map(|m| {
                m.iter()
                    .filter(|(_, (ms, _))| if inclusive { *ms >= after } else { *ms > after })
                    .map(|(id, (ms, v))| (ms, id, v))
                    .collect()
            })
            .unwrap_or_default();
        // lastUpdatedAt ascending, then id: a stable order inside one millisecond.
        if self.unsorted {
            matches.sort_by(|a, b| a.1.cmp(b.1));
        } else {
            matches.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
        }
        let total = matches.len() as u64;
        let items: Vec<Value> = matches
            .into_iter()
            .skip(request.offset as usize)
            .take(request.limit as usize)
            .map(|(_, _, v)| v.clone())
            .collect();
        let last_updated_at = items
            .last()
            .and_then(|v| v.get("lastUpdatedAt").or(v.pointer("/meta/lastUpdatedAt")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        PolledPage::of_values(&items, Some(total), last_updated_at)
    }
}

/// A [`PollApi`] serving a [`ScriptedWorld`] with Tradecloud's paging semantics, with
/// scripted failures and an optional hook that changes the world after each page.
#[derive(Default)]
pub struct ScriptedPollApi {
    world: Mutex<ScriptedWorld>,
    failures: Mutex<VecDeque<ApiError>>,
    always_fail: Mutex<bool>,
    between_pages: Mutex<Option<BetweenPages>>,
    requests: Mutex<Vec<PageRequest>>,
}

impl std::fmt::Debug for ScriptedPollApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPollApi").finish_non_exhaustive()
    }
}

impl ScriptedPollApi {
    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the world.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut ScriptedWorld) -> R) -> R {
        f(&mut lock(&self.world))
    }

    /// The next calls fail with these errors, one each.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = ApiError>) {
        lock(&self.failures).extend(errors);
    }

    /// Every call fails as unreachable (`true`) or works again.
    pub fn set_unreachable(&self, down: bool) {
        *lock(&self.always_fail) = down;
    }

    /// Runs `hook(world, pages served so far)` after each page served.
    pub fn set_between_pages(&self, hook: Option<BetweenPages>) {
        *lock(&self.between_pages) = hook;
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<PageRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl PollApi for ScriptedPollApi {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        let served = {
            let mut requests = lock(&self.requests);
            requests.push(request.clone());
            requests.len()
        };
        if *lock(&self.always_fail) {
            return Err(ApiError::Unavailable(
                "scripted Tradecloud is unreachable".into(),
            ));
        }
        if let Some(error) = lock(&self.failures).pop_front() {
            return Err(error);
        }
        let mut world = lock(&self.world);
        let page = world.page(request);
        if let Some(hook) = lock(&self.between_pages).as_mut() {
            hook(&mut world, served);
        }
        Ok(page)
    }
}

/// A deadline with plenty of time for `n` checks (about one per page), then less than any
/// margin: a run stopped by its deadline after `n` pages.
#[derive(Debug)]
pub struct PagesOfTime(pub AtomicUsize);

impl Deadline for PagesOfTime {
    fn remaining(&self) -> Option<Duration> {
        if self.0.load(Ordering::SeqCst) == 0 {
            return Some(Duration::from_millis(1));
        }
        self.0.fetch_sub(1, Ordering::SeqCst);
        Some(Duration::from_secs(600))
    }
}
