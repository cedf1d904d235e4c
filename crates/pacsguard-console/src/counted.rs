//! A second factor or password refused outside sign-in (a password change, a reset
//! link's code, a step-up): counted as a failed sign-in of the account and of the
//! address, the lockout of either an alert, and the refusal recorded. One helper for
//! every such refusal, so none of them counts less or records less than another
//! (review r26-console: the reset link's refusal never said the address's pause, the
//! password change's never counted the address, and both dropped a record the trail
//! could not take).
//!
//! Fail loud: a refusal whose record (or lockout alert) cannot be queued for the trail
//! is said on the service's log and answered [`AuthError::Unrecorded`], so nothing looks
//! recorded that was not. The refusal itself stands (nothing was changed); only its
//! answer says the trail did not take it.

use std::net::IpAddr;

use pacsguard_events::{Action, Event, Outcome};
use pacsguard_store::AccountRow;

use crate::auth::{AuthError, Console};
use crate::throttle;

/// Refusals the trail could not take, written rate-limited (a flood of wrong codes
/// while the trail is full must not become a flood of log lines).
pub(crate) static UNRECORDED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// Whose failures a refusal counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counts {
    /// The account's and the address's, as a sign-in's: the refused party is not
    /// signed in (a reset link's holder), so the address is all that ties its guesses
    /// together.
    AccountAndAddress,
    /// The account's alone: a refusal inside a signed-in session (a step-up's code, a
    /// password change), whose guesser the session binds to this one account. Counting
    /// the address too protected nothing more and let any signed-in person (a viewer
    /// among them) pause sign-in and break-glass for everyone behind the hospital's
    /// shared NAT address while their own session went on (review r27-console,
    /// SECURITY.md).
    Account,
}

/// What was refused and how it is written on the trail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refused<'a> {
    /// What was refused, as the trail says it: "a password change".
    pub what: &'a str,
    /// The record's action (a step-up is a [`Action::Login`], a password an
    /// [`Action::Account`]).
    pub action: Action,
    /// Why.
    pub reason: &'a str,
    /// Whose failures it counts.
    pub counts: Counts,
}

impl Console {
    /// Counts the refusal `refused` of `account`'s check from `address` (the account's
    /// failures, and the address's as a sign-in's when [`Refused::counts`] says so;
    /// also one refused unchecked while a delay runs: each lockout, at every multiple of
    /// the limit, is one alert), records it and each lockout it reached, and gives
    /// `answer`; [`AuthError::Unrecorded`] instead when a record could not be queued.
    pub(crate) fn refused_and_counted(
        &self,
        account: &AccountRow,
        address: IpAddr,
        refused: Refused<'_>,
        answer: AuthError,
    ) -> AuthError {
        let now = self.now();
        let addr = address.to_string();
        let counting = match refused.counts {
            Counts::AccountAndAddress => self.count_failure(&addr, Some(account.id), now),
            Counts::Account => self
                .count_account_failure(account.id, now)
                .map(|counted| (false, counted)),
        };
        let (address_locked, counted) = match counting {
            Ok(counted) => counted,
            Err(e) => return e,
        };
        let name = &account.name;
        let mut records = vec![self.event(
            name,
            refused.action,
            Outcome::Failure,
            format!(
                "{name}: {} from {addr} was refused: {}",
                refused.what, refused.reason
            ),
        )];
        if let Some((failures, true)) = counted {
            records.push(self.lockout_alert(
                name,
                format!(
                    "account {name} locked for {} minutes after {failures} failed checks (the last {} from {addr})",
                    throttle::LOCKOUT_SECONDS / 60,
                    refused.what
                ),
            ));
        }
        if address_locked {
            records.push(self.lockout_alert(
                name,
                format!(
                    "sign-in from {} paused for {} minutes after {} failed checks (the last {} of {name})",
                    throttle::address_key(&addr),
                    throttle::LOCKOUT_SECONDS / 60,
                    throttle::MAX_ADDRESS_FAILURES,
                    refused.what
                ),
            ));
        }
        for record in records {
            if let Err(e) = self.record_refusal(record) {
                return e;
            }
        }
        answer
    }

    /// Queues the record of a refusal; one the trail cannot take is said on the
    /// service's log (rate-limited) and given back as [`AuthError::Unrecorded`], for the
    /// caller to answer with in place of the refusal's usual answer.
    pub(crate) fn record_refusal(&self, event: Event) -> Result<(), AuthError> {
        let detail = event.detail.clone();
        self.record(event).inspect_err(|e| {
            UNRECORDED.refused(&format!(
                "a request ({detail}), and the trail could not record its refusal: {e}"
            ));
        })
    }

    /// Records that a one-time link was refused (`who`: the trail's actor, "setup",
    /// "invitation", "reset"; `detail`: which link, from where, why) and gives the
    /// refusal of a link not valid, [`AuthError::SetupRefused`];
    /// [`AuthError::Unrecorded`] instead, said on the log, when the trail cannot take it.
    pub(crate) fn link_refused(&self, who: &str, detail: String) -> AuthError {
        let event = self.event(who, Action::Account, Outcome::Failure, detail);
        self.refused_with(event, AuthError::SetupRefused)
    }

    /// Records `event`, the record of a refusal (or of an alert the refusal raised), and
    /// gives the refusal's `answer`; [`AuthError::Unrecorded`] instead, said on the log,
    /// when the trail cannot take it. Every refusal outside sign-in's counting goes
    /// through here or [`Console::refused_and_counted`] (review r27-console: eleven
    /// sites dropped the record with `let _ =` and answered as if it were on the trail).
    pub(crate) fn refused_with(&self, event: Event, answer: AuthError) -> AuthError {
        match self.record_refusal(event) {
            Ok(()) => answer,
            Err(e) => e,
        }
    }
}
