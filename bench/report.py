#!/usr/bin/env python3
"""Turn bench/profile.sh measurements into a markdown report (stdout).

Usage: report.py RUN_DIR TREE_DIR TAG "TREE..."

Reads RUN_DIR/<tree>/<label>.json (hyperfine export), <label>.rss (GNU time
%M, KiB, one line per run), <label>.failed, RUN_DIR/env.txt,
RUN_DIR/baseline.rss and TREE_DIR/<tree>-TAG.marker (files/bytes).
Everything reported is a MEDIAN over the runs.
"""
import json
import os
import statistics
import sys

run_dir, tree_dir, tag, trees = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()

# (label, what it runs) in display order.  Pipes are escaped: these go in
# markdown table cells.
ROWS = [
    ("profile-blake3", "`pacsguard profile` (BLAKE3, default)"),
    ("profile-sha256", "`pacsguard profile --hash sha256`"),
    ("check-blake3", "`pacsguard check` (full re-hash, BLAKE3 profile)"),
    ("check-fast-blake3", "`pacsguard check --fast` (BLAKE3 profile)"),
    ("check-sha256", "`pacsguard check` (full re-hash, SHA-256 profile)"),
    ("check-fast-sha256", "`pacsguard check --fast` (SHA-256 profile)"),
    ("b3sum", r"`find \| xargs b3sum`"),
    ("sha256sum", r"`find \| xargs sha256sum`"),
    ("openssl-sha256", r"`find \| xargs openssl dgst -sha256`"),
    ("aide-sha256-init", "`aide --init`, rule `sha256`"),
    ("aide-sha256-check", "`aide --check`, rule `sha256`"),
    ("aide-debian-init", "`aide --init`, Debian-style `Full` rule"),
    ("aide-debian-check", "`aide --check`, Debian-style `Full` rule"),
]
PG_MEM = ["profile-blake3", "profile-sha256", "check-blake3", "check-fast-blake3",
          "check-sha256", "check-fast-sha256"]


def tree_stats(tree):
    try:
        with open(os.path.join(tree_dir, "%s-%s.marker" % (tree, tag))) as f:
            f.readline()
            return json.loads(f.readline())
    except (OSError, ValueError):
        return {"files": 0, "bytes": 0}


def load(tree, label):
    """-> dict(median, min, max, rss_kib) | "failed" | None (not run)."""
    base = os.path.join(run_dir, tree, label)
    if os.path.exists(base + ".failed"):
        return "failed"
    try:
        with open(base + ".json") as f:
            r = json.load(f)["results"][0]
    except (OSError, ValueError, LookupError):
        return None
    out = {"median": r["median"], "min": r["min"], "max": r["max"], "rss_kib": None}
    try:
        with open(base + ".rss") as f:
            kib = [int(x) for x in f.read().split()]
        if kib:
            out["rss_kib"] = statistics.median(kib)
    except (OSError, ValueError):
        pass
    return out


