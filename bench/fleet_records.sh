#!/usr/bin/env bash
# bench/fleet_records.sh: the hosts' records on PostgreSQL at volume (issue 14 item 6,
# issue 13's 1,000,000 findings), before and after they are partitioned by month. See
# bench/README.md ("The hosts' records by month").
#
# A PostgreSQL cluster of its own (initdb + pg_ctl on a private socket, as the tests
# and bench/fleet.sh do); the fleet's tables made by the real binary (`pacsguard
# console hosts` with `[console] fleet_store`), `fleet_records` laid out as the version
# before made it (one table, primary key (host, seq)) and filled with BENCH_RECORDS
# records of BENCH_HOSTS hosts signed by checkpoints spread over BENCH_MONTHS months.
# Then, with pgbench (one client, BENCH_SECONDS each, every statement's latency
# logged), the console's statements on records, before and after:
#   read   the report path's read of a host's records by sequence number
#          (`host_records_between`: a re-sent batch compared, the unsigned backlog),
#          100 records of a random host at a random place;
#   write  a batch of 100 records stored (`accept_batch`'s insert);
#   anchor `SELECT 1` on the same connection: ratios are to it, measured in the same run.
# Between the two, the real binary opens the store again, which moves the records
# into the partitioned table (timed; rows counted before and after).
#
# Environment: PACSGUARD (binary; default target/release/pacsguard, else target/debug),
# BENCH_RECORDS (1000000), BENCH_HOSTS (50), BENCH_MONTHS (12), BENCH_LINE_BYTES (300),
# BENCH_SECONDS (20), BENCH_WORK (bench/work).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

