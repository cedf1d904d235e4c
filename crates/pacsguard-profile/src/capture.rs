//! Capturing the current state of a root: walk, reuse what `--fast` may trust, hash the rest.

use pacsguard_events::{Finding, FindingKind, Severity};
use pacsguard_fs::{
    Content, ContentSplitter, Entry, EntryType, HashRequest, ProblemKind, Split, Tree, WalkOptions,
    hash_files, walk,
};

use crate::baseline::{ProfileError, RootProfile, RootSpec, absolute};
use crate::policy::Policy;
use std::collections::HashMap;

/// Walks the root as its spec says (only the subtree `within`, a path relative to the
/// root, when it is not empty). `skip_dirs` are (device, inode) pairs left out entirely,
/// such as PacsGuard's own home when it lies inside a guarded tree.
pub fn walk_root(
    spec: &RootSpec,
    within: &[u8],
    skip_dirs: &[(u64, u64)],
) -> Result<Tree, ProfileError> {
    let exclude = spec.exclude_set()?;
    let options = WalkOptions {
        cross_mounts: spec.cross_mounts,
        exclude: Some(&exclude),
        skip_dirs: skip_dirs.to_vec(),
        within: within.to_vec(),
    };
    Ok(walk(&spec.path, &options)?)
}

/// Walks several subtrees of one root (paths relative to it) into one tree sorted by
/// path, as `watch` does for the paths its events name. Exclusions are compiled once.
/// Only entries inside the subtrees are kept: a subtree behind a symlinked directory
/// makes the walk take the whole root, and the rest of the root was not asked for.
pub fn walk_subtrees(
    spec: &RootSpec,
    subtrees: &[Vec<u8>],
    skip_dirs: &[(u64, u64)],
) -> Result<Tree, ProfileError> {
    let exclude = spec.exclude_set()?;
    let mut merged = Tree {
        root: spec.path.clone(),
        entries: Vec::new(),
        problems: Vec::new(),
    };
    for within in subtrees {
        let options = WalkOptions {
            cross_mounts: spec.cross_mounts,
            exclude: Some(&exclude),
            skip_dirs: skip_dirs.to_vec(),
            within: within.clone(),
        };
        let mut tree = walk(&spec.path, &options)?;
        let inside = |rel: &[u8]| is_within(rel, within);
        tree.entries.retain(|e| inside(&e.rel));
        tree.problems.retain(|p| inside(&p.rel));
        take_or_append(&mut merged.entries, tree.entries);
        take_or_append(&mut merged.problems, tree.problems);
    }
    merged.entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    merged.entries.dedup_by(|a, b| a.rel == b.rel);
    merged.problems.sort_by(|a, b| a.rel.cmp(&b.rel));
    merged.problems.dedup_by(|a, b| a.rel == b.rel);
    Ok(merged)
}

/// Puts `walked` after what `merged` holds. The first subtree's vector is taken, not
/// copied: a watcher's catch-up walks its whole root as one subtree, and extending an
/// empty vector from it held two copies of the capture at once (issue 15).
fn take_or_append<T>(merged: &mut Vec<T>, mut walked: Vec<T>) {
    if merged.is_empty() {
        *merged = walked;
    } else {
        merged.append(&mut walked);
    }
}

/// Whether `rel` is `within` or below it (everything is within the empty path).
pub fn is_within(rel: &[u8], within: &[u8]) -> bool {
    within.is_empty()
        || rel == within
        || (rel.len() > within.len() && rel.starts_with(within) && rel[within.len()] == b'/')
}

/// `check --fast`: takes the baseline's hash for every file whose size, mtime, ctime,
/// inode and device are all unchanged. Restoring mtime after an edit still moves ctime,
/// so a same-size edit with `touch -r` is re-hashed.
pub fn reuse_unchanged(base: &RootProfile, tree: &mut Tree) {
    reuse_unchanged_where(base, tree, |_| true);
}

