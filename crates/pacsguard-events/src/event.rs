//! Events: one record per action or finding, and the bus that hands them to every sink.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::escape::escape_path;
use crate::finding::Finding;

/// Who caused an event: the operating-system user running the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub user: String,
    pub uid: u32,
    /// The user who ran `sudo`, when there is one: the person behind a root command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A home was created.
    Init,
    /// A baseline was built or extended and signed.
    Profile,
    /// Trees were verified against the baseline.
    Check,
    /// Reviewed differences were taken into the baseline.
    Accept,
    /// Files were screened for malicious content.
    Scan,
    /// A copy of a file was put into the home's quarantine vault (the original untouched).
    Quarantine,
    /// A copy of a DICOM file was written with its preamble zeroed.
    Sanitize,
    /// A detector reported something (the finding is attached).
    Finding,
    /// Something happened to the audit trail itself (a torn record discarded).
    Audit,
    /// The trail's delivery to a destination (the console, a syslog collector): records
    /// that went as stand-ins, a long outage and its end, a stop's records not
    /// confirmed, a `fleet/` holding no enrolment. Not `audit`: the trail's recording
    /// went on, and a SIEM must not read DICOM 110133 Audit Recording Stopped in them
    /// (review rv36-deliver).
    Delivery,
    /// A watcher started, stopped, or finished a scrub cycle (re-verification).
    Watch,
    /// A long-running guard is alive (see [`Event::heartbeat`]); a gap between two
    /// heartbeats means it was stopped without a clean shutdown.
    Heartbeat,
    /// A person signed in to the console, or failed to (DICOM 110114 User
    /// Authentication, 110122 Login).
    Login,
    /// A console session ended: signed out, idle or past its absolute limit (DICOM
    /// 110114 User Authentication, 110123 Logout).
    Logout,
    /// A console account changed: created at first setup, second factor enrolled,
    /// recovery codes issued or used, role changed (DICOM 110136/110137 Security Roles).
    Account,
    /// Files of a guarded tree were found in backups (`recover`) or restored from them
    /// (`recover --apply`, one record per file restored), or the backups' readiness measured.
    Recover,
    /// A medium (CD, DVD, USB, ISO image) was screened by `media import` and its clean
    /// referenced instances copied into an import folder (one record per copy, one for
    /// the import with its signed manifest).
    MediaImport,
    /// The DICOM gateway admitted or refused an association, relayed an instance, or
    /// an association ended (DICOM 110104 DICOM Instances Transferred; refusals 110113
    /// Security Alert).
    Gateway,
    /// Break-glass: the console's sealed emergency account was used (its start is an
    /// `emergency-access` alert, DICOM 110127), each request made with it is recorded
    /// (outcome `started`, before it is handled), and its end (outcome `success`, DICOM
    /// 110138 Emergency Override Stopped, however it ends: timed out, signed out, ended by an
    /// administrator or by a new seal). Sealing is an `account` change (DICOM 110137).
    Emergency,
}

impl Action {
    /// Every action, in the order above: the vocabulary of `audit show --action`.
    pub const ALL: [Action; 19] = [
        Action::Init,
        Action::Profile,
        Action::Check,
        Action::Accept,
        Action::Scan,
        Action::Quarantine,
        Action::Sanitize,
        Action::Finding,
        Action::Audit,
        Action::Delivery,
        Action::Watch,
        Action::Heartbeat,
        Action::Login,
        Action::Logout,
        Action::Account,
        Action::Recover,
        Action::MediaImport,
        Action::Gateway,
        Action::Emergency,
    ];

    /// The stable kebab-case name written into records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Init => "init",
            Action::Profile => "profile",
            Action::Check => "check",
            Action::Accept => "accept",
            Action::Scan => "scan",
            Action::Quarantine => "quarantine",
            Action::Sanitize => "sanitize",
            Action::Finding => "finding",
            Action::Audit => "audit",
            Action::Delivery => "delivery",
            Action::Watch => "watch",
            Action::Heartbeat => "heartbeat",
            Action::Login => "login",
            Action::Logout => "logout",
            Action::Account => "account",
            Action::Recover => "recover",
            Action::MediaImport => "media-import",
            Action::Gateway => "gateway",
            Action::Emergency => "emergency",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// About to change what is trusted (written and synced before the change is made, so
    /// a crash in between still leaves a trace).
    Started,
    Success,
    /// Completed, with findings that need attention.
    Findings,
    /// Did not complete.
    Failure,
}

