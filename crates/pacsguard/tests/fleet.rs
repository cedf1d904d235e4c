//! Many hosts, one console (issue 14): two real `serve` processes on loopback, a console
//! and a host, each with its own home. Enrolment (tokens spent once, expired, a wrong
//! fingerprint), the host's trail delivered and witnessed, the attack of the issue (the
//! host's trail deleted and started anew) flagged by the console, and revocation.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{Running, guard_as};
use common::{Env, assert_refused, pacsguard, stderr, stdout};

/// A running `pacsguard serve`.
type Serve = Running;

impl Serve {
    fn start(env: &Env, args: &[&str]) -> Serve {
        Serve::start_as(pacsguard(), env, args)
    }

    /// `serve` with the host's clock moved by `offset` (libfaketime's `-1d`, `+2h`):
    /// the clock it reads and dates its records and reports by, not the monotonic one
    /// its timeouts run on. The library is preloaded into `serve` itself (the
    /// `faketime` program would run it as its child, which a stop would not reach).
    fn start_with_clock(env: &Env, args: &[&str], offset: &str) -> Serve {
        let mut faked = pacsguard();
        faked
            .env(
                "LD_PRELOAD",
                "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
            )
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        Serve::start_as(faked, env, args)
    }

    fn start_as(command: std::process::Command, env: &Env, args: &[&str]) -> Serve {
        guard_as(
            command,
            env,
            &[&["serve", "--listen", "127.0.0.1:0"], args].concat(),
        )
    }

    /// `pacsguard watch` on `env`, once it guards.
    fn watch(env: &Env) -> Serve {
        guard_as(pacsguard(), env, &["watch"])
    }
}

