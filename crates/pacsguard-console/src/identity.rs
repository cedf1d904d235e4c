//! This console's id, one per live console (issue 14, review s15-r13).
//!
//! Consoles sharing one fleet store (PostgreSQL) tell apart by their id what each wrote
//! awaiting its own trail ([`crate::host_approvals`]). The id is kept in the home's
//! store, so a console made from a copy of another's home (a cloned virtual machine, a
//! restored backup) carried the same one, and each settled the other's approvals as its
//! own. Now each running console claims its id on the shared store under a random
//! instance value made at each start, and renews the claim (its heartbeat) every
//! [`CONSOLE_HEARTBEAT_INTERVAL`]: a console presenting an id that another live instance
//! holds (heartbeat younger than [`CONSOLE_CLAIM_STALE`] by the store's clock) takes a
//! fresh id, says so on stderr and raises a `console-id-renewed` alert on its trail.
//! Two live consoles never hold one id; a copy and its original cannot be told apart
//! otherwise, so whichever claims second is the one renewed. A console uses its claim
//! without asking again for [`CONSOLE_CLAIM_TRUSTED`] only (its heartbeat held up
//! longer, the next use claims first), and never takes over an id written into its
//! store while it runs (review s16-r13).
//!
//! A console stopped cleanly gives its id back ([`Console::release_console_id`]). One
//! killed and started again within [`CONSOLE_CLAIM_STALE`] finds its own old claim live:
//! it took a fresh id, with a false `console-id-renewed` alert, and the approvals it
//! left awaiting their record under the old id were another console's to it, dropped
//! only after `FOREIGN_APPROVAL_ABANDONED_AFTER` (review r24). Now each console notes in
//! its home's store where it holds its id (its instance value, the kernel's boot id and
//! the store's path: `ConsoleDb::console_holder`); a `serve` that holds the home's lock
//! ([`Console::with_home_held`]) and finds its claim held by the instance noted there,
//! on this boot and at this path, is that console's next run: no other process can hold
//! this home while it holds the lock, so that instance is gone. It takes the claim over
//! from it, conditionally on the store (`FleetStore::take_over_console`: two successors
//! never both take it). A copy of the home elsewhere (another path, or another machine:
//! another boot id) does not match, and takes a fresh id as before. An id in the home's store that is not one the
//! console writes (edited with sqlite3: another type, empty, too long) is replaced by a
//! fresh one with the same alert: the console goes on (what it wrote under the old id is
//! dropped the same way). So is a row deleted from a store that holds accounts (a first
//! start makes the row before any account exists), rather than taken as a first start.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pacsguard_events::{Event, Finding, FindingKind, Severity};
use pacsguard_store::StoredConsoleId;

use crate::auth::{AuthError, Console, lock};

/// How often `serve` renews this console's claim on its id.
pub const CONSOLE_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// A claim not renewed for this long (seconds, by the fleet store's clock) is taken as
/// the claim of a console no longer running: its id may be claimed by another instance.
/// Several heartbeats, so a console slowed down (a loaded host, a store briefly away) is
/// not taken for gone.
pub const CONSOLE_CLAIM_STALE: i64 = 4 * CONSOLE_HEARTBEAT_INTERVAL.as_secs() as i64;
/// Fresh ids taken in one claim before giving up (each found held by another live
/// console): a fresh id is 128 random bits, so more than one in a row means the store
/// answers every claim as held (edited, or broken), which is said, not looped on.
pub const MAX_ID_RENEWALS: usize = 3;
/// How long (seconds, by the console's clock, counted from before the claim was sent)
/// a claim is taken as still this console's without asking the store again: half of
/// [`CONSOLE_CLAIM_STALE`], so a console whose heartbeat stopped (its thread held up, the
/// store away) stops using its id well before another may take it as gone, and claims it
/// again at its next use (review s16-r13: the id was used for as long as the process
/// ran, while a copy could hold it too). Above the heartbeat interval: a console whose
/// heartbeat runs never asks at a use.
pub const CONSOLE_CLAIM_TRUSTED: i64 = CONSOLE_CLAIM_STALE / 2;
const _: () = assert!(CONSOLE_CLAIM_TRUSTED > CONSOLE_HEARTBEAT_INTERVAL.as_secs() as i64);

