"""Cross-validation of "pick the best setting": k folds over a ``(settings, queries)`` matrix.

Example:
    >>> best_index(np.array([0.2, 0.5, 0.5]))
    1

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.evaluation.checks import check_int

__all__ = ["CrossValidation", "Fold", "best_index", "cross_validate", "kfold"]


@dataclass
class Fold:
    """One cross-validation fold: the setting chosen on the other folds and its held-out score.

    Example:
        >>> Fold(best={"alpha": 0.3}, train_score=0.71, test_score=0.69, n_test=60).test_score
        0.69

    """

    best: dict[str, Any]
    train_score: float
    test_score: float
    n_test: int


@dataclass
class CrossValidation:
    """k-fold cross-validation of the tuning procedure.

    Attributes:
        folds: One `Fold` per split.
        mean_score: Mean held-out score of the per-fold best settings (the honest estimate of
            what tuning achieves on unseen queries).
        std_score: Standard deviation of the held-out fold scores.

    Example:
        >>> cv = CrossValidation([Fold({}, 0.8, 0.7, 5), Fold({}, 0.9, 0.6, 5)], 0.65, 0.05)
        >>> len(cv.folds), cv.mean_score
        (2, 0.65)

    """

    folds: list[Fold]
    mean_score: float
    std_score: float


def kfold(n: int, k: int, seed: int = 0) -> list[NDArray[np.intp]]:
    """Split ``range(n)`` into ``k`` shuffled, near-equal folds (deterministic for a seed).

    Example:
        >>> [sorted(f.tolist()) for f in kfold(5, 2, seed=0)]
        [[2, 3, 4], [0, 1]]

    """
    check_int("cv", k, 2)
    if k > n:
        raise ValueError(f"cv must be at most the number of judged queries ({n}), got {k}")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(f).astype(np.intp) for f in np.array_split(order, k)]


def best_index(mean_scores: NDArray[np.float64]) -> int:
    """Highest mean score; ties go to the first setting in grid order."""
    top = float(np.max(mean_scores))
    return int(np.flatnonzero(mean_scores >= top - 1e-12)[0])


def cross_validate(
    per_query: NDArray[np.float64], settings: Sequence[Mapping[str, Any]], k: int, seed: int = 0
) -> CrossValidation:
    """Cross-validate "pick the best setting" from a ``(settings, queries)`` score matrix.

    Example:
        >>> import numpy as np
        >>> scores = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
        >>> cv = cross_validate(scores, [{"alpha": 0.0}, {"alpha": 1.0}], k=2)
        >>> [f.best for f in cv.folds], cv.mean_score
        ([{'alpha': 0.0}, {'alpha': 0.0}], 0.75)

    """
    folds = kfold(per_query.shape[1], k, seed)
    out: list[Fold] = []
    for test in folds:
        train = np.setdiff1d(np.arange(per_query.shape[1]), test)
        train_means = per_query[:, train].mean(axis=1)
        b = best_index(train_means)
        out.append(
            Fold(
                dict(settings[b]),
                float(train_means[b]),
                float(per_query[b, test].mean()),
                int(test.size),
            )
        )
    held = np.array([f.test_score for f in out])
    return CrossValidation(out, float(held.mean()), float(held.std()))