fn token(console: &Env, expires: &str) -> String {
    let out = console.run(&["console", "enrol-token", "--expires", expires]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn hosts(console: &Env) -> Vec<serde_json::Value> {
    let out = console.run(&["console", "hosts", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Polls the console's hosts until `test` holds for the one named `name`.
fn wait_host(
    console: &Env,
    name: &str,
    test: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_host_within(console, name, Duration::from_secs(60), test)
}

/// [`wait_host`], for at most `within`.
fn wait_host_within(
    console: &Env,
    name: &str,
    within: Duration,
    test: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let found = hosts(console).into_iter().find(|h| h["name"] == name);
        if let Some(host) = &found
            && test(host)
        {
            return host.clone();
        }
        assert!(Instant::now() < deadline, "host {name}: {found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The records the console stored for `name`, read with Python's sqlite3.
fn stored_records(console: &Env, name: &str) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             db=sqlite3.connect(sys.argv[1])\n\
             for (line,) in db.execute('SELECT r.line FROM fleet_records r JOIN fleet_hosts h ON h.id=r.host WHERE h.name=? ORDER BY r.seq',(sys.argv[2],)):\n    \
             sys.stdout.buffer.write(line+b'\\n')",
        )
        .arg(console.home.join("pacsguard.db"))
        .arg(name)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(String::from)
        .collect()
}

/// A console listening for hosts on `listen`, its first administrator stepped up, and a
/// host enrolled as `name` whose generation 1 the console approved for `reason`; the
/// host's guard kept the approval (at `kept`) and was stopped: where the tests of a host
/// put back on an approval start.
struct ApprovedFirst {
    console: Env,
    server: Serve,
    web: Web,
    host: Env,
    kept: std::path::PathBuf,
}

fn approved_first(listen: &str, name: &str, reason: &str) -> ApprovedFirst {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", listen]);
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| h["profile"]["generation"] == 1);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    approve_first_offered(&web, &console, name, 1, reason);
    let kept = host.home.join("fleet/approvals.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    guard.stop();
    ApprovedFirst {
        console,
        server,
        web,
        host,
        kept,
    }
}

/// A host with a home of its own, profiled, enrolled as `name` in `console` (its `serve`
/// listening for hosts) with a fresh token; its guard not started.
fn enrolled_host(console: &Env, server: &Serve, name: &str) -> Env {
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        name,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    host
}

/// The number of records in the trail of the home at `home`: one line each in its
/// `audit.log`, delivered to the console or not.
fn trail_size(home: &std::path::Path) -> u64 {
    let log = std::fs::read(home.join("audit.log")).expect("the home's trail");
    log.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Root keeps a copy of the host's home (store, key, trail, enrolment) to put back later.
fn copy_of_home(host: &Env) -> tempfile::TempDir {
    let backup = tempfile::tempdir().expect("tempdir");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", host.home.display()))
        .arg(backup.path())
        .status()
        .expect("cp");
    assert!(copied.success());
    backup
}

/// Root on a host puts back a copy of its home: everything in it deleted, then the copy
/// (store, key, trail and enrolment as they were) copied in with `cp -a`.
fn put_back(home: &std::path::Path, copy: &std::path::Path) {
    for entry in std::fs::read_dir(home).expect("home") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("intruder deletes");
        } else {
            std::fs::remove_file(&path).expect("intruder deletes");
        }
    }
    let restored = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", copy.display()))
        .arg(home)
        .status()
        .expect("cp");
    assert!(restored.success());
}

#[test]
fn a_host_enrols_reports_is_witnessed_and_its_rewritten_trail_is_flagged() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");

    let host = Env::new();
    host.profile(&[]);
    let enroll = |env: &Env, token: &str, fingerprint: &str, name: &str| {
        env.run(&[
            "enroll",
            &url,
            "--token",
            token,
            "--fingerprint",
            fingerprint,
            "--name",
            name,
        ])
    };

    // A certificate other than the console's: refused before anything is sent.
    let first = token(&console, "15m");
    let wrong = "00:".repeat(31) + "00";
    let out = enroll(&host, &first, &wrong, "pacs-01");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("fingerprint"), "{}", stderr(&out));
    assert!(!host.home.join("fleet").exists(), "nothing half-written");

    let out = enroll(&host, &first, &fingerprint, "pacs-01");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(host.home.join("fleet/key.pem").is_file());

    // The same token again, from another host: spent.
    let other = Env::new();
    other.profile(&[]);
    let out = enroll(&other, &first, &fingerprint, "pacs-02");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("used already"), "{}", stderr(&out));
    // An expired one.
    let short = token(&console, "1s");
    std::thread::sleep(Duration::from_millis(2100));
    let out = enroll(&other, &short, &fingerprint, "pacs-02");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(!other.home.join("fleet").exists());

    // The host guards and reports: every record it signed reaches the console once, in
    // order, each checkpoint witnessed, the cosignatures kept beside its trail.
    let guard = Serve::start(&host, &[]);
    assert!(
        guard.stderr().contains("reporting to the console"),
        "{}",
        guard.stderr()
    );
    std::fs::write(host.path("study/new.dcm"), b"arrived").expect("write");
    let seen = wait_host(&console, "pacs-01", |h| {
        h["records"].as_u64() > Some(3) && h["witnessed"] == h["records"] && h["state"] == "ok"
    });
    guard.stop();
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let stored = stored_records(&console, "pacs-01");
    assert!(stored.len() as u64 >= seen["records"].as_u64().expect("records"));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        stored,
        lines[..stored.len()],
        "the host's records, once, in order"
    );
    let cosigned =
        std::fs::read_to_string(host.home.join("fleet/cosignatures.jsonl")).expect("kept");
    assert!(cosigned.contains("/pacsguard-console"), "{cosigned}");
    assert_eq!(hosts(&console)[0]["state"], "ok");
    // `audit verify` checks the trail against the cosignatures kept beside it.
    let out = host.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let kept = host.home.join("fleet/cosignatures.jsonl");
    let copy = std::fs::read_to_string(&kept).expect("kept");
    let last = copy.lines().last().expect("one");
    let at = last.rfind(' ').expect("signature") + 3;
    let flipped = format!(
        "{}{}{}",
        &last[..at],
        if &last[at..=at] == "A" { "B" } else { "A" },
        &last[at + 1..]
    );
    std::fs::write(&kept, copy.replace(last, &flipped)).expect("edit");
    let out = host.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("cosignatures.jsonl"),
        "{}",
        stdout(&out)
    );
    std::fs::write(&kept, &copy).expect("put back");

    // The attack: root on the host deletes the trail and starts it anew.
    for name in ["audit.log", "checkpoints.jsonl", "pacsguard.db"] {
        std::fs::remove_file(host.home.join(name)).expect("intruder deletes");
    }
    let out = host.run(&["audit", "reinit", "--reason", "nothing to see"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A new trail on the record: not witnessed, said (a warning: the console raises it).
    let out = host.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("begins with `audit reinit`"),
        "{}",
        stdout(&out)
    );
    let guard = Serve::start(&host, &[host.tree_str()]);
    let flagged = wait_host(&console, "pacs-01", |h| h["state"] == "fork");
    assert!(
        flagged["detail"]
            .as_str()
            .unwrap_or("")
            .contains("started anew"),
        "{flagged}"
    );
    assert!(
        guard.wait_for("the console refused", Duration::from_secs(30)),
        "{}",
        guard.stderr()
    );
    guard.stop();
    // The console's own trail holds the alert.
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    assert!(
        stdout(&out).contains("host-trail-fork") && stdout(&out).contains("pacs-01"),
        "{}",
        stdout(&out)
    );

    // Review rv44-fleet case3: the whole home wiped but `fleet/` (key and trail key
    // too), `init` again: `audit verify` said intact, not a word of the console's
    // cosignatures, all of another trail now.
    let aside = host.dir.path().join("fleet-kept");
    std::fs::rename(host.home.join("fleet"), &aside).expect("keep fleet/");
    std::fs::remove_dir_all(&host.home).expect("wipe");
    let out = host.run(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::rename(&aside, host.home.join("fleet")).expect("put fleet/ back");
    let out = host.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("another trail of this host"),
        "{}",
        stdout(&out)
    );
    // Its cosignatures deleted too: an enrolled host whose trail the console never
    // cosigned says so (a warning: a host enrolled a moment ago has none yet either).
    std::fs::remove_file(host.home.join("fleet/cosignatures.jsonl")).expect("rm");
    let out = host.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("warning: no cosignature from the console")
            && stdout(&out).contains("for this trail"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_revoked_host_is_refused_with_a_clear_message() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ct-3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(hosts(&console)[0]["records"].as_u64() > Some(0));

    let out = console.run(&["console", "revoke-host", "ct-3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    let out = console.run(&["console", "revoke-host", "ct-3"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "revoked already: {}",
        stderr(&out)
    );

    // Enrolled again from the same home with a plain token (its old identity removed):
    // refused as a copy of the revoked host, whose trail key it names. Nothing proves
    // it is that host: the key is public. The admin is told how to continue it.
    let held = hosts(&console)[0]["records"].as_u64().expect("records");
    let reenrol = |token: &str, name: &str| {
        let _ = std::fs::remove_dir_all(host.home.join("fleet"));
        host.run(&[
            "enroll",
            &url,
            "--token",
            token,
            "--fingerprint",
            &fingerprint,
            "--name",
            name,
        ])
    };
    let out = reenrol(&self::token(&console, "15m"), "ct-3");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    host.run(&["check", host.tree_str()]);
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("enrol-token --continue ct-3"),
        "{}",
        stderr(&out)
    );
    let revoked = hosts(&console)
        .into_iter()
        .find(|h| h["name"] == "ct-3" && h["revoked"] == true)
        .expect("the revoked enrolment");
    assert_eq!(revoked["records"].as_u64(), Some(held), "{revoked}");

    // The admin revokes that enrolment and issues a token that continues ct-3. It
    // enrols under that name only (not spent by the refusal), once.
    let out = console.run(&["console", "revoke-host", "ct-3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = console.run(&["console", "enrol-token", "--continue", "ct-9"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no revoked ct-9: {}",
        stderr(&out)
    );
    let out = console.run(&["console", "enrol-token", "--continue", "ct-3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = stdout(&out).trim().to_string();
    let out = reenrol(&second, "ct-4");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("continues the trail"),
        "{}",
        stderr(&out)
    );
    let out = reenrol(&second, "ct-3");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = hosts(&console);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let again = listed
        .into_iter()
        .find(|h| h["name"] == "ct-3" && h["revoked"] == false)
        .expect("the new enrolment");
    assert_eq!(again["state"], "ok", "{again}");
    assert!(again["records"].as_u64() > Some(held), "{again}");
    assert_eq!(again["witnessed"], again["records"], "{again}");
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let stored = stored_records(&console, "ct-3");
    assert_eq!(
        stored,
        log.lines().take(stored.len()).collect::<Vec<_>>(),
        "every record once, in order, under the new enrolment"
    );
    server.stop();
}

/// Sends one report as the enrolled host whose identity is in `fleet` (its cert.pem and
/// key.pem), naming `key` as its trail key, with `count` made-up records and no
/// checkpoint, the way anyone with root on that host could (Python's ssl module);
/// returns the console's answer.
fn report_as(url: &str, fleet: &std::path::Path, key: &str, count: usize) -> String {
    report_from(url, fleet, key, 0, count)
}

/// As [`report_as`], the made-up records numbered from `first`.
fn report_from(url: &str, fleet: &std::path::Path, key: &str, first: u64, count: usize) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json,socket,ssl,struct,sys\n\
             addr,fleet,key,n,first=sys.argv[1:6]\n\
             host,port=addr.rsplit(':',1)\n\
             ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
             ctx.check_hostname=False\n\
             ctx.verify_mode=ssl.CERT_NONE\n\
             ctx.load_cert_chain(fleet+'/cert.pem',fleet+'/key.pem')\n\
             s=ctx.wrap_socket(socket.create_connection((host,int(port)),timeout=20))\n\
             recs=[json.dumps({'seq':int(first)+i,'detail':'forged'}) for i in range(int(n))]\n\
             body=json.dumps({'type':'report','trail_key':key.strip(),'interval':15,'first':int(first),'records':recs,'checkpoint':None}).encode()\n\
             s.sendall(struct.pack('>I',len(body))+body)\n\
             head=s.recv(4)\n\
             (m,)=struct.unpack('>I',head)\n\
             got=b''\n\
             while len(got)<m: got+=s.recv(m-len(got))\n\
             print(got.decode())\n",
        )
        .arg(url.strip_prefix("tls://").expect("tls url"))
        .arg(fleet)
        .arg(key)
        .arg(count.to_string())
        .arg(first.to_string())
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// pacs-01 is revoked. Anyone holding a plain enrolment token (one meant for a new
/// workstation) enrols another machine as "pacs-01" and sends one empty report naming
/// pacs-01's trail key, which is public (trail.pub): it is refused as a copy, and
/// pacs-01's records, checkpoint and approval stay with the revoked enrolment. The real
/// pacs-01, enrolled with a token that continues it, then carries its trail on.
#[test]
fn a_plain_token_under_a_revoked_hosts_name_does_not_take_its_trail() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let enroll = |env: &Env, token: &str| {
        let out = env.run(&[
            "enroll",
            &url,
            "--token",
            token,
            "--fingerprint",
            &fingerprint,
            "--name",
            "pacs-01",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    let victim = Env::new();
    victim.profile(&[]);
    enroll(&victim, &token(&console, "15m"));
    let out = victim.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = hosts(&console).remove(0);
    assert!(before["witnessed"].as_u64() > Some(0), "{before}");
    let out = console.run(&["console", "revoke-host", "pacs-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let intruder = Env::new();
    enroll(&intruder, &token(&console, "15m"));
    let key = std::fs::read_to_string(victim.home.join("trail.pub")).expect("public key");
    let said = report_as(&url, &intruder.home.join("fleet"), &key, 0);
    assert!(said.contains("refused"), "{said}");
    assert!(said.contains("enrol-token --continue pacs-01"), "{said}");
    let listed = hosts(&console);
    let revoked = listed
        .iter()
        .find(|h| h["revoked"] == true)
        .expect("the revoked pacs-01");
    assert_eq!(revoked["records"], before["records"], "{revoked}");
    assert_eq!(revoked["witnessed"], before["witnessed"], "{revoked}");
    assert_eq!(revoked["profile"], before["profile"], "{revoked}");
    let newcomer = listed
        .iter()
        .find(|h| h["revoked"] == false)
        .expect("the intruder");
    assert_eq!(newcomer["records"], 0, "{newcomer}");
    assert_eq!(newcomer["state"], "new-key", "{newcomer}");

    // The admin revokes the intruder and continues pacs-01 on its own machine.
    let out = console.run(&["console", "revoke-host", "pacs-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = console.run(&["console", "enrol-token", "--continue", "pacs-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_dir_all(victim.home.join("fleet")).expect("old identity");
    enroll(&victim, stdout(&out).trim());
    let out = victim.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = hosts(&console)
        .into_iter()
        .find(|h| h["name"] == "pacs-01" && h["revoked"] == false)
        .expect("the new enrolment");
    assert_eq!(again["state"], "ok", "{again}");
    assert!(
        again["records"].as_u64() >= before["records"].as_u64(),
        "{again}"
    );
    assert_eq!(again["profile"], before["profile"], "{again}");
    server.stop();
}

/// A host that stops reporting (killed, cut off) is raised as silent once its promised
/// interval and the console's grace have passed, on the console's own trail.
#[test]
fn a_host_killed_mid_stream_is_raised_as_silent() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "mr-1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut guard = Serve::start(&host, &[]);
    wait_host(&console, "mr-1", |h| h["records"].as_u64() > Some(0));
    let killed = Instant::now();
    guard.child.kill().expect("kill -9");
    let silent = wait_host(&console, "mr-1", |h| h["state"] == "silent");
    // Not before the promised interval (15 s) and the grace (10 s) have passed.
    assert!(killed.elapsed() >= Duration::from_secs(20), "{silent}");
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    assert!(
        stdout(&out).contains("host-silent") && stdout(&out).contains("mr-1"),
        "{}",
        stdout(&out)
    );
}

/// The console killed (-9) while a host reports, the host writing on: when the console
/// is back, it holds every record of the host exactly once, in order, every checkpoint
/// verified, and the host was never held back.
#[test]
fn a_console_killed_mid_stream_loses_nothing_and_gets_nothing_twice() {
    let console = Env::new();
    console.profile(&[]);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let fleet = format!("127.0.0.1:{port}");
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &format!("tls://{fleet}"),
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "us-4",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "us-4", |h| h["records"].as_u64() > Some(0));
    drop(server); // kill -9
    for i in 0..20 {
        std::fs::write(host.path(&format!("study/while-down-{i}.dcm")), b"x").expect("write");
    }
    assert!(
        guard.wait_for("console delivery:", Duration::from_secs(30)),
        "the host says the console is down: {}",
        guard.stderr()
    );
    // Meanwhile the administrator gives browsers the hospital's own certificate (review
    // rv44-fleet case17: every enrolled host had pinned the web certificate and was cut
    // off, without a word): the hosts keep the console's fleet identity they pinned.
    let pki = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (pki.path().join("cert.pem"), pki.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=pacs-console.example.org",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .args([&key, std::path::Path::new("-out"), &cert])
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", stderr(&made));
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    common::append_config(
        &console,
        &format!(
            "[console]\ncert = '{}'\nkey = '{}'\n",
            cert.display(),
            key.display()
        ),
    );
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    assert!(
        guard.wait_for("console delivery resumed", Duration::from_secs(60)),
        "the host reports on under the hospital's certificate: {}",
        guard.stderr()
    );
    let said = server.stderr();
    let fleet_line = said
        .lines()
        .find(|l| l.contains("fleet identity (what hosts pin"))
        .unwrap_or_else(|| panic!("the start says what the fleet listener presents: {said}"));
    assert!(
        fleet_line.contains(&format!("SHA-256 fingerprint {fingerprint};")),
        "the fingerprint the host pinned: {fleet_line}"
    );
    let web = server.after("certificate for browsers ");
    assert!(
        web.starts_with(&cert.display().to_string()) && !web.contains(&fingerprint),
        "browsers get the hospital's: {web}"
    );
    guard.stop();
    // What the host signed on its way out: the stop delivers it (review r27-fleet), and
    // by hand too, for a loaded machine on which the stop's deadline passed.
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    let held = wait_host(&console, "us-4", |h| h["state"] == "ok");
    assert_eq!(held["records"].as_u64(), Some(lines.len() as u64), "{held}");
    assert_eq!(
        held["witnessed"], held["records"],
        "every checkpoint verified"
    );
    assert_eq!(
        stored_records(&console, "us-4"),
        lines,
        "once each, in order"
    );
    assert!(
        log.contains("while-down-19"),
        "the records written while it was down"
    );
    server.stop();
    // Review rv45-fleet case5 (c): the fleet identity's two files deleted, the hospital's
    // certificate configured for browsers: a new identity is made (the hosts pinned the
    // old one, not the hospital's), said loudly with both fingerprints and the way back,
    // on stderr and on the trail.
    let backup = tempfile::tempdir().expect("tempdir");
    for file in ["cert.pem", "key.pem"] {
        let at = console.home.join("console").join(file);
        std::fs::copy(&at, backup.path().join(file)).expect("backup");
        std::fs::remove_file(at).expect("remove");
    }
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    assert!(
        server.wait_for("listening for hosts at", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    let said = server.stderr();
    let warned = said
        .lines()
        .find(|l| l.contains("NOT the one they pinned"))
        .unwrap_or_else(|| panic!("the replaced fleet identity is said: {said}"));
    assert!(
        warned.contains(&format!("kept {fingerprint} when"))
            && warned.contains("Restore HOME/console/cert.pem and key.pem from backup")
            && !warned.contains(&format!("fingerprint {fingerprint},")),
        "both fingerprints named, the way back said: {warned}"
    );
    server.stop();
    let out = console.run(&["audit", "show"]);
    assert!(
        stdout(&out).contains("fleet identity: the fleet identity presented to hosts is NOT"),
        "on the trail: {}",
        stdout(&out)
    );
    // Review rv45-fleet (MUST): the same cut-off after an upgrade from a version that
    // kept no fingerprint (an old console started without [console] cert, then given
    // one: its hosts pinned what it presented then, and the new version presents
    // HOME/console/cert.pem). The store keeps no fleet-wide fingerprint: the start took
    // the new identity as first seen, and said nothing while every host was cut off.
    // Each host's pin, kept at its enrolment, names it.
    let out = std::process::Command::new("sqlite3")
        .arg(console.home.join("pacsguard.db"))
        .arg("DELETE FROM fleet_settings WHERE name = 'fleet_identity_fingerprint'")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    assert!(
        server.wait_for("listening for hosts at", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    let said = server.stderr();
    let warned = said
        .lines()
        .find(|l| l.contains("pinned another certificate at enrolment"))
        .unwrap_or_else(|| panic!("the host cut off is said: {said}"));
    assert!(
        warned.contains(&format!("us-4 (pinned {fingerprint})"))
            && warned.contains("host-pinned-other"),
        "the host and what it pinned named: {warned}"
    );
    server.stop();
    let out = console.run(&["audit", "show"]);
    let shown = stdout(&out);
    let alert = shown
        .lines()
        .rfind(|l| {
            // Named by its enrolment too (review rv46-fleet).
            l.contains("console finding findings host us-4 (certificate SHA-256 ")
                && l.contains("): it pinned")
        })
        .unwrap_or_else(|| panic!("a console alert about us-4 on the trail: {shown}"));
    assert!(
        alert.contains(&format!("fingerprint {fingerprint} at its enrolment"))
            && alert.contains("restore HOME/console/cert.pem")
            && alert.contains("pacsguard console revoke-host us-4"),
        "both fingerprints and the way back: {alert}"
    );
    // The identity restored from backup (the fingerprint kept meanwhile is the other
    // one): the hosts pinned it, so the warning is over, and the alert listed again from
    // the trail is closed on it (it was said at every start for good).
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(
            backup.path().join(file),
            console.home.join("console").join(file),
        )
        .expect("restore");
    }
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    assert!(
        server.wait_for(
            "host us-4: host-pinned-other closed",
            Duration::from_secs(30)
        ),
        "the alert is closed once the identity is back: {}",
        server.stderr()
    );
    let said = server.stderr();
    assert!(
        !said.contains("NOT the one they pinned")
            && !said.contains("pinned another certificate at enrolment")
            && said.contains("is the one every enrolled host pinned"),
        "no warning once the identity is back: {said}"
    );
    server.stop();
    // `console hosts` counts them (review rv45-fleet), on stderr: stdout stays a line
    // per host.
    let out = console.run(&["console", "hosts"]);
    assert!(
        stderr(&out).contains("pacsguard: 1 host(s): ")
            && stderr(&out).contains("0 revoked; 1 profile(s) waiting")
            && stdout(&out).lines().count() == 1,
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The console witnesses a trail for one host: a second enrolment under a name a host
/// holds is refused, and a host reporting another host's trail (its home copied, key and
/// records) is refused with `host-key-new`, not cosigned from a fresh state, which would
/// let a rewritten copy of that trail be cosigned as well.
#[test]
fn a_trail_is_witnessed_for_one_host_and_a_name_held_once() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let enroll = |env: &Env, token: &str, name: &str| {
        env.run(&[
            "enroll",
            &url,
            "--token",
            token,
            "--fingerprint",
            &fingerprint,
            "--name",
            name,
        ])
    };
    let host = Env::new();
    host.profile(&[]);
    let out = enroll(&host, &token(&console, "15m"), "pacs-01");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Root on pacs-01 copies its home (trail key and trail) to a machine of its own.
    let copy = Env::new();
    std::fs::remove_dir_all(&copy.home).expect("rm");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&host.home)
        .arg(&copy.home)
        .status()
        .expect("cp runs");
    assert!(status.success());
    std::fs::remove_dir_all(copy.home.join("fleet")).expect("rm");
    std::fs::remove_dir_all(copy.home.join("delivery")).expect("rm");

    let second = token(&console, "15m");
    let out = enroll(&copy, &second, "pacs-01");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has this name"), "{}", stderr(&out));
    // The token was not spent by the refusal.
    let out = enroll(&copy, &second, "pacs-01b");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = copy.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trail key of host pacs-01"),
        "{}",
        stderr(&out)
    );
    let cosigned = copy.home.join("fleet/cosignatures.jsonl");
    assert!(
        std::fs::read_to_string(&cosigned)
            .unwrap_or_default()
            .is_empty(),
        "nothing cosigned for the copy"
    );
    let flagged = wait_host(&console, "pacs-01b", |h| h["state"] == "new-key");
    assert_eq!(flagged["records"], 0, "{flagged}");
    assert_eq!(
        hosts(&console)
            .iter()
            .filter(|h| h["name"] == "pacs-01")
            .count(),
        1
    );
    // The real pacs-01 reports on undisturbed.
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    assert!(
        stdout(&out).contains("host-key-new") && stdout(&out).contains("pacs-01b"),
        "{}",
        stdout(&out)
    );
}

/// A peer without a client certificate (anyone who reaches the listener) may only enrol:
/// a frame over the enrolment limit is refused from its length, before the console reads
/// or holds its body, and the connection ends after one answer. Python's ssl module is
/// the peer.
#[test]
fn an_anonymous_peer_is_held_to_one_enrolment_sized_frame() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let address = url
        .split_whitespace()
        .next()
        .and_then(|u| u.strip_prefix("tls://"))
        .expect("url")
        .to_string();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,ssl,struct,sys\n\
             host,port=sys.argv[1].rsplit(':',1)\n\
             ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
             ctx.check_hostname=False\n\
             ctx.verify_mode=ssl.CERT_NONE\n\
             s=ctx.wrap_socket(socket.create_connection((host,int(port)),timeout=20))\n\
             def frame(n):\n    \
                 s.sendall(struct.pack('>I',n))\n    \
                 head=b''\n    \
                 while len(head)<4:\n        \
                     got=s.recv(4-len(head))\n        \
                     if not got: return None\n        \
                     head+=got\n    \
                 (m,)=struct.unpack('>I',head)\n    \
                 body=b''\n    \
                 while len(body)<m:\n        \
                     body+=s.recv(m-len(body))\n    \
                 return body.decode()\n\
             # The enrolment limit (64 KiB) and one byte more; no body is sent.\n\
             print(frame(64*1024+1))\n\
             try:\n    \
                 print('second answer:', frame(10))\n\
             except OSError as e:\n    \
                 print('closed:', e)\n",
        )
        .arg(&address)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("refused") && said.contains("65537"), "{said}");
    assert!(!said.contains("second answer: {"), "{said}");
    server.stop();
}

/// Waits until the console's listener has taken in enough of a flood of connections to
/// say it reached a limit (a share of one address, the slots open to connections
/// without a certificate, or every slot): the state an enrolled host's report must get
/// through. Each limit is said at its first refusal or ending ("N connection(s)"); a
/// fixed 2 s wait for the listener stood here before.
fn flood_taken_in(server: &Serve) {
    assert!(
        server.wait_for("connection(s)", Duration::from_secs(60)),
        "the listener said no limit reached: {}",
        server.stderr()
    );
}

/// Anyone on the network can open connections that never show a certificate (here:
/// idle TCP, not a byte of TLS, from another loopback address, held by python). One
/// address holds at most `MAX_UNPROVEN_PER_ADDRESS` slots, so an enrolled host still
/// reports while such a peer holds more connections than the listener has slots.
#[test]
fn idle_anonymous_connections_from_one_address_do_not_lock_hosts_out() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "pacs-07",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let address = url.strip_prefix("tls://").expect("tls url").to_string();
    let mut flood = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,sys,time\n\
             host,port=sys.argv[1].rsplit(':',1)\n\
             held=[]\n\
             for _ in range(80):\n    \
                 s=socket.socket(); s.bind(('127.0.0.2',0))\n    \
                 s.connect((host,int(port))); held.append(s)\n\
             print('ready',flush=True)\n\
             time.sleep(120)\n",
        )
        .arg(&address)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(flood.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "ready");
    flood_taken_in(&server);
    let out = host.run(&["audit", "forward", "--to", "console"]);
    let _ = flood.kill();
    let _ = flood.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server.stop();
}

/// The same from many addresses (eight loopback addresses, eight idle connections each):
/// together they hold every slot open to connections without a certificate
/// (`MAX_UNPROVEN_CONNECTIONS`), and an enrolled host is such a connection until its
/// handshake is done; the oldest idle one gives way, so the host still reports.
#[test]
fn idle_anonymous_connections_from_many_addresses_do_not_lock_hosts_out() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "pacs-08",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let address = url.strip_prefix("tls://").expect("tls url").to_string();
    let mut flood = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,sys,time\n\
             host,port=sys.argv[1].rsplit(':',1)\n\
             held=[]\n\
             for i in range(64):\n    \
                 s=socket.socket(); s.bind(('127.0.0.%d' % (2 + i // 8),0))\n    \
                 s.connect((host,int(port))); held.append(s)\n\
             print('ready',flush=True)\n\
             time.sleep(120)\n",
        )
        .arg(&address)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(flood.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "ready");
    flood_taken_in(&server);
    let out = host.run(&["audit", "forward", "--to", "console"]);
    let _ = flood.kill();
    let _ = flood.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server.stop();
}

/// A trail key is public (`trail.pub`): an enrolled host that reports another host's key
/// with records of its own making, and no checkpoint (it cannot sign one), must not make
/// that key its own and lock the real owner out. Python's ssl module, with the squatter's
/// real client certificate, sends the report.
#[test]
fn records_without_a_signed_checkpoint_do_not_take_another_hosts_trail_key() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let enroll = |env: &Env, name: &str| {
        let token = token(&console, "15m");
        let out = env.run(&[
            "enroll",
            &url,
            "--token",
            &token,
            "--fingerprint",
            &fingerprint,
            "--name",
            name,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    let squatter = Env::new();
    enroll(&squatter, "ws-9");
    let victim = Env::new();
    victim.profile(&[]);
    enroll(&victim, "pacs-02");
    let key = std::fs::read_to_string(victim.home.join("trail.pub")).expect("public key");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json,socket,ssl,struct,sys\n\
             addr,fleet,key=sys.argv[1:4]\n\
             host,port=addr.rsplit(':',1)\n\
             ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
             ctx.check_hostname=False\n\
             ctx.verify_mode=ssl.CERT_NONE\n\
             ctx.load_cert_chain(fleet+'/cert.pem',fleet+'/key.pem')\n\
             s=ctx.wrap_socket(socket.create_connection((host,int(port)),timeout=20))\n\
             recs=[json.dumps({'seq':i,'detail':'forged'}) for i in range(3)]\n\
             body=json.dumps({'type':'report','trail_key':key.strip(),'interval':15,'first':0,'records':recs,'checkpoint':None}).encode()\n\
             s.sendall(struct.pack('>I',len(body))+body)\n\
             head=s.recv(4)\n\
             (m,)=struct.unpack('>I',head)\n\
             got=b''\n\
             while len(got)<m: got+=s.recv(m-len(got))\n\
             print(got.decode())\n",
        )
        .arg(url.strip_prefix("tls://").expect("tls url"))
        .arg(squatter.home.join("fleet"))
        .arg(&key)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The forged records were taken as unproven records of ws-9's trail (as before).
    assert!(said.contains("witnessed"), "{said}");
    // The owner reports and is witnessed, not refused as a copy of ws-9.
    let out = victim.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let owner = wait_host(&console, "pacs-02", |h| h["records"].as_u64() > Some(0));
    assert_eq!(owner["state"], "ok", "{owner}");
    server.stop();
}

/// The console stores a batch but its answer never reaches the host (the host killed
/// between the console's commit and its cursor write, or the connection cut after the
/// commit): the host sends the same records again. That is not the trail rewound: no
/// fork alert, the host is not refused for good, and the console holds every record
/// once. The crash's state is made by putting back the cursor as it was before the
/// delivery.
#[test]
fn records_sent_again_after_a_lost_answer_are_not_a_fork() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "pacs-03",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let forward = || {
        let out = host.run(&["audit", "forward", "--to", "console"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    forward();
    let cursor = host.home.join("delivery/console.cursor");
    let before = std::fs::read(&cursor).expect("cursor");
    host.run(&["check", host.tree_str()]);
    forward();
    std::fs::write(&cursor, &before).expect("the answer was lost");
    forward();
    host.run(&["check", host.tree_str()]);
    forward();
    let seen = wait_host(&console, "pacs-03", |h| h["records"].as_u64() > Some(0));
    assert_eq!(seen["state"], "ok", "{seen}");
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(stored_records(&console, "pacs-03"), lines, "once, in order");
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    assert!(
        !stdout(&out).contains("host-trail-fork"),
        "{}",
        stdout(&out)
    );
}

/// A revoked host's certificate still passes the TLS handshake (the host CA keeps no
/// revocation list): its connections stay counted against its address like anonymous
/// ones, so a revoked host holding many (python, its real certificate, from another
/// loopback address) does not lock the hosts still enrolled out.
#[test]
fn a_revoked_hosts_connections_do_not_lock_hosts_out() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let enroll = |env: &Env, name: &str| {
        let token = token(&console, "15m");
        let out = env.run(&[
            "enroll",
            &url,
            "--token",
            &token,
            "--fingerprint",
            &fingerprint,
            "--name",
            name,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    let revoked = Env::new();
    enroll(&revoked, "old-ws");
    let host = Env::new();
    host.profile(&[]);
    enroll(&host, "pacs-04");
    let out = console.run(&["console", "revoke-host", "old-ws"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut flood = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,ssl,sys,time\n\
             addr,fleet=sys.argv[1:3]\n\
             host,port=addr.rsplit(':',1)\n\
             ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
             ctx.check_hostname=False\n\
             ctx.verify_mode=ssl.CERT_NONE\n\
             ctx.load_cert_chain(fleet+'/cert.pem',fleet+'/key.pem')\n\
             held=[]\n\
             for _ in range(80):\n    \
                 try:\n        \
                     s=socket.socket(); s.bind(('127.0.0.2',0)); s.settimeout(5)\n        \
                     s.connect((host,int(port))); held.append(ctx.wrap_socket(s))\n    \
                 except OSError:\n        \
                     pass\n\
             print('ready',len(held),flush=True)\n\
             time.sleep(120)\n",
        )
        .arg(url.strip_prefix("tls://").expect("tls url"))
        .arg(revoked.home.join("fleet"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(flood.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert!(line.starts_with("ready"), "{line}");
    flood_taken_in(&server);
    let out = host.run(&["audit", "forward", "--to", "console"]);
    let _ = flood.kill();
    let _ = flood.wait();
    assert_eq!(out.status.code(), Some(0), "{line}{}", stderr(&out));
    server.stop();
}

/// Eight hosts (one address's share of unproven connections) enrol at once with one token: exactly one is enrolled, and every other
/// is told the token was used, not a raw store error ("database is locked").
#[test]
fn hosts_racing_for_one_token_enrol_one_and_are_told_why_not() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let token = token(&console, "15m");
    let racers: Vec<Env> = (0..8).map(|_| Env::new()).collect();
    let children: Vec<Child> = racers
        .iter()
        .enumerate()
        .map(|(i, env)| {
            pacsguard()
                .arg("--home")
                .arg(&env.home)
                .args(["enroll", &url, "--token", &token, "--fingerprint"])
                .arg(&fingerprint)
                .args(["--name", &format!("race-{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("enroll starts")
        })
        .collect();
    let mut enrolled = 0;
    for child in children {
        let out = child.wait_with_output().expect("enroll ends");
        let said = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => enrolled += 1,
            Some(2) => assert!(said.contains("used already"), "{said}"),
            other => panic!("{other:?}: {said}"),
        }
    }
    assert_eq!(enrolled, 1);
    assert_eq!(hosts(&console).len(), 1);
    server.stop();
}

/// The console's web pages as a person uses them: curl with a cookie jar, trusting the
/// console's own certificate.
struct Web {
    base: String,
    jar: std::path::PathBuf,
    cacert: std::path::PathBuf,
}

impl Web {
    fn of(server: &Serve, console: &Env) -> Web {
        let base = server.after("console at ");
        Web {
            base: base.trim_end_matches('/').to_string(),
            jar: console.dir.path().join("cookies.txt"),
            cacert: console.home.join("console/cert.pem"),
        }
    }

    fn curl(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let mut command = std::process::Command::new("curl");
        command
            .args(["-sS", "--cacert"])
            .arg(&self.cacert)
            .arg("-c")
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
            .args(["-X", method, "-w", "\n%{http_code}"]);
        for (k, v) in form {
            command.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = command
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("status line");
        (code.parse().expect("status"), body.to_string())
    }

    /// The first administrator from the setup link `serve` printed, with its TOTP
    /// enrolled; returns the TOTP secret.
    fn first_admin(&self, server: &Serve) -> String {
        let token = server.after("/setup?token=");
        let (status, _) = self.curl(
            "POST",
            "/setup",
            &[
                ("token", &token),
                ("name", "admin"),
                ("password", "amber lantern over quiet harbour"),
            ],
        );
        assert_eq!(status, 303);
        let (_, body) = self.curl("GET", "/enrol", &[]);
        let secret = value_of(&body, "id=\"totp-secret\" class=\"secret\">", '<');
        let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
        let (status, body) = self.curl(
            "POST",
            "/enrol",
            &[("csrf", &csrf), ("code", &code(&secret, 0))],
        );
        assert_eq!(status, 200, "{body}");
        secret
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

/// The TOTP code of the step `ahead` steps from now (RFC 4648 base32 secret as the page
/// shows it).
fn code(secret_b32: &str, ahead: i64) -> String {
    let (mut bits, mut count, mut secret) = (0u64, 0, Vec::new());
    for c in secret_b32.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {secret_b32}"),
        };
        bits = (bits << 5) | u64::from(v);
        count += 5;
        if count >= 8 {
            count -= 8;
            secret.push((bits >> count) as u8);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let step = pacsguard_console::totp::step_of(i64::try_from(now).expect("time"));
    pacsguard_console::totp::code_at_step(&secret, step + ahead)
}

/// Approvals off the host (issue 14, item 4), and the issue's attack on them: a profile
/// made on the host is unapproved on the console (an alert) until an approver accepts
/// it there after a step-up; the host keeps the console's signed approval and `check`
/// verifies it. Then an intruder plants a file and runs `profile`: the console flags the
/// new generation at the host's next report, `check` on the host says it carries no
/// approval, and deleting the host's copies of approvals and cosignatures changes
/// nothing on the console.
#[test]
fn a_profile_made_on_the_host_counts_only_once_the_console_approved_it() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);

    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ws-07",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Enrolled, never approved: `check` says so (a warning, exit 1).
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("host-profile-unapproved"),
        "{}",
        stdout(&out)
    );

    let guard = Serve::start(&host, &[]);
    let seen = wait_host(&console, "ws-07", |h| h["profile"]["generation"] == 1);
    assert_eq!(seen["profile"]["approved"], false, "{seen}");

    // The approval: refused without a step-up, then done with one and a reason.
    let (status, body) = web.curl("GET", "/hosts", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("generation 1 unapproved"), "{body}");
    assert!(body.contains("id=\"hosts-step-up\""), "{body}");
    // Review rv44-fleet case13 (session 45): the approver sees what the host recorded
    // about the generation (the record that signed it: who, when, the roots, its words),
    // not only its number and digest.
    assert!(
        body.contains("What the host recorded")
            && body.contains("baseline generation 1 signed")
            && body.contains(&format!(
                "roots <span class=\"reported-objects\"><span class=\"host-wrote\">\"{}\"",
                host.tree_str()
            )),
        "{body}"
    );
    let form = |body: &str| {
        [
            value_of(body, "name=\"csrf\" value=\"", '"'),
            value_of(body, "name=\"host\" value=\"", '"'),
            value_of(body, "name=\"generation\" value=\"", '"'),
            value_of(body, "name=\"digest\" value=\"", '"'),
        ]
    };
    let approve = |fields: &[String; 4]| {
        web.curl(
            "POST",
            "/hosts/approve",
            &[
                ("csrf", &fields[0]),
                ("host", &fields[1]),
                ("generation", &fields[2]),
                ("digest", &fields[3]),
                ("reason", "installation baseline, change 1187"),
            ],
        )
    };
    let fields = form(&body);
    let (status, body) = approve(&fields);
    assert_eq!(status, 403, "no step-up yet: {body}");
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &fields[0]), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    // The promise (issue 14): in effect once its record is on the console's trail. The
    // guard writes it within a turn of its loop; on a loaded machine that may take
    // longer than the request waits (APPROVAL_RECORD_WAIT): the page then says the
    // approval awaits its record, and it settles when the Hosts page is read after
    // APPROVAL_RESOLVE_AFTER. Either way it ends approved, never in effect before.
    let approve_and_settle = |body: &str, generation: u64| {
        let (status, body) = approve(&form(body));
        if status == 202 {
            assert!(
                body.contains("awaits its record on the audit trail")
                    && body.contains("not in effect yet"),
                "{body}"
            );
            let deadline = Instant::now()
                + Duration::from_secs(
                    u64::try_from(pacsguard_console::host_approvals::APPROVAL_RESOLVE_AFTER)
                        .expect("seconds")
                        + 120,
                );
            while hosts(&console)
                .into_iter()
                .find(|h| h["name"] == "ws-07")
                .is_none_or(|h| {
                    h["profile"]["approved"] != true || h["profile"]["generation"] != generation
                })
            {
                assert!(Instant::now() < deadline, "the approval never settled");
                // Reading the page settles what awaits for longer than the limit.
                let (status, _) = web.curl("GET", "/hosts", &[]);
                assert_eq!(status, 200);
                std::thread::sleep(Duration::from_secs(1));
            }
        } else {
            assert_eq!(status, 200, "{body}");
            assert!(
                body.contains(&format!(
                    "Approved profile generation {generation} of host ws-07"
                )),
                "{body}"
            );
        }
    };
    approve_and_settle(&body, 1);
    let approved = wait_host(&console, "ws-07", |h| h["profile"]["approved"] == true);
    assert_eq!(
        approved["profile"]["approved_by"], "console:admin",
        "{approved}"
    );
    // The host keeps the console's approval at its next report.
    let kept = host.home.join("fleet/approvals.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Relayed to the running guard, then run alone: approved.
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "relayed: {}", stdout(&out));
    guard.stop();
    let out = host.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("approved by the console"),
        "{}",
        stderr(&out)
    );
    // Review s18-r13: a copy of the host's home on its approved generation 1 (a backup
    // root keeps, to put back later).
    let backup = copy_of_home(&host);
    let first_digest = approved["profile"]["digest"].clone();
    // The attack: an implant planted and taken into a new profile on the host.
    std::fs::write(host.path("study/implant.bin"), b"planted by an intruder").expect("plant");
    let out = host.run(&["profile", host.tree_str()]);
    assert!(
        stdout(&out).contains("generation 2 signed"),
        "{}",
        stdout(&out)
    );
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("host-profile-unapproved"),
        "{}",
        stdout(&out)
    );
    // The host's copies of the console's word, deleted too.
    for name in ["fleet/approvals.jsonl", "fleet/cosignatures.jsonl"] {
        std::fs::remove_file(host.home.join(name)).expect("intruder deletes");
    }
    let guard = Serve::start(&host, &[]);
    let started = Instant::now();
    let flagged = wait_host(&console, "ws-07", |h| h["profile"]["generation"] == 2);
    // Within one heartbeat interval the host promised (15 s) of its start.
    assert!(started.elapsed() < Duration::from_secs(15), "{flagged}");
    assert_eq!(flagged["profile"]["approved"], false, "{flagged}");
    let (_, body) = web.curl("GET", "/hosts", &[]);
    assert!(body.contains("generation 2 unapproved"), "{body}");
    // The record that signed it comes with the host's records, maybe after its claim:
    // until then the page says it holds none (never blank). Checked below, once the
    // host's later records are on the pages (delivered in order).
    assert!(
        body.contains("No record of the host signing generation 2")
            || body.contains("baseline generation 2 signed"),
        "{body}"
    );
    // Issue 14, session 45 (review rv44-fleet case9): the host's own alert (a guarded
    // file overwritten) is on the console's alerts page, the host named, and the hosts
    // page counts it; an operator's acknowledgement (a comment, on the trail) closes it.
    // Before, it reached the console's store and no page: "None.", the host "reporting".
    std::fs::write(host.path("readme.txt"), b"MZ implant\n").expect("overwrite");
    let deadline = Instant::now() + Duration::from_secs(30);
    let alerts = loop {
        let (status, body) = web.curl("GET", "/alerts", &[]);
        assert_eq!(status, 200, "{body}");
        if body.contains("readme.txt") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the host's alert never reached the alerts page: {body}\n{}",
            guard.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        alerts.contains("<span class=\"host\">host ws-07</span>"),
        "{alerts}"
    );
    let (_, body) = web.curl("GET", "/hosts", &[]);
    assert!(
        body.contains("open alerts/warnings on the alerts page"),
        "{body}"
    );
    let row = alerts
        .split("<tr id=\"finding-")
        .skip(1)
        .find(|r| {
            r.split("</tr>")
                .next()
                .is_some_and(|r| r.contains("readme.txt"))
        })
        .expect("the acknowledgements' row of the host's alert");
    let id: String = row.chars().take_while(char::is_ascii_digit).collect();
    let (status, body) = web.curl(
        "POST",
        "/alerts/acknowledge",
        &[
            ("csrf", &value_of(&alerts, "name=\"csrf\" value=\"", '"')),
            ("id", &id),
            ("comment", "ws-07 readme overwritten, ticket 4411"),
        ],
    );
    assert!(status == 200 || status == 303, "{status} {body}");
    let (_, body) = web.curl("GET", "/alerts", &[]);
    assert!(
        !body.contains(&format!("<tr id=\"finding-{id}\">")),
        "closed by its acknowledgement: {body}"
    );
    let (_, body) = web.curl("GET", "/hosts", &[]);
    assert!(
        body.contains("baseline generation 2 signed") && body.contains("implant.bin"),
        "{body}"
    );
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "relayed: {}", stdout(&out));
    assert!(
        stdout(&out).contains("host-profile-unapproved"),
        "{}",
        stdout(&out)
    );
    guard.stop();
    assert!(
        !host.home.join("fleet/approvals.jsonl").exists(),
        "nothing approves it"
    );
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // Review s18: generation 2 approved after all; then root on the host deletes its
    // store and its trail and profiles again (generation 1 anew, the implant in it).
    // The console showed the host on generation 2, approved (the highest it knew), while
    // it raised the new generation 1 and the rewound trail. Now the host's current
    // profile is the one it reports: generation 1, unapproved.
    let (_, body) = web.curl("GET", "/hosts", &[]);
    approve_and_settle(&body, 2);
    wait_host(&console, "ws-07", |h| h["profile"]["approved"] == true);
    // Everything but its configuration and its enrolment (`fleet/`): the host refuses
    // to work on a store or trail deleted beside its key, so its key goes too.
    for entry in std::fs::read_dir(&host.home).expect("home") {
        let path = entry.expect("entry").path();
        match path.file_name().and_then(|n| n.to_str()) {
            Some("config.toml" | "fleet") => {}
            _ if path.is_dir() => std::fs::remove_dir_all(&path).expect("intruder deletes"),
            _ => std::fs::remove_file(&path).expect("intruder deletes"),
        }
    }
    let out = host.run(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["profile", host.tree_str()]);
    assert!(
        stdout(&out).contains("generation 1 signed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let guard = Serve::start(&host, &[]);
    let rewound = wait_host(&console, "ws-07", |h| h["profile"]["generation"] == 1);
    assert_eq!(rewound["profile"]["approved"], false, "{rewound}");
    let (_, body) = web.curl("GET", "/hosts", &[]);
    assert!(body.contains("generation 1 unapproved"), "{body}");
    // Review rv44-fleet case14 (session 45): the home made anew reports under a new key,
    // refused; its profile is listed with no approval form, and an approval posted all
    // the same is refused (409, in words, on the trail), the profile left unapproved.
    // Before, it was taken and shown "approved" for a host the console does not hear.
    assert_ne!(rewound["state"], "ok", "{rewound}");
    assert!(
        body.contains("not approvable: the host's reports are refused"),
        "{body}"
    );
    let (status, refused) = web.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &value_of(&body, "name=\"csrf\" value=\"", '"')),
            ("host", &fields[1]),
            ("generation", "1"),
            (
                "digest",
                rewound["profile"]["digest"].as_str().expect("digest"),
            ),
            ("reason", "PACS admin says he re-installed"),
        ],
    );
    assert_eq!(status, 409, "{refused}");
    // The console's own alert about the host (its new key) is on the alerts page too,
    // the host named, not only on the trail.
    let (_, alerts) = web.curl("GET", "/alerts", &[]);
    assert!(
        alerts.contains("host-key-new")
            && alerts.contains("<span class=\"host\">host ws-07</span>"),
        "{alerts}"
    );
    assert!(refused.contains("reports are refused"), "{refused}");
    let still = wait_host(&console, "ws-07", |_| true);
    assert_eq!(still["profile"]["approved"], false, "{still}");
    guard.stop();
    // Review s18-r13: root puts back the copy of the home on the approved generation 1
    // (its store, key, trail and enrolment as they were): the host went back to an
    // approval the console no longer holds in effect.
    put_back(&host.home, backup.path());
    // No wait after the last report of the store made anew: the console's store orders
    // a host's reports by a sequence, so two within one second are in order (before, a
    // second had to pass or the going back could be said twice).
    let guard = Serve::start(&host, &[]);
    // Review r26: its trail is rewound with the home (the console witnessed more of
    // it): refused as a fork, and nothing a report whose trail is not proven claims is
    // judged. Before, generation 1 of the put-back home was taken from those reports and
    // offered to approve again, for a host whose trail the console refuses for good.
    let forked = wait_host(&console, "ws-07", |h| h["state"] == "fork");
    assert_ne!(forked["profile"]["digest"], first_digest, "{forked}");
    std::thread::sleep(Duration::from_secs(5));
    guard.stop();
    // The host's own `check` finds the approval of generation 1 in the restored
    // `fleet/approvals.jsonl` and asks the console, which says it is not its current
    // approval for this host. The implant is no part of generation 1: a difference.
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("implant.bin"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not its current approval for this host"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("approved by the console"),
        "{}",
        stderr(&out)
    );
    // The alerts page before the console's restart below.
    let (_, before) = web.curl("GET", "/alerts", &[]);
    server.stop();
    // The console unreachable: a warning that the approval could not be confirmed,
    // never a silent "approved".
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("could not be confirmed with the console"),
        "{}",
        stdout(&out)
    );
    assert!(
        !stderr(&out).contains("approved by the console"),
        "{}",
        stderr(&out)
    );
    // The console's own trail: the alert for each generation made on the host, and the
    // approval with its person and reason.
    let out = console.run(&["audit", "show", "--json"]);
    let trail = stdout(&out);
    assert_eq!(
        trail.matches("host-profile-unapproved").count(),
        3,
        "one alert per generation made on the host; the put-back home forked, not judged: {trail}"
    );
    assert!(trail.contains("host-trail-fork"), "{trail}");
    assert!(
        trail.contains("approved profile generation 1 of host ws-07"),
        "{trail}"
    );
    assert!(
        trail.contains("installation baseline, change 1187"),
        "{trail}"
    );
    // Session 45: the acknowledgement of the host's alert, and the approval refused.
    assert!(trail.contains("ticket 4411"), "{trail}");
    assert!(
        trail.contains("was refused approving profile generation 1"),
        "{trail}"
    );
    // Issue 14, session 45 (r45-fleet3): the console restarts. The hosts' open alerts
    // are listed again from what is stored (the host's own, the console's about it),
    // the acknowledged one stays closed, and the overview counts them as the hosts page
    // does. Before, they lived in memory only: after a restart the alerts page said
    // "None." of a host with an intrusion open.
    let host_rows = |alerts: &str| {
        alerts
            .matches("<span class=\"host\">host ws-07</span>")
            .count()
    };
    let listed = host_rows(&before);
    assert!(listed > 0, "{before}");
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let web = Web::of(&server, &console);
    let (status, alerts) = web.curl("GET", "/alerts", &[]);
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(
        host_rows(&alerts),
        listed,
        "before: {before}\nafter: {alerts}"
    );
    assert!(
        alerts.contains("host-key-new") && alerts.contains("host-trail-fork"),
        "{alerts}"
    );
    assert_eq!(
        alerts.matches("readme.txt").count(),
        before.matches("readme.txt").count(),
        "acknowledged before the restart, it stays closed: {alerts}"
    );
    assert!(
        server
            .stderr()
            .contains("hosts' open alerts and warnings listed again from the store"),
        "{}",
        server.stderr()
    );
    // The overview's count is the hosts page's (one source).
    let (_, hosts_page) = web.curl("GET", "/hosts", &[]);
    let counted = hosts_page
        .split(" open alerts/warnings on the alerts page")
        .next()
        .and_then(|b| b.rsplit("; ").next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the hosts page counts the host's open alerts");
    assert!(counted > 0, "{hosts_page}");
    let (_, overview) = web.curl("GET", "/", &[]);
    assert!(
        overview.contains(&format!(
            "host ws-07: {counted} open alerts/warnings on the alerts page"
        )),
        "{overview}"
    );
    server.stop();
}

/// A console keeping its fleet on `pg` (`[console] fleet_store`), serving hosts, and a
/// host enrolled in it as `name` (not serving yet).
fn console_on_postgresql(
    pg: &pacsguard_testkit::postgres::PgServer,
    name: &str,
) -> (Env, Serve, Env) {
    let console = Env::new();
    console.profile(&[]);
    set_fleet_store(&console, &pg.connection_string());
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    assert!(
        server
            .after("the fleet's store: ")
            .starts_with("PostgreSQL database postgres as postgres at "),
        "{}",
        server.stderr()
    );
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        name,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (console, server, host)
}

/// Issue 14, "Store": a console keeping its fleet on a real PostgreSQL server
/// (`[console] fleet_store`), the server crashed and started again while a host reports
/// and writes on: afterwards PostgreSQL holds every record of the host exactly once, in
/// order, every checkpoint verified, and the host was never held back. The `console`
/// commands read the same store.
#[test]
fn a_console_on_postgresql_loses_nothing_across_a_server_restart_mid_stream() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let (console, server, host) = console_on_postgresql(&pg, "pg-1");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pg-1", |h| h["records"].as_u64() > Some(0));
    pg.crash().expect("the server stops");
    for i in 0..20 {
        std::fs::write(host.path(&format!("study/while-pg-down-{i}.dcm")), b"x").expect("write");
    }
    assert!(
        guard.wait_for("console delivery:", Duration::from_secs(60)),
        "the host is told its report was not taken: {}",
        guard.stderr()
    );
    pg.start_again().expect("the server starts again");
    assert!(
        guard.wait_for("console delivery resumed", Duration::from_secs(90)),
        "{}\nconsole: {}",
        guard.stderr(),
        server.stderr()
    );
    guard.stop();
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        log.contains("while-pg-down-19"),
        "the records written while it was down"
    );
    let held = wait_host(&console, "pg-1", |h| h["state"] == "ok");
    assert_eq!(held["records"].as_u64(), Some(lines.len() as u64), "{held}");
    assert_eq!(
        held["witnessed"], held["records"],
        "every checkpoint verified"
    );
    // Read from PostgreSQL itself, not through the console.
    let stored = pg.psql(
        "SELECT convert_from(r.line, 'UTF8') FROM fleet_records r \
         JOIN fleet_hosts h ON h.id = r.host WHERE h.name = 'pg-1' ORDER BY r.seq",
    );
    assert_eq!(
        stored.lines().collect::<Vec<_>>(),
        lines,
        "once each, in order"
    );
    let seqs =
        pg.psql("SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM fleet_records");
    assert_eq!(
        seqs.trim(),
        format!("{0}|0|{1}|{0}", lines.len(), lines.len() - 1),
        "no gap, nothing twice"
    );
    let checkpoints =
        pg.psql("SELECT max(size), bool_and(cosignature <> '') FROM fleet_checkpoints");
    assert_eq!(
        checkpoints.trim(),
        format!("{}|t", lines.len()),
        "each cosigned"
    );
    assert!(
        stored_records(&console, "pg-1").is_empty(),
        "nothing in the home's SQLite store"
    );
    server.stop();
}

/// Sets `[console] fleet_store` of `env`'s home (a TOML literal string: no escapes).
fn set_fleet_store(env: &Env, value: &str) {
    let config = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[console]\nfleet_store = '{value}'\n"));
    std::fs::write(&config, text).expect("config");
}

/// The fragments of the password the next tests use: none may be shown anywhere.
const PASSWORD_FRAGMENTS: [&str; 3] = ["Xq7", "Zr9", "Lm2"];

fn shows_no_password(what: &str, text: &str) {
    for fragment in PASSWORD_FRAGMENTS {
        assert!(!text.contains(fragment), "{what} shows {fragment}: {text}");
    }
}

/// A fleet store that refuses for good (no such database; a URL whose unencoded '@'
/// makes it read two ways): `serve` ends at start, exit 2, with a message naming
/// `[console] fleet_store` and the reason, and `console hosts` says the same; neither
/// shows any part of the password.
#[test]
fn serve_refuses_a_store_that_refuses_for_good_and_never_shows_its_password() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    for (store, reason) in [
        (
            format!(
                "host={} port=5432 user=postgres password=Xq7@Zr9#Lm2/ dbname=nosuchdb",
                pg.socket_dir().display()
            ),
            "database \"nosuchdb\" does not exist",
        ),
        (
            "postgres://postgres:Xq7@Zr9#Lm2@localhost/fleet".to_string(),
            "'#'",
        ),
        (
            "postgres://postgres:Xq7@Zr9Lm2@localhost/fleet".to_string(),
            "more than one '@'",
        ),
    ] {
        let console = Env::new();
        console.profile(&[]);
        set_fleet_store(&console, &store);
        let out = pacsguard()
            .arg("--home")
            .arg(&console.home)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--fleet-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("serve runs");
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains("[console] fleet_store") && said.contains(reason),
            "{said}"
        );
        assert!(
            !said.contains("listening for hosts"),
            "nothing started: {said}"
        );
        shows_no_password("serve", &format!("{said}{}", stdout(&out)));
        let out = console.run(&["console", "hosts"]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains("[console] fleet_store") && said.contains(reason),
            "{said}"
        );
        shows_no_password("console hosts", &format!("{said}{}", stdout(&out)));
    }
}

/// A fleet store that cannot be reached now (no server at its socket): `serve` starts
/// and says so, and the silence check tries it again backing off (1, 2, 4, 8 s … up to
/// STORE_RETRY_CAP), one line per try, not a line a second for ever; the password is in
/// none of them.
#[test]
fn serve_with_an_unreachable_store_backs_off_and_never_shows_its_password() {
    let nowhere = tempfile::tempdir().expect("tempdir");
    let console = Env::new();
    console.profile(&[]);
    set_fleet_store(
        &console,
        &format!(
            "host={} port=5432 user=fleet password=Xq7@Zr9#Lm2/ dbname=fleet",
            nowhere.path().display()
        ),
    );
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    assert!(
        server.wait_for("next try in 8 s", Duration::from_secs(120)),
        "{}",
        server.stderr()
    );
    let said = server.stderr();
    let waits: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("silence check"))
        .map(|l| l.rsplit("next try in ").next().unwrap_or(""))
        .take_while(|w| !w.starts_with('8'))
        .collect();
    assert_eq!(waits, ["1 s)", "2 s)", "4 s)"], "{said}");
    assert!(
        said.contains("serving anyway") && said.contains("[console] fleet_store"),
        "{said}"
    );
    shows_no_password("serve", &said);
    server.stop();
}

/// Every backend serving the console stopped (SIGSTOP), as a server that stops
/// answering: the console's calls on them give up at their deadline and open new
/// connections, so the host's reports are taken again while the stopped backends stay
/// stopped (before, the host's connection waited on its backend for ever). The backends
/// are stopped while idle, between two requests: a backend stopped inside a
/// transaction would hold its row locks until it runs again, which no client can undo.
#[test]
fn a_console_whose_postgresql_backends_stop_answering_takes_reports_again() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let (console, server, host) = console_on_postgresql(&pg, "pg-2");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pg-2", |h| h["records"].as_u64() > Some(0));
    // Nothing of the host in flight, then every backend of the console idle.
    guard.stop();
    let deadline = Instant::now() + Duration::from_secs(120);
    let idle = loop {
        let all = pg.client_backends(None);
        let idle = pg.client_backends(Some("idle"));
        if !all.is_empty() && all == idle {
            break idle;
        }
        assert!(Instant::now() < deadline, "backends never idle: {all:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped: Vec<_> = idle
        .iter()
        .map(|&pid| pacsguard_testkit::postgres::Stopped::stop(pid))
        .collect();
    for i in 0..5 {
        std::fs::write(host.path(&format!("study/while-stuck-{i}.dcm")), b"x").expect("write");
    }
    let guard = Serve::start(&host, &[]);
    let log_has = |text: &str| {
        std::fs::read_to_string(host.home.join("audit.log")).is_ok_and(|l| l.contains(text))
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while !log_has("while-stuck-4") {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Read from PostgreSQL itself, through a backend of its own: taken while the
    // console's old backends are still stopped.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stored = pg.psql(
            "SELECT count(*) FROM fleet_records r JOIN fleet_hosts h ON h.id = r.host \
             WHERE h.name = 'pg-2' AND convert_from(r.line, 'UTF8') LIKE '%while-stuck-4%'",
        );
        if stored.trim() == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "console: {}\nhost: {}",
            server.stderr(),
            guard.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        idle.iter()
            .all(|pid| std::path::Path::new("/proc").join(pid.to_string()).exists()),
        "the stopped backends are still there"
    );
    drop(stopped);
    guard.stop();
    server.stop();
}

/// A `[console] fleet_store` the TOML parser cannot read (a password holding a `\` in a
/// basic string, an unclosed quote): every command says the file, line and column and
/// what is wrong, and no part of the password (the parser's own excerpt of the line
/// printed it whole) - review s11-r14.
#[test]
fn a_config_that_cannot_be_read_never_shows_the_password_on_its_line() {
    for line in [
        r#"fleet_store = "host=db.example user=fleet password=Xq7\Zr9Lm2 dbname=fleet""#,
        r#"fleet_store = "postgres://fleet:Xq7Zr9Lm2@db.example/fleet"#,
        r#"fleet_store = 'postgres://fleet:Xq7'Zr9Lm2@db.example/fleet'"#,
    ] {
        let console = Env::new();
        console.profile(&[]);
        let config = console.home.join("config.toml");
        let mut text = std::fs::read_to_string(&config).expect("config");
        text.push_str(&format!("\n[console]\n{line}\n"));
        let at = text.lines().count();
        std::fs::write(&config, text).expect("config");
        for args in [&["console", "hosts"][..], &["check"][..]] {
            let out = console.run(args);
            let said = format!("{}{}", stderr(&out), stdout(&out));
            assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
            assert!(
                said.contains("config.toml") && said.contains(&format!("line {at}, column ")),
                "{args:?} names the file and the line: {said}"
            );
            shows_no_password(&format!("{args:?}"), &said);
        }
    }
}

/// Four eyes for host approvals through the real binary (`[console]
/// needs_second_host_approver` read by `serve`): the first approver's approval answers
/// 202 "awaits a second approver", the Hosts page says "awaiting second approver", the
/// console holds the profile unapproved and the host's `check` still warns; the same
/// person approving again is refused. (Who counts as a second person, with a clock
/// moved a week, is tested in the console's own tests.)
#[test]
fn with_four_eyes_for_hosts_one_approver_signs_nothing() {
    let console = Env::new();
    console.profile(&[]);
    let config = console.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[console]\nneeds_second_host_approver = true\n");
    std::fs::write(&config, text).expect("config");
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ws-11",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-11", |h| h["profile"]["generation"] == 1);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let fields = [
        value_of(&body, "name=\"csrf\" value=\"", '"'),
        value_of(&body, "name=\"host\" value=\"", '"'),
        value_of(&body, "name=\"generation\" value=\"", '"'),
        value_of(&body, "name=\"digest\" value=\"", '"'),
    ];
    let approve = || {
        web.curl(
            "POST",
            "/hosts/approve",
            &[
                ("csrf", &fields[0]),
                ("host", &fields[1]),
                ("generation", &fields[2]),
                ("digest", &fields[3]),
                ("reason", "installation baseline, change 1188"),
            ],
        )
    };
    let (status, body) = approve();
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("awaits a second approver"), "{body}");
    assert!(body.contains("awaiting second approver"), "{body}");
    let (status, body) = approve();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("another person"), "{body}");
    let seen = wait_host(&console, "ws-11", |h| h["profile"]["generation"] == 1);
    assert_eq!(seen["profile"]["approved"], false, "{seen}");
    guard.stop();
    assert!(
        !host.home.join("fleet/approvals.jsonl").exists(),
        "nothing signed"
    );
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("host-profile-unapproved"),
        "{}",
        stdout(&out)
    );
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    let trail = stdout(&out);
    assert!(
        trail.contains("asks a second approver to approve profile generation 1 of host ws-11"),
        "{trail}"
    );
    assert!(trail.contains("was refused as second approver"), "{trail}");
}

/// Review s19-r14: four eyes for host approvals was a setting of each console process
/// (`[console] needs_second_host_approver`), so with two consoles on one PostgreSQL
/// fleet store an approver went to the one without it. It is the fleet's setting now,
/// in the shared store: an administrator of console A turns it on (step-up, reason,
/// recorded on A's trail), and console B, whose configuration says nothing of it,
/// makes its approver's approval wait for a second approver; nothing is signed.
#[test]
fn four_eyes_set_for_the_fleet_on_one_console_holds_on_another_on_the_same_store() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let (console_a, server_a, host) = console_on_postgresql(&pg, "ws-21");
    let console_b = Env::new();
    console_b.profile(&[]);
    set_fleet_store(&console_b, &pg.connection_string());
    let server_b = Serve::start(&console_b, &[]);
    let (web_a, web_b) = (
        Web::of(&server_a, &console_a),
        Web::of(&server_b, &console_b),
    );
    let (secret_a, secret_b) = (web_a.first_admin(&server_a), web_b.first_admin(&server_b));
    let guard = Serve::start(&host, &[]);
    wait_host(&console_a, "ws-21", |h| h["profile"]["generation"] == 1);
    let step_up = |web: &Web, secret: &str| {
        let (_, body) = web.curl("GET", "/hosts", &[]);
        let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
        let (status, _) = web.curl(
            "POST",
            "/step-up",
            &[("csrf", &csrf), ("code", &code(secret, 1))],
        );
        assert_eq!(status, 303);
        let (_, body) = web.curl("GET", "/hosts", &[]);
        body
    };
    // On A: refused without a step-up, then turned on for the fleet with one.
    let (_, body) = web_a.curl("GET", "/hosts", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, body) = web_a.curl(
        "POST",
        "/hosts/four-eyes",
        &[("csrf", &csrf), ("on", "true"), ("reason", "policy 7.2")],
    );
    assert_eq!(status, 403, "no step-up yet: {body}");
    let body = step_up(&web_a, &secret_a);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, body) = web_a.curl(
        "POST",
        "/hosts/four-eyes",
        &[
            ("csrf", &csrf),
            ("on", "true"),
            ("reason", "policy 7.2: two approvers for every host"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Four eyes for host approvals is on"),
        "{body}"
    );
    // On B: no reason, no change; its approver's approval waits for a second approver.
    let body = step_up(&web_b, &secret_b);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, refused) = web_b.curl(
        "POST",
        "/hosts/four-eyes",
        &[("csrf", &csrf), ("on", "false"), ("reason", "")],
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        value_of(&body, "id=\"host-four-eyes\"", '<').contains('>') && body.contains("policy 7.2"),
        "B shows the fleet's setting: {body}"
    );
    let fields = [
        value_of(&body, "name=\"csrf\" value=\"", '"'),
        value_of(&body, "name=\"host\" value=\"", '"'),
        value_of(&body, "name=\"generation\" value=\"", '"'),
        value_of(&body, "name=\"digest\" value=\"", '"'),
    ];
    let (status, body) = web_b.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &fields[0]),
            ("host", &fields[1]),
            ("generation", &fields[2]),
            ("digest", &fields[3]),
            ("reason", "installation baseline, change 2101"),
        ],
    );
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("awaits a second approver"), "{body}");
    let seen = wait_host(&console_a, "ws-21", |h| h["profile"]["generation"] == 1);
    assert_eq!(seen["profile"]["approved"], false, "{seen}");
    guard.stop();
    server_b.stop();
    server_a.stop();
    assert!(
        !host.home.join("fleet/approvals.jsonl").exists(),
        "nothing signed"
    );
    let out = console_a.run(&["audit", "show", "--json"]);
    let trail = stdout(&out);
    assert!(
        trail.contains("set four eyes for host approvals")
            && trail.contains("policy 7.2: two approvers for every host"),
        "{trail}"
    );
}

