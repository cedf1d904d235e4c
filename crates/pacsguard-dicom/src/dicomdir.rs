//! The DICOMDIR of a medium (PS3.10 §8, PS3.3 F.3): its directory records, what each
//! references, and whether the records' links hold together.
//!
//! A DICOMDIR is a Part 10 file in Explicit VR Little Endian (PS3.10 §8.6 allows no
//! other), so it is read here element by element with checked lengths, like the File
//! Meta group (`meta.rs`), rather than with dicom-rs: the records are linked by byte
//! offsets (of each record's Item tag from the start of the file), which only a reader
//! that knows where each item starts can check. A hostile medium can point a record's
//! "next" or "lower level" offset at itself or at nothing, which hangs or crashes the
//! naive reader of a PACS import station; such a DICOMDIR is refused here.
//!
//! Referenced File IDs are checked as PS3.10 §8.2 asks and a little more: relative,
//! at most [`MAX_FILE_ID_COMPONENTS`] components, each of letters, digits and `_` (and,
//! for real-world media, `.` and `-`), never `.` or `..`. What is checked here says
//! nothing about the referenced file itself: the caller reads and screens it.

use std::collections::{HashMap, HashSet};

use crate::format::{u16_le, u32_le};
use crate::meta::{has_long_length, uid_text};

/// The largest DICOMDIR read. A DVD of 100,000 instances has a DICOMDIR of ~40 MB.
pub const MAX_DICOMDIR_BYTES: u64 = 128 * 1024 * 1024;
/// Directory records read. PS3.10 media hold at most some 100,000 instances, each one
/// record plus its series, study and patient.
pub const MAX_DIRECTORY_RECORDS: usize = 500_000;
/// Components of one Referenced File ID (PS3.10 §8.2: at most 8 levels).
pub const MAX_FILE_ID_COMPONENTS: usize = 8;
/// Characters of one component (PS3.10 §8.2 allows 8; real media stay within this).
pub const MAX_FILE_ID_COMPONENT_LEN: usize = 64;
/// Sequences nested inside a record (icon images, SR content) followed to their end.
pub const MAX_DICOMDIR_NESTING: usize = 16;

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// One directory record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Offset of its Item tag from the start of the file: what other records point at.
    pub offset: usize,
    /// Directory Record Type (0004,1430): PATIENT, STUDY, SERIES, IMAGE, ...
    pub kind: String,
    /// Referenced File ID (0004,1500), as written (components separated by `\`).
    pub file_id: Option<String>,
    /// The checked components of the File ID, or why it was refused.
    pub components: Option<Result<Vec<String>, String>>,
    /// Referenced SOP Instance UID in File (0004,1511).
    pub sop_instance: Option<String>,
    /// Referenced SOP Class UID in File (0004,1510).
    pub sop_class: Option<String>,
    next: Option<usize>,
    lower: Option<usize>,
}

/// The records of a DICOMDIR whose links hold together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub records: Vec<Record>,
    /// Records in the sequence that no link reaches (a reader following links skips
    /// them); they are listed, and what they reference is still checked by the caller.
    pub unreachable: usize,
}

/// Why a DICOMDIR is refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at byte {offset})")]
pub struct DicomdirError {
    pub offset: usize,
    pub reason: String,
}

fn error(offset: usize, reason: impl Into<String>) -> DicomdirError {
    DicomdirError {
        offset,
        reason: reason.into(),
    }
}

/// Reads a DICOMDIR and checks its links: every offset points at a record, no record is
/// reached twice (no loop, no record shared by two parents).
pub fn read(bytes: &[u8]) -> Result<Directory, DicomdirError> {
    if bytes.get(128..132) != Some(b"DICM".as_slice()) {
        return Err(error(128, "no DICM prefix: not a Part 10 file"));
    }
    let meta = crate::meta::read(bytes, 132).map_err(|e| error(e.offset, e.reason))?;
    if meta.transfer_syntax.as_deref() != Some(EXPLICIT_VR_LE) {
        return Err(error(
            132,
            format!(
                "transfer syntax {:?}: a DICOMDIR is Explicit VR Little Endian",
                meta.transfer_syntax.unwrap_or_default()
            ),
        ));
    }
    if meta.media_storage_sop_class.as_deref() != Some(MEDIA_STORAGE_DIRECTORY) {
        return Err(error(
            132,
            "the Media Storage SOP Class is not Media Storage Directory Storage",
        ));
    }
    let mut reader = Elements {
        bytes,
        at: meta.end,
        end: bytes.len(),
    };
    let mut root = None;
    let mut records = Vec::new();
    while let Some(element) = reader.next_element()? {
        match element.tag {
            (0x0004, 0x1200) => root = Some(element.ul(bytes)?),
            (0x0004, 0x1220) => records = read_records(bytes, &element)?,
            _ => {}
        }
    }
    let root = root.ok_or_else(|| {
        error(
            meta.end,
            "no Offset of the First Directory Record of the Root Directory Entity (0004,1200)",
        )
    })?;
    let unreachable = check_links(&records, root)?;
    Ok(Directory {
        records,
        unreachable,
    })
}

