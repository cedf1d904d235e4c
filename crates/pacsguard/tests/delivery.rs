//! `serve` delivers the trail to the syslog collector of `[forward]` as it runs (issues 13
//! and 14): through the same loop as the console's delivery, woken by new checkpoints,
//! a collector that is down waited out, nothing lost and nothing sent twice across a
//! clean stop and a start. Each test starts its own collector on loopback.

mod common;

use std::time::{Duration, Instant};

use common::process::{Running, guard, guard_as};
use common::{Collector, Env, ReservedPort, append_config, pacsguard, stderr, trail_records};

/// The guards these tests start, once they guard.
struct Serve;

impl Serve {
    fn start(env: &Env) -> Running {
        guard(env, &["serve", "--listen", "127.0.0.1:0"])
    }

    /// `pacsguard ARGS` (`serve` or `watch`), once it guards.
    fn run(env: &Env, args: &[&str]) -> Running {
        Serve::run_with(env, args, &[])
    }

    /// `pacsguard ARGS` with the environment variables `vars` set, once it guards.
    fn run_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Running {
        let mut command = pacsguard();
        command.envs(vars.iter().copied());
        guard_as(command, env, args)
    }
}

fn forward_to(env: &Env, addr: std::net::SocketAddr) {
    append_config(env, &format!("[forward]\nto = \"tcp://{addr}\"\n"));
}

/// Waits until the trail holds a record naming `needle` (the guard saw the change).
fn wait_trail(env: &Env, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(Instant::now() < deadline, "no record of {needle}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every record of the trail, once, in order: what a collector must have been sent.
fn assert_everything_once(env: &Env, collector: &Collector) {
    let records = trail_records(&env.home);
    collector.wait(Duration::from_secs(30), |m| m.len() as u64 >= records);
    assert_eq!(collector.seqs(), (0..records).collect::<Vec<_>>());
}

/// Before: a hospital that configured its SIEM saw nothing of a running `serve` until
/// someone ran `audit forward` by hand. Now the finding reaches the collector while
/// `serve` runs; `audit forward` beside it is refused (the running process delivers);
/// and a stop and a second start send nothing twice.
#[test]
fn serve_forwards_the_trail_to_the_configured_collector_as_it_runs() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::start("127.0.0.1:0");
    forward_to(&env, collector.addr);
    let serve = Serve::start(&env);
    std::fs::write(env.path("study/while-serving.dcm"), b"x").expect("write");
    assert!(
        collector.wait(Duration::from_secs(60), |m| m
            .iter()
            .any(|m| m.contains("while-serving.dcm"))),
        "the finding did not reach the collector while serve runs: {}",
        serve.stderr()
    );

    // A second deliverer of the same cursor would send twice: refused, with the reason.
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &format!("tcp://{}", collector.addr),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("serve"), "{}", stderr(&out));

    assert_ne!(serve.stop(), Some(2), "a clean stop");
    assert_everything_once(&env, &collector);

    let serve = Serve::start(&env);
    std::fs::write(env.path("study/after-restart.dcm"), b"x").expect("write");
    assert!(
        collector.wait(Duration::from_secs(60), |m| m
            .iter()
            .any(|m| m.contains("after-restart.dcm"))),
        "{}",
        serve.stderr()
    );
    assert_ne!(serve.stop(), Some(2), "a clean stop");
    assert_everything_once(&env, &collector);
}

/// The collector is down while the guard writes: said once (not once per retry), the
/// guard keeps guarding, and when the collector is back every record arrives once, in
/// order.
#[test]
fn a_collector_down_for_a_while_gets_everything_once_in_order_when_back() {
    let env = Env::new();
    env.profile(&[]);
    let port = ReservedPort::new();
    let addr = port.addr;
    forward_to(&env, addr);
    let serve = Serve::start(&env);
    assert!(
        serve.wait_for("syslog delivery: ", Duration::from_secs(60)),
        "the collector being down is said: {}",
        serve.stderr()
    );
    for round in 0..3 {
        std::fs::write(env.path(&format!("study/while-down-{round}.dcm")), b"x").expect("write");
        wait_trail(&env, &format!("while-down-{round}.dcm"));
    }
    let collector = Collector::on(port);
    // Retries of a collector that is down back off (MAX_RETRY_BACKOFF, 120 s at most).
    assert!(
        serve.wait_for("syslog delivery resumed", Duration::from_secs(240)),
        "{}",
        serve.stderr()
    );
    let text = serve.stderr();
    assert_eq!(
        text.matches("syslog delivery: ").count(),
        1,
        "said once per change: {text}"
    );
    assert_ne!(serve.stop(), Some(2), "a clean stop");
    assert_everything_once(&env, &collector);
    assert!(
        collector
            .messages()
            .iter()
            .any(|m| m.contains("while-down-2.dcm"))
    );
}

