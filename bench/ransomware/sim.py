#!/usr/bin/env python3
"""Ransomware simulator for `pacsguard watch` (bench/ransomware.sh runs it).

Usage: sim.py PACSGUARD WORKDIR FILES PATTERN...

For each pattern: a fresh home and an append-only store of FILES small CT instances
(explicit VR little endian, 64 KiB of native pixels, unique UIDs), `pacsguard watch
--json` started on it, then the pattern run against the store while the watcher's
output is read. An attack stops as soon as `ransomware-suspected` is printed: the files
it had changed by then are the files lost. A benign pattern runs to its end and must
print no alert at all.

Prints one JSON line per pattern: {"pattern", "kind", "detected", "seconds", "lost",
"alerts", "findings"}. Python 3 standard library only. Defaults of the watcher are used
(ransomware_files 20 in 10 s; a score of ransomware_long_files 30 halving every
ransomware_half_life_seconds 3600; ransomware_total_files 50): this is where the
slow-rewrite defaults are exercised, which the tests shorten.
"""
import json
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

ATTACKS = ["full", "intermittent", "locked-rename", "hardlink", "mmap", "slow-0.6",
           "slow-2", "slow-10", "decoy-then-attack", "dir-rename", "base64-in-window",
           "hex-in-window"]
# "recompress" (review r23): every image re-compressed losslessly in place by DCMTK
# (dcmcrle and dcmcjpls alternately, through a staging copy), no window declared: each
# file is its own pixel-data-changed alert (its `non_info`), and no ransomware-suspected.
BENIGN = ["part-ingest", "copy-in", "recompress"]


def element(group, elem, vr, value):
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def text(s):
    b = s.encode()
    return b + (b"\0" if len(b) % 2 else b"")


def ct_instance(uid, seed):
    ct = "1.2.840.10008.5.1.4.1.1.2"
    meta = (element(2, 0x01, b"OB", b"\0\1") + element(2, 0x02, b"UI", text(ct))
            + element(2, 0x03, b"UI", text(uid))
            + element(2, 0x10, b"UI", text("1.2.840.10008.1.2.1")))
    meta = element(2, 0x00, b"UL", struct.pack("<I", len(meta))) + meta
    pixels = bytes(((j * 31 + seed) % 251) for j in range(65536))
    data = (element(8, 0x16, b"UI", text(ct)) + element(8, 0x18, b"UI", text(uid))
            + element(8, 0x60, b"CS", text("CT"))
            + element(0x28, 0x02, b"US", struct.pack("<H", 1))
            + element(0x28, 0x04, b"CS", text("MONOCHROME2"))
            + element(0x28, 0x10, b"US", struct.pack("<H", 256))
            + element(0x28, 0x11, b"US", struct.pack("<H", 128))
            + element(0x28, 0x100, b"US", struct.pack("<H", 16))
            + element(0x28, 0x101, b"US", struct.pack("<H", 16))
            + element(0x28, 0x102, b"US", struct.pack("<H", 15))
            + element(0x28, 0x103, b"US", struct.pack("<H", 0))
            + element(0x7FE0, 0x10, b"OW", pixels))
    return b"\0" * 128 + b"DICM" + meta + data


