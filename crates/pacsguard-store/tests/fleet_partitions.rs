//! The hosts' records on PostgreSQL, partitioned by the month the console received them
//! (issue 14: "findings partitioned by time"), against a real server started by the
//! testkit: where each record lands, that no time fails a write, that a store made by
//! the version before is moved whole, and that the console's queries of records use
//! each month's index.
#![allow(clippy::disallowed_methods)]

use pacsguard_store::{AcceptedBatch, FleetStore, FleetStoreAt};
use pacsguard_testkit::postgres::PgServer;

/// 2026-11-30T23:59:59Z, the last second of November.
const NOV_LAST: i64 = 1_796_083_199;
/// 2026-12-01T00:00:00Z.
const DEC_FIRST: i64 = 1_796_083_200;
/// 2027-01-15T12:00:00Z.
const JAN_MID: i64 = 1_800_014_400;
/// 2026-10-05T00:00:00Z.
const OCT_FIFTH: i64 = 1_791_158_400;

fn open(at: &FleetStoreAt) -> Box<dyn FleetStore> {
    at.open()
        .unwrap_or_else(|e| panic!("{}: {e}", at.describe()))
}

fn enrol(db: &mut dyn FleetStore, name: &str) -> i64 {
    let token = name.as_bytes();
    db.add_enrol_token(token, 100, i64::MAX).expect("token");
    db.enrol_host(token, 200, name, &format!("fp-{name}"))
        .expect("store")
        .expect("enrolled")
}

fn line(host: &str, seq: u64) -> Vec<u8> {
    format!("{{\"host\":\"{host}\",\"seq\":{seq}}}").into_bytes()
}

/// Stores the records `from..to` of `host` as received at `now`, with the checkpoint
/// that signs them.
fn store(db: &mut dyn FleetStore, host: i64, name: &str, from: u64, to: u64, now: i64) {
    let records: Vec<(u64, Vec<u8>)> = (from..to).map(|s| (s, line(name, s))).collect();
    let note = format!("note\n{to}\n");
    let batch = AcceptedBatch {
        from_size: from,
        records: &records,
        size: to,
        peaks: vec![7; 32],
        trail_key: "host+1234+key",
        checkpoint: &note,
        cosignature: "cosigned",
        now,
        contact: true,
        trail_grew: None,
    };
    assert!(
        db.accept_batch(host, &batch).expect("store"),
        "batch {from}..{to} at {now} stored"
    );
}

/// Each record's sequence number and the table holding it (`tableoid`).
fn where_each(server: &PgServer) -> Vec<(u64, String)> {
    server
        .psql("SELECT r.seq, r.tableoid::regclass FROM fleet_records r ORDER BY r.host, r.seq")
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(s, t)| (s.parse().expect("seq"), t.to_string()))
        .collect()
}

/// The partitions of `fleet_records` by `pg_inherits`.
fn partitions(server: &PgServer) -> Vec<String> {
    server
        .psql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'fleet_records'::regclass ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn records_land_in_the_month_the_console_received_them() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "ct-1");
    store(db.as_mut(), host, "ct-1", 0, 2, NOV_LAST);
    store(db.as_mut(), host, "ct-1", 2, 4, DEC_FIRST);
    store(db.as_mut(), host, "ct-1", 4, 5, JAN_MID);
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "p", "fleet_records is partitioned");
    let months = partitions(&server);
    for month in [
        "fleet_records_2026m11",
        "fleet_records_2026m12",
        "fleet_records_2027m01",
        "fleet_records_default",
    ] {
        assert!(months.contains(&month.to_string()), "{month} in {months:?}");
    }
    assert_eq!(
        where_each(&server),
        vec![
            (0, "fleet_records_2026m11".to_string()),
            (1, "fleet_records_2026m11".to_string()),
            (2, "fleet_records_2026m12".to_string()),
            (3, "fleet_records_2026m12".to_string()),
            (4, "fleet_records_2027m01".to_string()),
        ]
    );
    let held = db.host_records(host).expect("store");
    assert_eq!(
        held,
        (0..5).map(|s| (s, line("ct-1", s))).collect::<Vec<_>>()
    );
    assert_eq!(
        db.host_records_between(host, 1, 4).expect("store"),
        held[1..4].to_vec()
    );
}

