"""Weighted Reciprocal Rank Fusion."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from langchain_fusion.fusion._common import FloatArray
from langchain_fusion.fusion.weights import validate_weights


def rrf_fusion(ranks: ArrayLike, weights: ArrayLike, *, k: float = 60) -> FloatArray:
    """Fuse rankings by weighted Reciprocal Rank Fusion: ``sum_i weights[i] / (k + ranks[i])``.

    Reciprocal Rank Fusion (Cormack, Clarke and Buettcher, SIGIR 2009) uses only the positions
    of a candidate in each ranking, so it needs no score normalization. ``k`` damps the head
    of the rankings: the larger it is, the more a candidate found by several retrievers beats
    one ranked first by a single retriever. With all weights 1 it equals ranx's ``rrf``.

    Args:
        ranks: Integer array of shape ``(n_retrievers, n_candidates)``: the rank of each
            candidate in each retriever's results, 1 = best, 0 = not retrieved (contributes 0).
        weights: One weight per retriever (see [`validate_weights`][]).
        k: The RRF constant, a finite number >= 0 (default 60, as in the paper).

    Returns:
        A new float64 array of shape ``(n_candidates,)``.

    Raises:
        TypeError: If ``ranks`` is not an integer array.
        ValueError: If ``ranks`` is not 2-D or has a negative rank, ``weights`` are invalid or
            ``k`` is not a finite number >= 0.

    Example:
        >>> rrf_fusion([[1, 2, 0], [2, 0, 1]], [1.0, 1.0], k=1)  # 1/2+1/3, 1/3, 1/2
        array([0.83333333, 0.33333333, 0.5       ])

    """
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (math.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    k = float(k)
    rank_array = np.asarray(ranks)
    if rank_array.size == 0 and rank_array.dtype == np.float64:
        rank_array = rank_array.astype(np.int64)  # an empty list carries no dtype
    if not np.issubdtype(rank_array.dtype, np.integer):
        raise TypeError(f"ranks must be an integer array, got dtype {rank_array.dtype}")
    if rank_array.ndim != 2:
        raise ValueError(f"ranks must be a 2-D array, got shape {rank_array.shape}")
    if rank_array.shape[0] == 0:
        raise ValueError(f"ranks must have one row per retriever, got shape {rank_array.shape}")
    if (rank_array < 0).any():
        raise ValueError(
            f"ranks must be >= 0 (1 = best, 0 = not retrieved), got {rank_array.min()}"
        )
    weight_array = validate_weights(weights, rank_array.shape[0])
    retrieved = rank_array > 0
    contributions = np.zeros(rank_array.shape)
    rows = np.broadcast_to(weight_array[:, np.newaxis], rank_array.shape)
    np.divide(rows, k + rank_array, out=contributions, where=retrieved)
    result: FloatArray = contributions.sum(axis=0)
    return result
