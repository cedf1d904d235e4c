//! Writing files so that a crash leaves either nothing or the complete file, never a
//! torn one, and never replaces what is already there unless asked to.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// Writes `bytes` to `path` through a temporary file, fsync and rename: after a crash the
/// file is either absent or complete. Replaces an existing `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_synced(&tmp, bytes, mode)?;
    fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))?;
    sync_parent(path)
}

/// Writes `bytes` as the new file `path`, refusing to replace anything there: the data go
/// to a temporary file beside it first, and only a complete, synced file is linked in
/// (`link` fails if the name exists, where `rename` would overwrite).
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
    write_new_with(path, mode, |file| {
        file.write_all(bytes).map_err(|e| EngineError::io(path, e))
    })
}

/// [`write_new`] with the content written by `fill` into the open new file (a stream
/// copied without holding it whole). `fill` may run twice (once into the temporary file,
/// once more into `path` itself on a file system without hard links); what it returns
/// the second time is returned. An error from it leaves no file behind.
pub(crate) fn write_new_with<T>(
    path: &Path,
    mode: u32,
    mut fill: impl FnMut(&mut File) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let tmp = temporary_beside(path)?;
    let filled = write_synced_with(&tmp, mode, &mut fill)?;
    let linked = fs::hard_link(&tmp, path);
    match linked {
        // FAT, exFAT and some network file systems (a USB stick at a media import) have no
        // hard links: create the name exclusively and write it there instead. A crash in
        // between can then leave a partial file under the new name, never over an old one.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS)
            ) =>
        {
            let _ = fs::remove_file(&tmp);
            let filled = write_synced_with(path, mode, &mut fill)?;
            sync_parent(path).map(|()| filled)
        }
        other => {
            let _ = fs::remove_file(&tmp);
            finish_link(path, other).map(|()| filled)
        }
    }
}

fn finish_link(path: &Path, linked: std::io::Result<()>) -> Result<(), EngineError> {
    match linked {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(EngineError::io(
            path,
            "already exists; nothing was overwritten (choose a new name)",
        )),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

/// A name for a temporary file next to `path`, unique to this process and moment.
pub(crate) fn temporary_beside(path: &Path) -> Result<PathBuf, EngineError> {
    let name = path
        .file_name()
        .ok_or_else(|| EngineError::io(path, "not a file name"))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| EngineError::io(path, e))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.pacsguard-tmp", hex::encode(nonce)));
    Ok(path.with_file_name(tmp_name))
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
    write_synced_with(path, mode, |file| {
        file.write_all(bytes).map_err(|e| EngineError::io(path, e))
    })
}

fn write_synced_with<T>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| EngineError::io(path, e))?;
    let written = fill(&mut file).and_then(|filled| {
        file.sync_all()
            .map(|()| filled)
            .map_err(|e| EngineError::io(path, e))
    });
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

fn sync_parent(path: &Path) -> Result<(), EngineError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_never_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.dcm");
        write_new(&path, b"first", 0o600).expect("written");
        let err = write_new(&path, b"second", 0o600).expect_err("exists");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(fs::read(&path).expect("read"), b"first");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.dcm")]);
    }
}