/// `watch` holds the home's lock as `serve` does, so `audit forward` from a timer was
/// refused for as long as it guarded: it delivers to the collector by itself too.
#[test]
fn watch_forwards_the_trail_to_the_configured_collector_as_it_runs() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::start("127.0.0.1:0");
    forward_to(&env, collector.addr);
    let watch = Serve::run(&env, &["watch"]);
    std::fs::write(env.path("study/while-watching.dcm"), b"x").expect("write");
    assert!(
        collector.wait(Duration::from_secs(60), |m| m
            .iter()
            .any(|m| m.contains("while-watching.dcm"))),
        "the finding did not reach the collector while watch runs: {}",
        watch.stderr()
    );
    assert!(
        watch
            .stderr()
            .contains("pacsguard watch: forwarding the trail to the collector tcp://"),
        "said as watch: {}",
        watch.stderr()
    );
    assert_ne!(watch.stop(), Some(2), "a clean stop");
    assert_everything_once(&env, &collector);
}

/// A stop with the collector down says which records it left (nothing lost: the cursor
/// stays), and the next start delivers them with the rest, once, in order.
#[test]
fn a_stop_with_the_collector_down_says_so_and_the_next_start_delivers_everything() {
    let env = Env::new();
    env.profile(&[]);
    let port = ReservedPort::new();
    let addr = port.addr;
    forward_to(&env, addr);
    let serve = Serve::start(&env);
    std::fs::write(env.path("study/before-stop.dcm"), b"x").expect("write");
    wait_trail(&env, "before-stop.dcm");
    let (code, said) = serve.stop_said();
    assert_ne!(code, Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "were not confirmed delivered to the collector tcp://{addr}"
        )) && said.contains("they go again at the next start"),
        "{said}"
    );
    let collector = Collector::on(port);
    let serve = Serve::start(&env);
    assert!(
        collector.wait(Duration::from_secs(60), |m| m
            .iter()
            .any(|m| m.contains("before-stop.dcm"))),
        "{}",
        serve.stderr()
    );
    assert_ne!(serve.stop(), Some(2), "a clean stop");
    assert_everything_once(&env, &collector);
}

/// Before: a batch was everything up to the newest checkpoint over one connection, and a
/// failed one was sent again whole every 2 s, so a collector that cuts each connection
/// after a few kilobytes got the first records again and again and the ones behind them
/// never (review rv33-deliver: records 0-3 seven times in 12 s, 4-36 never). Now a
/// failed batch makes the next one smaller, down to one record: every record arrives.
#[test]
fn a_collector_that_cuts_each_connection_short_still_gets_every_record() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::cutting("127.0.0.1:0", 4000);
    forward_to(&env, collector.addr);
    // A backlog bigger than one connection takes, written before the guard delivers.
    let serve = Serve::start(&env);
    for round in 0..8 {
        std::fs::write(env.path(&format!("study/backlog-{round}.dcm")), b"x").expect("write");
    }
    wait_trail(&env, "backlog-7.dcm");
    let records = trail_records(&env.home);
    assert!(
        collector.wait(Duration::from_secs(180), |m| {
            let seqs: std::collections::BTreeSet<u64> = m
                .iter()
                .filter(|m| !common::is_batch_mark(m))
                .map(|m| common::syslog_seq(m))
                .collect();
            (0..records).all(|seq| seqs.contains(&seq))
        }),
        "records 0 to {} did not all arrive: got {:?}; {}",
        records - 1,
        collector.seqs(),
        serve.stderr()
    );
    assert_ne!(serve.stop(), Some(2), "a clean stop");
}

