//! Walking a DICOM data set with dicom-rs, element by element, without copying values.
//!
//! dicom-parser's lazy reader tells us each element's tag, VR and where its value starts;
//! the value itself is looked at in place, as a slice of the caller's buffer, so that an
//! inspection of a 1 GB multi-frame image copies nothing. Element lengths come from the
//! file, so every value range is checked against the buffer before it is sliced.

use std::io::Cursor;
use std::ops::Range;

use dicom_core::{Tag, VR};
use dicom_encoding::transfer_syntax::{Endianness, TransferSyntax};
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;

use crate::meta::uid_text;

/// Sequences nested deeper than this are not followed. Real data sets nest a handful of
/// levels; each level costs the parser state, and a forged file nests one per 8 bytes.
pub const MAX_SEQUENCE_DEPTH: usize = 64;

pub(crate) const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);

/// One element value (or one fragment of encapsulated pixel data), in place.
#[derive(Clone, Copy, Debug)]
pub struct ValueRef<'a> {
    pub tag: Tag,
    pub vr: VR,
    /// Offset of the value in the buffer that was walked.
    pub offset: usize,
    pub bytes: &'a [u8],
    /// A fragment of encapsulated pixel data rather than an element value.
    pub fragment: bool,
}

/// What the walk learnt about the instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataSetSummary {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    /// The Pixel Data value (native), or the span of its fragments (encapsulated).
    pub pixel_data: Option<Range<usize>>,
    /// Elements and fragments read.
    pub values: usize,
    /// When the bytes end inside a value (a file still being written): where that value
    /// would end by its declared length.
    pub runs_to: Option<u64>,
    /// Where a top-level Pixel Data value of defined length starts and the length it
    /// declares, recorded before its value is read: known from a file's head even when
    /// the bytes end inside that value (a proof that reads the pixels in pieces).
    pub pixel_value_declared: Option<(u64, u64)>,
    /// The longest top-level value other than the Pixel Data, by the length it
    /// declares, recorded before its value is read (so known from a file's head even
    /// when the bytes end inside it): what a wrapper of ciphertext in a valid DICOM fills
    /// (review rv39 B3, see [`LargestValue`]).
    pub largest_value: Option<LargestValue>,
    /// The private or unknown binary values ([`LargestValue::private_or_unknown_binary`])
    /// at any depth, recorded before each is read: the [`MAX_BINARY_VALUES_NOTED`]
    /// longest, longest first. Review rv40b: ciphertext split over three private OB
    /// elements (each under half of the file) or put in one inside an item of a private
    /// sequence went unsampled, as only the longest top-level value was.
    pub binary_values: Vec<LargestValue>,
    /// How many such values were met, and the bytes they declare together (saturating),
    /// those not kept in [`Self::binary_values`] included.
    pub binary_count: usize,
    pub binary_declared: u64,
    /// Where the top-level values of [`IDENTITY_TAGS`] lie, in that order, their padding
    /// (trailing spaces and NULs) left out; `None` for one the data set does not hold.
    pub identity: [Option<Range<usize>>; IDENTITY_VALUES],
    /// Where the top-level values of [`PIXEL_FORM_TAGS`] lie, in that order (as read:
    /// padding and byte order are the reader's, [`crate::PixelForm`]); `None` for one
    /// the data set does not hold.
    pub form: [Option<Range<usize>>; PIXEL_FORM_VALUES],
    /// Where the top-level values of [`DESCRIPTION_TAGS`] lie, in that order, their
    /// padding left out; `None` for one the data set does not hold.
    pub description: [Option<Range<usize>>; DESCRIPTION_VALUES],
}

/// The private or unknown binary values a walk keeps ([`DataSetSummary::binary_values`]):
/// an attacker controls how many a file holds (a forged one, one every 12 bytes), so
/// only the longest are kept; the others still count in `binary_count` and
/// `binary_declared`, and a caller says when `binary_count` passed this.
pub const MAX_BINARY_VALUES_NOTED: usize = 16;

