//! DICOM-aware profiles: pixel tampering (CT-GAN), a header-only edit and an encrypted
//! instance are told apart; a renamed instance is recognised by its SOP Instance UID; a
//! new file in an append-only store is screened on arrival.

mod common;

use std::fs;
use std::path::Path;

use common::{Env, mtime, one, set_mtime};
use pacsguard_testkit::{self as kit, DicomBuilder};

/// An append-only store of three CT instances beside the harness's files.
fn store(env: &Env) {
    let series = env.path("ct");
    fs::create_dir_all(&series).expect("mkdir");
    for n in 1..=3 {
        let uid = format!("1.2.826.0.1.3680043.10.1137.7.{n}");
        fs::write(
            series.join(format!("{n}.dcm")),
            DicomBuilder::ct(&uid).build(),
        )
        .expect("write");
    }
    fs::write(series.join("real.dcm"), kit::pydicom_sample("CT_small.dcm")).expect("write");
    env.profile(&["--policy", "append-only"]);
}

/// Rewrites `path` with `edit` applied, keeping its size and restoring its mtime, as an
/// attacker covering their tracks would.
fn tamper(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let (sec, nsec) = mtime(path);
    let mut bytes = fs::read(path).expect("read");
    edit(&mut bytes);
    fs::write(path, &bytes).expect("write");
    set_mtime(path, sec, nsec);
}

fn position(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn pixel_tampering_header_edits_and_encryption_are_told_apart() {
    let env = Env::new();
    store(&env);
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:#?}");

    // CT-GAN: one pixel value changed, nothing else.
    tamper(&env.path("ct/1.dcm"), |b| {
        let last = b.len() - 2;
        b[last] ^= 0x40;
    });
    // A header-only edit: the patient's name.
    tamper(&env.path("ct/2.dcm"), |b| {
        let at = position(b, b"DOE^JANE");
        b[at..at + 8].copy_from_slice(b"ROE^JANE");
    });
    // Ransomware: everything after the preamble encrypted (XOR stands in for a cipher).
    tamper(&env.path("ct/3.dcm"), |b| {
        for byte in &mut b[128..] {
            *byte ^= 0x5A;
        }
    });
    // The same on a real file written by others: one pixel in the middle of its Pixel
    // Data (private elements follow it in this file, so its last byte is header).
    tamper(&env.path("ct/real.dcm"), |b| {
        let pixels = position(b, b"\xe0\x7f\x10\x00OW") + 12;
        b[pixels + 1000] ^= 1;
    });

    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "pixel-data-changed", "ct/1.dcm").severity,
        "alert"
    );
    assert_eq!(
        one(&findings, "header-changed", "ct/2.dcm").severity,
        "alert"
    );
    assert_eq!(
        one(&findings, "no-longer-dicom", "ct/3.dcm").severity,
        "alert"
    );
    assert_eq!(
        one(&findings, "pixel-data-changed", "ct/real.dcm").severity,
        "alert"
    );
    assert_eq!(findings.len(), 4, "{findings:#?}");
    // --fast sees the same (ctime moved).
    let (_, fast, _) = env.check(&["--fast"]);
    assert_eq!(fast, findings);
}

#[test]
fn a_renamed_and_edited_instance_is_one_move_and_one_edit() {
    let env = Env::new();
    store(&env);
    let from = env.path("ct/2.dcm");
    let to = env.path("ct/renamed.dcm");
    fs::rename(&from, &to).expect("rename");
    tamper(&to, |b| {
        let at = position(b, b"PG-0001");
        b[at..at + 7].copy_from_slice(b"PG-0002");
    });
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    let moved = one(&findings, "moved", "ct/renamed.dcm");
    assert_eq!(moved.from.as_deref(), Some("ct/2.dcm"));
    one(&findings, "header-changed", "ct/renamed.dcm");
    assert!(
        !findings
            .iter()
            .any(|f| f.kind == "removed" || f.kind == "added"),
        "{findings:#?}"
    );
}