/// Review rv33b-fleet: a `[forward]` CA that cannot be read (a mount not up yet at boot,
/// a certificate being rotated) made `check`, `scan`, `watch` and every other command
/// exit 2: forwarding that cannot work stopped the guard. Now every command runs, and the
/// guard says at its start which file it cannot read, and guards.
#[test]
fn a_forward_file_that_cannot_be_read_stops_no_command_and_the_guard_says_it() {
    let env = Env::new();
    env.profile(&[]);
    append_config(
        &env,
        "[forward]\nto = \"tls://127.0.0.1:6514\"\nca = \"/nonexistent/siem-ca.pem\"\n",
    );
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let watch = Serve::run(&env, &["watch"]);
    assert!(
        watch.stderr().contains("[forward] ca: ") && watch.stderr().contains("guarding goes on"),
        "{}",
        watch.stderr()
    );
    std::fs::write(env.path("study/while-watching.dcm"), b"x").expect("write");
    wait_trail(&env, "while-watching.dcm");
    assert_ne!(watch.stop(), Some(2), "a clean stop");
}

/// Files `segments` directories of 200 characters deep, one per depth from `from` to
/// `to`: findings whose records are 4 to 9 KB as syslog messages.
fn long_paths(env: &Env, from: usize, to: usize) -> Vec<String> {
    let segment = "d".repeat(200);
    (from..=to)
        .map(|depth| {
            let dir = vec![segment.as_str(); depth].join("/");
            let name = format!("study/{dir}/deep-{depth}.dcm");
            std::fs::create_dir_all(env.path(&format!("study/{dir}"))).expect("mkdir");
            std::fs::write(env.path(&name), b"x").expect("write");
            format!("deep-{depth}.dcm")
        })
        .collect()
}

/// The destination's cursor: the next record the collector is held to have.
fn cursor_seq(env: &Env) -> u64 {
    std::fs::read_to_string(env.home.join("delivery/syslog.cursor"))
        .unwrap_or_else(|_| "0 0".into())
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a cursor")
}

/// Every record before the cursor was kept by the collector: none counted as delivered
/// that it threw away.
fn assert_none_skipped(env: &Env, collector: &Collector, said: &str) {
    let cursor = cursor_seq(env);
    let kept: std::collections::BTreeSet<u64> = collector.seqs().into_iter().collect();
    let skipped: Vec<u64> = (0..cursor).filter(|seq| !kept.contains(seq)).collect();
    assert!(
        skipped.is_empty(),
        "records {skipped:?} count as delivered (cursor {cursor}) but the collector threw them away ({:?}): {said}",
        collector.discarded()
    );
}

/// Before (review rv33-deliver): a collector that reads a message over its size limit
/// and then closes in order (RFC 5425 has no acknowledgement) made the pace shrink to
/// batches of one record, and a batch of one it read and threw away counted as
/// delivered: 26 findings of 4.4 to 8.9 KB never reached the SIEM while stderr said
/// "resumed" (records 11, 12, 15 and 16 here). Now a batch that ends with a message over
/// the size every receiver takes ends with a small mark the collector must read too: a
/// large record thrown away stays a failure, said with what to do (lower
/// `max_message_bytes`), and nothing is skipped.
#[test]
fn a_collector_that_throws_away_large_messages_is_a_failure_never_a_skip() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::discarding("127.0.0.1:0", 4096);
    forward_to(&env, collector.addr);
    let watch = Serve::run(&env, &["watch"]);
    let names = long_paths(&env, 6, 8);
    std::fs::write(env.path("study/after-the-deep-ones.dcm"), b"x").expect("write");
    for name in &names {
        wait_trail(&env, name);
    }
    wait_trail(&env, "after-the-deep-ones.dcm");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !watch.stderr().contains("lower [forward] max_message_bytes")
        && cursor_seq(&env) < trail_records(&env.home)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_none_skipped(&env, &collector, &watch.stderr());
    assert!(
        watch.stderr().contains("lower [forward] max_message_bytes"),
        "the failure is said with what to do (cursor {} of {} records, kept {:?}, thrown away {:?}): {}",
        cursor_seq(&env),
        trail_records(&env.home),
        collector.seqs(),
        collector.discarded(),
        watch.stderr()
    );
    assert_ne!(watch.stop(), Some(2), "a clean stop");
    assert_none_skipped(&env, &collector, "after the stop");
}

