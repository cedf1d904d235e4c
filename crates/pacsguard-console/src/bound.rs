//! What the console keeps in the store and relies on, bound to the audit trail: each
//! account (name, role, creation time, creator) and each request waiting for a second
//! approver. Root can edit the store with sqlite3; the trail is append-only, signed and
//! verified. So the trail records a digest of each account when it is created and when
//! its role changes (`Event::account_digest`), and of each request when it is asked
//! (`Event::request_digest`); the console checks the store's rows against them.
//!
//! The digests are read from the trail once per process, at start ([`Console::bind_to_trail`],
//! or at the first check when nothing called it), from the whole verification of the
//! trail that `audit verify` does: the records naming them are gathered from that very
//! pass (`pacsguard_audit::Gather`), and only those the verification proves bind (under a
//! signed root it reproduces, or after the newest checkpoint with this home's MAC). A
//! record naming a binding that is not proven (a line forged or edited in place, or after
//! one) binds nothing and is named in one `console-binding-unproven` alert. Afterwards the
//! console keeps the digests in memory and updates them as it records new ones, so a row
//! edited in the store while the console runs is refused at once, and a row edited
//! together with its trail record too; a waiting request this process does not hold (bound
//! at start or asked since) has no proven record and is refused (the trail is never read
//! back unverified for it).
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
//! Only on a trail proven whole with no unproven binding record: otherwise (account
//! records edited out of the proof) every account is refused, never bound on trust.

use std::collections::{HashMap, HashSet};

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::AccountBinding;

use crate::auth::{AuthError, Console, lock};

/// The digest the trail records of an account: every field the console relies on to
/// say who a person is, what they may do and what signs them in (password hash, TOTP
/// secret, each passkey's credential id and public key, the recovery codes' hashes, and
/// for the emergency account its seal), and the links four eyes follows to tell two
/// people from one (when its creator created it, who changed its role and when). The
/// trail records `<id>:<this digest>` at its creation and at every change of any of them.
pub fn account_digest(account: &AccountBinding) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console account v3\0");
    account_fields(&mut hash, account);
    credential_fields(&mut hash, &account.credentials);
    match account.origin_at {
        Some(at) => {
            hash.update([1]);
            hash.update(at.to_le_bytes());
        }
        None => hash.update([0]),
    }
    hash.update((account.role_grants.len() as u64).to_le_bytes());
    for (by, at) in &account.role_grants {
        hash.update(by.to_le_bytes());
        hash.update(at.to_le_bytes());
    }
    match &account.credentials.seal {
        Some(seal) => {
            hash.update([1]);
            bytes_field(&mut hash, &seal.secret_hash);
            hash.update(seal.sealed_at.to_le_bytes());
            bytes_field(&mut hash, seal.sealed_by.as_bytes());
            hash.update(seal.broken_at.unwrap_or(-1).to_le_bytes());
        }
        None => hash.update([0]),
    }
    // Disabled (issue 13, session 24): appended only to a disabled account's digest, so
    // every enabled account's digest is what earlier versions recorded (no rebinding).
    if let Some((since, by)) = account.disabled {
        hash.update(b"disabled\0");
        hash.update(since.to_le_bytes());
        hash.update(by.to_le_bytes());
    }
    // A waiting password reset (review r27-console): appended only while one waits, so
    // every other account's digest is what earlier versions recorded.
    if let Some((by, since)) = account.reset {
        hash.update(b"reset\0");
        hash.update(by.to_le_bytes());
        hash.update(since.to_le_bytes());
    }
    hex(&hash.finalize())
}

/// The digest versions before review r27-console recorded of an account with a waiting
/// reset (its note unbound): matched only at start, to bind the note once. `None` for
/// an account without a note (never compared then: an account with no record at all
/// must not match it).
fn account_digest_before_reset_notes(account: &AccountBinding) -> Option<String> {
    account.reset.map(|_| {
        account_digest(&AccountBinding {
            reset: None,
            ..account.clone()
        })
    })
}

/// The digest session 10 recorded (credentials, no four-eyes links, no seal): matched
/// only at start, to bind the rest once (see [`Console::bind_to_trail`]).
fn account_digest_v2(account: &AccountBinding) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console account v2\0");
    account_fields(&mut hash, account);
    credential_fields(&mut hash, &account.credentials);
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bytes_field(hash: &mut sha2::Sha256, bytes: &[u8]) {
    use sha2::Digest as _;
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

fn credential_fields(hash: &mut sha2::Sha256, credentials: &pacsguard_store::Credentials) {
    use sha2::Digest as _;
    bytes_field(hash, credentials.password_hash.as_bytes());
    match &credentials.totp_secret {
        Some(secret) => {
            hash.update([1]);
            bytes_field(hash, secret);
        }
        None => hash.update([0]),
    }
    hash.update((credentials.passkeys.len() as u64).to_le_bytes());
    for (id, key) in &credentials.passkeys {
        bytes_field(hash, id);
        bytes_field(hash, key);
    }
    hash.update((credentials.recovery_hashes.len() as u64).to_le_bytes());
    for code in &credentials.recovery_hashes {
        bytes_field(hash, code);
    }
}

/// The digest sessions 8 and 9 recorded (no credentials): matched only at start, on a
/// trail whose newest record of the account is of that version, to bind its credentials
/// once (see [`Console::bind_to_trail`]).
fn account_digest_v1(account: &AccountBinding) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console account v1\0");
    account_fields(&mut hash, account);
    hex(&hash.finalize())
}

