//! One connection to PostgreSQL whose every call has a deadline (issue 14, review of
//! session 10: a server that takes the TCP connection and never answers, or a backend
//! stopped mid-query, hung the console for good).
//!
//! The synchronous `postgres` client has no deadline of its own, and the kernel keeps
//! answering for a stopped process (its TCP keepalives and acknowledgements go on), so
//! neither socket options nor `statement_timeout` alone bound a call: the bound is here,
//! on the client's side. The connection runs on a small runtime of its own; each
//! statement waits at most what is left of its call's [`PG_CALL_DEADLINE`], and a call
//! past it leaves the connection marked broken, to be closed (the server rolls back
//! whatever transaction it had begun when it sees the socket close) and opened anew at
//! the next call. The server's own limits ([`PG_STATEMENT_TIMEOUT`], an idle
//! transaction's) end earlier what it can end cleanly itself: a statement waiting behind
//! a lock that a stuck connection holds.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row};

/// How long opening a connection may take as a whole: the socket's connect, the
/// start-up and the sign-in (a listener that takes the connection and says nothing is
/// given up after this, not waited on).
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call of the store (a query, or a transaction of several) may take from
/// its first statement to its last answer. Past it the connection is given up.
pub const PG_CALL_DEADLINE: Duration = Duration::from_secs(20);
/// The least that must be left of a call's deadline for a statement to be sent. A
/// statement the client gives up on may still be carried out by the server (a single
/// statement commits on its own, whether or not its answer is read), so its outcome is
/// unknown; one not sent is known not done. A request that spent its budget waiting
/// (a lock, a slow store, a debug build's race hook) fails cleanly at its next statement
/// instead of sending one it would likely give up on (issue 14, session 31: a host's
/// state written as a fork while the console, given up on the write, raised nothing).
pub const PG_MIN_STATEMENT_TIME: Duration = Duration::from_secs(1);
/// The server's `statement_timeout` on the store's connections: shorter than
/// [`PG_CALL_DEADLINE`], so a statement waiting behind a lock is cancelled by the
/// server (the connection stays usable) before the client gives the connection up.
pub const PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's `lock_timeout` on the store's connections: how long one statement may
/// wait for a lock (a row, a per-host advisory lock, the hosts table) that another
/// session holds. A backend stopped (SIGSTOP, a hung disk) inside a transaction keeps
/// its locks, and cannot end its own idle transaction while stopped: every request
/// needing one of them fails after this, naming the reason, instead of holding a pool
/// connection up to [`PG_STATEMENT_TIMEOUT`] or [`PG_CALL_DEADLINE`]; requests for other
/// hosts go on meanwhile (issue 14, session 12).
pub const PG_LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// [`PG_LOCK_TIMEOUT`] as a lock wait it ended is said.
pub(super) const PG_LOCK_SAID: &str = "2 s, PG_LOCK_TIMEOUT";
/// How long the store work of one request of a host may take as a whole, when its
/// caller gives it a deadline ([`super::FleetPool::get_until`]): the wait for a pool
/// connection, opening one, and every call. Shorter than the host's `IO_TIMEOUT`
/// (pacsguard-fleet checks the relation at compile time), so the console has answered
/// or given up before the host gives up on it and sends again (issue 14, session 12).
pub const FLEET_REQUEST_BUDGET: Duration = Duration::from_secs(20);

