//! The store keeps a baseline exactly, and refuses one that was touched after signing.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use pacsguard_fs::{Content, Digest, Entry, EntryType, HashAlgorithm, Meta, Xattr, XattrValue};
use pacsguard_profile::{Baseline, Policy, RootProfile, RootSpec};
use pacsguard_store::{Acceptance, Store, StoreError};

fn key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("random");
    SigningKey::from_bytes(&seed)
}

fn baseline() -> Baseline {
    let entries = vec![
        Entry {
            rel: vec![],
            kind: EntryType::Directory,
            meta: Meta {
                mode: 0o755,
                ino: u64::MAX,
                ..Meta::default()
            },
            link_target: None,
            xattrs: vec![],
            content: Content::NotApplicable,
        },
        Entry {
            rel: b"a\xff.dcm".to_vec(),
            kind: EntryType::File,
            meta: Meta {
                size: 10,
                mode: 0o4755,
                dev: u64::MAX - 1,
                ..Meta::default()
            },
            link_target: None,
            xattrs: vec![Xattr {
                name: b"security.capability".to_vec(),
                value: XattrValue::Inline(vec![1, 2, 3]),
            }],
            content: Content::Hashed {
                digest: Digest([3; 32]),
                prefix: None,
                dicom: None,
            },
        },
        Entry {
            rel: b"l".to_vec(),
            kind: EntryType::Symlink,
            meta: Meta::default(),
            link_target: Some(b"../x".to_vec()),
            xattrs: vec![],
            content: Content::NotApplicable,
        },
    ];
    Baseline {
        generation: 7,
        created: 1_800_000_000,
        roots: vec![RootProfile {
            spec: RootSpec {
                path: PathBuf::from("/srv/pacs"),
                policy: Policy::AppendOnly,
                hash: HashAlgorithm::Sha256,
                exclude: vec!["*.tmp".into()],
                cross_mounts: false,
            },
            entries,
        }],
    }
}

fn saved() -> (tempfile::TempDir, PathBuf, SigningKey, Baseline) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let base = baseline();
    let mut store = Store::open(&path).expect("open");
    let acceptance = Acceptance {
        time: 1,
        user: "root".into(),
        reason: "patch".into(),
        paths: vec!["/srv/pacs".into()],
    };
    store
        .save(
            &base,
            &[PathBuf::from("/srv/pacs")],
            &key,
            Some(&acceptance),
        )
        .expect("save");
    (dir, path, key, base)
}

#[test]
fn a_saved_baseline_loads_back_identical_and_verified() {
    let (_dir, path, key, base) = saved();
    let store = Store::open(&path).expect("reopen");
    let (loaded, info) = store
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!(loaded, base);
    assert_eq!(info.generation, 7);
    assert_eq!(store.acceptances().expect("acceptances")[0].reason, "patch");
    assert_eq!(streamed(&store, &key), (base, info));
}

/// The baseline as `load_streamed` verifies it and `stored_entries` reads it back.
fn streamed(store: &Store, key: &SigningKey) -> (Baseline, pacsguard_store::SignedInfo) {
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load streamed")
        .expect("present");
    let mut baseline = stored.baseline.clone();
    for root in &mut baseline.roots {
        assert!(root.entries.is_empty(), "entries held in memory");
        root.entries = store
            .stored_entries(&stored, &root.spec.path)
            .collect::<Result<_, _>>()
            .expect("entries");
        assert_eq!(
            stored.entry_count(&root.spec.path),
            root.entries.len() as u64
        );
    }
    (baseline, stored.info)
}

/// The error of loading the store the streamed way and reading every root, if any.
fn streamed_err(store: &Store, key: &SigningKey) -> Option<StoreError> {
    let stored = match store.load_streamed(&key.verifying_key()) {
        Ok(stored) => stored.expect("present"),
        Err(e) => return Some(e),
    };
    for root in &stored.baseline.roots {
        for entry in store.stored_entries(&stored, &root.spec.path) {
            if let Err(e) = entry {
                return Some(e);
            }
        }
    }
    None
}

#[test]
fn a_baseline_of_many_chunks_streams_back_identical() {
    // Three roots, the middle one spanning several chunks (4,096 entries each) with a
    // short last one: the digest and the order must come out as `load` has them.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let mut base = baseline();
    let template = base.roots[0].clone();
    for (name, count) in [("/a", 1usize), ("/srv/pacs", 10_000), ("/z", 4096)] {
        let mut root = template.clone();
        root.spec.path = PathBuf::from(name);
        let file = root.entries[1].clone();
        root.entries.truncate(1);
        for i in 1..count {
            let mut e = file.clone();
            e.rel = format!("f{i:06}").into_bytes();
            e.meta.ino = i as u64;
            root.entries.push(e);
        }
        base.replace_root(root);
    }
    let changed: Vec<PathBuf> = base.roots.iter().map(|r| r.spec.path.clone()).collect();
    let mut store = Store::open(&path).expect("open");
    store.save(&base, &changed, &key, None).expect("save");
    let (loaded, _) = store
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!(streamed(&store, &key).0, loaded);
    assert_eq!(loaded, base);
}

#[test]
fn a_chunk_changed_after_verification_is_refused_when_read() {
    let (_dir, path, key, _) = saved();
    let store = Store::open(&path).expect("open");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    // Another process rewrites the chunk with a validly encoded, different entry list
    // between the verification and the reading.
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch("UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 1) || X'03' AS BLOB)")
        .expect("edit");
    let read: Result<Vec<Entry>, StoreError> = store
        .stored_entries(&stored, std::path::Path::new("/srv/pacs"))
        .collect();
    let err = read.expect_err("a changed chunk is used");
    assert!(
        err.to_string().contains("changed after it was verified"),
        "{err}"
    );
}

