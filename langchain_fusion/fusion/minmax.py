"""Min-max normalization."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray, as_scores, unit_scale


def minmax(scores: ArrayLike) -> FloatArray:
    """Rescale scores linearly so that the lowest becomes 0 and the highest 1.

    ``(s - min) / (max - min)``, with ``min`` and ``max`` taken over the finite scores. NaN means
    "no score": it is ignored by the statistics and stays NaN. When every finite score is equal
    (including a single score) they all map to 1.0: equally good, and all as good as the best.

    Args:
        scores: 1-D scores, higher is better; NaN for "no score".

    Returns:
        A new float64 array of the same length, values in [0, 1] (or NaN).

    Raises:
        ValueError: If ``scores`` is not 1-D or holds +/-inf.

    Example:
        >>> minmax([2.0, 4.0, 3.0, float("nan")])
        array([0. , 1. , 0.5, nan])
        >>> minmax([7.0, 7.0])
        array([1., 1.])

    """
    array, finite = as_scores(scores)
    if finite.size == 0:  # empty, or no score at all
        return np.full(array.shape, np.nan)
    low, high = finite.min(), finite.max()
    if low == high:
        result: FloatArray = np.where(np.isnan(array), np.nan, 1.0)
    else:
        result = unit_scale(array, low, high)
    return result
