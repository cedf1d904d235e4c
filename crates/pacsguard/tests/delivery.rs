//! `serve` delivers the trail to the syslog collector of `[forward]` as it runs (issues 13
//! and 14): through the same loop as the console's delivery, woken by new checkpoints,
//! a collector that is down waited out, nothing lost and nothing sent twice across a
//! clean stop and a start. Each test starts its own collector on loopback.

mod common;

use std::time::{Duration, Instant};

use common::process::{Running, guard};
use common::{Collector, Env, append_config, closed_port, stderr, trail_records};

/// The guards these tests start, once they guard.
struct Serve;

impl Serve {
    fn start(env: &Env) -> Running {
        guard(env, &["serve", "--listen", "127.0.0.1:0"])
    }

    /// `pacsguard ARGS` (`serve` or `watch`).
    fn run(env: &Env, args: &[&str]) -> Running {
        guard(env, args)
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
    let addr = closed_port();
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
    let collector = Collector::start(&addr.to_string());
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
    let addr = closed_port();
    forward_to(&env, addr);
    let serve = Serve::start(&env);
    std::fs::write(env.path("study/before-stop.dcm"), b"x").expect("write");
    wait_trail(&env, "before-stop.dcm");
    let (code, said) = serve.stop_said();
    assert_ne!(code, Some(2), "{said}");
    assert!(
        said.contains(&format!("were not delivered to the collector tcp://{addr}"))
            && said.contains("they go at the next start"),
        "{said}"
    );
    let collector = Collector::start(&addr.to_string());
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
            let seqs: std::collections::BTreeSet<u64> =
                m.iter().map(|m| common::syslog_seq(m)).collect();
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
