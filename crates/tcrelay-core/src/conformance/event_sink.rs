//! The [`EventSink`] contract, as the relay relies on it (`relay::Claims::enqueue_in_chunks`
//! completes the claims of what was sent and releases the others, whose messages the caller
//! sends again):
//!
//! - Every envelope of a batch that `enqueue` does not report failed reaches the consumer
//!   exactly once, as its JSON document ([`Envelope::to_json`]) byte for byte, however large
//!   (over SQS's 1 MiB too, through the claim check) and on either side of the claim-check
//!   threshold. An empty batch is `Ok` and sends nothing; a batch of any size is sent whole.
//! - An envelope reported failed never reaches the consumer: the caller releases its claims
//!   and sends it again, and a copy that had arrived would make two. Every envelope the queue
//!   refused is reported failed; a batch refused whole reports every index.
//! - Where the queue keeps order (a FIFO queue, the local queue, the memory fake), each
//!   object's envelopes (one message group: [`Envelope::message_group_id`]) arrive in the order
//!   given, within a batch and across batches; and no envelope after a failed one of its group
//!   is reported sent, since the caller's resend of the failed one would then land behind it.
//!   After such a failure, sending the failed envelopes again (as the caller does) gets every
//!   envelope on the queue once, each object's in order.
//!
//! Each rule is a function taking a [`Subject`]: a fresh, empty queue a consumer can read, and
//! a switch that makes the queue refuse every message of an envelope whose `eventName` is
//! [`REFUSED_EVENT`]. [`event_sink_conformance!`](crate::event_sink_conformance) expands to one
//! `#[tokio::test]` per rule, so a failure names the rule:
//!
//! ```text
//! tcrelay_core::event_sink_conformance!(subject());
//! ```
//!
//! where `subject()` is an async fn (or any expression with `.await`) returning a [`Subject`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tradecloud_model::{Format, ObjectKind};

use crate::envelope::{ENVELOPE_SCHEMA, Envelope, Payload, Source};
use crate::ports::{EventSink, SinkError};

/// The envelope `eventName` whose messages a subject's queue refuses while [`Subject::refuse`]
/// is on: an event name, so one message of an object is refused and its others are not.
pub const REFUSED_EVENT: &str = "RefusedByTheQueue";

/// The most envelopes the relay hands the sink in one call in the rules: more than a poll
/// page (100 objects), so an adapter that splits batches splits this one many times.
pub const LARGEST_BATCH: usize = 250;

/// SQS's largest message, which only the claim check carries beyond.
const SQS_MAX_MESSAGE_BYTES: usize = 1_048_576;

/// A queue under test, with a consumer. Every rule gets a fresh one that holds no message.
#[async_trait]
pub trait Subject: Send + Sync {
    /// The sink.
    fn sink(&self) -> &dyn EventSink;
    /// Every message a consumer receives from now on until the queue is empty, each as the
    /// text the consumer reads (a claim check followed to the object it names), in the order
    /// received; each is removed from the queue (received once).
    async fn receive(&self) -> Vec<String>;
    /// Whether the queue keeps each message group's order (not a standard SQS queue).
    fn keeps_order(&self) -> bool;
    /// Makes the queue refuse (`true`) every message of an envelope whose `eventName` is
    /// [`REFUSED_EVENT`], as a queue refuses a message it will never take, or take them again
    /// (`false`).
    fn refuse(&self, on: bool);
    /// The message size above which the sink claim-checks (`None`: it has no such threshold),
    /// set small by the subject so the rules cross it cheaply.
    fn claim_check_threshold(&self) -> Option<usize>;
}