/// What the trail binds of account `id` as the store holds it now, the emergency
/// account's seal with it (its only credential).
pub(crate) fn binding_of(
    db: &pacsguard_store::ConsoleDb,
    id: i64,
) -> Result<Option<AccountBinding>, AuthError> {
    let Some(mut row) = db.account_binding(id)? else {
        return Ok(None);
    };
    attach_seal(db, &mut row)?;
    Ok(Some(row))
}

fn attach_seal(db: &pacsguard_store::ConsoleDb, row: &mut AccountBinding) -> Result<(), AuthError> {
    if row.name == crate::breakglass::BREAK_GLASS_ACCOUNT {
        row.credentials.seal = db.seal_binding()?;
    }
    Ok(())
}

fn account_fields(hash: &mut sha2::Sha256, account: &AccountBinding) {
    use sha2::Digest as _;
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
    hex(&hash.finalize())
}

/// The accounts' digests as the trail holds them, and the alerts already raised.
#[derive(Debug, Default)]
pub(crate) struct Bindings {
    /// `None` until read from the trail.
    accounts: Option<HashMap<i64, String>>,
    /// (account, digest of the row found) already reported: one alert per alteration,
    /// not one per request.
    alerted: HashSet<(i64, String)>,
    /// The enrolment links the trail binds, by account: its digest, or
    /// [`crate::invitations::INVITATION_CLOSED`] once spent ([`crate::invitations`]).
    pub(crate) invitations: HashMap<i64, String>,
    /// The digests of the sessions this console opened or found recorded at start (only
    /// those still in the store: pruned when expired sessions are purged), by their
    /// token's digest: the end of a session is recorded for the opening held here, not
    /// for the digest of its row as the store holds it at the end (review s11-r13: a row
    /// whose `created` was edited before the purge had the end of a session that never
    /// was recorded, and the real one, put back, was kept at the next start).
    sessions: HashMap<Vec<u8>, String>,
    /// The fleet's settings as this console's trail last recorded them (`setting_digest`:
    /// name to value), read at start and kept as the console records new ones
    /// ([`crate::fleet_settings`]).
    pub(crate) settings: HashMap<String, String>,
    /// The setting's stored state last raised as `console-setting-altered`: one alert
    /// per state found, not one per read.
    pub(crate) setting_alerted: Option<String>,
    /// The approvals of host profiles this console's trail records (`approval_digest`:
    /// `<host>/<generation>/<digest>` to the approval's time), read at start from the
    /// proven records and kept as the console records new ones: the fleet listener signs
    /// only these ([`crate::host_approvals`], session 22).
    /// Kept per host name, each profile (generation, digest) to its newest approval's
    /// time: an approval superseded on the trail itself (a later approval of another
    /// profile of that host, review r23) is not signed, whatever the store says; nor is
    /// one the host left for another profile this trail recorded it reporting
    /// (`approval_superseded`, review r24).
    pub(crate) approvals: HashMap<String, crate::host_approvals::HostApprovals>,
    /// The approvals (`<host>/<generation>/<digest>`) this console's trail records raised
    /// as `host-approval-unproven` and not approved here since (`approval_unproven`):
    /// not raised again, also after a restart (review r24). At most
    /// [`crate::host_approvals::MAX_UNPROVEN_REMEMBERED`].
    pub(crate) unproven_raised: HashSet<String>,
    /// The certificates (SHA-256, hex) of the hosts this console's trail records revoked
    /// (`host_revoked`, review r24): refused whatever the fleet's store says. At most
    /// [`crate::host_revocations::MAX_REVOCATIONS_KEPT`].
    pub(crate) revoked_hosts: HashSet<String>,
    /// The acknowledgements of hosts' standing refusals this console's proven trail
    /// records (`host_acknowledged`, issue 14: `<certificate>:<refusal digest>`). At most
    /// [`crate::host_acknowledgements::MAX_ACKNOWLEDGEMENTS_KEPT`].
    pub(crate) acknowledged_hosts: HashSet<String>,
}

impl Bindings {
    /// The account's row as its newest record binds it (`digest`).
    pub(crate) fn bind_account(&mut self, account: i64, digest: String) {
        self.accounts
            .get_or_insert_with(HashMap::new)
            .insert(account, digest);
    }

    /// A session ended: it is no longer one this console opened. Its opening, when this
    /// console held it.
    pub(crate) fn forget_session(&mut self, token_hash: &[u8]) -> Option<String> {
        self.sessions.remove(token_hash)
    }

    /// The opening this console holds for the session of `token_hash`.
    pub(crate) fn opening_of(&self, token_hash: &[u8]) -> Option<String> {
        self.sessions.get(token_hash).cloned()
    }
}

