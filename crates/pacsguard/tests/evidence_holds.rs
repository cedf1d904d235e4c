//! Issue 12: the trail, the witness, the store and the home's files hold against an
//! intruder with write access to the home or the witness share, through the real binary.

mod common;
mod watcher;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn witness_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn records(env: &Env, action: &str) -> Vec<serde_json::Value> {
    let out = env.run(&["audit", "show", "--json", "--action", action]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["records"].as_array().cloned().unwrap_or_default()
}

/// Runs `cmd` and fails the test (instead of hanging it) if it takes longer than 20 s.
fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command hung: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn bounded(env: &Env, args: &[&str]) -> Output {
    let mut cmd = pacsguard();
    cmd.arg("--home").arg(&env.home).args(args);
    run_bounded(cmd)
}

// Item 6: deleting the witness must not switch it off.
#[test]
fn a_deleted_witness_is_refused_until_a_person_reinitialises_it_on_the_record() {
    let (env, witness) = witnessed_env();
    let file = witness_file(&witness);
    fs::remove_file(&file).expect("intruder deletes the witness");
    let out = env.run(&["check"]);
    assert_refused(&out, "witness init");
    assert!(
        !file.exists(),
        "nothing was signed over the missing witness"
    );
    let out = env.run(&[
        "audit",
        "witness",
        "init",
        "--reason",
        "INC-7: share restored",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(file.exists());
    assert_eq!(env.check(&[]).0, 0);
    let recorded = records(&env, "audit");
    assert!(
        recorded
            .iter()
            .any(|r| r["reason"] == "INC-7: share restored"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no checkpoint"))),
        "{recorded:#?}"
    );
}

#[test]
fn a_witness_behind_the_trail_is_refused_and_reinitialised_only_if_consistent() {
    let (env, witness) = witnessed_env();
    let file = witness_file(&witness);
    let old = fs::read(&file).expect("read");
    // Two commands on: the witness is further behind than any crash leaves it.
    assert_eq!(env.check(&[]).0, 0);
    assert_eq!(env.check(&[]).0, 0);
    fs::write(&file, &old).expect("witness put back behind");
    let out = env.run(&["check"]);
    assert_refused(&out, "behind");
    assert_eq!(fs::read(&file).expect("read"), old, "not overwritten");
    // The trail extends what the witness holds (proven): a person may take it forward.
    let out = env.run(&[
        "audit",
        "witness",
        "init",
        "--reason",
        "lost write, checked",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(fs::read(&file).expect("read"), old);
    assert_eq!(env.check(&[]).0, 0);
}

// A command killed after its checkpoint is durable in the home but before the witness
// copy is written leaves the witness holding the checkpoint before the last. That is a
// crash, not tampering: the next command brings the witness up to date, on the record,
// instead of refusing the home until a person acts (kill -9 did that 3 times in 10).
#[test]
fn a_witness_left_one_checkpoint_behind_by_a_crash_is_brought_up_to_date_on_the_record() {
    let (env, witness) = witnessed_env();
    let file = witness_file(&witness);
    let old = fs::read(&file).expect("read");
    assert_eq!(env.check(&[]).0, 0);
    // What the kill leaves: the home's newest checkpoint, the witness's previous one.
    fs::write(&file, &old).expect("the copy the killed command did not write");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(fs::read(&file).expect("read"), old, "the witness caught up");
    let audit = records(&env, "audit");
    assert!(
        audit.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("witness held the checkpoint before the last"))),
        "{audit:#?}"
    );
    let out = env.run(&[
        "audit",
        "verify",
        "--witness",
        witness.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_rolled_back_trail_is_never_signed_over_its_witness_even_by_reinitialising() {
    let (env, witness) = witnessed_env();
    let file = witness_file(&witness);
    let log = fs::read(env.home.join("audit.log")).expect("read");
    let checkpoints = fs::read(env.home.join("checkpoints.jsonl")).expect("read");
    assert_eq!(env.check(&[]).0, 0);
    let ahead = fs::read(&file).expect("read");
    fs::write(env.home.join("audit.log"), log).expect("roll back");
    fs::write(env.home.join("checkpoints.jsonl"), checkpoints).expect("roll back");
    for args in [
        &["check"][..],
        &["audit", "witness", "init", "--reason", "make it go away"][..],
    ] {
        let out = env.run(args);
        assert_refused_in(&out, "rolled back", format_args!("{args:?}"));
    }
    assert_eq!(fs::read(&file).expect("read"), ahead, "the witness kept");
}

// Item 7: records someone else appended are never signed.
#[test]
fn a_forged_record_after_the_last_checkpoint_is_refused_not_signed() {
    let env = Env::new();
    env.profile(&[]);
    let path = env.home.join("audit.log");
    let size = fs::read_to_string(&path).expect("read").lines().count();
    let forged = format!(
        "{{\"seq\":{size},\"host\":\"pacs\",\"time\":\"2026-12-01T10:00:00Z\",\"actor\":{{\"user\":\"root\",\"uid\":0}},\"action\":\"accept\",\"outcome\":\"success\",\"reason\":\"approved by the vendor\",\"detail\":\"all differences accepted\"}}\n"
    );
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(forged.as_bytes());
    fs::write(&path, &bytes).expect("append");
    let before = fs::read(env.home.join("checkpoints.jsonl")).expect("read");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("record {size}")) && stderr(&out).contains("MAC"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read(env.home.join("checkpoints.jsonl")).expect("read"),
        before,
        "nothing signed"
    );
}

#[test]
fn records_of_a_command_killed_before_signing_are_adopted_on_the_record() {
    let env = Env::new();
    env.profile(&[]);
    let store = fs::read(env.home.join("pacsguard.db")).expect("read");
    fs::write(env.path("readme.txt"), b"changed").expect("edit");
    let _ = env.check(&[]);
    // The check's records stay; its checkpoint is gone, as if it was killed in between
    // (and so is the store's copy of that checkpoint, which is kept after it).
    let path = env.home.join("checkpoints.jsonl");
    let text = fs::read_to_string(&path).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    fs::write(&path, format!("{}\n", lines.join("\n"))).expect("write");
    fs::write(env.home.join("pacsguard.db"), store).expect("store as before");
    assert_eq!(env.check(&[]).0, 1);
    let adopted = records(&env, "audit");
    assert!(
        adopted.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("record MAC") && d.contains("signed into"))),
        "{adopted:#?}"
    );
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// The newest checkpoint line deleted (the records left): `check` refuses it against the
// witness, and `audit verify` must not call the same home intact because the witness's
// copy happens to sign every record.
#[test]
fn verify_refuses_checkpoints_cut_back_behind_the_witness() {
    let (env, witness) = witnessed_env();
    fs::write(env.path("readme.txt"), b"changed").expect("edit");
    assert_eq!(env.check(&[]).0, 1);
    let path = env.home.join("checkpoints.jsonl");
    let text = fs::read_to_string(&path).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    fs::write(&path, format!("{}\n", lines.join("\n"))).expect("write");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The refusal names both files that disagree.
    let file = witness_file(&witness);
    assert!(
        stderr(&out).contains(&file.display().to_string())
            && stderr(&out).contains("checkpoints.jsonl"),
        "{}",
        stderr(&out)
    );
    for args in [
        &["audit", "verify"][..],
        &[
            "audit",
            "verify",
            "--witness",
            witness.to_str().expect("utf-8"),
        ][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("newer than the last in"),
            "{}",
            stdout(&out)
        );
    }
}

// Item 7: a well-formed record appended after the last checkpoint without the home's
// MAC is refused by `check`; `audit verify` on the home (which has the key) must call it
// tampering too, not merely "not signed yet" (exit 1).
#[test]
fn verify_names_a_forged_record_after_the_last_checkpoint() {
    let env = Env::new();
    env.profile(&[]);
    let path = env.home.join("audit.log");
    let text = fs::read_to_string(&path).expect("read");
    let mut record: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a record")).expect("json");
    record["seq"] = (record["seq"].as_u64().expect("seq") + 1).into();
    fs::write(&path, format!("{text}{record}\n")).expect("append");
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("without a valid MAC"),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.run(&["check"]).status.code(), Some(2));
}

// Item 10: the acceptances are signed with the baseline; `check` refuses one edited with
// sqlite3, and `audit verify` must not call that home intact.
#[test]
fn verify_refuses_an_acceptance_edited_in_the_store() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"changed").expect("edit");
    let out = env.run(&[
        "accept",
        env.path("readme.txt").to_str().expect("utf-8"),
        "--reason",
        "ticket 1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.run(&["audit", "verify"]).status.code(), Some(0));
    let out = Command::new("sqlite3")
        .arg(env.home.join("pacsguard.db"))
        .arg("UPDATE acceptances SET reason = 'approved by the CISO'")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.run(&["check"]).status.code(), Some(2));
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("signature"), "{}", stdout(&out));
}

// Item 8: the store and the trail each state the other's last known state.
#[test]
fn a_deleted_store_is_tampering_not_a_home_without_a_profile() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_file(env.home.join("pacsguard.db")).expect("rm");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("no profile has been taken yet") && err.contains("generation 1"),
        "{err}"
    );
}

