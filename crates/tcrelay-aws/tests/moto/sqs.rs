//! The SQS sink, the S3 claim check and the quarantine against moto.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextMut;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Utc;
use tcrelay_aws::claim_check::{
    FALLBACK_THRESHOLD, LEGACY_PAYLOAD_SIZE_ATTRIBUTE, LEGACY_POINTER_CLASS,
    PAYLOAD_SIZE_ATTRIBUTE, POINTER_CLASS,
};
use tcrelay_aws::testing::{create_bucket, create_queue, moto_clients, moto_options, moto_url};
use tcrelay_aws::{
    AwsClients, ClaimCheck, ClaimCheckSettings, SqsQuarantine, SqsSink, SqsSinkConfig, Threshold,
    claim_check_threshold, read_claim_checked,
};
use tcrelay_core::envelope::Envelope;
use tcrelay_core::ports::{EventSink, Quarantine, QuarantinedRequest};
use tradecloud_model::ObjectKind;

use crate::common::{assert_empty, attributes, envelope, receive};

fn sink(clients: &AwsClients, queue_url: &str, claim_check: Option<ClaimCheck>) -> SqsSink {
    SqsSink::new(
        clients.sqs.clone(),
        SqsSinkConfig::new(queue_url),
        claim_check,
    )
}

fn envelope_of(body: &str) -> Envelope {
    serde_json::from_str(body).expect("body is an envelope")
}

#[tokio::test]
async fn standard_queue_gets_envelope_bodies_and_attributes() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let sent = vec![
        envelope(ObjectKind::Order, "o-1", 1, Some("OrderIssuedByBuyer")),
        envelope(ObjectKind::Shipment, "s-1", 2, None),
    ];
    sink(&clients, &url, None).enqueue(&sent).await.unwrap();

    let received = receive(&clients, &url, 2).await;
    let mut by_id: HashMap<String, _> = received
        .iter()
        .map(|m| (envelope_of(m.body().unwrap()).id, m))
        .collect();
    for envelope in &sent {
        let message = by_id.remove(&envelope.id).expect("received");
        assert_eq!(
            message.body().unwrap(),
            serde_json::to_string(envelope).unwrap()
        );
        let attrs = attributes(message);
        let string = |v: &str| ("String".to_owned(), v.to_owned());
        assert_eq!(attrs["kind"], string(envelope.kind.as_str()));
        assert_eq!(attrs["id"], string(&envelope.id));
        assert_eq!(attrs["source"], string(envelope.source.as_str()));
        match &envelope.event_name {
            Some(name) => assert_eq!(attrs["eventName"], string(name)),
            None => assert!(!attrs.contains_key("eventName"), "{attrs:?}"),
        }
        assert_eq!(
            attrs.len(),
            if envelope.event_name.is_some() { 4 } else { 3 }
        );
        // Standard queues have no FIFO ids.
        let system = message.attributes().cloned().unwrap_or_default();
        assert!(!system.contains_key(&MessageSystemAttributeName::MessageGroupId));
    }
    assert_empty(&clients, &url).await;
}

#[tokio::test]
async fn fifo_queue_gets_group_and_deduplication_ids() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", true).await;
    // Both order forms of one order share the group.
    let sent = vec![
        envelope(ObjectKind::Order, "o-7", 1, Some("OrderIssuedByBuyer")),
        envelope(
            ObjectKind::SingleDeliveryOrder,
            "o-7",
            2,
            Some("OrderAcceptedBySupplier"),
        ),
        envelope(ObjectKind::Shipment, "s-7", 3, None),
    ];
    let sink = sink(&clients, &url, None);
    assert!(sink.is_fifo());
    sink.enqueue(&sent).await.unwrap();

    let received = receive(&clients, &url, 3).await;
    for message in &received {
        let body = message.body().unwrap();
        let envelope = sent
            .iter()
            .find(|e| serde_json::to_string(e).unwrap() == body)
            .expect("body is one of the envelopes sent");
        let system = message.attributes().expect("system attributes");
        assert_eq!(
            system[&MessageSystemAttributeName::MessageGroupId],
            envelope.message_group_id()
        );
        assert_eq!(
            system[&MessageSystemAttributeName::MessageDeduplicationId],
            envelope.deduplication_id()
        );
        assert_eq!(attributes(message)["kind"].1, envelope.kind.as_str());
    }
    assert_eq!(sent[0].message_group_id(), "order:o-7");
    assert_eq!(sent[0].message_group_id(), sent[1].message_group_id());
}

