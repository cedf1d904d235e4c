//! The tree of digests a v3 signature covers ([`crate::signing::signing_message_v3`]).
//!
//! The leaves, in order: the generation header, then for each root in path order its
//! spec and entry count, followed by one leaf per stored chunk (the root's path, the
//! chunk's sequence number, its entry, file and byte counts, its first path and the
//! SHA-256 of its bytes). Interior nodes are hashed as RFC 6962 §2.1 does: a leaf is
//! `SHA-256(0x00 || leaf)` and a node `SHA-256(0x01 || left || right)`, so a leaf can
//! never be passed off as a node; the split is at the largest power of two below the
//! count, as there.
//!
//! Each chunk's leaf is kept in the store (`chunk_leaves`), so a save that changes `k`
//! chunks hashes only those chunks' bytes, and loading verifies the signature from the
//! leaf rows alone: a chunk's bytes are checked against its (signed) leaf when read,
//! before any entry of it is used. The leaf binds the root and the sequence number, so a
//! chunk moved to another root or another place is refused like an edited one.

use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use pacsguard_fs::{Entry, EntryType};
use pacsguard_profile::codec::put_bytes;
use pacsguard_profile::{RootSpec, encode_generation_header};
use rusqlite::Connection;
use sha2::{Digest as _, Sha256};

/// The leaf rows of a v3 store. Created by the first save that signs v3; a store without
/// it was signed v1 or v2 and is verified the old way (every chunk digested).
pub(crate) const LEAF_TABLE: &str = "
CREATE TABLE IF NOT EXISTS chunk_leaves (
    root BLOB NOT NULL,
    seq INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    first BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (root, seq)
) WITHOUT ROWID;
";

/// What is signed of one stored chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkLeaf {
    /// SHA-256 of the chunk's bytes as stored.
    pub(crate) hash: [u8; 32],
    pub(crate) entries: u64,
    /// Regular files among the entries and their bytes, for progress reports.
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// Path of the chunk's first entry: where the chunk starts in the root, so an
    /// acceptance finds the chunks of its paths without reading the others.
    pub(crate) first: Vec<u8>,
}

impl ChunkLeaf {
    /// The leaf of a chunk of `entries` stored as `data`.
    pub(crate) fn of(data: &[u8], entries: &[Entry]) -> ChunkLeaf {
        let (files, bytes) = entries
            .iter()
            .filter(|e| e.kind == EntryType::File)
            .fold((0u64, 0u64), |(n, b), e| {
                (n + 1, b.saturating_add(e.meta.size))
            });
        ChunkLeaf {
            hash: Sha256::digest(data).into(),
            entries: entries.len() as u64,
            files,
            bytes,
            first: entries.first().map(|e| e.rel.clone()).unwrap_or_default(),
        }
    }
}

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;

fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([LEAF]);
    h.update(leaf);
    h.finalize().into()
}

/// The leaf of the generation: format version, generation, time and number of roots.
pub(crate) fn header_leaf(generation: u64, created: i64, roots: usize) -> [u8; 32] {
    let mut leaf = b"pacsguard-tree-header\0".to_vec();
    encode_generation_header(&mut leaf, generation, created, roots);
    leaf_hash(&leaf)
}

/// The leaf of a root: its spec, entry count and number of chunks.
pub(crate) fn root_leaf(spec: &RootSpec, entries: u64, chunks: usize) -> [u8; 32] {
    let mut leaf = b"pacsguard-tree-root\0".to_vec();
    spec.encode_signed(&mut leaf);
    leaf.extend_from_slice(&entries.to_le_bytes());
    leaf.extend_from_slice(&(chunks as u64).to_le_bytes());
    leaf_hash(&leaf)
}

/// The leaf of chunk `seq` of the root at `root`.
pub(crate) fn chunk_leaf(root: &Path, seq: usize, chunk: &ChunkLeaf) -> [u8; 32] {
    let mut leaf = b"pacsguard-tree-chunk\0".to_vec();
    put_bytes(&mut leaf, root.as_os_str().as_bytes());
    for v in [seq as u64, chunk.entries, chunk.files, chunk.bytes] {
        leaf.extend_from_slice(&v.to_le_bytes());
    }
    put_bytes(&mut leaf, &chunk.first);
    leaf.extend_from_slice(&chunk.hash);
    leaf_hash(&leaf)
}

/// RFC 6962's Merkle tree hash over leaf hashes (already `0x00`-prefixed), computed
/// bottom-up: at each level pairs are joined left to right and an odd last node is
/// carried up unchanged, which gives the same root as the recursive split at the largest
/// power of two. The empty tree is SHA-256 of nothing, as there.
pub(crate) fn tree_root(mut level: Vec<[u8; 32]>) -> [u8; 32] {
    if level.is_empty() {
        return Sha256::digest([]).into();
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [left, right] => {
                    let mut h = Sha256::new();
                    h.update([NODE]);
                    h.update(left);
                    h.update(right);
                    next.push(h.finalize().into());
                }
                [odd] => next.push(*odd),
                _ => {}
            }
        }
        level = next;
    }
    level[0]
}

