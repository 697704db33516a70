"""Benchmark the package's BM25Index against bm25s and rank-bm25: build time and query latency.

Documents are real sentences from the BEIR SciFact and NFCorpus corpora (about 90k of them);
sizes beyond that are filled with synthetic sentences whose words follow the corpus unigram
distribution. Queries are 2-5 word spans of the SciFact and NFCorpus queries. Every engine gets the
same tokens (this package's tokenizer), so the numbers compare indexing and scoring, and bm25s
(numpy backend) is checked to return the same top-10 scores.

Usage::

    python benchmarks/bench_bm25.py 10000 100000 1000000 [--queries 200] [--rank-bm25-max 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_fusion.lexical import BM25Index, Tokenizer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_sentences(data: Path) -> tuple[list[str], list[str]]:
    sentences: list[str] = []
    queries: list[str] = []
    for name in ("scifact", "nfcorpus"):
        with (data / "beir" / name / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                text = f"{doc.get('title', '')}. {doc['text']}"
                sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20)
        with (data / "beir" / name / "queries.jsonl").open(encoding="utf-8") as f:
            queries.extend(json.loads(line)["text"] for line in f)
    return sentences, queries


def make_corpus(sentences: list[str], n: int, seed: int = 0) -> list[str]:
    if n <= len(sentences):
        return sentences[:n]
    rng = np.random.default_rng(seed)
    words = " ".join(sentences).split()
    vocab, counts = np.unique(np.array(words), return_counts=True)
    p = counts / counts.sum()
    lengths = rng.choice([len(s.split()) for s in sentences], size=n - len(sentences))
    flat = rng.choice(vocab, size=int(lengths.sum()), p=p)
    ends = np.cumsum(lengths)
    extra = [" ".join(flat[e - n_words : e]) for e, n_words in zip(ends, lengths, strict=True)]
    return sentences + extra


def make_queries(raw: list[str], n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        words = raw[int(rng.integers(len(raw)))].split()
        size = int(rng.integers(2, 6))
        if len(words) < size:
            continue
        start = int(rng.integers(0, len(words) - size + 1))
        out.append(" ".join(words[start : start + size]))
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def latencies_ms(fn: Callable[[str], Any], queries: Sequence[str]) -> list[float]:
    for q in queries[:5]:
        fn(q)  # warm-up
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summarize(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rank-bm25-max", type=int, default=20_000)
    parser.add_argument("--no-bm25s", action="store_true")
    parser.add_argument(
        "--data", default=os.environ.get("LANGCHAIN_FUSION_DATA", str(DEFAULT_DATA))
    )
    args = parser.parse_args()

    sentences, raw_queries = load_sentences(Path(args.data))
    queries = make_queries(raw_queries, args.queries)
    tokenizer = Tokenizer()
    rows: list[tuple[Any, ...]] = []
    print(f"{len(sentences)} real sentences; {len(queries)} queries of 2-5 words; k={args.k}")
    for n in args.sizes:
        texts = make_corpus(sentences, n)
        n_tokens = sum(len(t) for t in tokenizer.tokenize_many(texts[:2000])) / min(n, 2000)

        # ---- this package
        build, index = timed(lambda texts=texts: _build_ours(texts))
        lat = latencies_ms(lambda q, index=index: index.search(q, args.k), queries)
        rows.append(("langchain-fusion BM25Index", n, build, *summarize(lat)))
        print(rows[-1], flush=True)
        # incremental add: 1% more documents into the built index
        more = texts[: max(1, n // 100)]
        t_add, _ = timed(lambda index=index, more=more: index.add(more))
        t_rm, _ = timed(lambda index=index, n=n: index.remove(np.arange(0, n, 100)))
        print(
            f"  add {len(more)} docs: {t_add * 1000:.0f} ms; remove {len(range(0, n, 100))}: "
            f"{t_rm * 1000:.0f} ms; avg {n_tokens:.1f} terms/doc",
            flush=True,
        )
        del index
        gc.collect()

        # ---- bm25s (same tokens)
        if not args.no_bm25s:
            import bm25s

            def build_bm25s(texts: list[str] = texts) -> Any:
                model = bm25s.BM25()
                model.index(tokenizer.tokenize_many(texts), show_progress=False)
                return model

            build, model = timed(build_bm25s)

            def search_bm25s(q: str, model: Any = model, n: int = n) -> Any:
                tokens = [t for t in tokenizer(q) if t in model.vocab_dict]
                if not tokens:
                    return None
                return model.retrieve([tokens], k=min(args.k, n), show_progress=False)

            lat = latencies_ms(search_bm25s, queries)
            rows.append(("bm25s 0.3 (numpy backend)", n, build, *summarize(lat)))
            print(rows[-1], flush=True)
            _check_same_scores(texts, queries[:20], model, tokenizer, args.k)
            del model
            gc.collect()

        # ---- rank-bm25 (slow: only small sizes)
        if n <= args.rank_bm25_max:
            from rank_bm25 import BM25Okapi

            build, okapi = timed(lambda texts=texts: BM25Okapi(tokenizer.tokenize_many(texts)))

            def search_rank(q: str, okapi: Any = okapi, n: int = n) -> Any:
                scores = okapi.get_scores(tokenizer(q))
                return np.argpartition(-scores, min(args.k, n - 1))[: args.k]

            lat = latencies_ms(search_rank, queries[: min(len(queries), 50)])
            rows.append(("rank-bm25 BM25Okapi", n, build, *summarize(lat)))
            print(rows[-1], flush=True)
            del okapi

    print()
    print("| engine | docs | build (s) | query median (ms) | query p95 (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name, n, build, med, p95 in rows:
        print(f"| {name} | {n:,} | {build:.2f} | {med:.2f} | {p95:.2f} |")


def _build_ours(texts: list[str]) -> BM25Index:
    index = BM25Index()
    index.add(texts)
    return index


def _check_same_scores(
    texts: list[str], queries: list[str], model: Any, tokenizer: Tokenizer, k: int
) -> None:
    index = BM25Index(tokenizer)
    index.add(texts)
    worst = 0.0
    for q in queries:
        tokens = [t for t in tokenizer(q) if t in model.vocab_dict]
        if not tokens:
            continue
        _, ref = model.retrieve([tokens], k=min(k, len(texts)), show_progress=False)
        ref = ref[0][ref[0] > 0]
        _, ours = index.search(q, k)
        worst = max(worst, float(np.max(np.abs(ref - ours[: len(ref)]), initial=0.0)))
    print(
        f"  max |bm25s - ours| over top-{k} scores: {worst:.2e} (bm25s stores float32)", flush=True
    )


if __name__ == "__main__":
    main()
