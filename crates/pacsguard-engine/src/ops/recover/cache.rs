//! The digests of backup files, kept in the home between runs of `recover --readiness`,
//! so that a nightly run over an unchanged backup is a stat walk.
//!
//! A directory copy's file is known by (device, inode, size, mtime, ctime), as `check
//! --fast` knows a guarded file; an archive by the same of the archive file, with the
//! list of its regular members (position, path, size, digests). Only the readiness report
//! reads the cache: `recover --apply` hashes every copy it uses and verifies what it wrote
//! against the profile, so a wrong cache entry can never put wrong bytes in a tree. A
//! cache that cannot be parsed (torn by a crash, from another version) is started anew.

use std::collections::HashMap;
use std::path::Path;

use pacsguard_fs::{Digest, HashAlgorithm, Meta};
use serde::{Deserialize, Serialize};

use super::backup::{Key, Method};
use crate::error::EngineError;

/// The cache's name in the home.
pub const CACHE_FILE: &str = "recover-cache.json";

/// The most of a cache read back (about 2 million entries): a larger file is not ours,
/// and is started anew rather than read.
pub const MAX_CACHE_BYTES: u64 = 512 << 20;

/// A file's identity: it is taken as unchanged while all of these are.
pub fn identity(meta: &Meta) -> String {
    format!(
        "{}:{}:{}:{}.{}:{}.{}",
        meta.dev,
        meta.ino,
        meta.size,
        meta.mtime.sec,
        meta.mtime.nsec,
        meta.ctime.sec,
        meta.ctime.nsec
    )
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DigestCache {
    /// Directory files: identity -> digests by method.
    #[serde(default)]
    files: HashMap<String, Vec<Cached>>,
    /// Archives: identity -> every regular member.
    #[serde(default)]
    archives: HashMap<String, Vec<CachedMember>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cached {
    algorithm: String,
    split: bool,
    digest: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedMember {
    pub index: u64,
    /// The member's path, hex (exact bytes).
    pub path: String,
    pub size: u64,
    pub digests: Vec<Cached>,
}

impl Cached {
    pub fn of(key: &Key) -> Cached {
        Cached {
            algorithm: key.0.as_str().to_owned(),
            split: key.1,
            digest: key.2.to_hex(),
        }
    }

    pub fn key(&self) -> Option<Key> {
        let algorithm = HashAlgorithm::parse(&self.algorithm)?;
        let bytes: [u8; 32] = hex::decode(&self.digest).ok()?.try_into().ok()?;
        Some((algorithm, self.split, Digest(bytes)))
    }
}

impl DigestCache {
    /// The cache, and why it was not used when it was not (refused: not a regular
    /// file, or over `MAX_CACHE_BYTES`). Unparsable (torn, another version): started anew.
    pub fn load(path: &Path) -> (DigestCache, Option<String>) {
        match crate::files::read_bounded(path, MAX_CACHE_BYTES) {
            Ok(Some(bytes)) => (serde_json::from_slice(&bytes).unwrap_or_default(), None),
            Ok(None) => (DigestCache::default(), None),
            Err(e) => (
                DigestCache::default(),
                Some(format!(
                    "the digest cache was not used ({e}; MAX_CACHE_BYTES is {MAX_CACHE_BYTES}): every backup file was hashed again, and the cache started anew"
                )),
            ),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(self).map_err(|e| EngineError::io(path, e))?;
        crate::durable::write_atomically(path, &bytes, 0o600)
    }

    pub fn file(&self, meta: &Meta, method: Method) -> Option<Key> {
        self.files
            .get(&identity(meta))?
            .iter()
            .filter_map(Cached::key)
            .find(|k| (k.0, k.1) == method)
    }

    pub fn put_file(&mut self, meta: &Meta, key: &Key) {
        self.files
            .entry(identity(meta))
            .or_default()
            .push(Cached::of(key));
    }

    pub fn archive(&self, meta: &Meta) -> Option<&Vec<CachedMember>> {
        self.archives.get(&identity(meta))
    }

    pub fn put_archive(&mut self, meta: &Meta, members: Vec<CachedMember>) {
        self.archives.insert(identity(meta), members);
    }
}
