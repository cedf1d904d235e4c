//! Putting one file back: the only code that writes into a guarded tree.
//!
//! The copy is written to a new temporary file beside the damaged one (`O_EXCL`, in the
//! same directory, reached from the root one component at a time without following a
//! link), synced, read back and verified against the profile's digest, given the
//! profile's owner, mode, extended attributes and modification time, and only then
//! renamed over the damaged file, if that is still the file the report saw (same device,
//! inode, size, mtime and ctime, looked at again just before the rename) or, for a missing file,
//! still missing (`RENAME_NOREPLACE`). `rename` is atomic: whoever reads the path sees the
//! damaged file or the restored one, never a mix. Every temporary file is journaled
//! before it is created, so an interrupted run's leftovers are removed by the next.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use pacsguard_fs::{Entry, HashAlgorithm, Meta, XattrValue};
use pacsguard_profile::profile_digest;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use super::journal::{Journal, TEMP_SUFFIX};
use crate::error::EngineError;

/// What the report saw at the damaged file's path: `None` when nothing was there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: pacsguard_fs::Timestamp,
    /// The change time: a file rewritten in place to its old size with its mtime put back
    /// (`touch -d`, `cp -p` over it) keeps everything above, but no one can set this back.
    pub ctime: pacsguard_fs::Timestamp,
}

impl Seen {
    pub fn of(meta: &Meta) -> Seen {
        Seen {
            dev: meta.dev,
            ino: meta.ino,
            size: meta.size,
            mtime: meta.mtime,
            ctime: meta.ctime,
        }
    }
}

/// One file to put back.
pub struct Target<'a> {
    pub root: &'a Path,
    /// The root's profile: the directories on the way, if they must be made again.
    pub base: &'a pacsguard_profile::RootProfile,
    pub rel: &'a [u8],
    pub profiled: &'a Entry,
    pub algorithm: HashAlgorithm,
    /// Hashed as DICOM header and Pixel Data (the profile recorded DICOM facts).
    pub split: bool,
    pub seen: Option<Seen>,
}

/// Why a file was not restored: this file only (the run goes on), the backup copy it
/// was read from (another copy with the profile's digest may serve), or the run itself
/// (the journal or the audit trail cannot be written: stop).
#[derive(Debug)]
pub enum Failure {
    File(String),
    /// The copy read was not what the index saw: unreadable, of another size or digest
    /// (changed since it was searched, a failing backup disk).
    Copy(String),
    Fatal(EngineError),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::Fatal(e)
    }
}

fn file_failure(what: &str) -> impl Fn(rustix::io::Errno) -> Failure + '_ {
    move |e| Failure::File(format!("{what}: {}", io::Error::from(e)))
}