/// What [`Console::bind_to_trail`] found, for the start-up line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindReport {
    /// Per root (as shown): the undone findings dropped and not acknowledged that the
    /// last stop recorded, counted again ([`crate::dropped_trail`]).
    pub dropped_restored: std::collections::BTreeMap<String, crate::guard::Unseen>,
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
    /// Sessions ended at start: the trail records their end (signed out, expired,
    /// revoked), so their rows were put back in the store.
    pub closed_sessions: usize,
    /// Sessions ended at start because the trail is not proven whole (the record of
    /// their end may be among what is not proven) or records no end of any session (a
    /// trail of a version that did not record them).
    pub sessions_ended_unproven: usize,
    /// Ends of sessions noted in the store but not on the trail (the process stopped
    /// after a session ended, before its record was written), recorded at this start.
    pub session_ends_recorded: usize,
    /// Sessions ended at start because their row has no seal (the version before
    /// sessions were sealed); after the start, a row with no seal is an edit.
    pub unsealed_sessions: usize,
    /// Step-ups forgotten at start because they have no seal (the same for them).
    pub unsealed_step_ups: usize,
    /// Enrolment links kept: as the trail recorded them.
    pub invitations: usize,
    /// Enrolment links removed at start: not as the trail recorded them.
    pub altered_invitations: Vec<i64>,
    /// Records naming a binding that the trail's verification did not prove: their
    /// positions (`record N (byte B)`). Nothing was bound from them.
    pub unproven: Vec<String>,
    /// Accounts whose credentials were bound now: their newest record is of a version
    /// that did not bind credentials (a warning names them).
    pub credentials_first_bound: Vec<String>,
    /// Accounts refused because the trail holds no proven account record and is not
    /// proven whole (no trust on first use then).
    pub refused_unbound: Vec<String>,
    /// Ids of accounts the trail records that the store no longer holds (the console
    /// never deletes an account: the store was edited; an alert names them).
    pub missing_accounts: Vec<i64>,
}

/// The fields of a trail record that bind the console's store: the one list, kept
/// beside the record's fields ([`pacsguard_events::CONSOLE_BINDING_FIELDS`]).
pub use pacsguard_events::CONSOLE_BINDING_FIELDS as BINDING_FIELDS;

/// The sessions the trail says were opened, and those it says were closed.
#[derive(Debug, Default)]
struct SessionRecords {
    opened: HashSet<String>,
    closed: HashSet<String>,
}

impl SessionRecords {
    /// One record: its opening counts only when `proven`; its closure always.
    fn read(&mut self, record: &serde_json::Value, proven: bool) {
        let Some(digest) = record
            .get("session_digest")
            .and_then(serde_json::Value::as_str)
        else {
            return;
        };
        match digest.split_once(':') {
            Some((opening, crate::closing::SESSION_CLOSED)) => {
                self.closed.insert(opening.to_string());
            }
            Some(_) => {}
            None if proven => {
                self.opened.insert(digest.to_string());
            }
            None => {}
        }
    }
}

/// Positions of unproven records named in the alert at most; the alert gives the count
/// of the others (an attacker may append as many as they like).
pub const MAX_UNPROVEN_NAMED: usize = 20;

/// The newest `<id>:<digest>` of each id in `field` of `records` (oldest first).
fn newest(records: &[serde_json::Value], field: &str) -> HashMap<i64, String> {
    newest_records(records, field)
        .into_iter()
        .map(|(id, (digest, _))| (id, digest))
        .collect()
}

/// [`newest`] with the record that names each digest.
fn newest_records<'r>(
    records: &'r [serde_json::Value],
    field: &str,
) -> HashMap<i64, (String, &'r serde_json::Value)> {
    let mut found = HashMap::new();
    for record in records {
        let Some((id, digest)) = record
            .get(field)
            .and_then(serde_json::Value::as_str)
            .and_then(|d| d.split_once(':'))
        else {
            continue;
        };
        if let Some(id) = canonical_id(id) {
            found.insert(id, (digest.to_string(), record));
        }
    }
    found
}

/// How far a waiting reset's note (`since`) may be from the time of the trail's record
/// of that reset: both are taken as the reset is done, under one hold of the store.
pub const RESET_NOTE_SLACK_SECONDS: i64 = 60;

/// Whether `record`, the binding record a version before review r27 wrote of an
/// account at its password reset (the account's digest without the reset's note), is
/// the record of the very reset the store's note describes: it says the reset was by
/// the account the note names (`by_name`, `None` for an account the store no longer
/// holds), and it was recorded within [`RESET_NOTE_SLACK_SECONDS`] of the note's
/// `since`. The note is bound on trust only then (review r28-console: its `since` was
/// bound as the store said, so a time edited across the upgrade was kept).
fn reset_note_recorded(record: &serde_json::Value, since: i64, by_name: Option<&str>) -> bool {
    let Some(by_name) = by_name else {
        return false;
    };
    let by_the_noted_person = record
        .get("detail")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|detail| detail.ends_with(&format!("its password reset by {by_name}")));
    let recorded_at = record
        .get("time")
        .and_then(serde_json::Value::as_str)
        .and_then(|time| humantime::parse_rfc3339_weak(time).ok())
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok());
    by_the_noted_person
        && recorded_at.is_some_and(|at| (at - since).abs() <= RESET_NOTE_SLACK_SECONDS)
}

