//! Approving a host's profile generation (issue 14, approvals off the host).
//!
//! An enrolled host names its signed profile generation in every report; the fleet
//! listener keeps each one it has not seen approved as pending (and raises
//! `host-profile-unapproved`). Here an approver accepts one: the same gate as every
//! decision of this console ([`Console::decision`]: a step-up within its window and a
//! reason), the approver role checked again, the trail told who approved what and why.
//! The signature the host receives is made by the fleet listener from this record at
//! the host's next report (the listener holds the witness key; the web console never
//! does).
//!
//! No approval takes effect without a trail record naming who made it. The store (a
//! PostgreSQL server, perhaps) and the trail (a file of this home) cannot be written in
//! one transaction, so the approval goes in three steps: it is written *awaiting
//! confirmation* under a random id (not in effect: the listener signs only confirmed
//! approvals, the pages show the profile unapproved), its record naming the id is
//! queued for the trail, and only once that record is seen on the trail is the approval
//! confirmed. A COMMIT whose answer is lost, a console killed between two steps, a trail
//! that cannot be written: each leaves an approval awaiting confirmation, never one in
//! effect without its record. An approval found awaiting confirmation for longer than
//! [`APPROVAL_RESOLVE_AFTER`] (at the console's start, when the Hosts page is read, or
//! when the same profile is approved again) is confirmed if its record is on the trail,
//! else dropped, with a `host-approval-unrecorded` warning on the trail naming it.
//!
//! Several consoles may share one fleet store (PostgreSQL), each with its own trail. An
//! approval awaiting its record is settled only by the console whose trail should hold
//! that record (issue 14: another console, not finding it on its own trail, dropped it
//! after [`APPROVAL_RESOLVE_AFTER`] while its request was still waiting, or after its
//! console's restart had confirmed nothing yet). The approval's id names the console that
//! wrote it (`<console id>-<random>`, [`pacsguard_store::ConsoleDb::console_id`]); an id
//! of the version before (no console named) is settled by whoever finds it, as then. And
//! a confirmation that comes after its approval was dropped and the profile approved
//! under another id says so: it does not answer "approved".
//!
//! The store is not where an approval is proven (session 22): whoever holds the fleet's
//! database (sqlite3 on the home's store, psql on the fleet's PostgreSQL) could write a
//! row as approved and the listener signed it with the witness key, no approver at all.
//! So the record of each approval names what was approved as data, not only in its text
//! (`Event::approval_digest`: `<host>/<generation>/<digest>:<time>`), read back at start
//! from the trail's proven records like the accounts' digests ([`crate::bound`]) and kept
//! as this console records new ones; the fleet listener signs an approval only when this
//! console's trail holds its record ([`Console::recorded_host_approval`]), with the time
//! recorded there. A row approved in the store without one is raised by the listener as
//! `host-approval-unproven` and not signed; the Hosts page offers it to an approver, whose
//! approval (step-up, reason, four eyes when in force) is recorded on this trail and
//! changes nothing in the store ([`Console::approve_host_profile`]).
//!
//! Consoles sharing one PostgreSQL store each sign only what their own trail records: an
//! approval made on another console is not signed by this one until an approver approves
//! it here too. A console trusting another's word would put trust back in the shared
//! database; each console's people answer for what its witness key signs.
//!
//! Four eyes (`[console] needs_second_host_approver`): the first approver's approval
//! is a request waiting for a second approver, the one mechanism of the console's
//! acceptances into `static` roots ([`Console::ask_second_approver`], keyed
//! [`host_request_key`]): nothing is written to the fleet's store, nothing signed. A
//! second approver who is another person ([`crate::four_eyes`]) approving the same
//! generation and digest while it is the host's current profile takes the request
//! ([`Console::take_waiting`]); only then is the approval written as above, naming both.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::{HostRow, ProfileRow};

use crate::auth::{AuthError, Authenticated, Console};
use crate::roles::Role;

/// How long an approver's request waits for the approval's record to be written to
/// the trail (the guard writes what the console queued within a turn of its loop, at
/// most a few hundred milliseconds apart) before answering that the approval is not in
/// effect yet.
pub const APPROVAL_RECORD_WAIT: Duration = Duration::from_secs(10);

/// An approval awaiting confirmation for longer than this (seconds) is resolved by
/// whoever finds it: confirmed if its record is on the trail, else dropped. Longer than
/// [`APPROVAL_RECORD_WAIT`], so an approval still in its request is never dropped under
/// it (two consoles on one PostgreSQL database, or two approvers at once).
pub const APPROVAL_RESOLVE_AFTER: i64 = 60;

/// An approval awaiting its record on the trail of another console (several consoles
/// on one PostgreSQL store) for longer than this (seconds) is dropped by whichever
/// console finds it, with a `host-approval-unrecorded` warning naming the console and
/// this limit: its console, gone for good (or never existing: a row put in the shared
/// database under a made-up console id), would otherwise keep every other console from
/// approving that profile for ever. Long enough for the console that wrote it to be
/// restarted and settle it itself.
pub const FOREIGN_APPROVAL_ABANDONED_AFTER: i64 = 3600;

/// The trail records read, newest first, looking for an approval's record before the
/// search gives up: the approval, never in effect, is then dropped as one with no
/// record (a `host-approval-unrecorded` warning names this limit), so that its profile
/// can be approved again.
pub const MAX_APPROVAL_SEARCH_RECORDS: usize = 1_000_000;

/// The most approvals raised as `host-approval-unproven` that this console remembers
/// (read from its trail at start and raised since): whoever writes the fleet's store
/// writes the rows. Past this many, the memory is emptied and the service's log says so
/// (each is raised again when next met, never dropped).
pub const MAX_UNPROVEN_REMEMBERED: usize = 4096;

/// What a request waiting for a second approver of a host's profile is keyed by (in
/// the place of an acceptance's root): never a root, which is an absolute path.
pub(crate) const HOST_REQUEST_PREFIX: &str = "host ";

/// The key of the request waiting for a second approver of this profile generation:
/// another generation or digest of the same host (re-profiled meanwhile) is another key.
pub(crate) fn host_request_key(host: i64, generation: u64, digest: &str) -> String {
    format!("{HOST_REQUEST_PREFIX}{host}/{generation}/{digest}")
}

