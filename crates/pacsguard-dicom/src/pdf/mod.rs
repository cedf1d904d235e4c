//! Encapsulated PDFs read as a PDF reader reads them: objects found even when the
//! cross-reference data is broken ([`document`]), object and cross-reference streams,
//! every stream filter that can hide text ([`filters`]), the Standard security handler
//! for documents that open without a password ([`crypt`]), and then what the document
//! does: actions and scripts ([`actions`]) and attached files, which are screened as files
//! in their own right.
//!
//! The parser is written here rather than taken from a crate: the PDF crates on crates.io
//! recurse on nesting and references, panic on some malformed input, or pull in a large
//! tree; this one is total (every read is checked, nothing recurses past
//! [`MAX_PDF_NESTING_DEPTH`]) and its work is bounded per file by [`budget`], whose limits,
//! when reached, are reported by name.

mod actions;
mod budget;
pub(crate) mod crypt;
mod document;
mod filters;
mod lexer;

use std::collections::HashSet;
use std::time::Instant;

use sha2::{Digest, Sha256};

use pacsguard_events::{FindingKind, Severity};

use crate::format::{self, Format};
use actions::Found;
pub use budget::Work;
use budget::{Budget, Limit};
use document::{Document, Encryption, UndecodedObjectStream};

pub use budget::{
    MAX_PDF_ATTACHMENT_DEPTH, MAX_PDF_ENCRYPTION_VERSIONS, MAX_PDF_FILTERS, MAX_PDF_INFLATED_BYTES,
    MAX_PDF_NESTING_DEPTH, MAX_PDF_OBJECTS, MAX_PDF_PARSED_BYTES, MAX_PDF_STREAMS,
    MAX_PDF_XREF_ENTRIES,
};

/// Findings kept per document (a crafted file can hold thousands of actions); the rest
/// are counted in one last finding.
pub const MAX_PDF_FINDINGS: usize = 16;

/// Distinct targets named in the one warning that says a document's URI actions.
pub const URI_TARGETS_NAMED: usize = 3;

/// Offsets named in the one warning that says a document's object streams that did not
/// decode.
const UNDECODED_STREAMS_NAMED: usize = 3;

/// One thing a PDF does or carries, or a part of it that could not be inspected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdfFinding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub format: Format,
    /// From the start of the PDF: the object (or object stream) it was found in.
    pub offset: usize,
    pub detail: String,
}

/// A file attached to the PDF, decoded (for rules and hash lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// Everything [`inspect`] learnt about one PDF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<PdfFinding>,
    pub attachments: Vec<Attachment>,
    /// Whether a document catalog was found (as readers find it: `/Root`, else
    /// `/Type /Catalog`): bytes that merely contain `%PDF-` are not a document a reader
    /// would show.
    pub catalog: bool,
    /// Whether a budget (a limit of [`Budget`], or the deadline) stopped the reading: a
    /// catalog not found may then be one not reached.
    pub stopped: bool,
    /// The work the reading did, counted (what tests bound instead of a clock).
    pub work: Work,
}

/// Reads `pdf` (starting anywhere before its header) and reports its actions, scripts,
/// attachments and the limits that stopped the inspection.
pub fn inspect(pdf: &[u8]) -> Report {
    inspect_within(pdf, Budget::default(), 0).0
}

/// [`inspect`] within the time left to the file it is part of: past `deadline` the
/// reader stops and says so (`INSPECTION_DEADLINE`).
pub fn inspect_until(pdf: &[u8], deadline: Instant) -> Report {
    inspect_within(pdf, Budget::until(deadline), 0).0
}

/// Where the document catalog of `pdf` is, found as readers find it (see
/// [`Document::catalog_offset`]); `None` when no reader would show a document.
pub fn catalog(pdf: &[u8], deadline: Instant) -> Option<usize> {
    Document::read(pdf, Budget::until(deadline)).catalog_offset()
}

