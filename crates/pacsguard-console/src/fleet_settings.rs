//! Settings of the whole fleet, held in the fleet's store (issue 14, review s19-r14).
//!
//! Four eyes for host approvals was `[console] needs_second_host_approver`, a setting of
//! each console process: two consoles on one PostgreSQL fleet store could disagree, and
//! an approver who wanted no second pair of eyes went to the console without. It lives
//! where the approvals live now: the shared store's `fleet_settings`, which every console
//! on it reads at each approval. An administrator changes it, after a step-up and with a
//! reason, and the console's trail records who, what and why. A console's own
//! `needs_second_host_approver = true` still asks four eyes of its approvers whatever
//! the fleet says (a console can be stricter than its fleet, never laxer).
//!
//! The store is not where a setting is proven (review s21): whoever holds the fleet's
//! database (sqlite3 on the home's store, psql on the fleet's PostgreSQL) could turn
//! four eyes off with an UPDATE, or write `TRUE` (read as off), and no console noticed.
//! So each change a console makes is recorded on its trail with the value
//! (`Event::setting_digest`), read back at start from the proven trail like the
//! accounts' digests ([`crate::bound`]), and every read of the setting compares the
//! store with what this console's trail recorded last:
//! * the same: the store's value is in force;
//! * the store stricter (on, set on another console on the shared store, or written
//!   there): enforced, recorded on this trail with a `console-setting-altered` warning
//!   naming who the store says set it, so it holds here from now on;
//! * the store laxer (off or deleted while this trail says on), or a value no console
//!   writes: four eyes stays on here, with a `console-setting-altered` alert (once per
//!   state found), until its administrators set it (step-up, reason, recorded). A
//!   console relaxes its four eyes only by a decision on its own trail.
//!
//! And turning four eyes off where it is in force is itself a decision for two
//! administrators (the same waiting request as every four eyes): one person holding
//! the administrator and approver roles could otherwise turn it off, approve a host's
//! profile alone and turn it on again. Turning it on takes one.

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::{FleetSetting, HOST_FOUR_EYES};

use crate::auth::{AuthError, Authenticated, Console, lock};
use crate::roles::Role;

/// What the trail records of the four-eyes setting set to `on` (`<name>:<value>`, the
/// value as the store holds it).
fn setting_digest(on: bool) -> String {
    format!("{HOST_FOUR_EYES}:{on}")
}

/// The most characters of a stored setting's value, author or reason shown in an alert:
/// whoever edits the store writes them, and a reason of megabytes must not become a
/// trail record of megabytes. A longer text is cut and says how long it was.
pub const MAX_SHOWN_SETTING_CHARS: usize = 200;

pub(crate) fn shown(text: &str) -> String {
    let count = text.chars().count();
    if count <= MAX_SHOWN_SETTING_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_SHOWN_SETTING_CHARS).collect();
    format!("{head}… ({count} characters, cut at MAX_SHOWN_SETTING_CHARS)")
}