/// An envelope of `kind` for object `id`, state `n`, with its own dedupe key.
pub fn envelope(kind: ObjectKind, id: &str, n: u64) -> Envelope {
    Envelope {
        schema: ENVELOPE_SCHEMA.to_owned(),
        source: Source::Poll,
        kind,
        event_name: None,
        id: id.to_owned(),
        version: Some(n),
        last_updated_at: Some(format!(
            "2026-03-01T10:{:02}:{:02}.{n:03}Z",
            n / 60 % 60,
            n % 60
        )),
        message_id: None,
        dedupe_key: format!(
            "state/{}/{id}/{n}/{}",
            kind.object_class(),
            uuid::Uuid::new_v4()
        ),
        received_at: "2026-03-01T10:00:01.000Z".to_owned(),
        format: Format::Json,
        changed_lines: Some(vec![format!("{n}")]),
        payload: json!({"id": id, "version": n, "price": "12.3400"}).into(),
    }
}

/// `envelope` with a payload of filler that makes its JSON document exactly `len` bytes.
pub fn envelope_of_len(kind: ObjectKind, id: &str, n: u64, len: usize) -> Envelope {
    let mut e = envelope(kind, id, n);
    e.payload = json!({"fill": ""}).into();
    let base = json_of(&e).len();
    assert!(len >= base, "an envelope is at least {base} bytes");
    e.payload = json!({"fill": "x".repeat(len - base)}).into();
    debug_assert_eq!(json_of(&e).len(), len);
    e
}

/// The envelopes of every shape the relay sends: each source and format, a payload forwarded
/// as Tradecloud's own text (key order, spacing, number spelling and escapes kept), strings
/// with quotes, backslashes, control characters, line separators and non-ASCII characters.
pub fn assorted() -> Vec<Envelope> {
    let mut event = envelope(ObjectKind::Order, "o-1", 1);
    event.source = Source::WebhookPost;
    event.event_name = Some("OrderIssuedByBuyer".to_owned());
    event.message_id = Some("7f3e0e8e-2d8a-4a4c-9a53-0d1b1e0c2f11".to_owned());
    event.changed_lines = None;
    event.payload = json!({
        "eventName": "OrderIssuedByBuyer",
        "order": {"id": "o-1", "note": "a \"quoted\" \\ word\n\ttab \u{0}\u{1f} é ‘’ 😀 \u{2028}\u{2029} \u{7f}"},
    })
    .into();

    let mut txml = envelope(ObjectKind::SingleDeliveryOrder, "o-2", 2);
    txml.source = Source::WebhookPost;
    txml.event_name = Some("OrderChangedBySupplier".to_owned());
    txml.format = Format::Txml;
    txml.payload =
        json!({"singleDeliveryOrderEvent": {"order": {"description": "<b>&amp;</b> Größe ½"}}})
            .into();

    let mut fetched = envelope(ObjectKind::Shipment, "s-1", 3);
    fetched.source = Source::WebhookGet;
    fetched.changed_lines = None;

    let mut as_sent = envelope(ObjectKind::Order, "o-3", 4);
    let text: Arc<str> = Arc::from(
        r#"{"z":1,  "a" : "\u00e9\"q\"\/", "n":1.50,"big":123456789012345678901234567890,"e":"\ud83d\ude00","lines":[ {"id":"1"} ]}"#,
    );
    as_sent.payload = Payload::as_sent(text, |t| serde_json::from_str(t)).expect("JSON");
    assert!(as_sent.payload.text().is_some(), "forwarded as text");

    let documents = envelope(ObjectKind::OrderDocuments, "o-4", 5);
    let mut odd_id = envelope(ObjectKind::Order, "PO 2189/ü\"\\", 6);
    odd_id.event_name = Some("Order\u{1}Odd".to_owned());
    vec![event, txml, fetched, as_sent, documents, odd_id]
}

fn json_of(envelope: &Envelope) -> String {
    envelope.to_json().expect("the envelope serialises")
}

/// The envelope a received text is (by its dedupe key), with the text.
fn parsed(text: &str) -> (String, Envelope) {
    let envelope: Envelope = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the consumer read no envelope ({e}): {text:.300}"));
    (envelope.dedupe_key.clone(), envelope)
}

/// Received texts by dedupe key, asserting each arrived once.
#[track_caller]
fn once_each(received: &[String]) -> HashMap<String, &String> {
    let mut by_key = HashMap::new();
    for text in received {
        let (key, _) = parsed(text);
        assert!(
            by_key.insert(key.clone(), text).is_none(),
            "{key} arrived twice"
        );
    }
    by_key
}

