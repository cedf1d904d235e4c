//! Decisions: what changes the guard's state or who may act, each made by an identified
//! person who has just confirmed the second factor again (step-up) and says why.
//!
//! * Step-up: a TOTP code (or a recovery code) checked again, throttled like a sign-in
//!   (the account's failures count, so codes cannot be guessed here either); it issues a
//!   new session token (no fixation) and counts for [`STEP_UP_WINDOW`].
//! * A decision (accept differences, change a role) needs a step-up within the window
//!   and a reason of 1 to [`MAX_REASON_BYTES`] bytes; the trail gets the step-up, then
//!   the decision with the person and the reason.
//! * Acceptance is done by the guard itself (the [`Guardian`] the CLI gives the console:
//!   the running watcher), so the watcher's view and the signed profile move together.

use std::net::IpAddr;
use std::path::PathBuf;

use pacsguard_events::{Action, Finding, FindingKind, Outcome, Severity};
use serde::Serialize;

use crate::auth::{AuthError, Authenticated, Console, NewSession, lock};
use crate::roles::Role;
use pacsguard_store::PendingAcceptRow;

/// How long a confirmed second factor counts for decisions (NIST SP 800-63B asks for
/// a fresh authentication for sensitive actions; 5 minutes, as the issue asks).
pub const STEP_UP_WINDOW: i64 = 5 * 60;
/// Longest reason for a decision: a sentence or a ticket, as the CLI's `--reason`.
pub const MAX_REASON_BYTES: usize = 4096;
/// Step-ups remembered (one per session, in the store); past this the oldest is
/// forgotten and its holder confirms again.
pub const MAX_STEP_UPS: usize = 1_000;

/// What an acceptance took into the signed profile.
#[derive(Clone, Debug, Serialize)]
pub struct Accepted {
    pub generation: u64,
    pub accepted: Vec<Finding>,
}

/// Why the guard accepted nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotAccepted {
    /// Refused for what was asked (a difference the person was not shown, nothing to
    /// accept, a root not profiled): shown to the person on the form.
    Refused(String),
    /// The guard could not write its store or its trail now (the home's disk full, its
    /// file system failing): nothing was accepted, and the same request may succeed
    /// later. Answered 503 "Not recorded" like every store the console cannot write
    /// (review r28-console: shown on the form as if the person could correct it).
    Unavailable(String),
}

impl From<String> for NotAccepted {
    fn from(reason: String) -> NotAccepted {
        NotAccepted::Refused(reason)
    }
}

impl From<&str> for NotAccepted {
    fn from(reason: &str) -> NotAccepted {
        NotAccepted::Refused(reason.to_string())
    }
}

impl From<NotAccepted> for AuthError {
    fn from(not: NotAccepted) -> AuthError {
        match not {
            NotAccepted::Refused(reason) => AuthError::Invalid(reason),
            NotAccepted::Unavailable(reason) => AuthError::Unavailable(reason),
        }
    }
}

/// The guard's hands, given to the console by the process that runs both.
pub trait Guardian: Send + Sync + std::fmt::Debug {
    /// Takes the differences under `paths` (every profiled root when empty) into the
    /// signed profile, recorded as done by `who` for `reason`, and only what the person
    /// was shown (`shown`): the guard, under its own turn, refuses when the findings it
    /// has open are not those shown, when a difference it finds is at another path, or
    /// when what it would sign is not the content it saw and reported. A refusal is
    /// shown to the person; a guard that cannot write its store or trail now says so
    /// apart ([`NotAccepted`]).
    fn accept(
        &self,
        who: &str,
        paths: Vec<PathBuf>,
        reason: &str,
        shown: ShownFindings,
    ) -> Result<Accepted, NotAccepted>;

    /// The newest `limit` records of the audit trail, newest first, as JSON objects.
    fn trail(&self, limit: usize) -> Result<Vec<serde_json::Value>, String>;

    /// A page of the trail: the newest `limit` records with a `seq` below `before`
    /// (every record when `None`), newest first, and the `seq` to ask the next older
    /// page with. The default reads [`Guardian::trail`]; the guard reads from the log's
    /// end, so a page costs the same however long the trail is.
    fn trail_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), String> {
        let all = self.trail(usize::MAX)?;
        let below: Vec<serde_json::Value> = all
            .into_iter()
            .filter(|r| {
                before.is_none_or(|b| r.get("seq").and_then(serde_json::Value::as_u64) < Some(b))
            })
            .collect();
        let older = (below.len() > limit)
            .then(|| below.get(limit - 1).and_then(|r| r.get("seq")?.as_u64()))
            .flatten();
        Ok((below.into_iter().take(limit).collect(), older))
    }

    /// The trail's records that bind the store's rows (those with one of
    /// [`crate::bound::BINDING_FIELDS`]), oldest first, read once at start
    /// ([`crate::bound`]), each said proven or not by a whole verification of the trail.
    /// The default reads every page of [`Guardian::trail`] and calls them proven: a
    /// guardian whose trail is what it holds in memory (the tests'). The guard's hands
    /// verify the trail as `audit verify` does and gather the records from that pass.
    fn bound_records(&self) -> Result<TrailBindings, String> {
        let mut found = Vec::new();
        let mut before = None;
        loop {
            let (records, older) = self.trail_page(before, BOUND_RECORDS_PAGE)?;
            found.extend(records.into_iter().filter(|r| {
                crate::bound::BINDING_FIELDS
                    .iter()
                    .any(|f| r.get(*f).is_some())
            }));
            match older {
                Some(older) => before = Some(older),
                None => break,
            }
        }
        found.reverse();
        Ok(TrailBindings {
            records: found,
            unproven: Vec::new(),
            whole: true,
            problem: None,
            superseded: 0,
        })
    }

    /// The quarantine vault's records (JSON objects), oldest first. The default: none
    /// (no vault beside this console).
    fn quarantine_list(&self) -> Result<Vec<serde_json::Value>, String> {
        Ok(Vec::new())
    }

    /// The records of the vault copy whose SHA-256 starts with `prefix` and the copy
    /// opened for reading (read only), after the vault checked it still hashes to its name.
    fn quarantine_copy(
        &self,
        _prefix: &str,
    ) -> Result<(Vec<serde_json::Value>, crate::quarantine::VaultCopy), String> {
        Err("no quarantine vault beside this console".into())
    }

    /// Whether accepting under `root` (every root when empty) needs a second, different
    /// approver (`[console] four_eyes` and a `static` root among those covered).
    fn needs_second_approver(&self, _root: &str) -> bool {
        false
    }
}

