//! The two false alerts of issue 10 on real files: what DCMTK and pydicom read, PacsGuard
//! reads too, instead of a `malformed-dicom` warning (exit 1, someone paged). Each file is
//! built byte by byte and, where DCMTK is installed, `dcmdump` must read it as claimed.
#![allow(clippy::disallowed_methods)] // the tests write their fixtures for dcmdump

use std::process::Command;

use pacsguard_dicom::inspect;
use pacsguard_events::Severity;
use pacsguard_testkit::{DicomBuilder, write_element};

fn tag(out: &mut Vec<u8>, group: u16, element: u16) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
}

/// One Implicit VR Little Endian element.
fn implicit(out: &mut Vec<u8>, group: u16, element: u16, value: &[u8]) {
    tag(out, group, element);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// A CT header without pixels; its last element is (0028,0100), so what the test
/// appends with larger tags keeps the data set in order.
fn base() -> Vec<u8> {
    DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.10.1")
        .without_pixels()
        .build()
}

/// `dcmdump`'s reading of `bytes`, or `None` without DCMTK (scripts/setup-test-deps.sh
/// installs it).
fn dcmdump(bytes: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case.dcm");
    std::fs::write(&path, bytes).expect("write");
    let out = Command::new("dcmdump").arg(&path).output().ok()?;
    assert!(
        out.status.success(),
        "dcmdump refuses the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn assert_read_cleanly(bytes: &[u8]) {
    let inspection = inspect(bytes);
    assert!(inspection.complete, "{:?}", inspection.observations);
    assert!(
        inspection
            .observations
            .iter()
            .all(|o| o.severity == Severity::Info),
        "{:?}",
        inspection.observations
    );
}

/// CP-246: an undefined-length UN element holding a sequence, its items in Implicit VR.
#[test]
fn an_undefined_length_un_sequence_is_read_as_implicit_vr() {
    let mut file = base();
    tag(&mut file, 0x0040, 0x0260);
    file.extend_from_slice(b"UN\0\0\xff\xff\xff\xff");
    tag(&mut file, 0xFFFE, 0xE000);
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    implicit(&mut file, 0x0008, 0x0100, b"T-1234");
    implicit(&mut file, 0x0008, 0x0104, b"ABDOMEN ");
    tag(&mut file, 0xFFFE, 0xE00D);
    file.extend_from_slice(&0u32.to_le_bytes());
    tag(&mut file, 0xFFFE, 0xE0DD);
    file.extend_from_slice(&0u32.to_le_bytes());
    write_element(&mut file, (0x0040, 0x0280), *b"ST", b"after the sequence");
    if let Some(dump) = dcmdump(&file) {
        assert!(dump.contains("[ABDOMEN]"), "{dump}");
        assert!(dump.contains("[after the sequence]"), "{dump}");
    }
    assert_read_cleanly(&file);
}

/// A blank VR in Explicit VR: DCMTK reads a 2-byte length after it.
#[test]
fn a_blank_vr_takes_a_two_byte_length() {
    let mut file = base();
    tag(&mut file, 0x0032, 0x1060);
    file.extend_from_slice(b"  ");
    file.extend_from_slice(&8u16.to_le_bytes());
    file.extend_from_slice(b"ABDOMEN ");
    write_element(&mut file, (0x0040, 0x0254), *b"LO", b"after the blank VR");
    if let Some(dump) = dcmdump(&file) {
        assert!(dump.contains("(0032,1060) ??"), "{dump}");
        assert!(dump.contains("[after the blank VR]"), "{dump}");
    }
    assert_read_cleanly(&file);
}

/// The second reading is as strict as the first about everything else: a truncated
/// value is still reported.
#[test]
fn the_lenient_reading_still_reports_a_truncated_value() {
    let mut file = base();
    tag(&mut file, 0x0032, 0x1060);
    file.extend_from_slice(b"  ");
    file.extend_from_slice(&200u16.to_le_bytes());
    file.extend_from_slice(b"short");
    let inspection = inspect(&file);
    assert!(!inspection.complete);
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.severity == Severity::Warning),
        "{:?}",
        inspection.observations
    );
}
