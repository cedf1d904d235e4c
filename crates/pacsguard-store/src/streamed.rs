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

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use pacsguard_fs::{Content, Entry, EntryType};
use pacsguard_profile::codec::{decode_entries, encode_entry, encode_strings};
use pacsguard_profile::{Baseline, BaselineDigest, RootProfile, RootSpec};
use rusqlite::OptionalExtension as _;
use sha2::{Digest as _, Sha256};

use crate::lock::{TrailMarkHandoff, WriterOpen, write_transaction};
use crate::merkle::{self, ChunkLeaf};
use crate::signing::signing_message_v3;
use crate::sqlite::{
    Acceptance, ENTRIES_PER_CHUNK, SignedInfo, Store, StoreError, write_trail_mark,
};

/// A verified baseline whose entries stay in the store.
#[derive(Debug)]
pub struct StoredBaseline {
    /// Generation, time and every root's spec; the roots hold no entries (read them
    /// with [`Store::stored_entries`]).
    pub baseline: Baseline,
    pub info: SignedInfo,
    chunks: Vec<RootChunks>,
    /// Digest of the acceptances the signature was verified with: a new signature
    /// covers these, not rows written into the store since.
    acceptances: [u8; 32],
    /// Verified from the stored leaf rows (signed v3): a save then rewrites only the
    /// leaf rows of the chunks it writes. Otherwise (signed v1/v2, the leaves computed
    /// from the chunks) every leaf row is written.
    leaves_stored: bool,
}

/// What was verified of one root's chunks.
#[derive(Debug)]
struct RootChunks {
    root: PathBuf,
    entries: u64,
    /// Regular files among the entries and their bytes, for progress reports.
    files: u64,
    bytes: u64,
    /// The signed leaf of each chunk, in sequence order.
    leaves: Vec<ChunkLeaf>,
    /// Chunks written in this save (read back at commit: the signature must cover the
    /// bytes stored, not the ones meant).
    fresh: Vec<usize>,
    /// Patched in place ([`StreamedSave::patch_root`]): only the `fresh` chunks' leaf
    /// rows change; a root written whole has all of its leaf rows replaced.
    patched: bool,
}

impl RootChunks {
    /// Chunk `seq` as `conn` sees it (the store, or a transaction writing it), if it still
    /// hashes to what was verified or written: `None` when it is missing or differs.
    fn read_verified(
        &self,
        conn: &rusqlite::Connection,
        seq: usize,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        let data: Option<Vec<u8>> = conn
            .prepare_cached("SELECT data FROM entry_chunks WHERE root = ?1 AND seq = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(
                    rusqlite::params![self.root.as_os_str().as_bytes(), seq as i64],
                    |r| r.get(0),
                )
                .optional()
            })?;
        Ok(data.filter(|data| {
            self.leaves.get(seq).map(|l| l.hash) == Some(<[u8; 32]>::from(Sha256::digest(data)))
        }))
    }
}

