//! The ransomware suite of `pacsguard watch`: the real binary, real kernel events, real
//! files. Each attack pattern must raise `ransomware-suspected` (and each changed file its
//! own finding); each benign pattern must raise no alert at all. The long-window
//! thresholds are shortened here through the configuration (`bench/ransomware.sh` runs
//! the defaults) so a slow attack takes seconds, not minutes.

mod common;
mod watcher;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Env;
use pacsguard_testkit::DicomBuilder;
use serde_json::Value;
use watcher::{Watcher, configure, image_store, keystream, kinds, python_saying, tally};

fn count(findings: &[Value], kind: &str) -> usize {
    kinds(findings).iter().filter(|k| *k == kind).count()
}

/// Declares a maintenance window of ten minutes on `root` while `watcher` runs, and
/// waits until the watcher has taken it (its `maintenance-window` finding).
fn open_window(env: &Env, watcher: &Watcher, root: &Path, reason: &str) {
    let declared = env.run(&[
        "maintenance",
        "start",
        root.to_str().expect("test fixture"),
        "--until",
        "10min",
        "--reason",
        reason,
    ]);
    assert!(declared.status.success(), "{}", common::stderr(&declared));
    // Issue 11, session 50: the command returns once the watcher has taken the window
    // (it returned before, and a change made right after could be judged outside it).
    assert!(
        common::stdout(&declared).contains("acknowledged by the running watcher"),
        "{}{}",
        common::stdout(&declared),
        common::stderr(&declared)
    );
    let opened = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "maintenance-window") == 1
    });
    assert!(opened, "{:#?}", watcher.findings());
}

/// Asserts that `findings` hold a `pixel-data-changed` of `path` of this severity.
fn assert_pixels_changed(findings: &[Value], path: &Path, severity: &str) {
    assert!(
        findings.iter().any(|f| f["kind"] == "pixel-data-changed"
            && f["severity"] == severity
            && f["path"].as_str() == path.to_str()),
        "{} {severity}: {findings:#?}",
        path.display()
    );
}

fn alerts(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| f["kind"] == "ransomware-suspected")
        .collect()
}

/// Whether an alert names a mass writer (a process holding many stored images open for
/// writing), rather than counting the changes verified.
fn names_a_mass_writer(alert: &Value) -> bool {
    alert["fields"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "mass-writer"))
}

/// The alerts that count verified changes.
fn change_alerts(findings: &[Value]) -> Vec<&Value> {
    alerts(findings)
        .into_iter()
        .filter(|a| !names_a_mass_writer(a))
        .collect()
}

/// Nothing but info, apart from a kernel queue overflow other tests may cause on the
/// same file system.
fn assert_no_alarm(findings: &[Value]) {
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] != "info" && f["kind"] != "events-lost")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

fn encrypt(path: &Path, seed: u64) {
    let len = fs::metadata(path).expect("test fixture").len() as usize;
    fs::write(path, keystream(len, seed)).expect("test fixture");
}

/// A new CT instance, as a PACS receiver would write it.
fn instance(i: usize) -> Vec<u8> {
    DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.7.{i}")).build()
}

#[test]
fn a_paced_part_then_rename_ingest_is_arrivals_not_moves() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 10);
    let watcher = Watcher::start(&env, &[]);
    let incoming = env.path("archive/incoming");
    fs::create_dir_all(&incoming).expect("test fixture");
    std::thread::sleep(Duration::from_millis(300));
    let mut names = Vec::new();
    // About 4 files a second, as a PACS receiver or rsync writes: `X.part`, then `X`.
    for i in 0..16 {
        let part = incoming.join(format!("{i}.dcm.part"));
        fs::write(&part, instance(i)).expect("test fixture");
        fs::rename(&part, incoming.join(format!("{i}.dcm"))).expect("test fixture");
        names.push(format!("archive/incoming/{i}.dcm"));
        std::thread::sleep(Duration::from_millis(250));
    }
    // And renamed long after it was written (the watcher has seen `X.part` by then).
    for i in 16..20 {
        let part = incoming.join(format!("{i}.dcm.part"));
        fs::write(&part, instance(i)).expect("test fixture");
        std::thread::sleep(Duration::from_millis(1500));
        fs::rename(&part, incoming.join(format!("{i}.dcm"))).expect("test fixture");
        names.push(format!("archive/incoming/{i}.dcm"));
    }
    let done = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        names
            .iter()
            .all(|n| t.contains_key(&("added".to_string(), n.clone())))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(done, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
    assert_eq!(count(&findings, "moved"), 0, "{findings:#?}");
    let t = tally(&findings, &env.tree);
    for name in &names {
        assert_eq!(
            t.get(&("added".to_string(), name.clone())),
            Some(&1),
            "{name}"
        );
    }
}

/// Busy processes (a pure-Python loop each) that keep the cores loaded while they live:
/// killed when dropped, whatever happens.
struct Busy(Vec<std::process::Child>);
impl Busy {
    fn start(count: usize) -> Busy {
        Busy(
            (0..count)
                .map(|_| {
                    std::process::Command::new("python3")
                        .args(["-c", "while True: pass"])
                        .spawn()
                        .expect("python3 runs")
                })
                .collect(),
        )
    }
}
impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Issue 11 (session 10): a paced ingest (`X.part` written and closed, then renamed to
/// `X`, 4 files a second) on a busy machine left `added X.part` info lines: a new file
/// closed waited only RENAME_GRACE (20 ms) for its rename, so a receiver that looks at
/// what it received before renaming it, or that was not scheduled in time, had its
/// `.part` judged alone. A new file with an in-transit name now waits for its rename (or
/// for the settle time): each arrival is one `added X`, whatever the load. Here the
/// receiver takes 100 ms between its close and its rename, with three busy processes
/// on the cores.
#[test]
fn a_paced_part_ingest_on_a_busy_machine_leaves_no_part_line() {
    const FILES: usize = 20;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 5);
    let watcher = Watcher::start(&env, &[]);
    let incoming = env.path("archive/incoming");
    fs::create_dir_all(&incoming).expect("test fixture");
    std::thread::sleep(Duration::from_millis(300));
    let busy = Busy::start(3);
    let mut names = Vec::new();
    for i in 0..FILES {
        let part = incoming.join(format!("{i}.dcm.part"));
        fs::write(&part, instance(i)).expect("test fixture");
        std::thread::sleep(Duration::from_millis(100));
        fs::rename(&part, incoming.join(format!("{i}.dcm"))).expect("test fixture");
        names.push(format!("archive/incoming/{i}.dcm"));
        std::thread::sleep(Duration::from_millis(150));
    }
    let done = watcher.wait(Duration::from_secs(60), |f, _| {
        let t = tally(f, &env.tree);
        names
            .iter()
            .all(|n| t.contains_key(&("added".to_string(), n.clone())))
    });
    drop(busy);
    std::thread::sleep(Duration::from_secs(3));
    let (_, findings, stderr) = watcher.stop();
    assert!(done, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
    let parts: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str().is_some_and(|p| p.ends_with(".part")))
        .collect();
    assert!(parts.is_empty(), "no line about a .part: {parts:#?}");
    assert_eq!(count(&findings, "moved"), 0, "{findings:#?}");
    let t = tally(&findings, &env.tree);
    for name in &names {
        assert_eq!(
            t.get(&("added".to_string(), name.clone())),
            Some(&1),
            "{name}"
        );
    }
}

#[test]
fn a_temp_and_rename_save_is_one_change_and_nothing_else() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let config = env.path("etc/app.conf");
    fs::create_dir_all(config.parent().expect("test fixture")).expect("test fixture");
    fs::write(&config, "port = 104\n").expect("test fixture");
    env.profile(&["--policy", "static"]);
    let watcher = Watcher::start(&env, &[]);
    // sed -i writes a temporary file beside the original and renames it over it.
    for (i, port) in [11112, 4242, 2762].iter().enumerate() {
        let status = std::process::Command::new("sed")
            .args(["-i", &format!("s/= .*/= {port}/")])
            .arg(&config)
            .status()
            .expect("sed runs");
        assert!(status.success());
        let want = i + 1;
        let seen = watcher.wait(Duration::from_secs(10), |f, _| {
            count(f, "content-changed") >= want
        });
        assert!(seen, "{:#?}", watcher.findings());
    }
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    // The edit is one alert per save (static root); sed's temporary files, which existed
    // only between two looks, are nothing, and the edited file is never `unstable` (see
    // `saves_landing_while_a_big_batch_is_hashed_are_never_unstable`).
    assert!(
        findings.iter().all(|f| {
            let kind = f["kind"].as_str().unwrap_or_default();
            kind == "content-changed" || kind == "events-lost"
        }),
        "{findings:#?}\n{stderr}"
    );
}

/// The cause of the flake above, made likely: `sed -i` saves landing while the watcher
/// hashes a big batch of arrivals verified together with the edited file, so the file is
/// replaced between the walk that saw it and its hashing. That is a new file at the path,
/// looked at again, never `unstable` (which the hashing said before: it hashes only the
/// inode the walk saw, and the path held another on every attempt).
#[test]
fn saves_landing_while_a_big_batch_is_hashed_are_never_unstable() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let config = env.path("etc/app.conf");
    fs::create_dir_all(config.parent().expect("test fixture")).expect("test fixture");
    fs::write(&config, "port = 104\n").expect("test fixture");
    env.profile(&["--policy", "static"]);
    let watcher = Watcher::start(&env, &[]);
    let tree = env.tree.clone();
    // Arrivals sorted before `etc/`, verified in the same turns as the saves.
    let ingest = std::thread::spawn(move || {
        for round in 0..20 {
            let dir = tree.join(format!("a/{round}"));
            fs::create_dir_all(&dir).expect("test fixture");
            for i in 0..300 {
                fs::write(dir.join(format!("{i}.dat")), vec![round as u8; 64 << 10])
                    .expect("test fixture");
            }
        }
    });
    for port in 0..60 {
        let status = std::process::Command::new("sed")
            .args(["-i", &format!("s/= .*/= {port}/")])
            .arg(&config)
            .status()
            .expect("sed runs");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(15));
    }
    ingest.join().expect("ingest");
    let settled = watcher.wait(Duration::from_secs(60), |f, _| {
        f.iter().filter(|f| f["kind"] == "added").count() >= 20 * 300
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(settled, "{stderr}");
    let unstable: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "unstable")
        .collect();
    assert!(unstable.is_empty(), "{unstable:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "content-changed"
                && f["path"] == config.to_string_lossy().as_ref()),
        "{stderr}"
    );
}

/// Files encrypted one at a time, `pace` apart, in a store whose slow-rewrite score is
/// shortened to `long_files` files.
fn slow_attack(pace: Duration, long_files: usize) {
    slow_attack_with(
        pace,
        &format!("ransomware_long_files = {long_files}\n"),
        long_files,
    );
}

/// Files encrypted one at a time, `pace` apart, under `config`: the alert must come
/// within two files of `expected`.
fn slow_attack_with(pace: Duration, config: &str, expected: usize) {
    let long_files = expected;
    let env = Env::new();
    configure(&env, &format!("scrub_mb_per_s = 0\n{config}"));
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let mut lost = 0;
    for (i, path) in paths.iter().enumerate() {
        if count(&watcher.findings(), "ransomware-suspected") > 0 {
            break;
        }
        encrypt(path, i as u64 + 1);
        lost += 1;
        std::thread::sleep(pace);
    }
    let raised = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(lost <= long_files + 2, "{lost} files lost before the alert");
    let detail = alerts(&findings)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("a slow, steady rewrite"), "{detail}");
    // Each encrypted file is its own finding as well.
    let t = tally(&findings, &env.tree);
    for path in &paths[..lost] {
        let rel = path
            .strip_prefix(&env.tree)
            .expect("test fixture")
            .display()
            .to_string();
        assert!(
            t.keys()
                .any(|(k, p)| *p == rel && k != "ransomware-suspected"),
            "{rel}: {findings:#?}"
        );
    }
}

#[test]
fn slow_encryption_at_0_6_s_a_file_raises_ransomware_suspected() {
    slow_attack(Duration::from_millis(600), 6);
}

#[test]
fn slow_encryption_at_2_s_a_file_raises_ransomware_suspected() {
    slow_attack(Duration::from_secs(2), 4);
}

/// A rewrite too slow for the decaying score (here: it halves every second) is still
/// called once it has touched `ransomware_total_files` guarded files.
#[test]
fn a_rewrite_slower_than_the_score_sees_is_called_at_the_total() {
    slow_attack_with(
        Duration::from_millis(300),
        "ransomware_long_files = 1000\nransomware_half_life_seconds = 1\nransomware_total_files = 5\n",
        5,
    );
}

#[test]
fn a_decoy_alert_does_not_hide_the_attack_that_follows() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_window_seconds = 3\n");
    let paths = image_store(&env, 150);
    let watcher = Watcher::start(&env, &[]);
    // The decoy: 25 deletions, twice.
    for path in &paths[..25] {
        fs::remove_file(path).expect("test fixture");
    }
    let first = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "ransomware-suspected") == 1
    });
    assert!(first, "{:#?}", watcher.findings());
    for path in &paths[25..50] {
        fs::remove_file(path).expect("test fixture");
    }
    // The attack, once the decoy's alert has been raised and a window has passed.
    std::thread::sleep(Duration::from_secs(3));
    let start = Instant::now();
    for (i, path) in paths[50..].iter().enumerate() {
        encrypt(path, i as u64 + 11);
    }
    let again = watcher.wait(Duration::from_secs(15), |f, _| {
        alerts(f).iter().any(|a| {
            a["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no longer DICOM"))
        })
    });
    let at = start.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(again, "{findings:#?}\n{stderr}");
    assert!(at < Duration::from_secs(5), "after {at:?}");
    let second = alerts(&findings)
        .into_iter()
        .find(|a| {
            a["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no longer DICOM"))
        })
        .expect("test fixture")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        second.contains("since the previous ransomware-suspected alert"),
        "{second}"
    );
}

#[test]
fn renaming_whole_study_directories_counts_their_files() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    // Five studies of 20 instances: five renames, a hundred files.
    image_store(&env, 100);
    let watcher = Watcher::start(&env, &[]);
    let start = Instant::now();
    for study in 0..5 {
        let dir = env.path(&format!("archive/study{study}"));
        let mut locked: PathBuf = dir.clone();
        locked.set_extension("locked");
        fs::rename(&dir, &locked).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    let at = start.elapsed();
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(at < Duration::from_secs(5), "after {at:?}");
    let detail = alerts(&findings)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("renamed to .locked"), "{detail}");
    // Each renamed directory is its own finding, saying how many files it carried.
    assert_eq!(count(&findings, "moved"), 5, "{findings:#?}");
}

/// With the view on disk, root on the host zeroes every row's MAC with sqlite3, then
/// encrypts the images behind them (issue 15 review): still content changes and
/// `ransomware-suspected`, never arrivals (a row that fails is a file of unknown state).
#[test]
fn encryption_behind_view_rows_altered_with_sqlite3_is_still_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    let paths = image_store(&env, 60);
    let watcher = Watcher::start(&env, &[]);
    let status = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .arg("UPDATE view SET mac = zeroblob(32);")
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    for (i, path) in paths.iter().enumerate() {
        encrypt(path, i as u64);
    }
    let raised = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "added"), 0, "{findings:#?}");
    assert!(count(&findings, "watch-state-altered") > 0);
}

/// With the view on disk, root drops the view's table while the watcher runs, then
/// encrypts the images and deletes one (review rv33b-watch: the view was left for the
/// signed baseline only at the start, so every change after a failure mid-run was an
/// arrival and a removal nothing): the failure is found at the next lookup and the view
/// is the baseline from that turn on, so the encryption is `ransomware-suspected` and
/// the removal is seen.
#[test]
fn encryption_after_the_view_file_is_dropped_mid_run_is_still_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nview_on_disk = true\n");
    let paths = image_store(&env, 60);
    let watcher = Watcher::start(&env, &[]);
    let status = std::process::Command::new("sqlite3")
        .arg(env.home.join("watch-view-0.sqlite"))
        .arg("DROP TABLE view;")
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    for (i, path) in paths.iter().enumerate() {
        encrypt(path, i as u64);
    }
    let raised = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    fs::remove_file(&paths[0]).expect("test fixture");
    let removed = watcher.wait(Duration::from_secs(30), |f, _| count(f, "removed") > 0);
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(removed, "{findings:#?}\n{stderr}");
    assert!(count(&findings, "watch-state-altered") > 0, "{findings:#?}");
}

#[test]
fn plain_copy_in_raises_no_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 10);
    let watcher = Watcher::start(&env, &[]);
    // `cp -r` of a study from elsewhere: real DICOM files written by others.
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut copied = 0;
    for entry in fs::read_dir(&samples).expect("pydicom samples (scripts/setup-test-deps.sh)") {
        let path = entry.expect("test fixture").path();
        if path.extension().is_some_and(|e| e == "dcm") && copied < 30 {
            fs::copy(&path, staging.join(path.file_name().expect("test fixture")))
                .expect("test fixture");
            copied += 1;
        }
    }
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&staging)
        .arg(env.path("archive/copied"))
        .status()
        .expect("cp runs");
    assert!(status.success());
    let done = watcher.wait(Duration::from_secs(30), |f, _| {
        tally(f, &env.tree)
            .keys()
            .filter(|(k, p)| k == "added" && p.starts_with("archive/copied/"))
            .count()
            >= copied
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(done, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0);
    // Screening may rightly note a sample's odd preamble (info) or a malformed sample:
    // none of it is a move, a removal or a rewrite.
    for kind in ["moved", "removed", "content-changed", "no-longer-dicom"] {
        assert_eq!(count(&findings, kind), 0, "{kind}: {findings:#?}");
    }
}

#[test]
fn encryption_through_hard_links_outside_the_tree_is_seen() {
    if !common::is_root() {
        return; // writes outside every watched directory reach only fanotify (root)
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 60);
    let watcher = Watcher::start(&env, &[]);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    let start = Instant::now();
    for (i, path) in paths.iter().enumerate() {
        let link = outside.join(format!("x{i}"));
        fs::hard_link(path, &link).expect("test fixture");
        encrypt(&link, i as u64 + 5);
        fs::remove_file(&link).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    let at = start.elapsed();
    let everyone = watcher.wait(Duration::from_secs(10), |f, _| {
        let t = tally(f, &env.tree);
        paths.iter().all(|p| {
            let rel = p
                .strip_prefix(&env.tree)
                .expect("test fixture")
                .display()
                .to_string();
            t.contains_key(&("no-longer-dicom".to_string(), rel))
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(at < Duration::from_secs(5), "after {at:?}");
    assert!(
        everyone,
        "each encrypted file is its own finding: {findings:#?}"
    );
    let detail = alerts(&findings)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("through a hard link at"), "{detail}");
}

#[test]
fn encryption_through_a_held_shared_mapping_is_seen_within_seconds() {
    held_mapping_attack(false);
}

/// Review finding: mappings were matched by path, so a file mapped through a hard link
/// outside the root was seen only when the holder exited. They are matched by inode.
#[test]
fn encryption_through_a_held_mapping_of_a_hard_link_outside_is_seen_within_seconds() {
    held_mapping_attack(true);
}

/// Open, map shared, close, then encrypt every file through its mapping, and hold the
/// mappings: the kernel reports nothing until they go away. With `through_links`, each
/// file is mapped through a hard link made outside the tree.
fn held_mapping_attack(through_links: bool) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let targets: Vec<PathBuf> = if through_links {
        let outside = env.dir.path().join("outside");
        fs::create_dir_all(&outside).expect("test fixture");
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let link = outside.join(format!("x{i}"));
                fs::hard_link(p, &link).expect("test fixture");
                link
            })
            .collect()
    } else {
        paths.clone()
    };
    let list = targets
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(",");
    // The mappings are made first, and the close of each descriptor (a close after
    // opening for writing, which the kernel reports) is verified while nothing has
    // changed yet; only then does the encryption start, through the mappings alone.
    let script = format!(
        "import mmap,os,sys,time\nheld=[]\nfor p in [{list}]:\n    fd=os.open(p,os.O_RDWR)\n    held.append(mmap.mmap(fd,0))\n    os.close(fd)\nprint('mapped',flush=True)\nsys.stdin.readline()\nfor m in held:\n    m[:]=os.urandom(len(m))\nprint('encrypted',flush=True)\ntime.sleep(60)\n"
    );
    let mut attacker = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(attacker.stdout.take().expect("test fixture"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "mapped");
    std::thread::sleep(Duration::from_secs(2));
    let before = count(&watcher.findings(), "no-longer-dicom");
    assert_eq!(before, 0, "nothing changed yet: {:#?}", watcher.findings());
    let start = Instant::now();
    std::io::Write::write_all(attacker.stdin.as_mut().expect("test fixture"), b"go\n")
        .expect("test fixture");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "encrypted");
    // The alert on the changes (the holder of every mapping may have been named a
    // mass writer already, before anything changed).
    let raised = watcher.wait(Duration::from_secs(15), |f, _| !change_alerts(f).is_empty());
    let at = start.elapsed();
    let still_held = attacker.try_wait().expect("test fixture").is_none();
    let _ = attacker.kill();
    let _ = attacker.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(
        still_held,
        "found while the mappings were held, not at the exit"
    );
    assert!(at < Duration::from_secs(5), "after {at:?}");
    // The process holding every file mapped (CPython keeps a read-write descriptor per
    // mapping) is named a mass writer as well; the alert on the changes names the
    // mapping.
    let detail = change_alerts(&findings)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("through a shared writable mapping"),
        "{detail}"
    );
    if through_links {
        assert!(detail.contains("/outside/x"), "{detail}");
    }
    // A file found written through a mapping is judged at once: the descriptor the
    // mapping keeps is not another writer whose file must first stay unchanged for the
    // settle time (that gave the attacker 2 s more).
    let waited: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "no-longer-dicom")
        .filter(|f| {
            f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("unchanged for"))
        })
        .collect();
    assert!(waited.is_empty(), "{waited:#?}");
}

/// Review finding: making a hard link to a guarded file outside the tree raised nothing
/// until the file was written. With fanotify (root), the link count rising is seen within the quiet period.
#[test]
fn a_new_hard_link_to_a_guarded_file_is_reported_at_once() {
    if !common::is_root() {
        return; // attribute changes outside every watched directory reach only fanotify
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    let status = std::process::Command::new("ln")
        .arg(&paths[1])
        .arg(outside.join("x"))
        .status()
        .expect("ln runs");
    assert!(status.success());
    let rel = paths[1]
        .strip_prefix(&env.tree)
        .expect("test fixture")
        .display()
        .to_string();
    let seen = watcher.wait(Duration::from_secs(5), |f, _| {
        tally(f, &env.tree).contains_key(&("metadata-changed".to_string(), rel.clone()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let finding = findings
        .iter()
        .find(|f| f["kind"] == "metadata-changed")
        .expect("found above");
    let detail = finding["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("nlink 1 -> 2"), "{detail}");
    assert!(detail.contains("link count changed"), "{detail}");
}

#[test]
fn a_migration_inside_a_maintenance_window_raises_no_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 60);
    let watcher = Watcher::start(&env, &[]);
    // Declared while the watcher runs (and holds the home): picked up without a restart.
    let archive = env.path("archive");
    open_window(
        &env,
        &watcher,
        &archive,
        "CHG-4711 migration of 2019 studies",
    );
    // The migration: every study copied into the archive tree, the originals deleted.
    let target = env.path("archive/2019");
    fs::create_dir_all(&target).expect("test fixture");
    for study in 0..5 {
        let from = env.path(&format!("archive/study{study}"));
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(&from)
            .arg(&target)
            .status()
            .expect("cp runs");
        assert!(status.success());
        fs::remove_dir_all(&from).expect("test fixture");
    }
    let settled = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "removed") + count(f, "moved") >= paths.len()
    });
    assert!(settled, "{:#?}", watcher.findings());
    let listed = env.run(&["maintenance", "list"]);
    assert!(
        common::stdout(&listed).contains("CHG-4711"),
        "{}",
        common::stdout(&listed)
    );
    let ended = env.run(&["maintenance", "end", "1"]);
    assert!(ended.status.success(), "{}", common::stderr(&ended));
    let closed = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "maintenance-window") == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(closed, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    let summary = findings
        .iter()
        .rev()
        .find(|f| f["kind"] == "maintenance-window")
        .and_then(|f| f["detail"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        summary.contains("removed") || summary.contains("moved"),
        "{summary}"
    );
    // On the trail: who opened it and why.
    let shown = env.run(&["audit", "show"]);
    assert!(common::stdout(&shown).contains("CHG-4711"));
}

/// Review finding: `maintenance start /` was accepted and blinded every root for a week,
/// and a window's reason or owner could be edited in `maintenance.json` unseen. A window
/// covers a guarded root or a part of one, and the watcher refuses an edited window.
#[test]
fn a_maintenance_window_beyond_the_roots_or_edited_on_disk_is_refused() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    for outside in ["/", env.dir.path().to_str().expect("test fixture")] {
        let refused = env.run(&[
            "maintenance",
            "start",
            outside,
            "--until",
            "1h",
            "--reason",
            "everything",
        ]);
        assert_eq!(refused.status.code(), Some(2), "{outside}");
        assert!(
            common::stderr(&refused).contains("is not a guarded root or inside one"),
            "{}",
            common::stderr(&refused)
        );
    }
    assert!(!env.home.join("maintenance.json").exists());
    // A window declared on a study, then edited on disk to cover the whole archive and
    // carry an approval nobody gave.
    let study = env.path("archive/study0");
    let declared = env.run(&[
        "maintenance",
        "start",
        study.to_str().expect("test fixture"),
        "--until",
        "1h",
        "--reason",
        "CHG-1 one study",
    ]);
    assert!(declared.status.success(), "{}", common::stderr(&declared));
    let opened = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "maintenance-window") == 1
    });
    assert!(opened, "{:#?}", watcher.findings());
    let file = env.home.join("maintenance.json");
    let text = fs::read_to_string(&file).expect("test fixture");
    let edited = text
        .replace("CHG-1 one study", "approved by the CISO")
        .replace("/archive/study0", "/archive");
    assert_ne!(text, edited);
    fs::write(&file, edited).expect("test fixture");
    let refused = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter().any(|f| {
            f["kind"] == "maintenance-window"
                && f["severity"] == "alert"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("is refused"))
        })
    });
    assert!(refused, "{:#?}", watcher.findings());
    // Changes below it are reported as usual.
    fs::remove_file(&paths[0]).expect("test fixture");
    let loud = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter()
            .any(|f| f["kind"] == "removed" && f["severity"] == "alert")
    });
    let (code, findings, stderr) = watcher.stop();
    assert!(loud, "{findings:#?}\n{stderr}");
    assert_eq!(code, 1);
}

/// Review finding: files that arrived while the watcher ran stayed "arrivals" forever, so
/// a study received an hour ago could be deleted or encrypted with `info` findings only.
/// Past `ARRIVAL_GRACE` (30 s; 6 s here through its test hook) a new file is a stored
/// one: its removal alerts.
///
/// Review rv43-view (case 8, issue 11): within the grace, real images stored during the
/// run and then encrypted in place (preamble and `DICM` kept, the rest random; or their
/// Pixel Data alone) or removed were `added`/`removed` info, "judged as an arrival
/// again", and no `ransomware-suspected`. An arrival judged a readable image is judged
/// against what it was when it arrived, as a stored image is against the profile. Its
/// removal within the grace stays `info` (review rv44-watch F1: an ingest's `mkdir; mv`
/// into a new study directory is seen as removals and additions): three destroyed, three
/// files for the signal.
#[test]
fn an_image_stored_during_the_run_is_guarded_once_it_has_settled() {
    const GRACE: Duration = Duration::from_secs(6);
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 3\n");
    image_store(&env, 5);
    let mut command = common::pacsguard();
    command.env(
        "PACSGUARD_TEST_ARRIVAL_GRACE_MS",
        GRACE.as_millis().to_string(),
    );
    let watcher = Watcher::start_with(&env, &[], command);
    let new_study = env.path("archive/new-study");
    fs::create_dir_all(&new_study).expect("test fixture");
    // Real images (pydicom's), and a note that is no image.
    let images = [
        "CT_small.dcm",
        "MR_small.dcm",
        "rtplan.dcm",
        "MR_small_implicit.dcm",
    ];
    for (i, name) in images.iter().enumerate() {
        fs::copy(pydicom_sample(name), new_study.join(format!("{i}.dcm"))).expect("test fixture");
    }
    let note = new_study.join("notes.txt");
    fs::write(
        &note,
        b"received from the modality, forwarded to the PACS\n",
    )
    .expect("test fixture");
    let arrived = watcher.wait(Duration::from_secs(30), |f, _| {
        tally(f, &env.tree)
            .keys()
            .filter(|(k, p)| k == "added" && p.starts_with("archive/new-study/"))
            .count()
            > images.len()
    });
    let seen_at = Instant::now();
    assert!(arrived, "{:#?}", watcher.findings());
    let before = watcher.findings().len();
    // Within the grace: encrypted whole after byte 132, Pixel Data alone, removed.
    for i in [0, 2] {
        let path = new_study.join(format!("{i}.dcm"));
        let mut bytes = fs::read(&path).expect("test fixture");
        let len = bytes.len() - 132;
        bytes[132..].copy_from_slice(&keystream(len, 40 + i as u64));
        fs::write(&path, bytes).expect("test fixture");
    }
    let pixels_only = new_study.join("3.dcm");
    let mut bytes = fs::read(&pixels_only).expect("test fixture");
    let tag = bytes
        .windows(4)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
        .expect("MR_small_implicit.dcm has Pixel Data");
    let len = u32::from_le_bytes(bytes[tag + 4..tag + 8].try_into().expect("4 bytes")) as usize;
    bytes[tag + 8..tag + 8 + len].copy_from_slice(&keystream(len, 43));
    fs::write(&pixels_only, bytes).expect("test fixture");
    fs::remove_file(new_study.join("1.dcm")).expect("the intruder deletes an image");
    let about = |f: &Value, i: usize| {
        f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("new-study/{i}.dcm")))
    };
    // The removal within the grace stays `info` (an ingest's `mkdir; mv` into a new study
    // directory is seen as removals and additions: review rv44-watch F1).
    let destroyed = watcher.wait(Duration::from_secs(30), |f, _| {
        [0, 2, 3].iter().all(|&i| {
            f[before..]
                .iter()
                .any(|f| about(f, i) && f["severity"] == "alert")
        }) && f[before..]
            .iter()
            .any(|f| about(f, 1) && f["kind"] == "removed")
            && count(f, "ransomware-suspected") >= 1
    });
    let judged_within = seen_at.elapsed();
    assert!(destroyed, "{:#?}", watcher.findings());
    let findings = watcher.findings();
    for (i, kind, severity) in [
        (0, "no-longer-dicom", "alert"),
        (1, "removed", "info"),
        (2, "no-longer-dicom", "alert"),
        (3, "pixel-data-changed", "alert"),
    ] {
        let found = findings[before..]
            .iter()
            .find(|f| about(f, i) && f["kind"] == kind)
            .expect("found above");
        assert_eq!(found["severity"], severity, "{found:#}");
        assert_eq!(found["kind"], kind, "{found:#}");
        // Judged as the image it arrived as, within the grace: not as a settled file.
        assert!(
            found["detail"]
                .as_str()
                .is_some_and(|d| d.contains("it arrived during this run")),
            "{found:#}"
        );
    }
    assert!(
        judged_within < GRACE,
        "judged past the grace: {judged_within:?}"
    );
    // Past the grace, the note is a stored file too: its removal alerts.
    std::thread::sleep(GRACE.saturating_sub(seen_at.elapsed()) + Duration::from_secs(1));
    fs::remove_file(&note).expect("the intruder deletes the note");
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        f.iter()
            .any(|f| f["kind"] == "removed" && f["path"].as_str() == note.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let removed = findings
        .iter()
        .find(|f| f["kind"] == "removed" && f["path"].as_str() == note.to_str())
        .expect("found above");
    assert_eq!(removed["severity"], "alert", "{removed:#}");
}

/// Review finding: the images the start-up catch-up found new (stored while no watcher
/// ran) counted as arrivals in transit for 30 s, so removing them right after a start was
/// `info` and exit 0. They are stored images: removing one at once alerts.
#[test]
fn what_the_catch_up_finds_new_is_no_arrival_in_transit() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 5);
    let stored = env.path("archive/while-down");
    fs::create_dir_all(&stored).expect("test fixture");
    for i in 0..3 {
        fs::write(stored.join(format!("{i}.dcm")), instance(700 + i)).expect("test fixture");
    }
    // Settled before the start (a file written within the quiet period is left for a
    // later look, as a file still being written would be).
    std::thread::sleep(Duration::from_secs(1));
    let watcher = Watcher::start(&env, &[]);
    let caught_up = watcher.wait(Duration::from_secs(30), |f, _| {
        tally(f, &env.tree)
            .keys()
            .filter(|(k, p)| k == "added" && p.starts_with("archive/while-down/"))
            .count()
            >= 3
    });
    assert!(caught_up, "{:#?}", watcher.findings());
    // Well within ARRIVAL_GRACE of the start.
    fs::remove_file(stored.join("0.dcm")).expect("the intruder deletes an image");
    let is_removal = |f: &Value| {
        f["kind"] == "removed"
            && f["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("while-down/0.dcm"))
    };
    let seen = watcher.wait(Duration::from_secs(20), |f, _| f.iter().any(is_removal));
    let (code, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let removed = findings
        .iter()
        .find(|f| is_removal(f))
        .expect("found above");
    assert_eq!(removed["severity"], "alert", "{removed:#}");
    assert_eq!(code, 1);
}

/// Review finding: 58 stored images encrypted (openssl enc) while a migration window was
/// open were 58 `info` findings and no alert. A migration never leaves an image as bytes
/// that are not DICOM; encryption does: that stays an alert inside a window, and counts.
#[test]
fn encryption_inside_a_maintenance_window_still_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 30);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4712 migration");
    for (i, path) in paths.iter().enumerate() {
        encrypt(path, i as u64);
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let lost = findings
        .iter()
        .filter(|f| f["kind"] == "no-longer-dicom" && f["severity"] == "alert")
        .count();
    assert!(lost >= 20, "{findings:#?}");
}

/// Review rv35-watch: inside a window, `openssl enc -in imN.dcm -out imN.dcm.enc; rm
/// imN.dcm` for 30 images was 30 `added` and 30 `removed`, all info, and no
/// `ransomware-suspected`: a new name and a removal are what a migration makes too.
/// Encryption is judged by the content: a new file of random bytes in an image store is
/// no migration, an alert that counts, whatever its name. Real `openssl enc`.
#[test]
fn inside_a_window_images_encrypted_to_new_names_and_removed_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 30);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7001 migration");
    let mut locked = Vec::new();
    for path in &paths {
        let to = path.with_extension("dcm.enc");
        let status = std::process::Command::new("openssl")
            .args(["enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:x", "-in"])
            .arg(path)
            .arg("-out")
            .arg(&to)
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl enc");
        fs::remove_file(path).expect("test fixture");
        locked.push(to);
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let alerted = locked
        .iter()
        .filter(|p| {
            findings.iter().any(|f| {
                f["kind"] == "added"
                    && f["severity"] == "alert"
                    && f["path"].as_str() == p.to_str()
                    && f["detail"].as_str().is_some_and(|d| d.contains("random"))
            })
        })
        .count();
    assert!(alerted >= 20, "{alerted} of 30: {findings:#?}");
}

/// Review rv35-watch: inside a window, an image's Pixel Data encrypted and its SOP
/// Instance UID changed in a temp file, renamed in under a new name, the stored image
/// removed, was `added` and `removed`, both info: matched with nothing (its UID is new),
/// nothing judged it. A DICOM file arriving inside a window whose Pixel Data is random
/// alerts and counts, whatever UID it claims; one whose pixels are structured does not.
#[test]
fn inside_a_window_an_image_encrypted_under_a_new_uid_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = image_store(&env, 8);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7002 migration");
    let mut locked = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let bytes = DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.77.{i}"))
            .pixels(pacsguard_testkit::Pixels::Native(keystream(
                65_536,
                70 + i as u64,
            )))
            .build();
        let temp = path.with_extension("tmp");
        fs::write(&temp, bytes).expect("test fixture");
        let to = path.with_extension("dcm.locked");
        fs::rename(&temp, &to).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
        locked.push(to);
    }
    // An honest arrival beside them: a new image, structured pixels.
    let honest = archive.join("study0/new.dcm");
    fs::write(&honest, instance(1)).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == honest.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let softened: Vec<&PathBuf> = locked
        .iter()
        .filter(|p| {
            !findings.iter().any(|f| {
                f["kind"] == "added"
                    && f["severity"] == "alert"
                    && f["path"].as_str() == p.to_str()
                    && f["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("Pixel Data"))
            })
        })
        .collect();
    assert!(
        softened.is_empty(),
        "softened: {softened:#?}\n{findings:#?}"
    );
    let arrival = findings
        .iter()
        .find(|f| f["kind"] == "added" && f["path"].as_str() == honest.to_str())
        .expect("waited for above");
    assert_eq!(arrival["severity"], "info", "{arrival:#}");
}

/// Review rv35-watch: inside a window, a stored image removed, then another file sent
/// with its SOP Instance UID (the image processed again: each pixel value + 1,
/// structured) raised an alert saying "random bytes ... encrypted?" and named no stored
/// file. Another file matched by its UID alone is judged by its content: its pixels are
/// not random, so it stays info, and its finding says which stored file it was compared
/// with; the same arrival with random pixels alerts.
#[test]
fn inside_a_window_another_file_under_a_removed_images_uid_is_judged_by_its_content() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7003 re-send");
    for path in &paths {
        fs::remove_file(path).expect("test fixture");
    }
    let removed = watcher.wait(Duration::from_secs(20), |f, _| count(f, "removed") == 2);
    assert!(removed, "{:#?}", watcher.findings());
    // image_store's pixels of image `i`, each value + 1, or random bytes.
    let resent = |i: usize, random: bool| {
        let pixels: Vec<u8> = if random {
            keystream(65_536, 90 + i as u64)
        } else {
            (0..65_536 / 2)
                .flat_map(|j| ((((j * 31 + i) % 4096) + 1) as u16).to_le_bytes())
                .collect()
        };
        DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.9.{i}"))
            .pixels(pacsguard_testkit::Pixels::Native(pixels))
            .build()
    };
    let processed = archive.join("study0/resent-0.dcm");
    let encrypted = archive.join("study1/resent-1.dcm");
    fs::write(&processed, resent(0, false)).expect("test fixture");
    fs::write(&encrypted, resent(1, true)).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        [&processed, &encrypted].iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let of = |path: &Path| -> Vec<&Value> {
        findings
            .iter()
            .filter(|f| f["path"].as_str() == path.to_str())
            .collect()
    };
    let sent_again = of(&processed);
    let loud: Vec<&&Value> = sent_again
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "an honest re-send alerted: {loud:#?}");
    let compared = sent_again
        .iter()
        .find(|f| f["kind"] == "pixel-data-changed")
        .expect("waited for above");
    let detail = compared["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(paths[0].to_str().expect("test fixture")) && !detail.contains("random"),
        "{compared:#}"
    );
    assert_pixels_changed(&findings, &encrypted, "alert");
}

/// Review rv35-watch: two stored copies of one instance (the same SOP Instance UID),
/// one of them encrypted in a temp file, renamed in under a new name and removed: the
/// index kept one inode per UID, the other copy's, still on disk, so the replacement was
/// compared with nothing. This batch's removals are searched by UID first and every
/// copy is indexed: it is compared with its own stored entry, named in its finding.
#[test]
fn inside_a_window_one_of_two_stored_copies_replaced_is_compared_with_its_own_entry() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    const UID: &str = "1.2.826.0.1.3680043.10.1137.78.1";
    let structured: Vec<u8> = (0..32_768u32)
        .flat_map(|j| ((j * 31 % 4096) as u16).to_le_bytes())
        .collect();
    let image = |pixels: Vec<u8>| {
        DicomBuilder::ct(UID)
            .pixels(pacsguard_testkit::Pixels::Native(pixels))
            .build()
    };
    let copy_a = archive.join("a.dcm");
    fs::write(&copy_a, image(structured.clone())).expect("test fixture");
    fs::write(archive.join("z.dcm"), image(structured)).expect("test fixture");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7005 migration");
    let temp = archive.join("a.tmp");
    let locked = archive.join("a.dcm.locked");
    fs::write(&temp, image(keystream(65_536, 78))).expect("test fixture");
    fs::rename(&temp, &locked).expect("test fixture");
    fs::remove_file(&copy_a).expect("test fixture");
    let compared = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == locked.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(compared, "compared with nothing: {findings:#?}\n{stderr}");
    let changed = findings
        .iter()
        .find(|f| f["kind"] == "pixel-data-changed" && f["path"].as_str() == locked.to_str())
        .expect("waited for above");
    assert_eq!(changed["severity"], "alert", "{changed:#}");
    assert!(
        changed["detail"]
            .as_str()
            .is_some_and(|d| d.contains(copy_a.to_str().expect("test fixture"))),
        "{changed:#}\n{findings:#?}"
    );
}

/// Session 36: the UID index of a window kept 8 copies of one SOP Instance UID and said
/// the rest in a `not-inspected` warning at every window opened, so an honest store
/// holding ten copies of one instance (a QA phantom sent daily, re-sends) had a standing
/// warning, and an honest re-compression in a window was no longer quiet. It keeps 64
/// now (MAX_INODES_PER_INSTANCE: the bound of one lookup's work) and says the copies past
/// it only when a new file of that UID is compared with none of those kept: the one time
/// the bound may change a judgement (it may have replaced a copy left out). 70 copies
/// here: no warning when the window opens or for a re-compression in place; one more
/// copy sent in is an arrival, its limit said.
#[test]
fn many_stored_copies_of_one_instance_raise_no_standing_warning_in_a_window() {
    const COPIES: usize = 70;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..COPIES)
        .map(|i| {
            let path = archive.join(format!("phantom-{i:02}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7006 re-compression");
    let staged = env.dir.path().join("rle.dcm");
    let status = std::process::Command::new("dcmcrle")
        .arg(&paths[0])
        .arg(&staged)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmcrle");
    fs::copy(&staged, &paths[0]).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == paths[0].to_str())
    });
    assert!(judged, "{:#?}", watcher.findings());
    std::thread::sleep(Duration::from_secs(1));
    let loud: Vec<Value> = watcher
        .findings()
        .into_iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
        })
        .collect();
    assert!(
        loud.is_empty(),
        "an honest store inside a window: {loud:#?}"
    );
    // One more copy sent in: compared with none of the 64 copies indexed, and 6 were
    // not indexed. It is an arrival judged by its content (info), and that is said.
    let resent = archive.join("phantom-resent.dcm");
    fs::copy(&sample, &resent).expect("pydicom's CT_small.dcm");
    let said = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"].as_str().is_some_and(|d| {
                    d.starts_with("1 new files") && d.contains("MAX_INODES_PER_INSTANCE")
                })
        }) && f
            .iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == resent.to_str())
    });
    assert!(said, "{:#?}", watcher.findings());
    // Sent again in a later batch: said once a UID while the window is open, not at
    // each batch (session 37 said it again every time).
    let again = archive.join("phantom-resent-again.dcm");
    fs::copy(&sample, &again).expect("pydicom's CT_small.dcm");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == again.to_str())
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let crowded = findings
        .iter()
        .filter(|f| {
            f["kind"] == "not-inspected"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("MAX_INODES_PER_INSTANCE"))
        })
        .count();
    assert_eq!(crowded, 1, "said once: {findings:#?}");
    assert!(
        findings
            .iter()
            .all(|f| (f["path"].as_str() != resent.to_str()
                && f["path"].as_str() != again.to_str())
                || f["severity"] == "info"),
        "an honest copy is no alert: {findings:#?}"
    );
    assert!(alerts(&findings).is_empty(), "{findings:#?}");
}

/// Session 36 left open: new files inside a window were sampled for encryption 64 a
/// batch (MAX_WINDOW_SAMPLES_PER_BATCH), the smallest first, so 100 small decoy files
/// dropped beside 8 images encrypted to new names (the originals removed) used every
/// sample, and the encrypted images were only counted in a `not-inspected` warning: no
/// alert, no `ransomware-suspected`. The sampling of arrivals is counted in the bytes it
/// reads (MAX_WINDOW_ARRIVAL_SAMPLE_BYTES_PER_BATCH), a small decoy at one block: the
/// decoys leave room for every encrypted image. All land in one batch: staged outside
/// the tree and renamed in as one directory.
#[test]
fn inside_a_window_small_decoys_do_not_keep_encrypted_arrivals_from_being_sampled() {
    const DECOYS: usize = 100;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = image_store(&env, 8);
    // What this proves is the bytes: the decoys leave room for every image, none left
    // unsampled. The sampling's time is pinned out of a loaded machine's reach, which
    // spent the 1 s after the first files and said some were not sampled (session 46,
    // r46-flake, under `PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_MS=1`).
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_MS", "600000");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7007 migration");
    let staged = env.dir.path().join("drop");
    fs::create_dir_all(&staged).expect("test fixture");
    for i in 0..DECOYS {
        fs::write(
            staged.join(format!("note-{i:03}.txt")),
            format!("decoy {i}\n"),
        )
        .expect("test fixture");
    }
    let drop = archive.join("drop");
    let mut locked = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let len = fs::metadata(path).expect("test fixture").len() as usize;
        let name = format!("image-{i}.dcm.enc");
        fs::write(staged.join(&name), keystream(len, 7100 + i as u64)).expect("test fixture");
        locked.push(drop.join(name));
    }
    fs::rename(&staged, &drop).expect("test fixture");
    for path in &paths {
        fs::remove_file(path).expect("test fixture");
    }
    let alerted = |f: &[Value], p: &Path| {
        f.iter().any(|x| {
            x["kind"] == "added" && x["severity"] == "alert" && x["path"].as_str() == p.to_str()
        })
    };
    let raised = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1 && locked.iter().all(|p| alerted(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(
        !findings.iter().any(|f| f["kind"] == "not-inspected"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not sampled"))),
        "{findings:#?}"
    );
}

/// Review rv39-watch (B1): new files inside a window were sampled most put off first,
/// then smallest first, so 400 small decoys (61 KB each, the debug build's hook lowering
/// a batch's sampling to 1 MiB: 23 batches' worth) put off as often as three larger
/// images encrypted beside them won every batch, and the encrypted ones reached
/// MAX_PROOF_PUT_OFFS never read: warnings whose detail said their content was "what no
/// re-compression or migration leaves (random bytes...)". Each run of equal put-offs is
/// now taken from both ends: the encrypted images are read within two batches, alerts.
#[test]
fn inside_a_window_many_small_decoys_do_not_starve_larger_encrypted_arrivals() {
    const DECOYS: usize = 400;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 2\n");
    let paths = image_store(&env, 3);
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_BYTES", "1048576");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-2 migration");
    let staged = env.dir.path().join("incoming");
    fs::create_dir_all(&staged).expect("test fixture");
    let decoy = "received study, forwarded by the router\n".repeat(1_500); // 61 KB
    for i in 0..DECOYS {
        fs::write(staged.join(format!("recv-{i:05}.txt")), &decoy).expect("test fixture");
    }
    let drop = archive.join("incoming");
    let mut locked = Vec::new();
    for i in 0..paths.len() {
        let name = format!("image-{i}.dcm.locked");
        fs::write(staged.join(&name), keystream(300_000, 3900 + i as u64)).expect("test fixture");
        locked.push(drop.join(name));
    }
    fs::rename(&staged, &drop).expect("test fixture");
    for path in &paths {
        fs::remove_file(path).expect("test fixture");
    }
    let judged = |f: &[Value], p: &Path| {
        f.iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == p.to_str())
    };
    let seen = watcher.wait(Duration::from_secs(90), |f, _| {
        locked.iter().all(|p| judged(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    for path in &locked {
        let added: Vec<&Value> = findings
            .iter()
            .filter(|x| x["kind"] == "added" && x["path"].as_str() == path.to_str())
            .collect();
        assert!(
            added.iter().all(|x| x["severity"] == "alert"
                && has_field(x, "encrypted-arrival")
                && !x["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("MAX_PROOF_PUT_OFFS"))),
            "{}: {added:#?}",
            path.display()
        );
    }
}

/// Review rv39-watch (B1, the words): a new file inside a window put off
/// MAX_PROOF_PUT_OFFS times unread (the debug build's hook lowering a batch's sampling
/// to one byte: one file a batch, twelve files) is a warning that says it was not read,
/// not that its content "is what no re-compression or migration leaves (random
/// bytes...): encrypted?".
#[test]
fn inside_a_window_an_arrival_never_sampled_says_it_was_not_read() {
    // More than MAX_PROOF_PUT_OFFS + 1 in one batch, whatever the split: under load the
    // writes of the last files staged were read after the rename, as arrivals of a
    // batch of their own (session 41's CI: 3 and 9 of 12, none put off past the bound).
    const FILES: usize = 24;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 2);
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_BYTES", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-3 migration");
    let staged = env.dir.path().join("drop");
    fs::create_dir_all(&staged).expect("test fixture");
    for i in 0..FILES {
        fs::write(
            staged.join(format!("{i:02}.txt")),
            format!("received {i}\n"),
        )
        .expect("test fixture");
    }
    // The staging's writes read by the watcher before the files are in the tree.
    std::thread::sleep(Duration::from_secs(2));
    fs::rename(&staged, archive.join("drop")).expect("test fixture");
    let never_read = |x: &Value| {
        x["kind"] == "added"
            && x["detail"]
                .as_str()
                .is_some_and(|d| d.contains("MAX_PROOF_PUT_OFFS"))
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        f.iter().filter(|x| x["kind"] == "added").count() >= FILES && f.iter().any(never_read)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let untrue: Vec<&Value> = findings
        .iter()
        .filter(|x| never_read(x))
        .filter(|x| {
            x["severity"] != "warning"
                || x["detail"].as_str().is_some_and(|d| {
                    d.contains("encrypted?") || !d.contains("its content was not read or proven")
                })
        })
        .collect();
    assert!(untrue.is_empty(), "{untrue:#?}");
}

/// The bytes the sampling of new files inside a window may read per batch
/// (MAX_WINDOW_ARRIVAL_SAMPLE_BYTES_PER_BATCH, lowered by the debug build's hook to one
/// byte: the first new file is sampled, the others are not) are a limit said in a
/// warning when reached.
#[test]
fn the_bytes_sampled_of_arrivals_in_a_window_are_bounded_and_the_limit_said() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 4);
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_BYTES", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7008 migration");
    let staged = env.dir.path().join("drop");
    fs::create_dir_all(&staged).expect("test fixture");
    for i in 0..3 {
        fs::write(staged.join(format!("{i}.dcm")), instance(i)).expect("test fixture");
    }
    fs::rename(&staged, archive.join("drop")).expect("test fixture");
    // The first file of a batch is always sampled, the others past the limit said: "2
    // new files" when the three come in one batch, "1" when a loaded machine's events
    // split them over two (seen in a whole run, session 40).
    let said = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"].as_str().is_some_and(|d| {
                    (d.starts_with("2 new files") || d.starts_with("1 new files"))
                        && d.contains("MAX_WINDOW_ARRIVAL_SAMPLE_BYTES_PER_BATCH")
                })
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(said, "{findings:#?}\n{stderr}");
}

/// Review rv35-watch: the index of stored instances by SOP Instance UID was built at
/// every start, window or not, and unbounded. It is built when a window opens, for what
/// it covers, up to MAX_WINDOW_INSTANCES (lowered here by the debug build's hook); the
/// images left out are said in a warning.
#[test]
fn the_uid_index_of_a_window_is_bounded_and_its_limit_said() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 6);
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_WINDOW_INSTANCES", "2");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7004 migration");
    let said = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"].as_str().is_some_and(|d| {
                    d.starts_with("4 stored images") && d.contains("MAX_WINDOW_INSTANCES")
                })
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(said, "{findings:#?}\n{stderr}");
}

/// Review rv35-watch: a proof compared the pixels of an image followed from another
/// root with its stored digests in this root's hash algorithm (`Origins::hash` was the
/// root's, not the entry's). An image of a BLAKE3 root moved into a SHA-256 root (FIPS
/// settings) and re-compressed there by dcmtk's dcmcrle inside windows on both: its
/// decoded pixels hashed with SHA-256 never matched the BLAKE3 digest, "other pixels",
/// an alert for a lossless re-compression. Proven in the algorithm it was stored with,
/// it is the migration it is.
#[test]
fn inside_a_window_an_image_re_compressed_in_a_root_of_another_hash_is_proven() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let stored = archive.join("0.dcm");
    fs::copy(&sample, &stored).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let fips = env.dir.path().join("fips");
    fs::create_dir_all(&fips).expect("test fixture");
    fs::write(fips.join("seed"), b"x").expect("test fixture");
    let out = env.run(&[
        "profile",
        fips.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
        "--hash",
        "sha256",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7006 migration");
    let declared = env.run(&[
        "maintenance",
        "start",
        fips.to_str().expect("test fixture"),
        "--until",
        "10min",
        "--reason",
        "CHG-7006 migration",
    ]);
    assert!(declared.status.success(), "{}", common::stderr(&declared));
    let opened = watcher.wait(Duration::from_secs(10), |f, _| {
        count(f, "maintenance-window") == 2
    });
    assert!(opened, "{:#?}", watcher.findings());
    let rle = env.dir.path().join("rle.dcm");
    let status = std::process::Command::new("dcmcrle")
        .arg(&stored)
        .arg(&rle)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmcrle");
    let moved = fips.join("a.dcm");
    fs::rename(&stored, &moved).expect("test fixture");
    // Written over in place: the same inode, followed from its stored entry.
    fs::copy(&rle, &moved).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == moved.to_str())
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    assert_pixels_changed(&findings, &moved, "info");
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str() == moved.to_str() && f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}\n{findings:#?}");
}

/// Inside a maintenance window, a re-compression (dcmtk's dcmcrle and dcmcjpeg: a new
/// transfer syntax, valid fragments) is info, while Pixel Data encrypted in place (header
/// and transfer syntax intact, random bytes where the pixels were) stays an alert and
/// counts towards ransomware. Real files: pydicom's CT_small.dcm, uncompressed.
#[test]
fn inside_a_window_pixel_encryption_alerts_and_re_compression_does_not() {
    const FILES: usize = 10;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-5120 re-compression");
    // Re-compressed by dcmtk (written elsewhere, then over the original in place).
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    for (i, path) in paths[..FILES / 2].iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let (tool, args): (&str, &[&str]) = if i % 2 == 0 {
            ("dcmcrle", &[])
        } else {
            ("dcmcjpeg", &["+e1"])
        };
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool} {}", path.display());
        // Copied back over the original in place: fs::copy truncates it, fchmods it, then
        // writes (the attribute change must not get the half-written file judged).
        fs::copy(&out, path).expect("test fixture");
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    let recompressed: Vec<String> = paths[..FILES / 2].iter().map(|p| rel(p)).collect();
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        let t = tally(f, &env.tree);
        recompressed.iter().all(|p| t.keys().any(|(_, q)| q == p))
    });
    assert!(seen, "{:#?}", watcher.findings());
    std::thread::sleep(Duration::from_secs(1));
    let after_recompression = watcher.findings();
    let loud: Vec<&Value> = after_recompression
        .iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
        })
        .collect();
    assert!(
        loud.is_empty(),
        "a re-compression inside the window: {loud:#?}"
    );

    // Pixel Data encrypted in place: CT_small's Pixel Data is 32,768 bytes ending 138
    // bytes before its end (elements follow it).
    for (i, path) in paths[FILES / 2..].iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let at = bytes
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .expect("CT_small's Pixel Data")
            + 12;
        bytes[at..at + 32_768].copy_from_slice(&keystream(32_768, 7 + i as u64));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let encrypted: Vec<String> = paths[FILES / 2..].iter().map(|p| rel(p)).collect();
    for path in &encrypted {
        assert!(
            findings.iter().any(|f| f["kind"] == "pixel-data-changed"
                && f["severity"] == "alert"
                && f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(path.as_str()))),
            "{path} encrypted inside the window is an alert: {findings:#?}"
        );
    }
}

/// Inside a maintenance window, uncompressed Pixel Data rewritten in place under the same
/// transfer syntax (review r33-watch: each byte XORed with a 16-byte key, so that its
/// entropy stays the image's own and no block reads as random) is no migration: a
/// migration copies, moves, deletes or re-compresses, it never changes the values of
/// pixels stored uncompressed. Each image stays an alert and the burst is ransomware, as
/// outside a window. Real files: pydicom's CT_small.dcm, uncompressed.
#[test]
fn inside_a_window_uncompressed_pixels_rewritten_keeping_their_entropy_alert() {
    uncompressed_pixels_rewritten_in_a_window(None);
}

/// The same, each image then written again by dcmtk in implicit VR little endian: another
/// uncompressed syntax of the same byte order keeps the Pixel Data bytes of the same
/// pixels, so bytes that changed are still pixels that changed (review r33-watch: the
/// syntax's change let all 60 of 60 be softened to `info`).
#[test]
fn inside_a_window_uncompressed_pixels_rewritten_and_re_encoded_alert() {
    uncompressed_pixels_rewritten_in_a_window(Some(("dcmconv", &["+ti"])));
}

/// The same, each image then written again by dcmtk in explicit VR big endian: its 16-bit
/// pixels keep their values with their bytes swapped, so the Pixel Data swapped back is
/// compared with the profile's (review r33-watch: 60 of 60 softened to `info`).
#[test]
fn inside_a_window_uncompressed_pixels_rewritten_and_written_big_endian_alert() {
    uncompressed_pixels_rewritten_in_a_window(Some(("dcmconv", &["+tb"])));
}

/// The same, each image then re-compressed by dcmtk in JPEG-LS lossless: decoded (since
/// session 43; before, for want of a decoder), its frames are not the pixels stored, so
/// it is `re-compression-unproven` inside a window too, an alert that counts (review
/// r33-watch: 40 of 40 softened to `info`).
#[test]
fn inside_a_window_uncompressed_pixels_rewritten_and_compressed_in_jpeg_ls_alert() {
    uncompressed_pixels_rewritten_in_a_window(Some(("dcmcjpls", &[])));
}

/// Inside a maintenance window, images written again unchanged in explicit VR big endian
/// by dcmtk (a PACS storing what it received as it was sent) keep every pixel value:
/// `info`, no ransomware. Real files: pydicom's CT_small.dcm (16-bit) and SC_rgb_small_odd.dcm (8-bit
/// samples in an OW value, whose 16-bit words big endian swaps).
#[test]
fn inside_a_window_a_re_save_in_big_endian_is_info() {
    // rtdose_1frame.dcm: 32-bit samples, which DCMTK swaps in 16-bit words (review
    // rv33b-watch: its honest re-saves alerted).
    const SAMPLES: [&str; 3] = ["CT_small.dcm", "SC_rgb_small_odd.dcm", "rtdose_1frame.dcm"];
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 2\n");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..6)
        .map(|i| {
            let name = SAMPLES[i % SAMPLES.len()];
            let path = archive.join(format!("{i}-{name}"));
            fs::copy(samples.join(name), &path).expect("pydicom's sample");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-6022 re-save");
    let converted = env.dir.path().join("converted.dcm");
    for path in &paths {
        let status = std::process::Command::new("dcmconv")
            .arg("+tb")
            .arg(path)
            .arg(&converted)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmconv +tb {}", path.display());
        fs::copy(&converted, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert_pixels_changed(&findings, path, "info");
    }
    assert!(alerts(&findings).is_empty(), "{findings:#?}");
}

/// Pixel Data of copies of CT_small.dcm XORed with a 16-byte key inside a window, each
/// then converted by `convert` (a dcmtk tool and its options) when given: each image
/// must be an alert and the burst ransomware.
fn uncompressed_pixels_rewritten_in_a_window(convert: Option<(&str, &[&str])>) {
    const FILES: usize = 8;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-6021 migration");
    // CT_small's Pixel Data: (7FE0,0010) OW, 32,768 bytes (elements follow it).
    let key = keystream(16, 33);
    for path in &paths {
        let mut bytes = fs::read(path).expect("test fixture");
        let tag = bytes
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .expect("CT_small's Pixel Data");
        let at = tag + 12;
        for (j, b) in bytes[at..at + 32_768].iter_mut().enumerate() {
            *b ^= key[j % key.len()];
        }
        let Some((tool, options)) = convert else {
            fs::write(path, &bytes).expect("test fixture");
            continue;
        };
        let staged = env.dir.path().join("staged.dcm");
        let converted = env.dir.path().join("converted.dcm");
        fs::write(&staged, &bytes).expect("test fixture");
        let status = std::process::Command::new(tool)
            .args(options)
            .arg(&staged)
            .arg(&converted)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool} {options:?}");
        fs::copy(&converted, path).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && paths.iter().all(|p| {
                f.iter()
                    .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert_pixels_changed(&findings, path, "alert");
    }
}

/// Inside a window, copies of CT_small.dcm taken away from their stored name by every
/// path a ransomware has, then their Pixel Data XORed under the new name (review
/// rv34c-watch: `moved` info + `pixel-data-changed` info, no proof ran, for the proof
/// looked the stored entry up under the new name and found none). Each rename and its
/// rewrite are made back to back, so that they are verified in one batch: renamed in
/// place, into another directory, over a temp file, along a chain of names, with its
/// study directory, and written big endian on the way; and, for contrast, renamed then
/// rewritten in a later batch. Each must be proven against what its old name stored.
#[test]
fn inside_a_window_pixels_encrypted_under_a_new_name_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    for dir in ["other", "study"] {
        fs::create_dir_all(archive.join(dir)).expect("test fixture");
    }
    let stored = |rel: &str| {
        let path = archive.join(rel);
        fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
        path
    };
    let names = [
        "in-place.dcm",
        "elsewhere.dcm",
        "temp.dcm",
        "chain.dcm",
        "study/in-study.dcm",
        "big-endian.dcm",
        "later.dcm",
        "torn.dcm",
        "truncated.dcm",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|n| stored(n)).collect();
    env.profile(&["--policy", "append-only"]);
    let xored = |path: &Path| {
        let mut bytes = fs::read(path).expect("test fixture");
        let tag = bytes
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .expect("CT_small's Pixel Data");
        let key = keystream(16, 33);
        for (j, b) in bytes[tag + 12..tag + 12 + 32_768].iter_mut().enumerate() {
            *b ^= key[j % key.len()];
        }
        bytes
    };
    // Everything a rewrite writes is made before the guard runs: the renames and their
    // rewrites then follow each other within microseconds.
    let mut encrypted: Vec<Vec<u8>> = paths.iter().map(|p| xored(p)).collect();
    // Over a temp file the data is another file, matched by its SOP Instance UID alone,
    // and judged by its content (review rv35-watch: an honest image sent again under its
    // UID is no encryption): encrypted, not XORed with a short key, so random.
    {
        let bytes = &mut encrypted[2];
        let tag = bytes
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .expect("CT_small's Pixel Data");
        let key = keystream(32_768, 34);
        for (b, k) in bytes[tag + 12..tag + 12 + 32_768].iter_mut().zip(key) {
            *b ^= k;
        }
    }
    let staged = env.dir.path().join("staged.dcm");
    let converted = env.dir.path().join("converted.dcm");
    fs::write(&staged, &encrypted[5]).expect("test fixture");
    let status = std::process::Command::new("dcmconv")
        .arg("+tb")
        .arg(&staged)
        .arg(&converted)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmconv +tb");
    let big_endian = fs::read(&converted).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-6023 migration");
    let at = |rel: &str| archive.join(rel);
    let mut now_at = Vec::new();
    // Renamed in place, then written again (the same inode).
    fs::rename(&paths[0], at("in-place.dcm.locked")).expect("test fixture");
    fs::write(at("in-place.dcm.locked"), &encrypted[0]).expect("test fixture");
    now_at.push(at("in-place.dcm.locked"));
    // Renamed into another directory.
    fs::rename(&paths[1], at("other/elsewhere.dcm.locked")).expect("test fixture");
    fs::write(at("other/elsewhere.dcm.locked"), &encrypted[1]).expect("test fixture");
    now_at.push(at("other/elsewhere.dcm.locked"));
    // Written to a temp file, renamed over the new name, the stored name removed.
    fs::write(at("temp.dcm.tmp"), &encrypted[2]).expect("test fixture");
    fs::rename(at("temp.dcm.tmp"), at("temp.dcm.locked")).expect("test fixture");
    fs::remove_file(&paths[2]).expect("test fixture");
    now_at.push(at("temp.dcm.locked"));
    // Along a chain of names.
    fs::rename(&paths[3], at("chain.dcm.1")).expect("test fixture");
    fs::rename(at("chain.dcm.1"), at("chain.dcm.locked")).expect("test fixture");
    fs::write(at("chain.dcm.locked"), &encrypted[3]).expect("test fixture");
    now_at.push(at("chain.dcm.locked"));
    // With its study directory.
    fs::rename(at("study"), at("study.locked")).expect("test fixture");
    fs::write(at("study.locked/in-study.dcm"), &encrypted[4]).expect("test fixture");
    now_at.push(at("study.locked/in-study.dcm"));
    // Written big endian on the way.
    fs::rename(&paths[5], at("big-endian.dcm.locked")).expect("test fixture");
    fs::write(at("big-endian.dcm.locked"), &big_endian).expect("test fixture");
    now_at.push(at("big-endian.dcm.locked"));
    // Renamed, the move verified, then written again in a later batch.
    fs::rename(&paths[6], at("later.dcm.locked")).expect("test fixture");
    let moved = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "moved" && x["path"].as_str() == at("later.dcm.locked").to_str())
    });
    assert!(moved, "{:#?}", watcher.findings());
    fs::write(at("later.dcm.locked"), &encrypted[6]).expect("test fixture");
    now_at.push(at("later.dcm.locked"));
    // Issue 11 (seen by chance under load): renamed, then truncated by the `O_TRUNC` of
    // its rewrite, and the watcher captured the new name at 0 bytes before the write:
    // `moved` info of "a file of 0 bytes", then `content-changed` info "0 -> 39206
    // bytes", the encryption compared with the empty capture, not the stored image.
    // Made deterministic: the write waits until the empty capture is judged. (After the
    // moves above are verified: these copies share one SOP Instance UID, and a stored
    // name gone in their batch could be paired with another's new name by it.)
    fs::rename(&paths[7], at("torn.dcm.locked")).expect("test fixture");
    fs::File::create(at("torn.dcm.locked")).expect("test fixture");
    // The same without a rename: an in-place `O_TRUNC` rewrite caught at 0 bytes.
    fs::File::create(&paths[8]).expect("test fixture");
    let emptied = |f: &[Value], path: &Path| {
        f.iter()
            .any(|x| x["kind"] == "no-longer-dicom" && x["path"].as_str() == path.to_str())
    };
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        emptied(f, &at("torn.dcm.locked")) && emptied(f, &paths[8])
    });
    assert!(judged, "{:#?}", watcher.findings());
    fs::write(at("torn.dcm.locked"), &encrypted[7]).expect("test fixture");
    now_at.push(at("torn.dcm.locked"));
    fs::write(&paths[8], &encrypted[8]).expect("test fixture");
    now_at.push(paths[8].clone());
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && now_at.iter().all(|p| {
                f.iter()
                    .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let softened: Vec<&PathBuf> = now_at
        .iter()
        .filter(|p| {
            !findings.iter().any(|f| {
                f["kind"] == "pixel-data-changed"
                    && f["severity"] == "alert"
                    && f["path"].as_str() == p.to_str()
            })
        })
        .collect();
    assert!(
        softened.is_empty(),
        "softened: {softened:#?}\n{findings:#?}"
    );
}

/// Inside a window, an image XORed and written big endian whose proof the batch's budget
/// left undone (the budget lowered by the debug build's hook) is put off; the watcher
/// stopped before it comes back, the next start's catch-up must not soften it (review:
/// put off at the stop, then judged "as it stands" by the catch-up, `info`).
#[test]
fn a_proof_put_off_at_the_stop_is_not_softened_by_the_next_catch_up() {
    let env = Env::new();
    // Each put-off waits a quiet period: MAX_PROOF_PUT_OFFS of them outlast the stop.
    configure(&env, "scrub_mb_per_s = 0\nquiet_ms = 4000\n");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let path = archive.join("put-off.dcm");
    fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
    env.profile(&["--policy", "append-only"]);
    let mut bytes = fs::read(&path).expect("test fixture");
    let tag = bytes
        .windows(6)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .expect("CT_small's Pixel Data");
    let key = keystream(16, 35);
    for (j, b) in bytes[tag + 12..tag + 12 + 32_768].iter_mut().enumerate() {
        *b ^= key[j % key.len()];
    }
    let staged = env.dir.path().join("staged.dcm");
    let converted = env.dir.path().join("converted.dcm");
    fs::write(&staged, &bytes).expect("test fixture");
    let status = std::process::Command::new("dcmconv")
        .arg("+tb")
        .arg(&staged)
        .arg(&converted)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmconv +tb");
    // Every byte-order proof is past a batch's bytes: put off, each batch.
    let hooked = || {
        let mut command = common::pacsguard();
        command.env("PACSGUARD_TEST_MAX_PROOF_BYTES_PER_BATCH", "1");
        command
    };
    let watcher = Watcher::start_with(&env, &[], hooked());
    open_window(&env, &watcher, &archive, "CHG-6024 big-endian migration");
    fs::copy(&converted, &path).expect("test fixture");
    let put_off = watcher.wait(Duration::from_secs(30), |f, _| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("1 put off to a later batch"))
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(put_off, "{findings:#?}\n{stderr}");
    assert!(
        !findings
            .iter()
            .any(|f| f["kind"] == "pixel-data-changed" && f["path"].as_str() == path.to_str()),
        "judged before the stop: {findings:#?}"
    );
    let watcher = Watcher::start_with(&env, &[], hooked());
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    assert_pixels_changed(&findings, &path, "alert");
}

/// Offsets and lengths of the fragments of the encapsulated Pixel Data (explicit VR
/// little endian, `(7FE0,0010)` of undefined length), the Basic Offset Table left out.
fn fragment_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    // Any VR (GDCM writes OW, others OB), undefined length.
    let mut at = bytes
        .windows(12)
        .rposition(|w| {
            w[..4] == [0xE0, 0x7F, 0x10, 0x00] && w[6..] == [0, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        })
        .expect("encapsulated Pixel Data")
        + 12;
    let mut spans = Vec::new();
    while bytes[at..at + 4] == [0xFE, 0xFF, 0x00, 0xE0] {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        spans.push((at + 8, len));
        at += 8 + len;
    }
    spans.split_off(1)
}

/// Issue 11: inside a maintenance window, a JPEG, JPEG 2000 or RLE image whose fragments
/// were overwritten with random bytes, transfer syntax and lengths kept, was info (a
/// compressed image is near-random already, so entropy says nothing). Its fragments are
/// no longer its codec's stream: an alert, and it counts towards ransomware. A genuine
/// re-compression in the window (dcmtk: dcmdrle then dcmcrle, the same syntax with new
/// fragments; dcmdjpeg then dcmcrle) stays info. Real files: pydicom's compressed samples.
#[test]
fn inside_a_window_encrypted_fragments_of_compressed_images_alert_and_re_compression_does_not() {
    const SAMPLES: [&str; 6] = [
        "MR_small_RLE.dcm",
        "SC_rgb_rle.dcm",
        "SC_rgb_rle_2frame.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "JPEG-lossy.dcm",
        "JPEG2000.dcm",
    ];
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let copy = |n: usize, copy: &str| {
        let path = archive.join(format!("{copy}-{}", SAMPLES[n]));
        fs::copy(samples.join(SAMPLES[n]), &path).expect("pydicom's sample");
        path
    };
    let recompressed: Vec<PathBuf> = (0..5).map(|n| copy(n, "a")).collect();
    let encrypted: Vec<PathBuf> = (0..SAMPLES.len()).map(|n| copy(n, "b")).collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-5121 re-compression");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let run = |tool: &str, from: &Path, to: &Path| {
        let status = std::process::Command::new(tool)
            .arg(from)
            .arg(to)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool} {}", from.display());
    };
    for (i, path) in recompressed.iter().enumerate() {
        let plain = staging.join(format!("{i}.plain.dcm"));
        let out = staging.join(format!("{i}.dcm"));
        run(if i < 3 { "dcmdrle" } else { "dcmdjpeg" }, path, &plain);
        run("dcmcrle", &plain, &out);
        fs::copy(&out, path).expect("test fixture");
    }
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .to_string_lossy()
            .into_owned()
    };
    std::thread::sleep(Duration::from_secs(2));
    let loud: Vec<Value> = watcher
        .findings()
        .into_iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
        })
        .collect();
    assert!(
        loud.is_empty(),
        "a re-compression inside the window: {loud:#?}"
    );

    // Every fragment overwritten in place with random bytes, lengths kept.
    for (i, path) in encrypted.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        for (n, (at, len)) in fragment_spans(&bytes).into_iter().enumerate() {
            bytes[at..at + len].copy_from_slice(&keystream(len, 100 + (i * 16 + n) as u64));
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in encrypted.iter().map(|p| rel(p)) {
        assert!(
            findings.iter().any(|f| f["kind"] == "pixel-data-changed"
                && f["severity"] == "alert"
                && f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(path.as_str()))),
            "{path} with its fragments encrypted inside the window is an alert: {findings:#?}"
        );
    }
}

/// The data of each JPEG 2000 tile-part (from its SOD to its SOT + Psot, or to EOC)
/// overwritten in place, every marker kept, across the fragments of each frame.
fn encrypt_j2k_tile_data(bytes: &mut [u8], seed: u64) -> usize {
    let mut frames: Vec<Vec<(usize, usize)>> = Vec::new();
    for (start, len) in fragment_spans(bytes) {
        if bytes[start..].starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
            frames.push(vec![(start, len)]);
        } else if let Some(frame) = frames.last_mut() {
            frame.push((start, len));
        }
    }
    let mut encrypted = 0;
    for (k, frame) in frames.into_iter().enumerate() {
        let stream: Vec<u8> = frame
            .iter()
            .flat_map(|&(start, len)| bytes[start..start + len].to_vec())
            .collect();
        let in_file = |mut o: usize| {
            for &(start, len) in &frame {
                if o < len {
                    return start + o;
                }
                o -= len;
            }
            unreachable!("inside the frame")
        };
        let mut at = stream
            .windows(2)
            .position(|w| w == [0xFF, 0x90])
            .expect("an SOT");
        while stream.get(at..at + 2) == Some(&[0xFF, 0x90][..]) {
            let psot =
                u32::from_be_bytes(stream[at + 6..at + 10].try_into().expect("4 bytes")) as usize;
            let sod = at
                + stream[at..]
                    .windows(2)
                    .position(|w| w == [0xFF, 0x93])
                    .expect("an SOD")
                + 2;
            let end = if psot == 0 {
                stream.len() - 2
            } else {
                at + psot
            };
            let key = keystream(end - sod, seed + k as u64);
            for (o, b) in (sod..end).zip(key) {
                bytes[in_file(o)] = b;
            }
            encrypted += end - sod;
            at = end;
        }
    }
    encrypted
}

/// Each DCT JPEG frame's entropy-coded data (after its SOS header, up to its EOI)
/// overwritten in place with keystream bytes, a `00` stuffed after each `FF` as an
/// encoder stuffs: every marker and every fragment's length kept.
fn stuff_ciphertext_into_dct_scans(bytes: &mut [u8], seed: u64) {
    for (k, (start, len)) in fragment_spans(bytes).into_iter().enumerate() {
        let f = &bytes[start..start + len];
        if !f.starts_with(&[0xFF, 0xD8]) {
            continue;
        }
        let sos = f
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("an SOS");
        let from = start + sos + 2 + usize::from(u16::from_be_bytes([f[sos + 2], f[sos + 3]]));
        let end = start
            + f.windows(2)
                .rposition(|w| w == [0xFF, 0xD9])
                .expect("an EOI");
        let key = keystream(end - from, seed + k as u64);
        let mut at = from;
        for b in key {
            if at >= end {
                break;
            }
            if b == 0xFF && at + 1 < end {
                bytes[at..at + 2].copy_from_slice(&[0xFF, 0]);
                at += 2;
            } else {
                bytes[at] = if b == 0xFF { 0x5A } else { b };
                at += 1;
            }
        }
    }
}

/// Issue 11, the rest of the codecs: inside a maintenance window, an encryptor that
/// keeps every JPEG 2000 marker (SOC, SIZ, COD, QCD, each SOT and SOD, EOC: the tile-part
/// chain still lands) and overwrites the tile data, or keeps each RLE frame's 64-byte
/// header and overwrites its segments, was info. Now each image is an alert and they
/// count towards ransomware. A genuine re-compression in the window with GDCM (another
/// encoder's J2K decoded and re-encoded by GDCM, the same syntax; RLE decoded by dcmtk
/// and re-encoded by GDCM) stays info. Real files: pydicom's samples, and CT_small.dcm made
/// JPEG 2000 by gdcmconv.
#[test]
fn inside_a_window_j2k_and_rle_encrypted_between_kept_markers_alert_and_gdcm_does_not() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let tool = |name: &str, args: &[&std::ffi::OsStr]| {
        let status = std::process::Command::new(name)
            .args(args)
            .status()
            .expect("dcmtk and gdcmconv run (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{name} {args:?}");
    };
    let ct_j2k = |name: &str| {
        let path = archive.join(name);
        tool(
            "gdcmconv",
            &[
                "--j2k".as_ref(),
                samples.join("CT_small.dcm").as_os_str(),
                path.as_os_str(),
            ],
        );
        path
    };
    let copy = |name: &str, to: &str| {
        let path = archive.join(to);
        fs::copy(samples.join(name), &path).expect("pydicom's sample");
        path
    };
    let j2k = [
        copy("examples_jpeg2k.dcm", "j2k-1.dcm"),
        ct_j2k("j2k-2.dcm"),
    ];
    let rle = [
        copy("MR_small_RLE.dcm", "rle-1.dcm"),
        copy("SC_rgb_rle.dcm", "rle-2.dcm"),
        copy("SC_rgb_rle_2frame.dcm", "rle-3.dcm"),
        copy("rtdose_rle.dcm", "rle-4.dcm"),
    ];
    // Issue 11 (review s42, 1): DCT frames whose scans are stuffed ciphertext, in place
    // (baseline RGB, GE's 12-bit extended) and as a new image under a new UID.
    let dct = [
        copy("SC_rgb_jpeg_dcmtk.dcm", "dct-1.dcm"),
        copy("JPEG-lossy.dcm", "dct-2.dcm"),
    ];
    let benign_dct = copy("JPEG-lossy.dcm", "benign-dct.dcm");
    let benign_j2k = copy("MR_small_jp2klossless.dcm", "benign-j2k.dcm");
    let benign_rle = copy("MR_small_RLE.dcm", "benign-rle.dcm");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-5122 re-compression");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let (raw, out) = (staging.join("j2k.raw.dcm"), staging.join("j2k.dcm"));
    tool(
        "gdcmconv",
        &["--raw".as_ref(), benign_j2k.as_os_str(), raw.as_os_str()],
    );
    tool(
        "gdcmconv",
        &["--j2k".as_ref(), raw.as_os_str(), out.as_os_str()],
    );
    assert_ne!(
        fs::read(&out).ok(),
        fs::read(&benign_j2k).ok(),
        "re-encoded"
    );
    fs::copy(&out, &benign_j2k).expect("test fixture");
    let (raw, out) = (staging.join("rle.raw.dcm"), staging.join("rle.dcm"));
    tool("dcmdrle", &[benign_rle.as_os_str(), raw.as_os_str()]);
    tool(
        "gdcmconv",
        &["--rle".as_ref(), raw.as_os_str(), out.as_os_str()],
    );
    fs::copy(&out, &benign_rle).expect("test fixture");
    // A lossy image decoded and coded again at another quality by DCMTK, its UID kept.
    let (raw, out) = (staging.join("dct.raw.dcm"), staging.join("dct.dcm"));
    tool("dcmdjpeg", &[benign_dct.as_os_str(), raw.as_os_str()]);
    tool(
        "dcmcjpeg",
        &[
            "+ee".as_ref(),
            "+q".as_ref(),
            "60".as_ref(),
            "+un".as_ref(),
            raw.as_os_str(),
            out.as_os_str(),
        ],
    );
    fs::copy(&out, &benign_dct).expect("test fixture");
    std::thread::sleep(Duration::from_secs(2));
    let loud: Vec<Value> = watcher
        .findings()
        .into_iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
        })
        .collect();
    assert!(
        loud.is_empty(),
        "a GDCM re-compression inside the window: {loud:#?}"
    );

    for (i, path) in dct.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        stuff_ciphertext_into_dct_scans(&mut bytes, 700 + 16 * i as u64);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let arrival = archive.join("dct-new.dcm");
    let mut bytes = fs::read(samples.join("SC_rgb_small_odd_jpeg.dcm")).expect("pydicom's sample");
    stuff_ciphertext_into_dct_scans(&mut bytes, 733);
    fs::write(&arrival, &bytes).expect("test fixture");
    for (i, path) in j2k.iter().chain(&rle).enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        if i < j2k.len() {
            let n = encrypt_j2k_tile_data(&mut bytes, 300 + 16 * i as u64);
            assert!(n >= 8192, "{}: {n} bytes of tile data", path.display());
        } else {
            for (n, (at, len)) in fragment_spans(&bytes).into_iter().enumerate() {
                // The 64-byte RLE header kept, the segments encrypted.
                let key = keystream(len - 64, 500 + (i * 16 + n) as u64);
                bytes[at + 64..at + len].copy_from_slice(&key);
            }
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(
        findings.iter().any(|f| f["kind"] == "added"
            && f["severity"] == "alert"
            && f["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("dct-new.dcm"))
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no Huffman coder's"))),
        "stuffed ciphertext behind DCT headers under a new UID is an alert: {findings:#?}"
    );
    for path in j2k.iter().chain(&rle).chain(&dct) {
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
        assert!(
            findings.iter().any(|f| f["kind"] == "pixel-data-changed"
                && f["severity"] == "alert"
                && f["path"].as_str().is_some_and(|p| p.ends_with(name))),
            "{name} encrypted between kept markers inside the window is an alert: {findings:#?}"
        );
    }
}

/// Review s10-r11: an encryptor that truncates each guarded image, writes a ciphertext
/// 16 bytes shorter and keeps every descriptor open at the file's end looked like a
/// receiver paused mid-file (a writer at the end of a file shorter than known), and was
/// waited for MAX_WRITER_WAIT: 40 images encrypted and no finding for 32 s. A file cut
/// short whose head no longer reads as DICOM is judged after the settle time.
#[test]
fn a_truncating_encryptor_keeping_its_descriptors_at_the_end_is_judged_within_seconds() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import os,time\nheld=[]\nfor p in [{list}]:\n    f=open(p,'r+b',buffering=0)\n    n=os.fstat(f.fileno()).st_size\n    f.truncate(0)\n    f.write(os.urandom(n-16))\n    held.append(f)\nprint('encrypted',flush=True)\ntime.sleep(60)\n"
    );
    // Timed from the encryption's end (40 writes, milliseconds), not from python3's
    // spawn: its start took over a second on a loaded machine.
    let mut attacker = python_saying(&script, std::iter::empty::<&str>(), "encrypted");
    let start = Instant::now();
    // The alert on the changes, and each file judged (the holder of the 40 files may
    // be named a mass writer before either).
    let raised = watcher.wait(Duration::from_secs(25), |f, _| {
        !change_alerts(f).is_empty() && count(f, "no-longer-dicom") >= paths.len()
    });
    let at = start.elapsed();
    let still_held = attacker.try_wait().expect("test fixture").is_none();
    let _ = attacker.kill();
    let _ = attacker.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(still_held, "found while the descriptors were held");
    // 2.5 s of settle time and the verification; MAX_WRITER_WAIT (30 s) before.
    assert!(at < Duration::from_secs(10), "after {at:?}");
    assert_eq!(
        count(&findings, "no-longer-dicom"),
        paths.len(),
        "{findings:#?}"
    );
}

/// Issue 11 (session 11): an encryptor that keeps its write descriptors open on the
/// files it rewrote and keeps touching them was seen only after ~42 s (the longest
/// debounce, 10 s, then MAX_WRITER_WAIT, 30 s, per file: each file changing was waited
/// for as a writer at work). One process holding many stored images open for writing is
/// evidence in itself: `ransomware-suspected` names it (pid, executable, user), and
/// every file it holds is judged without waiting for it, while it still holds them.
#[test]
fn an_encryptor_holding_and_touching_the_files_it_rewrote_is_named_within_seconds() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(",");
    // Each file overwritten in place (its size kept) and held; then every file touched
    // again and again, so none is ever quiet.
    let script = format!(
        "import os,time\nheld=[]\nfor p in [{list}]:\n    f=open(p,'r+b',buffering=0)\n    n=os.fstat(f.fileno()).st_size\n    f.write(os.urandom(n))\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        f.seek(0)\n        f.write(os.urandom(16))\n    time.sleep(0.1)\n"
    );
    let mut attacker = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let pid = attacker.id();
    let mut out = std::io::BufReader::new(attacker.stdout.take().expect("test fixture"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "encrypted");
    let named = format!("(pid {pid}, exe /");
    // An upper bound for failure only: before, nothing came for ~42 s.
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        alerts(f).iter().any(|a| {
            names_a_mass_writer(a) && a["detail"].as_str().is_some_and(|d| d.contains(&named))
        })
    });
    let everyone = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "no-longer-dicom") >= paths.len()
    });
    let still_held = attacker.try_wait().expect("test fixture").is_none();
    let _ = attacker.kill();
    let _ = attacker.wait();
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(everyone, "each file its own finding: {findings:#?}");
    assert!(
        still_held,
        "found while the descriptors were held and touched"
    );
    let alert = alerts(&findings)
        .into_iter()
        .find(|a| names_a_mass_writer(a))
        .expect("test fixture");
    let detail = alert["detail"].as_str().unwrap_or_default();
    assert_eq!(alert["severity"], "alert");
    assert!(
        detail.starts_with(&format!("python3 (pid {pid}, exe /"))
            && detail.contains("python")
            && detail.contains(", uid ")
            && detail.contains("open for writing at once (MASS_WRITER_FILES 10)"),
        "{detail}"
    );
    assert_eq!(
        alerts(&findings)
            .iter()
            .filter(|a| names_a_mass_writer(a))
            .count(),
        1,
        "one alert per process: {findings:#?}"
    );
    // Each file's finding names the process too.
    let t = tally(&findings, &env.tree);
    for path in &paths {
        let rel = path
            .strip_prefix(&env.tree)
            .expect("test fixture")
            .display()
            .to_string();
        assert_eq!(
            t.get(&("no-longer-dicom".to_string(), rel.clone())),
            Some(&1),
            "{rel}"
        );
    }
    let unnamed: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "no-longer-dicom")
        .filter(|f| {
            !f["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("pid {pid}")))
        })
        .collect();
    assert!(unnamed.is_empty(), "{unnamed:#?}");
}

/// Issue 11 (session 11), the other side: an ordinary receiver writing a few NEW files
/// slowly, each held open four times the writer wait (shortened to 3 s here, the
/// debounce to 100 ms) and written a slice every 400 ms (so that, judged, it is not
/// "written within the quiet period" and left for later), is no mass writer and no
/// alert; and each new file, still growing under
/// its live writer, is waited for and judged once complete: one `added`, not an `added`
/// at half size and then a `content-changed` alert (as before, at MAX_WRITER_WAIT). An
/// EXISTING image rewritten by a writer that holds it is still judged at the writer
/// wait, while it is held.
#[test]
fn a_receiver_writing_new_files_slowly_is_waited_for_and_a_rewrite_is_not() {
    const NEW_FILES: usize = 3;
    let env = Env::new();
    configure(
        &env,
        "scrub_mb_per_s = 0\nquiet_ms = 100\nwriter_wait_seconds = 3\n",
    );
    let paths = image_store(&env, 5);
    // Made before the start: the directory is watched before anything arrives in it.
    let incoming = env.path("archive/incoming");
    fs::create_dir_all(&incoming).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let mut sources = Vec::new();
    for i in 0..NEW_FILES {
        let source = env.dir.path().join(format!("source{i}.dcm"));
        fs::write(&source, instance(100 + i)).expect("test fixture");
        sources.push(source);
    }
    let rewritten = &paths[2];
    // The receiver: the new files written side by side, a slice of each every 400 ms,
    // in 30 slices (12 s: four writer waits), then closed. The rewriter: one stored
    // image truncated and written again, random bytes, a slice every 50 ms for 12 s, by
    // another process.
    let receive = format!(
        "import os,sys,time\nsrc=[open(p,'rb').read() for p in sys.argv[1:{n}]]\ndst=[open(p,'wb',buffering=0) for p in sys.argv[{n}:]]\nprint('open',flush=True)\nfor k in range(30):\n    for s,d in zip(src,dst):\n        step=len(s)//30+1\n        d.write(s[k*step:(k+1)*step])\n    time.sleep(0.4)\nfor s,d in zip(src,dst):\n    d.write(s[30*(len(s)//30+1):])\n    d.close()\nprint('done',flush=True)\n",
        n = NEW_FILES + 1
    );
    let rewrite = "import os,sys,time\nf=open(sys.argv[1],'r+b',buffering=0)\nn=os.fstat(f.fileno()).st_size\nf.truncate(0)\nprint('open',flush=True)\nfor k in range(240):\n    f.write(os.urandom(n//240+1))\n    time.sleep(0.05)\nf.close()\nprint('done',flush=True)\n";
    let targets: Vec<PathBuf> = (0..NEW_FILES)
        .map(|i| incoming.join(format!("{i}.dcm")))
        .collect();
    let mut receiver = std::process::Command::new("python3")
        .arg("-c")
        .arg(&receive)
        .args(&sources)
        .args(&targets)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut rewriter = std::process::Command::new("python3")
        .args(["-c", rewrite])
        .arg(rewritten)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut received = std::io::BufReader::new(receiver.stdout.take().expect("test fixture"));
    let mut again = std::io::BufReader::new(rewriter.stdout.take().expect("test fixture"));
    let mut line = String::new();
    for out in [&mut received, &mut again] {
        line.clear();
        std::io::BufRead::read_line(out, &mut line).expect("test fixture");
        assert_eq!(line.trim(), "open");
    }
    line.clear();
    std::io::BufRead::read_line(&mut again, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "done");
    let rewrite_done = Instant::now();
    line.clear();
    std::io::BufRead::read_line(&mut received, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "done");
    let _ = receiver.wait();
    let _ = rewriter.wait();
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("test fixture")
            .display()
            .to_string()
    };
    let names: Vec<String> = targets.iter().map(|t| rel(t)).collect();
    let arrived = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        names
            .iter()
            .all(|n| t.contains_key(&("added".to_string(), n.clone())))
    });
    // Anything a half-written judgment would bring (its completion) comes at the close.
    std::thread::sleep(Duration::from_secs(2));
    let first_rewrite_finding = watcher.first_where(|f| f["path"].as_str() == rewritten.to_str());
    let (_, findings, stderr) = watcher.stop();
    assert!(arrived, "{findings:#?}\n{stderr}");
    let t = tally(&findings, &env.tree);
    for name in &names {
        let about: Vec<&Value> = findings
            .iter()
            .filter(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(name.as_str()))
            })
            .collect();
        assert_eq!(
            t.get(&("added".to_string(), name.clone())),
            Some(&1),
            "{about:#?}"
        );
        assert!(
            about.iter().all(|f| f["severity"] == "info"),
            "one arrival, judged complete: {about:#?}"
        );
    }
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    // The stored image rewritten while held was judged while its writer still held it.
    let judged = first_rewrite_finding.expect("the rewritten image has its finding");
    assert!(judged < rewrite_done, "judged while held: {findings:#?}");
    let about = findings
        .iter()
        .find(|f| f["path"].as_str() == rewritten.to_str())
        .expect("test fixture");
    assert!(
        about["detail"]
            .as_str()
            .is_some_and(|d| d.contains("still holds it open for writing after 3 s")),
        "{about:#?}"
    );
}

/// Review s11-r11: a PACS that opens many stored images read-write at once and
/// writes their headers back unchanged (the same bytes) changed nothing: no
/// `ransomware-suspected` (the mass writer's alert came before anything was judged,
/// and stood although every file was unchanged).
#[test]
fn r11_holding_many_images_rewritten_with_the_same_bytes_raises_no_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 14);
    let watcher = Watcher::start(&env, &[]);
    let script = "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    f=open(p,'r+b',buffering=0)\n    h=f.read(256)\n    f.seek(0)\n    f.write(h)\n    held.append(f)\nprint('held',flush=True)\nfor k in range(6):\n    for f in held:\n        f.seek(0)\n        h=f.read(256)\n        f.seek(0)\n        f.write(h)\n    time.sleep(0.5)\nprint('done',flush=True)\ntime.sleep(2)\n";
    let mut pacs = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&paths)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(pacs.stdout.take().expect("test fixture"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "held");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "done");
    let _ = pacs.wait();
    std::thread::sleep(Duration::from_secs(3));
    let (_, findings, _) = watcher.stop();
    // Each file's mtime moved (the append-only policy reports that); nothing else.
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "info" || f["kind"] == "metadata-changed"),
        "{findings:#?}"
    );
}

/// Review s11-r11: a backup tool holding many stored images open read-write and writing
/// nothing, while a receiver writes a new file slowly (its quiet moments bring passes
/// over /proc that count the holders), changed nothing: no alarm at all.
#[test]
fn r11_holding_many_images_read_write_without_writing_raises_no_alert() {
    let env = Env::new();
    configure(
        &env,
        "scrub_mb_per_s = 0
quiet_ms = 100
",
    );
    let paths = image_store(&env, 14);
    let incoming = env.path("archive/incoming");
    fs::create_dir_all(&incoming).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    let source = env.dir.path().join("source.dcm");
    fs::write(&source, instance(7)).expect("test fixture");
    let hold = "import sys,time\nheld=[open(p,'r+b') for p in sys.argv[1:]]\nprint('held',flush=True)\ntime.sleep(8)\n";
    let mut backup = std::process::Command::new("python3")
        .arg("-c")
        .arg(hold)
        .args(&paths)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(backup.stdout.take().expect("test fixture"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), "held");
    // The receiver: a slice every 400 ms, 10 slices, then closed.
    let receive = "import sys,time\ns=open(sys.argv[1],'rb').read()\nd=open(sys.argv[2],'wb',buffering=0)\nstep=len(s)//10+1\nfor k in range(11):\n    d.write(s[k*step:(k+1)*step])\n    time.sleep(0.4)\nd.close()\n";
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(receive)
        .arg(&source)
        .arg(incoming.join("new.dcm"))
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let _ = backup.wait();
    let arrived = watcher.wait(Duration::from_secs(20), |f, _| {
        tally(f, &env.tree)
            .contains_key(&("added".to_string(), "archive/incoming/new.dcm".to_string()))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(arrived, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
}

/// Review s11-r11: an encryptor that removes each stored image and writes its
/// encrypted replacement at the same path (a new inode), nine files (no mass writer),
/// keeping them open and growing them by a byte a second: each path is judged within
/// the writer wait. Before, a file whose new inode the watcher did not know yet was
/// "new" and waited for as long as it grew, up to MAX_ARRIVAL_WAIT (four hours, no
/// finding at all); a race (about one run in four failed here), not every file.
#[test]
fn r11_stored_images_replaced_by_new_inodes_kept_growing_are_judged_at_the_writer_wait() {
    let env = Env::new();
    configure(
        &env,
        "scrub_mb_per_s = 0\nquiet_ms = 100\nwriter_wait_seconds = 3\n",
    );
    let paths = image_store(&env, 9);
    let watcher = Watcher::start(&env, &[]);
    let script = "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    n=os.path.getsize(p)\n    os.unlink(p)\n    f=open(p,'wb',buffering=0)\n    f.write(os.urandom(n))\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        f.write(b'x')\n    time.sleep(1)\n";
    // Fewer than MASS_WRITER_FILES: no mass writer.
    let mut attackers = Vec::new();
    for chunk in paths.chunks(9) {
        attackers.push(python_saying(
            script,
            chunk.iter().map(|p| p.as_os_str()),
            "encrypted",
        ));
    }
    // An upper bound for failure only: the writer wait is 3 s, the debounce 100 ms.
    // Each path its alert: `no-longer-dicom`, or `removed` when the look fell between
    // the unlink and the new file.
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        paths.iter().all(|p| {
            f.iter().any(|x| {
                x["path"].as_str() == p.to_str()
                    && x["severity"] == "alert"
                    && (x["kind"] == "no-longer-dicom" || x["kind"] == "removed")
            })
        })
    });
    let still_held = stop_all(&mut attackers);
    let (_, findings, stderr) = watcher.stop();
    assert!(still_held);
    assert!(seen, "{findings:#?}\n{stderr}");
}

/// Review s11-r11: the encryptor of `an_encryptor_holding_and_touching_...` spread over
/// five processes of eight files each (under MASS_WRITER_FILES apiece) was judged only at
/// the writer wait (first finding after ~40 s). A user's processes are counted together;
/// ten forked receivers re-receiving stored images in place are not (see
/// `forked_receivers_re_receiving_stored_images_in_place_raise_no_alarm`).
#[test]
fn r11_an_encryptor_spread_over_processes_of_eight_files_is_named_within_seconds() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let script = "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    f=open(p,'r+b',buffering=0)\n    n=os.fstat(f.fileno()).st_size\n    f.write(os.urandom(n))\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        f.seek(0)\n        f.write(os.urandom(16))\n    time.sleep(0.1)\n";
    let mut attackers = Vec::new();
    for chunk in paths.chunks(8) {
        attackers.push(python_saying(
            script,
            chunk.iter().map(|p| p.as_os_str()),
            "encrypted",
        ));
    }
    // An upper bound for failure only: before, the first finding came after ~40 s.
    let everyone = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "no-longer-dicom") >= paths.len() && !alerts(f).is_empty()
    });
    let still_held = stop_all(&mut attackers);
    let (_, findings, stderr) = watcher.stop();
    assert!(everyone, "{findings:#?}\n{stderr}");
    assert!(still_held, "found while the descriptors were held");
    let named = alerts(&findings)
        .into_iter()
        .filter(|a| names_a_mass_writer(a))
        .filter(|a| {
            a["detail"]
                .as_str()
                .is_some_and(|d| d.contains("with the other processes of its user"))
        })
        .count();
    assert!(named >= 1, "{findings:#?}");
}

/// Review s11-r11, the same class spread further: twelve processes of one stored image
/// each, every one under another user (`os.setuid` after opening: the descriptors stay),
/// so neither a process nor a user holds MASS_WRITER_FILES. All of them together do.
#[test]
fn an_encryptor_of_one_file_per_process_and_user_is_named_within_seconds() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 12);
    let watcher = Watcher::start(&env, &[]);
    let script = "import os,sys,time\nf=open(sys.argv[2],'r+b',buffering=0)\nn=os.fstat(f.fileno()).st_size\nf.write(os.urandom(n))\nos.setuid(int(sys.argv[1]))\nprint('encrypted',flush=True)\nwhile True:\n    f.seek(0)\n    f.write(os.urandom(16))\n    time.sleep(0.1)\n";
    let mut attackers = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        attackers.push(python_saying(
            script,
            [
                std::ffi::OsString::from((60_000 + i).to_string()),
                path.into(),
            ],
            "encrypted",
        ));
    }
    // An upper bound for failure only: each file alone waits the writer wait (30 s).
    let everyone = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "no-longer-dicom") >= paths.len()
            && alerts(f).iter().any(|a| names_a_mass_writer(a))
    });
    let still_held = stop_all(&mut attackers);
    let (_, findings, stderr) = watcher.stop();
    assert!(everyone, "{findings:#?}\n{stderr}");
    assert!(still_held, "found while the descriptors were held");
    let named = alerts(&findings)
        .into_iter()
        .filter(|a| names_a_mass_writer(a))
        .filter(|a| {
            a["detail"]
                .as_str()
                .is_some_and(|d| d.contains("with the other processes of every user ("))
        })
        .count();
    assert!(named >= 1, "{findings:#?}");
}

/// The other side of taking processes together: ten forked receivers (`storescp
/// --fork`, one association each) re-receiving ten stored images in place (truncated,
/// written again slowly from the start, the same bytes) hold ten stored images open for
/// writing between them. Judged as they stand they would be half-written images: a
/// file being written again from its start is left out of the count, and waited for.
#[test]
fn forked_receivers_re_receiving_stored_images_in_place_raise_no_alarm() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nquiet_ms = 100\n");
    let paths = image_store(&env, 10);
    let watcher = Watcher::start(&env, &[]);
    // Read, truncate, then ten slices 300 ms apart, as a receiver writes PDUs.
    let receive = "import sys,time\ns=open(sys.argv[1],'rb').read()\nd=open(sys.argv[1],'wb',buffering=0)\nprint('open',flush=True)\nstep=len(s)//10+1\nfor k in range(11):\n    d.write(s[k*step:(k+1)*step])\n    time.sleep(0.3)\nd.close()\n";
    let mut receivers = Vec::new();
    for path in &paths {
        receivers.push(python_saying(receive, [path.as_os_str()], "open"));
    }
    for receiver in &mut receivers {
        assert!(receiver.wait().expect("test fixture").success());
    }
    // Each file's times moved (the append-only policy reports that): wait for all.
    let settled = watcher.wait(Duration::from_secs(30), |f, _| {
        paths
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(settled, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "info" || f["kind"] == "metadata-changed"),
        "{findings:#?}"
    );
}

/// Review s15-r11: a file that arrived during the run and was rewritten within
/// ARRIVAL_GRACE was judged as an arrival again (`added`, info) whatever the file at its
/// path had become. An encryptor made each stored image an "arrival" first: `ln a.dcm
/// a.bak` (or an empty `a.locked`, then `mv a.dcm a.locked`), then encrypted `a.bak` (so
/// `a.dcm`) or `a.locked` within 30 s: five stored images encrypted, only info reported.
/// A path holding a stored image under another name holds no arrival.
#[test]
fn an_image_made_an_arrival_by_a_hard_link_or_a_rename_over_one_is_no_arrival() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 4);
    let watcher = Watcher::start(&env, &[]);
    let rel = |p: &Path| {
        p.strip_prefix(&env.tree)
            .expect("in the tree")
            .display()
            .to_string()
    };
    // 0, 1: a second name in the tree; 2, 3: an empty arrival a stored image replaces.
    let targets: Vec<PathBuf> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| p.with_extension(if i < 2 { "bak" } else { "locked" }))
        .collect();
    for (i, (p, t)) in paths.iter().zip(&targets).enumerate() {
        if i < 2 {
            fs::hard_link(p, t).expect("test fixture");
        } else {
            fs::write(t, b"x").expect("test fixture");
        }
    }
    // And a real upload, rewritten through a temporary file renamed over it: an arrival.
    let upload = env.path("archive/study0/upload.dcm");
    fs::write(&upload, instance(1)).expect("test fixture");
    let arrived = watcher.wait(Duration::from_secs(30), |f, _| {
        let t = tally(f, &env.tree);
        targets
            .iter()
            .chain([&upload])
            .all(|p| t.contains_key(&("added".to_string(), rel(p))))
    });
    assert!(arrived, "{}", watcher.stderr());
    for (p, t) in paths.iter().zip(&targets).skip(2) {
        fs::rename(p, t).expect("test fixture");
    }
    let renamed = watcher.wait(Duration::from_secs(30), |f, _| {
        targets[2..].iter().all(|t| {
            f.iter()
                .any(|f| f["path"].as_str() == t.to_str() && f["kind"] != "added")
        })
    });
    assert!(renamed, "{}", watcher.stderr());
    let before = watcher.findings().len();
    for (i, t) in targets.iter().enumerate() {
        encrypt(t, i as u64 + 7);
    }
    let temporary = upload.with_extension("new");
    fs::write(&temporary, instance(2)).expect("test fixture");
    fs::rename(&temporary, &upload).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        targets
            .iter()
            .chain([&upload])
            .all(|t| f[before..].iter().any(|f| f["path"].as_str() == t.to_str()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let quiet: Vec<&Value> = findings[before..]
        .iter()
        .filter(|f| targets.iter().any(|t| f["path"].as_str() == t.to_str()))
        .filter(|f| f["severity"] == "info")
        .collect();
    assert!(
        quiet.is_empty(),
        "a stored image encrypted under a name that arrived is no arrival: {quiet:#?}"
    );
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str() == upload.to_str() && f["severity"] != "info")
        .collect();
    assert!(
        loud.is_empty(),
        "an upload rewritten is an arrival: {loud:#?}"
    );
}

/// Review s15-r11: a stored image removed (reported) and written back at its path counted
/// as an arrival, so encrypting it within ARRIVAL_GRACE was `added`/info. A path of the
/// profile is no arrival's: its rewrite is the change it is.
#[test]
fn an_image_removed_and_written_back_is_no_arrival_to_encrypt() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let saved: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| fs::read(p).expect("test fixture"))
        .collect();
    let reported = |kind: &str| {
        watcher.wait(Duration::from_secs(30), |f, _| {
            let t = tally(f, &env.tree);
            paths.iter().all(|p| {
                let rel = p.strip_prefix(&env.tree).expect("in the tree");
                t.contains_key(&(kind.to_string(), rel.display().to_string()))
            })
        })
    };
    for p in &paths {
        fs::remove_file(p).expect("test fixture");
    }
    assert!(reported("removed"), "{}", watcher.stderr());
    for (p, bytes) in paths.iter().zip(&saved) {
        fs::write(p, bytes).expect("test fixture");
    }
    assert!(reported("added"), "{}", watcher.stderr());
    let before = watcher.findings().len();
    for (i, p) in paths.iter().enumerate() {
        encrypt(p, i as u64 + 3);
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        paths
            .iter()
            .all(|p| f[before..].iter().any(|f| f["path"].as_str() == p.to_str()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let quiet: Vec<&Value> = findings[before..]
        .iter()
        .filter(|f| paths.iter().any(|p| f["path"].as_str() == p.to_str()))
        .filter(|f| f["severity"] == "info")
        .collect();
    assert!(quiet.is_empty(), "{quiet:#?}");
}

/// Review s15-r11: a write through a second name of a stored image INSIDE the tree (`ln
/// a.dcm a.bak`, then `a.bak` encrypted in place) re-verifies `a.dcm` too: the watcher's
/// index keeps every guarded name of an inode, and a write through one verifies them all
/// (it once kept one name per inode, the last stored, and mapped only writes outside the
/// roots: `a.dcm` went unverified when `a.bak` was stored before the write).
#[test]
fn encryption_through_a_hard_link_inside_the_tree_reports_the_stored_image() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let links: Vec<PathBuf> = paths.iter().map(|p| p.with_extension("bak")).collect();
    for (p, l) in paths.iter().zip(&links) {
        fs::hard_link(p, l).expect("test fixture");
    }
    // The second names stored first (the case that failed), bounded: a write through
    // one must verify the stored image whether or not the watcher has stored it.
    let stored = watcher.wait(Duration::from_secs(10), |f, _| {
        links
            .iter()
            .all(|l| f.iter().any(|f| f["path"].as_str() == l.to_str()))
    });
    assert!(stored, "{}", watcher.stderr());
    for (i, l) in links.iter().enumerate() {
        encrypt(l, i as u64 + 11);
    }
    let rels: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(&env.tree)
                .expect("in the tree")
                .display()
                .to_string()
        })
        .collect();
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        let t = tally(f, &env.tree);
        rels.iter()
            .all(|r| t.contains_key(&("no-longer-dicom".to_string(), r.clone())))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
}

/// Issue 11, session 16: a stored image moved to another guarded root was reported
/// `removed` + `added` and was then an arrival for ARRIVAL_GRACE (30 s), so encrypting it
/// there was `added`/info. A file that arrives with a stored image's content (or inode) is
/// a stored image: its rewrite is an alert, wherever it was moved to.
#[test]
fn an_image_moved_to_another_root_is_no_arrival_to_encrypt() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let other = env.dir.path().join("other");
    fs::create_dir_all(other.join("study")).expect("test fixture");
    fs::write(other.join("study/seed.dcm"), instance(0)).expect("test fixture");
    let out = env.run(&[
        "profile",
        other.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    let moved: Vec<PathBuf> = (0..paths.len())
        .map(|i| other.join(format!("study/moved{i}.dcm")))
        .collect();
    for (p, m) in paths.iter().zip(&moved) {
        fs::rename(p, m).expect("test fixture");
    }
    let arrived = watcher.wait(Duration::from_secs(30), |f, _| {
        moved
            .iter()
            .all(|m| f.iter().any(|f| f["path"].as_str() == m.to_str()))
    });
    assert!(arrived, "{}", watcher.stderr());
    let before = watcher.findings().len();
    for (i, m) in moved.iter().enumerate() {
        encrypt(m, i as u64 + 21);
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        moved.iter().all(|m| {
            f[before..]
                .iter()
                .any(|f| f["path"].as_str() == m.to_str() && f["severity"] == "alert")
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
}

/// Review s16-r11: a file arriving with a stored image's content was no arrival at all, so
/// a copy of a stored image (into an export folder, the original left in place) edited
/// there within ARRIVAL_GRACE (anonymised: a new header, new Pixel Data) was an alert
/// (`pixel-data-changed`) on benign work. A copy is an arrival; the stored image moved
/// away (copied, then the original removed: as `mv` across file systems does) is not, and
/// encrypting it is an alert.
#[test]
fn a_copy_of_a_stored_image_is_an_arrival_a_moved_one_is_not() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let export = env.path("archive/export");
    fs::create_dir_all(&export).expect("test fixture");
    let (copy, moved) = (export.join("copy.dcm"), export.join("moved.dcm"));
    // Copied outside the tree and renamed in: the watcher first sees the whole content.
    for (stored, to) in [(&paths[0], &copy), (&paths[1], &moved)] {
        let outside = env.dir.path().join("staging");
        fs::copy(stored, &outside).expect("test fixture");
        if to == &moved {
            fs::remove_file(stored).expect("test fixture");
        }
        fs::rename(&outside, to).expect("test fixture");
    }
    let reported = |path: &Path, from: usize| {
        watcher.wait(Duration::from_secs(30), |f, _| {
            f.len() > from
                && f[from..]
                    .iter()
                    .any(|f| f["path"].as_str() == path.to_str())
        })
    };
    assert!(
        reported(&copy, 0) && reported(&moved, 0),
        "{}",
        watcher.stderr()
    );
    let before = watcher.findings().len();
    fs::write(&copy, instance(77)).expect("test fixture");
    encrypt(&moved, 31);
    // Both judged after the writes: the copy in any way, the moved image as an alert.
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        let after = |path: &Path| {
            f.len() > before
                && f[before..]
                    .iter()
                    .filter(|f| f["path"].as_str() == path.to_str())
                    .any(|f| path == copy || f["severity"] == "alert")
        };
        after(&copy) && after(&moved)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let about = |path: &Path| -> Vec<&Value> {
        findings[before..]
            .iter()
            .filter(|f| f["path"].as_str() == path.to_str())
            .collect()
    };
    let loud: Vec<&Value> = about(&copy)
        .into_iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "a copy edited is an arrival: {loud:#?}");
}

/// Review s16-r11: a stored image given a second name and its first name removed
/// (`ln a.dcm a.bak; rm a.dcm`: a rename in two steps), then encrypted before the watcher
/// looks, was reported `removed` (an alert) for `a.dcm` and `added`/info for `a.bak`: the
/// encryption itself was never named. The file is followed by its inode (and birth time)
/// and compared with `a.dcm`'s profile, as a `moved` file is.
#[test]
fn a_stored_image_linked_unlinked_and_encrypted_is_an_alert_for_its_new_name() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 1);
    let watcher = Watcher::start(&env, &[]);
    let link = paths[0].with_extension("bak");
    fs::hard_link(&paths[0], &link).expect("test fixture");
    fs::remove_file(&paths[0]).expect("test fixture");
    encrypt(&link, 41);
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter()
            .any(|f| f["path"].as_str() == link.to_str() && f["severity"] == "alert")
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
}

/// Review s16-r11: a backup made with `rsync --link-dest` into a guarded tree gave stored
/// images new names inside the roots, and each was a `metadata-changed` alert ("nlink 1
/// -> 2 ... a new name may lie outside the guarded roots"). The watcher verifies every
/// guarded name of an inode on a write through any of them, so a new name that is itself
/// guarded hides nothing: when the guarded names account for every link, the change is
/// info. (The new names may be verified after the old one: the judgement waits for
/// them, `LINK_WAIT` at most.)
#[test]
fn a_link_dest_backup_inside_the_roots_is_no_alarm() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 5);
    let watcher = Watcher::start(&env, &[]);
    let backup = env.path("archive/backup");
    fs::create_dir_all(&backup).expect("test fixture");
    let status = std::process::Command::new("rsync")
        .arg("-a")
        .arg(format!("--link-dest={}", env.path("archive").display()))
        .arg("--exclude=backup")
        .arg(format!("{}/", env.path("archive").display()))
        .arg(format!("{}/", backup.display()))
        .status()
        .expect("rsync");
    assert!(status.success());
    let linked = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter()
            .filter(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/backup/study"))
            })
            .filter(|f| f["kind"] == "added")
            .count()
            >= 10
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(linked, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
}

/// Whether an alert was reported at `path` among `findings[from..]`.
fn alert_at(findings: &[Value], from: usize, path: &Path) -> bool {
    findings.len() > from
        && findings[from..]
            .iter()
            .any(|f| f["path"].as_str() == path.to_str() && f["severity"] == "alert")
}

/// Review s16-r11, the variants of `ln a.dcm a.bak; rm a.dcm; encrypt a.bak` an attacker
/// tries next: the new name in another directory, in another guarded root, encrypted
/// before the old name is removed, one of several new names, and a plain `mv` into
/// another directory then encryption. Each stored image is followed to its new name by
/// its inode, and the encryption is an alert there.
#[test]
fn a_stored_image_followed_to_a_new_name_anywhere_is_an_alert_there() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 6);
    let other = env.dir.path().join("other");
    fs::create_dir_all(other.join("study")).expect("test fixture");
    fs::write(other.join("study/seed.dcm"), instance(0)).expect("test fixture");
    let out = env.run(&[
        "profile",
        other.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    // image_store puts image i in study{i % 5}: each new name is in another directory.
    let elsewhere =
        |i: usize, name: &str| env.path(&format!("archive/study{}/{name}", (i + 1) % 5));
    // Each case's names: an alert at one of them (one file, however many names).
    let mut encrypted: Vec<Vec<PathBuf>> = Vec::new();
    // 0: another directory; link, unlink, encrypt.
    let to = elsewhere(0, "0.bak");
    fs::hard_link(&paths[0], &to).expect("test fixture");
    fs::remove_file(&paths[0]).expect("test fixture");
    encrypt(&to, 51);
    encrypted.push(vec![to]);
    // 1: another root.
    let to = other.join("study/1.dcm");
    fs::hard_link(&paths[1], &to).expect("test fixture");
    fs::remove_file(&paths[1]).expect("test fixture");
    encrypt(&to, 52);
    encrypted.push(vec![to]);
    // 2: encrypted through the new name before the old one is removed.
    let to = elsewhere(2, "2.bak");
    fs::hard_link(&paths[2], &to).expect("test fixture");
    encrypt(&to, 53);
    fs::remove_file(&paths[2]).expect("test fixture");
    encrypted.push(vec![to]);
    // 3: two new names, the old one removed, one encrypted (so both are): the name
    // verified first is followed from the stored image and alerts; the other is then
    // a name of that file, already reported (review s17-r11: the test asked for an
    // alert at 3.bak and failed when 3.keep was verified first, about half the runs).
    let (to, also) = (elsewhere(3, "3.bak"), paths[3].with_extension("keep"));
    fs::hard_link(&paths[3], &also).expect("test fixture");
    fs::hard_link(&paths[3], &to).expect("test fixture");
    fs::remove_file(&paths[3]).expect("test fixture");
    encrypt(&to, 54);
    encrypted.push(vec![to, also]);
    // 4: moved into another directory, then encrypted.
    let to = elsewhere(4, "4.moved");
    fs::rename(&paths[4], &to).expect("test fixture");
    encrypt(&to, 55);
    encrypted.push(vec![to]);
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        encrypted
            .iter()
            .all(|names| names.iter().any(|p| alert_at(f, 0, p)))
    });
    let (_, findings, stderr) = watcher.stop();
    let missed: Vec<&Vec<PathBuf>> = encrypted
        .iter()
        .filter(|names| !names.iter().any(|p| alert_at(&findings, 0, p)))
        .collect();
    assert!(seen, "no alert at {missed:?}: {findings:#?}\n{stderr}");
    // The untouched image is no part of it.
    assert!(
        !findings
            .iter()
            .any(|f| f["path"].as_str() == paths[5].to_str()),
        "{findings:#?}"
    );
}

/// Review s16-r11, the other side: an inode number freed by a removal is soon given to
/// the next new file on the file system. A new image given a removed stored image's
/// inode (in the same look as the removal, or a later one) is an arrival, not the stored
/// image under a new name: no `moved` and no alert about it (the removal itself is one).
#[test]
fn a_new_file_given_a_removed_images_inode_number_is_an_arrival() {
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let mut reused: Vec<PathBuf> = Vec::new();
    for (n, stored) in paths.iter().enumerate() {
        let ino = fs::metadata(stored).expect("test fixture").ino();
        fs::remove_file(stored).expect("test fixture");
        if n == 1 {
            // The removal seen first: the new file comes in a later look.
            let gone = watcher.wait(Duration::from_secs(20), |f, _| {
                f.iter()
                    .any(|f| f["path"].as_str() == stored.to_str() && f["kind"] == "removed")
            });
            assert!(gone, "{}", watcher.stderr());
        }
        // New images until one is given the freed number (ext4 gives it to the next).
        let dir = stored.parent().expect("in a study");
        let found = (0..64).find_map(|i| {
            let new = dir.join(format!("new{n}-{i}.dcm"));
            fs::write(&new, instance(900 + 64 * n + i)).expect("test fixture");
            (fs::metadata(&new).expect("test fixture").ino() == ino).then_some(new)
        });
        match found {
            Some(new) => reused.push(new),
            None => eprintln!("the file system gave inode {ino} to no new file: case {n} not run"),
        }
    }
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        reused
            .iter()
            .all(|p| f.iter().any(|f| f["path"].as_str() == p.to_str()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let wrong: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            reused.iter().any(|p| f["path"].as_str() == p.to_str())
                && (f["severity"] != "info" || f["kind"] == "moved")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "a new file taken for a stored one: {wrong:#?}"
    );
}

/// Review s16-r11: a dedup tool (util-linux `hardlink`, keeping the oldest file) linking
/// copies of stored images that arrived inside the guarded roots to the stored images
/// gives those names that are all guarded: no alarm. A name made outside the roots
/// beside them stays an alert (issue 11 item 1), for a deduplicated image too (its
/// guarded names do not account for every link then).
#[test]
fn a_dedup_inside_the_roots_is_no_alarm_a_name_outside_still_is() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 4);
    let watcher = Watcher::start(&env, &[]);
    // Copies of two stored images arrive in another directory; the dedup links them.
    let dups = env.path("archive/dups");
    fs::create_dir_all(&dups).expect("test fixture");
    let copies: Vec<PathBuf> = paths[..2]
        .iter()
        .map(|p| dups.join(p.file_name().expect("a name")))
        .collect();
    for (p, c) in paths.iter().zip(&copies) {
        fs::copy(p, c).expect("test fixture");
    }
    let arrived = watcher.wait(Duration::from_secs(20), |f, _| {
        copies
            .iter()
            .all(|c| f.iter().any(|f| f["path"].as_str() == c.to_str()))
    });
    assert!(arrived, "{}", watcher.stderr());
    // Equal content whatever the times (`-t`), the oldest file kept (`-O`).
    let status = std::process::Command::new("hardlink")
        .args(["-t", "-O"])
        .arg(env.path("archive"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("hardlink runs");
    assert!(status.success());
    let linked = watcher.wait(Duration::from_secs(20), |f, _| {
        paths[..2].iter().all(|p| {
            f.iter().any(|f| {
                f["path"].as_str() == p.to_str()
                    && f["kind"] == "metadata-changed"
                    && f["severity"] == "info"
            })
        })
    });
    assert!(linked, "{:#?}\n{}", watcher.findings(), watcher.stderr());
    let quiet = watcher.findings();
    // Now a name outside for image 2, and one for a deduplicated image: alerts.
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    for (i, p) in [&paths[2], &copies[0]].into_iter().enumerate() {
        fs::hard_link(p, outside.join(i.to_string())).expect("test fixture");
    }
    let loud = |f: &[Value], names: &[&PathBuf]| {
        f.iter().any(|f| {
            f["kind"] == "metadata-changed"
                && f["severity"] == "alert"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("outside the guarded roots"))
                && names.iter().any(|p| f["path"].as_str() == p.to_str())
        })
    };
    let alerted = watcher.wait(Duration::from_secs(20), |f, _| {
        loud(f, &[&paths[2]]) && loud(f, &[&paths[0], &copies[0]])
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(alerted, "{findings:#?}\n{stderr}");
    assert_no_alarm(&quiet);
}

/// Review s17-r11: a link-count rise held for its other names ([`LINK_WAIT`]) was judged
/// by the link count at the end of the wait: names made outside the roots, the store
/// encrypted through them and the names removed within the wait, each rise ("nlink 1 ->
/// 2") was info, "every one of its 1 names lies in the guarded roots". A rise is judged
/// by the count it reports (the outside name was there): it stays an alert. (Session
/// 20: two hundred of them within BULK_LINK_WINDOW are one alert for the lot, each
/// file's own rise info saying so; never "every one of its names lies in the roots".)
#[test]
fn r11_a_name_outside_removed_within_the_wait_leaves_the_rise_an_alert() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 200);
    let watcher = Watcher::start(&env, &[]);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    let links: Vec<PathBuf> = (0..paths.len())
        .map(|i| outside.join(format!("x{i}")))
        .collect();
    for (p, l) in paths.iter().zip(&links) {
        fs::hard_link(p, l).expect("test fixture");
    }
    for (i, l) in links.iter().enumerate() {
        encrypt(l, i as u64 + 61);
    }
    for l in &links {
        fs::remove_file(l).expect("test fixture");
    }
    let everyone = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "no-longer-dicom") >= paths.len()
    });
    // Every held change settled (LINK_WAIT is 3 s).
    std::thread::sleep(Duration::from_secs(4));
    let (_, findings, stderr) = watcher.stop();
    assert!(everyone, "{stderr}");
    let softened: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "metadata-changed"
                && f["severity"] == "info"
                && f["detail"].as_str().is_some_and(|d| {
                    d.contains("nlink 1 -> 2") && d.contains("lies in the guarded roots")
                })
        })
        .collect();
    assert!(
        softened.is_empty(),
        "{} rises to a name outside made info: {:#?}",
        softened.len(),
        softened.first()
    );
    let copy = findings
        .iter()
        .filter(|f| {
            f["kind"] == "metadata-changed"
                && f["severity"] == "alert"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("stored files were given a name outside"))
        })
        .count();
    assert!(copy >= 1, "{findings:#?}");
}

/// Review s17-r11: a name made for a stored image inside the roots is info (its guarded
/// names account for every link), and a rename does not change a link count: `ln a.dcm
/// study/x.dcm.part` (info), then `mv study/x.dcm.part /outside/x` (the arrival gone,
/// info) left the stored image with a name outside the roots and nothing but info said
/// (the main branch alerted the rise). A guarded name leaving while the file keeps more
/// links than its guarded names is the alert a new name outside is.
#[test]
fn r11_a_guarded_second_name_renamed_out_of_the_roots_is_an_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    let inside = paths[0].with_file_name("x.dcm.part");
    fs::hard_link(&paths[0], &inside).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter().any(|f| f["path"].as_str() == inside.to_str())
    });
    assert!(seen, "{}", watcher.stderr());
    // The other side: a second name renamed into another guarded directory is no alarm.
    let second = paths[1].with_extension("bak");
    fs::hard_link(&paths[1], &second).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter().any(|f| f["path"].as_str() == second.to_str())
    });
    assert!(seen, "{}", watcher.stderr());
    let moved_in = env.path("archive/study2/1.bak");
    fs::rename(&second, &moved_in).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter().any(|f| f["path"].as_str() == moved_in.to_str())
    });
    assert!(seen, "{}", watcher.stderr());
    std::thread::sleep(links_wait());
    // (The move itself is what the policy says of a move in an image store.)
    let links: Vec<Value> = watcher
        .findings()
        .into_iter()
        .filter(|f| f["kind"] == "metadata-changed")
        .collect();
    assert_no_alarm(&links);
    let before = watcher.findings().len();
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    fs::rename(&inside, outside.join("x")).expect("test fixture");
    let alerted = watcher.wait(Duration::from_secs(10), |f, _| {
        f.len() > before && f[before..].iter().any(|f| f["severity"] != "info")
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(alerted, "{:#?}\n{stderr}", &findings[before..]);
    let about = findings[before..]
        .iter()
        .find(|f| f["severity"] != "info")
        .expect("found above");
    assert_eq!(about["path"].as_str(), paths[0].to_str(), "{about:#?}");
}

/// `LINK_WAIT` (3 s) and a margin: every held link-count change settled.
fn links_wait() -> Duration {
    Duration::from_secs(4)
}

/// Review s17-r11: a backup made inside the roots with `cp -al` (info since s16-r11) and
/// then rotated away (`rm -rf`) was a `removed` alert per file and `ransomware-suspected`
/// (also on main): each removed name's file is still held by its stored name, nothing is
/// lost. Such a removal is info; the stored name removed stays an alert.
#[test]
fn r11_a_hard_linked_backup_inside_the_roots_rotated_away_is_no_alarm() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 30);
    let watcher = Watcher::start(&env, &[]);
    let backup = env.path("backup");
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(env.path("archive"))
        .arg(&backup)
        .status()
        .expect("cp runs");
    assert!(status.success());
    let linked = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .filter(|f| {
                f["kind"] == "added" && f["path"].as_str().is_some_and(|p| p.ends_with(".dcm"))
            })
            .count()
            >= paths.len()
    });
    assert!(linked, "{}", watcher.stderr());
    std::thread::sleep(links_wait());
    let before = watcher.findings().len();
    fs::remove_dir_all(&backup).expect("test fixture");
    let gone = watcher.wait(Duration::from_secs(20), |f, _| {
        f.len() > before
            && f[before..]
                .iter()
                .filter(|f| f["kind"] == "removed")
                .count()
                >= paths.len()
    });
    std::thread::sleep(links_wait());
    // The stored name removed is still an alert.
    let after = watcher.findings().len();
    fs::remove_file(&paths[0]).expect("test fixture");
    let alerted = watcher.wait(Duration::from_secs(10), |f, _| {
        alert_at(f, after, &paths[0])
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(gone, "{:#?}\n{stderr}", &findings[before..]);
    assert_no_alarm(&findings[..after]);
    assert!(alerted, "{:#?}\n{stderr}", &findings[after..]);
}

/// Review s17-r11: a stored image of an append-only store given a name in a guarded
/// root of a laxer policy (`volatile`), then removed from the store, was followed there
/// and judged by that root's policy: `moved`/info, and its removal there a warning. On
/// main the removal from the store was an alert. The move (and what changed on the way)
/// is judged by the policy the file was stored under (fixed in session 18).
#[test]
fn r11_an_image_linked_into_a_volatile_root_then_removed_from_the_store_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let vol = env.dir.path().join("vol");
    fs::create_dir_all(&vol).expect("test fixture");
    fs::write(vol.join("seed"), b"x").expect("test fixture");
    let out = env.run(&[
        "profile",
        vol.to_str().expect("utf-8 temp path"),
        "--policy",
        "volatile",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    let other = vol.join("a");
    fs::hard_link(&paths[0], &other).expect("test fixture");
    let seen = watcher.wait(Duration::from_secs(10), |f, _| {
        f.iter().any(|f| f["path"].as_str() == other.to_str())
    });
    assert!(seen, "{}", watcher.stderr());
    std::thread::sleep(links_wait());
    let before = watcher.findings().len();
    fs::remove_file(&paths[0]).expect("test fixture");
    let alerted = watcher.wait(Duration::from_secs(10), |f, _| {
        f.len() > before && f[before..].iter().any(|f| f["severity"] == "alert")
    });
    assert!(alerted, "{:#?}", &watcher.findings()[before..]);
    // The same class in one step: a stored image renamed out of the store into the
    // laxer root is the store's move, an alert wherever its new name is.
    let before = watcher.findings().len();
    let moved = vol.join("b");
    fs::rename(&paths[1], &moved).expect("test fixture");
    let alerted = watcher.wait(Duration::from_secs(10), |f, _| {
        f.len() > before
            && f[before..].iter().any(|f| {
                f["severity"] == "alert"
                    && (f["path"].as_str() == moved.to_str()
                        || f["path"].as_str() == paths[1].to_str())
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(alerted, "{:#?}\n{stderr}", &findings[before..]);
}

/// Session 18: a link-count change held for its other names ([`LINK_WAIT`]) was
/// published alone when its wait ended, past the ransomware detector: a canary given a
/// name outside the roots (where it can be encrypted unseen by path) raised a
/// `metadata-changed` alert and never `ransomware-suspected`, which a canary touched any
/// other way raises at once. Released, it is reported as every finding is.
#[test]
fn a_canary_linked_outside_the_roots_is_ransomware_suspected() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    let canaries = env.path("zz-canary");
    configure(
        &env,
        &format!(
            "scrub_mb_per_s = 0\ncanary_dir = \"{}\"\n",
            canaries.display()
        ),
    );
    let watcher = Watcher::start(&env, &[env.tree_str(), "--policy", "append-only"]);
    let canary = canaries.join("000-pacsguard-canary.dcm");
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    fs::hard_link(&canary, outside.join("x")).expect("test fixture");
    let raised = watcher.wait(links_wait() + Duration::from_secs(10), |f, _| {
        count(f, "ransomware-suspected") > 0
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let detail = alerts(&findings)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("canary"), "{detail}");
    assert!(detail.contains("nlink 1 -> 2"), "{detail}");
}

/// Session 18: a link-count change held for its other names lost the writer fanotify
/// named ("written by …"), which every other finding about the path carries: an image
/// given a name outside the roots and written through it left a `metadata-changed`
/// alert naming nobody. The image is held open for writing until the rewrite is judged
/// (at the settle time, as it stands), so its writes' fanotify events are in before the
/// one verification that sees both changes.
#[test]
fn a_link_count_alert_held_for_its_names_says_who_wrote_the_file() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside).expect("test fixture");
    let link = outside.join("x");
    let rel = paths[1]
        .strip_prefix(&env.tree)
        .expect("test fixture")
        .display()
        .to_string();
    let judged = {
        use std::io::Write as _;
        let len = fs::metadata(&paths[1]).expect("test fixture").len() as usize;
        let held = fs::OpenOptions::new()
            .write(true)
            .open(&paths[1])
            .expect("test fixture");
        fs::hard_link(&paths[1], &link).expect("test fixture");
        let mut through = fs::OpenOptions::new()
            .write(true)
            .open(&link)
            .expect("test fixture");
        through.write_all(&keystream(len, 9)).expect("test fixture");
        drop(through);
        let judged = watcher.wait(Duration::from_secs(40), |f, _| {
            tally(f, &env.tree).contains_key(&("no-longer-dicom".to_string(), rel.clone()))
        });
        drop(held);
        judged
    };
    let seen = watcher.wait(links_wait() + Duration::from_secs(10), |f, _| {
        tally(f, &env.tree).contains_key(&("metadata-changed".to_string(), rel.clone()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let finding = findings
        .iter()
        .find(|f| f["kind"] == "metadata-changed" && f["path"].as_str() == paths[1].to_str())
        .expect("found above");
    let detail = finding["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("nlink 1 -> 2"), "{detail}");
    assert!(detail.contains("link count changed"), "{detail}");
    assert!(judged, "{findings:#?}\n{stderr}");
    let content = findings
        .iter()
        .find(|f| f["kind"] == "no-longer-dicom")
        .expect("found above");
    let said = content["detail"].as_str().unwrap_or_default();
    assert!(said.contains("written by"), "the rewrite: {content:#?}");
    assert!(detail.contains("written by"), "{finding:#?}\n{findings:#?}");
}

/// Review s18-r11: a stored image renamed, unchanged, from a root hashed with BLAKE3
/// into a guarded root hashed with SHA-256 (`profile --hash sha256`, FIPS settings) was
/// followed there and compared digest for digest across the two algorithms: a false
/// `pixel-data-changed` alert ("the Pixel Data ... changed, and its header too") for a
/// file nobody wrote. Its new name is hashed with the algorithm it was stored under
/// before it is compared; an image encrypted on the way is still its content alert.
#[test]
fn r11_an_image_moved_into_a_root_of_another_hash_is_no_content_change() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let fips = env.dir.path().join("fips");
    fs::create_dir_all(&fips).expect("test fixture");
    fs::write(fips.join("seed"), b"x").expect("test fixture");
    let out = env.run(&[
        "profile",
        fips.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
        "--hash",
        "sha256",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    let moved = fips.join("a.dcm");
    fs::rename(&paths[0], &moved).expect("test fixture");
    let encrypted = fips.join("b.dcm");
    let len = fs::metadata(&paths[1]).expect("test fixture").len() as usize;
    fs::rename(&paths[1], &encrypted).expect("test fixture");
    fs::write(&encrypted, keystream(len, 5)).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        let on = |p: &Path, kind: &str| {
            f.iter()
                .any(|f| f["kind"] == kind && f["path"].as_str() == p.to_str())
        };
        on(&moved, "moved") && on(&encrypted, "no-longer-dicom")
    });
    // What comes after the moves' verification (a late event) is in too.
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let content: Vec<_> = findings
        .iter()
        .filter(|f| f["path"].as_str() == moved.to_str())
        .filter(|f| {
            !["added", "moved", "metadata-changed"]
                .contains(&f["kind"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(content.is_empty(), "{content:#?}");
}

/// Review s18-r11: an executable planted in the image store through a guarded log root
/// (`growing`: a stored empty file there may grow into anything without a finding),
/// then renamed into the store, was followed as the log root's file and judged by its
/// policy: a `moved` warning, and never screened (only `added` files were), where the
/// same file written into the store is an `executable-file` alert. A file moved in from
/// another root is screened as an arrival.
#[test]
fn r11_an_executable_moved_in_from_a_log_root_is_screened() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 1);
    let logs = env.dir.path().join("logs");
    fs::create_dir_all(&logs).expect("test fixture");
    let grown = logs.join("x.dcm");
    fs::write(&grown, b"").expect("test fixture");
    let out = env.run(&[
        "profile",
        logs.to_str().expect("utf-8 temp path"),
        "--policy",
        "growing",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    fs::write(&grown, fs::read("/bin/true").expect("/bin/true")).expect("test fixture");
    // Its growth verified (no finding: a growing file grows), it is stored there.
    std::thread::sleep(Duration::from_secs(3));
    let planted = env.path("archive/study0/x.dcm");
    fs::rename(&grown, &planted).expect("test fixture");
    let screened = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter().any(|f| {
            f["kind"] == "executable-file"
                && f["severity"] == "alert"
                && f["path"].as_str() == planted.to_str()
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(screened, "{findings:#?}\n{stderr}");
}

/// Review s18-r11: a DICOM image stored in a guarded log root (`growing`: hashed whole,
/// not as header and Pixel Data) renamed unchanged into the image store was compared
/// with a digest of the other kind: a false `content-changed` alert ("the first N bytes
/// were rewritten"). It is hashed again as its own root hashed it before it is compared.
#[test]
fn r11_an_image_moved_unchanged_from_a_log_root_is_no_content_change() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 1);
    let logs = env.dir.path().join("logs");
    fs::create_dir_all(&logs).expect("test fixture");
    let image = logs.join("kept.dcm");
    let pixels: Vec<u8> = (0..65_536u32).map(|j| (j % 251) as u8).collect();
    let bytes = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.9.77")
        .pixels(pacsguard_testkit::Pixels::Native(pixels))
        .build();
    fs::write(&image, bytes).expect("test fixture");
    let out = env.run(&[
        "profile",
        logs.to_str().expect("utf-8 temp path"),
        "--policy",
        "growing",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    let moved = env.path("archive/study0/kept.dcm");
    fs::rename(&image, &moved).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|f| f["kind"] == "moved" && f["path"].as_str() == moved.to_str())
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let content: Vec<_> = findings
        .iter()
        .filter(|f| f["path"].as_str() == moved.to_str())
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert!(content.is_empty(), "{content:#?}");
}

/// Session 19: a file followed from another root that hashes otherwise is hashed again as
/// its old root hashed it, on the event loop: a study of gigabytes stalled every other
/// event meanwhile. Over MAX_LOOP_REHASH_BYTES it is not hashed again there: its move is
/// reported, and a warning says its content was not compared (never a false alarm).
#[test]
fn an_image_moved_from_a_log_root_over_the_rehash_limit_is_not_hashed_on_the_loop() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 1);
    let logs = env.dir.path().join("logs");
    fs::create_dir_all(&logs).expect("test fixture");
    let image = logs.join("big.dcm");
    // MAX_LOOP_REHASH_BYTES (32 MiB) and a little more.
    let pixels: Vec<u8> = (0..(32u32 << 20) + 4096).map(|j| (j % 251) as u8).collect();
    let bytes = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.9.78")
        .pixels(pacsguard_testkit::Pixels::Native(pixels))
        .build();
    fs::write(&image, bytes).expect("test fixture");
    let out = env.run(&[
        "profile",
        logs.to_str().expect("utf-8 temp path"),
        "--policy",
        "growing",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    let moved = env.path("archive/study0/big.dcm");
    fs::rename(&image, &moved).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        let on = |kind: &str| {
            f.iter()
                .any(|f| f["kind"] == kind && f["path"].as_str() == moved.to_str())
        };
        on("moved") && on("not-inspected")
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let note = findings
        .iter()
        .find(|f| f["kind"] == "not-inspected" && f["path"].as_str() == moved.to_str())
        .expect("the warning");
    assert_eq!(note["severity"], "warning");
    assert!(
        note["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_LOOP_REHASH_BYTES")),
        "{note:#?}"
    );
    let content: Vec<_> = findings
        .iter()
        .filter(|f| f["path"].as_str() == moved.to_str())
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert!(content.is_empty(), "{content:#?}");
}

/// Session 19: `cp -al` of the live store (a hard-link backup, as administrators make
/// before an upgrade) gave every stored file, the canaries too, a name outside the roots:
/// a link-count finding per file, and the canary's link a `ransomware-suspected` alert.
/// A canary linked with BULK_LINK_FILES other stored files is part of a copy of the
/// store: no `ransomware-suspected`. Writes through the copy's names are still caught
/// (by inode), and a canary linked on its own still alerts
/// (`a_canary_linked_outside_the_roots_is_ransomware_suspected`).
#[test]
fn a_hard_link_backup_of_the_live_store_is_no_ransomware_and_writes_through_it_are_caught() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    let canaries = env.path("zz-canary");
    configure(
        &env,
        &format!(
            "scrub_mb_per_s = 0\ncanary_dir = \"{}\"\n",
            canaries.display()
        ),
    );
    let mut paths = Vec::new();
    for i in 0..12 {
        let dir = env.path(&format!("archive/study{}", i % 3));
        fs::create_dir_all(&dir).expect("test fixture");
        let path = dir.join(format!("{i}.dcm"));
        fs::write(&path, instance(i)).expect("test fixture");
        paths.push(path);
    }
    let watcher = Watcher::start(&env, &[env.tree_str(), "--policy", "append-only"]);
    let backup = env.dir.path().join("backup");
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(&env.tree)
        .arg(&backup)
        .status()
        .expect("cp runs");
    assert!(status.success());
    // Every stored file's new name reported (the policy's finding), and the canary's.
    let reported = watcher.wait(links_wait() + Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|f| f["kind"] == "metadata-changed" && f["path"].as_str() == p.to_str())
        })
    });
    // Past the canary's wait for the rest of a copy (BULK_LINK_WINDOW, 5 s).
    std::thread::sleep(Duration::from_secs(6));
    let before = watcher.findings().len();
    assert!(reported, "{:#?}", watcher.findings());
    // Then one image encrypted through its backup name.
    let through = backup.join("archive/study0/0.dcm");
    encrypt(&through, 9);
    let caught = watcher.wait(Duration::from_secs(20), |f, _| {
        f[before..]
            .iter()
            .any(|f| f["kind"] == "no-longer-dicom" && f["path"].as_str() == paths[0].to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(caught, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// Issue 11 (session 20): `cp -al` of the store into a directory no root covers gave
/// each stored file its own link-count alert (twenty here, thousands in a real store):
/// a page per file for an administrator's backup. One alert for the copy, naming how
/// many files and the first of them; each file's own finding is info.
#[test]
fn a_hard_link_copy_of_the_store_outside_the_roots_is_one_alert() {
    if !common::is_root() {
        return; // a link made outside every watched directory reaches only fanotify
    }
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    let backup = env.dir.path().join("backup");
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(&env.tree)
        .arg(&backup)
        .status()
        .expect("cp runs");
    assert!(status.success());
    let copy = |f: &Value| {
        f["kind"] == "metadata-changed"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("stored files were given a name outside"))
    };
    let reported = watcher.wait(links_wait() + Duration::from_secs(20), |f, _| {
        f.iter().any(copy)
            && paths.iter().all(|p| {
                f.iter()
                    .any(|f| f["kind"] == "metadata-changed" && f["path"].as_str() == p.to_str())
            })
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(reported, "{findings:#?}\n{stderr}");
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert_eq!(loud.len(), 1, "{loud:#?}");
    assert!(copy(loud[0]), "{loud:#?}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// Session 19: a stored image moved from one guarded root to another was reported twice:
/// `removed` under its old root (whose verification came first and had not seen the new
/// name yet) and `moved` under the new one. It is one move.
#[test]
fn an_image_moved_to_another_guarded_root_is_one_move() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 3);
    let other = env.dir.path().join("store2");
    fs::create_dir_all(&other).expect("test fixture");
    fs::write(other.join("kept.dcm"), instance(40)).expect("test fixture");
    let out = env.run(&[
        "profile",
        other.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    // Both ways: into the second store, and out of it into the first.
    let there = other.join("0.dcm");
    fs::rename(&paths[0], &there).expect("test fixture");
    let back = env.path("archive/study1/kept.dcm");
    fs::rename(other.join("kept.dcm"), &back).expect("test fixture");
    let moved = watcher.wait(Duration::from_secs(20), |f, _| {
        [&there, &back].iter().all(|p| {
            f.iter()
                .any(|f| f["kind"] == "moved" && f["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(moved, "{findings:#?}\n{stderr}");
    let removed: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .collect();
    assert!(removed.is_empty(), "one move each: {removed:#?}");
    assert_eq!(count(&findings, "moved"), 2, "{findings:#?}");
}

/// Review s19-r11: the group count left out every file whose writer sits at its end
/// while it is shorter than stored and begins as DICOM (a receiver writing it again from
/// its start). An encryptor does just that: `open(O_TRUNC)`, the first 132 bytes put
/// back (preamble and `DICM`), random bytes up to one byte short of the stored length,
/// and then `pwrite` behind its position (the file keeps changing, the descriptor stays
/// at the end), eight files per process (under MASS_WRITER_FILES each). Every file was
/// left out of the group and waited the writer wait (30 s): the attack is to be named
/// within seconds, as its full-length spelling is.
#[test]
fn an_encryptor_truncating_and_writing_back_a_dicom_start_is_named_within_seconds() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 40);
    let watcher = Watcher::start(&env, &[]);
    let script = "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    s=open(p,'rb').read()\n    f=open(p,'wb',buffering=0)\n    f.write(s[:132]+os.urandom(len(s)-133))\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        os.pwrite(f.fileno(),os.urandom(16),200)\n    time.sleep(0.1)\n";
    let mut attackers = Vec::new();
    for chunk in paths.chunks(8) {
        attackers.push(python_saying(
            script,
            chunk.iter().map(|p| p.as_os_str()),
            "encrypted",
        ));
    }
    // An upper bound for failure only: each file alone waits the writer wait (30 s).
    let named = watcher.wait(Duration::from_secs(20), |f, _| {
        alerts(f).iter().any(|a| names_a_mass_writer(a))
    });
    let still_held = stop_all(&mut attackers);
    let (_, findings, stderr) = watcher.stop();
    assert!(named, "{findings:#?}\n{stderr}");
    assert!(still_held, "found while the descriptors were held");
}

/// Review s19-r11: a study directory moved whole from one guarded root to another (one
/// rename: its files are never due by name) had each file reported twice, `added` under
/// the new root (verified first, the old names gone but still in the old root's view)
/// and `moved` under the old one. One `moved` per file, both ways.
#[test]
fn a_study_directory_moved_to_another_guarded_root_is_one_move_per_file() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 10);
    let other = env.dir.path().join("store2");
    fs::create_dir_all(other.join("study9")).expect("test fixture");
    fs::write(other.join("study9/a.dcm"), instance(40)).expect("test fixture");
    fs::write(other.join("study9/b.dcm"), instance(41)).expect("test fixture");
    let out = env.run(&[
        "profile",
        other.to_str().expect("utf-8 temp path"),
        "--policy",
        "append-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let watcher = Watcher::start(&env, &[]);
    fs::rename(env.path("archive/study1"), other.join("study1")).expect("test fixture");
    fs::rename(other.join("study9"), env.path("archive/study9")).expect("test fixture");
    let moved = [
        other.join("study1/1.dcm"),
        other.join("study1/6.dcm"),
        env.path("archive/study9/a.dcm"),
        env.path("archive/study9/b.dcm"),
    ];
    let all = watcher.wait(Duration::from_secs(20), |f, _| {
        moved.iter().all(|p| {
            f.iter()
                .any(|f| f["kind"] == "moved" && f["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(all, "{findings:#?}\n{stderr}");
    let files: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "removed" || f["kind"] == "added")
        .filter(|f| f["path"].as_str().is_some_and(|p| p.ends_with(".dcm")))
        .collect();
    assert!(files.is_empty(), "one move each: {files:#?}");
    assert_eq!(count(&findings, "moved"), moved.len(), "{findings:#?}");
}

/// Review s19-r11: the encryptor of
/// `an_encryptor_truncating_and_writing_back_a_dicom_start_is_named_within_seconds`
/// writing half of each file's length at first (the DICOM start put back), then
/// appending a few bytes every 0.1 s: each file kept growing, shorter than stored, its
/// writer at its end, as a receiver's does, and was left out of the group's count for
/// as long (hours for an image of 500 KB at 100 bytes/s); each file was judged alone at
/// the writer wait (30 s). A file is now taken for a receiver's only while its bytes so
/// far read as the stored instance written again (its File Meta Information and data
/// set, naming its SOP Instance UID); `forked_receivers_re_receiving_stored_images_in_place_raise_no_alarm`
/// and `a_study_received_again_by_storescp_from_another_node_raises_no_alarm` are the
/// other side.
#[test]
fn an_encryptor_growing_each_file_slowly_is_named_within_seconds() {
    slowly_growing_encryptor("132");
}

/// The same, keeping the whole File Meta Information (naming the instance) before the
/// random bytes: the data set so far does not read as the stored instance.
#[test]
fn an_encryptor_keeping_the_file_meta_and_growing_each_file_slowly_is_named_within_seconds() {
    slowly_growing_encryptor("144+int.from_bytes(s[140:144],'little')");
}

/// Review s21: the same, keeping every byte up to the Pixel Data's value (the whole
/// header, read by `prefix_of` as the stored instance written again) and encrypting the
/// pixels: each file looked received, and no writer was counted before the writer wait.
#[test]
fn an_encryptor_keeping_the_header_and_growing_each_file_slowly_is_named_within_seconds() {
    slowly_growing_encryptor("s.index(b'\\xe0\\x7f\\x10\\x00')+12");
}

/// Review s21: keeping the first 4 KiB (the header and the first pixels).
#[test]
fn an_encryptor_keeping_the_first_4_kib_and_growing_each_file_slowly_is_named_within_seconds() {
    slowly_growing_encryptor("4096");
}

/// Review s21: keeping the first 64 KiB, all that `RECEIVED_PREFIX_BYTES` reads, of
/// images of 256 KiB of pixels.
#[test]
fn an_encryptor_keeping_the_first_64_kib_and_growing_each_file_slowly_is_named_within_seconds() {
    slowly_growing_encryptor_of(watcher::image_store_sized, 262_144, "65536");
}

/// Each stored image rewritten with its first `kept` bytes (a Python expression of the
/// stored bytes `s`) and random bytes to half its length, then grown by 10 bytes every
/// 0.1 s, by five processes holding eight files each.
fn slowly_growing_encryptor(kept: &str) {
    slowly_growing_encryptor_of(watcher::image_store_sized, 65_536, kept);
}

/// The same on a store made by `store` with `pixel_bytes` per image.
fn slowly_growing_encryptor_of(
    store: fn(&Env, usize, usize) -> Vec<PathBuf>,
    pixel_bytes: usize,
    kept: &str,
) {
    let script = format!(
        "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    s=open(p,'rb').read()\n    k={kept}\n    f=open(p,'wb',buffering=0)\n    f.write(s[:k]+os.urandom(len(s)//2))\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        f.write(os.urandom(10))\n    time.sleep(0.1)\n"
    );
    a_mass_writer_is_named_within_seconds(store, pixel_bytes, &script);
}

/// Review s21: an encryptor that cuts each stored image to half its length (its first
/// half kept, its writer at the end), encrypts the middle in place (from 4 KiB to 64 KiB
/// before the end) and grows each file by 10 zero bytes every 0.1 s: the bytes written
/// last are the image's own, only the middle is random.
#[test]
fn an_encryptor_encrypting_behind_a_growing_end_is_named_within_seconds() {
    let script = "import os,sys,time\nheld=[]\nfor p in sys.argv[1:]:\n    f=open(p,'r+b',buffering=0)\n    n=os.fstat(f.fileno()).st_size//2\n    f.truncate(n)\n    os.pwrite(f.fileno(),os.urandom(n-4096-65536),4096)\n    f.seek(0,2)\n    held.append(f)\nprint('encrypted',flush=True)\nwhile True:\n    for f in held:\n        f.truncate(f.seek(0,2)+10)\n        f.seek(0,2)\n    time.sleep(0.1)\n";
    a_mass_writer_is_named_within_seconds(watcher::image_store_sized, 262_144, script);
}

/// Forty stored images made by `store` (`pixel_bytes` each), attacked by five processes
/// running `script` on eight files each (its first line says `encrypted`): a mass writer
/// is named within 20 s.
fn a_mass_writer_is_named_within_seconds(
    store: fn(&Env, usize, usize) -> Vec<PathBuf>,
    pixel_bytes: usize,
    script: &str,
) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = store(&env, 40, pixel_bytes);
    let watcher = Watcher::start(&env, &[]);
    let mut attackers = Vec::new();
    for chunk in paths.chunks(8) {
        attackers.push(python_saying(
            script,
            chunk.iter().map(|p| p.as_os_str()),
            "encrypted",
        ));
    }
    let named = watcher.wait(Duration::from_secs(20), |f, _| {
        alerts(f).iter().any(|a| names_a_mass_writer(a))
    });
    for attacker in &mut attackers {
        let _ = attacker.kill();
        let _ = attacker.wait();
    }
    let (_, findings, stderr) = watcher.stop();
    assert!(named, "{findings:#?}\n{stderr}");
}

/// Review s19-r11: DCMTK's `storescp` re-receiving stored images (a study sent again,
/// from another node `storescu -aet WS1`, or by the same storescp in another mode,
/// `--bit-preserving`) writes the same data set under a File Meta Information that
/// differs (Source AE Title (0002,0016), Implementation Version Name (0002,0013)). Seen
/// for real: three `storescu` at once re-sending 30 stored images gave 30
/// `header-changed` alerts ("its Pixel Data is intact") and `ransomware-suspected` ("20
/// DICOM header rewritten within 0.30 s"). The File Meta Information is the transfer's,
/// not the image's: the profile records a digest of the instance without it, and a
/// difference there alone is `file-meta-changed` (info). Here the Implementation Class
/// UID of each file is changed and the file written again in place (the same length);
/// `a_study_received_again_by_storescp_from_another_node_raises_no_alarm` does it with
/// DCMTK.
#[test]
fn stored_images_received_again_with_another_file_meta_information_raise_no_alarm() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for path in &paths {
        let mut bytes = fs::read(path).expect("test fixture");
        let from = b"1.2.826.0.1.3680043.10.1137\0";
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("the Implementation Class UID");
        bytes[at..at + from.len()].copy_from_slice(b"1.2.276.0.7230010.3.0.3.6.7\0");
        fs::write(path, bytes).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
    assert_eq!(
        count(&findings, "file-meta-changed"),
        paths.len(),
        "{findings:#?}"
    );
}

/// `file-meta-changed` is info, so what it carries is screened: a ZIP holding an
/// executable (130 bytes, under MAX_FILE_META_CHANGE_BYTES) planted in the File Meta
/// Information of a stored image (Private Information (0002,0102), an OB), its data set
/// untouched, is an alert.
#[test]
fn an_executable_planted_in_the_file_meta_information_is_an_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    let mut bytes = fs::read(&paths[0]).expect("test fixture");
    assert_eq!(&bytes[132..138], b"\x02\0\0\0UL");
    let length = u32::from_le_bytes(bytes[140..144].try_into().expect("4 bytes"));
    let end = 144 + length as usize;
    let pe = pacsguard_testkit::zip_with("run.exe", b"MZ");
    let mut element = Vec::new();
    pacsguard_testkit::write_element(&mut element, (0x0002, 0x0102), *b"OB", &pe);
    let grown = length + element.len() as u32;
    bytes[140..144].copy_from_slice(&grown.to_le_bytes());
    bytes.splice(end..end, element);
    fs::write(&paths[0], bytes).expect("test fixture");
    let path = paths[0].to_str();
    let alerted = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|f| f["severity"] == "alert" && f["path"].as_str() == path)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(alerted, "{findings:#?}\n{stderr}");
    let meta_only = findings
        .iter()
        .any(|f| f["kind"] == "file-meta-changed" && f["path"].as_str() == path);
    assert!(meta_only, "{findings:#?}");
}

/// The other side of `file-meta-changed`: an encryptor that keeps the preamble, `DICM`
/// and the whole File Meta Information of each stored image and encrypts everything
/// after it leaves no readable instance, whatever the group 0002 still says.
#[test]
fn an_encryptor_keeping_the_file_meta_information_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        // (0002,0000) File Meta Information Group Length, UL, at 132: the group's end.
        assert_eq!(&bytes[132..138], b"\x02\0\0\0UL");
        let length = u32::from_le_bytes(bytes[140..144].try_into().expect("4 bytes"));
        let kept = 144 + length as usize;
        let tail = keystream(bytes.len() - kept, i as u64 + 11);
        bytes[kept..].copy_from_slice(&tail);
        fs::write(path, bytes).expect("test fixture");
    }
    let named = watcher.wait(Duration::from_secs(20), |f, _| !alerts(f).is_empty());
    let (_, findings, stderr) = watcher.stop();
    assert!(named, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "file-meta-changed"), 0, "{findings:#?}");
}

/// A header edited under the same SOP Instance UID, its Pixel Data intact (a patient's
/// name corrected on twenty images at once, or tampered with), is an alert for each
/// image, but the image is still the same readable instance: nothing about it is what
/// encryption leaves, and twenty of them are no `ransomware-suspected`.
#[test]
fn headers_edited_under_the_same_instance_are_alerts_and_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = image_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for path in &paths {
        let mut bytes = fs::read(path).expect("test fixture");
        let at = bytes
            .windows(8)
            .position(|w| w == b"DOE^JANE")
            .expect("the Patient's Name");
        bytes[at..at + 8].copy_from_slice(b"DOE^JOHN");
        fs::write(path, bytes).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// DCMTK for real: 20 images received by `storescp` (from `storescu -aet CT1`) and
/// profiled, then received again while watched, by a `storescp --bit-preserving` from
/// `storescu -aet WS1`, and by a plain `storescp --fork` from three `storescu` at once
/// (WS2, WS3, WS4). Each time `storescp` says "DICOM file already exists, overwriting"
/// (truncates, writes from the start) the same data set under another Source AE Title:
/// `file-meta-changed` (info) for each, no alert, no mass writer.
#[test]
fn a_study_received_again_by_storescp_from_another_node_raises_no_alarm() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let sent = env.dir.path().join("sent");
    fs::create_dir_all(&sent).expect("test fixture");
    let mut files = Vec::new();
    for i in 0..20u32 {
        let pixels: Vec<u8> = (0..32_768u32).map(|j| ((j * 7 + i) % 251) as u8).collect();
        let bytes = DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.5.{i}"))
            .pixels(pacsguard_testkit::Pixels::Native(pixels))
            .build();
        let path = sent.join(format!("{i}.dcm"));
        fs::write(&path, bytes).expect("test fixture");
        files.push(path);
    }
    let received = env.path("archive/recv");
    {
        let scp = Storescp::start(&received, &[]);
        scp.send("CT1", &files);
    }
    let paths: Vec<PathBuf> = fs::read_dir(&received)
        .expect("test fixture")
        .map(|e| e.expect("test fixture").path())
        .collect();
    assert_eq!(paths.len(), files.len(), "{paths:?}");
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    {
        let scp = Storescp::start(&received, &["--bit-preserving"]);
        scp.send("WS1", &files);
    }
    let first = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "file-meta-changed") >= paths.len()
    });
    {
        let scp = Storescp::start(&received, &["--fork"]);
        let senders: Vec<std::process::Child> = files
            .chunks(7)
            .zip(["WS2", "WS3", "WS4"])
            .map(|(chunk, calling)| scp.sender(calling, chunk))
            .collect();
        for sender in senders {
            let out = sender.wait_with_output().expect("test fixture");
            assert!(out.status.success(), "storescu: {out:?}");
        }
    }
    let second = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "file-meta-changed") >= 2 * paths.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(first && second, "{findings:#?}\n{stderr}");
    assert_no_alarm(&findings);
    let recv = received.to_str().expect("utf-8 temp path");
    assert!(
        findings
            .iter()
            .filter(|f| f["path"].as_str().is_some_and(|p| p.starts_with(recv)))
            .all(|f| f["kind"] == "file-meta-changed"),
        "{findings:#?}"
    );
}

/// A DCMTK `storescp` receiving into `dir` as AE `ARCHIVE` on a free port; killed when
/// dropped.
struct Storescp {
    child: std::process::Child,
    port: u16,
}

impl Storescp {
    fn start(dir: &Path, options: &[&str]) -> Storescp {
        fs::create_dir_all(dir).expect("test fixture");
        for _ in 0..5 {
            let port = free_port();
            let mut child = std::process::Command::new("storescp")
                .args(["-aet", "ARCHIVE"])
                .args(options)
                .arg("-od")
                .arg(dir)
                .arg(port.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("storescp runs (Debian package dcmtk)");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Storescp { child, port };
                }
                // Its port taken from under it: another one.
                if child.try_wait().expect("test fixture").is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("storescp never listened");
    }

    /// `storescu -aet CALLING` sends `files`, and has them all stored.
    fn send(&self, calling: &str, files: &[PathBuf]) {
        let out = self
            .sender(calling, files)
            .wait_with_output()
            .expect("test fixture");
        assert!(out.status.success(), "storescu: {out:?}");
    }

    /// `storescu -aet CALLING` sending `files`, running.
    fn sender(&self, calling: &str, files: &[PathBuf]) -> std::process::Child {
        std::process::Command::new("storescu")
            .args(["-aet", calling, "-aec", "ARCHIVE", "127.0.0.1"])
            .arg(self.port.to_string())
            .args(files)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("storescu runs")
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port below the ephemeral range (which the tests' outgoing connections draw from),
/// free when asked, each once per process from a start of the process's own.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 5_000) as u16;
    for _ in 0..5_000 {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 5_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Ends every attacker; true when each was still running (holding its descriptors).
fn stop_all(attackers: &mut [std::process::Child]) -> bool {
    let mut still_held = true;
    for attacker in attackers {
        still_held &= attacker.try_wait().expect("test fixture").is_none();
        let _ = attacker.kill();
        let _ = attacker.wait();
    }
    still_held
}

/// pydicom's CT_small.dcm (a real GE CT image, explicit VR little endian, 128×128 16-bit
/// pixels) stored `count` times under `archive/`, each with its own SOP Instance UID
/// (the last four digits, in the File Meta Information and the data set), profiled
/// append-only.
fn ct_small_store(env: &Env, count: usize) -> Vec<PathBuf> {
    let paths = ct_small_files(env, count);
    env.profile(&["--policy", "append-only"]);
    paths
}

/// The files of [`ct_small_store`], not profiled yet.
fn ct_small_files(env: &Env, count: usize) -> Vec<PathBuf> {
    let sample = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm"),
    )
    .expect("pydicom's CT_small.dcm");
    let uid = b"1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";
    let mut paths = Vec::new();
    for i in 0..count {
        let dir = env.path(&format!("archive/study{}", i % 5));
        fs::create_dir_all(&dir).expect("test fixture");
        let mut bytes = sample.clone();
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(uid.len()).position(|w| w == uid) {
            let end = at + found + uid.len();
            bytes[end - 4..end].copy_from_slice(format!("{i:04}").as_bytes());
            at = end;
        }
        let path = dir.join(format!("{i}.dcm"));
        fs::write(&path, bytes).expect("test fixture");
        paths.push(path);
    }
    paths
}

/// The value ranges of the top-level text elements of an explicit VR little endian data
/// set (after the File Meta Information), up to the Pixel Data, with their tags: what a
/// wiper that knows DICOM overwrites. Sequences of undefined length are stepped over.
fn text_values(bytes: &[u8]) -> Vec<((u16, u16), std::ops::Range<usize>)> {
    let le16 = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut at = 144 + le32(140) as usize;
    let mut found = Vec::new();
    while at + 8 <= bytes.len() {
        let tag = (le16(at) as u16, le16(at + 2) as u16);
        let vr = &bytes[at + 4..at + 6];
        let long = matches!(
            vr,
            b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR"
        );
        let (value, len) = if long {
            (at + 12, le32(at + 8))
        } else {
            (at + 8, le16(at + 6) as u32)
        };
        if tag == (0x7FE0, 0x0010) {
            break;
        }
        if len == u32::MAX {
            let end = bytes[value..]
                .windows(8)
                .position(|w| w == b"\xfe\xff\xdd\xe0\0\0\0\0")
                .expect("a sequence delimiter");
            at = value + end + 8;
            continue;
        }
        let text = [
            "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI",
        ];
        if text.iter().any(|t| t.as_bytes() == vr) {
            found.push((tag, value..value + len as usize));
        }
        at = value + len as usize;
    }
    found
}

/// Review s21 (issue 11): a `header-changed` that kept the SOP Instance UID and the
/// transfer syntax, its Pixel Data intact, counts towards no ransomware signal (an edit
/// by the PACS). A wiper that knows DICOM keeps exactly those and overwrites every other
/// text value of the header with random bytes of its length, in place: twenty real CT
/// images whose patient, study and series nobody can tell any more raised twenty
/// `header-changed` alerts and no `ransomware-suspected`. An edit writes text; this
/// does not, and is counted.
#[test]
fn a_wiper_keeping_the_instance_uid_and_the_pixels_is_ransomware() {
    header_wiper(false);
}

/// The same inside a maintenance window: a migration rewrites headers by the thousand
/// (softened to info), never into bytes that are not text.
#[test]
fn a_wiper_inside_a_maintenance_window_is_still_ransomware() {
    header_wiper(true);
}

/// Review r22: the wiper above, its random bytes mapped into printable ASCII (0x20 to
/// 0x7E) so that every value stays in the default repertoire every text VR allows.
/// Before: twenty `header-changed` alerts, none garbled, and no `ransomware-suspected`.
/// A UID, a date, a time or a number is not any printable byte: its VR's syntax (PS3.5
/// table 6.2-1) is broken, and the header is no edit.
#[test]
fn a_wiper_writing_printable_bytes_is_ransomware() {
    header_wiper_with(false, Some(|b| 0x20 + b % 95));
}

/// Review r23: the wiper above, its random bytes mapped to digits (`b'0' + b % 10`),
/// the dots of UIDs included: every UID, date, time and number stays within the bytes
/// its VR allows, every name printable. Before: twenty `header-changed` alerts, none
/// garbled, and no `ransomware-suspected`. A UID of digits alone is no UID (its first
/// arc is 0, 1 or 2 and a dot follows), a date's month and day, a time's hours, minutes
/// and seconds have ranges: a header of such values is no edit.
#[test]
fn a_wiper_writing_digits_is_ransomware() {
    header_wiper_with(false, Some(|b| b'0' + b % 10));
}

fn header_wiper(in_window: bool) {
    header_wiper_with(in_window, None);
}

fn header_wiper_with(in_window: bool, map: Option<fn(u8) -> u8>) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    if in_window {
        open_window(
            &env,
            &watcher,
            &env.path("archive"),
            "CHG-5122 patient merge",
        );
    }
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        for (tag, range) in text_values(&bytes) {
            if tag == (0x0008, 0x0018) || tag == (0x0008, 0x0016) {
                continue;
            }
            let mut noise = keystream(range.len(), (i * 1000 + range.start) as u64);
            if let Some(map) = map {
                for b in noise.iter_mut() {
                    *b = map(*b);
                }
            }
            bytes[range].copy_from_slice(&noise);
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert!(
            findings.iter().any(|f| f["kind"] == "header-changed"
                && f["path"].as_str() == path.to_str()
                && f["fields"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "garbled-text"))),
            "{}: {findings:#?}",
            path.display()
        );
    }
}

/// Review s21, the limit of the look above: a wiper that first puts 1 MiB of private
/// bytes ((0009,1000) OB, before the patient's module) in each header, past the first
/// look (HEADER_TEXT_BYTES), then garbles the text values after it. Review r22: such a
/// header is read again, whole up to LONG_HEADER_TEXT_BYTES (64 MiB), and its values
/// found garbled: counted.
#[test]
fn a_wiper_hiding_the_values_past_the_text_limit_is_ransomware() {
    wiper_hiding_values(1 << 20, "garbled-text");
}

/// Past LONG_HEADER_TEXT_BYTES (64 MiB of private bytes, a hole in the file): what lies
/// past it is not read, so the header is not judged an edit (field `header-unread`):
/// counted.
#[test]
fn a_wiper_hiding_the_values_past_the_long_header_limit_is_ransomware() {
    wiper_hiding_values((64 << 20) + 2, "header-unread");
}

fn wiper_hiding_values(padding: u32, field: &str) {
    use std::io::{Seek as _, SeekFrom, Write as _};
    let env = Env::new();
    // Each header is read up to 64 MiB before it is judged: on a loaded 2-core machine
    // twenty of them took 14 s, past the default window of 10 s. What is tested is that
    // they count, not how fast: the window is wide.
    configure(
        &env,
        "scrub_mb_per_s = 0\nransomware_window_seconds = 120\n",
    );
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        for (tag, range) in text_values(&bytes) {
            if tag.0 >= 0x0010 {
                let noise = keystream(range.len(), (i * 1000 + range.start) as u64);
                bytes[range].copy_from_slice(&noise);
            }
        }
        let at = bytes
            .windows(6)
            .position(|w| w == b"\x10\0\x10\0PN")
            .expect("the Patient's Name");
        // (0009,1000) OB of `padding` zero bytes, left a hole in the file.
        let mut file = fs::File::create(path).expect("test fixture");
        file.write_all(&bytes[..at]).expect("test fixture");
        file.write_all(b"\x09\0\0\x10OB\0\0").expect("test fixture");
        file.write_all(&padding.to_le_bytes())
            .expect("test fixture");
        file.seek(SeekFrom::Current(i64::from(padding)))
            .expect("test fixture");
        file.write_all(&bytes[at..]).expect("test fixture");
    }
    // Waited on for most of the window: the reads are what is slow under load (a run
    // beside four builds, load 14, was past 30 s), and the window is what is tested.
    let raised = watcher.wait(Duration::from_secs(100), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    assert!(
        findings.iter().any(|f| f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == field))),
        "{findings:#?}"
    );
}

/// The other side, on the same real images: the patient's name edited on each (a
/// merge by the PACS, written in place under the same instance) is an alert for each
/// and no ransomware, and says nothing of garbled text.
#[test]
fn a_patient_merge_on_real_images_is_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for path in &paths {
        let mut bytes = fs::read(path).expect("test fixture");
        let name = b"CompressedSamples^CT1";
        let at = bytes
            .windows(name.len())
            .position(|w| w == name)
            .expect("the Patient's Name");
        bytes[at..at + name.len()].copy_from_slice(b"MERGED^PATIENT^TWO^^ ");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    assert!(
        !findings.iter().any(|f| f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "garbled-text"))),
        "{findings:#?}"
    );
}

/// Review s21: inside a maintenance window a rewritten header is `info` (a migration
/// rewrites them by the thousand), and only arrivals and `file-meta-changed` were
/// screened: a real PE planted in a stored CT image the CVE-2019-11687 way (its DOS
/// header in the preamble, the PE in a private element) during a migration was one
/// info `header-changed` and nothing else. What a window softens is screened.
#[test]
fn an_executable_planted_in_a_preamble_inside_a_window_is_an_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &env.path("archive"), "CHG-5121 migration");
    let bytes = fs::read(&paths[0]).expect("test fixture");
    let planted = pacsguard_testkit::plant_pe_cve_2019_11687(&bytes, &pacsguard_testkit::real_pe())
        .expect("CT_small has an explicit VR Pixel Data");
    fs::write(&paths[0], planted).expect("test fixture");
    let path = paths[0].to_str();
    let alerted = watcher.wait(Duration::from_secs(20), |f, _| {
        f.iter()
            .any(|x| x["severity"] == "alert" && x["path"].as_str() == path)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(alerted, "{findings:#?}\n{stderr}");
}

/// Issue 11 part B (review s21): a PACS storing what it receives again in the transfer
/// syntax it was sent in (DCMTK's `dcmconv +ti`: explicit VR little endian to implicit),
/// written over twenty stored real CT images in place, raised `ransomware-suspected`
/// ("20 DICOM header rewritten"): a `header-changed` whose transfer syntax changed
/// counted as encryption. Its SOP Instance UID and Pixel Data bytes are the same and its
/// text reads as text: the same image written in another transfer syntax, an alert each
/// (its header's bytes differ) saying so, and no ransomware.
#[test]
fn images_re_encoded_in_another_transfer_syntax_are_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let watcher = Watcher::start(&env, &[]);
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("dcmconv")
            .arg("+ti")
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmconv {}", path.display());
        fs::copy(&out, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    let said = findings.iter().filter(|f| {
        f["kind"] == "header-changed"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("in another transfer syntax"))
    });
    assert_eq!(said.count(), paths.len(), "{findings:#?}");
}

/// Review r22, a bad day with no attacker: an anonymisation with DCMTK's `dcmodify` as
/// an administrator runs it (its default keeps a backup: it renames `X.dcm` to
/// `X.dcm.bak`, then writes the edited instance as `X.dcm`), over twenty stored real CT
/// images. Nothing is lost: the original is kept whole under its new name, and its old
/// name holds the same instance (the same SOP Instance UID and Pixel Data) with its
/// patient's name and birth date edited. Each file is still reported; none of it is
/// ransomware.
#[test]
fn an_anonymisation_with_dcmodify_keeping_backups_is_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for path in &paths {
        let status = std::process::Command::new("dcmodify")
            .args(["-m", "(0010,0010)=ANONYMOUS", "-ea", "(0010,0030)"])
            .arg(path)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmodify {}", path.display());
        assert!(path.with_extension("dcm.bak").exists(), "a backup");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["path"].as_str() == p.with_extension("dcm.bak").to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// Runs DCMTK's `dcmodify` without a backup (`-nb`, in place, as a PACS edits) with
/// `args` over `files`, in one process.
fn dcmodify(args: &[&str], files: &[PathBuf]) {
    let status = std::process::Command::new("dcmodify")
        .arg("-nb")
        .args(args)
        .args(files)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmodify {args:?} {files:?}");
}

/// The `identity:` fields (the change of study, series or patient each made) of the
/// `header-changed` findings of `paths`, one per finding that has one.
fn identity_changes<'a>(findings: &'a [Value], paths: &[PathBuf]) -> Vec<&'a str> {
    findings
        .iter()
        .filter(|f| {
            f["kind"] == "header-changed" && paths.iter().any(|p| f["path"].as_str() == p.to_str())
        })
        .filter_map(|f| f["fields"].as_array())
        .filter_map(|fields| {
            fields
                .iter()
                .filter_map(Value::as_str)
                .find(|x| x.starts_with("identity:"))
        })
        .collect()
}

/// Whether `f` is a `header-changed` of `path` whose fields include `field`.
fn header_changed_with(f: &Value, path: &Path, field: &str) -> bool {
    f["kind"] == "header-changed"
        && f["path"].as_str() == path.to_str()
        && f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == field))
}

/// The [`ct_small_store`] of 40 real CT instances, its five study directories made five
/// studies of five patients (each its own Study and Series Instance UID and Patient ID,
/// set by `dcmodify` before the store is profiled), as a PACS holds them. The paths, by
/// study.
fn ct_small_studies(env: &Env) -> Vec<Vec<PathBuf>> {
    let paths = ct_small_files(env, 40);
    let mut studies: Vec<Vec<PathBuf>> = vec![Vec::new(); 5];
    for (i, path) in paths.into_iter().enumerate() {
        studies[i % 5].push(path);
    }
    for (s, files) in studies.iter().enumerate() {
        let study = format!("(0020,000D)=1.2.826.0.1.3680043.10.1137.25.{s}");
        let series = format!("(0020,000E)=1.2.826.0.1.3680043.10.1137.25.{s}.1");
        let patient = format!("(0010,0020)=PAT-{s}");
        dcmodify(&["-m", &study, "-m", &series, "-m", &patient], files);
    }
    env.profile(&["--policy", "append-only"]);
    studies
}

/// Review r25-watch (issue 11): a header wiper that keeps the SOP Instance UID, the
/// transfer syntax and the Pixel Data and writes well-formed values (DCMTK's own UID
/// root for a new study and series, a patient ID of digits, a plausible name, real
/// dates) is no garbled text: twenty real CT images cut off from their patient were
/// twenty `header-changed` alerts and no `ransomware-suspected`, the profile keeping
/// digests only. Each instance's study, series and patient are now recorded (a digest)
/// and each change is counted once per change made: twenty instances, twenty changes,
/// a burst. (An anonymiser run this way outside a maintenance window is the same, and
/// pages too.)
#[test]
fn a_wiper_writing_well_formed_identities_is_ransomware() {
    const NAMES: [&str; 4] = [
        "MILLER^ANNA",
        "SCHMIDT^JONAS",
        "GARCIA^LUCIA",
        "NOWAK^PIOTR",
    ];
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    for (i, path) in paths.iter().enumerate() {
        let patient = format!("(0010,0020)={}", 40_113_000 + i * 7919);
        let name = format!("(0010,0010)={}", NAMES[i % NAMES.len()]);
        let born = format!("(0010,0030)=19{:02}0{}1{}", 40 + i, 1 + i % 9, i % 10);
        dcmodify(
            &[
                "-gst",
                "-gse",
                "-m",
                &patient,
                "-m",
                &name,
                "-m",
                &born,
                "-m",
                "(0008,0020)=20190314",
            ],
            std::slice::from_ref(path),
        );
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert!(
            findings
                .iter()
                .any(|f| header_changed_with(f, path, "identity-changed")
                    && !header_changed_with(f, path, "garbled-text")),
            "{}: {findings:#?}",
            path.display()
        );
    }
    let mut changes = identity_changes(&findings, &paths);
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(changes.len(), paths.len(), "{changes:#?}");
}

/// Review r25-watch, the other side: the header work of a PACS on a store of five
/// studies (40 real CT instances), outside any maintenance window, with DCMTK's
/// `dcmodify`: every patient's name corrected, then three patients merged into a
/// fourth (the Patient ID of 24 instances, three studies, rewritten). Each file is
/// reported (`header-changed`, an alert of its own, `identity-changed`); review
/// r26-watch: the patient's name is one of the details compared now, and the name
/// corrected is five changes (one per study), the merge three; nothing pages.
#[test]
fn a_name_correction_and_a_patient_merge_with_dcmodify_page_no_one() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let studies = ct_small_studies(&env);
    let all: Vec<PathBuf> = studies.concat();
    let watcher = Watcher::start(&env, &[]);
    dcmodify(&["-m", "(0010,0010)=CORRECTED^NAME"], &all);
    let renamed = watcher.wait(Duration::from_secs(20), |f, _| {
        all.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    assert!(renamed, "{:#?}", watcher.findings());
    let corrected = watcher.findings().len();
    let merged: Vec<PathBuf> = studies[..3].concat();
    dcmodify(&["-m", "(0010,0020)=PAT-3"], &merged);
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        identity_changes(&f[corrected.min(f.len())..], &merged).len() >= merged.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    let mut renames = identity_changes(&findings[..corrected], &all);
    assert_eq!(renames.len(), all.len(), "{findings:#?}");
    renames.sort_unstable();
    renames.dedup();
    assert_eq!(renames.len(), 5, "one change per study: {renames:#?}");
    let mut changes = identity_changes(&findings[corrected..], &merged);
    assert_eq!(changes.len(), merged.len(), "{findings:#?}");
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(
        changes.len(),
        3,
        "one change per study merged: {changes:#?}"
    );
}

/// Review r26-watch (issue 11): a wiper that knows how changes were counted writes one
/// new study, series and patient into every instance of the store (one `dcmodify`
/// over the 40 real CT instances of five studies), or one per series. Before: five
/// changes of identity, counted once each as five patient merges would be, and no
/// `ransomware-suspected`. A merge never changes an instance's Study or Series Instance
/// UID; those are now counted per instance, and 40 instances cut off from their study
/// are a burst.
#[test]
fn a_wiper_writing_one_identity_into_the_whole_store_is_ransomware() {
    consistent_identity_wiper(false);
}

/// The same wiper, one new study, series and patient per series (five changes).
#[test]
fn a_wiper_writing_one_identity_per_series_is_ransomware() {
    consistent_identity_wiper(true);
}

fn consistent_identity_wiper(per_series: bool) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let studies = ct_small_studies(&env);
    let all: Vec<PathBuf> = studies.concat();
    let watcher = Watcher::start(&env, &[]);
    let groups: Vec<&[PathBuf]> = if per_series {
        studies.iter().map(Vec::as_slice).collect()
    } else {
        vec![all.as_slice()]
    };
    for (g, files) in groups.into_iter().enumerate() {
        let study = format!("(0020,000D)=1.2.826.0.1.3680043.10.1137.66.{g}");
        let series = format!("(0020,000E)=1.2.826.0.1.3680043.10.1137.66.{g}.1");
        let patient = format!("(0010,0020)=W{g}");
        dcmodify(&["-m", &study, "-m", &series, "-m", &patient], files);
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && identity_changes(f, &all).len() >= all.len()
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &all {
        assert!(
            findings
                .iter()
                .any(|f| header_changed_with(f, path, "identity-changed")),
            "{}: {findings:#?}",
            path.display()
        );
    }
}

/// Review r26-watch (issue 11): a wiper that keeps the Study and Series Instance UIDs
/// and the Patient ID and writes well-formed names and dates into each instance of
/// the store (its own Patient's Name, Birth Date and Study Date, `dcmodify`): before,
/// no change of identity, each instance an edit of the same image, and no
/// `ransomware-suspected`. The patient's and the study's details are now part of what
/// is compared, counted once per change made: 40 changes, a burst.
#[test]
fn a_wiper_rewriting_names_and_dates_only_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let all: Vec<PathBuf> = ct_small_studies(&env).concat();
    let watcher = Watcher::start(&env, &[]);
    for (i, path) in all.iter().enumerate() {
        let name = format!("(0010,0010)=DOE^J{i:03}");
        let born = format!("(0010,0030)=19{:02}0{}1{}", 40 + i, 1 + i % 9, i % 10);
        let studied = format!("(0008,0020)=2019{:02}1{}", 1 + i % 12, i % 10);
        dcmodify(
            &["-m", &name, "-m", &born, "-m", &studied],
            std::slice::from_ref(path),
        );
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && identity_changes(f, &all).len() >= all.len()
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let mut changes = identity_changes(&findings, &all);
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(changes.len(), all.len(), "{changes:#?}");
}

/// Review r26-watch (issue 11): a wiper that keeps whom every instance belongs to and
/// its Pixel Data, and makes it lie: one `dcmodify` over the 40 real CT instances of five
/// studies writing another Rescale Intercept and Pixel Spacing (every Hounsfield unit
/// and distance read from them wrong). Before: an edit of the same image each, no
/// signal, no `ransomware-suspected`. Geometry and calibration are now compared, and
/// each instance whose were rewritten counts.
#[test]
fn a_wiper_rewriting_the_calibration_of_every_image_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let all: Vec<PathBuf> = ct_small_studies(&env).concat();
    let watcher = Watcher::start(&env, &[]);
    dcmodify(
        &["-m", "(0028,1052)=-24", "-m", "(0028,0030)=0.9\\0.9"],
        &all,
    );
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && all.iter().all(|p| {
                f.iter()
                    .any(|x| header_changed_with(x, p, "geometry-changed"))
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}

/// Review r27-watch (issue 11): a wiper that keeps every pixel byte, whom each instance
/// belongs to and its geometry, and makes the image unreadable: one `dcmodify` per study
/// of the 40 real CT instances writing their Rows and Columns swapped for another shape
/// (128 x 128 read as 64 x 256), MONOCHROME1 for MONOCHROME2 (every image inverted),
/// Bits Allocated 8 for 16. Before: an edit of the same image each, no signal, no
/// `ransomware-suspected`. The pixels' form is now compared with the one stored, and
/// each instance whose form was rewritten counts.
#[test]
fn a_wiper_rewriting_the_pixels_form_of_every_image_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let studies = ct_small_studies(&env);
    let all: Vec<PathBuf> = studies.concat();
    let watcher = Watcher::start(&env, &[]);
    let forms: [&[&str]; 3] = [
        &["-m", "(0028,0010)=64", "-m", "(0028,0011)=256"],
        &["-m", "(0028,0004)=MONOCHROME1"],
        &["-m", "(0028,0100)=8"],
    ];
    for (i, study) in studies.iter().enumerate() {
        dcmodify(forms[i % forms.len()], study);
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && all.iter().all(|p| {
                f.iter()
                    .any(|x| header_changed_with(x, p, "pixel-form-changed"))
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}

/// Review r28-watch (issue 11): a wiper that keeps every pixel byte, whom each instance
/// belongs to, its geometry and its pixels' form, and files it as another kind of image:
/// one `dcmodify` over the 40 real CT instances of five studies writing Modality "MR".
/// Before: an edit of the same image each (`header-changed`, no field), no signal, no
/// `ransomware-suspected`. The Modality is now recorded apart (codec tag 12) and each
/// instance whose modality was rewritten counts.
#[test]
fn a_wiper_rewriting_the_modality_of_every_image_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let all: Vec<PathBuf> = ct_small_studies(&env).concat();
    let watcher = Watcher::start(&env, &[]);
    dcmodify(&["-m", "(0008,0060)=MR"], &all);
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && all.iter().all(|p| {
                f.iter()
                    .any(|x| header_changed_with(x, p, "modality-changed"))
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}

/// The `presentation:` fields (the change of Series Description or window each made) of
/// the `header-changed` findings of `paths`, one per finding that has one.
fn presentation_changes<'a>(findings: &'a [Value], paths: &[PathBuf]) -> Vec<&'a str> {
    findings
        .iter()
        .filter(|f| {
            f["kind"] == "header-changed" && paths.iter().any(|p| f["path"].as_str() == p.to_str())
        })
        .filter_map(|f| f["fields"].as_array())
        .filter_map(|fields| {
            fields
                .iter()
                .filter_map(Value::as_str)
                .find(|x| x.starts_with("presentation:"))
        })
        .collect()
}

/// Writes into each of `paths` a window of width 1 centred on its own value, as a wiper
/// blacking out every image does (each image shows black or white, every pixel kept).
fn black_out_windows(paths: &[PathBuf]) {
    for (i, path) in paths.iter().enumerate() {
        let center = format!("(0028,1050)={}", 3000 + i);
        dcmodify(
            &["-i", &center, "-i", "(0028,1051)=1"],
            std::slice::from_ref(path),
        );
    }
}

/// Review r28-watch (issue 11): a wiper writing into each of the 40 real CT instances of
/// five studies its own Window Center and a Window Width of 1 (`dcmodify`; every image
/// then shows black or white, its pixels, identity and form kept). Before: an edit of the
/// same image each, no signal, no `ransomware-suspected`. The window and Series
/// Description are now recorded apart, a change counted once per change made: 40
/// changes, a burst.
#[test]
fn a_wiper_blacking_out_the_window_of_every_image_is_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let all: Vec<PathBuf> = ct_small_studies(&env).concat();
    let watcher = Watcher::start(&env, &[]);
    black_out_windows(&all);
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && presentation_changes(f, &all).len() >= all.len()
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let mut changes = presentation_changes(&findings, &all);
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(changes.len(), all.len(), "{changes:#?}");
}

/// Review r28-watch, the other side: a PACS correcting the Series Description of each of
/// the five series of the store (`dcmodify`, 40 real CT instances) outside any window is
/// five changes, each file reported, no page; the same window rewrite as the wiper's
/// above, declared in a maintenance window (a presets migration), is `info` and pages no
/// one either.
#[test]
fn series_descriptions_corrected_page_no_one_and_a_window_migration_is_info() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let studies = ct_small_studies(&env);
    let all: Vec<PathBuf> = studies.concat();
    let watcher = Watcher::start(&env, &[]);
    for (s, series) in studies.iter().enumerate() {
        dcmodify(&["-i", &format!("(0008,103E)=CHEST {s} AXIAL")], series);
    }
    let corrected = watcher.wait(Duration::from_secs(20), |f, _| {
        presentation_changes(f, &all).len() >= all.len()
    });
    assert!(corrected, "{:#?}", watcher.findings());
    std::thread::sleep(Duration::from_secs(2));
    let before = watcher.findings();
    assert_eq!(count(&before, "ransomware-suspected"), 0, "{before:#?}");
    let mut changes = presentation_changes(&before, &all);
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(changes.len(), 5, "one change per series: {changes:#?}");
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-5120 window presets",
    );
    let window = watcher.findings().len();
    black_out_windows(&all);
    let migrated = watcher.wait(Duration::from_secs(20), |f, _| {
        presentation_changes(&f[window.min(f.len())..], &all).len() >= all.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(migrated, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    let after = &findings[window..];
    assert!(
        after
            .iter()
            .filter(|f| f["kind"] == "header-changed")
            .all(|f| f["severity"] == "info"),
        "{after:#?}"
    );
}

/// Review r26-watch, the other side of the two wipers above: a PACS fixing a typo in a
/// patient's name and birth date on one study (eight real CT instances, `dcmodify`), then
/// correcting that study's date: each instance is reported, and the two corrections
/// are two changes, no page.
#[test]
fn a_name_typo_and_a_study_date_fixed_on_one_study_page_no_one() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let studies = ct_small_studies(&env);
    let study = &studies[2];
    let watcher = Watcher::start(&env, &[]);
    let all_seen = |f: &[Value]| {
        study.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    };
    dcmodify(
        &["-m", "(0010,0010)=MEIER^ANNA", "-m", "(0010,0030)=19610304"],
        study,
    );
    // The second correction once the first is seen: a file verified while the next
    // `dcmodify` rewrites it in place is another matter (see the report of r26-watch).
    assert!(watcher.wait(Duration::from_secs(20), |f, _| all_seen(f)));
    let first = watcher.findings().len();
    dcmodify(&["-m", "(0008,0020)=20040120"], study);
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        all_seen(&f[first.min(f.len())..])
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    let mut changes = identity_changes(&findings, study);
    changes.sort_unstable();
    changes.dedup();
    assert!(changes.len() <= 2, "{changes:#?}");
}

/// Review r25-watch: the anonymiser of [`a_wiper_writing_well_formed_identities_is_ransomware`]
/// (a new study and series per instance, a patient ID per instance) run inside a
/// maintenance window declared for it: each instance is reported, `info`, saying its
/// study, series or patient changed, and nothing pages.
#[test]
fn an_anonymiser_inside_a_maintenance_window_pages_no_one() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 20);
    let watcher = Watcher::start(&env, &[]);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-7 research export",
    );
    for (i, path) in paths.iter().enumerate() {
        let patient = format!("(0010,0020)=ANON-{i:04}");
        dcmodify(
            &[
                "-gst",
                "-gse",
                "-m",
                &patient,
                "-m",
                "(0010,0010)=ANONYMOUS",
            ],
            std::slice::from_ref(path),
        );
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| header_changed_with(x, p, "identity-changed"))
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    // The window's own notice is a warning; every change under it is info.
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] != "info" && f["kind"] != "maintenance-window")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

/// Builds `count` multi-frame segmentations of `frames` frames each under `archive/`
/// (from pydicom's real `liver_1frame.dcm`, a DICOM SEG of a CT: its per-frame
/// functional group item repeated with its own position and index per frame, 64×64
/// binary frames), each with its own SOP Instance UID, and profiles them append-only.
/// A SEG of a whole-body CT (a structure per segment and slice) holds thousands of
/// frames: its per-frame functional groups alone run past a megabyte.
fn big_seg_store(env: &Env, count: usize, frames: usize) -> Vec<PathBuf> {
    // One python3 for all of them: the functional groups are built once and each file
    // written under its own UID (a python3 a file spent ~5 s on the same items each,
    // 110 s of the suite's real-time phase for twenty).
    const BUILD: &str = r#"
import sys, copy, pydicom
src, frames, outs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ds = pydicom.dcmread(src)
item = ds.PerFrameFunctionalGroupsSequence[0]
items = []
for k in range(frames):
    it = copy.deepcopy(item)
    it.FrameContentSequence[0].DimensionIndexValues = [1, k + 1]
    pos = it.PlanePositionSequence[0].ImagePositionPatient
    it.PlanePositionSequence[0].ImagePositionPatient = [pos[0], pos[1], float(pos[2]) + 1.25 * k]
    items.append(it)
ds.PerFrameFunctionalGroupsSequence = items
ds.NumberOfFrames = frames
ds.Rows = 64
ds.Columns = 64
ds.PixelData = ds.PixelData[: 64 * 64 // 8] * frames
uid = ds.SOPInstanceUID
for n, out in enumerate(outs, start=1):
    ds.SOPInstanceUID = uid + "." + str(n)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(out, enforce_file_format=True)
"#;
    let kit = pacsguard_testkit::testdata().join("wheels");
    let source = kit.join("pydicom/pydicom/data/test_files/liver_1frame.dcm");
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| {
            let dir = env.path(&format!("archive/study{}", i % 5));
            fs::create_dir_all(&dir).expect("test fixture");
            dir.join(format!("seg{i}.dcm"))
        })
        .collect();
    let status = std::process::Command::new("python3")
        .env("PYTHONPATH", kit.join("pydicom"))
        .args(["-c", BUILD])
        .arg(&source)
        .arg(frames.to_string())
        .args(&paths)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "building {count} segmentations");
    env.profile(&["--policy", "append-only"]);
    paths
}

/// Review r22, a bad day with no attacker: the patient's name corrected (DCMTK's
/// `dcmodify -nb`, in place) on twenty stored segmentations whose headers run past
/// HEADER_TEXT_BYTES (2,500 frames' functional groups, 1.4 MB, before the Pixel Data).
/// Before: every one was `header-unread`, counted as a wiper hiding values past the
/// limit, and `ransomware-suspected` was raised. A header that was that long already
/// hides nothing new: the values read are text, the file did not grow to push them out.
#[test]
fn a_name_correction_on_segmentations_with_long_headers_is_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = big_seg_store(&env, 20, 2500);
    let watcher = Watcher::start(&env, &[]);
    for path in &paths {
        let status = std::process::Command::new("dcmodify")
            .args(["-nb", "-m", "(0010,0010)=CORRECTED^NAME"])
            .arg(path)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmodify {}", path.display());
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// Review r22, an encryptor that knows the sampler, inside a maintenance window (where
/// a Pixel Data change is softened unless its blocks read as random): ten real
/// uncompressed multi-frame images (pydicom's CT_small, its 32 KiB frame forty times:
/// 1.3 MB) encrypted everywhere but the first MiB (all the window's check read), the
/// last 64 KiB and the 32 blocks the spread read at positions anyone could compute.
/// Before: ten `info` findings and no alert. The blocks past the first MiB are now
/// sampled too, at positions drawn afresh by each run: found, an alert each, counted.
#[test]
fn inside_a_window_encryption_around_the_sampled_blocks_alerts() {
    const FILES: usize = 10;
    const BUILD: &str = r#"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
ds.NumberOfFrames = 40
ds.PixelData = ds.PixelData * 40
ds.SOPInstanceUID = ds.SOPInstanceUID + "." + sys.argv[3]
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.save_as(sys.argv[2], enforce_file_format=True)
"#;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let kit = pacsguard_testkit::testdata().join("wheels");
    let sample = kit.join("pydicom/pydicom/data/test_files/CT_small.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            let status = std::process::Command::new("python3")
                .env("PYTHONPATH", kit.join("pydicom"))
                .args(["-c", BUILD])
                .arg(&sample)
                .arg(&path)
                .arg((i + 1).to_string())
                .status()
                .expect("python3 runs");
            assert!(status.success(), "building {}", path.display());
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-5123 migration");
    const BLOCK: usize = 4096;
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let size = bytes.len();
        assert!(
            size > (1 << 20) + (1 << 18),
            "a multi-frame image past 1 MiB"
        );
        // The blocks the sampler read before: the last 64 KiB and 32 spread blocks.
        let from = (size - 65_536) / BLOCK * BLOCK;
        let blocks = from / BLOCK;
        let step = ((blocks - 1) / 32).max(1);
        let spread: Vec<usize> = (1..blocks).step_by(step).take(32).collect();
        let noise = keystream(from, 99 + i as u64);
        for block in (1 << 20) / BLOCK..blocks {
            if !spread.contains(&block) {
                let at = block * BLOCK;
                bytes[at..at + BLOCK].copy_from_slice(&noise[at..at + BLOCK]);
            }
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && count(f, "pixel-data-changed") == FILES
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    let alerts = findings
        .iter()
        .filter(|f| f["kind"] == "pixel-data-changed" && f["severity"] == "alert")
        .count();
    assert_eq!(alerts, FILES, "{findings:#?}");
}

/// Review r22, a bad day with no attacker: patients' names corrected in place (pydicom,
/// writing each in the file's own Specific Character Set) in pydicom's real character
/// set images: ISO_IR 100, 126, 127, 138, 144, ISO_IR 192 (UTF-8), GB18030, ISO 2022 IR
/// 87 and IR 13 (Japanese, with escapes) and IR 149 (Korean). Each is an edit: an alert
/// of its own, never garbled text, and no ransomware. Review r26-watch: a patient's name
/// is one of the details compared now, and eleven patients of eleven studies renamed at
/// once are eleven changes: the burst is set above them (it was 4, under which they
/// page as any eleven studies rewritten would); garbled text is asserted on directly.
#[test]
fn name_corrections_in_every_character_set_are_edits() {
    const CORRECT: &str = r#"
import sys, pydicom
names = {
    "ISO_IR 100": "Müller^Jörg", "ISO_IR 126": "Παπαδόπουλος^Νίκος",
    "ISO_IR 127": "محمد^علي", "ISO_IR 138": "כהן^משה", "ISO_IR 144": "Иванов^Пётр",
    "ISO_IR 192": "Łukasz^Żółć=王^小明", "GB18030": "Li^XiaoLong=李^小龙",
    "ISO 2022 IR 87": "Sato^Hanako=佐藤^花子=さとう^はなこ",
    "ISO 2022 IR 13": "ｻﾄｳ^ﾊﾅｺ=佐藤^花子=さとう^はなこ",
    "ISO 2022 IR 149": "Kim^Minsu=金^民洙=김^민수",
}
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    charsets = ds.SpecificCharacterSet
    charsets = [charsets] if isinstance(charsets, str) else list(charsets)
    name = [names[c] for c in reversed(charsets) if c in names][0]
    ds.PatientName = name
    ds.save_as(path)
    assert str(pydicom.dcmread(path).PatientName) == name, path
"#;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 12\n");
    let kit = pacsguard_testkit::testdata().join("wheels");
    let charsets = kit.join("pydicom/pydicom/data/charset_files");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let mut paths = Vec::new();
    for name in [
        "chrArab", "chrFren", "chrGerm", "chrGreek", "chrH31", "chrH32", "chrHbrw", "chrI2",
        "chrRuss", "chrX1", "chrX2",
    ] {
        let path = archive.join(format!("{name}.dcm"));
        fs::copy(charsets.join(format!("{name}.dcm")), &path).expect("pydicom's charset files");
        paths.push(path);
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let status = std::process::Command::new("python3")
        .env("PYTHONPATH", kit.join("pydicom"))
        .args(["-c", CORRECT])
        .args(&paths)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the names corrected");
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "header-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
    assert!(
        !findings
            .iter()
            .any(|f| f["fields"].as_array().is_some_and(|a| a
                .iter()
                .any(|x| x == "garbled-text" || x == "header-unread"))),
        "{findings:#?}"
    );
}

/// Review r22, the rules of `garbled-text` over every real file at hand: each DICOM
/// file of pydicom's and pynetdicom's test data (uncompressed, JPEG, JPEG 2000, JPEG-LS,
/// RLE, deflated, big endian, implicit VR, SR, RT, multi-frame) stored append-only,
/// its patient's name then corrected in place with DCMTK's `dcmodify -nb` (those
/// dcmodify refuses are left alone). No header so edited is garbled or unread.
#[test]
fn name_corrections_over_the_real_corpora_are_never_garbled() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let (_, paths) = corpora_store(&env);
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let mut edited = Vec::new();
    for path in &paths {
        let status = std::process::Command::new("dcmodify")
            .args(["-nb", "-q", "-m", "(0010,0010)=CORRECTED^NAME"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        if status.success() {
            edited.push(path.clone());
        }
    }
    assert!(edited.len() >= 80, "dcmodify edited {}", edited.len());
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        edited
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let judged: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["fields"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x == "garbled-text" || x == "header-unread")
            })
        })
        .collect();
    let headers = count(&findings, "header-changed");
    eprintln!(
        "{} files, {} edited by dcmodify, {headers} header-changed, {} garbled or unread",
        paths.len(),
        edited.len(),
        judged.len()
    );
    assert!(judged.is_empty(), "{judged:#?}");
}

/// Review r22, an encryptor that knows the window's exemption for re-compression
/// (a Pixel Data change under a new transfer syntax is softened inside a window, never
/// sampled): ten real CT images, their Pixel Data encrypted in place and the transfer
/// syntax in the File Meta Information renamed from explicit VR little endian to RLE
/// (one byte: `1.2.840.10008.1.2.1` to `1.2.840.10008.1.2.5`), the Pixel Data left a
/// native value, not the fragments RLE must be. Still an alert each, and ransomware.
#[test]
fn inside_a_window_encryption_under_a_renamed_compressed_syntax_alerts() {
    const FILES: usize = 10;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-5124 re-compression");
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let ts = b"1.2.840.10008.1.2.1\0";
        let at = bytes
            .windows(ts.len())
            .position(|w| w == ts)
            .expect("the transfer syntax");
        bytes[at + 18] = b'5';
        let pixels = bytes.len() - 32_768;
        bytes[pixels..].copy_from_slice(&keystream(32_768, 11 + i as u64));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && count(f, "pixel-data-changed") == FILES
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}

/// Review r22, the other way round inside a maintenance window: stored compressed
/// images (pydicom's real MR_small_RLE) written back uncompressed. Decompressed by GDCM
/// (`gdcmconv --raw`), structured pixels: `info`. Decompressed, then its Pixel Data
/// overwritten with random bytes: before, as softened as the real decompression; now
/// an alert each, counted.
#[test]
fn inside_a_window_a_decompression_is_info_and_random_pixels_under_it_alert() {
    const FILES: usize = 10;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sample = pacsguard_testkit::testdata()
        .join("wheels/pydicom/pydicom/data/test_files/MR_small_RLE.dcm");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = archive.join(format!("{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's MR_small_RLE.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-5125 decompression");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let status = std::process::Command::new("gdcmconv")
            .arg("--raw")
            .arg(path)
            .arg(&out)
            .status()
            .expect("gdcmconv runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "gdcmconv --raw {}", path.display());
        if i >= FILES / 2 {
            // MR_small: 64×64 16-bit pixels, the last 8,192 bytes.
            let mut bytes = fs::read(&out).expect("test fixture");
            let at = bytes.len() - 8192;
            bytes[at..].copy_from_slice(&keystream(8192, 21 + i as u64));
            fs::write(&out, bytes).expect("test fixture");
        }
        fs::copy(&out, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "pixel-data-changed") == FILES && count(f, "ransomware-suspected") >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    for (i, path) in paths.iter().enumerate() {
        let severity = if i >= FILES / 2 { "alert" } else { "info" };
        assert_pixels_changed(&findings, path, severity);
    }
}

/// Review r23 (false alarm): a PACS migration re-compressing its uncompressed images
/// losslessly in place, outside any maintenance window: real CT images (pydicom's
/// CT_small) converted by DCMTK (`dcmcrle`, `dcmcjpeg` lossless, two predictors) and GDCM
/// (`gdcmconv --rle`, `--j2k`, `--jpeg`, all lossless) in a staging directory, then
/// copied over the originals. Before r23: twelve `pixel-data-changed` alerts counted as
/// rewritten Pixel Data, and `ransomware-suspected`. Each is still an alert of its own
/// (no window was declared), but a lossless re-compression keeping the instance, its
/// frames decoded to the pixels stored (review r24: a stream's shape is no proof), is no
/// ransomware signal. Then four images encrypted under the name of RLE (one byte of the
/// File Meta Information changed) are: two with the ciphertext left a native value, two
/// with it written as a well-formed RLE frame (literal runs decode, whatever they hold:
/// the frames are decoded and compared with the pixels stored).
#[test]
fn a_lossless_re_compression_outside_a_window_is_no_ransomware() {
    const FILES: usize = 12;
    const DISGUISED: usize = 4;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES + DISGUISED);
    let watcher = Watcher::start(&env, &[]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 6] = [
        ("dcmcrle", &[]),
        ("dcmcjpeg", &["+e1"]),
        ("gdcmconv", &["--rle"]),
        ("gdcmconv", &["--jpeg"]),
        ("gdcmconv", &["--j2k"]),
        ("dcmcjpeg", &["+el", "+sv", "4"]),
    ];
    for (i, path) in paths[..FILES].iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let (tool, args) = tools[i % tools.len()];
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk and gdcm run (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool} {}", path.display());
        fs::copy(&out, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        paths[..FILES].iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let recompressed = watcher.findings();
    assert!(seen, "{recompressed:#?}");
    assert_eq!(
        count(&recompressed, "ransomware-suspected"),
        0,
        "{recompressed:#?}"
    );
    for path in &paths[..FILES] {
        assert!(
            recompressed
                .iter()
                .any(|f| f["kind"] == "pixel-data-changed"
                    && f["severity"] == "alert"
                    && f["path"].as_str() == path.to_str()
                    && has_field(f, "re-compressed")
                    && f["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("decoded, its pixels are the ones stored"))),
            "{}: {recompressed:#?}",
            path.display()
        );
    }
    for (i, path) in paths[FILES..].iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let ts = b"1.2.840.10008.1.2.1\0";
        let at = bytes
            .windows(ts.len())
            .position(|w| w == ts)
            .expect("the transfer syntax");
        bytes[at + 18] = b'5';
        let cipher = keystream(32_768, 31 + i as u64);
        if i % 2 == 0 {
            let pixels = ct_small_pixels(&bytes);
            bytes[pixels].copy_from_slice(&cipher);
        } else {
            as_rle_frame(&mut bytes, &cipher);
        }
        fs::write(path, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}

/// Review r23: Pixel Data encrypted in place and written as text, base64 (6 bits a byte)
/// or hex (4 bits a byte) of the ciphertext, under the same transfer syntax: no block
/// reaches RANDOM_BITS_PER_BYTE (7.9), so inside a maintenance window the rewrite was
/// softened to `info` like a migration's, and never counted. Ten real CT images, half
/// each way. Each stays an alert and counts; outside a window too.
#[test]
fn inside_a_window_pixels_encrypted_as_base64_or_hex_alert() {
    low_entropy_ciphertext(true);
}

#[test]
fn outside_a_window_pixels_encrypted_as_base64_or_hex_alert() {
    low_entropy_ciphertext(false);
}

fn low_entropy_ciphertext(in_window: bool) {
    const FILES: usize = 10;
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const HEX: &[u8] = b"0123456789abcdef";
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    if in_window {
        open_window(&env, &watcher, &env.path("archive"), "CHG-5126 migration");
    }
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        // CT_small's Pixel Data is its last 32,768 bytes. Each ciphertext byte gives one
        // base64 or hex character (uniform over the alphabet, as the encoding of a
        // ciphertext is).
        let alphabet = if i % 2 == 0 { BASE64 } else { HEX };
        let text: Vec<u8> = keystream(32_768, 41 + i as u64)
            .into_iter()
            .map(|b| alphabet[usize::from(b) % alphabet.len()])
            .collect();
        let at = bytes.len() - 32_768;
        bytes[at..].copy_from_slice(&text);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("test fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && count(f, "pixel-data-changed") == FILES
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert_pixels_changed(&findings, path, "alert");
    }
}

/// Where CT_small's Pixel Data value is: 32,768 bytes (OW), followed by 138 bytes of
/// trailing padding.
fn ct_small_pixels(bytes: &[u8]) -> std::ops::Range<usize> {
    let element = bytes
        .windows(6)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .expect("the Pixel Data");
    element + 12..element + 12 + 32_768
}

/// CT_small (`bytes`) made a 512 x 256 image of its samples tiled (its 128 x 128 plane
/// repeated), its SOP Instance UID's last four digits `uid_end`: more samples than the
/// look at a JPEG-LS stream's head decodes (`MAX_HEAD_DECODE_SAMPLES`, 65,536).
fn ct_small_tiled(bytes: &[u8], uid_end: &[u8; 4]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let uid = b"1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.1";
    let mut at = 0;
    while let Some(found) = out[at..].windows(uid.len()).position(|w| w == uid) {
        let end = at + found + uid.len() + 4;
        out[end - 4..end].copy_from_slice(uid_end);
        at = end;
    }
    for (tag, value) in [(0x10u8, 256u16), (0x11, 512)] {
        let element = [0x28, 0x00, tag, 0x00, b'U', b'S', 2, 0];
        let at = out
            .windows(8)
            .position(|w| w == element)
            .expect("Rows and Columns");
        out[at + 8..at + 10].copy_from_slice(&value.to_le_bytes());
    }
    let pixels = ct_small_pixels(&out);
    let plane = out[pixels.clone()].to_vec();
    let mut tiled = Vec::with_capacity(512 * 256 * 2);
    for y in 0..256 {
        for x in 0..512 {
            let at = ((y % 128) * 128 + x % 128) * 2;
            tiled.extend_from_slice(&plane[at..at + 2]);
        }
    }
    let length = u32::try_from(tiled.len()).expect("small");
    out[pixels.start - 4..pixels.start].copy_from_slice(&length.to_le_bytes());
    out.splice(pixels, tiled);
    out
}

/// CT_small's Pixel Data replaced by `cipher` (32,768 bytes) written as a well-formed
/// RLE frame (its transfer syntax renamed RLE already): two segments (the 128 x 128
/// planes) of literal runs, each decoding to exactly its plane, as DCMTK's `dcmdrle`
/// decodes it.
fn as_rle_frame(bytes: &mut Vec<u8>, cipher: &[u8]) {
    let pixels = ct_small_pixels(bytes);
    let trailing = bytes.split_off(pixels.end);
    bytes.truncate(pixels.start - 12);
    bytes.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
    bytes.extend_from_slice(&[0xFF; 4]);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    let segment = |plane: &[u8]| -> Vec<u8> {
        plane
            .chunks(128)
            .flat_map(|run| std::iter::once(127u8).chain(run.iter().copied()))
            .collect()
    };
    let (high, low) = (segment(&cipher[..16_384]), segment(&cipher[16_384..]));
    let mut frame = vec![0u8; 64];
    frame[..4].copy_from_slice(&2u32.to_le_bytes());
    frame[4..8].copy_from_slice(&64u32.to_le_bytes());
    frame[8..12].copy_from_slice(&(64 + high.len() as u32).to_le_bytes());
    frame.extend(high);
    frame.extend(low);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
    bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    bytes.extend(frame);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    bytes.extend(trailing);
}

/// Review r23, inside a maintenance window: ciphertext written as a well-formed RLE
/// stream (the transfer syntax renamed RLE, literal runs that decode to exactly each
/// plane) passed as a re-compression (its shape is RLE's) and was softened to `info`.
/// Its frames are now decoded: random pixels, an alert each, counted. Real RLE
/// re-compressions by DCMTK beside them stay `info`.
#[test]
fn inside_a_window_ciphertext_as_a_well_formed_rle_stream_alerts() {
    const FILES: usize = 10;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-5127 re-compression",
    );
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    for (i, path) in paths.iter().enumerate() {
        if i < FILES / 2 {
            let out = staging.join(format!("{i}.dcm"));
            let status = std::process::Command::new("dcmcrle")
                .arg(path)
                .arg(&out)
                .status()
                .expect("dcmtk runs (scripts/setup-test-deps.sh)");
            assert!(status.success(), "dcmcrle {}", path.display());
            fs::copy(&out, path).expect("test fixture");
        } else {
            let mut bytes = fs::read(path).expect("test fixture");
            let ts = b"1.2.840.10008.1.2.1\0";
            let at = bytes
                .windows(ts.len())
                .position(|w| w == ts)
                .expect("the transfer syntax");
            bytes[at + 18] = b'5';
            as_rle_frame(&mut bytes, &keystream(32_768, 51 + i as u64));
            fs::write(path, &bytes).expect("test fixture");
        }
    }
    let raised = watcher.wait(Duration::from_secs(20), |f, _| {
        count(f, "ransomware-suspected") >= 1 && count(f, "pixel-data-changed") == FILES
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for (i, path) in paths.iter().enumerate() {
        let severity = if i < FILES / 2 { "info" } else { "alert" };
        assert_pixels_changed(&findings, path, severity);
    }
}

/// Issue 11 (review rv40-watch B3: 31 alerts over a real lossless migration): an RLE
/// re-compression inside a window, proven (decoded, its pixels the ones stored), was
/// decoded again by the window's check for random pixels under the same proving time;
/// that time spent, the image was put off, proven again, put off, and after
/// MAX_PROOF_PUT_OFFS judged unproven: an alert saying both "its pixels are the ones
/// stored" and "its content was not read or proven". The batch's proving time is
/// lowered so that only its first proof runs: the proof, and nothing after it may
/// overturn it. Failed before the fix (`alert`, `proof-budget-spent`).
#[test]
fn inside_a_window_a_proven_re_compression_is_not_judged_again_when_the_time_runs_out() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 1);
    let path = &paths[0];
    let mut command = common::pacsguard();
    // One proof a batch: the time squeezed and the floor of proofs at one (session 49).
    command
        .env("PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US", "1")
        .env("PACSGUARD_TEST_MIN_PROOFS_PER_BATCH", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-5140 re-compression",
    );
    let out = env.dir.path().join("rle.dcm");
    let status = std::process::Command::new("dcmcrle")
        .arg(path)
        .arg(&out)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmcrle {}", path.display());
    fs::copy(&out, path).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(60), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    let finding = findings
        .iter()
        .find(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
        .expect("judged");
    assert_eq!(finding["severity"], "info", "{finding:#?}");
    assert!(has_field(finding, "re-compressed"), "{finding:#?}");
    assert!(!has_field(finding, "proof-budget-spent"), "{finding:#?}");
    assert_eq!(count(&findings, "not-inspected"), 0, "{findings:#?}");
}

/// Review rv43-watch F1: 180 images of 2 MiB re-encoded in place to lossless JPEG-LS at
/// once inside a window outran the prover (about 3.5 images a second under load): 79
/// alerts "put off 8 times (MAX_PROOF_PUT_OFFS) ... judged unproven" and
/// `ransomware-suspected`. The batch's proving time is lowered (one proof a batch) so
/// that a burst of twelve images leaves some unproven after MAX_PROOF_PUT_OFFS: the
/// honest DCMTK re-encodings among them are judged by their stream (valid, of a
/// plausible size) as a `proof-unfinished` warning, never an alert; in the same flood,
/// random pixels coded by DCMTK (a valid but incompressible stream) and an honest
/// stream whose scan was overwritten with ciphertext (unstuffed: a violation; stuffed:
/// valid and of an honest size, but its first lines decode to no image) alert.
/// Failed before the fix (the honest images past the put-offs `alert`).
///
/// Session 45 (review rv44-watch case4): a warning is no verdict. A larger image (CT
/// samples tiled to 512 x 256, past what the look decodes) whose honest JPEG-LS head is
/// followed by stuffed random bytes passed the look and stayed a warning; each warning's
/// proof is now queued and finished when the watcher has time: the stuffed image is an
/// alert (`proof-finished-late`), every honest warning is closed by an info "proof
/// finished: pixel data unchanged". Failed before (no alert for the stuffed tail, no
/// info closing a warning).
#[test]
fn inside_a_window_a_re_compression_flood_past_the_prover_warns_and_ciphertext_alerts() {
    const HONEST: usize = 10;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nquiet_ms = 100\n");
    let mut paths = ct_small_files(&env, HONEST + 3);
    let tail = env.path("archive/study0/tail.dcm");
    let small = fs::read(&paths[0]).expect("test fixture");
    fs::write(&tail, ct_small_tiled(&small, b"9999")).expect("test fixture");
    paths.push(tail);
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut outs = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let mut source = path.clone();
        if i == HONEST {
            // Random pixels, coded by a real encoder: a valid, incompressible stream.
            let mut bytes = fs::read(path).expect("test fixture");
            let pixels = native_pixel_value(&bytes);
            let key = keystream(pixels.len(), 0xF1);
            bytes[pixels].copy_from_slice(&key);
            source = staging.join("random.dcm");
            fs::write(&source, &bytes).expect("test fixture");
        }
        let out = staging.join(format!("{i}.jls.dcm"));
        assert!(encode("dcmcjpls", &[], &source, &out), "dcmcjpls {i}");
        if i > HONEST {
            // An honest stream's scan overwritten with ciphertext, its size kept: raw
            // (unstuffed `FF`s, a violation), or stuffed as JPEG-LS's scan data is (a
            // 0 bit after each `FF`: valid, of a plausible size; its first lines do not
            // decode as an image's).
            let mut bytes = fs::read(&out).expect("test fixture");
            let sos = bytes
                .windows(2)
                .position(|w| w == [0xFF, 0xDA])
                .expect("an SOS");
            let scan = sos + 2 + usize::from(u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]));
            let eoi = bytes
                .windows(2)
                .rposition(|w| w == [0xFF, 0xD9])
                .expect("an EOI");
            // The tiled image keeps its first 60% honest: the look decodes only its
            // first half of lines.
            let from = if i == HONEST + 3 {
                scan + (eoi - scan) * 3 / 5
            } else {
                scan
            };
            let key = keystream(eoi - from, 0xF0 + i as u64);
            bytes[from..eoi].copy_from_slice(&key);
            if i >= HONEST + 2 {
                for at in from.max(scan + 1)..eoi {
                    if bytes[at - 1] == 0xFF {
                        bytes[at] &= 0x7F;
                    }
                }
                if bytes[eoi - 1] == 0xFF {
                    bytes[eoi - 1] = 0;
                }
            }
            fs::write(&out, &bytes).expect("test fixture");
        }
        outs.push(out);
    }
    let mut command = common::pacsguard();
    // One proof a batch: the time squeezed and the floor of proofs at one (session 49).
    command
        .env("PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US", "1")
        .env("PACSGUARD_TEST_MIN_PROOFS_PER_BATCH", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-4401 JPEG-LS migration",
    );
    // One batch: every image renamed into place while the watcher is stopped.
    for (out, path) in outs.iter().zip(&paths) {
        fs::copy(out, path.with_extension("tmp")).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for path in &paths {
        fs::rename(path.with_extension("tmp"), path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let judged = |f: &[Value], p: &Path| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
    };
    // Every warning's proof finished: as many records of it finished late as warnings.
    let settled = |f: &[Value], p: &Path| {
        let of = |field: &str| {
            f.iter()
                .filter(|x| {
                    x["kind"] == "pixel-data-changed"
                        && x["path"].as_str() == p.to_str()
                        && has_field(x, field)
                })
                .count()
        };
        let unfinished = f
            .iter()
            .filter(|x| {
                x["kind"] == "pixel-data-changed"
                    && x["path"].as_str() == p.to_str()
                    && has_field(x, "proof-unfinished")
                    && !has_field(x, "proof-finished-late")
            })
            .count();
        unfinished == of("proof-finished-late")
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        paths.iter().all(|p| judged(f, p) && settled(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let of = |p: &Path| -> Vec<&Value> {
        findings
            .iter()
            .filter(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
            .collect()
    };
    let mut unfinished = 0;
    for path in &paths[..HONEST] {
        for x in of(path) {
            assert_ne!(x["severity"], "alert", "{x:#?}");
            if has_field(x, "proof-finished-late") {
                assert_eq!(x["severity"], "info", "{x:#?}");
                assert!(
                    x["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("proof finished: pixel data unchanged")),
                    "{x:#?}"
                );
            } else if has_field(x, "proof-unfinished") {
                unfinished += 1;
                assert_eq!(x["severity"], "warning", "{x:#?}");
                assert!(
                    x["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("MAX_PROOF_PUT_OFFS")),
                    "{x:#?}"
                );
            }
        }
    }
    assert!(unfinished > 0, "none past the put-offs: {findings:#?}");
    for path in &paths[HONEST..HONEST + 3] {
        assert_pixels_changed(&findings, path, "alert");
        assert!(of(path).iter().all(|x| !has_field(x, "proof-unfinished")));
    }
    // The honest head over stuffed ciphertext, the largest image (proven last, so
    // mostly past the put-offs): its head passes the look, a warning, and its proof
    // finished later is the alert, counted; no warning is left standing (`settled`). A
    // loaded machine may split the renames over two batches and prove it in its own
    // batch (the grader's CI run of session 45): then it is the alert at once, never a
    // warning that stands.
    let stuffed = &paths[HONEST + 3];
    let alerts: Vec<&Value> = of(stuffed)
        .into_iter()
        .filter(|x| !has_field(x, "proof-unfinished") || has_field(x, "proof-finished-late"))
        .collect();
    assert!(!alerts.is_empty(), "{:#?}", of(stuffed));
    for x in alerts {
        assert_eq!(x["severity"], "alert", "{x:#?}");
        assert!(has_field(x, "re-compression-unproven"), "{x:#?}");
    }
    // The warnings feed no ransomware signal: none named as its evidence.
    for x in findings
        .iter()
        .filter(|x| x["kind"] == "ransomware-suspected")
    {
        let detail = x["detail"].as_str().unwrap_or_default();
        for path in &paths[..HONEST] {
            assert!(!detail.contains(&format!("{}", path.display())), "{x:#?}");
        }
    }
}

/// Issue 11, review rv45-proof (case1 stop): re-compressions judged by their stream
/// inside a window whose proofs were still queued when the watcher ended were said by
/// count and never proven: the view had taken each file as written, so the next start
/// compared nothing, and ciphertext that passed the stream's look stayed accepted. A
/// crash is the hard case (no stop to say anything): the watcher is killed with SIGKILL
/// once a checkpoint has kept its view, its proofs held (a debug build's hook); the next
/// start's catch-up judges each queued file again, against the state its proof was
/// against: proven a re-compression, or an alert. Failed before the fix (none of them
/// judged after the restart). Issue 11, session 46 (r46-late2): the restart's catch-up
/// has a squeezed proving budget too (one proof), and queues what it cannot prove, so an
/// honest migration stopped mid-way is never an alert after the restart (it was: "the
/// catch-up puts nothing off"), while the last `FORGED`, JPEG-LS of other pixels (the
/// image turned upside down), are alerts still. Failed before the fix (honest ones
/// alerts after the restart).
#[test]
fn re_compressions_whose_proof_was_queued_are_judged_after_a_kill_9_and_a_restart() {
    const COUNT: usize = 12;
    const FORGED: usize = 2;
    let env = Env::new();
    configure(
        &env,
        "scrub_mb_per_s = 0\nquiet_ms = 100\ncheckpoint_seconds = 1\n",
    );
    let paths = ct_small_files(&env, COUNT);
    env.profile(&["--policy", "append-only"]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    // Encoded at once (each in turn took a second of the test's time under load).
    let outs: Vec<PathBuf> = (0..COUNT)
        .map(|i| staging.join(format!("{i}.jls.dcm")))
        .collect();
    // The forged ones encode other pixels: the samples in reverse order (as compressible
    // as the stored ones, so their streams pass the look; only a proof tells).
    let sources: Vec<PathBuf> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            if i < COUNT - FORGED {
                return path.clone();
            }
            let mut bytes = fs::read(path).expect("test fixture");
            let range = ct_small_pixels(&bytes);
            let samples: Vec<[u8; 2]> = bytes[range.clone()]
                .chunks_exact(2)
                .rev()
                .map(|s| [s[0], s[1]])
                .collect();
            bytes[range].copy_from_slice(samples.as_flattened());
            let source = staging.join(format!("{i}.forged.dcm"));
            fs::write(&source, bytes).expect("test fixture");
            source
        })
        .collect();
    let encoders: Vec<std::process::Child> = sources
        .iter()
        .zip(&outs)
        .map(|(path, out)| {
            std::process::Command::new("dcmcjpls")
                .arg(path)
                .arg(out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("dcmtk runs (scripts/setup-test-deps.sh)")
        })
        .collect();
    for mut encoder in encoders {
        assert!(encoder.wait().expect("dcmcjpls").success(), "dcmcjpls");
    }
    let mut command = common::pacsguard();
    command
        .env("PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US", "1")
        .env("PACSGUARD_TEST_MIN_PROOFS_PER_BATCH", "1")
        .env("PACSGUARD_TEST_HOLD_LATE_PROOFS", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-4402 JPEG-LS migration",
    );
    for (out, path) in outs.iter().zip(&paths) {
        fs::copy(out, path.with_extension("tmp")).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for path in &paths {
        fs::rename(path.with_extension("tmp"), path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let judged = |f: &[Value], p: &Path| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
    };
    let unfinished = |f: &[Value]| -> Vec<String> {
        f.iter()
            .filter(|x| x["kind"] == "pixel-data-changed" && has_field(x, "proof-unfinished"))
            .filter_map(|x| x["path"].as_str().map(str::to_string))
            .collect()
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        paths.iter().all(|p| judged(f, p)) && !unfinished(f).is_empty()
    });
    // A mode changed while its proof is queued is said, its pixel change once (it was
    // proven again against the state held for it, a second verdict).
    use std::os::unix::fs::PermissionsExt;
    for path in &paths {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("test fixture");
    }
    let moded = watcher.wait(Duration::from_secs(30), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "metadata-changed" && x["path"].as_str() == p.to_str())
        })
    });
    // The seen rows are kept at each checkpoint (one within checkpoint_seconds while
    // records are unsigned): wait for one after the warnings; none comes when one came
    // already after them, so its absence is no failure.
    let checkpoints = env.home.join("checkpoints.jsonl");
    let signed = || {
        fs::read_to_string(&checkpoints)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let before = signed();
    let _ = common::process::poll(Duration::from_secs(5), || signed() > before);
    let (first, stderr) = watcher.kill();
    assert!(seen, "{first:#?}\n{stderr}");
    assert!(moded, "{first:#?}\n{stderr}");
    let queued = unfinished(&first);
    for path in &paths {
        let verdicts: Vec<&Value> = first
            .iter()
            .filter(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
            .collect();
        assert_eq!(verdicts.len(), 1, "{verdicts:#?}");
    }
    assert!(
        first.iter().all(|x| !has_field(x, "proof-finished-late")),
        "held: {first:#?}"
    );
    // The restart's catch-up proves one image at most: the others are queued, proven
    // after it (a proof an idle turn), each warning closed by its proof's verdict. The
    // queue takes two (a debug build's hook for MAX_LATE_PROOFS): the rest wait unjudged
    // for room in it and are proven as it drains (session 49, review rv46-watch caseC:
    // concluded unproven past it, an honest migration done while the watcher was
    // stopped paged at the restart).
    let mut command = common::pacsguard();
    // One proof a batch: the time squeezed and the floor of proofs at one (session 49).
    command
        .env("PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US", "1")
        .env("PACSGUARD_TEST_MIN_PROOFS_PER_BATCH", "1")
        .env("PACSGUARD_TEST_MAX_LATE_PROOFS", "2");
    let watcher = Watcher::start_with(&env, &[], command);
    // Issue 11, session 50 (review rv49-watch case3): images renamed while they wait
    // (for room, or their proof): a forged one renamed in place and one moved into
    // another directory are alerts still (they were "another file matched by its SOP
    // Instance UID", softened inside the window), an honest one renamed stays no alert,
    // and one renamed out of the store is said `removed`. Whatever each one's state when
    // renamed (held, queued, or judged already), so these hold under any timing.
    let forged_queued: Vec<&String> = queued
        .iter()
        .filter(|p| {
            paths[COUNT - FORGED..]
                .iter()
                .any(|f| f.to_str() == Some(p))
        })
        .collect();
    let honest_queued: Vec<&String> = queued
        .iter()
        .filter(|p| {
            paths[..COUNT - FORGED]
                .iter()
                .any(|f| f.to_str() == Some(p))
        })
        .collect();
    fs::create_dir_all(env.path("archive/moved")).expect("test fixture");
    let mut renamed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut rename = |from: &str, to: PathBuf| {
        fs::rename(from, &to).expect("test fixture");
        renamed.insert(from.to_string(), to.to_string_lossy().into_owned());
    };
    for (i, path) in forged_queued.iter().enumerate() {
        let to = if i % 2 == 0 {
            PathBuf::from(format!("{path}.locked"))
        } else {
            env.path("archive/moved").join(format!("forged-{i}.dcm"))
        };
        rename(path, to);
    }
    if let Some(path) = honest_queued.first() {
        rename(path, PathBuf::from(format!("{path}.renamed")));
    }
    let outside = honest_queued.get(1).map(|p| p.to_string());
    if let Some(path) = &outside {
        fs::rename(path, env.dir.path().join("outside.dcm")).expect("test fixture");
    }
    let now_at = |path: &str| {
        renamed
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.to_string())
    };
    let of = |f: &[Value], path: &str, warning: bool| {
        f.iter()
            .filter(|x| {
                x["kind"] == "pixel-data-changed"
                    && x["path"].as_str() == Some(path)
                    && if warning {
                        has_field(x, "proof-unfinished") && !has_field(x, "proof-finished-late")
                    } else {
                        has_field(x, "proof-finished-late")
                    }
            })
            .count()
    };
    // Judged under its name then, or its new one (its proof follows its inode).
    let settled_either = |f: &[Value], path: &str| {
        let new = now_at(path);
        let warned = of(f, path, true) + if new == path { 0 } else { of(f, &new, true) };
        let finished = of(f, path, false) + if new == path { 0 } else { of(f, &new, false) };
        (judged(f, Path::new(path)) || judged(f, Path::new(&new))) && warned == finished
    };
    let removed = |f: &[Value], path: &str| {
        f.iter()
            .any(|x| x["kind"] == "removed" && x["path"].as_str() == Some(path))
    };
    let done = watcher.wait(Duration::from_secs(60), |f, _| {
        queued.iter().all(|p| {
            if outside.as_deref() == Some(p.as_str()) {
                removed(f, p)
            } else {
                settled_either(f, p)
            }
        })
    });
    let (_, second, stderr) = watcher.stop();
    assert!(done, "not judged after the restart: {second:#?}\n{stderr}");
    let forged: Vec<&str> = paths[COUNT - FORGED..]
        .iter()
        .filter_map(|p| p.to_str())
        .collect();
    for path in queued
        .iter()
        .filter(|p| outside.as_deref() != Some(p.as_str()))
    {
        let new = now_at(path);
        let verdicts: Vec<&Value> = second
            .iter()
            .filter(|x| {
                x["kind"] == "pixel-data-changed"
                    && (x["path"].as_str() == Some(path) || x["path"].as_str() == Some(&new))
            })
            .collect();
        let last = verdicts.last().expect("judged");
        if forged.contains(&path.as_str()) {
            assert_eq!(last["severity"], "alert", "{verdicts:#?}");
        } else {
            for x in &verdicts {
                assert_ne!(x["severity"], "alert", "{x:#?}\n{second:#?}");
            }
            assert!(has_field(last, "re-compressed"), "{verdicts:#?}");
        }
    }
    // A forged image not queued at the kill was its alert before it.
    for path in forged.iter().filter(|p| !queued.iter().any(|q| q == *p)) {
        assert!(
            first.iter().any(|x| x["kind"] == "pixel-data-changed"
                && x["path"].as_str() == Some(path)
                && x["severity"] == "alert"),
            "{path}: {first:#?}"
        );
    }
}

/// CT_small (`bytes`, explicit VR little endian) written again in Encapsulated
/// Uncompressed Explicit VR Little Endian (1.2.840.10008.1.2.1.98) holding `pixels` as
/// its one frame: the transfer syntax (and the File Meta Information's group length)
/// rewritten, the native Pixel Data turned into an empty Basic Offset Table and one
/// fragment, as pydicom's `encapsulate` writes it.
fn as_encapsulated_uncompressed(bytes: &[u8], pixels: &[u8]) -> Vec<u8> {
    let ts = b"1.2.840.10008.1.2.1\0";
    let at = bytes
        .windows(ts.len() + 8)
        .position(|w| w[..4] == [0x02, 0x00, 0x10, 0x00] && &w[8..] == ts)
        .expect("the transfer syntax");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 22, 0]);
    out.extend_from_slice(b"1.2.840.10008.1.2.1.98");
    let range = ct_small_pixels(bytes);
    out.extend_from_slice(&bytes[at + 8 + ts.len()..range.start - 12]);
    // The File Meta Information's group length, (0002,0000) UL, two bytes longer.
    let group = out
        .windows(8)
        .position(|w| w == [0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0])
        .expect("the group length");
    let length = u32::from_le_bytes(out[group + 8..group + 12].try_into().expect("4 bytes"));
    out[group + 8..group + 12].copy_from_slice(&(length + 2).to_le_bytes());
    out.extend_from_slice(&[
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
    out.extend_from_slice(&u32::try_from(pixels.len()).expect("small").to_le_bytes());
    out.extend_from_slice(pixels);
    out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    out.extend_from_slice(&bytes[range.end..]);
    out
}

/// Review rv40-watch B9b: pixels encrypted and written in Encapsulated Uncompressed
/// Explicit VR Little Endian (1.2.840.10008.1.2.1.98, its fragments the frames' native
/// bytes) inside a window, in place or under a new name with the stored image removed,
/// were 0 alerts: the in-place ones `info` while their words said "encrypted?", the new
/// files `info` arrivals. Its frames are now read as the native pixels they are: the
/// same pixels in place stay `info`, random ones are an alert in place and as an
/// arrival. Failed before the fix (both encrypted ones `info`).
#[test]
fn inside_a_window_encapsulated_uncompressed_pixels_are_compared_as_native_ones() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-5141 storage migration",
    );
    let honest = &paths[0];
    let bytes = fs::read(honest).expect("test fixture");
    let pixels = bytes[ct_small_pixels(&bytes)].to_vec();
    fs::write(honest, as_encapsulated_uncompressed(&bytes, &pixels)).expect("test fixture");
    let in_place = &paths[1];
    let bytes = fs::read(in_place).expect("test fixture");
    fs::write(
        in_place,
        as_encapsulated_uncompressed(&bytes, &keystream(32_768, 98)),
    )
    .expect("test fixture");
    let moved = &paths[2];
    let renamed = moved.with_extension("v2.dcm");
    let bytes = fs::read(moved).expect("test fixture");
    fs::write(
        &renamed,
        as_encapsulated_uncompressed(&bytes, &keystream(32_768, 99)),
    )
    .expect("test fixture");
    fs::remove_file(moved).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        [honest, in_place, &renamed]
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    // The same pixels: the profile reads the one fragment's bytes as the Pixel Data
    // stored (`header-changed`), or a proof shows them (`re-compressed`): never an alert.
    assert!(
        findings
            .iter()
            .filter(|f| f["path"].as_str() == honest.to_str())
            .all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );
    assert_pixels_changed(&findings, in_place, "alert");
    assert!(
        findings.iter().any(|f| f["kind"] == "added"
            && f["severity"] == "alert"
            && f["path"].as_str() == renamed.to_str()),
        "{findings:#?}"
    );
}

/// Review rv40b's `mf98.py` and `mf98enc.py`: `make OUT N` writes a native multi-frame
/// image of N frames of CT_small's pixels (each shifted); `98 IN OUT KEEP` writes IN
/// again in Encapsulated Uncompressed (1.2.840.10008.1.2.1.98, a frame a fragment, the
/// same UIDs), its frames from KEEP on replaced by their AES-CTR ciphertext (`openssl`;
/// KEEP at N or more: none).
const MULTIFRAME_98_SCRIPT: &str = r#"
import sys, subprocess
import pydicom
from pydicom.encaps import encapsulate
if sys.argv[1] == 'make':
    src, out, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    ds = pydicom.dcmread(src)
    f = ds.PixelData
    ds.NumberOfFrames = n
    ds.PixelData = b''.join(f[(2*i) % len(f):] + f[:(2*i) % len(f)] for i in range(n))
    ds['PixelData'].VR = 'OW'
    ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1'
    ds.save_as(out, enforce_file_format=True)
else:
    inp, out, keep = sys.argv[2], sys.argv[3], int(sys.argv[4])
    ds = pydicom.dcmread(inp)
    n = int(ds.NumberOfFrames); fb = len(ds.PixelData) // n
    frames = [ds.PixelData[i*fb:(i+1)*fb] for i in range(n)]
    if keep < n:
        tail = b''.join(frames[keep:])
        ct = subprocess.run(['openssl', 'enc', '-aes-256-ctr', '-K', '00'*32, '-iv', '00'*16], input=tail, capture_output=True, check=True).stdout
        frames = frames[:keep] + [ct[i*fb:(i+1)*fb] for i in range(n - keep)]
    ds.PixelData = encapsulate(frames, has_bot=False); ds['PixelData'].VR = 'OB'; ds['PixelData'].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1.98'
    ds.save_as(out, enforce_file_format=True)
"#;

/// Runs [`MULTIFRAME_98_SCRIPT`] with pydicom from `.testdata`.
fn multiframe_98(args: &[&std::ffi::OsStr]) {
    let pydicom = pacsguard_testkit::testdata().join("wheels/pydicom");
    let status = std::process::Command::new("python3")
        .env("PYTHONPATH", &pydicom)
        .arg("-c")
        .arg(MULTIFRAME_98_SCRIPT)
        .args(args)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "pydicom writes {args:?}");
}

/// Review rv40b: Encapsulated Uncompressed images past `MAX_FRAGMENT_READ_BYTES` (16 MiB;
/// 600 frames of CT_small, 19 MiB) encrypted inside a maintenance window, in place (its
/// frames from the 40th on: past the first MiB) or under a new name (all frames, the
/// stored image removed), were `info`, the in-place one's words saying "encrypted?": its
/// frames not all within 16 MiB, nothing was sampled (failed before: both `info`). Both
/// now alert (the frames read,
/// and blocks past them, sampled as a native image's); the honest migration of such an
/// image to .98 stays `info`.
#[test]
fn inside_a_window_encapsulated_uncompressed_images_past_16_mib_encrypted_alert() {
    const FRAMES: &str = "600";
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let archive = env.path("archive/study0");
    fs::create_dir_all(&archive).expect("test fixture");
    let ct_small =
        pacsguard_testkit::testdata().join("wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let paths: Vec<PathBuf> = (0..3).map(|i| archive.join(format!("mf{i}.dcm"))).collect();
    multiframe_98(&[
        "make".as_ref(),
        ct_small.as_os_str(),
        paths[0].as_os_str(),
        FRAMES.as_ref(),
    ]);
    for path in &paths[1..] {
        fs::copy(&paths[0], path).expect("test fixture");
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &env.path("archive"), "CHG-4198 move to .98");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let write_98 = |from: &Path, to: &Path, keep: &str| {
        let temp = staging.join("temp.dcm");
        multiframe_98(&[
            "98".as_ref(),
            from.as_os_str(),
            temp.as_os_str(),
            keep.as_ref(),
        ]);
        assert!(fs::metadata(&temp).expect("written").len() > 16 << 20);
        fs::rename(&temp, to).expect("test fixture");
    };
    let (honest, in_place, moved) = (&paths[0], &paths[1], &paths[2]);
    write_98(honest, honest, FRAMES);
    write_98(in_place, in_place, "40");
    let renamed = moved.with_file_name("mf2_98.dcm");
    write_98(moved, &renamed, "0");
    fs::remove_file(moved).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(60), |f, _| {
        [honest, in_place, &renamed]
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    assert!(
        findings
            .iter()
            .filter(|f| f["path"].as_str() == honest.to_str())
            .all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );
    assert_pixels_changed(&findings, in_place, "alert");
    // Under a new name with the stored image's UID: an arrival, or the stored image's
    // change judged by its content alone; either way an alert saying random frames.
    assert!(
        findings.iter().any(|f| f["severity"] == "alert"
            && f["path"].as_str() == renamed.to_str()
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("frames encapsulated") && d.contains("random"))),
        "{findings:#?}"
    );
}

/// Review r23, a lossless re-compression over every real file at hand: each DICOM file
/// of pydicom's and pynetdicom's test data stored append-only, then, outside any window,
/// the native images written again in place by `dcmcrle`, `dcmcjpeg` (JPEG lossless) or
/// `gdcmconv --j2k` in turn (those a tool refuses are left alone), at the default
/// thresholds. Before r23: 31 `pixel-data-changed` and 23 `header-changed` (objects
/// without Pixel Data given the new syntax) counted, and `ransomware-suspected`. Now no
/// `ransomware-suspected`; each image re-compressed from a little endian native syntax
/// is marked `re-compressed` (review r24: decoded, whatever the codec, and found the same
/// pixels), each object without Pixel Data `re-encoded`; what still counts is printed.
/// (JPEG-LS: see `a_jpeg_ls_re_compression_outside_a_window_is_no_ransomware`.)
#[test]
fn lossless_re_compression_over_the_real_corpora_is_no_ransomware() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let (sources, paths) = corpora_store(&env);
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut rewritten = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        // A compressed image transcoded (GDCM and DCMTK decompress first) is not a
        // re-compression of the pixels stored: only native images are rewritten.
        if !stored_natively(path) {
            continue;
        }
        let out = staging.join(format!("{i:03}.dcm"));
        let (tool, args): (&str, &[&str]) = match i % 3 {
            0 => ("dcmcrle", &["-q"]),
            1 => ("dcmcjpeg", &["-q", "+e1"]),
            _ => ("gdcmconv", &["--j2k"]),
        };
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(path)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("dcmtk and gdcmconv run (scripts/setup-test-deps.sh)");
        if status.success() && fs::read(&out).ok() != fs::read(path).ok() {
            fs::copy(&out, path).expect("test fixture");
            rewritten.push(path.clone());
        }
    }
    assert!(rewritten.len() >= 30, "re-compressed {}", rewritten.len());
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        rewritten
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let pixels: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "pixel-data-changed")
        .collect();
    let marked = |f: &&&Value| {
        f["fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "re-compressed"))
    };
    // Explicit VR big endian: a 32-bit image's OW value is swapped in 16-bit words, not
    // stored most significant byte first; not proven, and left counting. Two images whose
    // Pixel Data is longer than their frames (MR_small_padded: 128 bytes past its 64 x 64
    // pixels; badVR: 15 frames' worth under one frame's header) lose those bytes in the
    // new value: their frames decode to other pixels than the ones stored, and count.
    let longer = longer_than_frames(&sources, &paths);
    let unmarked: Vec<&&Value> = pixels
        .iter()
        .filter(|f| {
            !marked(f)
                && !f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("transfer syntax 1.2.840.10008.1.2.2 ->"))
                && !f["path"].as_str().is_some_and(|p| longer.contains(&p))
        })
        .collect();
    let counting: Vec<String> = findings
        .iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "ransomware-suspected"
                && !f["fields"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "re-compressed" || x == "re-encoded"))
        })
        .map(|f| format!("{} {}", f["kind"], f["detail"]))
        .collect();
    eprintln!("still counting: {counting:#?}");
    eprintln!(
        "{} files, {} re-compressed by dcmtk, {} pixel-data-changed, {} marked re-compressed",
        paths.len(),
        rewritten.len(),
        pixels.len(),
        pixels.iter().filter(marked).count()
    );
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{unmarked:#?}");
    assert!(unmarked.is_empty(), "{unmarked:#?}");
}

/// Every DICOM file of pydicom's and pynetdicom's test data copied into `archive` (as
/// `NNN.dcm`, in the order of their sorted sources): the sources and the copies. Not
/// profiled yet.
fn corpora_store(env: &Env) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let kit = pacsguard_testkit::testdata().join("wheels");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let mut sources = Vec::new();
    let mut stack = vec![kit.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("test data").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "dcm") {
                sources.push(path);
            }
        }
    }
    sources.sort();
    assert!(sources.len() >= 100, "{} files", sources.len());
    let paths: Vec<PathBuf> = sources
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let path = archive.join(format!("{i:03}.dcm"));
            fs::copy(source, &path).expect("test fixture");
            path
        })
        .collect();
    (sources, paths)
}

/// The copies (of [`corpora_store`]) of the two images whose Pixel Data is longer than
/// their frames: MR_small_padded (128 bytes past its 64 x 64 pixels) and badVR (15
/// frames' worth under one frame's header). A re-compression keeps only the frames.
fn longer_than_frames<'a>(sources: &[PathBuf], paths: &'a [PathBuf]) -> Vec<&'a str> {
    sources
        .iter()
        .zip(paths)
        .filter(|(s, _)| s.ends_with("MR_small_padded.dcm") || s.ends_with("test_files/badVR.dcm"))
        .filter_map(|(_, p)| p.to_str())
        .collect()
}

/// Review r24, inside a maintenance window: every native image of the real corpora
/// re-compressed in place by each of DCMTK's and GDCM's lossless encoders in turn
/// (`dcmcrle`, `dcmcjpls`, `dcmcjpeg`, `gdcmconv --rle`, `--jpegls`, `--jpeg`,
/// `--j2k`). Frames that decode to other pixels, or whose data the codec's decoder
/// refuses, are not softened in a window any more; none of these migrations may be taken
/// for that, except the two images whose Pixel Data is longer than their frames (see
/// [`longer_than_frames`]): their encoders drop those bytes, and each is an alert. The
/// JPEG-LS ones alerted, unproven for want of a decoder, and paged (issue 11, review
/// s42): decoded now, they are proven and `info` as the others.
#[test]
fn lossless_re_compression_over_the_real_corpora_inside_a_window_is_info() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let (sources, paths) = corpora_store(&env);
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(
        &env,
        &watcher,
        &env.path("archive"),
        "CHG-5130 re-compression",
    );
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 7] = [
        ("dcmcrle", &["-q"]),
        ("dcmcjpls", &["-q"]),
        ("dcmcjpeg", &["-q", "+e1"]),
        ("gdcmconv", &["--rle"]),
        ("gdcmconv", &["--jpegls"]),
        ("gdcmconv", &["--jpeg"]),
        ("gdcmconv", &["--j2k"]),
    ];
    let mut rewritten = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if !stored_natively(path) {
            continue;
        }
        let out = staging.join(format!("{i:03}.dcm"));
        let (tool, args) = tools[i % tools.len()];
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(path)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("dcmtk and gdcmconv run (scripts/setup-test-deps.sh)");
        if status.success() && fs::read(&out).ok() != fs::read(path).ok() {
            fs::copy(&out, path).expect("test fixture");
            rewritten.push(path.clone());
        }
    }
    assert!(rewritten.len() >= 30, "re-compressed {}", rewritten.len());
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        rewritten
            .iter()
            .all(|p| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let longer = longer_than_frames(&sources, &paths);
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
                && !f["path"].as_str().is_some_and(|p| longer.contains(&p))
        })
        .collect();
    eprintln!(
        "{} files, {} re-compressed in the window, {} loud",
        paths.len(),
        rewritten.len(),
        loud.len()
    );
    assert!(loud.is_empty(), "{loud:#?}");
}

/// The native color images of pydicom's test data a lossless encoder re-compresses, and
/// YBR_FULL ones made from its JPEG images by `dcmdjpeg +cn` (no color conversion: one
/// frame interleaved, and 30 frames planar), copied into `dir`: RGB, YBR_FULL and
/// YBR_FULL_422. Each name says what it is.
fn color_sources(dir: &Path) -> Vec<PathBuf> {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    fs::create_dir_all(dir).expect("test fixture");
    let mut out = Vec::new();
    for (name, source) in [
        ("rgb.dcm", "examples_rgb_color.dcm"),
        ("rgb-odd.dcm", "SC_rgb_small_odd.dcm"),
        ("ybr422.dcm", "SC_ybr_full_422_uncompressed.dcm"),
    ] {
        let path = dir.join(name);
        fs::copy(samples.join(source), &path).expect("pydicom's test data");
        out.push(path);
    }
    for (name, source) in [
        ("ybr-full.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm"),
        ("ybr-full-frames.dcm", "examples_ybr_color.dcm"),
    ] {
        let path = dir.join(name);
        let status = std::process::Command::new("dcmdjpeg")
            .args(["+cn"])
            .arg(samples.join(source))
            .arg(&path)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmdjpeg +cn {source}");
        out.push(path);
    }
    out
}

/// The lossless encoders of DCMTK and GDCM whose streams are decoded here (JPEG-LS since
/// session 43: before, its honest re-compressions alerted inside a window).
const DECODED_LOSSLESS_TOOLS: [(&str, &[&str]); 7] = [
    ("dcmcrle", &["-q"]),
    ("dcmcjpeg", &["-q", "+e1"]),
    ("gdcmconv", &["--rle"]),
    ("gdcmconv", &["--jpeg"]),
    ("gdcmconv", &["--j2k"]),
    ("dcmcjpls", &["-q"]),
    ("gdcmconv", &["--jpegls"]),
];

/// `tool` run on `input`, writing `output`; whether it succeeded (an encoder refuses
/// some images: GDCM's JPEG 2000 a 3 x 3 one, DCMTK's RLE a YBR_FULL_422 one).
fn encode(tool: &str, args: &[&str], input: &Path, output: &Path) -> bool {
    std::process::Command::new(tool)
        .args(args)
        .arg(input)
        .arg(output)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("dcmtk and gdcmconv run (scripts/setup-test-deps.sh)")
        .success()
}

/// The native Pixel Data value of the explicit VR little endian image `bytes`: its
/// last `(7FE0,0010)` OB or OW element's value.
fn native_pixel_value(bytes: &[u8]) -> std::ops::Range<usize> {
    let tag = bytes
        .windows(6)
        .rposition(|w| w[..4] == [0xE0, 0x7F, 0x10, 0x00] && (&w[4..] == b"OB" || &w[4..] == b"OW"))
        .expect("a native Pixel Data element");
    let len = u32::from_le_bytes([
        bytes[tag + 8],
        bytes[tag + 9],
        bytes[tag + 10],
        bytes[tag + 11],
    ]);
    let at = tag + 12;
    at..(at + len as usize).min(bytes.len())
}

/// Review rv39-watch (B5): inside a maintenance window, a color image (RGB, YBR_FULL,
/// interleaved or planar) whose Pixel Data is XORed with a 4-byte key and then
/// re-compressed losslessly by each of DCMTK's and GDCM's encoders decoded here, written
/// over itself under its own name and UID. Its frames decode to other pixels than the
/// ones stored, in the color representation it was stored in: no encoder does that.
/// Before, only a monochrome image was judged so; a color one was softened to `info`
/// while its detail said "no re-compression, counted towards the ransomware signal".
/// Each is an alert now, as the monochrome reference (CT_small) is, and pages.
#[test]
fn inside_a_window_color_pixels_xored_then_re_compressed_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sources = color_sources(&env.dir.path().join("sources"));
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let ct = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    // Not the YBR_FULL_422 image: each encoder here rewrites it as YBR_FULL, a color
    // conversion whose decoded pixels differ honestly (said, and softened, below).
    let sources: Vec<PathBuf> = sources
        .into_iter()
        .filter(|s| !s.ends_with("ybr422.dcm"))
        .chain([ct])
        .collect();
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    // Every (source, tool) pair an encoder takes, copied into the store first.
    let mut pairs = Vec::new();
    let key = [0x5A, 0xC3, 0x17, 0x9E];
    let xor = |bytes: &mut Vec<u8>| {
        let pixels = native_pixel_value(bytes);
        for (j, b) in bytes[pixels].iter_mut().enumerate() {
            *b ^= key[j % key.len()];
        }
    };
    for (s, source) in sources.iter().enumerate() {
        for (t, (tool, args)) in DECODED_LOSSLESS_TOOLS.iter().enumerate() {
            // The image and its XORed pixels both taken by the encoder (GDCM's JPEG-LS
            // refuses some XORed ones).
            let probe = staging.join(format!("probe-{s}-{t}.dcm"));
            let mut xored = fs::read(source).expect("test fixture");
            xor(&mut xored);
            let xored_in = staging.join(format!("probe-xored-{s}-{t}-in.dcm"));
            fs::write(&xored_in, &xored).expect("test fixture");
            let xored_out = staging.join(format!("probe-xored-{s}-{t}.dcm"));
            if !encode(tool, args, source, &probe) || !encode(tool, args, &xored_in, &xored_out) {
                continue;
            }
            let path = archive.join(format!("{s}-{t}.dcm"));
            fs::copy(source, &path).expect("test fixture");
            pairs.push((path, *tool, *args));
        }
    }
    assert!(pairs.len() >= 20, "{} pairs", pairs.len());
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7 J2K migration");
    for (i, (path, tool, args)) in pairs.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        xor(&mut bytes);
        let xored = staging.join(format!("xored-{i}.dcm"));
        let out = staging.join(format!("out-{i}.dcm"));
        fs::write(&xored, &bytes).expect("test fixture");
        assert!(
            encode(tool, args, &xored, &out),
            "{tool} {args:?} {}",
            path.display()
        );
        // Written beside it, then renamed over it, as an encryptor does.
        let temp = path.with_extension("tmp");
        fs::copy(&out, &temp).expect("test fixture");
        fs::rename(&temp, path).expect("test fixture");
    }
    // Every pair is proven, batch after batch within the proving budget (most put off
    // and said): 56 s with five encoders under a load of 8-13 (session 42), 99 s with
    // seven under a load of 9 (session 43), past the 60 s this waited before.
    let seen = watcher.wait(Duration::from_secs(180), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && pairs.iter().all(|(p, _, _)| {
                f.iter()
                    .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let soft: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "pixel-data-changed"
                && (f["severity"] != "alert" || !has_field(f, "re-compression-unproven"))
        })
        .collect();
    assert!(soft.is_empty(), "{soft:#?}");
}

/// Review rv39-watch (B5), the other side: inside a maintenance window, honest
/// re-compressions of the same color images (each by every lossless encoder decoded
/// here, and lossy ones: DCMTK's baseline JPEG, GDCM's lossy JPEG and JPEG 2000) are
/// `info`, none counts. The YBR_FULL_422 image, rewritten as YBR_FULL by GDCM (its
/// decoded pixels are not the ones stored), is `info` too, and its detail says it is
/// not counted inside the window rather than that it is.
#[test]
fn inside_a_window_color_re_compressions_are_info() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let sources = color_sources(&env.dir.path().join("sources"));
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut tools: Vec<(&str, &[&str])> = DECODED_LOSSLESS_TOOLS.to_vec();
    tools.extend([
        ("dcmcjpeg", &["-q", "+eb"][..]),
        ("gdcmconv", &["--jpeg", "--lossy", "-q", "90"][..]),
        ("gdcmconv", &["--j2k", "--lossy", "-r", "10"][..]),
    ]);
    let mut outs = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        for (t, (tool, args)) in tools.iter().enumerate() {
            // The 30-frame image by DCMTK's lossless JPEG only (see `Layout` in the
            // codec's proof; every encoder's is proven by a unit test there): decoding
            // it eight times over spends a debug build's proving time batch after
            // batch, and the images put off behind it are judged unproven at last.
            if source.ends_with("ybr-full-frames.dcm")
                && (*tool, *args) != ("dcmcjpeg", &["-q", "+e1"][..])
            {
                continue;
            }
            let out = staging.join(format!("{s}-{t}.dcm"));
            if !encode(tool, args, source, &out) {
                continue;
            }
            let path = archive.join(format!("{s}-{t}.dcm"));
            fs::copy(source, &path).expect("test fixture");
            outs.push((path, out));
        }
    }
    assert!(outs.len() >= 20, "{} re-compressions", outs.len());
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-8 color migration");
    for (path, out) in &outs {
        let temp = path.with_extension("tmp");
        fs::copy(out, &temp).expect("test fixture");
        fs::rename(&temp, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        outs.iter()
            .all(|(p, _)| f.iter().any(|x| x["path"].as_str() == p.to_str()))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    // A batch's proving budget spent (a debug build decodes slowly) is said, and its
    // images are put off to a later batch: a warning, not a verdict.
    let budget_spent = |f: &Value| {
        f["kind"] == "not-inspected"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("put off to a later batch"))
    };
    let loud: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["severity"] != "info"
                && f["kind"] != "maintenance-window"
                && f["kind"] != "events-lost"
                && !budget_spent(f)
        })
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    // The words agree with the severity: nothing softened says it counts.
    let untrue: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["severity"] == "info"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no re-compression, counted towards"))
        })
        .collect();
    assert!(untrue.is_empty(), "{untrue:#?}");
}

/// Whether the DICOM file at `path` is stored in a native (uncompressed) transfer syntax:
/// its File Meta Information's `(0002,0010)` names one.
fn stored_natively(path: &Path) -> bool {
    let bytes = fs::read(path).unwrap_or_default();
    let Some(at) = bytes
        .windows(6)
        .position(|w| w == [0x02, 0x00, 0x10, 0x00, b'U', b'I'])
    else {
        return false;
    };
    let Some(len) = bytes.get(at + 6..at + 8) else {
        return false;
    };
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let Some(value) = bytes.get(at + 8..at + 8 + len) else {
        return false;
    };
    let syntax = String::from_utf8_lossy(value);
    matches!(
        syntax.trim_end_matches(['\0', ' ']),
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    )
}

fn has_field(finding: &Value, field: &str) -> bool {
    finding["fields"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == field))
}

/// Review r24: ciphertext written between the valid markers of a compressed stream,
/// named a lossless syntax, the same instance: CT images re-compressed by GDCM (JPEG
/// 2000) and DCMTK (JPEG lossless), then their tile or scan data overwritten by a
/// keystream stuffed as a coder stuffs it (no `FF` followed by a marker), every marker
/// kept. Before, outside a window each was marked `re-compressed` on its stream's shape
/// and none counted: no `ransomware-suspected`; inside one (JPEG only: see below) each
/// was softened to `info`. Now the frames are decoded: their pixels are not the ones
/// stored (JPEG 2000), or the decoder refuses the scan data (JPEG); each is an alert
/// with `re-compression-unproven`, and they page. Review r26-watch: inside a window,
/// JPEG 2000 too (before, its four images were `info` there and did not count).
#[test]
fn ciphertext_between_valid_markers_outside_a_window_is_ransomware() {
    ciphertext_between_valid_markers(false, &[]);
}

#[test]
fn ciphertext_between_valid_markers_inside_a_window_is_ransomware() {
    ciphertext_between_valid_markers(true, &[]);
}

/// Review r27-watch: the same ciphertext inside a window, each gray image's header
/// then claiming color (`dcmodify`: "RGB"; "RGB" of three samples; "YBR_FULL" of three).
/// Before, the monochrome rule read the new header, the JPEG 2000 images decoded to
/// pixels neither stored nor random were taken for a color transform and softened to
/// `info` as a migration's. The form the profile stored is what is judged now, and a
/// changed form is itself no migration's.
#[test]
fn ciphertext_claimed_color_inside_a_window_is_ransomware() {
    ciphertext_between_valid_markers(
        true,
        &[
            &["(0028,0004)=RGB"],
            &["(0028,0004)=RGB", "(0028,0002)=3"],
            &["(0028,0004)=YBR_FULL", "(0028,0002)=3"],
        ],
    );
}

/// `claims[i % claims.len()]` are the `dcmodify` values written into the `i`th image's
/// header after its ciphertext (none when empty).
fn ciphertext_between_valid_markers(in_window: bool, claims: &[&[&str]]) {
    const FILES: usize = 8;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    if in_window {
        open_window(
            &env,
            &watcher,
            &env.path("archive"),
            "CHG-5128 re-compression",
        );
    }
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        // Review r26-watch: inside a window too. JPEG 2000 ciphertext so written decodes
        // (to pixels neither stored nor random) and was softened there as a migration's
        // would be; a lossless re-compression of a monochrome image keeps every pixel.
        let j2k = i % 2 == 0;
        let (tool, args, data_from, data_to): (&str, &[&str], [u8; 2], [u8; 2]) = if j2k {
            ("gdcmconv", &["--j2k"], [0xFF, 0x93], [0xFF, 0xD9]) // SOD .. EOC
        } else {
            ("dcmcjpeg", &["+e1"], [0xFF, 0xDA], [0xFF, 0xD9]) // SOS .. EOI
        };
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(path)
            .arg(&out)
            .status()
            .expect("dcmtk and gdcm run (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool} {}", path.display());
        let mut bytes = fs::read(&out).expect("test fixture");
        let mut from = bytes
            .windows(2)
            .position(|w| w == data_from)
            .expect("the data's opening marker")
            + 2;
        if data_from == [0xFF, 0xDA] {
            from += usize::from(u16::from_be_bytes([bytes[from], bytes[from + 1]]));
        }
        let to = bytes
            .windows(2)
            .rposition(|w| w == data_to)
            .expect("the closing marker");
        let key = keystream(to - from, 61 + i as u64);
        let mut after_ff = false;
        for (b, k) in bytes[from..to].iter_mut().zip(key) {
            // Stuffed as a coder stuffs: after FF, a byte below 80 (J2K) or none (JPEG).
            *b = match (after_ff, j2k) {
                (true, true) => k & 0x7F,
                (_, false) => k.min(0xFE),
                _ => k,
            };
            after_ff = *b == 0xFF;
        }
        fs::write(&out, &bytes).expect("test fixture");
        if let Some(claim) = claims.get(i % claims.len().max(1)) {
            let args: Vec<&str> = claim.iter().flat_map(|c| ["-m", *c]).collect();
            dcmodify(&args, std::slice::from_ref(&out));
        }
        fs::copy(&out, path).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1 && count(f, "pixel-data-changed") == FILES
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert!(
            findings.iter().any(|f| f["kind"] == "pixel-data-changed"
                && f["severity"] == "alert"
                && f["path"].as_str() == path.to_str()
                && has_field(f, "re-compression-unproven")),
            "{}: {findings:#?}",
            path.display()
        );
    }
}

/// Issue 11 (review of sessions 41 and 42): JPEG-LS had no decoder here, so an honest
/// JPEG-LS migration in place was `re-compression-unproven` on every image and, five
/// CT images re-compressed by `dcmcjpls` and `gdcmconv --jpegls` at `ransomware_files =
/// 4`, paged `ransomware-suspected` (the test asserted so before). Decoded now
/// (`codec/jls.rs`), each is proven to hold the stored pixels: `re-compressed`, an alert
/// outside a window that counts towards no ransomware signal, and `info` inside one.
/// (Pixels XORed, then `dcmcjpls`, still alert in a window:
/// `inside_a_window_uncompressed_pixels_rewritten_and_compressed_in_jpeg_ls_alert`.)
#[test]
fn a_jpeg_ls_re_compression_outside_a_window_is_no_ransomware() {
    jpeg_ls_re_compression(false);
}

#[test]
fn a_jpeg_ls_re_compression_inside_a_window_is_info() {
    jpeg_ls_re_compression(true);
}

fn jpeg_ls_re_compression(in_window: bool) {
    const FILES: usize = 5;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    if in_window {
        open_window(&env, &watcher, &env.path("archive"), "CHG-5129 JPEG-LS");
    }
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    for (i, path) in paths.iter().enumerate() {
        let out = staging.join(format!("{i}.dcm"));
        let (tool, args): (&str, &[&str]) = if i % 2 == 0 {
            ("dcmcjpls", &[])
        } else {
            ("gdcmconv", &["--jpegls"])
        };
        assert!(encode(tool, args, path, &out), "{tool} {}", path.display());
        fs::copy(&out, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "pixel-data-changed") == FILES
    });
    // A page, were one coming, follows the findings it counts within the batch.
    std::thread::sleep(Duration::from_secs(1));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    for path in &paths {
        assert_pixels_changed(&findings, path, if in_window { "info" } else { "alert" });
        assert!(
            findings.iter().any(|f| f["path"].as_str() == path.to_str()
                && has_field(f, "re-compressed")
                && !has_field(f, "re-compression-unproven")),
            "{}: {findings:#?}",
            path.display()
        );
    }
    assert_eq!(count(&findings, "ransomware-suspected"), 0, "{findings:#?}");
}

/// A large uncompressed multi-frame image of 32-bit samples, little endian, structured
/// (a gradient, no random block): `frames` frames of 1024 x 1024.
fn large_32_bit_image(uid: &str, frames: usize) -> Vec<u8> {
    const SIDE: u16 = 1024;
    let samples = usize::from(SIDE) * usize::from(SIDE) * frames;
    let mut pixels = Vec::with_capacity(samples * 4);
    for i in 0..samples {
        pixels.extend_from_slice(&((i % 65_521) as u32 * 3).to_le_bytes());
    }
    DicomBuilder::ct(uid)
        .element(0x0028, 0x0002, *b"US", &1u16.to_le_bytes())
        .element(0x0028, 0x0004, *b"CS", b"MONOCHROME2")
        .element(0x0028, 0x0008, *b"IS", frames.to_string().as_bytes())
        .element(0x0028, 0x0010, *b"US", &SIDE.to_le_bytes())
        .element(0x0028, 0x0011, *b"US", &SIDE.to_le_bytes())
        .element(0x0028, 0x0100, *b"US", &32u16.to_le_bytes())
        .element(0x0028, 0x0101, *b"US", &32u16.to_le_bytes())
        .element(0x0028, 0x0102, *b"US", &31u16.to_le_bytes())
        .element(0x0028, 0x0103, *b"US", &0u16.to_le_bytes())
        .pixels(pacsguard_testkit::Pixels::Native(pixels))
        .build()
}

/// Issue 11: inside a maintenance window, each image re-saved in the other byte order
/// was proven by reading it whole (up to 64 MiB) and hashing its pixels once per width
/// tried, 64 files a batch, with no time budget, on the event loop: large 32-bit
/// multi-frame images re-saved by dcmtk (`dcmconv +tb`), the worst case, held the loop
/// while other images were encrypted. Now the byte-order proofs share the batch's
/// proving budget (time and bytes): the encryption that follows is ransomware as soon as
/// it is verified, and the re-saves the budget left unproven stay the window's (no alert),
/// said in their detail and by a `not-inspected` warning. Session 38: it failed under
/// load (6-9 on two cores), victims 5-7 waiting in the batch of three re-saves put off
/// for the re-saves' hashing and proofs; now a batch's findings no proof can change are
/// raised before its proofs, and the re-saves put off come back after a turn's new
/// changes, so the 30 s below wait for no proof of a re-save but one begun before the
/// victims' events came (see `encryption_in_the_batch_of_re_saves_is_raised_before_their_proofs`).
#[test]
fn large_byte_order_re_saves_in_a_window_do_not_hold_back_the_encryption_that_follows() {
    // 60 MiB each (15 frames of 1024 x 1024 x 32 bits): hashed on the loop
    // (BIG_FILE_BYTES, 64 MiB), each within MAX_DECODED_BYTES (read whole before), and
    // together past the batch's bytes (MAX_PROOF_BYTES_PER_BATCH, 256 MiB). Few of
    // them: their hashing is the loop's own work, before this change and after.
    const LARGE: usize = 5;
    const ENCRYPTED: usize = 8;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let native = env.dir.path().join("native.dcm");
    fs::write(
        &native,
        large_32_bit_image("1.2.826.0.1.3680043.10.1137.11.1", 15),
    )
    .expect("test fixture");
    let converted = env.dir.path().join("big-endian.dcm");
    let status = std::process::Command::new("dcmconv")
        .arg("+tb")
        .arg(&native)
        .arg(&converted)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmconv +tb");
    let large: Vec<PathBuf> = (0..LARGE)
        .map(|i| {
            let path = archive.join(format!("multiframe-{i}.dcm"));
            fs::copy(&native, &path).expect("test fixture");
            path
        })
        .collect();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let victims: Vec<PathBuf> = (0..ENCRYPTED)
        .map(|i| {
            let path = archive.join(format!("victim-{i}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-1111 big-endian migration");
    for path in &large {
        fs::copy(&converted, path).expect("test fixture");
    }
    for (i, path) in victims.iter().enumerate() {
        encrypt(path, 1100 + i as u64);
    }
    let victim_alerted = |f: &[Value], path: &Path| {
        f.iter().any(|x| {
            x["kind"] == "no-longer-dicom"
                && x["severity"] == "alert"
                && x["path"].as_str() == path.to_str()
        })
    };
    let raised = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1 && victims.iter().all(|p| victim_alerted(f, p))
    });
    assert!(raised, "{:#?}", watcher.findings());
    // Each large re-save put off is hashed again when it comes back (a debug build on a
    // loaded box: tens of seconds a round): waited for, not timed.
    let all_seen = watcher.wait(Duration::from_secs(400), |f, _| {
        large.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}\n{stderr}");
    // No re-save is an alert: each is proven (the same pixels), by a later batch if its
    // own budget was spent. Copied one by one, they may come in batches that never reach
    // the budget, so the warning is not looked for here (a check under `if` checked
    // nothing, review rv34-watch): the test after this one lands them in one batch and
    // requires it.
    for path in &large {
        assert_pixels_changed(&findings, path, "info");
    }
}

/// Inside a maintenance window, honest byte-order re-saves large enough to spend the
/// batch's proving budget (5 x 60 MiB, past MAX_PROOF_BYTES_PER_BATCH, lowered below),
/// then 12 copies of CT_small.dcm with their pixels XORed and written in explicit VR big
/// endian by dcmtk, landing together: a proof the budget left undone is put off to a later batch, never
/// softened unproven, so every encrypted image is an alert and the burst is ransomware
/// (review rv34-watch: the first five came out `info`, "decoding time ... was spent";
/// one budget-spending file softened up to 63 encrypted ones a batch). The honest
/// re-saves are still `info`, and the budget reached is said.
///
/// Session 44 (it failed once under load): all five large files had to be verified in one
/// batch to pass the 256 MiB, but a path renamed in is due at once, and the loop may take
/// the first ones before the reader has read the rest (seen failing so, the landing
/// split after the third). The batch's bytes are lowered
/// (`PACSGUARD_TEST_MAX_PROOF_BYTES_PER_BATCH`) to one large image's pixels: every large
/// image can still be proven, alone in a batch (the images put off most come first), and
/// any batch holding one with any other image to prove spends the budget: the
/// seventeen may be split anyhow but into five batches of one large image and nothing
/// else. Whatever the split, each image must be judged: proven (`info`) or an alert.
#[test]
fn byte_order_encryption_behind_re_saves_that_spend_the_budget_alerts() {
    const LARGE: usize = 5;
    const ENCRYPTED: usize = 12;
    const FRAMES: usize = 15;
    // `large_32_bit_image`'s Pixel Data: 1024 x 1024 samples of 4 bytes a frame.
    const LARGE_PIXEL_BYTES: usize = 1024 * 1024 * 4 * FRAMES;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let staged = env.dir.path().join("staged");
    fs::create_dir_all(&staged).expect("test fixture");
    let dcmconv = |from: &Path, to: &Path| {
        let status = std::process::Command::new("dcmconv")
            .arg("+tb")
            .arg(from)
            .arg(to)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "dcmconv +tb");
    };
    let native = env.dir.path().join("native.dcm");
    fs::write(
        &native,
        large_32_bit_image("1.2.826.0.1.3680043.10.1137.11.2", FRAMES),
    )
    .expect("test fixture");
    let converted = env.dir.path().join("big-endian.dcm");
    dcmconv(&native, &converted);
    let mut landing: Vec<(PathBuf, PathBuf)> = Vec::new();
    let large: Vec<PathBuf> = (0..LARGE)
        .map(|i| {
            let path = archive.join(format!("a-multiframe-{i}.dcm"));
            fs::copy(&native, &path).expect("test fixture");
            let next = staged.join(format!("a-multiframe-{i}.dcm"));
            fs::copy(&converted, &next).expect("test fixture");
            landing.push((next, path.clone()));
            path
        })
        .collect();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let victims: Vec<PathBuf> = (0..ENCRYPTED)
        .map(|i| {
            let path = archive.join(format!("b-victim-{i:02}.dcm"));
            fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
            // CT_small's Pixel Data: 32,768 bytes of OW, XORed with a short key so that
            // no block reads as random, then written big endian as a migration would.
            let mut bytes = fs::read(&sample).expect("test fixture");
            let at = bytes
                .windows(6)
                .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
                .expect("CT_small's Pixel Data")
                + 12;
            let key = keystream(16, 3400 + i as u64);
            for (k, byte) in bytes[at..at + 32_768].iter_mut().enumerate() {
                *byte ^= key[k % 16];
            }
            let xored = env.dir.path().join(format!("xored-{i}.dcm"));
            fs::write(&xored, &bytes).expect("test fixture");
            let next = staged.join(format!("b-victim-{i:02}.dcm"));
            dcmconv(&xored, &next);
            landing.push((next, path.clone()));
            path
        })
        .collect();
    env.profile(&["--policy", "append-only"]);
    let mut command = common::pacsguard();
    command.env(
        "PACSGUARD_TEST_MAX_PROOF_BYTES_PER_BATCH",
        LARGE_PIXEL_BYTES.to_string(),
    );
    let watcher = Watcher::start_with(&env, &[], command);
    open_window(&env, &watcher, &archive, "CHG-3400 big-endian migration");
    // Renamed into place one after the other while the watcher is stopped, so that its
    // events are read together, the large ones first (session 38: renamed while it ran,
    // the first re-save was once judged alone, the rest then within the budget, and the
    // budget reached was never said).
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for (next, path) in &landing {
        fs::rename(next, path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let judged = |f: &[Value], path: &Path| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
    };
    let all_seen = watcher.wait(Duration::from_secs(400), |f, _| {
        count(f, "ransomware-suspected") >= 1 && large.iter().chain(&victims).all(|p| judged(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}\n{stderr}");
    for path in &victims {
        assert!(
            !findings.iter().any(|f| f["kind"] == "pixel-data-changed"
                && f["severity"] == "info"
                && f["path"].as_str() == path.to_str()),
            "{} softened: {findings:#?}",
            path.display()
        );
        assert_pixels_changed(&findings, path, "alert");
    }
    for path in &large {
        assert_pixels_changed(&findings, path, "info");
    }
    assert!(
        findings.iter().any(|f| f["kind"] == "not-inspected"
            && f["severity"] == "warning"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("MAX_PROOF_BYTES_PER_BATCH"))),
        "the budget reached is said: {findings:#?}"
    );
}

/// CT_small.dcm's copies `a-re-saved-N.dcm` (to be re-saved honestly in the other byte
/// order) and `b-victim-N.dcm` (to be encrypted) in `archive`, with what each becomes
/// staged beside the tree: (staged, path) pairs, the victims first.
fn re_saves_and_victims(env: &Env, resaved: usize, victims: usize) -> Vec<(PathBuf, PathBuf)> {
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let staged = env.dir.path().join("staged");
    fs::create_dir_all(&staged).expect("test fixture");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let converted = env.dir.path().join("big-endian.dcm");
    let status = std::process::Command::new("dcmconv")
        .arg("+tb")
        .arg(&sample)
        .arg(&converted)
        .status()
        .expect("dcmtk runs (scripts/setup-test-deps.sh)");
    assert!(status.success(), "dcmconv +tb");
    let mut landing = Vec::new();
    for i in 0..victims {
        let path = archive.join(format!("b-victim-{i}.dcm"));
        fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
        let next = staged.join(format!("b-victim-{i}.dcm"));
        fs::copy(&sample, &next).expect("test fixture");
        encrypt(&next, 3800 + i as u64);
        landing.push((next, path));
    }
    for i in 0..resaved {
        let path = archive.join(format!("a-re-saved-{i}.dcm"));
        fs::copy(&sample, &path).expect("pydicom's CT_small.dcm");
        let next = staged.join(format!("a-re-saved-{i}.dcm"));
        fs::copy(&converted, &next).expect("test fixture");
        landing.push((next, path));
    }
    landing
}

/// Issue 11 (session 38): inside a maintenance window, the images encrypted in one batch
/// with honest byte-order re-saves are raised before any re-save is proven: the proofs
/// (and the sampling of arrivals) are the batch's costly part, on the watcher's loop,
/// and only `pixel-data-changed` findings and a window's new files wait for them. Before,
/// a batch's findings were raised together after its proofs: three 60 MiB re-saves held
/// back the alert on the encryption beside them past 30 s under load. Shown by order,
/// not by time: all land in one batch (renamed into place while the watcher is
/// stopped), the victims first, and the re-saves' names sort first: they were raised
/// first. Ignored: the watcher may still take the files in more than one turn (a path
/// handed back to wait for the next pass over `/proc`), and a victim judged in a later
/// turn than a re-save is rightly raised after it; seen so once in two runs of the whole
/// suite at load 18 (b-victim-0 in the turn after a-re-saved-1). Run it alone
/// (`--ignored`): it failed on main's engine 2 of 2, passes with the change 3 of 3.
#[test]
#[ignore = "timing: the files may be judged in more than one turn under heavy load"]
fn encryption_in_the_batch_of_re_saves_is_raised_before_their_proofs() {
    const RESAVED: usize = 6;
    const ENCRYPTED: usize = 4;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let landing = re_saves_and_victims(&env, RESAVED, ENCRYPTED);
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-3800 big-endian migration");
    // Renamed into place while the watcher is stopped, so that its events are read
    // together: one batch.
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for (next, path) in &landing {
        fs::rename(next, path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let (victims, resaved): (Vec<&PathBuf>, Vec<&PathBuf>) = landing
        .iter()
        .map(|(_, path)| path)
        .partition(|p| p.to_string_lossy().contains("b-victim-"));
    let at = |f: &[Value], kind: &str, path: &Path| {
        f.iter()
            .position(|x| x["kind"] == kind && x["path"].as_str() == path.to_str())
    };
    let all_seen = watcher.wait(Duration::from_secs(120), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && victims
                .iter()
                .all(|p| at(f, "no-longer-dicom", p).is_some())
            && resaved
                .iter()
                .all(|p| at(f, "pixel-data-changed", p).is_some())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}\n{stderr}");
    let first_re_save = resaved
        .iter()
        .filter_map(|p| at(&findings, "pixel-data-changed", p))
        .min()
        .expect("waited for");
    for path in &victims {
        let victim = at(&findings, "no-longer-dicom", path).expect("waited for");
        assert_eq!(findings[victim]["severity"], "alert", "{findings:#?}");
        assert!(
            victim < first_re_save,
            "{} raised after a re-save's proof: {findings:#?}",
            path.display()
        );
    }
    let suspected = findings
        .iter()
        .position(|f| f["kind"] == "ransomware-suspected")
        .expect("waited for");
    assert!(suspected < first_re_save, "{findings:#?}");
    for path in &resaved {
        assert_pixels_changed(&findings, path, "info");
    }
}

/// Issue 11 (session 38): the images put off for their proof come back in a share of
/// each turn (MAX_PUT_OFF_BYTES_PER_TURN, lowered here to one image a turn), after the
/// turn's new changes; those past it wait for the next turn, and the share reached is
/// said. Every proof is past a batch's bytes here (the hook), so each image is put off
/// MAX_PROOF_PUT_OFFS times and then judged unproven: still judged, none lost.
#[test]
fn put_off_proofs_past_a_turns_share_wait_for_the_next_and_it_is_said() {
    const RESAVED: usize = 4;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let landing = re_saves_and_victims(&env, RESAVED, 0);
    env.profile(&["--policy", "append-only"]);
    let mut command = common::pacsguard();
    command.env("PACSGUARD_TEST_MAX_PROOF_BYTES_PER_BATCH", "1");
    command.env("PACSGUARD_TEST_MAX_PUT_OFF_BYTES_PER_TURN", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-3801 big-endian migration");
    // Renamed into place while the watcher is stopped, so that its events are read
    // together: one batch, put off together, due again in one turn (in separate turns
    // each came back alone, within the share: the full suite under load).
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for (next, path) in &landing {
        fs::rename(next, path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let share_said = |f: &[Value]| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("(MAX_PUT_OFF_BYTES_PER_TURN) was spent"))
        })
    };
    let judged = |f: &[Value], path: &Path| {
        f.iter().any(|x| {
            x["kind"] == "pixel-data-changed"
                && x["path"].as_str() == path.to_str()
                && x["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("MAX_PROOF_PUT_OFFS"))
        })
    };
    let all_seen = watcher.wait(Duration::from_secs(120), |f, _| {
        share_said(f) && landing.iter().all(|(_, p)| judged(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}\n{stderr}");
    for (_, path) in &landing {
        // Unproven after its put-offs: not softened by the window.
        assert_pixels_changed(&findings, path, "alert");
    }
}

/// Inside a window, `decoys` small new files and four images encrypted to new names (the
/// originals removed) land in one batch while the watcher runs with `hook` (a debug
/// build's limit of the sampling of arrivals, set so that one file a batch is sampled):
/// every encrypted arrival must still be sampled and alert, the ones past a batch's
/// limit put off to a later batch, and the limit named `limit` said.
fn arrivals_past_a_batchs_sample_are_sampled_later(hook: (&str, &str), limit: &str, decoys: usize) {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = image_store(&env, 4);
    let mut command = common::pacsguard();
    command.env(hook.0, hook.1);
    let watcher = Watcher::start_with(&env, &[], command);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-7009 migration");
    let staged = env.dir.path().join("drop");
    fs::create_dir_all(&staged).expect("test fixture");
    for i in 0..decoys {
        fs::write(staged.join(format!("note-{i}.txt")), format!("decoy {i}\n"))
            .expect("test fixture");
    }
    let drop = archive.join("drop");
    let mut locked = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let len = fs::metadata(path).expect("test fixture").len() as usize;
        let name = format!("image-{i}.dcm.enc");
        fs::write(staged.join(&name), keystream(len, 7200 + i as u64)).expect("test fixture");
        locked.push(drop.join(name));
    }
    fs::rename(&staged, &drop).expect("test fixture");
    for path in &paths {
        fs::remove_file(path).expect("test fixture");
    }
    let alerted = |f: &[Value], p: &Path| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["severity"] == "alert"
                && x["path"].as_str() == p.to_str()
                && x["fields"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "encrypted-arrival"))
        })
    };
    let said = |f: &[Value]| {
        f.iter().any(|x| {
            x["kind"] == "not-inspected"
                && x["severity"] == "warning"
                && x["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("put off to a later batch") && d.contains(limit))
        })
    };
    let raised = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "ransomware-suspected") >= 1 && locked.iter().all(|p| alerted(f, p)) && said(f)
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
    // Each new file is judged once, sampled in the end: none is left as not sampled.
    for i in 0..decoys {
        let decoy = drop.join(format!("note-{i}.txt"));
        assert!(
            findings.iter().any(|f| f["kind"] == "added"
                && f["severity"] == "info"
                && f["path"].as_str() == decoy.to_str()),
            "{findings:#?}"
        );
    }
}

/// Session 37 left open: new files inside a window past a batch's sampling bytes
/// (MAX_WINDOW_ARRIVAL_SAMPLE_BYTES_PER_BATCH: 128 MiB of decoys, or 32,768 tiny ones)
/// were only counted in a warning, never sampled: the encrypted images behind the decoys
/// stayed `info`. They are put off to a later batch, sampled first there.
#[test]
fn new_files_past_a_batchs_sample_bytes_are_sampled_in_a_later_batch() {
    arrivals_past_a_batchs_sample_are_sampled_later(
        ("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_BYTES", "1"),
        "MAX_WINDOW_ARRIVAL_SAMPLE_BYTES_PER_BATCH",
        2,
    );
}

/// The opens and reads of a batch's sampling of new files were not bounded in time on
/// the watcher's loop (up to 32,768 opens within the bytes): they are
/// (MAX_WINDOW_ARRIVAL_SAMPLE_TIME_PER_BATCH, lowered here to none: the floor of
/// MIN_WINDOW_ARRIVAL_SAMPLES_PER_BATCH, 16 samples a batch, session 46), and the files
/// left are put off to a later batch, not left unsampled: 22 new files, 6 past the floor.
#[test]
fn new_files_past_a_batchs_sample_time_are_sampled_in_a_later_batch() {
    arrivals_past_a_batchs_sample_are_sampled_later(
        ("PACSGUARD_TEST_MAX_WINDOW_ARRIVAL_SAMPLE_MS", "0"),
        "MAX_WINDOW_ARRIVAL_SAMPLE_TIME_PER_BATCH",
        16 + 2,
    );
}

/// Session 37 left open: inside a window, rewritten images were sampled 64 a batch
/// (MAX_WINDOW_SAMPLES_PER_BATCH), the smallest first, and past them every change but a
/// byte order's was softened unread: 64 images honestly decompressed (RLE to native,
/// dcmdrle) sorting first hid four RLE images rewritten native with random pixels in the
/// same batch (`info`, no alert). Past the samples an image is now put off to a later
/// batch, sampled first there: each encrypted one alerts, and the honest
/// decompressions stay `info`.
#[test]
fn rewritten_images_past_a_batchs_samples_are_sampled_in_a_later_batch() {
    const DECOYS: usize = 64;
    const ENCRYPTED: usize = 4;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
    let dcmtk = |tool: &str, from: &Path, to: &Path| {
        let status = std::process::Command::new(tool)
            .arg(from)
            .arg(to)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)");
        assert!(status.success(), "{tool}");
    };
    let rle = env.dir.path().join("rle.dcm");
    dcmtk("dcmcrle", &sample, &rle);
    let native = env.dir.path().join("native.dcm");
    dcmtk("dcmdrle", &rle, &native);
    // The victims: native as the honest ones, their Pixel Data random.
    let mut random = fs::read(&native).expect("test fixture");
    let at = random
        .windows(4)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
        .expect("Pixel Data")
        + 12;
    let staged = env.dir.path().join("staged");
    fs::create_dir_all(&staged).expect("test fixture");
    let mut landing = Vec::new();
    let mut decoys = Vec::new();
    for i in 0..DECOYS {
        let path = archive.join(format!("a-decompressed-{i:02}.dcm"));
        fs::copy(&rle, &path).expect("test fixture");
        let next = staged.join(format!("a-{i:02}.dcm"));
        fs::copy(&native, &next).expect("test fixture");
        landing.push((next, path.clone()));
        decoys.push(path);
    }
    let mut victims = Vec::new();
    for i in 0..ENCRYPTED {
        let path = archive.join(format!("b-victim-{i}.dcm"));
        fs::copy(&rle, &path).expect("test fixture");
        let len = random.len() - at;
        random[at..].copy_from_slice(&keystream(len, 3900 + i as u64));
        let next = staged.join(format!("b-{i}.dcm"));
        fs::write(&next, &random).expect("test fixture");
        landing.push((next, path.clone()));
        victims.push(path);
    }
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-3900 decompression");
    // Renamed into place while the watcher is stopped, so that its events are read
    // together: one batch, the honest ones first.
    watcher.signal(nix::sys::signal::Signal::SIGSTOP);
    for (next, path) in &landing {
        fs::rename(next, path).expect("test fixture");
    }
    watcher.signal(nix::sys::signal::Signal::SIGCONT);
    let judged = |f: &[Value], path: &Path| {
        f.iter()
            .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == path.to_str())
    };
    // (Copies of one instance: an edit under one UID, so no `ransomware-suspected` is
    // looked for; each image's own finding is.)
    let all_seen = watcher.wait(Duration::from_secs(120), |f, _| {
        decoys.iter().chain(&victims).all(|p| judged(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(all_seen, "{findings:#?}\n{stderr}");
    for path in &victims {
        assert_pixels_changed(&findings, path, "alert");
    }
    for path in &decoys {
        assert_pixels_changed(&findings, path, "info");
    }
}

/// Session 37's open point, decided (README): a gzip archive of real images brought into
/// an image store inside a window reads as random bytes and is an `encrypted-arrival`
/// alert; a password-protected archive of the store (Qlocker's 7-Zip) cannot be told
/// from it without reading every entry.
#[test]
fn an_archive_brought_into_an_image_store_inside_a_window_is_an_encrypted_arrival() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    image_store(&env, 4);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-3950 export");
    // Real images (pydicom's CT and MR): compressed, they read as random bytes. The
    // synthetic gradients of `image_store` compress to runs that do not (a 32 KB gzip
    // of 40 of them is an `info` arrival).
    let files = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let mut tar = Vec::new();
    for _ in 0..3 {
        for name in ["CT_small.dcm", "MR_small.dcm"] {
            tar.extend(fs::read(files.join(name)).expect("pydicom's test files"));
        }
    }
    let staged = env.dir.path().join("export.tar");
    fs::write(&staged, &tar).expect("test fixture");
    let status = std::process::Command::new("gzip")
        .arg("-9")
        .arg(&staged)
        .status()
        .expect("gzip runs");
    assert!(status.success(), "gzip");
    let landed = archive.join("export.tar.gz");
    fs::rename(env.dir.path().join("export.tar.gz"), &landed).expect("test fixture");
    let judged = watcher.wait(Duration::from_secs(30), |f, _| {
        f.iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == landed.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(judged, "{findings:#?}\n{stderr}");
    assert!(
        findings.iter().any(|f| f["kind"] == "added"
            && f["severity"] == "alert"
            && f["path"].as_str() == landed.to_str()
            && f["fields"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "encrypted-arrival"))),
        "{findings:#?}"
    );
}

/// Wraps the ciphertext in `ct` of the image `src` as review rv39 (B3) did, with pydicom:
/// `priv`, the image's header under a new SOP Instance UID, a real 8 x 8 Pixel Data and
/// the ciphertext in a private OB element; `nopix`, the same without Pixel Data;
/// `thumb`, the image's own pixels kept and the ciphertext, smaller than them, in a
/// private OB (what a vendor's compressed thumbnail looks like: an honest file).
const WRAP_SCRIPT: &str = r#"
import sys
import pydicom
from pydicom.uid import generate_uid
src, ct, out, mode = sys.argv[1:5]
ct = open(ct, 'rb').read()
ds = pydicom.dcmread(src)
u = generate_uid(); ds.SOPInstanceUID = u; ds.file_meta.MediaStorageSOPInstanceUID = u
if mode != 'thumb' and 'PixelData' in ds:
    del ds.PixelData
if mode == 'priv':
    ds.Rows = 8; ds.Columns = 8; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = 8; ds.BitsStored = 8; ds.HighBit = 7; ds.PixelRepresentation = 0
    ds.add_new(0x7FE00010, 'OB', bytes(range(64)))
ds.add_new(0x00990010, 'LO', 'ACME BACKUP')
ds.add_new(0x00991000, 'OB', ct)
ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1'
ds.save_as(out, enforce_file_format=True)
"#;

/// The ciphertext of `path` by `openssl enc` (AES-256-CTR), as the review's probe made it.
fn openssl_ciphertext(path: &Path) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["enc", "-aes-256-ctr", "-pbkdf2", "-pass", "pass:x", "-in"])
        .arg(path)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl enc");
    out.stdout
}

/// Runs [`WRAP_SCRIPT`] with pydicom from `.testdata`.
fn wrap_with_pydicom(src: &Path, ct: &[u8], out: &Path, mode: &str) {
    let ct_file = out.with_extension("ct");
    fs::write(&ct_file, ct).expect("test fixture");
    let pydicom = pacsguard_testkit::testdata().join("wheels/pydicom");
    let status = std::process::Command::new("python3")
        .env("PYTHONPATH", &pydicom)
        .arg("-c")
        .arg(WRAP_SCRIPT)
        .arg(src)
        .arg(&ct_file)
        .arg(out)
        .arg(mode)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "pydicom wraps {mode}");
    fs::remove_file(&ct_file).expect("test fixture");
}

/// Review rv39 (B3), open since session 39: inside a maintenance window, images
/// encrypted (real `openssl enc`) and written under new names and new SOP Instance UIDs,
/// the originals removed: the ciphertext wrapped in a valid DICOM (in a private OB
/// element, beside a real 8 x 8 Pixel Data or none), or each of its bytes followed by a
/// zero byte (not DICOM, or as the 16-bit Pixel Data of a new image). All were `info
/// added`, no alert: the Pixel Data alone was
/// sampled, and a block of bytes half zeros never read as random. Each now alerts as an
/// `encrypted-arrival` saying what was seen, and counts towards `ransomware-suspected`;
/// an honest arrival carrying high-entropy bytes in a private OB smaller than its own
/// pixels (a vendor's compressed thumbnail) stays `info`.
#[test]
fn inside_a_window_ciphertext_wrapped_in_a_valid_dicom_or_interleaved_with_zeros_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = image_store(&env, 8);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4040 migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut locked = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let ct = openssl_ciphertext(path);
        let mode = ["priv", "nopix", "zero", "lanes"][i % 4];
        let name = format!("{i}.{mode}.dcm");
        let temp = staging.join(&name);
        let interleaved: Vec<u8> = ct.iter().flat_map(|&b| [b, 0]).collect();
        if mode == "zero" {
            fs::write(&temp, interleaved).expect("test fixture");
        } else if mode == "lanes" {
            // A new image whose 16-bit Pixel Data is the ciphertext, a byte a value.
            let bytes = DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.404.{i}"))
                .pixels(pacsguard_testkit::Pixels::Native(interleaved))
                .build();
            fs::write(&temp, bytes).expect("test fixture");
        } else {
            wrap_with_pydicom(path, &ct, &temp, mode);
        }
        let to = path.with_file_name(name);
        fs::rename(&temp, &to).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
        locked.push((to, mode));
    }
    // The honest one: a new image keeping its pixels, with a compressed "thumbnail"
    // (high-entropy bytes, a quarter of its pixels) in a private OB.
    let source = env.dir.path().join("source.dcm");
    fs::write(&source, instance(4040)).expect("test fixture");
    let honest = archive.join("study0/thumbnailed.dcm");
    let thumb = staging.join("thumbnailed.dcm");
    wrap_with_pydicom(&source, &keystream(16_384, 4040), &thumb, "thumb");
    fs::rename(&thumb, &honest).expect("test fixture");
    let alerted = |f: &[Value], p: &Path, words: &str| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["severity"] == "alert"
                && x["path"].as_str() == p.to_str()
                && has_field(x, "encrypted-arrival")
                && x["detail"].as_str().is_some_and(|d| d.contains(words))
        })
    };
    let words = |mode: &str| match mode {
        "zero" | "lanes" => "every other byte",
        _ => "private",
    };
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && locked.iter().all(|(p, mode)| alerted(f, p, words(mode)))
            && f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == honest.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    let missed: Vec<&(PathBuf, &str)> = locked
        .iter()
        .filter(|(p, mode)| !alerted(&findings, p, words(mode)))
        .collect();
    assert!(seen, "missed: {missed:#?}\n{findings:#?}\n{stderr}");
    let arrival = findings
        .iter()
        .find(|f| f["kind"] == "added" && f["path"].as_str() == honest.to_str())
        .expect("waited for above");
    assert_eq!(arrival["severity"], "info", "{arrival:#}");
}

/// Review rv40b: inside a maintenance window, native images past the first MiB whose
/// Pixel Data was encrypted, written under new names and UIDs, the originals removed,
/// were `info added`: the data set's reading refused a head ending inside the Pixel
/// Data, so no pixel of theirs was sampled (images of a MiB or less alerted). Each is
/// now an `encrypted-arrival`; an honest large arrival stays `info`.
#[test]
fn inside_a_window_encrypted_images_past_the_first_mib_arriving_alert() {
    const PIXELS: usize = 3 << 20;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = image_store(&env, 3);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4042 migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let build = |uid: String, pixels: Vec<u8>| {
        DicomBuilder::ct(&uid)
            .pixels(pacsguard_testkit::Pixels::Native(pixels))
            .build()
    };
    let mut locked = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let bytes = build(
            format!("1.2.826.0.1.3680043.10.1137.4042.{i}"),
            keystream(PIXELS, 4042 + i as u64),
        );
        let to = path.with_file_name(format!("{i}.big.dcm"));
        let temp = staging.join(format!("{i}.big.dcm"));
        fs::write(&temp, bytes).expect("test fixture");
        fs::rename(&temp, &to).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
        locked.push(to);
    }
    // The honest one: a large image of smooth 16-bit values.
    let ramp: Vec<u8> = (0..PIXELS / 2)
        .flat_map(|i| (((i / 512) % 4096) as u16).to_le_bytes())
        .collect();
    let honest = archive.join("study0/large.dcm");
    let temp = staging.join("large.dcm");
    fs::write(
        &temp,
        build("1.2.826.0.1.3680043.10.1137.4042.9".into(), ramp),
    )
    .expect("test fixture");
    fs::rename(&temp, &honest).expect("test fixture");
    let alerted = |f: &[Value], p: &Path| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["severity"] == "alert"
                && x["path"].as_str() == p.to_str()
                && has_field(x, "encrypted-arrival")
        })
    };
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        locked.iter().all(|p| alerted(f, p))
            && f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == honest.to_str())
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let arrival = findings
        .iter()
        .find(|f| f["kind"] == "added" && f["path"].as_str() == honest.to_str())
        .expect("waited for above");
    assert_eq!(arrival["severity"], "info", "{arrival:#}");
}

/// Review rv40b's wrapped and interleaved variants (its `wrap2.py`): the ciphertext of a
/// stored image (real `openssl enc`) written back as a valid DICOM under a new SOP
/// Instance UID, `split3` over three private OB elements each a third of the file,
/// `seq` in a private OB inside an item of a private sequence, or as a new image's
/// Pixel Data: `pnc` a byte a 16-bit value beside a zero filler that is 0x01 every
/// 256th value, `pw4` two bytes a 32-bit value, `p12` 12 bits a value.
const WRAP_VARIANTS_SCRIPT: &str = r#"
import sys
import pydicom
from pydicom.uid import generate_uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
src, ct, out, mode = sys.argv[1:5]
ct = open(ct, 'rb').read()
ds = pydicom.dcmread(src)
u = generate_uid(); ds.SOPInstanceUID = u; ds.file_meta.MediaStorageSOPInstanceUID = u
if 'PixelData' in ds:
    del ds.PixelData
ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = 'MONOCHROME2'; ds.PixelRepresentation = 0
def tiny():
    ds.Rows = 8; ds.Columns = 8; ds.BitsAllocated = 8; ds.BitsStored = 8; ds.HighBit = 7
    ds.add_new(0x7FE00010, 'OB', bytes(range(64)))
def pixels(data, bits_alloc, bits_stored):
    per = bits_alloc // 8
    cols = 512; rows = len(data) // (per * cols)
    data = data[:rows * cols * per]
    ds.Rows = rows; ds.Columns = cols; ds.BitsAllocated = bits_alloc; ds.BitsStored = bits_stored; ds.HighBit = bits_stored - 1
    ds.add_new(0x7FE00010, 'OW', data)
if mode == 'split3':
    tiny(); ds.add_new(0x00990010, 'LO', 'ACME BACKUP')
    n = (len(ct) + 2) // 3
    for i in range(3):
        ds.add_new(0x00991000 + i, 'OB', ct[i*n:(i+1)*n])
elif mode == 'seq':
    tiny(); ds.add_new(0x00990010, 'LO', 'ACME BACKUP')
    item = Dataset(); item.add_new(0x00990010, 'LO', 'ACME BACKUP'); item.add_new(0x00991001, 'OB', ct)
    ds.add_new(0x00991000, 'SQ', Sequence([item]))
elif mode == 'pnc':
    pixels(bytes(b for i, c in enumerate(ct) for b in (c, 1 if i % 256 == 255 else 0)), 16, 16)
elif mode == 'pw4':
    pixels(b''.join(ct[i:i+2] + b'\0\0' for i in range(0, len(ct) - 1, 2)), 32, 32)
elif mode == 'p12':
    pixels(b''.join(bytes((ct[i], ct[i+1] & 15, ct[i+2], ct[i+1] >> 4)) for i in range(0, len(ct) - 2, 3)), 16, 12)
ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1'
ds.save_as(out, enforce_file_format=True)
"#;

/// Runs `script` with pydicom from `.testdata` on `src`, the ciphertext `ct`, `out`, `mode`.
fn pydicom_wraps(script: &str, src: &Path, ct: &[u8], out: &Path, mode: &str) {
    let ct_file = out.with_extension("ct");
    fs::write(&ct_file, ct).expect("test fixture");
    let pydicom = pacsguard_testkit::testdata().join("wheels/pydicom");
    let status = std::process::Command::new("python3")
        .env("PYTHONPATH", &pydicom)
        .arg("-c")
        .arg(script)
        .arg(src)
        .arg(&ct_file)
        .arg(out)
        .arg(mode)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "pydicom wraps {mode}");
    fs::remove_file(&ct_file).expect("test fixture");
}

/// Base64 (RFC 4648) of `bytes`, lines of 76 characters ended by CRLF, by `openssl
/// base64` (which ends lines with LF) with CRLF put in, as PowerShell writes them.
fn base64_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("openssl")
        .arg("base64")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let mut stdin = child.stdin.take().expect("piped");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().expect("openssl base64");
    writer.join().expect("writer").expect("written");
    assert!(out.status.success(), "openssl base64");
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .flat_map(|l| [l, &b"\r\n"[..]].concat())
        .collect()
}

/// Review rv40b, inside a maintenance window: (1) images encrypted (real `openssl enc`)
/// and written under new names and UIDs in the forms of [`WRAP_VARIANTS_SCRIPT`] (split
/// over three private values each under half of the file, the second and third past its
/// first MiB; inside a private sequence; in the lanes of 16- or 32-bit values beside a
/// filler not quite constant, or packed 12 bits a value), the originals removed: each
/// was `info added`, no alert. Each is now an `encrypted-arrival` and they raise
/// `ransomware-suspected`. (2) Base64 text of real files (a gzip of real images, a real
/// image, a key of random bytes), in ASCII and in UTF-16LE with a BOM as PowerShell 5's
/// `Out-File` writes it: each alerted as ciphertext (6 bits/byte over 64 values, or in
/// 16-bit lanes); each is now `info`.
#[test]
fn inside_a_window_wrapped_split_nested_or_laned_ciphertext_alerts_and_base64_text_does_not() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    // 1.5 MiB of pixels: split in three, the ciphertext's second and third parts lie
    // past the first MiB.
    let paths = watcher::image_store_sized(&env, 5, 3 << 19);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4140 migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    // All written in staging first, then renamed into place together: python3 takes
    // seconds a file on a loaded machine, and the five must land within
    // `ransomware_window_seconds` to raise the signal.
    let mut staged = Vec::new();
    for (path, mode) in paths.iter().zip(["split3", "seq", "pnc", "pw4", "p12"]) {
        let ct = openssl_ciphertext(path);
        let temp = staging.join(format!("{mode}.dcm"));
        pydicom_wraps(WRAP_VARIANTS_SCRIPT, path, &ct, &temp, mode);
        staged.push((path, temp, mode));
    }
    let mut locked = Vec::new();
    for (path, temp, mode) in staged {
        let to = path.with_file_name(format!("{mode}.dcm"));
        fs::rename(&temp, &to).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
        locked.push((to, mode));
    }
    let files = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
    let mut tar = Vec::new();
    for name in ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"] {
        tar.extend(fs::read(files.join(name)).expect("pydicom's test files"));
    }
    let gz = staging.join("images.tar");
    fs::write(&gz, &tar).expect("test fixture");
    let status = std::process::Command::new("gzip")
        .arg("-9")
        .arg(&gz)
        .status()
        .expect("gzip runs");
    assert!(status.success(), "gzip");
    let gzipped = fs::read(staging.join("images.tar.gz")).expect("gzip's output");
    let mut honest = Vec::new();
    for (name, source) in [
        ("export", gzipped),
        (
            "ct",
            fs::read(files.join("CT_small.dcm")).expect("pydicom's test files"),
        ),
        ("key", keystream(300_000, 4140)),
    ] {
        let ascii = base64_crlf(&source);
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(ascii.iter().flat_map(|&c| [c, 0]))
            .collect();
        for (form, text) in [("ascii", ascii), ("utf16", utf16)] {
            let file = format!("{name}.{form}.txt");
            fs::write(staging.join(&file), text).expect("test fixture");
            let to = archive.join("study0").join(&file);
            fs::rename(staging.join(&file), &to).expect("test fixture");
            honest.push(to);
        }
    }
    let alerted = |f: &[Value], p: &Path| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["severity"] == "alert"
                && x["path"].as_str() == p.to_str()
                && has_field(x, "encrypted-arrival")
        })
    };
    let added = |f: &[Value], p: &Path| {
        f.iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == p.to_str())
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && locked.iter().all(|(p, _)| alerted(f, p))
            && honest.iter().all(|p| added(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    let missed: Vec<&(PathBuf, &str)> = locked
        .iter()
        .filter(|(p, _)| !alerted(&findings, p))
        .collect();
    assert!(seen, "missed: {missed:#?}\n{findings:#?}\n{stderr}");
    for (path, mode) in &locked {
        let detail = findings
            .iter()
            .find(|x| x["kind"] == "added" && x["path"].as_str() == path.to_str())
            .and_then(|x| x["detail"].as_str())
            .expect("waited for above");
        let words = match *mode {
            "split3" => "3 private or unknown binary elements",
            "seq" => "private element (0099,1001) OB",
            "pnc" => "every other byte is 0x00 or mostly so",
            "pw4" => "32-bit lanes",
            _ => "packed",
        };
        assert!(detail.contains(words), "{mode}: {detail}");
        if *mode == "split3" {
            // Its Pixel Data follows the private values, past the first MiB.
            assert!(detail.contains("its Pixel Data 64 bytes"), "{detail}");
        }
    }
    for path in &honest {
        let arrival = findings
            .iter()
            .find(|x| x["kind"] == "added" && x["path"].as_str() == path.to_str())
            .expect("waited for above");
        assert_eq!(arrival["severity"], "info", "{arrival:#}");
    }
}

/// The new checks of arrivals inside a window (a large private value of random bytes,
/// bytes interleaved with a constant) against every real DICOM file of `.testdata`
/// (pydicom's and pynetdicom's test files, vendor files with private OB elements among
/// them) arriving under a new name: none is taken for ciphertext by them.
#[test]
fn the_real_corpora_arriving_inside_a_window_are_no_wrapped_ciphertext() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let (_, paths) = corpora_store(&env);
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4041 import");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut arrivals = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let temp = staging.join(format!("new-{i:03}.dcm"));
        fs::copy(path, &temp).expect("test fixture");
        arrivals.push(temp);
    }
    let landed = archive.join("import");
    fs::rename(&staging, &landed).expect("test fixture");
    let arrivals: Vec<PathBuf> = arrivals
        .iter()
        .map(|p| landed.join(p.file_name().expect("named")))
        .collect();
    let seen = watcher.wait(Duration::from_secs(90), |f, _| {
        arrivals.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == p.to_str())
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let encrypted: Vec<String> = findings
        .iter()
        .filter(|f| f["kind"] == "added" && has_field(f, "encrypted-arrival"))
        .map(|f| format!("{} {}", f["path"], f["detail"]))
        .collect();
    eprintln!(
        "{} arrivals, {} encrypted-arrival: {encrypted:#?}",
        arrivals.len(),
        encrypted.len()
    );
    // Review s41 (issue 11): none at all. pydicom's `SC_rgb_jpeg.dcm` (its encapsulated
    // Pixel Data written in implicit VR) and `UN_sequence.dcm` (no Pixel Data) were
    // taken for "no stream of the codec its transfer syntax names".
    assert!(encrypted.is_empty(), "{encrypted:#?}");
}

/// The pydicom test file `name`.
fn pydicom_sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.testdata/wheels/pydicom/pydicom/data/test_files")
        .join(name)
}

/// Review rv40-watch (B6): inside a maintenance window, ransomware encrypts each image's
/// Pixel Data (a keystream standing in for AES-256-CTR), re-encodes it as a VALID
/// lossless stream (GDCM's JPEG 2000 and RLE, DCMTK's RLE and lossless JPEG), writes it
/// under a new name (a temp file renamed in) with the image's own SOP Instance UID, and
/// removes the originals after. Before, such an arrival was only asked whether its
/// stream is its codec's: every one `info`. A new name holding a guarded image's UID is a
/// re-compression of it, decoded and compared with what was stored: random pixels
/// alert. The same images re-compressed honestly under new names stay `info`. (Other,
/// structured pixels under a guarded UID stay an arrival judged by its content: an
/// image processed again and sent under its UID, review rv35-watch; so does an image
/// too small for a block of its pixels to be measured.)
#[test]
fn inside_a_window_encrypted_pixels_in_valid_lossless_streams_arriving_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 4] = [
        ("gdcmconv", &["--j2k"]),
        ("dcmcrle", &["-q"]),
        ("gdcmconv", &["--rle"]),
        ("dcmcjpeg", &["-q", "+e1"]),
    ];
    // (stored, new name, re-compressed file) for each side.
    let (mut encrypted, mut honest) = (Vec::new(), Vec::new());
    // Images of a 4 KiB block of pixels at least: randomness is measured over blocks
    // (pydicom's 3 x 3 RGB image, 27 bytes, is other pixels, and no more: see below).
    for (s, source) in ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm"]
        .iter()
        .enumerate()
    {
        let source = pydicom_sample(source);
        let mut bytes = fs::read(&source).expect("pydicom's test data");
        let pixels = native_pixel_value(&bytes);
        let key = keystream(pixels.len(), 0x5EED + s as u64);
        for (b, k) in bytes[pixels].iter_mut().zip(key) {
            *b = k;
        }
        let ciphered = staging.join(format!("ciphered-{s}.dcm"));
        fs::write(&ciphered, &bytes).expect("test fixture");
        for (t, (tool, args)) in tools.iter().enumerate() {
            for (side, input, list) in [
                ("enc", &ciphered, &mut encrypted),
                ("honest", &source, &mut honest),
            ] {
                let out = staging.join(format!("{side}-{s}-{t}.dcm"));
                if !encode(tool, args, input, &out) {
                    continue;
                }
                let dir = archive.join(side);
                fs::create_dir_all(&dir).expect("test fixture");
                let stored = dir.join(format!("{s}-{t}.dcm"));
                fs::copy(&source, &stored).expect("test fixture");
                list.push((stored, dir.join(format!("{s}-{t}.v2.dcm")), out));
            }
        }
    }
    assert!(encrypted.len() >= 10, "{} encrypted", encrypted.len());
    assert!(honest.len() >= 10, "{} honest", honest.len());
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7 J2K migration");
    for (_, new, out) in encrypted.iter().chain(&honest) {
        let temp = new.with_extension("tmp");
        fs::copy(out, &temp).expect("test fixture");
        fs::rename(&temp, new).expect("test fixture");
    }
    let arrived = |f: &[Value]| {
        encrypted.iter().chain(&honest).all(|(_, new, _)| {
            f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == new.to_str())
        })
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| arrived(f));
    // The originals go after, as the reviewer's ransomware removed them.
    for (stored, _, _) in encrypted.iter().chain(&honest) {
        fs::remove_file(stored).expect("test fixture");
    }
    std::thread::sleep(Duration::from_secs(4));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let arrival = |new: &PathBuf| {
        findings
            .iter()
            .find(|f| f["kind"] == "added" && f["path"].as_str() == new.to_str())
    };
    let missed: Vec<_> = encrypted
        .iter()
        .filter(|(_, new, _)| {
            !arrival(new)
                .is_some_and(|f| f["severity"] == "alert" && has_field(f, "encrypted-arrival"))
        })
        .map(|(_, new, _)| arrival(new))
        .collect();
    assert!(missed.is_empty(), "{missed:#?}");
    let taken: Vec<_> = honest
        .iter()
        .filter_map(|(_, new, _)| arrival(new))
        .filter(|f| f["severity"] != "info" || has_field(f, "encrypted-arrival"))
        .collect();
    assert!(taken.is_empty(), "{taken:#?}");
}

/// Review rv41-watch (C2): an honest JPEG-LS migration writing each image under a new
/// name beside the original (same SOP Instance UID), the originals removed after, was
/// `encrypted-arrival` on every image and raised `ransomware-suspected` (86 of 86 with
/// `gdcmconv --jpegls`): a copy nothing here decodes was taken for ciphertext, while the
/// same ciphertext relabelled `.4.81`, or under a new UID, was not asked at all. Such a
/// copy is judged by its content, as before session 41 (and, JPEG-LS decoded since
/// session 43, proven against the original first).
#[test]
fn inside_a_window_an_honest_jpeg_ls_migration_beside_the_originals_is_no_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 2] = [("dcmcjpls", &["-q"]), ("gdcmconv", &["--jpegls"])];
    let mut copies = Vec::new();
    for (s, source) in ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm"]
        .iter()
        .enumerate()
    {
        let source = pydicom_sample(source);
        for (t, (tool, args)) in tools.iter().enumerate() {
            let out = staging.join(format!("{s}-{t}.dcm"));
            if !encode(tool, args, &source, &out) {
                continue;
            }
            fs::create_dir_all(&archive).expect("test fixture");
            let stored = archive.join(format!("{s}-{t}.dcm"));
            fs::copy(&source, &stored).expect("test fixture");
            copies.push((stored, archive.join(format!("{s}-{t}.v2.dcm")), out));
        }
    }
    assert!(copies.len() >= 5, "{} re-compressed", copies.len());
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-41 JPEG-LS migration");
    for (_, new, out) in &copies {
        let temp = new.with_extension("tmp");
        fs::copy(out, &temp).expect("test fixture");
        fs::rename(&temp, new).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        copies.iter().all(|(_, new, _)| {
            f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == new.to_str())
        })
    });
    for (stored, _, _) in &copies {
        fs::remove_file(stored).expect("test fixture");
    }
    std::thread::sleep(Duration::from_secs(4));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let taken: Vec<_> = findings
        .iter()
        .filter(|f| {
            f["severity"] == "alert"
                && (f["kind"] == "ransomware-suspected" || has_field(f, "encrypted-arrival"))
        })
        .collect();
    assert!(taken.is_empty(), "{taken:#?}");
}

/// `bytes` (an explicit VR little endian data set) with its Photometric Interpretation
/// `(0028,0004)` rewritten as `value`, nothing else changed (but its length).
fn with_photometric(bytes: &[u8], value: &str) -> Vec<u8> {
    let at = bytes
        .windows(6)
        .position(|w| w == [0x28, 0x00, 0x04, 0x00, b'C', b'S'])
        .expect("a Photometric Interpretation");
    let len = usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]));
    let mut padded = value.as_bytes().to_vec();
    if padded.len() % 2 == 1 {
        padded.push(b' ');
    }
    let mut out = bytes[..at + 6].to_vec();
    out.extend_from_slice(&u16::try_from(padded.len()).expect("short").to_le_bytes());
    out.extend_from_slice(&padded);
    out.extend_from_slice(&bytes[at + 8 + len..]);
    out
}

/// Review rv40-watch (B2): inside a maintenance window, an RGB image's pixels XORed with
/// a 4-byte key, re-compressed losslessly (GDCM's JPEG 2000 and RLE, DCMTK's RLE) and
/// relabelled YBR_RCT, YBR_ICT or YBR_FULL, written over itself: the relabelling was taken
/// as the color conversion that explains other pixels, and each was softened to `info`.
/// JPEG 2000's decoder undoes its own component transform (its samples are the stored
/// RGB ones whatever the label), and no lossless encoder writes an RGB image's samples
/// in another representation: each is an alert now, as it is unrelabelled.
#[test]
fn inside_a_window_color_pixels_xored_re_compressed_and_relabelled_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    fs::create_dir_all(&archive).expect("test fixture");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let relabels: [(&str, &[&str], &str); 6] = [
        ("gdcmconv", &["--j2k"], "YBR_RCT"),
        ("gdcmconv", &["--j2k"], "YBR_ICT"),
        ("gdcmconv", &["--j2k"], "YBR_FULL"),
        ("dcmcrle", &["-q"], "YBR_FULL"),
        ("gdcmconv", &["--rle"], "YBR_FULL"),
        ("gdcmconv", &["--rle"], "YBR_FULL_422"),
    ];
    // Native RGB images: pydicom's, and its RLE ones (one frame, two) made native by
    // `gdcmconv --raw`.
    let mut sources = vec![pydicom_sample("examples_rgb_color.dcm")];
    for name in ["SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm"] {
        let native = staging.join(format!("native-{name}"));
        assert!(
            encode("gdcmconv", &["--raw"], &pydicom_sample(name), &native),
            "gdcmconv --raw {name}"
        );
        sources.push(native);
    }
    let mut outs = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        let mut bytes = fs::read(source).expect("pydicom's test data");
        let pixels = native_pixel_value(&bytes);
        let key = [0x5A, 0xC3, 0x17, 0x9E];
        for (j, b) in bytes[pixels].iter_mut().enumerate() {
            *b ^= key[j % key.len()];
        }
        let xored = staging.join(format!("xored-{s}.dcm"));
        fs::write(&xored, &bytes).expect("test fixture");
        for (r, (tool, args, label)) in relabels.iter().enumerate() {
            let out = staging.join(format!("out-{s}-{r}.dcm"));
            if !encode(tool, args, &xored, &out) {
                continue;
            }
            let relabelled = with_photometric(&fs::read(&out).expect("encoded"), label);
            fs::write(&out, relabelled).expect("test fixture");
            let path = archive.join(format!("{s}-{r}.dcm"));
            fs::copy(source, &path).expect("test fixture");
            outs.push((path, out));
        }
    }
    assert!(outs.len() >= 12, "{} relabelled", outs.len());
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &archive, "CHG-7 J2K migration");
    for (path, out) in &outs {
        let temp = path.with_extension("tmp");
        fs::copy(out, &temp).expect("test fixture");
        fs::rename(&temp, path).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        outs.iter().all(|(p, _)| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == p.to_str())
        })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let soft: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "pixel-data-changed"
                && (f["severity"] != "alert" || !has_field(f, "re-compression-unproven"))
        })
        .collect();
    assert!(soft.is_empty(), "{soft:#?}");
}

/// Review rv40-watch (B6), the budget: the proofs of new files holding a guarded
/// image's UID share the batch's proving time (lowered here so that only a batch's first
/// proof runs). Three encrypted re-compressions arriving together: the ones past the
/// time are put off, said in a warning, and proven in a later batch; none is softened
/// for the time it waited (a budget is no verdict).
#[test]
fn inside_a_window_arrivals_past_the_proving_time_are_put_off_and_proven_later() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 3);
    let mut command = common::pacsguard();
    // One proof a batch: the time squeezed and the floor of proofs at one (session 49).
    command
        .env("PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US", "1")
        .env("PACSGUARD_TEST_MIN_PROOFS_PER_BATCH", "1");
    let watcher = Watcher::start_with(&env, &[], command);
    open_window(&env, &watcher, &env.path("archive"), "CHG-7 J2K migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut outs = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let pixels = native_pixel_value(&bytes);
        let key = keystream(pixels.len(), 0xB6 + i as u64);
        for (b, k) in bytes[pixels].iter_mut().zip(key) {
            *b = k;
        }
        let ciphered = staging.join(format!("ciphered-{i}.dcm"));
        fs::write(&ciphered, &bytes).expect("test fixture");
        let out = staging.join(format!("j2k-{i}.dcm"));
        assert!(
            encode("gdcmconv", &["--j2k"], &ciphered, &out),
            "gdcmconv --j2k"
        );
        outs.push((out, path.with_extension("v2.dcm")));
    }
    // One batch: all three renamed in at once.
    for (out, new) in &outs {
        fs::copy(out, new.with_extension("tmp")).expect("test fixture");
    }
    for (_, new) in &outs {
        fs::rename(new.with_extension("tmp"), new).expect("test fixture");
    }
    let alerted = |f: &[Value], new: &PathBuf| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["path"].as_str() == new.to_str()
                && x["severity"] == "alert"
                && has_field(x, "encrypted-arrival")
        })
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        outs.iter().all(|(_, new)| alerted(f, new))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let put_off = findings.iter().any(|f| {
        f["kind"] == "not-inspected"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("holding a stored image's SOP Instance UID"))
    });
    assert!(put_off, "{findings:#?}");
    // Each judged once, at its proof: none reported softened before it.
    let softened: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "added"
                && f["severity"] == "info"
                && outs
                    .iter()
                    .any(|(_, new)| f["path"].as_str() == new.to_str())
        })
        .collect();
    assert!(softened.is_empty(), "{softened:#?}");
}

/// Review rv40-watch (B6) in the other order: the originals removed first, then the
/// encrypted re-compressions renamed in under new names with their UIDs. Each new file
/// is compared with the removed image of its UID (`pixel-data-changed`). Its JPEG 2000
/// frames decoding to random pixels alerted already; its RLE frames did not, the RLE
/// proof never saying its decoded pixels were random (measured with the reviewer's
/// script: both RLE images `info` before). Each alerts now.
#[test]
fn inside_a_window_encrypted_rle_under_a_removed_images_uid_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 2);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &env.path("archive"), "CHG-7 RLE migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 2] = [("dcmcrle", &["-q"]), ("gdcmconv", &["--rle"])];
    let mut outs = Vec::new();
    for (i, (path, (tool, args))) in paths.iter().zip(tools).enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let pixels = native_pixel_value(&bytes);
        let key = keystream(pixels.len(), 0xB6B + i as u64);
        for (b, k) in bytes[pixels].iter_mut().zip(key) {
            *b = k;
        }
        let ciphered = staging.join(format!("ciphered-{i}.dcm"));
        fs::write(&ciphered, &bytes).expect("test fixture");
        let out = staging.join(format!("rle-{i}.dcm"));
        assert!(encode(tool, args, &ciphered, &out), "{tool} {args:?}");
        outs.push((out, path.with_extension("locked")));
    }
    for path in &paths {
        fs::remove_file(path).expect("test fixture");
    }
    let removed = watcher.wait(Duration::from_secs(30), |f, _| {
        paths.iter().all(|p| {
            f.iter()
                .any(|x| x["kind"] == "removed" && x["path"].as_str() == p.to_str())
        })
    });
    assert!(removed, "{:#?}", watcher.findings());
    for (out, new) in &outs {
        fs::copy(out, new.with_extension("tmp")).expect("test fixture");
        fs::rename(new.with_extension("tmp"), new).expect("test fixture");
    }
    let judged = |f: &[Value]| {
        outs.iter().all(|(_, new)| {
            f.iter()
                .any(|x| x["kind"] == "pixel-data-changed" && x["path"].as_str() == new.to_str())
        })
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| judged(f));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    let soft: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "pixel-data-changed"
                && outs
                    .iter()
                    .any(|(_, new)| f["path"].as_str() == new.to_str())
                && f["severity"] != "alert"
        })
        .collect();
    assert!(soft.is_empty(), "{soft:#?}");
}

/// `bytes` with each `from` replaced by `to`, of the same length.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..].windows(from.len()).position(|w| w == from) {
        out[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
    out
}

/// Review s42 (1), inside a maintenance window: CT_small images whose pixels were
/// replaced by ciphertext (real `openssl enc`) in lanes session 41 did not look at,
/// written under new names, the originals removed: R and G of 24-bit values beside
/// B = 0 (`rgb`), each low byte beside the image's own high byte (`beside`), packed 10
/// and 11 bits a value (`ten`, `eleven`), and a byte a 16-bit value in `.98` fragments
/// (`enc98`); and (session 43) R alone beside a grey image's G and B (`rgb1`). Each was
/// `info added`; each is now an `encrypted-arrival`, and together they raise
/// `ransomware-suspected`.
#[test]
fn inside_a_window_ciphertext_in_rgb_high_byte_packed_or_98_lanes_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, 6);
    let watcher = Watcher::start(&env, &[]);
    open_window(&env, &watcher, &env.path("archive"), "CHG-4242 migration");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let mut staged = Vec::new();
    for (path, mode) in paths
        .iter()
        .zip(["rgb", "beside", "ten", "eleven", "enc98", "rgb1"])
    {
        let bytes = fs::read(path).expect("test fixture");
        let range = ct_small_pixels(&bytes);
        let image = bytes[range.clone()].to_vec();
        let ct = openssl_ciphertext(path);
        let bits = keystream(image.len(), 4242);
        let pixels: Vec<u8> = match mode {
            "rgb" => ct
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[1], 0])
                .take(image.len())
                .collect(),
            // R alone ciphertext, G and B a grey image's (the CT's values scaled to 8
            // bits), as a secondary capture holds one (issue 11, review of session 42:
            // `info`, B being beside no ciphertext byte).
            "rgb1" => image
                .chunks_exact(2)
                .map(|v| (u16::from_le_bytes([v[0], v[1]]) >> 4) as u8)
                .zip(&ct)
                .flat_map(|(grey, &c)| [c, grey, grey])
                .take(image.len())
                .collect(),
            "beside" => image
                .chunks_exact(2)
                .zip(&ct)
                .flat_map(|(v, &c)| [c, v[1]])
                .collect(),
            _ => ct
                .iter()
                .zip(&bits)
                .flat_map(|(&c, &r)| [c, r & if mode == "ten" { 3 } else { 7 }])
                .take(image.len())
                .collect(),
        };
        // A new SOP Instance UID (and study's, series'): a new image, not the stored one.
        let bytes = replace_all(&bytes, b"1.3.6.1.4.1.5962.1.1", b"1.3.6.1.4.1.5962.9.1");
        let out = if mode == "enc98" {
            let zeros: Vec<u8> = ct
                .iter()
                .take(image.len() / 2)
                .flat_map(|&c| [c, 0])
                .collect();
            as_encapsulated_uncompressed(&bytes, &zeros)
        } else {
            let mut out = bytes.clone();
            out[range].copy_from_slice(&pixels);
            out
        };
        let temp = staging.join(format!("{mode}.dcm"));
        fs::write(&temp, out).expect("test fixture");
        staged.push((path, temp, mode));
    }
    let mut locked = Vec::new();
    for (path, temp, mode) in staged {
        let to = path.with_file_name(format!("{mode}.dcm"));
        fs::rename(&temp, &to).expect("test fixture");
        fs::remove_file(path).expect("test fixture");
        locked.push((to, mode));
    }
    let alerted = |f: &[Value], p: &Path| {
        f.iter().any(|x| {
            x["kind"] == "added"
                && x["severity"] == "alert"
                && x["path"].as_str() == p.to_str()
                && has_field(x, "encrypted-arrival")
        })
    };
    let seen = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1 && locked.iter().all(|(p, _)| alerted(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    let missed: Vec<&(PathBuf, &str)> = locked
        .iter()
        .filter(|(p, _)| !alerted(&findings, p))
        .collect();
    assert!(seen, "missed: {missed:#?}\n{findings:#?}\n{stderr}");
    for (path, mode) in &locked {
        let detail = findings
            .iter()
            .find(|x| x["kind"] == "added" && x["path"].as_str() == path.to_str())
            .and_then(|x| x["detail"].as_str())
            .expect("waited for above");
        let words = match *mode {
            "rgb" | "rgb1" => "24-bit lanes",
            "beside" => "carry nothing",
            "ten" => "up to 2 bits a byte",
            "eleven" => "up to 3 bits a byte",
            _ => "uncompressed frames encapsulated",
        };
        assert!(detail.contains(words), "{mode}: {detail}");
    }
}

/// Review s42 (2, 3), inside a maintenance window, new DICOM files written by pydicom:
/// `hologic`, zlib'd projections (Python's `zlib`) in OB values of the items of a
/// private sequence, and `ge`, one gzip'd private OB (Python's `gzip`), were each an
/// `encrypted-arrival`: each is now `info`. `forged`, a zlib header before ciphertext
/// (real `openssl enc`), still alerts. `decoys`, 16 plain values of 70 KiB after a
/// plain first MiB and the ciphertext after them, past MAX_WRAPPED_HOPS, was `info`:
/// it is now a warning naming the constant. `bzip2`, `xz` and `zstd` (Python's `bz2`
/// and `lzma`, the `zstd` program): not decoded here, so counted (ciphertext behind
/// their magic is not told apart), and said to be such data or ciphertext; never called
/// an executable (session 43: bzip2 and xz were `embedded-executable` alerts, and each
/// was called "ciphertext wrapped in a DICOM").
#[test]
fn inside_a_window_compressed_private_values_are_info_and_decoys_past_the_hops_warn() {
    const SCRIPT: &str = r#"
import sys, zlib, gzip
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
src, ct, out, mode = sys.argv[1:5]
ct = open(ct, 'rb').read()
ds = pydicom.dcmread(src)
u = generate_uid(); ds.SOPInstanceUID = u; ds.file_meta.MediaStorageSOPInstanceUID = u
ds.add_new(0x00190010, 'LO', 'HOLOGIC, Inc.')
import functools, random
@functools.lru_cache(maxsize=None)
def projection(k):
    # Smooth 12-bit values with 6 bits of noise: compressed, they read as random bytes.
    noise = random.Random(k).randbytes(400000)
    return b''.join(((i * (31 + k) // 16) % 4096 + (noise[i] & 63)).to_bytes(2, 'little') for i in range(400000))
if mode == 'hologic':
    items = []
    for k in range(4):
        item = Dataset(); item.add_new(0x00190010, 'LO', 'HOLOGIC, Inc.')
        item.add_new(0x00191001, 'OB', zlib.compress(projection(k)))
        items.append(item)
    ds.add_new(0x00191000, 'SQ', Sequence(items))
elif mode == 'ge':
    ds.add_new(0x00191001, 'OB', gzip.compress(projection(9)))
elif mode == 'bzip2':
    import bz2
    ds.add_new(0x00191001, 'OB', bz2.compress(projection(5)))
elif mode == 'xz':
    import lzma
    ds.add_new(0x00191001, 'OB', lzma.compress(projection(6)))
elif mode == 'zstd':
    import subprocess
    z = subprocess.run(['zstd', '-q', '-c'], input=projection(7), capture_output=True, check=True).stdout
    ds.add_new(0x00191001, 'OB', z + (b'\0' if len(z) % 2 else b''))
elif mode == 'forged':
    ds.add_new(0x00191001, 'OB', b'\x78\x9c' + ct * 8)
elif mode == 'decoys':
    ds.add_new(0x00191000, 'OB', (projection(1) * 2)[:1 << 20])
    for k in range(16):
        ds.add_new(0x00191001 + k, 'OB', projection(2)[:70 * 1024])
    ds.add_new(0x00191011, 'OB', (ct * 200)[:3 << 20])
ds.save_as(out, enforce_file_format=True)
"#;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\n");
    let paths = ct_small_store(&env, 1);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-4243 import");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&staging).expect("test fixture");
    let ct = openssl_ciphertext(&paths[0]);
    let mut landed = Vec::new();
    for mode in ["hologic", "ge", "forged", "decoys", "bzip2", "xz", "zstd"] {
        let temp = staging.join(format!("{mode}.dcm"));
        pydicom_wraps(SCRIPT, &paths[0], &ct, &temp, mode);
        landed.push((
            archive.join("study0").join(format!("{mode}.dcm")),
            temp,
            mode,
        ));
    }
    for (to, temp, _) in &landed {
        fs::rename(temp, to).expect("test fixture");
    }
    let added = |f: &[Value], p: &Path| {
        f.iter()
            .any(|x| x["kind"] == "added" && x["path"].as_str() == p.to_str())
    };
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        landed.iter().all(|(p, _, _)| added(f, p))
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    for (path, _, mode) in &landed {
        let arrival = findings
            .iter()
            .find(|x| x["kind"] == "added" && x["path"].as_str() == path.to_str())
            .expect("waited for above");
        let detail = arrival["detail"].as_str().unwrap_or_default();
        match *mode {
            "forged" => {
                assert_eq!(arrival["severity"], "alert", "{arrival:#}");
                assert!(has_field(arrival, "encrypted-arrival"), "{arrival:#}");
            }
            "decoys" => {
                assert_eq!(arrival["severity"], "warning", "{arrival:#}");
                assert!(!has_field(arrival, "encrypted-arrival"), "{arrival:#}");
                assert!(detail.contains("MAX_WRAPPED_HOPS"), "{detail}");
            }
            // Session 43: nothing here decodes them, so they are counted as any value
            // that reads random, saying what they are; the bzip2 and xz ones were an
            // `embedded-executable` alert, called an executable.
            "bzip2" | "xz" | "zstd" => {
                let executable = findings.iter().any(|f| {
                    f["path"].as_str() == path.to_str()
                        && (f["kind"] == "embedded-executable"
                            || has_field(f, "embedded-executable"))
                });
                assert!(!executable, "{mode}: {findings:#?}");
                eprintln!("{mode}: {} {detail}", arrival["severity"]);
                assert!(
                    arrival["severity"] != "alert"
                        || detail.contains(&format!(
                            "{mode}-compressed data (its magic opens one of them; nothing \
                             here decodes {mode})"
                        )),
                    "{mode}: {arrival:#}"
                );
            }
            _ => assert_eq!(arrival["severity"], "info", "{mode}: {arrival:#}"),
        }
    }
}

/// `bytes` (a DICOM file) with its transfer syntax UID `(0002,0010)` written as `uid`
/// and its File Meta Information group length `(0002,0000)` kept true: a relabelling,
/// nothing else changed.
fn with_transfer_syntax(bytes: &[u8], uid: &str) -> Vec<u8> {
    let at = bytes
        .windows(6)
        .position(|w| w == [0x02, 0x00, 0x10, 0x00, b'U', b'I'])
        .expect("a transfer syntax UID");
    let len = usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]));
    let mut value = uid.as_bytes().to_vec();
    if value.len() % 2 == 1 {
        value.push(0);
    }
    let mut out = bytes[..at + 6].to_vec();
    out.extend_from_slice(&u16::try_from(value.len()).expect("short").to_le_bytes());
    out.extend_from_slice(&value);
    out.extend_from_slice(&bytes[at + 8 + len..]);
    let group = out
        .windows(6)
        .position(|w| w == [0x02, 0x00, 0x00, 0x00, b'U', b'L'])
        .expect("a group length");
    let was = u32::from_le_bytes([
        out[group + 8],
        out[group + 9],
        out[group + 10],
        out[group + 11],
    ]);
    let now = i64::from(was) + value.len() as i64 - len as i64;
    out[group + 8..group + 12]
        .copy_from_slice(&u32::try_from(now).expect("a length").to_le_bytes());
    out
}

/// `bytes` with its SOP Instance UID made another (its last digit changed wherever it
/// stands: the File Meta Information and the data set): a new instance.
fn with_new_uid(bytes: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(6)
        .position(|w| w == [0x08, 0x00, 0x18, 0x00, b'U', b'I'])
        .expect("a SOP Instance UID");
    let len = usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]));
    let uid: Vec<u8> = bytes[at + 8..at + 8 + len]
        .iter()
        .copied()
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    let mut other = uid.clone();
    let last = other.len() - 1;
    other[last] = if other[last] == b'9' {
        b'1'
    } else {
        other[last] + 1
    };
    let mut out = bytes.to_vec();
    let mut from = 0;
    while let Some(found) = out[from..].windows(uid.len()).position(|w| w == uid) {
        let start = from + found;
        out[start..start + uid.len()].copy_from_slice(&other);
        from = start + uid.len();
    }
    out
}

/// `source`'s native Pixel Data replaced by a keystream (AES-CTR's stand-in), written
/// to `out`.
fn ciphered(source: &Path, out: &Path, seed: u64) {
    let mut bytes = fs::read(source).expect("pydicom's test data");
    let pixels = native_pixel_value(&bytes);
    let key = keystream(pixels.len(), seed);
    for (b, k) in bytes[pixels].iter_mut().zip(key) {
        *b = k;
    }
    fs::write(out, bytes).expect("test fixture");
}

/// What the watcher said when each of `arrivals` (stored image, its new name, the file
/// written there) was renamed in from a temp file inside a maintenance window over
/// `archive`, the stored images profiled before (and removed after, when
/// `remove_originals`).
fn arrive_beside(
    env: &Env,
    archive: &Path,
    arrivals: &[(PathBuf, PathBuf, PathBuf)],
    remove_originals: bool,
) -> Vec<Value> {
    env.profile(&["--policy", "append-only"]);
    let watcher = Watcher::start(env, &[]);
    open_window(env, &watcher, archive, "CHG-42 migration");
    for (_, new, out) in arrivals {
        let temp = new.with_extension("tmp");
        fs::copy(out, &temp).expect("test fixture");
        fs::rename(&temp, new).expect("test fixture");
    }
    let seen = watcher.wait(Duration::from_secs(60), |f, _| {
        arrivals.iter().all(|(_, new, _)| {
            f.iter()
                .any(|x| x["kind"] == "added" && x["path"].as_str() == new.to_str())
        })
    });
    if remove_originals {
        for (stored, _, _) in arrivals {
            fs::remove_file(stored).expect("test fixture");
        }
    }
    std::thread::sleep(Duration::from_secs(4));
    let (_, findings, stderr) = watcher.stop();
    assert!(seen, "{findings:#?}\n{stderr}");
    findings
}

/// The `added` findings of `arrivals` that are not an `encrypted-arrival` alert.
fn not_alerted(findings: &[Value], arrivals: &[(PathBuf, PathBuf, PathBuf)]) -> Vec<String> {
    arrivals
        .iter()
        .filter_map(|(_, new, _)| {
            let f = findings
                .iter()
                .find(|f| f["kind"] == "added" && f["path"].as_str() == new.to_str());
            let alerted =
                f.is_some_and(|f| f["severity"] == "alert" && has_field(f, "encrypted-arrival"));
            (!alerted).then(|| format!("{}: {f:#?}", new.display()))
        })
        .collect()
}

/// The `added` findings of `arrivals` that are not `info`.
fn not_info(findings: &[Value], arrivals: &[(PathBuf, PathBuf, PathBuf)]) -> Vec<String> {
    arrivals
        .iter()
        .filter_map(|(_, new, _)| {
            let f = findings
                .iter()
                .find(|f| f["kind"] == "added" && f["path"].as_str() == new.to_str())?;
            (f["severity"] != "info" || has_field(f, "encrypted-arrival"))
                .then(|| format!("{}: {f:#}", new.display()))
        })
        .collect()
}

/// Issue 11, review of session 41 (1): ciphertext encoded by real encoders and
/// relabelled with a transfer syntax the proof never asked (`.4.81` JPEG-LS
/// near-lossless for a `dcmcjpls` stream; `.4.202`, `.4.203` HTJ2K and `.4.92` JPEG 2000
/// multi-component for a `gdcmconv --j2k` stream; the J2K stream labelled JPEG baseline
/// `.4.50`), under its image's UID beside the original: each was `info`. The stream is
/// judged by what it is (its markers), not its label: an alert each. The honest J2K
/// streams under the same labels decode to the stored pixels: `info`.
#[test]
fn inside_a_window_ciphertext_under_a_label_never_asked_beside_the_originals_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&archive).expect("test fixture");
    fs::create_dir_all(&staging).expect("test fixture");
    let relabels: [(&str, &[&str], &str); 5] = [
        ("dcmcjpls", &["-q"], "1.2.840.10008.1.2.4.81"),
        ("gdcmconv", &["--j2k"], "1.2.840.10008.1.2.4.202"),
        ("gdcmconv", &["--j2k"], "1.2.840.10008.1.2.4.203"),
        ("gdcmconv", &["--j2k"], "1.2.840.10008.1.2.4.92"),
        ("gdcmconv", &["--j2k"], "1.2.840.10008.1.2.4.50"),
    ];
    let (mut encrypted, mut honest) = (Vec::new(), Vec::new());
    for (s, name) in ["CT_small.dcm", "MR_small.dcm"].iter().enumerate() {
        let source = pydicom_sample(name);
        let cipher = staging.join(format!("cipher-{s}.dcm"));
        ciphered(&source, &cipher, 0x4281 + s as u64);
        for (t, (tool, args, label)) in relabels.iter().enumerate() {
            for (side, input, list) in [
                ("enc", &cipher, &mut encrypted),
                ("ok", &source, &mut honest),
            ] {
                // A relabelled JPEG-LS stream or a J2K stream called JPEG is no honest
                // migration's: only the J2K family's labels have an honest side.
                if side == "ok" && !label.contains(".4.2") && !label.ends_with(".4.92") {
                    continue;
                }
                let out = staging.join(format!("{side}-{s}-{t}.dcm"));
                assert!(encode(tool, args, input, &out), "{tool} {name}");
                let bytes = with_transfer_syntax(&fs::read(&out).expect("encoded"), label);
                fs::write(&out, bytes).expect("test fixture");
                let stored = archive.join(format!("{side}-{s}-{t}.dcm"));
                fs::copy(&source, &stored).expect("test fixture");
                list.push((stored, archive.join(format!("{side}-{s}-{t}.v2.dcm")), out));
            }
        }
    }
    let all: Vec<_> = encrypted.iter().chain(&honest).cloned().collect();
    let findings = arrive_beside(&env, &archive, &all, false);
    let missed = not_alerted(&findings, &encrypted);
    assert!(missed.is_empty(), "{missed:#?}");
    let taken = not_info(&findings, &honest);
    assert!(taken.is_empty(), "{taken:#?}");
}

/// Issue 11, review of session 41 (2): the same ciphertext as a valid JPEG 2000 (or
/// lossless JPEG) stream written under a new SOP Instance UID, beside the stored
/// images of its study: judged by its stream's shape only, `info`. A lossless stream as
/// large as random samples encode is decoded (within the batch's proving budget), and
/// its random pixels alert; honest images under new UIDs stay `info`.
#[test]
fn inside_a_window_ciphertext_in_a_valid_stream_under_a_new_uid_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&archive).expect("test fixture");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 2] = [("gdcmconv", &["--j2k"]), ("dcmcjpeg", &["-q", "+e1"])];
    let (mut encrypted, mut honest) = (Vec::new(), Vec::new());
    for (s, name) in ["CT_small.dcm", "MR_small.dcm"].iter().enumerate() {
        let source = pydicom_sample(name);
        let cipher = staging.join(format!("cipher-{s}.dcm"));
        ciphered(&source, &cipher, 0x4282 + s as u64);
        for (t, (tool, args)) in tools.iter().enumerate() {
            for (side, input, list) in [
                ("enc", &cipher, &mut encrypted),
                ("ok", &source, &mut honest),
            ] {
                let out = staging.join(format!("{side}-{s}-{t}.dcm"));
                assert!(encode(tool, args, input, &out), "{tool} {name}");
                let bytes = with_new_uid(&fs::read(&out).expect("encoded"));
                fs::write(&out, bytes).expect("test fixture");
                let stored = archive.join(format!("{side}-{s}-{t}.dcm"));
                fs::copy(&source, &stored).expect("test fixture");
                list.push((stored, archive.join(format!("{side}-{s}-{t}.new.dcm")), out));
            }
        }
    }
    let all: Vec<_> = encrypted.iter().chain(&honest).cloned().collect();
    let findings = arrive_beside(&env, &archive, &all, false);
    let missed = not_alerted(&findings, &encrypted);
    assert!(missed.is_empty(), "{missed:#?}");
    let taken = not_info(&findings, &honest);
    assert!(taken.is_empty(), "{taken:#?}");
}

/// Issue 11, review of session 41 (3): the stored images are JPEG 2000 (GDCM); the
/// ciphertext is written as JPEG-LS (`dcmcjpls`, `gdcmconv --jpegls`) under their UIDs
/// beside them: nothing here decoded JPEG-LS, and each was `info`. Decoded since session
/// 43, their random pixels alert each. The honest JPEG-LS re-compressions of the same
/// stored images stay `info`: compared decoded with the decoded originals (their
/// digest is that of a JPEG 2000 stream, which no JPEG-LS decode gives; compared with
/// it, each was `encrypted-arrival` once the decoder came).
#[test]
fn inside_a_window_ciphertext_as_jpeg_ls_beside_j2k_originals_alerts() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&archive).expect("test fixture");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 2] = [("dcmcjpls", &["-q"]), ("gdcmconv", &["--jpegls"])];
    let (mut encrypted, mut honest) = (Vec::new(), Vec::new());
    for (s, name) in ["CT_small.dcm", "MR_small.dcm"].iter().enumerate() {
        let source = pydicom_sample(name);
        let j2k = staging.join(format!("j2k-{s}.dcm"));
        assert!(
            encode("gdcmconv", &["--j2k"], &source, &j2k),
            "gdcmconv {name}"
        );
        let cipher = staging.join(format!("cipher-{s}.dcm"));
        ciphered(&source, &cipher, 0x4283 + s as u64);
        for (t, (tool, args)) in tools.iter().enumerate() {
            for (side, input, list) in [
                ("enc", &cipher, &mut encrypted),
                ("ok", &source, &mut honest),
            ] {
                let out = staging.join(format!("{side}-{s}-{t}.dcm"));
                assert!(encode(tool, args, input, &out), "{tool} {name}");
                let stored = archive.join(format!("{side}-{s}-{t}.dcm"));
                fs::copy(&j2k, &stored).expect("test fixture");
                list.push((stored, archive.join(format!("{side}-{s}-{t}.v2.dcm")), out));
            }
        }
    }
    let all: Vec<_> = encrypted.iter().chain(&honest).cloned().collect();
    let findings = arrive_beside(&env, &archive, &all, true);
    let missed = not_alerted(&findings, &encrypted);
    assert!(missed.is_empty(), "{missed:#?}");
    let taken = not_info(&findings, &honest);
    assert!(taken.is_empty(), "{taken:#?}");
}

/// Issue 11, review of session 41 (4, C8): pixels XORed with a 4-byte key, then
/// re-compressed losslessly (GDCM's JPEG 2000 and RLE, DCMTK's RLE and lossless JPEG)
/// and written under the image's UID beside the original: `info`, while the same
/// written in place alerts. Its frames decode to other pixels than the stored image's,
/// which no lossless encoder writes: an alert each, as in place.
#[test]
fn inside_a_window_pixels_xored_then_re_compressed_beside_the_originals_alert() {
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let archive = env.path("archive");
    let staging = env.dir.path().join("staging");
    fs::create_dir_all(&archive).expect("test fixture");
    fs::create_dir_all(&staging).expect("test fixture");
    let tools: [(&str, &[&str]); 4] = [
        ("gdcmconv", &["--j2k"]),
        ("dcmcrle", &["-q"]),
        ("gdcmconv", &["--rle"]),
        ("dcmcjpeg", &["-q", "+e1"]),
    ];
    let mut xored = Vec::new();
    for (s, name) in ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm"]
        .iter()
        .enumerate()
    {
        let source = pydicom_sample(name);
        let mut bytes = fs::read(&source).expect("pydicom's test data");
        let pixels = native_pixel_value(&bytes);
        for (i, b) in bytes[pixels].iter_mut().enumerate() {
            *b ^= [0x5A, 0xC3, 0x17, 0x8E][i % 4];
        }
        let input = staging.join(format!("xored-{s}.dcm"));
        fs::write(&input, &bytes).expect("test fixture");
        for (t, (tool, args)) in tools.iter().enumerate() {
            let out = staging.join(format!("{s}-{t}.dcm"));
            if !encode(tool, args, &input, &out) {
                continue;
            }
            let stored = archive.join(format!("{s}-{t}.dcm"));
            fs::copy(&source, &stored).expect("test fixture");
            xored.push((stored, archive.join(format!("{s}-{t}.v2.dcm")), out));
        }
    }
    assert!(xored.len() >= 10, "{} encoded", xored.len());
    let findings = arrive_beside(&env, &archive, &xored, true);
    let missed = not_alerted(&findings, &xored);
    assert!(missed.is_empty(), "{missed:#?}");
}

/// Issue 11, review of session 41 (5, C5): native ciphertext written over stored images
/// under a made-up transfer syntax UID: `info`, with a `not-inspected` saying the syntax
/// is unknown. Pixel bytes that are random where the stored image's were structured
/// are an alert, whatever the label; ransomware-suspected follows.
#[test]
fn inside_a_window_native_ciphertext_under_a_made_up_syntax_alerts() {
    const FILES: usize = 6;
    let env = Env::new();
    configure(&env, "scrub_mb_per_s = 0\nransomware_files = 4\n");
    let paths = ct_small_store(&env, FILES);
    let watcher = Watcher::start(&env, &[]);
    let archive = env.path("archive");
    open_window(&env, &watcher, &archive, "CHG-42 made-up syntax");
    for (i, path) in paths.iter().enumerate() {
        let mut bytes = fs::read(path).expect("test fixture");
        let pixels = native_pixel_value(&bytes);
        let key = keystream(pixels.len(), 0x4285 + i as u64);
        for (b, k) in bytes[pixels].iter_mut().zip(key) {
            *b = k;
        }
        let bytes = with_transfer_syntax(&bytes, "1.2.826.0.1.3680043.9.9999.42");
        let temp = path.with_extension("tmp");
        fs::write(&temp, bytes).expect("test fixture");
        fs::rename(&temp, path).expect("test fixture");
    }
    let raised = watcher.wait(Duration::from_secs(30), |f, _| {
        count(f, "ransomware-suspected") >= 1
            && paths.iter().all(|p| {
                f.iter().any(|x| {
                    x["kind"] == "pixel-data-changed"
                        && x["severity"] == "alert"
                        && x["path"].as_str() == p.to_str()
                })
            })
    });
    let (_, findings, stderr) = watcher.stop();
    assert!(raised, "{findings:#?}\n{stderr}");
}