#[test]
fn any_edited_row_fails_verification() {
    let edits = [
        // A byte of an entry changed (inside the first entry's fields).
        "UPDATE entry_chunks SET data = CAST(substr(data, 1, 40) || X'FF' || substr(data, 42) AS BLOB)",
        // The last entry's content state (a symlink's "not applicable") made "unstable".
        "UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 1) || X'03' AS BLOB)",
        "DELETE FROM entry_chunks",
        "INSERT INTO entry_chunks SELECT root, 1, data FROM entry_chunks WHERE seq = 0",
        "UPDATE roots SET policy = 'volatile'",
        "UPDATE roots SET exclude = X''",
        "UPDATE baseline SET generation = 8",
        "UPDATE baseline SET created = 0",
        "UPDATE baseline SET signature = zeroblob(64)",
        "DELETE FROM baseline",
        // Who accepted what, and why, is signed with the baseline.
        "UPDATE acceptances SET reason = 'approved by the vendor'",
        "UPDATE acceptances SET user = 'vendor'",
        "UPDATE acceptances SET time = 2",
        "DELETE FROM acceptances",
        "INSERT INTO acceptances (time, user, reason, generation, paths) SELECT time, user, 'again', generation, paths FROM acceptances",
    ];
    for edit in edits {
        let (_dir, path, key, _) = saved();
        rusqlite::Connection::open(&path)
            .expect("open raw")
            .execute_batch(edit)
            .expect(edit);
        let store = Store::open(&path).expect("open");
        let err = store.load(&key.verifying_key()).expect_err(edit);
        // Either the rows no longer decode or they decode to something that was not signed.
        assert!(
            matches!(
                err,
                StoreError::BadSignature { .. } | StoreError::Corrupt { .. }
            ),
            "{edit}: {err}"
        );
        // The same for the verification that holds no entry: refused when loaded, or
        // (a chunk's bytes, checked against their signed leaf when read) before any
        // entry of the chunk is used.
        let err = streamed_err(&store, &key).expect(edit);
        assert!(
            matches!(
                err,
                StoreError::BadSignature { .. } | StoreError::Corrupt { .. }
            ),
            "streamed, {edit}: {err}"
        );
    }
}

#[test]
fn a_baseline_signed_by_another_key_is_refused() {
    let (_dir, path, _key, _) = saved();
    let err = Store::open(&path)
        .expect("open")
        .load(&key().verifying_key())
        .expect_err("other key");
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
}

#[test]
fn a_truncated_store_is_an_error_not_a_panic() {
    let (_dir, path, key, _) = saved();
    let bytes = std::fs::read(&path).expect("read");
    for len in [0usize, 100, 4096, bytes.len() / 2] {
        std::fs::write(&path, &bytes[..len.min(bytes.len())]).expect("truncate");
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let result = Store::open(&path).and_then(|s| s.load(&key.verifying_key()));
        assert!(
            !matches!(result, Ok(Some(_))),
            "truncated to {len} still loaded"
        );
    }
}

#[test]
fn a_store_from_before_dicom_aware_profiles_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.pragma_update(None, "user_version", 1)
        .expect("version");
    drop(conn);
    let err = Store::open(&path).expect_err("version 1 refused");
    assert!(matches!(err, StoreError::Schema { found: 1, .. }), "{err}");
    assert!(
        err.to_string().contains("profile again into a new one"),
        "{err}"
    );
}

/// `base` with roots `/a` (1 entry), `/srv/pacs` (`pacs` entries) and `/z` (4,096).
fn three_roots(pacs: usize) -> Baseline {
    let mut base = baseline();
    let template = base.roots[0].clone();
    for (name, count) in [("/a", 1usize), ("/srv/pacs", pacs), ("/z", 4096)] {
        let mut root = template.clone();
        root.spec.path = PathBuf::from(name);
        let file = root.entries[1].clone();
        root.entries.truncate(1);
        for i in 1..count {
            let mut e = file.clone();
            e.rel = format!("f{i:06}").into_bytes();
            e.meta.ino = i as u64;
            root.entries.push(e);
        }
        base.replace_root(root);
    }
    base
}

