//! Finding copies of files in backups by content digest, not by path.
//!
//! A backup is a directory copy (`cp -a`, `rsync -a`) or a tar archive, plain or gzip.
//! Only what could be a wanted file is hashed: a directory is walked (a stat walk, the
//! same read-only walk as a profile's) and only files whose size equals the size of a
//! wanted file are read; an archive is read member by member and only members of a wanted
//! size are hashed. Each candidate is hashed the way the profile hashed the file it could
//! replace (the root's algorithm; whole, or as DICOM header and Pixel Data), so equal
//! digests mean the bytes the profile signed.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Finding, FindingKind, Severity};
use pacsguard_fs::{Content, Digest, EntryType, HashAlgorithm, HashRequest, WalkOptions};
use pacsguard_profile::{DicomSplitter, profile_digest};
use serde::Serialize;

use super::cache::{Cached, CachedMember, DigestCache};
use crate::error::EngineError;

/// Members read from one archive before the rest of it is left unread (reported as a
/// `not-inspected` warning): an archive's member count is whatever its writer chose.
pub const MAX_ARCHIVE_MEMBERS: u64 = 5_000_000;

/// Members larger than this are hashed as a stream, not held whole; only a DICOM instance
/// hashed as header and Pixel Data needs its bytes whole, and the profile never splits one
/// larger than `pacsguard_fs::MAX_SPLIT_BYTES`.
const MAX_MEMBER_IN_MEMORY: u64 = pacsguard_fs::MAX_SPLIT_BYTES;

/// How a profile hashed a file: the algorithm, and whether as header + Pixel Data.
pub type Method = (HashAlgorithm, bool);

/// A digest under its method: the identity of a content.
pub type Key = (HashAlgorithm, bool, Digest);

/// Where a copy is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Source {
    /// A file of a directory copy.
    File {
        #[serde(serialize_with = "crate::ops::serialize_path")]
        path: PathBuf,
    },
    /// A member of a tar archive: its path as stored, and its position (the same path can
    /// occur twice in an archive; the position names the copy that was hashed).
    Member {
        #[serde(serialize_with = "crate::ops::serialize_path")]
        archive: PathBuf,
        #[serde(serialize_with = "crate::ops::serialize_path")]
        member: PathBuf,
        index: u64,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File { path } => f.write_str(&pacsguard_events::escape_path(path)),
            Source::Member {
                archive, member, ..
            } => write!(
                f,
                "{} (member {})",
                pacsguard_events::escape_path(archive),
                pacsguard_events::escape_path(member)
            ),
        }
    }
}

/// What to look for: per size, the methods the wanted files of that size were hashed with,
/// and the keys wanted.
#[derive(Debug, Default)]
pub struct Wanted {
    pub by_size: HashMap<u64, HashSet<Method>>,
    pub keys: HashSet<Key>,
}

impl Wanted {
    pub fn add(&mut self, size: u64, key: Key) {
        self.by_size.entry(size).or_default().insert((key.0, key.1));
        self.keys.insert(key);
    }
}

/// One backup as it was read.
#[derive(Debug, Default, Serialize)]
pub struct BackupSummary {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub path: PathBuf,
    /// `directory`, `tar` or `tar.gz`.
    pub kind: &'static str,
    /// Files (or members) seen, and those of a wanted size that were hashed.
    pub files: u64,
    pub hashed: u64,
    pub hashed_bytes: u64,
    /// Files (or members) whose digest came from the home's cache (unchanged since).
    pub cached: u64,
}

/// What the backups hold of the wanted contents: for each key found, every copy (the
/// first is used), and what could not be read.
#[derive(Debug, Default)]
pub struct Index {
    pub found: HashMap<Key, Vec<Source>>,
    /// Every regular file or member hashed, by its path relative to the backup (for
    /// telling a corrupt copy from a missing one).
    pub hashed_at: HashMap<Vec<u8>, Vec<Key>>,
    pub summaries: Vec<BackupSummary>,
    pub problems: Vec<Finding>,
    /// Every regular file of the backups (relative path, where it is), when asked for.
    pub all_files: Vec<(Vec<u8>, PathBuf)>,
    /// The digests computed or reused in this run, for the next.
    pub new_cache: DigestCache,
}

impl Index {
    pub fn save_cache(&self, path: &Path) -> Result<(), EngineError> {
        self.new_cache.save(path)
    }

    fn record(&mut self, key: Key, source: Source, wanted: &Wanted) {
        if wanted.keys.contains(&key) {
            self.found.entry(key).or_default().push(source);
        }
    }
}

