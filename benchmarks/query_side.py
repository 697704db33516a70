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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_CACHE, beir_with_embeddings, data_dir, save_json

from langchain_fusion import FusionRetriever, HybridIndex, Source
from langchain_fusion.evaluation import compare, evaluate, load_beir
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
        # the retriever rescores max(k, top_n) and returns k: k = top_n keeps the cost at top_n
        # pairs per query, so its recall@100 is a recall@top_n
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


def measure(
    label: str,
    retrievers: dict[str, Any],
    queries: dict[str, str],
    qrels: Any,
    baseline: str = DEFAULTS,
) -> tuple[str, dict[str, dict[str, float]]]:
    reports = {}
    for name, r in retrievers.items():
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
    table = compare(reports, baseline=baseline)
    results = {
        name: {**rep.metrics, "ms_per_query": 1000 * rep.seconds / max(rep.n_queries, 1)}
        for name, rep in reports.items()
    }
    return table, results


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
            table, results = measure(label, lexical_systems(index), ds.queries, ds.qrels, LEXICAL)
            tables.append(f"### {label}\n\n{table}")
            payload[f"{name}/{split}/lexical"] = results
            continue
        emb, data = beir_with_embeddings(name, (split,), root, args.cache)
        ds = data[split]
        index = HybridIndex(emb)
        index.add_documents(ds.corpus)
        # first: the held-out fold decides before any test query is scored
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
            table, results = measure(hl, subset, queries, qrels)
            tables.append(f"### {hl}\n\n{table}")
            payload[f"{name}/train-heldout"] = results
            if args.heldout_only:
                continue
        label = f"{name} {split} ({len(ds.queries)} queries)"
        print(f"\n## {label}", flush=True)
        table, results = measure(
            label, systems(index, args.reranker, args.top_n), ds.queries, ds.qrels
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
    else:
        print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