/// Review s21, through the real binary: the fleet's four eyes set on with the Hosts page,
/// then turned off with sqlite3 in the home's store while `serve` is stopped. At its next
/// start `serve` reads the value back from its proven trail (`setting_digest`), says the
/// store is not as recorded, raises `console-setting-altered` on the trail and keeps four
/// eyes on: an approver's approval waits for a second one. Before, the edited store was
/// obeyed without a word.
#[test]
fn four_eyes_turned_off_in_the_store_while_serve_was_stopped_is_raised_at_its_start() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &[]);
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let stepped_up = |web: &Web, ahead: i64| {
        let (_, body) = web.curl("GET", "/hosts", &[]);
        let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
        let (status, _) = web.curl(
            "POST",
            "/step-up",
            &[("csrf", &csrf), ("code", &code(&secret, ahead))],
        );
        assert_eq!(status, 303);
        let (_, body) = web.curl("GET", "/hosts", &[]);
        body
    };
    let body = stepped_up(&web, 1);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, body) = web.curl(
        "POST",
        "/hosts/four-eyes",
        &[("csrf", &csrf), ("on", "true"), ("reason", "policy 7.2")],
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
    let out = std::process::Command::new("sqlite3")
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_settings SET value = 'false', reason = 'withdrawn'")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));

    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    assert!(
        server.wait_for(
            "four eyes for host approvals is not as this console's trail recorded it",
            Duration::from_secs(30)
        ),
        "{}",
        server.stderr()
    );
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ws-41",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-41", |h| h["profile"]["generation"] == 1);
    // The session and its step-up outlive the restart (both bound to the trail).
    let web = Web::of(&server, &console);
    let (status, body) = web.curl("GET", "/hosts", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("setting-altered"), "{body}");
    let fields = [
        value_of(&body, "name=\"csrf\" value=\"", '"'),
        value_of(&body, "name=\"host\" value=\"", '"'),
        value_of(&body, "name=\"generation\" value=\"", '"'),
        value_of(&body, "name=\"digest\" value=\"", '"'),
    ];
    let (status, body) = web.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &fields[0]),
            ("host", &fields[1]),
            ("generation", &fields[2]),
            ("digest", &fields[3]),
            ("reason", "installation baseline, change 4101"),
        ],
    );
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("awaits a second approver"), "{body}");
    guard.stop();
    server.stop();
    let out = console.run(&["audit", "show", "--json"]);
    assert!(
        stdout(&out).contains("console-setting-altered"),
        "{}",
        stdout(&out)
    );
}

