//! What the console keeps in the store and relies on, bound to the audit trail: each
//! account (name, role, creation time, creator) and each request waiting for a second
//! approver. Root can edit the store with sqlite3; the trail is append-only, signed and
//! verified. So the trail records a digest of each account when it is created and when
//! its role changes (`Event::account_digest`), and of each request when it is asked
//! (`Event::request_digest`); the console checks the store's rows against them.
//!
//! The digests are read from the trail once per process, at start ([`Console::bind_to_trail`],
//! or at the first check when nothing called it): one streamed pass over the log that
//! parses only the records naming them. Afterwards the console keeps them in memory and
//! updates them as it records new ones, so a row edited in the store while the console
//! runs is refused at once, and a row edited together with its trail record (which the
//! trail's verification catches only when its re-read reaches it) too.
//!
//! * An account whose row differs from its newest record, or that has none, is refused
//!   at sign-in and at every request of its sessions, and a `console-account-altered`
//!   alert is recorded (once per account and row).
//! * A request waiting for a second approver whose row differs from the trail is dropped
//!   at start with a `console-request-altered` alert (and refused at confirmation, as
//!   before, if it were still there).
//!
//! * A session in the store that the console did not open (no record of its opening on
//!   the trail, `Event::session_digest`) is refused and ended with a
//!   `console-session-altered` alert: root could otherwise plant a session row for a bound
//!   administrator and act as them with no password, no second factor and no sign-in on
//!   the trail. Sessions found at start with no record are ended (an alert when the trail
//!   already holds session records, a plain record at the first start of this version).
//!
//! Upgrade: a trail with no account record at all (a home whose console predates this
//! binding, or a trail started again by `audit reinit`) binds the accounts the store
//! holds then, once, with a record saying so: trust on first use, visible on the trail
//! and raised as a `console-accounts-bound-on-trust` warning naming each account and its
//! role (whoever brings a store to that state binds an account they planted with it).

use std::collections::{HashMap, HashSet};

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::AccountBinding;

use crate::auth::{AuthError, Console, lock};

