//! Memory per file of `profile` and `check` (issue 15), measured as the kernel reports it:
//! the peak resident set of the real binary, through GNU `time` (scripts/setup-test-deps.sh
//! installs it). The bounds are per file above a 1-file run of the same command, on a tree
//! large enough that the entries, not the fixed start-up cost, dominate: a copy of every
//! entry too many (what `check` held before: the baseline cloned to restrict it to the
//! whole root, a set of every hashed path) crosses them.

mod common;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;

use common::pacsguard;

/// Files in the measured tree: at this count a copy of every entry is ~15 MB, well
/// above the noise of the allocator's per-thread arenas.
const FILES: usize = 50_000;
const FILES_PER_DIR: usize = 1_000;

/// Peak RSS above a 1-file run, per file, for a whole check. `check` streams the stored
/// profile and the walk (issue 15): measured 85 to 125 in a debug build, what is left
/// being fixed costs a 1-file run does not reach (SQLite's page cache, a listed directory
/// of 1,000 entries, the hashing window, the worker threads' arenas), not entries.
/// Holding the stored baseline and the capture, one copy each, measured about 600 (619
/// with the base binary); three copies and a set of every path about 900.
const CHECK_BYTES_PER_FILE: u64 = 200;

/// The same for `profile`. A new root is written to the store a chunk at a time (issue
/// 15), but this tree is under `MAX_KEPT_GENERATION_ENTRIES` (200,000), so the generation
/// kept for `diff` reads the signed baseline back whole: measured 666 (holding the capture
/// as well, before: about 710; encoding every chunk before writing the first, before
/// that, added about 310). Past 200,000 entries nothing is read back (`bench/README.md`).
const PROFILE_BYTES_PER_FILE: u64 = 850;

/// The same for `profile` of a root profiled before, and for `accept` of one file of it:
/// both merge the stored chunks with the walk into the store (issue 15): measured 655
/// and 667, what is left per file being again the generation kept for `diff`, read back
/// whole under 200,000 entries. Holding the stored baseline whole as well (the in-memory
/// way, session 16's binary) measured 803 and 798.
const AGAIN_BYTES_PER_FILE: u64 = 730;

/// Hashing threads of every measured run. Each worker thread that hashes gets its own
/// allocator arena and buffers, about 300 KiB of resident memory that a 1-file run never
/// touches: left to the machine's core count, a 32-thread CI runner measured 773 B/file
/// for check and 893 for profile on this same tree (2 threads: 575 and 705), failing a
/// correct build. Pinned, the bounds measure entries per file on any machine.
const THREADS: &str = "2";

/// Directories wider than this many names are read in passes and said
/// (`pacsguard_fs::LISTING_BATCH`).
const LISTING_BATCH: usize = 65_536;