/// Trail records read per page while searching.
const SEARCH_PAGE: usize = 512;

/// How often an approver's request looks at the trail for its record.
const RECORD_POLL: Duration = Duration::from_millis(50);

/// What a search of the trail for an approval's record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnTrail {
    Found,
    NotFound,
    /// [`MAX_APPROVAL_SEARCH_RECORDS`] read without finding it.
    SearchedTooFar,
    /// Not searched: the approval awaits its record on another console's trail.
    Elsewhere,
}

/// What an approval's trail record names as data (before its time): the host by name (the
/// name the console signs, a closed alphabet with no `/` or `:`), the generation and the
/// digest of the profile's signature.
pub(crate) fn approval_key(host_name: &str, generation: u64, digest: &str) -> String {
    format!("{host_name}/{generation}/{digest}")
}

/// The `approval_digest` of an approval's trail record: its key and its time.
fn approval_digest(host_name: &str, generation: u64, digest: &str, at: i64) -> String {
    format!("{}:{at}", approval_key(host_name, generation, digest))
}

/// The key and time of an `approval_digest` as this console writes it; anything else
/// binds nothing.
fn parse_approval_digest(text: &str) -> Option<(&str, i64)> {
    let (key, at) = text.rsplit_once(':')?;
    let at = at.parse::<i64>().ok().filter(|t| t.to_string() == at)?;
    let mut parts = key.splitn(3, '/');
    let (host, generation, digest) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = !host.is_empty()
        && generation
            .parse::<u64>()
            .is_ok_and(|g| g.to_string() == generation)
        && digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then_some((key, at))
}

/// The approvals of one host's profiles a console's trail records, and the reports of
/// other profiles it recorded after them.
#[derive(Debug)]
pub(crate) struct HostApprovals {
    /// Each profile (generation, digest) to its newest approval's time.
    profiles: HashMap<(u64, String), i64>,
    /// The newest time recorded for the host: of an approval, or of a report of another
    /// profile that superseded the approvals before it (`approval_superseded`, review
    /// r24).
    newest: i64,
    /// The profile approved at `newest`: the one approval in effect (`None` when the
    /// newest record is a report that superseded them all). A report is judged without
    /// going through the host's older approvals.
    in_effect: Option<(u64, String)>,
}

impl Default for HostApprovals {
    fn default() -> HostApprovals {
        HostApprovals {
            profiles: HashMap::new(),
            newest: i64::MIN,
            in_effect: None,
        }
    }
}

/// The host, generation and digest of a key as [`parse_approval_digest`] gives it.
fn split_key(key: &str) -> Option<(&str, u64, &str)> {
    let mut parts = key.splitn(3, '/');
    Some((parts.next()?, parts.next()?.parse().ok()?, parts.next()?))
}

/// Keeps the approval `key` (as [`parse_approval_digest`] gives it) recorded at `at`.
fn keep_approval(bindings: &mut crate::bound::Bindings, key: &str, at: i64) {
    let Some((host, generation, digest)) = split_key(key) else {
        return;
    };
    let of_host = bindings.approvals.entry(host.to_string()).or_default();
    let profile = (generation, digest.to_string());
    // An approval settled late (its record found after a newer one was kept) never
    // moves a profile's time back.
    let kept = of_host.profiles.entry(profile.clone()).or_insert(at);
    *kept = (*kept).max(at);
    if at > of_host.newest {
        of_host.newest = at;
        of_host.in_effect = Some(profile);
    }
    // Approved here: should it be unproven again (superseded, the store edited), that
    // is raised anew.
    bindings.unproven_raised.remove(key);
}

/// Remembers that the approval `key` was raised as unproven; `true` when the memory
/// was emptied at [`MAX_UNPROVEN_REMEMBERED`] to hold it.
fn keep_unproven(bindings: &mut crate::bound::Bindings, key: &str) -> bool {
    let full = bindings.unproven_raised.len() >= MAX_UNPROVEN_REMEMBERED
        && !bindings.unproven_raised.contains(key);
    if full {
        bindings.unproven_raised.clear();
    }
    bindings.unproven_raised.insert(key.to_string());
    full
}

/// Keeps the report `key` of a host's profile recorded at `at` as superseding every
/// approval of that host recorded before it (or at the same second: fail closed).
fn keep_superseded(bindings: &mut crate::bound::Bindings, key: &str, at: i64) {
    let Some((host, _, _)) = split_key(key) else {
        return;
    };
    let of_host = bindings.approvals.entry(host.to_string()).or_default();
    if at >= of_host.newest {
        of_host.newest = at;
        of_host.in_effect = None;
    }
}

/// Keeps the reports that superseded approvals: from the trail's proven records as
/// recorded, and from its unproven lines dated at most `now`. An unproven line (root on
/// the console can append one) may only take an approval out of effect; dated in the
/// future it would also put every approval made until then behind it, for ever: each new
/// approval is recorded after the host's newest time (`approval_time`), which saturates
/// (review r25-fleet: a forged line dated near `i64::MAX` blocked the host's approvals).
fn bind_superseded(
    bindings: &mut crate::bound::Bindings,
    proven: impl Iterator<Item = (String, i64)>,
    unproven: impl Iterator<Item = (String, i64)>,
    now: i64,
) {
    for (key, at) in proven {
        keep_superseded(bindings, &key, at);
    }
    for (key, at) in unproven {
        keep_superseded(bindings, &key, at.min(now));
    }
}

/// What the trail record of approval `id` says in its detail.
fn id_text(id: &str) -> String {
    format!("(approval id {id})")
}

/// The console that wrote the approval whose id is `id` (`None`: an id of the version
/// before consoles were named in it).
fn console_of(id: &str) -> Option<&str> {
    // From the right: the random part is hex, the console's id is whatever its home's
    // store holds (review s15-r13: one with a `-` in it, split at its first, made every
    // approval of that console another's).
    id.rsplit_once('-').map(|(console, _)| console)
}

