"""Candidate pools of judged queries: gathered once, then re-fused for every tuning setting.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
    >>> gather_pools(r, {"q": "b"}, show_progress=False).query_ids
    ['q']

"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from langchain_fusion.evaluation.checks import check_int, examples
from langchain_fusion.evaluation.metrics import Qrels, QrelsLike
from langchain_fusion.retriever import CandidatePool, FusionRetriever

__all__ = ["PoolCache", "gather_pools", "judged_queries", "window"]


@dataclass
class PoolCache:
    """Candidate pools of judged queries, gathered once and reused by every tuning setting.

    Attributes:
        query_ids: The judged query ids, in input order.
        texts: The query texts, aligned with ``query_ids``.
        pools: One `CandidatePool` per query (down to ``fetch_k`` per retriever).
        fetch_k: How many candidates each retriever was asked for.
        seconds: Wall-clock time spent gathering.
        complete_scoring: Whether the retriever scored every candidate on every side (then a
            smaller ``fetch_k`` is simulated exactly).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8),
        ...                                ids=["1", "2"])
        >>> cache = gather_pools(r, {"q": "b"}, fetch_k=5, show_progress=False)
        >>> cache.query_ids, len(cache.pools[0])
        (['q'], 2)

    """

    query_ids: list[str]
    texts: list[str]
    pools: list[CandidatePool] = field(repr=False)
    fetch_k: int
    seconds: float
    complete_scoring: bool = True

    def __len__(self) -> int:
        return len(self.query_ids)

    def subset(self, query_ids: Sequence[str]) -> PoolCache:
        """Restrict the cache to ``query_ids`` (unknown ids raise KeyError).

        Example:
            >>> cache = PoolCache(["a", "b"], ["x", "y"], [], fetch_k=10, seconds=0.0)
            >>> cache.subset([]).query_ids
            []

        """
        where = {q: i for i, q in enumerate(self.query_ids)}
        picked = [where[q] for q in query_ids]
        return PoolCache(
            query_ids=[self.query_ids[i] for i in picked],
            texts=[self.texts[i] for i in picked],
            pools=[self.pools[i] for i in picked],
            fetch_k=self.fetch_k,
            seconds=self.seconds,
            complete_scoring=self.complete_scoring,
        )


def window(pool: CandidatePool, fetch_k: int, *, complete_scoring: bool = True) -> CandidatePool:
    """Cut a pool to what a retriever asked for only ``fetch_k`` candidates would return.

    The function form of [`CandidatePool.window`][langchain_fusion.CandidatePool.window], which
    describes the rules.

    Example:
        >>> import numpy as np
        >>> pool = CandidatePool(keys=["id:a", "id:b"], names=["dense"], raw=np.array([[0.9, 0.2]]),
        ...     found_rank=np.array([[1, 2]]), has_scores=np.array([True]),
        ...     _docs=[None] * 2, _loaders=[None] * 2)
        >>> window(pool, 1).keys
        ['id:a']

    """
    return pool.window(fetch_k, complete_scoring=complete_scoring)


def _check_queries(queries: Any) -> None:
    if not isinstance(queries, Mapping):
        raise TypeError(
            f"queries must be a mapping {{query_id: text}}, got {type(queries).__name__}"
        )
    if not queries:
        raise ValueError("queries is empty; give at least one {query_id: text}")
    for qid, text in queries.items():
        if not isinstance(text, str):
            raise TypeError(f"queries[{qid!r}] must be a string, got {type(text).__name__}")


def judged_queries(queries: Mapping[str, str], qrels: Qrels, stacklevel: int = 3) -> list[str]:
    """Return the ids of the queries that have judgments (warn about the others).

    Raises:
        TypeError: If ``queries`` is not a mapping of strings.
        ValueError: If no query is judged.

    Example:
        >>> judged_queries({"a": "x"}, Qrels({"a": {"d": 1}}))
        ['a']

    """
    _check_queries(queries)
    judged = [q for q in queries if q in qrels]
    if not judged:
        raise ValueError(
            f"no query has judgments: none of the {len(queries)} query ids "
            f"({examples(queries)}) is in qrels ({examples(qrels.query_ids)}); tuning needs "
            "judged queries (pass the qrels of the same split as the queries)"
        )
    if len(judged) < len(queries):
        skipped = [q for q in queries if q not in qrels]
        warnings.warn(
            f"{len(skipped)} of {len(queries)} queries have no judgments in qrels and are left "
            f"out of tuning ({examples(skipped)})",
            UserWarning,
            stacklevel=stacklevel,
        )
    return judged


def gather_pools(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike | None = None,
    *,
    fetch_k: int | None = None,
    show_progress: bool = True,
    max_concurrency: int | None = None,
) -> PoolCache:
    """Run the retrievers once per query and keep every candidate with its raw scores.

    Queries run on a thread pool (``max_concurrency`` workers, default ``min(4, CPUs)``) with a
    progress bar; each query's retrievers run concurrently inside ``FusionRetriever.gather``.

    Args:
        retriever: The retriever to tune.
        queries: ``{query_id: text}``.
        qrels: When given, queries without judgments are left out (with a warning).
        fetch_k: Candidates per retriever (default: the retriever's ``fetch_k``).
        show_progress: Show a tqdm progress bar.
        max_concurrency: Queries gathered in parallel.

    Returns:
        A `PoolCache`.

    Raises:
        TypeError: If ``retriever`` is not a `FusionRetriever` or a query is not a string.
        ValueError: If no query is judged, or ``fetch_k`` / ``max_concurrency`` is not >= 1.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
        >>> gather_pools(r, {"q1": "b", "q2": "c"}, show_progress=False).fetch_k
        100

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(
            f"retriever must be a FusionRetriever (tuning re-fuses its candidate pools), "
            f"got {type(retriever).__name__}"
        )
    depth = check_int("fetch_k", retriever.fetch_k if fetch_k is None else fetch_k)
    if max_concurrency is None:
        max_concurrency = min(4, os.cpu_count() or 1)
    workers = check_int("max_concurrency", max_concurrency)
    if qrels is not None:
        ids = judged_queries(queries, qrels if isinstance(qrels, Qrels) else Qrels(qrels))
    else:
        _check_queries(queries)
        ids = list(queries)
    texts = [queries[q] for q in ids]

    from tqdm.auto import tqdm

    def one(i: int) -> CandidatePool:
        try:
            return retriever.gather(texts[i], fetch_k=depth)
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"(while gathering candidates for query {ids[i]!r})")
            raise

    start = perf_counter()
    pools: list[CandidatePool] = []
    with (
        tqdm(total=len(ids), desc="Gathering", unit="query", disable=not show_progress) as bar,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fusion-tune") as pool,
    ):
        for result in pool.map(one, range(len(ids))):
            pools.append(result)
            bar.update(1)
    return PoolCache(
        query_ids=ids,
        texts=texts,
        pools=pools,
        fetch_k=depth,
        seconds=perf_counter() - start,
        complete_scoring=retriever.complete_scoring is not False,
    )
