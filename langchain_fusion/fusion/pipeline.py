"""The fusion operation: a candidate pool and one or many `FusionSpec` in, fused orders out.

This is the only implementation of fusion in the package. `FusionRetriever` calls `fuse` for
each query (full breakdown: fused scores, normalized scores, ranks); the tuner and the adaptive
retriever call `fuse_many`, which fuses a pool under many specs at once: specs that differ only
in their weights (an ``alpha`` sweep) share one normalization and one matrix of scores, so a
21-point sweep costs little more than one fusion.

Per retriever (row of the pool): a retriever with scores contributes its raw scores, ranked
among all candidates (for RRF only with ``complete_scoring=True``; otherwise its own ranks);
a rank-only retriever contributes ``1 / (rrf_k + rank)`` pseudo-scores and its own ranks.
Convex: normalize each row, replace a missing score by the row's lowest (``missing="min"``) or
a number, weighted sum. RRF: ``sum_i w_i / (rrf_k + rank_i)``. Ties go to the candidate the
weighted retrievers found higher in their own lists (weighted RRF over their own ranks), then
to the lower position.

Example:
    >>> import numpy as np
    >>> from langchain_fusion.fusion import FusionSpec, fuse, fuse_many
    >>> pool = Pool(raw=np.array([[0.9, 0.5, np.nan], [np.nan, 2.0, 7.0]]),
    ...             found_rank=np.array([[1, 2, 0], [0, 2, 1]]),
    ...             has_scores=np.array([True, True]))
    >>> fuse(pool, FusionSpec(alpha=0.5)).order.tolist()  # 0 and 2 tie: each side's best
    [0, 2, 1]
    >>> fuse_many(pool, [FusionSpec(alpha=a) for a in (0.0, 1.0)]).tolist()
    [[2, 1, 0], [0, 1, 2]]

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.fusion._common import FloatArray, IntArray
from langchain_fusion.fusion.methods import FusionMethod
from langchain_fusion.fusion.normalization import normalize
from langchain_fusion.fusion.ranks import ranks_from_scores
from langchain_fusion.fusion.spec import FusionSpec

__all__ = ["FusedResult", "Pool", "ScoredPool", "SpecBatch", "fuse", "fuse_many"]


class ScoredPool(Protocol):
    """What fusion reads from a candidate pool (`CandidatePool` and `Pool` are two).

    Example:
        >>> import numpy as np
        >>> pool: ScoredPool = Pool(np.ones((1, 2)), np.array([[1, 2]]), np.array([True]))
        >>> pool.found_rank.tolist()
        [[1, 2]]

    """

    @property
    def raw(self) -> NDArray[np.float64]:
        """Raw scores, ``(n_retrievers, n_candidates)``, NaN = no score."""

    @property
    def found_rank(self) -> NDArray[np.int64]:
        """Each retriever's own rank of each candidate (1 = best, 0 = not in its list)."""

    @property
    def has_scores(self) -> NDArray[np.bool_]:
        """Per retriever, whether it returns scores (False = rank only)."""


@dataclass
class Pool:
    """A bare `ScoredPool` (arrays only), for fusing scores that did not come from a retriever.

    Example:
        >>> import numpy as np
        >>> Pool(np.zeros((2, 3)), np.ones((2, 3), dtype=np.int64), np.ones(2, bool)).raw.shape
        (2, 3)

    """

    raw: NDArray[np.float64]
    found_rank: NDArray[np.int64]
    has_scores: NDArray[np.bool_]