// The order the limits rely on: the server ends a lock wait before it ends the
// statement, and ends the statement before the client gives the connection up.
const _: () = assert!(PG_LOCK_TIMEOUT.as_millis() < PG_STATEMENT_TIMEOUT.as_millis());
const _: () = assert!(PG_LOCK_TIMEOUT.as_millis() == 2000); // as PG_LOCK_SAID says
const _: () = assert!(PG_STATEMENT_TIMEOUT.as_millis() < PG_CALL_DEADLINE.as_millis());
/// The server's `idle_in_transaction_session_timeout`: a console that stopped in the
/// middle of a transaction (killed, stopped, cut off) does not hold its locks longer.
pub const PG_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// TCP keepalives of an idle connection: the first probe after this long without
/// traffic, then every [`PG_KEEPALIVE_INTERVAL`], [`PG_KEEPALIVE_RETRIES`] times: a
/// server gone (a network cut, a host down) is found before the next call waits on it.
pub const PG_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
pub const PG_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
pub const PG_KEEPALIVE_RETRIES: u32 = 3;
/// `TCP_USER_TIMEOUT`: data sent and not acknowledged for this long ends the connection
/// (a server whose host vanished mid-query).
pub const PG_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed: the server's or the client's error, or a deadline passed.
#[derive(Debug)]
pub(super) enum Failure {
    Pg(tokio_postgres::Error),
    Deadline {
        what: &'static str,
        after: Duration,
        setting: &'static str,
        /// Whether the statement was sent before the client gave up on it: its outcome
        /// is then unknown (see [`PG_MIN_STATEMENT_TIME`]).
        sent: bool,
    },
    /// The client's runtime could not be made (out of threads or descriptors).
    Runtime(std::io::Error),
    /// The move of the records into the partitioned table did not keep every row: it
    /// was rolled back (see `partitions.rs`).
    Migration(String),
    /// The records of a version before wait to be moved into the partitioned table,
    /// and this connection serves a request: the move is not run there (see
    /// `partitions.rs`).
    MovePending,
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        Failure::Pg(e)
    }
}

/// Our limits on a connection: set where the connection string does not set them
/// (an administrator's own keepalives or timeouts are kept; the server's limits are
/// put before the administrator's `options`, which win).
pub(super) fn with_limits(mut config: Config) -> Config {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(PG_CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(PG_TCP_USER_TIMEOUT);
    }
    if config.get_keepalives() && config.get_keepalives_interval().is_none() {
        config
            .keepalives_idle(PG_KEEPALIVE_IDLE)
            .keepalives_interval(PG_KEEPALIVE_INTERVAL)
            .keepalives_retries(PG_KEEPALIVE_RETRIES);
    }
    let ours = format!(
        "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        PG_STATEMENT_TIMEOUT.as_millis(),
        PG_LOCK_TIMEOUT.as_millis(),
        PG_IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    let options = match config.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{ours} {theirs}"),
        _ => ours,
    };
    config.options(options);
    config
}

/// The runtime a connection is driven on, shut down without waiting when dropped: a
/// connection may be dropped on a thread that drives async tasks (the web console's),
/// where dropping a runtime the ordinary way panics.
struct Driver(Option<tokio::runtime::Runtime>);

