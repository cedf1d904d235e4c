//! Read-only inspection of DICOM files for content that should not be there.
//!
//! [`inspect`] takes the bytes of one file and reports what a DICOM file must not carry:
//! an executable or active-content header in the 128-byte preamble (CVE-2019-11687,
//! classified per PS3.10 §7.5), executables, archives and active PDFs hidden in data
//! elements or appended to the file, and a data set that cannot be read to its end. It
//! also returns what later layers need: the transfer syntax, the SOP Instance UID, where
//! the Pixel Data is, and the encapsulated documents (for YARA rules).
//!
//! The data set is walked with dicom-rs (element boundaries, VRs, transfer syntaxes); the
//! preamble and the File Meta group are read here, with checked lengths.
//!
//! Invariants: this crate never opens a file (it takes `&[u8]`; `clippy.toml` forbids
//! file APIs); it never panics on any input (a fuzz target in `fuzz/` holds it to that);
//! every length taken from the input is checked before use, and every amount of work an
//! input can ask for is bounded by a named constant.

mod archive;
mod budget;
mod carriers;
mod dataset;
pub mod dicomdir;
mod embedded;
mod format;
pub mod fuzzing;
mod inspect;
pub mod iso;
mod lenient;
mod literals;
mod markup;
mod meta;
mod pairs;
mod pdf;
mod pixel_form;
mod postscript;
mod powershell;
mod preamble;
mod python;
mod readers;
mod sh;
mod shell;
mod text;

pub use archive::{
    GZIP_MEMBER_NAMING_BYTES, MAX_ARCHIVE_DEPTH, MAX_ARCHIVE_INFLATED_BYTES, MAX_ARCHIVE_MEMBERS,
    Opened as ArchiveOpened, open as open_archive,
};
pub use budget::{
    Budget, CLOCK_READ_EVERY, Clock, INSPECTION_DEADLINE, MAX_CANDIDATES_PER_FILE,
    MAX_PARSED_BYTES_PER_FILE,
};
pub use carriers::{MAX_CAB_FILES_READ, MAX_CAB_NAME_BYTES};
pub use dataset::{
    DESCRIPTION_TAGS, DESCRIPTION_VALUES, DETAIL_VALUES, DataSetSummary, IDENTITY_TAGS,
    IDENTITY_VALUES, LargestValue, MAX_BINARY_VALUES_NOTED, MAX_SEQUENCE_DEPTH, MODALITY_VALUES,
    PIXEL_FORM_TAGS, PIXEL_FORM_VALUES, PLACE_VALUES,
};
pub use embedded::{
    Hidden, MAX_ARCHIVE_WARNINGS_PER_SEARCH, MAX_NESTED_ZIP_BYTES, MAX_ZIP_DEPTH,
    MAX_ZIP_ENTRIES_READ, ZIP_ENTRY_HEAD_BYTES, active_pdf, pdf_findings, search as search_hidden,
    trailing_zip,
};
pub use format::{
    DISTANT_PE_HEADER_BYTES, DistantPe, DistantPes, Executable, Format, MAX_DISTANT_PE_HEADERS,
    MAX_E_LFANEW, MAX_EXECUTABLE_PARSE_BYTES, MAX_FAT_ARCHES, MAX_MACHO_LOAD_COMMANDS,
    PDF_HEADER_WINDOW, PeHeaders, confirm_distant_pe, confirm_executable, distant_pe_headers,
    pe_headers, sniff,
};
pub use inspect::{
    BinaryValues, Container, Document, HEAD_LEN, Inspection, Layout, MAX_DOCUMENT_BYTES,
    MAX_DOCUMENTS, MAX_INFLATED_DATA_SET_BYTES, MAX_NESTED_DICOM_DEPTH, MAX_NESTED_FILE_BYTES,
    MAX_OBSERVATIONS, MAX_UID_LEN, MIN_MISFORMED_VALUES, NESTED_FILES_NAMED, NativePixels,
    NestedFile, Observation, PREFIX_IDENTITY_BYTES, PREFIX_SIZE_SLACK, Prefix, TextValues,
    binary_values, binary_values_after, garbled_text, inspect, inspect_first_window, inspect_head,
    inspect_window, inspect_within, is_native, is_native_little_endian, largest_value, layout,
    named_as_dicom, native_pixels_in_head, prefix_of, reads_transfer_syntax,
};
pub use markup::{
    MAX_MARKUP_CANDIDATES, MAX_PLUGIN_PARAMS, MAX_STYLE_BYTES, MAX_STYLE_SHEET_BYTES_PER_FILE,
    MAX_TAG_BYTES, MAX_TAG_TRIES, Markup, find_active_markup, find_markup,
};
pub use meta::MAX_META_GROUP_LEN;
pub use pdf::{
    Attachment as PdfAttachment, MAX_PDF_ATTACHMENT_DEPTH, MAX_PDF_ENCRYPTION_VERSIONS,
    MAX_PDF_FILTERS, MAX_PDF_FINDINGS, MAX_PDF_INFLATED_BYTES, MAX_PDF_NESTING_DEPTH,
    MAX_PDF_OBJECTS, MAX_PDF_PARSED_BYTES, MAX_PDF_STREAMS, MAX_PDF_XREF_ENTRIES, PdfFinding,
    Report as PdfReport, URI_TARGETS_NAMED, Work as PdfWork, inspect as inspect_pdf,
    inspect_until as inspect_pdf_until,
};
pub use pixel_form::{MAX_PHOTOMETRIC_BYTES, PixelForm};
pub use postscript::{Action as PostScriptAction, find_postscript_action};
pub use preamble::{PREAMBLE_LEN, Preamble, classify as classify_preamble};
pub use python::{
    PYTHON_MAX_BRACKETS, PYTHON_MAX_INDENT, Verdict as PythonVerdict, python_program,
};
pub use sh::{
    ENVIRONMENT_PROGRAMS, MAX_SHELL_CASE_NESTING, MAX_SHELL_HEREDOCS, MAX_SHELL_LINE_CONTINUATIONS,
    MAX_SHELL_SUBSTITUTION_NESTING, MAX_SHELL_VALUED_NAMES, MAX_SHELL_WORD_NESTING,
};
pub use shell::{
    Command, EX_MODELLED_PER_FILE_BYTE, MAX_BATCH_NAME_CONTINUATIONS, MAX_EX_MODELLED_BYTES,
    MAX_EX_MODIFIERS, MAX_EX_PATTERN_BYTES, MAX_EXPANDED_ARGUMENTS, MAX_VIM_EXECUTE_NESTING,
    MAX_VIM_LITERAL_ELEMENTS, MAX_VIM_REGISTER_NESTING, find_batch_command, find_ex_command,
    find_shell_command,
};