/// Every row of the store's baseline tables, in order.
fn rows(path: &std::path::Path) -> Vec<Vec<Vec<u8>>> {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    let mut out = Vec::new();
    for query in [
        "SELECT CAST(root AS BLOB), CAST(seq AS TEXT), data FROM entry_chunks ORDER BY root, seq",
        "SELECT path, CAST(policy || hash AS BLOB), exclude, CAST(cross_mounts AS TEXT) FROM roots ORDER BY path",
        "SELECT CAST(generation AS TEXT), CAST(created AS TEXT), digest, public_key, signature FROM baseline",
    ] {
        let mut stmt = conn.prepare(query).expect("prepare");
        let width = stmt.column_count();
        let mut found = stmt.query([]).expect("query");
        while let Some(row) = found.next().expect("row") {
            out.push(
                (0..width)
                    .map(|i| match row.get_ref(i).expect("column") {
                        rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                        rusqlite::types::ValueRef::Text(t) => t.to_vec(),
                        other => panic!("unexpected column {other:?}"),
                    })
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn a_streamed_save_stores_byte_for_byte_what_save_stores() {
    // The same generation two ways: `save` of the whole baseline in memory, and a
    // streamed save that rewrites `/srv/pacs` (10,000 entries: two full chunks and a
    // short one) entry by entry and keeps `/a` and `/z` as a previous generation stored
    // them. Same chunks, same digest, same (deterministic Ed25519) signature.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key();
    let mut wanted = three_roots(10_000);
    wanted.generation = 8;
    let all: Vec<PathBuf> = wanted.roots.iter().map(|r| r.spec.path.clone()).collect();
    let in_memory = dir.path().join("in-memory.db");
    Store::open(&in_memory)
        .expect("open")
        .save(&wanted, &all, &key, None)
        .expect("save");

    let streamed_path = dir.path().join("streamed.db");
    let mut store = Store::open(&streamed_path).expect("open");
    let mut previous = three_roots(3); // `/srv/pacs` as it was before
    previous.generation = 7;
    store.save(&previous, &all, &key, None).expect("save");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let pacs = wanted
        .root(std::path::Path::new("/srv/pacs"))
        .expect("root");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer.start_root(&pacs.spec).expect("root");
    for entry in &pacs.entries {
        writer.push(entry).expect("push");
    }
    assert_eq!(writer.entry_count(&pacs.spec.path), 10_000);
    let entries = writer
        .commit(8, wanted.created, Some(&stored), &key, None)
        .expect("commit");
    assert_eq!(entries, wanted.entry_count() as u64);
    drop(store);
    assert_eq!(rows(&streamed_path), rows(&in_memory));
    let (loaded, info) = Store::open(&streamed_path)
        .expect("open")
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!((loaded, info.generation), (wanted, 8));
}

#[test]
fn a_streamed_save_that_fails_midway_leaves_the_previous_baseline() {
    // Fail loud and lose nothing: whether the save stops at an error after chunks were
    // written (an entry never hashed) or is merely abandoned (the process stopping),
    // the previous baseline is what loads, verified.
    let (_dir, path, key, base) = saved();
    let mut store = Store::open(&path).expect("open");
    let template = base.roots[0].entries[1].clone();
    for fail in [true, false] {
        let stored = store
            .load_streamed(&key.verifying_key())
            .expect("load")
            .expect("present");
        let mut writer = store.begin_streamed_save().expect("begin");
        let mut spec = base.roots[0].spec.clone();
        writer.start_root(&spec).expect("root");
        for i in 0..5000 {
            let mut e = template.clone();
            e.rel = format!("n{i:05}").into_bytes();
            writer.push(&e).expect("push");
        }
        spec.path = PathBuf::from("/srv/second");
        writer.start_root(&spec).expect("second root");
        if fail {
            let mut unhashed = template.clone();
            unhashed.content = Content::Pending;
            let err = writer
                .push(&unhashed)
                .expect_err("an unhashed entry stored");
            assert!(err.to_string().contains("never hashed"), "{err}");
        }
        drop(writer);
        drop(stored);
        let (loaded, info) = store
            .load(&key.verifying_key())
            .expect("load")
            .expect("the previous baseline is gone");
        assert_eq!((loaded, info.generation), (base.clone(), 7));
    }
}

#[test]
fn a_streamed_save_signs_only_what_it_verified() {
    // What another writer of the store file (not PacsGuard: it holds the home's lock)
    // changes between the verification of the previous baseline and the new signature
    // must not be signed with it: a forged acceptance row, or a kept root's chunk.
    for forgery in [
        "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (2, 'mallory', 'forged', 7, x'')",
        "UPDATE entry_chunks SET data = CAST(data || x'00' AS BLOB) WHERE seq = 0",
    ] {
        let (_dir, path, key, base) = saved();
        let mut store = Store::open(&path).expect("open");
        let stored = store
            .load_streamed(&key.verifying_key())
            .expect("load")
            .expect("present");
        rusqlite::Connection::open(&path)
            .and_then(|other| other.execute(forgery, []))
            .expect("forge");
        let mut writer = store.begin_streamed_save().expect("begin");
        let spec = RootSpec {
            path: PathBuf::from("/srv/new"),
            ..base.roots[0].spec.clone()
        };
        writer.start_root(&spec).expect("root");
        writer.push(&base.roots[0].entries[0]).expect("push");
        let committed = writer.commit(8, 2, Some(&stored), &key, None);
        if forgery.contains("acceptances") {
            let err = committed.expect_err(&format!("signed over {forgery}"));
            assert!(err.to_string().contains("changed"), "{err}");
        }
        // A kept chunk is signed by the leaf it was verified with, unread (the tree,
        // v3): the forged bytes are not what is signed, and stay refused when read.
        drop(stored);
        assert!(store.load(&key.verifying_key()).is_err(), "{forgery}");
        assert!(streamed_err(&store, &key).is_some(), "{forgery}");
    }
}

/// Review s16-r15: `save` (the in-memory `profile`, `accept`, `watch`) signed every
/// acceptance row its transaction saw, so a row another writer of the store file added
/// between the load that verified the baseline and the save (the whole walk of a long
/// re-profile) was signed with the new baseline. Now the standing acceptances must be
/// the ones the previous signature covers.
#[test]
fn a_save_signs_only_the_acceptances_it_verified() {
    let (_dir, path, key, base) = saved();
    let mut store = Store::open(&path).expect("open");
    store
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    rusqlite::Connection::open(&path)
        .and_then(|other| {
            other.execute(
                "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (2, 'mallory', 'forged', 7, x'')",
                [],
            )
        })
        .expect("forge");
    let err = store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect_err("a forged acceptance signed");
    assert!(err.to_string().contains("changed"), "{err}");
}

/// Every handle of a process saves after another's acceptance (serve's watch after a
/// relayed `accept`): the standing acceptances are verified against the stored
/// signature, not against what this handle loaded. A forged row is refused all the same,
/// and a handle rotating to a new key signs only the acceptances it verified.
#[test]
fn a_save_verifies_the_acceptances_another_handle_signed() {
    let (_dir, path, key, base) = saved();
    let mut watcher = Store::open(&path).expect("open");
    watcher.load(&key.verifying_key()).expect("load");
    let mut accepting = Store::open(&path).expect("open");
    accepting.load(&key.verifying_key()).expect("load");
    let acceptance = Acceptance {
        time: 3,
        user: "root".into(),
        reason: "CHG-3".into(),
        paths: vec!["/srv/pacs".into()],
    };
    accepting
        .save(
            &base,
            &[PathBuf::from("/srv/pacs")],
            &key,
            Some(&acceptance),
        )
        .expect("accept");
    watcher
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect("the other handle's acceptance is signed by the key: saved");
    let forge = || {
        rusqlite::Connection::open(&path)
            .and_then(|other| {
                other.execute(
                    "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (2, 'mallory', 'forged', 7, x'')",
                    [],
                )
            })
            .expect("forge");
    };
    forge();
    let err = Store::open(&path)
        .expect("open")
        .save(&base, &[], &key, None)
        .expect_err("a forged acceptance signed by a handle that never loaded");
    assert!(err.to_string().contains("changed"), "{err}");
    // A key rotation: the previous signature is by the old key.
    let (_dir, path, key, base) = saved();
    let new_key = self::key();
    let mut rotating = Store::open(&path).expect("open");
    rotating.load(&key.verifying_key()).expect("load");
    rusqlite::Connection::open(&path)
        .and_then(|other| {
            other.execute(
                "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (2, 'mallory', 'forged', 7, x'')",
                [],
            )
        })
        .expect("forge");
    let err = rotating
        .save(&base, &[], &new_key, None)
        .expect_err("a forged acceptance signed by the new key");
    assert!(err.to_string().contains("changed"), "{err}");
    let mut rotating = Store::open(&path).expect("open");
    rusqlite::Connection::open(&path)
        .and_then(|other| other.execute("DELETE FROM acceptances WHERE user = 'mallory'", []))
        .expect("unforge");
    rotating.load(&key.verifying_key()).expect("load");
    rotating
        .save(&base, &[], &new_key, None)
        .expect("what this handle verified is signed by the new key");
    assert!(rotating.load(&new_key.verifying_key()).is_ok());
}

/// A store never signed holding an acceptance row (written by another writer of the
/// file, not by PacsGuard: acceptances are only written with a signature): the first
/// profile must not sign it, streamed or in memory, and loading says the store is not new.
#[test]
fn a_first_save_signs_no_acceptance_it_did_not_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let base = baseline();
    drop(Store::open(&path).expect("open"));
    rusqlite::Connection::open(&path)
        .and_then(|other| {
            other.execute(
                "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (2, 'mallory', 'forged', 1, x'')",
                [],
            )
        })
        .expect("forge");
    let mut store = Store::open(&path).expect("open");
    let err = store
        .load(&key.verifying_key())
        .expect_err("a store with acceptances but no signature is not new");
    assert!(
        err.to_string().contains("signature row is missing"),
        "{err}"
    );
    let err = store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect_err("an unsigned acceptance signed in memory");
    assert!(err.to_string().contains("changed"), "{err}");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer.start_root(&base.roots[0].spec).expect("root");
    for entry in &base.roots[0].entries {
        writer.push(entry).expect("push");
    }
    let err = writer
        .commit(1, 1, None, &key, None)
        .expect_err("an unsigned acceptance signed streamed");
    assert!(err.to_string().contains("changed"), "{err}");
}

#[test]
fn a_root_replaced_while_it_is_read_stores_what_save_stores() {
    // A re-profile or an acceptance (issue 15) reads a root's stored entries through the
    // save's own transaction while it writes the new ones (`replace_root`, the new
    // chunks staged until the root ends). The same generation two ways: `/srv/pacs`
    // grown from 6,000 to 10,000 entries (every stored entry read back while the new
    // chunks are written, every fourth changed, 4,000 new ones between them), `/z`
    // begun and then put back as stored (`keep_root`, an acceptance that found nothing
    // there), and an acceptance recorded. Same rows, digest, signature and acceptances.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key();
    let mut previous = three_roots(6_000);
    previous.generation = 7;
    let pacs_path = PathBuf::from("/srv/pacs");
    let old_pacs = previous.root(&pacs_path).expect("root").clone();
    let mut new_entries = Vec::new();
    for (i, old) in old_pacs.entries.iter().enumerate() {
        let mut e = old.clone();
        if i % 4 == 0 {
            e.meta.size += 1;
        }
        new_entries.push(e);
        if (1..=4_000).contains(&i) {
            let mut added = old.clone();
            added.rel.push(b'+');
            new_entries.push(added);
        }
    }
    let mut wanted = previous.clone();
    wanted.generation = 8;
    wanted.created += 60;
    wanted.replace_root(RootProfile {
        spec: old_pacs.spec.clone(),
        entries: new_entries.clone(),
    });
    let acceptance = Acceptance {
        time: wanted.created,
        user: "root".into(),
        reason: "CHG-2".into(),
        paths: vec!["/srv/pacs".into()],
    };
    let all: Vec<PathBuf> = previous.roots.iter().map(|r| r.spec.path.clone()).collect();
    let in_memory = dir.path().join("in-memory.db");
    let mut store = Store::open(&in_memory).expect("open");
    store.save(&previous, &all, &key, None).expect("save");
    store
        .save(
            &wanted,
            std::slice::from_ref(&pacs_path),
            &key,
            Some(&acceptance),
        )
        .expect("save");
    let accepted_in_memory = store.acceptances().expect("acceptances");
    drop(store);

    let streamed_path = dir.path().join("streamed.db");
    let mut store = Store::open(&streamed_path).expect("open");
    store.save(&previous, &all, &key, None).expect("save");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer.replace_root(&old_pacs.spec).expect("root");
    let mut cursor = stored.cursor(&pacs_path);
    let mut read = Vec::new();
    for entry in &new_entries {
        while let Some(old) = writer.peek_stored(&mut cursor).expect("peek")
            && old.rel <= entry.rel
        {
            read.push(
                writer
                    .next_stored(&mut cursor)
                    .expect("read")
                    .expect("entry"),
            );
        }
        writer.push(entry).expect("push");
    }
    while let Some(old) = writer.next_stored(&mut cursor).expect("read") {
        read.push(old);
    }
    assert_eq!(read, old_pacs.entries, "every stored entry read back");
    let z = previous.root(std::path::Path::new("/z")).expect("root");
    writer.replace_root(&z.spec).expect("z");
    for entry in &new_entries[..5_000] {
        writer.push(entry).expect("push");
    }
    writer.keep_root(&z.spec).expect("keep z");
    let entries = writer
        .commit(8, wanted.created, Some(&stored), &key, Some(&acceptance))
        .expect("commit");
    assert_eq!(entries, wanted.entry_count() as u64);
    assert_eq!(
        store.acceptances().expect("acceptances"),
        accepted_in_memory
    );
    drop(store);
    assert_eq!(rows(&streamed_path), rows(&in_memory));
    let (loaded, info) = Store::open(&streamed_path)
        .expect("open")
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!((loaded, info.generation), (wanted, 8));
}

#[test]
fn a_replacement_abandoned_midway_leaves_the_previous_baseline() {
    // Dropped with new chunks staged and old ones deleted by a finished root (the
    // process stopping, an error), nothing is committed.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let mut previous = three_roots(9_000);
    previous.generation = 7;
    let all: Vec<PathBuf> = previous.roots.iter().map(|r| r.spec.path.clone()).collect();
    let mut store = Store::open(&path).expect("open");
    store.save(&previous, &all, &key, None).expect("save");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let mut writer = store.begin_streamed_save().expect("begin");
    for root in ["/a", "/srv/pacs"] {
        let spec = &previous
            .root(std::path::Path::new(root))
            .expect("root")
            .spec;
        writer.replace_root(spec).expect("root");
        let mut cursor = stored.cursor(&spec.path);
        while let Some(mut e) = writer.next_stored(&mut cursor).expect("read") {
            e.meta.size += 1;
            writer.push(&e).expect("push");
        }
    }
    drop(writer);
    drop(stored);
    let (loaded, info) = store
        .load(&key.verifying_key())
        .expect("load")
        .expect("the previous baseline is gone");
    assert_eq!((loaded, info.generation), (previous, 7));
}

#[test]
fn a_root_patched_in_place_signs_the_entries_and_keeps_the_other_chunks() {
    // `accept` of a few paths rewrites only the chunks holding them (`patch_root`): chunk
    // 1 of `/srv/pacs` (10,000 entries) gets one entry more, its other chunks stay as
    // stored; `/z`, patched then ended unkept, is put back as stored. The baseline loads
    // verified with the entries wanted, whatever the chunks' cut.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let mut previous = three_roots(10_000);
    previous.generation = 7;
    let all: Vec<PathBuf> = previous.roots.iter().map(|r| r.spec.path.clone()).collect();
    let mut store = Store::open(&path).expect("open");
    store.save(&previous, &all, &key, None).expect("save");
    let before = rows(&path);
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let pacs = previous
        .root(std::path::Path::new("/srv/pacs"))
        .expect("root");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer.patch_root(&stored, &pacs.spec).expect("patch");
    assert_eq!(writer.patched_chunks(), 3);
    let old = writer.patched_chunk(1).expect("chunk");
    let mut new = old.clone();
    let mut added = old[0].clone();
    added.rel.push(b'+');
    new.insert(1, added.clone());
    writer.patch_chunk(1, &old, &new).expect("patched");
    writer.end_patch(true).expect("kept");
    let z = previous.root(std::path::Path::new("/z")).expect("root");
    writer.patch_root(&stored, &z.spec).expect("patch z");
    let old = writer.patched_chunk(0).expect("chunk");
    writer.patch_chunk(0, &old, &old[1..]).expect("patched");
    writer.end_patch(false).expect("put back");
    writer
        .commit(8, 99, Some(&stored), &key, None)
        .expect("commit");
    drop(store);
    let mut wanted = previous.clone();
    wanted.generation = 8;
    wanted.created = 99;
    let mut entries = pacs.entries.clone();
    entries.push(added);
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    wanted.replace_root(RootProfile {
        spec: pacs.spec.clone(),
        entries,
    });
    let (loaded, info) = Store::open(&path)
        .expect("open")
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!((loaded, info.generation), (wanted, 8));
    let after = rows(&path);
    // Chunk rows of `/a`, `/srv/pacs` (3) and `/z`: only the second of `/srv/pacs` differs.
    let differing: Vec<usize> = (0..5).filter(|&i| before[i] != after[i]).collect();
    assert_eq!(differing, [2]);
}

/// Review s18-r15: another writer of the store file deletes, between the load that
/// verified the baseline and the save, the signature row and every acceptance row. The
/// save took the store for one never signed (no signature row, no acceptance standing)
/// and signed the new baseline over an empty record: every acceptance ever recorded
/// (who accepted what, why) erased, and the erasure signed. A handle that verified
/// acceptances signs only those.
#[test]
fn a_save_does_not_sign_the_acceptances_erased_with_the_signature() {
    let (_dir, path, key, base) = saved();
    let mut store = Store::open(&path).expect("open");
    store
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
    rusqlite::Connection::open(&path)
        .and_then(|other| {
            other.execute_batch("DELETE FROM acceptances; DELETE FROM baseline WHERE id = 1;")
        })
        .expect("erase");
    let err = store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect_err("the erasure of every acceptance signed");
    assert!(err.to_string().contains("changed"), "{err}");
}

/// Review s18-r15: between the load and the save, another writer of the store file
/// deletes the newest acceptance row and puts back the signature row of the generation
/// before it (a copy of the file kept from then): the standing acceptances verify with
/// that older signature, so the save signed the new baseline over a record with the
/// newest acceptance (who accepted what, why) erased. What this handle verified must
/// still stand, in order, below anything appended since.
#[test]
fn a_save_does_not_sign_acceptances_rolled_back_with_an_older_signature() {
    let (_dir, path, key, base) = saved();
    let old_row: (i64, i64, Vec<u8>, Vec<u8>, Vec<u8>) = rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.query_row(
                "SELECT generation, created, digest, public_key, signature FROM baseline WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
        })
        .expect("old row");
    let mut store = Store::open(&path).expect("open");
    store.load(&key.verifying_key()).expect("load");
    let acceptance = Acceptance {
        time: 5,
        user: "root".into(),
        reason: "CHG-5".into(),
        paths: vec!["/srv/pacs".into()],
    };
    store
        .save(
            &base,
            &[PathBuf::from("/srv/pacs")],
            &key,
            Some(&acceptance),
        )
        .expect("accept");
    rusqlite::Connection::open(&path)
        .and_then(|other| {
            other.execute(
                "DELETE FROM acceptances WHERE id = (SELECT max(id) FROM acceptances)",
                [],
            )?;
            other.execute(
                "UPDATE baseline SET generation = ?1, created = ?2, digest = ?3, public_key = ?4, signature = ?5 WHERE id = 1",
                rusqlite::params![old_row.0, old_row.1, old_row.2, old_row.3, old_row.4],
            )
        })
        .expect("roll back");
    let err = store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect_err("the newest acceptance erased and the erasure signed");
    assert!(err.to_string().contains("changed"), "{err}");
}

/// `accept --remove-root` takes a root out without reading the others into memory
/// (review s18-r15: it loaded the whole profile): the baseline signed is the one `save`
/// signs for the same roots less the removed one, and loads back verified.
#[test]
fn a_streamed_save_removes_a_root_and_keeps_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let base = three_roots(9000);
    let mut store = Store::open(&path).expect("open");
    let all: Vec<PathBuf> = base.roots.iter().map(|r| r.spec.path.clone()).collect();
    store.save(&base, &all, &key, None).expect("save");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer
        .remove_root(std::path::Path::new("/srv/pacs"))
        .expect("remove");
    writer
        .commit(base.generation + 1, 5, Some(&stored), &key, None)
        .expect("commit");
    drop(stored);
    let (loaded, _) = streamed(&store, &key);
    let mut want = base.clone();
    want.take_root(std::path::Path::new("/srv/pacs"));
    want.generation += 1;
    want.created = 5;
    assert_eq!(loaded, want);
    assert!(store.load(&key.verifying_key()).is_ok());
}

/// `/a` (1 chunk), `/srv/pacs` (10,000 entries: 3 chunks) and `/z` (1 chunk), saved.
fn saved_three() -> (tempfile::TempDir, PathBuf, SigningKey, Baseline) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let base = three_roots(10_000);
    let all: Vec<PathBuf> = base.roots.iter().map(|r| r.spec.path.clone()).collect();
    Store::open(&path)
        .expect("open")
        .save(&base, &all, &key, None)
        .expect("save");
    (dir, path, key, base)
}

