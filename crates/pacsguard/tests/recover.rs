//! `pacsguard recover`: a ransomware simulation on a tree of real DICOM files (pydicom's
//! samples), backups made by the real `cp -a`, `rsync -a` and `tar czf`, the report, the
//! restore, a kill -9 loop during the restore, and the readiness of partial and corrupted
//! backups. Every verdict is the real binary's, and `check` has the last word.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, stderr, stdout};
use serde_json::Value;

/// A ransomware's output: bytes that look random, of the same length.
fn encrypted(bytes: &[u8], seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    bytes
        .iter()
        .map(|b| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b ^ (state as u8)
        })
        .collect()
}

/// `count` of pydicom's sample files copied into `tree/studies/<n % 3>/`, with varied
/// modes and mtimes; returns their paths.
fn pacs_tree(tree: &Path, count: usize) -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = fs::read_dir(pacsguard_testkit::pydicom_files())
        .expect("pydicom samples (scripts/setup-test-deps.sh)")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    samples.sort();
    assert!(samples.len() >= count, "{} samples", samples.len());
    let mut files = Vec::new();
    for (i, sample) in samples.iter().take(count).enumerate() {
        let dir = tree.join(format!("studies/{}", i % 3));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(sample.file_name().expect("name"));
        fs::copy(sample, &path).expect("copy");
        let mode = if i % 2 == 0 { 0o640 } else { 0o444 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        common::set_mtime(
            &path,
            1_600_000_000 + i as i64 * 3600,
            (i as i64 * 7919) % 1_000_000_000,
        );
        files.push(path);
    }
    fs::write(tree.join("studies/notes.txt"), b"reading room schedule\n").expect("write");
    files
}

fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// A file's bytes, mode, uid, gid and mtime (seconds, nanoseconds).
type FileState = (Vec<u8>, u32, u32, u32, i64, i64);

/// What every file of the tree holds, with its mode, owner and mtime.
fn state(files: &[PathBuf]) -> Vec<Option<FileState>> {
    files
        .iter()
        .map(|p| {
            let meta = fs::symlink_metadata(p).ok()?;
            Some((
                fs::read(p).ok()?,
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                meta.mtime(),
                meta.mtime_nsec(),
            ))
        })
        .collect()
}

/// Names in the tree that a restore leaves behind while it works.
fn temporaries(tree: &Path) -> Vec<PathBuf> {
    pacsguard_testkit::files_under(tree)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".pacsguard-recover"))
        .collect()
}

struct Attack {
    encrypted: Vec<PathBuf>,
    deleted: Vec<PathBuf>,
    locked: Vec<PathBuf>,
}

/// Encrypts some files in place, deletes some, encrypts and renames some to `.locked`.
fn ransomware(files: &[PathBuf]) -> Attack {
    let mut attack = Attack {
        encrypted: Vec::new(),
        deleted: Vec::new(),
        locked: Vec::new(),
    };
    for (i, path) in files.iter().enumerate() {
        let bytes = fs::read(path).expect("read");
        match i % 4 {
            0 => {
                fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
                fs::write(path, encrypted(&bytes, i as u64)).expect("encrypt");
                attack.encrypted.push(path.clone());
            }
            1 => {
                fs::remove_file(path).expect("delete");
                attack.deleted.push(path.clone());
            }
            2 => {
                let locked = path.with_extension("dcm.locked");
                fs::write(&locked, encrypted(&bytes, i as u64)).expect("encrypt");
                fs::remove_file(path).expect("delete");
                attack.locked.push(locked);
            }
            _ => {}
        }
    }
    attack
}

