"""Convex combination (weighted sum) of normalized scores."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.fusion._common import FloatArray, as_float_array, check_no_inf
from langchain_fusion.fusion.weights import validate_weights


def convex_fusion(
    normalized: ArrayLike, weights: ArrayLike, *, missing: float | str = 0.0
) -> FloatArray:
    """Fuse normalized scores by a weighted sum: ``sum_i weights[i] * normalized[i]``.

    With the weights ``(alpha, 1 - alpha)`` this is the convex combination
    ``alpha * vector + (1 - alpha) * keyword``.

    Args:
        normalized: Shape ``(n_retrievers, n_candidates)``: each retriever's normalized scores
            for the same candidates, NaN where a retriever has no score for a candidate.
        weights: One weight per retriever (see [`validate_weights`][]).
        missing: What a NaN contributes: a number (default 0.0, the convention of ranx's
            ``wsum``: a document a run did not retrieve scores 0 after normalization), or
            ``"min"``: the lowest finite score of that retriever's row, i.e. "as good as the
            worst document it did score". A row with no finite score contributes 0.0.

    Returns:
        A new float64 array of shape ``(n_candidates,)``.

    Raises:
        ValueError: If ``normalized`` is not 2-D or holds +/-inf, ``weights`` are invalid or
            ``missing`` is neither a finite number nor ``"min"``.

    Example:
        >>> nan = float("nan")
        >>> vector = [1.0, 0.5, nan]
        >>> keyword = [0.0, 1.0, 0.5]
        >>> convex_fusion([vector, keyword], [0.5, 0.5])
        array([0.5 , 0.75, 0.25])
        >>> convex_fusion([vector, keyword], [0.5, 0.5], missing="min")
        array([0.5 , 0.75, 0.5 ])

    """
    matrix = as_float_array(normalized, "normalized", 2)
    if matrix.shape[0] == 0:
        raise ValueError(f"normalized must have one row per retriever, got shape {matrix.shape}")
    weight_array = validate_weights(weights, matrix.shape[0])
    scored = np.isfinite(matrix)
    complete = bool(scored.all())
    fill = _fill_values(matrix, scored, complete, missing)
    if not complete:
        check_no_inf(matrix, "normalized")
        matrix = np.where(scored, matrix, fill[:, np.newaxis])
    result: FloatArray = weight_array @ matrix
    return result


def _fill_values(
    matrix: FloatArray, scored: NDArray[np.bool_], complete: bool, missing: float | str
) -> FloatArray:
    """Validate ``missing`` and return the value that replaces each row's NaNs."""
    if isinstance(missing, str):
        if missing != "min":
            raise ValueError(f"missing must be a finite number or 'min', got {missing!r}")
        if complete:
            return np.zeros(matrix.shape[0])
        lowest = np.min(np.where(scored, matrix, np.inf), axis=1)
        return np.where(np.isfinite(lowest), lowest, 0.0)  # an all-NaN row contributes 0
    if (
        isinstance(missing, bool)
        or not isinstance(missing, numbers.Real)
        or not math.isfinite(missing)
    ):
        raise ValueError(f"missing must be a finite number or 'min', got {missing!r}")
    return np.full(matrix.shape[0], float(missing))
