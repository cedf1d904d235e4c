//! The baseline model and its canonical digest.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use pacsguard_fs::{Entry, HashAlgorithm};
use sha2::{Digest as _, Sha256};

use crate::codec::{encode_entry, encode_strings, put_bytes};
use crate::policy::Policy;

/// Version of the canonical encoding below; part of every signed digest.
pub const FORMAT_VERSION: u32 = 1;

/// How one root is profiled. Recorded in the baseline and signed with it, so an attacker
/// who edits the configuration (say, `static` to `volatile`) changes nothing until a new
/// profile is taken, and `check` says that the configuration differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootSpec {
    /// Absolute, canonical path.
    pub path: PathBuf,
    pub policy: Policy,
    pub hash: HashAlgorithm,
    /// Globs matched against paths relative to the root (`globset` syntax).
    pub exclude: Vec<String>,
    pub cross_mounts: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("root {}: invalid exclude glob {glob:?}: {reason}", .root.display())]
    BadGlob {
        root: PathBuf,
        glob: String,
        reason: String,
    },
    #[error(transparent)]
    Walk(#[from] pacsguard_fs::WalkError),
}

impl RootSpec {
    pub fn exclude_set(&self) -> Result<GlobSet, ProfileError> {
        let mut builder = GlobSetBuilder::new();
        for glob in &self.exclude {
            let compiled = Glob::new(glob).map_err(|e| ProfileError::BadGlob {
                root: self.path.clone(),
                glob: glob.clone(),
                reason: e.kind().to_string(),
            })?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|e| ProfileError::BadGlob {
            root: self.path.clone(),
            glob: self.exclude.join(", "),
            reason: e.to_string(),
        })?;
        // `**` or `*` would leave a signed profile of nothing but the root, and every later
        // check clean whatever happens below it: refused, not taken silently.
        if EXCLUDE_PROBES
            .iter()
            .all(|probe| set.is_match(Path::new(probe)))
        {
            return Err(ProfileError::BadGlob {
                root: self.path.clone(),
                glob: self.exclude.join(", "),
                reason: "these exclusions match every path: nothing below the root would be \
                         profiled"
                    .into(),
            });
        }
        Ok(set)
    }

    /// Whether `path` is this root or lies below it.
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.path)
    }
}

/// Names no one excludes on purpose: exclusions that match all of them match everything.
const EXCLUDE_PROBES: [&str; 2] = ["\u{7f}pacsguard-probe", "\u{7f}pacsguard-probe/\u{7f}entry"];

/// Whether the walk leaves `rel` out under `exclude`: it matches, or lies below a
/// directory that matches (the walk does not descend there).
pub fn is_excluded(exclude: &GlobSet, rel: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let matches = |p: &[u8]| exclude.is_match(Path::new(std::ffi::OsStr::from_bytes(p)));
    !rel.is_empty()
        && (rel
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'/' && matches(&rel[..i]))
            || matches(rel))
}

/// One root of a baseline: how it was taken and what was seen, sorted by relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootProfile {
    pub spec: RootSpec,
    pub entries: Vec<Entry>,
}

impl RootProfile {
    /// The entry at `rel`, by binary search (entries are sorted).
    pub fn entry(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.rel.as_slice().cmp(rel))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The path of an entry, absolute.
    pub fn absolute(&self, rel: &[u8]) -> PathBuf {
        absolute(&self.spec.path, rel)
    }

    /// The absolute path of `rel` below `root`.
    pub fn absolute_of(root: &Path, rel: &[u8]) -> PathBuf {
        absolute(root, rel)
    }
}

pub(crate) fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

/// The whole signed profile of a home.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Baseline {
    /// Incremented by every `profile` and `accept`; signed, so a replayed older baseline
    /// shows an older generation.
    pub generation: u64,
    /// Unix time (seconds) this generation was signed.
    pub created: i64,
    /// Sorted by the bytes of their paths; no root lies inside another.
    pub roots: Vec<RootProfile>,
}

impl Baseline {
    pub fn root(&self, path: &Path) -> Option<&RootProfile> {
        self.roots.iter().find(|r| r.spec.path == path)
    }

