//! `pacsguard scan`: screen files for malicious content, detect-only; optionally copy what
//! raised an alert into the quarantine vault.

use std::path::{Path, PathBuf};

use pacsguard_events::{
    Action, Event, Finding, FindingKind, Outcome, Severity, SeverityCounts, escape_path,
};
use pacsguard_fs::{EntryType, ReadError, WalkOptions, WindowReader, read_file, read_head, walk};
use pacsguard_screen::{HashList, RuleSource, Rules, Screener};
use rayon::prelude::*;
use serde::Serialize;

use super::Session;
use crate::error::EngineError;
use crate::home::hostname;
use crate::progress::Progress;
use crate::vault::{Original, QuarantineRecord, Vault};

/// The largest file `sanitize` reads whole (it must write every byte back).
pub const MAX_SCAN_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Files up to this size are screened whole; larger ones (whole-slide images, long
/// multi-frame series) are read in windows of [`SCAN_WINDOW_BYTES`], never skipped.
pub const MAX_WHOLE_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// One window of a file read in windows. The first holds the preamble, the File Meta
/// group and the header elements; the others are searched raw and with the rules.
pub const SCAN_WINDOW_BYTES: usize = 64 * 1024 * 1024;
/// Windows overlap by this much, so that an executable whose headers straddle a window
/// boundary is confirmed in the next window (a candidate is parsed on at most
/// `MAX_EXECUTABLE_PARSE_BYTES`), and a ZIP's end record with its 64 KiB comment sits
/// whole in the last window.
pub const SCAN_WINDOW_OVERLAP: usize = pacsguard_dicom::MAX_EXECUTABLE_PARSE_BYTES;
/// File bytes held in memory by all screening workers together: each worker takes its
/// file (or window) from this budget before reading and gives it back after, so memory is
/// bounded whatever the number of cores.
pub const MAX_SCAN_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    /// Files and directories to screen (directories recursively, without following links
    /// or crossing mounts).
    pub paths: Vec<PathBuf>,
    /// A directory of `.yar`/`.yara` files, applied besides the built-in rules.
    pub rules: Option<PathBuf>,
    /// Known-bad SHA-256 values, one per line or a CSV with a `sha256_hash` column.
    pub hashlist: Option<PathBuf>,
    /// Copy every file with an alert into the home's vault.
    pub quarantine: bool,
    /// Read only the first bytes of each file and classify its preamble: the fast sweep
    /// of a whole store for CVE-2019-11687 polyglots. No rules, hash list or quarantine.
    pub preamble_only: bool,
}

#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub files: u64,
    pub bytes: u64,
    /// Files read as DICOM (Part 10 or a bare data set).
    pub dicom_files: u64,
    /// YARA rules applied (0 when built without YARA support).
    pub rules: usize,
    pub hashlist_entries: usize,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
    pub quarantined: Vec<QuarantineRecord>,
}

/// What a scan will read: regular files and their sizes when listed, and findings about
/// what could not be listed.
struct Targets {
    files: Vec<(PathBuf, u64)>,
    findings: Vec<Finding>,
}

/// One file's outcome, produced on a worker thread.
struct FileResult {
    bytes: u64,
    dicom: bool,
    findings: Vec<Finding>,
    /// The copy's record, with the original's exact path (the record keeps it escaped).
    quarantined: Option<Result<(PathBuf, QuarantineRecord), EngineError>>,
}

impl Session {
    pub fn scan(
        &mut self,
        request: &ScanRequest,
        progress: &dyn Progress,
    ) -> Result<ScanReport, EngineError> {
        self.recorded(Action::Scan, request.paths.clone(), |s| {
            s.scan_inner(request, progress)
        })
    }

