"""Dispatch to a score normalization by name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray, as_scores
from langchain_fusion.fusion.dbsf import dbsf
from langchain_fusion.fusion.methods import NORMALIZATION_NAMES, Normalization
from langchain_fusion.fusion.minmax import minmax
from langchain_fusion.fusion.zscore import zscore


def _identity(scores: ArrayLike) -> FloatArray:
    array, _ = as_scores(scores)
    return np.array(array, dtype=np.float64, copy=True)


_FUNCTIONS: dict[Normalization, Callable[[ArrayLike], FloatArray]] = {
    Normalization.MINMAX: minmax,
    Normalization.ZSCORE: zscore,
    Normalization.DBSF: dbsf,
    Normalization.NONE: _identity,
}
_METHODS: dict[str, Callable[[ArrayLike], FloatArray]] = {
    n.value: _FUNCTIONS[n] for n in Normalization
}

NORMALIZATIONS: tuple[str, ...] = NORMALIZATION_NAMES
"""The names accepted by [`normalize`][]: ``("minmax", "zscore", "dbsf", "none")``."""


def normalize(scores: ArrayLike, method: str) -> FloatArray:
    """Normalize one retriever's scores with the named method.

    Args:
        scores: 1-D scores, higher is better; NaN for "no score" (kept NaN).
        method: One of [`NORMALIZATIONS`][]: ``"minmax"`` ([`minmax`][]), ``"zscore"``
            ([`zscore`][]), ``"dbsf"`` ([`dbsf`][]) or ``"none"`` (a float64 copy).

    Returns:
        A new float64 array of the same length.

    Raises:
        ValueError: If ``method`` is unknown, or ``scores`` is not 1-D or holds +/-inf.

    Example:
        >>> normalize([10.0, 20.0, 15.0], "minmax")
        array([0. , 1. , 0.5])
        >>> normalize([10.0, 20.0], "none")
        array([10., 20.])
        >>> normalize([1.0], "l2")
        Traceback (most recent call last):
        ...
        ValueError: method must be one of 'minmax', 'zscore', 'dbsf', 'none', got 'l2'

    """
    function = _METHODS.get(method) if isinstance(method, str) else None
    if function is None:
        allowed = ", ".join(repr(name) for name in NORMALIZATIONS)
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return function(scores)
