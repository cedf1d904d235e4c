//! `pacsguard media import SRC DEST`: the media gate. A patient CD/DVD or USB stick
//! (mounted, or an ISO image file read without mounting) is checked as IHE PDI describes
//! it: its DICOMDIR is read and its links checked, every file on it is screened with the
//! engine of `scan`, and only the DICOM instances the DICOMDIR references that screen
//! clean are copied into DEST (a PACS import folder), each named after its SOP Instance
//! UID, each written complete or not at all and never over an existing file. A signed
//! manifest records what was copied, refused and why, and what was expected and left
//! (the Windows viewer and `autorun.inf` every patient CD carries).
//!
//! Nothing on the medium is written or run. The bytes copied are the bytes screened
//! (read once, held in memory, hashed, written), so a medium that changes between the
//! screening and the copy cannot slip anything through.

mod dest;
mod manifest;
mod medium;

use std::path::{Path, PathBuf};

use pacsguard_dicom::Container;
use pacsguard_dicom::dicomdir::{self, MAX_DICOMDIR_BYTES};
use pacsguard_events::{
    Action, Event, Finding, FindingKind, Outcome, Severity, SeverityCounts, escape_path,
};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

pub use dest::{DestinationReport, MAX_REPORTED_EXTRA, verify_destination};
pub use manifest::{MAX_MANIFEST_BYTES, VerifiedManifest, verify as verify_manifest};
use medium::{Medium, MediumFile};

use super::ScanRequest;
use super::Session;
use super::scan::{MAX_SCAN_MEMORY_BYTES, MAX_WHOLE_FILE_BYTES, MemoryBudget, build_screener};
use crate::error::EngineError;
use crate::files::OutDir;

/// The largest file of a medium read and screened: files are held whole so that the
/// bytes copied are the bytes screened. A larger file is refused (`not-inspected`).
pub const MAX_MEDIA_FILE_BYTES: u64 = MAX_WHOLE_FILE_BYTES;
/// The longest SOP Instance UID a copy is named after (PS3.5 §9.1: 64 characters).
pub const MAX_UID_NAME_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct MediaRequest {
    /// The medium: a mounted directory or an ISO 9660 image file.
    pub source: PathBuf,
    /// The import folder the clean instances are copied into.
    pub destination: PathBuf,
    /// Where the signed manifest goes (default: `HOME/media/<time>-<nonce>.manifest`).
    pub manifest: Option<PathBuf>,
    /// YARA rules applied besides the built-in ones, as `scan --rules`.
    pub rules: Option<PathBuf>,
    /// Known-bad SHA-256 values, as `scan --hashlist`: a match is an alert even on the
    /// content a medium is expected to carry.
    pub hashlist: Option<PathBuf>,
}

/// An instance copied into the destination.
#[derive(Clone, Debug, Serialize)]
pub struct Copied {
    /// Its path on the medium.
    pub path: String,
    /// Its name in the destination.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub sop_instance_uid: String,
}

/// A file of the medium that was not copied although the DICOMDIR names it, or a DICOM
/// file it does not name, and why (the kinds of the findings that refused it).
#[derive(Clone, Debug, Serialize)]
pub struct Refused {
    pub path: String,
    pub kinds: Vec<&'static str>,
    pub reason: String,
}

/// Content a patient medium carries besides its images: recorded, never copied or run.
#[derive(Clone, Debug, Serialize)]
pub struct Expected {
    pub path: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct MediaReport {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub source: PathBuf,
    /// `directory`, `iso9660` or `iso9660-joliet`.
    pub source_kind: &'static str,
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub destination: PathBuf,
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub manifest: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub referenced: u64,
    pub copied: Vec<Copied>,
    pub refused: Vec<Refused>,
    pub expected: Vec<Expected>,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
}

impl MediaReport {
    /// Exit status 1: something was refused or needs a look.
    pub fn needs_attention(&self) -> bool {
        self.counts.needs_attention() || !self.refused.is_empty()
    }
}

/// What the manifest signs: the report without its findings' detail, plus who and when.
#[derive(Serialize)]
struct ManifestBody<'a> {
    source: String,
    source_kind: &'static str,
    destination: String,
    host: String,
    actor: String,
    started: i64,
    finished: i64,
    signer: String,
    copied: &'a [Copied],
    refused: &'a [Refused],
    expected: &'a [Expected],
    counts: &'a SeverityCounts,
    /// Set when the import stopped on an error: what is listed was done, nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<String>,
}

