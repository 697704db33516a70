"""Ranks from scores, and the top of a fused ranking."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.fusion._common import IntArray, as_float_array


def ranks_from_scores(scores: ArrayLike) -> IntArray:
    """Rank scores from best to worst: 1 = highest score, 0 = no score (NaN).

    Ties are broken by position: of two equal scores, the earlier one gets the better rank, so
    the ranks of the scored candidates are always ``1, 2, ..., n_scored``. ``+inf`` and ``-inf``
    rank first and last.

    Args:
        scores: 1-D scores, higher is better; NaN for "no score".

    Returns:
        An int64 array of the same length.

    Raises:
        ValueError: If ``scores`` is not 1-D.

    Example:
        >>> ranks_from_scores([0.2, 0.9, float("nan"), 0.2])
        array([2, 1, 0, 3])

    """
    array = as_float_array(scores, "scores", 1)
    order = top_k(array, array.size)  # best first, ties by position, NaN last
    ranks = np.empty(array.size, dtype=np.int64)
    ranks[order] = np.arange(1, array.size + 1)
    ranks[np.isnan(array)] = 0
    return ranks


def top_k(fused: ArrayLike, k: int) -> NDArray[np.intp]:
    """Return the indices of the ``k`` highest scores, best first.

    Ties keep their order of position (the lower index first), exactly as a stable sort of the
    whole array would, but in O(n + k log k) time: a partition finds the k-th best score, then
    only the candidates above it and the first ones equal to it are sorted. NaN ranks after
    every number.

    Args:
        fused: 1-D scores, higher is better.
        k: How many indices to return, an integer >= 0; all of them if ``k >= len(fused)``.

    Returns:
        An array of ``min(k, len(fused))`` indices into ``fused``.

    Raises:
        ValueError: If ``fused`` is not 1-D or ``k`` is not an integer >= 0.

    Example:
        >>> top_k([0.1, 0.7, 0.3, 0.7], 3)
        array([1, 3, 2])

    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    key = -as_float_array(fused, "fused", 1)  # ascending key, NaN last
    n = key.size
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if k >= n:
        return np.argsort(key, kind="stable")
    kth = np.partition(key, k - 1)[k - 1]
    if np.isnan(kth):  # fewer than k numbers: take them all, then the first NaNs
        nan = np.isnan(key)
        better, tied = np.flatnonzero(~nan), np.flatnonzero(nan)
    else:
        better, tied = np.flatnonzero(key < kth), np.flatnonzero(key == kth)
    chosen = np.concatenate([better, tied[: k - better.size]])
    # Equal keys lie within ``better`` or within ``tied``, each in index order: a stable sort
    # keeps ties by position.
    return chosen[np.argsort(key[chosen], kind="stable")]