#[test]
fn the_months_ahead_are_made_when_the_store_is_opened() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    drop(open(&at));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expected = server.psql(&format!(
        "SELECT 'fleet_records_' || to_char(date_trunc('month', to_timestamp({now}) AT TIME ZONE 'UTC') \
         + make_interval(months => n), 'YYYY\"m\"MM') FROM generate_series(0, {}) AS n",
        pacsguard_store::PARTITION_MONTHS_AHEAD
    ));
    let months = partitions(&server);
    for month in expected.lines() {
        assert!(months.contains(&month.to_string()), "{month} in {months:?}");
    }
}

#[test]
fn a_time_outside_every_month_made_is_stored_all_the_same() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "mr-2");
    // Far ahead: its month is made by the write.
    store(db.as_mut(), host, "mr-2", 0, 1, 13_574_649_600);
    // Past what PostgreSQL can date (a console whose clock is wild): the default.
    store(db.as_mut(), host, "mr-2", 1, 2, 1_000_000_000_000_000);
    // Before any month made (1970): the default.
    store(db.as_mut(), host, "mr-2", 2, 3, 300);
    assert_eq!(
        where_each(&server),
        vec![
            (0, "fleet_records_2400m03".to_string()),
            (1, "fleet_records_default".to_string()),
            (2, "fleet_records_default".to_string()),
        ]
    );
    assert_eq!(db.host_records(host).expect("store").len(), 3);
}

#[test]
fn a_month_made_after_its_records_went_to_the_default_takes_them_out_of_it() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "us-3");
    // A record of June 2030 stored when no month of 2030 was made (a console of the
    // version before writing through a rolling upgrade, a month that could not be made).
    server.psql(&format!(
        "INSERT INTO fleet_records (host, seq, line, received) VALUES ({host}, 0, 'x', 1907280000); \
         UPDATE fleet_hosts SET size = 1 WHERE id = {host}"
    ));
    assert_eq!(where_each(&server)[0].1, "fleet_records_default");
    store(db.as_mut(), host, "us-3", 1, 2, 1_908_144_000);
    assert_eq!(
        where_each(&server),
        vec![
            (0, "fleet_records_2030m06".to_string()),
            (1, "fleet_records_2030m06".to_string()),
        ]
    );
}

/// Lays `fleet_records` out as the version before made it: one table, no receipt time.
const PREVIOUS_LAYOUT: &str = "CREATE TABLE fleet_records_old AS SELECT host, seq, line FROM fleet_records; \
     DROP TABLE fleet_records; \
     ALTER TABLE fleet_records_old RENAME TO fleet_records; \
     ALTER TABLE fleet_records ALTER COLUMN host SET NOT NULL, ALTER COLUMN seq SET NOT NULL, \
     ALTER COLUMN line SET NOT NULL, ADD PRIMARY KEY (host, seq)";

/// A host's records as the console reads them: sequence number and line.
type Records = Vec<(u64, Vec<u8>)>;

/// A store whose records span three months and two hosts, laid out as the version
/// before left it; what the console read of it then.
fn previous_store(server: &PgServer, at: &FleetStoreAt) -> (Vec<i64>, Vec<Records>) {
    let mut db = open(at);
    let a = enrol(db.as_mut(), "pacs-a");
    let b = enrol(db.as_mut(), "pacs-b");
    store(db.as_mut(), a, "pacs-a", 0, 3, OCT_FIFTH);
    store(db.as_mut(), b, "pacs-b", 0, 2, NOV_LAST);
    store(db.as_mut(), a, "pacs-a", 3, 6, DEC_FIRST);
    store(db.as_mut(), b, "pacs-b", 2, 4, JAN_MID);
    drop(db);
    server.psql(PREVIOUS_LAYOUT);
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "r", "laid out as before");
    // What the version before read: the same SQL on the old table.
    let read = |host: i64| -> Records {
        server
            .psql(&format!(
                "SELECT seq, convert_from(line, 'UTF8') FROM fleet_records WHERE host = {host} ORDER BY seq"
            ))
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(s, l)| (s.parse().expect("seq"), l.as_bytes().to_vec()))
            .collect()
    };
    (vec![a, b], vec![read(a), read(b)])
}