/// What the DICOMDIR says of one file of the medium.
#[derive(Clone, Debug, Default)]
struct Reference {
    /// The SOP Instance UID its record names, if any.
    sop_instance: Option<String>,
    /// Why the DICOMDIR's references cannot tell which instance this is: its UID is
    /// listed for another file of the medium too, or two records give it different UIDs.
    /// Copying either file would let thread scheduling choose which image the PACS
    /// receives under that UID (another patient's, perhaps): neither is copied.
    conflict: Option<String>,
}

/// One file's outcome, produced on a worker thread.
#[derive(Default)]
struct Outcome1 {
    bytes: u64,
    findings: Vec<Finding>,
    copied: Option<Copied>,
    refused: Option<Refused>,
    expected: Option<Expected>,
    error: Option<EngineError>,
}

impl Session {
    pub fn media_import(&mut self, request: &MediaRequest) -> Result<MediaReport, EngineError> {
        let objects = vec![request.source.clone(), request.destination.clone()];
        self.recorded(Action::MediaImport, objects, |s| {
            s.media_import_inner(request)
        })
    }

    fn media_import_inner(&mut self, request: &MediaRequest) -> Result<MediaReport, EngineError> {
        // The manifest is signed with the profile key: a locked one refuses the import
        // before anything is copied (copies without their signed account are not made).
        self.profile_signer()?;
        let started = super::now_unix();
        let source = std::fs::canonicalize(&request.source)
            .map_err(|e| EngineError::io(&request.source, e))?;
        let destination = std::fs::canonicalize(&request.destination)
            .map_err(|e| EngineError::io(&request.destination, e))?;
        if destination.starts_with(&source) {
            return Err(EngineError::io(
                &destination,
                "the destination lies on the medium: nothing on a medium is ever written",
            ));
        }
        if let Some(manifest) = &request.manifest {
            manifest_place_usable(manifest, &source)?;
        }
        let out = OutDir::open_or_create(&destination, 0o755)?;
        let medium = Medium::open(&source, self.skip_dirs())?;
        let mut findings = Vec::new();
        let references = resolve(&source, &medium, &mut findings)?;
        let screener = build_screener(&ScanRequest {
            rules: request.rules.clone(),
            hashlist: request.hashlist.clone(),
            ..ScanRequest::default()
        })?;
        let memory = MemoryBudget::new(MAX_SCAN_MEMORY_BYTES);
        let outcomes: Vec<Outcome1> = medium
            .files
            .par_iter()
            .enumerate()
            .map_init(
                || screener.worker(),
                |worker, (index, file)| {
                    let _lease = memory.take(file.size.min(MAX_MEDIA_FILE_BYTES));
                    let place = Place {
                        source: &source,
                        medium: &medium,
                        out: &out,
                    };
                    place.one(worker, file, references[index].as_ref())
                },
            )
            .collect();
        for other in &medium.others {
            let path = source.join(&other.rel);
            findings.push(if other.benign {
                Finding::new(
                    path,
                    FindingKind::MediaExpectedContent,
                    Severity::Info,
                    format!("{}: not copied", other.reason),
                )
            } else {
                Finding::new(
                    path,
                    FindingKind::NotInspected,
                    Severity::Warning,
                    &other.reason,
                )
            });
        }
        for rel in &medium.primary_only {
            findings.push(Finding::new(
                source.join(rel),
                FindingKind::MediaTreesDiffer,
                Severity::Warning,
                "in the image's ISO 9660 tree only: its Joliet tree (what Windows shows) hides it, Linux and macOS show it; screened under its ISO 9660 name",
            ));
        }
        let files = medium.files.len() as u64;
        let referenced = references.iter().filter(|r| r.is_some()).count() as u64;
        let kind = medium.kind;
        let changed = medium.finish(&source).err();
        let mut report = MediaReport {
            source: source.clone(),
            source_kind: kind,
            destination: destination.clone(),
            manifest: PathBuf::new(),
            files,
            bytes: 0,
            referenced,
            copied: Vec::new(),
            refused: Vec::new(),
            expected: Vec::new(),
            counts: SeverityCounts::default(),
            findings: Vec::new(),
        };
        let mut error = changed;
        for outcome in outcomes {
            report.bytes += outcome.bytes;
            findings.extend(outcome.findings);
            report.copied.extend(outcome.copied);
            report.refused.extend(outcome.refused);
            report.expected.extend(outcome.expected);
            if error.is_none() {
                error = outcome.error;
            }
        }
        report.counts = SeverityCounts::of(&findings);
        self.emit_findings(Action::MediaImport, None, &findings)?;
        report.findings = findings;
        for copy in &report.copied {
            let detail = format!(
                "copied {} from the medium {} as {} (SHA-256 {}, SOP Instance UID {})",
                copy.path,
                escape_path(&source),
                copy.file,
                copy.sha256,
                copy.sop_instance_uid
            );
            self.emit(
                Event::new(
                    self.actor.clone(),
                    Action::MediaImport,
                    Outcome::Success,
                    detail,
                )
                .with_objects(vec![destination.join(&copy.file)]),
            )?;
        }
        report.manifest = self.write_manifest(request, &report, started, error.as_ref())?;
        if let Some(error) = error {
            return Err(error);
        }
        let outcome = if report.needs_attention() {
            Outcome::Findings
        } else {
            Outcome::Success
        };
        let detail = format!(
            "media import from {} ({}): {} files screened, {} referenced by the DICOMDIR, {} copied into {}, {} refused, {} expected and left; {} alert, {} warning, {} info; manifest {}",
            escape_path(&source),
            report.source_kind,
            report.files,
            report.referenced,
            report.copied.len(),
            escape_path(&destination),
            report.refused.len(),
            report.expected.len(),
            report.counts.alert,
            report.counts.warning,
            report.counts.info,
            escape_path(&report.manifest),
        );
        self.finish(
            Event::new(self.actor.clone(), Action::MediaImport, outcome, detail)
                .with_objects(vec![source, destination, report.manifest.clone()]),
        )?;
        Ok(report)
    }

