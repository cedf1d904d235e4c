//! `pacsguard serve`: the guard and the console in one process.
//!
//! The engine's watcher runs on a thread of its own, exactly as `pacsguard watch` runs
//! it; the console's HTTPS server runs on this thread beside it. SIGTERM or SIGINT stops
//! the server (open requests finish), then the watcher (which writes the console's last
//! events and signs its final checkpoint). If the watcher stops by itself (an error), the
//! console stops too: a console must not show a guard that no longer runs.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pacsguard_console::{Console, GuardState, SystemClock};
use pacsguard_engine::{Config, Home, Session, WatchOutput, WatchRequest};
use pacsguard_events::Finding;
use pacsguard_profile::Policy;

use crate::output;
use crate::signals;

/// Where the console listens without `--listen` or `[console] listen`: this host only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// How often the trail is verified for the overview page (what was appended since, and
/// a slice of the old records: `pacsguard_audit::FULL_PASS_PERIOD`).
pub const TRAIL_VERIFY_INTERVAL: Duration = Duration::from_secs(60);

/// Test-only, and only in debug builds: names a file holding a number of seconds the
/// console's clock runs ahead of the system's (read at each look; absent or unreadable:
/// none). A browser test moves the console past its 15-minute idle limit this way
/// instead of sleeping. A release build has no such code (`cfg(debug_assertions)`), so
/// the variable does nothing in production; a debug build that honours it says so on
/// its first line.
#[cfg_attr(not(debug_assertions), allow(dead_code))]
pub const TEST_CLOCK_FILE_VAR: &str = "PACSGUARD_TEST_CLOCK_FILE";

/// The console's clock: the system's, or in a debug build under [`TEST_CLOCK_FILE_VAR`]
/// the system's moved by the file's offset.
fn console_clock() -> Arc<dyn pacsguard_console::Clock> {
    #[cfg(debug_assertions)]
    if let Some(file) = std::env::var_os(TEST_CLOCK_FILE_VAR) {
        let file = PathBuf::from(file);
        say(&format!(
            "TEST CLOCK: the console's time runs ahead by the seconds in {} (debug build, {TEST_CLOCK_FILE_VAR}); never in production",
            file.display()
        ));
        return Arc::new(test_clock::OffsetClock { file });
    }
    Arc::new(SystemClock)
}

#[cfg(debug_assertions)]
mod test_clock {
    use pacsguard_console::{Clock, SystemClock};

    /// Longest offset file read (a number of seconds).
    const MAX_OFFSET_FILE_BYTES: u64 = 32;

    #[derive(Debug)]
    pub(super) struct OffsetClock {
        pub(super) file: std::path::PathBuf,
    }

    impl Clock for OffsetClock {
        fn now(&self) -> i64 {
            use std::io::Read as _;
            let mut text = String::new();
            let offset = std::fs::File::open(&self.file)
                .and_then(|f| f.take(MAX_OFFSET_FILE_BYTES).read_to_string(&mut text))
                .ok()
                .and_then(|_| text.trim().parse::<i64>().ok())
                .unwrap_or(0);
            SystemClock.now().saturating_add(offset)
        }
    }
}

/// The watcher's output: printed as `watch` prints it, and counted for the overview.
struct ServeOutput {
    lines: output::WatchLines,
    guard: Arc<GuardState>,
}

impl WatchOutput for ServeOutput {
    fn finding(&mut self, finding: &Finding) {
        self.guard.finding(finding);
        self.lines.finding(finding);
    }

    fn notice(&mut self, text: &str) {
        self.guard.set_alive(true, text);
        self.lines.notice(text);
    }
}

/// The console's hands on the guard: an acceptance is run by the watcher (as the
/// CLI's `accept` beside it is), the trail is read from the home.
#[derive(Debug)]
struct Hands {
    requests: pacsguard_engine::Requests,
    home: Home,
    /// `[console] four_eyes`: an acceptance into a `static` root needs two approvers.
    four_eyes: bool,
}

