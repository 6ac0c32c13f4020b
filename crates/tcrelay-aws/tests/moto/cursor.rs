//! The DynamoDB cursor store against moto: the `CursorStore` contract
//! (`tcrelay_core::conformance::cursor_store`), then what only this store has.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tcrelay_aws::testing::{create_table, moto_clients, unique_name};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore};
use tcrelay_core::conformance::cursor_store::{LEASE, a_walk, cursor};
use tcrelay_core::ports::{ClaimOutcome, CursorStore, DedupeStore};

mod contract {
    tcrelay_core::cursor_store_conformance!(crate::common::fresh_table());
}

#[tokio::test]
async fn cursor_items_share_the_dedupe_table_without_interfering() {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let cursors = DynamoCursorStore::new(clients.dynamodb.clone(), &table);
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), DedupeConfig::new(&table));
    let stream = unique_name("orders");
    cursors.set(&stream, "t").await.unwrap();
    assert_eq!(dedupe.lookup(&stream).await.unwrap(), None);
    let claim = dedupe.claim(&stream, false).await.unwrap();
    // Granted (not `Exists`): the cursor item is no dedupe record.
    assert!(!matches!(claim, ClaimOutcome::Exists(_)), "{claim:?}");
    assert_eq!(
        cursors.read(&stream).await.unwrap(),
        Some(cursor(Some("t"), 1))
    );
    // Cursor items carry no TTL attribute.
    let item = cursor_item(&clients.dynamodb, &table, &stream).await;
    assert!(!item.contains_key("expiresAt"), "{item:?}");
}

/// The stored item of `stream`'s cursor, read as the store reads it.
async fn cursor_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    stream: &str,
) -> HashMap<String, AttributeValue> {
    dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("cursor#{stream}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// The walk is the item's `walk` string, verbatim; a checkpoint without one removes the
/// attribute (no empty or NULL value stays behind), as `set` does.
#[tokio::test]
async fn the_walk_is_a_string_attribute_removed_when_there_is_none() {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let cursors = DynamoCursorStore::new(clients.dynamodb.clone(), &table);
    let stream = unique_name("orders");
    let item = || cursor_item(&clients.dynamodb, &table, &stream);
    let walk = a_walk();
    let c = cursors
        .acquire(&stream, "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    let c = cursors
        .checkpoint(&stream, "run-a", c.version, "t1", None, Some(&walk))
        .await
        .unwrap();
    let stored = item().await;
    assert_eq!(stored.get("walk").and_then(|v| v.as_s().ok()), Some(&walk));
    assert!(!stored.contains_key("windowStart"), "{stored:?}");
    cursors
        .checkpoint(&stream, "run-a", c.version, "t2", Some("t0"), None)
        .await
        .unwrap();
    let stored = item().await;
    assert!(!stored.contains_key("walk"), "{stored:?}");
    assert!(stored.contains_key("windowStart"), "{stored:?}");
    cursors.set(&stream, "t3").await.unwrap();
    let stored = item().await;
    assert!(
        !stored.contains_key("walk") && !stored.contains_key("windowStart"),
        "{stored:?}"
    );
}
