//! A new hard link to a guarded file, made outside the guarded trees (`ln
//! /srv/pacs/a.dcm /tmp/x`), is the first step of writing the file where no directory
//! watch sees it. The kernel tells only watchers *of the file itself* that its link count
//! changed (inotify's watch on the parent directory hears nothing), and fanotify reports
//! attribute changes only to a group that identifies files by handle
//! (`FAN_REPORT_FID`), which carries no descriptor and no path.
//!
//! So a second fanotify group marks each file system for `FAN_ATTRIB` with file handles.
//! A handle's layout belongs to the file system (ext4 and most others put a 32-bit inode
//! number first, tmpfs puts it second, XFS and btrfs put a 64-bit one first), so each
//! event yields the few inode numbers its handle can hold; the watcher re-verifies the
//! guarded files with those numbers on the marked devices. A wrong guess costs one
//! `stat` of a file that did not change, never a finding; the right one finds the link
//! count risen (or `chattr`, `chmod`, a changed owner) at once.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

/// `FAN_REPORT_FID` (Linux 5.1): events carry a file handle instead of a descriptor.
const FAN_REPORT_FID: u32 = 0x0000_0200;
/// `FAN_EVENT_INFO_TYPE_FID`: an information record holding a file handle.
const INFO_TYPE_FID: u8 = 1;
/// `struct fanotify_event_metadata`: event_len u32, vers u8, reserved u8, metadata_len
/// u16, mask u64, fd i32, pid i32.
const METADATA_LEN: usize = 24;
/// `struct fanotify_event_info_header` (info_type u8, pad u8, len u16) and the file
/// system id (8 bytes) before the handle.
const INFO_HEADER_LEN: usize = 4;
const FSID_LEN: usize = 8;
/// `struct file_handle`: handle_bytes u32, handle_type i32, then the handle.
const HANDLE_HEADER_LEN: usize = 8;
/// `FAN_Q_OVERFLOW`.
const Q_OVERFLOW: u64 = 0x0000_4000;

/// Bytes read from the group at once.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// What one event said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttribNotice {
    /// The attributes (link count, mode, owner, flags) of a file changed; it is one of
    /// the files with these inode numbers on a marked file system.
    Changed { inodes: Vec<u64> },
    /// The queue overflowed: attribute changes were dropped.
    Overflow,
}

/// A fanotify group reporting attribute changes anywhere on the marked file systems.
#[derive(Debug)]
pub struct AttribWatcher {
    fanotify: Arc<Fanotify>,
}

impl AttribWatcher {
    /// Fails with `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` on a kernel before 5.1.
    pub fn new() -> Result<AttribWatcher, Errno> {
        let fanotify = Fanotify::init(
            InitFlags::FAN_CLASS_NOTIF
                | InitFlags::FAN_CLOEXEC
                | InitFlags::from_bits_retain(FAN_REPORT_FID),
            EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC,
        )?;
        Ok(AttribWatcher {
            fanotify: Arc::new(fanotify),
        })
    }

    /// The fanotify descriptor, for a look at how many bytes of events the kernel still
    /// holds (`FIONREAD`) when the watcher stops.
    pub fn queue_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.fanotify.as_ref())
    }

    /// Marks the file system holding `dir` for attribute changes.
    pub fn mark_filesystem(&self, dir: &Path) -> Result<(), Errno> {
        let handle = std::fs::File::open(dir)
            .map_err(|e| e.raw_os_error().map_or(Errno::EINVAL, Errno::from_raw))?;
        self.fanotify.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_FILESYSTEM,
            MaskFlags::FAN_ATTRIB,
            &handle,
            None::<&Path>,
        )
    }

    /// Starts the thread that reads events and hands each batch to `deliver` (which
    /// returns false to stop the thread).
    pub fn spawn_reader(
        &self,
        deliver: impl Fn(Result<Vec<AttribNotice>, Errno>) -> bool + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let fanotify = Arc::clone(&self.fanotify);
        std::thread::Builder::new()
            .name("fanotify-attrib".into())
            .spawn(move || {
                let mut buffer = vec![0u8; READ_BUFFER_BYTES];
                loop {
                    let read = match nix::unistd::read(fanotify.as_ref(), &mut buffer) {
                        Ok(read) => read,
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            deliver(Err(e));
                            return;
                        }
                    };
                    let batch = parse_events(buffer.get(..read).unwrap_or_default());
                    if !batch.is_empty() && !deliver(Ok(batch)) {
                        return;
                    }
                }
            })
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The events in what one `read` returned. Every length comes from the kernel, and is
/// still checked against the buffer: a malformed event ends the batch, never a panic.
fn parse_events(mut bytes: &[u8]) -> Vec<AttribNotice> {
    let mut notices = Vec::new();
    while bytes.len() >= METADATA_LEN {
        let Some(event_len) = u32_at(bytes, 0).and_then(|n| usize::try_from(n).ok()) else {
            break;
        };
        let (Some(metadata_len), Some(mask)) = (u16_at(bytes, 6), u64_at(bytes, 8)) else {
            break;
        };
        if event_len < METADATA_LEN || event_len > bytes.len() {
            break;
        }
        let event = &bytes[..event_len];
        bytes = &bytes[event_len..];
        if mask & Q_OVERFLOW != 0 {
            notices.push(AttribNotice::Overflow);
            continue;
        }
        let mut info = event.get(usize::from(metadata_len)..).unwrap_or_default();
        while info.len() >= INFO_HEADER_LEN {
            let (Some(&kind), Some(len)) = (info.first(), u16_at(info, 2)) else {
                break;
            };
            let len = usize::from(len);
            if len < INFO_HEADER_LEN || len > info.len() {
                break;
            }
            let record = &info[..len];
            info = &info[len..];
            if kind != INFO_TYPE_FID {
                continue;
            }
            let handle_at = INFO_HEADER_LEN + FSID_LEN;
            let Some(handle_bytes) =
                u32_at(record, handle_at).and_then(|n| usize::try_from(n).ok())
            else {
                continue;
            };
            let start = handle_at + HANDLE_HEADER_LEN;
            let Some(handle) = record.get(start..start.saturating_add(handle_bytes)) else {
                continue;
            };
            let inodes = inode_candidates(handle);
            if !inodes.is_empty() {
                notices.push(AttribNotice::Changed { inodes });
            }
        }
    }
    notices
}

