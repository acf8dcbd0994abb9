//! The gate every copy passes just before its SMTP transaction starts. It holds what the
//! worker knows of the world: which issues may go out now (sending, not paused), under which
//! registration the worker holds its rows, and until when that lease is certainly valid. A copy
//! of an issue that is not sendable, of a row held under a registration the worker gave up, or
//! sent by a worker whose lease may have lapsed, never starts.
//!
//! Whoever changes the sendable set can tell when no transaction that passed the gate under the
//! old set is still starting ([`Gate::drained`]): after that, nothing starts on stale knowledge.
//! That is what lets pause and cancel answer only once they have taken effect.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use tokio::time::Instant;

/// See the module documentation.
#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    version: u64,
    sendable: HashSet<i64>,
    holder: i64,
    valid_until: Option<Instant>,
    /// Transactions between the gate and their start, by the version they passed under.
    entering: BTreeMap<u64, usize>,
}

/// Why the gate refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The worker's lease may have lapsed, or the row was claimed under a registration it gave
    /// up: another worker may hold the row now.
    Lease,
    /// The issue is paused, cancelled, finished or not known to be sending.
    Issue,
}

/// A transaction on its way to starting; dropping it says it has started (or failed).
pub struct Entry<'a> {
    gate: &'a Gate,
    version: u64,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if let Some(n) = state.entering.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                state.entering.remove(&self.version);
            }
        }
    }
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets a transaction for `issue_id`, of a row held under `holder`, start: if the issue is
    /// sendable, and `holder` is the worker's registration and its lease valid.
    pub fn enter(&self, issue_id: i64, holder: i64) -> Result<Entry<'_>, Closed> {
        let mut state = self.lock();
        if state.holder != holder || state.valid_until.is_none_or(|t| Instant::now() >= t) {
            return Err(Closed::Lease);
        }
        if !state.sendable.contains(&issue_id) {
            return Err(Closed::Issue);
        }
        let version = state.version;
        *state.entering.entry(version).or_default() += 1;
        Ok(Entry {
            gate: self,
            version,
        })
    }

    /// Whether copies of `issue_id` may go out now.
    pub fn sendable(&self, issue_id: i64) -> bool {
        self.lock().sendable.contains(&issue_id)
    }

    /// The sendable issues, oldest first.
    pub fn sendable_issues(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.lock().sendable.iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The number of updates so far.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Replaces the sendable set; returns the new version.
    pub fn update(&self, sendable: HashSet<i64>) -> u64 {
        let mut state = self.lock();
        state.version += 1;
        state.sendable = sendable;
        state.version
    }

    /// Whether every transaction that passed the gate before `version` has started.
    pub fn drained(&self, version: u64) -> bool {
        self.lock().entering.range(..version).next().is_none()
    }

    /// Whether the lease is certainly valid now.
    pub fn lease_valid(&self) -> bool {
        self.lock().valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// The lease of registration `holder` is certainly valid until `until`.
    pub fn renewed(&self, holder: i64, until: Instant) {
        let mut state = self.lock();
        state.holder = holder;
        state.valid_until = Some(until);
    }

    /// The lease is lost: nothing more starts until it is renewed.
    pub fn lapse(&self) {
        self.lock().valid_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(gate: &Gate, issues: &[i64]) {
        gate.update(issues.iter().copied().collect());
        gate.renewed(7, Instant::now() + Duration::from_secs(60));
    }

    #[test]
    fn only_sendable_issues_of_the_current_registration_under_a_valid_lease_pass() {
        let gate = Gate::default();
        assert_eq!(gate.enter(1, 7).err(), Some(Closed::Lease));
        open(&gate, &[1]);
        assert!(gate.enter(1, 7).is_ok());
        assert!(gate.lease_valid());
        assert_eq!(gate.enter(2, 7).err(), Some(Closed::Issue));
        assert_eq!(
            gate.enter(1, 6).err(),
            Some(Closed::Lease),
            "a row of an old registration"
        );
        gate.lapse();
        assert_eq!(gate.enter(1, 7).err(), Some(Closed::Lease));
        assert!(!gate.lease_valid());
        gate.renewed(7, Instant::now() - Duration::from_millis(1));
        assert_eq!(gate.enter(1, 7).err(), Some(Closed::Lease));
    }

    #[test]
    fn an_update_is_drained_only_when_earlier_entries_have_started() {
        let gate = Gate::default();
        open(&gate, &[1]);
        let early = gate.enter(1, 7).unwrap();
        let version = gate.update(HashSet::new());
        assert!(gate.enter(1, 7).is_err(), "the new set applies at once");
        assert!(
            !gate.drained(version),
            "an entry from before the update is still starting"
        );
        drop(early);
        assert!(gate.drained(version), "drained once it has started");
    }

    #[test]
    fn entries_after_an_update_do_not_hold_it_up() {
        let gate = Gate::default();
        open(&gate, &[1]);
        let version = gate.update([1].into_iter().collect());
        let _late = gate.enter(1, 7).unwrap();
        assert!(gate.drained(version), "only earlier entries count");
    }
}
