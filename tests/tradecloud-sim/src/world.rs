//! The simulated world: companies, orders and shipments that change along Tradecloud's flows.
//!
//! Everything here is driven by one seeded ChaCha generator and a simulated clock, never by the
//! wall clock, so a seed reproduces the same world and the same sequence of changes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::util::{date_plus_days, dec2, format_ms, pick, seeded_uuid};

/// How the seeded world is generated and how it changes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct WorldConfig {
    /// Seed of every random choice in the world; the same seed gives the same world and changes.
    pub seed: u64,
    /// Simulated time of the first change; `lastUpdatedAt` values count up from here.
    pub start_time: DateTime<Utc>,
    /// Orders issued before the server starts answering.
    pub initial_orders: usize,
    /// Shipments issued before the server starts answering.
    pub initial_shipments: usize,
    /// Upper bound of lines per order (Tradecloud allows 500); most orders stay small.
    pub max_lines: usize,
    /// Largest step of simulated time between two actions, in milliseconds.
    pub max_step_ms: u64,
    /// Probability that an action lands on the same millisecond as the previous one (on
    /// another object), which is what makes ties on `lastUpdatedAt` across objects.
    pub same_millisecond_probability: f64,
    /// Probability that a supplier response mixes outcomes (some lines accepted, others rejected
    /// or proposed), which emits several events at one `lastUpdatedAt`.
    pub mixed_response_probability: f64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            start_time: Utc
                .with_ymd_and_hms(2025, 1, 6, 8, 0, 0)
                .single()
                .unwrap_or_default(),
            initial_orders: 20,
            initial_shipments: 3,
            max_lines: 500,
            max_step_ms: 90_000,
            same_millisecond_probability: 0.05,
            mixed_response_probability: 0.3,
        }
    }
}

/// Which webhook integration an event belongs to.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An order event (`orderEvent` or `singleDeliveryOrderEvent`).
    Order,
    /// An order documents event (`orderDocumentsEvent`).
    OrderDocuments,
    /// A shipment event (`shipment`).
    Shipment,
}

/// One event of the ground truth: what changed, as Tradecloud would announce it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Position in the world's history, from 0.
    pub seq: u64,
    /// The integration that announces the event.
    pub kind: EventKind,
    /// Order id or shipment id.
    pub id: String,
    /// The object's version after the change (orders count every change; shipments likewise,
    /// although Tradecloud does not publish a shipment version).
    pub version: u64,
    /// The object's `lastUpdatedAt` after the change.
    pub last_updated_at: String,
    /// Tradecloud's event name.
    pub event_name: String,
    /// `meta.messageId` of the event.
    pub message_id: String,
    /// Ids of the order lines the event carries (empty for shipments and document events).
    pub line_ids: Vec<String>,
    /// Whether the change moved the object's state (resend events do not).
    pub state_changed: bool,
    #[serde(skip)]
    pub(crate) payload: Arc<Payload>,
}

/// The event objects rendered when the change happened, before later changes move the state.
#[derive(Debug)]
pub(crate) struct Payload {
    /// `orderEvent`, `orderDocumentsEvent` or `shipment` object.
    pub(crate) event: Value,
    /// `singleDeliveryOrderEvent` object, for order events.
    pub(crate) single_delivery: Option<Value>,
}

impl Change {
    /// The webhook body Tradecloud posts for this change: `{"eventName", "<eventKey>": {...}}`.
    /// `single_delivery` selects the single-delivery order form (ignored for other kinds).
    pub fn webhook_body(&self, single_delivery: bool) -> Value {
        let (key, event) = match (self.kind, single_delivery, &self.payload.single_delivery) {
            (EventKind::Order, true, Some(sd)) => ("singleDeliveryOrderEvent", sd),
            (EventKind::Order, _, _) => ("orderEvent", &self.payload.event),
            (EventKind::OrderDocuments, _, _) => ("orderDocumentsEvent", &self.payload.event),
            (EventKind::Shipment, _, _) => ("shipment", &self.payload.event),
        };
        let mut body = Map::new();
        body.insert("eventName".into(), Value::String(self.event_name.clone()));
        body.insert(key.into(), event.clone());
        Value::Object(body)
    }
}

/// The current state of one object, as the ground truth sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectState {
    /// `order` or `shipment`.
    pub class: String,
    /// Order or shipment id.
    pub id: String,
    /// Current version.
    pub version: u64,
    /// Current `lastUpdatedAt`.
    pub last_updated_at: String,
}

/// Which order shape to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderForm {
    /// Delivery schedules per line (`orderEvent`, `/order-search/poll`, `GET /order/{id}`).
    Schedule,
    /// One delivery per line in `statusLine` (`singleDeliveryOrderEvent`, `/poll/single-delivery`).
    SingleDelivery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Buyer,
    Supplier,
}

struct Company {
    id: String,
    party_id: String,
    names: Vec<String>,
    street: String,
    postal_code: String,
    city: &'static str,
    country_iso2: &'static str,
    country_name: &'static str,
    account_number: String,
    user_id: String,
    email: String,
}

#[derive(Clone)]
struct Delivery {
    position: String,
    date: String,
    quantity: i64,
}

#[derive(Clone)]
struct Terms {
    schedule: Vec<Delivery>,
    price: i64,
}

#[derive(Clone)]
struct Meta {
    message_id: String,
    created_ms: i64,
    trace_id: String,
    user_id: String,
    company_id: String,
}

struct Document {
    code: String,
    name: String,
    object_id: String,
    by: Actor,
}

struct Line {
    id: String,
    position: String,
    original_position: Option<String>,
    description: String,
    item_number: String,
    item_name: String,
    unit: &'static str,
    currency: &'static str,
    current: Terms,
    requested: Option<Terms>,
    confirmed: Option<Terms>,
    process: &'static str,
    in_progress: Option<&'static str>,
    logistics: &'static str,
    overdue: bool,
    sales_order_position: Option<String>,
    last_updated_ms: i64,
}

struct Order {
    id: String,
    po: String,
    buyer: usize,
    supplier: usize,
    description: String,
    destination: usize,
    sales_order_number: Option<String>,
    lines: Vec<Line>,
    documents: Vec<Document>,
    version: u64,
    last_updated_ms: i64,
    meta: Meta,
    next_position: u32,
}

struct ShipLine {
    po: String,
    po_position: String,
    schedule_position: String,
    item_number: String,
    item_name: String,
    unit: &'static str,
    despatch_position: String,
    quantity: i64,
    in_carrier: bool,
    last_updated_ms: i64,
}

struct Shipment {
    id: String,
    number: String,
    despatch_advice: String,
    buyer: usize,
    supplier: usize,
    bill_of_lading: Option<String>,
    carrier_number: String,
    transport_mode: &'static str,
    container: String,
    lines: Vec<ShipLine>,
    documents: Vec<(Document, i64)>,
    status: &'static str,
    reason: Option<String>,
    etd_days: i64,
    destination: usize,
    version: u64,
    last_updated_ms: i64,
    message_id: String,
}

/// A seeded world of orders and shipments and the history of every change made to it.
pub struct World {
    config: WorldConfig,
    rng: ChaCha8Rng,
    now_ms: i64,
    buyers: Vec<Company>,
    suppliers: Vec<Company>,
    orders: Vec<Order>,
    order_index: HashMap<String, usize>,
    shipments: Vec<Shipment>,
    shipment_index: HashMap<String, usize>,
    changes: Vec<Change>,
    next_po: u64,
    next_shipment: u64,
}

