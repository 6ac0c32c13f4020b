//! Changes a webhook event's state hid from the poll: the claims that find them, and their
//! answers by order.
//!
//! The poll relays a state only when no channel relayed it. An order event carries only its
//! own lines, so when the gateway dropped an earlier event of an order and a later event of
//! it went through, the later state is found relayed while the earlier change reached no one.
//! Every event claims the state key of its own `lastUpdatedAt`, and the changed lines of an
//! order carry the time of the change that moved them; so the state keys of those times tell
//! which changes some channel relayed. One the poll can still claim was relayed by none: the
//! order goes out whole (docs/design.md, "Webhook and poll together").

use std::collections::HashMap;
use std::ops::Range;

use tcrelay_core::ports::{DedupeRecord, RecordState, StoreError};
use tcrelay_core::relay::Claims;

/// The store's answer to one claim, as [`Claims::claim_many`] gives it.
type Answer = Result<Option<DedupeRecord>, StoreError>;

/// The answers to the claims of the orders' missed changes, by order.
#[derive(Debug, Default)]
pub(crate) struct MissedChanges {
    /// Each order's state key and the range of its claims in `answers`.
    per_order: HashMap<String, Range<usize>>,
    /// Each claimed key with its answer, taken once.
    answers: Vec<Option<(String, Answer)>>,
}

/// Why an order's missed changes cannot be settled now.
#[derive(Debug)]
pub(crate) enum Unsettled {
    /// Another channel holds the claim on this state key right now: it may still fail.
    InProgress(String),
    /// The dedupe store failed.
    Store(StoreError),
}

impl MissedChanges {
    /// Claims, in one batch held in `claims`, the state keys (`state_keys`) of each order's
    /// changed lines' times, given with the order's own state key. An order with none is left
    /// out; no call is made when no order has any.
    pub(crate) async fn claim(
        claims: &mut Claims,
        orders: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        let mut per_order = HashMap::new();
        let mut keys: Vec<String> = Vec::new();
        for (order_key, state_keys) in orders {
            let first = keys.len();
            for key in state_keys {
                if key != order_key && !keys[first..].contains(&key) {
                    keys.push(key);
                }
            }
            if keys.len() > first {
                per_order.insert(order_key, first..keys.len());
            }
        }
        if keys.is_empty() {
            return Self::default();
        }
        let batch: Vec<(&str, bool)> = keys.iter().map(|k| (k.as_str(), true)).collect();
        let answers = claims.claim_many(&batch).await;
        Self {
            per_order,
            answers: keys.into_iter().zip(answers).map(Some).collect(),
        }
    }

    /// How many claims of the order with state key `order_key` were granted: each a change no
    /// channel relayed (0 for an order not claimed for). Completed keys were relayed.
    pub(crate) fn take(&mut self, order_key: &str) -> Result<usize, Unsettled> {
        let Some(range) = self.per_order.remove(order_key) else {
            return Ok(0);
        };
        let mut granted = 0;
        for answer in self.answers[range].iter_mut().filter_map(Option::take) {
            match answer {
                (_, Ok(None)) => granted += 1,
                (_, Ok(Some(record))) if record.state == RecordState::Completed => {}
                (key, Ok(Some(_))) => return Err(Unsettled::InProgress(key)),
                (_, Err(e)) => return Err(Unsettled::Store(e)),
            }
        }
        Ok(granted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tcrelay_core::ports::DedupeStore;
    use tcrelay_core::testing::MemoryDedupe;

    use super::*;

    fn store() -> Arc<MemoryDedupe> {
        Arc::new(MemoryDedupe::new(
            Duration::from_secs(60),
            Duration::from_secs(3600),
        ))
    }

    fn order(key: &str, keys: &[&str]) -> (String, Vec<String>) {
        (
            key.to_owned(),
            keys.iter().map(|k| (*k).to_owned()).collect(),
        )
    }

    #[tokio::test]
    async fn free_keys_are_granted_and_relayed_ones_are_not() {
        let dedupe = store();
        dedupe.insert("t0", RecordState::Completed, false);
        let mut claims = Claims::new(dedupe.clone());
        let mut missed = MissedChanges::claim(
            &mut claims,
            [
                // Its own key and a repeat are not claimed again.
                order("a", &["a", "t0", "t1", "t1"]),
                order("b", &["t0"]),
                order("c", &["c"]),
            ],
        )
        .await;
        assert_eq!(missed.take("a").unwrap(), 1);
        assert_eq!(missed.take("b").unwrap(), 0);
        assert_eq!(missed.take("c").unwrap(), 0, "nothing claimed for it");
        assert_eq!(missed.take("a").unwrap(), 0, "taken once");
        let t1 = dedupe.lookup("t1").await.unwrap().expect("claimed");
        assert_eq!(t1.state, RecordState::InProgress);
        assert!(t1.full_state, "a whole order is sent for it");
        assert!(dedupe.lookup("a").await.unwrap().is_none());
        claims.settle(false).await;
        assert!(dedupe.lookup("t1").await.unwrap().is_none(), "released");
    }

    #[tokio::test]
    async fn a_key_held_elsewhere_is_named() {
        let dedupe = store();
        dedupe.insert("t0", RecordState::InProgress, false);
        let mut claims = Claims::new(dedupe.clone());
        let mut missed = MissedChanges::claim(&mut claims, [order("a", &["t0", "t1"])]).await;
        assert!(matches!(missed.take("a"), Err(Unsettled::InProgress(key)) if key == "t0"));
    }

    #[tokio::test]
    async fn no_order_with_other_times_makes_no_call() {
        let dedupe = store();
        let mut claims = Claims::new(dedupe.clone());
        let missed = MissedChanges::claim(&mut claims, [order("a", &["a"])]).await;
        assert!(missed.per_order.is_empty() && missed.answers.is_empty());
        assert_eq!(format!("{claims:?}"), r#"Claims { held: [] }"#);
    }
}
