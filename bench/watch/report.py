#!/usr/bin/env python3
"""bench/watch/report.py RUN_DIR: the markdown report of one bench/watch.sh run, from the
JSON files bench/watch/harness.py wrote there."""

import json
import os
import sys

RUN = sys.argv[1]


def load(name):
    path = os.path.join(RUN, name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ms(v):
    return "—" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.1f}")


def num(v):
    return "—" if v is None else f"{v:,}"


def times(r):
    return f"{r:.2f}×" if r < 10 else f"{r:,.0f}×"


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


env = load("env") or {}
lat = {t: load(f"latency-{t}") for t in ("pacsguard", "inotifywait", "fatrace")}
burst = {t: load(f"burst-{t}") for t in ("pacsguard", "pacsguard-poll", "inotifywait", "fatrace")}
idle = load("idle")
scrub = load("scrub")

out = []
p = out.append
p("# `pacsguard watch`: real-time guarding (bench/watch.sh)")
p("")
p(f"- date: {env.get('date', '?')}; load at start: {env.get('load', '?')}")
p(f"- machine: {env.get('cpu', '?')}, {env.get('mem', '?')}, kernel {env.get('kernel', '?')}, "
  f"data on {env.get('fs', '?')}")
p(f"- pacsguard: {env.get('pacsguard', '?')}; anchors: {env.get('inotifywait', '?')}, "
  f"{env.get('fatrace', '?')}; fs.inotify.max_queued_events = {env.get('queue', '?')}")
p(f"- latency: {env.get('latency', '?')}; burst: {env.get('burst', '?')}; "
  f"idle: {env.get('idle', '?')}; scrub: {env.get('scrub', '?')}")
p("")

# ---- summary ----------------------------------------------------------------------------
p("## Summary")
p("")
p("| Measure | pacsguard | anchor: inotifywait | anchor: fatrace | Target | Ratio | Result |")
p("|---|---:|---:|---:|---|---:|---|")


def arrival(r, key):
    return (r or {}).get("arrival", {}) and r["arrival"].get(key) if r else None


for key, label, goal in (("median", "median", 50), ("p99", "p99", 250)):
    pg, ino, fa = (arrival(lat[t], key) for t in ("pacsguard", "inotifywait", "fatrace"))
    ratio = f"{times(pg / ino)} inotifywait" if pg is not None and ino else "—"
    res = verdict(pg <= goal) if pg is not None else "not measured"
    p(f"| Close-to-report latency, {label} (ms) | {ms(pg)} | {ms(ino)} | {ms(fa)} | ≤ {goal} ms | {ratio} | {res} |")


def lost(r):
    if not r:
        return None
    return f"{r['lost']:,} / {r['files']:,} ({r['lost_percent']:.2f}%)"


b = burst
res = verdict(b["pacsguard"]["lost"] == 0) if b["pacsguard"] else "not measured"
p(f"| Burst: files never reported | {lost(b['pacsguard']) or '—'} | {lost(b['inotifywait']) or '—'} | "
  f"{lost(b['fatrace']) or '—'} | 0 lost | — | {res} |")
res = verdict(b["pacsguard-poll"]["lost"] == 0) if b["pacsguard-poll"] else "not measured"
p(f"| Burst, rescan path (`max_watches = 10`, `poll_seconds = 1`) | {lost(b['pacsguard-poll']) or '—'} | — | — | 0 lost | — | {res} |")
for t in ("pacsguard", "pacsguard-poll"):
    r = b[t]
    if r and r.get("unexpected") is not None:
        bad = {k: c for k, c in r["kinds"].items() if k not in ("added", "events-lost", "not-watched")}
        shown = ", ".join(f"{c:,} {k}" for k, c in bad.items()) or "0"
        p(f"| Burst ({t}): findings other than `added` for files that were only created | {shown} | — | — | 0 | — | {verdict(not bad)} |")
    if r and r.get("duplicates", {}).get("keys"):
        p(f"| Burst ({t}): findings reported more than once | {r['duplicates']['keys']:,} | — | — | 0 | — | **FAIL** |")

