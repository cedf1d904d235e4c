//! What a watcher verified and reported since the baseline was signed, kept so that the
//! next start compares each path with what the watcher last saw (not with the baseline,
//! which would report every arrival of an earlier run again).
//!
//! Rows are written incrementally, one per path a finding was about. Each row carries a
//! MAC computed by the caller (the store holds no key of its own) over everything in it,
//! so an edited row is refused by the caller; a deleted row only makes the next start
//! compare that path with the baseline again (reported once more, never hidden).

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::PathBuf;

use rusqlite::params;
use rusqlite::types::ValueRef;

use crate::sqlite::{Store, StoreError};

const SEEN_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS watch_seen (
    root BLOB NOT NULL,
    rel BLOB NOT NULL,
    generation INTEGER NOT NULL,
    whole INTEGER NOT NULL,
    entries BLOB NOT NULL,
    mac BLOB NOT NULL,
    PRIMARY KEY (root, rel)
) WITHOUT ROWID;
";

/// One path as a watcher last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRow {
    pub root: PathBuf,
    /// Relative to the root (empty: the root itself).
    pub rel: Vec<u8>,
    /// The baseline generation the row was seen against; rows of another generation are
    /// stale (a profile or accept signed since) and are dropped.
    pub generation: u64,
    /// `entries` is the whole subtree at `rel` (a directory moved or removed); otherwise
    /// `entries` is the one entry at `rel`, or nothing when it is gone.
    pub whole: bool,
    /// Encoded with `pacsguard_profile::codec::encode_entry`.
    pub entries: Vec<u8>,
    pub mac: Vec<u8>,
}

/// The bytes of a column as stored, whatever its type.
fn value_bytes(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Integer(n) => n.to_le_bytes().to_vec(),
        ValueRef::Real(f) => f.to_le_bytes().to_vec(),
        ValueRef::Null => Vec::new(),
    }
}

impl Store {
    fn ensure_seen(&self) -> Result<(), StoreError> {
        self.conn.execute_batch(SEEN_SCHEMA).map_err(self.sql())
    }