@dataclass
class FusedResult:
    """A pool fused with one spec: the order and each retriever's part in it.

    Attributes:
        order: Candidate positions, best first.
        fused: Fused score of each candidate.
        normalized: ``(n_retrievers, n_candidates)`` normalized scores (convex; NaN = none;
            all NaN for RRF).
        ranks: ``(n_retrievers, n_candidates)`` ranks the fusion used (0 = none).
        weights: The weight of each retriever.

    Example:
        >>> import numpy as np
        >>> pool = Pool(np.array([[0.2, 0.8], [5.0, 1.0]]), np.array([[2, 1], [1, 2]]),
        ...             np.array([True, True]))
        >>> res = fuse(pool, FusionSpec(alpha=0.25))
        >>> res.order.tolist(), res.fused.tolist(), res.weights.tolist()
        ([0, 1], [0.75, 0.25], [0.25, 0.75])

    """

    order: NDArray[np.intp]
    fused: NDArray[np.float64]
    normalized: NDArray[np.float64]
    ranks: NDArray[np.int64]
    weights: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


@dataclass
class SpecBatch:
    """Specs grouped for `fuse_many`: one group per fusion (`FusionSpec.fusion_key`).

    Build it once with `SpecBatch.of` when the same specs fuse many pools (tuning).

    Attributes:
        size: Number of specs.
        groups: ``(representative spec, rows of the specs, their weights (rows, n_sources))``.

    Example:
        >>> batch = SpecBatch.of([FusionSpec(alpha=a) for a in (0.0, 0.5, 1.0)], 2)
        >>> batch.size, len(batch.groups)
        (3, 1)

    """

    size: int
    groups: list[tuple[FusionSpec, NDArray[np.intp], FloatArray]]

    @classmethod
    def of(cls, specs: Sequence[FusionSpec], n_sources: int) -> SpecBatch:
        """Group ``specs`` and resolve their weights for ``n_sources`` retrievers."""
        rows: dict[tuple[object, ...], list[int]] = {}
        for i, spec in enumerate(specs):
            rows.setdefault(spec.fusion_key(), []).append(i)
        groups = []
        for members in rows.values():
            weights = np.vstack([specs[i].weights_for(n_sources) for i in members])
            groups.append((specs[members[0]], np.array(members, dtype=np.intp), weights))
        return cls(len(specs), groups)


def _inputs(pool: ScoredPool, spec: FusionSpec) -> tuple[FloatArray, IntArray]:
    """Per retriever: the scores to normalize and the ranks RRF uses."""
    n_src, n = pool.raw.shape
    rrf_k = spec.rrf_k
    use_scores = spec.rank_by_complete_scores or spec.method is FusionMethod.CONVEX
    scores = np.empty((n_src, n))
    ranks = np.zeros((n_src, n), dtype=np.int64)
    for i in range(n_src):
        if pool.has_scores[i]:
            scores[i] = pool.raw[i]
            ranks[i] = ranks_from_scores(pool.raw[i]) if use_scores else pool.found_rank[i]
        else:  # rank-only retriever: reciprocal-rank pseudo-scores
            found = pool.found_rank[i]
            scores[i] = np.nan
            np.divide(1.0, rrf_k + found, out=scores[i], where=found > 0)
            ranks[i] = found
    return scores, ranks


def _rrf(ranks: NDArray[np.int64], weights: FloatArray, rrf_k: float) -> FloatArray:
    """Weighted RRF of ``ranks`` for each row of ``weights``: shape ``(n_weights, n)``."""
    n_src, n = ranks.shape
    out = np.zeros((weights.shape[0], n_src, n))
    hit = np.broadcast_to(ranks > 0, out.shape)
    num = np.broadcast_to(weights[:, :, None], out.shape)
    np.divide(num, rrf_k + np.broadcast_to(ranks, out.shape), out=out, where=hit)
    total: FloatArray = out[:, 0].copy()
    for i in range(1, n_src):
        total += out[:, i]
    return total


