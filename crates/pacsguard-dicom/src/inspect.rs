//! One file's inspection: which container it is, what its preamble holds, what its data
//! set hides.

use std::ops::Range;

use dicom_core::dictionary::{DataDictionary as _, DataDictionaryEntry as _, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::transfer_syntax::{TransferSyntax, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use pacsguard_events::{FindingKind, Severity, escape_bytes};

use crate::budget::Budget;
use crate::carriers::{self, Carries};
use crate::dataset::{self, DataSetSummary, show_tag};
use crate::embedded::{self, Hidden, WholeZip};
use crate::format::{self, Format, u16_le, u32_le};
use crate::meta;
use crate::preamble::{self, PREAMBLE_LEN, Preamble};
use crate::python;
use crate::readers;
use crate::text;

/// Findings kept per file; the rest are counted in one last observation. A crafted file
/// can hold millions of executables, and a report of millions of lines helps nobody.
pub const MAX_OBSERVATIONS: usize = 32;
/// A deflated data set is inflated up to this size; beyond it the rest is not inspected.
pub const MAX_INFLATED_DATA_SET_BYTES: usize = 512 * 1024 * 1024;
/// Encapsulated documents kept for rule matching, per file, in total.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;
/// Encapsulated documents kept per file: an instance holds one; empty ones cost a crafted
/// file nothing, and each kept one is a rule scan.
pub const MAX_DOCUMENTS: usize = 16;
/// DICOM files held in values of DICOM files are screened as files this many deep (the
/// file screened holding one is one deep); one deeper is a `not-inspected` warning. A
/// nested file is one a reader opens once a tool takes the value out (`dcm2pdf` writes
/// the Encapsulated Document as it is); each level is a walk of the bytes above it, so
/// the work stays a few walks of the file.
pub const MAX_NESTED_DICOM_DEPTH: usize = 4;
/// Bytes of the DICOM files held in values of a file kept for the site's YARA rules and
/// hash lists ([`Inspection::nested_files`]), per file screened: their own bytes, their
/// inflated data sets and their encapsulated documents together, all held in memory
/// until the screening ends. A nested file past it is still inspected, but not given to
/// the rules and hash lists, and that is a `not-inspected` warning naming this limit.
pub const MAX_NESTED_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Nested DICOM files named in the one warning per limit that cut some
/// ([`MAX_NESTED_DICOM_DEPTH`], [`MAX_NESTED_FILE_BYTES`]); the rest are counted. A
/// warning per file made a file holding 10,000 of them a page of warnings that hid the
/// findings after them (task r34-screen).
pub const NESTED_FILES_NAMED: usize = 3;

const ENCAPSULATED_DOCUMENT: Tag = Tag(0x0042, 0x0011);
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Transfer syntaxes whose whole data set is deflated (PS3.5 A.5; JPIP Referenced Deflate).
const DEFLATED: [&str; 2] = ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"];
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// Whether the transfer syntax `uid` holds native (uncompressed) Pixel Data: implicit VR
/// little endian, explicit VR little endian or big endian. Their pixels are structured
/// (never random-looking), and an instance written again in another of them keeps its
/// Pixel Data bytes (big endian aside, for more than 8 bits).
pub fn is_native(uid: &str) -> bool {
    is_native_little_endian(uid) || uid == EXPLICIT_VR_BE
}

/// Whether the transfer syntax `uid` holds native Pixel Data in little-endian byte order
/// (implicit or explicit VR): an image written again from one to the other keeps its
/// Pixel Data bytes exactly, so its pixel values changed exactly when those bytes did.
pub fn is_native_little_endian(uid: &str) -> bool {
    [IMPLICIT_VR_LE, EXPLICIT_VR_LE].contains(&uid)
}

/// What kind of file this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// A Part 10 file: preamble (possibly absent), `DICM`, File Meta group, data set.
    Part10,
    /// A bare data set without `DICM` (older files and some vendors write these).
    DataSetOnly,
    NotDicom,
}

/// One thing the inspection found, not yet tied to a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub kind: FindingKind,
    pub severity: Severity,
    pub format: Option<Format>,
    pub offset: Option<u64>,
    pub detail: String,
}

/// An encapsulated document (PDF, CDA, STL...) taken out of its element, for rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub tag: String,
    /// Where its value starts: in the file, or in the inflated data set when
    /// `in_inflated_data_set` (a deflated transfer syntax holds it compressed, at no
    /// offset of the file's own bytes).
    pub offset: u64,
    pub in_inflated_data_set: bool,
    pub bytes: Vec<u8>,
}

impl Document {
    /// The bytes of the file (or of the inflated data set) its value spans.
    fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.bytes.len() as u64
    }
}

/// A DICOM file held in a value of the file screened (or of a file held in it, to
/// [`MAX_NESTED_DICOM_DEPTH`]), as a reader opens it once a tool takes the value out:
/// kept so that the site's YARA rules and hash lists screen it as they screen the file
/// itself (its bytes whole, its inflated data set, its documents). Review r30-screen: a
/// known-bad file on the site's hash list, held in a private element, matched nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedFile {
    /// Where it is held, in words (`in element (0009,1010) (OB)`; for a file held in a
    /// nested one, `... of the DICOM file held in ...`).
    pub place: String,
    /// Where its value starts in the file screened; none when it lies in an inflated
    /// data set (its holder's or one further out), which the file holds compressed.
    pub offset: Option<u64>,
    pub bytes: Vec<u8>,
    /// Its inflated data set, when it is deflated.
    pub inflated: Vec<u8>,
    /// Its encapsulated documents, offsets in it (or in its inflated data set).
    pub documents: Vec<Document>,
}

impl NestedFile {
    /// What keeping it costs, counted against [`MAX_NESTED_FILE_BYTES`].
    fn kept_bytes(&self) -> usize {
        self.bytes.len()
            + self.inflated.len()
            + self.documents.iter().map(|d| d.bytes.len()).sum::<usize>()
    }
}

/// Where the encapsulated documents lie in the bytes a reader of the whole file reads:
/// the file's own bytes (`inflated` false) or the inflated data set (`inflated` true). A
/// document read from the inflated data set is not in the file's bytes at its offset:
/// there the file holds compressed bytes, the File Meta group or whatever follows the
/// deflate stream, and a PDF an attacker put at that offset is no encapsulated document.
fn document_ranges(inspection: &Inspection, inflated: bool) -> Vec<Range<u64>> {
    inspection
        .documents
        .iter()
        .filter(|d| d.in_inflated_data_set == inflated)
        .map(Document::range)
        .collect()
}

/// Everything [`inspect`] learnt about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub container: Container,
    pub preamble: Option<Preamble>,
    pub transfer_syntax: Option<String>,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    /// The Pixel Data value in the bytes given (native), or the span of its fragments.
    /// `None` without pixel data and for a deflated data set.
    pub pixel_data: Option<Range<usize>>,
    /// Whether the data set was read to its end.
    pub complete: bool,
    pub documents: Vec<Document>,
    /// Where the binary values lie (Pixel Data, its fragments, values of the VRs of
    /// bytes: [`is_binary_value`]), sorted and apart, in the bytes walked: the file's,
    /// or the inflated data set's for a deflated transfer syntax. Chance bytes live
    /// there (compressed pixel data is near-uniform): what only chance bytes make is a
    /// warning there, an alert elsewhere (ARCHITECTURE invariant 11).
    pub binary_values: Vec<Range<usize>>,
    /// Where a deflated data set's compressed bytes lie in the file: near-uniform bytes,
    /// binary as a whole to the readers of the whole file.
    pub deflated: Option<Range<usize>>,
    /// The inflated data set of a deflated transfer syntax (as far as it inflated), for
    /// rules: what a reader decodes must be screened, not only the compressed bytes.
    pub inflated: Vec<u8>,
    /// The DICOM files held in its values, at every depth read, for the rules and hash
    /// lists (within [`MAX_NESTED_FILE_BYTES`]).
    pub nested_files: Vec<NestedFile>,
    pub observations: Vec<Observation>,
    /// The nested DICOM files a limit cut, below the file screened, for the file holding
    /// it to fold into its own one warning per limit.
    nested_cut: NestedCut,
    /// Why the work budget of the search for hidden content ran out before the end of
    /// the file (`MAX_CANDIDATES_PER_FILE`, `MAX_PARSED_BYTES_PER_FILE`, the deadline):
    /// what lies past that point was not searched (also a `not-inspected` observation).
    pub budget_spent: Option<String>,
}

impl Inspection {
    fn new(container: Container) -> Self {
        Inspection {
            container,
            preamble: None,
            transfer_syntax: None,
            sop_class_uid: None,
            sop_instance_uid: None,
            pixel_data: None,
            complete: false,
            documents: Vec::new(),
            binary_values: Vec::new(),
            deflated: None,
            inflated: Vec::new(),
            nested_files: Vec::new(),
            observations: Vec::new(),
            nested_cut: NestedCut::default(),
            budget_spent: None,
        }
    }

    /// Whether this is a DICOM file that could be read to its end.
    pub fn is_readable_dicom(&self) -> bool {
        self.container != Container::NotDicom && self.complete
    }
}

/// Collects observations up to [`MAX_OBSERVATIONS`], counting the rest.
struct Observations {
    kept: Vec<Observation>,
    dropped: usize,
    /// Offsets of hidden content already reported, so that a ZIP found both in its element
    /// and from the end of the file is one finding.
    hidden_offsets: std::collections::HashSet<(u64, String)>,
    /// What a not-DICOM file's start was already reported as (offset and format): the
    /// search that confirms the same executable there adds nothing. What else is found
    /// there (a PDF's actions, its budget warnings) is still reported.
    whole_file_at: Option<(u64, Format)>,
    /// Where the file observed sits among DICOM files held in values of others.
    nesting: Nesting,
    /// Nested DICOM files a limit cut, said in one warning per limit when the file
    /// screened is finished.
    nested_cut: NestedCut,
}

/// Nested DICOM files cut by a limit, by limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NestedCut {
    /// Held past [`MAX_NESTED_DICOM_DEPTH`]: searched as bytes, data set not read.
    past_depth: CutFiles,
    /// Read, but past [`MAX_NESTED_FILE_BYTES`]: not given to the rules and hash lists.
    not_kept: CutFiles,
}

/// How many nested files one limit cut, and the places of the first
/// [`NESTED_FILES_NAMED`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CutFiles {
    count: usize,
    /// Where each is held, with its offset in the file screened.
    named: Vec<(String, u64)>,
}

impl CutFiles {
    fn add(&mut self, place: String, at: u64) {
        self.count += 1;
        if self.named.len() < NESTED_FILES_NAMED {
            self.named.push((place, at));
        }
    }

    /// Adds what a file held `place`, at `at`, counted: places and offsets made the
    /// holder's.
    fn merge(&mut self, held: CutFiles, place: &str, at: u64) {
        self.count += held.count;
        let room = NESTED_FILES_NAMED.saturating_sub(self.named.len());
        self.named
            .extend(held.named.into_iter().take(room).map(|(inner, offset)| {
                (
                    format!("{inner} of the DICOM file held {place}"),
                    at + offset,
                )
            }));
    }

    /// The one warning, if any file was cut: `what` says what happened to them.
    fn warning(&self, what: &str) -> Option<Observation> {
        let (_, first) = self.named.first()?;
        let named: Vec<String> = self
            .named
            .iter()
            .map(|(place, at)| format!("{place} (offset {at})"))
            .collect();
        let more = self.count.saturating_sub(named.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let files = if self.count == 1 {
            "1 DICOM file".to_owned()
        } else {
            format!("{} DICOM files", self.count)
        };
        Some(Observation {
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            format: None,
            offset: Some(*first),
            detail: format!(
                "{files} held in this file {what}: {}{more}",
                named.join(", ")
            ),
        })
    }
}

impl NestedCut {
    fn merge(&mut self, held: NestedCut, place: &str, at: u64) {
        self.past_depth.merge(held.past_depth, place, at);
        self.not_kept.merge(held.not_kept, place, at);
    }

    /// One warning per limit that cut a file.
    fn warnings(&self) -> impl Iterator<Item = Observation> {
        let depth = self.past_depth.warning(&format!(
            "past the limit of {MAX_NESTED_DICOM_DEPTH} DICOM files deep (MAX_NESTED_DICOM_DEPTH): their bytes were searched as they are, their data sets were not read"
        ));
        let kept = self.not_kept.warning(&format!(
            "were inspected, but not screened by the site's YARA rules and hash lists as files of their own: with the DICOM files held before them, they pass {MAX_NESTED_FILE_BYTES} bytes (MAX_NESTED_FILE_BYTES)"
        ));
        depth.into_iter().chain(kept)
    }
}

/// Where a file sits among DICOM files held in values of others, and what the files
/// holding it keep in memory while it is read.
#[derive(Clone, Copy, Debug, Default)]
struct Nesting {
    /// 0 for the file screened, 1 for a DICOM file held in one of its values, and so on.
    depth: usize,
    /// Bytes inflated by the deflated data sets of the files holding it (and its own,
    /// once inflated): all of them are held at once while it is read, so they share one
    /// [`MAX_INFLATED_DATA_SET_BYTES`].
    inflated: usize,
    /// Bytes of nested files kept so far for the rules and hash lists, by the whole
    /// file screened ([`MAX_NESTED_FILE_BYTES`]).
    kept: usize,
}

impl Observations {
    fn new() -> Self {
        Self::nested(Nesting::default())
    }

