//! Many hosts, one console: the CLI of enrolment and the fleet's part of `serve`.
//!
//! On the console: `pacsguard console enrol-token` makes a one-time token (run as the
//! console home's owner, root: the person who can read the console's keys anyway, so
//! no web step-up is needed and it can be scripted), `console hosts` lists the hosts,
//! `console revoke-host NAME` revokes one; `serve --fleet-listen ADDR` listens for hosts.
//! On a host: `pacsguard enroll URL --token T --fingerprint SHA256` joins, and the host's
//! `serve` then delivers its trail to the console beside guarding.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use clap::Subcommand;
use pacsguard_audit::delivery::{Abandon, Delivery, DeliveryError, Transport};
use pacsguard_audit::syslog::{Backoff, SyslogDestination, Target};
use pacsguard_engine::{Home, notes};
use pacsguard_fleet::approval::ProfileClaim;
use pacsguard_fleet::host::{self, CONSOLE_DESTINATION, ConsoleTransport, Identity};

use crate::trail_wake::{TrailWake, Woken};

/// How long a host's `serve` lets pass without a report to the console: with nothing
/// signed meanwhile it sends a heartbeat; after a failed report, the wait before the
/// next try. Records themselves go as soon as a checkpoint signs them.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);
/// The interval a host promises the console: a few reports may fail (a console
/// restarting) before the console calls it silent.
pub const PROMISED_INTERVAL: Duration = Duration::from_secs(15);