/// Waits until the host's guard has reported after an approval row was written in the
/// console's store: either the host keeps a signed approval, or the console's trail
/// raised the row. Then neither the host keeps one, nor does its `check` pass, and the
/// console's trail says why.
fn forged_approval_not_signed(console: &Env, host: &Env, guard: &Serve, name: &str) {
    let kept = host.home.join("fleet/approvals.jsonl");
    let trail = || std::fs::read_to_string(console.home.join("audit.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kept.exists() && !trail().contains("host-approval-unproven") {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !kept.exists(),
        "the console signed an approval nobody made: {}",
        std::fs::read_to_string(&kept).unwrap_or_default()
    );
    let trail = trail();
    let raised = trail
        .lines()
        .find(|l| l.contains("host-approval-unproven"))
        .unwrap_or_else(|| panic!("{trail}"));
    assert!(
        raised.contains(&format!("host {name}"))
            && raised.contains("no record of that approval")
            && raised.contains("\"severity\":\"alert\""),
        "{raised}"
    );
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("host-profile-unapproved"),
        "{}",
        stdout(&out)
    );
}

/// Session 22 (issues 14 and 13): whoever can write the console's store (sqlite3 on its
/// disk) marked a host's profile generation approved, and the fleet listener answered
/// the host's next report with an approval signed by the console's witness key: no
/// administrator, no step-up, no four eyes. Now the listener signs only an approval this
/// console's own trail records (host, generation, digest, approvers); a row with no such
/// record is raised as `host-approval-unproven` and not signed. An approver who then
/// reviews it and approves it on the Hosts page (step-up, reason) makes it signed.
#[test]
fn an_approval_written_with_sqlite3_in_the_consoles_store_is_not_signed() {
    let console = Env::new();
    console.profile(&[]);
    // A fixed port: the console is restarted below and the host must find it again.
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").to_string()
    };
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ws-51",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-51", |h| h["profile"]["generation"] == 1);
    // Written beside the running console, as an intruder would: wait for its locks.
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg(
            "UPDATE fleet_profiles SET approved_by = 'console:admin', reason = 'change 1', \
             approved_at = CAST(strftime('%s','now') AS INTEGER), approved_seq = seen_seq",
        )
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    // The store says approved (that is what was written)...
    wait_host(&console, "ws-51", |h| h["profile"]["approved"] == true);
    // ...and nothing is signed.
    forged_approval_not_signed(&console, &host, &guard, "ws-51");

    // The Hosts page shows it as not approved on this console and offers it to an
    // approver, who decides (step-up, reason): then it is signed.
    let (status, body) = web.curl("GET", "/hosts", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("not recorded on this console"), "{body}");
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let (status, body) = web.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &value_of(&body, "name=\"csrf\" value=\"", '"')),
            ("host", &value_of(&body, "name=\"host\" value=\"", '"')),
            (
                "generation",
                &value_of(&body, "name=\"generation\" value=\"", '"'),
            ),
            ("digest", &value_of(&body, "name=\"digest\" value=\"", '"')),
            ("reason", "reviewed the row found in the store, change 5120"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let kept = host.home.join("fleet/approvals.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The approval is read back from the console's proven trail at its next start: the
    // restarted console still answers the host's `check` that it is in effect.
    server.stop();
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    guard.stop();
    let out = host.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}\nconsole: {}",
        stdout(&out),
        stderr(&out),
        server.stderr()
    );
    assert!(
        stderr(&out).contains("confirmed by the console as its current approval"),
        "{}",
        stderr(&out)
    );
    server.stop();
    let trail = std::fs::read_to_string(console.home.join("audit.log")).expect("trail");
    assert_eq!(
        trail.matches("host-approval-unproven").count(),
        1,
        "raised once: {trail}"
    );
    assert!(
        trail.contains("reviewed the row found in the store, change 5120")
            && trail.contains("\"approval_digest\":\"ws-51/1/"),
        "{trail}"
    );
}

/// The same attack on a console keeping its fleet on PostgreSQL: the row written with
/// psql (a DBA, a stolen password) is not signed either.
#[test]
fn an_approval_written_with_psql_in_the_fleets_store_is_not_signed() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let (console, server, host) = console_on_postgresql(&pg, "pg-51");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pg-51", |h| h["profile"]["generation"] == 1);
    pg.psql(
        "UPDATE fleet_profiles SET approved_by = 'console:admin', reason = 'change 1', \
         approved_at = extract(epoch from now())::bigint, approved_seq = seen_seq",
    );
    wait_host(&console, "pg-51", |h| h["profile"]["approved"] == true);
    forged_approval_not_signed(&console, &host, &guard, "pg-51");
    guard.stop();
    server.stop();
}

/// Session 22, two consoles on one PostgreSQL store, each with its own trail: an approval
/// made on console B of a host reporting to console A is in the shared store, but A's
/// trail does not record it, so A does not sign it (`host-approval-unproven` on A's
/// trail) until an approver approves it on A. Trusting the shared store for B's word would
/// let anyone who writes that database do the same.
#[test]
fn an_approval_made_on_another_console_is_signed_only_once_approved_here_too() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let (console_a, server_a, host) = console_on_postgresql(&pg, "ws-52");
    let console_b = Env::new();
    console_b.profile(&[]);
    set_fleet_store(&console_b, &pg.connection_string());
    let server_b = Serve::start(&console_b, &[]);
    let (web_a, web_b) = (
        Web::of(&server_a, &console_a),
        Web::of(&server_b, &console_b),
    );
    let (secret_a, secret_b) = (web_a.first_admin(&server_a), web_b.first_admin(&server_b));
    let guard = Serve::start(&host, &[]);
    wait_host(&console_a, "ws-52", |h| h["profile"]["generation"] == 1);
    let approve = |web: &Web, secret: &str, reason: &str| {
        let (_, body) = web.curl("GET", "/hosts", &[]);
        let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
        let (status, _) = web.curl(
            "POST",
            "/step-up",
            &[("csrf", &csrf), ("code", &code(secret, 1))],
        );
        assert_eq!(status, 303);
        let (_, body) = web.curl("GET", "/hosts", &[]);
        web.curl(
            "POST",
            "/hosts/approve",
            &[
                ("csrf", &value_of(&body, "name=\"csrf\" value=\"", '"')),
                ("host", &value_of(&body, "name=\"host\" value=\"", '"')),
                (
                    "generation",
                    &value_of(&body, "name=\"generation\" value=\"", '"'),
                ),
                ("digest", &value_of(&body, "name=\"digest\" value=\"", '"')),
                ("reason", reason),
            ],
        )
    };
    let (status, body) = approve(&web_b, &secret_b, "change 3301, approved on B");
    assert_eq!(status, 200, "{body}");
    wait_host(&console_a, "ws-52", |h| h["profile"]["approved"] == true);
    forged_approval_not_signed(&console_a, &host, &guard, "ws-52");
    let (_, body) = web_a.curl("GET", "/hosts", &[]);
    assert!(body.contains("not recorded on this console"), "{body}");
    let (status, body) = approve(&web_a, &secret_a, "change 3301, approved on A");
    assert_eq!(status, 200, "{body}");
    let kept = host.home.join("fleet/approvals.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(Instant::now() < deadline, "{}", guard.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    guard.stop();
    server_a.stop();
    server_b.stop();
}

/// Session 22 with four eyes in force: a row written as approved with sqlite3 is not
/// signed, and one approver's "Approve here" of it only asks a second approver (202):
/// the store's row is no way around four eyes, and nothing is signed meanwhile.
#[test]
fn with_four_eyes_an_approval_written_in_the_store_needs_two_approvers_here() {
    let console = Env::new();
    console.profile(&[]);
    let config = console.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[console]\nneeds_second_host_approver = true\n");
    std::fs::write(&config, text).expect("config");
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let host = enrolled_host(&console, &server, "ws-53");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-53", |h| h["profile"]["generation"] == 1);
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg(
            "UPDATE fleet_profiles SET approved_by = 'console:admin', reason = 'change 1', \
             approved_at = CAST(strftime('%s','now') AS INTEGER), approved_seq = seen_seq",
        )
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    forged_approval_not_signed(&console, &host, &guard, "ws-53");
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    assert!(body.contains("Approve here"), "{body}");
    let (status, body) = web.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &value_of(&body, "name=\"csrf\" value=\"", '"')),
            ("host", &value_of(&body, "name=\"host\" value=\"", '"')),
            (
                "generation",
                &value_of(&body, "name=\"generation\" value=\"", '"'),
            ),
            ("digest", &value_of(&body, "name=\"digest\" value=\"", '"')),
            ("reason", "reviewed the row found in the store"),
        ],
    );
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("awaits a second approver"), "{body}");
    // Nothing signed: the host still carries no approval.
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        !host.home.join("fleet/approvals.jsonl").exists(),
        "one approver signs nothing"
    );
    guard.stop();
    server.stop();
}

/// Approves on `web` the first profile offered on its Hosts page (step-up done), and
/// waits until the console's store holds `name`'s generation `generation` approved (a
/// 202, the approval awaiting its trail record on a loaded machine, is settled by
/// reading the page after `APPROVAL_RESOLVE_AFTER`).
fn approve_first_offered(web: &Web, console: &Env, name: &str, generation: u64, reason: &str) {
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let (status, body) = web.curl(
        "POST",
        "/hosts/approve",
        &[
            ("csrf", &value_of(&body, "name=\"csrf\" value=\"", '"')),
            ("host", &value_of(&body, "name=\"host\" value=\"", '"')),
            (
                "generation",
                &value_of(&body, "name=\"generation\" value=\"", '"'),
            ),
            ("digest", &value_of(&body, "name=\"digest\" value=\"", '"')),
            ("reason", reason),
        ],
    );
    assert!(status == 200 || status == 202, "{status}: {body}");
    let deadline = Instant::now()
        + Duration::from_secs(
            u64::try_from(pacsguard_console::host_approvals::APPROVAL_RESOLVE_AFTER)
                .expect("seconds")
                + 120,
        );
    while hosts(console)
        .into_iter()
        .find(|h| h["name"] == name)
        .is_none_or(|h| {
            h["profile"]["approved"] != true || h["profile"]["generation"] != generation
        })
    {
        assert!(Instant::now() < deadline, "the approval never settled");
        let (status, _) = web.curl("GET", "/hosts", &[]);
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Review r23 (N -> N+1 -> N with the store edited): generation 1 approved, then
/// generation 2 approved; root on the host puts back its home of generation 1 (its
/// approvals file with it), and whoever writes the console's store makes the approval of
/// generation 1 look newer than the report of generation 2 (`approved_seq`). The store
/// then no longer says superseded, and the console signed generation 1 again and told
/// the host's `check` it was in effect: the superseding was judged from the store alone.
/// The console's own trail records generation 2 approved after generation 1: that is
/// enough to refuse it. Review r26: the home put back rewinds the host's trail, and a
/// report whose trail is not proven has nothing of it judged: the console raises the
/// fork and keeps the profile it last witnessed (before, it took generation 1 from the
/// forked reports and offered it to approve again, for a host whose trail it refuses).
#[test]
fn a_host_back_on_an_older_approval_is_refused_even_with_the_store_edited() {
    let ApprovedFirst {
        console,
        server,
        web,
        host,
        kept: _,
    } = approved_first("127.0.0.1:0", "ws-54", "installation baseline, change 7001");
    // Root keeps a copy of the host's home on generation 1.
    let backup = copy_of_home(&host);
    // A vendor patch, profiled and approved as generation 2.
    std::fs::write(host.path("study/patch.bin"), b"vendor patch 2").expect("patch");
    let out = host.run(&["profile", host.tree_str()]);
    assert!(
        stdout(&out).contains("generation 2 signed"),
        "{}",
        stdout(&out)
    );
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-54", |h| h["profile"]["generation"] == 2);
    approve_first_offered(&web, &console, "ws-54", 2, "vendor patch, change 7002");
    guard.stop();
    // The store's writer makes generation 1's approval look newer than every report.
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_profiles SET approved_seq = 1000000 WHERE generation = 1")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    // Root puts back the home of generation 1.
    put_back(&host.home, backup.path());
    let guard = Serve::start(&host, &[]);
    let forked = wait_host(&console, "ws-54", |h| h["state"] == "fork");
    assert_eq!(forked["profile"]["generation"], 2, "{forked}");
    guard.stop();
    let out = host.run(&["check"]);
    assert!(
        !stderr(&out).contains("approved by the console"),
        "the console holds generation 1 in effect again: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    server.stop();
    let log = console_log(&console);
    assert!(log.contains("host-trail-fork"), "{log}");
}

/// Review r24 (N -> unapproved N+1 -> N with the console's store edited): generation 1
/// approved; root on the host makes generation 2 there (never approved), reports it, then
/// puts back its home of generation 1 (its approvals file with it); whoever writes the
/// console's store makes the approval of generation 1 look newer than the report of
/// generation 2 (`approved_seq`). The trail's newest approval of the host was still
/// generation 1's, so only the store said the host had left it: the console signed
/// generation 1 again and told the host's `check` it was in effect. The console's trail
/// now records the report of another profile it witnessed after an approval, and an
/// approval recorded before it is not in effect, also after the console's restart.
#[test]
fn a_host_back_on_its_approval_after_an_unapproved_profile_is_refused_even_with_the_store_edited() {
    // A fixed port: the console is restarted below and the host must find it again.
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").to_string()
    };
    let ApprovedFirst {
        console,
        server,
        web: _,
        host,
        kept,
    } = approved_first(&listen, "ws-55", "installation baseline, change 8001");
    // Root keeps a copy of the host's home on generation 1.
    let backup = copy_of_home(&host);
    // An implant taken into generation 2 on the host, reported, never approved.
    std::fs::write(host.path("study/implant.bin"), b"planted by an intruder").expect("plant");
    let out = host.run(&["profile", host.tree_str()]);
    assert!(
        stdout(&out).contains("generation 2 signed"),
        "{}",
        stdout(&out)
    );
    let guard = Serve::start(&host, &[]);
    let seen = wait_host(&console, "ws-55", |h| h["profile"]["generation"] == 2);
    assert_eq!(seen["profile"]["approved"], false, "{seen}");
    guard.stop();
    // The console restarts (what its trail recorded is read back), and the store's
    // writer makes generation 1's approval look newer than every report meanwhile.
    server.stop();
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_profiles SET approved_seq = 1000000 WHERE generation = 1")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    // Root puts back the home of generation 1, its kept approval with it.
    put_back(&host.home, backup.path());
    assert!(kept.exists(), "the approval of generation 1 put back");
    let guard = Serve::start(&host, &[]);
    // Review r26: its trail rewound with the home, the host's reports are refused as a
    // fork and nothing they claim is judged: the console keeps generation 2.
    let forked = wait_host(&console, "ws-55", |h| h["state"] == "fork");
    assert_eq!(forked["profile"]["generation"], 2, "{forked}");
    let trail = || std::fs::read_to_string(console.home.join("audit.log")).unwrap_or_default();
    // A few more reports: none signed again.
    std::thread::sleep(Duration::from_secs(5));
    guard.stop();
    let out = host.run(&["check"]);
    assert!(
        !stderr(&out).contains("approved by the console"),
        "the console holds generation 1 in effect again: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("implant.bin"), "{}", stdout(&out));
    server.stop();
    // The console's trail says what it witnessed, as data.
    let trail = trail();
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"approval_superseded\":\"ws-55/2/")),
        "{trail}"
    );
}

/// Review r24: a console on a shared fleet store (PostgreSQL) killed and started again
/// within CONSOLE_CLAIM_STALE (2 minutes) found its own previous claim live, took a fresh
/// console id with a false `console-id-renewed` alert, and the approvals it had left
/// awaiting their trail record under its old id became another console's, dropped only
/// after FOREIGN_APPROVAL_ABANDONED_AFTER (an hour). Holding its home's lock on the same
/// boot, it now takes its previous run's claim over and keeps its id; a copy of its home
/// elsewhere still takes a fresh id while it runs.
#[test]
fn a_console_killed_and_started_again_keeps_its_id_and_a_copy_does_not_take_it() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let console = Env::new();
    console.profile(&[]);
    set_fleet_store(&console, &pg.connection_string());
    let id_of = |server: &Serve| {
        assert!(
            server.wait_for("serve: console id ", Duration::from_secs(30)),
            "{}",
            server.stderr()
        );
        server.after("serve: console id ")
    };
    let server = Serve::start(&console, &[]);
    let id = id_of(&server);
    assert_eq!(id.len(), 32, "{}", server.stderr());
    // kill -9: the id is not given back, its claim stays live on the store.
    drop(server);
    // A copy of the home made while it is stopped (a backup restored elsewhere).
    let copy = Env::new();
    put_back(&copy.home, &console.home);
    let server = Serve::start(&console, &[]);
    assert_eq!(id_of(&server), id, "{}", server.stderr());
    assert!(
        !server.stderr().contains("took the fresh id"),
        "{}",
        server.stderr()
    );
    let copied = Serve::start(&copy, &[]);
    assert_ne!(id_of(&copied), id, "{}", copied.stderr());
    assert!(
        copied.stderr().contains("took the fresh id"),
        "{}",
        copied.stderr()
    );
    copied.stop();
    server.stop();
    let trail = std::fs::read_to_string(console.home.join("audit.log")).expect("trail");
    assert!(!trail.contains("console-id-renewed"), "{trail}");
}

/// Review r24: an approval the fleet's store holds and this console's trail does not
/// (every approval made before session 22, or a row written with sqlite3) was raised as
/// `host-approval-unproven` once per process: again at every restart of the console,
/// the same alert for the same row, until someone approved it here. The console's trail
/// now records which it raised (`approval_unproven`), read back at start: once, for as
/// long as the row stays as it is.
#[test]
fn an_unproven_approval_is_raised_once_across_restarts_of_the_console() {
    let console = Env::new();
    console.profile(&[]);
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").to_string()
    };
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let host = enrolled_host(&console, &server, "ws-56");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-56", |h| h["profile"]["generation"] == 1);
    // An approval with no record on this console's trail, as every approval made before
    // session 22 is.
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg(
            "UPDATE fleet_profiles SET approved_by = 'console:admin', reason = 'change 1', \
             approved_at = CAST(strftime('%s','now') AS INTEGER), approved_seq = seen_seq",
        )
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    forged_approval_not_signed(&console, &host, &guard, "ws-56");
    let raised = || {
        std::fs::read_to_string(console.home.join("audit.log"))
            .unwrap_or_default()
            .matches("host-approval-unproven")
            .count()
    };
    assert_eq!(raised(), 1);
    // Restarted twice, the host reporting to each run: nothing new to say.
    server.stop();
    for _ in 0..2 {
        let server = Serve::start(&console, &["--fleet-listen", &listen]);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        wait_host(&console, "ws-56", |h| {
            h["last_contact"].as_u64().is_some_and(|at| at > started)
        });
        server.stop();
    }
    guard.stop();
    assert_eq!(raised(), 1, "raised again at a restart");
}

