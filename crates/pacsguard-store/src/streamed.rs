//! The signed baseline read a chunk at a time, for commands that must not hold it.
//!
//! [`Store::load`] builds the whole baseline in memory, a few hundred bytes per file.
//! [`Store::load_streamed`] verifies the same signature over the same digest without
//! keeping a single entry: a first pass over the chunks counts each root's entries (the
//! digest puts the count before them) and records each chunk's SHA-256, a second feeds
//! the chunks to the digest as they are stored. Then [`Store::stored_entries`] reads a
//! root back chunk by chunk, and every chunk must hash to what was verified: a store
//! changed since (by another process, or by an attacker between the passes) is an error,
//! never a silently used entry. What stays in memory is 32 bytes per chunk of
//! `ENTRIES_PER_CHUNK` entries.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use pacsguard_fs::{Entry, EntryType};
use pacsguard_profile::codec::decode_entries;
use pacsguard_profile::{Baseline, BaselineDigest, RootProfile, RootSpec};
use rusqlite::OptionalExtension as _;
use sha2::{Digest as _, Sha256};

use crate::sqlite::{SignedInfo, Store, StoreError};

/// A verified baseline whose entries stay in the store.
#[derive(Debug)]
pub struct StoredBaseline {
    /// Generation, time and every root's spec; the roots hold no entries (read them
    /// with [`Store::stored_entries`]).
    pub baseline: Baseline,
    pub info: SignedInfo,
    chunks: Vec<RootChunks>,
}

/// What was verified of one root's chunks.
#[derive(Debug)]
struct RootChunks {
    root: PathBuf,
    entries: u64,
    /// Regular files among the entries and their bytes, for progress reports.
    files: u64,
    bytes: u64,
    /// SHA-256 of each chunk, in sequence order.
    hashes: Vec<[u8; 32]>,
}

impl StoredBaseline {
    /// How many entries the root at `path` holds (0 for a root not in the baseline).
    pub fn entry_count(&self, path: &Path) -> u64 {
        self.chunks
            .iter()
            .find(|c| c.root == path)
            .map_or(0, |c| c.entries)
    }

    /// (files, bytes) the root at `path` recorded, for a progress report's totals.
    pub fn file_totals(&self, path: &Path) -> (u64, u64) {
        self.chunks
            .iter()
            .find(|c| c.root == path)
            .map_or((0, 0), |c| (c.files, c.bytes))
    }
}

impl Store {
    /// The baseline's signature verified as [`Store::load`] verifies it, holding no
    /// entry; `None` if none was ever signed.
    pub fn load_streamed(&self, key: &VerifyingKey) -> Result<Option<StoredBaseline>, StoreError> {
        let Some(row) = self.signature_row(key)? else {
            return Ok(None);
        };
        let specs = self.load_specs()?;
        let mut chunks = Vec::with_capacity(specs.len());
        let mut scratch = Vec::new();
        for spec in &specs {
            let root = spec.path.as_os_str().as_bytes();
            let mut stmt = self
                .conn
                .prepare_cached("SELECT seq, data FROM entry_chunks WHERE root = ?1 ORDER BY seq")
                .map_err(self.sql())?;
            let mut rows = stmt.query([root]).map_err(self.sql())?;
            let mut counted = RootChunks {
                root: spec.path.clone(),
                entries: 0,
                files: 0,
                bytes: 0,
                hashes: Vec::new(),
            };
            while let Some(row) = rows.next().map_err(self.sql())? {
                let seq: i64 = row.get(0).map_err(self.sql())?;
                if usize::try_from(seq).ok() != Some(counted.hashes.len()) {
                    return Err(self.corrupt(format!(
                        "entry chunk {} of {} is missing",
                        counted.hashes.len(),
                        spec.path.display()
                    )));
                }
                let data: Vec<u8> = row.get(1).map_err(self.sql())?;
                decode_entries(&data, &mut scratch).ok_or_else(|| {
                    self.corrupt(format!(
                        "entry chunk {seq} of {} is malformed",
                        spec.path.display()
                    ))
                })?;
                counted.entries += scratch.len() as u64;
                for file in scratch.iter().filter(|e| e.kind == EntryType::File) {
                    counted.files += 1;
                    counted.bytes = counted.bytes.saturating_add(file.meta.size);
                }
                scratch.clear();
                counted.hashes.push(Sha256::digest(&data).into());
            }
            chunks.push(counted);
        }
        let mut digest = BaselineDigest::new(row.generation, row.created, specs.len());
        for (spec, root) in specs.iter().zip(&chunks) {
            digest.root(spec, root.entries);
            for seq in 0..root.hashes.len() {
                // The bytes of a chunk are its entries encoded one after the other, the
                // encoding the digest covers: fed as they are, no decoding needed.
                digest.encoded_entries(&self.verified_chunk(root, seq)?);
            }
        }
        let info = self.verify(key, &row, digest.finish())?;
        let baseline = Baseline {
            generation: row.generation,
            created: row.created,
            roots: specs
                .into_iter()
                .map(|spec| RootProfile {
                    spec,
                    entries: Vec::new(),
                })
                .collect(),
        };
        Ok(Some(StoredBaseline {
            baseline,
            info,
            chunks,
        }))
    }