#[test]
fn every_chunk_or_leaf_tampering_of_a_tree_signed_store_fails_loudly() {
    // The v3 signature covers a tree whose leaves are the chunks' hashes (with their
    // root, place, counts and first path): a chunk edited, swapped, moved to another
    // root, dropped or duplicated, or a leaf row edited, must each be refused, by
    // `load` and by the streamed load before any entry of the chunk is used.
    let edits = [
        // A chunk's bytes edited (a byte of its first entry).
        "UPDATE entry_chunks SET data = CAST(substr(data, 1, 40) || X'FF' || substr(data, 42) AS BLOB) WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 1",
        // Two chunks of a root swapped, their leaves too.
        "UPDATE entry_chunks SET seq = 7 - seq WHERE root = CAST('/srv/pacs' AS BLOB) AND seq IN (0, 1); UPDATE entry_chunks SET seq = seq - 6 WHERE seq >= 6;
         UPDATE chunk_leaves SET seq = 7 - seq WHERE root = CAST('/srv/pacs' AS BLOB) AND seq IN (0, 1); UPDATE chunk_leaves SET seq = seq - 6 WHERE seq >= 6",
        // Two chunks swapped, the leaves left.
        "UPDATE entry_chunks SET seq = 7 - seq WHERE root = CAST('/srv/pacs' AS BLOB) AND seq IN (0, 1); UPDATE entry_chunks SET seq = seq - 6 WHERE seq >= 6",
        // The last chunk of a root moved to the end of another, with its leaf.
        "UPDATE entry_chunks SET root = CAST('/z' AS BLOB), seq = 1 WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2;
         UPDATE chunk_leaves SET root = CAST('/z' AS BLOB), seq = 1 WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2",
        // A chunk's bytes replaced by another root's chunk (the leaf left; chunk 0 of
        // each root is byte for byte the same here, so chunk 1).
        "UPDATE entry_chunks SET data = (SELECT data FROM entry_chunks WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 1) WHERE root = CAST('/z' AS BLOB)",
        // A chunk dropped; dropped with its leaf.
        "DELETE FROM entry_chunks WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2",
        "DELETE FROM entry_chunks WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2; DELETE FROM chunk_leaves WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2",
        // A chunk duplicated; duplicated with its leaf.
        "INSERT INTO entry_chunks SELECT root, 3, data FROM entry_chunks WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2",
        "INSERT INTO entry_chunks SELECT root, 3, data FROM entry_chunks WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2;
         INSERT INTO chunk_leaves SELECT root, 3, entries, files, bytes, first, hash FROM chunk_leaves WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 2",
        // A leaf row edited: its hash, made that of the chunk edited with it.
        "UPDATE chunk_leaves SET hash = zeroblob(32) WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 1",
        "UPDATE chunk_leaves SET entries = entries + 1 WHERE root = CAST('/z' AS BLOB)",
        "UPDATE chunk_leaves SET files = 0 WHERE root = CAST('/z' AS BLOB)",
        // Counts that overflow when a root's leaves are summed, before the signature is
        // verified: refused, never a panic (review of session 19).
        "UPDATE chunk_leaves SET entries = 9223372036854775807, files = 9223372036854775807 WHERE root = CAST('/srv/pacs' AS BLOB)",
        "UPDATE chunk_leaves SET first = CAST('f' AS BLOB) WHERE root = CAST('/srv/pacs' AS BLOB) AND seq = 1",
        "DELETE FROM chunk_leaves",
        "DROP TABLE chunk_leaves",
        "INSERT INTO chunk_leaves SELECT CAST('/elsewhere' AS BLOB), seq, entries, files, bytes, first, hash FROM chunk_leaves WHERE root = CAST('/z' AS BLOB)",
    ];
    for edit in edits {
        let (_dir, path, key, _) = saved_three();
        assert!(streamed_err(&Store::open(&path).expect("open"), &key).is_none());
        rusqlite::Connection::open(&path)
            .expect("open raw")
            .execute_batch(edit)
            .expect(edit);
        let store = Store::open(&path).expect("open");
        let err = store.load(&key.verifying_key()).expect_err(edit);
        assert!(
            matches!(
                err,
                StoreError::BadSignature { .. } | StoreError::Corrupt { .. }
            ),
            "{edit}: {err}"
        );
        let err = streamed_err(&store, &key).expect(edit);
        assert!(
            matches!(
                err,
                StoreError::BadSignature { .. } | StoreError::Corrupt { .. }
            ),
            "streamed, {edit}: {err}"
        );
    }
}

