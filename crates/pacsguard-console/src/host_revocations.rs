//! Revocations of hosts kept on the console's own trail (issue 14, review r24).
//!
//! `pacsguard console revoke-host` writes the revocation into the fleet's store, and the
//! fleet listener refused the host's certificate because the store said so. Whoever
//! holds the database (sqlite3 on the console's disk, psql) could undo it
//! (`revoked = NULL`), and the revoked host, its key perhaps stolen, reported again:
//! its records taken, its checkpoints cosigned, its profile approvals signed. The
//! revocation was not even on the console's trail.
//!
//! Now the listener records each revocation it finds in the store on the console's
//! trail, naming the host's certificate as data (`Event::host_revoked`), when the
//! revoked host next connects and at each pass of its silence check (every few
//! seconds, so also a host that never connects again); read back at start from every
//! record, proven or not (a revocation only takes access away). A certificate the trail
//! records revoked is refused whatever the store says, and the store saying otherwise is
//! raised as `host-revocation-undone`.

use pacsguard_events::{Action, Actor, Outcome};
use pacsguard_store::HostRow;

use crate::auth::{AuthError, Console, lock};

/// The longest reason a revocation's record carries (`console revoke-host --reason`).
pub const MAX_REVOCATION_REASON_CHARS: usize = 500;

/// Whether `reason` may go on a revocation's record: not empty, at most
/// [`MAX_REVOCATION_REASON_CHARS`], no control characters (one line on the trail).
pub fn check_reason(reason: &str) -> Result<(), String> {
    let chars = reason.chars().count();
    if reason.trim().is_empty() {
        return Err("empty: say why the host is revoked".into());
    }
    if chars > MAX_REVOCATION_REASON_CHARS {
        return Err(format!(
            "{chars} characters, more than {MAX_REVOCATION_REASON_CHARS} (MAX_REVOCATION_REASON_CHARS)"
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err("a control character (a line break, a tab): one line of text".into());
    }
    Ok(())
}

/// Who revokes hosts of a name through this process, and why.
#[derive(Clone, Debug)]
pub(crate) struct Revoker {
    actor: Actor,
    reason: Option<String>,
}

/// Who revokes hosts named `name` while it is held: see [`Console::revoking_as`].
pub struct Revoking<'a> {
    console: &'a Console,
    name: String,
}

impl std::fmt::Debug for Revoking<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoking")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for Revoking<'_> {
    fn drop(&mut self) {
        if let Ok(mut revokers) = lock(&self.console.revokers) {
            revokers.remove(&self.name);
        }
    }
}

/// The most revoked certificates a console keeps in memory. Revocations are made by
/// administrators, but whoever writes the fleet's store can write rows marked revoked:
/// past this many, further ones are not recorded on the trail (they stay refused while
/// the store says so) and the refusal to record says why.
pub const MAX_REVOCATIONS_KEPT: usize = 65_536;

/// A person as a revocation's record names them: the user, and who ran `sudo`; also
/// what the fleet's store keeps as who revoked (`console revoke-host` with no `serve`).
pub fn by_whom(actor: &Actor) -> String {
    match &actor.sudo_user {
        Some(sudo) => format!("{} (sudo by {sudo})", actor.user),
        None => actor.user.clone(),
    }
}

/// `, for the reason "…"`, or nothing when none was given.
fn for_reason(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |reason| format!(", for the reason {reason:?}"))
}

/// Who revoked `host` and why as the fleet's store keeps them, for a revocation this
/// process did not make: the store's word (whoever writes the store writes it), or
/// "not recorded" for a revocation made before they were kept.
pub fn stored_revoker(host: &HostRow) -> String {
    match &host.revoked_by {
        Some(by) => format!(
            " by {by:?} (console revoke-host while no serve ran, as the fleet's store says){}",
            for_reason(host.revoked_reason.as_deref())
        ),
        None => " (who revoked it and why: not recorded; revoked by a version that did not keep them, or written in the store by hand)".to_string(),
    }
}

