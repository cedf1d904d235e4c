//! The console's side: the fleet listener, enrolment, and the witness of each host.
//!
//! One TLS listener for hosts, apart from the web console (a browser must never be
//! asked for a client certificate): client certificates are requested and verified
//! against the console's host CA; a connection without one may only enrol. Each
//! connection is served on a thread of its own ([`MAX_CONNECTIONS`] at most), frames in
//! and out, each connection closed after [`IDLE_TIMEOUT`] without a frame. A host is
//! looked up by its certificate's fingerprint at every request, so a revocation refuses
//! the next request of a connection already open.

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pacsguard_events::{Finding, FindingKind, Severity};
use pacsguard_store::{
    AcceptedBatch, Again, FLEET_REQUEST_BUDGET, FleetPool, FleetStore, FleetStoreAt, HostRow,
    StoreError, TokenRefusal,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest as _, Sha256};

use crate::acknowledge;
use crate::approval::ProfileClaim;
use crate::ca::HostCa;
use crate::clock::{self, SkewedHosts};
use crate::cosign::Cosigner;
use crate::duplicates::{Duplicates, ForkVerdict, Reporter, Verdict};
use crate::freshness::{Growth, TrailGrowth};
use crate::hold;
use crate::silence;
use crate::unwritten::{
    NotWritten, REFUSED_WRITE_SAID_EVERY, RefusedAnswer, RefusedSay, Unwritten,
};
use crate::wire::{self, Request, Response};
use crate::witness::{self, Refusal, Witnessed};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections from one network address that have not (yet) shown a host certificate:
/// in their handshake, or anonymous (enrolling). Anyone who reaches the listener can
/// open these, so one address may not hold more than this many of the
/// [`MAX_CONNECTIONS`] slots: enrolled hosts elsewhere still get in.
pub const MAX_UNPROVEN_PER_ADDRESS: usize = 8;
/// Connections, from all addresses together, that have not (yet) shown a host
/// certificate: half of [`MAX_CONNECTIONS`], the other half stays for enrolled hosts
/// once proven. An enrolled host comes in unproven too (its certificate is shown in the
/// handshake), so at this limit the oldest unproven connection is ended for the newcomer
/// rather than the newcomer refused: someone with a few addresses holding idle sockets
/// would otherwise lock every host out.
pub const MAX_UNPROVEN_CONNECTIONS: usize = MAX_CONNECTIONS / 2;
/// Connections one host (one certificate) may hold at once. A host sends one report at
/// a time, on a connection of its own ended once answered; more than one is a report
/// the host gave up on still being answered, or someone holding threads with the
/// host's key (slowloris with a valid certificate).
pub const MAX_CONNECTIONS_PER_HOST: usize = 4;
/// A connection that sends no frame for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a TLS handshake may take as a whole.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(30);
/// How often the console looks for silent hosts.
pub const SILENCE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The first wait before the silence check tries a store it could not reach again;
/// each failure after doubles it, up to [`STORE_RETRY_CAP`]: a store down for hours is
/// said once a minute, not once a second.
pub const STORE_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries of an unreachable store (see [`STORE_RETRY_FIRST`]).
pub const STORE_RETRY_CAP: Duration = Duration::from_secs(60);
/// How often at most the console says that host requests were refused for want of a
/// store connection (every connection of the pool in use, [`pacsguard_store::PG_POOL_SIZE`]).
pub const POOL_REPORT_EVERY: Duration = Duration::from_secs(10);
/// The longest heartbeat interval a host may promise (a longer one is taken as this).
pub const MAX_INTERVAL: u64 = 3600;
/// How long past its promised interval a host may stay silent before the `host-silent`
/// alert: room for a slow network and a busy host.
pub const SILENCE_GRACE: Duration = Duration::from_secs(10);
/// How long after its enrolment a host that never delivered a verified report is raised
/// silent (with [`SILENCE_GRACE`]): its guard is started right after `enroll` (the
/// README's two commands) and reports within seconds; one never started, or whose
/// reports are all refused, is not guarded (review r28-fleet).
pub const FIRST_REPORT_WITHIN: Duration = Duration::from_secs(60);
/// How often one change of a host's state is judged anew when other requests moved the
/// state first (compare and set): each retry means another write of that host's state
/// went in, so only a flood of its reports reaches this; said on the console's log.
pub const MAX_STATE_TRIES: usize = 16;
/// How often at most the console's log says that changes of hosts' states were given
/// up ([`MAX_STATE_TRIES`]): the first at once, those that follow within this counted
/// and said in one line when it has passed (a flood of a host's reports, which is what
/// reaches the limit, wrote one line per request).
pub const STATE_GIVE_UP_SAID_EVERY: Duration = Duration::from_secs(10);
/// How long an enrolment token is valid unless `--expires` says otherwise.
pub const ENROL_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The longest an enrolment token may be made valid for.
pub const MAX_ENROL_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest host name a host may enrol under.
pub const MAX_HOST_NAME: usize = 64;
/// Record bytes the console holds of one host per [`HOST_QUOTA_WINDOW`]: an enrolled
/// host (or an intruder on it writing records in a loop) cannot fill the console's
/// disk. A busy archive writes some 100,000 records a day of about 500 bytes (50 MB);
/// this is twenty times that. Past it the host's reports are refused and
/// `host-quota-exceeded` raised once; the host keeps its records (its cursor stays) and
/// delivers them, in order, when the window ends.
pub const HOST_QUOTA_BYTES: u64 = 1 << 30;
/// The window [`HOST_QUOTA_BYTES`] counts over.
pub const HOST_QUOTA_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// What one alert a host's claim raises (`host-profile-unapproved`) is charged to the
/// host's quota besides its detail: the finding's row and the console's trail record of
/// it (some 750 bytes each, measured). A host can name any number of made-up profile
/// generations, each a new alert: they count against [`HOST_QUOTA_BYTES`] like its
/// records, or one host could still grow the console's trail without bound.
pub const ALERT_QUOTA_BYTES: u64 = 1024;
/// What each trail key not seen before under a host's certificate costs its quota
/// (review r26): telling it apart from the host made anew reads and writes the store and
/// may raise an alert, and a copy of the host's enrolment can make a new key at every
/// report. Past the quota its reports are refused (`host-quota-exceeded`, once).
pub const STRANGER_KEY_QUOTA_BYTES: u64 = ALERT_QUOTA_BYTES;

/// What one stored row (a record, a checkpoint) costs the host's quota besides its text:
/// its key and index entries. A host that sends records of a few bytes, one per report,
/// makes the console store a checkpoint row with each (its note and the cosigned note,
/// some 400 bytes): charged at the row's real size, not only the record's text, so the
/// quota bounds the disk it takes.
pub const ROW_QUOTA_BYTES: u64 = 32;

/// What storing a batch costs its host's quota ([`HOST_QUOTA_BYTES`]): each record row
/// and the batch's checkpoint row (`note` and `cosigned` as stored).
/// How long giving back a quota charge may take after a request's store work failed
/// (its [`FLEET_REQUEST_BUDGET`] possibly spent, its connection given up): the charge of
/// a batch not stored is not left standing (review s11-r14), and still within the host's
/// patience.
pub const REFUND_GRACE: std::time::Duration = std::time::Duration::from_secs(4);
/// What the console needs after its store work to answer (cosigning, writing the frame)
/// before the host's [`crate::host::IO_TIMEOUT`] passes.
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

// A host's request is answered, or given up by the console, before the host gives up
// on it and sends it again while the console is still writing (issue 14, session 12).
const _: () = assert!(
    FLEET_REQUEST_BUDGET.as_millis() + REFUND_GRACE.as_millis() + ANSWER_MARGIN.as_millis()
        <= crate::host::IO_TIMEOUT.as_millis()
);

fn batch_cost(records: &[(u64, Vec<u8>)], note: &str, cosigned: Option<&str>) -> u64 {
    let rows = records
        .iter()
        .map(|(_, line)| (line.len() as u64).saturating_add(ROW_QUOTA_BYTES))
        .fold(0u64, u64::saturating_add);
    let checkpoint = (note.len() + cosigned.map_or(0, str::len)) as u64 + ROW_QUOTA_BYTES;
    rows.saturating_add(checkpoint)
}

/// What the console holds of one host per window ([`HOST_QUOTA_BYTES`] in
/// [`HOST_QUOTA_WINDOW`] unless a test says otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    pub bytes: u64,
    pub window: Duration,
}

impl Default for Quota {
    fn default() -> Quota {
        Quota {
            bytes: HOST_QUOTA_BYTES,
            window: HOST_QUOTA_WINDOW,
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Makes a one-time enrolment token valid for `lifetime` and stores its digest; the
/// token itself is returned once and kept nowhere. With `continues` (a revoked host's
/// name), the token enrols a host under that name only, and that host continues the
/// revoked one's trail (its records, checkpoints and approvals): the administrator's
/// decision that the new enrolment is the same machine. A plain token never does: a
/// host's trail key is public, so naming it proves nothing.
pub fn issue_token(
    store: &FleetStoreAt,
    lifetime: Duration,
    continues: Option<&str>,
) -> Result<(String, i64), String> {
    if lifetime.is_zero() || lifetime > MAX_ENROL_TOKEN_LIFETIME {
        return Err(format!(
            "--expires must be more than 0 and at most {} hours",
            MAX_ENROL_TOKEN_LIFETIME.as_secs() / 3600
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut db = store.open().map_err(|e| e.to_string())?;
    let now = now();
    let expires = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    match continues {
        None => db.add_enrol_token(&token_digest(&token), now, expires),
        Some(name) => {
            check_host_name(name)?;
            let Some(old) = db
                .revoked_host_with_trail(name)
                .map_err(|e| e.to_string())?
            else {
                return Err(format!(
                    "--continue {name}: no revoked host of that name whose trail this console holds (revoke it first: pacsguard console revoke-host; a host never reported needs no --continue)"
                ));
            };
            db.add_continue_token(&token_digest(&token), now, expires, old.id)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok((token, expires))
}

/// A host's name as it enrols: shown on pages and in alerts, so a closed alphabet; not
/// starting with '-', or `console revoke-host NAME` would take it as an option.
pub fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('-')
        || name.len() > MAX_HOST_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(format!(
            "host name {name:?}: 1 to {MAX_HOST_NAME} letters, digits, '-', '.' or '_', not starting with '-'"
        ));
    }
    Ok(())
}

/// The longest label of a host name (RFC 1123 section 2.1, RFC 1035 section 2.3.4).
pub const MAX_HOST_NAME_LABEL: usize = 63;

/// The name a new host enrols under: an RFC 1123 host name, the one set of characters
/// people and DNS agree on: labels of ASCII letters, digits and `-` (not first or last
/// in a label, at most [`MAX_HOST_NAME_LABEL`] each) joined by single dots, at most
/// [`MAX_HOST_NAME`] in all, with no trailing dot. `_`, a trailing dot, and anything
/// else that would let two names read as one (review rv44-fleet: `h3_`, `h3.` beside
/// `h3`) are refused with the rule. Names enrolled by a version before keep working
/// ([`check_host_name`] still holds for them).
pub fn check_new_host_name(name: &str) -> Result<(), String> {
    check_rfc1123_host_name(name).map_err(|rule| format!("{rule} (--name NAME)"))
}

/// [`check_new_host_name`]'s rule, the setting that gives the name left to the caller
/// (`serve` takes the system's host name, and has no `--name`: review rv46-fleet case8).
pub fn check_rfc1123_host_name(name: &str) -> Result<(), String> {
    let rule = || {
        format!(
            "host name {name:?}: an RFC 1123 host name: labels of letters, digits and '-' (not first or last), at most {MAX_HOST_NAME_LABEL} each, joined by single dots, no trailing dot, at most {MAX_HOST_NAME} in all"
        )
    };
    // The one rule said, whichever part of it the name breaks (a letter beyond ASCII
    // was told the older, wider alphabet of names enrolled before).
    check_host_name(name).map_err(|_| rule())?;
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_HOST_NAME_LABEL
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(rule())
    }
}

/// An enrolled (not revoked) host whose name is `name`'s look-alike: another spelling
/// with the same [`pacsguard_store::host_name_key`] (`H3` of `h3`). The store refuses
/// it too, in the enrolment's transaction; this names the host it collides with.
fn look_alike(db: &mut dyn FleetStore, name: &str) -> Result<Option<String>, StoreError> {
    let key = pacsguard_store::host_name_key(name);
    Ok(db
        .hosts()?
        .into_iter()
        // The very name is the store's refusal to say ("another enrolled host has this
        // name").
        .find(|h| {
            h.revoked.is_none() && h.name != name && pacsguard_store::host_name_key(&h.name) == key
        })
        .map(|h| h.name))
}

/// What a person is told about a refused token.
fn token_refusal(refusal: TokenRefusal) -> String {
    match refusal {
        TokenRefusal::Unknown => "the enrolment token is unknown to this console".into(),
        TokenRefusal::Used => {
            "the enrolment token was used already: a token enrols one host, once".into()
        }
        TokenRefusal::Expired => {
            "the enrolment token expired: ask for a new one (pacsguard console enrol-token)".into()
        }
        TokenRefusal::NameTaken => {
            "another enrolled host has this name: choose another (--name), or revoke the old one first (pacsguard console revoke-host)".into()
        }
        TokenRefusal::ContinuesAnother => {
            "this token continues the trail of a revoked host with another name: enrol under that name (--name), or ask for a plain token".into()
        }
    }
}

/// Where the console raises its alerts (the console's own trail, through the guard).
pub type Alert = Box<dyn Fn(Finding) + Send + Sync>;

/// Where the records of a host's trail the console just stored are told (issue 14,
/// session 45: `serve` lists the host's own alerts on the console's alerts page): the
/// host's row and the records, each as the host wrote it. Called after they are stored,
/// once per stored batch (a batch sent again is skipped as held, not told twice).
pub type HostRecords = Arc<dyn Fn(&HostRow, &[(u64, Vec<u8>)]) + Send + Sync>;

/// Where the fleet listener writes what only the console's people may read (the full
/// text of a store failure a host was refused for): `serve`'s log.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// At most this many store failures a host was refused for are written in full to the
/// console's log per [`REFUSAL_LOG_WINDOW`]: a store down under hundreds of hosts (or
/// under anyone who can open a connection and ask to enrol) would otherwise write a
/// line for every refusal. Past it a refusal names the last one written, and the log
/// says once that the rest are not written one by one.
pub const MAX_REFUSAL_LOG_LINES: u32 = 20;

/// The window of [`MAX_REFUSAL_LOG_LINES`].
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);

/// The refusals written to the console's log in the current window.
#[derive(Debug, Default)]
struct RefusalLog {
    window_start: Option<std::time::Instant>,
    written: u32,
    /// The id of the last refusal written in full.
    last: String,
    /// Refusals since then that were not written one by one.
    unwritten: u64,
}

/// The refusal a host gets when the console's own store failed: a short reason and the
/// id the console's log names it by, never the store's error text (it names the
/// database, its user, the SQL that failed or the console's file paths: not a host's
/// business, and a foothold for whoever holds a host or only its network).
fn store_refusal(log: &Log, written: &Mutex<RefusalLog>, error: &dyn std::fmt::Display) -> String {
    let mut state = written
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = std::time::Instant::now();
    if state
        .window_start
        .is_none_or(|start| at.duration_since(start) >= REFUSAL_LOG_WINDOW)
    {
        state.window_start = Some(at);
        state.written = 0;
    }
    let id = if state.written < MAX_REFUSAL_LOG_LINES {
        let mut bytes = [0u8; 6];
        let id = match getrandom::fill(&mut bytes) {
            Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            Err(_) => format!("{:x}", now()),
        };
        let unwritten = match std::mem::take(&mut state.unwritten) {
            0 => String::new(),
            n => format!(
                " ({n} refusals after refusal {} were not written one by one)",
                state.last
            ),
        };
        log(&format!(
            "fleet: refusal {id}: the fleet's store failed: {error}{unwritten}"
        ));
        state.written += 1;
        state.last = id.clone();
        id
    } else {
        if state.unwritten == 0 {
            log(&format!(
                "fleet: more than {MAX_REFUSAL_LOG_LINES} refusals for failures of the fleet's store within {} s (MAX_REFUSAL_LOG_LINES): those that follow name refusal {} and are counted, not written one by one",
                REFUSAL_LOG_WINDOW.as_secs(),
                state.last
            ));
        }
        state.unwritten += 1;
        state.last.clone()
    };
    format!(
        "the console cannot use its store now: try again later (refusal {id} in the console's log)"
    )
}

/// The most characters of an approver's name or reason read from the store that an
/// alert shows: whoever writes the store writes them, and a reason of megabytes must not
/// become a trail record of megabytes.
pub const MAX_SHOWN_STORE_CHARS: usize = 200;

/// What the console's own audit trail holds of a host's profile approval: asked with
/// the host's name, the generation and its digest; `Ok(Some(at))` when the trail records
/// that approvers approved exactly that (at `at`, Unix seconds), `Ok(None)` when it
/// records no such approval, or one superseded there by a later approval of another
/// profile of that host (review r23). The listener signs an approval only on `Some` (session 22):
/// the fleet's store alone (a row any holder of the database can write) never makes the
/// witness key sign.
pub type Proof = Arc<dyn Fn(&str, u64, &str) -> Result<Option<i64>, String> + Send + Sync>;

/// Where the listener tells the console's own audit trail of each report naming a host's
/// current profile (the host's name, the generation and its digest), before it judges
/// the report (review r24): when the host left the profile whose approval the trail has
/// in effect, the trail records it, and that approval is not proven any more
/// ([`Proof`]), whatever the fleet's store says of the host's reports afterwards.
/// `Err`: it could not be recorded; the report is refused (the host sends it again).
pub type ProfileWitness = Arc<dyn Fn(&str, u64, &str) -> Result<(), String> + Send + Sync>;

/// Where the listener raises `host-approval-unproven` for the approval of a host's
/// profile (the host's name, the generation, its digest, and the alert) the first time
/// it meets it in this process: the console's own trail, which raises it only if it does
/// not record it raised already (review r24: an approval made before session 22 was
/// raised again at every restart). By default the alert sink, once per process.
pub type UnprovenAlert = Arc<dyn Fn(&str, u64, &str, Finding) -> Result<(), String> + Send + Sync>;

/// Whether the console's own audit trail records a host's certificate (SHA-256, hex)
/// revoked (review r24): refused then, whatever the fleet's store says.
pub type RevokedOnTrail = Arc<dyn Fn(&str) -> Result<bool, String> + Send + Sync>;

/// Records on the console's own audit trail that a host (its row: name, certificate,
/// who revoked it and why as the store keeps them; and the time the store gives) is
/// revoked in the fleet's store, unless recorded already.
pub type RecordRevoked = Arc<dyn Fn(&HostRow, i64) -> Result<(), String> + Send + Sync>;

/// Whether the console's own audit trail records an acknowledgement of a host's
/// standing refusal: asked with the host's certificate (SHA-256, hex) and the digest of
/// the refusal (`crate::acknowledge`). The fleet's store alone (a row any holder of the
/// database can write) never makes a host acknowledged.
pub type AcknowledgedOnTrail = Arc<dyn Fn(&str, &str) -> Result<bool, String> + Send + Sync>;

/// What the listener asks of, and tells, its console's own audit trail (`serve`: its
/// console's bindings): [`Fleet::with_console_trail`].
#[derive(Clone)]
pub struct ConsoleTrail {
    pub proof: Proof,
    pub witness: ProfileWitness,
    pub unproven: UnprovenAlert,
    pub revoked: RevokedOnTrail,
    pub record_revoked: RecordRevoked,
    pub acknowledged: AcknowledgedOnTrail,
}

impl std::fmt::Debug for ConsoleTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleTrail").finish_non_exhaustive()
    }
}

/// The console's fleet: its store, host CA, witness key and alert sink.
pub struct Fleet {
    /// The connections to where the fleet's tables live (the home's SQLite store, or
    /// PostgreSQL), shared with the console's pages.
    pool: Arc<FleetPool>,
    pub ca: HostCa,
    pub cosigner: Cosigner,
    alert: Alert,
    /// Where each stored batch of a host's records is told ([`Fleet::with_host_records`];
    /// by default nowhere).
    host_records: HostRecords,
    quota: Quota,
    /// How long after its enrolment a host's first verified report is due
    /// ([`FIRST_REPORT_WITHIN`] unless `[console] first_report_within_seconds` says).
    first_report_within: Duration,
    log: Log,
    refusals: Mutex<RefusalLog>,
    /// Where an approval found in the store is proven before it is signed
    /// ([`Fleet::with_proof`]; by default none is).
    proof: Proof,
    /// Where each profile a host reports is told to the console's trail
    /// ([`Fleet::with_witness`]; by default nowhere: nothing is proven then either).
    witness: ProfileWitness,
    /// Where an unproven approval is raised ([`Fleet::with_unproven_alert`]; `None`: the
    /// alert sink).
    unproven_alert: Option<UnprovenAlert>,
    /// Whether the console's trail records a certificate revoked, and where a revocation
    /// found in the store is recorded ([`Fleet::with_console_trail`]; by default none
    /// is: the store alone says).
    revoked_on_trail: RevokedOnTrail,
    record_revoked: RecordRevoked,
    /// Whether the console's trail records an acknowledgement ([`AcknowledgedOnTrail`];
    /// by default none is: no host is shown acknowledged).
    acknowledged_on_trail: AcknowledgedOnTrail,
    /// The acknowledgements in the store without a trail record already raised as
    /// `host-acknowledgement-unproven` (host, 0, digest): once each per process.
    unproven_acknowledgements: Mutex<RaisedOnce>,
    /// The approvals in the store without a trail record already raised as
    /// `host-approval-unproven` (host, generation, digest): once each, not at every
    /// report of the host.
    unproven_raised: Mutex<RaisedOnce>,
    /// Who reports under each host's certificate: a copy of its enrolment running
    /// beside it told from the host made anew (review r25).
    duplicates: Mutex<Duplicates>,
    /// The hosts whose clock was raised as off (review r25).
    skewed: Mutex<SkewedHosts>,
    /// Judges a heartbeat contact only while the host's trail grew within what it
    /// promised (review r29-fleet2), from the growth kept in the store with the host
    /// (review r30-fleet).
    growth: Mutex<TrailGrowth>,
    /// The changes of states given up, as said on the log (review r29-fleet2).
    give_ups: Mutex<GiveUps>,
    /// The refusals raised whose state the store did not confirm writing: raised once
    /// whatever the store answers (session 33).
    unwritten: Mutex<Unwritten>,
    /// The certificate the fleet listener presents and what this run knows of the
    /// hosts' pins (issue 14, session 46).
    pins: Mutex<Pins>,
}

/// How often at most a connection that refused the console's certificate in its
/// handshake makes the console compare the hosts' pins again: anyone who reaches the
/// listener can send such an alert, and each comparison reads the store.
pub const PIN_CHECK_EVERY: Duration = Duration::from_secs(10);

/// The fleet listener's certificate and the hosts' pins, as this run knows them.
#[derive(Debug, Default)]
struct Pins {
    /// The SHA-256 fingerprint of the certificate the fleet listener presents (set by
    /// [`Fleet::tls_config`]; `None` before).
    presented: Option<String>,
    /// Host certificates whose pin is kept in the store (written or found this run):
    /// one per enrolled host, so bounded by the enrolments.
    kept: std::collections::HashSet<String>,
    /// Raised as `host-pinned-other` this run: (host certificate, what it pinned), so a
    /// host is raised once, not at every refused connection.
    raised: std::collections::HashSet<(String, String)>,
    /// When a refused handshake last made the console compare ([`PIN_CHECK_EVERY`]).
    checked_at: Option<std::time::Instant>,
    /// Whether a refused handshake's line on hosts whose pin is not known was said this
    /// run (once: anyone can refuse).
    unknown_said: bool,
}

/// How many hosts whose pin is not known the line of a refused handshake names (the
/// others are counted only).
const UNKNOWN_PINS_NAMED: usize = 5;

/// What [`Fleet::check_pins`] found: each enrolled (not revoked) host by its pin.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PinCheck {
    /// Hosts that pinned another certificate than the one presented (`pinned`: as
    /// `serve` prints it).
    pub elsewhere: Vec<PinnedHost>,
    /// Hosts that pinned the certificate presented.
    pub presented: Vec<PinnedHost>,
    /// Hosts whose pin is not kept (enrolled by a version that kept none, and not heard
    /// since a version that keeps them runs).
    pub unknown: Vec<String>,
}

/// One enrolled host and the console certificate it pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedHost {
    pub name: String,
    /// Its enrolment: the SHA-256 of the certificate the console issued it (hex, lower
    /// case), what its alerts are closed by (a name may be held again after a
    /// revocation, review rv46-fleet).
    pub certificate: String,
    pub pinned: String,
}

/// The hosts of `hosts` (revoked ones left out) by their pin in `pins` (host certificate
/// fingerprint, pinned fingerprint) against the fingerprint `presented`.
pub fn compare_pins(hosts: &[HostRow], pins: &[(String, String)], presented: &str) -> PinCheck {
    let pins: HashMap<&str, &str> = pins
        .iter()
        .map(|(host, pinned)| (host.as_str(), pinned.as_str()))
        .collect();
    // As `serve` prints it (`AB:CD:...`) or as kept (lower-case hex): one fingerprint.
    let presented = crate::normalize_fingerprint(presented);
    let mut check = PinCheck::default();
    for host in hosts.iter().filter(|h| h.revoked.is_none()) {
        let Some(pinned) = pins.get(host.fingerprint.as_str()) else {
            check.unknown.push(host.name.clone());
            continue;
        };
        let entry = PinnedHost {
            name: host.name.clone(),
            certificate: host.fingerprint.clone(),
            pinned: crate::printed_fingerprint(pinned),
        };
        if presented.is_some() && crate::normalize_fingerprint(pinned) == presented {
            check.presented.push(entry);
        } else {
            check.elsewhere.push(entry);
        }
    }
    check
}

/// The way back for hosts that pinned another certificate than the fleet listener's
/// (`presented`, as `serve` prints it), every step named (review rv46-fleet: "enrol
/// each again" left out the revocation and the host's `fleet/` directory, and `enroll`
/// refused twice before it worked).
/// `name`: the host's, or `NAME` where the steps are said of several.
pub fn pins_way_back(name: &str, presented: &str) -> String {
    format!(
        "Either restore HOME/console/cert.pem and key.pem to the certificate pinned (from backup) and restart serve; or enrol the host again, keeping its trail: on the console, pacsguard console revoke-host {name} --reason TEXT, then pacsguard console enrol-token --continue {name}; on the host, stop serve, move HOME/fleet aside (mv HOME/fleet HOME/fleet.old), pacsguard enroll URL --token T --fingerprint {presented} --name {name}, and start serve again (revoking an enrolment closes every alert the console raised about it)"
    )
}

/// The line said when the store gave [`pacsguard_store::MAX_HOST_PINS_READ`] pins (it
/// reads no more: more may be kept), `read` the pins it gave.
fn pins_read_cut(read: usize) -> Option<String> {
    (read >= pacsguard_store::MAX_HOST_PINS_READ).then(|| format!(
        "fleet: the store gave MAX_HOST_PINS_READ ({}) hosts' pins, the most read: hosts whose pin is past it are taken as of unknown pin, neither raised nor cleared by a comparison with the fleet identity",
        pacsguard_store::MAX_HOST_PINS_READ
    ))
}

