//! Operators acknowledge alerts (issue 13 item 3): "seen, handling it", with a comment,
//! on the trail and on the alerts page. An acknowledgement changes no signed state: the
//! finding stays open until an approver's acceptance takes it in, so it needs no step-up,
//! only the operator role (asked by the route and here again). An alert marked undone
//! (its root found as profiled since, [`crate::guard::OpenFinding::undone`]) is closed by
//! it: nothing is left to accept, and now a person has seen it; so is a finding outside
//! its root's tree or every root, which nothing else can settle. So are the undone
//! findings dropped from a root's page past [`crate::guard::MAX_OPEN_FINDINGS`], counted:
//! no acceptance or check forgets them (none signed them), only this acknowledgement of
//! how many a person was shown.

use pacsguard_events::{Action, Outcome};

use crate::auth::{AuthError, Authenticated, Console};
use crate::roles::Role;

impl Console {
    /// Acknowledges the open finding `id` as `auth`, with `comment` (1 to
    /// [`crate::decide::MAX_REASON_BYTES`] bytes, no hidden characters): recorded on the
    /// trail first, then shown with the finding.
    pub fn acknowledge_finding(
        &self,
        auth: &Authenticated,
        id: u64,
        comment: &str,
    ) -> Result<(), AuthError> {
        if auth.role < Role::Operator {
            return Err(AuthError::Invalid(
                "acknowledging an alert needs the operator role".into(),
            ));
        }
        let comment = crate::decide::reason_of(comment)?;
        let finding = self.guard.open_finding(id).ok_or_else(|| {
            AuthError::Invalid(format!(
                "no open finding {id} (closed by an acceptance, dropped from the page, or unknown)"
            ))
        })?;
        if let Some(already) = &finding.acknowledged {
            return Err(AuthError::Invalid(format!(
                "finding {id} is acknowledged already ({already})"
            )));
        }
        let detail = format!(
            "{} acknowledged finding {id}: {} {} {} (reported {}); {}",
            auth.name,
            finding.severity,
            finding.kind,
            finding.path,
            finding.time,
            if finding.undone {
                "undone (its root was found as profiled since): closed"
            } else if finding.settled_only_by_a_person() {
                "outside its root's tree or every root (no acceptance or check settles it): closed"
            } else {
                "it stays open until an acceptance"
            }
        );
        // A host's finding is named by its key too: it is rebuilt at the console's next
        // start from what is stored, and must stay closed (issue 14, session 45).
        let detail = match &finding.host_key {
            Some(key) => crate::guard::host_acknowledgement_detail(&detail, key),
            None => detail,
        };
        self.record(
            self.event(&auth.name, Action::Finding, Outcome::Success, detail)
                .with_reason(comment),
        )?;
        let when = crate::guard::rfc3339(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(self.now()).unwrap_or_default()),
        );
        // Closed meanwhile by an acceptance: the record stands, nothing left to mark.
        self.guard
            .acknowledge(id, format!("{} at {when}: {comment}", auth.name));
        Ok(())
    }

    /// Acknowledges, as `auth` with `comment`, the `count` undone findings dropped from
    /// the page of `root` as a form posts it back (empty: outside every root),
    /// [`crate::guard::OpenFindings::dropped_undone`]: the count the page showed and the
    /// number of the last finding it counted (`last`), which must be those now (one
    /// dropped since was not shown to this person).
    /// Recorded on the trail first (who, when, how many, which root, the comment), then
    /// forgotten. The only way such a count leaves the pages (review rv39: `accept ROOT`
    /// forgot a deleted web shell's dropped alert).
    pub fn acknowledge_dropped_findings(
        &self,
        auth: &Authenticated,
        root: &str,
        (count, last): (u64, u64),
        comment: &str,
    ) -> Result<(), AuthError> {
        if auth.role < Role::Operator {
            return Err(AuthError::Invalid(
                "acknowledging dropped findings needs the operator role".into(),
            ));
        }
        let comment = crate::decide::reason_of(comment)?;
        let root = self.guard.root_named(root);
        let whose = if root.is_empty() {
            "outside every root".to_string()
        } else {
            format!("of {root}")
        };
        let open = self.guard.open_findings();
        let now = open.dropped_undone.get(&root).copied().unwrap_or(0);
        let last_now = open.dropped_undone_last.get(&root).copied().unwrap_or(0);
        if now == 0 {
            return Err(AuthError::Invalid(format!(
                "no undone findings {whose} are dropped from the pages (acknowledged already, or unknown)"
            )));
        }
        // The count and the last finding counted, as the page showed them: a form shown
        // before another was dropped (a second tab, the back button, a replay) names
        // another set, whatever its count (review rv39b).
        if count != now || last != last_now {
            return Err(AuthError::Invalid(format!(
                "{now} undone findings {whose} are dropped from the pages now, not {count}: read the page again and acknowledge what it shows"
            )));
        }
        let mut event = self
            .event(
                &auth.name,
                Action::Finding,
                Outcome::Success,
                format!(
                    "{} acknowledged {count} undone findings {whose} dropped from the pages \
                     (alerts and findings about something that happened, past the {} kept per \
                     root, not shown; each on the audit trail as it came): forgotten",
                    auth.name,
                    crate::guard::MAX_OPEN_FINDINGS
                ),
            )
            .with_reason(comment);
        // None left of this root: the newest record of its count, so a restart after
        // a stop that recorded it does not count them again (crate::dropped_trail).
        event.dropped_undone = Some(crate::dropped_trail::dropped_binding(
            &root,
            crate::guard::Unseen {
                findings: 0,
                alerts: 0,
                last,
            },
        ));
        self.record(event)?;
        // Acknowledged by another person meanwhile: at most what is counted goes.
        self.guard.acknowledge_dropped(&root, count, last);
        Ok(())
    }

    /// Acknowledges, as `auth` with `comment`, what this start said of the count of
    /// undone findings dropped from the pages
    /// ([`crate::guard::OpenFindings::dropped_unread`]: the last run killed, records not
    /// proven): recorded on the trail (who, when, what was said, the comment), then
    /// taken off the overview and the alerts page. Before (issue 13, session 42) nothing
    /// took it off: a start after a `serve` killed said it on every page for the whole
    /// run. The counts it names stay, each acknowledged on its own.
    pub fn acknowledge_dropped_unread(
        &self,
        auth: &Authenticated,
        comment: &str,
    ) -> Result<(), AuthError> {
        if auth.role < Role::Operator {
            return Err(AuthError::Invalid(
                "acknowledging what the start said of the dropped counts needs the operator role"
                    .into(),
            ));
        }
        let comment = crate::decide::reason_of(comment)?;
        let Some(said) = self.guard.open_findings().dropped_unread else {
            return Err(AuthError::Invalid(
                "nothing is said of the dropped counts now (acknowledged already)".into(),
            ));
        };
        let event = self
            .event(
                &auth.name,
                Action::Finding,
                Outcome::Success,
                format!(
                    "{} acknowledged what this start of the console said of the count of \
                     undone findings dropped from the pages (taken off the pages): {said}",
                    auth.name
                ),
            )
            .with_reason(comment);
        self.record(event)?;
        self.guard.take_dropped_unread();
        Ok(())
    }
}
