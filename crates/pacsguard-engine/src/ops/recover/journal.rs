//! The write-ahead journal of `recover --apply`, in the home (`recover.journal`).
//!
//! Before a temporary file is created in a guarded tree its path is journaled; before it
//! is renamed into place its (device, inode) is. A run killed at any instant therefore
//! leaves a record of everything it may have left behind: the next run removes the
//! temporary files named here (and nothing else), and takes the new inode and ctime of a
//! file it had already renamed into place into the profile. Lines are synced one by one.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// The most of a journal read back: one run writes two short lines per restored file, so
/// this is room for about 100,000 restores. A longer journal is refused (exit 2) rather
/// than half-read: it was not written by `recover`.
pub const MAX_JOURNAL_BYTES: u64 = 32 << 20;

/// The suffix of every temporary file `recover --apply` creates beside a file it restores.
pub const TEMP_SUFFIX: &str = ".pacsguard-recover";

/// What an earlier run journaled.
#[derive(Debug, Default)]
pub struct Journaled {
    /// Temporary files it created (some may have been renamed into place since).
    pub temps: Vec<PathBuf>,
    /// Files it was about to rename into place: the path and the (device, inode) of the
    /// restored copy.
    pub placed: Vec<(PathBuf, u64, u64)>,
}

pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    /// In memory only: inodes this run renamed one name of away, with their change time
    /// just after (a hard link's other names see that change, made by us, not by anyone).
    relinked: std::collections::HashMap<(u64, u64), pacsguard_fs::Timestamp>,
}

impl Journal {
    pub fn new(path: PathBuf) -> Journal {
        Journal {
            path,
            file: None,
            relinked: std::collections::HashMap::new(),
        }
    }

    /// Records that this run replaced a name of the inode `(dev, ino)`, whose change time
    /// is now `ctime`.
    pub fn relinked(&mut self, dev: u64, ino: u64, ctime: pacsguard_fs::Timestamp) {
        self.relinked.insert((dev, ino), ctime);
    }

    /// The change time this run left on `(dev, ino)` when it replaced one of its names.
    pub fn relinked_ctime(&self, dev: u64, ino: u64) -> Option<pacsguard_fs::Timestamp> {
        self.relinked.get(&(dev, ino)).copied()
    }

    /// Reads what an earlier, interrupted run left (nothing when there is no journal).
    pub fn read(&self) -> Result<Journaled, EngineError> {
        let Some(bytes) = crate::files::read_bounded(&self.path, MAX_JOURNAL_BYTES)? else {
            return Ok(Journaled::default());
        };
        let mut journaled = Journaled::default();
        for line in bytes.split(|&b| b == b'\n') {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            match fields.as_slice() {
                [b"T", path] => journaled.temps.push(decode(path)?),
                [b"P", path, dev, ino] => {
                    journaled
                        .placed
                        .push((decode(path)?, number(dev)?, number(ino)?));
                }
                // A line torn by a crash while it was written: it was never acted on,
                // since every line is synced before what it announces is done.
                _ => {}
            }
        }
        Ok(journaled)
    }

    pub fn temp(&mut self, path: &Path) -> Result<(), EngineError> {
        self.append(format!("T {}\n", hex::encode(path.as_os_str().as_bytes())))
    }

    pub fn placing(&mut self, path: &Path, dev: u64, ino: u64) -> Result<(), EngineError> {
        self.append(format!(
            "P {} {dev} {ino}\n",
            hex::encode(path.as_os_str().as_bytes())
        ))
    }

    fn append(&mut self, line: String) -> Result<(), EngineError> {
        let path = self.path.clone();
        let io = |e: std::io::Error| EngineError::io(&path, e);
        if self.file.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)
                .map_err(io)?;
            self.file = Some(file);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(line.as_bytes()).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// Everything journaled is settled (temporary files gone, restored files in the
    /// signed profile): the journal is emptied.
    pub fn clear(&mut self) -> Result<(), EngineError> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(&self.path, e)),
        }
    }
}

fn decode(hex_path: &[u8]) -> Result<PathBuf, EngineError> {
    let bytes = hex::decode(hex_path)
        .map_err(|e| EngineError::Usage(format!("recover.journal: a path is not hex ({e})")))?;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
}

fn number(text: &[u8]) -> Result<u64, EngineError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            EngineError::Usage("recover.journal: a device or inode is not a number".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_at_the_limit_is_read_and_one_byte_over_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recover.journal");
        let mut journal = Journal::new(path.clone());
        let temp = dir.path().join(".a.0011223344556677.pacsguard-recover");
        journal.temp(&temp).expect("journaled");
        journal
            .placing(&dir.path().join("a"), 7, 42)
            .expect("journaled");
        let written = std::fs::metadata(&path).expect("stat").len();
        // Padded with empty lines (ignored) to exactly MAX_JOURNAL_BYTES.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.resize(usize::try_from(MAX_JOURNAL_BYTES).expect("fits"), b'\n');
        std::fs::write(&path, &bytes).expect("write");
        let read = Journal::new(path.clone()).read().expect("at the limit");
        assert_eq!(read.temps, vec![temp]);
        assert_eq!(read.placed, vec![(dir.path().join("a"), 7, 42)]);
        assert!(written < MAX_JOURNAL_BYTES);
        bytes.push(b'\n');
        std::fs::write(&path, &bytes).expect("write");
        let err = Journal::new(path).read().expect_err("over the limit");
        assert!(err.to_string().contains("recover.journal"), "{err}");
    }
}