/// The longest wait between two tries at a console that keeps failing (down, or
/// refusing). A console counts a host silent once it has not heard from it for the
/// host's promised interval (and a grace) since its own start, so retries further apart
/// than [`PROMISED_INTERVAL`] made a console back from a long outage raise its hosts
/// silent before they tried again (session 34, `MAX_RETRY_BACKOFF` reverted). Half the
/// interval leaves the other half for the report that follows to get through (a TLS
/// handshake on a loaded host); a console down for long is still tried less often than
/// every [`REPORT_INTERVAL`].
pub const CONSOLE_RETRY_BACKOFF: Duration = Duration::from_secs(PROMISED_INTERVAL.as_secs() / 2);

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Make a one-time token for `pacsguard enroll` on a new host (printed once, stored
    /// hashed).
    EnrolToken {
        /// How long the token is valid (e.g. 15m, 2h; at most 7 days).
        #[arg(long, value_name = "DURATION", default_value = "15m")]
        expires: humantime::Duration,
        /// The token enrols a host under this revoked host's NAME only, and that host
        /// continues the revoked one's trail (records, checkpoints, approvals): for the
        /// same machine enrolled again. A plain token never carries a trail over.
        #[arg(long = "continue", value_name = "NAME")]
        continues: Option<String>,
    },
    /// List the enrolled hosts: state, last contact, trail witnessed up to where.
    Hosts {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a host: its next request (and every later connection) is refused.
    RevokeHost {
        name: String,
        /// Why (a copy of its enrolment found, the machine retired): with a running
        /// `serve`, on the revocation's record beside who revoked it.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Acknowledge a host's standing refusal (a fork, a duplicated identity) once it was
    /// investigated: recorded on the console's trail with who and why; the state stays,
    /// shown acknowledged, and a refusal of another kind, or at another point, is raised
    /// again. Needs this console's `serve` running.
    AcknowledgeHost {
        name: String,
        /// The digest of the refusal you investigated, as `console hosts` prints it: if
        /// the host was refused anew since, nothing is acknowledged (exit 2).
        #[arg(long, value_name = "D")]
        digest: String,
        /// What the investigation found (a restore from backup, a clone destroyed).
        #[arg(long)]
        reason: String,
    },
}

impl ConsoleCommand {
    pub fn wants_json(&self) -> bool {
        matches!(self, ConsoleCommand::Hosts { json: true })
    }
}

pub fn console(home: &Home, command: ConsoleCommand) -> Result<ExitCode> {
    use pacsguard_console::host_revocations::{revoked_by, revoked_reason, revoked_summary};
    home.check_permissions()?;
    let store = fleet_store(home)?;
    match command {
        ConsoleCommand::EnrolToken { expires, continues } => {
            let (token, until) =
                pacsguard_fleet::console::issue_token(&store, expires.into(), continues.as_deref())
                    .map_err(|e| anyhow!(e))?;
            if let Some(name) = &continues {
                eprintln!(
                    "pacsguard: this token enrols a host named {name:?} only (--name {name}), and that host continues the trail of the revoked {name:?}"
                );
            }
            println!("{token}");
            eprintln!(
                "pacsguard: one-time enrolment token, valid until {} (UTC): on the new host run\n  pacsguard enroll tls://CONSOLE:PORT --token {token} --fingerprint <the console's fleet identity SHA-256, as serve prints it>",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(until).unwrap_or(0))
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        ConsoleCommand::Hosts { json } => {
            let mut db = store.open()?;
            let hosts = db.hosts()?;
            let current = db.current_profiles()?;
            let profile_of = |h: &pacsguard_store::HostRow| current.iter().find(|p| p.host == h.id);
            if json {
                for h in &hosts {
                    let profile = profile_of(h).map(|p| {
                        serde_json::json!({
                            "generation": p.generation, "digest": p.digest,
                            "approved": p.in_effect(),
                            "approved_by": p.approved.as_ref().map(|a| &a.0),
                            "superseded_by": p.superseded,
                        })
                    });
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": h.name, "state": h.state, "detail": h.shown_detail(),
                            "refused_again": h.again.count,
                            "revoked": h.revoked.is_some(), "revoked_at": h.revoked,
                            "revoked_by": h.revoked.map(|_| revoked_by(h)),
                            "revoked_reason": h.revoked.map(|_| revoked_reason(h)),
                            "acknowledged": acknowledgement(h).map(|a| serde_json::json!({
                                "by": a.by, "reason": a.reason, "at": a.at,
                            })),
                            "refusal_digest": refusal_digest(h),
                            "last_contact": h.last_contact,
                            "interval": h.interval, "records": h.size,
                            "witnessed": witnessed(h), "profile": profile,
                        })
                    );
                }
                // The counts too, on stderr as without --json: stdout stays one host a
                // line (review rv46-fleet: --json gave no count).
                let unapproved = hosts
                    .iter()
                    .filter(|h| h.revoked.is_none())
                    .filter_map(profile_of)
                    .filter(|p| !p.in_effect())
                    .count();
                let counts = host_counts(home, &mut *db, &hosts, unapproved);
                eprintln!("{}", serde_json::json!({ "counts": counts.to_json() }));
            } else {
                for h in &hosts {
                    let profile = match profile_of(h) {
                        None => "profile not reported".to_string(),
                        Some(p) if p.in_effect() => {
                            format!("profile generation {} approved", p.generation)
                        }
                        Some(p) if p.approved.is_some() => format!(
                            "profile generation {} UNAPPROVED (went back from generation {})",
                            p.generation,
                            p.superseded.unwrap_or_default()
                        ),
                        Some(p) => format!("profile generation {} UNAPPROVED", p.generation),
                    };
                    // The refusal's digest, for `console acknowledge-host --digest`.
                    let refusal = refusal_digest(h)
                        .map_or_else(String::new, |d| format!(", refusal digest {d}"));
                    // Every field escaped: a host's words and names reach this terminal
                    // (review rv38-console: escapes cleared it and printed "ok").
                    let line = format!(
                        "{}\t{}\tlast contact {}\t{profile}\t{} records, witnessed up to {}{}",
                        h.name,
                        if h.revoked.is_some() {
                            revoked_summary(h)
                        } else if let Some(a) = acknowledgement(h) {
                            format!(
                                "{} (acknowledged by {} at {}, reason: {}{refusal})",
                                h.state, a.by, a.at, a.reason
                            )
                        } else if refusal.is_empty() {
                            h.state.clone()
                        } else {
                            format!("{} ({})", h.state, &refusal[2..])
                        },
                        h.last_contact,
                        h.size,
                        witnessed(h),
                        if h.detail.is_empty() {
                            String::new()
                        } else {
                            format!("\t{}", h.shown_detail())
                        }
                    );
                    let shown: Vec<String> = line
                        .split('\t')
                        .map(|field| pacsguard_events::escape_bytes(field.as_bytes()))
                        .collect();
                    println!("{}", shown.join("\t"));
                }
                // On stderr: stdout stays one line per host for scripts.
                let unapproved = hosts
                    .iter()
                    .filter(|h| h.revoked.is_none())
                    .filter_map(profile_of)
                    .filter(|p| !p.in_effect())
                    .count();
                eprintln!(
                    "pacsguard: {}",
                    host_counts(home, &mut *db, &hosts, unapproved)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConsoleCommand::AcknowledgeHost {
            name,
            digest,
            reason,
        } => {
            pacsguard_console::host_acknowledgements::check_reason(&reason)
                .map_err(|e| anyhow!("--reason: {e}"))?;
            let command = crate::control::Command::AcknowledgeHost {
                name: name.clone(),
                digest,
                reason,
            };
            // Only `serve` records it on the console's trail: a store row alone would be
            // raised as written in the database.
            crate::control::relay_if_served(home, command).unwrap_or_else(|| {
                Err(anyhow!(
                    "console acknowledge-host {name}: this console's serve is not running (or the guard running is a watch): an acknowledgement is recorded on the console's audit trail, which only serve writes; start serve and run it again"
                ))
            })
        }
        ConsoleCommand::RevokeHost { name, reason } => {
            if let Some(reason) = &reason {
                pacsguard_console::host_revocations::check_reason(reason)
                    .map_err(|e| anyhow!("--reason: {e}"))?;
            }
            // A running `serve` revokes it and records it on its console's trail at
            // once; without one, the store alone (the next `serve` records it).
            let command = crate::control::Command::RevokeHost {
                name: name.clone(),
                reason: reason.clone(),
            };
            if let Some(relayed) = crate::control::relay_if_served(home, command) {
                return relayed;
            }
            // No serve: the fleet's store keeps who and why beside the revocation, and the
            // next serve's record of it names them as the store's word (review r28-fleet).
            let by =
                pacsguard_console::host_revocations::by_whom(&pacsguard_engine::current_actor());
            let revoker = pacsguard_store::Revoker {
                by: &by,
                reason: reason.as_deref(),
            };
            let mut db = store.open()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            match db.revoke_host(&name, now, &revoker)? {
                0 => Err(anyhow!(
                    "no enrolled host named {name:?} that is not revoked already"
                )),
                n => {
                    eprintln!(
                        "pacsguard: revoked {n} host(s) named {name:?} in the fleet's store, by {by}{}; no serve runs for this console: the next one records it on its trail",
                        reason
                            .as_deref()
                            .map_or_else(String::new, |r| format!(", for the reason {r:?}"))
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

/// The acknowledgement the fleet's store keeps for `host`'s standing refusal as it is
/// now (`None`: none, or one of a refusal before). The store's word: `serve` raises one
/// its console's trail does not record (`host-acknowledgement-unproven`).
fn acknowledgement(host: &pacsguard_store::HostRow) -> Option<&pacsguard_store::Acknowledgement> {
    let ack = host.acknowledged.as_ref()?;
    let standing = pacsguard_fleet::acknowledge::standing(&host.state, &host.detail)?;
    (host.revoked.is_none() && ack.digest == standing.digest()).then_some(ack)
}

/// The digest of `host`'s standing refusal, if it is in one and not revoked: what
/// `console acknowledge-host --digest` names.
fn refusal_digest(host: &pacsguard_store::HostRow) -> Option<String> {
    if host.revoked.is_some() {
        return None;
    }
    pacsguard_fleet::acknowledge::standing(&host.state, &host.detail).map(|s| s.digest())
}

/// `console acknowledge-host NAME --digest D` run by `serve` (issue 14): the console's
/// one path of an acknowledgement, the Hosts page's too
/// (`pacsguard_console::host_acknowledging`): the refusal of digest `digest` the person
/// saw, if it still stands, recorded acknowledged on the console's trail first, then in
/// the fleet's store only while the host is still in it.
pub fn acknowledge_and_record(
    console: &pacsguard_console::auth::Console,
    name: &str,
    digest: &str,
    actor: &pacsguard_events::Actor,
    reason: &str,
) -> Result<String, String> {
    // Four eyes is the console's, as for acceptances (`control::four_eyes_refusal`):
    // asked of the CLI too, or one person acknowledged alone what the Hosts page asks two
    // administrators for (review of session 32).
    if console
        .needs_second_host_approver()
        .map_err(|e| e.to_string())?
    {
        return Err(format!(
            "four eyes for host decisions is in force on this console: acknowledging the standing refusal of host {name:?} needs two administrators; ask for it on the console's Hosts page, where a second administrator confirms it. Nothing was acknowledged"
        ));
    }
    let said = console
        .acknowledge_host(name, digest, actor, reason)
        .map_err(|e| e.to_string())?;
    say(&format!(
        "{} acknowledged the standing refusal of host {name:?} (console acknowledge-host)",
        actor.user
    ));
    Ok(format!("{said}\n"))
}

/// `console revoke-host NAME` run by `serve` (review r26): the hosts of that name
/// revoked in the fleet's store, then each recorded on the console's own trail, so the
/// revocation holds whatever the store says from the moment the command returns. A
/// failure to record is said; the store refuses the host meanwhile, and the listener's
/// next silence check records it.
pub fn revoke_and_record(
    pool: &Arc<pacsguard_store::FleetPool>,
    console: &pacsguard_console::auth::Console,
    name: &str,
    actor: &pacsguard_events::Actor,
    reason: Option<&str>,
) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    // Named on the record as the one who revoked, even when the listener's silence
    // check finds the store's row before this records it.
    let _revoking = console
        .revoking_as(name, actor, reason)
        .map_err(|e| e.to_string())?;
    let mut db = pool.get().map_err(|e| e.to_string())?;
    let by = pacsguard_console::host_revocations::by_whom(actor);
    let revoker = pacsguard_store::Revoker { by: &by, reason };
    let revoked = db
        .revoke_host(name, now, &revoker)
        .map_err(|e| e.to_string())?;
    if revoked == 0 {
        return Err(format!(
            "no enrolled host named {name:?} that is not revoked already"
        ));
    }
    let hosts = db.hosts().map_err(|e| e.to_string())?;
    drop(db);
    let mut unrecorded = Vec::new();
    for host in hosts
        .iter()
        .filter(|h| h.name == name && h.revoked == Some(now))
    {
        if let Err(e) = console.record_host_revoked(host, now) {
            unrecorded.push(e.to_string());
        }
    }
    say(&format!(
        "{} revoked {revoked} host(s) named {name:?} (console revoke-host)",
        actor.user
    ));
    if unrecorded.is_empty() {
        Ok(format!(
            "revoked {revoked} host(s) named {name:?}, and recorded by this console for its audit trail: refused from now on, whatever the fleet's store says; the alerts this console raised about the revoked enrolment are closed (an enrolment again under the name is another host, its alerts its own)\n"
        ))
    } else {
        Err(format!(
            "revoked {revoked} host(s) named {name:?} in the fleet's store (refused from now on), but not recorded on this console's audit trail yet: {}; serve records it at its next silence check",
            unrecorded.join("; ")
        ))
    }
}

/// Where this console keeps its fleet's tables: `[console] fleet_store` of the home's
/// configuration (PostgreSQL), else the home's store.
pub fn fleet_store(home: &Home) -> Result<pacsguard_store::FleetStoreAt> {
    let config = pacsguard_engine::Config::load(&home.config_path())?;
    pacsguard_store::FleetStoreAt::from_config(
        home.store_path(),
        config.console.fleet_store.as_deref(),
    )
    .map_err(|e| anyhow!("{}: {e}", home.config_path().display()))
}

/// The connections of this console to its fleet's store, tried once now: a store that
/// refuses for good (a wrong password, no such user or database: see
/// [`pacsguard_store::StoreError::is_permanent`]) is an error naming `[console]
/// fleet_store` (`serve` exits 2 before it starts anything); one that cannot be reached
/// now (down, restarting, stuck) is said, and `serve` starts: hosts' reports are
/// refused until it answers, and the console tries it again, backing off.
pub fn fleet_pool(home: &Home) -> Result<Arc<pacsguard_store::FleetPool>> {
    let store = fleet_store(home)?;
    let pool = pacsguard_store::FleetPool::new(store);
    if matches!(pool.at(), pacsguard_store::FleetStoreAt::Postgres(_)) {
        // Opened outside the pool: a pool connection never moves a version before's
        // records (the pool's move task does, when a request finds it pending), and
        // the console's start is where the move is run and a move failing for good
        // stops `serve`, by name.
        match pool.at().open() {
            Ok(_) => {}
            Err(e) if e.is_permanent() => {
                return Err(anyhow!(
                    "{e} ({}: fix [console] fleet_store, or the server's account and database)",
                    home.config_path().display()
                ));
            }
            Err(e) => say(&format!(
                "{e}; serving anyway: hosts' reports are refused until the store answers"
            )),
        }
    }
    Ok(pool)
}

/// The size of the last checkpoint the console cosigned for `host`.
fn witnessed(host: &pacsguard_store::HostRow) -> u64 {
    host.checkpoint
        .as_deref()
        .and_then(|n| n.lines().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn enroll(
    home: &Home,
    url: &str,
    token: &str,
    fingerprint: &str,
    name: Option<String>,
) -> Result<ExitCode> {
    home.check_permissions()?;
    if !home.is_initialized() {
        return Err(anyhow!(
            "{}: not a PacsGuard home (pacsguard init first)",
            home.dir.display()
        ));
    }
    let name = name.unwrap_or_else(pacsguard_engine::hostname);
    let enrolled = host::enrol(&home.dir, url, token, fingerprint, &name)?;
    println!(
        "enrolled as {} with console {}; identity in {} (the key never left this host). `pacsguard serve` now reports to the console.",
        enrolled.console.name,
        enrolled.console.address,
        enrolled.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `audit verify` on an enrolled host: the trail checked against the console's
/// cosignatures kept beside it (see [`host::check_cosignatures`]), and whether they
/// cover it at all (review rv44-fleet case3: a home wiped beside its kept `fleet/` and
/// made anew verified intact, not a word of the console). No cosignature of this trail
/// is a warning (a host enrolled a moment ago has none yet); cosignatures of another
/// trail of this host and none of this one is an alert, unless this trail begins with
/// `audit reinit` (a new trail on the record, which the console raises as started
/// anew): a warning then. A `fleet/` holding no enrolment is a warning too.
pub fn check_cosignatures(
    home: &Home,
    report: &mut pacsguard_engine::AuditVerifyReport,
) -> Result<()> {
    let Some(identity) = Identity::load(&home.dir)? else {
        if let Some(missing) = host::enrolment_missing(&home.dir)? {
            report.warnings.push(format!(
                "{missing}; whether this trail is covered by a console's cosignatures cannot be told here"
            ));
        }
        return Ok(());
    };
    let trail_key = std::fs::read_to_string(home.trail_key_path())
        .with_context(|| home.trail_key_path().display().to_string())?;
    let origin = trail_key.trim().split('+').next().unwrap_or("").to_string();
    let cosigned = host::check_cosignatures(&identity, &home.audit_log_path(), &origin)?;
    for (position, what) in cosigned.problems {
        report
            .report
            .problems
            .push(pacsguard_audit::Problem { position, what });
    }
    if cosigned.of_this_trail > 0 {
        return Ok(());
    }
    let kept = identity.cosignatures_path();
    let console = &identity.console.address;
    let none = format!(
        "no cosignature from the console ({console}) for this trail (origin {origin}) in {}: the console has witnessed none of it, so nothing off this host proves it",
        kept.display()
    );
    let others: Vec<String> = cosigned
        .other_trails
        .iter()
        .map(|(o, size)| format!("{o} up to {size} records"))
        .collect();
    if others.is_empty() {
        report.warnings.push(format!(
            "{none}; a host enrolled a moment ago has none until its guard (serve, watch) reports"
        ));
        return Ok(());
    }
    let others = others.join(", ");
    if begins_with_reinit(&home.audit_log_path()) {
        report.warnings.push(format!(
            "{none}. The console cosigned another trail of this host ({others}); this one begins with `audit reinit` (on its record), and the console raises it as started anew until it is acknowledged there"
        ));
    } else {
        report.report.problems.push(pacsguard_audit::Problem {
            position: kept.display().to_string(),
            what: format!(
                "the console cosigned another trail of this host ({others}) and none of this one (origin {origin}), which does not begin with `audit reinit`: the trail the console witnessed was replaced (the home deleted and made anew?); ask the console ({console}) for this host's witnessed trail"
            ),
        });
    }
    Ok(())
}

/// Most records read from the start of the trail for its `audit reinit` record: it
/// writes them first.
const REINIT_RECORDS_LOOKED_AT: usize = 8;

/// Whether the trail at `log` begins with the records of `audit reinit`.
fn begins_with_reinit(log: &Path) -> bool {
    use std::io::{BufRead as _, Read as _};
    // Read only, a bounded prefix: what `audit verify` already verified whole.
    let Ok(file) = std::fs::File::open(log) else {
        return false;
    };
    let limit = REINIT_RECORDS_LOOKED_AT as u64 * pacsguard_audit::MAX_RECORD_BYTES as u64;
    std::io::BufReader::new(file.take(limit))
        .split(b'\n')
        .take(REINIT_RECORDS_LOOKED_AT)
        .map_while(Result::ok)
        .any(|line: Vec<u8>| {
            serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(String::from))
                .is_some_and(|d| d.starts_with(pacsguard_audit::TRAIL_REINIT_WORDS))
        })
}

/// The host's current signed profile generation as a report names it: its generation
/// and the digest of its signature, from the store's signature row once it verifies
/// with the home's profile key over the stored tree (the leaf rows of a store signed
/// v3; `check` verifies every chunk). `None` without a store or a profile, while a
/// `profile` rewrites the store (the next report names it), or for a store that does
/// not verify: a row edited in the file (another generation, the signature of an
/// approved generation put back) is never named to the console as the host's profile
/// (review r25-store), and the host's own commands refuse that store by name.
pub fn profile_claim(home: &Home) -> Option<ProfileClaim> {
    let path = home.store_path();
    if std::fs::symlink_metadata(&path).is_err() {
        return None;
    }
    // Read only: a journal beside the store is for the guard's opening to judge.
    let store = pacsguard_store::Store::open_read_only(&path).ok()??;
    let public = home.profile_public_key(&home.load_key().ok()?).ok()?;
    let head = store.verified_head(&public).ok()??;
    Some(ProfileClaim {
        generation: head.generation,
        created: head.created,
        digest: pacsguard_fleet::approval::profile_digest(&head.public_key, &head.signature),
    })
}

/// `check` on an enrolled host: whether the profile it verified carries a valid
/// approval of the console (verified with the witness key recorded at enrolment). Not
/// approved: a `host-profile-unapproved` warning added to the report; approved: said on
/// stderr. A host that never enrolled has no console to approve: nothing.
pub fn check_approval(home: &Home, report: &mut pacsguard_engine::CheckReport) -> Result<()> {
    let Some(identity) = Identity::load(&home.dir)? else {
        return Ok(());
    };
    let Some(claim) = profile_claim(home).filter(|c| c.generation == report.generation) else {
        return Ok(());
    };
    let warn = |report: &mut pacsguard_engine::CheckReport, detail: String| {
        report.findings.push(pacsguard_events::Finding::new(
            home.store_path(),
            pacsguard_events::FindingKind::HostProfileUnapproved,
            pacsguard_events::Severity::Warning,
            detail,
        ));
        report.counts = pacsguard_events::SeverityCounts::of(&report.findings);
    };
    match identity.approval_of(&claim)? {
        // The approval kept here verifies, but root can put back an old store with the
        // approvals file of that old, once approved generation: only the console knows
        // whether it is still its current approval for this host (review s18-r13).
        Some(at) => match identity.confirm_approval(&claim) {
            Ok((true, _)) => eprintln!(
                "pacsguard: profile generation {} is approved by the console {} (approval signed at {}; confirmed by the console as its current approval for this host)",
                claim.generation,
                identity.console.address,
                humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(at))
            ),
            Ok((false, why)) => warn(
                report,
                format!(
                    "profile generation {} carries an approval of the console {}, but the console says it is not its current approval for this host ({why}): its store or approvals were restored on this host; it counts as unapproved",
                    claim.generation, identity.console.address
                ),
            ),
            Err(e) => warn(
                report,
                format!(
                    "profile generation {} carries an approval of the console {}, but it could not be confirmed with the console ({e}; each step bounded by {} s, CONFIRM_TIMEOUT, the whole by {} s): it may have been superseded or revoked there; run check again when the console answers",
                    claim.generation,
                    identity.console.address,
                    pacsguard_fleet::host::CONFIRM_TIMEOUT.as_secs(),
                    (pacsguard_fleet::host::CONFIRM_TIMEOUT * pacsguard_fleet::host::CONFIRM_STEPS)
                        .as_secs()
                ),
            ),
        },
        None => {
            let finding = pacsguard_events::Finding::new(
                home.store_path(),
                pacsguard_events::FindingKind::HostProfileUnapproved,
                pacsguard_events::Severity::Warning,
                format!(
                    "profile generation {} carries no approval of the console {} this host enrolled with: it was made on this host and counts as unapproved until an approver accepts it on the console's Hosts page",
                    claim.generation, identity.console.address
                ),
            );
            report.findings.push(finding);
            report.counts = pacsguard_events::SeverityCounts::of(&report.findings);
        }
    }
    Ok(())
}

/// How long a clean stop of `serve` on an enrolled host waits, once its guard wrote its
/// last records ('stopped' and the final checkpoint that signs them), for the console to
/// take them. Without this delivery a copy of the home made right after the stop held
/// records the console never saw, and the console could not tell it from the host by
/// what it held (review r27-fleet). Bounded, so a console that is down or holds the
/// connection never holds up a stop; past it the stop says so on stderr and the next
/// start records it on the trail.
pub const STOP_DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// The note a stop leaves in the enrolment's directory when its last records did not
/// reach the console, for the next start to put on the trail.
const STOP_UNDELIVERED_NOTE: &str = "stop-undelivered.txt";

/// What `serve` started for the fleet: the listener for hosts, stopped with the
/// console, and the reporters (to the console, to the syslog collector of `[forward]`),
/// which deliver the guard's last records once the guard has stopped
/// ([`Running::deliver_last`]).
#[derive(Default)]
pub struct Running {
    listener: Option<std::thread::JoinHandle<()>>,
    reporters: Vec<Reporter>,
}

/// A report thread and what it waits on at a stop.
struct Reporter {
    thread: std::thread::JoinHandle<Result<(), String>>,
    /// Set once the guard has written its last records and their checkpoint.
    guard_stopped: Arc<AtomicBool>,
    /// How its destination is named at the stop ("the console").
    whom: String,
    /// Its cursor's name in the home.
    cursor: String,
    /// Whether a stop that did not reach it is noted for the next start's trail (the
    /// console's, which must tell a copy of the home from the host).
    noted: bool,
    /// Says a line on stderr as the command that runs it (`serve`, `watch`).
    tell: Tell,
    /// Ends its cursor's moves once the stop no longer waits for it.
    abandon: Abandon,
}

/// How a reporter says a line on stderr: as `serve` ([`say`]) or `watch`.
type Tell = fn(&str);

impl Running {
    /// The listener for hosts ended (it stops with `serve`'s server), while the guard
    /// still writes the alerts it raised to the trail.
    pub fn join_listener(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }

    /// Once the guard has stopped: its last records delivered to every destination
    /// within [`STOP_DELIVERY_DEADLINE`] (one wait for all of them), or until `hurry` (a
    /// second stop signal, whenever it comes: its promise is a stop without waiting,
    /// review r31-watch). Not delivered (the destination down, refusing, slower than the
    /// deadline, or the wait cut short): said on stderr, and for the console left in a
    /// note that the next start records on the trail ([`record_undelivered_stop`]);
    /// nothing is lost, each cursor stays where its destination last confirmed.
    pub fn deliver_last(mut self, home: &Home, hurry: &AtomicBool) {
        self.join_listener();
        for reporter in &self.reporters {
            reporter.guard_stopped.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + STOP_DELIVERY_DEADLINE;
        while self.reporters.iter().any(|r| !r.thread.is_finished())
            && Instant::now() < deadline
            && !hurry.load(Ordering::Relaxed)
        {
            std::thread::sleep(STOP_CHECK);
        }
        for reporter in self.reporters {
            reporter.not_delivered(home, hurry);
        }
    }
}

impl Reporter {
    /// Says (and for the console notes) why its last records were not confirmed
    /// delivered, if they were not: they may have reached the other side unanswered, so
    /// the words claim only what the guard knows.
    fn not_delivered(self, home: &Home, hurry: &AtomicBool) {
        if !self.thread.is_finished() {
            // Whatever it confirms from now on leaves its cursor where it is, so the
            // records said below to go at the next start are the ones that will.
            self.abandon.abandon();
        }
        let why = if self.thread.is_finished() {
            match self.thread.join() {
                Ok(Ok(())) => return,
                Ok(Err(why)) => why,
                Err(_) => "the report thread panicked".to_string(),
            }
        } else if hurry.load(Ordering::Relaxed) {
            // Left running, as below.
            format!("a second stop signal cut the wait for {} short", self.whom)
        } else {
            // Left running, its cursor abandoned: the process ends with it. What it
            // sent unconfirmed is sent again from the cursor at the next start; the
            // console takes a batch it already holds as the same records, a collector
            // has each record's seq.
            format!(
                "no answer within {} s (STOP_DELIVERY_DEADLINE)",
                STOP_DELIVERY_DEADLINE.as_secs()
            )
        };
        let text = format!(
            "the stop's last records ({}) were not confirmed delivered to {}: {why}; they go again at the next start",
            undelivered_range(home, &self.cursor),
            self.whom
        );
        (self.tell)(&text);
        if self.noted
            && let Err(e) = leave_stop_note(home, &text)
        {
            (self.tell)(&format!(
                "and the note for the next start's trail was not written: {e}"
            ));
        }
    }
}

/// The records a stop left undelivered, as "records A to B" from the cursor named
/// `cursor` to the newest checkpoint.
fn undelivered_range(home: &Home, cursor: &str) -> String {
    let checkpoint = host::newest_checkpoint(&home.checkpoints_path()).unwrap_or(None);
    let position =
        Delivery::of(&home.dir, home.audit_log_path(), cursor).and_then(|d| d.read_cursor());
    match (position, checkpoint) {
        (Ok(position), Some((size, _))) if size > position.seq => {
            format!("records {} to {}", position.seq, size - 1)
        }
        _ => format!("the records after the cursor {cursor}"),
    }
}

fn stop_note_path(home: &Home) -> PathBuf {
    home.dir.join(host::FLEET_DIR).join(STOP_UNDELIVERED_NOTE)
}

/// The note of an undelivered stop, written whole (a new file renamed over the old
/// name). A note an earlier stop left and no start has recorded yet (its record could
/// not be written) is kept after the new one, not replaced: the next start records
/// both, the newest first, cut at `MAX_STOP_NOTE_BYTES` and said so.
fn leave_stop_note(home: &Home, text: &str) -> std::io::Result<()> {
    notes::leave(&stop_note_path(home), "the stop", text)
}

/// At a guard's start (`serve`, `watch`) on an enrolled host: a note left by a stop
/// whose last records did not reach the console, recorded on the trail (an `audit`
/// failure) and then removed; said on stderr too, as `command`. A note that cannot be
/// recorded stays for the next start.
pub fn record_undelivered_stop(
    home: &Home,
    actor: &pacsguard_events::Actor,
    command: &str,
    push: &mut dyn FnMut(pacsguard_events::Event) -> Result<(), String>,
) {
    record_note(
        &stop_note_path(home),
        "console delivery: ",
        pacsguard_events::Outcome::Failure,
        (actor, command),
        push,
    );
    // The delivery records the last stop could not put on its trail (the stand-ins of
    // its last batch, to any destination).
    record_note(
        &notes::delivery_note_path(home),
        "delivery records noted for the trail: ",
        pacsguard_events::Outcome::Success,
        (actor, command),
        push,
    );
}

/// The note at `path` recorded on the trail ([`notes::record`]), said as the guard
/// that records it (`watch` or `serve`), not always as `serve`, its bytes escaped (a
/// note is a file of the home: review rv38-console saw escapes reach the terminal).
fn record_note(
    path: &Path,
    prefix: &str,
    outcome: pacsguard_events::Outcome,
    (actor, command): (&pacsguard_events::Actor, &str),
    push: &mut dyn FnMut(pacsguard_events::Event) -> Result<(), String>,
) {
    let said_as = format!("pacsguard {command}: ");
    let say = |text: &str| {
        crate::outlet::direct(&said_as, &pacsguard_events::escape_bytes(text.as_bytes()));
    };
    match notes::record(path, prefix, (outcome, actor), push) {
        Ok(Some(text)) | Err(text) => say(&text),
        Ok(None) => {}
    }
}

/// How a guard's start records a note: on the trail and signed before the note is
/// removed (review rv38-console: pushed to the guard's inbox, the note was removed
/// before the guard wrote it, and a kill in between lost it).
pub fn written_by(
    session: &mut pacsguard_engine::Session,
) -> impl FnMut(pacsguard_events::Event) -> Result<(), String> + '_ {
    move |event| {
        session
            .record_events(vec![event])
            .and_then(|()| session.sign())
            .map_err(|e| e.to_string())
    }
}

fn say(text: &str) {
    crate::outlet::direct("pacsguard serve: ", text);
}

/// Where `serve` listens for hosts (`--fleet-listen`) and how it judges their silence.
#[derive(Clone, Debug)]
pub struct HostListener {
    /// `ADDRESS:PORT`.
    pub address: String,
    /// The certificate and key it presents (see [`fleet_certificate`]).
    pub identity: (PathBuf, PathBuf),
    /// How long after its enrolment a host's first verified report is due
    /// (`[console] first_report_within_seconds`).
    pub first_report_within: std::time::Duration,
    /// The console's pages (issue 14, session 45): each host's own alerts and warnings,
    /// and the console's alerts about a host, are listed on its alerts page.
    pub guard: Arc<pacsguard_console::GuardState>,
    /// How many records of the console's trail its start's verification proved from the
    /// first: only the acknowledgements among them are read back.
    pub trail_proven: Option<u64>,
    /// The console (its trail's bindings): the alerts about enrolments it records
    /// revoked are closed, at start and as they are raised (session 50).
    pub console: Arc<pacsguard_console::auth::Console>,
}

/// The fleet's part of `serve`: the listener for hosts (with `--fleet-listen`) and, on
/// an enrolled host, the delivery of its trail to its console; beside them the delivery
/// to the syslog collector of `[forward]` (`forward`, a collector and its destination's
/// name), through the same loop ([`report`]) with a cursor of its own.
#[allow(clippy::too_many_arguments)]
pub fn start(
    home: &Home,
    fleet_listen: Option<HostListener>,
    pool: Arc<pacsguard_store::FleetPool>,
    inbox: pacsguard_events::Inbox,
    trail: pacsguard_fleet::console::ConsoleTrail,
    forward: Option<Forward>,
    actor: pacsguard_events::Actor,
    stop: Arc<AtomicBool>,
) -> Result<Running> {
    let mut running = Running::default();
    // Where a long outage of a destination is recorded: the console's and the
    // collector's alike (one loop, one rule).
    let note = TrailNote {
        inbox: inbox.clone(),
        actor,
        home: home.clone(),
    };
    if let Some(listen) = fleet_listen {
        running.listener = Some(listen_for_hosts(
            home,
            &listen,
            pool,
            inbox,
            trail,
            stop.clone(),
        )?);
    }
    if let Some(identity) = Identity::load(&home.dir)? {
        running.reporters.push(console_reporter(
            home,
            identity,
            note.clone(),
            (&stop, say),
        )?);
    }
    if let Some(forward) = forward {
        running
            .reporters
            .push(syslog_reporter(home, forward, note, (&stop, say))?);
    }
    Ok(running)
}

/// The syslog collector of `[forward]` for a guard (`watch`, `serve`): a TLS file that
/// cannot be read is said on stderr (`tell`) and the collector kept: the guard goes on,
/// its deliveries fail and say so, and a destination failing longer than
/// `FAILING_RECORDED_AFTER` is recorded on the trail; the file may be readable later (a
/// mount up after boot). A `[forward]` that names no valid collector is refused (exit 2).
pub fn guard_forward_target(
    forward: &pacsguard_engine::ForwardConfig,
    tell: Tell,
) -> Result<Option<Forward>> {
    let max_message = forward.max_message_bytes().map_err(|e| anyhow!(e))?;
    let target = match forward.checked_target() {
        Ok(target) => target,
        Err(unreadable) => {
            let target = forward.target().map_err(|e| anyhow!(e))?;
            tell(&format!(
                "warning: {unreadable}: the trail is not forwarded until it can be read; guarding goes on"
            ));
            target
        }
    };
    Ok(target.map(|(target, destination)| Forward {
        target,
        destination,
        max_message,
    }))
}

/// The syslog collector of `[forward]` a guard delivers to.
#[derive(Debug)]
pub struct Forward {
    target: Target,
    /// The name of its cursor.
    destination: String,
    /// `[forward] max_message_bytes`.
    max_message: usize,
}

/// `watch`'s part of delivery: the console of an enrolled host and the syslog collector
/// of `[forward]` while it guards, through the loop and reporters of `serve`. `stop` is
/// set once the guard stopped, then [`Running::deliver_last`] delivers its last records.
pub fn forward_while_watching(
    home: &Home,
    forward: Option<Forward>,
    note: TrailNote,
    stop: &Arc<AtomicBool>,
) -> Result<Running> {
    let mut running = Running::default();
    let tell: Tell = |text| crate::outlet::direct("pacsguard watch: ", text);
    // An enrolled host guarded by `watch` reports to its console as under `serve`
    // (`audit forward --to console` needs the home's lock, which the guard holds).
    if let Some(identity) = Identity::load(&home.dir)? {
        running.reporters.push(console_reporter(
            home,
            identity,
            note.clone(),
            (stop, tell),
        )?);
    }
    if let Some(forward) = forward {
        running
            .reporters
            .push(syslog_reporter(home, forward, note, (stop, tell))?);
    }
    Ok(running)
}

/// The report thread of the console this host is enrolled in (`identity`), for `serve`
/// and `watch` alike.
fn console_reporter(
    home: &Home,
    identity: Identity,
    note: TrailNote,
    (stop, tell): (&Arc<AtomicBool>, Tell),
) -> Result<Reporter> {
    tell(&format!(
        "reporting to the console at {} as {}",
        identity.console.address, identity.console.name
    ));
    let home = home.clone();
    spawn_reporter(
        CONSOLE_DESTINATION,
        "the console",
        true,
        (stop, tell),
        move |stop, guard_stopped, abandon| {
            let mut to = ToConsole {
                identity: &identity,
                transport: None,
                backoff: Backoff::default(),
            };
            let flags = (stop, guard_stopped, abandon);
            report(&home, &mut to, flags, Some(&note), tell)
        },
    )
}

/// The report thread of the syslog collector `target`, whose cursor is `destination`'s.
fn syslog_reporter(
    home: &Home,
    forward: Forward,
    note: TrailNote,
    (stop, tell): (&Arc<AtomicBool>, Tell),
) -> Result<Reporter> {
    // Under the home's lock (the guard's session holds it): the legacy cursor becomes
    // the `syslog` destination's before anything reads it, as `audit forward` does.
    pacsguard_audit::delivery::migrate_legacy_cursor(&home.dir)?;
    let to = ToSyslog(SyslogDestination::new(
        forward.target,
        pacsguard_engine::trail_origin(home)?,
        forward.destination,
        forward.max_message,
        large_batch_hold(tell),
    ));
    tell(&format!("forwarding the trail to {}", to.whom()));
    let (whom, cursor) = (to.whom(), to.cursor_name());
    let home = home.clone();
    spawn_reporter(
        &cursor,
        &whom,
        false,
        (stop, tell),
        move |stop, guard_stopped, abandon| {
            let mut to = to;
            let flags = (stop, guard_stopped, abandon);
            report(&home, &mut to, flags, Some(&note), tell)
        },
    )
}

/// Starts a report thread: `run` delivers until the stop (its first flag) and then
/// what the guard wrote last (once its second flag is set).
fn spawn_reporter(
    cursor: &str,
    whom: &str,
    noted: bool,
    (stop, tell): (&Arc<AtomicBool>, Tell),
    run: impl FnOnce(&AtomicBool, &AtomicBool, Abandon) -> Result<(), String> + Send + 'static,
) -> Result<Reporter> {
    let stop = stop.clone();
    let guard_stopped = Arc::new(AtomicBool::new(false));
    let last = guard_stopped.clone();
    let abandon = Abandon::default();
    let its_own = abandon.clone();
    Ok(Reporter {
        thread: std::thread::Builder::new()
            .name(format!("report-{cursor}"))
            .spawn(move || run(&stop, &last, its_own))
            .context("starting a report thread")?,
        guard_stopped,
        whom: whom.to_string(),
        cursor: cursor.to_string(),
        noted,
        tell,
        abandon,
    })
}

/// Where the console's fleet listener tells each batch of a host's records it stored:
/// the alerts and warnings among them are listed on the console's alerts page, the host
/// named (issue 14, session 45: a host's own alert reached the store and no page).
fn host_records_to_pages(
    guard: Arc<pacsguard_console::GuardState>,
) -> pacsguard_fleet::console::HostRecords {
    Arc::new(move |host, records| {
        for (seq, line) in records {
            if let Some(found) = host_finding_of_record(*seq, line) {
                guard.host_finding(&host.name, &found);
            }
        }
    })
}

/// The alert or warning of the record `seq` of a host's trail, named by its place
/// (what the console's start rebuilds it from, [`restore_host_findings`]).
fn host_finding_of_record(seq: u64, line: &[u8]) -> Option<pacsguard_console::guard::HostFinding> {
    let mut found = pacsguard_console::guard::HostFinding::from_record(line)?;
    found.source = format!("record {seq}");
    Some(found)
}

/// The console's own alert about a host as the pages list it, from its record on the
/// console's trail (`record`: the event as written): the same whether it was just raised
/// or read back at start, so one acknowledged stays closed across restarts.
fn console_host_finding(record: &[u8]) -> Option<(String, pacsguard_console::guard::HostFinding)> {
    let mut found = pacsguard_console::guard::HostFinding::from_record(record)?;
    let host = found
        .path
        .strip_prefix(pacsguard_fleet::console::HOST_PATH_PREFIX)?
        .to_string();
    found.source = "console".into();
    // The enrolment it is about, as the console wrote it (its own trail): what closes it
    // (review rv46-fleet: a name is held again after a revocation).
    found.identity = pacsguard_fleet::console::enrolment_named(&host, &found.detail);
    Some((host, found))
}

/// What `console hosts` counts ([`pacsguard_console::host_counts::HostCounts`]), with
/// the hosts whose kept pin is another certificate than the fleet identity
/// (`HOME/console/cert.pem`, read, never made here): cut off whatever their state says
/// (review rv46-fleet: the counts did not show `host-pinned-other`).
fn host_counts(
    home: &Home,
    db: &mut dyn pacsguard_store::FleetStore,
    hosts: &[pacsguard_store::HostRow],
    unapproved: usize,
) -> pacsguard_console::host_counts::HostCounts {
    let pinned_other = pacsguard_console::tls::fleet_identity_exists(&home.dir)
        .then(|| pacsguard_console::tls::fleet_identity(&home.dir, Vec::new()).ok())
        .flatten()
        .and_then(|identity| {
            let pins = db.host_pins().ok()?;
            Some(
                pacsguard_fleet::console::compare_pins(hosts, &pins, &identity.fingerprint)
                    .elsewhere
                    .len(),
            )
        });
    pacsguard_console::host_counts::HostCounts::of(
        hosts
            .iter()
            .map(|h| (h.revoked.is_some(), h.state.as_str(), h.last_contact)),
        unapproved,
    )
    .with_pinned_other(pinned_other)
}

/// The most records of each host's trail the console reads at its start to list again
/// its open alerts and warnings (its newest; issue 14, session 45: they lived in memory
/// only, and an open `ransomware-suspected` vanished at a restart). Older ones stay in
/// the store, not listed again; reaching it is said at start.
pub const MAX_HOST_RECORDS_READ_AT_START: u64 = 100_000;
/// Records of a host's trail read from the store at once while doing so (memory).
const HOST_RECORDS_READ_CHUNK: u64 = 4_096;
/// The most records of the console's own trail read at its start (its newest) for its
/// alerts about hosts and the acknowledgements of hosts' findings; reaching it is said
/// (an acknowledgement older than that is not read: what it closed may be listed again).
pub const MAX_CONSOLE_RECORDS_READ_AT_START: usize = 100_000;

/// What [`restore_host_findings`] listed again.
#[derive(Debug, Default, PartialEq, Eq)]
struct Restored {
    /// Hosts' own alerts and warnings listed again.
    reported: usize,
    /// The console's own alerts about hosts listed again.
    raised: usize,
    /// Left closed: acknowledged on the console's trail.
    acknowledged: usize,
    /// Hosts whose trail holds more than [`MAX_HOST_RECORDS_READ_AT_START`] records.
    hosts_cut: Vec<String>,
    /// The console's trail holds more than [`MAX_CONSOLE_RECORDS_READ_AT_START`] records.
    trail_cut: bool,
}

/// Says at start what [`restore_host_findings`] listed again, and where it stopped.
fn say_restored(restored: &Restored) {
    say(&format!(
        "hosts' open alerts and warnings listed again from the store: {} reported by hosts, {} raised by this console ({} acknowledged stay closed)",
        restored.reported, restored.raised, restored.acknowledged
    ));
    if !restored.hosts_cut.is_empty() {
        say(&format!(
            "only the newest {MAX_HOST_RECORDS_READ_AT_START} records of each host's trail were read for its open alerts (MAX_HOST_RECORDS_READ_AT_START): older alerts of {} are in the store, not listed again",
            restored.hosts_cut.join(", ")
        ));
    }
    if restored.trail_cut {
        say(&format!(
            "only the newest {MAX_CONSOLE_RECORDS_READ_AT_START} records of the console's trail were read for its alerts about hosts and their acknowledgements (MAX_CONSOLE_RECORDS_READ_AT_START): older ones are on the trail, and a host's alert acknowledged before them may be listed again"
        ));
    }
}

/// Lists again, at the console's start, each host's open alerts and warnings from what
/// is stored: the records of its trail in the fleet's store, the console's own alerts
/// about it on its trail, less those an operator acknowledged (the acknowledgements on
/// the console's trail, only among the `proven` first records its start verified: a line
/// added to the trail must not close a host's alert). Bounded by
/// [`MAX_HOST_RECORDS_READ_AT_START`] per host and [`MAX_CONSOLE_RECORDS_READ_AT_START`],
/// and on the pages by `MAX_OPEN_FINDINGS` per host as any finding. Called before the
/// listener takes a report: what is stored after is listed as it comes, never twice.
fn restore_host_findings(
    home: &Home,
    store: &mut dyn pacsguard_store::FleetStore,
    guard: &pacsguard_console::GuardState,
    proven: Option<u64>,
) -> Result<Restored> {
    let mut restored = Restored::default();
    let mut acknowledged = std::collections::HashSet::new();
    let mut raised = Vec::new();
    let mut before = None;
    let mut read = 0usize;
    loop {
        let page =
            pacsguard_engine::audit_page(home, before, pacsguard_engine::MAX_TRAIL_PAGE_RECORDS)?;
        for record in &page.records {
            read += 1;
            if read > MAX_CONSOLE_RECORDS_READ_AT_START {
                restored.trail_cut = true;
                break;
            }
            let seq = record.get("seq").and_then(serde_json::Value::as_u64);
            if let Some(key) = pacsguard_console::guard::acknowledged_host_finding(record) {
                if seq.zip(proven).is_some_and(|(seq, proven)| seq < proven) {
                    acknowledged.insert(key);
                }
                continue;
            }
            if record.get("finding").is_some() {
                let line = serde_json::to_vec(record).unwrap_or_default();
                if let Some(found) = console_host_finding(&line) {
                    raised.push(found);
                }
            }
        }
        match page.older {
            Some(older) if !restored.trail_cut => before = Some(older),
            _ => break,
        }
    }
    let mut list = |host: &str, found: &pacsguard_console::guard::HostFinding| {
        if acknowledged.contains(&found.key(host)) {
            restored.acknowledged += 1;
            false
        } else {
            guard.host_finding(host, found);
            true
        }
    };
    let hosts = store
        .hosts()
        .map_err(|e| anyhow!("reading the hosts: {e}"))?;
    for host in &hosts {
        let from = host.size.saturating_sub(MAX_HOST_RECORDS_READ_AT_START);
        if from > 0 {
            restored.hosts_cut.push(host.name.clone());
        }
        let mut at = from;
        while at < host.size {
            let to = at.saturating_add(HOST_RECORDS_READ_CHUNK).min(host.size);
            let records = store
                .host_records_between(host.id, at, to)
                .map_err(|e| anyhow!("reading the records of host {}: {e}", host.name))?;
            for (seq, line) in &records {
                if let Some(found) = host_finding_of_record(*seq, line) {
                    restored.reported += usize::from(list(&host.name, &found));
                }
            }
            at = to;
        }
    }
    // The newest was read first: listed oldest first, as they were raised.
    for (host, found) in raised.iter().rev() {
        restored.raised += usize::from(list(host, found));
    }
    Ok(restored)
}

fn listen_for_hosts(
    home: &Home,
    listen: &HostListener,
    pool: Arc<pacsguard_store::FleetPool>,
    inbox: pacsguard_events::Inbox,
    trail: pacsguard_fleet::console::ConsoleTrail,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    use rustls::pki_types::pem::PemObject as _;
    let (cert, key) = listen.identity.clone();
    let console_dir = home.dir.join("console");
    let name = pacsguard_engine::hostname();
    let ca = pacsguard_fleet::ca::HostCa::load_or_generate(&console_dir, &name)?;
    let cosigner = pacsguard_fleet::cosign::Cosigner::load_or_generate(
        &console_dir.join("witness.key"),
        &format!("{name}/pacsguard-console"),
    )?;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("{}: {e}", cert.display()))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| anyhow!("{}: {e}", key.display()))?;
    let pages = listen.guard.clone();
    let console = listen.console.clone();
    let pins_inbox = inbox.clone();
    let pins_pool = pool.clone();
    let alert: pacsguard_fleet::console::Alert = Box::new(move |finding| {
        let actor = pacsguard_events::Actor {
            user: "console".into(),
            uid: nix::unistd::geteuid().as_raw(),
            sudo_user: None,
        };
        let event = pacsguard_events::Event::of_finding(actor, finding.clone());
        // On the alerts page too, not only on the trail (issue 14, session 45): a new
        // key, a fork, a silence is what the officer on call must see. Read from its
        // record as the trail keeps it, as the next start reads it back (its key the
        // same: an acknowledged one stays closed).
        let shown = serde_json::to_vec(&event)
            .ok()
            .and_then(|line| console_host_finding(&line));
        let about = match shown {
            Some((host, found)) => {
                pages.host_finding(&host, &found);
                found.identity.map(|identity| (host, identity))
            }
            None => {
                pages.finding(&finding);
                None
            }
        };
        if let Err(e) = inbox.push(event) {
            say(&format!(
                "fleet: an alert could not be queued for the trail: {e}"
            ));
        }
        // Raised about an enrolment the trail records revoked (a report judged while
        // it was revoked, a timer): closed at once, after its own record, saying why
        // (session 50, review rv49-gate: it stayed open for good).
        if let Some((host, identity)) = about
            && let Err(e) = console.close_if_revoked(&host, &identity)
        {
            say(&format!(
                "fleet: host {host}'s alert, raised after its enrolment was revoked, could not be closed on the trail ({e}): the next start closes it"
            ));
        }
    });
    say(&format!("the fleet's store: {}", pool.at().describe()));
    let restored = pool
        .at()
        .open()
        .map_err(|e| anyhow!("the fleet's store: {e}"))
        .and_then(|mut store| {
            restore_host_findings(home, store.as_mut(), &listen.guard, listen.trail_proven)
        })
        .context("listing again the hosts' open alerts");
    // A store unreachable at start is waited for by the listener (it backs off): the
    // console starts all the same, and says what it could not list.
    match restored {
        Ok(restored) => say_restored(&restored),
        Err(e) => say(&format!(
            "the hosts' open alerts and warnings could NOT be listed again from the store: {e:#} (they are in the store and on the trail; the alerts page shows only those delivered or raised from now on)"
        )),
    }
    // Those listed again about enrolments the trail records revoked are over: closed
    // once here, each recorded (session 50, review rv49-gate: a version before closed
    // none at a revocation, and they stayed open for good).
    match listen.console.close_revoked_alerts_at_start() {
        Ok(0) => {}
        Ok(closed) => say(&format!(
            "{closed} alert(s) the console raised about revoked enrolments closed at this start, each recorded on the console's trail (a revoked enrolment's alerts are over)"
        )),
        Err(e) => say(&format!(
            "the alerts about revoked enrolments could NOT all be closed at this start: {e} (the next start closes them)"
        )),
    }
    let fleet = pacsguard_fleet::console::Fleet::new(pool.at().clone(), ca, cosigner, alert)
        .with_pool(pool)
        .with_console_trail(trail)
        .with_log(Arc::new(|line: &str| say(line)))
        .with_host_records(host_records_to_pages(listen.guard.clone()))
        .with_first_report_within(listen.first_report_within);
    let config = fleet
        .tls_config(chain, key)
        .map_err(|e| anyhow!("fleet TLS: {e}"))?;
    check_pins_at_start(&fleet, &pins_pool, &listen.guard, &pins_inbox);
    let address = &listen.address;
    let addr: std::net::SocketAddr = address
        .parse()
        .map_err(|e| anyhow!("--fleet-listen {address:?}: not ADDRESS:PORT ({e})"))?;
    let listener =
        TcpListener::bind(addr).with_context(|| format!("listening for hosts on {addr}"))?;
    let local = listener.local_addr()?;
    say(&format!(
        "listening for hosts at tls://{local} (enrolment tokens: pacsguard console enrol-token)"
    ));
    pacsguard_fleet::console::serve(listener, config, Arc::new(fleet), stop, Arc::new(say))
        .context("starting the fleet listener")
}

/// Hosts named at most in one line of the start about the hosts' pins (the rest counted).
const PIN_HOSTS_NAMED: usize = 10;

/// At start, once the fleet listener's certificate is known: compares the certificate
/// each enrolled host pinned (kept at its enrolment) with the one presented now
/// (issue 14, session 46, review rv45-fleet: a console upgraded from a version that
/// presented `[console] cert` to hosts presented its own and cut every host off without
/// a word). Each host that pinned another is raised `host-pinned-other`, both
/// fingerprints and the way back named, and said here; one raised before (listed again
/// from the trail) whose host pinned the certificate presented again is closed, recorded
/// on the trail as the console's own closing so the next start leaves it closed.
fn check_pins_at_start(
    fleet: &pacsguard_fleet::console::Fleet,
    pool: &Arc<pacsguard_store::FleetPool>,
    guard: &pacsguard_console::guard::GuardState,
    inbox: &pacsguard_events::Inbox,
) {
    let kind = pacsguard_events::FindingKind::HostPinnedOther.as_str();
    let Some(presented) = fleet.presented() else {
        return;
    };
    let presented = pacsguard_fleet::printed_fingerprint(&presented);
    let compared = pool.get().and_then(|mut db| {
        let hosts = pacsguard_store::FleetStore::hosts(&mut *db)?;
        let pins = pacsguard_store::FleetStore::host_pins(&mut *db)?;
        let compared = pacsguard_fleet::console::compare_pins(&hosts, &pins, &presented);
        Ok((hosts, compared))
    });
    let (hosts, compared) = match compared {
        Ok(compared) => compared,
        Err(e) => {
            say(&format!(
                "warning: the hosts' pins could not be compared with the fleet identity presented ({e}): a host cut off by a change of it is told when its connection is refused"
            ));
            return;
        }
    };
    let actor = pacsguard_events::Actor {
        user: "console".into(),
        uid: nix::unistd::geteuid().as_raw(),
        sudo_user: None,
    };
    // An alert raised by a version before names no enrolment: it is this host's only
    // when no other enrolment (a revoked one) ever held the name.
    let name_is_its_own = |name: &str| {
        let key = pacsguard_store::host_name_key(name);
        hosts
            .iter()
            .filter(|h| pacsguard_store::host_name_key(&h.name) == key)
            .count()
            == 1
    };
    let close = |enrolled: &pacsguard_fleet::console::PinnedHost, why: &str| -> usize {
        let host = enrolled.name.as_str();
        let keys = guard.close_console_host_findings(
            host,
            &enrolled.certificate,
            kind,
            name_is_its_own(host),
        );
        for key in &keys {
            let detail = pacsguard_console::guard::host_acknowledgement_detail(
                &format!("console closed {kind} of host {host}: {why}"),
                key,
            );
            let event = pacsguard_events::Event::new(
                actor.clone(),
                pacsguard_events::Action::Finding,
                pacsguard_events::Outcome::Success,
                detail,
            );
            if let Err(e) = inbox.push(event) {
                say(&format!(
                    "fleet: the closing of host {host}'s {kind} could not be queued for the trail ({e}): the next start lists it again"
                ));
            }
        }
        keys.len()
    };
    for host in &compared.presented {
        let why = format!(
            "the fleet listener presents again the certificate it pinned (SHA-256 fingerprint {presented})"
        );
        if close(host, &why) > 0 {
            say(&format!("host {}: {kind} closed: {why}", host.name));
        }
    }
    for host in &compared.elsewhere {
        // Raised anew just below with what holds now: one open, not one per start.
        close(host, "raised anew at this start");
    }
    let checked = pool
        .get()
        .and_then(|mut db| fleet.check_pins(&mut *db, None));
    if let Err(e) = checked {
        say(&format!(
            "warning: the hosts' pins could not be compared with the fleet identity presented ({e})"
        ));
        return;
    }
    let named = |names: &mut dyn Iterator<Item = String>, count: usize| {
        let mut shown: Vec<String> = names.take(PIN_HOSTS_NAMED).collect();
        if count > PIN_HOSTS_NAMED {
            shown.push(format!("and {} more", count - PIN_HOSTS_NAMED));
        }
        shown.join(", ")
    };
    if !compared.elsewhere.is_empty() {
        let count = compared.elsewhere.len();
        say(&format!(
            "WARNING: {count} enrolled host(s) pinned another certificate at enrolment than the fleet identity presented now (SHA-256 fingerprint {presented}) and are cut off: {}; raised as {kind} on the alerts page. For each (NAME): {}",
            named(
                &mut compared
                    .elsewhere
                    .iter()
                    .map(|host| format!("{} (pinned {})", host.name, host.pinned)),
                count
            ),
            pacsguard_fleet::console::pins_way_back("NAME", &presented)
        ));
    }
    if !compared.unknown.is_empty() {
        let count = compared.unknown.len();
        say(&format!(
            "{count} enrolled host(s) were enrolled by a version that kept no pin: {}; each one's pin is kept at its next connection; a connection refusing the fleet identity names them in this log (anyone can refuse it, so none is raised on that alone), and a host cut off falls silent and is raised as silent",
            named(&mut compared.unknown.iter().cloned(), count)
        ));
    }
}

/// The certificate and key the fleet listener presents: the console's own (its fleet
/// identity, `HOME/console/cert.pem`, made at the first start), whatever `[console]
/// cert/key` give browsers, so the hospital's certificate and its yearly renewal cut
/// off no host (review rv44-fleet case17). `configured` is `[console] cert/key`. One
/// exception keeps hosts enrolled by a version before reporting: those versions
/// presented the configured certificate to hosts too, so when a certificate is
/// configured, the console's own was never made and the fleet's store holds enrolled
/// hosts, they pinned the configured one; it is presented still, and said, with what
/// its renewal means and how to move the hosts. Said on stderr which it is.
///
/// The fleet identity's fingerprint is kept in the fleet's store when first made or
/// seen ([`pacsguard_store::FleetStore::fleet_identity_fingerprint`]); a start that finds
/// other files (`HOME/console/cert.pem`, `key.pem` deleted or overwritten) while hosts
/// are enrolled says so loudly, on stderr and on the trail (`warn`), both fingerprints
/// named: every such host is cut off until the two files are restored (review
/// rv45-fleet case5, case15: a new identity was made, or the hospital's certificate
/// presented, without a word).
pub fn fleet_certificate(
    home: &Home,
    configured: Option<(&Path, &Path)>,
    names: Vec<String>,
    pool: &Arc<pacsguard_store::FleetPool>,
    warn: &mut dyn FnMut(&str),
) -> Result<(PathBuf, PathBuf)> {
    use pacsguard_console::tls;
    let enrolled = pool.get().and_then(|mut db| {
        pacsguard_store::FleetStore::hosts(&mut *db)
            .map(|hosts| hosts.iter().filter(|h| h.revoked.is_none()).count())
    });
    let kept = pool
        .get()
        .and_then(|mut db| pacsguard_store::FleetStore::fleet_identity_fingerprint(&mut *db));
    if let Some((cert, key)) = configured
        && !tls::fleet_identity_exists(&home.dir)
        // A fleet identity was made once (its fingerprint kept): its files are gone,
        // and the hosts pinned it, not the configured certificate.
        && !matches!(kept, Ok(Some(_)))
    {
        let legacy = match &enrolled {
            Ok(0) => None,
            Ok(n) => Some(format!("the {n} enrolled host(s) pinned it")),
            // Not known: presenting what hosts may have pinned cuts off nobody.
            Err(e) => Some(format!(
                "whether hosts pinned it cannot be told now ({e}); the next start decides"
            )),
        };
        if let Some(why) = legacy {
            let fingerprint = tls::load_or_generate(&home.dir, Some(cert), Some(key), vec![])
                .map(|t| t.fingerprint)
                .unwrap_or_else(|e| format!("unknown ({e})"));
            say(&format!(
                "warning: the fleet listener presents [console] cert {} (SHA-256 fingerprint {fingerprint}), as versions before presented it to hosts: {why}. Renewing or replacing it cuts those hosts off. To move them to the console's own fleet identity, which no web certificate changes: start `serve` once with [console] cert/key removed (it makes HOME/console/cert.pem), and enrol each host again with the fingerprint printed then",
                cert.display()
            ));
            return Ok((cert.to_path_buf(), key.to_path_buf()));
        }
    }
    let identity = tls::fleet_identity(&home.dir, names)?;
    // The pins each host keeps since session 46 say more than the one fingerprint kept:
    // hosts enrolled again with the new identity (or the old one restored while the
    // kept one was overwritten) pinned what is presented, and the warning is over
    // (review rv45-fleet: it was said at every start for good once the hosts had moved).
    let pinned_presented = pool.get().and_then(|mut db| {
        let hosts = pacsguard_store::FleetStore::hosts(&mut *db)?;
        let pins = pacsguard_store::FleetStore::host_pins(&mut *db)?;
        let compared = pacsguard_fleet::console::compare_pins(&hosts, &pins, &identity.fingerprint);
        Ok(compared.elsewhere.is_empty()
            && compared.unknown.is_empty()
            && !compared.presented.is_empty())
    });
    let kept = match (kept, pinned_presented) {
        (Ok(Some(kept)), Ok(true)) if kept != identity.fingerprint => {
            say(&format!(
                "the fleet identity presented (SHA-256 fingerprint {}) is the one every enrolled host pinned: it replaces the fingerprint kept before ({kept}), and the warning that hosts pinned another is over",
                identity.fingerprint
            ));
            Ok(None)
        }
        (kept, _) => kept,
    };
    match (&kept, &enrolled) {
        (Ok(Some(kept)), Ok(n)) if *kept != identity.fingerprint && *n > 0 => {
            let text = format!(
                "the fleet identity presented to hosts is NOT the one they pinned: {} has the SHA-256 fingerprint {}, the fleet's store kept {kept} when the identity was first made; the {n} enrolled host(s) pinned that one and are cut off. Restore HOME/console/cert.pem and key.pem from backup (both files) and start again; only if the old identity is lost for good, enrol each host again. For each (NAME): {}",
                identity.cert_path.display(),
                identity.fingerprint,
                pacsguard_fleet::console::pins_way_back("NAME", &identity.fingerprint)
            );
            say(&format!("WARNING: {text}"));
            warn(&text);
        }
        (Ok(kept), _) if kept.as_deref() != Some(identity.fingerprint.as_str()) => {
            // First made or first seen (or changed with no host enrolled): kept for the
            // next start to compare.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            if let Err(e) = pool.get().and_then(|mut db| {
                pacsguard_store::FleetStore::set_fleet_identity_fingerprint(
                    &mut *db,
                    &identity.fingerprint,
                    now,
                )
            }) {
                say(&format!(
                    "warning: the fleet identity's fingerprint could not be kept in the fleet's store ({e}): a later replacement of HOME/console/cert.pem cannot be told"
                ));
            }
        }
        (Err(e), _) => say(&format!(
            "warning: the fleet identity's kept fingerprint could not be read ({e}): whether HOME/console/cert.pem is still the one hosts pinned is not checked at this start"
        )),
        _ => {}
    }
    say(&format!(
        "fleet identity (what hosts pin at enrolment): certificate {} ({}), SHA-256 fingerprint {}; [console] cert/key, for browsers, do not change it",
        identity.cert_path.display(),
        if identity.generated {
            "generated now, self-signed"
        } else {
            "the console's own, made at its first start"
        },
        identity.fingerprint
    ));
    Ok((identity.cert_path, identity.key_path))
}

/// Holds the guard's heartbeat to the console's bound when this host reports to one
/// (`MAX_TRAIL_HEARTBEAT`): the console takes a heartbeat naming the checkpoint it
/// holds as contact only while the trail grew within `TRAIL_HEARTBEAT_SLACK` times that
/// bound at most, so a quiet host whose heartbeat records came further apart (`[watch]
/// heartbeat_seconds` 7200 and more) was raised silent between two of them (issue 14,
/// review r30-fleet). Said on stderr through `tell`, as the guard that runs (`watch`,
/// `serve`), never silent; a `fleet/` that holds no enrolment is said and recorded.
pub fn hold_heartbeat_for_the_console(
    home: &Home,
    session: &mut pacsguard_engine::Session,
    tell: Tell,
) -> Result<()> {
    use pacsguard_fleet::freshness::MAX_TRAIL_HEARTBEAT;
    if Identity::load(&home.dir)?.is_none() {
        record_missing_enrolment(home, session, tell)?;
        return Ok(());
    }
    if let Some(configured) = session.hold_heartbeat_to(MAX_TRAIL_HEARTBEAT) {
        tell(&format!(
            "warning: [watch] heartbeat_seconds {configured} is longer than a console takes (MAX_TRAIL_HEARTBEAT {MAX_TRAIL_HEARTBEAT}): this host reports to a console, so its guard writes a heartbeat every {MAX_TRAIL_HEARTBEAT} s; with a longer interval the console would take it for silent between two"
        ));
    }
    Ok(())
}

/// At a guard's start: a `fleet/` that holds no enrolment is said on stderr and
/// recorded on the trail (an `audit` warning), and the guard goes on without a console
/// (session 35: it exited 2 saying `console.json` "vanished before it could be read").
fn record_missing_enrolment(
    home: &Home,
    session: &mut pacsguard_engine::Session,
    tell: Tell,
) -> Result<()> {
    let Some(text) = host::enrolment_missing(&home.dir)? else {
        return Ok(());
    };
    tell(&format!("warning: {text}"));
    let event = pacsguard_events::Event::new(
        session.actor().clone(),
        pacsguard_events::Action::Delivery,
        pacsguard_events::Outcome::Failure,
        format!("fleet: {text}"),
    );
    if let Err(e) = session.record_events(vec![event]) {
        tell(&format!("and it could not be recorded on the trail: {e}"));
    }
    Ok(())
}

/// A destination `serve` delivers the trail to as it runs: the console this host is
/// enrolled in, or the syslog collector of `[forward]`. One loop ([`report`]) serves
/// every one; what differs is only how a run's transport is made.
trait Destination {
    /// How its lines on stderr begin ("console delivery").
    fn label(&self) -> &'static str;
    /// The name of its cursor in the home.
    fn cursor_name(&self) -> String;
    /// How it is named on the trail ("the collector tcp://siem:514").
    fn whom(&self) -> String;
    /// The transport of the next run, which delivers the records up to `checkpoint`
    /// (the newest one: its size, and the line).
    fn transport(
        &mut self,
        home: &Home,
        checkpoint: Option<(u64, String)>,
    ) -> Result<&mut dyn Transport, DeliveryError>;
    /// The last run's batch was confirmed; `caught_up`: nothing signed is left. Returns
    /// what to say of it and record on the trail (a limit reached: which records went as
    /// stand-ins), if anything.
    fn delivered(&mut self, _caught_up: bool) -> Option<String> {
        None
    }
    /// The last run failed: how long to wait before the next (`first`, [`REPORT_INTERVAL`],
    /// unless the destination paces itself).
    fn failed(&mut self, first: Duration) -> Duration {
        first
    }
    /// Whether the run that failed last may pass smaller (it was cut short with more
    /// than one record): the stop's last delivery tries that before it gives up.
    fn may_shrink(&self) -> bool {
        false
    }
}

/// The console this host is enrolled in.
struct ToConsole<'a> {
    identity: &'a Identity,
    /// Made on first use: it names the trail's key, read then.
    transport: Option<ConsoleTransport<'a>>,
    /// How long a failure waits ([`CONSOLE_RETRY_BACKOFF`] at most).
    backoff: Backoff,
}

impl Destination for ToConsole<'_> {
    fn label(&self) -> &'static str {
        "console delivery"
    }

    fn cursor_name(&self) -> String {
        CONSOLE_DESTINATION.to_string()
    }

    fn whom(&self) -> String {
        "the console".to_string()
    }

    fn transport(
        &mut self,
        home: &Home,
        checkpoint: Option<(u64, String)>,
    ) -> Result<&mut dyn Transport, DeliveryError> {
        let made = match self.transport.take() {
            Some(transport) => transport,
            None => console_transport(home, self.identity)?,
        };
        let transport = self.transport.insert(made);
        transport.set_checkpoint(checkpoint);
        transport.set_profile(profile_claim(home));
        Ok(transport)
    }

    fn delivered(&mut self, _caught_up: bool) -> Option<String> {
        self.backoff.delivered();
        None
    }

    /// Ever longer waits while it fails, bounded below the host's promised interval.
    fn failed(&mut self, first: Duration) -> Duration {
        self.backoff.failed(first, CONSOLE_RETRY_BACKOFF)
    }
}

/// A console transport for `identity`, naming the home's trail key.
fn console_transport<'a>(
    home: &Home,
    identity: &'a Identity,
) -> Result<ConsoleTransport<'a>, DeliveryError> {
    let path = home.trail_key_path();
    let trail_key =
        std::fs::read_to_string(&path).map_err(|source| DeliveryError::File { path, source })?;
    Ok(ConsoleTransport::new(
        identity,
        trail_key.trim().to_string(),
        PROMISED_INTERVAL.as_secs(),
        None,
        0,
    ))
}

/// The syslog collector of `[forward]`: the library's destination
/// ([`SyslogDestination`], the same batches as `audit forward`'s) in the guard's loop.
struct ToSyslog(SyslogDestination);

impl Destination for ToSyslog {
    fn label(&self) -> &'static str {
        "syslog delivery"
    }

    fn cursor_name(&self) -> String {
        self.0.destination().to_string()
    }

    fn whom(&self) -> String {
        self.0.whom()
    }

    fn transport(
        &mut self,
        _home: &Home,
        _checkpoint: Option<(u64, String)>,
    ) -> Result<&mut dyn Transport, DeliveryError> {
        Ok(self.0.next_batch())
    }

    /// Said once per batch, and recorded: which records went as stand-ins.
    fn delivered(&mut self, caught_up: bool) -> Option<String> {
        let (max_message, whom) = (self.0.max_message(), self.0.whom());
        let stood_in = self.0.delivered(caught_up);
        pacsguard_audit::syslog::stand_ins_said(stood_in, max_message, &whom)
    }

    fn failed(&mut self, first: Duration) -> Duration {
        self.0.failed(first)
    }

    fn may_shrink(&self) -> bool {
        self.0.may_shrink()
    }
}

