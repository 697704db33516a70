"""Validation of fusion weights."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray, as_float_array


def validate_weights(weights: ArrayLike, n: int) -> FloatArray:
    """Check one weight per retriever and return them as a float64 array.

    Weights must be finite, >= 0 and not all zero. They are returned as given, not rescaled:
    only their ratios matter for the ranking.

    Args:
        weights: One weight per retriever.
        n: The number of retrievers.

    Returns:
        A new float64 array of length ``n``.

    Raises:
        ValueError: If the length is not ``n``, a weight is negative, NaN or infinite, or all are
            zero.

    Example:
        >>> validate_weights([0.7, 0.3], 2)
        array([0.7, 0.3])
        >>> validate_weights([1.0, -1.0], 2)
        Traceback (most recent call last):
        ...
        ValueError: weights must be finite and >= 0, got [1.0, -1.0]

    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of retrievers), got {n!r}")
    array = np.array(as_float_array(weights, "weights", 1), dtype=np.float64, copy=True)
    if array.size != n:
        raise ValueError(
            f"weights must have one value per retriever ({n}), got {array.size}: {array.tolist()}"
        )
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise ValueError(f"weights must be finite and >= 0, got {array.tolist()}")
    if not array.any():
        raise ValueError(f"weights must not all be zero, got {array.tolist()}")
    return array


def alpha_to_weights(alpha: float) -> tuple[float, float]:
    """Turn a vector/keyword balance ``alpha`` into the weights ``(alpha, 1 - alpha)``.

    The fused score is ``alpha * vector + (1 - alpha) * keyword``: ``alpha=1`` is pure vector
    search, ``alpha=0`` pure keyword search.

    Args:
        alpha: The weight of the vector retriever, in [0, 1].

    Returns:
        ``(vector_weight, keyword_weight)``.

    Raises:
        TypeError: If ``alpha`` is not a real number.
        ValueError: If ``alpha`` is outside [0, 1] or NaN.

    Example:
        >>> alpha_to_weights(0.75)
        (0.75, 0.25)
        >>> alpha_to_weights(1.5)
        Traceback (most recent call last):
        ...
        ValueError: alpha must be in [0, 1], got 1.5

    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a number in [0, 1], got {alpha!r}")
    value = float(alpha)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {value}")
    return value, 1.0 - value
