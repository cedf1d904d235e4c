//! The trail holds against a home rolled back, reset or torn by a full disk: the
//! adversarial review of issue 12 (r12) replayed through the real binary, with real files,
//! a real tmpfs that fills up and a real syslog collector.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn records(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["audit", "show", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["records"].as_array().cloned().unwrap_or_default()
}

/// A home profiled (generation 1), then a change accepted (generation 2); returns the
/// store and the checkpoint line of generation 1, as an intruder would have kept them.
fn accepted_env() -> (Env, Vec<u8>, String) {
    let env = Env::new();
    env.profile(&[]);
    let old_store = fs::read(env.home.join("pacsguard.db")).expect("read");
    let old_checkpoint = lines(&env.home.join("checkpoints.jsonl"))
        .pop()
        .expect("a checkpoint");
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    let out = env.run(&["accept", "--all", "--reason", "CHG-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.check(&[]).0, 0);
    (env, old_store, old_checkpoint)
}

// Item 1 (r12/R): the store of generation 1 put back, and generation 1's checkpoint line
// appended again so that the last checkpoint agrees with it.
#[test]
fn an_older_checkpoint_appended_again_with_an_older_store_is_a_rollback() {
    let (env, old_store, old_checkpoint) = accepted_env();
    fs::write(env.home.join("pacsguard.db"), old_store).expect("store rolled back");
    let path = env.home.join("checkpoints.jsonl");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(format!("{old_checkpoint}\n").as_bytes());
    fs::write(&path, &bytes).expect("old checkpoint appended");
    let log = fs::read(env.home.join("audit.log")).expect("read");
    for args in [&["check"][..], &["profile"][..]] {
        let out = env.run(args);
        assert_refused_in(
            &out,
            "fewer than the one before it",
            format_args!("{args:?}"),
        );
    }
    assert_eq!(fs::read(&path).expect("read"), bytes, "nothing signed");
    assert_eq!(
        fs::read(env.home.join("audit.log")).expect("read"),
        log,
        "nothing written"
    );
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

// Item 1: the checkpoints cut back to generation 1 instead: the records after it carry
// valid MACs and are adopted, and what they announce and sign counts.
#[test]
fn checkpoints_cut_back_with_an_older_store_are_caught_by_the_records_they_left() {
    let (env, old_store, old_checkpoint) = accepted_env();
    fs::write(env.home.join("pacsguard.db"), old_store).expect("store rolled back");
    let path = env.home.join("checkpoints.jsonl");
    let kept: Vec<String> = lines(&path)
        .into_iter()
        .take_while(|l| *l != old_checkpoint)
        .chain([old_checkpoint.clone()])
        .collect();
    fs::write(&path, format!("{}\n", kept.join("\n"))).expect("checkpoints cut back");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("generation 2") && stderr(&out).contains("rolled back"),
        "{}",
        stderr(&out)
    );
}

// Item 1: the whole home (store, audit.log, checkpoints) put back to an earlier copy is
// self-consistent; what holds a later state catches it: here the forwarding cursor.
#[test]
fn a_whole_home_rolled_back_is_caught_by_the_forwarding_cursor() {
    let env = Env::new();
    env.profile(&[]);
    let names = ["pacsguard.db", "audit.log", "checkpoints.jsonl"];
    let copy: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(env.home.join(n)).expect("read"))
        .collect();
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    assert_eq!(env.check(&[]).0, 1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let collector = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut bytes).expect("read");
    });
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{addr}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    collector.join().expect("collector");
    // The intruder puts back the copy taken before the alert.
    for (name, bytes) in names.iter().zip(&copy) {
        fs::write(env.home.join(name), bytes).expect("roll back");
    }
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("syslog.cursor") && stderr(&out).contains("rolled back"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("syslog.cursor"), "{}", stdout(&out));
}