/// With `max_message_bytes` at what the collector takes, every record arrives: whole,
/// or over the limit as a stand-in that says its size, its digest and where it is whole.
#[test]
fn records_over_max_message_bytes_arrive_as_stand_ins_and_none_is_skipped() {
    let env = Env::new();
    env.profile(&[]);
    let collector = Collector::discarding("127.0.0.1:0", 4096);
    append_config(
        &env,
        &format!(
            "[forward]\nto = \"tcp://{}\"\nmax_message_bytes = 4096\n",
            collector.addr
        ),
    );
    let watch = Serve::run(&env, &["watch"]);
    let names = long_paths(&env, 6, 10);
    for name in &names {
        wait_trail(&env, name);
    }
    let records = trail_records(&env.home);
    assert!(
        collector.wait(Duration::from_secs(120), |m| {
            let seqs: std::collections::BTreeSet<u64> = m
                .iter()
                .filter(|m| !common::is_batch_mark(m))
                .map(|m| common::syslog_seq(m))
                .collect();
            (0..records).all(|seq| seqs.contains(&seq))
        }),
        "records 0 to {} did not all arrive: got {:?}, thrown away {:?}; {}",
        records - 1,
        collector.seqs(),
        collector.discarded(),
        watch.stderr()
    );
    assert!(
        collector.discarded().is_empty(),
        "{:?}",
        collector.discarded()
    );
    let stand_ins: Vec<String> = collector
        .messages()
        .into_iter()
        .filter(|m| m.contains("a stand-in"))
        .collect();
    assert!(!stand_ins.is_empty(), "{}", watch.stderr());
    for m in &stand_ins {
        assert!(
            m.len() <= 4096
                && m.contains("max_message_bytes")
                && m.contains("pacsguard audit show")
                && m.contains("BLAKE3 digest"),
            "{m}"
        );
    }
    assert!(
        watch.wait_for("as stand-ins", Duration::from_secs(10)),
        "the limit reached is said: {}",
        watch.stderr()
    );
    // And recorded on the trail, naming the records (session 35).
    wait_trail(&env, "went as stand-ins to the collector");
    assert_ne!(watch.stop(), Some(2), "a clean stop");
    assert_none_skipped(&env, &collector, "after the stop");
}

/// `audit forward` takes the same limit (`--max-message-bytes`, as `[forward]
/// max_message_bytes`): a record over it arrives as a stand-in, said; a limit outside
/// RFC 5425's range is refused naming the option (exit 2).
#[test]
fn audit_forward_sends_records_over_max_message_bytes_as_stand_ins() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 6);
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let collector = Collector::discarding("127.0.0.1:0", 2048);
    let to = format!("tcp://{}", collector.addr);
    let refused = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "100",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--max-message-bytes"),
        "{}",
        stderr(&refused)
    );
    // What this run sends: the record that names its stand-ins goes at the next.
    let records = trail_records(&env.home);
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "2048",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("went as stand-ins"),
        "{}",
        stderr(&out)
    );
    assert!(
        collector.wait(Duration::from_secs(30), |m| m.len() as u64 >= records),
        "{:?}",
        collector.seqs()
    );
    assert!(
        collector.discarded().is_empty(),
        "{:?}",
        collector.discarded()
    );
    let mut seqs = collector.seqs();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(seqs.len() as u64 >= records, "{seqs:?}");
    assert!(
        collector
            .messages()
            .iter()
            .any(|m| m.contains("a stand-in")),
        "{:?}",
        collector.messages()
    );
}

/// Session 35: a stand-in carried no action and no path, so a collector's alert rule
/// on them (here: the finding's kind as the DICOM message's EventTypeCode, the action
/// and severity, the path's beginning) never fired for the largest findings; and the
/// trail did not say which records went as stand-ins. Now every finding that reaches
/// the collector, whole or as a stand-in, fires the same rule, and the trail names the
/// stand-ins by sequence number.
#[test]
fn a_collector_rule_on_the_action_and_path_fires_for_stand_ins_and_the_trail_names_them() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 7);
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let findings: Vec<serde_json::Value> = std::fs::read_to_string(env.home.join("audit.log"))
        .expect("trail")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .filter(|r: &serde_json::Value| r["finding"]["path"].as_str().is_some())
        .collect();
    assert!(!findings.is_empty());
    let collector = Collector::discarding("127.0.0.1:0", 2048);
    let to = format!("tcp://{}", collector.addr);
    let records = trail_records(&env.home);
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "2048",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        collector.wait(Duration::from_secs(30), |m| m.len() as u64 >= records),
        "{:?}",
        collector.seqs()
    );
    let messages = collector.messages();
    let mut stood_in = Vec::new();
    for record in &findings {
        let seq = record["seq"].as_u64().expect("seq");
        let message = messages
            .iter()
            .find(|m| !common::is_batch_mark(m) && common::syslog_seq(m) == seq)
            .unwrap_or_else(|| panic!("record {seq} did not arrive"));
        let path = record["finding"]["path"].as_str().expect("path");
        // The collector's rule: the kind, the action, the severity, the path's beginning.
        let rule = [
            format!(
                "csd-code=\"{}\" codeSystemName=\"PacsGuard\"",
                record["finding"]["kind"].as_str().expect("kind")
            ),
            format!("action=\"{}\"", record["action"].as_str().expect("action")),
            format!(
                "severity=\"{}\"",
                record["finding"]["severity"].as_str().expect("severity")
            ),
            format!(
                "ParticipantObjectID=\"file://{}",
                &path[..path.len().min(40)]
            ),
        ];
        for part in &rule {
            assert!(
                message.contains(part),
                "record {seq}: no {part} in {message}"
            );
        }
        if message.contains("stand-in=\"true\"") {
            stood_in.push(seq);
        }
    }
    assert!(
        !stood_in.is_empty(),
        "a finding on a long path went as a stand-in"
    );
    let trail = std::fs::read_to_string(env.home.join("audit.log")).expect("trail");
    let said = trail
        .lines()
        .find(|l| l.contains("went as stand-ins"))
        .unwrap_or_else(|| panic!("the trail does not say which records went as stand-ins"));
    for seq in &stood_in {
        assert!(
            said.contains(&format!(" {seq} (")),
            "record {seq} not named: {said}"
        );
    }
}