/// Refuses (exit 2) an empty list of backups, and (naming it) a backup that is not there
/// or is neither a directory nor a regular file (a tar archive): a symbolic link is not
/// followed.
pub fn validate(backups: &[PathBuf]) -> Result<(), EngineError> {
    if backups.is_empty() {
        return Err(EngineError::Usage(
            "name at least one backup with --from (a directory copy or a tar archive)".into(),
        ));
    }
    for backup in backups {
        let meta = std::fs::symlink_metadata(backup).map_err(|e| EngineError::io(backup, e))?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(EngineError::io(
                backup,
                "not a directory or a regular file (a tar archive): a symbolic link is not followed",
            ));
        }
    }
    Ok(())
}

/// Reads every backup for copies of `wanted`. A backup that is neither a directory nor a
/// regular file, or cannot be opened, is an error (exit 2): a report that silently left a
/// named backup out would understate what can be recovered.
pub fn search(backups: &[PathBuf], wanted: &Wanted) -> Result<Index, EngineError> {
    search_cached(backups, wanted, None, false)
}

/// [`search`], taking digests from `cache` where a file is unchanged, and listing every
/// file of the backups when `list_all`.
pub fn search_cached(
    backups: &[PathBuf],
    wanted: &Wanted,
    cache: Option<&DigestCache>,
    list_all: bool,
) -> Result<Index, EngineError> {
    let mut index = Index::default();
    let ctx = Context {
        wanted,
        cache,
        list_all,
    };
    for backup in backups {
        let backup = std::path::absolute(backup).map_err(|e| EngineError::io(backup, e))?;
        let meta = std::fs::symlink_metadata(&backup).map_err(|e| EngineError::io(&backup, e))?;
        if meta.is_dir() {
            search_directory(&backup, &ctx, &mut index)?;
        } else if meta.is_file() {
            search_archive(&backup, &ctx, &mut index, MAX_ARCHIVE_MEMBERS)?;
        } else {
            return Err(EngineError::io(
                &backup,
                "not a directory or a regular file (a tar archive): a symbolic link is not followed",
            ));
        }
    }
    Ok(index)
}

/// What one search is asked for.
pub struct Context<'a> {
    pub wanted: &'a Wanted,
    pub cache: Option<&'a DigestCache>,
    pub list_all: bool,
}

fn search_directory(root: &Path, ctx: &Context<'_>, index: &mut Index) -> Result<(), EngineError> {
    let wanted = ctx.wanted;
    let options = WalkOptions {
        cross_mounts: true,
        exclude: None,
        skip_dirs: Vec::new(),
        within: Vec::new(),
    };
    let tree = pacsguard_fs::walk(root, &options).map_err(|e| EngineError::io(root, e))?;
    let mut summary = BackupSummary {
        path: root.to_path_buf(),
        kind: "directory",
        ..Default::default()
    };
    for problem in &tree.problems {
        index.problems.push(problem_finding(
            &absolute(root, &problem.rel),
            format!("backup not read in full: {}", problem.detail),
        ));
    }
    let candidates: Vec<_> = tree
        .entries
        .into_iter()
        .filter(|e| e.kind == EntryType::File)
        .inspect(|e| {
            summary.files += 1;
            if ctx.list_all {
                index
                    .all_files
                    .push((e.rel.clone(), absolute(root, &e.rel)));
            }
        })
        .filter(|e| wanted.by_size.contains_key(&e.meta.size))
        .collect();
    // One pass per method: a size can be wanted whole and split (rare: two damaged files
    // of one size, one profiled as DICOM and one not).
    let methods: HashSet<Method> = wanted.by_size.values().flatten().copied().collect();
    for (algorithm, split) in methods {
        let mut batch = Vec::new();
        for entry in candidates
            .iter()
            .filter(|e| wanted.by_size[&e.meta.size].contains(&(algorithm, split)))
        {
            match ctx
                .cache
                .and_then(|c| c.file(&entry.meta, (algorithm, split)))
            {
                Some(key) => {
                    summary.cached += 1;
                    index.new_cache.put_file(&entry.meta, &key);
                    index
                        .hashed_at
                        .entry(entry.rel.clone())
                        .or_default()
                        .push(key);
                    let path = absolute(root, &entry.rel);
                    index.record(key, Source::File { path }, wanted);
                }
                None => batch.push(entry.clone()),
            }
        }
        let request = |_: &pacsguard_fs::Entry| {
            if split {
                HashRequest::Split
            } else {
                HashRequest::Full
            }
        };
        pacsguard_fs::hash_files(
            root,
            &mut batch,
            algorithm,
            request,
            Some(&DicomSplitter),
            &|_| {},
        );
        for entry in batch {
            match &entry.content {
                Content::Hashed { digest, .. } => {
                    summary.hashed += 1;
                    summary.hashed_bytes += entry.meta.size;
                    let key = (algorithm, split, *digest);
                    index.new_cache.put_file(&entry.meta, &key);
                    index
                        .hashed_at
                        .entry(entry.rel.clone())
                        .or_default()
                        .push(key);
                    let path = absolute(root, &entry.rel);
                    index.record(key, Source::File { path }, wanted);
                }
                Content::Unreadable(why) => index.problems.push(problem_finding(
                    &absolute(root, &entry.rel),
                    format!("backup file not readable: {why}"),
                )),
                Content::Unstable => index.problems.push(problem_finding(
                    &absolute(root, &entry.rel),
                    "backup file changed while it was read".to_owned(),
                )),
                _ => {}
            }
        }
    }
    index.summaries.push(summary);
    Ok(())
}

