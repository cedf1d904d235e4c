#!/usr/bin/env bash
# Audit-trail benchmark: append throughput with group commit, offline verification of the
# whole log, proof sizes, and the same append load through logger -> rsyslog for
# comparison, measured in one run on this machine. Prints medians and ratios.
#
#   bench/audit.sh                         1,000,000 records, fsync + checkpoint every 1,000
#   BENCH_RECORDS=100000 bench/audit.sh    quicker
set -euo pipefail
cd "$(dirname "$0")/.."

records=${BENCH_RECORDS:-1000000}
batch=${BENCH_BATCH:-1000}
runs=${BENCH_RUNS:-3}
work=${BENCH_WORK:-bench/work}/audit
mkdir -p "$work"
work=$(cd "$work" && pwd)

# rsyslog is the anchor; install it only if missing (the benchmark needs root for that).
if ! command -v rsyslogd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends rsyslog >/dev/null
fi

cargo build --release -q -p pacsguard-audit --example trail_bench
bench=${CARGO_TARGET_DIR:-target}/release/examples/trail_bench

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "==> pacsguard trail: $records records, checkpoint every $batch, $runs runs" >&2
: > "$work/pacsguard.txt"
for _ in $(seq "$runs"); do
  "$bench" "$records" "$batch" "$work/trail" | tee -a "$work/pacsguard.txt" >&2
done
append_rate=$(grep '^append_records_per_second=' "$work/pacsguard.txt" | cut -d= -f2 | median)
append_s=$(grep '^append_seconds=' "$work/pacsguard.txt" | cut -d= -f2 | median)
verify_s=$(grep '^verify_seconds=' "$work/pacsguard.txt" | cut -d= -f2 | median)
proofs=$(grep '^proof_size_' "$work/pacsguard.txt" | sort -u | sort -t_ -k3 -n)

# The same number of messages of the same size through logger(1) into a private rsyslogd
# writing a file (no fsync: rsyslog's default). Rate limiting is switched off, or rsyslog
# would drop most of them.
echo "==> logger -> rsyslog: $records messages" >&2
msgs="$work/messages.txt"
if [[ ! -s $msgs || $(wc -l < "$msgs") -ne $records ]]; then
  python3 - "$records" "$msgs" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        f.write(f'{{"seq":{i},"host":"bench-host","time":"2026-11-28T22:56:10.748855Z","actor":{{"user":"root","uid":0}},"action":"check","outcome":"findings","objects":["/srv/pacs/archive/2026/11/28/study-{i//1000}/series-{i//100}/{i}.dcm"],"finding":{{"path":"/srv/pacs/archive/2026/11/28/study-{i//1000}/series-{i//100}/{i}.dcm","kind":"added","severity":"info","detail":"new file of 524288 bytes"}}}}\n')
PY
fi
rsyslog_times=()
for _ in $(seq "$runs"); do
  rm -rf "$work/rsyslog" && mkdir -p "$work/rsyslog"
  cat > "$work/rsyslog/rsyslog.conf" <<CONF
global(workDirectory="$work/rsyslog" maxMessageSize="8k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$work/rsyslog/log.sock" RateLimit.Interval="0")
template(name="raw" type="string" string="%msg%\n")
*.* action(type="omfile" file="$work/rsyslog/out.log" template="raw")
CONF
  rsyslogd -n -f "$work/rsyslog/rsyslog.conf" -i "$work/rsyslog/pid" &
  pid=$!
  for _ in $(seq 100); do [[ -S $work/rsyslog/log.sock ]] && break; sleep 0.05; done
  start=$(date +%s.%N)
  logger --socket "$work/rsyslog/log.sock" --size 8192 -t pacsguard -f "$msgs"
  # Delivery is asynchronous: the run ends when the last message is in the file.
  deadline=$((SECONDS + 600))
  while [[ $(wc -l < "$work/rsyslog/out.log" 2>/dev/null || echo 0) -lt $records && $SECONDS -lt $deadline ]]; do sleep 0.05; done
  end=$(date +%s.%N)
  got=$(wc -l < "$work/rsyslog/out.log")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  t=$(echo "$end - $start" | bc -l)
  echo "    rsyslog: $got of $records messages in $t s" >&2
  rsyslog_times+=("$t")
done
rsyslog_s=$(printf '%s\n' "${rsyslog_times[@]}" | median)
rsyslog_rate=$(echo "$records / $rsyslog_s" | bc -l)

cat <<REPORT

## Audit trail ($(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD), $records records, median of $runs)

| measurement | median | target | result |
|---|---:|---:|---|
| pacsguard append, fsync + signed checkpoint every $batch records | $(printf '%.0f' "$append_rate") records/s ($(printf '%.2f' "$append_s") s) | >= 50,000 records/s | $(awk -v r="$append_rate" 'BEGIN { print (r >= 50000 ? "PASS" : "FAIL") }') |
| logger -> rsyslog -> file (no fsync) | $(printf '%.0f' "$rsyslog_rate") messages/s ($(printf '%.2f' "$rsyslog_s") s) | (anchor) | |
| ratio pacsguard / rsyslog | $(echo "$append_rate / $rsyslog_rate" | bc -l | xargs printf '%.2f')x | | |
| audit verify of $records records | $(printf '%.2f' "$verify_s") s | <= 10 s for 1,000,000 | $(awk -v s="$verify_s" -v n="$records" 'BEGIN { print (n >= 1000000 ? (s <= 10 ? "PASS" : "FAIL") : "n/a (needs 1,000,000)") }') |

Proof sizes (hashes of 32 bytes; they grow with log2 n):
$(echo "$proofs" | sed 's/^proof_size_\([0-9]*\)=/- n = \1: /')
REPORT