/// Whether the console `me` settles, at `now`, an approval awaiting since `at` under
/// `id`: its own (or one naming no console) after [`APPROVAL_RESOLVE_AFTER`], another
/// console's after [`FOREIGN_APPROVAL_ABANDONED_AFTER`]. A time ahead of `now` (an edit,
/// or a clock set back) counts as waited as much: an awaiting row dated in the future
/// must not hold its profile for ever.
fn settles(me: &str, now: i64, id: &str, at: i64) -> bool {
    let bound = match console_of(id) {
        Some(other) if other != me => FOREIGN_APPROVAL_ABANDONED_AFTER,
        _ => APPROVAL_RESOLVE_AFTER,
    };
    now.abs_diff(at) >= bound.unsigned_abs()
}

/// Whether the console refuses `host`'s reports now, and why (its name, its state):
/// revoked, or its state is a refusal (`new-key`, `fork`, `gap`, ...; a silence after
/// it or not). A host only silent (`silent`, after reports accepted) is heard when it
/// reports again, and is not refused here.
pub(crate) fn reports_refused(host: &HostRow) -> Option<(String, String)> {
    if host.revoked.is_some() {
        return Some((host.name.clone(), "revoked".into()));
    }
    let state = host
        .state
        .strip_suffix("silent")
        .map_or(host.state.as_str(), |before| {
            before.strip_suffix(", ").unwrap_or(before)
        });
    if state.is_empty() || state == "ok" {
        return None;
    }
    let detail: String = host.detail.chars().take(200).collect();
    Some((host.name.clone(), format!("{state}: {detail}")))
}