    fn scan_inner(
        &mut self,
        request: &ScanRequest,
        progress: &dyn Progress,
    ) -> Result<ScanReport, EngineError> {
        if request.preamble_only
            && (request.rules.is_some() || request.hashlist.is_some() || request.quarantine)
        {
            return Err(EngineError::Usage(
                "--preamble-only reads the first bytes of each file only: it cannot be combined with --rules, --hashlist or --quarantine".to_owned(),
            ));
        }
        let screener = if request.preamble_only {
            Screener::default()
        } else {
            build_screener(request)?
        };
        let Targets {
            files,
            mut findings,
        } = self.scan_targets(&request.paths, progress)?;
        let total_bytes: u64 = files.iter().map(|(_, size)| size).sum();
        progress.start(Path::new("scan"), files.len() as u64, total_bytes);
        let vault = request
            .quarantine
            .then(|| Vault::new(self.home.quarantine_dir()));
        let (host, actor) = (hostname(), self.actor_name());
        let memory = MemoryBudget::new(MAX_SCAN_MEMORY_BYTES);
        let results: Vec<FileResult> = files
            .par_iter()
            .map_init(
                || screener.worker(),
                |worker, (path, size)| {
                    let result = if request.preamble_only {
                        screen_head_of(path)
                    } else {
                        let place = Place {
                            screener: &screener,
                            vault: vault.as_ref(),
                            host: &host,
                            actor: &actor,
                            memory: &memory,
                        };
                        screen_file(worker, path, *size, &place)
                    };
                    progress.advance(*size);
                    result
                },
            )
            .collect();
        progress.finish();

        let mut report = ScanReport {
            files: files.len() as u64,
            bytes: 0,
            dicom_files: 0,
            rules: screener.rules().map_or(0, Rules::len),
            hashlist_entries: screener.hashlist().map_or(0, HashList::len),
            counts: SeverityCounts::default(),
            findings: Vec::new(),
            quarantined: Vec::new(),
        };
        let mut quarantine_failures = Vec::new();
        let mut copied = Vec::new();
        for result in results {
            report.bytes += result.bytes;
            report.dicom_files += u64::from(result.dicom);
            findings.extend(result.findings);
            match result.quarantined {
                Some(Ok((original, record))) => {
                    copied.push(original);
                    report.quarantined.push(record);
                }
                Some(Err(e)) => quarantine_failures.push(e),
                None => {}
            }
        }
        report.counts = SeverityCounts::of(&findings);
        self.emit_findings(Action::Scan, None, &findings)?;
        for (record, original) in report.quarantined.iter().zip(copied) {
            let detail = format!(
                "copied into the vault as SHA-256 {} ({} bytes); the original was not touched",
                record.sha256, record.size
            );
            self.emit(
                Event::new(
                    self.actor.clone(),
                    Action::Quarantine,
                    Outcome::Success,
                    detail,
                )
                .with_objects(vec![original]),
            )?;
        }
        report.findings = findings;
        if let Some(error) = quarantine_failures.into_iter().next() {
            // Screening finished and its findings are recorded; a copy that could not be
            // made is an error the operator must see (exit 2), not a footnote.
            return Err(error);
        }
        let outcome = if report.counts.needs_attention() {
            Outcome::Findings
        } else {
            Outcome::Success
        };
        let detail = format!(
            "screened {} files ({} bytes, {} DICOM) with {} YARA rules and {} listed hashes: {} alert, {} warning, {} info; {} quarantined",
            report.files,
            report.bytes,
            report.dicom_files,
            report.rules,
            report.hashlist_entries,
            report.counts.alert,
            report.counts.warning,
            report.counts.info,
            report.quarantined.len()
        );
        self.finish(
            Event::new(self.actor.clone(), Action::Scan, outcome, detail)
                .with_objects(request.paths.clone()),
        )?;
        Ok(report)
    }