#[test]
fn a_tree_signed_store_is_verified_without_reading_its_chunks() {
    // The streamed load verifies the signed tree from the leaf rows: a chunk of `/z`
    // edited in the file is found when `/z` is read, and `/srv/pacs` reads back whole
    // meanwhile (a whole-baseline digest read every chunk, and refused the store at load).
    let (_dir, path, key, base) = saved_three();
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch("UPDATE entry_chunks SET data = CAST(substr(data, 1, 40) || X'FF' || substr(data, 42) AS BLOB) WHERE root = CAST('/z' AS BLOB)")
        .expect("edit");
    let store = Store::open(&path).expect("open");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("verified from the leaves")
        .expect("present");
    let pacs: Vec<Entry> = store
        .stored_entries(&stored, std::path::Path::new("/srv/pacs"))
        .collect::<Result<_, _>>()
        .expect("an untouched root reads back");
    assert_eq!(
        pacs,
        base.root(std::path::Path::new("/srv/pacs"))
            .expect("root")
            .entries
    );
    let err = store
        .stored_entries(&stored, std::path::Path::new("/z"))
        .collect::<Result<Vec<Entry>, _>>()
        .expect_err("an edited chunk used");
    assert!(
        err.to_string().contains("changed after it was verified"),
        "{err}"
    );
}

