//! The batching, retry and FIFO-order logic against scripted SQS answers.

use std::sync::Mutex;

use tcrelay_core::envelope::{ENVELOPE_SCHEMA, Source};
use tradecloud_model::{Format, ObjectKind};

use super::*;

fn envelope(id: &str, n: usize) -> Envelope {
    Envelope {
        schema: ENVELOPE_SCHEMA.to_owned(),
        source: Source::WebhookPost,
        kind: ObjectKind::Order,
        event_name: Some("OrderIssuedByBuyer".to_owned()),
        id: id.to_owned(),
        version: Some(n as u64),
        last_updated_at: Some(format!("2026-01-01T00:00:00.{n:03}Z")),
        message_id: None,
        dedupe_key: format!("order:{id}:{n}"),
        received_at: "2026-01-01T00:00:01.000Z".to_owned(),
        format: Format::Json,
        changed_lines: None,
        payload: serde_json::json!({"n": n}).into(),
    }
}

/// How the script answers one entry on one call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Ok,
    SenderFault,
    Transient,
    Omitted,
}

type Script = Box<dyn Fn(usize, usize) -> Answer + Send + Sync>;

/// Answers each entry by `script(call number, index)`, or fails whole calls listed in
/// `failing_calls`; records the indexes of every call.
struct Scripted {
    script: Script,
    failing_calls: Vec<usize>,
    calls: Mutex<Vec<Vec<usize>>>,
}

impl Scripted {
    fn new(script: impl Fn(usize, usize) -> Answer + Send + Sync + 'static) -> Arc<Self> {
        Self::failing(script, vec![])
    }

