//! One polled object: its identity, the lines that changed, the echo filter, the payload.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tcrelay_core::dedupe::object_state_key;
use tcrelay_core::envelope::{ObjectState, Payload, RawMembers};
use tradecloud_model::ObjectClass;
use tradecloud_model::fields::trim_xml_space;
use tradecloud_model::schema::{ORDER_SHAPE, SHIPMENT_SHAPE};
use tradecloud_model::{DecodeError, DecodedObject, read_order, read_shipment, timestamp};

use crate::api::PollStream;
use crate::config::EchoFilter;

/// An item of a page with the fields the loop orders and keys it by.
#[derive(Debug, Clone)]
pub(crate) struct Polled {
    /// Order or shipment id; empty when the item has none.
    pub id: String,
    /// `lastUpdatedAt` exactly as Tradecloud wrote it (a number by its digits); empty when the
    /// item has none.
    pub last_updated_at: String,
    /// The same, parsed, for comparisons (Tradecloud may write offsets other than `Z`, or no
    /// zone at all, read as UTC). For an item it cannot be placed by ([`Self::unplaceable`]),
    /// the earliest instant there is: such an item takes no part in the paging, and whatever
    /// compared it anyway would never move a position forward by it.
    pub at: DateTime<Utc>,
    /// Why the item cannot be placed in the result set's time order nor keyed by its id and
    /// time (no id, no `lastUpdatedAt`, or one that is no date-time), in words for the log;
    /// `None` for the items Tradecloud's contract promises. Such an item is relayed all the
    /// same (under its content's key when it lacks an id or a time, `object_state_key`) and
    /// left out of every paging decision, as an inclusive answer is: refusing it failed its
    /// stream's every run while Tradecloud served it, a stall no run could end.
    pub unplaceable: Option<String>,
    /// The instant `last_updated_at` names, when it reads as a date-time (also for an item
    /// [`Self::unplaceable`] for another reason, whose [`Self::at`] is the earliest instant).
    instant: Option<DateTime<Utc>>,
    /// Its place in its page as served (counting every item): where it lay among the items
    /// the paging decides by, when it is left out of them.
    pub index: usize,
    /// Whether the item is a JSON object. One that is not (`null`, a number, a text) carries
    /// no order or shipment: it is [`Self::unplaceable`], and nothing is relayed for it (an
    /// envelope's payload is an object).
    pub object: bool,
    /// Whether `last_updated_at` carries a zone.
    pub zoned: bool,
    /// Tradecloud's `version`.
    pub version: Option<u64>,
    /// `meta.messageId`, when the object carries one.
    pub message_id: Option<String>,
    /// The object's JSON text as polled.
    pub text: Arc<str>,
    /// The object as its payload, exactly as polled (decoded only when its text has line
    /// breaks: an envelope is one line).
    pub as_polled: Payload,
    /// What the preparation reads of an order, taken in the same pass as the fields above:
    /// `None` for a shipment, and for an order that pass could not read (the preparation then
    /// reads it whole).
    order: Option<OrderFacts>,
}

/// An order's members that the preparation reads, owned: they are read with the order's
/// identity, in one pass over its text, and used after the page is sorted.
#[derive(Debug, Clone)]
struct OrderFacts {
    /// Whether the order has an `orderId` (the typed view would take its id from it).
    has_order_id: bool,
    /// Its lines' four fields, in order.
    lines: Vec<OrderLine<'static>>,
}

impl Polled {
    /// An order of only an id and a `lastUpdatedAt`, as read from a page (the walk and paging
    /// unit tests need nothing more).
    #[cfg(test)]
    pub(crate) fn order_at(id: &str, at: &str) -> Self {
        let value = serde_json::json!({"id": id, "lastUpdatedAt": at});
        let raw = serde_json::value::to_raw_value(&value).expect("an object writes as JSON");
        Self::read(crate::api::PollStream::Orders, 0, &raw).expect("an id and a time read")
    }

    /// Its identifying fields, for the envelope.
    pub fn state(&self) -> ObjectState {
        ObjectState {
            id: self.id.clone(),
            version: self.version,
            last_updated_at: Some(self.last_updated_at.clone()).filter(|at| !at.is_empty()),
            message_id: self.message_id.clone(),
        }
    }

    /// The key its state is claimed under: the rule every channel keys a whole object by
    /// (`tcrelay_core::dedupe::object_state_key`), so an item without an id or a time gets the
    /// key a GET would give it.
    pub fn state_key(&self, class: ObjectClass) -> String {
        let at = Some(self.last_updated_at.as_str()).filter(|at| !at.is_empty());
        object_state_key(class, &self.id, at, || {
            // Keyed by its value as a GET keys the object it fetched; one that does not read as
            // a value (never, as it came in a page that did) by its text.
            self.value()
                .unwrap_or_else(|_| Value::String(self.text.to_string()))
        })
    }

    /// Its instant when its `lastUpdatedAt` reads as a date-time.
    pub fn timed_at(&self) -> Option<DateTime<Utc>> {
        self.instant
    }

    /// The item, [`Self::unplaceable`] when its `lastUpdatedAt` lies after `horizon` (a day
    /// ahead of this host's clock: more than a clock's drift or a time zone read as UTC can
    /// explain). Moved to, the cursor would pass every change made until that time: each
    /// later run asked for objects updated after, say, the year 3000, found none and
    /// reported itself caught up. Relayed as sent, keyed by its id and time as any other;
    /// once that time is near, the item is placed as any other.
    pub fn placed_before(mut self, horizon: DateTime<Utc>) -> Self {
        if self.unplaceable.is_none() && self.at > horizon {
            self.unplaceable = Some(format!(
                "item {} (id {:?}) has a lastUpdatedAt more than a day ahead of this host's \
                 clock, {:?}: not moved to",
                self.index, self.id, self.last_updated_at
            ));
            self.at = DateTime::<Utc>::MIN_UTC;
        }
        self
    }