/// Restores `target` from `copy`; `placing` is called (to record it durably) after the
/// copy is verified and just before it is renamed into place. Returns the restored file's
/// metadata.
pub fn restore(
    target: &Target<'_>,
    copy: &mut dyn Read,
    journal: &mut Journal,
    placing: &mut dyn FnMut(&Path) -> Result<(), EngineError>,
    created: &mut Vec<(Vec<u8>, Meta)>,
) -> Result<Meta, Failure> {
    let (parent, name) = split_rel(target.rel);
    let dir = open_dir_below(target, parent, journal, created)?;
    let path = pacsguard_profile::RootProfile::absolute_of(target.root, target.rel);
    let temp_name = temp_name(name)?;
    let temp_path = path.with_file_name(std::ffi::OsStr::from_bytes(&temp_name));
    journal.temp(&temp_path)?;
    let fd = rustix::fs::openat(
        &dir,
        temp_name.as_slice(),
        // Read and write: the copy is verified through this descriptor, never by name.
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(file_failure("cannot create a temporary file beside it"))?;
    let result = write_verify_place(
        target, &dir, &fd, &temp_name, name, copy, journal, &path, placing,
    );
    if result.is_err() && is_ours(&dir, &temp_name, &fd) {
        // Ours, journaled, never renamed: removing it harms nothing. (Whatever else was
        // put at its name is not ours to remove.)
        let _ = rustix::fs::unlinkat(&dir, temp_name.as_slice(), AtFlags::empty());
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn write_verify_place(
    target: &Target<'_>,
    dir: &OwnedFd,
    fd: &OwnedFd,
    temp_name: &[u8],
    name: &[u8],
    copy: &mut dyn Read,
    journal: &mut Journal,
    path: &Path,
    placing: &mut dyn FnMut(&Path) -> Result<(), EngineError>,
) -> Result<Meta, Failure> {
    let profiled = target.profiled;
    let mut file = File::from(fd.try_clone().map_err(|e| Failure::File(e.to_string()))?);
    let copied = io::copy(
        &mut copy.take(profiled.meta.size.saturating_add(1)),
        &mut file,
    )
    .and_then(|n| file.sync_all().map(|()| n))
    .map_err(|e| Failure::Copy(format!("cannot copy the backup copy: {e}")))?;
    if copied != profiled.meta.size {
        return Err(Failure::Copy(format!(
            "the backup copy has {copied} bytes, the profile {}",
            profiled.meta.size
        )));
    }
    verify(target, &mut file)?;
    drop(file);
    set_metadata(fd, profiled)?;
    rustix::fs::fsync(fd).map_err(file_failure("cannot sync the copy"))?;
    let stat = rustix::fs::fstat(fd).map_err(file_failure("cannot stat the copy"))?;
    journal.placing(path, stat.st_dev, stat.st_ino)?;
    placing(path)?;
    // The name is only a name: whoever can write the directory (malware still running)
    // can put another file there. Only our verified inode is renamed into place.
    if !is_ours(dir, temp_name, fd) {
        return Err(Failure::File(
            "the verified copy was replaced at its temporary name; nothing was put in place (run recover again)"
                .to_owned(),
        ));
    }
    // The path again, just before the rename: still what the report saw? Held open (no
    // access, no link followed) so that its change time after the rename can be recorded.
    let changed = || {
        Failure::File(
            "the file changed since the report read it; it was left as it is (run recover again)"
                .to_owned(),
        )
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match (
        target.seen,
        rustix::fs::openat(dir, name, flags, Mode::empty()),
    ) {
        (None, Err(rustix::io::Errno::NOENT)) => {
            rustix::fs::renameat_with(dir, temp_name, dir, name, RenameFlags::NOREPLACE).map_err(
                file_failure("cannot rename the copy into place (something appeared at the path)"),
            )?;
        }
        (Some(seen), Ok(old)) => {
            let now = rustix::fs::fstat(&old).map_err(|_| changed())?;
            let ctime = pacsguard_fs::Timestamp {
                sec: now.st_ctime,
                nsec: u32::try_from(now.st_ctime_nsec).unwrap_or(u32::MAX),
            };
            // A hard link's other name restored earlier in this run changed its link
            // count, hence its change time: that one change is ours.
            let ctime_seen = ctime == seen.ctime
                || journal.relinked_ctime(now.st_dev, now.st_ino) == Some(ctime);
            if !(now.st_dev == seen.dev
                && now.st_ino == seen.ino
                && u64::try_from(now.st_size).ok() == Some(seen.size)
                && now.st_mtime == seen.mtime.sec
                && u32::try_from(now.st_mtime_nsec).ok() == Some(seen.mtime.nsec)
                && ctime_seen)
            {
                return Err(changed());
            }
            rustix::fs::renameat(dir, temp_name, dir, name)
                .map_err(file_failure("cannot rename the copy into place"))?;
            if let Ok(after) = rustix::fs::fstat(&old)
                && after.st_nlink > 0
            {
                journal.relinked(
                    after.st_dev,
                    after.st_ino,
                    pacsguard_fs::Timestamp {
                        sec: after.st_ctime,
                        nsec: u32::try_from(after.st_ctime_nsec).unwrap_or(u32::MAX),
                    },
                );
            }
        }
        _ => return Err(changed()),
    }
    rustix::fs::fsync(dir).map_err(file_failure("cannot sync the directory"))?;
    // The rename takes a name, not our inode: if the name was swapped in the instant
    // before it, what is at the path now is not the restored copy, and is not called so.
    if !is_ours(dir, name, fd) {
        return Err(Failure::File(
            "the copy was replaced at its temporary name just before the rename: the file now at the path is not the restored copy (run recover again)"
                .to_owned(),
        ));
    }
    let restored = rustix::fs::fstat(fd).map_err(file_failure("cannot stat the restored file"))?;
    Ok(meta_of(&restored, profiled))
}

/// Makes `other` (a name this run restored as a file of its own, the inode `restored`)
/// a hard link of `canonical` (an intact or restored name of the same profiled inode,
/// the inode `identity`), as the profile records them: a hard-linked pair comes back as
/// one inode, not split in two. The link is made at a journaled temporary name beside
/// `other`, checked to be `identity` (no link followed: `linkat` without
/// `AT_SYMLINK_FOLLOW`), its content read through that link and compared with the
/// profile's digest (`target`, the profile of `other`: the names of one inode share it),
/// and renamed over `other` only if that is still our restored file. An intact name is
/// the profile's inode, not necessarily the profile's content: written in place since
/// the report, linking to it would throw away the verified copy for the changed bytes.
pub fn relink(
    target: &Target<'_>,
    canonical: &[u8],
    identity: (u64, u64),
    restored: (u64, u64),
    journal: &mut Journal,
) -> Result<(), Failure> {
    let (root, other) = (target.root, target.rel);
    let open_parent = |rel: &[u8]| open_parent(root, rel);
    let identity_of = |dir: &OwnedFd, name: &[u8]| {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .filter(|s| {
                rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::RegularFile
            })
            .map(|s| (s.st_dev, s.st_ino))
    };
    let (cdir, cname) = open_parent(canonical)?;
    let (odir, oname) = open_parent(other)?;
    if identity_of(&cdir, &cname) != Some(identity) {
        return Err(Failure::File(
            "the other name of its hard link changed since it was checked; left as a separate file"
                .to_owned(),
        ));
    }
    let temp = temp_name(&oname)?;
    let path = pacsguard_profile::RootProfile::absolute_of(root, other);
    journal.temp(&path.with_file_name(std::ffi::OsStr::from_bytes(&temp)))?;
    rustix::fs::linkat(
        &cdir,
        cname.as_slice(),
        &odir,
        temp.as_slice(),
        AtFlags::empty(),
    )
    .map_err(file_failure("cannot link the other name of its hard link"))?;
    let ours = identity_of(&odir, &temp) == Some(identity);
    let still = identity_of(&odir, &oname) == Some(restored);
    if !(ours && still) {
        if ours {
            let _ = rustix::fs::unlinkat(&odir, temp.as_slice(), AtFlags::empty());
        }
        return Err(Failure::File(
            "the restored file or its link changed while it was linked; left as a separate file"
                .to_owned(),
        ));
    }
    // Read through the new link itself (no name can be swapped under the descriptor).
    let content = rustix::fs::openat(
        &odir,
        temp.as_slice(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(file_failure("cannot read the other name of its hard link"))
    .and_then(|mut file| {
        let same = rustix::fs::fstat(&file).is_ok_and(|s| (s.st_dev, s.st_ino) == identity);
        if same && verify(target, &mut file).is_ok() {
            Ok(())
        } else {
            Err(Failure::File(format!(
                "the other name of its hard link, {}, no longer holds the profile's content (changed since the report); left as a separate file",
                pacsguard_events::escape_path(&pacsguard_profile::RootProfile::absolute_of(
                    root, canonical
                ))
            )))
        }
    });
    if let Err(failure) = content {
        let _ = rustix::fs::unlinkat(&odir, temp.as_slice(), AtFlags::empty());
        return Err(failure);
    }
    rustix::fs::renameat(&odir, temp.as_slice(), &odir, oname.as_slice())
        .map_err(file_failure("cannot rename the link into place"))?;
    rustix::fs::fsync(&odir).map_err(file_failure("cannot sync the directory"))?;
    Ok(())
}

/// The parent directory of `rel` below `root`, each component opened without following
/// a link, and the file name.
fn open_parent(root: &Path, rel: &[u8]) -> Result<(OwnedFd, Vec<u8>), Failure> {
    let (parent, name) = split_rel(rel);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, flags, Mode::empty())
        .map_err(file_failure("cannot open the profiled root"))?;
    for component in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        dir = rustix::fs::openat(&dir, component, flags, Mode::empty()).map_err(file_failure(
            "cannot open its directory (a link is not followed)",
        ))?;
    }
    Ok((dir, name.to_vec()))
}

/// What the file at `rel` is now (its identity, link count and change time, the rest as
/// profiled), not following a link; `None` when it is not a regular file.
pub fn current_meta(root: &Path, rel: &[u8], profiled: &Entry) -> Option<Meta> {
    let (dir, name) = open_parent(root, rel).ok()?;
    let stat = rustix::fs::statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    (rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile)
        .then(|| meta_of(&stat, profiled))
}

/// Whether `name` in `dir` is the inode open as `fd` (not followed if a link).
fn is_ours(dir: &OwnedFd, name: &[u8], fd: &OwnedFd) -> bool {
    match (
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        rustix::fs::fstat(fd),
    ) {
        (Ok(there), Ok(ours)) => (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino),
        _ => false,
    }
}

/// Reads the copy back through its own descriptor (no name can be swapped under it) and
/// compares it with the profile: size and digest.
fn verify(target: &Target<'_>, file: &mut File) -> Result<(), Failure> {
    use std::io::Seek as _;
    file.rewind()
        .map_err(|e| Failure::File(format!("cannot read the copy back: {e}")))?;
    let unreadable = |e: io::Error| Failure::File(format!("cannot read the copy back: {e}"));
    let (digest, len) = if target.split {
        // A DICOM instance hashed as header + Pixel Data is read whole, as `check` reads
        // it (the profile splits none larger than MAX_SPLIT_BYTES).
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(unreadable)?;
        (
            profile_digest(target.algorithm, true, &bytes),
            bytes.len() as u64,
        )
    } else {
        let mut hasher = target.algorithm.hasher();
        let mut buffer = vec![0u8; pacsguard_fs::HASH_BUFFER_SIZE];
        let mut len = 0u64;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(unreadable(e)),
            }
        }
        (Some(hasher.finalize()), len)
    };
    match (digest, target.profiled.content.digest()) {
        (Some(got), Some(want)) if got == *want && len == target.profiled.meta.size => Ok(()),
        _ => Err(Failure::Copy(
            "the copy written does not have the profile's digest (the backup copy changed since it was searched); it was removed".to_owned(),
        )),
    }
}

fn set_metadata(fd: &OwnedFd, profiled: &Entry) -> Result<(), Failure> {
    let m = &profiled.meta;
    let stat = rustix::fs::fstat(fd).map_err(file_failure("cannot stat the copy"))?;
    if stat.st_uid != m.uid || stat.st_gid != m.gid {
        // SAFETY of the ids: they come from the signed profile.
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(m.uid)),
            Some(rustix::fs::Gid::from_raw(m.gid)),
        )
        .map_err(file_failure(&format!(
            "cannot give the copy its owner {}:{} (restoring ownership needs root)",
            m.uid, m.gid
        )))?;
    }
    // After chown, which clears set-id bits.
    rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777))
        .map_err(file_failure("cannot set the mode"))?;
    set_xattrs(fd, profiled)?;
    let mtime = Timespec {
        tv_sec: m.mtime.sec,
        tv_nsec: i64::from(m.mtime.nsec) as _,
    };
    let times = Timestamps {
        // The profile does not record access times: the restore leaves "now".
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: mtime,
    };
    rustix::fs::futimens(fd, &times).map_err(file_failure("cannot set the modification time"))?;
    Ok(())
}