/// One delivery run: the records up to the newest checkpoint (the records after it
/// wait for the checkpoint that signs them; to the console, a heartbeat when there are
/// none). Returns the records delivered and how many signed ones are still to go (a
/// batch is bounded by its transport).
fn deliver_once(
    home: &Home,
    delivery: &Delivery,
    to: &mut dyn Destination,
) -> Result<(u64, u64), DeliveryError> {
    let checkpoint = host::newest_checkpoint(&home.checkpoints_path()).unwrap_or(None);
    let cursor = delivery.read_cursor()?;
    let limit = checkpoint
        .as_ref()
        .map_or(0, |(size, _)| size.saturating_sub(cursor.seq));
    let transport = to.transport(home, checkpoint)?;
    let sent = delivery.deliver(transport, Some(limit))?;
    Ok((sent, limit.saturating_sub(sent)))
}

/// `audit forward --to console`: one delivery run, under the home's lock (so not
/// beside a running `serve`, which delivers by itself). Returns the records delivered.
pub fn forward_once(home: &Home) -> Result<u64> {
    home.check_permissions()?;
    let _lock = home.lock()?;
    let identity = Identity::load(&home.dir)?
        .ok_or_else(|| anyhow!("this host is not enrolled in a console (pacsguard enroll)"))?;
    let delivery = Delivery::of(&home.dir, home.audit_log_path(), CONSOLE_DESTINATION)?;
    let mut to = ToConsole {
        identity: &identity,
        transport: None,
        backoff: Backoff::default(),
    };
    Ok(deliver_once(home, &delivery, &mut to)?.0)
}

