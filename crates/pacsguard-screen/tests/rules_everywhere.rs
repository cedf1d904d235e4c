//! Issue 10, class 3: the built-in YARA rules apply to every form a DICOM data set comes
//! in, not only to Part 10 files: a bare data set (no preamble, no `DICM`) and a deflated
//! data set, whose text is compressed in the file (DCMTK's `dcmconv +td` deflates it, as
//! a modality or router would). The EICAR test string stands for a signature.
#![cfg(feature = "yara")]
#![allow(clippy::disallowed_methods)] // the test writes its fixture for dcmconv

use std::path::Path;
use std::process::Command;

use pacsguard_screen::{HashList, RuleSource, Rules, Screener};
use pacsguard_testkit::{self as kit, DicomBuilder};
use sha2::Digest as _;

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn rule_hits(bytes: &[u8]) -> Vec<String> {
    let rules = Rules::compile(&[RuleSource::builtin()]).expect("built-in rules");
    let screener = Screener::new(Some(rules), None);
    let mut worker = screener.worker();
    worker
        .screen(Path::new("/store/x.dcm"), bytes)
        .findings
        .into_iter()
        .map(|f| f.detail)
        .filter(|d| d.contains("pacsguard_eicar_test_file"))
        .collect()
}

#[test]
fn builtin_rules_apply_to_bare_and_deflated_data_sets() {
    let mut bare = Vec::new();
    kit::write_element(
        &mut bare,
        (0x0008, 0x0016),
        *b"UI",
        b"1.2.840.10008.5.1.4.1.1.2",
    );
    kit::write_element(
        &mut bare,
        (0x0008, 0x0018),
        *b"UI",
        b"1.2.826.0.1.3680043.10.1137.7",
    );
    kit::write_element(&mut bare, (0x0020, 0x4000), *b"LT", EICAR);
    assert!(!rule_hits(&bare).is_empty(), "bare data set");

    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.8")
        .without_pixels()
        .element(0x0020, 0x4000, *b"LT", EICAR)
        .build();
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, &plain).expect("write");
    let Ok(converted) = Command::new("dcmconv")
        .arg("+td")
        .arg(&input)
        .arg(&output)
        .output()
    else {
        eprintln!("dcmconv not installed (scripts/setup-test-deps.sh installs dcmtk): skipped");
        return;
    };
    assert!(converted.status.success(), "dcmconv");
    let deflated = std::fs::read(&output).expect("read");
    assert!(!deflated.windows(EICAR.len()).any(|w| w == EICAR));
    let hits = rule_hits(&deflated);
    assert!(
        hits.iter().any(|d| d.contains("in the inflated data set")),
        "{hits:?}"
    );
}

/// Issue 16, session 21: a screening given a caller's deadline (the gateway's
/// `limits.screening_deadline`) stops there: past it the rules are not applied, and
/// that is a `not-inspected` warning naming the deadline, never silence. Before it, the
/// same data set is screened as ever.
#[test]
fn rules_are_not_applied_past_the_callers_deadline_and_that_is_said() {
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.9")
        .without_pixels()
        .element(0x0020, 0x4000, *b"LT", EICAR)
        .build();
    let rules = Rules::compile(&[RuleSource::builtin()]).expect("built-in rules");
    let screener = Screener::new(Some(rules), None);
    let mut worker = screener.worker();
    let path = Path::new("dicom://CT1@127.0.0.1:1/PACS/x");
    let limit = "limits.screening_deadline (1 ms)".to_owned();
    let late = worker.screen_until(path, &plain, std::time::Instant::now(), limit.clone());
    let details: Vec<&str> = late.findings.iter().map(|f| f.detail.as_str()).collect();
    assert!(
        !details
            .iter()
            .any(|d| d.contains("pacsguard_eicar_test_file")),
        "{details:#?}"
    );
    assert!(
        late.findings.iter().any(|f| f.kind == pacsguard_events::FindingKind::NotInspected
            && f.detail
                == "YARA rules not applied: the inspection took longer than limits.screening_deadline (1 ms)"),
        "{details:#?}"
    );
    let in_time = worker.screen_until(
        path,
        &plain,
        std::time::Instant::now() + std::time::Duration::from_secs(600),
        limit,
    );
    assert!(
        in_time
            .findings
            .iter()
            .any(|f| f.detail.contains("pacsguard_eicar_test_file")),
        "{:#?}",
        in_time.findings
    );
}

