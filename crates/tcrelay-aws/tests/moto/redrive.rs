//! `dlq redrive` against moto: FIFO order within each group, group and deduplication ids and
//! message attributes kept, the DLQ emptied; a message too young stays where it is.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use tcrelay_aws::redrive::{RedriveOptions, dead_letter_queue_of, redrive};
use tcrelay_aws::testing::{attach_dead_letter_queue, create_queue, moto_clients};

use crate::common::{assert_empty, attributes, receive};

#[tokio::test]
async fn a_fifo_dlq_goes_back_in_order_within_each_group() {
    let clients = moto_clients().await;
    let dlq = create_queue(&clients, "dlq", true).await;
    let queue = create_queue(&clients, "main", true).await;
    attach_dead_letter_queue(&clients, &queue, &dlq).await;
    assert_eq!(
        dead_letter_queue_of(&clients.sqs, &queue).await.unwrap(),
        dlq
    );

    // Two groups, interleaved.
    let sent: Vec<(String, String)> = (0..8)
        .map(|i| (format!("order/o-{}", i % 2), format!("m{i}")))
        .collect();
    for (group, body) in &sent {
        clients
            .sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(format!("dedup-{body}"))
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("order")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    // Just sent: too young to send again under the same deduplication id.
    let young = redrive(&clients.sqs, &RedriveOptions::new(&dlq, &queue))
        .await
        .unwrap();
    assert_eq!(young.moved, 0);
    assert!(young.stopped_at_young);

    let options = RedriveOptions {
        min_age: Duration::ZERO,
        ..RedriveOptions::new(&dlq, &queue)
    };
    let report = redrive(&clients.sqs, &options).await.unwrap();
    assert_eq!(report.moved, 8);
    assert!(!report.stopped_at_young);
    assert_empty(&clients, &dlq).await;

    let received = receive(&clients, &queue, 8).await;
    let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
    for m in &received {
        let system = m.attributes().unwrap();
        let group = system[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId].clone();
        let body = m.body().unwrap().to_owned();
        assert_eq!(
            system[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId],
            format!("dedup-{body}")
        );
        assert_eq!(attributes(m)["kind"].1, "order");
        by_group.entry(group).or_default().push(body);
    }
    for (group, bodies) in by_group {
        let want: Vec<String> = sent
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, b)| b.clone())
            .collect();
        assert_eq!(bodies, want, "order within {group}");
    }
}