impl Driver {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        match &self.0 {
            Some(runtime) => runtime,
            None => unreachable!("taken only when dropped"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Waits for `work` until `deadline`; past it `broken` is set (the connection is in the
/// middle of an exchange whose answer never came, so it cannot be used again).
fn within<T>(
    driver: &Driver,
    (deadline, limit): (Instant, Limit),
    broken: &mut bool,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < PG_MIN_STATEMENT_TIME {
        // Nothing is sent; a transaction the connection may be in is ended by closing
        // it (the server rolls back what it had begun when the socket closes).
        *broken = true;
        return Err(Failure::Deadline {
            what: "a query",
            after: limit.0,
            setting: limit.1,
            sent: false,
        });
    }
    match driver
        .runtime()
        .block_on(async { tokio::time::timeout(left, work).await })
    {
        Ok(done) => done.map_err(Failure::Pg),
        Err(_) => {
            *broken = true;
            Err(Failure::Deadline {
                what: "a query",
                after: limit.0,
                setting: limit.1,
                sent: true,
            })
        }
    }
}

/// The limit a deadline comes from, for the message: its length and its name.
pub(super) type Limit = (Duration, &'static str);
const CALL_LIMIT: Limit = (PG_CALL_DEADLINE, "PG_CALL_DEADLINE");
const REQUEST_LIMIT: Limit = (FLEET_REQUEST_BUDGET, "FLEET_REQUEST_BUDGET");

/// The earlier of `bound` from now (named `limit`) and the request's deadline `until`.
fn earlier(bound: Duration, limit: Limit, until: Option<Instant>) -> (Instant, Limit) {
    let own = Instant::now() + bound;
    match until {
        Some(until) if until < own => (until, REQUEST_LIMIT),
        _ => (own, limit),
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// One open connection.
pub(super) struct Conn {
    // Dropped before the driver: the connection's task ends with the runtime.
    client: Client,
    driver: Driver,
    deadline: (Instant, Limit),
    broken: bool,
}

impl Conn {
    /// Connects, the whole start-up within [`PG_CONNECT_TIMEOUT`], and by the request's
    /// deadline `until` if that comes first.
    pub(super) fn open(config: &Config, until: Option<Instant>) -> Result<Conn, Failure> {
        let (by, limit) = earlier(
            PG_CONNECT_TIMEOUT,
            (PG_CONNECT_TIMEOUT, "PG_CONNECT_TIMEOUT"),
            until,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Failure::Runtime)?;
        let driver = Driver(Some(runtime));
        let connected = driver.runtime().block_on(async {
            tokio::time::timeout(by.saturating_duration_since(Instant::now()), async {
                let (client, connection) = config.connect(NoTls).await?;
                // Driven whenever a call waits on the runtime; ends when the client
                // is dropped or the runtime shut down.
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
        });
        match connected {
            Ok(Ok(client)) => Ok(Conn {
                client,
                driver,
                deadline: earlier(PG_CALL_DEADLINE, CALL_LIMIT, until),
                broken: false,
            }),
            Ok(Err(e)) => Err(Failure::Pg(e)),
            Err(_) => Err(Failure::Deadline {
                what: "connecting (start-up and sign-in)",
                after: limit.0,
                setting: limit.1,
                sent: false,
            }),
        }
    }

    /// Whether the connection can take another call (not closed by the server, not
    /// left behind by a call past its deadline).
    pub(super) fn is_usable(&self) -> bool {
        !self.broken && !self.client.is_closed()
    }

    /// Starts a call: its statements share one [`PG_CALL_DEADLINE`] from now, or the
    /// request's deadline `until` if that comes first.
    pub(super) fn begin_call(&mut self, until: Option<Instant>) {
        self.deadline = earlier(PG_CALL_DEADLINE, CALL_LIMIT, until);
    }

    /// As [`Conn::begin_call`] for a call allowed `limit` (its length and name) instead
    /// of [`PG_CALL_DEADLINE`]: the schema's migration at a console's start.
    pub(super) fn begin_long_call(&mut self, limit: Limit, until: Option<Instant>) {
        self.deadline = earlier(limit.0, limit, until);
    }

    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Failure> {
        within(
            &self.driver,
            self.deadline,
            &mut self.broken,
            self.client.execute(sql, params),
        )
    }

    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Failure> {
        within(
            &self.driver,
            self.deadline,
            &mut self.broken,
            self.client.query(sql, params),
        )
    }

    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Failure> {
        within(
            &self.driver,
            self.deadline,
            &mut self.broken,
            self.client.query_one(sql, params),
        )
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Failure> {
        within(
            &self.driver,
            self.deadline,
            &mut self.broken,
            self.client.query_opt(sql, params),
        )
    }

    /// Begins a transaction; rolled back when dropped without [`Tx::commit`].
    pub(super) fn transaction(&mut self) -> Result<Tx<'_>, Failure> {
        let Conn {
            client,
            driver,
            deadline,
            broken,
        } = self;
        let tx = within(driver, *deadline, broken, client.transaction())?;
        Ok(Tx {
            tx,
            driver,
            deadline: *deadline,
            broken,
        })
    }
}

/// A transaction of a [`Conn`], its statements within the call's deadline.
pub(super) struct Tx<'c> {
    tx: tokio_postgres::Transaction<'c>,
    driver: &'c Driver,
    deadline: (Instant, Limit),
    broken: &'c mut bool,
}

impl Tx<'_> {
    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Failure> {
        within(
            self.driver,
            self.deadline,
            self.broken,
            self.tx.execute(sql, params),
        )
    }

    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Failure> {
        within(
            self.driver,
            self.deadline,
            self.broken,
            self.tx.query(sql, params),
        )
    }

    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Failure> {
        within(
            self.driver,
            self.deadline,
            self.broken,
            self.tx.query_one(sql, params),
        )
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Failure> {
        within(
            self.driver,
            self.deadline,
            self.broken,
            self.tx.query_opt(sql, params),
        )
    }

    pub(super) fn batch_execute(&mut self, sql: &str) -> Result<(), Failure> {
        within(
            self.driver,
            self.deadline,
            self.broken,
            self.tx.batch_execute(sql),
        )
    }

    pub(super) fn commit(self) -> Result<(), Failure> {
        let Tx {
            tx,
            driver,
            deadline,
            broken,
        } = self;
        within(driver, deadline, broken, tx.commit())
    }
}
