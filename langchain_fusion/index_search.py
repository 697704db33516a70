"""``HybridIndex``'s ``VectorStore`` searches: similarity (with scores, by vector), MMR, BM25.

A mixin of [`HybridIndex`][langchain_fusion.HybridIndex] (split out of ``index.py`` to keep
files small); every method reads the index's
[`Collection`][langchain_fusion.collection.Collection] under its read lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.collection import Collection, check_k
from langchain_fusion.filters import Filter
from langchain_fusion.index_input import reject_kwargs

__all__ = ["VectorStoreSearches"]


class VectorStoreSearches:
    """The ``VectorStore`` search methods of ``HybridIndex`` (a mixin; see that class)."""

    _collection: Collection

    def embed_query(self, query: str) -> NDArray[np.float32]:
        """Embed a query (implemented by ``HybridIndex``)."""
        raise NotImplementedError

    def _as_query(self, vector: ArrayLike, name: str = "query_vector") -> NDArray[np.float32]:
        raise NotImplementedError

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Return the ``k`` documents most similar to ``query`` (cosine similarity).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                metadatas=[{"n": 1}, {"n": 2}])
            >>> [d.page_content for d in index.similarity_search("b", k=1)]
            ['b']
            >>> [d.page_content for d in index.similarity_search("b", k=1, filter={"n": 1})]
            ['a']

        """
        reject_kwargs("similarity_search", kwargs)
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like [`similarity_search`][], with the cosine similarity (higher is better).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8))
            >>> doc, score = index.similarity_search_with_score("a", k=1)[0]
            >>> doc.page_content, round(score, 4)
            ('a', 1.0)

        """
        reject_kwargs("similarity_search_with_score", kwargs)
        k = check_k(k)
        return self.similarity_search_with_score_by_vector(self.embed_query(query), k, filter)

    def similarity_search_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Return the ``k`` documents most similar to an embedding vector.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> index.similarity_search_by_vector(emb.embed_query("b"), k=1)[0].page_content
            'b'

        """
        reject_kwargs("similarity_search_by_vector", kwargs)
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search_with_score_by_vector(
        self, embedding: ArrayLike, k: int = 4, filter: Filter | None = None
    ) -> list[tuple[Document, float]]:
        """Documents and cosine similarities for an embedding vector, best first.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> len(index.similarity_search_with_score_by_vector(emb.embed_query("b"), k=5))
            2

        """
        k = check_k(k)
        query = self._as_query(embedding)
        return self._top_documents(lambda: self._collection.dense_top(query[None, :], k, filter)[0])

    @staticmethod
    def _cosine_to_relevance(similarity: float) -> float:
        return (1.0 + similarity) / 2.0

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from cosine similarity in [-1, 1]: ``(1 + cosine) / 2``.

        LangChain's own ``_cosine_relevance_score_fn`` expects a *distance* (``1 - distance``);
        this store returns similarities, which the affine map keeps in [0, 1] (a cosine of 0,
        "unrelated", is 0.5).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> fn = HybridIndex(DeterministicFakeEmbedding(size=4))._select_relevance_score_fn()
            >>> fn(1.0), fn(0.0), fn(-1.0)
            (1.0, 0.5, 0.0)

        """
        return self._cosine_to_relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: maximal marginal relevance over the ``fetch_k`` nearest documents.

        Args:
            query: The query.
            k: Number of documents to return.
            fetch_k: Candidates fetched first (at least ``k`` are fetched).
            lambda_mult: 1 = pure relevance, 0 = maximal diversity.
            filter: Metadata filter, applied before fetching.
            **kwargs: Not accepted.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["a", "b", "c"], DeterministicFakeEmbedding(size=8))
            >>> len(index.max_marginal_relevance_search("a", k=2, fetch_k=3))
            2

        """
        reject_kwargs("max_marginal_relevance_search", kwargs)
        return self.max_marginal_relevance_search_by_vector(
            self.embed_query(query), k, fetch_k, lambda_mult, filter=filter
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: ArrayLike,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """[`max_marginal_relevance_search`][] for an embedding vector (stored vectors used).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> index.max_marginal_relevance_search_by_vector(emb.embed_query("a"), k=1)[0]
            Document(id='...', metadata={}, page_content='a')

        """
        reject_kwargs("max_marginal_relevance_search_by_vector", kwargs)
        k = check_k(k)
        fetch_k = max(check_k(fetch_k, "fetch_k"), k)
        if isinstance(lambda_mult, bool) or not 0.0 <= float(lambda_mult) <= 1.0:
            raise ValueError(f"lambda_mult must be in [0, 1], got {lambda_mult!r}")
        query = self._as_query(embedding, "embedding")
        with self._collection.lock.read():
            slots, _ = self._collection.dense_top(query[None, :], fetch_k, filter)[0]
            if not slots.size or self._collection.dense is None:
                return []
            stored = self._collection.dense.get_vectors(slots).astype(np.float64)
            chosen = maximal_marginal_relevance(
                query.astype(np.float64), stored.tolist(), lambda_mult=float(lambda_mult), k=k
            )
            return [self._collection.document(int(slots[i])) for i in chosen]

    def keyword_search(
        self, query: str, k: int = 4, filter: Filter | None = None
    ) -> list[tuple[Document, float]]:
        """Return the ``k`` best documents by BM25 with their scores (score > 0 only).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["red apples", "green pears"],
            ...                                DeterministicFakeEmbedding(size=8))
            >>> [(d.page_content, round(s, 3)) for d, s in index.keyword_search("pears")]
            [('green pears', 0.277)]

        """
        k = check_k(k)
        return self._top_documents(lambda: self._collection.keyword_top(query, k, filter))

    def _top_documents(
        self, top: Callable[[], tuple[NDArray[np.int64], NDArray[np.float64]]]
    ) -> list[tuple[Document, float]]:
        """Run ``top`` under the read lock; its slots as documents, with their scores."""
        with self._collection.lock.read():
            slots, scores = top()
            return [
                (self._collection.document(s), float(sc))
                for s, sc in zip(slots.tolist(), scores.tolist(), strict=True)
            ]
