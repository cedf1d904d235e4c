//! The baseline as evidence, acceptance, and behaviour under bad conditions.

mod common;

use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn init_makes_a_private_key_and_refuses_to_run_twice() {
    let env = Env::new();
    let mode = fs::metadata(env.home.join("signing.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_before = fs::read(env.home.join("signing.key")).expect("key");
    let out = env.run(&["init"]);
    assert_refused(&out, "already initialized");
    assert_eq!(
        fs::read(env.home.join("signing.key")).expect("key"),
        key_before
    );
}

#[test]
fn an_edited_baseline_row_ends_with_exit_2_and_says_so() {
    let env = Env::new();
    env.profile(&[]);
    let db = rusqlite::Connection::open(env.home.join("pacsguard.db")).expect("open store");
    // The attacker records their implant's hash as the expected one: the last 32 bytes of
    // the chunk are the digest of the last entry, the file `study/series/2.dcm`.
    db.execute(
        "UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 32) || zeroblob(32) AS BLOB)",
        [],
    )
    .expect("edit");
    drop(db);
    for args in [
        &["check"][..],
        &["check", "--fast"],
        &["profile", env.tree_str()],
        &["accept", "--all", "--reason", "x"],
    ] {
        let out = env.run(args);
        assert_refused_in(&out, "signature does not verify", format_args!("{args:?}"));
    }
}

/// Another writer of the store file (the console's tables share it, a watcher keeps its
/// newest checkpoint in it, sqlite3 by hand) holding its write lock for a moment:
/// `accept` waits for the lock instead of failing "database is locked" at once (review
/// r24-scale: its deferred transaction read, then could not write, SQLite returning busy
/// without its busy timeout).
#[test]
fn accept_waits_for_another_writer_of_the_store() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let db = rusqlite::Connection::open(env.home.join("pacsguard.db")).expect("open store");
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_500));
        db.execute_batch("COMMIT").expect("commit");
    });
    let out = env.run(&["accept", "--all", "--reason", "reviewed chmod"]);
    writer.join().expect("writer");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
}

/// A writer that keeps the lock past `STORE_BUSY_WAIT`: `accept` stops, says who may hold
/// it and what to do, and nothing was taken in.
#[test]
fn accept_beside_a_writer_that_keeps_the_lock_says_so_and_takes_nothing_in() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let db = rusqlite::Connection::open(env.home.join("pacsguard.db")).expect("open store");
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let started = Instant::now();
    let out = env.run(&["accept", "--all", "--reason", "reviewed chmod"]);
    let waited = started.elapsed();
    db.execute_batch("COMMIT").expect("commit");
    assert_refused(&out, "STORE_BUSY_WAIT");
    assert!(
        stderr(&out).contains("nothing was changed") && stderr(&out).contains("fuser"),
        "{}",
        stderr(&out)
    );
    assert!(
        waited >= pacsguard_store::STORE_BUSY_WAIT,
        "gave up after {waited:?}"
    );
    // Once refused, the command does not wait the whole time again for its failure's
    // checkpoint copy (22.6 s before, the wait twice).
    assert!(
        waited
            < pacsguard_store::STORE_BUSY_WAIT
                + pacsguard_store::TRAIL_MARK_WAIT
                + Duration::from_secs(5),
        "held up {waited:?}"
    );
    let (code, _, _) = env.check(&[]);
    assert_eq!(code, 1, "the change is still not accepted");
}

/// The note of the trail's newest checkpoint, as `checkpoints.jsonl` ends.
fn newest_checkpoint(env: &Env) -> String {
    let text = fs::read_to_string(env.home.join("checkpoints.jsonl")).expect("checkpoints");
    let last = text.lines().last().expect("a checkpoint");
    let line: serde_json::Value = serde_json::from_str(last).expect("checkpoint line");
    line["note"].as_str().expect("note").to_string()
}