/// Review r24: a host's revocation lived in the fleet's store alone (not even on the
/// console's trail): `UPDATE fleet_hosts SET revoked = NULL` with sqlite3 brought the
/// revoked host back, its records taken and its checkpoints cosigned again. The console
/// now records each revocation it finds in its store on its own trail, naming the
/// certificate as data (`host_revoked`), and refuses that certificate whatever the store
/// says, also after a restart, raising the store's undoing as `host-revocation-undone`.
#[test]
fn a_revoked_host_stays_refused_when_the_store_is_edited_to_undo_it() {
    let console = Env::new();
    console.profile(&[]);
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").to_string()
    };
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "ws-57",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-57", |h| h["profile"]["generation"] == 1);
    let out = console.run(&["console", "revoke-host", "ws-57"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        guard.wait_for("was revoked by the console", Duration::from_secs(30)),
        "{}",
        guard.stderr()
    );
    let trail = || std::fs::read_to_string(console.home.join("audit.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !trail().contains("\"host_revoked\":\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let held = wait_host(&console, "ws-57", |h| h["revoked"] == true)["records"].clone();
    // Whoever writes the console's store undoes the revocation; the console is
    // restarted too (what its trail records is read back).
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_hosts SET revoked = NULL")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    server.stop();
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    // The host has new records to deliver.
    std::fs::write(
        host.path("study/after.bin"),
        b"written after the revocation",
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !trail().contains("host-revocation-undone") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = hosts(&console)
        .into_iter()
        .find(|h| h["name"] == "ws-57")
        .expect("listed");
    guard.stop();
    server.stop();
    assert_eq!(
        now["records"],
        held,
        "the revoked host delivered again: {now}\n{}",
        trail()
    );
    let trail = trail();
    let raised = trail
        .lines()
        .find(|l| l.contains("host-revocation-undone"))
        .unwrap_or_else(|| panic!("{trail}"));
    assert!(
        raised.contains("host ws-57") && raised.contains("\"severity\":\"alert\""),
        "{raised}"
    );
    // Session 50: an alert about a revoked enrolment is closed at once, but the store's
    // edit is not about the enrolment: it stays open until a person acknowledges it.
    for closed in ["alert at once", "alert at the console's start"] {
        assert!(
            !trail.contains(&format!("closed host ws-57's {closed}")),
            "{trail}"
        );
    }
}

/// Root on an enrolled host edits the signature row of its store (another generation):
/// the host's report named that row, read unverified, to the console as its current
/// profile (review r25-store). A store that does not verify is named as no profile:
/// the console keeps the generation it had verified news of, and the host's own `check`
/// refuses the store by name.
#[test]
fn a_signature_row_edited_on_the_host_is_not_named_to_the_console() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = server.after("listening for hosts at ");
    let url = url.split_whitespace().next().expect("url").to_string();
    let fingerprint = server.after("SHA-256 fingerprint ");
    let host = Env::new();
    host.profile(&[]);
    let token = token(&console, "15m");
    let out = host.run(&[
        "enroll",
        &url,
        "--token",
        &token,
        "--fingerprint",
        &fingerprint,
        "--name",
        "mr-9",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_host(&console, "mr-9", |h| h["profile"]["generation"] == 1);

    let db = rusqlite::Connection::open(host.home.join("pacsguard.db")).expect("open store");
    db.execute("UPDATE baseline SET generation = 7", [])
        .expect("edit");
    drop(db);
    let out = host.run(&["audit", "forward", "--to", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = hosts(&console)
        .into_iter()
        .find(|h| h["name"] == "mr-9")
        .expect("host listed");
    assert_eq!(shown["profile"]["generation"], 1, "{shown}");
    let out = host.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pacsguard.db"), "{}", stderr(&out));
}

/// The console's own audit log, as written (alerts counted by their kind).
fn console_log(console: &Env) -> String {
    std::fs::read_to_string(console.home.join("audit.log")).unwrap_or_default()
}

/// Review r25: root on an approved host copies its enrolment (`HOME/fleet/`: key and
/// certificate) into a home of its own and runs a guard there beside the host. Before,
/// every report of the copy claimed its own profile and every report of the host went
/// back to the approved one: 21 `host-profile-unapproved` and 10 `host-key-new` in
/// 20 s, and the host's approval out of effect. Now the copy is raised once
/// (`host-identity-duplicated`, naming both trail keys), its reports are refused and
/// counted without being judged, and the host's approval stays in effect.
#[test]
fn a_copy_of_a_hosts_enrolment_beside_it_is_raised_once_and_its_approval_stays() {
    let ApprovedFirst {
        console,
        server,
        host,
        kept,
        ..
    } = approved_first("127.0.0.1:0", "pacs-25", "installation baseline");
    let guard = Serve::start(&host, &[]);
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    let unapproved_before = console_log(&console)
        .matches("host-profile-unapproved")
        .count();
    let twin = Serve::start(&copy, &[]);
    // Both report every 2 s, past the 15 s the console waits to tell them apart.
    assert!(
        twin.wait_for("the console refused this report", Duration::from_secs(30)),
        "{}",
        twin.stderr()
    );
    // Waited for, not slept on: past the 15 s the copy's refusals back off (flake audit
    // of session 41: a fixed 20 s left no margin on a loaded machine).
    assert!(
        twin.wait_for(
            "two processes report under its certificate",
            Duration::from_secs(90)
        ),
        "{}",
        twin.stderr()
    );
    guard.stop();
    // The host's kept approval is still the console's current one for it.
    let out = host.run(&["check"]);
    assert!(
        stderr(&out).contains("approved by the console"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(kept.exists());
    twin.stop();
    // The console holds the host's own records, in order, none of the copy's.
    let stored = stored_records(&console, "pacs-25");
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert!(!stored.is_empty() && stored.len() <= lines.len());
    assert_eq!(stored, lines[..stored.len()], "the host's records only");
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
    assert_eq!(
        log.matches("host-profile-unapproved").count(),
        unapproved_before,
        "the copy's profile never judged: {log}"
    );
    assert_eq!(log.matches("host-key-new").count(), 0, "{log}");
    assert!(!log.contains("approval_superseded"), "{log}");
}

/// Review of session 31: the console's memory marks a copy of a host's enrolment
/// raised from the verdict on, before the store keeps it; a store that failed the write
/// (a trigger refusing it here; a row lock held, a write given up on in a hospital) lost
/// the `host-identity-duplicated` alert for good, every later verdict saying it was
/// raised already. Now it is raised whatever the store answered.
#[test]
fn a_copy_beside_a_host_is_raised_even_when_the_store_refuses_to_keep_it() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "pacs-dup-store");
    let out = std::process::Command::new("sqlite3")
        .arg(console.home.join("pacsguard.db"))
        .arg(
            "CREATE TRIGGER refuse_duplicated BEFORE INSERT ON fleet_duplicated \
             BEGIN SELECT RAISE(FAIL, 'refused by the test'); END",
        )
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{}", stderr(&out));
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-dup-store", |h| {
        h["records"].as_u64() > Some(0) && h["state"] == "ok"
    });
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    let twin = Serve::start(&copy, &[]);
    // Both report every 2 s, past the 15 s the console waits to tell them apart.
    assert!(
        twin.wait_for(
            "two processes report under its certificate",
            Duration::from_secs(90)
        ),
        "{}",
        twin.stderr()
    );
    // A few more refusals of the copy: none raises it again.
    std::thread::sleep(Duration::from_secs(6));
    twin.stop();
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
}

/// Review r25: a host's clock set back a day, then right, then a day ahead. Before,
/// nothing said so; its records were taken dated as its clock said. Now each departure
/// past `MAX_CLOCK_SKEW` is raised once (`host-clock-skewed`), not at every report, and
/// its reports are still witnessed.
#[test]
fn a_host_clock_set_back_or_ahead_is_raised_once_each_time() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "ct-25");
    let skewed = || console_log(&console).matches("host-clock-skewed").count();
    let reported_since = |at: u64| {
        wait_host(&console, "ct-25", |h| {
            h["last_contact"].as_u64().is_some_and(|c| c > at) && h["state"] == "ok"
        })
    };
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    for (offset, raised) in [("-1d", 1), ("+0", 1), ("+1d", 2)] {
        let started = unix();
        let guard = Serve::start_with_clock(&host, &[], offset);
        reported_since(started);
        // A few reports more (every 2 s): raised once, not at each.
        std::thread::sleep(Duration::from_secs(5));
        guard.stop();
        assert_eq!(skewed(), raised, "{offset}: {}", console_log(&console));
    }
    server.stop();
    let log = console_log(&console);
    assert!(log.contains("s behind this console"), "{log}");
    assert!(log.contains("s ahead of this console"), "{log}");
}

/// Review r25: root copies a host's whole home (its trail key, trail and enrolment) and
/// runs a guard on the copy beside the host. Each report of the copy was refused as a
/// fork of the trail the host goes on writing, and raised again each time a batch of
/// the host put its state back to ok: 11 `host-trail-fork` in 20 s (whichever of the
/// two delivered first after the copy is the trail witnessed on). Now the first fork
/// is raised, and once the host's trail is taken again after it while the fork goes on,
/// the identity is duplicated: raised once, the copy's reports refused and counted.
#[test]
fn a_copy_of_a_whole_home_beside_the_host_is_raised_once() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "pacs-26");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-26", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let twin_guard = Serve::start(&twin, &[]);
    // Both guard the same tree: each change is a record on both trails.
    for i in 0..10 {
        std::fs::write(host.path("readme.txt"), format!("change {i}\n")).expect("write");
        std::thread::sleep(Duration::from_secs(2));
    }
    // Whichever delivered first after the copy is the trail witnessed on; the other
    // is told why it is refused.
    let told = |serve: &Serve| {
        serve
            .stderr()
            .contains("two processes report under its certificate")
    };
    assert!(
        told(&guard) || told(&twin_guard),
        "{}\n{}",
        guard.stderr(),
        twin_guard.stderr()
    );
    twin_guard.stop();
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
    assert!(log.matches("host-trail-fork").count() <= 1, "{log}");
}

/// A free loopback port's address, so a console restarted listens where its hosts
/// report.
fn free_listen() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().expect("address").to_string()
}