/// Review of session 37: the names of stand-ins a stopped guard (or a killed `audit
/// forward`) left in `HOME/delivery-unrecorded.txt` waited for the next `watch` or
/// `serve`; `audit forward` never read that note. Now it records the note beside its own
/// stand-ins and removes it, once.
#[test]
fn audit_forward_records_the_delivery_note_a_stop_left_and_removes_it() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 6);
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let note = env.home.join("delivery-unrecorded.txt");
    // Long enough that the note this run writes (its names, then this) is longer than a
    // reader's cap of old: its own words were then told from the stop's by a read cut
    // short, and recorded twice, the stop's end cut (review rv38-lead).
    let left = format!(
        "the stop at 2026-12-06T10:00:00Z: (success) syslog delivery: 1 record(s) over max_message_bytes 2048 went as stand-ins to the collector tcp://siem:514 (destination syslog): records 3 (4100 bytes); {} END-OF-THE-STOP-NOTE",
        "and more words of the stop ".repeat(120)
    );
    std::fs::write(&note, &left).expect("a stopped guard's note");
    let collector = Collector::discarding("127.0.0.1:0", 2048);
    let to = format!("tcp://{}", collector.addr);
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "2048",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!note.exists(), "recorded, then removed");
    let trail = std::fs::read_to_string(env.home.join("audit.log")).expect("trail");
    let noted: Vec<&str> = trail
        .lines()
        .filter(|l| {
            l.contains("delivery records noted for the trail: the stop at 2026-12-06T10:00:00Z")
        })
        .collect();
    assert_eq!(noted.len(), 1, "{trail}");
    assert!(
        noted[0].contains("records 3 (4100 bytes)") && noted[0].contains("END-OF-THE-STOP-NOTE"),
        "the stop's note whole: {}",
        noted[0]
    );
    // This run's own stand-ins are named once, not in the note's words too.
    let own: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains(&format!("went as stand-ins to the collector {to}")))
        .collect();
    assert_eq!(own.len(), 1, "{trail}");
    assert!(!own[0].contains("noted for the trail"), "{}", own[0]);
    // A second run finds no note and records nothing more about it.
    let again = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "2048",
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let trail = std::fs::read_to_string(env.home.join("audit.log")).expect("trail");
    assert_eq!(
        trail
            .matches("delivery records noted for the trail")
            .count(),
        1,
        "{trail}"
    );
}

/// Review rv38-lead: a directory (or a link) planted at `HOME/delivery-unrecorded.txt`
/// kept every run's own stand-in names from the trail: the run read the note first and
/// gave up. The names are recorded all the same, and the note's trouble said.
#[test]
fn a_planted_delivery_note_keeps_no_stand_in_name_from_the_trail() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 6);
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let note = env.home.join("delivery-unrecorded.txt");
    std::fs::create_dir(&note).expect("a directory planted at the note");
    let collector = Collector::discarding("127.0.0.1:0", 2048);
    let to = format!("tcp://{}", collector.addr);
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &to,
        "--max-message-bytes",
        "2048",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("delivery-unrecorded.txt"),
        "{}",
        stderr(&out)
    );
    let trail = std::fs::read_to_string(env.home.join("audit.log")).expect("trail");
    assert!(
        trail
            .lines()
            .any(|l| l.contains(&format!("went as stand-ins to the collector {to}"))),
        "the run's own names are on the trail"
    );
}