fn inspect_within(pdf: &[u8], budget: Budget, depth: usize) -> (Report, Budget) {
    let mut doc = Document::read(pdf, budget);
    let mut report = Report {
        catalog: doc.catalog_offset().is_some(),
        ..Report::default()
    };
    match &doc.encryption {
        Encryption::None | Encryption::Open => {}
        Encryption::NeedsPassword => report.findings.push(not_inspected(
            0,
            "PDF encrypted with a user password (a reader asks for it): its strings and \
             streams were not inspected"
                .to_owned(),
        )),
        Encryption::Unsupported(what) => report.findings.push(not_inspected(
            0,
            format!("PDF encrypted with {what}, which cannot be decrypted here: its strings and streams were not inspected"),
        )),
    }
    // What a reader reads through an object stream is out of sight when its data does not
    // decode here: said, never passed over (qpdf warns of such a stream too). A document
    // that could not be decrypted is said to be so above, its streams with it.
    let decrypted = matches!(doc.encryption, Encryption::None | Encryption::Open);
    if decrypted {
        report
            .findings
            .extend(undecoded_object_streams(&doc.undecoded_object_streams));
    }
    report
        .findings
        .extend(object_streams_cut(&doc.object_streams_cut));
    read_actions_and_attachments(&mut doc, depth, &mut report);
    let budget = read_other_readings(pdf, doc, depth, &mut report);
    for limit in budget.reached().to_vec() {
        report.stopped = true;
        report.findings.push(not_inspected(
            0,
            format!(
                "PDF not fully inspected: the budget of {} was reached",
                limit.describe()
            ),
        ));
    }
    dedupe_and_cap(&mut report.findings);
    report.work = budget.work;
    (report, budget)
}

/// The one warning for the object streams of a document that did not decode: how many,
/// the objects they hide, and where the first UNDECODED_STREAMS_NAMED are. A warning per
/// stream said the same again for each (a damaged document of 1,600 objects filled
/// MAX_PDF_FINDINGS; task r33-screen).
fn undecoded_object_streams(streams: &[UndecodedObjectStream]) -> Option<PdfFinding> {
    let first = streams.first()?;
    let hidden: usize = streams.iter().map(|s| s.declared - s.found).sum();
    let declared: usize = streams.iter().map(|s| s.declared).sum();
    let detail = if streams.len() == 1 {
        format!(
            "PDF object stream at offset {} could not be decoded: {hidden} of the {declared} objects it declares were not inspected",
            first.offset
        )
    } else {
        let offsets: Vec<String> = streams
            .iter()
            .take(UNDECODED_STREAMS_NAMED)
            .map(|s| s.offset.to_string())
            .collect();
        let more = streams.len().saturating_sub(offsets.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "{} PDF object streams could not be decoded (at offsets {}{more}): {hidden} of the {declared} objects they declare were not inspected",
            streams.len(),
            offsets.join(", ")
        )
    };
    Some(not_inspected(first.offset, detail))
}