/// What is shown for who revoked a host and why when the store does not say: a
/// revocation made before they were kept (review r28-fleet).
pub const NOT_RECORDED: &str = "not recorded";

/// Who revoked `host`, as the fleet's store keeps it, for the lists of hosts.
pub fn revoked_by(host: &HostRow) -> String {
    host.revoked_by
        .clone()
        .unwrap_or_else(|| NOT_RECORDED.to_string())
}

/// Why `host` was revoked, as [`revoked_by`]: "not given" when the person gave no reason.
pub fn revoked_reason(host: &HostRow) -> String {
    match (&host.revoked_by, &host.revoked_reason) {
        (_, Some(reason)) => reason.clone(),
        (Some(_), None) => "not given".to_string(),
        (None, None) => NOT_RECORDED.to_string(),
    }
}

/// A revoked host's state as the lists of hosts (`console hosts`, the Hosts page) show
/// it: `revoked by WHO, reason: WHY`.
pub fn revoked_summary(host: &HostRow) -> String {
    format!(
        "revoked by {}, reason: {}",
        revoked_by(host),
        revoked_reason(host)
    )
}

/// The `host_revoked` of a revocation's record.
fn revocation_digest(fingerprint: &str, at: i64) -> String {
    format!("{fingerprint}:{at}")
}

/// The certificate a `host_revoked` names, as this console writes it; anything else
/// binds nothing.
fn parse_revocation(text: &str) -> Option<&str> {
    let (fingerprint, at) = text.split_once(':')?;
    let well_formed = fingerprint.len() == 64
        && fingerprint
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && at.parse::<i64>().is_ok_and(|t| t.to_string() == at);
    well_formed.then_some(fingerprint)
}

impl Console {
    /// Whether this console's trail records the certificate `fingerprint` (SHA-256, hex)
    /// revoked.
    pub fn host_revoked_on_trail(&self, fingerprint: &str) -> Result<bool, AuthError> {
        self.ensure_bound()?;
        Ok(lock(&self.bindings)?.revoked_hosts.contains(fingerprint))
    }

    /// `actor` revokes the hosts named `name` through this process (`console revoke-host`
    /// relayed to `serve`) for `reason` while the value returned is held: their
    /// revocation is recorded as that person's, with the reason, whichever of the command and the listener's silence
    /// check records it first (review r27-fleet: the record's actor was "fleet").
    pub fn revoking_as(
        &self,
        name: &str,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<Revoking<'_>, AuthError> {
        if let Some(reason) = reason {
            check_reason(reason).map_err(|e| AuthError::Invalid(format!("--reason: {e}")))?;
        }
        let revoker = Revoker {
            actor: actor.clone(),
            reason: reason.map(str::to_string),
        };
        lock(&self.revokers)?.insert(name.to_string(), revoker);
        Ok(Revoking {
            console: self,
            name: name.to_string(),
        })
    }