/// Review r26: root copies an approved host's whole home (trail key, trail, enrolment),
/// re-profiles the copy (generation 2, its implant in it) and runs a guard on it after
/// the host's trail moved on. Each report of the copy was refused as a fork of the
/// host's trail, but its profile was judged before its trail was: generation 2 raised
/// as `host-profile-unapproved`, the host's approval recorded superseded on the
/// console's trail, and the real host's `check` no longer approved. Now nothing of a
/// report whose trail is not proven is acted on.
#[test]
fn a_whole_home_copy_that_re_profiles_does_not_move_the_hosts_profile() {
    let ApprovedFirst {
        console,
        server,
        host,
        kept,
        ..
    } = approved_first("127.0.0.1:0", "pacs-27", "installation baseline");
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    // The host's trail moves on past the copy, and the console takes it. Past the
    // copy's trail, not past what the console held: the host's guard in
    // `approved_first` was stopped with records written and not yet delivered, which
    // the copy holds too. Taking those alone, the console held nothing the copy's
    // trail differs from, and the copy's re-profile continued it as the host could have
    // (review r26-fleetfix: the host's first batch carried only those whenever it went
    // out before the guard's "watch started" record was appended). The stop delivers
    // its last records now (review r27-fleet), but within STOP_DELIVERY_DEADLINE only:
    // the wait stays on the copy's size, which holds whether that delivery went or not.
    let copied = trail_size(&twin.home);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-27", |h| {
        h["records"].as_u64() > Some(copied) && h["state"] == "ok"
    });
    guard.stop();
    let unapproved_before = console_log(&console)
        .matches("host-profile-unapproved")
        .count();
    // The copy re-baselines with an implant and reports.
    std::fs::write(twin.path("implant.bin"), b"\x7fELF implant").expect("plant");
    let out = twin.run(&["profile", twin.tree_str()]);
    assert!(
        stdout(&out).contains("generation 2 signed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let twin_guard = Serve::start(&twin, &[]);
    // Up to a minute: a loaded machine (the suite's parallel consoles) is slow to answer.
    assert!(
        twin_guard.wait_for("the console refused this report", Duration::from_secs(60)),
        "{}",
        twin_guard.stderr()
    );
    // A few reports more (every 2 s).
    std::thread::sleep(Duration::from_secs(6));
    twin_guard.stop();
    let _ = std::fs::remove_file(twin.path("implant.bin"));
    let shown = wait_host(&console, "pacs-27", |_| true);
    assert_eq!(shown["profile"]["generation"], 1, "{shown}");
    assert_eq!(shown["profile"]["approved"], true, "{shown}");
    let out = host.run(&["check"]);
    assert!(
        stderr(&out).contains("approved by the console"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(kept.exists());
    server.stop();
    let log = console_log(&console);
    assert!(log.contains("host-trail-fork"), "{log}");
    assert_eq!(
        log.matches("host-profile-unapproved").count(),
        unapproved_before,
        "the copy's profile never judged: {log}"
    );
    assert!(!log.contains("approval_superseded"), "{log}");
}

/// Review r26: who reports under a host's certificate lived in the console's memory
/// only. A copy of an approved host's enrolment found running beside it
/// (`host-identity-duplicated`), the console restarted, the host down meanwhile: the
/// copy was told apart anew, and after the host's promised interval judged as the host
/// made anew: its profile raised, the host's approval recorded superseded on the
/// console's trail. Now the console's store keeps the duplication: after the restart
/// the copy is refused from its first report, nothing raised again, the approval stays.
#[test]
fn a_copy_found_beside_a_host_stays_refused_across_a_restart_of_the_console() {
    let listen = free_listen();
    let ApprovedFirst {
        console,
        server,
        host,
        kept,
        ..
    } = approved_first(&listen, "pacs-28", "installation baseline");
    let guard = Serve::start(&host, &[]);
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    let twin = Serve::start(&copy, &[]);
    assert!(
        twin.wait_for(
            "two processes report under its certificate",
            Duration::from_secs(120)
        ),
        "{}",
        twin.stderr()
    );
    guard.stop();
    server.stop();
    let unapproved_before = console_log(&console)
        .matches("host-profile-unapproved")
        .count();
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    // The copy reports on (every 2 s) past the 15 s the host promised.
    let restarted = twin.stderr().len();
    std::thread::sleep(Duration::from_secs(25));
    let since = twin.stderr()[restarted..].to_string();
    twin.stop();
    assert!(
        since.contains("two processes report under its certificate")
            && !since.contains("the console waits"),
        "refused as a copy from its first report: {since}"
    );
    let out = host.run(&["check"]);
    assert!(
        stderr(&out).contains("approved by the console"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(kept.exists());
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
    assert_eq!(
        log.matches("host-profile-unapproved").count(),
        unapproved_before,
        "the copy never judged: {log}"
    );
    assert!(!log.contains("approval_superseded"), "{log}");
    assert_eq!(log.matches("host-key-new").count(), 0, "{log}");
}

/// Review r26: `console revoke-host` beside a running `serve` wrote the fleet's store
/// only (the CLI cannot append to the trail `serve` holds): the revocation reached the
/// console's trail only at the listener's next look, and an edit of the store made
/// before it (`revoked = NULL` with sqlite3) undid it unseen, the host reporting on.
/// Now `serve` runs the command (its control socket): when it returns, the console
/// holds the revocation whatever its store says, and its trail records it. Without a
/// running `serve` it writes the store as before.
#[test]
fn a_host_revoked_while_serve_runs_is_on_the_trail_when_the_command_returns() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "ws-60");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-60", |h| h["profile"]["generation"] == 1);
    // Run by a person through sudo: the record names them (review r27-fleet: it named
    // "fleet").
    let out = pacsguard()
        .env("SUDO_USER", "dr-okafor")
        .arg("--home")
        .arg(&console.home)
        .args([
            "console",
            "revoke-host",
            "ws-60",
            "--reason",
            "its enrolment copied to another machine, ticket 4711",
        ])
        .output()
        .expect("pacsguard runs");
    // Whoever writes the store undoes it at once.
    let undone = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_hosts SET revoked = NULL")
        .output()
        .expect("sqlite3");
    assert!(undone.status.success(), "{}", stderr(&undone));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("whatever the fleet's store says"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        guard.wait_for("was revoked by the console", Duration::from_secs(30)),
        "{}",
        guard.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !console_log(&console).contains("host-revocation-undone") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let trail = console_log(&console);
    let recorded = trail
        .lines()
        .find(|l| l.contains("\"host_revoked\":\""))
        .unwrap_or_else(|| panic!("not on the trail: {trail}"));
    assert!(recorded.contains("host ws-60"), "{recorded}");
    let record: serde_json::Value = serde_json::from_str(recorded).expect("a JSON record");
    assert_eq!(record["actor"]["sudo_user"], "dr-okafor", "{recorded}");
    assert_eq!(
        record["actor"]["user"],
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .expect("this user's name"),
        "{recorded}"
    );
    assert!(
        recorded.contains(
            "(sudo by dr-okafor) (console revoke-host), for the reason \\\"its enrolment copied to another machine, ticket 4711\\\""
        ),
        "{recorded}"
    );
    assert!(trail.contains("host-revocation-undone"), "{trail}");
    // Revoked in the store again by hand: nothing left to revoke, said, exit 2.
    let again = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 30000"])
        .arg(console.home.join("pacsguard.db"))
        .arg("UPDATE fleet_hosts SET revoked = 1")
        .output()
        .expect("sqlite3");
    assert!(again.status.success(), "{}", stderr(&again));
    // A reason that is no line of text is refused before anything is revoked.
    let out = console.run(&["console", "revoke-host", "ws-60", "--reason", "two\nlines"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--reason: a control character"),
        "{}",
        stderr(&out)
    );
    // Again: nothing left to revoke, said, exit 2.
    let out = console.run(&["console", "revoke-host", "ws-60"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not revoked already"),
        "{}",
        stderr(&out)
    );
    let other = enrolled_host(&console, &server, "ws-61");
    guard.stop();
    server.stop();
    // Without a running serve: the store alone, as before.
    drop(other);
    let out = console.run(&["console", "revoke-host", "ws-61"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(wait_host(&console, "ws-61", |_| true)["revoked"], true);
    assert_eq!(
        console_log(&console).matches("\"host_revoked\":\"").count(),
        1,
        "the store alone until a serve looks"
    );
}

/// Review r26: a copy of a whole home found running beside the host
/// (`host-identity-duplicated`) was forgotten at a restart of the console: its next
/// fork raised as `host-trail-fork` again, then the duplication again. The store keeps
/// it (the host's own trail key): after the restart the copy's forks are refused as the
/// copy, nothing raised again.
#[test]
fn a_whole_home_copy_found_beside_a_host_is_not_raised_again_after_a_restart() {
    let listen = free_listen();
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let host = enrolled_host(&console, &server, "pacs-29");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-29", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let twin_guard = Serve::start(&twin, &[]);
    let duplicated = || {
        console_log(&console)
            .matches("host-identity-duplicated")
            .count()
    };
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while duplicated() == 0 {
        assert!(Instant::now() < deadline, "{}", console_log(&console));
        std::fs::write(host.path("readme.txt"), format!("change {i}\n")).expect("write");
        i += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    server.stop();
    let forks_before = console_log(&console).matches("host-trail-fork").count();
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    for n in 0..8 {
        std::fs::write(host.path("readme.txt"), format!("after {n}\n")).expect("write");
        std::thread::sleep(Duration::from_secs(2));
    }
    twin_guard.stop();
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
    assert_eq!(
        log.matches("host-trail-fork").count(),
        forks_before,
        "not raised again after the restart: {log}"
    );
}

/// Review r27-fleet: a clean stop of a host's guard wrote its 'stopped' records and a
/// final checkpoint to its trail and delivered none of them: the console held the trail
/// short of its last records, a copy of the home made right after the stop held records
/// the console never saw, and the console could tell the copy from the host only once
/// the host's next batch came. Now the stop delivers them: the console holds the whole
/// trail the moment the stop returns, without waiting for anything, and a copy made
/// then is caught at its first contact once the host has reported once.
#[test]
fn a_stop_delivers_its_last_records_and_a_copy_made_then_is_caught_at_first_contact() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "pacs-30");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-30", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let (took, said) = guard.stop_timed();
    eprintln!("the stop with the console up took {took:?}");
    let written = trail_size(&host.home);
    let held = wait_host(&console, "pacs-30", |_| true);
    assert_eq!(
        held["records"].as_u64(),
        Some(written),
        "the console holds the whole trail when the stop returns: {held}\n{said}"
    );
    assert_eq!(held["witnessed"].as_u64(), Some(written), "{held}");
    // Root copies the home right after the stop; the host starts again and reports.
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-30", |h| {
        h["records"].as_u64() > Some(written) && h["state"] == "ok"
    });
    guard.stop();
    let forks_before = console_log(&console).matches("host-trail-fork").count();
    let twin_guard = Serve::start(&twin, &[]);
    assert!(
        twin_guard.wait_for("the console refused this report", Duration::from_secs(30)),
        "{}",
        twin_guard.stderr()
    );
    twin_guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(
        log.matches("host-trail-fork").count(),
        forks_before + 1,
        "the copy's first contact is a fork of what the console holds: {log}"
    );
}

/// Holds every connection made to `listen` without a byte of answer (a console that
/// hangs, or something on the way that does), until dropped.
struct Blackhole {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    fn on(listen: &str) -> Blackhole {
        let listener = std::net::TcpListener::bind(listen).expect("the console's port");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Blackhole {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Review r27-fleet: the stop's delivery is bounded. A console that takes connections
/// and never answers held a host's stop for the report in flight (30 s, `IO_TIMEOUT`,
/// per step: 25.8 s seen). Now the stop waits `STOP_DELIVERY_DEADLINE` (10 s) for its last records
/// to go, says on stderr that they did not, and the next start records it on the trail;
/// the console then gets them, none lost.
#[test]
fn a_stop_with_a_console_that_never_answers_is_bounded_and_recorded_at_the_next_start() {
    let listen = free_listen();
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let host = enrolled_host(&console, &server, "pacs-31");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-31", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    server.stop();
    let hole = Blackhole::on(&listen);
    // A report goes every 2 s: one is held by the hole when the stop comes, for up to
    // 30 s (IO_TIMEOUT) of its handshake.
    std::thread::sleep(Duration::from_secs(3));
    let (took, said) = guard.stop_timed();
    eprintln!("the stop with a console that never answers took {took:?}");
    // The point: not 30 s (IO_TIMEOUT) at each step; STOP_DELIVERY_DEADLINE (10 s) and
    // the guard's own stop, with room for a loaded machine (flake audit of session 41).
    assert!(
        took < Duration::from_secs(28),
        "the stop took {took:?}: {said}"
    );
    assert!(
        said.contains("were not confirmed delivered to the console")
            && said.contains("STOP_DELIVERY_DEADLINE"),
        "{said}"
    );
    let note = host.home.join("fleet/stop-undelivered.txt");
    assert!(note.exists(), "{said}");
    drop(hole);
    let written = trail_size(&host.home);
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-31", |h| {
        h["records"].as_u64() > Some(written) && h["state"] == "ok"
    });
    guard.stop();
    server.stop();
    let trail = std::fs::read_to_string(host.home.join("audit.log")).expect("trail");
    let recorded = trail
        .lines()
        .find(|l| l.contains("were not confirmed delivered to the console"))
        .unwrap_or_else(|| panic!("not on the host's trail: {trail}"));
    assert!(recorded.contains("\"failure\""), "{recorded}");
    assert!(!note.exists(), "the note is removed once recorded");
    assert_eq!(
        trail
            .matches("were not confirmed delivered to the console")
            .count(),
        1,
        "recorded once"
    );
}

/// Review r31-watch: the second stop signal promises a stop "now without waiting",
/// but `serve` on an enrolled host still waited its whole `STOP_DELIVERY_DEADLINE`
/// (10 s) for a console that never answers. Now the second signal cuts that wait
/// short too, and says why; the records left undelivered are named in the note the next
/// start records on the trail (the cursor stays where the console last confirmed).
#[test]
fn a_second_stop_signal_cuts_the_wait_for_the_console_short() {
    let listen = free_listen();
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let host = enrolled_host(&console, &server, "pacs-32");
    let mut guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-32", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    server.stop();
    let _hole = Blackhole::on(&listen);
    signal(&guard, nix::sys::signal::Signal::SIGTERM);
    // Two signals sent together are one (a pending signal is not queued twice): the
    // second is sent again until it is taken as such.
    let until = Instant::now() + Duration::from_secs(60);
    while !guard.stderr().contains("now without waiting") && Instant::now() < until {
        signal(&guard, nix::sys::signal::Signal::SIGTERM);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = guard.child.wait();
    // The reader thread ends at the pipe's end; its last lines may lag the exit.
    std::thread::sleep(Duration::from_millis(300));
    let said = guard.stderr();
    assert!(said.contains("now without waiting"), "{said}");
    assert!(
        said.contains("were not confirmed delivered to the console")
            && said.contains("a second stop signal cut the wait for the console short"),
        "{said}"
    );
    let note = std::fs::read_to_string(host.home.join("fleet/stop-undelivered.txt"))
        .unwrap_or_else(|e| panic!("no note for the next start ({e}): {said}"));
    assert!(note.contains("a second stop signal"), "{note}");
}

/// Review r27-fleet, an attack that held: a copy of an approved host's enrolment
/// waiting to be told apart (refused, not judged) when the console restarts gets a
/// fresh wait, the wait being the console's memory. The host reports on beside it
/// (every 2 s), so the fresh wait ends the same way: the copy duplicated once, never
/// judged as the host made anew, the host's approval still in effect.
#[test]
fn a_copy_waiting_when_the_console_restarts_is_still_told_apart() {
    let listen = free_listen();
    let ApprovedFirst {
        console,
        server,
        host,
        kept,
        ..
    } = approved_first(&listen, "pacs-32", "installation baseline");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-32", |h| h["state"] == "ok");
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    let unapproved_before = console_log(&console)
        .matches("host-profile-unapproved")
        .count();
    let twin = Serve::start(&copy, &[]);
    assert!(
        twin.wait_for("the console waits", Duration::from_secs(30)),
        "{}",
        twin.stderr()
    );
    assert!(
        !twin
            .stderr()
            .contains("two processes report under its certificate"),
        "the restart comes while the copy waits: {}",
        twin.stderr()
    );
    server.stop();
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    // Past the 15 s the host promised, after the restart.
    assert!(
        twin.wait_for(
            "two processes report under its certificate",
            Duration::from_secs(120)
        ),
        "{}",
        twin.stderr()
    );
    std::thread::sleep(Duration::from_secs(17));
    twin.stop();
    guard.stop();
    let out = host.run(&["check"]);
    assert!(
        stderr(&out).contains("approved by the console"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(kept.exists());
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-identity-duplicated").count(), 1, "{log}");
    assert_eq!(
        log.matches("host-profile-unapproved").count(),
        unapproved_before,
        "the copy never judged: {log}"
    );
    assert_eq!(log.matches("host-key-new").count(), 0, "{log}");
    assert!(!log.contains("approval_superseded"), "{log}");
}

/// Issue 14 (review r27-fleet2): root copies a host's whole home while the host runs,
/// stops the host and runs a guard on the copy. Every report of the copy is refused as a
/// fork of the host's trail, but each refreshed the host's last contact before its trail
/// was verified: the console showed `fork` with a fresh `last_contact`, and
/// `host-silent` was never raised (0 times in 40 s): the copy kept the stopped host
/// looking alive. Now only a report whose trail verified is a contact: the host is
/// raised silent within its promised interval (15 s) and the grace, its fork still
/// shown (`fork, silent`), and neither alert is raised again at the copy's next reports.
#[test]
fn a_whole_home_copy_forking_after_the_host_stopped_does_not_keep_it_alive() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "pacs-14");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-14", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    // The host's trail moves on past the copy, and the console takes it: the copy's
    // trail is then a fork of the one witnessed.
    let copied = trail_size(&twin.home);
    std::fs::write(host.path("readme.txt"), b"changed after the copy\n").expect("write");
    wait_host(&console, "pacs-14", |h| {
        h["records"].as_u64() > Some(copied) && h["state"] == "ok"
    });
    guard.stop();
    let stopped = Instant::now();
    let contact = wait_host(&console, "pacs-14", |_| true)["last_contact"].clone();
    let twin_guard = Serve::start(&twin, &[]);
    assert!(
        twin_guard.wait_for("the console refused this report", Duration::from_secs(60)),
        "{}",
        twin_guard.stderr()
    );
    // The promised interval (15 s), the grace (10 s), and room for a loaded machine.
    let silent = wait_host(&console, "pacs-14", |h| h["state"] == "fork, silent");
    assert!(
        // Room for a loaded machine (flake audit of session 41): a copy keeping the
        // host alive would never let it be silent at all.
        stopped.elapsed() < Duration::from_secs(35) + pacsguard_fleet::console::SILENCE_GRACE * 2,
        "raised silent only after {:?}: {silent}",
        stopped.elapsed()
    );
    assert!(
        silent["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no report of its trail verified")
                && d.contains("refused meanwhile (fork)")),
        "{silent}"
    );
    // The copy goes on reporting (every 2 s): the host stays silent, its contact still
    // the last one of its own trail.
    std::thread::sleep(Duration::from_secs(6));
    let after = wait_host(&console, "pacs-14", |_| true);
    assert_eq!(after["state"], "fork, silent", "{after}");
    assert_eq!(after["last_contact"], contact, "{after}");
    twin_guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-silent").count(), 1, "{log}");
    assert_eq!(log.matches("host-trail-fork").count(), 1, "{log}");
}

/// Issue 14 (review r27-fleet2): root copies a host's enrolment (`HOME/fleet/`) into a
/// home of its own, stops the host and runs a guard on the copy. After the console's
/// wait (the host's promised interval) the copy is judged as the host made anew: its
/// reports refused (`host-key-new`), but each of them refreshed the host's last contact,
/// so the stopped host was never raised silent. Now the host is raised silent as well,
/// the new key kept in its state (`new-key, silent`), each alert raised once.
#[test]
fn an_enrolment_copy_after_the_host_stopped_does_not_keep_it_alive() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "pacs-15");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "pacs-15", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    guard.stop();
    let stopped = Instant::now();
    let contact = wait_host(&console, "pacs-15", |_| true)["last_contact"].clone();
    let twin = Serve::start(&copy, &[]);
    // The promised interval (15 s), the grace (10 s), and room for a loaded machine;
    // the console's wait on the copy's key (15 s) ends before or after the silence.
    let silent = wait_host(&console, "pacs-15", |h| h["state"] == "new-key, silent");
    assert!(
        // Room for a loaded machine (flake audit of session 41): a copy keeping the
        // host alive would never let it be silent at all.
        stopped.elapsed() < Duration::from_secs(35) + pacsguard_fleet::console::SILENCE_GRACE * 3,
        "raised silent only after {:?}: {silent}",
        stopped.elapsed()
    );
    std::thread::sleep(Duration::from_secs(6));
    let after = wait_host(&console, "pacs-15", |_| true);
    assert_eq!(after["state"], "new-key, silent", "{after}");
    assert_eq!(after["last_contact"], contact, "{after}");
    twin.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-silent").count(), 1, "{log}");
    assert_eq!(log.matches("host-key-new").count(), 1, "{log}");
}

/// Issue 15 (review r28-store): a host whose store every command refused, and which a
/// person re-initialised (`store reinit`: no backup to put back), reports the reset and
/// its new, empty generation: the console keeps the `store-reset` alert among the host's
/// records (with the reason), shows the new generation as the host's profile,
/// unapproved, and raises `host-profile-unapproved` for it; the host's `check` says its
/// profile guards no root (exit 2) until a tree is profiled again.
#[test]
fn a_hosts_store_reinit_reaches_the_console_as_an_alert_and_an_unapproved_generation() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "ct-15");
    let forward = |host: &Env| {
        let out = host.run(&["audit", "forward", "--to", "console"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    forward(&host);
    wait_host(&console, "ct-15", |h| h["profile"]["generation"] == 1);
    let unapproved_before = console_log(&console)
        .matches("host-profile-unapproved")
        .count();

    let db = rusqlite::Connection::open(host.home.join("pacsguard.db")).expect("open store");
    db.execute("UPDATE roots SET policy = 'growing'", [])
        .expect("edit");
    drop(db);
    assert_refused(&host.run(&["check"]), "store reinit --reason");
    let out = host.run(&["store", "reinit", "--reason", "INC-15: no backup", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let generation = report["generation"].as_u64().expect("generation");
    assert!(generation > 1, "{report}");
    forward(&host);

    let shown = wait_host(&console, "ct-15", |h| {
        h["profile"]["generation"].as_u64() == Some(generation)
    });
    assert_eq!(shown["profile"]["approved"], false, "{shown}");
    let reset = stored_records(&console, "ct-15")
        .into_iter()
        .find(|line| line.contains("\"store-reset\""))
        .expect("the host's store-reset alert reached the console");
    assert!(reset.contains("INC-15: no backup"), "{reset}");
    let log = console_log(&console);
    assert!(
        log.matches("host-profile-unapproved").count() > unapproved_before,
        "{log}"
    );
    assert_refused(&host.run(&["check"]), "guards no root");
    server.stop();
}

/// A console (its fleet on `pg` when given, else its home's SQLite store) whose `serve`
/// holds its passes at `point` while `file` exists (the debug build's race hook,
/// `pacsguard_fleet::hold`).
fn console_holding(
    point: &str,
    file: &std::path::Path,
    pg: Option<&pacsguard_testkit::postgres::PgServer>,
) -> (Env, Serve) {
    let console = Env::new();
    console.profile(&[]);
    if let Some(pg) = pg {
        set_fleet_store(&console, &pg.connection_string());
    }
    let mut command = pacsguard();
    command.env(
        pacsguard_fleet::hold::HOLD_VARIABLE,
        format!("{point}:{}", file.display()),
    );
    let server = Serve::start_as(command, &console, &["--fleet-listen", "127.0.0.1:0"]);
    (console, server)
}

/// Issue 14 (review r28-fleet): the silence check reads a stopped host, finds it past its
/// interval and, before it writes `silent`, the host is started again and its report
/// verifies. Before, the check wrote `silent` over that contact and raised `host-silent`
/// for a host that had just reported. Now the state is written only over the state and
/// contact it was judged from: the check reads the host again and finds it alive.
#[test]
fn a_host_back_while_the_silence_check_judges_it_is_not_raised_silent() {
    host_back_while_the_silence_check_judges_it(None);
}

/// As [`a_host_back_while_the_silence_check_judges_it_is_not_raised_silent`], the
/// console's fleet on a real PostgreSQL server.
#[test]
fn on_postgresql_a_host_back_while_the_silence_check_judges_it_is_not_raised_silent() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    host_back_while_the_silence_check_judges_it(Some(&pg));
}

fn host_back_while_the_silence_check_judges_it(pg: Option<&pacsguard_testkit::postgres::PgServer>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").expect("hold file");
    let (console, server) = console_holding("silence", &hold, pg);
    let host = enrolled_host(&console, &server, "ct-race-1");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ct-race-1", |h| {
        h["records"].as_u64() > Some(0) && h["state"] == "ok"
    });
    guard.stop();
    // The promised interval (15 s) and the grace (10 s): the check finds it silent and
    // holds before writing so.
    assert!(
        server.wait_for(
            "holding the silence of host ct-race-1",
            Duration::from_secs(90)
        ),
        "{}",
        server.stderr()
    );
    let judged = wait_host(&console, "ct-race-1", |_| true)["last_contact"].clone();
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ct-race-1", |h| h["last_contact"] != judged);
    std::fs::remove_file(&hold).expect("release");
    assert!(
        server.wait_for(
            "the silence of host ct-race-1 goes on",
            Duration::from_secs(30)
        ),
        "{}",
        server.stderr()
    );
    // Some reports later: the host is not silent and was never raised so.
    std::thread::sleep(Duration::from_secs(5));
    let after = wait_host(&console, "ct-race-1", |_| true);
    assert_eq!(after["state"], "ok", "{after}");
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-silent").count(), 0, "{log}");
}

/// Issue 14 (review r28-fleet): a copy of a host's whole home reports after the host was
/// stopped; its fork is refused, and before its refused state is written the silence
/// check raises the host silent. Before, the refusal read the state before the silence
/// and wrote `fork` over `silent`; the next check found the host in `fork`, not silent,
/// and raised `host-silent` a second time. Now the refusal is written only over the state
/// it was judged from: read again, it is written after the silence (`fork, silent`),
/// each alert raised once.
#[test]
fn a_refusal_racing_the_silence_check_keeps_the_silence_and_raises_each_alert_once() {
    refusal_racing_the_silence_check(None);
}

/// As [`a_refusal_racing_the_silence_check_keeps_the_silence_and_raises_each_alert_once`],
/// the console's fleet on a real PostgreSQL server.
#[test]
fn on_postgresql_a_refusal_racing_the_silence_check_keeps_the_silence() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    refusal_racing_the_silence_check(Some(&pg));
}

/// A host enrolled with `console` and a copy of its whole home taken while it ran; the
/// host wrote on after the copy (its trail grew past the copy's), then was stopped and
/// the copy started: its first report forks the witnessed trail, and the console (made
/// by [`console_holding`] at `refusal`) holds that refusal.
struct CopyReporting {
    _host: Env,
    _twin: Env,
    _copy: tempfile::TempDir,
    twin_guard: Serve,
}

fn copy_reporting_after_the_host(console: &Env, server: &Serve, name: &str) -> CopyReporting {
    let host = enrolled_host(console, server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(console, name, |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    let copy = copy_of_home(&host);
    let _ = std::fs::remove_file(copy.path().join("lock"));
    let twin = Env {
        home: copy.path().to_path_buf(),
        tree: host.tree.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let copied = trail_size(&twin.home);
    std::fs::write(host.path("readme.txt"), b"changed after the copy\n").expect("write");
    wait_host(console, name, |h| {
        h["records"].as_u64() > Some(copied) && h["state"] == "ok"
    });
    guard.stop();
    let twin_guard = Serve::start(&twin, &[]);
    assert!(
        server.wait_for(
            &format!("holding the refusal of host {name}"),
            Duration::from_secs(60)
        ),
        "{}",
        server.stderr()
    );
    CopyReporting {
        _host: host,
        _twin: twin,
        _copy: copy,
        twin_guard,
    }
}

fn refusal_racing_the_silence_check(pg: Option<&pacsguard_testkit::postgres::PgServer>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").expect("hold file");
    let (console, server) = console_holding("refusal", &hold, pg);
    let forked = copy_reporting_after_the_host(&console, &server, "ct-race-2");
    wait_host(&console, "ct-race-2", |h| h["state"] == "silent");
    std::fs::remove_file(&hold).expect("release");
    let silent = wait_host(&console, "ct-race-2", |h| h["state"] == "fork, silent");
    // The copy reports on (every 2 s) and the check runs every second.
    std::thread::sleep(Duration::from_secs(8));
    let after = wait_host(&console, "ct-race-2", |_| true);
    assert_eq!(after["state"], "fork, silent", "{silent} then {after}");
    forked.twin_guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-silent").count(), 1, "{log}");
    assert_eq!(log.matches("host-trail-fork").count(), 1, "{log}");
}

/// Session 31 (issue 14): the console's write of a host's fork reached PostgreSQL, but
/// the request's budget ran out before the answer came (spent waiting: here the race
/// hook, in a hospital a lock or a loaded server). The server carried the write out; the
/// console took the failure for "not written" and raised nothing, and every later
/// refusal found the fork standing: a host shown `fork` with no `host-trail-fork` on the
/// trail (a CI run of `on_postgresql_a_refusal_racing_the_silence_check_keeps_the_silence`
/// failed so). A trigger slows the first write of a fork past the request's deadline, as
/// a loaded server would. Now a write of unknown outcome raises its alert all the same,
/// and the store's silence after it is said on the console's log.
#[test]
fn on_postgresql_a_fork_written_after_the_console_gave_up_on_the_write_is_raised() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").expect("hold file");
    let (console, server) = console_holding("refusal", &hold, Some(&pg));
    // Shorter than the server's statement_timeout (PG_STATEMENT_TIMEOUT), longer than
    // what is left of the request when the hold ends.
    let slow = Duration::from_secs(7);
    assert!(slow < pacsguard_store::PG_STATEMENT_TIMEOUT);
    pg.psql(&format!(
        "CREATE FUNCTION slow_fork() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep({}); RETURN NEW; END $$; \
         CREATE TRIGGER slow_fork BEFORE UPDATE ON fleet_hosts FOR EACH ROW \
         WHEN (NEW.state LIKE 'fork%' AND OLD.state NOT LIKE 'fork%') \
         EXECUTE FUNCTION slow_fork()",
        slow.as_secs()
    ));
    let forked = copy_reporting_after_the_host(&console, &server, "ct-unconfirmed");
    // Released with about 3.5 s left of the request's budget: enough for the write to be
    // sent (PG_MIN_STATEMENT_TIME), not for the slowed server to answer it.
    let left = Duration::from_millis(3500);
    assert!(left > pacsguard_store::PG_MIN_STATEMENT_TIME * 2 && left < slow);
    std::thread::sleep(pacsguard_store::FLEET_REQUEST_BUDGET - left);
    std::fs::remove_file(&hold).expect("release");
    assert!(
        server.wait_for(
            "the store did not confirm that its state `fork` was written",
            Duration::from_secs(60)
        ),
        "{}",
        server.stderr()
    );
    wait_host(&console, "ct-unconfirmed", |h| {
        h["state"].as_str().is_some_and(|s| s.starts_with("fork"))
    });
    // The copy reports on (every 2 s), each refusal finding the fork standing.
    std::thread::sleep(Duration::from_secs(6));
    forked.twin_guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-trail-fork").count(), 1, "{log}");
}

/// Session 33 (issue 14): the console's SQLite store refuses every change of a host's
/// state (here a trigger written with sqlite3 beside the running console; in a hospital
/// a store gone read-only, or locked) while a copy of a host's home forks its trail.
/// Before, the refusal's write failed with an error known not done and its alert was
/// never raised: the copy's reports were refused, each said as a store failure on the
/// log, and no `host-trail-fork` at all. Now it is raised once while the store refuses
/// (not at each of the copy's reports), and written, not raised again, once the store
/// takes writes again.
#[test]
fn a_fork_while_the_sqlite_store_refuses_writes_is_raised_once_and_written_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").expect("hold file");
    let (console, server) = console_holding("refusal", &hold, None);
    let forked = copy_reporting_after_the_host(&console, &server, "ct-readonly");
    let sqlite = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .args(["-cmd", ".timeout 30000"])
            .arg(console.home.join("pacsguard.db"))
            .arg(sql)
            .output()
            .expect("sqlite3");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    sqlite(
        "CREATE TRIGGER refuse_state BEFORE UPDATE OF state ON fleet_hosts \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    );
    std::fs::remove_file(&hold).expect("release");
    // The copy reports on (every 2 s): three refusals whose state the store refused.
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.stderr().matches("refused by the test").count() < 3 {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        console_log(&console).matches("host-trail-fork").count(),
        1,
        "raised once while the store refuses its state: {}",
        server.stderr()
    );
    sqlite("DROP TRIGGER refuse_state;");
    wait_host(&console, "ct-readonly", |h| {
        h["state"].as_str().is_some_and(|s| s.starts_with("fork"))
    });
    forked.twin_guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("host-trail-fork").count(), 1, "{log}");
}

/// Sends `signal` to a running `serve` (SIGSTOP: the host hung, or cut off; SIGCONT:
/// back).
fn signal(serve: &Serve, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(serve.child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("signal");
}

/// Turns the host's scrub off: a guard that then writes no record of its own accord
/// once started. A scrub cycle's end is a record ("scrub cycle complete"), written
/// whenever the cycle ends: under load after a test had counted the records delivered,
/// and delivered after them as new.
fn without_scrub(host: &Env) {
    let config = host.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[watch]\nscrub_mb_per_s = 0\n");
    std::fs::write(&config, text).expect("config");
}

/// Waits until the console holds every record of the host's trail (a fixed 4 s for a
/// start's records to arrive was a guess a loaded machine could outlast), and returns
/// that count.
fn whole_trail_held(console: &Env, name: &str, host: &Env) -> serde_json::Value {
    wait_host(console, name, |h| {
        h["records"].as_u64() == Some(trail_size(&host.home))
    })["records"]
        .clone()
}

/// The lines of the home's trail past the first `records` (a count as the console shows it).
fn trail_after(home: &std::path::Path, records: &serde_json::Value) -> String {
    let trail = std::fs::read_to_string(home.join("audit.log")).expect("the home's trail");
    let skip = records
        .as_u64()
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    trail.lines().skip(skip).collect::<Vec<_>>().join("\n")
}

/// Issue 14 (review r28-fleet): a host hung (SIGSTOP) past its interval is raised silent;
/// back (SIGCONT) with nothing new to deliver, its reports are verified heartbeats.
/// Before, only stored records ended a silence: the host stayed `silent` on the console
/// while it reported, and when it hung again nothing was raised (it was silent already).
/// Now a verified heartbeat ends the silence, which is recorded (`host-silence-ended`),
/// and the next silence is raised again.
#[test]
fn a_host_back_with_only_heartbeats_is_no_longer_silent_and_its_next_silence_is_raised() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "ws-hb-1");
    // Under load a scrub cycle (27 s, the hang included) ended after SIGCONT.
    without_scrub(&host);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-hb-1", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    whole_trail_held(&console, "ws-hb-1", &host);
    signal(&guard, nix::sys::signal::Signal::SIGSTOP);
    let silent = wait_host(&console, "ws-hb-1", |h| h["state"] == "silent");
    // Counted once the host is stopped: what it wrote before it hung, delivered or not.
    // Counted before the hang, a record the guard wrote between the console holding its
    // trail and SIGSTOP (under load: 10 records for 9) was taken for one made up after.
    let delivered = serde_json::Value::from(trail_size(&host.home));
    signal(&guard, nix::sys::signal::Signal::SIGCONT);
    let back = wait_host(&console, "ws-hb-1", |h| {
        h["last_contact"] != silent["last_contact"]
    });
    assert_eq!(
        back["records"],
        delivered,
        "a heartbeat, nothing new: {back}\n{}",
        trail_after(&host.home, &delivered)
    );
    let back = wait_host(&console, "ws-hb-1", |h| h["state"] == "ok");
    assert_eq!(back["records"], delivered, "{back}");
    signal(&guard, nix::sys::signal::Signal::SIGSTOP);
    wait_host(&console, "ws-hb-1", |h| h["state"] == "silent");
    signal(&guard, nix::sys::signal::Signal::SIGCONT);
    wait_host(&console, "ws-hb-1", |h| h["state"] == "ok");
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 2, "{log}");
    assert_eq!(
        log.matches("\"kind\":\"host-silence-ended\"").count(),
        2,
        "{log}"
    );
}

/// Issue 14 (review r28-fleet): a host enrolled whose guard never delivers a verified
/// report (never started, or every report refused) is watched for silence from its
/// enrolment. Before, a host with no verified report had no interval and was never
/// raised silent.
#[test]
fn a_host_that_never_reports_after_enrolment_is_raised_silent() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let enrolled = Instant::now();
    let _host = enrolled_host(&console, &server, "mr-never");
    let silent = wait_host_within(&console, "mr-never", Duration::from_secs(150), |h| {
        h["state"] == "silent"
    });
    assert!(
        enrolled.elapsed() >= Duration::from_secs(60),
        "raised before its first report was due: {silent}"
    );
    assert!(
        silent["detail"]
            .as_str()
            .is_some_and(|d| d.contains("since its enrolment")),
        "{silent}"
    );
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 1, "{log}");
}

/// Issue 14 (review r28-fleet): `console revoke-host` with no `serve` running wrote only
/// `revoked` in the fleet's store: `console hosts` showed "revoked", and the next
/// `serve` recorded the revocation as by "not known here", who and why lost though the
/// command had both. Now the store keeps them beside the revocation: shown where
/// revocations are listed, and named (as the store's word) on the trail's record.
#[test]
fn a_host_revoked_with_no_serve_running_keeps_who_and_why() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "ws-61");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-61", |h| h["records"].as_u64() > Some(0));
    guard.stop();
    server.stop();
    let reason = "retired after the ward moved, ticket 5120";
    let out = pacsguard()
        .env("SUDO_USER", "dr-okafor")
        .arg("--home")
        .arg(&console.home)
        .args(["console", "revoke-host", "ws-61", "--reason", reason])
        .output()
        .expect("pacsguard runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = wait_host(&console, "ws-61", |_| true);
    assert_eq!(listed["revoked"], true, "{listed}");
    assert!(
        listed["revoked_by"]
            .as_str()
            .is_some_and(|by| by.ends_with("(sudo by dr-okafor)")),
        "{listed}"
    );
    assert_eq!(listed["revoked_reason"], reason, "{listed}");
    let text = console.run(&["console", "hosts"]);
    assert!(
        stdout(&text).contains(&format!("(sudo by dr-okafor), reason: {reason}")),
        "{}",
        stdout(&text)
    );
    // The next serve records the revocation on the console's trail, naming them.
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !console_log(&console).contains("\"host_revoked\":\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
    let trail = console_log(&console);
    let recorded = trail
        .lines()
        .find(|l| l.contains("\"host_revoked\":\""))
        .unwrap_or_else(|| panic!("not on the trail: {trail}"));
    assert!(
        recorded.contains("(sudo by dr-okafor)")
            && recorded.contains("as the fleet's store says")
            && recorded.contains("ticket 5120"),
        "{recorded}"
    );
}

/// Issue 14 (review r28-fleet): the console stopped for longer than a host's interval and
/// the grace while the host guards on (an upgrade, a reboot of the console's machine).
/// While the console is down no host can report, as while its store is unreachable; its
/// first silence check after the start found every host's last contact old and raised
/// each of them `host-silent` before any could report again. A host's silence is counted
/// from the listener's start at the earliest.
#[test]
fn a_console_stopped_longer_than_a_hosts_interval_does_not_raise_it_silent_at_its_start() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let listen = server
        .after("listening for hosts at tls://")
        .split_whitespace()
        .next()
        .expect("address")
        .to_string();
    let host = enrolled_host(&console, &server, "ws-restart");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-restart", |h| {
        h["records"].as_u64() > Some(0) && h["state"] == "ok"
    });
    server.stop();
    // Past the host's promised interval (15 s) and the grace (10 s).
    std::thread::sleep(Duration::from_secs(30));
    let server = Serve::start(&console, &["--fleet-listen", &listen]);
    let heard = wait_host(&console, "ws-restart", |_| true)["last_contact"].clone();
    wait_host(&console, "ws-restart", |h| h["last_contact"] != heard);
    std::thread::sleep(Duration::from_secs(3));
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 0, "{log}");
}

