//! `pacsguard media import`: patient media mastered the way a burning station does it,
//! with real tools: DCMTK's `dcmmkdir` writes the DICOMDIR over pydicom's sample files,
//! `genisoimage` and `xorriso` write the ISO 9660 image, a real Windows program (pip's
//! launcher) stands in for the viewer, and one instance is a CVE-2019-11687 polyglot. The
//! import must copy exactly the clean referenced instances, refuse the polyglot with an
//! alert, report the viewer and `autorun.inf` as expected, and sign a manifest that
//! verifies; nothing on the medium changes.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, stderr, stdout};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Samples DCMTK's `dcmmkdir` accepts on a general-purpose CD (Explicit VR Little
/// Endian, the attributes a DICOMDIR needs), each with its own SOP Instance UID.
const CLEAN: [&str; 7] = [
    "CT_small.dcm",
    "MR_small_padded.dcm",
    "SC_rgb_small_odd.dcm",
    "examples_palette.dcm",
    "liver_1frame.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
];
/// The sample the polyglot is made of (its own UID, not one of [`CLEAN`]'s).
const POLYGLOT_OF: &str = "examples_rgb_color.dcm";

fn run_ok(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup-test-deps.sh)"));
    assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A patient medium's tree: DICOM/IM000001..7 clean, DICOM/IM000008 the polyglot, a
/// DICOMDIR over all eight written by dcmmkdir, VIEWER.EXE and AUTORUN.INF.
fn stage(dir: &Path) -> PathBuf {
    let stage = dir.join("stage");
    fs::create_dir_all(stage.join("DICOM")).expect("mkdir");
    for (i, name) in CLEAN.iter().enumerate() {
        let bytes = pacsguard_testkit::pydicom_sample(name);
        fs::write(stage.join(format!("DICOM/IM{:06}", i + 1)), bytes).expect("write");
    }
    let polyglot = pacsguard_testkit::plant_pe_cve_2019_11687(
        &pacsguard_testkit::pydicom_sample(POLYGLOT_OF),
        &pacsguard_testkit::real_pe(),
    )
    .expect("a PE planted");
    fs::write(stage.join("DICOM/IM000008"), polyglot).expect("write");
    run_ok("dcmmkdir", &["+r", "+I", "DICOM"], &stage);
    let dump = Command::new("dcmdump")
        .arg(stage.join("DICOMDIR"))
        .output()
        .expect("dcmdump");
    let references = stdout(&dump).matches("ReferencedFileID").count();
    assert_eq!(references, 8, "dcmmkdir took every file: {}", stdout(&dump));
    fs::write(stage.join("VIEWER.EXE"), pacsguard_testkit::real_pe()).expect("write");
    fs::write(
        stage.join("AUTORUN.INF"),
        b"[autorun]\r\nopen=VIEWER.EXE\r\nicon=VIEWER.EXE,0\r\n",
    )
    .expect("write");
    stage
}

fn import(env: &Env, source: &Path, dest: &Path) -> (i32, Value) {
    let out = env.run(&[
        "media",
        "import",
        source.to_str().expect("utf-8"),
        dest.to_str().expect("utf-8"),
        "--json",
    ]);
    let code = out.status.code().expect("exit code");
    if code == 2 {
        return (code, Value::String(stderr(&out)));
    }
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (code, report)
}

/// Every file of `dir` (one level) with its bytes.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("dest")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn strings(report: &Value, list: &str, field: &str) -> BTreeSet<String> {
    report[list]
        .as_array()
        .expect(list)
        .iter()
        .map(|v| v[field].as_str().expect(field).to_owned())
        .collect()
}

