//! Detect-only screening of file contents.
//!
//! A [`Screener`] holds what a run screens with: the built-in DICOM inspection
//! (`pacsguard-dicom`), the compiled YARA rules (the project's own set by default, plus
//! `--rules`), and known-bad hash lists. Each worker thread takes a [`Worker`] and calls
//! [`Worker::screen`] with a file's path and bytes; findings come back ready for the
//! event spine.
//!
//! Invariant: screening only reads the bytes it is given. It never opens, writes, moves or
//! deletes a file (`clippy.toml` forbids file APIs here): the decision what to do about a
//! finding belongs to a person, and quarantine is a copy made elsewhere.

mod hashlist;
mod rules;

use std::path::Path;

use pacsguard_dicom::{
    Budget, Container, Inspection, inspect_first_window, inspect_head, inspect_window,
    inspect_within,
};
use pacsguard_events::{Finding, FindingKind, Severity};
use sha2::{Digest as _, Sha256};

pub use hashlist::{HashList, HashListError, MAX_HASHLIST_ENTRIES, MAX_HASHLIST_LINE};
pub use rules::{
    BUILTIN_ORIGIN, BUILTIN_RULES, MAX_MATCHES_PER_PATTERN, MAX_RULE_FILES, MAX_RULE_SOURCE_BYTES,
    RuleMatch, RuleScan, RuleScanner, RuleSource, Rules, RulesError, SCAN_TIMEOUT, YARA_CLOCK_STEP,
    yara_timeout,
};

/// Rule matches kept per file (whole file and documents together); the rest are counted.
pub const MAX_RULE_FINDINGS: usize = pacsguard_dicom::MAX_OBSERVATIONS;

/// The `format` of a `not-inspected` finding about the YARA rules alone (a pattern at
/// MAX_MATCHES_PER_PATTERN, SCAN_TIMEOUT, rules not applied, matches not listed): what
/// the limit left undecided is whether a rule matched, a `yara-match` and nothing else.
/// A gateway route that does not refuse `yara-match` forwards such a data set.
pub const RULES_FORMAT: &str = "yara";

/// Whether YARA support was compiled in.
pub const YARA_AVAILABLE: bool = cfg!(feature = "yara");

/// The kinds of the screener's warnings that say something of the file's form, not of
/// what it holds: a preamble of vendor text, a file that is not DICOM, one that does
/// not parse to its end. `scan` tells them; the gateway (which writes the file's
/// preamble and meta group itself) and the judging of an arrival leave them out.
pub const FORM_WARNINGS: [FindingKind; 3] = [
    FindingKind::PreambleNonstandard,
    FindingKind::NotDicom,
    FindingKind::MalformedDicom,
];

/// Whether a screening finding is news to the gateway's record and to an arrival's
/// judging: every alert, and every warning but those of [`FORM_WARNINGS`] (a limit
/// reached, `not-inspected`; a command that chance bytes of a binary value may make,
/// `active-content`). The one place that decides it: review r32-screen found the gateway
/// and the arrivals each keeping a list of the kinds kept, alerts and `not-inspected`,
/// which dropped the `active-content` warning (an alert until session 32) unrecorded.
/// A kind added later is news unless it is about form. Of what is only on the record
/// (info), a `not-inspected` one stays, as both kept it before: it says how far the
/// screening read (bytes after a deflated data set, which readers ignore, searched).
pub fn is_news(finding: &Finding) -> bool {
    match finding.severity {
        Severity::Alert => true,
        Severity::Warning => !FORM_WARNINGS.contains(&finding.kind),
        Severity::Info => finding.kind == FindingKind::NotInspected,
    }
}

/// What a run screens with.
#[derive(Debug, Default)]
pub struct Screener {
    rules: Option<Rules>,
    hashlist: Option<HashList>,
}

/// One file's result.
#[derive(Debug)]
pub struct Screened {
    pub findings: Vec<Finding>,
    pub inspection: Inspection,
    /// Computed when a hash list was given.
    pub sha256: Option<[u8; 32]>,
}

impl Screener {
    pub fn new(rules: Option<Rules>, hashlist: Option<HashList>) -> Screener {
        Screener { rules, hashlist }
    }

    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    pub fn hashlist(&self) -> Option<&HashList> {
        self.hashlist.as_ref()
    }