    fn write_manifest(
        &mut self,
        request: &MediaRequest,
        report: &MediaReport,
        started: i64,
        error: Option<&EngineError>,
    ) -> Result<PathBuf, EngineError> {
        let body = ManifestBody {
            source: escape_path(&report.source),
            source_kind: report.source_kind,
            destination: escape_path(&report.destination),
            host: crate::home::hostname(),
            actor: self.actor_name(),
            started,
            finished: super::now_unix(),
            signer: hex::encode(self.profile_public.as_bytes()),
            copied: &report.copied,
            refused: &report.refused,
            expected: &report.expected,
            counts: &report.counts,
            incomplete: error.map(ToString::to_string),
        };
        let bytes = manifest::encode(&body, &self.profile_signer()?)?;
        let path = match &request.manifest {
            Some(path) => {
                crate::durable::write_new(path, &bytes, 0o644)?;
                path.clone()
            }
            None => {
                let dir = OutDir::open_or_create(&self.home.dir.join("media"), 0o700)?;
                let mut nonce = [0u8; 4];
                getrandom::fill(&mut nonce).map_err(|e| EngineError::io(dir.path(), e))?;
                let name = format!("{started}-{}.manifest", hex::encode(nonce));
                dir.publish(&name, &bytes, 0o600)?;
                dir.path().join(name)
            }
        };
        Ok(path)
    }
}

/// Checks `--manifest FILE` before anything is copied: a manifest refused after the copy
/// would leave instances in DEST with no signed account of them. It must not lie on the
/// medium (nothing on a medium is ever written: a USB stick is writable) and must not
/// exist yet (it is never overwritten).
fn manifest_place_usable(manifest: &Path, source: &Path) -> Result<(), EngineError> {
    let parent = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let parent = std::fs::canonicalize(parent).map_err(|e| EngineError::io(parent, e))?;
    if parent.starts_with(source) {
        return Err(EngineError::io(
            manifest,
            "the manifest would be written on the medium: nothing on a medium is ever written; nothing was copied",
        ));
    }
    if std::fs::symlink_metadata(manifest).is_ok() {
        return Err(EngineError::io(
            manifest,
            "already exists; a manifest is never overwritten; nothing was copied",
        ));
    }
    Ok(())
}

