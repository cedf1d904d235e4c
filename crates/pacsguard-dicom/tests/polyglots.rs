//! Polyglots built from real executables the way CVE-2019-11687 files are built, and each
//! other format the preamble and the data set must not carry: all found, with the right
//! `format`, and nothing found where nothing is.

use pacsguard_dicom::{Container, Format, Inspection, Observation, Preamble, inspect};
use pacsguard_events::{FindingKind, Severity};
use pacsguard_testkit::{self as kit, DicomBuilder, Pixels};

fn alerts(inspection: &Inspection) -> Vec<&Observation> {
    inspection
        .observations
        .iter()
        .filter(|o| o.severity == Severity::Alert)
        .collect()
}

fn only_alert(inspection: &Inspection) -> &Observation {
    let alerts = alerts(inspection);
    assert_eq!(alerts.len(), 1, "{:#?}", inspection.observations);
    alerts[0]
}

#[test]
fn a_real_pe_planted_in_a_real_ct_is_found_in_the_preamble_and_in_its_element() {
    let ct = kit::pydicom_sample("CT_small.dcm");
    assert!(alerts(&inspect(&ct)).is_empty());
    let polyglot = kit::plant_pe_cve_2019_11687(&ct, &kit::real_pe()).expect("explicit VR file");
    let inspection = inspect(&polyglot);
    assert!(
        inspection.complete,
        "still a readable DICOM file: {inspection:#?}"
    );
    assert_eq!(inspection.container, Container::Part10);
    let preamble = inspection
        .observations
        .iter()
        .find(|o| o.kind == FindingKind::PreambleExecutable)
        .expect("preamble finding");
    assert_eq!(preamble.format, Some(Format::Pe));
    assert_eq!(preamble.severity, Severity::Alert);
    assert!(
        preamble
            .detail
            .contains("reaches a PE\\0\\0 signature with valid NT headers"),
        "{}",
        preamble.detail
    );
    let embedded = inspection
        .observations
        .iter()
        .find(|o| o.kind == FindingKind::EmbeddedExecutable)
        .expect("embedded finding");
    assert_eq!(embedded.format, Some(Format::Pe));
    assert!(
        embedded.detail.contains("(7FDF,1000)"),
        "{}",
        embedded.detail
    );
    // The preamble's e_lfanew leads to the PE headers inside the element.
    let lfanew = u32::from_le_bytes(polyglot[0x3C..0x40].try_into().expect("4 bytes")) as usize;
    assert_eq!(&polyglot[lfanew..lfanew + 4], b"PE\0\0");
}

#[test]
fn a_real_elf_is_found_in_the_preamble_and_in_an_element() {
    let elf = kit::real_elf();
    let in_preamble = DicomBuilder::ct("1.2.3.1").preamble(&elf).build();
    let observation = only_alert(&inspect(&in_preamble)).clone();
    assert_eq!(observation.kind, FindingKind::PreambleExecutable);
    assert_eq!(observation.format, Some(Format::Elf));

    let in_element = DicomBuilder::ct("1.2.3.2")
        .element(0x0029, 0x0010, *b"LO", b"ACME")
        .element(0x0029, 0x1010, *b"UN", &elf)
        .build();
    let observation = only_alert(&inspect(&in_element)).clone();
    assert_eq!(observation.kind, FindingKind::EmbeddedExecutable);
    assert_eq!(observation.format, Some(Format::Elf));
    assert!(
        observation.detail.contains("(0029,1010) (UN)"),
        "{}",
        observation.detail
    );
}