    /// Reads an item of `stream` (its JSON text, as a page holds it); `Err` only for a text
    /// that is not JSON. An item without an id or a readable `lastUpdatedAt` is read all the
    /// same, marked [`Self::unplaceable`].
    pub fn read(stream: PollStream, index: usize, text: &RawValue) -> Result<Self, String> {
        let text: Arc<str> = Arc::from(text.get());
        let not_json = |e: serde_json::Error| format!("item {index} is not JSON: {e}");
        // An order's lines are read in the same pass as its identity: each pass over the text
        // is a good part of the relay's CPU per order (BENCHMARKS.md, "Poll cost", round 8).
        let order_item = stream
            .is_orders()
            .then(|| serde_json::from_str::<OrderItem<'_>>(&text).ok())
            .flatten();
        let (state, order) = match order_item {
            Some(item) => {
                let meta = item.meta.as_ref();
                // Its API names an order by `id`, its webhook events by `orderId`: an order
                // with both is keyed by `orderId`, as the webhook and the typed view read it.
                let members = RawMembers {
                    order_id: item.order_id,
                    id: item.id,
                    version: item.version,
                    last_updated_at: item.last_updated_at,
                    meta_last_updated_at: meta.and_then(|m| m.last_updated_at),
                    message_id: meta.and_then(|m| m.message_id),
                };
                let state = ObjectState::of_raw_members(members, "").map_err(not_json)?;
                let facts = OrderFacts {
                    has_order_id: item.order_id.is_some(),
                    lines: item
                        .lines
                        .into_iter()
                        .flatten()
                        .map(OrderLine::into_owned)
                        .collect(),
                };
                (state, Some(facts))
            }
            // Not of that shape (a repeated key, a line that is no object): read as any
            // object is, and the preparation reads the order whole.
            None => (
                ObjectState::of_text(&text, stream.kind().object_class(), "").map_err(not_json)?,
                None,
            ),
        };
        let last_updated_at = state.last_updated_at.unwrap_or_default();
        let parsed = (!last_updated_at.is_empty()).then(|| timestamp::parse(&last_updated_at));
        let object = text.trim_start().starts_with('{');
        let mut unplaceable = Vec::new();
        if !object {
            unplaceable.push("is no object (nothing to relay)".to_owned());
        } else if state.id.is_empty() {
            unplaceable.push("has no id".to_owned());
        }
        match &parsed {
            None if !object => {}
            None => unplaceable.push("has no lastUpdatedAt".to_owned()),
            // A number too: Tradecloud documents `lastUpdatedAt` as a text of the form
            // `YYYY-MM-DDThh:mm:ss.SSSZ` and writes no other (docs/tradecloud.md §1.4); epoch
            // milliseconds or seconds would be a guess at its meaning, and a wrong guess moves
            // the cursor past what was never relayed. Relayed, not placed.
            Some(Err(e)) => unplaceable.push(format!(
                "has a lastUpdatedAt that is no date-time, {last_updated_at:?}: {e}"
            )),
            Some(Ok(_)) => {}
        }
        let unplaceable = (!unplaceable.is_empty()).then(|| {
            format!(
                "item {index} (id {:?}) {}",
                state.id,
                unplaceable.join(" and ")
            )
        });
        let at = parsed.as_ref().and_then(|p| p.as_ref().ok()).copied();
        Ok(Self {
            zoned: at.is_none() || timestamp::has_zone(&last_updated_at),
            instant: at,
            at: match &unplaceable {
                Some(_) => DateTime::<Utc>::MIN_UTC,
                None => at.unwrap_or(DateTime::<Utc>::MIN_UTC),
            },
            unplaceable,
            index,
            object,
            id: state.id,
            last_updated_at,
            version: state.version,
            message_id: state.message_id,
            // A text over several lines is read as a value (an envelope is one line), by the
            // reading that takes a lone surrogate escape (refused, it failed the item's run,
            // every run while Tradecloud served it).
            as_polled: Payload::as_sent(Arc::clone(&text), |text| {
                value_of(text).map(|(value, _)| value)
            })
            .map_err(not_json)?,
            text,
            order,
        })
    }

    /// The object as a JSON value, for the paths that type or change it. A lone surrogate
    /// escape (a Java text cut in the middle of an emoji, as Jackson writes it), which
    /// serde_json refuses, is read as U+FFFD: the object's lines are then known, and its
    /// payload is written from the value, as a webhook body with one is.
    fn value(&self) -> serde_json::Result<Value> {
        let (value, escapes) = value_of(&self.text)?;
        if escapes > 0 {
            tracing::warn!(
                id = self.id,
                last_updated_at = self.last_updated_at,
                escapes,
                "polled object has lone UTF-16 surrogate escapes, read as U+FFFD"
            );
        }
        Ok(value)
    }
}

/// `text` as a JSON value, each lone surrogate escape read as U+FFFD ([`Polled::value`]), with
/// how many there were; `Err` for what serde_json refuses otherwise.
fn value_of(text: &str) -> serde_json::Result<(Value, usize)> {
    match serde_json::from_str(text) {
        Ok(value) => Ok((value, 0)),
        Err(e) => {
            let Some((mended, offsets)) =
                tcrelay_json_string::lone_surrogates_mended(text.as_bytes())
            else {
                return Err(e);
            };
            Ok((serde_json::from_slice(&mended)?, offsets.len()))
        }
    }
}

/// What to do with an object after the echo filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prepared {
    /// Every changed line is an echo of our own open request: nothing new for the ERP.
    Filtered,
    /// Relay it.
    Relay {
        /// Ids of the changed lines (without echoes); `None` when the object could not be read
        /// as an order or shipment, so nothing is known about its lines.
        changed_lines: Option<Vec<String>>,
        /// The distinct `lastUpdatedAt` values of the changed order lines (echoes left out),
        /// as written: the times of the events that carried those lines, which the run checks
        /// against the dedupe records when an event relayed the order's own state (an order
        /// event carries only its lines, so an earlier event's lines may be missing from what
        /// reached the queue). Empty for shipments: a shipment event carries every line.
        line_times: Vec<String>,
        /// A changed order line (echoes left out) has no `lastUpdatedAt` (or a blank one): no
        /// time tells which event carried it, so `line_times` cannot vouch that every change was
        /// relayed (the run then sends an order an event relayed once per state, as for one
        /// with too many times to check). Always `false` for shipments.
        untimed_change: bool,
        /// The object, without echo lines, and with only the changed lines when so configured.
        payload: Payload,
    },
}

/// How objects are prepared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preparation {
    /// Lines updated after this instant changed (orders and shipments): the start of the
    /// run's window.
    pub changed_since: DateTime<Utc>,
    /// Forward only the changed lines.
    pub changed_lines_only: bool,
    /// The echo filter, if on.
    pub echo_filter: Option<EchoFilter>,
}

impl Preparation {
    /// Prepares one object of `stream`.
    pub fn prepare(&self, stream: PollStream, polled: &Polled) -> Prepared {
        if stream.is_orders() {
            self.prepare_order(polled)
        } else {
            self.prepare_shipment(polled)
        }
    }

    fn prepare_order(&self, polled: &Polled) -> Prepared {
        self.prepare_order_as_sent(polled)
            .unwrap_or_else(|| self.prepare_order_typed(polled))
    }

    /// An order whose text reads as exactly what it says (nothing to type, nothing that does
    /// not fit the schema: nearly every order) is prepared from its text: from its lines' four
    /// fields, read with plain serde in the pass that read its identity ([`Polled::read`]), and
    /// forwarded as polled when no line is left out. `None` for any other order, for
    /// [`Self::prepare_order_typed`]; both give the same answer where this one gives one (a
    /// test compares them).
    fn prepare_order_as_sent(&self, polled: &Polled) -> Option<Prepared> {
        let order = polled.order.as_ref()?;
        if order.has_order_id || polled.id.trim().is_empty() {
            // The typed view would take its id from `orderId`, or refuse a blank one: left to it.
            return None;
        }
        if !tradecloud_model::json::reads_as_sent(&polled.text, &ORDER_SHAPE).ok()? {
            return None;
        }
        let lines = order.lines.iter().map(LineFacts::from);
        Some(match self.choose_lines(lines, polled.timed_at()) {
            Lines::AllEchoes => Prepared::Filtered,
            Lines::Relay {
                changed_ids,
                line_times,
                untimed_change,
                keep,
            } if keep.iter().all(|k| *k) => Prepared::Relay {
                changed_lines: Some(changed_ids),
                line_times,
                untimed_change,
                payload: polled.as_polled.clone(),
            },
            Lines::Relay {
                changed_ids,
                line_times,
                untimed_change,
                keep,
            } => {
                let mut payload = polled.value().ok()?;
                retain_by_index(payload.get_mut("lines"), &keep);
                Prepared::Relay {
                    changed_lines: Some(changed_ids),
                    line_times,
                    untimed_change,
                    payload: Payload::value(payload),
                }
            }
        })
    }

