//! Where the passphrase of a protected profile-signing key comes from: a terminal prompt
//! (echo off), or a file or descriptor named on the command line. Never an argument value
//! or an environment variable: those are readable by every user in /proc.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{LocalFlags, SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr};
use pacsguard_engine::{EngineError, Home, MAX_PASSPHRASE_BYTES, Passphrase, Session};
use zeroize::Zeroizing;

/// How the command was told to get the passphrase.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub file: Option<PathBuf>,
    pub fd: Option<u32>,
}

impl Source {
    /// The passphrase of the home's existing key.
    pub fn read(&self, home: &Home) -> Result<Passphrase> {
        let what = format!(
            "passphrase of {}",
            pacsguard_events::escape_path(&home.profile_key_path())
        );
        self.get(&what, false)
    }

    /// A new passphrase (asked twice on a terminal).
    pub fn read_new(&self) -> Result<Passphrase> {
        let passphrase = self.get("new passphrase for the profile-signing key", true)?;
        passphrase.check_new()?;
        Ok(passphrase)
    }

    fn get(&self, what: &str, twice: bool) -> Result<Passphrase> {
        hold_secrets()?;
        let text = match (&self.file, self.fd) {
            (Some(_), Some(_)) => {
                return Err(anyhow!(
                    "give the passphrase one way: --passphrase-file or --passphrase-fd"
                ));
            }
            (Some(file), None) => first_line(file)?,
            (None, Some(fd)) => first_line(Path::new(&format!("/proc/self/fd/{fd}")))
                .with_context(|| format!("--passphrase-fd {fd}"))?,
            (None, None) => {
                let first = prompt(&format!("{what}: "))?;
                if twice && *prompt(&format!("{what} again: "))? != *first {
                    return Err(anyhow!("the two passphrases differ; nothing was changed"));
                }
                first
            }
        };
        Ok(Passphrase::new(text)?)
    }
}

/// Makes this process non-dumpable before it holds a passphrase (or the key it opens):
/// no core file of it is written, and another process of the same user (not root) can
/// no longer attach to it or read its memory (`/proc/PID/mem`, ptrace). Once set, it
/// stays for the rest of the process, which is one command (or the guard that received
/// a relayed one).
pub fn hold_secrets() -> Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("cannot make this process non-dumpable before it reads the passphrase")
}

/// The first line of `path` (its newline taken off), read bounded. A regular file that
/// others may read is refused, as `profile.key` itself is: the passphrase is all that
/// stands between a reader and the sealed key (a pipe, `--passphrase-fd` or `<(...)`,
/// is not a file anyone else can open).
fn first_line(path: &Path) -> Result<Zeroizing<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the passphrase from {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the passphrase from {}", path.display()))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    if meta.is_file() && mode & 0o077 != 0 {
        return Err(anyhow!(
            "the passphrase file {} has mode {:04o}: others may read it, and with it the profile-signing key; run chmod 600 (nothing was done)",
            path.display(),
            mode & 0o7777
        ));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PASSPHRASE_BYTES as u64 + 3)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the passphrase from {}", path.display()))?;
    line_of(bytes).with_context(|| format!("the passphrase in {}", path.display()))
}

