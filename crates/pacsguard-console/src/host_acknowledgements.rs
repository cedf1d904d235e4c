//! Acknowledgements of hosts' standing refusals kept on the console's own trail
//! (issue 14).
//!
//! A host refused as `fork` or `duplicated` stays so until it is revoked. An
//! administrator who investigated it acknowledges it (`console acknowledge-host NAME
//! --reason`, relayed to `serve`): the console records `host-acknowledged` on its trail,
//! naming the host's certificate and the digest of the refusal acknowledged as data
//! (`Event::host_acknowledged`), then the fleet's store keeps who, why, when and that
//! digest. The fleet listener takes a host as acknowledged only while its trail records
//! it (read back at start from the proven records: an acknowledgement changes what the
//! pages show, so a forged line must not make one); one the store holds alone was
//! written in the database, and is raised.

use std::collections::HashSet;
use std::path::PathBuf;

use pacsguard_events::{Actor, Event, Finding, FindingKind, Severity};
use pacsguard_store::HostRow;

use crate::auth::{AuthError, Console, lock};

/// The most acknowledgements a console keeps in memory; past it, further ones are
/// refused (said), never dropped from what the trail proves.
pub const MAX_ACKNOWLEDGEMENTS_KEPT: usize = 65_536;

/// Whether `reason` may go on an acknowledgement's record: what the investigation found,
/// one line of at most [`crate::host_revocations::MAX_REVOCATION_REASON_CHARS`].
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err(
            "empty: say what the investigation found (why the refusal is acknowledged)".into(),
        );
    }
    crate::host_revocations::check_reason(reason)
}

/// The `host_acknowledged` of an acknowledgement's record.
fn acknowledgement_binding(fingerprint: &str, digest: &str) -> String {
    format!("{fingerprint}:{digest}")
}

/// An acknowledgement as the console writes it (two SHA-256 in lower-case hex); anything
/// else binds nothing.
fn parse_acknowledgement(text: &str) -> Option<&str> {
    let (fingerprint, digest) = text.split_once(':')?;
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex(fingerprint) && hex(digest)).then_some(text)
}

/// What one acknowledgement acknowledges: the host's standing refusal as the fleet's
/// listener names it (`pacsguard_fleet::acknowledge::Standing`).
#[derive(Clone, Copy, Debug)]
pub struct Acknowledged<'a> {
    pub state: &'a str,
    pub words: &'a str,
    pub digest: &'a str,
}

/// A host's standing refusal as the fleet's listener names it
/// (`pacsguard_fleet::acknowledge::Standing`, with its digest): what an acknowledgement
/// acknowledges, and what the store compares when it keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandingRefusal {
    pub state: String,
    pub words: String,
    /// The beginning of the stored detail that holds `words` (`Standing::kept`).
    pub kept: String,
    /// `Standing::digest`: what the person who acknowledges saw, and names.
    pub digest: String,
    /// `Standing::names_no_branch`: a fork whose words name only its size, or a
    /// checkpoint's root (a restored home's heartbeat, before its first records): the
    /// first record of the branch is another point, raised once, and is acknowledged
    /// again; the answer says so (session 33).
    pub names_no_branch: bool,
}

/// A host's standing refusal, if it is in one (the fleet's listener's
/// `acknowledge::standing`, given by `serve`: this crate does not judge states).
pub type StandingDigest = std::sync::Arc<dyn Fn(&HostRow) -> Option<StandingRefusal> + Send + Sync>;

/// A [`StandingDigest`] held by the console (its `Debug` names nothing).
pub(crate) struct StandingJudge(StandingDigest);

impl std::fmt::Debug for StandingJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandingJudge(..)")
    }
}

/// How the lists of hosts show an acknowledgement of a host's standing refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// In the store and on this console's trail: acknowledged.
    Acknowledged(String),
    /// In the store only (written in the database): said as such, not acknowledged.
    StoreOnly(String),
}

impl Console {
    /// Sets how the pages tell a host's standing refusal (`serve`, once).
    pub fn judge_standing_with(&self, digest: StandingDigest) {
        let _ = self.standing_digest.set(StandingJudge(digest));
    }

    /// The standing refusal of `host` as the fleet's listener judges it (`None`: none,
    /// or no judge set: nothing can be acknowledged).
    pub fn standing_refusal(&self, host: &HostRow) -> Option<StandingRefusal> {
        let judge = self.standing_digest.get()?;
        (judge.0)(host)
    }

