//! `pacsguard gateway --config FILE`: the DICOM gateway in the foreground, until SIGTERM
//! or SIGINT.
//!
//! The associations run on a tokio runtime on a thread of its own; their events and
//! quarantine copies come back over a channel to this thread, which owns the session
//! (the trail's one writer), writes them in order, prints them, and signs a checkpoint
//! at most every [`SIGN_INTERVAL`] while records arrive and once more at the stop.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use pacsguard_engine::{Home, Session};
use pacsguard_events::{Action, Event, Finding, Outcome, Severity, escape_bytes};
use pacsguard_gateway::{Evidence, Gateway, GatewayConfig, Reloader, config::MAX_CONFIG_BYTES};

use crate::signals;

/// How often what the gateway recorded is made durable and signed while records arrive.
pub const SIGN_INTERVAL: Duration = Duration::from_secs(1);

enum Item {
    Event(Box<Event>),
    Quarantine {
        name: String,
        bytes: Vec<u8>,
        findings: Vec<Finding>,
        forwarded: bool,
    },
}

/// The gateway's hands on the trail: a channel to the session's thread, and how many
/// items were handed in after it stopped taking them.
struct Channel(Mutex<Option<Sender<Item>>>, std::sync::atomic::AtomicU64);

impl Channel {
    fn new(sender: Sender<Item>) -> Channel {
        Channel(
            Mutex::new(Some(sender)),
            std::sync::atomic::AtomicU64::new(0),
        )
    }

