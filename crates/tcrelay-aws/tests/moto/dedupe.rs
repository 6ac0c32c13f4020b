//! The DynamoDB dedupe store against moto: the dedupe contract
//! (`tcrelay_core::conformance::dedupe_store`), then what only DynamoDB has.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tcrelay_aws::testing::{create_table, moto_clients};
use tcrelay_core::conformance::dedupe_store::IN_PROGRESS_EXPIRY;
use tcrelay_core::ports::{ClaimOutcome, ClaimToken, DedupeStore};

use crate::common::fresh_table;

mod contract {
    tcrelay_core::dedupe_store_conformance!(crate::common::fresh_table());
}

/// An item written before claim tokens existed (an upgrade while a request was in flight) is
/// nobody's claim: no release removes it, and it expires as any claim does.
#[tokio::test]
async fn an_item_without_a_claim_token_is_nobodys_claim() {
    let s = fresh_table().await;
    let now = (s.clock.clock())();
    let in_progress_until = now.timestamp_millis() + 60_000;
    s.dynamodb
        .put_item()
        .table_name(&s.table)
        .item("pk", AttributeValue::S("k".into()))
        .item("state", AttributeValue::S("in-progress".into()))
        .item("fullState", AttributeValue::Bool(false))
        .item(
            "expiresAt",
            AttributeValue::N((now.timestamp() + 3600).to_string()),
        )
        .item(
            "inProgressExpiresAt",
            AttributeValue::N(in_progress_until.to_string()),
        )
        .send()
        .await
        .unwrap();
    let stranger = ClaimToken::generate(false);
    s.dedupe.release("k", &stranger).await.unwrap();
    assert!(matches!(
        s.dedupe.claim("k", false).await.unwrap(),
        ClaimOutcome::Exists(_)
    ));
    s.clock.advance(IN_PROGRESS_EXPIRY + Duration::from_secs(2));
    assert!(s.dedupe.claim("k", false).await.unwrap().token().is_some());
}

#[tokio::test]
async fn create_table_is_idempotent_and_enables_ttl() {
    let clients = moto_clients().await;
    let name = create_table(&clients, "tcrelay").await;
    tcrelay_aws::create_table_if_missing(&clients.dynamodb, &name)
        .await
        .unwrap();
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let description = ttl.time_to_live_description().unwrap();
    assert_eq!(description.attribute_name(), Some("expiresAt"));
    assert_eq!(
        description.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

/// A batch whose transaction fails outright (here: no such table) answers every item with the
/// error, granting nothing; completions and releases likewise report each item as failed, so
/// the relay logs them as it logs a failed single call.
#[tokio::test]
async fn a_failed_transaction_fails_every_item_of_the_batch() {
    let clients = moto_clients().await;
    let store = tcrelay_aws::DynamoDedupeStore::new(
        clients.dynamodb.clone(),
        tcrelay_aws::DedupeConfig::new("no-such-table"),
    );
    // Three items: fewer go through the single calls, not a transaction.
    let claims = store
        .claim_many(&[("a", true), ("b", true), ("c", true)], None)
        .await;
    assert_eq!(claims.len(), 3);
    assert!(claims.iter().all(Result::is_err), "{claims:?}");
    let held = [
        ("a".to_owned(), ClaimToken::generate(true)),
        ("b".to_owned(), ClaimToken::generate(true)),
        ("c".to_owned(), ClaimToken::generate(true)),
    ];
    let completed = store.complete_many(&held).await;
    assert!(completed.iter().all(Result::is_err), "{completed:?}");
    let released = store.release_many(&held).await;
    assert!(released.iter().all(Result::is_err), "{released:?}");
}
