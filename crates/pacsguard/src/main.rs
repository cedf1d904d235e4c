//! `pacsguard`: parse flags, call the engine, print, map the outcome to an exit status.
//!
//! Exit status everywhere: 0 clean, 1 findings that need attention (warning or alert),
//! 2 error (bad input, bad signature, I/O failure). Scripts and SIEMs depend on these.

mod control;
mod fleet;
mod four_eyes;
mod gateway;
mod guard_panic;
mod maintenance;
mod outlet;
mod output;
mod passphrase;
mod progress;
mod serve;
mod signals;
mod trail_wake;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use pacsguard_engine::{
    AcceptRequest, CheckRequest, EngineError, Home, MediaRequest, ProfileRequest, RecoverRequest,
    ScanRequest, Session, ShowFilter, Vault, WatchRequest, default_home,
};
use pacsguard_profile::{HashAlgorithm, Policy};

#[derive(Parser, Debug)]
#[command(
    name = "pacsguard",
    version,
    about = "Defends medical imaging systems against malicious software"
)]
struct Cli {
    /// State directory (config, signing key, store, event log). Default: /var/lib/pacsguard
    /// for root, ~/.local/share/pacsguard otherwise.
    #[arg(long, global = true, env = "PACSGUARD_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Read the passphrase of a protected profile-signing key from the first line of FILE
    /// (commands that sign: profile, accept, recover --apply, profile export, media
    /// import, key protect; key passphrase reads the current one so). Without it, and without --passphrase-fd, it is asked on the
    /// terminal. Never given as a value on the command line.
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Read that passphrase from the first line of the open file descriptor N.
    #[arg(long, global = true, value_name = "N")]
    passphrase_fd: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Sign profiles from now on with a key of their own, sealed with a passphrase
    /// (Argon2id, ChaCha20-Poly1305): profile, accept, recover --apply, profile export and
    /// media import then need it; check, watch, scan and audit verify do not. The trail
    /// stays signed by signing.key, unattended. The stored profile and the kept
    /// generations are signed again by the new key.
    Protect {
        #[arg(long)]
        json: bool,
    },
    /// Change the passphrase that seals the profile-signing key: the key, and everything
    /// it signed, stay as they are. The current passphrase is read as any signing
    /// command reads it (the terminal, --passphrase-file, --passphrase-fd); the new one
    /// from --new-passphrase-file or --new-passphrase-fd, else asked twice on the terminal.
    Passphrase {
        /// Read the new passphrase from the first line of FILE (mode 600 or stricter).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Read the new passphrase from the first line of the open file descriptor N.
        #[arg(long, value_name = "N")]
        new_passphrase_fd: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileCommand {
    /// Write the signed profile to a new self-contained file (never overwrites): a
    /// release's or a test system's profile, for `diff`.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the signed generations kept in the home for `diff GEN GEN` (the newest 16).
    Generations {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the home: config template, Ed25519 signing key (0600), empty store and event log.
    Init {
        /// Protect the profile-signing key with a passphrase from the start (as `key
        /// protect` right after init).
        #[arg(long)]
        passphrase: bool,
        #[arg(long)]
        json: bool,
    },
    /// The profile-signing key: protect it with a passphrase.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Build or extend the signed profile of these trees (or of all configured roots).
    #[command(args_conflicts_with_subcommands = true)]
    Profile {
        #[command(subcommand)]
        action: Option<ProfileCommand>,
        paths: Vec<PathBuf>,
        /// Policy for these roots (default: the configuration's, else static).
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// Content hash (default: blake3; sha256 for FIPS settings).
        #[arg(long, value_enum)]
        hash: Option<HashArg>,
        /// Leave out paths matching this glob (relative to the root); repeatable.
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Descend into file systems mounted below the root.
        #[arg(long)]
        cross_mounts: bool,
        #[arg(long)]
        json: bool,
    },
    /// Verify trees against the signed profile (full re-hash unless --fast).
    Check {
        paths: Vec<PathBuf>,
        /// Re-hash only files whose size, mtime, ctime or inode changed.
        #[arg(long)]
        fast: bool,
        /// Verify against this profile export instead of the home's profile (needs --trust).
        #[arg(long, value_name = "FILE", requires = "trust")]
        against: Option<PathBuf>,
        /// The public key (a signing.pub file) the export must be signed by.
        #[arg(long, value_name = "KEY", requires = "against")]
        trust: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Guard trees in real time: profile them the first time, catch up on what changed
    /// since the last run, then verify every change as it happens, until SIGTERM or SIGINT.
    Watch {
        paths: Vec<PathBuf>,
        /// Policy for a first profile (default: the configuration's, else static).
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// One JSON object per finding, one per line, as it happens.
        #[arg(long)]
        json: bool,
    },
    /// Guard the roots in real time (as `watch`) and serve the console over HTTPS beside
    /// the guard, until SIGTERM or SIGINT. The first start prints a one-time link to
    /// create the first administrator.
    Serve {
        paths: Vec<PathBuf>,
        /// Policy for a first profile (default: the configuration's, else static).
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// ADDRESS:PORT to listen on (default: [console] listen, else 127.0.0.1:8443;
        /// port 0 picks a free one, printed at start).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The guard's findings as JSON lines, as `watch --json` prints them.
        #[arg(long)]
        json: bool,
        /// ADDRESS:PORT where hosts enrolled in this console report (mutual TLS; not
        /// the web console's port). Off without it.
        #[arg(long, value_name = "ADDR")]
        fleet_listen: Option<String>,
        /// A gateway configuration (as `gateway --config`): its listeners run in this
        /// process, recorded on the guard's trail.
        #[arg(long, value_name = "FILE")]
        gateway: Option<PathBuf>,
    },
    /// Run the DICOM gateway (an application firewall relaying associations to the
    /// routes' upstreams, C-STORE data sets screened in line) until SIGTERM or SIGINT.
    Gateway {
        /// The gateway's TOML file: listeners, allow-lists, routes, limits.
        #[arg(long, value_name = "FILE", required_unless_present = "hash_passcode")]
        config: Option<PathBuf>,
        /// Read a passcode (one line) from standard input and print its Argon2id hash
        /// for a route's `users`, then exit (nothing else is done).
        #[arg(long, conflicts_with_all = ["config", "rules", "hashlist", "json"])]
        hash_passcode: bool,
        /// A directory of `.yar`/`.yara` files, applied besides the built-in rules.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Known-bad SHA-256 values (as `scan --hashlist`).
        #[arg(long, value_name = "FILE")]
        hashlist: Option<PathBuf>,
        /// Every event as a JSON line, as it happens.
        #[arg(long)]
        json: bool,
    },
    /// Take reviewed differences into the profile, re-signed, with who and why recorded.
    Accept {
        paths: Vec<PathBuf>,
        /// Accept every difference in every profiled root.
        #[arg(long)]
        all: bool,
        /// Take the named profiled roots out of the profile (a root removed or unmounted
        /// for good), recorded with the reason. `accept` and `profile` refuse a profiled
        /// root that is gone, not a directory, or empty where the profile holds a tree.
        #[arg(long, conflicts_with = "all", requires = "paths")]
        remove_root: bool,
        /// Why these differences are legitimate (a change ticket, a patch name).
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Screen files for malicious content (DICOM preamble polyglots, hidden executables,
    /// YARA rules, known-bad hashes). Detect-only: nothing scanned is ever changed.
    Scan {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A directory of .yar/.yara rules, applied besides the built-in rules.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Known-bad SHA-256 values: one per line, or a CSV with a sha256_hash column.
        #[arg(long, value_name = "FILE")]
        hashlist: Option<PathBuf>,
        /// Copy every file with an alert into the home's quarantine vault (the original
        /// stays where it is, untouched).
        #[arg(long)]
        quarantine: bool,
        /// Read only the first 4 KiB of each file and classify its DICOM preamble: a fast
        /// sweep of a whole store for CVE-2019-11687 polyglots.
        #[arg(long, conflicts_with_all = ["rules", "hashlist", "quarantine"])]
        preamble_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a new copy of a DICOM file with its 128-byte preamble zeroed, and verify that
    /// every byte after it is identical. Never overwrites anything.
    Sanitize {
        input: PathBuf,
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// What changed between two profiles: `current` (the home's signed profile), a
    /// generation kept in the home (a number, see `profile generations`), or a file
    /// written by `profile export` (`./3` for a file named like a number). Added, removed, moved and changed entries (content,
    /// mode, owner, capabilities and other extended attributes), grouped by directory.
    Diff {
        /// `current`, a kept generation number, or an export file.
        a: String,
        /// `current`, a kept generation number, or an export file.
        b: String,
        #[arg(long)]
        json: bool,
    },
    /// Find the files the profile says are damaged or missing in backups (directory copies
    /// or tar archives, plain or gzip), by content digest; with --apply, put them back.
    /// Without --apply nothing is written.
    Recover {
        /// Roots or paths inside roots; default: every profiled root.
        paths: Vec<PathBuf>,
        /// A backup: a directory copy (cp -a, rsync -a) or a tar archive; repeatable.
        #[arg(long, value_name = "BACKUP", required = true, num_args = 1)]
        from: Vec<PathBuf>,
        /// Restore every recoverable file byte-identical with the profile's mode, owner
        /// and mtime (the one command that writes into a guarded tree).
        #[arg(long, conflicts_with = "readiness")]
        apply: bool,
        /// Measure the share of the profile the backups can restore (writes nothing).
        #[arg(long)]
        readiness: bool,
        #[arg(long)]
        json: bool,
    },
    /// The media gate: screen a patient CD/DVD/USB (a mounted directory or an ISO image
    /// file) with a DICOMDIR and copy only the clean instances it references.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// List, show or export the copies in the quarantine vault.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The profile store (pacsguard.db).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Verify, list or export the tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Announce a legitimate mass change (a migration): while a window is open, changes
    /// below its root are reported as info and never called ransomware.
    Maintenance {
        #[command(subcommand)]
        command: maintenance::MaintenanceCommand,
    },
    /// On a console: enrolment tokens for new hosts, the hosts, revocation.
    Console {
        #[command(subcommand)]
        command: fleet::ConsoleCommand,
    },
    /// Join this host to a console: its key pair is made here and stays here, the
    /// console issues its identity; `serve` then reports the trail to the console.
    Enroll {
        /// The console's fleet listener: tls://HOST:PORT (`serve --fleet-listen`).
        url: String,
        /// The one-time token from `pacsguard console enrol-token` on the console.
        #[arg(long)]
        token: String,
        /// SHA-256 fingerprint of the console's certificate, as its `serve` prints it.
        #[arg(long, value_name = "SHA256")]
        fingerprint: String,
        /// The name this host is known by on the console (default: its host name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum MediaCommand {
    /// Validate the DICOMDIR of SRC, screen every file on it, copy the referenced DICOM
    /// instances that are clean into DEST (named SOPInstanceUID.dcm, never over an
    /// existing file) and write a signed manifest. Nothing on the medium is written or run.
    Import {
        /// The medium: a mounted directory or an ISO 9660 image file (read, never mounted).
        source: PathBuf,
        /// The import folder (a PACS's watched folder): only complete files appear in it.
        dest: PathBuf,
        /// Where to write the signed manifest (a new file; default: HOME/media/).
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// A directory of .yar/.yara files applied besides the built-in rules.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Known-bad SHA-256 values (one per line, or a CSV with a sha256_hash column): a
        /// match is an alert, on the viewer too.
        #[arg(long, value_name = "FILE")]
        hashlist: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Verify a media manifest's signature (with the home's key, or --trust KEY) and show it.
    Verify {
        manifest: PathBuf,
        /// The public key (a signing.pub file) the manifest must be signed by.
        #[arg(long, value_name = "KEY")]
        trust: Option<PathBuf>,
        /// Also compare this import folder with the manifest: every copy present with
        /// its SHA-256, nothing changed, nothing the manifest does not list.
        #[arg(long, value_name = "DIR")]
        dest: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// Every quarantined copy: SHA-256, original path, when, why.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The records of one copy, by SHA-256 (8 or more leading digits).
    Show {
        sha256: String,
        #[arg(long)]
        json: bool,
    },
    /// Write one copy out to a new file (mode 0400) for analysis; its SHA-256 is checked
    /// first. Never overwrites anything.
    Export {
        sha256: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Start a new, empty store in a home whose store every command refuses (deleted,
    /// emptied, overwritten or altered while the trail remains) and no good copy can be
    /// put back: the refused store is moved aside as evidence, its digest on the record
    /// with the reason; every root must then be profiled (and approved) again. Refused
    /// for a store that verifies and over a trail that does not.
    Reinit {
        /// Why (a ticket, what was checked, why no backup could be put back).
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the trail offline: every record against every signed checkpoint (and the
    /// witness's); exit 2 naming where it was altered.
    Verify {
        /// Verify an exported copy in DIR instead of the home's trail.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Directory of the witness copy of the newest checkpoint (default: [audit] witness).
        #[arg(long, value_name = "DIR")]
        witness: Option<PathBuf>,
        /// The verifier key the trail must be signed with (as in trail.pub).
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List records, oldest first.
    Show {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-28T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records of this action (init, profile, check, accept, finding, audit, watch,
        /// login, logout, account, ...).
        #[arg(long)]
        action: Option<String>,
        /// Only records concerning a path containing this text.
        #[arg(long, value_name = "TEXT")]
        path: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send the trail to a syslog collector (RFC 5424, IHE ATNA messages), from where the
    /// last run stopped; a collector that is down delays delivery, never loses it.
    Forward {
        /// tls://HOST:PORT (RFC 5425), tcp://HOST:PORT (RFC 6587) or udp://HOST:PORT (RFC 5426);
        /// `console`: one delivery to the console this host is enrolled in.
        #[arg(long, value_name = "URL")]
        to: String,
        /// PEM file of the CA that signed the collector's certificate (tls://).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// PEM client certificate for mutual TLS (IHE ATNA); needs --key.
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// PEM private key of --cert.
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
        /// The destination's name: each has its own delivery cursor
        /// (HOME/delivery/NAME.cursor), so one collector that is down holds back no other.
        #[arg(long, value_name = "NAME", default_value = "syslog")]
        destination: String,
        /// The largest message sent whole, as `[forward] max_message_bytes` (2048 to
        /// 65000, default 8192): a record over it goes as a stand-in (sequence, size,
        /// digest; whole in the trail).
        #[arg(long, value_name = "BYTES", value_parser = parse_max_message_bytes)]
        max_message_bytes: Option<usize>,
    },
    /// Start a new trail in a home whose trail is gone (audit.log and checkpoints.jsonl
    /// deleted or emptied while the signing key remains: every other command refuses it
    /// with a `trail-reset` alert), after a person has checked why; the alert and the
    /// reason are the new trail's first records.
    Reinit {
        /// Why (a ticket, what was checked).
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Manage the witness copy of the newest checkpoint ([audit] witness).
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
    /// Copy the trail (records, checkpoints, verifier key) into a new directory.
    Export {
        /// jsonl: the trail's files, verifiable elsewhere; dicom-xml: one DICOM audit
        /// message (PS3.15 A.5) per record.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum WitnessCommand {
    /// Re-initialise a witness that is missing or behind the trail (every other command
    /// refuses it), after a person has checked why; the act is recorded with the reason.
    /// A witness ahead of the trail or forked from it is still refused.
    Init {
        /// Why (a ticket, what was checked).
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExportFormat {
    Jsonl,
    DicomXml,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PolicyArg {
    Static,
    AppendOnly,
    Growing,
    Volatile,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Static => Policy::Static,
            PolicyArg::AppendOnly => Policy::AppendOnly,
            PolicyArg::Growing => Policy::Growing,
            PolicyArg::Volatile => Policy::Volatile,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HashArg {
    Blake3,
    Sha256,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.command.wants_json();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Tampering found before anything ran: shown as the finding it is, and an
            // error (exit 2) like every other store/trail mismatch: the command did not run.
            if let Some(EngineError::Tampered(finding)) = e.downcast_ref::<EngineError>() {
                let _ = output::tampered(finding, json);
                outlet::end_of_process();
                return ExitCode::from(2);
            }
            let mut message = error_message(&e);
            // A store refused as altered or unreadable: every command refuses it until a
            // good copy is back, so the refusal says how (review r23-scale: a dead end).
            if let Some(store) = e
                .downcast_ref::<EngineError>()
                .and_then(EngineError::refused_store)
                .or_else(|| {
                    e.downcast_ref::<pacsguard_store::StoreError>()
                        .and_then(pacsguard_store::StoreError::refused_store)
                })
            {
                message = format!(
                    "{message}. Nothing was changed. {}",
                    pacsguard_engine::store_way_out(store)
                );
            }
            // Escaped: a path in an error message must not drive the terminal either.
            let message = pacsguard_events::escape_bytes(message.as_bytes());
            if outlet::saying() {
                // After what the command said through stderr's outlet, in order.
                outlet::say(format!("pacsguard: {message}"));
            } else {
                outlet::direct("pacsguard: ", &message);
            }
            // A command that printed through the outlet (`watch`, `serve`, `gateway`):
            // the error follows its last record there, and a stalled stdout does not
            // hold the exit (session 17: it was written straight to stdout, beside the
            // outlet's thread, and waited forever for a reader that had stopped).
            if json && !outlet::last_line(output::error_json_text(&message)) {
                let _ = output::error_json(&message);
            }
            ExitCode::from(2)
        }
    };
    outlet::end_of_process();
    code
}

/// The error and its causes, each said once: a cause whose words the message already
/// holds (an error that prints its source and also returns it) is not repeated.
fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

impl Command {
    /// Whether the caller asked for JSON: then an error is a JSON document too.
    fn wants_json(&self) -> bool {
        match self {
            Command::Init { json, .. }
            | Command::Key {
                command: KeyCommand::Protect { json } | KeyCommand::Passphrase { json, .. },
            }
            | Command::Profile {
                action: None, json, ..
            }
            | Command::Profile {
                action: Some(ProfileCommand::Export { json, .. }),
                ..
            }
            | Command::Profile {
                action: Some(ProfileCommand::Generations { json }),
                ..
            }
            | Command::Check { json, .. }
            | Command::Watch { json, .. }
            | Command::Serve { json, .. }
            | Command::Gateway { json, .. }
            | Command::Accept { json, .. }
            | Command::Scan { json, .. }
            | Command::Sanitize { json, .. }
            | Command::Diff { json, .. }
            | Command::Recover { json, .. } => *json,
            Command::Media { command } => match command {
                MediaCommand::Import { json, .. } | MediaCommand::Verify { json, .. } => *json,
            },
            Command::Quarantine { command } => match command {
                QuarantineCommand::List { json } | QuarantineCommand::Show { json, .. } => *json,
                QuarantineCommand::Export { .. } => false,
            },
            Command::Store {
                command: StoreCommand::Reinit { json, .. },
            } => *json,
            Command::Audit { command } => match command {
                AuditCommand::Verify { json, .. }
                | AuditCommand::Show { json, .. }
                | AuditCommand::Reinit { json, .. }
                | AuditCommand::Witness {
                    command: WitnessCommand::Init { json, .. },
                } => *json,
                AuditCommand::Forward { .. } | AuditCommand::Export { .. } => false,
            },
            Command::Maintenance { command } => command.wants_json(),
            Command::Console { command } => command.wants_json(),
            Command::Enroll { .. } => false,
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::new(cli.home.unwrap_or_else(default_home));
    let progress = progress::for_stderr();
    let secret = passphrase::Source {
        file: cli.passphrase_file,
        fd: cli.passphrase_fd,
    };
    match cli.command {
        Command::Maintenance { command } => maintenance::run(&home, command),
        Command::Init { passphrase, json } => {
            // The new passphrase is read before the home is made: a mistyped one leaves
            // no half-protected home behind.
            let new = passphrase.then(|| secret.read_new()).transpose()?;
            let report = home.init()?;
            // One document for `--json`: the protection is reported with the home.
            let protected = match new
                .map(|new| Session::open(home).and_then(|mut s| s.protect_profile_key(&new)))
            {
                Some(Err(e)) => {
                    // The home stands, unprotected: say so before the error.
                    output::init(&report, None, json)?;
                    return Err(e.into());
                }
                Some(Ok(protected)) => Some(protected),
                None => None,
            };
            output::init(&report, protected.as_ref(), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key {
            command: KeyCommand::Protect { json },
        } => {
            if home.is_profile_key_protected() {
                // Protected already, or a protection interrupted before everything was
                // signed again by the new key: finished with the passphrase it has.
                let report =
                    passphrase::open_signing(home, &secret)?.finish_interrupted_protect()?;
                output::protected(&report, json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let new = secret.read_new()?;
            let report = Session::open(home)?.protect_profile_key(&new)?;
            output::protected(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key {
            command:
                KeyCommand::Passphrase {
                    new_passphrase_file,
                    new_passphrase_fd,
                    json,
                },
        } => {
            let new = passphrase::Source {
                file: new_passphrase_file,
                fd: new_passphrase_fd,
            };
            match passphrase::change(home.clone(), &secret, &new)? {
                passphrase::Changed::Done(report) => {
                    output::passphrase_changed(&report, json)?;
                    Ok(ExitCode::SUCCESS)
                }
                passphrase::Changed::HeldByGuard {
                    locked,
                    current,
                    new,
                } => {
                    let command = control::Command::ChangePassphrase {
                        current: current.into(),
                        new: new.into(),
                    };
                    control::relay(&home, command, json).unwrap_or(Err(locked.into()))
                }
            }
        }
        Command::Profile {
            action: Some(ProfileCommand::Export { out, json }),
            ..
        } => {
            let report = passphrase::open_signing(home, &secret)?.profile_export(&out)?;
            output::export(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile {
            action: Some(ProfileCommand::Generations { json }),
            ..
        } => {
            let kept = Session::open(home)?.generations()?;
            output::generations(&kept, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b, json } => {
            let mut session = match Session::open(home.clone()) {
                // A guard holds the home: it runs the diff for us (the CLI keeps working
                // beside it; review s34).
                Err(e @ EngineError::Locked { .. }) => {
                    let command = control::Command::Diff { a, b };
                    return control::relay(&home, command, json).unwrap_or(Err(e.into()));
                }
                other => other?,
            };
            let report = session.diff(&control::profile_ref(&a), &control::profile_ref(&b))?;
            output::diff(&report, json)?;
            Ok(ExitCode::from(u8::from(report.differs())))
        }
        Command::Profile {
            action: None,
            paths,
            policy,
            hash,
            exclude,
            cross_mounts,
            json,
        } => {
            let request = ProfileRequest {
                paths,
                policy: policy.map(Policy::from),
                hash: hash.map(|h| match h {
                    HashArg::Blake3 => HashAlgorithm::Blake3,
                    HashArg::Sha256 => HashAlgorithm::Sha256,
                }),
                exclude,
                cross_mounts,
            };
            let report =
                passphrase::open_signing(home, &secret)?.profile(&request, progress.as_ref())?;
            output::profile(&report, json)?;
            Ok(output::status(&report.counts))
        }
        Command::Check {
            paths,
            fast,
            against,
            trust,
            json,
        } => {
            let mut session = match Session::open(home.clone()) {
                // A guard holds the home: it runs the check for us. A check against an
                // export is not relayed (the guard compares with its own profile).
                Err(e @ EngineError::Locked { .. }) if against.is_none() => {
                    let command = control::Command::Check { paths, fast };
                    return control::relay(&home, command, json).unwrap_or(Err(e.into()));
                }
                other => other?,
            };
            let request = CheckRequest { paths, fast };
            // The console approves this home's own profile, not a profile exported elsewhere.
            let own_profile = against.is_none();
            let checked = match (against, trust) {
                (Some(export), Some(trust)) => {
                    session.check_against(&request, &export, &trust, progress.as_ref())
                }
                _ => session.check(&request, progress.as_ref()),
            };
            let mut report = match checked {
                // Found but not recorded (a full home disk): shown, then the failure.
                // One JSON document: the findings and the error together.
                Err(EngineError::Unrecorded { findings, source }) => {
                    // Only the witness copy failed: the findings are on the trail, and the
                    // message must not claim otherwise.
                    let recorded = source.recorded();
                    let error = anyhow::Error::new(*source).context(if recorded {
                        "the findings above are recorded"
                    } else {
                        "the findings above could not be recorded on the audit trail"
                    });
                    let message = pacsguard_events::escape_bytes(error_message(&error).as_bytes());
                    output::unrecorded("check", &findings, &message, recorded, json)?;
                    eprintln!("pacsguard: {message}");
                    return Ok(ExitCode::from(2));
                }
                other => other?,
            };
            if own_profile {
                fleet::check_approval(&home, &mut report)?;
            }
            output::check(&report, json)?;
            Ok(output::status(&report.counts))
        }
        Command::Watch {
            paths,
            policy,
            json,
        } => {
            let signals::Stops { stop, hurry } = signals::stop_or_hurry_on_termination()?;
            let mut session = Session::open(home.clone())?;
            // An enrolled host guarded by `watch` reports its trail to the console as
            // `serve` does (below) and is judged by it as one guarded by `serve`.
            fleet::hold_heartbeat_for_the_console(&home, &mut session, |text| {
                crate::outlet::direct("pacsguard watch: ", text)
            })?;
            // A stop whose last records did not reach the console, on the trail now.
            let actor = session.actor().clone();
            fleet::record_undelivered_stop(
                &home,
                &actor,
                "watch",
                &mut fleet::written_by(&mut session),
            );
            let _control = control::Server::start(&home, session.requests(), None)?;
            // The console of an enrolled host and the syslog collector of `[forward]`,
            // delivered to as the guard writes.
            let forward_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let forwarding = fleet::forward_while_watching(
                &home,
                fleet::guard_forward_target(
                    &pacsguard_engine::Config::load(&home.config_path())?.forward,
                    |text| crate::outlet::direct("pacsguard watch: ", text),
                )?,
                fleet::TrailNote {
                    inbox: session.inbox(),
                    actor: session.actor().clone(),
                    home: home.clone(),
                },
                &forward_stop,
            )?;
            let hurry_after_guard = std::sync::Arc::clone(&hurry);
            let outlet = outlet::Outlet::start(
                "watch",
                outlet::to_inbox(
                    session.inbox(),
                    session.actor().clone(),
                    pacsguard_events::Action::Watch,
                ),
            );
            let mut out = guard_panic::Hooked::new(
                output::WatchLines::new(json, std::sync::Arc::clone(&outlet)),
                guard_panic::test_hook("watch"),
            );
            let request = WatchRequest {
                paths,
                policy: policy.map(Policy::from),
                hurry,
            };
            let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                session.watch(&request, &mut out, &stop)
            }));
            // The forwarder's stop, on every way out: what the guard wrote last goes to
            // the collector (within STOP_DELIVERY_DEADLINE) or is said as left behind.
            let stop_forwarding = |forwarding: fleet::Running| {
                forward_stop.store(true, std::sync::atomic::Ordering::Relaxed);
                forwarding.deliver_last(&home, &hurry_after_guard);
            };
            let report = match watched {
                Ok(Ok(report)) => report,
                Ok(Err(e)) => {
                    // What stdout still held is said (stderr: the watcher's error ends it).
                    outlet::said_on_stderr(&outlet, "watch");
                    stop_forwarding(forwarding);
                    return Err(e.into());
                }
                // Caught as `serve` catches it: said, recorded, held records written, exit 2.
                Err(panic) => {
                    outlet::said_on_stderr(&outlet, "watch");
                    let error = guard_panic::after_panic(
                        &mut session,
                        &out.panic_text(panic.as_ref()),
                        &guard_panic::Stopping {
                            command: "watch",
                            what_stops: "the watcher stops (exit 2); what it held is still recorded",
                            tell: &|_| {},
                            // The forwarder beside it is stopped below, once the records
                            // the panic leaves are written: nothing to wait for here.
                            stopped: &std::sync::atomic::AtomicBool::new(true),
                        },
                    );
                    stop_forwarding(forwarding);
                    return Err(error);
                }
            };
            let said = outlet::said_at_stop(
                &mut session,
                &outlet,
                "watch",
                pacsguard_events::Action::Watch,
            );
            // The guard's last records (its 'stopped', the final checkpoint) to the
            // collector, within STOP_DELIVERY_DEADLINE, and the stop's note, before an
            // error of the outlet ends `watch`: they are owed either way.
            stop_forwarding(forwarding);
            said?;
            output::watch_stopped(&report);
            Ok(output::status(&report.counts))
        }
        Command::Serve {
            paths,
            policy,
            listen,
            json,
            fleet_listen,
            gateway,
        } => serve::run(
            home,
            paths,
            policy.map(Policy::from),
            listen,
            json,
            fleet_listen,
            gateway,
        ),
        Command::Console { command } => fleet::console(&home, command),
        Command::Enroll {
            url,
            token,
            fingerprint,
            name,
        } => fleet::enroll(&home, &url, &token, &fingerprint, name),
        Command::Gateway {
            config,
            hash_passcode,
            rules,
            hashlist,
            json,
        } => match config {
            Some(config) if !hash_passcode => gateway::run(home, config, rules, hashlist, json),
            _ => gateway::hash_passcode(),
        },
        Command::Accept {
            paths,
            all: _,
            remove_root: true,
            reason,
            json,
        } => {
            // Not relayed to a running guard: its view would still hold the root.
            let mut session = passphrase::open_signing(home, &secret)?;
            let report = session.remove_roots(&paths, &reason)?;
            output::accept(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Accept {
            paths,
            all,
            remove_root: false,
            reason,
            json,
        } => {
            let mut session = match passphrase::open_signing_or_relay(&home, &secret)? {
                Err((e, passphrase)) => {
                    let command = control::Command::Accept {
                        paths,
                        all,
                        reason,
                        passphrase: passphrase.map(control::WirePassphrase::from),
                    };
                    return control::relay(&home, command, json).unwrap_or(Err(e.into()));
                }
                Ok(session) => session,
            };
            let report = session.accept(
                &AcceptRequest {
                    paths,
                    all,
                    reason,
                    expected: None,
                    passphrase: None,
                    shown: None,
                },
                progress.as_ref(),
            )?;
            output::accept(&report, json)?;
            // Entries kept unverified below a directory that could not be listed: the
            // acceptance is signed, but it did not cover everything asked.
            if report.kept_unlisted.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        Command::Scan {
            paths,
            rules,
            hashlist,
            quarantine,
            preamble_only,
            json,
        } => {
            let mut session = match Session::open(home.clone()) {
                Err(e @ EngineError::Locked { .. }) => {
                    let command = control::Command::Scan {
                        paths,
                        rules,
                        hashlist,
                        quarantine,
                        preamble_only,
                    };
                    return control::relay(&home, command, json).unwrap_or(Err(e.into()));
                }
                other => other?,
            };
            let request = ScanRequest {
                paths,
                rules,
                hashlist,
                quarantine,
                preamble_only,
            };
            let report = session.scan(&request, progress.as_ref())?;
            output::scan(&report, json)?;
            Ok(output::status(&report.counts))
        }
        Command::Sanitize {
            input,
            output: out,
            json,
        } => {
            let report = Session::open(home)?.sanitize(&input, &out)?;
            output::sanitize(&report, json)?;
            Ok(output::status(&report.counts))
        }
        Command::Recover {
            paths,
            from,
            apply,
            readiness,
            json,
        } => {
            let request = RecoverRequest { from, paths, apply };
            let mut session = if apply && !readiness {
                passphrase::open_signing(home, &secret)?
            } else {
                Session::open(home)?
            };
            if readiness {
                let report = session.recover_readiness(&request, progress.as_ref())?;
                output::readiness(&report, json)?;
                return Ok(ExitCode::from(u8::from(!report.complete())));
            }
            let report = session.recover(&request, progress.as_ref())?;
            output::recover(&report, json)?;
            Ok(ExitCode::from(u8::from(report.needs_attention())))
        }
        Command::Media { command } => media(home, command, &secret),
        Command::Quarantine { command } => quarantine(&home, command),
        Command::Audit { command } => audit(&home, command),
        Command::Store {
            command: StoreCommand::Reinit { reason, json },
        } => {
            // Unlocked before the home is opened: a wrong passphrase changes nothing.
            let key = if home.is_profile_key_protected() {
                Some(home.unlock_profile_key(&secret.read(&home)?)?)
            } else {
                None
            };
            let report = Session::store_reinit(home, &reason, key)?;
            output::store_reinit(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn media(home: Home, command: MediaCommand, secret: &passphrase::Source) -> Result<ExitCode> {
    match command {
        MediaCommand::Import {
            source,
            dest,
            manifest,
            rules,
            hashlist,
            json,
        } => {
            let request = MediaRequest {
                source,
                destination: dest,
                manifest,
                rules,
                hashlist,
            };
            let report = passphrase::open_signing(home, secret)?.media_import(&request)?;
            output::media_import(&report, json)?;
            Ok(ExitCode::from(u8::from(report.needs_attention())))
        }
        MediaCommand::Verify {
            manifest,
            trust,
            dest,
            json,
        } => {
            let key = pacsguard_engine::read_trusted_key(
                &trust.unwrap_or_else(|| home.profile_trust_path()),
            )?;
            let verified = pacsguard_engine::verify_manifest(&manifest, &key)?;
            let compared = dest
                .map(|dest| pacsguard_engine::verify_destination(&verified, &manifest, &dest))
                .transpose()?;
            output::media_verify(&verified, compared.as_ref(), json)?;
            // A genuine manifest of an import that stopped on an error is not a clean
            // import: a script that trusts exit 0 must not take it for one.
            let incomplete = verified
                .body
                .get("incomplete")
                .is_some_and(|e| !e.is_null());
            let differs = compared.as_ref().is_some_and(|c| c.needs_attention());
            Ok(ExitCode::from(u8::from(incomplete || differs)))
        }
    }
}

fn quarantine(home: &Home, command: QuarantineCommand) -> Result<ExitCode> {
    let vault = Vault::new(home.quarantine_dir());
    match command {
        QuarantineCommand::List { json } => output::quarantine_list(&vault.list()?, json)?,
        QuarantineCommand::Show { sha256, json } => {
            let (records, content) = vault.find(&sha256)?;
            output::quarantine_show(&records, &content, json)?;
        }
        QuarantineCommand::Export { sha256, out } => {
            let written = Session::open(home.clone())?.quarantine_export(&sha256, &out)?;
            output::quarantine_export(&written, &out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(home: &Home, command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            dir,
            witness,
            key,
            json,
        } => {
            let mut report = pacsguard_engine::audit_verify(
                home,
                dir.as_deref(),
                witness.as_deref(),
                key.as_deref(),
            )?;
            if dir.is_none() {
                fleet::check_cosignatures(home, &mut report)?;
            }
            output::audit_verify(&report, json)?;
            Ok(if !report.report.is_intact() {
                ExitCode::from(2)
            } else if report.report.unsigned_records > 0
                || report.report.torn_checkpoint.is_some()
                || !report.warnings.is_empty()
            {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        AuditCommand::Show {
            dir,
            since,
            action,
            path,
            json,
        } => {
            let since = since
                .map(|t| {
                    humantime::parse_rfc3339_weak(&t)
                        .map_err(|e| anyhow::anyhow!("--since {t:?}: {e}"))
                })
                .transpose()?;
            let filter = ShowFilter {
                since,
                action,
                path,
            };
            let records = pacsguard_engine::audit_show(home, dir.as_deref(), &filter)?;
            output::audit_show(&records, json)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Forward {
            to,
            ca,
            cert,
            key,
            destination,
            max_message_bytes,
        } => {
            if to == "console" {
                let sent = fleet::forward_once(home)?;
                output::audit_forward(sent, &to)?;
                return Ok(ExitCode::SUCCESS);
            }
            let target = pacsguard_audit::syslog::Target::parse(&to, ca, cert.zip(key))
                .map_err(|e| anyhow::anyhow!("--to {e}"))?;
            // The flag, else `[forward] max_message_bytes`, else its default: the
            // collector the config describes is the one this sends to.
            let max_message = match max_message_bytes {
                Some(bytes) => bytes,
                None => pacsguard_engine::Config::load(&home.config_path())?
                    .forward
                    .max_message_bytes()
                    .map_err(|e| anyhow::anyhow!(e))?,
            };
            let hold = fleet::large_batch_hold(|text| eprintln!("pacsguard: {text}"));
            let report =
                pacsguard_engine::audit_forward(home, &target, &destination, max_message, hold)?;
            output::audit_forward(report.sent, &to)?;
            if let Some(stood_in) = &report.stood_in {
                eprintln!("pacsguard: warning: {stood_in}");
            }
            // A deadline passed (a stalling collector): a warning, nothing lost.
            if let Some(warning) = report.warning {
                eprintln!(
                    "pacsguard: warning: {}",
                    pacsguard_events::escape_bytes(warning.as_bytes())
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Reinit { reason, json } => {
            let report = Session::trail_reinit(home.clone(), &reason)?;
            output::trail_reinit(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Witness {
            command: WitnessCommand::Init { reason, json },
        } => {
            let report = Session::witness_init(home.clone(), &reason)?;
            output::witness_init(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { format, out } => {
            let format = match format {
                ExportFormat::Jsonl => pacsguard_engine::ExportFormat::Jsonl,
                ExportFormat::DicomXml => pacsguard_engine::ExportFormat::DicomXml,
            };
            let written = pacsguard_engine::audit_export(home, &out, format)?;
            output::audit_export(&written, format == pacsguard_engine::ExportFormat::Jsonl)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--max-message-bytes`: refused out of RFC 5425's range, naming the option (exit 2).
fn parse_max_message_bytes(text: &str) -> Result<usize, String> {
    let bytes = text
        .parse::<usize>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    pacsguard_audit::syslog::check_max_message_bytes(bytes)
}