/// A top-level value of a data set: its tag, its VR as read (`UN` for an element an
/// implicit VR reader does not know), where its value starts in the file and the length
/// its header declares (the file may be shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargestValue {
    pub tag: Tag,
    pub vr: VR,
    pub start: u64,
    pub declared: u64,
}

impl LargestValue {
    /// Whether it is a private element (an odd group).
    pub fn is_private(&self) -> bool {
        self.tag.0 % 2 == 1
    }

    /// Whether it is a private or unknown (`UN`) element of bytes (OB, OW, UN): what
    /// no standard encoding of an image or document fills.
    pub fn private_or_unknown_binary(&self) -> bool {
        (self.is_private() || self.vr == VR::UN) && matches!(self.vr, VR::OB | VR::OW | VR::UN)
    }

    /// Its tag and VR as a finding says them: `(0099,1000) OB`.
    pub fn describe(&self) -> String {
        format!("{} {}", show_tag(self.tag), self.vr)
    }
}

/// How many values [`DESCRIPTION_TAGS`] names.
pub const DESCRIPTION_VALUES: usize = 4;

/// How many of the first [`DESCRIPTION_TAGS`] say what kind of image the instance is
/// (Modality); the rest say how it is shown.
pub const MODALITY_VALUES: usize = 1;

/// The elements that say what an instance is and how it is shown, beside whom it
/// belongs to ([`IDENTITY_TAGS`]): its Modality, then its Series Description and its
/// Window Center and Width (review r28-watch: a wiper rewriting them over a whole store,
/// pixels and identity kept, counted nothing). A modality rewritten files the image
/// under another kind (a CT hung as an MR, its Hounsfield presets gone); a description
/// or window rewritten hides what the series is or shows every image black. A
/// correction of a series description or its presets touches a series at a time.
pub const DESCRIPTION_TAGS: [Tag; DESCRIPTION_VALUES] = [
    Tag(0x0008, 0x0060),
    Tag(0x0008, 0x103E),
    Tag(0x0028, 0x1050),
    Tag(0x0028, 0x1051),
];

/// How many values [`PIXEL_FORM_TAGS`] names.
pub const PIXEL_FORM_VALUES: usize = 5;

/// The elements that say how the Pixel Data's bytes are to be read as an image:
/// Photometric Interpretation, Samples per Pixel, Bits Allocated, Rows and Columns
/// (review r27-watch: the comparison of decoded pixels read them from the header as
/// written, so an attacker who rewrote the pixels and wrote "RGB" escaped it; and an
/// image whose Rows and Columns were swapped, or whose MONOCHROME2 became MONOCHROME1,
/// is misread though every pixel byte is kept).
pub const PIXEL_FORM_TAGS: [Tag; PIXEL_FORM_VALUES] = [
    Tag(0x0028, 0x0004),
    Tag(0x0028, 0x0002),
    Tag(0x0028, 0x0100),
    Tag(0x0028, 0x0010),
    Tag(0x0028, 0x0011),
];

/// How many values [`IDENTITY_TAGS`] names.
pub const IDENTITY_VALUES: usize = 16;

/// How many of the first [`IDENTITY_TAGS`] place the instance in its study and series
/// (Study and Series Instance UID): what a patient merge never changes.
pub const PLACE_VALUES: usize = 2;

/// How many of the [`IDENTITY_TAGS`] after the place describe the patient and the study;
/// the rest say where the pixels lie and what they measure.
pub const DETAIL_VALUES: usize = 8;

