//! One relay step at a time per object, within this process.
//!
//! A queue send that outlives its request goes on as its own task after the request was
//! answered 503 (cutting it off would leave its outcome unknown). Meanwhile Tradecloud retries,
//! and a retry may carry a *newer* state of the same object (a GET fetches what the object is
//! now), under another dedupe key: without a gate its send could land before the late one and
//! the ERP would see the object's states out of order. So every relay of an object holds the
//! object's [`ObjectPass`] from before its first claim until its claims are settled, and a send
//! that outlives its request takes the pass with it. Whoever comes next for the same object
//! waits (within its own deadline, else 503) and then finds the late message completed.
//!
//! The pass is per process: it orders the webhook's requests of one `tcrelay serve` or one
//! Lambda sandbox (docs/design.md, "Order per object").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Each object's lock, with how many holders and waiters it has.
type Locks = HashMap<String, (Arc<AsyncMutex<()>>, usize)>;

/// The object locks in use, by object (`<class>:<id>`, as the FIFO `MessageGroupId`), each
/// with how many holders and waiters it has, so it is removed when the last one is gone.
#[derive(Debug, Default, Clone)]
pub struct ObjectGates {
    locks: Arc<Mutex<Locks>>,
}

/// The right to relay one object, held until dropped.
#[derive(Debug)]
pub struct ObjectPass {
    // Dropped before the registration, so the lock is free before its entry may go.
    _guard: OwnedMutexGuard<()>,
    _registration: Registration,
}

/// One holder or waiter of an object's lock; a waiter whose future is dropped unregisters too.
#[derive(Debug)]
struct Registration {
    gates: ObjectGates,
    object: String,
}

impl ObjectGates {
    /// No object held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until no other relay of `object` holds its pass, then takes it. Dropping the
    /// future while it waits takes nothing.
    pub async fn enter(&self, object: &str) -> ObjectPass {
        let lock = {
            let mut locks = self.lock_map();
            let entry = locks.entry(object.to_owned()).or_default();
            entry.1 += 1;
            Arc::clone(&entry.0)
        };
        let registration = Registration {
            gates: self.clone(),
            object: object.to_owned(),
        };
        ObjectPass {
            _guard: lock.lock_owned().await,
            _registration: registration,
        }
    }

    /// How many objects have a holder or a waiter now.
    pub fn in_use(&self) -> usize {
        self.lock_map().len()
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, Locks> {
        // The map is consistent after every statement, so a panic elsewhere leaves it usable.
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut locks = self.gates.lock_map();
        if let Some(entry) = locks.get_mut(&self.object) {
            entry.1 -= 1;
            if entry.1 == 0 {
                locks.remove(&self.object);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    // Paused time: the waits that prove a pass is withheld take no real time.
    #[tokio::test(start_paused = true)]
    async fn one_pass_per_object_at_a_time_and_the_map_empties() {
        let gates = ObjectGates::new();
        let first = gates.enter("order:o-1").await;
        // Another object is not held up.
        let other = gates.enter("order:o-2").await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), gates.enter("order:o-1"));
        assert!(waiting.await.is_err(), "a second pass for o-1 was granted");
        assert_eq!(gates.in_use(), 2);
        let gates2 = gates.clone();
        let next = tokio::spawn(async move { gates2.enter("order:o-1").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!next.is_finished());
        // A waiter that gives up leaves nothing behind.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), gates.enter("order:o-3"));
        let third = gates.enter("order:o-3").await;
        assert!(gave_up.await.is_err());
        assert_eq!(gates.in_use(), 3);
        drop(third);
        drop(first);
        let second = next.await.unwrap();
        assert_eq!(gates.in_use(), 2);
        drop(second);
        drop(other);
        assert_eq!(gates.in_use(), 0);
    }
}
