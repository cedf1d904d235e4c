//! A profiled root that is not there is not an empty root. `accept` and a re-profile of a
//! root whose directory was removed, replaced by a symlink or a file, or whose file system
//! is not mounted (an empty mount point where the profile holds a tree) would sign every
//! entry of it away in one step: refused, naming the root (exit 2). A root taken out on
//! purpose is taken out by `accept --remove-root`, which says so on the trail.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt as _;

use pacsguard_events::escape_path;
use pacsguard_fs::Meta;
use pacsguard_profile::{Policy, RootSpec};

use crate::error::EngineError;

/// Refuses to take in the root `spec` as it is now when it is not the directory that
/// was profiled: gone, not a directory (a symlink to elsewhere, a file), empty while
/// the profile holds `stored_entries` entries (the root's own among them; not for a
/// `volatile` root of `spec`, the profiled one), or (with
/// `profiled`, the stored root's own metadata) a file system not mounted whose mount
/// point holds something (a `NOT_MOUNTED` marker file, review s18-r15): the root is
/// another directory (device and inode both changed) on its parent's file system.
pub(super) fn refuse_missing_root(
    spec: &RootSpec,
    stored_entries: u64,
    profiled: Option<&Meta>,
) -> Result<(), EngineError> {
    let root = escape_path(&spec.path);
    let refuse = |what: String| {
        Err(EngineError::Usage(format!(
            "the profiled root {root} {what}: nothing was signed (signing it as it is would drop every entry profiled in it). Mount or restore it, or, if it is gone for good or was emptied on purpose, take it out of the profile on the record: `pacsguard accept --remove-root {root} --reason TEXT` (then `pacsguard profile {root}` guards it again as it is)"
        )))
    };
    let meta = match std::fs::symlink_metadata(&spec.path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return refuse("is gone (no such directory)".into());
        }
        Err(e) => return Err(EngineError::io(&spec.path, e)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return refuse("is now a symbolic link, not the directory profiled".into());
    }
    if !kind.is_dir() {
        return refuse("is no longer a directory".into());
    }
    if let Some(profiled) = profiled
        && profiled.dev != 0
        && meta.dev() != profiled.dev
        && meta.ino() != profiled.ino
        && let Some(parent) = spec.path.parent()
        && let Ok(above) = std::fs::metadata(parent)
        && above.dev() == meta.dev()
    {
        // Not a mount point now, and not the directory profiled: a directory restored
        // in place keeps its device, a file system renumbered keeps its inodes.
        return refuse(
            "is no longer the file system profiled: it is a directory of its parent's (a file system not mounted?)"
                .into(),
        );
    }
    // A `volatile` root (a spool, an inbox: existence only) is empty whenever it has
    // drained; refusing it then blocked every acceptance (review s18-r15).
    if stored_entries > 1 && spec.policy != Policy::Volatile {
        let mut names =
            std::fs::read_dir(&spec.path).map_err(|e| EngineError::io(&spec.path, e))?;
        if names.next().is_none() {
            return refuse(format!(
                "is empty where the profile holds {} entries below it (a file system not mounted?)",
                stored_entries - 1
            ));
        }
    }
    Ok(())
}

impl super::Session {
    /// The stored root entry's metadata of the verified root `root` (its first entry,
    /// reading one chunk), for [`refuse_missing_root`].
    pub(super) fn stored_root_meta(
        &self,
        stored: &pacsguard_store::StoredBaseline,
        root: &std::path::Path,
    ) -> Result<Option<Meta>, EngineError> {
        match self.store.stored_entries(stored, root).next() {
            Some(entry) => Ok(Some(entry?).filter(|e| e.rel.is_empty()).map(|e| e.meta)),
            None => Ok(None),
        }
    }
}