/// The signed root over the generation header and `roots` (spec, leaves), in path order.
pub(crate) fn baseline_root<'a>(
    generation: u64,
    created: i64,
    roots: impl ExactSizeIterator<Item = (&'a RootSpec, &'a [ChunkLeaf])>,
) -> [u8; 32] {
    let mut leaves = vec![header_leaf(generation, created, roots.len())];
    for (spec, chunks) in roots {
        // Leaf rows are summed before the signature is verified: saturating, so a forged
        // count is refused by the verification, never a panic.
        let entries = chunks.iter().fold(0u64, |n, c| n.saturating_add(c.entries));
        leaves.push(root_leaf(spec, entries, chunks.len()));
        for (seq, chunk) in chunks.iter().enumerate() {
            leaves.push(chunk_leaf(&spec.path, seq, chunk));
        }
    }
    tree_root(leaves)
}

/// Whether the store has leaf rows (was signed v3 at least once).
pub(crate) fn has_leaves(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'chunk_leaves'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Replaces every leaf row by `roots`' (inside the caller's transaction).
pub(crate) fn write_leaves<'a>(
    conn: &Connection,
    roots: impl Iterator<Item = (&'a Path, &'a [ChunkLeaf])>,
) -> rusqlite::Result<()> {
    conn.execute_batch(LEAF_TABLE)?;
    conn.execute("DELETE FROM chunk_leaves", [])?;
    for (root, chunks) in roots {
        replace_leaves(conn, root, chunks.iter().enumerate())?;
    }
    Ok(())
}

/// Writes the leaf rows of chunks `(seq, leaf)` of the root at `root`, each replacing
/// the row of that place if there is one (a save that changes `k` chunks writes `k`
/// rows, not every root's).
pub(crate) fn replace_leaves<'a>(
    conn: &Connection,
    root: &Path,
    chunks: impl Iterator<Item = (usize, &'a ChunkLeaf)>,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO chunk_leaves (root, seq, entries, files, bytes, first, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (seq, c) in chunks {
        insert.execute(rusqlite::params![
            root.as_os_str().as_bytes(),
            seq as i64,
            c.entries as i64,
            c.files as i64,
            // Its 64 bits, read back as they are ([`read_leaves`]).
            c.bytes as i64,
            c.first,
            c.hash.as_slice()
        ])?;
    }
    Ok(())
}

/// Deletes the leaf rows of the root at `root`.
pub(crate) fn delete_leaves(conn: &Connection, root: &Path) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM chunk_leaves WHERE root = ?1",
        [root.as_os_str().as_bytes()],
    )
    .map(|_| ())
}

/// The leaf rows of the root at `root`, in sequence order, as stored (unverified: they
/// are verified through the signed root). `Err(reason)` for rows that cannot be leaves
/// (a sequence number missing or repeated, a value out of range).
pub(crate) fn read_leaves(
    conn: &Connection,
    root: &Path,
) -> rusqlite::Result<Result<Vec<ChunkLeaf>, String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, entries, files, bytes, first, hash FROM chunk_leaves WHERE root = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([root.as_os_str().as_bytes()])?;
    let mut leaves = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let numbers = [row.get::<_, i64>(1)?, row.get(2)?, row.get(3)?];
        let hash: Vec<u8> = row.get(5)?;
        if usize::try_from(seq).ok() != Some(leaves.len()) {
            return Ok(Err(format!(
                "the leaf of entry chunk {} of {} is missing",
                leaves.len(),
                root.display()
            )));
        }
        // The byte count is written as the INTEGER of the same 64 bits ([`write_leaves`]):
        // sparse files reach 2^63 bytes and more (two of `truncate -s 4E`), so it is
        // read back as those bits, not refused for being negative (review s19-r15).
        let bytes = numbers[2] as u64;
        let (Ok(entries), Ok(files), Ok(hash)) = (
            u64::try_from(numbers[0]),
            u64::try_from(numbers[1]),
            <[u8; 32]>::try_from(hash.as_slice()),
        ) else {
            return Ok(Err(format!(
                "the leaf of entry chunk {seq} of {} is malformed",
                root.display()
            )));
        };
        leaves.push(ChunkLeaf {
            hash,
            entries,
            files,
            bytes,
            first: row.get(4)?,
        });
    }
    Ok(Ok(leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's recursive definition, for checking the bottom-up one.
    fn recursive(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                let mut h = Sha256::new();
                h.update([NODE]);
                h.update(recursive(&leaves[..k]));
                h.update(recursive(&leaves[k..]));
                h.finalize().into()
            }
        }
    }

    #[test]
    fn the_bottom_up_root_is_rfc_6962s() {
        for n in 0..40u8 {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&[i])).collect();
            assert_eq!(tree_root(leaves.clone()), recursive(&leaves), "{n} leaves");
        }
    }

    #[test]
    fn a_leaf_is_never_a_node() {
        // Two leaves whose concatenation, hashed as a leaf, would be the node over them
        // without the prefixes.
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut joined = a.to_vec();
        joined.extend_from_slice(&b);
        assert_ne!(tree_root(vec![a, b]), leaf_hash(&joined));
        assert_ne!(tree_root(vec![a, b]), tree_root(vec![leaf_hash(&joined)]));
    }
}
