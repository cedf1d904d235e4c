#!/usr/bin/env python3
"""Deterministic, fast test-tree generator for bench/profile.sh.

Usage: gentree.py KIND DEST SCALE [SEED]
  KIND   mixed | small | tiny
  DEST   directory to create (must not exist; the caller wipes it)
  SCALE  float multiplier on file counts (1.0 = full size)

Prints one JSON line {"files": N, "bytes": B, "seconds": S} on success.

Why it looks like this:
  * Speed: hashing benchmarks need GBs of data, and /dev/urandom or a per-byte
    PRNG would dominate the run.  We draw ONE 64 MiB pseudo-random block from a
    seeded PRNG (random.randbytes: fast, deterministic) and write slices of it at
    per-file random offsets, so generation is just write() calls.
  * Every file also starts with its own relative path and index, so no two files
    are byte-identical even if they happen to draw the same slice (a hasher that
    deduplicated content would otherwise look artificially fast).
  * Determinism: sizes, layout and contents depend only on (KIND, SCALE, SEED),
    so runs on different days/machines hash the same bytes.
"""
import json
import os
import random
import sys
import time

KIB = 1024
MIB = 1024 * KIB
BLOCK_SIZE = 64 * MIB  # the shared random pool
WRITE_CHUNK = 8 * MIB  # large files are written in chunks of this size


def make_pool(seed):
    rng = random.Random(seed ^ 0x5EED)
    block = rng.randbytes(BLOCK_SIZE)
    # Append a copy of the head so any slice [off, off+WRITE_CHUNK) with
    # off < BLOCK_SIZE is contiguous: no wrap-around logic in the hot loop.
    return memoryview(block + block[:WRITE_CHUNK])


class Writer:
    def __init__(self, dest, pool, rng):
        self.dest = dest
        self.pool = pool
        self.rng = rng
        self.files = 0
        self.bytes = 0
        self.made_dirs = set()

    def write(self, rel, size):
        d = os.path.dirname(rel)
        if d not in self.made_dirs:
            os.makedirs(os.path.join(self.dest, d), exist_ok=True)
            self.made_dirs.add(d)
        header = ("%s#%d\n" % (rel, self.files)).encode()[:size]
        remaining = size - len(header)
        fd = os.open(os.path.join(self.dest, rel),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, header)
            while remaining > 0:
                n = min(remaining, WRITE_CHUNK)
                off = self.rng.randrange(BLOCK_SIZE)
                view = self.pool[off:off + n]
                while len(view):  # os.write may be short for big buffers
                    view = view[os.write(fd, view):]
                remaining -= n
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += size


def scaled(n, scale, minimum=0):
    return max(minimum, int(round(n * scale)))


def gen_mixed(w, rng, scale):
    """~20,000 files / ~2.1 GiB at scale 1, laid out like a PACS archive:
    STUDY/SERIES/INSTANCE.dcm.  Sizes (drawn per file):
      small   1-64 KiB      (structured reports, small modalities, thumbnails)
      medium  100 KiB-2 MiB (CT/MR slices)
      large   50-200 MiB    (multi-frame: tomosynthesis, cine, whole-slide)
    """
    n_large = scaled(5, scale, minimum=1)
    n_medium = scaled(800, scale, minimum=1)
    n_small = scaled(19195, scale, minimum=1)
    sizes = ([rng.randint(1 * KIB, 64 * KIB) for _ in range(n_small)] +
             [rng.randint(100 * KIB, 2 * MIB) for _ in range(n_medium)] +
             [rng.randint(50 * MIB, 200 * MIB) for _ in range(n_large)])
    rng.shuffle(sizes)  # large/medium files spread across studies
    i = 0
    study = 0
    while i < len(sizes):
        study += 1
        for series in range(1, rng.randint(2, 8) + 1):
            for inst in range(1, rng.randint(20, 150) + 1):
                if i >= len(sizes):
                    break
                rel = "study%05d/series%03d/IM%06d.dcm" % (study, series, inst)
                w.write(rel, sizes[i])
                i += 1


def gen_small(w, rng, scale):
    """200,000 files of 1-8 KiB at scale 1, 100 files per leaf directory,
    two directory levels of fan-out (aa/bb/fNNNNNN)."""
    n = scaled(200_000, scale, minimum=1)
    for i in range(n):
        leaf = i // 100
        rel = "d%03d/d%03d/f%07d" % (leaf // 100, leaf % 100, i)
        w.write(rel, rng.randint(1 * KIB, 8 * KIB))


def gen_tiny(w, rng, scale):
    """One small file: baseline for pacsguard's fixed memory cost."""
    w.write("only/file.bin", 4 * KIB)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    kind, dest, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else 20240601
    gens = {"mixed": gen_mixed, "small": gen_small, "tiny": gen_tiny}
    if kind not in gens:
        sys.exit("unknown kind %r (want one of %s)" % (kind, ", ".join(gens)))
    if scale <= 0:
        sys.exit("scale must be > 0")
    t0 = time.monotonic()
    os.makedirs(dest)  # fails if it exists: the caller owns cleanup
    # Separate streams for layout/sizes vs. slice offsets, keyed by kind, so
    # changing one tree's recipe never shifts another tree's bytes.
    layout_rng = random.Random("%s/%d/layout" % (kind, seed))
    data_rng = random.Random("%s/%d/data" % (kind, seed))
    w = Writer(dest, make_pool(seed), data_rng)
    gens[kind](w, layout_rng, scale)
    print(json.dumps({"files": w.files, "bytes": w.bytes,
                      "seconds": round(time.monotonic() - t0, 2)}))


if __name__ == "__main__":
    main()