#[test]
fn a_ransomware_attack_is_reported_then_undone_from_cp_rsync_and_tar_backups() {
    let env = Env::new();
    let files = pacs_tree(&env.tree, 16);
    let wiped = env.tree.join("studies/2");
    fs::set_permissions(&wiped, fs::Permissions::from_mode(0o750)).expect("chmod");
    env.profile(&[]);
    let before = state(&files);
    let base = env.dir.path().canonicalize().expect("canonical");
    let copy = base.join("backup-cp");
    run_ok("cp", &["-a", env.tree_str(), copy.to_str().expect("utf-8")]);
    let tgz = base.join("backup.tgz");
    run_ok(
        "tar",
        &[
            "czf",
            tgz.to_str().expect("utf-8"),
            "-C",
            base.to_str().expect("utf-8"),
            "tree",
        ],
    );
    let rsynced = base.join("backup-rsync");
    {
        run_ok(
            "rsync",
            &[
                "-a",
                &format!("{}/", env.tree_str()),
                rsynced.to_str().expect("utf-8"),
            ],
        );
    }

    let mut attack = ransomware(&files);
    // And a whole study directory deleted, with what was in it.
    fs::remove_dir_all(&wiped).expect("rm -r");
    attack.locked.retain(|p| p.exists());
    let attacked = state(&files);
    let damaged = attacked.iter().zip(&before).filter(|(a, b)| a != b).count();
    assert_eq!(damaged, 13);

    // The report: every damaged file found in the directory copy, nothing written.
    let out = env.run(&["recover", "--json", "--from", copy.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["counts"]["damaged"], damaged as u64, "{report:#}");
    assert_eq!(
        report["counts"]["recoverable"], damaged as u64,
        "{report:#}"
    );
    for file in report["files"].as_array().expect("files") {
        assert_eq!(file["status"], "recoverable", "{file:#}");
        let source = file["source"]["path"].as_str().expect("a directory copy");
        assert!(
            source.starts_with(copy.to_str().expect("utf-8")),
            "{source}"
        );
    }
    assert_eq!(state(&files), attacked, "the report wrote into the tree");
    assert!(temporaries(&env.tree).is_empty());

    // A backup without any of it: not recoverable, said so.
    let empty = base.join("empty-backup");
    fs::create_dir(&empty).expect("mkdir");
    let out = env.run(&[
        "recover",
        "--json",
        "--from",
        empty.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["counts"]["not_recoverable"], damaged as u64);

    // The restore, from the gzip tar archive alone.
    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        tgz.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    assert_eq!(report["counts"]["restored"], damaged as u64, "{report:#}");
    assert!(report["new_generation"].is_u64(), "{report:#}");
    assert_eq!(
        state(&files),
        before,
        "not byte-identical with mode, owner and mtime"
    );
    assert!(temporaries(&env.tree).is_empty());

    // The ransom notes and encrypted copies are the administrator's to keep or remove:
    // recover never deletes. Then `check` has nothing to say.
    for locked in &attack.locked {
        assert!(locked.exists(), "recover removed {}", locked.display());
        fs::remove_file(locked).expect("remove");
    }
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");

    // Every restored file is on the audit trail.
    let out = env.run(&["audit", "show", "--json", "--action", "recover"]);
    let text = stdout(&out);
    for path in attack
        .encrypted
        .iter()
        .chain(&attack.deleted)
        .chain([&files[2]])
    {
        let name = path.to_str().expect("utf-8");
        assert!(
            text.contains(&format!("restored {name} byte-identical")),
            "{name} not recorded: {text}"
        );
    }

    // Once more from the rsync copy, after a second attack: by digest, whatever the layout.
    {
        let attack = ransomware(&files);
        for locked in &attack.locked {
            fs::remove_file(locked).expect("remove");
        }
        let out = env.run(&[
            "recover",
            "--apply",
            "--json",
            "--from",
            rsynced.to_str().expect("utf-8"),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(state(&files), before);
        let (code, findings, _) = env.check(&[]);
        assert_eq!(code, 0, "{findings:#?}");
    }
}

#[test]
fn a_file_changed_since_the_backup_is_not_recoverable_from_it() {
    let env = Env::new();
    let files = pacs_tree(&env.tree, 3);
    let base = env.dir.path().canonicalize().expect("canonical");
    let copy = base.join("backup-cp");
    // The backup is older than the profile: one file was edited since.
    run_ok("cp", &["-a", env.tree_str(), copy.to_str().expect("utf-8")]);
    let mut edited = fs::read(&files[0]).expect("read");
    let last = edited.len() - 1;
    edited[last] ^= 0xff;
    fs::write(&files[0], &edited).expect("edit");
    env.profile(&[]);
    fs::remove_file(&files[0]).expect("delete");
    fs::remove_file(&files[1]).expect("delete");
    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        copy.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["counts"]["restored"], 1, "{report:#}");
    assert_eq!(report["counts"]["not_recoverable"], 1, "{report:#}");
    assert!(
        !files[0].exists(),
        "an older copy was put in place of the profiled file"
    );
    assert!(files[1].exists());
}

#[test]
fn a_bad_backup_is_an_error_naming_it() {
    let env = Env::new();
    env.profile(&[]);
    let base = env.dir.path().canonicalize().expect("canonical");
    // Nothing damaged yet: a backup that is not there is still an error.
    let nowhere = base.join("nowhere");
    let out = env.run(&["recover", "--from", nowhere.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
    fs::remove_file(env.path("readme.txt")).expect("delete");
    let not_tar = base.join("notes.tar");
    fs::write(&not_tar, vec![b'x'; 2000]).expect("write");
    for from in [not_tar.clone(), base.join("nowhere")] {
        let out = env.run(&["recover", "--from", from.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(
            stderr(&out).contains(from.to_str().expect("utf-8")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn kill_9_during_apply_leaves_every_file_old_or_restored() {
    let env = Env::new();
    let files = pacs_tree(&env.tree, 40);
    env.profile(&[]);
    let originals: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).expect("read")).collect();
    let base = env.dir.path().canonicalize().expect("canonical");
    let copy = base.join("backup-cp");
    run_ok("cp", &["-a", env.tree_str(), copy.to_str().expect("utf-8")]);
    let attacked: Vec<Vec<u8>> = originals
        .iter()
        .enumerate()
        .map(|(i, b)| encrypted(b, i as u64 + 99))
        .collect();
    for (path, bytes) in files.iter().zip(&attacked) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::write(path, bytes).expect("encrypt");
    }
    // The kills are paced on how long this machine takes to get to the restores (the
    // report: open, re-hash, search), so they land during the restores under any load.
    let started = std::time::Instant::now();
    let out = env.run(&["recover", "--from", copy.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = started.elapsed();
    let mut interrupted = 0;
    for i in 0..20u32 {
        let mut child = common::pacsguard()
            .arg("--home")
            .arg(&env.home)
            .args([
                "recover",
                "--apply",
                "--from",
                copy.to_str().expect("utf-8"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(report * (6 + i) / 10);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let mut restored = 0;
        for (k, path) in files.iter().enumerate() {
            let now =
                fs::read(path).unwrap_or_else(|e| panic!("{}: {e} after kill {i}", path.display()));
            assert!(
                now == originals[k] || now == attacked[k],
                "{} is neither old nor restored after kill {i}",
                path.display()
            );
            restored += usize::from(now == originals[k]);
        }
        if restored > 0 && restored < files.len() {
            interrupted += 1;
        }
        eprintln!(
            "kill {i}: {restored} of {} restored, {} temporaries",
            files.len(),
            temporaries(&env.tree).len()
        );
        // Re-encrypt what was restored, so every iteration has work to interrupt.
        if i % 5 == 4 {
            for (k, path) in files.iter().enumerate() {
                if fs::read(path).expect("read") == originals[k] {
                    let tmp = path.with_extension("reencrypt");
                    fs::write(&tmp, &attacked[k]).expect("write");
                    fs::rename(&tmp, path).expect("rename");
                }
            }
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed in the middle of a restore: the loop proved nothing"
    );
    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        copy.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    for (k, path) in files.iter().enumerate() {
        assert_eq!(
            fs::read(path).expect("read"),
            originals[k],
            "{}",
            path.display()
        );
    }
    assert!(
        temporaries(&env.tree).is_empty(),
        "{:?}",
        temporaries(&env.tree)
    );
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    let out = env.run(&["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn readiness_counts_partial_and_corrupted_backups_and_caches_digests() {
    let env = Env::new();
    let files = pacs_tree(&env.tree, 9);
    env.profile(&[]);
    let base = env.dir.path().canonicalize().expect("canonical");
    let copy = base.join("backup-cp");
    run_ok("cp", &["-a", env.tree_str(), copy.to_str().expect("utf-8")]);
    let rel = |p: &Path| p.strip_prefix(&env.tree).expect("in tree").to_path_buf();
    // Missing from the backup, corrupted in place (same size), truncated.
    fs::remove_file(copy.join(rel(&files[0]))).expect("rm");
    let flipped = copy.join(rel(&files[1]));
    let mut bytes = fs::read(&flipped).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::set_permissions(&flipped, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&flipped, &bytes).expect("write");
    let truncated = copy.join(rel(&files[2]));
    fs::set_permissions(&truncated, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&truncated, &bytes[..100]).expect("write");
    let regular: Vec<PathBuf> = pacsguard_testkit::files_under(&env.tree)
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    let total = regular.len() as u64;

    let from = copy.to_str().expect("utf-8");
    let out = env.run(&["recover", "--readiness", "--json", "--from", from]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let roots = report["roots"].as_array().expect("roots");
    let tree_root = roots
        .iter()
        .find(|r| r["path"] == env.tree_str())
        .expect("the tree's root");
    assert_eq!(tree_root["files"], total, "{report:#}");
    assert_eq!(tree_root["restorable_files"], total - 3, "{report:#}");
    let size = |p: &Path| fs::metadata(p).expect("stat").len();
    let all: u64 = regular.iter().map(|p| size(p)).sum();
    let lost = size(&files[0]) + size(&files[1]) + size(&files[2]);
    assert_eq!(tree_root["restorable_bytes"], all - lost, "{report:#}");
    let state_of = |p: &Path| {
        report["unrestorable"]
            .as_array()
            .expect("list")
            .iter()
            .find(|u| u["path"] == p.to_str().expect("utf-8"))
            .map(|u| u["state"].as_str().expect("state").to_owned())
    };
    assert_eq!(state_of(&files[0]).as_deref(), Some("missing"));
    assert_eq!(state_of(&files[1]).as_deref(), Some("corrupt"));
    assert_eq!(state_of(&files[2]).as_deref(), Some("corrupt"));
    let hashed = report["backups"][0]["hashed"].as_u64().expect("hashed");
    assert!(hashed > 0);

    // The nightly run: nothing changed in the backup, nothing is read again.
    let out = env.run(&["recover", "--readiness", "--json", "--from", from]);
    let again = json(&out);
    assert_eq!(again["backups"][0]["hashed"], 0, "{again:#}");
    assert_eq!(again["backups"][0]["cached"], hashed, "{again:#}");
    assert_eq!(again["roots"], report["roots"]);
    // A backup file corrupted since (same size, same mtime): its ctime moved, it is read.
    let good = copy.join(rel(&files[3]));
    let (sec, nsec) = common::mtime(&good);
    let mut bytes = fs::read(&good).expect("read");
    bytes[200] ^= 1;
    fs::set_permissions(&good, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&good, &bytes).expect("write");
    common::set_mtime(&good, sec, nsec);
    let out = env.run(&["recover", "--readiness", "--json", "--from", from]);
    let third = json(&out);
    assert_eq!(third["backups"][0]["hashed"], 1, "{third:#}");
    assert_eq!(state_of_in(&third, &files[3]).as_deref(), Some("corrupt"));

    // A complete tar backup: everything.
    let tar = base.join("full.tar");
    run_ok(
        "tar",
        &[
            "cf",
            tar.to_str().expect("utf-8"),
            "-C",
            env.tree_str(),
            ".",
        ],
    );
    let out = env.run(&[
        "recover",
        "--readiness",
        "--json",
        "--from",
        tar.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn state_of_in(report: &Value, p: &Path) -> Option<String> {
    report["unrestorable"]
        .as_array()?
        .iter()
        .find(|u| u["path"] == p.to_str().expect("utf-8"))
        .map(|u| u["state"].as_str().expect("state").to_owned())
}

#[test]
fn a_log_of_a_growing_root_is_reported_but_never_rolled_back() {
    let env = Env::new();
    let logs = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("pacs.log");
    fs::write(&log, b"line 1\nline 2\n").expect("write");
    let logs_str = logs.to_str().expect("utf-8");
    let out = env.run(&["profile", logs_str, "--policy", "growing"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let copy = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("backup");
    run_ok("cp", &["-a", logs_str, copy.to_str().expect("utf-8")]);
    // Its old prefix rewritten, then lines written since: damaged, and still being used.
    fs::write(&log, b"LINE 1\nline 2\nline 3 written since\n").expect("write");
    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        copy.to_str().expect("utf-8"),
        logs_str,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["counts"]["damaged"], 1, "{report:#}");
    assert_eq!(report["counts"]["restored"], 0, "{report:#}");
    assert_eq!(report["files"][0]["status"], "recoverable", "{report:#}");
    assert_eq!(
        fs::read(&log).expect("read"),
        b"LINE 1\nline 2\nline 3 written since\n"
    );
}

#[test]
fn a_digest_cache_over_max_cache_bytes_is_reported_and_replaced() {
    let env = Env::new();
    env.profile(&[]);
    let copy = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("backup");
    run_ok("cp", &["-a", env.tree_str(), copy.to_str().expect("utf-8")]);
    let cache = env.home.join("recover-cache.json");
    let file = fs::File::create(&cache).expect("create");
    // Sparse: the size alone is over the limit.
    file.set_len(pacsguard_engine::MAX_CACHE_BYTES + 1)
        .expect("set_len");
    let from = copy.to_str().expect("utf-8");
    let out = env.run(&["recover", "--readiness", "--json", "--from", from]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_CACHE_BYTES"))),
        "{report:#}"
    );
    // Replaced by a cache of this run: the next run is complete and uses it.
    assert!(fs::metadata(&cache).expect("stat").len() < pacsguard_engine::MAX_CACHE_BYTES);
    let out = env.run(&["recover", "--readiness", "--json", "--from", from]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A backup copy that goes bad between the search and the restore: a fanotify permission
/// listener (the kernel holds every open of the file until it answers) lets `recover`'s
/// first open of the copy (the search, which hashes it) through untouched and, at the
/// second (the restore), overwrites the copy with other bytes of the same size through
/// a descriptor it opened beforehand, then lets the open through: a failing disk or a
/// backup rewritten in between, at an exact moment. Returns the opens it saw.
fn spoil_at_second_open(copy: &Path) -> std::thread::JoinHandle<usize> {
    use nix::sys::fanotify::{
        EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
    };
    use std::os::unix::fs::FileExt as _;
    let writer = fs::OpenOptions::new()
        .write(true)
        .open(copy)
        .expect("open the copy for writing before the mark");
    let size = writer.metadata().expect("stat").len() as usize;
    let group = Fanotify::init(
        InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
        EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE,
    )
    .expect("fanotify (root, CONFIG_FANOTIFY_ACCESS_PERMISSIONS)");
    let root = fs::File::open("/").expect("root dir");
    group
        .mark(
            MarkFlags::FAN_MARK_ADD,
            MaskFlags::FAN_OPEN_PERM,
            &root,
            Some(copy),
        )
        .expect("mark the copy");
    std::thread::spawn(move || {
        let mut opens = 0;
        // Bounded: a run that never opens the copy twice fails the test, never hangs it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while opens < 2 && std::time::Instant::now() < deadline {
            let events = match group.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EAGAIN) => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => panic!("fanotify read: {e}"),
            };
            for event in events {
                opens += 1;
                if opens == 2 {
                    writer
                        .write_all_at(&vec![0x5A; size], 0)
                        .expect("spoil the copy");
                    writer.sync_all().expect("sync");
                }
                if let Some(fd) = event.fd() {
                    group
                        .write_response(FanotifyResponse::new(fd, Response::FAN_ALLOW))
                        .expect("allow");
                }
            }
        }
        opens
    })
}

#[test]
fn a_copy_that_fails_while_restored_falls_back_to_the_next_backup() {
    if !common::is_root() {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let env = Env::new();
    let files = pacs_tree(&env.tree, 3);
    env.profile(&[]);
    let before = state(&files);
    let base = env.dir.path().canonicalize().expect("canonical");
    let first = base.join("backup-1");
    let second = base.join("backup-2");
    run_ok(
        "cp",
        &["-a", env.tree_str(), first.to_str().expect("utf-8")],
    );
    run_ok(
        "rsync",
        &[
            "-a",
            &format!("{}/", env.tree_str()),
            second.to_str().expect("utf-8"),
        ],
    );
    let victim = &files[0];
    fs::write(victim, encrypted(&fs::read(victim).expect("read"), 7)).expect("encrypt");
    let rel = victim.strip_prefix(&env.tree).expect("in the tree");
    let spoiled = first.join(rel);
    let listener = spoil_at_second_open(&spoiled);
    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        first.to_str().expect("utf-8"),
        "--from",
        second.to_str().expect("utf-8"),
    ]);
    assert_eq!(listener.join().expect("listener"), 2);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    let file = &report["files"][0];
    assert_eq!(file["status"], "restored", "{report:#}");
    let used = file["source"]["path"].as_str().expect("a directory copy");
    assert_eq!(
        used,
        second.join(rel).to_str().expect("utf-8"),
        "{report:#}"
    );
    let detail = file["detail"].as_str().expect("why the second copy");
    assert!(
        detail.contains("copy 2 of 2") && detail.contains("backup-1"),
        "{detail}"
    );
    assert_eq!(state(&files), before);
    assert!(temporaries(&env.tree).is_empty());
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
}

#[test]
fn a_hard_linked_pair_comes_back_as_one_inode() {
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    let files = pacs_tree(&env.tree, 4);
    // Two pairs of names for one inode each (a PACS deduplicating identical instances).
    let pair = |file: &Path, name: &str| {
        let other = file.with_file_name(name);
        fs::hard_link(file, &other).expect("ln");
        other
    };
    let in_place = (files[0].clone(), pair(&files[0], "same-as-first.dcm"));
    let replaced = (files[1].clone(), pair(&files[1], "same-as-second.dcm"));
    env.profile(&[]);
    let profiled_ino = fs::metadata(&replaced.0).expect("stat").ino();
    let base = env.dir.path().canonicalize().expect("canonical");
    let backup = base.join("backup");
    run_ok(
        "cp",
        &["-a", env.tree_str(), backup.to_str().expect("utf-8")],
    );

    // One inode encrypted in place (both names damaged); in the other pair, one name
    // replaced by an encrypted file of its own (the other name intact).
    let bytes = fs::read(&in_place.0).expect("read");
    fs::write(&in_place.0, encrypted(&bytes, 3)).expect("encrypt in place");
    let bytes = fs::read(&replaced.1).expect("read");
    fs::remove_file(&replaced.1).expect("rm");
    fs::write(&replaced.1, encrypted(&bytes, 4)).expect("encrypted copy");

    let out = env.run(&[
        "recover",
        "--apply",
        "--json",
        "--from",
        backup.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let meta = |p: &Path| fs::metadata(p).expect("stat");
    for (a, b) in [&in_place, &replaced] {
        assert_eq!(
            meta(a).ino(),
            meta(b).ino(),
            "{} and {} split",
            a.display(),
            b.display()
        );
        assert_eq!(meta(a).nlink(), 2);
        assert_eq!(fs::read(a).expect("read"), fs::read(b).expect("read"));
    }
    // The intact name's inode, the profile's own, is the one both names hold again.
    assert_eq!(meta(&replaced.1).ino(), profiled_ino);
    assert_eq!(
        fs::read(&in_place.1).expect("read"),
        fs::read(backup.join(in_place.1.strip_prefix(&env.tree).expect("rel"))).expect("backup")
    );
    assert!(temporaries(&env.tree).is_empty());
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
}

/// A hostile tar backup (members named `../..`, absolute, a link out of the tree): a
/// backup is searched by digest, so its member names choose nothing. The damaged file is
/// restored at the path the profile names, and nothing is written where the names point.
#[test]
fn a_tar_backup_whose_members_point_outside_the_tree_writes_only_the_profiled_path() {
    let env = Env::new();
    env.profile(&[]);
    let root = env.dir.path().canonicalize().expect("canonical");
    let good = fs::read(env.path("readme.txt")).expect("read");
    fs::write(env.path("readme.txt"), b"encrypted by ransomware").expect("damage");
    let tar = root.join("hostile.tar");
    let escaped = root.join("escaped");
    // Python's tarfile writes the names as given (GNU tar would strip them).
    let script = format!(
        "import io, tarfile, sys\n\
         t = tarfile.open(sys.argv[1], 'w')\n\
         for name in ['../../../..{escaped}', '{escaped}.abs', 'ok/../../x']:\n\
         \x20   ti = tarfile.TarInfo(name); data = open(sys.argv[2], 'rb').read(); ti.size = len(data)\n\
         \x20   t.addfile(ti, io.BytesIO(data))\n\
         ti = tarfile.TarInfo('link-out'); ti.type = tarfile.SYMTYPE; ti.linkname = '/etc/passwd'; t.addfile(ti)\n\
         t.close()\n",
        escaped = escaped.display()
    );
    let good_copy = root.join("good");
    fs::write(&good_copy, &good).expect("write");
    let out = Command::new("python3")
        .args(["-c", &script])
        .arg(&tar)
        .arg(&good_copy)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["recover", "--apply", "--from", tar.to_str().expect("utf-8")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(fs::read(env.path("readme.txt")).expect("read"), good);
    for leaked in [
        escaped.clone(),
        escaped.with_extension("abs"),
        root.join("x"),
    ] {
        assert!(!leaked.exists(), "{} was written", leaked.display());
    }
    let (code, _, _) = env.check(&[]);
    assert_eq!(code, 0);
}