impl Console {
    /// Approves the profile generation (`generation`, `digest`) host `host` reported, as
    /// this person, for `reason`.
    pub fn approve_host_profile(
        &self,
        auth: &Authenticated,
        host: i64,
        generation: u64,
        digest: &str,
        reason: &str,
    ) -> Result<ProfileRow, AuthError> {
        let reason = self.decision(auth, reason)?;
        // The route asks for an approver; the decision asks again (never only one gate).
        if auth.role < Role::Approver {
            return Err(AuthError::Invalid(
                "approving a host's profile needs the approver role".into(),
            ));
        }
        // A host whose reports the console refuses (a new key: its home wiped and made
        // again; a fork; revoked) receives no approval, and its profile is the one an
        // intruder may have made: approving it says "approved" for a host the console
        // does not hear (review rv44-fleet case14). Refused, said, and recorded.
        if let Some(refused) = self
            .with_fleet(|db| Ok(db.host(host)?))?
            .as_ref()
            .and_then(reports_refused)
        {
            let said = format!(
                "host {}'s reports are refused ({}): the console does not hear it, so its profile cannot be approved now; investigate the host (revoke it and enrol it anew if it was re-made), then approve the profile it reports once its reports are accepted",
                refused.0, refused.1
            );
            self.record(
                self.event(
                    &auth.name,
                    Action::Accept,
                    Outcome::Failure,
                    format!(
                        "{} was refused approving profile generation {generation} ({}) of host {}: {said}",
                        auth.name,
                        digest.chars().take(64).collect::<String>(),
                        refused.0
                    ),
                )
                .with_reason(reason),
            )?;
            return Err(AuthError::Changed(said));
        }
        // Review r23: the newest approval of a host on this console's trail is the one
        // its listener signs; approving a profile the host no longer runs (an older one
        // still listed) would take that from the profile it runs, and raise an alert at
        // its next report for an approval made here.
        match self.with_fleet(|db| Ok(db.current_profile_of(host)?))? {
            Some(c) if c.generation == generation && c.digest == digest => {}
            Some(c) => {
                return Err(AuthError::Invalid(format!(
                    "host {} reports profile generation {} now ({}), not generation {generation}: approve the host's current profile",
                    c.host_name,
                    c.generation,
                    c.digest.chars().take(16).collect::<String>()
                )));
            }
            None => {
                return Err(AuthError::Invalid(
                    "no such profile generation was reported by that host".into(),
                ));
            }
        }
        // A host that went back to an approved profile after reporting another (its
        // store restored: the approval is not in effect, review s19-r14) can have it
        // approved again, by a person deciding anew: the old approval is cleared first
        // (it counted for nothing), and this one is numbered after the host's return.
        if self.with_fleet(|db| Ok(db.reopen_superseded_approval(host, generation, digest)?))? {
            self.record(
                self.event(
                    &auth.name,
                    Action::Accept,
                    Outcome::Success,
                    format!(
                        "{} approves again profile generation {generation} of host {host}, whose earlier approval was superseded (the host went back to it after reporting another profile): the earlier approval is cleared",
                        auth.name
                    ),
                )
                .with_reason(reason),
            )?;
        }
        // Approved in the store but not on this console's trail (written in the database,
        // approved on another console, or before approvals were recorded as data): not
        // signed until an approver here approves it, which records it (session 22).
        let unrecorded = match self.with_fleet(|db| Ok(db.profile(host, generation, digest)?))? {
            Some(row) if row.approved.is_some() && !self.host_approval_recorded(&row)? => Some(row),
            _ => None,
        };
        let both;
        // The fleet's setting, read at each approval: every console on the store
        // enforces it (review s19-r14), not only the one whose configuration says so.
        let reason = if self.needs_second_host_approver()? {
            both =
                self.host_four_eyes(auth, host, generation, digest, reason, unrecorded.is_some())?;
            both.as_str()
        } else {
            reason
        };
        if let Some(row) = unrecorded {
            return self.record_stored_approval(auth, &row, reason);
        }
        let now = self.now();
        let me = self.console_id()?;
        let random: String = crate::secret::random_bytes(16)
            .map_err(|e| AuthError::Random(e.to_string()))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let id = format!("{me}-{random}");
        let who = self.actor(&auth.name).user;
        let unknown =
            || AuthError::Invalid("no such profile generation was reported by that host".into());
        // An approval left awaiting by an earlier request is settled first: searching the
        // trail can take long, so it is done holding no connection to the store (with
        // the home's SQLite store, every page of the console would wait).
        let found =
            self.with_fleet(|db| db.profile(host, generation, digest)?.ok_or_else(unknown))?;
        if let Some(awaiting) = &found.awaiting {
            let other = console_of(&awaiting.id).filter(|c| *c != me);
            let settled_here = settles(&me, now, &awaiting.id, awaiting.at);
            if let Some(other) = other.filter(|_| !settled_here) {
                return Err(AuthError::Invalid(format!(
                    "an approval of profile generation {generation} of host {} by {} awaits its record on the audit trail of another console (console {other}), which settles it (or, not settled within {FOREIGN_APPROVAL_ABANDONED_AFTER} s, FOREIGN_APPROVAL_ABANDONED_AFTER, any console drops it): look again later",
                    found.host_name, awaiting.by
                )));
            }
            if !settled_here {
                return Err(AuthError::Invalid(format!(
                    "an approval of profile generation {generation} of host {} by {} awaits its record on the audit trail: look again in a minute",
                    found.host_name, awaiting.by
                )));
            }
            let (on_trail, named) = if other.is_some() {
                (OnTrail::Elsewhere, None)
            } else {
                let (mut found, mut named) =
                    self.approval_records_on_trail(&[awaiting.id.as_str()], None)?;
                (
                    found.pop().unwrap_or(OnTrail::NotFound),
                    named.pop().flatten(),
                )
            };
            self.resolve_approval(&found, on_trail, named.as_deref())?;
        }
        // Recorded after every approval of this host this trail holds, even with the
        // clock set back (review r23: a later approval supersedes an earlier one).
        let at = self.approval_time(&found.host_name, now)?;
        let row = self.with_fleet(|db| {
            let row = db.profile(host, generation, digest)?.ok_or_else(unknown)?;
            if let Some((by, _, _)) = &row.approved {
                return Err(AuthError::Invalid(format!(
                    "profile generation {generation} of host {} was approved already (by {by})",
                    row.host_name
                )));
            }
            if db.host(host)?.is_none_or(|h| h.revoked.is_some()) {
                return Err(AuthError::Invalid(
                    "that host is revoked: its profiles are not approved".into(),
                ));
            }
            // Not in effect: awaiting its record on the trail.
            if !db.propose_profile_approval(host, generation, digest, &id, &who, reason, at)? {
                return Err(AuthError::Invalid(
                    "that profile generation was approved meanwhile".into(),
                ));
            }
            Ok(row)
        })?;
        // The newest record before this one: the wait below reads only what came after.
        let since = self.newest_trail_seq()?;
        let mut event = self
            .event(
                &auth.name,
                Action::Accept,
                Outcome::Success,
                format!(
                    "{} approved profile generation {generation} of host {} (profile {}, signed on the host at {}) after a step-up {}",
                    auth.name,
                    row.host_name,
                    &digest[..digest.len().min(16)],
                    row.created,
                    id_text(&id)
                ),
            )
            .with_reason(reason);
        // What the listener may sign, as data: read back at start (session 22).
        let recorded_as = approval_digest(&row.host_name, generation, digest, at);
        event.approval_digest = Some(recorded_as.clone());
        let recorded = self.record(event);
        if let Err(e) = recorded {
            // Not on the trail, not done. Should the drop fail too, the approval stays
            // awaiting confirmation (not in effect) and is dropped when next found.
            let _ = self.with_fleet(|db| {
                db.drop_profile_approval(host, generation, digest, &id)
                    .map_err(AuthError::from)
            });
            return Err(e);
        }
        let deadline = Instant::now() + APPROVAL_RECORD_WAIT;
        loop {
            match self.approval_on_trail(&id, since)? {
                OnTrail::Found => {
                    self.bind_approval(&recorded_as)?;
                    break;
                }
                _ if Instant::now() >= deadline => {
                    return Err(AuthError::Awaiting(format!(
                        "The approval {} awaits its record on the audit trail (not seen written there within {} s): it is not in effect yet. It takes effect once its record is found on the trail (when the Hosts page is read a minute from now, or at the console's next start), and is dropped, with a warning, otherwise.",
                        id_text(&id),
                        APPROVAL_RECORD_WAIT.as_secs()
                    )));
                }
                _ => std::thread::sleep(RECORD_POLL),
            }
        }
        // On the trail: in effect now. A lost answer is asked again once (a PostgreSQL
        // connection cut is opened anew); failing that, it is confirmed when next found.
        let confirm = || {
            self.with_fleet(|db| {
                db.confirm_profile_approval(host, generation, digest, &id)
                    .map_err(AuthError::from)
            })
        };
        match confirm().or_else(|_| confirm()) {
            Ok(true) => {}
            Ok(false) => {
                let now_approved = self
                    .with_fleet(|db| Ok(db.profile(host, generation, digest)?))?
                    .and_then(|row| row.approved);
                return Err(AuthError::Invalid(match now_approved {
                    Some((by, _, _)) => format!(
                        "the approval {} is on the trail but was dropped from the store meanwhile, and the profile was approved by {by} since: this approval is not the one in effect",
                        id_text(&id)
                    ),
                    None => format!(
                        "the approval {} is on the trail but was dropped from the store meanwhile: approve it again",
                        id_text(&id)
                    ),
                }));
            }
            Err(e) => {
                eprintln!(
                    "pacsguard serve: confirming the approval {} in the store failed: {e}",
                    id_text(&id)
                );
                return Err(AuthError::Awaiting(format!(
                    "The approval {} is on the audit trail, but confirming it in the store failed (the server log says why): it is not in effect yet, and is confirmed when the Hosts page is read a minute from now, or at the console's next start.",
                    id_text(&id)
                )));
            }
        }
        self.with_fleet(|db| {
            db.profile(host, generation, digest)?
                .ok_or_else(|| AuthError::Invalid("the approval was not kept".into()))
        })
    }