/// [`reuse_unchanged`] for the paths `trusted` accepts only (`watch`: the paths no event
/// named), without a copy of the baseline restricted to them.
pub fn reuse_unchanged_where(base: &RootProfile, tree: &mut Tree, trusted: impl Fn(&[u8]) -> bool) {
    for entry in tree
        .entries
        .iter_mut()
        .filter(|e| e.kind == EntryType::File && trusted(&e.rel))
    {
        if let Some(old) = base.entry(&entry.rel)
            && old.kind == EntryType::File
            && old.meta.looks_unchanged(&entry.meta)
            && let Content::Hashed { digest, dicom, .. } = &old.content
        {
            entry.content = Content::Hashed {
                digest: *digest,
                prefix: None,
                dicom: dicom.clone(),
            };
        }
    }
}

/// What to hash for `entry`: a growing file that grew also gets the digest of its old
/// length, to prove the old prefix is unchanged.
pub fn hash_request(spec: &RootSpec, base: Option<&RootProfile>, entry: &Entry) -> HashRequest {
    if entry.kind != EntryType::File || entry.content != Content::Pending {
        return HashRequest::Skip;
    }
    if spec.policy == Policy::Growing
        && let Some(old) = base.and_then(|b| b.entry(&entry.rel))
        && old.kind == EntryType::File
        && entry.meta.size >= old.meta.size
    {
        return HashRequest::FullWithPrefix(old.meta.size);
    }
    if spec.policy.is_dicom_aware() {
        // A file whose profile holds a whole-file digest (not DICOM then, or profiled before
        // DICOM awareness) is compared whole: splitting it now would change its digest
        // without its content changing. A file that became DICOM still differs whole.
        let profiled_whole = base
            .and_then(|b| b.entry(&entry.rel))
            .is_some_and(|old| matches!(old.content, Content::Hashed { dicom: None, .. }));
        if !profiled_whole {
            return HashRequest::Split;
        }
    }
    HashRequest::Full
}

// The DICOM reader names the values of an instance's identity (`IDENTITY_TAGS`) and the
// hashing takes them in the order and shape it digests them; both must agree (the number
// of values is checked by the type of `Split::identity`).
const _: () = assert!(
    pacsguard_dicom::PLACE_VALUES == pacsguard_fs::PLACE_VALUES
        && pacsguard_dicom::DETAIL_VALUES == pacsguard_fs::DETAIL_VALUES
        && pacsguard_dicom::MODALITY_VALUES == pacsguard_fs::MODALITY_VALUES
);

/// Splits DICOM instances into header and Pixel Data for hashing (pacsguard-dicom reads
/// them; pacsguard-fs reads the files).
#[derive(Clone, Copy, Debug, Default)]
pub struct DicomSplitter;

impl ContentSplitter for DicomSplitter {
    fn split(&self, bytes: &[u8]) -> Option<Split> {
        let layout = pacsguard_dicom::layout(bytes)?;
        Some(Split {
            pixels: layout.pixels,
            instance_uid: layout.instance_uid,
            transfer_syntax: layout.transfer_syntax,
            file_meta: layout.file_meta,
            identity: layout.identity,
            description: layout.description,
            form: pacsguard_fs::PixelForm {
                photometric: layout.form.photometric,
                samples: layout.form.samples,
                bits_allocated: layout.form.bits_allocated,
                rows: layout.form.rows,
                columns: layout.form.columns,
            },
        })
    }
}

/// The digest the profile would record for a file holding `bytes`, hashed whole or (for
/// an entry profiled with DICOM facts, `split`) as header and Pixel Data, exactly as
/// `check` hashes it: a copy found elsewhere (a backup) is compared with the profile by it.
pub fn profile_digest(
    algorithm: pacsguard_fs::HashAlgorithm,
    split: bool,
    bytes: &[u8],
) -> Option<pacsguard_fs::Digest> {
    let splitter = DicomSplitter;
    let splitter: Option<&dyn pacsguard_fs::ContentSplitter> = split.then_some(&splitter as _);
    pacsguard_fs::digest_bytes(bytes, algorithm, splitter)
        .digest()
        .copied()
}

