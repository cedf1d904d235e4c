//! The File Meta Information group (0002,xxxx) of a Part 10 file, read with checked
//! lengths.
//!
//! The group is always Explicit VR Little Endian (PS3.10 §7.1). It is walked here rather
//! than with dicom-object's `FileMetaTable`, which reserves whatever an element's length
//! field claims before reading it (4 GiB for a forged length) and refuses files that lack
//! the group length element, which real files do.

use std::ops::Range;

use crate::format::{u16_le, u32_le};

/// The meta group of any real file is a few hundred bytes; a longer one is not read.
pub const MAX_META_GROUP_LEN: usize = 64 * 1024;

/// What the meta group says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    pub transfer_syntax: Option<String>,
    pub media_storage_sop_class: Option<String>,
    pub media_storage_sop_instance: Option<String>,
    /// Where the data set starts.
    pub end: usize,
}

/// Why the meta group cannot be read; `offset` is from the start of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError {
    pub offset: usize,
    pub reason: String,
}

/// Value representations with a 2-byte reserved field and a 4-byte length in explicit VR.
pub(crate) fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Reads the meta group that starts at `start` (just after `DICM`).
pub fn read(bytes: &[u8], start: usize) -> Result<FileMeta, MetaError> {
    let mut meta = FileMeta::default();
    let mut at = start;
    let limit = bytes.len().min(start + MAX_META_GROUP_LEN);
    loop {
        let Some(group) = u16_le(bytes, at) else {
            if at == bytes.len() {
                break; // a meta group and no data set: legal for an empty instance
            }
            return Err(error(at, "the file ends inside an element tag"));
        };
        if group != 0x0002 {
            break;
        }
        if at >= limit {
            return Err(error(
                at,
                format!("file meta group longer than {MAX_META_GROUP_LEN} bytes"),
            ));
        }
        let element = u16_le(bytes, at + 2).ok_or_else(|| error(at, "truncated tag"))?;
        let vr = bytes
            .get(at + 4..at + 6)
            .and_then(|vr| <[u8; 2]>::try_from(vr).ok())
            .ok_or_else(|| error(at, "truncated element header"))?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(error(
                at,
                format!("(0002,{element:04X}) has no explicit VR"),
            ));
        }
        let (length, value_at) = if has_long_length(vr) {
            (u32_le(bytes, at + 8), at + 12)
        } else {
            (u16_le(bytes, at + 6).map(u32::from), at + 8)
        };
        let length = length.ok_or_else(|| error(at, "truncated element header"))?;
        if length == u32::MAX {
            return Err(error(
                at,
                format!("(0002,{element:04X}) has an undefined length"),
            ));
        }
        let value = value_range(value_at, length, limit).ok_or_else(|| {
            error(
                at,
                format!("(0002,{element:04X}) claims {length} bytes past the end of the group"),
            )
        })?;
        let text = || Some(uid_text(&bytes[value.clone()]));
        match element {
            0x0002 => meta.media_storage_sop_class = text(),
            0x0003 => meta.media_storage_sop_instance = text(),
            0x0010 => meta.transfer_syntax = text(),
            _ => {}
        }
        at = value.end;
    }
    meta.end = at;
    Ok(meta)
}

fn value_range(value_at: usize, length: u32, limit: usize) -> Option<Range<usize>> {
    let end = value_at.checked_add(usize::try_from(length).ok()?)?;
    (end <= limit).then_some(value_at..end)
}

/// A UI value without its padding (a trailing NUL or space), lossily decoded.
pub(crate) fn uid_text(value: &[u8]) -> String {
    let trimmed = value
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(&value[..0], |last| &value[..=last]);
    String::from_utf8_lossy(trimmed).into_owned()
}

fn error(offset: usize, reason: impl Into<String>) -> MetaError {
    MetaError {
        offset,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut bytes = 0x0002u16.to_le_bytes().to_vec();
        bytes.extend_from_slice(&element.to_le_bytes());
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

    #[test]
    fn reads_the_transfer_syntax_without_a_group_length() {
        let mut bytes = element(0x0001, b"OB", &[0, 1]);
        bytes.extend(element(0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
        let end = bytes.len();
        bytes.extend_from_slice(&[0x08, 0, 0x18, 0]);
        let meta = read(&bytes, 0).expect("meta");
        assert_eq!(meta.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(meta.end, end);
    }

    #[test]
    fn a_forged_length_is_an_error_not_an_allocation() {
        let mut bytes = element(0x0010, b"UN", b"");
        bytes[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let err = read(&bytes, 0).expect_err("forged length");
        assert!(err.reason.contains("past the end"), "{}", err.reason);
    }

    #[test]
    fn a_group_at_the_limit_is_read_and_one_past_it_is_refused() {
        let filler = |len: usize| element(0x0100, b"OB", &vec![0u8; len - 12]);
        let mut bytes = filler(MAX_META_GROUP_LEN);
        bytes.extend_from_slice(&[0x08, 0, 0, 0]);
        assert_eq!(read(&bytes, 0).expect("at limit").end, MAX_META_GROUP_LEN);
        let mut bytes = filler(MAX_META_GROUP_LEN);
        bytes.extend(element(0x0010, b"UI", b"1.2"));
        assert!(read(&bytes, 0).is_err());
    }
}