    /// An order read whole into its typed view: numbers and booleans typed, misfits reported.
    fn prepare_order_typed(&self, polled: &Polled) -> Prepared {
        let value = match polled.value() {
            Ok(value) => value,
            Err(e) => return unreadable(polled, &e.to_string()),
        };
        let (order, mut payload) = match lenient(read_order(value)) {
            Ok(decoded) => decoded,
            Err(e) => return unreadable(polled, &e.to_string()),
        };
        let lines = order.lines.unwrap_or_default();
        match self.choose_lines(lines.iter().map(LineFacts::from), polled.timed_at()) {
            Lines::AllEchoes => Prepared::Filtered,
            Lines::Relay {
                changed_ids,
                line_times,
                untimed_change,
                keep,
            } => {
                retain_by_index(payload.get_mut("lines"), &keep);
                Prepared::Relay {
                    changed_lines: Some(changed_ids),
                    line_times,
                    untimed_change,
                    payload: Payload::value(payload),
                }
            }
        }
    }

    /// Which of an order's lines changed, which are echoes, and which are kept; `order_at`:
    /// the order's own `lastUpdatedAt`.
    ///
    /// The order is filtered only when every changed line is an echo **and** an echo line
    /// carries the order's own time (or a later one): its latest change is then that echo. An
    /// order changed after its newest echo line changed for another reason (a header change,
    /// which moves no line); filtered, that state reached no channel and the cursor moved past
    /// it. A timeless echo line vouches for nothing: the order is relayed; nor does any echo
    /// line for an order whose own time does not read (`order_at` `None`).
    fn choose_lines<'a>(
        &self,
        lines: impl Iterator<Item = LineFacts<'a>>,
        order_at: Option<DateTime<Utc>>,
    ) -> Lines {
        let mut changed_ids = Vec::new();
        let mut line_times: Vec<String> = Vec::new();
        // A set, not a search of `line_times`: an order of 500 lines may have 500 times.
        let mut seen_times: HashSet<&str> = HashSet::new();
        let mut keep = Vec::with_capacity(lines.size_hint().0);
        let (mut changed_count, mut changed_echoes) = (0usize, 0usize);
        // Whether a changed echo line's time is at or after the order's own.
        let mut echo_is_latest = false;
        let mut untimed_change = false;
        for (i, line) in lines.enumerate() {
            // A line without a readable time counts as changed: better one line too many.
            let changed = changed_after(line.last_updated_at, self.changed_since);
            let echo = self
                .echo_filter
                .is_some_and(|f| f.skips(line.process_status, line.in_progress_status));
            if changed {
                changed_count += 1;
                if echo {
                    changed_echoes += 1;
                    echo_is_latest |= line
                        .last_updated_at
                        .and_then(|t| timestamp::parse(t).ok())
                        .is_some_and(|at| order_at.is_some_and(|order_at| at >= order_at));
                } else {
                    changed_ids.push(line.id.map_or_else(|| format!("#{i}"), str::to_owned));
                    // A line without a time has no event time to check: no time can tell that its
                    // change was relayed.
                    match line.last_updated_at.filter(|at| !at.trim().is_empty()) {
                        Some(at) => {
                            if seen_times.insert(at) {
                                line_times.push(at.to_owned());
                            }
                        }
                        None => untimed_change = true,
                    }
                }
            }
            keep.push(!echo && (changed || !self.changed_lines_only));
        }
        if changed_count > 0 && changed_echoes == changed_count && echo_is_latest {
            return Lines::AllEchoes;
        }
        Lines::Relay {
            changed_ids,
            line_times,
            untimed_change,
            keep,
        }
    }

    fn prepare_shipment(&self, polled: &Polled) -> Prepared {
        self.prepare_shipment_as_sent(polled)
            .unwrap_or_else(|| self.prepare_shipment_typed(polled))
    }

    /// A shipment that reads as sent, with every line kept (`changed_lines_only` off), is
    /// prepared from its text and forwarded as polled, as [`Self::prepare_order_as_sent`] does
    /// for orders; `None` for any other, for [`Self::prepare_shipment_typed`] (a test compares
    /// both).
    fn prepare_shipment_as_sent(&self, polled: &Polled) -> Option<Prepared> {
        if self.changed_lines_only
            || polled.id.trim().is_empty()
            || !tradecloud_model::json::reads_as_sent(&polled.text, &SHIPMENT_SHAPE).ok()?
        {
            return None;
        }
        let shipment: ShipmentLines<'_> = serde_json::from_str(&polled.text).ok()?;
        let carried = shipment.load_carriers.iter().flatten();
        let lines = shipment
            .lines
            .iter()
            .flatten()
            .chain(carried.flat_map(|c| c.lines.iter().flatten()))
            .map(ShipmentLineFacts::from);
        Some(Prepared::Relay {
            changed_lines: Some(changed_shipment_lines(self.changed_since, lines)),
            line_times: Vec::new(),
            untimed_change: false,
            payload: polled.as_polled.clone(),
        })
    }

    /// A shipment read whole into its typed view.
    fn prepare_shipment_typed(&self, polled: &Polled) -> Prepared {
        let value = match polled.value() {
            Ok(value) => value,
            Err(e) => return unreadable(polled, &e.to_string()),
        };
        let (shipment, mut payload) = match lenient(read_shipment(value)) {
            Ok(decoded) => decoded,
            Err(e) => return unreadable(polled, &e.to_string()),
        };
        let changed = |line_at: Option<&str>| changed_after(line_at, self.changed_since);
        let changed_ids = changed_shipment_lines(
            self.changed_since,
            shipment.all_lines().map(ShipmentLineFacts::from),
        );
        if self.changed_lines_only {
            let keep = |lines: &mut Value| {
                if let Some(lines) = lines.as_array_mut() {
                    lines.retain(|l| {
                        changed(l.pointer("/meta/lastUpdatedAt").and_then(Value::as_str))
                    });
                }
            };
            if let Some(lines) = payload.get_mut("lines") {
                keep(lines);
            }
            if let Some(carriers) = payload
                .get_mut("loadCarriers")
                .and_then(Value::as_array_mut)
            {
                for carrier in carriers {
                    if let Some(lines) = carrier.get_mut("lines") {
                        keep(lines);
                    }
                }
            }
        }
        Prepared::Relay {
            changed_lines: Some(changed_ids),
            line_times: Vec::new(),
            untimed_change: false,
            payload: Payload::value(payload),
        }
    }
}

/// What an order's lines decide.
enum Lines {
    /// Every changed line is an echo.
    AllEchoes,
    /// Relay: the changed lines' ids and distinct times, and which lines to keep, in order.
    Relay {
        changed_ids: Vec<String>,
        line_times: Vec<String>,
        untimed_change: bool,
        keep: Vec<bool>,
    },
}

/// The four fields of an order line the preparation reads, from the typed view or from the
/// text's borrowed view.
struct LineFacts<'a> {
    id: Option<&'a str>,
    last_updated_at: Option<&'a str>,
    process_status: Option<&'a str>,
    in_progress_status: Option<&'a str>,
}

/// Reads the facts from either view of a line: the typed one and the text's borrowed one
/// name the fields alike (owned or borrowed strings), so one body serves both.
macro_rules! line_facts_from {
    ($($view:ty),+) => {$(
        impl<'a> From<&'a $view> for LineFacts<'a> {
            fn from(line: &'a $view) -> Self {
                let status = line.status.as_ref();
                Self {
                    id: line.id.as_deref(),
                    // Without the white space around it, as the webhook reads its event's time:
                    // a changed line's time is the state key that event claimed.
                    last_updated_at: line.last_updated_at.as_deref().map(trim_xml_space),
                    process_status: status.and_then(|s| s.process_status.as_deref()),
                    in_progress_status: status.and_then(|s| s.in_progress_status.as_deref()),
                }
            }
        }
    )+};
}
line_facts_from!(tradecloud_model::OrderLine, OrderLine<'_>);

/// A polled order as one pass reads it: the members [`ObjectState`] is read from (as
/// [`ObjectState::of_text`] reads them), and those the preparation reads, borrowed from its
/// text. All but `lines` mirror `of_text`'s own struct: serde embeds one struct's members in
/// another's only by buffering them (`flatten`), which would cost about the pass this saves.
/// The rules that read them stay in one place, `tradecloud_model::fields`, through
/// [`ObjectState::of_raw_members`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderItem<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    version: Option<&'a RawValue>,
    #[serde(borrow)]
    last_updated_at: Option<&'a RawValue>,
    #[serde(borrow)]
    meta: Option<ItemMeta<'a>>,
    #[serde(borrow)]
    order_id: Option<&'a RawValue>,
    #[serde(borrow)]
    lines: Option<Vec<OrderLine<'a>>>,
}