#[test]
fn every_preamble_format_is_named() {
    let mut thin_macho = vec![0xCF, 0xFA, 0xED, 0xFE, 0x07, 0, 0, 0x01];
    thin_macho.resize(32, 0);
    let cases: [(&[u8], Format); 14] = [
        (b"MZ\x90\0", Format::Pe),
        (b"\x7fELF\x02\x01\x01", Format::Elf),
        (&thin_macho, Format::MachO),
        (&[0xFE, 0xED, 0xFA, 0xCE], Format::MachO),
        (&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 2], Format::MachO),
        (b"#!/bin/sh\ncurl x|sh\n", Format::Script),
        (b"<html><script>alert(1)</script>", Format::Html),
        (b"<HTA:APPLICATION ID=x>", Format::Html),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='x()'>",
            Format::Svg,
        ),
        (b"<?xml version='1.0'?><x/>", Format::Xml),
        (b"%PDF-1.4\n", Format::Pdf),
        (b"PK\x03\x04\x14\0", Format::Zip),
        (b"Rar!\x1a\x07\x01\0", Format::Rar),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Format::Ole),
    ];
    for (head, format) in cases {
        let file = DicomBuilder::ct("1.2.3.3").preamble(head).build();
        let inspection = inspect(&file);
        let observation = only_alert(&inspection);
        assert_eq!(
            observation.kind,
            FindingKind::PreambleExecutable,
            "{head:?}"
        );
        assert_eq!(observation.format, Some(format), "{head:?}");
        assert!(inspection.complete);
    }
}

#[test]
fn vendor_text_and_stray_bytes_are_info_and_tiff_is_clean() {
    let vendor = DicomBuilder::ct("1.2.3.4")
        .preamble(b"SIEMENS MED SP DXS")
        .build();
    let inspection = inspect(&vendor);
    assert!(alerts(&inspection).is_empty());
    assert_eq!(inspection.observations.len(), 1);
    assert_eq!(
        inspection.observations[0].kind,
        FindingKind::PreambleNonstandard
    );
    assert_eq!(inspection.observations[0].severity, Severity::Info);

    let tiff = DicomBuilder::ct("1.2.3.5")
        .preamble(b"II*\0\xff\xff\xff\x7f")
        .build();
    let inspection = inspect(&tiff);
    assert_eq!(inspection.preamble, Some(Preamble::Tiff));
    assert!(
        inspection.observations.is_empty(),
        "{:?}",
        inspection.observations
    );
}

#[test]
fn a_zip_appended_behind_a_clean_preamble_is_found_from_its_end() {
    let mut file = DicomBuilder::ct("1.2.3.6").build();
    file.extend(kit::zip_with("payload.exe", b"MZ"));
    let observation = only_alert(&inspect(&file)).clone();
    assert_eq!(observation.kind, FindingKind::EmbeddedExecutable);
    assert_eq!(observation.format, Some(Format::Zip));
    assert!(
        observation.detail.contains("payload.exe"),
        "{}",
        observation.detail
    );
}

#[test]
fn a_jar_inside_a_private_element_is_one_finding() {
    let jar = kit::zip_with("META-INF/MANIFEST.MF", b"Main-Class: x\n");
    let file = DicomBuilder::ct("1.2.3.7")
        .element(0x0009, 0x0010, *b"LO", b"ACME")
        .element(0x0009, 0x1001, *b"OB", &jar)
        .build();
    let observation = only_alert(&inspect(&file)).clone();
    assert_eq!(observation.format, Some(Format::Zip));
    assert!(
        observation.detail.starts_with("JAR"),
        "{}",
        observation.detail
    );
}

#[test]
fn encapsulated_pdfs_alert_only_when_they_act() {
    // An attachment is screened as a file: a name tree of attachments is no alert by
    // itself (PDF/A-3 reports carry XML), an executable in it is.
    let listed =
        DicomBuilder::encapsulated_pdf("1.2.3.7", &kit::pdf("/Names << /EmbeddedFiles 3 0 R >>"))
            .build();
    assert!(alerts(&inspect(&listed)).is_empty());

    let clean = DicomBuilder::encapsulated_pdf("1.2.3.8", &kit::pdf("")).build();
    let inspection = inspect(&clean);
    assert!(
        inspection.observations.is_empty(),
        "{:?}",
        inspection.observations
    );
    assert_eq!(inspection.documents.len(), 1);

    for (extra, name) in [
        (
            "/OpenAction << /S /JavaScript /JS (app.alert(1)) >>",
            "JavaScript",
        ),
        ("/OpenAction << /S /Launch /F (cmd.exe) >>", "Launch"),
        ("/OpenAction << /S /J#61vaScript >>", "JavaScript"),
    ] {
        let file = DicomBuilder::encapsulated_pdf("1.2.3.9", &kit::pdf(extra)).build();
        let observation = only_alert(&inspect(&file)).clone();
        assert_eq!(observation.kind, FindingKind::ActiveContent, "{extra}");
        assert_eq!(observation.format, Some(Format::Pdf));
        assert!(observation.detail.contains(name), "{}", observation.detail);
        assert!(
            observation.detail.contains("(0042,0011)"),
            "{}",
            observation.detail
        );
    }
}

