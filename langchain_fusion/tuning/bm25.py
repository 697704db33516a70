"""`tune_bm25`: choose BM25's ``k1`` and ``b`` together with the fusion settings.

Example:
    >>> DEFAULT_BM25_GRID
    {'k1': [0.7, 0.9, 1.2, 1.5], 'b': [0.5, 0.75]}

"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import product
from typing import Any

import numpy as np

from langchain_fusion.evaluation.metrics import Metric, QrelsLike, parse_metric
from langchain_fusion.retriever import FusionRetriever
from langchain_fusion.tuning.crossfit import cross_fit_pairs
from langchain_fusion.tuning.crossval import best_index
from langchain_fusion.tuning.grid import BM25_KEYS, as_list, fmt
from langchain_fusion.tuning.report import TuningReport
from langchain_fusion.tuning.search import tune

__all__ = ["BM25_KEYS", "DEFAULT_BM25_GRID", "tune_bm25"]

DEFAULT_BM25_GRID: dict[str, list[float]] = {"k1": [0.7, 0.9, 1.2, 1.5], "b": [0.5, 0.75]}
"""The BM25 parameters searched by default (8 pairs; the package default is k1=1.5, b=0.75)."""

_Setter = tuple[dict[str, float], Callable[..., None]]
"""The keyword side's current ``{k1, b}`` and the function that changes them."""


def _bm25_setter(retriever: FusionRetriever) -> _Setter:
    """Return the keyword side's current ``{k1, b}`` and the function that changes them."""
    from langchain_fusion.sources import HybridKeywordSource, OwnBM25Source

    found = [s for s in retriever.sources if isinstance(s, HybridKeywordSource | OwnBM25Source)]
    if len(found) != 1:
        raise ValueError(
            "tune_bm25 needs exactly one keyword side built by this package (a HybridIndex, as "
            "in FusionRetriever.from_documents / from_index, or langchain_fusion.BM25Retriever); "
            f"this retriever has {len(found)} among {retriever.sources}"
        )
    source = found[0]
    if isinstance(source, HybridKeywordSource):
        params = source.index.bm25_params
        return {key: params[key] for key in BM25_KEYS}, source.index.set_bm25_params
    index = source.retriever.bm25_index
    return {"k1": index.k1, "b": index.b}, index.set_params


def _bm25_pairs(grid: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[dict[str, Any]]:
    from langchain_fusion.lexical.scoring import validate_params

    grid = DEFAULT_BM25_GRID if grid is None else grid
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"bm25_grid must be a mapping {{k1/b: [values]}}, got {type(grid).__name__}"
        )
    unknown = [k for k in grid if k not in BM25_KEYS]
    if unknown or not grid:
        raise ValueError(
            f"bm25_grid must vary k1 and/or b, got {list(grid)}; fusion settings go in grid="
        )
    values = {k: as_list(k, grid[k]) if k in grid else [current[k]] for k in BM25_KEYS}
    pairs = []
    for k1, b in product(values["k1"], values["b"]):
        validate_params(k1=k1, b=b, method="lucene", delta=0.5)
        if {"k1": k1, "b": b} not in pairs:
            pairs.append({"k1": k1, "b": b})
    return pairs


def _each_pair(
    pairs: list[dict[str, Any]],
    main: _Setter,
    folds: list[_Setter],
    tune_pair: Callable[[], TuningReport],
    show_progress: bool,
) -> list[TuningReport]:
    """Set each pair (on the cross-fit retrievers too) and tune; on failure restore them all."""
    from tqdm.auto import tqdm

    original, set_params = main
    reports: list[TuningReport] = []
    bar = tqdm(total=len(pairs), desc="BM25 k1/b", unit="pair", disable=not show_progress)
    try:
        for pair in pairs:
            for _, set_fold in folds:
                set_fold(**pair)
            set_params(**pair)
            reports.append(tune_pair())
            bar.set_postfix_str(f"k1={fmt(pair['k1'])} b={fmt(pair['b'])}")
            bar.update()
    except BaseException:
        for fold_original, set_fold in folds:
            set_fold(**fold_original)
        set_params(**original)
        raise
    finally:
        bar.close()
    return reports


