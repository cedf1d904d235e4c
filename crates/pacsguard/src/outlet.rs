//! Standard output and standard error as best-effort outlets beside the trail (issue 16).
//!
//! `watch`, `serve` and `gateway` print each record as it happens, but the record is the
//! trail's: a stdout nobody reads (`pacsguard gateway | (sleep 3600)`, a full 64 KiB pipe),
//! or one read slowly (a SIEM forwarder, `jq`, a line a second), must never hold up the
//! thread that writes the trail, nor an association. Lines go into a queue bounded in
//! bytes ([`OUTLET_QUEUE_BYTES`]) written by a thread of its own; handing a line in never
//! waits. The queue absorbs a burst (the real-time guard's are tens of thousands of
//! lines) for a reader that keeps reading, however slowly; a line that does not fit is
//! dropped and counted at once (session 16 made a full queue wait for a reader still
//! reading: a live reader then paced the trail's writer to its own speed). The count is
//! said — on stderr and as a record on the trail — when stdout moves again (at most once
//! per [`OUTLET_DROP_REPORT_INTERVAL`]) and at the stop ([`Outlet::finish`]).
//!
//! What the trail's writer and the associations say on standard error goes through an
//! outlet of its own ([`say`]): a stopped stderr reader must not hold them up either.
//!
//! The thread writes with its own unbuffered handle on the descriptor (a duplicate),
//! never through `std::io::Stdout`: its buffer kept the bytes of a line whose write
//! failed and wrote them with the next line, so a line counted as dropped came out anyway
//! (review s16-r16). It writes only once `poll` says the descriptor takes bytes, at most
//! [`WRITE_BYTES`] at a time (a pipe with room takes that much without blocking), so it
//! is never stuck inside a write: the stop gives up a line it could not write and counts
//! it, and no byte of that line is written afterwards (session 17: a line stuck inside a
//! write was counted as dropped, then written once the reader moved). A line an error cut
//! short (some of its bytes out) is finished before the next one: never half a line, and
//! counted once, as written, or as dropped if it is still cut short at the stop.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Bytes (lines and their newlines) held for a slow or stalled reader; a line that does
/// not fit is dropped and counted, never waited for. A 50,000-file burst of the
/// real-time guard over archive paths made of 64-character UIDs (about 385 bytes a line,
/// 17 MB; review s17-r16) fits whole, even while the reader is paused; a reader that
/// stopped costs at most this much memory.
pub const OUTLET_QUEUE_BYTES: usize = 32 << 20;

/// While stdout moves again after drops, the count is said at most this often.
pub const OUTLET_DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// How long the stop waits for the queued lines to reach stdout before they are counted
/// as dropped (a stdout nobody reads never takes them).
pub const OUTLET_STOP_WAIT: Duration = Duration::from_secs(2);

/// At most this many bytes per write: POSIX's `PIPE_BUF` on Linux, what a pipe that
/// `poll` says is writable takes without blocking.
pub const WRITE_BYTES: usize = 4096;

/// How long the thread waits for the descriptor at a time before it looks whether the
/// stop gave its line up.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Test-only, and only in a debug build (`cfg!(debug_assertions)`: never the shipped
/// release binary): the stdout queue holds this many bytes instead of
/// [`OUTLET_QUEUE_BYTES`], so a test fills it with a few instances. Said at start.
pub const TEST_QUEUE_BYTES_VAR: &str = "PACSGUARD_TEST_OUTLET_QUEUE_BYTES";

/// The queue's size: [`OUTLET_QUEUE_BYTES`], or in a debug build [`TEST_QUEUE_BYTES_VAR`]
/// (announced).
fn queue_bytes(command: &str) -> usize {
    if !cfg!(debug_assertions) {
        return OUTLET_QUEUE_BYTES;
    }
    let Some(bytes) = std::env::var(TEST_QUEUE_BYTES_VAR)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return OUTLET_QUEUE_BYTES;
    };
    let _ = writeln!(
        io::stderr(),
        "pacsguard {command}: TEST HOOK: standard output's queue holds {bytes} byte(s) (a debug build, {TEST_QUEUE_BYTES_VAR}); never in production"
    );
    bytes
}

/// Says a count of dropped lines (the detail of a trail record): called by the outlet's
/// thread when stdout moves again.
pub type Report = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Bytes in `queue`, newlines included.
    bytes: usize,
    /// Dropped and not yet said.
    unsaid: u64,
    /// Taking nothing more (the stop).
    closed: bool,
    /// Lines in the thread's hands now (a line an error cut short and the next: 2).
    writing: u64,
    /// Inside a write call now (short: the descriptor said it takes the bytes).
    in_write: bool,
    /// The stop counted what the thread holds as dropped: not a byte more of it is
    /// written.
    given_up: bool,
    /// The thread has ended.
    ended: bool,
    said_at: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    command: &'static str,
    /// What it writes to, in the words said about drops: "standard output".
    what: &'static str,
    /// [`OUTLET_QUEUE_BYTES`] (a test's own in a debug build).
    capacity: usize,
    /// The file it writes to, when known: another outlet on the same one (`2>&1`) waits
    /// for a line of this one to be whole before it writes ([`Claim`]).
    file: Option<FileId>,
}