/// `profile` and `accept` announce their generation on the trail while their own save
/// holds the store's write lock, and the trail keeps each checkpoint in the store: that
/// copy waited the whole busy wait on its own process (review r24-scale, reverted: every
/// profile 10 s longer). It goes through the save itself now. With the wait made 60 s,
/// a wait on itself could not hide as a slow machine: each command finishes under it,
/// and the store holds the trail's newest checkpoint.
#[test]
fn profile_and_accept_never_wait_on_their_own_store_lock() {
    let env = Env::new();
    let wait = Duration::from_secs(60);
    let run = |args: &[&str]| {
        let started = Instant::now();
        let out = pacsguard()
            .env(
                pacsguard_store::TEST_BUSY_WAIT_VAR,
                wait.as_millis().to_string(),
            )
            .arg("--home")
            .arg(&env.home)
            .args(args)
            .output()
            .expect("pacsguard runs");
        (out, started.elapsed())
    };
    let first: &[&str] = &["profile", env.tree_str()];
    let again: &[&str] = &["profile", env.tree_str()];
    let accept: &[&str] = &["accept", "--all", "--reason", "reviewed chmod"];
    for args in [first, again, accept] {
        if args[0] == "accept" {
            fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let (out, took) = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(pacsguard_store::TEST_BUSY_WAIT_VAR),
            "the wait was not lengthened (a release build?): {}",
            stderr(&out)
        );
        assert!(
            took < wait,
            "{args:?} took {took:?}, the store's busy wait: it waited on its own lock"
        );
        let db = rusqlite::Connection::open(env.home.join("pacsguard.db")).expect("open store");
        let mark: String = db
            .query_row("SELECT note FROM trail_mark WHERE id = 1", [], |r| r.get(0))
            .expect("the store keeps a checkpoint");
        assert_eq!(mark, newest_checkpoint(&env), "{args:?}");
    }
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
}

