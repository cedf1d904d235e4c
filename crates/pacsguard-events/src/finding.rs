//! Findings: what a detector saw, how serious it is under the policy in force, and where.

use std::fmt;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::escape::escape_path;

/// How serious a finding is. Ordered: `Info < Warning < Alert`.
///
/// Only `warning` and `alert` make a command exit with status 1: an `info` finding is an
/// expected event (a new image in an append-only archive) that is recorded, not escalated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Alert,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Alert => "alert",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`FindingKind`] from one table: each variant with its stable name, so the
/// enum, [`FindingKind::as_str`], its JSON form and [`FindingKind::ALL`] cannot drift
/// apart (a test holds the README's list of kinds to the same table).
macro_rules! finding_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// The stable, kebab-case names of findings. SIEM rules match on these: never
        /// rename one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum FindingKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl FindingKind {
            /// Every kind, in declaration order.
            pub const ALL: &[FindingKind] = &[$(FindingKind::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingKind::$variant => $name,)+
                }
            }
        }
    };
}

finding_kinds! {
    /// A path that the baseline does not know.
    Added => "added",
    /// A path of the baseline that is gone (and whose content did not reappear elsewhere).
    Removed => "removed",
    /// The same content at a new path, the old path gone: one finding, not two.
    Moved => "moved",
    /// The content (or the type of the entry) differs from the baseline.
    ContentChanged => "content-changed",
    /// Metadata differs; `fields` names which.
    MetadataChanged => "metadata-changed",
    /// The entry could not be read (permissions, I/O error); the run went on.
    Unreadable => "unreadable",
    /// The file kept changing while it was hashed; no torn hash was recorded.
    Unstable => "unstable",
    /// A directory that was recorded but not descended into (mount point, depth limit).
    NotDescended => "not-descended",
    /// A directory too wide to hold at once, read in passes (`pacsguard_fs::LISTING_BATCH`
    /// names each): nothing missed, but a limit anyone who can add names reaches, its cost
    /// theirs to raise (warning).
    ListedInPasses => "listed-in-passes",
    /// The configuration asks for something other than what the signed profile records.
    ConfigDiffers => "config-differs",
    /// The DICOM preamble holds an executable or active-content header (CVE-2019-11687).
    PreambleExecutable => "preamble-executable",
    /// The DICOM preamble is neither zero nor TIFF: vendor text, stray bytes.
    PreambleNonstandard => "preamble-nonstandard",
    /// A structurally valid executable or archive inside the file, outside the preamble.
    EmbeddedExecutable => "embedded-executable",
    /// An embedded document that acts when opened (PDF JavaScript, launch actions).
    ActiveContent => "active-content",
    /// A file attached to an embedded document (a PDF attachment: PDF/A-3 reports carry
    /// XML) that was screened and is neither executable, script nor archive: on the
    /// record (info), not an alarm.
    EmbeddedFile => "embedded-file",
    /// A YARA rule matched.
    YaraMatch => "yara-match",
    /// The file's SHA-256 is on a known-bad list.
    HashlistMatch => "hashlist-match",
    /// A DICOM file that cannot be read to its end (truncated, inconsistent lengths).
    MalformedDicom => "malformed-dicom",
    /// Not a DICOM file where DICOM is expected.
    NotDicom => "not-dicom",
    /// Part of the file was not inspected (over a size limit, unsupported encoding).
    NotInspected => "not-inspected",
    /// The Pixel Data of a DICOM instance changed (CT-GAN style tampering).
    PixelDataChanged => "pixel-data-changed",
    /// The DICOM header changed while the Pixel Data kept its digest.
    HeaderChanged => "header-changed",
    /// A DICOM instance written again with only its File Meta Information (group 0002:
    /// the sending AE, the writer's implementation) different: the same data set, SOP
    /// Instance UID, transfer syntax and Pixel Data, as a PACS receiving a study again
    /// writes it. `info` in an image store (a warning in a static tree); never ransomware.
    FileMetaChanged => "file-meta-changed",
    /// A file profiled as DICOM no longer parses as DICOM (encrypted, overwritten).
    NoLongerDicom => "no-longer-dicom",
    /// Mass rewriting in an image store, or a canary file touched: the evidence of
    /// encryption in progress (files, rate, what changed).
    RansomwareSuspected => "ransomware-suspected",
    /// The kernel dropped change events (queue overflow); what it covered was rescanned.
    EventsLost => "events-lost",
    /// A directory could not be watched (watch limit, permissions) and is polled instead.
    NotWatched => "not-watched",
    /// A file that is not DICOM but something a loader, interpreter or reader acts on:
    /// an executable, a script (with `#!` or run by `sh` without one), an archive, a PDF,
    /// HTML/HTA, RTF. `format` names which. Where an image belongs, this is an alert.
    ExecutableFile => "executable-file",
    /// The previous watcher ended without a clean stop (killed, crashed): nothing was
    /// guarded in between.
    UncleanStop => "unclean-stop",
    /// A maintenance window opened (who, why, until when) or closed (what changed inside
    /// it). Changes inside one are reported as `info` and never called ransomware.
    MaintenanceWindow => "maintenance-window",
    /// The audit trail cannot be written (the home's disk is full): findings are held in
    /// memory and written when it can be again.
    TrailDegraded => "trail-degraded",
    /// The home's audit trail (and its store) is gone while its signing key remains: the
    /// home was reset, which hides everything it recorded. Every command refuses to work
    /// until a person starts a new trail on the record (`audit reinit`).
    TrailReset => "trail-reset",
    /// The home's profile store was refused by every command (deleted, emptied,
    /// overwritten, altered) and a person started a new, empty one (`store reinit`): the
    /// refused one is kept as evidence, named with its digest; nothing is guarded until
    /// the roots are profiled again.
    StoreReset => "store-reset",
    /// A console account (or an address) reached the limit of failed sign-ins and is
    /// refused until the lockout ends: a password or second factor is being guessed.
    AccountLocked => "account-locked",
    /// A signed-in console user called a route their role does not allow (refused): a
    /// probe of the server's authorization, or a page that offered what it should not.
    AccessDenied => "access-denied",
    /// What an earlier watcher saw of a path (kept in the store so that a restart does
    /// not report it again) was edited after it was written: the path is compared with
    /// the profile instead.
    WatchStateAltered => "watch-state-altered",
    /// A journal or write-ahead log appeared beside the profile store while a guard
    /// (`watch`, `serve`) kept it open, and no writer of the store made it: SQLite would
    /// roll it into the store (an older generation, edited rows) at the guard's next
    /// write. No write touches the store while it stands; named with its SHA-256.
    StoreCompanionPlanted => "store-companion-planted",
    /// A console passkey's signature counter did not move forward (it went back, or
    /// stayed, while the stored one is not zero): two authenticators hold the same key,
    /// a cloned one among them. The sign-in or step-up was refused.
    PasskeyCloneSuspected => "passkey-clone-suspected",
    /// A console request waiting for a second person (four eyes) no longer matches the
    /// digest recorded on the trail when it was made, or has no such record: the store
    /// was edited (or a request planted in it). The confirmation was refused.
    ConsoleRequestAltered => "console-request-altered",
    /// A console account in the store is not as the trail recorded it (its name, role,
    /// creation time or creator differ, or the trail never recorded it): the store was
    /// edited (an account inserted or promoted with sqlite3). The account is refused.
    ConsoleAccountAltered => "console-account-altered",
    /// A console session in the store was not opened by the console (no record of its
    /// opening on the trail, or its account or opening time edited): a session planted
    /// with sqlite3 to act as an account without its password and second factor. The
    /// session is ended and refused.
    ConsoleSessionAltered => "console-session-altered",
    /// A console enrolment link (invitation) in the store is not one the console issued
    /// as the trail recorded it (its token, account or expiry differ, it was spent or
    /// replaced on the trail, or it has no record): a link planted with sqlite3 to take
    /// an invited account before its holder does. The link is refused and removed.
    ConsoleInvitationAltered => "console-invitation-altered",
    /// The trail held no record of any console account at the console's start (the first
    /// start of a version that binds accounts, a trail started anew by `audit reinit`, or
    /// its account records edited away), so the accounts in the store were bound on
    /// trust: a warning naming each with its role, for a person to confirm (an account
    /// planted while the console was stopped would be among them).
    ConsoleAccountsBoundOnTrust => "console-accounts-bound-on-trust",
    /// At the console's start, records of the audit trail name an account, session or
    /// request but the trail's verification (as `audit verify`'s) does not prove them (a
    /// line forged or edited, or after one): nothing is bound from them, and the alert
    /// names each line's position.
    ConsoleBindingUnproven => "console-binding-unproven",
    /// At the console's start, more trail records named accounts, sessions, requests and
    /// enrolment links than `MAX_GATHERED_RECORDS`: the newest record of each was kept and
    /// the older ones of the same let go (a warning with their count): a trail that
    /// long is being flooded, or has run for years without `audit reinit`.
    ConsoleBindingsSuperseded => "console-bindings-superseded",
    /// At the console's start, the count of undone findings dropped from the pages and
    /// not acknowledged, which a stop of `serve` records on the trail, could not be read
    /// back whole (a record not proven by the trail's verification, one not as the
    /// console writes it, more roots than it reads, or a trail not proven whole): the
    /// count read may be short, and the overview and alerts page say so, never a silent 0.
    ConsoleDroppedCountUnread => "console-dropped-count-unread",
    /// The console took a fresh console id: another live console presented its id on
    /// the shared fleet store (PostgreSQL), so one of them was made from a copy of the
    /// other's home (a cloned machine, a restored backup), or the id in the home's store
    /// was not one the console writes (edited). Two live consoles never share an id:
    /// each would settle the other's approvals awaiting their trail record.
    ConsoleIdRenewed => "console-id-renewed",
    /// A setting of the fleet in its store (four eyes for host approvals) is not as this
    /// console's trail last recorded it: turned off, deleted or given a value no console
    /// writes, in the database directly or on another console sharing the store. The
    /// console enforces the stricter of the two (four eyes on) and says so: an alert when
    /// the store is laxer than its trail, a warning when it is stricter (set on another
    /// console), which it then records and enforces.
    ConsoleSettingAltered => "console-setting-altered",
    /// `media import`: a DICOMDIR record references something that cannot be a DICOM
    /// instance of the medium (an absolute path or `..`, a name PS3.10 does not allow, a
    /// file that is not DICOM, an executable): an alert, and nothing it names is copied.
    MediaReferenceUnsafe => "media-reference-unsafe",
    /// `media import`: a file the DICOMDIR references is not on the medium (or could not
    /// be read): not copied.
    MediaReferenceMissing => "media-reference-missing",
    /// `media import`: a referenced file's own SOP Instance UID differs from the one its
    /// DICOMDIR record states, or it has none a file can be named after: not copied.
    MediaReferenceMismatch => "media-reference-mismatch",
    /// `media import`: a DICOM file on the medium that the DICOMDIR does not reference:
    /// screened, not copied (only referenced instances are imported).
    MediaUnreferenced => "media-unreferenced",
    /// `media import`: content a patient medium is expected to carry besides its images
    /// (a viewer program, `autorun.inf`, a README): screened, recorded with its digest,
    /// never copied and never run. Info, not an alarm, unless it is on a known-bad list.
    MediaExpectedContent => "media-expected-content",
    /// `media import`: the destination already holds a file of that name (the instance
    /// was imported before, or another file stands there): nothing was overwritten.
    MediaDestinationExists => "media-destination-exists",
    /// `media verify --dest`: a copy the manifest lists is not in the import folder
    /// (taken in by the PACS and removed, deleted, or the manifest is of another import).
    MediaCopyMissing => "media-copy-missing",
    /// `media verify --dest`: a copy in the import folder does not have the SHA-256 the
    /// manifest signs (changed after the import, or not a regular file any more): an alert.
    MediaCopyChanged => "media-copy-changed",
    /// `media verify --dest`: a file in the import folder that the manifest does not list
    /// (another import's, or put there by someone else).
    MediaDestinationExtra => "media-destination-extra",
    /// The console's sealed emergency account (break-glass) was used: someone signed in
    /// without a second factor, as an emergency procedure allows. Always an alert, so it
    /// is seen and reviewed (DICOM 110127 Emergency Override Started).
    EmergencyAccess => "emergency-access",
    /// `media import`: an ISO image whose primary (ISO 9660) tree holds a file the
    /// Joliet tree does not show: Windows reads one tree, Linux and macOS the other, so
    /// the medium looks different depending on who reads it. The file is screened (and
    /// never copied unless the DICOMDIR references it and it is clean).
    MediaTreesDiffer => "media-trees-differ",
    /// Console: an enrolled host's trail does not extend what the console accepted of
    /// it: a checkpoint inconsistent with one seen, records sent again from an earlier
    /// position, or a trail started anew (fork, rollback, rewrite). Refused and kept.
    HostTrailFork => "host-trail-fork",
    /// Console: an enrolled host delivered records (or a checkpoint) after a gap: some
    /// of its records never reached the console.
    HostTrailGap => "host-trail-gap",
    /// Console: records an enrolled host delivered are not in the tree its own signed
    /// checkpoint covers (the inclusion proof fails): altered after signing or in transit.
    HostRecordUnproven => "host-record-unproven",
    /// Console: an enrolled host reported with another trail key than before: its home
    /// was made anew, or someone else holds its identity.
    HostKeyNew => "host-key-new",
    /// Console: an enrolled host sent nothing within the interval it promised (and the
    /// console's grace): stopped, cut off, or silenced.
    HostSilent => "host-silent",
    /// Console: a host raised silent (`host-silent`) was heard again: a report of its
    /// trail verified (records, or a heartbeat with nothing new). Recorded so that the
    /// length of the silence is on the console's trail beside its start; a warning, for
    /// a person to see whether the host was stopped, cut off or hung (review r28-fleet).
    HostSilenceEnded => "host-silence-ended",
    /// Console: an enrolled host pinned another certificate at enrolment than the one
    /// the fleet listener presents now (the fleet identity replaced, or an upgrade from a
    /// version that presented `[console] cert` to hosts): the host refuses every
    /// connection, so nothing of it arrives; the console names the host and both
    /// fingerprints (issue 14, session 46).
    HostPinnedOther => "host-pinned-other",
    /// An enrolled host's signed profile generation was not approved on its console: on
    /// the console, a re-baseline made on the host itself (`profile` or `accept` run
    /// there, by an administrator or by an intruder planting a file) is an alert until an
    /// approver signs it; on the host, `check` warns while its current profile carries no
    /// valid approval of the console it enrolled with.
    HostProfileUnapproved => "host-profile-unapproved",
    /// Console: an enrolled host sent more record bytes within the quota window than the
    /// console holds for one host (`HOST_QUOTA_BYTES`): its further records are refused
    /// (the host keeps them and delivers them when the window ends), so one host cannot
    /// fill the console's disk.
    HostQuotaExceeded => "host-quota-exceeded",
    /// Console: an approval of a host's profile was written to the fleet's store but its
    /// record (who approved, why) never reached the audit trail (the console stopped, or
    /// the store's answer was lost, between the two): it was never in effect and is
    /// dropped; the profile waits for an approver again.
    HostApprovalUnrecorded => "host-approval-unrecorded",
    /// Console: the fleet's store says a host's profile generation is approved, but this
    /// console's audit trail holds no record of that approval (host, generation, digest,
    /// approvers): the row was written in the database (sqlite3, psql), or the approval
    /// was made on another console sharing the store, or before approvals were recorded
    /// so; or the trail records a later approval of another profile of that host (the
    /// host went back to an older profile, review r23). The console signs no approval for it; an approver may approve it on the Hosts
    /// page (step-up, reason), which records it.
    HostApprovalUnproven => "host-approval-unproven",
    /// Console: a host whose revocation this console's trail records presented its
    /// certificate while the fleet's store no longer says it is revoked (the row edited
    /// with sqlite3 or psql, review r24): refused all the same.
    HostRevocationUndone => "host-revocation-undone",
    /// Console: two processes report under one host's certificate at once, one with
    /// the trail the console witnesses and one with another trail key (a copy of the
    /// host's enrolment, `fleet/`, running beside it, review r25): raised once, naming
    /// both; the copy's reports are refused and counted without being judged, so the
    /// host's own reports and its approval stay in effect.
    HostIdentityDuplicated => "host-identity-duplicated",
    /// Console: a host's clock, as its report states it, is further than
    /// `MAX_CLOCK_SKEW` from the console's (set back or far ahead, review r25): the
    /// times on its trail records are not to be trusted. Raised once per departure.
    HostClockSkewed => "host-clock-skewed",
    /// Console: an administrator acknowledged a host's standing refusal (a `fork`, a
    /// `duplicated` identity) after investigating it (`console acknowledge-host`, issue
    /// 14): who, why, and the digest of the refusal acknowledged, on the console's trail.
    /// The state stays, shown as acknowledged; a refusal of another kind, or a fork at
    /// another point, is raised again. Info: a decision, not a finding against the host.
    HostAcknowledged => "host-acknowledged",
    /// Console: the fleet's store holds an acknowledgement of a host's standing refusal
    /// that this console's trail does not record (`host-acknowledged`): written in the
    /// database (sqlite3, psql) to hide a fork. Not shown as acknowledged.
    HostAcknowledgementUnproven => "host-acknowledgement-unproven",
    /// Console on PostgreSQL: the move of a version before's fleet records into the
    /// monthly tables failed, and every host's report is refused until it is done (the
    /// console hears no host meanwhile). Raised once per run of failures (an alert),
    /// again when they reach `PG_MOVE_FAILURES_LOUD` (it fails for good until an
    /// administrator acts), and as info when a move succeeds after them.
    FleetRecordsUnmoved => "fleet-records-unmoved",
}