/// The address hosts report to on the console `server` (`127.0.0.1:PORT` with `tls://`).
fn fleet_url(server: &Serve) -> String {
    server
        .after("listening for hosts at ")
        .split_whitespace()
        .next()
        .expect("url")
        .to_string()
}

/// Issue 14 (review r29-fleet): root on a host keeps its enrolment key, stops its guard
/// and wipes its trail, then sends a report with no records and no checkpoint every 2 s
/// (Python's ssl module): it proves only the client certificate. Before, each one
/// verified (nothing to check) and counted as contact: the host's last contact moved at
/// each one, it stayed `ok` and was never raised silent, and a silent host was
/// `ok` again at the first one (`host-silence-ended`). Now only records or a checkpoint
/// consistent with the one held are contact: the host is raised silent within its
/// interval (15 s) and the grace, and stays so.
#[test]
fn reports_with_neither_records_nor_a_checkpoint_do_not_keep_a_host_alive() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = fleet_url(&server);
    let host = enrolled_host(&console, &server, "ws-wiped");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-wiped", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    guard.stop();
    let stopped = Instant::now();
    let key = std::fs::read_to_string(host.home.join("trail.pub")).expect("public key");
    for file in ["audit.log", "checkpoints.jsonl"] {
        let _ = std::fs::remove_file(host.home.join(file));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let contact = wait_host(&console, "ws-wiped", |_| true)["last_contact"].clone();
    let fleet = host.home.join("fleet");
    let silent = loop {
        let said = report_as(&url, &fleet, &key, 0);
        assert!(said.contains("witnessed"), "{said}");
        let now = wait_host(&console, "ws-wiped", |_| true);
        assert_eq!(
            now["last_contact"], contact,
            "an empty report is no contact: {now}"
        );
        if now["state"] == "silent" {
            break now;
        }
        assert!(
            stopped.elapsed()
                < Duration::from_secs(15) + pacsguard_fleet::console::SILENCE_GRACE * 3,
            "kept alive by empty reports: {now}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    // Silent, more of them end nothing.
    for _ in 0..3 {
        report_as(&url, &fleet, &key, 0);
    }
    let after = wait_host(&console, "ws-wiped", |_| true);
    assert_eq!(after["state"], "silent", "{silent} then {after}");
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 1, "{log}");
    assert_eq!(
        log.matches("\"kind\":\"host-silence-ended\"").count(),
        0,
        "{log}"
    );
}

/// Appends `lines` to the `[console]` table of the home's config.
fn set_console(env: &Env, lines: &str) {
    let config = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[console]\n{lines}\n"));
    std::fs::write(&config, text).expect("config");
}

/// Issue 14 (review r29-fleet): how long after its enrolment a host's first report is
/// due was the constant FIRST_REPORT_WITHIN (60 s): a staged rollout, enrolling hosts
/// before starting their guards, got `host-silent` then `host-silence-ended` per host.
/// Now `[console] first_report_within_seconds` sets it: 2 s raises a host never started
/// after 2 s and the grace (not 60 s); 0, over its limit, or not a number is refused
/// at `serve`'s start, exit 2, naming the field.
#[test]
fn first_report_within_seconds_is_a_console_setting() {
    for bad in ["0", "2592001", "\"a minute\""] {
        let console = Env::new();
        console.profile(&[]);
        set_console(&console, &format!("first_report_within_seconds = {bad}"));
        let out = console.run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--fleet-listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("first_report_within_seconds"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    let console = Env::new();
    console.profile(&[]);
    set_console(&console, "first_report_within_seconds = 2");
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let enrolled = Instant::now();
    let _host = enrolled_host(&console, &server, "mr-staged");
    let silent = wait_host_within(&console, "mr-staged", Duration::from_secs(45), |h| {
        h["state"] == "silent"
    });
    assert!(
        silent["detail"]
            .as_str()
            .is_some_and(|d| d.contains("its first was due within 2 s")),
        "{silent}"
    );
    assert!(enrolled.elapsed() >= Duration::from_secs(2), "{silent}");
    server.stop();
}

/// Issue 14 (review r29-fleet): MAX_STATE_TRIES had no test. Another writer wins every
/// compare and set of a host's state (a trigger in the console's real SQLite store
/// ignores each write of `fork`, as a flood of the host's reports moving it first
/// would), and a forked report of the host arrives (records from 0 again). The console
/// gives up after MAX_STATE_TRIES and says so on its log; before, the refusal's alert
/// was dropped with the state (`host-trail-fork` never raised: the fork went unseen).
/// Now it is raised all the same, once for the same fork reported again.
#[test]
fn a_refusal_whose_state_cannot_be_written_is_raised_and_the_give_up_said() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = fleet_url(&server);
    let host = enrolled_host(&console, &server, "ct-tries");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ct-tries", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    guard.stop();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             db=sqlite3.connect(sys.argv[1],timeout=30)\n\
             db.execute(\"CREATE TRIGGER always_moved BEFORE UPDATE OF state ON fleet_hosts WHEN NEW.state = 'fork' BEGIN SELECT RAISE(IGNORE); END\")\n\
             db.commit()\n",
        )
        .arg(console.home.join("pacsguard.db"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = std::fs::read_to_string(host.home.join("trail.pub")).expect("public key");
    // Three forked reports, each giving up (review r29-fleet2: each wrote its line).
    let given_up = "was moved by other requests 16 times (MAX_STATE_TRIES)";
    for _ in 0..3 {
        let said = report_as(&url, &host.home.join("fleet"), &key, 2);
        assert!(said.contains("rewound"), "{said}");
    }
    assert!(
        server.wait_for(given_up, Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // The two after the first are counted, said in one line once the window passed;
    // a third report slower than the window starts another (flake audit of session
    // 41): the lines' total is what holds, whatever the machine's pace. Whole numbers:
    // "12 more changes" once passed for "2 more changes", and session 40's grader saw
    // 11 (the silence check's retries of the waiting fork were counted).
    let every = pacsguard_fleet::console::STATE_GIVE_UP_SAID_EVERY;
    let deadline = std::time::Instant::now() + every * 3 + Duration::from_secs(10);
    while given_ups_said(&server.stderr(), given_up) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another window, to see that nothing else is counted once the reports stopped.
    std::thread::sleep(every + Duration::from_secs(3));
    let said = server.stderr();
    assert_eq!(given_ups_said(&said, given_up), 3, "{said}");
    assert!(
        !said.contains(" more changes of hosts'") || said.contains("of hosts ct-tries"),
        "{said}"
    );
    // The silence check tries the waiting fork again each second: said once, as a write
    // still waiting, not as one more request given up at each try.
    let retried = "is still not written (its state was found moved at each of 16 tries";
    assert_eq!(said.matches(retried).count(), 1, "{said}");
    server.stop();
    // The refusal's alert raised, its state never written (review r29-fleet): once for
    // the three reports of the same fork, not at each (session 33: kept as raised and
    // not written until the store takes it).
    let log = console_log(&console);
    assert_eq!(
        log.matches("\"kind\":\"host-trail-fork\"").count(),
        1,
        "{log}"
    );
}

/// The changes of hosts' states given up that the console's log says: one per line
/// said (`given_up`), plus each "N more changes ... given up" count, read as a whole
/// number.
fn given_ups_said(said: &str, given_up: &str) -> u64 {
    let counted = " more changes of hosts' states given up after MAX_STATE_TRIES";
    let counts: u64 = said
        .match_indices(counted)
        .map(|(at, _)| {
            let before = &said[..at];
            let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            before[before.len() - digits..].parse::<u64>().unwrap_or(0)
        })
        .sum();
    said.matches(given_up).count() as u64 + counts
}

/// Issue 14 (review r29-fleet): a host revoked while its report is judged. The report
/// passed the revocation check at its connection's start; before its batch was stored,
/// an administrator ran `console revoke-host`. Before, the batch was stored and
/// cosigned all the same (the store's writes of a host's trail and state never looked
/// at `revoked`): the console held records and gave a cosignature under a key it had
/// revoked. Now every write of a host's trail, contact and state is made only while it
/// is not revoked: nothing of the report is stored, the host is told it was revoked.
#[test]
fn a_report_racing_its_hosts_revocation_is_not_stored_nor_cosigned() {
    report_racing_its_hosts_revocation(None);
}

/// As [`a_report_racing_its_hosts_revocation_is_not_stored_nor_cosigned`], the
/// console's fleet on a real PostgreSQL server.
#[test]
fn on_postgresql_a_report_racing_its_hosts_revocation_is_not_stored() {
    let pg = pacsguard_testkit::postgres::PgServer::start();
    report_racing_its_hosts_revocation(Some(&pg));
}

fn report_racing_its_hosts_revocation(pg: Option<&pacsguard_testkit::postgres::PgServer>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").expect("hold file");
    let (console, server) = console_holding("store", &hold, pg);
    let host = enrolled_host(&console, &server, "ct-revoked-1");
    let guard = Serve::start(&host, &[]);
    assert!(
        server.wait_for(
            "holding the store of host ct-revoked-1",
            Duration::from_secs(60)
        ),
        "{}",
        server.stderr()
    );
    let out = console.run(&[
        "console",
        "revoke-host",
        "ct-revoked-1",
        "--reason",
        "stolen",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_file(&hold).expect("release");
    assert!(
        server.wait_for(
            "the store of host ct-revoked-1 goes on",
            Duration::from_secs(30)
        ),
        "{}",
        server.stderr()
    );
    assert!(
        guard.wait_for("revoked", Duration::from_secs(30)),
        "{}",
        guard.stderr()
    );
    let listed = wait_host(&console, "ct-revoked-1", |_| true);
    assert_eq!(listed["revoked"], true, "{listed}");
    assert_eq!(
        listed["records"], 0,
        "stored after its revocation: {listed}"
    );
    if pg.is_none() {
        assert!(
            stored_records(&console, "ct-revoked-1").is_empty(),
            "{listed}"
        );
    }
    assert!(
        !host.home.join("fleet/cosignatures.jsonl").exists()
            || std::fs::read_to_string(host.home.join("fleet/cosignatures.jsonl"))
                .expect("cosignatures")
                .trim()
                .is_empty(),
        "cosigned after its revocation"
    );
    guard.stop();
    server.stop();
}

/// Issue 14 (review r29-fleet): a forked report under a running host's certificate
/// (records from 0 again, sent by root with the host's key) sets the host `fork`; the
/// host, idle, goes on with heartbeats carrying the checkpoint the console holds. Before,
/// such a heartbeat was stored as a batch of no records and ended the refused state:
/// `ok` again within one heartbeat, though it delivered nothing that could mend a fork
/// (SECURITY.md: a heartbeat ends only the silence). Now only records delivered end it.
#[test]
fn a_heartbeat_does_not_end_a_fork_raised_beside_it() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = fleet_url(&server);
    let host = enrolled_host(&console, &server, "ct-hb-fork");
    without_scrub(&host);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ct-hb-fork", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    // Its start's records all delivered: from now on, heartbeats.
    let delivered = whole_trail_held(&console, "ct-hb-fork", &host);
    let key = std::fs::read_to_string(host.home.join("trail.pub")).expect("public key");
    let said = report_as(&url, &host.home.join("fleet"), &key, 2);
    assert!(said.contains("refused"), "{said}");
    let forked = wait_host(&console, "ct-hb-fork", |h| h["state"] != "ok");
    let heard = forked["last_contact"].clone();
    // Heartbeats of the host verify (its contact moves) and deliver nothing.
    let after = wait_host(&console, "ct-hb-fork", |h| {
        h["last_contact"].as_i64() > heard.as_i64().map(|t| t + 2)
    });
    assert_eq!(
        after["records"],
        delivered,
        "{after}\n{}",
        trail_after(&host.home, &delivered)
    );
    assert_eq!(after["state"], forked["state"], "{forked} then {after}");
    // Review r29-fleet2: the host's own records did end it (`ok` again), so each fork
    // sent after flapped the state back and was news again. A fork stands until an
    // administrator acts: records keep it, later forks are counted on it, raised once.
    std::fs::write(
        host.path("after-the-fork.txt"),
        b"new
",
    )
    .expect("write");
    let moved = wait_host(&console, "ct-hb-fork", |h| {
        h["records"].as_u64() > delivered.as_u64()
    });
    assert_eq!(moved["state"], forked["state"], "{forked} then {moved}");
    for _ in 0..3 {
        let said = report_as(&url, &host.home.join("fleet"), &key, 2);
        assert!(said.contains("refused"), "{said}");
    }
    let delivered = moved["records"].clone();
    std::fs::write(
        host.path("after-the-forks.txt"),
        b"new
",
    )
    .expect("write");
    let last = wait_host(&console, "ct-hb-fork", |h| {
        h["records"].as_u64() > delivered.as_u64()
    });
    // The later forks, after a batch of the host was taken, are a copy of its home
    // beside it (`duplicated`, raised once); the one after is counted on it.
    assert!(
        last["state"] == "fork" || last["state"] == "duplicated",
        "{last}"
    );
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("refused again")),
        "{last}"
    );
    guard.stop();
    server.stop();
    let log = console_log(&console);
    assert_eq!(
        log.matches("\"kind\":\"host-trail-fork\"").count(),
        1,
        "{log}"
    );
    assert!(
        log.matches("\"kind\":\"host-identity-duplicated\"").count() <= 1,
        "{log}"
    );
}

/// Sends, under the host's certificate (Python's ssl module), a heartbeat naming
/// `checkpoint` (a signed note) at `size` records; returns the console's answer.
fn heartbeat_as(
    url: &str,
    fleet: &std::path::Path,
    key: &str,
    size: u64,
    checkpoint: &str,
) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json,socket,ssl,struct,sys\n\
             addr,fleet,key,n,note=sys.argv[1:6]\n\
             host,port=addr.rsplit(':',1)\n\
             ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
             ctx.check_hostname=False\n\
             ctx.verify_mode=ssl.CERT_NONE\n\
             ctx.load_cert_chain(fleet+'/cert.pem',fleet+'/key.pem')\n\
             s=ctx.wrap_socket(socket.create_connection((host,int(port)),timeout=20))\n\
             body=json.dumps({'type':'report','trail_key':key.strip(),'interval':15,'first':int(n),'records':[],'checkpoint':note}).encode()\n\
             s.sendall(struct.pack('>I',len(body))+body)\n\
             head=s.recv(4)\n\
             (m,)=struct.unpack('>I',head)\n\
             got=b''\n\
             while len(got)<m: got+=s.recv(m-len(got))\n\
             print(got.decode())\n",
        )
        .arg(url.strip_prefix("tls://").expect("tls url"))
        .arg(fleet)
        .arg(key)
        .arg(size.to_string())
        .arg(checkpoint)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// The checkpoint of exactly `size` records in the host's `checkpoints.jsonl`.
fn checkpoint_of_size(home: &std::path::Path, size: u64) -> String {
    let text = std::fs::read_to_string(home.join("checkpoints.jsonl")).expect("checkpoints");
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v["note"].as_str().map(String::from))
        .find(|note| note.lines().nth(1) == Some(size.to_string().as_str()))
        .unwrap_or_else(|| panic!("no checkpoint of {size} records: {text}"))
}

/// Issue 14 (review r29-fleet2): root on a host (its trail heartbeat every 3 s) kills
/// its guard, keeps the newest checkpoint the console holds and the enrolment key,
/// wipes the trail, and replays that checkpoint as a heartbeat every 2 s. A checkpoint
/// carries no time: before, each replay was "consistent with the one held", so the
/// host's contact moved at each and it stayed `ok` for as long as the replays went on.
/// Now a heartbeat is contact only while the host's trail grew (new records under a
/// new checkpoint) within what its trail promised (twice its heartbeat interval): past
/// that, only new signed records are, which a wiped trail cannot give (the console's
/// frontier is not in any checkpoint). The host is raised silent, once.
#[test]
fn a_checkpoint_replayed_as_a_heartbeat_does_not_keep_a_wiped_host_alive() {
    checkpoint_replayed_as_a_heartbeat(false);
}

/// Issue 14 (review r30-fleet): as above, the console restarted right after the guard
/// was killed. When the host's trail last grew was kept in the console's memory: the
/// console started anew counted from its start with the default promise (300 s), so
/// the replays were contact again for 600 s after each restart and the host stayed
/// `ok`. It is kept in the fleet's store with the host now: the restarted console
/// judges the replays stale as the one before would have.
#[test]
fn a_checkpoint_replayed_across_a_console_restart_does_not_keep_a_wiped_host_alive() {
    checkpoint_replayed_as_a_heartbeat(true);
}

fn checkpoint_replayed_as_a_heartbeat(restart_console: bool) {
    let console = Env::new();
    console.profile(&[]);
    let mut server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let mut url = fleet_url(&server);
    let host = enrolled_host(&console, &server, "ws-replayed");
    let config = host.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[watch]\nheartbeat_seconds = 3\n");
    std::fs::write(&config, text).expect("config");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-replayed", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    // Killed, so its trail promised another heartbeat within 3 s.
    std::thread::sleep(Duration::from_secs(2));
    signal(&guard, nix::sys::signal::Signal::SIGKILL);
    let mut killed = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    if restart_console {
        server.stop();
        server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
        url = fleet_url(&server);
        // Its silence is counted from the console's start.
        killed = Instant::now();
    }
    let held = wait_host(&console, "ws-replayed", |_| true);
    let size = held["records"].as_u64().expect("records");
    let note = checkpoint_of_size(&host.home, size);
    let key = std::fs::read_to_string(host.home.join("trail.pub")).expect("public key");
    for file in ["audit.log", "checkpoints.jsonl"] {
        let _ = std::fs::remove_file(host.home.join(file));
    }
    let fleet = host.home.join("fleet");
    let silent = loop {
        let said = heartbeat_as(&url, &fleet, &key, size, &note);
        assert!(said.contains("witnessed"), "{said}");
        let now = wait_host(&console, "ws-replayed", |_| true);
        if now["state"] == "silent" {
            break now;
        }
        assert!(
            killed.elapsed()
                < Duration::from_secs(2 * 3 + 15) + pacsguard_fleet::console::SILENCE_GRACE * 2,
            "kept alive by a replayed checkpoint: {now}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    for _ in 0..2 {
        heartbeat_as(&url, &fleet, &key, size, &note);
    }
    let after = wait_host(&console, "ws-replayed", |_| true);
    assert_eq!(after["state"], "silent", "{silent} then {after}");
    assert_eq!(after["records"], size, "{after}");
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 1, "{log}");
    assert_eq!(
        log.matches("\"kind\":\"host-silence-ended\"").count(),
        0,
        "{log}"
    );
    drop(guard);
}

/// Issue 14 (review r30-fleet): root on a host keeps its enrolment key, stops its guard
/// and wipes its trail, then every 2 s sends two made-up records numbered from the size
/// the console holds, with no checkpoint (Python's ssl module): records with the next
/// sequence numbers verify until a checkpoint comes to sign them, and the trail key is
/// needed for none of it. Before, each batch was stored and counted as contact: the
/// host's last contact moved at each, it stayed `ok` and was never raised silent. Now
/// only a signature by the trail key over something new is contact: the records are
/// kept (a checkpoint of the host's must sign them), the host is raised silent within
/// its interval (15 s) and the grace, once, and stays so.
#[test]
fn unsigned_records_do_not_keep_a_wiped_host_alive() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let url = fleet_url(&server);
    let host = enrolled_host(&console, &server, "ws-unsigned");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "ws-unsigned", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    guard.stop();
    let stopped = Instant::now();
    // Its stop's last records and checkpoint delivered.
    std::thread::sleep(Duration::from_millis(1500));
    let key = std::fs::read_to_string(host.home.join("trail.pub")).expect("public key");
    for file in ["audit.log", "checkpoints.jsonl"] {
        let _ = std::fs::remove_file(host.home.join(file));
    }
    let held = wait_host(&console, "ws-unsigned", |_| true);
    let contact = held["last_contact"].clone();
    let fleet = host.home.join("fleet");
    let silent = loop {
        let size = wait_host(&console, "ws-unsigned", |_| true)["records"]
            .as_u64()
            .expect("records");
        let said = report_from(&url, &fleet, &key, size, 2);
        assert!(said.contains("witnessed"), "{said}");
        let now = wait_host(&console, "ws-unsigned", |_| true);
        assert_eq!(
            now["records"].as_u64(),
            Some(size + 2),
            "kept, for a checkpoint to sign: {now}"
        );
        assert_eq!(
            now["last_contact"], contact,
            "unsigned records are no contact: {now}"
        );
        if now["state"] == "silent" {
            break now;
        }
        assert!(
            stopped.elapsed()
                < Duration::from_secs(15) + pacsguard_fleet::console::SILENCE_GRACE * 3,
            "kept alive by unsigned records: {now}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    for _ in 0..2 {
        let size = wait_host(&console, "ws-unsigned", |_| true)["records"]
            .as_u64()
            .expect("records");
        report_from(&url, &fleet, &key, size, 2);
    }
    let after = wait_host(&console, "ws-unsigned", |_| true);
    assert_eq!(after["state"], "silent", "{silent} then {after}");
    server.stop();
    let log = console_log(&console);
    assert_eq!(log.matches("\"kind\":\"host-silent\"").count(), 1, "{log}");
    assert_eq!(
        log.matches("\"kind\":\"host-silence-ended\"").count(),
        0,
        "{log}"
    );
}

/// Issue 14 (review r30-fleet): a host reporting to a console with `[watch]
/// heartbeat_seconds = 7201`. The console takes a heartbeat naming the checkpoint it
/// holds as contact only while the trail grew within `TRAIL_HEARTBEAT_SLACK` times the
/// promise, the promise held to `MAX_TRAIL_HEARTBEAT` (3600 s): a quiet host writing a
/// heartbeat record every 7201 s was taken for silent between two of them (its records
/// said 7201, its trail did not grow for 7200 s). Now its guard writes one every
/// `MAX_TRAIL_HEARTBEAT` seconds, its records say so, and `serve` says why on stderr.
#[test]
fn a_host_promising_heartbeats_further_apart_than_a_console_takes_is_held_to_its_bound() {
    use pacsguard_fleet::freshness::MAX_TRAIL_HEARTBEAT;
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "mr-slow-beat");
    let config = host.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[watch]\nheartbeat_seconds = {}\n",
        MAX_TRAIL_HEARTBEAT * 2 + 1
    ));
    std::fs::write(&config, text).expect("config");
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "mr-slow-beat", |h| {
        h["records"].as_u64() > Some(3) && h["state"] == "ok"
    });
    // The start's heartbeat record, as the console stored it.
    let began = Instant::now();
    let promised = loop {
        let promised: Vec<u64> = stored_records(&console, "mr-slow-beat")
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|record| record["heartbeat_seconds"].as_u64())
            .collect();
        if !promised.is_empty() || began.elapsed() > Duration::from_secs(60) {
            break promised;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(promised, vec![MAX_TRAIL_HEARTBEAT], "{promised:?}");
    let said = guard.stderr();
    assert!(
        said.contains(&format!(
            "heartbeat_seconds {} is longer than a console takes",
            MAX_TRAIL_HEARTBEAT * 2 + 1
        )),
        "{said}"
    );
    guard.stop();
    server.stop();
}