#[test]
fn executables_in_pixel_fragments_are_found_but_noise_is_not() {
    let mut noise = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    // Chance magic numbers too, as in real images.
    for at in (0..noise.len() - 8).step_by(4099) {
        noise[at..at + 2].copy_from_slice(b"MZ");
    }
    let file = DicomBuilder::ct("1.2.3.10")
        .pixels(Pixels::Encapsulated(vec![noise.clone()]))
        .build();
    let inspection = inspect(&file);
    assert!(inspection.complete);
    assert!(
        inspection.observations.is_empty(),
        "{:?}",
        inspection.observations
    );

    let file = DicomBuilder::ct("1.2.3.11")
        .pixels(Pixels::Encapsulated(vec![noise, kit::real_pe()]))
        .build();
    let observation = only_alert(&inspect(&file)).clone();
    assert!(
        observation.detail.contains("pixel data fragment"),
        "{}",
        observation.detail
    );
}

#[test]
fn breaking_the_data_set_on_purpose_does_not_hide_what_follows() {
    let mut file = DicomBuilder::ct("1.2.3.12")
        .element(0x0009, 0x1001, *b"OB", &kit::real_pe())
        .build();
    // Corrupt the length of the first data set element so the walk stops early.
    let at = file
        .windows(4)
        .position(|w| w == [0x08, 0x00, 0x16, 0x00])
        .expect("SOP class");
    file[at + 6..at + 8].copy_from_slice(&0xFFF0u16.to_le_bytes());
    let inspection = inspect(&file);
    assert!(!inspection.complete);
    let kinds: Vec<_> = inspection.observations.iter().map(|o| o.kind).collect();
    assert!(kinds.contains(&FindingKind::MalformedDicom), "{kinds:?}");
    assert!(
        kinds.contains(&FindingKind::EmbeddedExecutable),
        "{kinds:?}"
    );
}

#[test]
fn truncated_and_non_dicom_input_are_warnings_naming_the_offset() {
    let file = DicomBuilder::ct("1.2.3.13").build();
    let cut = &file[..file.len() - 100];
    let inspection = inspect(cut);
    let observation = &inspection.observations[0];
    assert_eq!(observation.kind, FindingKind::MalformedDicom);
    assert_eq!(observation.severity, Severity::Warning);
    assert!(observation.offset.is_some());
    assert!(
        observation.detail.contains("(7FE0,0010)"),
        "{}",
        observation.detail
    );

    for bytes in [&b""[..], b"hello world"] {
        let inspection = inspect(bytes);
        assert_eq!(inspection.container, Container::NotDicom);
        assert_eq!(inspection.observations[0].kind, FindingKind::NotDicom);
        assert_eq!(inspection.observations[0].severity, Severity::Warning);
    }
    // Not DICOM but a program: an alert with its format, not the lesser "not DICOM".
    let inspection = inspect(&kit::real_elf());
    assert_eq!(inspection.container, Container::NotDicom);
    assert_eq!(inspection.observations[0].kind, FindingKind::ExecutableFile);
    assert_eq!(inspection.observations[0].severity, Severity::Alert);
    assert_eq!(
        inspection.observations[0].format,
        Some(pacsguard_dicom::Format::Elf)
    );
}