impl FindingKind {
    /// Whether the kind says a file that was profiled is not what it was (its content,
    /// its metadata, its pixels, its header, or no longer DICOM), not that it came, went
    /// or moved.
    pub fn is_rewrite(self) -> bool {
        matches!(
            self,
            FindingKind::ContentChanged
                | FindingKind::MetadataChanged
                | FindingKind::PixelDataChanged
                | FindingKind::HeaderChanged
                | FindingKind::FileMetaChanged
                | FindingKind::NoLongerDicom
        )
    }

    /// Whether the kind says how a tree differs from its profile (a file added, removed,
    /// moved or rewritten: [`FindingKind::is_rewrite`]), so that a full check finding the
    /// tree as profiled proves it gone. Other kinds say what was found in a file or what
    /// happened, which no later check undoes.
    pub fn is_tree_difference(self) -> bool {
        matches!(
            self,
            FindingKind::Added | FindingKind::Removed | FindingKind::Moved
        ) || self.is_rewrite()
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a detector found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Absolute path, serialized escaped (see [`crate::escape_bytes`]).
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    pub kind: FindingKind,
    pub severity: Severity,
    /// One human sentence; attacker-chosen parts are already escaped.
    pub detail: String,
    /// The profiled root the path belongs to.
    #[serde(
        serialize_with = "serialize_opt_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub root: Option<PathBuf>,
    /// For `moved`: where the content was before.
    #[serde(
        serialize_with = "serialize_opt_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<PathBuf>,
    /// For `metadata-changed` (and type changes): the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// For content findings: the detected format (`pe`, `elf`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// For content findings: the byte offset in the file where the evidence starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Finding {
    pub fn new(
        path: PathBuf,
        kind: FindingKind,
        severity: Severity,
        detail: impl Into<String>,
    ) -> Self {
        Finding {
            path,
            kind,
            severity,
            detail: detail.into(),
            root: None,
            from: None,
            fields: Vec::new(),
            format: None,
            offset: None,
        }
    }

    pub fn with_root(mut self, root: PathBuf) -> Self {
        self.root = Some(root);
        self
    }

    pub fn with_from(mut self, from: PathBuf) -> Self {
        self.from = Some(from);
        self
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn with_format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }

    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {:<16} {}",
            self.severity,
            self.kind,
            escape_path(&self.path)
        )?;
        if let Some(from) = &self.from {
            write!(f, " (from {})", escape_path(from))?;
        }
        match (&self.format, self.offset) {
            (Some(format), Some(offset)) => write!(f, " [{format} at offset {offset}]")?,
            (Some(format), None) => write!(f, " [{format}]")?,
            (None, Some(offset)) => write!(f, " [offset {offset}]")?,
            (None, None) => {}
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Counts of findings by severity, for summaries and exit statuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    pub info: usize,
    pub warning: usize,
    pub alert: usize,
}

impl SeverityCounts {
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut counts = SeverityCounts::default();
        for finding in findings {
            match finding.severity {
                Severity::Info => counts.info += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Alert => counts.alert += 1,
            }
        }
        counts
    }