/// The generation and signature stored, to see that nothing was signed.
fn signature_of(path: &std::path::Path) -> (i64, Vec<u8>) {
    rusqlite::Connection::open(path)
        .expect("open raw")
        .query_row("SELECT generation, signature FROM baseline", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("signature row")
}

#[test]
fn a_patch_signs_no_chunk_it_did_not_read_back() {
    // An acceptance patching one chunk of `/srv/pacs` signed the other chunks by the leaf
    // they were verified with, unread: a chunk of `/z` edited in the file meanwhile was
    // not laundered, but the save went through without a word (review s21). The commit
    // now reads every chunk back against its leaf: refused, naming the chunk, nothing
    // committed.
    let (_dir, path, key, base) = saved_three();
    let mut store = Store::open(&path).expect("open");
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let signed = signature_of(&path);
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch("UPDATE entry_chunks SET data = CAST(substr(data, 1, 40) || X'FF' || substr(data, 42) AS BLOB) WHERE root = CAST('/z' AS BLOB)")
        .expect("edit");
    let pacs = base.root(std::path::Path::new("/srv/pacs")).expect("root");
    let mut writer = store.begin_streamed_save().expect("begin");
    writer.patch_root(&stored, &pacs.spec).expect("patch");
    let old = writer.patched_chunk(1).expect("chunk");
    writer.patch_chunk(1, &old, &old[1..]).expect("patched");
    writer.end_patch(true).expect("kept");
    let err = writer
        .commit(8, 99, Some(&stored), &key, None)
        .expect_err("signed over an altered chunk it did not read");
    assert!(
        err.to_string().contains("entry chunk 0 of /z") && err.to_string().contains("not signing"),
        "{err}"
    );
    assert_eq!(signature_of(&path), signed, "a new generation was signed");
    let err = store
        .verify_stored(&stored)
        .expect_err("an altered chunk verified");
    assert!(err.to_string().contains("entry chunk 0 of /z"), "{err}");
}

#[test]
fn a_patch_writes_only_its_leaf_rows_and_signs_the_rows_stored() {
    // Issue 15: a save rewrote every leaf row (`write_leaves`); a patch now writes only
    // the rows of the chunks it changed, and reads every root's rows back before it
    // signs: a leaf row of `/z` edited beside the save is refused, not rewritten over
    // from memory nor signed around. Without the edit the same patch commits, and only
    // the patched chunk's row differs.
    let (_dir, path, key, base) = saved_three();
    let leaves = |path: &std::path::Path| -> Vec<(Vec<u8>, i64, Vec<u8>)> {
        let conn = rusqlite::Connection::open(path).expect("open raw");
        let mut stmt = conn
            .prepare("SELECT root, seq, hash FROM chunk_leaves ORDER BY root, seq")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let pacs = base.root(std::path::Path::new("/srv/pacs")).expect("root");
    let before = leaves(&path);
    for edit in [true, false] {
        let mut store = Store::open(&path).expect("open");
        let stored = store
            .load_streamed(&key.verifying_key())
            .expect("load")
            .expect("present");
        if edit {
            rusqlite::Connection::open(&path)
                .expect("open raw")
                .execute_batch(
                    "UPDATE chunk_leaves SET files = files + 1 WHERE root = CAST('/z' AS BLOB)",
                )
                .expect("edit");
        }
        let mut writer = store.begin_streamed_save().expect("begin");
        writer.patch_root(&stored, &pacs.spec).expect("patch");
        let old = writer.patched_chunk(1).expect("chunk");
        writer.patch_chunk(1, &old, &old[1..]).expect("patched");
        writer.end_patch(true).expect("kept");
        let result = writer.commit(8, 99, Some(&stored), &key, None);
        if edit {
            let err = result.expect_err("signed around an edited leaf row");
            assert!(err.to_string().contains("chunk leaves of /z"), "{err}");
            rusqlite::Connection::open(&path)
                .expect("open raw")
                .execute_batch(
                    "UPDATE chunk_leaves SET files = files - 1 WHERE root = CAST('/z' AS BLOB)",
                )
                .expect("undo");
        } else {
            result.expect("commit");
        }
    }
    let after = leaves(&path);
    assert_eq!(before.len(), after.len());
    let changed: Vec<(Vec<u8>, i64)> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| (b.0.clone(), b.1))
        .collect();
    assert_eq!(changed, [(b"/srv/pacs".to_vec(), 1)]);
    let store = Store::open(&path).expect("open");
    store
        .load(&key.verifying_key())
        .expect("load")
        .expect("present");
}

#[test]
fn a_store_signed_v2_still_verifies_and_the_next_save_signs_the_tree() {
    // A home signed before the tree (v2: the whole baseline's digest, no leaf rows; or
    // stale leaf rows beside a v2 signature) loads both ways; the next save writes the
    // leaves and signs v3, which loads.
    for leaves in [
        "DROP TABLE chunk_leaves",
        "DELETE FROM chunk_leaves WHERE seq > 0",
    ] {
        signed_v2_then_v3(leaves);
    }
}

fn signed_v2_then_v3(leaves: &str) {
    let (_dir, path, key, base) = saved_three();
    {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        let acceptances = {
            // No acceptance stands: the digest of none.
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(b"PacsGuard acceptances v1\n");
            <[u8; 32]>::from(h.finalize())
        };
        let digest = base.digest();
        let signature = ed25519_dalek::Signer::sign(
            &key,
            &pacsguard_store::signing_message_v2(&digest, &acceptances),
        );
        conn.execute_batch(leaves).expect(leaves);
        conn.execute(
            "UPDATE baseline SET digest = ?1, signature = ?2",
            rusqlite::params![digest.as_slice(), signature.to_bytes().as_slice()],
        )
        .expect("re-sign v2");
    }
    let mut store = Store::open(&path).expect("open");
    let (loaded, _) = store
        .load(&key.verifying_key())
        .expect("v2 loads")
        .expect("present");
    assert_eq!(loaded, base);
    assert!(streamed_err(&store, &key).is_none());
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    let writer = store.begin_streamed_save().expect("begin");
    writer
        .commit(8, 99, Some(&stored), &key, None)
        .expect("commit");
    drop(store);
    let leaves: i64 = rusqlite::Connection::open(&path)
        .expect("open raw")
        .query_row("SELECT count(*) FROM chunk_leaves", [], |r| r.get(0))
        .expect("leaf rows written");
    assert_eq!(leaves, 5);
    let store = Store::open(&path).expect("open");
    assert!(streamed_err(&store, &key).is_none());
    let (loaded, info) = store
        .load(&key.verifying_key())
        .expect("v3 loads")
        .expect("present");
    assert_eq!(info.generation, 8);
    assert_eq!(loaded.roots, base.roots);
}

#[test]
fn a_chunk_of_sparse_files_past_i64_bytes_loads_back() {
    // Review s19-r15: two sparse files of 4 EiB (`truncate -s 4E`, no space used, on
    // tmpfs; a volatile root never hashes them) make a chunk's byte count 2^63. The leaf
    // row stored it as a wrapped negative INTEGER and read it back as "malformed": the
    // store signed a moment before was refused as damaged by every command after.
    let mut base = baseline();
    let file = base.roots[0].entries[1].clone();
    for (name, size) in [
        (&b"s1"[..], 1u64 << 62),
        (b"s2", 1 << 62),
        (b"s3", u64::MAX),
    ] {
        let mut sparse = file.clone();
        sparse.rel = name.to_vec();
        sparse.meta.size = size;
        base.roots[0].entries.push(sparse);
    }
    base.roots[0].entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pacsguard.db");
    let key = key();
    let mut store = Store::open(&path).expect("open");
    store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect("save");
    let (loaded, _) = store
        .load(&key.verifying_key())
        .expect("loads")
        .expect("present");
    assert_eq!(loaded, base);
    assert_eq!(streamed(&store, &key).0, base);
    let stored = store
        .load_streamed(&key.verifying_key())
        .expect("load")
        .expect("present");
    assert_eq!(
        stored.file_totals(std::path::Path::new("/srv/pacs")),
        (4, u64::MAX)
    );
}

#[test]
fn a_new_store_is_made_of_16_kib_pages_and_an_older_one_is_read_as_it_is() {
    // Review r23-scale: every save reads every chunk back against its leaf before it
    // signs, and SQLite reads a chunk (~600 KB of entries) one page at a time, one
    // `pread` each: with 4 KiB pages that was most of `accept`'s CPU at 1,000,000 files.
    // A new store is made of 16 KiB pages (4 times fewer reads per chunk); a store made
    // before keeps its 4 KiB pages (changing them needs a VACUUM) and still loads.
    let (_dir, path, key, base) = saved();
    let page_size = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .expect("sqlite")
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .expect("page_size")
    };
    assert_eq!(page_size(&path), 16_384);
    let older = path.with_file_name("older.db");
    let conn = rusqlite::Connection::open(&older).expect("sqlite");
    conn.pragma_update(None, "page_size", 4096)
        .expect("page size");
    conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .expect("made");
    drop(conn);
    let mut store = Store::open(&older).expect("open");
    let roots: Vec<PathBuf> = base.roots.iter().map(|r| r.spec.path.clone()).collect();
    store
        .save(&base, &roots, &key, None)
        .expect("save into a 4 KiB store");
    assert_eq!(page_size(&older), 4096);
    let (loaded, _) = store
        .load(&key.verifying_key())
        .expect("load")
        .expect("a baseline");
    assert_eq!(loaded, base);
}

/// Review rv44-fleet case15: the store holds the console's accounts (TOTP secrets,
/// password hashes); SQLite made it with the process's umask (0644 under 022), so in a
/// home made by `mkdir` (0755) any local user could read them. It is made 0600, and one
/// found wider (an earlier version's) is narrowed when opened, its journal with it.
#[test]
fn the_store_is_owner_only_made_so_or_narrowed() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    };
    let (dir, path, key, base) = saved();
    assert_eq!(mode(&path), 0o600, "made owner-only");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut store = Store::open(&path).expect("reopen");
    assert_eq!(mode(&path), 0o600, "narrowed at its opening");
    store
        .save(&base, &[PathBuf::from("/srv/pacs")], &key, None)
        .expect("save");
    assert_eq!(mode(&path), 0o600, "still owner-only after a write");
    drop(dir);
}
