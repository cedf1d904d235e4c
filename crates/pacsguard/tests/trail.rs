//! The audit trail through the real binary: every tampering detected and placed, crashes
//! survived, exported copies verifiable offline.

mod common;

use std::fs;
use std::process::Stdio;

use common::*;

/// A home with a few commands on its trail (several checkpoints).
fn busy_env() -> Env {
    let env = Env::new();
    env.profile(&[]);
    fs::write(env.path("readme.txt"), b"changed").expect("edit");
    let _ = env.check(&[]);
    let _ = env.run(&["accept", "--all", "--reason", "reviewed"]);
    env
}

fn verify(env: &Env, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["audit", "verify", "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json: {}{}", stdout(&out), stderr(&out)));
    (out.status.code().expect("status"), doc)
}

#[test]
fn a_clean_trail_verifies_and_every_command_is_on_it() {
    let env = busy_env();
    let (code, doc) = verify(&env, &[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["unsigned_records"], 0);
    let out = env.run(&["audit", "show", "--json", "--action", "accept"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let records = doc["records"].as_array().expect("array");
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|r| r["action"] == "accept" && r["host"].is_string() && r["seq"].is_u64())
    );
    assert!(records.iter().any(|r| r["reason"] == "reviewed"));
}

/// A flipped byte of a real command's trail is refused by `audit verify` and placed. Every
/// byte is flipped in process by `pacsguard-audit`'s `checkpoint_tail.rs`; here, one process
/// per flip, the first and last bytes of each file and every 13th byte between (13 is prime
/// and shorter than any field, so the sample lands on every kind of field and offset).
#[test]
fn flipped_bytes_of_the_log_or_the_checkpoints_are_detected() {
    let env = busy_env();
    for name in ["audit.log", "checkpoints.jsonl"] {
        let path = env.home.join(name);
        let original = fs::read(&path).expect("read");
        let len = original.len();
        let sampled = |i: &usize| *i < 16 || *i + 16 >= len || i.is_multiple_of(13);
        for i in (0..len).filter(sampled) {
            let mut bytes = original.clone();
            bytes[i] ^= 0x01;
            fs::write(&path, &bytes).expect("write");
            let (code, doc) = verify(&env, &[]);
            assert_eq!(code, 2, "{name}: flipping byte {i} went unnoticed: {doc}");
            assert!(doc["problems"][0]["position"].is_string());
        }
        fs::write(&path, &original).expect("restore");
    }
    assert_eq!(verify(&env, &[]).0, 0);
}

#[test]
fn deleted_inserted_swapped_and_truncated_records_are_placed() {
    let env = busy_env();
    let path = env.home.join("audit.log");
    let original = fs::read_to_string(&path).expect("read");
    let checkpoints = fs::read(env.home.join("checkpoints.jsonl")).expect("read");
    // The store keeps a copy of the newest checkpoint: undoing a round puts it back too.
    let store = fs::read(env.home.join("pacsguard.db")).expect("read");
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 5);
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut deleted = lines.clone();
    deleted.remove(2);
    let mut inserted = lines.clone();
    inserted.insert(2, lines[1]);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    let truncated = &lines[..lines.len() - 1];
    for (what, text, place, refused) in [
        ("deleted", join(&deleted), "record 2", true),
        ("inserted", join(&inserted), "record 2", true),
        ("swapped", join(&swapped), "record 1", false),
        ("truncated", join(truncated), "checkpoint", true),
    ] {
        fs::write(&path, &text).expect("write");
        let (code, doc) = verify(&env, &[]);
        assert_eq!(code, 2, "{what}: {doc}");
        let placed = |doc: &serde_json::Value| {
            doc["problems"]
                .as_array()
                .expect("problems")
                .iter()
                .any(|p| p["position"].as_str().is_some_and(|s| s.starts_with(place)))
        };
        assert!(placed(&doc), "{what}: {doc:#}");
        // A command refuses a trail whose length no longer matches its last checkpoint.
        // Records rewritten in place before it are not re-read by every command (that
        // would cost a pass over the whole trail each time): the command continues from
        // the signed frontier, so its own checkpoint cannot launder them, and verify
        // still names them afterwards.
        let out = env.run(&["check"]);
        if refused {
            assert_refused_in(&out, "audit trail", format_args!("{what}"));
        }
        let (code, doc) = verify(&env, &[]);
        assert_eq!(code, 2, "{what} after a command: {doc}");
        assert!(placed(&doc), "{what} after a command: {doc:#}");
        fs::write(&path, &original).expect("restore");
        fs::write(env.home.join("checkpoints.jsonl"), &checkpoints).expect("restore");
        fs::write(env.home.join("pacsguard.db"), &store).expect("restore");
    }
    fs::write(&path, &original).expect("restore");
    assert_eq!(verify(&env, &[]).0, 0);
}

