//! The passphrase-protected profile-signing key of a standalone host (issue 14, item 4):
//! `init --passphrase` and `key protect`; the commands that sign need the passphrase
//! (from a file, a descriptor or a real terminal), the ones that verify do not, a wrong
//! one writes nothing, and the guard keeps signing its trail unattended.

mod common;
mod watcher;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Env, assert_refused, pacsguard, stderr, stdout};
use watcher::Watcher;

const PASSPHRASE: &str = "long enough to guard a PACS";

/// A file holding `text` and a newline, beside the home.
fn secret_file(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    fs::write(&path, format!("{text}\n")).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// `pacsguard --home HOME ARGS` with no controlling terminal (`setsid`): a prompt cannot
/// be answered, so the passphrase must come from where the arguments say.
fn run_detached(env: &Env, args: &[&str]) -> Output {
    Command::new("setsid")
        .arg("--wait")
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .arg("--home")
        .arg(&env.home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setsid runs")
}

/// The bytes of every file of the home that a command writes (trail, store, keys,
/// generations), to prove that a refused command wrote none of them.
fn home_state(home: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut dirs = vec![home.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            // The lock file's holder line is rewritten by whoever takes the lock.
            if path.file_name().is_some_and(|n| n == "lock") {
                continue;
            }
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                all.push((path.clone(), fs::read(&path).expect("read")));
            }
        }
    }
    all.sort();
    all
}

/// A home made with `init --passphrase` and the tree profiled with the passphrase.
fn protected_env() -> (Env, PathBuf) {
    let env = Env::new();
    // Env::new ran a plain init; start again with a protected one.
    fs::remove_dir_all(&env.home).expect("rm home");
    let pass = secret_file(&env, "pass", PASSPHRASE);
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass.to_str().expect("utf-8"),
            "init",
            "--passphrase",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("protected by a passphrase"),
        "{}",
        stdout(&out)
    );
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass.to_str().expect("utf-8"),
            "profile",
            env.tree_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (env, pass)
}