/// One record for the audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    pub actor: Actor,
    pub action: Action,
    pub outcome: Outcome,
    /// The paths concerned (roots for a command, the path of a finding).
    #[serde(
        serialize_with = "serialize_paths",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub objects: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
    /// Why, for actions that require a reason (`accept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short human summary.
    pub detail: String,
    /// For heartbeats: seconds until the next one is due; 0 announces a clean stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_seconds: Option<u64>,
    /// For `profile` and `accept`: the baseline generation about to be signed (outcome
    /// `started`) or signed. The trail's checkpoints carry it, so the store and the trail
    /// each state the other's last known state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// For heartbeats: the kernel's boot id and milliseconds since boot (a clock no one
    /// can set), so the time between two heartbeats of one boot is measured truly even
    /// when the wall clock was stepped in between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boottime_ms: Option<u64>,
    /// For the watcher's saves of what it saw (`watch`, outcome `started` then `success`):
    /// the base64 tag of the whole kept row set, which the trail's checkpoints carry so a
    /// store put back to an older set disagrees with the trail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_seen: Option<String>,
    /// For a console request that waits for a second person (four eyes): `<id>:<SHA-256
    /// hex>` of what was asked (root, reason, who, when, the findings shown). The request
    /// itself waits in the store, where root can edit it; this record is what the
    /// confirmation is checked against. `<id>:closed` on the record that closes a request
    /// otherwise (voided by a new seal, dropped as altered): the newest record of a
    /// request is the one that counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    /// For a console account created or whose role changed: `<id>:<SHA-256 hex>` of
    /// what the console relies on (name, role, creation time, creator). The account lives
    /// in the store, where root can edit it; the newest record of an account is what its
    /// row is checked against at every sign-in and request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_digest: Option<String>,
    /// For a console session opened: the SHA-256 hex of what binds it (its token's
    /// digest, account and opening time; never the token). Sessions live in the store,
    /// where root could plant one for any account with sqlite3; a session row with no such
    /// record is refused. `<that hex>:closed` on the record of its end (sign-out, expiry,
    /// revocation, a credential or role change): a row put back afterwards is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_digest: Option<String>,
    /// For a console enrolment link (invitation) issued: `<account id>:<SHA-256 hex>` of
    /// its token's digest, account and expiry; `<account id>:closed` when it is spent.
    /// The link waits in the store, where root could plant a second one for the invited
    /// account; only the link the newest record names is redeemed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_digest: Option<String>,
    /// For a setting of the fleet a console recorded (set by its administrator, or found
    /// in the fleet's store and enforced): `<setting name>:<value>`. The setting lives in
    /// the fleet's store, where whoever holds the database can edit it; the newest record
    /// on a console's trail is what that console enforces at least.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting_digest: Option<String>,
    /// For an approval of a host's profile a console recorded (issue 14, session 22):
    /// `<host name>/<generation>/<profile digest>:<approval time>`. The approval row lives
    /// in the fleet's store, where whoever holds the database can write one; the console's
    /// fleet listener signs an approval only when its own trail holds this record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_digest: Option<String>,
    /// For a host's report a console witnessed naming another profile than the one its
    /// newest approval of that host is for (review r24): `<host name>/<generation>/<profile
    /// digest>:<time>`, what the host reported and when the console recorded it. Every
    /// approval of that host the trail recorded before it is superseded: the host left
    /// that profile, and going back to it (its store put back from a copy) is not in
    /// effect until an approver approves it again. Kept on the console's own trail, not
    /// only in the fleet's store, whose writer could make it say the host never left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_superseded: Option<String>,
    /// On a `host-approval-unproven` alert (review r24): `<host name>/<generation>/<profile
    /// digest>:<time>`, the approval the fleet's store holds and the console's trail does
    /// not. Read back at start, so that the same approval is not raised again at every
    /// restart (an approval made before session 22 was); a later `approval_digest` of the
    /// same profile ends it, and it is raised anew if it is unproven again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_unproven: Option<String>,
    /// For a host's revocation a console recorded (review r24): `<SHA-256 of the host's
    /// certificate, hex>:<revoked at>`. The revocation lives in the fleet's store, where
    /// whoever holds the database can undo it; the console refuses a certificate its own
    /// trail records revoked whatever the store says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_revoked: Option<String>,
    /// For an acknowledgement of a host's standing refusal a console recorded (issue 14,
    /// `host-acknowledged`): `<SHA-256 of the host's certificate, hex>:<digest of the
    /// refusal acknowledged>`. The acknowledgement lives in the fleet's store, where
    /// whoever holds the database can write one; the console shows a host acknowledged
    /// only while its own trail holds this record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_acknowledged: Option<String>,
    /// The count of undone findings of one root dropped from the console's pages past
    /// its limit and not acknowledged (issue 13, session 40), recorded by `serve` as it
    /// changes (at most once per interval), at its stop and by an acknowledgement of
    /// them: `r<hex of the root as shown, empty outside every root>:<findings>/<alerts>/
    /// <number of the last one counted>`. The newest record of a root is read back at
    /// the next start, so a restart keeps them until a person acknowledges them (before,
    /// it forgot them without a word). `run:open` at a start of `serve` and `run:closed`
    /// at its stop once every count is recorded: a newest `run:open` at the next start
    /// says the last run ended without its stop (killed, the power lost), so the counts
    /// it recorded last may be short (session 41).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_undone: Option<String>,
}