/// The baseline of a signature row and its specs, holding no entry.
fn bare_baseline(row: &crate::sqlite::SignatureRow, specs: Vec<RootSpec>) -> Baseline {
    Baseline {
        generation: row.generation,
        created: row.created,
        roots: specs
            .into_iter()
            .map(|spec| RootProfile {
                spec,
                entries: Vec::new(),
            })
            .collect(),
    }
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
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let Some(row) = self.signature_row(key)? else {
            return Ok(None);
        };
        let specs = self.load_specs()?;
        let mut refused = None;
        if merkle::has_leaves(&self.conn).map_err(self.sql())? {
            // Signed v3: the tree is verified from the leaf rows, no chunk read.
            let verified = self.leaf_rows(&specs).and_then(|chunks| {
                let tree = merkle::baseline_root(
                    row.generation,
                    row.created,
                    specs
                        .iter()
                        .zip(&chunks)
                        .map(|(s, c)| (s, c.leaves.as_slice())),
                );
                self.verify_with_acceptances(key, &row, tree, true)
                    .map(|verified| (chunks, verified))
            });
            match verified {
                Ok((chunks, (info, acceptances))) => {
                    return Ok(Some(StoredBaseline {
                        baseline: bare_baseline(&row, specs),
                        info,
                        chunks,
                        acceptances,
                        leaves_stored: true,
                    }));
                }
                // Not signed v3 (leaf rows left by a v3 save, then a v2 signature
                // written by an older release): verified the old way below, every
                // chunk digested. If that fails too, this is the error said (it names
                // what does not match).
                Err(e @ (StoreError::BadSignature { .. } | StoreError::Corrupt { .. })) => {
                    refused = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        self.load_streamed_digest(key, row, specs)
            .map_err(|e| refused.unwrap_or(e))
    }

    /// [`Store::load_streamed`] of a store signed v1 or v2: the whole baseline's digest,
    /// every chunk read twice (counted, then digested).
    fn load_streamed_digest(
        &self,
        key: &VerifyingKey,
        row: crate::sqlite::SignatureRow,
        specs: Vec<RootSpec>,
    ) -> Result<Option<StoredBaseline>, StoreError> {
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
                leaves: Vec::new(),
                fresh: Vec::new(),
                patched: false,
            };
            while let Some(row) = rows.next().map_err(self.sql())? {
                let seq: i64 = row.get(0).map_err(self.sql())?;
                if usize::try_from(seq).ok() != Some(counted.leaves.len()) {
                    return Err(self.corrupt(format!(
                        "entry chunk {} of {} is missing",
                        counted.leaves.len(),
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
                let leaf = ChunkLeaf::of(&data, &scratch);
                counted.entries += leaf.entries;
                counted.files += leaf.files;
                counted.bytes = counted.bytes.saturating_add(leaf.bytes);
                scratch.clear();
                counted.leaves.push(leaf);
            }
            chunks.push(counted);
        }
        let mut digest = BaselineDigest::new(row.generation, row.created, specs.len());
        for (spec, root) in specs.iter().zip(&chunks) {
            digest.root(spec, root.entries);
            for seq in 0..root.leaves.len() {
                // The bytes of a chunk are its entries encoded one after the other, the
                // encoding the digest covers: fed as they are, no decoding needed.
                digest.encoded_entries(&self.verified_chunk(root, seq)?);
            }
        }
        let (info, acceptances) =
            self.verify_with_acceptances(key, &row, digest.finish(), false)?;
        Ok(Some(StoredBaseline {
            baseline: bare_baseline(&row, specs),
            info,
            chunks,
            acceptances,
            leaves_stored: false,
        }))
    }

    /// Each root's leaf rows, checked against the chunks stored: a chunk row with no
    /// leaf (added or duplicated) or a leaf with no chunk (one deleted) is an error here,
    /// before anything is used; the leaves themselves are verified through the signed
    /// tree, and each chunk against its leaf when it is read.
    fn leaf_rows(&self, specs: &[RootSpec]) -> Result<Vec<RootChunks>, StoreError> {
        let mut stored = std::collections::HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT root, count(*), min(seq), max(seq) FROM entry_chunks GROUP BY root",
                )
                .map_err(self.sql())?;
            let mut rows = stmt.query([]).map_err(self.sql())?;
            while let Some(row) = rows.next().map_err(self.sql())? {
                let root: Vec<u8> = row.get(0).map_err(self.sql())?;
                let counts: (i64, i64, i64) = (
                    row.get(1).map_err(self.sql())?,
                    row.get(2).map_err(self.sql())?,
                    row.get(3).map_err(self.sql())?,
                );
                stored.insert(root, counts);
            }
        }
        let leaf_roots: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM chunk_leaves WHERE root NOT IN (SELECT path FROM roots)",
                [],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        if leaf_roots != 0 {
            return Err(self.corrupt(format!(
                "{leaf_roots} chunk leaves belong to no profiled root"
            )));
        }
        let mut chunks = Vec::with_capacity(specs.len());
        for spec in specs {
            let leaves = merkle::read_leaves(&self.conn, &spec.path)
                .map_err(self.sql())?
                .map_err(|reason| self.corrupt(reason))?;
            let n = leaves.len() as i64;
            let expected = if n == 0 { None } else { Some((n, 0, n - 1)) };
            if stored.get(spec.path.as_os_str().as_bytes()).copied() != expected {
                return Err(self.corrupt(format!(
                    "the entry chunks of {} are not the {n} signed: a chunk was added, deleted or duplicated",
                    spec.path.display()
                )));
            }
            chunks.push(RootChunks {
                root: spec.path.clone(),
                // Read before the signature is verified: a forged count must not
                // overflow (it then fails the verification like any edited leaf).
                entries: leaves.iter().fold(0u64, |n, l| n.saturating_add(l.entries)),
                files: leaves.iter().fold(0u64, |n, l| n.saturating_add(l.files)),
                bytes: leaves.iter().fold(0u64, |b, l| b.saturating_add(l.bytes)),
                leaves,
                fresh: Vec::new(),
                patched: false,
            });
        }
        Ok(chunks)
    }

    /// Chunk `seq` of `root`, which must hash to what was counted.
    fn verified_chunk(&self, root: &RootChunks, seq: usize) -> Result<Vec<u8>, StoreError> {
        let changed = || {
            self.corrupt(format!(
                "entry chunk {seq} of {} changed after it was verified: the baseline signature does not verify over its bytes (checked against its signed leaf when read): the stored profile was modified after it was signed",
                root.root.display()
            ))
        };
        root.read_verified(&self.conn, seq)
            .map_err(self.sql())?
            .ok_or_else(changed)
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

    /// Checks every chunk of the verified root at `path` against its signed leaf (one
    /// SHA-256 pass over its bytes, nothing decoded): for a command that reads only some
    /// roots (`check` of one), so that a chunk of another root changed in the file is
    /// refused before anything is reported rather than left unread (review s19-r15).
    pub fn verify_stored_root(
        &self,
        stored: &StoredBaseline,
        path: &Path,
    ) -> Result<(), StoreError> {
        if let Some(root) = stored.chunks.iter().find(|c| c.root == path) {
            for seq in 0..root.leaves.len() {
                self.verified_chunk(root, seq)?;
            }
        }
        Ok(())
    }

    /// Checks every chunk of every root of `stored` against its signed leaf, as
    /// [`Store::verify_stored_root`] does for one: for a command that ends without
    /// signing anything after reading only some chunks (an acceptance that found nothing
    /// to take in), so that it never answers over a store altered elsewhere.
    pub fn verify_stored(&self, stored: &StoredBaseline) -> Result<(), StoreError> {
        for root in &stored.chunks {
            for seq in 0..root.leaves.len() {
                self.verified_chunk(root, seq)?;
            }
        }
        Ok(())
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

/// Where a merge is in a verified root's entries read through a [`StreamedSave`]'s own
/// transaction ([`StreamedSave::next_stored`]): the store cannot be read beside the save
/// by another handle, and the save's rows of a replaced root are staged apart from the
/// ones read. Holds one chunk's entries at most.
#[derive(Debug)]
pub struct StoredCursor<'b> {
    root: Option<&'b RootChunks>,
    next_seq: usize,
    buffer: std::collections::VecDeque<Entry>,
}

impl StoredBaseline {
    /// A cursor at the first entry of the root at `path` (none for a root not in the
    /// baseline).
    pub fn cursor(&self, path: &Path) -> StoredCursor<'_> {
        StoredCursor {
            root: self.chunks.iter().find(|c| c.root == path),
            next_seq: 0,
            buffer: std::collections::VecDeque::new(),
        }
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
            if self.failed || self.next_seq >= root.leaves.len() {
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

/// A new baseline written a chunk at a time ([`Store::begin_streamed_save`]): the roots
/// being profiled are encoded into chunks as their entries arrive, each chunk inserted as
/// it fills, all inside one transaction that [`StreamedSave::commit`] signs and commits.
/// Dropped before (an error, an interrupted profile), the transaction rolls back and the
/// previous baseline stays as it was, still verified.
///
/// The digest cannot be fed while the entries arrive: it puts each root's entry count
/// before its entries, and the roots in path order. So `commit` reads the chunks back
/// from the transaction in that order (each must hash to what was written, or, for a root
/// kept as it was, to what [`Store::load_streamed`] verified) and feeds their bytes, the
/// digest's own encoding, to [`BaselineDigest`]: the value is the one [`Store::save`]
/// signs for the same baseline, and the chunks are the ones it writes. Held in memory:
/// one chunk's entries encoded, and 32 bytes per chunk written.
pub struct StreamedSave<'s> {
    tx: rusqlite::Transaction<'s>,
    path: PathBuf,
    written: Vec<(RootSpec, RootChunks)>,
    /// Entries of the current root not yet in a chunk, encoded.
    data: Vec<u8>,
    in_data: usize,
    /// The leaf of the chunk being gathered in `data` (its hash set when written).
    chunk_leaf: ChunkLeaf,
    /// The current root replaces one still being read ([`StreamedSave::replace_root`]):
    /// its new chunks are staged at negative sequence numbers until it ends.
    staging: bool,
    /// The current root is patched in place ([`StreamedSave::patch_root`]) inside a
    /// savepoint, released or rolled back by [`StreamedSave::end_patch`].
    patching: bool,
    /// Roots of the verified baseline taken out ([`StreamedSave::remove_root`]).
    removed: Vec<PathBuf>,
    /// This process's trail hands its checkpoint copy to this save while it is open
    /// (written at commit). After `tx`: dropped once the transaction has ended.
    handoff: TrailMarkHandoff,
    _writer_open: WriterOpen,
}

impl std::fmt::Debug for StreamedSave<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedSave")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Starts writing a baseline root by root; see [`StreamedSave`].
    pub fn begin_streamed_save(&mut self) -> Result<StreamedSave<'_>, StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        let path = self.path.clone();
        // The lock from the start (IMMEDIATE): a save reads before it writes, and a
        // deferred one beside another writer failed at once instead of waiting.
        let tx = write_transaction(&mut self.conn)
            .map_err(|source| StoreError::sqlite(path.clone(), source))?;
        let handoff = self.handoff.clone();
        let writer_open = handoff.writer_open(&path);
        Ok(StreamedSave {
            tx,
            path,
            written: Vec::new(),
            data: Vec::new(),
            in_data: 0,
            chunk_leaf: ChunkLeaf {
                hash: [0; 32],
                entries: 0,
                files: 0,
                bytes: 0,
                first: Vec::new(),
            },
            staging: false,
            patching: false,
            removed: Vec::new(),
            handoff,
            _writer_open: writer_open,
        })
    }
}

impl StreamedSave<'_> {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::sqlite(self.path.clone(), source)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Takes the root `path` out of the baseline: its rows go, and `commit` does not keep
    /// it from the verified baseline (`accept --remove-root`, one root's rows deleted
    /// rather than every root read into memory: review s18-r15).
    pub fn remove_root(&mut self, path: &Path) -> Result<(), StoreError> {
        self.end_root()?;
        if self.written.iter().any(|(s, _)| s.path == path) {
            return Err(self.corrupt(format!(
                "root {} written and removed in one baseline",
                path.display()
            )));
        }
        let root = path.as_os_str().as_bytes();
        self.tx
            .execute("DELETE FROM entry_chunks WHERE root = ?1", [root])
            .map_err(self.sql())?;
        self.tx
            .execute("DELETE FROM roots WHERE path = ?1", [root])
            .map_err(self.sql())?;
        self.removed.push(path.to_path_buf());
        Ok(())
    }

    /// Replaces the root `spec.path` (or adds it): its old rows go, its entries are the
    /// ones [`StreamedSave::push`]ed next, in path order.
    pub fn start_root(&mut self, spec: &RootSpec) -> Result<(), StoreError> {
        self.begin_root(spec, false)
    }

    /// [`StreamedSave::start_root`] for a root whose stored entries are read while its
    /// new ones are written (a re-profile, an acceptance: a merge of the stored root and
    /// the walk, [`StreamedSave::next_stored`]). Its old chunks stay readable until the
    /// root ends: the new ones are inserted at sequence numbers -1, -2, ... and take the
    /// old ones' places when the next root starts or at commit, in the same transaction.
    pub fn replace_root(&mut self, spec: &RootSpec) -> Result<(), StoreError> {
        self.begin_root(spec, true)
    }

    fn begin_root(&mut self, spec: &RootSpec, staging: bool) -> Result<(), StoreError> {
        self.end_root()?;
        if self.written.iter().any(|(s, _)| s.path == spec.path) {
            return Err(self.corrupt(format!(
                "root {} written twice in one baseline",
                spec.path.display()
            )));
        }
        let root = spec.path.as_os_str().as_bytes();
        if !staging {
            self.tx
                .execute("DELETE FROM entry_chunks WHERE root = ?1", [root])
                .map_err(self.sql())?;
        }
        self.tx
            .execute("DELETE FROM roots WHERE path = ?1", [root])
            .map_err(self.sql())?;
        self.tx
            .execute(
                "INSERT INTO roots (path, policy, hash, exclude, cross_mounts) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    root,
                    spec.policy.as_str(),
                    spec.hash.as_str(),
                    encode_strings(&spec.exclude),
                    spec.cross_mounts as i64
                ],
            )
            .map_err(self.sql())?;
        self.written.push((
            spec.clone(),
            RootChunks {
                root: spec.path.clone(),
                entries: 0,
                files: 0,
                bytes: 0,
                leaves: Vec::new(),
                fresh: Vec::new(),
                patched: false,
            },
        ));
        self.staging = staging;
        Ok(())
    }

    /// Begins changing the stored root `spec.path` of `stored` in place, a chunk at a
    /// time ([`StreamedSave::patch_chunk`]): the chunks not patched stay as they are, and
    /// a chunk patched may hold more or fewer entries than [`ENTRIES_PER_CHUNK`] (the
    /// digest covers the entries, not how they are cut). Inside a savepoint, so that
    /// [`StreamedSave::end_patch`] can put the root back as stored. `spec` must be the
    /// stored one (its row is not rewritten).
    pub fn patch_root(
        &mut self,
        stored: &StoredBaseline,
        spec: &RootSpec,
    ) -> Result<(), StoreError> {
        self.end_root()?;
        if self.written.iter().any(|(s, _)| s.path == spec.path) {
            return Err(self.corrupt(format!(
                "root {} written twice in one baseline",
                spec.path.display()
            )));
        }
        let Some(chunks) = stored.chunks.iter().find(|c| c.root == spec.path) else {
            return Err(self.corrupt(format!(
                "root {} patched but not in the baseline",
                spec.path.display()
            )));
        };
        self.tx
            .execute_batch("SAVEPOINT patch_root")
            .map_err(self.sql())?;
        self.patching = true;
        self.written.push((
            spec.clone(),
            RootChunks {
                root: chunks.root.clone(),
                entries: chunks.entries,
                files: chunks.files,
                bytes: chunks.bytes,
                leaves: chunks.leaves.clone(),
                fresh: Vec::new(),
                patched: true,
            },
        ));
        Ok(())
    }

    /// Chunks of the root being patched.
    pub fn patched_chunks(&self) -> usize {
        match self.written.last() {
            Some((_, root)) if self.patching => root.leaves.len(),
            _ => 0,
        }
    }

    /// The first path of each chunk of the root being patched, as verified (signed in
    /// each chunk's leaf): where each chunk starts, so that an acceptance reads only the
    /// chunks its paths fall in.
    pub fn patched_firsts(&self) -> Vec<Vec<u8>> {
        match self.written.last() {
            Some((_, root)) if self.patching => {
                root.leaves.iter().map(|l| l.first.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Chunk `seq` of the root being patched as it stands (verified), decoded.
    pub fn patched_chunk(&self, seq: usize) -> Result<Vec<Entry>, StoreError> {
        let Some((_, root)) = self.written.last().filter(|_| self.patching) else {
            return Err(self.corrupt("a chunk read with no root being patched"));
        };
        let data = self.chunk(root, seq)?;
        let mut entries = Vec::new();
        decode_entries(&data, &mut entries).ok_or_else(|| {
            self.corrupt(format!(
                "entry chunk {seq} of {} is malformed",
                root.root.display()
            ))
        })?;
        Ok(entries)
    }

    /// Replaces chunk `seq` of the root being patched, which held `old`, by `new` (in
    /// path order, not empty, every entry hashed).
    pub fn patch_chunk(
        &mut self,
        seq: usize,
        old: &[Entry],
        new: &[Entry],
    ) -> Result<(), StoreError> {
        if new
            .iter()
            .any(|e| matches!(e.content, Content::Pending | Content::Vanished))
        {
            return Err(self.corrupt("refusing to store an entry that was never hashed"));
        }
        if new.is_empty() {
            return Err(self.corrupt("refusing to store an empty chunk"));
        }
        let mut data = Vec::new();
        for entry in new {
            encode_entry(&mut data, entry);
        }
        let patching = self.patching;
        let Some((spec, root)) = self.written.last_mut().filter(|_| patching) else {
            return Err(self.corrupt("a chunk patched with no root being patched"));
        };
        let path = self.path.clone();
        let changed = self
            .tx
            .prepare_cached("UPDATE entry_chunks SET data = ?3 WHERE root = ?1 AND seq = ?2")
            .and_then(|mut stmt| {
                stmt.execute(rusqlite::params![
                    spec.path.as_os_str().as_bytes(),
                    seq as i64,
                    data
                ])
            })
            .map_err(|source| StoreError::sqlite(path, source))?;
        if changed != 1 || root.leaves.get(seq).map(|l| l.entries) != Some(old.len() as u64) {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: format!("entry chunk {seq} of {} is missing", spec.path.display()),
            });
        }
        let leaf = ChunkLeaf::of(&data, new);
        let old = std::mem::replace(&mut root.leaves[seq], leaf.clone());
        root.fresh.push(seq);
        root.entries = root.entries.saturating_sub(old.entries) + leaf.entries;
        root.files = root.files.saturating_sub(old.files) + leaf.files;
        root.bytes = root
            .bytes
            .saturating_sub(old.bytes)
            .saturating_add(leaf.bytes);
        Ok(())
    }

    /// Ends the patching of the current root: its chunks as patched when `keep`, else
    /// as they are stored (the savepoint rolled back; the root is signed as kept).
    pub fn end_patch(&mut self, keep: bool) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.patching) {
            return Ok(());
        }
        if !keep {
            self.tx
                .execute_batch("ROLLBACK TO patch_root")
                .map_err(self.sql())?;
            self.written.pop();
        }
        self.tx
            .execute_batch("RELEASE patch_root")
            .map_err(self.sql())
    }

    /// Puts the current root, begun with [`StreamedSave::replace_root`], back as it is
    /// stored (an acceptance that found nothing to take in there): what was written of
    /// it goes, its stored rows stay, and [`StreamedSave::commit`] signs them as kept.
    /// `spec` is the one stored (its row was rewritten with it).
    pub fn keep_root(&mut self, spec: &RootSpec) -> Result<(), StoreError> {
        let current = self.written.last().map(|(s, _)| s.path.as_path());
        if !self.staging || current != Some(spec.path.as_path()) {
            return Err(self.corrupt(format!(
                "root {} kept as stored but it is not the one being replaced",
                spec.path.display()
            )));
        }
        self.data.clear();
        self.in_data = 0;
        self.staging = false;
        self.written.pop();
        let root = spec.path.as_os_str().as_bytes();
        self.tx
            .execute(
                "DELETE FROM entry_chunks WHERE root = ?1 AND seq < 0",
                [root],
            )
            .map_err(self.sql())?;
        self.tx
            .execute(
                "UPDATE roots SET policy = ?2, hash = ?3, exclude = ?4, cross_mounts = ?5 WHERE path = ?1",
                rusqlite::params![
                    root,
                    spec.policy.as_str(),
                    spec.hash.as_str(),
                    encode_strings(&spec.exclude),
                    spec.cross_mounts as i64
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The next stored entry under `cursor` (a root of the verified baseline this save
    /// follows), read through this transaction; each chunk must still hash to what was
    /// verified. `None` at the root's end.
    pub fn next_stored(&self, cursor: &mut StoredCursor<'_>) -> Result<Option<Entry>, StoreError> {
        self.fill(cursor)?;
        Ok(cursor.buffer.pop_front())
    }

    /// The stored entry [`StreamedSave::next_stored`] returns next, left in place.
    pub fn peek_stored<'c>(
        &self,
        cursor: &'c mut StoredCursor<'_>,
    ) -> Result<Option<&'c Entry>, StoreError> {
        self.fill(cursor)?;
        Ok(cursor.buffer.front())
    }

    fn fill(&self, cursor: &mut StoredCursor<'_>) -> Result<(), StoreError> {
        let Some(root) = cursor.root else {
            return Ok(());
        };
        while cursor.buffer.is_empty() && cursor.next_seq < root.leaves.len() {
            let seq = cursor.next_seq;
            cursor.next_seq += 1;
            let data = self.chunk(root, seq)?;
            let mut entries = Vec::new();
            decode_entries(&data, &mut entries).ok_or_else(|| {
                self.corrupt(format!(
                    "entry chunk {seq} of {} is malformed",
                    root.root.display()
                ))
            })?;
            cursor.buffer.extend(entries);
        }
        Ok(())
    }

    /// The next entry of the current root; entries must come in path order, each once.
    /// An entry never hashed is refused, as [`Store::save`] refuses it.
    pub fn push(&mut self, entry: &Entry) -> Result<(), StoreError> {
        if matches!(entry.content, Content::Pending | Content::Vanished) {
            return Err(self.corrupt("refusing to store an entry that was never hashed"));
        }
        if self.patching {
            return Err(self.corrupt("an entry pushed to a root patched in place"));
        }
        let Some((_, root)) = self.written.last_mut() else {
            return Err(self.corrupt("an entry written before its root"));
        };
        root.entries += 1;
        if self.in_data == 0 {
            self.chunk_leaf = ChunkLeaf {
                hash: [0; 32],
                entries: 0,
                files: 0,
                bytes: 0,
                first: entry.rel.clone(),
            };
        }
        self.chunk_leaf.entries += 1;
        if entry.kind == EntryType::File {
            root.files += 1;
            root.bytes = root.bytes.saturating_add(entry.meta.size);
            self.chunk_leaf.files += 1;
            self.chunk_leaf.bytes = self.chunk_leaf.bytes.saturating_add(entry.meta.size);
        }
        encode_entry(&mut self.data, entry);
        self.in_data += 1;
        if self.in_data == ENTRIES_PER_CHUNK {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Inserts the entries gathered as the current root's next chunk.
    fn write_chunk(&mut self) -> Result<(), StoreError> {
        if self.in_data == 0 {
            return Ok(());
        }
        let Some((spec, root)) = self.written.last_mut() else {
            return Err(self.corrupt("an entry written before its root"));
        };
        let written = root.leaves.len() as i64;
        let seq = if self.staging { -1 - written } else { written };
        let mut leaf = std::mem::replace(
            &mut self.chunk_leaf,
            ChunkLeaf {
                hash: [0; 32],
                entries: 0,
                files: 0,
                bytes: 0,
                first: Vec::new(),
            },
        );
        leaf.hash = Sha256::digest(&self.data).into();
        root.fresh.push(root.leaves.len());
        root.leaves.push(leaf);
        let path = self.path.clone();
        self.tx
            .prepare_cached("INSERT INTO entry_chunks (root, seq, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut stmt| {
                stmt.execute(rusqlite::params![
                    spec.path.as_os_str().as_bytes(),
                    seq,
                    self.data
                ])
            })
            .map_err(|source| StoreError::sqlite(path, source))?;
        self.data.clear();
        self.in_data = 0;
        Ok(())
    }

    fn end_root(&mut self) -> Result<(), StoreError> {
        self.end_patch(true)?;
        self.write_chunk()?;
        if !std::mem::take(&mut self.staging) {
            return Ok(());
        }
        let Some((spec, _)) = self.written.last() else {
            return Ok(());
        };
        // The old chunks are read no more: the staged ones take their sequence numbers.
        let root = spec.path.as_os_str().as_bytes();
        self.tx
            .execute(
                "DELETE FROM entry_chunks WHERE root = ?1 AND seq >= 0",
                [root],
            )
            .map_err(self.sql())?;
        self.tx
            .execute(
                "UPDATE entry_chunks SET seq = -1 - seq WHERE root = ?1 AND seq < 0",
                [root],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Entries written so far to the root at `path`.
    pub fn entry_count(&self, path: &Path) -> u64 {
        self.written
            .iter()
            .find(|(s, _)| s.path == path)
            .map_or(0, |(_, c)| c.entries)
    }

    /// Signs generation `generation` made at `created`: the roots written, and every
    /// root of `kept` (the verified baseline this one follows, if any) not written again,
    /// as it is stored, with `acceptance` recorded (as [`Store::save`] records it). Then
    /// commits; returns the number of entries of the baseline.
    pub fn commit(
        mut self,
        generation: u64,
        created: i64,
        kept: Option<&StoredBaseline>,
        key: &SigningKey,
        acceptance: Option<&Acceptance>,
    ) -> Result<u64, StoreError> {
        self.end_root()?;
        let mut roots: Vec<(&RootSpec, &RootChunks)> =
            self.written.iter().map(|(s, c)| (s, c)).collect();
        if let Some(kept) = kept {
            for (spec, chunks) in kept
                .baseline
                .roots
                .iter()
                .map(|r| &r.spec)
                .zip(&kept.chunks)
            {
                if !self.written.iter().any(|(s, _)| s.path == spec.path)
                    && !self.removed.contains(&spec.path)
                {
                    roots.push((spec, chunks));
                }
            }
        }
        // Byte order, as the store reads them back (`ORDER BY path`) and as
        // `Baseline::replace_root` keeps them.
        roots.sort_by(|a, b| {
            a.0.path
                .as_os_str()
                .as_bytes()
                .cmp(b.0.path.as_os_str().as_bytes())
        });
        let stored: i64 = self
            .tx
            .query_row("SELECT count(*) FROM roots", [], |r| r.get(0))
            .map_err(self.sql())?;
        if usize::try_from(stored).ok() != Some(roots.len()) {
            return Err(self.corrupt(format!(
                "{stored} roots stored where the new baseline has {}: the store changed while it was written",
                roots.len()
            )));
        }
        // Every chunk signed is read back first: one written by this save must hash to
        // its new leaf (the signature covers the bytes stored, not the ones meant), and
        // every other one to the leaf it was verified with. Signing those by their leaf
        // unread left a chunk altered in the file since its signature under a new
        // generation without a word (`accept` of another path, `profile` of a new root:
        // exit 0, review s21); it is refused here, named, and nothing is committed. One
        // SHA-256 pass over the chunks' bytes, nothing decoded, one chunk held at a time.
        let mut entries = 0u64;
        for (_, chunks) in &roots {
            entries += chunks.entries;
            let mut fresh = vec![false; chunks.leaves.len()];
            for &seq in &chunks.fresh {
                if let Some(f) = fresh.get_mut(seq) {
                    *f = true;
                }
            }
            for (seq, fresh) in fresh.into_iter().enumerate() {
                if fresh {
                    self.chunk(chunks, seq)?;
                } else {
                    self.kept_chunk(chunks, seq)?;
                }
            }
        }
        match kept {
            // Only the leaf rows of what this save wrote change: a root written whole
            // has its rows replaced, a root patched in place the rows of its patched
            // chunks, a root removed loses them; a root kept has its rows as verified.
            Some(kept) if kept.leaves_stored => {
                for path in &self.removed {
                    merkle::delete_leaves(&self.tx, path).map_err(self.sql())?;
                }
                for (spec, chunks) in &self.written {
                    if chunks.patched {
                        merkle::replace_leaves(
                            &self.tx,
                            &spec.path,
                            chunks
                                .fresh
                                .iter()
                                .filter_map(|&seq| chunks.leaves.get(seq).map(|leaf| (seq, leaf))),
                        )
                    } else {
                        merkle::delete_leaves(&self.tx, &spec.path).and_then(|()| {
                            merkle::replace_leaves(
                                &self.tx,
                                &spec.path,
                                chunks.leaves.iter().enumerate(),
                            )
                        })
                    }
                    .map_err(self.sql())?;
                }
            }
            // First save, or a store signed v1/v2: its leaf rows, if any, are not the
            // ones verified.
            _ => merkle::write_leaves(
                &self.tx,
                roots
                    .iter()
                    .map(|(s, c)| (s.path.as_path(), c.leaves.as_slice())),
            )
            .map_err(self.sql())?,
        }
        // What is signed is what the store holds: every root's leaf rows, as this
        // transaction reads them, are the leaves the tree is computed over (n / 4,096
        // small rows; a row altered beside the save is refused, not signed around).
        for (spec, chunks) in &roots {
            let rows = merkle::read_leaves(&self.tx, &spec.path)
                .map_err(self.sql())?
                .map_err(|reason| self.corrupt(reason))?;
            if rows != chunks.leaves {
                return Err(self.corrupt(format!(
                    "the chunk leaves of {} are not the ones verified or written: the store changed while the new baseline was written",
                    spec.path.display()
                )));
            }
        }
        let digest = merkle::baseline_root(
            generation,
            created,
            roots.iter().map(|(s, c)| (*s, c.leaves.as_slice())),
        );
        let acceptances = crate::sqlite::acceptances_digest(&self.tx).map_err(self.sql())?;
        // Signed are the acceptances verified with the previous baseline: a row another
        // writer of the file added since (a forged approval) must not be laundered.
        // With no previous baseline none was verified: a row standing is not ours.
        let verified = match kept {
            Some(k) => k.acceptances,
            None => crate::sqlite::no_acceptances_digest(),
        };
        if verified != acceptances {
            return Err(self.corrupt(
                "the acceptances changed since the previous baseline was verified: not signing them",
            ));
        }
        let acceptances = match acceptance {
            None => acceptances,
            Some(a) => {
                self.tx
                    .execute(
                        "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (?1, ?2, ?3, ?4, ?5)",
                        rusqlite::params![
                            a.time,
                            a.user,
                            a.reason,
                            generation as i64,
                            encode_strings(&a.paths)
                        ],
                    )
                    .map_err(self.sql())?;
                crate::sqlite::acceptances_digest(&self.tx).map_err(self.sql())?
            }
        };
        let signature = key.sign(&signing_message_v3(&digest, &acceptances));
        self.tx
            .execute(
                "INSERT OR REPLACE INTO baseline (id, generation, created, digest, public_key, signature) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    generation as i64,
                    created,
                    digest.as_slice(),
                    key.verifying_key().as_bytes().as_slice(),
                    signature.to_bytes().as_slice()
                ],
            )
            .map_err(self.sql())?;
        // The trail's checkpoint handed over while this save held the lock (its
        // announcement), kept with the generation it announces.
        let held = self.handoff.take_held();
        let kept_here = held
            .as_deref()
            .is_some_and(|note| self.keep_trail_mark(note));
        let committed = self.tx.commit();
        if let Some(note) = held
            && !(kept_here && committed.is_ok())
        {
            // Written once the save has ended (`WriterOpen`).
            self.handoff.hold_again(note);
        }
        committed.map_err(|source| StoreError::sqlite(self.path, source))?;
        Ok(entries)
    }

    /// Writes `note` as the store's copy of the trail's newest checkpoint inside this
    /// save, in a savepoint of its own: a copy that cannot be written never fails the
    /// signing (as any copy's failure, `AuditSink::checkpoint`); it is tried again once
    /// the save has ended.
    fn keep_trail_mark(&mut self, note: &str) -> bool {
        let Ok(savepoint) = self.tx.savepoint() else {
            return false;
        };
        write_trail_mark(&savepoint, note)
            .and_then(|()| savepoint.commit())
            .is_ok()
    }

    /// Chunk `seq` of a root this save did not write, which must still hash to the
    /// signed leaf it was verified with.
    fn kept_chunk(&self, root: &RootChunks, seq: usize) -> Result<(), StoreError> {
        match root.read_verified(&self.tx, seq).map_err(self.sql())? {
            Some(_) => Ok(()),
            None => Err(self.corrupt(format!(
                "entry chunk {seq} of {} does not hash to its signed leaf: the baseline signature does not verify over its bytes: the stored profile was modified after it was signed; not signing a new one over it",
                root.root.display()
            ))),
        }
    }

    /// Chunk `seq` of a root as this transaction sees it, which must hash to what was
    /// written or verified.
    fn chunk(&self, root: &RootChunks, seq: usize) -> Result<Vec<u8>, StoreError> {
        let changed = || {
            self.corrupt(format!(
                "entry chunk {seq} of {} changed while the new baseline was written",
                root.root.display()
            ))
        };
        root.read_verified(&self.tx, seq)
            .map_err(self.sql())?
            .ok_or_else(changed)
    }
}

#[cfg(test)]
mod tests {
    use pacsguard_fs::{HashAlgorithm, Meta};
    use pacsguard_profile::Policy;

    use super::*;

    #[test]
    fn a_chunk_changed_in_the_transaction_is_not_signed() {
        // The read-back at commit is what makes the signature cover the stored bytes,
        // not the ones meant: a chunk altered after its insert (here through the
        // transaction itself) is refused, and nothing is committed.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pacsguard.db");
        let mut store = Store::open(&path).expect("open");
        let key = SigningKey::from_bytes(&[7; 32]);
        let spec = RootSpec {
            path: PathBuf::from("/srv/pacs"),
            policy: Policy::Static,
            hash: HashAlgorithm::Blake3,
            exclude: Vec::new(),
            cross_mounts: false,
        };
        let mut writer = store.begin_streamed_save().expect("begin");
        writer.start_root(&spec).expect("root");
        for i in 0..=ENTRIES_PER_CHUNK {
            writer
                .push(&Entry {
                    rel: format!("f{i:05}").into_bytes(),
                    kind: EntryType::File,
                    meta: Meta::default(),
                    link_target: None,
                    xattrs: Vec::new(),
                    content: Content::Skipped,
                })
                .expect("push");
        }
        writer
            .tx
            .execute(
                "UPDATE entry_chunks SET data = CAST(data || x'00' AS BLOB) WHERE seq = 0",
                [],
            )
            .expect("alter");
        let err = writer
            .commit(1, 1, None, &key, None)
            .expect_err("an altered chunk signed");
        assert!(err.to_string().contains("changed"), "{err}");
        assert!(store.load(&key.verifying_key()).expect("load").is_none());
    }
}
