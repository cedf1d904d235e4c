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

use pacsguard_events::{Action, Outcome};
use pacsguard_store::FleetSetting;

use crate::auth::{AuthError, Authenticated, Console};
use crate::roles::Role;

impl Console {
    /// The fleet's four-eyes setting as its store holds it (`None`: never set).
    pub fn host_four_eyes_setting(&self) -> Result<Option<FleetSetting>, AuthError> {
        self.with_fleet(|db| Ok(db.host_four_eyes()?))
    }

    /// Whether approving a host's profile needs a second approver here: the fleet's
    /// setting, or this console's own configuration.
    pub fn needs_second_host_approver(&self) -> Result<bool, AuthError> {
        Ok(self.second_host_approver || self.host_four_eyes_setting()?.is_some_and(|s| s.on))
    }

    /// Sets the fleet's four eyes for host approvals, as this administrator, for
    /// `reason`, after a step-up; recorded on this console's trail. Should the record
    /// fail, the setting is put back as it was (no change without its record).
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
        let who = self.actor(&auth.name).user;
        let now = self.now();
        let before = self.host_four_eyes_setting()?;
        self.with_fleet(|db| Ok(db.set_host_four_eyes(on, &who, reason, now)?))?;
        let said = |on: bool| if on { "on" } else { "off" };
        let recorded = self.record(
            self.event(
                &auth.name,
                Action::Accept,
                Outcome::Success,
                format!(
                    "{} set four eyes for host approvals (needs_second_host_approver, the fleet's setting every console on its store enforces) {}, was {} (after a step-up)",
                    auth.name,
                    said(on),
                    before.as_ref().map_or("never set", |s| said(s.on))
                ),
            )
            .with_reason(reason),
        );
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
}