/// What the import of the staged medium must have done, whatever carried it.
fn assert_gate_held(env: &Env, report: &Value, dest: &Path, upper_case: bool) {
    let name = |n: &str| {
        if upper_case {
            n.to_uppercase()
        } else {
            n.to_lowercase()
        }
    };
    let copied = strings(report, "copied", "path");
    let expected_copies: BTreeSet<String> =
        (1..=7).map(|i| name(&format!("DICOM/IM{i:06}"))).collect();
    assert_eq!(copied, expected_copies, "{report:#}");
    // Exactly the clean instances, byte-identical, named after their SOP Instance UID.
    let in_dest = listing(dest);
    assert_eq!(
        in_dest.len(),
        7,
        "{:?}",
        in_dest.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let originals: BTreeSet<String> = CLEAN
        .iter()
        .map(|n| sha256(&pacsguard_testkit::pydicom_sample(n)))
        .collect();
    let written: BTreeSet<String> = in_dest.iter().map(|(_, b)| sha256(b)).collect();
    assert_eq!(written, originals);
    for copy in report["copied"].as_array().expect("copied") {
        let file = copy["file"].as_str().expect("file");
        let uid = copy["sop_instance_uid"].as_str().expect("uid");
        assert_eq!(file, format!("{uid}.dcm"));
        let bytes = fs::read(dest.join(file)).expect("copied file");
        assert_eq!(copy["sha256"].as_str(), Some(sha256(&bytes).as_str()));
    }
    // The polyglot: refused, with an alert naming what it carries.
    let refused = &report["refused"].as_array().expect("refused");
    let polyglot = name("DICOM/IM000008");
    let refusal = refused
        .iter()
        .find(|r| r["path"] == polyglot.as_str())
        .unwrap_or_else(|| panic!("polyglot not refused: {report:#}"));
    let kinds: Vec<&str> = refusal["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(kinds.contains(&"preamble-executable"), "{kinds:?}");
    assert_eq!(refused.len(), 1, "{report:#}");
    let alerts: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert!(!alerts.is_empty());
    for alert in &alerts {
        let path = alert["path"].as_str().expect("path");
        assert!(
            path.ends_with(&polyglot),
            "only the polyglot alerts: {alert:#}"
        );
    }
    // The viewer and autorun.inf: expected, never copied, not an alarm.
    let expected = strings(report, "expected", "path");
    assert_eq!(
        expected,
        BTreeSet::from([name("AUTORUN.INF"), name("VIEWER.EXE")]),
        "{report:#}"
    );
    let viewer = report["expected"]
        .as_array()
        .expect("expected")
        .iter()
        .find(|e| e["path"] == name("VIEWER.EXE").as_str())
        .expect("viewer");
    assert_eq!(viewer["what"], "pe");
    for finding in report["findings"].as_array().expect("findings") {
        let path = finding["path"].as_str().expect("path");
        let upper = path.to_uppercase();
        if upper.ends_with("VIEWER.EXE") || upper.ends_with("AUTORUN.INF") {
            assert_eq!(finding["severity"], "info", "{finding:#}");
        }
    }
    assert_eq!(report["counts"]["warning"], 0, "{report:#}");
    // The manifest verifies with the home's key, and an edit is caught.
    let manifest = report["manifest"].as_str().expect("manifest");
    let out = env.run(&["media", "verify", manifest, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let verified: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verified["body"]["copied"], report["copied"]);
    assert_eq!(verified["body"]["refused"], report["refused"]);
}

#[test]
fn a_patient_cd_imports_exactly_the_clean_instances_from_an_image_or_a_directory() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let plain = root.join("plain.iso");
    run_ok(
        "genisoimage",
        &[
            "-quiet",
            "-V",
            "PATIENT",
            "-o",
            plain.to_str().expect("utf-8"),
            "stage",
        ],
        &root,
    );
    let joliet = root.join("joliet.iso");
    run_ok(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-J",
            "-R",
            "-V",
            "PATIENT",
            "-o",
            joliet.to_str().expect("utf-8"),
            "stage",
        ],
        &root,
    );
    let before = (
        fs::read(&plain).expect("iso"),
        fs::read(&joliet).expect("iso"),
    );
    let staged_before = pacsguard_testkit::files_under(&stage)
        .iter()
        .map(|p| (p.clone(), fs::read(p).expect("read")))
        .collect::<Vec<_>>();
    for (source, kind) in [
        (&plain, "iso9660"),
        (&joliet, "iso9660-joliet"),
        (&stage, "directory"),
    ] {
        let dest = root.join(format!("dest-{kind}"));
        fs::create_dir(&dest).expect("mkdir");
        let (code, report) = import(&env, source, &dest);
        assert_eq!(code, 1, "{kind}: the polyglot is a finding: {report:#}");
        assert_eq!(report["source_kind"], kind);
        assert_gate_held(&env, &report, &dest, true);
    }
    // Nothing on the media changed.
    assert_eq!(fs::read(&plain).expect("iso"), before.0);
    assert_eq!(fs::read(&joliet).expect("iso"), before.1);
    for (path, bytes) in staged_before {
        assert_eq!(fs::read(&path).expect("read"), bytes, "{}", path.display());
    }
    // Each copy and the import are on the audit trail.
    let out = env.run(&["audit", "show", "--action", "media-import", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = stdout(&out);
    assert!(
        records.matches("SOP Instance UID").count() >= 21,
        "{records}"
    );
}

#[test]
fn an_edited_manifest_and_a_second_import_into_the_same_folder_are_caught() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &stage, &dest);
    assert_eq!(code, 1);
    let manifest = PathBuf::from(report["manifest"].as_str().expect("manifest"));
    let copied_before = listing(&dest);

    let text = fs::read_to_string(&manifest).expect("manifest");
    let forged = root.join("forged.manifest");
    fs::write(
        &forged,
        text.replacen("\"refused\":[{", "\"refused\":[],\"x\":[{", 1),
    )
    .expect("write");
    let out = env.run(&["media", "verify", forged.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));

    // The same medium again: every instance is already there; nothing is overwritten.
    let (code, again) = import(&env, &stage, &dest);
    assert_eq!(code, 1);
    assert!(
        again["copied"].as_array().expect("copied").is_empty(),
        "{again:#}"
    );
    let exists = again["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "media-destination-exists")
        .count();
    assert_eq!(exists, 7);
    assert_eq!(listing(&dest), copied_before);
}

#[test]
fn bad_media_are_refused_whole_and_nothing_is_copied() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let iso = root.join("cd.iso");
    run_ok(
        "genisoimage",
        &["-quiet", "-o", iso.to_str().expect("utf-8"), "stage"],
        &root,
    );
    let bytes = fs::read(&iso).expect("iso");

    // A truncated image (a burn that stopped, a partial download).
    let truncated = root.join("truncated.iso");
    fs::write(&truncated, &bytes[..bytes.len() - 64 * 1024]).expect("write");
    // A DICOMDIR that does not parse.
    let broken = root.join("broken");
    fs::create_dir_all(broken.join("DICOM")).expect("mkdir");
    fs::copy(stage.join("DICOM/IM000001"), broken.join("DICOM/IM000001")).expect("copy");
    let dicomdir = fs::read(stage.join("DICOMDIR")).expect("dicomdir");
    fs::write(broken.join("DICOMDIR"), &dicomdir[..dicomdir.len() * 2 / 3]).expect("write");
    // No DICOMDIR at all.
    let bare = root.join("bare");
    fs::create_dir_all(bare.join("DICOM")).expect("mkdir");
    fs::copy(stage.join("DICOM/IM000001"), bare.join("DICOM/IM000001")).expect("copy");

    for (source, needle) in [
        (&truncated, "truncated"),
        (&broken, "DICOMDIR cannot be used"),
        (&bare, "no DICOMDIR"),
    ] {
        let dest = root.join(format!(
            "dest-{}",
            source.file_name().expect("n").to_string_lossy()
        ));
        fs::create_dir(&dest).expect("mkdir");
        let (code, error) = import(&env, source, &dest);
        assert_eq!(code, 2, "{}: {error}", source.display());
        assert!(error.as_str().expect("stderr").contains(needle), "{error}");
        assert!(
            listing(&dest).is_empty(),
            "{}: nothing copied",
            source.display()
        );
    }
}

#[test]
fn a_dicomdir_that_points_off_the_medium_or_at_the_viewer_raises_an_alert() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    // Edit two Referenced File IDs in place (same length, so dcmmkdir's offsets hold):
    // one leaves the medium, one names the viewer as an instance.
    let mut dicomdir = fs::read(stage.join("DICOMDIR")).expect("dicomdir");
    let replace = |bytes: &mut Vec<u8>, from: &[u8], to: &[u8]| {
        assert_eq!(from.len(), to.len());
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(from)));
        bytes[at..at + to.len()].copy_from_slice(to);
    };
    replace(&mut dicomdir, b"DICOM\\IM000001", b"..\\..\\ETC\\PASS");
    replace(&mut dicomdir, b"DICOM\\IM000002", b"VIEWER.EXE    ");
    fs::write(stage.join("DICOMDIR"), &dicomdir).expect("write");
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &stage, &dest);
    assert_eq!(code, 1, "{report:#}");
    let alerts: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "alert" && f["kind"] == "media-reference-unsafe")
        .map(|f| {
            (
                f["path"].as_str().expect("p"),
                f["detail"].as_str().expect("d"),
            )
        })
        .collect();
    assert!(
        alerts
            .iter()
            .any(|(p, d)| p.ends_with("DICOMDIR") && d.contains("..")),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|(p, d)| p.ends_with("VIEWER.EXE") && d.contains("not DICOM")),
        "{alerts:?}"
    );
    // The two instances no longer referenced are not imported; the rest are.
    let copied = strings(&report, "copied", "path");
    assert_eq!(copied.len(), 5, "{copied:?}");
    assert!(!copied.contains("DICOM/IM000001") && !copied.contains("DICOM/IM000002"));
    assert!(!dest.join("VIEWER.EXE").exists());
    assert_eq!(listing(&dest).len(), 5);
}

