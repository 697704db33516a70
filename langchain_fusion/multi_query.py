"""Multi-query fusion ("RAG-Fusion"): variants of the question from a chat model, fused.

[`MultiQueryFusionRetriever`][langchain_fusion.multi_query.MultiQueryFusionRetriever] asks a
chat model for ``num_queries`` rewordings of the question (an LCEL prompt), runs the wrapped
[`FusionRetriever`][langchain_fusion.FusionRetriever]'s sources for the original question and
every variant concurrently, and fuses all ``(query x source)`` lists in one step with the
package's weighted RRF or convex fusion ([`langchain_fusion.fusion`][]). The original question
always weighs at least as much as any variant. Variants are cached per question.

Without a chat model (none given and no ``OPENAI_API_KEY``), or when the model fails, times out
or answers with nothing usable, the original question runs alone and a warning says what was
skipped; ``metadata["fusion"]["skipped"]`` says it too.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from numpy.typing import NDArray
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from langchain_fusion import fusion
from langchain_fusion.retriever import CandidatePool, FusionRetriever, _lazy_executor

__all__ = [
    "DEFAULT_PROMPT",
    "MultiQueryFusionRetriever",
    "QueryVariants",
    "format_multi_query",
    "parse_variants",
]

DEFAULT_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You rewrite search questions. Write {n} different search queries that ask for the "
            "same information as the user's question, using other words (synonyms, the "
            "technical term, the layman's term, a more specific or a more general phrasing). "
            "Answer with one query per line, nothing else: no numbering, no explanations.",
        ),
        ("human", "{question}"),
    ]
)
"""The LCEL prompt: variables ``n`` (number of variants) and ``question``."""

_MAX_VARIANT_CHARS = 500
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d{1,2}[.):]|q\d{1,2}[.):])\s*", re.IGNORECASE)
_executor = _lazy_executor("lcf-multi-query")


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


@dataclass
class QueryVariants:
    """The queries one question was run with, and what was left out and why.

    Attributes:
        original: The user's question.
        variants: Usable generated variants, in the model's order.
        skipped: One line per thing left out (a duplicate variant, a failed model call...).

    Example:
        >>> QueryVariants("q", ["a", "b"]).queries
        ['q', 'a', 'b']

    """

    original: str
    variants: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def queries(self) -> list[str]:
        """The original question followed by the variants."""
        return [self.original, *self.variants]


def parse_variants(text: str, original: str, n: int) -> QueryVariants:
    r"""Parse a chat model's answer into at most ``n`` clean, distinct query variants.

    One variant per line; bullets, numbering and surrounding quotes are removed. Empty lines
    and lines without a letter or digit are dropped silently; duplicates (of the original or of
    each other, ignoring case and punctuation), over-long lines and extra lines are recorded in
    ``skipped``.

    Args:
        text: The model's answer.
        original: The user's question.
        n: How many variants are wanted.

    Returns:
        The variants and the skipped lines.

    Example:
        >>> v = parse_variants("1. heart attack signs\n2. Heart attack signs!\n- MI symptoms",
        ...                    "symptoms of a heart attack", 3)
        >>> v.variants
        ['heart attack signs', 'MI symptoms']
        >>> v.skipped
        ["duplicate variant 'Heart attack signs!'"]

    """
    out = QueryVariants(original)
    seen = {_norm(original)}
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip().strip("\"'`").strip()
        key = _norm(line)
        if not key:
            continue
        if len(line) > _MAX_VARIANT_CHARS:
            out.skipped.append(f"variant longer than {_MAX_VARIANT_CHARS} characters")
            continue
        if key in seen:
            out.skipped.append(f"duplicate variant {line!r}")
            continue
        if len(out.variants) == n:
            out.skipped.append(f"extra variant {line!r} (num_queries={n})")
            continue
        seen.add(key)
        out.variants.append(line)
    if not out.variants and text.strip() and not out.skipped:
        out.skipped.append(f"unusable model answer {text.strip()[:80]!r}")
    return out


@dataclass
class _Lists:
    """All (query x source) lists of one call, over one candidate space."""

    names: list[str]  # "dense@q0"...
    query_of: list[int]
    source_of: list[str]
    weights: NDArray[np.float64]
    raw: NDArray[np.float64]
    ranks: NDArray[np.int64]
    has_scores: list[bool]
    pools: list[CandidatePool]
    where: list[tuple[int, int]]  # candidate -> (pool, position in it)
    notes: dict[str, str]  # list name -> what its source did to the query (synonyms...)


def _combine(pools: Sequence[CandidatePool], query_weights: Sequence[float], sw: Any) -> _Lists:
    keys: dict[str, int] = {}
    where: list[tuple[int, int]] = []
    for p, pool in enumerate(pools):
        for j, key in enumerate(pool.keys):
            if key not in keys:
                keys[key] = len(where)
                where.append((p, j))
    n = len(where)
    names: list[str] = []
    query_of: list[int] = []
    source_of: list[str] = []
    weights: list[float] = []
    raw_rows: list[NDArray[np.float64]] = []
    rank_rows: list[NDArray[np.int64]] = []
    has_scores: list[bool] = []
    notes: dict[str, str] = {}
    for p, pool in enumerate(pools):
        notes.update({f"{name}@q{p}": note for name, note in pool.notes.items()})
        cols = np.array([keys[key] for key in pool.keys], dtype=np.intp)
        for i, name in enumerate(pool.names):
            raw = np.full(n, np.nan)
            rank = np.zeros(n, dtype=np.int64)
            raw[cols] = pool.raw[i]
            rank[cols] = pool.found_rank[i]
            names.append(f"{name}@q{p}")
            query_of.append(p)
            source_of.append(name)
            weights.append(float(query_weights[p]) * float(sw[i]))
            raw_rows.append(raw)
            rank_rows.append(rank)
            has_scores.append(bool(pool.has_scores[i]))
    return _Lists(
        names=names,
        query_of=query_of,
        source_of=source_of,
        weights=np.asarray(weights, dtype=np.float64),
        raw=np.vstack(raw_rows) if raw_rows else np.empty((0, n)),
        ranks=np.vstack(rank_rows) if rank_rows else np.empty((0, n), dtype=np.int64),
        has_scores=has_scores,
        pools=list(pools),
        where=where,
        notes=notes,
    )


def _normalization_of(retriever: FusionRetriever) -> str:
    """Return the normalization the wrapped retriever's convex fusion uses (shorthands too)."""
    method = str(getattr(retriever.method, "value", retriever.method)).lower()
    if method in fusion.NORMALIZATIONS and method != "none":
        return method
    norm = str(getattr(retriever.normalization, "value", retriever.normalization)).lower()
    return norm if norm in fusion.NORMALIZATIONS else "minmax"