/// The id of a binding record (`<id>:<digest>`) as the console writes it: the decimal
/// form of an `i64`, nothing else. `+5`, `05` or ` 5` would parse as 5 and bind account
/// 5 from a record whose id the trail's gathering keeps apart from `5` (the newest of
/// each is kept): refused, so one account has one id on the trail.
pub(crate) fn canonical_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|id| id.to_string() == text)
}

impl Console {
    /// Reads the trail's account, session and request records, as a whole verification
    /// of the trail proves them, and checks the store against them (see the module's
    /// documentation). Called by `serve` before it listens (through
    /// [`Console::bind_to_trail_from`], with the records of its own start verification);
    /// the first check does it otherwise.
    pub fn bind_to_trail(&self) -> Result<BindReport, AuthError> {
        let bindings = match &self.guardian {
            Some(guardian) => guardian
                .bound_records()
                .map_err(|e| AuthError::Internal(format!("reading the trail: {e}")))?,
            None => crate::decide::TrailBindings {
                whole: true,
                ..Default::default()
            },
        };
        self.bind_to_trail_from(bindings)
    }

    /// [`Console::bind_to_trail`] with the records a verification gathered: only the
    /// proven ones bind; each unproven one naming a binding is named in one
    /// `console-binding-unproven` alert, and nothing is bound from it.
    pub fn bind_to_trail_from(
        &self,
        bindings: crate::decide::TrailBindings,
    ) -> Result<BindReport, AuthError> {
        let mut report = BindReport::default();
        self.alert_unproven(&bindings, &mut report)?;
        if bindings.superseded > 0 {
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleBindingsSuperseded,
                Severity::Warning,
                format!(
                    "console: more than {} trail records name accounts, sessions, requests and enrolment links: the newest of each was bound and {} older record(s) of the same ones let go at the limit (a flood of sign-ins, or years of them: consider `pacsguard audit reinit` after keeping this trail)",
                    bindings.records.len() + bindings.unproven.len(),
                    bindings.superseded
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = Action::Account;
            self.record(event)?;
        }
        let records = &bindings.records;
        // Trust on first use only on a trail proven whole with no unproven binding on it:
        // otherwise the account records may be there, forged or edited out of the proof.
        let may_trust = bindings.whole && bindings.unproven.is_empty();
        self.bind_accounts(
            &newest_records(records, "account_digest"),
            may_trust,
            &mut report,
        )?;
        self.bind_requests(&newest(records, "request_digest"), &mut report)?;
        let mut sessions = SessionRecords::default();
        for record in records {
            sessions.read(record, true);
        }
        // A closure on a record the verification did not prove still closes: it can only
        // take access away, and proving it must not be the way to bring a session back.
        for (_, record) in &bindings.unproven {
            sessions.read(record, false);
        }
        // Ends noted in the store whose record the trail lacks (the process stopped in
        // between) are recorded now, and close their sessions like recorded ones.
        report.session_ends_recorded = self.record_session_ends(&sessions.closed)?;
        for end in lock(&self.db)?.session_ends()? {
            sessions.closed.insert(end.opening);
        }
        self.bind_sessions(&sessions, may_trust, bindings.whole, &mut report)?;
        // Seals required since an earlier start: said on the trail (a record proven or
        // not: it can only make an unsealed row an alert, never let one pass).
        let seals_on_trail = records
            .iter()
            .chain(bindings.unproven.iter().map(|(_, record)| record))
            .any(|r| {
                r.get("session_digest").and_then(serde_json::Value::as_str)
                    == Some(crate::session_seal::SEALS_REQUIRED)
            });
        (report.unsealed_sessions, report.unsealed_step_ups) =
            self.end_unsealed_at_start(seals_on_trail)?;
        self.bind_invitations(records, &bindings.unproven, may_trust, &mut report)?;
        // The proven records bind; an unproven one only when it makes a setting stricter
        // (it can only ask a second person, never let one decide alone).
        self.bind_settings(records, &bindings.unproven)?;
        // Only proven records bind an approval: an unproven one could only make the
        // listener sign what no approver approved. A report superseding approvals binds
        // from any (it only takes one out of effect).
        self.bind_approvals(records, &bindings.unproven)?;
        // A revocation binds from any record: it only takes access away.
        self.bind_revocations(records, &bindings.unproven)?;
        // Only proven records bind an acknowledgement: it changes what the pages show.
        self.bind_acknowledgements(records)?;
        // The undone findings dropped and not acknowledged at the last stop: counted
        // again from the proven records; what is not read back whole is said.
        report.dropped_restored = self.bind_dropped(&bindings)?;
        Ok(report)
    }

    /// One alert naming the records that would have bound something but that the trail's
    /// verification did not prove (at most [`MAX_UNPROVEN_NAMED`] of them by position).
    fn alert_unproven(
        &self,
        bindings: &crate::decide::TrailBindings,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        if bindings.unproven.is_empty() {
            if bindings.whole {
                return Ok(());
            }
            // Not proven whole, and no unproven line names a binding: a line may still
            // have held one (its field name edited away), so a newer record of an
            // account may be hidden and an older, proven one bind in its place. Said,
            // with where the proof ends; what binds is the proven records.
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleBindingUnproven,
                Severity::Alert,
                format!(
                    "console: the audit trail is not proven whole at this start ({}): the accounts, sessions and requests were bound from the proven records only, and a newer record of one of them may be among the unproven ones (edited so it no longer names its binding); run `pacsguard audit verify`, keep the trail as evidence and check each account and its role",
                    bindings
                        .problem
                        .as_deref()
                        .unwrap_or("its verification found a problem")
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = Action::Account;
            return self.record(event);
        }
        report.unproven = bindings.unproven.iter().map(|(p, _)| p.clone()).collect();
        let named: Vec<String> = bindings
            .unproven
            .iter()
            .take(MAX_UNPROVEN_NAMED)
            .map(|(position, record)| {
                let what = BINDING_FIELDS
                    .iter()
                    .filter(|f| record.get(**f).is_some())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("+");
                format!("{position} ({what})")
            })
            .collect();
        let more = bindings.unproven.len().saturating_sub(named.len());
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleBindingUnproven,
            Severity::Alert,
            format!(
                "console: {} record(s) of the audit trail name an account, session or request but are not proven by the trail's verification ({}{}){}: nothing was bound from them (forged or edited lines); run `pacsguard audit verify` and keep the trail as evidence",
                bindings.unproven.len(),
                named.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                },
                bindings
                    .problem
                    .as_ref()
                    .map(|p| format!("; the verification found: {p}"))
                    .unwrap_or_default()
            ),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Account;
        self.record(event)
    }

    /// Each session in the store checked against the records of the sessions opened and
    /// closed: kept in memory when its opening is recorded and its end is not, ended
    /// otherwise. On a trail not proven whole every session ends: the record of an end
    /// may be among what is not proven (a line deleted or edited before it).
    fn bind_sessions(
        &self,
        records: &SessionRecords,
        may_trust: bool,
        whole: bool,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let rows = lock(&self.db)?.live_sessions(None)?;
        // Openings but no end at all on the trail: written by a version that did not
        // record ends (every console of this one records one at its first enrolment), so
        // a session signed out then and put back cannot be told from a live one: each
        // ends once, at this start.
        let ends_unrecorded = records.closed.is_empty() && !records.opened.is_empty();
        let mut kept = HashMap::new();
        let (mut unrecorded, mut closed, mut unproven) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let digest = session_digest(&row.token_hash, row.account, row.created);
            if records.closed.contains(&digest) {
                closed.push(row);
            } else if !records.opened.contains(&digest) {
                unrecorded.push(row);
            } else if !whole || ends_unrecorded {
                unproven.push(row);
            } else {
                kept.insert(row.token_hash.clone(), digest);
            }
        }
        report.sessions = kept.len();
        report.unrecorded_sessions = unrecorded.len();
        report.closed_sessions = closed.len();
        report.sessions_ended_unproven = unproven.len();
        lock(&self.bindings)?.sessions = kept;
        {
            let db = lock(&self.db)?;
            for row in &closed {
                db.delete_session(&row.token_hash)?;
            }
            // Each end recorded, as every other end is (review s11-r13): deleted with no
            // record, a row put back later was kept at the first start whose trail was
            // whole and held any end (its opening proven, its end nowhere). A session
            // with no proven opening on a trail not proven whole may have its opening
            // among the unproven records: its end is recorded too.
            for row in unproven.iter().chain(unrecorded.iter().filter(|_| !whole)) {
                let event = self.session_end_event(
                    &row.name,
                    format!(
                        "a session of {} (signed in at {}) ended at start: {}",
                        row.name,
                        crate::pages::unix_time(row.created),
                        if whole {
                            "the trail records no end of any session"
                        } else {
                            "the audit trail is not proven whole"
                        }
                    ),
                );
                self.close_session(&db, &row.token_hash, row.account, row.created, event)?;
            }
            for row in unrecorded.iter().filter(|_| whole) {
                db.delete_session(&row.token_hash)?;
            }
        }
        let names = |rows: &[pacsguard_store::LiveSession]| {
            rows.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !closed.is_empty() {
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleSessionAltered,
                Severity::Alert,
                format!(
                    "console: {} session(s) in the store were ended on the audit trail (signed out, expired or revoked) and put back in the store for {}: the store was edited while the console was stopped; they were ended at start",
                    closed.len(),
                    names(&closed)
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = Action::Logout;
            self.record(event)?;
        }
        if !unproven.is_empty() {
            self.record(self.event(
                "sessions",
                Action::Logout,
                Outcome::Success,
                format!(
                    "{} session(s) ended at start for {}: {}; sign in again",
                    unproven.len(),
                    names(&unproven),
                    if whole {
                        "the trail records no end of any session (written by a version that did not), so one signed out then and put back could not be told from a live one"
                    } else {
                        "the audit trail is not proven whole (see the alert), so the record of their end may be among what is not proven"
                    }
                ),
            ))?;
        }
        if unrecorded.is_empty() {
            return Ok(());
        }
        let ended = unrecorded;
        let names: Vec<&str> = ended.iter().map(|r| r.name.as_str()).collect();
        if records.opened.is_empty() && may_trust {
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

    /// The record of a session's opening: `opening` (the sign-in, step-up or emergency
    /// record that opens it) or, when `None`, a record of its own, carrying the session's
    /// digest; and the digest, which the caller keeps ([`Console::keep_session`]) as it
    /// writes the row, then queues the record in the room it kept for it.
    pub(crate) fn session_opening(
        &self,
        token_hash: &[u8],
        account: i64,
        created: i64,
        opening: Option<Event>,
    ) -> Result<(Event, String), AuthError> {
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
        Ok((event, digest))
    }

    /// Keeps a session's digest for the checks. The caller holds the store's lock (and
    /// writes the row under it), so a purge's pruning never sees the digest without its row.
    pub(crate) fn keep_session(&self, token_hash: &[u8], digest: String) -> Result<(), AuthError> {
        lock(&self.bindings)?
            .sessions
            .insert(token_hash.to_vec(), digest);
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
        let held = lock(&self.bindings)?.opening_of(token_hash);
        if held.as_deref() == Some(digest.as_str()) {
            return Ok(true);
        }
        // Room for the alert first, then the end written, then the session forgotten
        // and the alert saying what was done (review r29-console2): forgotten in memory
        // first, a store that refused the end (a full disk) failed the request with no
        // alert and left the row, whose next request, its opening forgotten, deleted it
        // with no end of the real session on the trail. The session is refused either way.
        let room = self.room_for_record()?;
        // A row this console opened, edited since (its account or opening time): the
        // real session ends on the trail with the alert below. Its end is noted with the
        // deletion, in one transaction ([`crate::closing`]), before its record is queued.
        let ended = match &held {
            Some(opening) => db
                .end_session(&pacsguard_store::SessionEnd {
                    token_hash: token_hash.to_vec(),
                    opening: opening.clone(),
                    account: session.account,
                    ended: self.now(),
                    detail: format!(
                        "the session of {name} ended: its row was edited in the store (see the alert)"
                    ),
                    malformed: Vec::new(),
                })
                .map(drop),
            None => db.delete_session(token_hash).map(drop),
        };
        let outcome = match &ended {
            Ok(()) => "the session was ended and refused".to_string(),
            Err(e) => format!(
                "the session was refused and could not be ended ({e}): it is refused at each request"
            ),
        };
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleSessionAltered,
            Severity::Alert,
            format!(
                "console: a session of {name} presented to the console was never opened by it or was ended (no record of its opening on the trail, its end recorded and its row put back, or its account or opening time edited): the store was edited; {outcome}"
            ),
        );
        let mut event = Event::of_finding(self.actor(name), finding);
        event.action = Action::Login;
        event.outcome = Outcome::Failure;
        if ended.is_ok() {
            lock(&self.bindings)?.forget_session(token_hash);
            event.session_digest =
                held.map(|opening| crate::closing::closed_session_digest(&opening));
            crate::held::record_in(room, event)?;
        } else {
            // Refused again at each request: alerted at most once per interval, the
            // rest counted (review r30-console).
            self.alert_undo_refused(
                crate::undo_refused::UndoRefused::Session,
                &crate::secret::hex(token_hash),
                room,
                event,
            )?;
        }
        Ok(false)
    }

    /// Forgets the digests of sessions no longer in the store (after a purge).
    /// The store's lock is held throughout: a session being opened is kept and written
    /// under it, so its digest is never pruned before its row exists.
    pub(crate) fn prune_sessions(&self) -> Result<(), AuthError> {
        let db = lock(&self.db)?;
        let live: HashSet<Vec<u8>> = db
            .live_sessions(None)?
            .into_iter()
            .map(|r| r.token_hash)
            .collect();
        lock(&self.bindings)?
            .sessions
            .retain(|token_hash, _| live.contains(token_hash));
        drop(db);
        Ok(())
    }

    fn bind_accounts(
        &self,
        records: &HashMap<i64, (String, &serde_json::Value)>,
        may_trust: bool,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let recorded: HashMap<i64, String> = records
            .iter()
            .map(|(id, (digest, _))| (*id, digest.clone()))
            .collect();
        let recorded = &recorded;
        let rows = {
            let db = lock(&self.db)?;
            let mut rows = db.account_bindings()?;
            for row in &mut rows {
                attach_seal(&db, row)?;
            }
            rows
        };
        let rows_present: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        let names: HashMap<i64, String> = rows.iter().map(|r| (r.id, r.name.clone())).collect();
        // A reset noted by a version that did not bind the note, as the trail recorded it.
        let reset_recorded_before_notes = |row: &AccountBinding| {
            let Some((by, since)) = row.reset else {
                return false;
            };
            account_digest_before_reset_notes(row).is_some_and(|digest| {
                records.get(&row.id).is_some_and(|(recorded, record)| {
                    *recorded == digest
                        && reset_note_recorded(record, since, names.get(&by).map(String::as_str))
                })
            })
        };
        let first_start = recorded.is_empty() && may_trust;
        lock(&self.bindings)?.accounts = Some(recorded.clone());
        if first_start && !rows.is_empty() {
            self.warn_bound_on_trust(&rows)?;
        }
        for row in rows {
            if recorded.is_empty() && !may_trust {
                // No proven account record on a trail not proven whole: each account is
                // refused (an alert each), never bound on trust.
                self.account_altered(&row, false)?;
                report.refused_unbound.push(row.name.clone());
                report.altered_accounts.push(row.name.clone());
            } else if first_start {
                self.record_binding(&row, "bound to the trail at the first start of a console that binds accounts (trust on first use)")?;
                report.first_bound += 1;
            } else if recorded.get(&row.id) == Some(&account_digest(&row)) {
                report.accounts += 1;
            } else if recorded.get(&row.id) == Some(&account_digest_v1(&row))
                || recorded.get(&row.id) == Some(&account_digest_v2(&row))
                || reset_recorded_before_notes(&row)
            {
                // Recorded by a version that bound less (v1: no credentials; v2: no
                // four-eyes links, no seal; before r27: no reset note): what it bound is
                // as recorded; the rest is bound now, on trust, and said so (a warning
                // naming it). A reset started before stays cancellable.
                self.record_binding(&row, "its credentials, four-eyes links, seal and waiting password reset bound to the trail at the first start of a version that binds them (trust on first use)")?;
                report.credentials_first_bound.push(row.name.clone());
                report.accounts += 1;
            } else {
                self.account_altered(&row, recorded.get(&row.id).is_some())?;
                report.altered_accounts.push(row.name.clone());
            }
        }
        self.alert_missing(recorded, &rows_present, report)?;
        if !report.credentials_first_bound.is_empty() {
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleAccountsBoundOnTrust,
                Severity::Warning,
                format!(
                    "console: the credentials (password hash, second factors, recovery codes, the emergency seal) or the four-eyes links (who created the account or changed its role, and when) of {} account(s) were bound to the trail on trust at the first start of a version that binds them: {}. A credential or link replaced in the store while the console was stopped before this start would be among them: have each person sign in, and check who created each account and changed its role",
                    report.credentials_first_bound.len(),
                    report.credentials_first_bound.join(", ")
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = Action::Account;
            self.record(event)?;
        }
        Ok(())
    }

    /// Accounts the trail records that the store no longer holds: the console never
    /// deletes one, so the store was edited (emptied, the next start would print a setup
    /// link for a new first administrator). One alert naming them (review s10-r13).
    fn alert_missing(
        &self,
        recorded: &HashMap<i64, String>,
        present: &HashSet<i64>,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let mut missing: Vec<i64> = recorded
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleAccountAltered,
            Severity::Alert,
            format!(
                "console: {} account(s) recorded on the audit trail are missing from the store (ids {}): the console never deletes an account, so the store was edited{}; keep the store and the trail as evidence",
                missing.len(),
                missing
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if present.is_empty() {
                    " (no account is left: a setup link for a new first administrator follows)"
                } else {
                    ""
                }
            ),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Account;
        self.record(event)?;
        report.missing_accounts = missing;
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
        // The requests the trail says are closed: a row put back in the store while the
        // console runs is refused as closed (the trail is not read again for it).
        for (id, digest) in recorded {
            if digest == crate::decide::REQUEST_CLOSED
                && let Ok(id) = u64::try_from(*id)
            {
                lock(&self.asked)?.insert(id, digest.clone());
            }
        }
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
            lock(&self.asked)?.insert(id, crate::decide::REQUEST_CLOSED.to_string());
            lock(&self.db)?.remove_pending_accept(row.id)?;
            report.altered_requests.push(row.id);
        }
        Ok(())
    }

    /// After a change of `account` (its role, credentials, seal or four-eyes links) made
    /// under `db`'s lock, which the caller still holds: the record carrying the new
    /// digest is queued for the trail under that same lock, and the binding kept in
    /// memory moves with it. Two changes of one account are so recorded in the order
    /// their writes were made: queued after the lock was released, a change made second
    /// could be recorded first, and the trail's newest record of the account then named
    /// the older row (the next start refused the account). The caller called
    /// [`Console::ensure_bound`] before taking the lock. Should the record not reach the
    /// trail (the process killed in between), the next start refuses the account (fail
    /// closed, with the alert).
    pub(crate) fn rebind_under(
        &self,
        db: &pacsguard_store::ConsoleDb,
        account: i64,
        why: &str,
    ) -> Result<(), AuthError> {
        let row = binding_of(db, account)?.ok_or_else(|| {
            AuthError::Internal(format!("account {account} vanished from the store"))
        })?;
        self.record_binding(&row, why)
    }

    fn binding_event(&self, row: &AccountBinding, why: &str) -> (Event, String) {
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
        (event, digest)
    }

    fn record_binding(&self, row: &AccountBinding, why: &str) -> Result<(), AuthError> {
        let (event, digest) = self.binding_event(row, why);
        // Inside a hold, both wait for its commit ([`crate::held`]): rolled back, the
        // binding in memory stays on the row the store keeps.
        self.record(event)?;
        self.change_when_committed(crate::held::MemoryChange::AccountBound {
            account: row.id,
            digest,
        })
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
        let Some(row) = binding_of(db, account)? else {
            return Ok(false);
        };
        self.binding_as_recorded(&row)
    }

    /// [`Console::account_as_recorded`] for the row a sign-in or step-up verified
    /// (`account`, read before the password's or the code's check): its name, role,
    /// password hash and TOTP secret, not a second read of the store, are what must be as
    /// recorded. Checking a second read let an intruder who writes the store put their
    /// own hash and secret in the row, sign in, and put the original back while the
    /// password was being verified (review s10-r13).
    pub(crate) fn account_read_as_recorded(
        &self,
        db: &pacsguard_store::ConsoleDb,
        account: &pacsguard_store::AccountRow,
    ) -> Result<bool, AuthError> {
        let Some(row) = binding_of(db, account.id)? else {
            return Ok(false);
        };
        let as_read = AccountBinding {
            name: account.name.clone(),
            role: account.role.clone(),
            credentials: pacsguard_store::Credentials {
                password_hash: account.password_hash.clone(),
                totp_secret: account.totp_secret.clone(),
                ..row.credentials.clone()
            },
            ..row
        };
        self.binding_as_recorded(&as_read)
    }

    /// Refuses a change of `account`'s credentials whose row, under the caller's lock on
    /// `db`, is not as the trail recorded it: the change's record would otherwise bind the
    /// edited row (a role raised with sqlite3 between the request's check and this
    /// write) as legitimate. The account's alert is recorded, and a failure saying `what`
    /// was not done after all (its success may be on the trail already).
    pub(crate) fn unaltered_before_change(
        &self,
        db: &pacsguard_store::ConsoleDb,
        account: i64,
        name: &str,
        what: &str,
    ) -> Result<(), AuthError> {
        if self.account_as_recorded(db, account)? {
            return Ok(());
        }
        Err(self.refused_with(
            self.event(
                name,
                Action::Account,
                Outcome::Failure,
                format!(
                    "{name}: {what} was not done after all: the account is not as the audit trail recorded it (the store was edited; see the alert)"
                ),
            ),
            AuthError::Invalid(
                "this account is not as the audit trail recorded it (the store was edited): nothing was changed, and the security team was alerted".into(),
            ),
        ))
    }

    /// Whether `row` (as a caller read and completed it) is as the trail recorded it;
    /// when not, the alert is recorded (once) and the caller refuses the account.
    pub(crate) fn binding_checked(&self, row: &AccountBinding) -> Result<bool, AuthError> {
        self.binding_as_recorded(row)
    }

    fn binding_as_recorded(&self, row: &AccountBinding) -> Result<bool, AuthError> {
        let recorded = lock(&self.bindings)?
            .accounts
            .as_ref()
            .and_then(|a| a.get(&row.id).cloned());
        if recorded.as_deref() == Some(account_digest(row).as_str()) {
            return Ok(true);
        }
        self.account_altered(row, recorded.is_some())?;
        Ok(false)
    }

    /// The alert for an account not as recorded (once per account and row, marked as it
    /// is taken and unmarked if the trail refuses it).
    fn account_altered(&self, row: &AccountBinding, has_record: bool) -> Result<(), AuthError> {
        let key = (row.id, account_digest(row));
        // Taken in one step (review r30-console2): looked up, then marked once queued,
        // sign-ins of the account at once (the check runs outside the store's lock) each
        // raised it.
        if !lock(&self.bindings)?.alerted.insert(key.clone()) {
            return Ok(());
        }
        let why = if has_record {
            "differs from what the trail recorded when it was created or its role or credentials last changed (a password hash, second factor, recovery code or emergency seal replaced, or its name, role, origin or who changed its role and when edited)"
        } else {
            "has no proven record on the trail (never created through the console, or its record is not proven by the trail's verification)"
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
        // Marked alerted only once queued (review r30-console): marked first, a trail that
        // refused the alert (its inbox full, answered 503) left the row marked, so no later
        // request raised it and the edit never reached the trail.
        let said = self.record(event);
        if said.is_err() {
            lock(&self.bindings)?.alerted.remove(&key);
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, session 13: one account, one id on the trail.
    #[test]
    fn a_binding_id_is_read_only_in_its_canonical_form() {
        assert_eq!(canonical_id("5"), Some(5));
        assert_eq!(canonical_id("-1"), Some(-1));
        for other in [
            "+5",
            "05",
            " 5",
            "5 ",
            "",
            "5.0",
            "0x5",
            "99999999999999999999",
        ] {
            assert_eq!(canonical_id(other), None, "{other:?}");
        }
        let records = [
            serde_json::json!({"account_digest": "5:real"}),
            serde_json::json!({"account_digest": "+5:planted"}),
            serde_json::json!({"account_digest": 5}),
        ];
        assert_eq!(
            newest(&records, "account_digest"),
            HashMap::from([(5, "real".to_string())])
        );
    }
}