const CITIES: &[(&str, &str, &str)] = &[
    ("Rotterdam", "NL", "The Netherlands"),
    ("Delft", "NL", "The Netherlands"),
    ("Eindhoven", "NL", "The Netherlands"),
    ("Antwerpen", "BE", "Belgium"),
    ("Duisburg", "DE", "Germany"),
    ("Lyon", "FR", "France"),
];
const BUYER_NAMES: &[&str] = &["Blue Corp.", "Harbour Machines B.V.", "Polder Systems"];
const SUPPLIER_NAMES: &[&str] = &[
    "Supplier B.V.",
    "Steel & Tube GmbH",
    "Precision Parts Ltd",
    "Fasteners Europe",
    "Cable Works S.A.",
];
const ITEMS: &[(&str, &str)] = &[
    ("Round tube ø60x45", "PCE"),
    ("Hex bolt M12x40", "PCE"),
    ("Copper cable 3x2.5", "MTR"),
    ("Steel plate 2mm", "KGM"),
    ("Bearing 6204-2RS", "PCE"),
    ("Hydraulic oil ISO 46", "LTR"),
];
const TRANSPORT_MODES: &[&str] = &["Road transport", "Maritime transport", "Air transport"];
const DESTINATIONS: &[(&str, &str)] = &[("001", "Main Warehouse"), ("002", "Assembly Hall")];

/// Order event names the world emits, for tests that select events.
pub const ORDER_EVENT_NAMES: &[&str] = &[
    "OrderIssuedByBuyer",
    "OrderLinesIssuedByBuyer",
    "OrderLinesReissuedByBuyer",
    "OrderLinesUpdatedByBuyer",
    "OrderLinesAcceptedBySupplier",
    "OrderLinesRejectedBySupplier",
    "OrderLinesConfirmedByBuyer",
    "OrderChangesProposedBySupplier",
    "OrderChangesProposalApprovedByBuyer",
    "OrderChangesProposalRejectedByBuyer",
    "OrderLinesReopenRequestedByBuyer",
    "OrderLinesReopenRequestApprovedBySupplier",
    "OrderLinesReopenRequestRejectedBySupplier",
    "OrderLinesCancelledByBuyer",
    "CancelledOrderLinesRevertedByBuyer",
    "OrderLinesCompletedByBuyer",
    "CompletedOrderLinesRevertedByBuyer",
    "OrderLinesDeliveryScheduleLogisticsUpdatedBySupplier",
    "OrderLinesMarkedAsDeliveredByBuyer",
    "OrderResentByBuyer",
];

#[derive(Clone, Copy, Debug)]
enum OrderAction {
    SupplierResponds,
    BuyerCancels,
    BuyerConfirms,
    BuyerUpdates,
    BuyerReissues,
    ProposalDecision,
    ReissueReturned,
    BuyerReopens,
    ReopenDecision,
    LogisticsUpdate,
    MarkDelivered,
    Complete,
    RevertCancelled,
    RevertCompleted,
    AddLines,
    Resend,
    AttachDocuments,
}