/// A file as (device, inode): stdout and stderr that are one pipe, tty or file (`2>&1`)
/// have the same.
type FileId = (u64, u64);

/// Files on which an outlet's thread is writing a line now, piece by piece: a line
/// longer than [`WRITE_BYTES`] takes several writes, and another outlet on the same file
/// must not write between them (review s17-r16: a stderr notice split a JSON record in
/// two on a `2>&1` pipe).
static CLAIMS: Mutex<Vec<FileId>> = Mutex::new(Vec::new());
static CLAIMED: Condvar = Condvar::new();

/// The file of an outlet, held while one line is written; released when dropped.
struct Claim(Option<FileId>);

impl Claim {
    /// Waits until no other outlet writes a line on `shared`'s file, then holds it;
    /// `None` when the stop gave this outlet's line up meanwhile.
    fn take(shared: &Shared) -> Option<Claim> {
        Claim::take_on(shared.file, || shared.lock().given_up)
    }

    /// Waits until no outlet writes a line on `file`, then holds it; `None` once
    /// `gave_up` says so.
    fn take_on(file: Option<FileId>, gave_up: impl Fn() -> bool) -> Option<Claim> {
        let Some(id) = file else {
            return Some(Claim(None));
        };
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        while claims.contains(&id) {
            if gave_up() {
                return None;
            }
            claims = CLAIMED
                .wait_timeout(claims, WAIT_SLICE)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        claims.push(id);
        Some(Claim(Some(id)))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
            claims.retain(|c| *c != id);
            drop(claims);
            CLAIMED.notify_all();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The text said for `n` dropped lines of standard output.
pub fn dropped_text(n: u64) -> String {
    dropped_text_of(n, "standard output")
}

fn dropped_text_of(n: u64, what: &str) -> String {
    format!(
        "{n} line(s) of {what} were DROPPED: it did not take them (a reader that stalled or stopped); what they said is on the trail"
    )
}

/// Where the thread writes: a descriptor without a buffer of its own.
trait Sink: io::Write {
    /// Whether a write of up to [`WRITE_BYTES`] is taken without blocking, waiting up to
    /// `within` for it.
    fn ready(&mut self, within: Duration) -> bool;
}

/// A descriptor's line queue and the thread that writes it.
pub struct Outlet {
    shared: Arc<Shared>,
}

/// The standard output's outlet of this process, for the error said at its exit
/// ([`last_line`]): held here, as its command's own handle is gone by then.
static STDOUT: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// The standard error's outlet ([`say`]), started at its first line.
static STDERR: OnceLock<Arc<Outlet>> = OnceLock::new();

impl Outlet {
    /// Starts the stdout outlet's thread; `report` records a count said when stdout moves
    /// again.
    pub fn start(command: &'static str, report: Report) -> Arc<Outlet> {
        let outlet = Outlet::start_on(
            (io::stdout().as_fd().try_clone_to_owned(), "standard output"),
            (command, queue_bytes(command)),
            report,
        );
        *STDOUT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&outlet.shared));
        outlet
    }

    fn start_on(
        (fd, what): (io::Result<OwnedFd>, &'static str),
        (command, capacity): (&'static str, usize),
        report: Report,
    ) -> Arc<Outlet> {
        let mut id = None;
        let open: Box<dyn Fn() -> Unbuffered + Send> = match fd {
            Ok(fd) => {
                let file = Arc::new(std::fs::File::from(fd));
                id = file.metadata().ok().map(|m| {
                    use std::os::unix::fs::MetadataExt as _;
                    (m.dev(), m.ino())
                });
                Box::new(move || Unbuffered(Some(Arc::clone(&file))))
            }
            Err(e) => {
                // No descriptor left: every line is refused, counted and said.
                let _ = writeln!(
                    io::stderr(),
                    "pacsguard {command}: {what} cannot be written ({e}); lines are counted as dropped"
                );
                Box::new(|| Unbuffered(None))
            }
        };
        Outlet::start_with_file((command, what, capacity), report, open, id)
    }

    #[cfg(test)]
    fn start_with<W: Sink + 'static>(
        names: (&'static str, &'static str, usize),
        report: Report,
        open: Box<dyn Fn() -> W + Send>,
    ) -> Arc<Outlet> {
        Outlet::start_with_file(names, report, open, None)
    }

    fn start_with_file<W: Sink + 'static>(
        (command, what, capacity): (&'static str, &'static str, usize),
        report: Report,
        open: Box<dyn Fn() -> W + Send>,
        file: Option<FileId>,
    ) -> Arc<Outlet> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            command,
            what,
            capacity,
            file,
        });
        let theirs = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("outlet".into())
            .spawn(move || write_lines(&theirs, &report, &*open));
        if let Err(e) = spawned {
            // No thread: every line is dropped and counted, said at the stop.
            let _ = writeln!(
                io::stderr(),
                "pacsguard {command}: {what} cannot be written (no thread: {e}); lines are counted as dropped"
            );
            let mut state = shared.lock();
            state.closed = true;
            state.ended = true;
        }
        Arc::new(Outlet { shared })
    }

    /// Hands a line (without its newline) to the descriptor. Never waits: a line the
    /// queue has no room for ([`OUTLET_QUEUE_BYTES`]) is dropped and counted.
    pub fn line(&self, line: String) {
        let size = line.len() + 1;
        let mut state = self.shared.lock();
        if state.closed || state.bytes.saturating_add(size) > self.shared.capacity {
            state.unsaid += 1;
            return;
        }
        state.bytes += size;
        state.queue.push_back(line);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// The stop: takes nothing more, waits up to [`OUTLET_STOP_WAIT`] for the queue to
    /// reach the descriptor, and returns the lines dropped and not yet said (what is still
    /// queued then, and the line the thread could not write, among them: it writes no
    /// more of it). The caller says it.
    pub fn finish(&self) -> u64 {
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.wake.notify_all();
        state = self.wait_while(state, OUTLET_STOP_WAIT, |s| !s.ended);
        if !state.ended {
            // Given up: the thread writes nothing more of what it holds. A write call
            // already under way is short (the descriptor said it takes the bytes).
            state.given_up = true;
            self.shared.wake.notify_all();
            state = self.wait_while(state, OUTLET_STOP_WAIT, |s| s.in_write);
        }
        // `writing` is the thread's until it finishes a line (then 0): a line given up
        // half out is still counted once the thread ended (review s17-r16: it ended
        // between two pieces before this looked, and the line was counted nowhere).
        let stuck = state.queue.len() as u64 + state.writing;
        state.queue.clear();
        state.bytes = 0;
        state.writing = 0;
        let n = state.unsaid + stuck;
        state.unsaid = 0;
        n
    }

    /// Waits up to `within` while `cond` holds.
    fn wait_while<'a>(
        &self,
        mut state: std::sync::MutexGuard<'a, State>,
        within: Duration,
        cond: impl Fn(&State) -> bool,
    ) -> std::sync::MutexGuard<'a, State> {
        let deadline = Instant::now() + within;
        while cond(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state
    }

    /// Waits up to `within` for what is queued to be written, without stopping; the
    /// lines dropped and not yet said (taken: the caller says them).
    fn drain(&self, within: Duration) -> u64 {
        let state = self.shared.lock();
        let mut state = self.wait_while(state, within, |s| {
            !s.ended && (!s.queue.is_empty() || s.writing > 0)
        });
        std::mem::take(&mut state.unsaid)
    }
}

