//! `pacsguard diff` and `profile export`: the patch review. A real Debian package
//! (`hello`, downloaded by scripts/setup-test-deps.sh) is installed into a test root with
//! the real `dpkg-deb -x` between two profiles; the diff must list exactly what
//! `dpkg-deb -c` says the package holds. Then a capability and a mode change, as a
//! careless or malicious patch would make them.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;

use common::{Env, stderr, stdout};
use serde_json::Value;

fn hello_deb() -> PathBuf {
    let dir = pacsguard_testkit::testdata().join("debs");
    fs::read_dir(&dir)
        .expect(".testdata/debs: run scripts/setup-test-deps.sh")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("hello_"))
        })
        .expect("hello_*.deb: run scripts/setup-test-deps.sh")
}

fn diff(env: &Env, a: &str, b: &str) -> (i32, Value) {
    let out = env.run(&["diff", "--json", a, b]);
    let code = out.status.code().expect("status");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (code, report)
}

/// (kind, path relative to the tree, changed fields) of every change listed.
fn changes(env: &Env, report: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut all = Vec::new();
    for dir in report["directories"].as_array().expect("directories") {
        for change in dir["changes"].as_array().expect("changes") {
            let path = change["path"].as_str().expect("path");
            let rel = path
                .strip_prefix(env.tree_str())
                .expect("in the tree")
                .trim_start_matches('/')
                .to_owned();
            let fields = change["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .map(|x| x.as_str().expect("field").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            all.push((
                change["kind"].as_str().expect("kind").to_owned(),
                rel,
                fields,
            ));
        }
    }
    all
}