    /// The regular files under the requested paths, with their sizes, and findings for
    /// what could not be listed.
    fn scan_targets(
        &self,
        paths: &[PathBuf],
        progress: &dyn Progress,
    ) -> Result<Targets, EngineError> {
        if paths.is_empty() {
            return Err(EngineError::Usage(
                "scan needs at least one file or directory".to_owned(),
            ));
        }
        let mut files = Vec::new();
        let mut findings = Vec::new();
        for requested in paths {
            // A path named on the command line is the operator's choice and is resolved
            // (links included); inside a directory, no link is ever followed.
            let path =
                std::fs::canonicalize(requested).map_err(|e| EngineError::io(requested, e))?;
            let meta = std::fs::metadata(&path).map_err(|e| EngineError::io(&path, e))?;
            if meta.is_file() {
                files.push((path, meta.len()));
                continue;
            }
            if !meta.is_dir() {
                return Err(EngineError::io(
                    &path,
                    "neither a regular file nor a directory",
                ));
            }
            progress.phase(&format!("listing {}", escape_path(&path)));
            let options = WalkOptions {
                skip_dirs: self.skip_dirs(),
                ..WalkOptions::default()
            };
            let tree = walk(&path, &options).map_err(|e| EngineError::io(&path, e))?;
            for problem in &tree.problems {
                let problem_path = absolute(&path, &problem.rel);
                findings.push(Finding::new(
                    problem_path,
                    FindingKind::Unreadable,
                    Severity::Warning,
                    format!("not screened: {}", problem.detail),
                ));
            }
            for entry in tree.entries {
                if entry.kind == EntryType::File {
                    files.push((absolute(&path, &entry.rel), entry.meta.size));
                }
            }
        }
        files.sort();
        files.dedup();
        Ok(Targets { files, findings })
    }
}

fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

/// Screens new files that arrived in `append-only` roots (found by `check`) with the
/// built-in inspection and rules; returns what they raised.
/// The screener for arrivals in `append-only` roots: the built-in rules.
pub(super) fn arrival_screener() -> Result<Screener, EngineError> {
    build_screener(&ScanRequest::default())
}

/// Screens new files of an image store; only what needs attention comes back.
pub(super) fn screen_arrivals(screener: &Screener, paths: &[PathBuf]) -> Vec<Finding> {
    let memory = MemoryBudget::new(MAX_SCAN_MEMORY_BYTES);
    let place = Place {
        screener,
        vault: None,
        host: "",
        actor: "",
        memory: &memory,
    };
    paths
        .par_iter()
        .map_init(
            || screener.worker(),
            |worker, path| {
                let size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
                screen_file(worker, path, size, &place).findings
            },
        )
        .flatten()
        // That a file is not DICOM, or carries vendor text in its preamble, is for `scan`
        // to tell; an arrival is news when it is dangerous, may be (a bare runnable name
        // in a binary value), or could not be screened in full (too large, rules timed
        // out).
        .filter(pacsguard_screen::is_news)
        .collect()
}

/// The built-in rules plus `--rules`, and `--hashlist`: errors here name the file and stop
/// the run before anything is screened (exit 2).
pub(super) fn build_screener(request: &ScanRequest) -> Result<Screener, EngineError> {
    let rules = if pacsguard_screen::YARA_AVAILABLE {
        let mut sources = vec![RuleSource::builtin()];
        if let Some(dir) = &request.rules {
            sources.extend(read_rule_dir(dir)?);
        }
        Some(Rules::compile(&sources).map_err(|e| EngineError::Usage(format!("--rules: {e}")))?)
    } else if let Some(dir) = &request.rules {
        return Err(EngineError::Usage(format!(
            "--rules {}: {}",
            dir.display(),
            pacsguard_screen::RulesError::NotBuilt
        )));
    } else {
        None
    };
    let hashlist = match &request.hashlist {
        Some(path) => {
            // No link followed, no FIFO waited on, and the bound applies before the list
            // is held (`--hashlist /dev/zero` is refused, not read).
            let text = match pacsguard_fs::read_file(path, MAX_HASHLIST_BYTES) {
                Ok(read) => read.bytes,
                Err(ReadError::TooLarge { size, .. }) => {
                    return Err(EngineError::Usage(format!(
                        "--hashlist {}: {size} bytes, more than the {MAX_HASHLIST_BYTES}-byte limit",
                        path.display()
                    )));
                }
                Err(e) => return Err(EngineError::io(path, crate::files::refusal(&e))),
            };
            let origin = path.display().to_string();
            Some(
                HashList::parse(&origin, &text)
                    .map_err(|e| EngineError::Usage(format!("--hashlist: {e}")))?,
            )
        }
        None => None,
    };
    Ok(Screener::new(rules, hashlist))
}