    /// The root containing `path`, if any.
    pub fn root_containing(&self, path: &Path) -> Option<&RootProfile> {
        self.roots.iter().find(|r| r.spec.contains(path))
    }

    /// Takes the root at `path` out of the baseline, for a caller that will put its
    /// successor back with [`Baseline::replace_root`]: no copy of its entries is made.
    pub fn take_root(&mut self, path: &Path) -> Option<RootProfile> {
        let index = self.roots.iter().position(|r| r.spec.path == path)?;
        Some(self.roots.remove(index))
    }

    /// Puts `root` in place of the root with the same path (or adds it), keeping order.
    pub fn replace_root(&mut self, root: RootProfile) {
        self.roots.retain(|r| r.spec.path != root.spec.path);
        self.roots.push(root);
        // Byte order, as the store reads them back (`ORDER BY path`) and the digest covers
        // them: `Path` ordering compares components and puts `/a/b` before `/a-c`, bytes
        // do not.
        self.roots.sort_by(|a, b| {
            a.spec
                .path
                .as_os_str()
                .as_bytes()
                .cmp(b.spec.path.as_os_str().as_bytes())
        });
    }

    pub fn entry_count(&self) -> usize {
        self.roots.iter().map(|r| r.entries.len()).sum()
    }

    /// SHA-256 over an unambiguous encoding of everything in the baseline: the format
    /// version, generation and time, every root's spec, and every entry in the encoding of
    /// [`crate::codec`] (the one the store keeps). This is what gets signed.
    pub fn digest(&self) -> [u8; 32] {
        let mut digest = BaselineDigest::new(self.generation, self.created, self.roots.len());
        for root in &self.roots {
            digest.root(&root.spec, root.entries.len() as u64);
            for entry in &root.entries {
                digest.entry(entry);
            }
        }
        digest.finish()
    }
}

/// [`Baseline::digest`] computed a piece at a time, so that a baseline kept in the store
/// is verified (and a new one signed) without holding its entries: the roots in order,
/// each spec with its entry count, then its entries in order. Fed the same, it gives the
/// same value as `Baseline::digest`, which is built on it.
pub struct BaselineDigest {
    hasher: Sha256,
    buffer: Vec<u8>,
}

/// What a signature covers of a generation: format version, generation, time and number
/// of roots. One encoding for the whole-baseline digest and the tree's header leaf.
pub fn encode_generation_header(buffer: &mut Vec<u8>, generation: u64, created: i64, roots: usize) {
    for v in [
        u64::from(FORMAT_VERSION),
        generation,
        created as u64,
        roots as u64,
    ] {
        buffer.extend_from_slice(&v.to_le_bytes());
    }
}

impl RootSpec {
    /// What a signature covers of a root's spec: every field, one encoding for the
    /// whole-baseline digest and the tree's root leaf (a field added here is signed by both).
    pub fn encode_signed(&self, buffer: &mut Vec<u8>) {
        let RootSpec {
            path,
            policy,
            hash,
            exclude,
            cross_mounts,
        } = self;
        put_bytes(buffer, path.as_os_str().as_bytes());
        put_bytes(buffer, policy.as_str().as_bytes());
        put_bytes(buffer, hash.as_str().as_bytes());
        buffer.push(u8::from(*cross_mounts));
        put_bytes(buffer, &encode_strings(exclude));
    }
}

impl std::fmt::Debug for BaselineDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaselineDigest").finish_non_exhaustive()
    }
}

impl BaselineDigest {
    pub fn new(generation: u64, created: i64, roots: usize) -> BaselineDigest {
        let mut buffer = Vec::with_capacity(DIGEST_BUFFER + 4096);
        buffer.extend_from_slice(b"pacsguard-baseline\0");
        encode_generation_header(&mut buffer, generation, created, roots);
        BaselineDigest {
            hasher: Sha256::new(),
            buffer,
        }
    }

    /// Starts a root of `entries` entries (the next ones fed).
    pub fn root(&mut self, spec: &RootSpec, entries: u64) {
        spec.encode_signed(&mut self.buffer);
        self.buffer.extend_from_slice(&entries.to_le_bytes());
        self.flush_full();
    }

    pub fn entry(&mut self, entry: &Entry) {
        encode_entry(&mut self.buffer, entry);
        self.flush_full();
    }

