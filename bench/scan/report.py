#!/usr/bin/env python3
"""bench/scan.sh's helper: summarises what each tool found, and writes the report.

  report.py line OUT TREE LABEL            one measurement's median (+ peak RSS) to stderr
  report.py found DIR TREE MANIFEST        what each tool reported on TREE -> DIR/found.json
  report.py report RUN_DIR TREE_DIR TAG "TREE..."   markdown report to stdout

Inputs: OUT.json (hyperfine export), OUT.rss (GNU time %M in KiB, one run per line,
possibly after a "Command exited with non-zero status 1" line), DIR/found-* (the
untimed run of each tool), TREE.manifest (gen_corpus's polyglot list, then a JSON line
of totals). Every time reported is a MEDIAN over the runs.
"""
import json
import os
import statistics
import sys

# The polyglots a preamble-only scan can see: those that change the first 128 bytes.
PREAMBLE_KINDS = {"pe-cve-2019-11687", "elf-preamble", "html-preamble", "script-preamble"}

TOOLS = ["pacsguard", "pacsguard-preamble", "yara", "clamscan"]
TOOL_NAMES = {
    "pacsguard": "`pacsguard scan`",
    "pacsguard-preamble": "`pacsguard scan --preamble-only` (preamble polyglots only)",
    "yara": "`yara -r` (equivalent.yar + pacsguard.yar)",
    "clamscan": "`clamscan -r` (equivalent .ndb)",
}


def rss_kib(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split() if x.isdigit()]
    except OSError:
        return []


def load(base):
    """-> dict(median, min, max, rss_kib) | "failed" | None (not run)."""
    if os.path.exists(base + ".failed"):
        return "failed"
    try:
        with open(base + ".json") as f:
            r = json.load(f)["results"][0]
    except (OSError, ValueError, LookupError):
        return None
    kib = rss_kib(base + ".rss")
    return {"median": r["median"], "min": r["min"], "max": r["max"],
            "rss_kib": statistics.median(kib) if kib else None}


def cmd_line(out, tree, label):
    m = load(out)
    if not isinstance(m, dict):
        return
    rss = "" if m["rss_kib"] is None else "  maxRSS %.1f MiB" % (m["rss_kib"] / 1024)
    print("    %-6s %-20s median %8.3f s  [%.3f .. %.3f]%s"
          % (tree, label, m["median"], m["min"], m["max"], rss))


# ---- what each tool found ------------------------------------------------------------

def manifest(path):
    polyglots, totals = {}, {}
    with open(path) as f:
        for line in f:
            if line.startswith("polyglot\t"):
                _, rel, kind = line.rstrip("\n").split("\t")
                polyglots[rel] = kind
            elif line.startswith("{"):
                totals = json.loads(line)
    return polyglots, totals


def relative(path, roots):
    for root in roots:
        if path.startswith(root + "/"):
            return path[len(root) + 1:]
    return path


def pacsguard_found(path, roots):
    """-> {rel: [(severity, kind, detail)]}, or None when the run produced no report."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    out = {}
    for finding in doc.get("findings", []):
        rel = relative(finding["path"], roots)
        out.setdefault(rel, []).append(
            (finding["severity"], finding["kind"], finding.get("detail", "")))
    return out


def lines_found(path, roots, parse):
    """-> {rel: [("alert", rule, "")]} from yara/clamscan output."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                parsed = parse(line.rstrip("\n"))
                if parsed:
                    rule, file = parsed
                    out.setdefault(relative(file, roots), []).append(("alert", rule, ""))
    except OSError:
        return None
    return out


def yara_line(line):
    rule, _, file = line.partition(" ")
    return (rule, file) if file else None


def clam_line(line):
    if not line.endswith(" FOUND"):
        return None
    file, _, sig = line[: -len(" FOUND")].rpartition(": ")
    return (sig, file)