    /// Four eyes for a host's profile: the first approver's request is recorded as
    /// waiting (answered [`AuthError::Awaiting`]: nothing signed); a second approver's
    /// takes it when it holds ([`Console::take_waiting`]) and the profile is still the
    /// host's current one. Gives the reason the approval records, naming both.
    fn host_four_eyes(
        &self,
        auth: &Authenticated,
        host: i64,
        generation: u64,
        digest: &str,
        reason: &str,
        unrecorded: bool,
    ) -> Result<String, AuthError> {
        let key = host_request_key(host, generation, digest);
        let row = self.with_fleet(|db| {
            db.profile(host, generation, digest)?.ok_or_else(|| {
                AuthError::Invalid("no such profile generation was reported by that host".into())
            })
        })?;
        // An approval the store holds but this trail does not is approved here anew (with
        // four eyes in force, by two).
        if let Some((by, _, _)) = row.approved.as_ref().filter(|_| !unrecorded) {
            return Err(AuthError::Invalid(format!(
                "profile generation {generation} of host {} was approved already (by {by})",
                row.host_name
            )));
        }
        // Refused before a request is asked or taken: a request taken for a revoked host
        // would be spent on an approval refused after it.
        if self
            .with_fleet(|db| Ok(db.host(host)?))?
            .is_none_or(|h| h.revoked.is_some())
        {
            return Err(AuthError::Invalid(
                "that host is revoked: its profiles are not approved".into(),
            ));
        }
        // Lapsed requests are dropped as they are listed (FOUR_EYES_WINDOW).
        let waiting = self.waiting_requests().into_iter().find(|p| p.root == key);
        let Some(asked) = waiting else {
            let what = format!(
                "approve profile generation {generation} of host {} (profile {})",
                row.host_name,
                &digest[..digest.len().min(16)]
            );
            let id = self.ask_second_approver(auth, &key, reason, digest, &what)?;
            return Err(AuthError::Awaiting(format!(
                "The approval of profile generation {generation} of host {} awaits a second approver (four eyes, request {id}): nothing is signed yet. Another approver confirms it on this page within {} minutes.",
                row.host_name,
                crate::decide::FOUR_EYES_WINDOW / 60
            )));
        };
        let asked = self.take_waiting(auth, asked, reason, |asked| {
            if asked.seen != digest {
                return Err(AuthError::Invalid(
                    "four eyes: the waiting request is for another profile".into(),
                ));
            }
            // The host re-profiled (or went back) since the first approver asked: they
            // approved a profile the host no longer runs.
            let current = self.with_fleet(|db| Ok(db.current_profile_of(host)?))?;
            let moved = match &current {
                Some(c) if c.generation == generation && c.digest == digest => None,
                Some(c) => Some(format!(
                    "host {} reports profile generation {} now",
                    row.host_name, c.generation
                )),
                None => Some(format!("host {} reports no profile now", row.host_name)),
            };
            if let Some(moved) = moved {
                let why =
                    format!("{moved}, not generation {generation} the first approver approved");
                self.close_waiting(auth, asked, &why)?;
                return Err(AuthError::Invalid(format!(
                    "four eyes: {why}: the request is closed; approve the host's current profile"
                )));
            }
            Ok(())
        })?;
        Ok(format!(
            "four eyes: asked by {} ({}); confirmed by {} ({reason})",
            asked.asked_by, asked.reason, auth.name
        ))
    }

    /// Records on this console's trail an approval the fleet's store holds but this trail
    /// does not (`row`, approved in the store): this approver's decision, after the same
    /// gates as any approval, makes the listener sign it. The store is left as it is: the
    /// decision is this console's, and the store was not where it was proven.
    fn record_stored_approval(
        &self,
        auth: &Authenticated,
        row: &ProfileRow,
        reason: &str,
    ) -> Result<ProfileRow, AuthError> {
        if self
            .with_fleet(|db| Ok(db.host(row.host)?))?
            .is_none_or(|h| h.revoked.is_some())
        {
            return Err(AuthError::Invalid(
                "that host is revoked: its profiles are not approved".into(),
            ));
        }
        let (by, stored_reason, at) = row.approved.clone().unwrap_or_default();
        let now = self.approval_time(&row.host_name, self.now())?;
        let recorded_as = approval_digest(&row.host_name, row.generation, &row.digest, now);
        let mut event = self
            .event(
                &auth.name,
                Action::Accept,
                Outcome::Success,
                format!(
                    "{} approved profile generation {} of host {} (profile {}, signed on the host at {}) after a step-up; the fleet's store held it approved by {:?} at {at} for {:?} without a record on this console's trail",
                    auth.name,
                    row.generation,
                    row.host_name,
                    row.digest.chars().take(16).collect::<String>(),
                    row.created,
                    crate::fleet_settings::shown(&by),
                    crate::fleet_settings::shown(&stored_reason),
                ),
            )
            .with_reason(reason);
        event.approval_digest = Some(recorded_as.clone());
        self.record(event)?;
        self.bind_approval(&recorded_as)?;
        Ok(row.clone())
    }

    /// When this console's trail records the approval of profile generation
    /// `generation` (`digest`) of the host named `host_name`: the time it recorded, or
    /// `None` (no approval of that to sign). What the fleet listener asks before it signs.
    pub fn recorded_host_approval(
        &self,
        host_name: &str,
        generation: u64,
        digest: &str,
    ) -> Result<Option<i64>, AuthError> {
        self.ensure_bound()?;
        let bindings = crate::auth::lock(&self.bindings)?;
        let Some(of_host) = bindings.approvals.get(host_name) else {
            return Ok(None);
        };
        // Review r23 (N -> N+1 -> N): whether the host's return to an approved profile
        // supersedes its approval was judged from the store alone (`approved_seq`,
        // `seen_seq`), which its writer can make say "not superseded". This trail knows
        // better: the newest approval it records for a host is the one in effect, and an
        // older one of another profile is not until an approver approves it again
        // (recorded later still, [`Console::approval_time`]). Review r24: nor is the
        // newest one once this console recorded the host reporting another profile after
        // it ([`Console::witness_host_profile`]), approved or not.
        let profile = (generation, digest.to_string());
        if of_host.in_effect.as_ref() != Some(&profile) {
            return Ok(None);
        }
        Ok(of_host.profiles.get(&profile).copied())
    }

    /// The time an approval of a profile of `host_name` made at `now` is recorded with:
    /// `now`, or one second after the newest approval of that host this trail holds when
    /// the clock was set back since. An approval is superseded on the trail by a later one
    /// of another profile ([`Console::recorded_host_approval`]): one made after it must
    /// never be recorded as earlier, or approving it again could not bring it back.
    fn approval_time(&self, host_name: &str, now: i64) -> Result<i64, AuthError> {
        self.ensure_bound()?;
        let newest = crate::auth::lock(&self.bindings)?
            .approvals
            .get(host_name)
            .map(|of_host| of_host.newest);
        Ok(newest.map_or(now, |newest| now.max(newest.saturating_add(1))))
    }

