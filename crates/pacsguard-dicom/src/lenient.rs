//! A second reading of a little-endian data set that dicom-parser 0.10 could not finish,
//! with the two leniencies DCMTK and pydicom have and real files need:
//!
//! - CP-246: an element of VR UN with an undefined length holds a sequence whose content
//!   is Implicit VR Little Endian, whatever the file's transfer syntax (a sequence that
//!   passed through a system that did not know its tag). dicom-parser keeps reading it
//!   as Explicit VR and fails (pydicom's `UN_sequence.dcm`, fo-dicom's GH177 files).
//! - A blank or unknown VR (`"  "`) in Explicit VR: DCMTK reads a 2-byte length after it,
//!   as for short VRs; dicom-parser takes it as UN with a 4-byte length and loses its way
//!   (fo-dicom's GH179 files).
//!
//! Everything else is as strict as the first reading: every length is checked against the
//! buffer, nesting is bounded by [`MAX_SEQUENCE_DEPTH`], and each step consumes at least
//! one element header, so the work is linear in the input.

use std::ops::Range;

use dicom_core::{Tag, VR};

use crate::dataset::{DataSetError, DataSetSummary, MAX_SEQUENCE_DEPTH, ValueRef};
use crate::format::{u16_le, u32_le};
use crate::meta::has_long_length;

const UNDEFINED: u32 = u32::MAX;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

/// Walks the data set at `start` (explicit or implicit VR little endian), calling `visit`
/// for values that start at or after `visit_from` (those before were visited by the
/// first reading).
pub(crate) fn walk<'a>(
    bytes: &'a [u8],
    start: usize,
    explicit: bool,
    visit_from: usize,
    visit: &mut dyn FnMut(ValueRef<'a>),
) -> Result<DataSetSummary, DataSetError> {
    let mut walker = Walker {
        bytes,
        visit_from,
        visit,
        summary: DataSetSummary::default(),
    };
    walker.elements(start, bytes.len(), explicit, 0, false)?;
    Ok(walker.summary)
}

struct Walker<'a, 'v> {
    bytes: &'a [u8],
    visit_from: usize,
    visit: &'v mut dyn FnMut(ValueRef<'a>),
    summary: DataSetSummary,
}