/// The largest `--hashlist` read: MalwareBazaar's full CSV export (about a million rows
/// of a few hundred bytes) fits; `MAX_HASHLIST_ENTRIES` bounds the parsed list.
pub const MAX_HASHLIST_BYTES: u64 = 1 << 30;

/// Every `.yar` and `.yara` file directly in `dir`, sorted by name.
fn read_rule_dir(dir: &Path) -> Result<Vec<RuleSource>, EngineError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| EngineError::io(dir, e))?.path();
        let is_rule = path.extension().is_some_and(|e| e == "yar" || e == "yara");
        if is_rule && path.is_file() {
            paths.push(path);
        }
        if paths.len() > pacsguard_screen::MAX_RULE_FILES {
            return Err(EngineError::Usage(format!(
                "--rules {}: more than {} rule files",
                dir.display(),
                pacsguard_screen::MAX_RULE_FILES
            )));
        }
    }
    if paths.is_empty() {
        return Err(EngineError::Usage(format!(
            "--rules {}: no .yar or .yara files there",
            dir.display()
        )));
    }
    paths.sort();
    // The limit is on the rule source of all files together: each file is read with
    // what the files before it left (not the whole limit each, which let 10,000 files
    // of 64 MiB be read before the total was checked).
    let limit = pacsguard_screen::MAX_RULE_SOURCE_BYTES as u64;
    let mut read_so_far = 0u64;
    paths
        .into_iter()
        .map(|path| {
            let left = limit - read_so_far;
            let text = match pacsguard_fs::read_file(&path, left) {
                Ok(read) => String::from_utf8(read.bytes)
                    .map_err(|_| EngineError::io(&path, "not UTF-8 text"))?,
                Err(ReadError::TooLarge { size, .. }) => {
                    return Err(EngineError::Usage(format!(
                        "--rules {}: {size} bytes, more than the {left} bytes left of the {limit}-byte limit of rule source (MAX_RULE_SOURCE_BYTES, all rule files together)",
                        path.display()
                    )));
                }
                Err(e) => return Err(EngineError::io(&path, crate::files::refusal(&e))),
            };
            read_so_far += text.len() as u64;
            Ok(RuleSource {
                origin: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn screen_head_of(path: &Path) -> FileResult {
    match read_head(path, pacsguard_dicom::HEAD_LEN) {
        Ok(head) => {
            let screened = pacsguard_screen::screen_head(path, &head.bytes);
            FileResult {
                bytes: head.bytes.len() as u64,
                dicom: screened.inspection.container != pacsguard_dicom::Container::NotDicom,
                findings: screened.findings,
                quarantined: None,
            }
        }
        Err(error) => unread(path, &error),
    }
}

/// The finding for a file that could not be read.
fn unread(path: &Path, error: &ReadError) -> FileResult {
    let (kind, severity) = match error {
        ReadError::TooLarge { .. } => (FindingKind::NotInspected, Severity::Warning),
        ReadError::Unstable => (FindingKind::Unstable, Severity::Warning),
        // Gone or replaced by a non-file since it was listed: nothing to screen.
        ReadError::Vanished | ReadError::NotRegular => (FindingKind::Unreadable, Severity::Info),
        ReadError::Io(_) => (FindingKind::Unreadable, Severity::Warning),
    };
    FileResult {
        bytes: 0,
        dicom: false,
        findings: vec![Finding::new(
            path.to_path_buf(),
            kind,
            severity,
            format!("not screened: {error}"),
        )],
        quarantined: None,
    }
}

/// Where a worker screens: the shared screener, vault and memory budget.
struct Place<'a> {
    screener: &'a Screener,
    vault: Option<&'a Vault>,
    host: &'a str,
    actor: &'a str,
    memory: &'a MemoryBudget,
}

fn screen_file(
    worker: &mut pacsguard_screen::Worker<'_>,
    path: &Path,
    size: u64,
    place: &Place<'_>,
) -> FileResult {
    if size > MAX_WHOLE_FILE_BYTES {
        return screen_in_windows(worker, path, place);
    }
    let _lease = place.memory.take(size);
    let file = match read_file(path, MAX_WHOLE_FILE_BYTES) {
        Ok(file) => file,
        // Grown past the limit since it was listed: read it in windows.
        Err(ReadError::TooLarge { .. }) => return screen_in_windows(worker, path, place),
        Err(error) => return unread(path, &error),
    };
    let screened = worker.screen(path, &file.bytes);
    let alerted = screened
        .findings
        .iter()
        .any(|f| f.severity == Severity::Alert);
    let quarantined = match place.vault {
        Some(vault) if alerted => Some(
            vault
                .put(
                    &Original {
                        path,
                        meta: &file.meta,
                        bytes: &file.bytes,
                        findings: &screened.findings,
                    },
                    place.host,
                    place.actor,
                )
                .map(|record| (path.to_path_buf(), record)),
        ),
        _ => None,
    };
    FileResult {
        bytes: file.bytes.len() as u64,
        dicom: screened.inspection.container != pacsguard_dicom::Container::NotDicom,
        findings: screened.findings,
        quarantined,
    }
}

/// Screens a file over [`MAX_WHOLE_FILE_BYTES`] window by window, holding one window at a
/// time: the first through the DICOM inspection, every later one (overlapping the one
/// before by [`SCAN_WINDOW_OVERLAP`]) through the raw search and the rules, the last one
/// also for a ZIP's end record. The hash list is checked on a SHA-256 of the whole.
fn screen_in_windows(
    worker: &mut pacsguard_screen::Worker<'_>,
    path: &Path,
    place: &Place<'_>,
) -> FileResult {
    use sha2::{Digest as _, Sha256};

    let reader = match WindowReader::open(path) {
        Ok(reader) => reader,
        Err(error) => return unread(path, &error),
    };
    let size = reader.size();
    let _lease = place.memory.take(SCAN_WINDOW_BYTES as u64);
    let mut hasher = place.screener.hashlist().map(|_| Sha256::new());
    let head = match reader.read_at(0, SCAN_WINDOW_BYTES) {
        Ok(head) => head,
        Err(error) => return unread(path, &error),
    };
    if let Some(hasher) = hasher.as_mut() {
        hasher.update(&head);
    }
    let screened = worker.screen_first_window(path, &head, size);
    let dicom = screened.inspection.container != pacsguard_dicom::Container::NotDicom;
    // A ZIP that is the whole file: its end record is its own, not a ZIP appended.
    let whole_zip = !dicom && pacsguard_dicom::sniff(&head) == Some(pacsguard_dicom::Format::Zip);
    let mut findings = screened.findings;
    let mut hashed = head.len() as u64;
    let mut budget = pacsguard_dicom::Budget::default();
    // What the first window leaves to the readers of the later ones (a PDF header, the
    // `set` commands of a batch file).
    budget.carry(&head, SCAN_WINDOW_OVERLAP);
    let step = (SCAN_WINDOW_BYTES - SCAN_WINDOW_OVERLAP) as u64;
    let mut distant = DistantPes::default();
    distant.note(&head, 0, step, head.len() as u64 >= size);
    drop(head);
    let mut base = step;
    while base < size {
        let window = match reader.read_at(base, SCAN_WINDOW_BYTES) {
            Ok(window) => window,
            Err(error) => return unread(path, &error),
        };
        let last = base + window.len() as u64 >= size;
        if let Some(hasher) = hasher.as_mut() {
            let new = usize::try_from(hashed - base)
                .unwrap_or(0)
                .min(window.len());
            hasher.update(&window[new..]);
            hashed = base + window.len() as u64;
        }
        findings.extend(worker.screen_window(path, &window, base, last, whole_zip, &mut budget));
        distant.note(&window, base, step, last);
        base += step;
    }
    match distant.confirm(&reader, size) {
        Ok(found) => findings.extend(found.into_iter().map(|(at, detail)| {
            Finding::new(
                path.to_path_buf(),
                FindingKind::EmbeddedExecutable,
                Severity::Alert,
                detail,
            )
            .with_format(pacsguard_dicom::Format::Pe.as_str())
            .with_offset(at)
        })),
        Err(error) => return unread(path, &error),
    }
    if distant.0.is_full() {
        findings.push(Finding::new(
            path.to_path_buf(),
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "more than {} DOS headers point past the window holding them (MAX_DISTANT_PE_HEADERS): the rest were not followed to their NT headers",
                pacsguard_dicom::MAX_DISTANT_PE_HEADERS
            ),
        ));
    }
    if let Some(reason) = budget.exhausted() {
        findings.push(Finding::new(
            path.to_path_buf(),
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "the search for hidden executables stopped before the end of the file: {reason}"
            ),
        ));
    }
    if let Err(error) = reader.finish() {
        return unread(path, &error);
    }
    if let Some(hasher) = hasher {
        let digest: [u8; 32] = hasher.finalize().into();
        findings.extend(place.screener.hashlist_match(path, &digest));
    }
    // The same evidence found in two overlapping windows is one finding.
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.kind, f.offset, f.detail.clone())));
    if place.vault.is_some() && findings.iter().any(|f| f.severity == Severity::Alert) {
        findings.push(Finding::new(
            path.to_path_buf(),
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "not quarantined: {size} bytes, over the {MAX_WHOLE_FILE_BYTES} bytes the vault copies whole"
            ),
        ));
    }
    FileResult {
        bytes: size,
        dicom,
        findings,
        quarantined: None,
    }
}