/// Peak resident set (bytes) of `pacsguard --home HOME ARGS --json`, which must exit with
/// 0 and say nothing, or, when `wide` names a directory wider than [`LISTING_BATCH`],
/// exit with 1 and say only that: one `listed-in-passes` warning naming it (a limit an
/// attacker who can add names reaches is a warning at least).
fn peak_rss(home: &Path, args: &[&str], wide: Option<&str>) -> u64 {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .env("RAYON_NUM_THREADS", THREADS)
        .arg("--home")
        .arg(home)
        .args(args)
        .arg("--json")
        .output()
        .expect("GNU time runs (scripts/setup-test-deps.sh installs it)");
    assert_eq!(
        out.status.code(),
        Some(if wide.is_some() { 1 } else { 0 }),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints one JSON document");
    let findings: Vec<(&str, &str, &str)> = doc["findings"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|f| {
                    (
                        f["kind"].as_str().unwrap_or_default(),
                        f["severity"].as_str().unwrap_or_default(),
                        f["path"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    match wide {
        None => assert!(findings.is_empty(), "{args:?}: {findings:?}"),
        Some(wide) => assert_eq!(
            findings,
            [("listed-in-passes", "warning", wide)],
            "{args:?}"
        ),
    }
    let text = fs::read_to_string(report.path()).expect("time's report");
    let kib: u64 = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"));
    kib * 1024
}

fn tree_of(root: &Path, files: usize, per_dir: usize) {
    for i in 0..files {
        let dir = root.join(format!("series{:04}", i / per_dir));
        if i % per_dir == 0 {
            fs::create_dir_all(&dir).expect("mkdir");
        }
        // Empty files: one inode each and no data block; the entries are what is measured.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(dir.join(format!("{i:06}.dcm")))
            .expect("create");
    }
}

/// (peak of profile, peak of check, peak of check --fast) over a tree of `files` files,
/// `per_dir` to a directory; with `again`, also of `profile` of the same root again and of
/// `accept` of one of its files whose mode changed (0 without).
fn measure(dir: &Path, files: usize, per_dir: usize, again: bool) -> [u64; 5] {
    let home = dir.join(format!("home-{files}-{per_dir}"));
    let tree = dir.join(format!("tree-{files}-{per_dir}"));
    fs::create_dir(&tree).expect("mkdir");
    tree_of(&tree, files, per_dir);
    let out = pacsguard()
        .arg("--home")
        .arg(&home)
        .arg("init")
        .output()
        .expect("init");
    assert_eq!(out.status.code(), Some(0));
    // The one directory of a flat tree, when it is wider than one pass.
    let wide = (per_dir > LISTING_BATCH && files > LISTING_BATCH)
        .then(|| format!("{}/series0000", tree.display()));
    let wide = wide.as_deref();
    let first = tree.join("series0000/000000.dcm");
    let tree = tree.to_str().expect("utf-8 temp path");
    let mut peaks = [
        peak_rss(&home, &["profile", tree], wide),
        peak_rss(&home, &["check"], wide),
        peak_rss(&home, &["check", "--fast"], wide),
        0,
        0,
    ];
    if again {
        peaks[3] = peak_rss(&home, &["profile", tree], wide);
        fs::set_permissions(&first, fs::Permissions::from_mode(0o600)).expect("chmod");
        let first = first.to_str().expect("utf-8 temp path");
        peaks[4] = peak_rss(&home, &["accept", first, "--reason", "CHG-1"], wide);
    }
    peaks
}

#[test]
fn check_holds_neither_the_baseline_nor_the_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixed = measure(dir.path(), 1, FILES_PER_DIR, true);
    let large = measure(dir.path(), FILES, FILES_PER_DIR, true);
    let per_file = |i: usize| large[i].saturating_sub(fixed[i]) / FILES as u64;
    let (profile, check, fast) = (per_file(0), per_file(1), per_file(2));
    let (again, accept) = (per_file(3), per_file(4));
    eprintln!(
        "bytes per file above a 1-file run: profile {profile}, check {check}, check --fast {fast}, profile again {again}, accept of one file {accept}"
    );
    assert!(
        again <= AGAIN_BYTES_PER_FILE,
        "profile again: {again} bytes per file (bound {AGAIN_BYTES_PER_FILE})"
    );
    assert!(
        accept <= AGAIN_BYTES_PER_FILE,
        "accept of one file: {accept} bytes per file (bound {AGAIN_BYTES_PER_FILE})"
    );
    assert!(
        check <= CHECK_BYTES_PER_FILE,
        "check: {check} bytes per file (bound {CHECK_BYTES_PER_FILE})"
    );
    assert!(
        fast <= CHECK_BYTES_PER_FILE,
        "check --fast: {fast} bytes per file (bound {CHECK_BYTES_PER_FILE})"
    );
    // A profile holds the capture once (and no encoded copy of it while saving).
    assert!(
        profile <= PROFILE_BYTES_PER_FILE,
        "profile: {profile} bytes per file (bound {PROFILE_BYTES_PER_FILE})"
    );
}

/// Files in the one flat directory of the test below: two passes of
/// `pacsguard_fs::LISTING_BATCH` (65,536) names.
const FLAT_FILES: usize = 98_304;

#[test]
fn one_flat_directory_is_checked_a_batch_of_names_at_a_time() {
    // A PACS that keeps every instance in one directory: `check` used to hold every entry
    // of a directory it listed (measured ~535 bytes per file at 200,000 files, debug);
    // read in passes of LISTING_BATCH names it holds one batch, whatever the width. The
    // checks find every file again and say only that the directory was read in passes, a
    // warning (peak_rss asserts it).
    let dir = tempfile::tempdir().expect("tempdir");
    let fixed = measure(dir.path(), 1, FLAT_FILES, false);
    let flat = measure(dir.path(), FLAT_FILES, FLAT_FILES, false);
    let per_file = |i: usize| flat[i].saturating_sub(fixed[i]) / FLAT_FILES as u64;
    let (check, fast) = (per_file(1), per_file(2));
    eprintln!(
        "one flat directory, bytes per file above a 1-file run: check {check}, check --fast {fast}"
    );
    assert!(
        check <= CHECK_BYTES_PER_FILE,
        "check: {check} bytes per file (bound {CHECK_BYTES_PER_FILE})"
    );
    assert!(
        fast <= CHECK_BYTES_PER_FILE,
        "check --fast: {fast} bytes per file (bound {CHECK_BYTES_PER_FILE})"
    );
}

/// Files of the watched tree below: enough that a copy of the view (~330 bytes a file in
/// a debug build) is ~10 MB, above the allocator's noise, and the test stays quick.
const WATCHED_FILES: usize = 30_000;

/// Peak resident set of `watch` restarting on a profiled tree (its catch-up compares every
/// root with the view), per file above a 1-file run, debug build. Measured 1,994 before
/// session 20: the catch-up held the view, two copies of it (the part to compare and the
/// part whose `stat` is trusted) and the capture, beside an index of inodes with a vector
/// of names per file and a view keyed by a copy of each path. Measured 1,687 since: the
/// view, one copy of it and the capture are left (still linear: issue 15); 1,699 to 1,719
/// while the catch-up's walk of the whole root was copied into a second vector before the
/// first was let go (`walk_subtrees`), 1,461 to 1,465 since it is taken, 1,224 to 1,232
/// since the files too big for the loop are taken out of the capture in place, not by a
/// partition into two new vectors (`offload_big_files`). Session 44: 1,197 to 1,263
/// (session 42's binary), 1,309 to 1,330 (session 43's, the torn captures' set of every
/// path of a batch), 1,257 to 1,273 once that set is built only while one is held.
const WATCH_PEAK_BYTES_PER_FILE: u64 = 1_400;

/// Resident set of `watch` once watching after that restart, per file above a 1-file
/// run, debug build: the view and the index of inodes, and what the allocator keeps of
/// the catch-up (glibc keeps freed memory: this moves with the order of the catch-up's
/// allocations, not only with what is held). Measured 1,131 to 1,160 while the catch-up
/// put the view back entry by entry (a B-tree filled in path order keeps its nodes about
/// half full), 655 to 690 once it was built anew in bulk (`RootView::replace`), 880 to
/// 897 with the catch-up's peak lowered as well (the same view, more of the freed
/// capture kept by the allocator). Session 44, three runs each on one machine: 951 to
/// 1,016 (session 42's binary), 970 to 1,084 (session 43's: the torn captures' set of
/// every path of a batch, built for the catch-up's whole root and kept by the allocator;
/// the CI run failed at 1,061), 1,015 to 1,027 once that set is built only while a torn
/// capture is held. The bound is above that noise and below what a second copy of the
/// view (~330 bytes a file) or a view of half-full nodes (~300) adds.
const WATCH_IDLE_BYTES_PER_FILE: u64 = 1_150;

/// How long `watch` may take to say it is watching (a bound, not a measure: polled).
const WATCH_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// (VmHWM, VmRSS) in bytes of `watch TREE` once it says it is watching, then stopped.
/// `on_disk`: the view must then be in its file in the home, at least that many rows
/// (a view kept in memory instead, said or not, fails here: the memory bounds alone do
/// not tell the two apart, review rv33).
fn watch_memory(home: &Path, tree: &Path, on_disk: Option<usize>) -> (u64, u64) {
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacsguard"))
        .env("RAYON_NUM_THREADS", THREADS)
        .arg("--home")
        .arg(home)
        .arg("watch")
        .arg(tree)
        .arg("--json")
        .stdout(std::process::Stdio::null())
        .stderr(err.reopen().expect("reopen"))
        .spawn()
        .expect("watch starts");
    let started = std::time::Instant::now();
    while !fs::read_to_string(err.path())
        .unwrap_or_default()
        .contains("watching for changes")
    {
        if started.elapsed() > WATCH_START_LIMIT || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            panic!(
                "watch did not start: {}",
                fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            * 1024
    };
    let memory = (field("VmHWM:"), field("VmRSS:"));
    if let Some(files) = on_disk {
        let rows = view_rows(home);
        let said = fs::read_to_string(err.path()).unwrap_or_default();
        assert!(
            rows >= files as u64 && !said.contains("kept in memory"),
            "the view is not on disk: {rows} rows in its file for {files} files; {said}"
        );
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let exit = child.wait().expect("wait");
    let said = fs::read_to_string(err.path()).unwrap_or_default();
    // A clean stop; or, with other tests writing on the same file system, fanotify's
    // queue of the whole file system overflowed during the catch-up and the stop says
    // so with one warning (exit 1, events-lost; session 32: said even when no batch
    // follows). The memory measured is the same either way.
    let overflowed = said.contains("0 alert, 1 warning") && !said.contains("(0 overflows");
    assert!(
        exit.code() == Some(0) || (exit.code() == Some(1) && overflowed),
        "{exit:?}: {said}"
    );
    memory
}

/// The rows of the first root's view file in `home` (0 when there is none), read while
/// the watcher runs (the file is SQLite's, not locked between the watcher's writes).
fn view_rows(home: &Path) -> u64 {
    let file = home.join("watch-view-0.sqlite");
    if !file.exists() {
        return 0;
    }
    let db =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the view file");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM view", [], |row| row.get(0))
        .expect("count the view's rows");
    u64::try_from(rows).unwrap_or_default()
}

/// A profiled tree of `files` files and the (peak, idle) memory of `watch` restarting on
/// it, its view kept on disk when `on_disk`.
fn watch_restart_memory(dir: &Path, files: usize, on_disk: bool) -> (u64, u64) {
    let home = dir.join(format!("watch-home-{files}-{on_disk}"));
    let tree = dir.join(format!("watch-tree-{files}-{on_disk}"));
    fs::create_dir(&tree).expect("mkdir");
    tree_of(&tree, files, FILES_PER_DIR);
    for args in [
        &["init"][..],
        &["profile", tree.to_str().expect("utf-8 temp path")],
    ] {
        let out = pacsguard()
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if on_disk {
        let config = home.join("config.toml");
        let text = fs::read_to_string(&config).expect("config");
        fs::write(&config, format!("{text}\n[watch]\nview_on_disk = true\n")).expect("config");
    }
    watch_memory(&home, &tree, on_disk.then_some(files))
}

#[test]
fn watch_catching_up_holds_the_view_once_beside_the_capture() {
    // Issue 15: a watcher restarting compares every root with its view. It copied the
    // view twice for that (and kept a vector per file in its index of inodes): that copy
    // too many crosses the bound. Once watching, the view the catch-up put back entry by
    // entry held half-full nodes: that crosses the idle bound.
    let dir = tempfile::tempdir().expect("tempdir");
    let (fixed_peak, fixed_idle) = watch_restart_memory(dir.path(), 1, false);
    let (large_peak, large_idle) = watch_restart_memory(dir.path(), WATCHED_FILES, false);
    let per_file = large_peak.saturating_sub(fixed_peak) / WATCHED_FILES as u64;
    let idle = large_idle.saturating_sub(fixed_idle) / WATCHED_FILES as u64;
    eprintln!("watch restart: peak {per_file}, idle {idle} bytes per file above a 1-file run");
    assert!(
        per_file <= WATCH_PEAK_BYTES_PER_FILE,
        "watch restart: peak {per_file} bytes per file (bound {WATCH_PEAK_BYTES_PER_FILE})"
    );
    assert!(
        idle <= WATCH_IDLE_BYTES_PER_FILE,
        "watch restart: idle {idle} bytes per file (bound {WATCH_IDLE_BYTES_PER_FILE})"
    );
}

/// Resident set of `watch` once watching after a restart with `[watch] view_on_disk`, per
/// file above a 1-file run, debug build: the index of inodes, the hashed profile paths and
/// what the allocator keeps of the catch-up; the view itself is a file behind a bounded
/// page cache (`VIEW_CACHE_KIB`). Measured 788 to 813 (session 33, three runs; the view in
/// memory 880 to 986 in the same sessions' runs): the view's ~200-300 bytes a file are
/// gone, the rest of the guard still grows with the tree (issue 15).
const WATCH_ON_DISK_IDLE_BYTES_PER_FILE: u64 = 900;

/// Peak resident set of that restart, per file above a 1-file run, debug build: with the
/// view on disk the catch-up compares the root a part at a time (`CATCH_UP_CHILDREN_AT_ONCE`
/// children, here 4 directories of 1,000 files), not the view's copy of every file beside
/// the walk's capture of every file (measured 1,135 to 1,148 so, session 33). What is left
/// per file is the signed baseline read whole to fill the view file at the start and the
/// index of inodes (issue 15). Measured 1,117 to 1,130 with the whole comparison, 840 to
/// 1,042 in parts of 16 children (what the allocator kept in the arenas of the threads
/// that walked and hashed the parts, seen once watching), 590 to 607 in parts of 4
/// (session 34; the peak is then what is held once watching).
const WATCH_ON_DISK_PEAK_BYTES_PER_FILE: u64 = 850;

#[test]
fn watch_with_the_view_on_disk_holds_less_once_watching() {
    // Issue 15: the view of every root held ~300 bytes per watched file for as long as
    // the watcher ran. On disk, what is left once watching is the rest of the guard.
    let dir = tempfile::tempdir().expect("tempdir");
    let (fixed_peak, fixed_idle) = watch_restart_memory(dir.path(), 1, true);
    let (large_peak, large_idle) = watch_restart_memory(dir.path(), WATCHED_FILES, true);
    let per_file = large_peak.saturating_sub(fixed_peak) / WATCHED_FILES as u64;
    let idle = large_idle.saturating_sub(fixed_idle) / WATCHED_FILES as u64;
    eprintln!(
        "watch restart, view on disk: peak {per_file}, idle {idle} bytes per file above a \
         1-file run"
    );
    assert!(
        per_file <= WATCH_ON_DISK_PEAK_BYTES_PER_FILE,
        "watch restart, view on disk: peak {per_file} bytes per file (bound \
         {WATCH_ON_DISK_PEAK_BYTES_PER_FILE})"
    );
    assert!(
        idle <= WATCH_ON_DISK_IDLE_BYTES_PER_FILE,
        "watch restart, view on disk: idle {idle} bytes per file (bound \
         {WATCH_ON_DISK_IDLE_BYTES_PER_FILE})"
    );
}

/// Files of the root whose view file is damaged and rebuilt below (session 37: how long a
/// rebuild of a root of 100,000 entries holds the guard's views).
const REBUILT_FILES: usize = 100_000;

/// `field` of `/proc/PID/status` (a `kB` value), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        * 1024
}

/// (how long the rebuild held the views, as the warning says, in ms: the lookups' wait
/// for it and its putting in place; the resident set's peak during it above the resident
/// set before it, in bytes) of a watcher whose view
/// file of a root of `files` files is damaged once (one row's MAC zeroed, as root on the
/// host can) and the damaged file then looked up.
fn rebuild_cost(dir: &Path, files: usize) -> (u64, u64) {
    let home = dir.join(format!("rebuild-home-{files}"));
    let tree = dir.join(format!("rebuild-tree-{files}"));
    fs::create_dir(&tree).expect("mkdir");
    tree_of(&tree, files, FILES_PER_DIR);
    for args in [
        &["init"][..],
        &["profile", tree.to_str().expect("utf-8 temp path")],
    ] {
        let out = pacsguard()
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config = home.join("config.toml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(
        &config,
        format!("{text}\n[watch]\nview_on_disk = true\nscrub_mb_per_s = 0\n"),
    )
    .expect("config");
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacsguard"))
        .env("RAYON_NUM_THREADS", THREADS)
        .arg("--home")
        .arg(&home)
        .arg("watch")
        .arg("--json")
        .stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"))
        .spawn()
        .expect("watch starts");
    let started = std::time::Instant::now();
    let said =
        |file: &Path, text: &str| fs::read_to_string(file).unwrap_or_default().contains(text);
    while !said(err.path(), "watching for changes") {
        if started.elapsed() > WATCH_START_LIMIT || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            panic!(
                "watch did not start: {}",
                fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The peak so far (the start's) forgotten: the peak read after is the rebuild's.
    fs::write(format!("/proc/{}/clear_refs", child.id()), "5").expect("reset the peak");
    let before = proc_status_bytes(child.id(), "VmRSS:");
    let first = "series0000/000000.dcm";
    let damaged = Command::new("sqlite3")
        .args(["-cmd", ".timeout 60000"])
        .arg(home.join("watch-view-0.sqlite"))
        .arg(format!(
            "UPDATE view SET mac = zeroblob(32) WHERE rel = CAST('{first}' AS BLOB); SELECT changes();"
        ))
        .output()
        .expect("sqlite3 runs (scripts/setup-test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&damaged.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    // Opened for writing and closed unchanged: the file is looked up in the view.
    drop(
        fs::OpenOptions::new()
            .write(true)
            .open(tree.join(first))
            .expect("test fixture"),
    );
    let asked = std::time::Instant::now();
    while !said(out.path(), "rebuilt from the signed baseline") {
        if asked.elapsed() > WATCH_START_LIMIT || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            panic!(
                "no rebuild said: {}",
                fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let said_after = asked.elapsed();
    let peak = proc_status_bytes(child.id(), "VmHWM:");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    child.wait().expect("wait");
    let findings = fs::read_to_string(out.path()).unwrap_or_default();
    let warning: serde_json::Value = findings
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|f| {
            f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("rebuilt from the signed baseline"))
        })
        .expect("the rebuild said");
    let detail = warning["detail"].as_str().unwrap_or_default().to_string();
    let number_before = |marker: &str| -> u64 {
        let at = detail
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in {detail}"));
        detail[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before {marker:?} in {detail}"))
    };
    let entries = number_before(" entries, built in ");
    let built = number_before(" ms beside it");
    let swapped = number_before(" ms; lookups");
    let waited = number_before(" ms in all");
    let took = swapped + waited;
    assert!(entries > files as u64, "the whole root rebuilt: {detail}");
    eprintln!(
        "rebuild of a view of {entries} entries: built in {built} ms off the views' lock; \
         held the views {took} ms ({waited} ms a lookup of the damaged row waited, \
         {swapped} ms to put it in place; said {} ms after the lookup), resident peak {} \
         KiB above the {} KiB before",
        said_after.as_millis(),
        peak.saturating_sub(before) / 1024,
        before / 1024
    );
    (took, peak.saturating_sub(before))
}

/// Resident memory a rebuild of a view file from the signed baseline may add to the
/// watcher's, per entry of the root, debug build: the new file's page cache
/// (`VIEW_CACHE_KIB`, 4 MiB) and one chunk of the store at a time, nothing per entry.
/// Emptied and filled again in place, the file's journal (in memory) kept every page the
/// rebuild rewrote: measured 202 (session 37, 100,101 entries, 19,768 KiB), the whole
/// view file, at a rebuild someone who can write the home brings about. Made beside it
/// and renamed in its place: measured 13 (1,288 KiB).
const REBUILD_BYTES_PER_FILE: u64 = 130;

/// How long a rebuild of the view of `REBUILT_FILES` files may hold the guard's views,
/// in ms (debug build, on a machine shared with other builds): a lookup of the damaged
/// row waiting for it (`view::MAX_REBUILD_WAIT`, 250) and the rename of the rebuilt file
/// into place. Made under the lock, the rebuild held it its whole length: 1,067 ms
/// (session 37), 1,661 ms (session 38, the same run as after, before the change).
const REBUILD_HOLD_MS: u64 = 600;

#[test]
fn a_rebuild_of_a_large_view_on_disk_holds_its_page_cache_not_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (took, above) = rebuild_cost(dir.path(), REBUILT_FILES);
    let per_file = above / REBUILT_FILES as u64;
    eprintln!("rebuild: held the views {took} ms, {per_file} bytes per file above idle");
    assert!(
        per_file <= REBUILD_BYTES_PER_FILE,
        "a rebuild of the view file: {per_file} bytes per file (bound {REBUILD_BYTES_PER_FILE})"
    );
    assert!(
        took <= REBUILD_HOLD_MS,
        "a rebuild held the guard's views {took} ms (bound {REBUILD_HOLD_MS})"
    );
}