#[test]
fn the_key_file_is_useless_without_its_passphrase() {
    let (env, _) = protected_env();
    let key = env.home.join("profile.key");
    let meta = fs::metadata(&key).expect("profile.key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&key).expect("read");
    assert!(
        text.starts_with("PacsGuard Ed25519 signing key v2 (passphrase)\n"),
        "{text}"
    );
    assert!(
        text.contains("\nkdf argon2id v=19 m=65536 t=3 p=1\n"),
        "{text}"
    );
    // The public key it names is profile.pub's, and it is not the home (trail) key.
    let public = fs::read_to_string(env.home.join("profile.pub")).expect("profile.pub");
    assert!(
        text.contains(&format!("\npublic {}", public.trim())),
        "{text}"
    );
    let trail = fs::read_to_string(env.home.join("signing.pub")).expect("signing.pub");
    assert_ne!(public.trim(), trail.trim());
}

#[test]
fn signing_needs_the_passphrase_and_verifying_does_not() {
    let (env, pass) = protected_env();
    let pass = pass.to_str().expect("utf-8");
    let wrong = secret_file(&env, "wrong", "not the passphrase at all");
    let wrong = wrong.to_str().expect("utf-8");
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");

    // check, scan, audit verify: no passphrase, no terminal.
    let out = run_detached(&env, &["check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("content-changed"), "{}", stdout(&out));
    let out = run_detached(&env, &["scan", env.tree_str()]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let out = run_detached(&env, &["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // Every command that signs: without a passphrase, or with a wrong one, exit 2 and
    // not one byte of the home changed.
    let export = env.dir.path().join("release.pgx");
    let export = export.to_str().expect("utf-8");
    let dest = env.dir.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let signing: Vec<Vec<&str>> = vec![
        vec!["profile", env.tree_str()],
        vec!["accept", "--all", "--reason", "patch 7"],
        vec!["profile", "export", "--out", export],
        vec!["recover", "--apply", "--from", env.tree_str()],
        vec![
            "media",
            "import",
            env.tree_str(),
            dest.to_str().expect("utf-8"),
        ],
    ];
    for args in &signing {
        let before = home_state(&env.home);
        let out = run_detached(&env, args);
        assert_refused(&out, "no terminal to ask it on");
        let mut with_wrong = vec!["--passphrase-file", wrong];
        with_wrong.extend_from_slice(args);
        let out = run_detached(&env, &with_wrong);
        assert_refused(&out, "the passphrase is wrong");
        assert!(home_state(&env.home) == before, "{args:?} changed the home");
        assert!(!Path::new(export).exists());
        assert_eq!(fs::read_dir(&dest).expect("list").count(), 0);
    }

    // With it, from a file or from a descriptor.
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass,
            "accept",
            "--all",
            "--reason",
            "patch 7",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "exec setsid --wait \"$0\" --home \"$1\" --passphrase-fd 3 profile export --out \"$2\" 3<\"$3\"",
        )
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .arg(&env.home)
        .arg(export)
        .arg(pass)
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The export and the profile verify with profile.pub, without the passphrase.
    let trust = env.home.join("profile.pub");
    let out = run_detached(
        &env,
        &[
            "check",
            "--against",
            export,
            "--trust",
            trust.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run_detached(&env, &["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // The home key does not verify what the profile key signed.
    let home_key = env.home.join("signing.pub");
    let out = run_detached(
        &env,
        &[
            "check",
            "--against",
            export,
            "--trust",
            home_key.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The prompt of a real terminal (`script` gives the command a pseudo-terminal): the
/// passphrase typed is read with echo off, so it never appears in what the terminal shows.
#[test]
fn the_passphrase_is_asked_on_the_terminal_without_echo() {
    let (env, _) = protected_env();
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");
    let command = format!(
        "{} --home {} accept --all --reason terminal",
        env!("CARGO_BIN_EXE_pacsguard"),
        env.home.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        // Typed after the prompt is up: a terminal flushes what came before it.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin
            .write_all(format!("{PASSPHRASE}\n").as_bytes())
            .expect("type");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let out = child.wait_with_output().expect("script ends");
    let shown = stdout(&out);
    assert!(shown.contains("passphrase of"), "{shown}");
    assert!(
        !shown.contains(PASSPHRASE),
        "the passphrase was echoed: {shown}"
    );
    assert!(shown.contains("accepted"), "{shown}{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{shown}");
}

/// Ctrl-C at the passphrase prompt of a real terminal (a pseudo-terminal made by
/// python's `pty`): the terminal gets its echo back (it was left off, and the shell
/// after showed nothing typed), the process ends as Ctrl-C ends it (SIGINT), and
/// nothing of the home was written.
#[test]
fn ctrl_c_at_the_passphrase_prompt_gives_the_terminal_its_echo_back() {
    let (env, _) = protected_env();
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");
    let before = home_state(&env.home);
    // The prompt is written once echo is off: Ctrl-C is typed after it is seen, never
    // after a fixed wait; 120 s is only the bound of a failure.
    let script = r#"
import os, pty, select, signal, sys, termios, time
exe, home = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    # As a shell on a terminal starts it: a test run in the background of a shell
    # without job control inherits SIGINT ignored, and a process that ignores SIGINT
    # rightly outlives Ctrl-C (it then says so and exits 2).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(exe, [exe, "--home", home, "accept", "--all", "--reason", "terminal"])
seen, deadline = b"", time.monotonic() + 120
while b"passphrase of" not in seen:
    if time.monotonic() > deadline:
        print("no prompt:", seen); sys.exit(3)
    ready, _, _ = select.select([fd], [], [], 1)
    if ready:
        seen += os.read(fd, 1024)
os.write(fd, b"\x03")
deadline, after = time.monotonic() + 120, b""
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9); print("still running after Ctrl-C"); sys.exit(4)
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            after += os.read(fd, 1024)
        except OSError:
            pass
echo = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
print("exit", os.waitstatus_to_exitcode(status), "echo", echo)
# What it said, for a failure's message.
print("before Ctrl-C:", seen)
print("after Ctrl-C:", after)
"#;
    let out = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_pacsguard")])
        .arg(&env.home)
        .output()
        .expect("python3 runs");
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert_eq!(
        said.lines().next().unwrap_or_default(),
        "exit -2 echo True",
        "killed by SIGINT, echo back:\n{said}{}",
        stderr(&out)
    );
    assert!(home_state(&env.home) == before, "nothing written");
}

/// SIGTERM (or a hang-up) while the passphrase is asked on a real terminal: the process
/// ends as the signal ends it, and the terminal has its echo, line editing and signal
/// keys back (they were left off: the next program run from it could not even be
/// interrupted) - review s11-r14.
#[test]
fn sigterm_at_the_passphrase_prompt_gives_the_terminal_back() {
    let (env, _) = protected_env();
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");
    let before = home_state(&env.home);
    let script = r#"
import os, pty, select, signal, sys, termios, time
exe, home = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(exe, [exe, "--home", home, "accept", "--all", "--reason", "terminal"])
seen, deadline = b"", time.monotonic() + 120
while b"passphrase of" not in seen:
    if time.monotonic() > deadline:
        print("no prompt:", seen); sys.exit(3)
    ready, _, _ = select.select([fd], [], [], 1)
    if ready:
        seen += os.read(fd, 1024)
os.kill(pid, signal.SIGTERM)
deadline = time.monotonic() + 120
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9); print("still running after SIGTERM"); sys.exit(4)
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            os.read(fd, 1024)
        except OSError:
            pass
lflag = termios.tcgetattr(fd)[3]
print("exit", os.waitstatus_to_exitcode(status), "echo", bool(lflag & termios.ECHO),
      "icanon", bool(lflag & termios.ICANON), "isig", bool(lflag & termios.ISIG))
"#;
    let out = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_pacsguard")])
        .arg(&env.home)
        .output()
        .expect("python3 runs");
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert_eq!(
        said.trim(),
        "exit -15 echo True icanon True isig True",
        "killed by SIGTERM, the terminal as it was"
    );
    assert!(home_state(&env.home) == before, "nothing written");
}

/// Types `typed` at the passphrase prompt of `accept` on a real terminal (python's
/// `pty`), the bytes written as the terminal takes them; returns the exit code and
/// everything the terminal showed from the prompt on, until the process ended and
/// whatever it left unread came back.
fn at_the_prompt(env: &Env, typed: &[u8]) -> (Option<i32>, String) {
    let script = r#"
import os, pty, select, sys, time
exe, home, typed = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execv(exe, [exe, "--home", home, "accept", "--all", "--reason", "terminal"])
seen, deadline = b"", time.monotonic() + 120
while b"passphrase of" not in seen:
    if time.monotonic() > deadline:
        print("no prompt:", seen); sys.exit(3)
    ready, _, _ = select.select([fd], [], [], 1)
    if ready:
        seen += os.read(fd, 1024)
shown, status, deadline = b"", None, time.monotonic() + 120
while True:
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status, quiet_until = st, time.monotonic() + 1
    elif time.monotonic() > quiet_until:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9); print("still running"); sys.exit(4)
    ready, writable, _ = select.select([fd], [fd] if typed else [], [], 0.1)
    if writable and typed:
        try:
            typed = typed[os.write(fd, typed[:256]):]
        except OSError:
            typed = b""
    if ready:
        try:
            shown += os.read(fd, 4096)
        except OSError:
            pass
print(os.waitstatus_to_exitcode(status))
sys.stdout.write(shown.decode(errors="replace"))
"#;
    let hex: String = typed.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_pacsguard")])
        .arg(&env.home)
        .arg(hex)
        .output()
        .expect("python3 runs");
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let (code, shown) = said.split_once('\n').unwrap_or((&said, ""));
    (code.trim().parse().ok(), shown.to_string())
}

/// A paste far longer than a passphrase at the prompt is refused, naming the limit, and
/// read to its end: none of it comes back on the screen afterwards (the prompt stopped
/// reading at the limit, and the rest was echoed and left to the shell as its next
/// command); Ctrl-D on an empty prompt says what was empty - review s11-r14.
#[test]
fn a_long_paste_or_nothing_at_the_passphrase_prompt_is_refused_by_name_and_never_shown() {
    let (env, _) = protected_env();
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");
    let before = home_state(&env.home);
    let mut paste = b"Xq7Zr9Lm2".repeat(600);
    paste.push(b'\r');
    let (code, shown) = at_the_prompt(&env, &paste);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("MAX_PASSPHRASE_BYTES"), "{shown}");
    assert!(!shown.contains("Xq7"), "the paste is shown: {shown}");
    let (code, shown) = at_the_prompt(&env, b"\x04");
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("the passphrase typed at the prompt: is empty"),
        "{shown}"
    );
    assert!(home_state(&env.home) == before, "nothing written");
}

/// `key protect` on a home in use: the stored profile and the kept generations are signed
/// again by the new key, the trail goes on under the home key, and `check` and `diff`
/// work as before.
#[test]
fn key_protect_moves_profile_signing_to_a_new_key() {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"second\n").expect("write");
    let out = env.run(&["profile", env.tree_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let trail_before = fs::read(env.home.join("trail.pub")).expect("trail.pub");
    let short = secret_file(&env, "short", "too short");
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            short.to_str().expect("utf-8"),
            "key",
            "protect",
        ],
    );
    assert_refused(&out, "shorter than 12 characters");
    assert!(!env.home.join("profile.key").exists());
    let pass = secret_file(&env, "pass", PASSPHRASE);
    let pass = pass.to_str().expect("utf-8");
    let out = run_detached(
        &env,
        &["--passphrase-file", pass, "key", "protect", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["generation"], 2, "{report}");
    assert_eq!(report["generations_resigned"], 2, "{report}");
    // Again: refused, the key stays.
    let key = fs::read(env.home.join("profile.key")).expect("key");
    let out = run_detached(&env, &["--passphrase-file", pass, "key", "protect"]);
    assert_refused(&out, "already protected");
    assert_eq!(fs::read(env.home.join("profile.key")).expect("key"), key);

    assert_eq!(
        fs::read(env.home.join("trail.pub")).expect("trail.pub"),
        trail_before
    );
    let out = run_detached(&env, &["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run_detached(&env, &["diff", "1", "2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run_detached(&env, &["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // profile.pub replaced by another key: refused, not trusted.
    let other = Env::new();
    fs::copy(other.home.join("signing.pub"), env.home.join("profile.pub")).expect("swap");
    assert_refused(
        &run_detached(&env, &["check"]),
        "one of the pair was replaced",
    );
}

/// A guard (`watch`) runs unattended on a protected home: it needs no passphrase to start
/// or to sign its trail; an `accept` relayed to it carries the passphrase the client
/// checked, and a wrong one is refused by the client before anything reaches the guard.
#[test]
fn a_running_guard_needs_no_passphrase_and_a_relayed_accept_brings_it() {
    let (env, pass) = protected_env();
    let pass = pass.to_str().expect("utf-8");
    let wrong = secret_file(&env, "wrong", "not the passphrase at all");
    let guard = Watcher::start(&env, &[]);
    fs::write(env.path("readme.txt"), b"patched\n").expect("write");
    assert!(
        guard.wait(std::time::Duration::from_secs(60), |f, _| f
            .iter()
            .any(|f| f["kind"] == "content-changed")),
        "{}",
        guard.stderr()
    );
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            wrong.to_str().expect("utf-8"),
            "accept",
            "--all",
            "--reason",
            "patch 7",
        ],
    );
    assert_refused(&out, "the passphrase is wrong");
    let out = run_detached(&env, &["accept", "--all", "--reason", "patch 7"]);
    assert_refused(&out, "no terminal to ask it on");
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass,
            "accept",
            "--all",
            "--reason",
            "patch 7",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("accepted"), "{}", stdout(&out));
    let (code, _, err) = guard.stop();
    assert!(matches!(code, 0 | 1), "{err}");
    let out = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .args(["audit", "verify"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run_detached(&env, &["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `watch` on a protected home with a root not yet profiled: the guard never holds the
/// passphrase (a --passphrase-file given to it is not read), so it says to run `profile`
/// first, instead of asking for the very option it was given.
#[test]
fn watch_of_an_unprofiled_root_on_a_protected_home_says_to_profile_it_first() {
    let (env, pass) = protected_env();
    let other = env.dir.path().join("other");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join("a.txt"), "a\n").expect("write");
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass.to_str().expect("utf-8"),
            "watch",
            other.to_str().expect("utf-8"),
        ],
    );
    assert_refused(&out, "run `pacsguard profile` for it first");
    assert!(
        !stderr(&out).contains("--passphrase-file FILE"),
        "{}",
        stderr(&out)
    );
}

/// A passphrase file others may read is refused before anything is signed: the
/// passphrase is all that protects the sealed key (`profile.key` itself is refused at
/// such a mode). The same passphrase from a pipe or a 0600 file works.
#[test]
fn a_passphrase_file_others_can_read_is_refused() {
    let (env, pass) = protected_env();
    let before = home_state(&env.home);
    for mode in [0o644, 0o640, 0o604] {
        fs::set_permissions(&pass, fs::Permissions::from_mode(mode)).expect("chmod");
        let out = run_detached(
            &env,
            &[
                "--passphrase-file",
                pass.to_str().expect("utf-8"),
                "profile",
                env.tree_str(),
            ],
        );
        assert_refused(&out, &format!("mode {mode:04o}: others may read it"));
        assert_eq!(home_state(&env.home).len(), before.len());
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf '%s\\n' \"$3\" | exec setsid --wait \"$0\" --home \"$1\" --passphrase-file /dev/stdin profile \"$2\"")
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .arg(&env.home)
        .arg(env.tree_str())
        .arg(PASSPHRASE)
        .output()
        .expect("sh");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
}

/// `init --passphrase --json` is one JSON document (a script parses stdout whole): the
/// home and, under `profile_key`, the protected key `key protect` would report.
#[test]
fn init_with_a_passphrase_prints_one_json_document() {
    let env = Env::new();
    fs::remove_dir_all(&env.home).expect("rm home");
    let pass = secret_file(&env, "pass", PASSPHRASE);
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            pass.to_str().expect("utf-8"),
            "init",
            "--passphrase",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let document: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(document["command"], "init", "{document:#}");
    let report = &document;
    assert!(report["key_fingerprint"].is_string(), "{document:#}");
    assert!(
        report["profile_key"]["key_fingerprint"].is_string(),
        "{document:#}"
    );
    assert_ne!(
        report["profile_key"]["key_fingerprint"], report["key_fingerprint"],
        "{document:#}"
    );
}

/// A command waiting for (then holding) the passphrase is non-dumpable: another process
/// of the same unprivileged user cannot read its memory or environment through /proc
/// (nor would a crash write a core file with the passphrase in it). Run as `nobody`
/// (root may read any process); the passphrase comes from a FIFO the test holds open
/// without writing, so the command is caught waiting for it.
#[test]
fn a_command_holding_the_passphrase_cannot_be_read_by_its_own_user() {
    let (env, _pass) = protected_env();
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&env.home)
        .arg(env.dir.path())
        .status()
        .expect("chown");
    assert!(chown.success());
    let fifo = env.dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    assert!(
        Command::new("chown")
            .arg("65534:65534")
            .arg(&fifo)
            .status()
            .expect("chown")
            .success()
    );
    let mut child = Command::new("setpriv")
        .args(nobody)
        .arg(env!("CARGO_BIN_EXE_pacsguard"))
        .arg("--home")
        .arg(&env.home)
        .arg("--passphrase-file")
        .arg(&fifo)
        .args(["profile", env.tree_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("setpriv");
    // Opening the FIFO's writing end without blocking succeeds once the command is
    // waiting at its reading end, that is inside the passphrase read.
    let mut writer = None;
    for _ in 0..300 {
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&fifo)
        {
            Ok(w) => {
                writer = Some(w);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let writer = writer.expect("the command waits for the passphrase");
    let peek = Command::new("setpriv")
        .args(nobody)
        .arg("cat")
        .arg(format!("/proc/{}/environ", child.id()))
        .output()
        .expect("cat");
    drop(writer);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !peek.status.success(),
        "another process of the same user read the environment of the command holding the passphrase"
    );
    assert!(
        stderr(&peek).contains("Permission denied"),
        "{}",
        stderr(&peek)
    );
}

/// `key protect` interrupted after it wrote `profile.key` and `profile.pub` (a power
/// cut, kill -9), before the store and the kept generations were signed again: every
/// command refused the store with a foreign-signature error, the guard included. It now
/// says a protection was interrupted, and `key protect` run again finishes it with the
/// new key's passphrase (the state is made as the crash leaves it: the key pair of a
/// finished protection of a copy of the home, put beside the unprotected store).
#[test]
fn an_interrupted_key_protect_is_finished_by_running_it_again() {
    let env = Env::new();
    for text in ["one\n", "two\n"] {
        fs::write(env.path("readme.txt"), text).expect("write");
        let out = env.run(&["profile", env.tree_str()]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    }
    let pass = secret_file(&env, "pass", PASSPHRASE);
    let copy = env.dir.path().join("home-copy");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&env.home)
            .arg(&copy)
            .status()
            .expect("cp")
            .success()
    );
    let generation_1 = format!("generations/{:020}.pgx", 1);
    let signed_by_home_key = fs::read(env.home.join(&generation_1)).expect("read");
    let out = pacsguard()
        .arg("--home")
        .arg(&copy)
        .args(["--passphrase-file", pass.to_str().expect("utf-8")])
        .args(["key", "protect"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["profile.key", "profile.pub"] {
        fs::copy(copy.join(name), env.home.join(name)).expect("copy key");
    }
    let check = env.run(&["check", env.tree_str()]);
    assert_refused(&check, "run `pacsguard key protect` again to finish it");
    let finish = |env: &Env| {
        run_detached(
            env,
            &[
                "--passphrase-file",
                pass.to_str().expect("utf-8"),
                "key",
                "protect",
            ],
        )
    };
    // A wrong passphrase finishes nothing.
    let wrong = secret_file(&env, "wrong", "not the passphrase at all");
    let before = home_state(&env.home);
    let out = run_detached(
        &env,
        &[
            "--passphrase-file",
            wrong.to_str().expect("utf-8"),
            "key",
            "protect",
        ],
    );
    assert_refused(&out, "passphrase is wrong");
    assert_eq!(home_state(&env.home), before);
    let out = finish(&env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let check = env.run(&["check", env.tree_str()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let listed = env.run(&["profile", "generations"]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    // Interrupted later, among the kept generations: one still signed by the home key.
    fs::write(env.home.join(&generation_1), signed_by_home_key).expect("put back");
    assert_refused(
        &env.run(&["profile", "generations"]),
        "not signed by this home's key",
    );
    let out = finish(&env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = env.run(&["profile", "generations"]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    // Nothing left to finish: refused, as for any protected home.
    assert_refused(&finish(&env), "already protected");
    let audit = env.run(&["audit", "verify"]);
    assert_eq!(audit.status.code(), Some(0), "{}", stderr(&audit));
}

/// Issue 14, item 4 (never started before session 38): a passphrase that may have been
/// seen (a colleague left, it was typed on a shared screen) must be changeable without
/// a new key, which would make every kept generation and every export signed by the old
/// one a stranger's. `key passphrase` seals the same key under a new passphrase: the old
/// one opens it no more, the new one signs, nothing signed before changes; a wrong
/// current passphrase, a weak new one, the same one again and an unprotected home are
/// refused by name, exit 2, with nothing written.
#[test]
fn key_passphrase_seals_the_same_key_under_a_new_passphrase() {
    let (env, old) = protected_env();
    let public = fs::read_to_string(env.home.join("profile.pub")).expect("profile.pub");
    let new = secret_file(&env, "new", "another long passphrase for the PACS");
    let wrong = secret_file(&env, "wrong", "not the passphrase of this key");
    let weak = secret_file(&env, "weak", "short");
    let arg = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let change = |current: &PathBuf, next: &PathBuf| {
        run_detached(
            &env,
            &[
                "--passphrase-file",
                &arg(current),
                "key",
                "passphrase",
                "--new-passphrase-file",
                &arg(next),
            ],
        )
    };
    // Refused, nothing written: a wrong current passphrase, a weak new one, the same.
    let before = home_state(&env.home);
    for (current, next, needle) in [
        (&wrong, &new, "profile.key"),
        (&old, &weak, "passphrase"),
        (
            &old,
            &old,
            "another file or descriptor than the current one",
        ),
    ] {
        let out = change(current, next);
        assert_refused(&out, needle);
        assert!(
            home_state(&env.home) == before,
            "a refused change wrote to the home: {}",
            stderr(&out)
        );
    }
    let out = change(&old, &new);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sealed under the new passphrase"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        fs::read_to_string(env.home.join("profile.pub")).expect("profile.pub"),
        public,
        "the same key"
    );
    // What the key signed before still verifies: the same profile, the same key.
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let trail = fs::read_to_string(env.home.join("audit.log")).expect("trail");
    assert!(
        trail.contains("the passphrase that seals the profile-signing key"),
        "{trail}"
    );
    // The old passphrase opens it no more; the new one signs.
    let sign = |pass: &PathBuf| {
        run_detached(
            &env,
            &["--passphrase-file", &arg(pass), "profile", env.tree_str()],
        )
    };
    let refused = sign(&old);
    assert_refused(&refused, "profile.key");
    let signed = sign(&new);
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    // A home without a protected key has no passphrase to change.
    let plain = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_pacsguard"))
        .arg("--home")
        .arg(&plain.home)
        .args(["--passphrase-file", &arg(&old), "key", "passphrase"])
        .args(["--new-passphrase-file", &arg(&new)])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_refused(&out, "not protected by a passphrase");
}

/// Review rv38-lead: `key passphrase` beside a running guard was refused by the home's
/// lock, so changing a passphrase meant stopping the guard and leaving the archive
/// unguarded meanwhile. It is relayed as `accept` is: the client checks the current
/// passphrase, the guard seals the key under the new one and records it on its trail.
#[test]
fn key_passphrase_beside_a_running_guard_is_relayed_to_it() {
    let (env, old) = protected_env();
    let new = secret_file(&env, "new", "another long passphrase for the PACS");
    let wrong = secret_file(&env, "wrong", "not the passphrase of this key");
    let arg = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let guard = Watcher::start(&env, &[]);
    let change = |current: &PathBuf| {
        run_detached(
            &env,
            &[
                "--passphrase-file",
                &arg(current),
                "key",
                "passphrase",
                "--new-passphrase-file",
                &arg(&new),
            ],
        )
    };
    assert_refused(&change(&wrong), "profile.key");
    let out = change(&old);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("sealed under the new passphrase"),
        "{}",
        stdout(&out)
    );
    let (code, _, err) = guard.stop();
    assert!(matches!(code, 0 | 1), "{err}");
    let trail = fs::read_to_string(env.home.join("audit.log")).expect("trail");
    assert!(
        trail.contains("the passphrase that seals the profile-signing key"),
        "recorded by the guard"
    );
    let refused = run_detached(
        &env,
        &["--passphrase-file", &arg(&old), "profile", env.tree_str()],
    );
    assert_refused(&refused, "profile.key");
    let signed = run_detached(
        &env,
        &["--passphrase-file", &arg(&new), "profile", env.tree_str()],
    );
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
}
