"""Local embedding engines side by side: torch fp32, ONNX fp32, ONNX int8 (one run).

For each engine of ``LocalEmbeddings``:
  * cold CLI: wall time of ``langchain-fusion ask --sample "..."`` in fresh processes (median),
    the engine chosen with ``LANGCHAIN_FUSION_BACKEND`` / ``LANGCHAIN_FUSION_QUANTIZE``; the
    first run embeds the sample and caches its index (reported apart as "first ask"), the
    others reopen it, as ``ask INDEX_DIR`` opens a saved index;
  * query embedding: p50 of ``embed_query`` over real queries, one at a time (warm);
  * ingest: chunks/s of ``embed_documents`` on 600-character chunks (torch: batches of 64;
    ONNX: each text alone, one per core), rounds interleaved across engines, median;
  * quality: nDCG@10 on SciFact test and NFCorpus dev, dense alone (exact cosine) and fused
    (``FusionRetriever`` defaults over a ``HybridIndex``), plus the mixed case an index built
    in float32 (torch, else ONNX) queried with ONNX int8 vectors; and the agreement of each
    engine's vectors with the float32 ones (min cosine, max abs difference).

Usage:
    python benchmarks/embeddings.py --data ../shared/data [--out results.json]
        [--cold-runs 5] [--chunks 1024] [--rounds 3] [--skip-quality]

The ONNX export goes into ``--onnx-cache`` (default: the package's cache); it is done before
timing. Corpus vectors for the quality table are computed by each engine (not cached).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CachedEmbeddings, data_dir, markdown_table, save_json

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"nfcorpus": "dev", "scifact": "test"}  # the smaller corpus first
ENGINES = {
    "torch fp32": {"backend": "torch", "quantize": None},
    "onnx fp32": {"backend": "onnx", "quantize": False},
    "onnx int8": {"backend": "onnx", "quantize": True},
}
QUESTION = "What does error E-217 mean?"


def engine(label: str, batch_size: int = 64) -> Any:
    from langchain_fusion import LocalEmbeddings

    return LocalEmbeddings(batch_size=batch_size, **ENGINES[label])


def cold_ask(label: str, runs: int) -> list[tuple[float, float]]:
    """Wall and CPU (user + system) seconds of fresh ``ask --sample`` processes."""
    spec = ENGINES[label]
    env = dict(os.environ, LANGCHAIN_FUSION_BACKEND=str(spec["backend"]))
    env["PYTHONPATH"] = str(REPO)
    if spec["quantize"] is not None:
        env["LANGCHAIN_FUSION_QUANTIZE"] = "1" if spec["quantize"] else "0"
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "langchain_fusion.cli", "ask", "--sample", QUESTION],
            env=env,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        times.append((wall, cpu))
    return times


def chunks_600(texts: list[str], n: int) -> list[str]:
    out: list[str] = []
    for text in texts:
        for start in range(0, len(text) - 599, 600):
            out.append(text[start : start + 600])
            if len(out) == n:
                return out
    return out


def dense_ndcg(doc_vecs: np.ndarray, query_vecs: np.ndarray, ds: Any) -> float:
    from langchain_fusion.evaluation import evaluate_run

    ids = [d.id or d.metadata.get("id") for d in ds.corpus]
    scores = query_vecs @ doc_vecs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    run = {qid: [ids[j] for j in row] for qid, row in zip(ds.queries, top)}
    return float(evaluate_run(run, ds.qrels, metrics=["ndcg@10"]).metrics["ndcg@10"])


def fused_ndcg(doc_vecs: np.ndarray, query_vecs: np.ndarray, ds: Any) -> float:
    from langchain_fusion import FusionRetriever, HybridIndex
    from langchain_fusion.evaluation import evaluate

    texts = [d.page_content for d in ds.corpus]
    table = dict(zip(texts, doc_vecs))
    table.update(zip(ds.queries.values(), query_vecs))
    emb = CachedEmbeddings(engine("torch fp32"), table)  # base never called: all texts known
    index = HybridIndex(emb)
    index.add_documents(list(ds.corpus))
    retriever = FusionRetriever.from_index(index, k=100)
    report = evaluate(retriever, ds.queries, ds.qrels, metrics=["ndcg@10"], show_progress=False)
    return float(report.metrics["ndcg@10"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="quality only")
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--onnx-cache", type=Path, help="ONNX cache root")
    parser.add_argument("--out", type=Path, help="write results as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    if args.onnx_cache:
        os.environ["LANGCHAIN_FUSION_ONNX_CACHE"] = str(args.onnx_cache)
    root = data_dir(args.data)
    from langchain_fusion.evaluation import load_beir

    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average at start: {load[0]:.1f} {load[1]:.1f}")
    t0 = time.perf_counter()
    from langchain_fusion.dense.onnx import export_onnx

    entry = export_onnx()
    print(f"ONNX export ready in {time.perf_counter() - t0:.1f} s: {entry}")
    results: dict[str, Any] = {"load_average_start": load, "engines": {}}
    labels = list(args.engines)
    res: dict[str, dict[str, Any]] = {label: {} for label in labels}

    # 1. cold CLI ask. The first run of each engine embeds the sample and caches its index
    #    (what a user's first ``--sample`` costs); then fresh processes that reopen it (what
    #    ``ask INDEX_DIR`` costs on a saved index), interleaved: one run of each engine per round
    from langchain_fusion.dense.onnx import default_cache_dir

    shutil.rmtree(default_cache_dir().parent / "sample-index", ignore_errors=True)
    first: dict[str, tuple[float, float]] = {}
    for label in [] if args.skip_speed else labels:
        first[label] = cold_ask(label, 1)[0]
        res[label]["first_ask_s"], res[label]["first_ask_cpu_s"] = first[label]
        print(f"first ask {label} (indexes the sample): {first[label][0]:.2f} s wall")
    cold: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for _ in range(0 if args.skip_speed else args.cold_runs):
        for label in labels:
            cold[label] += cold_ask(label, 1)
    for label in labels if cold[labels[0]] else []:
        res[label]["cold_ask_s"] = statistics.median(w for w, _ in cold[label])
        res[label]["cold_ask_cpu_s"] = statistics.median(c for _, c in cold[label])
        res[label]["cold_ask_runs_s"] = cold[label]
        print(
            f"cold ask {label}: median {res[label]['cold_ask_s']:.2f} s wall, "
            f"{res[label]['cold_ask_cpu_s']:.2f} s CPU {cold[label]}"
        )

    scifact = load_beir(root / "beir" / "scifact", "test")
    queries = list(scifact.queries.values())[: args.queries]
    models = {label: engine(label) for label in labels}

    # 2. query embedding p50 (warm: the engine is loaded by a first query)
    for label in [] if args.skip_speed else labels:
        emb = models[label]
        emb.embed_query("warm up")
        times = []
        for q in queries:
            t = time.perf_counter()
            emb.embed_query(q)
            times.append(time.perf_counter() - t)
        res[label]["query_p50_ms"] = 1000 * statistics.median(times)
        print(f"query p50 {label}: {res[label]['query_p50_ms']:.2f} ms")

    # 3. ingest throughput on 600-character chunks, rounds interleaved
    chunks = chunks_600([d.page_content for d in scifact.corpus], args.chunks)
    rates: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(0 if args.skip_speed else args.rounds):
        for label in labels:
            t = time.perf_counter()
            models[label].embed_documents(chunks)
            rates[label].append(len(chunks) / (time.perf_counter() - t))
    for label in labels if rates[labels[0]] else []:
        res[label]["ingest_chunks_per_s"] = statistics.median(rates[label])
        res[label]["ingest_rounds"] = rates[label]
        print(f"ingest {label}: {res[label]['ingest_chunks_per_s']:.1f} chunks/s {rates[label]}")

    # 4. quality
    if not args.skip_quality:
        for name, split in ((n, SPLITS[n]) for n in args.datasets):
            ds = scifact if name == "scifact" else load_beir(root / "beir" / name, split)
            texts = [d.page_content for d in ds.corpus]
            qtexts = list(ds.queries.values())
            vecs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for label in labels:
                t = time.perf_counter()
                docs = np.asarray(models[label].embed_documents(texts), dtype=np.float32)
                seconds = time.perf_counter() - t
                qv = np.asarray([models[label].embed_query(q) for q in qtexts], dtype=np.float32)
                vecs[label] = (docs, qv)
                res[label][f"{name}_docs_per_s"] = len(texts) / seconds
                res[label][f"{name}_dense_ndcg10"] = dense_ndcg(docs, qv, ds)
                res[label][f"{name}_fused_ndcg10"] = fused_ndcg(docs, qv, ds)
                fp32_ref = next((e for e in ("torch fp32", "onnx fp32") if e in vecs), None)
                if fp32_ref is not None and label != fp32_ref:
                    ref = vecs[fp32_ref][0]
                    res[label][f"{name}_min_cos_vs_fp32"] = float((docs * ref).sum(1).min())
                    res[label][f"{name}_max_abs_vs_fp32"] = float(np.abs(docs - ref).max())
                print(
                    f"{name} {label}: dense {res[label][f'{name}_dense_ndcg10']:.4f} fused "
                    f"{res[label][f'{name}_fused_ndcg10']:.4f} ({len(texts) / seconds:.0f} docs/s)",
                    flush=True,
                )
            fp32 = next((e for e in ("torch fp32", "onnx fp32") if e in vecs), None)
            if fp32 and "onnx int8" in vecs:  # an index built in float32, queried in int8
                docs = vecs[fp32][0]
                qv = vecs["onnx int8"][1]
                mixed = {
                    f"{name}_dense_ndcg10": dense_ndcg(docs, qv, ds),
                    f"{name}_fused_ndcg10": fused_ndcg(docs, qv, ds),
                }
                results.setdefault("mixed fp32 index, int8 queries", {}).update(mixed)
                print(f"{name} {fp32} index + int8 queries: {mixed}")

    rows = []
    for label in labels:
        r = res[label]
        rows.append(
            [
                label,
                r.get("first_ask_s", float("nan")),
                r.get("cold_ask_s", float("nan")),
                r.get("cold_ask_cpu_s", float("nan")),
                r.get("query_p50_ms", float("nan")),
                r.get("ingest_chunks_per_s", float("nan")),
                r.get("scifact_dense_ndcg10", float("nan")),
                r.get("scifact_fused_ndcg10", float("nan")),
                r.get("nfcorpus_dense_ndcg10", float("nan")),
                r.get("nfcorpus_fused_ndcg10", float("nan")),
            ]
        )
    print()
    print(
        markdown_table(
            [
                "engine",
                "first ask (s)",
                "cold ask (s)",
                "cold ask CPU (s)",
                "query p50 (ms)",
                "ingest (chunks/s)",
                "SciFact dense",
                "SciFact fused",
                "NFCorpus dense",
                "NFCorpus fused",
            ],
            rows,
        )
    )
    results["engines"] = res
    results["load_average_end"] = os.getloadavg()
    print(f"load average at end: {results['load_average_end'][0]:.1f}")
    if args.out:
        save_json(args.out, results)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
