//! Changes a webhook event's state hid from the poll: the claims that find them, and their
//! answers by order.
//!
//! The poll relays a state only when no channel relayed it. An order event carries only its
//! own lines, so when the gateway dropped an earlier event of an order and a later event of
//! it went through, the later state is found relayed while the earlier change reached no one.
//! Every relayed event claims the state key of its own `lastUpdatedAt`, and the changed lines
//! of an order carry the time of the change that last moved them; so the state keys of those
//! times tell which changes an event relayed. One the poll can still claim was claimed by no
//! event (lost, filtered, or never sent): the order goes out as the poll prepares it
//! (docs/design.md, "Webhook and poll together").

use std::collections::HashMap;
use std::ops::Range;

use tcrelay_core::ports::{DedupeRecord, RecordState, StoreError};
use tcrelay_core::relay::Claims;

/// The most line times checked for one order. An order with more (a long backfill of a large
/// order) is sent whole without checking: a second message of a state at worst, never a lost
/// change, and the claims of a page stay bounded (100 orders × 100 keys).
pub(crate) const MAX_TIMES_PER_ORDER: usize = 100;

/// The store's answer to one claim, as [`Claims::claim_many`] gives it.
type Answer = Result<Option<DedupeRecord>, StoreError>;

/// The answers to the claims of the orders' missed changes, by order.
#[derive(Debug, Default)]
pub(crate) struct MissedChanges {
    /// Each order's state key and the range of its claims in `answers`.
    per_order: HashMap<String, Range<usize>>,
    /// The orders (by state key) with more line times than [`MAX_TIMES_PER_ORDER`].
    unchecked: Vec<String>,
    /// Each claimed key with its answer, taken once.
    answers: Vec<Option<(String, Answer)>>,
}

/// What an order's line times say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every change was relayed (or none was claimed for): a duplicate.
    Relayed,
    /// A change reached no channel (or there were too many times to check, `claims` 0): send
    /// the order whole; `claims` of the granted claims are its.
    Missed {
        /// How many of the held claims are the order's.
        claims: usize,
    },
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
        let mut missed = Self::default();
        let mut keys: Vec<String> = Vec::new();
        for (order_key, state_keys) in orders {
            let first = keys.len();
            for key in state_keys {
                if key != order_key && !keys[first..].contains(&key) {
                    keys.push(key);
                }
            }
            if keys.len() - first > MAX_TIMES_PER_ORDER {
                keys.truncate(first);
                missed.unchecked.push(order_key);
            } else if keys.len() > first {
                missed.per_order.insert(order_key, first..keys.len());
            }
        }
        if keys.is_empty() {
            return missed;
        }
        let batch: Vec<(&str, bool)> = keys.iter().map(|k| (k.as_str(), true)).collect();
        let answers = claims.claim_many(&batch).await;
        missed.answers = keys.into_iter().zip(answers).map(Some).collect();
        missed
    }

    /// What the claims of the order with state key `order_key` found: each granted one is a
    /// change no channel relayed; completed keys were relayed. Taken once.
    pub(crate) fn take(&mut self, order_key: &str) -> Result<Verdict, Unsettled> {
        if let Some(i) = self.unchecked.iter().position(|k| k == order_key) {
            self.unchecked.swap_remove(i);
            return Ok(Verdict::Missed { claims: 0 });
        }
        let Some(range) = self.per_order.remove(order_key) else {
            return Ok(Verdict::Relayed);
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
        Ok(match granted {
            0 => Verdict::Relayed,
            claims => Verdict::Missed { claims },
        })
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
        assert_eq!(missed.take("a").unwrap(), Verdict::Missed { claims: 1 });
        assert_eq!(missed.take("b").unwrap(), Verdict::Relayed);
        assert_eq!(
            missed.take("c").unwrap(),
            Verdict::Relayed,
            "nothing claimed for it"
        );
        assert_eq!(missed.take("a").unwrap(), Verdict::Relayed, "taken once");
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
    async fn an_order_with_too_many_times_is_sent_whole_unchecked() {
        let dedupe = store();
        let mut claims = Claims::new(dedupe.clone());
        let many: Vec<String> = (0..=MAX_TIMES_PER_ORDER).map(|i| format!("t{i}")).collect();
        let few = vec!["t0".to_owned()];
        let mut missed = MissedChanges::claim(
            &mut claims,
            [("big".to_owned(), many), ("small".to_owned(), few)],
        )
        .await;
        assert_eq!(missed.take("big").unwrap(), Verdict::Missed { claims: 0 });
        assert_eq!(missed.take("small").unwrap(), Verdict::Missed { claims: 1 });
        // Only the small order's one key was claimed.
        assert!(dedupe.lookup("t0").await.unwrap().is_some());
        assert!(dedupe.lookup("t1").await.unwrap().is_none());
        // Exactly the limit is still checked.
        let mut claims = Claims::new(dedupe.clone());
        let limit: Vec<String> = (1..=MAX_TIMES_PER_ORDER).map(|i| format!("u{i}")).collect();
        let mut missed = MissedChanges::claim(&mut claims, [("at-limit".to_owned(), limit)]).await;
        assert_eq!(
            missed.take("at-limit").unwrap(),
            Verdict::Missed {
                claims: MAX_TIMES_PER_ORDER
            }
        );
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
