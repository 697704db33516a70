"""Synthetic corpora for the speed and scale benchmarks.

Text: words drawn from a Zipf distribution over a pseudo-word vocabulary (like real term
frequencies), chunk-sized documents. Vectors: 384-d, from a mixture of Gaussians (clustered like
real embeddings, not uniform noise), L2-normalized. Queries: a few words of a random document,
with its vector plus noise, so both sides have something to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

_SYLLABLES = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"]


def _vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words.add("".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), n)))
    return np.array(sorted(words))


@dataclass
class Corpus:
    texts: list[str]
    vectors: np.ndarray
    queries: list[str]
    query_vectors: np.ndarray


def make_corpus(
    n_docs: int,
    *,
    n_queries: int = 200,
    dim: int = 384,
    vocab: int = 50_000,
    mean_len: int = 60,
    clusters: int = 256,
    seed: int = 0,
) -> Corpus:
    rng = np.random.default_rng(seed)
    words = _vocabulary(vocab, rng)
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    lengths = np.clip(rng.poisson(mean_len, n_docs), 5, None)
    flat = rng.choice(vocab, size=int(lengths.sum()), p=p)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    texts = [" ".join(words[flat[bounds[i] : bounds[i + 1]]]) for i in range(n_docs)]

    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    assign = rng.integers(0, clusters, n_docs)
    vectors = np.empty((n_docs, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n_docs, step):
        e = min(n_docs, s + step)
        v = centers[assign[s:e]] + 0.6 * rng.standard_normal((e - s, dim)).astype(np.float32)
        vectors[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)

    picks = rng.integers(0, n_docs, n_queries)
    queries = []
    for i in picks:
        toks = texts[i].split()
        n = int(rng.integers(2, 6))
        start = int(rng.integers(0, max(1, len(toks) - n)))
        queries.append(" ".join(toks[start : start + n]))
    qv = vectors[picks] + 0.05 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    return Corpus(texts, vectors, queries, qv.astype(np.float32))


class LookupEmbeddings(Embeddings):
    """Precomputed vectors behind the LangChain Embeddings interface (model excluded)."""

    def __init__(self, corpus: Corpus) -> None:
        self._docs = {t: i for i, t in enumerate(corpus.texts)}
        self._queries = dict(zip(corpus.queries, corpus.query_vectors))
        self._corpus = corpus

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._corpus.vectors[[self._docs[t] for t in texts]].tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._queries[text].tolist()
