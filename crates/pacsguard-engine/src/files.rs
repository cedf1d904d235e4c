//! Files PacsGuard reads from places it does not fully control (the home, an export,
//! `--hashlist`, `--rules`) and directories it writes new files into (`audit export`,
//! canaries). Reading goes through `pacsguard-fs` (no link followed, no FIFO blocked on,
//! regular files only, a bound on the bytes); writing creates each file exclusively,
//! relative to a directory opened once, so a link planted after a check is never written
//! through.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use pacsguard_fs::{ReadError, read_file};
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::error::EngineError;

/// The most of a small home file read (`trail.pub`, a witness checkpoint, a cursor): each
/// is one line of well under 1 KiB; a larger one is not ours.
pub(crate) const MAX_SMALL_FILE_BYTES: u64 = 64 << 10;

/// Reads the regular file `path` whole, refusing links, FIFOs, devices and anything over
/// `limit` bytes; `None` when nothing is there.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, EngineError> {
    match read_file(path, limit) {
        Ok(read) => Ok(Some(read.bytes)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(EngineError::io(path, refusal(&e))),
    }
}

/// Like [`read_bounded`], for text.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<Option<String>, EngineError> {
    read_bounded(path, limit)?
        .map(|bytes| String::from_utf8(bytes).map_err(|_| EngineError::io(path, "not UTF-8 text")))
        .transpose()
}

/// Why a file was not read, in the words of someone who expected a regular file.
pub(crate) fn refusal(e: &ReadError) -> String {
    match e {
        ReadError::Vanished => "cannot read: it does not exist".into(),
        ReadError::NotRegular => {
            "not a regular file (a symbolic link, FIFO, socket or device stands there); refused"
                .into()
        }
        other => format!("cannot read: {other}"),
    }
}