/// The digest the trail records of an account: every field the console relies on to
/// say who a person is and what they may do. The trail records `<id>:<this digest>`.
pub fn account_digest(account: &AccountBinding) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console account v1\0");
    for number in [
        account.id,
        account.created,
        account.created_by.unwrap_or(-1),
    ] {
        hash.update(number.to_le_bytes());
    }
    for text in [&account.name, &account.role] {
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest the trail records of a session when it is opened: what makes it the
/// session of one account since one time. The token's digest (not the token) is in it;
/// this digest of a digest tells a reader of the trail nothing about the token.
pub fn session_digest(token_hash: &[u8], account: i64, created: i64) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console session v1\0");
    hash.update((token_hash.len() as u64).to_le_bytes());
    hash.update(token_hash);
    hash.update(account.to_le_bytes());
    hash.update(created.to_le_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The accounts' digests as the trail holds them, and the alerts already raised.
#[derive(Debug, Default)]
pub(crate) struct Bindings {
    /// `None` until read from the trail.
    accounts: Option<HashMap<i64, String>>,
    /// (account, digest of the row found) already reported: one alert per alteration,
    /// not one per request.
    alerted: HashSet<(i64, String)>,
    /// The digests of the sessions this console opened or found recorded at start (only
    /// those still in the store: pruned when expired sessions are purged).
    sessions: HashSet<String>,
}

/// What [`Console::bind_to_trail`] found, for the start-up line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindReport {
    /// Accounts whose row matches the trail.
    pub accounts: usize,
    /// Accounts bound now because the trail held no account record (first start).
    pub first_bound: usize,
    /// Accounts refused: not as the trail recorded them.
    pub altered_accounts: Vec<String>,
    /// Waiting requests bound again to their trail record.
    pub requests: usize,
    /// Waiting requests dropped: not as the trail recorded them.
    pub altered_requests: Vec<i64>,
    /// Sessions kept: opened by the console, as recorded.
    pub sessions: usize,
    /// Sessions ended at start: no record of their opening on the trail.
    pub unrecorded_sessions: usize,
}

/// The newest `<id>:<digest>` of each id in `field` of `records` (oldest first).
fn newest(records: &[serde_json::Value], field: &str) -> HashMap<i64, String> {
    let mut found = HashMap::new();
    for record in records {
        let Some((id, digest)) = record
            .get(field)
            .and_then(serde_json::Value::as_str)
            .and_then(|d| d.split_once(':'))
        else {
            continue;
        };
        if let Ok(id) = id.parse::<i64>() {
            found.insert(id, digest.to_string());
        }
    }
    found
}

impl Console {
    /// Reads the trail's account and request records and checks the store against them
    /// (see the module's documentation). Called by `serve` before it listens; the first
    /// check does it otherwise.
    pub fn bind_to_trail(&self) -> Result<BindReport, AuthError> {
        let records = match &self.guardian {
            Some(guardian) => guardian
                .bound_records()
                .map_err(|e| AuthError::Internal(format!("reading the trail: {e}")))?,
            None => Vec::new(),
        };
        let mut report = BindReport::default();
        self.bind_accounts(&newest(&records, "account_digest"), &mut report)?;
        self.bind_requests(&newest(&records, "request_digest"), &mut report)?;
        let opened: HashSet<String> = records
            .iter()
            .filter_map(|r| r.get("session_digest").and_then(serde_json::Value::as_str))
            .map(str::to_string)
            .collect();
        self.bind_sessions(&opened, &mut report)?;
        Ok(report)
    }

    /// Each session in the store checked against the records of the sessions opened:
    /// kept in memory when recorded, ended when not.
    fn bind_sessions(
        &self,
        opened: &HashSet<String>,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let rows = lock(&self.db)?.live_sessions(None)?;
        let mut kept = HashSet::new();
        let mut ended = Vec::new();
        for row in rows {
            let digest = session_digest(&row.token_hash, row.account, row.created);
            if opened.contains(&digest) {
                kept.insert(digest);
            } else {
                ended.push(row);
            }
        }
        report.sessions = kept.len();
        report.unrecorded_sessions = ended.len();
        lock(&self.bindings)?.sessions = kept;
        if ended.is_empty() {
            return Ok(());
        }
        let db = lock(&self.db)?;
        for row in &ended {
            db.delete_session(&row.token_hash)?;
        }
        drop(db);
        let names: Vec<&str> = ended.iter().map(|r| r.name.as_str()).collect();
        if opened.is_empty() {
            // The first start of a console that records its sessions: those of the
            // version before have no record. Ended (their holders sign in again), no alarm.
            return self.record(self.event(
                "sessions",
                Action::Logout,
                Outcome::Success,
                format!(
                    "{} session(s) opened before sessions were recorded on the trail ended at start ({}): sign in again",
                    ended.len(),
                    names.join(", ")
                ),
            ));
        }
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleSessionAltered,
            Severity::Alert,
            format!(
                "console: {} session(s) in the store were never opened by the console (no record of their opening on the trail) for {}: the store was edited while the console was stopped; they were ended at start",
                ended.len(),
                names.join(", ")
            ),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Logout;
        self.record(event)
    }

    /// Records the opening of a session, before its row is written, on `opening` (the
    /// sign-in, step-up or emergency record that opens it) or, when `None`, on a record of
    /// its own; returns its digest, which the caller keeps ([`Console::keep_session`]) as
    /// it writes the row.
    pub(crate) fn record_session_opening(
        &self,
        token_hash: &[u8],
        account: i64,
        created: i64,
        opening: Option<Event>,
    ) -> Result<String, AuthError> {
        self.ensure_bound()?;
        let digest = session_digest(token_hash, account, created);
        let mut event = opening.unwrap_or_else(|| {
            // Not a sign-in (the session replaces one after an account change: the
            // first setup, an enrolment): an account record, not a second Login.
            self.event(
                "sessions",
                Action::Account,
                Outcome::Success,
                format!("a new session opened for account {account} after a change to the account"),
            )
        });
        event.session_digest = Some(digest.clone());
        self.record(event)?;
        Ok(digest)
    }

    /// Keeps a session's digest for the checks. The caller holds the store's lock (and
    /// writes the row under it), so a purge's pruning never sees the digest without its row.
    pub(crate) fn keep_session(&self, digest: String) -> Result<(), AuthError> {
        lock(&self.bindings)?.sessions.insert(digest);
        Ok(())
    }

    /// Whether the session row was opened by this console (see the module); when not,
    /// it is ended and the alert recorded. The caller holds the store's lock and called
    /// [`Console::ensure_bound`] before taking it.
    pub(crate) fn session_as_recorded(
        &self,
        db: &pacsguard_store::ConsoleDb,
        token_hash: &[u8],
        session: &pacsguard_store::SessionRow,
        name: &str,
    ) -> Result<bool, AuthError> {
        let digest = session_digest(token_hash, session.account, session.created);
        if lock(&self.bindings)?.sessions.contains(&digest) {
            return Ok(true);
        }
        db.delete_session(token_hash)?;
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleSessionAltered,
            Severity::Alert,
            format!(
                "console: a session of {name} presented to the console was never opened by it (no record of its opening on the trail, or its account or opening time edited): the store was edited; the session was ended and refused"
            ),
        );
        let mut event = Event::of_finding(self.actor(name), finding);
        event.action = Action::Login;
        event.outcome = Outcome::Failure;
        self.record(event)?;
        Ok(false)
    }

    /// Forgets the digests of sessions no longer in the store (after a purge).
    /// The store's lock is held throughout: a session being opened is kept and written
    /// under it, so its digest is never pruned before its row exists.
    pub(crate) fn prune_sessions(&self) -> Result<(), AuthError> {
        let db = lock(&self.db)?;
        let live: HashSet<String> = db
            .live_sessions(None)?
            .iter()
            .map(|r| session_digest(&r.token_hash, r.account, r.created))
            .collect();
        lock(&self.bindings)?.sessions.retain(|d| live.contains(d));
        drop(db);
        Ok(())
    }

    fn bind_accounts(
        &self,
        recorded: &HashMap<i64, String>,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let rows = lock(&self.db)?.account_bindings()?;
        let first_start = recorded.is_empty();
        lock(&self.bindings)?.accounts = Some(recorded.clone());
        if first_start && !rows.is_empty() {
            self.warn_bound_on_trust(&rows)?;
        }
        for row in rows {
            if first_start {
                self.record_binding(&row, "bound to the trail at the first start of a console that binds accounts (trust on first use)")?;
                report.first_bound += 1;
            } else if recorded.get(&row.id) == Some(&account_digest(&row)) {
                report.accounts += 1;
            } else {
                self.account_altered(&row, recorded.get(&row.id).is_some())?;
                report.altered_accounts.push(row.name.clone());
            }
        }
        Ok(())
    }

    /// Trust on first use is never silent: whoever can bring a store to it (a trail
    /// started anew, its account records made unreadable) gets every account bound, so
    /// a person is asked, on the alerts page, to confirm each account and its role.
    fn warn_bound_on_trust(&self, rows: &[AccountBinding]) -> Result<(), AuthError> {
        let accounts: Vec<String> = rows
            .iter()
            .map(|r| format!("{} ({})", r.name, r.role))
            .collect();
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleAccountsBoundOnTrust,
            Severity::Warning,
            format!(
                "console: the audit trail holds no record of any console account (the first start of a version that binds accounts, a trail started anew by `audit reinit`, or its account records edited away): the {} account(s) in the store were bound on trust: {}. Check that each is one of your people with the right role; an account planted while the console was stopped would be among them",
                rows.len(),
                accounts.join(", ")
            ),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Account;
        self.record(event)
    }

    /// Each waiting request checked against its trail record: kept in memory when it
    /// matches (its confirmation is then checked against this process's copy), dropped
    /// with an alert when not.
    fn bind_requests(
        &self,
        recorded: &HashMap<i64, String>,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let rows = lock(&self.db)?.pending_accepts()?;
        for row in rows {
            let digest = crate::decide::request_digest(&row);
            let id = u64::try_from(row.id).unwrap_or(u64::MAX);
            if recorded.get(&row.id) == Some(&digest) {
                lock(&self.asked)?.insert(id, digest);
                report.requests += 1;
                continue;
            }
            let why = match recorded.get(&row.id).map(String::as_str) {
                Some(crate::decide::REQUEST_CLOSED) => {
                    "was closed on the trail (voided, or dropped as altered) and put back in the store"
                }
                Some(_) => "no longer matches the digest the trail recorded when it was asked",
                None => "has no record on the trail (never asked through the console)",
            };
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleRequestAltered,
                Severity::Alert,
                format!(
                    "console: request {} waiting for a second approver (asked by {} for {}) {why}: the store was edited while the console was stopped; the request was dropped at start",
                    row.id,
                    row.asked_by,
                    if row.root.is_empty() {
                        "every root"
                    } else {
                        row.root.as_str()
                    }
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = Action::Accept;
            event.request_digest = Some(crate::decide::closed_request_digest(row.id));
            self.record(event)?;
            lock(&self.db)?.remove_pending_accept(row.id)?;
            report.altered_requests.push(row.id);
        }
        Ok(())
    }

    /// Records what the trail binds of `account` now (after it was created or its role
    /// changed), and keeps it for the checks.
    pub(crate) fn bind_account(&self, account: i64, why: &str) -> Result<(), AuthError> {
        self.ensure_bound()?;
        let row = lock(&self.db)?.account_binding(account)?.ok_or_else(|| {
            AuthError::Internal(format!("account {account} vanished from the store"))
        })?;
        self.record_binding(&row, why)
    }

    fn record_binding(&self, row: &AccountBinding, why: &str) -> Result<(), AuthError> {
        let digest = account_digest(row);
        let mut event = self.event(
            &row.name,
            Action::Account,
            Outcome::Success,
            format!(
                "account {} ({}, created {}{}) {why}",
                row.name,
                row.role,
                row.created,
                row.created_by
                    .map(|by| format!(" by account {by}"))
                    .unwrap_or_default()
            ),
        );
        event.account_digest = Some(format!("{}:{digest}", row.id));
        self.record(event)?;
        lock(&self.bindings)?
            .accounts
            .get_or_insert_with(HashMap::new)
            .insert(row.id, digest);
        Ok(())
    }

    /// The trail's records are read once per process (before the store's lock is taken:
    /// the reading takes it).
    pub(crate) fn ensure_bound(&self) -> Result<(), AuthError> {
        if lock(&self.bindings)?.accounts.is_none() {
            self.bind_to_trail()?;
        }
        Ok(())
    }

    /// Whether the account's row in `db` is as the trail recorded it (see the module);
    /// when not, the alert is recorded (once) and the caller refuses the account. The
    /// caller holds the store's lock and called [`Console::ensure_bound`] before taking it.
    pub(crate) fn account_as_recorded(
        &self,
        db: &pacsguard_store::ConsoleDb,
        account: i64,
    ) -> Result<bool, AuthError> {
        let Some(row) = db.account_binding(account)? else {
            return Ok(false);
        };
        let recorded = lock(&self.bindings)?
            .accounts
            .as_ref()
            .and_then(|a| a.get(&account).cloned());
        if recorded.as_deref() == Some(account_digest(&row).as_str()) {
            return Ok(true);
        }
        self.account_altered(&row, recorded.is_some())?;
        Ok(false)
    }

    /// The alert for an account not as recorded (once per account and row).
    fn account_altered(&self, row: &AccountBinding, has_record: bool) -> Result<(), AuthError> {
        let key = (row.id, account_digest(row));
        if !lock(&self.bindings)?.alerted.insert(key) {
            return Ok(());
        }
        let why = if has_record {
            "differs from what the trail recorded when it was created or its role last changed"
        } else {
            "has no record on the trail (never created through the console)"
        };
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleAccountAltered,
            Severity::Alert,
            format!(
                "console: the account {} (role {}, created {}) {why}: the store was edited; the account is refused",
                row.name, row.role, row.created
            ),
        );
        let mut event = Event::of_finding(self.actor(&row.name), finding);
        event.action = Action::Account;
        self.record(event)
    }
}
