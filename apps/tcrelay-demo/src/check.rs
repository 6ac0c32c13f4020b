//! The check against the simulator's ground truth, shared by the demo and the end-to-end tests:
//! "nothing lost, nothing twice" under the dedupe rules of docs/design.md.
//!
//! What it checks, given the simulator's changes, webhook deliveries and final objects, and the
//! queue's envelopes in queue order:
//! 1. no dedupe key is on the queue twice;
//! 2. every webhook POST answered 2xx (and admitted by the event filter) is on the queue once
//!    under its message key, or its state was already relayed as a complete object (a poll or
//!    GET envelope with the same class, id and `lastUpdatedAt`); filtered events are absent;
//! 3. every webhook GET answered 2xx left the object's state at or after that change on the
//!    queue;
//! 4. every envelope corresponds to a real change: a POST envelope to a delivered message (same
//!    key, id, event and time), a poll or GET envelope to a state the object really had (and its
//!    version then);
//! 5. every object's final state is on the queue;
//! 6. optionally, per object and channel, queue order follows `lastUpdatedAt` and `version`.
//!
//! The message key of a delivery is computed from the body the simulator actually sent, with the
//! model's decoder and the core's key function, exactly as the webhook computes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use tcrelay_core::dedupe::{MessageKeyParts, message_key};
use tcrelay_core::ports::QuarantinedRequest;
use tcrelay_core::{Envelope, EventFilter, Source};
use tradecloud_model::{ObjectClass, decode_webhook, timestamp};
use tradecloud_sim::{Change, DeliveryOutcome, DeliveryRecord, EventKind, ObjectState, Simulator};

/// Most failures listed in a report; the count stays exact.
const MAX_LISTED: usize = 50;

/// What the simulator knows happened.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    /// Every change, oldest first (`seq` = index).
    pub changes: Vec<Change>,
    /// Every webhook delivery with its attempts and outcome.
    pub deliveries: Vec<DeliveryRecord>,
    /// The final state of every object.
    pub objects: Vec<ObjectState>,
}

impl GroundTruth {
    /// Reads it from a running simulator (after the webhooks went idle).
    pub fn from_simulator(sim: &Simulator) -> Self {
        Self {
            changes: sim.changes(),
            deliveries: sim.deliveries(),
            objects: sim.objects(),
        }
    }
}

/// One envelope with its queue position (SQLite row id, or the order received from SQS).
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Ascending in queue order.
    pub position: i64,
    /// The envelope.
    pub envelope: Envelope,
}

/// What to check besides the always-on rules.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The webhook's event filter: filtered events must be absent.
    pub filter: EventFilter,
    /// Check per-object order within each channel (needs an ordered queue).
    pub check_order: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            filter: EventFilter::new(Vec::new(), Vec::new()),
            check_order: true,
        }
    }
}

/// The result: counts and the failures found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Envelopes on the queue.
    pub envelopes: usize,
    /// Webhook POST deliveries answered 2xx (deliberate duplicates included).
    pub posts_delivered: usize,
    /// Distinct messages among them that had to be on the queue.
    pub messages_expected: usize,
    /// Of those, found by their state key (relayed first as a complete object).
    pub covered_by_state: usize,
    /// Webhook GET deliveries answered 2xx.
    pub gets_delivered: usize,
    /// Objects whose final state was looked for.
    pub objects: usize,
    /// Failures (at most [`MAX_LISTED`] are listed).
    pub failures: Vec<String>,
    /// How many failures there were.
    pub failure_count: usize,
}

impl CheckReport {
    /// Whether every rule held.
    pub fn passed(&self) -> bool {
        self.failure_count == 0
    }

    fn fail(&mut self, message: String) {
        self.failure_count += 1;
        if self.failures.len() < MAX_LISTED {
            self.failures.push(message);
        }
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.passed() {
            write!(
                f,
                "PASSED: {} envelopes; {} POST deliveries (2xx) -> {} messages, each on the queue once \
                 ({} as a complete state first); {} GET deliveries; {} final object states present; \
                 no dedupe key twice",
                self.envelopes,
                self.posts_delivered,
                self.messages_expected,
                self.covered_by_state,
                self.gets_delivered,
                self.objects
            )
        } else {
            writeln!(f, "FAILED: {} problem(s)", self.failure_count)?;
            for failure in &self.failures {
                writeln!(f, "  - {failure}")?;
            }
            Ok(())
        }
    }
}

fn class_of(kind: EventKind) -> ObjectClass {
    match kind {
        EventKind::Order => ObjectClass::Order,
        EventKind::OrderDocuments => ObjectClass::OrderDocuments,
        EventKind::Shipment => ObjectClass::Shipment,
    }
}

