//! The harness of the `watch` tests: a running `pacsguard watch --json`, read line by line
//! as it reports, and the trees they guard.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pacsguard_testkit::{DicomBuilder, Pixels};
use serde_json::Value;

use crate::common::process::{self, Running};
use crate::common::{self, Env, pacsguard};

/// A running `pacsguard watch --json`: its findings as they are printed, and the
/// [`Running`] it derefs to (stderr, `child`, signals).
pub struct Watcher {
    process: Running,
    findings: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl std::ops::Deref for Watcher {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.process
    }
}

impl std::ops::DerefMut for Watcher {
    fn deref_mut(&mut self) -> &mut Running {
        &mut self.process
    }
}

impl Watcher {
    /// Starts the watcher and waits until it is watching (the catch-up is done).
    pub fn start(env: &Env, args: &[&str]) -> Watcher {
        Watcher::start_with(env, args, pacsguard())
    }

    /// The same, without CAP_SYS_ADMIN when run as root: inotify alone, as for a
    /// non-root user or under a kernel without fanotify.
    pub fn start_inotify_only(env: &Env, args: &[&str]) -> Watcher {
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

    pub fn start_with(env: &Env, args: &[&str], command: std::process::Command) -> Watcher {
        let watcher = Watcher::spawn_with(env, args, command);
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

    /// The same, returned as soon as it runs (a test acts during its catch-up).
    pub fn spawn_with(env: &Env, args: &[&str], mut command: std::process::Command) -> Watcher {
        command
            .arg("--home")
            .arg(&env.home)
            .arg("watch")
            .arg("--json")
            .args(args);
        let findings = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&findings);
        let process = Running::spawn_reading(command, "pacsguard watch", move |line| {
            let value: Value = serde_json::from_str(line).expect("one JSON object per line");
            sink.lock()
                .expect("test fixture")
                .push((Instant::now(), value));
        });
        Watcher { process, findings }
    }

    pub fn findings(&self) -> Vec<Value> {
        values(&self.findings)
    }

    /// Polls until `done` holds (true) or the timeout passes (false).
    pub fn wait(&self, timeout: Duration, done: impl Fn(&[Value], &str) -> bool) -> bool {
        process::poll(timeout, || done(&self.findings(), &self.stderr()))
    }

    /// When the first finding of `kind` was printed.
    pub fn first(&self, kind: &str) -> Option<Instant> {
        self.findings
            .lock()
            .expect("test fixture")
            .iter()
            .find(|(_, v)| v["kind"] == kind)
            .map(|(t, _)| *t)
    }

    /// When the first finding `which` takes was printed.
    pub fn first_where(&self, which: impl Fn(&Value) -> bool) -> Option<Instant> {
        self.findings
            .lock()
            .expect("test fixture")
            .iter()
            .find(|(_, v)| which(v))
            .map(|(t, _)| *t)
    }

    /// SIGTERM, then the exit status and everything printed (the readers are done).
    pub fn stop(self) -> (i32, Vec<Value>, String) {
        let Watcher { process, findings } = self;
        let stopped = process.terminate();
        (
            stopped.code.expect("exit status, not a signal"),
            values(&findings),
            stopped.stderr,
        )
    }
}

impl Watcher {
    /// SIGKILL (a crash, or an attacker ending the watcher), then everything it printed
    /// before it died (the readers are done).
    pub fn kill(self) -> (Vec<Value>, String) {
        let Watcher { process, findings } = self;
        process.signal(nix::sys::signal::Signal::SIGKILL);
        let killed = process.exit_within(Duration::from_secs(30));
        assert_eq!(killed.code, None, "ended by the signal");
        (values(&findings), killed.stderr)
    }
}

fn values(findings: &Mutex<Vec<(Instant, Value)>>) -> Vec<Value> {
    findings
        .lock()
        .expect("test fixture")
        .iter()
        .map(|(_, v)| v.clone())
        .collect()
}

/// A `python3 -c SCRIPT ARGS…` attacker, writer or receiver, returned once it has printed
/// its first line, which must be `said` (the files are open and written as the test
/// needs). A test's window for what `watch` reports runs from then, not from the spawn:
/// python3's own start took over a second on a loaded machine.
pub fn python_saying(
    script: &str,
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
    said: &str,
) -> std::process::Child {
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("test fixture"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("test fixture");
    assert_eq!(line.trim(), said);
    child
}

pub fn configure(env: &Env, watch: &str) {
    let config = env.home.join("config.toml");
    let mut text = fs::read_to_string(&config).expect("test fixture");
    text.push_str("\n[watch]\n");
    text.push_str(watch);
    fs::write(&config, text).expect("test fixture");
}

/// How often each (kind, path relative to the tree) was reported.
pub fn tally(findings: &[Value], tree: &Path) -> HashMap<(String, String), usize> {
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
pub fn expected_status(findings: &[Value]) -> i32 {
    i32::from(findings.iter().any(|f| f["severity"] != "info"))
}

pub fn kinds(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A tree of small CT instances with real pixel data, profiled `append-only`.
pub fn image_store(env: &Env, count: usize) -> Vec<std::path::PathBuf> {
    image_store_sized(env, count, 65_536)
}

/// The same with `pixel_bytes` of Pixel Data per image: 16-bit values of 12 bits, as a
/// CT's are (structured: no 4 KiB block reads as random, about 6.8 bits/byte), each
/// image's own.
pub fn image_store_sized(env: &Env, count: usize, pixel_bytes: usize) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for i in 0..count {
        let dir = env.path(&format!("archive/study{}", i % 5));
        fs::create_dir_all(&dir).expect("test fixture");
        let pixels: Vec<u8> = (0..pixel_bytes / 2)
            .flat_map(|j| (((j * 31 + i) % 4096) as u16).to_le_bytes())
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

pub fn keystream(len: usize, seed: u64) -> Vec<u8> {
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
