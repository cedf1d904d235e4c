#!/usr/bin/env python3
"""The fleet benchmark (issue 14), driven by bench/fleet.sh.

One console (`pacsguard serve --fleet-listen`) and HOSTS real host processes (`pacsguard
serve`, each with its own home, enrolled with a one-time token) on loopback. Each host
writes audit records at a high rate with a real command: `pacsguard scan` of a directory
of SCAN_FILES scripts, sent to the host's running guard (one finding record per file),
back to back. The console keeps its fleet on SQLite (the home's store) or on a
PostgreSQL server started here (initdb + pg_ctl on a private Unix socket, as the tests
do).

Measured, per store:
- records/s the console ingested over the load window (its `fleet_hosts.size` summed,
  polled every POLL seconds), beside the records/s the hosts wrote;
- time from a host's record (its `time` field) to the first poll that saw the console
  hold it: p50/p99/max (resolution: POLL);
- the console's RSS every second (start, peak, end, and the slope over the window);
- after the hosts stop and each drains with `audit forward --to console`: every host's
  trail compared, line by line, with the rows the console holds (lost, duplicated,
  differing must be 0).

Environment (see bench/README.md): PACSGUARD, WORK, HOSTS, LOAD_SECONDS, STORES, SCAN_FILES,
SCAN_PAUSE, SCANS_AT_ONCE, CHECKPOINT_SECONDS, POLL, SETUP_JOBS.
"""
import json, os, re, shutil, signal, sqlite3, statistics, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

PG = os.environ["PACSGUARD"]
WORK = os.environ["WORK"]
HOSTS = int(os.environ.get("HOSTS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
STORES = os.environ.get("STORES", "sqlite postgres").split()
SCAN_FILES = int(os.environ.get("SCAN_FILES", "500"))
SCAN_PAUSE = float(os.environ.get("SCAN_PAUSE", "0"))
CHECKPOINT_SECONDS = os.environ.get("CHECKPOINT_SECONDS", "")
POLL = float(os.environ.get("POLL", "0.25"))
SETUP_JOBS = int(os.environ.get("SETUP_JOBS", "4"))
# Scans running at once over all hosts: every host writes, but 50 scans at once on two
# cores measure the scheduler (load 140, the console's store starved), not the fleet.
SCANS_AT_ONCE = int(os.environ.get("SCANS_AT_ONCE", "4"))
DRAIN_WAIT = 120.0


def log(text):
    print(f"==> {text}", file=sys.stderr, flush=True)


def info(text):
    print(f"    {text}", file=sys.stderr, flush=True)


def run(*args, check=True, **kw):
    out = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and out.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, args))}: exit {out.returncode}\n{out.stdout}{out.stderr}")
    return out


def pg(home, *args, check=True):
    return run(PG, "--home", home, *args, check=check)