/// The most the kernel lists of one inode's extended attribute names (Linux's
/// `XATTR_LIST_MAX`): the buffer for the list is this size, never larger.
const XATTR_LIST_MAX: usize = 65_536;

/// Gives a new inode exactly the profile's extended attributes. A file or directory made
/// in a directory with a default ACL inherits it (and the kernel may add others): left,
/// it would grant access the original never granted, and `check` would alert on the
/// restore itself. So every attribute the profile does not record is removed first, then
/// the profile's are set.
fn set_xattrs(fd: &OwnedFd, profiled: &Entry) -> Result<(), Failure> {
    let mut list = vec![0u8; XATTR_LIST_MAX];
    let len = match rustix::fs::flistxattr(fd, &mut list) {
        Ok(len) => len,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(e) => return Err(file_failure("cannot list its extended attributes")(e)),
    };
    for name in list[..len.min(list.len())]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        if profiled.xattrs.iter().any(|x| x.name == name) {
            continue;
        }
        match rustix::fs::fremovexattr(fd, name) {
            Ok(()) | Err(rustix::io::Errno::NODATA) => {}
            Err(e) => {
                return Err(file_failure(&format!(
                    "cannot remove the extended attribute {} it inherited (the profile has none such)",
                    pacsguard_events::escape_bytes(name)
                ))(e));
            }
        }
    }
    for xattr in &profiled.xattrs {
        match &xattr.value {
            XattrValue::Inline(value) => {
                rustix::fs::fsetxattr(
                    fd,
                    xattr.name.as_slice(),
                    value,
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(file_failure(&format!(
                    "cannot set the extended attribute {}",
                    pacsguard_events::escape_bytes(&xattr.name)
                )))?;
            }
            XattrValue::Digest(_) => {
                return Err(Failure::File(format!(
                    "the profile records only the digest of the extended attribute {}: it cannot be restored",
                    pacsguard_events::escape_bytes(&xattr.name)
                )));
            }
        }
    }
    Ok(())
}