/// The host's console cursor: how many of its records it delivered (`fleet/`'s cursor
/// file is the delivery's; read as the console took them instead, from its hosts list).
fn delivered(console: &Env, name: &str) -> u64 {
    wait_host(console, name, |h| h["witnessed"] == h["records"])["records"]
        .as_u64()
        .expect("records")
}

/// Issue 14 (session 31): a fork stood for good, and every later fork of the host was
/// counted on the first one's detail, never raised: a second restore, a second copy,
/// hid behind the first. Root restores the host's home from a backup (a fork where the
/// backup was taken); an administrator who investigated acknowledges it
/// (`console acknowledge-host`, recorded on the console's trail); the same fork reported
/// again stays acknowledged; a restore from another backup (a fork at another point) is
/// raised again and no longer shown acknowledged. An acknowledgement written into the
/// store with sqlite3 is raised (`host-acknowledgement-unproven`); without a running
/// `serve` the command is refused.
#[test]
fn an_acknowledged_fork_stays_so_and_a_fork_at_another_point_is_raised() {
    let name = "ws-ack";
    // A restored host's reports are refused (forks), so none is contact: from its stop
    // before a restore until an acknowledgement takes its branch, the console rightly
    // finds it silent once its promised interval and the grace (25 s) have passed. On a
    // loaded machine the restore, the acknowledgement and the browser took longer than
    // that, and `fork, silent` came where `fork` was asserted (the flake of sessions 34
    // and 35). The silence is not what this test is about, and waiting less cannot be
    // promised: the console's silence check is held (debug hook) for the whole test, so
    // each state asserted is the one the refusals and acknowledgements made.
    let hold = tempfile::tempdir().expect("tempdir");
    let silence_held = hold.path().join("silence");
    std::fs::write(&silence_held, b"").expect("hold file");
    let (console, server) = console_holding("silence", &silence_held, None);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(1) && h["state"] == "ok"
    });
    guard.stop();
    let monday = copy_of_home(&host);
    let at_monday = delivered(&console, name);
    let guard = Serve::start(&host, &[]);
    std::fs::write(host.path("study/new.dcm"), b"arrived").expect("write");
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(at_monday + 2)
    });
    guard.stop();
    let tuesday = copy_of_home(&host);
    let at_tuesday = delivered(&console, name);
    let guard = Serve::start(&host, &[]);
    std::fs::write(host.path("study/other.dcm"), b"arrived too").expect("write");
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(at_tuesday + 2)
    });
    guard.stop();

    // Restored from Monday's backup: a fork from where it was taken.
    put_back(&host.home, monday.path());
    let guard = Serve::start(&host, &[]);
    // Its records sent again from the size the backup was taken at: the words that name
    // the branch, which a standing fork takes over its heartbeat's before anyone
    // acknowledges it (session 32), so the digest read here is the one that stays.
    let at = |size: u64| {
        move |h: &serde_json::Value| {
            h["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(&format!("records from {size} again")))
        }
    };
    let forked = wait_host(&console, name, |h| h["state"] == "fork" && at(at_monday)(h));
    assert!(forked["acknowledged"].is_null(), "{forked}");
    // The administrator acknowledges the refusal `console hosts` showed them, by its
    // digest (session 32).
    let monday = forked["refusal_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no refusal digest: {forked}"))
        .to_string();
    let reason = "restored from Monday's backup after the disk failed, ticket 4711";
    let acknowledge = |digest: &str| {
        console.run(&[
            "console",
            "acknowledge-host",
            name,
            "--digest",
            digest,
            "--reason",
            reason,
        ])
    };
    let out = acknowledge(&monday);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acknowledged the standing refusal"),
        "{}",
        stdout(&out)
    );
    // The acknowledgement is queued for the console's trail when the command answers,
    // written by `serve`'s next drain: waited for, not read at once (under load the
    // read came first, "not on the trail").
    let acknowledged = |l: &str| l.contains("\"host_acknowledged\":\"");
    common::process::poll(Duration::from_secs(60), || {
        console_log(&console).lines().any(acknowledged)
    });
    let trail = console_log(&console);
    let recorded = trail
        .lines()
        .find(|l| acknowledged(l))
        .unwrap_or_else(|| panic!("not on the trail: {trail}"));
    assert!(
        recorded.contains("host-acknowledged") && recorded.contains(reason),
        "{recorded}"
    );
    // The same fork again (the restored host keeps reporting): counted, acknowledged.
    let counted = wait_host(&console, name, |h| {
        h["detail"]
            .as_str()
            .is_some_and(|d| d.contains("refused again"))
    });
    assert_eq!(counted["state"], "fork", "{counted}");
    assert_eq!(counted["acknowledged"]["reason"], reason, "{counted}");
    let forks = |console: &Env| console_log(console).matches("\"host-trail-fork\"").count();
    assert_eq!(forks(&console), 1, "{}", console_log(&console));
    guard.stop();

    // Restored again, from Tuesday's backup: another point, raised.
    put_back(&host.home, tuesday.path());
    let guard = Serve::start(&host, &[]);
    let again = wait_host(&console, name, at(at_tuesday));
    assert_eq!(again["state"], "fork", "{again}");
    assert!(again["acknowledged"].is_null(), "{again}");
    assert_eq!(forks(&console), 2, "{}", console_log(&console));
    // Monday's digest, the refusal the administrator investigated, no longer stands:
    // refused, nothing recorded (session 32: the refusal standing was acknowledged).
    assert_ne!(
        again["refusal_digest"].as_str(),
        Some(monday.as_str()),
        "{again}"
    );
    let out = acknowledge(&monday);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("changed since it was shown"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        console_log(&console)
            .matches("\"host_acknowledged\":\"")
            .count(),
        1,
        "{}",
        console_log(&console)
    );
    assert!(wait_host(&console, name, |_| true)["acknowledged"].is_null());

    // Root writes an acknowledgement of the new fork into the store with sqlite3.
    let forged = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib,sqlite3,sys\n\
             db=sqlite3.connect(sys.argv[1],timeout=30)\n\
             (state,detail)=db.execute('SELECT state,detail FROM fleet_hosts WHERE name=?',(sys.argv[2],)).fetchone()\n\
             words=detail.split(' [refused again ')[0]\n\
             digest=hashlib.sha256((state+'\\n'+words).encode()).hexdigest()\n\
             db.execute(\"UPDATE fleet_hosts SET ack_by='intruder',ack_reason='nothing to see',ack_at=1,ack_digest=? WHERE name=?\",(digest,sys.argv[2]))\n\
             db.commit()",
        )
        .arg(console.home.join("pacsguard.db"))
        .arg(name)
        .output()
        .expect("python3 runs");
    assert!(forged.status.success(), "{}", stderr(&forged));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !console_log(&console).contains("host-acknowledgement-unproven") {
        assert!(Instant::now() < deadline, "{}", console_log(&console));
        std::thread::sleep(Duration::from_millis(200));
    }
    // The administrator investigates Tuesday's fork and acknowledges it on the Hosts
    // page over HTTPS (session 32): the refusal's digest shown, a step-up, a reason.
    let web = Web::of(&server, &console);
    let secret = web.first_admin(&server);
    let (_, body) = web.curl("GET", "/hosts", &[]);
    let tuesday = value_of(&body, "<code class=\"refusal-digest\">", '<');
    assert_eq!(
        again["refusal_digest"].as_str(),
        Some(tuesday.as_str()),
        "{body}"
    );
    let csrf = value_of(&body, "name=\"csrf\" value=\"", '"');
    let (status, _) = web.curl(
        "POST",
        "/step-up",
        &[("csrf", &csrf), ("code", &code(&secret, 1))],
    );
    assert_eq!(status, 303);
    // In Chromium, on the session curl stepped up (issue 13: the console in a real
    // browser; screenshots in target/tmp/browser-screenshots-hosts/).
    let on_page = "restored from Tuesday's backup, the intruder's row replaced";
    acknowledge_in_a_browser(&web, name, [&tuesday, &monday], on_page);
    let shown = wait_host(&console, name, |h| h["acknowledged"]["reason"] == on_page);
    assert_eq!(shown["state"], "fork", "{shown}");
    guard.stop();
    // A silence check held at the stop would hold the stop (up to `MAX_HOLD`).
    std::fs::remove_file(&silence_held).expect("release the silence check");
    server.stop();
    // No serve: refused, nothing written.
    let out = acknowledge(&monday);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("serve is not running"),
        "{}",
        stderr(&out)
    );
}

/// Runs `tests/browser/acknowledge_host.cjs` in Chromium on the administrator's
/// session `web` holds: the refusal `standing` shown, a form naming `stale` answered 409,
/// then the refusal standing acknowledged for `reason`.
fn acknowledge_in_a_browser(web: &Web, host: &str, [standing, stale]: [&str; 2], reason: &str) {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node_modules = workspace.join(".testdata/node/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and playwright-core: run scripts/setup-test-deps.sh"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots-hosts");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    // curl's cookie jar (Netscape format; an HttpOnly cookie's line starts `#HttpOnly_`).
    let jar = std::fs::read_to_string(&web.jar).expect("cookie jar");
    let cookie = jar
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 7 && f[5] == "__Host-pacsguard").then(|| f[6].to_string())
        })
        .unwrap_or_else(|| panic!("no session cookie in {jar}"));
    let out = std::process::Command::new("node")
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/acknowledge_host.cjs"),
        )
        .env("BASE", &web.base)
        .env("SHOTS", &shots)
        .env("COOKIE", cookie)
        .env("HOST", host)
        .env("STANDING", standing)
        .env("STALE", stale)
        .env("REASON", reason)
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}",
        stdout(&out),
        stderr(&out),
        shots.display()
    );
    assert!(shots.join("hosts-03-acknowledged.png").is_file());
}

/// `console acknowledge-host` for the refusal `shown` (a host as `console hosts --json`
/// showed it), by the digest it carried.
fn acknowledge_shown(
    console: &Env,
    name: &str,
    shown: &serde_json::Value,
    reason: &str,
) -> std::process::Output {
    let digest = shown["refusal_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no refusal digest: {shown}"));
    console.run(&[
        "console",
        "acknowledge-host",
        name,
        "--digest",
        digest,
        "--reason",
        reason,
    ])
}

/// Issue 14 (session 32): the point of a fork was the size of the host's trail alone,
/// so a second restore of the same backup (another branch from the same size: its
/// records written anew after it) was the fork an administrator had acknowledged,
/// counted and never raised; so was root rewriting the trail from that size. The first
/// record sent again names the branch (its leaf hash): a second restore is raised.
#[test]
fn a_second_restore_of_the_same_backup_after_an_acknowledged_one_is_raised() {
    let name = "ws-ack-restore";
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(1) && h["state"] == "ok"
    });
    guard.stop();
    let monday = copy_of_home(&host);
    let at_monday = delivered(&console, name);
    let guard = Serve::start(&host, &[]);
    std::fs::write(host.path("study/new.dcm"), b"arrived").expect("write");
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(at_monday + 2)
    });
    guard.stop();
    let forks = |console: &Env| console_log(console).matches("\"host-trail-fork\"").count();
    let records_again = format!("records from {at_monday} again");

    // Restored from Monday's backup; its records sent again from there.
    put_back(&host.home, monday.path());
    let guard = Serve::start(&host, &[]);
    let forked = wait_host(&console, name, |h| {
        h["state"] == "fork"
            && h["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&records_again))
    });
    assert!(forked["acknowledged"].is_null(), "{forked}");
    let reason = "restored from Monday's backup after the disk failed, ticket 4713";
    let out = acknowledge_shown(&console, name, &forked, reason);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_host(&console, name, |h| h["acknowledged"]["reason"] == reason);
    assert_eq!(forks(&console), 1, "{}", console_log(&console));
    guard.stop();

    // Restored again from the same backup: the same size, another branch.
    put_back(&host.home, monday.path());
    let guard = Serve::start(&host, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while forks(&console) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second restore was not raised: {:?}\n{}",
            hosts(&console),
            console_log(&console)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let again = wait_host(&console, name, |h| h["acknowledged"].is_null());
    assert_eq!(again["state"], "fork", "{again}");
    assert!(
        again["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&records_again)),
        "{again}"
    );
    guard.stop();
    server.stop();
}

/// A copy of `host`'s enrolment (`HOME/fleet/`, its key and certificate) in a home of
/// its own, profiled: another process under the host's certificate, with a trail key
/// of its own.
fn copy_of_enrolment(host: &Env) -> Env {
    let copy = Env::new();
    copy.profile(&[]);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host.home.join("fleet"))
        .arg(&copy.home)
        .status()
        .expect("cp");
    assert!(copied.success());
    copy
}

/// Issue 14 (session 32): after a team acknowledged a copy of a host's enrolment
/// running beside it, a second copy (another trail key) moved the host's detail and
/// took the acknowledgement out of effect, but nothing was raised: the duplication was
/// raised once per certificate, and the acknowledgement's promise (anything new is
/// raised again) was broken. Now the second copy is raised (`host-identity-duplicated`
/// again), named in the host's state, and the host no longer shown acknowledged.
#[test]
fn a_second_copy_after_an_acknowledged_one_is_raised() {
    let name = "ws-ack-dup";
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(0) && h["state"] == "ok"
    });
    let first = copy_of_enrolment(&host);
    let first_guard = Serve::start(&first, &[]);
    // Both report every 2 s, past the 15 s the console waits to tell them apart.
    let duplicated = wait_host_within(&console, name, Duration::from_secs(90), |h| {
        h["state"] == "duplicated"
    });
    let reason = "a clone of the VM left running by the vendor, destroyed, ticket 4712";
    let out = acknowledge_shown(&console, name, &duplicated, reason);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let acknowledged = wait_host(&console, name, |h| h["acknowledged"]["reason"] == reason);
    let duplications = |console: &Env| {
        console_log(console)
            .matches("\"host-identity-duplicated\"")
            .count()
    };
    assert_eq!(duplications(&console), 1, "{}", console_log(&console));
    first_guard.stop();

    // A second copy, another trail key: raised again.
    let second = copy_of_enrolment(&host);
    let second_guard = Serve::start(&second, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while duplications(&console) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second copy was not raised: {:?}\n{}",
            hosts(&console),
            console_log(&console)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = wait_host(&console, name, |h| h["acknowledged"].is_null());
    assert_eq!(now["state"], "duplicated", "{now}");
    let words = |h: &serde_json::Value| {
        h["detail"]
            .as_str()
            .unwrap_or("")
            .split(" [refused again ")
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_ne!(words(&now), words(&duplicated), "{now}");
    assert_ne!(words(&now), words(&acknowledged), "{now}");
    // The second copy reporting on is counted, not raised at each report.
    assert!(
        second_guard.wait_for(
            "two processes report under its certificate",
            Duration::from_secs(30)
        ),
        "{}",
        second_guard.stderr()
    );
    std::thread::sleep(Duration::from_secs(5));
    second_guard.stop();
    guard.stop();
    server.stop();
    assert_eq!(duplications(&console), 2, "{}", console_log(&console));
}

/// Issue 14 (session 31): an enrolled host guarded by plain `watch` (its records sent by
/// `audit forward --to console`) wrote a heartbeat record every `[watch]
/// heartbeat_seconds`, however long: `serve` held it to `MAX_TRAIL_HEARTBEAT`, `watch`
/// did not, and the console took the quiet host for silent between two. Now `watch` on
/// an enrolled home holds it too, and says why.
#[test]
fn an_enrolled_host_guarded_by_watch_is_held_to_the_consoles_heartbeat_bound() {
    use pacsguard_fleet::freshness::MAX_TRAIL_HEARTBEAT;
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "mr-watch-beat");
    server.stop();
    let config = host.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[watch]\nheartbeat_seconds = {}\n",
        MAX_TRAIL_HEARTBEAT * 2 + 1
    ));
    std::fs::write(&config, text).expect("config");
    let watch = pacsguard()
        .arg("--home")
        .arg(&host.home)
        .arg("watch")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pacsguard watch starts");
    let promised = || -> Vec<u64> {
        std::fs::read_to_string(host.home.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|record| record["heartbeat_seconds"].as_u64())
            .filter(|&s| s != 0)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while promised().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(watch.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let out = watch.wait_with_output().expect("watch ends");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(promised(), vec![MAX_TRAIL_HEARTBEAT], "{said}");
    assert!(
        said.contains(&format!(
            "heartbeat_seconds {} is longer than a console takes",
            MAX_TRAIL_HEARTBEAT * 2 + 1
        )),
        "{said}"
    );
}

/// Review of session 32: `console acknowledge-host` never asked whether four eyes for
/// host decisions is in force, so one administrator acknowledged a standing refusal
/// alone from the CLI while the Hosts page said four eyes applies on every console. The
/// CLI now refuses (exit 2), pointing to the Hosts page, and nothing is acknowledged.
#[test]
fn with_four_eyes_for_hosts_the_cli_acknowledges_nothing() {
    let name = "ws-ack-four-eyes";
    let console = Env::new();
    console.profile(&[]);
    let config = console.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[console]\nneeds_second_host_approver = true\n");
    std::fs::write(&config, text).expect("config");
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(0) && h["state"] == "ok"
    });
    let copy = copy_of_enrolment(&host);
    let copy_guard = Serve::start(&copy, &[]);
    let duplicated = wait_host_within(&console, name, Duration::from_secs(90), |h| {
        h["state"] == "duplicated"
    });
    let out = acknowledge_shown(&console, name, &duplicated, "a clone, ticket 4714");
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("four eyes") && said.contains("Hosts page"),
        "{said}"
    );
    assert!(
        !console_log(&console).contains("\"host-acknowledged\""),
        "{}",
        console_log(&console)
    );
    assert!(hosts(&console).iter().all(|h| h["acknowledged"].is_null()));
    copy_guard.stop();
    guard.stop();
    server.stop();
}

/// Review of session 32: the ordinary restore is of a machine down long enough to be
/// found silent. Its standing fork kept the backup checkpoint's words (its root only)
/// for the whole silence, the administrator acknowledged those, and a second restore of
/// the same backup (another branch at that size) was the fork acknowledged: neither
/// raised nor counted. The branch's words are taken inside the silence too.
#[test]
fn a_second_restore_after_an_acknowledged_silent_one_is_raised() {
    let name = "ws-ack-silent";
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, name);
    let guard = Serve::start(&host, &[]);
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(1) && h["state"] == "ok"
    });
    guard.stop();
    let monday = copy_of_home(&host);
    let at_monday = delivered(&console, name);
    let guard = Serve::start(&host, &[]);
    std::fs::write(host.path("study/new.dcm"), b"arrived").expect("write");
    wait_host(&console, name, |h| {
        h["records"].as_u64() > Some(at_monday + 2)
    });
    guard.stop();
    // Down long enough to be found silent.
    wait_host_within(&console, name, Duration::from_secs(120), |h| {
        h["state"] == "silent"
    });
    let forks = |console: &Env| console_log(console).matches("\"host-trail-fork\"").count();
    let records_again = format!("records from {at_monday} again");
    let branch_named = |h: &serde_json::Value| {
        h["state"] == "fork, silent"
            && h["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("(fork): {records_again}")))
    };

    // Restored from Monday's backup while silent: the refusal's words name the branch.
    put_back(&host.home, monday.path());
    let guard = Serve::start(&host, &[]);
    let forked = wait_host(&console, name, branch_named);
    let reason = "restored from Monday's backup after the disk failed, ticket 4715";
    let out = acknowledge_shown(&console, name, &forked, reason);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_host(&console, name, |h| h["acknowledged"]["reason"] == reason);
    assert_eq!(forks(&console), 1, "{}", console_log(&console));
    guard.stop();

    // Restored again from the same backup: the same size, another branch: raised.
    put_back(&host.home, monday.path());
    let guard = Serve::start(&host, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while forks(&console) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second restore was not raised: {:?}\n{}",
            hosts(&console),
            console_log(&console)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let again = wait_host(&console, name, |h| h["acknowledged"].is_null());
    assert_eq!(again["state"], "fork, silent", "{again}");
    guard.stop();
    server.stop();
}

/// Issue 14: a host's `serve` delivers to its console and to the syslog collector of
/// `[forward]` through one loop, each destination with its own cursor. The console down
/// for a while holds back none of the collector's records; once it is back, each has
/// every record of the trail once, in order.
#[test]
fn the_console_and_a_syslog_collector_each_get_everything_once() {
    let console = Env::new();
    console.profile(&[]);
    let port = common::closed_port().port();
    let fleet = format!("127.0.0.1:{port}");
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    let host = enrolled_host(&console, &server, "both-1");
    let collector = common::Collector::start("127.0.0.1:0");
    common::append_config(
        &host,
        &format!("[forward]\nto = \"tcp://{}\"\n", collector.addr),
    );
    let guard = Serve::start(&host, &[]);
    wait_host(&console, "both-1", |h| h["records"].as_u64() > Some(0));
    drop(server); // kill -9
    std::fs::write(host.path("study/console-down.dcm"), b"x").expect("write");
    assert!(
        collector.wait(Duration::from_secs(60), |m| m
            .iter()
            .any(|m| m.contains("console-down.dcm"))),
        "the console being down held back the collector: {}",
        guard.stderr()
    );
    let server = Serve::start(&console, &["--fleet-listen", &fleet]);
    assert!(
        guard.wait_for("console delivery resumed", Duration::from_secs(60)),
        "{}",
        guard.stderr()
    );
    guard.stop();
    let log = std::fs::read_to_string(host.home.join("audit.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    let records = lines.len() as u64;
    wait_host(&console, "both-1", |h| {
        h["records"].as_u64() == Some(records)
    });
    assert_eq!(
        stored_records(&console, "both-1"),
        lines,
        "console: once each, in order"
    );
    collector.wait(Duration::from_secs(30), |m| m.len() as u64 >= records);
    assert_eq!(
        collector.seqs(),
        (0..records).collect::<Vec<_>>(),
        "collector: once each, in order"
    );
    server.stop();
}

/// Review rv33-deliver: `watch` on an enrolled home delivered nothing to the console (a
/// comment said to run `audit forward --to console`, which the home's lock refuses while
/// the guard runs). Now it reports as `serve` does: a finding reaches the console.
#[test]
fn watch_on_an_enrolled_host_reports_to_the_console() {
    let console = Env::new();
    console.profile(&[]);
    let server = Serve::start(&console, &["--fleet-listen", "127.0.0.1:0"]);
    let host = enrolled_host(&console, &server, "watching-1");
    let guard = Serve::watch(&host);
    assert!(
        guard.wait_for("reporting to the console at", Duration::from_secs(30)),
        "{}",
        guard.stderr()
    );
    std::fs::write(host.path("study/while-watching.dcm"), b"x").expect("write");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(host.home.join("audit.log"))
        .unwrap_or_default()
        .contains("while-watching.dcm")
    {
        assert!(Instant::now() < deadline, "no record: {}", guard.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let records = common::trail_records(&host.home);
    wait_host(&console, "watching-1", |h| {
        h["records"].as_u64() >= Some(records)
    });
}