/// What the person deciding was shown, handed to the guard with their acceptance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShownFindings {
    /// The root their page was for, as shown (escaped); empty: every root.
    pub root: String,
    /// The digest of the findings their page showed ([`crate::guard::OpenFindings::seen`]).
    pub seen: String,
    /// The paths of those findings (escaped), a move's former path too.
    pub paths: Vec<String>,
}

/// An acceptance asked by one approver, waiting for a second one (four eyes).
#[derive(Clone, Debug, Serialize)]
pub struct PendingAccept {
    pub id: u64,
    /// As shown (escaped); empty: every root.
    pub root: String,
    pub reason: String,
    pub asked_by: String,
    #[serde(skip)]
    pub(crate) asked_by_account: i64,
    pub asked_at: i64,
    /// The digest of the findings the asker was shown.
    #[serde(skip)]
    pub(crate) seen: String,
}

/// What an acceptance asked in the console did.
#[derive(Clone, Debug)]
pub enum Decision {
    Accepted(Accepted),
    /// Four eyes: waiting for a second approver, under this id.
    Waiting(u64),
}

/// How long an enrolment link stays valid.
pub const ENROLMENT_LINK_LIFETIME: i64 = 24 * 3600;
/// The stored password of an invited account until its holder chooses one: not an
/// Argon2id string, so nothing verifies against it.
const NO_PASSWORD: &str = "!invited";

/// How long an acceptance waits for its second approver before it lapses.
pub const FOUR_EYES_WINDOW: i64 = 3600;
/// Acceptances waiting for a second approver at once; more are refused until one is
/// confirmed or lapses.
pub const MAX_PENDING_ACCEPTS: usize = 100;

/// Records per page when [`Guardian::bound_records`] reads the trail by pages (the trail
/// page's own limit).
const BOUND_RECORDS_PAGE: usize = 1_000;

/// The trail's records that bind the store, as a whole verification found them
/// ([`Guardian::bound_records`]).
#[derive(Clone, Debug, Default)]
pub struct TrailBindings {
    /// The records the verification proved, oldest first: only these bind.
    pub records: Vec<serde_json::Value>,
    /// Records naming a binding that the verification did not prove (forged, edited,
    /// or after a record that was): their position (`record N (byte B)`) and the record.
    pub unproven: Vec<(String, serde_json::Value)>,
    /// Every record of the trail was proven: only then may the accounts of a trail
    /// holding no account record be bound on trust (its first start).
    pub whole: bool,
    /// The verification's first problem, when there is one.
    pub problem: Option<String>,
    /// Records let go at the gathering's limit because a newer record of the same
    /// account, session, request or link was kept (`pacsguard_audit::Gather::superseded`).
    pub superseded: u64,
}

/// What the trail records of a waiting acceptance when it is asked: a digest of every
/// field its confirmation relies on (who asked and as which account, for which root,
/// why, when, what they were shown), so a row edited or planted in the store is told
/// from the one that was asked. The trail records `<id>:<this digest>`.
pub fn request_digest(row: &PendingAcceptRow) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console request v1\0");
    for number in [row.id, row.asked_by_account, row.asked_at] {
        hash.update(number.to_le_bytes());
    }
    for text in [&row.root, &row.reason, &row.asked_by, &row.seen] {
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the trail records (as `request_digest`) when a waiting request is closed
/// otherwise than by its confirmation or its lapse (voided by a new seal, dropped as
/// altered): the newest record of a request then says it is closed, and the same row put
/// back in the store with sqlite3 is refused at confirmation like any altered one. (A
/// confirmed request cannot come back: what it was shown is no longer open; nor a lapsed
/// one: its time is in its digest.)
pub(crate) fn closed_request_digest(id: impl std::fmt::Display) -> String {
    format!("{id}:{REQUEST_CLOSED}")
}
pub(crate) const REQUEST_CLOSED: &str = "closed";

/// Requests for a second approver the store could not purge or list, said on the log
/// rate-limited ([`Console::waiting_requests`]).
static UNPURGED: crate::refusals::RefusalLog = crate::refusals::RefusalLog::new("pacsguard serve");

/// What a person is told when the differences changed after their page was drawn.
const CHANGED_SINCE_SHOWN: &str = "the differences changed since this page was shown: nothing was accepted; review them below and decide again";

/// A checked reason: trimmed, not empty, bounded.
pub(crate) fn reason_of(reason: &str) -> Result<&str, AuthError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AuthError::Invalid(
            "say why (a change ticket, the patch, what was checked)".into(),
        ));
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(AuthError::Invalid(format!(
            "the reason is longer than {MAX_REASON_BYTES} bytes"
        )));
    }
    // A reason is read by other people on the pages and the trail: a character that
    // reorders or hides text (U+202E) would make it say something else than it does.
    if let Some(c) = reason
        .chars()
        .find(|&c| pacsguard_events::hides_text(c) && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(AuthError::Invalid(format!(
            "the reason holds an invisible or direction-changing character (U+{:04X}): type it again without it",
            c as u32
        )));
    }
    Ok(reason)
}

