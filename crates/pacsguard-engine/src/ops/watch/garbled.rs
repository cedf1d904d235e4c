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

/// How much of a rewritten header is read for its text values: the identifying ones
/// (patient, study, series) lie in the first kilobytes of every instance. A header that
/// runs past it (a wiper can put a megabyte of private bytes before the values it
/// garbles) is not judged an edit: the finding says so and gains [`HEADER_UNREAD_FIELD`].
pub const HEADER_TEXT_BYTES: usize = 1 << 20;

/// The field a `header-changed` finding gains when its text values no longer read as text.
pub const GARBLED_TEXT_FIELD: &str = "garbled-text";

/// The field a `header-changed` finding gains when its header runs past
/// [`HEADER_TEXT_BYTES`]: what lies past it was not read, so it is no edit for certain.
pub const HEADER_UNREAD_FIELD: &str = "header-unread";

/// Looks at the text values of the header `finding` (a `header-changed` of the same
/// instance) reports at `path`, and says in the finding what was seen.
pub fn mark(finding: &mut Finding, path: &Path) {
    let Ok(head) = pacsguard_fs::read_head(path, HEADER_TEXT_BYTES) else {
        return;
    };
    let Some(text) = pacsguard_dicom::garbled_text(&head.bytes) else {
        return;
    };
    if let Some((group, element)) = text.first {
        finding.detail = format!(
            "{}; {} text value(s) no longer read as text (first ({group:04X},{element:04X})): overwritten or encrypted, not edited",
            finding.detail, text.garbled
        );
        finding.fields.push(GARBLED_TEXT_FIELD.to_string());
    } else if text.cut {
        finding.detail = format!(
            "{}; its text values read as text in the first {HEADER_TEXT_BYTES} bytes (HEADER_TEXT_BYTES), the rest of its header not read: not judged an edit",
            finding.detail
        );
        finding.fields.push(HEADER_UNREAD_FIELD.to_string());
    }
}
