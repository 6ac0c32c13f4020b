//! The search index behind the poll and search endpoints, optionally lagging behind the world
//! the way a search database lags behind commits: a changed object keeps showing its previous
//! state for a number of queries, then appears with its original `lastUpdatedAt`, which a
//! client whose cursor already moved past it only catches with a look-back.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::world::{Change, EventKind, OrderForm, World};

/// An object as the index last saw it.
pub(crate) struct Snapshot {
    pub(crate) row: Row,
    schedule: Value,
    single: Option<Value>,
}

/// What the query code filters and sorts on.
#[derive(Clone)]
pub(crate) struct Row {
    pub(crate) ms: i64,
    pub(crate) id: String,
    pub(crate) po: String,
    pub(crate) status: String,
    pub(crate) buyer: String,
    pub(crate) supplier: String,
    /// Index of the object in the world.
    pub(crate) index: usize,
}

pub(crate) struct Index {
    lag: u64,
    queries: u64,
    /// (query count at which it is due, shipment?, object index), in change order.
    pending: Vec<(u64, bool, usize)>,
    /// Draws each change's lag, so a later change can become visible before an earlier one.
    rng: ChaCha8Rng,
    orders: BTreeMap<usize, Snapshot>,
    shipments: BTreeMap<usize, Snapshot>,
}

impl Index {
    /// With `lag` 0 the index is off and queries read the world directly.
    pub(crate) fn new(lag: usize, seed: u64, world: &World) -> Self {
        let mut index = Self {
            lag: lag as u64,
            queries: 0,
            pending: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            orders: BTreeMap::new(),
            shipments: BTreeMap::new(),
        };
        if index.lag > 0 {
            for i in 0..world.order_keys().len() {
                index.orders.insert(i, order_snapshot(world, i));
            }
            for i in 0..world.shipment_keys().len() {
                index.shipments.insert(i, shipment_snapshot(world, i));
            }
        }
        index
    }

    pub(crate) fn enabled(&self) -> bool {
        self.lag > 0
    }

    /// Notes changed objects; each reaches the index after 0 to `lag` further queries.
    pub(crate) fn changed(&mut self, world: &World, changes: &[Change]) {
        if !self.enabled() {
            return;
        }
        for change in changes {
            let (shipment, index) = match change.kind {
                EventKind::Shipment => (true, world.shipment_by_id(&change.id)),
                _ => (false, world.order_by_id(&change.id)),
            };
            if let Some(i) = index {
                let lag = self.rng.random_range(0..=self.lag);
                self.pending.push((self.queries + lag, shipment, i));
            }
        }
    }

    /// Counts a query and brings due objects up to date (with their state now, which may be
    /// newer than the change that made them due).
    pub(crate) fn before_query(&mut self, world: &World) {
        if !self.enabled() {
            return;
        }
        self.queries += 1;
        let queries = self.queries;
        // Due when `lag` queries have passed since the change (0: the very next query).
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(at, _, _)| *at < queries);
        self.pending = later;
        for (_, shipment, i) in due {
            if shipment {
                self.shipments.insert(i, shipment_snapshot(world, i));
            } else {
                self.orders.insert(i, order_snapshot(world, i));
            }
        }
    }

    pub(crate) fn order_rows(&self) -> Vec<Row> {
        self.orders.values().map(|s| s.row.clone()).collect()
    }

    pub(crate) fn shipment_rows(&self) -> Vec<Row> {
        self.shipments.values().map(|s| s.row.clone()).collect()
    }

    pub(crate) fn order_json(&self, index: usize, form: OrderForm) -> Value {
        let Some(s) = self.orders.get(&index) else {
            return Value::Null;
        };
        match form {
            OrderForm::Schedule => s.schedule.clone(),
            OrderForm::SingleDelivery => s.single.clone().unwrap_or(Value::Null),
        }
    }

    pub(crate) fn shipment_json(&self, index: usize) -> Value {
        self.shipments
            .get(&index)
            .map(|s| s.schedule.clone())
            .unwrap_or(Value::Null)
    }
}

/// The live rows of the world's orders.
pub(crate) fn live_order_rows(world: &World) -> Vec<Row> {
    (0..world.order_keys().len())
        .map(|i| order_row(world, i))
        .collect()
}

/// The live rows of the world's shipments.
pub(crate) fn live_shipment_rows(world: &World) -> Vec<Row> {
    (0..world.shipment_keys().len())
        .map(|i| shipment_row(world, i))
        .collect()
}

fn order_row(world: &World, i: usize) -> Row {
    let (ms, id) = world.order_ms_id(i);
    let (po, status, buyer, supplier) = world.order_facts(i);
    Row {
        ms,
        id: id.to_string(),
        po: po.to_string(),
        status: status.to_string(),
        buyer: buyer.to_string(),
        supplier: supplier.to_string(),
        index: i,
    }
}

fn shipment_row(world: &World, i: usize) -> Row {
    let (ms, id) = world.shipment_ms_id(i);
    let (status, buyer, supplier) = world.shipment_facts(i);
    Row {
        ms,
        id: id.to_string(),
        po: String::new(),
        status: status.to_string(),
        buyer: buyer.to_string(),
        supplier: supplier.to_string(),
        index: i,
    }
}

fn order_snapshot(world: &World, i: usize) -> Snapshot {
    Snapshot {
        row: order_row(world, i),
        schedule: world.order_json(i, OrderForm::Schedule),
        single: Some(world.order_json(i, OrderForm::SingleDelivery)),
    }
}

fn shipment_snapshot(world: &World, i: usize) -> Snapshot {
    Snapshot {
        row: shipment_row(world, i),
        schedule: world.shipment_json(i),
        single: None,
    }
}