#[test]
fn a_store_made_by_the_version_before_is_moved_whole_into_its_months() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (hosts, before) = previous_store(&server, &at);
    assert_eq!(before[0].len() + before[1].len(), 10);
    let mut db = open(&at);
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "p", "moved into the partitioned table");
    for (host, read) in hosts.iter().zip(&before) {
        assert_eq!(&db.host_records(*host).expect("store"), read);
        assert_eq!(
            db.host_records_between(*host, 1, 3).expect("store"),
            read[1..3].to_vec()
        );
    }
    // Each record in the month of the checkpoint that first signed it.
    let months: Vec<String> = where_each(&server).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        months,
        [
            ["fleet_records_2026m10"; 3].as_slice(),
            ["fleet_records_2026m12"; 3].as_slice(),
            ["fleet_records_2026m11"; 2].as_slice(),
            ["fleet_records_2027m01"; 2].as_slice(),
        ]
        .concat()
    );
    assert_eq!(
        server
            .psql("SELECT count(*) FROM pg_class WHERE relname = 'fleet_records_unpartitioned'")
            .trim(),
        "0"
    );
    // The store goes on from where it was.
    store(db.as_mut(), hosts[0], "pacs-a", 6, 7, JAN_MID);
    assert_eq!(db.host_records(hosts[0]).expect("store").len(), 7);
}

#[test]
fn a_move_that_fails_leaves_the_table_of_the_version_before_as_it_was() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (hosts, before) = previous_store(&server, &at);
    // A table of that name already stands (an administrator's copy): the move cannot
    // make the month, and must undo all it did.
    server.psql("CREATE TABLE fleet_records_2026m11 (kept TEXT)");
    let refused = at.open().expect_err("the move fails");
    let said = refused.to_string();
    assert!(
        said.contains("fleet_records_2026m11") && said.contains("rolled back"),
        "{said}"
    );
    // Trying again will not change it: a console refuses to start, by name.
    assert!(refused.is_permanent(), "{said}");
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "r", "the old table is left");
    assert_eq!(
        server
            .psql("SELECT count(*), count(DISTINCT (host, seq)) FROM fleet_records")
            .trim(),
        "10|10"
    );
    server.psql("DROP TABLE fleet_records_2026m11");
    let mut db = open(&at);
    for (host, read) in hosts.iter().zip(&before) {
        assert_eq!(&db.host_records(*host).expect("store"), read);
    }
}

/// A store of the version before opened on the report path (a request's deadline, as a
/// pool connection opened for a host's report): the move is never started there (it
/// may take longer than a request may, and a client given up on leaves the server's
/// transaction holding its `ACCESS EXCLUSIVE` lock): refused as pending, nothing locked
/// or changed; the console's start, with no request deadline, then moves it.
#[test]
fn the_report_path_never_moves_the_table_it_says_the_move_is_pending() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (hosts, before) = previous_store(&server, &at);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = at
        .open_by(Some(until))
        .expect_err("refused on the report path");
    let said = refused.to_string();
    assert!(
        said.contains("pending") && said.contains("fleet_records"),
        "{said}"
    );
    // The host sends its report again: not a refusal for good.
    assert!(!refused.is_permanent(), "{said}");
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "r", "the old table is left as it was");
    assert_eq!(
        server
            .psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname LIKE 'fleet_records%' AND l.pid <> pg_backend_pid()"
            )
            .trim(),
        "0",
        "no lock left behind"
    );
    let mut db = open(&at);
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "p", "moved at the console's start");
    for (host, read) in hosts.iter().zip(&before) {
        assert_eq!(&db.host_records(*host).expect("store"), read);
    }
    // Once moved, the report path opens it as any other connection.
    drop(at.open_by(Some(until)).expect("opened on the report path"));
}