    fn nested(nesting: Nesting) -> Self {
        Observations {
            kept: Vec::new(),
            dropped: 0,
            hidden_offsets: std::collections::HashSet::new(),
            whole_file_at: None,
            nesting,
            nested_cut: NestedCut::default(),
        }
    }

    fn push(&mut self, observation: Observation) -> bool {
        if self.kept.len() < MAX_OBSERVATIONS {
            self.kept.push(observation);
        } else {
            self.dropped += 1;
        }
        self.kept.len() < MAX_OBSERVATIONS
    }

    fn hidden(&mut self, hidden: Hidden, base: usize, place: &str) -> bool {
        self.hidden_as(hidden.kind, hidden, base, place)
    }

    fn hidden_as(&mut self, kind: FindingKind, hidden: Hidden, base: usize, place: &str) -> bool {
        let offset = (base + hidden.offset) as u64;
        if self.kept.len() >= MAX_OBSERVATIONS {
            self.dropped += 1;
            return false; // the search stops: the rest would only be counted
        }
        // One thing at one offset is one finding, however many searches reach it (a ZIP
        // in its element and from the end of the file); only a PDF reports several things
        // at its one offset, which its details tell apart.
        let distinct = if hidden.format == Format::Pdf {
            hidden.detail.clone()
        } else {
            String::new()
        };
        let same_as_whole_file = kind == FindingKind::EmbeddedExecutable
            && self.whole_file_at == Some((offset, hidden.format));
        if same_as_whole_file || !self.hidden_offsets.insert((offset, distinct)) {
            return true;
        }
        let detail = if place.is_empty() {
            hidden.detail
        } else {
            format!("{} {place}", hidden.detail)
        };
        self.push(Observation {
            kind,
            severity: hidden.severity,
            format: Some(hidden.format),
            offset: Some(offset),
            detail,
        })
    }

    fn finish(mut self, budget: &Budget) -> Vec<Observation> {
        // Beside the cap, as the counts below: a count folded is never dropped.
        let cut: Vec<Observation> = self.nested_cut.warnings().collect();
        self.kept.extend(cut);
        if let Some(reason) = budget.exhausted() {
            self.kept.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: None,
                offset: None,
                detail: format!(
                    "the search for hidden executables stopped before the end of the file: {reason}"
                ),
            });
        }
        if self.dropped > 0 {
            self.kept.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: None,
                offset: None,
                detail: format!(
                    "at least {} more finding(s) in this file not listed (limit {MAX_OBSERVATIONS})",
                    self.dropped
                ),
            });
        }
        self.kept
    }
}

/// Inspects the bytes of one file. Never fails: what cannot be read is itself a finding.
pub fn inspect(bytes: &[u8]) -> Inspection {
    inspect_within(bytes, Budget::default())
}

/// [`inspect`] within `budget` (a caller's deadline: [`Budget::until`]); a budget
/// spent is a `not-inspected` warning naming it, as always.
pub fn inspect_within(bytes: &[u8], budget: Budget) -> Inspection {
    inspect_nested(bytes, budget, Nesting::default()).0
}

/// [`inspect_within`] of a file held in a value of another (`nesting`); the budget is
/// given back, since a nested file spends its holder's.
fn inspect_nested(bytes: &[u8], mut budget: Budget, nesting: Nesting) -> (Inspection, Budget) {
    let mut found = Observations::nested(nesting);
    let mut inspection = match locate(bytes) {
        Some(Located::Meta {
            container,
            at,
            preamble,
        }) => {
            let mut inspection = Inspection::new(container);
            if preamble {
                let classified = preamble::classify(&bytes[..PREAMBLE_LEN], bytes);
                note_preamble(&classified, &mut found);
                inspection.preamble = Some(classified);
            }
            match meta::read(bytes, at) {
                Ok(meta) => {
                    // The meta group's values (Private Information, version names) can
                    // carry a payload as well as any element.
                    let group = &bytes[at..meta.end];
                    embedded::search(group, bytes, at, &mut budget, |hidden| {
                        found.hidden(hidden, at, "in the file meta group")
                    });
                    inspection.transfer_syntax = meta.transfer_syntax.clone();
                    inspection.sop_class_uid = meta.media_storage_sop_class;
                    inspection.sop_instance_uid = meta.media_storage_sop_instance;
                    let ts = meta
                        .transfer_syntax
                        .unwrap_or_else(|| EXPLICIT_VR_LE.to_owned());
                    read_data_set(
                        bytes,
                        meta.end,
                        &ts,
                        &mut inspection,
                        &mut found,
                        &mut budget,
                    );
                }
                Err(error) => {
                    malformed(&mut found, error.offset, &error.reason);
                    // From the start of the group: the elements before the break are as
                    // able to carry a payload as what follows it.
                    scan_raw(bytes, at, &mut found, &mut budget);
                }
            }
            inspection
        }
        Some(Located::DataSet { ts }) => {
            let mut inspection = Inspection::new(Container::DataSetOnly);
            inspection.transfer_syntax = Some(ts.to_owned());
            let mut walked = Observations::nested(nesting);
            read_data_set(bytes, 0, ts, &mut inspection, &mut walked, &mut budget);
            if !inspection.complete && inspection.sop_instance_uid.is_none() {
                // It looked like a data set for eight bytes and then did not: not DICOM,
                // screened as any other file.
                return (not_dicom(bytes, &mut budget), budget);
            }
            found = walked;
            inspection
        }
        None => return (not_dicom(bytes, &mut budget), budget),
    };
    if let Some(hidden) = embedded::trailing_zip_hidden(bytes) {
        found.hidden(hidden, 0, "at the end of the file");
    }
    let documents = document_ranges(&inspection, false);
    // What starts in a preamble already reported as executable or active is that finding.
    let preamble_active = matches!(inspection.preamble, Some(Preamble::Executable { .. }));
    let clock = budget.clock();
    // The binary values are offsets in the inflated data set when there is one; the
    // file holds it compressed.
    let binary: &[Range<usize>] = match &inspection.deflated {
        Some(compressed) => std::slice::from_ref(compressed),
        None => &inspection.binary_values,
    };
    for hidden in readers::whole_file(bytes, &documents, binary, preamble_active, &clock) {
        if preamble_active && hidden.offset < PREAMBLE_LEN {
            continue;
        }
        let place = format!("(the whole file read as {})", hidden.format);
        found.hidden(hidden, 0, &place);
    }
    read_inflated_as_a_whole_file(&inspection, &mut found, &clock);
    inspection.budget_spent = budget.exhausted().map(str::to_owned);
    if nesting.depth > 0 {
        // Folded by the file holding it, into the warnings of the file screened.
        inspection.nested_cut = std::mem::take(&mut found.nested_cut);
    }
    inspection.observations = found.finish(&budget);
    (inspection, budget)
}

/// A receiver that stores a deflated data set uncompressed writes it out inflated, and a
/// viewer inflates it before it shows its text elements: what the readers of the whole
/// file act on (markup, a PDF a repairing reader opens, commands, PostScript) is as live
/// there as in an uncompressed file, so every one of them reads the inflated data set
/// too. (Offsets here are in the inflated data set, so they are not merged with the
/// file's; so are those of its encapsulated documents, which the PDF reader leaves to
/// their own finding.)
fn read_inflated_as_a_whole_file(
    inspection: &Inspection,
    found: &mut Observations,
    clock: &crate::Clock,
) {
    if inspection.inflated.is_empty() {
        return;
    }
    let documents = document_ranges(inspection, true);
    let mut stopped_said = false;
    let binary = &inspection.binary_values;
    for hidden in readers::whole_file(&inspection.inflated, &documents, binary, false, clock) {
        stopped_said |= hidden.kind == FindingKind::NotInspected;
        found.push(Observation {
            kind: hidden.kind,
            severity: hidden.severity,
            format: Some(hidden.format),
            offset: Some(hidden.offset as u64),
            detail: format!(
                "{} (the inflated data set read as {}, at that offset in it)",
                hidden.detail, hidden.format
            ),
        });
    }
    if clock.expired_now() && !stopped_said {
        found.push(Observation {
            kind: FindingKind::NotInspected,
            severity: Severity::Warning,
            format: None,
            offset: None,
            detail: format!(
                "the inflated data set was not read whole as a file: {}",
                clock.reached()
            ),
        });
    }
}

/// Inspects the first window of a file too large to read whole (`file_len` bytes in
/// all): the preamble, the File Meta group and the data set as far as the window goes.
/// That the data set runs past the window is expected, not damage: the rest of the file
/// is searched window by window with [`inspect_window`].
pub fn inspect_first_window(head: &[u8], file_len: u64) -> Inspection {
    let mut inspection = inspect(head);
    if (head.len() as u64) < file_len {
        for observation in &mut inspection.observations {
            let cut_short = observation.kind == FindingKind::MalformedDicom
                && observation.offset.is_some_and(|at| at <= head.len() as u64);
            if cut_short {
                observation.kind = FindingKind::NotInspected;
                observation.severity = Severity::Info;
                observation.detail = format!(
                    "the file ({file_len} bytes) is read in windows: the data set was walked through the first {} bytes ({}), the rest searched window by window",
                    head.len(),
                    observation.detail
                );
            }
        }
        // The container is what the head says it is, even if cut short.
        inspection.complete = inspection.container != Container::NotDicom;
        // sh reads a file from its start and stops at its first syntax error, which in a
        // DICOM file is nearly always in the binary header. If none is in this window, sh
        // reads on, and its model cannot start from a later window: said, not dropped.
        // Ghostscript reads a PostScript program from its start (or from where a DOS
        // EPS header says it starts) to its end; the reader follows it through the
        // first window only.
        if crate::postscript::program_reads_past(head) {
            inspection.observations.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: Some(Format::PostScript),
                offset: Some(head.len() as u64),
                detail: format!(
                    "not inspected for PostScript file operators past offset {}: the file ({file_len} bytes) is a PostScript program that runs on past its first window, and the reader follows a file read in windows through its first window only",
                    head.len()
                ),
            });
        }
        if crate::shell::shell_reads_past(head) {
            inspection.observations.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: Some(Format::Shell),
                offset: Some(head.len() as u64),
                detail: format!(
                    "not inspected for shell commands past offset {}: sh would read this file ({file_len} bytes) past its first window without a syntax error, and the shell model follows a file read in windows through its first window only",
                    head.len()
                ),
            });
        }
    }
    inspection
}

/// Searches one window of a file read in windows, at offset `base` of the file: hidden
/// executables and archives (and, in the `last` window, a ZIP's end record), and markup
/// that would run script. Offsets in the observations are offsets in the file. Parses
/// are charged to `budget`, one per file. `whole_zip`: the file is a ZIP (its first
/// bytes said so, it is not DICOM), so the end record in its last window is the file's
/// own: an alert only if an entry in its directory runs, as for a ZIP read whole.
pub fn inspect_window(
    window: &[u8],
    base: u64,
    last: bool,
    whole_zip: bool,
    budget: &mut Budget,
) -> Vec<Observation> {
    let mut found = Observations::new();
    embedded::search(window, window, 0, budget, |hidden| {
        if whole_zip && hidden.format == Format::Zip {
            return true; // the file's own directory, judged below
        }
        found.hidden(hidden, 0, "in a window of a file read in windows")
    });
    if last && let Some(hidden) = embedded::trailing_zip_hidden(window) {
        if !whole_zip {
            found.hidden(hidden, 0, "at the end of the file");
        } else if let WholeZip::Runs(entry) = embedded::whole_zip(window) {
            found.push(Observation {
                kind: FindingKind::ExecutableFile,
                severity: Severity::Alert,
                format: Some(Format::Zip),
                offset: Some(hidden.offset as u64),
                detail: format!(
                    "not a DICOM file: it is a ZIP archive with an entry that runs (\"{entry}\"), named in its central directory"
                ),
            });
        }
        // Else the directory names nothing that runs: the first window's not-DICOM
        // warning (its entries not all read) stands.
    }
    // What the other readers act on (a PDF reader repairing the file, mshta, cmd.exe,
    // ex/vi), as in a file read whole: the window's place in the file changes nothing for
    // them. (A limit that stopped one is a warning here too, never dropped.)
    for hidden in readers::window(window, budget) {
        let place = format!("(the whole file read as {})", hidden.format);
        found.hidden(hidden, 0, &place);
    }
    // This window's PDF header and `set` commands, for the windows after it.
    budget.carry(window, crate::MAX_EXECUTABLE_PARSE_BYTES);
    // The budget is the caller's, reported once per file by the caller.
    let mut observations = found.finish(&Budget::default());
    for observation in &mut observations {
        observation.offset = observation.offset.map(|at| at + base);
    }
    observations
}

/// How much of a file [`inspect_head`] wants: the preamble, `DICM`, and enough after it
/// for `e_lfanew` to be followed in the usual case. One page costs what 132 bytes cost.
pub const HEAD_LEN: usize = 4096;