/// The one warning naming the object streams a budget kept from being read whole: the
/// budget's own warning says which limit, this what it left unread.
fn object_streams_cut(offsets: &[usize]) -> Option<PdfFinding> {
    let first = *offsets.first()?;
    let named: Vec<String> = offsets
        .iter()
        .take(UNDECODED_STREAMS_NAMED)
        .map(usize::to_string)
        .collect();
    let more = offsets.len().saturating_sub(named.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(not_inspected(
        first,
        format!(
            "{} PDF object stream(s) not read whole, a budget reached first (at offsets {}{more}): the objects in them were not inspected",
            offsets.len(),
            named.join(", ")
        ),
    ))
}

/// What `doc` does and carries, into `report`: its actions, and its attachments screened.
fn read_actions_and_attachments(doc: &mut Document, depth: usize, report: &mut Report) {
    for found in actions::find(doc) {
        match found {
            Found::Action {
                kind,
                severity,
                offset,
                detail,
            } => report.findings.push(PdfFinding {
                kind,
                severity,
                format: Format::Pdf,
                offset,
                detail,
            }),
            Found::Attachment { object, name } => {
                let offset = doc.objects.get(object).map_or(0, |o| o.offset);
                let Some(bytes) = doc.decode_stream(object) else {
                    continue; // a filter no reader applies, or a budget (reported below)
                };
                let name = String::from_utf8_lossy(&name).into_owned();
                let budget = std::mem::take(&mut doc.budget);
                doc.budget = screen_attachment(&name, &bytes, offset, budget, depth, report);
                report.attachments.push(Attachment {
                    name,
                    offset,
                    bytes,
                });
            }
        }
    }
}

/// The other ways readers undo the encryption of `doc` ([`Document::other_readings`]),
/// each read with a budget of its own (bounded: at most two more readings, and
/// [`MAX_PDF_ENCRYPTION_VERSIONS`] for other versions of the encryption dictionary, each
/// within the limits, all within the one deadline, none begun past it), whose limits
/// reached are `doc`'s to report.
/// What a reader would act on in one of them is an alert, said to come from that
/// reading, and the attachments it extracts go to rules and hash lists; the rest (what
/// the strings and streams a reader decrypts look like undecrypted) is noise, not
/// findings. `doc`'s budget is returned.
fn read_other_readings(pdf: &[u8], mut doc: Document, depth: usize, report: &mut Report) -> Budget {
    let mut budget = std::mem::take(&mut doc.budget);
    let readings = doc.other_readings();
    if readings.is_empty() {
        return budget;
    }
    // Each reading may extract again what another extracted (MAX_PDF_STREAMS files each):
    // known by digest, not compared with every file kept, whose cost grew as their square.
    let mut kept: HashSet<[u8; 32]> = report
        .attachments
        .iter()
        .map(|a| digest(&a.bytes, &mut budget.work))
        .collect();
    for (reading, why) in readings {
        // Each reading has a budget of its own and only the deadline in common, and a
        // fresh budget reads the clock once per TICKS_PER_CLOCK_READ objects: asked here,
        // a reading is never begun past the deadline, and the deadline is then named
        // (recorded as reached) rather than passed silently.
        if budget.out_of_time() {
            break;
        }
        budget.work.other_readings += 1;
        let mut other = Document::read_as(pdf, budget.renewed(), reading);
        let mut read = Report::default();
        read_actions_and_attachments(&mut other, depth, &mut read);
        for mut finding in read.findings {
            if finding.severity == Severity::Alert {
                finding.detail = format!("{} ({why})", finding.detail);
                report.findings.push(finding);
            }
        }
        for attachment in read.attachments {
            if kept.insert(digest(&attachment.bytes, &mut budget.work)) {
                report.attachments.push(attachment);
            }
        }
        for limit in other.budget.reached() {
            budget.reach(*limit);
        }
        budget.work.add(other.budget.work);
    }
    budget
}

/// The SHA-256 of an attachment: what tells one file from another (as the hash lists do).
fn digest(bytes: &[u8], work: &mut Work) -> [u8; 32] {
    work.attachment_bytes_matched += bytes.len();
    Sha256::digest(bytes).into()
}

fn not_inspected(offset: usize, detail: String) -> PdfFinding {
    PdfFinding {
        kind: FindingKind::NotInspected,
        severity: Severity::Warning,
        format: Format::Pdf,
        offset,
        detail,
    }
}

/// Same finding twice (one script reached from two objects, one attachment named twice)
/// is one; past [`MAX_PDF_FINDINGS`] the rest are counted, the most severe kept. What
/// could not be inspected (a budget, a password) is always kept: a cap must not hide that
/// the inspection stopped.
fn dedupe_and_cap(findings: &mut Vec<PdfFinding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.kind, f.severity, f.detail.clone())));
    let (mut notes, mut rest): (Vec<_>, Vec<_>) = findings
        .drain(..)
        .partition(|f| f.kind == FindingKind::NotInspected);
    rest.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let room = MAX_PDF_FINDINGS.saturating_sub(notes.len() + 1);
    if rest.len() > room + 1 {
        let dropped = rest.len() - room;
        rest.truncate(room);
        notes.push(not_inspected(
            0,
            format!("{dropped} more PDF finding(s) not listed (limit {MAX_PDF_FINDINGS})"),
        ));
    }
    findings.extend(rest);
    findings.extend(notes);
    findings.truncate(MAX_PDF_FINDINGS);
}