/// Review rv39b: a delivery note whose lock is planted (a directory) or held, on a run
/// that sent no stand-ins, was neither recorded nor said: exit 0, not a word. It is a
/// warning naming the lock, the note kept for the next run or start.
#[test]
fn a_delivery_note_that_cannot_be_locked_is_said_and_kept() {
    let env = Env::new();
    env.profile(&[]);
    let note = env.home.join("delivery-unrecorded.txt");
    std::fs::write(
        &note,
        "the stop at 2026-12-06T10:00:00Z: (failure) records 7 to 9 undelivered",
    )
    .expect("a stopped guard's note");
    std::fs::create_dir(env.home.join("delivery-unrecorded.lock")).expect("planted");
    let collector = Collector::discarding("127.0.0.1:0", 8192);
    let to = format!("tcp://{}", collector.addr);
    let out = env.run(&["audit", "forward", "--to", &to]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("delivery-unrecorded.lock")
            && stderr(&out).contains("not recorded on the trail"),
        "{}",
        stderr(&out)
    );
    assert!(note.exists(), "kept for the next run");
}

/// Review of session 34: without `--max-message-bytes`, `audit forward` used the
/// default (8,192) and ignored `[forward] max_message_bytes = 2048`, sending records of
/// 2.4 to 4.8 KB whole to a collector that truncates at 2,048. The flag wins, else the
/// config, else the default.
#[test]
fn audit_forward_without_the_flag_takes_max_message_bytes_from_the_config() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 6);
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let collector = Collector::discarding("127.0.0.1:0", 2048);
    let to = format!("tcp://{}", collector.addr);
    append_config(
        &env,
        &format!("[forward]\nto = \"{to}\"\nmax_message_bytes = 2048\n"),
    );
    let records = trail_records(&env.home);
    let out = env.run(&["audit", "forward", "--to", &to]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("went as stand-ins"),
        "the config's limit is used and said: {}",
        stderr(&out)
    );
    assert!(
        collector.wait(Duration::from_secs(30), |m| m.len() as u64 >= records),
        "{:?}",
        collector.seqs()
    );
    assert!(
        collector.discarded().is_empty(),
        "nothing over the config's 2,048 bytes: {:?}",
        collector.discarded()
    );
}

/// Review rv33-deliver: the record of a destination failing for `FAILING_RECORDED_AFTER`
/// was unit-tested only. With the time set small (a debug build's knob, no sleep), a
/// collector that refuses every connection is recorded on the trail as an `audit`
/// failure naming it, once.
#[test]
fn a_destination_failing_for_long_is_recorded_on_the_trail() {
    let env = Env::new();
    env.profile(&[]);
    let port = ReservedPort::new();
    forward_to(&env, port.addr);
    let watch = Serve::run_with(
        &env,
        &["watch"],
        &[("PACSGUARD_TEST_FAILING_RECORDED_AFTER_MS", "1")],
    );
    wait_trail(&env, "has failed for");
    let trail = std::fs::read_to_string(env.home.join("audit.log")).expect("trail");
    let recorded: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("has failed for"))
        .collect();
    assert_eq!(recorded.len(), 1, "once: {recorded:?}");
    assert!(
        recorded[0].contains(&format!("the collector tcp://{}", port.addr))
            && recorded[0].contains("\"failure\""),
        "{}",
        recorded[0]
    );
    assert_ne!(watch.stop(), Some(2), "a clean stop");
}

/// A collector that reads ahead, as one `recv(65536)` into a buffer does: frames parsed
/// from what it holds, and at a frame over `limit` bytes the frame thrown away, what else
/// is already there read too (nothing left unread, so its close is in order, no reset)
/// and the connection closed. The records it kept and the one it threw away (per
/// connection) are kept for the test.
struct ReadingAhead {
    addr: std::net::SocketAddr,
    kept: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    thrown: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl ReadingAhead {
    fn start(limit: usize) -> ReadingAhead {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("collector binds");
        let addr = listener.local_addr().expect("addr");
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let thrown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sink, bin) = (kept.clone(), thrown.clone());
        // Ends with the test process (the listener is never closed before).
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                read_ahead(stream, limit, &sink, &bin);
            }
        });
        ReadingAhead { addr, kept, thrown }
    }

    fn kept(&self) -> Vec<u64> {
        self.kept.lock().expect("test fixture").clone()
    }

    fn thrown(&self) -> Vec<u64> {
        self.thrown.lock().expect("test fixture").clone()
    }
}

