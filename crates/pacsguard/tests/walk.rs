//! Walking what an attacker can build: trees deeper than the old limit and paths longer
//! than PATH_MAX, made with `openat`/`mkdirat` by python3 (no path-based tool can), then
//! profiled and checked by the real binary.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Env, one};

/// `pacsguard_fs::MAX_TREE_DEPTH`.
const MAX_TREE_DEPTH: usize = 4096;

/// Builds (or walks down) `levels` directories named `name` below `root`, one `openat` at
/// a time, and writes `content` to `file` at the bottom.
fn deep(root: &Path, levels: usize, name: &str, file: &str, content: &str) {
    let script = r#"
import os, sys
root, levels, name, file, content = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
for _ in range(levels):
    try:
        os.mkdir(name, dir_fd=fd)
    except FileExistsError:
        pass
    next_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    os.close(fd)
    fd = next_fd
out = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
os.write(out, content.encode())
os.close(out)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(root)
        .arg(levels.to_string())
        .args([name, file, content])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "building the deep tree");
}

fn remove(path: &Path) {
    let status = Command::new("rm").arg("-rf").arg(path).status();
    assert!(status.expect("rm runs").success());
}

#[test]
fn an_implant_below_the_old_depth_limit_is_hashed_and_checked() {
    let env = Env::new();
    // Depth 1,030 (the old limit was 1,024, below which nothing was hashed or screened),
    // and a second chain whose paths pass PATH_MAX (30 names of 200 bytes: 6,000 bytes).
    deep(&env.tree, 1030, "d", "implant", "MZ version 1");
    let long = "n".repeat(200);
    deep(&env.tree, 30, &long, "far", "far away");
    env.profile(&[]);
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:#?}");
    assert!(findings.is_empty(), "{findings:#?}");

    deep(&env.tree, 1030, "d", "implant", "MZ version 2");
    deep(&env.tree, 30, &long, "far", "changed!");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    let implant = format!("{}implant", "d/".repeat(1030));
    let far = format!("{}far", format!("{long}/").repeat(30));
    one(&findings, "content-changed", &implant);
    one(&findings, "content-changed", &far);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    remove(&env.path("d"));
    remove(&env.path(&long));
}

#[test]
fn a_tree_past_the_depth_limit_is_a_warning_not_a_clean_check() {
    let env = Env::new();
    deep(&env.tree, MAX_TREE_DEPTH + 1, "d", "implant", "MZ");
    let out = env.run(&["profile", env.tree_str(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1, "{findings:#?}");
    let deepest = "d/".repeat(MAX_TREE_DEPTH);
    let limit = one(&findings, "not-descended", deepest.trim_end_matches('/'));
    assert_eq!(limit.severity, "warning");
    remove(&env.path("d"));

    // At the limit exactly, everything is verified and nothing is said.
    let env = Env::new();
    deep(&env.tree, MAX_TREE_DEPTH - 1, "d", "implant", "MZ");
    env.profile(&[]);
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:#?}");
    remove(&env.path("d"));
}

/// Sets the flag when dropped, also when an assertion fails (the renamer then stops).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_directory_renamed_away_and_back_during_check_is_found_again_and_nothing_else_is_said() {
    // A study directory is renamed to a temporary name and back, over and over, while
    // `check` runs: the walk and the hashing look for it again (`MAX_VANISHED_LOOKUPS`),
    // so every finding is about the study (or `archive`, changed on every reading of it)
    // and of the kinds a race can give. A directory still gone after the looks is said
    // (`unreadable`) and what it held is judged not found (`removed`), on purpose: hiding
    // it let an attacker who makes a directory vanish at the moment it is walked hide a
    // deletion at every check (review s10-r15).
    // Most checks see the study whole; the last one, without the race, is clean.
    let env = Env::new();
    let series = env.path("archive/study/series");
    std::fs::create_dir_all(&series).expect("mkdir");
    for i in 0..300 {
        std::fs::write(series.join(format!("IM{i:04}.dcm")), format!("DICM {i}")).expect("write");
    }
    env.profile(&[]);
    let (away, back) = (env.path("archive/study.tmp"), env.path("archive/study"));
    let stop = AtomicBool::new(false);
    let mut whole = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&back, &away).expect("away");
                std::fs::rename(&away, &back).expect("back");
            }
        });
        let _stop = StopOnDrop(&stop);
        for _ in 0..12 {
            let (_, findings, _) = env.check(&[]);
            // `archive` itself changes all the time: it may be said to have changed
            // while it was read on every reading (a warning naming it, issue 15).
            assert!(
                findings.iter().all(|f| (f.path.starts_with("archive/study")
                    && matches!(
                        f.kind.as_str(),
                        "moved" | "unreadable" | "metadata-changed" | "removed"
                    ))
                    || (f.path == "archive" && f.kind == "unreadable" && f.severity == "warning")),
                "{findings:#?}"
            );
            if findings.iter().all(|f| f.kind != "removed") {
                whole += 1;
            }
        }
    });
    assert!(whole > 0, "no check found the study again");
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:#?}");
}
