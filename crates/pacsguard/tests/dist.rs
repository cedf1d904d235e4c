//! The systemd units in `dist/` as systemd itself reads them.

use std::fs;
use std::process::Command;

/// The unit `name` of `dist/`, pointed at the binary under test.
fn unit_named(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist")
        .join(name);
    let text = fs::read_to_string(&source).expect("the unit in dist/");
    assert!(text.contains("ExecStart=/usr/local/bin/pacsguard "));
    let text = text.replace("/usr/local/bin/pacsguard", env!("CARGO_BIN_EXE_pacsguard"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    fs::write(&path, text).expect("write unit");
    (dir, path)
}

fn unit() -> (tempfile::TempDir, std::path::PathBuf) {
    unit_named("pacsguard-watch.service")
}

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    let (_dir, path) = unit();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup-test-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_systemd_unit_is_hardened() {
    let (_dir, path) = unit();
    // Exposure 3.0 of 10 at most ("OK"): the watcher must read everything and use
    // fanotify, so it cannot reach the lowest levels.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=30"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_gateways_unit_verifies_and_is_hardened() {
    let (_dir, path) = unit_named("pacsguard-gateway.service");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup-test-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    // The gateway needs no capability but binding port 104: it must rate lower than
    // the watcher.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=25"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
