//! Log rotation in `growing` roots, done by the real `logrotate` (a config file and a
//! state file in the temporary directory, `logrotate -f -s STATE CONF`): a rotation is
//! `moved` (info) and the restarted log expected, not an alert; a log rewritten in place
//! still is one.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use common::{Env, Found, one, stderr};

fn append(path: &Path, text: &str) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open log");
    file.write_all(text.as_bytes()).expect("append");
}

/// Runs logrotate once, forced, with `options` for `log`.
fn logrotate(env: &Env, log: &Path, options: &str) {
    let conf = env.dir.path().join("logrotate.conf");
    fs::write(&conf, format!("{} {{\n{options}\n}}\n", log.display()))
        .expect("write logrotate.conf");
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(env.dir.path().join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("logrotate runs (scripts/setup-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn growing_env() -> (Env, std::path::PathBuf) {
    let env = Env::new();
    let log = env.path("app.log");
    append(&log, "day 1: started\n");
    env.profile(&["--policy", "growing"]);
    (env, log)
}

fn only_info(findings: &[Found]) {
    assert!(
        findings.iter().all(|f| f.severity == "info"),
        "{findings:#?}"
    );
}

#[test]
fn numbered_rotation_is_a_chain_of_moves_and_a_new_log() {
    let (env, log) = growing_env();
    append(&log, "day 1: more\n");
    logrotate(&env, &log, "rotate 3\ncreate 0644");
    append(&log, "day 2: started\n");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    let moved = one(&findings, "moved", "app.log.1");
    assert_eq!(moved.from.as_deref(), Some("app.log"));
    one(&findings, "added", "app.log");
    only_info(&findings);

    // A second rotation before the next profile: the profiled log is now app.log.2.
    logrotate(&env, &log, "rotate 3\ncreate 0644");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    assert_eq!(
        one(&findings, "moved", "app.log.2").from.as_deref(),
        Some("app.log")
    );
    only_info(&findings);

    // Profiled with its rotations, the whole chain moves on by one: one move each.
    env.profile(&[]);
    logrotate(&env, &log, "rotate 3\ncreate 0644");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    for (from, to) in [
        ("app.log", "app.log.1"),
        ("app.log.1", "app.log.2"),
        ("app.log.2", "app.log.3"),
    ] {
        assert_eq!(one(&findings, "moved", to).from.as_deref(), Some(from));
    }
    one(&findings, "added", "app.log");
    only_info(&findings);
}

#[test]
fn dateext_rotation_is_a_move() {
    let (env, log) = growing_env();
    logrotate(&env, &log, "rotate 3\ncreate 0644\ndateext");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    let moved: Vec<&Found> = findings.iter().filter(|f| f.kind == "moved").collect();
    assert_eq!(moved.len(), 1, "{findings:#?}");
    assert!(moved[0].path.starts_with("app.log-"), "{findings:#?}");
    one(&findings, "added", "app.log");
    only_info(&findings);
}

#[test]
fn copytruncate_is_a_copy_and_a_restarted_log() {
    let (env, log) = growing_env();
    append(&log, "day 1: more\n");
    logrotate(&env, &log, "rotate 3\ncopytruncate");
    append(&log, "day 2: started\n");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    assert_eq!(
        one(&findings, "moved", "app.log.1").from.as_deref(),
        Some("app.log")
    );
    one(&findings, "added", "app.log");
    only_info(&findings);
}

#[test]
fn a_compressed_rotation_is_one_move() {
    let (env, log) = growing_env();
    logrotate(&env, &log, "rotate 3\ncreate 0644\ncompress\ndelaycompress");
    env.profile(&[]); // app.log.1 and a new app.log are profiled
    append(&log, "day 2\n");
    logrotate(&env, &log, "rotate 3\ncreate 0644\ncompress\ndelaycompress");
    let (_, findings, _) = env.check(&[]);
    assert_eq!(
        one(&findings, "moved", "app.log.2.gz").from.as_deref(),
        Some("app.log.1")
    );
    assert_eq!(
        one(&findings, "moved", "app.log.1").from.as_deref(),
        Some("app.log")
    );
    one(&findings, "added", "app.log");
    assert!(
        findings.iter().all(|f| f.severity != "alert"),
        "{findings:#?}"
    );
    assert_eq!(findings.len(), 3, "{findings:#?}");
}

#[test]
fn what_is_not_a_rotation_still_alerts() {
    let (env, log) = growing_env();
    // Truncated and rewritten in place, with a copy under a rotation name that is not the
    // profiled content: not a copytruncate.
    fs::write(env.path("app.log.1"), "forged history\n").expect("write");
    fs::write(&log, "x\n").expect("truncate and write");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    assert_eq!(
        one(&findings, "content-changed", "app.log").severity,
        "alert"
    );

    // A rename to a name that is not a rotation of the log: a plain move, a warning.
    let (env, log) = growing_env();
    fs::rename(&log, env.path("hidden")).expect("rename");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    assert_eq!(one(&findings, "moved", "hidden").severity, "warning");
}

/// Review finding: a nightly rotation with `compress`, reviewed and accepted each day,
/// called `app.log.1.gz` → `app.log.2.gz` a plain move (warning) and on the third day
/// alerted that `app.log.2.gz` was "truncated" (another file now at that name).
#[test]
fn a_nightly_compressed_rotation_never_alerts() {
    for options in [
        "rotate 5\ncreate 0644\ncompress",
        "rotate 5\ncreate 0644\ncompress\ndelaycompress",
    ] {
        let (env, log) = growing_env();
        for day in 2..=5 {
            logrotate(&env, &log, options);
            append(&log, &format!("day {day}\n"));
            let (_, findings, _) = env.check(&[]);
            assert!(
                findings.iter().all(|f| f.severity != "alert"),
                "day {day}, {options:?}: {findings:#?}"
            );
            for moved in findings.iter().filter(|f| f.kind == "moved") {
                let from = moved.from.as_deref().unwrap_or_default();
                if from.ends_with(".gz") {
                    assert_eq!(moved.severity, "info", "{moved:?}");
                }
            }
            let out = env.run(&["accept", "--all", "--reason", "nightly rotation reviewed"]);
            assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
        }
    }
}