    /// Chunk `seq` of `root`, which must hash to what was counted.
    fn verified_chunk(&self, root: &RootChunks, seq: usize) -> Result<Vec<u8>, StoreError> {
        let changed = || {
            self.corrupt(format!(
                "entry chunk {seq} of {} changed after it was verified",
                root.root.display()
            ))
        };
        let data: Vec<u8> = self
            .conn
            .prepare_cached("SELECT data FROM entry_chunks WHERE root = ?1 AND seq = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(
                    rusqlite::params![root.root.as_os_str().as_bytes(), seq as i64],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(self.sql())?
            .ok_or_else(changed)?;
        let expected = root.hashes.get(seq).ok_or_else(changed)?;
        if <[u8; 32]>::from(Sha256::digest(&data)) != *expected {
            return Err(changed());
        }
        Ok(data)
    }

    /// The entries of the verified root at `path`, in path order, one chunk held at a
    /// time (none for a root not in the baseline).
    pub fn stored_entries<'s>(
        &'s self,
        stored: &'s StoredBaseline,
        path: &Path,
    ) -> StoredEntries<'s> {
        StoredEntries {
            store: self,
            root: stored.chunks.iter().find(|c| c.root == path),
            next_seq: 0,
            buffer: Vec::new().into_iter(),
            failed: false,
        }
    }

    /// The whole verified root at `path` in memory, for the comparisons that still need
    /// it at once (log rotation in a growing root).
    pub fn stored_root(
        &self,
        stored: &StoredBaseline,
        spec: &RootSpec,
    ) -> Result<RootProfile, StoreError> {
        Ok(RootProfile {
            spec: spec.clone(),
            entries: self
                .stored_entries(stored, &spec.path)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A verified root's entries read back chunk by chunk; see [`Store::stored_entries`].
#[derive(Debug)]
pub struct StoredEntries<'s> {
    store: &'s Store,
    root: Option<&'s RootChunks>,
    next_seq: usize,
    buffer: std::vec::IntoIter<Entry>,
    failed: bool,
}

impl Iterator for StoredEntries<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.buffer.next() {
                return Some(Ok(entry));
            }
            let root = self.root?;
            if self.failed || self.next_seq >= root.hashes.len() {
                return None;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let decoded = self.store.verified_chunk(root, seq).and_then(|data| {
                let mut entries = Vec::new();
                decode_entries(&data, &mut entries)
                    .map(|()| entries)
                    .ok_or_else(|| {
                        self.store.corrupt(format!(
                            "entry chunk {seq} of {} is malformed",
                            root.root.display()
                        ))
                    })
            });
            match decoded {
                Ok(entries) => self.buffer = entries.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