impl Console {
    /// Gives the console the guard's hands (before it serves).
    pub fn with_guardian(mut self, guardian: std::sync::Arc<dyn Guardian>) -> Console {
        self.guardian = Some(guardian);
        self
    }

    /// Confirms the second factor again for decisions: a new session token whose
    /// step-up counts for [`STEP_UP_WINDOW`]. A wrong or replayed code counts as a
    /// failed sign-in of the account.
    pub fn step_up(
        &self,
        auth: &Authenticated,
        code: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.step_up_with(auth, crate::passkey::SecondFactor::Code(code), address)
    }

    /// [`Console::step_up`] with either second factor (a code, or a passkey's assertion).
    pub(crate) fn step_up_with(
        &self,
        auth: &Authenticated,
        factor: crate::passkey::SecondFactor<'_>,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let now = self.now();
        self.ensure_bound()?;
        let account = {
            let db = lock(&self.db)?;
            let account = db
                .account_by_id(auth.account)?
                .ok_or(AuthError::StepUpFailed)?;
            // The second factor is checked against this row: it must be the recorded
            // one, not one swapped in for the check and back (review s10-r13).
            if !self.account_read_as_recorded(&db, &account)? {
                return Err(AuthError::StepUpFailed);
            }
            account
        };
        if !account.enrolled() {
            return Err(AuthError::StepUpFailed);
        }
        let outcome = if account.locked_until > now {
            Err("refused unchecked: sign-in is paused for this account".to_string())
        } else {
            self.check_factor(&account, factor, now, Some(&auth.token_hash))?
        };
        let how = match outcome {
            Ok(how) => how,
            Err(reason) => {
                // Counted (always), and codes guessed at the step-up lock the account as
                // at sign-in, and say so: the lockout is an alert, never silent. The
                // address is not paused for them (`Counts::Account`: the session ties
                // the guesser to this account).
                return Err(self.refused_and_counted(
                    &account,
                    address,
                    crate::counted::Refused {
                        what: "the second factor for a decision (step-up)",
                        action: Action::Login,
                        reason: &reason,
                        counts: crate::counted::Counts::Account,
                    },
                    AuthError::StepUpFailed,
                ));
            }
        };
        lock(&self.db)?.set_failures(account.id, 0, 0)?;
        let opening = self.event(
            &auth.name,
            Action::Login,
            Outcome::Success,
            format!(
                "{} confirmed the second factor{how} for decisions (step-up) from {address}; it counts for {} minutes",
                auth.name,
                STEP_UP_WINDOW / 60
            ),
        );
        // The sign-in's time goes on with the new token: a step-up is no sign-in (the
        // second factor alone), and the absolute limit counts from the sign-in.
        let signed_in = lock(&self.db)?
            .session(&auth.token_hash)?
            .map(|s| s.created)
            .ok_or_else(|| {
                AuthError::Invalid("the session ended meanwhile: sign in again".into())
            })?;
        // Only while the session it replaces lives: a password change or a disable that
        // ended it meanwhile would otherwise be survived by its replacement.
        let replaced = auth.token_hash.clone();
        let session = self.new_session_if(
            auth.account,
            true,
            address,
            Some(opening),
            signed_in,
            &|db| match db.session(&replaced)? {
                Some(_) => Ok(()),
                None => Err(AuthError::Invalid(
                    "the session ended meanwhile: sign in again".into(),
                )),
            },
        )?;
        {
            let db = lock(&self.db)?;
            self.close_session_by_hash(
                &db,
                &auth.token_hash,
                &auth.name,
                format!(
                    "the session of {} was replaced by a new one at a step-up",
                    auth.name
                ),
            )?;
        }
        {
            // In the store, so a restart keeps it: the window, not the process, ends it.
            let db = lock(&self.db)?;
            db.forget_step_up(&auth.token_hash)?;
            db.purge_step_ups(now - STEP_UP_WINDOW)?;
            let token_hash = crate::secret::digest(&session.token);
            let seal = crate::session_seal::seal_step_up(&session.token, &token_hash, now)?;
            db.set_step_up(&token_hash, now, &seal, MAX_STEP_UPS)?;
        }
        Ok(session)
    }

    /// Whether this session confirmed its second factor within [`STEP_UP_WINDOW`].
    pub fn stepped_up(&self, auth: &Authenticated) -> bool {
        // An emergency access has no second factor to confirm: its session, limited to
        // BREAK_GLASS_SECONDS and recorded request by request, stands for one.
        if crate::breakglass::is_emergency(auth) {
            return true;
        }
        // As read with the session, its seal checked (review s14-r04).
        let now = self.now();
        auth.stepped_up_at
            .is_some_and(|at| now - at <= STEP_UP_WINDOW && now >= at)
    }