    /// Whether this console's trail records the approval of `row`.
    pub fn host_approval_recorded(&self, row: &ProfileRow) -> Result<bool, AuthError> {
        Ok(self
            .recorded_host_approval(&row.host_name, row.generation, &row.digest)?
            .is_some())
    }

    /// Keeps an approval this console recorded (its `approval_digest`).
    fn bind_approval(&self, recorded_as: &str) -> Result<(), AuthError> {
        if let Some((key, at)) = parse_approval_digest(recorded_as) {
            keep_approval(&mut *crate::auth::lock(&self.bindings)?, key, at);
        }
        Ok(())
    }

    /// At start, from the trail's proven records (oldest first): each approval recorded,
    /// and each report that superseded approvals. Unproven records bind no approval (they
    /// could only make the listener sign more); a report superseding approvals counts
    /// from them too (`unproven`): it only takes an approval out of effect, and proving
    /// it must not be the way to bring one back.
    pub(crate) fn bind_approvals(
        &self,
        records: &[serde_json::Value],
        unproven: &[(String, serde_json::Value)],
    ) -> Result<(), AuthError> {
        let named = |record: &serde_json::Value, field: &str| {
            record
                .get(field)
                .and_then(serde_json::Value::as_str)
                .and_then(parse_approval_digest)
                .map(|(key, at)| (key.to_string(), at))
        };
        let mut bindings = crate::auth::lock(&self.bindings)?;
        let mut emptied = false;
        // In the trail's order: an approval raised as unproven, then approved here, is
        // not remembered as raised.
        for record in records {
            if let Some((key, at)) = named(record, "approval_digest") {
                keep_approval(&mut bindings, &key, at);
            }
            if let Some((key, _)) = named(record, "approval_unproven") {
                emptied |= keep_unproven(&mut bindings, &key);
            }
        }
        if emptied {
            eprintln!(
                "pacsguard serve: the audit trail records more than {MAX_UNPROVEN_REMEMBERED} host approvals raised as unproven (MAX_UNPROVEN_REMEMBERED): the oldest are not remembered, and are raised again when a host reports them"
            );
        }
        // After every approval: a report and an approval of one second, whatever their
        // order in the trail, leave the approval superseded (fail closed).
        let superseded = |record| named(record, "approval_superseded");
        bind_superseded(
            &mut bindings,
            records.iter().filter_map(superseded),
            unproven.iter().filter_map(|(_, record)| superseded(record)),
            self.now(),
        );
        Ok(())
    }

    /// Raises `finding` (the fleet listener's `host-approval-unproven` alert for the
    /// approval of `generation`, `digest` of `host_name` that the fleet's store holds and
    /// this trail does not) unless this trail records it raised already and not approved
    /// here since (review r24: an approval made before session 22 was raised again at
    /// every restart). The record names the approval as data (`approval_unproven`).
    pub fn raise_host_approval_unproven(
        &self,
        host_name: &str,
        generation: u64,
        digest: &str,
        finding: Finding,
    ) -> Result<(), AuthError> {
        self.ensure_bound()?;
        let key = approval_key(host_name, generation, digest);
        if crate::auth::lock(&self.bindings)?
            .unproven_raised
            .contains(&key)
        {
            return Ok(());
        }
        let mut event = Event::of_finding(self.actor("fleet"), finding);
        event.approval_unproven = Some(approval_digest(host_name, generation, digest, self.now()));
        self.record(event)?;
        if keep_unproven(&mut *crate::auth::lock(&self.bindings)?, &key) {
            eprintln!(
                "pacsguard serve: more than {MAX_UNPROVEN_REMEMBERED} host approvals were raised as unproven (MAX_UNPROVEN_REMEMBERED): the memory of which were raised is emptied, each is raised again when a host reports it"
            );
        }
        Ok(())
    }

    /// What the fleet listener tells this console of each report of a host naming its
    /// current profile (`generation`, `digest`), before it judges the report (review r24:
    /// N approved, N+1 made on the host and reported, N put back from a copy). When the
    /// newest approval this trail records for the host is of another profile, the host
    /// has left it: that is recorded on the trail (`approval_superseded`), and the
    /// approval is no longer in effect, whatever the fleet's store says later and after
    /// a restart. Recorded once per approval left (the next report finds none in
    /// effect), so the records are bounded by the approvers' decisions, never by what a
    /// host sends. `Err`: not recorded (the report is refused and sent again).
    pub fn witness_host_profile(
        &self,
        host_name: &str,
        generation: u64,
        digest: &str,
    ) -> Result<(), AuthError> {
        self.ensure_bound()?;
        let left = {
            let bindings = crate::auth::lock(&self.bindings)?;
            bindings.approvals.get(host_name).and_then(|of_host| {
                of_host
                    .in_effect
                    .as_ref()
                    .filter(|(g, d)| (*g, d.as_str()) != (generation, digest))
                    .cloned()
            })
        };
        let Some((left_generation, left_digest)) = left else {
            return Ok(());
        };
        // After the approval it supersedes, even with the clock set back.
        let at = self.approval_time(host_name, self.now())?;
        let recorded_as = approval_digest(host_name, generation, digest, at);
        let mut event = self.event(
            "fleet",
            Action::Accept,
            Outcome::Findings,
            format!(
                "host {host_name} reports profile generation {generation} ({}), not generation {left_generation} ({}) that this console approved last: that approval is superseded, and not in effect should the host go back to it (approve it again then)",
                digest.chars().take(16).collect::<String>(),
                left_digest.chars().take(16).collect::<String>()
            ),
        );
        event.approval_superseded = Some(recorded_as);
        self.record(event)?;
        keep_superseded(
            &mut *crate::auth::lock(&self.bindings)?,
            &approval_key(host_name, generation, digest),
            at,
        );
        Ok(())
    }

