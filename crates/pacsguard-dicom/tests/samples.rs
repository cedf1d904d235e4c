//! Real DICOM files written by others (pydicom 3.0.2 and pynetdicom 3.0.4 sample files,
//! unpacked by `scripts/setup-test-deps.sh`): not one alert, TIFF preambles clean.
#![allow(clippy::disallowed_methods)] // tests read the sample files they inspect

use std::path::{Path, PathBuf};

use pacsguard_dicom::{Container, Preamble, inspect};
use pacsguard_events::Severity;

fn wheels() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.testdata/wheels")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup-test-deps.sh", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file the two wheels ship in their data directories, DICOM or not.
fn sample_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(
        &wheels().join("pydicom/pydicom/data/test_files"),
        &mut files,
    );
    files_under(
        &wheels().join("pynetdicom/pynetdicom/tests/dicom_files"),
        &mut files,
    );
    files.sort();
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
