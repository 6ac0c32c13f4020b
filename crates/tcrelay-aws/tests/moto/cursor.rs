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

/// A walk with every field the poll run stores (both marks, the newest time) and a page of
/// long ids, 300 KB in all (under DynamoDB's 400 KB item limit), survives a checkpoint, a
/// late release by a run whose lease was taken over and the new owner's release verbatim.
#[tokio::test]
async fn a_large_progress_text_survives_take_over_and_release_verbatim() {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let cursors = DynamoCursorStore::new(clients.dynamodb.clone(), &table);
    let stream = unique_name("orders");
    let page: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "[\"{}-{i}\",\"2025-01-01T23:59:59.{i:03}Z\"]",
                "ü".repeat(1_400)
            )
        })
        .collect();
    let text = format!(
        "{{\"cursor\":\"2025-01-02T00:00:00.000Z\",\"endpoint\":\"poll\",\"filters\":{{\"status\":{{\"buyer\":[\"Issued\"]}}}},\"unsorted\":true,\"pageLimit\":25,\"after\":\"2025-01-01T23:59:59.000Z\",\"offset\":200,\"page\":[{}],\"known\":\"2025-01-02T00:00:00.000Z\",\"anyAfter\":true,\"newest\":\"2025-01-02T00:00:00.500Z\",\"pages\":3}}",
        page.join(",")
    );
    assert!(
        text.len() > 280_000 && text.len() < 390_000,
        "{}",
        text.len()
    );
    let c = cursors.acquire(&stream, "a", LEASE).await.unwrap().unwrap();
    let value = "2025-01-02T00:00:00.000Z";
    let made = cursors
        .checkpoint(&stream, "a", c.version, value, Some("w"), Some(&text))
        .await
        .unwrap();
    assert_eq!(made.walk.as_deref(), Some(text.as_str()));
    cursors.release(&stream, "a").await.unwrap();
    let b = cursors.acquire(&stream, "b", LEASE).await.unwrap().unwrap();
    assert_eq!(b.walk.as_deref(), Some(text.as_str()));
    cursors.release(&stream, "a").await.unwrap();
    cursors.release(&stream, "b").await.unwrap();
    let read = cursors.read(&stream).await.unwrap().unwrap();
    assert_eq!(read.walk.as_deref(), Some(text.as_str()));
    assert_eq!(read.window_start.as_deref(), Some("w"));
    assert_eq!(read.value.as_deref(), Some(value));
}
