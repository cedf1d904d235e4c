//! Every tamper kind of the profiles issue, through the real binary on a real tree.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use common::*;

#[test]
fn an_untouched_tree_is_intact_in_both_modes() {
    let env = Env::new();
    env.profile(&[]);
    for mode in [&[][..], &["--fast"][..]] {
        let (code, findings, doc) = env.check(mode);
        assert_eq!((code, findings.len()), (0, 0), "{doc:#}");
        assert_eq!(doc["generation"], 1);
        assert_eq!(doc["roots"][0]["files"], 3);
    }
    // --fast trusted every unchanged file; the full check read them all.
    assert_eq!(env.check(&["--fast"]).2["roots"][0]["hashed_files"], 0);
    assert_eq!(env.check(&[]).2["roots"][0]["hashed_files"], 3);
}

#[test]
fn same_size_edit_with_mtime_restored_is_caught_by_full_check_and_by_fast_through_ctime() {
    let env = Env::new();
    env.profile(&[]);
    let victim = env.path("study/series/1.dcm");
    let (sec, nsec) = mtime(&victim);
    fs::write(&victim, b"DICM image ONE").expect("same-size edit");
    set_mtime(&victim, sec, nsec);
    for mode in [&[][..], &["--fast"][..]] {
        let (code, findings, _) = env.check(mode);
        assert_eq!(code, 1);
        let f = one(&findings, "content-changed", "study/series/1.dcm");
        assert_eq!(f.severity, "alert");
    }
}

#[test]
fn chmod_is_a_metadata_change_naming_the_field() {
    let env = Env::new();
    env.profile(&[]);
    fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    let (code, findings, _) = env.check(&["--fast"]);
    assert_eq!(code, 1);
    let f = one(&findings, "metadata-changed", "readme.txt");
    assert!(f.fields.contains(&"mode".to_string()), "{f:?}");
    assert_eq!(f.severity, "alert");
}

#[test]
fn chown_is_a_metadata_change() {
    if !is_root() {
        eprintln!("chown needs root; CI runs as root");
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    std::os::unix::fs::lchown(env.path("readme.txt"), Some(12345), Some(54321)).expect("chown");
    let (_, findings, _) = env.check(&[]);
    let f = one(&findings, "metadata-changed", "readme.txt");
    assert!(
        f.fields.contains(&"uid".into()) && f.fields.contains(&"gid".into()),
        "{f:?}"
    );
}

#[test]
fn an_extended_attribute_change_is_named() {
    let env = Env::new();
    let file = env.path("readme.txt");
    xattr::set(&file, "user.pacs.label", b"before")
        .expect("xattr (needs user xattrs on the temp fs)");
    env.profile(&[]);
    xattr::set(&file, "user.pacs.label", b"after").expect("xattr");
    let (code, findings, _) = env.check(&["--fast"]);
    assert_eq!(code, 1);
    let f = one(&findings, "metadata-changed", "readme.txt");
    assert!(f.fields.contains(&"xattr:user.pacs.label".into()), "{f:?}");
}

#[test]
fn a_retargeted_symlink_is_a_content_change() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_file(env.path("latest")).expect("rm link");
    std::os::unix::fs::symlink("/etc/passwd", env.path("latest")).expect("symlink");
    let (_, findings, _) = env.check(&[]);
    let f = one(&findings, "content-changed", "latest");
    assert_eq!(f.fields, ["target"]);
}

#[test]
fn a_file_replaced_by_a_directory_is_a_type_change() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_file(env.path("readme.txt")).expect("rm");
    fs::create_dir(env.path("readme.txt")).expect("mkdir");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "content-changed", "readme.txt").fields,
        ["type"]
    );
    assert!(
        !findings.iter().any(|f| f.kind == "removed"),
        "{findings:?}"
    );
}