/// Review r24-scan (issue 16): a rule slow on a data set ran for `SCAN_TIMEOUT` (30 s)
/// per buffer whatever the caller's deadline, holding a gateway screening thread long
/// after the sender was answered. The rules now get the time left before the deadline
/// (rounded down to yara-x's whole seconds, review r25-gateway: they stop by it), and
/// say so.
#[test]
fn a_slow_rule_stops_at_the_callers_deadline_and_that_is_said() {
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.10")
        .without_pixels()
        .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
        .element(0x0009, 0x1010, *b"OB", &[0u8; 64 * 1024])
        .build();
    let slow = RuleSource {
        origin: "slow.yar".to_owned(),
        text: "rule slow { condition: for any i in (0..filesize) : (for any j in (0..filesize) : (uint8(i) + uint8(j) == 1000)) }".to_owned(),
    };
    let rules = Rules::compile(&[slow]).expect("a slow rule compiles");
    let screener = Screener::new(Some(rules), None);
    let mut worker = screener.worker();
    let path = Path::new("dicom://CT1@127.0.0.1:1/PACS/x");
    let started = std::time::Instant::now();
    let screened = worker.screen_until(
        path,
        &plain,
        started + std::time::Duration::from_secs(3),
        "limits.screening_deadline (3000 ms)".to_owned(),
    );
    let took = started.elapsed();
    let details: Vec<&str> = screened
        .findings
        .iter()
        .map(|f| f.detail.as_str())
        .collect();
    assert!(
        details.contains(&"YARA rules stopped when the screening took longer than limits.screening_deadline (3000 ms); the rules were not fully applied"),
        "{details:#?}"
    );
    assert!(
        took < std::time::Duration::from_secs(15),
        "the rules ran {took:?}, past the deadline by far"
    );
}

/// `file` deflated by DCMTK's `dcmconv +td`, padded to an even length with a byte after
/// the deflate stream (which readers ignore) so that a value holds exactly it; `None`
/// when dcmtk is not installed.
fn deflated_by_dcmconv(file: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, file).expect("write");
    let Ok(converted) = Command::new("dcmconv")
        .arg("+td")
        .arg(&input)
        .arg(&output)
        .output()
    else {
        eprintln!("dcmconv not installed (scripts/setup-test-deps.sh installs dcmtk): skipped");
        return None;
    };
    assert!(converted.status.success(), "dcmconv");
    let mut deflated = std::fs::read(&output).expect("read");
    deflated.resize(deflated.len() + deflated.len() % 2, 0);
    Some(deflated)
}

/// What `dcmdump` prints of `file`, as a PACS user who took the file out of its value
/// opens it.
fn dumped_by_dcmdump(file: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("taken-out.dcm");
    std::fs::write(&input, file).expect("write");
    let dumped = Command::new("dcmdump")
        .arg(&input)
        .output()
        .expect("dcmdump");
    assert!(dumped.status.success(), "dcmdump");
    String::from_utf8_lossy(&dumped.stdout).into_owned()
}

/// A CT instance holding `file` in a private OB element, as an attacker stores it.
fn holding_in_a_private_element(sop_instance: &str, file: &[u8]) -> Vec<u8> {
    DicomBuilder::ct(sop_instance)
        .without_pixels()
        .element(0x0009, 0x0010, *b"LO", b"ACME 1.0")
        .element(0x0009, 0x1010, *b"OB", file)
        .build()
}