/// Reads the DICOMDIR and maps every record's Referenced File ID to a file of the medium.
/// A medium without a DICOMDIR, or one that cannot be read, is refused whole (exit 2):
/// without it nothing is known to be an instance of the medium.
fn resolve(
    source: &Path,
    medium: &Medium,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Option<Reference>>, EngineError> {
    let dicomdir_path = source.join("DICOMDIR");
    let index = medium
        .find(&["DICOMDIR".to_owned()])
        .map_err(|e| EngineError::io(&dicomdir_path, e))?
        .ok_or_else(|| {
            EngineError::io(
                &dicomdir_path,
                "no DICOMDIR at the root of the medium: not an IHE PDI medium; nothing was copied",
            )
        })?;
    let file = &medium.files[index];
    let bytes = medium
        .read(file, MAX_DICOMDIR_BYTES)
        .map_err(|e| EngineError::io(&dicomdir_path, format!("{e}; nothing was copied")))?;
    let directory = dicomdir::read(&bytes).map_err(|e| {
        EngineError::io(
            &dicomdir_path,
            format!("the DICOMDIR cannot be used: {e}; nothing was copied"),
        )
    })?;
    let mut references: Vec<Option<Reference>> = vec![None; medium.files.len()];
    for record in &directory.records {
        let (Some(id), Some(components)) = (&record.file_id, &record.components) else {
            continue;
        };
        let unsafe_reference = |reason: &str| {
            Finding::new(
                dicomdir_path.clone(),
                FindingKind::MediaReferenceUnsafe,
                Severity::Alert,
                format!(
                    "the {} record at byte {} references {:?}: {reason}; nothing is copied for it",
                    record.kind, record.offset, id
                ),
            )
        };
        let components = match components {
            Ok(components) => components,
            Err(reason) => {
                findings.push(unsafe_reference(reason));
                continue;
            }
        };
        match medium.find(components) {
            Ok(Some(found)) => {
                let reference = references[found].get_or_insert(Reference {
                    sop_instance: record.sop_instance.clone(),
                    conflict: None,
                });
                if reference.sop_instance != record.sop_instance {
                    reference.conflict = Some(format!(
                        "two DICOMDIR records reference it with different SOP Instance UIDs ({:?} and {:?}, the {} record at byte {})",
                        reference.sop_instance.as_deref().unwrap_or(""),
                        record.sop_instance.as_deref().unwrap_or(""),
                        record.kind,
                        record.offset
                    ));
                }
            }
            Ok(None) => findings.push(Finding::new(
                source.join(components.join("/")),
                FindingKind::MediaReferenceMissing,
                Severity::Warning,
                format!(
                    "the DICOMDIR's {} record at byte {} references this file, which is not on the medium as a regular file",
                    record.kind, record.offset
                ),
            )),
            Err(reason) => findings.push(unsafe_reference(&reason)),
        }
    }
    if index < references.len() && references[index].is_some() {
        references[index] = None;
        findings.push(Finding::new(
            dicomdir_path.clone(),
            FindingKind::MediaReferenceUnsafe,
            Severity::Alert,
            "a DICOMDIR record references the DICOMDIR itself",
        ));
    }
    mark_shared_uids(medium, &mut references);
    Ok(references)
}

/// Marks every referenced file whose listed SOP Instance UID is also listed for another
/// file of the medium. A copied instance's own UID must equal its listed one, so with
/// listed UIDs unique no two copies can claim one destination name.
fn mark_shared_uids(medium: &Medium, references: &mut [Option<Reference>]) {
    let mut by_uid: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (index, reference) in references.iter().enumerate() {
        if let Some(uid) = reference.as_ref().and_then(|r| r.sop_instance.as_deref()) {
            by_uid.entry(uid).or_default().push(index);
        }
    }
    let mut shared: Vec<(usize, String)> = Vec::new();
    for (uid, files) in by_uid.into_iter().filter(|(_, f)| f.len() > 1) {
        for &index in &files {
            let others: Vec<&str> = files
                .iter()
                .filter(|&&o| o != index)
                .map(|&o| medium.files[o].rel.as_str())
                .collect();
            shared.push((
                index,
                format!(
                    "the DICOMDIR lists its SOP Instance UID {uid:?} for {} too: which image is that instance cannot be told, neither is copied",
                    others.join(", ")
                ),
            ));
        }
    }
    for (index, why) in shared {
        if let Some(reference) = references[index].as_mut() {
            reference.conflict.get_or_insert(why);
        }
    }
}

/// What a worker needs to screen and copy one file.
struct Place<'a> {
    source: &'a Path,
    medium: &'a Medium,
    out: &'a OutDir,
}

