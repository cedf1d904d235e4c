//! The hosts' records on PostgreSQL, partitioned by the month the console received them
//! (issue 14: "findings partitioned by time"). `fleet_records` grows with every host's
//! trail (up to `HOST_QUOTA_BYTES` a day a host) and is never rewritten: a month's
//! records are one table of their own, its index as small as the month, and a month
//! can be kept, archived or dropped whole.
//!
//! * The time is the console's (`received`, the `now` of the report that stored the
//!   record), never the host's: a host cannot choose where its records go.
//! * Months are made ahead ([`PARTITION_MONTHS_AHEAD`]) at each connection, and by a
//!   write that finds its month missing; a write never fails for want of one: the
//!   `DEFAULT` partition takes what no month holds (a month that could not be made, a
//!   time outside any), and the month made later takes its rows out of it in the same
//!   transaction that attaches it (PostgreSQL refuses to attach a range the default
//!   holds rows of).
//! * A month is attached (`ATTACH PARTITION`: a `SHARE UPDATE EXCLUSIVE` lock of the
//!   parent, which reports writing records do not wait for), not made with
//!   `CREATE TABLE … PARTITION OF` (an `ACCESS EXCLUSIVE` lock of the whole table).
//! * A primary key of a partitioned table must hold the partition key: it is
//!   `(host, seq, received)`. That a host's sequence number is stored once is the
//!   witness state's to keep, as before: a batch is stored only by the transaction that
//!   moves the host's size from the size it was verified against (`accept_batch`), so
//!   the sequence numbers `from..size` are written once.
//! * A table made by a version before (unpartitioned) is moved into the partitioned one
//!   in the transaction that makes the schema: each host's records compared in the old
//!   table and the months ([`MOVED_BY_HOST`]), any difference or failure rolls it all
//!   back, the old table left as it was. Never on a connection serving a request (one
//!   with a request's deadline): it may take longer than a request may, and a move its
//!   client gave up on goes on server-side holding an `ACCESS EXCLUSIVE` lock that fails
//!   every report; such a connection is refused ([`Failure::MovePending`]), and the
//!   move is left to the console's start and the pool's move task.

use std::time::{Duration, Instant};

use super::deadline::{Conn, Failure, Tx};

/// Months made ahead at each connection: the current one and this many after it, so a
/// report at a month's turn finds its month made (one that does not, makes it).
pub const PARTITION_MONTHS_AHEAD: i32 = 2;

/// How long the move of a table made by a version before into the partitioned one may
/// take (statement and call): a copy of every record, once, when a console first
/// opens the store after an upgrade; longer than a report's deadlines by design.
pub const PG_MIGRATION_DEADLINE: Duration = Duration::from_secs(600);

/// How often the server looks, during the move, for the console that runs it
/// (`client_connection_check_interval`, PostgreSQL 14 and later): a console gone
/// has its move cancelled and its lock released this soon after.
pub const PG_MOVE_CLIENT_CHECK: Duration = Duration::from_secs(1);

/// How long a connection that could not make a month (a lock held past
/// `lock_timeout`, a server restarting) leaves that month's records to the default
/// before it tries again: a write does not wait for the same lock at every report, and
/// the month is made by this connection later, not never (review of session 33).
pub const PG_MONTH_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What a connection knows of the months made: the range of `received` `[start, end)`
/// it found made or made itself (only that: a range it failed to make is not
/// counted), and until when it leaves making more alone after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Covered {
    span: (i64, i64),
    retry_at: Option<Instant>,
}

impl Covered {
    pub(super) const NONE: Covered = Covered {
        span: (0, 0),
        retry_at: None,
    };

    /// Whether the months of `from..=to` are to be looked for (made) at `now`: not
    /// when inside the range made, nor while a failure's pause lasts.
    pub(super) fn wanted(&self, from: i64, to: i64, now: Instant) -> bool {
        let inside = self.span.0 <= from && to < self.span.1;
        !inside && self.retry_at.is_none_or(|at| now >= at)
    }

