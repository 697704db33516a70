"""`tune`: find the fusion settings that maximize a metric on judged queries.

Retrieval is the expensive part of evaluating a fusion setting; fusing is not. `tune` therefore
runs the retrievers **once** per query (`gather_pools`: every candidate with its raw scores, down
to the largest ``fetch_k`` of the grid) and scores every setting of the grid on those cached
candidate pools. A smaller ``fetch_k`` is simulated by cutting the pools, an ``alpha`` sweep by
re-weighting the same normalized scores: a 21-point alpha sweep costs little more than one
evaluation pass.

The settings are fused by the same code as `FusionRetriever` ([`fuse_many`][langchain_fusion.fusion.fuse_many]
is [`fuse`][langchain_fusion.fusion.fuse] over many specs), with the metric conventions of
`compute_metrics`.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_core.documents import Document
    >>> docs = [Document(t, id=str(i)) for i, t in enumerate(
    ...     ["error E-217 battery too cold", "charging the battery in winter", "warranty terms",
    ...      "error E-404 page not found", "cold weather driving tips"])]
    >>> retriever = FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16))
    >>> report = tune(retriever, {"a": "E-217", "b": "E-404", "c": "warranty"},
    ...               {"a": {"0": 1}, "b": {"3": 1}, "c": {"2": 1}},
    ...               grid={"alpha": [0.0, 0.5, 1.0]}, show_progress=False)
    >>> report.best, report.best_score
    ({'method': 'convex', 'normalization': 'minmax', 'alpha': 0.0, 'fetch_k': 100}, 1.0)
    >>> report.retriever.alpha
    0.0

"""  # noqa: E501

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from time import perf_counter
from typing import Any

from langchain_fusion.evaluation.checks import check_int
from langchain_fusion.evaluation.metrics import Metric, Qrels, QrelsLike, parse_metric
from langchain_fusion.retriever import FusionRetriever
from langchain_fusion.tuning.crossfit import gather_judged
from langchain_fusion.tuning.grid import expand_grid
from langchain_fusion.tuning.pools import PoolCache, judged_queries
from langchain_fusion.tuning.report import TuningReport, make_report
from langchain_fusion.tuning.scoring import score_pools

__all__ = ["tune"]


def tune(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    cv: int | None = None,
    fetch_k: int | None = None,
    show_progress: bool = True,
    seed: int = 0,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    pools: PoolCache | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Find the fusion settings that maximize a metric on judged queries.

    The retrievers run once per query (`gather_pools`); every setting of the grid is then
    scored on the cached candidates. With the default grid (``grid=None``) the search covers:

    * ``method``: convex and RRF;
    * ``alpha``: 0, 0.05, ..., 1 (with two retrievers) or ``weights`` on a simplex grid (more);
    * ``normalization``: min-max, z-score, DBSF (convex);
    * ``rrf_k``: 10, 20, 40, 60, 100 (RRF);
    * ``fetch_k``: the retriever's ``fetch_k``, a half and a quarter of it (at least the
      metric cutoff).

    A custom grid searches the keys it gives and keeps the retriever's current value for the
    others: ``grid={"alpha": [0, 0.25, 0.5, 0.75, 1]}`` is a plain alpha sweep.

    Args:
        retriever: The `FusionRetriever` to tune (not modified).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        metric: What to maximize, e.g. ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``.
        grid: ``{setting: [values]}`` with keys among `GRID_KEYS`; None for the default search.
        cv: k-fold cross-validation (``cv=5``): the mean held-out score of the per-fold best
            settings estimates how well the tuned setting generalizes.
        fetch_k: Depth the candidates are gathered at (default: the largest ``fetch_k`` of the
            grid, else the retriever's).
        show_progress: Show progress bars.
        seed: Seed of the cross-validation shuffle.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        pools: Reuse pools from `gather_pools` (same retriever and queries) instead of
            gathering again.
        cross_fit: For a retriever whose model was trained on these same queries (see
            `fine_tune_embeddings`): ``[(query_ids, retriever), ...]``, each query's candidates
            gathered by a retriever built the same way but with a model that never saw it
            (trained on the other folds). Every judged query must be in exactly one group; the
            settings found are applied to ``retriever``. Without it, a fine-tuned model scores
            its own training queries too well and the dense side gets too much weight.

    Returns:
        A `TuningReport`; ``report.retriever`` is the retriever configured with the best setting.

    Raises:
        ValueError: If no query has judgments, the grid is empty or has unknown keys or
            values, the metric is unknown, ``cv`` is not in ``[2, n_queries]``, or
            ``cross_fit`` does not give every judged query exactly one retriever with the same
            sources (or comes with ``pools``).
        TypeError: If ``retriever`` (or a ``cross_fit`` one) is not a `FusionRetriever`, or
            ``cross_fit`` is not a list of ``(query_ids, retriever)`` pairs.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["the cat sat", "a dog ran", "the cat ran"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
        >>> report = tune(r, {"q1": "cat sat", "q2": "dog"}, {"q1": {"1": 1}, "q2": {"2": 1}},
        ...               grid={"method": ["rrf"], "alpha": [0.0, 1.0]}, show_progress=False)
        >>> report.best["method"], report.best_score
        ('rrf', 1.0)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(
            f"retriever must be a FusionRetriever (tuning re-fuses its candidate pools), "
            f"got {type(retriever).__name__}"
        )
    parsed = parse_metric(metric)
    metric_name = metric.strip() if isinstance(metric, str) else str(metric)
    if fetch_k is not None:
        check_int("fetch_k", fetch_k)
    if cv is not None:
        check_int("cv", cv, 2)
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    settings, depth = expand_grid(retriever, grid, fetch_k, parsed.k)
    if retriever.max_per_source is not None:
        warnings.warn(
            "tuning ranks candidates without max_per_source (the cap is applied after fusion "
            "and does not change which setting is best in most collections)",
            UserWarning,
            stacklevel=2,
        )
    judged = judged_queries(queries, prepared)
    if pools is None:
        pools = gather_judged(
            retriever, queries, judged, depth, cross_fit, show_progress, max_concurrency
        )
    else:
        if cross_fit is not None:
            raise ValueError("give pools or cross_fit, not both (pools are already gathered)")
        if pools.fetch_k < depth:
            raise ValueError(
                f"pools were gathered with fetch_k={pools.fetch_k}, below the fetch_k={depth} "
                "this grid needs; gather them again with a larger fetch_k"
            )
        pools = pools.subset(judged)
    if cv is not None and cv > len(pools):
        raise ValueError(
            f"cv must be at most the number of judged queries ({len(pools)}), got {cv}"
        )

    start = perf_counter()
    per_query = score_pools(retriever, pools, prepared, settings, parsed, id_key, show_progress)
    seconds = {"gather": pools.seconds, "sweep": perf_counter() - start}
    return make_report(
        retriever, metric_name, settings, per_query, list(pools.query_ids), cv, seed, seconds
    )
