//! A real PostgreSQL server for the tests of the fleet's store (issue 14): Debian's
//! `postgresql` package (installed by `scripts/setup-test-deps.sh`), a cluster made with
//! `initdb` in a temporary directory and served by `pg_ctl` on a Unix socket of its own
//! (no TCP port, so tests running side by side never meet). PostgreSQL refuses to run as
//! root: as root the server runs as the `postgres` user (`runuser`). Stopped and removed
//! when dropped.
//!
//! A server that cannot be made or started is a test failure with the reason (its
//! output), never a test skipped in silence.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The port named in the socket's file name (`.s.PGSQL.PORT`); the socket directory is
/// private to each server, so every server may use the same.
pub const PORT: u16 = 5432;
/// How long `pg_ctl` waits for the server to accept connections (a loaded 2-core
/// machine replays its WAL after an immediate stop).
const START_WAIT: Duration = Duration::from_secs(120);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL program: on `PATH`, else in Debian's `/usr/lib/postgresql/VERSION/bin`
/// (the server programs are not on `PATH` there).
pub fn program(name: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.into_iter().rev().find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "PostgreSQL's {name} is not installed (Debian's postgresql package): run scripts/setup-test-deps.sh"
        )
    })
}

fn is_root() -> bool {
    // `id -u` rather than libc: the testkit has no dependencies.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stops and removes the servers of test processes that died without dropping theirs
/// (killed by a CI timeout, `kill -9`): a server outlives its test process, and they
/// would pile up, running, run after run (review s10-r14). A directory whose process
/// still lives (another test binary running side by side) is left alone.
fn reap_leftovers() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pacsguard-pg-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let base = entry.path();
        // Dropped at once: stopped (if it runs) and removed.
        drop(PgServer {
            data: base.join("data"),
            socket: base.join("socket"),
            log: base.join("server.log"),
            base,
            as_postgres: is_root(),
        });
    }
}

/// A running PostgreSQL server of a test.
#[derive(Debug)]
pub struct PgServer {
    base: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    as_postgres: bool,
}

impl PgServer {
    /// Makes a cluster and starts it; panics with the reason if it cannot (the test
    /// fails: the PostgreSQL tests are never skipped).
    pub fn start() -> PgServer {
        PgServer::try_start().unwrap_or_else(|e| panic!("the test's PostgreSQL server: {e}"))
    }

    pub fn try_start() -> Result<PgServer, String> {
        reap_leftovers();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let base = std::env::temp_dir().join(format!(
            "pacsguard-pg-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let server = PgServer {
            data: base.join("data"),
            socket: base.join("socket"),
            log: base.join("server.log"),
            base,
            as_postgres: is_root(),
        };
        std::fs::create_dir_all(&server.socket)
            .map_err(|e| format!("{}: {e}", server.socket.display()))?;
        if server.as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.base)
                .output()
                .map_err(|e| format!("chown: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "chown to the postgres user (Debian's postgresql package makes it): {}",
                    said(&out)
                ));
            }
        }
        let out = server.run(
            "initdb",
            &[
                "-D".as_ref(),
                server.data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                // The cluster is thrown away after the test: not flushed to disk.
                "--no-sync".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", said(&out)));
        }
        server.start_again()?;
        Ok(server)
    }

    /// Runs a PostgreSQL program, as the `postgres` user when the test runs as root.
    fn run(&self, name: &str, args: &[&std::ffi::OsStr]) -> Result<Output, String> {
        let program = program(name)?;
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(&self.base)
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))
    }

    /// Starts the server (after [`PgServer::stop`] or [`PgServer::crash`]) and waits
    /// until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-k {} -p {PORT} -c listen_addresses='' -c fsync=off",
            self.socket.display()
        );
        let wait = START_WAIT.as_secs().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                self.log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                wait.as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "start".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start failed: {}; the server's log: {}",
                said(&out),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(format!("pg_ctl stop -m {mode} failed: {}", said(&out)));
        }
        Ok(())
    }

    /// Stops the server the way an administrator restarting it does (`-m fast`: open
    /// connections are ended, transactions in flight rolled back).
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl_stop("fast")
    }

    /// Stops the server the way a crash does (`-m immediate`: no checkpoint, the next
    /// start replays the write-ahead log).
    pub fn crash(&self) -> Result<(), String> {
        self.pg_ctl_stop("immediate")
    }

    /// The connection string of the server's `postgres` database (`key=value` form).
    pub fn connection_string(&self) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname=postgres",
            self.socket.display()
        )
    }

    /// Runs `sql` with `psql` and returns its unaligned output (one row a line, `|`
    /// between columns); panics with psql's message if it fails.
    pub fn psql(&self, sql: &str) -> String {
        let psql = program("psql").unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new(&psql)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket)
            .args([
                "-p",
                &PORT.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", psql.display()));
        assert!(out.status.success(), "psql {sql:?}: {}", said(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a database of its own for one test (servers are shared by nothing else,
    /// but a test that wants two stores side by side needs two databases); returns its
    /// connection string.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        format!(
            "host={} port={PORT} user=postgres dbname={name}",
            self.socket.display()
        )
    }

    /// The server's log so far (for a failing assertion's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The directory of the server's socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }

    /// Waits (up to `timeout`) until `psql` connects: for a test that restarted the
    /// server without waiting.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(ready) = program("pg_isready") else {
            return false;
        };
        while Instant::now() < deadline {
            if Command::new(&ready)
                .arg("-h")
                .arg(&self.socket)
                .args(["-p", &PORT.to_string()])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// A process stopped with SIGSTOP (a PostgreSQL backend that stops answering), continued
/// with SIGCONT when dropped: a failing assertion never leaves it stopped.
#[derive(Debug)]
pub struct Stopped(u32);

impl Stopped {
    /// Stops `pid`; panics with the reason if it cannot.
    pub fn stop(pid: u32) -> Stopped {
        let status = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success(), "kill -STOP {pid}");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

impl PgServer {
    /// The process ids of the server's backends serving clients (other than the `psql`
    /// asking), with `state` (`idle`, `active`, …) when given.
    pub fn client_backends(&self, state: Option<&str>) -> Vec<u32> {
        let filter = match state {
            Some(state) => format!(" AND state = '{}'", state.replace('\'', "")),
            None => String::new(),
        };
        self.psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND pid <> pg_backend_pid(){filter} ORDER BY pid"
        ))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop("immediate");
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
