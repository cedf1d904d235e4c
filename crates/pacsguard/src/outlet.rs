//! Standard output as a best-effort outlet beside the trail (issue 16).
//!
//! `watch`, `serve` and `gateway` print each record as it happens, but the record is the
//! trail's: a stdout nobody reads (`pacsguard gateway | (sleep 3600)`, a full 64 KiB pipe)
//! must never hold up the thread that writes the trail, nor an association. Lines go into
//! a queue of [`OUTLET_QUEUE_LINES`] written by a thread of its own. A full queue whose
//! reader is still taking lines (slower than a burst: a SIEM forwarder, `jq`) holds the
//! caller until there is room, as a blocking stdout did — nothing is lost to a reader that
//! keeps up in the end; a reader that took nothing for [`OUTLET_STALL_AFTER`] is stalled,
//! and from then on lines it cannot take (or that stdout refuses) are dropped and counted
//! at once. The count is said — on
//! stderr and as a record on the trail — when stdout moves again (at most once per
//! [`OUTLET_DROP_REPORT_INTERVAL`]) and at the stop ([`Outlet::finish`]).
//!
//! The thread writes each line (and its newline) with its own unbuffered handle on the
//! standard output (a duplicate of descriptor 1), never through `std::io::Stdout`: its
//! buffer kept the bytes of a line whose write failed (a full file system, a
//! non-blocking stdout's EAGAIN) and wrote them with the next line, so a line counted as
//! dropped came out anyway (review s16-r16). A line an error cut short (some of its bytes
//! out) is finished before the next one: never half a line, and counted once, as written,
//! or as dropped if it is still cut short at the stop.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::os::fd::AsFd as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines held for a slow or stalled stdout before further ones are dropped (and counted).
pub const OUTLET_QUEUE_LINES: usize = 256;

/// A full queue whose thread has written nothing for this long (a reader that stopped
/// reading) is stalled: lines are dropped instead of waited for. Below it, a full queue
/// holds the caller until there is room, so a live reader slower than a burst gets every
/// line (the real-time guard's bursts are tens of thousands of lines).
pub const OUTLET_STALL_AFTER: Duration = Duration::from_secs(2);

/// While stdout moves again after drops, the count is said at most this often.
pub const OUTLET_DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// How long the stop waits for the queued lines to reach stdout before they are counted
/// as dropped (a stdout nobody reads never takes them).
pub const OUTLET_STOP_WAIT: Duration = Duration::from_secs(2);

/// Test-only, and only in a debug build (`cfg!(debug_assertions)`: never the shipped
/// release binary): the queue holds this many lines instead of [`OUTLET_QUEUE_LINES`], so
/// a test fills it with a few instances rather than hundreds. Said at start.
pub const TEST_QUEUE_LINES_VAR: &str = "PACSGUARD_TEST_OUTLET_QUEUE_LINES";

/// The queue's size: [`OUTLET_QUEUE_LINES`], or in a debug build [`TEST_QUEUE_LINES_VAR`]
/// (announced).
fn queue_lines(command: &str) -> usize {
    if !cfg!(debug_assertions) {
        return OUTLET_QUEUE_LINES;
    }
    let Some(lines) = std::env::var(TEST_QUEUE_LINES_VAR)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return OUTLET_QUEUE_LINES;
    };
    let _ = writeln!(
        io::stderr(),
        "pacsguard {command}: TEST HOOK: standard output's queue holds {lines} line(s) (a debug build, {TEST_QUEUE_LINES_VAR}); never in production"
    );
    lines
}

/// Says a count of dropped lines (the detail of a trail record): called by the outlet's
/// thread when stdout moves again.
pub type Report = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Dropped and not yet said.
    unsaid: u64,
    /// Taking nothing more (the stop).
    closed: bool,
    /// Lines inside the thread's write now (a line an error cut short and the next: 2).
    writing: u64,
    /// The thread has ended.
    ended: bool,
    said_at: Option<Instant>,
    /// When the thread last moved: took a line to write, finished a write, or was handed
    /// a line while idle. `None`: never.
    moved_at: Option<Instant>,
}

