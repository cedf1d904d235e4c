//! Putting one file back: the only code that writes into a guarded tree.
//!
//! The copy is written to a new temporary file beside the damaged one (`O_EXCL`, in the
//! same directory, reached from the root one component at a time without following a
//! link), synced, read back and verified against the profile's digest, given the
//! profile's owner, mode, extended attributes and modification time, and only then
//! renamed over the damaged file, if that is still the file the report saw (same device,
//! inode, size and mtime, looked at again just before the rename) or, for a missing file,
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
}

impl Seen {
    pub fn of(meta: &Meta) -> Seen {
        Seen {
            dev: meta.dev,
            ino: meta.ino,
            size: meta.size,
            mtime: meta.mtime,
        }
    }
}

/// One file to put back.
pub struct Target<'a> {
    pub root: &'a Path,
    pub rel: &'a [u8],
    pub profiled: &'a Entry,
    pub algorithm: HashAlgorithm,
    /// Hashed as DICOM header and Pixel Data (the profile recorded DICOM facts).
    pub split: bool,
    pub seen: Option<Seen>,
}

/// Why a file was not restored: this file only (the run goes on), or the run itself
/// (the journal or the audit trail cannot be written: stop).
#[derive(Debug)]
pub enum Failure {
    File(String),
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
) -> Result<Meta, Failure> {
    let (parent, name) = split_rel(target.rel);
    let dir = open_dir_below(target.root, parent)?;
    let path = pacsguard_profile::RootProfile::absolute_of(target.root, target.rel);
    let temp_name = temp_name(name)?;
    let temp_path = path.with_file_name(std::ffi::OsStr::from_bytes(&temp_name));
    journal.temp(&temp_path)?;
    let fd = rustix::fs::openat(
        &dir,
        temp_name.as_slice(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(file_failure("cannot create a temporary file beside it"))?;
    let result = write_verify_place(
        target, &dir, &fd, &temp_name, name, copy, journal, &path, placing,
    );
    if result.is_err() {
        // Ours, journaled, never renamed: removing it harms nothing.
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
    .map_err(|e| Failure::File(format!("cannot write the copy: {e}")))?;
    if copied != profiled.meta.size {
        return Err(Failure::File(format!(
            "the backup copy has {copied} bytes, the profile {}",
            profiled.meta.size
        )));
    }
    drop(file);
    verify(target, dir, temp_name)?;
    set_metadata(fd, profiled)?;
    rustix::fs::fsync(fd).map_err(file_failure("cannot sync the copy"))?;
    let stat = rustix::fs::fstat(fd).map_err(file_failure("cannot stat the copy"))?;
    journal.placing(path, stat.st_dev, stat.st_ino)?;
    placing(path)?;
    // The path again, just before the rename: still what the report saw?
    let now = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW);
    match (target.seen, now) {
        (None, Err(rustix::io::Errno::NOENT)) => {
            rustix::fs::renameat_with(dir, temp_name, dir, name, RenameFlags::NOREPLACE).map_err(
                file_failure("cannot rename the copy into place (something appeared at the path)"),
            )?;
        }
        (Some(seen), Ok(now))
            if now.st_dev == seen.dev
                && now.st_ino == seen.ino
                && u64::try_from(now.st_size).ok() == Some(seen.size)
                && now.st_mtime == seen.mtime.sec
                && u32::try_from(now.st_mtime_nsec).ok() == Some(seen.mtime.nsec) =>
        {
            rustix::fs::renameat(dir, temp_name, dir, name)
                .map_err(file_failure("cannot rename the copy into place"))?;
        }
        _ => {
            return Err(Failure::File(
                "the file changed since the report read it; it was left as it is (run recover again)"
                    .to_owned(),
            ));
        }
    }
    rustix::fs::fsync(dir).map_err(file_failure("cannot sync the directory"))?;
    let restored = rustix::fs::fstat(fd).map_err(file_failure("cannot stat the restored file"))?;
    Ok(meta_of(&restored, profiled))
}

/// Reads the copy back and compares it with the profile: size and digest.
fn verify(target: &Target<'_>, dir: &OwnedFd, temp_name: &[u8]) -> Result<(), Failure> {
    let fd = rustix::fs::openat(
        dir,
        temp_name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(file_failure("cannot read the copy back"))?;
    let mut file = File::from(fd);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Failure::File(format!("cannot read the copy back: {e}")))?;
    let digest = profile_digest(target.algorithm, target.split, &bytes);
    match (digest, target.profiled.content.digest()) {
        (Some(got), Some(want))
            if got == *want && bytes.len() as u64 == target.profiled.meta.size =>
        {
            Ok(())
        }
        _ => Err(Failure::File(
            "the copy written does not have the profile's digest; it was removed".to_owned(),
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

fn meta_of(stat: &rustix::fs::Stat, profiled: &Entry) -> Meta {
    Meta {
        dev: stat.st_dev,
        ino: stat.st_ino,
        nlink: stat.st_nlink as u64,
        ctime: pacsguard_fs::Timestamp {
            sec: stat.st_ctime,
            nsec: u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
        },
        ..profiled.meta.clone()
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

/// The directory `parent` below `root`, each component opened without following a link:
/// a symbolic link put on the way cannot lead the restore out of the tree.
fn open_dir_below(root: &Path, parent: &[u8]) -> Result<OwnedFd, Failure> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, flags, Mode::empty())
        .map_err(file_failure("cannot open the profiled root"))?;
    for component in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        dir = rustix::fs::openat(&dir, component, flags, Mode::empty()).map_err(|e| {
            Failure::File(format!(
                "cannot open its directory {} (gone, or no longer a directory: a link is not followed): {}",
                pacsguard_events::escape_bytes(component),
                io::Error::from(e)
            ))
        })?;
    }
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