#[test]
fn the_instance_and_its_pixel_data_are_located() {
    let file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.1.1.7").build();
    let inspection = inspect(&file);
    assert_eq!(
        inspection.sop_instance_uid.as_deref(),
        Some("1.2.826.0.1.3680043.10.1137.1.1.7")
    );
    let pixels = inspection.pixel_data.expect("pixel data");
    assert_eq!(pixels.end, file.len());
    assert_eq!(pixels.len(), 512);
}

#[test]
fn sequences_nested_past_the_limit_stop_the_walk() {
    let mut nested = Vec::new();
    for _ in 0..=pacsguard_dicom::MAX_SEQUENCE_DEPTH {
        nested.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0]);
        nested.extend_from_slice(&u32::MAX.to_le_bytes());
        nested.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        nested.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    let mut file = DicomBuilder::ct("1.2.3.14").without_pixels().build();
    file.extend_from_slice(&nested);
    let inspection = inspect(&file);
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.detail.contains("nested deeper")),
        "{:?}",
        inspection.observations
    );
}

#[test]
fn findings_past_the_observation_limit_are_counted_not_listed() {
    let elf = kit::real_elf();
    let mut builder = DicomBuilder::ct("1.2.3.15").element(0x0029, 0x0010, *b"LO", b"ACME");
    let planted = pacsguard_dicom::MAX_OBSERVATIONS + 8;
    for n in 0..planted {
        builder = builder.element(0x0029, 0x1000 + n as u16, *b"OB", &elf);
    }
    let inspection = inspect(&builder.build());
    assert_eq!(
        inspection.observations.len(),
        pacsguard_dicom::MAX_OBSERVATIONS + 1
    );
    let last = inspection.observations.last().expect("summary");
    assert_eq!(last.kind, FindingKind::NotInspected);
    assert!(
        last.detail.starts_with("at least 8 more finding(s)"),
        "{}",
        last.detail
    );
}

#[test]
fn uids_are_cut_at_the_dicom_maximum() {
    let long_uid = format!("1.2.{}", "3".repeat(200));
    let file = DicomBuilder::ct(&long_uid).build();
    let layout = pacsguard_dicom::layout(&file).expect("layout");
    assert_eq!(layout.instance_uid.len(), pacsguard_dicom::MAX_UID_LEN);
    let exact = format!("1.2.{}", "3".repeat(pacsguard_dicom::MAX_UID_LEN - 4));
    let layout = pacsguard_dicom::layout(&DicomBuilder::ct(&exact).build()).expect("layout");
    assert_eq!(layout.instance_uid, exact);
}

#[test]
fn documents_are_kept_up_to_their_limit() {
    let big = vec![b' '; pacsguard_dicom::MAX_DOCUMENT_BYTES + 2];
    let file = DicomBuilder::encapsulated_pdf("1.2.3.16", &big).build();
    assert!(inspect(&file).documents.is_empty());
    let file = DicomBuilder::encapsulated_pdf("1.2.3.17", &big[..1000]).build();
    assert_eq!(inspect(&file).documents.len(), 1);
}

/// Regressions from review: payloads where the walk cannot follow.
#[test]
fn executables_appended_behind_the_data_set_or_in_the_meta_group_are_found() {
    let mut appended = kit::pydicom_sample("CT_small.dcm");
    appended.extend(kit::real_pe());
    let kinds: Vec<_> = inspect(&appended)
        .observations
        .iter()
        .map(|o| (o.kind, o.format))
        .collect();
    assert!(
        kinds.contains(&(FindingKind::EmbeddedExecutable, Some(Format::Pe))),
        "{kinds:?}"
    );

    // (0002,0102) Private Information carrying an ELF.
    let file = DicomBuilder::ct("1.2.3.18").build();
    let meta_end = file
        .windows(4)
        .position(|w| w == [0x08, 0x00, 0x16, 0x00])
        .expect("first data element");
    let mut private = Vec::new();
    kit::write_element(&mut private, (0x0002, 0x0102), *b"OB", &kit::real_elf());
    let mut planted = file[..meta_end].to_vec();
    planted.extend(private);
    planted.extend_from_slice(&file[meta_end..]);
    let observation = only_alert(&inspect(&planted)).clone();
    assert_eq!(observation.format, Some(Format::Elf));
    assert!(
        observation.detail.contains("meta group"),
        "{}",
        observation.detail
    );
}