/// Follows the links from the root; returns how many records they never reach.
fn check_links(records: &[Record], root: Option<usize>) -> Result<usize, DicomdirError> {
    let by_offset: HashMap<usize, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.offset, i))
        .collect();
    let mut reached = HashSet::new();
    let mut pending: Vec<(Option<usize>, usize)> = vec![(root, 0)];
    while let Some((first, from)) = pending.pop() {
        let mut link = first;
        while let Some(offset) = link {
            let Some(&index) = by_offset.get(&offset) else {
                return Err(error(
                    from,
                    format!(
                        "a directory record link points at byte {offset}, where no record starts"
                    ),
                ));
            };
            if !reached.insert(index) {
                return Err(error(
                    offset,
                    "the directory record here is reached twice by the records' links (a loop)",
                ));
            }
            let record = &records[index];
            if record.lower.is_some() {
                pending.push((record.lower, offset));
            }
            link = record.next;
        }
    }
    Ok(records.len() - reached.len())
}

fn read_records(bytes: &[u8], sequence: &Element) -> Result<Vec<Record>, DicomdirError> {
    let mut records = Vec::new();
    let mut items = Items::new(bytes, sequence)?;
    while let Some((offset, body)) = items.next_item()? {
        if records.len() == MAX_DIRECTORY_RECORDS {
            return Err(error(
                offset,
                format!("more than {MAX_DIRECTORY_RECORDS} directory records: not read further"),
            ));
        }
        let mut record = Record {
            offset,
            ..Record::default()
        };
        let mut inner = Elements {
            bytes,
            at: body.0,
            end: body.1,
        };
        let text = |e: &Element| uid_text(&bytes[e.value.0..e.value.1]);
        while let Some(element) = inner.next_element()? {
            match element.tag {
                (0x0004, 0x1400) => record.next = element.ul(bytes)?,
                (0x0004, 0x1420) => record.lower = element.ul(bytes)?,
                (0x0004, 0x1430) => record.kind = text(&element),
                (0x0004, 0x1500) => {
                    let id = text(&element);
                    record.components = Some(file_id_components(&id));
                    record.file_id = Some(id);
                }
                (0x0004, 0x1510) => record.sop_class = Some(text(&element)),
                (0x0004, 0x1511) => record.sop_instance = Some(text(&element)),
                _ => {}
            }
        }
        records.push(record);
    }
    Ok(records)
}

/// The components of a Referenced File ID, or why it cannot name a file on the medium.
pub fn file_id_components(id: &str) -> Result<Vec<String>, String> {
    let components: Vec<&str> = id.split('\\').map(|c| c.trim_end_matches(' ')).collect();
    if components.len() > MAX_FILE_ID_COMPONENTS {
        return Err(format!(
            "{} components, more than the {MAX_FILE_ID_COMPONENTS} PS3.10 allows",
            components.len()
        ));
    }
    for component in &components {
        if component.is_empty() {
            return Err("an empty component (an absolute or doubled separator)".to_owned());
        }
        if component.chars().all(|c| c == '.') {
            return Err(format!(
                "a component {component:?} that leaves its directory"
            ));
        }
        if component.len() > MAX_FILE_ID_COMPONENT_LEN {
            return Err(format!(
                "a component of {} characters, more than {MAX_FILE_ID_COMPONENT_LEN}",
                component.len()
            ));
        }
        if let Some(bad) = component
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "the character {bad:?}, which PS3.10 does not allow in a file ID"
            ));
        }
    }
    Ok(components.into_iter().map(str::to_owned).collect())
}

