"""Adapters that turn LangChain retrievers and vector stores into scored candidate lists.

A [`Source`][langchain_fusion.sources.Source] is what
[`FusionRetriever`][langchain_fusion.FusionRetriever] fuses. It answers two questions:

* ``search(query, k, filter)``: the top ``k`` candidates, best first, with raw scores
  (higher is better) or no scores at all for rank-only retrievers;
* through the returned ``Candidates.scorer``: the raw scores of *other* documents for the same
  query ("complete candidate scoring"), so that a document found by only one retriever is
  judged by the other retriever's real score instead of a guess.

Adapters exist for the package's own [`HybridIndex`][langchain_fusion.HybridIndex] (fast path on
ids), the built-in [`BM25Retriever`][langchain_fusion.BM25Retriever], ``langchain_community``'s
``FAISS`` (exact cosine scores, rebuilt from the stored vectors) and ``BM25Retriever``
(rank-bm25 scores), any LangChain ``VectorStore`` (relevance scores) and any ``BaseRetriever``
(ranks only). ``langchain_community`` is never imported here: its objects are recognised by
duck typing.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from numpy.typing import NDArray

from langchain_fusion.bm25_retriever import BM25Retriever
from langchain_fusion.feedback import rocchio
from langchain_fusion.filters import filter_mask
from langchain_fusion.index import HybridIndex

__all__ = [
    "Candidates",
    "CommunityBM25Source",
    "CommunityFAISSSource",
    "CommunitySunsetWarning",
    "HybridDenseSource",
    "HybridKeywordSource",
    "OwnBM25Source",
    "RetrieverSource",
    "Source",
    "VectorStoreSource",
    "accepts_call_option",
    "content_key",
    "to_source",
]

Scorer = Callable[[Sequence[Document]], NDArray[np.float64]]
"""Scores documents for the query a search was made with; NaN where it cannot."""


def accepts_call_option(retriever: object, name: str) -> bool:
    """Whether ``retriever`` takes the keyword ``name`` per call (``retriever.invoke(q, k=3)``).

    A retriever declares the keywords its ``invoke`` understands in a ``call_options`` class
    attribute ([`FusionRetriever`][langchain_fusion.FusionRetriever] takes ``k`` and
    ``filter``); wrappers (the agent tool, the QA chain, an outer ``FusionRetriever``) pass
    ``k`` or ``filter`` only to retrievers that declare them.

    Example:
        >>> from langchain_fusion import BM25Retriever, FusionRetriever
        >>> accepts_call_option(FusionRetriever, "k"), accepts_call_option(BM25Retriever, "k")
        (True, False)

    """
    owner = retriever if isinstance(retriever, type) else type(retriever)
    options: object = getattr(owner, "call_options", None)
    return isinstance(options, frozenset) and name in options


def content_key(text: str) -> str:
    """Return the content-hash identity of a text (used when a document has no id).

    Example:
        >>> content_key("hello") == content_key("hello")
        True
        >>> content_key("hello")[:8]
        'sha1:aaf'

    """
    return "sha1:" + hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class Candidates:
    """One retriever's answer to one query.

    Attributes:
        documents: Documents, best first. Sources backed by an index of the package may leave
            this empty and fill ``ids`` instead; documents are then loaded only for the final
            top-k through ``loader``.
        scores: Raw scores aligned with ``documents``/``ids`` (higher is better), or ``None``
            for a retriever that only ranks.
        ids: Document ids aligned with ``scores`` (index-backed sources).
        loader: Turns ids into documents, None for an id deleted since the search
            (index-backed sources).
        scorer: Complete candidate scoring for the same query, or ``None``.
        id_scorer: Like ``scorer`` but on ids (index-backed sources; avoids building documents).
        query_vector: The query embedding the source searched with, if it embeds queries
            (reused by `Source.feedback_search` instead of embedding the query again).
        derived_ids: Per document, whether its id was made from its content by the source
            (not given by the user); such documents match other retrievers' by text, as
            id-less ones do.
        query_note: What the source did to the query (e.g. synonym expansion), shown in
            ``metadata["fusion"]["query"]`` and by ``explain``; ``None`` when nothing.

    Example:
        >>> c = Candidates(documents=[Document("a"), Document("b")], scores=np.array([2.0, 1.0]))
        >>> len(c)
        2

    """

    documents: list[Document] = field(default_factory=list)
    scores: NDArray[np.float64] | None = None
    ids: list[str] | None = None
    loader: Callable[[Sequence[str]], list[Document | None]] | None = None
    scorer: Scorer | None = None
    id_scorer: Callable[[Sequence[str]], NDArray[np.float64]] | None = None
    query_vector: NDArray[np.float32] | None = None
    derived_ids: list[bool] | None = None
    query_note: str | None = None

    def __len__(self) -> int:
        return len(self.ids) if self.ids is not None else len(self.documents)


class Source(ABC):
    """A retriever as seen by the fusion: scored candidates plus optional complete scoring.

    Subclass it to plug any search engine into
    [`FusionRetriever`][langchain_fusion.FusionRetriever].

    Example:
        >>> class Fixed(Source):
        ...     kind = "fixed"
        ...     def search(self, query, k, *, filter=None):
        ...         docs = [Document("alpha"), Document("beta")][:k]
        ...         return Candidates(documents=docs, scores=np.array([1.0, 0.5])[:k])
        >>> Fixed().search("q", 1).documents[0].page_content
        'alpha'

    """

    kind: str = "retriever"
    """Short default name used in score breakdowns (``"dense"``, ``"bm25"``...)."""

    supports_filter: bool = False
    """Whether ``filter`` is applied by this source (before its top-k cut)."""

    supports_feedback: bool = False
    """Whether `feedback_search` can expand a query with feedback documents."""

    max_k: int | None = None
    """At most this many candidates per search, whatever ``fetch_k`` asks (``None``: no cap).

    Set from a wrapped retriever's own ``k`` when its user set it (``search_kwargs={"k": 4}``,
    ``BM25Retriever.from_documents(docs, k=4)``), so that it contributes what it would return
    alone, as in ``EnsembleRetriever``. Left unset, ``FusionRetriever.fetch_k`` sets the depth.
    """

    def depth(self, k: int) -> int:
        """Return how many candidates to give when ``k`` are asked: ``k``, capped by `max_k`."""
        cap = self._own_k()
        return k if cap is None else min(k, cap)

    def _own_k(self) -> int | None:
        return self.max_k

    @abstractmethod
    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Return the top ``k`` candidates for ``query``, best first."""

    def feedback_search(
        self,
        query: str,
        feedback: Sequence[Document],
        k: int,
        *,
        weight: float,
        n_terms: int,
        filter: Any = None,
        first: Candidates | None = None,
    ) -> Candidates:
        """Search again with ``query`` expanded by ``feedback`` (documents assumed relevant).

        ``first`` is this source's first-round answer to the same query (to reuse its work,
        e.g. the query embedding). Only sources with ``supports_feedback = True`` implement it;
        see [`langchain_fusion.feedback`][].
        """
        raise NotImplementedError(f"{type(self).__name__} does not support query feedback")

    async def asearch(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Async variant of ``search``; by default runs ``search`` in a worker thread."""
        return await asyncio.to_thread(self.search, query, k, filter=filter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _documents_key_map(documents: Sequence[Document]) -> tuple[dict[str, int], dict[str, int]]:
    by_id: dict[str, int] = {}
    by_content: dict[str, int] = {}
    for i, doc in enumerate(documents):
        if doc.id is not None:
            by_id.setdefault(str(doc.id), i)
        by_content.setdefault(content_key(doc.page_content), i)
    return by_id, by_content


def _lookup(doc: Document, by_id: Mapping[str, int], by_content: Mapping[str, int]) -> int | None:
    if doc.id is not None and str(doc.id) in by_id:
        return by_id[str(doc.id)]
    return by_content.get(content_key(doc.page_content))


class _PositionLookup:
    """Maps documents to positions in a corpus by id, else by content.

    Rebuilt when the corpus container is replaced (FAISS's ``delete`` builds a new position map)
    or changes size (``add``), so a delete followed by an add never reuses stale positions. The
    container is held, so its identity cannot be reused by another object.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: object = None
        self._size = -1
        self._maps: tuple[dict[str, int], dict[str, int]] = ({}, {})

    def get(
        self,
        owner: Sized,
        build: Callable[[], tuple[dict[str, int], dict[str, int]]],
    ) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            if owner is not self._owner or len(owner) != self._size:
                self._maps = build()
                self._owner, self._size = owner, len(owner)
            return self._maps


# --------------------------------------------------------------------------------------------
# Sources over the package's own engines
# --------------------------------------------------------------------------------------------


def _checked_filter(filter: Any) -> Any:
    """``filter``, after refusing one nested too deep (before an index turns it into a key)."""
    from langchain_fusion.filters import check_filter

    check_filter(filter)
    return filter


def _indexed_ids(index: HybridIndex, documents: Sequence[Document]) -> list[str]:
    """Ids of the documents that are in ``index`` (feedback from other sources may not be)."""
    return [str(d.id) for d in documents if d.id is not None and str(d.id) in index]


class HybridDenseSource(Source):
    """Dense side of a [`HybridIndex`][langchain_fusion.HybridIndex]: cosine scores, rescoring.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["a cat", "a dog"], DeterministicFakeEmbedding(size=16))
        >>> len(HybridDenseSource(index).search("cat", 2))
        2

    """

    kind = "dense"
    supports_filter = True

    def __init__(self, index: HybridIndex) -> None:
        self.index = index

    supports_feedback = True

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search the dense index; the query is embedded once and reused for rescoring."""
        return self._search_vector(self.index.embed_query(query), k, filter)

    def feedback_search(
        self,
        query: str,
        feedback: Sequence[Document],
        k: int,
        *,
        weight: float,
        n_terms: int,
        filter: Any = None,
        first: Candidates | None = None,
    ) -> Candidates:
        """Search with the query vector moved towards the feedback documents (Rocchio)."""
        if first is not None and first.query_vector is not None:
            vector = first.query_vector
        else:
            vector = self.index.embed_query(query)
        ids = _indexed_ids(self.index, feedback)
        if ids:
            vector = rocchio(vector, self.index.get_vectors(ids), weight)
        return self._search_vector(vector, k, filter)

    def _search_vector(self, vector: NDArray[np.float32], k: int, filter: Any) -> Candidates:
        flt = _checked_filter(filter)
        ids, scores = self.index.search_dense(vector, self.depth(k), filter=flt)
        return Candidates(
            ids=ids,
            scores=np.asarray(scores, dtype=np.float64),
            loader=self.index._documents_or_none,
            id_scorer=lambda other: self.index.score_dense(vector, other),
            query_vector=vector,
        )

    def __repr__(self) -> str:
        return f"HybridDenseSource({len(self.index)} documents)"


class HybridKeywordSource(Source):
    """BM25 side of a [`HybridIndex`][langchain_fusion.HybridIndex].

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["a cat", "a dog"], DeterministicFakeEmbedding(size=16))
        >>> HybridKeywordSource(index).search("cat", 2).ids
        ['...']

    """

    kind = "bm25"
    supports_filter = True

    def __init__(self, index: HybridIndex) -> None:
        self.index = index

    supports_feedback = True

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search the BM25 index."""
        return self._search_terms(query, k, filter)

    def feedback_search(
        self,
        query: str,
        feedback: Sequence[Document],
        k: int,
        *,
        weight: float,
        n_terms: int,
        filter: Any = None,
        first: Candidates | None = None,
    ) -> Candidates:
        """Search with the query expanded by the feedback documents' terms (RM3)."""
        ids = _indexed_ids(self.index, feedback)
        if not ids:
            return self.search(query, k, filter=filter)
        terms = self.index.expand_keyword_query(query, ids, n_terms=n_terms, weight=weight)
        return self._search_terms(terms, k, filter)

    def _search_terms(self, query: str | Mapping[str, float], k: int, filter: Any) -> Candidates:
        flt = _checked_filter(filter)
        ids, scores = self.index.search_keyword(query, self.depth(k), filter=flt)
        return Candidates(
            ids=list(ids),
            scores=np.asarray(scores, dtype=np.float64),
            loader=self.index._documents_or_none,
            id_scorer=lambda other: self.index.score_keyword(query, other),
        )

    def __repr__(self) -> str:
        return f"HybridKeywordSource({len(self.index)} documents)"


class OwnBM25Source(Source):
    """The package's [`BM25Retriever`][langchain_fusion.BM25Retriever], with complete scoring.

    Example:
        >>> from langchain_fusion import BM25Retriever
        >>> bm25 = BM25Retriever.from_texts(["the cat sat", "dogs bark"])
        >>> OwnBM25Source(bm25).search("cat", 5).documents[0].page_content
        'the cat sat'

    """

    kind = "bm25"
    supports_filter = True

    def __init__(self, retriever: BM25Retriever) -> None:
        self.retriever = retriever

    def _own_k(self) -> int | None:  # read at each search: the user may set it later
        return _user_k(self.retriever, "k") if self.max_k is None else self.max_k

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search with BM25 scores (at most the retriever's own ``k`` when its user set it)."""
        k = self.depth(k)
        pairs = self.retriever.search_with_scores(query, k=k, filter=_checked_filter(filter))
        docs = [d for d, _ in pairs]
        return Candidates(
            documents=docs,
            scores=np.array([s for _, s in pairs], dtype=np.float64),
            scorer=lambda docs: self.retriever.score_documents(query, docs),
            derived_ids=self.retriever._derived_ids(docs),
        )


# --------------------------------------------------------------------------------------------
# Sources over what LangChain users already have
# --------------------------------------------------------------------------------------------


class CommunitySunsetWarning(FutureWarning):
    """Warns that a ``langchain_community`` object was wrapped: that package is being sunset.

    Example:
        >>> issubclass(CommunitySunsetWarning, FutureWarning)
        True

    """


_warned: set[str] = set()


def _warn_community(what: str, instead: str) -> None:
    if what in _warned:
        return
    _warned.add(what)
    warnings.warn(
        f"wrapping langchain_community's {what}: langchain-community is being sunset. "
        f"It keeps working here; {instead}",
        CommunitySunsetWarning,
        stacklevel=4,
    )


def _is_community_faiss(obj: object) -> bool:
    return (
        type(obj).__name__ == "FAISS"
        and hasattr(obj, "index")
        and hasattr(obj, "index_to_docstore_id")
        and hasattr(obj, "docstore")
    )


def _is_community_bm25(obj: object) -> bool:
    return (
        type(obj).__name__ == "BM25Retriever"
        and hasattr(obj, "vectorizer")
        and hasattr(obj, "preprocess_func")
        and hasattr(obj, "docs")
    )


class VectorStoreSource(Source):
    """Any LangChain ``VectorStore``.

    Uses ``similarity_search_with_relevance_scores`` (higher is better) when the store defines a
    relevance function, else ``similarity_search_with_score`` and ``higher_is_better``. No
    complete scoring: documents the store did not return get no dense score.

    Args:
        vectorstore: The store.
        higher_is_better: Direction of ``similarity_search_with_score`` for stores without a
            relevance function (distances: ``False``).
        search_kwargs: Extra keyword arguments for every search call.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_core.vectorstores import InMemoryVectorStore
        >>> store = InMemoryVectorStore.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8))
        >>> len(VectorStoreSource(store).search("a", 2))
        2

    """

    kind = "dense"
    supports_filter = True

    def __init__(
        self,
        vectorstore: VectorStore,
        *,
        higher_is_better: bool = True,
        search_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.vectorstore = vectorstore
        self.higher_is_better = higher_is_better
        self.search_kwargs = dict(search_kwargs or {})
        try:
            vectorstore._select_relevance_score_fn()
            self._relevance = True
        except NotImplementedError:
            self._relevance = False

    def _kwargs(self, filter: Any) -> dict[str, Any]:
        kwargs = dict(self.search_kwargs)
        if filter is not None:
            preset = kwargs.get("filter")
            if preset is not None and preset != filter:
                raise ValueError(
                    f"the vector store's search_kwargs already filter by {preset!r} and this "
                    f"call filters by {filter!r}; pass one filter that says both"
                )
            kwargs["filter"] = filter
        return kwargs

    def _wrap(self, pairs: Sequence[tuple[Document, float]], flip: bool) -> Candidates:
        scores = np.array([s for _, s in pairs], dtype=np.float64)
        return Candidates(documents=[d for d, _ in pairs], scores=-scores if flip else scores)

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search the store with relevance scores."""
        k = self.depth(k)
        if self._relevance:
            pairs = self.vectorstore.similarity_search_with_relevance_scores(
                query, k=k, **self._kwargs(filter)
            )
            return self._wrap(pairs, flip=False)
        pairs = self.vectorstore.similarity_search_with_score(query, k=k, **self._kwargs(filter))
        return self._wrap(pairs, flip=not self.higher_is_better)

    async def asearch(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Async search through the store's own async API."""
        k = self.depth(k)
        if self._relevance:
            pairs = await self.vectorstore.asimilarity_search_with_relevance_scores(
                query, k=k, **self._kwargs(filter)
            )
            return self._wrap(pairs, flip=False)
        pairs = await self.vectorstore.asimilarity_search_with_score(
            query, k=k, **self._kwargs(filter)
        )
        return self._wrap(pairs, flip=not self.higher_is_better)

    def __repr__(self) -> str:
        return f"VectorStoreSource({type(self.vectorstore).__name__})"


class CommunityFAISSSource(Source):
    """``langchain_community.vectorstores.FAISS`` with exact cosine scores.

    The FAISS wrapper returns L2 distances or inner products depending on how it was built.
    This adapter searches through the wrapper (so its filters keep working), then scores every
    candidate by the cosine between the query embedding and the vector stored in the FAISS
    index. Documents found by another retriever are scored the same way (complete scoring),
    matched by ``Document.id`` or, failing that, by identical text.
    """

    kind = "dense"
    supports_filter = True

    def __init__(self, vectorstore: Any, *, fetch_multiplier: int = 4) -> None:
        if not _is_community_faiss(vectorstore):
            raise TypeError(
                f"vectorstore must be a langchain_community FAISS store, got "
                f"{type(vectorstore).__name__}"
            )
        _warn_community("FAISS", "langchain_fusion.HybridIndex is the built-in replacement.")
        self.vectorstore = vectorstore
        self.fetch_multiplier = fetch_multiplier
        self._positions = _PositionLookup()

    def _position_maps(self) -> tuple[dict[str, int], dict[str, int]]:
        vs = self.vectorstore
        positions = vs.index_to_docstore_id

        def build() -> tuple[dict[str, int], dict[str, int]]:
            id_to_pos = {doc_id: pos for pos, doc_id in positions.items()}
            by_content: dict[str, int] = {}
            for doc_id, pos in id_to_pos.items():
                doc = vs.docstore.search(doc_id)
                if isinstance(doc, Document):
                    by_content.setdefault(content_key(doc.page_content), pos)
            return id_to_pos, by_content

        return self._positions.get(positions, build)

    def _vectors(self, positions: Sequence[int]) -> NDArray[np.float32] | None:
        index = self.vectorstore.index
        try:
            out = np.vstack([index.reconstruct(int(p)) for p in positions]).astype(np.float32)
        except RuntimeError:  # e.g. an IVF index without a direct map
            return None
        return out

    def _query_vector(self, query: str) -> tuple[list[float], NDArray[np.float32]]:
        raw = list(self.vectorstore._embed_query(query))
        vec = np.asarray(raw, dtype=np.float32)
        norm = float(np.linalg.norm(vec))
        return raw, (vec / norm if norm > 0 else vec)

    def _cosines(self, qvec: NDArray[np.float32], positions: Sequence[int]) -> NDArray[np.float64]:
        out = np.full(len(positions), np.nan)
        known = [i for i, p in enumerate(positions) if p >= 0]
        if not known:
            return out
        vecs = self._vectors([positions[i] for i in known])
        if vecs is None:
            return out
        norms = np.linalg.norm(vecs, axis=1)
        norms[norms == 0] = 1.0
        out[known] = (vecs @ qvec) / norms
        return out

    def _positions_of(self, docs: Sequence[Document]) -> list[int]:
        by_id, by_content = self._position_maps()
        positions = []
        for doc in docs:
            pos = _lookup(doc, by_id, by_content)
            positions.append(-1 if pos is None else pos)
        return positions

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search through the wrapper, then rescore candidates by exact cosine."""
        k = self.depth(k)
        raw_query, qvec = self._query_vector(query)
        pairs = self.vectorstore.similarity_search_with_score_by_vector(
            raw_query,
            k=k,
            filter=filter,
            fetch_k=max(k * self.fetch_multiplier, 20),
        )
        docs = [d for d, _ in pairs]
        scores = self._cosines(qvec, self._positions_of(docs))
        if np.isnan(scores).any():  # cannot reconstruct vectors: fall back to the wrapper's order
            strategy = str(getattr(self.vectorstore, "distance_strategy", "")).upper()
            raw = np.array([s for _, s in pairs], dtype=np.float64)
            scores = raw if "INNER" in strategy else -raw
            return Candidates(documents=docs, scores=scores)
        return Candidates(
            documents=docs,
            scores=scores,
            scorer=lambda other: self._cosines(qvec, self._positions_of(other)),
        )


class CommunityBM25Source(Source):
    """``langchain_community.retrievers.BM25Retriever`` (rank-bm25) with real BM25 scores.

    The wrapped retriever only returns documents; this adapter asks its rank-bm25 vectorizer for
    the scores of all documents once per query, takes the top ``k`` from them, and reuses them
    for complete scoring. A document scoring 0 (no query term in it) is not a match: it is not
    returned, so it gets no rank credit (RRF). When the retriever's own ``k`` was set (e.g.
    ``BM25Retriever.from_documents(docs, k=4)``), it caps the candidates, as when the retriever
    runs alone or in ``EnsembleRetriever``; otherwise ``fetch_k`` does. Its tokenization
    (``preprocess_func``) is kept as the user set it.
    ``filter`` (dict or callable, see [`langchain_fusion.filters`][]) is applied to the scored
    documents before the top-k cut.
    """

    kind = "bm25"
    supports_filter = True

    def __init__(self, retriever: Any) -> None:
        if not _is_community_bm25(retriever):
            raise TypeError(
                f"retriever must be a langchain_community BM25Retriever, got "
                f"{type(retriever).__name__}"
            )
        _warn_community(
            "BM25Retriever", "langchain_fusion.BM25Retriever is a faster drop-in replacement."
        )
        self.retriever = retriever
        self._positions = _PositionLookup()

    def _own_k(self) -> int | None:  # read at each search: the user may set it later
        return _user_k(self.retriever, "k") if self.max_k is None else self.max_k

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Score all documents with rank-bm25 and keep the best ``k`` that match."""
        k = self.depth(k)
        docs: list[Document] = self.retriever.docs
        all_scores = np.asarray(
            self.retriever.vectorizer.get_scores(self.retriever.preprocess_func(query)),
            dtype=np.float64,
        )
        eligible = all_scores.copy()
        if filter is not None:
            mask = filter_mask([d.metadata for d in docs], filter)
            eligible[~mask] = -np.inf
        order = _top_indices(eligible, k)
        order = order[eligible[order] > 0]  # 0: no query term (and -inf: filtered out)
        maps = self._positions.get(docs, lambda: _documents_key_map(docs))

        def scorer(other: Sequence[Document]) -> NDArray[np.float64]:
            out = np.full(len(other), np.nan)
            for i, doc in enumerate(other):
                pos = _lookup(doc, *maps)
                if pos is not None:
                    out[i] = all_scores[pos]
            return out

        return Candidates(
            documents=[docs[i] for i in order], scores=all_scores[order], scorer=scorer
        )


class RetrieverSource(Source):
    """Any LangChain ``BaseRetriever``: ranks only (no scores), no complete scoring.

    ``k`` is set on the retriever's field named ``k_arg`` (a copy of it is searched) when it
    has one; when its user set that field, its value caps ``k`` (see `Source.max_k`).
    ``filter`` is passed as ``filter=`` when ``supports_filter`` is set; otherwise
    `FusionRetriever` filters the returned documents by their metadata
    ([`langchain_fusion.filters`][] syntax), so none that fails the filter is fused, though
    fewer than ``k`` may remain.

    Example:
        >>> from langchain_fusion import BM25Retriever
        >>> src = RetrieverSource(BM25Retriever.from_texts(["x y", "y z"]))
        >>> src.search("y", 2).scores is None
        True

    """

    kind = "retriever"

    def __init__(
        self, retriever: BaseRetriever, *, k_arg: str | None = "k", supports_filter: bool = False
    ) -> None:
        self.retriever = retriever
        self.k_arg = k_arg
        self.supports_filter = supports_filter

    def _own_k(self) -> int | None:  # read at each search: the user may set it later
        if self.max_k is not None or not self.k_arg:
            return self.max_k
        return _user_k(self.retriever, self.k_arg)

    def _retriever_for(self, k: int) -> BaseRetriever:
        if self.k_arg and self.k_arg in type(self.retriever).model_fields:
            return self.retriever.model_copy(update={self.k_arg: self.depth(k)})
        return self.retriever

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Invoke the retriever; its order is its ranking."""
        kwargs = {"filter": filter} if (filter is not None and self.supports_filter) else {}
        docs = self._retriever_for(k).invoke(query, **kwargs)
        return Candidates(documents=list(docs)[: self.depth(k)], scores=None)

    async def asearch(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Async invoke."""
        kwargs = {"filter": filter} if (filter is not None and self.supports_filter) else {}
        docs = await self._retriever_for(k).ainvoke(query, **kwargs)
        return Candidates(documents=list(docs)[: self.depth(k)], scores=None)

    def __repr__(self) -> str:
        return f"RetrieverSource({type(self.retriever).__name__})"


def _user_k(retriever: Any, name: str) -> int | None:
    """Return ``retriever.<name>`` if set explicitly (in ``model_fields_set``), else None."""
    if name not in (getattr(retriever, "model_fields_set", None) or ()):
        return None
    value = getattr(retriever, name, None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        return None
    return int(value)


def _top_indices(scores: NDArray[np.float64], k: int) -> NDArray[np.intp]:
    n = scores.shape[0]
    if n == 0 or k <= 0:
        return np.empty(0, dtype=np.intp)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    return part[np.argsort(-scores[part], kind="stable")]


def _unwrap_vectorstore_retriever(retriever: Any) -> Source:
    """Search a similarity ``VectorStoreRetriever``'s store directly, keeping its search_kwargs.

    Its ``k``, when given, caps the candidates (`Source.max_k`); otherwise the fusion's
    ``fetch_k`` sets the depth. A generic store receives the other keyword
    arguments on every search. The package's index and community FAISS are searched through
    their own adapters, which cannot take them: a ``filter`` there would silently widen the
    results, so it is refused with the way to pass it; other keys are ignored with a warning.
    """
    store = retriever.vectorstore
    extra = {key: value for key, value in retriever.search_kwargs.items() if key != "k"}
    source = to_source(store)
    if type(source) is VectorStoreSource and extra:
        source = VectorStoreSource(store, search_kwargs=extra)
    own_k = retriever.search_kwargs.get("k")
    if own_k is not None:
        if isinstance(own_k, bool) or not isinstance(own_k, (int, np.integer)) or own_k < 1:
            raise ValueError(f"search_kwargs k must be an integer >= 1, got {own_k!r}")
        source.max_k = int(own_k)  # its user's depth, as when the retriever runs alone
    if not extra or type(source) is VectorStoreSource:
        return source
    if "filter" in extra:
        raise ValueError(
            f"this {type(store).__name__} retriever has a filter in its search_kwargs, which "
            "FusionRetriever cannot apply when it searches the store itself; pass the store "
            "(not .as_retriever()) and the filter as FusionRetriever(filter=...) or "
            "invoke(query, filter=...)"
        )
    warnings.warn(
        f"search_kwargs {sorted(extra)} of the {type(store).__name__} retriever are ignored: "
        "FusionRetriever searches the store itself (its fetch_k sets the depth)",
        UserWarning,
        stacklevel=4,
    )
    return source


def to_source(obj: Any) -> Source:
    """Wrap a LangChain object in the best-fitting [`Source`][langchain_fusion.sources.Source].

    Accepts a ``Source``, the package's ``HybridIndex`` (its dense side), its ``BM25Retriever``,
    ``langchain_community``'s ``FAISS`` and ``BM25Retriever``, any ``VectorStore`` and any
    ``BaseRetriever``. A similarity ``VectorStoreRetriever`` is unwrapped to its store; a generic
    store keeps the retriever's ``search_kwargs`` (their ``k`` caps ``fetch_k``), and the
    package's index or community FAISS refuses a ``filter`` there (pass it to the fusion).

    Example:
        >>> from langchain_fusion import BM25Retriever
        >>> type(to_source(BM25Retriever.from_texts(["a b"]))).__name__
        'OwnBM25Source'

    """
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, VectorStoreRetriever) and obj.search_type == "similarity":
        return _unwrap_vectorstore_retriever(obj)
    if isinstance(obj, HybridIndex):
        return HybridDenseSource(obj)
    if isinstance(obj, BM25Retriever):
        return OwnBM25Source(obj)
    if _is_community_faiss(obj):
        return CommunityFAISSSource(obj)
    if _is_community_bm25(obj):
        return CommunityBM25Source(obj)
    if isinstance(obj, VectorStore) and callable(getattr(obj, "as_sources", None)):
        sides: list[Source] = obj.as_sources()  # type: ignore[attr-defined]
        return sides[0]  # a store with its own sides (PostgresHybridStore): its dense side
    if isinstance(obj, VectorStore):
        return VectorStoreSource(obj)
    if isinstance(obj, BaseRetriever):
        # a nested FusionRetriever takes filter= (and applies it before its own top-k cut)
        return RetrieverSource(obj, supports_filter=accepts_call_option(obj, "filter"))
    raise TypeError(
        "each retriever must be a LangChain VectorStore, a BaseRetriever or a "
        f"langchain_fusion.sources.Source, got {type(obj).__name__}"
    )