/// A console whose start could not move the records (the server not up yet): a host's
/// report through the pool is refused as pending, and the pool moves them from a task
/// of its own, with no request's deadline; the reports after are served.
#[test]
fn the_pool_moves_the_records_from_a_task_of_its_own_when_a_report_finds_it_pending() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (hosts, before) = previous_store(&server, &at);
    let pool =
        pacsguard_store::FleetPool::with_limits(at.clone(), 2, std::time::Duration::from_secs(10));
    let budget = pacsguard_store::FLEET_REQUEST_BUDGET;
    let refused = pool
        .get_until(std::time::Instant::now() + budget)
        .expect_err("the report is refused while the move is pending");
    assert!(refused.to_string().contains("pending"), "{refused}");
    // Counted: the console's silence check counts no host's silence over it.
    assert_eq!(pool.move_refusals(), 1);
    // Waited for what the store says (the table partitioned), not for a time.
    let given_up = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while server
        .psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'")
        .trim()
        != "p"
    {
        assert!(std::time::Instant::now() < given_up, "never moved");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut db = pool
        .get_until(std::time::Instant::now() + budget)
        .expect("served once moved");
    assert_eq!(
        pool.move_failures(),
        0,
        "a move that succeeded ends the count"
    );
    assert_eq!(pool.move_refusals(), 1);
    for (host, read) in hosts.iter().zip(&before) {
        assert_eq!(&db.host_records(*host).expect("store"), read);
    }
}

/// Review of session 34, item 3: the console's silence check takes its connection with
/// no deadline (`FleetPool::get`), and a connection with none ran the move inline: a
/// move failing for good was run at every check (at least once a minute), each holding
/// its exclusive lock up to PG_MIGRATION_DEADLINE, never counted in `move_failures`,
/// never waiting for PG_MOVE_RETRY_AFTER. Now every pool connection is refused as
/// pending and the move is the pool's task alone: run once, counted, not again before
/// its retry time.
#[test]
fn a_pool_connection_without_a_deadline_never_runs_a_failing_move_itself() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let _ = previous_store(&server, &at);
    // A table in the move's way: the move fails for good.
    server.psql("CREATE TABLE fleet_records_2026m11 (kept TEXT)");
    let pool =
        pacsguard_store::FleetPool::with_limits(at.clone(), 2, std::time::Duration::from_secs(10));
    let refused = pool.get().expect_err("refused while the move is pending");
    assert!(refused.to_string().contains("pending"), "{refused}");
    // Waited for what the pool says (its move task ended), not for a time.
    let given_up = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while pool.move_failures() == 0 {
        assert!(std::time::Instant::now() < given_up, "the move never ended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for _ in 0..3 {
        let refused = pool.get().expect_err("still pending");
        assert!(refused.to_string().contains("pending"), "{refused}");
    }
    assert_eq!(pool.move_refusals(), 4, "every refusal counted");
    assert_eq!(
        pool.move_failures(),
        1,
        "not tried again before its retry time"
    );
    let kind = server.psql("SELECT relkind FROM pg_class WHERE relname = 'fleet_records'");
    assert_eq!(kind.trim(), "r", "the old table is left as it was");
}

#[test]
fn the_consoles_queries_of_records_use_each_months_index_and_a_time_range_prunes() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "ws-4");
    store(db.as_mut(), host, "ws-4", 0, 1, OCT_FIFTH);
    store(db.as_mut(), host, "ws-4", 1, 2, NOV_LAST);
    store(db.as_mut(), host, "ws-4", 2, 3, DEC_FIRST);
    drop(db);
    // Enough rows in each of three months for the planner to prefer an index.
    server.psql(&format!(
        "INSERT INTO fleet_records (host, seq, line, received) \
         SELECT h, s, 'x', {OCT_FIFTH} + (s % 3) * 2700000 \
         FROM generate_series(1, 20) AS h, generate_series(3, 3000) AS s; \
         ANALYZE fleet_records"
    ));
    // The statement `host_records_between` runs (the report path's read).
    let plan = server.psql(&format!(
        "EXPLAIN SELECT seq, line FROM fleet_records WHERE host = {host} AND seq >= 100 \
         AND seq < 200 ORDER BY seq"
    ));
    // Each month that holds records read through its own index (an empty one, the
    // months ahead and the default, may be scanned: nothing to read).
    for month in [
        "fleet_records_2026m10",
        "fleet_records_2026m11",
        "fleet_records_2026m12",
    ] {
        assert!(
            plan.contains(&format!("Index Scan using {month}_pkey on {month}")),
            "{month}: {plan}"
        );
    }
    // A range of time reads its months only.
    let plan = server.psql(&format!(
        "EXPLAIN SELECT count(*) FROM fleet_records WHERE received >= {DEC_FIRST} \
         AND received < {DEC_FIRST} + 86400"
    ));
    assert!(plan.contains("fleet_records_2026m12"), "{plan}");
    for other in [
        "fleet_records_2026m10",
        "fleet_records_2026m11",
        "fleet_records_default",
    ] {
        assert!(!plan.contains(other), "{other} pruned: {plan}");
    }
}