    /// Takes nothing more: what is handed in from now on is said LOST at once, so the
    /// writer can drain what is queued to its end (nothing slips in behind its drain and
    /// is dropped with the receiver in silence).
    fn close(&self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    fn send(&self, item: Item) {
        let sender = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The receiver is gone only once the session stopped (a screening that outlived
        // the runtime's shutdown, review s15-r16): what comes now cannot be kept, and
        // is said (it was dropped in silence), each with the running count.
        let refused = match sender.as_ref() {
            Some(sender) => sender.send(item).err().map(|e| e.0),
            None => Some(item),
        };
        if let Some(item) = refused {
            let lost = self.1.fetch_add(1, Ordering::Relaxed) + 1;
            crate::outlet::say(format!(
                "pacsguard gateway: LOST ({lost} so far): {} was handed in after the evidence writer stopped and cannot be kept",
                describe(&item)
            ));
        }
    }
}

impl Evidence for Channel {
    fn record(&self, event: Event) {
        self.send(Item::Event(Box::new(event)));
    }

    fn say(&self, line: &str) {
        crate::outlet::say(line.to_owned());
    }

    fn quarantine(&self, name: &str, bytes: Vec<u8>, findings: Vec<Finding>, forwarded: bool) {
        self.send(Item::Quarantine {
            name: name.to_owned(),
            bytes,
            findings,
            forwarded,
        });
    }
}

/// The configuration and the SHA-256 of its bytes (hex): the start and each reload
/// record it, so the trail proves which rules were in force when (review s9-r16).
fn read_config(path: &Path) -> Result<(GatewayConfig, String)> {
    use sha2::Digest as _;
    let bytes = pacsguard_fs_read(path)?;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
    let config = GatewayConfig::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((config, digest))
}

/// What the configuration says that is not an error (a default cut to fit another
/// setting), for the record of a start or a reload: "; warning: ..." each.
fn warnings(config: &GatewayConfig) -> String {
    config
        .warnings
        .iter()
        .map(|w| format!("; warning: {w}"))
        .collect()
}

/// The configuration's warnings on standard error, one line each, at start.
fn say_warnings(warnings: &[String]) {
    for w in warnings {
        crate::outlet::direct("pacsguard gateway: warning: ", w);
    }
}

/// The configuration's bytes, bounded (a FIFO or `/dev/zero` is not read forever).
fn pacsguard_fs_read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        return Err(anyhow!("{}: not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(anyhow!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The gateway's lockout state file in the home (`gateway/lockouts.json`), its
/// directory made (0700: it names usernames and addresses) if missing.
fn lockout_file(home: &Home) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = home.gateway_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(pacsguard_gateway::lockout_file::LOCKOUT_FILE_NAME))
}

/// `pacsguard gateway --hash-passcode`: one line from standard input (a passcode for a
/// route's `users`), held to the console's rules for a password, printed as the
/// console's Argon2id hash.
pub fn hash_passcode() -> Result<ExitCode> {
    use std::io::{BufRead as _, Read as _};
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(pacsguard_gateway::identity::MAX_PASSCODE_BYTES as u64 + 2)
        .read_line(&mut line)
        .context("reading the passcode from standard input")?;
    let passcode = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if passcode.len() > pacsguard_gateway::identity::MAX_PASSCODE_BYTES {
        return Err(anyhow!(
            "the passcode is longer than {} bytes",
            pacsguard_gateway::identity::MAX_PASSCODE_BYTES
        ));
    }
    pacsguard_console::password::check_new(passcode).map_err(|e| anyhow!("{e}"))?;
    let hash = pacsguard_console::password::hash(passcode).map_err(|e| anyhow!("{e}"))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// A gateway serving on a tokio runtime on a thread of its own, until its stop flag.
pub struct Running {
    pub addrs: Vec<std::net::SocketAddr>,
    pub reloader: Reloader,
    pub aborter: pacsguard_gateway::Aborter,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Waits for the gateway's end (asked by its stop flag): associations in flight get
    /// `STOP_GRACE`, screening still running finishes within it.
    pub fn join(self) {
        let _ = self.thread.join();
    }

    /// [`Running::join`], unless `hurry` is set meanwhile (a second stop signal to
    /// `serve`, review r31-watch): then the associations in flight are ended at once and
    /// screening still running is not waited for ([`pacsguard_gateway::Aborter::hurry`]),
    /// each recorded saying so. Whether the stop was cut short.
    pub fn join_or_hurry(self, hurry: &std::sync::atomic::AtomicBool) -> bool {
        let mut hurried = false;
        while !self.thread.is_finished() {
            if !hurried && hurry.load(Ordering::Relaxed) {
                hurried = true;
                self.aborter.hurry();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.thread.join();
        hurried
    }
}

/// The nice value the gateway's screening threads run at (Linux: per thread). Screening
/// is beside the relay, so the relay must win a core: on two cores its threads took
/// them and relayed throughput fell to 39% of direct (bench/README.md, session 19). The
/// screening still has every core the relay leaves idle.
///
/// At most [`MAX_SCREENING_NICE`]: a nice value weighs against every thread of the host
/// (the kernel has no "below my own threads only"), and a data set held until screened
/// has its sender waiting on it. At nice 10 (a tenth of a nice-0 thread's weight) a host
/// busy with other work starved screening ninefold: an 8 MiB cine screened in 4 s on an
/// idle machine passed 60 s beside six busy loops, and data sets were refused "not
/// screened in time" (session 49, r49-flake). At 3 the relay still takes two thirds of
/// a core it shares with screening, and screening keeps half its share of a busy host.
/// Where the kernel groups CPU time by session or cgroup (`sched_autogroup_enabled`, a
/// systemd unit's `CPUWeight`), the value weighs only inside the gateway's own group:
/// the starvation needs other work in the same group, as in a test run (review rv49-gate:
/// busy loops in their own sessions left nice 10 screening in time). The price of 3,
/// measured by that review on 2 cores under a flood of slow data sets: the relay at
/// about 5.1 MiB/s against 5.8 at nice 10, the host's own work left 47% of its CPU
/// against 62%; two screening threads at most either way.
pub const SCREENING_NICE: i32 = 3;

/// The highest [`SCREENING_NICE`] that keeps screening at least half the CPU weight of a
/// thread at the relay's priority (the kernel's `sched_prio_to_weight`: 1024 at nice 0,
/// 526 at 3, 423 at 4, 110 at 10), so that other work on the host slows screening at
/// most twice as much as it slows everything else.
pub const MAX_SCREENING_NICE: i32 = 3;

// A nice value past the bound is a build error, not a starved screening on a busy host.
const _: () = assert!(SCREENING_NICE > 0 && SCREENING_NICE <= MAX_SCREENING_NICE);

/// The runtime's blocking threads: passcode checks
/// (`pacsguard_gateway::identity::IDENTITY_CHECKS_AT_ONCE`) and upstream name lookups.
const BLOCKING_THREADS: usize = 8;

/// Run once on each screening thread: lowers its priority by [`SCREENING_NICE`]. A
/// failure (not seen: lowering one's own priority needs no privilege) leaves it at
/// the relay's.
fn screening_thread() {
    let _ = rustix::process::nice(SCREENING_NICE);
}

/// Binds the listeners of `config` and serves them until `stop`, the evidence handed to
/// `evidence`; the failure budgets of user identities kept in the home.
pub fn start(
    home: &Home,
    config: GatewayConfig,
    (rules, hashlist): (Option<PathBuf>, Option<PathBuf>),
    evidence: Arc<dyn Evidence>,
    actor: pacsguard_events::Actor,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Running> {
    if cfg!(debug_assertions)
        && let Ok(on) = std::env::var(pacsguard_gateway::relay::TEST_SCREEN_PANIC_VAR)
    {
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard gateway: TEST HOOK: the screening of a data set whose SOP Instance UID contains {on:?} panics (a debug build, {}); never in production",
            pacsguard_gateway::relay::TEST_SCREEN_PANIC_VAR
        );
    }
    if cfg!(debug_assertions)
        && let Ok(on) = std::env::var(pacsguard_gateway::relay::TEST_SCREEN_STALL_VAR)
    {
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard gateway: TEST HOOK: the screening of a data set whose SOP Instance UID contains {on:?} holds its thread until its deadline (a debug build, {}); never in production",
            pacsguard_gateway::relay::TEST_SCREEN_STALL_VAR
        );
    }
    if cfg!(debug_assertions)
        && let Ok(on) = std::env::var(pacsguard_gateway::relay::TEST_SCREEN_STALL_WHILE_VAR)
    {
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard gateway: TEST HOOK: a held screening is let go once {on:?} is gone (a debug build, {}); never in production",
            pacsguard_gateway::relay::TEST_SCREEN_STALL_WHILE_VAR
        );
    }
    if cfg!(debug_assertions)
        && std::env::var_os(pacsguard_gateway::relay::TEST_SCREENING_QUEUE_VAR).is_some()
    {
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard gateway: TEST HOOK: the screening queue has {} places (a debug build, {}); never in production",
            pacsguard_gateway::relay::screening_queue_places(),
            pacsguard_gateway::relay::TEST_SCREENING_QUEUE_VAR
        );
    }
    // Data sets are screened with exactly what `scan` screens files with.
    let screener = Arc::new(pacsguard_engine::screener(rules, hashlist)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Screening has threads of its own (`pacsguard_gateway::SCREENING_THREADS`): the
        // blocking pool checks passcodes (at most IDENTITY_CHECKS_AT_ONCE) and looks
        // upstreams up, never held by a data set slow to screen.
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("starting the gateway's runtime")?;
    let gateway = runtime
        .block_on(Gateway::bind(config, screener, evidence, actor))
        .map_err(|(addr, e)| anyhow!("cannot start the listener on {addr}: {e}"))?
        // Passcodes of routes' users are Argon2id hashes made as the console makes them.
        .with_passcode_check(pacsguard_console::password::verify)
        // Screening threads yield the cores to the relay (see `screening_thread`).
        .with_screening_thread(screening_thread)
        // Locks and trusted addresses outlive a restart (a lock a restart forgot would be
        // a guesser's fresh budget, and the right sender's trust lost).
        .with_lockout_file(lockout_file(home)?)?;
    let addrs = gateway.local_addrs();
    let reloader = gateway.reloader();
    let aborter = gateway.aborter();
    let thread = std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            runtime.block_on(gateway.serve(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
            // Screening still running finishes (its evidence is kept) within the grace.
            runtime.shutdown_timeout(pacsguard_gateway::STOP_GRACE);
        })
        .context("starting the gateway's thread")?;
    Ok(Running {
        addrs,
        reloader,
        aborter,
        thread,
    })
}

pub fn run(
    home: Home,
    config: PathBuf,
    rules: Option<PathBuf>,
    hashlist: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let hangup = signals::reload_on_hangup()?;
    let stop = signals::stop_on_termination()?;
    let (gateway_config, digest) = read_config(&config)?;
    let warned = warnings(&gateway_config);
    let warned_lines = gateway_config.warnings.clone();
    let mut session = Session::open(home)?;
    let (tx, rx) = channel();
    let channel = Arc::new(Channel::new(tx));
    // Not kept alive here (its end is how the writer learns the relay ended).
    let closer = Arc::downgrade(&channel);
    // Stdout behind a bounded queue: the count of lines it dropped is recorded through
    // the channel when it moves again (a weak hold: the channel's end stays the relay's).
    let outlet = {
        let (channel, actor) = (Arc::downgrade(&channel), session.actor().clone());
        crate::outlet::Outlet::start(
            "gateway",
            Box::new(move |text: &str| {
                if let Some(channel) = channel.upgrade() {
                    channel.record(Event::new(
                        actor.clone(),
                        Action::Gateway,
                        Outcome::Failure,
                        text.to_owned(),
                    ));
                }
            }),
        )
    };
    let json = &Printer { json, outlet };
    let evidence: Arc<dyn Evidence> = channel;
    let running = start(
        session.home(),
        gateway_config,
        (rules, hashlist),
        Arc::clone(&evidence),
        session.actor().clone(),
        Arc::clone(&stop),
    )?;
    let listening: Vec<String> = running.addrs.iter().map(ToString::to_string).collect();
    session.record_events(vec![Event::new(
        session.actor().clone(),
        Action::Gateway,
        Outcome::Success,
        format!(
            "gateway started with {} (SHA-256 {digest}): listening on {}{warned}",
            config.display(),
            listening.join(", ")
        ),
    )])?;
    session.sign()?;
    for addr in &running.addrs {
        crate::outlet::direct("pacsguard gateway: ", &format!("listening on {addr}"));
    }
    say_warnings(&warned_lines);
    drop(evidence);
    let relay = running;
    let mut on_hangup = |session: &mut Session| {
        if hangup.swap(false, Ordering::Relaxed) {
            reload(session, &config, &relay.reloader, json)
        } else {
            Ok(())
        }
    };
    let (panic_on, panic_written) = test_evidence_hook();
    let mut in_hand = None;
    let kept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        keep_evidence(
            &mut session,
            &rx,
            json,
            &mut on_hangup,
            (
                &mut in_hand,
                (panic_on.as_deref(), panic_written.as_deref()),
            ),
        )
    }));
    let attention = match kept {
        Ok(Ok(attention)) => attention,
        Ok(Err(e)) => {
            // Evidence that cannot be kept stops the gateway: it must not relay
            // unrecorded, so the associations in flight are aborted now, not given
            // their grace (review s15-r16: they were answered "success" for up to
            // STOP_GRACE with no record). What they hand in meanwhile is tried and
            // counted like after a panic (it was dropped uncounted).
            relay.aborter.abort_in_flight();
            let what = format!(
                "the gateway's evidence writer failed while keeping {}",
                in_hand.as_deref().unwrap_or("nothing")
            );
            let message = after_writer_stopped(
                &mut session,
                &format!("{what}: {e:#}"),
                u64::from(in_hand.is_some()),
                (&stop, relay, &closer),
                &rx,
                json,
            );
            // The engine's error stays underneath (a tampered trail is said as such).
            return Err(e.context(message));
        }
        Err(panic) => {
            let what = format!(
                "the gateway's evidence writer panicked ({}) while keeping {}",
                crate::guard_panic::panic_message(panic.as_ref()),
                in_hand.as_deref().unwrap_or("nothing")
            );
            return Err(anyhow!(after_writer_stopped(
                &mut session,
                &what,
                u64::from(in_hand.is_some()),
                (&stop, relay, &closer),
                &rx,
                json,
            )));
        }
    };
    relay.join();
    // What came in while the relay stopped: each tried, each that cannot be kept
    // counted (before review s15-r16 the first failure dropped the rest uncounted).
    let mut attention_after = false;
    let (mut lost, mut failed) = (0u64, None);
    while let Ok(item) = rx.try_recv() {
        match keep(&mut session, item, json, &mut |_| {}) {
            Ok(attention) => attention_after |= attention,
            Err(e) => {
                lost += 1;
                failed.get_or_insert(e);
            }
        }
    }
    // What stdout dropped and has not said yet: said and recorded before the stop's record.
    let said = crate::outlet::said_at_stop(&mut session, &json.outlet, "gateway", Action::Gateway);
    if let Some(e) = failed {
        let message = format!(
            "gateway stopped: {lost} record(s) or quarantine copies handed in while it stopped could not be kept and are LOST (the gateway's records were printed on the output when they happened)"
        );
        crate::outlet::say(format!("pacsguard gateway: {message}"));
        let _ = session.record_events(vec![Event::new(
            session.actor().clone(),
            Action::Gateway,
            Outcome::Failure,
            message.clone(),
        )]);
        let _ = session.sign();
        return Err(e.context(message));
    }
    said?;
    session.record_events(vec![Event::new(
        session.actor().clone(),
        Action::Gateway,
        Outcome::Success,
        "gateway stopped".to_owned(),
    )])?;
    session.sign()?;
    Ok(if attention || attention_after {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// SIGHUP: the configuration file read again and handed to the running gateway for new
/// associations (those in flight finish under the rules that admitted them). A file that
/// does not read, does not validate, or changes what only a restart can (listeners,
/// limits) is refused with its reason on stderr and the trail; the running rules stay.
fn reload(session: &mut Session, path: &Path, reloader: &Reloader, json: &Printer) -> Result<()> {
    let (result, detail) = reloaded(path, reloader);
    // Through stderr's outlet: this is the trail's writer (a stopped stderr reader held
    // it up, and with it every record, session 17).
    crate::outlet::say(format!("pacsguard gateway: {detail}"));
    let event = Event::new(session.actor().clone(), Action::Gateway, result, detail);
    keep(session, Item::Event(Box::new(event)), json, &mut |_| {})?;
    session.sign()?;
    Ok(())
}

/// The configuration read again and handed to the running gateway: the record's outcome
/// and detail.
fn reloaded(path: &Path, reloader: &Reloader) -> (Outcome, String) {
    let outcome = read_config(path).and_then(|(config, digest)| {
        // A reload may turn a listener to passing TLS through (no screening on it): said
        // on the record as the start says it (review s19-r16).
        let passed: Vec<String> = config
            .listeners
            .iter()
            .filter(|l| !l.pass_through.is_empty())
            .map(|l| {
                let to: Vec<&str> = l.pass_through.iter().map(|p| p.upstream.as_str()).collect();
                format!(
                    "; listener {} passes TLS through unopened to {}: {} on its connections (no content screening, no AE title, user identity or presentation context checks)",
                    l.listen,
                    to.join(", "),
                    pacsguard_gateway::PASS_THROUGH_NOT_INSPECTED
                )
            })
            .collect();
        let warned = warnings(&config);
        reloader
            .reload(config)
            .map_err(|e| anyhow!("{} (SHA-256 {digest}): {e}", path.display()))?;
        Ok((digest, passed.concat() + &warned))
    });
    match outcome {
        Ok((digest, passed)) => (
            Outcome::Success,
            format!(
                "configuration reloaded from {} (SHA-256 {digest}): new associations follow it; those in flight finish under the rules that admitted them{passed}",
                path.display()
            ),
        ),
        Err(e) => (
            Outcome::Failure,
            format!("configuration reload refused, the running configuration is kept: {e:#}"),
        ),
    }
}

/// Test-only, and only in a debug build (`cfg!(debug_assertions)`: never the shipped
/// release binary): the standalone gateway's evidence writer panics when it takes a record
/// whose detail contains this variable's value (an empty one matches nothing), so a test
/// can show what a panic there does (no real trigger is known). Said at start.
pub const TEST_EVIDENCE_PANIC_VAR: &str = "PACSGUARD_TEST_EVIDENCE_PANIC";

/// Test-only as [`TEST_EVIDENCE_PANIC_VAR`]: the evidence writer panics right after the
/// record whose detail contains this variable's value was written to the trail (before
/// it is printed), so a test can show that such a record is not counted as lost.
pub const TEST_EVIDENCE_PANIC_WRITTEN_VAR: &str = "PACSGUARD_TEST_EVIDENCE_PANIC_WRITTEN";

/// The values of [`TEST_EVIDENCE_PANIC_VAR`] and [`TEST_EVIDENCE_PANIC_WRITTEN_VAR`] in a
/// debug build, each announced.
fn test_evidence_hook() -> (Option<String>, Option<String>) {
    if !cfg!(debug_assertions) {
        return (None, None);
    }
    let hook = |var: &str, when: &str| {
        let on = std::env::var(var).ok().filter(|v| !v.is_empty())?;
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard gateway: TEST HOOK: the evidence writer panics {when} a record whose detail contains {on:?} (a debug build, {var}); never in production"
        );
        Some(on)
    };
    (
        hook(TEST_EVIDENCE_PANIC_VAR, "at"),
        hook(TEST_EVIDENCE_PANIC_WRITTEN_VAR, "right after it wrote"),
    )
}

/// What an item is, for the account of a panic while it was being kept.
fn describe(item: &Item) -> String {
    match item {
        Item::Event(event) => format!("the record \"{}\"", escape_bytes(event.detail.as_bytes())),
        Item::Quarantine { name, .. } => {
            format!("the quarantine copy of {}", escape_bytes(name.as_bytes()))
        }
    }
}

/// The standalone gateway's evidence writer (this thread, the trail's one writer)
/// panicked or failed: the item it held is lost. The gateway stops cleanly rather than relaying on
/// with no evidence: its listeners close at once (a sender's connection is refused, its
/// log says so, and it tries again later or elsewhere; nothing is answered "success"
/// unrecorded), the associations in flight get their `STOP_GRACE`, and what they hand in
/// meanwhile is still written. Said on stderr and recorded on the trail with the count
/// of what was lost; the message of the error the command ends with (exit 2).
fn after_writer_stopped(
    session: &mut Session,
    what: &str,
    in_hand: u64,
    (stop, relay, closer): (
        &std::sync::atomic::AtomicBool,
        Running,
        &std::sync::Weak<Channel>,
    ),
    rx: &Receiver<Item>,
    json: &Printer,
) -> String {
    stop.store(true, Ordering::Relaxed);
    let detail = format!(
        "{what}: the gateway stops admitting and stops (exit 2); what the associations in flight hand in until they have stopped is still recorded"
    );
    crate::outlet::say(format!("pacsguard gateway: {detail}"));
    let mut lost = in_hand;
    // Whether the item was kept (a second panic is caught too, and counted).
    let keep_caught = |session: &mut Session, item: Item| {
        let kept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            keep(session, item, json, &mut |_| {})
        }));
        matches!(kept, Ok(Ok(_)))
    };
    let actor = session.actor().clone();
    let record = |detail: String| {
        Item::Event(Box::new(Event::new(
            actor.clone(),
            Action::Gateway,
            Outcome::Failure,
            detail,
        )))
    };
    lost += u64::from(!keep_caught(session, record(detail.clone())));
    relay.join();
    // A screening that outlived the runtime's shutdown may still hand in: from now on
    // it is said LOST by the channel, and what is queued is all drained here.
    if let Some(channel) = closer.upgrade() {
        channel.close();
    }
    while let Ok(item) = rx.try_recv() {
        lost += u64::from(!keep_caught(session, item));
    }
    let message = if lost > 0 {
        format!(
            "{what}; {lost} record(s) or quarantine copies could not be kept and are LOST (the gateway's records were printed on the output when they happened)"
        )
    } else {
        what.to_owned()
    };
    // What stdout dropped and has not said yet: said and recorded before the stop's record.
    if let Err(e) = crate::outlet::said_at_stop(session, &json.outlet, "gateway", Action::Gateway) {
        crate::outlet::say(format!(
            "pacsguard gateway: the count of dropped output lines could not be recorded: {e}"
        ));
    }
    let _ = keep_caught(session, record(format!("gateway stopped: {message}")));
    if let Err(e) = session.sign() {
        crate::outlet::say(format!(
            "pacsguard gateway: the last checkpoint could not be signed: {e}"
        ));
    }
    crate::outlet::say(format!("pacsguard gateway: {message}"));
    message
}