#[test]
fn new_files_in_an_append_only_store_are_screened_on_arrival() {
    let env = Env::new();
    store(&env);
    let ct = kit::pydicom_sample("CT_small.dcm");
    fs::write(env.path("ct/clean-new.dcm"), &ct).expect("write");
    let polyglot = kit::plant_pe_cve_2019_11687(&ct, &kit::real_pe()).expect("polyglot");
    fs::write(env.path("ct/new.dcm"), polyglot).expect("write");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(one(&findings, "added", "ct/clean-new.dcm").severity, "info");
    assert_eq!(one(&findings, "added", "ct/new.dcm").severity, "info");
    assert_eq!(
        one(&findings, "preamble-executable", "ct/new.dcm").severity,
        "alert"
    );
    one(&findings, "embedded-executable", "ct/new.dcm");
    assert_eq!(findings.len(), 4, "{findings:#?}");
}

/// Review r32-screen: an arrival's screening kept only alerts and `not-inspected`
/// warnings, so the `active-content` warning of a bare runnable name in a binary value
/// (an alert until session 32) was dropped: `check` and `watch` said nothing of it.
#[test]
fn a_bare_runnable_name_in_a_binary_value_of_an_arrival_is_a_warning() {
    let env = Env::new();
    store(&env);
    let mut value = vec![0x80u8; 512];
    value[100..112].copy_from_slice(b"\r\nevil.exe\r\n");
    let arrival = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.32")
        .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
        .element(0x0009, 0x1010, *b"OB", &value)
        .build();
    fs::write(env.path("ct/bare-name.dcm"), arrival).expect("write");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    assert_eq!(
        one(&findings, "active-content", "ct/bare-name.dcm").severity,
        "warning"
    );
}

#[test]
fn an_exact_move_wins_over_an_edited_copy_with_the_same_uid() {
    let env = Env::new();
    store(&env);
    fs::create_dir_all(env.path("moved")).expect("mkdir");
    fs::rename(env.path("ct/1.dcm"), env.path("moved/1.dcm")).expect("rename");
    let mut copy = fs::read(env.path("moved/1.dcm")).expect("read");
    let at = position(&copy, b"DOE^JANE");
    copy[at..at + 8].copy_from_slice(b"ROE^JANE");
    fs::write(env.path("ct/0.dcm"), copy).expect("write");
    let (_, findings, _) = env.check(&[]);
    let moved = one(&findings, "moved", "moved/1.dcm");
    assert_eq!(moved.from.as_deref(), Some("ct/1.dcm"));
    one(&findings, "added", "ct/0.dcm");
    assert!(
        !findings.iter().any(|f| f.kind == "header-changed"),
        "{findings:#?}"
    );
}

/// Issue 11 (session 20): an instance written again with only its File Meta Information
/// different (another writer's Implementation Class UID, the same length) is
/// `file-meta-changed`, info; one whose group 0002 grew by an executable in Private
/// Information (0002,0102), more than MAX_FILE_META_CHANGE_BYTES, is `header-changed`,
/// the alert it was (`check` does not screen what changed; `watch` screens both).
#[test]
fn a_file_meta_only_difference_is_info_and_a_grown_file_meta_is_an_alert() {
    let env = Env::new();
    store(&env);
    tamper(&env.path("ct/1.dcm"), |b| {
        let from = b"1.2.826.0.1.3680043.10.1137\0";
        let at = position(b, from);
        b[at..at + from.len()].copy_from_slice(b"1.2.276.0.7230010.3.0.3.6.7\0");
    });
    tamper(&env.path("ct/2.dcm"), |b| {
        let length = u32::from_le_bytes(b[140..144].try_into().expect("4 bytes"));
        let end = 144 + length as usize;
        let mut element = Vec::new();
        kit::write_element(&mut element, (0x0002, 0x0102), *b"OB", &kit::real_elf());
        let grown = length + element.len() as u32;
        b[140..144].copy_from_slice(&grown.to_le_bytes());
        b.splice(end..end, element);
    });
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    assert_eq!(
        one(&findings, "file-meta-changed", "ct/1.dcm").severity,
        "info"
    );
    assert_eq!(
        one(&findings, "header-changed", "ct/2.dcm").severity,
        "alert"
    );
}