/// Screens one attached file as a file in its own right: an executable, script or
/// archive is an alert; an attached PDF is read in turn (with what is left of the same
/// budget); anything else is recorded as info.
fn screen_attachment(
    name: &str,
    bytes: &[u8],
    offset: usize,
    mut budget: Budget,
    depth: usize,
    report: &mut Report,
) -> Budget {
    let shown = actions::quote(name.as_bytes());
    let sniffed = format::sniff(bytes);
    if sniffed == Some(Format::Pdf) && format::confirm_executable(bytes).is_none() {
        if depth + 1 > MAX_PDF_ATTACHMENT_DEPTH {
            budget.reach(Limit::AttachmentDepth);
            return budget;
        }
        let (nested, budget) = inspect_within(bytes, budget, depth + 1);
        let mut acts = false;
        for mut finding in nested.findings {
            acts |= finding.severity > Severity::Info;
            finding.offset = offset;
            finding.detail = format!("in the PDF attached as \"{shown}\": {}", finding.detail);
            report.findings.push(finding);
        }
        report.attachments.extend(nested.attachments);
        if !acts {
            report.findings.push(PdfFinding {
                kind: FindingKind::EmbeddedFile,
                severity: Severity::Info,
                format: Format::Pdf,
                offset,
                detail: format!(
                    "PDF attachment \"{shown}\" (a PDF, {} bytes): nothing active in it",
                    bytes.len()
                ),
            });
        }
        return budget;
    }
    let (kind, severity, format, detail) = attachment_verdict(&shown, name, bytes, sniffed);
    report.findings.push(PdfFinding {
        kind,
        severity,
        format: format.unwrap_or(Format::Pdf),
        offset,
        detail,
    });
    budget
}