    /// Whether anything here should make the command exit with status 1.
    pub fn needs_attention(&self) -> bool {
        self.warning > 0 || self.alert > 0
    }
}

fn serialize_path<S: Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape_path(path))
}

fn serialize_opt_path<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => s.serialize_str(&escape_path(path)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_stable_names_and_escaped_paths() {
        let finding = Finding::new(
            PathBuf::from("/srv/a\nb"),
            FindingKind::ContentChanged,
            Severity::Alert,
            "hash differs",
        );
        let json = serde_json::to_value(&finding).expect("serializes");
        assert_eq!(json["kind"], "content-changed");
        assert_eq!(json["severity"], "alert");
        assert_eq!(json["path"], "/srv/a\\u{000a}b");
        assert!(json.get("from").is_none());
    }

    #[test]
    fn every_kind_has_one_name_in_json_and_text() {
        let mut seen = std::collections::HashSet::new();
        for kind in FindingKind::ALL {
            let json = serde_json::to_value(kind).expect("serializes");
            assert_eq!(json, kind.as_str(), "{kind:?}");
            assert!(seen.insert(kind.as_str()), "{} named twice", kind.as_str());
            let kebab = kind
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-');
            assert!(kebab, "{} is not kebab-case", kind.as_str());
        }
    }

    /// The README is where administrators and SIEM authors learn the kinds: each one
    /// must be there, by its exact name.
    #[test]
    fn every_kind_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for kind in FindingKind::ALL {
            assert!(
                readme.contains(&format!("`{}`", kind.as_str())),
                "README.md does not document the finding kind `{}`",
                kind.as_str()
            );
        }
    }

    #[test]
    fn only_warnings_and_alerts_need_attention() {
        let info = Finding::new(PathBuf::from("/a"), FindingKind::Added, Severity::Info, "");
        assert!(!SeverityCounts::of([&info]).needs_attention());
        let alert = Finding {
            severity: Severity::Alert,
            ..info.clone()
        };
        assert!(SeverityCounts::of([&info, &alert]).needs_attention());
    }
}