    /// Records on this console's trail that host `name`, its certificate `fingerprint`,
    /// was revoked at `at` (as the fleet's store says), unless the trail records it
    /// already. From then on the certificate is refused whatever the store says.
    /// Who revoked it and why are this process's revoker's ([`Console::revoking_as`]),
    /// else what the store kept beside the revocation (`console revoke-host` run with no
    /// `serve`, review r28-fleet), said to be the store's word, else "not recorded".
    pub fn record_host_revoked(&self, host: &HostRow, at: i64) -> Result<(), AuthError> {
        let (name, fingerprint) = (host.name.as_str(), host.fingerprint.as_str());
        self.ensure_bound()?;
        if parse_revocation(&revocation_digest(fingerprint, at)).is_none() {
            return Err(AuthError::Invalid(format!(
                "host {name}: its certificate's fingerprint in the fleet's store is not one the console writes (64 hex digits)"
            )));
        }
        {
            let bindings = lock(&self.bindings)?;
            if bindings.revoked_hosts.contains(fingerprint) {
                return Ok(());
            }
            if bindings.revoked_hosts.len() >= MAX_REVOCATIONS_KEPT {
                return Err(AuthError::Internal(format!(
                    "host {name}: this console keeps {MAX_REVOCATIONS_KEPT} revoked certificates already (MAX_REVOCATIONS_KEPT): the fleet's store holds far more revoked hosts than were ever revoked here; its revocation is not recorded on the trail (it stays refused while the store says so)"
                )));
            }
        }
        let revoker = lock(&self.revokers)?.get(name).cloned();
        let mut event = self.event(
            "fleet",
            Action::Accept,
            Outcome::Success,
            format!(
                "host {name} (certificate SHA-256 {}) was revoked at {at} in the fleet's store{}: recorded here, its certificate is refused from now on whatever the store says",
                &fingerprint[..16],
                match &revoker {
                    Some(by) => format!(
                        " by {} (console revoke-host){}",
                        by_whom(&by.actor),
                        for_reason(by.reason.as_deref())
                    ),
                    None => stored_revoker(host),
                }
            ),
        );
        if let Some(revoker) = &revoker {
            event.actor = revoker.actor.clone();
        }
        event.host_revoked = Some(revocation_digest(fingerprint, at));
        self.record(event)?;
        lock(&self.bindings)?
            .revoked_hosts
            .insert(fingerprint.to_string());
        self.close_revoked_findings(host, at, revoker.as_ref())
    }

    /// Closes every open alert the console raised about the enrolment `host`, revoked at
    /// `at` (by `revoker`, when `console revoke-host` did it), each recorded closed on
    /// the trail so the next start leaves it closed (session 49, review rv49-gate: the
    /// revoked enrolment's `host-pinned-other` stayed open for good after an honest
    /// enrolment again, still telling to re-enrol). Its revocation is recorded first:
    /// a closing that cannot be recorded is an error, and the alert is listed again at
    /// the next start, where the one revoked is refused all the same.
    fn close_revoked_findings(
        &self,
        host: &HostRow,
        at: i64,
        revoker: Option<&Revoker>,
    ) -> Result<(), AuthError> {
        let by = match revoker {
            Some(by) => format!(" by {} (console revoke-host)", by_whom(&by.actor)),
            None => stored_revoker(host),
        };
        let when = u64::try_from(at).map_or_else(
            |_| at.to_string(),
            |secs| {
                crate::guard::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            },
        );
        let keys = self
            .guard
            .close_enrolment_findings(&host.name, &host.fingerprint);
        for key in keys {
            let detail = crate::guard::host_acknowledgement_detail(
                &format!(
                    "closed host {}'s alert: enrolment revoked{by} at {when} (certificate SHA-256 {})",
                    host.name,
                    host.fingerprint.get(..16).unwrap_or_default()
                ),
                &key,
            );
            self.record(self.event("fleet", Action::Finding, Outcome::Success, detail))?;
        }
        Ok(())
    }

    /// An alert just raised about host `host`'s enrolment `identity` (its certificate's
    /// SHA-256, hex): when this console's trail records that enrolment revoked, it is
    /// closed at once, recorded closed on the trail saying why (session 50, review
    /// rv49-gate, MUST: an alert that came after the revocation, from a report judged
    /// while it was made or a timer, stayed open for good, the revocation having closed
    /// that enrolment's alerts before it came). Those of
    /// [`crate::guard::OUTLIVE_REVOCATION`] stay. Raised after its revocation was
    /// recorded or before it closed the enrolment's alerts: one of the two closes it.
    /// Returns how many were closed.
    pub fn close_if_revoked(&self, host: &str, identity: &str) -> Result<usize, AuthError> {
        self.ensure_bound()?;
        let identity = identity.to_ascii_lowercase();
        if !lock(&self.bindings)?.revoked_hosts.contains(&identity) {
            return Ok(0);
        }
        let keys = self.guard.close_enrolment_findings(host, &identity);
        for key in &keys {
            self.record_closed(
                &format!(
                    "closed host {host}'s alert at once: raised after its enrolment was revoked (certificate SHA-256 {}, its revocation recorded on this console's trail): a revoked enrolment's certificate is refused, and what is said of it is over",
                    identity.get(..16).unwrap_or_default()
                ),
                key,
            )?;
        }
        Ok(keys.len())
    }