/// A directory opened once (never through a symlink at its last component), into which
/// new files are created exclusively.
#[derive(Debug)]
pub(crate) struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutDir {
    /// Opens `path`, creating it (the last component only, with `mode`) if it is missing.
    /// A missing parent is an error: a mistyped path must not become a chain of
    /// directories.
    pub(crate) fn open_or_create(path: &Path, mode: u32) -> Result<OutDir, EngineError> {
        match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(rustix::io::Errno::NOENT) => {
                return Err(EngineError::io(
                    path,
                    "its parent directory does not exist; nothing was created",
                ));
            }
            Err(e) => return Err(EngineError::io(path, io::Error::from(e))),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => EngineError::io(
                path,
                "not a directory (a symbolic link or a file stands there); nothing was written",
            ),
            e => EngineError::io(path, io::Error::from(e)),
        })?;
        Ok(OutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the absolute `path`, creating what is missing of it (`mode`), one component
    /// at a time relative to its parent's descriptor and never through a symbolic link: a
    /// link anywhere on the way is refused before anything is created beyond it.
    pub(crate) fn open_or_create_all(path: &Path, mode: u32) -> Result<OutDir, EngineError> {
        if !path.is_absolute() {
            return Err(EngineError::io(path, "not an absolute path"));
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::open("/", flags, Mode::empty())
            .map_err(|e| EngineError::io("/", io::Error::from(e)))?;
        let mut walked = PathBuf::from("/");
        for component in path.components() {
            let std::path::Component::Normal(name) = component else {
                if matches!(component, std::path::Component::RootDir) {
                    continue;
                }
                return Err(EngineError::io(
                    path,
                    "`.` or `..` in the path; use the real path",
                ));
            };
            walked.push(name);
            match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(EngineError::io(&walked, io::Error::from(e))),
            }
            fd = rustix::fs::openat(&fd, name, flags, Mode::empty()).map_err(|e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => EngineError::io(
                    &walked,
                    "a symlink or a file on the way (not a directory); nothing was created beyond it",
                ),
                e => EngineError::io(&walked, io::Error::from(e)),
            })?;
        }
        Ok(OutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory holds nothing (besides `.` and `..`).
    pub(crate) fn is_empty(&self) -> Result<bool, EngineError> {
        let dir =
            rustix::fs::Dir::read_from(&self.fd).map_err(|e| self.error(io::Error::from(e)))?;
        for entry in dir {
            let entry = entry.map_err(|e| self.error(io::Error::from(e)))?;
            if !matches!(entry.file_name().to_bytes(), b"." | b"..") {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether anything (a link included, never followed) stands at `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Creates the new file `name` (`O_CREAT|O_EXCL|O_NOFOLLOW`: whatever stands there,
    /// a planted symlink included, makes this fail instead of being written through).
    pub(crate) fn create(&self, name: &str, mode: u32) -> Result<File, EngineError> {
        if name.contains('/') || matches!(name, "" | "." | "..") {
            return Err(self.error(format!("{name:?} is not a file name")));
        }
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(
            &self.fd,
            OsStr::from_bytes(name.as_bytes()),
            flags,
            Mode::from_raw_mode(mode),
        )
        .map(File::from)
        .map_err(|e| {
            let path = self.path.join(name);
            if e == rustix::io::Errno::EXIST {
                EngineError::io(
                    path,
                    "already exists (or a link was planted there); nothing was overwritten",
                )
            } else {
                EngineError::io(path, io::Error::from(e))
            }
        })
    }

    /// Puts `bytes` into the directory as the new file `name`, complete or not at all and
    /// never over anything: the data go to an unnamed `O_TMPFILE` first (invisible to a
    /// PACS watching the directory), are synced, and only then linked in under `name`
    /// (`linkat` fails if anything stands there). Where the file system has no
    /// `O_TMPFILE`, a hidden temporary name is renamed with `RENAME_NOREPLACE` instead.
    pub(crate) fn publish(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            return Err(self.error(format!("{name:?} is not a file name")));
        }
        let path = self.path.join(name);
        let exists = |e: rustix::io::Errno| {
            if e == rustix::io::Errno::EXIST {
                EngineError::io(&path, "already exists; nothing was overwritten")
            } else {
                EngineError::io(&path, io::Error::from(e))
            }
        };
        let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, ".", flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => {
                let mut file = File::from(fd);
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| EngineError::io(&path, e))?;
                let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc.as_str(),
                    &self.fd,
                    name,
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(exists)?;
            }
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR) => {
                self.publish_hidden(name, bytes, mode, rename_noreplace)?;
            }
            Err(e) => return Err(EngineError::io(&path, io::Error::from(e))),
        }
        self.sync()
    }

    /// [`OutDir::publish`] where the file system has no `O_TMPFILE`: the data go to a
    /// hidden temporary name (`O_EXCL`), are synced, and are given `name` only if nothing
    /// stands there: `renameat2(RENAME_NOREPLACE)`, or where the file system does not know
    /// that flag (`EINVAL`: some network and FUSE file systems), `linkat`, which never
    /// replaces either, then the hidden name is removed. A plain `rename` (which would
    /// replace a file that appeared meanwhile) is never the fallback. On any failure the
    /// hidden file is removed and the error says so. `rename` is the no-replace rename,
    /// a parameter so that a test can be a file system without it.
    fn publish_hidden(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        rename: fn(&OwnedFd, &str, &str) -> rustix::io::Result<()>,
    ) -> Result<(), EngineError> {
        use std::io::Write as _;
        let path = self.path.join(name);
        let exists = |e: rustix::io::Errno| {
            if e == rustix::io::Errno::EXIST {
                EngineError::io(&path, "already exists; nothing was overwritten")
            } else {
                EngineError::io(&path, io::Error::from(e))
            }
        };
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| EngineError::io(&path, e))?;
        let hidden = format!(".{name}.{}.pacsguard-tmp", hex::encode(nonce));
        let mut file = self.create(&hidden, mode)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        drop(file);
        let placed = written
            .map_err(|e| EngineError::io(&path, e))
            .and_then(|()| match rename(&self.fd, &hidden, name) {
                Err(rustix::io::Errno::INVAL) => rustix::fs::linkat(
                    &self.fd,
                    hidden.as_str(),
                    &self.fd,
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| match e {
                    rustix::io::Errno::EXIST => exists(e),
                    e => EngineError::io(
                        &path,
                        format!(
                            "this file system can neither rename without replacing (RENAME_NOREPLACE) nor link ({}); nothing was written",
                            io::Error::from(e)
                        ),
                    ),
                }),
                other => other.map_err(exists),
            });
        // After a rename nothing stands at the hidden name (ENOENT, ignored); after a link
        // or a failure, the hidden name goes.
        let _ = rustix::fs::unlinkat(&self.fd, hidden.as_str(), AtFlags::empty());
        placed
    }

    /// Makes the directory's new entries durable.
    pub(crate) fn sync(&self) -> Result<(), EngineError> {
        rustix::fs::fsync(&self.fd).map_err(|e| self.error(io::Error::from(e)))
    }

    fn error(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::io(&self.path, e)
    }
}

/// `renameat2(RENAME_NOREPLACE)` within one directory.
fn rename_noreplace(dir: &OwnedFd, from: &str, to: &str) -> rustix::io::Result<()> {
    rustix::fs::renameat_with(dir, from, dir, to, rustix::fs::RenameFlags::NOREPLACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hidden-name path of `publish` (no `O_TMPFILE`), with and without
    /// `RENAME_NOREPLACE`: the file appears whole under its name, nothing that stands
    /// there is replaced, and no hidden file is left behind either way.
    #[test]
    fn publishing_without_o_tmpfile_never_replaces_and_leaves_nothing_behind() {
        fn no_noreplace(_: &OwnedFd, _: &str, _: &str) -> rustix::io::Result<()> {
            Err(rustix::io::Errno::INVAL)
        }
        fn no_rename_no_link(dir: &OwnedFd, from: &str, _: &str) -> rustix::io::Result<()> {
            // As a file system that has neither: make the link fail too, by removing the
            // source first (the link then fails with ENOENT, not EEXIST).
            rustix::fs::unlinkat(dir, from, AtFlags::empty())?;
            Err(rustix::io::Errno::INVAL)
        }
        let names = |out: &OutDir| {
            let mut names: Vec<String> = std::fs::read_dir(out.path())
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let out = OutDir::open_or_create(&dir.path().join("out"), 0o700).expect("created");
        for (rename, name) in [
            (rename_noreplace as fn(&OwnedFd, &str, &str) -> _, "a.dcm"),
            (no_noreplace, "b.dcm"),
        ] {
            out.publish_hidden(name, b"image", 0o644, rename)
                .expect("published");
            assert_eq!(
                std::fs::read(out.path().join(name)).expect("read"),
                b"image"
            );
            let err = out
                .publish_hidden(name, b"other", 0o644, rename)
                .expect_err("never over a file");
            assert!(err.to_string().contains("already exists"), "{err}");
            assert_eq!(
                std::fs::read(out.path().join(name)).expect("read"),
                b"image"
            );
        }
        assert_eq!(names(&out), ["a.dcm", "b.dcm"]);
        let err = out
            .publish_hidden("c.dcm", b"image", 0o644, no_rename_no_link)
            .expect_err("neither works");
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(names(&out), ["a.dcm", "b.dcm"]);
    }

    #[test]
    fn an_out_dir_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").expect("fixture");
        let out = OutDir::open_or_create(&dir.path().join("out"), 0o700).expect("created");
        assert!(out.is_empty().expect("listed"));
        std::os::unix::fs::symlink(&victim, out.path().join("audit.log")).expect("plant");
        assert!(!out.is_empty().expect("listed"));
        let err = out.create("audit.log", 0o600).expect_err("planted link");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
        assert!(out.contains("audit.log"));
        // A missing parent is not created, and a link standing for the directory is refused.
        assert!(OutDir::open_or_create(&dir.path().join("a/b"), 0o700).is_err());
        assert!(!dir.path().join("a").exists());
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).expect("plant");
        let err = OutDir::open_or_create(&dir.path().join("link"), 0o700).expect_err("link");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_directory_chain_is_never_created_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let made = OutDir::open_or_create_all(&root.join("a/b/c"), 0o755).expect("created");
        assert!(made.is_empty().expect("listed"));
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, root.join("a/link")).expect("plant");
        let err = OutDir::open_or_create_all(&root.join("a/link/new/dir"), 0o755)
            .expect_err("link on the way");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
    }
}