/// How a store is damaged: its name, and the damage done to the file.
type Damage = (&'static str, fn(&Path));

/// A store every command refuses (deleted, emptied, overwritten, a chunk edited) is no
/// dead end: each refusal names what is wrong, the file, and what to do (keep the
/// refused file, put back a backup copy, or start a new home), `audit verify` still
/// reaches its verdict on the trail, and the way named works: the backup put back, the
/// home checks intact again (review r24-scale: "keep the home as evidence" and nothing
/// else; `audit verify` stopped at an unreadable store without a word on the trail).
#[test]
fn a_refused_store_names_the_way_out_and_the_way_works() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let backup = fs::read(&store).expect("the administrator's backup");
    let damages: [Damage; 4] = [
        ("deleted", |p| fs::remove_file(p).expect("rm")),
        ("emptied", |p| fs::write(p, b"").expect("empty")),
        ("overwritten", |p| {
            fs::write(p, vec![0x41u8; 65_536]).expect("overwrite")
        }),
        ("a chunk edited", |p| {
            let db = rusqlite::Connection::open(p).expect("open store");
            db.execute(
                "UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 32) || zeroblob(32) AS BLOB)",
                [],
            )
            .expect("edit");
        }),
    ];
    for (damage, apply) in damages {
        apply(&store);
        let out = env.run(&["check"]);
        assert_refused_in(&out, "What to do", format_args!("check, store {damage}"));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("put back {}", store.display())) && err.contains("audit verify"),
            "store {damage}: {err}"
        );
        // Without a backup, the second way: named after the first (issue 15, r27-store).
        let second = err.find("store reinit --reason").unwrap_or(0);
        assert!(
            second > err.find("put back").unwrap_or(usize::MAX),
            "store {damage}: the way without a backup is not named after `put back`: {err}"
        );
        let out = env.run(&["audit", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "store {damage}: {}",
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("TAMPERED store") && stdout(&out).contains("AUDIT TRAIL"),
            "store {damage}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        // The way out as named: the refused file kept aside, the backup put back.
        let aside = env
            .home
            .join(format!("pacsguard.db.refused-{}", damage.replace(' ', "-")));
        if store.exists() {
            fs::rename(&store, &aside).expect("kept aside");
        }
        fs::write(&store, &backup).expect("backup put back");
        let (code, findings, _) = env.check(&[]);
        assert_eq!(code, 0, "store {damage}, backup put back: {findings:?}");
    }
}

/// The four damages of a store every command refuses, as an intruder or a bad day makes
/// them.
const STORE_DAMAGES: [Damage; 4] = [
    ("deleted", |p| fs::remove_file(p).expect("rm")),
    ("emptied", |p| fs::write(p, b"").expect("empty")),
    ("overwritten", |p| {
        fs::write(p, vec![0x41u8; 65_536]).expect("overwrite")
    }),
    ("a chunk edited", |p| {
        let db = rusqlite::Connection::open(p).expect("open store");
        db.execute(
            "UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 32) || zeroblob(32) AS BLOB)",
            [],
        )
        .expect("edit");
    }),
];

/// The files `store reinit` kept as evidence in `home`.
fn kept_evidence(home: &Path) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = fs::read_dir(home)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".refused-by-store-reinit-"))
        })
        .collect();
    kept.sort();
    kept
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