    fn failing(
        script: impl Fn(usize, usize) -> Answer + Send + Sync + 'static,
        failing_calls: Vec<usize>,
    ) -> Arc<Self> {
        Arc::new(Scripted {
            script: Box::new(script),
            failing_calls,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Vec<usize>> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl BatchTransport for Scripted {
    async fn send(&self, batch: &[(usize, &OutgoingMessage)]) -> Result<BatchAnswer, String> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(batch.iter().map(|(i, _)| *i).collect());
            calls.len() - 1
        };
        if self.failing_calls.contains(&call) {
            return Err("connection refused".to_owned());
        }
        let mut answer = BatchAnswer::default();
        for (index, _) in batch {
            let failure = |sender_fault| EntryFailure {
                id: entry_id(*index),
                sender_fault,
                code: "Scripted".to_owned(),
                message: None,
            };
            match (self.script)(call, *index) {
                Answer::Ok => answer.succeeded.push(entry_id(*index)),
                Answer::SenderFault => answer.failed.push(failure(true)),
                Answer::Transient => answer.failed.push(failure(false)),
                Answer::Omitted => {}
            }
        }
        Ok(answer)
    }
}

fn sink(transport: Arc<Scripted>, queue_url: &str) -> SqsSink {
    let mut config = SqsSinkConfig::new(queue_url);
    config.retry_base_delay = Duration::from_millis(1);
    SqsSink::with_transport(transport, config, None)
}

const STANDARD: &str = "http://127.0.0.1:1/000000000000/q";
const FIFO: &str = "http://127.0.0.1:1/000000000000/q.fifo";

#[tokio::test]
async fn standard_batches_of_ten_in_order() {
    let transport = Scripted::new(|_, _| Answer::Ok);
    let envelopes: Vec<_> = (0..25).map(|n| envelope(&format!("o{n}"), n)).collect();
    sink(transport.clone(), STANDARD)
        .enqueue(&envelopes)
        .await
        .unwrap();
    let calls = transport.calls();
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(calls.concat(), (0..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn batches_respect_the_byte_limit() {
    let transport = Scripted::new(|_, _| Answer::Ok);
    let envelopes: Vec<_> = (0..6).map(|n| envelope(&format!("o{n}"), n)).collect();
    let mut sink = sink(transport.clone(), STANDARD);
    let one = sink.prepare(&envelopes[0]).await.unwrap().size();
    // Room for two messages (and a bit) per batch.
    sink.config.max_batch_bytes = one * 2 + one / 2;
    sink.enqueue(&envelopes).await.unwrap();
    assert_eq!(transport.calls(), vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
}

#[tokio::test]
async fn transient_refusals_are_retried_alone_until_accepted() {
    // Message 3 is refused transiently on the first two calls.
    let transport = Scripted::new(|call, index| {
        if index == 3 && call < 2 {
            Answer::Transient
        } else {
            Answer::Ok
        }
    });
    let envelopes: Vec<_> = (0..5).map(|n| envelope(&format!("o{n}"), n)).collect();
    sink(transport.clone(), STANDARD)
        .enqueue(&envelopes)
        .await
        .unwrap();
    assert_eq!(
        transport.calls(),
        vec![vec![0, 1, 2, 3, 4], vec![3], vec![3]]
    );
}

#[tokio::test]
async fn persistent_transient_and_omitted_entries_fail_after_the_retry_budget() {
    let transport = Scripted::new(|_, index| match index {
        1 => Answer::Transient,
        2 => Answer::Omitted,
        _ => Answer::Ok,
    });
    let envelopes: Vec<_> = (0..4).map(|n| envelope(&format!("o{n}"), n)).collect();
    let err = sink(transport.clone(), STANDARD)
        .enqueue(&envelopes)
        .await
        .unwrap_err();
    assert_eq!(err.failed, [1, 2]);
    // The first call plus the configured 3 retries.
    assert_eq!(transport.calls().len(), 4);
}

#[tokio::test]
async fn sender_faults_are_not_retried_and_reported_by_index() {
    let transport = Scripted::new(|_, index| {
        if index == 12 {
            Answer::SenderFault
        } else {
            Answer::Ok
        }
    });
    let envelopes: Vec<_> = (0..15).map(|n| envelope(&format!("o{n}"), n)).collect();
    let err = sink(transport.clone(), STANDARD)
        .enqueue(&envelopes)
        .await
        .unwrap_err();
    assert_eq!(err.failed, [12]);
    assert!(err.reason.contains("message 12"), "{}", err.reason);
    assert_eq!(transport.calls().len(), 2);
}

#[tokio::test]
async fn a_failed_call_on_a_standard_queue_fails_it_and_everything_after() {
    let transport = Scripted::failing(|_, _| Answer::Ok, vec![1]);
    let envelopes: Vec<_> = (0..25).map(|n| envelope(&format!("o{n}"), n)).collect();
    let err = sink(transport.clone(), STANDARD)
        .enqueue(&envelopes)
        .await
        .unwrap_err();
    assert_eq!(err.failed, (10..25).collect::<Vec<_>>());
    assert_eq!(transport.calls().len(), 2);
}

#[tokio::test]
async fn fifo_sends_one_message_per_group_per_batch_in_group_order() {
    let transport = Scripted::new(|_, _| Answer::Ok);
    // Groups: a = 0, 2, 4; b = 1, 3; c = 5.
    let ids = ["a", "b", "a", "b", "a", "c"];
    let envelopes: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| envelope(id, n))
        .collect();
    sink(transport.clone(), FIFO)
        .enqueue(&envelopes)
        .await
        .unwrap();
    assert_eq!(transport.calls(), vec![vec![0, 1, 5], vec![2, 3], vec![4]]);
}

#[tokio::test]
async fn fifo_group_stops_at_its_first_failure_and_other_groups_go_on() {
    // Message 2 (group a) is refused for good: 4 (group a) must not be sent; b goes on.
    let transport = Scripted::new(|_, index| {
        if index == 2 {
            Answer::SenderFault
        } else {
            Answer::Ok
        }
    });
    let ids = ["a", "b", "a", "b", "a", "b"];
    let envelopes: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| envelope(id, n))
        .collect();
    let err = sink(transport.clone(), FIFO)
        .enqueue(&envelopes)
        .await
        .unwrap_err();
    assert_eq!(err.failed, [2, 4]);
    let sent = transport.calls().concat();
    assert!(!sent.contains(&4), "{sent:?}");
    assert_eq!(transport.calls(), vec![vec![0, 1], vec![2, 3], vec![5]]);
}

#[tokio::test]
async fn fifo_transient_refusal_is_retried_before_the_group_moves_on() {
    let transport = Scripted::new(|call, index| {
        if index == 0 && call == 0 {
            Answer::Transient
        } else {
            Answer::Ok
        }
    });
    let envelopes = vec![envelope("a", 0), envelope("a", 1)];
    sink(transport.clone(), FIFO)
        .enqueue(&envelopes)
        .await
        .unwrap();
    assert_eq!(transport.calls(), vec![vec![0], vec![0], vec![1]]);
}

#[tokio::test]
async fn fifo_call_failure_fails_everything_unsent() {
    let transport = Scripted::failing(|_, _| Answer::Ok, vec![1]);
    let ids = ["a", "b", "a", "b", "c"];
    let envelopes: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| envelope(id, n))
        .collect();
    let err = sink(transport.clone(), FIFO)
        .enqueue(&envelopes)
        .await
        .unwrap_err();
    // Round one (0, 1, 4) went through; round two (2, 3) failed as a call.
    assert_eq!(err.failed, [2, 3]);
}

#[tokio::test]
async fn fifo_messages_carry_group_and_deduplication_ids_and_attributes() {
    let sink = sink(Scripted::new(|_, _| Answer::Ok), FIFO);
    let mut e = envelope("o-1", 1);
    let message = sink.prepare(&e).await.unwrap();
    assert_eq!(message.group_id.as_deref(), Some("order:o-1"));
    assert_eq!(message.deduplication_id, Some(e.deduplication_id()));
    let names: Vec<_> = message.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["kind", "eventName", "id", "source"]);
    e.event_name = None;
    let message = sink.prepare(&e).await.unwrap();
    let names: Vec<_> = message.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["kind", "id", "source"]);
}

#[tokio::test]
async fn too_large_without_claim_check_fails_that_envelope_only() {
    let transport = Scripted::new(|_, _| Answer::Ok);
    let mut sink = sink(transport.clone(), STANDARD);
    sink.config.claim_check_threshold = 2_000.into();
    let mut envelopes: Vec<_> = (0..3).map(|n| envelope(&format!("o{n}"), n)).collect();
    envelopes[1].payload = serde_json::json!({"big": "x".repeat(3_000)}).into();
    let err = sink.enqueue(&envelopes).await.unwrap_err();
    assert_eq!(err.failed, [1]);
    assert_eq!(transport.calls(), vec![vec![0, 2]]);
}

/// The sink contract (`tcrelay_core::conformance::event_sink`) on a queue that answers as SQS
/// does but moto cannot: entries refused one by one on a FIFO queue too, and every entry failed
/// transiently on its first attempt, so each is sent again by the retry.
mod contract {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tcrelay_core::conformance::event_sink::{REFUSED_EVENT, Subject};