/// Asserts that `received` is exactly `sent`, each once, byte for byte.
#[track_caller]
fn assert_exactly(received: &[String], sent: &[&Envelope]) {
    let by_key = once_each(received);
    for envelope in sent {
        let got = by_key
            .get(&envelope.dedupe_key)
            .unwrap_or_else(|| panic!("{} ({}) never arrived", envelope.dedupe_key, envelope.id));
        let want = json_of(envelope);
        assert!(
            **got == want,
            "{} arrived changed: {} bytes, sent {}: {:.300}",
            envelope.dedupe_key,
            got.len(),
            want.len(),
            got
        );
    }
    assert_eq!(
        received.len(),
        sent.len(),
        "messages nobody sent arrived: {received:?}"
    );
}

/// Asserts that each group's envelopes in `received` came in the order `sent` gives them.
#[track_caller]
fn assert_group_order(received: &[String], sent: &[&Envelope]) {
    let place: HashMap<&str, usize> = sent
        .iter()
        .enumerate()
        .map(|(i, e)| (e.dedupe_key.as_str(), i))
        .collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for text in received {
        let (key, envelope) = parsed(text);
        if let Some(&i) = place.get(key.as_str()) {
            groups
                .entry(envelope.message_group_id())
                .or_default()
                .push(i);
        }
    }
    for (group, order) in groups {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "group {group} arrived out of order");
    }
}

async fn send(s: &dyn Subject, envelopes: &[Envelope]) {
    s.sink()
        .enqueue(envelopes)
        .await
        .unwrap_or_else(|e| panic!("enqueue of {} envelopes: {e}", envelopes.len()));
}

/// An empty batch is `Ok` and sends nothing.
pub async fn an_empty_batch_sends_nothing(s: &dyn Subject) {
    send(s, &[]).await;
    assert_eq!(s.receive().await, Vec::<String>::new());
}

/// Sends `batches` one after the other, then checks that every envelope arrived once, byte
/// for byte, and, on a queue that keeps order, each object's in the order sent.
async fn send_and_check_arrival(s: &dyn Subject, batches: &[&[Envelope]]) {
    for batch in batches {
        send(s, batch).await;
    }
    let received = s.receive().await;
    let sent: Vec<&Envelope> = batches.iter().flat_map(|batch| batch.iter()).collect();
    assert_exactly(&received, &sent);
    if s.keeps_order() {
        assert_group_order(&received, &sent);
    }
}

/// Every envelope of a batch arrives once, its JSON document byte for byte.
pub async fn every_envelope_arrives_once_byte_for_byte(s: &dyn Subject) {
    let sent = assorted();
    send(s, &sent).await;
    let received = s.receive().await;
    assert_exactly(&received, &sent.iter().collect::<Vec<_>>());
    // Received once: nothing is left for a second read.
    assert_eq!(s.receive().await, Vec::<String>::new());
}

/// An envelope holding U+FFFE or U+FFFF (SQS refuses them raw; the SQS sink writes them as
/// JSON escapes) arrives as the same JSON document, claim-checked or not.
pub async fn noncharacters_arrive_as_the_same_json(s: &dyn Subject) {
    let odd = "a\u{FFFE}b\u{FFFF}c";
    let mut small = envelope(ObjectKind::Order, "o-nc", 1);
    small.payload = json!({"note": odd}).into();
    small.event_name = Some(format!("Odd{odd}"));
    let mut text = envelope_of_len(ObjectKind::Order, "o-nc", 2, 2 * SQS_MAX_MESSAGE_BYTES);
    let filler = serde_json::to_string(&text.payload).expect("JSON");
    let raw: Arc<str> = Arc::from(format!("{{\"note\":\"{odd}\",\"rest\":{filler}}}"));
    text.payload = Payload::as_sent(raw, |t| serde_json::from_str(t)).expect("JSON");
    let sent = [small, text];
    send(s, &sent).await;
    let received = s.receive().await;
    assert_eq!(received.len(), 2, "two sent");
    let by_key = once_each(&received);
    for envelope in &sent {
        let got: serde_json::Value =
            serde_json::from_str(by_key[&envelope.dedupe_key]).expect("the consumer reads JSON");
        let want: serde_json::Value = serde_json::from_str(&json_of(envelope)).expect("JSON");
        assert!(
            got == want,
            "{} arrived as another document",
            envelope.dedupe_key
        );
    }
}

