//! Helpers shared by the acceptance tests: the simulator, the real client against it, light
//! in-memory ports, and checks of "exactly once".

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tcrelay_core::envelope::Envelope;
use tcrelay_core::ports::{ApiError, EventSink, SinkError};
use tcrelay_core::testing::MemoryDedupe;
use tcrelay_poll::testing::MemoryCursorStore;
pub use tcrelay_poll::testing::PagesOfTime;
use tcrelay_poll::{PageRequest, PollApi, PollConfig, PollPorts, PollStream, PolledPage};
use tcrelay_tradecloud::ClientPollApi;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};
use tradecloud_sim::{SimConfig, Simulator, WorldConfig};

/// The first run's start: before the simulator's world begins (2025-01-06).
pub const START: &str = "2025-01-01T00:00:00.000Z";

/// A simulator with `orders` and `shipments` initial objects of few lines.
pub async fn simulator(world: WorldConfig) -> Simulator {
    Simulator::start(SimConfig {
        world,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A small world: `orders`, `shipments`, at most 4 lines each.
pub fn world(seed: u64, orders: usize, shipments: usize) -> WorldConfig {
    WorldConfig {
        seed,
        initial_orders: orders,
        initial_shipments: shipments,
        max_lines: 4,
        ..WorldConfig::default()
    }
}

/// Client settings for tests: short timeouts and back-off; `per_second` requests per second.
pub fn client_config(sim: &Simulator, per_second: u32) -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(1500),
        retry_budget: Duration::from_secs(6),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        max_requests_per_second: per_second,
        ..ClientConfig::new(
            sim.base_url(),
            Credentials::new(sim.username(), sim.password()),
        )
    }
}

/// The real HTTP client against the simulator, as the poll loop's API.
pub fn api(sim: &Simulator, per_second: u32) -> ClientPollApi {
    ClientPollApi(TradecloudClient::new(client_config(sim, per_second)).expect("client"))
}

/// A poll configuration for `streams` from [`START`].
pub fn config(streams: &[PollStream]) -> PollConfig {
    PollConfig {
        streams: streams.to_vec(),
        start: Some(START.into()),
        ..PollConfig::default()
    }
}

/// One relayed state: (kind, id, lastUpdatedAt).
pub type State = (String, String, String);

/// A sink that keeps only what identifies each envelope (the volume test sends thousands),
/// and can fail on its `fail_on`-th call.
#[derive(Default)]
pub struct KeySink {
    states: Mutex<Vec<State>>,
    envelopes: Mutex<Vec<Envelope>>,
    keep_envelopes: bool,
    calls: AtomicUsize,
    fail_on: Option<usize>,
}

impl KeySink {
    /// Keeps identities only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps whole envelopes as well.
    pub fn keeping_envelopes() -> Self {
        Self {
            keep_envelopes: true,
            ..Self::default()
        }
    }

    /// Fails its `call`-th enqueue (1-based), every envelope of it.
    pub fn failing_on(call: usize) -> Self {
        Self {
            fail_on: Some(call),
            ..Self::default()
        }
    }

    /// Everything enqueued.
    pub fn states(&self) -> Vec<State> {
        self.states.lock().unwrap().clone()
    }

    /// Whole envelopes (when keeping them).
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.envelopes.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventSink for KeySink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_on == Some(call) {
            return Err(SinkError {
                failed: (0..envelopes.len()).collect(),
                reason: "fake queue down".into(),
            });
        }
        let mut states = self.states.lock().unwrap();
        for e in envelopes {
            states.push((
                e.kind.object_class().as_str().to_owned(),
                e.id.clone(),
                e.last_updated_at.clone().unwrap_or_default(),
            ));
        }
        if self.keep_envelopes {
            self.envelopes.lock().unwrap().extend_from_slice(envelopes);
        }
        Ok(())
    }
}

/// A PollApi wrapper that records the requests it passes on.
pub struct Recording<A> {
    pub inner: A,
    pub requests: Mutex<Vec<PageRequest>>,
}

impl<A> Recording<A> {
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            requests: Mutex::new(Vec::new()),
        }
    }

    pub fn requests(&self) -> Vec<PageRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl<A: PollApi> PollApi for Recording<A> {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        self.requests.lock().unwrap().push(request.clone());
        self.inner.fetch_page(request).await
    }
}

/// In-memory ports around `api`.
pub struct MemoryPorts {
    pub ports: PollPorts,
    pub sink: Arc<KeySink>,
    pub dedupe: Arc<MemoryDedupe>,
    pub cursors: Arc<MemoryCursorStore>,
}

pub fn memory_ports(api: Arc<dyn PollApi>, sink: KeySink) -> MemoryPorts {
    let sink = Arc::new(sink);
    let dedupe = Arc::new(MemoryDedupe::default());
    let cursors = Arc::new(MemoryCursorStore::new());
    MemoryPorts {
        ports: PollPorts {
            api,
            cursors: cursors.clone(),
            dedupe: dedupe.clone(),
            sink: sink.clone(),
        },
        sink,
        dedupe,
        cursors,
    }
}

/// No state enqueued twice.
pub fn assert_no_state_twice(states: &[State]) {
    let mut seen = HashSet::new();
    let twice: Vec<&State> = states.iter().filter(|s| !seen.insert(*s)).collect();
    assert!(twice.is_empty(), "enqueued twice: {twice:?}");
}

/// Every current object state of `class` ("order" or "shipment") in the simulator was enqueued.
pub fn assert_current_states_enqueued(sim: &Simulator, class: &str, states: &[State]) {
    let sent: HashSet<&State> = states.iter().collect();
    let missing: Vec<State> = sim
        .objects()
        .into_iter()
        .filter(|o| o.class == class)
        .map(|o| (o.class, o.id, o.last_updated_at))
        .filter(|s| !sent.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} {class} states never enqueued, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// The newest `lastUpdatedAt` of the simulator's objects of `class`.
pub fn newest(sim: &Simulator, class: &str) -> Option<String> {
    let mut times: HashMap<i64, String> = HashMap::new();
    for o in sim.objects().into_iter().filter(|o| o.class == class) {
        let at = tradecloud_model::timestamp::parse(&o.last_updated_at).unwrap();
        times.insert(at.timestamp_millis(), o.last_updated_at);
    }
    times.keys().max().map(|k| times[k].clone())
}
