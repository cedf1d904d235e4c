//! The single place where pacsguard-fs opens anything, and only for reading.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// `O_NOFOLLOW`: a symlink swapped in for the file is not followed. `O_NONBLOCK`: a FIFO
/// or device swapped in cannot block us (and is refused after fstat, before any read).
fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// Opens `path` read-only (see [`file_flags`]). `O_NOATIME` keeps even the access time of
/// the guarded file untouched where the kernel allows it (owner or root); elsewhere we
/// retry without it rather than fail.
#[allow(clippy::disallowed_methods)] // read-only by the flags below; see clippy.toml
pub(crate) fn open_for_reading(path: &Path) -> io::Result<File> {
    let flags = file_flags().bits() as i32 & !libc::O_ACCMODE;
    let open = |extra| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags | extra)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    }
}

/// `O_DIRECTORY | O_NOFOLLOW`: only a real directory opens; a symlink (or anything else)
/// swapped in for it fails with `ELOOP`/`ENOTDIR` instead of leading elsewhere.
fn directory_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens a directory to open its files relative to it: one path lookup per directory
/// instead of one per file.
pub(crate) fn open_directory(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, directory_flags(), Mode::empty())?)
}

/// Opens the directory `name` inside `dir` (see [`directory_flags`]).
pub(crate) fn open_directory_at(dir: impl AsFd, name: &[u8]) -> io::Result<OwnedFd> {
    let name = std::ffi::OsStr::from_bytes(name);
    Ok(rustix::fs::openat(
        dir.as_fd(),
        name,
        directory_flags(),
        Mode::empty(),
    )?)
}

/// Opens the directory `rel` (a path relative to `root`, empty for `root` itself) one
/// component at a time, each relative to the one before and none of them followed if it
/// is a symlink. Paths longer than `PATH_MAX` open this way, and no component can be a
/// link that leads out of the tree. `.`, `..` and empty components are refused: a
/// relative path of the walk never holds them, and `..` would leave the root.
pub(crate) fn open_directory_below(root: impl AsFd, rel: &[u8]) -> io::Result<OwnedFd> {
    let mut dir = open_directory_at(root.as_fd(), b".")?;
    if rel.is_empty() {
        return Ok(dir);
    }
    for component in rel.split(|&b| b == b'/') {
        if matches!(component, b"" | b"." | b"..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "relative path with an empty, `.` or `..` component",
            ));
        }
        dir = open_directory_at(&dir, component)?;
    }
    Ok(dir)
}

/// Opens the file `name` inside `dir`, read-only, with the flags of [`open_for_reading`].
pub(crate) fn open_in_directory(dir: impl AsFd, name: &[u8]) -> io::Result<File> {
    let name = std::ffi::OsStr::from_bytes(name);
    let open = |flags| rustix::fs::openat(dir.as_fd(), name, flags, Mode::empty());
    let fd = match open(file_flags() | OFlags::NOATIME) {
        Err(rustix::io::Errno::PERM) => open(file_flags()),
        other => other,
    }?;
    Ok(File::from(fd))
}

use std::os::unix::ffi::OsStrExt as _;
