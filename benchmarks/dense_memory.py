"""Memory, disk and load time of a `DenseIndex` in HNSW mode, for one or more source trees.

Each tree runs in a fresh Python process (``PYTHONPATH`` set to the tree) that makes ``--n``
seeded random unit vectors (the input), then builds ``DenseIndex(dim, kind="auto")`` from them in
adds of ``--batch`` rows (the add that crosses ``hnsw_threshold`` builds the HNSW graph), saves it
and loads it back. Reported: the build's peak resident memory above the input (the kernel's
high-water mark, ``VmHWM``, reset just before the build), the memory the built index holds, its
size on disk, and the load time (``DenseIndex.load(dir, mmap=True)``, median of 3, page cache
warm). Give the trees side by side in one run, e.g. the commit before the one-copy change and
this one::

    git worktree add /tmp/before dd3cc04
    python benchmarks/dense_memory.py --n 1000000 --trees before=/tmp/before after=.

Random vectors make a harder graph than real embeddings (lower recall at equal ``ef_search``),
but the same memory: the vectors and the graph's links take the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import gc, json, os, shutil, statistics, sys, tempfile, time
import numpy as np
from langchain_fusion.dense.index import DenseIndex

n, dim, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def rss_mb(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)

rng = np.random.default_rng(0)
vectors = np.empty((n, dim), dtype=np.float32)
for start in range(0, n, 100_000):
    block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
    vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
input_mb = vectors.nbytes / 2**20
gc.collect()
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset VmHWM to the current resident set
before = rss_mb()
t0 = time.perf_counter()
index = DenseIndex(dim, kind="auto")
for start in range(0, n, batch):
    index.add(vectors[start : start + batch])
build_s = time.perf_counter() - t0
gc.collect()
peak = rss_mb("VmHWM") - before
held = rss_mb() - before
work = tempfile.mkdtemp(prefix="dense-memory-", dir=os.environ.get("TMPDIR"))
try:
    target = os.path.join(work, "dense")
    os.makedirs(target)
    index.save(target)
    files = [os.path.join(target, name) for name in os.listdir(target)]
    disk = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    del index
    gc.collect()
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        loaded = DenseIndex.load(target, mmap=True)
        loads.append(time.perf_counter() - t)
        del loaded
        gc.collect()
finally:
    shutil.rmtree(work, ignore_errors=True)
print(json.dumps({
    "n": n, "input_mb": input_mb, "build_s": build_s, "build_peak_above_input_mb": peak,
    "held_after_build_mb": held, "disk_mb": disk / 2**20, "load_s": statistics.median(loads),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16_384)
    parser.add_argument(
        "--trees", nargs="+", default=[f"this={ROOT}"], help="label=path of a source tree"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = {}
    for spec in args.trees:
        label, _, path = spec.partition("=")
        env = dict(os.environ, PYTHONPATH=str(Path(path or label).resolve()))
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(args.n), str(args.dim), str(args.batch)],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"{label}: {result.stderr.strip().splitlines()[-1]}")
        rows[label] = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{label}: {rows[label]}", flush=True)
    print()
    print(
        "| tree | vectors | input MB | build s | build peak above input MB | held after build MB "
        "| disk MB | load s |"
    )
    print("|:--|--:|--:|--:|--:|--:|--:|--:|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['n']:,} | {r['input_mb']:,.0f} | {r['build_s']:.0f} "
            f"| {r['build_peak_above_input_mb']:,.0f} | {r['held_after_build_mb']:,.0f} "
            f"| {r['disk_mb']:,.0f} | {r['load_s']:.3f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
