"""`tune_feedback`: decide whether pseudo-relevance feedback helps, and how much of it.

Feedback changes what is retrieved, so each setting needs its own retrieval pass; the fusion
settings stay the retriever's (run `tune` first).

Example:
    >>> FEEDBACK_KEYS
    ('feedback_docs', 'feedback_weight', 'feedback_terms')

"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import product
from time import perf_counter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.evaluation.checks import check_int
from langchain_fusion.evaluation.metrics import Metric, Qrels, QrelsLike, parse_metric
from langchain_fusion.fusion import FEEDBACK_KEYS
from langchain_fusion.retriever import FusionRetriever
from langchain_fusion.tuning.crossfit import cross_fit_pairs, gather_judged
from langchain_fusion.tuning.grid import as_list
from langchain_fusion.tuning.pools import judged_queries
from langchain_fusion.tuning.report import TuningReport, make_report
from langchain_fusion.tuning.scoring import score_settings

__all__ = ["DEFAULT_FEEDBACK_GRID", "FEEDBACK_KEYS", "tune_feedback"]

DEFAULT_FEEDBACK_GRID: dict[str, list[Any]] = {
    "feedback_docs": [0, 2, 3, 5],
    "feedback_weight": [round(1 / 3, 4), 0.5],
}
"""The feedback settings searched by default (``feedback_docs=0`` is feedback off)."""


def _feedback_settings(
    retriever: FusionRetriever, grid: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    grid = DEFAULT_FEEDBACK_GRID if grid is None else grid
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping {{setting: [values]}}, got {type(grid).__name__}")
    unknown = [k for k in grid if k not in FEEDBACK_KEYS]
    if unknown or not grid:
        raise ValueError(
            f"grid must vary some of {list(FEEDBACK_KEYS)}, got {list(grid)}; fusion settings "
            "are tuned by tune()"
        )
    keys = list(grid)
    settings: list[dict[str, Any]] = []
    for combo in product(*(as_list(k, grid[k]) for k in keys)):
        s = dict(zip(keys, combo, strict=True))
        retriever.fusion_spec(**s)  # validates, and rejects feedback the sources cannot do
        if s.get("feedback_docs", retriever.feedback_docs) == 0:
            s = {"feedback_docs": 0}  # off: weight and terms do not matter
        if s not in settings:
            settings.append(s)
    return settings


def tune_feedback(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    cv: int | None = None,
    show_progress: bool = True,
    seed: int = 0,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Decide whether pseudo-relevance feedback helps, and how much of it.

    Feedback changes what is retrieved, so unlike `tune` each setting needs its own retrieval
    pass (two rounds per query): the default grid of 7 settings costs about 13 evaluation
    passes. The fusion settings stay the retriever's: run `tune` first and pass its
    ``report.retriever``. ``feedback_docs=0`` (off) is part of the default grid, so the tuned
    retriever only uses feedback where it wins on the tuning queries.

    Args:
        retriever: A `FusionRetriever` whose sources support feedback (built on a
            ``HybridIndex``).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        metric: What to maximize, e.g. ``"ndcg@10"``.
        grid: ``{setting: [values]}`` over `FEEDBACK_KEYS`; default `DEFAULT_FEEDBACK_GRID`.
        cv: k-fold cross-validation of the choice (as in `tune`).
        show_progress: Show progress bars.
        seed: Seed of the cross-validation shuffle.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        cross_fit: Out-of-fold retrievers for a model trained on these queries (as in `tune`);
            each feedback setting is scored with their sources.

    Returns:
        A `TuningReport` over the feedback settings; ``report.retriever`` uses the best.

    Raises:
        ValueError: If no query has judgments, the grid is empty, has unknown keys or invalid
            values, the retriever's sources cannot expand queries, or ``cross_fit`` is wrong
            (as in `tune`).
        TypeError: If ``retriever`` is not a `FusionRetriever`, or ``cross_fit`` is malformed.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(
        ...     ["solar panel output", "solar panel cleaning", "wind turbine noise"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"], k=2)
        >>> report = tune_feedback(r, {"q": "solar"}, {"q": {"1": 1, "2": 1}},
        ...     grid={"feedback_docs": [0, 1]}, show_progress=False)
        >>> [s["feedback_docs"] for s in report.settings], report.best_score
        ([0, 1], 1.0)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(f"retriever must be a FusionRetriever, got {type(retriever).__name__}")
    parsed = parse_metric(metric)
    metric_name = metric.strip() if isinstance(metric, str) else str(metric)
    if cv is not None:
        check_int("cv", cv, 2)
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    settings = _feedback_settings(retriever, grid)
    judged = judged_queries(queries, prepared)
    if cv is not None and cv > len(judged):
        raise ValueError(
            f"cv must be at most the number of judged queries ({len(judged)}), got {cv}"
        )
    if cross_fit is not None:
        cross_fit = cross_fit_pairs(cross_fit)  # read once: used for every setting
    rows: list[NDArray[np.float64]] = []
    seconds = {"gather": 0.0, "sweep": 0.0}
    for setting in settings:
        candidate = retriever.model_copy(update=setting)
        pools = gather_judged(
            candidate,
            queries,
            judged,
            candidate.fetch_k,
            cross_fit,
            show_progress,
            max_concurrency,
        )
        seconds["gather"] += pools.seconds
        start = perf_counter()
        rows.append(
            score_settings(candidate, pools, prepared, [{}], metric=parsed, id_key=id_key)[0]
        )
        seconds["sweep"] += perf_counter() - start
    return make_report(retriever, metric_name, settings, np.vstack(rows), judged, cv, seed, seconds)
