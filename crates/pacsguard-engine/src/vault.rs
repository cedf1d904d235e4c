//! The quarantine vault in the home: content-addressed copies of files that raised an
//! alert, each with records of where and when it was found and why.
//!
//! Layout: `quarantine/<sha256>/content` (mode 0400, never executable) and one
//! `quarantine/<sha256>/<time>-<nonce>.json` record per time the content was quarantined.
//! The same content found at two paths is stored once. Every file is written complete or
//! not at all (`durable::write_new`); the original is never touched. The audit trail
//! records each quarantine with the SHA-256, so a vault altered later is caught by
//! comparing the two (`show` and `export` re-hash the content first).

use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Finding, escape_path};
use pacsguard_fs::Meta;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::durable::write_new;
use crate::error::EngineError;

/// The most of one quarantine record read: a record is a few KiB (its findings are bounded
/// by `MAX_OBSERVATIONS`); a larger file is not one of ours.
const MAX_RECORD_FILE_BYTES: u64 = 4 << 20;

/// Bytes of a vault copy held at once while it is hashed or exported: a copy (up to
/// `MAX_SCAN_FILE_BYTES`, 256 MiB) is streamed through this buffer, never read whole.
pub const VAULT_READ_BUFFER_BYTES: usize = 64 << 10;

/// Streams `reader` through a [`VAULT_READ_BUFFER_BYTES`] buffer into `sink` (when
/// given), hashing it: its SHA-256 (hex) and length. More than `limit` bytes is an error.
fn stream_hashed(
    mut reader: impl std::io::Read,
    mut sink: Option<&mut dyn std::io::Write>,
    limit: u64,
) -> std::io::Result<(String, u64)> {
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; VAULT_READ_BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > limit {
            return Err(std::io::Error::other(format!(
                "larger than {limit} bytes: not a copy the vault makes"
            )));
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        hash.update(chunk);
        if let Some(sink) = sink.as_mut() {
            sink.write_all(chunk)?;
        }
    }
    Ok((hex::encode(hash.finalize()), total))
}

/// Streams the vault copy `content` (into `sink` when given) and checks that it hashes to
/// `expected`, its name: a copy altered since it was made is refused.
fn check_copy(
    content: &Path,
    expected: &str,
    sink: Option<&mut fs::File>,
) -> Result<(), EngineError> {
    let file = pacsguard_fs::open_regular(content)
        .map_err(|e| EngineError::io(content, crate::files::refusal(&e)))?;
    let sink = sink.map(|f| f as &mut dyn std::io::Write);
    let (actual, _) = stream_hashed(file, sink, crate::ops::MAX_SCAN_FILE_BYTES)
        .map_err(|e| EngineError::io(content, e))?;
    if actual != expected {
        return Err(EngineError::io(
            content,
            format!("the vault copy was altered: its SHA-256 is now {actual}"),
        ));
    }
    Ok(())
}

/// One time a file was quarantined.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub sha256: String,
    pub blake3: String,
    pub size: u64,
    /// The original path, escaped as everywhere in PacsGuard's output.
    pub original_path: String,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// Modification time of the original, seconds since the epoch.
    pub mtime: i64,
    /// When the copy was made (RFC 3339, UTC).
    pub quarantined_at: String,
    pub host: String,
    pub actor: String,
    pub findings: Vec<RecordedFinding>,
}

/// A finding as kept in a quarantine record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedFinding {
    pub kind: String,
    pub severity: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl From<&Finding> for RecordedFinding {
    fn from(finding: &Finding) -> Self {
        RecordedFinding {
            kind: finding.kind.as_str().to_owned(),
            severity: finding.severity.as_str().to_owned(),
            detail: finding.detail.clone(),
            format: finding.format.clone(),
            offset: finding.offset,
        }
    }
}

/// What a copied file looked like, for its record.
#[derive(Debug)]
pub struct Original<'a> {
    pub path: &'a Path,
    pub meta: &'a Meta,
    pub bytes: &'a [u8],
    pub findings: &'a [Finding],
}

#[derive(Clone, Debug)]
pub struct Vault {
    dir: PathBuf,
}