// Item 2: audit.log, checkpoints.jsonl and pacsguard.db deleted, the key left.
#[test]
fn a_home_reset_behind_the_key_is_refused_until_a_person_reinitialises_it() {
    let env = Env::new();
    env.profile(&[]);
    for name in ["audit.log", "checkpoints.jsonl", "pacsguard.db"] {
        fs::remove_file(env.home.join(name)).expect("intruder deletes");
    }
    for args in [
        &["check"][..],
        &["profile"][..],
        &["scan", env.tree_str()][..],
    ] {
        let out = env.run(args);
        // Tampering, like a rolled-back trail: exit 2, with the alert shown.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("trail-reset") && stderr(&out).contains("audit reinit"),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let out = env.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["findings"][0]["kind"], "trail-reset");
    assert_eq!(doc["findings"][0]["severity"], "alert");
    for name in ["audit.log", "checkpoints.jsonl", "pacsguard.db"] {
        assert!(!env.home.join(name).exists(), "{name} was written");
    }
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("reset"), "{}", stdout(&out));

    let old_key = fs::read_to_string(env.home.join("trail.pub")).expect("read");
    let out = env.run(&["audit", "reinit", "--reason", "INC-9: home wiped, checked"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(
        fs::read_to_string(env.home.join("trail.pub")).expect("read"),
        old_key,
        "the new trail has its own origin"
    );
    let out = env.run(&["audit", "reinit", "--reason", "again"]);
    assert_eq!(out.status.code(), Some(2), "only a trail that is gone");
    env.profile(&[]);
    assert_eq!(env.check(&[]).0, 0);
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let trail = records(&env);
    assert_eq!(trail[0]["finding"]["kind"], "trail-reset", "{trail:#?}");
    assert!(
        trail
            .iter()
            .any(|r| r["reason"] == "INC-9: home wiped, checked"),
        "{trail:#?}"
    );
}

// Item 3: a checkpoint line cut short (a power loss while it was written) is the
// writer's own torn line: cut off on the next open, on the record. An edited line is not.
#[test]
fn a_torn_checkpoint_line_is_cut_off_on_the_record_and_an_edited_one_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    // The store keeps a copy of each checkpoint after it is durable: a line torn by a crash
    // was never durable, so its copy was never kept. The store as it was before the check.
    let store = fs::read(env.home.join("pacsguard.db")).expect("read");
    fs::write(env.path("readme.txt"), b"changed").expect("edit");
    assert_eq!(env.check(&[]).0, 1);
    let path = env.home.join("checkpoints.jsonl");
    let whole = fs::read(&path).expect("read");
    let last_start = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    for cut in [last_start + 5, last_start + 120, whole.len() - 1] {
        fs::write(&path, &whole[..cut]).expect("torn");
        fs::write(env.home.join("pacsguard.db"), &store).expect("store as before");
        let out = env.run(&["audit", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "torn at {cut}: {}",
            stdout(&out)
        );
        assert_eq!(env.check(&[]).0, 1, "torn at {cut}");
        let out = env.run(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert!(
            records(&env).iter().any(|r| r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("checkpoint line cut short"))),
            "the repair is on the record"
        );
        // The state before the next round: a whole last checkpoint again.
        let now = fs::read(&path).expect("read");
        assert_eq!(now.last(), Some(&b'\n'));
    }
    // Not ours: bytes that are no beginning of a checkpoint line of this trail.
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(b"{\"note\":\"someone else\\n");
    fs::write(&path, &bytes).expect("append");
    let out = env.run(&["check"]);
    assert_refused(&out, "incomplete");
    // A complete line in the middle edited: tampering, whatever the end looks like.
    let mut text = lines(&path);
    text.pop();
    let middle = text.len() / 2;
    text[middle] = text[middle].replacen("pacsguard-state", "pacsguard-stat", 1);
    fs::write(&path, format!("{}\n", text.join("\n"))).expect("edit");
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

/// A tmpfs of `size` mounted at `dir` for the test's life; `None` when mounting is not
/// allowed here (not root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).expect("mkdir");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount runs");
        out.status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A home on a tmpfs of its own, initialised and holding a profile of `env`'s tree, for
/// the full-disk tests. Fields drop in order: the tmpfs is unmounted before the directory
/// it is mounted on is removed.
struct SmallDisk {
    _tmpfs: Tmpfs,
    mnt: std::path::PathBuf,
    home: std::path::PathBuf,
    env: Env,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (said on stderr) where a tmpfs cannot be mounted: not root, or not allowed.
    fn profiled(size: &str) -> Option<SmallDisk> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().join("small");
        let Some(tmpfs) = Tmpfs::mount(&mnt, size) else {
            eprintln!("skipped: tmpfs cannot be mounted here");
            return None;
        };
        let disk = SmallDisk {
            _tmpfs: tmpfs,
            home: mnt.join("home"),
            mnt,
            env: Env::new(),
            _dir: dir,
        };
        for args in [&["init"][..], &["profile", disk.env.tree_str()]] {
            let out = disk.run(args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        }
        Some(disk)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        pacsguard()
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .expect("runs")
    }

    /// Fills the disk with page-sized files, so room can be given back a page at a time.
    fn fill(&self) -> Vec<std::path::PathBuf> {
        let mut fillers = Vec::new();
        for i in 0.. {
            let path = self.mnt.join(format!("fill-{i}"));
            if fs::write(&path, [0u8; 4096]).is_err() {
                let _ = fs::remove_file(&path);
                break;
            }
            fillers.push(path);
        }
        fillers
    }
}

// Item 3 with a real full disk: a home on a tiny tmpfs fills up while commands run. No
// state it leaves (a record or a checkpoint line cut short, a checkpoint missing) may
// break the trail for good: once there is room again, the next command carries on and
// the trail verifies.
#[test]
fn a_home_on_a_disk_that_fills_up_carries_on_once_there_is_room() {
    let Some(disk) = SmallDisk::profiled("256k") else {
        return;
    };
    let (env, home, run) = (&disk.env, &disk.home, |args: &[&str]| disk.run(args));
    let mut fillers = disk.fill();
    // Changes to report, so every check writes records and a checkpoint.
    let mut failed_on_checkpoint = false;
    for round in 0..200 {
        fs::write(env.path("readme.txt"), format!("change {round}")).expect("edit");
        let out = run(&["check"]);
        match out.status.code() {
            Some(1) => {}
            Some(2) => {
                let err = stderr(&out);
                assert!(
                    err.contains("No space left") || err.contains("earlier write failed"),
                    "{err}"
                );
                if err.contains("checkpoints.jsonl") {
                    failed_on_checkpoint = true;
                    break;
                }
                // The records did not fit: give one page back and go on.
                if let Some(page) = fillers.pop() {
                    fs::remove_file(page).expect("free a page");
                }
            }
            other => panic!("check exited {other:?}: {}", stderr(&out)),
        }
    }
    assert!(
        failed_on_checkpoint,
        "the disk never filled up at a checkpoint"
    );
    let checkpoints = fs::read(home.join("checkpoints.jsonl")).expect("read");
    assert_eq!(
        checkpoints.last(),
        Some(&b'\n'),
        "no partial line left behind"
    );
    // Room again: the next command carries on and everything verifies.
    for page in fillers.drain(..) {
        fs::remove_file(page).expect("free");
    }
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// `watch` on a home whose disk is full starts and guards: what it sees is reported and
/// recorded, and what it cannot keep in the store is said and tried again (review
/// r23-scale: it refused to start, "database or disk is full", at the table of what a
/// watcher saw, which it read before any was kept).
#[test]
fn watch_on_a_full_home_starts_and_guards() {
    watch_on_a_full_home(false);
}

/// The same with `[watch] view_on_disk`: the view file cannot be made on the full home,
/// so the view is kept in memory and that is said (session 33: it refused to start,
/// "watch did not start on a full home").
#[test]
fn watch_on_a_full_home_keeps_its_view_in_memory_and_says_so() {
    let Some(said) = watch_on_a_full_home(true) else {
        return;
    };
    assert!(
        said.contains("is kept in memory, not on disk as [watch] view_on_disk asks"),
        "{said}"
    );
}

/// Watches a full home until an edit is reported; what the watcher said on stderr
/// (`None`: skipped, no tmpfs here).
fn watch_on_a_full_home(view_on_disk: bool) -> Option<String> {
    let disk = SmallDisk::profiled("2m")?;
    let (env, home, run) = (&disk.env, &disk.home, |args: &[&str]| disk.run(args));
    if view_on_disk {
        let config = home.join("config.toml");
        let text = fs::read_to_string(&config).expect("config");
        fs::write(&config, format!("{text}\n[watch]\nview_on_disk = true\n")).expect("config");
    }
    disk.fill();
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let out = tempfile::NamedTempFile::new().expect("stdout file");
    let mut child = pacsguard();
    if view_on_disk {
        // The view left in memory at the start tries to go back to disk at once: on a
        // full home its failure is said, not recorded (session 44, r44-view2: recorded,
        // it was the trail's first record lost and the stop an error, exit 2).
        child.env("PACSGUARD_TEST_VIEW_RETURN_WAIT_MS", "100");
    }
    let mut child = child
        .arg("--home")
        .arg(home)
        .args(["watch", "--json"])
        .stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"))
        .spawn()
        .expect("watch starts");
    let said = || fs::read_to_string(err.path()).unwrap_or_default();
    let started = std::time::Instant::now();
    while !said().contains("watching for changes") {
        if started.elapsed() > std::time::Duration::from_secs(60)
            || child.try_wait().expect("try_wait").is_some()
        {
            let _ = child.kill();
            panic!("watch did not start on a full home: {}", said());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    let started = std::time::Instant::now();
    while !fs::read_to_string(out.path())
        .unwrap_or_default()
        .contains("content-changed")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "not reported: {}",
            said()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{}", said());
    let shown = run(&["audit", "show", "--json", "--action", "watch"]);
    assert!(
        stdout(&shown).contains("content hash differs"),
        "the finding is recorded: {}",
        stdout(&shown)
    );
    Some(said())
}

// Item 6: a witness directory made immutable: the findings are on the home's trail, and
// the message says so, and says what was not written.
#[test]
fn a_witness_that_cannot_be_written_is_named_without_denying_the_recorded_findings() {
    let (env, witness) = witnessed_env();
    if !std::process::Command::new("chattr")
        .arg("+i")
        .arg(&witness)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: chattr +i is not supported here");
        return;
    }
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    let out = env.run(&["check"]);
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&witness)
        .status();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("could not be recorded")
            && err.contains("are recorded")
            && err.contains("witness")
            && err.contains("witness init"),
        "{err}"
    );
    assert!(stdout(&out).contains("content-changed"), "{}", stdout(&out));
    // The next command refuses the witness as behind, with the right advice.
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("behind") && err.contains("witness init") && !err.contains("move it aside"),
        "{err}"
    );
}

// Item 5 (issue 12, item 10): who accepted what and why is signed with the baseline.
#[test]
fn an_acceptance_edited_in_the_store_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"patched").expect("edit");
    let out = env.run(&["accept", "--all", "--reason", "CHG-7 by alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.check(&[]).0, 0);
    // sqlite3 through Python: what anyone who can write the home can do.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE acceptances SET reason = 'approved by the vendor', user = 'vendor'\"); \
             c.commit()",
        ])
        .arg(env.home.join("pacsguard.db"))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["check"]);
    assert_refused(&out, "signature does not verify");
}