    /// Resolves every approval of this console (or of no console named) awaiting
    /// confirmation for longer than [`APPROVAL_RESOLVE_AFTER`]: confirmed if its record is on the trail, else dropped
    /// with a `host-approval-unrecorded` warning. Returns how many were resolved. Called
    /// at start and when the Hosts page is read.
    pub fn resolve_awaiting_approvals(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let me = self.console_id()?;
        // Read, then settled holding no connection to the store while the trail is
        // searched, once for all of them (a search may read the whole trail: one per
        // approval would be as many passes).
        let awaiting: Vec<ProfileRow> = self
            .with_fleet(|db| Ok(db.awaiting_approvals()?))?
            .into_iter()
            .filter(|row| {
                row.awaiting
                    .as_ref()
                    .is_some_and(|a| settles(&me, now, &a.id, a.at))
            })
            .collect();
        if awaiting.is_empty() {
            return Ok(0);
        }
        // Another console's approvals are on its trail, not on this one's.
        let foreign = |row: &ProfileRow| {
            row.awaiting
                .as_ref()
                .and_then(|a| console_of(&a.id))
                .is_some_and(|c| c != me)
        };
        let ids: Vec<&str> = awaiting
            .iter()
            .filter(|row| !foreign(row))
            .filter_map(|row| row.awaiting.as_ref().map(|a| a.id.as_str()))
            .collect();
        let (found, named) = self.approval_records_on_trail(&ids, None)?;
        let mut searched = found.into_iter().zip(named);
        let found: Vec<(OnTrail, Option<String>)> = awaiting
            .iter()
            .map(|row| {
                if foreign(row) {
                    (OnTrail::Elsewhere, None)
                } else {
                    searched.next().unwrap_or((OnTrail::NotFound, None))
                }
            })
            .collect();
        let mut resolved = 0;
        for (row, (on_trail, named)) in awaiting.iter().zip(found) {
            if self.resolve_approval(row, on_trail, named.as_deref())? {
                resolved += 1;
            }
        }
        Ok(resolved)
    }

    /// Confirms `row`'s approval awaiting confirmation if its record is on the trail, or
    /// drops it (with a warning on the trail, once) if its record is not among the
    /// newest [`MAX_APPROVAL_SEARCH_RECORDS`]: never in effect, and its profile waits for
    /// an approver again rather than being held by it for good. `true` when either was
    /// done. `on_trail`: what the trail's search found (made holding no connection to
    /// the store). `named`: the `approval_digest` of the record found, which binds the
    /// approval for the listener only when it names this very row (host, generation,
    /// digest, time): an id is text a store's writer can copy onto another row, so the id
    /// found confirms the row in the store (as before) but signs nothing by itself.
    fn resolve_approval(
        &self,
        row: &ProfileRow,
        on_trail: OnTrail,
        named: Option<&str>,
    ) -> Result<bool, AuthError> {
        let Some(awaiting) = &row.awaiting else {
            return Ok(false);
        };
        let what = format!(
            "the approval of profile generation {} of host {} by {} at {} for \"{}\" {}",
            row.generation,
            row.host_name,
            awaiting.by,
            awaiting.at,
            awaiting.reason,
            id_text(&awaiting.id)
        );
        let (host, generation, digest, id) = (row.host, row.generation, &row.digest, &awaiting.id);
        if on_trail == OnTrail::Found {
            let expected = approval_digest(&row.host_name, generation, digest, awaiting.at);
            // Without the guard's trail beside this console, the queue is the trail. Kept
            // before the store says approved (review r23): a host reporting in between
            // found it approved in the store and not on the trail, and was raised as
            // `host-approval-unproven` for an approval an approver made here.
            if named == Some(expected.as_str()) || self.guardian.is_none() {
                self.bind_approval(&expected)?;
            }
            self.with_fleet(|db| Ok(db.confirm_profile_approval(host, generation, digest, id)?))?;
            return Ok(true);
        }
        // Dropped by its id only: said once, by whoever dropped it.
        if self.with_fleet(|db| Ok(db.drop_profile_approval(host, generation, digest, id)?))? {
            self.approval_warning(if on_trail == OnTrail::Elsewhere {
                format!(
                    "console: {what} awaits its record on the audit trail of another console (console {}), which has not settled it within {FOREIGN_APPROVAL_ABANDONED_AFTER} s (FOREIGN_APPROVAL_ABANDONED_AFTER; that console is gone, or the row was put in the shared store): it was never in effect and is dropped; the profile waits for an approver again",
                    console_of(id).unwrap_or("?")
                )
            } else if on_trail == OnTrail::SearchedTooFar {
                format!(
                    "console: {what} has no record among the newest {MAX_APPROVAL_SEARCH_RECORDS} records of the audit trail (MAX_APPROVAL_SEARCH_RECORDS): it was never in effect and is dropped; the profile waits for an approver again"
                )
            } else {
                format!(
                    "console: {what} has no record on the audit trail (its console stopped, or the store's answer was lost, before the record was written): it was never in effect and is dropped; the profile waits for an approver again"
                )
            })?;
        }
        Ok(true)
    }