fn instant(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| timestamp::parse(t).ok())
}

/// An object state as the check compares it: class name, id, instant.
type StateId = (&'static str, String, DateTime<Utc>);

/// The message key the webhook computes for a delivered body, with its decoded identity.
struct DeliveredMessage {
    key: String,
    class: ObjectClass,
    id: String,
    event_name: String,
    last_updated_at: Option<DateTime<Utc>>,
}

fn delivered_message(record: &DeliveryRecord) -> Result<DeliveredMessage, String> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| format!("POST delivery {} has no body", record.id))?;
    let decoded = decode_webhook(body.as_bytes(), record.content_type.as_deref())
        .map_err(|e| format!("POST delivery {} does not decode: {e}", record.id))?;
    let line_ids = decoded.body.line_ids();
    let line_refs: Vec<&str> = line_ids.iter().map(String::as_str).collect();
    let class = decoded.body.kind().object_class();
    let key = message_key(&MessageKeyParts {
        class,
        id: decoded.body.object_id(),
        event_name: &decoded.body.event_name,
        last_updated_at: decoded.body.last_updated_at(),
        message_id: decoded.body.message_id(),
        line_ids: &line_refs,
        raw_body: body.as_bytes(),
    });
    Ok(DeliveredMessage {
        key,
        class,
        id: decoded.body.object_id().to_owned(),
        event_name: decoded.body.event_name.clone(),
        last_updated_at: instant(decoded.body.last_updated_at()),
    })
}

/// Runs every check.
pub fn check(truth: &GroundTruth, queue: &[QueuedMessage], options: &CheckOptions) -> CheckReport {
    let mut report = CheckReport {
        envelopes: queue.len(),
        objects: truth.objects.len(),
        ..CheckReport::default()
    };
    let on_queue = check_keys_once(&mut report, queue);
    let relayed = RelayedStates::of(queue);
    let delivered = check_deliveries(&mut report, truth, options, &on_queue, &relayed);
    check_envelopes_real(&mut report, truth, queue, &delivered);
    check_final_states(&mut report, truth, &relayed);
    if options.check_order {
        check_order(&mut report, queue);
    }
    report
}

/// Dedupe key -> index in the queue (of its first envelope).
type KeyIndex<'q> = HashMap<&'q str, usize>;

/// Rule 1: no dedupe key twice. Returns the keys on the queue.
fn check_keys_once<'q>(report: &mut CheckReport, queue: &'q [QueuedMessage]) -> KeyIndex<'q> {
    let mut by_key: KeyIndex<'q> = HashMap::new();
    for (i, m) in queue.iter().enumerate() {
        if let Some(first) = by_key.insert(m.envelope.dedupe_key.as_str(), i) {
            report.fail(format!(
                "dedupe key {} is on the queue twice (positions {} and {})",
                m.envelope.dedupe_key, queue[first].position, m.position
            ));
        }
    }
    by_key
}