    /// A worker for one thread.
    pub fn worker(&self) -> Worker<'_> {
        Worker {
            screener: self,
            scanner: self.rules.as_ref().map(Rules::scanner),
        }
    }
}

/// Screens files one at a time on one thread.
#[derive(Debug)]
pub struct Worker<'s> {
    screener: &'s Screener,
    scanner: Option<RuleScanner<'s>>,
}

impl Worker<'_> {
    /// Screens the bytes of the file at `path` (used only to name it in findings).
    pub fn screen(&mut self, path: &Path, bytes: &[u8]) -> Screened {
        self.screen_within(path, bytes, Budget::default(), false)
    }

    /// [`Worker::screen`] until `deadline` at the latest, the caller's (sooner than the
    /// inspection's own): the inspection's searches stop there ([`Budget::until`]) and
    /// the rules are not applied once it has passed, each a `not-inspected` warning
    /// naming `time_limit`, so that a screening nobody waits for any more ends and frees
    /// its thread (the gateway's `limits.screening_deadline`).
    pub fn screen_until(
        &mut self,
        path: &Path,
        bytes: &[u8],
        deadline: std::time::Instant,
        time_limit: String,
    ) -> Screened {
        self.screen_within(path, bytes, Budget::until(deadline, time_limit), true)
    }

    fn screen_within(
        &mut self,
        path: &Path,
        bytes: &[u8],
        budget: Budget,
        caller_deadline: bool,
    ) -> Screened {
        let name = path.file_name().map(|n| n.to_string_lossy());
        let deadline = budget.deadline();
        let time_limit = budget.time_limit().to_owned();
        let inspection = inspect_within(bytes, budget).named(name.as_deref().unwrap_or(""));
        let mut screened = if self.scanner.is_some() && std::time::Instant::now() > deadline {
            let scanner = self.scanner.take();
            let mut screened = self.screen_inspected(path, bytes, inspection, None);
            self.scanner = scanner;
            screened.findings.push(
                Finding::new(
                    path.to_path_buf(),
                    FindingKind::NotInspected,
                    Severity::Warning,
                    format!("YARA rules not applied: the inspection took longer than {time_limit}"),
                )
                .with_format(RULES_FORMAT),
            );
            screened
        } else {
            // The rules stop at the caller's deadline too, not SCAN_TIMEOUT per buffer
            // later (review r24-scan).
            let until = caller_deadline.then_some(RulesDeadline {
                at: deadline,
                named: &time_limit,
            });
            self.screen_inspected(path, bytes, inspection, until)
        };
        if let Some(list) = &self.screener.hashlist {
            let digest: [u8; 32] = Sha256::digest(bytes).into();
            screened
                .findings
                .extend(hashlist_finding(list, path, &digest));
            screened.sha256 = Some(digest);
        }
        if screened.inspection.container == Container::NotDicom {
            // A known-bad file that is not DICOM is an alert; that it is not DICOM is
            // then the lesser news, but still on the record.
            screened
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        screened
    }

    /// Screens the first window of a file of `file_len` bytes, too large to read whole
    /// (see [`inspect_first_window`]); the caller screens the rest with
    /// [`Worker::screen_window`] and checks the hash list with [`Screener::hashlist_match`].
    pub fn screen_first_window(&mut self, path: &Path, head: &[u8], file_len: u64) -> Screened {
        let name = path.file_name().map(|n| n.to_string_lossy());
        let inspection = inspect_first_window(head, file_len).named(name.as_deref().unwrap_or(""));
        self.screen_inspected(path, head, inspection, None)
    }

    /// Screens one later window of a file read in windows, at offset `base`: hidden
    /// content, markup, and the rules (whose matches name the window). `whole_zip`: the
    /// file is a ZIP, not DICOM (see [`inspect_window`]).
    pub fn screen_window(
        &mut self,
        path: &Path,
        window: &[u8],
        base: u64,
        last: bool,
        whole_zip: bool,
        budget: &mut Budget,
    ) -> Vec<Finding> {
        let observations = inspect_window(window, base, last, whole_zip, budget);
        let mut findings = observations_as_findings(path, &observations);
        if let Some(scanner) = self.scanner.as_mut() {
            let place = format!(" in the window at offset {base}");
            rule_findings(
                scanner,
                path,
                window,
                &place,
                Some(base),
                None,
                &mut findings,
            );
        }
        findings
    }

    fn screen_inspected(
        &mut self,
        path: &Path,
        bytes: &[u8],
        inspection: Inspection,
        until: Option<RulesDeadline<'_>>,
    ) -> Screened {
        let mut findings = findings_of(path, &inspection);
        let parts = if self.scanner.is_some() || self.screener.hashlist.is_some() {
            parts_of(&inspection)
        } else {
            Vec::new()
        };
        if let Some(scanner) = self.scanner.as_mut() {
            let before = findings.len();
            rule_findings(scanner, path, bytes, "", None, until, &mut findings);
            for part in &parts {
                rule_findings(
                    scanner,
                    path,
                    &part.bytes,
                    &part.place,
                    part.offset,
                    until,
                    &mut findings,
                );
            }
            let from_rules = findings.len() - before;
            if from_rules > MAX_RULE_FINDINGS {
                findings.truncate(before + MAX_RULE_FINDINGS);
                findings.push(
                    Finding::new(
                        path.to_path_buf(),
                        FindingKind::NotInspected,
                        Severity::Warning,
                        format!(
                            "{} more rule match(es) in this file not listed (limit {MAX_RULE_FINDINGS})",
                            from_rules - MAX_RULE_FINDINGS
                        ),
                    )
                    .with_format(RULES_FORMAT),
                );
            }
        }
        if let Some(list) = &self.screener.hashlist {
            for part in &parts {
                let Some(named) = &part.as_file else {
                    continue;
                };
                let digest: [u8; 32] = Sha256::digest(&part.bytes).into();
                if list.contains(&digest) {
                    let finding = Finding::new(
                        path.to_path_buf(),
                        FindingKind::HashlistMatch,
                        Severity::Alert,
                        format!(
                            "SHA-256 {} of {named} is on the list {}",
                            hex(&digest),
                            list.origin()
                        ),
                    );
                    findings.push(match part.offset {
                        Some(offset) => finding.with_offset(offset),
                        None => finding,
                    });
                }
            }
        }
        Screened {
            findings,
            inspection,
            sha256: None,
        }
    }
}