// Issue 15 (r27-store): a store refused without a backup has a recorded way back.
#[test]
fn store_reinit_starts_a_new_store_on_the_record_and_no_copy_from_before_passes() {
    for (damage, apply) in STORE_DAMAGES {
        let env = Env::new();
        env.profile(&[]);
        let store = env.home.join("pacsguard.db");
        let before_reset = fs::read(&store).expect("a copy from before the reset");
        apply(&store);
        // As the intruder left it: the refusing commands below must not write into it
        // (review r27-store: an emptied file got the schema, a deleted one was created,
        // an altered one got a checkpoint copy).
        let damaged = fs::read(&store).ok();
        for command in [&["check"][..], &["profile", "generations"], &["check"]] {
            assert_refused_in(
                &env.run(command),
                "store reinit --reason",
                format_args!("{damage}: {command:?}"),
            );
        }
        assert_eq!(
            fs::read(&store).ok(),
            damaged,
            "{damage}: the refusal wrote into it"
        );
        let out = env.run(&["store", "reinit", "--reason", "INC-15: no backup", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{damage}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        // The damaged file kept, byte for byte, its digest in the report and on the record.
        let kept = kept_evidence(&env.home);
        let alert = records(&env, "profile")
            .into_iter()
            .find(|r| r["finding"]["kind"] == "store-reset")
            .unwrap_or_else(|| panic!("{damage}: no store-reset alert on the trail"));
        assert_eq!(alert["finding"]["severity"], "alert", "{damage}");
        assert_eq!(alert["reason"], "INC-15: no backup", "{damage}");
        if damaged.is_none() {
            assert!(kept.is_empty(), "{damage}: {kept:?}");
        }
        if let Some(damaged) = &damaged {
            assert_eq!(kept.len(), 1, "{damage}: {kept:?}");
            assert_eq!(&fs::read(&kept[0]).expect("evidence"), damaged, "{damage}");
            let digest = sha256_hex(damaged);
            assert_eq!(report["evidence"][0]["sha256"], digest.as_str(), "{damage}");
            let detail = alert["finding"]["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(&digest), "{damage}: {detail}");
            // What a collector receives (the ATNA message carries the detail only).
            assert!(detail.contains("INC-15: no backup"), "{damage}: {detail}");
        }
        // A fresh store guards nothing until a tree is profiled again: a state to act on,
        // said alike (exit 2, naming `store reinit` and `profile`) by `check`, `accept`,
        // `watch` and `serve`, never "intact", "nothing differs" or "watching" (review
        // r28-store: `check` warned with exit 1 where the others said "no profile has
        // been taken yet").
        let listen = format!("127.0.0.1:{}", std::process::id() % 20_000 + 30_000);
        let commands: [&[&str]; 5] = [
            &["check"],
            &["check", "--fast"],
            &["accept", "--all", "--reason", "r"],
            &["watch"],
            &["serve", "--listen", &listen],
        ];
        for command in commands {
            let out = bounded(&env, command);
            assert_refused_in(
                &out,
                "guards no root",
                format_args!("{damage}: {command:?}"),
            );
            assert!(
                stderr(&out).contains("store reinit") && stderr(&out).contains("profile PATH"),
                "{damage}: {command:?}: {}",
                stderr(&out)
            );
        }
        let out = env.run(&["audit", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{damage}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("store-reset"),
            "{damage}: {}",
            stdout(&out)
        );
        // The copy from before the reset is refused as before it.
        let after_reset = fs::read(&store).expect("the new store");
        fs::write(&store, &before_reset).expect("old copy put back");
        assert_refused_in(
            &env.run(&["check"]),
            "rolled back",
            format_args!("{damage}, old copy"),
        );
        // A store from after the reset passes.
        fs::write(&store, &after_reset).expect("new store put back");
        env.profile(&[]);
        let (code, findings, _) = env.check(&[]);
        assert_eq!(code, 0, "{damage}: {findings:?}");
        fs::write(&store, &before_reset).expect("old copy put back again");
        assert_refused_in(
            &env.run(&["check"]),
            "rolled back",
            format_args!("{damage}, old copy after a profile"),
        );
    }
}

/// A store whose layout or signed generation was edited with sqlite3 is refused by every
/// command naming the way out, and `store reinit` takes it (review r27-store: a table
/// dropped, a column renamed or `user_version` changed was refused without a way out and
/// by `store reinit` too; a generation edited past the trail's was taken for the trail's
/// problem).
#[test]
fn a_store_with_its_schema_or_generation_edited_has_the_way_out_too() {
    let edits = [
        "DROP TABLE baseline",
        "ALTER TABLE roots RENAME COLUMN policy TO p",
        "PRAGMA user_version = 7",
        "UPDATE baseline SET generation = generation + 5",
        // `||` makes text of a blob: a chunk no PacsGuard write leaves (review r28-store:
        // not taken for an altered store, so every command wrote into it and `store
        // reinit` refused it, leaving its new store behind).
        "UPDATE entry_chunks SET data = data || x'00'",
    ];
    for edit in edits {
        let env = Env::new();
        env.profile(&[]);
        let store = env.home.join("pacsguard.db");
        rusqlite::Connection::open(&store)
            .and_then(|db| db.execute_batch(edit))
            .expect("edit");
        let edited = fs::read(&store).expect("read");
        assert_refused_in(
            &env.run(&["check"]),
            "store reinit --reason",
            format_args!("{edit}"),
        );
        assert_eq!(
            fs::read(&store).expect("read"),
            edited,
            "{edit}: the refusal wrote into the store"
        );
        let out = env.run(&["store", "reinit", "--reason", "INC-15"]);
        assert_eq!(out.status.code(), Some(0), "{edit}: {}", stderr(&out));
        let kept = kept_evidence(&env.home);
        assert_eq!(kept.len(), 1, "{edit}: {kept:?}");
        assert!(
            !env.home.join("pacsguard.db.reinit-new").exists(),
            "{edit}: a new store left behind"
        );
        assert_eq!(fs::read(&kept[0]).expect("evidence"), edited, "{edit}");
        assert_refused_in(
            &env.run(&["check"]),
            "guards no root",
            format_args!("{edit}, after"),
        );
    }
}

/// Every file of the store (`pacsguard.db` and what stands beside it), by name, and
/// whatever a judging left in the home.
fn store_files(home: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(home)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("pacsguard.db") || n.starts_with("store-judged")
            })
        })
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap_or_default())
        })
        .collect();
    files.sort();
    files
}

/// Issue 15 (r28-store): a hot journal planted beside an intact store would roll it back
/// to an earlier generation. Every command opened the store read-write first, so SQLite
/// rolled the planted journal into the intact file and deleted it; the command then
/// refused the store it had itself rolled back (or used it), the intruder's journal gone.
/// Now the store is judged as SQLite would leave it on a private copy: refused by every
/// command, the store and the journal byte for byte as planted, and moving the journal
/// aside (as the refusal says) gives back the intact store.
#[test]
fn a_journal_planted_beside_an_intact_store_is_judged_on_a_copy_never_rolled_into_it() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let generation_1 = fs::read(&store).expect("read");
    fs::write(
        env.path("readme.txt"),
        b"a reviewed edit
",
    )
    .expect("edit");
    let out = env.run(&["accept", "--all", "--reason", "reviewed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = env.home.join("pacsguard.db-journal");
    fs::write(
        &journal,
        pacsguard_testkit::sqlite_journal_rolling_back_to(&generation_1),
    )
    .expect("plant");
    let planted = store_files(&env.home);
    let port = (std::process::id() % 20_000 + 30_000).to_string();
    let listen = format!("127.0.0.1:{port}");
    let commands: [&[&str]; 8] = [
        &["check"],
        &["check", "--fast"],
        &["accept", "--all", "--reason", "r"],
        &["profile", env.tree_str()],
        &["audit", "verify"],
        &["watch"],
        &["serve", "--listen", &listen],
        &["store", "reinit", "--reason", "r"],
    ];
    for command in commands {
        let out = bounded(&env, command);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            (stdout(&out) + &stderr(&out)).contains("pacsguard.db-journal"),
            "{command:?} does not name the journal: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            store_files(&env.home) == planted,
            "{command:?} changed the store or what stands beside it"
        );
    }
    // The way out the refusal names: the journal moved aside, the intact store is used.
    assert_refused(&env.run(&["check"]), ".refused`");
    fs::rename(&journal, env.home.join("pacsguard.db-journal.refused")).expect("mv");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
}