#[test]
fn a_trail_rolled_back_behind_the_witness_is_caught() {
    let (env, _witness) = witnessed_env();
    let old_log = fs::read(env.home.join("audit.log")).expect("read");
    let old_checkpoints = fs::read(env.home.join("checkpoints.jsonl")).expect("read");
    fs::write(env.path("readme.txt"), b"evidence the intruder wants gone").expect("edit");
    let _ = env.check(&[]);
    assert_eq!(verify(&env, &[]).0, 0);
    // The intruder restores an older, self-consistent trail.
    fs::write(env.home.join("audit.log"), old_log).expect("roll back");
    fs::write(env.home.join("checkpoints.jsonl"), old_checkpoints).expect("roll back");
    let (code, doc) = verify(&env, &[]);
    assert_eq!(code, 2, "{doc:#}");
    assert!(
        doc["problems"][0]["position"]
            .as_str()
            .is_some_and(|p| p.starts_with("witness")),
        "{doc:#}"
    );
    let out = env.run(&["check"]);
    assert_refused(&out, "witness");
}

#[test]
fn a_torn_tail_is_reported_as_torn_and_repaired_on_the_record() {
    let env = busy_env();
    let path = env.home.join("audit.log");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(b"{\"seq\":99,\"half a rec");
    fs::write(&path, &bytes).expect("write");
    let (code, doc) = verify(&env, &[]);
    assert_eq!(code, 0, "a torn tail is not tampering: {doc:#}");
    assert!(doc["torn_tail"].is_array());
    let _ = env.check(&[]);
    let (code, doc) = verify(&env, &[]);
    assert_eq!((code, doc["torn_tail"].is_null()), (0, true), "{doc:#}");
    let out = env.run(&["audit", "show", "--json", "--action", "audit"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        doc["records"].as_array().map(Vec::len),
        Some(1),
        "the repair is on the record"
    );
}

#[test]
fn an_exported_copy_verifies_offline_with_the_pinned_key() {
    let env = busy_env();
    let out_dir = env.dir.path().join("export");
    let out = env.run(&["audit", "export", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = fs::read_to_string(out_dir.join("trail.pub")).expect("key");
    let verify_copy = |key: &str| {
        pacsguard()
            .args([
                "audit",
                "verify",
                "--dir",
                out_dir.to_str().expect("utf-8"),
                "--key",
                key,
            ])
            .output()
            .expect("runs")
    };
    let out = verify_copy(key.trim());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A copy re-signed with another key is refused against the pinned key.
    let other = Env::new();
    other.profile(&[]);
    fs::copy(other.home.join("trail.pub"), out_dir.join("trail.pub")).expect("swap key");
    let out = verify_copy(key.trim());
    assert_eq!(out.status.code(), Some(2));
    // Export never overwrites.
    let out = env.run(&["audit", "export", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn killed_writers_never_cost_an_acknowledged_record() {
    let env = Env::new();
    env.profile(&[]);
    // 3,000 new files under a static policy: every check appends 3,000 finding records.
    for i in 0..3000 {
        let dir = env.path(&format!("new/{}", i % 30));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("{i}.dcm")), b"x").expect("write");
    }
    let log = env.home.join("audit.log");
    let log_size = || fs::metadata(&log).map_or(0, |m| m.len());
    let before = log_size();
    let _ = env.check(&[]);
    // What one check appends: each kill below lands at a share of it, as the log shows
    // it written (a kill timed by the clock missed the append on a loaded machine).
    let appended = log_size() - before;
    let mut signed_before = verify(&env, &[]).1["signed_size"].as_u64().expect("signed");
    let mut interrupted = 0;
    for step in 0..=6u64 {
        // Step 0 kills at once, before anything is appended; step 6 once all of a
        // check's records are in the log (while it syncs and signs, or after).
        let kill_at = log_size() + appended * step / 6;
        let mut child = pacsguard()
            .arg("--home")
            .arg(&env.home)
            .args(["check"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while log_size() < kill_at && child.try_wait().expect("wait").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "step {step}: the log never grew to {kill_at} bytes"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = child.kill();
        let _ = child.wait();
        let (code, doc) = verify(&env, &[]);
        assert!(code == 0 || code == 1, "step {step}: {doc:#}");
        let signed = doc["signed_size"].as_u64().expect("signed");
        assert!(
            signed >= signed_before,
            "step {step}: signed records lost ({signed_before} -> {signed})"
        );
        assert!(doc["records"].as_u64().expect("records") >= signed);
        if doc["unsigned_records"].as_u64() != Some(0) || !doc["torn_tail"].is_null() {
            interrupted += 1;
        }
        signed_before = signed;
    }
    eprintln!(
        "a check appends {appended} bytes; {interrupted} of 7 kills landed while records were being appended"
    );
    assert!(
        interrupted > 0,
        "no kill landed mid-append: the test proved nothing"
    );
    // The next command continues the trail and covers everything with a checkpoint.
    let _ = env.check(&["--fast"]);
    let (code, doc) = verify(&env, &[]);
    assert_eq!(
        (code, doc["unsigned_records"].as_u64()),
        (0, Some(0)),
        "{doc:#}"
    );
}

/// The DICOM audit schema (PS3.15 A.5.1) in the XML syntax xmllint reads, converted with
/// rnc2rng as installed by `scripts/setup-test-deps.sh`.
fn dicom_audit_schema(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rnc = repo.join("crates/pacsguard-audit/tests/data/dicom-audit-message.rnc");
    let out = std::process::Command::new("python3")
        .args(["-m", "rnc2rng"])
        .arg(&rnc)
        .env("PYTHONPATH", repo.join(".testdata/pytools"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "rnc2rng failed (run scripts/setup-test-deps.sh): {}",
        stderr(&out)
    );
    let rng = dir.join("dicom-audit-message.rng");
    fs::write(&rng, &out.stdout).expect("write schema");
    rng
}

fn xmllint(schema: &std::path::Path, files: &[std::path::PathBuf]) -> std::process::Output {
    std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(schema)
        .args(files)
        .output()
        .expect("xmllint runs (run scripts/setup-test-deps.sh)")
}

#[test]
fn exported_dicom_audit_messages_validate_against_the_ps3_15_schema() {
    let env = busy_env();
    // An alert with a hostile name and a reason with a control character: still valid XML.
    fs::write(env.tree.join("evil<&>\u{1b}.dcm"), b"MZ").expect("write");
    let _ = env.check(&[]);
    let _ = env.run(&["accept", "--all", "--reason", "ticket\u{7}42 \"approved\""]);
    let out_dir = env.dir.path().join("dicom-xml");
    let out = env.run(&[
        "audit",
        "export",
        "--format",
        "dicom-xml",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut files: Vec<std::path::PathBuf> = fs::read_dir(&out_dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    assert_eq!(files.len() as u64, records, "one message per record");

    let schema = dicom_audit_schema(env.dir.path());
    let out = xmllint(&schema, &files);
    assert!(out.status.success(), "{}", stderr(&out));

    let alert = files
        .iter()
        .map(|f| fs::read_to_string(f).expect("read"))
        .find(|x| x.contains("evil") && x.contains("csd-code=\"added\""))
        .expect("the alert finding was exported");
    assert!(
        alert.contains("<EventID csd-code=\"110113\" codeSystemName=\"DCM\""),
        "{alert}"
    );
    assert!(alert.contains("EventOutcomeIndicator=\"8\""), "{alert}");
    assert!(alert.contains("evil&lt;&amp;&gt;\\u{001b}.dcm"), "{alert}");

    // The schema bites: a message without its audit source is refused.
    let broken = env.dir.path().join("broken.xml");
    let text = fs::read_to_string(&files[0]).expect("read");
    let start = text.find("<AuditSourceIdentification").expect("source");
    let end = text
        .find("</AuditSourceIdentification>")
        .expect("source end")
        + "</AuditSourceIdentification>".len();
    fs::write(&broken, format!("{}{}", &text[..start], &text[end..])).expect("write");
    assert!(!xmllint(&schema, &[broken]).status.success());
}

#[test]
fn a_trail_whose_checkpoints_were_deleted_is_refused_and_reported() {
    let env = busy_env();
    fs::remove_file(env.home.join("checkpoints.jsonl")).expect("rm");
    let (code, doc) = verify(&env, &[]);
    assert_eq!(code, 2, "{doc:#}");
    let out = env.run(&["check"]);
    assert_refused(&out, "no checkpoint");
}

#[test]
fn forwarding_waits_out_a_collector_that_is_down_and_loses_nothing() {
    let env = Env::new();
    env.profile(&[]);
    for i in 0..1000 {
        fs::write(env.path(&format!("study/new-{i}.dcm")), b"x").expect("write");
    }
    let _ = env.check(&["--fast"]);
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    assert!(records > 1000);

    // Nothing listens on this port: delivery fails loudly and the cursor stays put.
    let closed_addr = closed_port();
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{closed_addr}")]);
    assert_refused(&out, "resumes from record 0");

    // The collector is back: everything arrives, once, in order.
    let collector = Collector::start("127.0.0.1:0");
    let addr = collector.addr;
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{addr}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let messages = collector.after_connections(1);
    // Closed again, as a collector that is gone: the forward below must not need it.
    drop(collector);
    let seqs: Vec<u64> = messages.iter().map(|m| syslog_seq(m)).collect();
    assert_eq!(seqs, (0..records).collect::<Vec<_>>());
    assert!(
        messages
            .iter()
            .all(|m| m.contains("IHE+RFC-3881") && m.contains("<AuditMessage>"))
    );
    assert!(
        messages.iter().any(|m| m.starts_with("<81>1 ")),
        "alerts go out as syslog alerts"
    );

    // Nothing new: nothing sent (the forward itself adds no record to forward).
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{addr}")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("forwarded 0 records"),
        "{}",
        stdout(&out)
    );
}

/// Issue 14: each destination has its own cursor. One collector down for a while holds
/// back no other, and when it is back it gets everything in order, none twice.
#[test]
fn two_destinations_one_down_the_other_is_not_held_back() {
    let env = Env::new();
    env.profile(&[]);
    let forward = |name: &str, addr: &str| {
        env.run(&[
            "audit",
            "forward",
            "--destination",
            name,
            "--to",
            &format!("tcp://{addr}"),
        ])
    };
    let down = closed_port().to_string();
    let mut to_a = Vec::new();
    for round in 0..3 {
        fs::write(env.path(&format!("study/new-{round}.dcm")), b"x").expect("write");
        let _ = env.check(&["--fast"]);
        let collector = Collector::start("127.0.0.1:0");
        let addr = collector.addr;
        let out = forward("siem-a", &addr.to_string());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        to_a.extend(collector.after_connections(1).iter().map(|m| syslog_seq(m)));
        assert_refused(&forward("siem-b", &down), "resumes from record 0");
    }
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    assert_eq!(to_a, (0..records).collect::<Vec<_>>(), "a got each once");
    let collector = Collector::start("127.0.0.1:0");
    let addr = collector.addr;
    let out = forward("siem-b", &addr.to_string());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let to_b: Vec<u64> = collector
        .after_connections(1)
        .iter()
        .map(|m| syslog_seq(m))
        .collect();
    assert_eq!(
        to_b,
        (0..records).collect::<Vec<_>>(),
        "b got everything once"
    );
    assert!(env.home.join("delivery/siem-a.cursor").is_file());
    assert!(env.home.join("delivery/siem-b.cursor").is_file());
}

/// Issue 14: the single `forward.cursor` of earlier versions becomes the `syslog`
/// destination's cursor: an upgrade neither sends again nor skips.
#[test]
fn the_cursor_of_an_earlier_version_is_taken_over_without_resending() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::start("127.0.0.1:0");
    let addr = collector.addr;
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{addr}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first: Vec<u64> = collector
        .after_connections(1)
        .iter()
        .map(|m| syslog_seq(m))
        .collect();
    // What an earlier version left: its one cursor at the home's top.
    let cursor = env.home.join("delivery/syslog.cursor");
    fs::rename(&cursor, env.home.join("forward.cursor")).expect("as before");
    fs::write(env.path("study/later.dcm"), b"x").expect("write");
    let _ = env.check(&["--fast"]);
    let collector = Collector::start("127.0.0.1:0");
    let addr = collector.addr;
    let out = env.run(&["audit", "forward", "--to", &format!("tcp://{addr}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second: Vec<u64> = collector
        .after_connections(1)
        .iter()
        .map(|m| syslog_seq(m))
        .collect();
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    let next = first.last().expect("sent") + 1;
    assert_eq!(
        second,
        (next..records).collect::<Vec<_>>(),
        "none again, none skipped"
    );
    assert!(!env.home.join("forward.cursor").exists(), "moved");
    assert!(cursor.is_file());
}

#[test]
fn forwarding_over_udp_sends_one_datagram_per_record() {
    let env = busy_env();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr");
    let out = env.run(&["audit", "forward", "--to", &format!("udp://{addr}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    let mut buf = vec![0u8; 65536];
    for expected in 0..records {
        let n = socket.recv(&mut buf).expect("datagram");
        assert_eq!(syslog_seq(&String::from_utf8_lossy(&buf[..n])), expected);
    }
}

/// A real rsyslogd on a free loopback port writing each message's structured data to a
/// file; `tls` switches its TCP input to TLS (gnutls) requiring a client certificate.
struct Rsyslog {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Rsyslog {
    fn start(
        work: &std::path::Path,
        tls: Option<(&std::path::Path, &std::path::Path, &std::path::Path)>,
    ) -> Rsyslog {
        fs::create_dir_all(work).expect("mkdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let out = work.join("out.log");
        let (global_tls, module_tls) = match tls {
            Some((ca, cert, key)) => (
                format!(
                    " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                    ca.display(),
                    cert.display(),
                    key.display()
                ),
                " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\"".to_string(),
            ),
            None => (String::new(), String::new()),
        };
        fs::write(
            work.join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{w}\" maxMessageSize=\"64k\"{global_tls})\n\
                 module(load=\"imtcp\"{module_tls})\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"seq\" type=\"string\" string=\"%structured-data%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{o}\" template=\"seq\")\n",
                w = work.display(),
                o = out.display()
            ),
        )
        .expect("config");
        let child = std::process::Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(work.join("rsyslog.conf"))
            .arg("-i")
            .arg(work.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd runs (run scripts/setup-test-deps.sh)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rsyslogd did not start listening"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Rsyslog { child, port, out }
    }

    /// The sequence numbers received, once `expected` arrived or 20 s passed.
    fn received(mut self, expected: u64) -> Vec<u64> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut lines: Vec<String> = Vec::new();
        while std::time::Instant::now() < deadline {
            lines = fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect();
            if lines.len() as u64 >= expected {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        lines.iter().map(|l| syslog_seq(l)).collect()
    }
}

#[test]
fn a_real_rsyslog_receives_every_record() {
    let env = busy_env();
    let rsyslog = Rsyslog::start(
        &env.dir
            .path()
            .canonicalize()
            .expect("canonical")
            .join("rsyslog"),
        None,
    );
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &format!("tcp://127.0.0.1:{}", rsyslog.port),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    assert_eq!(rsyslog.received(records), (0..records).collect::<Vec<_>>());
}

/// Certificates for a TLS test: a CA, a server certificate for `localhost`, a client
/// certificate, all as PEM files in `dir`.
struct Pki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key_file: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
    server_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    server_key: rustls_pki_types::PrivateKeyDer<'static>,
}

fn pki(dir: &std::path::Path, name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = |san: &str, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![san.to_string()]).expect("params");
        params.extended_key_usages = vec![purpose];
        (params.signed_by(&key, &issuer).expect("sign"), key)
    };
    let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("pacsguard-client", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |file: &str, pem: String| {
        let path = dir.join(format!("{name}-{file}"));
        fs::write(&path, pem).expect("write pem");
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", server_cert.pem()),
        server_key_file: write("server.key", server_key.serialize_pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
        ca_der: ca_cert.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key: rustls_pki_types::PrivateKeyDer::try_from(server_key.serialize_der())
            .expect("key der"),
    }
}

/// A TLS syslog collector that requires a client certificate from `pki`'s CA.
fn tls_collector(pki: &Pki) -> (u16, std::thread::JoinHandle<Result<Vec<String>, String>>) {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(Arc::new(config)).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut tls, &mut bytes).map_err(|e| e.to_string())?;
        // A collector confirms it read everything by answering close_notify with its own.
        tls.conn.send_close_notify();
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
        let mut messages = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some(space) = rest.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&rest[..space])
                .map_err(|e| e.to_string())?
                .parse()
                .map_err(|e: std::num::ParseIntError| e.to_string())?;
            messages.push(String::from_utf8_lossy(&rest[space + 1..space + 1 + len]).into_owned());
            rest = &rest[space + 1 + len..];
        }
        Ok(messages)
    });
    (port, handle)
}

#[test]
fn forwarding_over_mutual_tls_verifies_the_collector_and_delivers_everything() {
    let env = busy_env();
    let dir = env.dir.path().canonicalize().expect("canonical");
    let good = pki(&dir, "good");
    let rogue = pki(&dir, "rogue");
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    let forward = |port: u16, ca: &std::path::Path| {
        env.run(&[
            "audit",
            "forward",
            "--to",
            &format!("tls://localhost:{port}"),
            "--ca",
            ca.to_str().expect("utf-8"),
            "--cert",
            good.client_cert.to_str().expect("utf-8"),
            "--key",
            good.client_key.to_str().expect("utf-8"),
        ])
    };

    // A collector whose certificate our CA did not sign is refused before anything is sent.
    let (port, rogue_collector) = tls_collector(&rogue);
    let out = forward(port, &good.ca);
    assert_refused(&out, "resumes from record 0");
    assert!(
        rogue_collector
            .join()
            .expect("thread")
            .map_or(true, |m| m.is_empty())
    );

    // The real collector gets every record, once, in order, over mutual TLS.
    let (port, collector) = tls_collector(&good);
    let out = forward(port, &good.ca);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let messages = collector.join().expect("thread").expect("collector");
    let seqs: Vec<u64> = messages.iter().map(|m| syslog_seq(m)).collect();
    assert_eq!(seqs, (0..records).collect::<Vec<_>>());
}

#[test]
fn a_real_rsyslog_receives_every_record_over_mutual_tls() {
    let env = busy_env();
    let dir = env.dir.path().canonicalize().expect("canonical");
    let pki = pki(&dir, "rsyslog");
    let rsyslog = Rsyslog::start(
        &dir.join("rsyslog-tls"),
        Some((&pki.ca, &pki.server_cert, &pki.server_key_file)),
    );
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &format!("tls://localhost:{}", rsyslog.port),
        "--ca",
        pki.ca.to_str().expect("utf-8"),
        "--cert",
        pki.client_cert.to_str().expect("utf-8"),
        "--key",
        pki.client_key.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    assert_eq!(rsyslog.received(records), (0..records).collect::<Vec<_>>());
}

/// A TCP proxy in front of `upstream` that passes the first `pass` bytes the forwarder
/// sends (and everything the collector sends back), then resets both connections
/// (SO_LINGER 0): a network failure or an injected RST in the middle of a batch.
fn resetting_proxy(upstream: u16, pass: usize) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let server = std::net::TcpStream::connect(("127.0.0.1", upstream)).expect("upstream");
        let (mut back_from, mut back_to) = (
            server.try_clone().expect("clone"),
            client.try_clone().expect("clone"),
        );
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut back_from, &mut back_to);
        });
        let (mut from, mut to) = (&client, &server);
        let mut buf = [0u8; 1024];
        let mut passed = 0;
        while passed < pass {
            let n = match from.read(&mut buf[..(pass - passed).min(1024)]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                return;
            }
            passed += n;
        }
        for stream in [&client, &server] {
            let _ = nix::sys::socket::setsockopt(
                stream,
                nix::sys::socket::sockopt::Linger,
                &nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            );
        }
        // The copy back ends, so ours are the last descriptors: closing them resets.
        let _ = server.shutdown(std::net::Shutdown::Read);
        let _ = back.join();
        drop(client);
        drop(server);
    });
    (port, handle)
}

#[test]
fn a_tls_stream_cut_mid_batch_is_not_delivery_and_the_next_run_sends_everything() {
    let env = busy_env();
    let dir = env.dir.path().canonicalize().expect("canonical");
    let pki = pki(&dir, "cut");
    let rsyslog = Rsyslog::start(
        &dir.join("rsyslog-cut"),
        Some((&pki.ca, &pki.server_cert, &pki.server_key_file)),
    );
    let forward = |port: u16| {
        env.run(&[
            "audit",
            "forward",
            "--to",
            &format!("tls://localhost:{port}"),
            "--ca",
            pki.ca.to_str().expect("utf-8"),
            "--cert",
            pki.client_cert.to_str().expect("utf-8"),
            "--key",
            pki.client_key.to_str().expect("utf-8"),
        ])
    };
    let cursor = env.home.join("delivery/syslog.cursor");
    // Past the handshake and the first records, well short of the whole batch.
    let (port, proxy) = resetting_proxy(rsyslog.port, 6000);
    let out = forward(port);
    let _ = proxy.join();
    assert_refused(&out, "resumes from record 0");
    assert!(!cursor.exists(), "the cursor moved");
    let out = forward(rsyslog.port);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(cursor.exists());
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    let mut seqs = rsyslog.received(records);
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (0..records).collect::<Vec<_>>());
}

/// A TLS syslog collector written in Python (its `ssl` module: OpenSSL), in one of the
/// ways a collector or something on the path behaves: `good` reads everything and
/// closes; `early-close` reads one message, then ends the TLS session with its own
/// `close_notify` and closes; `slowloris` never completes the handshake, trickling a byte
/// every 2 s. Received sequence numbers go to `out`, one per line.
/// (`early-close` is how r12 caught the forwarder counting such a batch as delivered.)
struct PyCollector {
    child: std::process::Child,
    port: u16,
}

const PY_COLLECTOR: &str = r#"
import socket, ssl, sys, time
mode, cert, key, out = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(5)
print(ls.getsockname()[1], flush=True)
def frames(buf):
    out = []
    while True:
        sp = buf.find(b" ")
        if sp < 0:
            return out, buf
        n = int(buf[:sp])
        if len(buf) < sp + 1 + n:
            return out, buf
        out.append(buf[sp + 1:sp + 1 + n])
        buf = buf[sp + 1 + n:]
while True:
    c, _ = ls.accept()
    if mode == "slowloris":
        c.recv(4096)
        try:
            c.sendall(b"\x16\x03\x03\x40\x00")
            while True:
                time.sleep(2)
                c.sendall(b"\x00")
        except OSError:
            continue
    s = ctx.wrap_socket(c, server_side=True)
    buf = b""
    got = []
    while True:
        try:
            d = s.recv(65536)
        except OSError:
            break
        if not d:
            break
        buf += d
        fr, buf = frames(buf)
        got += fr
        if mode == "early-close" and got:
            # Our close_notify, and the connection kept open a while (as Python keeps a
            # socket that unwrap() handed back): no reset tells the sender anything.
            try:
                s.unwrap()
            except OSError:
                pass
            time.sleep(5)
            break
    with open(out, "a") as f:
        for m in got:
            i = m.find(b'seq="')
            f.write(m[i + 5:m.index(b'"', i + 5)].decode() + "\n")
    s.close()
"#;

impl PyCollector {
    fn start(mode: &str, pki: &Pki, out: &std::path::Path) -> PyCollector {
        let mut child = std::process::Command::new("python3")
            .args(["-c", PY_COLLECTOR, mode])
            .arg(&pki.server_cert)
            .arg(&pki.server_key_file)
            .arg(out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("port");
        let port = line.trim().parse().expect("a port");
        PyCollector { child, port }
    }
}

impl Drop for PyCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_forward(env: &Env, pki: &Pki, port: u16) -> std::process::Output {
    env.run(&[
        "audit",
        "forward",
        "--to",
        &format!("tls://localhost:{port}"),
        "--ca",
        pki.ca.to_str().expect("utf-8"),
    ])
}

// r12: a collector that ends the TLS session with its own close_notify after one message
// had the whole batch counted as delivered; the rest was never sent again. Since session
// 34 a run paces its batches (a batch cut short makes the next smaller): no record the
// collector did not receive counts as delivered, and the next run sends from there.
#[test]
fn a_collector_that_closes_the_tls_session_early_has_not_received_the_batch() {
    let env = busy_env();
    // A batch larger than the one message the collector reads before it closes.
    for i in 0..300 {
        fs::write(env.path(&format!("study/new-{i}.dcm")), b"x").expect("write");
    }
    let _ = env.check(&["--fast"]);
    let dir = env.dir.path().canonicalize().expect("canonical");
    let pki = pki(&dir, "early");
    let received = dir.join("received-early");
    let early = PyCollector::start("early-close", &pki, &received);
    let out = tls_forward(&env, &pki, early.port);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    drop(early);
    let cursor: u64 = fs::read_to_string(env.home.join("delivery/syslog.cursor"))
        .unwrap_or_else(|_| "0 0".into())
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a cursor");
    let got: std::collections::BTreeSet<u64> = fs::read_to_string(&received)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("seq"))
        .collect();
    let skipped: Vec<u64> = (0..cursor).filter(|seq| !got.contains(seq)).collect();
    assert!(skipped.is_empty(), "counted, never received: {skipped:?}");
    let received = dir.join("received-good");
    let good = PyCollector::start("good", &pki, &received);
    let out = tls_forward(&env, &pki, good.port);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = verify(&env, &[]).1["records"].as_u64().expect("records");
    let seqs: Vec<u64> = fs::read_to_string(&received)
        .expect("received")
        .lines()
        .map(|l| l.parse().expect("seq"))
        .collect();
    assert_eq!(seqs, (cursor..records).collect::<Vec<_>>());
}

// r12: a collector that trickles its handshake a byte at a time held `audit forward`,
// and the home's lock, for as long as it liked. HANDSHAKE_DEADLINE (30 s) ends it: a
// warning, nothing confirmed, the cursor where it was.
#[test]
fn a_collector_that_stalls_the_handshake_is_given_up_at_the_deadline() {
    let env = busy_env();
    let dir = env.dir.path().canonicalize().expect("canonical");
    let pki = pki(&dir, "slow");
    let slow = PyCollector::start("slowloris", &pki, &dir.join("received-slow"));
    let mut cmd = pacsguard();
    cmd.arg("--home").arg(&env.home).args([
        "audit",
        "forward",
        "--to",
        &format!("tls://localhost:{}", slow.port),
        "--ca",
        pki.ca.to_str().expect("utf-8"),
    ]);
    let out = common::process::Running::spawn(cmd, "audit forward to a stalling collector")
        .exit_within(std::time::Duration::from_secs(90));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("HANDSHAKE_DEADLINE"),
        "{}",
        out.stderr
    );
    assert!(
        !env.home.join("delivery/syslog.cursor").exists(),
        "the cursor moved"
    );
    // The home is free again: the next command runs.
    assert_eq!(env.check(&[]).0, 0);
}
