"""Input checks and helpers shared by the fusion functions (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def as_float_array(values: ArrayLike, name: str, ndim: int) -> FloatArray:
    """Convert ``values`` to a float64 array with ``ndim`` dimensions, or raise naming ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a {ndim}-D array of numbers, got {type(values).__name__}: {error}"
        ) from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    return array


def check_no_inf(array: FloatArray, name: str) -> None:
    """Raise if ``array`` holds +/-inf (NaN is allowed: it means "no score")."""
    infinite = np.isinf(array)
    if infinite.any():
        position = np.unravel_index(int(np.argmax(infinite)), array.shape)
        where = position[0] if len(position) == 1 else tuple(int(p) for p in position)
        raise ValueError(
            f"{name} must be finite numbers or NaN (no score), got {array[position]} at index "
            f"{where}"
        )


def as_scores(scores: ArrayLike, name: str = "scores") -> tuple[FloatArray, FloatArray]:
    """Validate a 1-D score array and return ``(array, finite_values)``."""
    array = as_float_array(scores, name, 1)
    finite = np.isfinite(array)
    if finite.all():
        return array, array
    check_no_inf(array, name)
    return array, array[finite]


def unit_scale(array: FloatArray, low: float, high: float) -> FloatArray:
    """Map ``[low, high]`` linearly onto ``[0, 1]`` (requires ``low < high``, both finite).

    Exact at both ends (0 and 1); statistics computed on the scaled values can neither overflow
    nor underflow, whatever the magnitude of the scores.
    """
    with np.errstate(over="ignore"):
        span = high - low
    if np.isinf(span):  # both ends near the float64 limit: halve everything first
        result: FloatArray = (array / 2 - low / 2) / (high / 2 - low / 2)
    else:
        result = (array - low) / span
    return result