def tune_bm25(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    bm25_grid: Mapping[str, Any] | None = None,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    fetch_k: int | None = None,
    show_progress: bool = True,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Choose BM25's ``k1`` and ``b`` together with the fusion settings.

    For each ``(k1, b)`` of ``bm25_grid`` the keyword side is re-parameterized in place (BM25
    applies them at query time: nothing is rebuilt) and `tune` finds the best fusion settings
    for it, at the cost of one retrieval pass per pair. The pair with the best score wins (ties:
    the index's current pair, else the first in grid order) and **stays set on the index**, so
    ``report.retriever`` uses it and saving the index keeps it; if tuning fails, the original
    values are restored. Do not serve queries from the same index while this runs.

    On small collections BM25's parameters can matter more than the fusion's (SciFact:
    ``k1=0.7, b=0.5`` chosen on train moves held-out nDCG@10 from 0.730 to 0.742, see the
    benchmarks). Like `tune`, the scores are measured on the queries given: report the chosen
    retriever on other queries.

    Args:
        retriever: A `FusionRetriever` whose keyword side is this package's (a ``HybridIndex``
            or ``langchain_fusion.BM25Retriever``).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        bm25_grid: ``{"k1": [...], "b": [...]}`` (either key may be left out to keep the
            current value); default `DEFAULT_BM25_GRID`.
        metric: What to maximize, e.g. ``"ndcg@10"``.
        grid: The fusion grid searched for each pair (as in `tune`; default its full grid).
        fetch_k: Candidates gathered per retriever (as in `tune`).
        show_progress: Show a progress bar over the pairs.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        cross_fit: Out-of-fold retrievers for a model trained on these queries (as in `tune`);
            each pair is set on their keyword sides too while it is scored, and the winner
            stays set there as on ``retriever`` (so that a cross-fitted `tune_feedback` after
            it sees the same BM25); on failure their original values are restored.

    Returns:
        A `TuningReport` with one row per ``(k1, b)``: the pair, the best fusion setting for it
        and its score. ``report.best`` holds ``k1``, ``b`` and the fusion setting.

    Raises:
        ValueError: No keyword side of this package (here or in a ``cross_fit`` retriever), no
            judged query, a bad grid key or value, or a wrong ``cross_fit`` (as in `tune`).
        TypeError: If ``retriever`` is not a `FusionRetriever`, or ``cross_fit`` is malformed.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(
        ...     ["solar panel output", "solar solar solar panel cleaning guide and tips",
        ...      "wind turbine noise"], DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
        >>> report = tune_bm25(r, {"q": "solar"}, {"q": {"2": 1}},
        ...     bm25_grid={"k1": [0.0, 1.2]}, grid={"alpha": [0.0]}, show_progress=False)
        >>> [(s["k1"], s["b"]) for s in report.settings], report.scores.tolist()
        ([(0.0, 0.75), (1.2, 0.75)], [0.6309297535714575, 1.0])
        >>> report.best["k1"], r.sources[1].index.bm25_params["k1"]
        (1.2, 1.2)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(f"retriever must be a FusionRetriever, got {type(retriever).__name__}")
    original, set_params = _bm25_setter(retriever)
    pairs = _bm25_pairs(bm25_grid, original)
    parse_metric(metric)
    if cross_fit is not None:
        cross_fit = cross_fit_pairs(cross_fit)  # read once: tune() goes over it for every pair
    folds = [_bm25_setter(r) for _, r in cross_fit or ()]

    def tune_pair() -> TuningReport:
        return tune(
            retriever,
            queries,
            qrels,
            metric=metric,
            grid=grid,
            fetch_k=fetch_k,
            show_progress=False,
            id_key=id_key,
            max_concurrency=max_concurrency,
            cross_fit=cross_fit,
        )

    reports = _each_pair(pairs, (original, set_params), folds, tune_pair, show_progress)
    scores = np.array([r.best_score for r in reports])
    b = best_index(scores)
    if original in pairs and scores[pairs.index(original)] >= scores[b] - 1e-12:
        b = pairs.index(original)  # a tie keeps the index as it is
    for _, set_fold in folds:  # later cross-fitted steps (tune_feedback) see the same BM25
        set_fold(**pairs[b])
    set_params(**pairs[b])
    settings = [{**pair, **r.best} for pair, r in zip(pairs, reports, strict=True)]
    return TuningReport(
        metric=reports[b].metric,
        settings=settings,
        scores=scores,
        per_query=np.vstack([r.per_query[best_index(r.scores)] for r in reports]),
        query_ids=reports[b].query_ids,
        best=dict(settings[b]),
        best_score=float(scores[b]),
        retriever=reports[b].retriever,
        seconds={
            "gather": sum(r.seconds.get("gather", 0.0) for r in reports),
            "sweep": sum(r.seconds.get("sweep", 0.0) for r in reports),
        },
    )