    /// How the Hosts page shows the acknowledgement of `host`'s standing refusal:
    /// `None` when there is none in effect for the refusal standing now.
    pub fn acknowledgement_shown(&self, host: &HostRow) -> Result<Option<Shown>, AuthError> {
        let Some(ack) = host
            .acknowledged
            .as_ref()
            .filter(|_| host.revoked.is_none())
        else {
            return Ok(None);
        };
        let Some(judge) = self.standing_digest.get() else {
            return Ok(None);
        };
        if (judge.0)(host).map(|s| s.digest).as_deref() != Some(ack.digest.as_str()) {
            return Ok(None);
        }
        let shown = |text: &str| {
            text.chars()
                .take(crate::host_revocations::MAX_REVOCATION_REASON_CHARS)
                .collect::<String>()
        };
        Ok(Some(
            if self.host_acknowledged_on_trail(&host.fingerprint, &ack.digest)? {
                Shown::Acknowledged(format!(
                    "acknowledged by {} at {}, reason: {}",
                    shown(&ack.by),
                    ack.at,
                    shown(&ack.reason)
                ))
            } else {
                Shown::StoreOnly(format!(
                    "acknowledged in the fleet's store only (by {:?}), not on this console's trail: written in the database, not in effect",
                    shown(&ack.by)
                ))
            },
        ))
    }

    /// Whether this console's trail records an acknowledgement of the standing refusal of
    /// digest `digest` of the host whose certificate is `fingerprint`.
    pub fn host_acknowledged_on_trail(
        &self,
        fingerprint: &str,
        digest: &str,
    ) -> Result<bool, AuthError> {
        self.ensure_bound()?;
        Ok(lock(&self.bindings)?
            .acknowledged_hosts
            .contains(&acknowledgement_binding(fingerprint, digest)))
    }

    /// Records on this console's trail that `actor` acknowledged `what`, the standing
    /// refusal of `host`, for `reason` (`host-acknowledged`, info): from then on the
    /// listener takes the host as acknowledged while the store says so too.
    pub fn record_host_acknowledged(
        &self,
        host: &HostRow,
        what: Acknowledged<'_>,
        actor: &Actor,
        reason: &str,
    ) -> Result<(), AuthError> {
        self.ensure_bound()?;
        check_reason(reason).map_err(|e| AuthError::Invalid(format!("--reason: {e}")))?;
        let binding = acknowledgement_binding(&host.fingerprint, what.digest);
        if parse_acknowledgement(&binding).is_none() {
            return Err(AuthError::Invalid(format!(
                "host {}: its certificate's fingerprint in the fleet's store is not one the console writes (64 hex digits)",
                host.name
            )));
        }
        if lock(&self.bindings)?.acknowledged_hosts.len() >= MAX_ACKNOWLEDGEMENTS_KEPT {
            return Err(AuthError::Internal(format!(
                "this console keeps {MAX_ACKNOWLEDGEMENTS_KEPT} acknowledgements already (MAX_ACKNOWLEDGEMENTS_KEPT): host {}'s is not recorded",
                host.name
            )));
        }
        let finding = Finding::new(
            PathBuf::from(format!("fleet/{}", host.name)),
            FindingKind::HostAcknowledged,
            Severity::Info,
            format!(
                "host {}: its standing refusal ({}: {}) was acknowledged by {} for the reason {reason:?}; it stays {}, shown acknowledged; a refusal of another kind, or at another point, is raised again",
                host.name,
                what.state,
                what.words,
                crate::host_revocations::by_whom(actor),
                what.state
            ),
        );
        let mut event = Event::of_finding(actor.clone(), finding);
        event.reason = Some(reason.to_string());
        event.host_acknowledged = Some(binding.clone());
        self.record(event)?;
        lock(&self.bindings)?.acknowledged_hosts.insert(binding);
        Ok(())
    }

    /// At start, from the proven records of the trail: the acknowledgements recorded.
    /// Past [`MAX_ACKNOWLEDGEMENTS_KEPT`] the rest are let go, and a
    /// `console-bindings-superseded` warning says how many: an acknowledgement let go is
    /// not in effect (its host shown refused, as before it), never silently.
    pub(crate) fn bind_acknowledgements(
        &self,
        records: &[serde_json::Value],
    ) -> Result<(), AuthError> {
        let let_go = keep_acknowledgements(&mut lock(&self.bindings)?.acknowledged_hosts, records);
        if let_go == 0 {
            return Ok(());
        }
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleBindingsSuperseded,
            Severity::Warning,
            format!(
                "console: this trail records more acknowledgements of hosts' standing refusals than a console keeps (MAX_ACKNOWLEDGEMENTS_KEPT, {MAX_ACKNOWLEDGEMENTS_KEPT}): {let_go} were let go at this start and are not in effect (their hosts are shown refused; acknowledge them again after revoking the hosts that are gone)"
            ),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = pacsguard_events::Action::Account;
        self.record(event)
    }
}

