"""Benchmark ``DenseIndex``: build time, memory, latency, recall, persistence per size and kind.

Data: a synthetic hierarchical mixture of Gaussians calibrated on real all-MiniLM-L6-v2
embeddings (see ``Mixture``), so HNSW/IVF behave roughly as on real embeddings rather than on
uniform noise; or real vectors with ``--vectors``/``--query-vectors``. Ground truth is exact
(``kind="flat"``) search.

Every (size, kind) runs in its own subprocess so that its peak RSS is its own.

    python benchmarks/bench_dense.py --sizes 10000 100000 --kinds flat hnsw ivf
    python benchmarks/bench_dense.py --sizes 1000000 --kinds hnsw --ef-search 64 128 256
    python benchmarks/bench_dense.py --sizes 100000 --kinds hnsw --filters 0.5 0.1 0.02 0.005
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import Mixture

from langchain_fusion.dense import DenseIndex


def make_data(
    n: int, n_queries: int, dim: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Corpus and queries from one mixture; the number of clusters grows with the corpus."""
    mixture = Mixture(dim, n_clusters=max(100, n // 1000))
    return mixture.sample(n, seed), mixture.sample(n_queries, seed + 1, query=True)


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB.

    ``/proc/self/status`` VmHWM belongs to the current address space, so it starts afresh in the
    worker; ``ru_maxrss`` would carry over the parent's peak across fork + exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; macOS: bytes


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def recall_at_k(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    k = truth.shape[1]
    hits = [len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / k)


def latencies_ms(index: DenseIndex, queries: NDArray[np.float32], k: int, **kw: Any) -> list[float]:
    index.search(queries[0], k, **kw)  # warm-up
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, k, **kw)
        times.append((time.perf_counter() - start) * 1000)
    return times


def read_chunks(path: Path, rows: int) -> Any:
    """Yield row blocks of a 2-D .npy file with plain reads (no mmap: RSS stays the index's)."""
    with path.open("rb") as f:
        np.lib.format.read_magic(f)
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            yield np.fromfile(f, dtype=dtype, count=count * shape[1]).reshape(count, shape[1])


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one index in this (fresh) process and measure it."""
    workdir = Path(spec["workdir"])
    vectors = np.load(workdir / "vectors.npy", mmap_mode="r")  # only for the filter references
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth.npy")
    k = spec["k"]
    rss_before = peak_rss_mb()

    kind = spec["kind"]
    params: dict[str, Any] = {}
    if kind == "hnsw":
        params = {"hnsw_m": spec["hnsw_m"], "ef_construction": spec["ef_construction"]}
    if kind == "ivf":
        params = {"nprobe": spec["nprobe"]}
    index = DenseIndex(vectors.shape[1], kind=kind, **params)
    start = time.perf_counter()
    for block in read_chunks(workdir / "vectors.npy", 50_000):  # incremental ingestion
        index.add(block)
    if kind == "ivf":
        index.search(queries[0], k)  # IVF trains lazily at the first search
    build_s = time.perf_counter() - start

    rows = []
    ef_values = spec["ef_search"] if kind == "hnsw" else [None]
    for ef in ef_values:
        if ef is not None:
            index.ef_search = ef
        lat = latencies_ms(index, queries, k)
        found, _ = index.search(queries, k)
        rows.append(
            {
                "ef_search": ef,
                "p50_ms": float(np.percentile(lat, 50)),
                "p95_ms": float(np.percentile(lat, 95)),
                "recall": recall_at_k(found, truth),
            }
        )

    peak_rss = peak_rss_mb()
    filters = []
    rng = np.random.default_rng(spec["seed"] + 7)
    if kind == "hnsw":
        index.ef_search = spec["ef_search"][0]
    for fraction in spec["filters"]:
        mask = rng.random(len(vectors)) < fraction
        lat = latencies_ms(index, queries[:50], k, mask=mask)
        found, _ = index.search(queries[:50], k, mask=mask)
        ref = DenseIndex(vectors.shape[1], kind="flat")
        ids = np.flatnonzero(mask)
        ref.add(np.asarray(vectors[ids]))
        ref_slots, _ = ref.search(queries[:50], k)
        filters.append(
            {
                "fraction": fraction,
                "p50_ms": float(np.percentile(lat, 50)),
                "p95_ms": float(np.percentile(lat, 95)),
                "recall": recall_at_k(found, ids[ref_slots]),
            }
        )

    save_dir = Path(tempfile.mkdtemp(prefix="bench_dense_save_", dir=spec["tmp_root"]))
    try:
        start = time.perf_counter()
        index.save(save_dir)
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = DenseIndex.load(save_dir, mmap=True)
        load_s = time.perf_counter() - start
        loaded.search(queries[0], k)
        disk_mb = dir_size_mb(save_dir)
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)
    return {
        "kind": kind,
        "active_kind": index.active_kind,
        "n": len(vectors),
        "build_s": build_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss,
        "searches": rows,
        "filters": filters,
        "save_s": save_s,
        "load_s": load_s,
        "disk_mb": disk_mb,
    }


def exact_truth(
    vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int
) -> NDArray[np.int64]:
    flat = DenseIndex(vectors.shape[1], kind="flat")
    flat.add(vectors)
    return flat.search(queries, k)[0]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    tmp_root = args.tmp
    for n in args.sizes:
        workdir = Path(tempfile.mkdtemp(prefix=f"bench_dense_{n}_", dir=tmp_root))
        try:
            start = time.perf_counter()
            if args.vectors is not None:
                vectors = np.load(args.vectors).astype(np.float32)[:n]
                queries = np.load(args.query_vectors).astype(np.float32)[: args.queries]
            else:
                vectors, queries = make_data(n, args.queries, args.dim, args.seed)
            truth = exact_truth(vectors, queries, args.k)
            np.save(workdir / "vectors.npy", vectors)
            np.save(workdir / "queries.npy", queries)
            np.save(workdir / "truth.npy", truth)
            del vectors
            print(
                f"# n={n:,}: data + exact ground truth in {time.perf_counter() - start:.1f}s",
                flush=True,
            )
            for kind in args.kinds:
                spec = {
                    "workdir": str(workdir),
                    "tmp_root": tmp_root,
                    "kind": kind,
                    "k": args.k,
                    "seed": args.seed,
                    "hnsw_m": args.hnsw_m,
                    "ef_construction": args.ef_construction,
                    "ef_search": args.ef_search,
                    "nprobe": args.nprobe,
                    "filters": args.filters,
                }
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    print(f"# {kind} at n={n} failed:\n{proc.stderr}", flush=True)
                    continue
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(result)
                print_result(result, args.k)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


HEADER = (
    f"{'n':>9} {'kind':>5} {'ef/np':>6} {'build s':>8} {'peak RSS MB':>11} {'p50 ms':>7} "
    f"{'p95 ms':>7} {'recall':>7} {'save s':>7} {'load s':>7} {'disk MB':>8}"
)


def print_result(result: dict[str, Any], k: int) -> None:
    print(HEADER.replace("recall", f"R@{k}".rjust(6)), flush=True)
    for row in result["searches"]:
        knob = row["ef_search"] if result["kind"] == "hnsw" else "-"
        print(
            f"{result['n']:>9,} {result['kind']:>5} {knob!s:>6} {result['build_s']:>8.2f} "
            f"{result['peak_rss_mb']:>11.0f} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} "
            f"{row['recall']:>7.4f} {result['save_s']:>7.2f} {result['load_s']:>7.3f} "
            f"{result['disk_mb']:>8.1f}",
            flush=True,
        )
    for row in result["filters"]:
        print(
            f"{'':>9} {'':>5} filter allowed={row['fraction']:<6g} p50 {row['p50_ms']:.2f} ms, "
            f"p95 {row['p95_ms']:.2f} ms, R@{k} {row['recall']:.4f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--kinds", nargs="+", default=["flat", "hnsw", "ivf"], choices=["flat", "hnsw", "ivf"]
    )
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[64, 128], help="HNSW efSearch values"
    )
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument(
        "--filters", type=float, nargs="*", default=[], help="mask fractions to test"
    )
    parser.add_argument("--vectors", type=Path, default=None, help="real corpus vectors (.npy)")
    parser.add_argument(
        "--query-vectors", type=Path, default=None, help="real query vectors (.npy)"
    )
    parser.add_argument("--tmp", default=None, help="directory for temporary files")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.vectors is None) != (args.query_vectors is None):
        parser.error("--vectors and --query-vectors go together")
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    results = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
