#!/usr/bin/env python3
"""bench/watch/harness.py: drives `pacsguard watch`, `inotifywait` and `fatrace` for
bench/watch.sh.  Python 3 standard library only.

Every subcommand writes one JSON result file; bench/watch/report.py turns them into the
summary table.  All times a tool's line is compared with are taken with time.time()
(CLOCK_REALTIME) in this process: the writer stamps right after close(), the reader
stamps a line when it arrives on the pipe.  The same code path reads all three tools.

Subcommands:
  mktree idle  DIR DIRS FILES          DIRS x FILES tiny files (reused by marker)
  mktree scrub DIR FILES BYTES         FILES files of BYTES bytes each
  latency TOOL ROOT OUT [options]      close-to-report latency of small files
  burst TOOL ROOT OUT [options]        loss on a burst in new nested directories
  idle ROOT OUT [options]              CPU and memory of an idle watcher
  scrub ROOT OUT [options]             bytes read per second by the scrub
"""

import argparse
import datetime
import json
import os
import re
import selectors
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHILDREN = []  # every process started here, killed on the way out
PIDFILE = os.environ.get("WATCH_BENCH_PIDFILE")


def note(text):
    print(f"    {text}", file=sys.stderr, flush=True)


def warn(text):
    print(f"!!! {text}", file=sys.stderr, flush=True)


# ---- minimal DICOM Part 10 instances -------------------------------------------------

SOP_CLASS = b"1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
EXPLICIT_LE = b"1.2.840.10008.1.2.1"
LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}


def _el(group, elem, vr, value):
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB", "OW") else b" "
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def dicom(n, side=16):
    """A small, valid Secondary Capture instance (~1 KiB with side=16), unique per n."""
    uid = b"2.25.%d" % (271828182845904523536 + n)
    meta = (
        _el(2, 0x0001, "OB", b"\0\1")
        + _el(2, 0x0002, "UI", SOP_CLASS)
        + _el(2, 0x0003, "UI", uid)
        + _el(2, 0x0010, "UI", EXPLICIT_LE)
        + _el(2, 0x0012, "UI", b"1.2.826.0.1.3680043.10.1137")
    )
    ds = (
        _el(0x0008, 0x0016, "UI", SOP_CLASS)
        + _el(0x0008, 0x0018, "UI", uid)
        + _el(0x0008, 0x0060, "CS", b"OT")
        + _el(0x0010, 0x0010, "PN", b"BENCH^WATCH")
        + _el(0x0010, 0x0020, "LO", b"BENCH%d" % (n % 97))
        + _el(0x0020, 0x000D, "UI", b"2.25.31415926535897932384")
        + _el(0x0020, 0x000E, "UI", b"2.25.27182818284590452353")
        + _el(0x0028, 0x0002, "US", struct.pack("<H", 1))
        + _el(0x0028, 0x0004, "CS", b"MONOCHROME2")
        + _el(0x0028, 0x0010, "US", struct.pack("<H", side))
        + _el(0x0028, 0x0011, "US", struct.pack("<H", side))
        + _el(0x0028, 0x0100, "US", struct.pack("<H", 8))
        + _el(0x0028, 0x0101, "US", struct.pack("<H", 8))
        + _el(0x0028, 0x0102, "US", struct.pack("<H", 7))
        + _el(0x0028, 0x0103, "US", struct.pack("<H", 0))
        + _el(0x7FE0, 0x0010, "OW", bytes((n * 7 + i) & 0xFF for i in range(side * side)))
    )
    return b"\0" * 128 + b"DICM" + _el(2, 0, "UL", struct.pack("<I", len(meta))) + meta + ds


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# ---- processes ------------------------------------------------------------------------


def remember(proc):
    CHILDREN.append(proc)
    if PIDFILE:
        with open(PIDFILE, "a") as f:
            f.write(f"{proc.pid}\n")