#[test]
fn a_viewer_on_a_known_bad_list_is_an_alert_though_expected() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let list = root.join("bad.txt");
    fs::write(
        &list,
        format!("{}\n", sha256(&pacsguard_testkit::real_pe())),
    )
    .expect("write");
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let out = env.run(&[
        "media",
        "import",
        stage.to_str().expect("utf-8"),
        dest.to_str().expect("utf-8"),
        "--hashlist",
        list.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let viewer_alert = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| {
            f["kind"] == "hashlist-match"
                && f["severity"] == "alert"
                && f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("VIEWER.EXE"))
        });
    assert!(viewer_alert, "{report:#}");
    assert!(!dest.join("VIEWER.EXE").exists());
    assert_eq!(strings(&report, "copied", "path").len(), 7);
}

#[test]
fn a_mounted_iso_9660_with_lower_case_names_is_matched_without_case() {
    // Linux mounts a plain ISO 9660 volume with its names in lower case (`map=normal`),
    // while the DICOMDIR's Referenced File IDs stay upper case.
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let mounted = root.join("mounted");
    fs::create_dir_all(mounted.join("dicom")).expect("mkdir");
    for file in pacsguard_testkit::files_under(&stage) {
        let rel = file
            .strip_prefix(&stage)
            .expect("rel")
            .to_string_lossy()
            .to_lowercase();
        fs::copy(&file, mounted.join(rel)).expect("copy");
    }
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &mounted, &dest);
    assert_eq!(code, 1, "{report:#}");
    assert_gate_held(&env, &report, &dest, false);
}