/// 25 envelopes of 3 objects, interleaved.
fn twenty_five() -> Vec<Envelope> {
    (0..25)
        .map(|n| {
            envelope(
                ObjectKind::Order,
                &format!("o-{}", n % 3),
                n,
                Some("OrderChanged"),
            )
        })
        .collect()
}

/// Each object's state numbers in the order received.
fn per_object_order(bodies: impl Iterator<Item = Envelope>) -> BTreeMap<String, Vec<u64>> {
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for envelope in bodies {
        order
            .entry(envelope.id.clone())
            .or_default()
            .push(envelope.version.unwrap());
    }
    order
}

#[tokio::test]
async fn batch_of_25_on_fifo_keeps_each_objects_order() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", true).await;
    let sent = twenty_five();
    sink(&clients, &url, None).enqueue(&sent).await.unwrap();
    let received = receive(&clients, &url, 25).await;
    let got = per_object_order(received.iter().map(|m| envelope_of(m.body().unwrap())));
    let want = per_object_order(sent.into_iter());
    assert_eq!(got, want);
    assert_empty(&clients, &url).await;
}

#[tokio::test]
async fn batch_of_25_on_standard_arrives_complete_and_once() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let sent = twenty_five();
    sink(&clients, &url, None).enqueue(&sent).await.unwrap();
    let received = receive(&clients, &url, 25).await;
    let mut got: Vec<String> = received
        .iter()
        .map(|m| envelope_of(m.body().unwrap()).dedupe_key)
        .collect();
    let mut want: Vec<String> = sent.iter().map(|e| e.dedupe_key.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_empty(&clients, &url).await;
}

/// Makes SQS refuse one entry of a batch, the way a real one refuses an entry on HTTP 200: sets
/// an invalid `DelaySeconds` (over 900) on entries whose `id` attribute is `poison`.
#[derive(Debug)]
struct PoisonEntries;

impl Intercept for PoisonEntries {
    fn name(&self) -> &'static str {
        "PoisonEntries"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input_mut().downcast_mut::<SendMessageBatchInput>() {
            for entry in input.entries.iter_mut().flatten() {
                let poisoned = entry
                    .message_attributes
                    .as_ref()
                    .and_then(|attrs| attrs.get("id"))
                    .and_then(|id| id.string_value())
                    == Some("poison");
                if poisoned {
                    entry.delay_seconds = Some(901);
                }
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_entry_refused_on_http_200_is_reported_by_index() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let sdk_config = moto_options(&moto_url()).load().await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk_config)
            .interceptor(PoisonEntries)
            .build(),
    );
    let mut sent = twenty_five();
    sent[7] = envelope(ObjectKind::Order, "poison", 7, Some("OrderChanged"));
    sent[21] = envelope(ObjectKind::Order, "poison", 21, Some("OrderChanged"));
    let err = SqsSink::new(sqs, SqsSinkConfig::new(&url), None)
        .enqueue(&sent)
        .await
        .unwrap_err();
    assert_eq!(err.failed, [7, 21]);
    assert!(
        err.reason.contains("InvalidParameterValue"),
        "{}",
        err.reason
    );

    // Everything else arrived.
    let received = receive(&clients, &url, 23).await;
    let mut got: Vec<String> = received
        .iter()
        .map(|m| envelope_of(m.body().unwrap()).dedupe_key)
        .collect();
    got.sort();
    let mut want: Vec<String> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| ![7, 21].contains(i))
        .map(|(_, e)| e.dedupe_key.clone())
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_empty(&clients, &url).await;
}

/// Counts the S3 requests in flight at once (sent, not yet answered) and the most seen.
#[derive(Debug, Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct CountInFlight(std::sync::Arc<InFlight>);

