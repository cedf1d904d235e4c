//! `pacsguard watch` against real file activity: the real binary, real inotify, real
//! signals. Every test reads the findings the watcher prints (`--json`, one per line) and
//! checks that each change is reported exactly once.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, pacsguard};
use pacsguard_testkit::{DicomBuilder, Pixels};
use serde_json::Value;

/// A running `pacsguard watch --json`.
struct Watcher {
    child: Child,
    findings: Arc<Mutex<Vec<(Instant, Value)>>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    /// Starts the watcher and waits until it is watching (the catch-up is done).
    fn start(env: &Env, args: &[&str]) -> Watcher {
        Watcher::start_with(env, args, pacsguard())
    }

    /// The same, without CAP_SYS_ADMIN when run as root: inotify alone, as for a
    /// non-root user or under a kernel without fanotify.
    fn start_inotify_only(env: &Env, args: &[&str]) -> Watcher {
        if !common::is_root() {
            return Watcher::start(env, args);
        }
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--bounding-set", "-sys_admin", "--"])
            .arg(env!("CARGO_BIN_EXE_pacsguard"));
        let watcher = Watcher::start_with(env, args, command);
        assert!(
            watcher.stderr().contains("inotify alone"),
            "{}",
            watcher.stderr()
        );
        watcher
    }

    fn start_with(env: &Env, args: &[&str], mut command: std::process::Command) -> Watcher {
        let mut child = command
            .arg("--home")
            .arg(&env.home)
            .arg("watch")
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pacsguard watch starts");
        let findings = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&findings);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let line = line.expect("utf-8 line");
                let value: Value = serde_json::from_str(&line).expect("one JSON object per line");
                sink.lock()
                    .expect("test fixture")
                    .push((Instant::now(), value));
            }
        });
        let err = child.stderr.take().expect("stderr");
        let text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let line = line.expect("utf-8 line");
                let mut text = text.lock().expect("test fixture");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let watcher = Watcher {
            child,
            findings,
            stderr,
        };
        let ready = watcher.wait(Duration::from_secs(120), |_, err| {
            err.contains("watching for changes") || err.contains("error")
        });
        assert!(ready, "watch did not start: {}", watcher.stderr());
        assert!(
            watcher.stderr().contains("watching for changes"),
            "{}",
            watcher.stderr()
        );
        watcher
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("test fixture").clone()
    }

    fn findings(&self) -> Vec<Value> {
        self.findings
            .lock()
            .expect("test fixture")
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Polls until `done` holds (true) or the timeout passes (false).
    fn wait(&self, timeout: Duration, done: impl Fn(&[Value], &str) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if done(&self.findings(), &self.stderr()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// When the first finding of `kind` was printed.
    fn first(&self, kind: &str) -> Option<Instant> {
        self.findings
            .lock()
            .expect("test fixture")
            .iter()
            .find(|(_, v)| v["kind"] == kind)
            .map(|(t, _)| *t)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("test fixture"));
        nix::sys::signal::kill(pid, signal).expect("signal");
    }

    /// SIGTERM, then the exit status and everything printed.
    fn stop(mut self) -> (i32, Vec<Value>, String) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.child.wait().expect("watch exits");
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(200));
        (
            status.code().expect("exit status, not a signal"),
            self.findings(),
            self.stderr(),
        )
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn configure(env: &Env, watch: &str) {
    let config = env.home.join("config.toml");
    let mut text = fs::read_to_string(&config).expect("test fixture");
    text.push_str("\n[watch]\n");
    text.push_str(watch);
    fs::write(&config, text).expect("test fixture");
}

/// How often each (kind, path relative to the tree) was reported.
fn tally(findings: &[Value], tree: &Path) -> HashMap<(String, String), usize> {
    let prefix = format!("{}/", tree.display());
    let mut counts = HashMap::new();
    for f in findings {
        let path = f["path"].as_str().unwrap_or_default();
        let rel = path.strip_prefix(&prefix).unwrap_or(path).to_string();
        *counts
            .entry((f["kind"].as_str().unwrap_or_default().to_string(), rel))
            .or_insert(0) += 1;
    }
    counts
}

/// 0 when everything reported was info, else 1. (Other tests write on the same mount,
/// which fanotify sees, so a watcher may rightly report `events-lost` at any time.)
fn expected_status(findings: &[Value]) -> i32 {
    i32::from(findings.iter().any(|f| f["severity"] != "info"))
}

fn kinds(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

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

/// 100,000 files created as fast as one thread can in new nested directories, and every
/// profiled file rewritten: each reported exactly once.
fn burst(watch_config: &str, beyond_the_limit: bool) {
    burst_with(watch_config, beyond_the_limit, Watcher::start);
}

fn burst_with(watch_config: &str, beyond_the_limit: bool, start: fn(&Env, &[&str]) -> Watcher) {
    const TOP: usize = 100;
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
    assert!(counts.iter().all(|(k, n)| *n == 1 || k.0 == "events-lost"));
}

/// A tree of small CT instances with real pixel data, profiled `append-only`.
fn image_store(env: &Env, count: usize) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for i in 0..count {
        let dir = env.path(&format!("archive/study{}", i % 5));
        fs::create_dir_all(&dir).expect("test fixture");
        let pixels: Vec<u8> = (0..65_536u32)
            .map(|j| ((j * 31 + i as u32) % 251) as u8)
            .collect();
        let bytes = DicomBuilder::ct(&format!("1.2.826.0.1.3680043.10.1137.9.{i}"))
            .pixels(Pixels::Native(pixels))
            .build();
        let path = dir.join(format!("{i}.dcm"));
        fs::write(&path, bytes).expect("test fixture");
        paths.push(path);
    }
    env.profile(&["--policy", "append-only"]);
    paths
}

fn keystream(len: usize, seed: u64) -> Vec<u8> {
    // xorshift: stands in for a cipher's output, as random-looking as one.
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
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