/// A batch larger than any the relay sends arrives whole, each envelope once.
pub async fn the_largest_batch_arrives_whole(s: &dyn Subject) {
    let kinds = [
        ObjectKind::Order,
        ObjectKind::Shipment,
        ObjectKind::OrderDocuments,
    ];
    let sent: Vec<Envelope> = (0..LARGEST_BATCH)
        .map(|i| envelope(kinds[i % 3], &format!("obj-{}", i % 37), i as u64))
        .collect();
    send_and_check_arrival(s, &[&sent]).await;
}

/// Each object's envelopes arrive in the order given, within a batch (its two order forms
/// are one object) and across batches.
pub async fn each_objects_order_is_kept(s: &dyn Subject) {
    let kinds = [
        ObjectKind::Order,
        ObjectKind::SingleDeliveryOrder,
        ObjectKind::Shipment,
    ];
    let mut first = Vec::new();
    for n in 0..24u64 {
        // Three objects interleaved; o-a in both of its forms.
        let (kind, id) = match n % 3 {
            0 => (kinds[(n / 3 % 2) as usize], "o-a"),
            1 => (kinds[0], "o-b"),
            _ => (kinds[2], "s-c"),
        };
        first.push(envelope(kind, id, n));
    }
    let second: Vec<Envelope> = (24..30u64)
        .map(|n| envelope(ObjectKind::Order, "o-a", n))
        .collect();
    send_and_check_arrival(s, &[&first, &second]).await;
}

/// An envelope larger than SQS's largest message (2 MiB) arrives byte for byte.
pub async fn an_envelope_over_sqs_s_limit_arrives_byte_for_byte(s: &dyn Subject) {
    let big = envelope_of_len(ObjectKind::Order, "o-big", 1, 2 * SQS_MAX_MESSAGE_BYTES + 7);
    let small = envelope(ObjectKind::Order, "o-big", 2);
    send_and_check_arrival(s, &[&[big, small]]).await;
}

/// Envelopes on either side of the claim-check threshold, and exactly at it, arrive byte for
/// byte and, one object's, in order. Sizes step by one byte across the span the message's
/// attributes can take, so the boundary is crossed whatever they count.
pub async fn envelopes_around_the_claim_check_threshold_arrive_byte_for_byte(s: &dyn Subject) {
    let Some(threshold) = s.claim_check_threshold() else {
        return;
    };
    let sent: Vec<Envelope> = (threshold - 160..=threshold + 8)
        .enumerate()
        .map(|(n, len)| envelope_of_len(ObjectKind::Order, "o-edge", n as u64, len))
        .collect();
    send_and_check_arrival(s, &[&sent]).await;
}

/// A batch of envelopes of several objects, those at the places `refused_at` refused.
fn with_refused(len: usize, refused_at: &[usize]) -> Vec<Envelope> {
    (0..len)
        .map(|i| {
            let id = match i % 4 {
                0 => "o-w".to_owned(),
                1 => "o-x".to_owned(),
                2 => "o-y".to_owned(),
                _ => format!("o-{i}"),
            };
            refused(
                envelope(ObjectKind::Order, &id, i as u64),
                refused_at.contains(&i),
            )
        })
        .collect()
}

/// `envelope`, refused by the queue while the subject refuses when `refused`.
fn refused(mut envelope: Envelope, refused: bool) -> Envelope {
    if refused {
        envelope.source = Source::WebhookPost;
        envelope.event_name = Some(REFUSED_EVENT.to_owned());
    }
    envelope
}