/// Writes `prefix` and `text` as one line on standard error straight away (the few
/// lines that do not go through [`say`]: the second stop signal, the outlet's own
/// notices, `serve`'s messages).
pub fn direct(prefix: &str, text: &str) {
    direct_to(&io::stderr(), prefix, text);
}

/// [`direct`] on any descriptor.
fn direct_to(fd: &impl std::os::fd::AsFd, prefix: &str, text: &str) {
    let Ok(fd) = fd.as_fd().try_clone_to_owned() else {
        return;
    };
    let file = std::fs::File::from(fd);
    // One write of the whole line (a pipe takes up to `PIPE_BUF` bytes at once, never
    // mixed with another writer's), after any outlet's line on the same file is whole:
    // `writeln!` wrote each piece of the format on its own, and a stdout record landed
    // between them (`2>&1`, review s17-r16).
    let line = format!("{prefix}{text}\n");
    let id = file.metadata().ok().map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        (m.dev(), m.ino())
    });
    // An outlet's line is given up at its stop at the latest: waited for, at most that.
    let deadline = Instant::now() + OUTLET_STOP_WAIT + OUTLET_STOP_WAIT;
    let _claim = Claim::take_on(id, || Instant::now() >= deadline);
    let _ = (&file).write_all(line.as_bytes());
}

