//! Changes a webhook event's state hid from the poll: the claims that find them, and their
//! answers by order.
//!
//! A poll or GET result is a duplicate when its state key exists. An order event carries only
//! its own lines, so that rule alone would lose a change: when the gateway dropped an earlier
//! event of an order and a later event of it went through, the later state is found relayed
//! while the earlier change reached no one. Every relayed event claims the state key of its
//! own `lastUpdatedAt`, and the changed lines of an order carry the time of the change that
//! last moved them; so the state keys of those times tell which changes an event relayed. One
//! the poll can still claim was claimed by no event (lost, filtered, or never sent): the order
//! goes out as the poll prepares it (docs/design.md, "Webhook and poll together").

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use tcrelay_core::ports::{DedupeRecord, RecordState, StoreError};
use tcrelay_core::relay::Claims;

/// The most line times checked for one order. An order with more (a long backfill of a large
/// order) is sent without checking, once per state: its whole-state marker is claimed instead
/// ([`tcrelay_core::dedupe::whole_state_key`]), so the claims of a page stay bounded (100
/// orders × 100 keys) and a later run that reads the same state finds it sent.
pub(crate) const MAX_TIMES_PER_ORDER: usize = 100;

/// The store's answer to one claim, as [`Claims::claim_many`] gives it.
type Answer = Result<Option<DedupeRecord>, StoreError>;

/// One order whose state key only webhook events wrote: what to check.
#[derive(Debug)]
pub(crate) struct OrderTimes {
    /// The order's state key (its own time), never claimed again here.
    pub key: String,
    /// Its whole-state marker, claimed instead of `times` when they are too many.
    pub whole: String,
    /// The state keys of its changed lines' times.
    pub times: Vec<String>,
    /// A changed line has no time: `times` cannot vouch for every change, and its whole-state
    /// marker is claimed instead, as for too many times.
    pub untimed: bool,
}

impl OrderTimes {
    /// The keys to claim for it: its line-time keys without its own key and repeats, or its
    /// whole-state marker alone when those are more than [`MAX_TIMES_PER_ORDER`] or a changed
    /// line has no time (then `true`).
    pub(crate) fn to_claim(&self) -> (Vec<&str>, bool) {
        let mut seen = HashSet::from([self.key.as_str()]);
        let keys: Vec<&str> = self
            .times
            .iter()
            .map(String::as_str)
            .filter(|key| seen.insert(key))
            .collect();
        if self.untimed || keys.len() > MAX_TIMES_PER_ORDER {
            (vec![self.whole.as_str()], true)
        } else {
            (keys, false)
        }
    }
}

/// The answers to the claims of the orders' missed changes, by order.
#[derive(Debug, Default)]
pub(crate) struct MissedChanges {
    /// Each order's state key, the range of its claims in `answers`, and whether that range is
    /// its whole-state marker alone (too many times to check).
    per_order: HashMap<String, (Range<usize>, bool)>,
    /// Each claimed key with its answer, taken once.
    answers: Vec<Option<(String, Answer)>>,
}

/// What an order's line times say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every change was relayed (or nothing was claimed for the order): a duplicate.
    Relayed,
    /// A change was claimed by no event: send the order; `claims` of the granted claims are its.
    Missed {
        /// How many of the held claims are the order's.
        claims: usize,
    },
    /// Too many times to check (or a changed line without one), and the state was not sent
    /// this way before: send the order; its one granted claim (the whole-state marker) is its.
    Unchecked,
}

/// Why an order's missed changes cannot be settled now.
#[derive(Debug)]
pub(crate) enum Unsettled {
    /// Another channel holds the claim on this key right now: it may still fail.
    InProgress(String),
    /// The dedupe store failed.
    Store(StoreError),
}