    fn approval_warning(&self, detail: String) -> Result<(), AuthError> {
        let finding = Finding::new(
            self.store_path().to_path_buf(),
            FindingKind::HostApprovalUnrecorded,
            Severity::Warning,
            detail,
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Accept;
        self.record(event)
    }

    /// The `seq` of the trail's newest record (`None`: an empty trail, or no trail
    /// beside this console).
    fn newest_trail_seq(&self) -> Result<Option<u64>, AuthError> {
        let Some(guardian) = &self.guardian else {
            return Ok(None);
        };
        let (records, _) = guardian
            .trail_page(None, 1)
            .map_err(|e| AuthError::Internal(format!("reading the audit trail: {e}")))?;
        Ok(records
            .first()
            .and_then(|r| r.get("seq"))
            .and_then(serde_json::Value::as_u64))
    }

    /// Whether the trail holds the record of approval `id` (see
    /// [`Console::approvals_on_trail`]).
    pub(crate) fn approval_on_trail(
        &self,
        id: &str,
        since: Option<u64>,
    ) -> Result<OnTrail, AuthError> {
        Ok(self
            .approvals_on_trail(&[id], since)?
            .first()
            .copied()
            .unwrap_or(OnTrail::NotFound))
    }

    /// Whether the trail holds the record of each approval of `ids` (an `accept` record
    /// whose detail names it), in one pass, newest records first, down to the record
    /// after `since` (every record when `None`), at most [`MAX_APPROVAL_SEARCH_RECORDS`].
    /// Without the guard's trail beside this console (a console run alone, in tests) the
    /// queue of the trail is all there is: a record queued counts.
    pub(crate) fn approvals_on_trail(
        &self,
        ids: &[&str],
        since: Option<u64>,
    ) -> Result<Vec<OnTrail>, AuthError> {
        Ok(self.approval_records_on_trail(ids, since)?.0)
    }

    /// [`Console::approvals_on_trail`], with the `approval_digest` each found record
    /// names (`None`: found with none, or found in the queue only, with no guard's trail
    /// beside this console).
    pub(crate) fn approval_records_on_trail(
        &self,
        ids: &[&str],
        since: Option<u64>,
    ) -> Result<(Vec<OnTrail>, Vec<Option<String>>), AuthError> {
        let mut named: Vec<Option<String>> = vec![None; ids.len()];
        let Some(guardian) = &self.guardian else {
            return Ok((vec![OnTrail::Found; ids.len()], named));
        };
        let needles: Vec<String> = ids.iter().map(|id| id_text(id)).collect();
        let mut found = vec![OnTrail::NotFound; ids.len()];
        let mut left = ids.len();
        let mut before = None;
        let mut read = 0;
        while left > 0 {
            let (records, older) = guardian
                .trail_page(before, SEARCH_PAGE.min(MAX_APPROVAL_SEARCH_RECORDS - read))
                .map_err(|e| AuthError::Internal(format!("reading the audit trail: {e}")))?;
            read += records.len();
            for r in &records {
                let seq = r.get("seq").and_then(serde_json::Value::as_u64);
                if since.is_some() && seq <= since {
                    return Ok((found, named));
                }
                if r.get("action").and_then(|a| a.as_str()) != Some("accept")
                    || r.get("finding").is_some()
                {
                    continue;
                }
                let Some(detail) = r.get("detail").and_then(|d| d.as_str()) else {
                    continue;
                };
                for ((needle, on_trail), name) in
                    needles.iter().zip(found.iter_mut()).zip(named.iter_mut())
                {
                    if *on_trail != OnTrail::Found && detail.contains(needle.as_str()) {
                        *on_trail = OnTrail::Found;
                        *name = r
                            .get("approval_digest")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_string);
                        left -= 1;
                    }
                }
            }
            match older {
                Some(_) if read >= MAX_APPROVAL_SEARCH_RECORDS => {
                    for on_trail in found.iter_mut().filter(|f| **f != OnTrail::Found) {
                        *on_trail = OnTrail::SearchedTooFar;
                    }
                    return Ok((found, named));
                }
                Some(older) => before = Some(older),
                None => return Ok((found, named)),
            }
        }
        Ok((found, named))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 22: an approval's record names host, generation and digest as data; only
    /// the form this console writes binds (a record naming something else, or the same
    /// with a time or generation spelt otherwise, binds nothing).
    #[test]
    fn only_an_approval_digest_as_the_console_writes_it_binds() {
        let digest = "ab".repeat(32);
        let written = approval_digest("ws-07", 3, &digest, 1_800_000_000);
        assert_eq!(written, format!("ws-07/3/{digest}:1800000000"));
        assert_eq!(
            parse_approval_digest(&written),
            Some((approval_key("ws-07", 3, &digest).as_str(), 1_800_000_000))
        );
        for bad in [
            format!("ws-07/03/{digest}:1"),
            format!("ws-07/3/{digest}:+1"),
            format!("ws-07/3/{}:1", "AB".repeat(32)),
            format!("ws-07/3/{}:1", &digest[..62]),
            format!("/3/{digest}:1"),
            format!("ws-07/3/{digest}"),
            "needs_second_host_approver:true".to_string(),
        ] {
            assert_eq!(parse_approval_digest(&bad), None, "{bad}");
        }
    }

    /// Review r25-fleet: an unproven `approval_superseded` line dated far in the future
    /// takes the approval before it out of effect, and no more: an approval made after it
    /// (at `now`, or after the host's newest time) is in effect.
    #[test]
    fn an_unproven_supersession_dated_in_the_future_does_not_block_later_approvals() {
        let digest = "ab".repeat(32);
        let now = 1_800_000_000;
        let approved = approval_key("ws-07", 3, &digest);
        let reported = approval_key("ws-07", 4, &"cd".repeat(32));
        let mut bindings = crate::bound::Bindings::default();
        keep_approval(&mut bindings, &approved, now - 60);
        bind_superseded(
            &mut bindings,
            std::iter::empty(),
            std::iter::once((reported, i64::MAX)),
            now,
        );
        let of_host = &bindings.approvals["ws-07"];
        assert_eq!(of_host.in_effect, None, "the approval before is superseded");
        // Approved again, at the time `approval_time` gives: after the newest.
        let again = now.max(of_host.newest.saturating_add(1));
        keep_approval(&mut bindings, &approved, again);
        assert_eq!(
            bindings.approvals["ws-07"].in_effect,
            Some((3, digest.clone())),
            "approved again after the forged line: in effect"
        );
    }

    /// Review s15-r13: the console named in an approval's id is all before its last `-`
    /// (the random part is hex), whatever the console's id holds.
    #[test]
    fn the_console_of_an_approval_is_all_before_the_random_part() {
        assert_eq!(console_of("0a1b-ff00"), Some("0a1b"));
        assert_eq!(console_of("my-console-ff00"), Some("my-console"));
        assert_eq!(console_of("ff00"), None, "an id of the version before");
        assert!(settles("my-console", 100, "my-console-ff00", 40));
        assert!(!settles("my-console", 100, "other-ff00", 40));
        assert!(settles(
            "my-console",
            100,
            "other-ff00",
            100 - FOREIGN_APPROVAL_ABANDONED_AFTER
        ));
        assert!(settles("my-console", 100, "ff00", i64::MAX), "dated ahead");
        assert!(
            settles("my-console", i64::MAX, "ff00", i64::MIN),
            "no overflow"
        );
    }
}