    /// The months of `span` are made: counted, and any pause ended.
    pub(super) fn made(&mut self, span: (i64, i64)) {
        self.span = span;
        self.retry_at = None;
    }

    /// Making them failed at `now`: nothing counted as made, tried again after
    /// [`PG_MONTH_RETRY_AFTER`].
    pub(super) fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + PG_MONTH_RETRY_AFTER);
    }
}

/// How far a host's receipt floor lags at most behind its newest batch: the floor
/// (`fleet_hosts.floor_size`, `floor_received`: every record of the host from that
/// sequence number on was received at or after that time) moves up to a batch once it
/// is this much older. The console reads a host's records by sequence number, mostly
/// its newest (a batch sent again, the backlog no checkpoint signed yet); from the floor
/// on it names their months, which PostgreSQL then reads alone.
pub const RECEIPT_FLOOR_STEP: Duration = Duration::from_secs(24 * 3600);

/// [`RECEIPT_FLOOR_STEP`] in seconds, as the statements take it.
pub(super) fn floor_step() -> i64 {
    i64::try_from(RECEIPT_FLOOR_STEP.as_secs()).unwrap_or(i64::MAX)
}

/// What takes the rows no month holds.
pub const DEFAULT_PARTITION: &str = "fleet_records_default";

/// The partitioned table and its safety net. `received` has no default: a console of
/// a version before (a rolling upgrade) cannot store records without it, and fails
/// loudly (the host sends them again) rather than write one no receipt floor counts.
const RECORDS_TABLE: &str = "CREATE TABLE fleet_records (
    host BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    line BYTEA NOT NULL,
    received BIGINT NOT NULL,
    PRIMARY KEY (host, seq, received)
) PARTITION BY RANGE (received);
CREATE TABLE fleet_records_default PARTITION OF fleet_records DEFAULT;";

/// The months from the one of `$1` to the one of `$2` (Unix seconds, UTC): each one's
/// table name, bounds, and whether it is a partition of `fleet_records` (a table of that
/// name that is not fails the month's making, by name). January 1970 is left to the
/// default (a time of 0 is a record whose receipt is unknown, see [`migrate`]).
const MONTHS: &str = "SELECT n, extract(epoch FROM m)::bigint, \
     extract(epoch FROM m + interval '1 month')::bigint, \
     EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(n) \
             AND inhparent = 'fleet_records'::regclass) \
     FROM generate_series(date_trunc('month', to_timestamp($1::bigint) AT TIME ZONE 'UTC'), \
                          date_trunc('month', to_timestamp($2::bigint) AT TIME ZONE 'UTC'), \
                          interval '1 month') AS m, \
     LATERAL (SELECT 'fleet_records_' || to_char(m, 'YYYY\"m\"MM') AS n) AS named \
     WHERE m >= timestamp '1970-02-01'";

/// Where [`MONTHS`] begins (1970-02-01): a time before it is the default's.
const FIRST_MONTH_MADE: i64 = 31 * 24 * 3600;

/// One month: its table's name and its range `[from, to)` of `received`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Month {
    name: String,
    from: i64,
    to: i64,
}

/// A table name this module made from a date: letters, digits and `_` only (it is put
/// into statements as an identifier).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn months(rows: &[tokio_postgres::Row]) -> Result<Vec<(Month, bool)>, Failure> {
    rows.iter()
        .map(|r| {
            Ok((
                Month {
                    name: r.try_get(0)?,
                    from: r.try_get(1)?,
                    to: r.try_get(2)?,
                },
                r.try_get(3)?,
            ))
        })
        .collect()
}

