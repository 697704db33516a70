"""Cross-fitting: gather each query's candidates with a model that was not trained on it.

A dense model fine-tuned on the tuning queries scores them too well, so tuning on them gives
the dense side too much weight. ``cross_fit=[(query_ids, retriever), ...]`` gives each query a
retriever built the same way with a model trained on the other folds.

Example:
    >>> cross_fit_pairs([])
    []

"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_fusion.evaluation.checks import examples
from langchain_fusion.retriever import CandidatePool, FusionRetriever
from langchain_fusion.tuning.pools import PoolCache, gather_pools

__all__ = ["cross_fit_pairs", "gather_judged"]


def cross_fit_pairs(cross_fit: Any) -> list[tuple[list[str], FusionRetriever]]:
    """``cross_fit`` as a list of ``(query_ids, retriever)`` (bad shapes raise TypeError)."""
    if isinstance(cross_fit, (str, bytes, Mapping)) or not isinstance(cross_fit, Iterable):
        raise TypeError(
            "cross_fit must be a list of (query_ids, retriever) pairs, got "
            f"{type(cross_fit).__name__}"
        )
    out = []
    for g, pair in enumerate(cross_fit):
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise TypeError(f"cross_fit[{g}] must be a (query_ids, retriever) pair, got {pair!r}")
        ids, fold_retriever = pair
        if not isinstance(fold_retriever, FusionRetriever):
            raise TypeError(
                f"cross_fit[{g}]'s retriever must be a FusionRetriever, got "
                f"{type(fold_retriever).__name__}"
            )
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"cross_fit[{g}]'s query ids must be a list of ids, got {ids!r}")
        out.append((list(ids), fold_retriever))
    return out


_SOURCE_FIELDS = frozenset(
    {"vectorstore", "keyword_retriever", "retrievers", "sources", "names", "index"}
)


def _like(retriever: FusionRetriever, fold_retriever: FusionRetriever) -> FusionRetriever:
    """``fold_retriever``'s sources with every setting of ``retriever`` (filter, feedback...)."""
    fields = type(retriever).model_fields
    update = {f: getattr(retriever, f) for f in fields if f not in _SOURCE_FIELDS}
    return fold_retriever.model_copy(update=update)


def _cross_fit_groups(
    retriever: FusionRetriever, cross_fit: Any, queries: Mapping[str, str], judged: Sequence[str]
) -> list[tuple[list[str], FusionRetriever]]:
    """Check that ``cross_fit`` gives each judged query one retriever built like ``retriever``.

    The fold retrievers lend their sources; every other setting is ``retriever``'s.
    """
    wanted = set(judged)
    owner: dict[str, int] = {}
    groups: list[tuple[list[str], FusionRetriever]] = []
    for g, (ids, fold_retriever) in enumerate(cross_fit_pairs(cross_fit)):
        if fold_retriever.names != retriever.names:
            raise ValueError(
                f"cross_fit[{g}]'s retriever has sources {fold_retriever.names}, the tuned "
                f"retriever {retriever.names}; build both the same way (only the model differs)"
            )
        mine = []
        for q in ids:
            if q not in queries:
                raise ValueError(f"cross_fit[{g}] names query {q!r}, which is not in queries")
            if q in owner:
                raise ValueError(
                    f"query {q!r} is in cross_fit[{owner[q]}] and cross_fit[{g}]; each query "
                    "needs exactly one retriever"
                )
            owner[q] = g
            if q in wanted:
                mine.append(q)
        groups.append((mine, _like(retriever, fold_retriever)))
    missing = [q for q in judged if q not in owner]
    if missing:
        raise ValueError(
            f"{len(missing)} judged queries are in no cross_fit group ({examples(missing)}); "
            "give every query to a retriever whose model was not trained on it"
        )
    return groups


def _trained_on(retriever: FusionRetriever) -> tuple[str, set[str]] | None:
    """Return the fine-tuned model among ``retriever``'s sources and its training query ids."""
    from langchain_fusion.dense.embeddings import LocalEmbeddings
    from langchain_fusion.dense.finetune import fine_tuning_record

    for source in retriever.sources:
        for holder in (getattr(source, "index", None), getattr(source, "vectorstore", None)):
            embeddings = getattr(holder, "embeddings", None) if holder is not None else None
            path = getattr(embeddings, "model_path", None)
            if isinstance(embeddings, LocalEmbeddings) and path is not None:
                record = fine_tuning_record(path)
                if record is not None:
                    return path, set(record["query_ids"])
    return None


def _warn_if_trained_on(retriever: FusionRetriever, judged: Sequence[str]) -> None:
    trained = _trained_on(retriever)
    if trained is None:
        return
    path, ids = trained
    overlap = [q for q in judged if q in ids]
    if overlap:
        warnings.warn(
            f"the dense model {path} was fine-tuned on {len(overlap)} of these {len(judged)} "
            f"queries ({examples(overlap)}): it scores them better than new ones, so the "
            "settings chosen give the dense side too much weight; tune on other queries, or "
            "pass cross_fit= (models fine-tuned without each query)",
            UserWarning,
            stacklevel=4,
        )


def gather_judged(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    judged: list[str],
    depth: int,
    cross_fit: Any,
    show_progress: bool,
    max_concurrency: int | None,
) -> PoolCache:
    """`gather_pools` of the judged queries, each from its cross-fit retriever when given."""
    if cross_fit is None:
        _warn_if_trained_on(retriever, judged)
        return gather_pools(
            retriever,
            {q: queries[q] for q in judged},
            fetch_k=depth,
            show_progress=show_progress,
            max_concurrency=max_concurrency,
        )
    found: dict[str, tuple[str, CandidatePool]] = {}
    seconds, complete = 0.0, True
    for ids, fold_retriever in _cross_fit_groups(retriever, cross_fit, queries, judged):
        if not ids:
            continue
        part = gather_pools(
            fold_retriever,
            {q: queries[q] for q in ids},
            fetch_k=depth,
            show_progress=show_progress,
            max_concurrency=max_concurrency,
        )
        found.update(zip(part.query_ids, zip(part.texts, part.pools, strict=True), strict=True))
        seconds += part.seconds
        complete = complete and part.complete_scoring
    return PoolCache(
        query_ids=list(judged),
        texts=[found[q][0] for q in judged],
        pools=[found[q][1] for q in judged],
        fetch_k=depth,
        seconds=seconds,
        complete_scoring=complete,
    )
