//! Executables and active content hidden outside the preamble (PS3.10 §7.5 asks for this
//! check): a native executable inside a binary or private element, a ZIP or JAR found from
//! its end-of-central-directory record, a PDF that runs script.
//!
//! Every candidate is confirmed by structure before it counts: `MZ` must lead through
//! `e_lfanew` to `PE\0\0` and valid NT headers inside the same value, an end-of-directory
//! record must point back at a central directory header. Random bytes in pixel data then
//! match with a probability far below one in 2^64 per position.

use std::sync::LazyLock;
use std::time::Instant;

use aho_corasick::AhoCorasick;
use pacsguard_events::{FindingKind, Severity, escape_bytes};

use crate::budget::Budget;
use crate::format::{self, Format, PDF_HEADER_WINDOW, u16_le, u32_le};
use crate::pdf;

/// The four-byte magics that open a candidate (besides `MZ` and `%PDF-`, searched apart);
/// each is confirmed before anything is reported.
const CANDIDATE_MAGICS: [&[u8]; 19] = [
    b"\x7fELF",
    &[0xFE, 0xED, 0xFA, 0xCE],
    &[0xCE, 0xFA, 0xED, 0xFE],
    &[0xFE, 0xED, 0xFA, 0xCF],
    &[0xCF, 0xFA, 0xED, 0xFE],
    &[0xCA, 0xFE, 0xBA, 0xBE],
    &[0xCA, 0xFE, 0xBA, 0xBF],
    b"PK\x05\x06",
    // gzip (opened: an alert only if what it carries runs) and tar's ustar magic, 257
    // bytes into a member header.
    b"\x1f\x8b\x08",
    b"ustar",
    // Compressed streams that cannot be opened here: `not-inspected` warnings once their
    // header checks hold (what they carry is not known; nothing runs them).
    b"\xfd7zXZ\0",
    b"7z\xbc\xaf\x27\x1c",
    b"BZh",
    // A `.pyc` of CPython 3.7 and later (PEP 552), two bytes in: its magic's `\r\n` and
    // a flags word of 0, 1 or 3. (3.6 and older put a timestamp there: no fixed bytes to
    // search for, and those releases are long out of support.)
    b"\r\n\0\0\0\0",
    b"\r\n\x01\0\0\0",
    b"\r\n\x03\0\0\0",
    // An OLE compound file (a legacy Office document): an alert when it carries macros
    // (VBA, Excel 4.0 macro sheets) or a packaged file, which Office runs.
    b"\xd0\xcf\x11\xe0",
    // An RTF document: an alert when an object it embeds runs (a Package, the equation
    // editor), as for the same document on its own. Word opens one from `{\rt` on, as
    // the sniffer does (`{\rt1`, `{\rtx`: review s19-r10).
    b"{\\rt",
    // A Microsoft cabinet: an alert when it installs a program, as on its own. Its
    // reserved fields are not checked by extractors (gcab, libmspack): `MSCF` alone.
    b"MSCF",
];

/// Leftmost-first matching lets aho-corasick use its SIMD (Teddy) searcher for these
/// few four-byte patterns. With the two-byte `MZ` among them it fell back to a byte-at-a-
/// time automaton that took half of a scan's time (perf, 1 GB of CT images).
static CANDIDATES: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(CANDIDATE_MAGICS)
        .ok()
});

/// Searchers built once: `memmem::find` builds one per call, which cost more than the
/// search itself on the short values of a data set (perf, small instances).
static MZ: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"MZ"));
static EOCD: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"PK\x05\x06"));

/// A ZIP's end-of-central-directory record is 22 bytes plus a comment of up to 65,535.
const EOCD_LEN: usize = 22;
const EOCD_SEARCH_WINDOW: usize = EOCD_LEN + u16::MAX as usize;

/// One confirmed piece of hidden content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    pub format: Format,
    /// From the start of the bytes searched.
    pub offset: usize,
    /// `active-content` for a document that acts when opened, `embedded-executable` for an
    /// executable or an archive; a PDF also reports its attachments (`embedded-file`) and
    /// the limits that stopped its inspection (`not-inspected`).
    pub kind: FindingKind,
    pub severity: Severity,
    pub detail: String,
}

/// Searches `bytes` for confirmed executables, archives and active PDFs, calling `found`
/// for each until it returns `false`. `bytes` lies at `base` in `whole` (the file, or the
/// inflated data set): a candidate is confirmed against the bytes from it to the end of
/// `whole`, as a loader reads them, so that a PE whose DOS header is in one element and
/// its NT headers in the next is confirmed. Parses are charged to `budget` (a PDF has its
/// own object-model budgets on top, see [`crate::pdf`]).
pub fn search(
    bytes: &[u8],
    whole: &[u8],
    base: usize,
    budget: &mut Budget,
    mut found: impl FnMut(Hidden) -> bool,
) {
    let from = |at: usize| whole.get(base + at..).unwrap_or(&bytes[at..]);
    // A reader looks for a PDF header in the first kilobyte only: further in (in pixel data
    // above all) five chance bytes are not a document. The first header found is read to
    // the end of `bytes`, which covers every later one.
    if let Some(at) = pdf_header(bytes)
        && budget.charge(bytes.len() - at)
    {
        for hidden in pdf_report(bytes, at, false, budget.deadline()) {
            if !found(hidden) {
                return;
            }
        }
    }
    // `MZ` on its own: memchr's two-byte search is fast where an automaton is not.
    for at in MZ.find_iter(bytes) {
        if budget.exhausted().is_some() {
            return;
        }
        if let Some(exe) = format::confirm_executable_within(from(at), budget)
            && !found(Hidden {
                format: exe.format,
                offset: at,
                kind: FindingKind::EmbeddedExecutable,
                severity: Severity::Alert,
                detail: exe.detail,
            })
        {
            return;
        }
    }
    let Some(candidates) = CANDIDATES.as_ref() else {
        return;
    };
    let mut archives = Archives::default();
    for candidate in candidates.find_iter(bytes) {
        if budget.exhausted().is_some() {
            return;
        }
        let at = candidate.start();
        let hidden = match CANDIDATE_MAGICS[candidate.pattern().as_usize()] {
            b"PK\x05\x06" => {
                zip_ending_at(bytes, at).map(|detail| judged_zip(bytes, at, detail, budget))
            }
            b"\x1f\x8b\x08" => archives.open(from(at), at, budget),
            b"ustar" => match at.checked_sub(257) {
                Some(header) => archives.open(from(header), header, budget),
                None => None,
            },
            b"\r\n\0\0\0\0" | b"\r\n\x01\0\0\0" | b"\r\n\x03\0\0\0" => at
                .checked_sub(2)
                .and_then(|start| {
                    format::confirm_executable_within(from(start), budget).map(|exe| (start, exe))
                })
                .map(|(start, exe)| Hidden {
                    format: exe.format,
                    offset: start,
                    kind: FindingKind::EmbeddedExecutable,
                    severity: Severity::Alert,
                    detail: exe.detail,
                }),
            b"\xd0\xcf\x11\xe0" => ole_at(from(at), at, budget),
            b"{\\rt" => rtf_at(from(at), at, budget),
            b"MSCF" => cab_at(from(at), at, budget),
            // Not opened here, so nothing is known of what it carries: said as what was
            // not inspected, not called an executable (issue 11: a vendor's honest bzip2
            // or xz private value was an `embedded-executable` alert, and a guarded store's
            // import in a window alerted on each). No DICOM reader decompresses an element
            // and runs it; a payload so wrapped needs a program of its own, as ciphertext
            // does, and the watcher still weighs such values (`wrapped_random`).
            b"\xfd7zXZ\0" | b"7z\xbc\xaf\x27\x1c" | b"BZh" => {
                crate::archive::confirm_compressed(from(at)).map(|(format, detail)| Hidden {
                    format,
                    offset: at,
                    kind: FindingKind::NotInspected,
                    severity: Severity::Warning,
                    detail: format!(
                        "{detail} inside the data set, which cannot be opened here: what it \
                         carries was not inspected"
                    ),
                })
            }
            _ => format::confirm_executable_within(from(at), budget).map(|exe| Hidden {
                format: exe.format,
                offset: at,
                kind: FindingKind::EmbeddedExecutable,
                severity: Severity::Alert,
                detail: exe.detail,
            }),
        };
        if let Some(hidden) = hidden
            && !found(hidden)
        {
            return;
        }
    }
}

/// An OLE compound file at `offset` (its bytes from there on, as Office reads them from
/// its header), judged by what it carries: an alert if that runs, a warning if it could
/// not be read far enough to tell (a workbook encrypted with a password Excel asks for:
/// it said nothing in an element, while the same file on its own was a warning). Its
/// reading is charged to `budget`.
fn ole_at(bytes: &[u8], offset: usize, budget: &mut Budget) -> Option<Hidden> {
    if format::sniff(bytes) != Some(Format::Ole) || !budget.charge(bytes.len()) {
        return None;
    }
    match crate::carriers::ole(bytes) {
        crate::carriers::Carries::Runs(what) => Some(Hidden {
            format: Format::Ole,
            offset,
            kind: FindingKind::EmbeddedExecutable,
            severity: Severity::Alert,
            detail: format!("an OLE compound file (an Office document) carrying {what}"),
        }),
        crate::carriers::Carries::CannotTell(why) => Some(Hidden {
            format: Format::Ole,
            offset,
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            detail: format!("an OLE compound file (an Office document) not inspected: {why}"),
        }),
        crate::carriers::Carries::Inert(_) => None,
    }
}

/// An RTF document at `offset` (its bytes from there on), judged by the objects it embeds
/// as the same document on its own is: Word reads it to the brace that closes its first
/// group, so what follows (the rest of the data set) is not part of it. Its reading is
/// charged to `budget`.
fn rtf_at(bytes: &[u8], offset: usize, budget: &mut Budget) -> Option<Hidden> {
    if format::sniff(bytes) != Some(Format::Rtf) {
        return None;
    }
    // Looked for no further than the budget left allows (one byte past it, so that the
    // charge of a document that long fails): the walk is the work being charged.
    let document = &bytes[..rtf_end(bytes, budget.bytes_left().saturating_add(1))];
    if !budget.charge(document.len()) {
        return None;
    }
    match crate::carriers::rtf(document) {
        crate::carriers::Carries::Runs(what) => Some(Hidden {
            format: Format::Rtf,
            offset,
            kind: FindingKind::EmbeddedExecutable,
            severity: Severity::Alert,
            detail: format!("an RTF document carrying {what}"),
        }),
        crate::carriers::Carries::CannotTell(why) => Some(Hidden {
            format: Format::Rtf,
            offset,
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            detail: format!("an RTF document not inspected: {why}"),
        }),
        crate::carriers::Carries::Inert(_) => None,
    }
}