/// An archive open for reading, its kind (`tar` or `tar.gz`) and the archive file's
/// metadata (its identity for the digest cache).
pub type Opened = (
    tar::Archive<Box<dyn Read>>,
    &'static str,
    pacsguard_fs::Meta,
);

/// Opens a tar archive (gzip-compressed or not, told by its first bytes) for reading.
pub fn open_archive(path: &Path) -> Result<Opened, EngineError> {
    let mut file = pacsguard_fs::open_regular(path)
        .map_err(|e| EngineError::io(path, crate::files::refusal(&e)))?;
    let meta = pacsguard_fs::Meta::of(&file.metadata().map_err(|e| EngineError::io(path, e))?);
    let mut magic = [0u8; 2];
    let n = file
        .read(&mut magic)
        .map_err(|e| EngineError::io(path, e))?;
    file.rewind().map_err(|e| EngineError::io(path, e))?;
    let file = io::BufReader::with_capacity(1 << 20, file);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        let reader: Box<dyn Read> = Box::new(flate2::read::MultiGzDecoder::new(file));
        (tar::Archive::new(reader), "tar.gz", meta)
    } else {
        let reader: Box<dyn Read> = Box::new(file);
        (tar::Archive::new(reader), "tar", meta)
    })
}

fn search_archive(
    path: &Path,
    ctx: &Context<'_>,
    index: &mut Index,
    max_members: u64,
) -> Result<(), EngineError> {
    let wanted = ctx.wanted;
    let (mut archive, kind, meta) = open_archive(path)?;
    let mut summary = BackupSummary {
        path: path.to_path_buf(),
        kind,
        ..Default::default()
    };
    if let Some(members) = ctx.cache.and_then(|c| c.archive(&meta))
        && covers(members, wanted)
    {
        for member in members {
            let name = PathBuf::from(std::ffi::OsStr::from_bytes(
                &hex::decode(&member.path).unwrap_or_default(),
            ));
            summary.files += 1;
            summary.cached += 1;
            let rel = member_rel(&name);
            if ctx.list_all {
                index.all_files.push((rel.clone(), path.join(&name)));
            }
            for key in member.digests.iter().filter_map(Cached::key) {
                index.hashed_at.entry(rel.clone()).or_default().push(key);
                let source = Source::Member {
                    archive: path.to_path_buf(),
                    member: name.clone(),
                    index: member.index,
                };
                index.record(key, source, wanted);
            }
        }
        index.new_cache.put_archive(&meta, members.clone());
        index.summaries.push(summary);
        return Ok(());
    }
    let mut listed: Vec<CachedMember> = Vec::new();
    let mut complete = true;
    let not_tar = |e: io::Error| {
        EngineError::io(
            path,
            format!("not a readable tar archive (plain or gzip): {e}"),
        )
    };
    let entries = archive.entries().map_err(not_tar)?;
    for (position, entry) in entries.enumerate() {
        let position = position as u64;
        if position >= max_members {
            index.problems.push(problem_finding(
                path,
                format!(
                    "the archive has more than {max_members} members (MAX_ARCHIVE_MEMBERS): the rest was not read"
                ),
            ));
            complete = false;
            break;
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            // The first header is the archive itself: not a tar at all is an error. A bad
            // header later (a truncated or damaged backup) ends what can be read.
            Err(e) if position == 0 => return Err(not_tar(e)),
            Err(e) => {
                index.problems.push(problem_finding(
                    path,
                    format!(
                        "the archive is damaged after member {position}: {e}; the rest was not read"
                    ),
                ));
                complete = false;
                break;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        summary.files += 1;
        let size = entry.size();
        let member = PathBuf::from(std::ffi::OsStr::from_bytes(&entry.path_bytes()));
        if ctx.list_all {
            index
                .all_files
                .push((member_rel(&member), path.join(&member)));
        }
        let mut cached = CachedMember {
            index: position,
            path: hex::encode(member.as_os_str().as_bytes()),
            size,
            digests: Vec::new(),
        };
        let Some(methods) = wanted.by_size.get(&size) else {
            listed.push(cached);
            continue;
        };
        let keys = match member_keys(&mut entry, size, methods) {
            Ok(keys) => keys,
            Err(e) => {
                index.problems.push(problem_finding(
                    path,
                    format!(
                        "member {} could not be read: {e}; the rest was not read",
                        pacsguard_events::escape_path(&member)
                    ),
                ));
                complete = false;
                break;
            }
        };
        summary.hashed += 1;
        summary.hashed_bytes += size;
        let rel = member_rel(&member);
        cached.digests = keys.iter().map(Cached::of).collect();
        listed.push(cached);
        for key in keys {
            index.hashed_at.entry(rel.clone()).or_default().push(key);
            let source = Source::Member {
                archive: path.to_path_buf(),
                member: member.clone(),
                index: position,
            };
            index.record(key, source, wanted);
        }
    }
    // Only an archive read to its end is remembered: a partial list would hide members.
    if complete {
        index.new_cache.put_archive(&meta, listed);
    }
    index.summaries.push(summary);
    Ok(())
}

/// Whether the cached members of an archive answer every wanted size and method.
fn covers(members: &[CachedMember], wanted: &Wanted) -> bool {
    members.iter().all(|m| match wanted.by_size.get(&m.size) {
        None => true,
        Some(methods) => methods.iter().all(|method| {
            m.digests
                .iter()
                .filter_map(Cached::key)
                .any(|k| (k.0, k.1) == *method)
        }),
    })
}

/// A member's path as a path relative to the archived tree: `./a/b` and `a/b` alike.
fn member_rel(member: &Path) -> Vec<u8> {
    let bytes = member.as_os_str().as_bytes();
    let mut rel = bytes;
    while let Some(rest) = rel.strip_prefix(b"./") {
        rel = rest;
    }
    rel.strip_prefix(b"/").unwrap_or(rel).to_vec()
}

/// The digests of one member under each method asked for.
fn member_keys(
    entry: &mut impl Read,
    size: u64,
    methods: &HashSet<Method>,
) -> io::Result<Vec<Key>> {
    let needs_whole = methods.iter().any(|&(_, split)| split);
    if needs_whole && size <= MAX_MEMBER_IN_MEMORY {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry.take(size).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(methods
            .iter()
            .filter_map(|&(algorithm, split)| {
                profile_digest(algorithm, split, &bytes).map(|d| (algorithm, split, d))
            })
            .collect());
    }
    // Whole-file digests only: streamed, every algorithm asked for at once.
    let mut hashers: Vec<(HashAlgorithm, pacsguard_fs::Hasher)> = methods
        .iter()
        .filter(|&&(_, split)| !split)
        .map(|&(algorithm, _)| (algorithm, algorithm.hasher()))
        .collect();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        for (_, hasher) in &mut hashers {
            hasher.update(&buffer[..n]);
        }
    }
    if total != size {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(hashers
        .into_iter()
        .map(|(algorithm, hasher)| (algorithm, false, hasher.finalize()))
        .collect())
}

fn problem_finding(path: &Path, detail: String) -> Finding {
    Finding::new(
        path.to_path_buf(),
        FindingKind::NotInspected,
        Severity::Warning,
        detail,
    )
}

fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    pacsguard_profile::RootProfile::absolute_of(root, rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar archive of `count` one-byte members, written with the real `tar` program.
    fn archive_of(dir: &Path, count: u64) -> PathBuf {
        let tree = dir.join("tree");
        std::fs::create_dir(&tree).expect("mkdir");
        for i in 0..count {
            std::fs::write(tree.join(format!("f{i}")), [b'a' + (i % 26) as u8]).expect("write");
        }
        let archive = dir.join("backup.tar");
        let status = std::process::Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&tree)
            .arg(".")
            .status()
            .expect("tar runs");
        assert!(status.success());
        archive
    }

    #[test]
    fn archive_member_limit_is_reported_not_silent() {
        let dir = tempfile::tempdir().expect("tempdir");
        // "." plus five files: six members.
        let archive = archive_of(dir.path(), 5);
        let mut wanted = Wanted::default();
        let digest = profile_digest(HashAlgorithm::Blake3, false, b"z").expect("digest");
        wanted.add(1, (HashAlgorithm::Blake3, false, digest));
        for (limit, reported) in [(6, false), (5, true)] {
            let mut index = Index::default();
            let ctx = Context {
                wanted: &wanted,
                cache: None,
                list_all: false,
            };
            search_archive(&archive, &ctx, &mut index, limit).expect("read");
            assert_eq!(
                index
                    .problems
                    .iter()
                    .any(|p| p.detail.contains("MAX_ARCHIVE_MEMBERS")),
                reported,
                "limit {limit}: {:?}",
                index.problems
            );
        }
    }
}