impl Vault {
    pub fn new(dir: PathBuf) -> Vault {
        Vault { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies `original` into the vault (once per content) and adds a record.
    pub fn put(
        &self,
        original: &Original<'_>,
        host: &str,
        actor: &str,
    ) -> Result<QuarantineRecord, EngineError> {
        let sha256 = hex::encode(Sha256::digest(original.bytes));
        let entry = self.dir.join(&sha256);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&entry)
            .map_err(|e| EngineError::io(&entry, e))?;
        let content = entry.join("content");
        if !content.exists() {
            match write_new(&content, original.bytes, 0o400) {
                Ok(()) => {}
                // Another worker stored the same content a moment ago.
                Err(_) if content.exists() => {}
                Err(e) => return Err(e),
            }
        }
        let now = std::time::SystemTime::now();
        let record = QuarantineRecord {
            sha256: sha256.clone(),
            blake3: blake3::hash(original.bytes).to_hex().to_string(),
            size: original.bytes.len() as u64,
            original_path: escape_path(original.path),
            mode: format!("{:04o}", original.meta.mode),
            uid: original.meta.uid,
            gid: original.meta.gid,
            mtime: original.meta.mtime.sec,
            quarantined_at: humantime::format_rfc3339_seconds(now).to_string(),
            host: host.to_owned(),
            actor: actor.to_owned(),
            findings: original
                .findings
                .iter()
                .map(RecordedFinding::from)
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&record).map_err(|e| EngineError::io(&entry, e))?;
        let nanos = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut nonce = [0u8; 4];
        getrandom::fill(&mut nonce).map_err(|e| EngineError::io(&entry, e))?;
        let record_path = entry.join(format!("{nanos}-{}.json", hex::encode(nonce)));
        write_new(&record_path, &text, 0o400)?;
        Ok(record)
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Result<Vec<QuarantineRecord>, EngineError> {
        let mut records = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(records),
            Err(e) => return Err(EngineError::io(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(&self.dir, e))?;
            if is_digest_name(&entry.file_name().to_string_lossy()) {
                records.extend(self.records_in(&entry.path())?);
            }
        }
        records.sort_by(|a, b| a.quarantined_at.cmp(&b.quarantined_at));
        Ok(records)
    }

    /// The records and content path of the one entry whose SHA-256 starts with `prefix`,
    /// after checking that the content still has that SHA-256.
    pub fn find(&self, prefix: &str) -> Result<(Vec<QuarantineRecord>, PathBuf), EngineError> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EngineError::Usage(format!(
                "\"{}\": give at least 8 hexadecimal digits of the SHA-256",
                prefix.escape_debug()
            )));
        }
        let mut matches: Vec<PathBuf> = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_digest_name(&name) && name.starts_with(&prefix) {
                    matches.push(entry.path());
                }
            }
        }
        let entry = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(EngineError::Usage(format!(
                    "nothing in the vault {} has a SHA-256 starting with {prefix}",
                    self.dir.display()
                )));
            }
            _ => {
                return Err(EngineError::Usage(format!(
                    "{} vault entries start with {prefix}: give more digits",
                    matches.len()
                )));
            }
        };
        let content = entry.join("content");
        if fs::symlink_metadata(&content).is_err() {
            return Err(EngineError::io(
                &entry,
                "an incomplete vault entry: a quarantine was interrupted (killed) before its copy was complete, so there is no copy; the next pacsguard command removes the entry and records that it did",
            ));
        }
        let expected = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        check_copy(&content, &expected, None)?;
        Ok((self.records_in(&entry)?, content))
    }

    /// Writes the copy whose SHA-256 starts with `prefix` to the new file `out` (mode
    /// 0400, never over an existing file); returns its full SHA-256.
    ///
    /// The copy is streamed ([`VAULT_READ_BUFFER_BYTES`] at a time) and hashed again as it
    /// is written: a copy altered between the check and the export leaves no file.
    pub fn export(&self, prefix: &str, out: &Path) -> Result<String, EngineError> {
        let (records, content) = self.find(prefix)?;
        let expected = records.first().map_or_else(
            || {
                content
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            },
            |r| r.sha256.clone(),
        );
        crate::durable::write_new_with(out, 0o400, |file| {
            check_copy(&content, &expected, Some(file))?;
            Ok(expected.clone())
        })
    }

    /// Opens the vault copy whose SHA-256 starts with `prefix` for reading, after
    /// [`Vault::find`] checked it: its records, the open file and its length. A reader
    /// streams it and hashes it again as it goes (the file may change after the check).
    pub fn open_copy(
        &self,
        prefix: &str,
    ) -> Result<(Vec<QuarantineRecord>, fs::File, u64), EngineError> {
        let (records, content) = self.find(prefix)?;
        let file = pacsguard_fs::open_regular(&content)
            .map_err(|e| EngineError::io(&content, crate::files::refusal(&e)))?;
        let len = file
            .metadata()
            .map_err(|e| EngineError::io(&content, e))?
            .len();
        Ok((records, file, len))
    }

    /// Removes what a quarantine killed midway (kill -9, power loss) left behind: the
    /// temporary files of `durable::write_new` (`.<name>.<nonce>.pacsguard-tmp`) and entry
    /// directories left with nothing in them. A complete copy without its record is kept
    /// (it is evidence; `show` explains it). Runs under the home's lock, so no quarantine
    /// is in progress. Returns what was removed, for the caller to record.
    pub fn clean_interrupted(&self) -> Result<Vec<PathBuf>, EngineError> {
        let mut removed = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(EngineError::io(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(&self.dir, e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || !is_digest_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let dir = entry.path();
            let mut left = 0usize;
            for file in fs::read_dir(&dir).map_err(|e| EngineError::io(&dir, e))? {
                let file = file.map_err(|e| EngineError::io(&dir, e))?;
                let name = file.file_name().to_string_lossy().into_owned();
                // Only our own temporary files, and only regular files: never a link.
                let ours = name.starts_with('.')
                    && name.ends_with(".pacsguard-tmp")
                    && file.file_type().is_ok_and(|t| t.is_file());
                if ours {
                    fs::remove_file(file.path()).map_err(|e| EngineError::io(file.path(), e))?;
                    removed.push(file.path());
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                fs::remove_dir(&dir).map_err(|e| EngineError::io(&dir, e))?;
                removed.push(dir);
            }
        }
        Ok(removed)
    }

    fn records_in(&self, entry: &Path) -> Result<Vec<QuarantineRecord>, EngineError> {
        let mut records = Vec::new();
        for file in fs::read_dir(entry).map_err(|e| EngineError::io(entry, e))? {
            let path = file.map_err(|e| EngineError::io(entry, e))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = crate::files::read_bounded(&path, MAX_RECORD_FILE_BYTES)?
                    .ok_or_else(|| EngineError::io(&path, "cannot read: it does not exist"))?;
                let record = serde_json::from_slice(&text)
                    .map_err(|e| EngineError::io(&path, format!("not a quarantine record: {e}")))?;
                records.push(record);
            }
        }
        Ok(records)
    }
}

fn is_digest_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