/// What a partial failure must leave: the refused ones reported, nothing reported failed on the
/// queue, everything not reported on it once; where order is kept, nothing after a failed one
/// of its group reported sent. Returns the failed indexes.
#[track_caller]
fn assert_partial(
    s: &dyn Subject,
    sent: &[Envelope],
    answer: Result<(), SinkError>,
    received: &[String],
) -> Vec<usize> {
    let refused: Vec<usize> = (0..sent.len())
        .filter(|&i| sent[i].event_name.as_deref() == Some(REFUSED_EVENT))
        .collect();
    let failed = match answer {
        Ok(()) => panic!("a batch with refused envelopes {refused:?} answered Ok"),
        Err(e) => e.failed,
    };
    for i in &failed {
        assert!(*i < sent.len(), "failed index {i} is not in the batch");
    }
    for i in &refused {
        assert!(
            failed.contains(i),
            "refused envelope {i} reported sent: {failed:?}"
        );
    }
    let delivered: Vec<&Envelope> = (0..sent.len())
        .filter(|i| !failed.contains(i))
        .map(|i| &sent[i])
        .collect();
    // Nothing reported failed arrived: the caller sends it again.
    assert_exactly(received, &delivered);
    if s.keeps_order() {
        assert_nothing_sent_after_a_failure(sent, &failed);
    }
    let mut failed = failed;
    failed.sort_unstable();
    failed.dedup();
    failed
}

/// Asserts that no envelope after a failed one of its group is reported sent: the caller's
/// resend of the failed one would land behind it.
#[track_caller]
fn assert_nothing_sent_after_a_failure(sent: &[Envelope], failed: &[usize]) {
    for &f in failed {
        let group = sent[f].message_group_id();
        for (later, envelope) in sent.iter().enumerate().skip(f + 1) {
            assert!(
                envelope.message_group_id() != group || failed.contains(&later),
                "envelope {later} reported sent after {f} of its group failed: a resend of {f} \
                 would land behind it"
            );
        }
    }
}

/// A refused envelope is reported failed, never on the queue; what is reported sent arrived
/// once; sending the failed ones again gets everything on the queue once and in order.
pub async fn a_refused_envelope_is_reported_and_its_resend_completes_the_batch(s: &dyn Subject) {
    // o-x's and o-y's first refused, each with later messages in the batch.
    let sent = with_refused(23, &[5, 14]);
    s.refuse(true);
    let answer = s.sink().enqueue(&sent).await;
    let first = s.receive().await;
    let failed = assert_partial(s, &sent, answer, &first);
    // The caller releases the failed ones' claims; the retry sends them again, in order.
    s.refuse(false);
    let again: Vec<Envelope> = failed.iter().map(|&i| sent[i].clone()).collect();
    send(s, &again).await;
    let second = s.receive().await;
    let all: Vec<String> = first.into_iter().chain(second).collect();
    let sent: Vec<&Envelope> = sent.iter().collect();
    assert_exactly(&all, &sent);
    if s.keeps_order() {
        assert_group_order(&all, &sent);
    }
}

/// A batch of only refused envelopes reports every index and sends nothing.
pub async fn a_batch_refused_whole_reports_every_index(s: &dyn Subject) {
    let sent: Vec<Envelope> = (0..12u64)
        .map(|n| {
            refused(
                envelope(ObjectKind::Order, &format!("o-{}", n % 3), n),
                true,
            )
        })
        .collect();
    s.refuse(true);
    let answer = s.sink().enqueue(&sent).await;
    let mut failed = answer.expect_err("every envelope refused").failed;
    failed.sort_unstable();
    failed.dedup();
    assert_eq!(failed, (0..sent.len()).collect::<Vec<_>>());
    assert_eq!(s.receive().await, Vec::<String>::new());
}

/// A refused envelope large enough for the claim check is reported like any other, and
/// nothing reported failed reaches the consumer.
pub async fn a_refused_claim_checked_envelope_is_reported(s: &dyn Subject) {
    let big = 2 * SQS_MAX_MESSAGE_BYTES;
    let sent = vec![
        envelope_of_len(ObjectKind::Order, "o-1", 0, big),
        refused(envelope_of_len(ObjectKind::Order, "o-2", 1, big), true),
        envelope(ObjectKind::Order, "o-2", 2),
    ];
    s.refuse(true);
    let answer = s.sink().enqueue(&sent).await;
    let received = s.receive().await;
    assert_partial(s, &sent, answer, &received);
}

