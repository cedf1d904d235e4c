//! `pacsguard serve`: the guard and the console in one process.
//!
//! The engine's watcher runs on a thread of its own, exactly as `pacsguard watch` runs
//! it; the console's HTTPS server runs on this thread beside it. SIGTERM or SIGINT stops
//! the server (open requests finish), then the watcher (which writes the console's last
//! events and signs its final checkpoint). If the watcher stops by itself (an error), the
//! console stops too: a console must not show a guard that no longer runs.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pacsguard_console::{Console, GuardState, NotAccepted, SystemClock};
use pacsguard_engine::{Config, Home, Session, Settled, WatchOutput, WatchRequest};
use pacsguard_events::Finding;
use pacsguard_profile::Policy;

use crate::output;
use crate::signals;

/// Where the console listens without `--listen` or `[console] listen`: this host only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// How often the trail is verified for the overview page (what was appended since, and
/// a slice of the old records: `pacsguard_audit::FULL_PASS_PERIOD`).
pub const TRAIL_VERIFY_INTERVAL: Duration = Duration::from_secs(60);

/// Test-only, and only in a build whose console has the `test-clock` feature and debug
/// assertions (`pacsguard_console::clock::TEST_CLOCK_BUILT_IN`: the debug binary `cargo
/// test` builds for this package's tests, the feature unified in from the
/// dev-dependency): names a file holding a number of seconds the console's clock runs
/// ahead of the system's (`pacsguard_console::clock::offset_clock`). A release build
/// (the shipped binary) never has debug assertions, so it has no such code whatever
/// features were asked for; a build that honours it says so on its first line.
pub const TEST_CLOCK_FILE_VAR: &str = "PACSGUARD_TEST_CLOCK_FILE";

/// The console's clock: the system's, or in a `test-clock` build under
/// [`TEST_CLOCK_FILE_VAR`] the system's moved by the file's offset.
fn console_clock() -> Arc<dyn pacsguard_console::Clock> {
    console_clock_in(std::env::var_os(TEST_CLOCK_FILE_VAR))
}