impl aws_sdk_s3::config::Intercept for CountInFlight {
    fn name(&self) -> &'static str {
        "CountInFlight"
    }

    fn read_before_transmit(
        &self,
        _: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.0.now.fetch_add(1, SeqCst) + 1;
        self.0.most.fetch_max(now, SeqCst);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A page of large messages is uploaded to S3 several at a time, not one after the other: a
/// poll page of a hundred large orders, uploaded in turn, could outlast the poller's time for
/// the page (then sent again by the next run). Every message still arrives once, in order on
/// FIFO, each with its own payload.
#[tokio::test]
async fn a_pages_large_messages_are_uploaded_to_s3_several_at_a_time() {
    let clients = moto_clients().await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let sdk_config = moto_options(&moto_url()).load().await;
    for fifo in [false, true] {
        let url = create_queue(&clients, "tcrelay", fifo).await;
        let in_flight = std::sync::Arc::new(InFlight::default());
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk_config)
                .force_path_style(true)
                .interceptor(CountInFlight(in_flight.clone()))
                .build(),
        );
        let mut config = SqsSinkConfig::new(&url);
        config.claim_check_threshold = Threshold::fixed(2_000);
        let sink = SqsSink::new(
            clients.sqs.clone(),
            config,
            Some(ClaimCheck::new(s3, &bucket)),
        );
        // FIFO: one group per message, so a round holds all of them (a group's own messages
        // go one at a time by design).
        let sent: Vec<Envelope> = (0..12)
            .map(|n| {
                let mut e = envelope(ObjectKind::Order, &format!("o-{n}"), n, None);
                e.payload = serde_json::json!({"n": n, "text": "x".repeat(4_000)}).into();
                e
            })
            .collect();
        sink.enqueue(&sent).await.unwrap();
        let most = in_flight.most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(most > 1, "fifo {fifo}: at most {most} upload at a time");
        assert!(most <= 10, "fifo {fifo}: {most} uploads at once");
        let received = receive(&clients, &url, 12).await;
        let mut got = Vec::new();
        for message in &received {
            let body = read_claim_checked(
                &clients.s3,
                message.body().unwrap(),
                message.message_attributes().unwrap(),
            )
            .await
            .unwrap();
            got.push(envelope_of(&body).dedupe_key);
        }
        // Each group holds one message here: SQS keeps no order between groups.
        got.sort();
        let mut want: Vec<String> = sent.iter().map(|e| e.dedupe_key.clone()).collect();
        want.sort();
        assert_eq!(got, want, "fifo {fifo}");
        assert_empty(&clients, &url).await;
    }
}