    /// At the console's start, once its alerts about hosts are listed again from the
    /// trail: closes those of every enrolment the trail records revoked (but
    /// [`crate::guard::OUTLIVE_REVOCATION`]'s), each recorded closed on the trail, so
    /// the next start lists them no more (session 50, review rv49-gate, MUST: a version
    /// before closed none at a revocation, and they stayed open for good). Returns how
    /// many were closed; a closing that cannot be recorded is an error, and the next
    /// start closes it again.
    pub fn close_revoked_alerts_at_start(&self) -> Result<usize, AuthError> {
        self.ensure_bound()?;
        let revoked = lock(&self.bindings)?.revoked_hosts.clone();
        let closed = self
            .guard
            .close_revoked_enrolments(|identity| revoked.contains(&identity.to_ascii_lowercase()));
        for (host, identity, key) in &closed {
            self.record_closed(
                &format!(
                    "closed host {host}'s alert at the console's start: its enrolment (certificate SHA-256 {}) is recorded revoked on this console's trail, and a revoked enrolment's alerts are over (revoked by a version that did not close them, or raised after its revocation)",
                    identity.get(..16).unwrap_or_default()
                ),
                key,
            )?;
        }
        Ok(closed.len())
    }

    /// Records on the trail that the console closed the host's finding of key `key`
    /// (`detail`: why), as an acknowledgement is read back at start.
    fn record_closed(&self, detail: &str, key: &str) -> Result<(), AuthError> {
        let detail = crate::guard::host_acknowledgement_detail(detail, key);
        self.record(self.event("fleet", Action::Finding, Outcome::Success, detail))
    }