/// The elements that say whom an instance belongs to and what its pixels are. The first
/// [`PLACE_VALUES`] place it: its study and its series (Study Instance UID, Series
/// Instance UID), by which a PACS files an image; a patient merge (IHE Patient
/// Information Reconciliation, HL7 A40) never changes them. The next [`DETAIL_VALUES`]
/// describe its patient and study: Patient ID, Patient's Name, Birth Date and Sex, and
/// the Study, Series, Acquisition and Content Dates, which a merge or a correction
/// changes for a study at a time. The rest are its geometry and calibration, text
/// values whatever the byte order: Image Position and Orientation (Patient), Pixel
/// Spacing, Slice Thickness, Rescale Intercept and Slope; no merge or correction
/// rewrites them in place, and an image read with others is misread (a distance, a
/// Hounsfield unit). A header wiper that keeps the SOP Instance UID and the Pixel Data
/// and writes well-formed values cuts the image off from its patient, or makes it lie,
/// by changing them.
pub const IDENTITY_TAGS: [Tag; IDENTITY_VALUES] = [
    Tag(0x0020, 0x000D),
    Tag(0x0020, 0x000E),
    Tag(0x0010, 0x0020),
    Tag(0x0010, 0x0010),
    Tag(0x0010, 0x0030),
    Tag(0x0010, 0x0040),
    Tag(0x0008, 0x0020),
    Tag(0x0008, 0x0021),
    Tag(0x0008, 0x0022),
    Tag(0x0008, 0x0023),
    Tag(0x0020, 0x0032),
    Tag(0x0020, 0x0037),
    Tag(0x0028, 0x0030),
    Tag(0x0018, 0x0050),
    Tag(0x0028, 0x1052),
    Tag(0x0028, 0x1053),
];

impl DataSetSummary {
    /// Counts a private or unknown binary value and keeps it if it is among the
    /// [`MAX_BINARY_VALUES_NOTED`] longest met so far.
    fn note_binary(&mut self, value: LargestValue) {
        self.binary_count = self.binary_count.saturating_add(1);
        self.binary_declared = self.binary_declared.saturating_add(value.declared);
        let at = self
            .binary_values
            .partition_point(|kept| kept.declared >= value.declared);
        if at < MAX_BINARY_VALUES_NOTED {
            self.binary_values.insert(at, value);
            self.binary_values.truncate(MAX_BINARY_VALUES_NOTED);
        }
    }

    /// Takes what the summary keeps of a top-level value at `range` of `bytes`: the one
    /// place both readers (dicom-parser's and the lenient one) learn the instance's facts.
    pub(crate) fn note_top_level(&mut self, tag: Tag, bytes: &[u8], range: Range<usize>) {
        match tag {
            PIXEL_DATA => self.pixel_data = Some(range),
            SOP_CLASS_UID => self.sop_class_uid = Some(uid_text(&bytes[range])),
            SOP_INSTANCE_UID => self.sop_instance_uid = Some(uid_text(&bytes[range])),
            _ => {
                if let Some(slot) = IDENTITY_TAGS.iter().position(|t| *t == tag) {
                    self.identity[slot] = Some(without_padding(bytes, range));
                } else if let Some(slot) = PIXEL_FORM_TAGS.iter().position(|t| *t == tag) {
                    self.form[slot] = Some(range);
                } else if let Some(slot) = DESCRIPTION_TAGS.iter().position(|t| *t == tag) {
                    self.description[slot] = Some(without_padding(bytes, range));
                }
            }
        }
    }
}

/// `range` without the trailing spaces and NULs that pad a value to an even length, nor
/// leading spaces (not significant in a Patient ID, PS3.5 table 6.2-1, and never in a
/// UID): a PACS that writes the same value padded otherwise changes no identity.
fn without_padding(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let value = bytes.get(range.clone()).unwrap_or_default();
    let end = value
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |last| last + 1);
    let start = value[..end].iter().take_while(|&&b| b == b' ').count();
    range.start + start..range.start + end
}

/// Why the data set could not be read to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSetError {
    /// The last position known to be good, from the start of the buffer.
    pub offset: usize,
    pub reason: String,
}

/// Walks the data set that starts at `start` in `bytes`, encoded in `ts`, calling `visit`
/// for every element value and pixel fragment. What was learnt before an error is kept.
pub fn walk<'a>(
    bytes: &'a [u8],
    start: usize,
    ts: &TransferSyntax,
    mut visit: impl FnMut(ValueRef<'a>),
) -> (DataSetSummary, Option<DataSetError>) {
    let mut summary = DataSetSummary::default();
    match walk_tokens(bytes, start, ts, Stop::AtEnd, &mut summary, &mut visit) {
        Ok(()) => (summary, None),
        Err(error) => match read_leniently(bytes, start, ts, error.offset, &mut visit) {
            Some(lenient) => (lenient, None),
            None => (summary, Some(error)),
        },
    }
}