def read_baseline():
    try:
        with open(os.path.join(run_dir, "baseline.rss")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


data = {t: {label: load(t, label) for label, _ in ROWS} for t in trees}
stats = {t: tree_stats(t) for t in trees}
baseline_kib = read_baseline()


def median(t, label):
    r = data[t].get(label)
    return r["median"] if isinstance(r, dict) else None


def secs(x):
    return "%.3f" % x if x is not None else "—"


out = []
p = out.append

p("# PacsGuard system-profile benchmark (`bench/profile.sh`)")
p("")
try:
    with open(os.path.join(run_dir, "env.txt")) as f:
        env = [line.rstrip("\n").split("=", 1) for line in f if "=" in line]
    p("| | |")
    p("|---|---|")
    for k, v in env:
        p("| %s | %s |" % (k, v.replace("|", "\\|")))
    p("")
except OSError:
    pass

for t in trees:
    s = stats[t]
    files, nbytes = s.get("files", 0), s.get("bytes", 0)
    p("## Tree `%s`: %d files, %.2f GB (%.2f GiB)" % (t, files, nbytes / 1e9, nbytes / 2**30))
    p("")
    p("Medians of the timed runs; page cache warm; RSS is peak resident set (GNU time `%M`).")
    p("")
    p("| Measurement | median s | min–max s | MB/s | files/s | max RSS MiB |")
    p("|---|---:|---:|---:|---:|---:|")
    for label, desc in ROWS:
        r = data[t][label]
        if r is None:
            continue  # not part of this run (e.g. rule not selected)
        if r == "failed":
            p("| %s | FAILED | | | | |" % desc)
            continue
        m = r["median"]
        rss = "%.1f" % (r["rss_kib"] / 1024) if r["rss_kib"] else ""
        p("| %s | %.3f | %.3f–%.3f | %.0f | %.0f | %s |" % (
            desc, m, r["min"], r["max"], nbytes / m / 1e6 if m else 0,
            files / m if m else 0, rss))
    p("")

# ---- targets ----------------------------------------------------------------
p("## Targets")
p("")
p("Ratios use medians from this same run.  PASS/FAIL is informational; the script exits 0.")
p("")
p("| Target | Tree | Measured | Goal | Result |")
p("|---|---|---:|---:|---|")
tally = {"PASS": 0, "FAIL": 0}


def verdict(ok, t=None, *labels):
    """PASS/FAIL; ok=None means an input is missing: say whether it FAILED."""
    if ok is None:
        if t and any(data[t].get(l) == "failed" for l in labels):
            return "n/a (a run FAILED, see runs/.../*.err)"
        return "n/a (not measured)"
    word = "PASS" if ok else "FAIL"
    tally[word] += 1
    return "**%s**" % word


for t in trees:
    pb, ps = median(t, "profile-blake3"), median(t, "profile-sha256")
    aide_init = median(t, "aide-sha256-init")
    b3, ossl = median(t, "b3sum"), median(t, "openssl-sha256")

    if pb and aide_init:
        x = aide_init / pb
        p("| profile BLAKE3 vs AIDE sha256-only `--init` (speed-up) | %s | %.1f× | ≥ 10× | %s |" % (t, x, verdict(x >= 10)))
    else:
        p("| profile BLAKE3 vs AIDE sha256-only `--init` (speed-up) | %s | — | ≥ 10× | %s |" % (t, verdict(None, t, "profile-blake3", "aide-sha256-init")))

    if pb and b3:
        x = pb / b3
        p("| profile BLAKE3 time / b3sum time | %s | %.2f× | ≤ 1.30× | %s |" % (t, x, verdict(x <= 1.3)))
    else:
        p("| profile BLAKE3 time / b3sum time | %s | — | ≤ 1.30× | %s |" % (t, verdict(None, t, "profile-blake3", "b3sum")))

    if ps and ossl:
        x = ps / ossl
        p("| profile SHA-256 time / `openssl dgst -sha256` time | %s | %.2f× | ≤ 1.00× | %s |" % (t, x, verdict(x <= 1.0)))
    else:
        p("| profile SHA-256 time / `openssl dgst -sha256` time | %s | — | ≤ 1.00× | %s |" % (t, verdict(None, t, "profile-sha256", "openssl-sha256")))

    if t == "small":
        for label in ("check-fast-blake3", "check-fast-sha256"):
            m = median(t, label)
            name = "`check --fast`, %s profile" % label.rsplit("-", 1)[1]
            if m is None:
                p("| %s | small | — | < 2 s @ 200,000 files | %s |" % (name, verdict(None, t, label)))
            elif stats[t].get("files") != 200_000:
                p("| %s | small | %.3f s @ %d files | < 2 s @ 200,000 files | n/a (needs BENCH_SCALE=1) |"
                  % (name, m, stats[t].get("files", 0)))
            else:
                p("| %s | small | %.3f s | < 2 s | %s |" % (name, m, verdict(m < 2.0)))

    # Informational: the check-side counterpart of the AIDE comparison.
    cb, ac = median(t, "check-blake3"), median(t, "aide-sha256-check")
    if cb and ac:
        p("| (info) check BLAKE3 vs AIDE sha256-only `--check` (speed-up) | %s | %.1f× | — | |" % (t, ac / cb))
p("")
p("Targets: %d PASS, %d FAIL." % (tally["PASS"], tally["FAIL"]))
p("")

# ---- memory -----------------------------------------------------------------
p("## Memory per file")
p("")
if baseline_kib:
    p("Baseline: `pacsguard profile` of a 1-file tree peaks at %.1f MiB; "
      "\"above baseline\" subtracts it before dividing by the file count." % (baseline_kib / 1024))
else:
    p("(No 1-file baseline measured.)")
p("")
p("| Command | Tree | files | max RSS MiB | bytes/file | bytes/file above baseline |")
p("|---|---|---:|---:|---:|---:|")
any_mem = False
for t in trees:
    files = stats[t].get("files", 0)
    for label in PG_MEM:
        r = data[t][label]
        if not isinstance(r, dict) or not r["rss_kib"] or not files:
            continue
        any_mem = True
        b = r["rss_kib"] * 1024
        above = "%.0f" % ((b - baseline_kib * 1024) / files) if baseline_kib else "—"
        p("| `%s` | %s | %d | %.1f | %.0f | %s |" % (label, t, files, b / 2**20, b / files, above))
if not any_mem:
    p("| (pacsguard not measured) | | | | | |")
p("")

sys.stdout.write("\n".join(out))