def parse_time(text):
    # RFC 3339 with microseconds and a Z, as the trail writes it.
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Stderr:
    """A process's stderr collected in a thread, so its pipe never fills."""

    def __init__(self, proc, path):
        self.text = ""
        self.lock = threading.Lock()
        self.file = open(path, "w")
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stderr:
            with self.lock:
                self.text += line
            self.file.write(line)
            self.file.flush()

    def wait_for(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                m = re.search(pattern, self.text)
            if m:
                return m
            time.sleep(0.1)
        return None


def start_serve(home, args, name):
    proc = subprocess.Popen([PG, "--home", home, "serve", "--listen", "127.0.0.1:0", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    err = Stderr(proc, os.path.join(WORK, f"{name}.stderr"))
    if not err.wait_for("watching for changes", 300):
        proc.kill()
        raise SystemExit(f"error: serve of {name} did not start:\n{err.text}")
    return proc, err


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_home(dir, checkpoint_seconds=""):
    """An initialised home guarding a small tree of its own."""
    tree = os.path.join(dir, "tree")
    home = os.path.join(dir, "home")
    os.makedirs(os.path.join(tree, "study"), exist_ok=True)
    with open(os.path.join(tree, "study", "1.dcm"), "wb") as f:
        f.write(b"DICM image one")
    pg(home, "init")
    if checkpoint_seconds:
        config = os.path.join(home, "config.toml")
        with open(config, "a") as f:
            f.write(f"\n[watch]\ncheckpoint_seconds = {checkpoint_seconds}\n")
    pg(home, "profile", tree)
    return home


class Postgres:
    """A PostgreSQL cluster of this run (Debian's server programs, as the tests use)."""

    def __init__(self, base):
        self.base = base
        self.data = os.path.join(base, "data")
        self.socket = os.path.join(base, "socket")
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []
        self.bin = os.path.join("/usr/lib/postgresql", bins[-1], "bin") if bins else ""
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(self.socket)
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.user:
            run("chown", "-R", "postgres:postgres", base)
        self._pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        self._pg("pg_ctl", "-D", self.data, "-l", os.path.join(base, "server.log"), "-w", "-t", "120",
                 "-o", f"-k {self.socket} -p 5432 -c listen_addresses=''", "start")

    def _pg(self, name, *args):
        program = shutil.which(name) or os.path.join(self.bin, name)
        return run(*self.user, program, *args, cwd=self.base)

    def dsn(self):
        return f"host={self.socket} port=5432 user=postgres dbname=postgres"

    def psql(self, sql):
        return run("psql", "-X", "-q", "-At", "-d", self.dsn(), "-c", sql).stdout

    def stop(self):
        self._pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")


class Store:
    """Reads the console's fleet tables as the benchmark's observer (not through the console)."""

    def __init__(self, kind, console_home, postgres):
        self.kind, self.postgres = kind, postgres
        self.path = os.path.join(console_home, "pacsguard.db")
        self.db = None

    def sizes(self):
        if self.kind == "postgres":
            out = self.postgres.psql("SELECT name, size FROM fleet_hosts WHERE revoked IS NULL")
            return {n: int(s) for n, s in (l.split("|") for l in out.split())}
        if self.db is None:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
        return dict(self.db.execute("SELECT name, size FROM fleet_hosts WHERE revoked IS NULL"))

    def records(self, name):
        """(seq, line) the console holds for host `name`, in order."""
        if self.kind == "postgres":
            out = run("psql", "-X", "-q", "-At", "-d", self.postgres.dsn(), "-c",
                      "SELECT r.seq || ' ' || encode(r.line, 'hex') FROM fleet_records r JOIN fleet_hosts h "
                      f"ON h.id = r.host WHERE h.name = '{name}' ORDER BY r.seq").stdout
            rows = []
            for l in out.split("\n"):
                if l:
                    seq, hexline = l.split(" ", 1)
                    rows.append((int(seq), bytes.fromhex(hexline)))
            return rows
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
        rows = list(db.execute("SELECT r.seq, r.line FROM fleet_records r JOIN fleet_hosts h ON h.id = r.host "
                               "WHERE h.name = ? ORDER BY r.seq", (name,)))
        db.close()
        return rows


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pids):
    """utime + stime of these processes (and their threads), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def postgres_pids():
    """The PostgreSQL server's processes (the user postgres runs as)."""
    out = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def trail_lines(home):
    with open(os.path.join(home, "audit.log"), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    return lines[:-1]  # the last element is after the final newline (or a partial line)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def bench(kind):
    base = os.path.join(WORK, kind)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    postgres = Postgres(os.path.join(base, "pg")) if kind == "postgres" else None
    procs = []
    try:
        return measure(kind, base, postgres, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if postgres:
            postgres.stop()


def measure(kind, base, postgres, procs):
    log(f"[{kind}] console and {HOSTS} hosts")
    console_home = new_home(os.path.join(base, "console"))
    if postgres:
        with open(os.path.join(console_home, "config.toml"), "a") as f:
            f.write(f"\n[console]\nfleet_store = '{postgres.dsn()}'\n")
    console, console_err = start_serve(console_home, ["--fleet-listen", "127.0.0.1:0"], f"{kind}-console")
    procs.append(console)
    url = console_err.wait_for(r"listening for hosts at (tls://\S+)", 10).group(1)
    fingerprint = console_err.wait_for(r"SHA-256 fingerprint (\S+)", 10).group(1)

    names = [f"host-{i:03d}" for i in range(HOSTS)]
    token_lock = threading.Lock()

    def enrol(name):
        home = new_home(os.path.join(base, name), CHECKPOINT_SECONDS)
        # One at a time, tried again (said) on a failure: `console enrol-token` beside
        # the running console once failed with SQLite's "disk I/O error" (the console's
        # watcher dropped its store locks; fixed, see bench/README.md).
        with token_lock:
            for attempt in range(3):
                out = pg(console_home, "console", "enrol-token", "--expires", "1h", check=attempt == 2)
                if out.returncode == 0:
                    break
                info(f"!!! console enrol-token failed ({out.returncode}): {out.stderr.strip()[:200]}; again")
                time.sleep(1)
        token = out.stdout.strip()
        pg(home, "enroll", url, "--token", token, "--fingerprint", fingerprint, "--name", name)
        return home

    t = time.time()
    with ThreadPoolExecutor(SETUP_JOBS) as ex:
        homes = dict(zip(names, ex.map(enrol, names)))
    info(f"{HOSTS} homes made and enrolled in {time.time() - t:.1f} s")
    hosts = {}
    for name in names:
        proc, _ = start_serve(homes[name], [], f"{kind}-{name}")
        procs.append(proc)
        hosts[name] = proc
    info("every host serving")

    incoming = os.path.join(WORK, f"incoming-{SCAN_FILES}")
    if not os.path.isdir(incoming):
        os.makedirs(incoming + ".tmp", exist_ok=True)
        for i in range(SCAN_FILES):
            with open(os.path.join(incoming + ".tmp", f"{i}.sh"), "w") as f:
                f.write(f"#!/bin/sh\necho {i}\n")
        os.rename(incoming + ".tmp", incoming)

    store = Store(kind, console_home, postgres)
    # Wait until every host has delivered its first records (the console knows them all).
    deadline = time.time() + 120
    while time.time() < deadline:
        sizes = store.sizes()
        if len(sizes) == HOSTS and all(v > 0 for v in sizes.values()):
            break
        time.sleep(0.5)
    else:
        sizes = store.sizes()
        silent = [n for n in names if not sizes.get(n)]
        info(f"!!! {len(silent)} host(s) delivered nothing within 120 s: {' '.join(silent[:10])}")

    polls, rss = [], []
    stopping = threading.Event()
    scans = {"done": 0, "failed": 0}

    loading = True

    gate = threading.Semaphore(SCANS_AT_ONCE)

    def load(name):
        while loading:
            with gate:
                if not loading:
                    break
                out = pg(homes[name], "scan", incoming, check=False)
            # exit 1: findings (each file raises one); anything else is a failure.
            scans["done" if out.returncode in (0, 1) else "failed"] += 1
            if out.returncode not in (0, 1) and scans["failed"] <= 3:
                info(f"scan on {name} failed ({out.returncode}): {out.stderr.strip()[:300]}")
            if SCAN_PAUSE and loading:
                time.sleep(SCAN_PAUSE)

    def observe():
        next_rss = 0.0
        while not stopping.is_set():
            now = time.time()
            try:
                polls.append((now, store.sizes()))
            except Exception as e:  # a busy store: said, the next poll tries again
                info(f"poll: {e}")
            if now >= next_rss:
                rss.append((now, rss_kib(console.pid)))
                next_rss = now + 1.0
            time.sleep(POLL)

    log(f"[{kind}] load for {SECONDS:.0f} s: each host scans {SCAN_FILES} files back to back")
    t0 = time.time()
    start_sizes = store.sizes()
    pg_pids = postgres_pids() if postgres else []
    cpu0 = (cpu_seconds([console.pid]), cpu_seconds(pg_pids))
    threads = [threading.Thread(target=load, args=(n,)) for n in names]
    observer = threading.Thread(target=observe)
    observer.start()
    for th in threads:
        th.start()
    time.sleep(SECONDS)
    loading = False
    for th in threads:
        th.join()
    t1 = time.time()
    end_sizes = polls[-1][1] if polls else store.sizes()
    cpu1 = (cpu_seconds([console.pid]), cpu_seconds(pg_pids))
    # The hosts keep serving: polled on until the console holds every record written
    # during the load (so the last records' latency is measured too), or DRAIN_WAIT.
    written = {n: len(trail_lines(homes[n])) for n in names}
    written_during = sum(written.values())
    caught_up = None
    deadline = time.time() + DRAIN_WAIT
    while time.time() < deadline:
        if polls and all(polls[-1][1].get(n, 0) >= written[n] for n in names):
            caught_up = time.time() - t1
            break
        time.sleep(POLL)
    stopping.set()
    observer.join()
    peak = rss_kib(console.pid, "VmHWM")

    log(f"[{kind}] draining: hosts stopped, then `audit forward --to console` each")
    for name in names:
        stop(hosts[name])
    drain_t = time.time()
    for name in names:
        for _ in range(20):
            out = pg(homes[name], "audit", "forward", "--to", "console", check=False)
            if out.returncode == 0 and not out.stdout.startswith("forwarded 0 "):
                continue  # more may follow (a batch is at most MAX_BATCH_BYTES)
            if out.returncode == 0:
                break
            time.sleep(1)
    info(f"drained in {time.time() - drain_t:.1f} s")

    # Latency: for each record written after t0, the first poll at which the console
    # held it, minus the record's own time.
    latencies, unseen = [], 0
    lost = dup = differ = total = 0
    per_host_missing = {}
    for name in names:
        lines = trail_lines(homes[name])
        total += len(lines)
        seen_at = [(t, s.get(name, 0)) for t, s in polls]
        j = 0
        for seq, line in enumerate(lines):
            rec = json.loads(line)
            when = parse_time(rec["time"])
            if when < t0:
                continue
            while j < len(seen_at) and seen_at[j][1] <= seq:
                j += 1
            if j < len(seen_at):
                latencies.append(seen_at[j][0] - when)
            else:
                unseen += 1
        rows = store.records(name)
        seqs = [s for s, _ in rows]
        dup += len(seqs) - len(set(seqs))
        held = dict(rows)
        for seq, line in enumerate(lines):
            got = held.get(seq)
            if got is None:
                lost += 1
            elif bytes(got) != line:
                differ += 1
        extra = len(set(seqs) - set(range(len(lines))))
        if extra or any(held.get(s) is None for s in range(len(lines))):
            per_host_missing[name] = (len(lines), len(rows), extra)
    stop(console)
    procs.remove(console)

    window = t1 - t0
    ingested = sum(end_sizes.values()) - sum(start_sizes.values())
    rss_values = [k for _, k in rss if k]
    # RSS slope over the second half of the window (KiB/s), least squares.
    half = [(t, k) for t, k in rss if k and t >= t0 + window / 2]
    slope = float("nan")
    if len(half) >= 3:
        mt = statistics.fmean(t for t, _ in half)
        mk = statistics.fmean(k for _, k in half)
        den = sum((t - mt) ** 2 for t, _ in half)
        slope = sum((t - mt) * (k - mk) for t, k in half) / den if den else float("nan")
    result = {
        "store": kind, "hosts": HOSTS, "window_s": round(window, 1),
        "scans": scans["done"], "scans_failed": scans["failed"],
        "records_written_total": total,
        "ingested": ingested, "ingested_per_s": round(ingested / window, 1),
        "written_per_s": round((written_during - sum(start_sizes.values())) / window, 1),
        "backlog_at_stop": written_during - sum(end_sizes.values()),
        "caught_up_after_s": round(caught_up, 1) if caught_up is not None else None,
        "console_cpu_s": round(cpu1[0] - cpu0[0], 1),
        "postgres_cpu_s": round(cpu1[1] - cpu0[1], 1),
        "records_per_console_cpu_s": round(ingested / max(cpu1[0] - cpu0[0], 0.01)),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p99_s": round(percentile(latencies, 99), 3),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "latency_samples": len(latencies), "unseen_before_stop": unseen,
        "rss_start_mib": round(rss_values[0] / 1024, 1) if rss_values else None,
        "rss_end_mib": round(rss_values[-1] / 1024, 1) if rss_values else None,
        "rss_peak_mib": round(peak / 1024, 1) if peak else None,
        "rss_slope_kib_per_s": round(slope, 1),
        "lost": lost, "duplicated": dup, "differing": differ,
        "hosts_incomplete": per_host_missing,
    }
    with open(os.path.join(base, "rss.tsv"), "w") as f:
        for t, k in rss:
            f.write(f"{t - t0:.1f}\t{k}\n")
    with open(os.path.join(base, "ingest.tsv"), "w") as f:
        for t, s in polls:
            f.write(f"{t - t0:.2f}\t{sum(s.values())}\n")
    return result


def main():
    os.makedirs(WORK, exist_ok=True)
    results = []
    for kind in STORES:
        r = bench(kind)
        results.append(r)
        info(json.dumps(r))
    lines = [
        f"| store | hosts | window | written/s by the hosts | ingested/s (target ≥ 20,000) | console CPU (records per CPU-s) | p50 / p99 / max record→console (target p99 ≤ 2 s) | console RSS start → end (peak), slope | lost / dup / differing |",
        "|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['store']} | {r['hosts']} | {r['window_s']} s | {r['written_per_s']:,} "
            f"| {r['ingested_per_s']:,} ({r['ingested']:,} records) "
            f"| {r['console_cpu_s']} s ({r['records_per_console_cpu_s']:,}/s){', PostgreSQL ' + str(r['postgres_cpu_s']) + ' s' if r['store'] == 'postgres' else ''} "
            f"| {r['latency_p50_s']} / {r['latency_p99_s']} / {r['latency_max_s']} s "
            f"| {r['rss_start_mib']} → {r['rss_end_mib']} MiB ({r['rss_peak_mib']}), {r['rss_slope_kib_per_s']} KiB/s "
            f"| {r['lost']} / {r['duplicated']} / {r['differing']} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    bad = [r for r in results if r["lost"] or r["duplicated"] or r["differing"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