/// Hashes every file still pending (in parallel), then drops entries that vanished.
pub fn hash_tree(
    spec: &RootSpec,
    base: Option<&RootProfile>,
    tree: &mut Tree,
    progress: &(dyn Fn(u64) + Sync),
) {
    if spec.policy.hashes_content() {
        // A rotated log (same inode, new name) must still prove its old prefix: find the
        // profiled file by inode when no entry exists at its new path.
        let by_inode: HashMap<(u64, u64), &Entry> = match base {
            Some(base) if spec.policy == Policy::Growing => base
                .entries
                .iter()
                .filter(|e| e.kind == EntryType::File)
                .map(|e| ((e.meta.dev, e.meta.ino), e))
                .collect(),
            _ => HashMap::new(),
        };
        // In a growing root, the prefix to prove is the one of the profiled log this file
        // continues: the same inode under another name (a rotation renamed it), else for a
        // fresh inode with a rotation name the log it may be a copy of (copytruncate),
        // else the profiled file at the same path.
        let request = |e: &Entry| {
            let plain = hash_request(spec, base, e);
            let Some(base) = base.filter(|_| spec.policy == Policy::Growing) else {
                return plain;
            };
            if matches!(plain, HashRequest::Skip) {
                return plain;
            }
            let continued = match by_inode.get(&(e.meta.dev, e.meta.ino)) {
                Some(old) => Some(*old),
                None => crate::compare::rotation_source(&e.rel, |rel| base.entry(rel)),
            };
            match continued {
                Some(old) if e.meta.size >= old.meta.size => {
                    HashRequest::FullWithPrefix(old.meta.size)
                }
                _ => plain,
            }
        };
        let splitter = DicomSplitter;
        hash_files(
            &spec.path,
            &mut tree.entries,
            spec.hash,
            request,
            Some(&splitter),
            progress,
        );
    } else {
        for entry in tree
            .entries
            .iter_mut()
            .filter(|e| e.content == Content::Pending)
        {
            entry.content = Content::Skipped;
        }
    }
    tree.entries.retain(|e| e.content != Content::Vanished);
}

/// Findings about the capture itself: what could not be read or held still, what was not
/// descended into. These are reported by `profile` as much as by `check`.
pub fn capture_findings(spec: &RootSpec, tree: &Tree) -> Vec<Finding> {
    let mut findings = problem_findings(spec, &tree.problems);
    findings.extend(tree.entries.iter().filter_map(|e| entry_finding(spec, e)));
    findings
}

/// The capture findings of the walk's problems (the first of [`capture_findings`]).
pub fn problem_findings(spec: &RootSpec, problems: &[pacsguard_fs::Problem]) -> Vec<Finding> {
    let finding = |rel: &[u8], kind, severity, detail: String| {
        Finding::new(absolute(&spec.path, rel), kind, severity, detail).with_root(spec.path.clone())
    };
    problems
        .iter()
        .map(|problem| match problem.kind {
            ProblemKind::Unreadable
            | ProblemKind::Unlistable
            | ProblemKind::Vanished
            | ProblemKind::ChangedWhileListed => finding(
                &problem.rel,
                FindingKind::Unreadable,
                Severity::Warning,
                problem.detail.clone(),
            ),
            // A limit anyone who can add names reaches, and whose cost they control: said
            // as a warning at least (the project's rule for attacker-reachable limits).
            ProblemKind::ReadInPasses => finding(
                &problem.rel,
                FindingKind::ListedInPasses,
                Severity::Warning,
                problem.detail.clone(),
            ),
            ProblemKind::NotDescended => finding(
                &problem.rel,
                FindingKind::NotDescended,
                Severity::Info,
                problem.detail.clone(),
            ),
            // Nothing below was verified: an implant there must not leave a clean exit.
            ProblemKind::TooDeep => finding(
                &problem.rel,
                FindingKind::NotDescended,
                Severity::Warning,
                problem.detail.clone(),
            ),
        })
        .collect()
}

/// The capture finding of one hashed entry, if its content could not be read or held
/// still (the rest of [`capture_findings`], entry by entry).
pub fn entry_finding(spec: &RootSpec, entry: &Entry) -> Option<Finding> {
    let finding = |kind, detail: String| {
        Finding::new(
            absolute(&spec.path, &entry.rel),
            kind,
            Severity::Warning,
            detail,
        )
        .with_root(spec.path.clone())
    };
    match &entry.content {
        Content::Unreadable(reason) => Some(finding(
            FindingKind::Unreadable,
            format!("cannot read: {reason}"),
        )),
        Content::Unstable => Some(finding(
            FindingKind::Unstable,
            "changed while being hashed on every attempt; no hash recorded".into(),
        )),
        _ => None,
    }
}
