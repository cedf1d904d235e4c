//! Reading a whole file into memory for content inspection, with the same guarantees as
//! hashing: opened read-only through `open.rs` (no symlink followed, no FIFO blocked on,
//! no access time changed), checked to be a regular file, and checked unchanged by fstat
//! before and after, so that what is inspected is one consistent version of the file.

use std::io;
use std::path::Path;

use crate::entry::Meta;
use crate::hash::{MAX_HASH_ATTEMPTS, read_full};
use crate::open::open_for_reading;

/// One consistent read of a file.
#[derive(Clone, Debug)]
pub struct FileBytes {
    pub bytes: Vec<u8>,
    /// The metadata of the file as it was read (fstat after reading).
    pub meta: Meta,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("vanished before it could be read")]
    Vanished,
    #[error("not a regular file (a link, FIFO, socket or device now stands there)")]
    NotRegular,
    #[error("{size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64, meta: Meta },
    #[error("kept changing while it was read ({MAX_HASH_ATTEMPTS} attempts)")]
    Unstable,
    #[error("{0}")]
    Io(io::Error),
}

impl ReadError {
    /// Nothing stands at the path (a missing file, for callers where that is normal).
    pub fn is_missing(&self) -> bool {
        matches!(self, ReadError::Vanished)
    }
}

/// Opens the regular file at `path` to read it as a stream (a log too large to hold):
/// no link followed, no FIFO or device blocked on, anything but a regular file refused.
/// The caller bounds what it reads per line or record.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    let file = open_for_reading(path).map_err(|e| match e.raw_os_error() {
        _ if e.kind() == io::ErrorKind::NotFound => ReadError::Vanished,
        Some(libc::ELOOP | libc::ENXIO) => ReadError::NotRegular,
        _ => ReadError::Io(e),
    })?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    Ok(file)
}

/// Reads the regular file at `path` whole, if it is at most `limit` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<FileBytes, ReadError> {
    read_checked(path, limit, None)
}

/// Reads the first `len` bytes of the regular file at `path` (all of it if shorter).
pub fn read_head(path: &Path, len: usize) -> Result<FileBytes, ReadError> {
    read_checked(path, u64::MAX, Some(len))
}

fn read_checked(path: &Path, limit: u64, head: Option<usize>) -> Result<FileBytes, ReadError> {
    for _ in 0..MAX_HASH_ATTEMPTS {
        match read_once(path, limit, head) {
            Ok(Once::Read(read)) => return Ok(read),
            Ok(Once::Changed) => continue,
            Ok(Once::NotRegular) => return Err(ReadError::NotRegular),
            Ok(Once::TooLarge(meta)) => {
                return Err(ReadError::TooLarge {
                    size: meta.size,
                    limit,
                    meta,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Vanished),
            // ELOOP: a symlink stands at the path; ENXIO: a FIFO or socket.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
                return Err(ReadError::NotRegular);
            }
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Err(ReadError::Unstable)
}

enum Once {
    Read(FileBytes),
    /// The file changed while it was read.
    Changed,
    NotRegular,
    TooLarge(Meta),
}

fn read_once(path: &Path, limit: u64, head: Option<usize>) -> io::Result<Once> {
    let mut file = open_for_reading(path)?;
    let before = file.metadata()?;
    if !before.is_file() {
        return Ok(Once::NotRegular);
    }
    let before = Meta::of(&before);
    if before.size > limit {
        return Ok(Once::TooLarge(before));
    }
    let size = usize::try_from(before.size).map_err(io::Error::other)?;
    let size = head.map_or(size, |head| head.min(size));
    let mut bytes = vec![0u8; size];
    let read = read_full(&mut file, &mut bytes)?;
    let after = Meta::of(&file.metadata()?);
    let stable = read == size
        && after.size == before.size
        && after.mtime == before.mtime
        && after.ctime == before.ctime;
    Ok(if stable {
        Once::Read(FileBytes { bytes, meta: after })
    } else {
        Once::Changed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.dcm");
        #[allow(clippy::disallowed_methods)] // the test writes its own fixture
        std::fs::write(&file, b"0123456789").expect("write");
        let read = read_file(&file, 10).expect("read");
        assert_eq!(read.bytes, b"0123456789");
        assert!(matches!(
            read_file(&file, 9),
            Err(ReadError::TooLarge {
                size: 10,
                limit: 9,
                ..
            })
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(matches!(read_file(&link, 10), Err(ReadError::NotRegular)));
        assert!(matches!(
            read_file(dir.path(), 10),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_file(&dir.path().join("gone"), 10),
            Err(ReadError::Vanished)
        ));
    }

    #[test]
    fn streams_only_regular_files_and_never_blocks_on_a_fifo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        // Without O_NONBLOCK this open would wait for a writer forever.
        assert!(matches!(open_regular(&fifo), Err(ReadError::NotRegular)));
        assert!(matches!(read_file(&fifo, 10), Err(ReadError::NotRegular)));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        assert!(matches!(open_regular(&zero), Err(ReadError::NotRegular)));
        assert!(matches!(
            open_regular(Path::new("/dev/zero")),
            Err(ReadError::NotRegular)
        ));
        assert!(open_regular(&dir.path().join("gone")).is_err_and(|e| e.is_missing()));
    }
}