/// The connection string of `server` with every statement's plan written to its log
/// (`auto_explain`), to see what the store's own statements read.
fn explained(server: &PgServer) -> String {
    format!(
        "{} options='-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0'",
        server.connection_string()
    )
}

#[test]
fn the_report_paths_read_of_a_hosts_newest_records_reads_their_months_only() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(explained(&server));
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "dx-5");
    store(db.as_mut(), host, "dx-5", 0, 3, OCT_FIFTH);
    store(db.as_mut(), host, "dx-5", 3, 6, NOV_LAST);
    store(db.as_mut(), host, "dx-5", 6, 9, DEC_FIRST);
    store(db.as_mut(), host, "dx-5", 9, 12, JAN_MID);
    let seen = server.log().len();
    let newest = db.host_records_between(host, 9, 12).expect("store");
    assert_eq!(
        newest,
        (9..12).map(|s| (s, line("dx-5", s))).collect::<Vec<_>>()
    );
    let log = server.log();
    let plans = &log[seen..];
    assert!(plans.contains("fleet_records_2027m01"), "{plans}");
    for older in [
        "fleet_records_2026m10",
        "fleet_records_2026m11",
        "fleet_records_2026m12",
    ] {
        assert!(!plans.contains(older), "{older} read: {plans}");
    }
    // Read from further back, every month that may hold them is read.
    assert_eq!(
        db.host_records_between(host, 2, 12).expect("store").len(),
        10
    );
}

/// Review of session 33: a read from before a host's receipt floor (the floor moved up
/// a day after the host's first batch) read every month of the table. Now it is bounded
/// by the host's first receipt: months before it are not read.
#[test]
fn a_read_from_before_the_floor_reads_the_months_since_the_hosts_first_receipt_only() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(explained(&server));
    let mut db = open(&at);
    let older = enrol(db.as_mut(), "ol-7");
    store(db.as_mut(), older, "ol-7", 0, 3, OCT_FIFTH);
    let host = enrol(db.as_mut(), "fr-7");
    store(db.as_mut(), host, "fr-7", 0, 3, DEC_FIRST);
    store(db.as_mut(), host, "fr-7", 3, 6, JAN_MID);
    let seen = server.log().len();
    assert_eq!(
        db.host_records_between(host, 1, 6).expect("store"),
        (1..6).map(|s| (s, line("fr-7", s))).collect::<Vec<_>>()
    );
    let log = server.log();
    let plans = &log[seen..];
    assert!(plans.contains("fleet_records_2027m01"), "{plans}");
    assert!(
        !plans.contains("fleet_records_2026m10"),
        "a month before the host's first receipt read: {plans}"
    );
}

/// Review of session 34, item 4: a console of the version before sharing the store
/// lowers the receipt floor of the records it stores but never the host's first
/// receipt (`first_received`), so its records received before it (its clock behind)
/// were missed by a read from before the floor, bounded by the first receipt alone.
/// Now by the earlier of the two.
#[test]
fn a_read_from_before_the_floor_finds_records_an_older_console_stored_before_the_first_receipt() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "ov-8");
    store(db.as_mut(), host, "ov-8", 0, 3, DEC_FIRST);
    store(db.as_mut(), host, "ov-8", 3, 6, JAN_MID);
    store(db.as_mut(), host, "ov-8", 6, 8, OCT_FIFTH);
    // As the version before leaves it: its batch lowered the floor only.
    server.psql(&format!(
        "UPDATE fleet_hosts SET first_received = {DEC_FIRST} WHERE id = {host}"
    ));
    assert_eq!(
        db.host_records_between(host, 0, 8).expect("store"),
        (0..8).map(|s| (s, line("ov-8", s))).collect::<Vec<_>>()
    );
}