/// Classifies only the preamble of a file from its first bytes (see [`HEAD_LEN`]): the
/// fast screen of a large store for CVE-2019-11687 polyglots. Nothing past the head is
/// looked at, so the data set, hidden executables and rules are not checked.
pub fn inspect_head(head: &[u8]) -> Inspection {
    match locate(head) {
        Some(Located::Meta {
            container,
            preamble: true,
            ..
        }) => {
            let mut found = Observations::new();
            let mut inspection = Inspection::new(container);
            let classified = preamble::classify(&head[..PREAMBLE_LEN], head);
            note_preamble(&classified, &mut found);
            inspection.preamble = Some(classified);
            inspection.observations = found.finish(&Budget::default());
            inspection
        }
        Some(Located::Meta { container, .. }) => Inspection::new(container),
        Some(Located::DataSet { .. }) => Inspection::new(Container::DataSetOnly),
        None => not_dicom(head, &mut Budget::default()),
    }
}

enum Located {
    /// A File Meta group starts at `at`.
    Meta {
        container: Container,
        at: usize,
        preamble: bool,
    },
    /// A bare data set starts at 0, in this transfer syntax.
    DataSet { ts: &'static str },
}

fn locate(bytes: &[u8]) -> Option<Located> {
    if bytes.get(PREAMBLE_LEN..PREAMBLE_LEN + 4) == Some(b"DICM") {
        return Some(Located::Meta {
            container: Container::Part10,
            at: PREAMBLE_LEN + 4,
            preamble: true,
        });
    }
    if bytes.starts_with(b"DICM") {
        return Some(Located::Meta {
            container: Container::Part10,
            at: 4,
            preamble: false,
        });
    }
    let group = u16_le(bytes, 0)?;
    let explicit_vr = bytes.get(4..6).is_some_and(is_known_vr);
    match group {
        0x0002 if explicit_vr => Some(Located::Meta {
            container: Container::DataSetOnly,
            at: 0,
            preamble: false,
        }),
        0x0008 if explicit_vr => Some(Located::DataSet { ts: EXPLICIT_VR_LE }),
        0x0800 if explicit_vr => Some(Located::DataSet { ts: EXPLICIT_VR_BE }),
        0x0008 => {
            let length = usize::try_from(u32_le(bytes, 4)?).ok()?;
            (length <= bytes.len()).then_some(Located::DataSet { ts: IMPLICIT_VR_LE })
        }
        _ => None,
    }
}

fn is_known_vr(vr: &[u8]) -> bool {
    const VRS: [&[u8]; 34] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
        b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];
    VRS.contains(&vr)
}

/// A file that is not DICOM is screened like any file: if a loader, interpreter or reader
/// acts on it (its first bytes, a script `sh` runs, markup `mshta` runs), that is an
/// alert with its format; whatever it hides is searched as in a data set. Only a file
/// nothing acts on is the lesser news of "not DICOM".
fn not_dicom(bytes: &[u8], budget: &mut Budget) -> Inspection {
    let mut inspection = Inspection::new(Container::NotDicom);
    let mut found = Observations::new();
    let format = format::sniff(bytes);
    let mut acted_on = false;
    // A gzip or tar file is what it carries: opened, and an alert only if something in
    // it runs.
    let archive = match format {
        Some(Format::Gzip | Format::Tar) => Some(crate::archive::open(bytes)),
        _ => None,
    };
    match &archive {
        Some(crate::archive::Opened::Carries {
            format: inner,
            detail,
            ..
        }) => {
            acted_on = true;
            // The search below finds the same archive at offset 0: one finding.
            found.whole_file_at = inner.or(format).map(|f| (0, f));
            found.push(Observation {
                kind: FindingKind::ExecutableFile,
                severity: Severity::Alert,
                format: inner.or(format),
                offset: Some(0),
                detail: format!(
                    "not a DICOM file: it is a {} archive carrying what runs: {detail}",
                    format.map_or("", Format::as_str)
                ),
            });
        }
        Some(crate::archive::Opened::Limit { format, detail }) => {
            found.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: Some(*format),
                offset: Some(0),
                detail: format!(
                    "not a DICOM file: a {format} archive not fully opened: the limit of {detail} was reached"
                ),
            });
        }
        _ => {}
    }
    // Markup is acted on for the script it holds (found below by the markup reader), not
    // for being markup: a plain HTML page or SVG drawing runs nothing. An HTA is the
    // exception: `<hta:application>` asks mshta for full trust, which no page needs.
    let hta = format == Some(Format::Html) && is_hta(bytes);
    // Documents and archives run nothing themselves: what they carry is what counts. A
    // PDF's actions are reported on their own below; a ZIP counts when an entry runs;
    // compressed streams this crate does not open are said to be unopened. Named as a
    // DICOM file, each is an alert after all (`Inspection::named`).
    let mut zip_entry = None;
    let mut carried = None;
    let inert = match format {
        Some(carrier @ (Format::Ole | Format::Rtf | Format::Cab)) => {
            let judged = match carrier {
                Format::Ole => carriers::ole(bytes),
                Format::Rtf => carriers::rtf(bytes),
                _ => carriers::cab(bytes),
            };
            match judged {
                Carries::Runs(what) => {
                    carried = Some(what);
                    None
                }
                Carries::Inert(what) => Some(format!("it is {what}")),
                Carries::CannotTell(why) => Some(format!(
                    "it is a {carrier} file that could not be read to its end ({why}): what it carries was not inspected"
                )),
            }
        }
        _ if archive.is_some() => None,
        Some(Format::Pdf) => Some(
            "it is a PDF document (the actions it holds, if any, are reported on their own)"
                .to_owned(),
        ),
        Some(Format::Zip) => match embedded::whole_zip(bytes) {
            WholeZip::Runs(entry) => {
                zip_entry = Some(entry);
                None
            }
            WholeZip::Inert(entries) => Some(format!(
                "it is a ZIP archive of {entries} entr{}, none of which runs (no manifest, class, __main__.py, program or macros); what they hold is not decompressed and screened",
                if entries == 1 { "y" } else { "ies" }
            )),
            WholeZip::CannotTell(reason) => Some(format!(
                "it is a ZIP archive whose entries were not all read ({reason}): what it carries was not inspected"
            )),
        },
        Some(
            compressed @ (Format::Xz
            | Format::Bzip2
            | Format::Zstd
            | Format::SevenZip
            | Format::Rar),
        ) => Some(format!(
            "it is a {compressed} archive, which is not opened: what it carries was not inspected"
        )),
        _ => None,
    };
    if inert.is_some() {
        // The search below finds the same thing at offset 0: the verdict is made here.
        found.whole_file_at = format.map(|f| (0, f));
    }
    let acted_on_as_a_whole = |f: &Format| {
        (!matches!(f, Format::Xml | Format::Html | Format::Svg) || hta) && inert.is_none()
    };
    if let Some(format) = format.filter(|f| acted_on_as_a_whole(f) && archive.is_none()) {
        acted_on = true;
        let detail = match format {
            Format::Zip if zip_entry.is_some() => format!(
                "not a DICOM file: it is a ZIP archive with an entry that runs (\"{}\")",
                zip_entry.as_deref().unwrap_or_default()
            ),
            Format::Ole | Format::Rtf | Format::Cab if carried.is_some() => format!(
                "not a DICOM file: it is a {format} file carrying {}",
                carried.as_deref().unwrap_or_default()
            ),
            Format::Pe | Format::Elf | Format::MachO => {
                match format::confirm_executable_within(bytes, budget) {
                    Some(exe) => format!("not a DICOM file: it is an executable ({})", exe.detail),
                    None => format!(
                        "not a DICOM file: it starts like a {format} executable (headers damaged or truncated)"
                    ),
                }
            }
            _ => format!("not a DICOM file: it is a {format} file, which a program acts on"),
        };
        found.push(Observation {
            kind: FindingKind::ExecutableFile,
            severity: Severity::Alert,
            format: Some(format),
            offset: Some(0),
            detail,
        });
        // The start was reported as a whole; the search below skips offset 0.
        found.whole_file_at = Some((0, format));
    }
    let text = is_plain_text(bytes);
    let mut text_commands = None;
    let clock = budget.clock();
    for hidden in readers::whole_file(bytes, &[], &[], format == Some(Format::Pdf), &clock) {
        if acted_on && format == Some(hidden.format) {
            continue; // the same thing the first bytes already named
        }
        let place = format!("(not a DICOM file: read as {})", hidden.format);
        if hidden.kind == FindingKind::NotInspected {
            found.hidden(hidden, 0, &place); // a reader that could not tell: a warning
            continue;
        }
        if text
            && matches!(
                hidden.format,
                Format::Shell | Format::Batch | Format::PowerShell
            )
        {
            // A text file that is not DICOM and names commands is documentation far more
            // often than a payload (a README's `pip install`, a `"""` docstring's
            // `python -I`, a path in a config): no binary header hides the commands, so
            // their being parseable says nothing. Reported, but as the not-DICOM warning
            // it is, never an alert (`#!` scripts are alerts above).
            text_commands.get_or_insert(hidden);
            continue;
        }
        if text && format.is_none() && hidden.format == Format::Html {
            // Markup in the middle of a text file (a docstring that mentions "<script>
            // tags", an HTML template in Python source) runs only if someone hands the
            // file to mshta: the same not-DICOM warning, naming it.
            text_commands.get_or_insert(hidden);
            continue;
        }
        acted_on = true;
        found.hidden_as(FindingKind::ExecutableFile, hidden, 0, &place);
    }
    let python = if text && format.is_none() && !acted_on {
        python_source(bytes, &clock, &mut found)
    } else {
        None
    };
    let whole_zip = format == Some(Format::Zip);
    // The limit an archive that is the whole file reached is reported above, once.
    let limit_at_start = match &archive {
        Some(crate::archive::Opened::Limit { format, .. }) => Some(*format),
        _ => None,
    };
    embedded::search(bytes, bytes, 0, budget, |hidden| {
        if whole_zip && hidden.format == Format::Zip {
            return true; // the file is this ZIP, judged above entry by entry
        }
        if hidden.offset == 0
            && hidden.kind == FindingKind::NotInspected
            && limit_at_start == Some(hidden.format)
        {
            return true;
        }
        found.hidden(hidden, 0, "in a file that is not DICOM")
    });
    if let Some(hidden) =
        embedded::trailing_zip_hidden(bytes).filter(|_| format != Some(Format::Zip))
    {
        found.hidden(hidden, 0, "at the end of a file that is not DICOM");
    }
    if !acted_on {
        let detail = match (format, &inert) {
            (Some(_), Some(inert)) => format!("not a DICOM file: {inert}"),
            (Some(format), None) => format!("not a DICOM file: it is a {format} file"),
            (None, _) if bytes.is_empty() => "not a DICOM file: it is empty".to_owned(),
            (None, _) => "not a DICOM file: no DICM marker and no data set at the start".to_owned(),
        };
        let text_format = text_commands.as_ref().map(|hidden| hidden.format);
        let detail = match text_commands {
            Some(hidden) if hidden.format == Format::Html => format!(
                "{detail}; it is text holding markup that mshta would run if the file were opened as HTML, at offset {}: {}",
                hidden.offset, hidden.detail
            ),
            Some(hidden) => format!(
                "{detail}; it is text that {} would run as commands if it were executed, from offset {}: {}",
                if hidden.format == Format::Shell {
                    "sh"
                } else {
                    "cmd.exe"
                },
                hidden.offset,
                hidden.detail
            ),
            None => detail,
        };
        let python_format = python.as_ref().map(|_| Format::Script);
        let detail = match python {
            Some(program) => format!(
                "{detail}; python3 runs this file if it is given it (`python3 FILE`, no `#!` needed): {program}"
            ),
            None => detail,
        };
        found.kept.insert(
            0,
            Observation {
                kind: FindingKind::NotDicom,
                severity: Severity::Warning,
                // What sh, cmd.exe or python3 would run tells `Inspection::named` what
                // the text is.
                format: format.or(text_format).or(python_format),
                offset: None,
                detail,
            },
        );
    }
    inspection.budget_spent = budget.exhausted().map(str::to_owned);
    inspection.observations = found.finish(budget);
    inspection
}

/// Whether `python3` would run `bytes`, a text file that is not DICOM: what it runs
/// and where, or a `not-inspected` warning in `found` when the
/// caller's deadline passed before the model read the file to its end.
fn python_source(bytes: &[u8], clock: &crate::Clock, found: &mut Observations) -> Option<String> {
    match python::python_program(bytes, clock) {
        python::Verdict::Runs { detail, .. } => Some(detail),
        python::Verdict::NotPython => None,
        python::Verdict::Undecoded(codec) => {
            found.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: Some(Format::Script),
                offset: None,
                detail: format!(
                    "not read as Python source: its coding cookie names {codec}, a codec python3 decodes it with (ASCII bytes are other characters in it) and this reader does not: what python3 would run is not known"
                ),
            });
            None
        }
        python::Verdict::CannotTell => {
            found.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Warning,
                format: Some(Format::Script),
                offset: None,
                detail: format!(
                    "not read to its end as Python source (what python3 would run): {}",
                    clock.reached()
                ),
            });
            None
        }
    }
}