def cmd_found(run, tree, manifest_path):
    polyglots, totals = manifest(manifest_path)
    roots = [tree, os.path.realpath(tree)]
    results = {
        "pacsguard": pacsguard_found(os.path.join(run, "found-pacsguard.json"), roots),
        "pacsguard-preamble": pacsguard_found(
            os.path.join(run, "found-pacsguard-preamble.json"), roots),
        "yara": lines_found(os.path.join(run, "found-yara.txt"), roots, yara_line),
        "clamscan": lines_found(os.path.join(run, "found-clamscan.txt"), roots, clam_line),
    }
    summary = {"polyglots": len(polyglots), "files": totals.get("files", 0), "tools": {}}
    for tool, found in results.items():
        if found is None:
            continue
        alerted = {rel for rel, fs in found.items() if any(f[0] == "alert" for f in fs)}
        expected = polyglots
        if tool == "pacsguard-preamble":
            expected = {r: k for r, k in polyglots.items() if k in PREAMBLE_KINDS}
        missed = sorted(rel for rel in expected if rel not in alerted)
        by_kind = {}
        for rel, kind in expected.items():
            hit, total = by_kind.get(kind, (0, 0))
            by_kind[kind] = (hit + (rel in alerted), total + 1)
        others = sorted(alerted - set(polyglots))
        # For pacsguard also: what it said (below alert) about files that are not polyglots.
        notes = {}
        for rel, fs in found.items():
            if rel in polyglots:
                continue
            for severity, kind, _ in fs:
                if severity != "alert":
                    key = "%s %s" % (severity, kind)
                    notes[key] = notes.get(key, 0) + 1
        first = {rel: found[rel][0][1:] for rel in others[:8]}
        summary["tools"][tool] = {
            "found": len(expected) - len(missed), "expected": len(expected),
            "missed": missed, "by_kind": by_kind,
            "other_alerted": len(others), "other_examples": first, "notes": notes,
        }
        print("    %-18s polyglots found %d/%d; other files flagged: %d"
              % (tool, len(expected) - len(missed), len(expected), len(others)))
        for rel in missed:
            print("        MISSED %s (%s)" % (rel, polyglots[rel]))
        for rel, (rule, detail) in first.items():
            print("        flagged %s: %s %s" % (rel, rule, detail[:100]))
        for key, n in sorted(notes.items()):
            print("        %d x %s (not polyglots)" % (n, key))
    with open(os.path.join(run, "found.json"), "w") as f:
        json.dump(summary, f, indent=1)


# ---- the report --------------------------------------------------------------------------

ROWS = [
    ("pacsguard-scan", "`pacsguard scan` (full screening, 2 threads)"),
    ("pacsguard-preamble", "`pacsguard scan --preamble-only`"),
    ("yara", "`yara -r -p N` (equivalent.yar + pacsguard.yar)"),
    ("clamscan", "`clamscan -r` (equivalent .ndb; 1 thread)"),
    ("clamscan-x2", r"`find \| xargs -P2 clamscan` (2 processes)"),
]


def fmt_s(m):
    if m == "failed":
        return "FAILED"
    if m is None:
        return "—"
    return "%.3f" % m["median"]


