//! `pacsguard sanitize IN OUT`: a new copy of a DICOM file with its preamble zeroed.
//!
//! The original is only read. The copy is written complete or not at all, never over an
//! existing file, and then read back: its first 128 bytes must be zero and every byte from
//! offset 128 on identical to the original's, or the copy is removed and the command
//! fails. Image data is never "repaired": only the preamble, which PS3.10 gives no
//! meaning to DICOM readers, changes.

use std::path::{Path, PathBuf};

use pacsguard_dicom::{Container, PREAMBLE_LEN, Preamble, inspect};
use pacsguard_events::{Action, Event, Finding, Outcome, SeverityCounts, escape_path};
use pacsguard_fs::read_file;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::Session;
use super::scan::MAX_SCAN_FILE_BYTES;
use crate::durable::write_new;
use crate::error::EngineError;

#[derive(Debug, Serialize)]
pub struct SanitizeReport {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub input: PathBuf,
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub output: PathBuf,
    /// What the preamble held: zero, tiff, nonstandard, or the executable format.
    pub preamble_was: String,
    pub input_sha256: String,
    pub output_sha256: String,
    /// Bytes compared and found identical (everything after the preamble).
    pub identical_bytes: u64,
    /// What the new file still carries beyond its preamble (an executable in an element
    /// is not removed: that would change the data set).
    pub counts: SeverityCounts,
    pub remaining: Vec<Finding>,
}

impl Session {
    pub fn sanitize(&mut self, input: &Path, output: &Path) -> Result<SanitizeReport, EngineError> {
        let objects = vec![input.to_path_buf(), output.to_path_buf()];
        self.recorded(Action::Sanitize, objects.clone(), |s| {
            let report = sanitize_copy(input, output)?;
            let detail = format!(
                "wrote {} (SHA-256 {}) from {} (SHA-256 {}) with the preamble zeroed (it held: {}); {} bytes after it verified identical",
                escape_path(&report.output),
                report.output_sha256,
                escape_path(&report.input),
                report.input_sha256,
                report.preamble_was,
                report.identical_bytes
            );
            let outcome = if report.counts.needs_attention() {
                Outcome::Findings
            } else {
                Outcome::Success
            };
            s.emit_findings(Action::Sanitize, None, &report.remaining)?;
            s.finish(
                Event::new(s.actor.clone(), Action::Sanitize, outcome, detail).with_objects(objects),
            )?;
            Ok(report)
        })
    }
}

/// Writes the sanitized copy and verifies it; the part of `sanitize` that touches files.
fn sanitize_copy(input: &Path, output: &Path) -> Result<SanitizeReport, EngineError> {
    let original = read_file(input, MAX_SCAN_FILE_BYTES).map_err(|e| EngineError::io(input, e))?;
    let bytes = &original.bytes;
    let inspection = inspect(bytes);
    let preamble_was = match (&inspection.container, &inspection.preamble) {
        (Container::Part10, Some(preamble)) => match preamble {
            Preamble::Zero => "zero".to_owned(),
            Preamble::Tiff => "tiff".to_owned(),
            Preamble::Nonstandard { .. } => "nonstandard".to_owned(),
            Preamble::Executable { format, .. } => format.as_str().to_owned(),
        },
        _ => {
            return Err(EngineError::Usage(format!(
                "{}: not a DICOM Part 10 file with a preamble (no DICM at offset 128); nothing was written",
                escape_path(input)
            )));
        }
    };
    let mut sanitized = bytes.clone();
    sanitized[..PREAMBLE_LEN].fill(0);
    // Never executable, whatever the original's mode was.
    let mode = (original.meta.mode & 0o666) | 0o400;
    write_new(output, &sanitized, mode)?;
    if let Err(e) = verify_copy(output, bytes) {
        let _ = std::fs::remove_file(output);
        return Err(e);
    }
    let remaining = pacsguard_screen::findings_of(output, &inspect(&sanitized));
    Ok(SanitizeReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        preamble_was,
        input_sha256: hex::encode(Sha256::digest(bytes)),
        output_sha256: hex::encode(Sha256::digest(&sanitized)),
        identical_bytes: (bytes.len() - PREAMBLE_LEN) as u64,
        counts: SeverityCounts::of(&remaining),
        remaining,
    })
}

/// Reads the written copy back from the disk and compares it with the original.
fn verify_copy(output: &Path, original: &[u8]) -> Result<(), EngineError> {
    let written = read_file(output, MAX_SCAN_FILE_BYTES).map_err(|e| EngineError::io(output, e))?;
    let written = written.bytes;
    let fail = |what: String| {
        EngineError::io(
            output,
            format!("{what}; the copy was removed and the original left as it was"),
        )
    };
    if written.len() != original.len() {
        return Err(fail(format!(
            "the copy has {} bytes where the original has {}",
            written.len(),
            original.len()
        )));
    }
    if written[..PREAMBLE_LEN].iter().any(|&b| b != 0) {
        return Err(fail("the copy's preamble is not zero".to_owned()));
    }
    if let Some(at) = written[PREAMBLE_LEN..]
        .iter()
        .zip(&original[PREAMBLE_LEN..])
        .position(|(a, b)| a != b)
    {
        return Err(fail(format!(
            "the copy differs from the original at offset {}",
            at + PREAMBLE_LEN
        )));
    }
    Ok(())
}