/// Makes `month` a partition, taking its rows out of the default first.
fn attach(tx: &mut Tx<'_>, month: &Month) -> Result<u64, Failure> {
    if !plain_name(&month.name) {
        return Ok(0);
    }
    let name = &month.name;
    tx.batch_execute(&format!(
        "CREATE TABLE {name} (LIKE fleet_records INCLUDING DEFAULTS)"
    ))?;
    let moved = tx.execute(
        &format!(
            "WITH moved AS (DELETE FROM {DEFAULT_PARTITION} \
             WHERE received >= $1 AND received < $2 RETURNING host, seq, line, received) \
             INSERT INTO {name} (host, seq, line, received) SELECT * FROM moved"
        ),
        &[&month.from, &month.to],
    )?;
    tx.batch_execute(&format!(
        "ALTER TABLE fleet_records ATTACH PARTITION {name} FOR VALUES FROM ({}) TO ({})",
        month.from, month.to
    ))?;
    Ok(moved)
}

/// Makes, in the transaction `tx` (which holds the schema's advisory lock), every month
/// from the one of `from` to the one of `to` that is missing.
fn attach_missing(tx: &mut Tx<'_>, from: i64, to: i64) -> Result<(), Failure> {
    let rows = tx.query(MONTHS, &[&from, &to])?;
    for (month, exists) in months(&rows)? {
        if !exists {
            attach(tx, &month)?;
        }
    }
    Ok(())
}

/// What `fleet_records` is: `None` when missing, `Some("p")` when partitioned, any
/// other kind a table of a version before.
const RECORDS_KIND: &str =
    "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('fleet_records')";

/// Whether `fleet_records` is a table of a version before, still to be moved (one
/// catalogue read: no lock of the table is taken).
pub(super) fn move_pending(conn: &mut Conn) -> Result<bool, Failure> {
    let kind: Option<String> = conn
        .query_opt(RECORDS_KIND, &[])?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(kind.is_some_and(|k| k != "p"))
}

/// Makes `fleet_records` partitioned, in the schema's transaction `tx`: made anew, or
/// its default made if missing, or a table of a version before moved into it (the rows
/// moved, as counted before and after; `None` when nothing was moved). The move only
/// when `may_move` (a connection serving no request: see [`Failure::MovePending`]).
pub(super) fn make_records_table(tx: &mut Tx<'_>, may_move: bool) -> Result<Option<u64>, Failure> {
    let kind: Option<String> = tx
        .query_opt(RECORDS_KIND, &[])?
        .map(|r| r.try_get(0))
        .transpose()?;
    match kind.as_deref() {
        None => {
            tx.batch_execute(RECORDS_TABLE)?;
            Ok(None)
        }
        Some("p") => {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF fleet_records DEFAULT"
            ))?;
            Ok(None)
        }
        Some(_) if !may_move => Err(Failure::MovePending),
        Some(_) => migrate(tx).map(Some).map_err(|failure| match failure {
            // Said as the move's failure, with the server's reason: one that trying
            // again will not change (a table in the way); a wait, a cancel or a lost
            // connection stays what it is, for a later try.
            Failure::Pg(e) => match e.as_db_error() {
                Some(db) if !transient(db.code()) => Failure::Migration(db.message().to_string()),
                _ => Failure::Pg(e),
            },
            other => other,
        }),
    }
}

/// Whether an error of the server may pass if the move is tried again: a lock wait or
/// statement ended by a timeout, a conflict with another transaction, the server
/// shutting down or its connection lost (SQLSTATE classes 40, 57 and 08).
fn transient(code: &tokio_postgres::error::SqlState) -> bool {
    use tokio_postgres::error::SqlState;
    *code == SqlState::LOCK_NOT_AVAILABLE
        || ["40", "57", "08"]
            .iter()
            .any(|class| code.code().starts_with(class))
}