/// `meta` of [`OrderItem`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemMeta<'a> {
    #[serde(borrow)]
    last_updated_at: Option<&'a RawValue>,
    #[serde(borrow)]
    message_id: Option<&'a RawValue>,
}

/// An order line's four fields the preparation reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderLine<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<LineStatus<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineStatus<'a> {
    #[serde(borrow)]
    process_status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_progress_status: Option<Cow<'a, str>>,
}

impl OrderLine<'_> {
    /// The line with its texts copied out of the order's text.
    fn into_owned(self) -> OrderLine<'static> {
        let owned = |text: Option<Cow<'_, str>>| text.map(|t| Cow::Owned(t.into_owned()));
        OrderLine {
            id: owned(self.id),
            last_updated_at: owned(self.last_updated_at),
            status: self.status.map(|status| LineStatus {
                process_status: owned(status.process_status),
                in_progress_status: owned(status.in_progress_status),
            }),
        }
    }
}

/// A shipment's lines as far as the preparation reads them, borrowed from its text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentLines<'a> {
    #[serde(borrow)]
    lines: Option<Vec<ShipmentLine<'a>>>,
    #[serde(borrow)]
    load_carriers: Option<Vec<LoadCarrier<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentMeta<'a> {
    #[serde(borrow)]
    last_updated_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LoadCarrier<'a> {
    #[serde(borrow)]
    lines: Option<Vec<ShipmentLine<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentLine<'a> {
    #[serde(borrow)]
    purchase_order_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    purchase_order_line_position: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delivery_schedule_position: Option<Cow<'a, str>>,
    #[serde(borrow)]
    meta: Option<ShipmentMeta<'a>>,
}

/// Logs the fields an object carried in an unexpected type (they are forwarded as sent).
fn lenient<T>(read: Result<DecodedObject<T>, DecodeError>) -> Result<(T, Value), DecodeError> {
    read.map(|decoded| {
        if !decoded.leniencies.is_empty() {
            tcrelay_core::warn_lenient(&decoded.leniencies);
        }
        (decoded.view, decoded.payload)
    })
}

fn unreadable(polled: &Polled, reason: &str) -> Prepared {
    // Still relayed whole: dropping it would lose a change, and the ERP may read more than
    // our typed view does.
    tracing::warn!(
        id = polled.id,
        last_updated_at = polled.last_updated_at,
        reason,
        "polled object does not read as the expected type; relaying it whole, without changed lines"
    );
    Prepared::Relay {
        changed_lines: None,
        line_times: Vec::new(),
        untimed_change: false,
        payload: polled.as_polled.clone(),
    }
}

/// Whether a line updated at `line_at` changed after `since`. A line without a readable time
/// counts as changed: kept rather than lost.
fn changed_after(line_at: Option<&str>, since: DateTime<Utc>) -> bool {
    line_at
        .and_then(|t| timestamp::parse(t).ok())
        .is_none_or(|at| at > since)
}

/// The fields of a shipment line the preparation reads, from the typed view or from the
/// text's borrowed view.
struct ShipmentLineFacts<'a> {
    purchase_order_number: Option<&'a str>,
    purchase_order_line_position: Option<&'a str>,
    delivery_schedule_position: Option<&'a str>,
    last_updated_at: Option<&'a str>,
}

/// As [`line_facts_from`], for shipment lines.
macro_rules! shipment_line_facts_from {
    ($($view:ty),+) => {$(
        impl<'a> From<&'a $view> for ShipmentLineFacts<'a> {
            fn from(l: &'a $view) -> Self {
                Self {
                    purchase_order_number: l.purchase_order_number.as_deref(),
                    purchase_order_line_position: l.purchase_order_line_position.as_deref(),
                    delivery_schedule_position: l.delivery_schedule_position.as_deref(),
                    last_updated_at: l.meta.as_ref().and_then(|m| m.last_updated_at.as_deref()),
                }
            }
        }
    )+};
}
shipment_line_facts_from!(tradecloud_model::ShipmentLine, ShipmentLine<'_>);

/// The ids of the lines (loose, then in load carriers) changed since the run's window began:
/// those whose `meta.lastUpdatedAt` is after `since` (not only those changed with the
/// shipment's latest change: two changes between polls would lose the first). Shipment lines have no id:
/// `purchaseOrderNumber/purchaseOrderLinePosition`, plus `/deliverySchedulePosition` when
/// given, is what identifies one for the ERP; `#<index>` when even that is missing.
fn changed_shipment_lines<'a>(
    since: DateTime<Utc>,
    lines: impl Iterator<Item = ShipmentLineFacts<'a>>,
) -> Vec<String> {
    lines
        .enumerate()
        .filter(|(_, l)| changed_after(l.last_updated_at, since))
        .map(
            |(i, l)| match (l.purchase_order_number, l.purchase_order_line_position) {
                (Some(po), Some(pos)) => match l.delivery_schedule_position {
                    Some(schedule) => format!("{po}/{pos}/{schedule}"),
                    None => format!("{po}/{pos}"),
                },
                _ => format!("#{i}"),
            },
        )
        .collect()
}