impl pacsguard_console::Guardian for Hands {
    fn accept(
        &self,
        who: &str,
        paths: Vec<PathBuf>,
        reason: &str,
        expected: Option<Vec<String>>,
    ) -> Result<pacsguard_console::Accepted, String> {
        let actor = pacsguard_events::Actor {
            user: who.to_string(),
            uid: nix::unistd::geteuid().as_raw(),
            sudo_user: None,
        };
        let request = pacsguard_engine::Request::Accept(pacsguard_engine::AcceptRequest {
            passphrase: None,
            all: paths.is_empty(),
            paths,
            reason: reason.to_string(),
            expected,
        });
        let answer = self.requests.submit(request, actor)?;
        match answer.recv() {
            Ok(pacsguard_engine::Reply::Accept(Ok(report))) => Ok(pacsguard_console::Accepted {
                generation: report.generation,
                accepted: report.accepted,
            }),
            Ok(pacsguard_engine::Reply::Accept(Err(e))) => Err(e.to_string()),
            Ok(pacsguard_engine::Reply::Refused(reason)) => Err(reason),
            Ok(_) | Err(_) => Err("the guard stopped before it answered".into()),
        }
    }

    /// Read from the signed profile at each acceptance (a root profiled since the start
    /// counts); a profile that cannot be read asks for two approvers (fail closed).
    fn needs_second_approver(&self, root: &str) -> bool {
        if !self.four_eyes {
            return false;
        }
        crate::four_eyes::covers_static(&self.home, root)
    }

    fn quarantine_list(&self) -> Result<Vec<serde_json::Value>, String> {
        let records = pacsguard_engine::Vault::new(self.home.quarantine_dir())
            .list()
            .map_err(|e| e.to_string())?;
        records
            .iter()
            .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            .collect()
    }

    /// Read only: the vault checks the copy's SHA-256 as a stream (`Vault::find`) and
    /// opens it; the console hashes it again as it reads it, never holding it whole.
    fn quarantine_copy(
        &self,
        prefix: &str,
    ) -> Result<(Vec<serde_json::Value>, pacsguard_console::VaultCopy), String> {
        let (records, file, len) = pacsguard_engine::Vault::new(self.home.quarantine_dir())
            .open_copy(prefix)
            .map_err(|e| e.to_string())?;
        let records = records
            .iter()
            .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, pacsguard_console::VaultCopy { file, len }))
    }

    /// Read from the end of the log (a binary search for `before`): a page costs the
    /// same however long the trail is.
    fn trail_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), String> {
        pacsguard_engine::audit_page(&self.home, before, limit)
            .map(|page| (page.records, page.older))
            .map_err(|e| e.to_string())
    }

    fn trail(&self, limit: usize) -> Result<Vec<serde_json::Value>, String> {
        let mut records = pacsguard_engine::audit_show(
            &self.home,
            None,
            &pacsguard_engine::ShowFilter::default(),
        )
        .map_err(|e| e.to_string())?;
        let keep = records.len().saturating_sub(limit);
        records.drain(..keep);
        records.reverse();
        Ok(records)
    }
}

/// One turn of the trail's verification for the overview: the whole trail at the first
/// turn (until it could start), then only what was appended plus a slice of the old records
/// (`pacsguard_audit::Follower`): the whole trail every minute was 39 s of CPU at a
/// million records in a debug build.
fn verify_trail(
    home: &Home,
    guard: &GuardState,
    follower: &mut Option<pacsguard_engine::AuditFollower>,
) {
    let shown = |report: &pacsguard_audit::VerifyReport, how: &str| {
        let mut detail = format!("{} records, {how}", report.records);
        if let Some(problem) = report.problems.first() {
            detail.push_str(&format!("; {problem}"));
        }
        guard.set_trail(report.is_intact(), detail);
    };
    match follower {
        Some(f) => match f.step() {
            Ok(followed) => shown(
                &followed.report,
                &format!(
                    "new records verified; full re-read at record {} (round {})",
                    followed.swept,
                    followed.full_passes + 1
                ),
            ),
            // The follower is kept: what it found stays reported (a trail found damaged
            // is intact again only after a person verifies it whole, at a restart), and
            // the next turn goes on from where it stood. Dropping it here let a log
            // moved away for a minute and put back "repaired" turn the overview intact.
            Err(e) => guard.set_trail(false, e.to_string()),
        },
        None => match pacsguard_engine::audit_follow(home, TRAIL_VERIFY_INTERVAL) {
            Ok((next, report)) => {
                shown(&report.report, "whole trail verified");
                *follower = next;
            }
            Err(e) => guard.set_trail(false, e.to_string()),
        },
    }
}

fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "pacsguard serve: {text}");
}

