"""Tuning grids: the default search, and a grid expanded into concrete fusion settings.

A grid is ``{setting: [values]}`` over `GRID_KEYS` (the `FusionSpec` fields a tuner can vary
from cached candidates); every value is checked by `FusionSpec`'s own validation. A setting is
a plain dict (``{"method": "convex", "normalization": "minmax", "alpha": 0.3, "fetch_k":
100}``), as shown in reports and applied with ``retriever.model_copy(update=...)``.

Example:
    >>> simplex_grid(2, 0.5)
    [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]

"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from itertools import product
from typing import Any

from langchain_fusion.evaluation.checks import check_int as _check_int
from langchain_fusion.fusion import (
    GRID_KEYS,
    METHOD_CHOICES,
    NORMALIZATION_NAMES,
    FusionMethod,
    FusionSpec,
    Normalization,
    parse_method,
    parse_normalization,
    validate_weights,
)
from langchain_fusion.retriever import FusionRetriever

__all__ = [
    "BM25_KEYS",
    "DEFAULT_ALPHAS",
    "DEFAULT_NORMALIZATIONS",
    "DEFAULT_RRF_K",
    "GRID_KEYS",
    "expand_grid",
    "simplex_grid",
]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
"""The default alpha grid: 0.0, 0.05, ..., 1.0 (21 points)."""
DEFAULT_NORMALIZATIONS: tuple[str, ...] = tuple(
    n.value for n in Normalization if n is not Normalization.NONE
)
"""Normalizations searched by default for the convex method: min-max, z-score, DBSF."""
DEFAULT_RRF_K: tuple[float, ...] = (10, 20, 40, 60, 100)
"""RRF constants searched by default."""
BM25_KEYS: tuple[str, ...] = ("k1", "b")
"""The BM25 parameters `tune_bm25` may vary (not fusion settings: they change the retrieval)."""

_METHODS: tuple[str, ...] = tuple(m.value for m in FusionMethod)


def simplex_grid(n: int, step: float = 0.1) -> list[tuple[float, ...]]:
    """All weight vectors of ``n`` non-negative multiples of ``step`` that sum to 1.

    Args:
        n: Number of retrievers, >= 1.
        step: Grid spacing; ``1 / step`` must be a whole number.

    Returns:
        The weight vectors, in lexicographic order (weights not all zero by construction).

    Raises:
        ValueError: If ``n < 1`` or ``1 / step`` is not a positive whole number.

    Example:
        >>> simplex_grid(3, 0.5)
        [(0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.0, 1.0, 0.0), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)]
        >>> len(simplex_grid(3, 0.1))
        66

    """  # noqa: E501
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (number of retrievers), got {n!r}")
    steps = 1.0 / step if isinstance(step, numbers.Real) and step > 0 else math.nan
    if not math.isfinite(steps) or abs(steps - round(steps)) > 1e-9 or step > 1:
        raise ValueError(
            f"step must divide 1 into a whole number of parts (e.g. 0.1), got {step!r}"
        )
    m = round(steps)

    def compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
        if parts == 1:
            yield (total,)
            return
        for first in range(total + 1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    return [tuple(round(c / m, 10) for c in combo) for combo in compositions(m, int(n))]


def fmt(value: Any) -> str:
    """Format a setting value for tables (``0.5``, ``(0.2, 0.8)``, ``-`` for None).

    Example:
        >>> fmt(0.50), fmt((0.2, 0.8)), fmt(None)
        ('0.5', '(0.2, 0.8)', '-')

    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return str(value)


def as_list(key: str, values: Any) -> list[Any]:
    """Return a grid entry as a non-empty list (a single value becomes a one-item list)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    out = list(values)
    if not out:
        raise ValueError(f"grid[{key!r}] is empty; give at least one value")
    return out


_RULES = {
    "method": f"one of {', '.join(METHOD_CHOICES)}",
    "normalization": f"one of {', '.join(NORMALIZATION_NAMES)}",
    "alpha": "numbers in [0, 1]",
    "rrf_k": "finite numbers >= 0",
}


def _values(key: str, values: Any) -> list[Any]:
    """Check each value of ``grid[key]`` with `FusionSpec`'s validation; return them as used."""
    out: list[Any] = []
    for value in as_list(key, values):
        try:
            if key == "method":
                method, implied = parse_method(value)
                out.append((method.value, None if implied is None else implied.value))
            elif key == "normalization":
                out.append(parse_normalization(value).value)
            else:
                checked = getattr(FusionSpec().with_overrides(**{key: value}), key)
                is_int = key == "rrf_k" and float(checked).is_integer()
                out.append(int(checked) if is_int else float(checked))
        except ValueError:
            raise ValueError(f"grid[{key!r}] values must be {_RULES[key]}, got {value!r}") from None
    return out


