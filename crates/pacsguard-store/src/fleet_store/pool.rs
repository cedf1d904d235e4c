//! A bounded pool of connections to the fleet's store (issue 14): the fleet listener
//! served each host connection with a PostgreSQL connection of its own, so a fleet of
//! hundreds of hosts opened hundreds of server processes (PostgreSQL's default
//! `max_connections` is 100) and the hundred-and-first host was refused by the server.
//! Now a request takes a connection for as long as it is answered and gives it back:
//! at most [`PG_POOL_SIZE`] are open, a request waits at most [`PG_POOL_WAIT`] for one,
//! and a wait that ends empty is an error naming both (the caller reports it), never a
//! wait without end.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sqlite::StoreError;

use super::{FleetStore, FleetStoreAt};

/// Connections a console keeps open to its fleet's store at most (its listener, its
/// silence check and its pages together). PostgreSQL's default `max_connections` is
/// 100: a few consoles and the administrator's own sessions fit beside this.
pub const PG_POOL_SIZE: usize = 16;
/// How long a request waits for a connection when all [`PG_POOL_SIZE`] are in use
/// before it is refused (a host sends its report again at its next turn).
pub const PG_POOL_WAIT: Duration = Duration::from_secs(10);

/// How long after a move of the records of a version before that failed (see
/// `partitions.rs`) the pool starts another: a move that fails for good (a table in its
/// way) is not run again at every host's report.
pub const PG_MOVE_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How many moves in a row may fail before the console says loudly that the move
/// fails for good (a table in its way, a permission missing: an administrator must
/// act) and tries it again only every [`PG_MOVE_RETRY_AFTER_LONG`]: retried every
/// [`PG_MOVE_RETRY_AFTER`] for ever, the same warning came every five minutes and
/// looked like a passing outage (review of session 33).
pub const PG_MOVE_FAILURES_LOUD: u32 = 3;

/// How long after a failed move the pool starts another once
/// [`PG_MOVE_FAILURES_LOUD`] failed in a row.
pub const PG_MOVE_RETRY_AFTER_LONG: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct State {
    idle: Vec<Box<dyn FleetStore>>,
    /// Connections taken (or being opened) and not given back.
    out: usize,
    /// Requests that waited [`PG_POOL_WAIT`] and found none.
    exhausted: u64,
    /// Whether the move task runs now.
    moving: bool,
    /// When a move that failed may be tried again.
    move_not_before: Option<Instant>,
    /// Moves that failed in a row.
    move_failures: u32,
    /// Why the last move failed (kept until one succeeds).
    move_failed_why: Option<String>,
    /// Requests refused because the move was pending: the hosts the console itself
    /// did not hear (see [`FleetPool::move_refusals`]).
    move_refusals: u64,
}

/// The pool. Shared (`Arc`) by everything of one console that uses the store.
pub struct FleetPool {
    at: FleetStoreAt,
    size: usize,
    wait: Duration,
    state: Mutex<State>,
    given_back: Condvar,
}

impl std::fmt::Debug for FleetPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetPool")
            .field("at", &self.at)
            .field("size", &self.size)
            .finish()
    }
}

impl FleetPool {
    /// A pool of [`PG_POOL_SIZE`] connections to `at`, opened when first needed.
    pub fn new(at: FleetStoreAt) -> Arc<FleetPool> {
        FleetPool::with_limits(at, PG_POOL_SIZE, PG_POOL_WAIT)
    }

    /// Other limits than the defaults (tests at the limit).
    pub fn with_limits(at: FleetStoreAt, size: usize, wait: Duration) -> Arc<FleetPool> {
        Arc::new(FleetPool {
            at,
            size: size.max(1),
            wait,
            state: Mutex::default(),
            given_back: Condvar::new(),
        })
    }