/// Review r30-screen (issue 10): a DICOM file held in a value of another is one a reader
/// opens once a tool takes the value out, and r29-screen2 inspects it as a file; but the
/// site's YARA rules and hash lists screened only the holder's bytes. A deflated instance
/// with a signature in a text element (compressed in the holder's bytes), or a DICOM file
/// whose SHA-256 is on the site's list, held in a private element, one or two files deep,
/// was exit 0. Now each nested file is screened by the rules (its bytes, its inflated
/// data set, its documents and their attachments) and by the hash lists (its bytes, its
/// documents and their attachments) as a file of its own, named by where it is held.
#[test]
fn the_site_rules_and_hash_lists_screen_a_dicom_file_held_in_a_value() {
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.30.1")
        .without_pixels()
        .element(0x0020, 0x4000, *b"LT", EICAR)
        .build();
    let Some(inner) = deflated_by_dcmconv(&plain) else {
        return;
    };
    assert!(memchr_free_find(&inner, EICAR).is_none());
    // Live: the file taken out is read by dcmdump, signature and all.
    assert!(dumped_by_dcmdump(&inner).contains("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"));
    let outer = holding_in_a_private_element("1.2.826.0.1.3680043.10.1137.30.2", &inner);
    let twice = holding_in_a_private_element("1.2.826.0.1.3680043.10.1137.30.3", &outer);

    let held = "of the DICOM file held in element (0009,1010) (OB)";
    let hits = rule_hits(&outer);
    assert!(
        hits.iter()
            .any(|d| d.contains(&format!("in the inflated data set {held}"))),
        "{hits:?}"
    );
    let hits = rule_hits(&twice);
    assert!(
        hits.iter()
            .any(|d| d.contains(&format!("in the inflated data set {held} {held}"))),
        "{hits:?}"
    );

    let digest: [u8; 32] = sha2::Sha256::digest(&inner).into();
    let listed = HashList::parse("site.txt", pacsguard_screen::hex(&digest).as_bytes())
        .expect("a hash list");
    let screener = Screener::new(None, Some(listed));
    let mut worker = screener.worker();
    for file in [&outer, &twice] {
        let matches: Vec<_> = worker
            .screen(Path::new("/store/x.dcm"), file)
            .findings
            .into_iter()
            .filter(|f| f.kind == pacsguard_events::FindingKind::HashlistMatch)
            .collect();
        assert_eq!(matches.len(), 1, "{matches:#?}");
        assert_eq!(matches[0].severity, pacsguard_events::Severity::Alert);
        assert!(
            matches[0]
                .detail
                .contains("of the DICOM file held in element (0009,1010) (OB)"),
            "{}",
            matches[0].detail
        );
        // The offset is the held file's, in the file screened.
        let at = matches[0].offset.expect("an offset") as usize;
        assert_eq!(&file[at..at + inner.len()], &inner[..]);
    }
}

fn memchr_free_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Review r30-screen (issue 10): `dcm2pdf` writes an instance's Encapsulated Document out
/// as a file of its own, and the hash lists checked the PDF's attachments but not the
/// document: a known-bad PDF stored as an encapsulated PDF matched nothing.
#[test]
fn the_hash_lists_check_an_encapsulated_document_as_a_file() {
    let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
    let file = DicomBuilder::encapsulated_pdf("1.2.826.0.1.3680043.10.1137.30.4", pdf).build();
    let digest: [u8; 32] = sha2::Sha256::digest(pdf).into();
    let listed = HashList::parse("site.txt", pacsguard_screen::hex(&digest).as_bytes())
        .expect("a hash list");
    let screener = Screener::new(None, Some(listed));
    let screened = screener.worker().screen(Path::new("/store/x.dcm"), &file);
    let matches: Vec<_> = screened
        .findings
        .iter()
        .filter(|f| f.kind == pacsguard_events::FindingKind::HashlistMatch)
        .collect();
    assert_eq!(matches.len(), 1, "{:#?}", screened.findings);
    assert!(
        matches[0]
            .detail
            .contains("of the encapsulated document (0042,0011) is on the list site.txt"),
        "{}",
        matches[0].detail
    );
    let at = matches[0].offset.expect("an offset") as usize;
    assert_eq!(&file[at..at + pdf.len()], &pdf[..]);
}