/// A console whose clock went back (a step of NTP, a restored VM) stores records
/// received "before" those it holds: a read from the newer ones' start finds them all.
#[test]
fn records_received_after_the_clock_went_back_are_read_all_the_same() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), "cr-6");
    store(db.as_mut(), host, "cr-6", 0, 3, JAN_MID);
    store(db.as_mut(), host, "cr-6", 3, 6, DEC_FIRST);
    store(db.as_mut(), host, "cr-6", 6, 8, OCT_FIFTH);
    for from in 0..8 {
        assert_eq!(
            db.host_records_between(host, from, 8).expect("store"),
            (from..8).map(|s| (s, line("cr-6", s))).collect::<Vec<_>>(),
            "from {from}"
        );
    }
}

/// Consoles starting at once on a store of the version before (an upgrade of several):
/// one moves the records, the others find them moved; and writers at a month nobody
/// made yet make it once, every record in it.
#[test]
fn consoles_at_once_move_the_records_once_and_make_a_new_month_once() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (hosts, before) = previous_store(&server, &at);
    /// 2031-01-10T00:00:00Z: a month no connection makes ahead.
    const LATER: i64 = 1_925_769_600;
    let writers: Vec<_> = hosts
        .iter()
        .zip(&before)
        .map(|(host, read)| {
            let (at, host, size) = (at.clone(), *host, read.len() as u64);
            std::thread::spawn(move || {
                let mut db = open(&at);
                let name = if size == 6 { "pacs-a" } else { "pacs-b" };
                store(db.as_mut(), host, name, size, size + 2, LATER);
                db.host_records(host).expect("store").len()
            })
        })
        .collect();
    let held: Vec<usize> = writers
        .into_iter()
        .map(|w| w.join().expect("a console"))
        .collect();
    assert_eq!(held, vec![8, 6]);
    assert_eq!(
        server
            .psql(
                "SELECT count(*) FROM fleet_records_2031m01; \
                 SELECT count(*) FROM pg_inherits WHERE inhrelid = 'fleet_records_2031m01'::regclass"
            )
            .lines()
            .collect::<Vec<_>>(),
        vec!["4", "1"]
    );
    assert_eq!(
        server.psql("SELECT count(*) FROM fleet_records").trim(),
        "14"
    );
}

/// A month is attached while another connection's batch is in flight (its transaction
/// open, its records inserted): `ATTACH PARTITION` does not wait for reports' inserts,
/// so the new month is made, not left to the default.
#[test]
fn a_month_is_made_while_another_report_is_being_stored() {
    let server = PgServer::start();
    let target = server.connection_string();
    let at = FleetStoreAt::Postgres(target.clone());
    let mut db = open(&at);
    let a = enrol(db.as_mut(), "ct-a");
    let b = enrol(db.as_mut(), "ct-b");
    store(db.as_mut(), a, "ct-a", 0, 1, DEC_FIRST);
    let mut racer = postgres::Client::connect(&target, postgres::NoTls).expect("connect");
    let mut tx = racer.transaction().expect("begin");
    tx.execute(
        "INSERT INTO fleet_records (host, seq, line, received) VALUES ($1, 1, 'x', $2)",
        &[&a, &DEC_FIRST],
    )
    .expect("a report's insert, not committed");
    // 2031-01-10: a month nobody made.
    store(db.as_mut(), b, "ct-b", 0, 1, 1_925_769_600);
    tx.rollback().expect("rollback");
    assert_eq!(
        where_each(&server),
        vec![
            (0, "fleet_records_2026m12".to_string()),
            (0, "fleet_records_2031m01".to_string()),
        ]
    );
}
