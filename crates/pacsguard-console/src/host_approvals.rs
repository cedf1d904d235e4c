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

use pacsguard_events::{Action, Outcome};
use pacsguard_store::ProfileRow;

use crate::auth::{AuthError, Authenticated, Console};
use crate::roles::Role;

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
        let now = self.now();
        self.with_fleet(|db| {
        let Some(row) = db.profile(host, generation, digest)? else {
            return Err(AuthError::Invalid(
                "no such profile generation was reported by that host".into(),
            ));
        };
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
        let who = self.actor(&auth.name).user;
        if !db.approve_profile(host, generation, digest, &who, reason, now)? {
            return Err(AuthError::Invalid(
                "that profile generation was approved meanwhile".into(),
            ));
        }
        let recorded = self.record(
            self.event(
                &auth.name,
                Action::Accept,
                Outcome::Success,
                format!(
                    "{} approved profile generation {generation} of host {} (profile {}, signed on the host at {}) after a step-up",
                    auth.name,
                    row.host_name,
                    &digest[..digest.len().min(16)],
                    row.created
                ),
            )
            .with_reason(reason),
        );
        if let Err(e) = recorded {
            // Not on the trail, not done: the approval is taken back before the fleet
            // listener can sign it.
            db.withdraw_profile_approval(host, generation, digest)?;
            return Err(e);
        }
        db.profile(host, generation, digest)?
            .ok_or_else(|| AuthError::Invalid("the approval was not kept".into()))
        })
    }
}
