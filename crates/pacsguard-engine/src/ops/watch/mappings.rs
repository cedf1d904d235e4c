//! Writes through a shared memory mapping: a process opens a guarded file, maps it shared
//! and writable, closes it, and then rewrites it through the mapping. The kernel reports
//! nothing (no write, no close) until the mapping goes away, which may be at the
//! process's exit, long after the whole store is encrypted.
//!
//! So a thread looks, every [`MAPPING_SCAN_INTERVAL`], at every process's mappings
//! (`/proc/PID/maps`) for shared writable mappings of guarded files, and hands each such
//! file (with the process holding it) to the watcher, which re-verifies it while the
//! mapping is held: a rewrite is found within seconds, and the process named. A mapping
//! is matched by the (device, inode) `maps` gives, against every guarded file's, not by
//! its path: a hard link or a bind mount outside the roots names the same file.
//!
//! At most [`MAX_MAPPED_FILES_PER_SCAN`] mappings are handed over per scan; when there are
//! more (a hostile process can map thousands of decoys), the next scan resumes where this
//! one stopped, so every mapping is looked at in turn, and the watcher reports the limit.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::Msg;
use super::writers::Look;

/// How often the mappings of every process are looked at: how long a rewrite through a
/// held mapping can go unseen.
pub const MAPPING_SCAN_INTERVAL: Duration = Duration::from_secs(2);

/// How often, between two scans, the files the last scan found mapped are looked at
/// (size, times, their first and last bytes: [`Look`]): a rewrite through a mapping
/// moves them (the first write to a clean page updates the times; the ends change when
/// a whole file is rewritten), and is re-verified then, not up to
/// [`MAPPING_SCAN_INTERVAL`] later. A look is a `stat` and two small reads per mapped
/// file, and there is none while no guarded file is mapped.
pub const MAPPED_LOOK_INTERVAL: Duration = Duration::from_millis(200);

/// Bytes of one process's `maps` read: a process with more mappings than this (a hostile
/// one can make millions) is looked at up to here, and the rest is said in the notice.
pub const MAX_MAPS_BYTES: u64 = 8 << 20;

/// Mapped files handed to the watcher per scan: a process mapping the whole store is
/// re-verified in turns, and its first files are enough to raise the alarm.
pub const MAX_MAPPED_FILES_PER_SCAN: usize = 1000;

/// A guarded file that a process holds mapped shared and writable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// The guarded path.
    pub path: PathBuf,
    /// "name (pid N) through a shared writable mapping[ of PATH]".
    pub holder: String,
}

/// What one scan found.
#[derive(Debug)]
pub struct Scan {
    pub mapped: Vec<MappedFile>,
    /// Shared writable mappings of guarded files seen in all (more than handed over
    /// when over [`MAX_MAPPED_FILES_PER_SCAN`]).
    pub total: usize,
}

/// The guarded path of a mapping: `wanted` takes the mapping's path and (device, inode).
pub type Wanted<'a> = dyn Fn(&Path, (u64, u64)) -> Option<PathBuf> + 'a;

/// The device number `stat` gives for the `major:minor` (hex) that `maps` prints.
fn device(text: &str) -> Option<u64> {
    let (major, minor) = text.split_once(':')?;
    let major = u64::from_str_radix(major, 16).ok()?;
    let minor = u64::from_str_radix(minor, 16).ok()?;
    Some(
        ((major & 0xffff_f000) << 32)
            | ((major & 0x0000_0fff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0x0000_00ff),
    )
}

/// The shared writable file mappings in one `maps` text that `wanted` takes for guarded
/// files: (guarded path, path mapped).
fn parse_maps(text: &str, wanted: &Wanted<'_>) -> Vec<(PathBuf, PathBuf)> {
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
        // A file deleted while mapped is named "... (deleted)": the path is gone, but
        // the inode may still be a guarded file's under another name.
        let (path, by_inode_only) = match path.strip_suffix(" (deleted)") {
            Some(gone) => (PathBuf::from(gone), true),
            None => (PathBuf::from(path), false),
        };
        let (Some(dev), Ok(ino)) = (device(fields[3]), fields[4].parse::<u64>()) else {
            continue;
        };
        let named = if by_inode_only { Path::new("") } else { &path };
        if let Some(guarded) = wanted(named, (dev, ino))
            && !found.iter().any(|(g, _)| *g == guarded)
        {
            found.push((guarded, path));
        }
    }
    found
}

/// The shared writable mappings of guarded files in every process but this one, in
/// process order, from the `skip`-th on, at most [`MAX_MAPPED_FILES_PER_SCAN`].
pub fn scan(wanted: &Wanted<'_>, skip: usize) -> Scan {
    let own = std::process::id();
    let mut found = Scan {
        mapped: Vec::new(),
        total: 0,
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    let mut pids: Vec<u32> = procs
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&pid| pid != own)
        .collect();
    pids.sort_unstable();
    for pid in pids {
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
        for (guarded, mapped) in paths {
            let ordinal = found.total;
            found.total += 1;
            if ordinal < skip || found.mapped.len() == MAX_MAPPED_FILES_PER_SCAN {
                continue;
            }
            let through = if mapped == guarded {
                String::new()
            } else {
                format!(" of {}", pacsguard_events::escape_path(&mapped))
            };
            found.mapped.push(MappedFile {
                path: guarded,
                holder: format!("{comm} (pid {pid}) through a shared writable mapping{through}"),
            });
        }
    }
    found
}