// Item 6: `audit export` waits for no lock (a watcher holds it for days), so it must copy
// a trail that is being appended to as a consistent one: whole lines only, never the
// half of a record or of a checkpoint a writer is in the middle of.
#[test]
fn an_export_taken_while_a_writer_appends_holds_only_whole_lines() {
    let env = Env::new();
    env.profile(&[]);
    // A writer mid-append: half a record, half a checkpoint line.
    for (name, half) in [
        ("audit.log", &b"{\"seq\":99,\"host\":\"pacs\",\"act"[..]),
        ("checkpoints.jsonl", &b"{\"note\":\"pacsguard.local/"[..]),
    ] {
        let path = env.home.join(name);
        let mut bytes = fs::read(&path).expect("read");
        bytes.extend_from_slice(half);
        fs::write(&path, bytes).expect("append");
    }
    let out_dir = env.dir.path().join("export");
    let out = env.run(&["audit", "export", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["audit.log", "checkpoints.jsonl"] {
        let copy = fs::read(out_dir.join(name)).expect("exported");
        assert_eq!(copy.last(), Some(&b'\n'), "{name}: half a line exported");
    }
    let out = env.run(&["audit", "verify", "--dir", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

// Item 1: the trail alone (audit.log, checkpoints.jsonl) put back to a copy taken before
// a check that raised an alert, to erase it: no baseline changed in between, so only the
// store's copy of the newest checkpoint holds the later state.
#[test]
fn a_trail_put_back_to_before_an_alert_is_caught_by_the_store() {
    let env = Env::new();
    env.profile(&[]);
    let names = ["audit.log", "checkpoints.jsonl"];
    let copy: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(env.home.join(n)).expect("read"))
        .collect();
    fs::write(env.path("readme.txt"), b"implant").expect("edit");
    assert_eq!(env.check(&[]).0, 1);
    fs::write(env.path("readme.txt"), b"static text\n").expect("put back");
    for (name, bytes) in names.iter().zip(&copy) {
        fs::write(env.home.join(name), bytes).expect("roll back");
    }
    let out = env.run(&["check"]);
    assert_refused(&out, "put back to an earlier copy");
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

/// Issue 15 (review r29-store2): `audit verify` (and `serve`) list every `store-reset`
/// record, parsed whole: lines appended to the log by someone who can write the home were
/// listed without bound (and kept in `serve`'s memory). At most
/// `MAX_STORE_RESETS_LISTED` are listed, and reaching it is said; the forgery is named
/// as ever (exit 2, TAMPERED).
#[test]
fn store_resets_past_the_limit_are_not_listed_and_the_limit_is_said() {
    use std::io::Write as _;
    let env = Env::new();
    env.profile(&[]);
    let limit = pacsguard_engine::MAX_STORE_RESETS_LISTED;
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(env.home.join("audit.log"))
        .expect("the log");
    for i in 0..=limit {
        writeln!(
            log,
            r#"{{"seq":{},"finding":{{"kind":"store-reset","detail":"forged {i}"}},"reason":"forged"}}"#,
            1_000_000 + i
        )
        .expect("append");
    }
    drop(log);
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    let listed = text
        .lines()
        .filter(|l| l.starts_with("store-reset "))
        .count();
    // The first `limit` records, and the line that says the rest are not listed.
    assert_eq!(listed, limit + 1, "{listed} listed");
    assert!(text.contains("; forged 0\n"), "{text}");
    assert!(!text.contains(&format!("; forged {limit}\n")), "{text}");
    assert!(
        text.contains("MAX_STORE_RESETS_LISTED"),
        "reaching the limit is not said: {}",
        text.lines().last().unwrap_or_default()
    );
}
