"""Query-side fusion on BEIR SciFact (test) and NFCorpus (dev), side by side with the defaults.

One run measures, over the same cached MiniLM vectors:
  * ``FusionRetriever`` defaults (convex, min-max, alpha 0.5) and two-way RRF;
  * TF-IDF cosine alone (``TfidfSource``);
  * dense + BM25 + TF-IDF with weighted RRF, the seed pipeline (``tfidf_fusion``: weights
    dense 1.0 / BM25 1.2 / TF-IDF 1.0), the other reading of its weights (dense 1.2), equal
    weights, and convex min-max fusion of the three;
  * with ``--reranker PATH``: the defaults with a cross-encoder reranking the fused list (the
    top 100 every system returns here for recall@100; ``benchmarks/train_reranker.py`` trains
    one), on ``--heldout`` train queries the model never saw first, then on the test split;
    from that same run, blends of the reranker with the fused list it reordered (weighted RRF
    of the two ranks, and convex min-max of the two scores), their rerank weight chosen on the
    held-out fold (every weight is printed there) and applied unchanged on test;
  * multi-query latency: ``MultiQueryFusionRetriever(num_queries=3)`` with a scripted chat
    model that answers instantly, against one retrieval round (median ms over queries), with
    the local index and with every source answering after 50 ms (a store over the network).

nDCG@10 and recall@100; ``†`` marks a paired t-test p < 0.05 against the defaults.

Usage:
    python benchmarks/query_side.py --data ../shared/data [--datasets scifact nfcorpus]
        [--reranker ~/.cache/langchain-fusion/cross-encoder-scifact] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_CACHE, beir_with_embeddings, data_dir, save_json

from langchain_fusion import FusionRetriever, HybridIndex, Source, fusion
from langchain_fusion.evaluation import compare, evaluate, evaluate_run, load_beir
from langchain_fusion.evaluation.evaluate import paired_p_value
from langchain_fusion.rerank import rerank_documents
from langchain_fusion.sources import HybridDenseSource, HybridKeywordSource
from langchain_fusion.tfidf import TfidfSource, tfidf_fusion

SPLITS = {"scifact": "test", "nfcorpus": "dev"}
METRICS = ("ndcg@10", "recall@100")
DEFAULTS = "FusionRetriever defaults"


def systems(index: HybridIndex, reranker: str | None, top_n: int) -> dict[str, Any]:
    tfidf = TfidfSource(index)
    tfidf.search("warm up", 1)  # builds the TF-IDF matrix once, outside the timed queries
    three = [HybridDenseSource(index), HybridKeywordSource(index), tfidf]
    names = ["dense", "bm25", "tfidf"]
    seed = tfidf_fusion(index, k=100)  # the one-call pipeline, sharing the warm TF-IDF source
    seed.sources[2] = tfidf
    out: dict[str, Any] = {
        DEFAULTS: FusionRetriever.from_index(index, k=100),
        "FusionRetriever RRF (dense + BM25)": FusionRetriever.from_index(
            index, k=100, method="rrf"
        ),
        "TF-IDF cosine alone": FusionRetriever(
            sources=[three[2]], names=["tfidf"], k=100, method="rrf"
        ),
        "dense + BM25 + TF-IDF, RRF 1.0/1.2/1.0 (tfidf_fusion)": seed,
        "dense + BM25 + TF-IDF, RRF 1.2/1.0/1.0": FusionRetriever(
            sources=three, names=names, weights=[1.2, 1.0, 1.0], method="rrf", k=100
        ),
        "dense + BM25 + TF-IDF, RRF 1/1/1": FusionRetriever(
            sources=three, names=names, weights=[1.0, 1.0, 1.0], method="rrf", k=100
        ),
        "dense + BM25 + TF-IDF, convex min-max 1/1/1": FusionRetriever(
            sources=three, names=names, weights=[1.0, 1.0, 1.0], k=100
        ),
    }
    if reranker:
        # the retriever rescores max(k, top_n) and returns k: measure() asks it for k = top_n
        # (not the 100 of the other rows), so it rescores top_n pairs per query and its
        # recall@100 is a recall@top_n
        out[f"defaults + cross-encoder rerank (top {top_n}, returns {top_n})"] = (
            FusionRetriever.from_index(index, k=top_n, reranker=reranker, rerank_top_n=top_n)
        )
    return out


LEXICAL = "BM25 alone"


def lexical_systems(index: HybridIndex) -> dict[str, Any]:
    """BM25 and TF-IDF without the dense side (needs no embeddings)."""
    bm25, tfidf = HybridKeywordSource(index), TfidfSource(index)
    tfidf.search("warm up", 1)
    pair = [bm25, tfidf]
    return {
        LEXICAL: FusionRetriever(sources=[bm25], names=["bm25"], k=100),
        "TF-IDF alone": FusionRetriever(sources=[tfidf], names=["tfidf"], k=100),
        "BM25 + TF-IDF, RRF 1.2/1.0": FusionRetriever(
            sources=pair, names=["bm25", "tfidf"], weights=[1.2, 1.0], method="rrf", k=100
        ),
        "BM25 + TF-IDF, convex min-max 1/1": FusionRetriever(
            sources=pair, names=["bm25", "tfidf"], weights=[1.0, 1.0], k=100
        ),
    }


class Recorded(BaseRetriever):
    """Runs ``inner`` unchanged and keeps, per query, each returned document's rerank breakdown.

    From one real reranked run this gives the reranker's order and the fused order of the same
    top-N, so rank blends of the two can be scored without running the cross-encoder again.
    """

    inner: Any
    k: int
    log: dict[str, list[tuple[str, int, float, float]]] = Field(default_factory=dict)

    def _get_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> Any:
        # always its own k (= rerank_top_n): the k=100 evaluate asks for would make the
        # reranker rescore 100 documents instead of the top_n it is configured for
        docs = self.inner.invoke(query, k=self.k)
        self.log[query] = [
            (
                str(d.id),
                int(d.metadata["fusion"]["rerank"]["fused_rank"]),
                float(d.metadata["fusion"]["score"]),
                float(d.metadata["fusion"]["rerank"]["score"]),
            )
            for d in docs
        ]
        return docs


BLEND_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


Blend = tuple[str, float]  # (kind, rerank weight)


def blend_runs(
    log: dict[str, list[tuple[str, int, float, float]]], queries: dict[str, str], weight: float
) -> dict[str, dict[str, list[str]]]:
    """Runs that blend the reranker with the fused list it reordered, ``weight`` on the reranker.

    ``convex``: the package's ``rerank_weight`` (``rerank_documents(..., weight=weight)``, fed
    the recorded cross-encoder scores instead of running it again); ``rrf``: weighted Reciprocal
    Rank Fusion of the two ranks (the package's ``fuse``, ``method="rrf"``), for comparison.
    """
    runs: dict[str, dict[str, list[str]]] = {"rrf": {}, "convex": {}}
    for qid, text in queries.items():
        rows = log.get(text, [])  # in the reranker's order
        ranks = np.array([[i + 1 for i in range(len(rows))], [r[1] for r in rows]])
        pool = fusion.Pool(np.ones(ranks.shape), ranks, np.array([True, True]))
        by_rank = fusion.fuse(pool, fusion.FusionSpec(method="rrf", alpha=weight)).order
        runs["rrf"][qid] = [rows[j][0] for j in by_rank]
        in_fused_order = sorted(rows, key=lambda r: r[1])
        docs = [
            Document(r[0], id=r[0], metadata={"fusion": {"score": r[2], "rank": r[1]}})
            for r in in_fused_order
        ]
        recorded = [r[3] for r in in_fused_order]
        out = rerank_documents(lambda q, t, s=recorded: s, text, docs, len(docs), weight=weight)
        runs["convex"][qid] = [str(d.id) for d in out]
    return runs


def blend_reports(
    log: dict[str, list[tuple[str, int, float, float]]],
    queries: dict[str, str],
    qrels: Any,
    weights: Iterable[float],
) -> dict[Blend, Any]:
    """Evaluation reports of both blend kinds at each of ``weights``."""
    out: dict[Blend, Any] = {}
    for w in weights:
        for kind, run in blend_runs(log, queries, w).items():
            out[kind, w] = evaluate_run(run, qrels, metrics=METRICS)
    return out


def blend_name(kind: str, weight: float) -> str:
    return f"rerank blended with fused ({kind}, rerank weight {weight:.1f})"


def measure(
    label: str,
    retrievers: dict[str, Any],
    queries: dict[str, str],
    qrels: Any,
    baseline: str = DEFAULTS,
    blend: dict[str, float] | None = None,
) -> tuple[str, dict[str, Any], dict[str, float]]:
    """Score every retriever; a reranking one also gives its rank blends with the fused list.

    ``blend`` fixes the blend weights (chosen on held-out queries); without it every weight in
    ``BLEND_WEIGHTS`` is scored and the best per kind is returned as the third value.
    """
    reports: dict[str, Any] = {}
    chosen: dict[str, float] = {}
    recorder_logs: dict[str, Any] = {}
    for name, r in retrievers.items():
        recorder = None
        if "rerank" in name:
            r = recorder = Recorded(inner=r, k=r.k)
        t0 = time.perf_counter()
        # a cross-encoder uses both cores per batch: one query at a time (no oversubscription)
        workers = 1 if "rerank" in name else None
        reports[name] = evaluate(
            r, queries, qrels, metrics=METRICS, k=100, show_progress=False, max_concurrency=workers
        )
        print(
            f"  {label} | {name}: nDCG@10 {reports[name].metrics['ndcg@10']:.4f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        if recorder is not None:
            weights = BLEND_WEIGHTS if blend is None else sorted(set(blend.values()))
            blends = blend_reports(recorder.log, queries, qrels, weights)
            chosen = blend or {}
            if blend is None:  # the sweep is printed; the table keeps the best of each kind
                for (kind, w), rep in blends.items():
                    ndcg = rep.metrics["ndcg@10"]
                    print(f"  {label} | {blend_name(kind, w)}: nDCG@10 {ndcg:.4f}", flush=True)
                    if kind not in chosen or ndcg > blends[kind, chosen[kind]].metrics["ndcg@10"]:
                        chosen[kind] = w  # ties: the smaller weight
            for kind, w in chosen.items():
                reports[blend_name(kind, w)] = blends[kind, w]
            recorder_logs.update(recorder.log)
    table = compare(reports, baseline=baseline)
    base = reports[baseline]
    results: dict[str, dict[str, Any]] = {}
    for name, rep in reports.items():
        ms = 1000 * (rep.seconds or 0.0) / max(rep.n_queries, 1)
        results[name] = {**rep.metrics, "ms_per_query": ms}
        if "rerank" in name:  # the exact p-value, not only the dagger
            common = [q for q in rep.per_query if q in base.per_query]
            p = paired_p_value(
                [rep.per_query[q]["ndcg@10"] for q in common],
                [base.per_query[q]["ndcg@10"] for q in common],
            )
            results[name]["p_ndcg@10_vs_baseline"] = p
            print(f"  {label} | {name}: p = {p:.4f} against {baseline}", flush=True)
    if recorder_logs:
        results["rerank_log"] = recorder_logs  # per query (id, fused rank, fused, rerank score)
    return table, results, chosen


class Remote(Source):
    """A source answering after ``delay`` seconds, like a vector database over the network."""

    def __init__(self, inner: Source, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.kind, self.supports_filter = inner.kind, inner.supports_filter

    def search(self, query: str, k: int, *, filter: Any = None) -> Any:
        time.sleep(self.delay)
        return self.inner.search(query, k, filter=filter)


def multi_query_latency(
    index: HybridIndex, queries: list[str], repeat: int, delay: float = 0.0
) -> dict[str, float]:
    """Median ms/query: one retrieval round, and multi-query with an instant scripted model.

    ``delay`` > 0 makes every source answer after that many seconds (a remote store): then the
    variants' searches overlap in time instead of competing for the two CPU cores.
    """
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from langchain_fusion import MultiQueryFusionRetriever

    class Rewriter(BaseChatModel):
        """Scripted: three variants made from the question's words (no model behind it)."""

        @property
        def _llm_type(self) -> str:
            return "scripted-rewriter"

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            words = str(messages[-1].content).split()
            lines = [" ".join(words[1:]), " ".join(words[:-1]), " ".join(reversed(words))]
            text = "\n".join(line or "x" for line in lines)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    base = FusionRetriever.from_index(index, k=10)
    if delay:
        base = FusionRetriever(
            sources=[
                Remote(HybridDenseSource(index), delay),
                Remote(HybridKeywordSource(index), delay),
            ],
            names=["dense", "bm25"],
            k=10,
        )
    multi = MultiQueryFusionRetriever(retriever=base, llm=Rewriter(), num_queries=3, cache_size=0)
    # the variants' embeddings are computed on first use; warm them up so both sides embed nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q in queries:
            multi.invoke(q)
    out: dict[str, list[float]] = {"one round (defaults)": [], "multi-query, 3 variants": []}
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            base.invoke(q)
            t1 = time.perf_counter()
            multi.invoke(q)
            t2 = time.perf_counter()
            out["one round (defaults)"].append(1000 * (t1 - t0))
            out["multi-query, 3 variants"].append(1000 * (t2 - t1))
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data")
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--reranker", help="path of a saved CrossEncoder")
    parser.add_argument("--top-n", type=int, default=50)
    parser.add_argument("--heldout", action="store_true", help="also the held-out train fold")
    parser.add_argument(
        "--heldout-only",
        action="store_true",
        help="only the held-out fold (the gate): no test query is scored",
    )
    parser.add_argument(
        "--heldout-max",
        type=int,
        default=None,
        help="score only the first N queries of the held-out fold (fixed order: its ids sorted)",
    )
    parser.add_argument("--latency-queries", type=int, default=50)
    parser.add_argument(
        "--lexical-only",
        action="store_true",
        help="only BM25 and TF-IDF (no embeddings needed): does TF-IDF add to BM25?",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    root = data_dir(args.data)
    payload: dict[str, Any] = {}
    tables: list[str] = []
    for name in args.datasets:
        split = SPLITS[name]
        if args.lexical_only:
            from langchain_core.embeddings import DeterministicFakeEmbedding

            ds = load_beir(root / "beir" / name, split)
            index = HybridIndex(DeterministicFakeEmbedding(size=4))  # the dense side is unused
            index.add_documents(ds.corpus)
            label = f"{name} {split} ({len(ds.queries)} queries), lexical only"
            print(f"\n## {label}", flush=True)
            table, results, _ = measure(
                label, lexical_systems(index), ds.queries, ds.qrels, LEXICAL
            )
            tables.append(f"### {label}\n\n{table}")
            payload[f"{name}/{split}/lexical"] = results
            continue
        emb, data = beir_with_embeddings(name, (split,), root, args.cache)
        ds = data[split]
        index = HybridIndex(emb)
        index.add_documents(ds.corpus)
        # first: the held-out fold decides before any test query is scored, and fixes the weights
        # of the rerank blends scored on test
        blend: dict[str, float] | None = None
        if args.reranker and (args.heldout or args.heldout_only):
            from train_reranker import FOLDS, folds

            train = load_beir(root / "beir" / name, "train")
            held = sorted(folds(list(train.queries))[FOLDS - 1])[: args.heldout_max]
            queries = {q: train.queries[q] for q in held}
            qrels = {q: train.qrels[q] for q in queries}
            subset = {
                k: v
                for k, v in systems(index, args.reranker, args.top_n).items()
                if k == DEFAULTS or "rerank" in k
            }
            hl = f"{name} train, held-out fold ({len(queries)} queries)"
            print(f"\n## {hl}", flush=True)
            table, results, blend = measure(hl, subset, queries, qrels)
            print(f"  blend weights chosen on the held-out fold: {blend}", flush=True)
            payload[f"{name}/blend_weights"] = blend
            tables.append(f"### {hl}\n\n{table}")
            payload[f"{name}/train-heldout"] = results
            if args.heldout_only:
                continue
        label = f"{name} {split} ({len(ds.queries)} queries)"
        print(f"\n## {label}", flush=True)
        table, results, _ = measure(
            label, systems(index, args.reranker, args.top_n), ds.queries, ds.qrels, blend=blend
        )
        tables.append(f"### {label}\n\n{table}")
        payload[f"{name}/{split}"] = results
        if args.latency_queries:
            qs = list(ds.queries.values())[: args.latency_queries]
            lat = multi_query_latency(index, qs, repeat=1)
            remote = multi_query_latency(index, qs, repeat=1, delay=0.05)
            payload[f"{name}/latency_ms"] = {"local": lat, "remote_50ms": remote}
            rows = "\n".join(f"| {k} | {v:.1f} | {remote[k]:.1f} |" for k, v in lat.items())
            tables.append(
                f"### {name}: multi-query latency ({len(qs)} queries, median ms)\n\n"
                "| system | local sources | sources 50 ms away |\n|:--|--:|--:|\n" + rows
            )
    print("\n\n" + "\n\n".join(tables))
    if args.out:
        save_json(args.out, payload)
        print(f"\nwrote {args.out}")
    else:  # the per-query rerank logs only go to --out
        brief = {
            key: {n: v for n, v in val.items() if n != "rerank_log"}
            if isinstance(val, dict)
            else val
            for key, val in payload.items()
        }
        print(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
