"""`FusionRetriever`: dense + keyword retrieval fused into one ranked list."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import RunnableConfig, set_config_context
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from langchain_fusion.filters import filter_mask
from langchain_fusion.formatting import format_breakdown
from langchain_fusion.fusion import (
    OPTION_NAMES,
    FusedResult,
    FusionMethod,
    FusionSpec,
    Normalization,
    fuse,
)
from langchain_fusion.index import HybridIndex
from langchain_fusion.pool import CandidatePool
from langchain_fusion.sources import (
    Candidates,
    HybridDenseSource,
    HybridKeywordSource,
    Source,
    content_key,
    to_source,
)
from langchain_fusion.tools import create_fusion_tool

__all__ = [
    "CandidatePool",
    "FusedResult",
    "FusionMethod",
    "FusionRetriever",
    "Normalization",
    "format_breakdown",  # moved to langchain_fusion.formatting
]


def _post_filter(
    sources: Sequence[Source], results: list[Candidates], flt: Any
) -> list[Candidates]:
    """Drop the documents that fail ``flt`` from sources that could not apply it themselves."""
    if flt is None:
        return results
    out = []
    for src, c in zip(sources, results, strict=True):
        if not src.supports_filter and c.ids is None and c.documents:
            keep = np.flatnonzero(filter_mask([d.metadata for d in c.documents], flt))
            if keep.size < len(c.documents):
                c = replace(
                    c,
                    documents=[c.documents[i] for i in keep],
                    scores=None if c.scores is None else c.scores[keep],
                    derived_ids=None if c.derived_ids is None else [c.derived_ids[i] for i in keep],
                )
        out.append(c)
    return out


def _joint_searcher(sources: Sequence[Source]) -> Any:
    """Return the joint searcher all ``sources`` share (``Source.joint``), or None.

    A joint searcher answers ``search(query, k, filter, sources)`` (and ``asearch``) with every
    source's `Candidates` at once, e.g. both sides of a PostgreSQL store from one statement.
    """
    joint = getattr(sources[0], "joint", None) if sources else None
    if joint is None or any(getattr(s, "joint", None) is not joint for s in sources):
        return None
    return joint


def _keyword_source(obj: Any) -> Source:
    """``keyword_retriever=``: a `HybridIndex` there means its BM25 side, not its vectors."""
    if not isinstance(obj, HybridIndex) and callable(getattr(obj, "as_sources", None)):
        sides: list[Source] = obj.as_sources()
        return sides[1]  # PostgresHybridStore: its BM25 side
    return HybridKeywordSource(obj) if isinstance(obj, HybridIndex) else to_source(obj)


class FusionRetriever(BaseRetriever):
    """Hybrid retriever: runs dense and keyword retrieval and fuses the ranked lists.

    Build everything from documents with
    [`from_documents`][langchain_fusion.FusionRetriever.from_documents] or
    [`from_texts`][langchain_fusion.FusionRetriever.from_texts] (local all-MiniLM-L6-v2
    embeddings, FAISS and the built-in BM25 in one [`HybridIndex`][langchain_fusion.HybridIndex];
    ``pip install "langchain-fusion[local]"``), or wrap what you already have: any LangChain
    ``VectorStore`` and any keyword retriever (the built-in
    [`BM25Retriever`][langchain_fusion.BM25Retriever], ``langchain_community``'s
    ``BM25Retriever``, or any ``BaseRetriever``), see [`sources`][langchain_fusion.sources].

    Constructor arguments that choose the retrievers:

    - ``vectorstore``: the dense side (``alpha`` weighs it);
    - ``keyword_retriever``: the keyword side (``1 - alpha`` weighs it);
    - ``retrievers``: instead of the two above, any number of retrievers, fused with ``weights``;
    - ``names``: names shown in score breakdowns (default ``"dense"``, ``"bm25"``, ...).

    Every document returned carries ``metadata["fusion"]``: the fused ``score``, its ``rank``,
    the ``method``, ``normalization`` and ``weights`` used, and under ``retrievers`` each
    retriever's ``raw`` score, ``normalized`` score and own ``rank`` (``None`` where it has
    none). [`explain`][langchain_fusion.FusionRetriever.explain] prints it as a table.

    ```python
    from langchain_fusion import FusionRetriever

    retriever = FusionRetriever.from_texts(texts)  # local all-MiniLM-L6-v2 + BM25
    docs = retriever.invoke("how do I reset the BMS?", k=3, alpha=0.3)  # per-call overrides
    chain = retriever | format_docs | prompt | llm  # a Runnable like any retriever
    ```

    Attributes:
        method: ``"convex"`` (default) or ``"rrf"``; the shorthands ``"minmax"``,
            ``"zscore"`` and ``"dbsf"`` mean convex with that normalization.
        normalization: ``"minmax"`` (default), ``"zscore"``, ``"dbsf"`` or ``"none"``
            (convex method only).
        alpha: ``alpha * vector + (1 - alpha) * keyword``; 0 = keyword only, 1 = vector only
            (two retrievers only; default 0.5).
        weights: One weight per retriever (overrides ``alpha``).
        k: Number of documents returned (default 4).
        fetch_k: Candidates asked from each retriever (default 100).
        rrf_k: The ``k`` constant of RRF (default 60).
        id_key: Metadata key identifying a document across retrievers (default:
            ``Document.id``, else identical text).
        max_per_source: At most this many results per value of ``metadata[source_key]``.
        source_key: The metadata key ``max_per_source`` groups by (default ``"source"``).
        feedback_docs: Pseudo-relevance feedback: treat the top ``feedback_docs`` fused results
            as relevant, expand the query with them (dense: Rocchio; BM25: RM3) and retrieve
            again (default 0 = off; about twice the query cost). Helps collections with many
            relevant documents per query (+0.01 nDCG@10 on NFCorpus); `tune_feedback` decides.
        feedback_weight: Share of the feedback documents in the expanded query (default 0.5).
        feedback_terms: Feedback terms added to the BM25 query (default 20).

    All of ``k``, ``alpha``, ``weights``, ``method``, ``normalization``, ``fetch_k``, ``rrf_k``,
    ``max_per_source``, ``feedback_docs``, ``feedback_weight``, ``feedback_terms`` and
    ``filter`` can also be passed per call: ``retriever.invoke(query, k=3, alpha=0.3)``.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> retriever = FusionRetriever.from_texts(
        ...     ["error E-217: battery too cold", "charging in winter", "warranty terms"],
        ...     embedding=DeterministicFakeEmbedding(size=32),
        ...     k=2,
        ... )
        >>> docs = retriever.invoke("E-217")
        >>> docs[0].page_content
        'error E-217: battery too cold'
        >>> sorted(docs[0].metadata["fusion"]["retrievers"])
        ['bm25', 'dense']

    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    call_options: ClassVar[frozenset[str]] = frozenset({"k", "filter"})
    """Keywords wrappers may pass to ``invoke`` (see `sources.accepts_call_option`)."""

    vectorstore: Any = Field(default=None, exclude=True, repr=False)
    """The vector store given to the constructor (any LangChain ``VectorStore``), if any."""
    keyword_retriever: Any = Field(default=None, exclude=True, repr=False)
    """The keyword retriever given to the constructor (a ``BM25Retriever``...), if any."""
    retrievers: list[Any] | None = Field(default=None, exclude=True, repr=False)
    """The retrievers given as ``retrievers=[...]``, if any (adapted in ``sources``)."""
    sources: list[Source] = Field(default_factory=list)
    """The retrievers, adapted (see [`langchain_fusion.sources`][])."""
    names: list[str] = Field(default_factory=list)
    """One name per source, used in ``metadata["fusion"]``."""
    weights: list[float] | None = None
    alpha: float = 0.5
    method: str = FusionMethod.CONVEX.value
    normalization: str = Normalization.MINMAX.value
    k: int = 4
    fetch_k: int = 100
    rrf_k: float = 60.0
    complete_scoring: bool | None = None
    """Score documents a retriever did not return with its real score where it can.

    ``None`` (default, chosen by measurement): on for the convex method (+0.006 nDCG@10 on
    SciFact and NFCorpus), off for RRF, which ranks by the retrievers' own lists (complete
    ranks cost RRF 0.008 on NFCorpus). ``True``/``False`` force it for both methods.
    """
    id_key: str | None = None
    max_per_source: int | None = None
    source_key: str = "source"
    filter: Any = None
    """Default metadata filter for every call (a dict or a callable on metadata)."""
    feedback_docs: int = 0
    feedback_weight: float = 0.5
    feedback_terms: int = 20
    index: Any = Field(default=None, exclude=True, repr=False)
    """The [`HybridIndex`][langchain_fusion.HybridIndex] when built from documents."""
    reranker: Any = Field(default=None, exclude=True, repr=False)
    """Rescores the fused top ``rerank_top_n`` (see [`langchain_fusion.rerank`][]): a
    sentence-transformers ``CrossEncoder`` or its local path, any LangChain
    ``BaseDocumentCompressor``, or a function ``(query, texts) -> scores``. Off by default."""
    rerank_top_n: int = 50
    """Fused candidates the ``reranker`` rescores (default 50); ``k`` of them are returned."""
    rerank_weight: float = 1.0
    """The reranker's share of the final order, in [0, 1]: 1 (default) orders by its score
    alone; below 1, by ``rerank_weight`` times its min-max normalised score plus the rest times
    the min-max normalised fused score. Lower it for a reranker that knows your domain less
    well than the fused list does."""

    @model_validator(mode="before")
    @classmethod
    def _build_sources(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        vectorstore = data.get("vectorstore")
        keyword = data.get("keyword_retriever")
        retrievers = data.get("retrievers")
        if retrievers is not None and (vectorstore is not None or keyword is not None):
            raise ValueError(
                "pass either retrievers=[...] or vectorstore=/keyword_retriever=, not both"
            )
        if retrievers is None and (vectorstore is not None or keyword is not None):
            if vectorstore is None or keyword is None:
                raise ValueError(
                    "both vectorstore and keyword_retriever are needed; to fuse other "
                    "combinations pass retrievers=[...] with weights=[...]"
                )
            data.setdefault("names", ["dense", "bm25"])
            data["sources"] = [to_source(vectorstore), _keyword_source(keyword)]
        elif retrievers is not None:
            if not isinstance(retrievers, (list, tuple)) or not retrievers:
                raise ValueError("retrievers must be a non-empty list")
            data["sources"] = [to_source(r) for r in retrievers]
        sources = data.get("sources") or []
        if not data.get("names"):
            data["names"] = _default_names(sources)
        # the fusion options as given (before pydantic coerces, e.g. alpha=True to 1.0)
        FusionSpec().with_overrides(**{k: data[k] for k in _SPEC_OPTIONS if k in data})
        if "rerank_weight" in data:  # as given, too (pydantic would take True or "0.5")
            from langchain_fusion.rerank import check_rerank_weight

            check_rerank_weight(data["rerank_weight"])
        return data

    @model_validator(mode="after")
    def _check(self) -> FusionRetriever:
        if not self.sources:
            raise ValueError(
                "FusionRetriever needs retrievers: pass vectorstore= and keyword_retriever=, "
                "retrievers=[...], or build one with FusionRetriever.from_documents(...)"
            )
        if len(self.names) != len(self.sources) or len(set(self.names)) != len(self.names):
            raise ValueError(
                f"names must be {len(self.sources)} distinct strings, one per retriever; "
                f"got {self.names!r}"
            )
        self.fusion_spec()  # validates every fusion option against these retrievers
        if self.reranker is not None:
            from langchain_fusion.rerank import check_reranker

            check_reranker(self.reranker)
            n = self.rerank_top_n
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"rerank_top_n must be an integer >= 1, got {n!r}")
        return self

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_index(cls, index: HybridIndex, **kwargs: Any) -> FusionRetriever:
        """Fuse the dense and BM25 sides of a [`HybridIndex`][langchain_fusion.HybridIndex].

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8))
            >>> FusionRetriever.from_index(index).names
            ['dense', 'bm25']

        """
        kwargs.setdefault("names", ["dense", "bm25"])
        as_sources = getattr(index, "as_sources", None)
        if callable(as_sources):  # a store that provides its own sides (PostgresHybridStore)
            return cls(sources=as_sources(), **kwargs)
        return cls(
            sources=[HybridDenseSource(index), HybridKeywordSource(index)], index=index, **kwargs
        )

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        embedding: Embeddings | None = None,
        *,
        index_kwargs: Mapping[str, Any] | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> FusionRetriever:
        """Index documents (dense + BM25 in one [`HybridIndex`][langchain_fusion.HybridIndex]).

        Args:
            documents: The documents; ``Document.id`` is kept as the id when set.
            embedding: Embedding model; default: local all-MiniLM-L6-v2 (extra ``local``).
            index_kwargs: Options for ``HybridIndex`` (tokenizer, BM25 parameters, dense kind).
            show_progress: Show a progress bar while embedding.
            **kwargs: FusionRetriever options (``alpha``, ``method``, ``k``...).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_documents(
            ...     [Document("x", id="1"), Document("y", id="2")],
            ...     DeterministicFakeEmbedding(size=8),
            ...     k=1,
            ... )
            >>> len(r.invoke("x"))
            1

        """
        docs = list(documents)
        if not docs:
            raise ValueError("documents is empty: give at least one document to index")
        index = HybridIndex(embedding, **dict(index_kwargs or {}))
        index.add_documents(docs, show_progress=show_progress)
        return cls.from_index(index, **kwargs)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        embedding: Embeddings | None = None,
        metadatas: Sequence[dict[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> FusionRetriever:
        """Like [`from_documents`][langchain_fusion.FusionRetriever.from_documents], from texts.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["x", "y"], DeterministicFakeEmbedding(size=8))
            >>> r.k
            4

        """
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(
                f"metadatas must have one entry per text: {len(metadatas)} for {len(texts)} texts"
            )
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"ids must have one entry per text: {len(ids)} for {len(texts)}")
        docs = [
            Document(
                page_content=t,
                metadata=dict(metadatas[i]) if metadatas else {},
                id=ids[i] if ids else None,
            )
            for i, t in enumerate(texts)
        ]
        return cls.from_documents(docs, embedding, **kwargs)

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """Turn this retriever into a LangChain tool for agents.

        The tool takes a ``query`` string and returns the numbered sources with their scores
        (see [`create_fusion_tool`][langchain_fusion.tools.create_fusion_tool]). Passing
        ``args_schema`` or ``arg_types`` falls back to LangChain's generic ``Runnable.as_tool``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["x"], DeterministicFakeEmbedding(size=8))
            >>> r.as_tool().name
            'search_documents'

        """
        if args_schema is not None or arg_types is not None:
            return super().as_tool(
                args_schema, name=name, description=description, arg_types=arg_types
            )
        kwargs: dict[str, Any] = {"name": name or "search_documents"}
        if description is not None:
            kwargs["description"] = description
        return create_fusion_tool(self, **kwargs)

    # ------------------------------------------------------------------ settings

    def fusion_spec(self, **overrides: Any) -> FusionSpec:
        """Return the `FusionSpec` of a call: this retriever's settings with ``overrides``.

        Raises:
            ValueError: On an unknown or invalid option, ``alpha`` with other than two
                retrievers, or feedback the retrievers cannot do.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a"], DeterministicFakeEmbedding(size=8))
            >>> spec = r.fusion_spec(method="rrf", alpha=0.2)
            >>> spec.method.value, spec.weights_for(2).tolist()
            ('rrf', [0.2, 0.8])

        """
        unknown = set(overrides) - set(OPTION_NAMES)
        if unknown:
            raise ValueError(
                f"unknown option(s) {sorted(unknown)}; per-call options are {sorted(OPTION_NAMES)}"
            )
        n = len(self.sources)
        # weights win over alpha (the constructor refuses both); alpha counts when given, or as
        # the two-retriever default
        alpha_set = self.weights is None and ("alpha" in self.model_fields_set or n == 2)
        values = {name: getattr(self, name) for name in _SPEC_OPTIONS}
        values["alpha"] = self.alpha if alpha_set else None
        spec = FusionSpec(**values)
        changes = {k: v for k, v in overrides.items() if not (k == "weights" and v is None)}
        if changes:
            # a convex shorthand (method="zscore") keeps deciding the normalization
            changes.setdefault("method", self.method)
            spec = spec.with_overrides(**changes)
        spec.weights_for(n)  # alpha needs two retrievers, weights one per retriever
        if spec.feedback_docs and not any(src.supports_feedback for src in self.sources):
            raise ValueError(
                "feedback_docs needs a retriever that can expand queries, and none of "
                f"{[type(src).__name__ for src in self.sources]} can: build the retriever on a "
                "HybridIndex (FusionRetriever.from_documents / from_index), or set feedback_docs=0"
            )
        return spec

    # ------------------------------------------------------------------ gathering candidates

    def _check_query(self, query: Any) -> str:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        return query

    def _search_one(self, source: Source, query: str, fetch_k: int, flt: Any) -> Candidates:
        return source.search(query, fetch_k, filter=flt if source.supports_filter else None)

    def gather(
        self, query: str, *, fetch_k: int | None = None, filter: Any = None
    ) -> CandidatePool:
        """Run every retriever (concurrently) and return the candidate pool, unfused.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
            >>> pool = r.gather("b")
            >>> pool.raw.shape
            (2, 2)

        """
        self._check_query(query)
        overrides = {} if fetch_k is None else {"fetch_k": fetch_k}
        return self._gather(query, self.fusion_spec(**overrides), filter)

    def _child_configs(self, run_manager: Any) -> list[RunnableConfig | None]:
        """One config per source that makes its LangChain runs children of this run.

        A wrapped retriever (or nested ``FusionRetriever``) then shows up under the fusion run
        in LangSmith and callback handlers, tagged with its name, as ``EnsembleRetriever``'s do.
        Without a handler to inherit (no callbacks, no tracing) there is nothing to parent, and
        the per-query cost of setting the context (about 2.5% of a query) is skipped.
        """
        if run_manager is None or not run_manager.inheritable_handlers:
            return [None] * len(self.sources)
        return [{"callbacks": run_manager.get_child(tag=name)} for name in self.names]

    def _gather(
        self, query: str, s: FusionSpec, filter: Any, run_manager: Any = None
    ) -> CandidatePool:
        fk = s.depth
        flt = filter if filter is not None else self.filter
        configs = self._child_configs(run_manager)
        joint = _joint_searcher(self.sources)
        if joint is not None:  # every side from one round trip (e.g. PostgresHybridStore)
            results = joint.search(query, fk, flt, self.sources)
        else:
            results = _run_all(
                [lambda src=src: self._search_one(src, query, fk, flt) for src in self.sources],
                configs,
            )
        pool = self._build_pool(_post_filter(self.sources, results, flt))
        feedback = self._feedback_docs(pool, s)
        if not feedback:
            return pool
        again = _run_all(
            [
                lambda src=src, c=c: self._feedback_one(src, c, query, feedback, s, flt)
                for src, c in zip(self.sources, results, strict=True)
            ],
            configs,
        )
        return self._with_feedback(self._build_pool(again), feedback)

    async def agather(
        self, query: str, *, fetch_k: int | None = None, filter: Any = None
    ) -> CandidatePool:
        """Async version of `gather`: the retrievers run concurrently."""
        self._check_query(query)
        overrides = {} if fetch_k is None else {"fetch_k": fetch_k}
        return await self._agather(query, self.fusion_spec(**overrides), filter)

    async def _agather(
        self, query: str, s: FusionSpec, filter: Any, run_manager: Any = None
    ) -> CandidatePool:
        fk = s.depth
        flt = filter if filter is not None else self.filter
        configs = self._child_configs(run_manager)
        joint = _joint_searcher(self.sources)
        if joint is not None:  # every side from one round trip (e.g. PostgresHybridStore)
            results = await joint.asearch(query, fk, flt, self.sources)
        else:
            results = await asyncio.gather(
                *[
                    _in_config(
                        src.asearch(query, fk, filter=flt if src.supports_filter else None), c
                    )
                    for src, c in zip(self.sources, configs, strict=True)
                ]
            )
        results = _post_filter(self.sources, list(results), flt)
        pool = await asyncio.to_thread(self._build_pool, results)
        feedback = await asyncio.to_thread(self._feedback_docs, pool, s)
        if not feedback:
            return pool
        again = await asyncio.gather(
            *[
                _in_config(
                    asyncio.to_thread(self._feedback_one, src, c, query, feedback, s, flt), cfg
                )
                for src, c, cfg in zip(self.sources, results, configs, strict=True)
            ]
        )
        return self._with_feedback(await asyncio.to_thread(self._build_pool, list(again)), feedback)

    def _feedback_docs(self, pool: CandidatePool, s: FusionSpec) -> list[Document]:
        """Return the first round's top ``feedback_docs`` fused documents (empty when off)."""
        m = s.feedback_docs
        if not m or not len(pool):
            return []
        top = [int(j) for j in fuse(pool, s).order[:m]]
        pool._load(top)
        return [doc for doc in (pool._present(j) for j in top) if doc is not None]

    def _feedback_one(
        self,
        source: Source,
        first: Candidates,
        query: str,
        feedback: list[Document],
        s: FusionSpec,
        flt: Any,
    ) -> Candidates:
        """Second round of one source; a source that cannot expand keeps its first answer."""
        if not source.supports_feedback:
            return first
        return source.feedback_search(
            query,
            feedback,
            s.depth,
            weight=s.feedback_weight,
            n_terms=s.feedback_terms,
            filter=flt if source.supports_filter else None,
            first=first,
        )

    @staticmethod
    def _with_feedback(pool: CandidatePool, feedback: list[Document]) -> CandidatePool:
        pool.feedback = [
            str(d.id) if d.id is not None else content_key(d.page_content) for d in feedback
        ]
        return pool

    def _key(self, doc: Document) -> str | None:
        if self.id_key is not None and self.id_key in doc.metadata:
            return f"meta:{doc.metadata[self.id_key]}"
        if doc.id is not None:
            return f"id:{doc.id}"
        return None

    def _build_pool(self, results: list[Candidates]) -> CandidatePool:
        n_src = len(results)
        keys: list[str] = []
        docs: list[Document | None] = []
        loaders: list[Any] = []
        index_of: dict[str, int] = {}
        by_content: dict[str, int] = {}
        rows: list[list[tuple[int, int, float]]] = []
        any_docs = any(c.ids is None for c in results)
        for c in results:
            row: list[tuple[int, int, float]] = []
            seen: set[int] = set()
            n = len(c)
            materialize = c.ids is not None and any_docs and c.loader is not None
            items = c.loader(c.ids) if materialize and c.ids is not None and c.loader else None
            for r in range(n):
                if c.ids is not None and items is None:
                    key = f"id:{c.ids[r]}"
                    j = index_of.get(key)
                    if j is None:
                        j = len(keys)
                        index_of[key] = j
                        keys.append(key)
                        docs.append(None)
                        loaders.append(c.loader)
                else:
                    doc = items[r] if items is not None else c.documents[r]
                    if doc is None:  # deleted by another thread since the search
                        continue
                    derived = c.derived_ids is not None and c.derived_ids[r]
                    j = self._match(doc, index_of, by_content, keys, docs, loaders, derived)
                if j in seen:  # duplicate inside one list: the best-ranked copy counts
                    continue
                seen.add(j)
                score = float(c.scores[r]) if c.scores is not None else math.nan
                row.append((j, len(row) + 1, score))
            rows.append(row)
        n_cand = len(keys)
        raw = np.full((n_src, n_cand), np.nan)
        rank = np.zeros((n_src, n_cand), dtype=np.int64)
        for i, row in enumerate(rows):
            for j, r, s in row:
                rank[i, j] = r
                raw[i, j] = s
        has_scores = np.array([c.scores is not None for c in results], dtype=bool)
        pool = CandidatePool(
            keys=keys,
            names=list(self.names),
            raw=raw,
            found_rank=rank,
            has_scores=has_scores,
            _docs=docs,
            _loaders=loaders,
        )
        pool.notes = {n: c.query_note for n, c in zip(self.names, results) if c.query_note}
        if self.complete_scoring is not False:
            self._complete(pool, results)
        return pool

    def _match(
        self,
        doc: Document,
        index_of: dict[str, int],
        by_content: dict[str, int],
        keys: list[str],
        docs: list[Document | None],
        loaders: list[Any],
        derived_id: bool = False,
    ) -> int:
        # an id the source made from the text (not the user's) identifies nothing: match by text
        key = None if derived_id and self.id_key is None else self._key(doc)
        ckey = content_key(doc.page_content)
        j = index_of.get(key) if key is not None else None
        if j is None and (key is None or self.id_key is None):
            # A document without an id matches by text; an id-less copy elsewhere matches too.
            cj = by_content.get(ckey)
            if cj is not None and (key is None or keys[cj].startswith("sha1:")):
                j = cj
                if key is not None:
                    index_of[key] = j
        if j is None:
            j = len(keys)
            keys.append(key if key is not None else ckey)
            docs.append(doc)
            loaders.append(None)
            if key is not None:
                index_of[key] = j
        elif docs[j] is None:
            docs[j] = doc
        by_content.setdefault(ckey, j)
        return j

    def _complete(self, pool: CandidatePool, results: list[Candidates]) -> None:
        for i, c in enumerate(results):
            if c.scores is None:
                continue
            missing = np.flatnonzero(np.isnan(pool.raw[i]))
            if missing.size == 0:
                continue
            if c.id_scorer is not None and all(pool.keys[j].startswith("id:") for j in missing):
                pool.raw[i, missing] = c.id_scorer([pool.keys[j][3:] for j in missing])
                continue
            # (position in missing, document); a candidate deleted since the search is skipped
            found = [
                (t, d) for t, j in enumerate(missing) if (d := pool._present(int(j))) is not None
            ]
            if c.scorer is not None and found:
                scores = c.scorer([d for _, d in found])
            elif c.id_scorer is not None:
                found = [(t, d) for t, d in found if d.id is not None]
                scores = c.id_scorer([str(d.id) for _, d in found]) if found else np.empty(0)
            else:
                continue
            pool.raw[i, missing[[t for t, _ in found]]] = np.asarray(scores, dtype=np.float64)

    # ------------------------------------------------------------------ fusion (pure numpy)

    def fuse_pool(self, pool: CandidatePool, **overrides: Any) -> FusedResult:
        """Fuse a candidate pool with this retriever's settings (or per-call overrides).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
            >>> res = r.fuse_pool(r.gather("b"), alpha=0.0)
            >>> res.fused.shape
            (2,)

        """
        return fuse(pool, self.fusion_spec(**overrides))

    # ------------------------------------------------------------------ LangChain entry points

    def _finish(self, pool: CandidatePool, s: FusionSpec) -> list[Document]:
        result = fuse(pool, s)
        return self._select(pool, result, s)

    def _select(self, pool: CandidatePool, res: FusedResult, s: FusionSpec) -> list[Document]:
        k, cap = s.k, s.max_per_source
        pool._load(int(j) for j in res.order[:k])  # the likely results, in one call per loader
        per_source: dict[Any, int] = {}
        out: list[Document] = []
        for position in res.order:
            j = int(position)
            doc = pool._present(j)
            if doc is None:  # deleted by another thread since the search: the next one moves up
                continue
            # documents without a source are not grouped
            if cap is not None and (src := doc.metadata.get(self.source_key)) is not None:
                if per_source.get(src, 0) >= cap:
                    continue
                per_source[src] = per_source.get(src, 0) + 1
            out.append(self._decorate(doc, pool, res, j, len(out) + 1, s))
            if len(out) == k:
                break
        return out

    def _decorate(
        self,
        doc: Document,
        pool: CandidatePool,
        res: FusedResult,
        j: int,
        rank: int,
        s: FusionSpec,
    ) -> Document:
        breakdown: dict[str, dict[str, Any] | None] = {}
        for i, name in enumerate(pool.names):
            raw = pool.raw[i, j]
            norm = res.normalized[i, j]
            found = int(pool.found_rank[i, j])
            if math.isnan(raw) and found == 0:
                breakdown[name] = None
                continue
            breakdown[name] = {
                "raw": None if math.isnan(raw) else float(raw),
                "normalized": None if math.isnan(norm) else float(norm),
                "rank": found or None,
            }
        meta = dict(doc.metadata)
        meta["fusion"] = {
            "score": float(res.fused[j]),
            "rank": rank,
            "method": s.method.value,
            "normalization": s.normalization.value if s.method is FusionMethod.CONVEX else None,
            "weights": {n: float(w) for n, w in zip(pool.names, res.weights)},
            "retrievers": breakdown,
        }
        if pool.notes:
            meta["fusion"]["query"] = dict(pool.notes)
        if pool.feedback:
            meta["fusion"]["feedback"] = {
                "documents": list(pool.feedback),
                "weight": s.feedback_weight,
            }
        return Document(page_content=doc.page_content, metadata=meta, id=doc.id)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        flt = kwargs.pop("filter", None)
        s = self.fusion_spec(**kwargs)
        pool = self._gather(self._check_query(query), s, flt, run_manager)
        s = self._spec_for_pool(query, pool, s, kwargs)
        if self.reranker is None:
            return self._finish(pool, s)
        return self._rerank(query, pool, s, run_manager)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        flt = kwargs.pop("filter", None)
        s = self.fusion_spec(**kwargs)
        pool = await self._agather(self._check_query(query), s, flt, run_manager)
        s = self._spec_for_pool(query, pool, s, kwargs)
        if self.reranker is None:
            return self._finish(pool, s)
        return await asyncio.to_thread(self._rerank, query, pool, s, run_manager.get_sync())

    def _spec_for_pool(
        self,
        query: str,
        pool: CandidatePool,
        spec: FusionSpec,
        overrides: dict[str, Any],
    ) -> FusionSpec:
        """Return the spec to fuse ``pool`` with (a hook: subclasses adapt it per query)."""
        return spec

    def _rerank(
        self, query: str, pool: CandidatePool, s: FusionSpec, run_manager: Any
    ) -> list[Document]:
        """Fused top ``rerank_top_n``, rescored by the reranker; the best ``k`` are returned."""
        from langchain_fusion.rerank import rerank_documents

        docs = self._finish(pool, s.with_overrides(k=max(s.k, self.rerank_top_n)))
        return rerank_documents(
            self.reranker,
            query,
            docs,
            s.k,
            callbacks=run_manager.get_child(),
            weight=self.rerank_weight,
        )

    def explain(self, query: str, **kwargs: Any) -> str:
        """Return a readable table of the fused results and each retriever's contribution.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
            >>> print(r.explain("b", k=1).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
            #  fused  dense (raw/norm/rank)  bm25 (raw/norm/rank)  text

        """
        docs = self.invoke(query, **kwargs)
        return format_breakdown(docs, self.names)


def _lazy_executor(prefix: str) -> Callable[[], ThreadPoolExecutor]:
    """Return a function giving one process-wide thread pool, created on first call.

    The pool's threads are named ``prefix...`` (so a task can tell it already runs in it).

    Example:
        >>> executor = _lazy_executor("lcf-doctest")
        >>> executor() is executor(), executor().submit(threading.current_thread).result().name
        (True, 'lcf-doctest_0')

    """
    pool: list[ThreadPoolExecutor] = []
    lock = threading.Lock()

    def executor() -> ThreadPoolExecutor:
        with lock:
            if not pool:
                pool.append(ThreadPoolExecutor(max_workers=16, thread_name_prefix=prefix))
            return pool[0]

    return executor


_THREAD_PREFIX = "langchain-fusion"
_executor = _lazy_executor(_THREAD_PREFIX)
"""Return the process-wide pool that runs retrievers concurrently."""


_SPEC_OPTIONS = (*OPTION_NAMES, "complete_scoring")
"""The retriever fields that are fusion options (the per-call ones and ``complete_scoring``)."""


def _with_config(task: Callable[[], Candidates], config: RunnableConfig | None) -> Any:
    """``task`` run with ``config`` as the parent of the LangChain runs it starts."""
    if config is None:
        return task

    def run() -> Candidates:
        with set_config_context(config) as ctx:
            return ctx.run(task)

    return run


def _in_config(coro: Any, config: RunnableConfig | None) -> Any:
    """``coro`` as a task whose LangChain runs have ``config`` as their parent."""
    if config is None:
        return coro
    with set_config_context(config) as ctx:
        # a task copies the context it is created in
        return ctx.run(asyncio.ensure_future, coro)


def _run_all(
    tasks: Sequence[Any],
    configs: Sequence[RunnableConfig | None] | None = None,
) -> list[Candidates]:
    """Run the sources' searches concurrently and return their answers in order.

    ``configs`` (one per task, or None) parent the LangChain runs each task starts. One task,
    or already inside a fusion worker (a FusionRetriever used as a source of another): run in
    this thread, so nested retrievers cannot deadlock.
    """
    if configs is not None:
        tasks = [_with_config(t, c) for t, c in zip(tasks, configs, strict=True)]
    if len(tasks) == 1 or threading.current_thread().name.startswith(_THREAD_PREFIX):
        return [task() for task in tasks]
    futures = [_executor().submit(task) for task in tasks]
    return [f.result() for f in futures]


def _default_names(sources: Sequence[Source]) -> list[str]:
    names: list[str] = []
    for s in sources:
        base = s.kind
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names