/// Where the next scan starts: past what this one handed over, or from the start once
/// everything has been.
fn next_skip(skip: usize, handed: usize, total: usize) -> usize {
    if skip + handed < total {
        skip + handed
    } else {
        0
    }
}

/// Every guarded file by (device, inode) (the watcher's index).
pub type InodeIndex = Arc<RwLock<super::inodes::Inodes>>;

/// The thread: scans until `stop`, sending what it finds.
pub fn run(
    roots: Vec<PathBuf>,
    home: PathBuf,
    inodes: InodeIndex,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Msg>,
) {
    let wanted = move |path: &Path, inode: (u64, u64)| {
        if path.starts_with(&home) {
            return None;
        }
        if roots.iter().any(|root| path.starts_with(root)) {
            return Some(path.to_path_buf());
        }
        inodes.read().ok()?.holding(inode).into_iter().next()
    };
    let mut skip = 0;
    while !stop.load(Ordering::Relaxed) {
        let found = scan(&wanted, skip);
        let handed = found.mapped.len();
        // Looked at before they are handed over: a write after the watcher's
        // re-verification is then a change at the next look.
        let mut held: Vec<(MappedFile, Option<Look>)> = found
            .mapped
            .iter()
            .map(|m| (m.clone(), Look::of(&m.path)))
            .collect();
        if handed > 0 && tx.send(Msg::Mapped(found.mapped, found.total)).is_err() {
            return;
        }
        skip = next_skip(skip, handed, found.total);
        let mut slept = Duration::ZERO;
        while slept < MAPPING_SCAN_INTERVAL && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(MAPPED_LOOK_INTERVAL);
            slept += MAPPED_LOOK_INTERVAL;
            let changed = changed_since(&mut held);
            let count = changed.len();
            if count > 0 && tx.send(Msg::Mapped(changed, count)).is_err() {
                return;
            }
        }
    }
}

/// The held files whose look moved since the last one (their look updated): a rewrite
/// through a mapping found here is re-verified at once, not at the next scan.
fn changed_since(held: &mut [(MappedFile, Option<Look>)]) -> Vec<MappedFile> {
    let mut changed = Vec::new();
    for (file, look) in held.iter_mut() {
        let now = Look::of(&file.path);
        if now != *look {
            *look = now;
            changed.push(file.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rewrite through a real shared mapping (python3's mmap, held open) is a change
    /// of the file's look; a look with nothing written is none.
    #[test]
    fn a_write_through_a_held_mapping_moves_the_look_between_scans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.dcm");
        std::fs::write(&path, vec![0u8; 64 * 1024]).expect("test fixture");
        let file = MappedFile {
            path: path.clone(),
            holder: "python3".into(),
        };
        let mut held = vec![(file.clone(), Look::of(&path))];
        assert!(changed_since(&mut held).is_empty());
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import mmap, os, sys\n\
                 fd = os.open(sys.argv[1], os.O_RDWR)\n\
                 m = mmap.mmap(fd, 0)\n\
                 os.close(fd)\n\
                 m[:] = os.urandom(len(m))\n\
                 m.flush()\n",
            ])
            .arg(&path)
            .status()
            .expect("python3 runs");
        assert!(status.success());
        assert_eq!(changed_since(&mut held), vec![file]);
        assert!(changed_since(&mut held).is_empty(), "said once");
    }

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
        let wanted = |p: &Path, _| p.starts_with("/srv/pacs").then(|| p.to_path_buf());
        let a = PathBuf::from("/srv/pacs/a b.dcm");
        assert_eq!(parse_maps(text, &wanted), vec![(a.clone(), a)]);
        // By inode: a mapping of a guarded file under a path outside every root.
        let guarded = PathBuf::from("/srv/pacs/x.dcm");
        let by_inode = |_: &Path, inode| (inode == (0x801, 4247)).then(|| guarded.clone());
        assert_eq!(
            parse_maps(text, &by_inode),
            vec![(guarded.clone(), PathBuf::from("/elsewhere/x.dcm"))]
        );
        assert_eq!(device("fd:01"), Some(0xfd01));
        assert_eq!(device("103:2"), Some((0x103 << 8) | 2));
        assert_eq!(device("8:1ff"), Some((0x1 << 12 << 8) | 0x800 | 0xff));
        assert_eq!(device("zz"), None);
    }

    #[test]
    fn scans_past_the_limit_resume_where_the_last_stopped() {
        let m = MAX_MAPPED_FILES_PER_SCAN;
        assert_eq!(next_skip(0, m, m * 2 + 5), m);
        assert_eq!(next_skip(m, m, m * 2 + 5), m * 2);
        assert_eq!(next_skip(m * 2, 5, m * 2 + 5), 0);
        assert_eq!(next_skip(0, 3, 3), 0);
        // Fewer mappings than the scan expected (processes ended): from the start.
        assert_eq!(next_skip(m * 2, 0, 10), 0);
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
        let inside = |p: &Path, _| p.starts_with(&root).then(|| p.to_path_buf());
        let found = scan(&inside, 0).mapped;
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
