//! Commands beside a running guard: `check`, `accept` and `scan` started while `watch` or
//! `serve` holds the home are run by that process, through a Unix socket in the home.
//!
//! Why not a second writer under a shared lock: every one of these commands appends to
//! the audit trail (and `accept` re-signs the store), and the trail is one sequence of
//! hashes that one process extends. The guard runs them between two turns of its loop
//! (see `pacsguard_engine::Requests`), as the person who asked, and an acceptance becomes
//! the guard's view at once, so the change it took in is not reported again.
//!
//! The socket is 0600 in the home (itself not writable by others), and the server also
//! asks the kernel who connected (SO_PEERCRED): only root or the guard's own user is
//! served. One request and one answer per connection, each a line of JSON.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pacsguard_engine::{
    AcceptRequest, CheckRequest, Home, ProfileRef, Reply, Request, Requests, ScanRequest,
};
use pacsguard_events::Actor;
use serde::{Deserialize, Serialize};

use crate::output;

/// Longest request line read from a client: paths and a reason, not a document. A
/// longer one is refused.
pub const MAX_CONTROL_REQUEST_BYTES: u64 = 256 * 1024;
/// Longest answer a client reads (the findings of a whole check): a bigger one is cut
/// and the client says so instead of printing half a document.
pub const MAX_CONTROL_REPLY_BYTES: u64 = 512 * 1024 * 1024;
/// Most connections served at once; more are answered with a refusal.
pub const MAX_CONTROL_CONNECTIONS: usize = 32;
/// How long a client may take to send its request: a silent one is dropped.
pub const CONTROL_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client refused for [`MAX_CONTROL_CONNECTIONS`] may take to send its
/// request before the refusal is written (the accept loop waits this long at most).
pub const REFUSAL_READ_TIMEOUT: Duration = Duration::from_millis(200);
/// How long writing the answer may stall on a client that does not read it.
pub const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Commands refused for [`MAX_CONTROL_CONNECTIONS`], written rate-limited.
static REFUSED: pacsguard_console::refusals::RefusalLog =
    pacsguard_console::refusals::RefusalLog::new("pacsguard");

/// A command sent to the running guard.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    Check {
        paths: Vec<PathBuf>,
        fast: bool,
    },
    Accept {
        paths: Vec<PathBuf>,
        all: bool,
        reason: String,
        /// A protected profile-signing key's passphrase (the client checked it already).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase: Option<WirePassphrase>,
    },
    Scan {
        paths: Vec<PathBuf>,
        rules: Option<PathBuf>,
        hashlist: Option<PathBuf>,
        quarantine: bool,
        preamble_only: bool,
    },
    /// `diff A B` (each `current`, a kept generation's number, or an export file made
    /// absolute by the client): read only, recorded on the trail by the guard.
    Diff {
        a: String,
        b: String,
    },
    /// `key passphrase` beside a running guard (review rv38-lead: it was refused, so
    /// changing a passphrase meant leaving the archive unguarded): both passphrases, the
    /// current one checked by the client already.
    ChangePassphrase {
        current: WirePassphrase,
        new: WirePassphrase,
    },
    /// `console revoke-host NAME` beside a running `serve` (review r26): `serve` writes
    /// the revocation and records it on its console's trail at once, which the CLI
    /// cannot (one process extends that trail). A `watch` has no console: it answers
    /// [`WireReply::not_served`], and the CLI writes the store as without a guard.
    RevokeHost {
        name: String,
        /// Why, as the person gave it (`--reason`): on the revocation's record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `console acknowledge-host NAME --digest D --reason` (issue 14): only `serve` runs
    /// it, which records the acknowledgement on its console's trail before the store
    /// keeps it; a `watch` or no guard: refused (an acknowledgement the trail does not
    /// record is raised as written in the database).
    AcknowledgeHost {
        name: String,
        /// The digest of the refusal the person saw (`console hosts`): another refusal
        /// standing now is refused (session 32). A client of the version before sends
        /// none, and is refused for it.
        #[serde(default)]
        digest: String,
        reason: String,
    },
}

/// What `serve` is asked to decide of a host through the control socket.
#[derive(Clone, Copy, Debug)]
pub enum HostDecision<'a> {
    /// `console revoke-host`, with the person's `--reason` if given.
    Revoke { reason: Option<&'a str> },
    /// `console acknowledge-host`, with the refusal's `--digest` the person saw and their
    /// `--reason`.
    Acknowledge { digest: &'a str, reason: &'a str },
}