fn is_hta(bytes: &[u8]) -> bool {
    bytes.windows(5).any(|w| w.eq_ignore_ascii_case(b"<hta:"))
}

/// File name extensions of DICOM files in image stores (and Siemens' `.ima`).
const DICOM_EXTENSIONS: [&str; 4] = ["dcm", "dicom", "dic", "ima"];

/// Whether `file_name` says "DICOM" to whoever loads files from an image store: a DICOM
/// extension, or a name made of a UID's digits and dots (`1.2.840.113619.2.55.3.1`).
pub fn named_as_dicom(file_name: &str) -> bool {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let uid_like = file_name.len() > 4
        && file_name.contains('.')
        && file_name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    extension.is_some_and(|e| DICOM_EXTENSIONS.contains(&e.as_str())) || uid_like
}

/// Extensions Windows opens with msiexec: an installer package (`.msi`) or a patch
/// (`.msp`), both OLE compound files.
const INSTALLER_EXTENSIONS: [&str; 2] = ["msi", "msp"];

fn named_as_installer(file_name: &str) -> bool {
    file_name
        .rsplit_once('.')
        .is_some_and(|(_, e)| INSTALLER_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl Inspection {
    /// Weighs a file that is not DICOM by its name. Text of shell or batch commands is
    /// documentation as often as not (a README, notes, a docstring), Python source is a
    /// program where programs are kept, and a PDF, a ZIP of data or a compressed log runs
    /// nothing itself, so `inspect` calls them the not-DICOM warning; named as a DICOM
    /// file (`*.dcm`, a UID), such a file was put where DICOM loaders look (whose ENOEXEC
    /// fallback runs text, as `python3 FILE` runs Python without `#!`; PDF readers and
    /// ZIP readers open what the viewer hands them): an alert.
    pub fn named(mut self, file_name: &str) -> Self {
        if self.container != Container::NotDicom {
            return self;
        }
        if named_as_installer(file_name) {
            // An OLE file named `.msi`/`.msp` is a Windows Installer package: opening it
            // installs, and its custom actions run programs (review s6-r10: judged as an
            // Office document with no macros, it was only the not-DICOM warning).
            for observation in &mut self.observations {
                if observation.kind == FindingKind::NotDicom
                    && observation.format == Some(Format::Ole)
                {
                    observation.kind = FindingKind::ExecutableFile;
                    observation.severity = Severity::Alert;
                    observation.detail = format!(
                        "named as a Windows Installer package (msiexec installs it and runs its custom actions when it is opened): {}",
                        observation.detail
                    );
                }
            }
        }
        if !named_as_dicom(file_name) {
            return self;
        }
        for observation in &mut self.observations {
            let commands = matches!(
                observation.format,
                Some(
                    Format::Shell
                        | Format::Script
                        | Format::Html
                        | Format::Batch
                        | Format::PowerShell
                        | Format::Pdf
                        | Format::Zip
                        | Format::Ole
                        | Format::Rtf
                        | Format::Cab
                        | Format::Xz
                        | Format::Bzip2
                        | Format::Zstd
                        | Format::SevenZip
                        | Format::Rar
                )
            );
            if observation.kind == FindingKind::NotDicom && commands {
                observation.kind = FindingKind::ExecutableFile;
                observation.severity = Severity::Alert;
                observation.detail = format!("named as a DICOM file: {}", observation.detail);
            }
        }
        self
    }
}

/// Whether `bytes` are text as a person writes it (any encoding that keeps ASCII, UTF-8
/// above all): no control bytes other than tab, line ends, form feed and escape. A DICOM
/// header, an image, an executable all have them within their first bytes.
fn is_plain_text(bytes: &[u8]) -> bool {
    !bytes
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f)
}

fn note_preamble(classified: &Preamble, found: &mut Observations) {
    let observation = match classified {
        Preamble::Zero | Preamble::Tiff => return,
        Preamble::Executable { format, detail } => Observation {
            kind: FindingKind::PreambleExecutable,
            severity: Severity::Alert,
            format: Some(*format),
            offset: Some(0),
            detail: detail.clone(),
        },
        Preamble::Nonstandard { detail } => Observation {
            kind: FindingKind::PreambleNonstandard,
            severity: Severity::Info,
            format: None,
            offset: Some(0),
            detail: detail.clone(),
        },
    };
    found.push(observation);
}

fn malformed(found: &mut Observations, offset: usize, reason: &str) {
    found.push(Observation {
        kind: FindingKind::MalformedDicom,
        severity: Severity::Warning,
        format: None,
        offset: Some(offset as u64),
        detail: format!("cannot read the DICOM file past offset {offset}: {reason}"),
    });
}

/// Bytes the data set walk could not account for are still searched as a whole: breaking
/// the data set on purpose must not hide what follows.
fn scan_raw(bytes: &[u8], from: usize, found: &mut Observations, budget: &mut Budget) {
    let rest = bytes.get(from..).unwrap_or_default();
    embedded::search(rest, bytes, from, budget, |hidden| {
        found.hidden(hidden, from, "in a data set that cannot be read to its end")
    });
}

/// Whether a data set in the transfer syntax `uid` is read as its receivers read it:
/// a deflated one inflated, another the registry knows. Any other is read as explicit
/// VR little endian (a `not-inspected` info), which a receiver that knows it may not do.
pub fn reads_transfer_syntax(uid: &str) -> bool {
    DEFLATED.contains(&uid) || TransferSyntaxRegistry.get(uid).is_some()
}

fn read_data_set(
    bytes: &[u8],
    start: usize,
    ts_uid: &str,
    inspection: &mut Inspection,
    found: &mut Observations,
    budget: &mut Budget,
) {
    let registry_ts = TransferSyntaxRegistry.get(ts_uid);
    if DEFLATED.contains(&ts_uid) {
        read_deflated(bytes, start, inspection, found, budget);
        return;
    }
    let ts = match registry_ts {
        Some(ts) => ts,
        None => {
            found.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Info,
                format: None,
                offset: None,
                detail: format!(
                    "unknown transfer syntax \"{}\": read as explicit VR little endian",
                    show_text(ts_uid)
                ),
            });
            match TransferSyntaxRegistry.get(EXPLICIT_VR_LE) {
                Some(ts) => ts,
                None => return,
            }
        }
    };
    let ts = as_encoded(bytes, start, ts);
    let summary = walk_and_search(bytes, start, ts, "", inspection, found, budget);
    if inspection.complete {
        inspection.pixel_data = summary.pixel_data;
    }
}

/// The transfer syntax to read the data set with: the declared one, unless the first
/// element shows the other VR encoding. Files that declare one and use the other exist
/// (pydicom ships one); readers look at the first element, and so do we.
fn as_encoded<'t>(bytes: &[u8], start: usize, ts: &'t TransferSyntax) -> &'t TransferSyntax {
    let other = |uid| TransferSyntaxRegistry.get(uid).unwrap_or(ts);
    match (ts.uid(), first_element_has_explicit_vr(bytes, start)) {
        (EXPLICIT_VR_LE, Some(false)) => other(IMPLICIT_VR_LE),
        (IMPLICIT_VR_LE, Some(true)) => other(EXPLICIT_VR_LE),
        (_, Some(false)) if is_little_endian_explicit(ts) => other(IMPLICIT_VR_LE),
        _ => ts,
    }
}

/// The longest UID DICOM allows (PS3.5 §9.1); longer values are cut to this.
pub const MAX_UID_LEN: usize = 64;

/// Where a DICOM instance's parts lie, for hashing them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The Pixel Data value or the span of its fragments; empty (at the end) without one.
    pub pixels: Range<usize>,
    pub instance_uid: String,
    pub transfer_syntax: String,
    /// The File Meta Information elements (group 0002, after `DICM`); empty (at 0) for a
    /// bare data set. They describe the transfer that wrote the file (sending AE, the
    /// writer's implementation), not the image: a re-received instance differs here alone.
    pub file_meta: Range<usize>,
    /// Where the values naming its study, series and patient lie
    /// ([`crate::IDENTITY_TAGS`], in that order, without padding); `None` for one absent.
    pub identity: [Option<Range<usize>>; crate::IDENTITY_VALUES],
    /// How its Pixel Data is to be read as an image ([`crate::PIXEL_FORM_TAGS`]).
    pub form: crate::PixelForm,
    /// Where the values saying what it is and how it is shown lie
    /// ([`crate::DESCRIPTION_TAGS`], in that order, without padding); `None` for one absent.
    pub description: [Option<Range<usize>>; crate::DESCRIPTION_VALUES],
}

/// The layout of a DICOM instance that can be read up to its Pixel Data, or `None` for
/// anything else (not DICOM, damaged, a deflated data set: hashed whole by the caller).
/// Cheaper than [`inspect`]: no value is searched and the Pixel Data is not read.
pub fn layout(bytes: &[u8]) -> Option<Layout> {
    let found = data_set(bytes)?;
    let summary = dataset::locate_pixel_data(bytes, found.file_meta.end, found.ts).ok()?;
    let cut = |uid: String| uid.chars().take(MAX_UID_LEN).collect::<String>();
    Some(Layout {
        pixels: summary.pixel_data.unwrap_or(bytes.len()..bytes.len()),
        instance_uid: cut(summary
            .sop_instance_uid
            .or(found.meta_instance_uid)
            .unwrap_or_default()),
        transfer_syntax: cut(found.ts_uid),
        file_meta: found.file_meta,
        identity: summary.identity,
        description: summary.description,
        form: crate::PixelForm::read(
            bytes,
            &summary.form,
            matches!(
                found.ts.endianness(),
                dicom_encoding::transfer_syntax::Endianness::Big
            ),
        ),
    })
}

/// What the first bytes `head` of a DICOM file say of its data set's longest top-level
/// value other than the Pixel Data ([`crate::LargestValue`]), read as far as they go
/// (a value running past them is known by its header), and of its Pixel Data: where it
/// starts and the length it declares, if it has one. `None` for anything else (not
/// DICOM, a deflated data set). Review rv39 (B3): ciphertext wrapped in a valid DICOM,
/// in a private element beside a tiny Pixel Data or none, went unsampled.
pub fn largest_value(head: &[u8]) -> Option<(crate::LargestValue, Option<(u64, u64)>)> {
    let found = data_set(head)?;
    let mut summary = DataSetSummary::default();
    // An error ends the reading (the head ends inside a value, or the data set is
    // damaged there); what was read before it stands.
    let _ = dataset::walk_declared(head, found.file_meta.end, found.ts, &mut summary);
    Some((summary.largest_value?, summary.pixel_value_declared))
}

/// The private or unknown binary values of a DICOM file, at any depth, as far as they
/// were read ([`binary_values`], [`binary_values_after`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryValues {
    /// The [`crate::MAX_BINARY_VALUES_NOTED`] longest, longest first.
    pub values: Vec<crate::LargestValue>,
    /// How many were met and the bytes they declare together, those not kept included.
    pub count: usize,
    pub declared: u64,
    /// Where the top-level Pixel Data value of defined length starts and the length it
    /// declares, when it was met.
    pub pixels: Option<(u64, u64)>,
    /// Where the value the bytes read end inside ends, by its declared length: where the
    /// reading can go on ([`binary_values_after`]).
    pub runs_to: Option<u64>,
    /// Whether the last reading reached the data set's end (no value ran past the bytes
    /// read, none was damaged): what was not met is not in the file.
    pub complete: bool,
}

impl BinaryValues {
    /// Takes what a walk of bytes that lie at `at` in the file found.
    fn take(&mut self, summary: DataSetSummary, at: u64, complete: bool) {
        self.complete = complete;
        for mut value in summary.binary_values {
            value.start = value.start.saturating_add(at);
            let keep = self
                .values
                .partition_point(|kept| kept.declared >= value.declared);
            if keep < crate::MAX_BINARY_VALUES_NOTED {
                self.values.insert(keep, value);
                self.values.truncate(crate::MAX_BINARY_VALUES_NOTED);
            }
        }
        self.count = self.count.saturating_add(summary.binary_count);
        self.declared = self.declared.saturating_add(summary.binary_declared);
        if self.pixels.is_none() {
            self.pixels = summary
                .pixel_value_declared
                .map(|(start, len)| (start.saturating_add(at), len));
        }
        self.runs_to = summary.runs_to.map(|end| end.saturating_add(at));
    }
}

/// The private or unknown binary values (OB, OW, UN of an odd group, or UN) the first
/// bytes `head` of a DICOM file hold, at any depth, and where its reading stopped
/// inside a value running past them. `None` for anything else (not DICOM, a deflated
/// data set). Review rv40b: ciphertext split over three private values, or in one
/// inside a private sequence, went unsampled as only the longest top-level value was.
pub fn binary_values(head: &[u8]) -> Option<BinaryValues> {
    let found = data_set(head)?;
    let mut summary = DataSetSummary::default();
    // An error ends the reading; what was read before it stands.
    let complete =
        dataset::walk_declared(head, found.file_meta.end, found.ts, &mut summary).is_ok();
    let mut values = BinaryValues::default();
    values.take(summary, 0, complete);
    Some(values)
}

