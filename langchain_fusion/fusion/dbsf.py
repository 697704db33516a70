"""Distribution-based score fusion (DBSF) normalization."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray, as_scores, unit_scale


def dbsf(scores: ArrayLike) -> FloatArray:
    """Normalize scores by their distribution: map ``mean -/+ 3 std`` to 0 and 1.

    ``(s - lower) / (upper - lower)`` with ``lower = mean - 3 * std`` and
    ``upper = mean + 3 * std``, clipped to [0, 1]. This is the normalization of Qdrant's
    Distribution-Based Score Fusion (``Fusion.DBSF``). As in Qdrant, ``std`` is the *sample*
    standard deviation (``ddof=1``). Unlike Qdrant, the result is clipped to [0, 1], so that it
    combines like min-max scores: an outlier beyond three standard deviations counts as 1 (or 0)
    and cannot dominate the fusion. Qdrant maps constant input to 0.5; here, as for
    [`minmax`][langchain_fusion.fusion.minmax.minmax], every finite score equal (including a
    single score) maps to 1.0.

    NaN means "no score": it is ignored by the statistics and stays NaN.

    Args:
        scores: 1-D scores, higher is better; NaN for "no score".

    Returns:
        A new float64 array of the same length, values in [0, 1] (or NaN).

    Raises:
        ValueError: If ``scores`` is not 1-D or holds +/-inf.

    Example:
        >>> dbsf([1.0, 2.0, 3.0, float("nan")])  # mean 2, sample std 1: [-1, 5] -> [0, 1]
        array([0.33333333, 0.5       , 0.66666667,        nan])
        >>> dbsf([4.0, 4.0])
        array([1., 1.])

    """
    array, finite = as_scores(scores)
    if finite.size == 0:  # empty, or no score at all
        return np.full(array.shape, np.nan)
    low, high = finite.min(), finite.max()
    if low == high:
        result: FloatArray = np.where(np.isnan(array), np.nan, 1.0)
    else:
        # (s - (mean - 3 std)) / (6 std) = 0.5 + (s - mean) / (6 std), computed on min-max
        # scaled scores (the formula is scale-free), which cannot overflow or underflow.
        unit = unit_scale(finite, low, high)
        result = 0.5 + (unit_scale(array, low, high) - unit.mean()) / (6.0 * unit.std(ddof=1))
        np.clip(result, 0.0, 1.0, out=result)
    return result