fn read_ahead(
    mut stream: std::net::TcpStream,
    limit: usize,
    kept: &std::sync::Mutex<Vec<u64>>,
    thrown: &std::sync::Mutex<Vec<u64>>,
) {
    use std::io::Read as _;
    let mut held = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok(read) = stream.read(&mut buf) else {
            return;
        };
        if read == 0 {
            return;
        }
        held.extend_from_slice(&buf[..read]);
        while let Some(space) = held.iter().position(|&b| b == b' ') {
            let Some(len) = std::str::from_utf8(&held[..space])
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
            else {
                return;
            };
            if len > limit {
                let frame = String::from_utf8_lossy(&held[space + 1..]).into_owned();
                if frame.contains("seq=\"") {
                    thrown
                        .lock()
                        .expect("test fixture")
                        .push(common::syslog_seq(&frame));
                }
                // Reads on what already came (read ahead), keeps none of it, closes.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                return;
            }
            let Some(message) = held.get(space + 1..space + 1 + len) else {
                break;
            };
            let message = String::from_utf8_lossy(message).into_owned();
            if !common::is_batch_mark(&message) {
                kept.lock()
                    .expect("test fixture")
                    .push(common::syslog_seq(&message));
            }
            held.drain(..space + 1 + len);
        }
    }
}

/// Before (session 34): the end-of-batch mark only shows a collector read on after a
/// large message when the collector reads a frame at a time; one that reads ahead
/// (`recv(65536)`) holds the mark with the large frame, throws both away and closes in
/// order, and the batch counted as delivered: the large record and the ones after it
/// in the same read never reached the SIEM while `audit forward` said they were sent.
/// Now a batch with a message over the size every receiver takes waits
/// (`LARGE_BATCH_HOLD`) for a collector that closes by itself before it ends the
/// connection: such a close is a failure, said with what to do, and nothing is skipped.
#[test]
fn a_collector_that_reads_ahead_and_throws_away_a_large_message_skips_nothing() {
    let env = Env::new();
    env.profile(&[]);
    long_paths(&env, 6, 6);
    std::fs::write(env.path("study/after-the-deep-one.dcm"), b"x").expect("write");
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let collector = ReadingAhead::start(2048);
    // The hold set long (a debug build's knob): the collector's thread must close
    // within it, and a loaded CI machine may schedule it late (review of session 34).
    let out = common::pacsguard()
        .env("PACSGUARD_TEST_LARGE_BATCH_HOLD_MS", "30000")
        .arg("--home")
        .arg(&env.home)
        .args([
            "audit",
            "forward",
            "--to",
            &format!("tcp://{}", collector.addr),
            "--max-message-bytes",
            "65000",
        ])
        .output()
        .expect("pacsguard runs");
    assert!(
        stderr(&out).contains("TEST HOOK: a batch with a large message holds 30000 ms"),
        "the hook is said: {}",
        stderr(&out)
    );
    let cursor = cursor_seq(&env);
    let kept: std::collections::BTreeSet<u64> = collector.kept().into_iter().collect();
    let skipped: Vec<u64> = (0..cursor).filter(|seq| !kept.contains(seq)).collect();
    assert!(
        skipped.is_empty(),
        "records {skipped:?} count as delivered (cursor {cursor}) but the collector threw {:?} away: {}",
        collector.thrown(),
        stderr(&out)
    );
    assert!(!collector.thrown().is_empty(), "the deep record is large");
    assert!(
        stderr(&out).contains("max_message_bytes"),
        "the failure says what to do: {}",
        stderr(&out)
    );
}

