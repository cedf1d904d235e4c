//! `pacsguard serve` end to end: the real binary on 127.0.0.1 (a free port), driven over
//! HTTPS by curl with a cookie jar, its certificate read by openssl, then stopped with
//! SIGTERM and its trail read back with `pacsguard audit`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, pacsguard, stderr, stdout};
use pacsguard_console::totp;

const PASSWORD: &str = "amber lantern over quiet harbour";

/// A running `pacsguard serve`, its stderr collected line by line.
struct Server {
    child: Child,
    stderr: Arc<Mutex<String>>,
    base: String,
    jar: PathBuf,
    cacert: PathBuf,
}

impl Server {
    fn start(env: &Env, args: &[&str]) -> Server {
        let mut child = pacsguard()
            .arg("--home")
            .arg(&env.home)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pacsguard serve starts");
        let err = child.stderr.take().expect("stderr");
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().expect("test fixture");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut server = Server {
            child,
            stderr: text,
            base: String::new(),
            jar: env.dir.path().join("cookies.txt"),
            cacert: env.home.join("console/cert.pem"),
        };
        assert!(
            server.wait_for("watching for changes", Duration::from_secs(60)),
            "serve did not start: {}",
            server.stderr()
        );
        let text = server.stderr();
        let start = text
            .find("console at ")
            .expect("the console's URL is printed")
            + "console at ".len();
        let end = start + text[start..].find('\n').expect("line");
        server.base = text[start..end].trim_end_matches('/').to_string();
        server
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("test fixture").clone()
    }

    fn wait_for(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
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
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--cacert"])
            .arg(&self.cacert)
            .arg("-c")
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
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
    fn stop(mut self) -> i32 {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    // Another command on the same home is refused while serve holds it.
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
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