/// Delivers the trail to `to` until `stop`: as soon as a checkpoint is written (woken
/// by [`TrailWake`]; what accumulated while a delivery ran goes in the next batch),
/// batch after batch while signed records remain, and (to the console, a heartbeat)
/// when nothing was written for [`REPORT_INTERVAL`]. Only the records up to the newest
/// checkpoint are sent (the rest wait for theirs). A destination that is down or
/// refuses is said once per change, and tried again after [`REPORT_INTERVAL`]
/// (checkpoints written meanwhile do not hasten the retry: a console or collector
/// restarting is not hammered). Its cursor is its own: another destination's state
/// neither holds it back nor moves it.
///
/// At the stop it waits for `guard_stopped` and delivers what the guard wrote last
/// ([`deliver_remaining`]); returns why that failed, if it did.
fn report(
    home: &Home,
    to: &mut dyn Destination,
    (stop, guard_stopped, abandon): (&AtomicBool, &AtomicBool, Abandon),
    note: Option<&TrailNote>,
    say: Tell,
) -> Result<(), String> {
    let label = to.label();
    let delivery = Delivery::of(&home.dir, home.audit_log_path(), &to.cursor_name())
        .map_err(|e| {
            let text = format!("{label}: {e}");
            say(&text);
            text
        })?
        .with_abandon(abandon);
    let mut wake = match TrailWake::new(&home.checkpoints_path()) {
        Ok(wake) => Some(wake),
        Err(e) => {
            say(&format!(
                "{label}: {e}: records are delivered every {} s instead of as they are signed",
                REPORT_INTERVAL.as_secs()
            ));
            None
        }
    };
    let mut last_problem: Option<String> = None;
    let mut outage = Outage::new(failing_recorded_after(say));
    let whom = to.whom();
    // When the next run is due even if no checkpoint is written (heartbeat or retry),
    // and whether a checkpoint may bring it forward.
    let mut next = Instant::now();
    let mut wakeable = true;
    while !stop.load(Ordering::Relaxed) {
        let left = next.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            // Short waits, so that `stop` is looked at every STOP_CHECK.
            let step = left.min(STOP_CHECK);
            match &mut wake {
                Some(wake) if wakeable => {
                    if wake.wait(step) == Woken::Timeout {
                        continue;
                    }
                }
                _ => {
                    std::thread::sleep(step);
                    continue;
                }
            }
        }
        next = Instant::now() + REPORT_INTERVAL;
        wakeable = true;
        if let Some(wake) = &mut wake {
            wake.retry();
            if let Some(problem) = wake.problem() {
                say(&format!("{label}: {problem}"));
            }
        }
        match deliver_once(home, &delivery, to) {
            Ok((sent, left)) => {
                said_delivered(to, left == 0, note, say);
                if last_problem.take().is_some() {
                    say(&format!("{label} resumed"));
                }
                if let (Some(note), Some(text)) = (note, outage.delivered(Instant::now(), &whom)) {
                    note.record(pacsguard_events::Outcome::Success, text, say);
                }
                if sent > 0 && left > 0 {
                    next = Instant::now(); // the next batch at once
                }
            }
            Err(e) => {
                wakeable = false;
                next = Instant::now() + to.failed(REPORT_INTERVAL);
                let text = e.to_string();
                if let (Some(note), Some(long)) =
                    (note, outage.failed(Instant::now(), &whom, &text))
                {
                    say(&format!("{label}: {long}"));
                    note.record(pacsguard_events::Outcome::Failure, long, say);
                }
                if last_problem.as_deref() != Some(&text) {
                    say(&format!("{label}: {text}"));
                    last_problem = Some(text);
                }
            }
        }
    }
    // The guard writes its 'stopped' records and their checkpoint after the stop.
    while !guard_stopped.load(Ordering::SeqCst) {
        std::thread::sleep(STOP_CHECK);
    }
    deliver_remaining(home, &delivery, to, note, say)
}