#[test]
fn a_package_installed_between_two_profiles_is_exactly_what_dpkg_says() {
    let env = Env::new();
    env.profile(&[]);
    let before = env.dir.path().join("before.pgx");
    let before = before.to_str().expect("utf-8");
    let out = env.run(&["profile", "export", "--out", before]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Never overwrites.
    let out = env.run(&["profile", "export", "--out", before]);
    assert_eq!(out.status.code(), Some(2));

    let deb = hello_deb();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&env.tree)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    let expected: BTreeSet<String> = stdout(&listed)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(expected.len() > 10, "{expected:?}");
    env.run(&["profile", env.tree_str()]);

    let (code, report) = diff(&env, before, "current");
    assert_eq!(code, 1, "{report:#}");
    let listed: Vec<_> = changes(&env, &report);
    let added: BTreeSet<String> = listed
        .iter()
        .filter(|(kind, ..)| kind == "added")
        .map(|(_, rel, _)| rel.clone())
        .collect();
    assert_eq!(added, expected);
    assert_eq!(listed.len(), expected.len(), "{listed:#?}");
    assert_eq!(report["counts"]["added"], expected.len() as u64);

    // The patch's second step: a capability given to the binary, a file made writable.
    let after = env.dir.path().join("after.pgx");
    let after = after.to_str().expect("utf-8");
    assert_eq!(
        env.run(&["profile", "export", "--out", after])
            .status
            .code(),
        Some(0)
    );
    let binary = env.path("usr/bin/hello");
    let setcap = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(&binary)
        .output()
        .expect("setcap");
    assert!(setcap.status.success(), "{}", stderr(&setcap));
    let doc = env.path("usr/share/doc/hello/copyright");
    fs::set_permissions(&doc, fs::Permissions::from_mode(0o666)).expect("chmod");
    env.run(&["profile", env.tree_str()]);
    let (code, report) = diff(&env, after, "current");
    assert_eq!(code, 1);
    let listed = changes(&env, &report);
    let fields_of = |rel: &str| {
        listed
            .iter()
            .find(|(_, r, _)| r == rel)
            .map(|(_, _, f)| f.clone())
            .unwrap_or_else(|| panic!("{rel} not listed: {listed:#?}"))
    };
    assert!(fields_of("usr/bin/hello").contains(&"xattr:security.capability".to_owned()));
    assert!(fields_of("usr/share/doc/hello/copyright").contains(&"mode".to_owned()));
    assert_eq!(listed.len(), 2, "{listed:#?}");

    // Two exports, and no difference between a profile and itself.
    let (code, report) = diff(&env, before, after);
    assert_eq!(code, 1);
    assert_eq!(report["counts"]["added"], expected.len() as u64);
    let (code, _) = diff(&env, "current", "current");
    assert_eq!(code, 0);

    // An export edited after it was signed is refused, naming it.
    let mut bytes = fs::read(after).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let edited = env.dir.path().join("edited.pgx");
    fs::write(&edited, &bytes).expect("write");
    let out = env.run(&["diff", edited.to_str().expect("utf-8"), "current"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("edited.pgx"), "{}", stderr(&out));
    let truncated = env.dir.path().join("truncated.pgx");
    fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let out = env.run(&["diff", truncated.to_str().expect("utf-8"), "current"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("truncated.pgx"), "{}", stderr(&out));
}

#[test]
fn an_export_over_max_export_bytes_is_refused_unread() {
    let env = Env::new();
    env.profile(&[]);
    let huge = env.dir.path().join("huge.pgx");
    let file = fs::File::create(&huge).expect("create");
    // Sparse: nothing is written, the size alone is over the limit.
    file.set_len(pacsguard_engine::MAX_EXPORT_BYTES + 1)
        .expect("set_len");
    let out = env.run(&["diff", huge.to_str().expect("utf-8"), "current"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("huge.pgx"), "{}", stderr(&out));
}

#[test]
fn check_against_a_vendor_export_verifies_origin_with_the_trusted_key() {
    // The vendor: its own home, the release profiled and exported.
    let env = Env::new();
    let vendor = env.dir.path().join("vendor-home");
    let run_vendor = |args: &[&str]| {
        common::pacsguard()
            .arg("--home")
            .arg(&vendor)
            .args(args)
            .output()
            .expect("pacsguard runs")
    };
    assert_eq!(run_vendor(&["init"]).status.code(), Some(0));
    assert_eq!(
        run_vendor(&["profile", env.tree_str()]).status.code(),
        Some(0)
    );
    let release = env.dir.path().join("release.pgx");
    let release = release.to_str().expect("utf-8");
    assert_eq!(
        run_vendor(&["profile", "export", "--out", release])
            .status
            .code(),
        Some(0)
    );
    let vendor_key = vendor.join("signing.pub");
    let vendor_key = vendor_key.to_str().expect("utf-8");

    // The site: its own home, never profiled this tree; checks it against the release.
    let site_check =
        |trust: &str| env.run(&["check", "--json", "--against", release, "--trust", trust]);
    let out = site_check(vendor_key);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Installed elsewhere: the same bytes, modes and mtimes, other inodes and ctimes
    // (`cp -a`), are still the vendor's release.
    let site_tree = env.dir.path().join("copy");
    let moved = env.dir.path().join("original");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&env.tree)
        .arg(&site_tree)
        .status()
        .expect("cp");
    assert!(status.success());
    fs::rename(&env.tree, &moved).expect("rename");
    fs::rename(&site_tree, &env.tree).expect("rename");
    let out = site_check(vendor_key);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    fs::write(env.path("readme.txt"), b"patched by someone else\n").expect("write");
    let out = site_check(vendor_key);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("content-changed"), "{}", stdout(&out));
    // Signed, but not by the key the site trusts: refused, naming both.
    let own_key = env.home.join("signing.pub");
    let out = site_check(own_key.to_str().expect("utf-8"));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not by the trusted key"),
        "{}",
        stderr(&out)
    );
    // --against alone is a usage error.
    let out = env.run(&["check", "--against", release]);
    assert_eq!(out.status.code(), Some(2));
}