/// The inode numbers a file handle can hold: a 32-bit number first (ext2/3/4 and the
/// generic export operations), second (tmpfs: generation first), or a 64-bit one first
/// (XFS with 64-bit inodes, btrfs).
fn inode_candidates(handle: &[u8]) -> Vec<u64> {
    let mut inodes: Vec<u64> = [
        u32_at(handle, 0).map(u64::from),
        u32_at(handle, 4).map(u64::from),
        u64_at(handle, 0),
    ]
    .into_iter()
    .flatten()
    .filter(|&ino| ino != 0)
    .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    fn event(mask: u64, handle: &[u8]) -> Vec<u8> {
        let info_len = INFO_HEADER_LEN + FSID_LEN + HANDLE_HEADER_LEN + handle.len();
        let total = METADATA_LEN + info_len;
        let mut e = Vec::new();
        e.extend_from_slice(&u32::try_from(total).expect("small").to_ne_bytes());
        e.extend_from_slice(&[3, 0]);
        e.extend_from_slice(&u16::try_from(METADATA_LEN).expect("small").to_ne_bytes());
        e.extend_from_slice(&mask.to_ne_bytes());
        e.extend_from_slice(&(-1i32).to_ne_bytes());
        e.extend_from_slice(&42i32.to_ne_bytes());
        e.push(INFO_TYPE_FID);
        e.push(0);
        e.extend_from_slice(&u16::try_from(info_len).expect("small").to_ne_bytes());
        e.extend_from_slice(&[7; FSID_LEN]);
        e.extend_from_slice(&u32::try_from(handle.len()).expect("small").to_ne_bytes());
        e.extend_from_slice(&1i32.to_ne_bytes());
        e.extend_from_slice(handle);
        e
    }

    #[test]
    fn events_are_parsed_totally() {
        let mut handle = 1234u32.to_ne_bytes().to_vec();
        handle.extend_from_slice(&99u32.to_ne_bytes());
        let mut bytes = event(0x4, &handle);
        bytes.extend(event(Q_OVERFLOW, &[]));
        let notices = parse_events(&bytes);
        assert_eq!(notices.len(), 2, "{notices:?}");
        let AttribNotice::Changed { inodes } = &notices[0] else {
            panic!("{notices:?}");
        };
        assert!(inodes.contains(&1234) && inodes.contains(&99), "{inodes:?}");
        assert_eq!(notices[1], AttribNotice::Overflow);
        // Every truncation of a well-formed batch: no panic, never more than was there.
        for cut in 0..bytes.len() {
            assert!(parse_events(&bytes[..cut]).len() <= 2);
        }
        // Lengths that lie.
        let mut lying = event(0x4, &handle);
        lying[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_events(&lying).is_empty());
        let mut lying = event(0x4, &handle);
        lying[METADATA_LEN + 2..METADATA_LEN + 4].copy_from_slice(&0u16.to_ne_bytes());
        assert!(parse_events(&lying).is_empty());
        let mut lying = event(0x4, &handle);
        let at = METADATA_LEN + INFO_HEADER_LEN + FSID_LEN;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_events(&lying).is_empty());
    }

    /// The real kernel: `ln` elsewhere on the file system raises the file's link count,
    /// and the event names its inode among the candidates.
    #[test]
    fn a_new_hard_link_is_reported_with_the_files_inode() {
        let Ok(watcher) = AttribWatcher::new() else {
            assert!(!nix::unistd::geteuid().is_root(), "root must get fanotify");
            return;
        };
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path().canonicalize().expect("test fixture");
        std::fs::create_dir_all(root.join("guarded")).expect("test fixture");
        let file = root.join("guarded/a.dcm");
        std::fs::write(&file, b"DICM").expect("test fixture");
        let ino = std::fs::metadata(&file).expect("test fixture").ino();
        watcher.mark_filesystem(&root).expect("mark");
        let (tx, rx) = mpsc::channel();
        watcher
            .spawn_reader(move |b| tx.send(b).is_ok())
            .expect("reader");
        let status = std::process::Command::new("ln")
            .arg(&file)
            .arg(root.join("elsewhere"))
            .status()
            .expect("ln runs");
        assert!(status.success());
        let end = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while Instant::now() < end {
            if let Ok(Ok(batch)) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.extend(batch);
            }
            if seen
                .iter()
                .any(|n| matches!(n, AttribNotice::Changed { inodes } if inodes.contains(&ino)))
            {
                return;
            }
        }
        panic!("no attribute change for inode {ino}: {seen:?}");
    }
}
