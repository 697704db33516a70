"""The storage back-end seam: what a store must provide for hybrid retrieval.

Everything above the storage layer ([`HybridIndex`][langchain_fusion.HybridIndex], the
fusion retriever's sources, tuning) needs exactly the operations below from the place where
documents live. The in-memory [`Collection`][langchain_fusion.collection.Collection] (FAISS +
numpy BM25 + a columnar docstore) implements them; a database back end (PostgreSQL with
pgvector and a full-text or BM25 index, for example) implements the same [`Backend`][]
protocol and plugs in under the same faces.

The contract, side by side with what the retriever does with it:

* **Candidate search per side**: [`Backend.search_dense`][] (cosine similarity, best first)
  and [`Backend.search_keyword`][] (BM25, best first, only documents sharing a query term, so
  every returned score is ``> 0``). A ``filter`` is applied *before* the top-k cut: a filtered
  search returns ``k`` hits whenever ``k`` matching documents exist (a database puts it in the
  ``WHERE`` clause, never post-filters a top-k list).
* **Complete scoring**: [`Backend.score_dense`][] and [`Backend.score_keyword`][] score given
  ids exactly (the candidates one side found but the other did not), so fusion compares every
  candidate on both scales. Unknown ids score NaN; a document without any query term has a
  keyword score of exactly 0.0.
* **Joint search** (optional, [`SupportsJointSearch`][]): both sides' candidates *and* the
  complete scores of their union in one call. For a database that is one round trip instead
  of four. [`joint_search`][] calls it when a back end has it and composes it from the four
  calls above otherwise, so callers never branch.
* **Writes**: [`Backend.add`][] (with upsert), [`Backend.delete`][] (by ids and/or filter),
  [`Backend.get_by_ids`][]. A write is atomic: readers see all of it or none of it, and a
  failed write changes nothing.
* **Statistics**: [`Backend.stats`][] -- the number of documents, the BM25 parameters and
  tokenizer configuration (so two back ends can be checked to score alike) and the identity
  of the embedding model whose vectors are stored (vectors of different models are not
  comparable, so a face refuses to query with another model).

Scores are "higher is better" everywhere. BM25 statistics (N, document frequencies, mean
length) must be those of the *live* documents, as if the index had been built from scratch
(deletes and upserts included); a back end that cannot do that exactly documents its
deviation.

Filters are [`langchain_fusion.filters.Filter`][] values: a dict in the Mongo-like syntax or a
callable ``metadata -> bool``. A back end that cannot evaluate callables (a database) raises
``TypeError`` for them with a message saying to use a dict filter.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_fusion import HybridIndex
    >>> index = HybridIndex.from_texts(["red apples", "green pears"],
    ...                                DeterministicFakeEmbedding(size=8), ids=["a", "p"])
    >>> backend = index.collection
    >>> isinstance(backend, Backend)
    True
    >>> result = joint_search(backend, "pears", index.embed_query("pears"), 2, 2)
    >>> result.ids, result.keyword_scores.round(3).tolist()
    (['p', 'a'], [0.277, 0.0])

"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from langchain_core.documents import Document
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.filters import Filter

__all__ = [
    "Backend",
    "BackendStats",
    "Hits",
    "JointHits",
    "KeywordQuery",
    "SupportsJointSearch",
    "combine_hits",
    "joint_search",
    "union_ids",
]

KeywordQuery = str | Mapping[str, float]
"""A keyword query: a text (tokenized by the back end's tokenizer) or ``{term: weight}`` over
index terms (an expanded query, e.g. RM3 feedback)."""


class Hits(NamedTuple):
    """One side's candidates: ids and their scores, best first (same length).

    A ``NamedTuple``, so ``ids, scores = backend.search_dense(...)`` works.

    Example:
        >>> hits = Hits(["a", "b"], np.array([0.9, 0.4]))
        >>> ids, scores = hits
        >>> ids, len(hits.scores)
        (['a', 'b'], 2)

    """

    ids: list[str]
    """Document ids, best first."""
    scores: NDArray[np.float64]
    """Their scores (cosine similarity for the dense side, BM25 for the keyword side)."""


@dataclass(frozen=True)
class JointHits:
    """Both sides' candidates and the complete scores of their union, from one call.

    ``ids`` is the union of ``dense.ids`` and ``keyword.ids`` (dense order first, then the
    keyword-only ids in keyword order); ``dense_scores[i]`` and ``keyword_scores[i]`` are the
    exact scores of ``ids[i]`` on each side (complete scoring), or ``None`` when the call asked
    for no complete scores.

    Example:
        >>> j = JointHits(Hits(["a"], np.array([0.9])), Hits(["b"], np.array([1.2])),
        ...               ["a", "b"], np.array([0.9, 0.1]), np.array([0.0, 1.2]))
        >>> j.ids, j.keyword_scores.tolist()
        (['a', 'b'], [0.0, 1.2])

    """

    dense: Hits
    """The dense side's top candidates."""
    keyword: Hits
    """The keyword side's top candidates."""
    ids: list[str] = field(default_factory=list)
    """The union of both candidate lists."""
    dense_scores: NDArray[np.float64] | None = None
    """Exact cosine similarity of every id in ``ids`` (NaN: not in the store)."""
    keyword_scores: NDArray[np.float64] | None = None
    """Exact BM25 score of every id in ``ids`` (0.0: no query term; NaN: not in the store)."""


@dataclass(frozen=True)
class BackendStats:
    """What a back end holds and how it scores (see [`Backend.stats`][]).

    Example:
        >>> BackendStats(n_docs=0, bm25={"k1": 1.5, "b": 0.75, "method": "lucene",
        ...              "delta": 0.5}, tokenizer={}, embedding={"model": None}).n_docs
        0

    """

    n_docs: int
    """Number of live documents."""
    bm25: Mapping[str, Any]
    """BM25 parameters: ``k1``, ``b``, ``method``, ``delta``."""
    tokenizer: Mapping[str, Any]
    """The keyword tokenizer's configuration (``Tokenizer.to_config()``: lowercase, stopwords,
    stemmer, token pattern, Unicode normalization)."""
    embedding: Mapping[str, Any]
    """Identity of the embedding model of the stored vectors: ``class``, ``model``, ``dim``
    (``None`` where unknown)."""
    dim: int | None = None
    """Dimension of the stored vectors (``None`` while empty)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Back-end specific facts (index kinds, tombstones, table names...)."""


@runtime_checkable
class Backend(Protocol):
    """The operations a storage back end provides to the hybrid-retrieval faces.

    Implementations must be safe for concurrent readers with writers (readers see a write
    entirely or not at all). All scores are higher-is-better; ids are ``str``.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["x"], DeterministicFakeEmbedding(size=4), ids=["1"])
        >>> isinstance(index.collection, Backend), index.collection.stats().n_docs
        (True, 1)

    """

    def search_dense(
        self, query_vector: ArrayLike, k: int, *, filter: Filter | None = None
    ) -> Hits:
        """Top-``k`` documents by cosine similarity to ``query_vector``, best first.

        Args:
            query_vector: A 1-D vector of the stored dimension (the query's embedding).
            k: Number of candidates (>= 1); fewer when fewer documents (match the filter).
            filter: Applied before the top-k cut.

        Raises:
            ValueError: Wrong dimension, NaN or infinite values, ``k < 1``.
            TypeError: A filter the back end cannot evaluate (e.g. a callable in a database).

        """
        ...

    def search_keyword(self, query: KeywordQuery, k: int, *, filter: Filter | None = None) -> Hits:
        """Top-``k`` documents by BM25, best first; only documents with a score > 0.

        Args:
            query: A text or ``{term: weight}`` over index terms.
            k: Number of candidates (>= 1).
            filter: Applied before the top-k cut.

        """
        ...

    def score_dense(self, query_vector: ArrayLike, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact cosine similarity of the given documents (complete scoring).

        Returns:
            One score per id, in order; NaN for an id that is not in the store.

        """
        ...

    def score_keyword(self, query: KeywordQuery, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact BM25 scores of the given documents (complete scoring).

        Returns:
            One score per id; 0.0 for a document without any query term, NaN for an unknown id.

        """
        ...

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
        vectors: NDArray[np.float32] | None,
        *,
        upsert: bool = True,
    ) -> list[str]:
        """Store documents, atomically.

        Args:
            ids: Distinct ids.
            texts: One text per id (tokenized by the back end for BM25).
            metadatas: One metadata mapping (or ``None``) per id: str keys, JSON values.
            vectors: ``(len(ids), dim)`` float32 embeddings (the face embeds; the back end only
                stores), or ``None`` for a keyword-only store.
            upsert: ``True`` replaces existing ids (the old version disappears from both
                sides); ``False`` raises ``ValueError`` for an existing id and changes nothing.

        Returns:
            The ids, in order.

        """
        ...

    def delete(self, ids: Sequence[str] | None = None, *, filter: Filter | None = None) -> bool:
        """Delete by ids and/or metadata filter (``filter={}``: everything).

        Returns:
            ``True`` if at least one document was deleted. Unknown ids are ignored.

        """
        ...

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents (``id`` set, metadata copied) in the order of ``ids``; unknown ids skipped."""
        ...

    def stats(self) -> BackendStats:
        """Return the number of documents, BM25 parameters, tokenizer config, model identity."""
        ...


@runtime_checkable
class SupportsJointSearch(Protocol):
    """A back end that answers both sides and complete scoring in one call (one round trip).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex(DeterministicFakeEmbedding(size=4))
        >>> isinstance(index.collection, SupportsJointSearch)
        True

    """

    def search_joint(
        self,
        query: KeywordQuery,
        query_vector: ArrayLike,
        k_dense: int,
        k_keyword: int,
        *,
        filter: Filter | None = None,
        complete: bool = True,
    ) -> JointHits:
        """Both sides' top candidates and, with ``complete``, both exact scores of the union.

        Must return exactly what [`joint_search`][]'s composition of the four per-side calls
        returns, taken from one consistent state of the store (no write in between).
        """
        ...


def joint_search(
    backend: Backend,
    query: KeywordQuery,
    query_vector: ArrayLike,
    k_dense: int,
    k_keyword: int,
    *,
    filter: Filter | None = None,
    complete: bool = True,
) -> JointHits:
    """Run a joint search: the back end's own ``search_joint`` if it has one, else four calls.

    Args:
        backend: Any [`Backend`][].
        query: The keyword query.
        query_vector: The query's embedding.
        k_dense: Dense candidates.
        k_keyword: Keyword candidates.
        filter: Applied to both sides before the top-k cuts.
        complete: Also score the union of the candidates exactly on both sides.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["a b", "c d"], DeterministicFakeEmbedding(size=4),
        ...                                ids=["1", "2"])
        >>> joint_search(index.collection, "d", index.embed_query("d"), 1, 1).keyword.ids
        ['2']

    """
    if isinstance(backend, SupportsJointSearch):
        return backend.search_joint(
            query, query_vector, k_dense, k_keyword, filter=filter, complete=complete
        )
    return combine_hits(
        backend.search_dense(query_vector, k_dense, filter=filter),
        backend.search_keyword(query, k_keyword, filter=filter),
        lambda ids: backend.score_dense(query_vector, ids),
        lambda ids: backend.score_keyword(query, ids),
        complete=complete,
    )


def combine_hits(
    dense: Hits,
    keyword: Hits,
    score_dense: Callable[[list[str]], NDArray[np.float64]],
    score_keyword: Callable[[list[str]], NDArray[np.float64]],
    *,
    complete: bool = True,
) -> JointHits:
    """Join both sides' candidates: their union and, with ``complete``, its exact scores.

    The shared second half of a joint search (see [`joint_search`][]): a back end finds each
    side's candidates its own way, then passes the scorers of ids on each side.

    Args:
        dense: The dense side's candidates.
        keyword: The keyword side's candidates.
        score_dense: Exact dense scores of the given ids (called only with ``complete``).
        score_keyword: Exact keyword scores of the given ids (called only with ``complete``).
        complete: Also score the union of the candidates on both sides.

    Example:
        >>> dense, keyword = Hits(["a"], np.array([0.9])), Hits(["b"], np.array([1.2]))
        >>> zeros = lambda ids: np.zeros(len(ids))
        >>> j = combine_hits(dense, keyword, zeros, zeros)
        >>> j.ids, j.keyword_scores.tolist()
        (['a', 'b'], [0.0, 0.0])
        >>> combine_hits(dense, keyword, zeros, zeros, complete=False).keyword_scores is None
        True

    """
    ids = union_ids(dense.ids, keyword.ids)
    if not complete:
        return JointHits(dense, keyword, ids)
    return JointHits(dense, keyword, ids, score_dense(ids), score_keyword(ids))


def union_ids(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """Return the ids of ``first``, then those of ``second`` not in ``first`` (order kept).

    Example:
        >>> union_ids(["a", "b"], ["b", "c"])
        ['a', 'b', 'c']

    """
    seen = set(first)
    return [*first, *(i for i in second if i not in seen)]