/// This process's random instance value and the id it holds.
#[derive(Debug, Default)]
pub struct Identity {
    pub(crate) instance: String,
    /// The id claimed and when (the console's clock before the claim was sent; `None`
    /// until the first claim that succeeded).
    held: Mutex<Option<(String, i64)>>,
    /// The last claim ended at [`MAX_ID_RENEWALS`]: until one succeeds, claims take no
    /// fresh id (and raise no alert) again, so a store that answers every claim as held
    /// costs [`MAX_ID_RENEWALS`] alerts once, not as many at every heartbeat.
    exhausted: std::sync::atomic::AtomicBool,
    /// The id was given back at a clean stop: a request still being served then claims
    /// no id again (its claim would outlive the process, and the next start, finding it
    /// live, would take a fresh id with a false alert).
    released: std::sync::atomic::AtomicBool,
    /// The kernel's boot id, when this process holds its home's lock (`serve`): only then
    /// is a claim noted in the home's store on this boot and path a previous run's.
    home_held_on: Option<String>,
}

impl Identity {
    pub(crate) fn new() -> Result<Identity, AuthError> {
        let instance = crate::secret::random_bytes(16)
            .map_err(|e| AuthError::Random(e.to_string()))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Identity {
            instance,
            ..Identity::default()
        })
    }

    /// The same instance, holding no id (the store it was claimed on was replaced).
    pub(crate) fn unclaimed(&mut self) -> Identity {
        Identity {
            instance: std::mem::take(&mut self.instance),
            home_held_on: self.home_held_on.take(),
            ..Identity::default()
        }
    }
}

impl Console {
    /// This process holds its home's lock (`serve`: one writer per home), on the boot
    /// `boot_id`: a claim of this home's previous run on this boot is taken over rather
    /// than answered with a fresh id ([`crate::identity`]). `None`, the boot unknown:
    /// none is.
    pub fn with_home_held(mut self, boot_id: Option<String>) -> Console {
        self.identity.home_held_on = boot_id;
        self
    }

    /// Where this process holds its id, as noted in the home's store (`None`: not
    /// known to hold its home's lock).
    fn holder(&self) -> Option<pacsguard_store::ConsoleHolder> {
        Some(pacsguard_store::ConsoleHolder {
            instance: self.identity.instance.clone(),
            boot: self.identity.home_held_on.clone()?,
            store: self.store_path.display().to_string(),
        })
    }

    /// Takes over the claim of `id` left live by this home's previous run on this boot
    /// (killed: its lock is ours now); `true` when this process holds it then.
    fn take_over_previous_run(&self, id: &str) -> Result<bool, AuthError> {
        let (Some(me), Some(before)) = (self.holder(), lock(&self.db)?.console_holder()?) else {
            return Ok(false);
        };
        if before.instance == me.instance || (before.boot, before.store) != (me.boot, me.store) {
            return Ok(false);
        }
        let taken =
            self.with_fleet(|db| Ok(db.take_over_console(id, &before.instance, &me.instance)?))?;
        if taken {
            eprintln!(
                "pacsguard serve: this console's previous run on this machine (instance {}) stopped without giving its id {id} back (killed): its claim is taken over, the id kept",
                before.instance
            );
        }
        Ok(taken)
    }

    /// This console's id: the one it holds, claimed first if it holds none yet.
    /// A claim older than [`CONSOLE_CLAIM_TRUSTED`] (or from the console clock's future) is
    /// claimed again first: another console may have taken the id meanwhile.
    pub(crate) fn console_id(&self) -> Result<String, AuthError> {
        let now = self.now();
        if let Some((id, at)) = lock(&self.identity.held)?.clone()
            && (at..at.saturating_add(CONSOLE_CLAIM_TRUSTED)).contains(&now)
        {
            return Ok(id);
        }
        self.claim_console_id()
    }