if idle:
    files = idle["files"]
    cpu = idle["cpu"]["cpu_percent"]
    a = idle.get("anchor") or {}
    a_cpu = a.get("cpu", {}).get("cpu_percent")
    p(f"| Idle CPU, {files:,} files watched, {idle['cpu']['seconds']:.0f} s | {cpu:.3f}% | "
      f"{'—' if a_cpu is None else f'{a_cpu:.3f}%'} | — | < 1% | — | {verdict(cpu < 1)} |")
    rss = idle["rss_kib"] * 1024
    base = (lat["pacsguard"] or {}).get("rss_kib")
    per = (rss - base * 1024) / files if base else rss / files
    if per <= 0:  # a tree too small for the difference to mean anything
        base, per = None, rss / files
    a_rss = a.get("rss_kib")
    ratio = f"{times(idle['rss_kib'] / a_rss)} inotifywait" if a_rss else "—"
    p(f"| Idle RSS (VmRSS) | {rss / 2**20:,.0f} MiB | {'—' if a_rss is None else f'{a_rss / 1024:,.1f} MiB'} | — | reported | {ratio} | |")
    p(f"| Bytes per watched file | {per:,.0f} B{' (above a 10-file watcher)' if base else ''} | "
      f"{'—' if a_rss is None else f'{a_rss * 1024 / files:,.1f} B (user space only)'} | — | reported | — | |")
    p(f"| First run: profile of {files:,} files, then watching | {idle['first_run_profile_seconds']:.1f} s, "
      f"{idle['first_run_ready_seconds']:.1f} s | — | — | reported | — | |")

if scrub:
    r = scrub["ratio"]
    p(f"| Scrub read rate (`rchar`), budget {scrub['configured_mb_per_s']} MB/s | "
      f"{scrub['rchar_mb_per_s']:.2f} MB/s | — | — | ±10% of budget | {r:.3f}× budget | "
      f"{verdict(abs(r - 1) <= 0.10)} |")
p("")

