//! Acknowledging a host's standing refusal: the one path of `console acknowledge-host`
//! (relayed to `serve` through the home's control socket) and of the Hosts page (issue
//! 14, session 32).
//!
//! An acknowledgement names the refusal the person saw, by its digest
//! ([`crate::host_acknowledgements::StandingRefusal::digest`], shown by the Hosts page and
//! `console hosts`). Before, `acknowledge-host` acknowledged whatever refusal stood when
//! it ran: a host refused anew between the administrator's look and their command (a
//! second restore, another copy of its home) had that new refusal acknowledged by a
//! person who never saw it. Now a digest other than the standing refusal's is refused
//! ([`AuthError::Changed`]: 409 on the page, exit 2 for the CLI), and nothing is recorded.
//!
//! On the page it is a decision like a host profile's approval: the administrator role
//! (the route's, and checked again here), a fresh step-up, a reason; with four eyes for
//! host decisions in force (the fleet's setting or `[console] needs_second_host_approver`)
//! the first administrator's acknowledgement is a request waiting for a second one, the
//! one mechanism of every four-eyes decision ([`Console::ask_second_approver`]), keyed by
//! the host and the digest: the second person acknowledges the same refusal, still the
//! one standing, or nothing is done.

use pacsguard_events::Actor;
use pacsguard_store::HostRow;

use crate::auth::{AuthError, Authenticated, Console, lock};
use crate::host_acknowledgements::{Acknowledged, StandingRefusal, check_reason};
use crate::host_approvals::HOST_REQUEST_PREFIX;
use crate::roles::Role;

/// The key of a request waiting for a second administrator to acknowledge the refusal of
/// digest `digest` of host `host`: under the host requests' prefix, so neither the
/// Differences page lists it nor an acceptance takes it for a root.
pub(crate) fn acknowledgement_request_key(host: i64, digest: &str) -> String {
    format!("{HOST_REQUEST_PREFIX}acknowledge {host}/{digest}")
}

/// The words around the two names and reasons of a four-eyes acknowledgement's record
/// ([`both_reasons`]), in characters.
const FOUR_EYES_WORDS_CHARS: usize = 41;

/// The longest reason each administrator gives for a four-eyes acknowledgement: both go
/// on one record of at most [`crate::host_revocations::MAX_REVOCATION_REASON_CHARS`] with
/// the two names ([`crate::auth::MAX_NAME_BYTES`] at most), so they always fit together.
/// Checked when the request is made: a first reason near that limit made every second
/// reason fail the combined length, and the request blocked that refusal until its
/// window ended (review of session 32).
pub const MAX_FOUR_EYES_REASON_CHARS: usize = (crate::host_revocations::MAX_REVOCATION_REASON_CHARS
    - 2 * crate::auth::MAX_NAME_BYTES
    - FOUR_EYES_WORDS_CHARS)
    / 2;

/// The longest reason an administrator may give to acknowledge a host's refusal, with
/// four eyes in force for host decisions or not: what the Hosts page's form allows and
/// what [`Console::acknowledge_host_as`] enforces. The form said a revocation's limit
/// (500) while four eyes refused more than [`MAX_FOUR_EYES_REASON_CHARS`] (session 33).
pub fn acknowledgement_reason_chars(four_eyes: bool) -> usize {
    if four_eyes {
        MAX_FOUR_EYES_REASON_CHARS
    } else {
        crate::host_revocations::MAX_REVOCATION_REASON_CHARS
    }
}

/// The reason recorded for a four-eyes acknowledgement: both administrators and theirs.
fn both_reasons(asked_by: &str, asked: &str, confirmed_by: &str, confirmed: &str) -> String {
    format!("four eyes: asked by {asked_by} ({asked}); confirmed by {confirmed_by} ({confirmed})")
}

/// Refuses a reason too long to go on one record beside the other administrator's.
fn check_four_eyes_reason(reason: &str) -> Result<(), AuthError> {
    let chars = reason.chars().count();
    if chars > acknowledgement_reason_chars(true) {
        return Err(AuthError::Invalid(format!(
            "reason: {chars} characters, more than {MAX_FOUR_EYES_REASON_CHARS} (MAX_FOUR_EYES_REASON_CHARS): with four eyes both administrators' reasons go on one record: say it shorter"
        )));
    }
    Ok(())
}

/// Whether `digest` is a refusal's digest as the console shows it (SHA-256, lower-case hex).
fn well_formed_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Refuses a `digest` field that is no refusal's digest, saying so.
fn check_digest(digest: &str) -> Result<(), AuthError> {
    if well_formed_digest(digest) {
        return Ok(());
    }
    Err(AuthError::Invalid(
        "digest: not a refusal's digest (64 lower-case hex digits, as `console hosts` and the Hosts page show it)".into(),
    ))
}