fn meta_of(stat: &rustix::fs::Stat, profiled: &Entry) -> Meta {
    Meta {
        dev: stat.st_dev,
        ino: stat.st_ino,
        nlink: stat.st_nlink,
        ctime: pacsguard_fs::Timestamp {
            sec: stat.st_ctime,
            nsec: u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
        },
        ..profiled.meta
    }
}

/// `.NAME.<16 hex>.pacsguard-recover`: hidden, unique, and recognisable as ours.
fn temp_name(name: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| Failure::File(e.to_string()))?;
    let mut temp = b".".to_vec();
    // Long names keep their start: the temporary name must fit NAME_MAX (255).
    temp.extend_from_slice(&name[..name.len().min(200)]);
    temp.extend_from_slice(format!(".{}{TEMP_SUFFIX}", hex::encode(nonce)).as_bytes());
    Ok(temp)
}

/// (parent, file name) of a path relative to the root.
fn split_rel(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[][..], rel),
    }
}

/// The directory `parent` below the root, each component opened without following a
/// link: a symbolic link put on the way cannot lead the restore out of the tree. A
/// directory the profile records that is gone (deleted with its files) is made again with
/// the profile's owner and mode; its new inode is journaled and listed in `created`.
fn open_dir_below(
    target: &Target<'_>,
    parent: &[u8],
    journal: &mut Journal,
    created: &mut Vec<(Vec<u8>, Meta)>,
) -> Result<OwnedFd, Failure> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(target.root, flags, Mode::empty())
        .map_err(file_failure("cannot open the profiled root"))?;
    let mut rel: Vec<u8> = Vec::new();
    for component in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(component);
        let opened = match rustix::fs::openat(&dir, component, flags, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) => make_dir(target, &dir, component, &rel, journal, created)?,
            other => other.map_err(|e| {
                Failure::File(format!(
                    "cannot open its directory {} (no longer a directory? a link is not followed): {}",
                    pacsguard_events::escape_bytes(&rel),
                    io::Error::from(e)
                ))
            })?,
        };
        dir = opened;
    }
    Ok(dir)
}