    /// The common gate of every decision: a fresh step-up and a reason.
    pub(crate) fn decision<'r>(
        &self,
        auth: &Authenticated,
        reason: &'r str,
    ) -> Result<&'r str, AuthError> {
        if !self.stepped_up(auth) {
            return Err(AuthError::StepUpNeeded);
        }
        reason_of(reason)
    }

    fn guardian(&self) -> Result<std::sync::Arc<dyn Guardian>, AuthError> {
        self.guardian
            .clone()
            .ok_or_else(|| AuthError::Invalid("no guard runs beside this console".into()))
    }

    /// Accepts the differences under `root` (every root when empty) into the signed
    /// profile, through the guard, as this person, for `reason`; with four eyes, asks a
    /// second approver instead.
    ///
    /// `seen` is the digest of the findings the person's page showed for `root`
    /// ([`crate::guard::OpenFindings::seen`]): when other findings are open now (a
    /// difference arrived while they read), nothing is accepted and they review again.
    pub fn accept(
        &self,
        auth: &Authenticated,
        root: &str,
        reason: &str,
        seen: &str,
    ) -> Result<Decision, AuthError> {
        let reason = self.decision(auth, reason)?;
        // A request's key of a host's profile approval ([`crate::host_approvals`]) is no
        // root: typed here by hand, it would be a waiting host approval asked past the
        // Hosts page's checks.
        if root.starts_with(crate::host_approvals::HOST_REQUEST_PREFIX) {
            return Err(AuthError::Invalid(format!("no root {root}")));
        }
        self.unchanged_since_shown(root, seen)?;
        let guardian = self.guardian()?;
        if guardian.needs_second_approver(root) {
            let what = format!(
                "accept the differences of {}",
                if root.is_empty() { "every root" } else { root }
            );
            return self
                .ask_second_approver(auth, root, reason, seen, &what)
                .map(Decision::Waiting);
        }
        let who = self.actor(&auth.name).user;
        self.run_accept(guardian.as_ref(), &who, root, reason, seen)
            .map(Decision::Accepted)
    }

    /// Refuses a decision taken on a page that showed other findings for `root` than
    /// are open now.
    fn unchanged_since_shown(&self, root: &str, seen: &str) -> Result<(), AuthError> {
        if self.guard.open_findings().seen(root) == seen {
            return Ok(());
        }
        Err(AuthError::Invalid(CHANGED_SINCE_SHOWN.into()))
    }

    fn run_accept(
        &self,
        guardian: &dyn Guardian,
        who: &str,
        root: &str,
        reason: &str,
        seen: &str,
    ) -> Result<Accepted, AuthError> {
        // One view of the open findings for the last check and for what the engine may
        // take in: a difference it finds anywhere else was never shown, and is refused.
        let open = self.guard.open_findings();
        if open.seen(root) != seen {
            return Err(AuthError::Invalid(CHANGED_SINCE_SHOWN.into()));
        }
        // More findings than the console keeps: the page could not show them all, so
        // nothing may be accepted from it blind (review s34: any path slipped in).
        let Some(paths_shown) = open.shown_paths(root) else {
            return Err(AuthError::Invalid(format!(
                "{} finding(s) were dropped past the {} the console keeps, so no page showed every difference: nothing was accepted; list them with `pacsguard check` on the guard's host and accept the paths reviewed with `pacsguard accept PATH... --reason`",
                open.dropped,
                crate::guard::MAX_OPEN_FINDINGS
            )));
        };
        let shown = ShownFindings {
            root: root.to_string(),
            seen: seen.to_string(),
            paths: paths_shown,
        };
        // A root as its page showed it (escaped) is its real path again; any other
        // path (typed by hand) is taken as written.
        let paths: Vec<PathBuf> = if root.is_empty() {
            Vec::new()
        } else {
            vec![
                self.guard
                    .root_path(root)
                    .unwrap_or_else(|| PathBuf::from(root)),
            ]
        };
        let accepted = guardian
            .accept(who, paths, reason, shown)
            .map_err(AuthError::from)?;
        if !accepted.accepted.is_empty() {
            // Only what was shown: a finding the guard reported since stays open.
            let upto = open.findings.iter().map(|f| f.id).max().unwrap_or(0);
            // And only what it took in: one shown below a directory it could not
            // list, or a move whose destination it did not take, stays open.
            self.guard.accepted(root, upto, &accepted.accepted);
        }
        Ok(accepted)
    }

    /// Records a request waiting for a second approver (four eyes) to do `what`: `key`
    /// the root it is for (or a host approval's key, [`crate::host_approvals`]), `seen`
    /// what the asker was shown. The one mechanism of both: stored, its digest on the
    /// trail, lapsing after [`FOUR_EYES_WINDOW`]. Gives the request's id.
    pub(crate) fn ask_second_approver(
        &self,
        auth: &Authenticated,
        key: &str,
        reason: &str,
        seen: &str,
        what: &str,
    ) -> Result<u64, AuthError> {
        let root = key;
        let now = self.now();
        let db = lock(&self.db)?;
        db.purge_pending_accepts(now - FOUR_EYES_WINDOW)?;
        if db.pending_accepts()?.len() >= MAX_PENDING_ACCEPTS {
            return Err(AuthError::Invalid(format!(
                "{MAX_PENDING_ACCEPTS} acceptances already wait for a second approver"
            )));
        }
        // Room for its record first (a trail that refuses refuses before the store has
        // the request); stored before it is recorded: the id is the store's.
        let room = self.room_for_record()?;
        let mut row = PendingAcceptRow {
            id: 0,
            root: root.to_string(),
            reason: reason.to_string(),
            asked_by: auth.name.clone(),
            asked_by_account: auth.account,
            asked_at: now,
            seen: seen.to_string(),
        };
        let id = db.insert_pending_accept(&row)?;
        row.id = id;
        // Kept in this process too (the trail is only read for requests asked before
        // it started): a record edited on the trail with the store row is refused.
        let waiting: std::collections::HashSet<u64> = db
            .pending_accepts()?
            .iter()
            .filter_map(|r| u64::try_from(r.id).ok())
            .collect();
        {
            let mut asked = lock(&self.asked)?;
            asked.retain(|id, _| waiting.contains(id));
            if let Ok(key) = u64::try_from(id) {
                asked.insert(key, request_digest(&row));
            }
        }
        let mut event = self
            .event(
                &auth.name,
                Action::Accept,
                Outcome::Started,
                format!(
                    "{} asks a second approver to {what} (four eyes, request {id}, after a step-up)",
                    auth.name,
                ),
            )
            .with_reason(reason);
        event.request_digest = Some(format!("{id}:{}", request_digest(&row)));
        if let Err(e) = crate::held::record_in(room, event) {
            // The guard stopped past its wait for the room: not done.
            if let Ok(key) = u64::try_from(id) {
                lock(&self.asked)?.remove(&key);
            }
            db.remove_pending_accept(id)?;
            return Err(e);
        }
        Ok(u64::try_from(id).unwrap_or_default())
    }

    /// The acceptances waiting for a second approver (lapsed ones dropped); kept in the
    /// store, so a restart keeps them until [`FOUR_EYES_WINDOW`] ends them.
    pub fn pending_accepts(&self) -> Vec<PendingAccept> {
        self.waiting_requests()
            .into_iter()
            .filter(|p| {
                !p.root
                    .starts_with(crate::host_approvals::HOST_REQUEST_PREFIX)
            })
            .collect()
    }

    /// Every request waiting for a second approver: acceptances and host approvals.
    pub(crate) fn waiting_requests(&self) -> Vec<PendingAccept> {
        let lapsed_at_or_before = self.now() - FOUR_EYES_WINDOW;
        let Ok(db) = lock(&self.db) else {
            return Vec::new();
        };
        // A page reads this too: a store that cannot delete now (a full disk) must not
        // fail it, nor keep a lapsed request waiting (review r29-console2: the purge's
        // failure was dropped and a request lapsed hours ago was confirmed). Lapsed ones
        // are left out below whatever the purge did, and its failure said on the log.
        if let Err(e) = db.purge_pending_accepts(lapsed_at_or_before) {
            UNPURGED.refused(&format!(
                "to delete the lapsed requests for a second approver (left out all the same), the console's store cannot be written now: {e}"
            ));
        }
        let rows = db.pending_accepts().unwrap_or_else(|e| {
            UNPURGED.refused(&format!(
                "to show the requests waiting for a second approver (none shown), the console's store cannot be read now: {e}"
            ));
            Vec::new()
        });
        rows.into_iter()
            .filter(|row| row.asked_at > lapsed_at_or_before)
            .map(|row| PendingAccept {
                id: u64::try_from(row.id).unwrap_or_default(),
                root: row.root,
                reason: row.reason,
                asked_by: row.asked_by,
                asked_by_account: row.asked_by_account,
                asked_at: row.asked_at,
                seen: row.seen,
            })
            .collect()
    }

    /// A second, different approver confirms a waiting acceptance (after a step-up, with
    /// a reason of their own): the guard accepts, and the trail names both.
    /// `seen`: as for [`Console::accept`], what the second approver's page showed; it
    /// must also be what the first approver was shown, so the second approver never
    /// takes in a difference the first did not approve. The second approver must be
    /// another person ([`crate::four_eyes`]). Gives what was accepted and the root it was
    /// asked for (as shown; empty: every root).
    pub fn confirm_accept(
        &self,
        auth: &Authenticated,
        id: u64,
        reason: &str,
        seen: &str,
    ) -> Result<(Accepted, String), AuthError> {
        let reason = self.decision(auth, reason)?;
        let Some(asked) = self.pending_accepts().into_iter().find(|p| p.id == id) else {
            return Err(AuthError::Invalid(format!(
                "no acceptance {id} waits (confirmed, lapsed after {} minutes, or unknown)",
                FOUR_EYES_WINDOW / 60
            )));
        };
        let asked = self.take_waiting(auth, asked, reason, |asked| {
            if asked.seen != seen {
                return Err(AuthError::Invalid(
                    "the differences changed since the first approver asked: nothing was accepted; they ask again for what is open now".into(),
                ));
            }
            self.unchanged_since_shown(&asked.root, seen)
        })?;
        let both = format!(
            "four eyes: asked by {} ({}); confirmed by {} ({reason})",
            asked.asked_by, asked.reason, auth.name
        );
        let who = self.actor(&auth.name).user;
        self.run_accept(self.guardian()?.as_ref(), &who, &asked.root, &both, seen)
            .map(|accepted| (accepted, asked.root))
    }

    /// The second approver's half of four eyes, for an acceptance and a host approval
    /// alike: `auth` (stepped up, `reason` checked) takes the waiting request `asked`
    /// when it is as the trail recorded it, its asker still an approver, the two of them
    /// two people ([`crate::four_eyes`]) and `check` (what was shown) holds; the request
    /// is then closed in the store and on the trail, and returned.
    pub(crate) fn take_waiting(
        &self,
        auth: &Authenticated,
        asked: PendingAccept,
        reason: &str,
        check: impl FnOnce(&PendingAccept) -> Result<(), AuthError>,
    ) -> Result<PendingAccept, AuthError> {
        let id = asked.id;
        // The route asks for an approver; the decision asks again (never only one gate).
        if auth.role < Role::Approver {
            return Err(AuthError::Invalid(
                "four eyes: the second approver must have the approver role".into(),
            ));
        }
        // The emergency account is nobody's own: whoever sealed it (or holds the
        // envelope) could otherwise be their own second approver.
        if crate::breakglass::is_emergency(auth) {
            return Err(AuthError::Invalid(
                "four eyes: the emergency account cannot be the second approver".into(),
            ));
        }
        self.as_recorded(auth, &asked)?;
        let refused = |why: String| {
            let event = self
                .event(
                    &auth.name,
                    Action::Accept,
                    Outcome::Failure,
                    format!(
                        "{} was refused as second approver of request {id} asked by {}: {why}",
                        auth.name, asked.asked_by
                    ),
                )
                .with_reason(reason);
            self.refused_with(event, AuthError::Invalid(format!("four eyes: {why}")))
        };
        // A store that cannot say whether the two are two people, or whether the asker
        // is still an approver, is an error answered as one (the request waits), never
        // taken for an answer (review r31-console: taken for "no longer an approver", a
        // read that failed closed the first approver's request).
        let unreadable = |e: AuthError| {
            let event = self
                .event(
                    &auth.name,
                    Action::Accept,
                    Outcome::Failure,
                    format!(
                        "{} was refused as second approver of request {id} asked by {}: the accounts could not be read from the store ({e}); the request waits",
                        auth.name, asked.asked_by
                    ),
                )
                .with_reason(reason);
            self.refused_with(event, e)
        };
        self.distinct_persons(asked.asked_by_account, auth.account)
            .map_err(&unreadable)?
            .map_err(&refused)?;
        // Two approvers when it is done, not one who was an approver an hour ago: an
        // asker whose role was lowered (or account removed) meanwhile no longer counts.
        if let Err(why) = self.asker_still_approver(&asked).map_err(&unreadable)? {
            self.close_waiting(auth, &asked, &why)?;
            return Err(refused(format!("{why}; the request is closed")));
        }
        check(&asked)?;
        // Room for the closure's record before the row goes (review r29-console2):
        // recorded after, a trail that refused left the request gone from the store and
        // closed here with nothing on the trail.
        let room = self.room_for_record()?;
        let id_row = i64::try_from(id).unwrap_or(i64::MAX);
        if !lock(&self.db)?.remove_pending_accept(id_row)? {
            return Err(AuthError::Invalid(format!(
                "request {id} was confirmed by someone else meanwhile"
            )));
        }
        // Closed on the trail and here (review s11-r13): the row, copied while it waited
        // and put back, was confirmed again (the first approver's request taken twice).
        lock(&self.asked)?.insert(id, REQUEST_CLOSED.to_string());
        let mut closing = self.event(
            &auth.name,
            Action::Accept,
            Outcome::Started,
            format!(
                "request {id} asked by {} confirmed by {}: the request is closed, the decision follows",
                asked.asked_by, auth.name
            ),
        );
        closing.request_digest = Some(closed_request_digest(id));
        crate::held::record_in(room, closing)?;
        Ok(asked)
    }

    /// Whether the asker of `asked` still holds the approver role (its account as the
    /// trail recorded it): `Ok(Err(why))` when it does not; an error when the store
    /// cannot read the account.
    fn asker_still_approver(&self, asked: &PendingAccept) -> Result<Result<(), String>, AuthError> {
        let account = lock(&self.db)?.account_by_id(asked.asked_by_account)?;
        Ok(match account {
            Some(account) if Role::parse(&account.role).is_some_and(|r| r >= Role::Approver) => {
                Ok(())
            }
            Some(account) => Err(format!(
                "the first approver {} holds the role {} now, no longer approver",
                asked.asked_by, account.role
            )),
            None => Err(format!(
                "the first approver's account ({}) no longer exists",
                asked.asked_by
            )),
        })
    }

    /// Closes a waiting request that can no longer be confirmed (its asker lost the
    /// role, its host moved on): dropped from the store, closed on the trail, `why` said.
    pub(crate) fn close_waiting(
        &self,
        auth: &Authenticated,
        asked: &PendingAccept,
        why: &str,
    ) -> Result<(), AuthError> {
        let id = asked.id;
        // Room for its record first, as for a confirmation (`take_waiting`).
        let room = self.room_for_record()?;
        lock(&self.db)?.remove_pending_accept(i64::try_from(id).unwrap_or(i64::MAX))?;
        lock(&self.asked)?.insert(id, REQUEST_CLOSED.to_string());
        let mut closing = self.event(
            &auth.name,
            Action::Accept,
            Outcome::Failure,
            format!(
                "request {id} asked by {} is closed unconfirmed: {why}",
                asked.asked_by
            ),
        );
        closing.request_digest = Some(closed_request_digest(id));
        crate::held::record_in(room, closing)
    }

    /// Refuses a waiting request that is not as the trail recorded it when it was asked
    /// (edited in the store, or planted there without being asked): a
    /// `console-request-altered` alert, and the request is dropped.
    fn as_recorded(&self, auth: &Authenticated, asked: &PendingAccept) -> Result<(), AuthError> {
        let id = asked.id;
        let row = PendingAcceptRow {
            id: i64::try_from(id).unwrap_or(i64::MAX),
            root: asked.root.clone(),
            reason: asked.reason.clone(),
            asked_by: asked.asked_by.clone(),
            asked_by_account: asked.asked_by_account,
            asked_at: asked.asked_at,
            seen: asked.seen.clone(),
        };
        // Only what this process holds: the requests bound at its start from the verified
        // trail and those asked since. A request it does not hold has no proven record (a
        // record read back from the trail now would be read unverified).
        self.ensure_bound()?;
        let recorded = lock(&self.asked)?.get(&id).cloned();
        let why = match recorded {
            Some(recorded) if recorded == request_digest(&row) => return Ok(()),
            Some(recorded) if recorded == REQUEST_CLOSED => {
                "was closed on the trail (voided, or dropped as altered) and put back in the store"
            }
            Some(_) => "no longer matches the digest the trail recorded when it was asked",
            None => "has no proven record on the trail (never asked through the console)",
        };
        // Room for the alert first, then the drop, then the alert saying what the drop
        // did (review r29-console2): recorded as dropped before the drop, a store that
        // refused it (a full disk) kept the row while the trail and this process took the
        // request for closed, so its next confirmation was refused as "closed on the
        // trail and put back", an edit nobody made. A trail that refuses leaves the
        // request as it is (its next confirmation is refused again, and alerts then).
        let room = self.room_for_record().inspect_err(|e| {
            crate::counted::UNRECORDED.refused(&format!(
                "the confirmation of request {id} ({why}), and the trail could not record its alert: {e}"
            ));
        })?;
        let dropped = lock(&self.db)?.remove_pending_accept(row.id);
        let outcome = match &dropped {
            Ok(_) => "the request dropped".to_string(),
            Err(e) => format!("the request could not be dropped ({e}): it stays refused"),
        };
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleRequestAltered,
            Severity::Alert,
            format!(
                "console: request {id} waiting for a second approver (asked by {} for {}) {why}: the store was edited; its confirmation by {} was refused and {outcome}",
                asked.asked_by,
                if asked.root.is_empty() {
                    "every root"
                } else {
                    asked.root.as_str()
                },
                auth.name
            ),
        );
        let mut event = pacsguard_events::Event::of_finding(self.actor(&auth.name), finding);
        event.action = Action::Accept;
        if dropped.is_ok() {
            // Closed on the trail and here: the row put back is refused as closed.
            event.request_digest = Some(closed_request_digest(id));
            lock(&self.asked)?.insert(id, REQUEST_CLOSED.to_string());
            crate::held::record_in(room, event)?;
        } else {
            // Refused again at each confirmation: alerted at most once per interval, the
            // rest counted (review r30-console).
            self.alert_undo_refused(
                crate::undo_refused::UndoRefused::Request,
                &id.to_string(),
                room,
                event,
            )?;
        }
        Err(AuthError::Invalid(format!(
            "four eyes: request {id} {why}: refused, and the security team alerted"
        )))
    }

    /// Changes an account's role; the account's sessions end (its holder signs in again
    /// with the new role).
    pub fn change_role(
        &self,
        auth: &Authenticated,
        name: &str,
        role: &str,
        reason: &str,
    ) -> Result<(), AuthError> {
        self.named_account_decision(auth, name, reason, |db, account, reason| {
            let role = Role::parse(role).ok_or_else(|| {
                AuthError::Invalid("a role is viewer, operator, approver or administrator".into())
            })?;
            if account.name == crate::breakglass::BREAK_GLASS_ACCOUNT {
                return Err(AuthError::Invalid(
                    "the emergency account's role is fixed (approver)".into(),
                ));
            }
            if account.id == auth.account && role < Role::Administrator {
                return Err(AuthError::Invalid(
                    "an administrator cannot lower their own role (another administrator can)".into(),
                ));
            }
            // The change records the whole row (credentials too) as bound: a row edited in
            // the store (a password hash or second factor replaced) would be recorded as
            // legitimate with it. Refused, with the alert (review s10-r13).
            if !self.account_as_recorded(db, account.id)? {
                return Err(AuthError::Invalid(format!(
                    "the account {name} is not as the audit trail recorded it (the store was edited; see the alert): its role cannot be changed; invite the person under a new account"
                )));
            }
            self.record(
                self.event(
                    &auth.name,
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "{} changed the role of {name} from {} to {} (after a step-up); its sessions end",
                        auth.name,
                        account.role,
                        role.as_str()
                    ),
                )
                .with_reason(reason),
            )?;
            // One hold of the lock for the role, the four-eyes link, the sessions' ends and
            // the record binding them: no request sees the account half changed, and two
            // changes are recorded in the order they were made.
            db.set_role(account.id, role.as_str())?;
            db.record_role_grant(account.id, auth.account, self.now())?;
            self.close_sessions_of(
                db,
                account.id,
                &account.name,
                &format!("its role was changed by {}", auth.name),
            )?;
            self.rebind_under(
                db,
                account.id,
                &format!("given the role {} by {}", role.as_str(), auth.name),
            )?;
            Ok(())
        })
    }

    /// An administrator invites a person: the account is created without a usable
    /// password, and a one-time enrolment link (returned once, stored as its digest,
    /// valid [`ENROLMENT_LINK_LIFETIME`]) lets its holder choose the password and enrol
    /// the second factor. Nobody but the holder ever knows the password, so nobody can
    /// enrol a second factor in their place.
    ///
    /// Granting a role to a new account is a decision like changing one (a step-up and a
    /// reason): else a stolen administrator's session, which cannot change a role,
    /// could mint an administrator of its own, enrol its own second factor and keep it.
    pub fn invite(
        &self,
        by: &Authenticated,
        name: &str,
        role: &str,
        reason: &str,
    ) -> Result<String, AuthError> {
        let reason = self.decision(by, reason)?;
        if !crate::auth::valid_name(name) {
            return Err(AuthError::Invalid(format!(
                "a name is 1 to {} characters of a-z, 0-9, '.', '_' and '-'",
                crate::auth::MAX_NAME_BYTES
            )));
        }
        let role = Role::parse(role).ok_or_else(|| {
            AuthError::Invalid("a role is viewer, operator, approver or administrator".into())
        })?;
        let token = crate::secret::new_token().map_err(|e| AuthError::Random(e.to_string()))?;
        self.ensure_bound()?;
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        let said = self.hold_begins()?;
        if db.account_by_name(name)?.is_some() {
            return Err(AuthError::Invalid(format!(
                "the account {name} exists already"
            )));
        }
        self.purge_expired_links(&db, self.now())?;
        self.record(
            self.event(
                &by.name,
                Action::Account,
                Outcome::Success,
                format!(
                    "{} invited {name} with the role {} (after a step-up): a one-time enrolment link, valid {} hours, lets its holder choose the password and enrol the second factor",
                    by.name,
                    role.as_str(),
                    ENROLMENT_LINK_LIFETIME / 3600
                ),
            )
            .with_reason(reason),
        )?;
        // No password hash: nothing verifies until the link is redeemed. The account, its
        // origin, its record and its link in one hold of the lock.
        let now = self.now();
        let id = db.create_account(name, role.as_str(), NO_PASSWORD, now)?;
        db.record_origin(id, by.account, now)?;
        self.rebind_under(&db, id, &format!("invited by {}", by.name))?;
        self.issue_invitation(
            &db,
            id,
            name,
            &crate::secret::digest(&token),
            now + ENROLMENT_LINK_LIFETIME,
        )?;
        said.commit(db)?;
        Ok(token)
    }

    /// Whether an enrolment link is valid now (for showing its form): bound, unexpired,
    /// and for an account without a second factor (a password reset link, whose account
    /// keeps its own, opens only [`crate::reset`]'s page).
    pub fn invitation_valid(&self, token: &str) -> Result<bool, AuthError> {
        if !crate::secret::is_token(token) {
            return Ok(false);
        }
        self.ensure_bound()?;
        let db = lock(&self.db)?;
        let Some((account, _)) =
            self.bound_invitation(&db, &crate::secret::digest(token), self.now())?
        else {
            return Ok(false);
        };
        Ok(db.account_by_id(account)?.is_some_and(|a| !a.enrolled()))
    }

    /// The holder of an enrolment link chooses the password: the link is spent, and a
    /// session that reaches only the enrolment of the second factor begins.
    pub fn redeem_invitation(
        &self,
        token: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        if !self.invitation_valid(token)? {
            return Err(self.link_refused(
                "invitation",
                format!("an enrolment link was refused (unknown, used or expired) from {address}"),
            ));
        }
        let name = self.link_holder_name(token)?;
        crate::password::check_new_for(password, &name)?;
        let hash = crate::password::hash(password)?;
        self.ensure_bound()?;
        let account = {
            let mut guard = lock(&self.db)?;
            // The checks of the link and the account, the redemption and the record's
            // read: one transaction (review s11-r13: a role raised in between by a writer
            // holding the store's lock was recorded as given).
            let mut db = guard.hold()?;
            let said = self.hold_begins()?;
            let token_hash = crate::secret::digest(token);
            let now = self.now();
            // Only the link the trail binds to its account, unexpired ([`crate::invitations`]):
            // a second link planted with sqlite3 is refused (and alerted) here.
            let Some((holder, expires)) = self.bound_invitation(&db, &token_hash, now)? else {
                // A link not as recorded was removed: that stays.
                said.commit(db)?;
                return Err(AuthError::SetupRefused);
            };
            // The link's account must be as the trail recorded it before the link sets
            // its password and rebinds it: an account whose second factor was cleared in
            // the store would otherwise be recorded as legitimate (review s10-r13).
            if !self.account_as_recorded(&db, holder)? {
                drop(db);
                return Err(self.link_refused(
                    "invitation",
                    format!(
                        "an enrolment link for account {holder} was refused from {address}: the account is not as the trail recorded it"
                    ),
                ));
            }
            // Spent only if the row is still the one checked, the account still without
            // a second factor: one transaction.
            if !db.redeem_invitation(&token_hash, holder, expires, now, &hash)? {
                return Err(AuthError::SetupRefused);
            }
            let name = db
                .account_by_id(holder)?
                .map_or_else(|| format!("account {holder}"), |a| a.name);
            self.close_invitation(&db, holder, &name)?;
            self.rebind_under(
                &db,
                holder,
                "its credentials bound to the trail after its holder chose a password with the enrolment link",
            )?;
            said.commit(db)?;
            holder
        };
        let name = lock(&self.db)?
            .account_by_id(account)?
            .map_or_else(|| format!("account {account}"), |a| a.name);
        let opening = self.event(
            &name,
            Action::Account,
            Outcome::Success,
            format!(
                "{name} used the enrolment link from {address} and chose a password; the link is spent; the second factor comes next"
            ),
        );
        self.new_session_with(account, false, address, Some(opening))
    }

    /// The name of the account a one-time link (`token`, already checked) is for, to
    /// check a new password against it; empty when the link is gone meanwhile (the
    /// redemption then refuses it under its hold).
    pub(crate) fn link_holder_name(&self, token: &str) -> Result<String, AuthError> {
        let db = lock(&self.db)?;
        let Some((account, _)) = db.invitation(&crate::secret::digest(token))? else {
            return Ok(String::new());
        };
        Ok(db
            .account_by_id(account)?
            .map(|a| a.name)
            .unwrap_or_default())
    }

    /// Ends every session of an account (an administrator's protective act: no step-up).
    /// In one hold (review r29-console): its record was queued before the ends were
    /// written, so a store that refused them (a full disk) left "ended every session of
    /// bob" on the trail while bob's sessions lived, or ended some and not the others.
    pub fn revoke_sessions(&self, auth: &Authenticated, name: &str) -> Result<usize, AuthError> {
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        let said = self.hold_begins()?;
        let account = db
            .account_by_name(name)?
            .ok_or_else(|| AuthError::Invalid(format!("no account {name}")))?;
        self.record(self.event(
            &auth.name,
            Action::Logout,
            Outcome::Success,
            format!("{} ended every session of {name}", auth.name),
        ))?;
        let ended = self.close_sessions_of(
            &db,
            account.id,
            &account.name,
            &format!("{} ended every session of {name}", auth.name),
        )?;
        said.commit(db)?;
        Ok(ended)
    }

    /// Every live session, for administrators: account, begun, last used, address.
    pub fn sessions(&self) -> Result<Vec<(String, i64, i64, String)>, AuthError> {
        Ok(lock(&self.db)?.sessions()?)
    }

    /// A page of the trail, through the guard (see [`Guardian::trail_page`]).
    pub fn trail_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), AuthError> {
        match &self.guardian {
            Some(g) => g.trail_page(before, limit).map_err(AuthError::Invalid),
            None => Ok((Vec::new(), None)),
        }
    }

    /// The newest trail records, through the guard.
    pub fn trail(&self, limit: usize) -> Result<Vec<serde_json::Value>, AuthError> {
        match &self.guardian {
            Some(g) => g.trail(limit).map_err(AuthError::Invalid),
            None => Ok(Vec::new()),
        }
    }
}