/// The second reading (see [`crate::lenient`]) of a little-endian data set that
/// dicom-parser could not finish; `None` when it cannot finish either.
fn read_leniently<'a>(
    bytes: &'a [u8],
    start: usize,
    ts: &TransferSyntax,
    visit_from: usize,
    visit: &mut dyn FnMut(ValueRef<'a>),
) -> Option<DataSetSummary> {
    let little = matches!(ts.endianness(), Endianness::Little);
    if !little {
        return None;
    }
    let explicit = ts.uid() != IMPLICIT_VR_LE;
    crate::lenient::walk(bytes, start, explicit, visit_from, visit).ok()
}

const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";

/// Like [`walk`] without visiting values, stopping at a top-level native Pixel Data value
/// instead of reading through it: what a profile needs to hash header and pixels apart.
/// Whatever follows the Pixel Data (trailing padding, if anything) counts as header.
pub fn locate_pixel_data(
    bytes: &[u8],
    start: usize,
    ts: &TransferSyntax,
) -> Result<DataSetSummary, DataSetError> {
    let mut summary = DataSetSummary::default();
    match walk_tokens(
        bytes,
        start,
        ts,
        Stop::AtPixelData,
        &mut summary,
        &mut |_| {},
    ) {
        Ok(()) => Ok(summary),
        Err(error) => read_leniently(bytes, start, ts, usize::MAX, &mut |_| {}).ok_or(error),
    }
}

/// Reads the data set at `start` of `bytes` to its end or its first error, keeping in
/// `summary` what was learnt before it (the values' headers: [`DataSetSummary`]'s
/// `largest_value` and `pixel_value_declared`), without the lenient second reading.
pub(crate) fn walk_declared(
    bytes: &[u8],
    start: usize,
    ts: &TransferSyntax,
    summary: &mut DataSetSummary,
) -> Result<(), DataSetError> {
    walk_tokens(bytes, start, ts, Stop::AtEnd, summary, &mut |_| {})
}

/// The bytes of an element header at most (explicit VR with a 32-bit length).
const MAX_ELEMENT_HEADER: usize = 12;