impl Screener {
    /// The finding for a file whose SHA-256 is on the hash list, if it is.
    pub fn hashlist_match(&self, path: &Path, digest: &[u8; 32]) -> Option<Finding> {
        hashlist_finding(self.hashlist.as_ref()?, path, digest)
    }
}

fn hashlist_finding(list: &HashList, path: &Path, digest: &[u8; 32]) -> Option<Finding> {
    list.contains(digest).then(|| {
        Finding::new(
            path.to_path_buf(),
            FindingKind::HashlistMatch,
            Severity::Alert,
            format!("SHA-256 {} is on the list {}", hex(digest), list.origin()),
        )
    })
}

/// Bytes the rules screen besides the file's own, as a reader decodes or takes them out:
/// the inflated data set, the encapsulated documents, their PDFs' attachments, and the
/// DICOM files held in values with all of theirs.
struct Part<'i> {
    /// How a rule's finding names where it matched (after "matched").
    place: String,
    /// In the file; none for what lies in an inflated data set (see [`document_place`]).
    offset: Option<u64>,
    bytes: std::borrow::Cow<'i, [u8]>,
    /// What a reader takes out as a file of its own (`dcm2pdf` writes a document, a PDF
    /// reader an attachment, either of them a DICOM file held in a value), named for the
    /// hash list's finding, which checks these as it checks the file; `None` for the
    /// inflated data set, which no reader writes out alone.
    as_file: Option<String>,
}

/// Everything in `inspection` the rules and hash lists screen besides the file's bytes.
fn parts_of(inspection: &Inspection) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    if !inspection.inflated.is_empty() {
        // The deflated data set as a reader decodes it: its text elements are compressed
        // in the file, where no rule can see them.
        parts.push(Part {
            place: " in the inflated data set".to_owned(),
            offset: None,
            bytes: (&inspection.inflated[..]).into(),
            as_file: None,
        });
    }
    documents_and_attachments(&inspection.documents, "", None, &mut parts);
    for nested in &inspection.nested_files {
        let held = format!("the DICOM file held {}", nested.place);
        parts.push(Part {
            place: format!(" in {held}"),
            offset: nested.offset,
            bytes: (&nested.bytes[..]).into(),
            as_file: Some(held.clone()),
        });
        if !nested.inflated.is_empty() {
            parts.push(Part {
                place: format!(" in the inflated data set of {held}"),
                offset: None,
                bytes: (&nested.inflated[..]).into(),
                as_file: None,
            });
        }
        documents_and_attachments(
            &nested.documents,
            &format!(" of {held}"),
            nested.offset,
            &mut parts,
        );
    }
    parts
}