/// One element's header, read in place: tag, where its value lies, whether its length
/// was undefined (a sequence read item by item).
struct Element {
    tag: (u16, u16),
    vr: [u8; 2],
    /// The value's start and end (for an undefined length, the end of the delimiter).
    value: (usize, usize),
    undefined: bool,
}

impl Element {
    fn ul(&self, bytes: &[u8]) -> Result<Option<usize>, DicomdirError> {
        if self.value.1 - self.value.0 != 4 {
            return Err(error(
                self.value.0,
                format!(
                    "({:04X},{:04X}) is not one UL value",
                    self.tag.0, self.tag.1
                ),
            ));
        }
        let value = u32_le(bytes, self.value.0).unwrap_or(0);
        // Zero means "no such record" (PS3.3 F.3.2.2).
        Ok((value != 0).then_some(value as usize))
    }
}

/// The elements between `at` and `end`, Explicit VR Little Endian.
struct Elements<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
}

impl Elements<'_> {
    fn next_element(&mut self) -> Result<Option<Element>, DicomdirError> {
        self.next_nested(0)
    }

    fn next_nested(&mut self, depth: usize) -> Result<Option<Element>, DicomdirError> {
        if self.at >= self.end {
            return Ok(None);
        }
        let at = self.at;
        let bytes = self.bytes;
        let truncated = || error(at, "the DICOMDIR ends inside an element header");
        let group = u16_le(bytes, at).ok_or_else(truncated)?;
        let number = u16_le(bytes, at + 2).ok_or_else(truncated)?;
        let vr: [u8; 2] = bytes
            .get(at + 4..at + 6)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(truncated)?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(error(
                at,
                format!("({group:04X},{number:04X}) has no explicit VR"),
            ));
        }
        let (length, value_at) = if has_long_length(vr) {
            (u32_le(bytes, at + 8).ok_or_else(truncated)?, at + 12)
        } else {
            (
                u32::from(u16_le(bytes, at + 6).ok_or_else(truncated)?),
                at + 8,
            )
        };
        let mut element = Element {
            tag: (group, number),
            vr,
            value: (value_at, value_at),
            undefined: length == u32::MAX,
        };
        if element.undefined {
            if &vr != b"SQ" && &vr != b"UN" {
                return Err(error(
                    at,
                    format!(
                        "({group:04X},{number:04X}) has an undefined length and is not a sequence"
                    ),
                ));
            }
            // Read the items to find the delimiter; what lies between is checked there.
            if depth >= MAX_DICOMDIR_NESTING {
                return Err(error(
                    at,
                    format!("sequences nested deeper than {MAX_DICOMDIR_NESTING}"),
                ));
            }
            let mut items = Items::new_undefined(bytes, value_at, self.end, depth + 1);
            while items.next_item()?.is_some() {}
            element.value = (value_at, items.at);
        } else {
            let end = value_at
                .checked_add(length as usize)
                .filter(|&end| end <= self.end)
                .ok_or_else(|| {
                    error(at, format!("({group:04X},{number:04X}) claims {length} bytes past the end of what holds it"))
                })?;
            element.value = (value_at, end);
        }
        self.at = element.value.1;
        Ok(Some(element))
    }
}

/// One item: the offset of its Item tag, and the range of its elements.
type Item = (usize, (usize, usize));

/// The items of a sequence: each item's offset and the range of its elements.
struct Items<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    /// The sequence ends at a delimitation item rather than at `end`.
    undefined: bool,
    depth: usize,
    done: bool,
}