/// Events of one action: event name, indexes of the lines it carries.
type Events = Vec<(&'static str, Vec<usize>)>;

impl World {
    /// Generates the initial world from the configuration (the initial orders and shipments are
    /// part of the history, as `OrderIssuedByBuyer` / `ShipmentIssuedBySupplier` changes).
    pub fn new(config: WorldConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let buyers = (0..2)
            .map(|i| Self::company(&mut rng, BUYER_NAMES[i % BUYER_NAMES.len()], "buyer", i))
            .collect();
        let suppliers = (0..4)
            .map(|i| {
                Self::company(
                    &mut rng,
                    SUPPLIER_NAMES[i % SUPPLIER_NAMES.len()],
                    "supplier",
                    i,
                )
            })
            .collect();
        let now_ms = config.start_time.timestamp_millis();
        let mut world = Self {
            config,
            rng,
            now_ms,
            buyers,
            suppliers,
            orders: Vec::new(),
            order_index: HashMap::new(),
            shipments: Vec::new(),
            shipment_index: HashMap::new(),
            changes: Vec::new(),
            next_po: 100_000,
            next_shipment: 1,
        };
        for _ in 0..world.config.initial_orders {
            world.tick();
            world.new_order();
        }
        for _ in 0..world.config.initial_shipments {
            world.tick();
            world.new_shipment();
        }
        world
    }

    fn company(rng: &mut ChaCha8Rng, name: &str, role: &str, i: usize) -> Company {
        let (city, iso2, country) = *pick(rng, CITIES);
        let id = seeded_uuid(rng);
        let user_id = seeded_uuid(rng);
        Company {
            party_id: format!("{}-{:04}", role.to_uppercase(), rng.random_range(1..10_000)),
            names: vec![name.to_string()],
            street: format!(
                "{} Street {}",
                role.to_uppercase(),
                rng.random_range(1..300)
            ),
            postal_code: format!("{} AB", rng.random_range(1000..9999)),
            city,
            country_iso2: iso2,
            country_name: country,
            account_number: format!("{}{}", if role == "buyer" { 34 } else { 54 }, 1000 + i),
            email: format!("{role}{i}@example.com"),
            id,
            user_id,
        }
    }

    /// The configuration the world was generated with.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Every change so far, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Current simulated time as milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Applies `count` actions and returns the changes (events) they produced; one action may
    /// produce several events at one `lastUpdatedAt`.
    pub fn advance(&mut self, count: usize) -> Vec<Change> {
        let first = self.changes.len();
        for _ in 0..count {
            self.step();
        }
        self.changes[first..].to_vec()
    }

    /// The current state of every object, orders first.
    pub fn objects(&self) -> Vec<ObjectState> {
        let orders = self.orders.iter().map(|o| ObjectState {
            class: "order".into(),
            id: o.id.clone(),
            version: o.version,
            last_updated_at: format_ms(o.last_updated_ms),
        });
        let shipments = self.shipments.iter().map(|s| ObjectState {
            class: "shipment".into(),
            id: s.id.clone(),
            version: s.version,
            last_updated_at: format_ms(s.last_updated_ms),
        });
        orders.chain(shipments).collect()
    }

    /// Ids and `lastUpdatedAt` (ms) of all orders, for the query endpoints.
    pub(crate) fn order_keys(&self) -> Vec<(i64, &str, usize)> {
        self.orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.last_updated_ms, o.id.as_str(), i))
            .collect()
    }

    /// Ids and `lastUpdatedAt` (ms) of all shipments, for the query endpoints.
    pub(crate) fn shipment_keys(&self) -> Vec<(i64, &str, usize)> {
        self.shipments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.last_updated_ms, s.id.as_str(), i))
            .collect()
    }

    /// `lastUpdatedAt` (ms) and id of one order.
    pub(crate) fn order_ms_id(&self, index: usize) -> (i64, &str) {
        let o = &self.orders[index];
        (o.last_updated_ms, o.id.as_str())
    }

    /// `lastUpdatedAt` (ms) and id of one shipment.
    pub(crate) fn shipment_ms_id(&self, index: usize) -> (i64, &str) {
        let s = &self.shipments[index];
        (s.last_updated_ms, s.id.as_str())
    }

    /// Values the search filters and sorts look at: (PO number, process status, buyer company,
    /// supplier company).
    pub(crate) fn order_facts(&self, index: usize) -> (&str, &str, &str, &str) {
        let o = &self.orders[index];
        (
            o.po.as_str(),
            order_status(o).0,
            self.buyers[o.buyer].id.as_str(),
            self.suppliers[o.supplier].id.as_str(),
        )
    }

    /// Values the shipment filters look at: (process status, buyer company, supplier company).
    pub(crate) fn shipment_facts(&self, index: usize) -> (&str, &str, &str) {
        let s = &self.shipments[index];
        (
            s.status,
            self.buyers[s.buyer].id.as_str(),
            self.suppliers[s.supplier].id.as_str(),
        )
    }

    /// Renders an order with all lines, as polled or fetched (`id`, not `orderId`).
    pub(crate) fn order_json(&self, index: usize, form: OrderForm) -> Value {
        let o = &self.orders[index];
        let all: Vec<usize> = (0..o.lines.len()).collect();
        self.render_order(o, form, "id", &all, &o.meta)
    }

    /// Finds an order by id.
    pub(crate) fn order_by_id(&self, id: &str) -> Option<usize> {
        self.order_index.get(id).copied()
    }

    /// Finds a shipment by id.
    pub(crate) fn shipment_by_id(&self, id: &str) -> Option<usize> {
        self.shipment_index.get(id).copied()
    }

    /// Renders a shipment with all lines.
    pub(crate) fn shipment_json(&self, index: usize) -> Value {
        self.render_shipment(&self.shipments[index])
    }

    /// The order with this id as fetched (`GET /order/{id}`), for tests comparing ground truth.
    pub fn order(&self, id: &str) -> Option<Value> {
        self.order_by_id(id)
            .map(|i| self.order_json(i, OrderForm::Schedule))
    }

    /// The order with this id in the single-delivery form.
    pub fn order_single_delivery(&self, id: &str) -> Option<Value> {
        self.order_by_id(id)
            .map(|i| self.order_json(i, OrderForm::SingleDelivery))
    }

    /// The shipment with this id as fetched (`GET /shipment/{id}`).
    pub fn shipment(&self, id: &str) -> Option<Value> {
        self.shipment_by_id(id).map(|i| self.shipment_json(i))
    }

    /// Moves simulated time forward before an action; sometimes not at all, so that several
    /// objects share one millisecond.
    fn tick(&mut self) {
        let p = self.config.same_millisecond_probability.clamp(0.0, 1.0);
        if self.changes.is_empty() || !self.rng.random_bool(p) {
            let max = self.config.max_step_ms.max(1);
            self.now_ms += self.rng.random_range(1..=max) as i64;
        }
    }

    /// One object never gets two different states at one millisecond: that would make two
    /// states share a state key, which Tradecloud does not do.
    fn ensure_after(&mut self, last_ms: i64) {
        if self.now_ms <= last_ms {
            self.now_ms = last_ms + 1;
        }
    }

    fn step(&mut self) {
        self.tick();
        let r: f64 = self.rng.random();
        if self.orders.is_empty() || r < 0.10 {
            self.new_order();
        } else if r < 0.16 {
            self.new_shipment();
        } else if r < 0.25 && !self.shipments.is_empty() {
            let i = self.rng.random_range(0..self.shipments.len());
            self.shipment_step(i);
        } else {
            let i = self.rng.random_range(0..self.orders.len());
            self.order_step(i);
        }
    }

    fn line_count(&mut self) -> usize {
        let max = self.config.max_lines.clamp(1, 500);
        let r: f64 = self.rng.random();
        let n = if r < 0.8 {
            self.rng.random_range(1..=5)
        } else if r < 0.97 {
            self.rng.random_range(6..=40)
        } else {
            self.rng.random_range(41..=500)
        };
        n.min(max)
    }

    fn new_line(&mut self, order_id: &str, position: u32) -> Line {
        let (name, unit) = *pick(&mut self.rng, ITEMS);
        let deliveries = if self.rng.random_bool(0.7) {
            1
        } else {
            self.rng.random_range(2..=4)
        };
        let mut day = self.rng.random_range(7..60);
        let schedule = (0..deliveries)
            .map(|d| {
                day += self.rng.random_range(0..20);
                Delivery {
                    position: format!("{:04}", d + 1),
                    date: date_plus_days(self.now_ms, day),
                    quantity: self.rng.random_range(1..500) * 100
                        + self.rng.random_range(0..4) * 25,
                }
            })
            .collect();
        Line {
            id: format!("{order_id}-{position:04}"),
            position: format!("{position:04}"),
            original_position: None,
            description: format!("{name}, line {position}"),
            item_number: format!("IT{:05}", self.rng.random_range(1..100_000)),
            item_name: name.to_string(),
            unit,
            currency: "EUR",
            current: Terms {
                schedule,
                price: self.rng.random_range(50..200_000),
            },
            requested: None,
            confirmed: None,
            process: "Issued",
            in_progress: None,
            logistics: "Open",
            overdue: false,
            sales_order_position: None,
            last_updated_ms: self.now_ms,
        }
    }

    fn new_order(&mut self) {
        let buyer = self.rng.random_range(0..self.buyers.len());
        let supplier = self.rng.random_range(0..self.suppliers.len());
        self.next_po += 1 + self.rng.random_range(0..3);
        let po = format!("PO{}", self.next_po);
        let id = format!("{}-{po}", self.buyers[buyer].id);
        let count = self.line_count();
        let lines: Vec<Line> = (1..=count as u32).map(|p| self.new_line(&id, p)).collect();
        let destination = self.rng.random_range(0..DESTINATIONS.len());
        let order = Order {
            id: id.clone(),
            po,
            buyer,
            supplier,
            description: format!("Order for {}", self.suppliers[supplier].names[0]),
            destination,
            sales_order_number: None,
            lines,
            documents: Vec::new(),
            version: 0,
            last_updated_ms: self.now_ms,
            meta: self.placeholder_meta(),
            next_position: count as u32 + 1,
        };
        self.order_index.insert(id, self.orders.len());
        self.orders.push(order);
        let index = self.orders.len() - 1;
        let all = (0..count).collect();
        self.finish_order(index, vec![("OrderIssuedByBuyer", all)], Actor::Buyer, true);
    }

    fn placeholder_meta(&self) -> Meta {
        Meta {
            message_id: String::new(),
            created_ms: self.now_ms,
            trace_id: String::new(),
            user_id: String::new(),
            company_id: String::new(),
        }
    }

    /// Indexes of lines matching a predicate.
    fn lines_where(&self, oi: usize, f: impl Fn(&Line) -> bool) -> Vec<usize> {
        self.orders[oi]
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| f(l))
            .map(|(i, _)| i)
            .collect()
    }

    /// All lines, or a random non-empty subset in line order (one action often touches a few).
    fn subset(&mut self, idxs: Vec<usize>) -> Vec<usize> {
        if idxs.len() <= 1 || self.rng.random_bool(0.5) {
            return idxs;
        }
        let mut chosen: Vec<usize> = idxs
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.5))
            .collect();
        if chosen.is_empty() {
            chosen.push(*pick(&mut self.rng, &idxs));
        }
        chosen
    }

    fn order_step(&mut self, oi: usize) {
        let issued = self.lines_where(oi, |l| l.process == "Issued");
        let proposals = self.lines_where(oi, |l| l.in_progress == Some("OpenSupplierProposal"));
        let returned = self.lines_where(oi, |l| {
            matches!(
                l.in_progress,
                Some(
                    "RejectedSupplierProposal" | "RevertedCancelledLine" | "RevertedCompletedLine"
                )
            )
        });
        let confirmed = self.lines_where(oi, |l| l.process == "Confirmed");
        let reopen = self.lines_where(oi, |l| l.in_progress == Some("OpenBuyerReopenRequest"));
        let cancelled = self.lines_where(oi, |l| l.process == "Cancelled");
        let completed = self.lines_where(oi, |l| l.process == "Completed");
        let open_logistics = self.lines_where(oi, |l| {
            l.process == "Confirmed" && matches!(l.logistics, "Open" | "Produced" | "ReadyToShip")
        });
        let shipped =
            self.lines_where(oi, |l| l.process == "Confirmed" && l.logistics == "Shipped");
        let delivered = self.lines_where(oi, |l| {
            l.process == "Confirmed" && l.logistics == "Delivered"
        });
        let unconfirmed = self.lines_where(oi, |l| {
            matches!(l.process, "Issued" | "InProgress") && l.requested.is_none()
        });

        use OrderAction as A;
        let mut options: Vec<(u32, A, Vec<usize>)> = Vec::new();
        let mut add = |w: u32, a: A, lines: &Vec<usize>| {
            if !lines.is_empty() {
                options.push((w, a, lines.clone()));
            }
        };
        add(12, A::SupplierResponds, &issued);
        add(1, A::BuyerConfirms, &issued);
        add(1, A::BuyerReissues, &issued);
        add(1, A::BuyerCancels, &unconfirmed);
        add(6, A::ProposalDecision, &proposals);
        add(4, A::ReissueReturned, &returned);
        add(2, A::BuyerReopens, &confirmed);
        add(5, A::ReopenDecision, &reopen);
        add(5, A::LogisticsUpdate, &open_logistics);
        add(4, A::MarkDelivered, &shipped);
        add(4, A::Complete, &delivered);
        add(1, A::RevertCancelled, &cancelled);
        add(1, A::RevertCompleted, &completed);
        let all: Vec<usize> = (0..self.orders[oi].lines.len()).collect();
        add(2, A::BuyerUpdates, &all);
        if self.orders[oi].lines.len() < self.config.max_lines.clamp(1, 500) {
            add(1, A::AddLines, &all);
        }
        add(1, A::Resend, &all);
        add(1, A::AttachDocuments, &all);

        let total: u32 = options.iter().map(|o| o.0).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut chosen = options.len() - 1;
        for (i, option) in options.iter().enumerate() {
            if roll < option.0 {
                chosen = i;
                break;
            }
            roll -= option.0;
        }
        let (_, action, candidates) = options.swap_remove(chosen);
        self.ensure_after(self.orders[oi].last_updated_ms);
        self.apply_order_action(oi, action, candidates);
    }

    /// Applies the chosen action to order `oi`; `candidates` are the lines it may touch.
    fn apply_order_action(&mut self, oi: usize, action: OrderAction, candidates: Vec<usize>) {
        use OrderAction as A;
        match action {
            A::SupplierResponds => self.supplier_responds(oi, candidates),
            A::BuyerConfirms => self.buyer_confirms(oi, candidates),
            A::BuyerReissues | A::ReissueReturned => self.buyer_reissues(oi, candidates),
            A::BuyerCancels => self.buyer_cancels(oi, candidates),
            A::ProposalDecision => self.proposal_decision(oi, candidates),
            A::BuyerReopens => self.buyer_reopens(oi, candidates),
            A::ReopenDecision => self.reopen_decision(oi, candidates),
            A::LogisticsUpdate => self.logistics_update(oi, candidates),
            A::MarkDelivered => self.mark_delivered(oi, candidates),
            A::Complete => self.complete(oi, candidates),
            A::RevertCancelled => self.revert(
                oi,
                candidates,
                "CancelledOrderLinesRevertedByBuyer",
                "RevertedCancelledLine",
            ),
            A::RevertCompleted => self.revert(
                oi,
                candidates,
                "CompletedOrderLinesRevertedByBuyer",
                "RevertedCompletedLine",
            ),
            A::BuyerUpdates => self.buyer_updates(oi, candidates),
            A::AddLines => self.add_lines(oi),
            A::Resend => self.resend(oi),
            A::AttachDocuments => self.attach_documents(oi),
        }
    }

    /// The supplier answers some issued lines: each is accepted, rejected or met with a
    /// proposal (one outcome for all of them, or a mix), one event per outcome.
    fn supplier_responds(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        let (accepted, rejected, mut proposed) = self.draw_responses(lines);
        // The supplier's ERP answers with its sales order from the first response on.
        self.orders[oi]
            .sales_order_number
            .get_or_insert_with(|| format!("SO{}", 500_000 + oi));
        for &li in &accepted {
            let line = &mut self.orders[oi].lines[li];
            line.confirmed = Some(line.current.clone());
            line.sales_order_position = Some(line.position.clone());
            set_status(line, "Confirmed", None, now);
        }
        for &li in &rejected {
            set_status(&mut self.orders[oi].lines[li], "Rejected", None, now);
        }
        let split_lines = self.propose_changes(oi, &proposed);
        proposed.extend(split_lines);
        let mut events: Events = Vec::new();
        if !accepted.is_empty() {
            events.push(("OrderLinesAcceptedBySupplier", accepted));
        }
        if !rejected.is_empty() {
            events.push(("OrderLinesRejectedBySupplier", rejected));
        }
        if !proposed.is_empty() {
            events.push(("OrderChangesProposedBySupplier", proposed));
        }
        self.finish_order(oi, events, Actor::Supplier, true);
    }

    /// Draws the supplier's outcome per line: (accepted, rejected, proposed), in line order.
    fn draw_responses(&mut self, lines: Vec<usize>) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let mixed = self
            .rng
            .random_bool(self.config.mixed_response_probability.clamp(0.0, 1.0));
        let uniform = self.rng.random_range(0..100);
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        let mut proposed = Vec::new();
        for li in lines {
            let roll = if mixed {
                self.rng.random_range(0..100)
            } else {
                uniform
            };
            if roll < 60 {
                accepted.push(li);
            } else if roll < 75 {
                rejected.push(li);
            } else {
                proposed.push(li);
            }
        }
        (accepted, rejected, proposed)
    }

    /// Puts a supplier proposal (later dates, a higher price) on each of `proposed`, sometimes
    /// splitting a line in two; returns the lines the splits added.
    fn propose_changes(&mut self, oi: usize, proposed: &[usize]) -> Vec<usize> {
        let now = self.now_ms;
        let mut split_lines = Vec::new();
        for &li in proposed {
            let mut terms = self.orders[oi].lines[li].current.clone();
            for d in &mut terms.schedule {
                d.date = date_plus_days(self.now_ms, self.rng.random_range(14..90));
            }
            terms.price += self.rng.random_range(0..500);
            let split = self.orders[oi].lines[li].original_position.is_none()
                && !self.orders[oi].lines[li].position.is_empty()
                && terms.schedule.len() == 1
                && terms.schedule[0].quantity >= 200
                && self.rng.random_bool(0.15);
            if split {
                let half = terms.schedule[0].quantity / 2;
                terms.schedule[0].quantity -= half;
                let split_index = self.split_line(oi, li, half);
                split_lines.push(split_index);
            }
            let line = &mut self.orders[oi].lines[li];
            line.requested = Some(terms);
            set_status(line, "InProgress", Some("OpenSupplierProposal"), now);
        }
        split_lines
    }

    /// The buyer confirms issued lines itself, as they are.
    fn buyer_confirms(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            line.confirmed = Some(line.current.clone());
            set_status(line, "Confirmed", None, now);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesConfirmedByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer issues lines again, sometimes with a larger last delivery (also how returned
    /// lines go back to the supplier).
    fn buyer_reissues(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let bump = self.rng.random_range(0..5) * 100;
            let line = &mut self.orders[oi].lines[li];
            if let Some(d) = line.current.schedule.last_mut() {
                d.quantity += bump;
            }
            line.requested = None;
            set_status(line, "Issued", None, now);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesReissuedByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer cancels lines that are not confirmed yet.
    fn buyer_cancels(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            line.logistics = "Cancelled";
            set_status(line, "Cancelled", None, now);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesCancelledByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer approves (the proposed terms become current and confirmed) or rejects open
    /// supplier proposals, all of them the same way.
    fn proposal_decision(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        let approve = self.rng.random_bool(0.7);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            let requested = line.requested.take();
            if approve {
                if let Some(terms) = requested {
                    line.current = terms;
                }
                line.confirmed = Some(line.current.clone());
                set_status(line, "Confirmed", None, now);
            } else {
                set_status(line, "InProgress", Some("RejectedSupplierProposal"), now);
            }
        }
        let name = if approve {
            "OrderChangesProposalApprovedByBuyer"
        } else {
            "OrderChangesProposalRejectedByBuyer"
        };
        self.finish_order(oi, vec![(name, lines)], Actor::Buyer, true);
    }

    /// The buyer asks to reopen confirmed lines with a larger, later last delivery.
    fn buyer_reopens(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let extra = self.rng.random_range(1..10) * 100;
            let days = self.rng.random_range(1..30);
            let line = &mut self.orders[oi].lines[li];
            let mut terms = line.current.clone();
            if let Some(d) = terms.schedule.last_mut() {
                d.quantity += extra;
                d.date = date_plus_days(now, days);
            }
            line.requested = Some(terms);
            set_status(line, "InProgress", Some("OpenBuyerReopenRequest"), now);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesReopenRequestedByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The supplier approves or rejects open reopen requests; either way the lines are
    /// confirmed again (on the requested terms when approved).
    fn reopen_decision(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        let approve = self.rng.random_bool(0.6);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            if let Some(terms) = line.requested.take()
                && approve
            {
                line.current = terms;
                line.confirmed = Some(line.current.clone());
            }
            set_status(line, "Confirmed", None, now);
        }
        let name = if approve {
            "OrderLinesReopenRequestApprovedBySupplier"
        } else {
            "OrderLinesReopenRequestRejectedBySupplier"
        };
        self.finish_order(oi, vec![(name, lines)], Actor::Supplier, true);
    }

    /// The supplier moves confirmed lines one logistics step on, up to `Shipped`.
    fn logistics_update(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            line.logistics = match line.logistics {
                "Open" => "Produced",
                "Produced" => "ReadyToShip",
                _ => "Shipped",
            };
            line.last_updated_ms = now;
        }
        self.finish_order(
            oi,
            vec![(
                "OrderLinesDeliveryScheduleLogisticsUpdatedBySupplier",
                lines,
            )],
            Actor::Supplier,
            true,
        );
    }

    /// The buyer marks shipped lines delivered (no longer overdue).
    fn mark_delivered(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            line.logistics = "Delivered";
            line.overdue = false;
            line.last_updated_ms = now;
        }
        self.finish_order(
            oi,
            vec![("OrderLinesMarkedAsDeliveredByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer completes delivered lines.
    fn complete(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            set_status(&mut self.orders[oi].lines[li], "Completed", None, now);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesCompletedByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer reverts cancelled or completed lines to `InProgress` with `status`, under the
    /// event `name` (a cancelled line's logistics open again).
    fn revert(
        &mut self,
        oi: usize,
        candidates: Vec<usize>,
        name: &'static str,
        status: &'static str,
    ) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let line = &mut self.orders[oi].lines[li];
            if line.logistics == "Cancelled" {
                line.logistics = "Open";
            }
            set_status(line, "InProgress", Some(status), now);
        }
        self.finish_order(oi, vec![(name, lines)], Actor::Buyer, true);
    }

    /// The buyer revises the description of lines.
    fn buyer_updates(&mut self, oi: usize, candidates: Vec<usize>) {
        let now = self.now_ms;
        let lines = self.subset(candidates);
        for &li in &lines {
            let rev = self.rng.random_range(2..100);
            let line = &mut self.orders[oi].lines[li];
            line.description = format!("{} (rev {rev})", line.item_name);
            line.last_updated_ms = now;
        }
        self.finish_order(
            oi,
            vec![("OrderLinesUpdatedByBuyer", lines)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer adds one to three new lines, as far as the line limit leaves room.
    fn add_lines(&mut self, oi: usize) {
        let room = self.config.max_lines.clamp(1, 500) - self.orders[oi].lines.len();
        let count = self.rng.random_range(1..=3).min(room);
        let id = self.orders[oi].id.clone();
        let mut added = Vec::new();
        for _ in 0..count {
            let position = self.orders[oi].next_position;
            self.orders[oi].next_position += 1;
            let line = self.new_line(&id, position);
            self.orders[oi].lines.push(line);
            added.push(self.orders[oi].lines.len() - 1);
        }
        self.finish_order(
            oi,
            vec![("OrderLinesIssuedByBuyer", added)],
            Actor::Buyer,
            true,
        );
    }

    /// The buyer resends the order unchanged, with all its lines.
    fn resend(&mut self, oi: usize) {
        let all = (0..self.orders[oi].lines.len()).collect();
        self.finish_order(oi, vec![("OrderResentByBuyer", all)], Actor::Buyer, false);
    }

    /// The buyer or the supplier attaches a new document to the order.
    fn attach_documents(&mut self, oi: usize) {
        let by = if self.rng.random_bool(0.5) {
            Actor::Buyer
        } else {
            Actor::Supplier
        };
        let n = self.orders[oi].documents.len() + 1;
        let object_id = seeded_uuid(&mut self.rng);
        self.orders[oi].documents.push(Document {
            code: format!("DOC{n:03}"),
            name: format!("Drawing {n}"),
            object_id,
            by,
        });
        let name = if by == Actor::Buyer {
            "OrderDocumentsAttachedByBuyer"
        } else {
            "OrderDocumentsAttachedBySupplier"
        };
        self.finish_documents(oi, name, by);
    }

    /// Splits part of a line's quantity into a new line with an empty position that points
    /// back at the original, as a supplier proposal in single-delivery mode does.
    fn split_line(&mut self, oi: usize, li: usize, quantity: i64) -> usize {
        let order = &mut self.orders[oi];
        let original = &order.lines[li];
        let n = order.next_position;
        order.next_position += 1;
        let mut requested = original.current.clone();
        requested.schedule.truncate(1);
        requested.schedule[0].quantity = quantity;
        let mut current = requested.clone();
        current.schedule[0].quantity = 0;
        let line = Line {
            id: format!("{}-S{n:04}", order.id),
            position: String::new(),
            original_position: Some(original.position.clone()),
            description: original.description.clone(),
            item_number: original.item_number.clone(),
            item_name: original.item_name.clone(),
            unit: original.unit,
            currency: original.currency,
            current,
            requested: Some(requested),
            confirmed: None,
            process: "InProgress",
            in_progress: Some("OpenSupplierProposal"),
            logistics: "Open",
            overdue: false,
            sales_order_position: None,
            last_updated_ms: self.now_ms,
        };
        order.lines.push(line);
        order.lines.len() - 1
    }

    fn new_meta(&mut self, actor: Actor, buyer: usize, supplier: usize, trace_id: &str) -> Meta {
        let company = match actor {
            Actor::Buyer => &self.buyers[buyer],
            Actor::Supplier => &self.suppliers[supplier],
        };
        let (user_id, company_id) = (company.user_id.clone(), company.id.clone());
        Meta {
            message_id: seeded_uuid(&mut self.rng),
            created_ms: self.now_ms,
            trace_id: trace_id.to_string(),
            user_id,
            company_id,
        }
    }

    /// Records the events of one order action: a new version and `lastUpdatedAt` (unless the
    /// action only resends), a message id per event, and the payloads as they are now.
    fn finish_order(&mut self, oi: usize, events: Events, actor: Actor, state_changed: bool) {
        let now = self.now_ms;
        {
            let order = &mut self.orders[oi];
            if state_changed {
                order.version += 1;
                order.last_updated_ms = now;
            }
            for line in &mut order.lines {
                if line.last_updated_ms == now {
                    line.overdue = line.logistics != "Delivered"
                        && line
                            .current
                            .schedule
                            .first()
                            .is_some_and(|d| d.date < date_plus_days(now, 0));
                }
            }
        }
        let trace_id = seeded_uuid(&mut self.rng);
        let (buyer, supplier) = (self.orders[oi].buyer, self.orders[oi].supplier);
        for (name, lines) in events {
            let meta = self.new_meta(actor, buyer, supplier, &trace_id);
            let order = &self.orders[oi];
            let event = self.render_order(order, OrderForm::Schedule, "orderId", &lines, &meta);
            let single =
                self.render_order(order, OrderForm::SingleDelivery, "orderId", &lines, &meta);
            let change = Change {
                seq: self.changes.len() as u64,
                kind: EventKind::Order,
                id: order.id.clone(),
                version: order.version,
                last_updated_at: format_ms(order.last_updated_ms),
                event_name: name.to_string(),
                message_id: meta.message_id.clone(),
                line_ids: lines.iter().map(|&i| order.lines[i].id.clone()).collect(),
                state_changed,
                payload: Arc::new(Payload {
                    event,
                    single_delivery: Some(single),
                }),
            };
            self.changes.push(change);
            self.orders[oi].meta = meta;
        }
    }

    fn finish_documents(&mut self, oi: usize, name: &'static str, actor: Actor) {
        let now = self.now_ms;
        self.orders[oi].version += 1;
        self.orders[oi].last_updated_ms = now;
        let trace_id = seeded_uuid(&mut self.rng);
        let (buyer, supplier) = (self.orders[oi].buyer, self.orders[oi].supplier);
        let meta = self.new_meta(actor, buyer, supplier, &trace_id);
        let order = &self.orders[oi];
        let event = self.render_documents_event(order, &meta);
        let change = Change {
            seq: self.changes.len() as u64,
            kind: EventKind::OrderDocuments,
            id: order.id.clone(),
            version: order.version,
            last_updated_at: format_ms(now),
            event_name: name.to_string(),
            message_id: meta.message_id.clone(),
            line_ids: Vec::new(),
            state_changed: true,
            payload: Arc::new(Payload {
                event,
                single_delivery: None,
            }),
        };
        self.changes.push(change);
        self.orders[oi].meta = meta;
    }

    fn new_shipment(&mut self) {
        // Ship lines of an order that is far enough along; any order will do when none is.
        let ready: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                self.orders[i]
                    .lines
                    .iter()
                    .any(|l| l.process == "Confirmed" && !l.position.is_empty())
            })
            .collect();
        if self.orders.is_empty() {
            self.new_order();
            return;
        }
        let oi = if ready.is_empty() {
            self.rng.random_range(0..self.orders.len())
        } else {
            *pick(&mut self.rng, &ready)
        };
        let number = self.next_shipment;
        self.next_shipment += 1;
        let id = seeded_uuid(&mut self.rng);
        let now = self.now_ms;
        let order = &self.orders[oi];
        let mut candidates: Vec<usize> = (0..order.lines.len())
            .filter(|&i| !order.lines[i].position.is_empty())
            .collect();
        candidates.truncate(8);
        let mut lines = Vec::new();
        for (n, &li) in candidates.iter().enumerate() {
            let l = &self.orders[oi].lines[li];
            let d = l.current.schedule.first().cloned().unwrap_or(Delivery {
                position: "0001".into(),
                date: date_plus_days(now, 1),
                quantity: 100,
            });
            lines.push(ShipLine {
                po: self.orders[oi].po.clone(),
                po_position: l.position.clone(),
                schedule_position: d.position,
                item_number: l.item_number.clone(),
                item_name: l.item_name.clone(),
                unit: l.unit,
                despatch_position: format!("{:02}", n + 1),
                quantity: d.quantity.max(1),
                in_carrier: false,
                last_updated_ms: now,
            });
        }
        // Some lines travel in a container; at least one stays loose so `lines` is never empty.
        if lines.len() >= 2 && self.rng.random_bool(0.5) {
            let loose = self.rng.random_range(1..lines.len());
            for l in &mut lines[loose..] {
                l.in_carrier = true;
            }
        }
        let shipment = Shipment {
            id: id.clone(),
            number: format!("SN{number:06}"),
            despatch_advice: format!("DA{number:06}"),
            buyer: self.orders[oi].buyer,
            supplier: self.orders[oi].supplier,
            bill_of_lading: None,
            carrier_number: format!("CSN{}", self.rng.random_range(100_000..999_999)),
            transport_mode: TRANSPORT_MODES[self.rng.random_range(0..TRANSPORT_MODES.len())],
            container: format!("MSKU{:07}", self.rng.random_range(0..10_000_000)),
            lines,
            documents: Vec::new(),
            status: "Issued",
            reason: None,
            etd_days: self.rng.random_range(1..20),
            destination: self.orders[oi].destination,
            version: 0,
            last_updated_ms: now,
            message_id: String::new(),
        };
        self.shipment_index.insert(id, self.shipments.len());
        self.shipments.push(shipment);
        let si = self.shipments.len() - 1;
        self.finish_shipment(si, "ShipmentIssuedBySupplier", Actor::Supplier, true);
    }

    fn shipment_step(&mut self, si: usize) {
        self.ensure_after(self.shipments[si].last_updated_ms);
        let now = self.now_ms;
        let roll = self.rng.random_range(0..100);
        let status = self.shipments[si].status;
        let (name, actor, changed) = match status {
            "Issued" if roll < 60 => {
                self.shipments[si].status = "Approved";
                ("ShipmentApprovedByBuyer", Actor::Buyer, true)
            }
            "Issued" if roll < 80 => {
                self.shipments[si].status = "Rejected";
                self.shipments[si].reason = Some("Quantities do not match the order".into());
                ("ShipmentRejectedByBuyer", Actor::Buyer, true)
            }
            "Rejected" if roll < 80 => {
                let s = &mut self.shipments[si];
                s.status = "Issued";
                s.reason = None;
                if let Some(line) = s.lines.first_mut() {
                    line.quantity += 100;
                    line.last_updated_ms = now;
                }
                ("ShipmentReissuedBySupplier", Actor::Supplier, true)
            }
            "Approved" if roll < 50 => {
                let bol = format!("BOL{}", self.rng.random_range(100_000..999_999));
                self.shipments[si].bill_of_lading = Some(bol);
                ("ShipmentHeaderUpdatedBySupplier", Actor::Supplier, true)
            }
            _ if roll < 92 => {
                let by = if self.rng.random_bool(0.5) {
                    Actor::Buyer
                } else {
                    Actor::Supplier
                };
                let object_id = seeded_uuid(&mut self.rng);
                let s = &mut self.shipments[si];
                let n = s.documents.len() + 1;
                s.documents.push((
                    Document {
                        code: format!("PL{n:03}"),
                        name: format!("Packing list {n}"),
                        object_id,
                        by,
                    },
                    now,
                ));
                let name = if by == Actor::Buyer {
                    "ShipmentDocumentAttachedByBuyer"
                } else {
                    "ShipmentDocumentAttachedBySupplier"
                };
                (name, by, true)
            }
            _ => ("ShipmentResentByBuyer", Actor::Buyer, false),
        };
        self.finish_shipment(si, name, actor, changed);
    }

    fn finish_shipment(&mut self, si: usize, name: &str, actor: Actor, state_changed: bool) {
        let now = self.now_ms;
        if state_changed {
            self.shipments[si].version += 1;
            self.shipments[si].last_updated_ms = now;
        }
        let trace_id = seeded_uuid(&mut self.rng);
        let (buyer, supplier) = (self.shipments[si].buyer, self.shipments[si].supplier);
        let meta = self.new_meta(actor, buyer, supplier, &trace_id);
        self.shipments[si].message_id = meta.message_id.clone();
        let s = &self.shipments[si];
        let event = self.render_shipment(s);
        let change = Change {
            seq: self.changes.len() as u64,
            kind: EventKind::Shipment,
            id: s.id.clone(),
            version: s.version,
            last_updated_at: format_ms(s.last_updated_ms),
            event_name: name.to_string(),
            message_id: meta.message_id,
            line_ids: Vec::new(),
            state_changed,
            payload: Arc::new(Payload {
                event,
                single_delivery: None,
            }),
        };
        self.changes.push(change);
    }

    fn party(&self, c: &Company) -> Value {
        json!({
            "id": c.party_id,
            "idScheme": "GLN",
            "names": c.names,
            "addressLines": [c.street],
            "postalCode": c.postal_code,
            "city": c.city,
            "countryCodeIso2": c.country_iso2,
            "countryName": c.country_name,
        })
    }

    fn destination(&self, index: usize, country_key: &str) -> Value {
        let (code, name) = DESTINATIONS[index % DESTINATIONS.len()];
        let mut v = json!({
            "code": code,
            "names": [name],
            "addressLines": ["Harbour Road 12"],
            "postalCode": "3011 AA",
            "city": "Rotterdam",
            "countryName": "The Netherlands",
            "locationType": "Warehouse",
        });
        v[country_key] = json!("NL");
        v
    }

    fn meta_json(meta: &Meta) -> Value {
        json!({
            "messageId": meta.message_id,
            "createdDateTime": format_ms(meta.created_ms),
            "source": {
                "traceId": meta.trace_id,
                "userId": meta.user_id,
                "companyId": meta.company_id,
            }
        })
    }

    fn order_header(&self, o: &Order, id_key: &str) -> Map<String, Value> {
        let buyer = &self.buyers[o.buyer];
        let supplier = &self.suppliers[o.supplier];
        let mut header = Map::new();
        header.insert(id_key.into(), json!(o.id));
        let mut buyer_order = json!({
            "companyId": buyer.id,
            "purchaseOrderNumber": o.po,
            "supplierAccountNumber": supplier.account_number,
            "description": o.description,
            "orderType": "Purchase",
            "buyerParty": self.party(buyer),
            "supplierParty": self.party(supplier),
            "destination": self.destination(o.destination, "countryCodeIso2"),
            "contact": {"email": buyer.email},
            "terms": {"incotermsCode": "DAP", "paymentTermsCode": "30D", "paymentTerms": "30 days"},
        });
        let mut supplier_order = json!({
            "companyId": supplier.id,
            "buyerAccountNumber": buyer.account_number,
            "contact": {"email": supplier.email},
        });
        if let Some(so) = &o.sales_order_number {
            supplier_order["salesOrderNumber"] = json!(so);
        }
        let docs = |actor: Actor| -> Vec<Value> {
            o.documents
                .iter()
                .filter(|d| d.by == actor)
                .map(|d| {
                    json!({"code": d.code, "revision": "A", "name": d.name, "type": "General", "objectId": d.object_id})
                })
                .collect()
        };
        let (buyer_docs, supplier_docs) = (docs(Actor::Buyer), docs(Actor::Supplier));
        if !buyer_docs.is_empty() {
            buyer_order["documents"] = Value::Array(buyer_docs);
        }
        if !supplier_docs.is_empty() {
            supplier_order["documents"] = Value::Array(supplier_docs);
        }
        header.insert("buyerOrder".into(), buyer_order);
        header.insert("supplierOrder".into(), supplier_order);
        header
    }

    fn render_order(
        &self,
        o: &Order,
        form: OrderForm,
        id_key: &str,
        lines: &[usize],
        meta: &Meta,
    ) -> Value {
        let mut v = self.order_header(o, id_key);
        let rendered: Vec<Value> = lines
            .iter()
            .map(|&i| render_line(&o.lines[i], o, form))
            .collect();
        if !rendered.is_empty() {
            v.insert("lines".into(), Value::Array(rendered));
        }
        let (process, logistics) = order_status(o);
        let overdue = o.lines.iter().any(|l| l.overdue);
        v.insert("indicators".into(), json!({"deliveryOverdue": overdue}));
        v.insert(
            "status".into(),
            json!({"processStatus": process, "logisticsStatus": logistics}),
        );
        v.insert("version".into(), json!(o.version));
        v.insert("meta".into(), Self::meta_json(meta));
        v.insert("lastUpdatedAt".into(), json!(format_ms(o.last_updated_ms)));
        Value::Object(v)
    }

    fn render_documents_event(&self, o: &Order, meta: &Meta) -> Value {
        let mut v = self.order_header(o, "orderId");
        v.insert("version".into(), json!(o.version));
        v.insert("meta".into(), Self::meta_json(meta));
        v.insert("lastUpdatedAt".into(), json!(format_ms(o.last_updated_ms)));
        Value::Object(v)
    }

    /// The `shipment` object: identifiers, both sides' parts, locations, status and the lines
    /// (loose ones under `lines`, the rest in a load carrier).
    fn render_shipment(&self, s: &Shipment) -> Value {
        let lines = |in_carrier: bool| -> Vec<Value> {
            s.lines
                .iter()
                .filter(|l| l.in_carrier == in_carrier)
                .map(|l| ship_line_json(s, l))
                .collect()
        };
        let (loose, packed) = (lines(false), lines(true));
        let mut identifiers = json!({"carrierShipmentNumber": s.carrier_number});
        if let Some(bol) = &s.bill_of_lading {
            identifiers["billOfLadingNumber"] = json!(bol);
        }
        let mut status = json!({"processStatus": s.status});
        if let Some(reason) = &s.reason {
            status["processStatusReason"] = json!(reason);
        }
        let mut v = json!({
            "id": s.id,
            "identifiers": identifiers,
            "transportMode": s.transport_mode,
            "supplierShipment": self.supplier_shipment_json(s),
            "buyerShipment": self.buyer_shipment_json(s),
            "locations": self.shipment_locations_json(s),
            "status": status,
            "meta": {"lastUpdatedAt": format_ms(s.last_updated_ms), "messageId": s.message_id},
            "lastUpdatedAt": format_ms(s.last_updated_ms),
        });
        if !loose.is_empty() {
            v["lines"] = Value::Array(loose);
        }
        if !packed.is_empty() {
            v["loadCarriers"] = json!([{
                "containerNumber": s.container,
                "containerSizeAndType": "22G1",
                "lines": packed,
            }]);
        }
        v
    }

    /// The shipment's `supplierShipment` part, with the supplier's documents if any.
    fn supplier_shipment_json(&self, s: &Shipment) -> Value {
        let buyer = &self.buyers[s.buyer];
        let supplier = &self.suppliers[s.supplier];
        let mut supplier_shipment = json!({
            "companyId": supplier.id,
            "supplierParty": self.party(supplier),
            "buyerAccountNumber": buyer.account_number,
            "shipmentNumber": s.number,
            "invoiceNumbers": [format!("INV{}", &s.number[2..])],
            "contacts": [{"email": supplier.email}],
        });
        let sd = shipment_documents_json(s, Actor::Supplier);
        if !sd.is_empty() {
            supplier_shipment["documents"] = Value::Array(sd);
        }
        supplier_shipment
    }

    /// The shipment's `buyerShipment` part, with the buyer's documents if any.
    fn buyer_shipment_json(&self, s: &Shipment) -> Value {
        let buyer = &self.buyers[s.buyer];
        let supplier = &self.suppliers[s.supplier];
        let mut buyer_shipment = json!({
            "companyId": buyer.id,
            "buyerParty": self.party(buyer),
            "supplierAccountNumber": supplier.account_number,
            "contacts": [{"email": buyer.email}],
            "purchaseOrderTerms": {"incotermsCode": "DAP", "paymentTermsCode": "30D"},
        });
        let bd = shipment_documents_json(s, Actor::Buyer);
        if !bd.is_empty() {
            buyer_shipment["documents"] = Value::Array(bd);
        }
        buyer_shipment
    }

    /// The shipment's `locations`: departure at the supplier, the order's destination, and the
    /// ETD / ETA dates counted from the shipment's creation.
    fn shipment_locations_json(&self, s: &Shipment) -> Value {
        let supplier = &self.suppliers[s.supplier];
        let mut departure_location = self.party(supplier);
        if let Value::Object(m) = &mut departure_location {
            m.remove("countryCodeIso2");
            m.remove("countryName");
            m.insert("countryCodeIso".into(), json!(supplier.country_iso2));
            m.insert("locationType".into(), json!("AgreedPlace"));
        }
        let mut destination = self.destination(s.destination, "countryCodeIso");
        if let Value::Object(m) = &mut destination {
            m.remove("code");
            m.remove("countryName");
            m.insert("locationType".into(), json!("FinalDestination"));
        }
        let created = s
            .lines
            .first()
            .map(|l| l.last_updated_ms)
            .unwrap_or(s.last_updated_ms);
        json!({
            "departure": {"location": departure_location, "etdDate": date_plus_days(created, s.etd_days)},
            "destinations": [{"location": destination, "etaStartDate": date_plus_days(created, s.etd_days + 2),
                              "etaEndDate": date_plus_days(created, s.etd_days + 4)}],
        })
    }
}

/// One shipment line, as it appears under `lines` or in a load carrier.
fn ship_line_json(s: &Shipment, l: &ShipLine) -> Value {
    json!({
        "purchaseOrderNumber": l.po,
        "purchaseOrderLinePosition": l.po_position,
        "deliverySchedulePosition": l.schedule_position,
        "item": {
            "buyerItemNumber": l.item_number,
            "buyerItemName": l.item_name,
            "purchaseUnitOfMeasureIso": l.unit,
        },
        "supplierLine": {
            "despatchAdviceNumber": s.despatch_advice,
            "despatchAdviceLinePosition": l.despatch_position,
            "despatchQuantity": dec2(l.quantity),
        },
        "meta": {"lastUpdatedAt": format_ms(l.last_updated_ms)},
    })
}

/// The documents `actor` attached to a shipment, each with the time it was attached.
fn shipment_documents_json(s: &Shipment, actor: Actor) -> Vec<Value> {
    s.documents
        .iter()
        .filter(|(d, _)| d.by == actor)
        .map(|(d, at)| {
            json!({"code": d.code, "name": d.name, "type": "General", "objectId": d.object_id,
                   "meta": {"lastUpdatedAt": format_ms(*at)}})
        })
        .collect()
}

fn set_status(line: &mut Line, process: &'static str, in_progress: Option<&'static str>, now: i64) {
    line.process = process;
    line.in_progress = in_progress;
    line.last_updated_ms = now;
}

/// Aggregates line statuses the way Tradecloud describes it: an order is `Confirmed` only when
/// every (not cancelled) line is, and `InProgress` while lines disagree.
fn order_status(o: &Order) -> (&'static str, &'static str) {
    let active: Vec<&Line> = o
        .lines
        .iter()
        .filter(|l| l.process != "Cancelled")
        .collect();
    if active.is_empty() {
        return ("Cancelled", "Cancelled");
    }
    let first = active[0].process;
    let process = if active.iter().all(|l| l.process == first) {
        first
    } else if active
        .iter()
        .all(|l| matches!(l.process, "Confirmed" | "Completed"))
    {
        "Confirmed"
    } else {
        "InProgress"
    };
    const ORDER: &[&str] = &["Open", "Produced", "ReadyToShip", "Shipped", "Delivered"];
    let logistics = active
        .iter()
        .map(|l| ORDER.iter().position(|s| *s == l.logistics).unwrap_or(0))
        .min()
        .map(|i| ORDER[i])
        .unwrap_or("Open");
    (process, logistics)
}

fn prices_json(price: i64, currency: &str, unit: &str) -> Value {
    json!({
        "grossPrice": {"priceInTransactionCurrency": {"value": dec2(price), "currencyIso": currency}},
        "netPrice": {"priceInTransactionCurrency": {"value": dec2(price), "currencyIso": currency}},
        "priceUnitOfMeasureIso": unit,
        "priceUnitQuantity": 1,
    })
}

fn schedule_json(terms: &Terms, logistics: &str) -> Value {
    Value::Array(
        terms
            .schedule
            .iter()
            .map(|d| {
                let mut v =
                    json!({"position": d.position, "date": d.date, "quantity": dec2(d.quantity)});
                if logistics != "Cancelled" {
                    v["status"] = json!(logistics);
                }
                v
            })
            .collect(),
    )
}

/// The single delivery of a line: the first date and the whole quantity.
fn single_delivery_json(terms: &Terms) -> Value {
    let date = terms
        .schedule
        .first()
        .map(|d| d.date.clone())
        .unwrap_or_default();
    let quantity: i64 = terms.schedule.iter().map(|d| d.quantity).sum();
    json!({"date": date, "quantity": dec2(quantity)})
}

fn render_line(l: &Line, o: &Order, form: OrderForm) -> Value {
    let mut buyer_line = json!({
        "position": l.position,
        "description": l.description,
        "item": {"number": l.item_number, "name": l.item_name, "purchaseUnitOfMeasureIso": l.unit},
    });
    if let Some(original) = &l.original_position {
        buyer_line["originalPosition"] = json!(original);
    }
    let mut v = json!({
        "id": l.id,
        "lineType": "Item",
        "buyerLine": buyer_line,
    });
    let mut supplier_line = Map::new();
    if let (Some(so), Some(pos)) = (&o.sales_order_number, &l.sales_order_position) {
        supplier_line.insert("salesOrderNumber".into(), json!(so));
        supplier_line.insert("salesOrderPosition".into(), json!(pos));
    }
    if let (Some(req), Some("OpenSupplierProposal")) = (&l.requested, l.in_progress) {
        supplier_line.insert(
            "requests".into(),
            json!({"proposal": {
                "deliverySchedule": schedule_json(req, "Open"),
                "prices": prices_json(req.price, l.currency, l.unit),
                "reason": "Earliest possible",
                "status": "Open",
            }}),
        );
    }
    if !supplier_line.is_empty() {
        v["supplierLine"] = Value::Object(supplier_line);
    }
    let including = l.requested.as_ref().unwrap_or(&l.current);
    match form {
        OrderForm::Schedule => {
            v["deliverySchedule"] = schedule_json(&l.current, l.logistics);
            v["deliveryScheduleIncludingRequests"] = schedule_json(including, l.logistics);
            v["prices"] = prices_json(l.current.price, l.currency, l.unit);
            v["pricesIncludingRequests"] = prices_json(including.price, l.currency, l.unit);
            if let Some(c) = &l.confirmed {
                v["confirmedLine"] = json!({
                    "deliverySchedule": schedule_json(c, l.logistics),
                    "prices": prices_json(c.price, l.currency, l.unit),
                });
            }
        }
        OrderForm::SingleDelivery => {
            v["statusLine"] = json!({
                "scheduledDelivery": single_delivery_json(&l.current),
                "scheduledDeliveryInclRequests": single_delivery_json(including),
                "prices": prices_json(l.current.price, l.currency, l.unit),
                "pricesInclRequests": prices_json(including.price, l.currency, l.unit),
            });
            if let Some(c) = &l.confirmed {
                v["confirmedLine"] = json!({
                    "scheduledDelivery": single_delivery_json(c),
                    "prices": prices_json(c.price, l.currency, l.unit),
                });
            }
        }
    }
    let mut status = json!({"processStatus": l.process, "logisticsStatus": l.logistics});
    if let Some(p) = l.in_progress {
        status["inProgressStatus"] = json!(p);
    }
    v["status"] = status;
    v["indicators"] = json!({"deliveryOverdue": l.overdue});
    v["lastUpdatedAt"] = json!(format_ms(l.last_updated_ms));
    v
}
