"""``BM25Vectorizer``: the ``rank_bm25``-compatible view of ``BM25Retriever.vectorizer``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

from langchain_fusion.collection import Collection
from langchain_fusion.lexical import Tokenizer

__all__ = ["BM25Vectorizer"]


class BM25Vectorizer:
    """A read-only view with the fields of ``rank_bm25``'s ``BM25Okapi``, for compatibility.

    ``langchain_community``'s retriever exposes its ``rank_bm25`` model as ``.vectorizer``;
    code and tests that read it work with ``BM25Retriever.vectorizer``. The view reads the live
    retriever (it follows adds and deletes):

    * ``doc_len``: the number of words of each document, as the tokenizer splits it *before*
      stopwords are dropped and words stemmed (for plain text, the count ``rank_bm25`` reports
      after ``str.split``). The index's own length normalisation counts the indexed terms.
    * ``corpus_size``, ``avgdl`` (mean of ``doc_len``), ``k1``, ``b``, ``delta``.
    * ``epsilon``: the ``bm25_params`` value (default 0.25). In ``rank_bm25``'s Okapi variant
      it floors *negative* IDFs at ``epsilon * mean IDF``. This package's IDFs are never
      negative (``lucene``, also used for ``bm25_variant="okapi"``: always > 0; ``robertson``:
      clipped at 0, as in bm25s), so the floor never applies: the value is accepted, stored,
      saved and reported, and changes no score.
    * ``get_scores(words)``: BM25 scores of every document (``docs`` order) for a query given
      as a list of words (joined with spaces and tokenized like any query).

    Example:
        >>> from langchain_fusion import BM25Retriever
        >>> r = BM25Retriever.from_texts(["I have a pen.", "Do you have a pen?"])
        >>> r.vectorizer.doc_len, r.vectorizer.corpus_size
        ([4, 5], 2)
        >>> r.vectorizer.get_scores(["pen"]).round(3).tolist()
        [0.073, 0.073]

    """

    def __init__(self, collection: Collection, docs: list[Document], epsilon: float) -> None:
        self._collection = collection
        self._docs = docs  # the retriever's live list of documents
        self._epsilon = epsilon

    @property
    def doc_len(self) -> list[int]:
        """Words per document (before stopwords and stemming), in ``docs`` order."""
        config = dict(self._collection.bm25.tokenizer.to_config())
        config.update(stopwords=None, stemmer=None)
        words = Tokenizer.from_config(config)
        with self._collection.lock.read():
            return [len(words(doc.page_content)) for doc in self._docs]

    @property
    def corpus_size(self) -> int:
        """Number of documents."""
        return len(self._docs)

    @property
    def avgdl(self) -> float:
        """Mean of ``doc_len`` (0.0 when empty)."""
        lengths = self.doc_len
        return float(np.mean(lengths)) if lengths else 0.0

    @property
    def epsilon(self) -> float:
        """The ``epsilon`` of ``bm25_params`` (no effect on scores here, see the class)."""
        return self._epsilon

    @property
    def k1(self) -> float:
        """BM25 ``k1``."""
        return self._collection.bm25.k1

    @property
    def b(self) -> float:
        """BM25 ``b``."""
        return self._collection.bm25.b

    @property
    def delta(self) -> float:
        """BM25L/BM25+ ``delta``."""
        return self._collection.bm25.delta

    def get_scores(self, query: Sequence[str]) -> NDArray[np.float64]:
        """Return the scores of every document (``docs`` order) for a tokenized query."""
        if isinstance(query, str):
            raise TypeError("query must be a list of words, as rank_bm25 takes it")
        collection = self._collection
        with collection.lock.read():
            slots = np.flatnonzero(collection.docs.live_mask)
            if not slots.size:
                return np.zeros(0, dtype=np.float64)
            return np.asarray(collection.bm25.score(" ".join(query), slots), dtype=np.float64)