def cleanup(*_):
    for proc in CHILDREN:
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
    for proc in CHILDREN:
        try:
            proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            pass


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def stop(proc, timeout=120):
    """SIGTERM, then wait; SIGKILL after `timeout`.  Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            warn(f"pid {proc.pid} ignored SIGTERM for {timeout} s; killing it")
            proc.kill()
            proc.wait()
    return proc.returncode


def tool_command(tool, root, args, events):
    """The command line of `tool` watching `root`; `events` is inotifywait's -e list."""
    if tool == "inotifywait":
        # stdbuf: a line is on the pipe as soon as it is printed, not when 4 KiB fill up.
        return ["stdbuf", "-oL", "inotifywait", "-m", "-r", "-e", events,
                "--format", "%e %w%f", root]
    if tool == "fatrace":
        # -c: only the file system of the current directory (cwd is set to the root);
        # -t -t: its own epoch timestamp; -f CW: close and write events.
        return ["stdbuf", "-oL", "fatrace", "-c", "-t", "-t", "-f", "CW"]
    if tool.startswith("pacsguard"):
        return [args.pacsguard, "--home", args.home, "watch", root,
                "--policy", "append-only", "--json"]
    raise SystemExit(f"unknown tool {tool}")


def pacsguard_home(args, watch_config):
    """A fresh home with `watch_config` appended to its config.toml as [watch]."""
    shutil.rmtree(args.home, ignore_errors=True)
    subprocess.run([args.pacsguard, "--home", args.home, "init"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(args.home, "config.toml"), "a") as f:
        f.write("\n[watch]\n")
        for key, value in watch_config.items():
            f.write(f"{key} = {value}\n")


def start(tool, root, args, stdout, stderr_path, events="close_write"):
    cmd = tool_command(tool, root, args, events)
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    env.pop("RUST_LIB_BACKTRACE", None)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=open(stderr_path, "wb"), cwd=root, env=env)
    remember(proc)
    return proc


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def wait_for_text(path, text, proc, timeout, also=None):
    """Polls the file at `path` until it contains `text`; returns seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        content = read_text(path)
        if text in content:
            return time.monotonic() - t0
        if also and also in content:
            return None
        if proc.poll() is not None:
            raise SystemExit(f"the watcher exited ({proc.returncode}) while starting:\n"
                             + content[-2000:])
        time.sleep(0.05)
    raise SystemExit(f"no '{text}' after {timeout} s:\n" + read_text(path)[-2000:])


# ---- lines ------------------------------------------------------------------------------

# What pacsguard may report for a burst of new files: each file and directory added;
# overflow and watch-limit notices. Anything else (content-changed, ransomware-suspected,
# ...) is a false alert: nothing but creations happen.
EXPECTED_IN_BURST = ("added", "events-lost", "not-watched")

FATRACE_RE = re.compile(rb"^(\d+\.\d+) \S.*?\(\d+\): ([A-Z+<>]+) +(.*)$")


def parse_line(tool, line):
    """(path, extra) named by one output line, or None.  `extra` is the tool's own
    timestamp (fatrace, pacsguard) or event names (inotifywait), plus pacsguard's kind."""
    if tool == "inotifywait":
        events, _, path = line.partition(b" ")
        return path.decode("utf-8", "surrogateescape"), {"events": events.decode()}
    if tool == "fatrace":
        m = FATRACE_RE.match(line)
        if not m:
            return None
        return m.group(3).decode("utf-8", "surrogateescape"), {
            "time": float(m.group(1)), "flags": m.group(2).decode()}
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    stamp = obj.get("time", "")
    try:
        t = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        t = None
    return obj.get("path", ""), {"time": t, "kind": obj.get("kind"),
                                 "severity": obj.get("severity"),
                                 "detail": obj.get("detail")}