class Watch:
    def __init__(self, exe, home, store):
        self.proc = subprocess.Popen([exe, "--home", home, "watch", "--json", store],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.findings = []
        self.alert_at = None
        self.ready = threading.Event()
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()
        if not self.ready.wait(300):
            raise SystemExit("watch did not start")

    def _out(self):
        for line in self.proc.stdout:
            f = json.loads(line)
            self.findings.append(f)
            if f.get("kind") == "ransomware-suspected" and self.alert_at is None:
                self.alert_at = time.monotonic()

    def _err(self):
        for line in self.proc.stderr:
            if "watching for changes" in line:
                self.ready.set()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        time.sleep(0.2)


def encrypt_file(_seed, path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(os.urandom(size))


def run(exe, work, files, pattern):
    base = os.path.join(work, pattern)
    shutil.rmtree(base, ignore_errors=True)
    home, store, outside = (os.path.join(base, d) for d in ("home", "store", "outside"))
    os.makedirs(outside)
    paths = []
    for i in range(files):
        d = os.path.join(store, f"study{i % 10}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"{i}.dcm")
        with open(p, "wb") as f:
            f.write(ct_instance(f"1.2.826.0.1.3680043.10.1137.5.{i}", i))
        paths.append(p)
    subprocess.run([exe, "--home", home, "init"], check=True, capture_output=True)
    with open(os.path.join(home, "config.toml"), "a") as c:
        c.write("\n[watch]\nscrub_mb_per_s = 0\n")
    subprocess.run([exe, "--home", home, "profile", "--policy", "append-only", store],
                   capture_output=True)
    w = Watch(exe, home, store)
    lost = 0
    start = time.monotonic()

    def detected():
        return w.alert_at is not None

    def paced(pace, action, targets=None):
        nonlocal lost
        for i, p in enumerate(paths if targets is None else targets):
            if detected():
                return
            action(i, p)
            lost += 1
            if pace:
                time.sleep(pace)

    if pattern == "full":
        paced(0, encrypt_file)
    elif pattern == "intermittent":
        def inter(i, p):
            with open(p, "r+b") as f:
                data = bytearray(f.read())
                for b in range(4096, len(data), 16384):
                    data[b:b + 4096] = os.urandom(len(data[b:b + 4096]))
                f.seek(0)
                f.write(data)
        paced(0, inter)
    elif pattern == "locked-rename":
        def locked(i, p):
            with open(p + ".locked", "wb") as f:
                f.write(os.urandom(os.path.getsize(p)))
            os.remove(p)
        paced(0, locked)
    elif pattern == "hardlink":
        def hard(i, p):
            link = os.path.join(outside, f"x{i}")
            os.link(p, link)
            encrypt_file(i, link)
            os.remove(link)
        paced(0, hard)
    elif pattern == "mmap":
        # Every file mapped first (the close of each descriptor is reported and verified
        # while nothing has changed), then encrypted through the mappings alone, which
        # the kernel reports nothing for while they are held.
        held = []
        for p in paths:
            fd = os.open(p, os.O_RDWR)
            held.append(mmap.mmap(fd, 0))
            os.close(fd)
        time.sleep(3)
        start = time.monotonic()
        for m in held:
            if detected():
                break
            m[:] = os.urandom(len(m))
            lost += 1
        deadline = time.monotonic() + 30
        while not detected() and time.monotonic() < deadline:
            time.sleep(0.05)
        for m in held:
            m.close()
    elif pattern.startswith("slow-"):
        paced(float(pattern[5:]), encrypt_file)
    elif pattern == "decoy-then-attack":
        for p in paths[:25]:
            os.remove(p)
        deadline = time.monotonic() + 30
        while not detected() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only a second alert counts for the attack, which starts once a window passed.
        w.alert_at = None
        time.sleep(10)
        start = time.monotonic()
        paced(0, encrypt_file, paths[25:])
    elif pattern == "dir-rename":
        for k in range(10):
            d = os.path.join(store, f"study{k}")
            os.rename(d, d + ".locked")
            lost += files // 10
            if detected():
                break
    elif pattern == "part-ingest":
        inc = os.path.join(store, "incoming")
        os.makedirs(inc)
        for i in range(300):
            part = os.path.join(inc, f"{i}.dcm.part")
            with open(part, "wb") as f:
                f.write(ct_instance(f"1.2.826.0.1.3680043.10.1137.6.{i}", i))
            os.rename(part, part[:-5])
            time.sleep(0.25)
    elif pattern == "copy-in":
        src = os.path.join(base, "elsewhere")
        os.makedirs(src)
        for i in range(300):
            with open(os.path.join(src, f"{i}.dcm"), "wb") as f:
                f.write(ct_instance(f"1.2.826.0.1.3680043.10.1137.4.{i}", i))
        subprocess.run(["cp", "-r", src, os.path.join(store, "copied")], check=True)
    elif pattern in ("base64-in-window", "hex-in-window"):
        # Review r23: a maintenance window declared (as for a migration), then each
        # image's Pixel Data encrypted and written as base64 or hex text (6 or 4
        # bits/byte, under the 7.9 that read as random before).
        subprocess.run([exe, "--home", home, "maintenance", "start", store, "--until",
                        "30min", "--reason", "bench migration"], check=True,
                       capture_output=True)
        time.sleep(2)
        start = time.monotonic()
        alphabet = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    if pattern == "base64-in-window" else b"0123456789abcdef")

        def as_text(i, p):
            with open(p, "r+b") as f:
                data = bytearray(f.read())
                n = 65536
                data[-n:] = bytes(alphabet[b % len(alphabet)] for b in os.urandom(n))
                f.seek(0)
                f.write(data)
        paced(0, as_text)
    elif pattern == "recompress":
        staging = os.path.join(base, "staging")
        os.makedirs(staging)
        for i, p in enumerate(paths):
            out = os.path.join(staging, f"{i}.dcm")
            tool = "dcmcrle" if i % 2 == 0 else "dcmcjpls"
            subprocess.run([tool, p, out], check=True, capture_output=True)
            shutil.copyfile(out, p)
    else:
        raise SystemExit(f"unknown pattern {pattern}")

    deadline = time.monotonic() + (90 if pattern in ATTACKS else 15)
    while pattern in ATTACKS and not detected() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pattern in BENIGN:
        time.sleep(3)
    w.stop()
    alerts = sum(1 for f in w.findings if f.get("kind") == "ransomware-suspected")
    return {
        "pattern": pattern,
        "kind": "attack" if pattern in ATTACKS else "benign",
        "detected": w.alert_at is not None,
        "seconds": round(w.alert_at - start, 2) if w.alert_at else None,
        "lost": lost if pattern in ATTACKS else 0,
        "alerts": alerts,
        "findings": len(w.findings),
        "non_info": sum(1 for f in w.findings if f.get("severity") != "info"
                        and f.get("kind") != "events-lost"),
    }


def main():
    exe, work, files = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for pattern in sys.argv[4:]:
        print(json.dumps(run(exe, work, files, pattern)), flush=True)


if __name__ == "__main__":
    main()
