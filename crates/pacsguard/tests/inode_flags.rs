//! Inode flags (`chattr +i`, `+a`, `-i`, with the real chattr) are recorded in the profile
//! and a change is a finding, in `check` and while `watch` runs; capabilities and ACLs set
//! by the real `setcap` and `setfacl` are shown decoded.

mod common;

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, one, pacsguard, stderr};
use serde_json::Value;

fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("chattr runs (e2fsprogs)")
        .success()
}

/// Takes the flags off again so the temporary directory can be removed.
struct Unflag<'a>(&'a Path);

impl Drop for Unflag<'_> {
    fn drop(&mut self) {
        let _ = chattr("-ia", self.0);
    }
}

/// chattr needs CAP_LINUX_IMMUTABLE and a file system that keeps the flags (ext4, xfs,
/// btrfs, tmpfs since 6.0): where it cannot, there is nothing to test.
fn flags_supported(env: &Env) -> bool {
    let probe = env.dir.path().join("probe");
    fs::write(&probe, b"x").expect("write");
    let ok = chattr("+i", &probe);
    let _ = chattr("-i", &probe);
    if !ok {
        eprintln!("skipped: chattr +i does not work here (not root, or the file system)");
    }
    ok
}

#[test]
fn chattr_is_a_finding_in_check() {
    let env = Env::new();
    if !flags_supported(&env) {
        return;
    }
    let file = env.path("readme.txt");
    let _unflag = Unflag(&file);
    env.profile(&[]);

    assert!(chattr("+i", &file));
    let (code, findings, doc) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    let changed = one(&findings, "metadata-changed", "readme.txt");
    assert!(changed.fields.contains(&"flags".to_string()), "{changed:?}");
    assert_eq!(changed.severity, "alert");
    let detail = doc["findings"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("flags none -> immutable"), "{detail}");

    // The reviewed change accepted (immutable is now the baseline), then made
    // append-only instead: both directions are seen.
    let accepted = env.run(&["accept", "--all", "--reason", "made immutable on purpose"]);
    assert_eq!(accepted.status.code(), Some(0), "{}", stderr(&accepted));
    assert!(chattr("-i", &file) && chattr("+a", &file));
    let (code, findings, doc) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    one(&findings, "metadata-changed", "readme.txt");
    let detail = doc["findings"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("flags immutable -> append-only"),
        "{detail}"
    );
}

#[test]
fn chattr_is_a_finding_while_watching() {
    // chattr raises no inotify event of its own (it opens and closes the file): the scrub
    // finds it too, when it goes round the small tree continuously.
    chattr_while_watching("scrub_mb_per_s = 100\nscrub_min_cycle_seconds = 0\n", 60);
}

#[test]
fn chattr_is_seen_in_real_time_without_the_scrub() {
    // No scrub: only the watcher's flag poll can see it, within seconds.
    chattr_while_watching("scrub_mb_per_s = 0\n", 5);
}

/// `chattr +i`, `-i`, `+a` on a profiled file while `watch` runs with `watch_config`: each
/// a `metadata-changed` finding within `within_s` seconds.
fn chattr_while_watching(watch_config: &str, within_s: u64) {
    let env = Env::new();
    if !flags_supported(&env) {
        return;
    }
    let file = env.path("readme.txt");
    let _unflag = Unflag(&file);
    env.profile(&[]);
    let config = env.home.join("config.toml");
    let mut text = fs::read_to_string(&config).expect("config");
    text.push_str("\n[watch]\n");
    text.push_str(watch_config);
    fs::write(&config, text).expect("config");

    let mut child = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .args(["watch", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let findings: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&findings);
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                sink.lock().expect("lock").push(value);
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let text = Arc::clone(&stderr);
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut text = text.lock().expect("lock");
            text.push_str(&line);
            text.push('\n');
        }
    });
    let wait = |within: u64, done: &dyn Fn(&[Value], &str) -> bool| {
        let end = Instant::now() + Duration::from_secs(within);
        while Instant::now() < end {
            if done(
                &findings.lock().expect("lock"),
                &stderr.lock().expect("lock"),
            ) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(
        wait(60, &|_, err| err.contains("watching for changes")),
        "{}",
        stderr.lock().expect("lock")
    );
    let flagged = |want: &'static str| {
        move |findings: &[Value], _: &str| {
            findings.iter().any(|f| {
                f["kind"] == "metadata-changed"
                    && f["detail"].as_str().is_some_and(|d| d.contains(want))
            })
        }
    };
    for (flag, want) in [
        ("+i", "flags none -> immutable"),
        ("-i", "flags immutable -> none"),
        ("+a", "flags none -> append-only"),
    ] {
        assert!(chattr(flag, &file));
        assert!(
            wait(within_s, &flagged(want)),
            "no finding for chattr {flag}: {:#?}\n{}",
            findings.lock().expect("lock"),
            stderr.lock().expect("lock")
        );
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

#[test]
fn capabilities_and_acls_are_shown_decoded() {
    let env = Env::new();
    let file = env.path("readme.txt");
    env.profile(&[]);
    let setcap = Command::new("setcap")
        .args(["cap_net_raw=ep"])
        .arg(&file)
        .status()
        .expect("setcap runs (libcap2-bin)");
    let setfacl = Command::new("setfacl")
        .args(["-m", "user:root:r--"])
        .arg(env.path("study"))
        .status()
        .expect("setfacl runs (acl)");
    if !setcap.success() || !setfacl.success() {
        eprintln!("skipped: setcap/setfacl need root and a file system with xattrs");
        return;
    }
    let (code, _, doc) = env.check(&[]);
    assert_eq!(code, 1);
    let details: Vec<&str> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("xattr:security.capability (absent) -> cap_net_raw=ep")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("user:root:r--") && d.contains("xattr:system.posix_acl_access")),
        "{details:#?}"
    );
}