/// The fields of a record that bind the console's store (accounts, waiting requests,
/// sessions, enrolment links, the fleet's settings, hosts' approvals, revocations and
/// acknowledgements, the dropped counts), read back from the trail at `serve`'s start.
/// The one list: the console (`pacsguard_console::bound::BINDING_FIELDS`), `serve`'s
/// gathering and `pacsguard-audit`'s `gather_bench` take it from here (the bench kept a
/// copy by hand before, session 41).
pub const CONSOLE_BINDING_FIELDS: [&str; 11] = [
    "account_digest",
    "request_digest",
    "session_digest",
    "invitation_digest",
    "setting_digest",
    "approval_digest",
    "approval_superseded",
    "approval_unproven",
    "host_revoked",
    "host_acknowledged",
    "dropped_undone",
];

impl Event {
    pub fn new(actor: Actor, action: Action, outcome: Outcome, detail: impl Into<String>) -> Self {
        Event {
            time: SystemTime::now(),
            actor,
            action,
            outcome,
            objects: Vec::new(),
            finding: None,
            reason: None,
            detail: detail.into(),
            heartbeat_seconds: None,
            generation: None,
            boot_id: None,
            boottime_ms: None,
            watch_seen: None,
            request_digest: None,
            account_digest: None,
            session_digest: None,
            invitation_digest: None,
            setting_digest: None,
            approval_digest: None,
            approval_superseded: None,
            approval_unproven: None,
            host_revoked: None,
            host_acknowledged: None,
            dropped_undone: None,
        }
    }

    /// A heartbeat promising the next one within `interval_seconds` (0: a clean stop,
    /// none is due).
    pub fn heartbeat(actor: Actor, interval_seconds: u64) -> Self {
        let detail = if interval_seconds == 0 {
            "stopped cleanly; no further heartbeat".to_string()
        } else {
            format!("alive; next heartbeat within {interval_seconds} s")
        };
        let mut event = Event::new(actor, Action::Heartbeat, Outcome::Success, detail);
        event.heartbeat_seconds = Some(interval_seconds);
        event
    }

    /// The event that carries one finding.
    pub fn of_finding(actor: Actor, finding: Finding) -> Self {
        let mut event = Event::new(
            actor,
            Action::Finding,
            Outcome::Findings,
            finding.detail.clone(),
        );
        event.objects = vec![finding.path.clone()];
        event.finding = Some(finding);
        event
    }

    pub fn with_objects(mut self, objects: Vec<PathBuf>) -> Self {
        self.objects = objects;
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }
}

