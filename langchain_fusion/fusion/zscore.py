"""Z-score (standard score) normalization."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray, as_scores, unit_scale


def zscore(scores: ArrayLike) -> FloatArray:
    """Standardize scores to zero mean and unit variance.

    ``(s - mean) / std`` with the *population* standard deviation (``ddof=0``, as ranx's
    ``zmuv`` normalization), both taken over the finite scores. NaN means "no score": it is
    ignored by the statistics and stays NaN. When every finite score is equal (including a single
    score) they all map to 0.0, the mean. The output is unbounded, centered on 0.

    Args:
        scores: 1-D scores, higher is better; NaN for "no score".

    Returns:
        A new float64 array of the same length.

    Raises:
        ValueError: If ``scores`` is not 1-D or holds +/-inf.

    Example:
        >>> zscore([1.0, 3.0, float("nan")])
        array([-1.,  1., nan])
        >>> zscore([5.0])
        array([0.])

    """
    array, finite = as_scores(scores)
    if finite.size == 0:  # empty, or no score at all
        return np.full(array.shape, np.nan)
    low, high = finite.min(), finite.max()
    if low == high:
        result: FloatArray = np.where(np.isnan(array), np.nan, 0.0)
    else:
        # z-scores are scale-free: compute them on min-max scaled scores, which cannot
        # overflow or underflow when squared.
        unit = unit_scale(finite, low, high)
        result = (unit_scale(array, low, high) - unit.mean()) / unit.std()
    return result