/// Two different images on one medium under one SOP Instance UID (a second patient's
/// image given the first's UID with DCMTK's `dcmodify`, the DICOMDIR written by
/// `dcmmkdir` and then made to list that UID for both). Copying either would let thread
/// scheduling pick which image the PACS files under the UID: neither is copied, both are
/// refused as `media-reference-mismatch`, the other instances are imported.
#[test]
fn two_instances_under_one_sop_instance_uid_are_both_refused() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = root.join("stage");
    fs::create_dir_all(stage.join("DICOM")).expect("mkdir");
    let ct = pacsguard_testkit::pydicom_sample("CT_small.dcm");
    fs::write(stage.join("DICOM/IM000001"), &ct).expect("write");
    fs::write(stage.join("DICOM/IM000002"), &ct).expect("write");
    fs::write(
        stage.join("DICOM/IM000003"),
        pacsguard_testkit::pydicom_sample("MR_small_padded.dcm"),
    )
    .expect("write");
    let uid = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";
    let other = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.99999";
    run_ok(
        "dcmodify",
        &[
            "-nb",
            "-m",
            "PatientName=OTHER^PATIENT",
            "-m",
            &format!("SOPInstanceUID={other}"),
            "-m",
            "StudyInstanceUID=1.2.826.0.1.3680043.2.1143.1",
            "-m",
            "SeriesInstanceUID=1.2.826.0.1.3680043.2.1143.2",
            "DICOM/IM000002",
        ],
        &stage,
    );
    run_ok("dcmmkdir", &["+r", "+I", "DICOM"], &stage);
    // Same length, so every offset dcmmkdir wrote holds (the file meta and the data
    // set both carry the UID).
    for file in ["DICOM/IM000002", "DICOMDIR"] {
        let mut bytes = fs::read(stage.join(file)).expect("read");
        let mut edits = 0;
        while let Some(at) = bytes
            .windows(other.len())
            .position(|w| w == other.as_bytes())
        {
            bytes[at..at + uid.len()].copy_from_slice(uid.as_bytes());
            edits += 1;
        }
        assert!(edits > 0, "{file} holds the other UID");
        fs::write(stage.join(file), bytes).expect("write");
    }
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &stage, &dest);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        strings(&report, "copied", "path"),
        BTreeSet::from(["DICOM/IM000003".to_owned()]),
        "{report:#}"
    );
    assert!(!dest.join(format!("{uid}.dcm")).exists());
    for refused in ["DICOM/IM000001", "DICOM/IM000002"] {
        let entry = report["refused"]
            .as_array()
            .expect("refused")
            .iter()
            .find(|r| r["path"] == refused)
            .unwrap_or_else(|| panic!("{refused} refused: {report:#}"));
        assert_eq!(entry["kinds"][0], "media-reference-mismatch", "{entry}");
        assert!(
            entry["reason"].as_str().expect("reason").contains(uid),
            "{entry}"
        );
    }
    assert_eq!(listing(&dest).len(), 1);
}