/// Goes on reading, into `values`, the data set of the file whose first bytes are `head`
/// with `bytes`, read at `at` (where [`BinaryValues::runs_to`] said the value the reading
/// stopped in ends): the top-level elements that follow, encoded as `head`'s data set
/// is. Whether anything was read.
pub fn binary_values_after(head: &[u8], bytes: &[u8], at: u64, values: &mut BinaryValues) -> bool {
    let Some(found) = data_set(head) else {
        return false;
    };
    let mut summary = DataSetSummary::default();
    let complete = dataset::walk_declared(bytes, 0, found.ts, &mut summary).is_ok();
    let read = summary.values > 0 || summary.runs_to.is_some();
    values.take(summary, at, complete);
    read
}

/// A native Pixel Data value found in the first bytes of a file ([`native_pixels_in_head`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativePixels {
    /// The offset of its value in the file.
    pub start: u64,
    /// The length its header declares (the file may be shorter).
    pub len: u64,
    /// How its samples are laid out, in the head's byte order.
    pub form: crate::PixelForm,
}

/// Where the native Pixel Data value of the DICOM instance whose first bytes are `head`
/// starts and how long it declares to be, when the data set up to it lies within `head`;
/// `None` for anything else (encapsulated Pixel Data, no Pixel Data, not DICOM). For a
/// reader that hashes a large value in pieces instead of holding the file whole.
pub fn native_pixels_in_head(head: &[u8]) -> Option<NativePixels> {
    let found = data_set(head)?;
    let summary = dataset::read_so_far(head, found.file_meta.end, found.ts)?;
    let (start, len) = summary.pixel_value_declared?;
    Some(NativePixels {
        start,
        len,
        form: crate::PixelForm::read(
            head,
            &summary.form,
            matches!(
                found.ts.endianness(),
                dicom_encoding::transfer_syntax::Endianness::Big
            ),
        ),
    })
}

/// Where the data set of a DICOM instance starts and how it is encoded, for the
/// readers that walk it without inspecting it ([`layout`], [`garbled_text`]).
struct DataSetAt {
    /// The File Meta Information elements (empty, at 0, for a bare data set); the data
    /// set starts at its end.
    file_meta: Range<usize>,
    ts_uid: String,
    ts: &'static TransferSyntax,
    /// The Media Storage SOP Instance UID of the File Meta Information.
    meta_instance_uid: Option<String>,
}

/// The data set of `bytes`, or `None` for anything that is no DICOM instance, damaged
/// File Meta Information or a deflated data set (read whole by the callers' callers).
fn data_set(bytes: &[u8]) -> Option<DataSetAt> {
    let (file_meta, ts_uid, meta_instance_uid) = match locate(bytes)? {
        Located::Meta { at, .. } => {
            let meta = meta::read(bytes, at).ok()?;
            let ts = meta
                .transfer_syntax
                .unwrap_or_else(|| EXPLICIT_VR_LE.to_owned());
            (at..meta.end, ts, meta.media_storage_sop_instance)
        }
        Located::DataSet { ts } => (0..0, ts.to_owned(), None),
    };
    if DEFLATED.contains(&ts_uid.as_str()) {
        return None;
    }
    let registry = TransferSyntaxRegistry
        .get(&ts_uid)
        .or_else(|| TransferSyntaxRegistry.get(EXPLICIT_VR_LE))?;
    let ts = as_encoded(bytes, file_meta.end, registry);
    Some(DataSetAt {
        file_meta,
        ts_uid,
        ts,
        meta_instance_uid,
    })
}

/// Values of UIDs, dates, times and numbers breaking their syntax with printable bytes
/// (see [`text::breaks_syntax`]) that make a data set's text garbled: a wiper writing
/// printable noise breaks every one of them (CT_small holds 40), while a real file may
/// carry a writer's mistake or two that an edit leaves as it was (review r22: pydicom's
/// badVR.dcm, IS `1A`, its name corrected).
pub const MIN_MISFORMED_VALUES: usize = 3;

/// What [`garbled_text`] found in the text values of a data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextValues {
    /// Text values of standard elements holding bytes their VR does not allow.
    pub garbled: usize,
    /// The first such element.
    pub first: Option<(u16, u16)>,
    /// The bytes ended inside the data set before its Pixel Data: values past the cut
    /// were not looked at.
    pub cut: bool,
}

/// The text values of the data set in `bytes` (standard elements: even groups; vendors
/// keep binary in the text VRs of private ones) that hold bytes their VR's repertoire
/// does not allow: what encrypting or randomly overwriting a header's values leaves, and
/// no edit does. `None` when the bytes are no DICOM instance. `bytes` may stop short of
/// the file's end: the values before the cut count, and `cut` says so.
pub fn garbled_text(bytes: &[u8]) -> Option<TextValues> {
    let DataSetAt { file_meta, ts, .. } = data_set(bytes)?;
    let start = file_meta.end;
    let mut found = TextValues::default();
    let (mut misformed, mut first_misformed) = (0usize, None);
    let (summary, error) = dataset::walk(bytes, start, ts, |value| {
        let standard = value.tag.group() % 2 == 0 && value.tag.group() != 0x0002;
        if value.fragment || !standard {
            return;
        }
        // A standard element written as UN or OB (explicit VR) is read as the VR the
        // standard gives it: a wiper must not turn the Patient's Name into bytes by
        // relabelling it first.
        let vr = match value.vr {
            VR::UN | VR::OB => match StandardDataDictionary.by_tag(value.tag).map(|e| e.vr()) {
                Some(VirtualVr::Exact(vr)) => vr,
                _ => value.vr,
            },
            vr => vr,
        };
        if text::is_garbled(vr, value.bytes) {
            found.garbled += 1;
            found.first = found
                .first
                .or(Some((value.tag.group(), value.tag.element())));
        } else if text::breaks_syntax(vr, value.bytes) {
            misformed += 1;
            first_misformed = first_misformed.or(Some((value.tag.group(), value.tag.element())));
        }
    });
    // A writer's odd value or two is no wipe; printable noise breaks every UID, date,
    // time and number of a header.
    if misformed >= MIN_MISFORMED_VALUES {
        found.garbled += misformed;
        found.first = found.first.or(first_misformed);
    }
    // Cut before the Pixel Data: the value the bytes end in is not a native Pixel Data
    // (its tag 12 bytes before its value, explicit VR, or 8, implicit).
    let pixel_data_tag = |at: Option<usize>| {
        at.and_then(|at| bytes.get(at..at + 4)) == Some(&[0xE0, 0x7F, 0x10, 0x00][..])
    };
    found.cut = summary.pixel_data.is_none()
        && error.is_some_and(|e| {
            !pixel_data_tag(e.offset.checked_sub(12)) && !pixel_data_tag(e.offset.checked_sub(8))
        });
    Some(found)
}

/// How far into the data set of a file being written again its SOP Instance UID
/// (0008,0018) must have come: it is among the first elements of every instance (only
/// group 0008's few before it), a few hundred bytes in. Until then the bytes so far
/// say nothing of which instance is being written.
pub const PREFIX_IDENTITY_BYTES: usize = 4096;

/// How far past a stored instance's size a value being written may claim to end: the
/// File Meta Information of the same instance written again (another AE title, another
/// implementation) differs by a few dozen bytes.
pub const PREFIX_SIZE_SLACK: u64 = 4096;

/// What the first bytes of a file still being written say of the instance it was
/// stored as (see [`prefix_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// Too few bytes to tell: inside the preamble, the File Meta Information, or the
    /// first [`PREFIX_IDENTITY_BYTES`] of the data set before its SOP Instance UID.
    TooShort,
    /// The start of the same instance (the same SOP Instance UID), read as DICOM up to
    /// where the bytes end.
    SameInstance,
    /// Not the start of that instance: another instance, or bytes that do not read as
    /// DICOM (an encryptor that kept the first bytes and writes the rest anew).
    Other,
}

/// Whether `bytes`, the start of a file still being written over a stored instance
/// (SOP Instance UID `uid`, `stored_size` bytes), are the start of that instance
/// written again, as a PACS receiving it again writes it: the preamble and `DICM`, a
/// File Meta Information naming the instance, then a data set that reads up to where
/// the bytes end and names it within [`PREFIX_IDENTITY_BYTES`]; a value cut by the end
/// may not claim to run past the stored size (and [`PREFIX_SIZE_SLACK`]).
pub fn prefix_of(bytes: &[u8], uid: &str, stored_size: u64) -> Prefix {
    let at = PREAMBLE_LEN + 4;
    if bytes.len() < at {
        return Prefix::TooShort;
    }
    if &bytes[PREAMBLE_LEN..at] != b"DICM" {
        return Prefix::Other;
    }
    let same = |found: &str| {
        let cut = |u: &str| u.chars().take(MAX_UID_LEN).collect::<String>();
        cut(found) == cut(uid)
    };
    // (0002,0000) UL: where the group ends, whether or not its bytes are all here.
    let group_end = (bytes.get(at..at + 6) == Some(b"\x02\0\0\0UL"))
        .then(|| u32_le(bytes, at + 8))
        .flatten()
        .and_then(|len| usize::try_from(len).ok())
        .filter(|len| *len <= meta::MAX_META_GROUP_LEN)
        .map(|len| at + 12 + len);
    if bytes.len() < at + 12 || group_end.is_some_and(|end| bytes.len() < end) {
        return Prefix::TooShort;
    }
    // Read within its group when its length is known: the data set's first tag may be
    // cut by the end yet.
    let Ok(meta) = meta::read(group_end.map_or(bytes, |end| &bytes[..end]), at) else {
        return Prefix::Other;
    };
    if meta
        .media_storage_sop_instance
        .as_deref()
        .is_some_and(|u| !same(u))
    {
        return Prefix::Other;
    }
    let ts_uid = meta
        .transfer_syntax
        .unwrap_or_else(|| EXPLICIT_VR_LE.to_owned());
    if DEFLATED.contains(&ts_uid.as_str()) {
        // Not read here; the File Meta Information named the instance (or not).
        return match meta.media_storage_sop_instance {
            Some(_) => Prefix::SameInstance,
            None => Prefix::Other,
        };
    }
    let Some(registry) = TransferSyntaxRegistry.get(&ts_uid) else {
        return Prefix::Other;
    };
    let ts = as_encoded(bytes, meta.end, registry);
    let Some(summary) = dataset::read_so_far(bytes, meta.end, ts) else {
        return Prefix::Other;
    };
    let slack = stored_size.saturating_add(PREFIX_SIZE_SLACK);
    if summary.runs_to.is_some_and(|end| end > slack) {
        return Prefix::Other;
    }
    match summary.sop_instance_uid {
        Some(found) if same(&found) => Prefix::SameInstance,
        Some(_) => Prefix::Other,
        // Read whole to its Pixel Data (or its end) without one: named by its File Meta
        // Information alone.
        None if summary.pixel_data.is_some() && meta.media_storage_sop_instance.is_some() => {
            Prefix::SameInstance
        }
        None if bytes.len() - meta.end <= PREFIX_IDENTITY_BYTES => Prefix::TooShort,
        None => Prefix::Other,
    }
}

/// Whether the first data element at `at` carries an explicit VR; `None` without one.
fn first_element_has_explicit_vr(bytes: &[u8], at: usize) -> Option<bool> {
    let vr = bytes.get(at.checked_add(4)?..at.checked_add(6)?)?;
    Some(is_known_vr(vr))
}

/// Every transfer syntax but implicit VR little endian and explicit VR big endian is
/// explicit VR little endian for its data set (the compressed ones differ in pixel data).
fn is_little_endian_explicit(ts: &TransferSyntax) -> bool {
    !matches!(ts.uid(), IMPLICIT_VR_LE | EXPLICIT_VR_BE)
        && matches!(
            ts.endianness(),
            dicom_encoding::transfer_syntax::Endianness::Little
        )
}

/// Inflates a deflated data set (raw deflate, PS3.5 A.5) up to
/// [`MAX_INFLATED_DATA_SET_BYTES`] and walks it. Whatever cannot be walked is still
/// searched: the inflated part when the stream breaks or the budget stops it, the
/// compressed bytes themselves, and any bytes after the end of the deflate stream (which
/// no DICOM reader looks at, and which are therefore a place to hide a payload).
/// A raw deflate stream inflated up to a limit.
struct Inflated {
    /// What inflated, at most the limit.
    bytes: Vec<u8>,
    /// Compressed bytes read.
    consumed: usize,
    /// Why the inflation stopped short of the stream's end: the limit (`not-inspected`)
    /// or damage (`malformed-dicom`, the detail to follow "the deflated data set at ...").
    problem: Option<(FindingKind, String)>,
}

