//! `media verify MANIFEST --dest DIR`: the import folder compared with the signed
//! manifest. A signature proves what an import copied; only reading the folder proves
//! that this is still what the folder holds: a copy missing (taken away, or a manifest
//! replayed for a folder it never described), a copy whose bytes are no longer the
//! SHA-256 the manifest signs (changed after the import), or a file the manifest does
//! not list (put there by someone else). Read-only: nothing in DIR is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pacsguard_events::{Finding, FindingKind, Severity, SeverityCounts, escape_path};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{MAX_MEDIA_FILE_BYTES, VerifiedManifest};
use crate::error::EngineError;

/// The most files of DEST that the manifest does not list reported one by one; past it,
/// one finding says how many more there are. DEST is a shared import folder, so anyone
/// who can write into it chooses how many files there are.
pub const MAX_REPORTED_EXTRA: usize = 1000;

/// What DEST holds compared with the manifest.
#[derive(Debug, Serialize)]
pub struct DestinationReport {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub destination: PathBuf,
    /// Copies present with the manifest's SHA-256.
    pub matching: u64,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
}

impl DestinationReport {
    pub fn needs_attention(&self) -> bool {
        self.counts.needs_attention()
    }
}

/// One `copied` entry of the manifest.
struct Listed {
    sha256: String,
    path_on_medium: String,
}

/// Compares `destination` with the copies `manifest` lists (its signature is already
/// verified). A manifest body without a well-formed `copied` list is an error.
pub fn verify_destination(
    manifest: &VerifiedManifest,
    manifest_path: &Path,
    destination: &Path,
) -> Result<DestinationReport, EngineError> {
    let listed = listed_copies(manifest, manifest_path)?;
    let names = std::fs::read_dir(destination).map_err(|e| EngineError::io(destination, e))?;
    let mut findings = Vec::new();
    let mut matching = 0u64;
    // The listed names found in the folder: a set, since a manifest may list many
    // thousands of copies and each is looked up once.
    let (mut extra, mut present) = (0usize, std::collections::HashSet::new());
    for entry in names {
        let entry = entry.map_err(|e| EngineError::io(destination, e))?;
        let name = entry.file_name();
        let path = destination.join(&name);
        let Some((listed_name, copy)) = name.to_str().and_then(|n| listed.get_key_value(n)) else {
            extra += 1;
            if extra <= MAX_REPORTED_EXTRA {
                findings.push(Finding::new(
                    path,
                    FindingKind::MediaDestinationExtra,
                    Severity::Warning,
                    "is in the import folder but the manifest does not list it: not copied by this import (another import's, or put there by someone else)",
                ));
            }
            continue;
        };
        present.insert(listed_name.as_str());
        match pacsguard_fs::read_file(&path, MAX_MEDIA_FILE_BYTES) {
            Ok(read) if hex::encode(Sha256::digest(&read.bytes)) == copy.sha256 => matching += 1,
            Ok(read) => findings.push(Finding::new(
                path,
                FindingKind::MediaCopyChanged,
                Severity::Alert,
                format!(
                    "its SHA-256 is {}, not the {} the manifest signs for the copy of {}: changed after the import",
                    hex::encode(Sha256::digest(&read.bytes)),
                    copy.sha256,
                    copy.path_on_medium
                ),
            )),
            Err(e) => findings.push(Finding::new(
                path,
                FindingKind::MediaCopyChanged,
                Severity::Alert,
                format!(
                    "is not the copy of {} the manifest signs: {}",
                    copy.path_on_medium,
                    crate::files::refusal(&e)
                ),
            )),
        }
    }
    if extra > MAX_REPORTED_EXTRA {
        findings.push(Finding::new(
            destination.to_path_buf(),
            FindingKind::MediaDestinationExtra,
            Severity::Warning,
            format!(
                "{} more files the manifest does not list (the first {MAX_REPORTED_EXTRA} are named)",
                extra - MAX_REPORTED_EXTRA
            ),
        ));
    }
    let mut missing: Vec<(&String, &Listed)> = listed
        .iter()
        .filter(|(name, _)| !present.contains(name.as_str()))
        .collect();
    missing.sort_by(|a, b| a.0.cmp(b.0));
    for (name, copy) in missing {
        findings.push(Finding::new(
            destination.join(name),
            FindingKind::MediaCopyMissing,
            Severity::Warning,
            format!(
                "the manifest lists this copy of {} but the import folder does not hold it (taken in by the PACS and removed, deleted, or the manifest is of another import)",
                copy.path_on_medium
            ),
        ));
    }
    Ok(DestinationReport {
        destination: destination.to_path_buf(),
        matching,
        counts: SeverityCounts::of(&findings),
        findings,
    })
}

/// The manifest's `copied` entries by file name. Signed by a trusted key, yet read as
/// carefully as anything else: a name that is not one plain file name is an error.
fn listed_copies(
    manifest: &VerifiedManifest,
    path: &Path,
) -> Result<HashMap<String, Listed>, EngineError> {
    let bad = |what: String| EngineError::io(path, format!("not a media manifest: {what}"));
    let copied = manifest.body["copied"]
        .as_array()
        .ok_or_else(|| bad("no list of copied files".into()))?;
    let mut listed = HashMap::with_capacity(copied.len());
    for (i, copy) in copied.iter().enumerate() {
        let (Some(file), Some(sha256)) = (copy["file"].as_str(), copy["sha256"].as_str()) else {
            return Err(bad(format!("copied entry {i} has no file or sha256")));
        };
        if file.is_empty() || file.contains('/') || file == "." || file == ".." {
            return Err(bad(format!(
                "copied entry {i} names {} (not a file name)",
                escape_path(Path::new(file))
            )));
        }
        let entry = Listed {
            sha256: sha256.to_ascii_lowercase(),
            path_on_medium: copy["path"].as_str().unwrap_or("?").to_owned(),
        };
        if listed.insert(file.to_owned(), entry).is_some() {
            return Err(bad(format!("{file} is listed twice")));
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(copied: serde_json::Value) -> VerifiedManifest {
        VerifiedManifest {
            signer_fingerprint: String::new(),
            body: serde_json::json!({ "copied": copied }),
        }
    }

    #[test]
    fn extra_files_are_named_up_to_the_limit_then_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in 0..MAX_REPORTED_EXTRA {
            std::fs::write(dir.path().join(format!("x{n}")), b"").expect("write");
        }
        let m = manifest(serde_json::json!([]));
        let at = verify_destination(&m, Path::new("m"), dir.path()).expect("compared");
        assert_eq!(at.findings.len(), MAX_REPORTED_EXTRA);
        assert!(at.findings.iter().all(|f| f.path != dir.path()));
        std::fs::write(dir.path().join("one-more"), b"").expect("write");
        let over = verify_destination(&m, Path::new("m"), dir.path()).expect("compared");
        assert_eq!(over.findings.len(), MAX_REPORTED_EXTRA + 1);
        let last = over.findings.last().expect("summary");
        assert!(last.detail.starts_with("1 more files"), "{}", last.detail);
    }

    #[test]
    fn a_listed_name_that_is_not_a_file_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in ["../x.dcm", "", "..", "a/b"] {
            let m = manifest(serde_json::json!([{ "file": file, "sha256": "00" }]));
            let error = verify_destination(&m, Path::new("m"), dir.path()).expect_err(file);
            assert!(
                error.to_string().contains("not a media manifest"),
                "{error}"
            );
        }
    }
}
