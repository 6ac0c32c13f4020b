//! The DynamoDB cursor store against moto: the `CursorStore` contract
//! (`tcrelay_core::conformance::cursor_store`), then what only this store has.

use tcrelay_aws::testing::{create_table, moto_clients, unique_name};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore};
use tcrelay_core::conformance::cursor_store::cursor;
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
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("cursor#{stream}")),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("expiresAt"), "{item:?}");
}