/// Inflates `compressed` to at most `limit` bytes ([`MAX_INFLATED_DATA_SET_BYTES`] for a
/// data set; a parameter so that the boundary is tested without 512 MiB). A stream of
/// exactly `limit` bytes is whole; one byte more is the limit reached, also when that
/// byte comes in the call that ends the stream (which was taken for the end, the data set
/// cut short without a word).
fn inflate_bounded(compressed: &[u8], limit: usize) -> Inflated {
    use miniz_oxide::inflate::stream::{InflateState, inflate};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};

    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut inflated = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut consumed = 0usize;
    let problem = loop {
        let result = inflate(
            &mut state,
            &compressed[consumed..],
            &mut chunk,
            MZFlush::None,
        );
        consumed += result.bytes_consumed;
        let room = limit - inflated.len();
        inflated.extend_from_slice(&chunk[..result.bytes_written.min(room)]);
        match result.status {
            _ if result.bytes_written > room => {
                break Some((
                    FindingKind::NotInspected,
                    format!(
                        "the deflated data set inflates to more than {limit} bytes (MAX_INFLATED_DATA_SET_BYTES, less what the DICOM files holding it inflated); the rest was searched in its compressed form only"
                    ),
                ));
            }
            Ok(MZStatus::StreamEnd) => break None,
            Ok(_) if result.bytes_consumed > 0 || result.bytes_written > 0 => continue,
            other => {
                break Some((
                    FindingKind::MalformedDicom,
                    format!(
                        "does not inflate past {} inflated bytes: {other:?}",
                        inflated.len()
                    ),
                ));
            }
        }
    };
    Inflated {
        bytes: inflated,
        consumed,
        problem,
    }
}

fn read_deflated(
    bytes: &[u8],
    start: usize,
    inspection: &mut Inspection,
    found: &mut Observations,
    budget: &mut Budget,
) {
    let compressed = bytes.get(start..).unwrap_or_default();
    let Inflated {
        bytes: inflated,
        consumed,
        problem,
    } = inflate_bounded(
        compressed,
        MAX_INFLATED_DATA_SET_BYTES.saturating_sub(found.nesting.inflated),
    );
    found.nesting.inflated += inflated.len();
    let after_break = bytes.len().saturating_sub(start + consumed);
    let problem = problem.map(|(kind, detail)| match kind {
        // The damage is said, and how the bytes after it were read: as text, by every
        // whole-file reader. Whoever damaged the stream wrote every byte after the break,
        // so the rules for chance bytes in binary values do not apply there (a break then
        // `cmd /^c calc` was only this warning: review rv34-screen).
        FindingKind::MalformedDicom => (
            kind,
            format!(
                "the deflated data set at offset {start} {detail}: the stream is damaged there, and the {after_break} byte(s) after the damage were searched as text, as whoever damaged it wrote them"
            ),
        ),
        _ => (kind, detail),
    });
    let Some(ts) = TransferSyntaxRegistry.get(EXPLICIT_VR_LE) else {
        return;
    };
    let over_limit = problem
        .as_ref()
        .is_some_and(|(kind, _)| *kind == FindingKind::NotInspected);
    if let Some((kind, detail)) = problem {
        found.push(Observation {
            kind,
            severity: Severity::Warning,
            format: None,
            offset: Some(start as u64),
            detail,
        });
        embedded::search(&inflated, &inflated, 0, budget, |hidden| {
            found.hidden(hidden, 0, "in the part of the deflated data set that inflated (offset in the inflated data set)")
        });
        scan_raw(bytes, start, found, budget);
    } else {
        walk_and_search(
            &inflated,
            0,
            ts,
            " (offset in the inflated data set)",
            inspection,
            found,
            budget,
        );
        for document in &mut inspection.documents {
            document.in_inflated_data_set = true;
        }
        for nested in &mut inspection.nested_files {
            nested.offset = None;
        }
        let end = start + consumed;
        if bytes.len().saturating_sub(end) > 1 {
            found.push(Observation {
                kind: FindingKind::NotInspected,
                severity: Severity::Info,
                format: None,
                offset: Some(end as u64),
                detail: format!(
                    "{} byte(s) after the end of the deflated data set, which DICOM readers ignore: searched",
                    bytes.len() - end
                ),
            });
            embedded::search(&bytes[end..], bytes, end, budget, |hidden| {
                found.hidden(hidden, end, "after the end of the deflated data set")
            });
        }
    }
    // To the end of the deflate stream. Past the inflate limit, the rest of the file is
    // the stream's too (it was inflating well). Where it did not inflate, the stream
    // ends at the bytes the inflater took: what follows is no compressed data, only a
    // claim of it, and a file that merely names a deflated transfer syntax would
    // otherwise have its plain lines read as chance bytes (review r32-screen). So it is
    // after damage in a real deflated data set: the bytes after the break are whatever
    // damaged it wrote, read as text (review rv34-screen).
    let compressed_end = if over_limit {
        bytes.len()
    } else {
        bytes.len().min(start + consumed)
    };
    inspection.deflated = Some(start.min(compressed_end)..compressed_end);
    inspection.inflated = inflated;
}

/// Walks the data set, searching every value for hidden content and keeping the
/// encapsulated documents.
fn walk_and_search(
    bytes: &[u8],
    start: usize,
    ts: &TransferSyntax,
    offset_note: &str,
    inspection: &mut Inspection,
    found: &mut Observations,
    budget: &mut Budget,
) -> DataSetSummary {
    let mut document_bytes = 0usize;
    let mut documents = Vec::new();
    let mut nested_files = Vec::new();
    let mut binary_values: Vec<Range<usize>> = Vec::new();
    let (summary, error) = dataset::walk(bytes, start, ts, |value| {
        if is_binary_value(&value) {
            binary_values.push(value.offset..value.offset + value.bytes.len());
        }
        // Formatted only for a finding: once per element it was a tenth of the time of a
        // scan of small instances (perf).
        let place = || {
            if value.fragment {
                format!("in a pixel data fragment{offset_note}")
            } else {
                format!(
                    "in element {} ({}){offset_note}",
                    show_tag(value.tag),
                    value.vr
                )
            }
        };
        embedded::search(value.bytes, bytes, value.offset, budget, |hidden| {
            found.hidden(hidden, value.offset, &place())
        });
        if value.tag == ENCAPSULATED_DOCUMENT && !value.fragment {
            for hidden in embedded::encapsulated_document(value.bytes, budget.deadline()) {
                found.hidden(hidden, value.offset, &place());
            }
        }
        // Once the budget is spent the search has stopped, and says so once for the file:
        // a nested file would only repeat that, at the cost of its readers.
        if budget.exhausted().is_none() && opens_as_dicom_file(value.bytes) {
            nested_files.extend(screen_nested_dicom_file(
                value.bytes,
                value.offset,
                &place(),
                found,
                budget,
            ));
        }
        if value.tag == ENCAPSULATED_DOCUMENT
            && !value.fragment
            && documents.len() < MAX_DOCUMENTS
            && document_bytes + value.bytes.len() <= MAX_DOCUMENT_BYTES
        {
            document_bytes += value.bytes.len();
            documents.push(Document {
                tag: show_tag(value.tag),
                offset: value.offset as u64,
                // Set by the caller that walked an inflated data set.
                in_inflated_data_set: false,
                bytes: value.bytes.to_vec(),
            });
        }
    });
    inspection.documents = documents;
    inspection.nested_files = nested_files;
    // In the order walked, which is the file's; sorted and merged again all the same,
    // since the batch search looks offsets up in them by bisection.
    binary_values.sort_by_key(|range| range.start);
    inspection.binary_values = binary_values
        .into_iter()
        .fold(Vec::new(), |mut apart, range| {
            match apart.last_mut() {
                Some(last) if last.end >= range.start => last.end = last.end.max(range.end),
                _ => apart.push(range),
            }
            apart
        });
    if inspection.sop_class_uid.is_none() || summary.sop_class_uid.is_some() {
        inspection.sop_class_uid = summary
            .sop_class_uid
            .clone()
            .or(inspection.sop_class_uid.take());
    }
    if summary.sop_instance_uid.is_some() {
        inspection.sop_instance_uid = summary.sop_instance_uid.clone();
    }
    match error {
        None => inspection.complete = true,
        Some(error) => {
            malformed(
                found,
                error.offset,
                &format!("{}{offset_note}", error.reason),
            );
            // From the start of the data set, not from the break: the walk may have taken
            // part of a payload for elements before it failed. Findings already made are
            // not repeated (same offsets).
            scan_raw(bytes, start, found, budget);
        }
    }
    summary
}

/// Whether `value` holds bytes rather than text: Pixel Data (native or a fragment) or a
/// value of a VR of bytes (OB, OD, OF, OL, OV, OW, and UN, which a reader does not know
/// as text). Compressed pixel data and vendors' binary blobs are near-uniform bytes.
fn is_binary_value(value: &dataset::ValueRef<'_>) -> bool {
    value.fragment
        || value.tag == dataset::PIXEL_DATA
        || matches!(
            value.vr,
            VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
        )
}

/// Whether `value`, taken out of its element into a file (`dcm2pdf` writes an
/// Encapsulated Document as it is), opens as a Part 10 file: `DICM` after a preamble, or
/// at its start, as [`locate`] finds one.
fn opens_as_dicom_file(value: &[u8]) -> bool {
    matches!(
        locate(value),
        Some(Located::Meta {
            container: Container::Part10,
            ..
        })
    )
}

/// Screens the DICOM file held in a value at `at` (`place` says where) as a file in its
/// own right, one level deeper and with what is left of the holder's budget: its data
/// set is walked as its readers walk it (inflated, when deflated), which a search of the
/// value's bytes as they are does not do. What it finds is the holder's, at the value.
/// Past [`MAX_NESTED_DICOM_DEPTH`] the value is searched as bytes only, and that is said;
/// its bytes are still kept for the rules and hash lists. Gives back the file and those
/// held in it, for the rules and hash lists.
fn screen_nested_dicom_file(
    value: &[u8],
    at: usize,
    place: &str,
    found: &mut Observations,
    budget: &mut Budget,
) -> Vec<NestedFile> {
    let nesting = Nesting {
        depth: found.nesting.depth + 1,
        ..found.nesting
    };
    if nesting.depth > MAX_NESTED_DICOM_DEPTH {
        found.nested_cut.past_depth.add(place.to_owned(), at as u64);
        // Its data set is not read, but its bytes still go to the rules and hash lists
        // (within MAX_NESTED_FILE_BYTES): one more level of nesting must not hide a
        // known-bad file from them.
        return keep_nested_file(value, at, place, Vec::new(), Vec::new(), Vec::new(), found);
    }
    let (mut nested, left) = inspect_nested(value, std::mem::take(budget), nesting);
    *budget = left;
    let cut = std::mem::take(&mut nested.nested_cut);
    found.nested_cut.merge(cut, place, at as u64);
    for observation in nested.observations {
        let inner = observation.offset;
        // What the search of the value's own bytes already reported at that offset is
        // one finding, not two.
        let reported = inner.is_some_and(|inner| {
            found.kept.iter().any(|o| {
                o.offset == Some(at as u64 + inner)
                    && o.kind == observation.kind
                    && o.format == observation.format
            })
        });
        if reported {
            continue;
        }
        let in_it = inner.map_or(String::new(), |inner| format!(", offset {inner} in it"));
        let detail = format!(
            "{} (in the DICOM file held {place}{in_it})",
            observation.detail
        );
        // Past the cap, counted by `push` as any other.
        found.push(Observation {
            offset: Some(at as u64),
            detail,
            ..observation
        });
    }
    keep_nested_file(
        value,
        at,
        place,
        nested.inflated,
        nested.documents,
        nested.nested_files,
        found,
    )
}

/// The nested file read at `at` (`place`) and the files held in it (`held`, kept within
/// what was left when it was read), as the rules and hash lists take them: offsets in the
/// holder, places naming the whole way in. The file itself is kept if it fits in what
/// [`MAX_NESTED_FILE_BYTES`] leaves; if not, that is said, naming the limit.
fn keep_nested_file(
    value: &[u8],
    at: usize,
    place: &str,
    inflated: Vec<u8>,
    documents: Vec<Document>,
    held: Vec<NestedFile>,
    found: &mut Observations,
) -> Vec<NestedFile> {
    let file = NestedFile {
        place: place.to_owned(),
        offset: Some(at as u64),
        bytes: value.to_vec(),
        inflated,
        documents,
    };
    let held_bytes: usize = held.iter().map(NestedFile::kept_bytes).sum();
    let room = MAX_NESTED_FILE_BYTES.saturating_sub(found.nesting.kept + held_bytes);
    let mut kept = Vec::with_capacity(held.len() + 1);
    if file.kept_bytes() <= room {
        found.nesting.kept += file.kept_bytes();
        kept.push(file);
    } else {
        found.nested_cut.not_kept.add(place.to_owned(), at as u64);
    }
    found.nesting.kept += held_bytes;
    kept.extend(held.into_iter().map(|inner| NestedFile {
        place: format!("{} of the DICOM file held {place}", inner.place),
        offset: inner.offset.map(|inner| at as u64 + inner),
        ..inner
    }));
    kept
}