impl<'a> Items<'a> {
    fn new(bytes: &'a [u8], sequence: &Element) -> Result<Items<'a>, DicomdirError> {
        if &sequence.vr != b"SQ" {
            return Err(error(
                sequence.value.0,
                "the Directory Record Sequence is not a sequence",
            ));
        }
        Ok(Items {
            bytes,
            at: sequence.value.0,
            end: sequence.value.1,
            undefined: sequence.undefined,
            depth: 1,
            done: false,
        })
    }

    fn new_undefined(bytes: &'a [u8], at: usize, end: usize, depth: usize) -> Items<'a> {
        Items {
            bytes,
            at,
            end,
            undefined: true,
            depth,
            done: false,
        }
    }

    fn next_item(&mut self) -> Result<Option<Item>, DicomdirError> {
        if self.done || (!self.undefined && self.at >= self.end) {
            return Ok(None);
        }
        let at = self.at;
        let bytes = self.bytes;
        let truncated = || error(at, "the DICOMDIR ends inside a sequence");
        let tag = (
            u16_le(bytes, at).ok_or_else(truncated)?,
            u16_le(bytes, at + 2).ok_or_else(truncated)?,
        );
        let length = u32_le(bytes, at + 4).ok_or_else(truncated)?;
        let body = at + 8;
        if body > self.end {
            return Err(truncated());
        }
        match tag {
            (0xFFFE, 0xE0DD) if self.undefined => {
                self.at = body;
                self.done = true;
                Ok(None)
            }
            (0xFFFE, 0xE000) if length == u32::MAX => {
                // An item of undefined length: its elements up to the item delimiter.
                let mut elements = Elements {
                    bytes,
                    at: body,
                    end: self.end,
                };
                loop {
                    if u16_le(bytes, elements.at) == Some(0xFFFE)
                        && u16_le(bytes, elements.at + 2) == Some(0xE00D)
                    {
                        let item_end = elements.at;
                        self.at = elements.at + 8;
                        if self.at > self.end {
                            return Err(truncated());
                        }
                        return Ok(Some((at, (body, item_end))));
                    }
                    if elements.next_nested(self.depth)?.is_none() {
                        return Err(error(at, "an item without its delimiter"));
                    }
                }
            }
            (0xFFFE, 0xE000) => {
                let item_end = body
                    .checked_add(length as usize)
                    .filter(|&e| e <= self.end)
                    .ok_or_else(|| {
                        error(
                            at,
                            format!("an item claims {length} bytes past the end of its sequence"),
                        )
                    })?;
                // Check the item's own elements (nested sequences included) hold together.
                let mut elements = Elements {
                    bytes,
                    at: body,
                    end: item_end,
                };
                while elements.next_nested(self.depth)?.is_some() {}
                self.at = item_end;
                Ok(Some((at, (body, item_end))))
            }
            (group, number) => Err(error(
                at,
                format!("({group:04X},{number:04X}) where a sequence item should start"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(group: u16, number: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut bytes = group.to_le_bytes().to_vec();
        bytes.extend_from_slice(&number.to_le_bytes());
        bytes.extend_from_slice(vr);
        if has_long_length(*vr) {
            bytes.extend_from_slice(&[0, 0]);
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        bytes.extend_from_slice(value);
        bytes
    }

    /// A DICOMDIR of `records` (each: next, lower, file ID), linked by record index.
    fn dicomdir(records: &[(Option<usize>, Option<usize>, Option<&str>)]) -> Vec<u8> {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend(element(2, 2, b"UI", b"1.2.840.10008.1.3.10"));
        bytes.extend(element(2, 0x10, b"UI", b"1.2.840.10008.1.2.1\0"));
        // Fixed-size items so that offsets are known before writing: 8 + 3 * 12 + 8 + id.
        let item = |next: u32, lower: u32, id: &str| {
            let mut body = element(4, 0x1400, b"UL", &next.to_le_bytes());
            body.extend(element(4, 0x1420, b"UL", &lower.to_le_bytes()));
            body.extend(element(4, 0x1430, b"CS", b"IMAGE "));
            body.extend(element(4, 0x1500, b"CS", id.as_bytes()));
            let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
            item.extend_from_slice(&(body.len() as u32).to_le_bytes());
            item.extend(body);
            item
        };
        let sizes: Vec<usize> = records
            .iter()
            .map(|r| item(0, 0, r.2.unwrap_or("")).len())
            .collect();
        let root_element_len = 12; // (0004,1200) UL
        let sequence_start = bytes.len() + root_element_len + 12;
        let offsets: Vec<usize> = sizes
            .iter()
            .scan(sequence_start, |at, size| {
                let here = *at;
                *at += size;
                Some(here)
            })
            .collect();
        let link = |i: Option<usize>| i.map_or(0, |i| offsets[i] as u32);
        let first = if records.is_empty() {
            0
        } else {
            offsets[0] as u32
        };
        bytes.extend(element(4, 0x1200, b"UL", &first.to_le_bytes()));
        let mut items = Vec::new();
        for r in records {
            items.extend(item(link(r.0), link(r.1), r.2.unwrap_or("")));
        }
        bytes.extend(element(4, 0x1220, b"SQ", &items));
        bytes
    }

    #[test]
    fn records_and_their_file_ids_are_read() {
        let bytes = dicomdir(&[
            (None, Some(1), None),
            (Some(2), None, Some("DICOM\\IM1 ")),
            (None, None, Some("DICOM\\IM2 ")),
        ]);
        let dir = read(&bytes).expect("dicomdir");
        assert_eq!(dir.records.len(), 3);
        assert_eq!(dir.unreachable, 0);
        assert_eq!(
            dir.records[2].components,
            Some(Ok(vec!["DICOM".to_owned(), "IM2".to_owned()]))
        );
    }

    #[test]
    fn a_loop_and_a_dangling_link_are_refused() {
        let looped = dicomdir(&[(Some(1), None, None), (Some(0), None, Some("A"))]);
        assert!(read(&looped).expect_err("loop").reason.contains("twice"));
        let lower_to_self = dicomdir(&[(None, Some(0), None)]);
        assert!(read(&lower_to_self).is_err());
        let mut dangling = dicomdir(&[(None, None, Some("A"))]);
        // Point the root offset one byte past the record.
        let at = dangling
            .windows(4)
            .position(|w| w == [4, 0, 0, 0x12])
            .expect("(0004,1200)")
            + 8;
        let value = u32_le(&dangling, at).expect("value") + 1;
        dangling[at..at + 4].copy_from_slice(&value.to_le_bytes());
        assert!(
            read(&dangling)
                .expect_err("dangling")
                .reason
                .contains("no record starts")
        );
    }

    #[test]
    fn file_ids_that_leave_the_medium_are_refused() {
        for bad in [
            "..\\ETC",
            "\\ABS",
            "A\\\\B",
            "A/B",
            "A\\.",
            "1\\2\\3\\4\\5\\6\\7\\8\\9",
        ] {
            assert!(file_id_components(bad).is_err(), "{bad}");
        }
        assert!(file_id_components("1\\2\\3\\4\\5\\6\\7\\8").is_ok());
        let long = "A".repeat(MAX_FILE_ID_COMPONENT_LEN);
        assert!(file_id_components(&long).is_ok());
        assert!(file_id_components(&format!("{long}A")).is_err());
    }

    /// A DICOMDIR without a root offset whose record sequence is `items`.
    fn with_items(items: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend(element(2, 2, b"UI", b"1.2.840.10008.1.3.10"));
        bytes.extend(element(2, 0x10, b"UI", b"1.2.840.10008.1.2.1\0"));
        bytes.extend(element(4, 0x1200, b"UL", &0u32.to_le_bytes()));
        bytes.extend(element(4, 0x1220, b"SQ", items));
        bytes
    }

    #[test]
    fn records_up_to_the_limit_are_read_and_one_more_is_refused() {
        let empty_item = [0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0];
        let at = with_items(&empty_item.repeat(MAX_DIRECTORY_RECORDS));
        let dir = read(&at).expect("at the limit");
        assert_eq!(dir.records.len(), MAX_DIRECTORY_RECORDS);
        assert_eq!(dir.unreachable, MAX_DIRECTORY_RECORDS);
        let over = with_items(&empty_item.repeat(MAX_DIRECTORY_RECORDS + 1));
        let error = read(&over).expect_err("over the limit");
        assert!(error.reason.contains("more than"), "{}", error.reason);
    }

    #[test]
    fn sequences_nested_to_the_limit_are_read_and_deeper_ones_refused() {
        // An item holding a sequence of undefined length holding an item ... `depth` deep.
        let nested = |depth: usize| {
            let mut inner = Vec::new();
            for _ in 0..depth {
                let mut sequence = vec![
                    0x88, 0x00, 0x00, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                ];
                sequence.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
                sequence.extend(inner);
                sequence.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
                sequence.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
                inner = sequence;
            }
            let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
            item.extend_from_slice(&(inner.len() as u32).to_le_bytes());
            item.extend(inner);
            read(&with_items(&item))
        };
        assert_eq!(
            nested(MAX_DICOMDIR_NESTING - 1)
                .expect("at the limit")
                .records
                .len(),
            1
        );
        let error = nested(MAX_DICOMDIR_NESTING).expect_err("over the limit");
        assert!(error.reason.contains("nested deeper"), "{}", error.reason);
    }

    #[test]
    fn truncated_and_forged_bytes_are_errors_not_panics() {
        let bytes = dicomdir(&[(None, None, Some("DICOM\\IM1"))]);
        for cut in 0..bytes.len() {
            let _ = read(&bytes[..cut]);
        }
        assert!(read(b"nothing").is_err());
    }
}