/// Says `line` (without its newline) on standard error through its outlet: never waits
/// for a reader of stderr. What it cannot take is counted, said when it moves again and
/// recorded at the stop ([`said_at_stop`]).
pub fn say(line: String) {
    let outlet = STDERR.get_or_init(|| {
        Outlet::start_on(
            (io::stderr().as_fd().try_clone_to_owned(), "standard error"),
            ("stderr", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
        )
    });
    outlet.line(line);
}

/// The end of the process: what was said on stderr is written, waiting up to
/// [`OUTLET_STOP_WAIT`] for a reader; what it cannot take is said lost (directly: there
/// is nothing left to hold up).
pub fn end_of_process() {
    if let Some(outlet) = STDERR.get() {
        let n = outlet.finish();
        if n > 0 {
            direct("pacsguard: ", &dropped_text_of(n, "standard error"));
        }
    }
}

/// What stderr's outlet dropped and has not said yet, once it was given
/// [`OUTLET_STOP_WAIT`] to take what it holds (it goes on taking lines): the text to say
/// and record, if any.
pub fn stderr_drops() -> Option<String> {
    let n = STDERR.get().map_or(0, |e| e.drain(OUTLET_STOP_WAIT));
    (n > 0).then(|| dropped_text_of(n, "standard error"))
}

/// Whether lines went through the stderr outlet in this process: the error said at the
/// exit then follows them through it ([`say`]), in order.
pub fn saying() -> bool {
    STDERR.get().is_some()
}

/// The last line of a command that printed through the stdout outlet (the `--json` error
/// at its exit): after every line handed in before it, never through `std::io::Stdout`
/// beside the outlet's thread, and never waiting longer than [`OUTLET_STOP_WAIT`] for a
/// stalled stdout. `false` when no outlet was started (the caller prints it itself).
pub fn last_line(line: String) -> bool {
    let shared = STDOUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(Arc::clone);
    let Some(shared) = shared else {
        return false;
    };
    let outlet = Outlet { shared };
    let open = {
        let mut state = outlet.shared.lock();
        if !state.closed {
            // Queued behind what is still waiting (room or not: it is the last).
            state.bytes += line.len() + 1;
            state.queue.push_back(line);
            drop(state);
            outlet.shared.wake.notify_all();
            let n = outlet.finish();
            if n > 0 {
                direct(
                    &format!("pacsguard {}: ", outlet.shared.command),
                    &dropped_text(n),
                );
            }
            return true;
        }
        state.ended
    };
    // Stopped already: its thread ended (all written), or stdout did not move at the
    // stop and the line is not waited for again.
    let written = open
        && io::stdout().as_fd().try_clone_to_owned().is_ok_and(|fd| {
            let mut out = Unbuffered(Some(Arc::new(std::fs::File::from(fd))));
            let mut buf = line.into_bytes();
            buf.push(b'\n');
            let deadline = Instant::now() + OUTLET_STOP_WAIT;
            let mut done = 0;
            while done < buf.len() && Instant::now() < deadline {
                if !out.ready(WAIT_SLICE) {
                    continue;
                }
                let end = buf.len().min(done + WRITE_BYTES);
                match out.write(&buf[done..end]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            done == buf.len()
        });
    if !written {
        direct(
            &format!("pacsguard {}: ", outlet.shared.command),
            &dropped_text(1),
        );
    }
    true
}

/// A descriptor without a buffer of its own (see the module's note); `None`: none could
/// be had, every write fails.
struct Unbuffered(Option<Arc<std::fs::File>>);

impl io::Write for Unbuffered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            Some(file) => (&**file).write(buf),
            None => Err(io::Error::other("no descriptor")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Unbuffered {
    fn ready(&mut self, within: Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(file) = &self.0 else {
            return true; // the write fails and is counted
        };
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLOUT)];
        let timeout = PollTimeout::try_from(within).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            // Writable, or an error or hang-up the write will report (and is counted).
            Ok(n) if n > 0 => true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => false,
            // poll itself failed (not seen): the write says what is wrong.
            Err(_) => true,
        }
    }
}

/// Writes `buf` in pieces the descriptor takes without blocking, until done or an
/// error: how many bytes went out; `None` when the stop gave the line up (from then on
/// not a byte more of it is written).
fn write_ready<W: Sink>(shared: &Shared, out: &mut W, buf: &[u8]) -> Option<usize> {
    // Held until the line is whole: no other outlet's line between its pieces.
    let _claim = Claim::take(shared)?;
    let mut done = 0;
    while done < buf.len() {
        let ready = out.ready(WAIT_SLICE);
        {
            let mut state = shared.lock();
            if state.given_up {
                return None;
            }
            if !ready {
                continue;
            }
            state.in_write = true;
        }
        let end = buf.len().min(done + WRITE_BYTES);
        let result = out.write(&buf[done..end]);
        shared.lock().in_write = false;
        shared.wake.notify_all();
        match result {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Some(done)
}

/// The outlet's thread: writes each queued line, counts what the descriptor refuses,
/// says the count when it moves again, ends once closed and empty (or given up by the
/// stop). `open` must not buffer: a byte it takes is out.
fn write_lines<W: Sink>(shared: &Shared, report: &Report, open: &dyn Fn() -> W) {
    // The rest of a line an error cut short: written before the next line, which is
    // dropped while it cannot be.
    let mut torn: Vec<u8> = Vec::new();
    loop {
        let mut state = shared.lock();
        let line = loop {
            if state.given_up {
                // `finish` counted what this thread held.
                state.ended = true;
                drop(state);
                shared.wake.notify_all();
                return;
            }
            if let Some(line) = state.queue.pop_front() {
                state.bytes = state.bytes.saturating_sub(line.len() + 1);
                break line;
            }
            if state.closed {
                // Still cut short at the stop: half of it is out, it is counted dropped.
                state.unsaid += u64::from(!torn.is_empty());
                state.ended = true;
                drop(state);
                shared.wake.notify_all();
                return;
            }
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        let rest = torn.len();
        state.writing = 1 + u64::from(rest > 0);
        drop(state);
        let mut buf = std::mem::take(&mut torn);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let Some(written) = write_ready(shared, &mut open(), &buf) else {
            continue; // given up: ends at the top of the loop
        };
        let mut state = shared.lock();
        state.writing = 0;
        if written < rest {
            // The line cut short is still not finished: this one is dropped.
            torn = buf[written..rest].to_vec();
            state.unsaid += 1;
            continue;
        }
        if written < buf.len() {
            if written > rest {
                // Cut short: finished before the next line, or counted at the stop.
                torn = buf[written..].to_vec();
            } else {
                state.unsaid += 1;
            }
            continue;
        }
        let due = state
            .said_at
            .is_none_or(|t| t.elapsed() >= OUTLET_DROP_REPORT_INTERVAL);
        if state.unsaid > 0 && due && !state.closed {
            let n = std::mem::take(&mut state.unsaid);
            state.said_at = Some(Instant::now());
            drop(state);
            let text = dropped_text_of(n, shared.what);
            // Through stderr's outlet (its own drops too: queued behind this line).
            say(format!("pacsguard {}: {text}", shared.command));
            report(&text);
        }
    }
}

/// A [`Report`] that hands the count to the guard's inbox (the watcher writes it to the
/// trail); an inbox that takes nothing more has it said on stderr only.
pub fn to_inbox(
    inbox: pacsguard_events::Inbox,
    actor: pacsguard_events::Actor,
    action: pacsguard_events::Action,
) -> Report {
    Box::new(move |text: &str| {
        let event = pacsguard_events::Event::new(
            actor.clone(),
            action,
            pacsguard_events::Outcome::Failure,
            text.to_owned(),
        );
        if let Err(e) = inbox.push(event) {
            say(format!(
                "pacsguard: the count of dropped output lines is not on the trail ({e})"
            ));
        }
    })
}

/// The stop on an error: what `outlet` dropped and has not said yet, said on stderr only
/// (the trail's writer is the one that failed).
pub fn said_on_stderr(outlet: &Outlet, command: &str) {
    let n = outlet.finish();
    if n > 0 {
        say(format!("pacsguard {command}: {}", dropped_text(n)));
    }
}

/// The stop: what `outlet` (stdout) and stderr's outlet dropped and have not said yet,
/// said on stderr and recorded (and signed) by `session`, the trail's writer. Stderr is
/// given [`OUTLET_STOP_WAIT`] to take what it holds, and goes on taking lines.
pub fn said_at_stop(
    session: &mut pacsguard_engine::Session,
    outlet: &Outlet,
    command: &str,
    action: pacsguard_events::Action,
) -> Result<(), pacsguard_engine::EngineError> {
    let n = outlet.finish();
    let mut texts = Vec::new();
    if n > 0 {
        texts.push(dropped_text(n));
    }
    texts.extend(stderr_drops());
    if texts.is_empty() {
        return Ok(());
    }
    for text in &texts {
        say(format!("pacsguard {command}: {text}"));
    }
    session.record_events(
        texts
            .into_iter()
            .map(|text| {
                pacsguard_events::Event::new(
                    session.actor().clone(),
                    action,
                    pacsguard_events::Outcome::Failure,
                    text,
                )
            })
            .collect(),
    )?;
    session.sign()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A writer that is not ready (a full pipe) while `stalled`, and keeps what it took.
    #[derive(Clone)]
    struct Gate {
        stalled: Arc<(Mutex<bool>, Condvar)>,
        taken: Arc<Mutex<Vec<u8>>>,
        entered: Arc<AtomicBool>,
    }

    impl io::Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.taken.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Gate {
        fn ready(&mut self, within: Duration) -> bool {
            self.entered.store(true, Ordering::SeqCst);
            let (lock, cvar) = &*self.stalled;
            let stalled = lock.lock().expect("lock");
            let (stalled, _) = cvar
                .wait_timeout_while(stalled, within, |s| *s)
                .expect("wait");
            !*stalled
        }
    }

    impl Gate {
        fn open(&self) {
            let (lock, cvar) = &*self.stalled;
            *lock.lock().expect("lock") = false;
            cvar.notify_all();
        }
    }

    fn gate() -> Gate {
        Gate {
            stalled: Arc::new((Mutex::new(true), Condvar::new())),
            taken: Arc::new(Mutex::new(Vec::new())),
            entered: Arc::new(AtomicBool::new(false)),
        }
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn newlines(taken: &Mutex<Vec<u8>>) -> usize {
        taken
            .lock()
            .expect("lock")
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    /// A writer that takes a line after `pause`: slower than lines are handed in, but
    /// always reading.
    struct Paced(Arc<Mutex<Vec<u8>>>, Duration);

    impl io::Write for Paced {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.1);
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Paced {
        fn ready(&mut self, _: Duration) -> bool {
            true
        }
    }

    fn paced(pause: Duration) -> (Arc<Outlet>, Arc<Mutex<Vec<u8>>>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let theirs = Arc::clone(&taken);
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
            Box::new(move || Paced(Arc::clone(&theirs), pause)),
        );
        (outlet, taken)
    }

    /// A reader slower than a burst but still reading gets every line of a burst, in
    /// order, and nothing is counted dropped (the real-time guard's 50,000-file bursts
    /// lost lines to a queue that dropped whenever it held 256 lines).
    #[test]
    fn a_slow_reader_that_keeps_reading_gets_every_line_of_a_burst() {
        let (outlet, taken) = paced(Duration::from_millis(1));
        let lines = 2000;
        for i in 0..lines {
            outlet.line(format!("line {i}"));
        }
        wait_for("every line written", || newlines(&taken) == lines);
        assert_eq!(outlet.finish(), 0, "nothing dropped");
        let text = String::from_utf8(taken.lock().expect("lock").clone()).expect("utf-8");
        let expected: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    /// Session 17: a reader slow but live (a line every 100 ms, never stalled) paced who
    /// hands lines in — the trail's writer and the associations — once a burst filled
    /// the queue. The burst is taken at once; the reader still gets every line.
    #[test]
    fn a_slow_but_live_reader_never_paces_who_hands_lines_in() {
        let (outlet, taken) = paced(Duration::from_millis(100));
        let lines = 30;
        for i in 0..lines {
            outlet.line(format!("line {i}"));
        }
        // Handed in while the reader had taken at most a few: nobody waited for it.
        let by_then = newlines(&taken);
        assert!(
            by_then < 5,
            "the caller waited until the reader had taken {by_then} of {lines} lines"
        );
        wait_for("every line written", || newlines(&taken) == lines);
        assert_eq!(outlet.finish(), 0, "nothing dropped");
    }

    /// The queue is bounded in bytes ([`OUTLET_QUEUE_BYTES`]): a line that does not fit
    /// is dropped and counted at once, a shorter one that fits is still taken.
    #[test]
    fn a_line_past_the_queues_bytes_is_dropped_and_counted_at_once() {
        let out = gate();
        let writer = out.clone();
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let kept = Arc::clone(&reports);
        let outlet = Outlet::start_with(
            ("test", "standard output", 100),
            Box::new(move |t| kept.lock().expect("lock").push(t.to_owned())),
            Box::new(move || writer.clone()),
        );
        outlet.line("held by the thread".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread waits on stdout", || {
            entered.load(Ordering::SeqCst)
        });
        outlet.line("x".repeat(59)); // 60 bytes with its newline: queued
        outlet.line("y".repeat(59)); // 120 > 100: dropped
        outlet.line("z".repeat(39)); // 100: fits exactly
        assert_eq!(outlet.shared.lock().unsaid, 1);
        out.open();
        wait_for("written", || newlines(&out.taken) == 3);
        wait_for("the drop said", || {
            !reports.lock().expect("lock").is_empty()
        });
        assert_eq!(*reports.lock().expect("lock"), vec![dropped_text(1)]);
        assert_eq!(outlet.finish(), 0);
        let text = String::from_utf8(out.taken.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "held by the thread\n{}\n{}\n",
                "x".repeat(59),
                "z".repeat(39)
            )
        );
        const { assert!(OUTLET_QUEUE_BYTES >= 8 << 20, "several MiB: a burst fits") };
    }

    /// A stalled stdout never holds up who hands lines in; every line is written or
    /// counted, never both; the count is said when stdout moves again and at the stop.
    #[test]
    fn a_stalled_stdout_drops_and_counts_lines_and_says_it_when_it_moves_again() {
        const QUEUED: usize = 10;
        let out = gate();
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let kept = Arc::clone(&reports);
        let writer = out.clone();
        // "line NNN\n": 9 bytes a line.
        let outlet = Outlet::start_with(
            ("test", "standard output", QUEUED * 9),
            Box::new(move |t| kept.lock().expect("lock").push(t.to_owned())),
            Box::new(move || writer.clone()),
        );
        outlet.line("first".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread waits on stdout", || {
            entered.load(Ordering::SeqCst)
        });
        // The thread holds "first": the queue holds QUEUED more; the rest are dropped
        // without waiting.
        let extra = 7;
        for i in 0..QUEUED + extra {
            outlet.line(format!("line {i:03}"));
        }
        assert!(
            reports.lock().expect("lock").is_empty(),
            "nothing moved yet"
        );
        // Stdout moves again: the count is said once, all queued lines are written.
        out.open();
        wait_for("every queued line written", || {
            newlines(&out.taken) == QUEUED + 1
        });
        wait_for("the drop said", || {
            !reports.lock().expect("lock").is_empty()
        });
        assert_eq!(
            *reports.lock().expect("lock"),
            vec![dropped_text(extra as u64)]
        );
        // Within the interval a new drop is not said by the thread; the stop says it.
        assert_eq!(outlet.finish(), 0, "all said, all written");
        outlet.line("after the stop".into());
        assert_eq!(
            outlet.finish(),
            1,
            "a line handed in after the stop is counted"
        );
        assert_eq!(newlines(&out.taken), QUEUED + 1);
    }

    /// At the stop, what a stdout that never moves still holds is counted: the queue and
    /// the line the thread could not write.
    #[test]
    fn the_stop_counts_what_a_stdout_that_never_moves_still_holds() {
        let out = gate();
        let writer = out.clone();
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
            Box::new(move || writer.clone()),
        );
        outlet.line("stuck".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread waits on stdout", || {
            entered.load(Ordering::SeqCst)
        });
        for i in 0..3 {
            outlet.line(format!("queued {i}"));
        }
        assert_eq!(outlet.finish(), 4, "3 queued + 1 stuck");
        out.open();
    }

    /// Session 17: a line stuck in a write at the stop was counted as dropped, and
    /// written all the same once stdout moved again: said lost and printed.
    #[test]
    fn a_line_counted_as_dropped_at_the_stop_is_never_written_after() {
        let out = gate();
        let writer = out.clone();
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
            Box::new(move || writer.clone()),
        );
        outlet.line("stuck".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread waits on stdout", || {
            entered.load(Ordering::SeqCst)
        });
        assert_eq!(outlet.finish(), 1, "counted as dropped");
        out.open();
        wait_for("the thread ended", || outlet.shared.lock().ended);
        assert!(
            out.taken.lock().expect("lock").is_empty(),
            "a line counted as dropped was written after all: {:?}",
            String::from_utf8_lossy(&out.taken.lock().expect("lock"))
        );
    }

    /// A writer that takes `room` more bytes (none: any number) and then refuses with
    /// ENOSPC: a file system that fills up and is freed again.
    #[derive(Clone, Default)]
    struct Disk {
        room: Arc<Mutex<Option<usize>>>,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl io::Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut room = self.room.lock().expect("lock");
            let n = room.map_or(buf.len(), |r| r.min(buf.len()));
            if n == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            if let Some(r) = room.as_mut() {
                *r -= n;
            }
            self.taken
                .lock()
                .expect("lock")
                .extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Disk {
        fn ready(&mut self, _: Duration) -> bool {
            true // a regular file: always "writable", the write says ENOSPC
        }
    }

    /// Review s16-r16: a full file system cut a line short (half of it out) and refused
    /// the next; once freed, the line cut short is finished before the next one (never
    /// half a line), and only the line refused is counted (once) and said.
    #[test]
    fn a_line_a_full_disk_cut_short_is_finished_and_only_the_refused_one_is_counted() {
        let disk = Disk::default();
        *disk.room.lock().expect("lock") = Some(5);
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let kept = Arc::clone(&reports);
        let writer = disk.clone();
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(move |t| kept.lock().expect("lock").push(t.to_owned())),
            Box::new(move || writer.clone()),
        );
        let idle = || {
            let state = outlet.shared.lock();
            state.queue.is_empty() && state.writing == 0
        };
        outlet.line("line-one".into());
        wait_for("line-one cut short", || {
            disk.taken.lock().expect("lock").len() == 5 && idle()
        });
        outlet.line("line-two".into());
        wait_for("line-two refused", || {
            outlet.shared.lock().unsaid == 1 && idle()
        });
        *disk.room.lock().expect("lock") = None;
        outlet.line("line-three".into());
        wait_for("the drop said", || {
            !reports.lock().expect("lock").is_empty()
        });
        assert_eq!(outlet.finish(), 0);
        let taken = String::from_utf8(disk.taken.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(taken, "line-one\nline-three\n");
        assert_eq!(*reports.lock().expect("lock"), vec![dropped_text(1)]);
    }

    /// A line still cut short at the stop is counted dropped, once.
    #[test]
    fn a_line_still_cut_short_at_the_stop_is_counted_once() {
        let disk = Disk::default();
        *disk.room.lock().expect("lock") = Some(3);
        let writer = disk.clone();
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
            Box::new(move || writer.clone()),
        );
        outlet.line("cut".into());
        outlet.line("refused".into());
        wait_for("both handled", || {
            let state = outlet.shared.lock();
            state.queue.is_empty() && state.writing == 0 && state.unsaid == 1
        });
        assert_eq!(outlet.finish(), 2, "1 refused + 1 cut short");
    }

    /// A real pipe nobody reads (shrunk to a page): `poll` says it is full, the thread
    /// waits beside it rather than inside a write, and the stop gives the line up
    /// without a byte of it going out later.
    #[test]
    fn a_full_pipe_is_waited_on_beside_the_write_and_given_up_at_the_stop() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("size");
        let file = Arc::new(std::fs::File::from(OwnedFd::from(writer)));
        let outlet = Outlet::start_with(
            ("test", "standard output", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
            Box::new(move || Unbuffered(Some(Arc::clone(&file)))),
        );
        // 4096 bytes fill the pipe; the next line cannot go.
        outlet.line("a".repeat(4095));
        outlet.line("stuck".into());
        wait_for("the first line written", || {
            let state = outlet.shared.lock();
            state.queue.is_empty() && state.writing == 1
        });
        assert_eq!(outlet.finish(), 1, "the line that could not go");
        wait_for("the thread ended", || outlet.shared.lock().ended);
        drop(outlet);
        let mut read = Vec::new();
        let mut reader = reader;
        std::io::Read::read_to_end(&mut reader, &mut read).expect("read");
        assert_eq!(read.len(), 4096, "only the first line");
    }

    /// `2>&1` (systemd, journald, `| logger`): stdout and stderr are one pipe. A JSON
    /// line longer than [`WRITE_BYTES`] (an attacker's file name: deep directories,
    /// control characters escaped six-fold) goes out in several writes; stderr's outlet
    /// must not write a line of its own between them, or the SIEM gets two broken lines
    /// (review s17-r16).
    #[test]
    fn a_long_stdout_line_is_never_split_by_a_stderr_line_on_the_same_pipe() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let writer = OwnedFd::from(writer);
        let same = writer.try_clone().expect("dup");
        let out = Outlet::start_on(
            (Ok(writer), "standard output"),
            ("test", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
        );
        let err = Outlet::start_on(
            (Ok(same), "standard error"),
            ("test", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
        );
        let long = "x".repeat(40_000);
        let slow = std::thread::spawn(move || {
            let mut reader = reader;
            let mut all = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match std::io::Read::read(&mut reader, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            all
        });
        for i in 0..20 {
            out.line(long.clone());
            for j in 0..20 {
                err.line(format!("pacsguard: notice {i}.{j}"));
            }
        }
        assert_eq!(out.finish(), 0);
        assert_eq!(err.finish(), 0);
        drop(out);
        drop(err);
        let all = String::from_utf8(slow.join().expect("reader")).expect("utf-8");
        let broken: Vec<&str> = all
            .lines()
            .filter(|l| *l != long && !l.starts_with("pacsguard: notice "))
            .map(|l| &l[..l.len().min(40)])
            .collect();
        assert!(broken.is_empty(), "lines split by another: {broken:?}");
        assert_eq!(all.lines().count(), 20 + 400);
    }

    /// `2>&1` again: a line written straight to stderr (`serve`'s messages, the second
    /// stop signal) went out in one write per piece of its format (`"pacsguard serve: "`,
    /// the text, the newline), and a stdout record landed between them: the record then
    /// began with `pacsguard serve: ` and the notice was cut in two (review s17-r16).
    #[test]
    fn a_line_said_straight_to_stderr_is_one_piece_beside_the_stdout_outlet() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let writer = OwnedFd::from(writer);
        let same = writer.try_clone().expect("dup");
        let out = Outlet::start_on(
            (Ok(writer), "standard output"),
            ("test", OUTLET_QUEUE_BYTES),
            Box::new(|_| {}),
        );
        let slow = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut { reader }, &mut all).expect("read");
            all
        });
        let record = format!("{{\"path\":\"{}\"}}", "r".repeat(300));
        let writing = std::thread::spawn({
            let record = record.clone();
            let out = Arc::clone(&out);
            move || {
                for _ in 0..3000 {
                    out.line(record.clone());
                }
            }
        });
        for i in 0..3000 {
            direct_to(
                &same,
                "pacsguard serve: ",
                &format!("notice number {i} of many"),
            );
        }
        writing.join().expect("writer");
        assert_eq!(out.finish(), 0);
        drop(out);
        drop(same);
        let all = String::from_utf8(slow.join().expect("reader")).expect("utf-8");
        let broken: Vec<&str> = all
            .lines()
            .filter(|l| {
                *l != record
                    && !(l.starts_with("pacsguard serve: notice number ")
                        && l.ends_with(" of many"))
            })
            .map(|l| &l[..l.len().min(60)])
            .collect();
        assert!(
            broken.is_empty(),
            "lines split by another: {:?}",
            &broken[..broken.len().min(4)]
        );
        assert_eq!(all.lines().count(), 6000);
    }

    /// A line longer than [`WRITE_BYTES`] whose second piece is inside its write when the
    /// stop gives it up: the thread then ends at once, before the stop looks, and the
    /// line half out was counted neither written nor dropped (review s17-r16).
    #[test]
    fn a_long_line_given_up_between_its_pieces_is_counted_dropped() {
        #[derive(Clone)]
        struct SecondPieceWaits {
            calls: Arc<std::sync::atomic::AtomicUsize>,
            release: Arc<(Mutex<bool>, Condvar)>,
        }
        impl io::Write for SecondPieceWaits {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
                    let (lock, cvar) = &*self.release;
                    let held = lock.lock().expect("lock");
                    drop(cvar.wait_while(held, |r| !*r).expect("wait"));
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Sink for SecondPieceWaits {
            fn ready(&mut self, _: Duration) -> bool {
                true
            }
        }
        let runs: Vec<_> = (0..6)
            .map(|_| {
                std::thread::spawn(|| {
                    let sink = SecondPieceWaits {
                        calls: Arc::default(),
                        release: Arc::default(),
                    };
                    let theirs = sink.clone();
                    let outlet = Outlet::start_with(
                        ("test", "standard output", OUTLET_QUEUE_BYTES),
                        Box::new(|_| {}),
                        Box::new(move || theirs.clone()),
                    );
                    outlet.line("z".repeat(3 * WRITE_BYTES));
                    wait_for("the second piece inside its write", || {
                        sink.calls.load(Ordering::SeqCst) == 2
                    });
                    let stopping = Arc::clone(&outlet);
                    let stop = std::thread::spawn(move || stopping.finish());
                    wait_for("the stop gave the line up", || {
                        outlet.shared.lock().given_up
                    });
                    let (lock, cvar) = &*sink.release;
                    *lock.lock().expect("lock") = true;
                    cvar.notify_all();
                    stop.join().expect("stop")
                })
            })
            .collect();
        for run in runs {
            assert_eq!(run.join().expect("run"), 1, "the line half out is dropped");
        }
    }
}