    /// Whether a watcher ever kept rows here (the table is made by the first write).
    fn has_seen_table(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'watch_seen'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|count| count > 0)
            .map_err(self.sql())
    }

    /// Every row, ancestors before their descendants (sorted by root, then path). Only
    /// reads: a store that never held rows has none, and reading them writes no table
    /// (review r23-scale: `watch` on a full home failed to start at that `CREATE TABLE`,
    /// where a save failing later is said and tried again while it guards).
    pub fn seen_rows(&self) -> Result<Vec<SeenRow>, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        if !self.has_seen_table()? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT root, rel, generation, whole, entries, mac FROM watch_seen ORDER BY root, rel",
            )
            .map_err(self.sql())?;
        let rows = stmt
            // Read whatever type a column holds: an edited row (text where a blob was) is
            // refused by the caller's MAC, not an error that stops the watcher.
            .query_map([], |r| {
                let bytes = |i| r.get_ref(i).map(value_bytes);
                let number = |i| {
                    r.get_ref(i).map(|v| match v {
                        ValueRef::Integer(n) => u64::try_from(n).unwrap_or(u64::MAX),
                        _ => u64::MAX,
                    })
                };
                Ok(SeenRow {
                    root: PathBuf::from(std::ffi::OsString::from_vec(bytes(0)?)),
                    rel: bytes(1)?,
                    generation: number(2)?,
                    whole: number(3)? != 0,
                    entries: bytes(4)?,
                    mac: bytes(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// Writes `rows` in one transaction. A whole-subtree row replaces every row below
    /// its path too (they describe what it now holds), so rows read back in path order
    /// never put an older state on top of a newer one.
    pub fn put_seen(&mut self, rows: &[SeenRow]) -> Result<(), StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        self.ensure_seen()?;
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = crate::lock::write_transaction(&mut self.conn).map_err(sql)?;
        {
            let mut below = tx
                .prepare("DELETE FROM watch_seen WHERE root = ?1 AND rel >= ?2 AND rel < ?3")
                .map_err(sql)?;
            let mut all = tx
                .prepare("DELETE FROM watch_seen WHERE root = ?1")
                .map_err(sql)?;
            let mut put = tx
                .prepare(
                    "INSERT OR REPLACE INTO watch_seen (root, rel, generation, whole, entries, mac) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for row in rows {
                let root = row.root.as_os_str().as_bytes();
                if row.whole && row.rel.is_empty() {
                    all.execute(params![root]).map_err(sql)?;
                } else if row.whole {
                    let (from, to) = below_range(&row.rel);
                    below.execute(params![root, from, to]).map_err(sql)?;
                }
                put.execute(params![
                    root,
                    row.rel,
                    i64::try_from(row.generation).unwrap_or(i64::MAX),
                    i64::from(row.whole),
                    row.entries,
                    row.mac
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// [`Store::put_seen`], first handing `before_commit` the MACs of the rows the write
    /// will take away (replaced, or below a whole-subtree row): the caller keeps a digest
    /// of the whole set up to date without reading it again, and records it first. They
    /// are read before anything is written, and no transaction is open while
    /// `before_commit` runs (it writes the trail, whose checkpoint is also kept in this
    /// store through another connection). An error from `before_commit` writes nothing.
    /// The store has one writer (the home's lock), so nothing changes in between.
    pub fn put_seen_with(
        &mut self,
        rows: &[SeenRow],
        before_commit: impl FnOnce(&[Vec<u8>]) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        self.ensure_seen()?;
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        // By (root, path): a row below a whole-subtree row of the batch and named again
        // later in it is taken away once.
        let mut displaced: std::collections::BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> =
            std::collections::BTreeMap::new();
        {
            let mut macs_below = self
                .conn
                .prepare(
                    "SELECT rel, mac FROM watch_seen WHERE root = ?1 AND rel >= ?2 AND rel < ?3",
                )
                .map_err(sql)?;
            let mut macs_all = self
                .conn
                .prepare("SELECT rel, mac FROM watch_seen WHERE root = ?1")
                .map_err(sql)?;
            let mut mac_at = self
                .conn
                .prepare("SELECT rel, mac FROM watch_seen WHERE root = ?1 AND rel = ?2")
                .map_err(sql)?;
            let rel_mac = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get_ref(0).map(value_bytes)?,
                    r.get_ref(1).map(value_bytes)?,
                ))
            };
            for row in rows {
                let root = row.root.as_os_str().as_bytes();
                let mut found = Vec::new();
                if row.whole && row.rel.is_empty() {
                    for m in macs_all.query_map(params![root], rel_mac).map_err(sql)? {
                        found.push(m.map_err(sql)?);
                    }
                } else {
                    if row.whole {
                        let (from, to) = below_range(&row.rel);
                        for m in macs_below
                            .query_map(params![root, from, to], rel_mac)
                            .map_err(sql)?
                        {
                            found.push(m.map_err(sql)?);
                        }
                    }
                    for m in mac_at
                        .query_map(params![root, row.rel], rel_mac)
                        .map_err(sql)?
                    {
                        found.push(m.map_err(sql)?);
                    }
                }
                for (rel, mac) in found {
                    displaced.insert((root.to_vec(), rel), mac);
                }
            }
        }
        let displaced: Vec<Vec<u8>> = displaced.into_values().collect();
        before_commit(&displaced).map_err(|reason| StoreError::Refused {
            path: path.clone(),
            reason,
        })?;
        self.put_seen(rows)
    }

    /// Drops every row (stale: another baseline generation, or not trusted), once
    /// `before_commit` (which may record the empty set first; no transaction is open
    /// meanwhile) succeeded.
    pub fn clear_seen(
        &mut self,
        before_commit: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        self.ensure_seen()?;
        before_commit().map_err(|reason| StoreError::Refused {
            path: self.path.clone(),
            reason,
        })?;
        self.conn
            .execute("DELETE FROM watch_seen", [])
            .map(|_| ())
            .map_err(self.sql())
    }
}

/// The rows below `rel`: the range [rel + "/", rel + "0"), `/` sorting just before `0`.
fn below_range(rel: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut from = rel.to_vec();
    from.push(b'/');
    let mut to = rel.to_vec();
    to.push(b'0');
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading the rows of a store that never held any writes nothing: on a full disk a
    /// watcher must still start (review r24-scale).
    #[test]
    fn reading_the_rows_of_a_store_without_them_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pacsguard.db");
        let store = Store::open(&file).expect("open");
        let size = std::fs::metadata(&file).expect("stat").len();
        assert_eq!(store.seen_rows().expect("rows"), Vec::new());
        assert!(!store.has_seen_table().expect("schema"), "no table made");
        assert_eq!(std::fs::metadata(&file).expect("stat").len(), size);
    }

    fn row(rel: &str, whole: bool, entries: &[u8]) -> SeenRow {
        SeenRow {
            root: PathBuf::from("/r"),
            rel: rel.as_bytes().to_vec(),
            generation: 3,
            whole,
            entries: entries.to_vec(),
            mac: vec![1; 32],
        }
    }

    #[test]
    fn a_whole_subtree_row_replaces_the_rows_below_it_and_no_sibling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("pacsguard.db")).expect("open");
        store
            .put_seen(&[
                row("a/x", false, b"x1"),
                row("a-b", false, b"ab"),
                row("a0", false, b"a0"),
                row("b", false, b"b"),
            ])
            .expect("put");
        store.put_seen(&[row("a", true, b"")]).expect("put whole");
        let rels: Vec<Vec<u8>> = store
            .seen_rows()
            .expect("rows")
            .into_iter()
            .map(|r| r.rel)
            .collect();
        assert_eq!(
            rels,
            [
                b"a".to_vec(),
                b"a-b".to_vec(),
                b"a0".to_vec(),
                b"b".to_vec()
            ]
        );
        store.put_seen(&[row("", true, b"")]).expect("root");
        assert_eq!(store.seen_rows().expect("rows").len(), 1);
        store.clear_seen(|| Ok(())).expect("clear");
        assert!(store.seen_rows().expect("rows").is_empty());
    }

    /// The caller keeps a digest of the whole set from what each write takes away: every
    /// row replaced or removed below a whole-subtree row is handed over, nothing else; a
    /// refusal leaves the store as it was.
    #[test]
    fn a_write_hands_over_exactly_the_rows_it_takes_away_and_a_refusal_keeps_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("pacsguard.db")).expect("open");
        let with_mac = |rel: &str, whole: bool, mac: u8| SeenRow {
            mac: vec![mac; 32],
            ..row(rel, whole, b"")
        };
        store
            .put_seen(&[
                with_mac("a/x", false, 1),
                with_mac("a-b", false, 2),
                with_mac("b", false, 3),
            ])
            .expect("put");
        // "a" whole takes "a/x" away, and "a/x" named again in the same batch does not
        // take it away a second time.
        let mut once = Vec::new();
        store
            .put_seen_with(&[with_mac("a", true, 7), with_mac("a/x", false, 8)], |d| {
                once = d.to_vec();
                Err("only looking".into())
            })
            .expect_err("refused");
        assert_eq!(once, [vec![1; 32]]);
        let mut taken = Vec::new();
        store
            .put_seen_with(&[with_mac("a", true, 4), with_mac("b", false, 5)], |d| {
                taken = d.to_vec();
                Ok(())
            })
            .expect("put whole");
        taken.sort();
        assert_eq!(taken, [vec![1; 32], vec![3; 32]]);
        let refused = store.put_seen_with(&[with_mac("", true, 6)], |d| {
            assert_eq!(d.len(), 3, "a, a-b and b below the root");
            Err("the trail cannot be written".into())
        });
        assert!(
            matches!(refused, Err(StoreError::Refused { .. })),
            "{refused:?}"
        );
        assert!(store.clear_seen(|| Err("no".into())).is_err());
        let macs: Vec<u8> = store
            .seen_rows()
            .expect("rows")
            .iter()
            .map(|r| r.mac[0])
            .collect();
        assert_eq!(macs, [4, 2, 5], "nothing changed by the refused writes");
    }

    /// The caller records the set on the trail in `before_commit`, and the trail keeps
    /// its newest checkpoint in this same store through another connection. With the
    /// write transaction open meanwhile, that write waited out sqlite's busy timeout
    /// (5 s per save, stalling the watcher's loop) and then failed, leaving the store's
    /// copy of the newest checkpoint behind.
    #[test]
    fn another_connection_can_write_the_store_while_the_set_is_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pacsguard.db");
        let mut store = Store::open(&file).expect("open");
        store.put_seen(&[row("a", false, b"a")]).expect("put");
        let mut mirrored = None;
        store
            .put_seen_with(&[row("a", true, b""), row("b", false, b"b")], |_| {
                mirrored = Some(
                    Store::open(&file)
                        .and_then(|mut other| other.set_trail_mark("a checkpoint note"))
                        .map_err(|e| e.to_string()),
                );
                Ok(())
            })
            .expect("put");
        assert_eq!(mirrored, Some(Ok(())));
        let mut cleared = None;
        store
            .clear_seen(|| {
                cleared = Some(
                    Store::open(&file)
                        .and_then(|mut other| other.set_trail_mark("the next note"))
                        .map_err(|e| e.to_string()),
                );
                Ok(())
            })
            .expect("clear");
        assert_eq!(cleared, Some(Ok(())));
        assert!(store.seen_rows().expect("rows").is_empty());
    }
}