/// A cabinet at `offset` (its bytes from there on), judged by the files it lists as the
/// same cabinet on its own is. Its file list is read where the header puts it, whatever
/// size the header declares and whatever version up to 1.3 it names: gcab and libmspack
/// extract a cabinet whose `cbCabinet` lies (larger or smaller than the cabinet) or whose
/// version is 1.0 or 1.2 (a warning at most), and Wine's FDI refuses only versions past
/// 1.3 (review s19-r10). Eight chance bytes of pixel data are no cabinet: a header that is
/// not as every writer sets it (version 1.3, a size within the bytes) gives an alert when
/// it lists a program and nothing otherwise, never a warning about nothing; nor are the
/// reserved fields checked (gcab extracts a cabinet whose first one is `AAAA`).
fn cab_at(bytes: &[u8], offset: usize, budget: &mut Budget) -> Option<Hidden> {
    let size = usize::try_from(u32_le(bytes, 8)?).ok()?;
    let first_file = usize::try_from(u32_le(bytes, 16)?).ok()?;
    let (minor, major) = (*bytes.get(24)?, *bytes.get(25)?);
    if major > 1 || (major == 1 && minor > 3) || first_file < 36 || first_file >= bytes.len() {
        return None;
    }
    let as_written = (minor, major) == (3, 1)
        && (36..=bytes.len()).contains(&size)
        && bytes.get(4..8) == Some(&[0; 4]);
    // A declared size short of the file list lies: the list is read where it is.
    let cabinet = if as_written && first_file < size {
        &bytes[..size]
    } else {
        bytes
    };
    // What the file list can span: a CFFILE entry is 16 bytes and a name searched no
    // further than MAX_CAB_NAME_BYTES.
    let files = usize::from(u16_le(bytes, 28)?);
    if !budget.charge(
        cabinet
            .len()
            .min(first_file.saturating_add(files * (16 + crate::carriers::MAX_CAB_NAME_BYTES))),
    ) {
        return None;
    }
    match crate::carriers::cab(cabinet) {
        crate::carriers::Carries::Runs(what) => Some(Hidden {
            format: Format::Cab,
            offset,
            kind: FindingKind::EmbeddedExecutable,
            severity: Severity::Alert,
            detail: format!("a cabinet carrying {what}"),
        }),
        crate::carriers::Carries::CannotTell(why) if as_written => Some(Hidden {
            format: Format::Cab,
            offset,
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            detail: format!("a cabinet not inspected: {why}"),
        }),
        crate::carriers::Carries::CannotTell(_) | crate::carriers::Carries::Inert(_) => None,
    }
}