class MultiQueryFusionRetriever(BaseRetriever):
    r"""RAG-Fusion over a [`FusionRetriever`][langchain_fusion.FusionRetriever].

    The chat model writes ``num_queries`` variants of the question; the wrapped retriever's
    sources run for the question and every variant concurrently (one extra round trip: the
    model call), and the ``(1 + num_queries) x n_sources`` lists are fused with weighted RRF
    (default) or convex fusion. A list's weight is its query's weight (``original_weight`` or
    ``variant_weight``) times its source's weight in the wrapped retriever. If the wrapped
    retriever has a ``reranker``, it rescores the fused top ``rerank_top_n`` for the original
    question.

    Every document carries ``metadata["fusion"]`` with the fused ``score`` and ``rank``, the
    ``queries`` run, what was ``skipped``, and under ``lists`` each list's ``rank`` and
    ``contribution`` to the fused score; ``explain`` prints it as a table.

    Attributes:
        retriever: The wrapped ``FusionRetriever`` (its sources, weights, ``k``, ``fetch_k``,
            ``rrf_k``, normalization and filter are used).
        llm: A chat model, an ``init_chat_model`` string (``"openai:gpt-4o-mini"``), ``None``
            (``ChatOpenAI`` when ``OPENAI_API_KEY`` is set, else no model) or ``False``
            (no model: the original question only, with a warning).
        num_queries: Variants to generate (>= 1; default 3).
        original_weight: Weight of the original question's lists (default 1.0).
        variant_weight: Weight of each variant's lists, at most ``original_weight``
            (default 1.0, the usual RAG-Fusion choice).
        method: ``"rrf"`` (default) or ``"convex"`` (the wrapped retriever's normalization).
        k: Documents returned (default: the wrapped retriever's ``k``).
        timeout: Seconds to wait for the variants before running the original only.
        on_error: ``"warn"`` (default: original question only, with a warning) or ``"raise"``.
        prompt: The LCEL prompt (variables ``n`` and ``question``).
        cache_size: Questions whose variants are kept (LRU; 0 = no cache).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_core.language_models import FakeListChatModel
        >>> base = FusionRetriever.from_texts(
        ...     ["myocardial infarction: symptoms", "heart attack warning signs", "tax law"],
        ...     DeterministicFakeEmbedding(size=16), k=2)
        >>> llm = FakeListChatModel(responses=["heart attack warning signs\nMI symptoms"])
        >>> rag_fusion = MultiQueryFusionRetriever(retriever=base, llm=llm, num_queries=2)
        >>> docs = rag_fusion.invoke("symptoms of a heart attack")
        >>> len(docs), docs[0].metadata["fusion"]["queries"][1:]
        (2, ['heart attack warning signs', 'MI symptoms'])

    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    retriever: FusionRetriever
    llm: Any = None
    num_queries: int = 3
    original_weight: float = 1.0
    variant_weight: float = 1.0
    method: str = "rrf"
    k: int | None = None
    timeout: float = 30.0
    on_error: str = "warn"
    prompt: ChatPromptTemplate = Field(default=DEFAULT_PROMPT, repr=False)
    cache_size: int = 1024

    _model: BaseChatModel | None = PrivateAttr(default=None)
    _cache: OrderedDict[tuple[str, int], QueryVariants] = PrivateAttr(default_factory=OrderedDict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _warned_no_model: bool = PrivateAttr(default=False)

    @field_validator("num_queries", mode="before")
    @classmethod
    def _check_n(cls, n: Any) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"num_queries must be an integer >= 1, got {n!r}; to run the original question "
                "only, use the FusionRetriever itself"
            )
        return n

    @model_validator(mode="after")
    def _check(self) -> MultiQueryFusionRetriever:
        for name in ("original_weight", "variant_weight"):
            w = getattr(self, name)
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")
        if self.original_weight <= 0:
            raise ValueError(f"original_weight must be > 0, got {self.original_weight!r}")
        if self.variant_weight > self.original_weight:
            raise ValueError(
                f"variant_weight ({self.variant_weight}) must not exceed original_weight "
                f"({self.original_weight}): the question itself weighs at least as much as any "
                "variant"
            )
        if self.method not in ("rrf", "convex"):
            raise ValueError(f"method must be 'rrf' or 'convex', got {self.method!r}")
        if self.on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {self.on_error!r}")
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        if self.k is not None and (isinstance(self.k, bool) or self.k < 1):
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        missing = {"n", "question"} - set(self.prompt.input_variables)
        if missing:
            raise ValueError(f"prompt must use the variables n and question; missing {missing}")
        from langchain_fusion.qa import resolve_llm

        self._model = resolve_llm(self.llm)
        return self

    # ------------------------------------------------------------------ variants

    @property
    def model(self) -> BaseChatModel | None:
        """The chat model that writes the variants (None: original question only)."""
        return self._model

    def _cached(self, query: str) -> QueryVariants | None:
        with self._lock:
            hit = self._cache.get((query, self.num_queries))
            if hit is not None:
                self._cache.move_to_end((query, self.num_queries))
            return hit

    def _store(self, query: str, variants: QueryVariants) -> QueryVariants:
        if self.cache_size > 0:
            with self._lock:
                self._cache[(query, self.num_queries)] = variants
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return variants

    def _no_model(self, query: str) -> QueryVariants:
        reason = "no chat model (pass llm= or set OPENAI_API_KEY): ran the original question only"
        if not self._warned_no_model:
            self._warned_no_model = True
            warnings.warn(f"multi-query fusion: {reason}", UserWarning, stacklevel=4)
        return QueryVariants(query, [], [reason])

    def _failed(self, query: str, what: str) -> QueryVariants:
        message = f"multi-query fusion: the chat model {what}; ran the original question only"
        if self.on_error == "raise":
            raise RuntimeError(message + " (on_error='raise')")
        warnings.warn(message, UserWarning, stacklevel=4)
        return QueryVariants(query, [], [f"the chat model {what}"])

    def _parsed(self, query: str, answer: Any) -> QueryVariants:
        if not isinstance(answer, str):
            return self._failed(query, f"returned {type(answer).__name__}, not text")
        parsed = parse_variants(answer, query, self.num_queries)
        if len(parsed.variants) < self.num_queries:
            got = len(parsed.variants)
            detail = "; ".join(parsed.skipped) or "no usable line"
            msg = (
                f"multi-query fusion: the chat model gave {got} usable variant(s) of "
                f"{self.num_queries} ({detail})"
            )
            if got == 0 and self.on_error == "raise":
                raise RuntimeError(msg + " (on_error='raise')")
            warnings.warn(
                msg + ("; ran the original question only" if got == 0 else ""),
                UserWarning,
                stacklevel=4,
            )
        return self._store(query, parsed) if parsed.variants else parsed

    def generate_variants(self, query: str, *, config: Any = None) -> QueryVariants:
        """Return the variants of ``query`` (from the cache, else from the chat model).

        A model that fails or times out gives no variants and a warning (or an error with
        ``on_error="raise"``); failures are not cached.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_core.language_models import FakeListChatModel
            >>> base = FusionRetriever.from_texts(["a"], DeterministicFakeEmbedding(size=8))
            >>> r = MultiQueryFusionRetriever(
            ...     retriever=base, llm=FakeListChatModel(responses=["b", "c"]), num_queries=1)
            >>> r.generate_variants("a").variants, r.generate_variants("a").variants  # cached
            (['b'], ['b'])

        """
        hit = self._cached(query)
        if hit is not None:
            return hit
        if self._model is None:
            return self._no_model(query)
        chain = self.prompt | self._model | StrOutputParser()
        future = _executor().submit(
            chain.invoke, {"n": self.num_queries, "question": query}, config
        )
        try:
            answer = future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            return self._failed(query, f"did not answer within {self.timeout:g} s")
        except Exception as exc:  # any provider error: report it, run the original question
            return self._failed(query, f"failed ({type(exc).__name__}: {exc})")
        return self._parsed(query, answer)

    async def agenerate_variants(self, query: str, *, config: Any = None) -> QueryVariants:
        """Async version of `generate_variants`."""
        hit = self._cached(query)
        if hit is not None:
            return hit
        if self._model is None:
            return self._no_model(query)
        chain = self.prompt | self._model | StrOutputParser()
        try:
            answer = await asyncio.wait_for(
                chain.ainvoke({"n": self.num_queries, "question": query}, config),
                timeout=self.timeout,
            )
        except asyncio.TimeoutError:
            return self._failed(query, f"did not answer within {self.timeout:g} s")
        except Exception as exc:
            return self._failed(query, f"failed ({type(exc).__name__}: {exc})")
        return self._parsed(query, answer)

    # ------------------------------------------------------------------ retrieval and fusion

    def _source_weights(self) -> NDArray[np.float64]:
        r = self.retriever
        n = len(r.sources)
        if r.weights is not None:
            return fusion.validate_weights(r.weights, n)
        if n == 2:
            return np.asarray(fusion.alpha_to_weights(r.alpha), dtype=np.float64)
        return np.ones(n)

    def _query_weights(self, qv: QueryVariants) -> list[float]:
        return [self.original_weight] + [self.variant_weight] * len(qv.variants)

    def _fuse(
        self, query: str, qv: QueryVariants, pools: list[CandidatePool], k: int
    ) -> list[Document]:
        lists = _combine(pools, self._query_weights(qv), self._source_weights())
        n = len(lists.where)
        if n == 0:
            return []
        rrf_k = float(self.retriever.rrf_k)
        if self.method == "rrf":
            ranks = lists.ranks
            contrib = np.where(ranks > 0, lists.weights[:, None] / (rrf_k + ranks), 0.0)
            fused = fusion.rrf_fusion(ranks, lists.weights, k=rrf_k)
            normalized = None
        else:
            scores = np.where(
                np.array(lists.has_scores)[:, None],
                lists.raw,
                np.where(lists.ranks > 0, 1.0 / (rrf_k + lists.ranks), np.nan),
            )
            norm_name = _normalization_of(self.retriever)
            normalized = np.vstack([fusion.normalize(row, norm_name) for row in scores])
            fused = fusion.convex_fusion(normalized, lists.weights, missing="min")
            filled = np.where(
                np.isfinite(normalized),
                normalized,
                np.nanmin(normalized, axis=1, initial=0.0)[:, None],
            )
            contrib = lists.weights[:, None] * filled
        tiebreak = fusion.rrf_fusion(lists.ranks, lists.weights, k=rrf_k)
        order = np.lexsort((-tiebreak, -fused))
        top_n = k
        reranker = getattr(self.retriever, "reranker", None)
        if reranker is not None:
            top_n = max(k, int(getattr(self.retriever, "rerank_top_n", 50)))
        out: list[Document] = []
        cap = self.retriever.max_per_source
        per_source: dict[Any, int] = {}
        for j in order:
            p, pos = lists.where[int(j)]
            doc = lists.pools[p]._present(pos)
            if doc is None:  # deleted since the search
                continue
            if cap is not None and (src := doc.metadata.get(self.retriever.source_key)) is not None:
                if per_source.get(src, 0) >= cap:
                    continue
                per_source[src] = per_source.get(src, 0) + 1
            out.append(self._decorate(doc, lists, qv, int(j), len(out) + 1, fused, contrib))
            if len(out) == top_n:
                break
        if reranker is not None:
            from langchain_fusion.rerank import rerank_documents

            weight = float(getattr(self.retriever, "rerank_weight", 1.0))
            out = rerank_documents(reranker, query, out, k, weight=weight)
        return out

    def _decorate(
        self,
        doc: Document,
        lists: _Lists,
        qv: QueryVariants,
        j: int,
        rank: int,
        fused: NDArray[np.float64],
        contrib: NDArray[np.float64],
    ) -> Document:
        per_list: dict[str, dict[str, Any] | None] = {}
        for i, name in enumerate(lists.names):
            r = int(lists.ranks[i, j])
            raw = lists.raw[i, j]
            if r == 0 and math.isnan(raw):
                per_list[name] = None
                continue
            per_list[name] = {
                "query": lists.query_of[i],
                "source": lists.source_of[i],
                "rank": r or None,
                "raw": None if math.isnan(raw) else float(raw),
                "weight": float(lists.weights[i]),
                "contribution": float(contrib[i, j]),
            }
        meta = dict(doc.metadata)
        meta.pop("fusion", None)
        meta["fusion"] = {
            "score": float(fused[j]),
            "rank": rank,
            "method": self.method,
            "queries": qv.queries,
            "query_weights": self._query_weights(qv),
            "skipped": list(qv.skipped),
            "lists": per_list,
        }
        if lists.notes:
            meta["fusion"]["query_notes"] = dict(lists.notes)
        return Document(page_content=doc.page_content, metadata=meta, id=doc.id)

    def _settings(self, kwargs: dict[str, Any]) -> tuple[int, Any]:
        flt = kwargs.pop("filter", None)
        k = kwargs.pop("k", None)
        if kwargs:
            raise ValueError(f"unknown option(s) {sorted(kwargs)}; per-call options are k, filter")
        k = self.k if k is None else k
        k = self.retriever.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        return k, flt

    def _fetch_k(self, k: int) -> int:
        top = k
        if getattr(self.retriever, "reranker", None) is not None:
            top = max(k, int(getattr(self.retriever, "rerank_top_n", 50)))
        return max(int(self.retriever.fetch_k), top)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, flt = self._settings(kwargs)
        self.retriever._check_query(query)
        qv = self.generate_variants(query, config={"callbacks": run_manager.get_child()})
        fetch_k = self._fetch_k(k)
        futures = [
            _executor().submit(self.retriever.gather, q, fetch_k=fetch_k, filter=flt)
            for q in qv.queries[1:]
        ]
        pools = [self.retriever.gather(query, fetch_k=fetch_k, filter=flt)]
        pools += [f.result() for f in futures]
        return self._fuse(query, qv, pools, k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, flt = self._settings(kwargs)
        self.retriever._check_query(query)
        qv = await self.agenerate_variants(query, config={"callbacks": run_manager.get_child()})
        fetch_k = self._fetch_k(k)
        pools = await asyncio.gather(
            *[self.retriever.agather(q, fetch_k=fetch_k, filter=flt) for q in qv.queries]
        )
        return await asyncio.to_thread(self._fuse, query, qv, list(pools), k)

    def explain(self, query: str, **kwargs: Any) -> str:
        """Return the queries run and a table of each list's contribution to the fused score.

        Each cell is ``contribution/rank`` of one ``source@query`` list (``-`` where the list
        did not find the document); with a reranker, a ``rerank`` column shows its score.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_core.language_models import FakeListChatModel
            >>> base = FusionRetriever.from_texts(["a b", "c d"],
            ...                                   DeterministicFakeEmbedding(size=8))
            >>> r = MultiQueryFusionRetriever(
            ...     retriever=base, llm=FakeListChatModel(responses=["c"]), num_queries=1)
            >>> print(r.explain("a", k=1).splitlines()[0])
            queries: q0 = 'a' (weight 1), q1 = 'c' (weight 1)

        """
        return format_multi_query(self.invoke(query, **kwargs))


def format_multi_query(docs: Sequence[Document], width: int = 50) -> str:
    """Format documents from a `MultiQueryFusionRetriever` as a contribution table.

    Example:
        >>> d = Document("hello", metadata={"fusion": {"score": 0.03, "queries": ["q"],
        ...     "query_weights": [1.0], "skipped": [], "lists": {
        ...     "bm25@q0": {"rank": 1, "contribution": 0.0164}}}})
        >>> print(format_multi_query([d]))  # doctest: +NORMALIZE_WHITESPACE
        queries: q0 = 'q' (weight 1)
        #  fused   bm25@q0   text
        1  0.0300  0.0164/1  hello

    """
    if not docs:
        return "(no documents)"
    info0 = docs[0].metadata.get("fusion", {})
    queries = info0.get("queries", [])
    qw = info0.get("query_weights", [1.0] * len(queries))
    lines = [
        "queries: "
        + ", ".join(f"q{i} = {q!r} (weight {w:g})" for i, (q, w) in enumerate(zip(queries, qw)))
    ]
    for note in info0.get("skipped", []):
        lines.append(f"skipped: {note}")
    for name, note in info0.get("query_notes", {}).items():
        lines.append(f"{name} query: {note}")
    names = list(info0.get("lists", {}))
    has_rerank = any("rerank" in d.metadata.get("fusion", {}) for d in docs)
    header = ["#", "fused", *(["rerank"] if has_rerank else []), *names, "text"]
    rows = [header]
    for i, doc in enumerate(docs, 1):
        info = doc.metadata.get("fusion", {})
        row = [str(i), f"{info.get('score', float('nan')):.4f}"]
        if has_rerank:
            rr = info.get("rerank")
            row.append("-" if rr is None else f"{rr['score']:.3f}")
        for name in names:
            cell = info.get("lists", {}).get(name)
            if cell is None or cell.get("rank") is None:
                row.append("-")
            else:
                row.append(f"{cell['contribution']:.4f}/{cell['rank']}")
        text = " ".join(doc.page_content.split())
        row.append(text if len(text) <= width else text[: width - 1] + "…")
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header) - 1)]
    for r in rows:
        cells = [r[c].ljust(widths[c]) for c in range(len(widths))] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