/// The encapsulated `documents` of a file held at `held_at` in the file screened (none:
/// the file itself, or a file in an inflated data set) and the attachments their PDF
/// reader decodes (within its per-document budgets; a document that is not a PDF has
/// none), each named with `of_holder` after it.
fn documents_and_attachments<'i>(
    documents: &'i [pacsguard_dicom::Document],
    of_holder: &str,
    held_at: Option<u64>,
    parts: &mut Vec<Part<'i>>,
) {
    for document in documents {
        let (document_place, document_offset) = document_place(document, of_holder, held_at);
        parts.push(Part {
            place: document_place.clone(),
            offset: document_offset,
            bytes: (&document.bytes[..]).into(),
            as_file: Some(document_place.trim_start_matches(" in ").to_owned()),
        });
        for attachment in pacsguard_dicom::inspect_pdf(&document.bytes).attachments {
            let attached = format!(
                " attached as \"{}\" to{}",
                pacsguard_events::escape_bytes(attachment.name.as_bytes()),
                document_place.trim_start_matches(" in")
            );
            parts.push(Part {
                as_file: Some(format!("the file{attached}")),
                place: attached,
                offset: document_offset.map(|at| at + attachment.offset as u64),
                bytes: attachment.bytes.into(),
            });
        }
    }
}

/// How a finding in an encapsulated document names where it is (`of_holder` naming the
/// DICOM file holding it, if not the file screened), and its offset in the file: none
/// for a document of a deflated data set, whose offset counts in the inflated data set
/// (the file holds it compressed), so it is named in the words instead.
fn document_place(
    document: &pacsguard_dicom::Document,
    of_holder: &str,
    held_at: Option<u64>,
) -> (String, Option<u64>) {
    let holder_offset = if of_holder.is_empty() {
        Some(0)
    } else {
        held_at
    };
    match holder_offset {
        Some(holder) if !document.in_inflated_data_set => (
            format!(" in the encapsulated document {}{of_holder}", document.tag),
            Some(holder + document.offset),
        ),
        _ if document.in_inflated_data_set => (
            format!(
                " in the encapsulated document {}{of_holder} (at offset {} of the inflated data set)",
                document.tag, document.offset
            ),
            None,
        ),
        _ => (
            format!(
                " in the encapsulated document {}{of_holder} (at offset {} of that file)",
                document.tag, document.offset
            ),
            None,
        ),
    }
}

/// Screens only the preamble, from the first [`pacsguard_dicom::HEAD_LEN`] bytes of a
/// file: no data set walk, no rules, no hash list.
pub fn screen_head(path: &Path, head: &[u8]) -> Screened {
    let inspection = inspect_head(head);
    Screened {
        findings: findings_of(path, &inspection),
        inspection,
        sha256: None,
    }
}

/// The inspection's observations as findings on `path`.
pub fn findings_of(path: &Path, inspection: &Inspection) -> Vec<Finding> {
    observations_as_findings(path, &inspection.observations)
}

fn observations_as_findings(
    path: &Path,
    observations: &[pacsguard_dicom::Observation],
) -> Vec<Finding> {
    observations
        .iter()
        .map(|observation| {
            let mut finding = Finding::new(
                path.to_path_buf(),
                observation.kind,
                observation.severity,
                observation.detail.clone(),
            );
            if let Some(format) = observation.format {
                finding = finding.with_format(format.as_str());
            }
            if let Some(offset) = observation.offset {
                finding = finding.with_offset(offset);
            }
            finding
        })
        .collect()
}

/// A caller's deadline for the rules (the gateway's `limits.screening_deadline`), and
/// how its warning names it.
#[derive(Clone, Copy, Debug)]
struct RulesDeadline<'a> {
    at: std::time::Instant,
    named: &'a str,
}