/// A profile of the tree again: exit 1 when it took changes in.
fn reprofile(env: &Env) {
    let out = env.run(&["profile", env.tree_str()]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
}

/// The generations the home keeps, as `profile generations --json` lists them.
fn kept(env: &Env) -> Vec<u64> {
    let out = env.run(&["profile", "generations", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    listed["generations"]
        .as_array()
        .expect("generations")
        .iter()
        .map(|g| g["generation"].as_u64().expect("number"))
        .collect()
}

#[test]
fn two_stored_generations_are_compared_without_an_export() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"patched text\n").expect("write");
    fs::write(env.path("study/series/3.dcm"), b"DICM image three").expect("write");
    reprofile(&env);
    fs::set_permissions(env.path("readme.txt"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    let out = env.run(&["accept", "--all", "--reason", "reviewed patch"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(kept(&env), [1, 2, 3]);

    // 1 → 2: what the second profile took in, and nothing of the later acceptance.
    let (code, report) = diff(&env, "1", "2");
    assert_eq!(code, 1, "{report:#}");
    let mut found = changes(&env, &report);
    found.sort();
    assert_eq!(
        found
            .iter()
            .map(|(k, p, _)| (k.as_str(), p.as_str()))
            .collect::<Vec<_>>(),
        [
            ("added", "study/series/3.dcm"),
            ("content-changed", "readme.txt")
        ],
        "{report:#}"
    );
    assert_eq!(report["a"]["generation"], 1);
    // 2 → 3 is the acceptance: the mode only; 3 and `current` are the same.
    let (_, report) = diff(&env, "2", "3");
    let found = changes(&env, &report);
    assert_eq!(found.len(), 1, "{report:#}");
    assert!(found[0].2.contains(&"mode".to_owned()), "{found:?}");
    let (code, _) = diff(&env, "3", "current");
    assert_eq!(code, 0);

    // A kept generation edited in the home is refused, and one never kept is named.
    let file = env.home.join("generations").join(format!("{:020}.pgx", 1));
    let mut bytes = fs::read(&file).expect("kept file");
    let last = bytes.len() - 70;
    bytes[last] ^= 1;
    fs::write(&file, bytes).expect("edit");
    let out = env.run(&["diff", "1", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    let out = env.run(&["diff", "9", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not kept (kept: 1, 2, 3)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_newest_max_kept_generations_are_kept() {
    let env = Env::new();
    let limit = pacsguard_engine::MAX_KEPT_GENERATIONS as u64;
    for i in 0..=limit {
        fs::write(env.path("readme.txt"), format!("version {i}\n")).expect("write");
        reprofile(&env);
    }
    // limit + 1 profiles: generations 1..=limit+1, the oldest removed.
    assert_eq!(kept(&env), (2..=limit + 1).collect::<Vec<_>>());
    let (code, report) = diff(&env, "2", &(limit + 1).to_string());
    assert_eq!(code, 1, "{report:#}");
}

/// `profile generations` shows the store's generation beside the kept copies: it verifies
/// the store whole first, and refuses one altered since it was signed, naming it, instead
/// of listing beside it with exit 0 (review r24-scale: a chunk edited with sqlite3 was
/// listed over).
#[test]
fn profile_generations_verifies_the_store_it_lists_beside() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"patched text\n").expect("write");
    reprofile(&env);
    let out = env.run(&["profile", "generations"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("store: generation 2 verified"),
        "{}",
        stdout(&out)
    );
    let db = rusqlite::Connection::open(env.home.join("pacsguard.db")).expect("open store");
    // The digest of the last entry of the chunk zeroed: what an implant's hash put in
    // its place looks like.
    db.execute(
        "UPDATE entry_chunks SET data = CAST(substr(data, 1, length(data) - 32) || zeroblob(32) AS BLOB)",
        [],
    )
    .expect("edit");
    drop(db);
    for args in [
        &["profile", "generations"][..],
        &["profile", "generations", "--json"],
    ] {
        let out = env.run(args);
        common::assert_refused_in(&out, "pacsguard.db", format_args!("{args:?}"));
        // Nothing listed: with --json the error is the one document printed.
        assert!(
            !stdout(&out).contains("generation      1")
                && !stdout(&out).contains("\"generations\""),
            "{args:?}: {}",
            stdout(&out)
        );
    }
}

/// A generation deleted from the middle of `HOME/generations` (or the newest, which the
/// store names) is a gap: `profile generations` and `diff` refuse, naming the number.
#[test]
fn a_generation_deleted_from_the_kept_ones_is_named() {
    let env = Env::new();
    for i in 0..4 {
        fs::write(env.path("readme.txt"), format!("version {i}\n")).expect("write");
        reprofile(&env);
    }
    assert_eq!(kept(&env), [1, 2, 3, 4]);
    let dir = env.home.join("generations");
    fs::remove_file(dir.join(format!("{:020}.pgx", 2))).expect("rm");
    let out = env.run(&["profile", "generations"]);
    common::assert_refused(&out, "generation(s) 2 missing");
    let out = env.run(&["diff", "1", "3"]);
    common::assert_refused(&out, "generation(s) 2 missing");
    // A note that is not signed by this home does not stand in for it.
    fs::write(
        dir.join(format!("{:020}.not-kept", 2)),
        "PACSGUARD-GENERATION-NOT-KEPT 1\n2\nover the limit\ned25519 00\n",
    )
    .expect("plant");
    common::assert_refused(&env.run(&["profile", "generations"]), "2 missing");
    // The newest, which the store names, is missed too.
    fs::remove_file(dir.join(format!("{:020}.not-kept", 2))).expect("rm");
    let kept_4 = fs::read(dir.join(format!("{:020}.pgx", 4))).expect("read");
    fs::remove_file(dir.join(format!("{:020}.pgx", 4))).expect("rm");
    common::assert_refused(
        &env.run(&["profile", "generations"]),
        "generation(s) 2, 4 missing",
    );
    fs::write(dir.join(format!("{:020}.pgx", 2)), kept_4.clone()).expect("plant");
    // A generation's file holding another generation is refused as before.
    fs::write(dir.join(format!("{:020}.pgx", 4)), kept_4).expect("put back");
    common::assert_refused(
        &env.run(&["profile", "generations"]),
        "not the 2 its name says",
    );
}

/// A generation that was signed but could not be kept, nor its note written (a home from
/// before the notes existed; a full or read-only generations directory at that moment),
/// is on the trail as "not kept for diff": it is not taken for a deletion, so `profile
/// generations`, `diff` of the generations that are kept and `key protect` (which signs
/// them again) keep working. A kept generation deleted afterwards is still named.
#[test]
fn a_generation_the_trail_says_was_not_kept_is_not_a_gap() {
    let env = Env::new();
    for i in 0..2 {
        fs::write(env.path("readme.txt"), format!("version {i}\n")).expect("write");
        reprofile(&env);
    }
    assert_eq!(kept(&env), [1, 2]);
    // Generation 3 is signed while `generations` cannot be written at all (a file in
    // its place): neither the generation nor its note is kept, as on an old home.
    let dir = env.home.join("generations");
    let aside = env.home.join("generations.aside");
    fs::rename(&dir, &aside).expect("aside");
    fs::write(&dir, "not a directory\n").expect("block");
    fs::write(env.path("readme.txt"), "version 2\n").expect("write");
    reprofile(&env);
    fs::remove_file(&dir).expect("unblock");
    fs::rename(&aside, &dir).expect("back");
    assert!(!dir.join(format!("{:020}.not-kept", 3)).exists());

    assert_eq!(kept(&env), [1, 2]);
    let (code, report) = diff(&env, "1", "2");
    assert_eq!(code, 1, "{report:#}");
    let passphrase = env.path("passphrase.txt");
    fs::write(&passphrase, "correct horse battery staple\n").expect("passphrase");
    fs::set_permissions(&passphrase, fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = env.run(&[
        "key",
        "protect",
        "--passphrase-file",
        passphrase.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(kept(&env), [1, 2]);

    fs::remove_file(dir.join(format!("{:020}.pgx", 2))).expect("rm");
    common::assert_refused(
        &env.run(&["profile", "generations"]),
        "generation(s) 2 missing",
    );
}