#[tokio::test]
async fn a_2_mib_envelope_goes_through_s3_in_the_extended_client_format() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", true).await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let mut big = envelope(ObjectKind::Order, "o-big", 1, Some("OrderIssuedByBuyer"));
    big.payload = serde_json::json!({"lines": (0..2048).map(|i| format!("{i:04}{}", "x".repeat(1020))).collect::<Vec<_>>()}).into();
    let big_json = serde_json::to_string(&big).unwrap();
    assert!(big_json.len() > 2 * 1024 * 1024);
    let small = envelope(ObjectKind::Order, "o-small", 2, Some("OrderIssuedByBuyer"));
    let sink = sink(
        &clients,
        &url,
        Some(ClaimCheck::new(clients.s3.clone(), &bucket)),
    );
    sink.enqueue(&[big.clone(), small.clone()]).await.unwrap();

    let received = receive(&clients, &url, 2).await;
    let pointer_message = received
        .iter()
        .find(|m| attributes(m)["id"].1 == "o-big")
        .unwrap();
    let inline = received
        .iter()
        .find(|m| attributes(m)["id"].1 == "o-small")
        .unwrap();

    // The pointer, exactly as the Extended Client writes it.
    let body = pointer_message.body().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    let key = parsed[1]["s3Key"].as_str().expect("s3Key");
    uuid::Uuid::parse_str(key).expect("the key is a UUID");
    assert_eq!(
        body,
        format!(r#"["{POINTER_CLASS}",{{"s3BucketName":"{bucket}","s3Key":"{key}"}}]"#)
    );
    let attrs = attributes(pointer_message);
    assert_eq!(
        attrs[PAYLOAD_SIZE_ATTRIBUTE],
        ("Number".to_owned(), big_json.len().to_string())
    );
    // The filtering attributes are still there.
    assert_eq!(attrs["kind"].1, "order");
    assert_eq!(attrs["source"].1, "webhook-post");

    let read_back = read_claim_checked(
        &clients.s3,
        body,
        pointer_message.message_attributes().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(read_back, big_json);
    assert_eq!(envelope_of(&read_back), big);

    // A small one in the same call stays inline and reads back as itself.
    assert!(!attributes(inline).contains_key(PAYLOAD_SIZE_ATTRIBUTE));
    let inline_body = read_claim_checked(
        &clients.s3,
        inline.body().unwrap(),
        inline.message_attributes().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(envelope_of(&inline_body), small);
}

#[tokio::test]
async fn the_claim_check_threshold_counts_attributes_and_is_configurable() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let e = envelope(ObjectKind::Order, "o-edge", 1, Some("OrderIssuedByBuyer"));
    let body_len = serde_json::to_string(&e).unwrap().len();
    let mut config = SqsSinkConfig::new(&url);
    // The body alone fits, body plus attributes does not.
    config.claim_check_threshold = (body_len + 5).into();
    let sink = SqsSink::new(
        clients.sqs.clone(),
        config,
        Some(ClaimCheck::new(clients.s3.clone(), &bucket)),
    );
    sink.enqueue(std::slice::from_ref(&e)).await.unwrap();
    let received = receive(&clients, &url, 1).await;
    assert!(attributes(&received[0]).contains_key(PAYLOAD_SIZE_ATTRIBUTE));
    let read_back = read_claim_checked(
        &clients.s3,
        received[0].body().unwrap(),
        received[0].message_attributes().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(envelope_of(&read_back), e);
}

/// A queue created with the old 256 KiB `MaximumMessageSize` (SQS's limit before 1 MiB).
async fn old_256_kib_queue(clients: &AwsClients, name: &str) -> String {
    clients
        .sqs
        .create_queue()
        .queue_name(tcrelay_aws::testing::unique_name(name))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            "262144",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// `TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES` above the queue's own `MaximumMessageSize` (1 MiB set
/// for a queue of the old 256 KiB): every envelope between the two would be refused by SQS,
/// answered 503 for ever (Tradecloud retrying it without end) and fail every poll run at its
/// page (the cursor stuck). The queue's limit, once known, caps the override, so such an
/// envelope is claim-checked instead; a queue that cannot be asked leaves the override as set.
#[tokio::test]
async fn an_override_above_the_queues_own_limit_claim_checks_instead_of_failing_for_ever() {
    let clients = moto_clients().await;
    let url = old_256_kib_queue(&clients, "small-override").await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let too_high = ClaimCheckSettings {
        threshold: Some(1_048_576),
        ..ClaimCheckSettings::default()
    };
    let threshold = Threshold::of_queue(&clients.sqs, &url, &too_high);
    assert_eq!(threshold.bytes().await, 262_144);
    let missing = format!("{url}-not-there");
    assert_eq!(
        Threshold::of_queue(&clients.sqs, &missing, &too_high)
            .bytes()
            .await,
        1_048_576,
        "a queue that cannot be asked leaves the override as set"
    );

    let mut big = envelope(ObjectKind::Order, "o-300k-override", 1, None);
    big.payload = serde_json::json!({"text": "x".repeat(300 * 1024)}).into();
    let mut config = SqsSinkConfig::new(&url);
    config.claim_check_threshold = Threshold::of_queue(&clients.sqs, &url, &too_high);
    let sink = SqsSink::new(
        clients.sqs.clone(),
        config,
        Some(ClaimCheck::new(clients.s3.clone(), &bucket)),
    );
    sink.enqueue(std::slice::from_ref(&big)).await.unwrap();
    let received = receive(&clients, &url, 1).await;
    assert!(
        received[0]
            .body()
            .unwrap()
            .starts_with(&format!("[\"{POINTER_CLASS}\"")),
        "claim-checked"
    );
}

/// A queue created with the old 256 KiB MaximumMessageSize: the threshold is read
/// from it, so an envelope between 256 KiB and 1 MiB is claim-checked instead of refused by
/// SQS (which a fixed 1 MiB threshold would turn into a 503 for ever); and the 1.x format
/// writes the older pointer class and size attribute.
#[tokio::test]
async fn a_256_kib_queue_claim_checks_above_its_own_limit_in_either_format() {
    let clients = moto_clients().await;
    let url = old_256_kib_queue(&clients, "small").await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let defaults = ClaimCheckSettings::default();
    assert_eq!(
        claim_check_threshold(&clients.sqs, &url, &defaults).await,
        262_144
    );
    // Asked lazily, shared by its clones: the sinks below get the queue's own limit.
    let threshold = Threshold::of_queue(&clients.sqs, &url, &defaults);
    threshold.prefetch();
    assert_eq!(threshold.clone().bytes().await, 262_144);
    let overridden = ClaimCheckSettings {
        threshold: Some(1000),
        ..defaults
    };
    assert_eq!(
        claim_check_threshold(&clients.sqs, &url, &overridden).await,
        1000
    );
    let missing = format!("{url}-not-there");
    assert_eq!(
        claim_check_threshold(&clients.sqs, &missing, &defaults).await,
        FALLBACK_THRESHOLD
    );
    assert_eq!(
        Threshold::of_queue(&clients.sqs, &missing, &defaults)
            .bytes()
            .await,
        FALLBACK_THRESHOLD
    );
    assert_eq!(
        Threshold::of_queue(&clients.sqs, &missing, &overridden)
            .bytes()
            .await,
        1000,
        "a queue that cannot be asked leaves the override as set"
    );

    let mut big = envelope(ObjectKind::Order, "o-300k", 1, Some("OrderIssuedByBuyer"));
    big.payload = serde_json::json!({"text": "x".repeat(300 * 1024)}).into();
    let big_json = serde_json::to_string(&big).unwrap();
    let claim_check = ClaimCheck::new(clients.s3.clone(), &bucket);
    // SQS's 1 MiB as the threshold: the queue refuses the message.
    let fixed = sink(&clients, &url, Some(claim_check.clone()));
    assert!(fixed.enqueue(std::slice::from_ref(&big)).await.is_err());

    for legacy in [false, true] {
        let mut config = SqsSinkConfig::new(&url);
        config.claim_check_threshold = threshold.clone();
        let sink = SqsSink::new(
            clients.sqs.clone(),
            config,
            Some(claim_check.clone().with_legacy_format(legacy)),
        );
        sink.enqueue(std::slice::from_ref(&big)).await.unwrap();
        let received = receive(&clients, &url, 1).await;
        let (class, size_attribute) = if legacy {
            (LEGACY_POINTER_CLASS, LEGACY_PAYLOAD_SIZE_ATTRIBUTE)
        } else {
            (POINTER_CLASS, PAYLOAD_SIZE_ATTRIBUTE)
        };
        let body = received[0].body().unwrap();
        assert!(
            body.starts_with(&format!(r#"["{class}",{{"s3BucketName":"{bucket}""#)),
            "{body}"
        );
        let attrs = attributes(&received[0]);
        assert_eq!(
            attrs[size_attribute],
            ("Number".to_owned(), big_json.len().to_string())
        );
        let other = if legacy {
            PAYLOAD_SIZE_ATTRIBUTE
        } else {
            LEGACY_PAYLOAD_SIZE_ATTRIBUTE
        };
        assert!(!attrs.contains_key(other), "one size attribute: {attrs:?}");
        let read_back =
            read_claim_checked(&clients.s3, body, received[0].message_attributes().unwrap())
                .await
                .unwrap();
        assert_eq!(read_back, big_json);
    }
}

fn quarantined(body: Vec<u8>) -> QuarantinedRequest {
    QuarantinedRequest {
        received_at: Utc::now(),
        method: "POST".to_owned(),
        uri: "/webhook/orders".to_owned(),
        content_type: Some("application/json".to_owned()),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body,
        reason: "orderEvent.order.id is missing".to_owned(),
    }
}

#[tokio::test]
async fn quarantine_keeps_a_request() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let request = quarantined(b"{\"eventName\": \"OrderIssuedByBuyer\", \x00\xff".to_vec());
    SqsQuarantine::new(clients.sqs.clone(), &url, None)
        .keep(&request)
        .await
        .unwrap();
    let received = receive(&clients, &url, 1).await;
    let kept: QuarantinedRequest = serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(kept, request);
}

#[tokio::test]
async fn quarantine_keeps_a_6_mb_body_through_s3_on_a_fifo_queue() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", true).await;
    let bucket = create_bucket(&clients, "tcrelay").await;
    let body: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let request = quarantined(body);
    let quarantine = SqsQuarantine::new(
        clients.sqs.clone(),
        &url,
        Some(ClaimCheck::new(clients.s3.clone(), &bucket).with_key_prefix("quarantine/")),
    );
    quarantine.keep(&request).await.unwrap();
    let received = receive(&clients, &url, 1).await;
    let pointer = tcrelay_aws::PayloadS3Pointer::from_body(received[0].body().unwrap()).unwrap();
    assert!(pointer.key.starts_with("quarantine/"), "{}", pointer.key);
    let json = read_claim_checked(
        &clients.s3,
        received[0].body().unwrap(),
        received[0].message_attributes().unwrap(),
    )
    .await
    .unwrap();
    let kept: QuarantinedRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(kept, request);
}

#[tokio::test]
async fn quarantine_without_a_bucket_refuses_a_too_large_request_instead_of_dropping_it() {
    let clients = moto_clients().await;
    let url = create_queue(&clients, "tcrelay", false).await;
    let request = quarantined(vec![b'x'; 2_000_000]);
    let err = SqsQuarantine::new(clients.sqs.clone(), &url, None)
        .keep(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, tcrelay_core::ports::StoreError::Unavailable(_)),
        "{err}"
    );
    assert_empty(&clients, &url).await;
}
