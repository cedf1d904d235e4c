//! The refusals raised whose state the fleet's store did not (or may not) hold yet
//! (issue 14, session 33): no I/O.
//!
//! A refusal's alert is raised once per change of a host's state, which the store
//! tells: the state as read says whether the refusal is news. While the store refuses
//! writes (SQLite locked or read-only, PostgreSQL down or slow), the state read stays
//! the one before, so every refusal looked like news: raised at each report of a copy
//! (an alert flood during an outage), and one judged from a read made before a slow
//! write committed raised a second `host-trail-fork`; not raising on a failed write
//! instead left a copy that forks once and never retries unraised. The console keeps
//! here, per host, each refusal raised and not yet written (its state, and its [`Point`]
//! where only that made it news): it is raised exactly once whatever the store answers,
//! and written, not raised again, when the store takes it.

use std::collections::{HashMap, HashSet};

use crate::acknowledge::Point;

/// The most hosts with refusals raised and not written that the console remembers.
/// Hosts are enrolled, but a store down for long may leave many: past this the memory
/// is emptied (said on the log by the caller), and each refusal is raised again at most
/// once more, never dropped.
pub const MAX_UNWRITTEN_HOSTS: usize = 4096;

/// The most refusals raised and not written the console remembers of one host: a copy
/// of a host's home holds its trail key and can fork at a new point at every report;
/// written, each after the first of its kind would be counted on the standing refusal,
/// not raised. Past this, the host's further refusals are not raised until the store
/// takes one (said on the log by the caller): bounded as the store bounds them.
pub const MAX_UNWRITTEN_PER_HOST: usize = 8;

/// What became of a refusal the store did not write ([`Unwritten::not_written`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotWritten {
    /// Not raised before: raise it now.
    Raise,
    /// Raised already while not written: not again.
    RaisedAlready,
    /// [`MAX_UNWRITTEN_PER_HOST`] of the host's refusals wait already: not raised.
    HostFull,
}

/// One refusal raised and not written: its state, and its point only where that made it
/// news (another point than the one an administrator acknowledged). Otherwise a refusal
/// of a state standing is counted, not raised, wherever it is (a copy's heartbeat names
/// a root, its records next a leaf hash: one refusal), so none is kept.
type Waiting = (String, Option<Point>);

/// The refusals raised and not written, per host (see the module).
#[derive(Debug, Default)]
pub struct Unwritten {
    hosts: HashMap<i64, HashSet<Waiting>>,
}

impl Unwritten {
    /// A refusal of `host` to `state` (at `point` where only that makes it news) whose
    /// write the store did not confirm: whether to raise it now, and whether the memory
    /// was emptied at its limit to hold it ([`MAX_UNWRITTEN_HOSTS`]).
    pub fn not_written(
        &mut self,
        host: i64,
        state: &str,
        point: Option<Point>,
    ) -> (NotWritten, bool) {
        let emptied = self.hosts.len() >= MAX_UNWRITTEN_HOSTS && !self.hosts.contains_key(&host);
        if emptied {
            self.hosts.clear();
        }
        let waiting = self.hosts.entry(host).or_default();
        let key = (state.to_string(), point);
        if waiting.contains(&key) {
            return (NotWritten::RaisedAlready, emptied);
        }
        if waiting.len() >= MAX_UNWRITTEN_PER_HOST {
            return (NotWritten::HostFull, emptied);
        }
        waiting.insert(key);
        (NotWritten::Raise, emptied)
    }

    /// The store took a refusal of `host` to `state`: whether one of that state was
    /// raised already while not written (then not again). The host's memory is emptied:
    /// from now on the store's state says what stands.
    pub fn written(&mut self, host: i64, state: &str) -> bool {
        self.hosts
            .remove(&host)
            .is_some_and(|waiting| waiting.iter().any(|(s, _)| s == state))
    }

    /// The store took a batch of `host`'s records that ended its refusals (`ok`): those
    /// raised and not written are over.
    pub fn forget(&mut self, host: i64) {
        self.hosts.remove(&host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acknowledge::point;

    #[test]
    fn a_refusal_not_written_is_raised_once_and_forgotten_once_written() {
        let mut unwritten = Unwritten::default();
        let at = |n: usize| Some(point(&format!("records from {n} again")));
        assert_eq!(unwritten.not_written(1, "fork", None).0, NotWritten::Raise);
        assert_eq!(
            unwritten.not_written(1, "fork", None).0,
            NotWritten::RaisedAlready
        );
        assert_eq!(
            unwritten.not_written(2, "fork", None).0,
            NotWritten::Raise,
            "another host"
        );
        assert_eq!(
            unwritten.not_written(1, "quota", None).0,
            NotWritten::Raise,
            "another state"
        );
        assert_eq!(
            unwritten.not_written(1, "fork", at(3)).0,
            NotWritten::Raise,
            "news for its point (acknowledged at another)"
        );
        assert_eq!(
            unwritten.not_written(1, "fork", at(3)).0,
            NotWritten::RaisedAlready
        );
        assert!(unwritten.written(1, "fork"), "raised already");
        assert!(!unwritten.written(1, "fork"), "forgotten once written");
        assert!(!unwritten.written(3, "fork"));
        unwritten.not_written(2, "fork", None);
        unwritten.forget(2);
        assert_eq!(unwritten.not_written(2, "fork", None).0, NotWritten::Raise);
    }

    /// MAX_UNWRITTEN_PER_HOST and MAX_UNWRITTEN_HOSTS: a copy forking at a new point at
    /// every report (each news beside an acknowledged one) raises at most so many while
    /// the store writes none; past the hosts' limit the memory is emptied (told), each
    /// raised again at most once more.
    #[test]
    fn the_memory_of_refusals_not_written_holds_its_limits() {
        let mut unwritten = Unwritten::default();
        let at = |n: usize| Some(point(&format!("records from {n} again")));
        for n in 0..MAX_UNWRITTEN_PER_HOST {
            assert_eq!(unwritten.not_written(1, "fork", at(n)).0, NotWritten::Raise);
        }
        assert_eq!(
            unwritten
                .not_written(1, "fork", at(MAX_UNWRITTEN_PER_HOST))
                .0,
            NotWritten::HostFull
        );
        assert!(unwritten.written(1, "fork"));
        assert_eq!(
            unwritten
                .not_written(1, "fork", at(MAX_UNWRITTEN_PER_HOST))
                .0,
            NotWritten::Raise,
            "room again once the store took one"
        );
        for host in 2..=i64::try_from(MAX_UNWRITTEN_HOSTS).expect("fits") {
            assert_eq!(
                unwritten.not_written(host, "fork", None),
                (NotWritten::Raise, false)
            );
        }
        assert_eq!(
            unwritten.not_written(-1, "fork", None),
            (NotWritten::Raise, true),
            "emptied at the limit, said"
        );
        assert_eq!(unwritten.not_written(1, "fork", at(1)).0, NotWritten::Raise);
    }
}