/// The data set at `start` of a file still being written, read as far as its bytes go,
/// up to its Pixel Data: `Some` with what was read when every element is whole or the
/// bytes end inside the last one (its header, or its value: `runs_to` then says where
/// that value would end), `None` when the bytes do not read as a data set.
pub fn read_so_far(bytes: &[u8], start: usize, ts: &TransferSyntax) -> Option<DataSetSummary> {
    let mut summary = DataSetSummary::default();
    match walk_tokens(
        bytes,
        start,
        ts,
        Stop::AtPixelData,
        &mut summary,
        &mut |_| {},
    ) {
        Ok(()) => Some(summary),
        Err(_) if summary.runs_to.is_some() => Some(summary),
        Err(error) if error.offset.saturating_add(MAX_ELEMENT_HEADER) > bytes.len() => {
            summary.runs_to = Some(bytes.len() as u64);
            Some(summary)
        }
        Err(_) => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    AtEnd,
    AtPixelData,
}

fn walk_tokens<'a>(
    bytes: &'a [u8],
    start: usize,
    ts: &TransferSyntax,
    stop: Stop,
    summary: &mut DataSetSummary,
    visit: &mut impl FnMut(ValueRef<'a>),
) -> Result<(), DataSetError> {
    let mut cursor = Cursor::new(bytes);
    cursor.set_position(start as u64);
    let mut good = start;
    let mut reader = LazyDataSetReader::new_with_ts(cursor, ts)
        .map_err(|e| failure(start, "cannot start reading the data set", &e))?;
    let mut depth = 0usize;
    let mut pixel_sequence_depth: Option<usize> = None;
    let mut fragments: Option<Range<usize>> = None;
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| failure(good, "cannot read the data set", &e))?;
        match token {
            LazyDataToken::SequenceStart { .. } | LazyDataToken::ItemStart { .. } => {
                depth += 1;
                if depth > MAX_SEQUENCE_DEPTH {
                    return Err(DataSetError {
                        offset: good,
                        reason: format!("sequences nested deeper than {MAX_SEQUENCE_DEPTH}"),
                    });
                }
            }
            LazyDataToken::PixelSequenceStart => {
                depth += 1;
                if depth == 1 {
                    pixel_sequence_depth = Some(depth);
                    fragments = None;
                }
            }
            LazyDataToken::ItemEnd if depth < 2 => {
                // An item delimiter with no item open: at the top level, or right inside a
                // sequence. dicom-parser 0.10.1's lazy reader takes it, pops whatever it
                // has (a sequence, or nothing) and then panics on the next item header
                // ("item header should be read only inside an existing sequence"). An
                // item always sits inside a sequence, so a real item end comes at depth 2
                // or more; stop before asking the reader for another token.
                return Err(DataSetError {
                    offset: good,
                    reason: "an item delimiter outside any item".to_owned(),
                });
            }
            LazyDataToken::SequenceEnd | LazyDataToken::ItemEnd => {
                if pixel_sequence_depth == Some(depth) {
                    pixel_sequence_depth = None;
                    summary.pixel_data = fragments.take();
                }
                depth = depth.saturating_sub(1);
            }
            LazyDataToken::LazyValue { header, decoder } => {
                let position = decoder.position();
                let length = header.len.get().ok_or_else(|| DataSetError {
                    offset: good,
                    reason: format!("{} has an undefined length", show_tag(header.tag)),
                })?;
                let value = LargestValue {
                    tag: header.tag,
                    vr: header.vr,
                    start: position,
                    declared: u64::from(length),
                };
                if value.private_or_unknown_binary() {
                    summary.note_binary(value);
                }
                if depth == 0 && header.tag == PIXEL_DATA {
                    summary.pixel_value_declared = Some((position, u64::from(length)));
                } else if depth == 0
                    && summary
                        .largest_value
                        .is_none_or(|v| v.declared < u64::from(length))
                {
                    summary.largest_value = Some(value);
                }
                let range = value_range(bytes, position, length).ok_or_else(|| {
                    summary.runs_to = Some(position.saturating_add(u64::from(length)));
                    DataSetError {
                        offset: position_usize(position),
                        reason: format!(
                            "{} claims {length} bytes but the file ends after {}",
                            show_tag(header.tag),
                            bytes.len().saturating_sub(position_usize(position))
                        ),
                    }
                })?;
                if stop == Stop::AtPixelData && depth == 0 && header.tag == PIXEL_DATA {
                    summary.pixel_data = Some(range);
                    return Ok(());
                }
                decoder
                    .skip_bytes(length)
                    .map_err(|e| failure(range.start, "cannot skip a value", &e))?;
                good = range.end;
                summary.values += 1;
                if depth == 0 {
                    summary.note_top_level(header.tag, bytes, range.clone());
                }
                visit(ValueRef {
                    tag: header.tag,
                    vr: header.vr,
                    offset: range.start,
                    bytes: &bytes[range],
                    fragment: false,
                });
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                let position = decoder.position();
                let range = value_range(bytes, position, len).ok_or_else(|| {
                    summary.runs_to = Some(position.saturating_add(u64::from(len)));
                    DataSetError {
                        offset: position_usize(position),
                        reason: format!("a pixel data fragment claims {len} bytes past the end"),
                    }
                })?;
                decoder
                    .skip_bytes(len)
                    .map_err(|e| failure(range.start, "cannot skip a fragment", &e))?;
                good = range.end;
                summary.values += 1;
                if pixel_sequence_depth.is_some() {
                    fragments = Some(match fragments.take() {
                        Some(span) => span.start..range.end,
                        None => range.start..range.end,
                    });
                }
                visit(ValueRef {
                    tag: PIXEL_DATA,
                    vr: VR::OB,
                    offset: range.start,
                    bytes: &bytes[range],
                    fragment: true,
                });
            }
            _ => {}
        }
    }
    if pixel_sequence_depth.is_some() {
        return Err(DataSetError {
            offset: good,
            reason: "the encapsulated pixel data has no sequence delimiter".to_owned(),
        });
    }
    Ok(())
}