PACSGUARD=$(prebuilt_pacsguard "$here")
records=${BENCH_RECORDS:-1000000}
hosts=${BENCH_HOSTS:-50}
months=${BENCH_MONTHS:-12}
line_bytes=${BENCH_LINE_BYTES:-300}
seconds=${BENCH_SECONDS:-20}
for v in records hosts months line_bytes seconds; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
per=$((records / hosts))
((per >= 200)) || die "at least 200 records a host (BENCH_RECORDS / BENCH_HOSTS)"
for tool in psql pgbench initdb pg_ctl; do
    command -v "$tool" >/dev/null || ls /usr/lib/postgresql/*/bin/"$tool" >/dev/null 2>&1 ||
        install_packages postgresql postgresql-client
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PATH=$PATH:$pgbin

work=${BENCH_WORK:-$here/work}/fleet-records
rm -rf "$work"
mkdir -p "$work/pg/socket" "$work/log"
as_pg=()
if ((EUID == 0)); then
    as_pg=(runuser -u postgres --)
    chown -R postgres:postgres "$work/pg"
fi
"${as_pg[@]}" initdb -D "$work/pg/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" pg_ctl -D "$work/pg/data" -l "$work/pg/server.log" -w -t 120 \
    -o "-k $work/pg/socket -p 5432 -c listen_addresses=''" start >/dev/null
trap '"${as_pg[@]}" pg_ctl -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT
dsn="host=$work/pg/socket port=5432 user=postgres dbname=postgres"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$dsn" -c "$1"; }

log "PostgreSQL $(sql 'SHOW server_version'), $records records of $hosts hosts over $months months, binary $PACSGUARD"
info "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PACSGUARD" --home "$work/console" init >/dev/null
printf '\n[console]\nfleet_store = "%s"\n' "$dsn" >>"$work/console/config.toml"
"$PACSGUARD" --home "$work/console" console hosts >/dev/null

log "laying fleet_records out as the version before did, and filling it"
start=$(date -u -d "$(date -u +%Y-%m-01) -$((months - 1)) months" +%s)
span=$(($(date -u +%s) - start))
sql "DROP TABLE fleet_records CASCADE;
     CREATE TABLE fleet_records (host BIGINT NOT NULL, seq BIGINT NOT NULL, line BYTEA NOT NULL,
                                 PRIMARY KEY (host, seq));
     INSERT INTO fleet_hosts (id, name, fingerprint, enrolled, size)
         SELECT h, 'host-' || h, 'fp-' || h, $start, $per FROM generate_series(1, $hosts) AS h;
     INSERT INTO fleet_records (host, seq, line)
         SELECT h, s, convert_to(repeat('x', $line_bytes), 'UTF8')
         FROM generate_series(1, $hosts) AS h, generate_series(0, $per - 1) AS s;
     INSERT INTO fleet_checkpoints (host, size, note, cosignature, received)
         SELECT h, k, 'note', 'cosigned', $start + ($span::numeric * k / $per)::bigint
         FROM generate_series(1, $hosts) AS h,
              generate_series(100, $per, 100) AS k;"
sql "VACUUM ANALYZE" 2>/dev/null
info "fleet_records: $(sql "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('fleet_records'))
                              FROM fleet_records")"

# Reads as the console makes them. The version before: one statement. This one: the
# host's receipt floor first, then the read bounded by it (the least bigint, nothing pruned,
# when the read begins before the floor). *newest*: 50 of a host's newest records (a
# batch sent again, the backlog no checkpoint signed yet: the report path's reads);
# *anywhere*: 50 records at a random place (a host sending again from far back).
for phase in before after; do
    for where in newest anywhere; do
        if [[ $where == newest ]]; then
            range="random($((per - 100)), $((per - 50)))"
        else
            range="random(0, $((per - 50)))"
        fi
        {
            echo "\\set host random(1, $hosts)"
            echo "\\set seq $range"
            if [[ $phase == before ]]; then
                echo "SELECT seq, line FROM fleet_records WHERE host = :host AND seq >= :seq AND seq < :seq + 50 ORDER BY seq;"
            else
                echo "SELECT COALESCE((SELECT floor_received FROM fleet_hosts WHERE id = :host AND floor_size <= :seq), -9223372036854775807) AS floor \\gset"
                echo "SELECT seq, line FROM fleet_records WHERE host = :host AND seq >= :seq AND seq < :seq + 50 AND received >= :floor ORDER BY seq;"
            fi
        } >"$work/$where-$phase.sql"
    done
done
# The version before wrote no receipt time; this one writes the console's clock.
for phase in before after; do
    received=""
    value=""
    if [[ $phase == after ]]; then
        received=", received"
        value=", extract(epoch FROM now())::bigint"
    fi
    cat >"$work/write-$phase.sql" <<EOF
\set host random(1, $hosts)
\set seq random($((per + 1000)), 2000000000)
INSERT INTO fleet_records (host, seq, line$received)
    SELECT :host, s, convert_to(repeat('y', $line_bytes), 'UTF8')$value
    FROM generate_series(:seq, :seq + 99) AS s ON CONFLICT DO NOTHING;
EOF
done
echo "SELECT 1;" >"$work/anchor.sql"

# measure PHASE: each statement's p50 / p99 in ms, as pgbench logged them.
measure() {
    local phase=$1 what
    for what in anchor newest anywhere write; do
        rm -f "$work/log/$what-$phase".*
        local script=$work/$what-$phase.sql
        [[ $what == anchor ]] && script=$work/anchor.sql
        pgbench -n -h "$work/pg/socket" -p 5432 -U postgres -c 1 -T "$seconds" \
            -f "$script" -l --log-prefix="$work/log/$what-$phase" postgres >/dev/null 2>&1 ||
            die "pgbench $what ($phase) failed"
        cat "$work/log/$what-$phase".* | awk '{print $3}' | sort -n >"$work/log/$what-$phase.sorted"
        python3 - "$work/log/$what-$phase.sorted" "$phase" "$what" <<'PY' >>"$work/results.txt"
import sys
us = [int(l) for l in open(sys.argv[1]) if l.strip()]
p = lambda q: us[min(len(us) - 1, int(q * len(us)))] / 1000
print(f"{sys.argv[2]} {sys.argv[3]} {len(us)} {p(0.5):.3f} {p(0.99):.3f}")
PY
    done
}
: >"$work/results.txt"
log "before: one table (the version before)"
measure before

log "opening the store with the binary: the records move into months"
# The batches the write measurement stored are taken out: both phases read the same rows.
sql "DELETE FROM fleet_records WHERE seq >= $per"
counted_before=$(sql "SELECT count(*) FROM fleet_records")
t0=$(date +%s.%N)
"$PACSGUARD" --home "$work/console" console hosts >/dev/null
t1=$(date +%s.%N)
counted_after=$(sql "SELECT count(*) FROM fleet_records")
moved_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
kind=$(sql "SELECT relkind FROM pg_class WHERE relname = 'fleet_records'")
parts=$(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = 'fleet_records'::regclass")
info "moved in $moved_s s: $counted_before rows before, $counted_after after; relkind $kind, $parts partitions"
[[ $counted_before == "$counted_after" && $kind == p ]] || die "the move lost rows or did not partition"
# Each host's receipt floor as this version keeps it once it stored a batch: at the
# sequence number 100 before the newest, dated by the checkpoint formula above (a
# bound every record from there on was received at or after).
sql "UPDATE fleet_hosts SET floor_size = $per - 100,
         floor_received = $start + ($span::numeric * ($per - 100) / $per)::bigint - 1"
sql "VACUUM ANALYZE" 2>/dev/null
log "after: partitioned by month"
measure after

log "results (ms; ratio: p50 over the anchor's p50 of the same phase)"
python3 - "$work/results.txt" "$records" "$moved_s" "$parts" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
r = {(ph, w): (int(n), float(a), float(b)) for ph, w, n, a, b in rows}
print(f"| statement ({int(sys.argv[2]):,} records) | before p50 / p99 | before ÷ anchor | after ({sys.argv[4]} partitions) p50 / p99 | after ÷ anchor | after ÷ before (p50) |")
print("|---|---|---:|---|---:|---:|")
for w in ["anchor", "newest", "anywhere", "write"]:
    b, a = r[("before", w)], r[("after", w)]
    print(f"| {w} | {b[1]:.3f} / {b[2]:.3f} ms ({b[0]:,}) | {b[1] / r[('before', 'anchor')][1]:.1f} | "
          f"{a[1]:.3f} / {a[2]:.3f} ms ({a[0]:,}) | {a[1] / r[('after', 'anchor')][1]:.1f} | {a[1] / b[1]:.2f} |")
print(f"move of {int(sys.argv[2]):,} records into months: {sys.argv[3]} s")
PY