impl Place<'_> {
    fn one(
        &self,
        worker: &mut pacsguard_screen::Worker<'_>,
        file: &MediumFile,
        reference: Option<&Reference>,
    ) -> Outcome1 {
        let path = self.source.join(&file.rel);
        let mut outcome = Outcome1::default();
        let bytes = match self.medium.read(file, MAX_MEDIA_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(reason) => {
                let finding = Finding::new(
                    path,
                    FindingKind::NotInspected,
                    Severity::Warning,
                    format!("not screened: {reason}"),
                );
                if reference.is_some() {
                    outcome.refused = Some(refusal(&file.rel, &[&finding]));
                }
                outcome.findings.push(finding);
                return outcome;
            }
        };
        outcome.bytes = bytes.len() as u64;
        let screened = worker.screen(&path, &bytes);
        let dicom = screened.inspection.container != Container::NotDicom;
        let mut findings = screened.findings;
        let is_dicomdir = file.rel.eq_ignore_ascii_case("DICOMDIR");
        match reference {
            Some(reference) => {
                if !dicom {
                    findings.push(
                        Finding::new(
                            path.clone(),
                            FindingKind::MediaReferenceUnsafe,
                            Severity::Alert,
                            "the DICOMDIR references this file as an instance, but it is not DICOM",
                        )
                        .with_format(format_of(&bytes)),
                    );
                }
                if let Some(conflict) = &reference.conflict {
                    findings.push(Finding::new(
                        path.clone(),
                        FindingKind::MediaReferenceMismatch,
                        Severity::Warning,
                        conflict.clone(),
                    ));
                }
                let uid = screened.inspection.sop_instance_uid.clone();
                match (&uid, &reference.sop_instance) {
                    (Some(own), Some(listed)) if own != listed => findings.push(Finding::new(
                        path.clone(),
                        FindingKind::MediaReferenceMismatch,
                        Severity::Warning,
                        format!("its SOP Instance UID {own:?} is not the {listed:?} its DICOMDIR record names"),
                    )),
                    (Some(own), _) if !uid_is_file_name(own) => findings.push(Finding::new(
                        path.clone(),
                        FindingKind::MediaReferenceMismatch,
                        Severity::Warning,
                        format!("its SOP Instance UID {:?} is not a valid UID (digits and dots, at most {MAX_UID_NAME_LEN})", pacsguard_events::escape_bytes(own.as_bytes())),
                    )),
                    (None, _) if dicom => findings.push(Finding::new(
                        path.clone(),
                        FindingKind::MediaReferenceMismatch,
                        Severity::Warning,
                        "it has no SOP Instance UID",
                    )),
                    // PS3.3 F.3.2.2: Referenced SOP Instance UID in File is required in
                    // a record that references a file. Without it, the file's own UID is
                    // checked against nothing and could be another instance's.
                    (Some(_), None) => findings.push(Finding::new(
                        path.clone(),
                        FindingKind::MediaReferenceMismatch,
                        Severity::Warning,
                        "its DICOMDIR record names no SOP Instance UID (Referenced SOP Instance UID in File), so which instance it is cannot be checked",
                    )),
                    _ => {}
                }
                let refusing: Vec<&Finding> = findings
                    .iter()
                    .filter(|f| f.severity != Severity::Info)
                    .collect();
                match (refusing.is_empty(), uid) {
                    (true, Some(uid)) => {
                        self.copy(&path, file, &bytes, uid, &mut findings, &mut outcome)
                    }
                    _ => outcome.refused = Some(refusal(&file.rel, &refusing)),
                }
            }
            None if is_dicomdir => {}
            None if dicom => {
                findings.push(Finding::new(
                    path.clone(),
                    FindingKind::MediaUnreferenced,
                    Severity::Warning,
                    "a DICOM file the DICOMDIR does not reference: screened, not copied",
                ));
                let refusing: Vec<&Finding> = findings
                    .iter()
                    .filter(|f| f.severity != Severity::Info)
                    .collect();
                outcome.refused = Some(refusal(&file.rel, &refusing));
            }
            None => {
                // A viewer, autorun.inf, a README: expected on a patient medium. What the
                // screening says of it stays on the record as info; only a known-bad
                // digest stays an alert (a known malware is never "expected").
                let what = format_of(&bytes);
                for finding in &mut findings {
                    if finding.kind != FindingKind::HashlistMatch {
                        finding.severity = Severity::Info;
                    }
                }
                findings.push(
                    Finding::new(
                        path.clone(),
                        FindingKind::MediaExpectedContent,
                        Severity::Info,
                        format!("expected on a patient medium ({what}): not referenced by the DICOMDIR, never copied, never run"),
                    )
                    .with_format(what.clone()),
                );
                outcome.expected = Some(Expected {
                    path: file.rel.clone(),
                    size: file.size,
                    sha256: Some(hex::encode(Sha256::digest(&bytes))),
                    what,
                });
            }
        }
        outcome.findings.extend(findings);
        outcome
    }

    fn copy(
        &self,
        path: &Path,
        file: &MediumFile,
        bytes: &[u8],
        uid: String,
        findings: &mut Vec<Finding>,
        outcome: &mut Outcome1,
    ) {
        let name = format!("{uid}.dcm");
        if self.out.contains(&name) {
            let finding = Finding::new(
                self.out.path().join(&name),
                FindingKind::MediaDestinationExists,
                Severity::Warning,
                format!("{} was not copied: the destination already holds {name} (imported before?); nothing was overwritten", file.rel),
            )
            .with_from(path.to_path_buf());
            outcome.refused = Some(refusal(&file.rel, &[&finding]));
            findings.push(finding);
            return;
        }
        match self.out.publish(&name, bytes, 0o644) {
            Ok(()) => {
                outcome.copied = Some(Copied {
                    path: file.rel.clone(),
                    file: name,
                    sha256: hex::encode(Sha256::digest(bytes)),
                    size: bytes.len() as u64,
                    sop_instance_uid: uid,
                });
            }
            Err(error) => {
                if self.out.contains(&name) {
                    // Another file took the name between the check and the link.
                    let finding = Finding::new(
                        self.out.path().join(&name),
                        FindingKind::MediaDestinationExists,
                        Severity::Warning,
                        format!("{} was not copied: {error}", file.rel),
                    );
                    outcome.refused = Some(refusal(&file.rel, &[&finding]));
                    findings.push(finding);
                } else {
                    outcome.error = Some(error);
                }
            }
        }
    }
}