def _convex(
    scores: FloatArray, spec: FusionSpec, weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Return the normalized scores (NaN kept) and their weighted sums, one row per weights."""
    n_src = scores.shape[0]
    normalized = np.vstack([normalize(scores[i], spec.normalization.value) for i in range(n_src)])
    filled = normalized
    scored = np.isfinite(normalized)
    if not scored.all():
        if spec.missing == "min":
            lowest = np.min(np.where(scored, normalized, np.inf), axis=1)
            fill = np.where(np.isfinite(lowest), lowest, 0.0)  # a row without scores adds 0
        else:
            fill = np.full(n_src, float(spec.missing))
        filled = np.where(scored, normalized, fill[:, np.newaxis])
    fused = np.vstack([w @ filled for w in weights])
    return fused, normalized


def _fuse_group(
    pool: ScoredPool, spec: FusionSpec, weights: FloatArray
) -> tuple[NDArray[np.intp], FloatArray, FloatArray, IntArray]:
    """Fuse ``pool`` with ``spec``'s method under each row of ``weights``.

    Returns ``(orders, fused, normalized, ranks)``, the first two with one row per weights row.
    """
    scores, ranks = _inputs(pool, spec)
    if spec.method is FusionMethod.RRF:
        fused = _rrf(ranks, weights, spec.rrf_k)
        normalized = np.full(scores.shape, np.nan)
    else:
        fused, normalized = _convex(scores, spec, weights)
    tiebreak = _rrf(pool.found_rank, weights, spec.rrf_k)
    orders = np.lexsort((-tiebreak, -fused), axis=-1).astype(np.intp)
    return orders, fused, normalized, ranks


def fuse(pool: ScoredPool, spec: FusionSpec) -> FusedResult:
    """Fuse one pool with one spec, keeping every retriever's part (for ``metadata["fusion"]``).

    Args:
        pool: The candidates (`CandidatePool`, or a `Pool` of arrays).
        spec: The settings (weights resolved for the pool's number of retrievers).

    Returns:
        A `FusedResult`.

    Raises:
        ValueError: If the spec's weights do not fit the pool's retrievers.

    Example:
        >>> import numpy as np
        >>> pool = Pool(np.array([[0.2, 0.8]]), np.array([[2, 1]]), np.array([True]))
        >>> fuse(pool, FusionSpec()).order.tolist()
        [1, 0]

    """
    n_src, n = pool.raw.shape
    weights = spec.weights_for(n_src)
    if n == 0:
        empty = np.empty((n_src, 0))
        return FusedResult(
            np.empty(0, dtype=np.intp), np.empty(0), empty, empty.astype(np.int64), weights
        )
    orders, fused, normalized, ranks = _fuse_group(pool, spec, weights[np.newaxis, :])
    return FusedResult(orders[0], fused[0], normalized, ranks, weights)


def fuse_many(pool: ScoredPool, specs: Sequence[FusionSpec] | SpecBatch) -> NDArray[np.intp]:
    """Fuse one pool under many specs at once; return the orders, one row per spec.

    Specs that differ only in ``alpha`` / ``weights`` are fused together (one normalization,
    one matrix product), so sweeping weights is cheap. Each row equals ``fuse(pool, spec).order``.

    Args:
        pool: The candidates.
        specs: The settings, or a `SpecBatch` of them (group once, fuse many pools).

    Returns:
        An ``(n_specs, n_candidates)`` array of candidate positions, best first.

    Example:
        >>> import numpy as np
        >>> pool = Pool(np.array([[0.2, 0.8], [3.0, 1.0]]), np.array([[2, 1], [1, 2]]),
        ...             np.array([True, True]))
        >>> fuse_many(pool, [FusionSpec(alpha=0.9), FusionSpec(method="rrf", alpha=0.1)]).tolist()
        [[1, 0], [0, 1]]

    """
    n_src, n = pool.raw.shape
    batch = specs if isinstance(specs, SpecBatch) else SpecBatch.of(specs, n_src)
    out = np.empty((batch.size, n), dtype=np.intp)
    if n == 0:
        return out
    for spec, rows, weights in batch.groups:
        out[rows] = _fuse_group(pool, spec, weights)[0]
    return out