    /// Where the connections go.
    pub fn at(&self) -> &FleetStoreAt {
        &self.at
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a count and a list, each left whole by every update: a panic
        // elsewhere while it was held leaves nothing half-done to refuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection: an idle one, a new one while fewer than the pool's size are open,
    /// else the first given back within [`PG_POOL_WAIT`];
    /// [`StoreError::PoolExhausted`] when none was.
    pub fn get(self: &Arc<FleetPool>) -> Result<Pooled, StoreError> {
        self.get_by(None)
    }

    /// As [`FleetPool::get`] for a request that must be done by `until` (see
    /// [`super::FLEET_REQUEST_BUDGET`]): the wait ends by then, and every call of the
    /// connection is bounded by it until the connection is given back.
    pub fn get_until(self: &Arc<FleetPool>, until: Instant) -> Result<Pooled, StoreError> {
        self.get_by(Some(until))
    }

    fn get_by(self: &Arc<FleetPool>, until: Option<Instant>) -> Result<Pooled, StoreError> {
        let started = Instant::now();
        let (deadline, setting) = match until {
            Some(until) if until < started + self.wait => (until, "FLEET_REQUEST_BUDGET"),
            _ => (started + self.wait, "PG_POOL_WAIT"),
        };
        let mut state = self.state();
        loop {
            if let Some(mut store) = state.idle.pop() {
                store.set_request_deadline(until);
                state.out += 1;
                return Ok(Pooled {
                    pool: self.clone(),
                    store: Some(store),
                });
            }
            if state.out < self.size {
                state.out += 1;
                drop(state);
                // Opened outside the lock: a server slow to answer holds up only
                // this request. Never one that moves a version before's records,
                // deadline or not: the move task below is the one gate of every
                // move (review of session 34).
                return match self.at.open_pooled(until) {
                    Ok(store) => Ok(Pooled {
                        pool: self.clone(),
                        store: Some(store),
                    }),
                    Err(e) => {
                        self.state().out -= 1;
                        self.given_back.notify_one();
                        if matches!(e, StoreError::PostgresMovePending { .. }) {
                            self.state().move_refusals += 1;
                            self.start_move();
                        }
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.exhausted += 1;
                return Err(StoreError::PoolExhausted {
                    target: self.at.describe(),
                    size: self.size,
                    waited: started.elapsed(),
                    setting,
                });
            }
            state = self
                .given_back
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Moves the records of a version before into the partitioned table from a task
    /// of its own, on a connection that serves no request (so without a request's
    /// deadline: `PG_MIGRATION_DEADLINE`), when a request found the move pending: one
    /// task at a time, and not again within [`PG_MOVE_RETRY_AFTER`] of one that
    /// failed. Its connection is one beyond the pool's size while it runs.
    fn start_move(self: &Arc<FleetPool>) {
        {
            let mut state = self.state();
            let now = Instant::now();
            if state.moving || state.move_not_before.is_some_and(|t| now < t) {
                return;
            }
            state.moving = true;
        }
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("pacsguard-fleet-move".to_string())
            .spawn(move || {
                let failed = pool.at.open_by(None).err();
                pool.move_ended(failed.as_ref().map(|e| e as &dyn std::fmt::Display));
            });
        if let Err(e) = spawned {
            self.move_ended(Some(&e));
        }
    }

    /// The move task ended, `failed` or not: when to try again, said on stderr.
    fn move_ended(&self, failed: Option<&dyn std::fmt::Display>) {
        let mut state = self.state();
        state.moving = false;
        let Some(e) = failed else {
            state.move_failures = 0;
            state.move_not_before = None;
            state.move_failed_why = None;
            return;
        };
        state.move_failures = state.move_failures.saturating_add(1);
        state.move_failed_why = Some(e.to_string());
        let failures = state.move_failures;
        let after = move_retry_after(failures);
        state.move_not_before = Some(Instant::now() + after);
        drop(state);
        say_move_failed(e, failures, after);
    }

    /// How many requests were refused because the move of a version before's records
    /// was pending, since the pool was made: the console's silence check counts no
    /// host's silence over a time it refused to hear them.
    pub fn move_refusals(&self) -> u64 {
        self.state().move_refusals
    }

    /// How many moves failed in a row (0 once one succeeded).
    pub fn move_failures(&self) -> u32 {
        self.state().move_failures
    }

    /// How many moves failed in a row and why the last did (`(0, None)` once one
    /// succeeded), read together.
    pub fn move_failed(&self) -> (u32, Option<String>) {
        let state = self.state();
        (state.move_failures, state.move_failed_why.clone())
    }

    /// How many requests found every connection in use for [`PG_POOL_WAIT`].
    pub fn exhausted(&self) -> u64 {
        self.state().exhausted
    }

    /// Connections taken now.
    pub fn in_use(&self) -> usize {
        self.state().out
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// A connection taken from a [`FleetPool`], given back when dropped.
#[derive(Debug)]
pub struct Pooled {
    pool: Arc<FleetPool>,
    store: Option<Box<dyn FleetStore>>,
}

impl std::ops::Deref for Pooled {
    type Target = dyn FleetStore;
    fn deref(&self) -> &Self::Target {
        match &self.store {
            Some(store) => store.as_ref(),
            None => unreachable!("taken only when dropped"),
        }
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.store {
            Some(store) => store.as_mut(),
            None => unreachable!("taken only when dropped"),
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(mut store) = self.store.take() {
            // A PostgreSQL connection that broke (a restart, a call past its deadline)
            // is closed now, outside the lock (a transaction it left is rolled back by
            // the server), and opens itself again at its next call.
            store.close_if_broken();
            store.set_request_deadline(None);
            let mut state = self.pool.state();
            state.out = state.out.saturating_sub(1);
            state.idle.push(store);
            drop(state);
            self.pool.given_back.notify_one();
        }
    }
}

/// Says why the move task did not move the records (not eprintln!: a closed stderr must
/// not panic the console).
/// Said loudly once [`PG_MOVE_FAILURES_LOUD`] failed in a row (and at each failure
/// after, an hour apart).
fn say_move_failed(e: &dyn std::fmt::Display, failures: u32, after: Duration) {
    use std::io::Write;
    let line = if failures >= PG_MOVE_FAILURES_LOUD {
        format!(
            "pacsguard: error: the move of the fleet's records into months failed {failures} times in a row (PG_MOVE_FAILURES_LOUD), the last: {e}; it fails for good until an administrator acts; hosts' reports are refused until the move is done, tried again in {} s (PG_MOVE_RETRY_AFTER_LONG) or at the console's next start",
            after.as_secs()
        )
    } else {
        format!(
            "pacsguard: warning: {e}; hosts' reports are refused until the move is done, tried again in {} s (PG_MOVE_RETRY_AFTER) or at the console's next start",
            after.as_secs()
        )
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// How long after the `failures`-th failed move in a row the next is started.
pub fn move_retry_after(failures: u32) -> Duration {
    if failures >= PG_MOVE_FAILURES_LOUD {
        PG_MOVE_RETRY_AFTER_LONG
    } else {
        PG_MOVE_RETRY_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PG_MOVE_FAILURES_LOUD: a move failing for good is tried again every five minutes
    /// until the limit, then every hour (review of session 33).
    #[test]
    fn a_move_failing_for_good_is_retried_at_a_longer_interval_past_its_limit() {
        for failures in 1..PG_MOVE_FAILURES_LOUD {
            assert_eq!(move_retry_after(failures), PG_MOVE_RETRY_AFTER);
        }
        assert_eq!(
            move_retry_after(PG_MOVE_FAILURES_LOUD),
            PG_MOVE_RETRY_AFTER_LONG
        );
        assert_eq!(move_retry_after(u32::MAX), PG_MOVE_RETRY_AFTER_LONG);
        assert!(PG_MOVE_RETRY_AFTER_LONG > PG_MOVE_RETRY_AFTER);
    }
}