/// A writer of the store file killed with SIGKILL inside its transaction, its changes
/// already spilled into the file (a hot journal left behind): an `accept` waiting for
/// its lock proceeds once it is gone, on the store as it was before that writer, and
/// signs; nothing of the half-done write is taken in or signed.
#[test]
fn a_writer_killed_inside_its_transaction_leaves_nothing_half_written() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let db = env.home.join("pacsguard.db");
    let mut sqlite = std::process::Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sqlite3 runs");
    let mut input = sqlite.stdin.take().expect("stdin");
    // One page of cache: the changes are written into the file before any commit.
    input
        .write_all(
            b".timeout 10000\nPRAGMA cache_size = 1;\nBEGIN IMMEDIATE;\n\
              DELETE FROM entry_chunks;\nDELETE FROM acceptances;\n\
              UPDATE baseline SET generation = 99;\nUPDATE roots SET policy = 'growing';\n",
        )
        .expect("write");
    input.flush().expect("flush");
    let probe = rusqlite::Connection::open(&db).expect("open store");
    probe.busy_timeout(Duration::ZERO).expect("no wait");
    let until = Instant::now() + Duration::from_secs(30);
    while probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok() {
        assert!(Instant::now() < until, "sqlite3 never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(probe);
    let accept = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .args(["accept", "--all", "--reason", "reviewed chmod"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pacsguard runs");
    std::thread::sleep(Duration::from_millis(1_000));
    let journal = env.home.join("pacsguard.db-journal");
    let hot = fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
    sqlite.kill().expect("SIGKILL");
    sqlite.wait().expect("reaped");
    drop(input);
    assert!(
        hot > 0,
        "no journal: the writer's changes never reached the file"
    );
    let out = accept.wait_with_output().expect("accept");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
    let store = rusqlite::Connection::open(&db).expect("open store");
    let generation: i64 = store
        .query_row("SELECT generation FROM baseline", [], |r| r.get(0))
        .expect("generation");
    assert_eq!(
        generation, 2,
        "the profile's and the acceptance's, not the killed 99"
    );
    let chunks: i64 = store
        .query_row("SELECT count(*) FROM entry_chunks", [], |r| r.get(0))
        .expect("chunks");
    assert!(chunks > 0, "the killed writer's deletion was rolled back");
}

#[test]
fn a_store_from_another_home_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    let other = Env::new();
    other.profile(&[]);
    fs::copy(
        other.home.join("pacsguard.db"),
        env.home.join("pacsguard.db"),
    )
    .expect("swap");
    let out = env.run(&["check"]);
    assert_refused(&out, "signed by key");
}

#[test]
fn a_truncated_store_is_an_error() {
    let env = Env::new();
    env.profile(&[]);
    let db = env.home.join("pacsguard.db");
    let bytes = fs::read(&db).expect("read");
    fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[test]
fn check_before_any_profile_and_outside_the_roots_are_errors() {
    let env = Env::new();
    let out = env.run(&["check"]);
    assert_refused(&out, "no profile");
    env.profile(&[]);
    let out = env.run(&["check", "/usr"]);
    assert_refused(&out, "not inside any profiled root");
    let out = env.run(&["profile", "/nonexistent/pacsguard-tree"]);
    assert_refused(&out, "/nonexistent/pacsguard-tree");
}

#[test]
fn a_bad_config_names_the_file_and_the_field() {
    let env = Env::new();
    fs::write(
        env.home.join("config.toml"),
        "[[root]]\npath = \"/srv\"\npolicy = \"paranoid\"\n",
    )
    .expect("config");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("config.toml") && err.contains("paranoid"),
        "{err}"
    );
}

#[test]
fn the_signed_policy_wins_over_an_edited_config_and_the_difference_is_reported() {
    let env = Env::new();
    let config = format!(
        "[[root]]\npath = \"{}\"\npolicy = \"static\"\n",
        env.tree_str()
    );
    fs::write(env.home.join("config.toml"), config).expect("config");
    let out = env.run(&["profile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // An intruder relaxes the policy, then drops a file.
    let relaxed = format!(
        "[[root]]\npath = \"{}\"\npolicy = \"append-only\"\n",
        env.tree_str()
    );
    fs::write(env.home.join("config.toml"), relaxed).expect("config");
    fs::write(env.path("implant.exe"), b"MZ").expect("implant");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(one(&findings, "added", "implant.exe").severity, "alert");
    let differs = findings
        .iter()
        .find(|f| f.kind == "config-differs")
        .expect("config-differs reported");
    assert_eq!(differs.severity, "warning");
}

#[test]
fn accept_takes_reviewed_changes_with_who_and_why() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"patched by vendor\n").expect("patch");
    fs::write(env.path("study/series/2.dcm"), b"DICM still suspicious").expect("other change");

    let out = env.run(&["accept", "--reason", "   "]);
    assert_eq!(out.status.code(), Some(2), "a blank reason is refused");
    let out = env.run(&["accept", env.path("readme.txt").to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "--reason is mandatory");

    let out = env.run(&[
        "accept",
        "--json",
        "--reason",
        "vendor patch KB-42",
        env.path("readme.txt").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["generation"], 2);
    assert_eq!(found(&doc["accepted"], &env.tree).len(), 1);

    // Only the accepted path is taken in; the other change is still reported.
    let (code, findings, doc) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(doc["generation"], 2);
    assert_eq!(findings.len(), 1, "{findings:?}");
    one(&findings, "content-changed", "study/series/2.dcm");

    // The event log names who and why.
    let log = fs::read_to_string(env.home.join("audit.log")).expect("event log");
    let accept = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .find(|e| e["action"] == "accept" && e["outcome"] == "success" && e["finding"].is_null())
        .expect("accept event");
    assert_eq!(accept["reason"], "vendor patch KB-42");
    assert!(
        accept["actor"]["user"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );

    let out = env.run(&["accept", "--all", "--reason", "reviewed with radiology"]);
    assert_eq!(out.status.code(), Some(0));
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0));
}

#[test]
fn accepting_a_deletion_removes_it_from_the_baseline() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_dir_all(env.path("study")).expect("rm study");
    let out = env.run(&[
        "accept",
        "--reason",
        "study retention expired",
        env.path("study").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:?}");
}

#[test]
fn every_finding_and_action_reaches_the_event_log() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_file(env.path("readme.txt")).expect("rm");
    let _ = env.check(&[]);
    let log = fs::read_to_string(env.home.join("audit.log")).expect("event log");
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    // The profile is announced (and synced) before the baseline is replaced.
    assert_eq!(
        actions,
        ["init", "profile", "profile", "check", "check"],
        "{log}"
    );
    assert_eq!(events[1]["outcome"], "started");
    assert_eq!(events[2]["outcome"], "success");
    assert_eq!(events[3]["finding"]["kind"], "removed");
    assert_eq!(events[4]["outcome"], "findings");
}

#[test]
fn no_command_changes_a_byte_or_a_time_of_the_guarded_tree() {
    let env = Env::new();
    let before = snapshot(&env.tree);
    env.profile(&[]);
    let _ = env.check(&[]);
    let _ = env.check(&["--fast"]);
    let _ = env.run(&["accept", "--all", "--reason", "noop"]);
    env.profile(&["--hash", "sha256"]);
    let _ = env.check(&[]);
    assert_eq!(snapshot(&env.tree), before);
}

#[test]
fn a_home_inside_the_tree_is_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().canonicalize().expect("canonical");
    fs::write(tree.join("a.dcm"), b"DICM").expect("write");
    let home = tree.join(".pacsguard");
    let run = |args: &[&str]| {
        pacsguard()
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .expect("runs")
    };
    assert_eq!(run(&["init"]).status.code(), Some(0));
    assert_eq!(
        run(&["profile", tree.to_str().expect("utf-8")])
            .status
            .code(),
        Some(0)
    );
    // The home's own files change with every command; they must not show up as findings.
    let out = run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn fifos_are_recorded_never_opened_and_symlinks_never_followed() {
    let env = Env::new();
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    std::os::unix::fs::symlink("/usr", env.path("escape")).expect("symlink");
    // Opening the FIFO for reading would block forever: the whole run must finish promptly.
    let mut child = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .args(["profile", "--json", env.tree_str()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "profile blocked (opened the FIFO?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // 3 files and 2 symlinks + 1 fifo; nothing of /usr.
    assert_eq!(doc["roots"][0]["files"], 3);
    assert_eq!(doc["roots"][0]["other"], 3);
    fs::remove_file(env.path("pipe")).expect("rm fifo");
    fs::write(env.path("pipe"), b"now a file").expect("replace");
    let (_, findings, _) = env.check(&[]);
    assert_eq!(one(&findings, "content-changed", "pipe").fields, ["type"]);
}

#[test]
fn hostile_names_are_stored_exactly_and_shown_escaped() {
    let env = Env::new();
    let name = std::ffi::OsStr::from_bytes(b"evil\x1b[2J\nname\xff.dcm");
    fs::write(env.tree.join(name), b"x").expect("write");
    env.profile(&[]);
    fs::write(env.tree.join(name), b"y").expect("edit");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "raw escape reached the terminal: {text:?}"
    );
    assert!(
        text.contains("evil\\u{001b}[2J\\u{000a}name\\xff.dcm"),
        "{text}"
    );
    let (_, findings, _) = env.check(&[]);
    one(
        &findings,
        "content-changed",
        "evil\\u{001b}[2J\\u{000a}name\\xff.dcm",
    );
}

#[test]
fn unreadable_files_are_warnings_and_the_run_goes_on() {
    if !is_root() {
        eprintln!("runs the binary as nobody, which needs root; CI runs as root");
        return;
    }
    let env = Env::new();
    let secret = env.path("study/secret.dcm");
    fs::write(&secret, b"DICM private").expect("write");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
    // The home and tree belong to nobody except the secret (still root's, mode 0600).
    let chown = |path: &std::path::Path| {
        std::os::unix::fs::lchown(path, Some(65534), Some(65534)).expect("chown")
    };
    for entry in walk(&env.dir.path().canonicalize().expect("canonical")) {
        if entry != secret {
            chown(&entry);
        }
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .arg("--home")
        .arg(&env.home)
        .args(["profile", "--json", env.tree_str()])
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(
        one(&findings, "unreadable", "study/secret.dcm").severity,
        "warning"
    );
    assert_eq!(
        doc["roots"][0]["files"], 4,
        "the other files were still profiled"
    );
}

#[test]
fn mount_points_are_not_crossed_unless_asked() {
    if !is_root() {
        eprintln!("mounting needs root");
        return;
    }
    let env = Env::new();
    let mnt = env.path("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&mnt)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("cannot mount tmpfs here; skipping");
        return;
    }
    fs::write(mnt.join("other-fs.dcm"), b"x").expect("write");
    let out = env.run(&["profile", "--json", env.tree_str()]);
    let unmount = || std::process::Command::new("umount").arg(&mnt).status();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let cross = env.run(&["profile", "--json", "--cross-mounts", env.tree_str()]);
    let _ = unmount();
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(one(&findings, "not-descended", "mnt").severity, "info");
    assert_eq!(doc["roots"][0]["files"], 3);
    let crossed: serde_json::Value = serde_json::from_slice(&cross.stdout).expect("json");
    assert_eq!(crossed["roots"][0]["files"], 4);
}

#[test]
fn a_profile_killed_at_any_instant_leaves_the_previous_baseline_valid() {
    let env = Env::new();
    // Many small files make the store-writing phase long enough for kills to land in it,
    // a few large ones make the hashing phase long.
    for i in 0..6000 {
        let dir = env.path(&format!("bulk/{}", i % 60));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("{i}.dcm")), format!("DICM instance {i}")).expect("write");
    }
    fs::write(env.path("bulk/large.bin"), vec![7u8; 64 << 20]).expect("write");
    let started = std::time::Instant::now();
    env.profile(&[]);
    let full_run = started.elapsed();

    let mut generation = 1;
    let mut pending = "bulk/new-1.dcm".to_string();
    fs::write(env.path(&pending), b"arrived after the last profile").expect("write");
    let (mut killed_before, mut killed_after) = (0, 0);
    for step in 0..16u32 {
        let delay = full_run * step / 14; // spread over the whole run, and a little past it
        let mut child = pacsguard()
            .arg("--home")
            .arg(&env.home)
            .args(["profile", env.tree_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever instant it died at, the store holds a complete, verifiable baseline:
        // the previous one (which reports the pending file) or the new one (clean).
        let (code, findings, doc) = env.check(&["--fast"]);
        let now = doc["generation"].as_u64().expect("generation");
        if now == generation {
            killed_before += 1;
            assert_eq!(code, 1);
            assert_eq!(findings.len(), 1, "{findings:?}");
            one(&findings, "added", &pending);
        } else {
            killed_after += 1;
            assert_eq!(now, generation + 1);
            assert_eq!((code, findings.len()), (0, 0), "{findings:?}");
            generation = now;
            pending = format!("bulk/new-{}.dcm", step + 2);
            fs::write(env.path(&pending), b"arrived after the last profile").expect("write");
        }
    }
    eprintln!(
        "profile runs {full_run:?}; killed before commit {killed_before}, after {killed_after}"
    );
    assert!(
        killed_before > 0,
        "no kill landed before the commit: the test proves nothing"
    );
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            for e in fs::read_dir(&path).expect("list") {
                out.push(e.expect("entry").path());
            }
        }
        i += 1;
    }
    out
}

#[test]
fn re_profiling_puts_what_it_takes_in_on_the_record() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    let out = env.run(&["profile", "--json", env.tree_str()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreviewed difference was taken in"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(
        one(&findings, "content-changed", "readme.txt").severity,
        "alert"
    );
    assert!(
        doc["findings"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("without review"))
    );
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0));
}