#[test]
fn a_tiff_header_does_not_hide_a_pdf_behind_it() {
    let file = DicomBuilder::ct("1.2.3.19")
        .preamble(b"II*\0\x08\0\0\0%PDF-1.7\n")
        .build();
    let observation = only_alert(&inspect(&file)).clone();
    assert_eq!(observation.kind, FindingKind::PreambleExecutable);
    assert_eq!(observation.format, Some(Format::Pdf));
}

#[test]
fn chance_pdf_headers_deep_in_pixel_data_are_not_documents() {
    let mut fragment = vec![0x55u8; 8192];
    fragment[4000..4005].copy_from_slice(b"%PDF-");
    fragment[5000..5012].copy_from_slice(b"/JavaScript ");
    let file = DicomBuilder::ct("1.2.3.20")
        .pixels(Pixels::Encapsulated(vec![fragment]))
        .build();
    assert!(alerts(&inspect(&file)).is_empty());
}

#[test]
fn a_truncated_bare_data_set_keeps_its_alerts() {
    let file = DicomBuilder::ct("1.2.3.21")
        .element(0x0009, 0x1001, *b"OB", &kit::real_elf())
        .build();
    // The data set alone, without preamble and meta group, cut inside its pixel data.
    let start = file
        .windows(4)
        .position(|w| w == [0x08, 0x00, 0x16, 0x00])
        .expect("first data element");
    let bare = &file[start..file.len() - 100];
    let observations = inspect(bare).observations;
    assert!(
        observations
            .iter()
            .any(|o| o.kind == FindingKind::EmbeddedExecutable && o.format == Some(Format::Elf)),
        "{observations:?}"
    );
}

#[test]
fn documents_beyond_the_count_limit_are_not_kept() {
    let mut builder = DicomBuilder::encapsulated_pdf("1.2.3.22", &kit::pdf(""));
    // Repeated (0042,0011) elements inside items of a sequence are what a crafted file
    // would use; top-level repeats of the tag are the simplest stand-in here.
    let mut extra = Vec::new();
    for _ in 0..pacsguard_dicom::MAX_DOCUMENTS + 4 {
        kit::write_element(&mut extra, (0x0042, 0x0011), *b"OB", b"%PDF-1.0\n");
    }
    builder = builder.without_pixels();
    let mut file = builder.build();
    file.extend(extra);
    assert_eq!(
        inspect(&file).documents.len(),
        pacsguard_dicom::MAX_DOCUMENTS
    );
}

/// Issue 10, session 37: a batch command in a Long Text value whose `for` a carriage
/// return splits is one: cmd.exe deletes CRs first and runs `for /f … ('powershell …')`.
/// (A report whose only line ends are CRs, `Gallbladder & CMD within normal
/// limits.<CR>Sedation: midazolam 0.05 mg /kg IV.<CR>`, is still an alert: the fix tried
/// hid switches behind one CR, review rv37-screen; a known false alarm, see the ignored
/// `shell::tests::prose_with_carriage_returns_for_line_ends_is_no_command_line`.)
#[test]
fn a_batch_command_whose_for_a_carriage_return_splits_is_a_command() {
    let command = b"x\r\nfo\rr /f %%a in ('powershell -enc SQBFAFgA') do echo %%a\r\n";
    let file = DicomBuilder::ct("1.2.3.38")
        .element(0x0010, 0x4000, *b"LT", command)
        .build();
    let inspection = inspect(&file);
    assert!(
        alerts(&inspection)
            .iter()
            .any(|o| o.kind == FindingKind::ActiveContent),
        "{:#?}",
        inspection.observations
    );
}
