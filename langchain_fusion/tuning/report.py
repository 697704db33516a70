"""`TuningReport`: every setting's score, the best one, and the retriever configured with it.

Example:
    >>> import numpy as np
    >>> r = TuningReport("mrr@10", [{"alpha": 0.0}], np.array([0.5]), np.zeros((1, 1)),
    ...                  ["q"], {"alpha": 0.0}, 0.5, None)
    >>> r.table()
    [{'alpha': 0.0, 'mrr@10': 0.5}]

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.fusion import FEEDBACK_KEYS
from langchain_fusion.retriever import FusionRetriever
from langchain_fusion.tuning.crossval import CrossValidation, best_index, cross_validate
from langchain_fusion.tuning.grid import BM25_KEYS, fmt

__all__ = ["TuningReport", "make_report"]


@dataclass
class TuningReport:
    """Every setting's score, the best one, and a retriever configured with it.

    Attributes:
        metric: The metric optimized, e.g. ``"ndcg@10"``.
        settings: The settings searched, in grid order.
        scores: Mean metric per setting (aligned with ``settings``).
        per_query: ``(n_settings, n_queries)`` metric values.
        query_ids: The queries tuned on (columns of ``per_query``).
        best: The best setting (ties: first in grid order).
        best_score: Its mean metric.
        retriever: ``retriever.model_copy(update=best)``.
        cv: Cross-validation result when ``cv=`` was given.
        seconds: ``{"gather": ..., "sweep": ...}`` wall-clock seconds.

    Example:
        >>> import numpy as np
        >>> report = TuningReport("ndcg@10", [{"alpha": 0.2}, {"alpha": 0.8}],
        ...     np.array([0.5, 0.7]), np.array([[0.5], [0.7]]), ["q"], {"alpha": 0.8}, 0.7,
        ...     retriever=None)
        >>> print(report.to_markdown())
        | rank | alpha | ndcg@10 |
        |--:|--:|--:|
        | 1 | 0.8 | 0.7000 |
        | 2 | 0.2 | 0.5000 |
        <BLANKLINE>
        best of 2 settings on 1 queries: alpha=0.8 -> ndcg@10 0.7000

    """

    metric: str
    settings: list[dict[str, Any]]
    scores: NDArray[np.float64]
    per_query: NDArray[np.float64] = field(repr=False)
    query_ids: list[str] = field(repr=False)
    best: dict[str, Any]
    best_score: float
    retriever: Any = field(repr=False)
    cv: CrossValidation | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """Rows ``{**setting, metric: score}``, best first (stable for equal scores).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("mrr@10", [{"alpha": 0.0}], np.array([0.5]), np.zeros((1, 1)),
            ...                  ["q"], {"alpha": 0.0}, 0.5, None)
            >>> r.table()
            [{'alpha': 0.0, 'mrr@10': 0.5}]

        """
        order = np.argsort(-self.scores, kind="stable")
        return [{**self.settings[i], self.metric: float(self.scores[i])} for i in order]

    def curve(self, **fixed: Any) -> tuple[list[float], list[float]]:
        """Score against alpha for the settings matching ``fixed`` (e.g. ``method="rrf"``).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("ndcg@10", [{"method": "rrf", "alpha": 0.0},
            ...     {"method": "rrf", "alpha": 1.0}, {"method": "convex", "alpha": 0.5}],
            ...     np.array([0.1, 0.3, 0.2]), np.zeros((3, 1)), ["q"], {}, 0.3, None)
            >>> r.curve(method="rrf")
            ([0.0, 1.0], [0.1, 0.3])

        """
        points = sorted(
            (float(s["alpha"]), float(score))
            for s, score in zip(self.settings, self.scores, strict=True)
            if "alpha" in s and all(s.get(k) == v for k, v in fixed.items())
        )
        return [a for a, _ in points], [v for _, v in points]

    def curves(self, fetch_k: int | None = None) -> dict[str, tuple[list[float], list[float]]]:
        """Return one alpha curve per method / normalization / RRF k, labelled for plots.

        Args:
            fetch_k: Only the settings with this ``fetch_k`` (default: the best setting's).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("ndcg@10", [{"method": "convex", "normalization": "zscore",
            ...     "alpha": 0.5, "fetch_k": 100}, {"method": "rrf", "rrf_k": 60, "alpha": 0.5,
            ...     "fetch_k": 50}], np.array([0.4, 0.3]), np.zeros((2, 1)), ["q"],
            ...     {"fetch_k": 100}, 0.4, None)
            >>> r.curves()
            {'convex zscore': ([0.5], [0.4])}
            >>> r.curves(fetch_k=50)
            {'rrf k=60': ([0.5], [0.3])}

        """
        fk = fetch_k if fetch_k is not None else self.best.get("fetch_k")
        out: dict[str, tuple[list[float], list[float]]] = {}
        for s in self.settings:
            if "alpha" not in s or (fk is not None and s.get("fetch_k", fk) != fk):
                continue
            label = str(s.get("method", "fusion"))
            label += f" {s['normalization']}" if "normalization" in s else ""
            label += f" k={fmt(s['rrf_k'])}" if "rrf_k" in s else ""
            if label not in out:
                out[label] = self.curve(**{k: v for k, v in s.items() if k != "alpha"})
        return out

    def to_markdown(self, top: int | None = 20, digits: int = 4) -> str:
        """Render the settings as a Markdown table, best first (``top`` rows; None for all).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("mrr@10", [{"alpha": 0.0}], np.array([0.5]), np.zeros((1, 1)),
            ...                  ["q"], {"alpha": 0.0}, 0.5, None)
            >>> print(r.to_markdown().splitlines()[2])
            | 1 | 0 | 0.5000 |

        """
        rows = self.table()
        shown = rows if top is None else rows[:top]
        order = (
            *BM25_KEYS,
            "method",
            "normalization",
            "rrf_k",
            "alpha",
            "weights",
            "fetch_k",
            *FEEDBACK_KEYS,
        )
        keys = [k for k in order if any(k in s for s in self.settings)]
        keys = [k for k in keys if k != "fetch_k" or len({s.get(k) for s in self.settings}) > 1]
        align = {"method": ":--", "normalization": ":--"}
        lines = [
            "| rank | " + " | ".join([*keys, self.metric]) + " |",
            "|" + "|".join(["--:", *(align.get(k, "--:") for k in keys), "--:"]) + "|",
        ]
        for i, row in enumerate(shown, 1):
            cells = [str(i), *(fmt(row.get(k)) for k in keys), f"{row[self.metric]:.{digits}f}"]
            lines.append("| " + " | ".join(cells) + " |")
        best = ", ".join(f"{k}={fmt(v)}" for k, v in self.best.items())
        shown_note = f" (top {len(shown)} shown)" if len(shown) < len(rows) else ""
        summary = (
            f"best of {len(self.settings)} settings{shown_note} on {len(self.query_ids)} queries: "
            f"{best} -> {self.metric} {self.best_score:.{digits}f}"
        )
        if self.cv is not None:
            summary += (
                f"\n{len(self.cv.folds)}-fold cross-validation: held-out {self.metric} "
                f"{self.cv.mean_score:.{digits}f} ± {self.cv.std_score:.{digits}f}"
            )
        if self.seconds:
            summary += "\n" + ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        return "\n".join([*lines, "", summary])

    def __str__(self) -> str:
        return self.to_markdown()


def _update_for(best: Mapping[str, Any]) -> dict[str, Any]:
    update = dict(best)
    if "alpha" in update:
        update["weights"] = None  # explicit weights would override the tuned alpha
    if "weights" in update:
        update["weights"] = None if update["weights"] is None else list(update["weights"])
    return update


def make_report(
    retriever: FusionRetriever,
    metric: str,
    settings: list[dict[str, Any]],
    per_query: NDArray[np.float64],
    query_ids: list[str],
    cv: int | None,
    seed: int,
    seconds: dict[str, float],
) -> TuningReport:
    """Pick the best setting (first on ties) and configure the retriever with it."""
    means = per_query.mean(axis=1)
    b = best_index(means)
    best = dict(settings[b])
    return TuningReport(
        metric=metric,
        settings=settings,
        scores=means,
        per_query=per_query,
        query_ids=query_ids,
        best=best,
        best_score=float(means[b]),
        retriever=retriever.model_copy(update=_update_for(best)),
        cv=cross_validate(per_query, settings, cv, seed) if cv is not None else None,
        seconds=seconds,
    )
