//! Other writers of a file one writer just closed. Process A opens a guarded file for
//! writing, B opens it too and closes it at once (a helper probing the file), and A
//! writes on: B's close is a close-write event, and verifying then judges a half-written
//! file (a false `no-longer-dicom`). So before a guarded file closed after a write is
//! verified, every process's open descriptors are looked at (`/proc/PID/fd`, matched by
//! device and inode, so a hard link elsewhere counts), and one open for writing
//! (`/proc/PID/fdinfo` flags `O_WRONLY` or `O_RDWR`) means the file is still being
//! written: the watcher waits for the last writer, [`MAX_WRITER_WAIT`] at most.
//!
//! One pass over `/proc` serves every file closed in one turn of the loop, and looks at
//! [`MAX_FDS_PER_WRITER_SCAN`] descriptors at most: a process holding a million
//! descriptors open must not stall the watcher. Past it, the files are verified as
//! before (a half-written file is judged, as it would have been), and the caller says so.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

/// Open descriptors of all processes looked at per pass over `/proc` (one `stat` each,
/// and a read of `fdinfo` for those of a file looked for): a few milliseconds on a
/// server; a host holding more is looked at up to here.
pub const MAX_FDS_PER_WRITER_SCAN: usize = 200_000;

/// At most one pass over `/proc` this often: files closed meanwhile wait for the next
/// pass (a rewrite of the store by ransomware closes thousands of files a second, and a
/// pass costs milliseconds), so a rewrite is verified this much later at most.
pub const WRITER_SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How long a closed file another process still holds open for writing waits before it
/// is verified anyway (and what a half-written file looks like is reported): a writer
/// that never closes must not keep a change unreported.
pub const MAX_WRITER_WAIT: Duration = Duration::from_secs(30);

/// What one pass found.
#[derive(Debug, Default)]
pub struct WriterScan {
    /// The files looked for that a process still holds open for writing, with the first
    /// such process ("name (pid N)").
    pub held: HashMap<(u64, u64), String>,
    /// The pass stopped at [`MAX_FDS_PER_WRITER_SCAN`]: the files not found held may be.
    pub truncated: bool,
}

/// The processes other than this one holding any of `wanted` (device, inode) open for
/// writing, looking at `limit` descriptors at most.
pub fn other_writers(wanted: &HashSet<(u64, u64)>, limit: usize) -> WriterScan {
    let mut scan = WriterScan::default();
    if wanted.is_empty() {
        return scan;
    }
    let own = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return scan;
    };
    let mut looked = 0usize;
    for proc in procs.flatten() {
        let name = proc.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == own || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let base = Path::new("/proc").join(pid);
        // A process that exited meanwhile, or whose descriptors we may not see: skipped.
        let Ok(fds) = std::fs::read_dir(base.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if looked >= limit {
                scan.truncated = true;
                return scan;
            }
            looked += 1;
            // `stat` through the magic link: the open file's own device and inode.
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if !meta.is_file() || !wanted.contains(&key) || scan.held.contains_key(&key) {
                continue;
            }
            if opened_for_writing(&base.join("fdinfo").join(fd.file_name())) {
                scan.held.insert(key, holder(&base, pid));
            }
        }
    }
    scan
}

/// Whether an `fdinfo` file's `flags:` (octal) say `O_WRONLY` or `O_RDWR`.
fn opened_for_writing(fdinfo: &Path) -> bool {
    use std::io::Read as _;
    // A few lines; bounded all the same (a kernel file, but read like any input).
    let mut text = Vec::new();
    let read =
        std::fs::File::open(fdinfo).and_then(|f| f.take(FDINFO_BYTES).read_to_end(&mut text));
    read.is_ok() && flags_write(&String::from_utf8_lossy(&text))
}

/// Bytes of an `fdinfo` file read: its `flags:` line is the second; the rest (inotify or
/// epoll lists) can be long and is not needed.
const FDINFO_BYTES: u64 = 4096;

/// The `flags:` line of an `fdinfo` text: access mode `O_WRONLY` (1) or `O_RDWR` (2).
fn flags_write(text: &str) -> bool {
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| matches!(flags & 0o3, 1 | 2))
}

/// "comm (pid N)" for a process, as the findings name writers.
fn holder(base: &Path, pid: &str) -> String {
    let comm = std::fs::read(base.join("comm")).unwrap_or_default();
    let comm = String::from_utf8_lossy(&comm).trim().to_string();
    if comm.is_empty() {
        format!("pid {pid}")
    } else {
        format!(
            "{} (pid {pid})",
            pacsguard_events::escape_bytes(comm.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn the_access_mode_of_fdinfo_flags_is_read() {
        assert!(flags_write("pos:\t0\nflags:\t0100001\nmnt_id:\t2\n"));
        assert!(flags_write("pos:\t0\nflags:\t02100002\n"));
        assert!(!flags_write("pos:\t0\nflags:\t0100000\n"));
        assert!(!flags_write("flags:\tnot octal\n"));
        assert!(!flags_write(""));
    }

    /// A real child process (`sleep` with the file open for writing on its stdout) is
    /// found; one holding it read-only is not; the limit stops the pass and says so.
    #[test]
    fn a_child_holding_the_file_open_for_writing_is_found_and_a_reader_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.dcm");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(b"DICM"))
            .expect("test fixture");
        let meta = std::fs::metadata(&path).expect("test fixture");
        let wanted: HashSet<(u64, u64)> = [(meta.dev(), meta.ino())].into();
        let reader = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(&path).expect("test fixture"))
            .spawn()
            .expect("sleep runs");
        let mut reader = scopeguard(reader);
        assert!(
            other_writers(&wanted, MAX_FDS_PER_WRITER_SCAN)
                .held
                .is_empty()
        );
        let writer = std::process::Command::new("sleep")
            .arg("30")
            .stdout(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("test fixture"),
            )
            .spawn()
            .expect("sleep runs");
        let mut writer = scopeguard(writer);
        let scan = other_writers(&wanted, MAX_FDS_PER_WRITER_SCAN);
        let found = scan.held.get(&(meta.dev(), meta.ino()));
        assert!(
            found.is_some_and(|h| h.starts_with("sleep (pid ")),
            "{scan:?}"
        );
        assert!(other_writers(&wanted, 0).truncated);
        writer.0.kill().ok();
        reader.0.kill().ok();
    }

    /// Kills the child when the test ends, whatever happens.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn scopeguard(child: std::process::Child) -> Child {
        Child(child)
    }
}
