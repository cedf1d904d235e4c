//! The single place where pacsguard-fs opens a file, and only for reading.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Opens `path` read-only without following a final symlink and without blocking on a
/// FIFO or device swapped in after the walk. `O_NOATIME` keeps even the access time of the
/// guarded file untouched where the kernel allows it (owner or root); elsewhere we retry
/// without it rather than fail.
#[allow(clippy::disallowed_methods)] // read-only by the flags below; see clippy.toml
pub(crate) fn open_for_reading(path: &Path) -> io::Result<File> {
    let base = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let open = |flags| OpenOptions::new().read(true).custom_flags(flags).open(path);
    match open(base | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(base),
        other => other,
    }
}