/// The bytes up to the first newline (a `\r\n` too), as text.
fn line_of(bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let mut line = &bytes[..end];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    if line.is_empty() {
        return Err(anyhow!("is empty"));
    }
    let text = std::str::from_utf8(line).map_err(|_| anyhow!("is not UTF-8 text"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Asks on the controlling terminal with echo off; the terminal is put back as it was,
/// however the prompt ends. The terminal's signal keys are read as bytes while it asks
/// (`ISIG` off): Ctrl-C killed the process with echo still off, and the shell after it
/// showed nothing typed. Now the interrupt (or quit) key puts the terminal back first,
/// then interrupts the process as the key would have (SIGINT: a shell sees 130); the
/// suspend key is ignored while asking (a stopped process would leave echo off too).
/// The line is read a byte at a time (`ICANON` off: a canonical read would wait for
/// the end of the line before the interrupt key is seen), with the terminal's erase,
/// kill and end-of-file keys done here as the terminal does them.
fn prompt(question: &str) -> Result<Zeroizing<String>> {
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            anyhow!(
                "the profile-signing key is protected by a passphrase and there is no terminal to ask it on: give --passphrase-file FILE or --passphrase-fd N"
            )
        })?;
    let saved = tcgetattr(&tty).context("/dev/tty")?;
    let mut quiet = saved.clone();
    quiet
        .local_flags
        .remove(LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::ICANON);
    // Each read returns as soon as one byte is there.
    quiet.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    quiet.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    // The keys the terminal would have made signals of (0: a key not set).
    let key = |which: SpecialCharacterIndices| {
        Some(saved.control_chars[which as usize]).filter(|&c| c != 0)
    };
    let interrupt = [
        key(SpecialCharacterIndices::VINTR),
        key(SpecialCharacterIndices::VQUIT),
    ];
    let suspend = key(SpecialCharacterIndices::VSUSP);
    let erase = [key(SpecialCharacterIndices::VERASE), Some(0x7f), Some(0x08)];
    let kill = key(SpecialCharacterIndices::VKILL);
    let eof = key(SpecialCharacterIndices::VEOF);
    // The signals that end a process, sent while it asks (a `kill`, the terminal hung
    // up): killed with the terminal left without echo, line editing or signal keys
    // (review s11-r14). Held back while it asks, seen on a descriptor beside the
    // terminal, and let through once the terminal is put back: the process still ends
    // as the signal ends it.
    let mut ending = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        ending.add(signal);
    }
    let before = ending
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .context("holding back signals while asking")?;
    let signals =
        match SignalFd::with_flags(&ending, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = before.thread_set_mask();
                return Err(e).context("signalfd");
            }
        };
    if let Err(e) = tcsetattr(&tty, SetArg::TCSAFLUSH, &quiet) {
        let _ = before.thread_set_mask();
        return Err(e).context("/dev/tty");
    }
    let mut interrupted = false;
    let mut signalled = false;
    let mut too_long = false;
    let answer = (|| -> Result<Zeroizing<Vec<u8>>> {
        tty.write_all(question.as_bytes())?;
        tty.flush()?;
        let mut line = Zeroizing::new(Vec::new());
        let mut byte = [0u8; 1];
        // Read to the end of the line however long it is (past MAX_PASSPHRASE_BYTES
        // nothing more is kept, and the line is refused): a paste stopped at the limit left
        // the rest of it to arrive after the terminal was put back, echoed on the
        // screen and read by the shell as its next command (review s11-r14).
        loop {
            let mut ready = [
                PollFd::new(tty.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut ready, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if ready[1].any() == Some(true) {
                // Left pending: it acts once the terminal is put back.
                signalled = true;
                break;
            }
            match tty.read(&mut byte)? {
                0 => break,
                // ICRNL (an input flag, left on) has made Enter's CR a NL already.
                _ if byte[0] == b'\n' || byte[0] == b'\r' => break,
                _ if interrupt.contains(&Some(byte[0])) => {
                    interrupted = true;
                    break;
                }
                _ if suspend == Some(byte[0]) => {}
                _ if eof == Some(byte[0]) => break,
                // Past the limit the line is refused whatever follows.
                _ if too_long => {}
                _ if erase.contains(&Some(byte[0])) => {
                    // One character back: its UTF-8 continuation bytes with it.
                    while line.pop().is_some_and(|b| b & 0xc0 == 0x80) {}
                }
                _ if kill == Some(byte[0]) => line.clear(),
                _ if line.len() >= MAX_PASSPHRASE_BYTES => {
                    too_long = true;
                    line.clear();
                }
                _ => line.push(byte[0]),
            }
        }
        // What ECHONL did in canonical mode: the cursor goes to the next line.
        tty.write_all(b"\n")?;
        Ok(line)
    })();
    let restored = tcsetattr(&tty, SetArg::TCSAFLUSH, &saved);
    drop(signals);
    // A signal held back is delivered here (ended as it ends the process).
    let unmasked = before.thread_set_mask();
    if signalled {
        drop(answer);
        // Still here: the process handles or ignores that signal. Nothing was done.
        return Err(anyhow!(
            "a signal came while asking the passphrase: nothing was done"
        ));
    }
    if interrupted {
        drop(answer);
        // The interrupt key: as the terminal would have.
        let _ = nix::sys::signal::raise(Signal::SIGINT);
        // Still here: the process handles SIGINT itself. Nothing was done.
        return Err(anyhow!(
            "interrupted at the passphrase prompt: nothing was done"
        ));
    }
    let answer = answer.context("/dev/tty")?;
    restored.context("/dev/tty")?;
    unmasked.context("letting signals through after asking")?;
    if too_long {
        return Err(anyhow!(
            "the passphrase typed at the prompt is longer than {MAX_PASSPHRASE_BYTES} bytes (MAX_PASSPHRASE_BYTES)"
        ));
    }
    // Named: a bare "is empty" (Ctrl-D at the prompt) said nothing of what was.
    line_of(answer).context("the passphrase typed at the prompt")
}

/// Opens the home for a command that signs: a protected key is unlocked first (a wrong
/// passphrase stops here, before the home is opened or anything written).
/// What [`change`] found: the passphrase changed, or the home held by a running guard,
/// to which the two passphrases are to be relayed (the current one checked here).
pub enum Changed {
    Done(pacsguard_engine::PassphraseReport),
    HeldByGuard {
        locked: EngineError,
        current: Passphrase,
        new: Passphrase,
    },
}

/// `key passphrase`: the profile-signing key unlocked with its current passphrase (from
/// `current`), then sealed under a new one (from `new`, asked twice on a terminal). The
/// current one is checked before the new one is asked; a new one equal to it is refused.
pub fn change(home: Home, current: &Source, new: &Source) -> Result<Changed> {
    home.require_protected_profile_key()?;
    // One source read twice gives the second read nothing (a pipe) or the same line (a
    // file): refused before either is read (review rv38-lead: the error named the
    // current passphrase's option).
    if current.fd.is_some() && current.fd == new.fd
        || current.file.is_some() && current.file == new.file
    {
        return Err(EngineError::Usage(
            "the new passphrase must come from another file or descriptor than the current one; nothing was changed".into(),
        )
        .into());
    }
    let old = current.read(&home)?;
    let key = home.unlock_profile_key(&old)?;
    let new = new.read_new()?;
    if new.expose() == old.expose() {
        return Err(EngineError::Usage(
            "the new passphrase is the current one; nothing was changed".into(),
        )
        .into());
    }
    let mut session = match Session::open(home) {
        Ok(session) => session,
        Err(locked @ EngineError::Locked { .. }) => {
            return Ok(Changed::HeldByGuard {
                locked,
                current: old,
                new,
            });
        }
        Err(e) => return Err(e.into()),
    };
    session.use_profile_key(key)?;
    Ok(Changed::Done(session.change_profile_key_passphrase(&new)?))
}

pub fn open_signing(home: Home, source: &Source) -> Result<Session> {
    let key = if home.is_profile_key_protected() {
        Some(home.unlock_profile_key(&source.read(&home)?)?)
    } else {
        None
    };
    let mut session = Session::open(home)?;
    if let Some(key) = key {
        session.use_profile_key(key)?;
    }
    Ok(session)
}

/// Like [`open_signing`], but a home held by a running guard is handed back with the
/// passphrase read (the guard unlocks the key itself for the relayed command).
pub fn open_signing_or_relay(
    home: &Home,
    source: &Source,
) -> Result<Result<Session, (EngineError, Option<Passphrase>)>> {
    let (key, passphrase) = if home.is_profile_key_protected() {
        let passphrase = source.read(home)?;
        (
            Some(home.unlock_profile_key(&passphrase)?),
            Some(passphrase),
        )
    } else {
        (None, None)
    };
    match Session::open(home.clone()) {
        Ok(mut session) => {
            if let Some(key) = key {
                session.use_profile_key(key)?;
            }
            Ok(Ok(session))
        }
        Err(e @ EngineError::Locked { .. }) => Ok(Err((e, passphrase))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_passphrase() {
        let line = |b: &[u8]| line_of(Zeroizing::new(b.to_vec())).map(|s| s.to_string());
        assert_eq!(line(b"secret words\n").expect("line"), "secret words");
        assert_eq!(line(b"secret words\r\nmore").expect("line"), "secret words");
        assert_eq!(line(b"no newline").expect("line"), "no newline");
        assert!(line(b"\n").is_err());
        assert!(line(b"\xff\n").is_err());
    }
}
