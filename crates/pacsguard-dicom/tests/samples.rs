//! Real DICOM files written by others (pydicom 3.0.2 and pynetdicom 3.0.4 sample files,
//! unpacked by `scripts/setup-test-deps.sh`): not one alert, TIFF preambles clean.
#![allow(clippy::disallowed_methods)] // tests read the sample files they inspect

use std::path::PathBuf;

use pacsguard_dicom::{Container, Preamble, inspect};
use pacsguard_events::Severity;
use pacsguard_testkit as kit;

/// Every file the two wheels ship in their data directories, DICOM or not.
fn sample_files() -> Vec<PathBuf> {
    let mut files = kit::files_under(&kit::pydicom_files());
    files.extend(kit::files_under(&kit::pynetdicom_files()));
    files
}

#[test]
fn no_real_sample_file_raises_an_alert() {
    let files = sample_files();
    let dicom: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert!(
        dicom.len() >= 80,
        "expected the wheels' .dcm files, found {}",
        dicom.len()
    );
    let mut alerts = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("sample file");
        let inspection = inspect(&bytes);
        for observation in &inspection.observations {
            eprintln!(
                "{}: {:?} {:?} {}",
                path.display(),
                observation.kind,
                observation.severity,
                observation.detail
            );
            if observation.severity == Severity::Alert {
                alerts.push(format!("{}: {}", path.display(), observation.detail));
            }
        }
    }
    assert!(
        alerts.is_empty(),
        "alerts on real files:\n{}",
        alerts.join("\n")
    );
}

#[test]
fn real_instances_are_read_to_the_end_with_their_uid() {
    // The two files that are not: cut short on purpose by pydicom. (`UN_sequence.dcm`,
    // whose undefined-length UN element holds an implicit VR sequence per CP-246, is read
    // to its end by the second, lenient reading: see `un_sequence_is_read_per_cp_246`.)
    const NOT_READABLE: [&str; 2] = ["MR_truncated.dcm", "rtplan_truncated.dcm"];
    let mut with_uid = 0;
    for path in sample_files() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).expect("sample file");
        let inspection = inspect(&bytes);
        if inspection.container == Container::NotDicom || NOT_READABLE.contains(&name) {
            continue;
        }
        assert!(
            inspection.complete,
            "{}: {:?}",
            path.display(),
            inspection.observations
        );
        with_uid += usize::from(inspection.sop_instance_uid.is_some());
    }
    // A few samples are fragments without identifiers (pydicom's charset tests).
    assert!(
        with_uid >= 90,
        "only {with_uid} instances with a SOP Instance UID"
    );
}

#[test]
fn tiff_preamble_files_are_clean_and_read_to_the_end() {
    let mut tiff = 0;
    for path in sample_files() {
        let bytes = std::fs::read(&path).expect("sample file");
        let inspection = inspect(&bytes);
        if inspection.preamble == Some(Preamble::Tiff) {
            tiff += 1;
            // A TIFF preamble gives no finding of its own (MR_truncated.dcm is cut short,
            // which is reported, but not its preamble).
            assert!(
                inspection.observations.iter().all(|o| o.offset != Some(0)),
                "{}: {:?}",
                path.display(),
                inspection.observations
            );
            assert_eq!(inspection.container, Container::Part10);
        }
    }
    assert!(tiff > 0, "pydicom ships TIFF-preamble files");
}

/// CP-246: pydicom's `UN_sequence.dcm` holds an undefined-length UN element whose items
/// are Implicit VR Little Endian; DCMTK and pydicom read it, dicom-parser 0.10 alone does
/// not, and the file used to get a `malformed-dicom` warning (exit 1, someone paged).
#[test]
fn un_sequence_is_read_per_cp_246() {
    let bytes = kit::pydicom_sample("UN_sequence.dcm");
    let inspection = inspect(&bytes);
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