/// What is said when the refusal standing now is not the one the person saw.
fn changed(name: &str, seen: &str, now: &StandingRefusal) -> AuthError {
    AuthError::Changed(format!(
        "the standing refusal of host {name:?} changed since it was shown (refusal {} was shown, {} stands now: {}: {}): nothing was acknowledged; look at it again and acknowledge what stands now",
        short(seen),
        short(&now.digest),
        now.state,
        now.words.chars().take(200).collect::<String>()
    ))
}

/// The first 16 hex digits of a digest, as the pages shorten it.
fn short(digest: &str) -> &str {
    digest.get(..16).unwrap_or(digest)
}

impl Console {
    /// The enrolled, not revoked host `name` and its standing refusal.
    fn host_in_standing_refusal(
        &self,
        name: &str,
    ) -> Result<(HostRow, StandingRefusal), AuthError> {
        let host = self
            .with_fleet(|db| Ok(db.hosts()?))?
            .into_iter()
            .find(|h| h.name == name && h.revoked.is_none())
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "no enrolled host named {name:?} that is not revoked"
                ))
            })?;
        let standing = self.standing_refusal(&host).ok_or_else(|| {
            AuthError::Changed(format!(
                "host {name:?} is {:?}, not in a standing refusal (fork, duplicated): nothing to acknowledge",
                host.state
            ))
        })?;
        Ok((host, standing))
    }

    /// `actor` acknowledges the standing refusal of host `name` whose digest is `seen`
    /// (what they were shown) for `reason`: recorded on this console's trail first
    /// (`host-acknowledged`), then kept in the fleet's store only while the host is still
    /// in that refusal, so the store never holds an acknowledgement the trail does not
    /// record. Another refusal standing now: [`AuthError::Changed`], nothing recorded.
    /// Gives what to tell the person.
    pub fn acknowledge_host(
        &self,
        name: &str,
        seen: &str,
        actor: &Actor,
        reason: &str,
    ) -> Result<String, AuthError> {
        check_reason(reason).map_err(|e| AuthError::Invalid(format!("reason: {e}")))?;
        check_digest(seen)?;
        let (host, standing) = self.host_in_standing_refusal(name)?;
        if standing.digest != seen {
            return Err(changed(name, seen, &standing));
        }
        let what = Acknowledged {
            state: &standing.state,
            words: &standing.words,
            digest: &standing.digest,
        };
        self.record_host_acknowledged(&host, what, actor, reason)?;
        let ack = pacsguard_store::Acknowledgement {
            by: crate::host_revocations::by_whom(actor),
            reason: reason.to_string(),
            at: self.now(),
            digest: standing.digest.clone(),
        };
        let kept = self.with_fleet(|db| {
            Ok(db.acknowledge_host(host.id, &host.state, &standing.kept, &ack)?)
        })?;
        if !kept {
            return Err(AuthError::Changed(format!(
                "host {name:?} was refused anew, or revoked, while this was recorded: the acknowledgement is on this console's audit trail but not in effect; look at the host again and acknowledge what stands now"
            )));
        }
        let unnamed = if standing.names_no_branch {
            "; its words name no branch of the host's trail yet (a restored home's checkpoint, before its records): the host's first records name the branch, are raised once as another point, and must be acknowledged again"
        } else {
            ""
        };
        Ok(format!(
            "acknowledged the standing refusal of host {name:?} ({}: {}), recorded by this console for its audit trail (host-acknowledged); a refusal of another kind, or at another point, is raised again{unnamed}",
            standing.state, standing.words
        ))
    }

    /// The Hosts page's acknowledgement: `auth` (an administrator, stepped up) acknowledges
    /// the standing refusal of host `name` they were shown (`seen`) for `reason`; with
    /// four eyes in force, asks a second administrator first ([`AuthError::Awaiting`]).
    pub fn acknowledge_host_as(
        &self,
        auth: &Authenticated,
        name: &str,
        seen: &str,
        reason: &str,
    ) -> Result<String, AuthError> {
        let reason = self.decision(auth, reason)?;
        // The route asks for an administrator; the decision asks again.
        if auth.role < Role::Administrator {
            return Err(AuthError::Invalid(
                "acknowledging a host's refusal needs the administrator role".into(),
            ));
        }
        check_reason(reason).map_err(|e| AuthError::Invalid(format!("reason: {e}")))?;
        check_digest(seen)?;
        // Refused before a request is asked or taken: a request spent on a refusal that
        // no longer stands would acknowledge nothing.
        let (host, standing) = self.host_in_standing_refusal(name)?;
        if standing.digest != seen {
            return Err(changed(name, seen, &standing));
        }
        let both;
        let reason = if self.needs_second_host_approver()? {
            check_four_eyes_reason(reason)?;
            both = self.acknowledgement_four_eyes(auth, &host, &standing, reason)?;
            both.as_str()
        } else {
            reason
        };
        self.acknowledge_host(name, seen, &self.actor(&auth.name), reason)
    }

    /// Four eyes for an acknowledgement: the first administrator's is a request waiting
    /// (answered [`AuthError::Awaiting`]); a second administrator, another person,
    /// acknowledging the same refusal while it still stands takes it. Gives the reason
    /// naming both.
    fn acknowledgement_four_eyes(
        &self,
        auth: &Authenticated,
        host: &HostRow,
        standing: &StandingRefusal,
        reason: &str,
    ) -> Result<String, AuthError> {
        let key = acknowledgement_request_key(host.id, &standing.digest);
        let Some(asked) = self.waiting_requests().into_iter().find(|p| p.root == key) else {
            let what = format!(
                "acknowledge the standing refusal of host {} ({}, refusal {})",
                host.name,
                standing.state,
                short(&standing.digest)
            );
            let id = self.ask_second_approver(auth, &key, reason, &standing.digest, &what)?;
            return Err(AuthError::Awaiting(format!(
                "The acknowledgement of the standing refusal of host {} ({}, refusal {}) awaits a second administrator (four eyes, request {id}): nothing is acknowledged yet. Another administrator acknowledges the same refusal on this page within {} minutes.",
                host.name,
                standing.state,
                short(&standing.digest),
                crate::decide::FOUR_EYES_WINDOW / 60
            )));
        };
        // Both reasons go on one record of at most MAX_REVOCATION_REASON_CHARS: said
        // before the request is taken, so the first administrator's request still waits.
        let both = both_reasons(&asked.asked_by, &asked.reason, &auth.name, reason);
        check_reason(&both).map_err(|e| {
            AuthError::Invalid(format!(
                "reason: with the first administrator's reason, {e}: say it shorter"
            ))
        })?;
        self.take_waiting(auth, asked, reason, |asked| {
            if asked.seen != standing.digest {
                return Err(AuthError::Invalid(
                    "four eyes: the waiting request is for another refusal".into(),
                ));
            }
            // Two administrators when it is done, not one who was an hour ago.
            let role = lock(&self.db)?
                .account_by_id(asked.asked_by_account)?
                .and_then(|a| Role::parse(&a.role));
            if role.is_none_or(|r| r < Role::Administrator) {
                let why = format!(
                    "the first administrator {} no longer holds the administrator role",
                    asked.asked_by
                );
                self.close_waiting(auth, asked, &why)?;
                return Err(AuthError::Invalid(format!(
                    "four eyes: {why}: the request is closed"
                )));
            }
            // The refusal both saw must still be the one standing.
            let (_, now) = self.host_in_standing_refusal(&host.name)?;
            if now.digest != standing.digest {
                let why = format!(
                    "host {} was refused anew since the first administrator asked",
                    host.name
                );
                self.close_waiting(auth, asked, &why)?;
                return Err(changed(&host.name, &standing.digest, &now));
            }
            Ok(())
        })?;
        Ok(both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MAX_FOUR_EYES_REASON_CHARS: two reasons at the limit, with the longest names,
    /// fit on one record; one more character is refused.
    #[test]
    fn two_four_eyes_reasons_at_their_limit_fit_on_one_record() {
        assert_eq!(
            both_reasons("", "", "", "").chars().count(),
            FOUR_EYES_WORDS_CHARS
        );
        let name = "n".repeat(crate::auth::MAX_NAME_BYTES);
        let reason = "r".repeat(MAX_FOUR_EYES_REASON_CHARS);
        assert!(check_four_eyes_reason(&reason).is_ok());
        assert_eq!(
            check_reason(&both_reasons(&name, &reason, &name, &reason)),
            Ok(())
        );
        let over = check_four_eyes_reason(&format!("{reason}r")).expect_err("too long");
        assert!(
            over.to_string().contains("MAX_FOUR_EYES_REASON_CHARS"),
            "{over}"
        );
    }

    #[test]
    fn an_acknowledgement_request_is_a_host_request_and_names_the_refusal() {
        let d = "ab".repeat(32);
        let key = acknowledgement_request_key(7, &d);
        assert!(key.starts_with(HOST_REQUEST_PREFIX), "{key}");
        assert_ne!(key, acknowledgement_request_key(7, &"cd".repeat(32)));
        assert!(well_formed_digest(&d));
        assert!(!well_formed_digest(&"AB".repeat(32)));
        assert!(!well_formed_digest(&d[..62]));
    }
}