/// The distant DOS headers of a file read in windows ([`pacsguard_dicom::DistantPes`]),
/// followed to their NT headers once the windows are done.
#[derive(Default)]
struct DistantPes(pacsguard_dicom::DistantPes);

impl DistantPes {
    fn note(&mut self, window: &[u8], base: u64, step: u64, last: bool) {
        self.0.note(window, base, step, last);
    }

    /// Reads the NT headers of each at its real offset: those that confirm a PE, as the
    /// `MZ`'s offset and what it is.
    fn confirm(&self, reader: &WindowReader, size: u64) -> Result<Vec<(u64, String)>, ReadError> {
        let mut found = Vec::new();
        for &(mz, e_lfanew) in self.0.headers() {
            let nt = mz + u64::from(e_lfanew);
            if nt >= size {
                continue;
            }
            let bytes = reader.read_at(nt, pacsguard_dicom::DISTANT_PE_HEADER_BYTES)?;
            if let Some(detail) = pacsguard_dicom::confirm_distant_pe(&bytes, e_lfanew) {
                found.push((mz, detail));
            }
        }
        Ok(found)
    }
}

/// File bytes held by screening workers, shared by all of them ([`MAX_SCAN_MEMORY_BYTES`]).
pub(super) struct MemoryBudget {
    total: u64,
    available: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

/// Bytes taken from a [`MemoryBudget`], given back when dropped.
pub(super) struct Lease<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    pub(super) fn new(total: u64) -> MemoryBudget {
        MemoryBudget {
            total,
            available: std::sync::Mutex::new(total),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits until `bytes` (at most the whole budget) are free and takes them.
    pub(super) fn take(&self, bytes: u64) -> Lease<'_> {
        let bytes = bytes.min(self.total);
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *available < bytes {
            available = self
                .freed
                .wait(available)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *available -= bytes;
        Lease {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *available += self.bytes;
        self.budget.freed.notify_all();
    }
}
