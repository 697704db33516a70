"""Cross-validated check of adaptive fusion: can a per-query alpha beat the best fixed one.

Example:
    >>> c = AdaptiveComparison("ndcg@10", 0.70, 0.71, 0.80, [0.7], [0.71], 1, [], [])
    >>> c.gain
    0.01

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.adaptive.model import (
    ADAPTIVE_ALPHAS,
    AdaptiveFusion,
    TermStats,
    alpha_scores,
    default_settings,
    feature_matrix,
    prepare_training,
)
from langchain_fusion.evaluation.evaluate import paired_p_value
from langchain_fusion.evaluation.metrics import Metric, QrelsLike, parse_metric
from langchain_fusion.retriever import FusionRetriever
from langchain_fusion.tuning.crossval import best_index, kfold
from langchain_fusion.tuning.pools import PoolCache
from langchain_fusion.tuning.scoring import score_pools

__all__ = ["AdaptiveComparison", "cross_validate_adaptive"]


@dataclass
class AdaptiveComparison:
    """Adaptive vs best fixed alpha under k-fold cross-validation (same folds).

    Attributes:
        metric: The metric.
        fixed: Mean held-out score of the best fixed setting chosen on the other folds.
        adaptive: Mean held-out score of the adaptive model trained on the other folds.
        oracle: Mean score when every query gets its own best alpha (an upper bound).
        fixed_folds: Held-out score per fold, fixed.
        adaptive_folds: Held-out score per fold, adaptive.
        wins: Folds where adaptive scored higher than fixed.
        per_query_fixed: Held-out score of every query, fixed.
        per_query_adaptive: Held-out score of every query, adaptive.

    Example:
        >>> c = AdaptiveComparison("ndcg@10", 0.70, 0.71, 0.80, [0.7], [0.71], 1, [], [])
        >>> c.gain, c.better
        (0.01, True)

    """

    metric: str
    fixed: float
    adaptive: float
    oracle: float
    fixed_folds: list[float]
    adaptive_folds: list[float]
    wins: int
    per_query_fixed: list[float] = field(repr=False)
    per_query_adaptive: list[float] = field(repr=False)

    @property
    def gain(self) -> float:
        """Adaptive minus fixed (positive = adaptive helps)."""
        return round(self.adaptive - self.fixed, 12)

    @property
    def better(self) -> bool:
        """Whether adaptive beat fixed on average."""
        return self.adaptive > self.fixed

    def p_value(self) -> float:
        """Two-sided paired t-test over queries (NaN when undefined).

        Example:
            >>> AdaptiveComparison("m", 0, 0, 0, [], [], 0, [1.0, 0.0], [1.0, 0.0]).p_value()
            nan

        """
        return paired_p_value(self.per_query_adaptive, self.per_query_fixed)

    def to_markdown(self, digits: int = 4) -> str:
        """Render as a Markdown table.

        Example:
            >>> c = AdaptiveComparison("ndcg@10", 0.7, 0.71, 0.8, [0.7], [0.71], 1, [], [])
            >>> print(c.to_markdown(digits=2))
            | system (held-out, 1-fold CV) | ndcg@10 |
            |:--|--:|
            | best fixed setting | 0.70 |
            | adaptive alpha | 0.71 |
            | oracle alpha per query (upper bound) | 0.80 |
            <BLANKLINE>
            adaptive - fixed: +0.01 (wins 1 of 1 folds)

        """
        k = len(self.fixed_folds)
        lines = [
            f"| system (held-out, {k}-fold CV) | {self.metric} |",
            "|:--|--:|",
            f"| best fixed setting | {self.fixed:.{digits}f} |",
            f"| adaptive alpha | {self.adaptive:.{digits}f} |",
            f"| oracle alpha per query (upper bound) | {self.oracle:.{digits}f} |",
            "",
            f"adaptive - fixed: {self.gain:+.{digits}f} (wins {self.wins} of {k} folds)",
        ]
        p = self.p_value() if self.per_query_fixed else math.nan
        if not math.isnan(p):
            lines[-1] += f", paired t-test p = {p:.3f}"
        return "\n".join(lines)


def cross_validate_adaptive(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    cv: int = 5,
    metric: str | Metric = "ndcg@10",
    alphas: Sequence[float] = ADAPTIVE_ALPHAS,
    pools: PoolCache | None = None,
    show_progress: bool = True,
    seed: int = 0,
) -> AdaptiveComparison:
    """Measure by k-fold cross-validation whether adaptive alpha beats the best fixed setting.

    In each fold, on the other folds: the best fixed setting is chosen from `tune`'s default
    grid, and an `AdaptiveFusion` is trained for that setting's method; both are scored on the
    held-out fold. Every score comes from the same cached pools, so this costs one retrieval
    pass.

    Args:
        retriever: A two-retriever `FusionRetriever`.
        queries: ``{query_id: text}`` (e.g. a train split).
        qrels: Judgments.
        cv: Number of folds (>= 2).
        metric: The metric.
        alphas: The alpha grid of the adaptive model.
        pools: Reuse pools from `gather_pools`.
        show_progress: Show progress bars.
        seed: Seed of the fold shuffle.

    Returns:
        An `AdaptiveComparison`.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["E-217 battery", "cold weather", "E-404 error"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
        >>> c = cross_validate_adaptive(r, {"a": "E-217", "b": "weather", "c": "E-404"},
        ...     {"a": {"1": 1}, "b": {"2": 1}, "c": {"3": 1}}, cv=3, show_progress=False)
        >>> c.fixed <= c.oracle and c.adaptive <= c.oracle
        True

    """
    parsed = parse_metric(metric)
    cache, prepared, _ = prepare_training(retriever, queries, qrels, pools, show_progress)
    folds = kfold(len(cache), cv, seed)
    settings = default_settings(retriever, cache.fetch_k, parsed.k)
    scores = score_pools(retriever, cache, prepared, settings, parsed, None, show_progress)
    stats = TermStats.from_index(retriever)
    n = len(cache)
    fixed_q, adaptive_q = np.zeros(n), np.zeros(n)
    feature_cache: dict[int, NDArray[np.float64]] = {}
    curve_cache: dict[tuple[Any, ...], NDArray[np.float64]] = {}
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        b = best_index(scores[:, train].mean(axis=1))
        best = settings[b]
        fixed_q[test] = scores[b, test]
        key = tuple(sorted((k, v) for k, v in best.items() if k != "alpha"))
        if key not in curve_cache:
            curve_cache[key] = alpha_scores(retriever, cache, prepared, parsed, best, alphas)
        y = curve_cache[key]
        fk = int(best["fetch_k"])
        if fk not in feature_cache:
            feature_cache[fk] = feature_matrix(cache, fk, stats)
        x = feature_cache[fk]
        model = AdaptiveFusion.train(
            x[train], y[train], alphas, best, fk, None, str(metric), seed, retriever
        )
        chosen = np.argmax(model.predict(x[test]), axis=1)
        adaptive_q[test] = y[test, chosen]
    oracle_curves = [curve.max(axis=1) for curve in curve_cache.values()] or [scores.max(axis=0)]
    oracle = float(np.max([c.mean() for c in oracle_curves]))
    fixed_folds = [float(fixed_q[t].mean()) for t in folds]
    adaptive_folds = [float(adaptive_q[t].mean()) for t in folds]
    return AdaptiveComparison(
        metric=str(metric),
        fixed=float(fixed_q.mean()),
        adaptive=float(adaptive_q.mean()),
        oracle=oracle,
        fixed_folds=fixed_folds,
        adaptive_folds=adaptive_folds,
        wins=sum(a > f for a, f in zip(adaptive_folds, fixed_folds, strict=True)),
        per_query_fixed=fixed_q.tolist(),
        per_query_adaptive=adaptive_q.tolist(),
    )