/// A Joliet + Rock Ridge image (genisoimage) whose ISO 9660 tree holds a Windows program
/// the Joliet tree hides (`-hide-joliet`): Windows shows the Joliet tree, Linux and macOS
/// mount the other. The import must screen it and say the trees differ, not list only
/// the Joliet tree and leave it unseen.
#[test]
fn a_file_hidden_from_the_joliet_tree_is_screened_and_reported() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    fs::write(stage.join("SETUP.EXE"), pacsguard_testkit::real_pe()).expect("write");
    let image = root.join("hidden.iso");
    run_ok(
        "genisoimage",
        &[
            "-quiet",
            "-J",
            "-R",
            "-hide-joliet",
            "SETUP.EXE",
            "-o",
            image.to_str().expect("utf-8"),
            "stage",
        ],
        &root,
    );
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &image, &dest);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["source_kind"], "iso9660-joliet");
    let about = |name: &str| -> Vec<(String, String)> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .map(|f| {
                (
                    f["kind"].as_str().expect("kind").to_owned(),
                    f["severity"].as_str().expect("severity").to_owned(),
                )
            })
            .collect()
    };
    let setup = about("SETUP.EXE");
    assert!(
        setup.contains(&("media-trees-differ".to_owned(), "warning".to_owned())),
        "{setup:?}"
    );
    assert!(
        setup.iter().any(|(k, _)| k == "executable-file"),
        "screened: {setup:?}"
    );
    // Files both trees show are listed once, and the import is otherwise unchanged.
    assert!(
        about("VIEWER.EXE")
            .iter()
            .all(|(k, _)| k != "media-trees-differ")
    );
    assert_eq!(strings(&report, "copied", "path").len(), CLEAN.len());
    assert!(!dest.join("SETUP.EXE").exists());
}

/// `--manifest` on the medium itself (a writable USB stick, here a directory) or over an
/// existing file is refused before anything is copied: the medium is never written, and
/// DEST never receives instances without a signed manifest of them.
#[test]
fn a_manifest_on_the_medium_or_over_a_file_is_refused_before_any_copy() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let before = fs::read_dir(&stage).expect("stage").count();
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let taken = root.join("taken.manifest");
    fs::write(&taken, b"an earlier manifest").expect("write");
    for manifest in [
        stage.join("import.manifest"),
        stage.join("DICOM/import.manifest"),
        taken.clone(),
    ] {
        let out = env.run(&[
            "media",
            "import",
            stage.to_str().expect("utf-8"),
            dest.to_str().expect("utf-8"),
            "--manifest",
            manifest.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{manifest:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was copied"),
            "{}",
            stderr(&out)
        );
        assert!(listing(&dest).is_empty(), "{manifest:?}");
    }
    assert_eq!(fs::read_dir(&stage).expect("stage").count(), before);
    assert!(!stage.join("DICOM/import.manifest").exists());
    assert_eq!(fs::read(&taken).expect("read"), b"an earlier manifest");
}

/// A medium (a USB stick, here a directory) holding many hard links to one large file:
/// each name used to be read and screened, so links multiplied the bytes an import
/// reads without bound. A link is screened once, under its first name; the other names
/// are `not-inspected` warnings naming it, and the import still copies the instances.
#[test]
fn hard_links_on_a_medium_are_screened_once() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let big = stage.join("DATA.BIN");
    fs::write(&big, vec![0x5a; 1024 * 1024]).expect("write");
    for i in 0..40 {
        fs::hard_link(&big, stage.join(format!("L{i:03}.BIN"))).expect("link");
    }
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &stage, &dest);
    assert_eq!(code, 1, "{report:#}");
    // Read once: the medium's ~1 MB of instances and viewer plus one copy of the
    // linked file (41 copies, 41 MiB, when each name was read).
    let linked = 1024 * 1024;
    let bytes = report["bytes"].as_u64().expect("bytes");
    assert!(bytes < 10 * linked, "{bytes} bytes read");
    let not_screened = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["kind"] == "not-inspected"
                && f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("a hard link of"))
        })
        .count();
    assert_eq!(not_screened, 40, "{report:#}");
    assert_eq!(strings(&report, "copied", "path").len(), CLEAN.len());
}

