#!/usr/bin/env python3
"""The cost of the watcher's passes over /proc (issue 11).

A file due because it went quiet, with no close, asks /proc who still writes it (every
process's descriptors, `stat` each: `ops/watch/writers.rs`), at most one pass per
WRITER_SCAN_INTERVAL (100 ms). A pass costs more the more processes run. This measures
`pacsguard watch`'s CPU time per arrival during a burst of new files, each written in
two halves with a pause longer than `quiet_ms` between them (so every one of them asks
/proc: the worst case for a burst), with no extra processes and with `--sleepers`
sleeping processes on the host; and, as the anchor, the same burst written without a
pause (closed at once: no pass at all).

Usage: writer_passes.py PACSGUARD [--files N] [--writers W] [--sleepers S] [--pause S]
Prints one line per run and the ratio. Python standard library only; the processes it
starts are killed by pid when it ends.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (fields[11], fields[12] after the name)
    return (int(fields[11]) + int(fields[12])) / TICKS


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {out.stdout}{out.stderr}")
    return out


def one_run(args, sample, sleepers, pause):
    base = tempfile.mkdtemp(prefix="writer-passes-")
    started = []
    try:
        home, tree = os.path.join(base, "home"), os.path.join(base, "tree")
        os.makedirs(os.path.join(tree, "archive", "incoming"))
        for i in range(20):
            shutil.copy(sample, os.path.join(tree, "archive", f"stored{i}.dcm"))
        run([args.pacsguard, "--home", home, "init"])
        with open(os.path.join(home, "config.toml"), "a") as f:
            f.write("\n[watch]\nscrub_mb_per_s = 0\n")
        run([args.pacsguard, "--home", home, "profile", tree, "--policy", "append-only"])
        for _ in range(sleepers):
            started.append(subprocess.Popen(["sleep", "3600"]))
        watch = subprocess.Popen(
            [args.pacsguard, "--home", home, "watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(watch)
        for line in watch.stderr:
            if "watching for changes" in line:
                break
        else:
            sys.exit("watch did not start")
        threading.Thread(target=lambda: [None for _ in watch.stderr], daemon=True).start()
        added = set()
        done = threading.Event()
        incoming = os.path.join(tree, "archive", "incoming")

        def read():
            for line in watch.stdout:
                finding = json.loads(line)
                if finding.get("kind") == "added" and finding["path"].startswith(incoming + "/"):
                    added.add(finding["path"])
                    if len(added) >= args.files:
                        done.set()

        threading.Thread(target=read, daemon=True).start()
        data = open(sample, "rb").read()
        half = len(data) // 2
        before = cpu_seconds(watch.pid)
        t0 = time.monotonic()

        def writer(k):
            for i in range(k, args.files, args.writers):
                with open(os.path.join(incoming, f"{i}.dcm"), "wb", buffering=0) as f:
                    f.write(data[:half])
                    if pause:
                        time.sleep(pause)
                    f.write(data[half:])

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(args.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not done.wait(args.timeout):
            sys.exit(f"only {len(added)} of {args.files} arrivals reported")
        wall = time.monotonic() - t0
        cpu = cpu_seconds(watch.pid) - before
        return cpu, wall
    finally:
        for p in started:
            p.kill()
            p.wait()
        shutil.rmtree(base, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pacsguard")
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--writers", type=int, default=40)
    parser.add_argument("--sleepers", type=int, default=500)
    parser.add_argument("--pause", type=float, default=0.7, help="seconds, over quiet_ms")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    samples = sorted(
        glob.glob(
            os.path.join(here, "../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm")
        )
    )
    if not samples:
        sys.exit("no pydicom sample (scripts/setup-test-deps.sh)")
    print(f"# {args.files} arrivals, {args.writers} writers, pause {args.pause} s, "
          f"procs on host before: {len(glob.glob('/proc/[0-9]*'))}")
    results = {}
    for label, sleepers, pause in [
        ("closed at once, 0 sleepers", 0, 0.0),
        ("paused mid-file, 0 sleepers", 0, args.pause),
        (f"paused mid-file, {args.sleepers} sleepers", args.sleepers, args.pause),
    ]:
        runs = [one_run(args, samples[0], sleepers, pause) for _ in range(args.repeat)]
        cpu = min(r[0] for r in runs)
        wall = min(r[1] for r in runs)
        results[label] = cpu
        print(f"{label:36s} CPU {cpu:6.2f} s  {1000 * cpu / args.files:6.2f} ms/arrival  "
              f"(best of {args.repeat}; wall {wall:5.1f} s)")
    keys = list(results)
    print(f"paused/closed: {results[keys[1]] / max(results[keys[0]], 1e-9):.2f}x; "
          f"{args.sleepers} sleepers/none: {results[keys[2]] / max(results[keys[1]], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