#[test]
fn a_hard_link_added_shows_the_new_name_and_the_link_count() {
    let env = Env::new();
    env.profile(&[]);
    fs::hard_link(env.path("readme.txt"), env.path("study/copy.txt")).expect("link");
    let (_, findings, _) = env.check(&[]);
    assert_eq!(one(&findings, "added", "study/copy.txt").severity, "alert");
    assert!(
        one(&findings, "metadata-changed", "readme.txt")
            .fields
            .contains(&"nlink".into())
    );
}

#[test]
fn deletion_and_rename_are_told_apart() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_file(env.path("study/series/2.dcm")).expect("rm");
    fs::rename(env.path("study/series/1.dcm"), env.path("study/moved.dcm")).expect("mv");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "removed", "study/series/2.dcm").severity,
        "alert"
    );
    let moved = one(&findings, "moved", "study/moved.dcm");
    assert_eq!(moved.from.as_deref(), Some("study/series/1.dcm"));
    // One finding for the move, not a removed/added pair.
    assert!(
        !findings
            .iter()
            .any(|f| f.path == "study/series/1.dcm" && f.kind == "removed"),
        "{findings:?}"
    );
    assert!(!findings.iter().any(|f| f.kind == "added"), "{findings:?}");
}

#[test]
fn a_renamed_directory_is_one_move_and_its_children_are_still_compared() {
    let env = Env::new();
    env.profile(&[]);
    fs::rename(env.path("study/series"), env.path("study/renamed")).expect("mv dir");
    fs::write(env.path("study/renamed/2.dcm"), b"DICM tampered").expect("edit inside");
    let (_, findings, _) = env.check(&[]);
    let moved = one(&findings, "moved", "study/renamed");
    assert_eq!(moved.from.as_deref(), Some("study/series"));
    one(&findings, "content-changed", "study/renamed/2.dcm");
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.kind != "content-changed" && f.kind != "moved")
            .count(),
        0,
        "{findings:#?}"
    );
}

#[test]
fn a_new_file_is_an_alert_under_static_and_info_under_append_only() {
    for (policy, severity, code) in [("static", "alert", 1), ("append-only", "info", 0)] {
        let env = Env::new();
        env.profile(&["--policy", policy]);
        fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("new image");
        let (got, findings, _) = env.check(&[]);
        assert_eq!(
            one(&findings, "added", "study/series/3.dcm").severity,
            severity,
            "{policy}"
        );
        assert_eq!(got, code, "{policy}");
    }
}

#[test]
fn append_only_still_alerts_on_a_rewritten_image() {
    let env = Env::new();
    env.profile(&["--policy", "append-only"]);
    fs::write(env.path("study/series/1.dcm"), b"encrypted!").expect("rewrite");
    let (code, findings, _) = env.check(&["--fast"]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "content-changed", "study/series/1.dcm").severity,
        "alert"
    );
}

/// A fresh home and tree with a two-line `app.log`, not yet profiled.
fn log_env() -> (Env, std::path::PathBuf) {
    let env = Env::new();
    let log = env.path("app.log");
    fs::write(&log, b"line 1\nline 2\n").expect("log");
    (env, log)
}

#[test]
fn a_growing_log_may_grow_but_not_shrink_or_change_its_past() {
    let (env, log) = log_env();
    env.profile(&["--policy", "growing"]);

    let mut appended = fs::read(&log).expect("read");
    appended.extend_from_slice(b"line 3\n");
    fs::write(&log, &appended).expect("append");
    let (code, findings, doc) = env.check(&[]);
    assert_eq!(
        (code, findings.len()),
        (0, 0),
        "growth is expected: {doc:#}"
    );

    fs::write(&log, b"line 1\n").expect("truncate");
    let (code, findings, _) = env.check(&["--fast"]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "content-changed", "app.log").severity,
        "alert"
    );

    fs::write(&log, b"line X\nline 2\nline 3\n").expect("rewrite the past");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "content-changed", "app.log").severity,
        "alert"
    );
}

