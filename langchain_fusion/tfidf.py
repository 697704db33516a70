"""TF-IDF cosine similarity as a third source, next to dense vectors and BM25.

[`TfidfSource`][langchain_fusion.tfidf.TfidfSource] scores the documents of a
[`HybridIndex`][langchain_fusion.HybridIndex] by the cosine between sublinear TF-IDF vectors
(``1 + log tf``, smoothed ``idf``, unit length), with the index's own BM25 tokenizer. The matrix
is built on first use and rebuilt after the index changes.
[`tfidf_fusion`][langchain_fusion.tfidf.tfidf_fusion] builds the BM25 + TF-IDF + dense
weighted-RRF pipeline in one call. Measured on SciFact and NFCorpus, the third list does not
beat the two-way defaults (see the benchmarks page).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from langchain_fusion.sources import Candidates, Source

if TYPE_CHECKING:
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.retriever import FusionRetriever

__all__ = ["TfidfSource", "tfidf_fusion"]


@dataclass
class _Matrix:
    key: tuple[int, int]
    ids: list[str]
    slot: dict[str, int]
    metadata: list[dict[str, Any]]
    vocab: dict[str, int]
    idf: NDArray[np.float64]
    csc: Any  # documents x terms, unit rows


class TfidfSource(Source):
    """TF-IDF cosine over a [`HybridIndex`][langchain_fusion.HybridIndex]'s documents.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["red apples", "green apples and pears", "plums"],
        ...     DeterministicFakeEmbedding(size=8), ids=["a", "b", "c"])
        >>> c = TfidfSource(index).search("red apple", 5)
        >>> c.ids, c.scores.round(3).tolist()
        (['a', 'b'], [1.0, 0.287])

    """

    kind = "tfidf"
    supports_filter = True

    def __init__(self, index: HybridIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._matrix: _Matrix | None = None

    def _state_key(self) -> tuple[int, int]:
        return (int(getattr(self.index, "_generation", 0)), len(self.index))

    def _build(self) -> _Matrix:
        key = self._state_key()
        with self._lock:
            if self._matrix is not None and self._matrix.key == key:
                return self._matrix
            ids = list(self.index.ids)
            docs = self.index.documents(ids)
            tokenize = self.index.tokenizer
            vocab: dict[str, int] = {}
            rows: list[int] = []
            cols: list[int] = []
            vals: list[float] = []
            for r, doc in enumerate(docs):
                for term, tf in Counter(tokenize(doc.page_content)).items():
                    rows.append(r)
                    cols.append(vocab.setdefault(term, len(vocab)))
                    vals.append(1.0 + math.log(tf))
            n = len(docs)
            tf_matrix = sparse.csr_matrix(
                (np.asarray(vals), (np.asarray(rows), np.asarray(cols))),
                shape=(n, len(vocab)),
                dtype=np.float64,
            )
            df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab))
            idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
            weighted = tf_matrix.multiply(idf[None, :]).tocsr()
            norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            unit = sparse.diags(1.0 / norms) @ weighted
            self._matrix = _Matrix(
                key=key,
                ids=ids,
                slot={i: s for s, i in enumerate(ids)},
                metadata=[d.metadata for d in docs],
                vocab=vocab,
                idf=idf,
                csc=sparse.csc_matrix(unit),
            )
            return self._matrix

    def _query(self, m: _Matrix, query: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        counts = Counter(t for t in self.index.tokenizer(query) if t in m.vocab)
        cols = np.array([m.vocab[t] for t in counts], dtype=np.int64)
        w = np.array([(1.0 + math.log(c)) for c in counts.values()], dtype=np.float64)
        w = w * m.idf[cols] if cols.size else w
        norm = float(np.linalg.norm(w))
        return cols, (w / norm if norm > 0 else w)

    def _scores(self, m: _Matrix, query: str) -> NDArray[np.float64]:
        cols, w = self._query(m, query)
        if cols.size == 0:
            return np.zeros(len(m.ids))
        return np.asarray(m.csc[:, cols] @ w, dtype=np.float64).ravel()

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Top ``k`` documents by TF-IDF cosine (only those sharing a term with the query)."""
        from langchain_fusion.filters import filter_mask

        m = self._build()
        scores = self._scores(m, query)
        eligible = np.where(scores > 0, scores, -np.inf)
        if filter is not None:
            eligible[~filter_mask(m.metadata, filter)] = -np.inf
        n = eligible.shape[0]
        if n == 0 or k <= 0:
            top = np.empty(0, dtype=np.intp)
        else:
            part = np.argpartition(-eligible, k - 1)[:k] if k < n else np.arange(n)
            top = part[np.argsort(-eligible[part], kind="stable")]
            top = top[np.isfinite(eligible[top])]

        def id_scorer(other: Sequence[str]) -> NDArray[np.float64]:
            out = np.full(len(other), np.nan)
            for i, doc_id in enumerate(other):
                s = m.slot.get(doc_id)
                if s is not None:
                    out[i] = scores[s]
            return out

        return Candidates(
            ids=[m.ids[i] for i in top],
            scores=scores[top].astype(np.float64),
            loader=self.index._documents_or_none,
            id_scorer=id_scorer,
        )

    def __repr__(self) -> str:
        return f"TfidfSource({len(self.index)} documents)"


def tfidf_fusion(
    index: HybridIndex,
    *,
    weights: Sequence[float] = (1.0, 1.2, 1.0),
    method: str = "rrf",
    **kwargs: Any,
) -> FusionRetriever:
    """Build the dense + BM25 + TF-IDF weighted-RRF pipeline over ``index`` in one call.

    Args:
        index: The documents (dense and BM25 sides are the index's, TF-IDF is built from it).
        weights: Weights of ``dense``, ``bm25`` and ``tfidf`` (default 1.0, 1.2, 1.0).
        method: Fusion method (default ``"rrf"``).
        **kwargs: Other `FusionRetriever` options (``k``, ``rrf_k``, ``reranker``...).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["red apples", "green pears"],
        ...     DeterministicFakeEmbedding(size=8))
        >>> r = tfidf_fusion(index, k=1)
        >>> r.names, r.invoke("apples")[0].page_content
        (['dense', 'bm25', 'tfidf'], 'red apples')

    """
    from langchain_fusion.retriever import FusionRetriever
    from langchain_fusion.sources import HybridDenseSource, HybridKeywordSource

    kwargs.setdefault("names", ["dense", "bm25", "tfidf"])
    return FusionRetriever(
        sources=[HybridDenseSource(index), HybridKeywordSource(index), TfidfSource(index)],
        index=index,
        weights=list(weights),
        method=method,
        **kwargs,
    )