# ---- details ------------------------------------------------------------------------------
if any(lat.values()):
    p("## 1. Close-to-report latency")
    p("")
    p("Each file is written (`open`, one `write`, `close`) by the harness, which stamps "
      "`time.time()` right after `close()`; the tool's line naming the file is stamped on "
      "arrival at the harness's pipe. One tool at a time, same writer.")
    p("")
    p("| Tool | reported | median ms | p90 ms | p99 ms | max ms | lines/file | own clock: median / p99 ms | RSS MiB |")
    p("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for t in ("pacsguard", "inotifywait", "fatrace"):
        r = lat[t]
        if not r:
            continue
        a = r["arrival"] or {}
        o = r.get("own_timestamp") or {}
        own = f"{ms(o.get('median'))} / {ms(o.get('p99'))}" if o else "—"
        per_file = r["lines_for_these_files"] / max(r["reported"], 1)
        p(f"| {t} | {r['reported']:,}/{r['files']:,} | {ms(a.get('median'))} | {ms(a.get('p90'))} | "
          f"{ms(a.get('p99'))} | {ms(a.get('max'))} | {per_file:.2f} | {own} | "
          f"{(r.get('rss_kib') or 0) / 1024:.1f} |")
    r = lat["pacsguard"]
    if r:
        p("")
        p(f"pacsguard findings: {r['kinds']}; exit {r['exit_code']}, "
          f"stopped cleanly: {r['stopped_cleanly']}. Files of {r['file_bytes']} bytes "
          f"(a minimal Secondary Capture instance).")
    p("")

if any(burst.values()):
    p("## 2. Loss on a burst")
    p("")
    p("The writer creates the directories and files as fast as one Python thread can; the "
      "tool runs beside it on the same cores, so a tool that works harder slows the writer "
      "(\"written in\"). \"Tool CPU\" is the tool's user + system time from the first file "
      "until the last file was reported (or the wait ended).")
    p("")
    p("| Tool | files | reported | lost | written in | last new file after the burst | tool CPU | lines | duplicates | exit |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in ("pacsguard", "pacsguard-poll", "inotifywait", "fatrace"):
        r = burst[t]
        if not r:
            continue
        dup = r.get("duplicates", {}).get("keys", "—") if t.startswith("pacsguard") else "—"
        cpu = r.get("tool_cpu_seconds")
        cpu_text = "—" if cpu is None else f"{cpu:.1f} s"
        p(f"| {t} | {r['files']:,} | {r['reported']:,} | {r['lost']:,} ({r['lost_percent']:.2f}%) | "
          f"{r['write_seconds']:.1f} s | {r['seconds_after_burst_to_last_new_file']:.1f} s | "
          f"{cpu_text} | "
          f"{r['lines']:,} | {dup} | {r['exit_code']} |")
    for t in ("pacsguard", "pacsguard-poll"):
        r = burst[t]
        if r:
            p("")
            p(f"{t} ({r['watch_config'] or 'defaults'}): findings {r['kinds']}; "
              f"stopped cleanly: {r['stopped_cleanly']}"
              + (f"; lost e.g. {r['lost_examples'][:3]}" if r["lost"] else "")
              + (f"; duplicates e.g. {r['duplicates']['examples'][:3]}" if r["duplicates"].get("keys") else ""))
            for e in r.get("unexpected_examples", [])[:5]:
                p(f"  - `{e}`")
    p("")

if idle:
    p("## 3. Idle")
    p("")
    c = idle["cpu"]
    p(f"{idle['files']:,} files in {idle['directories']:,} directories, `scrub_mb_per_s = 0`. "
      f"First run (profile included): profile signed after {idle['first_run_profile_seconds']:.1f} s, "
      f"watching after {idle['first_run_ready_seconds']:.1f} s. Restart (profile exists, catch-up "
      f"only): watching after {idle['restart_ready_seconds']:.1f} s.")
    p("")
    p(f"- CPU over {c['seconds']:.0f} s: {c['cpu_percent']:.3f}% ({c['cpu_seconds']:.2f} CPU s); "
      f"per 10 s: {', '.join(f'{s:.2f}' for s in c['slices'])} %")
    p(f"- VmRSS {idle['rss_kib'] / 1024:,.1f} MiB, VmHWM {idle['hwm_kib'] / 1024:,.1f} MiB "
      f"(the peak is the first profile), {idle['threads']} threads; after a restart VmRSS "
      f"{(idle['restart_rss_kib'] or 0) / 1024:,.1f} MiB, VmHWM {(idle['restart_hwm_kib'] or 0) / 1024:,.1f} MiB")
    a = idle.get("anchor")
    if a:
        p(f"- `inotifywait -m -r` on the same tree, same window: {a['cpu']['cpu_percent']:.3f}% CPU, "
          f"VmRSS {(a['rss_kib'] or 0) / 1024:.1f} MiB")
    p(f"- findings while idle: {idle['findings_while_idle']}; exit {idle['exit_code']}, "
      f"stopped cleanly: {idle['stopped_cleanly']}")
    p("")

if scrub:
    p("## 4. Scrub")
    p("")
    s = scrub["per_second_mb"]
    p(f"{scrub['files']:,} files, {scrub['bytes'] / 1e6:,.0f} MB, `scrub_mb_per_s = "
      f"{scrub['configured_mb_per_s']}`, `scrub_min_cycle_seconds = {scrub['min_cycle_seconds']}`; "
      f"`/proc/PID/io` sampled every second for {scrub['seconds']:.0f} s with nothing else "
      f"happening in the tree.")
    p("")
    p(f"- `rchar` (bytes read by any `read` call, page cache included): {scrub['rchar_mb_per_s']:.2f} MB/s "
      f"= {scrub['ratio']:.3f}× the budget; per second {s['min']:.1f}–{s['max']:.1f} MB/s "
      f"(median {s['median']:.1f})")
    p(f"- `read_bytes` (from the device): {scrub['read_bytes_mb_per_s']:.2f} MB/s (the tree is in the page cache)")
    p(f"- CPU {scrub['cpu_percent']:.1f}%; scrub cycles completed in the window: "
      f"{scrub['cycles_completed_in_window']}; findings: {scrub['findings']}")
    for line in scrub.get("cycle_notices", [])[:3]:
        p(f"- pacsguard said: `{line}`")
    p("")

print("\n".join(out))