    /// At start, from every record of the trail, proven or not (oldest first): the
    /// certificates recorded revoked.
    pub(crate) fn bind_revocations(
        &self,
        records: &[serde_json::Value],
        unproven: &[(String, serde_json::Value)],
    ) -> Result<(), AuthError> {
        let mut bindings = lock(&self.bindings)?;
        for record in records.iter().chain(unproven.iter().map(|(_, r)| r)) {
            if let Some(fingerprint) = record
                .get("host_revoked")
                .and_then(serde_json::Value::as_str)
                .and_then(parse_revocation)
                && bindings.revoked_hosts.len() < MAX_REVOCATIONS_KEPT
            {
                bindings.revoked_hosts.insert(fingerprint.to_string());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod reason_tests {
    use super::*;

    /// Review rv49-gate (MUST): `console revoke-host` closes every alert the console
    /// raised about the revoked enrolment, each recorded closed on the trail (so the next
    /// start lists it no more) naming who revoked it and when; another enrolment's of the
    /// name stays open.
    #[test]
    fn revoking_an_enrolment_closes_its_alerts_on_the_trail() {
        use std::sync::Arc;

        let home = tempfile::tempdir().expect("tempdir");
        let guard = Arc::new(crate::guard::GuardState::new());
        let (console, inbox) = crate::auth::test_console_in(home.path(), Arc::clone(&guard));
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        let raised = |identity: &str| crate::guard::HostFinding {
            severity: pacsguard_events::Severity::Alert,
            kind: "host-pinned-other".into(),
            path: "fleet/h1".into(),
            detail: "host h1: the host refuses every connection; re-enrol".into(),
            time: "t1".into(),
            source: "console".into(),
            identity: Some(identity.to_string()),
        };
        guard.host_finding("h1", &raised(&old));
        guard.host_finding("h1", &raised(&new));
        let key = raised(&old).key("h1");
        let row = revoked_row("h1", &old, 1_800_000_000);
        let actor = Actor {
            user: "alice".into(),
            uid: 1000,
            sudo_user: None,
        };
        let revoking = console
            .revoking_as("h1", &actor, Some("re-enrolled"))
            .expect("revoking");
        inbox.take();
        console
            .record_host_revoked(&row, 1_800_000_000)
            .expect("recorded");
        drop(revoking);
        assert_eq!(guard.enrolment_open("h1", &old), (0, 0));
        assert_eq!(
            guard.enrolment_open("h1", &new),
            (1, 0),
            "another enrolment's"
        );
        let records: Vec<serde_json::Value> = inbox
            .take()
            .iter()
            .map(|e| serde_json::to_value(e).expect("json"))
            .collect();
        let closing = records
            .iter()
            .find(|r| crate::guard::acknowledged_host_finding(r).as_deref() == Some(&key))
            .unwrap_or_else(|| panic!("no closing of the revoked one's alert: {records:?}"));
        let detail = closing["detail"].as_str().expect("detail");
        assert!(
            detail.contains("enrolment revoked by") && detail.contains("alice"),
            "{detail}"
        );
        assert!(detail.contains("2027-01-15T08:00:00"), "{detail}");
    }

    /// A host row of the fleet's store: `name`, certificate `fingerprint`, revoked at `at`.
    fn revoked_row(name: &str, fingerprint: &str, at: i64) -> HostRow {
        HostRow {
            id: 1,
            name: name.into(),
            fingerprint: fingerprint.into(),
            enrolled: 1,
            revoked: Some(at),
            last_contact: 0,
            interval: 60,
            trail_key: None,
            size: 0,
            peaks: Vec::new(),
            checkpoint: None,
            state: String::new(),
            detail: String::new(),
            revoked_by: None,
            revoked_reason: None,
            trail_grew: 0,
            trail_promise: 0,
            acknowledged: None,
            again: Default::default(),
        }
    }

    /// An alert the console raised about enrolment `identity` of `h1`, of kind `kind`.
    fn raised_about(kind: &str, identity: &str, time: &str) -> crate::guard::HostFinding {
        crate::guard::HostFinding {
            severity: pacsguard_events::Severity::Alert,
            kind: kind.into(),
            path: "fleet/h1".into(),
            detail: format!("host h1 (certificate SHA-256 {identity}): {kind}"),
            time: time.into(),
            source: "console".into(),
            identity: Some(identity.to_string()),
        }
    }

    /// The keys of the host findings the records close, with their details.
    fn closings(records: &[pacsguard_events::Event]) -> Vec<(String, String)> {
        records
            .iter()
            .map(|e| serde_json::to_value(e).expect("json"))
            .filter_map(|r| {
                let key = crate::guard::acknowledged_host_finding(&r)?;
                Some((key, r["detail"].as_str().unwrap_or_default().to_string()))
            })
            .collect()
    }

    /// Session 50 (review rv49-gate, MUST): an alert about an enrolment raised after its
    /// revocation was recorded (a report judged while it was made, a timer) stayed open
    /// for good: the revocation had closed that enrolment's alerts before it came. It is
    /// closed at once, recorded why; another enrolment of the name, and the alert about
    /// the store's edit (`host-revocation-undone`), stay open.
    #[test]
    fn an_alert_raised_after_its_enrolments_revocation_is_closed_at_once() {
        use std::sync::Arc;

        let home = tempfile::tempdir().expect("tempdir");
        let guard = Arc::new(crate::guard::GuardState::new());
        let (console, inbox) = crate::auth::test_console_in(home.path(), Arc::clone(&guard));
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        console
            .record_host_revoked(&revoked_row("h1", &old, 1_800_000_000), 1_800_000_000)
            .expect("recorded");
        inbox.take();
        let late = raised_about("host-silent", &old, "t2");
        let undone = raised_about("host-revocation-undone", &old, "t3");
        let theirs = raised_about("host-silent", &new, "t4");
        for f in [&late, &undone, &theirs] {
            guard.host_finding("h1", f);
            console
                .close_if_revoked("h1", f.identity.as_deref().expect("named"))
                .expect("closed");
        }
        assert_eq!(
            guard.enrolment_open("h1", &new),
            (1, 0),
            "another enrolment's"
        );
        assert_eq!(
            guard.enrolment_open("h1", &old.to_uppercase()),
            (1, 0),
            "the store's edit stays open"
        );
        let closed = closings(&inbox.take());
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!(closed[0].0, late.key("h1"));
        assert!(
            closed[0]
                .1
                .contains("raised after its enrolment was revoked"),
            "{closed:?}"
        );
    }

    /// Session 50 (review rv49-gate, MUST): the alerts of an enrolment revoked before
    /// this version closed them at a revocation (listed again at every start, the
    /// revoked one's `host-profile-unapproved` beside the healthy enrolment of the name
    /// approved) are closed at the console's start, each recorded on its trail so the
    /// next start lists it no more. Not the new enrolment's, not the store's edit.
    #[test]
    fn the_alerts_of_an_enrolment_revoked_before_are_closed_at_start() {
        use std::sync::Arc;

        let home = tempfile::tempdir().expect("tempdir");
        let guard = Arc::new(crate::guard::GuardState::new());
        let (console, inbox) = crate::auth::test_console_in(home.path(), Arc::clone(&guard));
        let (old, new) = ("c".repeat(64), "d".repeat(64));
        let unapproved = raised_about("host-profile-unapproved", &old, "t1");
        let pinned = raised_about("host-pinned-other", &old, "t2");
        let undone = raised_about("host-revocation-undone", &old, "t3");
        let theirs = raised_about("host-profile-unapproved", &new, "t4");
        // As a version before left them: revoked on the trail, its alerts open (listed
        // again at this start from the trail).
        console
            .record_host_revoked(&revoked_row("h1", &old, 1_800_000_000), 1_800_000_000)
            .expect("recorded");
        inbox.take();
        for f in [&unapproved, &pinned, &undone, &theirs] {
            guard.host_finding("h1", f);
        }
        assert_eq!(console.close_revoked_alerts_at_start().expect("swept"), 2);
        assert_eq!(guard.enrolment_open("h1", &new), (1, 0));
        assert_eq!(guard.enrolment_open("h1", &old), (1, 0), "the store's edit");
        let mut closed: Vec<String> = closings(&inbox.take())
            .into_iter()
            .map(|(key, detail)| {
                assert!(detail.contains("at the console's start"), "{detail}");
                key
            })
            .collect();
        closed.sort();
        let mut expected = vec![unapproved.key("h1"), pinned.key("h1")];
        expected.sort();
        assert_eq!(closed, expected);
        // Once: the next pass finds nothing more.
        assert_eq!(console.close_revoked_alerts_at_start().expect("swept"), 0);
    }

    /// A revocation's reason is one line of at most MAX_REVOCATION_REASON_CHARS.
    #[test]
    fn a_reason_is_one_line_up_to_its_limit() {
        assert!(check_reason(&"é".repeat(MAX_REVOCATION_REASON_CHARS)).is_ok());
        let long =
            check_reason(&"é".repeat(MAX_REVOCATION_REASON_CHARS + 1)).expect_err("too long");
        assert!(long.contains("MAX_REVOCATION_REASON_CHARS"), "{long}");
        assert!(check_reason("  ").is_err());
        assert!(check_reason("two\nlines").is_err());
        assert!(check_reason("a\u{1b}[2Jclear").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_revocation_as_the_console_writes_it_binds() {
        let fingerprint = "ab".repeat(32);
        assert_eq!(
            parse_revocation(&revocation_digest(&fingerprint, 1_800_000_000)),
            Some(fingerprint.as_str())
        );
        for bad in [
            format!("{}:1", "AB".repeat(32)),
            format!("{}:1", &fingerprint[..62]),
            format!("{fingerprint}:+1"),
            fingerprint.clone(),
            "x:1".to_string(),
        ] {
            assert_eq!(parse_revocation(&bad), None, "{bad}");
        }
    }
}