fn refusal(rel: &str, findings: &[&Finding]) -> Refused {
    let mut kinds: Vec<&'static str> = findings.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let reason = findings
        .first()
        .map_or_else(String::new, |f| f.detail.clone());
    Refused {
        path: rel.to_owned(),
        kinds,
        reason,
    }
}

/// What a file is, by its first bytes, for the record.
fn format_of(bytes: &[u8]) -> String {
    pacsguard_dicom::sniff(bytes).map_or_else(
        || {
            if std::str::from_utf8(&bytes[..bytes.len().min(4096)]).is_ok() {
                "text".to_owned()
            } else {
                "data".to_owned()
            }
        },
        |f| f.as_str().to_owned(),
    )
}

/// A UID a file can be named after: digits and dots, no empty component, at most
/// [`MAX_UID_NAME_LEN`] characters (PS3.5 §9.1). Anything else (`/`, `..`) could
/// leave the destination.
fn uid_is_file_name(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_NAME_LEN
        && uid
            .split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_uids_name_a_file() {
        assert!(uid_is_file_name("1.2.840.10008.5.1.4.1.1.2"));
        assert!(uid_is_file_name(&"1".repeat(MAX_UID_NAME_LEN)));
        for bad in [
            "",
            "1..2",
            "../1",
            "1.2/3",
            ".1",
            "1.",
            &"1".repeat(MAX_UID_NAME_LEN + 1),
        ] {
            assert!(!uid_is_file_name(bad), "{bad}");
        }
    }
}