/// The object states on the queue.
struct RelayedStates {
    /// States relayed as complete objects (poll, GET).
    full: HashSet<StateId>,
    /// Every state on the queue, per object.
    any: HashMap<(&'static str, String), Vec<DateTime<Utc>>>,
}

impl RelayedStates {
    fn of(queue: &[QueuedMessage]) -> Self {
        let mut full: HashSet<StateId> = HashSet::new();
        let mut any: HashMap<(&'static str, String), Vec<DateTime<Utc>>> = HashMap::new();
        for m in queue {
            let e = &m.envelope;
            let Some(at) = instant(e.last_updated_at.as_deref()) else {
                continue;
            };
            let class = e.kind.object_class().as_str();
            if e.source != Source::WebhookPost {
                full.insert((class, e.id.clone(), at));
            }
            any.entry((class, e.id.clone())).or_default().push(at);
        }
        Self { full, any }
    }
}

/// Rules 2 and 3: every delivery answered 2xx is accounted for. POSTs and GETs in one pass, so
/// the failures are listed in delivery order. Returns the message each POSTed key carried.
fn check_deliveries(
    report: &mut CheckReport,
    truth: &GroundTruth,
    options: &CheckOptions,
    on_queue: &KeyIndex<'_>,
    relayed: &RelayedStates,
) -> HashMap<String, DeliveredMessage> {
    let mut delivered_keys: HashMap<String, DeliveredMessage> = HashMap::new();
    let mut expected: HashSet<String> = HashSet::new();
    for record in &truth.deliveries {
        let delivered = record.outcome == DeliveryOutcome::Delivered;
        if record.method == "GET" {
            if delivered {
                report.gets_delivered += 1;
                check_get(report, truth, record, &relayed.any);
            }
            continue;
        }
        let message = match delivered_message(record) {
            Ok(m) => m,
            Err(e) => {
                report.fail(e);
                continue;
            }
        };
        if delivered {
            report.posts_delivered += 1;
            check_delivered_post(
                report,
                record,
                &message,
                &options.filter,
                on_queue,
                &relayed.full,
                &mut expected,
            );
        }
        delivered_keys.entry(message.key.clone()).or_insert(message);
    }
    report.messages_expected = expected.len();
    delivered_keys
}

/// Rule 2, for a POST answered 2xx: if the filter admits it, its message (once per key) is on
/// the queue under its key, or its state was relayed first as a complete object; if not, it is
/// absent.
fn check_delivered_post(
    report: &mut CheckReport,
    record: &DeliveryRecord,
    message: &DeliveredMessage,
    filter: &EventFilter,
    on_queue: &KeyIndex<'_>,
    full_states: &HashSet<StateId>,
    expected: &mut HashSet<String>,
) {
    let admitted = filter.admits(&message.event_name);
    let on_queue = on_queue.contains_key(message.key.as_str());
    if !admitted {
        if on_queue {
            report.fail(format!(
                "filtered event {} is on the queue ({})",
                message.event_name, message.key
            ));
        }
    } else if expected.insert(message.key.clone()) && !on_queue {
        let as_state = message.last_updated_at.is_some_and(|at| {
            full_states.contains(&(message.class.as_str(), message.id.clone(), at))
        });
        if as_state {
            report.covered_by_state += 1;
        } else {
            report.fail(format!(
                "delivery {} (change {}, {} {} at {}) was answered 2xx but is not on the queue \
                 under {} nor as a complete state",
                record.id,
                record.change_seq,
                message.event_name,
                message.id,
                record.last_updated_at,
                message.key
            ));
        }
    }
}

/// Rule 4: every envelope corresponds to a real change.
fn check_envelopes_real(
    report: &mut CheckReport,
    truth: &GroundTruth,
    queue: &[QueuedMessage],
    delivered_keys: &HashMap<String, DeliveredMessage>,
) {
    let states = real_states(&truth.changes);
    for m in queue {
        match m.envelope.source {
            Source::WebhookPost => check_post_envelope(report, m, delivered_keys),
            Source::Poll | Source::WebhookGet => check_state_envelope(report, m, &states),
        }
    }
}

/// A POST envelope: a delivered message, with the same key, id, event and time.
fn check_post_envelope(
    report: &mut CheckReport,
    m: &QueuedMessage,
    delivered_keys: &HashMap<String, DeliveredMessage>,
) {
    let e = &m.envelope;
    match delivered_keys.get(&e.dedupe_key) {
        None => report.fail(format!(
            "envelope at {} ({} {}) has message key {} that no delivery carried",
            m.position,
            e.event_name.as_deref().unwrap_or("-"),
            e.id,
            e.dedupe_key
        )),
        Some(d) => {
            if d.id != e.id
                || Some(d.event_name.as_str()) != e.event_name.as_deref()
                || d.last_updated_at != instant(e.last_updated_at.as_deref())
            {
                report.fail(format!(
                    "envelope at {} does not match the delivery of its key {}",
                    m.position, e.dedupe_key
                ));
            }
        }
    }
}

/// A poll or GET envelope: a state the object really had, with its version then.
fn check_state_envelope(
    report: &mut CheckReport,
    m: &QueuedMessage,
    states: &HashMap<StateId, u64>,
) {
    let e = &m.envelope;
    let class = e.kind.object_class().as_str();
    let Some(at) = instant(e.last_updated_at.as_deref()) else {
        report.fail(format!(
            "{} envelope at {} for {} has no lastUpdatedAt",
            e.source.as_str(),
            m.position,
            e.id
        ));
        return;
    };
    match states.get(&(class, e.id.clone(), at)) {
        None => report.fail(format!(
            "{} envelope at {} is a state {class} {} never had ({at})",
            e.source.as_str(),
            m.position,
            e.id
        )),
        Some(&version) => {
            if e.version.is_some_and(|v| v != version) {
                report.fail(format!(
                    "{} envelope at {} for {} at {at} has version {:?}, the object had {version}",
                    e.source.as_str(),
                    m.position,
                    e.id,
                    e.version
                ));
            }
        }
    }
}

/// Rule 5: every object's final state is on the queue.
fn check_final_states(report: &mut CheckReport, truth: &GroundTruth, relayed: &RelayedStates) {
    for object in &truth.objects {
        let class = match object.class.as_str() {
            "shipment" => ObjectClass::Shipment.as_str(),
            _ => ObjectClass::Order.as_str(),
        };
        let Some(at) = instant(Some(&object.last_updated_at)) else {
            report.fail(format!(
                "object {} has an unreadable lastUpdatedAt",
                object.id
            ));
            continue;
        };
        let present = relayed
            .any
            .get(&(class, object.id.clone()))
            .is_some_and(|seen| seen.contains(&at));
        if !present {
            report.fail(format!(
                "final state of {class} {} ({}, version {}) is not on the queue",
                object.id, object.last_updated_at, object.version
            ));
        }
    }
}

/// Every state an object had: (class, id, instant) -> version at that instant.
fn real_states(changes: &[Change]) -> HashMap<StateId, u64> {
    let mut states: HashMap<StateId, u64> = HashMap::new();
    for c in changes.iter().filter(|c| c.state_changed) {
        let Some(at) = instant(Some(&c.last_updated_at)) else {
            continue;
        };
        // Documents change the order itself too (version and lastUpdatedAt), and a poll or GET
        // then sees that order state.
        let class = match c.kind {
            EventKind::Shipment => ObjectClass::Shipment,
            EventKind::Order | EventKind::OrderDocuments => ObjectClass::Order,
        };
        let v = states
            .entry((class.as_str(), c.id.clone(), at))
            .or_insert(0);
        *v = (*v).max(c.version);
    }
    states
}

/// Rule 3: a GET answered 2xx left the object's state at or after that change on the queue.
fn check_get(
    report: &mut CheckReport,
    truth: &GroundTruth,
    record: &DeliveryRecord,
    any_states: &HashMap<(&'static str, String), Vec<DateTime<Utc>>>,
) {
    let Some(change) = truth.changes.get(record.change_seq as usize) else {
        report.fail(format!("GET delivery {} names no change", record.id));
        return;
    };
    let class = match class_of(change.kind) {
        ObjectClass::Shipment => ObjectClass::Shipment,
        _ => ObjectClass::Order,
    };
    let Some(at) = instant(Some(&change.last_updated_at)) else {
        return;
    };
    let covered = any_states
        .get(&(class.as_str(), change.id.clone()))
        .is_some_and(|seen| seen.iter().any(|s| *s >= at));
    if !covered {
        report.fail(format!(
            "GET delivery {} for {} at {} was answered 2xx but no state at or after it is on the queue",
            record.id, change.id, change.last_updated_at
        ));
    }
}

/// Per object and channel: (class, id, source).
type ChannelKey = (&'static str, String, &'static str);
/// The last message seen on a channel: its time, version and queue position.
type LastSeen = (DateTime<Utc>, Option<u64>, i64);

/// Rule 6: per object and channel, queue order follows `lastUpdatedAt` and `version`.
fn check_order(report: &mut CheckReport, queue: &[QueuedMessage]) {
    let mut sorted: Vec<&QueuedMessage> = queue.iter().collect();
    sorted.sort_by_key(|m| m.position);
    let mut last: BTreeMap<ChannelKey, LastSeen> = BTreeMap::new();
    for m in sorted {
        let e = &m.envelope;
        let Some(at) = instant(e.last_updated_at.as_deref()) else {
            continue;
        };
        let key = (
            e.kind.object_class().as_str(),
            e.id.clone(),
            e.source.as_str(),
        );
        if let Some((prev_at, prev_version, prev_pos)) = last.get(&key) {
            let version_back = matches!((prev_version, e.version), (Some(p), Some(v)) if v < *p);
            if at < *prev_at || version_back {
                report.fail(format!(
                    "{} {} via {}: position {} ({at}, version {:?}) comes after position {prev_pos} \
                     ({prev_at}, version {prev_version:?})",
                    key.0, e.id, key.2, m.position, e.version
                ));
            }
        }
        last.insert(key, (at, e.version, m.position));
    }
}

/// Compares the quarantine with the requests sent to be refused: the same bodies, each once.
pub fn check_quarantine(
    kept: &[QuarantinedRequest],
    sent_bodies: &[Vec<u8>],
) -> Result<(), String> {
    let mut expected: HashMap<&[u8], usize> = HashMap::new();
    for body in sent_bodies {
        *expected.entry(body.as_slice()).or_default() += 1;
    }
    let mut found: HashMap<&[u8], usize> = HashMap::new();
    for request in kept {
        *found.entry(request.body.as_slice()).or_default() += 1;
    }
    if expected == found {
        Ok(())
    } else {
        Err(format!(
            "quarantine holds {} request(s), {} malformed request(s) were sent; bodies differ: \
             kept {:?}, sent {:?}",
            kept.len(),
            sent_bodies.len(),
            kept.iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>(),
            sent_bodies
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        ))
    }
}