def cmd_report(run_dir, tree_dir, tag, trees):
    env = {}
    try:
        with open(os.path.join(run_dir, "env.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
    except OSError:
        pass
    stats, found, meas = {}, {}, {}
    for tree in trees:
        try:
            with open(os.path.join(tree_dir, "%s-%s.marker" % (tree, tag))) as f:
                f.readline()
                stats[tree] = json.loads(f.readline())
        except (OSError, ValueError):
            stats[tree] = {"files": 0, "bytes": 0}
        try:
            with open(os.path.join(run_dir, tree, "found.json")) as f:
                found[tree] = json.load(f)
        except (OSError, ValueError):
            found[tree] = {"tools": {}}
        for label, _ in ROWS:
            meas[tree, label] = load(os.path.join(run_dir, tree, label))

    out = []
    w = out.append
    w("# pacsguard scan benchmark (%s)" % env.get("date", "?"))
    w("")
    for k in ["cpu", "mem", "kernel", "pacsguard", "yara", "clamscan", "hyperfine", "scale", "runs"]:
        w("- %s: %s" % (k, env.get(k, "?")))
    w("")
    for tree in trees:
        s = stats[tree]
        w("- tree `%s`: %s files, %.2f GB (%d planted polyglots)"
          % (tree, format(s.get("files", 0), ","), s.get("bytes", 0) / 1e9,
             s.get("polyglots", 0)))
    w("")
    w("## Medians")
    w("")
    head = "| Measurement |" + "".join(" %s: median s | %s: files/s | %s: MB/s |" % (t, t, t) for t in trees)
    w(head + " max RSS MiB |")
    w("|---|" + "---:|---:|---:|" * len(trees) + "---:|")
    for label, name in ROWS:
        if label == "pacsguard-preamble" and env.get("preamble_only") != "1":
            w("| %s | TODO: not in this build |%s —|" % (name, " — | — | — |" * len(trees)))
            continue
        if all(meas[t, label] is None for t in trees):
            continue
        cells, rss = [], []
        for tree in trees:
            m = meas[tree, label]
            if isinstance(m, dict):
                files, size = stats[tree].get("files", 0), stats[tree].get("bytes", 0)
                cells.append(" %.3f | %s | %.0f |" % (m["median"], format(round(files / m["median"]), ","),
                                                      size / 1e6 / m["median"]))
                if m["rss_kib"] is not None:
                    rss.append("%s %.1f" % (tree, m["rss_kib"] / 1024))
            else:
                cells.append(" %s | — | — |" % fmt_s(m))
        w("| %s |%s %s |" % (name, "".join(cells), ", ".join(rss) or "—"))
    w("")
    w("## What each tool reported (one untimed run each)")
    w("")
    w("| Tool |" + "".join(" %s: polyglots found | %s: other files flagged |" % (t, t) for t in trees))
    w("|---|" + "---:|---:|" * len(trees))
    for tool in TOOLS:
        if all(tool not in found[t]["tools"] for t in trees):
            continue
        cells = []
        for tree in trees:
            r = found[tree]["tools"].get(tool)
            if r is None:
                cells.append(" — | — |")
            else:
                cells.append(" %d/%d | %d |" % (r["found"], r["expected"], r["other_alerted"]))
        w("| %s |%s" % (TOOL_NAMES[tool], "".join(cells)))
    w("")
    for tree in trees:
        for tool in TOOLS:
            r = found[tree]["tools"].get(tool)
            if not r:
                continue
            missed = ["%s %d/%d" % (k, h, n) for k, (h, n) in sorted(r["by_kind"].items()) if h < n]
            if missed:
                w("- %s on `%s` missed: %s" % (TOOL_NAMES[tool], tree, ", ".join(missed)))
            if r["other_alerted"]:
                ex = "; ".join("%s (%s)" % (p, v[0]) for p, v in list(r["other_examples"].items())[:4])
                w("- %s on `%s` flagged %d non-polyglot files, e.g. %s"
                  % (TOOL_NAMES[tool], tree, r["other_alerted"], ex))
            if tool == "pacsguard" and r["notes"]:
                w("- pacsguard on `%s`, below alert on non-polyglot files: %s" % (
                    tree, ", ".join("%d × %s" % (n, k) for k, n in sorted(r["notes"].items()))))
    w("")
    w("## Targets (ratios of medians from the same run)")
    w("")
    w("| Target |" + "".join(" %s |" % t for t in trees) + " Goal | Result |")
    w("|---|" + "---:|" * len(trees) + "---:|---|")

    def ratio_row(name, num, den, goal, op):
        vals, results = [], []
        for tree in trees:
            a, b = meas[tree, num], meas[tree, den]
            if isinstance(a, dict) and isinstance(b, dict):
                r = a["median"] / b["median"]
                vals.append("%.2f×" % r)
                if goal is not None:
                    ok = r > goal if op == ">" else r >= goal
                    results.append("%s %s" % (tree, "PASS" if ok else "**FAIL**"))
            else:
                vals.append("—")
        g = "—" if goal is None else "%s %g×" % ("&gt;" if op == ">" else "≥", goal)
        w("| %s |%s %s | %s |" % (name, "".join(" %s |" % v for v in vals), g,
                                  ", ".join(results) or "—"))

    ratio_row("yara / pacsguard scan", "yara", "pacsguard-scan", 1, ">")
    ratio_row("clamscan / pacsguard scan", "clamscan", "pacsguard-scan", 3, ">=")
    ratio_row("(info) clamscan ×2 processes / pacsguard scan", "clamscan-x2", "pacsguard-scan", None, "")
    if env.get("preamble_only") == "1":
        m = meas.get(("small", "pacsguard-preamble"))
        if isinstance(m, dict):
            rate = stats["small"].get("files", 0) / m["median"]
            w("| `scan --preamble-only`, small files |%s ≥ 20,000 files/s | %s |" % (
                "".join(" %s |" % (format(round(rate), ",") + " files/s" if t == "small" else "—")
                        for t in trees), "PASS" if rate >= 20000 else "**FAIL**"))
    else:
        w("| `scan --preamble-only`, small files |%s ≥ 20,000 files/s | TODO: not in this build |"
          % ("".join(" — |" for _ in trees)))
    print("\n".join(out))


def main():
    mode = sys.argv[1]
    if mode == "line":
        cmd_line(*sys.argv[2:5])
    elif mode == "found":
        cmd_found(*sys.argv[2:5])
    elif mode == "report":
        cmd_report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split())
    else:
        sys.exit("usage: see the docstring")


if __name__ == "__main__":
    main()
