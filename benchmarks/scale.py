"""Speed and scale: HybridIndex + FusionRetriever against EnsembleRetriever(FAISS + BM25Retriever).

Synthetic corpora (Zipf text, clustered 384-d vectors, embeddings precomputed so the model is
excluded). Each size runs in its own process so that peak memory is its own. Reports build time,
peak memory above the corpus itself, size on disk, load time, p50/p95 fused top-10 latency for
the default (auto) and exact (flat) dense modes, HNSW recall@10 against exact search, and
EnsembleRetriever at the sizes it can handle, side by side in one run.

Usage:
    python benchmarks/scale.py --sizes 10000 100000 1000000 [--ensemble-max 100000] [--out r.json]
        [--trees before=/path/to/old/checkout after=.]

``--trees`` runs every size once per source tree (its ``langchain_fusion`` on PYTHONPATH), in
the same run, e.g. to compare a branch with main; the default is this checkout only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _latencies(fn: Any, queries: list[str], warmup: int = 3) -> tuple[float, float]:
    for q in queries[:warmup]:
        fn(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def child(size: int, n_queries: int, ensemble: bool, ensemble_queries: int) -> dict[str, Any]:
    from synthetic import LookupEmbeddings, make_corpus

    from langchain_fusion import FusionRetriever, HybridIndex

    out: dict[str, Any] = {"size": size}
    corpus = make_corpus(size, n_queries=n_queries)
    emb = LookupEmbeddings(corpus)
    base_rss = _rss_mb()
    out["vectors_mb"] = corpus.vectors.nbytes / 2**20

    t0 = time.perf_counter()
    ids = [str(i) for i in range(size)]
    index = HybridIndex(emb)
    index.add_embeddings(corpus.texts, corpus.vectors, ids=ids)
    out["build_s"] = time.perf_counter() - t0
    out["dense_kind"] = index.dense_kind
    out["peak_build_mb_above_corpus"] = _peak_mb() - base_rss

    tmp = Path(tempfile.mkdtemp(prefix="lf-scale-"))
    try:
        t0 = time.perf_counter()
        index.save(tmp / "idx")
        out["save_s"] = time.perf_counter() - t0
        out["disk_mb"] = _dir_mb(tmp / "idx")
        del index
        # Load times: median of 3, the two verify modes alternating (page cache warm for both).
        size_s, full_s = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            quick = HybridIndex.load(tmp / "idx", emb, verify="size")
            size_s.append(time.perf_counter() - t0)
            del quick
            t0 = time.perf_counter()
            loaded = HybridIndex.load(tmp / "idx", emb)  # verify="full": checksum of every byte
            full_s.append(time.perf_counter() - t0)
        out["load_size_s"] = statistics.median(size_s)
        out["load_s"] = statistics.median(full_s)

        retriever = FusionRetriever.from_index(loaded, k=10)
        out["p50_ms"], out["p95_ms"] = _latencies(retriever.invoke, corpus.queries)

        # Dense recall of the approximate index against exact search on the same vectors.
        qv = corpus.query_vectors
        exact = np.argsort(-(qv @ corpus.vectors.T), axis=1)[:, :10] if size <= 200_000 else None
        if exact is None:  # chunked exact top-10 for large corpora
            exact = np.empty((len(qv), 10), dtype=np.int64)
            best = np.full((len(qv), 10), -np.inf)
            for s in range(0, size, 200_000):
                sims = qv @ corpus.vectors[s : s + 200_000].T
                cand = np.concatenate([best, sims], axis=1)
                ids = np.concatenate(
                    [exact, np.arange(s, s + sims.shape[1])[None, :].repeat(len(qv), 0)], 1
                )
                top = np.argpartition(-cand, 10, axis=1)[:, :10]
                best = np.take_along_axis(cand, top, 1)
                exact = np.take_along_axis(ids, top, 1)
        found = [set(loaded.search_dense(v, 10)[0]) for v in qv]
        truth = [{str(i) for i in row} for row in exact]
        out["dense_recall@10"] = float(np.mean([len(f & t) / 10 for f, t in zip(found, truth)]))

        if size <= 200_000:
            flat = HybridIndex(emb, dense_kind="flat")
            flat.add_embeddings(corpus.texts, corpus.vectors, ids=ids)
            exact_retriever = FusionRetriever.from_index(flat, k=10)
            out["exact_p50_ms"], out["exact_p95_ms"] = _latencies(
                exact_retriever.invoke, corpus.queries
            )
            del flat, exact_retriever
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if ensemble:
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS

        t0 = time.perf_counter()
        store = FAISS.from_embeddings(list(zip(corpus.texts, corpus.vectors.tolist())), emb)
        bm25 = BM25Retriever.from_texts(corpus.texts, k=10)
        ens = EnsembleRetriever(retrievers=[store.as_retriever(search_kwargs={"k": 10}), bm25])
        out["ensemble_build_s"] = time.perf_counter() - t0
        out["ensemble_p50_ms"], out["ensemble_p95_ms"] = _latencies(
            ens.invoke, corpus.queries[:ensemble_queries], warmup=1
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ensemble-max", type=int, default=100_000)
    parser.add_argument("--ensemble-queries", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--trees", nargs="+", default=[f"this={HERE.parent}"], help="LABEL=PATH source trees"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.child:
        res = child(
            args.child, args.queries, args.child <= args.ensemble_max, args.ensemble_queries
        )
        print("RESULT " + json.dumps(res))
        return
    from common import markdown_table, save_json

    trees = dict(t.split("=", 1) for t in args.trees)
    results = []
    for size, (label, tree) in ((s, t) for s in args.sizes for t in trees.items()):
        print(f"size {size:,} ({label}: {tree}) ...", flush=True)
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(size),
            "--queries",
            str(args.queries),
            "--ensemble-max",
            str(args.ensemble_max),
            "--ensemble-queries",
            str(args.ensemble_queries),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            raise SystemExit(f"size {size} failed")
        results.append({"tree": label, **json.loads(line[0][7:])})
        print("  " + json.dumps(results[-1]), flush=True)

    def g(r: dict[str, Any], key: str) -> Any:
        return r.get(key, "-")

    rows = []
    for r in results:
        speedup = r["ensemble_p50_ms"] / r["p50_ms"] if "ensemble_p50_ms" in r else "-"
        exact_speedup = (
            r["ensemble_p50_ms"] / r["exact_p50_ms"]
            if "ensemble_p50_ms" in r and "exact_p50_ms" in r
            else "-"
        )
        rows.append(
            [
                r["tree"],
                f"{r['size']:,}",
                r["dense_kind"],
                r["build_s"],
                r["peak_build_mb_above_corpus"],
                r["vectors_mb"],
                r["disk_mb"],
                r["load_s"],
                g(r, "load_size_s"),
                r["p50_ms"],
                r["p95_ms"],
                g(r, "dense_recall@10"),
                g(r, "exact_p50_ms"),
                g(r, "ensemble_p50_ms"),
                speedup,
                exact_speedup,
            ]
        )
    print()
    print(
        markdown_table(
            [
                "tree",
                "chunks",
                "dense",
                "build s",
                "peak MB above corpus",
                "vectors MB",
                "disk MB",
                "load s (full verify)",
                "load s (verify=size)",
                "fused p50 ms",
                "fused p95 ms",
                "dense recall@10",
                "exact p50 ms",
                "Ensemble p50 ms",
                "speedup",
                "exact speedup",
            ],
            rows,
        )
    )
    if args.out:
        save_json(args.out, results)


if __name__ == "__main__":
    main()