/// A sink failed to take an event. Evidence that cannot be recorded stops the command.
#[derive(Debug, thiserror::Error)]
#[error("{}{sink}: {reason}", if *.recorded { "" } else { "cannot record event in " })]
pub struct SinkError {
    pub sink: String,
    pub reason: String,
    /// The events are durably recorded (and signed) in this sink all the same; only a
    /// copy kept elsewhere (the trail's witness) failed. The reason says what was and
    /// what was not written.
    pub recorded: bool,
}

/// Something that keeps events: the event log, later the audit trail, syslog, the console.
pub trait EventSink {
    /// Takes one event. An error means the event was not kept.
    fn record(&mut self, event: &Event) -> Result<(), SinkError>;
    /// Makes every recorded event durable.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Hands every event to every sink, in order.
#[derive(Default)]
pub struct EventBus {
    sinks: Vec<Box<dyn EventSink + Send>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus::default()
    }

    pub fn add_sink(&mut self, sink: Box<dyn EventSink + Send>) {
        self.sinks.push(sink);
    }

    /// Records the event in every sink; the first failure is returned after all were tried,
    /// so one broken sink never keeps an event from the others.
    pub fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let mut first_error = None;
        for sink in &mut self.sinks {
            if let Err(e) = sink.record(event) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        let mut first_error = None;
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn serialize_time<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_micros(*time).to_string())
}

fn serialize_paths<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| escape_path(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct Memory(Arc<Mutex<Vec<Action>>>);
    impl EventSink for Memory {
        fn record(&mut self, event: &Event) -> Result<(), SinkError> {
            self.0
                .lock()
                .map_err(|_| SinkError {
                    sink: "memory".into(),
                    reason: "poisoned".into(),
                    recorded: false,
                })?
                .push(event.action);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn action_names_are_the_serialized_ones() {
        for action in Action::ALL {
            let json = serde_json::to_value(action).expect("serializes");
            assert_eq!(json.as_str(), Some(action.as_str()));
        }
    }

    struct Broken;
    impl EventSink for Broken {
        fn record(&mut self, _: &Event) -> Result<(), SinkError> {
            Err(SinkError {
                sink: "broken".into(),
                reason: "disk full".into(),
                recorded: false,
            })
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn actor() -> Actor {
        Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        }
    }

    #[test]
    fn a_broken_sink_does_not_starve_the_others_but_is_reported() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut bus = EventBus::new();
        bus.add_sink(Box::new(Broken));
        bus.add_sink(Box::new(Memory(seen.clone())));
        let err = bus.emit(&Event::new(actor(), Action::Check, Outcome::Success, "ok"));
        assert!(err.is_err());
        assert_eq!(*seen.lock().expect("lock"), vec![Action::Check]);
    }

    #[test]
    fn events_serialize_with_zone_and_kebab_names() {
        let event = Event::new(actor(), Action::Accept, Outcome::Success, "took 1")
            .with_reason("patch KB1");
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["action"], "accept");
        assert_eq!(json["reason"], "patch KB1");
        assert!(json["time"].as_str().expect("time").ends_with('Z'));
    }

    /// Each of CONSOLE_BINDING_FIELDS is a field of a record as written, and every
    /// binding field of a record is in it: a name spelled otherwise gathers nothing.
    #[test]
    fn the_console_binding_fields_are_the_records_binding_fields() {
        let mut event = Event::new(actor(), Action::Login, Outcome::Success, "x");
        let bound = Some("b:1".to_string());
        event.account_digest = bound.clone();
        event.request_digest = bound.clone();
        event.session_digest = bound.clone();
        event.invitation_digest = bound.clone();
        event.setting_digest = bound.clone();
        event.approval_digest = bound.clone();
        event.approval_superseded = bound.clone();
        event.approval_unproven = bound.clone();
        event.host_revoked = bound.clone();
        event.host_acknowledged = bound.clone();
        event.dropped_undone = bound;
        let json = serde_json::to_value(&event).expect("json");
        let object = json.as_object().expect("an object");
        let written: Vec<&str> = object
            .iter()
            .filter(|(_, v)| v.as_str() == Some("b:1"))
            .map(|(k, _)| k.as_str())
            .collect();
        let mut listed = CONSOLE_BINDING_FIELDS.to_vec();
        listed.sort_unstable();
        let mut written = written;
        written.sort_unstable();
        assert_eq!(listed, written);
    }
}