fn value_range(bytes: &[u8], position: u64, length: u32) -> Option<Range<usize>> {
    let start = usize::try_from(position).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    (end <= bytes.len()).then_some(start..end)
}

fn position_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

pub(crate) fn show_tag(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.0, tag.1)
}

/// The parser's message with its causes, so that "cannot read" says why.
fn failure(offset: usize, what: &str, error: &dyn std::error::Error) -> DataSetError {
    let mut reason = format!("{what}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        reason.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    DataSetError { offset, reason }
}

#[cfg(test)]
mod tests {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

    use super::*;

    /// Review r25-watch: an identity value loses its padding (trailing spaces and NULs,
    /// leading spaces) and nothing else: a space inside a Patient ID is kept, a value of
    /// spaces is empty (present, not absent).
    #[test]
    fn identity_values_lose_their_padding_and_nothing_else() {
        let bytes = b"  PAT 1  \0|1.2\0|    ";
        assert_eq!(&bytes[without_padding(bytes, 0..10)], b"PAT 1");
        assert_eq!(&bytes[without_padding(bytes, 11..15)], b"1.2");
        assert_eq!(without_padding(bytes, 16..20), 16..16);
    }

    fn walk_explicit_le(bytes: &[u8], start: usize) -> (DataSetSummary, Option<DataSetError>) {
        let ts = TransferSyntaxRegistry
            .get("1.2.840.10008.1.2.1")
            .expect("explicit VR little endian is built in");
        walk(bytes, start, ts, |_| {})
    }

    /// Found by `fuzz/` (target `inspect`), minimised: a bare File Meta group, then an item
    /// delimiter (FFFE,E00D) at the top level of the data set and an item (FFFE,E000).
    /// dicom-parser panicked on the item.
    #[test]
    fn a_stray_item_delimiter_at_the_top_level_is_an_error_not_a_panic() {
        let bytes = b"\x02\x00\x00\x00UL\x04\x00\xb0\x00\x6a\x00\
                      \xfe\xff\x0d\xe0\x00\x00\x00\x00\
                      \xfe\xff\x00\xe0\xff\xff\xff\x40";
        let (_, error) = walk_explicit_le(bytes, 12);
        let error = error.expect("a stray item delimiter is an error");
        assert!(error.reason.contains("item delimiter"), "{}", error.reason);
        assert_eq!(error.offset, 12);

        let inspection = crate::inspect(bytes);
        assert!(!inspection.complete);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.detail.contains("an item delimiter outside any item")),
            "{:?}",
            inspection.observations
        );
    }

    /// The same inside a sequence: the delimiter closes the sequence instead of an item,
    /// and the next item had nothing to belong to.
    #[test]
    fn a_stray_item_delimiter_right_inside_a_sequence_is_an_error_not_a_panic() {
        let mut bytes = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff".to_vec();
        bytes.extend_from_slice(b"\xfe\xff\x0d\xe0\x00\x00\x00\x00");
        bytes.extend_from_slice(b"\xfe\xff\x00\xe0\xff\xff\xff\xff");
        let (_, error) = walk_explicit_le(&bytes, 0);
        let error = error.expect("a stray item delimiter is an error");
        assert!(error.reason.contains("item delimiter"), "{}", error.reason);
    }

    /// Items closed by their delimiter, in a sequence closed by its own, are read through.
    #[test]
    fn delimited_items_in_a_delimited_sequence_are_read_to_the_end() {
        let mut bytes = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff".to_vec();
        for _ in 0..2 {
            bytes.extend_from_slice(b"\xfe\xff\x00\xe0\xff\xff\xff\xff");
            bytes.extend_from_slice(b"\x08\x00\x50\x11UI\x04\x001.2\0");
            bytes.extend_from_slice(b"\xfe\xff\x0d\xe0\x00\x00\x00\x00");
        }
        bytes.extend_from_slice(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00");
        bytes.extend_from_slice(b"\x08\x00\x18\x00UI\x04\x001.2\0");
        let (summary, error) = walk_explicit_le(&bytes, 0);
        assert_eq!(error, None);
        assert_eq!(summary.values, 3);
        assert_eq!(summary.sop_instance_uid.as_deref(), Some("1.2"));
    }
}
