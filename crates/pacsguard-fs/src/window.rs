//! Reading a file too large to hold whole in windows, for content inspection: opened once
//! read-only through `open.rs` (no symlink followed, no FIFO blocked on, no access time
//! changed), so that every window comes from the same inode, and checked unchanged by
//! fstat at the end, so that the windows are one consistent version of the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use crate::entry::Meta;
use crate::open::open_for_reading;
use crate::read::ReadError;

/// One open file, read window by window.
#[derive(Debug)]
pub struct WindowReader {
    file: File,
    before: Meta,
}

impl WindowReader {
    /// Opens the regular file at `path`.
    pub fn open(path: &Path) -> Result<WindowReader, ReadError> {
        let file = open_for_reading(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReadError::Vanished,
            _ if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
                ReadError::NotRegular
            }
            _ => ReadError::Io(e),
        })?;
        let meta = file.metadata().map_err(ReadError::Io)?;
        if !meta.is_file() {
            return Err(ReadError::NotRegular);
        }
        Ok(WindowReader {
            before: Meta::of(&meta),
            file,
        })
    }

    /// The size of the file when it was opened.
    pub fn size(&self) -> u64 {
        self.before.size
    }

    /// Reads `len` bytes from `offset` (fewer at the end of the file).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let len = usize::try_from(self.size().saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(len);
        let mut buffer = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self
                .file
                .read_at(&mut buffer[filled..], offset + filled as u64)
            {
                Ok(0) => return Err(ReadError::Unstable), // shrank while read
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(buffer)
    }

    /// The metadata after reading, if the file did not change meanwhile.
    pub fn finish(self) -> Result<Meta, ReadError> {
        let after = Meta::of(&self.file.metadata().map_err(ReadError::Io)?);
        let unchanged = after.size == self.before.size
            && after.mtime == self.before.mtime
            && after.ctime == self.before.ctime;
        if unchanged {
            Ok(after)
        } else {
            Err(ReadError::Unstable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_come_from_the_file_and_a_change_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.dcm");
        #[allow(clippy::disallowed_methods)] // the test writes its own fixture
        std::fs::write(&path, b"0123456789").expect("write");
        let reader = WindowReader::open(&path).expect("open");
        assert_eq!(reader.size(), 10);
        assert_eq!(reader.read_at(2, 3).expect("read"), b"234");
        assert_eq!(reader.read_at(8, 100).expect("read"), b"89");
        assert!(reader.read_at(20, 4).expect("past the end").is_empty());
        reader.finish().expect("unchanged");

        let reader = WindowReader::open(&path).expect("open");
        #[allow(clippy::disallowed_methods)]
        std::fs::write(&path, b"01234567890").expect("rewrite");
        assert!(matches!(reader.finish(), Err(ReadError::Unstable)));
    }
}