/// Keeps the elements of a JSON array whose index is marked in `keep`. Leaves the array alone
/// when its length differs from the typed view's (it then is not the array we read).
fn retain_by_index(array: Option<&mut Value>, keep: &[bool]) {
    let Some(items) = array.and_then(Value::as_array_mut) else {
        return;
    };
    if items.len() != keep.len() || keep.iter().all(|k| *k) {
        return;
    }
    let mut flags = keep.iter();
    items.retain(|_| *flags.next().unwrap_or(&true));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::EchoSide;

    fn at(text: &str) -> DateTime<Utc> {
        timestamp::parse(text).unwrap()
    }

    /// An order as polled.
    fn polled(value: Value) -> Result<Polled, String> {
        polled_as(PollStream::Orders, value)
    }

    fn polled_as(stream: PollStream, value: Value) -> Result<Polled, String> {
        Polled::read(stream, 0, &serde_json::value::to_raw_value(&value).unwrap())
    }

    fn order_value() -> Value {
        json!({
                "id": "o-1",
                "version": 4,
                "lastUpdatedAt": "2025-01-02T00:00:00.000Z",
                "lines": [
                    {"id": "l1", "lastUpdatedAt": "2025-01-01T00:00:00.000Z",
                     "status": {"processStatus": "Confirmed"}},
                    {"id": "l2", "lastUpdatedAt": "2025-01-02T00:00:00.000Z",
                     "status": {"processStatus": "InProgress", "inProgressStatus": "OpenBuyerReopenRequest"}},
                    {"id": "l3", "lastUpdatedAt": "2025-01-02T00:00:00.000Z",
                     "status": {"processStatus": "InProgress", "inProgressStatus": "OpenSupplierProposal"}}
                ]
        })
    }

    fn order() -> Polled {
        polled(order_value()).unwrap()
    }

    fn prep(changed_lines_only: bool, echo_filter: Option<EchoFilter>) -> Preparation {
        Preparation {
            changed_since: at("2025-01-01T12:00:00.000Z"),
            changed_lines_only,
            echo_filter,
        }
    }

    fn line_ids(payload: &Payload) -> Vec<String> {
        payload.to_value().unwrap()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn order_lines_after_the_window_start_are_the_changed_ones() {
        let Prepared::Relay {
            changed_lines,
            line_times,
            payload,
            ..
        } = prep(false, None).prepare(PollStream::Orders, &order())
        else {
            panic!("relayed")
        };
        assert_eq!(changed_lines, Some(vec!["l2".into(), "l3".into()]));
        // Both changed at one time: one time to check.
        assert_eq!(line_times, ["2025-01-02T00:00:00.000Z"]);
        assert_eq!(line_ids(&payload), ["l1", "l2", "l3"]);
        let Prepared::Relay { payload, .. } =
            prep(true, None).prepare(PollStream::Orders, &order())
        else {
            panic!("relayed")
        };
        assert_eq!(line_ids(&payload), ["l2", "l3"]);
    }

    #[test]
    fn echo_lines_are_left_out_and_an_all_echo_change_is_filtered() {
        let buyer = Some(EchoFilter::OwnRequests(EchoSide::Buyer));
        let Prepared::Relay {
            changed_lines,
            payload,
            ..
        } = prep(false, buyer).prepare(PollStream::Orders, &order())
        else {
            panic!("relayed")
        };
        assert_eq!(changed_lines, Some(vec!["l3".into()]));
        assert_eq!(line_ids(&payload), ["l1", "l3"]);
        // Both changed lines are InProgress: option 1 filters the whole change.
        assert_eq!(
            prep(false, Some(EchoFilter::InProgress)).prepare(PollStream::Orders, &order()),
            Prepared::Filtered
        );
        // A header-only change (no changed line) is never an echo.
        let mut header_only = order_value();
        header_only["lines"] = json!([{"id": "l2", "lastUpdatedAt": "2024-01-01T00:00:00.000Z",
            "status": {"processStatus": "InProgress", "inProgressStatus": "OpenBuyerReopenRequest"}}]);
        let header_only = polled(header_only).unwrap();
        assert!(matches!(
            prep(false, buyer).prepare(PollStream::Orders, &header_only),
            Prepared::Relay { .. }
        ));
    }

    /// An order changed after its last echo line (a header change: notes, documents, an
    /// indicator; no line moves) has something new for the ERP: it is relayed, without the
    /// echo lines, by both preparations. Filtered, that state reached no one, and the cursor
    /// moved past it.
    #[test]
    fn an_order_changed_after_its_echo_lines_is_not_filtered() {
        let mut later = order_value();
        // The echo lines l2 and l3 changed on 2025-01-02, in the window; the order on the 3rd.
        later["lastUpdatedAt"] = json!("2025-01-03T00:00:00.000Z");
        let later = polled(later).unwrap();
        let in_progress = prep(false, Some(EchoFilter::InProgress));
        for prepared in [
            in_progress.prepare(PollStream::Orders, &later),
            in_progress.prepare_order_typed(&later),
        ] {
            let Prepared::Relay {
                changed_lines,
                line_times,
                payload,
                ..
            } = prepared
            else {
                panic!("a header change after the echoes is relayed")
            };
            assert_eq!(changed_lines, Some(vec![]));
            assert!(line_times.is_empty(), "{line_times:?}");
            assert_eq!(line_ids(&payload), ["l1"]);
        }
        // The order's own time is an echo line's (in any spelling): its latest change is the
        // echo, filtered as before.
        let mut same = order_value();
        same["lastUpdatedAt"] = json!("2025-01-02T01:00:00+01:00");
        let same = polled(same).unwrap();
        assert_eq!(
            in_progress.prepare(PollStream::Orders, &same),
            Prepared::Filtered
        );
        assert_eq!(in_progress.prepare_order_typed(&same), Prepared::Filtered);
    }

    #[test]
    fn the_times_to_check_are_the_changed_lines_distinct_times_without_echoes() {
        let order = json!({
            "id": "o-1",
            "lastUpdatedAt": "2025-01-03T00:00:00.000Z",
            "lines": [
                {"id": "old", "lastUpdatedAt": "2025-01-01T00:00:00.000Z"},
                {"id": "a", "lastUpdatedAt": "2025-01-02T00:00:00.000Z"},
                {"id": "echo", "lastUpdatedAt": "2025-01-02T06:00:00.000Z",
                 "status": {"processStatus": "InProgress", "inProgressStatus": "OpenBuyerReopenRequest"}},
                {"id": "b", "lastUpdatedAt": "2025-01-03T00:00:00.000Z"},
                {"id": "c", "lastUpdatedAt": "2025-01-02T00:00:00.000Z"},
                {"id": "timeless"}
            ]
        });
        let buyer = Some(EchoFilter::OwnRequests(EchoSide::Buyer));
        let untimed = |order: &Value| {
            let Prepared::Relay { untimed_change, .. } =
                prep(false, buyer).prepare(PollStream::Orders, &polled(order.clone()).unwrap())
            else {
                panic!("relayed")
            };
            untimed_change
        };
        for changed_lines_only in [false, true] {
            let Prepared::Relay {
                changed_lines,
                line_times,
                untimed_change,
                ..
            } = prep(changed_lines_only, buyer)
                .prepare(PollStream::Orders, &polled(order.clone()).unwrap())
            else {
                panic!("relayed")
            };
            assert_eq!(
                changed_lines,
                Some(vec!["a".into(), "b".into(), "c".into(), "timeless".into()])
            );
            assert_eq!(
                line_times,
                ["2025-01-02T00:00:00.000Z", "2025-01-03T00:00:00.000Z"]
            );
            // `timeless` changed, and no time can tell which event carried it.
            assert!(untimed_change);
        }
        // A blank time is none; an echo line without a time is no change to vouch for.
        let mut blank = order.clone();
        blank["lines"][5]["lastUpdatedAt"] = json!(" ");
        assert!(untimed(&blank));
        let mut timed = order.clone();
        timed["lines"][5]["lastUpdatedAt"] = json!("2025-01-02T00:00:00.000Z");
        assert!(!untimed(&timed));
        let mut echo = order.clone();
        echo["lines"][5]["status"] =
            json!({"processStatus": "InProgress", "inProgressStatus": "OpenBuyerReopenRequest"});
        assert!(!untimed(&echo));
    }

    #[test]
    fn shipment_lines_changed_since_the_run_began_are_the_changed_ones() {
        // The run began at 12:00 on 2025-01-01 (`prep`). PO1/3 changed at 18:00, before the
        // shipment's latest change: two changes between polls, and both must be relayed.
        let shipment = polled_as(
            PollStream::Shipments,
            json!({
                    "id": "s-1",
                    "meta": {"lastUpdatedAt": "2025-01-02T00:00:00.000Z", "messageId": "m-9"},
                    "lines": [
                        {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "1",
                         "meta": {"lastUpdatedAt": "2025-01-02T01:00:00.000+01:00"}},
                        {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "2",
                         "meta": {"lastUpdatedAt": "2025-01-01T00:00:00.000Z"}},
                        {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "3",
                         "meta": {"lastUpdatedAt": "2025-01-01T18:00:00.000Z"}}
                    ],
                    "loadCarriers": [{"containerNumber": "C1", "lines": [
                        {"purchaseOrderNumber": "PO2", "purchaseOrderLinePosition": "1",
                         "deliverySchedulePosition": "3",
                         "meta": {"lastUpdatedAt": "2025-01-02T00:00:00.000Z"}},
                        {"purchaseOrderNumber": "PO2", "purchaseOrderLinePosition": "2",
                         "meta": {"lastUpdatedAt": "2024-12-01T00:00:00.000Z"}}
                    ]}]
            }),
        )
        .unwrap();
        assert_eq!(shipment.message_id.as_deref(), Some("m-9"));
        assert_eq!(shipment.last_updated_at, "2025-01-02T00:00:00.000Z");
        let Prepared::Relay {
            changed_lines,
            line_times,
            untimed_change,
            payload,
        } = prep(true, Some(EchoFilter::InProgress)).prepare(PollStream::Shipments, &shipment)
        else {
            panic!("relayed")
        };
        // A shipment event carries every line: no earlier change can hide behind it.
        assert!(line_times.is_empty(), "{line_times:?}");
        assert!(!untimed_change);
        assert_eq!(
            changed_lines,
            Some(vec!["PO1/1".into(), "PO1/3".into(), "PO2/1/3".into()])
        );
        let payload = payload.to_value().unwrap();
        assert_eq!(payload["lines"].as_array().unwrap().len(), 2);
        assert_eq!(
            payload["loadCarriers"][0]["lines"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(payload["loadCarriers"][0]["containerNumber"], "C1");
    }

    /// The same order written over several lines (an answer pretty-printed): its payload is
    /// read as a value (an envelope is one line), and that reading refused the lone surrogate:
    /// the item failed its run ("not JSON"), every run while Tradecloud served it.
    #[test]
    fn an_order_over_several_lines_with_a_lone_surrogate_escape_is_read() {
        let text = "{\n  \"id\": \"o-1\",\n  \"lastUpdatedAt\": \"2025-01-02T00:00:00.000Z\",\n  \"description\": \"cut \\ud83d\"\n}";
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        let order = Polled::read(PollStream::Orders, 0, &raw).unwrap();
        assert_eq!(order.unplaceable, None);
        let payload = order.as_polled.to_value().unwrap();
        assert_eq!(payload["description"], "cut \u{FFFD}");
    }

    /// Jackson writes half of a surrogate pair (a Java text cut in the middle of an emoji) as
    /// an escape of its own, which serde_json refuses. Such an order is read with U+FFFD in its
    /// place, so its changed lines and their times are known; before, it was relayed whole as
    /// unreadable, with no line times to check against the events that relayed it.
    #[test]
    fn an_order_with_a_lone_surrogate_escape_is_read_with_its_lines() {
        let text = r#"{"id":"o-1","lastUpdatedAt":"2025-01-02T00:00:00.000Z","description":"cut \ud83d","lines":[{"id":"l1","lastUpdatedAt":"2025-01-02T00:00:00.000Z"},{"id":"l2","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}]}"#;
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        let order = Polled::read(PollStream::Orders, 0, &raw).unwrap();
        let Prepared::Relay {
            changed_lines,
            line_times,
            payload,
            ..
        } = prep(true, None).prepare(PollStream::Orders, &order)
        else {
            panic!("relayed")
        };
        assert_eq!(changed_lines, Some(vec!["l1".to_owned()]));
        assert_eq!(line_times, ["2025-01-02T00:00:00.000Z"]);
        let payload = payload.to_value().unwrap();
        assert_eq!(payload["description"], "cut \u{FFFD}");
        assert_eq!(payload["lines"].as_array().unwrap().len(), 1);
    }

    /// An item without an id or a readable time is read, not refused (refusing it failed its
    /// stream's every run), marked unplaceable with the reason, and keyed as a GET keys such
    /// an object: by its id and time as written, or by its content when it lacks either.
    #[test]
    fn items_without_id_or_readable_time_are_read_and_marked_unplaceable() {
        let class = ObjectClass::Order;
        let t = "2025-01-01T00:00:00.000Z";
        let no_id = json!({"lastUpdatedAt": t});
        let read = Polled::read(
            PollStream::Orders,
            3,
            &serde_json::value::to_raw_value(&no_id).unwrap(),
        )
        .unwrap();
        assert!(
            read.unplaceable
                .as_deref()
                .unwrap()
                .contains("item 3 (id \"\") has no id")
        );
        assert_eq!(
            read.state_key(class),
            tcrelay_core::dedupe::content_state_key(class, "", &no_id)
        );
        let no_time = json!({"id": "o"});
        let read = polled(no_time.clone()).unwrap();
        assert!(
            read.unplaceable
                .as_deref()
                .unwrap()
                .contains("has no lastUpdatedAt")
        );
        assert_eq!(read.state().last_updated_at, None);
        assert_eq!(
            polled(no_time.clone()).unwrap().state_key(class),
            tcrelay_core::dedupe::content_state_key(class, "o", &no_time)
        );
        let odd = polled(json!({"id": "o", "lastUpdatedAt": "yesterday"})).unwrap();
        assert!(
            odd.unplaceable
                .as_deref()
                .unwrap()
                .contains("\"yesterday\"")
        );
        assert_eq!(odd.state_key(class), "state/order/o/yesterday");
        assert_eq!(odd.state().last_updated_at.as_deref(), Some("yesterday"));
        // Both wanting: one reason naming both.
        let neither = polled(json!({"version": 2})).unwrap();
        let why = neither.unplaceable.unwrap();
        assert!(why.contains("no id and has no lastUpdatedAt"), "{why}");
        // Tradecloud's form is placed as always.
        let placed = polled(json!({"id": "o", "lastUpdatedAt": t})).unwrap();
        assert_eq!(placed.unplaceable, None);
        assert_eq!(
            placed.state_key(class),
            tcrelay_core::dedupe::state_key(class, "o", t)
        );
    }

    /// The fixtures' objects of one kind (`order`, `shipment`): a poll page's items, a
    /// fetched one, and the one under `member` in each JSON webhook fixture.
    fn fixture_objects(kind: &str, member: &str) -> Vec<Value> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let read = |path: std::path::PathBuf| -> Value {
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
        };
        let mut objects: Vec<Value> = read(root.join(format!("api/{kind}-poll-page.json")))["data"]
            .as_array()
            .unwrap()
            .clone();
        objects.push(read(root.join(format!("api/{kind}-fetched.json"))));
        for entry in std::fs::read_dir(root.join("webhook")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(object @ Value::Object(_)) = read(path).get(member).cloned()
            {
                objects.push(object);
            }
        }
        objects
    }

    /// Orders to prepare both ways: the fixtures' orders (a webhook's as a polled order would
    /// carry it), and variations of each that the fast path must decline or must read alike.
    fn orders() -> Vec<Value> {
        let mut orders = fixture_objects("order", "orderEvent");
        for order in &mut orders {
            // As fetched or polled: `id`, not `orderId`.
            if let Some(id) = order.as_object_mut().unwrap().remove("orderId") {
                order["id"] = id;
                order["lastUpdatedAt"] = json!("2025-01-02T00:00:00.000Z");
            }
        }
        orders.push(order_value());
        let mut variations = Vec::new();
        for order in &orders {
            let mut v = order.clone();
            v["version"] = json!("5"); // typed: the fast path declines
            variations.push(v);
            let mut v = order.clone();
            v["orderId"] = json!(" "); // the typed view reads its id there: declined
            variations.push(v);
            let mut v = order.clone();
            v["id"] = json!(" "); // a blank id, unreadable to the typed view: declined
            variations.push(v);
            let mut v = order.clone();
            v["lines"] = json!([null]); // unreadable as typed: declined
            variations.push(v);
            let mut v = order.clone();
            v["meta"] = json!("m"); // not read in one pass: declined
            variations.push(v);
            let mut v = order.clone();
            v["lines"] = json!([{"id": 7, "status": {"processStatus": ["Confirmed"]}}]);
            variations.push(v);
            let mut v = order.clone();
            v["lines"] = json!([{"id": "a\"b", "lastUpdatedAt": "2025-01-02T00:00:00Z",
                "status": null}, {"status": {"processStatus": "InProgress",
                "inProgressStatus": "OpenSupplierProposal"}}, {"id": null, "lastUpdatedAt": "?"}]);
            variations.push(v);
        }
        orders.extend(variations);
        orders
    }

    #[test]
    fn an_order_prepared_from_its_text_is_prepared_as_from_its_typed_value() {
        let filters = [
            None,
            Some(EchoFilter::InProgress),
            Some(EchoFilter::OwnRequests(EchoSide::Buyer)),
            Some(EchoFilter::OwnRequests(EchoSide::Supplier)),
        ];
        let (mut fast, mut declined) = (0, 0);
        for order in orders() {
            let polled = polled(order.clone()).unwrap();
            for changed_lines_only in [false, true] {
                for filter in filters {
                    let prep = prep(changed_lines_only, filter);
                    let typed = prep.prepare_order_typed(&polled);
                    match prep.prepare_order_as_sent(&polled) {
                        Some(as_sent) => {
                            fast += 1;
                            assert_eq!(as_sent, typed, "{order}");
                        }
                        None => declined += 1,
                    }
                }
            }
        }
        // Both paths were taken, many times each.
        assert!(
            fast > 100 && declined > 100,
            "{fast} fast, {declined} declined"
        );
    }

    /// An order's identity read in the same pass as its lines is the one every object's text
    /// gives ([`ObjectState::of_text`]), whether that pass reads the order or declines it.
    #[test]
    fn an_order_read_with_its_lines_has_the_state_its_text_gives() {
        let mut texts: Vec<String> = orders().iter().map(Value::to_string).collect();
        // A repeated member: plain serde refuses it, a JSON value keeps the last.
        texts.push(r#"{"id":"a","lastUpdatedAt":"2025-01-02T00:00:00Z","id":"b"}"#.into());
        texts.push(
            r#"{"id":"a","lastUpdatedAt":"2025-01-02T00:00:00Z","meta":{"messageId":"m"},"lines":[],"lines":[]}"#
                .into(),
        );
        let (mut in_one_pass, mut declined) = (0, 0);
        for text in texts {
            let polled = Polled::read(
                PollStream::Orders,
                0,
                &RawValue::from_string(text.clone()).unwrap(),
            )
            .unwrap();
            assert_eq!(
                polled.state(),
                ObjectState::of_text(&text, ObjectClass::Order, "").unwrap(),
                "{text}"
            );
            match polled.order {
                Some(_) => in_one_pass += 1,
                None => declined += 1,
            }
        }
        assert!(
            in_one_pass > 10 && declined > 3,
            "{in_one_pass} read, {declined} declined"
        );
        // A shipment's lines are not an order's: not read in that pass.
        let shipment = polled_as(PollStream::Shipments, order_value()).unwrap();
        assert!(shipment.order.is_none());
    }

    #[test]
    fn an_order_kept_whole_is_forwarded_as_polled() {
        let text = r#"{"lastUpdatedAt":"2025-01-02T00:00:00.000Z","id":"o-\u0031","note":"caf\u00e9","quantity":1.50,
            "lines":[{"id":"l1","lastUpdatedAt":"2025-01-02T00:00:00.000Z"}]}"#.replace('\n', "");
        let polled = Polled::read(
            PollStream::Orders,
            0,
            &RawValue::from_string(text.clone()).unwrap(),
        )
        .unwrap();
        let Prepared::Relay { payload, .. } =
            prep(false, None).prepare(PollStream::Orders, &polled)
        else {
            panic!("relayed")
        };
        assert_eq!(payload.text(), Some(text.as_str()));
        // A line left out: written anew, as a value.
        let Prepared::Relay { payload, .. } =
            prep(true, None).prepare(PollStream::Orders, &order())
        else {
            panic!("relayed")
        };
        assert_eq!(payload.text(), None);
        // Pretty-printed, the object is decoded (an envelope is one line).
        let pretty = serde_json::to_string_pretty(&order_value()).unwrap();
        let polled = Polled::read(
            PollStream::Orders,
            0,
            &RawValue::from_string(pretty).unwrap(),
        )
        .unwrap();
        let Prepared::Relay { payload, .. } =
            prep(false, None).prepare(PollStream::Orders, &polled)
        else {
            panic!("relayed")
        };
        assert_eq!(payload.text(), None);
        assert_eq!(payload, Payload::value(order_value()));
    }

    /// Shipments to prepare both ways, as [`orders`] for orders.
    fn shipments() -> Vec<Value> {
        let mut shipments = fixture_objects("shipment", "shipment");
        let mut variations = Vec::new();
        for shipment in &shipments {
            let mut v = shipment.clone();
            v["version"] = json!("5"); // typed: declined
            variations.push(v);
            let mut v = shipment.clone();
            v["id"] = json!(" "); // blank: declined
            variations.push(v);
            let mut v = shipment.clone();
            v["lines"] = json!([null]); // unreadable as typed: declined
            variations.push(v);
            let mut v = shipment.clone();
            v["lastUpdatedAt"] = json!("2025-01-02T00:00:00.000Z");
            v["lines"] = json!([
                {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "1",
                 "meta": {"lastUpdatedAt": "2025-01-02T01:00:00.000+01:00"}},
                {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "2",
                 "deliverySchedulePosition": "3", "meta": {"lastUpdatedAt": "2025-01-02T00:00:00.000Z"}},
                {"meta": {"lastUpdatedAt": "2025-01-02T00:00:00.000Z"}},
                {"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "4", "meta": null}
            ]);
            v["loadCarriers"] = json!([{"lines": [{"purchaseOrderNumber": "PO2",
                "purchaseOrderLinePosition": "1", "meta": {"lastUpdatedAt": "2025-01-02T00:00:00Z"}}]},
                {"containerNumber": "C2"}]);
            variations.push(v);
        }
        shipments.extend(variations);
        shipments
    }

    #[test]
    fn a_shipment_prepared_from_its_text_is_prepared_as_from_its_typed_value() {
        let (mut fast, mut declined) = (0, 0);
        for shipment in shipments() {
            let polled = polled_as(PollStream::Shipments, shipment.clone()).unwrap();
            for changed_lines_only in [false, true] {
                let prep = prep(changed_lines_only, Some(EchoFilter::InProgress));
                let typed = prep.prepare_shipment_typed(&polled);
                match prep.prepare_shipment_as_sent(&polled) {
                    Some(as_sent) => {
                        fast += 1;
                        assert_eq!(as_sent, typed, "{shipment}");
                        assert!(
                            matches!(as_sent, Prepared::Relay { ref payload, .. } if payload.text().is_some())
                        );
                    }
                    None => declined += 1,
                }
            }
        }
        assert!(
            fast >= 5 && declined >= 15,
            "{fast} fast, {declined} declined"
        );
    }

    /// One object state as each channel reads it: a webhook POST carrying it as its event, a
    /// GET that fetched it (by the id the POST read), a poll page's item. `Err` when the
    /// channel cannot read it.
    fn read_by_every_channel(
        stream: PollStream,
        object: &Value,
    ) -> [Result<ObjectState, String>; 3] {
        let (event_name, member, class) = match stream {
            PollStream::Shipments => ("ShipmentUpdated", "shipment", ObjectClass::Shipment),
            _ => ("OrderUpdatedByBuyer", "orderEvent", ObjectClass::Order),
        };
        let body = json!({"eventName": event_name, member: object});
        let post =
            tradecloud_model::decode_webhook(body.to_string().as_bytes(), Some("application/json"))
                .map(|d| ObjectState {
                    id: d.body.object_id().to_owned(),
                    version: d.body.version(),
                    last_updated_at: d.body.last_updated_at().map(str::to_owned),
                    message_id: d.body.message_id().map(str::to_owned),
                })
                .map_err(|e| e.to_string());
        let requested = post.as_ref().map_or("requested", |s| s.id.as_str());
        let get = Ok(ObjectState::of(object, class, requested));
        let poll = polled_as(stream, object.clone()).map(|p| p.state());
        [post, get, poll]
    }

    /// docs/dedupe.md: "a state relayed by one channel is a duplicate on the others". Each
    /// object below once read differently on one channel than on another: a numeric
    /// `messageId` or `lastUpdatedAt` (the webhook read its digits, GET and poll ignored it),
    /// one of white space only (GET and poll kept it, the webhook read it as absent; a shipment
    /// poll stopped at it although its `meta.lastUpdatedAt` is readable), an order with both
    /// `orderId` and `id` (the webhook keyed it by the first, GET and poll by the second), a
    /// numeric `id` (every run of the poll stream failed at "item N has no id"), an order whose
    /// time is only in `meta.lastUpdatedAt` (GET and poll read it, the webhook did not).
    #[test]
    fn one_state_reads_alike_on_every_channel() {
        let t = "2025-01-02T00:00:00.000Z";
        let cases = [
            (
                PollStream::Orders,
                json!({"id": "o-1", "lastUpdatedAt": t, "meta": {"messageId": 12345}}),
            ),
            (
                PollStream::Orders,
                json!({"id": "o-1", "lastUpdatedAt": t, "meta": {"messageId": " \t"}}),
            ),
            (
                PollStream::Orders,
                json!({"id": "o-1", "lastUpdatedAt": " ", "meta": {"lastUpdatedAt": t}}),
            ),
            (
                PollStream::Shipments,
                json!({"id": "s-1", "lastUpdatedAt": "  ", "meta": {"lastUpdatedAt": t}}),
            ),
            (
                PollStream::Shipments,
                json!({"id": "s-1", "meta": {"lastUpdatedAt": t, "messageId": 7}}),
            ),
            (
                PollStream::Orders,
                json!({"orderId": "o-1", "id": "x-9", "lastUpdatedAt": t}),
            ),
            (
                PollStream::Orders,
                json!({"orderId": null, "id": "o-1", "lastUpdatedAt": t}),
            ),
            (
                PollStream::Orders,
                json!({"id": 123, "lastUpdatedAt": t, "version": "4"}),
            ),
            (PollStream::Shipments, json!({"id": 77, "lastUpdatedAt": t})),
            (
                PollStream::Orders,
                json!({"id": "o-1", "meta": {"lastUpdatedAt": t}}),
            ),
            // Tradecloud's documented forms, as before.
            (
                PollStream::Orders,
                json!({"id": " o-1\n", "lastUpdatedAt": t, "version": 4, "meta": {"messageId": "m-1"}}),
            ),
            (
                PollStream::Shipments,
                json!({"id": "s-1", "meta": {"lastUpdatedAt": t, "messageId": "m-1"}}),
            ),
        ];
        let mut differ = Vec::new();
        for (stream, object) in cases {
            let [post, get, poll] = read_by_every_channel(stream, &object);
            let post = post.unwrap_or_else(|e| panic!("{object}: the webhook reads it: {e}"));
            // The same fields, so the same state key, on every channel; each object's time is `t`.
            let alike = get.as_ref() == Ok(&post) && poll.as_ref() == Ok(&post);
            if !alike || post.last_updated_at.as_deref() != Some(t) {
                differ.push(format!(
                    "{object}:\n  POST {post:?}\n  GET  {get:?}\n  poll {poll:?}"
                ));
            }
        }
        assert!(
            differ.is_empty(),
            "read differently:\n{}",
            differ.join("\n")
        );
        // Tradecloud's own forms (the fixtures' polled, fetched and webhook objects) read alike.
        let fixtures = [
            (PollStream::Orders, fixture_objects("order", "orderEvent")),
            (
                PollStream::Shipments,
                fixture_objects("shipment", "shipment"),
            ),
        ];
        for (stream, objects) in fixtures {
            assert!(objects.len() >= 3, "{}", objects.len());
            for object in objects {
                let [post, get, poll] = read_by_every_channel(stream, &object);
                let post = post.unwrap_or_else(|e| panic!("{object}: the webhook reads it: {e}"));
                assert!(post.last_updated_at.is_some(), "{object}");
                assert_eq!(get, Ok(post.clone()), "GET, {object}");
                assert_eq!(poll, Ok(post), "poll, {object}");
            }
        }
        // A numeric time is read by its digits on every channel, and keyed so: a poll cannot
        // place it among times (it relays it all the same), and says which value it could not
        // read as one.
        let object = json!({"id": "o-1", "lastUpdatedAt": 1735689600000_u64});
        let [post, get, poll] = read_by_every_channel(PollStream::Orders, &object);
        let post = post.unwrap();
        assert_eq!(post.last_updated_at.as_deref(), Some("1735689600000"));
        assert_eq!(get, Ok(post.clone()));
        assert_eq!(poll, Ok(post));
        let polled = polled(object.clone()).unwrap();
        let why = polled.unplaceable.as_deref().unwrap();
        assert!(why.contains("no date-time, \"1735689600000\""), "{why}");
        assert_eq!(
            polled.state_key(ObjectClass::Order),
            tcrelay_core::dedupe::object_state_key(
                ObjectClass::Order,
                "o-1",
                Some("1735689600000"),
                || object.clone()
            )
        );
    }

    /// A changed line's time is the state key the event that carried it claimed (docs/design.md,
    /// "Webhook and poll together"): it is read as the webhook reads that event's time, without
    /// the white space around it. Read as written, a padded time keyed a state no event claimed,
    /// and the order was sent again as a missed change.
    #[test]
    fn a_changed_lines_time_is_read_as_its_events_time() {
        let padded = "\n  2025-01-02T00:00:00.000Z\t";
        let line = json!({"id": "l1", "lastUpdatedAt": padded});
        let event = json!({"eventName": "OrderLinesAcceptedBySupplier",
            "orderEvent": {"orderId": "o-1", "lastUpdatedAt": padded, "lines": [line]}});
        let decoded = tradecloud_model::decode_webhook(event.to_string().as_bytes(), None).unwrap();
        let event_key = tcrelay_core::dedupe::state_key(
            ObjectClass::Order,
            decoded.body.object_id(),
            decoded.body.last_updated_at().unwrap(),
        );
        let order = json!({"id": "o-1", "lastUpdatedAt": "2025-01-02T00:00:00.000Z",
            "lines": [line]});
        for text in [
            order.to_string(),
            order
                .to_string()
                .replace("\"lines\"", "\"version\":\"1\",\"lines\""),
        ] {
            let polled =
                Polled::read(PollStream::Orders, 0, &RawValue::from_string(text).unwrap()).unwrap();
            let Prepared::Relay { line_times, .. } =
                prep(false, None).prepare(PollStream::Orders, &polled)
            else {
                panic!("relayed")
            };
            let line_keys: Vec<String> = line_times
                .iter()
                .map(|at| tcrelay_core::dedupe::state_key(ObjectClass::Order, "o-1", at))
                .collect();
            assert_eq!(line_keys, std::slice::from_ref(&event_key));
        }
    }
}