/// Issue 15 (r28-store2): the judgement of what stands beside the store ran only when a
/// command opened it. A running guard keeps its connection, and SQLite looks for a hot
/// journal at each new transaction: a journal planted while `watch` ran was rolled into
/// the intact store (generation 2 back to generation 1) by the guard's next checkpoint
/// copy and deleted, unchecked and unrecorded. Now a companion the guard did not make is
/// an alert on the trail, and no write of the guard touches the store or the journal.
#[test]
fn a_journal_planted_while_the_guard_runs_is_an_alert_never_rolled_into_the_store() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let generation_1 = fs::read(&store).expect("read");
    fs::write(env.path("readme.txt"), b"a reviewed edit\n").expect("edit");
    let out = env.run(&["accept", "--all", "--reason", "reviewed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = watcher::Watcher::start(&env, &[]);
    let journal = env.home.join("pacsguard.db-journal");
    fs::write(
        &journal,
        pacsguard_testkit::sqlite_journal_rolling_back_to(&generation_1),
    )
    .expect("plant");
    let planted = store_files(&env.home);
    // The guard records a change, and signs it (its checkpoint is copied into the store).
    fs::write(env.path("added.txt"), b"not profiled\n").expect("add");
    let alerted = guard.wait(Duration::from_secs(30), |findings, _| {
        findings
            .iter()
            .any(|f| f["kind"] == "store-companion-planted")
            && findings
                .iter()
                .any(|f| f["path"].as_str().is_some_and(|p| p.ends_with("added.txt")))
    });
    // Checkpoints (one a second) have been signed since; none may reach the store.
    std::thread::sleep(Duration::from_secs(3));
    let (_, findings, err) = guard.stop();
    assert!(
        alerted,
        "no store-companion-planted alert: {findings:?}\n{err}"
    );
    assert!(
        store_files(&env.home) == planted,
        "the running guard changed the store or the journal planted beside it: {err}"
    );
    let on_trail = records(&env, "watch").iter().any(|r| {
        r["finding"]["kind"] == "store-companion-planted"
            && r["finding"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("pacsguard.db-journal"))
    });
    assert!(on_trail, "the alert naming the journal is not on the trail");
    // The way out: the journal moved aside, the intact store (generation 2) is used.
    fs::rename(&journal, env.home.join("pacsguard.db-journal.refused")).expect("mv");
    let out = env.run(&["check"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Issue 15 (review r29-store2): a write of the guard that waits for another process's
/// lock on the store, its wait ended because a journal no live writer made stands beside
/// the store once the lock is let go, is refused naming the journal and its SHA-256
/// (python holds SQLite's RESERVED byte with `fcntl.lockf`, plants a journal, and lets go
/// while the guard's write of a relayed `accept` waits). It said "database is locked
/// ... STORE_BUSY_WAIT", blaming a lock held too long, the journal unnamed.
#[test]
fn a_busy_wait_ended_by_a_planted_journal_is_refused_naming_the_journal_and_its_digest() {
    use std::io::BufRead as _;
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let generation_1 = fs::read(&store).expect("read");
    let guard = watcher::Watcher::start(&env, &[]);
    fs::write(env.path("readme.txt"), b"a reviewed edit\n").expect("edit");
    let journal = env.home.join("pacsguard.db-journal");
    let waiting = env.dir.path().join("journal-to-plant");
    let planted = pacsguard_testkit::sqlite_journal_rolling_back_to(&generation_1);
    fs::write(&waiting, &planted).expect("journal to plant");
    // The RESERVED byte (PENDING_BYTE + 1) held first, so the guard's gate takes the
    // journal for a live writer's and its write waits; let go while it waits. Held 6 s,
    // well inside STORE_BUSY_WAIT (10 s): with 2 s, a loaded CI machine (load 11) had not
    // brought the relayed `accept` to its write before the lock was let go, and the gate
    // refused the journal by path and length (its other path, no wait to end).
    let planter = "import fcntl, os, sys, time\n\
fd = os.open(sys.argv[1], os.O_RDWR)\n\
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0x40000001)\n\
os.rename(sys.argv[2], sys.argv[3])\n\
print('held', flush=True)\n\
time.sleep(6)\n\
fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0x40000001)\n";
    let mut python = Command::new("python3")
        .args(["-c", planter])
        .arg(&store)
        .arg(&waiting)
        .arg(&journal)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut held = String::new();
    std::io::BufReader::new(python.stdout.take().expect("stdout"))
        .read_line(&mut held)
        .expect("python's line");
    assert_eq!(held.trim(), "held");
    let out = env.run(&["accept", "--all", "--reason", "while planted"]);
    assert!(python.wait().expect("python ends").success());
    let (_, _, err) = guard.stop();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}{}", stdout(&out));
    assert!(
        said.contains("pacsguard.db-journal") && said.contains(&sha256_hex(&planted)),
        "the refusal does not name the journal and its digest: {said}"
    );
    assert!(!said.contains("STORE_BUSY_WAIT"), "{said}");
    assert_eq!(
        fs::read(&journal).expect("the journal as planted"),
        planted,
        "{err}"
    );
}

/// Issue 15 (r29-store): the journal of another process's transaction is live however
/// long it stands (the rule of r28-store2 took a hot journal standing 2 s for planted and
/// refused the guard's writes with a false `store-companion-planted` alert). sqlite3's
/// transaction, larger than its page cache, spills: its journal is hot (its header
/// written) and stands beside the store, its writer holding the lock, while `watch` records
/// a change and tries its checkpoints; nothing is raised, and the guard's writes land once
/// sqlite3 is done.
#[test]
fn a_long_transaction_of_another_process_beside_the_guard_raises_nothing_and_loses_no_write() {
    use std::io::Write as _;
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let trail_mark = || {
        let out = Command::new("sqlite3")
            .arg(&store)
            .arg("SELECT note FROM trail_mark")
            .output()
            .expect("sqlite3 runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let guard = watcher::Watcher::start(&env, &[]);
    let mark_before = trail_mark();
    let mut sqlite3 = Command::new("sqlite3")
        .arg(&store)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 runs");
    let mut input = sqlite3.stdin.take().expect("stdin");
    // A transaction larger than a 4-page cache (its journal synced with its header, pages
    // spilled into the file), rolled back at its end: the store means what it meant. It
    // waits for the guard's own writes as SQLite does.
    writeln!(
        input,
        ".timeout 10000\nPRAGMA cache_size = 4;\nBEGIN IMMEDIATE;\nCREATE TABLE scratch (x);\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
         INSERT INTO scratch SELECT zeroblob(4000) FROM n;"
    )
    .expect("begin");
    input.flush().expect("flush");
    let journal = env.home.join("pacsguard.db-journal");
    let began = Instant::now();
    let hot = || fs::read(&journal).is_ok_and(|j| j.first().is_some_and(|&b| b != 0));
    while !hot() {
        if began.elapsed() > Duration::from_secs(10) {
            sqlite3.kill().expect("kill sqlite3");
            let out = sqlite3.wait_with_output().expect("sqlite3 ends");
            panic!(
                "no hot journal made: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::write(env.path("added.txt"), b"not profiled\n").expect("add");
    let seen = guard.wait(Duration::from_secs(30), |findings, _| {
        findings
            .iter()
            .any(|f| f["path"].as_str().is_some_and(|p| p.ends_with("added.txt")))
    });
    // The guard's checkpoints (one a second once it recorded the change) look beside the
    // store for longer than the old rule's 2 s, within the store's busy wait (10 s).
    std::thread::sleep(Duration::from_secs(3));
    assert!(hot(), "sqlite3's transaction ended early");
    writeln!(input, "ROLLBACK;").expect("rollback");
    drop(input);
    let done = sqlite3.wait_with_output().expect("sqlite3 ends");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // A checkpoint once sqlite3 is done, written into the store by the running guard
    // (waited for, not a fixed 2 s).
    let landed = Instant::now() + Duration::from_secs(30);
    while trail_mark() == mark_before && Instant::now() < landed {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, findings, err) = guard.stop();
    assert!(seen, "the change was not recorded: {findings:?}\n{err}");
    assert!(
        !findings
            .iter()
            .any(|f| f["kind"] == "store-companion-planted"),
        "a live writer's journal was called planted: {findings:?}"
    );
    assert!(!err.contains("stands beside it"), "{err}");
    let on_trail = records(&env, "watch").iter().any(|r| {
        r["finding"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("added.txt"))
    });
    assert!(on_trail, "the change is not on the trail: {err}");
    assert_ne!(
        trail_mark(),
        mark_before,
        "the guard's checkpoint never reached the store: {err}"
    );
    let out = env.run(&["check"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The other side: a journal left by sqlite3 killed inside its transaction, its changes
/// already spilled into the file, is what SQLite must roll back (the file alone is half
/// written). `store reinit` judged the file alone and threw that profile away (exit 0)
/// while every command used it; `audit verify` rolled it back in place. Now both judge it
/// as SQLite leaves it on a copy (untouched), and the first command that opens the store
/// for writing rolls it back and puts the journal's digest on the record.
#[test]
fn a_journal_of_a_killed_writer_is_rolled_back_on_the_record_and_never_reinitialised() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let signed = fs::read(&store).expect("read");
    let journal = env.home.join("pacsguard.db-journal");
    let mut sqlite = Command::new("sqlite3")
        .arg(&store)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sqlite3 runs");
    let mut input = sqlite.stdin.take().expect("stdin");
    // One page of cache: the changes are written into the file before any commit.
    use std::io::Write as _;
    input
        .write_all(
            b"PRAGMA cache_size = 1;\nBEGIN IMMEDIATE;\nDELETE FROM entry_chunks;\n\
              UPDATE baseline SET generation = 99;\nUPDATE roots SET policy = 'growing';\n",
        )
        .expect("write");
    input.flush().expect("flush");
    let until = Instant::now() + Duration::from_secs(30);
    while fs::read(&store).expect("read") == signed {
        assert!(Instant::now() < until, "sqlite3 never wrote into the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    sqlite.kill().expect("SIGKILL");
    sqlite.wait().expect("reaped");
    drop(input);
    assert!(
        fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "no journal"
    );
    let left = store_files(&env.home);
    let out = env.run(&["store", "reinit", "--reason", "r"]);
    assert_refused(&out, "verifies against the audit trail");
    assert!(
        store_files(&env.home) == left,
        "store reinit changed the store"
    );
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        store_files(&env.home) == left,
        "audit verify changed the store"
    );
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
    assert!(!journal.exists(), "the journal was not rolled back");
    let journal_digest = sha256_hex(
        &left
            .iter()
            .find(|(n, _)| n == "pacsguard.db-journal")
            .expect("journal")
            .1,
    );
    let recorded = records(&env, "profile").into_iter().any(|r| {
        r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SQLite acts on") && d.contains(&journal_digest))
    });
    assert!(recorded, "the rollback is not on the record");
}

/// A journal SQLite does not roll back (its header zeroed) is still deleted by the first
/// write, its name reused: whatever it held is gone then, so it is judged and put on the
/// record with its digest like a hot one (review r28-store: it vanished unrecorded).
#[test]
fn a_journal_that_is_not_hot_is_on_the_record_before_a_write_deletes_it() {
    let env = Env::new();
    env.profile(&[]);
    let journal = env.home.join("pacsguard.db-journal");
    let mut stale = vec![0u8; 512];
    stale.extend_from_slice(b"bytes someone left after a zeroed header");
    fs::write(&journal, &stale).expect("plant");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
    assert!(!journal.exists(), "the journal was left");
    let digest = sha256_hex(&stale);
    let recorded = records(&env, "profile").into_iter().any(|r| {
        r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SQLite acts on") && d.contains(&digest))
    });
    assert!(recorded, "the journal's digest is not on the record");
}

#[test]
fn store_reinit_refuses_an_intact_store_and_a_tampered_trail() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let intact = fs::read(&store).expect("read");
    let out = env.run(&["store", "reinit", "--reason", "clean slate please"]);
    assert_refused(&out, "verifies against the audit trail");
    assert_eq!(
        fs::read(&store).expect("read"),
        intact,
        "the store was touched"
    );
    assert!(kept_evidence(&env.home).is_empty());
    assert_eq!(env.check(&[]).0, 0);
    // A reason past MAX_REASON_BYTES: refused before anything.
    fs::remove_file(&store).expect("rm");
    let long = "x".repeat(4097);
    assert_refused(
        &env.run(&["store", "reinit", "--reason", &long]),
        "--reason is longer",
    );
    // A trail edited: no reason to start a new store; the store is left as it is.
    let log = env.home.join("audit.log");
    let text = fs::read_to_string(&log).expect("log");
    fs::write(&log, text.replacen("\"profile\"", "\"prof1le\"", 1)).expect("edit");
    let out = env.run(&["store", "reinit", "--reason", "INC-15"]);
    assert_refused(&out, "audit verify");
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    assert!(kept_evidence(&env.home).is_empty());
}

/// A store replaced by a link (to a file outside the home) is neither followed nor moved:
/// refused by name, with nothing left behind (review r27-store: the new store's
/// temporary file was left in the home).
#[test]
fn store_reinit_leaves_a_store_replaced_by_a_link_as_it_is() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    let outside = env.dir.path().join("outside");
    fs::write(&outside, b"not a store").expect("write");
    fs::remove_file(&store).expect("rm");
    std::os::unix::fs::symlink(&outside, &store).expect("link");
    let before = fs::read_dir(&env.home).expect("list").count();
    let out = env.run(&["store", "reinit", "--reason", "INC-15"]);
    assert_refused(&out, "not a regular file");
    assert_eq!(fs::read(&outside).expect("read"), b"not a store");
    assert!(
        fs::symlink_metadata(&store)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    let after = fs::read_dir(&env.home).expect("list").count();
    assert_eq!(before, after, "something was left in the home");
}

#[test]
fn a_second_store_reinit_keeps_the_first_ones_evidence() {
    let env = Env::new();
    env.profile(&[]);
    let store = env.home.join("pacsguard.db");
    fs::write(&store, vec![0x41u8; 4096]).expect("overwrite");
    let out = env.run(&["store", "reinit", "--reason", "first"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env.profile(&[]);
    fs::write(&store, vec![0x42u8; 4096]).expect("overwrite again");
    let out = env.run(&["store", "reinit", "--reason", "second"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept: Vec<Vec<u8>> = kept_evidence(&env.home)
        .iter()
        .map(|p| fs::read(p).expect("evidence"))
        .collect();
    assert!(
        kept.contains(&vec![0x41u8; 4096]) && kept.contains(&vec![0x42u8; 4096]),
        "{:?}",
        kept_evidence(&env.home)
    );
}

/// A kill at each step of `store reinit` (the debug build's fault hook) leaves either the
/// old refusal or the finished reinit, never a home that passes with nothing on the record.
#[test]
fn a_store_reinit_killed_at_any_step_leaves_the_refusal_or_the_finished_reinit() {
    for (step, finished) in [
        ("recorded", false),
        ("signed", false),
        ("aside", false),
        ("renamed", true),
    ] {
        let env = Env::new();
        env.profile(&[]);
        let store = env.home.join("pacsguard.db");
        let before_reset = fs::read(&store).expect("read");
        fs::write(&store, vec![0x41u8; 65_536]).expect("overwrite");
        let out = pacsguard()
            .arg("--home")
            .arg(&env.home)
            .args(["store", "reinit", "--reason", "INC-15"])
            .env("PACSGUARD_TEST_STORE_REINIT_STOP_AT", step)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(137), "{step}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("PACSGUARD_TEST_STORE_REINIT_STOP_AT"),
            "{step}"
        );
        let out = env.run(&["check"]);
        if finished {
            assert_refused_in(&out, "guards no root", format_args!("killed after {step}"));
        } else {
            assert_refused_in(
                &out,
                "store reinit --reason",
                format_args!("killed after {step}"),
            );
            // The way out still works, and the first attempt's evidence is kept.
            let out = env.run(&["store", "reinit", "--reason", "INC-15, again"]);
            assert_eq!(out.status.code(), Some(0), "{step}: {}", stderr(&out));
            assert_refused_in(
                &env.run(&["check"]),
                "guards no root",
                format_args!("{step}, again"),
            );
        }
        assert!(
            kept_evidence(&env.home)
                .iter()
                .any(|p| fs::read(p).expect("evidence") == vec![0x41u8; 65_536]),
            "{step}: the refused store is lost"
        );
        let out = env.run(&["audit", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{step}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        fs::write(&store, &before_reset).expect("old copy put back");
        assert_refused_in(
            &env.run(&["check"]),
            "rolled back",
            format_args!("{step}: old copy"),
        );
    }
}

#[test]
fn an_older_store_put_back_is_caught_against_the_trail() {
    let env = Env::new();
    env.profile(&[]);
    let old = fs::read(env.home.join("pacsguard.db")).expect("read");
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    let out = env.run(&["accept", "--all", "--reason", "patch"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fs::write(env.home.join("pacsguard.db"), old).expect("replay generation 1");
    let out = env.run(&["check"]);
    assert_refused(&out, "rolled back");
}

#[test]
fn an_emptied_trail_does_not_verify_while_the_store_holds_a_baseline() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.home.join("audit.log"), b"").expect("empty");
    fs::remove_file(env.home.join("checkpoints.jsonl")).expect("rm");
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("generation 1"), "{}", stdout(&out));
    // A trail gone while the key remains is a reset: tampering (exit 2, the alert shown),
    // and nothing runs.
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("trail-reset") && stderr(&out).contains("generation 1"),
        "{}",
        stderr(&out)
    );
    // The generation is the store's row as it stands: nothing is left to vouch for it
    // (review r25-store: it was said to be "announced and signed").
    assert!(stderr(&out).contains("not verified"), "{}", stderr(&out));
}

// Item 9: the witness file is named by the log's identity.
#[test]
fn two_homes_of_one_host_share_a_witness_directory_without_locking_each_other_out() {
    let (first, witness) = witnessed_env();
    let second = Env::new();
    fs::write(
        second.home.join("config.toml"),
        format!("[audit]\nwitness = \"{}\"\n", witness.display()),
    )
    .expect("config");
    let out = second.run(&["audit", "witness", "init", "--reason", "second home"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    second.profile(&[]);
    assert_eq!(first.check(&[]).0, 0);
    assert_eq!(second.check(&[]).0, 0);
    let names: Vec<String> = fs::read_dir(&witness)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let origin = fs::read_to_string(first.home.join("trail.pub")).expect("key");
    assert!(origin.starts_with("pacsguard.local/"), "{origin}");
}

#[test]
fn a_witness_written_under_the_old_name_is_still_read() {
    let (env, witness) = witnessed_env();
    let file = witness_file(&witness);
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // `<origin>.<key id>.checkpoint` → `<origin>.checkpoint`, as before the key id.
    let (stem, _) = name
        .trim_end_matches(".checkpoint")
        .rsplit_once('.')
        .expect("key id");
    let legacy = witness.join(format!("{stem}.checkpoint"));
    fs::rename(&file, &legacy).expect("rename");
    assert_eq!(env.check(&[]).0, 0);
    assert!(file.exists(), "the next checkpoint goes under the new name");
}

// Item 10: settings outside the baseline are signed into the trail.
#[test]
fn an_edited_watch_or_audit_setting_is_put_on_the_record() {
    let env = Env::new();
    env.profile(&[]);
    let config = env.home.join("config.toml");
    let mut text = fs::read_to_string(&config).expect("read");
    text.push_str("\n[watch]\nquiet_ms = 750\n");
    fs::write(&config, text).expect("edit");
    let _ = env.check(&[]);
    let noted = records(&env, "audit");
    assert!(
        noted
            .iter()
            .any(|r| r["finding"]["kind"] == "config-differs"
                && r["finding"]["severity"] == "warning"),
        "{noted:#?}"
    );
    // Once: the next checkpoint signs the new settings.
    let _ = env.check(&[]);
    assert_eq!(records(&env, "audit").len(), noted.len());
}

// Item 11: nothing in the home can hang a command or make it read without bound.
#[test]
fn fifos_and_links_to_devices_in_the_home_are_refused_promptly() {
    for name in [
        "config.toml",
        "trail.pub",
        "checkpoints.jsonl",
        "audit.log",
        "signing.key",
    ] {
        let env = Env::new();
        env.profile(&[]);
        let path = env.home.join(name);
        fs::remove_file(&path).expect("rm");
        let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success());
        let out = bounded(&env, &["check"]);
        assert_refused_in(&out, name, format_args!("{name}"));
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
        // `audit verify` needs no signing key; everything else it reads.
        let args: &[&str] = if name == "signing.key" {
            &["check"]
        } else {
            &["audit", "verify"]
        };
        let out = bounded(&env, args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
    }
}

#[test]
fn an_exported_trail_with_a_fifo_and_a_hashlist_of_dev_zero_are_refused_promptly() {
    let env = Env::new();
    env.profile(&[]);
    let out_dir = env.dir.path().join("export");
    let out = env.run(&["audit", "export", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fs::remove_file(out_dir.join("audit.log")).expect("rm");
    let made = Command::new("mkfifo")
        .arg(out_dir.join("audit.log"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let out = bounded(
        &env,
        &["audit", "verify", "--dir", out_dir.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = bounded(
        &env,
        &["audit", "show", "--dir", out_dir.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = bounded(&env, &["scan", "--hashlist", "/dev/zero", env.tree_str()]);
    assert_refused(&out, "/dev/zero");
}

// Item 12: export creates its files itself, inside the directory it checked.
#[test]
fn export_creates_no_parent_chain_and_never_writes_through_a_link() {
    let env = Env::new();
    env.profile(&[]);
    let deep = env.dir.path().join("a/b/c");
    let out = env.run(&["audit", "export", "--out", deep.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!env.dir.path().join("a").exists());
    // An output "directory" that is a link to somewhere else is refused.
    let elsewhere = env.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let link = env.dir.path().join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).expect("symlink");
    let out = env.run(&["audit", "export", "--out", link.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&elsewhere).expect("list").count(), 0);
    for format in ["jsonl", "dicom-xml"] {
        let out_dir = env.dir.path().join(format!("out-{format}"));
        let out = env.run(&[
            "audit",
            "export",
            "--format",
            format,
            "--out",
            out_dir.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mode = fs::metadata(&out_dir).expect("stat").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the export is private: {mode:o}");
    }
}

// The smaller ones.
#[test]
fn audit_commands_refuse_a_world_writable_home_like_every_other() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o777)).expect("chmod");
    let out_dir = env.dir.path().join("export");
    for args in [
        &["audit", "verify"][..],
        &["audit", "show"][..],
        &["audit", "export", "--out", out_dir.to_str().expect("utf-8")][..],
    ] {
        let out = env.run(args);
        assert_refused_in(&out, "writable", format_args!("{args:?}"));
    }
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o700)).expect("chmod");
}

#[test]
fn an_unknown_action_is_an_error_naming_the_valid_ones() {
    let env = Env::new();
    let out = env.run(&["audit", "show", "--action", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bogus") && stderr(&out).contains("init, profile, check"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_callers_get_errors_as_json() {
    let env = Env::new();
    let out = env.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("JSON on stdout: {}", stdout(&out)));
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("no profile")),
        "{doc}"
    );
}

#[test]
fn a_lock_holder_with_a_long_name_is_still_named() {
    let env = Env::new();
    let lock = env.home.join("lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock runs");
    let started = Instant::now();
    while Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .expect("flock runs")
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "flock never held the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 11 + 2 × 300 bytes: the 512-byte read ends inside a two-byte character.
    fs::write(&lock, format!("pid 4242: x{}", "é".repeat(300))).expect("write");
    let out = env.run(&["check"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert!(stderr(&out).contains("pid 4242"), "{}", stderr(&out));
}

#[test]
fn leftovers_of_an_interrupted_quarantine_are_removed_on_the_record_and_explained() {
    let env = Env::new();
    let vault = env.home.join("quarantine");
    let sha = "ab".repeat(32);
    let entry = vault.join(&sha);
    fs::create_dir_all(&entry).expect("mkdir");
    let tmp = entry.join(".content.0011223344556677.pacsguard-tmp");
    fs::write(&tmp, b"half a cop").expect("write");
    // `quarantine show` explains an entry without its copy instead of a bare I/O error.
    let out = env.run(&["quarantine", "show", &sha[..12]]);
    assert_refused(&out, "interrupted");
    let out = env.run(&["scan", env.tree_str()]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!tmp.exists() && !entry.exists());
    let noted = records(&env, "quarantine");
    assert!(
        noted.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("interrupted"))),
        "{noted:#?}"
    );
}

#[test]
fn an_append_only_log_that_needs_a_repair_says_what_failed_once() {
    let env = Env::new();
    let path = env.home.join("audit.log");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(b"{\"seq\":1,\"half a rec");
    fs::write(&path, &bytes).expect("torn tail");
    let set = |flag: &str| {
        Command::new("chattr")
            .arg(flag)
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !set("+a") {
        eprintln!("chattr +a is not supported here; skipped");
        return;
    }
    let out = env.run(&["scan", env.tree_str()]);
    assert!(set("-a"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cut short") && err.contains("chattr +a"),
        "{err}"
    );
    assert_eq!(
        err.matches("Operation not permitted").count(),
        1,
        "the cause once: {err}"
    );
}

// Review finding: the forwarding cursor was written through a symlink planted at its
// temporary name, so root truncated and rewrote any file the intruder named.
#[test]
fn audit_forward_never_writes_through_a_link_planted_in_the_home() {
    let env = Env::new();
    env.profile(&[]);
    let victim = env.dir.path().join("victim.txt");
    fs::write(&victim, b"PRECIOUS\n").expect("victim");
    fs::create_dir(env.home.join("delivery")).expect("delivery dir");
    std::os::unix::fs::symlink(&victim, env.home.join("delivery/syslog.cursor.tmp"))
        .expect("plant link");
    // A real TCP collector on loopback that reads until the sender closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let collector = std::thread::spawn(move || {
        use std::io::Read as _;
        let (mut conn, _) = listener.accept().expect("accept");
        let mut all = Vec::new();
        let _ = conn.read_to_end(&mut all);
        all.len()
    });
    let to = format!("tcp://127.0.0.1:{port}");
    let out = bounded(&env, &["audit", "forward", "--to", &to]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        collector.join().expect("collector") > 0,
        "records were sent"
    );
    assert_eq!(
        fs::read(&victim).expect("victim"),
        b"PRECIOUS\n",
        "the file the link named is untouched"
    );
    let cursor = fs::symlink_metadata(env.home.join("delivery/syslog.cursor")).expect("cursor");
    assert!(cursor.file_type().is_file(), "the cursor is a regular file");
}

// Review finding: home files that `watch` and `maintenance` read (the maintenance windows,
// the running marker, the scrub cursor) were opened as they came: a FIFO hung them.
#[test]
fn a_fifo_in_place_of_the_maintenance_windows_is_refused_not_waited_on() {
    let env = Env::new();
    env.profile(&[]);
    let path = env.home.join("maintenance.json");
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(made.success());
    let out = bounded(&env, &["maintenance", "list"]);
    assert_refused(&out, "maintenance.json");
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

// An init killed after the trail's first checkpoint but before it wrote the key (the key
// goes last) left a home whose every command said "not initialized: run init" and whose
// init refused ("a trail but no signing key"): a home that refused until a person moved
// files. The trail holds only the init's own record, so init sets it aside and starts over;
// a trail that holds more is still evidence and still refused.
#[test]
fn an_init_killed_before_it_wrote_the_key_can_be_run_again() {
    let env = Env::new();
    // What the kill leaves: everything but the key.
    fs::remove_file(env.home.join("signing.key")).expect("the key never written");
    let out = env.run(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let aside: Vec<String> = fs::read_dir(&env.home)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".interrupted-init-"))
        .collect();
    assert_eq!(aside.len(), 3, "kept, not deleted: {aside:?}");
    env.profile(&[]);
    assert_eq!(env.check(&[]).0, 0);
    assert_eq!(env.run(&["audit", "verify"]).status.code(), Some(0));

    // A trail that recorded more than the init is evidence: kept, and refused.
    fs::remove_file(env.home.join("signing.key")).expect("key deleted");
    let out = env.run(&["init"]);
    assert_refused(&out, "no signing key");
    assert!(env.home.join("audit.log").exists());
}

// MAX_INTERRUPTED_INIT_LOG_BYTES (64 KiB): a keyless audit.log of init records beyond it is
// not what an interrupted init leaves: kept and refused, never set aside.
#[test]
fn a_keyless_trail_beyond_the_interrupted_init_limit_is_kept() {
    let env = Env::new();
    fs::remove_file(env.home.join("signing.key")).expect("the key never written");
    let path = env.home.join("audit.log");
    let line = fs::read_to_string(&path).expect("read");
    let line = line.lines().next().expect("the init record").to_string();
    let mut text = String::new();
    while text.len() <= 64 << 10 {
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(&path, &text).expect("write");
    let out = env.run(&["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&path).expect("kept"), text);
    // At the limit it is one of ours.
    let mut text = String::new();
    while text.len() + line.len() < 64 << 10 {
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(&path, &text).expect("write");
    let out = env.run(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `audit verify` beside `profile`s of the same home (verify only reads, and takes no
/// lock): it read the trail, a profile then announced and committed a generation, and
/// the store read after it was newer than the trail as read, or a chunk rewritten
/// between two reads: TAMPERED (exit 2) on an untouched home (review r25-store: 3 of 40
/// runs beside 6 profiles of 20,000 files taking in a change). It verifies again when the home changed
/// under it (`MAX_VERIFY_ATTEMPTS`).
#[test]
fn audit_verify_beside_profiles_never_calls_an_untouched_home_tampered() {
    let env = bulk_home();
    let (profiling, profiles) = profiles_beside(&env);
    let mut verified = 0;
    while profiling.load(std::sync::atomic::Ordering::SeqCst) {
        let out = env.run(&["audit", "verify"]);
        assert_ne!(
            out.status.code(),
            Some(2),
            "an untouched home called tampered: {}{}",
            stdout(&out),
            stderr(&out)
        );
        verified += 1;
    }
    profiles.join().expect("profiles");
    assert!(verified > 0);
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// `serve`'s trail follower (`AuditFollower::step`) beside profiles of the same home: the
/// store it cross-checks may be committed between its read of the trail and its read of the
/// store, which read as a rolled-back trail on an untouched home. It follows again, as
/// `audit verify` verifies again, when the home changed under it.
#[test]
fn the_trail_follower_beside_profiles_never_calls_an_untouched_home_tampered() {
    let env = bulk_home();
    let home = pacsguard_engine::Home::new(env.home.clone());
    let (follower, report) =
        pacsguard_engine::audit_follow(&home, Duration::from_secs(60)).expect("follow");
    assert!(report.report.is_intact(), "{:?}", report.report.problems);
    let mut follower = follower.expect("a trail to follow");
    let (profiling, profiles) = profiles_beside(&env);
    let mut steps = 0;
    while profiling.load(std::sync::atomic::Ordering::SeqCst) {
        let followed = follower.step().expect("step");
        assert!(
            followed.report.is_intact(),
            "an untouched home called tampered after {steps} steps: {:?}",
            followed.report.problems
        );
        steps += 1;
    }
    profiles.join().expect("profiles");
    assert!(steps > 0);
    let followed = follower.step().expect("step");
    assert!(
        followed.report.is_intact(),
        "{:?}",
        followed.report.problems
    );
}

/// A home profiled over 20,000 small files: a re-profile long enough to land while a
/// verification of the home runs.
fn bulk_home() -> Env {
    let env = Env::new();
    for i in 0..20_000 {
        let dir = env.tree.join(format!("bulk/{:02}", i / 500));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("{i:05}.dcm")), format!("DICM {i}")).expect("write");
    }
    env.profile(&[]);
    env
}

/// Six `profile` runs of `env`'s home in a thread; the flag turns false when they are done.
fn profiles_beside(
    env: &Env,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let profiling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (home, tree) = (env.home.clone(), env.tree.clone());
    let flag = std::sync::Arc::clone(&profiling);
    let profiles = std::thread::spawn(move || {
        for round in 0..6u32 {
            // Something to take in each time: a longer save, as a real re-profile.
            let mode = if round % 2 == 0 { 0o600 } else { 0o644 };
            fs::set_permissions(tree.join("readme.txt"), fs::Permissions::from_mode(mode))
                .expect("chmod");
            let out = pacsguard()
                .arg("--home")
                .arg(&home)
                .arg("profile")
                .arg(&tree)
                .output()
                .expect("profile runs");
            assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        }
        flag.store(false, std::sync::atomic::Ordering::SeqCst);
    });
    (profiling, profiles)
}