impl State {
    /// The thread has not moved for [`OUTLET_STALL_AFTER`]: its reader stopped reading.
    fn stalled(&self) -> bool {
        self.moved_at
            .is_none_or(|t| t.elapsed() >= OUTLET_STALL_AFTER)
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    command: &'static str,
    /// [`OUTLET_QUEUE_LINES`] (a test's own in a debug build).
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The text said for `n` dropped lines.
pub fn dropped_text(n: u64) -> String {
    format!(
        "{n} line(s) of standard output were DROPPED: it did not take them (a reader that stalled or stopped); what they said is on the trail"
    )
}

/// Standard output behind a bounded queue and a thread of its own.
pub struct Outlet {
    shared: Arc<Shared>,
}

impl Outlet {
    /// Starts the outlet's thread; `report` records a count said when stdout moves again.
    pub fn start(command: &'static str, report: Report) -> Arc<Outlet> {
        let stdout: Box<dyn Fn() -> Unbuffered + Send> = match io::stdout()
            .as_fd()
            .try_clone_to_owned()
        {
            Ok(fd) => {
                let file = Arc::new(std::fs::File::from(fd));
                Box::new(move || Unbuffered(Some(Arc::clone(&file))))
            }
            Err(e) => {
                // No descriptor left: every line is refused, counted and said.
                let _ = writeln!(
                    io::stderr(),
                    "pacsguard {command}: standard output cannot be written ({e}); lines are counted as dropped"
                );
                Box::new(|| Unbuffered(None))
            }
        };
        Outlet::start_with((command, queue_lines(command)), report, stdout)
    }

    fn start_with<W: io::Write + 'static>(
        (command, capacity): (&'static str, usize),
        report: Report,
        open: Box<dyn Fn() -> W + Send>,
    ) -> Arc<Outlet> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            command,
            capacity,
        });
        let theirs = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_lines(&theirs, &report, &*open));
        if let Err(e) = spawned {
            // No thread: every line is dropped and counted, said at the stop.
            let _ = writeln!(
                io::stderr(),
                "pacsguard {command}: standard output cannot be written (no thread: {e}); lines are counted as dropped"
            );
            let mut state = shared.lock();
            state.closed = true;
            state.ended = true;
        }
        Arc::new(Outlet { shared })
    }

    /// Hands a line (without its newline) to stdout. Waits for room in a full queue only
    /// while its reader keeps reading (at most [`OUTLET_STALL_AFTER`] after it last
    /// moved); a stalled reader's line is dropped and counted at once.
    pub fn line(&self, line: String) {
        let mut state = self.shared.lock();
        if state.queue.is_empty() && state.writing == 0 {
            // Idle until now: the thread moves as of this line.
            state.moved_at = Some(Instant::now());
        }
        while !state.closed && state.queue.len() >= self.shared.capacity && !state.stalled() {
            let left = state.moved_at.map_or(Duration::ZERO, |t| {
                OUTLET_STALL_AFTER.saturating_sub(t.elapsed())
            });
            state = self
                .shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.closed || state.queue.len() >= self.shared.capacity {
            state.unsaid += 1;
            return;
        }
        state.queue.push_back(line);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// The stop: takes nothing more, waits up to [`OUTLET_STOP_WAIT`] for the queue to
    /// reach stdout, and returns the lines dropped and not yet said (what is still
    /// queued then, and a line stuck inside a write, among them). The caller says it.
    pub fn finish(&self) -> u64 {
        let deadline = Instant::now() + OUTLET_STOP_WAIT;
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.wake.notify_all();
        while !state.ended {
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
        let stuck = state.queue.len() as u64 + if state.ended { 0 } else { state.writing };
        state.queue.clear();
        // A line stuck in a write is counted here; if the write ever returns, the thread
        // counts nothing more (closed), so no line is said twice.
        state.writing = 0;
        let n = state.unsaid + stuck;
        state.unsaid = 0;
        n
    }
}

/// Standard output without a buffer of its own (see the module's note); `None`: none
/// could be had, every write fails.
struct Unbuffered(Option<Arc<std::fs::File>>);

impl io::Write for Unbuffered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            Some(file) => (&**file).write(buf),
            None => Err(io::Error::other("no standard output")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `buf` until done or an error; how many bytes went out.
fn write_some(out: &mut impl io::Write, buf: &[u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match out.write(&buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

/// The outlet's thread: writes each queued line, counts what stdout refuses, says the
/// count when stdout moves again, ends once closed and empty. `open` must not buffer: a
/// byte it takes is out.
fn write_lines<W: io::Write>(shared: &Shared, report: &Report, open: &dyn Fn() -> W) {
    // The rest of a line an error cut short: written before the next line, which is
    // dropped while it cannot be.
    let mut torn: Vec<u8> = Vec::new();
    loop {
        let mut state = shared.lock();
        let line = loop {
            if let Some(line) = state.queue.pop_front() {
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
        state.moved_at = Some(Instant::now());
        drop(state);
        // Room in the queue: a caller may be waiting for it.
        shared.wake.notify_all();
        let mut buf = std::mem::take(&mut torn);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let written = write_some(&mut open(), &buf);
        let mut state = shared.lock();
        if written > 0 {
            state.moved_at = Some(Instant::now());
        }
        if state.closed && state.writing == 0 {
            // `finish` counted these lines already.
            continue;
        }
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
            let text = dropped_text(n);
            let _ = writeln!(io::stderr(), "pacsguard {}: {text}", shared.command);
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
            let _ = writeln!(
                io::stderr(),
                "pacsguard: the count of dropped output lines is not on the trail ({e})"
            );
        }
    })
}

/// The stop on an error: what `outlet` dropped and has not said yet, said on stderr only
/// (the trail's writer is the one that failed).
pub fn said_on_stderr(outlet: &Outlet, command: &str) {
    let n = outlet.finish();
    if n > 0 {
        let _ = writeln!(io::stderr(), "pacsguard {command}: {}", dropped_text(n));
    }
}

/// The stop: what `outlet` dropped and has not said yet, said on stderr and recorded
/// (and signed) by `session`, the trail's writer.
pub fn said_at_stop(
    session: &mut pacsguard_engine::Session,
    outlet: &Outlet,
    command: &str,
    action: pacsguard_events::Action,
) -> Result<(), pacsguard_engine::EngineError> {
    let n = outlet.finish();
    if n == 0 {
        return Ok(());
    }
    let text = dropped_text(n);
    let _ = writeln!(io::stderr(), "pacsguard {command}: {text}");
    session.record_events(vec![pacsguard_events::Event::new(
        session.actor().clone(),
        action,
        pacsguard_events::Outcome::Failure,
        text,
    )])?;
    session.sign()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A writer that blocks while `stalled`, and keeps what it took.
    #[derive(Clone)]
    struct Gate {
        stalled: Arc<(Mutex<bool>, Condvar)>,
        taken: Arc<Mutex<Vec<u8>>>,
        entered: Arc<AtomicBool>,
    }

    impl io::Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            let (lock, cvar) = &*self.stalled;
            let mut stalled = lock.lock().expect("lock");
            while *stalled {
                stalled = cvar.wait(stalled).expect("wait");
            }
            self.taken.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
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

    /// A writer that takes a line now and then, slower than lines are handed in.
    struct Slow(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(1));
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reader slower than a burst but still reading is waited for: every line of a
    /// burst many times the queue reaches it, in order, and nothing is counted dropped
    /// (the real-time guard's 50,000-file bursts lost lines to a queue that dropped
    /// whenever it was full).
    #[test]
    fn a_slow_reader_that_keeps_reading_gets_every_line_of_a_burst() {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let theirs = Arc::clone(&taken);
        let outlet = Outlet::start_with(
            ("test", 4),
            Box::new(|_| {}),
            Box::new(move || Slow(Arc::clone(&theirs))),
        );
        let lines = 200;
        for i in 0..lines {
            outlet.line(format!("line {i}"));
        }
        wait_for("every line written", || {
            taken
                .lock()
                .expect("lock")
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                == lines
        });
        assert_eq!(outlet.finish(), 0, "nothing dropped");
        let text = String::from_utf8(taken.lock().expect("lock").clone()).expect("utf-8");
        let expected: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    /// A stalled stdout never holds up who hands lines in; every line is written or
    /// counted, never both; the count is said when stdout moves again and at the stop.
    #[test]
    fn a_stalled_stdout_drops_and_counts_lines_and_says_it_when_it_moves_again() {
        let out = gate();
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let kept = Arc::clone(&reports);
        let writer = out.clone();
        let outlet = Outlet::start_with(
            ("test", OUTLET_QUEUE_LINES),
            Box::new(move |t| kept.lock().expect("lock").push(t.to_owned())),
            Box::new(move || writer.clone()),
        );
        outlet.line("first".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread is inside its write", || {
            entered.load(Ordering::SeqCst)
        });
        // The thread holds "first" inside the stalled write: the queue holds
        // OUTLET_QUEUE_LINES more; the first line past them waits OUTLET_STALL_AFTER for
        // the reader at most, and the rest are dropped without waiting.
        let extra = 7;
        for i in 0..OUTLET_QUEUE_LINES + extra {
            outlet.line(format!("line {i}"));
        }
        assert!(
            reports.lock().expect("lock").is_empty(),
            "nothing moved yet"
        );
        // Stdout moves again: the count is said once, all queued lines are written.
        {
            let (lock, cvar) = &*out.stalled;
            *lock.lock().expect("lock") = false;
            cvar.notify_all();
        }
        let lines = || {
            String::from_utf8(out.taken.lock().expect("lock").clone())
                .expect("utf-8")
                .lines()
                .count()
        };
        wait_for("every queued line written", || {
            lines() == OUTLET_QUEUE_LINES + 1
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
        assert_eq!(lines(), OUTLET_QUEUE_LINES + 1);
    }

    /// At the stop, what a stdout that never moves still holds is counted: the queue and
    /// the line stuck inside the write.
    #[test]
    fn the_stop_counts_what_a_stdout_that_never_moves_still_holds() {
        let out = gate();
        let writer = out.clone();
        let outlet = Outlet::start_with(
            ("test", OUTLET_QUEUE_LINES),
            Box::new(|_| {}),
            Box::new(move || writer.clone()),
        );
        outlet.line("stuck".into());
        let entered = Arc::clone(&out.entered);
        wait_for("the thread is inside its write", || {
            entered.load(Ordering::SeqCst)
        });
        for i in 0..3 {
            outlet.line(format!("queued {i}"));
        }
        assert_eq!(outlet.finish(), 4, "3 queued + 1 stuck");
        let (lock, cvar) = &*out.stalled;
        *lock.lock().expect("lock") = false;
        cvar.notify_all();
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
            ("test", OUTLET_QUEUE_LINES),
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
            ("test", OUTLET_QUEUE_LINES),
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
}
