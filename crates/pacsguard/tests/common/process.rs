//! A long-running `pacsguard` process a test started (`serve`, `watch`): its output read
//! line by line as it comes, waits bounded and for what it says (never a fixed sleep), and a
//! stop that returns everything it said, its last lines included.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Env, pacsguard};

/// How long a guard may take to say it guards (its catch-up, on a loaded machine).
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// How long a stopped process may take to exit and close its output: a stop that does not
/// come is a test failure with what it said, not a hung test run. Generous, as a loaded
/// 2-core CI machine is slow; a stop that works takes a fraction of it.
pub const STOP_WITHIN: Duration = Duration::from_secs(120);

/// How often a wait looks again at what the process said.
const POLL: Duration = Duration::from_millis(50);

/// `pacsguard --home HOME ARGS` (`serve …`, `watch`), returned once it guards.
pub fn guard(env: &Env, args: &[&str]) -> Running {
    guard_as(pacsguard(), env, args)
}

/// [`guard`] run by `command`: the binary under another clock or with fewer capabilities.
pub fn guard_as(mut command: Command, env: &Env, args: &[&str]) -> Running {
    command.arg("--home").arg(&env.home).args(args);
    Running::started(
        command,
        &format!("pacsguard {}", args.join(" ")),
        "watching for changes",
        START_WITHIN,
    )
}

/// A running process, its stdout and stderr collected line by line; killed when dropped.
pub struct Running {
    pub child: Child,
    /// What it is, for failure messages (`serve`, `watch`).
    what: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// Disconnected once both readers reached the end of their pipe: the process's last
    /// line is collected (a reader may lag the exit).
    closed: mpsc::Receiver<()>,
}

impl Running {
    /// Spawns `command` (stdin closed, stdout and stderr read as they come).
    pub fn spawn(command: Command, what: &str) -> Running {
        Running::spawn_reading(command, what, |_| {})
    }

    /// [`Running::spawn`], `on_stdout` given each stdout line too as it comes (a watcher's
    /// findings, taken when printed).
    pub fn spawn_reading(
        mut command: Command,
        what: &str,
        on_stdout: impl FnMut(&str) + Send + 'static,
    ) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let (open, closed) = mpsc::channel();
        let stderr = collect(child.stderr.take().expect("stderr"), open.clone(), |_| {});
        let stdout = collect(child.stdout.take().expect("stdout"), open, on_stdout);
        Running {
            child,
            what: what.to_string(),
            stderr,
            stdout,
            closed,
        }
    }

    /// [`Running::spawn`], returned once it said `line` (within `within`).
    pub fn started(command: Command, what: &str, line: &str, within: Duration) -> Running {
        let running = Running::spawn(command, what);
        running.expect_line(line, within);
        running
    }

    /// All it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("test fixture").clone()
    }

    /// All it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("test fixture").clone()
    }

    /// Whether stderr says `text` within `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> bool {
        poll(timeout, || self.stderr().contains(text))
    }

    /// Whether `done(stdout, stderr)` holds within `timeout`.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&str, &str) -> bool) -> bool {
        poll(timeout, || done(&self.stdout(), &self.stderr()))
    }

    /// Fails the test, with all it said, unless stderr says `text` within `timeout`.
    #[track_caller]
    pub fn expect_line(&self, text: &str, timeout: Duration) {
        assert!(
            self.wait_for(text, timeout),
            "{} did not say {text:?} within {timeout:?}: {}",
            self.what,
            self.stderr()
        );
    }

    /// The rest of the first stderr line after `marker` (trimmed).
    #[track_caller]
    pub fn after(&self, marker: &str) -> String {
        let text = self.stderr();
        let Some(at) = text.find(marker) else {
            panic!("{} did not say {marker:?}: {text}", self.what)
        };
        let start = at + marker.len();
        text[start..]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal");
    }

    /// SIGTERM; its exit status once it ended (`None`: a signal ended it).
    pub fn stop(self) -> Option<i32> {
        self.stop_said().0
    }

    /// SIGTERM; its exit status and all it said on stderr, its last lines included.
    pub fn stop_said(self) -> (Option<i32>, String) {
        let stopped = self.terminate();
        (stopped.code, stopped.stderr)
    }

    /// SIGTERM; how long it took to exit and all it said on stderr, its last lines included.
    pub fn stop_timed(self) -> (Duration, String) {
        let stopped = self.terminate();
        (stopped.took, stopped.stderr)
    }

    /// SIGTERM, then waits (at most [`STOP_WITHIN`]) for the exit and for both pipes to
    /// close, so that what is returned is everything it said.
    pub fn terminate(self) -> Stopped {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.exit_within(STOP_WITHIN)
    }

    /// Waits (at most `within`, a failure with all it said after that) for it to exit by
    /// itself and for both pipes to close.
    #[track_caller]
    pub fn exit_within(mut self, within: Duration) -> Stopped {
        let started = Instant::now();
        let deadline = started + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}: {}",
                self.what,
                self.stderr()
            );
            std::thread::sleep(POLL);
        };
        let took = started.elapsed();
        let left = deadline.saturating_duration_since(Instant::now());
        match self.closed.recv_timeout(left) {
            Err(RecvTimeoutError::Disconnected) => {}
            _ => panic!(
                "{} exited but its output stayed open for {within:?}: {}",
                self.what,
                self.stderr()
            ),
        }
        Stopped {
            code: status.code(),
            took,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `done` holds within `timeout`, looked at every [`POLL`].
pub fn poll(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// What a stopped process left.
pub struct Stopped {
    /// Its exit status (`None`: a signal ended it).
    pub code: Option<i32>,
    /// From the SIGTERM (or the start of the wait) to its exit.
    pub took: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// Reads `pipe` line by line into the text returned, giving each line to `each` too;
/// `open` is dropped at the pipe's end.
fn collect(
    pipe: impl std::io::Read + Send + 'static,
    open: mpsc::Sender<()>,
    mut each: impl FnMut(&str) + Send + 'static,
) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let _open = open;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            each(&line);
            let mut text = sink.lock().expect("test fixture");
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}