fn rule_findings(
    scanner: &mut RuleScanner<'_>,
    path: &Path,
    data: &[u8],
    place: &str,
    offset: Option<u64>,
    until: Option<RulesDeadline<'_>>,
    findings: &mut Vec<Finding>,
) {
    let finding = |kind, severity, detail: String| {
        let mut finding = Finding::new(path.to_path_buf(), kind, severity, detail);
        if kind == FindingKind::NotInspected {
            finding = finding.with_format(RULES_FORMAT);
        }
        match offset {
            Some(offset) => finding.with_offset(offset),
            None => finding,
        }
    };
    // The time left before the caller's deadline, when it is sooner than SCAN_TIMEOUT.
    let cut = until
        .map(|until| {
            let left = until
                .at
                .saturating_duration_since(std::time::Instant::now());
            (left, until.named)
        })
        .filter(|&(left, _)| left < SCAN_TIMEOUT);
    if let Some((left, named)) = cut
        && left.is_zero()
    {
        findings.push(finding(
            FindingKind::NotInspected,
            Severity::Warning,
            format!("YARA rules not applied{place}: the screening took longer than {named}"),
        ));
        return;
    }
    // yara-x stops a scan only on a whole second (YARA_CLOCK_STEP): begun with less
    // left, it would overrun the deadline.
    if let Some((left, named)) = cut
        && rules::yara_timeout(left).is_none()
    {
        findings.push(finding(
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "YARA rules not applied{place}: {} ms were left before {named}, less than the {} s step of yara-x's clock (YARA_CLOCK_STEP)",
                left.as_millis(),
                rules::YARA_CLOCK_STEP.as_secs()
            ),
        ));
        return;
    }
    match scanner.scan_within(data, cut.map_or(SCAN_TIMEOUT, |(left, _)| left)) {
        RuleScan::TimedOut if cut.is_some() => findings.push(finding(
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "YARA rules stopped{place} when the screening took longer than {}; the rules were not fully applied",
                cut.map_or("", |(_, named)| named)
            ),
        )),
        RuleScan::Matches { matches, capped } => {
            if !capped.is_empty() {
                // Reported once per buffer, naming the first few: a rule whose condition
                // counts matches past the limit may have matched.
                const NAMED: usize = 4;
                let named: Vec<&str> = capped.iter().take(NAMED).map(String::as_str).collect();
                findings.push(finding(
                    FindingKind::NotInspected,
                    Severity::Warning,
                    format!(
                        "YARA rule pattern(s) {}{} reached {MAX_MATCHES_PER_PATTERN} matches{place} (MAX_MATCHES_PER_PATTERN) in rules that did not match: a condition on further matches was not evaluated on them",
                        named.join(", "),
                        if capped.len() > NAMED {
                            format!(" and {} more", capped.len() - NAMED)
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            for matched in matches {
                let detail = match &matched.description {
                    Some(description) => {
                        format!("YARA rule {} matched{place}: {description}", matched.rule)
                    }
                    None => format!("YARA rule {} matched{place}", matched.rule),
                };
                let mut found = finding(FindingKind::YaraMatch, matched.severity, detail);
                found.format = matched.format;
                findings.push(found);
            }
        }
        RuleScan::TimedOut => findings.push(finding(
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "YARA rules timed out after {} s{place}; the rules were not fully applied",
                SCAN_TIMEOUT.as_secs()
            ),
        )),
        RuleScan::Failed(reason) => findings.push(finding(
            FindingKind::NotInspected,
            Severity::Warning,
            format!("YARA rules could not be applied{place}: {reason}"),
        )),
    }
}

/// Lower-case hexadecimal of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod news_tests {
    use super::*;

    fn finding(kind: FindingKind, severity: Severity) -> Finding {
        Finding::new("/store/a.dcm".into(), kind, severity, "")
    }

    /// What the gateway's record and an arrival's judging keep: every alert, every warning
    /// but the form warnings, and of the info only `not-inspected` (how far the screening
    /// read; the gateway's record kept it before `is_news`, and a merge of session 32
    /// dropped it).
    #[test]
    fn news_is_every_alert_every_warning_but_form_and_a_not_inspected_info() {
        assert!(is_news(&finding(
            FindingKind::EmbeddedExecutable,
            Severity::Alert
        )));
        assert!(is_news(&finding(
            FindingKind::ActiveContent,
            Severity::Warning
        )));
        assert!(is_news(&finding(
            FindingKind::NotInspected,
            Severity::Warning
        )));
        assert!(is_news(&finding(FindingKind::NotInspected, Severity::Info)));
        for form in FORM_WARNINGS {
            assert!(!is_news(&finding(form, Severity::Warning)), "{form:?}");
        }
        assert!(!is_news(&finding(
            FindingKind::ActiveContent,
            Severity::Info
        )));
    }
}