/// Moves an unpartitioned `fleet_records` (a version before this one) into the
/// partitioned table. A record's `received` is the time of the first checkpoint that
/// covered it (written by the report that signed it: at or after its receipt, by the
/// console's clock), else its host's last contact, else 0 (unknown: the default).
fn migrate(tx: &mut Tx<'_>) -> Result<u64, Failure> {
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        PG_MIGRATION_DEADLINE.as_millis()
    ))?;
    // A console that gives up on the move (its deadline, killed, cut off) closes its
    // socket, but a server busy copying does not read it: without this the move goes
    // on server-side for up to PG_MIGRATION_DEADLINE, its ACCESS EXCLUSIVE lock failing
    // every host's report meanwhile. PostgreSQL 14 and later look for the client this
    // often during a statement and cancel it when gone (before 14 there is no such
    // setting: set only where it exists).
    tx.execute(
        "SELECT set_config('client_connection_check_interval', $1, true) \
         WHERE current_setting('server_version_num')::int >= 140000",
        &[&PG_MOVE_CLIENT_CHECK.as_millis().to_string()],
    )?;
    tx.batch_execute("LOCK TABLE fleet_records IN ACCESS EXCLUSIVE MODE")?;
    tx.batch_execute(
        "ALTER TABLE fleet_records RENAME TO fleet_records_unpartitioned;
         ALTER INDEX IF EXISTS fleet_records_pkey RENAME TO fleet_records_unpartitioned_pkey;",
    )?;
    tx.batch_execute(RECORDS_TABLE)?;
    tx.batch_execute(
        "CREATE TEMPORARY TABLE fleet_records_moving ON COMMIT DROP AS \
         SELECT r.host, r.seq, r.line, COALESCE( \
             (SELECT c.received FROM fleet_checkpoints c \
              WHERE c.host = r.host AND c.size > r.seq ORDER BY c.size LIMIT 1), \
             (SELECT h.last_contact FROM fleet_hosts h WHERE h.id = r.host), 0) AS received \
         FROM fleet_records_unpartitioned r",
    )?;
    let span = tx.query_one(
        "SELECT min(received), max(received) FROM fleet_records_moving WHERE received > 0",
        &[],
    )?;
    let (first, last): (Option<i64>, Option<i64>) = (span.try_get(0)?, span.try_get(1)?);
    if let (Some(first), Some(last)) = (first, last) {
        // Only the months that hold records: a store idle for a year gets no empty
        // tables for that year.
        let rows = tx.query(MONTHS, &[&first, &last])?;
        for (month, exists) in months(&rows)? {
            let held: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM fleet_records_moving \
                     WHERE received >= $1 AND received < $2)",
                    &[&month.from, &month.to],
                )?
                .try_get(0)?;
            if held && !exists {
                attach(tx, &month)?;
            }
        }
    }
    let moved = tx.execute(
        "INSERT INTO fleet_records (host, seq, line, received) \
         SELECT host, seq, line, received FROM fleet_records_moving",
        &[],
    )?;
    check_moved(tx)?;
    tx.batch_execute("DROP TABLE fleet_records_unpartitioned")?;
    Ok(moved)
}

/// Each host's records in the old table and in the partitioned one, read from each
/// table itself (not from the copy in between): their number, the greatest sequence
/// number and the bytes of their lines. A host whose figures differ, or that one table
/// has and the other not, is named and the move rolled back.
///
/// What it proves: under the move's ACCESS EXCLUSIVE lock (nothing else writes either
/// table), no record was lost, doubled, cut or taken to another host between the old
/// table and the months; what it does not: a line replaced by another of the same
/// length (nothing in the move rewrites lines, they are copied as they are).
const MOVED_BY_HOST: &str = "WITH old AS (SELECT host, count(*) AS n, max(seq) AS top, \
         sum(octet_length(line)) AS bytes FROM fleet_records_unpartitioned GROUP BY host), \
     new AS (SELECT host, count(*) AS n, max(seq) AS top, \
         sum(octet_length(line)) AS bytes FROM fleet_records GROUP BY host) \
     SELECT COALESCE(old.host, new.host), \
         format('%s records up to %s (%s bytes) before, %s up to %s (%s bytes) after', \
                COALESCE(old.n, 0), old.top, COALESCE(old.bytes, 0), \
                COALESCE(new.n, 0), new.top, COALESCE(new.bytes, 0)) \
     FROM old FULL JOIN new ON old.host = new.host \
     WHERE (old.n, old.top, old.bytes) IS DISTINCT FROM (new.n, new.top, new.bytes) \
     ORDER BY 1 LIMIT 3";