/// Keeps in `kept` the acknowledgements `records` hold, up to
/// [`MAX_ACKNOWLEDGEMENTS_KEPT`] in all; how many were let go at that limit (one recorded
/// twice counts once).
fn keep_acknowledgements(kept: &mut HashSet<String>, records: &[serde_json::Value]) -> usize {
    let mut let_go = HashSet::new();
    for binding in records.iter().filter_map(|record| {
        record
            .get("host_acknowledged")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_acknowledgement)
    }) {
        if kept.len() < MAX_ACKNOWLEDGEMENTS_KEPT || kept.contains(binding) {
            kept.insert(binding.to_string());
        } else {
            let_go.insert(binding);
        }
    }
    let_go.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_acknowledgement_as_the_console_writes_it_binds() {
        let (f, d) = ("ab".repeat(32), "cd".repeat(32));
        let good = acknowledgement_binding(&f, &d);
        assert_eq!(parse_acknowledgement(&good), Some(good.as_str()));
        for bad in [
            format!("{}:{d}", "AB".repeat(32)),
            format!("{f}:{}", &d[..62]),
            f.clone(),
            format!("{f}:{d}:1"),
        ] {
            assert_eq!(parse_acknowledgement(&bad), None, "{bad}");
        }
        assert!(check_reason(" ").is_err());
        assert!(check_reason("a restore from backup, ticket 4711").is_ok());
    }

    fn recorded(n: usize) -> serde_json::Value {
        let fingerprint = format!("{n:064x}");
        serde_json::json!({ "host_acknowledged": acknowledgement_binding(&fingerprint, &"cd".repeat(32)) })
    }

    /// MAX_ACKNOWLEDGEMENTS_KEPT: the trail's acknowledgements are kept up to it, the
    /// rest counted as let go (one recorded twice, kept or not, counts once).
    #[test]
    fn acknowledgements_are_kept_up_to_their_limit_and_the_rest_counted() {
        let mut records: Vec<_> = (0..MAX_ACKNOWLEDGEMENTS_KEPT + 3).map(recorded).collect();
        records.push(recorded(0));
        records.push(recorded(MAX_ACKNOWLEDGEMENTS_KEPT + 1));
        let mut kept = HashSet::new();
        assert_eq!(keep_acknowledgements(&mut kept, &records), 3);
        assert_eq!(kept.len(), MAX_ACKNOWLEDGEMENTS_KEPT);
        assert!(kept.contains(recorded(0)["host_acknowledged"].as_str().expect("text")));
        let mut kept = HashSet::new();
        assert_eq!(
            keep_acknowledgements(&mut kept, &records[..MAX_ACKNOWLEDGEMENTS_KEPT]),
            0
        );
    }

    /// Reaching MAX_ACKNOWLEDGEMENTS_KEPT at start is said on the trail, naming it.
    #[test]
    fn acknowledgements_let_go_at_their_limit_are_said_on_the_trail() {
        use std::sync::Arc;

        let home = tempfile::tempdir().expect("tempdir");
        let (console, inbox) =
            crate::auth::test_console_in(home.path(), Arc::new(crate::guard::GuardState::new()));
        let records: Vec<_> = (0..=MAX_ACKNOWLEDGEMENTS_KEPT).map(recorded).collect();
        console
            .bind_acknowledgements(&records[..MAX_ACKNOWLEDGEMENTS_KEPT])
            .expect("bound");
        assert!(inbox.take().is_empty(), "nothing to say within the limit");
        console.bind_acknowledgements(&records).expect("bound");
        let said = inbox.take();
        assert_eq!(said.len(), 1, "{said:?}");
        let finding = said[0].finding.as_ref().expect("a finding");
        assert_eq!(finding.kind, FindingKind::ConsoleBindingsSuperseded);
        assert_eq!(finding.severity, Severity::Warning);
        assert!(
            finding.detail.contains("MAX_ACKNOWLEDGEMENTS_KEPT")
                && finding.detail.contains(": 1 were let go"),
            "{}",
            finding.detail
        );
    }
}