fn make_dir(
    target: &Target<'_>,
    parent: &OwnedFd,
    name: &[u8],
    rel: &[u8],
    journal: &mut Journal,
    created: &mut Vec<(Vec<u8>, Meta)>,
) -> Result<OwnedFd, Failure> {
    let Some(profiled) = target
        .base
        .entry(rel)
        .filter(|e| e.kind == pacsguard_fs::EntryType::Directory)
    else {
        return Err(Failure::File(format!(
            "its directory {} is gone and the profile does not record it",
            pacsguard_events::escape_bytes(rel)
        )));
    };
    // Private until it has the profile's owner and mode.
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
        .map_err(file_failure("cannot make its directory again"))?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rustix::fs::openat(parent, name, flags, Mode::empty())
        .map_err(file_failure("cannot open the directory it made"))?;
    let m = &profiled.meta;
    rustix::fs::fchown(
        &dir,
        Some(rustix::fs::Uid::from_raw(m.uid)),
        Some(rustix::fs::Gid::from_raw(m.gid)),
    )
    .map_err(file_failure("cannot give the directory its owner"))?;
    rustix::fs::fchmod(&dir, Mode::from_raw_mode(m.mode & 0o7777))
        .map_err(file_failure("cannot set the directory's mode"))?;
    set_xattrs(&dir, profiled)?;
    rustix::fs::fsync(parent).map_err(file_failure("cannot sync the directory"))?;
    let stat = rustix::fs::fstat(&dir).map_err(file_failure("cannot stat the directory"))?;
    let path = pacsguard_profile::RootProfile::absolute_of(target.root, rel);
    journal.placing(&path, stat.st_dev, stat.st_ino)?;
    created.push((rel.to_vec(), meta_of(&stat, profiled)));
    Ok(dir)
}