/// Where the RTF group that opens `bytes` closes (just past its `}`), as Word reads it:
/// escaped braces `\{` `\}` and the N raw bytes of `\binN` data are no braces (review
/// s19-r10: braces in `\bin` data ended the document before an object Word reads); the
/// end of `bytes` when it does not close, or `limit` when it does not close before it.
fn rtf_end(bytes: &[u8], limit: usize) -> usize {
    let stop = bytes.len().min(limit);
    let mut depth = 0usize;
    let mut i = 0;
    while i < stop {
        #[cfg(test)]
        tests::RTF_WALKED.with(|n| n.set(n.get() + 1));
        match bytes[i] {
            b'\\' => {
                let (end, binary) = crate::carriers::control_word(&bytes[i..], 0);
                i = i.saturating_add(end).saturating_add(binary);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    stop
}

/// Distinct `not-inspected` warnings one search gives for the gzip and tar archives it
/// opens. The same reason is named once (the members past a limit, opened afresh, meet
/// that limit again: a file of thousands of members is one warning); a different reason
/// (a limit, then a workbook encrypted with a password Excel asks for, in a separate
/// archive) is a warning of its own, up to this many: each names a file names its own
/// reason, and an attacker can make as many as it has members.
pub const MAX_ARCHIVE_WARNINGS_PER_SEARCH: usize = 8;

/// The gzip and tar archives one search opened: the starts their walks read, and the
/// warnings given.
#[derive(Default)]
struct Archives {
    /// Offsets (in the bytes searched, ascending) where an earlier walk read a later gzip
    /// member or tar header from that offset on, as opening an archive there would: its
    /// own members, looked at by that walk. Opening each again cost a walk per member
    /// (quadratic) and a warning per member when the walk met a limit (33 for one file).
    /// Only those starts: a range ("everything the walk went through") let a 512-byte tar
    /// header claiming an 8 GiB member, or a gzip start inside a member's data, hide
    /// every gzip of a program after it, which the walk had judged by nothing but the
    /// first bytes of the member around it.
    walked: std::collections::BTreeSet<usize>,
    /// The details of the `not-inspected` warnings given for archives in these bytes (at
    /// most [`MAX_ARCHIVE_WARNINGS_PER_SEARCH`]): one per reason (a single flag dropped
    /// every reason after the first limit). Alerts are never held back.
    reported: Vec<String>,
}

impl Archives {
    /// The gzip or tar archive at `offset` (`bytes` from there on), opened unless an
    /// earlier walk read a member or header from there: a finding if it carries what
    /// runs, or if a limit stopped the look inside (once per reason in a search). Its work
    /// is charged to `budget`.
    fn open(&mut self, bytes: &[u8], offset: usize, budget: &mut Budget) -> Option<Hidden> {
        if self.walked.contains(&offset) {
            return None;
        }
        let (hidden, walked) = archive_at(bytes, offset, budget);
        self.walked
            .extend(walked.into_iter().map(|at| offset.saturating_add(at)));
        match hidden {
            Some(hidden) if hidden.kind == FindingKind::NotInspected => {
                let new = self.reported.len() < MAX_ARCHIVE_WARNINGS_PER_SEARCH
                    && !self.reported.contains(&hidden.detail);
                new.then(|| {
                    self.reported.push(hidden.detail.clone());
                    hidden
                })
            }
            other => other,
        }
    }
}

/// A gzip or tar archive at `offset` (its bytes from there on), opened: a finding if it
/// carries what runs, or if a limit stopped the look inside; and the offsets (from
/// `offset`) of the later members and headers its walk read. Its work is charged.
fn archive_at(bytes: &[u8], offset: usize, budget: &mut Budget) -> (Option<Hidden>, Vec<usize>) {
    use crate::archive::{open_walking, sniff_archive};
    let Some(format) = sniff_archive(bytes) else {
        return (None, Vec::new());
    };
    let (opened, work, walked) = open_walking(bytes);
    if !budget.charge(work) {
        return (None, walked);
    }
    (opened_hidden(opened, format, offset), walked)
}

/// What an opened archive at `offset` is to report.
fn opened_hidden(opened: crate::archive::Opened, format: Format, offset: usize) -> Option<Hidden> {
    use crate::archive::Opened;
    match opened {
        Opened::Carries {
            format: inner,
            detail,
            ..
        } => Some(Hidden {
            format: inner.unwrap_or(format),
            offset,
            kind: FindingKind::EmbeddedExecutable,
            severity: Severity::Alert,
            detail: format!("{format} archive carrying what runs: {detail}"),
        }),
        Opened::Limit { detail, .. } => Some(Hidden {
            format,
            offset,
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            detail: format!("{format} archive not fully opened: the limit of {detail} was reached"),
        }),
        Opened::Inert { .. } | Opened::NotArchive => None,
    }
}

/// Where a reader finds a PDF header in `bytes`: in the first kilobyte, in either form
/// (`%PDF-` or `%!PS-Adobe-N.n PDF-M.m`).
pub(crate) fn pdf_header(bytes: &[u8]) -> Option<usize> {
    // By its `%` (memchr), not with a searcher built per call: this runs on every value.
    // A header starts in the window (`format::pdf_header_window`).
    let first = |magic: &[u8]| {
        let head = format::pdf_header_window(bytes, magic);
        memchr::memchr_iter(b'%', head)
            .take_while(|&at| at < PDF_HEADER_WINDOW)
            .find(|&at| head[at..].starts_with(magic))
    };
    first(b"%PDF-").or_else(|| first(b"%!PS-Adobe-"))
}

/// What a PDF in `bytes` does and carries, if a reader would find its header there. The
/// first header found is read, which covers every later one.
pub fn pdf_findings(bytes: &[u8]) -> Vec<Hidden> {
    match pdf_header(bytes) {
        Some(at) => pdf_report(bytes, at, false, Budget::default().deadline()),
        None => Vec::new(),
    }
}

/// The Encapsulated Document value, which a viewer hands to a PDF reader whatever its
/// first kilobyte holds: qpdf, mutool and pdfinfo open a document whose header is further
/// in, or missing, as long as a catalog is there. [`search`] reads it when the header is
/// in the first kilobyte; this reads it otherwise.
pub fn encapsulated_document(bytes: &[u8], deadline: Instant) -> Vec<Hidden> {
    if pdf_header(bytes).is_some() {
        return Vec::new(); // read by `search`
    }
    let at = memchr::memmem::find(bytes, b"%PDF-").unwrap_or(0);
    pdf_report(bytes, at, true, deadline)
}

pub(crate) fn pdf_report(
    bytes: &[u8],
    at: usize,
    needs_catalog: bool,
    deadline: Instant,
) -> Vec<Hidden> {
    let report = pdf::inspect_until(&bytes[at..], deadline);
    // No catalog: no document a reader would show, unless a budget stopped the reading
    // before one was reached (review s12-r10: 200,000 empty objects before a catalog with
    // an action, which qpdf and mutool open, went silent). Then what stopped it is said.
    let no_document = needs_catalog && !report.catalog;
    if no_document && !report.stopped {
        return Vec::new();
    }
    report
        .findings
        .into_iter()
        .filter(|finding| !no_document || finding.kind == FindingKind::NotInspected)
        .map(|finding| Hidden {
            format: finding.format,
            offset: at + finding.offset,
            kind: finding.kind,
            severity: finding.severity,
            detail: finding.detail,
        })
        .collect()
}

/// The alerts of a PDF, as one sentence, or `None` if it has none.
pub fn active_pdf(pdf: &[u8]) -> Option<String> {
    let alerts: Vec<String> = pdf_findings(pdf)
        .into_iter()
        .filter(|f| f.severity == Severity::Alert)
        .map(|f| f.detail)
        .collect();
    (!alerts.is_empty()).then(|| alerts.join("; "))
}

/// [`trailing_zip`] as the finding it is: an archive a ZIP reader opens from the end,
/// judged by its entries.
pub(crate) fn trailing_zip_hidden(bytes: &[u8]) -> Option<Hidden> {
    let mut budget = Budget::default();
    trailing_zip(bytes).map(|(offset, detail)| judged_zip(bytes, offset, detail, &mut budget))
}

/// A ZIP found inside other bytes by its end record at `eocd` (confirmed, described by
/// `detail`), judged as a ZIP file on its own is, entry by entry: an alert when an entry
/// runs (`java -jar` and `python3` open a JAR or zipapp wherever it sits), a warning when
/// its entries could not all be read, else info: a ZIP of reports runs nothing, wherever
/// it is. Its work is charged to `budget`.
fn judged_zip(bytes: &[u8], eocd: usize, detail: String, budget: &mut Budget) -> Hidden {
    let comment_len = usize::from(u16_le(bytes, eocd + 20).unwrap_or(0));
    let end = eocd
        .saturating_add(EOCD_LEN)
        .saturating_add(comment_len)
        .min(bytes.len());
    let mut work = crate::archive::Work::new();
    let verdict = zip_at_depth(&bytes[..end], 1, &mut work);
    budget.charge(work.done());
    let (kind, severity, detail) = match verdict {
        WholeZip::Runs(entry) => (
            FindingKind::EmbeddedExecutable,
            Severity::Alert,
            format!("{detail}, with an entry that runs (\"{entry}\")"),
        ),
        WholeZip::CannotTell(why) => (
            FindingKind::NotInspected,
            Severity::Warning,
            format!("{detail}, whose entries were not all read ({why})"),
        ),
        WholeZip::Inert(_) if work.zip_unread > 0 => (
            FindingKind::NotInspected,
            Severity::Warning,
            format!(
                "{detail}, of which {} entr{} could not be read ({})",
                work.zip_unread,
                if work.zip_unread == 1 { "y" } else { "ies" },
                unread_because(&work)
            ),
        ),
        WholeZip::Inert(_) => (
            FindingKind::EmbeddedFile,
            Severity::Info,
            format!("{detail}, none of whose entries runs"),
        ),
    };
    Hidden {
        format: Format::Zip,
        offset: eocd,
        kind,
        severity,
        detail,
    }
}

/// A ZIP archive whose end-of-central-directory record is in the last 64 KiB of `bytes`
/// (how a ZIP appended to a DICOM file is found, whatever its preamble says). Returns the
/// offset of the record and a description.
pub fn trailing_zip(bytes: &[u8]) -> Option<(usize, String)> {
    let window_start = bytes.len().saturating_sub(EOCD_SEARCH_WINDOW);
    // Found forwards (a SIMD search; the reverse one is not), confirmed from the last:
    // the record readers take is the one nearest the end.
    let found: Vec<usize> = EOCD.find_iter(&bytes[window_start..]).collect();
    found.into_iter().rev().find_map(|at| {
        let at = window_start + at;
        zip_ending_at(bytes, at).map(|detail| (at, detail))
    })
}

/// Confirms an end-of-central-directory record at `eocd` the way ZIP readers do: its
/// directory size (from the ZIP64 record when the classic fields are saturated) must lead
/// back to a central directory file header. Neither the comment length nor the entry
/// count is trusted: Java accepts trailing bytes after the record when the directory is
/// there, and Python's `zipfile` and `zipimport` read the directory by its size, whatever
/// count the record claims (zero included).
fn zip_ending_at(bytes: &[u8], eocd: usize) -> Option<String> {
    let (directory, entries, zip64) = zip_directory(bytes, eocd)?;
    let comment_len = usize::from(u16_le(bytes, eocd + 20)?);
    let name_len = usize::from(u16_le(bytes, directory + 28)?);
    let first_name = bytes.get(directory + 46..directory + 46 + name_len)?;
    let kind = if first_name.starts_with(b"META-INF/") {
        "JAR"
    } else if first_name == b"__main__.py" || first_name == b"__main__.pyc" {
        "Python zipapp"
    } else {
        "ZIP"
    };
    zip_description(bytes, eocd, comment_len, kind, entries, zip64, first_name)
}

/// Where the central directory of the ZIP whose end record is at `eocd` starts, how many
/// entries it claims, and whether ZIP64 records said so.
fn zip_directory(bytes: &[u8], eocd: usize) -> Option<(usize, u64, bool)> {
    zip_directory_at(bytes, eocd).map(|(directory, entries, zip64, _)| (directory, entries, zip64))
}

/// [`zip_directory`], and the directory's offset as the records give it (from the start
/// of the archive: less than where it is when bytes were put before the archive): the
/// first of [`zip_directories`].
fn zip_directory_at(bytes: &[u8], eocd: usize) -> Option<(usize, u64, bool, u64)> {
    zip_directories(bytes, eocd).into_iter().next()
}

/// Every central directory a ZIP reader finds from the end record at `eocd`: where it
/// starts, how many entries it claims, whether ZIP64 records said so, and its offset as
/// the records give it. Readers disagree on where the ZIP64 end record is, and an archive
/// can hold a different directory for each: Python (`zipfile`, `zipimport`) reads the
/// 56-byte record right before the 20-byte locator; Java (`java -jar`) reads it at the
/// offset the locator gives, with nothing between them required. Java and Python take
/// the ZIP64 record whenever the locator is there, whether or not the classic fields are
/// saturated; when they are not, Java keeps the classic fields if the two disagree. Every
/// directory one of them reads is returned (the same one once), so that what one reader
/// runs is judged even when another reader is shown a decoy.
fn zip_directories(bytes: &[u8], eocd: usize) -> Vec<(usize, u64, bool, u64)> {
    let mut found = Vec::new();
    let (Some(entries), Some(directory_size), Some(directory_offset)) = (
        u16_le(bytes, eocd + 10),
        u32_le(bytes, eocd + 12),
        u32_le(bytes, eocd + 16),
    ) else {
        return found;
    };
    let saturated = entries == 0xFFFF || directory_size == 0xFFFF_FFFF;
    let locator = eocd
        .checked_sub(ZIP64_LOCATOR_LEN)
        .filter(|&at| bytes.get(at..at + 4) == Some(b"PK\x06\x07"));
    let mut view = |end_of_directory: usize, entries: u64, size: u64, offset: u64, zip64: bool| {
        let Some(directory) = usize::try_from(size)
            .ok()
            .and_then(|size| end_of_directory.checked_sub(size))
        else {
            return;
        };
        let here = (directory, entries, zip64, offset);
        if bytes.get(directory..directory + 4) == Some(b"PK\x01\x02") && !found.contains(&here) {
            found.push(here);
        }
    };
    if let Some(locator) = locator {
        // Python's place for the record, then Java's (the locator's offset, taken as a
        // position in the bytes, as Java takes it in the file).
        let records = [
            locator.checked_sub(ZIP64_RECORD_LEN),
            u64_le(bytes, locator + 8).and_then(|at| usize::try_from(at).ok()),
        ];
        for record in records.into_iter().flatten() {
            if bytes.get(record..record.saturating_add(4)) != Some(b"PK\x06\x06") {
                continue;
            }
            let (Some(entries), Some(size), Some(offset)) = (
                u64_le(bytes, record + 32),
                u64_le(bytes, record + 40),
                u64_le(bytes, record + 48),
            ) else {
                continue;
            };
            view(record, entries, size, offset, true);
        }
        // A locator without a record Python finds: the classic fields stand, and the
        // directory ends where the locator begins (Python); Java's ends at the record.
        if !saturated {
            view(
                locator,
                entries.into(),
                directory_size.into(),
                directory_offset.into(),
                false,
            );
        }
    }
    if !saturated {
        view(
            eocd,
            entries.into(),
            directory_size.into(),
            directory_offset.into(),
            false,
        );
    }
    found
}

fn zip_description(
    bytes: &[u8],
    eocd: usize,
    comment_len: usize,
    kind: &str,
    entries: u64,
    zip64: bool,
    first_name: &[u8],
) -> Option<String> {
    let mut notes = Vec::new();
    if zip64 {
        notes.push("ZIP64".to_owned());
    }
    if entries == 0 {
        notes.push(
            "its end record claims no entries, but the central directory is there".to_owned(),
        );
    }
    let record_end = eocd.saturating_add(EOCD_LEN).saturating_add(comment_len);
    if record_end < bytes.len().saturating_sub(1) {
        notes.push(format!(
            "{} byte(s) follow its end record",
            bytes.len() - record_end
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    Some(format!(
        "{kind} archive with {entries} entr{}, the first named \"{}\"{notes}",
        if entries == 1 { "y" } else { "ies" },
        shown(first_name)
    ))
}

/// Central directory entries read to tell whether a ZIP that is a whole file runs. Past
/// it, the verdict is "not inspected" (a warning), never "inert".
pub const MAX_ZIP_ENTRIES_READ: usize = 50_000;

/// What a ZIP that is a whole file (not DICOM) holds, entry by entry, as the programs that
/// open it see it: `java -jar` runs a JAR (a manifest, classes), `python3` a zipapp
/// (`__main__.py`), Explorer a program double-clicked inside; Office runs macros
/// (`vbaProject.bin`). A ZIP of reports and images runs nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WholeZip {
    /// The entry that runs, named.
    Runs(String),
    /// This many entries, none of which runs.
    Inert(u64),
    /// The directory could not be read to its end (broken, or [`MAX_ZIP_ENTRIES_READ`]).
    CannotTell(String),
}

/// ZIPs inside a ZIP opened, counting the outer one: a JAR in a ZIP in a ZIP is the
/// usual mail attachment. An entry that is a ZIP one level deeper is not opened: a
/// warning (the verdict "cannot tell"), never "inert".
pub const MAX_ZIP_DEPTH: usize = 3;
/// Bytes inflated in all to open the ZIPs inside a ZIP (each is read whole: its
/// directory is at its end). Past it, the rest cannot be told: a warning.
pub const MAX_NESTED_ZIP_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn whole_zip(bytes: &[u8]) -> WholeZip {
    zip_nested(bytes, 1, &mut crate::archive::Work::new())
}

/// A ZIP that is a member of a tar or gzip `depth` containers deep, judged as
/// [`whole_zip`] judges a ZIP, with the limits of the archive around it (`work`). Entries
/// whose first bytes could not be read (encrypted ones among them) make "none runs"
/// something it cannot tell.
pub(crate) fn zip_nested(bytes: &[u8], depth: usize, work: &mut crate::archive::Work) -> WholeZip {
    let unread = work.zip_unread;
    match zip_at_depth(bytes, depth, work) {
        WholeZip::Inert(_) if work.zip_unread > unread => {
            let n = work.zip_unread - unread;
            WholeZip::CannotTell(format!(
                "{n} entr{} could not be read: {}",
                if n == 1 { "y" } else { "ies" },
                unread_because(work)
            ))
        }
        verdict => verdict,
    }
}

/// Every entry is looked at: one that cannot be told (a nested archive past a limit)
/// is remembered and the walk goes on, so that a program after it is still found; the
/// verdict is then "cannot tell" only if nothing runs.
///
/// Each directory a reader finds ([`zip_directories`]) is judged: an entry that runs in
/// any of them is what that reader runs.
fn zip_at_depth(bytes: &[u8], depth: usize, work: &mut crate::archive::Work) -> WholeZip {
    let Some((eocd, _)) = trailing_zip(bytes) else {
        return WholeZip::CannotTell("no central directory found".to_owned());
    };
    let mut judged: Option<WholeZip> = None;
    for directory in zip_directories(bytes, eocd) {
        judged = Some(
            match (directory_verdict(bytes, directory, depth, work), judged) {
                (runs @ WholeZip::Runs(_), _) => return runs,
                (_, Some(cannot @ WholeZip::CannotTell(_))) => cannot,
                (verdict, _) => verdict,
            },
        );
    }
    judged.unwrap_or_else(|| WholeZip::CannotTell("no central directory found".to_owned()))
}

/// One central directory of a ZIP (`directory`: where it is, the entries it claims,
/// whether ZIP64 said so, its offset as the records give it), entry by entry.
fn directory_verdict(
    bytes: &[u8],
    directory: (usize, u64, bool, u64),
    depth: usize,
    work: &mut crate::archive::Work,
) -> WholeZip {
    let (mut at, entries, _, offset) = directory;
    // Entries are found from the start of the archive, which is where readers put it
    // when bytes come before it (Python's zipfile and Java take the difference between
    // where the directory is and where the records say it is): a ZIP in an element, or
    // after a DICOM file, is read as they read it.
    let start = usize::try_from(offset)
        .ok()
        .and_then(|offset| at.checked_sub(offset))
        .unwrap_or(0);
    let bytes = &bytes[start..];
    at -= start;
    let mut read = 0u64;
    let mut undecided: Option<String> = None;
    while bytes.get(at..at + 4) == Some(b"PK\x01\x02") {
        if work.zip_entries >= MAX_ZIP_ENTRIES_READ {
            return WholeZip::CannotTell(format!(
                "more than {MAX_ZIP_ENTRIES_READ} entries (MAX_ZIP_ENTRIES_READ)"
            ));
        }
        let (Some(name_len), Some(extra_len), Some(comment_len)) = (
            u16_le(bytes, at + 28),
            u16_le(bytes, at + 30),
            u16_le(bytes, at + 32),
        ) else {
            break;
        };
        let name_end = at + 46 + usize::from(name_len);
        let Some(name) = bytes.get(at + 46..name_end) else {
            break;
        };
        if entry_runs(name) {
            return WholeZip::Runs(shown(name));
        }
        // unzip names the file it writes by the Info-ZIP Unicode Path extra field when
        // its checksum matches the header's name (review rv44-screen case6: `setup.exe`
        // there, `setup.txt` in the header, was clean).
        let extra = bytes
            .get(name_end..name_end + usize::from(extra_len))
            .unwrap_or_default();
        if let Some(unicode) = unicode_path(extra, name)
            && entry_runs(unicode)
        {
            return WholeZip::Runs(format!(
                "{} (so named by its Unicode Path extra field, which unzip uses; \"{}\" in the header)",
                shown(unicode),
                shown(name)
            ));
        }
        let head = entry_head(bytes, at);
        if head.is_none() && u32_le(bytes, at + 20).is_some_and(|size| size > 0) {
            work.zip_unread += 1;
            if let Some(method) = method_not_decoded(bytes, at) {
                // What `unzip` extracts and cannot be looked into here: judged by what
                // names it a program (its name, its Unix mode), as the content is for
                // stored and deflated entries.
                // The name unzip writes counts too (see `unicode_path` above).
                let by_name = |named: &[u8]| {
                    runs_by_name_or_mode(bytes, at, named).map(|why| (why.to_owned(), shown(named)))
                };
                let runs = by_name(name).or_else(|| {
                    unicode_path(extra, name).and_then(|unicode| {
                        by_name(unicode).map(|(why, shown_unicode)| {
                            let why = format!(
                                "{why}, by its Unicode Path extra field, which unzip uses; \"{}\" in the header",
                                shown(name)
                            );
                            (why, shown_unicode)
                        })
                    })
                });
                if let Some((why, shown_name)) = runs {
                    return WholeZip::Runs(format!(
                        "{shown_name} ({why}; compressed with {}, not decoded here)",
                        method_name(method)
                    ));
                }
                work.zip_unread_method.get_or_insert(method);
            }
        }
        if let Some(head) = &head
            && let Some(format) = format::sniff(head).filter(|f| runs_from_its_start(*f, head))
        {
            return WholeZip::Runs(format!("{} ({format})", shown(name)));
        }
        // unzip restores an execute bit, and a text of commands without `#!` then runs
        // through the shell's ENOEXEC fallback (review rv44-screen case6: `shutdown -r
        // now` in a file of mode 0755 was info). Programs and `#!` scripts were caught
        // above by their start; the rest is what `sh` would run, so a decodable entry
        // is judged by that: files copied off a FAT stick or a CD get 0755/0777, and a
        // DICOM file, a README or an HTML page of mode 0755 runs nothing (review
        // rv45-screen case12: every such export was an alert). An entry that cannot be
        // decoded is judged by its mode alone. An empty file runs nothing.
        if let Some(why) = executable_mode(bytes, at)
            && u32_le(bytes, at + 24).is_some_and(|size| size > 0)
        {
            match executable_text(bytes, at, head.as_deref(), work) {
                ExecutableText::Runs(what) => {
                    return WholeZip::Runs(format!("{} ({why}; {what})", shown(name)));
                }
                ExecutableText::CannotTell(what) => {
                    undecided.get_or_insert(format!("{} ({why}; {what})", shown(name)));
                }
                ExecutableText::Inert => {}
            }
        }
        if name.eq_ignore_ascii_case(b"[Content_Types].xml") {
            match declared_macros(bytes, at, work) {
                Ok(Some(what)) => return WholeZip::Runs(format!("{} ({what})", shown(name))),
                Ok(None) => {}
                Err(why) => {
                    undecided.get_or_insert(why);
                }
            }
        }
        let nested = head.as_deref().and_then(|head| {
            if head.starts_with(b"PK\x03\x04") {
                Some(Nested::Zip)
            } else if crate::archive::sniff_archive(head).is_some() {
                Some(Nested::Archive)
            } else {
                match format::sniff(head) {
                    Some(carrier @ (Format::Ole | Format::Rtf | Format::Cab)) => {
                        Some(Nested::Carrier(carrier))
                    }
                    _ => None,
                }
            }
        });
        if let Some(kind) = nested {
            match nested_entry(bytes, at, name, kind, depth, work) {
                WholeZip::Runs(what) => return WholeZip::Runs(what),
                WholeZip::CannotTell(why) => {
                    undecided.get_or_insert(why);
                }
                WholeZip::Inert(_) => {}
            }
        }
        read += 1;
        work.zip_entries += 1;
        at = name_end + usize::from(extra_len) + usize::from(comment_len);
    }
    if read < entries.min(MAX_ZIP_ENTRIES_READ as u64) {
        return WholeZip::CannotTell(format!(
            "its directory ends after {read} of the {entries} entries it claims"
        ));
    }
    match undecided {
        Some(why) => WholeZip::CannotTell(why),
        None => WholeZip::Inert(read),
    }
}

/// What the text of an entry with an executable mode makes `sh` do.
enum ExecutableText {
    /// Its data could not be decoded, or `sh` runs a command of it.
    Runs(String),
    /// Larger than what is left of [`MAX_NESTED_ZIP_BYTES`] and no command in its head,
    /// or the shell model stopped at one of its limits.
    CannotTell(String),
    Inert,
}

/// Whether the entry at `central`, whose mode is executable and whose first bytes are
/// `head` (`None`: not decoded), runs a command when executed: `execve` fails with
/// ENOEXEC on a text without `#!` and the shell runs it as a script, screened here by
/// the sh reader ([`crate::shell::find_shell_command`]).
fn executable_text(
    bytes: &[u8],
    central: usize,
    head: Option<&[u8]>,
    work: &mut crate::archive::Work,
) -> ExecutableText {
    let Some(head) = head else {
        return ExecutableText::Runs("its data is not decoded here".to_owned());
    };
    let room = MAX_NESTED_ZIP_BYTES.saturating_sub(work.zip_inflated);
    let whole = entry_data(bytes, central, room);
    let text = match &whole {
        Some(data) => {
            work.zip_inflated += data.len();
            data.as_slice()
        }
        None => head,
    };
    match crate::shell::find_shell_command(text) {
        Some(found) if found.severity == Severity::Alert => ExecutableText::Runs(format!(
            "sh runs it as a script, and it runs a command: {}",
            found.detail
        )),
        Some(found) => {
            ExecutableText::CannotTell(format!("sh runs it as a script: {}", found.detail))
        }
        None if whole.is_none() => ExecutableText::CannotTell(format!(
            "sh runs it as a script; its first {} bytes hold no command, and the rest could not be inflated (corrupt, or past what is left of {MAX_NESTED_ZIP_BYTES} bytes, MAX_NESTED_ZIP_BYTES)",
            head.len()
        )),
        None => ExecutableText::Inert,
    }
}

/// What an entry of a ZIP is that is opened whole to be judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nested {
    Zip,
    /// A tar or gzip archive.
    Archive,
    /// An OLE compound file (a legacy Office document), an RTF or a cabinet.
    Carrier(Format),
}

/// Content types of parts that hold code Office runs: Excel 4.0 macro sheets
/// (`…macrosheet+xml`, `…intlmacrosheet+xml`, and the binary `…macrosheet` of .xlsb) and
/// VBA projects (`application/vnd.ms-office.vbaProject`), wherever the part is stored.
const MACRO_CONTENT_TYPES: [(&[u8], &str); 2] = [
    (
        b"macrosheet",
        "it declares an Excel 4.0 (XLM) macro sheet, whose formulas Excel runs",
    ),
    (
        b"vbaproject",
        "it declares a VBA project, whose macros Office runs",
    ),
];

/// Whether an OOXML package's `[Content_Types].xml` (the entry at `at`) declares a part
/// with macros: Excel opens a macro sheet by its declared type, whatever its part name.
/// `Err` when it could not be inflated within what is left of [`MAX_NESTED_ZIP_BYTES`].
fn declared_macros(
    bytes: &[u8],
    at: usize,
    work: &mut crate::archive::Work,
) -> Result<Option<&'static str>, String> {
    let room = MAX_NESTED_ZIP_BYTES.saturating_sub(work.zip_inflated);
    let Some(types) = entry_data(bytes, at, room) else {
        return Err(format!(
            "[Content_Types].xml could not be inflated within {MAX_NESTED_ZIP_BYTES} bytes (MAX_NESTED_ZIP_BYTES)"
        ));
    };
    work.zip_inflated += types.len();
    let lower = types.to_ascii_lowercase();
    Ok(MACRO_CONTENT_TYPES
        .iter()
        .find(|(needle, _)| memchr::memmem::find(&lower, needle).is_some())
        .map(|&(_, what)| what))
}

/// An entry of a ZIP that is itself a ZIP, a tar or gzip archive or an Office container,
/// opened whole within what is left of [`MAX_NESTED_ZIP_BYTES`], and judged.
fn nested_entry(
    bytes: &[u8],
    at: usize,
    name: &[u8],
    kind: Nested,
    depth: usize,
    work: &mut crate::archive::Work,
) -> WholeZip {
    let is_zip = kind == Nested::Zip;
    if is_zip && depth >= MAX_ZIP_DEPTH {
        return WholeZip::CannotTell(format!(
            "\"{}\" is a ZIP inside ZIPs {depth} deep, not opened (MAX_ZIP_DEPTH)",
            shown(name)
        ));
    }
    let room = MAX_NESTED_ZIP_BYTES.saturating_sub(work.zip_inflated);
    let Some(inner) = entry_data(bytes, at, room) else {
        let what = match kind {
            Nested::Zip => "a ZIP",
            Nested::Archive => "a tar or gzip archive",
            Nested::Carrier(_) => "an Office container",
        };
        return WholeZip::CannotTell(format!(
            "\"{}\" is {what} that could not be inflated within {MAX_NESTED_ZIP_BYTES} bytes (MAX_NESTED_ZIP_BYTES)",
            shown(name)
        ));
    };
    work.zip_inflated += inner.len();
    if let Nested::Carrier(carrier) = kind {
        let judged = match carrier {
            Format::Ole => crate::carriers::ole(&inner),
            Format::Rtf => crate::carriers::rtf(&inner),
            _ => crate::carriers::cab(&inner),
        };
        return match judged {
            crate::carriers::Carries::Runs(what) => {
                WholeZip::Runs(format!("{}: {carrier} file carrying {what}", shown(name)))
            }
            crate::carriers::Carries::Inert(_) => WholeZip::Inert(1),
            crate::carriers::Carries::CannotTell(why) => WholeZip::CannotTell(format!(
                "\"{}\" is a {carrier} file that could not be read to its end ({why})",
                shown(name)
            )),
        };
    }
    if is_zip {
        return match zip_at_depth(&inner, depth + 1, work) {
            WholeZip::Runs(what) => WholeZip::Runs(format!("{}/{what}", shown(name))),
            WholeZip::CannotTell(why) => {
                WholeZip::CannotTell(format!("in \"{}\": {why}", shown(name)))
            }
            inert => inert,
        };
    }
    // A tar or gzip entry is opened as a whole tar or gzip file is: a program in a .tar
    // or .tgz inside the ZIP left the ZIP "inert", while the same .tgz on its own alerts.
    // What opening it inflates counts too: a thousand small gzip bombs in one ZIP were
    // each inflated to MAX_ARCHIVE_INFLATED_BYTES (a 365 KB ZIP, 63 GB).
    if work.zip_inflated >= MAX_NESTED_ZIP_BYTES {
        return WholeZip::CannotTell(format!(
            "\"{}\" not opened: archives inside the ZIP inflated past {MAX_NESTED_ZIP_BYTES} bytes in all (MAX_NESTED_ZIP_BYTES)",
            shown(name)
        ));
    }
    let before = work.done_inflating();
    let opened = crate::archive::open_nested(&inner, depth, work);
    work.zip_inflated = work
        .zip_inflated
        .saturating_add(work.done_inflating() - before);
    match opened {
        crate::archive::Opened::Carries { detail, .. } => {
            WholeZip::Runs(format!("{}: {detail}", shown(name)))
        }
        crate::archive::Opened::Limit { detail, .. } => {
            WholeZip::CannotTell(format!("in \"{}\": {detail}", shown(name)))
        }
        crate::archive::Opened::Inert { members, .. } => WholeZip::Inert(members as u64),
        crate::archive::Opened::NotArchive => WholeZip::Inert(0),
    }
}

/// How much of each entry is inflated to tell what it is by its first bytes (an
/// executable's headers, `#!`, a class file's magic).
pub const ZIP_ENTRY_HEAD_BYTES: usize = 4096;

/// Whether the entry whose central directory header is at `central` is encrypted (general
/// purpose flag bit 0): its data are ciphertext, and what it is cannot be told from
/// them. Whoever has the password (mailed beside the archive) extracts the program.
fn encrypted(bytes: &[u8], central: usize) -> bool {
    u16_le(bytes, central + 8).is_some_and(|flags| flags & 1 != 0)
}

/// The first [`ZIP_ENTRY_HEAD_BYTES`] of the entry whose central directory header is at
/// `central`, stored or deflated (the methods ZIP readers use for what they run); `None`
/// when they cannot be read (encrypted, another method, outside the bytes).
fn entry_head(bytes: &[u8], central: usize) -> Option<Vec<u8>> {
    if encrypted(bytes, central) {
        return None;
    }
    let method = u16_le(bytes, central + 10)?;
    let compressed = usize::try_from(u32_le(bytes, central + 20)?).ok()?;
    let local = usize::try_from(u32_le(bytes, central + 42)?).ok()?;
    if bytes.get(local..local + 4)? != b"PK\x03\x04" {
        return None;
    }
    let name_len = usize::from(u16_le(bytes, local + 26)?);
    let extra_len = usize::from(u16_le(bytes, local + 28)?);
    let data = local + 30 + name_len + extra_len;
    let end = data.saturating_add(compressed).min(bytes.len());
    let data = bytes.get(data..end)?;
    match method {
        0 => Some(data[..data.len().min(ZIP_ENTRY_HEAD_BYTES)].to_vec()),
        8 => {
            let mut out = vec![0u8; ZIP_ENTRY_HEAD_BYTES];
            let mut state =
                miniz_oxide::inflate::stream::InflateState::new_boxed(miniz_oxide::DataFormat::Raw);
            let result = miniz_oxide::inflate::stream::inflate(
                &mut state,
                data,
                &mut out,
                miniz_oxide::MZFlush::None,
            );
            out.truncate(result.bytes_written);
            Some(out)
        }
        _ => None,
    }
}

/// The whole entry whose central directory header is at `central`, stored or deflated,
/// if it inflates to its end within `limit` bytes.
fn entry_data(bytes: &[u8], central: usize, limit: usize) -> Option<Vec<u8>> {
    if encrypted(bytes, central) {
        return None;
    }
    let method = u16_le(bytes, central + 10)?;
    let compressed = usize::try_from(u32_le(bytes, central + 20)?).ok()?;
    let local = usize::try_from(u32_le(bytes, central + 42)?).ok()?;
    if bytes.get(local..local + 4)? != b"PK\x03\x04" {
        return None;
    }
    let name_len = usize::from(u16_le(bytes, local + 26)?);
    let extra_len = usize::from(u16_le(bytes, local + 28)?);
    let data = local + 30 + name_len + extra_len;
    let data = bytes.get(data..data.saturating_add(compressed).min(bytes.len()))?;
    match method {
        0 => (data.len() <= limit).then(|| data.to_vec()),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, limit).ok(),
        _ => None,
    }
}

/// Whether an entry starting like `format` runs: a program or a script. Executables are
/// held to their headers (a chance `MZ` is data).
fn runs_from_its_start(format: Format, head: &[u8]) -> bool {
    match format {
        Format::Pe => format::pe_headers(head).is_some(),
        // ELF class and byte order as the loader checks them.
        Format::Elf => matches!(head.get(4..6), Some([1 | 2, 1 | 2])),
        Format::MachO
        | Format::Script
        | Format::JavaClass
        | Format::PythonBytecode
        | Format::Lnk => true,
        _ => false,
    }
}

/// Why entries of a ZIP could not be read, naming the first method not decoded here.
fn unread_because(work: &crate::archive::Work) -> String {
    match work.zip_unread_method {
        Some(method) => format!(
            "one compressed with {}, which is not decoded here; or encrypted, or data outside the bytes read",
            method_name(method)
        ),
        None => "encrypted, a compression method not read here, or data outside the bytes read"
            .to_owned(),
    }
}

/// The compression method of the entry whose central directory header is at `central`,
/// when it is one [`entry_head`] does not decode and the entry is not encrypted.
fn method_not_decoded(bytes: &[u8], central: usize) -> Option<u16> {
    let method = u16_le(bytes, central + 10)?;
    (!encrypted(bytes, central) && !matches!(method, 0 | 8)).then_some(method)
}

/// A compression method's name, with its number (APPNOTE 4.4.5).
fn method_name(method: u16) -> String {
    let name = match method {
        9 => "deflate64",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        97 => "wavpack",
        98 => "ppmd",
        _ => "an unknown method",
    };
    format!("{name} (method {method})")
}

/// Extensions of Unix programs: an entry whose data is not decoded here and whose name
/// ends so is taken for one (besides [`entry_runs`]'s names).
const UNIX_PROGRAM_EXTENSIONS: [&[u8]; 4] = [b"elf", b"so", b"run", b"appimage"];

/// Why the entry at `central` (named `name`) runs when its data cannot be looked into:
/// a program's name ([`entry_runs`], [`UNIX_PROGRAM_EXTENSIONS`]), or a Unix mode with
/// an execute bit on a regular file (`unzip` restores it: the file is run as it is).
fn runs_by_name_or_mode(bytes: &[u8], central: usize, name: &[u8]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let extension = lower.rsplit(|&b| b == b'/').next().and_then(|base| {
        base.iter()
            .rposition(|&b| b == b'.')
            .map(|dot| &base[dot + 1..])
    });
    if entry_runs(name) || extension.is_some_and(|e| UNIX_PROGRAM_EXTENSIONS.contains(&e)) {
        return Some("named as a program");
    }
    executable_mode(bytes, central)
}

/// The host systems (the high byte of "version made by") whose external attributes'
/// high half Info-ZIP's unzip restores as the Unix mode (`mapattr` in unix/unix.c):
/// VMS, Unix, Atari ST, QDOS, Acorn RISC OS, BeOS, Tandem, AtheOS. Review rv44-screen
/// case6: a mode with an execute bit from BeOS (16) or Atari (5) was taken for none.
const UNIX_MODE_HOSTS: [u8; 8] = [2, 3, 5, 12, 13, 16, 17, 30];

/// Why the entry at `central` runs by its mode: a regular file with an execute bit,
/// made on a host of [`UNIX_MODE_HOSTS`] (`unzip` restores it: the file is run as it
/// is).
fn executable_mode(bytes: &[u8], central: usize) -> Option<&'static str> {
    let host = bytes.get(central + 5)?;
    let mode = u32_le(bytes, central + 38)? >> 16;
    let regular = matches!(mode & 0o170_000, 0 | 0o100_000);
    (UNIX_MODE_HOSTS.contains(host) && regular && mode & 0o111 != 0)
        .then_some("its Unix mode is executable")
}

/// The name the Info-ZIP Unicode Path extra field (0x7075) of an entry gives, when its
/// version is 1 and its checksum is that of `name`, the header's name: what unzip names
/// the file it writes (it ignores a field whose checksum differs).
fn unicode_path<'a>(extra: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut at = 0;
    while let (Some(tag), Some(len)) = (u16_le(extra, at), u16_le(extra, at + 2)) {
        let data = extra.get(at + 4..at + 4 + usize::from(len))?;
        if tag == 0x7075 && data.len() > 5 && data[0] == 1 {
            let crc = u32::from_le_bytes(data[1..5].try_into().ok()?);
            return (crc == crc32fast::hash(name)).then_some(&data[5..]);
        }
        at += 4 + usize::from(len);
    }
    None
}