impl MissedChanges {
    /// Claims, in one batch held in `claims`, each order's line-time keys (its own key and
    /// repeats left out), or its whole-state marker when they are more than
    /// [`MAX_TIMES_PER_ORDER`]. An order with no other time is left out; no call is made when
    /// no order has any.
    pub(crate) async fn claim(
        claims: &mut Claims,
        orders: impl IntoIterator<Item = OrderTimes>,
    ) -> Self {
        let mut missed = Self::default();
        let mut keys: Vec<String> = Vec::new();
        for order in orders {
            let first = keys.len();
            let (to_claim, unchecked) = order.to_claim();
            keys.extend(to_claim.into_iter().map(str::to_owned));
            if keys.len() > first {
                missed
                    .per_order
                    .insert(order.key, (first..keys.len(), unchecked));
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

    /// What the claims of the order with state key `order_key` found: a granted line-time key
    /// is a change no event relayed, a completed one was relayed; a granted marker is a state
    /// not yet sent unchecked, a completed one was. Taken once.
    pub(crate) fn take(&mut self, order_key: &str) -> Result<Verdict, Unsettled> {
        let Some((range, unchecked)) = self.per_order.remove(order_key) else {
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
        Ok(match (granted, unchecked) {
            (0, _) => Verdict::Relayed,
            (_, true) => Verdict::Unchecked,
            (claims, false) => Verdict::Missed { claims },
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

    fn order(key: &str, times: &[&str]) -> OrderTimes {
        OrderTimes {
            key: key.to_owned(),
            whole: format!("{key}/whole"),
            times: times.iter().map(|k| (*k).to_owned()).collect(),
            untimed: false,
        }
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
    async fn an_order_with_too_many_times_claims_its_marker_once() {
        let dedupe = store();
        let many: Vec<String> = (0..=MAX_TIMES_PER_ORDER).map(|i| format!("t{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut claims = Claims::new(dedupe.clone());
        let mut missed =
            MissedChanges::claim(&mut claims, [order("big", &many), order("small", &["t0"])]).await;
        assert_eq!(missed.take("big").unwrap(), Verdict::Unchecked);
        assert_eq!(missed.take("small").unwrap(), Verdict::Missed { claims: 1 });
        // The marker and the small order's one key were claimed, none of the big one's times.
        assert!(dedupe.lookup("big/whole").await.unwrap().is_some());
        assert!(dedupe.lookup("t0").await.unwrap().is_some());
        assert!(dedupe.lookup("t1").await.unwrap().is_none());
        claims.settle(true).await;
        // Read again: the marker is completed, so the state is not sent a second time.
        let mut claims = Claims::new(dedupe.clone());
        let mut missed = MissedChanges::claim(&mut claims, [order("big", &many)]).await;
        assert_eq!(missed.take("big").unwrap(), Verdict::Relayed);
        // Exactly the limit is still checked.
        let limit: Vec<String> = (1..=MAX_TIMES_PER_ORDER).map(|i| format!("u{i}")).collect();
        let limit: Vec<&str> = limit.iter().map(String::as_str).collect();
        let mut missed = MissedChanges::claim(&mut claims, [order("at-limit", &limit)]).await;
        assert_eq!(
            missed.take("at-limit").unwrap(),
            Verdict::Missed {
                claims: MAX_TIMES_PER_ORDER
            }
        );
    }

    #[tokio::test]
    async fn an_order_with_a_changed_line_without_a_time_claims_its_marker_once() {
        let dedupe = store();
        // No other time at all, or a few: the marker alone either way.
        let untimed = |key: &str, times: &[&str]| OrderTimes {
            untimed: true,
            ..order(key, times)
        };
        let mut claims = Claims::new(dedupe.clone());
        let mut missed = MissedChanges::claim(
            &mut claims,
            [untimed("a", &["a"]), untimed("b", &["b", "t0"])],
        )
        .await;
        assert_eq!(missed.take("a").unwrap(), Verdict::Unchecked);
        assert_eq!(missed.take("b").unwrap(), Verdict::Unchecked);
        assert!(dedupe.lookup("t0").await.unwrap().is_none());
        claims.settle(true).await;
        let mut claims = Claims::new(dedupe.clone());
        let mut missed = MissedChanges::claim(&mut claims, [untimed("a", &["a"])]).await;
        assert_eq!(missed.take("a").unwrap(), Verdict::Relayed, "sent once");
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