/// Removes the temporary files an interrupted run journaled, if they are still there and
/// still look like ours (a regular file with our suffix): nothing else is ever removed.
pub fn remove_leftovers(temps: &[PathBuf]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for temp in temps {
        let ours = temp
            .file_name()
            .is_some_and(|n| n.as_bytes().ends_with(TEMP_SUFFIX.as_bytes()));
        let is_file = std::fs::symlink_metadata(temp).is_ok_and(|m| m.file_type().is_file());
        if ours && is_file && std::fs::remove_file(temp).is_ok() {
            removed.push(temp.clone());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use pacsguard_fs::{Content, EntryType, Timestamp};
    use pacsguard_profile::{Policy, RootProfile, RootSpec};

    use super::*;

    /// A static root at `root` holding `entries`, hashed with BLAKE3.
    fn static_root(root: &Path, entries: Vec<Entry>) -> RootProfile {
        RootProfile {
            spec: RootSpec {
                path: root.to_path_buf(),
                policy: Policy::Static,
                hash: HashAlgorithm::Blake3,
                exclude: Vec::new(),
                cross_mounts: false,
            },
            entries,
        }
    }

    fn profiled(good: &[u8], meta: &std::fs::Metadata) -> Entry {
        Entry {
            rel: b"a".to_vec(),
            kind: EntryType::File,
            meta: Meta {
                size: good.len() as u64,
                mode: 0o100640,
                mtime: Timestamp {
                    sec: 1_500_000_000,
                    nsec: 123,
                },
                ..Meta::of(meta)
            },
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Hashed {
                digest: profile_digest(HashAlgorithm::Blake3, false, good).expect("digest"),
                prefix: None,
                dicom: None,
            },
        }
    }

    /// A file rewritten in place after the report, to the same size and with its mtime put
    /// back (what `touch -d` or `cp -p` over it does), is no longer the file the report
    /// saw: only its change time tells, and the restore must leave it alone.
    #[test]
    fn a_file_rewritten_in_place_with_its_mtime_put_back_is_left_alone() {
        use std::io::Write as _;

        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let damaged = root.join("a");
        std::fs::write(&damaged, b"encrypted").expect("write");
        let meta = std::fs::symlink_metadata(&damaged).expect("stat");
        let entry = profiled(b"good", &meta);
        let base = static_root(&root, vec![entry.clone()]);
        let seen = Seen::of(&Meta::of(&meta));
        // Rewritten in place by someone else, mtime put back; the kernel's change time
        // moves on its own clock tick, so write until it has.
        let mut newer = Vec::new();
        for attempt in 0..500u32 {
            newer = format!("NEWER{attempt:04}").into_bytes();
            newer.truncate(b"encrypted".len());
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&damaged)
                .expect("open");
            file.write_all(&newer).expect("rewrite");
            file.set_modified(meta.modified().expect("mtime"))
                .expect("mtime put back");
            drop(file);
            let now = std::fs::symlink_metadata(&damaged).expect("stat");
            assert_eq!((now.ino(), now.size()), (meta.ino(), meta.size()));
            assert_eq!(
                (now.mtime(), now.mtime_nsec()),
                (meta.mtime(), meta.mtime_nsec())
            );
            if (now.ctime(), now.ctime_nsec()) != (meta.ctime(), meta.ctime_nsec()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let target = Target {
            root: &root,
            base: &base,
            rel: b"a",
            profiled: &entry,
            algorithm: HashAlgorithm::Blake3,
            split: false,
            seen: Some(seen),
        };
        let result = restore(
            &target,
            &mut &b"good"[..],
            &mut Journal::new(root.join("journal")),
            &mut |_| Ok(()),
            &mut Vec::new(),
        );
        assert!(
            matches!(&result, Err(Failure::File(why)) if why.contains("changed since")),
            "{result:?}"
        );
        assert_eq!(std::fs::read(&damaged).expect("read"), newer);
    }

    /// Malware still running with write access to the directory swaps its own file in at
    /// the temporary name after the copy was verified: the restore must not rename that
    /// into place and call it restored byte-identical.
    #[test]
    fn a_file_swapped_in_at_the_temporary_name_is_not_placed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let damaged = root.join("a");
        std::fs::write(&damaged, b"encrypted").expect("write");
        let meta = std::fs::symlink_metadata(&damaged).expect("stat");
        let entry = profiled(b"good", &meta);
        let base = static_root(&root, vec![entry.clone()]);
        let target = Target {
            root: &root,
            base: &base,
            rel: b"a",
            profiled: &entry,
            algorithm: HashAlgorithm::Blake3,
            split: false,
            seen: Some(Seen::of(&Meta::of(&meta))),
        };
        let stolen = root.join("stolen");
        let mut swap = |_: &Path| -> Result<(), EngineError> {
            let temp = std::fs::read_dir(&root)
                .expect("list")
                .map(|e| e.expect("entry").path())
                .find(|p| p.to_string_lossy().ends_with(TEMP_SUFFIX))
                .expect("the temporary copy");
            std::fs::rename(&temp, &stolen).expect("move ours away");
            std::fs::write(&temp, b"evil").expect("put the malware's in");
            Ok(())
        };
        let result = restore(
            &target,
            &mut &b"good"[..],
            &mut Journal::new(root.join("journal")),
            &mut swap,
            &mut Vec::new(),
        );
        assert!(matches!(&result, Err(Failure::File(_))), "{result:?}");
        assert_ne!(std::fs::read(&damaged).expect("read"), b"evil");
    }

    /// The extended attributes of `path` (not followed), by name.
    fn xattr_names(path: &Path) -> Vec<Vec<u8>> {
        let mut list = vec![0u8; XATTR_LIST_MAX];
        let len = rustix::fs::llistxattr(path, &mut list).expect("listxattr");
        list[..len]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// A directory with a default ACL (the real `setfacl`) passes it to every file and
    /// directory made in it: the restored file and the directory made again must have the
    /// profile's extended attributes (here none), not an inherited grant to `nobody`.
    #[test]
    fn an_inherited_default_acl_is_not_left_on_the_restored_file_or_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(root.join("d")).expect("mkdir");
        let damaged = root.join("d/a");
        std::fs::write(&damaged, b"encrypted").expect("write");
        let meta = std::fs::symlink_metadata(&damaged).expect("stat");
        let dir_meta = std::fs::symlink_metadata(root.join("d")).expect("stat");
        let setfacl = std::process::Command::new("setfacl")
            .args(["-d", "-m", "u:nobody:rwx"])
            .arg(&root)
            .arg(root.join("d"))
            .output()
            .expect("setfacl runs (acl, scripts/setup-test-deps.sh)");
        assert!(setfacl.status.success(), "{setfacl:?}");
        let mut entry = profiled(b"good", &meta);
        entry.rel = b"d/a".to_vec();
        let gone = Entry {
            rel: b"e".to_vec(),
            kind: EntryType::Directory,
            meta: Meta {
                mode: 0o40750,
                ..Meta::of(&dir_meta)
            },
            link_target: None,
            xattrs: Vec::new(),
            content: Content::NotApplicable,
        };
        let mut in_gone = entry.clone();
        in_gone.rel = b"e/b".to_vec();
        let base = static_root(&root, vec![entry.clone(), gone, in_gone.clone()]);
        let mut journal = Journal::new(root.join("journal"));
        for (profiled, seen) in [(&entry, Some(Seen::of(&Meta::of(&meta)))), (&in_gone, None)] {
            let target = Target {
                root: &root,
                base: &base,
                rel: &profiled.rel,
                profiled,
                algorithm: HashAlgorithm::Blake3,
                split: false,
                seen,
            };
            restore(
                &target,
                &mut &b"good"[..],
                &mut journal,
                &mut |_| Ok(()),
                &mut Vec::new(),
            )
            .map_err(|e| format!("{e:?}"))
            .expect("restored");
        }
        for restored in ["d/a", "e/b", "e"] {
            assert_eq!(
                xattr_names(&root.join(restored)),
                Vec::<Vec<u8>>::new(),
                "{restored}"
            );
        }
        assert_eq!(std::fs::read(root.join("e/b")).expect("read"), b"good");
        let mode = |p: &str| {
            std::fs::symlink_metadata(root.join(p))
                .expect("stat")
                .mode()
        };
        assert_eq!(mode("d/a") & 0o7777, 0o640);
        assert_eq!(mode("e") & 0o7777, 0o750);
    }

    /// Two hard links of one damaged file: restoring the first changes the link count,
    /// hence the change time, of the second. That change is the run's own: the second is
    /// restored in the same run, not refused as changed since the report.
    #[test]
    fn both_hard_links_of_a_damaged_file_are_restored_in_one_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("a"), b"encrypted").expect("write");
        std::fs::hard_link(root.join("a"), root.join("b")).expect("ln");
        let meta = std::fs::symlink_metadata(root.join("a")).expect("stat");
        let seen = Seen::of(&Meta::of(&meta));
        let first = profiled(b"good", &meta);
        let second = Entry {
            rel: b"b".to_vec(),
            ..first.clone()
        };
        let base = static_root(&root, vec![first.clone(), second.clone()]);
        let mut journal = Journal::new(root.join("journal"));
        for profiled in [&first, &second] {
            // The kernel's change time moves on its clock tick: make sure it does.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let target = Target {
                root: &root,
                base: &base,
                rel: &profiled.rel,
                profiled,
                algorithm: HashAlgorithm::Blake3,
                split: false,
                seen: Some(seen),
            };
            restore(
                &target,
                &mut &b"good"[..],
                &mut journal,
                &mut |_| Ok(()),
                &mut Vec::new(),
            )
            .map_err(|e| format!("{}: {e:?}", String::from_utf8_lossy(&profiled.rel)))
            .expect("restored");
        }
        assert_eq!(std::fs::read(root.join("a")).expect("read"), b"good");
        assert_eq!(std::fs::read(root.join("b")).expect("read"), b"good");
    }

    /// A hard link's intact name is the profile's inode; rewritten in place after the
    /// report (same inode, other bytes), it must not become the content of the restored
    /// name: the relink reads it and leaves the verified copy alone.
    #[test]
    fn a_hard_link_is_not_made_to_an_intact_name_whose_content_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("a"), b"good").expect("write");
        std::fs::hard_link(root.join("a"), root.join("b")).expect("ln");
        let meta = std::fs::symlink_metadata(root.join("a")).expect("stat");
        let identity = (meta.dev(), meta.ino());
        let first = profiled(b"good", &meta);
        let second = Entry {
            rel: b"b".to_vec(),
            ..first.clone()
        };
        let base = static_root(&root, vec![first.clone(), second.clone()]);
        // `b` was deleted and restored as a file of its own.
        std::fs::remove_file(root.join("b")).expect("rm");
        std::fs::write(root.join("b"), b"good").expect("restored copy");
        let restored = std::fs::symlink_metadata(root.join("b")).expect("stat");
        let target = Target {
            root: &root,
            base: &base,
            rel: &second.rel,
            profiled: &second,
            algorithm: HashAlgorithm::Blake3,
            split: false,
            seen: None,
        };
        let mut journal = Journal::new(root.join("journal"));
        // The intact name is written in place (same inode) before the relink.
        std::fs::write(root.join("a"), b"evil").expect("rewrite in place");
        let failure = relink(
            &target,
            b"a",
            identity,
            (restored.dev(), restored.ino()),
            &mut journal,
        )
        .expect_err("a changed intact name is not linked to");
        let Failure::File(why) = failure else {
            panic!("{failure:?}")
        };
        assert!(
            why.contains("no longer holds the profile's content"),
            "{why}"
        );
        assert_eq!(std::fs::read(root.join("b")).expect("read"), b"good");
        let after = std::fs::symlink_metadata(root.join("b")).expect("stat");
        assert_eq!(after.ino(), restored.ino(), "b is still the verified copy");
        // No temporary link is left beside it.
        let names: Vec<_> = std::fs::read_dir(&root)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}"); // a, b, journal
        // With the intact name holding the profile's content again, the link is made.
        std::fs::write(root.join("a"), b"good").expect("rewrite in place");
        relink(
            &target,
            b"a",
            identity,
            (restored.dev(), restored.ino()),
            &mut journal,
        )
        .map_err(|e| format!("{e:?}"))
        .expect("linked");
        let after = std::fs::symlink_metadata(root.join("b")).expect("stat");
        assert_eq!((after.dev(), after.ino()), identity);
    }

    /// The damaged file is replaced only if it is still the one the report saw.
    #[test]
    fn a_file_changed_after_the_report_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let damaged = root.join("a");
        std::fs::write(&damaged, b"encrypted").expect("write");
        let meta = std::fs::symlink_metadata(&damaged).expect("stat");
        let entry = profiled(b"good", &meta);
        let base = static_root(&root, vec![entry.clone()]);
        let seen = Seen::of(&Meta::of(&meta));
        let mut journal = Journal::new(root.join("journal"));
        let mut target = Target {
            root: &root,
            base: &base,
            rel: b"a",
            profiled: &entry,
            algorithm: HashAlgorithm::Blake3,
            split: false,
            seen: Some(Seen {
                ino: seen.ino + 1,
                ..seen
            }),
        };
        let mut placed = 0;
        let result = restore(
            &target,
            &mut &b"good"[..],
            &mut journal,
            &mut |_| {
                placed += 1;
                Ok(())
            },
            &mut Vec::new(),
        );
        assert!(
            matches!(&result, Err(Failure::File(why)) if why.contains("changed since")),
            "{result:?}"
        );
        assert_eq!(std::fs::read(&damaged).expect("read"), b"encrypted");
        let names = |root: &Path| -> Vec<_> {
            std::fs::read_dir(root)
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect()
        };
        assert_eq!(names(&root).len(), 2, "{:?}", names(&root)); // a + the journal

        // Wrong bytes from the backup: refused before anything is renamed.
        target.seen = Some(seen);
        let result = restore(
            &target,
            &mut &b"evil"[..],
            &mut journal,
            &mut |_| Ok(()),
            &mut Vec::new(),
        );
        assert!(matches!(result, Err(Failure::Copy(_))), "{result:?}");
        assert_eq!(std::fs::read(&damaged).expect("read"), b"encrypted");

        // Still what the report saw: restored, with the profile's mode and mtime.
        let restored = restore(
            &target,
            &mut &b"good"[..],
            &mut journal,
            &mut |_| Ok(()),
            &mut Vec::new(),
        )
        .map_err(|e| format!("{e:?}"))
        .expect("restored");
        assert_eq!(std::fs::read(&damaged).expect("read"), b"good");
        let now = std::fs::symlink_metadata(&damaged).expect("stat");
        assert_eq!(now.mode() & 0o7777, 0o640);
        assert_eq!((now.mtime(), now.mtime_nsec()), (1_500_000_000, 123));
        assert_eq!(restored.ino, now.ino());
        assert_eq!(names(&root).len(), 2, "{:?}", names(&root));
    }
}
