"""Synthetic corpora for the speed and scale benchmarks.

Text: words drawn from a Zipf distribution over a pseudo-word vocabulary (like real term
frequencies), chunk-sized documents. Vectors: 384-d, from ``Mixture``, a hierarchical Gaussian
mixture on the unit sphere calibrated on all-MiniLM-L6-v2 embeddings of BEIR SciFact (top-1 and
top-10 query cosines, anisotropy, local intrinsic dimension), so that approximate search (HNSW,
IVF) behaves roughly as on real embeddings; isotropic noise in 384 dimensions would be far
harder than any real embedding model's output. Queries: a few words of a random document for the
keyword side, and a query vector drawn from the same mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from langchain_fusion.lexical.stopwords import ENGLISH_STOPWORDS

_SYLLABLES = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"]


def _vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    """The Zipf head is English function words, the tail pseudo-words.

    As in real English text, where the hundred or so most frequent words are function words
    (about half of all tokens), which a real keyword engine drops as stopwords: without this,
    the synthetic queries would be full of content words that occur in most documents, a case
    no real corpus has.
    """
    head = sorted(ENGLISH_STOPWORDS)
    rng.shuffle(head)
    words: set[str] = set()
    while len(words) < size - len(head):
        n = int(rng.integers(2, 5))
        word = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), n))
        if word not in ENGLISH_STOPWORDS:
            words.add(word)
    return np.array(head + sorted(words))


@dataclass
class Corpus:
    texts: list[str]
    vectors: np.ndarray
    queries: list[str]
    query_vectors: np.ndarray


class Mixture:
    """An embedding-like hierarchical Gaussian mixture on the unit sphere (deterministic).

    Calibrated against all-MiniLM-L6-v2 embeddings of BEIR SciFact (5,183 abstracts, 300 test
    queries), whose query statistics are: mean top-1 cosine 0.62, top-10 cosine 0.45, mean
    cosine to a random document 0.10, local intrinsic dimension ~21. With the defaults below the
    synthetic queries give 0.63 / 0.55 / 0.10 / ~23. Structure: a shared mean direction
    (embedding anisotropy), topics -> clusters (Dirichlet-skewed sizes), anisotropic
    within-cluster noise with a power-law spectrum in a random rotation, and queries drawn with a
    small shared offset (the query/document gap). Caveat: at equal efSearch, HNSW recall on this
    data is somewhat *higher* than on the real SciFact embeddings (see the report).
    """

    def __init__(
        self, dim: int, n_clusters: int, *, n_topics: int = 30, decay: float = 0.5
    ) -> None:
        rng = np.random.default_rng(12345)
        self.mean = rng.standard_normal(dim).astype(np.float32)
        self.mean /= np.linalg.norm(self.mean)
        topics = rng.standard_normal((n_topics, dim)) / np.sqrt(dim)
        parents = rng.integers(0, n_topics, n_clusters)
        centers = topics[parents] + rng.standard_normal((n_clusters, dim)) / np.sqrt(dim)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        self.centers = (centers + 0.5 * self.mean).astype(np.float32)
        self.weights = rng.dirichlet(np.ones(n_clusters))
        spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -decay
        self.spectrum = (spectrum / np.linalg.norm(spectrum)).astype(np.float32)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.rotation = rotation.astype(np.float32)
        offset = rng.standard_normal(dim).astype(np.float32)
        self.query_offset = offset / np.linalg.norm(offset)

    def sample(
        self, n: int, seed: int, *, spread: float = 1.2, query: bool = False
    ) -> NDArray[np.float32]:
        rng = np.random.default_rng(seed)
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((n, len(self.spectrum)), dtype=np.float32)
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            noise = rng.standard_normal((stop - start, out.shape[1]), dtype=np.float32)
            block = (
                self.centers[labels[start:stop]]
                + (noise * (spread * self.spectrum)) @ self.rotation
            )
            if query:
                block += 0.6 * self.query_offset
            out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out


def make_corpus(
    n_docs: int,
    *,
    n_queries: int = 200,
    dim: int = 384,
    vocab: int = 50_000,
    mean_len: int = 60,
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

    mixture = Mixture(dim, n_clusters=max(100, n_docs // 1000))
    vectors = mixture.sample(n_docs, seed)

    picks = rng.integers(0, n_docs, n_queries)
    queries = []
    for i in picks:
        # 2-5 content words of the document, with the function words between them.
        toks = texts[i].split()
        n = int(rng.integers(2, 6))
        start = int(rng.integers(0, max(1, len(toks) - n)))
        stop, content = start, 0
        while stop < len(toks) and content < n:
            content += toks[stop] not in ENGLISH_STOPWORDS
            stop += 1
        queries.append(" ".join(toks[start:stop]))
    qv = mixture.sample(n_queries, seed + 1, query=True)
    return Corpus(texts, vectors, queries, qv)


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