/// A batch to `to` was confirmed: a limit it reached (records that went as stand-ins)
/// said on stderr and recorded on the trail (`note`), so which alerts a collector holds
/// only in part is on the evidence, not only on a terminal.
fn said_delivered(to: &mut dyn Destination, caught_up: bool, note: Option<&TrailNote>, say: Tell) {
    let Some(limit) = to.delivered(caught_up) else {
        return;
    };
    say(&format!("{}: warning: {limit}", to.label()));
    if let Some(note) = note {
        note.record(
            pacsguard_events::Outcome::Success,
            format!("{}: {limit}", to.label()),
            say,
        );
    }
}

/// Every signed record the destination does not hold yet, batch after batch (to the
/// console, no heartbeat when it holds them all already). Bounded from outside by
/// [`STOP_DELIVERY_DEADLINE`] (the process ends without waiting for it).
fn deliver_remaining(
    home: &Home,
    delivery: &Delivery,
    to: &mut dyn Destination,
    note: Option<&TrailNote>,
    say: Tell,
) -> Result<(), String> {
    loop {
        let signed = host::newest_checkpoint(&home.checkpoints_path())
            .map_err(|e| format!("{}: {e}", home.checkpoints_path().display()))?
            .map_or(0, |(size, _)| size);
        let cursor = delivery.read_cursor().map_err(|e| e.to_string())?;
        if cursor.seq >= signed {
            return Ok(());
        }
        let sent = match deliver_once(home, delivery, to) {
            Ok((sent, left)) => {
                said_delivered(to, left == 0, note, say);
                sent
            }
            // Cut short with more than one record: a smaller batch may pass (the same
            // shrinking as while the guard runs; bounded by STOP_DELIVERY_DEADLINE).
            Err(_) if to.may_shrink() => {
                to.failed(Duration::ZERO);
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        if sent == 0 {
            return Err(format!(
                "it took none of records {} to {}",
                cursor.seq,
                signed - 1
            ));
        }
    }
}

/// How often a waiting reporter looks at `serve`'s stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// How long a destination may fail without one delivery in between before the trail
/// records it: a wrong certificate or a collector that refuses a record never clears by
/// itself, and a line on stderr of a guard that runs for months is not seen (review
/// rv33-deliver). Its recovery is recorded too.
pub const FAILING_RECORDED_AFTER: Duration = Duration::from_secs(600);

/// A debug build's knob for tests: `FAILING_RECORDED_AFTER` in milliseconds, so a test
/// sees the record of a long outage without waiting 10 minutes (never a sleep).
pub const TEST_FAILING_RECORDED_AFTER_VAR: &str = "PACSGUARD_TEST_FAILING_RECORDED_AFTER_MS";

/// [`FAILING_RECORDED_AFTER`], or in a debug build what [`TEST_FAILING_RECORDED_AFTER_VAR`]
/// sets (said).
fn failing_recorded_after(say: Tell) -> Duration {
    if !cfg!(debug_assertions) {
        return FAILING_RECORDED_AFTER;
    }
    let Some(ms) = std::env::var(TEST_FAILING_RECORDED_AFTER_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return FAILING_RECORDED_AFTER;
    };
    say(&format!(
        "TEST HOOK: a failing destination is recorded after {ms} ms (a debug build, {TEST_FAILING_RECORDED_AFTER_VAR}); never in production"
    ));
    Duration::from_millis(ms)
}

/// `LARGE_BATCH_HOLD`, or in a debug build what `TEST_LARGE_BATCH_HOLD_VAR` sets (said):
/// a test's collector on a loaded machine must close within the hold.
pub fn large_batch_hold(say: Tell) -> Duration {
    use pacsguard_audit::syslog::{LARGE_BATCH_HOLD, TEST_LARGE_BATCH_HOLD_VAR};
    if !cfg!(debug_assertions) {
        return LARGE_BATCH_HOLD;
    }
    let Some(ms) = std::env::var(TEST_LARGE_BATCH_HOLD_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return LARGE_BATCH_HOLD;
    };
    say(&format!(
        "TEST HOOK: a batch with a large message holds {ms} ms for the collector's close (a debug build, {TEST_LARGE_BATCH_HOLD_VAR}); never in production"
    ));
    Duration::from_millis(ms)
}

/// Since when a destination fails, and whether the trail has been told.
#[derive(Debug)]
struct Outage {
    /// How long failures last before the trail records them ([`FAILING_RECORDED_AFTER`]).
    after: Duration,
    since: Option<Instant>,
    recorded: bool,
}

impl Outage {
    fn new(after: Duration) -> Outage {
        Outage {
            after,
            since: None,
            recorded: false,
        }
    }

    /// A run failed at `now` with `why`: the text to record on the trail once the
    /// failures have lasted [`FAILING_RECORDED_AFTER`] (once per outage).
    fn failed(&mut self, now: Instant, whom: &str, why: &str) -> Option<String> {
        let since = *self.since.get_or_insert(now);
        if self.recorded || now.saturating_duration_since(since) < self.after {
            return None;
        }
        self.recorded = true;
        Some(format!(
            "delivery to {whom} has failed for {} s (FAILING_RECORDED_AFTER {} s), nothing delivered since; nothing is lost, the records wait on the trail: {why}",
            now.saturating_duration_since(since).as_secs(),
            self.after.as_secs()
        ))
    }

    /// A run delivered at `now`: the text to record when the outage had been recorded.
    fn delivered(&mut self, now: Instant, whom: &str) -> Option<String> {
        let since = self.since.take()?;
        let recorded = std::mem::take(&mut self.recorded);
        recorded.then(|| {
            format!(
                "delivery to {whom} resumed after {} s of failures",
                now.saturating_duration_since(since).as_secs()
            )
        })
    }
}

/// Where a reporter records on the trail what lasts too long to be a line on stderr.
#[derive(Clone)]
pub struct TrailNote {
    pub inbox: pacsguard_events::Inbox,
    pub actor: pacsguard_events::Actor,
    /// Where a record the closed inbox refused is kept for the next start.
    pub home: Home,
}

impl TrailNote {
    /// Records `text` on the trail; once the session's inbox is closed (the stop's last
    /// batch is delivered after the guard wrote its last records), in the home's note
    /// of delivery records for the next start's trail ([`record_undelivered_stop`]):
    /// the stand-ins of the stop's last batch were named on no trail (review
    /// rv36-deliver).
    fn record(&self, outcome: pacsguard_events::Outcome, text: String, say: Tell) {
        let note = &notes::delivery_note_path(&self.home);
        let event = pacsguard_events::Event::new(
            self.actor.clone(),
            pacsguard_events::Action::Delivery,
            outcome,
            text.clone(),
        );
        let Err(e) = self.inbox.push(event) else {
            return;
        };
        let outcome = match outcome {
            pacsguard_events::Outcome::Failure => "failure",
            _ => "success",
        };
        match notes::leave(note, "the stop", &format!("({outcome}) {text}")) {
            Ok(()) => say(&format!(
                "a delivery record could not be queued for the trail ({e}): kept in {} for the next start's trail",
                note.display()
            )),
            Err(written) => say(&format!(
                "a delivery record could not be queued for the trail ({e}) nor kept in {} ({written}): {text}",
                note.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> pacsguard_events::Actor {
        pacsguard_events::Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        }
    }

    /// A stop's note goes on the next start's trail once, then is removed; one longer
    /// than MAX_STOP_NOTE_BYTES (written by hand: a stop writes a line) is cut, and the
    /// record says so.
    /// A destination failing for longer than FAILING_RECORDED_AFTER is recorded once,
    /// and its recovery once (review rv33-deliver: it was one line on stderr).
    #[test]
    fn a_long_outage_is_recorded_once_and_its_end_too() {
        let start = Instant::now();
        let mut outage = Outage::new(FAILING_RECORDED_AFTER);
        assert_eq!(
            outage.delivered(start, "c"),
            None,
            "no outage, nothing to say"
        );
        assert_eq!(outage.failed(start, "c", "refused"), None);
        let almost = start + FAILING_RECORDED_AFTER - Duration::from_secs(1);
        assert_eq!(outage.failed(almost, "c", "refused"), None);
        let long = start + FAILING_RECORDED_AFTER;
        let text = outage.failed(long, "c", "refused").expect("recorded");
        assert!(
            text.contains("delivery to c has failed") && text.contains("refused"),
            "{text}"
        );
        assert_eq!(
            outage.failed(long + FAILING_RECORDED_AFTER, "c", "x"),
            None,
            "once"
        );
        let back = outage.delivered(long, "c").expect("its end recorded");
        assert!(back.contains("resumed"), "{back}");
        // A short outage after it is not recorded.
        assert_eq!(outage.failed(long, "c", "x"), None);
        assert_eq!(outage.delivered(long, "c"), None);
    }

    /// A transport that confirms whatever it is sent.
    struct Takes;

    impl Transport for Takes {
        fn describe(&self) -> String {
            "takes".into()
        }
        fn send(&mut self, _line: &[u8], _record: &serde_json::Value) -> std::io::Result<()> {
            Ok(())
        }
        fn confirm(&mut self, _after: pacsguard_audit::delivery::Cursor) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Session 35: a report thread still delivering when the stop's wait ended was left
    /// running; when the console's answer came after the stop had said (and noted for
    /// the next start's trail) that the records were not delivered, it moved the cursor
    /// anyway, and the trail then said something untrue. The stop abandons its cursor
    /// first: what it says is left is what the next start sends.
    #[test]
    fn a_report_thread_the_stop_gave_up_on_never_moves_its_cursor_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().to_path_buf());
        std::fs::create_dir_all(home.dir.join(host::FLEET_DIR)).expect("fleet dir");
        let records: String = (0..3).map(|seq| format!("{{\"seq\":{seq}}}\n")).collect();
        std::fs::write(home.audit_log_path(), records).expect("trail");
        let (release, late) = std::sync::mpsc::channel::<()>();
        let (result, answered) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(true));
        let its_home = home.clone();
        let reporter = spawn_reporter(
            CONSOLE_DESTINATION,
            "the console",
            true,
            (&stop, |_| {}),
            move |_, _, abandon| {
                // The console answers only after the stop gave up on it.
                late.recv().expect("released");
                let delivery = Delivery::of(
                    &its_home.dir,
                    its_home.audit_log_path(),
                    CONSOLE_DESTINATION,
                )
                .expect("delivery")
                .with_abandon(abandon);
                result
                    .send(
                        delivery
                            .deliver(&mut Takes, None)
                            .map_err(|e| e.to_string()),
                    )
                    .expect("result");
                Ok(())
            },
        )
        .expect("reporter");
        reporter.not_delivered(&home, &AtomicBool::new(false));
        let note = std::fs::read_to_string(stop_note_path(&home)).expect("the stop's note");
        assert!(
            note.contains("were not confirmed delivered to the console"),
            "{note}"
        );
        release.send(()).expect("release");
        let late = answered.recv().expect("answered");
        assert!(
            late.is_err(),
            "the late confirmation moved nothing: {late:?}"
        );
        let cursor = Delivery::of(&home.dir, home.audit_log_path(), CONSOLE_DESTINATION)
            .and_then(|d| d.read_cursor())
            .expect("cursor");
        assert_eq!(cursor.seq, 0, "the records the note says are left are left");
    }

    /// Review rv36-deliver: the stand-ins of a stop's last batch (delivered once the
    /// guard closed its inbox) were named on no trail: "could not be queued ... the guard
    /// has stopped". They are kept in the home's note and the next start records them,
    /// as a `delivery` record (never `audit`: no SIEM reads "recording stopped" in it).
    #[test]
    fn a_delivery_record_after_the_guard_stopped_goes_on_the_next_start_s_trail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().to_path_buf());
        let closed = pacsguard_events::Inbox::new();
        let _ = closed.close();
        let note = TrailNote {
            inbox: closed,
            actor: actor(),
            home: home.clone(),
        };
        note.record(
            pacsguard_events::Outcome::Success,
            "syslog delivery: 5 record(s) went as stand-ins: records 6, 7".into(),
            |_| {},
        );
        assert!(
            notes::delivery_note_path(&home).exists(),
            "kept for the next start"
        );
        let next = pacsguard_events::Inbox::new();
        record_undelivered_stop(&home, &actor(), "watch", &mut |e| {
            next.push(e).map_err(|e| e.to_string())
        });
        let events = next.take();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, pacsguard_events::Action::Delivery);
        assert!(
            events[0].detail.contains("went as stand-ins: records 6, 7")
                && events[0]
                    .detail
                    .contains("delivery records noted for the trail"),
            "{}",
            events[0].detail
        );
        assert!(!notes::delivery_note_path(&home).exists(), "recorded once");
    }

    #[test]
    fn a_stop_note_is_recorded_once_and_a_long_one_is_said_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().to_path_buf());
        std::fs::create_dir_all(home.dir.join(host::FLEET_DIR)).expect("fleet dir");
        let inbox = pacsguard_events::Inbox::new();
        leave_stop_note(&home, "records 8 to 9 were not delivered").expect("note");
        record_undelivered_stop(&home, &actor(), "serve", &mut |e| {
            inbox.push(e).map_err(|e| e.to_string())
        });
        let events = inbox.take();
        assert_eq!(events.len(), 1);
        assert!(
            events[0]
                .detail
                .contains("records 8 to 9 were not delivered")
                && !events[0].detail.contains("MAX_STOP_NOTE_BYTES"),
            "{}",
            events[0].detail
        );
        assert!(!stop_note_path(&home).exists());
        record_undelivered_stop(&home, &actor(), "serve", &mut |e| {
            inbox.push(e).map_err(|e| e.to_string())
        });
        assert!(inbox.take().is_empty(), "recorded once");

        // Two stops with no start between them that recorded the first: both are kept.
        leave_stop_note(&home, "records 11 to 12 were not delivered").expect("note");
        leave_stop_note(&home, "records 13 to 14 were not delivered").expect("note");
        record_undelivered_stop(&home, &actor(), "serve", &mut |e| {
            inbox.push(e).map_err(|e| e.to_string())
        });
        let events = inbox.take();
        assert_eq!(events.len(), 1);
        let detail = &events[0].detail;
        let newest = detail.find("records 13 to 14").expect("the newest stop");
        let earlier = detail
            .find("records 11 to 12")
            .expect("the earlier stop kept");
        assert!(newest < earlier, "newest first: {detail}");

        let long = "x".repeat(usize::try_from(notes::MAX_STOP_NOTE_BYTES).expect("size") + 10);
        std::fs::write(stop_note_path(&home), &long).expect("a long note");
        record_undelivered_stop(&home, &actor(), "serve", &mut |e| {
            inbox.push(e).map_err(|e| e.to_string())
        });
        let events = inbox.take();
        assert_eq!(events.len(), 1);
        assert!(
            events[0]
                .detail
                .contains("[cut at 16384 bytes, MAX_STOP_NOTE_BYTES]"),
            "{}",
            events[0].detail
        );
        assert!(events[0].detail.len() < long.len() + 200);
    }

    /// A record reaches the console only once a checkpoint signs it, and the reporter
    /// delivers as soon as one is written: the default cadence of checkpoints while
    /// records arrive is then the floor of a record's way to the console, and it must
    /// leave room within the fleet's 2 s target (it was 5 s: the floor was 5 s).
    #[test]
    fn by_default_records_are_signed_often_enough_for_the_console() {
        let cadence =
            Duration::from_secs(pacsguard_engine::WatchConfig::default().checkpoint_seconds);
        assert!(cadence <= Duration::from_secs(1), "{cadence:?}");
        assert!(
            cadence < REPORT_INTERVAL,
            "a heartbeat is not what delivers"
        );
    }

    /// A console down for long is tried less and less often (it was every 2 s for as
    /// long as it was down), but never further apart than half the host's promised
    /// interval: a console back from an outage hears from the host before it could
    /// count it silent (`a_console_stopped_longer_than_a_hosts_interval_...`).
    #[test]
    fn a_console_down_for_long_is_retried_less_often_but_within_the_promised_interval() {
        assert!(CONSOLE_RETRY_BACKOFF < PROMISED_INTERVAL);
        assert!(CONSOLE_RETRY_BACKOFF > REPORT_INTERVAL);
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..60)
            .map(|_| backoff.failed(REPORT_INTERVAL, CONSOLE_RETRY_BACKOFF))
            .collect();
        assert_eq!(
            waits[..3],
            [REPORT_INTERVAL, REPORT_INTERVAL * 2, CONSOLE_RETRY_BACKOFF]
        );
        assert!(waits.iter().all(|w| *w <= CONSOLE_RETRY_BACKOFF));
        // Ten minutes down: tried about 90 times instead of 300.
        let mut down = Duration::ZERO;
        let mut tries = 0u32;
        let mut backoff = Backoff::default();
        while down < Duration::from_secs(600) {
            down += backoff.failed(REPORT_INTERVAL, CONSOLE_RETRY_BACKOFF);
            tries += 1;
        }
        assert!(tries <= 600 / 7 + 2, "{tries} tries in ten minutes");
        backoff.delivered();
        assert_eq!(
            backoff.failed(REPORT_INTERVAL, CONSOLE_RETRY_BACKOFF),
            REPORT_INTERVAL,
            "a delivery resets the wait"
        );
    }
}