#[test]
fn a_root_that_is_gone_is_reported_removed_not_an_error() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_dir_all(&env.tree).expect("wipe");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "removed", "study/series/1.dcm").severity,
        "alert"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.kind == "removed" && f.path == env.tree_str()),
        "{findings:?}"
    );
}

#[test]
fn a_home_that_others_can_write_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = env.run(&["check"]);
    assert_refused(&out, "writable by group or others");
    fs::set_permissions(
        env.home.join("signing.key"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o700)).expect("chmod");
    let out = env.run(&["check"]);
    assert_refused(&out, "chmod 600");
}

#[test]
fn roots_whose_names_sort_differently_by_bytes_and_by_components_verify() {
    // `/x/pacs/bin` sorts before `/x/pacs-data` by path components, after it by bytes.
    let env = Env::new();
    let base = env.dir.path().canonicalize().expect("canonical");
    for dir in ["pacs/bin", "pacs-data"] {
        fs::create_dir_all(base.join(dir)).expect("mkdir");
        fs::write(base.join(dir).join("f"), dir).expect("write");
        let out = env.run(&["profile", base.join(dir).to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = env.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn accepting_a_planted_link_accepts_the_link_not_what_it_points_to() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    fs::create_dir(env.path("incoming")).expect("mkdir");
    std::os::unix::fs::symlink(&env.tree, env.path("incoming/x")).expect("symlink");
    let out = env.run(&[
        "accept",
        "--json",
        "--reason",
        "reviewed the new link",
        env.path("incoming/x").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let accepted = found(&doc["accepted"], &env.tree);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    one(&accepted, "added", "incoming/x");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    one(&findings, "content-changed", "readme.txt");
}
