#!/usr/bin/env bash
# bench/fleet.sh: many hosts, one console (issue 14). A console (`pacsguard serve
# --fleet-listen`) and BENCH_HOSTS real host processes (`pacsguard serve`, each with its
# own home, enrolled with a one-time token) on loopback; each host writes audit records
# with a real command (`pacsguard scan` of BENCH_SCAN_FILES scripts, handed to its
# running guard: one finding record per file), back to back, for BENCH_SECONDS. Run
# once with the console's fleet on SQLite and once on PostgreSQL (a cluster started by
# this script, as the tests do). Reports the records/s the console ingested, the time
# from a host's record to the console holding it (p50/p99/max), the console's RSS over
# time, and every host's trail compared with the console's rows (lost, duplicated,
# differing: must be 0). See bench/README.md ("Many hosts, one console").
#
# Environment: PACSGUARD (binary; default target/release/pacsguard, else target/debug),
# BENCH_HOSTS (50), BENCH_SECONDS (60), BENCH_STORES ("sqlite postgres"),
# BENCH_SCAN_FILES (500), BENCH_SCAN_PAUSE (0 s between a host's scans),
# BENCH_SCANS_AT_ONCE (4: scans running at once over all hosts, in turn),
# BENCH_CHECKPOINT_SECONDS (hosts' [watch] checkpoint_seconds; default: the product's),
# BENCH_POLL (0.25 s), BENCH_WORK (bench/work), BENCH_SMALL=1 (5 hosts, 20 s: a few
# minutes in all). Exit 0 when measured (targets missed included), 1 when a record was
# lost, duplicated or altered, 2 when the benchmark could not run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# Measure pacsguard as it runs for users.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

PACSGUARD=$(prebuilt_pacsguard "$here")
small=${BENCH_SMALL:-0}
hosts=${BENCH_HOSTS:-$([[ $small == 1 ]] && echo 5 || echo 50)}
seconds=${BENCH_SECONDS:-$([[ $small == 1 ]] && echo 20 || echo 60)}
for v in hosts seconds; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
stores=${BENCH_STORES:-sqlite postgres}
for s in $stores; do [[ $s == sqlite || $s == postgres ]] || die "BENCH_STORES: sqlite or postgres, not '$s'"; done
if [[ $stores == *postgres* ]] && ! command -v psql >/dev/null; then
    install_packages postgresql postgresql-client
fi
((EUID == 0)) || [[ $stores != *postgres* ]] || warn "not root: PostgreSQL runs as this user"
# Each host holds a few descriptors and the console one per host connection.
ulimit -n 65536 2>/dev/null || true

work=${BENCH_WORK:-$here/work}/fleet
mkdir -p "$work"
# A copy of the binary: a concurrent build cannot swap it mid-run.
cp "$PACSGUARD" "$work/pacsguard.bin"
log "fleet benchmark: $hosts hosts, ${seconds} s of load, stores: $stores, binary $PACSGUARD"
info "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
PACSGUARD=$work/pacsguard.bin WORK=$work HOSTS=$hosts LOAD_SECONDS=$seconds STORES=$stores \
    SCAN_FILES=${BENCH_SCAN_FILES:-500} SCAN_PAUSE=${BENCH_SCAN_PAUSE:-0} \
    SCANS_AT_ONCE=${BENCH_SCANS_AT_ONCE:-4} \
    CHECKPOINT_SECONDS=${BENCH_CHECKPOINT_SECONDS:-} POLL=${BENCH_POLL:-0.25} \
    python3 "$here/fleet.py"