fn check_moved(tx: &mut Tx<'_>) -> Result<(), Failure> {
    let differ = tx.query(MOVED_BY_HOST, &[])?;
    if differ.is_empty() {
        return Ok(());
    }
    let mut said = Vec::with_capacity(differ.len());
    for row in &differ {
        let host: i64 = row.try_get(0)?;
        let what: String = row.try_get(1)?;
        said.push(format!("host {host}: {what}"));
    }
    Err(Failure::Migration(format!(
        "the records moved differ from the table of the version before: {}",
        said.join("; ")
    )))
}

/// Whether every month from the one of `from` to the one of `to` has its table, else
/// makes the missing ones (in a transaction of their own, under the schema's lock
/// `lock`). The range of `received` now covered, `[start, end)`.
pub(super) fn cover(conn: &mut Conn, lock: i64, from: i64, to: i64) -> Result<(i64, i64), Failure> {
    let rows = conn.query(MONTHS, &[&from, &to])?;
    let found = months(&rows)?;
    let span = match (found.first(), found.last()) {
        (Some((first, _)), Some((last, _))) => (first.from, last.to),
        // Before February 1970: the default's, nothing to make.
        _ => return Ok((i64::MIN, FIRST_MONTH_MADE)),
    };
    if found.iter().all(|(_, exists)| *exists) {
        return Ok(span);
    }
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
    // Looked at again under the lock: another console may have made them meanwhile.
    attach_missing(&mut tx, from, to)?;
    tx.commit()?;
    Ok(span)
}

/// The months to make ahead from `now`: from its month to [`PARTITION_MONTHS_AHEAD`]
/// after it (31 days a month is enough to land in each).
pub(super) fn ahead(now: i64) -> (i64, i64) {
    let month = 31 * 24 * 3600;
    (
        now,
        now.saturating_add(i64::from(PARTITION_MONTHS_AHEAD) * month),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_put_into_statements() {
        assert!(plain_name("fleet_records_2026m12"));
        assert!(!plain_name("fleet_records_-001m12"));
        assert!(!plain_name("x; DROP TABLE fleet_hosts"));
        assert!(!plain_name(""));
    }

    #[test]
    fn a_month_that_could_not_be_made_is_not_counted_and_is_tried_again_later() {
        let start = Instant::now();
        let mut covered = Covered::NONE;
        assert!(covered.wanted(100, 200, start));
        covered.made((0, 1000));
        assert!(!covered.wanted(100, 200, start), "inside what was made");
        assert!(covered.wanted(1000, 1000, start), "past it");
        covered.failed(start);
        // Not made: counted as before, and left alone while the pause lasts.
        assert_eq!(covered.span, (0, 1000));
        assert!(!covered.wanted(1000, 1000, start));
        let later = start + PG_MONTH_RETRY_AFTER;
        assert!(
            covered.wanted(1000, 1000, later),
            "tried again after the pause"
        );
        covered.made((0, 5000));
        assert!(!covered.wanted(1000, 1000, later));
        assert!(
            covered.wanted(6000, 6000, later),
            "no pause left after a success"
        );
    }

    #[test]
    fn the_months_ahead_reach_past_the_current_one() {
        let (from, to) = ahead(1_764_979_200); // 2025-12-06
        assert_eq!(from, 1_764_979_200);
        assert!(to >= from + 2 * 31 * 24 * 3600);
    }
}