/// [`console_clock`] with the variable's value `file`.
fn console_clock_in(file: Option<std::ffi::OsString>) -> Arc<dyn pacsguard_console::Clock> {
    let Some(file) = file.map(PathBuf::from) else {
        return Arc::new(SystemClock);
    };
    match pacsguard_console::clock::offset_clock(file.clone()) {
        Some(clock) => {
            say(&format!(
                "TEST CLOCK: the console's time runs ahead by the seconds in {} (a test build, {TEST_CLOCK_FILE_VAR}); never in production",
                file.display()
            ));
            clock
        }
        None => Arc::new(SystemClock),
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

    /// The console's own digest of what its pages show, read in the watcher's turn.
    fn open_digest(&self, root: &str) -> Option<String> {
        Some(self.guard.open_findings().seen(root))
    }

    /// Settled in the guard's turn (whoever asked): the pages close what it settled.
    fn settled(&mut self, settled: Settled<'_>) {
        match settled {
            Settled::Accepted {
                scope,
                taken,
                except,
                started,
            } => self.guard.accepted_under(scope, taken, except, started),
            Settled::Intact { roots, started } => self.guard.intact(roots, started),
        }
    }

    fn scrub_progress(&mut self, p: &pacsguard_engine::ScrubProgress) {
        let time = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        self.guard.set_scrub(pacsguard_console::ScrubPosition {
            files_done: p.files_done,
            files_total: p.files_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            fraction: p.fraction(),
            started: time(p.started),
            estimated_end: p.estimated_end.map(time),
            complete: p.complete,
            seen: String::new(),
        });
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
        shown: pacsguard_console::ShownFindings,
    ) -> Result<pacsguard_console::Accepted, NotAccepted> {
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
            expected: Some(shown.paths),
            shown: Some(pacsguard_engine::Shown {
                root: shown.root,
                digest: shown.seen,
            }),
        });
        // The guard busy (its queue full), stopped, or unable to write its trail: nothing
        // the person could correct, and nothing done.
        let answer = self
            .requests
            .submit(request, actor)
            .map_err(NotAccepted::Unavailable)?;
        match answer.recv() {
            Ok(pacsguard_engine::Reply::Accept(Ok(report))) => Ok(pacsguard_console::Accepted {
                generation: report.generation,
                accepted: report.accepted,
            }),
            Ok(pacsguard_engine::Reply::Accept(Err(e))) if e.is_unavailable() => {
                Err(NotAccepted::Unavailable(e.to_string()))
            }
            Ok(pacsguard_engine::Reply::Accept(Err(e))) => Err(NotAccepted::Refused(e.to_string())),
            Ok(pacsguard_engine::Reply::Refused(reason)) => Err(NotAccepted::Unavailable(reason)),
            Ok(_) | Err(_) => Err(NotAccepted::Unavailable(
                "the guard stopped before it answered".into(),
            )),
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

    /// The trail verified whole (as `audit verify` verifies it) and the records that bind
    /// the store gathered from that very pass, each said proven or not. `serve` does
    /// this once at its start ([`start_verification`]); this is for a later caller.
    fn bound_records(&self) -> Result<pacsguard_console::TrailBindings, String> {
        gather_bindings(&self.home)
            .map(|(_, _, bindings, _)| bindings)
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

/// The trail's verification for the overview, from one turn to the next.
#[derive(Default)]
struct TrailFollow {
    follower: Option<pacsguard_engine::AuditFollower>,
    /// Every record was read and verified as it stood at this time or later: the start's
    /// whole verification, then the start of the last completed round of the rolling
    /// re-read. An old record edited in place (same length) after it is found only when
    /// the re-read reaches it (within `pacsguard_audit::FULL_PASS_PERIOD`): the overview
    /// says "as of" this time, never a bare "intact" (`audit verify` reads all now).
    whole_as_of: Option<std::time::SystemTime>,
    /// When the rolling re-read's current round began.
    round_started: Option<std::time::SystemTime>,
    passes: u64,
    /// The trail's store resets as the last whole verification listed them (`audit
    /// verify`'s lines), said on the log once each and on every overview trail line.
    store_resets: Vec<String>,
}

impl TrailFollow {
    /// Takes the store resets a whole verification listed; says on the log those not
    /// said before (a restart of the verification lists the same ones again).
    fn take_store_resets(&mut self, listed: Vec<String>) {
        for reset in listed.iter().filter(|r| !self.store_resets.contains(r)) {
            say(&format!(
                "store-reset {}",
                pacsguard_events::escape_bytes(reset.as_bytes())
            ));
        }
        self.store_resets = listed;
    }
}

/// What the overview's trail line adds of the store resets on the trail (nothing when
/// there are none): how many, and the newest as `audit verify` lists it. A clean slate
/// (`store reinit`) is never silent, here no more than in `audit verify`.
fn store_resets_shown(resets: &[String]) -> String {
    match resets.last() {
        None => String::new(),
        Some(newest) => format!(
            "; {} store reset(s) on the trail (`pacsguard audit verify` lists each), the newest: {newest}",
            resets.len()
        ),
    }
}

/// One turn of the trail's verification for the overview: the whole trail at the first
/// turn (until it could start), then only what was appended plus a slice of the old records
/// (`pacsguard_audit::Follower`): the whole trail every minute was 39 s of CPU at a
/// million records in a debug build.
fn verify_trail(home: &Home, guard: &GuardState, state: &mut TrailFollow) {
    let now = std::time::SystemTime::now();
    let shown = |report: &pacsguard_audit::VerifyReport,
                 how: &str,
                 whole: Option<std::time::SystemTime>| {
        let mut detail = format!("{} records, {how}", report.records);
        if let Some(problem) = report.problems.first() {
            detail.push_str(&format!("; {problem}"));
        }
        detail.push_str(&store_resets_shown(&state.store_resets));
        guard.set_trail_as_of(report.is_intact(), detail, whole);
    };
    match &mut state.follower {
        Some(f) => match f.step() {
            Ok(followed) => {
                if followed.full_passes > state.passes {
                    // A round completed: every record was re-read since it began.
                    state.passes = followed.full_passes;
                    state.whole_as_of = state.round_started;
                    state.round_started = Some(now);
                }
                shown(
                    &followed.report,
                    &format!(
                        "new records verified; rolling re-read of the old ones at record {} (round {})",
                        followed.swept,
                        followed.full_passes + 1
                    ),
                    state.whole_as_of,
                );
            }
            // The follower is kept: what it found stays reported (a trail found damaged
            // is intact again only after a person verifies it whole, at a restart), and
            // the next turn goes on from where it stood. Dropping it here let a log
            // moved away for a minute and put back "repaired" turn the overview intact.
            Err(e) => guard.set_trail_as_of(false, e.to_string(), state.whole_as_of),
        },
        None => match pacsguard_engine::audit_follow(home, TRAIL_VERIFY_INTERVAL) {
            Ok((next, report)) => {
                if next.is_some() {
                    state.whole_as_of = Some(now);
                    state.round_started = Some(now);
                }
                state.take_store_resets(report.store_resets);
                show_whole(guard, &report.report, &state.store_resets, now);
                state.follower = next;
            }
            Err(e) => guard.set_trail(false, e.to_string()),
        },
    }
}

/// The fields whose records bind the console's store (accounts, waiting requests,
/// sessions, enrolment links, the fleet's settings), quoted as they stand in a record's
/// line: the console's one list ([`pacsguard_console::bound::BINDING_FIELDS`]).
fn bound_fields() -> Vec<String> {
    pacsguard_console::bound::BINDING_FIELDS
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect()
}

/// The whole verification of the trail that `audit verify` does (`audit_follow` runs
/// it and goes on from there), gathering the records that bind the console's store from
/// its own pass: only those it proves may bind (see `pacsguard_audit::Gather`).
/// Also the number of records it proved from the first (`Gather::proven_records`): the
/// fleet listener reads back only those of its acknowledgements of hosts' findings.
#[allow(clippy::type_complexity)]
fn gather_bindings(
    home: &Home,
) -> Result<(
    Option<pacsguard_engine::AuditFollower>,
    pacsguard_engine::AuditVerifyReport,
    pacsguard_console::TrailBindings,
    Option<u64>,
)> {
    // At the limit the newest record of each account, session, request and link is kept
    // (what binds is each one's newest record), never the newest dropped.
    let fields = bound_fields();
    let needles: Vec<&str> = fields.iter().map(String::as_str).collect();
    let mut gather = pacsguard_audit::Gather::new(&needles).newest_per_id();
    let (follower, report) =
        pacsguard_engine::audit_follow_gathering(home, TRAIL_VERIFY_INTERVAL, Some(&mut gather))?;
    let whole = gather.proven_records() == Some(report.report.records) && !gather.overflowed();
    if gather.superseded() > 0 {
        say(&format!(
            "more than {} trail records name an account, session, request or enrolment link: the newest of each was kept and {} older record(s) of the same ones let go",
            pacsguard_audit::MAX_GATHERED_RECORDS,
            gather.superseded()
        ));
    }
    if gather.overflowed() {
        say(&format!(
            "more than {} different accounts, sessions, requests and enrolment links are named on the trail: those past it were not read, and what they bind is refused",
            pacsguard_audit::MAX_GATHERED_RECORDS
        ));
    }
    let problem = binding_problem(
        gather.proven_records(),
        report.report.records,
        gather.overflowed(),
        report.report.problems.first().map(ToString::to_string),
    );
    let proven = gather.proven_records();
    let mut bindings = pacsguard_console::TrailBindings {
        whole,
        problem,
        superseded: gather.superseded(),
        ..Default::default()
    };
    for found in gather.into_records() {
        if found.proven {
            bindings.records.push(found.record);
        } else {
            bindings.unproven.push((found.position(), found.record));
        }
    }
    Ok((follower, report, bindings, proven))
}

/// What the start says of a trail whose bindings are not all proven: where the proof
/// ends, or that the gathering stopped at its limit (every record may be proven then:
/// saying "proven: the first N of N records" named no cause; review s10-r13), and the
/// verification's first problem.
fn binding_problem(
    proven: Option<u64>,
    records: u64,
    overflowed: bool,
    first: Option<String>,
) -> Option<String> {
    let first_said = first
        .as_ref()
        .map(|p| format!("; first problem: {p}"))
        .unwrap_or_default();
    if overflowed {
        return Some(format!(
            "more than {} different accounts, sessions, requests and enrolment links are named; those past it were not read{first_said}",
            pacsguard_audit::MAX_GATHERED_RECORDS
        ));
    }
    if proven != Some(records) {
        return Some(format!(
            "proven: the first {} of {records} records{first_said}",
            proven.unwrap_or(0)
        ));
    }
    first
}

/// The start's whole verification: its follower goes on in the trail-verify thread (one
/// whole pass at start, not two), its gathered records bind the console's store; with
/// the number of records it proved from the first.
fn start_verification(
    home: &Home,
    guard: &GuardState,
    state: &mut TrailFollow,
) -> Result<(pacsguard_console::TrailBindings, Option<u64>)> {
    let now = std::time::SystemTime::now();
    let (follower, report, bindings, proven) = gather_bindings(home)?;
    if follower.is_some() {
        state.whole_as_of = Some(now);
        state.round_started = Some(now);
    }
    state.take_store_resets(report.store_resets);
    show_whole(guard, &report.report, &state.store_resets, now);
    state.follower = follower;
    Ok((bindings, proven))
}

/// The overview's trail line after a whole verification.
fn show_whole(
    guard: &GuardState,
    report: &pacsguard_audit::VerifyReport,
    store_resets: &[String],
    at: std::time::SystemTime,
) {
    let mut detail = format!("{} records, whole trail verified", report.records);
    if let Some(problem) = report.problems.first() {
        detail.push_str(&format!("; {problem}"));
    }
    detail.push_str(&store_resets_shown(store_resets));
    guard.set_trail_as_of(report.is_intact(), detail, Some(at));
}

fn say(text: &str) {
    crate::outlet::direct("pacsguard serve: ", text);
}

/// This system's host name for the console's certificates, if it is an RFC 1123 host
/// name: one that is not (a letter beyond ASCII, a control character) cannot be put in
/// a certificate, and `serve` stopped with rcgen's bare "Invalid IA5String" (review
/// rv45-fleet case20). Left out and said: the console answers to its addresses and
/// `localhost`, and guards all the same.
fn certificate_host_name() -> Option<String> {
    // Asked for twice at start (the names the console answers to, its certificate's):
    // checked and said once (review rv46-fleet case8: the warning was printed twice).
    static CHECKED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| checked_host_name(&pacsguard_engine::hostname(), say))
        .clone()
}

/// `name` if it is an RFC 1123 host name; else `None`, said with the settings that
/// matter to `serve` (it has no `--name`: the system's host name, `[console] cert`).
fn checked_host_name(name: &str, say: impl Fn(&str)) -> Option<String> {
    match pacsguard_fleet::console::check_rfc1123_host_name(name) {
        Ok(()) => Some(name.to_string()),
        Err(rule) => {
            say(&format!(
                "warning: this system's {rule}: left out of the console's certificates (browsers and hosts reach it by address). For a name in them, give [console] cert and key (a certificate of yours, for browsers), or set a system host name that is one (hostnamectl set-hostname NAME) before the first start, which makes HOME/console/cert.pem"
            ));
            None
        }
    }
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

/// The host names the console answers to besides IP addresses: `[console]
/// allowed_hosts`, its relying party's (its origin's), this host's name, and `localhost`
/// on a loopback address.
fn known_names(
    configured: &[String],
    relying_party: Option<&pacsguard_console::webauthn::RelyingParty>,
    local: &SocketAddr,
) -> Vec<String> {
    let mut names = configured.to_vec();
    names.extend(relying_party.map(|rp| rp.id.clone()));
    names.extend(certificate_host_name());
    if local.ip().is_loopback() {
        names.push("localhost".to_string());
    }
    names
}

/// The roots of the home's signed profile, shown as guarded before the watcher starts:
/// only once the signature verifies over the stored tree (the leaf rows of a store
/// signed v3). The `roots` rows read as they stood showed a root an intruder added in
/// the file as guarded and intact (review r25-store); a store that does not verify shows
/// none, and the watcher refuses it by name.
fn verified_roots(home: &Home) -> Vec<PathBuf> {
    let verified = home.load_key().and_then(|key| {
        let public = home.profile_public_key(&key)?;
        // Read only, before the guard has judged the store (a journal beside it is the
        // guard's opening to judge, never rolled in here: review r28-store).
        match pacsguard_store::Store::open_read_only(&home.store_path())? {
            Some(store) => Ok(store.load_streamed(&public)?),
            None => Ok(None),
        }
    });
    match verified {
        Ok(Some(stored)) => stored
            .baseline
            .roots
            .into_iter()
            .map(|root| root.spec.path)
            .collect(),
        Ok(None) | Err(_) => Vec::new(),
    }
}

pub fn run(
    home: Home,
    paths: Vec<PathBuf>,
    policy: Option<Policy>,
    listen: Option<String>,
    json: bool,
    fleet_listen: Option<String>,
    gateway: Option<PathBuf>,
) -> Result<ExitCode> {
    // SIGHUP reloads the gateway's file: blocked before any thread starts, or a thread
    // without it blocked would take it and the process end.
    let hangup = match gateway {
        Some(_) => Some(signals::reload_on_hangup()?),
        None => None,
    };
    let signals::Stops { stop, hurry } = signals::stop_or_hurry_on_termination()?;
    // The second signal cuts the stop's waits short beyond the guard's too: the
    // gateway's and the last delivery to the console (review r31-watch).
    let hurry_after_guard = Arc::clone(&hurry);
    // Before anything starts: a fleet store that can never work (a wrong password, no
    // such database, a connection string it cannot take) ends `serve` here, exit 2.
    let fleet_pool = crate::fleet::fleet_pool(&home)?;
    let mut session = Session::open(home.clone())?;
    crate::fleet::hold_heartbeat_for_the_console(&home, &mut session, say)?;
    let (session_inbox, session_actor) = (session.inbox(), session.actor().clone());
    // Stdout (the guard's and the gateway's lines) behind a bounded queue: a stalled
    // reader never holds up the guard, which writes the trail, nor an association.
    let outlet = crate::outlet::Outlet::start(
        "serve",
        crate::outlet::to_inbox(
            session.inbox(),
            session.actor().clone(),
            pacsguard_events::Action::Watch,
        ),
    );
    // The DICOM gateway beside the guard, its records on the guard's trail (through the
    // inbox the watcher drains) and its copies in the home's vault.
    let gateway = match (gateway, hangup) {
        (Some(path), Some(hangup)) => Some(crate::gateway::InServe::start(
            &home,
            &path,
            hangup,
            session.inbox(),
            session.actor().clone(),
            crate::gateway::Printer {
                json,
                outlet: Arc::clone(&outlet),
            },
        )?),
        _ => None,
    };
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
    let mut names = vec!["localhost".to_string()];
    names.extend(certificate_host_name());
    names.push(local.ip().to_string());
    names.push("127.0.0.1".into());
    names.push("::1".into());
    names.dedup();
    let tls = pacsguard_console::tls::load_or_generate(
        &home.dir,
        config.console.cert.as_deref(),
        config.console.key.as_deref(),
        names.clone(),
    )?;

    let guard = Arc::new(GuardState::new());
    for root in verified_roots(&home) {
        guard.add_root(&root);
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
        .with_relying_party_if(relying_party.clone())
        .with_fleet_pool(fleet_pool.clone())
        .with_second_host_approver(config.console.needs_second_host_approver)
        .with_public_origin(&match (&config.console.origin, &relying_party) {
            (Some(_), Some(rp)) => rp.origin.clone(),
            _ => format!("https://{host}:{}", local.port()),
        })
        .with_known_names(&known_names(
            &config.console.allowed_hosts,
            relying_party.as_ref(),
            &local,
        ))
        // The session holds the home's lock: a claim of this home's previous run, on
        // this boot, is taken over (review r24).
        .with_home_held(pacsguard_engine::boot_id()),
    );

    let port = local.port();
    say(&format!("console at https://{host}:{port}/"));
    say(&format!(
        "certificate for browsers {} ({}), SHA-256 fingerprint {}",
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
    // The trail verified whole, then the store's accounts, sessions and waiting requests
    // checked against the records that verification proved, once.
    let started = std::time::Instant::now();
    let mut follow = TrailFollow::default();
    let (bindings, trail_proven) = start_verification(&home, &guard, &mut follow)?;
    let bound = console.bind_to_trail_from(bindings)?;
    say(&format!(
        "accounts bound to the trail: {} as recorded{}{}; {} waiting request(s) bound ({:.1} s)",
        bound.accounts,
        if bound.first_bound > 0 {
            format!(
                ", {} bound now (first start of this version)",
                bound.first_bound
            )
        } else {
            String::new()
        },
        if bound.altered_accounts.is_empty() {
            String::new()
        } else {
            format!(
                ", REFUSED (not as the trail recorded them, an alert is raised): {}",
                bound.altered_accounts.join(", ")
            )
        },
        bound.requests,
        started.elapsed().as_secs_f64()
    ));
    for (root, unseen) in &bound.dropped_restored {
        if unseen.findings > 0 {
            say(&format!(
                "{} undone findings {} dropped from the pages and not acknowledged when the last run ended are counted again (the alerts page)",
                unseen.findings,
                if root.is_empty() {
                    "outside every root".to_string()
                } else {
                    format!("of {root}")
                }
            ));
        }
    }
    if let Some(why) = guard.open_findings().dropped_unread {
        say(&why);
    }
    // This run open on the trail until its stop closes it: a start that finds it open
    // knows it was killed, and says its counts may be short (session 41).
    if let Err(e) = console.record_run_open() {
        say(&format!(
            "the start of this run is NOT on the trail ({e}): if it is killed, the next start cannot say so"
        ));
    }
    // What the trail holds as the newest count of each root: what was read back, then
    // what the trail-verify thread records as the counts change.
    let dropped_recorded = bound.dropped_restored.clone();
    if !bound.unproven.is_empty() {
        say(&format!(
            "trail records NOT PROVEN by its verification, nothing bound from them (an alert is raised): {}",
            bound
                .unproven
                .iter()
                .take(pacsguard_console::bound::MAX_UNPROVEN_NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !bound.missing_accounts.is_empty() {
        say(&format!(
            "accounts recorded on the trail are MISSING from the store (the store was edited, an alert is raised): ids {:?}",
            bound.missing_accounts
        ));
    }
    if !bound.altered_requests.is_empty() {
        say(&format!(
            "waiting requests dropped (not as the trail recorded them, an alert is raised): {:?}",
            bound.altered_requests
        ));
    }
    // This console's id, claimed on the fleet's store: a fresh one (and an alert) when
    // another running console holds it (a copy of this home) or the stored one was edited.
    // A store not reachable now is said; the id is claimed at its first use.
    match console.claim_console_id() {
        Ok(id) => say(&format!("console id {id}")),
        Err(e) => say(&format!(
            "this console's id could not be claimed on the fleet store now ({e}); it is claimed when first needed"
        )),
    }
    // Approvals of host profiles left awaiting their trail record by an earlier run:
    // confirmed if the record is on the trail, else dropped with a warning. A store not
    // reachable now is said; they stay not in effect and are settled at the Hosts page.
    match console.resolve_awaiting_approvals() {
        Ok(0) => {}
        Ok(n) => say(&format!(
            "{n} host profile approval(s) left awaiting their trail record were settled (confirmed if recorded, else dropped with a host-approval-unrecorded warning)"
        )),
        Err(e) => say(&format!(
            "host profile approvals awaiting their trail record could not be settled now ({e}); they are not in effect and are settled when the Hosts page is read"
        )),
    }
    // The fleet's four eyes checked against this console's trail at start, not only at
    // the first approval or Hosts page: a store edited while the console was stopped is
    // raised now (`console-setting-altered`). A store not reachable now is checked at
    // the first read, as every approval reads it.
    match console.host_four_eyes_in_force() {
        Ok(f) => {
            if let Some(why) = f.differs {
                say(&format!(
                    "four eyes for host approvals is not as this console's trail recorded it ({why}): it stays on here, and a console-setting-altered alert is on the trail"
                ));
            }
        }
        Err(e) => say(&format!(
            "the fleet's four-eyes setting could not be read now ({e}); it is checked at each approval"
        )),
    }
    if let Some(token) = console.issue_setup_token()? {
        say(&format!(
            "no account exists yet: create the first administrator within {} minutes at https://{host}:{port}/setup?token={token}",
            pacsguard_console::auth::SETUP_TOKEN_LIFETIME / 60
        ));
    }

    // `check`, `accept` and `scan` started beside this process are run by the guard.
    // And `console revoke-host`, so that a revocation is on this console's trail when
    // the command returns (review r26).
    // The Hosts page and `console acknowledge-host` tell a standing refusal, and an
    // acknowledgement in effect, by the listener's own judgement and digest.
    console.judge_standing_with(Arc::new(|host: &pacsguard_store::HostRow| {
        pacsguard_fleet::acknowledge::standing(&host.state, &host.detail).map(|s| {
            pacsguard_console::host_acknowledgements::StandingRefusal {
                digest: s.digest(),
                names_no_branch: s.names_no_branch(),
                state: s.state,
                words: s.words,
                kept: s.kept,
            }
        })
    }));
    let revoker: crate::control::HostRevoker = {
        let console = Arc::clone(&console);
        let pool = fleet_pool.clone();
        Arc::new(
            move |name: &str,
                  actor: &pacsguard_events::Actor,
                  decision: crate::control::HostDecision<'_>| match decision {
                crate::control::HostDecision::Revoke { reason } => {
                    crate::fleet::revoke_and_record(&pool, &console, name, actor, reason)
                }
                crate::control::HostDecision::Acknowledge { digest, reason } => {
                    crate::fleet::acknowledge_and_record(&console, name, digest, actor, reason)
                }
            },
        )
    };
    let control = crate::control::Server::start(&home, session.requests(), Some(revoker))?;

    // The guard: the engine's watcher, as `pacsguard watch` runs it.
    let watch_stop = Arc::new(AtomicBool::new(false));
    let server_stop = Arc::new(AtomicBool::new(false));
    // The fleet: hosts reporting to this console, or this host reporting to its console.
    // The listener signs a host's approval only when this console's trail records it
    // (session 22): the store alone is whoever holds the database.
    let proof: pacsguard_fleet::console::Proof = {
        let console = Arc::clone(&console);
        Arc::new(move |host: &str, generation: u64, digest: &str| {
            console
                .recorded_host_approval(host, generation, digest)
                .map_err(|e| e.to_string())
        })
    };
    // And tells that trail of each host leaving its approved profile (review r24).
    let witness: pacsguard_fleet::console::ProfileWitness = {
        let console = Arc::clone(&console);
        Arc::new(move |host: &str, generation: u64, digest: &str| {
            console
                .witness_host_profile(host, generation, digest)
                .map_err(|e| e.to_string())
        })
    };
    // And raises an approval its trail does not record once, across restarts (review r24).
    let unproven: pacsguard_fleet::console::UnprovenAlert = {
        let console = Arc::clone(&console);
        Arc::new(
            move |host: &str, generation: u64, digest: &str, finding: pacsguard_events::Finding| {
                console
                    .raise_host_approval_unproven(host, generation, digest, finding)
                    .map_err(|e| e.to_string())
            },
        )
    };
    // A stop whose last records did not reach the console, on the trail now.
    crate::fleet::record_undelivered_stop(
        &home,
        &session_actor,
        "serve",
        &mut crate::fleet::written_by(&mut session),
    );
    let host_listener = match fleet_listen {
        Some(address) => Some(crate::fleet::HostListener {
            address,
            identity: crate::fleet::fleet_certificate(
                &home,
                config
                    .console
                    .cert
                    .as_deref()
                    .zip(config.console.key.as_deref()),
                names,
                &fleet_pool,
                &mut |text: &str| {
                    let event = pacsguard_events::Event::new(
                        session_actor.clone(),
                        pacsguard_events::Action::Delivery,
                        pacsguard_events::Outcome::Failure,
                        format!("fleet identity: {text}"),
                    );
                    if let Err(e) = crate::fleet::written_by(&mut session)(event) {
                        crate::outlet::direct(
                            "pacsguard serve: ",
                            &format!("the fleet identity's warning is NOT on the trail: {e}"),
                        );
                    }
                },
            )?,
            first_report_within: config.console.first_report_within_seconds.map_or(
                pacsguard_fleet::console::FIRST_REPORT_WITHIN,
                Duration::from_secs,
            ),
            guard: guard.clone(),
            trail_proven,
            console: Arc::clone(&console),
        }),
        None => None,
    };
    let mut fleet = crate::fleet::start(
        &home,
        host_listener,
        fleet_pool,
        session.inbox(),
        pacsguard_fleet::console::ConsoleTrail {
            proof,
            witness,
            unproven,
            revoked: {
                let console = Arc::clone(&console);
                Arc::new(move |fingerprint: &str| {
                    console
                        .host_revoked_on_trail(fingerprint)
                        .map_err(|e| e.to_string())
                })
            },
            record_revoked: {
                let console = Arc::clone(&console);
                Arc::new(move |host: &pacsguard_store::HostRow, at: i64| {
                    console
                        .record_host_revoked(host, at)
                        .map_err(|e| e.to_string())
                })
            },
            acknowledged: {
                let console = Arc::clone(&console);
                Arc::new(move |fingerprint: &str, digest: &str| {
                    console
                        .host_acknowledged_on_trail(fingerprint, digest)
                        .map_err(|e| e.to_string())
                })
            },
        },
        crate::fleet::guard_forward_target(&config.forward, |text| {
            crate::outlet::direct("pacsguard serve: ", text)
        })?,
        session_actor.clone(),
        server_stop.clone(),
    )?;

    let panic_on = crate::guard_panic::test_hook("serve");
    let watcher = {
        let watch_stop = watch_stop.clone();
        let server_stop = server_stop.clone();
        let guard = guard.clone();
        let mut session = session;
        let outlet = Arc::clone(&outlet);
        std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || {
                let lines = output::WatchLines::new(json, outlet);
                let guard_out = guard.clone();
                let mut out =
                    crate::guard_panic::Hooked::new(ServeOutput { lines, guard: guard_out }, panic_on);
                let request = WatchRequest {
                    paths,
                    policy,
                    hurry,
                };
                let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    session.watch(&request, &mut out, &watch_stop)
                }));
                let result = match watched {
                    Ok(result) => result.map_err(anyhow::Error::from),
                    Err(panic) => {
                        let tell = |detail: &str| {
                            guard.set_alive(false, detail);
                            server_stop.store(true, Ordering::Relaxed);
                        };
                        Err(crate::guard_panic::after_panic(
                            &mut session,
                            &out.panic_text(panic.as_ref()),
                            &crate::guard_panic::Stopping {
                                command: "serve",
                                what_stops: "the guard, the gateway and the console stop (exit 2); what they hand in until they have stopped is still recorded",
                                tell: &tell,
                                stopped: &watch_stop,
                            },
                        ))
                    }
                };
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
        let mut dropped_recorded = dropped_recorded;
        std::thread::Builder::new()
            .name("trail-verify".into())
            .spawn(move || {
                // The start verified the whole trail: the first turn comes an interval later.
                let mut next = std::time::Instant::now() + TRAIL_VERIFY_INTERVAL;
                let mut next_dropped = std::time::Instant::now();
                let mut dropped_failing = false;
                let heartbeat = pacsguard_console::identity::CONSOLE_HEARTBEAT_INTERVAL;
                let mut next_heartbeat = std::time::Instant::now() + heartbeat;
                let mut follow = follow;
                while !server_stop.load(Ordering::Relaxed) {
                    if std::time::Instant::now() >= next {
                        verify_trail(&home, &guard, &mut follow);
                        if let Err(e) = console.purge_expired_sessions() {
                            say(&format!("expired sessions not purged: {e}"));
                        }
                        next = std::time::Instant::now() + TRAIL_VERIFY_INTERVAL;
                    }
                    // The dropped counts that changed, on the trail at most once per
                    // interval: a serve killed loses one interval of them at most.
                    if std::time::Instant::now() >= next_dropped {
                        match console.record_dropped_changes(&mut dropped_recorded) {
                            Ok(_) => dropped_failing = false,
                            Err(e) if !dropped_failing => {
                                dropped_failing = true;
                                say(&format!(
                                    "the count of undone findings dropped from the pages could NOT be recorded on the trail ({e}): tried again every {} s",
                                    pacsguard_console::dropped_trail::DROPPED_RECORD_INTERVAL
                                        .as_secs()
                                ));
                            }
                            Err(_) => {}
                        }
                        next_dropped = std::time::Instant::now()
                            + pacsguard_console::dropped_trail::DROPPED_RECORD_INTERVAL;
                    }
                    // The claim on this console's id renewed (its heartbeat).
                    if std::time::Instant::now() >= next_heartbeat {
                        if let Err(e) = console.claim_console_id() {
                            say(&format!(
                                "this console's id not claimed again on the fleet store: {e}"
                            ));
                        }
                        next_heartbeat = std::time::Instant::now() + heartbeat;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                // A clean stop gives the id back: the next start claims it at once.
                if let Err(e) = console.release_console_id() {
                    say(&format!(
                        "this console's id not given back on the fleet store: {e}"
                    ));
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

    let stopping = Arc::clone(&console);
    let router = pacsguard_console::http::app(console);
    let served =
        pacsguard_console::server::serve(listener, tls.config, router, server_stop.clone());
    server_stop.store(true, Ordering::Relaxed);
    // The undone findings dropped from the pages and not acknowledged, on the trail
    // while the guard still takes records: the next start counts them again (before,
    // session 40, a restart started them at 0 without a word).
    match stopping.record_dropped_at_stop() {
        Ok(0) => {}
        Ok(n) => say(&format!(
            "the undone findings dropped from the pages and not acknowledged ({n} root(s)) are recorded on the trail for the next start"
        )),
        Err(e) => say(&format!(
            "the undone findings dropped from the pages and not acknowledged could NOT be recorded on the trail ({e}): the next start does not count them; they are on the trail as they came"
        )),
    }
    drop(stopping);
    // The gateway stops while the guard still takes its records.
    let gateway_attention = gateway.is_some_and(|g| g.stop(&hurry_after_guard));
    // What stdout dropped and has not said yet: said, and recorded while the guard
    // still takes records; a line dropped after this is said on stderr below.
    let dropped = outlet.finish();
    let texts = (dropped > 0)
        .then(|| crate::outlet::dropped_text(dropped))
        .into_iter()
        // And what the stderr outlet (the guard's and the gateway's notices) dropped.
        .chain(crate::outlet::stderr_drops());
    for text in texts {
        say(&text);
        if let Err(e) = session_inbox.push(pacsguard_events::Event::new(
            session_actor.clone(),
            pacsguard_events::Action::Watch,
            pacsguard_events::Outcome::Failure,
            text,
        )) {
            say(&format!(
                "the count of dropped output lines is not on the trail ({e})"
            ));
        }
    }
    watch_stop.store(true, Ordering::Relaxed);
    let _ = relay.join();
    let _ = verifier.join();
    fleet.join_listener();
    let joined = watcher.join();
    // The guard's last records ('stopped', the final checkpoint) to the console, within
    // STOP_DELIVERY_DEADLINE.
    fleet.deliver_last(&home, &hurry_after_guard);
    // Whatever ended the guard: what stdout dropped since the stop's record is said.
    let late = outlet.finish();
    if late > 0 {
        say(&format!(
            "{} (after the stop's record: not on the trail)",
            crate::outlet::dropped_text(late)
        ));
    }
    let report = joined.map_err(|_| anyhow!("the guard thread panicked"))??;
    drop(control);
    served?;
    output::watch_stopped(&report);
    if gateway_attention {
        // An alert raised by the gateway is one of this run's findings.
        return Ok(ExitCode::from(1));
    }
    Ok(output::status(&report.counts))
}

#[cfg(test)]
mod tests {
    /// Review rv46-fleet case8: a system host name that is no RFC 1123 name is said
    /// naming the settings `serve` has (it has no `--name`); a good one is kept.
    #[test]
    fn a_system_host_name_left_out_names_the_settings_serve_has() {
        let said = std::cell::RefCell::new(Vec::new());
        let say = |line: &str| said.borrow_mut().push(line.to_string());
        assert_eq!(checked_host_name("ws-12", say).as_deref(), Some("ws-12"));
        assert!(said.borrow().is_empty());
        assert_eq!(checked_host_name("Röntgen-1", say), None);
        let said = said.into_inner();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!said[0].contains("--name"), "{}", said[0]);
        assert!(
            said[0].contains("[console] cert") && said[0].contains("hostnamectl"),
            "{}",
            said[0]
        );
    }

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
        let mut follower = TrailFollow::default();
        verify_trail(&home, &guard, &mut follower);
        assert!(intact(&guard).0, "{:?}", intact(&guard));
        assert!(follower.follower.is_some());

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

    /// The test clock needs the console's cargo feature and debug assertions: the binary
    /// `cargo test` builds for this package honours the variable (the dev-dependency
    /// enables the feature, cargo unifies it into that debug binary); the package's own
    /// dependency on the console does not enable it; and the release profile, which
    /// makes the shipped binary, never has debug assertions, so even a release build
    /// with the feature has no offset clock. (`pacsguard-console` `clock::tests` checks
    /// that without them there is no offset clock.)
    #[test]
    fn the_test_clock_is_honoured_only_by_a_build_with_the_feature() {
        use pacsguard_console::Clock as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("offset");
        std::fs::write(&file, "100000").expect("write");
        let system = SystemClock.now();
        let honoured = console_clock_in(Some(file.into_os_string()));
        assert!(honoured.now() - system >= 100_000);
        assert!(console_clock_in(None).now() - system < 1000);
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .expect("manifest");
        let normal = &manifest[manifest.find("[dependencies]").expect("dependencies")
            ..manifest
                .find("[dev-dependencies]")
                .expect("dev-dependencies")];
        assert!(!normal.contains("test-clock"), "{normal}");
        let dev = &manifest[manifest.find("[dev-dependencies]").expect("dev")..];
        assert!(
            dev.contains("pacsguard-console = { workspace = true, features = [\"test-clock\"] }")
        );
        // The release profile must not turn debug assertions on: they are what keeps the
        // offset clock out of a release build unified with the feature.
        let workspace =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
                .expect("workspace manifest");
        let release = workspace
            .split("\n[")
            .find(|section| section.starts_with("profile.release]"))
            .expect("[profile.release]");
        assert!(!release.contains("debug-assertions"), "{release}");
        assert!(!release.contains("inherits"), "{release}");
        assert_eq!(
            pacsguard_console::clock::TEST_CLOCK_BUILT_IN,
            cfg!(debug_assertions),
            "this package's tests build the console with the feature"
        );
    }

    /// Review s10-r13: a gathering stopped at its limit is said as such, not as a proof
    /// that ends at the last record.
    #[test]
    fn a_gathering_at_its_limit_is_said_as_the_limit() {
        let said = binding_problem(Some(7), 7, true, None).expect("said");
        assert!(
            said.contains("more than") && !said.contains("proven: the first"),
            "{said}"
        );
        let said = binding_problem(Some(3), 7, false, Some("edited".into())).expect("said");
        assert!(
            said.contains("the first 3 of 7") && said.contains("edited"),
            "{said}"
        );
        assert_eq!(binding_problem(Some(7), 7, false, None), None);
        assert_eq!(
            binding_problem(Some(7), 7, false, Some("gap".into())).as_deref(),
            Some("gap")
        );
    }

    /// Found open in session 8: an old record edited in place with the same length
    /// stays unseen until the rolling re-read reaches it, while the overview said a bare
    /// "intact". It now says as of when every record was verified: the start's whole
    /// verification, then the start of the last round of the re-read that completed,
    /// never the time of a step that read only the new records.
    #[test]
    fn the_trail_is_said_verified_whole_only_as_of_a_completed_round() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().join("home"));
        home.init().expect("init");
        let guard = GuardState::new();
        let mut follow = TrailFollow::default();
        let before = std::time::SystemTime::now();
        verify_trail(&home, &guard, &mut follow);
        let start = follow
            .whole_as_of
            .expect("the whole trail verified at start");
        assert!(start >= before);
        // A step re-reads the old records from the start (a small trail: all of them);
        // the round completes at the next step, and counts from when it began.
        verify_trail(&home, &guard, &mut follow);
        assert_eq!(follow.whole_as_of, Some(start), "round 1 not complete yet");
        verify_trail(&home, &guard, &mut follow);
        assert_eq!(
            follow.whole_as_of,
            Some(start),
            "round 1 began at the start"
        );
        let second_round = follow.round_started.expect("round 2 began");
        assert!(second_round >= start);
        verify_trail(&home, &guard, &mut follow);
        assert_eq!(follow.whole_as_of, Some(second_round), "round 2 complete");
        let trail = guard.snapshot().trail.expect("verified");
        assert!(trail.intact, "{}", trail.detail);
        assert_eq!(
            trail.whole_as_of.as_deref(),
            Some(
                humantime::format_rfc3339_seconds(second_round)
                    .to_string()
                    .as_str()
            )
        );
    }
}