fn said(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The fleet's four eyes for host approvals as this console enforces it.
#[derive(Clone, Debug)]
pub struct FourEyesInForce {
    /// Whether this console asks a second approver of each host approval.
    pub on: bool,
    /// The setting as the fleet's store holds it (`None`: never set).
    pub stored: Option<FleetSetting>,
    /// Why what is enforced here is not what the store says (the store edited, or
    /// turned off on another console), for the Hosts page.
    pub differs: Option<String>,
    /// A request waiting for a second administrator to turn it off (filled in for the
    /// Hosts page).
    pub relaxation: Option<crate::decide::PendingAccept>,
    /// Why the trail could not take the record of how the store differs (its inbox full,
    /// the guard stopped): enforced all the same, and recorded at a later read.
    pub unrecorded: Option<String>,
}

/// Records of the fleet's setting the trail could not take, said on the log
/// rate-limited ([`Console::host_four_eyes_in_force`]).
static SETTING_UNRECORDED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// How the store's setting stands against this console's trail.
enum Against {
    Same(bool),
    /// On in the store, off (or never set) on this trail.
    Stricter,
    /// Off in the store or deleted, or a value no console writes, while this is what the
    /// trail says (or, for a strange value, not on).
    Laxer(String),
}

fn compare(stored: Option<&FleetSetting>, recorded: bool) -> Against {
    match stored {
        None if recorded => Against::Laxer(
            "the setting is gone from the fleet's store (its row deleted), while this console's trail records it on".into(),
        ),
        None => Against::Same(false),
        Some(s) if !s.well_formed() => Against::Laxer(format!(
            "the fleet's store holds {:?}, a value no console writes (true or false), said set by {} at {} for \"{}\"",
            shown(&s.value),
            shown(&s.by),
            s.at,
            shown(&s.reason)
        )),
        Some(s) if s.on == recorded => Against::Same(s.on),
        Some(s) if s.on => Against::Stricter,
        Some(s) => Against::Laxer(format!(
            "the fleet's store says off, set by {} at {} for \"{}\", while this console's trail records it on (turned off in the database, or on another console sharing the store)",
            shown(&s.by),
            s.at,
            shown(&s.reason)
        )),
    }
}

impl Console {
    /// The fleet's four-eyes setting as its store holds it (`None`: never set).
    pub fn host_four_eyes_setting(&self) -> Result<Option<FleetSetting>, AuthError> {
        self.with_fleet(|db| Ok(db.host_four_eyes()?))
    }

    /// Whether approving a host's profile needs a second approver here: the fleet's
    /// setting as this console enforces it ([`Console::host_four_eyes_in_force`]), or
    /// this console's own configuration.
    pub fn needs_second_host_approver(&self) -> Result<bool, AuthError> {
        Ok(self.second_host_approver || self.host_four_eyes_in_force()?.on)
    }

    /// The fleet's four eyes as this console enforces it: the store's setting checked
    /// against this console's trail (see the module), with the alert or the record
    /// that says so when they differ.
    pub fn host_four_eyes_in_force(&self) -> Result<FourEyesInForce, AuthError> {
        self.ensure_bound()?;
        let stored = self.host_four_eyes_setting()?;
        let recorded = lock(&self.bindings)?
            .settings
            .get(HOST_FOUR_EYES)
            .is_some_and(|v| v == "true");
        let state = format!("{stored:?}");
        // A record the trail cannot take now does not fail the read (the Hosts page, the
        // one view of the fleet, was answered 503, review r29-console2): the stricter
        // value is enforced all the same, nothing is bound or marked raised, so a later
        // read records it; the failure is said on the page and the log.
        let mut unrecorded = None;
        let mut not_recorded = |e: AuthError| {
            SETTING_UNRECORDED.refused(&format!(
                "to record how the fleet's four-eyes setting differs from this console's trail (enforced all the same): {e}"
            ));
            unrecorded = Some(e.to_string());
        };
        let (on, differs) = match compare(stored.as_ref(), recorded) {
            Against::Same(on) => {
                lock(&self.bindings)?.setting_alerted = None;
                (on, None)
            }
            Against::Stricter => {
                let s = stored.as_ref().map_or_else(String::new, |s| {
                    format!(
                        "set by {} at {} for \"{}\"",
                        shown(&s.by),
                        s.at,
                        shown(&s.reason)
                    )
                });
                let mut event = self.setting_event(
                    Severity::Warning,
                    format!(
                        "console: four eyes for host approvals is on in the fleet's store ({s}) but this console's trail did not record it (set on another console sharing the store, or written in the database): enforced here from now on, and recorded"
                    ),
                );
                event.setting_digest = Some(setting_digest(true));
                match self.record(event) {
                    Ok(()) => {
                        let mut bindings = lock(&self.bindings)?;
                        bindings
                            .settings
                            .insert(HOST_FOUR_EYES.to_string(), "true".to_string());
                        bindings.setting_alerted = None;
                    }
                    Err(e) => not_recorded(e),
                }
                (true, None)
            }
            Against::Laxer(why) => {
                let first = lock(&self.bindings)?.setting_alerted.as_deref() != Some(&state);
                if first {
                    match self.record(self.setting_event(
                        Severity::Alert,
                        format!(
                            "console: four eyes for host approvals is not as this console's trail recorded it: {why}. This console keeps asking a second approver of each host approval until its administrators set the fleet's four eyes on the Hosts page (turning it off takes two of them): investigate who changed the store"
                        ),
                    )) {
                        Ok(()) => lock(&self.bindings)?.setting_alerted = Some(state),
                        Err(e) => not_recorded(e),
                    }
                }
                (true, Some(why))
            }
        };
        Ok(FourEyesInForce {
            on,
            stored,
            differs,
            relaxation: None,
            unrecorded,
        })
    }

    fn setting_event(&self, severity: Severity, detail: String) -> Event {
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleSettingAltered,
            severity,
            detail,
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Accept;
        event
    }

    /// At start, from the trail's proven records (oldest first): the newest value of
    /// each setting this console recorded. A record the verification did not prove
    /// (`unproven`) counts only when it says on (review r21-fleet): like a session's
    /// closure, it can only make the console stricter. Ignoring it let an edit of the
    /// trail after the record turning four eyes on (that record then unproven) bring
    /// back an older proven off, so a store turned off was obeyed.
    pub(crate) fn bind_settings(
        &self,
        records: &[serde_json::Value],
        unproven: &[(String, serde_json::Value)],
    ) -> Result<(), AuthError> {
        fn setting(record: &serde_json::Value) -> Option<(&str, &str)> {
            record
                .get("setting_digest")
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.split_once(':'))
        }
        let mut bindings = lock(&self.bindings)?;
        for (name, value) in records.iter().filter_map(setting) {
            // Only the values a console records; anything else binds nothing.
            if matches!(value, "true" | "false") {
                bindings
                    .settings
                    .insert(name.to_string(), value.to_string());
            }
        }
        for (name, value) in unproven.iter().filter_map(|(_, r)| setting(r)) {
            if value == "true" {
                bindings
                    .settings
                    .insert(name.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// Sets the fleet's four eyes for host approvals, as this administrator, for
    /// `reason`, after a step-up; recorded on this console's trail, room for the record
    /// kept first. Should the record still fail (the guard stopped past its wait for the
    /// room), the setting is put back as it was (no change without its record).
    pub fn set_host_four_eyes(
        &self,
        auth: &Authenticated,
        on: bool,
        reason: &str,
    ) -> Result<(), AuthError> {
        let reason = self.decision(auth, reason)?;
        // The route asks for an administrator; asked again here (never only one gate).
        if auth.role < Role::Administrator {
            return Err(AuthError::Invalid(
                "changing the fleet's settings needs the administrator role".into(),
            ));
        }
        self.ensure_bound()?;
        // Turning four eyes off where it is in force takes two administrators (review
        // s21): one person holding the administrator and approver roles turned it off,
        // approved a host's profile alone and turned it on again, each step recorded but
        // none refused.
        let both;
        let reason = if !on && self.host_four_eyes_in_force()?.on {
            both = self.relax_four_eyes(auth, reason)?;
            both.as_str()
        } else {
            reason
        };
        let who = self.actor(&auth.name).user;
        let now = self.now();
        let before = self.host_four_eyes_setting()?;
        // Room for the record before the store changes (review r29-console): recorded
        // after, a full trail left a setting never set written "put back" by `who`, and
        // every console on a shared fleet store read the unrecorded value meanwhile.
        let room = self.room_for_record()?;
        self.with_fleet(|db| Ok(db.set_host_four_eyes(on, &who, reason, now)?))?;
        let mut event = self
            .event(
                &auth.name,
                Action::Accept,
                Outcome::Success,
                format!(
                    "{} set four eyes for host approvals (needs_second_host_approver, the fleet's setting every console on its store enforces) {}, was {} (after a step-up)",
                    auth.name,
                    said(on),
                    before.as_ref().map_or("never set", |s| if s.well_formed() {
                        said(s.on)
                    } else {
                        "a value no console writes"
                    })
                ),
            )
            .with_reason(reason);
        // What this console enforces from now on, read back from its trail at start.
        event.setting_digest = Some(setting_digest(on));
        let recorded = crate::held::record_in(room, event);
        if recorded.is_ok() {
            let mut bindings = lock(&self.bindings)?;
            bindings
                .settings
                .insert(HOST_FOUR_EYES.to_string(), on.to_string());
            bindings.setting_alerted = None;
        }
        if let Err(e) = recorded {
            let back = match &before {
                Some(s) => {
                    self.with_fleet(|db| Ok(db.set_host_four_eyes(s.on, &s.by, &s.reason, s.at)?))
                }
                // Never set: off, as it was read.
                None => self.with_fleet(|db| {
                    Ok(db.set_host_four_eyes(
                        false,
                        &who,
                        "put back: the change could not be recorded",
                        now,
                    )?)
                }),
            };
            if let Err(undo) = back {
                eprintln!(
                    "pacsguard serve: the fleet's four-eyes setting was changed but neither recorded ({e}) nor put back ({undo})"
                );
            }
            return Err(e);
        }
        Ok(())
    }

    /// The request waiting for a second administrator to turn four eyes off, if any.
    pub fn four_eyes_relaxation_waiting(&self) -> Option<crate::decide::PendingAccept> {
        let key = relax_key();
        self.waiting_requests().into_iter().find(|p| p.root == key)
    }

    /// Four eyes for turning four eyes off: the first administrator's request waits
    /// ([`AuthError::Awaiting`], nothing changed); another person, an administrator
    /// after a step-up, takes it ([`Console::take_waiting`], the one mechanism of every
    /// four eyes: its digest on the trail, [`crate::decide::FOUR_EYES_WINDOW`],
    /// [`Console::distinct_persons`]). Gives the reason the change records, naming both.
    fn relax_four_eyes(&self, auth: &Authenticated, reason: &str) -> Result<String, AuthError> {
        let Some(asked) = self.four_eyes_relaxation_waiting() else {
            let id = self.ask_second_approver(
                auth,
                &relax_key(),
                reason,
                "false",
                "turn four eyes for host approvals off for the fleet",
            )?;
            return Err(AuthError::Awaiting(format!(
                "Turning four eyes for host approvals off awaits a second administrator (four eyes, request {id}): nothing is changed yet. Another administrator sets it off on this page within {} minutes.",
                crate::decide::FOUR_EYES_WINDOW / 60
            )));
        };
        let asked = self.take_waiting(auth, asked, reason, |asked| {
            let role = lock(&self.db)?
                .account_by_id(asked.asked_by_account)?
                .and_then(|a| Role::parse(&a.role));
            if role < Some(Role::Administrator) {
                return Err(AuthError::Invalid(format!(
                    "four eyes: {} who asked to turn four eyes off is no longer an administrator",
                    asked.asked_by
                )));
            }
            Ok(())
        })?;
        Ok(format!(
            "four eyes: asked by {} ({}); confirmed by {} ({reason})",
            asked.asked_by, asked.reason, auth.name
        ))
    }
}

/// The key of the request waiting for a second administrator to turn four eyes off:
/// under the host requests' prefix, so neither the Differences page lists it nor an
/// acceptance takes it for a root ([`crate::host_approvals::HOST_REQUEST_PREFIX`]).
fn relax_key() -> String {
    format!(
        "{}setting {HOST_FOUR_EYES}=false",
        crate::host_approvals::HOST_REQUEST_PREFIX
    )
}
