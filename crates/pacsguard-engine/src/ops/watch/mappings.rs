//! Writes through a shared memory mapping: a process opens a guarded file, maps it shared
//! and writable, closes it, and then rewrites it through the mapping. The kernel reports
//! nothing (no write, no close) until the mapping goes away, which may be at the
//! process's exit, long after the whole store is encrypted.
//!
//! So a thread looks, every [`MAPPING_SCAN_INTERVAL`], at every process's mappings
//! (`/proc/PID/maps`) for shared writable mappings of files inside the roots, and hands
//! each such file (with the process holding it) to the watcher, which re-verifies it
//! while the mapping is held: a rewrite is found within seconds, and the process named.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use super::Msg;

/// How often the mappings of every process are looked at: how long a rewrite through a
/// held mapping can go unseen.
pub const MAPPING_SCAN_INTERVAL: Duration = Duration::from_secs(2);

/// Bytes of one process's `maps` read: a process with more mappings than this (a hostile
/// one can make millions) is looked at up to here, and the rest is said in the notice.
pub const MAX_MAPS_BYTES: u64 = 8 << 20;

/// Mapped files handed to the watcher per scan: a process mapping the whole store is
/// re-verified in turns, and its first files are enough to raise the alarm.
pub const MAX_MAPPED_FILES_PER_SCAN: usize = 1000;

/// A file inside a root that a process holds mapped shared and writable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    pub path: PathBuf,
    /// "name (pid N)".
    pub holder: String,
}

/// The shared writable file mappings in one `maps` text, whose paths `wanted` accepts.
fn parse_maps(text: &str, wanted: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode pathname
        let mut rest = line;
        let mut fields = [""; 5];
        for field in &mut fields {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            *field = &rest[..end];
            rest = &rest[end..];
        }
        let perms = fields[1].as_bytes();
        let (Some(&w), Some(&s)) = (perms.get(1), perms.get(3)) else {
            continue;
        };
        let path = rest.trim_start();
        if w != b'w' || s != b's' || !path.starts_with('/') {
            continue;
        }
        // A file deleted while mapped is named "... (deleted)": nothing left to verify
        // at that path (its removal has its own event).
        if path.ends_with(" (deleted)") {
            continue;
        }
        let path = PathBuf::from(path);
        if wanted(&path) && !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

/// Every shared writable mapping of a wanted file, in every process but this one.
pub fn scan(wanted: &dyn Fn(&Path) -> bool) -> Vec<MappedFile> {
    let own = std::process::id();
    let mut mapped = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return mapped;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        // Processes come and go: one gone, or not ours to read, is simply skipped.
        let Ok(file) = std::fs::File::open(format!("/proc/{pid}/maps")) else {
            continue;
        };
        let mut text = String::new();
        if file.take(MAX_MAPS_BYTES).read_to_string(&mut text).is_err() {
            continue;
        }
        let paths = parse_maps(&text, wanted);
        if paths.is_empty() {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| pacsguard_events::escape_bytes(c.trim_end().as_bytes()))
            .unwrap_or_else(|_| "a process that has exited".to_string());
        for path in paths {
            if mapped.len() == MAX_MAPPED_FILES_PER_SCAN {
                return mapped;
            }
            mapped.push(MappedFile {
                path,
                holder: format!("{comm} (pid {pid}) through a shared writable mapping"),
            });
        }
    }
    mapped
}

/// The thread: scans until `stop`, sending what it finds.
pub fn run(roots: Vec<PathBuf>, home: PathBuf, stop: Arc<AtomicBool>, tx: SyncSender<Msg>) {
    let wanted = move |path: &Path| {
        !path.starts_with(&home) && roots.iter().any(|root| path.starts_with(root))
    };
    while !stop.load(Ordering::Relaxed) {
        let mapped = scan(&wanted);
        if !mapped.is_empty() && tx.send(Msg::Mapped(mapped)).is_err() {
            return;
        }
        let mut slept = Duration::ZERO;
        while slept < MAPPING_SCAN_INTERVAL && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            slept += Duration::from_millis(100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shared_writable_file_mappings_inside_the_roots_count() {
        let text = "\
55d0c0a00000-55d0c0a21000 r-xp 00000000 08:01 1311 /usr/bin/python3.11
7f10a0000000-7f10a0010000 rw-s 00000000 08:01 4242 /srv/pacs/a b.dcm
7f10a0010000-7f10a0020000 rw-s 00000000 08:01 4242 /srv/pacs/a b.dcm
7f10a0020000-7f10a0030000 r--s 00000000 08:01 4243 /srv/pacs/read-only.dcm
7f10a0030000-7f10a0040000 rw-p 00000000 08:01 4244 /srv/pacs/private.dcm
7f10a0040000-7f10a0050000 rw-s 00000000 08:01 4245 /srv/pacs/gone.dcm (deleted)
7f10a0050000-7f10a0060000 rw-s 00000000 00:01 4246 /dev/zero
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0    [stack]
7f10a0060000-7f10a0070000 rw-s 00000000 08:01 4247 /elsewhere/x.dcm
bad line
";
        let wanted = |p: &Path| p.starts_with("/srv/pacs");
        assert_eq!(
            parse_maps(text, &wanted),
            vec![PathBuf::from("/srv/pacs/a b.dcm")]
        );
    }

    #[test]
    fn a_process_holding_a_shared_writable_mapping_is_found() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path().canonicalize().expect("test fixture");
        let file = root.join("mapped.dcm");
        std::fs::write(&file, vec![0u8; 8192]).expect("test fixture");
        // python3 maps the file shared and writable, closes it and holds the mapping.
        let script = format!(
            "import mmap,os,sys,time\nfd=os.open('{}',os.O_RDWR)\nm=mmap.mmap(fd,0)\nos.close(fd)\nprint('mapped',flush=True)\ntime.sleep(30)\n",
            file.display()
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("test fixture");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("test fixture");
        assert_eq!(line.trim(), "mapped");
        let inside = |p: &Path| p.starts_with(&root);
        let found = scan(&inside);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found
                .iter()
                .any(|m| m.path == file && m.holder.contains(&format!("pid {}", child.id()))),
            "{found:?}"
        );
    }
}
