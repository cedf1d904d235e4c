//! Turning the paths a user typed into roots and subtrees.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use pacsguard_profile::Baseline;

use crate::error::EngineError;

/// An absolute path whose directories have their symlinks resolved, but whose last
/// component is kept as typed: `accept DIR/link` takes in the link, never what it points
/// to (a planted link to a whole root must not turn a review of one entry into the
/// acceptance of everything). A path that no longer exists (accepting a deletion) is
/// resolved through its nearest existing ancestor.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf, EngineError> {
    let absolute = absolute(path)?;
    match (
        absolute.parent(),
        absolute.file_name(),
        absolute.components().next_back(),
    ) {
        (Some(parent), Some(name), Some(Component::Normal(_))) => {
            Ok(resolve_all(parent)?.join(name))
        }
        _ => resolve_all(&absolute),
    }
}

/// `path` with every symlink resolved, through its nearest existing ancestor.
fn resolve_all(path: &Path) -> Result<PathBuf, EngineError> {
    let absolute = path;
    let mut existing = absolute;
    let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut real) => {
                for name in missing.iter().rev() {
                    real.push(name);
                }
                return Ok(real);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(EngineError::io(path, e));
                };
                if existing
                    .components()
                    .next_back()
                    .is_some_and(|c| matches!(c, Component::ParentDir))
                {
                    return Err(EngineError::io(path, e));
                }
                missing.push(name);
                existing = parent;
            }
            Err(e) => return Err(EngineError::io(path, e)),
        }
    }
}

/// The path a `check` or `accept` is about. Inside a profiled root the path is taken as
/// typed (only `.` and `..` are folded): a directory inside the root that was swapped for
/// a link must not steer the command to a decoy; the walk then sees the link and reports
/// it. A path that only reaches a root through links outside it (`/srv` -> `/data`) is
/// resolved as [`resolve`] does.
pub(crate) fn target_path(baseline: &Baseline, path: &Path) -> Result<PathBuf, EngineError> {
    let absolute = absolute(path)?;
    let mut lexical = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    if baseline.root_containing(&lexical).is_some() {
        Ok(lexical)
    } else {
        resolve(path)
    }
}

/// `path` made absolute against the working directory, nothing resolved.
fn absolute(path: &Path) -> Result<PathBuf, EngineError> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .map_err(|e| EngineError::io(path, e))?
            .join(path))
    }
}

/// Like [`resolve`], but the path must exist (a tree to profile).
pub(crate) fn resolve_existing(path: &Path) -> Result<PathBuf, EngineError> {
    path.canonicalize().map_err(|e| EngineError::io(path, e))
}

/// The profiled root containing `path`, and `path` relative to it.
pub(crate) fn locate(baseline: &Baseline, path: &Path) -> Result<(PathBuf, Vec<u8>), EngineError> {
    let root = baseline
        .root_containing(path)
        .ok_or_else(|| EngineError::NotProfiled {
            path: path.to_path_buf(),
            roots: baseline
                .roots
                .iter()
                .map(|r| pacsguard_events::escape_path(&r.spec.path))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let rel = path
        .strip_prefix(&root.spec.path)
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    Ok((root.spec.path.clone(), rel))
}

pub(crate) use pacsguard_profile::is_within;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_respects_component_boundaries() {
        assert!(is_within(b"a/b", b"a"));
        assert!(is_within(b"a", b"a"));
        assert!(!is_within(b"ab", b"a"));
        assert!(is_within(b"x", b""));
    }

    #[test]
    fn missing_paths_resolve_through_existing_ancestors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().canonicalize().expect("canon");
        assert_eq!(
            resolve(&dir.path().join("gone/file")).expect("resolves"),
            real.join("gone/file")
        );
    }
}