def _default_grid(retriever: FusionRetriever, depth: int | None, cutoff: int) -> dict[str, Any]:
    n_src = len(retriever.sources)
    base = depth if depth is not None else retriever.fetch_k
    # largest first: on a tie the retriever's own fetch_k wins
    windows = sorted({max(cutoff, base // 4), max(cutoff, base // 2), base}, reverse=True)
    grid: dict[str, Any] = {
        "method": list(_METHODS),
        "normalization": list(DEFAULT_NORMALIZATIONS),
        "rrf_k": list(DEFAULT_RRF_K),
        "fetch_k": [w for w in windows if w <= base],
    }
    if n_src == 2:
        grid["alpha"] = list(DEFAULT_ALPHAS)
    else:
        grid["weights"] = simplex_grid(n_src, 0.1 if n_src <= 3 else 0.25)
    return grid


def _check_keys(grid: Any, n_src: int) -> None:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping {{setting: [values]}}, got {type(grid).__name__}")
    if not grid:
        raise ValueError(
            f"grid is empty; give at least one setting to search among {list(GRID_KEYS)} "
            "(or grid=None for the default search)"
        )
    unknown = [k for k in grid if k not in GRID_KEYS]
    if unknown:
        raise ValueError(f"grid has unknown setting(s) {unknown}; valid keys are {list(GRID_KEYS)}")
    if "alpha" in grid and "weights" in grid:
        raise ValueError("grid must vary either 'alpha' or 'weights', not both")
    if "alpha" in grid and n_src != 2:
        raise ValueError(
            f"grid['alpha'] needs exactly two retrievers (vector, keyword); this retriever fuses "
            f"{n_src}: vary grid['weights'] instead (e.g. simplex_grid({n_src}))"
        )


def _mixes(retriever: FusionRetriever, grid: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Return the ``("alpha", a)`` or ``("weights", w)`` choices of the grid."""
    n_src = len(retriever.sources)
    if "weights" in grid:
        mixes: list[tuple[str, Any]] = []
        for w in as_list("weights", grid["weights"]):
            try:
                checked = validate_weights(w, n_src)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"grid['weights'] has an invalid entry {w!r}: {exc}") from None
            mixes.append(("weights", tuple(float(x) for x in checked)))
        return mixes
    if "alpha" in grid or (n_src == 2 and retriever.weights is None):
        return [("alpha", a) for a in _values("alpha", grid.get("alpha", [retriever.alpha]))]
    current = retriever.weights if retriever.weights is not None else [1.0] * n_src
    return [("weights", tuple(float(x) for x in current))]


def expand_grid(
    retriever: FusionRetriever, grid: Mapping[str, Any] | None, depth: int | None, cutoff: int
) -> tuple[list[dict[str, Any]], int]:
    """Expand a grid into concrete settings; return them and the depth to gather at.

    Keys the grid leaves out keep the retriever's value; ``grid=None`` is the default search.
    Settings come in grid order (method, fetch_k, alpha/weights, then normalization or rrf_k),
    without duplicates.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["a"], DeterministicFakeEmbedding(size=8))
        >>> expand_grid(r, {"method": ["rrf"], "alpha": [0.5]}, None, 10)
        ([{'method': 'rrf', 'rrf_k': 60, 'alpha': 0.5, 'fetch_k': 100}], 100)

    """
    n_src = len(retriever.sources)
    if grid is None:
        grid = _default_grid(retriever, depth, cutoff)
    _check_keys(grid, n_src)
    methods = _values("method", grid.get("method", [retriever.method]))
    norms = _values("normalization", grid.get("normalization", [retriever.normalization]))
    rrf_ks = _values("rrf_k", grid.get("rrf_k", [retriever.rrf_k]))
    mixes = _mixes(retriever, grid)
    fetch_ks = [
        _check_int("grid['fetch_k'] values", v)
        for v in as_list("fetch_k", grid.get("fetch_k", [depth or retriever.fetch_k]))
    ]
    gather_depth = depth if depth is not None else max(fetch_ks)
    too_deep = [f for f in fetch_ks if f > gather_depth]
    if too_deep:
        raise ValueError(
            f"grid['fetch_k'] values {too_deep} exceed fetch_k={gather_depth}, the depth the "
            "candidates are gathered at; raise fetch_k or drop those values"
        )
    settings: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for (method, forced_norm), fk, (mix_key, mix) in product(methods, fetch_ks, mixes):
        variants: list[dict[str, Any]]
        if method == FusionMethod.CONVEX.value:
            use = [forced_norm] if forced_norm is not None else norms
            variants = [{"method": method, "normalization": n} for n in use]
        else:
            variants = [{"method": method, "rrf_k": k} for k in rrf_ks]
        for v in variants:
            s = {**v, mix_key: mix, "fetch_k": fk}
            key = tuple(sorted(s.items()))
            if key not in seen:
                seen.add(key)
                settings.append(s)
    return settings, gather_depth