/// The log's line when a connection `from` refused the certificate `presented` while
/// the hosts `unknown` have no pin kept: the first [`UNKNOWN_PINS_NAMED`] named, the
/// count of all, and the cut said (anyone may refuse: a long list is not theirs to make).
fn unknown_pins_line(from: IpAddr, presented: &str, unknown: &[String]) -> String {
    let mut named = unknown
        .iter()
        .take(UNKNOWN_PINS_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if unknown.len() > UNKNOWN_PINS_NAMED {
        named.push_str(&format!(
            " and {} more, not named (UNKNOWN_PINS_NAMED {UNKNOWN_PINS_NAMED}; console hosts lists them all)",
            unknown.len() - UNKNOWN_PINS_NAMED
        ));
    }
    format!(
        "fleet: a connection from {from} refused the certificate the fleet listener presents (SHA-256 fingerprint {presented}); {} host(s) enrolled by a version that kept no pin have not connected since ({named}): if one pinned another certificate (versions before session 45 presented [console] cert to hosts while it was set), it is cut off and falls silent. {}",
        unknown.len(),
        pins_way_back("NAME", presented)
    )
}

/// What begins the detail of each alert the console raises about a host: its name and
/// its enrolment (the SHA-256 of the certificate the console issued it), so an alert is
/// about one enrolment, not whoever holds the name later ([`enrolment_named`]).
pub fn host_detail_prefix(name: &str, certificate: &str) -> String {
    format!("host {name} (certificate SHA-256 {certificate}): ")
}

/// The enrolment the detail of the console's alert about host `name` names
/// ([`host_detail_prefix`]): `None` for one raised by a version before (`host NAME: `).
pub fn enrolment_named(name: &str, detail: &str) -> Option<String> {
    let rest = detail
        .strip_prefix("host ")?
        .strip_prefix(name)?
        .strip_prefix(" (certificate SHA-256 ")?;
    let (certificate, rest) = rest.split_at_checked(64)?;
    rest.starts_with("): ")
        .then(|| crate::normalize_fingerprint(certificate))
        .flatten()
}

/// The changes of hosts' states given up after [`MAX_STATE_TRIES`], as the log says
/// them: the first of each [`STATE_GIVE_UP_SAID_EVERY`] at once, the rest counted and
/// said in one line once it has passed (by the next give-up, or the silence check).
#[derive(Debug, Default)]
struct GiveUps {
    /// When the line said last was said.
    said_at: Option<std::time::Instant>,
    /// Give-ups since, not said one by one.
    unsaid: u64,
    /// The hosts of those (the first few, [`GIVE_UP_HOSTS_NAMED`]).
    hosts: Vec<String>,
}

/// How many hosts a line of give-ups counted names (the others are counted only).
const GIVE_UP_HOSTS_NAMED: usize = 5;

impl GiveUps {
    /// A change of `host`'s state given up at `at`: the line to say now, if any.
    fn gave_up(&mut self, host: &str, at: std::time::Instant) -> Option<String> {
        if self.within_window(at) {
            self.unsaid += 1;
            if self.hosts.len() < GIVE_UP_HOSTS_NAMED && !self.hosts.iter().any(|h| h == host) {
                self.hosts.push(host.to_string());
            }
            return None;
        }
        let counted = self
            .counted()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        self.said_at = Some(at);
        Some(format!(
            "fleet: the state of host {host} was moved by other requests {MAX_STATE_TRIES} times (MAX_STATE_TRIES) while this one judged it; left as they wrote it: reports of that host (or copies of it) arrive faster than the store writes them; those that follow within {} s are counted (STATE_GIVE_UP_SAID_EVERY){counted}",
            STATE_GIVE_UP_SAID_EVERY.as_secs()
        ))
    }

    /// The line of the give-ups counted and not said, once the window they fell in has
    /// passed at `at`: never left unsaid.
    fn due(&mut self, at: std::time::Instant) -> Option<String> {
        if self.within_window(at) {
            return None;
        }
        let counted = self.counted()?;
        self.said_at = Some(at);
        Some(format!("fleet: {counted}"))
    }

    fn within_window(&self, at: std::time::Instant) -> bool {
        self.said_at
            .is_some_and(|said| at.duration_since(said) < STATE_GIVE_UP_SAID_EVERY)
    }

    /// "N more changes of state given up ..." for the give-ups counted, and forgets them.
    fn counted(&mut self) -> Option<String> {
        if self.unsaid == 0 {
            return None;
        }
        let hosts = std::mem::take(&mut self.hosts).join(", ");
        let n = std::mem::take(&mut self.unsaid);
        Some(format!(
            "{n} more changes of hosts' states given up after MAX_STATE_TRIES within {} s of the last said, of hosts {hosts}",
            STATE_GIVE_UP_SAID_EVERY.as_secs()
        ))
    }
}

/// The most approvals without a trail record that the listener remembers having raised
/// ([`RaisedOnce`]). Whoever writes the store writes the rows, and hosts report the
/// generations: past this many, the memory is emptied (each is raised again at its
/// host's next report, never dropped) and the console's log says so.
pub const MAX_UNPROVEN_RAISED: usize = 4096;

/// What has been raised once, up to [`MAX_UNPROVEN_RAISED`] entries.
#[derive(Debug, Default)]
struct RaisedOnce {
    seen: std::collections::HashSet<(i64, u64, String)>,
}

impl RaisedOnce {
    /// Whether `key` is raised now (not raised since the memory was last emptied), and
    /// whether the memory was emptied at its limit to hold it.
    fn first(&mut self, key: (i64, u64, String)) -> (bool, bool) {
        let full = self.seen.len() >= MAX_UNPROVEN_RAISED && !self.seen.contains(&key);
        if full {
            self.seen.clear();
        }
        (self.seen.insert(key), full)
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("store", self.pool.at())
            .finish()
    }
}

/// What the path of the console's own alert about a host begins with, the host's name
/// after it (`serve` lists it on the alerts page under that host).
pub const HOST_PATH_PREFIX: &str = "fleet/";

fn host_path(name: &str) -> PathBuf {
    PathBuf::from(format!("{HOST_PATH_PREFIX}{name}"))
}

impl Fleet {
    pub fn new(
        store: impl Into<FleetStoreAt>,
        ca: HostCa,
        cosigner: Cosigner,
        alert: Alert,
    ) -> Fleet {
        Fleet {
            pool: FleetPool::new(store.into()),
            ca,
            cosigner,
            alert,
            host_records: Arc::new(|_: &HostRow, _: &[(u64, Vec<u8>)]| {}),
            quota: Quota::default(),
            first_report_within: FIRST_REPORT_WITHIN,
            log: Arc::new(|line: &str| eprintln!("{line}")),
            refusals: Mutex::default(),
            // Nothing proven, nothing signed: a listener that was not told where its
            // console's trail is signs no approval (fail closed).
            proof: Arc::new(|_: &str, _: u64, _: &str| Ok(None)),
            witness: Arc::new(|_: &str, _: u64, _: &str| Ok(())),
            unproven_alert: None,
            revoked_on_trail: Arc::new(|_: &str| Ok(false)),
            record_revoked: Arc::new(|_: &HostRow, _: i64| Ok(())),
            acknowledged_on_trail: Arc::new(|_: &str, _: &str| Ok(false)),
            unproven_acknowledgements: Mutex::default(),
            unproven_raised: Mutex::default(),
            duplicates: Mutex::default(),
            skewed: Mutex::default(),
            growth: Mutex::new(TrailGrowth::new(now())),
            give_ups: Mutex::default(),
            unwritten: Mutex::default(),
            pins: Mutex::default(),
        }
    }

    /// The SHA-256 fingerprint of the certificate the fleet listener presents, once
    /// [`Fleet::tls_config`] made its configuration.
    pub fn presented(&self) -> Option<String> {
        self.pins.lock().ok().and_then(|p| p.presented.clone())
    }

    /// Keeps in the store, once per run, that the host of certificate `host` pinned the
    /// certificate presented: at its enrolment (what it was shown), or at a connection
    /// (its handshake accepted the certificate presented, so that is what it pinned: a
    /// pin kept wrong, by a version that kept none, a bad restore of the store or an
    /// edit, is corrected by the host's next connection, review rv46-fleet). A failure
    /// is said; the host is served all the same.
    fn keep_pin(&self, db: &mut dyn FleetStore, host: &str, name: &str) {
        let Ok(mut pins) = self.pins.lock() else {
            return;
        };
        let Some(presented) = pins.presented.clone() else {
            return;
        };
        if pins.kept.contains(host) {
            return;
        }
        match db.keep_host_pin(host, &presented, now()) {
            Ok(()) => {
                pins.kept.insert(host.to_string());
            }
            Err(e) => (self.log)(&format!(
                "fleet: the fleet identity host {name} pinned could not be kept in the store ({e}): a later change of the identity is not told for it"
            )),
        }
    }

    /// Compares the pin each enrolled host keeps with the certificate presented, and
    /// raises `host-pinned-other` (once per run per host and pin) for each host that
    /// pinned another: it refuses every connection to this console, so nothing of it
    /// arrives and, without this, nothing said why (review rv45-fleet: an upgrade from a
    /// version that presented `[console] cert` to hosts cut them off silently). Called at
    /// start and when a connection refused the certificate in its handshake
    /// (`refused_from`): then hosts whose pin is not kept are said, once a run, in the
    /// log, never raised (anyone who reaches the listener can refuse its certificate).
    pub fn check_pins(
        &self,
        db: &mut dyn FleetStore,
        refused_from: Option<IpAddr>,
    ) -> Result<PinCheck, StoreError> {
        let Some(presented) = self.presented() else {
            return Ok(PinCheck::default());
        };
        let hosts = db.hosts()?;
        let pins = db.host_pins()?;
        if let Some(line) = pins_read_cut(pins.len()) {
            (self.log)(&line);
        }
        let check = compare_pins(&hosts, &pins, &presented);
        let presented = crate::printed_fingerprint(&presented);
        let by_certificate: HashMap<&str, &HostRow> =
            hosts.iter().map(|h| (h.fingerprint.as_str(), h)).collect();
        let mut raise = Vec::new();
        if let Ok(mut known) = self.pins.lock() {
            for host in &check.presented {
                known.kept.insert(host.certificate.clone());
            }
            for PinnedHost {
                certificate,
                pinned,
                ..
            } in &check.elsewhere
            {
                if let Some(host) = by_certificate.get(certificate.as_str())
                    && known.raised.insert((certificate.clone(), pinned.clone()))
                {
                    raise.push((*host, format!(
                        "it pinned the console's certificate of SHA-256 fingerprint {pinned} at its enrolment, and the fleet listener presents {presented} now: the host refuses every connection, nothing of it arrives. {}",
                        pins_way_back(&host.name, &presented)
                    )));
                }
            }
            if let Some(from) = refused_from
                && !check.unknown.is_empty()
                && !known.unknown_said
            {
                // Anyone who reaches the listener can refuse its certificate (a port
                // scanner, a browser): no host is named cut off on that alone (review
                // rv46-fleet: one `curl` raised an alert for every host not heard since
                // the upgrade). Said once a run; a host really cut off falls silent and
                // its silence is raised as every silence is.
                known.unknown_said = true;
                (self.log)(&unknown_pins_line(from, &presented, &check.unknown));
            }
        }
        for (host, detail) in raise {
            self.raise(host, FindingKind::HostPinnedOther, detail);
        }
        Ok(check)
    }

    /// A connection refused the console's certificate in its handshake (the peer sent
    /// an alert): a host whose pin is another, or anyone. Compares the pins again, at
    /// most once per [`PIN_CHECK_EVERY`].
    fn handshake_refused(&self, from: Option<IpAddr>) {
        let now = std::time::Instant::now();
        match self.pins.lock() {
            Ok(mut pins) => {
                if pins
                    .checked_at
                    .is_some_and(|at| now.duration_since(at) < PIN_CHECK_EVERY)
                {
                    return;
                }
                pins.checked_at = Some(now);
            }
            Err(_) => return,
        }
        let from = from.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let checked = self
            .pool
            .get()
            .and_then(|mut db| self.check_pins(&mut *db, Some(from)));
        if let Err(e) = checked {
            (self.log)(&format!(
                "fleet: a connection from {from} refused the console's certificate; the hosts' pins could not be compared with it ({e})"
            ));
        }
    }

    /// Where an approval the store holds is proven before the witness key signs it: the
    /// console's own trail (`serve` asks its console's bindings).
    pub fn with_proof(mut self, proof: Proof) -> Fleet {
        self.proof = proof;
        self
    }

    /// Where each profile a host reports is told to the console's trail before the report
    /// is judged (`serve`: its console's bindings, beside [`Fleet::with_proof`]).
    pub fn with_witness(mut self, witness: ProfileWitness) -> Fleet {
        self.witness = witness;
        self
    }

    /// Where an approval without a trail record is raised, once per process here
    /// (`serve`: its console, which raises it once for as long as its trail says so).
    pub fn with_unproven_alert(mut self, raise: UnprovenAlert) -> Fleet {
        self.unproven_alert = Some(raise);
        self
    }

    /// The console's own trail: [`Fleet::with_proof`], [`Fleet::with_witness`] and
    /// [`Fleet::with_unproven_alert`] at once.
    pub fn with_console_trail(mut self, trail: ConsoleTrail) -> Fleet {
        self.revoked_on_trail = trail.revoked;
        self.record_revoked = trail.record_revoked;
        self.acknowledged_on_trail = trail.acknowledged;
        self.with_proof(trail.proof)
            .with_witness(trail.witness)
            .with_unproven_alert(trail.unproven)
    }

    /// Whether `host`, presenting its certificate, is refused as revoked (review r24): a
    /// revocation in the store is recorded on the console's trail (so that an edit of the
    /// store cannot undo it); one the trail records though the store no longer says so is
    /// refused all the same and raised once as `host-revocation-undone` (the store was
    /// edited). A trail that cannot be asked refuses (fail closed).
    fn revoked(&self, db: &mut dyn FleetStore, host: &HostRow) -> Result<bool, StoreError> {
        if let Some(at) = host.revoked {
            self.record_revocation(host, at);
            return Ok(true);
        }
        match (self.revoked_on_trail)(&host.fingerprint) {
            Ok(false) => Ok(false),
            Ok(true) => {
                let detail = "this console's audit trail records its certificate revoked, but the fleet's store no longer says so (its row was edited with sqlite3 or psql): it stays refused; investigate who wrote the store".to_string();
                if self.set_refused_state(db, host, "revocation-undone", &detail)? {
                    self.raise(host, FindingKind::HostRevocationUndone, detail);
                }
                Ok(true)
            }
            Err(e) => {
                (self.log)(&format!(
                    "fleet: whether this console's trail records host {} revoked could not be asked ({e}): refused at this report",
                    host.name
                ));
                Ok(true)
            }
        }
    }

    /// The standing refusal of `host` (as read) that an acknowledgement is in effect for:
    /// the store's acknowledgement names its digest and the console's trail records it.
    /// One the store holds for it and the trail does not is raised once per process as
    /// `host-acknowledgement-unproven` (written in the database) and not in effect.
    fn acknowledged(&self, host: &HostRow) -> Option<acknowledge::Standing> {
        let ack = host.acknowledged.as_ref()?;
        let standing = acknowledge::standing(&host.state, &host.detail)?;
        if ack.digest != standing.digest() {
            return None;
        }
        match (self.acknowledged_on_trail)(&host.fingerprint, &ack.digest) {
            Ok(true) => Some(standing),
            Ok(false) => {
                let key = (host.id, 0, ack.digest.clone());
                let (first, _) = self
                    .unproven_acknowledgements
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .first(key);
                if first {
                    let shown =
                        |text: &str| text.chars().take(MAX_SHOWN_STORE_CHARS).collect::<String>();
                    self.raise(
                        host,
                        FindingKind::HostAcknowledgementUnproven,
                        format!(
                            "the fleet's store says its standing refusal ({}) was acknowledged by {:?} for the reason {:?}, but this console's audit trail records no such acknowledgement (host-acknowledged): the row was written with sqlite3 or psql; it is not shown acknowledged, and its refusal stands as before",
                            standing.state,
                            shown(&ack.by),
                            shown(&ack.reason)
                        ),
                    );
                }
                None
            }
            Err(e) => {
                (self.log)(&format!(
                    "fleet: whether this console's trail records the acknowledgement of host {} could not be asked ({e}): not taken as acknowledged",
                    host.name
                ));
                None
            }
        }
    }

    /// Records on the console's trail the revocation of `host` (at `at`, as the store
    /// says); a failure is said on the log and tried again at the next look.
    fn record_revocation(&self, host: &HostRow, at: i64) {
        if let Err(e) = (self.record_revoked)(host, at) {
            (self.log)(&format!(
                "fleet: the revocation of host {} could not be recorded on this console's trail ({e}); tried again at its next report or silence check",
                host.name
            ));
        }
    }

    /// How long after its enrolment a host's first verified report is due before it is
    /// raised silent (with [`SILENCE_GRACE`]): a staged rollout, whose guards start days
    /// after their enrolment, sets it longer than [`FIRST_REPORT_WITHIN`].
    pub fn with_first_report_within(mut self, within: Duration) -> Fleet {
        self.first_report_within = within;
        self
    }

    /// Where store failures a host was refused for are written in full (standard error
    /// by default).
    /// Where each batch of a host's records is told once stored ([`HostRecords`]).
    pub fn with_host_records(mut self, told: HostRecords) -> Fleet {
        self.host_records = told;
        self
    }

    pub fn with_log(mut self, log: Log) -> Fleet {
        self.log = log;
        self
    }

    /// The refusal text for a store failure, its full text in the console's log.
    pub fn store_refusal(&self, error: &dyn std::fmt::Display) -> String {
        store_refusal(&self.log, &self.refusals, error)
    }

    /// Shares `pool` (the one the console's pages use) instead of a pool of its own:
    /// one bound on the connections of one console.
    pub fn with_pool(mut self, pool: Arc<FleetPool>) -> Fleet {
        self.pool = pool;
        self
    }

    /// Where the fleet's tables live.
    pub fn store(&self) -> &FleetStoreAt {
        self.pool.at()
    }

    /// The connections to the store.
    pub fn pool(&self) -> &Arc<FleetPool> {
        &self.pool
    }

    /// Another quota than [`Quota::default`] (tests at the limit).
    pub fn with_quota(mut self, quota: Quota) -> Fleet {
        self.quota = quota;
        self
    }

    /// Charges `adding` record bytes to `host`'s quota window; `Err` with the detail
    /// (raised once as `host-quota-exceeded`) when they would pass the limit, and nothing
    /// is charged then.
    fn charge_quota(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        adding: u64,
        now: i64,
    ) -> Result<Result<(i64, u64), String>, StoreError> {
        let window = i64::try_from(self.quota.window.as_secs()).unwrap_or(i64::MAX);
        let (start, used) = match db.charge_quota(host.id, now, window, self.quota.bytes, adding)? {
            Ok(charged) => return Ok(Ok(charged)),
            Err(held) => held,
        };
        let detail = format!(
            "it sent {used} bytes of records and alerts in the current {} h window; {adding} more would pass the console's limit of {} bytes per host (HOST_QUOTA_BYTES): the console takes no more of its records until the window ends in {} s (the host keeps them and delivers them then)",
            self.quota.window.as_secs() / 3600,
            self.quota.bytes,
            start.saturating_add(window).saturating_sub(now)
        );
        if self.set_refused_state(db, host, "quota", &detail)? {
            self.raise(host, FindingKind::HostQuotaExceeded, detail.clone());
        }
        Ok(Err(detail))
    }

    /// The listener's TLS configuration: the console's own certificate, client
    /// certificates requested and, when given, verified against the host CA.
    pub fn tls_config(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        if let (Some(first), Ok(mut pins)) = (chain.first(), self.pins.lock()) {
            pins.presented = Some(crate::cert_fingerprint(first));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.cert_der().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(config))
    }

    fn raise(&self, host: &HostRow, kind: FindingKind, detail: String) {
        (self.alert)(self.finding(host, kind, detail));
    }

    /// [`Fleet::raise`] at another severity than an alert.
    fn raise_as(&self, host: &HostRow, kind: FindingKind, severity: Severity, detail: String) {
        let mut finding = self.finding(host, kind, detail);
        finding.severity = severity;
        (self.alert)(finding);
    }

    /// Raises an alert whose occasion the host controls (a claim, its clock, who
    /// reports under its certificate), charged to its quota ([`ALERT_QUOTA_BYTES`] and
    /// the sentence): past the quota it is not raised (`host-quota-exceeded` was, once).
    fn raise_charged(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        kind: FindingKind,
        detail: String,
    ) -> Result<(), StoreError> {
        let cost = ALERT_QUOTA_BYTES.saturating_add(detail.len() as u64);
        if self.charge_quota(db, host, cost, now())?.is_ok() {
            self.raise(host, kind, detail);
        }
        Ok(())
    }

    /// Tells who sends this report under `host`'s certificate (see [`crate::duplicates`]):
    /// `None` to judge it as always, or the refusal of a report from another trail than
    /// the one witnessed, waiting to be told apart from the host made anew or a copy of
    /// its enrolment running beside it (`host-identity-duplicated`, raised once).
    fn tell_reporter(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        mut reporter: Reporter,
    ) -> Result<Option<String>, StoreError> {
        // The key as the host sent it is its to write: named in alerts only as parsed
        // and written again; one that does not parse is refused as malformed (`report`).
        match pacsguard_trail::note::Verifier::parse(&reporter.trail_key) {
            Ok(verifier) => reporter.trail_key = verifier.encode(),
            Err(_) => return Ok(None),
        }
        // A trail is witnessed once a checkpoint signed by its key was accepted.
        let Some(held) = host
            .trail_key
            .as_deref()
            .filter(|_| host.checkpoint.as_deref().is_some_and(|c| !c.is_empty()))
        else {
            return Ok(None);
        };
        let now = std::time::Instant::now();
        let lock = || {
            self.duplicates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if witness::key_part(held) == witness::key_part(&reporter.trail_key) {
            let (verdict, emptied) = lock().witnessed(host.id, reporter, now);
            self.say_watch_emptied(emptied);
            if let Some(verdict) = verdict {
                self.say_duplicated(db, host, &verdict)?;
            }
            return Ok(None);
        }
        let watch = Duration::from_secs(u64::try_from(host.interval).unwrap_or(0));
        let stranger = reporter.trail_key.clone();
        // A duplication found before this process (a restart, or another console on the
        // store) holds: the copy is refused at once, never judged as the host made anew
        // because the host happens to be down now (review r26).
        let remembered = lock().is_duplicated(host.id);
        if !remembered && db.identity_duplicated(host.id)?.is_some() {
            let witnessed = Reporter {
                trail_key: held.to_string(),
                from: None,
            };
            let emptied = lock().known_duplicated(host.id, witnessed, now);
            self.say_watch_emptied(emptied);
        }
        // Each trail key not seen is charged before it is told apart: a stranger that
        // rotates its key pays for every one (review r26).
        if !lock().knows_stranger_key(host.id, &stranger)
            && let Err(detail) =
                self.charge_quota(db, host, STRANGER_KEY_QUOTA_BYTES, self::now())?
        {
            return Ok(Some(format!("the console refused this report: {detail}")));
        }
        let (verdict, emptied) = lock().stranger(host.id, reporter, watch, now);
        self.say_watch_emptied(emptied);
        match verdict {
            Verdict::Judge => Ok(None),
            Verdict::Waiting { left } => Ok(Some(format!(
                "the console refused this report: it comes with trail key {stranger}, not the one this console witnesses for host {} ({held}); the console waits {} s more for that trail to report (a copy of this host's enrolment running beside it) before it takes this one as the host made anew",
                host.name,
                left.as_secs().max(1)
            ))),
            Verdict::Duplicated { .. } => {
                let detail = self.say_duplicated(db, host, &verdict)?;
                Ok(Some(format!("the console refused this report: {detail}")))
            }
        }
    }

    /// Notes a duplicated identity on the host's state, and raises it if `verdict` says
    /// so (the first time for the certificate) or the state calls it news
    /// ([`Fleet::set_refused_state`]); the sentence.
    fn say_duplicated(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        verdict: &Verdict,
    ) -> Result<String, StoreError> {
        let Verdict::Duplicated {
            raise,
            refused,
            stranger,
            witnessed,
        } = verdict
        else {
            return Ok(String::new());
        };
        let detail = format!(
            "two processes report under its certificate at once: the one with the trail this console witnesses ({witnessed}) and another ({stranger}; {refused} of its reports refused so far): a copy of its enrolment (HOME/fleet/) runs beside it. The copy's reports are refused and never judged; the host's own are witnessed and its approval stays in effect. Stop the copy, or revoke this host (its key is copied) and enrol it anew"
        );
        // The count on the Hosts page is renewed at each refusal: the state stands
        // and each one after is counted on its detail (review r29-fleet2).
        let state = self.set_refused_state(db, host, "duplicated", &detail);
        if *raise {
            // The duplication is raised once per certificate: the memory says so from
            // this verdict on, whatever the store answers below. So the alert is raised
            // even when the store fails (a lock held, a write given up on): a store
            // error lost it for good, every later verdict saying it was raised (review
            // of session 31). Kept in the store for a restart of the console, and
            // charged to the host's quota, when the store answers.
            let noted = db.note_identity_duplicated(host.id, &stranger.trail_key, self::now());
            let charged = match &noted {
                Ok(_) => self.raise_charged(
                    db,
                    host,
                    FindingKind::HostIdentityDuplicated,
                    detail.clone(),
                ),
                Err(_) => Ok(()),
            };
            if noted.is_err() || charged.is_err() {
                self.raise(host, FindingKind::HostIdentityDuplicated, detail.clone());
            }
            noted?;
            charged?;
        } else if matches!(state, Ok(true)) {
            // Raised once per certificate, and again whenever the host's state calls it
            // news: another copy (another trail key) than the one an administrator
            // acknowledged, or the state moved here from another refusal. Ignored, a
            // second copy hid behind an acknowledged first, its detail moved and the
            // acknowledgement out of effect, nothing raised (session 32).
            let charged = self.raise_charged(
                db,
                host,
                FindingKind::HostIdentityDuplicated,
                detail.clone(),
            );
            if charged.is_err() {
                self.raise(host, FindingKind::HostIdentityDuplicated, detail.clone());
            }
            charged?;
        }
        state?;
        Ok(detail)
    }

    /// Whether a report refused as a fork of `host`'s trail under its own key comes
    /// from a copy of the whole home running beside it (see [`crate::duplicates`]): the
    /// sentence then, the duplication noted (raised once) instead of the fork.
    fn fork_beside(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        trail_key: &str,
        from: Option<IpAddr>,
    ) -> Result<Option<String>, StoreError> {
        // Parsed by the witness before it found the fork: named as written again.
        let Ok(verifier) = pacsguard_trail::note::Verifier::parse(trail_key) else {
            return Ok(None);
        };
        let reporter = Reporter {
            trail_key: verifier.encode(),
            from,
        };
        let watch = Duration::from_secs(u64::try_from(host.interval).unwrap_or(0));
        let lock = || {
            self.duplicates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let now = std::time::Instant::now();
        // A copy of the whole home found before this process (its key, the host's, kept
        // in the store): refused as that copy from its first fork (review r26).
        if !lock().is_duplicated(host.id)
            && db.identity_duplicated(host.id)?.is_some_and(|kept| {
                witness::key_part(&kept) == witness::key_part(&reporter.trail_key)
            })
        {
            let emptied = lock().known_twin(host.id, reporter.clone(), now);
            self.say_watch_emptied(emptied);
        }
        let (verdict, emptied) = lock().forked(host.id, reporter, watch, now);
        self.say_watch_emptied(emptied);
        match verdict {
            ForkVerdict::Fork => Ok(None),
            ForkVerdict::Duplicated(verdict) => self.say_duplicated(db, host, &verdict).map(Some),
        }
    }

    fn say_watch_emptied(&self, emptied: bool) {
        if emptied {
            (self.log)(&format!(
                "fleet: more than {} hosts' reporters remembered (MAX_WATCHED_HOSTS): the memory is emptied; a copy of a host's enrolment is told anew from its next reports",
                crate::duplicates::MAX_WATCHED_HOSTS
            ));
        }
    }

    /// Raises `host-clock-skewed` once the host's clock, as its report states it
    /// (`sent_at`), is further than [`clock::MAX_CLOCK_SKEW`] from the console's; again
    /// only after it was seen back within it, or off on the other side.
    fn check_clock(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        sent_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let Some(sent_at) = sent_at else {
            return Ok(());
        };
        let received = clock::unix_now();
        let ahead = clock::skew(sent_at, received);
        let (raise, emptied) = self
            .skewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .note(host.id, ahead);
        if emptied {
            (self.log)(&format!(
                "fleet: more than {} hosts' clocks raised as off (MAX_SKEWED_REMEMBERED): the memory is emptied; each host still off is raised again at its next report",
                clock::MAX_SKEWED_REMEMBERED
            ));
        }
        match ahead {
            Some(ahead) if raise => self.raise_charged(
                db,
                host,
                FindingKind::HostClockSkewed,
                clock::skew_detail(sent_at, received, ahead),
            ),
            _ => Ok(()),
        }
    }

    /// The alert of `kind` about `host`.
    fn finding(&self, host: &HostRow, kind: FindingKind, detail: String) -> Finding {
        Finding::new(
            host_path(&host.name),
            kind,
            Severity::Alert,
            format!(
                "{}{detail}",
                host_detail_prefix(&host.name, &host.fingerprint)
            ),
        )
    }

    /// Answers one request. `peer` is the client certificate the handshake verified.
    pub fn answer(
        &self,
        db: &mut dyn FleetStore,
        peer: Option<&[u8]>,
        request: Request,
    ) -> Response {
        self.answer_from(db, peer, None, request)
    }

    /// [`Fleet::answer`] for a request that came `from` an address (named when two
    /// processes report under one certificate).
    pub fn answer_from(
        &self,
        db: &mut dyn FleetStore,
        peer: Option<&[u8]>,
        from: Option<IpAddr>,
        request: Request,
    ) -> Response {
        let refused = |reason: String| Response::Refused { reason };
        match request {
            Request::Enrol { token, name, csr } => {
                self.enrol(db, &token, &name, &csr).unwrap_or_else(refused)
            }
            Request::ApprovalStatus { profile } => {
                let Some(peer) = peer else {
                    return refused(
                        "this connection has no client certificate: enrol first (pacsguard enroll)"
                            .into(),
                    );
                };
                self.approval_status(db, peer, &profile)
                    .unwrap_or_else(refused)
            }
            Request::Report {
                trail_key,
                interval,
                first,
                records,
                checkpoint,
                profile,
                sent_at,
            } => {
                let Some(peer) = peer else {
                    return refused(
                        "this connection has no client certificate: enrol first (pacsguard enroll)"
                            .into(),
                    );
                };
                // Before the host is read: a refusal kept waiting from here on was raised
                // after this report was judged, and its batch does not end it.
                let judged = self.lock_unwritten().mark();
                let host = match db.host_by_fingerprint(&crate::cert_fingerprint(peer)) {
                    Ok(Some(host)) => host,
                    Ok(None) => {
                        return refused("the console does not know this host's certificate".into());
                    }
                    Err(e) => return refused(self.store_refusal(&e)),
                };
                match self.revoked(db, &host) {
                    Ok(false) => {}
                    Ok(true) => {
                        return refused(format!(
                            "this host ({}) was revoked by the console: enrol it anew to report again",
                            host.name
                        ));
                    }
                    Err(e) => return refused(self.store_refusal(&e)),
                }
                // Its handshake accepted the certificate presented: a host enrolled by a
                // version that kept no pin has it kept now.
                self.keep_pin(db, &host.fingerprint, &host.name);
                // Before anything of the report is judged: a copy of the host's
                // enrolment beside it must not move the host's profile (review r25).
                let reporter = Reporter {
                    trail_key: trail_key.clone(),
                    from,
                };
                match self.tell_reporter(db, &host, reporter) {
                    Ok(None) => {}
                    Ok(Some(refusal)) => return refused(refusal),
                    Err(e) => return refused(self.store_refusal(&e)),
                }
                if let Err(e) = self.check_clock(db, &host, sent_at) {
                    return refused(self.store_refusal(&e));
                }
                // The trail first, the profile after (review r26): a report whose trail
                // is not proven (a copy of the whole home forking the host's trail) must
                // not move the host's profile or put its approval out of effect.
                self.report(
                    db,
                    &host,
                    &trail_key,
                    interval,
                    first,
                    &records,
                    checkpoint.as_deref(),
                    from,
                    profile.as_ref(),
                    judged,
                )
                .unwrap_or_else(|e| refused(self.store_refusal(&e)))
            }
        }
    }

    fn enrol(
        &self,
        db: &mut dyn FleetStore,
        token: &str,
        name: &str,
        csr: &str,
    ) -> Result<Response, String> {
        if !is_token(token) {
            return Err(
                "the enrolment token is not one this console issues (64 hex digits)".into(),
            );
        }
        check_new_host_name(name)?;
        // Nothing is parsed or signed for a token that would be refused anyway.
        if let Some(refusal) = db
            .enrol_token_refusal(&token_digest(token), now())
            .map_err(|e| self.store_refusal(&e))?
        {
            return Err(token_refusal(refusal));
        }
        // After the token: who is enrolled is told to holders of a valid token only.
        if let Some(existing) = look_alike(db, name).map_err(|e| self.store_refusal(&e))? {
            return Err(format!(
                "host name {name:?} is the enrolled host {existing:?} written another way (names are compared without case, a trailing dot or '_' for '-'): choose another name (--name), or revoke {existing} first (pacsguard console revoke-host)"
            ));
        }
        let csr = B64
            .decode(csr)
            .map_err(|_| "the certificate request is not base64".to_string())?;
        let (pem, der) = self.ca.issue(&csr, name).map_err(|e| e.to_string())?;
        match db
            .enrol_host(
                &token_digest(token),
                now(),
                name,
                &crate::cert_fingerprint(&der),
            )
            .map_err(|e| self.store_refusal(&e))?
        {
            Ok(_) => {
                // What the host was shown in this handshake is what it pins.
                self.keep_pin(db, &crate::cert_fingerprint(&der), name);
                Ok(Response::Enrolled {
                    certificate: pem,
                    witness: self.cosigner.verifier(),
                })
            }
            Err(refusal) => Err(token_refusal(refusal)),
        }
    }

    /// Notes the profile generation a host reports as current: one it claims for the
    /// first time and no approver accepted here is raised as `host-profile-unapproved`
    /// (a re-baseline made on the host itself); one an approver accepted gets the
    /// console's approval, sent back with the answer for the host to keep, unless the
    /// host went back to it after reporting another (`ProfileRow::superseded`: its store
    /// put back from a copy): raised when it goes back, and not signed.
    fn judge_profile(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
    ) -> Result<Option<String>, String> {
        if !claim.is_well_formed() {
            return Err(
                "the report names its profile with a malformed digest (64 hex digits expected)"
                    .into(),
            );
        }
        // Told to the console's trail first: an approval the host left is out of effect
        // there before this report (or any later one) is judged.
        (self.witness)(&host.name, claim.generation, &claim.digest).map_err(|e| {
            (self.log)(&format!(
                "fleet: the profile generation {} host {} reports could not be recorded on this console's trail ({e}): its report is refused and sent again",
                claim.generation, host.name
            ));
            "the console could not record this report on its audit trail now: try again later"
                .to_string()
        })?;
        let noted = self
            .note_profile(db, host, claim)
            .map_err(|e| self.store_refusal(&e))?;
        self.settle_older_claims(db, host, claim)
            .map_err(|e| self.store_refusal(&e))?;
        match (noted.approved_at, noted.superseded) {
            (Some(_), None) => match self.proven_approval(db, host, claim) {
                // Signed with the time the trail recorded, not the store's.
                Some(at) => Ok(Some(self.cosigner.approve(
                    &host.name,
                    claim,
                    u64::try_from(at).unwrap_or(0),
                ))),
                None => Ok(None),
            },
            _ => {
                self.raise_profile(db, host, claim, &noted)
                    .map_err(|e| self.store_refusal(&e))?;
                Ok(None)
            }
        }
    }

    /// Notes `claim` of `host` in the store. A noting whose outcome is unknown (a
    /// COMMIT sent and never answered) is remembered: the store may hold the claim, and
    /// the host's next report would find it known and its alert never raised (review of
    /// session 33). The claim noted after one unconfirmed is taken as news (`new`).
    fn note_profile(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
    ) -> Result<pacsguard_store::ProfileNoted, StoreError> {
        match db.note_profile(
            host.id,
            claim.generation,
            &claim.digest,
            claim.created,
            now(),
        ) {
            Ok(mut noted) => {
                if self.lock_unwritten().profile_noted(host.id, claim) {
                    noted.new = true;
                }
                Ok(noted)
            }
            Err(error) => {
                if error.outcome_unknown() {
                    (self.log)(&format!(
                        "fleet: host {}: the store did not confirm that its profile generation {} was noted ({error}): it is judged again once the store answers",
                        host.name, claim.generation
                    ));
                    self.lock_unwritten().profile_unconfirmed(host.id, claim);
                }
                Err(error)
            }
        }
    }

    /// The claims of `host` whose noting the store did not confirm, once the host's
    /// report names `newer` (noted just now): they are older (a host names one profile
    /// at a time), so never noted again: noted after `newer`, the store took the older
    /// one as the host's current profile and the host's next report raised a false
    /// "went back to it" (review of session 34). Each is judged from a read instead:
    /// its own `host-profile-unapproved` raised unless the store holds it approved.
    fn settle_older_claims(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        newer: &ProfileClaim,
    ) -> Result<(), StoreError> {
        let older: Vec<ProfileClaim> = self
            .lock_unwritten()
            .take_profiles(host.id)
            .into_iter()
            .filter(|c| c != newer)
            .collect();
        for (at, claim) in older.iter().enumerate() {
            if let Err(error) = self.settle_older_claim(db, host, claim) {
                // Put back, this one and those after it: taken out of memory and
                // dropped on the store's error, their `host-profile-unapproved` was
                // never raised (review of session 34). Settled at the next report.
                let mut unwritten = self.lock_unwritten();
                for unsettled in &older[at..] {
                    unwritten.profile_unconfirmed(host.id, unsettled);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Judges one older `claim` of `host` from a read ([`Fleet::settle_older_claims`]):
    /// its alert raised unless the store holds it approved.
    fn settle_older_claim(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
    ) -> Result<(), StoreError> {
        let held = db.profile(host.id, claim.generation, &claim.digest)?;
        if held.is_some_and(|row| row.approved.is_some()) {
            return Ok(());
        }
        let made_on_host = pacsguard_store::ProfileNoted {
            new: true,
            approved_at: None,
            superseded: None,
            switched: false,
            returned: false,
        };
        self.raise_profile(db, host, claim, &made_on_host)
    }

    /// Notes again, once the store answers, a claim whose noting it did not confirm, and
    /// raises what the claim calls for (an approved one is signed at the host's next
    /// report, as ever).
    fn note_claim(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
    ) -> Result<(), StoreError> {
        let noted = self.note_profile(db, host, claim)?;
        if noted.approved_at.is_some() && noted.superseded.is_none() {
            return Ok(());
        }
        self.raise_profile(db, host, claim, &noted)
    }

    /// Raises what a profile `claim` of `host` not approved in effect calls for, as
    /// `noted`: made on the host and new, gone back to after another, or gone back to an
    /// approved one superseded since.
    fn raise_profile(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
        noted: &pacsguard_store::ProfileNoted,
    ) -> Result<(), StoreError> {
        // A generation approved once that the host goes back to after reporting
        // another of the same or a later generation (its store restored from a
        // copy, or deleted and made again): root on the host rewinding its own
        // history. Not signed again, raised when the host goes back (review s18).
        let rollback = noted.superseded.filter(|_| noted.switched || noted.new);
        // Going back to a profile made on the host and never approved, from
        // another (its store of then put back): raised when it goes back, not
        // only when first named, long ago (review s18-r13).
        let back_to_unapproved = noted.returned && noted.approved_at.is_none();
        if !(noted.new || rollback.is_some() || back_to_unapproved) {
            return Ok(());
        }
        let detail = match rollback {
            None if back_to_unapproved => format!(
                "profile generation {} (signed on the host at {}, {}) was made on the host and is not approved on this console, and the host went back to it after reporting another profile: its store was restored or replaced on the host: investigate the host",
                claim.generation,
                claim.created,
                &claim.digest[..16]
            ),
            Some(newer) => format!(
                "profile generation {} (signed on the host at {}, {}) was approved on this console, but the host went back to it after reporting generation {newer}: its store was restored or replaced on the host; the approval is not in effect: investigate the host",
                claim.generation,
                claim.created,
                &claim.digest[..16]
            ),
            None => format!(
                "profile generation {} (signed on the host at {}, {}) was made on the host and is not approved on this console: review it on the Hosts page and approve it there, or investigate the host",
                claim.generation,
                claim.created,
                &claim.digest[..16]
            ),
        };
        // Past the quota the claim is still noted (the Hosts page shows the
        // host's highest generation unapproved) and `host-quota-exceeded`
        // was raised once; only this alert is not raised.
        self.raise_charged(db, host, FindingKind::HostProfileUnapproved, detail)
    }

    /// The time this console's trail records for the approval of `claim` the store holds
    /// for `host` (see [`Proof`]); `None`, nothing is signed: an approval with no trail
    /// record is raised once as `host-approval-unproven` (the store written directly, or
    /// the approval made on another console sharing it), and a trail that cannot be
    /// asked now is said in the console's log (asked again at the next report).
    fn proven_approval(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        claim: &ProfileClaim,
    ) -> Option<i64> {
        match (self.proof)(&host.name, claim.generation, &claim.digest) {
            Ok(Some(at)) => return Some(at),
            Ok(None) => {}
            Err(e) => {
                (self.log)(&format!(
                    "fleet: the approval of profile generation {} of host {} could not be checked against this console's trail ({e}): not signed at this report",
                    claim.generation, host.name
                ));
                return None;
            }
        }
        let key = (host.id, claim.generation, claim.digest.clone());
        let (first, emptied) = self
            .unproven_raised
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first(key);
        if emptied {
            (self.log)(&format!(
                "fleet: more than {MAX_UNPROVEN_RAISED} approvals without a record on this console's trail were raised (MAX_UNPROVEN_RAISED): the memory of which were raised is emptied, each is raised again at its host's next report"
            ));
        }
        if !first {
            return None;
        }
        // Whoever wrote the row wrote these: cut, and quoted as data.
        let cut = |text: &str| {
            let count = text.chars().count();
            let head: String = text.chars().take(MAX_SHOWN_STORE_CHARS).collect();
            if count > MAX_SHOWN_STORE_CHARS {
                format!("{head}… ({count} characters, cut at MAX_SHOWN_STORE_CHARS)")
            } else {
                head
            }
        };
        let said = match db.profile(host.id, claim.generation, &claim.digest) {
            Ok(Some(row)) => row.approved.map_or_else(String::new, |(by, reason, at)| {
                format!(
                    " (the store says by {:?} at {at} for {:?})",
                    cut(&by),
                    cut(&reason)
                )
            }),
            _ => String::new(),
        };
        let finding = self.finding(
            host,
            FindingKind::HostApprovalUnproven,
                format!(
                    "profile generation {} ({}) is approved in the fleet's store{said}, but this console's audit trail holds no record of that approval in effect: none (the row was written in the database with sqlite3 or psql, or the approval was made on another console sharing the store), or one superseded there by a later approval of another profile of this host or by the host's report of another profile (the host went back to a profile it had left, and the store was edited so that it does not say so): no approval is signed for it. Review it on the Hosts page and approve it there (step-up, reason), or investigate who wrote the store",
                    claim.generation,
                    &claim.digest[..16]
                ),
        );
        match &self.unproven_alert {
            Some(raise) => {
                if let Err(e) = raise(&host.name, claim.generation, &claim.digest, finding) {
                    (self.log)(&format!(
                        "fleet: the approval of profile generation {} of host {} without a record on this console's trail could not be raised ({e})",
                        claim.generation, host.name
                    ));
                }
            }
            None => (self.alert)(finding),
        }
        None
    }

    /// Whether the console's approval of `claim` is the one in effect for the host of
    /// `peer`: approved here, not superseded by another profile the host reported since
    /// (a store restored on the host with the approvals file of then), and the host's
    /// current profile as this console last heard it. Notes nothing but an undone
    /// revocation ([`Fleet::revoked`]).
    fn approval_status(
        &self,
        db: &mut dyn FleetStore,
        peer: &[u8],
        claim: &ProfileClaim,
    ) -> Result<Response, String> {
        let store = |e: StoreError| self.store_refusal(&e);
        let host = db
            .host_by_fingerprint(&crate::cert_fingerprint(peer))
            .map_err(store)?
            .ok_or_else(|| "the console does not know this host's certificate".to_string())?;
        if self.revoked(db, &host).map_err(store)? {
            return Err(format!(
                "this host ({}) was revoked by the console: its approvals are not in effect",
                host.name
            ));
        }
        let said =
            |in_effect: bool, detail: String| Ok(Response::ApprovalStatus { in_effect, detail });
        let Some(row) = db
            .profile(host.id, claim.generation, &claim.digest)
            .map_err(store)?
        else {
            return said(
                false,
                format!(
                    "the console has no report of profile generation {}",
                    claim.generation
                ),
            );
        };
        if row.approved.is_none() {
            return said(
                false,
                format!(
                    "the console has not approved profile generation {}",
                    claim.generation
                ),
            );
        }
        // The store's word is not enough (session 22): the console's trail must record
        // the approval, as for signing it.
        match (self.proof)(&host.name, claim.generation, &claim.digest) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return said(
                    false,
                    format!(
                        "the console's audit trail holds no record of an approval of profile generation {} in effect (the approval in its store was not made on this console, or the trail records a later approval of another profile of this host, or this host reporting another profile since): it is not in effect",
                        claim.generation
                    ),
                );
            }
            Err(e) => return Err(self.store_refusal(&e)),
        }
        // Whether it was superseded is known of the host's current profile only
        // (`current_profiles`, review s18): read there.
        let current = db.current_profile_of(host.id).map_err(store)?;
        match current {
            Some(c) if c.generation == claim.generation && c.digest == claim.digest => {
                match c.superseded {
                    None => said(true, String::new()),
                    Some(newer) => said(
                        false,
                        format!(
                            "the host went back to profile generation {} after reporting generation {newer}: the console's approval of it is not in effect",
                            claim.generation
                        ),
                    ),
                }
            }
            Some(c) => said(
                false,
                format!(
                    "the host's current profile on the console is generation {} ({}), not this one: this approval was superseded",
                    c.generation,
                    &c.digest[..c.digest.len().min(16)]
                ),
            ),
            None => said(
                false,
                "the console holds no current profile of this host".into(),
            ),
        }
    }

    /// Raises `host-profile-unapproved` for each profile generation the host's trail
    /// records signing (a `profile` or `accept` record that succeeded) newer than any it
    /// named in a report: a host whose reports keep naming an approved generation while
    /// it re-baselines is still seen in its own witnessed trail.
    fn profiles_in_trail(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        records: &[(u64, Vec<u8>)],
        now: i64,
    ) -> Result<(), StoreError> {
        for (seq, line) in records {
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let signed = matches!(
                record.get("action").and_then(|a| a.as_str()),
                Some("profile" | "accept")
            ) && matches!(
                // `findings`: signed with findings recorded (a profile that screened an
                // executable in the tree): a signing all the same (session 45).
                record.get("outcome").and_then(|o| o.as_str()),
                Some("success" | "findings")
            );
            let Some(generation) = record.get("generation").and_then(|g| g.as_u64()) else {
                continue;
            };
            if signed && db.note_profile_in_trail(host.id, generation, now)? {
                self.raise(
                    host,
                    FindingKind::HostProfileUnapproved,
                    format!(
                        "its trail records signing profile generation {generation} (record {seq}), a generation its reports never named and this console never approved: review the host"
                    ),
                );
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        trail_key: &str,
        interval: u64,
        first: u64,
        records: &[String],
        checkpoint: Option<&str>,
        from: Option<IpAddr>,
        claim: Option<&ProfileClaim>,
        judged: u64,
    ) -> Result<Response, StoreError> {
        let refused = |reason: String| Ok(Response::Refused { reason });
        let now = now();
        // The contact and the interval are noted once the trail verified, never before:
        // a refused report (a copy of the host's home forking its trail after the host
        // was stopped) must not keep the host looking alive (issue 14, review r27-fleet2).
        let interval = i64::try_from(interval.clamp(1, MAX_INTERVAL)).unwrap_or(1);
        // The console witnesses a trail (its key), not a certificate: a second host
        // reporting a trail key another host reports with would get the same log
        // cosigned from a fresh state, a fork included. A key is held once a checkpoint
        // signed by it was accepted: records alone prove no possession of the key (the
        // public key is no secret), so they cannot lock its owner out.
        // A host revoked and enrolled anew from the same home with a token that continues
        // it (`console enrol-token --continue NAME`: a person decided the new enrolment is
        // the same machine), naming the same trail key, nothing delivered under the new
        // enrolment: its trail continues where the console left it, rather than being
        // refused as a copy of the revoked one. Never for a plain token: the trail key is
        // public, so anyone enrolled under the name could name it and take the trail.
        if host.trail_key.is_none()
            && host.size == 0
            && let Some(old) = db.continued_host(host.id)?
            && old.revoked.is_some()
            && old.name == host.name
            && old.trail_key.as_deref().map(witness::key_part) == Some(witness::key_part(trail_key))
            && db.carry_over_host(old.id, host.id)?
        {
            let Some(moved) = db.host(host.id)? else {
                return refused("the console's record of this host is gone".into());
            };
            let interval = u64::try_from(interval).unwrap_or(1);
            return self.report(
                db, &moved, trail_key, interval, first, records, checkpoint, from, claim, judged,
            );
        }
        if host.trail_key.as_deref() != Some(trail_key)
            && let Some(other) = db.hosts()?.into_iter().find(|other| {
                other.id != host.id
                    && other.checkpoint.as_deref().is_some_and(|c| !c.is_empty())
                    && other.trail_key.as_deref().map(witness::key_part)
                        == Some(witness::key_part(trail_key))
            })
        {
            let mut detail = format!(
                "it reports with the trail key of host {} ({trail_key}): a copy of that host's identity, or the same host enrolled twice; the console witnesses each trail for one host only",
                other.name
            );
            // A revoked host enrolled again with a plain token lands here: the admin is
            // told the one way its trail continues.
            if other.revoked.is_some() {
                detail.push_str(&format!(
                    "; if it is that revoked host enrolled again, revoke this enrolment and enrol it as {0} with a token that continues its trail (pacsguard console enrol-token --continue {0})",
                    other.name
                ));
            }
            if self.set_refused_state(db, host, "new-key", &detail)? {
                self.raise(host, FindingKind::HostKeyNew, detail.clone());
            }
            return refused(format!("the console refused this report: {detail}"));
        }
        let Some(frontier) = witness::frontier_from(host.size, &host.peaks) else {
            return refused("the console's record of this host is damaged".into());
        };
        let checkpoint_size = host
            .checkpoint
            .as_deref()
            .and_then(|n| n.lines().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let held = Witnessed {
            trail_key: host.trail_key.clone(),
            frontier,
            checkpoint_size,
        };
        let (first, records) = skip_held(db, host, first, records)?;
        let accepted = match witness::verify_report(&held, trail_key, first, records, checkpoint) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                // Under its own trail key: a copy of the whole home beside the host?
                if let Refusal::Fork(_) = &refusal
                    && let Some(detail) = self.fork_beside(db, host, trail_key, from)?
                {
                    return refused(format!("the console refused this report: {detail}"));
                }
                let kind = match &refusal {
                    Refusal::NewKey(_) => Some(FindingKind::HostKeyNew),
                    Refusal::Fork(_) => Some(FindingKind::HostTrailFork),
                    Refusal::Gap(_) => Some(FindingKind::HostTrailGap),
                    Refusal::Inclusion(_) => Some(FindingKind::HostRecordUnproven),
                    Refusal::Malformed(_) => None,
                };
                // Raised once per change of state, not at every retry of the host.
                if self.set_refused_state(db, host, refusal.state(), refusal.detail())?
                    && let Some(kind) = kind
                {
                    self.raise(host, kind, refusal.detail().to_string());
                }
                // A new trail key was let through to here by `tell_reporter` only
                // once the witnessed trail stayed silent for the whole watch: the host
                // made anew, whose new profile is judged (raised) all the same. No other
                // refused report has its claim judged.
                if let (Refusal::NewKey(_), Some(claim)) = (&refusal, claim)
                    && let Err(reason) = self.judge_profile(db, host, claim)
                {
                    return refused(reason);
                }
                return refused(format!(
                    "the console refused this report: {}",
                    refusal.detail()
                ));
            }
        };
        let contact = match proves_contact(&accepted, checkpoint_size) {
            Contact::Proven => true,
            Contact::IfFresh => self.heartbeat_fresh(host, now),
            Contact::None => false,
        };
        // Records no checkpoint signs yet (an honest host's backlog is sent in batches
        // of `MAX_BATCH_BYTES`, its checkpoint with the last) are kept, to be proven by
        // that checkpoint, but are no contact (review r30-fleet).
        let stores = contact || !accepted.records.is_empty();
        if contact {
            db.touch_host(host.id, now, interval)?;
        }
        // Verified: now what it claims of its profile is judged, before its records
        // are stored (a re-baseline it names is raised as named, not as found in them).
        let approval = match claim.map(|c| self.judge_profile(db, host, c)).transpose() {
            Ok(approval) => approval.flatten(),
            Err(reason) => return refused(reason),
        };
        let size = accepted.frontier.size();
        // Kept with the batch, so a console started anew judges the host's heartbeats
        // from it, not from its own start (review r30-fleet).
        let grew = if grows_signed_trail(&accepted, checkpoint_size) {
            // The records of batches before it that no checkpoint signed are signed now:
            // the newest heartbeat record among them states the promise as well.
            let unsigned = if host.size > checkpoint_size {
                db.host_records_between(host.id, checkpoint_size, host.size)?
            } else {
                Vec::new()
            };
            let signed_now = unsigned.iter().chain(&accepted.records);
            Some(Growth::after(stored_growth(host), now, signed_now))
        } else {
            None
        };
        let stamp = u64::try_from(now).unwrap_or(0);
        let (note, cosigned) = match &accepted.checkpoint {
            // A heartbeat that is no contact gets no cosignature: one dated now would
            // vouch for a checkpoint replayed long after it was signed.
            Some((_, note)) if !contact => (note.clone(), None),
            Some((_, note)) => match self.cosigner.cosign(note, stamp) {
                Ok(cosigned) => (note.clone(), Some(cosigned)),
                Err(e) => return refused(format!("the console could not cosign: {e}")),
            },
            None => (host.checkpoint.clone().unwrap_or_default(), None),
        };
        let adding = if stores {
            batch_cost(&accepted.records, &note, cosigned.as_deref())
        } else {
            0
        };
        let charged = match self.charge_quota(db, host, adding, now)? {
            Ok(charged) => charged,
            Err(detail) => return refused(format!("the console refused this report: {detail}")),
        };
        let witnessed = Response::Witnessed {
            size,
            cosigned: cosigned.clone(),
            approval,
        };
        if !stores {
            // Neither records nor a checkpoint (see `proves_contact`), or a heartbeat
            // while the trail has not grown for longer than it promised (see
            // `heartbeat_fresh`): nothing is stored and the host is not heard; answered
            // as witnessed at the size held, so a host whose trail has no checkpoint yet
            // is told nothing wrong.
            return Ok(witnessed);
        }
        hold::here(hold::Point::Store, &host.name, &*self.log);
        let stored = self
            .profiles_in_trail(db, host, &accepted.records, now)
            .and_then(|()| {
                db.accept_batch(
                    host.id,
                    &AcceptedBatch {
                        from_size: host.size,
                        records: &accepted.records,
                        size,
                        peaks: witness::peaks_bytes(&accepted.frontier),
                        trail_key,
                        checkpoint: &note,
                        cosignature: cosigned.as_deref().unwrap_or(""),
                        now,
                        contact,
                        trail_grew: grew.map(|g| (g.at, g.promised)),
                    },
                )
            });
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                // Not stored as far as the console knows: the charge is given back (the
                // host sends the batch again and is charged then). A store slow to answer
                // (PG_CALL_DEADLINE) charged the same batch at every retry until the
                // host's quota ran out: a false `host-quota-exceeded` and its records
                // refused for the rest of the window (review s11-r14). A batch stored
                // whose answer was lost is skipped as held when sent again.
                db.set_request_deadline(Some(std::time::Instant::now() + REFUND_GRACE));
                let _ = db.refund_quota(host.id, charged.0, adding);
                return Err(e);
            }
        };
        if stored && grew.is_some() {
            self.growth
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .grew(host.id);
        }
        if stored {
            (self.host_records)(host, &accepted.records);
            let reporter = Reporter {
                trail_key: trail_key.to_string(),
                from,
            };
            self.duplicates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .taken(host.id, reporter, std::time::Instant::now());
        }
        if !stored {
            db.refund_quota(host.id, charged.0, adding)?;
            // Revoked since its connection was let in: the store took nothing of it.
            if let Some(now_revoked) = db.host(host.id)?.filter(|h| h.revoked.is_some())
                && let Some(at) = now_revoked.revoked
            {
                self.record_revocation(&now_revoked, at);
                return refused(format!(
                    "this host was revoked (at {at}) while its report was judged; nothing of it was stored"
                ));
            }
            return refused(
                "another connection of this host reported meanwhile; send again".into(),
            );
        }
        if !contact {
            // Unsigned records: kept, and the host not heard by them.
            return Ok(witnessed);
        }
        // Records delivered end the refused state the batch was judged from, never one
        // written meanwhile (review r28-fleet). A checkpoint alone (a heartbeat) delivers
        // nothing that could mend a fork or a gap: it ends only the silence (review
        // r29-fleet: a fork raised beside a running host was `ok` again within 2 s).
        let judged_from = (!accepted.records.is_empty()).then_some(host.state.as_str());
        self.note_heard(db, host, judged_from, judged)?;
        Ok(witnessed)
    }

    /// Whether a heartbeat (the checkpoint held, named again) of `host` is contact now:
    /// only while the trail grew within what it promised ([`crate::freshness`]): a
    /// checkpoint carries no time, and root who kept one could replay it with the trail
    /// wiped and the guard dead. Said on the log once per staleness.
    fn heartbeat_fresh(&self, host: &HostRow, now: i64) -> bool {
        let mut growth = self
            .growth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match growth.fresh(stored_growth(host), now) {
            Ok(()) => true,
            Err(stale) => {
                if growth.first_said(host.id) {
                    (self.log)(&stale.sentence(&host.name));
                }
                false
            }
        }
    }

    /// Raises `host-silent` for each host past its promised interval (once per silence),
    /// and records on the console's trail each revocation the store holds (review r24).
    /// `reachable_since` (Unix seconds): when the listener started, or its store was
    /// last found back after it could not be reached. While it could not, no host's
    /// report could be stored, so a host's silence is counted from then at the earliest, not from its
    /// last stored contact: a store outage is not every host's silence. A host that never
    /// delivered a verified report is counted from its enrolment, its first report due
    /// within [`FIRST_REPORT_WITHIN`] (review r28-fleet).
    pub fn check_silence(
        &self,
        db: &mut dyn FleetStore,
        reachable_since: i64,
    ) -> Result<(), StoreError> {
        let now = now();
        // Give-ups counted and not said yet are said once their window passed, even if
        // none follows (review r29-fleet2).
        let due = self
            .give_ups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .due(std::time::Instant::now());
        if let Some(line) = due {
            (self.log)(&line);
        }
        for host in db.hosts()? {
            // A revoked host is not silent; its revocation is recorded on the console's
            // trail here too, should it never connect again (review r24).
            if let Some(at) = host.revoked {
                self.record_revocation(&host, at);
                self.lock_unwritten().forget_host(host.id);
                continue;
            }
            // Revoked on the console's trail, its row in the store edited back: no
            // silence is raised about a revoked enrolment (session 50, review rv49-gate:
            // `host-silent` came after the revocation had closed its alerts, and stayed
            // open for good); the edit is, once ([`Fleet::revoked`]), even while the host
            // never connects again. A trail that cannot be asked is asked again at the
            // next pass; the silence is judged meanwhile.
            if (self.revoked_on_trail)(&host.fingerprint).unwrap_or(false) {
                if host.state != "revocation-undone" {
                    self.revoked(db, &host)?;
                }
                continue;
            }
            // The store answers: what was raised while it did not write is written.
            self.write_waiting_said(db, &host);
            // An acknowledgement the trail does not record is raised here, also for a
            // host that reports nothing any more.
            let _ = self.acknowledged(&host);
            if silence_found(&host, now, reachable_since, self.first_report_within).is_none() {
                // Silent as the store holds it (a write of unknown outcome that landed),
                // or heard since: a silence raised while its write was unconfirmed is
                // settled either way.
                self.lock_unwritten().silence_settled(host.id);
                continue;
            }
            // Judged again from the host as read at the write: a report that verified
            // since the list was read moved its contact, and the host is not silent.
            let moved = self.move_state(db, &host, hold::Point::Silence, |current| {
                let detail =
                    silence_found(current, now, reachable_since, self.first_report_within)?;
                // The refusals counted on a standing one stay through its silence.
                Some((
                    silence::silenced(&current.state),
                    detail,
                    current.again.clone(),
                ))
            })?;
            // Given up (MAX_STATE_TRIES): other requests kept moving the state, so the
            // host was heard or refused meanwhile; said on the log by `move_state`.
            match moved {
                // Not raised again if it was while its write's outcome was unknown (the
                // write did not land then; it does now).
                StateMove::Moved { detail, .. } => {
                    if !self.lock_unwritten().silence_settled(host.id) {
                        self.raise(&host, FindingKind::HostSilent, detail);
                    }
                }
                // The connection is given up: the check stops here, and the loop says
                // the error and tries again. Raised once however many checks find the
                // store without an answer: one silence, one alert (review of session 33).
                StateMove::Unconfirmed { detail, error, .. } => {
                    if self.lock_unwritten().silence_unconfirmed(host.id) {
                        self.raise(&host, FindingKind::HostSilent, detail);
                    }
                    return Err(error);
                }
                StateMove::GaveUp => self.say_gave_up(&host),
                StateMove::Unchanged => {}
            }
        }
        Ok(())
    }

    /// Sets the state of `host` from a refused report: whether its alert is to be raised,
    /// once per change of state, not at every retry; and when the state could not be
    /// written ([`MAX_STATE_TRIES`], a store error or no answer, said on the log), raised
    /// all the same, once per host, state and point until the store takes it
    /// ([`crate::unwritten`]): the refusal happened (review r29-fleet), and a store down
    /// must neither hide it nor raise it at every report of a copy (session 33).
    /// A refused report is no contact: a host found silent stays silent, the refusal written before its silence
    /// (`crate::silence`). Judged from the state as read at the write and written only
    /// over it: the silence check, or another report of the host, may have moved it
    /// since this request read the host (review r28-fleet).
    fn set_refused_state(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        state: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        self.refuse_state(db, host, state, detail, false)
    }

    /// [`Fleet::set_refused_state`], or (`raised`) the write of a refusal raised while
    /// the store did not write it: never raised again, nor counted again on a standing
    /// one (an unconfirmed write may have landed), and an error returned, not taken as
    /// a new refusal not written.
    fn refuse_state(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        state: &str,
        detail: &str,
        raised: bool,
    ) -> Result<bool, StoreError> {
        let now = now();
        // Whether the refusal is news although the state stays: another point than the
        // one an administrator acknowledged (judged again at each try).
        let news = std::cell::Cell::new(false);
        // Whether a refusal that does not stand, counted beside one that does, is news
        // for its state (see the judge).
        let beside = std::cell::Cell::new(false);
        // Whether it was counted beside one that stands, news or not (noted once the
        // store was tried, see below).
        let counted = std::cell::Cell::new(false);
        // Whether the refusal replaces a standing kind by another standing kind.
        let swaps_standing = |current: &HostRow| {
            silence::is_standing(&current.state)
                && silence::is_standing(state)
                && silence::heard_again(&current.state) != state
        };
        // Read once, before the judge: the memory is not locked while the store works.
        // The store's count says it too, and survives a restart of the console (session
        // 35); the memory covers a count the store did not take.
        let same_as_last = self.lock_unwritten().last_counted_is(host.id, state);
        let judge = |current: &HostRow| {
            let next = silence::refused_state(&current.state, state);
            news.set(false);
            beside.set(false);
            counted.set(false);
            if next == current.state {
                // Acknowledged, and this one is at another point (a second copy, a
                // second restore): raised, and the acknowledgement no longer in effect.
                let acked = self
                    .acknowledged(current)
                    .filter(|acked| acked.state == state);
                if let Some(acked) = &acked
                    && !acknowledge::point(&acked.words).covers(&acknowledge::point(detail))
                {
                    news.set(true);
                    let detail = if silence::is_silent(&current.state) {
                        silence::silence_detail(
                            last_heard(current, now, self.first_report_within),
                            state,
                            detail,
                        )
                    } else {
                        detail.to_string()
                    };
                    return Some((next, detail, Again::default()));
                }
                // A refusal that does not stand, while one that does stands (a copy's
                // malformed report after its fork): never written over it, which the
                // next accepted batch ended with no acknowledgement (review of session
                // 34); counted on its detail with its state, and news (raised) unless
                // the last one counted is of the same state. One raised and written
                // now is held already.
                if !silence::is_standing(state) && silence::is_standing(&current.state) {
                    if raised {
                        return None;
                    }
                    let known = same_as_last || current.again.said(state);
                    beside.set(!known);
                    counted.set(true);
                    let words = silence::counted_beside(state, detail);
                    let again = Again {
                        beside: current.again.with_said(state),
                        ..current.again.counted(&current.detail, &words)
                    };
                    return Some((next, current.detail.clone(), again));
                }
                // The same standing refusal again (a copy still running): counted on
                // its detail, not news (review r29-fleet2); one raised and written now
                // is held already.
                if !silence::is_standing(state) || raised {
                    return None;
                }
                // Not acknowledged yet, and these words name the branch the first ones
                // did not (a restored home's heartbeat named its backup's checkpoint,
                // its records come next): they become the refusal's, so that an
                // acknowledgement names the branch (session 32), silent or not (review
                // of session 32: the ordinary restore is of a machine found silent).
                let named = acked
                    .is_none()
                    .then(|| {
                        acknowledge::with_branch_named(&current.state, &current.detail, detail)
                    })
                    .flatten();
                // Silent, left as it is but for the branch's words: the silence's
                // sentence stands.
                if silence::is_silent(&current.state) {
                    return named.map(|kept| (next, kept, current.again.clone()));
                }
                let kept = named.unwrap_or_else(|| current.detail.clone());
                let again = current.again.counted(&kept, detail);
                return Some((next, kept, again));
            }
            let detail = if silence::is_silent(&current.state) {
                silence::silence_detail(
                    last_heard(current, now, self.first_report_within),
                    state,
                    detail,
                )
            } else {
                detail.to_string()
            };
            // One standing kind replacing another (a copy's fork, then a copy of its
            // enrolment): the count goes on and the kind left is said already, so copies
            // alternating kinds are said once per kind, not at each change (session 35).
            let again = if swaps_standing(current) {
                let left = silence::heard_again(&current.state);
                Again {
                    beside: current.again.with_said(&left),
                    ..current.again.counted(detail.as_str(), detail.as_str())
                }
            } else {
                Again::default()
            };
            Some((next, detail, again))
        };
        // Raised when the state changed (or a fork came at another point than the one
        // acknowledged), not when a standing one was counted.
        let is_news = |before: &HostRow| {
            let moved = silence::refused_state(&before.state, state) != before.state;
            let said = swaps_standing(before) && before.again.said(state);
            (moved && !said) || news.get() || beside.get()
        };
        // The report is refused all the same whether the store wrote its state or not:
        // the refusal is its answer, and the store's error is said on the log. Its alert
        // is raised once whatever the store does (`crate::unwritten`): a write that
        // failed (an error known not done, or no answer) raised nothing, or raised again
        // at every report of a copy while the store stayed down (session 33).
        if raised {
            return self.write_raised(db, host, state, detail, judge);
        }
        let raise = match self.move_state(db, host, hold::Point::Refusal, judge) {
            Ok(StateMove::Unchanged) => false,
            Ok(StateMove::Moved { before, .. }) => {
                let raised = self.lock_unwritten().written(host.id, state, detail);
                is_news(&before) && !raised
            }
            Ok(StateMove::Unconfirmed { before, .. }) => {
                is_news(&before) && self.not_written(host, state, detail, news.get(), None)
            }
            // Other requests kept moving the state (said by `move_state`): raised
            // all the same, once (review r29-fleet).
            Ok(StateMove::GaveUp) => {
                self.say_gave_up(host);
                self.not_written(host, state, detail, false, None)
            }
            // Judged from the host as this request read it: the store could not be
            // read again, or did not take the write.
            Err(error) => {
                let changes = judge(host).is_some();
                changes
                    && is_news(host)
                    && self.not_written(host, state, detail, news.get(), Some(&error))
            }
        };
        // Counted (written), or raised although not written: either way the next one of
        // this state is the same episode until an accepted batch.
        if counted.get() {
            self.lock_unwritten().counted_beside(host.id, state);
        }
        Ok(raise)
    }

    /// Writes a refusal of `host` to `state` raised while the store did not write it
    /// (judged by `judge`): once the store holds it (written now, or found held), it no
    /// longer waits; else it waits for the next try. Never raised: it was. Whether it
    /// was written now (so the contact of a batch just accepted ends it, see
    /// [`Fleet::note_heard`]).
    fn write_raised(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        state: &str,
        detail: &str,
        judge: impl Fn(&HostRow) -> Option<(String, String, Again)>,
    ) -> Result<bool, StoreError> {
        match self.move_state(db, host, hold::Point::Refusal, judge)? {
            StateMove::Moved { .. } => {
                (self.log)(&format!(
                    "fleet: host {}: its refused state `{state}`, raised while the store did not write it, is written now",
                    host.name
                ));
                self.lock_unwritten().written(host.id, state, detail);
                Ok(true)
            }
            StateMove::Unchanged => {
                self.lock_unwritten().written(host.id, state, detail);
                Ok(false)
            }
            // The store may hold it, or not: tried again at the next chance (said by
            // `move_state`).
            StateMove::Unconfirmed { .. } => Ok(false),
            // Found moved at each try: tried again at the next chance, said once and
            // then every REFUSED_WRITE_SAID_EVERY while it stays so.
            StateMove::GaveUp => {
                self.say_write_refused(
                    host,
                    RefusedAnswer::MovedAtEachTry,
                    &format!(
                        "its state was found moved at each of {MAX_STATE_TRIES} tries (MAX_STATE_TRIES): other requests write it as fast, or the store does not keep this write"
                    ),
                );
                Ok(false)
            }
        }
    }

    /// Writes the refusals of `host` raised while the store did not write them, now
    /// that it answers: the host's state shows what was raised without waiting for the
    /// refusal to come again (a copy that forked once may never report again), and the
    /// memory does not outlive the outage (review of session 33).
    /// Returns the refused states written now, oldest first. The profiles claimed whose
    /// noting the store did not confirm are noted again and judged (review of session
    /// 33: their `host-profile-unapproved` was lost when the store held the claim).
    fn write_waiting(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
    ) -> Result<Vec<crate::unwritten::Raised>, StoreError> {
        let waiting = self.lock_unwritten().waiting(host.id);
        let mut written = Vec::new();
        for raised in waiting {
            if self.refuse_state(db, host, &raised.state, &raised.words, true)? {
                written.push(raised);
            }
        }
        let claims = self.lock_unwritten().profiles(host.id);
        for claim in claims {
            self.note_claim(db, host, &claim)?;
        }
        Ok(written)
    }

    /// [`Fleet::write_waiting`] from the silence check: a write the store refuses stops
    /// neither the other hosts' check nor this one's, and is said, not returned:
    /// returned, one host's refused write was taken for a store outage, backing every
    /// host's silence check off to a minute and restarting their intervals (review
    /// rv33b-fleet). Tried again at each check, said once per change of the store's
    /// answer, again every [`REFUSED_WRITE_SAID_EVERY`], and once more when it clears:
    /// said at each check it wrote a line a second per host (review of session 33).
    fn write_waiting_said(&self, db: &mut dyn FleetStore, host: &HostRow) {
        let name = &host.name;
        let error = match self.write_waiting(db, host) {
            Ok(_) => {
                // Still waiting (a retry found the state moved at each try, or the
                // store did not confirm): not cleared, so not said again as new.
                let mut unwritten = self.lock_unwritten();
                if unwritten.waiting(host.id).is_empty() && unwritten.write_cleared(host.id) {
                    drop(unwritten);
                    (self.log)(&format!(
                        "fleet: host {name}: what was raised while the store did not write it is written now: the store takes its writes again"
                    ));
                }
                return;
            }
            Err(error) => error,
        };
        self.say_write_refused(host, RefusedAnswer::from(&error), &error.to_string());
    }

    /// Says that what was raised of `host` while the store did not write it is still
    /// not written, the store's `answer` so: once per kind of answer, then every
    /// [`REFUSED_WRITE_SAID_EVERY`] with the count of tries not said.
    fn say_write_refused(&self, host: &HostRow, kind: RefusedAnswer, answer: &str) {
        let name = &host.name;
        let say = self
            .lock_unwritten()
            .write_refused(host.id, kind, std::time::Instant::now());
        let every = REFUSED_WRITE_SAID_EVERY.as_secs();
        match say {
            RefusedSay::New => (self.log)(&format!(
                "fleet: host {name}: what was raised while the store did not write it is still not written ({answer}): tried again at every check, said again every {every} s while the store answers so (REFUSED_WRITE_SAID_EVERY)"
            )),
            RefusedSay::Again { unsaid } => (self.log)(&format!(
                "fleet: host {name}: what was raised while the store did not write it is still not written ({answer}): {unsaid} tries refused so in the last {every} s"
            )),
            RefusedSay::Quiet => {}
        }
    }

    fn lock_unwritten(&self) -> std::sync::MutexGuard<'_, Unwritten> {
        self.unwritten
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A refusal of `host` to `state` with `detail` that the store did not (or may not)
    /// have written (`at_another_point`: news only for being at another point than the
    /// one acknowledged), `error` the store's when known not written: whether its alert
    /// is raised now (once per host and state, or point, until the store takes one),
    /// said on the log.
    fn not_written(
        &self,
        host: &HostRow,
        state: &str,
        detail: &str,
        at_another_point: bool,
        error: Option<&StoreError>,
    ) -> bool {
        let (verdict, emptied) =
            self.lock_unwritten()
                .not_written(host.id, state, detail, at_another_point);
        if emptied {
            (self.log)(&format!(
                "fleet: more than {} hosts' refusals raised and not written remembered (MAX_UNWRITTEN_HOSTS): the memory is emptied; each is raised again at most once more",
                crate::unwritten::MAX_UNWRITTEN_HOSTS
            ));
        }
        let error = error.map(|e| format!(" ({})", self.store_refusal(e)));
        let name = &host.name;
        match verdict {
            NotWritten::Raise => {
                (self.log)(&format!(
                    "fleet: host {name}: its refused state `{state}` is not written{}: its alert is raised now, once, and its state written once the store answers",
                    error.unwrap_or_default()
                ));
                true
            }
            NotWritten::RaiseHostFull => {
                (self.log)(&format!(
                    "fleet: host {name}: its refused state `{state}` is not written{}, and {} of its refusals at points of their own wait for the store already (MAX_UNWRITTEN_PER_HOST): this one is raised now and not remembered, so raised again if it comes again before the store takes one",
                    error.unwrap_or_default(),
                    crate::unwritten::MAX_UNWRITTEN_PER_HOST
                ));
                true
            }
            NotWritten::RaisedAlready => false,
        }
    }

    /// Notes on the host's state that a report of its trail verified: from the state
    /// the request judged the report from (`judged_from`: a batch stored; `judged`: the
    /// mark of refusals kept waiting when it read the host, [`Unwritten::mark`]), `ok`; from
    /// any other (a refusal another report wrote meanwhile), that state kept, only its
    /// silence ended. A silence ended is recorded (`host-silence-ended`), with how long
    /// the host was not heard (from its last contact as the request read it, `host`).
    fn note_heard(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        judged_from: Option<&str>,
        judged: u64,
    ) -> Result<(), StoreError> {
        let now = now();
        // What was raised while the store did not write it is written first: a fork
        // stands, and this batch must not end it unseen. A refusal that does not stand
        // (a quota, a new key, a revocation undone), raised before this batch and
        // written only now, is ended by the batch like the state it was judged from:
        // left, the host showed a refusal over by then until its next batch (review of
        // session 33).
        let written_now = self.write_waiting(db, host)?;
        // A batch accepted: a refusal counted beside a standing one after it is a new
        // episode, raised once again (review of session 34).
        if judged_from.is_some() {
            self.lock_unwritten().batch_accepted(host.id);
        }
        // A silence raised while its write's outcome was unknown ends here too.
        let silence_raised = self.lock_unwritten().silence_settled(host.id);
        let moved = self.move_state(db, host, hold::Point::Contact, |current| {
            // A standing refusal (a fork, a copy beside it) is not ended by the host's
            // records: a copy still running would flap it back at each batch (review
            // r29-fleet2).
            let refused = silence::heard_again(&current.state);
            // A waiting refusal ends with the batch only if raised before the batch's
            // host was read (`judged`): one raised after by another request is news
            // the batch's records do not mend (review of session 34).
            let ended = judged_from.is_some_and(|seen| {
                seen == current.state
                    || written_now
                        .iter()
                        .any(|w| w.state == refused && w.seq < judged)
            });
            let next = if ended && !silence::is_standing(&current.state) {
                "ok".to_string()
            } else {
                refused
            };
            if next == current.state {
                // A batch accepted: a refusal counted beside a standing one after it is
                // news again, as the store tells a console restarted meanwhile.
                // The standing kinds said stay: an accepted batch does not end them.
                let kept = current.again.said_only(silence::is_standing);
                let beside_over = judged_from.is_some() && current.again.beside != kept;
                return beside_over.then(|| {
                    let again = Again {
                        beside: kept,
                        ..current.again.clone()
                    };
                    (next, current.detail.clone(), again)
                });
            }
            if next == "ok" {
                return Some((next, String::new(), Again::default()));
            }
            let detail = silence::detail_before_silence(&current.detail, &next);
            Some((next, detail, current.again.clone()))
        })?;
        // A batch that ended the host's refusals (`ok`, written): those raised and not
        // written are over (`crate::unwritten`).
        if let StateMove::Moved { detail, .. } = &moved
            && detail.is_empty()
        {
            self.lock_unwritten().forget(host.id);
        }
        let (was_silent, unconfirmed) = match moved {
            StateMove::Moved { before, .. } => (silence::is_silent(&before.state), None),
            StateMove::Unconfirmed { before, error, .. } => {
                (silence::is_silent(&before.state), Some(error))
            }
            StateMove::Unchanged | StateMove::GaveUp => (false, None),
        };
        if was_silent || silence_raised {
            let unheard = match last_heard(host, now, self.first_report_within) {
                silence::LastHeard::Report { ago, interval } => {
                    format!("after {ago} s without one (it promised one every {interval} s)")
                }
                silence::LastHeard::Enrolment { ago, .. } => {
                    format!("for the first time, {ago} s after its enrolment")
                }
            };
            self.raise_as(
                host,
                FindingKind::HostSilenceEnded,
                Severity::Warning,
                format!("a report of its trail verified again {unheard}: it is no longer silent"),
            );
        }
        // The connection is given up: the report ends on the store's error (the host
        // sends it again).
        unconfirmed.map_or(Ok(()), Err)
    }

    /// Moves the state of `host` to what `judge` makes of it as read now (`None`: no
    /// change), written only over the state and contact it was judged from (compare and
    /// set); read again and judged anew when another request moved it meanwhile, at most
    /// [`MAX_STATE_TRIES`] times, then given up (said on the log, and told to the
    /// caller, which decides whether its alert is raised all the same).
    fn move_state(
        &self,
        db: &mut dyn FleetStore,
        host: &HostRow,
        point: hold::Point,
        judge: impl Fn(&HostRow) -> Option<(String, String, Again)>,
    ) -> Result<StateMove, StoreError> {
        for _ in 0..MAX_STATE_TRIES {
            // A host revoked meanwhile keeps the state it had: the store writes nothing
            // of a revoked host (review r29-fleet).
            let Some(current) = db.host(host.id)?.filter(|h| h.revoked.is_none()) else {
                return Ok(StateMove::Unchanged);
            };
            let Some((state, detail, again)) = judge(&current) else {
                return Ok(StateMove::Unchanged);
            };
            hold::here(point, &host.name, &*self.log);
            match db.swap_host_state(host.id, &current.seen(), &state, &detail, &again) {
                Ok(true) => {
                    return Ok(StateMove::Moved {
                        before: Box::new(current),
                        detail,
                    });
                }
                Ok(false) => {}
                // Sent and never answered: the store may hold the new state all the
                // same, and nothing after would raise what it calls for (a later
                // request finds it written already).
                Err(error) if error.outcome_unknown() => {
                    (self.log)(&format!(
                        "fleet: host {}: the store did not confirm that its state `{state}` was written ({error}); the alert it calls for is raised all the same (a refusal's once, until the store takes it)",
                        host.name
                    ));
                    return Ok(StateMove::Unconfirmed {
                        before: Box::new(current),
                        detail,
                        error,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(StateMove::GaveUp)
    }

    /// Says a change of `host`'s state given up after [`MAX_STATE_TRIES`] (the first of
    /// each [`STATE_GIVE_UP_SAID_EVERY`] at once, the rest counted). Said by the request
    /// that judged the change, not by a retry of a refusal already raised and waiting
    /// ([`Fleet::write_raised`]), which says its own, rate-limited: counted here, the
    /// silence check's retry each second was one more "request" a second.
    fn say_gave_up(&self, host: &HostRow) {
        let line = self
            .give_ups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .gave_up(&host.name, std::time::Instant::now());
        if let Some(line) = line {
            (self.log)(&line);
        }
    }
}

/// What became of one change of a host's state ([`Fleet::move_state`]).
enum StateMove {
    /// Written over `before`, with `detail`.
    Moved {
        before: Box<HostRow>,
        detail: String,
    },
    /// Written over `before` with `detail`, or not: the store gave no answer to the
    /// write (`error`, [`StoreError::outcome_unknown`]). The alert the change calls for
    /// is raised as if it was written: twice rather than never (session 31); a
    /// refusal's once until the store takes it (`crate::unwritten`, session 33).
    Unconfirmed {
        before: Box<HostRow>,
        detail: String,
        error: StoreError,
    },
    /// Nothing to change, as the host was read at the write (or it is gone).
    Unchanged,
    /// Other requests moved the state [`MAX_STATE_TRIES`] times while this one judged
    /// it: not written.
    GaveUp,
}

/// What a verified report proves of the host being alive now ([`proves_contact`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contact {
    /// A new checkpoint over new records: signed by the trail key, and consistent with
    /// the console's frontier, which only the trail's records can extend.
    Proven,
    /// A heartbeat (the checkpoint held, named again): contact while it is fresh
    /// ([`crate::freshness`]).
    IfFresh,
    /// Nothing signed and new: neither records nor a checkpoint (review r29-fleet), or
    /// records no checkpoint signs (review r30-fleet).
    None,
}

/// Whether a verified report is contact. Only a signature by the host's trail key over
/// something new proves the guard alive: a report with no checkpoint proves only the
/// client certificate, which whoever holds the host's enrolment key can show with its
/// trail wiped, records included (made up with the next sequence numbers, they verify
/// until a checkpoint comes to sign them); such a report must not keep the host `ok`
/// nor end its silence (issue 14, reviews r29-fleet and r30-fleet). An honest host
/// sends a checkpoint with the last batch of its records, and its heartbeats name it.
fn proves_contact(accepted: &witness::Accepted, held_checkpoint: u64) -> Contact {
    if grows_signed_trail(accepted, held_checkpoint) {
        Contact::Proven
    } else if accepted.records.is_empty() && accepted.checkpoint.is_some() {
        Contact::IfFresh
    } else {
        Contact::None
    }
}

/// When `host`'s signed trail last grew, as the store keeps it (`None`: never seen).
fn stored_growth(host: &HostRow) -> Option<Growth> {
    Growth::stored(host.trail_grew, host.trail_promise)
}

/// Whether a verified report grows the host's signed trail: a checkpoint over more
/// records than the last one accepted (`held_checkpoint`), which only the trail's
/// records can make consistent with the console's frontier.
fn grows_signed_trail(accepted: &witness::Accepted, held_checkpoint: u64) -> bool {
    accepted
        .checkpoint
        .as_ref()
        .is_some_and(|(c, _)| c.size > held_checkpoint)
}

/// What the state of `host`, found silent at `now`, says; `None` if it is not found
/// silent: silent already, or heard (or enrolled, if never heard) within its interval
/// and [`SILENCE_GRACE`] (counted from `reachable_since` at the earliest).
fn silence_found(
    host: &HostRow,
    now: i64,
    reachable_since: i64,
    first_within: Duration,
) -> Option<String> {
    if host.revoked.is_some() || silence::is_silent(&host.state) {
        return None;
    }
    let grace = i64::try_from(SILENCE_GRACE.as_secs()).unwrap_or(i64::MAX);
    let last = last_heard(host, now, first_within);
    let (since, interval) = match last {
        silence::LastHeard::Report { interval, .. } => (host.last_contact, interval),
        silence::LastHeard::Enrolment { within, .. } => (host.enrolled, within),
    };
    let due = since
        .max(reachable_since)
        .saturating_add(interval)
        .saturating_add(grace);
    (now > due).then(|| silence::silence_detail(last, &host.state, &host.detail))
}

/// When the console last heard `host` (as of `now`): its last verified report, or, if
/// none ever verified, its enrolment, its first report due within `first_within`.
fn last_heard(host: &HostRow, now: i64, first_within: Duration) -> silence::LastHeard {
    if host.last_contact == 0 || host.interval == 0 {
        silence::LastHeard::Enrolment {
            ago: now.saturating_sub(host.enrolled),
            within: i64::try_from(first_within.as_secs()).unwrap_or(i64::MAX),
        }
    } else {
        silence::LastHeard::Report {
            ago: now.saturating_sub(host.last_contact),
            interval: host.interval,
        }
    }
}

/// Passes over the leading records of a report that the console holds already, byte for
/// byte: the host sends them again when the console's answer to the batch that stored
/// them never reached it (the host killed between the console's commit and its cursor
/// write, the connection cut after the commit). Taking them as the trail rewound would
/// raise a false `host-trail-fork` and refuse that host for good. A record that differs
/// from the one held is left in, and refused as the fork it is.
fn skip_held<'r>(
    db: &mut dyn FleetStore,
    host: &HostRow,
    first: u64,
    records: &'r [String],
) -> Result<(u64, &'r [String]), StoreError> {
    if records.is_empty() || first >= host.size {
        return Ok((first, records));
    }
    let overlap = usize::try_from(host.size - first)
        .unwrap_or(usize::MAX)
        .min(records.len());
    let end = first.saturating_add(overlap as u64);
    let held = db.host_records_between(host.id, first, end)?;
    let same = held.len() == overlap
        && held
            .iter()
            .zip(records)
            .zip(first..end)
            .all(|(((seq, line), sent), expected)| *seq == expected && line == sent.as_bytes());
    Ok(if same {
        (end, &records[overlap..])
    } else {
        (first, records)
    })
}

/// The connections that have not (yet) shown a host certificate: each by its id, with
/// its address, when it came and a handle to end it.
#[derive(Default)]
struct UnprovenTable {
    next: u64,
    held: HashMap<u64, (IpAddr, std::time::Instant, Option<TcpStream>)>,
    /// Connections ended to make room since it was last said, the address of the last
    /// one, and when it was said (at most every [`POOL_REPORT_EVERY`]).
    evicted: u64,
    evicted_last: Option<IpAddr>,
    evicted_said_at: Option<std::time::Instant>,
}

impl UnprovenTable {
    /// What to say about the connections ended at [`MAX_UNPROVEN_CONNECTIONS`] since
    /// it was last said: at most once every [`POOL_REPORT_EVERY`], so a flood of idle
    /// sockets (the case the limit is for) costs a line per period, not one each.
    fn evictions_to_say(&mut self) -> Option<String> {
        if self.evicted == 0
            || self
                .evicted_said_at
                .is_some_and(|at| at.elapsed() < POOL_REPORT_EVERY)
        {
            return None;
        }
        let said = format!(
            "fleet: {} connection(s) not yet proven by a host certificate ended to make room for newer ones: {MAX_UNPROVEN_CONNECTIONS} (MAX_UNPROVEN_CONNECTIONS) were held (the last from {}); many idle connections from many addresses look like a flood, and a host cut off this way sends its report again",
            self.evicted,
            self.evicted_last
                .map_or_else(|| "an unknown address".to_string(), |a| a.to_string())
        );
        self.evicted = 0;
        self.evicted_said_at = Some(std::time::Instant::now());
        Some(said)
    }
}
type Unproven = Arc<Mutex<UnprovenTable>>;

/// One connection counted in [`Unproven`] until it shows a host certificate or ends.
struct UnprovenSlot {
    table: Unproven,
    id: u64,
}

impl UnprovenSlot {
    /// Takes a slot for `address` (`end`: a handle to end that connection), or `None`
    /// if the address holds [`MAX_UNPROVEN_PER_ADDRESS`]. When all addresses together
    /// hold [`MAX_UNPROVEN_CONNECTIONS`], the oldest of them is ended to make room: an
    /// enrolled host shows its certificate in the handshake, so it too comes in
    /// unproven, and refusing newcomers let a few addresses holding idle sockets lock
    /// every host out; a host's handshake takes milliseconds, an idle socket waits.
    fn take(table: &Unproven, address: IpAddr, end: Option<TcpStream>) -> Option<UnprovenSlot> {
        let mut table_guard = table.lock().ok()?;
        let t = &mut *table_guard;
        if t.held.values().filter(|(a, ..)| *a == address).count() >= MAX_UNPROVEN_PER_ADDRESS {
            return None;
        }
        if t.held.len() >= MAX_UNPROVEN_CONNECTIONS
            && let Some(oldest) = t
                .held
                .iter()
                .min_by_key(|(id, (_, since, _))| (*since, **id))
                .map(|(id, _)| *id)
            && let Some((from, _, stream)) = t.held.remove(&oldest)
        {
            // Its thread's next read fails and the connection ends.
            if let Some(stream) = stream {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            t.evicted += 1;
            t.evicted_last = Some(from);
        }
        let id = t.next;
        t.next = t.next.wrapping_add(1);
        t.held.insert(id, (address, std::time::Instant::now(), end));
        Some(UnprovenSlot {
            table: table.clone(),
            id,
        })
    }

    /// Frees the slot (no longer counted; once, however often called).
    fn release(&mut self) {
        if let Ok(mut table) = self.table.lock() {
            table.held.remove(&self.id);
        }
    }
}

impl Drop for UnprovenSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// The connections each host (by its certificate's fingerprint) holds, and the
/// refusals at [`MAX_CONNECTIONS_PER_HOST`] not yet said.
#[derive(Default)]
struct PerHostTable {
    held: HashMap<String, usize>,
    refused: u64,
    said_at: Option<std::time::Instant>,
}
type PerHost = Arc<Mutex<PerHostTable>>;

/// One of a host's [`MAX_CONNECTIONS_PER_HOST`] connections, given back when dropped.
struct HostSlot {
    table: PerHost,
    fingerprint: String,
}

impl HostSlot {
    /// Takes a slot for the host of `fingerprint`; at its limit `Err` with what to say
    /// (at most every [`POOL_REPORT_EVERY`]; `None` in between).
    fn take(table: &PerHost, fingerprint: String) -> Result<HostSlot, Option<String>> {
        let Ok(mut t) = table.lock() else {
            return Err(None);
        };
        let held = t.held.entry(fingerprint.clone()).or_insert(0);
        if *held < MAX_CONNECTIONS_PER_HOST {
            *held += 1;
            return Ok(HostSlot {
                table: table.clone(),
                fingerprint,
            });
        }
        t.refused += 1;
        if t.said_at.is_some_and(|at| at.elapsed() < POOL_REPORT_EVERY) {
            return Err(None);
        }
        let said = format!(
            "{} connection(s) refused: their host (certificate {}) had {MAX_CONNECTIONS_PER_HOST} (MAX_CONNECTIONS_PER_HOST) open; a host sends one report at a time, so its key may be in other hands",
            t.refused,
            fingerprint.get(..16).unwrap_or(&fingerprint)
        );
        t.refused = 0;
        t.said_at = Some(std::time::Instant::now());
        Err(Some(said))
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.lock()
            && let Some(held) = t.held.get_mut(&self.fingerprint)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                t.held.remove(&self.fingerprint);
            }
        }
    }
}

/// Serves hosts on `listener` until `stop`, and checks for silent hosts every
/// [`SILENCE_CHECK_EVERY`] on a thread of its own: a store that is slow or stuck holds
/// up the check, never the accepting of hosts (and the reverse).
pub fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    fleet: Arc<Fleet>,
    stop: Arc<AtomicBool>,
    say: Arc<dyn Fn(&str) + Send + Sync>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let silence = {
        let (fleet, stop, say) = (fleet.clone(), stop.clone(), say.clone());
        std::thread::Builder::new()
            .name("fleet-silence".into())
            .spawn(move || watch_silence(&fleet, &stop, say.as_ref()))?
    };
    std::thread::Builder::new()
        .name("fleet".into())
        .spawn(move || {
            accept_hosts(&listener, &config, &fleet, &stop, &say);
            let _ = silence.join();
        })
}

/// The waits between tries of a store that cannot be reached: [`STORE_RETRY_FIRST`],
/// doubled at each failure up to [`STORE_RETRY_CAP`], back to the first once it answers.
#[derive(Debug)]
pub struct Backoff {
    wait: Duration,
    failing: bool,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            wait: STORE_RETRY_FIRST,
            failing: false,
        }
    }
}

impl Backoff {
    /// A failure: how long to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        let wait = if self.failing {
            (self.wait * 2).min(STORE_RETRY_CAP)
        } else {
            STORE_RETRY_FIRST
        };
        self.failing = true;
        self.wait = wait;
        wait
    }

    /// A success: whether it ends a run of failures.
    pub fn succeeded(&mut self) -> bool {
        let was = self.failing;
        *self = Backoff::default();
        was
    }
}

/// Sleeps up to `wait`, waking early when `stop` is set.
fn nap(stop: &AtomicBool, wait: Duration) {
    let until = std::time::Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The silence check's loop (see [`serve`]), and the reports of the store's troubles:
/// an unreachable store said once per try, the tries backing off (a store down for
/// hours is a line a minute), its return said once; requests refused for want of a
/// connection (the pool's limit reached) said at most every [`POOL_REPORT_EVERY`].
fn watch_silence(fleet: &Fleet, stop: &AtomicBool, say: &(dyn Fn(&str) + Send + Sync)) {
    let mut backoff = Backoff::default();
    // While the console was stopped no host could report, as while its store cannot be
    // reached: silence is counted from the listener's start at the earliest, or a
    // console stopped longer than a host's interval raised every host silent at its
    // first check, before any could report again (review r28-fleet).
    let mut reachable_since = now();
    let mut exhausted_said = 0u64;
    let mut pool_said_at: Option<std::time::Instant> = None;
    let mut move_refusals = fleet.pool.move_refusals();
    let mut unmoved = UnmovedRecords::default();
    while !stop.load(Ordering::Relaxed) {
        let (failures, why) = fleet.pool.move_failed();
        if let Some(finding) = unmoved.turn(failures, why.as_deref()) {
            (fleet.alert)(finding);
        }
        let checked = fleet.pool.get().and_then(|mut db| {
            // Reports refused while the move of a version before's records was pending
            // (`StoreError::PostgresMovePending`; it may have run on this very
            // connection as it was opened): the console did not hear those hosts, so
            // their silence is counted from the last such refusal at the earliest, as
            // after an outage (review of session 33: on a large table hosts were
            // raised silent during the move).
            let refused = fleet.pool.move_refusals();
            if refused != move_refusals {
                move_refusals = refused;
                reachable_since = now();
            }
            fleet.check_silence(&mut *db, reachable_since)
        });
        let wait = match checked {
            Ok(()) => {
                if backoff.succeeded() {
                    reachable_since = now();
                    say("fleet: the fleet's store answers again");
                }
                SILENCE_CHECK_EVERY
            }
            // Every connection in use: the store answers, only slowly; said below.
            Err(StoreError::PoolExhausted { .. }) => SILENCE_CHECK_EVERY,
            Err(e) => {
                let wait = backoff.failed();
                say(&format!(
                    "fleet: silence check: {e} (hosts' reports are refused meanwhile; next try in {} s)",
                    wait.as_secs()
                ));
                wait
            }
        };
        let exhausted = fleet.pool.exhausted();
        if exhausted > exhausted_said
            && pool_said_at.is_none_or(|at| at.elapsed() >= POOL_REPORT_EVERY)
        {
            say(&format!(
                "fleet: {} request(s) found all {} connections to the fleet's store in use (PG_POOL_SIZE) for {} s (PG_POOL_WAIT), or for the rest of their FLEET_REQUEST_BUDGET, and were refused; the hosts send them again",
                exhausted - exhausted_said,
                fleet.pool.size(),
                pacsguard_store::PG_POOL_WAIT.as_secs()
            ));
            exhausted_said = exhausted;
            pool_said_at = Some(std::time::Instant::now());
        }
        nap(stop, wait);
    }
}

/// What the console's pages and trail were told of the move of a version before's
/// records into months: a run of failed moves refuses every host's report, which a
/// line on stderr left unseen on a console that runs for months (session 37's open
/// point). Raised at a run's first failure, again when it reaches
/// [`pacsguard_store::PG_MOVE_FAILURES_LOUD`], and its end once a move succeeds.
#[derive(Debug, Default)]
struct UnmovedRecords {
    /// The failures in a row last raised (0: none raised, or the run ended).
    raised: u32,
}

impl UnmovedRecords {
    /// The finding to raise for `failures` in a row (why the last failed), if any.
    fn turn(&mut self, failures: u32, why: Option<&str>) -> Option<Finding> {
        let loud = pacsguard_store::PG_MOVE_FAILURES_LOUD;
        let why = why.unwrap_or("no reason kept");
        let (severity, detail) = if failures == 0 {
            if self.raised == 0 {
                return None;
            }
            (
                Severity::Info,
                "the fleet's records of a version before are moved into months after the failed moves raised before: hosts' reports are taken again".to_string(),
            )
        } else if self.raised == 0 || (failures >= loud && self.raised < loud) {
            let end = if failures >= loud {
                format!(
                    "it failed {failures} times in a row (PG_MOVE_FAILURES_LOUD) and fails for good until an administrator acts"
                )
            } else {
                "it is tried again, backing off".to_string()
            };
            (
                Severity::Alert,
                format!(
                    "the move of the fleet's records of a version before into months failed ({why}): every host's report is refused until it is done, so this console hears no host; {end}"
                ),
            )
        } else {
            return None;
        };
        self.raised = failures;
        Some(Finding::new(
            PathBuf::from("fleet"),
            FindingKind::FleetRecordsUnmoved,
            severity,
            detail,
        ))
    }
}

/// Accepts hosts until `stop`, each connection on a thread of its own.
fn accept_hosts(
    listener: &TcpListener,
    config: &Arc<rustls::ServerConfig>,
    fleet: &Arc<Fleet>,
    stop: &Arc<AtomicBool>,
    say: &Arc<dyn Fn(&str) + Send + Sync>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let unproven: Unproven = Arc::default();
    let per_host: PerHost = Arc::default();
    // Connections refused at MAX_CONNECTIONS since it was last said, and when it was;
    // the same for MAX_UNPROVEN_PER_ADDRESS (hosts behind one NAT share an address).
    let (mut full, mut full_said_at) = (0u64, None::<std::time::Instant>);
    let (mut crowded, mut crowded_said_at) = (0u64, None::<std::time::Instant>);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((tcp, from)) => {
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    drop(tcp); // over the limit: the host retries at its next report
                    full += 1;
                    if full_said_at.is_none_or(|at| at.elapsed() >= POOL_REPORT_EVERY) {
                        say(&format!(
                            "fleet: {full} connection(s) refused: {MAX_CONNECTIONS} (MAX_CONNECTIONS) were open; those hosts send their reports again at their next turn"
                        ));
                        full = 0;
                        full_said_at = Some(std::time::Instant::now());
                    }
                    continue;
                }
                let slot = UnprovenSlot::take(&unproven, from.ip(), tcp.try_clone().ok());
                if let Some(said) = unproven.lock().ok().and_then(|mut t| t.evictions_to_say()) {
                    say(&said);
                }
                let Some(slot) = slot else {
                    drop(tcp); // this address holds its share of unproven slots
                    crowded += 1;
                    if crowded_said_at.is_none_or(|at| at.elapsed() >= POOL_REPORT_EVERY) {
                        say(&format!(
                            "fleet: {crowded} connection(s) refused: their address ({}) had {MAX_UNPROVEN_PER_ADDRESS} (MAX_UNPROVEN_PER_ADDRESS) connections not yet proven by a host certificate; hosts behind one address send their reports again at their next turn",
                            from.ip()
                        ));
                        crowded = 0;
                        crowded_said_at = Some(std::time::Instant::now());
                    }
                    continue;
                };
                open.fetch_add(1, Ordering::Relaxed);
                let per_host = per_host.clone();
                let (config, fleet, count, stop, thread_say) = (
                    config.clone(),
                    fleet.clone(),
                    open.clone(),
                    stop.clone(),
                    say.clone(),
                );
                let spawned =
                    std::thread::Builder::new()
                        .name("fleet-host".into())
                        .spawn(move || {
                            if let Err(e) = connection(tcp, config, &fleet, &stop, slot, &per_host)
                            {
                                thread_say(&format!("fleet: {e}"));
                            }
                            count.fetch_sub(1, Ordering::Relaxed);
                        });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::Relaxed);
                    say("fleet: could not start a connection thread");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Evictions held back by the rate limit are said once it allows, even
                // if no connection comes after them.
                if let Some(said) = unproven.lock().ok().and_then(|mut t| t.evictions_to_say()) {
                    say(&said);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                say(&format!("fleet: accept: {e}"));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn connection(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    fleet: &Fleet,
    stop: &AtomicBool,
    mut slot: UnprovenSlot,
    per_host: &PerHost,
) -> Result<(), String> {
    tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
    let from = tcp.peer_addr().ok().map(|address| address.ip());
    tcp.set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(IDLE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let session = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(session, tcp);
    // The handshake as a whole ends by HANDSHAKE_DEADLINE: a peer that trickles a byte
    // now and then (which resets a per-read timeout) cannot hold a connection slot.
    let deadline = std::time::Instant::now() + HANDSHAKE_DEADLINE;
    while stream.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.sock.set_read_timeout(Some(left)).is_err() {
            return Ok(());
        }
        // One read or write at a time (not `complete_io`, which reads on until the
        // handshake is done), so the deadline is looked at between two reads.
        if stream.conn.wants_write() {
            if stream.conn.write_tls(&mut stream.sock).is_err() {
                return Ok(());
            }
            continue;
        }
        match stream.conn.read_tls(&mut stream.sock) {
            Ok(0) | Err(_) => return Ok(()), // ended, or the deadline passed
            Ok(_) => {}
        }
        match stream.conn.process_new_packets() {
            Ok(_) => {}
            Err(rustls::Error::AlertReceived(_)) => {
                // The peer refused what this listener presented: a host that pinned
                // another certificate ends its handshake so (review rv45-fleet).
                fleet.handshake_refused(from);
                return Ok(());
            }
            Err(_) => {
                // A refused certificate: the alert goes out, nothing else.
                let _ = stream.conn.write_tls(&mut stream.sock);
                return Ok(());
            }
        }
    }
    while stream.conn.wants_write() {
        if stream.conn.write_tls(&mut stream.sock).is_err() {
            return Ok(());
        }
    }
    stream
        .sock
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let peer: Option<Vec<u8>> = stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    // A certificate shown has been verified against the host CA in the handshake: the
    // connection no longer counts against its address (hosts behind one NAT share it;
    // counted until the store lookup below, which takes seconds on a contended store,
    // the ninth host behind an address was refused at every turn: review s17-r14), but
    // against its host's MAX_CONNECTIONS_PER_HOST, so one host's key cannot hold every
    // connection thread. A revoked host's certificate still passes the handshake (the
    // CA keeps no revocation list): held to that share too, and unproven below.
    let _host_slot = match &peer {
        Some(peer) => {
            let held = HostSlot::take(per_host, crate::cert_fingerprint(peer));
            slot.release();
            match held {
                Ok(held) => Some(held),
                Err(said) => return said.map_or(Ok(()), Err),
            }
        }
        None => None,
    };
    // Verified against the host CA and a host not revoked: may send reports. A store
    // that cannot say (down, stuck) proves nobody: the request is answered below with
    // the store's error, and the host comes again.
    // The host sends its first request once the handshake is done and waits for the
    // answer at most its IO_TIMEOUT once it has sent it: the check below counts against
    // that request (its frame may have waited while the check ran), the time the frame
    // took to arrive does not (a full batch over a slow link: counted, every first
    // request on a connection was refused once it took FLEET_REQUEST_BUDGET to upload,
    // and the host, whose next try is on a new connection, never got one through;
    // review s12-r14).
    let checking = std::time::Instant::now();
    let proven = peer.as_deref().is_some_and(|peer| {
        fleet
            .pool
            .get_until(checking + FLEET_REQUEST_BUDGET)
            .is_ok_and(|mut db| {
                matches!(
                    db.host_by_fingerprint(&crate::cert_fingerprint(peer)),
                    Ok(Some(host)) if host.revoked.is_none()
                )
            })
    });
    // A peer without a certificate (or a revoked host's) may only enrol: one small
    // frame, then the connection ends, so it cannot make the console hold a host's
    // batch-sized frames or keep a slot for a conversation.
    let limit = if proven {
        wire::MAX_FRAME_BYTES
    } else {
        wire::MAX_ENROL_FRAME_BYTES
    };
    let checked = checking.elapsed();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let request = match wire::read_frame_within::<Request>(&mut stream, limit) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(wire::WireError::Io(_)) => return Ok(()),
            Err(e) => {
                let _ = wire::write_frame(
                    &mut stream,
                    &Response::Refused {
                        reason: e.to_string(),
                    },
                );
                return Ok(());
            }
        };
        // A connection of the pool for this request only, given back before the next
        // frame is awaited: an idle host holds none.
        let mut until = std::time::Instant::now() + FLEET_REQUEST_BUDGET;
        if first {
            until = until.checked_sub(checked).unwrap_or(until);
        }
        first = false;
        let response = match fleet.pool.get_until(until) {
            Ok(mut db) => fleet.answer_from(&mut *db, peer.as_deref(), from, request),
            Err(e) => Response::Refused {
                reason: fleet.store_refusal(&e),
            },
        };
        if wire::write_frame(&mut stream, &response).is_err() || !proven {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "console_unconfirmed.rs"]
mod unconfirmed;

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 37's open point: a run of failed moves refused every host's report and
    /// was said on stderr only. Raised at its first failure and when it turns for good,
    /// its end once; nothing between, nothing without a failure.
    #[test]
    fn a_run_of_failed_moves_is_raised_at_its_start_when_it_turns_for_good_and_at_its_end() {
        let loud = pacsguard_store::PG_MOVE_FAILURES_LOUD;
        let mut unmoved = UnmovedRecords::default();
        assert!(unmoved.turn(0, None).is_none(), "nothing failed");
        let first = unmoved.turn(1, Some("lock timeout")).expect("raised");
        assert_eq!(first.kind, FindingKind::FleetRecordsUnmoved);
        assert_eq!(first.severity, Severity::Alert);
        assert!(
            first.detail.contains("lock timeout") && first.detail.contains("refused"),
            "{}",
            first.detail
        );
        for failures in 1..loud {
            assert!(unmoved.turn(failures, Some("lock timeout")).is_none());
        }
        let for_good = unmoved
            .turn(loud, Some("a table in the way"))
            .expect("raised");
        assert_eq!(for_good.severity, Severity::Alert);
        assert!(
            for_good.detail.contains("PG_MOVE_FAILURES_LOUD")
                && for_good.detail.contains("a table in the way"),
            "{}",
            for_good.detail
        );
        assert!(unmoved.turn(loud + 1, Some("again")).is_none(), "said once");
        let ended = unmoved.turn(0, None).expect("its end raised");
        assert_eq!(ended.severity, Severity::Info);
        assert!(unmoved.turn(0, None).is_none(), "its end once");
        assert!(
            unmoved.turn(1, Some("x")).is_some(),
            "a new run is raised again"
        );
    }

    use pacsguard_store::ConsoleDb;
    use std::path::Path;

    /// A console's store in a new directory with one host, `name`, enrolled by the peer
    /// certificate returned: the directory (kept alive), the store's path, the open
    /// store, the certificate and the host's id.
    fn enrolled(name: &str) -> (tempfile::TempDir, PathBuf, ConsoleDb, &'static [u8], i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let mut db = ConsoleDb::open(&store).expect("db");
        db.add_enrol_token(b"t", 0, i64::MAX).expect("token");
        let peer: &'static [u8] = b"the host's certificate";
        let id = db
            .enrol_host(b"t", now(), name, &crate::cert_fingerprint(peer))
            .expect("db")
            .expect("enrolled");
        (dir, store, db, peer, id)
    }
    /// Review rv46-fleet: the line of a refused handshake names at most
    /// [`UNKNOWN_PINS_NAMED`] hosts of unknown pin, counts all, and says the cut.
    #[test]
    fn a_refusal_names_at_most_unknown_pins_named_hosts_and_says_the_rest() {
        let from = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let hosts: Vec<String> = (0..=UNKNOWN_PINS_NAMED)
            .map(|i| format!("ws-{i:02}"))
            .collect();
        let line = unknown_pins_line(from, "AB:CD", &hosts[..UNKNOWN_PINS_NAMED]);
        assert!(!line.contains("UNKNOWN_PINS_NAMED"), "{line}");
        assert!(
            line.contains(&format!("{UNKNOWN_PINS_NAMED} host(s)")),
            "{line}"
        );
        let line = unknown_pins_line(from, "AB:CD", &hosts);
        let last = &hosts[UNKNOWN_PINS_NAMED];
        assert!(!line.contains(last.as_str()), "{last} named: {line}");
        for named in &hosts[..UNKNOWN_PINS_NAMED] {
            assert!(line.contains(named.as_str()), "{named}: {line}");
        }
        assert!(
            line.contains(&format!("{} host(s)", UNKNOWN_PINS_NAMED + 1))
                && line.contains("and 1 more, not named (UNKNOWN_PINS_NAMED"),
            "{line}"
        );
        assert!(line.contains("--fingerprint AB:CD"), "{line}");
    }

    /// Reaching [`pacsguard_store::MAX_HOST_PINS_READ`] (the store reads no more) is
    /// said; one fewer is not.
    #[test]
    fn reaching_max_host_pins_read_is_said() {
        assert_eq!(pins_read_cut(pacsguard_store::MAX_HOST_PINS_READ - 1), None);
        let said = pins_read_cut(pacsguard_store::MAX_HOST_PINS_READ).expect("said");
        assert!(said.contains("MAX_HOST_PINS_READ"), "{said}");
    }

    /// Review rv46-fleet (MUST): each alert the console raises about a host names its
    /// enrolment, read back exactly; one of a version before names none.
    #[test]
    fn the_consoles_alert_names_the_hosts_enrolment() {
        let certificate = "0f".repeat(32);
        let detail = format!("{}it is silent", host_detail_prefix("h1", &certificate));
        assert_eq!(enrolment_named("h1", &detail), Some(certificate.clone()));
        assert_eq!(enrolment_named("h", &detail), None);
        assert_eq!(enrolment_named("h1", "host h1: it is silent"), None);
        assert_eq!(
            enrolment_named("h1", "host h1 (certificate SHA-256 0f0f): x"),
            None
        );
    }

    /// Issue 14, session 46 (review rv45-fleet, MUST): a host pinned the certificate the
    /// fleet listener presented at its enrolment (kept then, per host); a console that
    /// presents another (its identity replaced, or an upgrade from a version that
    /// presented `[console] cert`) cut it off without a word. A connection refusing the
    /// certificate now makes the console compare, and raise `host-pinned-other` naming
    /// the host and both fingerprints, once; presenting the pinned one again raises
    /// nothing and finds the host pinned to it. Real TLS, the host's own client.
    #[test]
    fn a_host_that_pinned_another_certificate_is_raised_naming_both_fingerprints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let at = FleetStoreAt::Sqlite(store.clone());
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let all_raised = raised.clone();
        let fleet = |seed: u8| {
            let sink = raised.clone();
            Fleet::new(
                store.clone(),
                HostCa::load_or_generate(dir.path(), "console").expect("ca"),
                Cosigner::new(
                    "console/p",
                    ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
                ),
                Box::new(move |f| sink.lock().expect("sink").push(f)),
            )
        };
        let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
        let (console_at, pinned, stop, _, served) = serving(fleet(1));
        let home = tempfile::tempdir().expect("home");
        crate::host::enrol(
            home.path(),
            &format!("tls://{console_at}"),
            &token,
            &pinned,
            "ward-7",
        )
        .expect("enrolled");
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
        let mut db = ConsoleDb::open(&store).expect("db");
        let host = db.hosts().expect("hosts").remove(0);
        assert_eq!(
            db.host_pins().expect("pins"),
            [(host.fingerprint.clone(), pinned.clone())],
            "what the host was shown at its enrolment is kept"
        );
        // A later connection proves what the host pinned: it stands (a pin kept wrong
        // is corrected, review rv46-fleet), then the host's own again.
        db.keep_host_pin(&host.fingerprint, &"0".repeat(64), now())
            .expect("keep");
        assert_eq!(db.host_pins().expect("pins")[0].1, "0".repeat(64));
        db.keep_host_pin(&host.fingerprint, &pinned, now())
            .expect("keep");
        assert_eq!(db.host_pins().expect("pins")[0].1, pinned);
        // The console presents another certificate; the host, pinned, refuses it.
        let (console_at, presented, stop, _, served) = serving(fleet(2));
        let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
        let other = tempfile::tempdir().expect("home");
        let refused = crate::host::enrol(
            other.path(),
            &format!("tls://{console_at}"),
            &token,
            &pinned,
            "ward-8",
        );
        assert!(refused.is_err(), "the host refuses the certificate");
        let by = std::time::Instant::now() + Duration::from_secs(30);
        while raised.lock().expect("raised").is_empty() {
            assert!(std::time::Instant::now() < by, "nothing raised");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
        let raised = raised.lock().expect("raised").clone();
        assert_eq!(raised.len(), 1, "once: {raised:?}");
        let alert = &raised[0];
        assert_eq!(alert.kind, FindingKind::HostPinnedOther);
        assert_eq!(alert.severity, Severity::Alert);
        assert_eq!(alert.path, host_path("ward-7"));
        for named in [
            crate::printed_fingerprint(&pinned),
            crate::printed_fingerprint(&presented),
        ] {
            assert!(alert.detail.contains(&named), "{named} in {}", alert.detail);
        }
        // About this enrolment, and every step of the way back named (review rv46-fleet).
        let ward_7 = db.hosts().expect("hosts")[0].fingerprint.clone();
        assert_eq!(
            enrolment_named("ward-7", &alert.detail).as_deref(),
            Some(ward_7.as_str()),
            "{}",
            alert.detail
        );
        for step in [
            "restore HOME/console/cert.pem and key.pem",
            "pacsguard console revoke-host ward-7 --reason",
            "pacsguard console enrol-token --continue ward-7",
            "mv HOME/fleet HOME/fleet.old",
            "--name ward-7",
        ] {
            assert!(alert.detail.contains(step), "{step} in {}", alert.detail);
        }
        // Compared at start with the pinned one presented: nothing to raise.
        let hosts = db.hosts().expect("hosts");
        let pins = db.host_pins().expect("pins");
        let back = compare_pins(&hosts, &pins, &crate::printed_fingerprint(&pinned));
        assert_eq!(
            back.presented
                .iter()
                .map(|h| (h.name.as_str(), h.certificate.as_str()))
                .collect::<Vec<_>>(),
            [("ward-7", ward_7.as_str())]
        );
        assert!(
            back.elsewhere.is_empty() && back.unknown.is_empty(),
            "{back:?}"
        );
        let away = compare_pins(&hosts, &pins, &presented);
        assert_eq!(
            away.elsewhere,
            [PinnedHost {
                name: "ward-7".into(),
                certificate: ward_7.clone(),
                pinned: crate::printed_fingerprint(&pinned)
            }]
        );
        // A host enrolled by a version that kept no pin is not known, not "elsewhere".
        let unknown = compare_pins(&hosts, &[], &presented);
        assert_eq!(unknown.unknown, ["ward-7"]);
        // Review rv46-fleet: a stranger refusing the certificate (a port scanner, a
        // browser) named every host whose pin is not known cut off, an alert each: now
        // said in the log once, nothing raised.
        rusqlite::Connection::open(&store)
            .expect("store")
            .execute(
                "DELETE FROM fleet_settings WHERE name LIKE 'host_pin:%'",
                [],
            )
            .expect("pins removed");
        let before = all_raised.lock().expect("raised").len();
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let lines = said.clone();
        let (console_at, _, stop, _, served) =
            serving(fleet(3).with_log(Arc::new(move |line: &str| {
                lines.lock().expect("said").push(line.to_string())
            })));
        let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
        let stranger = tempfile::tempdir().expect("home");
        let refused = crate::host::enrol(
            stranger.path(),
            &format!("tls://{console_at}"),
            &token,
            &pinned,
            "ward-9",
        );
        assert!(refused.is_err(), "the stranger refuses the certificate");
        let by = std::time::Instant::now() + Duration::from_secs(30);
        while !said
            .lock()
            .expect("said")
            .iter()
            .any(|line| line.contains("kept no pin") && line.contains("ward-7"))
        {
            assert!(std::time::Instant::now() < by, "nothing said: {said:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
        assert_eq!(
            all_raised.lock().expect("raised").len(),
            before,
            "{:?}",
            all_raised.lock().expect("raised")
        );
    }

    /// Session 45: a host's trail recording a generation it signed with findings (its
    /// `profile` screened an executable in the tree: outcome `findings`) is a signing
    /// too, raised when its reports never named it; before, only outcome `success` was.
    #[test]
    fn a_generation_signed_with_findings_in_the_trail_is_raised_when_never_reported() {
        let (dir, store, mut db, _peer, id) = enrolled("sig");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        let h = db.host(id).expect("db").expect("host");
        let records = [(
            18,
            br#"{"seq":18,"action":"profile","outcome":"findings","detail":"baseline generation 2 signed: 8 entries in 1 roots","generation":2}"#.to_vec(),
        )];
        fleet
            .profiles_in_trail(&mut db, &h, &records, now())
            .expect("db");
        let raised = raised.lock().expect("raised");
        assert!(
            raised
                .iter()
                .any(|f| f.kind == FindingKind::HostProfileUnapproved
                    && f.detail.contains("generation 2 (record 18)")),
            "{raised:?}"
        );
    }

    /// Issue 14: a standing fork counted every later fork of the host on its detail,
    /// never raised, so a second copy hid behind the first for good. Acknowledged (the
    /// store's row, and the console's trail recording it), a fork at another point is
    /// raised again and the acknowledgement is no longer in effect; the same fork reported
    /// again is still counted. An acknowledgement the trail does not record is raised
    /// once as `host-acknowledgement-unproven` and changes nothing.
    #[test]
    fn a_fork_at_another_point_than_the_one_acknowledged_is_raised_again() {
        let (dir, store, mut db, _peer, id) = enrolled("ack");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let on_trail = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
        let trail = on_trail.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        let fleet = Fleet {
            acknowledged_on_trail: Arc::new(move |_: &str, digest: &str| {
                Ok(trail.lock().expect("trail").contains(digest))
            }),
            ..fleet
        };
        let host = |db: &mut ConsoleDb| db.host(id).expect("db").expect("host");
        let fork = |first: u64, size: u64| {
            format!(
                "records from {first} again, but {size} were accepted already: the trail was rewound or rewritten"
            )
        };
        let h = host(&mut db);
        assert!(
            fleet
                .set_refused_state(&mut db, &h, "fork", &fork(3, 9))
                .expect("db")
        );
        let h = host(&mut db);
        assert!(
            !fleet
                .set_refused_state(&mut db, &h, "fork", &fork(3, 12))
                .expect("db")
        );
        // Not acknowledged: another point is counted, as before.
        let h = host(&mut db);
        assert!(
            !fleet
                .set_refused_state(&mut db, &h, "fork", &fork(5, 12))
                .expect("db")
        );
        // Acknowledged in the store only: not in effect, raised once.
        let h = host(&mut db);
        let standing = acknowledge::standing(&h.state, &h.detail).expect("standing");
        let ack = pacsguard_store::Acknowledgement {
            by: "root".into(),
            reason: "restored from backup".into(),
            at: now(),
            digest: standing.digest(),
        };
        assert!(
            db.acknowledge_host(id, "fork", &standing.kept, &ack)
                .expect("db")
        );
        fleet.check_silence(&mut db, now()).expect("db");
        fleet.check_silence(&mut db, now()).expect("db");
        let kinds = |raised: &Mutex<Vec<Finding>>| {
            raised
                .lock()
                .expect("raised")
                .iter()
                .map(|f| f.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&raised),
            [FindingKind::HostAcknowledgementUnproven],
            "{:?}",
            raised.lock().expect("raised")
        );
        let h = host(&mut db);
        assert!(
            !fleet
                .set_refused_state(&mut db, &h, "fork", &fork(7, 12))
                .expect("db")
        );
        // On the trail: the same fork again is counted; another point is raised.
        on_trail.lock().expect("trail").insert(standing.digest());
        let h = host(&mut db);
        assert!(
            !fleet
                .set_refused_state(&mut db, &h, "fork", &fork(3, 20))
                .expect("db")
        );
        let h = host(&mut db);
        assert!(
            fleet
                .set_refused_state(&mut db, &h, "fork", &fork(8, 20))
                .expect("db")
        );
        let h = host(&mut db);
        assert_eq!((h.state.as_str(), h.detail.clone()), ("fork", fork(8, 20)));
        assert!(fleet.acknowledged(&h).is_none(), "no longer in effect");
        // The new fork is counted like any standing one until acknowledged in turn.
        assert!(
            !fleet
                .set_refused_state(&mut db, &h, "fork", &fork(8, 21))
                .expect("db")
        );
        // A refusal of another kind is raised, acknowledged or not, and counted on the
        // fork, which it does not end (review of session 34).
        let h = host(&mut db);
        assert!(
            fleet
                .set_refused_state(
                    &mut db,
                    &h,
                    "gap",
                    "records from 30, but only 21 were delivered"
                )
                .expect("db")
        );
        assert_eq!(host(&mut db).state, "fork");
    }

    /// Session 32: the point of a fork was the trail's size alone, so a second restore
    /// of the same backup (another branch from the same size) was the fork acknowledged,
    /// counted and never raised. A restored home names its backup's checkpoint first (a
    /// heartbeat), then its records: the standing refusal takes the records' words, which
    /// name the branch, so the acknowledgement names it; the second restore's heartbeat
    /// (the same checkpoint) is counted, its records (another branch) are raised.
    #[test]
    fn a_second_restore_of_the_same_backup_after_an_acknowledged_one_is_raised() {
        use crate::witness::{LEAF_HASH, ROOT};
        let (dir, store, mut db, _peer, id) = enrolled("ack-again");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        let fleet = Fleet {
            acknowledged_on_trail: Arc::new(|_: &str, _: &str| Ok(true)),
            ..fleet
        };
        let host = |db: &mut ConsoleDb| db.host(id).expect("db").expect("host");
        let backup_root = "3c".repeat(32);
        let heartbeat = format!(
            "a checkpoint of 3 records ({ROOT}{backup_root}) after one of 9 was accepted: the trail was rolled back"
        );
        let records = |branch: &str| {
            format!(
                "records from 3 again ({LEAF_HASH}{}), but 9 were accepted already: the trail was rewound or rewritten",
                branch.repeat(32)
            )
        };
        let refuse = |db: &mut ConsoleDb, words: &str| {
            let h = host(db);
            fleet.set_refused_state(db, &h, "fork", words).expect("db")
        };
        // The first restore: its heartbeat raised, its records name the branch.
        assert!(refuse(&mut db, &heartbeat));
        assert!(!refuse(&mut db, &records("1a")));
        let h = host(&mut db);
        let standing = acknowledge::standing(&h.state, &h.detail).expect("standing");
        // The branch's words keep the backup's root (session 33).
        let kept = records("1a").replacen("), but", &format!("; {ROOT}{backup_root}), but"), 1);
        assert_eq!(standing.words, kept, "{h:?}");
        let ack = pacsguard_store::Acknowledgement {
            by: "root".into(),
            reason: "restored from Monday's backup".into(),
            at: now(),
            digest: standing.digest(),
        };
        assert!(
            db.acknowledge_host(id, "fork", &standing.kept, &ack)
                .expect("db")
        );
        // The same restore reporting on: counted, still acknowledged.
        assert!(!refuse(&mut db, &heartbeat));
        assert!(!refuse(&mut db, &records("1a")));
        assert!(fleet.acknowledged(&host(&mut db)).is_some());
        // Restored again from the same backup: the same checkpoint, then another branch.
        assert!(!refuse(&mut db, &heartbeat));
        assert!(refuse(&mut db, &records("2b")), "the second branch raised");
        let h = host(&mut db);
        assert!(fleet.acknowledged(&h).is_none(), "no longer in effect");
        assert_eq!(h.detail, records("2b"));
        assert!(raised.lock().expect("raised").is_empty());
    }

    /// Review of session 32: while the host was silent (a machine down long enough, then
    /// restored) the branch's words never replaced the backup checkpoint's, so the
    /// administrator acknowledged words naming only the root, and a second restore of
    /// the same backup (another branch at that size) was taken for the fork acknowledged.
    /// The branch's words are taken inside a silent detail too; and an acknowledgement of
    /// words naming no branch, or only a root, does not cover a refusal naming a branch
    /// at that size: raised once, then counted.
    #[test]
    fn a_second_restore_behind_an_acknowledged_silent_host_is_raised() {
        use crate::witness::{LEAF_HASH, ROOT};
        let (dir, store, mut db, _peer, id) = enrolled("ack-silent");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        let fleet = Fleet {
            acknowledged_on_trail: Arc::new(|_: &str, _: &str| Ok(true)),
            ..fleet
        };
        let host = |db: &mut ConsoleDb| db.host(id).expect("db").expect("host");
        let heartbeat = format!(
            "a checkpoint of 3 records ({ROOT}{}) after one of 9 was accepted: the trail was rolled back",
            "3c".repeat(32)
        );
        let records = |branch: &str| {
            format!(
                "records from 3 again ({LEAF_HASH}{}), but 9 were accepted already: the trail was rewound or rewritten",
                branch.repeat(32)
            )
        };
        let refuse = |db: &mut ConsoleDb, words: &str| {
            let h = host(db);
            fleet.set_refused_state(db, &h, "fork", words).expect("db")
        };
        let acknowledge = |db: &mut ConsoleDb| {
            let h = host(db);
            let standing = acknowledge::standing(&h.state, &h.detail).expect("standing");
            let ack = pacsguard_store::Acknowledgement {
                by: "root".into(),
                reason: "restored from Monday's backup".into(),
                at: now(),
                digest: standing.digest(),
            };
            assert!(
                db.acknowledge_host(id, &h.state, &standing.kept, &ack)
                    .expect("db")
            );
            standing
        };
        // The machine was down long enough to be found silent, then restored.
        let h = host(&mut db);
        assert!(
            db.swap_host_state(
                id,
                &h.seen(),
                "silent",
                "no report of its trail verified",
                &Default::default()
            )
            .expect("db")
        );
        assert!(refuse(&mut db, &heartbeat));
        assert_eq!(host(&mut db).state, "fork, silent");
        assert!(!refuse(&mut db, &records("1a")));
        let standing = acknowledge(&mut db);
        let kept =
            records("1a").replacen("), but", &format!("; {ROOT}{}), but", "3c".repeat(32)), 1);
        assert_eq!(standing.words, kept, "{:?}", host(&mut db));
        // The same restore reporting on: counted; a second restore's branch: raised.
        assert!(!refuse(&mut db, &heartbeat));
        assert!(!refuse(&mut db, &records("1a")));
        assert!(fleet.acknowledged(&host(&mut db)).is_some());
        // Session 33: a checkpoint alone rewritten to the acknowledged size (another
        // root) was covered by the branch's words, whatever its root; it is raised.
        let rewritten = heartbeat.replace(&"3c".repeat(32), &"5e".repeat(32));
        assert!(
            refuse(&mut db, &rewritten),
            "a checkpoint-only rewrite raised"
        );
        assert!(fleet.acknowledged(&host(&mut db)).is_none());
        // Acknowledged as it stands, the rewrite's words name only a root: the answer
        // tells the administrator that the branch's first records will be raised once.
        let standing = acknowledge(&mut db);
        assert!(standing.names_no_branch(), "{standing:?}");
        assert!(refuse(&mut db, &records("2b")), "the second branch raised");
        let h = host(&mut db);
        assert_eq!(h.state, "fork, silent");
        assert!(fleet.acknowledged(&h).is_none(), "no longer in effect");

        // Words naming only the backup's root acknowledged (as an older console, or one
        // acknowledged before the records came, kept them): a branch at that size is
        // raised once, then counted like any standing fork.
        let h = host(&mut db);
        let detail = silence::silence_detail(
            silence::LastHeard::Report {
                ago: 600,
                interval: 15,
            },
            "fork",
            &heartbeat,
        );
        assert!(
            db.swap_host_state(id, &h.seen(), "fork, silent", &detail, &Default::default())
                .expect("db")
        );
        let standing = acknowledge(&mut db);
        assert_eq!(standing.words, heartbeat);
        assert!(
            !refuse(&mut db, &heartbeat),
            "the same root: the same point"
        );
        assert!(
            refuse(&mut db, &records("2b")),
            "a branch the words did not name"
        );
        assert!(!refuse(&mut db, &records("2b")), "raised once");
        assert!(raised.lock().expect("raised").is_empty());
    }

    /// Issue 14 (review of session 32, item 4, and session 33): while the store refuses
    /// writes, a refusal's state write failed with an error known not done (a reconnect
    /// before the swap that failed, a write refused) and was returned before anything
    /// was raised: a copy that forks once and never retries went unraised. Raised on any
    /// error, it was raised again at every report of a copy (an alert flood during an
    /// outage, and a second `host-trail-fork` judged from a read made before a slow
    /// write committed). Now "raised, not written" is kept per host, state and point:
    /// raised once whatever the store does, and written, not raised again, when the
    /// store takes it.
    #[test]
    fn a_refusal_the_store_does_not_write_is_raised_once_and_written_when_it_can() {
        let (dir, store, mut db, _peer, id) = enrolled("refused-unwritten");
        let logged = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = logged.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(|_| {}),
        )
        .with_log(Arc::new(move |line: &str| {
            log.lock().expect("log").push(line.to_string());
        }));
        // Every change of a host's state refused by the store: an answer, not a
        // statement of unknown outcome.
        let refusing = |on: bool| {
            let planted = rusqlite::Connection::open(&store).expect("sqlite");
            let sql = if on {
                "CREATE TRIGGER refuse_state BEFORE UPDATE OF state ON fleet_hosts \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            } else {
                "DROP TRIGGER refuse_state;"
            };
            planted.execute_batch(sql).expect("trigger");
        };
        refusing(true);
        let h = db.host(id).expect("db").expect("host");
        let fork = |size: u64| {
            format!(
                "records from 3 again ({}3b3b), but {size} were accepted already: the trail was rewound or rewritten",
                witness::LEAF_HASH
            )
        };
        let refuse = |db: &mut ConsoleDb, words: &str| {
            fleet
                .set_refused_state(db, &h, "fork", words)
                .expect("the refusal is the answer; the store's error is said on the log")
        };
        assert!(
            refuse(&mut db, &fork(9)),
            "raised although its state was not written"
        );
        assert!(
            logged
                .lock()
                .expect("log")
                .iter()
                .any(|l| l.contains("refused by the test")),
            "{:?}",
            logged.lock().expect("log")
        );
        // The copy reports on while the store refuses: the same fork, raised once.
        assert!(
            !refuse(&mut db, &fork(9)),
            "raised once, not at every report"
        );
        assert!(
            !refuse(&mut db, &fork(12)),
            "the same point, the host's trail grown"
        );
        assert_eq!(db.host(id).expect("db").expect("host").state, "ok");
        // The store takes writes again: the fork is written, not raised a second time.
        refusing(false);
        assert!(!refuse(&mut db, &fork(12)), "written now, raised already");
        let now = db.host(id).expect("db").expect("host");
        assert_eq!(now.state, "fork", "{now:?}");
        assert!(!refuse(&mut db, &fork(12)), "standing: counted");
    }

    /// A console over a store whose changes of a host's state can be refused at will
    /// (a trigger: an answer, not a statement of unknown outcome), with its log and the
    /// findings it raised itself, and every acknowledgement taken as on its trail.
    type Raised = Arc<Mutex<Vec<Finding>>>;
    fn console_refusing_at_will(
        dir: &tempfile::TempDir,
        store: &Path,
    ) -> (Fleet, Arc<Mutex<Vec<String>>>, Raised) {
        let logged = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = logged.clone();
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.to_path_buf(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_log(Arc::new(move |line: &str| {
            log.lock().expect("log").push(line.to_string());
        }));
        let fleet = Fleet {
            acknowledged_on_trail: Arc::new(|_: &str, _: &str| Ok(true)),
            ..fleet
        };
        (fleet, logged, raised)
    }

    fn refuse_state_writes(store: &Path, on: bool) {
        let planted = rusqlite::Connection::open(store).expect("sqlite");
        let sql = if on {
            "CREATE TRIGGER refuse_state BEFORE UPDATE OF state ON fleet_hosts \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        } else {
            "DROP TRIGGER refuse_state;"
        };
        planted.execute_batch(sql).expect("trigger");
    }

    /// The words of a fork of the host's trail at `size`, on the branch `branch`.
    fn fork_at(size: u64, branch: &str) -> String {
        format!(
            "records from {size} again ({}{}), but 20 were accepted already: the trail was rewound or rewritten",
            witness::LEAF_HASH,
            branch.repeat(32)
        )
    }

    /// A console over `store` whose findings go to the list returned (a console
    /// started anew: nothing in its memory).
    fn console_raising_into(
        dir: &tempfile::TempDir,
        store: &Path,
    ) -> (Fleet, Arc<Mutex<Vec<Finding>>>) {
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.to_path_buf(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        (fleet, raised)
    }

    /// Session 50 (review rv49-gate, MUST): a host whose revocation the console's trail
    /// records, its row in the store edited back to not revoked, was raised
    /// `host-silent` by the silence timer: an alert about a revoked enrolment raised after
    /// its revocation had closed its alerts, open for good. It raises no silence: the
    /// store's edit is what is raised (`host-revocation-undone`, once), found by the
    /// silence check even while the host never connects.
    #[test]
    fn an_enrolment_revoked_on_the_trail_is_never_raised_silent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let mut db = ConsoleDb::open(&store).expect("db");
        db.add_enrol_token(b"t", 0, i64::MAX).expect("token");
        let fingerprint = crate::cert_fingerprint(b"the host's certificate");
        let long_ago = now() - 30 * 86_400;
        let id = db
            .enrol_host(b"t", long_ago, "ws-late", &fingerprint)
            .expect("db")
            .expect("enrolled");
        let (fleet, raised) = console_raising_into(&dir, &store);
        let revoked = fingerprint.clone();
        let fleet = Fleet {
            revoked_on_trail: Arc::new(move |f: &str| Ok(f == revoked)),
            ..fleet
        };
        fleet.check_silence(&mut db, 0).expect("db");
        fleet.check_silence(&mut db, 0).expect("db");
        let kinds: Vec<FindingKind> = raised
            .lock()
            .expect("raised")
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(kinds, [FindingKind::HostRevocationUndone]);
        let h = db.host(id).expect("db").expect("host");
        assert_eq!(h.state, "revocation-undone", "{h:?}");
        assert_eq!(h.again.count, 0, "a silence pass is no refusal: {h:?}");
    }

    /// Session 35: the count of refusals on a standing fork was written into its detail
    /// and parsed back from it, after words the host controls (a fork's words quote the
    /// host's checkpoint): words that look like the console's count were taken for it.
    /// The count is the store's own column; the words are kept whole.
    #[test]
    fn words_a_host_wrote_are_never_read_back_as_the_count_of_its_refusals() {
        let (dir, store, mut db, _peer, id) = enrolled("planted-count");
        let (fleet, _raised) = console_raising_into(&dir, &store);
        let planted = "records from 3 again (origin evil [refused again 4000000 times since; the last: x]), but 9 were accepted already";
        let refuse = |db: &mut ConsoleDb, state: &str, words: &str| {
            let h = db.host(id).expect("db").expect("host");
            fleet.set_refused_state(db, &h, state, words).expect("db")
        };
        assert!(refuse(&mut db, "fork", planted), "the fork is raised");
        assert!(!refuse(&mut db, "fork", planted), "the same one is counted");
        let h = db.host(id).expect("db").expect("host");
        assert_eq!((h.state.as_str(), h.detail.as_str()), ("fork", planted));
        assert_eq!(h.again.count, 1, "{h:?}");
        assert_eq!(
            h.shown_detail(),
            format!("{planted} [refused again 1 times since]")
        );
        let standing = acknowledge::standing(&h.state, &h.detail).expect("standing");
        assert_eq!(standing.words, planted, "never cut at the host's marker");
    }

    /// Session 35: the state of the last refusal counted beside a standing fork lived
    /// in the console's memory only: a console restarted raised the same kind again
    /// (said twice). It is the store's column now, ended by an accepted batch as before.
    #[test]
    fn a_refusal_counted_beside_a_fork_is_not_raised_again_after_a_console_restart() {
        let (dir, store, mut db, _peer, id) = enrolled("beside-restart");
        let gap = "records from 30, but only 21 were delivered";
        let refuse = |fleet: &Fleet, db: &mut ConsoleDb, state: &str, words: &str| {
            let h = db.host(id).expect("db").expect("host");
            fleet.set_refused_state(db, &h, state, words).expect("db")
        };
        let (first, _) = console_raising_into(&dir, &store);
        assert!(refuse(&first, &mut db, "fork", &fork_at(3, "3b")));
        assert!(refuse(&first, &mut db, "gap", gap), "news beside the fork");
        assert!(!refuse(&first, &mut db, "gap", gap), "counted");
        drop(first);
        // The console restarted: its memory is empty, the store holds the count.
        let (second, _) = console_raising_into(&dir, &store);
        assert!(
            !refuse(&second, &mut db, "gap", gap),
            "said once, not again"
        );
        assert!(
            !refuse(&second, &mut db, "fork", &fork_at(3, "3b")),
            "counted"
        );
        let h = db.host(id).expect("db").expect("host");
        assert_eq!(h.state, "fork", "the fork stands: {h:?}");
        assert!(h.detail.starts_with(&fork_at(3, "3b")), "{h:?}");
        assert_eq!(h.again.count, 4, "{h:?}");
        assert_eq!(h.again.beside.as_deref(), Some("gap"), "{h:?}");
        // Another kind is news.
        assert!(refuse(&second, &mut db, "quota", "over its quota"));
    }

    /// Session 35: copies of a host alternating kinds flooded the console: beside a
    /// standing fork, `gap, quota, gap, quota...` was news at each change of the last kind
    /// counted, and `fork, duplicated, fork...` replaced the standing state each time,
    /// raised each time. Each kind is said once per episode; the state shown is the
    /// latest standing kind, and every refusal is counted.
    #[test]
    fn copies_alternating_kinds_are_said_once_per_kind_not_at_each_change() {
        let (dir, store, mut db, _peer, id) = enrolled("alternating");
        let (fleet, raised) = console_raising_into(&dir, &store);
        let refuse = |db: &mut ConsoleDb, state: &str, words: &str| {
            let h = db.host(id).expect("db").expect("host");
            fleet.set_refused_state(db, &h, state, words).expect("db")
        };
        assert!(refuse(&mut db, "fork", &fork_at(3, "3b")));
        let mut said = 1;
        for round in 0..10 {
            for (state, words) in [("gap", "records from 30"), ("quota", "over its quota")] {
                if refuse(&mut db, state, words) {
                    said += 1;
                }
                let h = db.host(id).expect("db").expect("host");
                assert_eq!(h.state, "fork", "{round} {state}: {h:?}");
            }
        }
        assert_eq!(said, 3, "the fork, the gap and the quota, once each");
        for round in 0..10 {
            for state in ["duplicated", "fork"] {
                if refuse(&mut db, state, &format!("{state} at {round}")) {
                    said += 1;
                }
                let h = db.host(id).expect("db").expect("host");
                assert_eq!(h.state, state, "the latest standing kind is shown: {h:?}");
            }
        }
        assert_eq!(said, 4, "the duplicated identity once more");
        let h = db.host(id).expect("db").expect("host");
        assert!(h.again.count >= 40, "every refusal counted: {h:?}");
        assert!(
            raised.lock().expect("raised").is_empty(),
            "raised by the caller"
        );
    }

    /// Review of session 33, item 1: a fork raised while the store refused its write was
    /// remembered until a batch ended the host's refusals; the real host's reports leave
    /// it `ok` (unchanged), so the memory outlived the outage, and a different fork weeks
    /// later was written without an alert. Now only the same point is taken as raised
    /// already, and the silence check writes what waits as soon as the store answers.
    #[test]
    fn a_refusal_raised_while_the_store_refused_is_written_once_it_answers_and_hides_no_later_fork()
    {
        let (dir, store, mut db, _peer, id) = enrolled("refused-outlived");
        let (fleet, _logged, raised) = console_refusing_at_will(&dir, &store);
        let refuse = |db: &mut ConsoleDb, words: &str| {
            let h = db.host(id).expect("db").expect("host");
            fleet.set_refused_state(db, &h, "fork", words).expect("db")
        };
        refuse_state_writes(&store, true);
        assert!(refuse(&mut db, &fork_at(3, "3b")), "raised, not written");
        refuse_state_writes(&store, false);
        // The store answers again; the host's own reports leave it `ok`. Another copy
        // forks elsewhere: news.
        assert!(
            refuse(&mut db, &fork_at(5, "5c")),
            "a different fork is raised"
        );
        assert_eq!(db.host(id).expect("db").expect("host").state, "fork");
        // The check writes nothing over the standing fork, and forgets the one waiting.
        fleet.check_silence(&mut db, now()).expect("db");
        let h = db.host(id).expect("db").expect("host");
        assert!(h.detail.starts_with(&fork_at(5, "5c")), "{h:?}");

        // Cleared; another outage: a fork raised, then written by the check once the
        // store answers, without a second alert, and then counted as standing.
        let h = db.host(id).expect("db").expect("host");
        assert!(
            db.swap_host_state(id, &h.seen(), "ok", "", &Default::default())
                .expect("db")
        );
        refuse_state_writes(&store, true);
        assert!(refuse(&mut db, &fork_at(7, "7d")), "raised, not written");
        assert!(!refuse(&mut db, &fork_at(7, "7d")), "once");
        refuse_state_writes(&store, false);
        fleet.check_silence(&mut db, now()).expect("db");
        let h = db.host(id).expect("db").expect("host");
        assert_eq!(h.state, "fork", "written once the store answers: {h:?}");
        assert!(h.detail.starts_with(&fork_at(7, "7d")), "{h:?}");
        assert!(!refuse(&mut db, &fork_at(7, "7d")), "standing: counted");
        assert!(raised.lock().expect("raised").is_empty());
    }

    /// Review of session 33, item 2: the limit of refusals remembered per host was shared
    /// by all states, so a copy forking at a new point at every report (each news beside
    /// an acknowledged fork) filled it, and a `quota` or `new-key` refusal was then never
    /// raised. Now the limit holds only for points, and reaching it still raises (said).
    #[test]
    fn a_copy_forking_at_every_report_hides_no_other_refusal_while_the_store_refuses() {
        let (dir, store, mut db, _peer, id) = enrolled("refused-full");
        let (fleet, logged, _raised) = console_refusing_at_will(&dir, &store);
        let refuse = |db: &mut ConsoleDb, state: &str, words: &str| {
            let h = db.host(id).expect("db").expect("host");
            fleet.set_refused_state(db, &h, state, words).expect("db")
        };
        assert!(refuse(&mut db, "fork", &fork_at(3, "3b")));
        let h = db.host(id).expect("db").expect("host");
        let standing = acknowledge::standing(&h.state, &h.detail).expect("standing");
        let ack = pacsguard_store::Acknowledgement {
            by: "root".into(),
            reason: "restored from Monday's backup".into(),
            at: now(),
            digest: standing.digest(),
        };
        assert!(
            db.acknowledge_host(id, &h.state, &standing.kept, &ack)
                .expect("db")
        );
        refuse_state_writes(&store, true);
        let limit = u64::try_from(crate::unwritten::MAX_UNWRITTEN_PER_HOST).expect("fits");
        for size in 4..4 + limit {
            assert!(refuse(&mut db, "fork", &fork_at(size, "4e")), "{size}");
        }
        assert!(
            refuse(&mut db, "fork", &fork_at(4 + limit, "4e")),
            "past the limit: raised all the same"
        );
        assert!(
            logged
                .lock()
                .expect("log")
                .iter()
                .any(|l| l.contains("MAX_UNWRITTEN_PER_HOST")),
            "the limit reached is said"
        );
        for state in ["quota", "new-key", "duplicated", "revocation-undone"] {
            assert!(
                refuse(&mut db, state, &format!("{state} refused")),
                "{state}"
            );
            assert!(!refuse(&mut db, state, &format!("{state} refused")), "once");
        }
    }

    /// MAX_UNPROVEN_RAISED: each approval without a trail record is raised once; at the
    /// limit the memory is emptied (said), so every one is raised again, none dropped.
    #[test]
    fn give_ups_are_said_once_per_window_with_a_count_and_never_left_unsaid() {
        let start = std::time::Instant::now();
        let mut give_ups = GiveUps::default();
        let first = give_ups.gave_up("ct-a", start).expect("the first said");
        assert!(first.contains("host ct-a") && first.contains("MAX_STATE_TRIES"));
        assert!(!first.contains("more changes"), "{first}");
        for i in 0..9 {
            let host = if i % 2 == 0 { "ct-a" } else { "ct-b" };
            assert_eq!(give_ups.gave_up(host, start), None, "counted");
        }
        // Not due within the window; due once it passed, with the count.
        assert_eq!(give_ups.due(start + STATE_GIVE_UP_SAID_EVERY / 2), None);
        let later = start + STATE_GIVE_UP_SAID_EVERY;
        let counted = give_ups.due(later).expect("said once due");
        assert!(
            counted.contains("9 more changes") && counted.contains("ct-a, ct-b"),
            "{counted}"
        );
        assert_eq!(give_ups.due(later + STATE_GIVE_UP_SAID_EVERY * 2), None);
        // Counted ones ride on the next give-up said when it comes first.
        assert_eq!(give_ups.gave_up("ct-c", later), None);
        let next = give_ups
            .gave_up("ct-d", later + STATE_GIVE_UP_SAID_EVERY)
            .expect("said");
        assert!(
            next.contains("host ct-d") && next.contains("1 more changes") && next.contains("ct-c"),
            "{next}"
        );
        // The hosts a line names are held to their limit.
        let mut many = GiveUps::default();
        many.gave_up("first", start);
        for i in 0..100 {
            many.gave_up(&format!("h{i}"), start);
        }
        let line = many.due(later).expect("due");
        assert!(line.contains("100 more") && !line.contains("h5,"), "{line}");
    }

    #[test]
    fn the_memory_of_unproven_approvals_raised_holds_its_limit() {
        let key = |n: usize| (1, n as u64, format!("{n:064x}"));
        let mut raised = RaisedOnce::default();
        for n in 0..MAX_UNPROVEN_RAISED {
            assert_eq!(raised.first(key(n)), (true, false), "{n}");
        }
        assert_eq!(raised.first(key(0)), (false, false), "raised once");
        assert_eq!(raised.first(key(MAX_UNPROVEN_RAISED)), (true, true));
        assert_eq!(raised.seen.len(), 1);
        assert_eq!(raised.first(key(0)), (true, false), "raised again");
    }

    /// A console whose trail records every approval its store holds: the tests of what
    /// the store decides besides (superseded, gone back).
    fn every_approval_recorded() -> Proof {
        Arc::new(|_: &str, _: u64, _: &str| Ok(Some(1_700_000_000)))
    }

    #[test]
    fn unproven_connections_are_held_to_their_limit_per_address() {
        let table: Unproven = Arc::default();
        let one: IpAddr = [192, 0, 2, 1].into();
        let two: IpAddr = [192, 0, 2, 2].into();
        let mut held: Vec<UnprovenSlot> = (0..MAX_UNPROVEN_PER_ADDRESS)
            .map(|_| UnprovenSlot::take(&table, one, None).expect("under the limit"))
            .collect();
        assert!(
            UnprovenSlot::take(&table, one, None).is_none(),
            "at the limit"
        );
        assert!(
            UnprovenSlot::take(&table, two, None).is_some(),
            "another address"
        );
        // A connection that shows its certificate frees its place (once, however often
        // released), and so does one that ends.
        held[0].release();
        held[0].release();
        let again = UnprovenSlot::take(&table, one, None).expect("a place again");
        assert!(UnprovenSlot::take(&table, one, None).is_none());
        drop(again);
        assert!(UnprovenSlot::take(&table, one, None).is_some());
        held.clear();
        assert!(table.lock().expect("table").held.is_empty());
    }

    /// One host cannot fill the console's disk: its records are taken up to the quota
    /// exactly, the next report is refused and `host-quota-exceeded` raised once, and
    /// nothing is lost (the host sends the same records again once it may).
    #[test]
    fn a_host_is_held_to_its_quota_and_told_once() {
        use crate::witness::tests::{checkpoint, records, signer};
        let (dir, store, mut db, peer, id) = enrolled("big");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = |quota: Quota| {
            let sink = sink.clone();
            Fleet::new(
                store.clone(),
                HostCa::load_or_generate(dir.path(), "console").expect("ca"),
                Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
                Box::new(move |f| sink.lock().expect("sink").push(f)),
            )
            .with_quota(quota)
        };
        let s = signer("big-trail");
        let all = records(0, 4, "a record of some length");
        let report = |first: usize, to: usize| Request::Report {
            sent_at: None,
            trail_key: s.verifier().encode(),
            interval: 5,
            first: first as u64,
            records: all[first..to].to_vec(),
            checkpoint: Some(checkpoint(&s, &all[..to])),
            profile: None,
        };
        // The two records' rows and the checkpoint row, as stored (the cosignature line
        // has the same length at any time).
        let note = checkpoint(&s, &all[..2]);
        let cosigned = Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32]))
            .cosign(&note, 0)
            .expect("cosign");
        let two: Vec<(u64, Vec<u8>)> = (0..2)
            .map(|i| (i as u64, all[i].clone().into_bytes()))
            .collect();
        let limit = batch_cost(&two, &note, Some(&cosigned));
        let small = fleet(Quota {
            bytes: limit,
            window: HOST_QUOTA_WINDOW,
        });
        let answer = small.answer(&mut db, Some(peer), report(0, 2));
        assert!(
            matches!(answer, Response::Witnessed { size: 2, .. }),
            "at the limit: {answer:?}"
        );
        for _ in 0..2 {
            let answer = small.answer(&mut db, Some(peer), report(2, 4));
            let Response::Refused { reason } = answer else {
                panic!("over the limit: {answer:?}");
            };
            assert!(reason.contains("HOST_QUOTA_BYTES"), "{reason}");
        }
        let kinds: Vec<FindingKind> = raised
            .lock()
            .expect("raised")
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(kinds, [FindingKind::HostQuotaExceeded], "raised once");
        assert_eq!(db.host_records(id).expect("records").len(), 2);
        // A new window (here: a larger quota): the same records are taken, in order.
        let answer = fleet(Quota::default()).answer(&mut db, Some(peer), report(2, 4));
        assert!(
            matches!(answer, Response::Witnessed { size: 4, .. }),
            "{answer:?}"
        );
        let held = db.host_records(id).expect("records");
        assert_eq!(
            held.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    /// Connections refused for [`MAX_UNPROVEN_PER_ADDRESS`] are said in the console's
    /// log: 50 hosts behind one address (loopback in `bench/fleet.sh`, a NAT in a
    /// hospital) had hundreds of reports reset in their handshake, and the console said
    /// nothing of it.
    #[test]
    fn connections_refused_for_their_address_are_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let fleet = Fleet::new(
            store,
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        );
        let (at, _, stop, said, served) = serving(fleet);
        // Connections that never start their handshake stay unproven; one more from the
        // same address is refused.
        let mut held: Vec<TcpStream> = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !said
            .lock()
            .expect("said")
            .iter()
            .any(|l| l.contains("MAX_UNPROVEN_PER_ADDRESS"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "refusals for the address are said: {:?}",
                said.lock().expect("said")
            );
            if held.len() <= MAX_UNPROVEN_PER_ADDRESS {
                held.push(TcpStream::connect(at).expect("connect"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(held);
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
    }

    /// Review r25: reports whose host clock is a day behind, then a day ahead, then
    /// right, then behind again, then just within the bound: raised once per departure
    /// (and side), never at every report, and every report witnessed.
    #[test]
    fn a_host_clock_off_past_the_bound_is_raised_once_per_departure() {
        use crate::witness::tests::{checkpoint, records, signer};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let mut db = ConsoleDb::open(&store).expect("db");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        db.add_enrol_token(b"t", 0, i64::MAX).expect("token");
        let peer = b"the host's certificate".to_vec();
        db.enrol_host(b"t", now(), "ct-1", &crate::cert_fingerprint(&peer))
            .expect("db")
            .expect("enrolled");
        let s = signer("ct-1");
        let all = records(0, 12, "r");
        let day = 86_400;
        let offsets = [-day, -day, day, day, 0, 0, -day, -day, 299, -299];
        for (i, offset) in offsets.iter().enumerate() {
            let answer = fleet.answer(
                &mut db,
                Some(&peer),
                Request::Report {
                    sent_at: Some(clock::unix_now() + offset),
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: i as u64,
                    records: all[i..=i].to_vec(),
                    checkpoint: Some(checkpoint(&s, &all[..=i])),
                    profile: None,
                },
            );
            assert!(matches!(answer, Response::Witnessed { .. }), "{answer:?}");
        }
        let raised = raised.lock().expect("raised");
        let kinds: Vec<_> = raised.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::HostClockSkewed; 3], "{raised:?}");
        assert!(raised[0].detail.contains("s behind this"), "{raised:?}");
        assert!(raised[1].detail.contains("s ahead of this"), "{raised:?}");
        assert!(raised[2].detail.contains("s behind this"), "{raised:?}");
    }

    /// Two hosts whose trail keys both hold a '+' in their base64 (one key in two ends
    /// with a piece after its last '+' that another key can share; one in 64 ends with
    /// '+', an empty piece) are two trails: each is witnessed. The console compared the
    /// piece after the last '+' only, so the second such host was refused for good as a
    /// copy of the first (`host-key-new`): 4 of 50 hosts in `bench/fleet.sh`.
    #[test]
    fn hosts_whose_trail_keys_hold_a_plus_are_not_taken_for_copies() {
        use crate::witness::tests::{checkpoint, records};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let mut db = ConsoleDb::open(&store).expect("db");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        // Trail keys whose base64 ends with '+', found by trying seeds in order.
        let signers: Vec<pacsguard_trail::note::Signer> = (0u8..=255)
            .map(|seed| {
                pacsguard_trail::note::Signer::new(
                    &format!("trail-{seed}"),
                    ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
                )
                .expect("signer")
            })
            .filter(|s| s.verifier().encode().ends_with('+'))
            .take(2)
            .collect();
        assert_eq!(signers.len(), 2, "two keys ending with '+' among 256 seeds");
        let all = records(0, 2, "a record");
        for (i, s) in signers.iter().enumerate() {
            let token = format!("t{i}");
            db.add_enrol_token(token.as_bytes(), 0, i64::MAX)
                .expect("token");
            let peer = format!("host {i}'s certificate").into_bytes();
            db.enrol_host(
                token.as_bytes(),
                now(),
                &format!("plus-{i}"),
                &crate::cert_fingerprint(&peer),
            )
            .expect("db")
            .expect("enrolled");
            let answer = fleet.answer(
                &mut db,
                Some(&peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: 0,
                    records: all.clone(),
                    checkpoint: Some(checkpoint(s, &all)),
                    profile: None,
                },
            );
            assert!(
                matches!(answer, Response::Witnessed { size: 2, .. }),
                "host {i}: {answer:?}"
            );
        }
        assert!(
            raised.lock().expect("raised").is_empty(),
            "nothing raised: {:?}",
            raised.lock().expect("raised")
        );
    }

    /// A host that sends tiny records one per report, each with its checkpoint, makes the
    /// console store a checkpoint row per record: what it stored in all stays within the
    /// quota, not only the records' text.
    #[test]
    fn tiny_records_one_per_report_stay_within_the_quota() {
        use crate::witness::tests::{checkpoint, signer};
        let (dir, store, mut db, peer, id) = enrolled("tiny");
        let quota = 8 << 10;
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_quota(Quota {
            bytes: quota,
            window: HOST_QUOTA_WINDOW,
        });
        let s = signer("tiny-trail");
        let all: Vec<String> = (0..200).map(|seq| format!("{{\"seq\":{seq}}}")).collect();
        let mut stored = 0u64;
        for n in 0..all.len() {
            let sent = checkpoint(&s, &all[..=n]);
            let answer = fleet.answer(
                &mut db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: n as u64,
                    records: vec![all[n].clone()],
                    checkpoint: Some(sent.clone()),
                    profile: None,
                },
            );
            match answer {
                Response::Witnessed { cosigned, .. } => {
                    stored += (all[n].len() + sent.len() + cosigned.map_or(0, |c| c.len())) as u64;
                }
                Response::Refused { reason } => {
                    assert!(reason.contains("HOST_QUOTA_BYTES"), "{reason}");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        let held = db.host_records(id).expect("records").len();
        assert!(
            held > 0 && held < all.len(),
            "the quota was reached: {held}"
        );
        assert!(
            stored <= quota,
            "{stored} bytes stored past a quota of {quota}"
        );
    }

    /// Review r30-fleet: a backlog goes in batches of `MAX_BATCH_BYTES`, its checkpoint
    /// with the last. The promise of the growth was taken from the last batch only: a
    /// guard started again after a clean stop (promise none), its heartbeat record in an
    /// earlier batch, was taken to promise the default (300 s), not the 3600 s its
    /// record said, and its heartbeats were stale after 600 s of a quiet trail.
    #[test]
    fn the_promise_of_a_backlog_is_its_newest_heartbeat_record_in_any_of_its_batches() {
        use crate::witness::tests::{checkpoint, signer};
        let (dir, store, mut db, peer, id) = enrolled("backlog");
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        );
        let s = signer("backlog-trail");
        let all = [
            r#"{"seq":0,"action":"heartbeat","heartbeat_seconds":3}"#,
            r#"{"seq":1,"action":"heartbeat","heartbeat_seconds":0}"#,
            r#"{"seq":2,"detail":"serve started"}"#,
            r#"{"seq":3,"action":"heartbeat","heartbeat_seconds":3600}"#,
            r#"{"seq":4,"detail":"a finding"}"#,
        ]
        .map(String::from);
        // (first, end, signed): a clean stop's, then a backlog in two batches.
        for (first, end, signed) in [(0, 2, true), (2, 4, false), (4, 5, true)] {
            let answer = fleet.answer(
                &mut db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: first as u64,
                    records: all[first..end].to_vec(),
                    checkpoint: signed.then(|| checkpoint(&s, &all[..end])),
                    profile: None,
                },
            );
            assert!(matches!(answer, Response::Witnessed { .. }), "{answer:?}");
        }
        let host = db.host(id).expect("db").expect("host");
        assert_eq!(host.size, 5);
        assert_eq!(host.trail_promise, 3600);
    }

    /// Review s18: a host going back to a profile generation approved on the console
    /// after reporting another (its old store put back) got the console's approval again
    /// at once, with no alert. Now it is raised when it goes back, and not signed.
    #[test]
    fn a_host_going_back_to_an_approved_profile_is_raised_and_not_signed() {
        use crate::witness::tests::signer;
        let (dir, store, mut db, peer, id) = enrolled("ws");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_proof(every_approval_recorded());
        let s = signer("ws-trail");
        let claim = |generation: u64| ProfileClaim {
            generation,
            created: 1,
            digest: format!("{generation:064x}"),
        };
        let report = |db: &mut ConsoleDb, generation: u64| match fleet.answer(
            db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: s.verifier().encode(),
                interval: 5,
                first: 0,
                records: Vec::new(),
                checkpoint: None,
                profile: Some(claim(generation)),
            },
        ) {
            Response::Witnessed { approval, .. } => approval,
            other => panic!("{other:?}"),
        };
        let unapproved = |raised: &Mutex<Vec<Finding>>| {
            raised
                .lock()
                .expect("raised")
                .iter()
                .filter(|f| f.kind == FindingKind::HostProfileUnapproved)
                .map(|f| f.detail.clone())
                .collect::<Vec<_>>()
        };
        assert!(report(&mut db, 1).is_none());
        let digest = claim(1).digest;
        assert!(
            db.propose_profile_approval(id, 1, &digest, "c-1", "ann", "install", now())
                .expect("db")
                && db
                    .confirm_profile_approval(id, 1, &digest, "c-1")
                    .expect("db")
        );
        assert!(report(&mut db, 1).is_some(), "approved: signed");
        assert!(report(&mut db, 2).is_none(), "a re-baseline on the host");
        assert_eq!(unapproved(&raised).len(), 2, "{:?}", unapproved(&raised));
        assert!(report(&mut db, 1).is_none(), "went back: not signed");
        assert!(report(&mut db, 1).is_none(), "nor at the next report");
        // Raised when it goes back (once per going back: the store's test, with reports
        // seconds apart; these come within one second, where the order of two reports
        // of one host is not known to the store).
        let said = unapproved(&raised);
        assert!(
            said.len() >= 3 && said[2].contains("went back to it after reporting generation 2"),
            "{said:?}"
        );
    }

    /// Review s18-r13: a host on an approved generation 3 going back to its generation 2,
    /// made on the host and never approved (its store of then put back), raised nothing:
    /// generation 2 was not new (raised once, long ago, perhaps acknowledged since) and
    /// not approved, so neither alert applied, and the host left an approved profile for
    /// an unapproved one with nobody paged. Now raised when it goes back.
    #[test]
    fn a_host_going_back_to_an_unapproved_profile_is_raised() {
        use crate::witness::tests::signer;
        let (dir, store, mut db, peer, id) = enrolled("ws");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_proof(every_approval_recorded());
        let s = signer("ws-trail");
        let claim = |generation: u64| ProfileClaim {
            generation,
            created: 1,
            digest: format!("{generation:064x}"),
        };
        let report = |db: &mut ConsoleDb, generation: u64| match fleet.answer(
            db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: s.verifier().encode(),
                interval: 5,
                first: 0,
                records: Vec::new(),
                checkpoint: None,
                profile: Some(claim(generation)),
            },
        ) {
            Response::Witnessed { approval, .. } => approval,
            other => panic!("{other:?}"),
        };
        let unapproved = |raised: &Mutex<Vec<Finding>>| {
            raised
                .lock()
                .expect("raised")
                .iter()
                .filter(|f| f.kind == FindingKind::HostProfileUnapproved)
                .map(|f| f.detail.clone())
                .collect::<Vec<_>>()
        };
        assert!(report(&mut db, 2).is_none());
        assert!(report(&mut db, 3).is_none());
        assert_eq!(unapproved(&raised).len(), 2);
        // Approved a second after (the store keeps times in seconds).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let digest = claim(3).digest;
        assert!(
            db.propose_profile_approval(id, 3, &digest, "c-1", "ann", "patch", now())
                .expect("db")
                && db
                    .confirm_profile_approval(id, 3, &digest, "c-1")
                    .expect("db")
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(report(&mut db, 3).is_some(), "approved: signed");
        // Reports a second apart: within one second two reports of one host are not
        // ordered by the store (the going back may be said again).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(report(&mut db, 2).is_none(), "went back: not approved");
        let said = unapproved(&raised);
        assert!(
            said.len() == 3 && said[2].contains("went back to it"),
            "{said:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(report(&mut db, 2).is_none());
        assert_eq!(unapproved(&raised).len(), 3, "said once");
    }

    /// Made-up profile claims (any host can name any number of generations) are each an
    /// alert in the console's trail: they are charged to the host's quota like its
    /// records, so past it no more are raised (`host-quota-exceeded` once), while the
    /// Hosts page still shows the host's highest generation unapproved.
    #[test]
    fn made_up_profile_claims_are_charged_to_the_quota() {
        use crate::witness::tests::signer;
        let (dir, store, mut db, peer, id) = enrolled("loud");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        // Room for two alerts (each detail is 200 to 400 bytes), not three.
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_quota(Quota {
            bytes: 2 * (ALERT_QUOTA_BYTES + 400),
            window: HOST_QUOTA_WINDOW,
        });
        let s = signer("loud-trail");
        for n in 1..=10u64 {
            let answer = fleet.answer(
                &mut db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: 0,
                    records: Vec::new(),
                    checkpoint: None,
                    profile: Some(ProfileClaim {
                        generation: n,
                        created: 1,
                        digest: format!("{n:064x}"),
                    }),
                },
            );
            assert!(!matches!(answer, Response::Enrolled { .. }), "{answer:?}");
        }
        let raised = raised.lock().expect("raised");
        let count = |kind| raised.iter().filter(|f| f.kind == kind).count();
        assert!(raised.iter().all(|f| (200..400).contains(&f.detail.len())
            || f.kind != FindingKind::HostProfileUnapproved));
        assert_eq!(count(FindingKind::HostProfileUnapproved), 2, "{raised:?}");
        assert_eq!(count(FindingKind::HostQuotaExceeded), 1, "{raised:?}");
        let current = db.current_profiles().expect("current");
        assert_eq!(
            current
                .iter()
                .map(|p| (p.host, p.generation, p.approved.is_some()))
                .collect::<Vec<_>>(),
            [(id, 10, false)],
            "the newest claim is still shown, unapproved"
        );
    }

    /// Review r26: a stranger under a host's certificate making a new trail key at every
    /// report cost nothing. Each key not seen is charged STRANGER_KEY_QUOTA_BYTES: past
    /// the quota its reports are refused, raised once as `host-quota-exceeded`.
    #[test]
    fn a_stranger_rotating_its_trail_key_is_charged_for_each_key() {
        use crate::witness::tests::{checkpoint, signer};
        let (dir, store, mut db, peer, _) = enrolled("pacs");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        // The host's first batch (well under 4 KiB) and ten keys, not fifty.
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_quota(Quota {
            bytes: 4096 + 10 * STRANGER_KEY_QUOTA_BYTES,
            window: HOST_QUOTA_WINDOW,
        });
        let host = signer("pacs-trail");
        let records = vec!["{\"seq\":0,\"action\":\"init\"}".to_string()];
        let witnessed = fleet.answer(
            &mut db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: host.verifier().encode(),
                interval: 15,
                first: 0,
                records: records.clone(),
                checkpoint: Some(checkpoint(&host, &records)),
                profile: None,
            },
        );
        assert!(
            matches!(witnessed, Response::Witnessed { size: 1, .. }),
            "{witnessed:?}"
        );
        let mut over_quota = 0;
        for n in 0..50u8 {
            // A key of its own each time (the fixture's signer has one key).
            let stranger = pacsguard_trail::note::Signer::new(
                "rotated",
                ed25519_dalek::SigningKey::from_bytes(&[10 + n; 32]),
            )
            .expect("signer");
            let answer = fleet.answer(
                &mut db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: stranger.verifier().encode(),
                    interval: 15,
                    first: 0,
                    records: Vec::new(),
                    checkpoint: None,
                    profile: None,
                },
            );
            match answer {
                Response::Refused { reason } if reason.contains("HOST_QUOTA_BYTES") => {
                    over_quota += 1;
                }
                Response::Refused { .. } => {}
                other => panic!("{n}: {other:?}"),
            }
        }
        assert!(
            (36..=45).contains(&over_quota),
            "{over_quota} refused for the quota"
        );
        let raised = raised.lock().expect("raised");
        let quota = raised
            .iter()
            .filter(|f| f.kind == FindingKind::HostQuotaExceeded)
            .count();
        assert_eq!(quota, 1, "{raised:?}");
    }

    /// Session 22: an approval row written in the store (sqlite3, psql) with no record on
    /// the console's trail was signed by the witness key at the host's next report. Now
    /// it is not signed, the host's `check` is told it is not in effect, and it is raised
    /// once as `host-approval-unproven`; once the trail records that approval (host,
    /// generation, digest), it is signed, with the time the trail recorded. A record of
    /// another host's, generation's or digest's approval proves nothing for this one.
    #[test]
    fn an_approval_in_the_store_is_signed_only_when_the_trail_records_it() {
        let (dir, store, mut db, peer, host) = enrolled("ws-09");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        // The console's trail: what it recorded approving.
        let trail = Arc::new(Mutex::new(HashMap::<(String, u64, String), i64>::new()));
        let held = trail.clone();
        let cosigner = Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        let verifier = cosigner.verifier();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            cosigner,
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        )
        .with_proof(Arc::new(
            move |host: &str, generation: u64, digest: &str| {
                Ok(held
                    .lock()
                    .expect("trail")
                    .get(&(host.to_string(), generation, digest.to_string()))
                    .copied())
            },
        ));
        let s = crate::witness::tests::signer("ws-09-trail");
        let claim = ProfileClaim {
            generation: 1,
            created: 1,
            digest: format!("{:064x}", 1),
        };
        let report = |db: &mut ConsoleDb| match fleet.answer(
            db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: s.verifier().encode(),
                interval: 5,
                first: 0,
                records: Vec::new(),
                checkpoint: None,
                profile: Some(claim.clone()),
            },
        ) {
            Response::Witnessed { approval, .. } => approval,
            other => panic!("{other:?}"),
        };
        let status = |db: &mut ConsoleDb| match fleet.answer(
            db,
            Some(peer),
            Request::ApprovalStatus {
                profile: claim.clone(),
            },
        ) {
            Response::ApprovalStatus { in_effect, detail } => (in_effect, detail),
            other => panic!("{other:?}"),
        };
        let unproven = |raised: &Mutex<Vec<Finding>>| {
            raised
                .lock()
                .expect("raised")
                .iter()
                .filter(|f| f.kind == FindingKind::HostApprovalUnproven)
                .map(|f| f.detail.clone())
                .collect::<Vec<_>>()
        };
        assert!(report(&mut db).is_none());
        // The attack: the row written as approved, as sqlite3 would, no approver at all.
        assert!(
            db.propose_profile_approval(
                host,
                1,
                &claim.digest,
                "c-1",
                "console:admin",
                &"x".repeat(100_000),
                now()
            )
            .expect("db")
                && db
                    .confirm_profile_approval(host, 1, &claim.digest, "c-1")
                    .expect("db")
        );
        assert!(report(&mut db).is_none(), "no trail record: not signed");
        assert!(report(&mut db).is_none(), "nor at the next report");
        let said = unproven(&raised);
        assert_eq!(said.len(), 1, "raised once: {said:?}");
        assert!(
            said[0].contains("host ws-09")
                && said[0].contains("no record of that approval")
                && said[0].contains("\"console:admin\""),
            "{said:?}"
        );
        // Whoever wrote the row wrote its reason: cut, and said so.
        assert!(
            said[0].len() < 2_000
                && said[0].contains("100000 characters, cut at MAX_SHOWN_STORE_CHARS"),
            "{}",
            said[0].len()
        );
        let (in_effect, detail) = status(&mut db);
        assert!(!in_effect && detail.contains("no record"), "{detail}");
        // Records of other approvals prove nothing for this one.
        for other in [
            ("ws-10".to_string(), 1, claim.digest.clone()),
            ("ws-09".to_string(), 2, claim.digest.clone()),
            ("ws-09".to_string(), 1, format!("{:064x}", 2)),
        ] {
            trail.lock().expect("trail").insert(other, 1_800_000_000);
        }
        assert!(report(&mut db).is_none(), "another approval's record");
        assert!(!status(&mut db).0);
        // Recorded on the trail: signed, with the trail's time.
        trail.lock().expect("trail").insert(
            ("ws-09".to_string(), 1, claim.digest.clone()),
            1_800_000_123,
        );
        let approval = report(&mut db).expect("recorded: signed");
        assert_eq!(
            crate::approval::verify(&approval, &verifier, "ws-09", &claim),
            Ok(1_800_000_123)
        );
        assert!(status(&mut db).0);
        assert_eq!(unproven(&raised).len(), 1);
        // A listener told nothing of its trail signs nothing.
        let bare = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        );
        let answer = bare.answer(
            &mut db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: s.verifier().encode(),
                interval: 5,
                first: 0,
                records: Vec::new(),
                checkpoint: None,
                profile: Some(claim.clone()),
            },
        );
        assert!(
            matches!(answer, Response::Witnessed { approval: None, .. }),
            "{answer:?}"
        );
    }

    /// `check` on a host asks whether the approval it keeps is still the console's
    /// current one for it: only while the console approved that generation and the host
    /// still runs it. A host that re-profiled, or went back to an older approved
    /// generation (its store and approvals file restored), is told no; a revoked host is
    /// refused. Before, nothing asked: a restored approvals file was believed.
    #[test]
    fn an_approval_is_confirmed_only_while_it_is_the_hosts_current_one() {
        let (dir, store, mut db, peer, host) = enrolled("ws-07");
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_proof(every_approval_recorded());
        let s = crate::witness::tests::signer("ws-07-trail");
        let claim = |generation: u64| ProfileClaim {
            generation,
            created: 1,
            digest: format!("{generation:064x}"),
        };
        let report = |db: &mut ConsoleDb, generation: u64| {
            let answer = fleet.answer(
                db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: 0,
                    records: Vec::new(),
                    checkpoint: None,
                    profile: Some(claim(generation)),
                },
            );
            assert!(matches!(answer, Response::Witnessed { .. }), "{answer:?}");
        };
        let status = |db: &mut ConsoleDb, generation: u64| {
            fleet.answer(
                db,
                Some(peer),
                Request::ApprovalStatus {
                    profile: claim(generation),
                },
            )
        };
        report(&mut db, 1);
        assert!(
            matches!(
                status(&mut db, 1),
                Response::ApprovalStatus {
                    in_effect: false,
                    ..
                }
            ),
            "not approved yet"
        );
        let one = claim(1).digest;
        assert!(
            db.propose_profile_approval(host, 1, &one, "c-11aa", "console:ann", "baseline", now())
                .expect("db")
        );
        assert!(
            db.confirm_profile_approval(host, 1, &one, "c-11aa")
                .expect("db")
        );
        assert_eq!(
            status(&mut db, 1),
            Response::ApprovalStatus {
                in_effect: true,
                detail: String::new()
            }
        );
        // Re-profiled on the host: generation 1's approval no longer counts.
        report(&mut db, 2);
        let answer = status(&mut db, 1);
        assert!(
            matches!(&answer, Response::ApprovalStatus { in_effect: false, detail } if detail.contains("generation 2")),
            "{answer:?}"
        );
        // Gone back to generation 1 (its store restored), within the same second as
        // the report of generation 2: the store orders reports by their sequence, not
        // their second, so this is the host's current profile, superseded.
        report(&mut db, 1);
        let answer = status(&mut db, 1);
        assert!(
            matches!(&answer, Response::ApprovalStatus { in_effect: false, detail } if detail.contains("went back")),
            "{answer:?}"
        );
        // Unknown to the console, and without a client certificate.
        assert!(matches!(
            status(&mut db, 9),
            Response::ApprovalStatus {
                in_effect: false,
                ..
            }
        ));
        let anonymous = fleet.answer(&mut db, None, Request::ApprovalStatus { profile: claim(1) });
        assert!(
            matches!(anonymous, Response::Refused { .. }),
            "{anonymous:?}"
        );
        assert_eq!(
            db.revoke_host(
                "ws-07",
                now(),
                &pacsguard_store::Revoker {
                    by: "root",
                    reason: None
                }
            )
            .expect("db"),
            1
        );
        assert!(matches!(status(&mut db, 1), Response::Refused { .. }));
    }

    /// A host whose reports name no new profile generation, while its witnessed trail
    /// records signing one, is raised as unapproved once; a claim of it later is not a
    /// second alert, and older generations a trail holds are not news.
    #[test]
    fn a_generation_signed_in_the_trail_but_never_named_is_raised_once() {
        use crate::witness::tests::{checkpoint, signer};
        let (dir, store, mut db, peer, _) = enrolled("ct-2");
        let raised = Arc::new(Mutex::new(Vec::<Finding>::new()));
        let sink = raised.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |f| sink.lock().expect("sink").push(f)),
        );
        let s = signer("ct-2-trail");
        let record = |seq: u64, action: &str, generation: u64| {
            format!(
                "{{\"seq\":{seq},\"action\":\"{action}\",\"outcome\":\"success\",\"generation\":{generation}}}"
            )
        };
        let all = [
            record(0, "profile", 1),
            record(1, "profile", 2),
            record(2, "check", 2),
            record(3, "accept", 3),
        ];
        let claim = |generation: u64| ProfileClaim {
            generation,
            created: 1,
            digest: format!("{generation:064x}"),
        };
        let report = |first: usize, to: usize, profile: Option<ProfileClaim>| Request::Report {
            sent_at: None,
            trail_key: s.verifier().encode(),
            interval: 5,
            first: first as u64,
            records: all[first..to].to_vec(),
            checkpoint: Some(checkpoint(&s, &all[..to])),
            profile,
        };
        let unapproved = || {
            raised
                .lock()
                .expect("raised")
                .iter()
                .filter(|f| f.kind == FindingKind::HostProfileUnapproved)
                .map(|f| f.detail.clone())
                .collect::<Vec<_>>()
        };
        // Enrolled after two generations: the claim of the newest is the one alert.
        let answer = fleet.answer(&mut db, Some(peer), report(0, 3, Some(claim(2))));
        assert!(
            matches!(answer, Response::Witnessed { size: 3, .. }),
            "{answer:?}"
        );
        assert_eq!(unapproved().len(), 1, "{:?}", unapproved());
        // Then the host re-baselines but keeps naming generation 2: its trail tells.
        let answer = fleet.answer(&mut db, Some(peer), report(3, 4, Some(claim(2))));
        assert!(
            matches!(answer, Response::Witnessed { size: 4, .. }),
            "{answer:?}"
        );
        let alerts = unapproved();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts[1].contains("generation 3 (record 3)"), "{alerts:?}");
        // Named later: not raised again, and not offered for approval as a trail row.
        let answer = fleet.answer(&mut db, Some(peer), report(4, 4, Some(claim(3))));
        assert!(matches!(answer, Response::Witnessed { .. }), "{answer:?}");
        assert_eq!(unapproved().len(), 2, "{:?}", unapproved());
        assert!(
            db.pending_profiles()
                .expect("pending")
                .iter()
                .all(|p| p.digest != pacsguard_store::FROM_TRAIL)
        );
    }

    /// Many addresses together hold at most half the slots without a host certificate,
    /// and a newcomer past that takes the place of the oldest, whose socket is ended: an
    /// enrolled host (unproven until its handshake is done) always gets in.
    #[test]
    fn unproven_connections_from_many_addresses_give_way_to_a_newcomer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let at = listener.local_addr().expect("address");
        let table: Unproven = Arc::default();
        let mut held = Vec::new();
        let mut clients = Vec::new();
        for n in 0..=u8::MAX {
            let client = TcpStream::connect(at).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            if let Some(slot) = UnprovenSlot::take(&table, [198, 51, 100, n].into(), Some(server)) {
                held.push(slot);
                clients.push(client);
            }
        }
        assert_eq!(
            table.lock().expect("table").held.len(),
            MAX_UNPROVEN_CONNECTIONS,
            "at the limit"
        );
        const { assert!(MAX_CONNECTIONS - MAX_UNPROVEN_CONNECTIONS >= MAX_CONNECTIONS / 2) };
        // The first (oldest) was ended for each newcomer past the limit.
        let mut oldest = clients.remove(0);
        oldest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        assert_eq!(
            std::io::Read::read(&mut oldest, &mut byte).expect("ended"),
            0,
            "the oldest idle connection was ended"
        );
        let newcomer = UnprovenSlot::take(&table, [203, 0, 113, 1].into(), None);
        assert!(newcomer.is_some(), "an enrolled host gets in");
        assert_eq!(
            table.lock().expect("table").held.len(),
            MAX_UNPROVEN_CONNECTIONS
        );
        // The evictions are said, once for the lot (counted, with the limit's name),
        // and not again until POOL_REPORT_EVERY has passed.
        let evicted = 256 - MAX_UNPROVEN_CONNECTIONS + 1;
        let said = table
            .lock()
            .expect("table")
            .evictions_to_say()
            .expect("the evictions are said");
        assert!(
            said.contains(&format!("{evicted} connection(s)"))
                && said.contains("MAX_UNPROVEN_CONNECTIONS"),
            "{said}"
        );
        drop(UnprovenSlot::take(&table, [203, 0, 113, 2].into(), None));
        assert_eq!(
            table.lock().expect("table").evictions_to_say(),
            None,
            "rate-limited"
        );
        assert_eq!(table.lock().expect("table").evicted, 1, "still counted");
    }

    /// A batch the store fails to take after its quota was charged (a call past its
    /// deadline, a server gone mid-transaction) is not left charged: the host's retries
    /// are charged once, not once each (review s11-r14).
    #[test]
    fn a_batch_the_store_failed_to_take_is_not_left_charged_to_the_quota() {
        use crate::witness::tests::{checkpoint, signer};
        let (dir, store, mut db, peer, id) = enrolled("busy");
        // The alert raised while the batch is judged (a profile signed on the host)
        // takes the store's write lock and keeps it past the store's busy timeout: the
        // batch's own transaction then fails, after its quota was charged; the lock is
        // let go before a second busy timeout has passed.
        let holding = Arc::new(Mutex::new(None::<std::thread::JoinHandle<()>>));
        let holder = holding.clone();
        let path = store.clone();
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(move |_| {
                let conn = rusqlite::Connection::open(&path).expect("open");
                conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
                *holder.lock().expect("holding") = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(13));
                    drop(conn);
                }));
            }),
        );
        let s = signer("busy-trail");
        let all =
            vec![r#"{"seq":0,"action":"profile","outcome":"success","generation":7}"#.to_string()];
        let answer = fleet.answer(
            &mut db,
            Some(peer),
            Request::Report {
                sent_at: None,
                trail_key: s.verifier().encode(),
                interval: 5,
                first: 0,
                records: all.clone(),
                checkpoint: Some(checkpoint(&s, &all)),
                profile: None,
            },
        );
        assert!(matches!(answer, Response::Refused { .. }), "{answer:?}");
        if let Some(thread) = holding.lock().expect("holding").take() {
            thread.join().expect("held");
        }
        assert!(db.host_records(id).expect("records").is_empty());
        assert_eq!(
            db.quota_used(id).expect("quota").1,
            0,
            "nothing left charged"
        );
    }

    /// A request whose frame takes longer than FLEET_REQUEST_BUDGET to arrive (a full
    /// batch over a slow link: the host's patience starts once it has sent it) still
    /// gets its whole budget for the store work (review s12-r14): counted from the end
    /// of the handshake, the first request of every connection was refused at once, and
    /// a host that tries again on a new connection never got through. Here the one
    /// connection of the pool is busy for a moment when the frame has arrived: the
    /// request waits for it within its budget instead of finding its budget spent.
    #[test]
    fn a_first_request_slow_to_arrive_is_not_refused_for_the_time_it_took() {
        use std::io::{Read as _, Write as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let at = FleetStoreAt::Sqlite(store.clone());
        let pool = FleetPool::with_limits(at.clone(), 1, Duration::from_secs(120));
        let fleet = Fleet::new(
            store,
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_pool(pool.clone());
        let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
        let (console_at, fingerprint, stop, _, served) = serving(fleet);
        // A link that carries the handshake at once and the request's frame (the
        // client's second application-data record: the first is its Finished) over
        // longer than FLEET_REQUEST_BUDGET, in pieces well within IDLE_TIMEOUT.
        let slow = FLEET_REQUEST_BUDGET + Duration::from_secs(2);
        let link = TcpListener::bind("127.0.0.1:0").expect("listen");
        let link_at = link.local_addr().expect("address");
        let arrived = Arc::new(Mutex::new(None::<std::time::Instant>));
        let carried = arrived.clone();
        let proxy = std::thread::spawn(move || {
            let (mut host, _) = link.accept().expect("the host");
            let mut up = TcpStream::connect(console_at).expect("the console");
            let (mut host_back, mut up_back) = (
                host.try_clone().expect("clone"),
                up.try_clone().expect("clone"),
            );
            let back = std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_back, &mut host_back);
                let _ = host_back.shutdown(std::net::Shutdown::Both);
            });
            let mut data_records = 0;
            loop {
                let mut header = [0u8; 5];
                if host.read_exact(&mut header).is_err() {
                    break;
                }
                let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                let mut body = vec![0u8; len];
                host.read_exact(&mut body).expect("a whole record");
                let mut record = header.to_vec();
                record.extend_from_slice(&body);
                if header[0] == 0x17 {
                    data_records += 1;
                }
                if data_records == 2 && carried.lock().expect("arrived").is_none() {
                    // (Its first record may be the frame's length alone.)
                    let pieces: Vec<&[u8]> = record.chunks(record.len().div_ceil(11)).collect();
                    for piece in &pieces {
                        std::thread::sleep(slow / pieces.len() as u32);
                        up.write_all(piece).expect("forwarded");
                    }
                    *carried.lock().expect("arrived") = Some(std::time::Instant::now());
                } else if up.write_all(&record).is_err() {
                    break;
                }
            }
            let _ = up.shutdown(std::net::Shutdown::Both);
            let _ = back.join();
        });
        // The pool's one connection is in use until a moment after the frame arrived.
        let held = pool.get().expect("the only connection");
        let holder = std::thread::spawn(move || {
            let by = std::time::Instant::now() + Duration::from_secs(300);
            while arrived.lock().expect("arrived").is_none() {
                assert!(std::time::Instant::now() < by, "the frame never arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_secs(1));
            drop(held);
        });
        let home = tempfile::tempdir().expect("home");
        let enrolled = crate::host::enrol(
            home.path(),
            &format!("tls://{link_at}"),
            &token,
            &fingerprint,
            "slow-link",
        );
        holder.join().expect("holder");
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
        proxy.join().expect("proxy");
        if let Err(e) = enrolled {
            panic!("refused for the time its request took to arrive: {e}");
        }
    }

    /// More hosts than [`MAX_CONNECTIONS`] report to one console, turn after turn: every
    /// report is answered. A host used to keep its connection open between reports, so
    /// the first `MAX_CONNECTIONS` hosts held every connection thread of the console for
    /// good and each report of the others was dropped unanswered (they went silent):
    /// found by `bench/fleet.sh` past 64 hosts. One identity stands for many hosts here:
    /// the limit counts connections.
    #[test]
    fn more_hosts_than_connections_all_get_their_reports_through() {
        use pacsguard_audit::delivery::{Cursor, Transport as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let at = FleetStoreAt::Sqlite(store.clone());
        let fleet = Fleet::new(
            store,
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_pool(FleetPool::new(at.clone()));
        let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
        let (console_at, fingerprint, stop, said, served) = serving(fleet);
        let home = tempfile::tempdir().expect("home");
        crate::host::enrol(
            home.path(),
            &format!("tls://{console_at}"),
            &token,
            &fingerprint,
            "many",
        )
        .expect("enrolled");
        let identity = crate::host::Identity::load(home.path())
            .expect("identity")
            .expect("enrolled");
        let key = crate::witness::tests::signer("many-trail")
            .verifier()
            .encode();
        let mut hosts: Vec<crate::host::ConsoleTransport<'_>> = (0..=MAX_CONNECTIONS)
            .map(|_| crate::host::ConsoleTransport::new(&identity, key.clone(), 5, None, 0))
            .collect();
        for turn in 0..2 {
            for (i, host) in hosts.iter_mut().enumerate() {
                // Bounded: a connection just ended counts until its thread sees the end.
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while let Err(e) = host.confirm(Cursor::default()) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "turn {turn}: the report of host {i} was never answered: {e}; the console said {:?}",
                        said.lock().expect("said")
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // The limit still holds, and reaching it is said: connections held open (by
        // hosts, each to its MAX_CONNECTIONS_PER_HOST) leave the next one refused.
        let others: Vec<(tempfile::TempDir, crate::host::Identity)> = (0..MAX_CONNECTIONS
            / MAX_CONNECTIONS_PER_HOST)
            .map(|i| {
                let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
                let home = tempfile::tempdir().expect("home");
                crate::host::enrol(
                    home.path(),
                    &format!("tls://{console_at}"),
                    &token,
                    &fingerprint,
                    &format!("holder-{i}"),
                )
                .expect("enrolled");
                let identity = crate::host::Identity::load(home.path())
                    .expect("identity")
                    .expect("enrolled");
                (home, identity)
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut held = Vec::new();
        for (_, other) in &others {
            for _ in 0..MAX_CONNECTIONS_PER_HOST {
                // Bounded: one refused while MAX_UNPROVEN_PER_ADDRESS are still in
                // their handshake.
                loop {
                    match other.connect() {
                        Ok(stream) => break held.push(stream),
                        Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
                    }
                }
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !said
            .lock()
            .expect("said")
            .iter()
            .any(|l| l.contains("(MAX_CONNECTIONS) were open"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "refusals at the limit are said"
            );
            let _ = hosts[0].confirm(Cursor::default());
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(held);
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
    }

    /// Requests refused because every connection of the pool stayed in use are said by
    /// the console (how many, naming PG_POOL_SIZE), not only answered to the hosts.
    #[test]
    fn requests_refused_at_the_pools_limit_are_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let pool = FleetPool::with_limits(
            FleetStoreAt::Sqlite(store.clone()),
            1,
            Duration::from_millis(50),
        );
        let fleet = Fleet::new(
            store,
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_pool(pool.clone());
        let held = pool.get().expect("the only connection");
        assert!(pool.get().is_err(), "refused at the limit");
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let sink = said.clone();
            let watcher = s.spawn(|| {
                watch_silence(&fleet, &stop, &move |line: &str| {
                    sink.lock().expect("said").push(line.to_string());
                });
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !said
                .lock()
                .expect("said")
                .iter()
                .any(|l| l.contains("PG_POOL_SIZE"))
            {
                assert!(std::time::Instant::now() < deadline, "never said");
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, Ordering::Relaxed);
            watcher.join().expect("watcher");
        });
        drop(held);
        let said = said.lock().expect("said");
        let line = said
            .iter()
            .find(|l| l.contains("PG_POOL_SIZE"))
            .expect("said");
        assert!(
            line.contains("request(s) found all 1 connections") && line.contains("PG_POOL_WAIT"),
            "{line}"
        );
    }

    /// The waits between tries of an unreachable store double from the first up to the
    /// cap and stay there; an answer starts them again from the first.
    #[test]
    fn store_retries_back_off_to_their_cap_and_start_again_after_an_answer() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| backoff.failed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(STORE_RETRY_CAP, Duration::from_secs(60));
        assert!(backoff.succeeded(), "a run of failures ended");
        assert!(!backoff.succeeded(), "once");
        assert_eq!(backoff.failed(), STORE_RETRY_FIRST);
    }

    /// Review rv44-fleet: `H3`, `h3.` and `h3_` beside `h3` were enrolled as four
    /// hosts. Each is refused now, naming the host it collides with or the rule, with a
    /// token that is valid (and stays unspent); a revoked host's look-alike may enrol.
    #[test]
    fn look_alike_host_names_are_refused_naming_the_enrolled_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let mut db = ConsoleDb::open(&store).expect("db");
        let fleet = Fleet::new(
            store.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        );
        let mut tokens = 0u32;
        let mut enrol = |db: &mut ConsoleDb, name: &str| {
            tokens += 1;
            let token = format!("{tokens:064x}");
            db.add_enrol_token(&token_digest(&token), 0, i64::MAX)
                .expect("token");
            let key = rcgen::KeyPair::generate().expect("key");
            let csr = rcgen::CertificateParams::default()
                .serialize_request(&key)
                .expect("csr");
            let request = Request::Enrol {
                token: token.clone(),
                name: name.into(),
                csr: B64.encode(csr.der()),
            };
            let answer = fleet.answer(db, None, request);
            let spent = db
                .enrol_token_refusal(&token_digest(&token), now())
                .expect("store")
                .is_some();
            (answer, spent)
        };
        let (first, _) = enrol(&mut db, "h3");
        assert!(matches!(first, Response::Enrolled { .. }), "{first:?}");
        for look_alike in ["H3", "h3.", "h3_", "h3.."] {
            let (answer, spent) = enrol(&mut db, look_alike);
            let Response::Refused { reason } = answer else {
                panic!("{look_alike:?} refused: {answer:?}");
            };
            assert!(
                reason.contains("\"h3\"") || reason.contains("RFC 1123"),
                "{look_alike:?}: {reason}"
            );
            assert!(!spent, "{look_alike:?}: the token is not spent");
        }
        let (answer, _) = enrol(&mut db, "H3");
        let Response::Refused { reason } = answer else {
            panic!("refused: {answer:?}");
        };
        assert!(reason.contains("the enrolled host \"h3\""), "{reason}");
        // The store alone holds too (two enrolments at once pass the check before it).
        db.add_enrol_token(b"raw", 0, i64::MAX).expect("token");
        assert_eq!(
            db.enrol_host(b"raw", now(), "H3", "f").expect("store"),
            Err(TokenRefusal::NameTaken)
        );
        let (other, _) = enrol(&mut db, "H4.ward-2");
        assert!(matches!(other, Response::Enrolled { .. }), "{other:?}");
        assert_eq!(db.hosts().expect("hosts").len(), 2, "h3 and H4.ward-2 only");
    }

    #[test]
    fn host_names_are_held_to_their_limit_and_alphabet() {
        assert!(check_host_name(&"a".repeat(MAX_HOST_NAME)).is_ok());
        assert!(check_host_name(&"a".repeat(MAX_HOST_NAME + 1)).is_err());
        for bad in ["", "pacs 01", "<b>", "a/b", "pacs\n01", "--x", "-h"] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_host_name("pacs-01-").is_ok(),
            "enrolled by a version before"
        );
        // A new host: RFC 1123.
        for good in ["pacs-01", "PACS-01", "ws1.radiology", "a", "0abc"] {
            assert!(check_new_host_name(good).is_ok(), "{good:?}");
        }
        let label = "a".repeat(MAX_HOST_NAME_LABEL);
        assert!(check_new_host_name(&label).is_ok());
        assert!(check_new_host_name(&format!("{label}a")).is_err());
        for bad in ["pacs-01-", "h3_", "h3.", "a..b", ".a", "a.-b", "x\u{2010}y"] {
            assert!(check_new_host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_lifetimes_are_held_to_their_limit_and_the_token_is_stored_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let over = MAX_ENROL_TOKEN_LIFETIME + Duration::from_secs(1);
        assert!(issue_token(&FleetStoreAt::Sqlite(store.clone()), over, None).is_err());
        assert!(issue_token(&FleetStoreAt::Sqlite(store.clone()), Duration::ZERO, None).is_err());
        let (token, expires) = issue_token(
            &FleetStoreAt::Sqlite(store.clone()),
            MAX_ENROL_TOKEN_LIFETIME,
            None,
        )
        .expect("at the limit");
        assert!(is_token(&token));
        assert!(expires > now());
        let mut db = ConsoleDb::open(&store).expect("db");
        assert_eq!(
            db.enrol_token_refusal(&token_digest(&token), now())
                .expect("db"),
            None
        );
        assert_eq!(
            db.enrol_token_refusal(token.as_bytes(), now()).expect("db"),
            Some(TokenRefusal::Unknown),
            "only the digest is stored"
        );
        assert_eq!(
            db.enrol_token_refusal(&token_digest(&token), expires)
                .expect("db"),
            Some(TokenRefusal::Expired)
        );
    }

    /// Issue 14: a failure of the console's own store (here a real PostgreSQL server
    /// stopped under the console) reaches a host as a short reason and an id, never the
    /// store's error text (the database, its user, the socket's path); the console's log
    /// keeps the whole text under the same id. A report of an enrolled host and an
    /// enrolment (a peer with no certificate yet) alike.
    #[test]
    fn a_store_failure_reaches_a_host_as_a_short_reason_and_an_id_only() {
        use crate::witness::tests::{checkpoint, signer};
        let server = pacsguard_testkit::postgres::PgServer::start();
        let at = FleetStoreAt::Postgres(server.connection_string());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = at.open().expect("store");
        let token = "ab".repeat(32);
        db.add_enrol_token(&token_digest(&token), 0, i64::MAX)
            .expect("token");
        db.add_enrol_token(b"t", 0, i64::MAX).expect("token");
        let peer = b"the host's certificate";
        db.enrol_host(b"t", now(), "ws-1", &crate::cert_fingerprint(peer))
            .expect("db")
            .expect("enrolled");
        let said: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = said.clone();
        let fleet = Fleet::new(
            at.clone(),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_log(Arc::new(move |line: &str| {
            log.lock().expect("log").push(line.to_string());
        }));
        server.stop().expect("the server stops");
        let s = signer("ws-1-trail");
        let all = vec![r#"{"seq":0,"action":"check","outcome":"success"}"#.to_string()];
        let answers = [
            fleet.answer(
                &mut *db,
                Some(peer),
                Request::Report {
                    sent_at: None,
                    trail_key: s.verifier().encode(),
                    interval: 5,
                    first: 0,
                    records: all.clone(),
                    checkpoint: Some(checkpoint(&s, &all)),
                    profile: None,
                },
            ),
            fleet.answer(
                &mut *db,
                None,
                Request::Enrol {
                    token,
                    name: "ws-2".into(),
                    csr: "AAAA".into(),
                },
            ),
        ];
        let socket = server.socket_dir().display().to_string();
        for answer in answers {
            let Response::Refused { reason } = answer else {
                panic!("refused: {answer:?}");
            };
            for internal in ["postgres", "PostgreSQL", "fleet_store", "dbname", &socket] {
                assert!(!reason.contains(internal), "{internal} in {reason}");
            }
            let id = reason
                .split("refusal ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("an id in {reason}"));
            let said = said.lock().expect("log");
            let full = said
                .iter()
                .find(|line| line.contains(&format!("refusal {id}:")))
                .unwrap_or_else(|| panic!("{id} in the log: {said:?}"));
            assert!(
                full.contains("PostgreSQL"),
                "the whole text is kept: {full}"
            );
        }
    }

    /// Review s14-r03: a store down under many hosts (or under anyone who may open a
    /// connection and ask to enrol) wrote one line of the console's log per refusal,
    /// without bound. At most MAX_REFUSAL_LOG_LINES per window are written in full, the
    /// bound is said once, the rest name the last written refusal (an id in the log)
    /// and are counted in the next line written.
    #[test]
    fn store_refusals_write_a_bounded_number_of_lines_to_the_log() {
        let said: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = said.clone();
        let dir = tempfile::tempdir().expect("tempdir");
        let fleet = Fleet::new(
            FleetStoreAt::Sqlite(dir.path().join("store.sqlite")),
            HostCa::load_or_generate(dir.path(), "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_log(Arc::new(move |line: &str| {
            log.lock().expect("log").push(line.to_string());
        }));
        let refusals: Vec<String> = (0..3 * MAX_REFUSAL_LOG_LINES)
            .map(|n| fleet.store_refusal(&format!("connection {n} refused")))
            .collect();
        let said = said.lock().expect("log");
        assert_eq!(
            said.len(),
            MAX_REFUSAL_LOG_LINES as usize + 1,
            "bounded: {said:#?}"
        );
        assert!(
            said.last()
                .is_some_and(|l| l.contains("MAX_REFUSAL_LOG_LINES")),
            "the bound is said: {said:#?}"
        );
        for refusal in &refusals {
            let id = refusal
                .split("refusal ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("an id in {refusal}"));
            assert!(
                said.iter().any(|l| l.contains(&format!("refusal {id}"))),
                "{id} in the log: {said:#?}"
            );
        }
    }

    /// `fleet` serving on loopback under a fresh self-signed certificate: its address,
    /// the certificate's fingerprint, its stop flag, its log and its thread.
    #[allow(clippy::type_complexity)]
    fn serving(
        fleet: Fleet,
    ) -> (
        std::net::SocketAddr,
        String,
        Arc<AtomicBool>,
        Arc<Mutex<Vec<String>>>,
        std::thread::JoinHandle<()>,
    ) {
        let made = rcgen::generate_simple_self_signed(vec!["console".into()]).expect("cert");
        let fingerprint = crate::cert_fingerprint(made.cert.der());
        let config = fleet
            .tls_config(
                vec![made.cert.der().clone()],
                PrivateKeyDer::try_from(made.signing_key.serialize_der()).expect("key"),
            )
            .expect("tls");
        let console = TcpListener::bind("127.0.0.1:0").expect("listen");
        let at = console.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = said.clone();
        let served = serve(
            console,
            config,
            Arc::new(fleet),
            stop.clone(),
            Arc::new(move |line: &str| log.lock().expect("said").push(line.to_string())),
        )
        .expect("serve");
        (at, fingerprint, stop, said, served)
    }

    /// A console on a pool of `size` connections to a fresh SQLite store, serving on
    /// loopback, with `hosts` enrolled identities (each with its home): the console's
    /// log, its stop flag and thread, the pool, and the hosts.
    #[allow(clippy::type_complexity)]
    fn console_with_hosts(
        dir: &std::path::Path,
        size: usize,
        hosts: usize,
    ) -> (
        Arc<Mutex<Vec<String>>>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
        Arc<FleetPool>,
        Vec<(tempfile::TempDir, crate::host::Identity)>,
    ) {
        let store = dir.join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let at = FleetStoreAt::Sqlite(store.clone());
        let pool = FleetPool::with_limits(at.clone(), size, Duration::from_secs(30));
        let fleet = Fleet::new(
            store,
            HostCa::load_or_generate(dir, "console").expect("ca"),
            Cosigner::new("console/w", ed25519_dalek::SigningKey::from_bytes(&[5; 32])),
            Box::new(|_| {}),
        )
        .with_pool(pool.clone());
        let (console_at, fingerprint, stop, said, served) = serving(fleet);
        let identities = (0..hosts)
            .map(|i| {
                let (token, _) = issue_token(&at, Duration::from_secs(3600), None).expect("token");
                let home = tempfile::tempdir().expect("home");
                crate::host::enrol(
                    home.path(),
                    &format!("tls://{console_at}"),
                    &token,
                    &fingerprint,
                    &format!("ward-{i}"),
                )
                .expect("enrolled");
                let identity = crate::host::Identity::load(home.path())
                    .expect("identity")
                    .expect("enrolled");
                (home, identity)
            })
            .collect();
        (said, stop, served, pool, identities)
    }

    /// Reading workstations behind one address (a hospital NAT; loopback in
    /// `bench/fleet.sh`), each with its own host certificate, are never refused for
    /// their address: a report's connection counted against
    /// [`MAX_UNPROVEN_PER_ADDRESS`] until the console had looked its certificate up in
    /// the store, so while the store was slow (contended SQLite: seconds) the ninth
    /// host behind the address had its handshake reset, turn after turn (315 resets in
    /// 60 s in the bench; review s17-r14).
    #[test]
    fn enrolled_hosts_behind_one_address_are_not_refused_while_the_store_is_slow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosts = MAX_UNPROVEN_PER_ADDRESS + 4;
        let (said, stop, served, pool, identities) = console_with_hosts(dir.path(), 1, hosts);
        // The store is busy: every certificate lookup waits (up to FLEET_REQUEST_BUDGET).
        let busy = pool.get().expect("the only connection");
        let mut held = Vec::new();
        for (i, (_, identity)) in identities.iter().enumerate() {
            // A few tries over 5 s: a connection ended just now counts until its thread
            // sees the end, and the machine may be loaded; refused for the address, the
            // host is refused for as long as the store stays slow (20 s here).
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                match identity.connect() {
                    Ok(stream) => break held.push(stream),
                    Err(e) => assert!(
                        std::time::Instant::now() < deadline,
                        "host {i} of {hosts} behind 127.0.0.1 was refused: {e}; the console said {:?}",
                        said.lock().expect("said")
                    ),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Its certificate shown (the handshake done on the console's side too).
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !said
                .lock()
                .expect("said")
                .iter()
                .any(|l| l.contains("MAX_UNPROVEN_PER_ADDRESS")),
            "{:?}",
            said.lock().expect("said")
        );
        drop(held);
        drop(busy);
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
    }

    /// A host (or whoever holds its key) that opens connections and sends nothing, or
    /// trickles a frame, holds at most [`MAX_CONNECTIONS_PER_HOST`] of the console's
    /// [`MAX_CONNECTIONS`] threads: one host's certificate held all 64 (slowloris with
    /// a valid certificate), and every other host's report was dropped; refusals are
    /// said (review s17-r14).
    #[test]
    fn one_host_holding_connections_open_does_not_lock_the_others_out() {
        use pacsguard_audit::delivery::{Cursor, Transport as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let (said, stop, served, _pool, identities) = console_with_hosts(dir.path(), 4, 2);
        let (greedy, other) = (&identities[0].1, &identities[1].1);
        let mut held = Vec::new();
        for n in 0..MAX_CONNECTIONS + 8 {
            if let Ok(stream) = greedy.connect() {
                held.push(stream);
            }
            if n % 8 == 7 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let key = crate::witness::tests::signer("other-trail")
            .verifier()
            .encode();
        let mut report = crate::host::ConsoleTransport::new(other, key, 5, None, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while let Err(e) = report.confirm(Cursor::default()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the other host's report never got through: {e}; the console said {:?}",
                said.lock().expect("said")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !said
            .lock()
            .expect("said")
            .iter()
            .any(|l| l.contains("MAX_CONNECTIONS_PER_HOST"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "refusals for the host are said: {:?}",
                said.lock().expect("said")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(held);
        stop.store(true, Ordering::Relaxed);
        served.join().expect("served");
    }
}
