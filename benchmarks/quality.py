"""Retrieval quality on BEIR SciFact (test) and NFCorpus (dev) with all-MiniLM-L6-v2.

Compares, over the same cached embeddings, in one run:
  * BM25 alone: langchain_community's BM25Retriever (whitespace split) and the package's own;
  * dense alone (exact cosine);
  * today's LangChain answer: EnsembleRetriever([BM25Retriever, FAISS.as_retriever()]);
  * FusionRetriever wrapping that same community FAISS + BM25Retriever;
  * FusionRetriever at defaults, and every method / normalization;
  * FusionRetriever at defaults with pseudo-relevance feedback (feedback_docs=2; off by default).

Usage:
    python benchmarks/quality.py --data ../shared/data [--datasets scifact nfcorpus] [--out r.json]

Embeddings are computed once with the local model and cached (``--cache``, default
~/.cache/langchain-fusion); retrieval always goes through the real retrievers.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DEFAULT_CACHE,
    CachedEmbeddings,
    beir_with_embeddings,
    data_dir,
    markdown_table,
    save_json,
)

from langchain_fusion import BM25Retriever, FusionRetriever, HybridIndex
from langchain_fusion.evaluation import evaluate

SPLITS = {"scifact": "test", "nfcorpus": "dev"}
METRICS = ("ndcg@10", "recall@100")


def build_systems(
    name: str, docs: list[Any], emb: CachedEmbeddings, only: set[str] | None
) -> dict[str, Any]:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever as CommunityBM25
    from langchain_community.vectorstores import FAISS

    systems: dict[str, Any] = {}
    t0 = time.perf_counter()
    index = HybridIndex(emb)
    index.add_documents(docs)
    print(f"  HybridIndex built in {time.perf_counter() - t0:.1f} s")
    community_bm25 = CommunityBM25.from_documents(docs, k=100)
    faiss_store = FAISS.from_documents(docs, emb)
    own_bm25 = BM25Retriever.from_documents(docs, k=100)

    def add(label: str, make: Any) -> None:
        if only is None or label in only:
            systems[label] = make()

    add("BM25 (community BM25Retriever)", lambda: community_bm25)
    add("BM25 (langchain-fusion)", lambda: own_bm25)
    add("dense (MiniLM, exact cosine)", lambda: index.as_retriever(search_kwargs={"k": 100}))
    add(
        "EnsembleRetriever (community BM25 + FAISS)",
        lambda: EnsembleRetriever(
            retrievers=[community_bm25, faiss_store.as_retriever(search_kwargs={"k": 100})],
            weights=[0.5, 0.5],
        ),
    )
    add(
        "FusionRetriever over community FAISS + BM25Retriever",
        lambda: FusionRetriever(vectorstore=faiss_store, keyword_retriever=community_bm25, k=100),
    )
    add("FusionRetriever (defaults)", lambda: FusionRetriever.from_index(index, k=100))
    for method in ("minmax", "zscore", "dbsf", "rrf"):
        add(
            f"FusionRetriever method={method}",
            lambda m=method: FusionRetriever.from_index(index, k=100, method=m),
        )
        # the non-default choice: convex fusion completes scores by default, RRF does not
        complete = method == "rrf"
        add(
            f"FusionRetriever method={method}, "
            + ("complete ranks" if complete else "no complete scoring"),
            lambda m=method, c=complete: FusionRetriever.from_index(
                index, k=100, method=m, complete_scoring=c
            ),
        )
    add(
        "FusionRetriever (defaults) + feedback_docs=2",
        lambda: FusionRetriever.from_index(index, k=100, feedback_docs=2),
    )
    return systems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--systems", nargs="*", help="only these system labels")
    parser.add_argument("--out", type=Path, help="write results as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    root = data_dir(args.data)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.datasets:
        split = SPLITS[name]
        emb, data = beir_with_embeddings(name, (split,), root, args.cache)
        ds = data[split]
        print(f"\n## {name} ({split}): {len(ds.corpus)} documents, {len(ds.queries)} queries")
        systems = build_systems(name, ds.corpus, emb, set(args.systems) if args.systems else None)
        rows = []
        results[name] = {}
        for label, retriever in systems.items():
            report = evaluate(
                retriever, ds.queries, ds.qrels, metrics=METRICS, k=100, show_progress=False
            )
            ms = 1000 * report.seconds / max(report.n_queries, 1)
            results[name][label] = {**report.metrics, "ms_per_query": ms}
            rows.append([label, report.metrics["ndcg@10"], report.metrics["recall@100"], ms])
            print(f"  {label}: nDCG@10 {report.metrics['ndcg@10']:.4f}", flush=True)
        print()
        print(markdown_table(["system", "nDCG@10", "recall@100", "ms/query"], rows))
    if args.out:
        save_json(args.out, results)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