/// What `serve` does for [`Command::RevokeHost`] and [`Command::AcknowledgeHost`]: the
/// host's name, who asked and what; what to print, or why not.
pub type HostRevoker =
    Arc<dyn Fn(&str, &Actor, HostDecision<'_>) -> Result<String, String> + Send + Sync>;

/// A passphrase on the wire: never printed (its `Debug` hides it).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct WirePassphrase(String);

impl std::fmt::Debug for WirePassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WirePassphrase(..)")
    }
}

impl Drop for WirePassphrase {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl From<pacsguard_engine::Passphrase> for WirePassphrase {
    fn from(p: pacsguard_engine::Passphrase) -> WirePassphrase {
        WirePassphrase(p.expose().to_owned())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct WireRequest {
    #[serde(flatten)]
    command: Command,
    json: bool,
    /// `SUDO_USER` of the client: recorded as a claim beside the uid the kernel names.
    sudo_user: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireReply {
    /// The exit status the command would have had run here.
    code: u8,
    stdout: String,
    error: Option<String>,
    /// This guard does not run the command (a `watch` asked to revoke a host): the
    /// client runs it itself.
    #[serde(default)]
    not_served: bool,
}

impl WireReply {
    fn error(message: impl Into<String>) -> WireReply {
        WireReply {
            code: 2,
            stdout: String::new(),
            error: Some(message.into()),
            not_served: false,
        }
    }

    fn not_served() -> WireReply {
        WireReply {
            code: 2,
            stdout: String::new(),
            error: None,
            not_served: true,
        }
    }
}

/// The server side, in `watch` and `serve`: stops and removes its socket when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Server {
    /// Listens on the home's control socket. The caller holds the home's lock, so a
    /// socket left there is a stale one of a guard that died: replaced. Anything else
    /// standing there is refused.
    pub fn start(home: &Home, requests: Requests, revoker: Option<HostRevoker>) -> Result<Server> {
        let path = home.control_socket_path();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?,
            Ok(_) => {
                return Err(anyhow!(
                    "{}: not a socket (something else stands where the guard's control socket goes); refused",
                    path.display()
                ));
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("the control socket")?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let home = home.clone();
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || accept_loop(&listener, &home, &requests, revoker.as_ref(), &stop))
                .context("starting the control socket's thread")?
        };
        Ok(Server {
            stop,
            handle: Some(handle),
            path,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(
    listener: &UnixListener,
    home: &Home,
    requests: &Requests,
    revoker: Option<&HostRevoker>,
    stop: &AtomicBool,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if open.load(Ordering::Relaxed) >= MAX_CONTROL_CONNECTIONS {
                    REFUSED.refused(&format!(
                        "a command on the control socket: {MAX_CONTROL_CONNECTIONS} are with the guard already (MAX_CONTROL_CONNECTIONS)"
                    ));
                    // Its request is read first (briefly): a socket closed with unread
                    // data resets the client's read, which would lose this answer and
                    // leave it saying only "connection reset by peer".
                    let _ = stream.set_read_timeout(Some(REFUSAL_READ_TIMEOUT));
                    let _ = read_request(&stream);
                    let _ = answer(
                        &mut stream,
                        &WireReply::error(format!(
                            "{MAX_CONTROL_CONNECTIONS} commands are already with the guard (MAX_CONTROL_CONNECTIONS); try again"
                        )),
                    );
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let requests = requests.clone();
                let home = home.clone();
                let revoker = revoker.cloned();
                let open_here = open.clone();
                let spawned = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        serve_one(stream, &home, &requests, revoker.as_ref());
                        open_here.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(stream: &mut UnixStream, reply: &WireReply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    stream.flush()
}

/// Who connected, from the kernel; only root and the guard's own user are served.
fn peer_actor(stream: &UnixStream, sudo_user: Option<String>) -> Result<Actor, String> {
    let creds = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| format!("cannot tell who connected ({e}); refused"))?;
    let uid = creds.uid();
    let own = nix::unistd::geteuid().as_raw();
    if uid != 0 && uid != own {
        return Err(format!(
            "uid {uid} may not command the guard: only root or the guard's own user; refused"
        ));
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name);
    Ok(Actor {
        user,
        uid,
        sudo_user: sudo_user.filter(|s| !s.is_empty()),
    })
}

fn serve_one(
    mut stream: UnixStream,
    home: &Home,
    requests: &Requests,
    revoker: Option<&HostRevoker>,
) {
    let _ = stream.set_read_timeout(Some(CONTROL_READ_TIMEOUT));
    // A client that stops reading its answer does not hold this thread for ever.
    let _ = stream.set_write_timeout(Some(CONTROL_WRITE_TIMEOUT));
    let reply = match read_request(&stream) {
        Err(message) => WireReply::error(message),
        Ok(request) => match peer_actor(&stream, request.sudo_user) {
            Err(message) => WireReply::error(message),
            Ok(actor) => match request.command {
                Command::RevokeHost { name, reason } => revoke_host(
                    &name,
                    HostDecision::Revoke {
                        reason: reason.as_deref(),
                    },
                    &actor,
                    revoker,
                ),
                Command::AcknowledgeHost {
                    name,
                    digest,
                    reason,
                } => revoke_host(
                    &name,
                    HostDecision::Acknowledge {
                        digest: &digest,
                        reason: &reason,
                    },
                    &actor,
                    revoker,
                ),
                command => run(command, request.json, actor, home, requests),
            },
        },
    };
    let _ = answer(&mut stream, &reply);
}

fn read_request(stream: &UnixStream) -> Result<WireRequest, String> {
    let mut line = Vec::new();
    BufReader::new(stream.take(MAX_CONTROL_REQUEST_BYTES + 1))
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    if line.len() as u64 > MAX_CONTROL_REQUEST_BYTES {
        return Err(format!(
            "the request is longer than {MAX_CONTROL_REQUEST_BYTES} bytes (MAX_CONTROL_REQUEST_BYTES); refused"
        ));
    }
    serde_json::from_slice(&line).map_err(|e| format!("not a request of this version: {e}"))
}

/// `console revoke-host` run by `serve` (see [`Command::RevokeHost`]).
fn revoke_host(
    name: &str,
    decision: HostDecision<'_>,
    actor: &Actor,
    revoker: Option<&HostRevoker>,
) -> WireReply {
    let Some(revoke) = revoker else {
        return WireReply::not_served();
    };
    match revoke(name, actor, decision) {
        Ok(said) => WireReply {
            code: 0,
            stdout: said,
            error: None,
            not_served: false,
        },
        Err(e) => WireReply::error(e),
    }
}

/// Hands the command to the guard, waits for it to run, and renders what the command
/// prints.
fn run(command: Command, json: bool, actor: Actor, home: &Home, requests: &Requests) -> WireReply {
    if let Command::Accept { paths, .. } = &command
        && let Some(refusal) = four_eyes_refusal(home, paths)
    {
        return WireReply::error(refusal);
    }
    let request = match command {
        Command::RevokeHost { .. } | Command::AcknowledgeHost { .. } => {
            return WireReply::not_served();
        }
        Command::ChangePassphrase { current, new } => {
            if let Err(e) = crate::passphrase::hold_secrets() {
                return WireReply::error(e.to_string());
            }
            let taken = |p: WirePassphrase| {
                pacsguard_engine::Passphrase::new(zeroize::Zeroizing::new(std::mem::take(
                    &mut { p }.0,
                )))
            };
            match (taken(current), taken(new)) {
                (Ok(current), Ok(new)) => Request::ChangePassphrase { current, new },
                (Err(e), _) | (_, Err(e)) => return WireReply::error(e.to_string()),
            }
        }
        Command::Check { paths, fast } => Request::Check(CheckRequest { paths, fast }),
        Command::Diff { a, b } => Request::Diff(profile_ref(&a), profile_ref(&b)),
        Command::Accept {
            paths,
            all,
            reason,
            passphrase,
        } => {
            if passphrase.is_some()
                && let Err(e) = crate::passphrase::hold_secrets()
            {
                return WireReply::error(e.to_string());
            }
            let passphrase = match passphrase
                .map(|p| {
                    pacsguard_engine::Passphrase::new(zeroize::Zeroizing::new(std::mem::take(
                        &mut { p }.0,
                    )))
                })
                .transpose()
            {
                Ok(p) => p,
                Err(e) => return WireReply::error(e.to_string()),
            };
            Request::Accept(AcceptRequest {
                paths,
                all,
                reason,
                expected: None,
                passphrase,
                shown: None,
            })
        }
        Command::Scan {
            paths,
            rules,
            hashlist,
            quarantine,
            preamble_only,
        } => Request::Scan(ScanRequest {
            paths,
            rules,
            hashlist,
            quarantine,
            preamble_only,
        }),
    };
    let answer = match requests.submit(request, actor) {
        Ok(answer) => answer,
        Err(reason) => return WireReply::error(reason),
    };
    let rendered = match answer.recv() {
        Err(_) => return WireReply::error("the guard stopped before it ran the command"),
        Ok(Reply::Refused(reason)) => return WireReply::error(reason),
        Ok(Reply::Check(result)) => result.map_err(anyhow::Error::from).and_then(|mut r| {
            // As a check run in the client: on an enrolled host, whether the profile
            // carries the console's approval.
            crate::fleet::check_approval(home, &mut r)?;
            Ok((output::check_text(&r, json)?, r.counts.needs_attention()))
        }),
        Ok(Reply::Scan(result)) => result
            .map_err(anyhow::Error::from)
            .and_then(|r| Ok((output::scan_text(&r, json)?, r.counts.needs_attention()))),
        Ok(Reply::Accept(result)) => result
            .map_err(anyhow::Error::from)
            .and_then(|r| Ok((output::accept_text(&r, json)?, !r.kept_unlisted.is_empty()))),
        Ok(Reply::ChangePassphrase(result)) => result
            .map_err(anyhow::Error::from)
            .and_then(|r| Ok((output::passphrase_changed_text(&r, json)?, false))),
        Ok(Reply::Diff(result)) => result
            .map_err(anyhow::Error::from)
            .and_then(|r| Ok((output::diff_text(&r, json)?, r.differs()))),
    };
    match rendered {
        Ok((stdout, attention)) => WireReply {
            code: u8::from(attention),
            stdout,
            error: None,
            not_served: false,
        },
        Err(e) => WireReply::error(crate::error_message(&e)),
    }
}

/// Four eyes is the console's: an acceptance relayed here that covers a `static` root
/// under `[console] four_eyes` is refused, so root's CLI cannot sign in alone what the
/// console asks two approvers for. The refusal says where to ask instead.
fn four_eyes_refusal(home: &Home, paths: &[PathBuf]) -> Option<String> {
    let covered = if paths.is_empty() {
        crate::four_eyes::needed(home, "").then(|| "every root".to_string())
    } else {
        paths
            .iter()
            .find(|p| p.to_str().is_none_or(|p| crate::four_eyes::needed(home, p)))
            .map(|p| pacsguard_events::escape_path(p))
    };
    covered.map(|what| {
        format!(
            "four eyes ([console] four_eyes): accepting {what} covers a static root and needs two approvers; ask for it in the console (Differences), where a second approver confirms it. Nothing was accepted"
        )
    })
}

/// The client side: when the home is locked by a guard that listens, the command is
/// sent to it. `None`: no guard listens (the lock holder is another command), and the
/// caller reports the lock as before.
pub fn relay(home: &Home, command: Command, json: bool) -> Option<Result<ExitCode>> {
    let path = home.control_socket_path();
    let mut stream = UnixStream::connect(&path).ok()?;
    Some(
        relay_on(&mut stream, &path, command, json).and_then(|code| {
            code.ok_or_else(|| anyhow!("the guard at {} does not run this command", path.display()))
        }),
    )
}

/// As [`relay`] for a command only `serve` runs ([`Command::RevokeHost`]): `None` also
/// when the guard listening is one that does not (a `watch`), and the caller runs it.
pub fn relay_if_served(home: &Home, command: Command) -> Option<Result<ExitCode>> {
    let path = home.control_socket_path();
    let mut stream = UnixStream::connect(&path).ok()?;
    relay_on(&mut stream, &path, command, false).transpose()
}

/// `Ok(None)`: the guard does not run this command ([`WireReply::not_served`]).
fn relay_on(
    stream: &mut UnixStream,
    path: &Path,
    command: Command,
    json: bool,
) -> Result<Option<ExitCode>> {
    let request = WireRequest {
        command: absolute(command)?,
        json,
        sudo_user: std::env::var("SUDO_USER").ok(),
    };
    let mut line = serde_json::to_string(&request)
        .context("a path that is not UTF-8 cannot be sent to the running guard")?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .with_context(|| format!("sending the command to the guard at {}", path.display()))?;
    let mut text = Vec::new();
    stream
        .take(MAX_CONTROL_REPLY_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("reading the guard's answer at {}", path.display()))?;
    if text.len() as u64 > MAX_CONTROL_REPLY_BYTES {
        return Err(anyhow!(
            "the guard's answer is longer than {MAX_CONTROL_REPLY_BYTES} bytes (MAX_CONTROL_REPLY_BYTES): not shown; the findings are on the audit trail (pacsguard audit show)"
        ));
    }
    if text.is_empty() {
        return Err(anyhow!(
            "the guard at {} stopped before it answered; whether the command ran is on the audit trail (pacsguard audit show)",
            path.display()
        ));
    }
    let reply: WireReply = serde_json::from_slice(&text)
        .with_context(|| format!("the guard at {} answered nonsense", path.display()))?;
    if reply.not_served {
        return Ok(None);
    }
    output::write_stdout(&reply.stdout)?;
    if let Some(error) = reply.error {
        return Err(anyhow!("the running guard: {error}"));
    }
    Ok(Some(ExitCode::from(reply.code)))
}

/// The guard runs elsewhere: relative paths are made absolute against this process's
/// working directory (nothing resolved; the guard resolves as the command would).
fn absolute(command: Command) -> Result<Command> {
    let abs = |p: PathBuf| -> Result<PathBuf> {
        std::path::absolute(&p).with_context(|| format!("{}", p.display()))
    };
    let all = |v: Vec<PathBuf>| v.into_iter().map(abs).collect::<Result<Vec<_>>>();
    // A side that is neither `current` nor a generation's number is an export file.
    let side = |s: String| -> Result<String> {
        match profile_ref(&s) {
            ProfileRef::Export(path) => abs(path)?
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{s}: the working directory's path is not UTF-8; name the export by an absolute path")),
            ProfileRef::Current | ProfileRef::Generation(_) => Ok(s),
        }
    };
    Ok(match command {
        Command::Check { paths, fast } => Command::Check {
            paths: all(paths)?,
            fast,
        },
        Command::Diff { a, b } => Command::Diff {
            a: side(a)?,
            b: side(b)?,
        },
        Command::Accept {
            paths,
            all: every,
            reason,
            passphrase,
        } => Command::Accept {
            paths: all(paths)?,
            all: every,
            reason,
            passphrase,
        },
        Command::Scan {
            paths,
            rules,
            hashlist,
            quarantine,
            preamble_only,
        } => Command::Scan {
            paths: all(paths)?,
            rules: rules.map(abs).transpose()?,
            hashlist: hashlist.map(abs).transpose()?,
            quarantine,
            preamble_only,
        },
        Command::RevokeHost { name, reason } => Command::RevokeHost { name, reason },
        Command::ChangePassphrase { current, new } => Command::ChangePassphrase { current, new },
        Command::AcknowledgeHost {
            name,
            digest,
            reason,
        } => Command::AcknowledgeHost {
            name,
            digest,
            reason,
        },
    })
}

/// What `diff` names a side with: `current`, a kept generation's number, else an export
/// file (one reading for the command and for the guard that runs it).
pub fn profile_ref(side: &str) -> ProfileRef {
    if side == "current" {
        ProfileRef::Current
    } else if let Ok(generation) = side.parse::<u64>() {
        ProfileRef::Generation(generation)
    } else {
        ProfileRef::Export(PathBuf::from(side))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request line of `len` bytes (JSON padded with spaces before its newline).
    fn request_of(len: usize) -> Vec<u8> {
        let mut line =
            br#"{"command":"check","paths":[],"fast":true,"json":false,"sudo_user":null}"#.to_vec();
        line.resize(len - 1, b' ');
        line.push(b'\n');
        line
    }

    fn read(bytes: Vec<u8>) -> Result<WireRequest, String> {
        let (client, server) = UnixStream::pair().expect("pair");
        let writer = std::thread::spawn(move || {
            let mut client = client;
            let _ = client.write_all(&bytes);
        });
        let result = read_request(&server);
        drop(server);
        let _ = writer.join();
        result
    }

    #[test]
    fn a_request_is_read_up_to_its_limit_and_refused_past_it() {
        let limit = usize::try_from(MAX_CONTROL_REQUEST_BYTES).expect("fits");
        assert!(read(request_of(limit)).is_ok());
        let refused = read(request_of(limit + 1)).expect_err("past the limit");
        assert!(refused.contains("MAX_CONTROL_REQUEST_BYTES"), "{refused}");
    }
}