/// An import that stops on an error (here a copy refused by the kernel: `ulimit -f`
/// under `sh`, SIGXFSZ ignored, so the write fails with EFBIG) still signs a manifest of
/// what it did, marked incomplete. `media verify` of it must not exit 0 as for a
/// complete import: a script trusting the status would take it for one.
#[test]
fn an_incomplete_import_s_manifest_verifies_with_status_one() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let manifest = root.join("import.manifest");
    let script = "trap '' XFSZ; ulimit -f 30; exec \"$0\" --home \"$1\" media import \"$2\" \"$3\" --manifest \"$4\"";
    let out = Command::new("sh")
        .args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .args([&env.home, &stage, &dest, &manifest])
        .output()
        .expect("sh");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("File too large"), "{}", stderr(&out));
    let out = env.run(&["media", "verify", manifest.to_str().expect("utf-8")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("INCOMPLETE"), "{}", stdout(&out));
}

/// `media verify --dest`: the import folder compared with the signed manifest. A copy
/// changed after the import, one removed, one put beside them, and a manifest of another
/// import replayed for a folder are each reported; an untouched folder verifies clean.
#[test]
fn media_verify_dest_catches_changed_missing_extra_and_replayed() {
    let env = Env::new();
    let root = env.dir.path().canonicalize().expect("canonical");
    let stage = stage(&root);
    let dest = root.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let (code, report) = import(&env, &stage, &dest);
    assert_eq!(code, 1, "{report:#}");
    let manifest = report["manifest"].as_str().expect("manifest").to_owned();
    let verify = |dir: &Path| -> (i32, Value) {
        let out = env.run(&[
            "media",
            "verify",
            &manifest,
            "--dest",
            dir.to_str().expect("utf-8"),
            "--json",
        ]);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        (out.status.code().expect("exit code"), value)
    };
    let kinds = |v: &Value| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = v["destination"]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let path = PathBuf::from(f["path"].as_str().expect("path"));
                (
                    f["kind"].as_str().expect("kind").to_owned(),
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let (code, clean) = verify(&dest);
    assert_eq!(code, 0, "{clean:#}");
    assert_eq!(clean["destination"]["matching"], CLEAN.len(), "{clean:#}");
    assert!(kinds(&clean).is_empty());

    let names: Vec<String> = listing(&dest).into_iter().map(|(n, _)| n).collect();
    // One copy rewritten (the same size, one byte flipped), one deleted, one added.
    let changed = dest.join(&names[0]);
    let mut bytes = fs::read(&changed).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&changed, bytes).expect("rewrite");
    fs::remove_file(dest.join(&names[1])).expect("rm");
    fs::write(dest.join("planted.dcm"), b"DICM").expect("plant");
    let (code, found) = verify(&dest);
    assert_eq!(code, 1, "{found:#}");
    assert_eq!(
        kinds(&found),
        [
            ("media-copy-changed".to_owned(), names[0].clone()),
            ("media-copy-missing".to_owned(), names[1].clone()),
            (
                "media-destination-extra".to_owned(),
                "planted.dcm".to_owned()
            ),
        ]
    );
    // A copy replaced by a symbolic link to the genuine bytes is not the copy.
    let genuine = root.join("genuine");
    fs::copy(dest.join(&names[2]), &genuine).expect("cp");
    fs::remove_file(dest.join(&names[2])).expect("rm");
    std::os::unix::fs::symlink(&genuine, dest.join(&names[2])).expect("ln");
    let (_, found) = verify(&dest);
    assert!(
        kinds(&found).contains(&("media-copy-changed".to_owned(), names[2].clone())),
        "{found:#}"
    );
    // The manifest replayed for a folder it never described.
    let other = root.join("other");
    fs::create_dir(&other).expect("mkdir");
    let (code, replayed) = verify(&other);
    assert_eq!(code, 1);
    assert_eq!(
        kinds(&replayed)
            .iter()
            .filter(|(k, _)| k == "media-copy-missing")
            .count(),
        CLEAN.len()
    );
    // Nothing in DEST was written by any of this.
    assert!(
        fs::symlink_metadata(dest.join(&names[2]))
            .expect("stat")
            .file_type()
            .is_symlink()
    );
}