    use super::*;

    /// Keeps what it takes, in the order taken; refuses (sender fault) the entries of
    /// [`REFUSED_EVENT`] while refusing; fails each body's first attempt transiently.
    #[derive(Default)]
    struct FakeSqs {
        taken: Mutex<Vec<String>>,
        read: Mutex<usize>,
        tried: Mutex<HashSet<String>>,
        refusing: AtomicBool,
    }

    #[async_trait]
    impl BatchTransport for FakeSqs {
        async fn send(&self, batch: &[(usize, &OutgoingMessage)]) -> Result<BatchAnswer, String> {
            let mut answer = BatchAnswer::default();
            for (index, message) in batch {
                let failure = |sender_fault| EntryFailure {
                    id: entry_id(*index),
                    sender_fault,
                    code: "Fake".to_owned(),
                    message: None,
                };
                let refused = message
                    .attributes
                    .iter()
                    .any(|a| a.name == "eventName" && a.value == REFUSED_EVENT);
                if refused && self.refusing.load(Ordering::SeqCst) {
                    answer.failed.push(failure(true));
                } else if self.tried.lock().unwrap().insert(message.body.clone()) {
                    answer.failed.push(failure(false));
                } else {
                    self.taken.lock().unwrap().push(message.body.clone());
                    answer.succeeded.push(entry_id(*index));
                }
            }
            Ok(answer)
        }
    }

    struct FakeQueue {
        sqs: Arc<FakeSqs>,
        sink: SqsSink,
    }

    #[async_trait]
    impl Subject for FakeQueue {
        fn sink(&self) -> &dyn EventSink {
            &self.sink
        }

        async fn receive(&self) -> Vec<String> {
            let taken = self.sqs.taken.lock().unwrap().clone();
            let mut read = self.sqs.read.lock().unwrap();
            let new = taken[*read..].to_vec();
            *read = taken.len();
            new
        }

        fn keeps_order(&self) -> bool {
            self.sink.is_fifo()
        }

        fn refuse(&self, on: bool) {
            self.sqs.refusing.store(on, Ordering::SeqCst);
        }

        fn claim_check_threshold(&self) -> Option<usize> {
            None
        }
    }

    /// A sink on the fake queue at `queue_url`; it takes messages of any size.
    fn fake_queue(queue_url: &str) -> FakeQueue {
        let sqs = Arc::new(FakeSqs::default());
        let mut config = SqsSinkConfig::new(queue_url);
        config.retry_base_delay = Duration::from_millis(1);
        config.claim_check_threshold = Threshold::fixed(usize::MAX);
        let sink = SqsSink::with_transport(sqs.clone(), config, None);
        FakeQueue { sqs, sink }
    }

    mod standard {
        async fn subject() -> super::FakeQueue {
            super::fake_queue(super::super::STANDARD)
        }
        tcrelay_core::event_sink_conformance!(subject());
    }

    mod fifo {
        async fn subject() -> super::FakeQueue {
            super::fake_queue(super::super::FIFO)
        }
        tcrelay_core::event_sink_conformance!(subject());
    }
}