fn entry_runs(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    let (base, extension) = crate::format::written_base(&lower, b'/');
    lower == b"meta-inf/manifest.mf"
        || base == b"__main__.py"
        || base == b"__main__.pyc"
        || base == b"vbaproject.bin"
        // Excel 4.0 macro sheets of an .xlsm or .xlsb: Excel runs their formulas.
        || lower.starts_with(b"xl/macrosheets/")
        || extension.as_deref() == Some("class")
        || extension.is_some_and(|e| crate::format::RUNNABLE_EXTENSIONS.contains(&e.as_str()))
}

const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_RECORD_LEN: usize = 56;

fn u64_le(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// An archive member's name (attacker-chosen), shown safely and cut short.
fn shown(name: &[u8]) -> String {
    const SHOWN: usize = 64;
    let mut text = escape_bytes(&name[..name.len().min(SHOWN)]);
    if name.len() > SHOWN {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Bytes the RTF end search stepped through, on this thread.
        pub(super) static RTF_WALKED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Review s19-r10: the end of an RTF candidate was looked for to the end of the bytes
    /// before its reading was charged, so a candidate with a nearly spent budget still
    /// walked a whole unclosed document (one per candidate until the charge failed). The
    /// walk stops where the budget left would be exceeded, and the charge fails there.
    #[test]
    fn an_unclosed_rtf_is_walked_no_further_than_the_budget_left() {
        let mut budget = Budget::default();
        assert!(budget.charge(crate::MAX_PARSED_BYTES_PER_FILE - 1000));
        let mut document = b"{\\rtf1\\ansi ".to_vec();
        document.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        RTF_WALKED.with(|n| n.set(0));
        assert_eq!(rtf_at(&document, 0, &mut budget), None);
        let walked = RTF_WALKED.with(|n| n.get());
        assert!(walked <= 1001, "{walked} bytes walked");
        assert!(
            budget
                .exhausted()
                .is_some_and(|why| why.contains("MAX_PARSED_BYTES_PER_FILE")),
            "{:?}",
            budget.exhausted()
        );
    }

    /// A one-entry ZIP (stored, empty file `a.exe`), built by hand.
    pub(crate) fn tiny_zip() -> Vec<u8> {
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend_from_slice(&[0; 12]); // crc, sizes
        zip.extend_from_slice(&5u16.to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip.extend_from_slice(b"a.exe");
        let directory = zip.len();
        zip.extend_from_slice(b"PK\x01\x02");
        zip.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend_from_slice(&[0; 12]);
        zip.extend_from_slice(&5u16.to_le_bytes());
        zip.extend_from_slice(&[0; 12]);
        zip.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        zip.extend_from_slice(b"a.exe");
        let directory_size = zip.len() - directory;
        zip.extend_from_slice(b"PK\x05\x06");
        zip.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        zip.extend_from_slice(&(directory_size as u32).to_le_bytes());
        zip.extend_from_slice(&(directory as u32).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip
    }

    /// EOCD_SEARCH_WINDOW at its edge: an end record followed by the longest comment
    /// (65,535 bytes) is found from the end, as ZIP readers find it; one byte more after
    /// it and readers that look at the last 64 KiB no longer do, but the search of the
    /// whole bytes still reports the archive: never silent.
    #[test]
    fn an_end_record_is_found_from_the_end_up_to_the_longest_comment() {
        let mut zip = tiny_zip();
        let eocd = zip.len() - EOCD_LEN;
        zip[eocd + 20..eocd + 22].copy_from_slice(&u16::MAX.to_le_bytes());
        zip.resize(zip.len() + usize::from(u16::MAX), b' ');
        assert_eq!(zip.len() - eocd, EOCD_SEARCH_WINDOW);
        assert_eq!(trailing_zip(&zip).map(|(at, _)| at), Some(eocd));
        zip.push(b' ');
        assert_eq!(trailing_zip(&zip), None);
        let mut found = Vec::new();
        search(&zip, &zip, 0, &mut Budget::default(), |hidden| {
            found.push(hidden);
            true
        });
        assert!(
            found
                .iter()
                .any(|h| h.format == Format::Zip && h.offset == eocd),
            "{found:?}"
        );
    }

    /// A ZIP of one entry `name` holding `data`, stored or deflated (CRC left 0: the
    /// judge reads names and heads, as a loader's first look does).
    fn one_entry_zip(name: &[u8], data: &[u8], deflated: bool) -> Vec<u8> {
        let packed = if deflated {
            miniz_oxide::deflate::compress_to_vec(data, 6)
        } else {
            data.to_vec()
        };
        let method: u16 = if deflated { 8 } else { 0 };
        let sizes = [packed.len() as u32, data.len() as u32];
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[20, 0, 0, 0]);
        zip.extend_from_slice(&method.to_le_bytes());
        zip.extend_from_slice(&[0; 8]); // time, date, crc
        zip.extend_from_slice(&sizes[0].to_le_bytes());
        zip.extend_from_slice(&sizes[1].to_le_bytes());
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip.extend_from_slice(name);
        zip.extend_from_slice(&packed);
        let directory = zip.len();
        zip.extend_from_slice(b"PK\x01\x02");
        zip.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
        zip.extend_from_slice(&method.to_le_bytes());
        zip.extend_from_slice(&[0; 8]);
        zip.extend_from_slice(&sizes[0].to_le_bytes());
        zip.extend_from_slice(&sizes[1].to_le_bytes());
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
        zip.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        zip.extend_from_slice(name);
        let directory_size = zip.len() - directory;
        zip.extend_from_slice(b"PK\x05\x06");
        zip.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        zip.extend_from_slice(&(directory_size as u32).to_le_bytes());
        zip.extend_from_slice(&(directory as u32).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip
    }

    /// ZIP_ENTRY_HEAD_BYTES at its edge. It is how much of an entry is read to tell what
    /// it is by its first bytes, not a limit on a search: every magic `format::sniff`
    /// and the judge read lies in the first PDF_HEADER_WINDOW bytes (ELF's class at 4,
    /// tar's `ustar` at 257, a PDF header in the first KiB). An entry shorter than it,
    /// as long, one byte longer or many times longer, stored or deflated, is told alike:
    /// an ELF program under a harmless name runs, the same length of text does not.
    #[test]
    fn entries_past_the_head_read_are_told_by_their_first_bytes_alike() {
        const _: () = assert!(format::PDF_HEADER_WINDOW <= ZIP_ENTRY_HEAD_BYTES);
        for len in [
            ZIP_ENTRY_HEAD_BYTES - 1,
            ZIP_ENTRY_HEAD_BYTES,
            ZIP_ENTRY_HEAD_BYTES + 1,
            16 * ZIP_ENTRY_HEAD_BYTES,
        ] {
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.resize(len, 0x90);
            let text = vec![b'a'; len];
            for deflated in [false, true] {
                let zip = one_entry_zip(b"notes.bin", &elf, deflated);
                assert!(
                    matches!(whole_zip(&zip), WholeZip::Runs(ref e) if e.contains("notes.bin")),
                    "{len} {deflated}: {:?}",
                    whole_zip(&zip)
                );
                let zip = one_entry_zip(b"notes.bin", &text, deflated);
                assert_eq!(whole_zip(&zip), WholeZip::Inert(1), "{len} {deflated}");
            }
        }
    }

    /// [`one_entry_zip`] stored, then marked compressed with `method` and made on Unix
    /// with `mode` (what Python's `zipfile` writes for bzip2, lzma; `zip -Z bzip2`).
    fn one_entry_zip_with(name: &[u8], data: &[u8], method: u16, mode: u32) -> Vec<u8> {
        let mut zip = one_entry_zip(name, data, false);
        let eocd = zip.len() - 22;
        let directory = u32_le(&zip, eocd + 16).expect("the end record") as usize;
        zip[8..10].copy_from_slice(&method.to_le_bytes());
        zip[directory + 10..directory + 12].copy_from_slice(&method.to_le_bytes());
        zip[directory + 5] = 3; // made by: Unix
        zip[directory + 38..directory + 42].copy_from_slice(&(mode << 16).to_le_bytes());
        zip
    }

    /// Review rv43-screen (issue 10, case10): an entry compressed with a method not
    /// decoded here (bzip2, lzma, xz, zstd), which `unzip -t` extracts, was a warning
    /// whatever its name or mode. It runs when its name says so (`.elf`, `.exe`, `.sh`)
    /// or its Unix mode is executable: an alert; else a warning naming the method.
    #[test]
    fn entries_of_methods_not_decoded_are_judged_by_name_and_mode() {
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0packed".to_vec();
        for (method, called) in [(12, "bzip2"), (14, "lzma"), (93, "zstd"), (95, "xz")] {
            for (name, mode) in [
                (&b"a.elf"[..], 0o100600),
                (b"setup.exe", 0o100600),
                (b"run.sh", 0o100600),
                (b"tool", 0o100755),
            ] {
                let zip = one_entry_zip_with(name, &elf, method, mode);
                assert!(
                    matches!(whole_zip(&zip), WholeZip::Runs(_)),
                    "{method} {}: {:?}",
                    String::from_utf8_lossy(name),
                    whole_zip(&zip)
                );
            }
            let zip = one_entry_zip_with(b"report.xml", b"<r/>", method, 0o100644);
            match whole_zip(&zip) {
                WholeZip::CannotTell(why) => assert!(why.contains(called), "{why}"),
                other => panic!("{method}: {other:?}"),
            }
            let found = judged_zip(
                &zip,
                zip.len() - 22,
                "a ZIP".to_owned(),
                &mut Budget::default(),
            );
            assert_eq!(found.severity, Severity::Warning, "{}", found.detail);
            assert!(found.detail.contains(called), "{}", found.detail);
        }
    }

    /// [`one_entry_zip_with`] `method`, with an Info-ZIP Unicode Path extra field (0x7075)
    /// naming it `unicode`, its checksum that of `name` (as Info-ZIP's zip writes it)
    /// or `crc` when given.
    fn zip_with_unicode_path(
        name: &[u8],
        unicode: &[u8],
        method: u16,
        crc: Option<u32>,
    ) -> Vec<u8> {
        let mut zip = one_entry_zip_with(name, b"data", method, 0o100644);
        let eocd = zip.len() - 22;
        let directory = u32_le(&zip, eocd + 16).expect("the end record") as usize;
        let mut extra = 0x7075u16.to_le_bytes().to_vec();
        extra.extend_from_slice(&(5 + unicode.len() as u16).to_le_bytes());
        extra.push(1);
        extra.extend_from_slice(&crc.unwrap_or_else(|| crc32fast::hash(name)).to_le_bytes());
        extra.extend_from_slice(unicode);
        zip[directory + 30..directory + 32].copy_from_slice(&(extra.len() as u16).to_le_bytes());
        let at = directory + 46 + name.len();
        zip.splice(at..at, extra.iter().copied());
        let eocd = zip.len() - 22;
        let size = (eocd - directory) as u32;
        zip[eocd + 12..eocd + 16].copy_from_slice(&size.to_le_bytes());
        zip
    }

    /// Review rv44-screen (issue 10, case6, checked with Info-ZIP's unzip): an entry's
    /// execute bit counts whatever its method (a stored or deflated text of commands
    /// without `#!`, mode 0755, was info; in bzip2 an alert), and on every host unzip
    /// restores a mode from (BeOS, Atari); the name unzip writes from the Unicode Path
    /// extra field, and one whose trailing dots or blanks Windows drops, are judged.
    #[test]
    fn every_name_and_mode_an_extractor_honours_is_judged() {
        let script = b"shutdown -r now\n";
        for method in [0u16, 12] {
            for host in [3u8, 5, 16] {
                let mut zip = one_entry_zip_with(b"tool", script, method, 0o100755);
                let eocd = zip.len() - 22;
                let directory = u32_le(&zip, eocd + 16).expect("the end record") as usize;
                zip[directory + 5] = host;
                assert!(
                    matches!(whole_zip(&zip), WholeZip::Runs(ref e) if e.contains("mode")),
                    "{method} {host}: {:?}",
                    whole_zip(&zip)
                );
            }
        }
        // The same text not executable, or from a host whose mode unzip ignores (FAT).
        assert_eq!(
            whole_zip(&one_entry_zip_with(b"tool", script, 0, 0o100644)),
            WholeZip::Inert(1)
        );
        let mut fat = one_entry_zip_with(b"tool", script, 0, 0o100755);
        let directory = u32_le(&fat, fat.len() - 22 + 16).expect("the end record") as usize;
        fat[directory + 5] = 0;
        assert_eq!(whole_zip(&fat), WholeZip::Inert(1));
        // Stored, a Windows program's name; in bzip2 (not decoded here) a Unix one's too.
        for (unicode, method) in [(&b"setup.exe"[..], 0), (b"setup.exe", 12), (b"a.elf", 12)] {
            let zip = zip_with_unicode_path(b"setup.txt", unicode, method, None);
            assert!(
                matches!(whole_zip(&zip), WholeZip::Runs(ref e) if e.contains("Unicode Path")),
                "{:?}",
                whole_zip(&zip)
            );
            // A checksum of another name: unzip ignores the field.
            let zip = zip_with_unicode_path(b"setup.txt", unicode, method, Some(7));
            assert!(
                !matches!(whole_zip(&zip), WholeZip::Runs(_)),
                "{:?}",
                whole_zip(&zip)
            );
        }
        for name in [&b"a.exe."[..], b"a.exe ", b"a.exe. ."] {
            let zip = one_entry_zip(name, b"data", false);
            assert!(
                matches!(whole_zip(&zip), WholeZip::Runs(_)),
                "{:?}",
                whole_zip(&zip)
            );
        }
        assert_eq!(
            whole_zip(&one_entry_zip(b"a.exe.txt", b"data", false)),
            WholeZip::Inert(1)
        );
    }

    /// Review rv45-screen (issue 10, case12, zip45/): files copied off a FAT stick or a
    /// CD get mode 0755/0777, and an honest export of them (a DICOM file, DICOMDIR, a
    /// README, an HTML index, AUTORUN.INF) was an alert by its mode alone. A decodable
    /// entry with an executable mode is judged by what `sh` runs of it (ENOEXEC); a
    /// program, a `#!` script or a text of commands still runs, and an entry not
    /// decoded here by its mode.
    #[test]
    fn executable_modes_on_decodable_entries_are_judged_by_what_sh_runs() {
        let with_mode = |mut zip: Vec<u8>, host: u8, mode: u32| {
            let directory = u32_le(&zip, zip.len() - 22 + 16).expect("the end record") as usize;
            zip[directory + 5] = host;
            zip[directory + 38..directory + 42].copy_from_slice(&(mode << 16).to_le_bytes());
            zip
        };
        let dicom = pacsguard_testkit::pydicom_sample("CT_small.dcm");
        let honest: [&[u8]; 5] = [
            &dicom,
            b"[autorun]\r\nlabel=Study CD\r\n",
            b"Study export from PACS.\r\nOpen DICOMDIR with any DICOM viewer.\r\nContact radiology for questions.\r\n",
            b"STUDY CD\nLinux: open DICOMDIR with your viewer.\nIf the viewer hangs, restart (reboot) the computer.\nPatient: Doe^John  Study: CT HEAD 2021\n",
            b"<html><body><h1>Study</h1><a href=\"IMAGES/IM0001\">image</a></body></html>\n",
        ];
        let running: [&[u8]; 4] = [
            b"shutdown -r now\n",
            b"#!/bin/sh\necho viewer\n",
            b"Study export.\nreboot\n",
            &pacsguard_testkit::real_elf(),
        ];
        for deflated in [false, true] {
            for (host, mode) in [
                (3u8, 0o100755),
                (3, 0o100777),
                (5, 0o100777),
                (16, 0o100755),
            ] {
                for data in honest {
                    let zip =
                        with_mode(one_entry_zip(b"IMAGES/IM0001", data, deflated), host, mode);
                    assert_eq!(
                        whole_zip(&zip),
                        WholeZip::Inert(1),
                        "{host} {mode:o} {deflated}"
                    );
                }
                for data in running {
                    let zip = with_mode(one_entry_zip(b"fix_viewer", data, deflated), host, mode);
                    assert!(
                        matches!(whole_zip(&zip), WholeZip::Runs(_)),
                        "{host} {mode:o} {deflated}: {:?}",
                        whole_zip(&zip)
                    );
                }
            }
        }
        // Not decoded here (bzip2): the mode alone says it runs.
        let zip = one_entry_zip_with(b"IMAGES/IM0001", &dicom, 12, 0o100755);
        assert!(matches!(whole_zip(&zip), WholeZip::Runs(ref e) if e.contains("mode")));
    }

    /// Review rv45-screen (item 3): an entry with an executable mode whose text `sh` is
    /// not seen to run, but which could not be judged whole, is a warning on each path
    /// of `executable_text`: the sh reader stopped at a limit of its model
    /// (MAX_SHELL_HEREDOCS), the entry does not inflate within what is left of
    /// MAX_NESTED_ZIP_BYTES, or its deflate stream breaks after its head.
    #[test]
    fn executable_texts_that_cannot_be_judged_whole_are_warnings() {
        let executable = |zip: Vec<u8>| {
            let mut zip = zip;
            let directory = u32_le(&zip, zip.len() - 22 + 16).expect("the end record") as usize;
            zip[directory + 5] = 3; // made by: Unix
            zip[directory + 38..directory + 42].copy_from_slice(&(0o100755u32 << 16).to_le_bytes());
            zip
        };
        // One command with one here-document more than the model reads.
        let mut heredocs = "cat".to_owned();
        for i in 0..=crate::sh::MAX_SHELL_HEREDOCS {
            heredocs.push_str(&format!(" <<E{i}"));
        }
        heredocs.push('\n');
        for i in 0..=crate::sh::MAX_SHELL_HEREDOCS {
            heredocs.push_str(&format!("line\nE{i}\n"));
        }
        for deflated in [false, true] {
            let zip = executable(one_entry_zip(b"notes", heredocs.as_bytes(), deflated));
            assert!(
                matches!(whole_zip(&zip), WholeZip::CannotTell(ref why)
                    if why.contains("MAX_SHELL_HEREDOCS") && why.contains("notes")),
                "{deflated}: {:?}",
                whole_zip(&zip)
            );
        }
        // Larger than what is left of MAX_NESTED_ZIP_BYTES: its head is judged, and
        // with no command in it the rest is a warning; a command in the head runs.
        let prose = "Study export notes for the referring physician.\n".repeat(200);
        let command = format!("reboot\n{prose}");
        for (text, runs) in [(&prose, false), (&command, true)] {
            for deflated in [false, true] {
                let zip = executable(one_entry_zip(b"notes", text.as_bytes(), deflated));
                let central = u32_le(&zip, zip.len() - 22 + 16).expect("the end record") as usize;
                let head = entry_head(&zip, central).expect("decoded");
                let mut work = crate::archive::Work::new();
                work.zip_inflated = MAX_NESTED_ZIP_BYTES - text.len() / 2;
                match executable_text(&zip, central, Some(&head), &mut work) {
                    ExecutableText::Runs(what) => assert!(runs, "{deflated}: {what}"),
                    ExecutableText::CannotTell(why) => assert!(
                        !runs && why.contains("MAX_NESTED_ZIP_BYTES"),
                        "{deflated}: {why}"
                    ),
                    ExecutableText::Inert => panic!("{runs} {deflated}: inert"),
                }
                // With the whole budget the same entry is judged whole.
                let mut work = crate::archive::Work::new();
                let whole = executable_text(&zip, central, Some(&head), &mut work);
                assert_eq!(matches!(whole, ExecutableText::Runs(_)), runs, "{deflated}");
                assert_eq!(matches!(whole, ExecutableText::Inert), !runs, "{deflated}");
            }
        }
        // A deflate stream that breaks after the head unzip reads: a warning.
        let mut zip = executable(one_entry_zip(b"notes", prose.as_bytes(), true));
        let data = 30 + b"notes".len();
        let end = u32_le(&zip, zip.len() - 22 + 16).expect("the end record") as usize;
        for byte in &mut zip[data + (end - data) / 2..end] {
            *byte = 0xff;
        }
        assert!(
            matches!(whole_zip(&zip), WholeZip::CannotTell(ref why) if why.contains("could not be inflated")),
            "{:?}",
            whole_zip(&zip)
        );
    }

    /// A central directory of `count` entries named `name` (what [`whole_zip`] reads).
    fn directory_of(count: usize, name: &[u8]) -> Vec<u8> {
        let mut zip = Vec::new();
        for _ in 0..count {
            let mut header = vec![0u8; 46];
            header[..4].copy_from_slice(b"PK\x01\x02");
            header[28..30].copy_from_slice(&(name.len() as u16).to_le_bytes());
            zip.extend_from_slice(&header);
            zip.extend_from_slice(name);
        }
        let size = zip.len() as u32;
        let mut eocd = vec![0u8; 22];
        eocd[..4].copy_from_slice(b"PK\x05\x06");
        eocd[10..12].copy_from_slice(&(count as u16).to_le_bytes());
        eocd[12..16].copy_from_slice(&size.to_le_bytes());
        zip.extend_from_slice(&eocd);
        zip
    }

    #[test]
    fn zip_entries_are_read_up_to_the_limit_and_past_it_is_cannot_tell() {
        let at_limit = directory_of(MAX_ZIP_ENTRIES_READ, b"a.txt");
        assert_eq!(
            whole_zip(&at_limit),
            WholeZip::Inert(MAX_ZIP_ENTRIES_READ as u64)
        );
        let past = directory_of(MAX_ZIP_ENTRIES_READ + 1, b"a.txt");
        assert!(
            matches!(whole_zip(&past), WholeZip::CannotTell(r) if r.contains("MAX_ZIP_ENTRIES_READ"))
        );
        assert!(matches!(
            whole_zip(&directory_of(2, b"META-INF/MANIFEST.MF")),
            WholeZip::Runs(_)
        ));
        assert!(matches!(
            whole_zip(&directory_of(1, b"x/Run.CLASS")),
            WholeZip::Runs(_)
        ));
    }

    #[test]
    fn a_zip_appended_to_anything_is_found_from_its_end() {
        let mut file = vec![0u8; 1000];
        file.extend(tiny_zip());
        let (at, detail) = trailing_zip(&file).expect("zip found");
        assert_eq!(&file[at..at + 4], b"PK\x05\x06");
        assert!(detail.contains("a.exe"), "{detail}");
    }

    #[test]
    fn a_bare_end_record_without_a_directory_is_not_a_zip() {
        let mut file = vec![0u8; 1000];
        file.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0\x10\0\0\0\0\0\0\0\0\0");
        assert!(trailing_zip(&file).is_none());
    }

    #[test]
    fn magic_numbers_alone_never_count() {
        let mut noise = Vec::new();
        for i in 0..50_000u32 {
            noise.extend_from_slice(b"MZ\x7fELF\xfe\xed\xfa\xcePK\x05\x06");
            noise.extend_from_slice(&i.to_le_bytes());
        }
        search(&noise, &noise, 0, &mut Budget::default(), |hidden| {
            panic!("false positive: {hidden:?}")
        });
    }

    /// Every `%PDF-` used to be read on to the end of the value, each with a budget of its
    /// own: 40 of them in front of 4,000 never-ending Flate streams took 9 s on 56 KB. The
    /// first one is read once; later ones are inside it.
    /// Review finding: a ZIP64 end record and locator before an unsaturated classic end
    /// record (which `java -jar` runs) was not recognised.
    /// The locator's offset is the attacker's: one at the end of the address space is
    /// no record (an overflow there would panic), and the ZIP is read by its classic
    /// fields.
    #[test]
    fn a_zip64_locator_offset_at_the_end_of_the_address_space_is_no_record() {
        let zip = pacsguard_testkit::zip_with("META-INF/MANIFEST.MF", b"Main-Class: X\n");
        let eocd = zip.len() - EOCD_LEN;
        for offset in [u64::MAX, u64::MAX - 3, usize::MAX as u64 - 2] {
            let mut locator = b"PK\x06\x07".to_vec();
            locator.extend_from_slice(&[0; 4]);
            locator.extend_from_slice(&offset.to_le_bytes());
            locator.extend_from_slice(&1u32.to_le_bytes());
            let mut with = zip[..eocd].to_vec();
            with.extend_from_slice(&locator);
            with.extend_from_slice(&zip[eocd..]);
            assert_eq!(
                whole_zip(&with),
                WholeZip::Runs("META-INF/MANIFEST.MF".to_owned())
            );
        }
    }

    #[test]
    fn a_zip64_locator_is_followed_even_when_the_classic_record_is_not_saturated() {
        let zip = pacsguard_testkit::zip_with("META-INF/MANIFEST.MF", b"Main-Class: X\n");
        let eocd = zip.len() - EOCD_LEN;
        assert_eq!(&zip[eocd..eocd + 4], b"PK\x05\x06");
        let entries = u64::from(u16_le(&zip, eocd + 10).expect("entries"));
        let size = u64::from(u32_le(&zip, eocd + 12).expect("size"));
        let offset = u64::from(u32_le(&zip, eocd + 16).expect("offset"));
        let mut record = b"PK\x06\x06".to_vec();
        record.extend_from_slice(&44u64.to_le_bytes());
        record.extend_from_slice(&[45, 0, 45, 0]);
        record.extend_from_slice(&[0; 8]); // this disk, the directory's disk
        record.extend_from_slice(&entries.to_le_bytes());
        record.extend_from_slice(&entries.to_le_bytes());
        record.extend_from_slice(&size.to_le_bytes());
        record.extend_from_slice(&offset.to_le_bytes());
        assert_eq!(record.len(), ZIP64_RECORD_LEN);
        let mut locator = b"PK\x06\x07".to_vec();
        locator.extend_from_slice(&[0; 4]);
        locator.extend_from_slice(&(offset + size).to_le_bytes());
        locator.extend_from_slice(&1u32.to_le_bytes());
        let mut zip64 = zip[..eocd].to_vec();
        zip64.extend_from_slice(&record);
        zip64.extend_from_slice(&locator);
        zip64.extend_from_slice(&zip[eocd..]);
        let mut value = b"\0\0\0\0vendor data before it".to_vec();
        value.extend_from_slice(&zip64);
        value.extend_from_slice(b"more element data after it");
        let mut found = Vec::new();
        search(&value, &value, 0, &mut Budget::default(), |hidden| {
            found.push(hidden);
            true
        });
        assert!(
            found.iter().any(|h| h.format == Format::Zip
                && h.detail.contains("JAR")
                && h.detail.contains("ZIP64")),
            "{found:?}"
        );
    }

    #[test]
    fn many_pdf_headers_are_read_once() {
        let mut value = b"%PDF-".repeat(10_000);
        value.extend_from_slice(b"\n1 0 obj << /Filter /FlateDecode >> stream\n\x78\x01");
        for i in 0..4000 {
            value.extend_from_slice(b"\x00\x09\x00\xf6\xff\n");
            value.extend_from_slice(
                format!("{} 0 obj << /Filter /FlateDecode >> stream\n", i + 2).as_bytes(),
            );
            value.extend_from_slice(b"\x78\x01");
        }
        value.extend_from_slice(b"\n9999 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj");
        let mut found = Vec::new();
        search(&value, &value, 0, &mut Budget::default(), |hidden| {
            found.push(hidden);
            true
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].format, found[0].kind),
            (Format::Pdf, FindingKind::ActiveContent)
        );
        assert!(
            found[0].detail.contains("app.alert(1)"),
            "{}",
            found[0].detail
        );
    }
}
