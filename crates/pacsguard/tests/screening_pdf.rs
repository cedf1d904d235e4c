//! Encapsulated PDF instances through `pacsguard scan`, end to end: PDFs written by qpdf,
//! wrapped in DICOM by DCMTK's `pdf2dcm` (a real writer of Encapsulated PDF Storage) or by
//! the testkit, and screened by the real binary. An active PDF is an alert (exit 1); a
//! report with a benign attachment is info only (exit 0): the false alarm the product
//! promises not to raise.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Env, stderr, stdout};
use pacsguard_testkit::{self as kit, DicomBuilder};
use serde_json::Value;

/// Runs qpdf on `input`, writing `output`; qpdf's exit 0 or 3 (read with warnings).
fn qpdf(args_before: &[&str], input: &Path, args_after: &[&str], output: &Path) {
    let out = Command::new("qpdf")
        .args(args_before)
        .arg(input)
        .args(args_after)
        .arg(output)
        .output()
        .expect("qpdf (scripts/setup-test-deps.sh installs it)");
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "qpdf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PDF wrapped as an Encapsulated PDF instance: by `pdf2dcm` when DCMTK is there,
/// else by the testkit's builder.
fn encapsulate(env: &Env, pdf: &Path, dcm: &Path) {
    let made = Command::new("pdf2dcm")
        .arg(pdf)
        .arg(dcm)
        .output()
        .is_ok_and(|out| out.status.success());
    if !made {
        let bytes = fs::read(pdf).expect("pdf");
        fs::write(
            dcm,
            DicomBuilder::encapsulated_pdf("1.2.3.99", &bytes).build(),
        )
        .expect("write");
    }
    let _ = env;
}

fn scan(env: &Env, path: &Path) -> (i32, Vec<Value>) {
    let out = env.run(&["scan", "--json", path.to_str().expect("utf-8")]);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), findings)
}

fn has(findings: &[Value], kind: &str, severity: &str, words: &str) -> bool {
    findings.iter().any(|f| {
        f["kind"] == kind
            && f["severity"] == severity
            && f["detail"].as_str().is_some_and(|d| d.contains(words))
    })
}

#[test]
fn encapsulated_pdfs_are_screened_as_documents_end_to_end() {
    let env = Env::new();
    let dir = env.path("pdf");
    fs::create_dir_all(&dir).expect("mkdir");
    let plain = dir.join("plain.pdf");
    fs::write(&plain, kit::pdf("")).expect("write");

    // A clean report with a PDF/A-3 style XML attachment: info only, exit 0.
    let xml = dir.join("structured-report.xml");
    fs::write(
        &xml,
        b"<?xml version=\"1.0\"?><report><finding>none</finding></report>",
    )
    .expect("write");
    let benign = dir.join("benign.pdf");
    qpdf(
        &[],
        &plain,
        &["--add-attachment", xml.to_str().expect("utf-8"), "--"],
        &benign,
    );
    let benign_dcm = dir.join("benign.dcm");
    encapsulate(&env, &benign, &benign_dcm);
    let (code, findings) = scan(&env, &benign_dcm);
    assert_eq!(code, 0, "{findings:#?}");
    assert!(
        has(&findings, "embedded-file", "info", "structured-report.xml"),
        "{findings:#?}"
    );

    // The real PE launcher attached: an alert, exit 1.
    let exe = dir.join("viewer.exe");
    fs::write(&exe, kit::real_pe()).expect("write");
    let dropper = dir.join("dropper.pdf");
    qpdf(
        &[],
        &plain,
        &["--add-attachment", exe.to_str().expect("utf-8"), "--"],
        &dropper,
    );
    let dropper_dcm = dir.join("dropper.dcm");
    encapsulate(&env, &dropper, &dropper_dcm);
    let (code, findings) = scan(&env, &dropper_dcm);
    assert_eq!(code, 1, "{findings:#?}");
    assert!(
        has(&findings, "embedded-executable", "alert", "viewer.exe"),
        "{findings:#?}"
    );

    // JavaScript in an AES-256 document with an empty user password (object streams on).
    let js = dir.join("js.pdf");
    fs::write(
        &js,
        kit::pdf("/OpenAction << /S /JavaScript /JS (app.alert\\('aes'\\)) >>"),
    )
    .expect("write");
    let sealed = dir.join("sealed.pdf");
    qpdf(
        &[],
        &js,
        &[
            "--object-streams=generate",
            "--encrypt",
            "",
            "owner",
            "256",
            "--",
        ],
        &sealed,
    );
    let raw = fs::read(&sealed).expect("read");
    assert!(
        !raw.windows(9).any(|w| w == b"app.alert"),
        "the script is encrypted"
    );
    let sealed_dcm = dir.join("sealed.dcm");
    encapsulate(&env, &sealed, &sealed_dcm);
    let (code, findings) = scan(&env, &sealed_dcm);
    assert_eq!(code, 1, "{findings:#?}");
    assert!(
        has(&findings, "active-content", "alert", "app.alert('aes')"),
        "{findings:#?}"
    );
}

/// A file attached to the PDF is a file of its own for hash lists (and rules): a known-bad
/// attachment that looks like plain text is found by its SHA-256.
#[test]
fn hash_lists_apply_to_pdf_attachments() {
    use sha2::Digest as _;
    let env = Env::new();
    let dir = env.path("pdf");
    fs::create_dir_all(&dir).expect("mkdir");
    let plain = dir.join("plain.pdf");
    fs::write(&plain, kit::pdf("")).expect("write");
    let notes = dir.join("notes.txt");
    // Text no rule can call malicious: only its SHA-256 (a known-bad sample) gives it away.
    let payload = b"Quarterly dose report, draft 3: see attached spreadsheet for CT room 2.\n";
    fs::write(&notes, payload).expect("write");
    let attached = dir.join("attached.pdf");
    qpdf(
        &[],
        &plain,
        &["--add-attachment", notes.to_str().expect("utf-8"), "--"],
        &attached,
    );
    let dcm = dir.join("attached.dcm");
    encapsulate(&env, &attached, &dcm);
    let (code, findings) = scan(&env, &dcm);
    assert_eq!(code, 0, "benign-looking text: info only {findings:#?}");
    let digest: String = sha2::Sha256::digest(payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let list = env.dir.path().join("bad.txt");
    fs::write(&list, format!("{digest}\n")).expect("write");
    let out = env.run(&[
        "scan",
        "--json",
        "--hashlist",
        list.to_str().expect("utf-8"),
        dcm.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    assert!(
        has(
            &findings,
            "hashlist-match",
            "alert",
            "attached as \"notes.txt\""
        ),
        "{findings:#?}"
    );
}