class PipeReader:
    """Reads a child's stdout without threads; stamps each line with time.time() when
    the bytes holding it were read."""

    def __init__(self, proc):
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buf = b""
        self.eof = False

    def pump(self, until, on_line):
        """Reads lines until monotonic time `until` (at least one non-blocking pass)."""
        while True:
            left = until - time.monotonic()
            ready = self.sel.select(max(left, 0))
            if ready and not self.eof:
                try:
                    data = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    data = None
                stamp = time.time()
                if data == b"":
                    self.eof = True
                elif data:
                    self.buf += data
                    *lines, self.buf = self.buf.split(b"\n")
                    for line in lines:
                        on_line(stamp, line)
                    continue  # drain whatever else is waiting before the deadline check
            if left <= 0 or self.eof:
                return


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values):
    if not values:
        return None
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "median": statistics.median(ms),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "min": min(ms),
        "mean": statistics.fmean(ms),
    }


def seed_tree(root, files=10):
    """A small tree to profile: a few instances in one series directory."""
    os.makedirs(os.path.join(root, "seed"), exist_ok=True)
    for i in range(files):
        write_file(os.path.join(root, "seed", f"s{i:03d}.dcm"), dicom(900_000 + i))


def make_ready(tool, root, proc, reader_or_file, stderr_path, timeout):
    """Waits until the tool is watching: for pacsguard its 'watching for changes'
    notice; then, for every tool, probe files until one of them is reported."""
    t0 = time.monotonic()
    if tool.startswith("pacsguard"):
        wait_for_text(stderr_path, "watching for changes", proc, timeout)
    probe_dir = os.path.join(root, "probe")
    os.makedirs(probe_dir, exist_ok=True)
    time.sleep(0.2 if tool == "inotifywait" else 0.0)
    seen = set()
    n = 0
    while time.monotonic() - t0 < timeout:
        path = os.path.join(probe_dir, f"p{n:04d}.dcm")
        write_file(path, dicom(800_000 + n))
        n += 1
        deadline = time.monotonic() + 0.2
        if isinstance(reader_or_file, PipeReader):
            def on_line(_stamp, line):
                parsed = parse_line(tool, line)
                if parsed and parsed[0].startswith(probe_dir):
                    seen.add(parsed[0])
            reader_or_file.pump(deadline, on_line)
        else:
            time.sleep(0.2)
            if "/probe/p" in read_text(reader_or_file):
                seen.add(path)
        if seen:
            return time.monotonic() - t0
        if proc.poll() is not None:
            raise SystemExit(f"{tool} exited ({proc.returncode}):\n" + read_text(stderr_path))
    raise SystemExit(f"{tool} reported none of {n} probe files within {timeout} s")


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = int(value)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# ---- 1. latency -----------------------------------------------------------------------