/// Batches sent at once (concurrent webhook requests) each arrive whole and once, each
/// object's envelopes in order; one of them refused fails alone.
pub async fn concurrent_batches_each_arrive_and_a_refused_one_fails_alone(s: &dyn Subject) {
    let batches: Vec<Vec<Envelope>> = (0..8u64)
        .map(|b| {
            (0..5u64)
                .map(|n| {
                    let e = envelope(ObjectKind::Order, &format!("o-{b}"), b * 10 + n);
                    refused(e, b == 3 && n == 2)
                })
                .collect()
        })
        .collect();
    s.refuse(true);
    let answers = super::join_all(
        batches
            .iter()
            .map(|batch| s.sink().enqueue(batch))
            .collect(),
    )
    .await;
    s.refuse(false);
    let received = s.receive().await;
    let mut delivered = Vec::new();
    for (b, (batch, answer)) in batches.iter().zip(answers).enumerate() {
        match answer {
            Ok(()) => {
                assert!(b != 3, "the batch with a refused envelope answered Ok");
                delivered.extend(batch);
            }
            Err(e) => {
                assert_eq!(b, 3, "batch {b} failed beside the refused one: {e}");
                assert!(e.failed.contains(&2), "the refused envelope reported sent");
                if s.keeps_order() {
                    assert_nothing_sent_after_a_failure(batch, &e.failed);
                }
                delivered.extend(
                    (0..batch.len())
                        .filter(|i| !e.failed.contains(i))
                        .map(|i| &batch[i]),
                );
            }
        }
    }
    assert_exactly(&received, &delivered);
    if s.keeps_order() {
        assert_group_order(&received, &delivered);
    }
}

/// Every JSON file of Tradecloud's published examples, as the payload text of an envelope
/// (forwarded as sent when it is one line, else as its value), arrives byte for byte.
pub async fn real_payloads_arrive_byte_for_byte(s: &dyn Subject) {
    let sent: Vec<Envelope> = super::realworld_files()
        .into_iter()
        .filter_map(|(name, bytes)| {
            let text = String::from_utf8(bytes).ok()?;
            let text = text.trim_start_matches('\u{feff}').trim();
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            let mut e = envelope(ObjectKind::Order, &name, 1);
            e.payload = Payload::as_sent(Arc::from(text), |_| Ok::<_, ()>(value)).ok()?;
            Some(e)
        })
        .collect();
    send(s, &sent).await;
    let received = s.receive().await;
    assert_exactly(&received, &sent.iter().collect::<Vec<_>>());
}

/// Expands to one `#[tokio::test]` per rule of [`crate::conformance::event_sink`], each on a
/// fresh subject from `$subject` (an expression whose `.await` is a
/// [`Subject`](crate::conformance::event_sink::Subject)).
#[macro_export]
macro_rules! event_sink_conformance {
    ($subject:expr) => {
        $crate::event_sink_conformance!(@rules $subject;
            an_empty_batch_sends_nothing,
            every_envelope_arrives_once_byte_for_byte,
            noncharacters_arrive_as_the_same_json,
            the_largest_batch_arrives_whole,
            each_objects_order_is_kept,
            an_envelope_over_sqs_s_limit_arrives_byte_for_byte,
            envelopes_around_the_claim_check_threshold_arrive_byte_for_byte,
            a_refused_envelope_is_reported_and_its_resend_completes_the_batch,
            a_batch_refused_whole_reports_every_index,
            a_refused_claim_checked_envelope_is_reported,
            concurrent_batches_each_arrive_and_a_refused_one_fails_alone,
            real_payloads_arrive_byte_for_byte,
        );
    };
    (@rules $subject:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let subject = $subject.await;
                $crate::conformance::event_sink::$rule(&subject).await;
            }
        )*
    };
}