/// The host part of the URLs printed: the listening address, or this host's name when
/// it listens on every address.
fn url_host(addr: &SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => pacsguard_engine::hostname(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    }
}

/// The console's WebAuthn relying party: `[console] origin` (refused if it is not
/// `https://DOMAIN[:PORT]`), else `https://localhost:PORT` on a loopback address and
/// `https://HOSTNAME:PORT` otherwise (`None`, passkeys off, if that is no domain name).
fn relying_party(
    configured: Option<&str>,
    local: &SocketAddr,
) -> Result<Option<pacsguard_console::webauthn::RelyingParty>> {
    use pacsguard_console::webauthn::RelyingParty;
    if let Some(origin) = configured {
        return RelyingParty::from_origin(origin)
            .map(Some)
            .map_err(|e| anyhow!("[console] origin: {e}"));
    }
    let host = if local.ip().is_loopback() {
        "localhost".to_string()
    } else {
        pacsguard_engine::hostname()
    };
    Ok(RelyingParty::from_origin(&format!("https://{host}:{}", local.port())).ok())
}

pub fn run(
    home: Home,
    paths: Vec<PathBuf>,
    policy: Option<Policy>,
    listen: Option<String>,
    json: bool,
    fleet_listen: Option<String>,
) -> Result<ExitCode> {
    let stop = signals::stop_on_termination()?;
    let session = Session::open(home.clone())?;
    let config = Config::load(&home.config_path())?;
    let listen = listen
        .or(config.console.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| anyhow!("--listen {listen:?}: not ADDRESS:PORT ({e})"))?;
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr().context("the listening address")?;
    let host = url_host(&local);
    let mut names = vec!["localhost".to_string(), pacsguard_engine::hostname()];
    names.push(local.ip().to_string());
    names.push("127.0.0.1".into());
    names.push("::1".into());
    names.dedup();
    let tls = pacsguard_console::tls::load_or_generate(
        &home.dir,
        config.console.cert.as_deref(),
        config.console.key.as_deref(),
        names,
    )?;

    let guard = Arc::new(GuardState::new());
    if let Ok(store) = pacsguard_store::Store::open(&home.store_path())
        && let Ok(roots) = store.root_paths()
    {
        for root in roots {
            guard.add_root(&root);
        }
    }
    let relying_party = relying_party(config.console.origin.as_deref(), &local)?;
    let db = pacsguard_store::ConsoleDb::open(&home.store_path())?;
    let console = Arc::new(
        Console::new(
            db,
            console_clock(),
            session.inbox(),
            home.store_path(),
            &host,
            guard.clone(),
        )?
        .with_guardian(Arc::new(Hands {
            requests: session.requests(),
            home: home.clone(),
            four_eyes: config.console.four_eyes,
        }))
        .with_relying_party_if(relying_party.clone()),
    );

    let port = local.port();
    say(&format!("console at https://{host}:{port}/"));
    say(&format!(
        "certificate {} ({}), SHA-256 fingerprint {}",
        tls.cert_path.display(),
        if tls.generated {
            "generated now, self-signed"
        } else {
            "as configured or generated before"
        },
        tls.fingerprint
    ));
    match &relying_party {
        Some(rp) => say(&format!(
            "passkeys at {} (relying party {}; [console] origin changes it)",
            rp.origin, rp.id
        )),
        None => say(
            "passkeys are off: this host has no domain name for them; set [console] origin = \"https://HOST:PORT\"",
        ),
    }
    if let Some(token) = console.issue_setup_token()? {
        say(&format!(
            "no account exists yet: create the first administrator within {} minutes at https://{host}:{port}/setup?token={token}",
            pacsguard_console::auth::SETUP_TOKEN_LIFETIME / 60
        ));
    }

    // `check`, `accept` and `scan` started beside this process are run by the guard.
    let control = crate::control::Server::start(&home, session.requests())?;

    // The guard: the engine's watcher, as `pacsguard watch` runs it.
    let watch_stop = Arc::new(AtomicBool::new(false));
    let server_stop = Arc::new(AtomicBool::new(false));
    // The fleet: hosts reporting to this console, or this host reporting to its console.
    let console_key = config
        .console
        .key
        .clone()
        .unwrap_or_else(|| home.dir.join("console").join("key.pem"));
    let fleet = crate::fleet::start(
        &home,
        fleet_listen,
        (tls.cert_path.clone(), console_key),
        session.inbox(),
        server_stop.clone(),
    )?;

    let watcher = {
        let watch_stop = watch_stop.clone();
        let server_stop = server_stop.clone();
        let guard = guard.clone();
        let mut session = session;
        std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || {
                let mut out = ServeOutput {
                    lines: output::WatchLines::new(json),
                    guard: guard.clone(),
                };
                let request = WatchRequest { paths, policy };
                let result = session.watch(&request, &mut out, &watch_stop);
                let detail = match &result {
                    Ok(_) => "stopped".to_string(),
                    Err(e) => format!("stopped by an error: {e}"),
                };
                guard.set_alive(false, &detail);
                // Whatever stopped the guard stops the console.
                server_stop.store(true, Ordering::Relaxed);
                result
            })
            .context("starting the guard thread")?
    };

    // The trail's verification for the overview, and the purge of expired sessions,
    // every TRAIL_VERIFY_INTERVAL.
    let verifier = {
        let home = home.clone();
        let guard = guard.clone();
        let console = console.clone();
        let server_stop = server_stop.clone();
        std::thread::Builder::new()
            .name("trail-verify".into())
            .spawn(move || {
                let mut next = std::time::Instant::now();
                let mut follower: Option<pacsguard_engine::AuditFollower> = None;
                while !server_stop.load(Ordering::Relaxed) {
                    if std::time::Instant::now() >= next {
                        verify_trail(&home, &guard, &mut follower);
                        if let Err(e) = console.purge_expired_sessions() {
                            say(&format!("expired sessions not purged: {e}"));
                        }
                        next = std::time::Instant::now() + TRAIL_VERIFY_INTERVAL;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .context("starting the trail verification thread")?
    };

    // The signal stops the server first, so the console's last events are queued before
    // the watcher writes them and stops.
    let relay = {
        let stop = stop.clone();
        let server_stop = server_stop.clone();
        std::thread::Builder::new()
            .name("stop-relay".into())
            .spawn(move || {
                while !server_stop.load(Ordering::Relaxed) {
                    if stop.load(Ordering::Relaxed) {
                        server_stop.store(true, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .context("starting the stop relay")?
    };

    let router = pacsguard_console::http::app(console);
    let served =
        pacsguard_console::server::serve(listener, tls.config, router, server_stop.clone());
    server_stop.store(true, Ordering::Relaxed);
    watch_stop.store(true, Ordering::Relaxed);
    let _ = relay.join();
    let _ = verifier.join();
    fleet.join();
    let report = watcher
        .join()
        .map_err(|_| anyhow!("the guard thread panicked"))??;
    drop(control);
    served?;
    output::watch_stopped(&report);
    Ok(output::status(&report.counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intact(guard: &GuardState) -> (bool, String) {
        let trail = guard.snapshot().trail.expect("the trail was verified");
        (trail.intact, trail.detail)
    }

    /// Found in review s8-r13: a step that failed (the log moved away for a moment)
    /// dropped the follower, and the next turn verified the trail whole again: a trail
    /// found damaged, then put back as it was, showed intact on the overview again.
    #[test]
    fn a_trail_found_damaged_stays_damaged_after_a_step_that_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().join("home"));
        home.init().expect("init");
        let guard = GuardState::new();
        let mut follower = None;
        verify_trail(&home, &guard, &mut follower);
        assert!(intact(&guard).0, "{:?}", intact(&guard));
        assert!(follower.is_some());

        let log = home.dir.join("audit.log");
        let original = std::fs::read(&log).expect("log");
        let mut forged = original.clone();
        forged.extend_from_slice(b"{\"not\": \"a record of this trail\"}\n");
        std::fs::write(&log, &forged).expect("write");
        verify_trail(&home, &guard, &mut follower);
        assert!(!intact(&guard).0, "found: {:?}", intact(&guard));

        // Put back as it was, the log moved away for one turn in between.
        std::fs::write(&log, &original).expect("write");
        let away = home.dir.join("audit.log.away");
        std::fs::rename(&log, &away).expect("move away");
        verify_trail(&home, &guard, &mut follower);
        assert!(!intact(&guard).0);
        std::fs::rename(&away, &log).expect("move back");
        verify_trail(&home, &guard, &mut follower);
        let (intact, detail) = intact(&guard);
        assert!(
            !intact,
            "still damaged until verified whole by a person: {detail}"
        );
    }
}