/// Before (session 34): one run of `audit forward` was one connection with everything
/// after the cursor, all or nothing, so a collector that cuts each connection after a
/// few kilobytes (a size limit, a proxy) took none of it, run after run. Now a run
/// paces its batches as a running guard does: a batch cut short makes the next smaller,
/// each confirmed batch moves the cursor, and every record arrives.
#[test]
fn audit_forward_to_a_collector_that_cuts_connections_short_delivers_every_record() {
    let env = Env::new();
    env.profile(&[]);
    for round in 0..8 {
        std::fs::write(env.path(&format!("study/backlog-{round}.dcm")), b"x").expect("write");
    }
    let check = env.run(&["check"]);
    assert_ne!(check.status.code(), Some(2), "{}", stderr(&check));
    let collector = Collector::cutting("127.0.0.1:0", 4000);
    let out = env.run(&[
        "audit",
        "forward",
        "--to",
        &format!("tcp://{}", collector.addr),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = trail_records(&env.home);
    assert_eq!(cursor_seq(&env), records, "{}", stderr(&out));
    assert!(
        collector.wait(Duration::from_secs(30), |m| {
            let seqs: std::collections::BTreeSet<u64> = m
                .iter()
                .filter(|m| !common::is_batch_mark(m))
                .map(|m| common::syslog_seq(m))
                .collect();
            seqs.len() as u64 >= records
        }),
        "{:?}",
        collector.seqs()
    );
}

/// A collector on `listener` that closes each connection once it read `bytes` (a size
/// limit, a proxy): the frames it read whole are kept, in order.
fn cutting_on(
    listener: std::net::TcpListener,
    bytes: u64,
) -> std::sync::Arc<std::sync::Mutex<Vec<u64>>> {
    use std::io::Read as _;
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = kept.clone();
    // Ends with the test process.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut read = Vec::new();
            if stream.take(bytes).read_to_end(&mut read).is_err() {
                continue;
            }
            let mut rest = read.as_slice();
            while let Some(space) = rest.iter().position(|&b| b == b' ') {
                let Some(len) = std::str::from_utf8(&rest[..space])
                    .ok()
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    break;
                };
                let Some(message) = rest.get(space + 1..space + 1 + len) else {
                    break;
                };
                let message = String::from_utf8_lossy(message);
                if !common::is_batch_mark(&message) {
                    sink.lock()
                        .expect("test fixture")
                        .push(common::syslog_seq(&message));
                }
                rest = &rest[space + 1 + len..];
            }
        }
    });
    kept
}

/// The stop's last delivery shrinks a batch cut short as the running loop does: a
/// backlog written while the collector was down meets, at the stop, a collector that
/// cuts each connection after 4,000 bytes, and every record still arrives within the
/// stop's deadline, nothing said undelivered.
#[test]
fn the_stops_last_delivery_shrinks_a_batch_cut_short() {
    let env = Env::new();
    env.profile(&[]);
    let port = ReservedPort::new();
    forward_to(&env, port.addr);
    let serve = Serve::start(&env);
    assert!(
        serve.wait_for("syslog delivery: ", Duration::from_secs(60)),
        "{}",
        serve.stderr()
    );
    for round in 0..8 {
        std::fs::write(env.path(&format!("study/backlog-{round}.dcm")), b"x").expect("write");
    }
    wait_trail(&env, "backlog-7.dcm");
    let kept = cutting_on(port.listen(), 4000);
    let (code, said) = serve.stop_said();
    assert_ne!(code, Some(2), "{said}");
    assert!(!said.contains("were not confirmed delivered"), "{said}");
    let records = trail_records(&env.home);
    assert_eq!(cursor_seq(&env), records, "{said}");
    let kept: std::collections::BTreeSet<u64> =
        kept.lock().expect("test fixture").iter().copied().collect();
    assert_eq!(kept, (0..records).collect(), "{said}");
}

/// Session 35: an empty `fleet/` (no `console.json`) made `watch` exit 2 with
/// "fleet/console.json: vanished before it could be read". Now a `fleet/` holding none of
/// the enrolment's files is no enrolment: the guard guards, says so and records it on
/// the trail with how to enrol or remove it; a `fleet/` holding only part of one is
/// refused (exit 2) naming the file that is missing and what to do.
#[test]
fn an_empty_fleet_directory_is_no_enrolment_said_and_recorded_and_a_partial_one_is_refused() {
    let env = Env::new();
    env.profile(&[]);
    std::fs::create_dir(env.home.join("fleet")).expect("mkdir fleet");
    let watch = Serve::run(&env, &["watch"]);
    wait_trail(&env, "holds no enrolment");
    let said = watch.stderr();
    assert!(
        said.contains("pacsguard watch: warning: ")
            && said.contains("holds no enrolment")
            && said.contains("pacsguard enroll"),
        "{said}"
    );
    assert_ne!(watch.stop(), Some(2), "a clean stop");
    std::fs::write(env.home.join("fleet/console.json"), "{}").expect("write");
    let out = env.run(&["watch"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cert.pem") && stderr(&out).contains("not whole"),
        "{}",
        stderr(&out)
    );
}