/// Writes what the gateway hands over until it stops; whether anything needed attention.
/// `in_hand`: what is being kept now and not yet on the trail (named, and counted as
/// lost, if this panics or fails); `panic_on`, `panic_written`: [`TEST_EVIDENCE_PANIC_VAR`],
/// [`TEST_EVIDENCE_PANIC_WRITTEN_VAR`].
fn keep_evidence(
    session: &mut Session,
    rx: &Receiver<Item>,
    json: &Printer,
    on_hangup: &mut dyn FnMut(&mut Session) -> Result<()>,
    (in_hand, (panic_on, panic_written)): (&mut Option<String>, (Option<&str>, Option<&str>)),
) -> Result<bool> {
    let mut attention = false;
    let mut unsigned = false;
    let mut last_sign = Instant::now();
    loop {
        on_hangup(session)?;
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(item) => {
                *in_hand = Some(describe(&item));
                if let (Some(on), Item::Event(event)) = (panic_on, &item)
                    && event.detail.contains(on)
                {
                    panic!("{TEST_EVIDENCE_PANIC_VAR}: a test-only panic of the evidence writer");
                }
                // On the trail: from here on a panic loses nothing (it is not in hand).
                let mut written = |detail: &str| {
                    *in_hand = None;
                    if let Some(on) = panic_written
                        && detail.contains(on)
                    {
                        panic!(
                            "{TEST_EVIDENCE_PANIC_WRITTEN_VAR}: a test-only panic of the evidence writer after a record was written"
                        );
                    }
                };
                attention |= keep(session, item, json, &mut written)?;
                unsigned = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if unsigned && last_sign.elapsed() >= SIGN_INTERVAL {
            session.sign()?;
            unsigned = false;
            last_sign = Instant::now();
        }
    }
    Ok(attention)
}

/// Records one item and prints it; whether it needs attention (a warning or an alert).
/// The trail first: `written` is told (with the record's detail, or the copy's name) once
/// the item is on the trail, before anything else is done with it, so a panic or an
/// error after that point never counts it as lost (issue 16: it was printed before it
/// was written, and a panic there counted a written record as lost). A record the trail
/// refuses is still printed: the output is then its only copy.
fn keep(
    session: &mut Session,
    item: Item,
    json: &Printer,
    written: &mut dyn FnMut(&str),
) -> Result<bool> {
    match item {
        Item::Event(event) => {
            let attention = event
                .finding
                .as_ref()
                .is_some_and(|f| f.severity != Severity::Info);
            let line = line_of(&event, json.json);
            let detail = event.detail.clone();
            if let Err(e) = session.record_events(vec![*event]) {
                // Not on the trail (counted LOST by the caller): the output is where
                // this record survives, as the loss message says.
                json.outlet.line(line);
                return Err(e.into());
            }
            written(&detail);
            json.outlet.line(line);
            Ok(attention)
        }
        Item::Quarantine {
            name,
            bytes,
            findings,
            forwarded,
        } => {
            let record = session.quarantine_received(&name, &bytes, &findings, forwarded)?;
            written(&name);
            let line = format!(
                "quarantined {} as SHA-256 {}",
                escape_bytes(name.as_bytes()),
                record.sha256
            );
            if !json.json {
                json.outlet.line(line);
            }
            Ok(false)
        }
    }
}

fn print(event: &Event, json: &Printer) {
    // The trail's writer, or an association, calls this: it never waits for stdout
    // (`OUTLET_QUEUE_BYTES`: a line that does not fit is dropped and counted).
    json.outlet.line(line_of(event, json.json));
}

/// The line printed for a record: its JSON with `--json`, else a line of text.
fn line_of(event: &Event, json: bool) -> String {
    if json {
        serde_json::to_string(event).unwrap_or_default()
    } else if let Some(f) = &event.finding {
        format!(
            "{} {} {}: {}",
            f.severity.as_str(),
            f.kind.as_str(),
            pacsguard_events::escape_path(&f.path),
            f.detail
        )
    } else {
        let object = event
            .objects
            .first()
            .map(|o| pacsguard_events::escape_path(o))
            .unwrap_or_default();
        format!(
            "gateway {object}: {}",
            escape_bytes(event.detail.as_bytes())
        )
    }
}

/// How the gateway prints: `--json` or text, through the outlet (a stalled stdout never
/// holds up the trail's writer nor an association).
pub struct Printer {
    pub json: bool,
    pub outlet: Arc<crate::outlet::Outlet>,
}

/// The gateway inside `pacsguard serve --gateway FILE`: the same listeners, routes and
/// limits as `pacsguard gateway`, its records written by the guard's session (the trail
/// has one writer: the watcher, which takes them from its inbox as it takes the
/// console's), its quarantine copies put into the home's vault. SIGHUP reloads the file
/// as for the standalone gateway.
pub struct InServe {
    running: Running,
    stop: Arc<std::sync::atomic::AtomicBool>,
    evidence: Arc<Inboxed>,
    reloads: std::thread::JoinHandle<()>,
}

impl InServe {
    pub fn start(
        home: &Home,
        config: &Path,
        // `signals::reload_on_hangup`, called by `serve` before any thread started.
        hangup: Arc<std::sync::atomic::AtomicBool>,
        inbox: pacsguard_events::Inbox,
        actor: pacsguard_events::Actor,
        out: Printer,
    ) -> Result<InServe> {
        let (gateway_config, digest) = read_config(config)?;
        let warned = warnings(&gateway_config);
        let warned_lines = gateway_config.warnings.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let evidence = Arc::new(Inboxed {
            inbox,
            home: home.clone(),
            actor: actor.clone(),
            out,
            stop: Arc::clone(&stop),
            attention: std::sync::atomic::AtomicBool::new(false),
        });
        let running = start(
            home,
            gateway_config,
            (None, None),
            Arc::clone(&evidence) as Arc<dyn Evidence>,
            actor.clone(),
            Arc::clone(&stop),
        )?;
        let listening: Vec<String> = running.addrs.iter().map(ToString::to_string).collect();
        evidence.push(Event::new(
            actor,
            Action::Gateway,
            Outcome::Success,
            format!(
                "gateway started within serve with {} (SHA-256 {digest}): listening on {}{warned}",
                config.display(),
                listening.join(", ")
            ),
        ));
        // Inside `serve` the guard's records may already be flowing: one piece, after any
        // outlet line on the same file is whole (a `2>&1` reader sees whole lines).
        for addr in &running.addrs {
            crate::outlet::direct("pacsguard gateway: ", &format!("listening on {addr}"));
        }
        say_warnings(&warned_lines);
        let reloads = {
            let (stop, evidence, config) = (
                Arc::clone(&stop),
                Arc::clone(&evidence),
                config.to_path_buf(),
            );
            let reloader = running.reloader.clone();
            std::thread::Builder::new()
                .name("gateway-reload".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if hangup.swap(false, Ordering::Relaxed) {
                            let (outcome, detail) = reloaded(&config, &reloader);
                            crate::outlet::say(format!("pacsguard gateway: {detail}"));
                            evidence.record(Event::new(
                                evidence.actor.clone(),
                                Action::Gateway,
                                outcome,
                                detail,
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
                .context("starting the gateway's reload thread")?
        };
        Ok(InServe {
            running,
            stop,
            evidence,
            reloads,
        })
    }

    /// Stops the gateway (associations in flight get `STOP_GRACE`, unless `hurry`, a
    /// second stop signal, cuts it short) while the guard still takes its records, and
    /// records the stop; whether anything needed attention.
    pub fn stop(self, hurry: &std::sync::atomic::AtomicBool) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        let aborter = self.running.aborter.clone();
        let hurried = self.running.join_or_hurry(hurry);
        let detail = stopped_detail(hurried, aborter.ended_at_stop());
        let _ = self.reloads.join();
        self.evidence.push(Event::new(
            self.evidence.actor.clone(),
            Action::Gateway,
            Outcome::Success,
            detail,
        ));
        self.evidence.attention.load(Ordering::Relaxed)
    }
}

/// The gateway's stop record under `serve`: whether a second stop signal cut its
/// `STOP_GRACE` short, and what the stop really ended (`ended`, each recorded on its
/// own); it said "the associations in flight were aborted" with none in flight.
fn stopped_detail(hurried: bool, ended: usize) -> String {
    match (hurried, ended) {
        (false, 0) => "gateway stopped".to_owned(),
        (false, n) => format!(
            "gateway stopped ({n} connection(s) still in flight after its STOP_GRACE ended, each recorded)"
        ),
        (true, 0) => {
            "gateway stopped (a second stop signal cut its STOP_GRACE short: no connection was left in flight to end)"
                .to_owned()
        }
        (true, n) => format!(
            "gateway stopped (a second stop signal cut its STOP_GRACE short: {n} connection(s) in flight ended, each recorded)"
        ),
    }
}

/// How long a record of the gateway inside `serve` waits for room in a full inbox (the
/// watcher writes it at least every `INBOX_DRAIN_INTERVAL`, even in a long step) before
/// the gateway stops: it must not relay unrecorded.
pub const FULL_INBOX_WAIT: Duration = Duration::from_secs(30);

/// The gateway's evidence inside `serve`: printed as `gateway` prints it, and handed to
/// the guard's inbox. Once the inbox is nearly full (`INBOX_HEADROOM`) new associations
/// are rejected transiently until the guard has caught up; a record that finds it full
/// waits up to [`FULL_INBOX_WAIT`]; one refused (the guard stopped, or still full) stops
/// the gateway: it must not relay unrecorded.
struct Inboxed {
    inbox: pacsguard_events::Inbox,
    home: Home,
    actor: pacsguard_events::Actor,
    out: Printer,
    stop: Arc<std::sync::atomic::AtomicBool>,
    attention: std::sync::atomic::AtomicBool,
}

impl Inboxed {
    fn push(&self, event: Event) {
        // Held back (this association waits) until the watcher writes the inbox.
        if let Err(e) = self.inbox.push_waiting(event, FULL_INBOX_WAIT)
            && !self.stop.swap(true, Ordering::Relaxed)
        {
            crate::outlet::say(format!(
                "pacsguard gateway: the guard's trail takes no more records ({e}): the gateway stops, it must not relay unrecorded"
            ));
        }
    }
}

impl Evidence for Inboxed {
    fn has_room(&self) -> bool {
        self.inbox.has_room()
    }

    fn say(&self, line: &str) {
        crate::outlet::say(line.to_owned());
    }

    fn record(&self, event: Event) {
        if event
            .finding
            .as_ref()
            .is_some_and(|f| f.severity != Severity::Info)
        {
            self.attention.store(true, Ordering::Relaxed);
        }
        print(&event, &self.out);
        self.push(event);
    }

    fn quarantine(&self, name: &str, bytes: Vec<u8>, findings: Vec<Finding>, forwarded: bool) {
        match pacsguard_engine::quarantine_received(
            &self.home,
            &self.actor,
            name,
            &bytes,
            &findings,
            forwarded,
        ) {
            Ok((record, event)) => {
                if !self.out.json {
                    self.out.outlet.line(format!(
                        "quarantined {} as SHA-256 {}",
                        escape_bytes(name.as_bytes()),
                        record.sha256
                    ));
                }
                self.push(event);
            }
            Err(e) => {
                // As the standalone gateway: a copy that cannot be kept stops it.
                self.push(Event::new(
                    self.actor.clone(),
                    Action::Quarantine,
                    Outcome::Failure,
                    format!(
                        "the quarantine copy of {} could not be kept: {e}; the gateway stops",
                        escape_bytes(name.as_bytes())
                    ),
                ));
                self.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 49 (r49-flake): at nice 10 a loaded host starved screening ninefold (the
    /// kernel's weight at 10 is 110 of 1024) and held data sets passed their deadline.
    /// The screening threads still yield to the relay, yet keep half a nice-0 thread's
    /// weight against the rest of the host.
    #[test]
    fn the_threads_that_screen_yield_to_the_relay_without_starving_on_a_busy_host() {
        // The kernel's `sched_prio_to_weight` for nice 0..=10 (kernel/sched/core.c).
        const WEIGHTS: [u32; 11] = [1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110];
        let nice = usize::try_from(super::SCREENING_NICE).expect("a nice value of 0 or more");
        assert!(nice > 0, "screening yields to the relay");
        let weight = WEIGHTS.get(nice).copied().unwrap_or(0);
        assert!(
            weight * 2 >= WEIGHTS[0],
            "at nice {nice} screening weighs {weight} against 1024: a busy host starves it"
        );
        let limit = usize::try_from(super::MAX_SCREENING_NICE).expect("0 or more");
        assert!(
            WEIGHTS.get(limit + 1).is_some_and(|w| w * 2 < WEIGHTS[0]),
            "MAX_SCREENING_NICE is the highest with half the weight"
        );
    }

    /// Review r32-watch: the stop record said "the associations in flight were aborted"
    /// whenever a second signal came, with none in flight too. It says what was ended.
    #[test]
    fn the_stop_record_says_what_the_stop_really_ended() {
        let none = stopped_detail(true, 0);
        assert!(
            none.contains("a second stop signal")
                && !none.contains("aborted")
                && !none.contains("ended,"),
            "{none}"
        );
        assert!(stopped_detail(true, 2).contains("2 connection(s) in flight ended"));
        assert_eq!(stopped_detail(false, 0), "gateway stopped");
        assert!(
            stopped_detail(false, 1)
                .contains("1 connection(s) still in flight after its STOP_GRACE")
        );
    }

    /// Review s15-r16: what the gateway handed in after the evidence writer had stopped
    /// (a screening that outlived the runtime's shutdown) was dropped in silence; now
    /// each is counted (and said on stderr).
    #[test]
    fn what_comes_after_the_writer_stopped_is_counted_as_lost() {
        use std::sync::mpsc::channel as channel_pair;
        let (tx, rx) = channel_pair();
        let channel = Channel::new(tx);
        let event = || {
            Event::new(
                pacsguard_events::Actor {
                    user: "test".into(),
                    uid: 0,
                    sudo_user: None,
                },
                Action::Gateway,
                Outcome::Success,
                "relayed".to_owned(),
            )
        };
        channel.record(event());
        assert!(rx.try_recv().is_ok(), "handed over while the writer takes");
        assert_eq!(channel.1.load(Ordering::Relaxed), 0);
        drop(rx);
        channel.record(event());
        channel.quarantine("dicom://x", vec![1], Vec::new(), true);
        assert_eq!(channel.1.load(Ordering::Relaxed), 2, "each loss counted");
        // Closed by the writer before its last drain: counted, not queued unread.
        let (tx, rx) = channel_pair();
        let channel = Channel::new(tx);
        channel.close();
        channel.record(event());
        assert!(rx.try_recv().is_err(), "nothing queued behind the drain");
        assert_eq!(channel.1.load(Ordering::Relaxed), 1);
    }
}