    /// Claims (or claims again: the heartbeat) this console's id on the fleet's store,
    /// taking a fresh id when another live console holds it or the stored one is not an
    /// id ([`crate::identity`]). Returns the id held. Called at `serve`'s start and every
    /// [`CONSOLE_HEARTBEAT_INTERVAL`]; a store not reachable is an error (the caller says
    /// it), and the id is claimed at its next use.
    pub fn claim_console_id(&self) -> Result<String, AuthError> {
        // One claim at a time: two renewing at once would each take a fresh id.
        let mut held = lock(&self.identity.held)?;
        if self.identity.released.load(Ordering::Relaxed) {
            return Err(AuthError::Internal(
                "this console is stopping: its id was given back on the fleet store".into(),
            ));
        }
        // Before the claim is sent: the store's heartbeat is no older than this.
        let at = self.now();
        for attempt in 0..=MAX_ID_RENEWALS {
            let stored = lock(&self.db)?.stored_console_id()?;
            let id = match stored {
                // Only this function writes the id while the console runs: another one
                // in the store now was written there (sqlite3 on the live home, perhaps
                // the id of another console, stopped, to settle its approvals): never
                // taken over (review s16-r13).
                StoredConsoleId::Id(id) if held.as_ref().is_some_and(|(h, _)| *h != id) => {
                    let was = held.take().map(|(h, _)| h).unwrap_or_default();
                    let fresh = lock(&self.db)?.renew_console_id()?;
                    self.say_renewed(format!(
                        "the console id in the store {} (table console_identity, column console) was changed from {was} to {id} while this console ran: the store was edited; an id written there by another is not taken, so this console took the fresh id {fresh}",
                        self.store_path.display()
                    ))?;
                    continue;
                }
                StoredConsoleId::Id(id) => id,
                // Already replaced by a fresh id in the store: said, then read again.
                StoredConsoleId::Missing(fresh) => {
                    held.take();
                    self.say_renewed(format!(
                        "the console id in the store {} (table console_identity) is missing although the store holds console accounts: the row was deleted; this console took the fresh id {fresh}",
                        self.store_path.display()
                    ))?;
                    continue;
                }
                StoredConsoleId::Malformed(what) => {
                    held.take();
                    let fresh = lock(&self.db)?.renew_console_id()?;
                    self.say_renewed(format!(
                        "the console id in the store {} (table console_identity, column console) is {what}, not an id the console writes: the store was edited; this console took the fresh id {fresh}",
                        self.store_path.display()
                    ))?;
                    continue;
                }
            };
            let first = held.is_none();
            let mine = !self.fleet_shared()
                || self.with_fleet(|db| {
                    Ok(db.claim_console(&id, &self.identity.instance, CONSOLE_CLAIM_STALE)?)
                })?
                || (first && attempt == 0 && self.take_over_previous_run(&id)?);
            if mine {
                // Noted once per run: where the next run, should this one be killed,
                // finds the claim it may take over.
                if first
                    && self.fleet_shared()
                    && let Some(me) = self.holder()
                {
                    lock(&self.db)?.set_console_holder(&me)?;
                }
                *held = Some((id.clone(), at));
                self.identity.exhausted.store(false, Ordering::Relaxed);
                return Ok(id);
            }
            if self.identity.exhausted.load(Ordering::Relaxed) {
                held.take();
                return Err(AuthError::Internal(format!(
                    "the fleet store still answers the claim of this console's id {id} as held by another console, as it did for MAX_ID_RENEWALS ({MAX_ID_RENEWALS}) fresh ids: it was edited or is broken; no fresh id is taken until a claim succeeds"
                )));
            }
            if attempt == MAX_ID_RENEWALS {
                held.take();
                break;
            }
            let fresh = lock(&self.db)?.renew_console_id()?;
            let was_held = held.take().is_some_and(|(h, _)| h == id);
            self.say_renewed(format!(
                "another console running on the shared fleet store holds this console's id {id} (renewed within CONSOLE_CLAIM_STALE, {CONSOLE_CLAIM_STALE} s): {}; two consoles with one id would settle each other's approvals, so this console took the fresh id {fresh}",
                if was_held {
                    "it took the id while this console's heartbeat was late, or the store's row of this id (table fleet_consoles) was edited"
                } else {
                    "one of the two homes is a copy of the other (a cloned machine, a restored backup), or this console was killed and started again within that time"
                }
            ))?;
        }
        self.identity.exhausted.store(true, Ordering::Relaxed);
        Err(AuthError::Internal(format!(
            "the fleet store answered {} claims of console ids, {MAX_ID_RENEWALS} of them fresh (MAX_ID_RENEWALS), as held by another console: it was edited or is broken",
            MAX_ID_RENEWALS + 1
        )))
    }

    /// Gives this console's id back on the shared store (a clean stop), so its next
    /// start claims it again at once.
    pub fn release_console_id(&self) -> Result<(), AuthError> {
        let mut held = lock(&self.identity.held)?;
        self.identity.released.store(true, Ordering::Relaxed);
        let Some((id, _)) = held.take() else {
            return Ok(());
        };
        if !self.fleet_shared() {
            return Ok(());
        }
        self.with_fleet(|db| Ok(db.release_console(&id, &self.identity.instance)?))
    }

    /// A fresh id was taken: said on stderr and raised on the trail.
    fn say_renewed(&self, detail: String) -> Result<(), AuthError> {
        eprintln!("pacsguard serve: {detail}");
        self.record(Event::of_finding(
            self.actor("console"),
            Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleIdRenewed,
                Severity::Alert,
                format!("console: {detail}"),
            ),
        ))
    }
}