#[test]
fn volatile_roots_only_care_about_existence() {
    let env = Env::new();
    env.profile(&["--policy", "volatile"]);
    fs::write(env.path("readme.txt"), b"anything at all").expect("edit");
    fs::set_permissions(
        env.path("study/series/1.dcm"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let (code, findings, _) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:?}");
    fs::remove_file(env.path("readme.txt")).expect("rm");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(one(&findings, "removed", "readme.txt").severity, "warning");
}

#[test]
fn checking_a_subtree_reports_only_that_subtree() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"changed outside").expect("edit");
    fs::write(env.path("study/series/2.dcm"), b"changed inside").expect("edit");
    let out = env.run(&[
        "check",
        "--json",
        env.path("study").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(findings.len(), 1, "{findings:?}");
    one(&findings, "content-changed", "study/series/2.dcm");
}

#[test]
fn empty_files_are_not_matched_as_moves() {
    let env = Env::new();
    fs::write(env.path("empty.lock"), b"").expect("write");
    env.profile(&[]);
    fs::remove_file(env.path("empty.lock")).expect("rm");
    fs::write(env.path("study/other.lock"), b"").expect("write");
    let (_, findings, _) = env.check(&[]);
    one(&findings, "removed", "empty.lock");
    one(&findings, "added", "study/other.lock");
    assert!(!findings.iter().any(|f| f.kind == "moved"), "{findings:?}");
}

#[test]
fn nothing_reaches_stderr_when_it_is_not_a_terminal() {
    let env = Env::new();
    let out = env.run(&["profile", env.tree_str()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "progress leaked into a pipe: {}",
        stderr(&out)
    );
}

#[test]
fn excluded_paths_are_neither_recorded_nor_reported() {
    let env = Env::new();
    fs::create_dir(env.path("cache")).expect("mkdir");
    fs::write(env.path("cache/a"), b"x").expect("write");
    env.profile(&["--exclude", "*.tmp", "--exclude", "cache"]);
    fs::write(env.path("study/upload.tmp"), b"partial").expect("write");
    fs::write(env.path("cache/b"), b"y").expect("write");
    let (code, findings, doc) = env.check(&[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:?}");
    assert_eq!(doc["roots"][0]["files"], 3);
    let out = env.run(&["profile", "--exclude", "a[", env.tree_str()]);
    assert_refused(&out, "a[");
}

#[test]
fn configured_roots_are_profiled_and_checked_without_arguments() {
    let env = Env::new();
    let logs = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("logs");
    fs::create_dir(&logs).expect("mkdir");
    fs::write(logs.join("app.log"), b"start\n").expect("write");
    let config = format!(
        "hash = \"sha256\"\n[[root]]\npath = \"{}\"\npolicy = \"append-only\"\n\n[[root]]\npath = \"{}\"\npolicy = \"growing\"\n",
        env.tree_str(),
        logs.display()
    );
    fs::write(env.home.join("config.toml"), config).expect("config");
    let out = env.run(&["profile", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let policies: Vec<(&str, &str)> = doc["roots"]
        .as_array()
        .expect("roots")
        .iter()
        .map(|r| {
            (
                r["policy"].as_str().unwrap_or(""),
                r["hash"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(policies, [("append-only", "sha256"), ("growing", "sha256")]);
    fs::write(logs.join("app.log"), b"start\nmore\n").expect("append");
    fs::write(env.path("study/series/9.dcm"), b"new image").expect("new");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 0, "{findings:?}");
    assert_eq!(findings.len(), 1);
    assert_eq!(
        one(&findings, "added", "study/series/9.dcm").severity,
        "info"
    );
}

#[test]
fn log_rotation_under_growing_is_one_rotation_not_a_truncation() {
    let (env, log) = log_env();
    env.profile(&["--policy", "growing"]);
    // logrotate's default: rename, then create a new file under the old name.
    fs::rename(&log, env.path("app.log.1")).expect("rotate");
    fs::write(&log, b"line 3\n").expect("new log");
    let (code, findings, doc) = env.check(&[]);
    // A rename to a rotation name of the same log is expected (issue 12): info, exit 0.
    assert_eq!(code, 0, "{doc:#}");
    let moved = one(&findings, "moved", "app.log.1");
    assert_eq!(
        (moved.severity.as_str(), moved.from.as_deref()),
        ("info", Some("app.log"))
    );
    assert_eq!(one(&findings, "added", "app.log").severity, "info");
    assert!(
        !findings.iter().any(|f| f.severity == "alert"),
        "{findings:#?}"
    );
    // Under static the same thing is a content change of the log.
    let (env, log) = log_env();
    env.profile(&[]);
    fs::rename(&log, env.path("app.log.1")).expect("rotate");
    fs::write(&log, b"line 3\n").expect("new log");
    let (_, findings, _) = env.check(&[]);
    assert_eq!(
        one(&findings, "content-changed", "app.log").severity,
        "alert"
    );
}

#[test]
fn a_subtree_check_is_not_led_astray_by_a_directory_swapped_for_a_link() {
    let env = Env::new();
    env.profile(&[]);
    // The intruder keeps a pristine copy of the study elsewhere, rewrites the real one, and
    // points the study's directory at the copy.
    let copy = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("copy");
    fs::create_dir_all(copy.join("series")).expect("mkdir");
    for name in ["1.dcm", "2.dcm"] {
        fs::copy(
            env.path(&format!("study/series/{name}")),
            copy.join("series").join(name),
        )
        .expect("copy");
    }
    fs::rename(env.path("study"), env.dir.path().join("real-study")).expect("move");
    std::os::unix::fs::symlink(&copy, env.path("study")).expect("symlink");
    // Named below the link, the subtree is the profiled one, not the decoy the link leads
    // to: what the profile holds there is gone.
    let out = env.run(&[
        "check",
        "--json",
        env.path("study/series").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(
        one(&findings, "removed", "study/series/1.dcm").severity,
        "alert"
    );
    // Named as it was profiled, the subtree walk must not follow the link either.
    let out = env.run(&[
        "check",
        "--json",
        env.path("study").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    assert_eq!(
        one(&findings, "content-changed", "study").fields,
        ["type"],
        "{findings:#?}"
    );
    one(&findings, "removed", "study/series/1.dcm");
}

#[test]
fn a_subtree_that_is_gone_is_reported_removed() {
    let env = Env::new();
    env.profile(&[]);
    fs::remove_dir_all(env.path("study/series")).expect("rm");
    let out = env.run(&[
        "check",
        "--json",
        env.path("study/series").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = found(&doc["findings"], &env.tree);
    one(&findings, "removed", "study/series/1.dcm");
    one(&findings, "removed", "study/series");
    assert_eq!(findings.len(), 3, "{findings:#?}");
}

#[test]
fn a_rotated_log_must_still_keep_its_past() {
    let (env, log) = log_env();
    env.profile(&["--policy", "growing"]);
    // Appended, then rotated: fine.
    let mut grown = fs::read(&log).expect("read");
    grown.extend_from_slice(b"line 3\n");
    fs::write(&log, &grown).expect("append");
    fs::rename(&log, env.path("app.log.1")).expect("rotate");
    fs::write(&log, b"").expect("new log");
    let (_, findings, _) = env.check(&[]);
    assert!(
        !findings.iter().any(|f| f.severity == "alert"),
        "{findings:#?}"
    );

    // Lines cut out of the log before the rotation: an alert on the rotated file.
    let env = Env::new();
    let log = env.path("app.log");
    fs::write(&log, b"line 1\nincriminating\nline 3\n").expect("log");
    env.profile(&["--policy", "growing"]);
    fs::write(&log, b"line 1\nline 3\n").expect("cut");
    fs::rename(&log, env.path("app.log.1")).expect("rotate");
    fs::write(&log, b"").expect("new log");
    let (code, findings, _) = env.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        one(&findings, "content-changed", "app.log.1").severity,
        "alert",
        "{findings:#?}"
    );
}