/// What an attached file (not a PDF) is: kind, severity, format and the sentence.
fn attachment_verdict(
    shown: &str,
    name: &str,
    bytes: &[u8],
    sniffed: Option<Format>,
) -> (FindingKind, Severity, Option<Format>, String) {
    if let Some(exe) = format::confirm_executable(bytes) {
        return (
            FindingKind::EmbeddedExecutable,
            Severity::Alert,
            Some(exe.format),
            format!("PDF attachment \"{shown}\": {}", exe.detail),
        );
    }
    match crate::archive::open(bytes) {
        crate::archive::Opened::Carries { format, detail, .. } => {
            return (
                FindingKind::EmbeddedExecutable,
                Severity::Alert,
                format.or(sniffed),
                format!("PDF attachment \"{shown}\" is an archive carrying what runs: {detail}"),
            );
        }
        crate::archive::Opened::Limit { format, detail } => {
            return (
                FindingKind::NotInspected,
                Severity::Warning,
                Some(format),
                format!(
                    "PDF attachment \"{shown}\" ({format}) not fully opened: the limit of {detail} was reached"
                ),
            );
        }
        crate::archive::Opened::Inert { format, members } => {
            return (
                FindingKind::EmbeddedFile,
                Severity::Info,
                Some(format),
                format!(
                    "PDF attachment \"{shown}\" ({format} holding {members} file(s), none of which runs)"
                ),
            );
        }
        crate::archive::Opened::NotArchive => {}
    }
    match sniffed {
        Some(
            format @ (Format::Pe
            | Format::Elf
            | Format::MachO
            | Format::JavaClass
            | Format::Zip
            | Format::Rar
            | Format::SevenZip
            | Format::Cab
            | Format::Ole
            | Format::Lnk
            | Format::Rtf
            | Format::Xz
            | Format::Bzip2
            | Format::Zstd
            | Format::Gzip
            | Format::Tar),
        ) => {
            return (
                FindingKind::EmbeddedExecutable,
                Severity::Alert,
                Some(format),
                format!("PDF attachment \"{shown}\" is a {format} file"),
            );
        }
        Some(
            format @ (Format::Script
            | Format::PythonBytecode
            | Format::Shell
            | Format::Batch
            | Format::PowerShell
            | Format::Html
            | Format::Svg),
        ) => {
            return (
                FindingKind::ActiveContent,
                Severity::Alert,
                Some(format),
                format!("PDF attachment \"{shown}\" is a {format} file, which runs when opened"),
            );
        }
        Some(Format::Xml | Format::Pdf | Format::PostScript) | None => {}
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if let Some(extension) = extension.filter(|e| format::RUNNABLE_EXTENSIONS.contains(&e.as_str()))
    {
        return (
            FindingKind::ActiveContent,
            Severity::Alert,
            sniffed,
            format!("PDF attachment \"{shown}\": a .{extension} file runs when opened"),
        );
    }
    if let Some((_, detail)) = crate::embedded::trailing_zip(bytes) {
        return (
            FindingKind::EmbeddedExecutable,
            Severity::Alert,
            Some(Format::Zip),
            format!("PDF attachment \"{shown}\" ends with a {detail}"),
        );
    }
    let what = sniffed.map_or("data".to_owned(), |f| f.to_string());
    (
        FindingKind::EmbeddedFile,
        Severity::Info,
        sniffed,
        format!(
            "PDF attachment \"{shown}\" ({what}, {} bytes): not an executable, script or archive",
            bytes.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document whose encryption dictionary (object 2) is defined twice: one other
    /// reading (`Reading::DecryptedWithVersion`) besides the first.
    const TWO_ENCRYPTION_VERSIONS: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n\
        2 0 obj\n<< /Filter /Standard /V 9 /R 9 >>\nendobj\n\
        2 0 obj\n<< /Filter /Standard /V 8 /R 8 >>\nendobj\n\
        trailer\n<< /Root 1 0 R /Encrypt 2 0 R >>\n%%EOF\n";

    /// Task r32-pdf (issue 10): the readings after the first were begun whatever the time,
    /// each with a budget whose clock is read once every TICKS_PER_CLOCK_READ objects, so
    /// a reading of a small document begun past the deadline ran to its end and nothing
    /// said the deadline had passed. A reading is not begun past it, and the deadline is
    /// named.
    #[test]
    fn no_other_reading_is_begun_past_the_deadline_and_the_deadline_is_named() {
        let doc = Document::read(TWO_ENCRYPTION_VERSIONS, Budget::default());
        assert_eq!(doc.other_readings().len(), 1);
        let budget = read_other_readings(TWO_ENCRYPTION_VERSIONS, doc, 0, &mut Report::default());
        assert_eq!(
            budget.work.other_readings, 1,
            "in time, the reading is made"
        );
        assert!(budget.reached().is_empty(), "{:?}", budget.reached());

        let mut doc = Document::read(TWO_ENCRYPTION_VERSIONS, Budget::default());
        let past = Instant::now()
            .checked_sub(std::time::Duration::from_secs(1))
            .expect("a clock running for a second");
        doc.budget = Budget::until(past);
        let mut report = Report::default();
        let budget = read_other_readings(TWO_ENCRYPTION_VERSIONS, doc, 0, &mut report);
        assert_eq!(
            budget.work.other_readings, 0,
            "past the deadline, none is begun"
        );
        assert_eq!(budget.reached(), [Limit::Deadline]);
    }

    /// The readings' deadline is the file's: an inspection begun past it reads nothing
    /// else and says which budget stopped it.
    #[test]
    fn an_inspection_past_its_deadline_names_the_deadline() {
        let past = Instant::now()
            .checked_sub(std::time::Duration::from_secs(1))
            .expect("a clock running for a second");
        let report = inspect_until(TWO_ENCRYPTION_VERSIONS, past);
        assert_eq!(report.work.other_readings, 0);
        assert!(report.stopped);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::NotInspected
                    && f.detail.contains("INSPECTION_DEADLINE")),
            "{:#?}",
            report.findings
        );
    }
}