def cmd_latency(args):
    tool = args.tool
    root = os.path.abspath(args.root)
    shutil.rmtree(root, ignore_errors=True)
    seed_tree(root)
    lat_dir = os.path.join(root, "incoming")
    os.makedirs(lat_dir)
    if tool.startswith("pacsguard"):
        pacsguard_home(args, {})  # the defaults users get
    stderr_path = args.out + ".stderr"
    proc = start(tool, root, args, subprocess.PIPE, stderr_path)
    reader = PipeReader(proc)
    ready = make_ready(tool, root, proc, reader, stderr_path, args.timeout)
    # Let the probe's reports pass.
    reader.pump(time.monotonic() + 0.5, lambda *_: None)

    closed = {}
    first = {}
    own = {}
    kinds = {}
    lines = [0]

    def on_line(stamp, line):
        parsed = parse_line(tool, line)
        if not parsed:
            return
        path, extra = parsed
        if path not in closed:
            return
        if tool == "fatrace" and "C" not in extra.get("flags", ""):
            return  # a write event before the close: not the close being timed
        lines[0] += 1
        if tool.startswith("pacsguard"):
            kinds[extra["kind"]] = kinds.get(extra["kind"], 0) + 1
        if path not in first:
            first[path] = stamp
            if extra.get("time") is not None:
                own[path] = extra["time"]

    pause = args.pause_ms / 1000
    data = [dicom(i) for i in range(args.n)]
    load_before = loadavg()
    t_start = time.monotonic()
    for i in range(args.n):
        path = os.path.join(lat_dir, f"i{i:05d}.dcm")
        write_file(path, data[i])
        closed[path] = time.time()
        reader.pump(time.monotonic() + pause, on_line)
    writing = time.monotonic() - t_start
    # The stragglers, then a moment for a second report of the same file.
    deadline = time.monotonic() + args.timeout
    while len(first) < len(closed) and time.monotonic() < deadline and not reader.eof:
        reader.pump(time.monotonic() + 0.1, on_line)
    reader.pump(time.monotonic() + 1.0, on_line)
    status = proc_status(proc.pid)
    code = stop(proc)
    reader.pump(time.monotonic() + 0.5, on_line)

    lat = [first[p] - closed[p] for p in first]
    own_lat = [own[p] - closed[p] for p in own]
    result = {
        "measure": "latency",
        "tool": tool,
        "files": args.n,
        "pause_ms": args.pause_ms,
        "file_bytes": len(data[0]),
        "writing_seconds": writing,
        "ready_seconds": ready,
        "reported": len(first),
        "missed": len(closed) - len(first),
        "lines_for_these_files": lines[0],
        "arrival": summary_ms(lat),
        "own_timestamp": summary_ms(own_lat),
        "kinds": kinds,
        "rss_kib": status.get("VmRSS"),
        "hwm_kib": status.get("VmHWM"),
        "exit_code": code,
        "stopped_cleanly": "stopped cleanly" in read_text(stderr_path),
        "load_before": load_before,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    a = result["arrival"] or {}
    note(f"{tool}: {len(first)}/{args.n} reported; median {a.get('median', float('nan')):.3f} ms, "
         f"p99 {a.get('p99', float('nan')):.3f} ms (writing took {writing:.1f} s)")
    shutil.rmtree(root, ignore_errors=True)


# ---- 2. burst ---------------------------------------------------------------------------


def cmd_burst(args):
    tool = args.tool
    root = os.path.abspath(args.root)
    shutil.rmtree(root, ignore_errors=True)
    seed_tree(root)
    watch_config = {}
    if tool == "pacsguard-poll":
        watch_config = {"max_watches": args.max_watches, "poll_seconds": args.poll_seconds}
    if tool.startswith("pacsguard"):
        pacsguard_home(args, watch_config)
    out_path = args.out + ".stdout"
    stderr_path = args.out + ".stderr"
    out = open(out_path, "wb")
    proc = start(tool, root, args, out, stderr_path, events="close_write,create")
    ready = make_ready(tool, root, proc, out_path, stderr_path, args.timeout)

    burst = os.path.join(root, "burst")
    expected = set()
    ticks0 = proc_ticks(proc.pid)
    t0 = time.monotonic()
    n = 0
    for top in range(args.top):
        for mid in range(args.mid):
            d = os.path.join(burst, str(top), str(mid))
            os.makedirs(d)
            for i in range(args.files):
                path = os.path.join(d, f"{i}.dcm")
                write_file(path, dicom(n))
                expected.add(path)
                n += 1
    made = time.monotonic() - t0
    note(f"{tool}: {n} files in {args.top * args.mid} new directories written in {made:.1f} s")

    # Poll the output until every file is reported, or nothing new came for `settle` s.
    pg = tool.startswith("pacsguard")
    state = {"offset": 0, "buf": b"", "lines": 0}
    seen = {}      # path -> lines naming it (pacsguard: its 'added' findings)
    kinds = {}     # pacsguard: findings per kind
    per_key = {}   # pacsguard: (kind, path) -> times reported
    unexpected = []  # pacsguard: findings a creation burst should not raise (examples)

    def consume(final=False):
        """Parses what the tool wrote since the last call; True if a new file showed."""
        with open(out_path, "rb") as f:
            f.seek(state["offset"])
            chunk = f.read()
        state["offset"] += len(chunk)
        *lines, state["buf"] = (state["buf"] + chunk).split(b"\n")
        if final and state["buf"]:
            lines.append(state["buf"])
            state["buf"] = b""
        grew = False
        for line in lines:
            state["lines"] += 1
            parsed = parse_line(tool, line)
            if not parsed:
                continue
            path, extra = parsed
            if pg:
                kind = extra.get("kind")
                kinds[kind] = kinds.get(kind, 0) + 1
                per_key[(kind, path)] = per_key.get((kind, path), 0) + 1
                if kind not in EXPECTED_IN_BURST and len(unexpected) < 10:
                    unexpected.append(f"{kind} {os.path.relpath(path, root)}: {extra.get('detail')}")
                if kind != "added":
                    continue
            if path in expected:
                grew |= path not in seen
                seen[path] = seen.get(path, 0) + 1
        return grew

    burst_end = t0 + made
    last_growth = time.monotonic()
    while True:
        now = time.monotonic()
        if consume():
            last_growth = now
        if len(seen) == len(expected):
            break
        if now - last_growth >= args.settle or now - burst_end >= args.cap:
            break
        if proc.poll() is not None:
            warn(f"{tool} exited ({proc.returncode}) during the burst")
            break
        time.sleep(0.5)
    complete_at = time.monotonic()
    cpu_seconds = (proc_ticks(proc.pid) - ticks0) / CLK_TCK if proc.poll() is None else None
    time.sleep(args.linger)  # time for a duplicate to show
    status = proc_status(proc.pid)
    code = stop(proc)
    out.close()
    consume(final=True)
    duplicates = {}
    if pg:
        twice = [(k, c) for k, c in per_key.items() if c > 1 and k[0] != "not-watched"]
        duplicates = {"keys": len(twice),
                      "examples": [f"{k[0]} {k[1]} x{c}" for k, c in twice[:10]]}
    lost = sorted(expected - set(seen))
    stderr_text = read_text(stderr_path)
    result = {
        "measure": "burst",
        "tool": tool,
        "watch_config": watch_config,
        "files": len(expected),
        "directories": args.top * args.mid + args.top + 1,
        "write_seconds": made,
        "ready_seconds": ready,
        "reported": len(seen),
        "lost": len(lost),
        "lost_percent": 100 * len(lost) / len(expected),
        "lost_examples": [os.path.relpath(p, root) for p in lost[:10]],
        "complete": not lost,
        "seconds_after_burst_to_last_new_file": last_growth - burst_end,
        "waited_seconds": complete_at - burst_end,
        "tool_cpu_seconds": cpu_seconds,
        "lines": state["lines"],
        "kinds": kinds,
        "duplicates": duplicates,
        "unexpected": sum(c for k, c in kinds.items() if k not in EXPECTED_IN_BURST) if pg else None,
        "unexpected_examples": unexpected,
        "exit_code": code,
        "rss_kib": status.get("VmRSS"),
        "hwm_kib": status.get("VmHWM"),
        "stopped_cleanly": ("stopped cleanly" in stderr_text) if tool.startswith("pacsguard") else None,
        "stderr_tail": stderr_text[-1500:] if tool.startswith("pacsguard") else stderr_text[-300:],
        "overflow_notices": stderr_text.count("overflow") if tool != "pacsguard" else None,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    note(f"{tool}: reported {len(seen)}/{len(expected)} files, lost {len(lost)} "
         f"({result['lost_percent']:.2f}%); last new file {result['seconds_after_burst_to_last_new_file']:.1f} s "
         f"after the burst; exit {code}")
    if duplicates.get("keys"):
        warn(f"{tool}: {duplicates['keys']} findings reported more than once, e.g. {duplicates['examples'][:3]}")
    if args.keep or (pg and (lost or duplicates.get("keys"))):
        note(f"kept {tool}'s output for inspection: {out_path}")
    else:
        os.remove(out_path)
    t = time.monotonic()
    shutil.rmtree(root, ignore_errors=True)
    note(f"removed the burst tree in {time.monotonic() - t:.1f} s")


# ---- trees ------------------------------------------------------------------------------


def cmd_mktree(args):
    root = os.path.abspath(args.root)
    marker = root + ".marker"
    if args.kind == "idle":
        recipe = f"idle v1 dirs={args.a} files={args.b}"
    else:
        recipe = f"scrub v1 files={args.a} bytes={args.b}"
    if os.path.exists(marker) and open(marker).read().splitlines()[0] == recipe:
        note(f"reusing {root} ({recipe})")
        return
    t0 = time.monotonic()
    if os.path.exists(marker):
        os.remove(marker)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    files = 0
    total = 0
    if args.kind == "idle":
        for d in range(args.a):
            dpath = os.path.join(root, f"d{d:04d}")
            os.mkdir(dpath)
            for i in range(args.b):
                data = b"%d\n" % (d * args.b + i)
                write_file(os.path.join(dpath, f"f{i:04d}"), data)
                files += 1
                total += len(data)
            if d % 100 == 99:
                note(f"{files} files, {time.monotonic() - t0:.0f} s")
    else:
        block = os.urandom(args.b)
        for i in range(args.a):
            dpath = os.path.join(root, f"s{i // 100:03d}")
            os.makedirs(dpath, exist_ok=True)
            head = b"%08d" % i
            write_file(os.path.join(dpath, f"f{i:05d}.bin"), head + block[len(head):])
            files += 1
            total += args.b
    with open(marker, "w") as f:
        f.write(f"{recipe}\nfiles={files} bytes={total} seconds={time.monotonic() - t0:.1f}\n")
    note(f"made {root}: {files} files, {total} bytes in {time.monotonic() - t0:.1f} s")


# ---- 3. idle ----------------------------------------------------------------------------


def sample_cpu(pids, seconds, step=10):
    """CPU % of each pid over `seconds`, overall and per `step`-second slice."""
    t_start = time.monotonic()
    start = {p: proc_ticks(p) for p in pids}
    slices = {p: [] for p in pids}
    prev = dict(start)
    t_prev = t_start
    while time.monotonic() - t_start < seconds:
        time.sleep(min(step, seconds - (time.monotonic() - t_start)))
        now = time.monotonic()
        for p in pids:
            ticks = proc_ticks(p)
            slices[p].append(100 * (ticks - prev[p]) / CLK_TCK / (now - t_prev))
            prev[p] = ticks
        t_prev = now
    elapsed = time.monotonic() - t_start
    return {p: {"cpu_percent": 100 * (prev[p] - start[p]) / CLK_TCK / elapsed,
                "cpu_seconds": (prev[p] - start[p]) / CLK_TCK,
                "seconds": elapsed,
                "slices": slices[p]} for p in pids}


def count_tree(root):
    files = dirs = 0
    for _dirpath, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        files += len(filenames)
    return files, dirs + 1


def cmd_idle(args):
    root = os.path.abspath(args.root)
    files, dirs = count_tree(root)
    pacsguard_home(args, {"scrub_mb_per_s": 0})
    stderr_path = args.out + ".stderr"
    out_path = args.out + ".stdout"
    t0 = time.monotonic()
    proc = start("pacsguard", root, args, open(out_path, "wb"), stderr_path)
    wait_for_text(stderr_path, "signed (", proc, args.timeout)
    profiled = time.monotonic() - t0
    note(f"first run: profile of {files} files taken in {profiled:.1f} s")
    wait_for_text(stderr_path, "watching for changes", proc, args.timeout)
    ready = time.monotonic() - t0
    note(f"first run: watching after {ready:.1f} s; settling {args.settle} s")
    time.sleep(args.settle)
    anchor = None
    if args.anchor:
        a_err = args.out + ".inotifywait.stderr"
        anchor = subprocess.Popen(
            ["inotifywait", "-m", "-r", "-q", "-e", "close_write,create,delete,move",
             "--format", "%e %w%f", root],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(a_err, "wb"))
        remember(anchor)
        # inotifywait -r prints nothing with -q when ready: wait until its watch count
        # stops growing (fdinfo lists one line per watch).
        a_ready = time.monotonic()
        last, stable = -1, 0
        while stable < 3 and time.monotonic() - a_ready < args.timeout:
            time.sleep(0.5)
            n = 0
            try:
                for fd in os.listdir(f"/proc/{anchor.pid}/fdinfo"):
                    with open(f"/proc/{anchor.pid}/fdinfo/{fd}") as f:
                        n += f.read().count("inotify wd:")
            except OSError:
                pass
            stable = stable + 1 if n == last and n > 0 else 0
            last = n
        note(f"inotifywait -r: {last} watches after {time.monotonic() - a_ready:.1f} s")
    load_before = loadavg()
    pids = [proc.pid] + ([anchor.pid] if anchor else [])
    note(f"sampling CPU for {args.seconds} s (load {load_before})")
    cpu = sample_cpu(pids, args.seconds)
    status = proc_status(proc.pid)
    a_status = proc_status(anchor.pid) if anchor else {}
    findings = len(read_text(out_path).splitlines())
    if anchor:
        stop(anchor)
    code = stop(proc, timeout=300)
    stopped = "stopped cleanly" in read_text(stderr_path)

    # A restart: the profile exists; time to catch up and watch again.
    t1 = time.monotonic()
    proc2 = start("pacsguard", root, args, open(out_path + ".2", "wb"), stderr_path + ".2")
    wait_for_text(stderr_path + ".2", "watching for changes", proc2, args.timeout)
    restart_ready = time.monotonic() - t1
    status2 = proc_status(proc2.pid)
    code2 = stop(proc2, timeout=300)
    note(f"restart: watching after {restart_ready:.1f} s (RSS {status2.get('VmRSS', 0) / 1024:.0f} MiB)")

    result = {
        "measure": "idle",
        "files": files,
        "directories": dirs,
        "first_run_profile_seconds": profiled,
        "first_run_ready_seconds": ready,
        "restart_ready_seconds": restart_ready,
        "cpu": cpu[proc.pid],
        "rss_kib": status.get("VmRSS"),
        "hwm_kib": status.get("VmHWM"),
        "threads": status.get("Threads"),
        "restart_rss_kib": status2.get("VmRSS"),
        "restart_hwm_kib": status2.get("VmHWM"),
        "findings_while_idle": findings,
        "anchor": ({"cpu": cpu[anchor.pid], "rss_kib": a_status.get("VmRSS"),
                    "hwm_kib": a_status.get("VmHWM")} if anchor else None),
        "exit_code": code,
        "stopped_cleanly": stopped,
        "restart_exit_code": code2,
        "load_before": load_before,
        "stderr_tail": read_text(stderr_path)[-1500:],
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    note(f"idle: {cpu[proc.pid]['cpu_percent']:.3f}% CPU over {cpu[proc.pid]['seconds']:.0f} s; "
         f"RSS {status.get('VmRSS', 0) / 1024:.0f} MiB, HWM {status.get('VmHWM', 0) / 1024:.0f} MiB")


# ---- 4. scrub ---------------------------------------------------------------------------


def cmd_scrub(args):
    root = os.path.abspath(args.root)
    files, _ = count_tree(root)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    pacsguard_home(args, {"scrub_mb_per_s": args.rate,
                          "scrub_min_cycle_seconds": args.min_cycle})
    stderr_path = args.out + ".stderr"
    out_path = args.out + ".stdout"
    proc = start("pacsguard", root, args, open(out_path, "wb"), stderr_path)
    wait_for_text(stderr_path, "watching for changes", proc, args.timeout)
    time.sleep(args.settle)
    cycles_before = read_text(stderr_path).count("scrub cycle complete")
    load_before = loadavg()
    note(f"sampling /proc/{proc.pid}/io for {args.seconds} s (load {load_before})")
    t_start = time.monotonic()
    io0 = proc_io(proc.pid)
    ticks0 = proc_ticks(proc.pid)
    prev, t_prev = io0, t_start
    per_second = []
    while time.monotonic() - t_start < args.seconds:
        time.sleep(1.0)
        io = proc_io(proc.pid)
        now = time.monotonic()
        per_second.append((io["rchar"] - prev["rchar"]) / (now - t_prev) / 1e6)
        prev, t_prev = io, now
    elapsed = t_prev - t_start
    io1 = prev
    ticks1 = proc_ticks(proc.pid)
    stderr_text = read_text(stderr_path)
    cycles = stderr_text.count("scrub cycle complete") - cycles_before
    code = stop(proc)
    rchar_rate = (io1["rchar"] - io0["rchar"]) / elapsed / 1e6
    read_bytes_rate = (io1["read_bytes"] - io0["read_bytes"]) / elapsed / 1e6
    result = {
        "measure": "scrub",
        "files": files,
        "bytes": total,
        "configured_mb_per_s": args.rate,
        "min_cycle_seconds": args.min_cycle,
        "seconds": elapsed,
        "rchar_mb_per_s": rchar_rate,
        "read_bytes_mb_per_s": read_bytes_rate,
        "ratio": rchar_rate / args.rate if args.rate else None,
        "per_second_mb": {"median": statistics.median(per_second), "min": min(per_second),
                          "max": max(per_second)},
        "cpu_percent": 100 * (ticks1 - ticks0) / CLK_TCK / elapsed,
        "cycles_completed_in_window": cycles,
        "cycle_notices": [line for line in stderr_text.splitlines() if "scrub cycle" in line],
        "findings": len(read_text(out_path).splitlines()),
        "exit_code": code,
        "load_before": load_before,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    note(f"scrub: {rchar_rate:.2f} MB/s read (rchar) against {args.rate} MB/s configured "
         f"= {result['ratio']:.3f}x; per second {min(per_second):.1f}-{max(per_second):.1f} MB/s")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--pacsguard", default="pacsguard")
        sp.add_argument("--home", default="")
        sp.add_argument("--timeout", type=float, default=600)

    sp = sub.add_parser("mktree")
    sp.add_argument("kind", choices=["idle", "scrub"])
    sp.add_argument("root")
    sp.add_argument("a", type=int)
    sp.add_argument("b", type=int)

    sp = sub.add_parser("latency")
    sp.add_argument("tool")
    sp.add_argument("root")
    sp.add_argument("out")
    sp.add_argument("--n", type=int, default=2000)
    sp.add_argument("--pause-ms", type=float, default=5)
    common(sp)

    sp = sub.add_parser("burst")
    sp.add_argument("tool")
    sp.add_argument("root")
    sp.add_argument("out")
    sp.add_argument("--top", type=int, default=100)
    sp.add_argument("--mid", type=int, default=10)
    sp.add_argument("--files", type=int, default=100)
    sp.add_argument("--settle", type=float, default=10)
    sp.add_argument("--cap", type=float, default=300)
    sp.add_argument("--linger", type=float, default=2)
    sp.add_argument("--max-watches", type=int, default=10)
    sp.add_argument("--poll-seconds", type=int, default=1)
    sp.add_argument("--keep", action="store_true")
    common(sp)

    sp = sub.add_parser("idle")
    sp.add_argument("root")
    sp.add_argument("out")
    sp.add_argument("--seconds", type=float, default=60)
    sp.add_argument("--settle", type=float, default=5)
    sp.add_argument("--anchor", action="store_true")
    common(sp)

    sp = sub.add_parser("scrub")
    sp.add_argument("root")
    sp.add_argument("out")
    sp.add_argument("--rate", type=int, default=20)
    sp.add_argument("--min-cycle", type=int, default=1)
    sp.add_argument("--seconds", type=float, default=30)
    sp.add_argument("--settle", type=float, default=2)
    common(sp)

    args = p.parse_args()
    if getattr(args, "pacsguard", None) and os.sep in args.pacsguard:
        args.pacsguard = os.path.abspath(args.pacsguard)
    if getattr(args, "home", None):
        args.home = os.path.abspath(args.home)
    try:
        {"mktree": cmd_mktree, "latency": cmd_latency, "burst": cmd_burst,
         "idle": cmd_idle, "scrub": cmd_scrub}[args.cmd](args)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