fn show_text(text: &str) -> String {
    escape_bytes(&text.as_bytes()[..text.len().min(MAX_UID_LEN)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch findings of `file`: severity and kind.
    fn batch_findings(file: &[u8]) -> Vec<(Severity, FindingKind)> {
        inspect(file)
            .observations
            .into_iter()
            .filter(|o| o.format == Some(Format::Batch))
            .map(|o| (o.severity, o.kind))
            .collect()
    }

    /// Issue 10 (session 32): a bare name of a runnable file alone on a line
    /// (`\nj.CPL|`) is ~3.5e-6 a window of 64 KiB of compressed pixel data (ARCHITECTURE
    /// invariant 11): a warning where chance bytes live (pixel data, its fragments,
    /// binary values), still an alert in the preamble and in text values, where they do
    /// not. A warning there does not end the search: a command further on is an alert.
    #[test]
    fn a_bare_runnable_name_alone_is_a_warning_in_binary_values_and_an_alert_in_text() {
        use pacsguard_testkit::{DicomBuilder, Pixels};
        let uid = "1.2.826.0.1.3680043.10.1137.3.32";
        let mut binary = vec![0x80u8; 512];
        binary[100..112].copy_from_slice(b"\r\nevil.exe\r\n");
        let warning = vec![(Severity::Warning, FindingKind::ActiveContent)];
        let alert = vec![(Severity::Alert, FindingKind::ActiveContent)];
        let native = DicomBuilder::ct(uid)
            .pixels(Pixels::Native(binary.clone()))
            .build();
        assert_eq!(batch_findings(&native), warning, "native pixel data");
        let fragment = DicomBuilder::ct(uid)
            .pixels(Pixels::Encapsulated(vec![binary.clone()]))
            .build();
        assert_eq!(batch_findings(&fragment), warning, "a pixel data fragment");
        let private = DicomBuilder::ct(uid)
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", &binary)
            .build();
        assert_eq!(batch_findings(&private), warning, "a private OB value");
        let text = DicomBuilder::ct(uid)
            .element(0x0020, 0x4000, *b"LT", b"see\r\nevil.exe\r\n")
            .build();
        assert_eq!(batch_findings(&text), alert, "a text value");
        let preamble = DicomBuilder::ct(uid)
            .preamble(b"ACME\r\nevil.exe\r\n")
            .build();
        assert_eq!(batch_findings(&preamble), alert, "the preamble");
        let then_text = DicomBuilder::ct(uid)
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", &binary)
            .element(0x0020, 0x4000, *b"LT", b"see\r\ncalc.exe\r\n")
            .build();
        assert_eq!(batch_findings(&then_text), alert, "binary, then text");
        // A bare name with an argument, or any known tool, stays an alert anywhere.
        let mut argued = binary.clone();
        argued[100..115].copy_from_slice(b"\r\nevil.exe /s\r\n");
        let argued = DicomBuilder::ct(uid).pixels(Pixels::Native(argued)).build();
        assert_eq!(batch_findings(&argued), alert, "a bare name with a switch");
        // A deflated data set written in a stored block (bytes kept as they are, as a
        // deflater writes incompressible ones): the line is in the file's compressed
        // bytes and in the inflated data set's OB value alike.
        let plain = DicomBuilder::ct(uid)
            .without_pixels()
            .transfer_syntax(DEFLATED[0])
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", &binary)
            .build();
        let meta_len = u32::from_le_bytes(plain[140..144].try_into().expect("4 bytes"));
        let data_set = &plain[144 + meta_len as usize..];
        let len = u16::try_from(data_set.len()).expect("one stored block");
        let mut deflated = plain[..144 + meta_len as usize].to_vec();
        deflated.push(0x01); // the final block, stored
        deflated.extend(len.to_le_bytes());
        deflated.extend((!len).to_le_bytes());
        deflated.extend(data_set);
        assert_eq!(inspect(&deflated).inflated, data_set);
        assert_eq!(
            batch_findings(&deflated),
            [warning.clone(), warning].concat(),
            "a deflated data set, read whole and inflated"
        );
    }

    /// Issue 10 (session 34): cmd.exe runs every line of a file extracted from a binary
    /// value as it runs a text value's, but an ambiguous tool's switch was read there as
    /// written among its first three arguments only: carets not dropped, a built-in's
    /// name ended by `/` not read, a switch past the third argument not looked for. One
    /// reader now, in a private OB value as in a text value: an alert in both.
    #[test]
    fn an_ambiguous_tools_switch_in_a_binary_value_is_read_as_cmd_reads_it() {
        use pacsguard_testkit::DicomBuilder;
        let uid = "1.2.826.0.1.3680043.10.1137.3.34";
        let alert = vec![(Severity::Alert, FindingKind::ActiveContent)];
        for line in [
            &b"rd C:\\PACS ^/s ^/q"[..],
            b"rd C:\\PACS /^s /^q",
            b"rd/s/q C:\\PACS",
            b"del/f/q C:\\PACS\\*.dcm",
            b"rd a b c C:\\PACS /s /q",
            b"del a b c d C:\\PACS\\*.dcm /f /q",
            b"rd C:\\PACS/s/q",
            b"tar x y z \"-xf\" evil.tar",
        ] {
            let mut value = vec![0x80u8; 512];
            let framed = [&b"\r\n"[..], line, b"\r\n"].concat();
            value[100..100 + framed.len()].copy_from_slice(&framed);
            let private = DicomBuilder::ct(uid)
                .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
                .element(0x0009, 0x1010, *b"OB", &value)
                .build();
            let shown = String::from_utf8_lossy(line);
            assert_eq!(
                batch_findings(&private),
                alert,
                "{shown:?} in a private OB value"
            );
            let text = DicomBuilder::ct(uid)
                .element(0x0020, 0x4000, *b"LT", &[&b"see"[..], &framed].concat())
                .build();
            assert_eq!(batch_findings(&text), alert, "{shown:?} in a text value");
        }
    }

    /// Issue 10 (session 34): a file extracted from a binary value starts with the value:
    /// its first line is one cmd.exe runs.
    #[test]
    fn a_binary_values_first_line_is_a_line_cmd_runs() {
        use pacsguard_testkit::DicomBuilder;
        let mut value = b"rd C:\\PACS /s /q\r\n".to_vec();
        value.resize(512, 0x80);
        let private = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.35")
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", &value)
            .build();
        assert_eq!(
            batch_findings(&private),
            vec![(Severity::Alert, FindingKind::ActiveContent)]
        );
    }

    /// Review r32-screen: a file that only claims a deflated transfer syntax had the
    /// whole rest of it taken for compressed bytes when it did not inflate, so a bare
    /// name in plain text there was a warning. The compressed bytes end where the
    /// inflater stopped taking them; what follows is read as the file's own.
    #[test]
    fn a_data_set_that_does_not_inflate_is_not_binary_past_what_the_inflater_took() {
        use pacsguard_testkit::DicomBuilder;
        let uid = "1.2.826.0.1.3680043.10.1137.3.3202";
        let claimed = DicomBuilder::ct(uid)
            .without_pixels()
            .transfer_syntax(DEFLATED[0])
            .element(0x0020, 0x4000, *b"LT", b"see\r\nlogoff.exe\r\n")
            .build();
        let inspection = inspect(&claimed);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.kind == FindingKind::MalformedDicom),
            "{:#?}",
            inspection.observations
        );
        let deflated = inspection.deflated.clone().expect("a deflated range");
        assert!(deflated.end < claimed.len() - 16, "{deflated:?}");
        assert_eq!(
            batch_findings(&claimed),
            vec![(Severity::Alert, FindingKind::ActiveContent)]
        );
    }

    /// Review r24-scan: the readers of the whole file ran to their own limits whatever
    /// the deadline (a gateway screening thread stayed busy long after it). On a data
    /// set each of them works on (`! x onload=x &x`: a command for sh, a shell escape
    /// for ex, an attribute for mshta, a command after `&` for cmd.exe), a deadline
    /// already passed stops each one, with a `not-inspected` warning naming it; with
    /// time to spare, none says so.
    #[test]
    fn every_reader_of_the_whole_file_stops_at_the_deadline_and_names_it() {
        use pacsguard_testkit::DicomBuilder;
        let line = b"\n! x onload=x &x";
        let value: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 8192)
            .collect();
        let file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.2")
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", &value)
            .build();
        let deadline_warnings = |budget: Budget| -> Vec<String> {
            inspect_within(&file, budget)
                .observations
                .into_iter()
                .filter(|o| o.kind == FindingKind::NotInspected)
                .map(|o| o.detail)
                .filter(|d| d.contains("took longer than the test's deadline"))
                .collect()
        };
        let passed = deadline_warnings(Budget::until(
            std::time::Instant::now(),
            "the test's deadline".into(),
        ));
        for says in [
            "text that sh would parse as a script",
            "ex/ed shell escapes",
            "batch command lines",
            "markup read up to here",
        ] {
            assert!(
                passed.iter().any(|w| w.contains(says)),
                "{says}: {passed:#?}"
            );
        }
        let ample = deadline_warnings(Budget::until(
            std::time::Instant::now() + std::time::Duration::from_secs(600),
            "the test's deadline".into(),
        ));
        assert!(ample.is_empty(), "{ample:#?}");
    }

    /// A header edited (another patient's name) reads as text; the same values
    /// overwritten with random bytes of their length, the SOP Instance UID and the Pixel
    /// Data kept, do not; a private element's binary in a text VR is no evidence.
    #[test]
    fn garbled_text_tells_an_edit_from_random_values() {
        use pacsguard_testkit::DicomBuilder;
        let file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1").build();
        let clean = Some(TextValues::default());
        assert_eq!(garbled_text(&file), clean);
        let at = file
            .windows(8)
            .position(|w| w == b"DOE^JANE")
            .expect("the Patient's Name");
        let mut edited = file.clone();
        edited[at..at + 8].copy_from_slice(b"ROE^JOHN");
        assert_eq!(garbled_text(&edited), clean);
        let mut wiped = file.clone();
        wiped[at..at + 8].copy_from_slice(b"\x9c\x01\xf3Q\x17\x88\x02z");
        assert_eq!(
            garbled_text(&wiped),
            Some(TextValues {
                garbled: 1,
                first: Some((0x0010, 0x0010)),
                cut: false
            })
        );
        // Cut before the Patient's Name: nothing garbled read yet, and said to be cut;
        // cut inside the Pixel Data, everything was read.
        let before = garbled_text(&wiped[..at - 3]).expect("DICOM");
        assert_eq!((before.garbled, before.cut), (0, true));
        let inside = garbled_text(&wiped[..wiped.len() - 10]).expect("DICOM");
        assert_eq!((inside.garbled, inside.cut), (1, false));
        let vendor = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1")
            .element(0x0009, 0x1001, *b"SH", b"\x01\x02\x03\x04")
            .build();
        assert!(layout(&vendor).is_some());
        assert_eq!(garbled_text(&vendor), clean);
        // Relabelled UN first, then random: read as the PN the standard says it is.
        let relabelled = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1")
            .element(0x0010, 0x0030, *b"UN", b"\x9c\x01\xf3Q\x17\x88\x02z")
            .build();
        assert_eq!(
            garbled_text(&relabelled).map(|t| t.first),
            Some(Some((0x0010, 0x0030)))
        );
        // Printable bytes breaking the syntax of UIDs, dates or numbers: fewer than
        // MIN_MISFORMED_VALUES values are a writer's mistakes, that many a wipe.
        let misformed = |n: usize| {
            let mut builder = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1");
            for (i, (tag, vr, value)) in [
                ((0x0008, 0x0020), *b"DA", &b"2O04)119"[..]),
                ((0x0020, 0x0013), *b"IS", b"1A"),
                ((0x0020, 0x000D), *b"UI", b"1.2.8#6.0.1.x"),
            ]
            .into_iter()
            .enumerate()
            {
                if i < n {
                    builder = builder.element(tag.0, tag.1, vr, value);
                }
            }
            garbled_text(&builder.build()).map(|t| (t.garbled, t.first))
        };
        assert_eq!(MIN_MISFORMED_VALUES, 3);
        assert_eq!(misformed(1), Some((0, None)));
        assert_eq!(misformed(2), Some((0, None)));
        assert_eq!(misformed(3), Some((3, Some((0x0008, 0x0020)))));
    }

    /// Review r25-watch: the layout names where the values of an instance's study,
    /// series and patient lie, without the padding of odd-length values (a NUL after a
    /// UID, a space after text): in a real file (pydicom's CT_small), and in a built one
    /// whose values are all of odd length.
    #[test]
    fn the_layout_names_the_study_series_and_patient_of_an_instance() {
        let values = |file: &[u8]| -> Vec<Option<String>> {
            layout(file)
                .expect("a layout")
                .identity
                .iter()
                .map(|r| {
                    r.clone()
                        .map(|r| String::from_utf8_lossy(&file[r]).into_owned())
                })
                .collect()
        };
        // The built file holds no birth date, sex, dates or geometry: absent, not empty.
        let built_values = |file: &[u8]| -> Vec<Option<String>> {
            let mut values = values(file);
            assert!(values[4..].iter().all(Option::is_none), "{values:?}");
            values.truncate(4);
            values
        };
        let real = pacsguard_testkit::pydicom_sample("CT_small.dcm");
        assert_eq!(
            values(&real),
            [
                Some("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"),
                Some("1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"),
                Some("1CT1"),
                Some("CompressedSamples^CT1"),
                Some(""),
                Some("O"),
                Some("20040119"),
                Some("19970430"),
                Some("19970430"),
                Some("19970430"),
                Some("-158.135803\\-179.035797\\-75.699997"),
                Some("1.000000\\0.000000\\0.000000\\0.000000\\1.000000\\0.000000"),
                Some("0.661468\\0.661468"),
                Some("5.000000"),
                Some("-1024"),
                Some("1"),
            ]
            .map(|v| v.map(str::to_string))
        );
        let built = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.9").build();
        assert_eq!(
            built_values(&built),
            [
                Some("1.2.826.0.1.3680043.10.1137.1"),
                Some("1.2.826.0.1.3680043.10.1137.1.1"),
                Some("PG-0001"),
                Some("DOE^JANE"),
            ]
            .map(|v| v.map(str::to_string))
        );
    }

    /// Every prefix of a stored instance written again (byte by byte, as a receiver's
    /// PDUs may cut it anywhere) is too short to tell or the same instance, never
    /// another; the same bytes under another SOP Instance UID, or the first bytes kept
    /// (up to `DICM`, or to the end of the File Meta Information) and the rest random,
    /// are another once past the identity bytes.
    #[test]
    fn a_prefix_is_the_same_instance_only_while_it_reads_as_the_stored_one() {
        use pacsguard_testkit::{DicomBuilder, Pixels};
        let uid = "1.2.826.0.1.3680043.10.1137.3.1";
        let pixels: Vec<u8> = (0..65_536u32).map(|j| (j % 251) as u8).collect();
        let file = DicomBuilder::ct(uid).pixels(Pixels::Native(pixels)).build();
        let size = file.len() as u64;
        let layout = layout(&file).expect("a layout");
        let mut same = 0;
        for end in 0..=file.len() {
            match prefix_of(&file[..end], uid, size) {
                Prefix::SameInstance => same += 1,
                Prefix::TooShort => assert!(end <= layout.pixels.start, "cut at {end}"),
                Prefix::Other => panic!("a prefix of {end} bytes taken for another instance"),
            }
        }
        assert!(same > file.len() - 1000, "{same}");
        assert_eq!(
            prefix_of(&file, "1.2.826.0.1.3680043.10.1137.3.2", size),
            Prefix::Other
        );
        let mut noise = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 7;
                    noise ^= noise << 17;
                    noise as u8
                })
                .collect()
        };
        for kept in [PREAMBLE_LEN + 4, layout.file_meta.end] {
            let mut encrypted = file[..kept].to_vec();
            encrypted.extend(random(file.len() / 2));
            assert_eq!(
                prefix_of(&encrypted, uid, size),
                Prefix::Other,
                "kept {kept}"
            );
        }
    }

    /// A raw deflate stream of `data`, written by the real gzip (`-n`: a 10-byte header,
    /// then the stream, then an 8-byte trailer).
    fn deflated(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gzip = std::process::Command::new("gzip")
            .args(["-n", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = gzip.stdin.take().expect("stdin");
        let owned = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&owned).expect("to gzip"));
        let out = gzip.wait_with_output().expect("gzip output");
        writer.join().expect("writer");
        out.stdout[10..out.stdout.len() - 8].to_vec()
    }

    /// MAX_INFLATED_DATA_SET_BYTES at its boundary, lowered through `inflate_bounded`'s
    /// limit (512 MiB is too heavy for a test): a stream of exactly the limit is whole, one
    /// byte over is `not-inspected` naming the limit. 100,000 bytes end in the second
    /// 64 KiB inflate call, the one that also reports the stream's end: that call was
    /// taken for the end, and the data set cut short at the limit without a word.
    #[test]
    fn a_data_set_inflating_to_its_limit_is_whole_and_one_byte_over_is_a_warning() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let stream = deflated(&data);
        let at = inflate_bounded(&stream, data.len());
        assert!(at.problem.is_none(), "{:?}", at.problem);
        assert_eq!(at.bytes, data);
        assert_eq!(at.consumed, stream.len());
        let over = inflate_bounded(&stream, data.len() - 1);
        let (kind, detail) = over.problem.expect("the limit is reached");
        assert_eq!(kind, FindingKind::NotInspected);
        assert!(detail.contains("MAX_INFLATED_DATA_SET_BYTES"), "{detail}");
        assert_eq!(over.bytes, data[..data.len() - 1]);
        // The limit in the middle of the stream, as before.
        let early = inflate_bounded(&stream, 1000);
        assert_eq!(
            early.problem.map(|(kind, _)| kind),
            Some(FindingKind::NotInspected)
        );
        // A stream cut short is damage, not the limit.
        let cut = inflate_bounded(&stream[..stream.len() / 2], data.len());
        assert_eq!(
            cut.problem.map(|(kind, _)| kind),
            Some(FindingKind::MalformedDicom)
        );
    }

    /// A CT instance of the deflated transfer syntax holding `value` in a private element:
    /// its data set deflated by the real gzip, as `dcmconv +td` writes it.
    fn deflated_instance(sop_instance: &str, value: &[u8]) -> Vec<u8> {
        let plain = pacsguard_testkit::DicomBuilder::ct(sop_instance)
            .without_pixels()
            .transfer_syntax(DEFLATED[0])
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
            .element(0x0009, 0x1010, *b"OB", value)
            .build();
        // The File Meta group's length is the value of its first element, (0002,0000) UL.
        let meta_len = u32::from_le_bytes(plain[140..144].try_into().expect("4 bytes"));
        let start = 144 + meta_len as usize;
        let mut file = plain[..start].to_vec();
        file.extend(deflated(&plain[start..]));
        file.resize(file.len() + file.len() % 2, 0);
        file
    }

    /// A CT instance holding each of `files` in a private OB element of its own.
    fn holding(sop_instance: &str, files: &[&[u8]]) -> Vec<u8> {
        let mut builder = pacsguard_testkit::DicomBuilder::ct(sop_instance)
            .without_pixels()
            .element(0x0009, 0x0010, *b"LO", b"ACME 1.0");
        for (n, file) in files.iter().enumerate() {
            let element = 0x1010 + u16::try_from(n).expect("a few");
            builder = builder.element(0x0009, element, *b"OB", file);
        }
        builder.build()
    }

    fn warnings_naming(inspection: &Inspection, limit: &str) -> Vec<String> {
        inspection
            .observations
            .iter()
            .filter(|o| o.kind == FindingKind::NotInspected && o.severity == Severity::Warning)
            .filter(|o| o.detail.contains(limit))
            .map(|o| o.detail.clone())
            .collect()
    }

    /// Review r30-screen (issue 10): a nested file's inflated data set shares the
    /// MAX_INFLATED_DATA_SET_BYTES of the files holding it (all are in memory at once).
    /// Its holders having inflated all but 1,000 bytes of it (512 MiB is too heavy for a
    /// test), a nested deflated instance of 10,000 bytes reaches it: a warning naming the
    /// limit and where the file is held; with the whole limit left, none.
    #[test]
    fn a_nested_deflated_file_shares_its_holders_inflation_limit_and_says_so() {
        let pattern: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let inner = deflated_instance("1.2.826.0.1.3680043.10.1137.31.1", &pattern);
        let holder = holding("1.2.826.0.1.3680043.10.1137.31.2", &[&inner]);
        let near_the_limit = Nesting {
            inflated: MAX_INFLATED_DATA_SET_BYTES - 1000,
            ..Nesting::default()
        };
        let (inspection, _) = inspect_nested(&holder, Budget::default(), near_the_limit);
        let warned = warnings_naming(&inspection, "MAX_INFLATED_DATA_SET_BYTES");
        assert_eq!(warned.len(), 1, "{:#?}", inspection.observations);
        assert!(
            warned[0].contains("held in element (0009,1010)"),
            "{}",
            warned[0]
        );
        let whole = inspect(&holder);
        assert!(
            warnings_naming(&whole, "MAX_INFLATED_DATA_SET_BYTES").is_empty(),
            "{:#?}",
            whole.observations
        );
        assert_eq!(whole.nested_files.len(), 1);
        assert!(whole.nested_files[0].inflated.len() > pattern.len());
    }

    /// Task r34-screen: each nested DICOM file a limit cut was a warning of its own (a file
    /// holding 10,000 was MAX_OBSERVATIONS warnings and "at least 9,968 more", the
    /// findings after them unlisted). Each limit is one warning: how many, the first
    /// NESTED_FILES_NAMED named, the count never dropped, at any depth.
    #[test]
    fn nested_files_cut_by_a_limit_are_one_warning_per_limit() {
        const HELD: usize = 100;
        let inner = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.34.1")
            .without_pixels()
            .build();
        let many: Vec<&[u8]> = vec![&inner[..]; HELD];
        let holder = holding("1.2.826.0.1.3680043.10.1137.34.2", &many);
        let no_room = Nesting {
            kept: MAX_NESTED_FILE_BYTES,
            ..Nesting::default()
        };
        let (inspection, _) = inspect_nested(&holder, Budget::default(), no_room);
        let warned = warnings_naming(&inspection, "MAX_NESTED_FILE_BYTES");
        assert_eq!(warned.len(), 1, "{:#?}", inspection.observations);
        assert!(
            warned[0].starts_with(&format!("{HELD} DICOM files")),
            "{}",
            warned[0]
        );
        assert!(warned[0].contains("(0009,1010)"), "{}", warned[0]);
        assert!(
            warned[0].contains(&format!("and {} more", HELD - NESTED_FILES_NAMED)),
            "{}",
            warned[0]
        );
        assert!(warnings_naming(&inspection, "more finding(s)").is_empty());

        // HELD files past the depth limit, MAX_NESTED_DICOM_DEPTH files down: one warning
        // at the top, naming the way in.
        let mut file = holding("1.2.826.0.1.3680043.10.1137.34.3", &many);
        for level in 1..MAX_NESTED_DICOM_DEPTH {
            file = holding(
                &format!("1.2.826.0.1.3680043.10.1137.34.4.{level}"),
                &[&file],
            );
        }
        let deep = inspect(&holding("1.2.826.0.1.3680043.10.1137.34.5", &[&file]));
        let warned = warnings_naming(&deep, "MAX_NESTED_DICOM_DEPTH");
        assert_eq!(warned.len(), 1, "{:#?}", deep.observations);
        assert!(
            warned[0].starts_with(&format!("{HELD} DICOM files")),
            "{}",
            warned[0]
        );
        assert!(
            warned[0].contains("of the DICOM file held in element"),
            "{}",
            warned[0]
        );
        assert!(warnings_naming(&deep, "more finding(s)").is_empty());
        assert_eq!(deep.nested_files.len(), HELD + MAX_NESTED_DICOM_DEPTH);
    }

    /// Review r30-screen (issue 10): the nested files kept for the site's rules and hash
    /// lists are bounded by MAX_NESTED_FILE_BYTES for the whole file screened. With room
    /// for exactly one of two nested files, the first is kept and the second is a
    /// warning naming the limit and its element; with room for both, both, no warning.
    #[test]
    fn the_nested_files_kept_for_the_rules_stop_at_their_limit_and_say_so() {
        let inner = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.32.1")
            .without_pixels()
            .build();
        let holder = holding("1.2.826.0.1.3680043.10.1137.32.2", &[&inner, &inner]);
        let room_for_one = Nesting {
            kept: MAX_NESTED_FILE_BYTES - inner.len(),
            ..Nesting::default()
        };
        let (inspection, _) = inspect_nested(&holder, Budget::default(), room_for_one);
        assert_eq!(inspection.nested_files.len(), 1);
        assert_eq!(inspection.nested_files[0].bytes, inner);
        assert_eq!(
            inspection.nested_files[0].place,
            "in element (0009,1010) (OB)"
        );
        let warned = warnings_naming(&inspection, "MAX_NESTED_FILE_BYTES");
        assert_eq!(warned.len(), 1, "{:#?}", inspection.observations);
        assert!(warned[0].contains("(0009,1011)"), "{}", warned[0]);

        let whole = inspect(&holder);
        assert_eq!(whole.nested_files.len(), 2);
        assert!(warnings_naming(&whole, "MAX_NESTED_FILE_BYTES").is_empty());
    }

    /// Review r30-screen (issue 10), of r29-screen2's budget stop: once a file's search
    /// budget is spent, no nested DICOM file is read (each would repeat that the search
    /// stopped, at its own cost): one warning naming the limit, however many are held,
    /// and none kept for the rules.
    #[test]
    fn a_spent_budget_reads_no_nested_file_and_says_so_once() {
        let inner = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.33.1")
            .without_pixels()
            .build();
        let files = vec![&inner[..]; 40];
        let holder = holding("1.2.826.0.1.3680043.10.1137.33.2", &files);
        let mut spent = Budget::default();
        while spent.charge(0) {}
        let (inspection, _) = inspect_nested(&holder, spent, Nesting::default());
        let warned = warnings_naming(&inspection, "MAX_CANDIDATES_PER_FILE");
        assert_eq!(warned.len(), 1, "{:#?}", inspection.observations);
        assert!(inspection.nested_files.is_empty());
        assert_eq!(inspect(&holder).nested_files.len(), 40);
    }
}
