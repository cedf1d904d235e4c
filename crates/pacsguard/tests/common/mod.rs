//! The harness: a temporary home and tree, and the real `pacsguard` binary run against them.
#![allow(dead_code)]

pub mod process;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub tree: PathBuf,
}

pub fn pacsguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pacsguard"))
}

impl Env {
    /// A fresh home (initialized) and a small tree with a file, a subdirectory and a link.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        let env = Env {
            home: root.join("home"),
            tree: root.join("tree"),
            dir,
        };
        fs::create_dir_all(env.tree.join("study/series")).expect("mkdir");
        fs::write(env.tree.join("study/series/1.dcm"), b"DICM image one").expect("write");
        fs::write(env.tree.join("study/series/2.dcm"), b"DICM image two").expect("write");
        fs::write(env.tree.join("readme.txt"), b"static text\n").expect("write");
        std::os::unix::fs::symlink("study/series/1.dcm", env.tree.join("latest")).expect("symlink");
        let out = env.run(&["init"]);
        assert_eq!(out.status.code(), Some(0), "init: {}", stderr(&out));
        env
    }

    pub fn run(&self, args: &[&str]) -> Output {
        pacsguard()
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .expect("pacsguard runs")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tree.join(rel)
    }

    pub fn tree_str(&self) -> &str {
        self.tree.to_str().expect("utf-8 temp path")
    }

    pub fn profile(&self, extra: &[&str]) {
        let mut args = vec!["profile", self.tree_str()];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "profile: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }

    /// Runs `check --json` (plus `extra`), returning the exit status and the findings.
    pub fn check(&self, extra: &[&str]) -> (i32, Vec<Found>, Value) {
        let mut args = vec!["check", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let code = out.status.code().expect("exit status");
        assert!(
            code == 0 || code == 1,
            "check failed ({code}): {}",
            stderr(&out)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("check --json prints JSON");
        (code, found(&doc["findings"], &self.tree), doc)
    }
}

/// A finding reduced to what tests assert on; `path` relative to the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: String,
    pub severity: String,
    pub path: String,
    pub fields: Vec<String>,
    pub from: Option<String>,
}

pub fn found(findings: &Value, tree: &Path) -> Vec<Found> {
    let prefix = format!("{}/", tree.display());
    let rel = |v: &Value| {
        v.as_str()
            .map(|s| s.strip_prefix(&prefix).unwrap_or(s).to_string())
    };
    findings
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| Found {
            kind: f["kind"].as_str().unwrap_or_default().to_string(),
            severity: f["severity"].as_str().unwrap_or_default().to_string(),
            path: rel(&f["path"]).unwrap_or_default(),
            fields: f["fields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            from: rel(&f["from"]),
        })
        .collect()
}

pub fn one(findings: &[Found], kind: &str, path: &str) -> Found {
    let matching: Vec<&Found> = findings
        .iter()
        .filter(|f| f.kind == kind && f.path == path)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "want one {kind} at {path}, got {findings:#?}"
    );
    matching[0].clone()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a command was refused: exit status 2 and an error on stderr naming `needle`
/// (the file, field or reason the user needs). Both streams are shown when it fails.
#[track_caller]
pub fn assert_refused(out: &Output, needle: &str) {
    assert_refused_in(out, needle, format_args!("the command"));
}

/// [`assert_refused`] for a command run in a loop: `context` names which one failed.
#[track_caller]
pub fn assert_refused_in(out: &Output, needle: &str, context: std::fmt::Arguments) {
    assert!(
        out.status.code() == Some(2) && stderr(out).contains(needle),
        "{context}: want exit 2 naming {needle:?}, got {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Sets a file's mtime (and atime) back to a given moment, as an attacker covering tracks would.
pub fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let ts = nix::sys::time::TimeSpec::new(sec, nsec);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

pub fn mtime(path: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(path).expect("stat");
    (m.mtime(), m.mtime_nsec())
}

/// One path's content, mode, owner, mtime and ctime.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stat {
    path: PathBuf,
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Every path's [`Stat`]: to prove a command changed nothing.
pub fn snapshot(root: &Path) -> Vec<Stat> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let m = fs::symlink_metadata(&path).expect("stat");
        let content = if m.is_file() {
            fs::read(&path).expect("read")
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in fs::read_dir(&path).expect("list") {
                stack.push(e.expect("entry").path());
            }
        }
        out.push(Stat {
            mode: m.mode(),
            uid: m.uid(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            path,
            content,
        });
    }
    out.sort();
    out
}

/// `pacsguard scan --json ARGS`: its exit status and its one JSON document.
pub fn scan_json(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["scan", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scan --json: {e}\nstdout {}\nstderr {}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code, json)
}

/// A home whose `[audit] witness` is a directory beside it, taken into use.
pub fn witnessed_env() -> (Env, PathBuf) {
    let env = Env::new();
    let witness = env
        .dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("witness");
    fs::create_dir(&witness).expect("mkdir");
    fs::write(
        env.home.join("config.toml"),
        format!("[audit]\nwitness = \"{}\"\n", witness.display()),
    )
    .expect("config");
    let out = env.run(&[
        "audit",
        "witness",
        "init",
        "--reason",
        "witness share set up",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env.profile(&[]);
    (env, witness)
}

/// A small tmpfs (root only), unmounted when dropped.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mkdir");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs");
        SmallDisk(at.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes until the file system says it is full; the file that fills it.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).expect("create");
        let block = vec![0xa5u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A TCP syslog collector started by a test, taking connection after connection (one per
/// delivery batch) until it is dropped: RFC 6587 octet-counted frames, kept in the order
/// they arrived.
pub struct Collector {
    pub addr: std::net::SocketAddr,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// How many connections it read to their end.
    ended: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    discarded: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Listening on `addr` (`127.0.0.1:0` for a free port).
    pub fn start(addr: &str) -> Collector {
        Collector::run(addr, None)
    }

    /// Listening on the port `reserved` held since the test began (no other test can
    /// have taken it meanwhile).
    pub fn on(reserved: ReservedPort) -> Collector {
        let listener = reserved.listen();
        Collector::serve(listener, Reading::Whole(None))
    }

    /// One that reads frame after frame and, at a frame over `limit` bytes, closes in
    /// order having read it whole and kept nothing of it (a collector's message size
    /// limit): what RFC 5425 cannot tell from delivery. The sequence numbers it threw
    /// away are in [`Collector::discarded`].
    pub fn discarding(addr: &str, limit: usize) -> Collector {
        let listener = std::net::TcpListener::bind(addr).expect("collector binds");
        Collector::serve(listener, Reading::Discarding(limit))
    }

    /// The sequence numbers of the messages it read and threw away.
    pub fn discarded(&self) -> Vec<u64> {
        self.discarded.lock().expect("test fixture").clone()
    }

    /// One that closes each connection once it read `bytes` (a size limit, a proxy):
    /// what it read whole is kept, the rest of the batch is cut.
    pub fn cutting(addr: &str, bytes: u64) -> Collector {
        Collector::run(addr, Some(bytes))
    }

    fn run(addr: &str, cut: Option<u64>) -> Collector {
        let listener = std::net::TcpListener::bind(addr).expect("collector binds");
        Collector::serve(listener, Reading::Whole(cut))
    }

    fn serve(listener: std::net::TcpListener, reading: Reading) -> Collector {
        use std::sync::atomic::Ordering;
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let discarded = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, counted, thrown, stopped) = (
            messages.clone(),
            ended.clone(),
            discarded.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        let cut = match reading {
                            Reading::Whole(cut) => cut,
                            Reading::Discarding(limit) => {
                                read_discarding(stream, limit, &sink, &thrown);
                                counted.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        };
                        let mut bytes = Vec::new();
                        let read = match cut {
                            Some(limit) => std::io::Read::read_to_end(
                                &mut std::io::Read::take(&mut stream, limit),
                                &mut bytes,
                            ),
                            None => std::io::Read::read_to_end(&mut stream, &mut bytes),
                        };
                        if read.is_ok() {
                            let frames = frames(&bytes);
                            sink.lock().expect("test fixture").extend(frames);
                        }
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Collector {
            addr,
            messages,
            ended,
            discarded,
            stop,
            thread: Some(thread),
        }
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().expect("test fixture").clone()
    }

    /// Everything received once `count` connections ended (one per batch a run of
    /// `audit forward` sends): the sender's exit does not say the collector read it all.
    #[track_caller]
    pub fn after_connections(&self, count: usize) -> Vec<String> {
        use std::sync::atomic::Ordering;
        let within = std::time::Duration::from_secs(60);
        let deadline = std::time::Instant::now() + within;
        while self.ended.load(Ordering::SeqCst) < count {
            assert!(
                std::time::Instant::now() < deadline,
                "the collector at {} was sent {} of {count} connections within {within:?}: {:?}",
                self.addr,
                self.ended.load(Ordering::SeqCst),
                self.messages()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.messages()
    }

    /// The sequence numbers of the records received, in the order they came (a batch's
    /// end mark is no record).
    pub fn seqs(&self) -> Vec<u64> {
        self.messages()
            .iter()
            .filter(|m| !is_batch_mark(m))
            .map(|m| syslog_seq(m))
            .collect()
    }

    /// Waits (at most `within`) until `test` holds for what was received.
    pub fn wait(&self, within: std::time::Duration, test: impl Fn(&[String]) -> bool) -> bool {
        process::poll(within, || test(&self.messages()))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a [`Collector`] reads a connection.
#[derive(Clone, Copy)]
enum Reading {
    /// To its end (at most so many bytes: a size limit, a proxy), then its frames.
    Whole(Option<u64>),
    /// Frame by frame, closing at the first over so many bytes, thrown away.
    Discarding(usize),
}

/// Reads octet-counted frames one by one, nothing ahead of the frame it is in (what is
/// not read yet stays in the kernel, as with a collector that reads a frame at a time):
/// those up to `limit` bytes kept in `sink`, the first over it read whole, its sequence
/// number put in `thrown`, and the connection closed.
fn read_discarding(
    mut stream: std::net::TcpStream,
    limit: usize,
    sink: &std::sync::Mutex<Vec<String>>,
    thrown: &std::sync::Mutex<Vec<u64>>,
) {
    use std::io::Read as _;
    loop {
        let mut len = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match stream.read(&mut byte) {
                Ok(1) if byte[0] == b' ' => break,
                Ok(1) if byte[0].is_ascii_digit() && len.len() < 10 => len.push(byte[0]),
                _ => return,
            }
        }
        let Some(len) = std::str::from_utf8(&len)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return;
        };
        let mut message = vec![0u8; len];
        if stream.read_exact(&mut message).is_err() {
            return;
        }
        let message = String::from_utf8_lossy(&message).into_owned();
        if len > limit {
            thrown
                .lock()
                .expect("test fixture")
                .push(syslog_seq(&message));
            return; // thrown away: the connection closes
        }
        sink.lock().expect("test fixture").push(message);
    }
}

/// The messages of a stream of RFC 6587 octet-counted frames.
fn frames(bytes: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    let mut rest = bytes;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            break;
        };
        let Some(message) = rest.get(space + 1..space + 1 + len) else {
            break;
        };
        messages.push(String::from_utf8_lossy(message).into_owned());
        rest = &rest[space + 1 + len..];
    }
    messages
}

/// Whether a syslog message is the mark that ends a batch whose last message is large.
pub fn is_batch_mark(message: &str) -> bool {
    message.contains(" pacsguard-batch [")
}

/// The record's sequence number a syslog message carries (its dedup key).
pub fn syslog_seq(message: &str) -> u64 {
    let start = message.find("seq=\"").expect("seq") + 5;
    message[start..]
        .split('"')
        .next()
        .expect("value")
        .parse()
        .expect("number")
}

/// A loopback port nothing listens on (bound and let go): a collector that is down.
/// A loopback port bound and kept, not listening: a connection to it is refused, and no
/// other test can take it before [`ReservedPort::listen`] (or [`Collector::on`]).
pub struct ReservedPort {
    socket: socket2::Socket,
    pub addr: std::net::SocketAddr,
}

impl ReservedPort {
    pub fn new() -> ReservedPort {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).expect("bind");
        let addr = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("an IP address");
        ReservedPort { socket, addr }
    }

    /// Starts listening on it.
    pub fn listen(self) -> std::net::TcpListener {
        self.socket.listen(128).expect("listen");
        self.socket.into()
    }
}

/// A port free when it was asked for, and freed again: only for a port another process
/// (a `serve --fleet-listen`) binds later, which a socket of this one cannot be handed
/// to. A collector of the test itself takes a [`ReservedPort`] instead.
pub fn closed_port() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr")
}

/// The number of records in the trail of the home at `home` (one line each).
pub fn trail_records(home: &Path) -> u64 {
    let log = fs::read(home.join("audit.log")).expect("the home's trail");
    log.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Appends `text` to the home's `config.toml`.
pub fn append_config(env: &Env, text: &str) {
    let path = env.home.join("config.toml");
    let mut config = fs::read_to_string(&path).expect("config");
    config.push('\n');
    config.push_str(text);
    fs::write(&path, config).expect("config");
}