impl<'a> Walker<'a, '_> {
    /// Reads elements from `at` up to `end`; with `delimited`, up to an item delimiter
    /// (returning the position after it). Returns where reading stopped.
    fn elements(
        &mut self,
        mut at: usize,
        end: usize,
        explicit: bool,
        depth: usize,
        delimited: bool,
    ) -> Result<usize, DataSetError> {
        while at < end {
            let tag = self.tag(at)?;
            if tag == ITEM_END && delimited {
                return Ok(at + 8);
            }
            let (vr, length, header_len) = self.header(at, tag, explicit)?;
            let value_at = at + header_len;
            if length == UNDEFINED {
                at = if depth == 0 && tag == PIXEL_DATA {
                    self.fragments(value_at)?
                } else {
                    // CP-246: an undefined-length UN holds implicit VR little endian.
                    let inner_explicit = explicit && vr != VR::UN;
                    self.sequence(value_at, inner_explicit, depth + 1)?
                };
                continue;
            }
            let range = self.range(value_at, length, tag)?;
            if range.end > end {
                return Err(error(at, format!("{} runs past its item", show(tag))));
            }
            if explicit && vr == VR::SQ {
                let inner_end = range.end;
                self.items_within(range.start, inner_end, explicit, depth + 1)?;
            } else {
                self.value(tag, vr, range.clone(), depth, false);
            }
            at = range.end;
        }
        if delimited {
            return Err(error(at, "an item of undefined length has no delimiter"));
        }
        Ok(at)
    }

    /// Items of a sequence of undefined length, up to its delimiter.
    fn sequence(
        &mut self,
        mut at: usize,
        explicit: bool,
        depth: usize,
    ) -> Result<usize, DataSetError> {
        if depth > MAX_SEQUENCE_DEPTH {
            return Err(error(
                at,
                format!("sequences nested deeper than {MAX_SEQUENCE_DEPTH}"),
            ));
        }
        loop {
            let tag = self.tag(at)?;
            let length = u32_le(self.bytes, at + 4).ok_or_else(|| error(at, "truncated item"))?;
            match tag {
                SEQUENCE_END => return Ok(at + 8),
                ITEM if length == UNDEFINED => {
                    at = self.elements(at + 8, self.bytes.len(), explicit, depth, true)?;
                }
                ITEM => {
                    let range = self.range(at + 8, length, tag)?;
                    self.elements(range.start, range.end, explicit, depth, false)?;
                    at = range.end;
                }
                _ => {
                    return Err(error(
                        at,
                        format!("{} where an item was expected", show(tag)),
                    ));
                }
            }
        }
    }

    /// Items of a sequence of defined length, which ends at `end`.
    fn items_within(
        &mut self,
        mut at: usize,
        end: usize,
        explicit: bool,
        depth: usize,
    ) -> Result<(), DataSetError> {
        if depth > MAX_SEQUENCE_DEPTH {
            return Err(error(
                at,
                format!("sequences nested deeper than {MAX_SEQUENCE_DEPTH}"),
            ));
        }
        while at < end {
            let tag = self.tag(at)?;
            let length = u32_le(self.bytes, at + 4).ok_or_else(|| error(at, "truncated item"))?;
            if tag != ITEM {
                return Err(error(
                    at,
                    format!("{} where an item was expected", show(tag)),
                ));
            }
            if length == UNDEFINED {
                at = self.elements(at + 8, end, explicit, depth, true)?;
            } else {
                let range = self.range(at + 8, length, tag)?;
                self.elements(range.start, range.end, explicit, depth, false)?;
                at = range.end;
            }
        }
        Ok(())
    }

    /// Encapsulated pixel data: items of defined length up to the sequence delimiter.
    fn fragments(&mut self, mut at: usize) -> Result<usize, DataSetError> {
        let mut span: Option<Range<usize>> = None;
        loop {
            let tag = self.tag(at)?;
            let length = u32_le(self.bytes, at + 4).ok_or_else(|| error(at, "truncated item"))?;
            match tag {
                SEQUENCE_END => {
                    self.summary.pixel_data = span;
                    return Ok(at + 8);
                }
                ITEM if length != UNDEFINED => {
                    let range = self.range(at + 8, length, tag)?;
                    span = Some(span.map_or(range.clone(), |s| s.start..range.end));
                    self.value(PIXEL_DATA, VR::OB, range.clone(), 1, true);
                    at = range.end;
                }
                _ => return Err(error(at, "a pixel data fragment without a defined length")),
            }
        }
    }

    fn value(&mut self, tag: Tag, vr: VR, range: Range<usize>, depth: usize, fragment: bool) {
        self.summary.values += 1;
        if depth == 0 {
            self.summary.note_top_level(tag, self.bytes, range.clone());
        }
        if range.start >= self.visit_from {
            (self.visit)(ValueRef {
                tag,
                vr,
                offset: range.start,
                bytes: &self.bytes[range],
                fragment,
            });
        }
    }

    fn tag(&self, at: usize) -> Result<Tag, DataSetError> {
        match (u16_le(self.bytes, at), u16_le(self.bytes, at + 2)) {
            (Some(group), Some(element)) => Ok(Tag(group, element)),
            _ => Err(error(at, "the data set ends inside an element tag")),
        }
    }

    /// The VR, length and header size of the element at `at`.
    fn header(
        &self,
        at: usize,
        tag: Tag,
        explicit: bool,
    ) -> Result<(VR, u32, usize), DataSetError> {
        let truncated = || error(at, format!("{} has a truncated header", show(tag)));
        if !explicit {
            let length = u32_le(self.bytes, at + 4).ok_or_else(truncated)?;
            return Ok((VR::UN, length, 8));
        }
        let code: [u8; 2] = self
            .bytes
            .get(at + 4..at + 6)
            .and_then(|vr| vr.try_into().ok())
            .ok_or_else(truncated)?;
        match VR::from_binary(code) {
            Some(vr) if has_long_length(code) => {
                let length = u32_le(self.bytes, at + 8).ok_or_else(truncated)?;
                Ok((vr, length, 12))
            }
            Some(vr) => {
                let length = u16_le(self.bytes, at + 6).ok_or_else(truncated)?;
                Ok((vr, u32::from(length), 8))
            }
            // DCMTK: an unknown VR is followed by a 2-byte length.
            None => {
                let length = u16_le(self.bytes, at + 6).ok_or_else(truncated)?;
                Ok((VR::UN, u32::from(length), 8))
            }
        }
    }

    fn range(&self, at: usize, length: u32, tag: Tag) -> Result<Range<usize>, DataSetError> {
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| at.checked_add(length))
            .filter(|&end| end <= self.bytes.len());
        end.map(|end| at..end).ok_or_else(|| {
            error(
                at,
                format!(
                    "{} claims {length} bytes but the data ends after {}",
                    show(tag),
                    self.bytes.len().saturating_sub(at)
                ),
            )
        })
    }
}

fn show(tag: Tag) -> String {
    crate::dataset::show_tag(tag)
}

fn error(offset: usize, reason: impl Into<String>) -> DataSetError {
    DataSetError {
        offset,
        reason: reason.into(),
    }
}