    /// Entries already in the encoding of [`crate::codec`] (a stored chunk, which is
    /// entries encoded one after the other): the same as feeding each entry.
    pub fn encoded_entries(&mut self, encoded: &[u8]) {
        self.hasher.update(&self.buffer);
        self.buffer.clear();
        self.hasher.update(encoded);
    }

    /// Hand the bytes over in large blocks: per-field calls would cost more in call
    /// overhead than in hashing.
    fn flush_full(&mut self) {
        if self.buffer.len() >= DIGEST_BUFFER {
            self.hasher.update(&self.buffer);
            self.buffer.clear();
        }
    }

    pub fn finish(mut self) -> [u8; 32] {
        self.hasher.update(&self.buffer);
        self.hasher.finalize().into()
    }
}

/// Bytes gathered before they are handed to SHA-256.
const DIGEST_BUFFER: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_fs::{Content, Digest, EntryType, Meta, Xattr, XattrValue};

    fn sample() -> Baseline {
        let entry = Entry {
            rel: b"a.dcm".to_vec(),
            kind: EntryType::File,
            meta: Meta {
                size: 3,
                mode: 0o644,
                ..Meta::default()
            },
            link_target: None,
            xattrs: vec![Xattr {
                name: b"user.x".to_vec(),
                value: XattrValue::Inline(b"1".to_vec()),
            }],
            content: Content::Hashed {
                digest: Digest([7; 32]),
                prefix: None,
                dicom: None,
            },
        };
        Baseline {
            generation: 1,
            created: 1_700_000_000,
            roots: vec![RootProfile {
                spec: RootSpec {
                    path: PathBuf::from("/srv/pacs"),
                    policy: Policy::AppendOnly,
                    hash: HashAlgorithm::Blake3,
                    exclude: vec![],
                    cross_mounts: false,
                },
                entries: vec![entry],
            }],
        }
    }

    type Mutation = Box<dyn Fn(&mut Baseline)>;

    #[test]
    fn every_field_is_covered_by_the_digest() {
        let base = sample();
        let d = base.digest();
        let mutations: Vec<Mutation> = vec![
            Box::new(|b| b.generation += 1),
            Box::new(|b| b.created += 1),
            Box::new(|b| b.roots[0].spec.policy = Policy::Volatile),
            Box::new(|b| b.roots[0].spec.hash = HashAlgorithm::Sha256),
            Box::new(|b| b.roots[0].spec.exclude.push("*.tmp".into())),
            Box::new(|b| b.roots[0].spec.cross_mounts = true),
            Box::new(|b| b.roots[0].entries[0].rel.push(b'x')),
            Box::new(|b| b.roots[0].entries[0].meta.mode = 0o755),
            Box::new(|b| b.roots[0].entries[0].meta.ctime.nsec = 1),
            Box::new(|b| b.roots[0].entries[0].meta.nlink = 2),
            Box::new(|b| b.roots[0].entries[0].xattrs.clear()),
            Box::new(|b| b.roots[0].entries[0].link_target = Some(Vec::new())),
            Box::new(|b| b.roots[0].entries[0].content = Content::Unstable),
            Box::new(|b| b.roots[0].entries.clear()),
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut changed = base.clone();
            mutate(&mut changed);
            assert_ne!(changed.digest(), d, "mutation {i} not covered");
        }
        assert_eq!(base.clone().digest(), d);
    }

    #[test]
    fn a_stored_chunk_digests_as_its_entries() {
        let mut base = sample();
        let entry = base.roots[0].entries[0].clone();
        for i in 0..3000u32 {
            let mut e = entry.clone();
            e.rel = format!("e{i:05}").into_bytes();
            base.roots[0].entries.push(e);
        }
        let root = &base.roots[0];
        let mut chunk = Vec::new();
        for e in &root.entries {
            encode_entry(&mut chunk, e);
        }
        let mut streamed = BaselineDigest::new(base.generation, base.created, 1);
        streamed.root(&root.spec, root.entries.len() as u64);
        let (first, second) = chunk.split_at(1000);
        streamed.encoded_entries(first);
        streamed.encoded_entries(second);
        assert_eq!(streamed.finish(), base.digest());
    }
}
