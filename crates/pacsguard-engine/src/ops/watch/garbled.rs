//! A header rewritten under the same SOP Instance UID and transfer syntax, its Pixel
//! Data intact, is what an edit leaves (a patient's name corrected, patients merged by
//! the PACS) and counts towards no ransomware signal (see
//! [`super::ransomware::still_the_same_instance`]). It is what a wiper leaves too, that
//! overwrites the values of every element but those three with random bytes of their
//! lengths: the image survives, whose patient and study no one can tell any more. An
//! edit writes text; such a wiper does not. A header whose standard text values no
//! longer read as text (see [`pacsguard_dicom::garbled_text`]) is marked here, and counts.

use std::path::Path;

use pacsguard_events::Finding;

/// How much of a rewritten header is read first for its text values: the identifying
/// ones (patient, study, series) lie in the first kilobytes of every instance, and most
/// whole headers are far shorter.
pub const HEADER_TEXT_BYTES: usize = 1 << 20;

/// How much of a header that runs past [`HEADER_TEXT_BYTES`] is read (review r22): the
/// per-frame functional groups of a real multi-frame image (a segmentation of thousands
/// of frames, an enhanced CT or MR) run to megabytes, and a name corrected on twenty of
/// them was twenty headers not judged, counted as a wiper's, and `ransomware-suspected`.
/// Read once more this far, such a header is judged whole. A header longer still (a
/// wiper can put as many private bytes before the values it garbles) is not judged an
/// edit: the finding says so and gains [`HEADER_UNREAD_FIELD`].
pub const LONG_HEADER_TEXT_BYTES: usize = 64 << 20;

/// The field a `header-changed` finding gains when its text values no longer read as text.
pub const GARBLED_TEXT_FIELD: &str = "garbled-text";

/// The field a `header-changed` finding gains when its header runs past
/// [`LONG_HEADER_TEXT_BYTES`]: what lies past it was not read, so it is no edit for certain.
pub const HEADER_UNREAD_FIELD: &str = "header-unread";

/// Looks at the text values of the header `finding` (a `header-changed` of the same
/// instance) reports at `path`, and says in the finding what was seen.
pub fn mark(finding: &mut Finding, path: &Path) {
    mark_within(finding, path, HEADER_TEXT_BYTES, LONG_HEADER_TEXT_BYTES);
}

/// [`mark`], reading `first` bytes, then twice as many each time the header runs past
/// what was read, up to `most`.
fn mark_within(finding: &mut Finding, path: &Path, first: usize, most: usize) {
    let Some(mut text) = text_values(path, first) else {
        return;
    };
    let mut read = first;
    // A long header, all text so far: read more of it before saying anything, doubling
    // (a real header of 1.4 MB is judged after 2 MiB, not after 64 MiB of its frames;
    // all the reads together are at most twice the last). Gone meanwhile, it stays unread.
    while text.cut && text.first.is_none() && read < most {
        let next = read.saturating_mul(2).min(most);
        let Some(more) = text_values(path, next) else {
            break;
        };
        text = more;
        read = next;
    }
    if let Some((group, element)) = text.first {
        finding.detail = format!(
            "{}; {} text value(s) no longer read as text (first ({group:04X},{element:04X})): overwritten or encrypted, not edited",
            finding.detail, text.garbled
        );
        finding.fields.push(GARBLED_TEXT_FIELD.to_string());
    } else if text.cut {
        finding.detail = format!(
            "{}; its text values read as text in the first {read} bytes ({}), the rest of its header not read: not judged an edit",
            finding.detail,
            if read >= most {
                "LONG_HEADER_TEXT_BYTES"
            } else {
                "a longer read of it failed"
            }
        );
        finding.fields.push(HEADER_UNREAD_FIELD.to_string());
    }
}

/// What [`pacsguard_dicom::garbled_text`] finds in the first `len` bytes at `path`.
fn text_values(path: &Path, len: usize) -> Option<pacsguard_dicom::TextValues> {
    let head = pacsguard_fs::read_head(path, len).ok()?;
    pacsguard_dicom::garbled_text(&head.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::{FindingKind, Severity};
    use pacsguard_testkit::DicomBuilder;

    /// A small CT whose Patient's Name comes after 8 KiB of private bytes, the name
    /// random bytes when `wiped`.
    fn long_header(wiped: bool) -> Vec<u8> {
        let name: &[u8] = if wiped {
            b"\x9c\x01\xf3Q\x17\x88\x02z"
        } else {
            b"ROE^JOHN"
        };
        DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1")
            .element(0x0009, 0x1000, *b"OB", &[0; 8192])
            .element(0x0010, 0x0010, *b"PN", name)
            .build()
    }

    fn marked(bytes: &[u8], first: usize, most: usize) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.dcm");
        std::fs::write(&path, bytes).expect("write");
        let mut finding = Finding::new(
            path.clone(),
            FindingKind::HeaderChanged,
            Severity::Alert,
            "the header changed".to_string(),
        );
        mark_within(&mut finding, &path, first, most);
        finding.fields
    }

    /// Review r22: a header longer than the first look is read again, whole up to the
    /// second limit, and judged; past that limit it is said unread.
    #[test]
    fn a_long_header_is_judged_whole_up_to_the_limit_and_said_unread_past_it() {
        let (clean, wiped) = (long_header(false), long_header(true));
        // The first look alone (before r22) cannot judge either.
        assert_eq!(marked(&clean, 4096, 4096), [HEADER_UNREAD_FIELD]);
        assert_eq!(marked(&wiped, 4096, 4096), [HEADER_UNREAD_FIELD]);
        // Read again up to the second limit: the edit is an edit, the wipe garbled.
        assert!(marked(&clean, 4096, 65_536).is_empty());
        assert_eq!(marked(&wiped, 4096, 65_536), [GARBLED_TEXT_FIELD]);
        // Past the second limit: unread, whatever it holds.
        assert_eq!(marked(&clean, 1024, 4096), [HEADER_UNREAD_FIELD]);
        // A short header is read whole at once.
        let short = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.3.1").build();
        assert!(marked(&short, 4096, 4096).is_empty());
    }
}
