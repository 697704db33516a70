"""`FusionSpec`: every setting of one fusion, typed, frozen and validated in one place.

A spec says how to fuse a candidate pool (method, normalization, alpha or weights, RRF k, the
rule for missing scores), how many candidates to gather (``fetch_k``, ``complete_scoring``,
pseudo-relevance feedback) and what to return (``k``, ``max_per_source``). `FusionRetriever`
builds one per call, the tuner one per grid point; both hand it to
[`fuse`][langchain_fusion.fusion.fuse] / [`fuse_many`][langchain_fusion.fusion.fuse_many].

The option lists used elsewhere derive from the dataclass fields: `OPTION_NAMES` (per-call
options of the retriever), `GRID_KEYS` (what a tuning grid may vary) and `FEEDBACK_KEYS`.

Example:
    >>> spec = FusionSpec(method="zscore", alpha=0.3)
    >>> spec.method, spec.normalization, spec.weights_for(2).tolist()
    (<FusionMethod.CONVEX: 'convex'>, <Normalization.ZSCORE: 'zscore'>, [0.3, 0.7])
    >>> spec.with_overrides(weights=[1, 2]).alpha is None
    True
    >>> FusionSpec(alpha=True)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a number in [0, 1], got True

"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from langchain_fusion.fusion._common import FloatArray
from langchain_fusion.fusion.methods import (
    METHOD_CHOICES,
    METHOD_SHORTHANDS,
    NORMALIZATION_NAMES,
    FusionMethod,
    Normalization,
)
from langchain_fusion.fusion.weights import alpha_to_weights, validate_weights

__all__ = [
    "FEEDBACK_KEYS",
    "GRID_KEYS",
    "OPTION_NAMES",
    "FusionSpec",
    "check_feedback",
    "parse_method",
    "parse_normalization",
]


def check_feedback(docs: object, weight: object, n_terms: object) -> tuple[int, float, int]:
    """Validate the feedback settings; return ``(docs, weight, n_terms)``.

    Example:
        >>> check_feedback(3, 0.5, 20)
        (3, 0.5, 20)
        >>> check_feedback(-1, 0.5, 20)
        Traceback (most recent call last):
        ...
        ValueError: feedback_docs must be an integer >= 0 (0 = no feedback), got -1

    """
    if isinstance(docs, bool) or not isinstance(docs, (int, np.integer)) or docs < 0:
        raise ValueError(f"feedback_docs must be an integer >= 0 (0 = no feedback), got {docs!r}")
    if (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float, np.floating))
        or not 0.0 <= float(weight) <= 1.0
    ):
        raise ValueError(
            f"feedback_weight must be a number in [0, 1] (the share of the feedback documents "
            f"in the expanded query), got {weight!r}"
        )
    if isinstance(n_terms, bool) or not isinstance(n_terms, (int, np.integer)) or n_terms < 1:
        raise ValueError(f"feedback_terms must be an integer >= 1, got {n_terms!r}")
    return int(docs), float(weight), int(n_terms)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def parse_method(method: Any) -> tuple[FusionMethod, Normalization | None]:
    """Resolve a method name: ``(method, the normalization a convex shorthand implies)``.

    Raises:
        ValueError: If ``method`` is not one of `METHOD_CHOICES`.

    Example:
        >>> parse_method("zscore")
        (<FusionMethod.CONVEX: 'convex'>, <Normalization.ZSCORE: 'zscore'>)
        >>> parse_method("RRF")
        (<FusionMethod.RRF: 'rrf'>, None)

    """
    value = method.value if isinstance(method, (FusionMethod, Normalization)) else method
    name = value.lower() if isinstance(value, str) else value
    if name in METHOD_SHORTHANDS:
        return FusionMethod.CONVEX, Normalization(name)
    try:
        return FusionMethod(name), None
    except ValueError:
        allowed = ", ".join(METHOD_CHOICES)
        raise ValueError(f"method must be one of {allowed}; got {method!r}") from None


def parse_normalization(normalization: Any) -> Normalization:
    """Resolve a normalization name (case-insensitive).

    Raises:
        ValueError: If it is not one of `NORMALIZATION_NAMES`.

    Example:
        >>> parse_normalization("DBSF")
        <Normalization.DBSF: 'dbsf'>

    """
    value = normalization.value if isinstance(normalization, Normalization) else normalization
    try:
        return Normalization(value.lower() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(NORMALIZATION_NAMES)
        raise ValueError(f"normalization must be one of {allowed}; got {normalization!r}") from None


def _method(method: Any, normalization: Any) -> tuple[FusionMethod, Normalization]:
    """Resolve ``method`` (or a convex shorthand such as ``"zscore"``) and ``normalization``."""
    resolved, implied = parse_method(method)
    return resolved, implied if implied is not None else parse_normalization(normalization)


def _alpha(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"alpha must be a number in [0, 1], got {value!r}")
    return alpha_to_weights(float(value))[0]


def _no_boolean_weights(weights: Any) -> None:
    is_bool_array = isinstance(weights, np.ndarray) and weights.dtype == np.bool_
    items = weights if isinstance(weights, (list, tuple, np.ndarray)) else [weights]
    if is_bool_array or any(isinstance(w, (bool, np.bool_)) for w in items):
        raise ValueError(
            f"weights must be numbers, got {weights!r}: booleans are refused (write 1 or 0)"
        )


def _rrf_k(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"rrf_k must be a finite number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"rrf_k must be a finite number >= 0, got {value!r}")
    kept: float = value  # type: ignore[assignment]  # as given: 60 stays an int in reports
    return kept


def _missing(value: Any) -> float | str:
    if isinstance(value, str):
        if value != "min":
            raise ValueError(f"missing must be a finite number or 'min', got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"missing must be a finite number or 'min', got {value!r}")
    return float(value)


_GRID = {"grid": True}
_FEEDBACK = {"feedback": True}
_PER_CALL = {"per_call": True}


@dataclass(frozen=True)
class FusionSpec:
    """The settings of one fusion, validated when the spec is made (frozen afterwards).

    Build one with keyword arguments (strings are accepted for the enums) or derive one with
    `with_overrides`; an invalid value raises ``ValueError`` naming the option, here and only
    here. Booleans are refused for every numeric option (``alpha=True`` is not 1.0).

    Attributes:
        method: `FusionMethod` (``"convex"`` or ``"rrf"``); the shorthands ``"minmax"``,
            ``"zscore"`` and ``"dbsf"`` mean convex with that normalization.
        alpha: Weight of the vector side, in [0, 1] (two retrievers); ``None`` = not set
            (0.5 with two retrievers, equal weights otherwise).
        weights: One weight per retriever (instead of ``alpha``), finite, >= 0, not all zero.
        normalization: `Normalization` of the convex method.
        rrf_k: The RRF constant (also used for rank-only retrievers and tie-breaking).
        fetch_k: Candidates asked from each retriever (at least ``k`` are gathered).
        k: Number of documents returned.
        complete_scoring: Score candidates a retriever did not return with its real score
            (``None``: on for convex, off for RRF ranks; see `FusionRetriever`).
        missing: What a still-missing normalized score counts in the convex sum: ``"min"``
            (the retriever's lowest score among the candidates) or a number.
        max_per_source: At most this many results per source document (None = no cap).
        feedback_docs: Pseudo-relevance feedback documents (0 = off).
        feedback_weight: Share of the feedback documents in the expanded query.
        feedback_terms: Feedback terms added to the BM25 query.

    Example:
        >>> FusionSpec(method="rrf", rrf_k=20).with_overrides(k=3).k
        3
        >>> FusionSpec(fetch_k=2, k=5).depth
        5

    """

    method: FusionMethod = field(default=FusionMethod.CONVEX, metadata=_GRID | _PER_CALL)
    alpha: float | None = field(default=None, metadata=_GRID | _PER_CALL)
    weights: tuple[float, ...] | None = field(default=None, metadata=_GRID | _PER_CALL)
    normalization: Normalization = field(default=Normalization.MINMAX, metadata=_GRID | _PER_CALL)
    rrf_k: float = field(default=60.0, metadata=_GRID | _PER_CALL)
    fetch_k: int = field(default=100, metadata=_GRID | _PER_CALL)
    k: int = field(default=4, metadata=_PER_CALL)
    complete_scoring: bool | None = None
    missing: float | str = "min"
    max_per_source: int | None = field(default=None, metadata=_PER_CALL)
    feedback_docs: int = field(default=0, metadata=_FEEDBACK | _PER_CALL)
    feedback_weight: float = field(default=0.5, metadata=_FEEDBACK | _PER_CALL)
    feedback_terms: int = field(default=20, metadata=_FEEDBACK | _PER_CALL)

    def __post_init__(self) -> None:
        method, norm = _method(self.method, self.normalization)
        checked: dict[str, Any] = {
            "method": method,
            "normalization": norm,
            "alpha": _alpha(self.alpha),
            "rrf_k": _rrf_k(self.rrf_k),
            "k": _positive_int("k", self.k),
            "fetch_k": _positive_int("fetch_k", self.fetch_k),
            "missing": _missing(self.missing),
        }
        if self.weights is not None:
            _no_boolean_weights(self.weights)
            given = [self.weights] if isinstance(self.weights, numbers.Real) else self.weights
            n = len(given) if hasattr(given, "__len__") else 0
            checked["weights"] = tuple(float(w) for w in validate_weights(given, max(n, 1)))
        if checked["alpha"] is not None and self.weights is not None:
            raise ValueError("pass alpha (two retrievers) or weights=[...], not both")
        if self.complete_scoring is not None and not isinstance(self.complete_scoring, bool):
            raise ValueError(
                f"complete_scoring must be True, False or None, got {self.complete_scoring!r}"
            )
        if self.max_per_source is not None:
            checked["max_per_source"] = _positive_int("max_per_source", self.max_per_source)
        fb = check_feedback(self.feedback_docs, self.feedback_weight, self.feedback_terms)
        checked["feedback_docs"], checked["feedback_weight"], checked["feedback_terms"] = fb
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def with_overrides(self, **overrides: Any) -> FusionSpec:
        """Return a copy with some settings changed (validated like the constructor).

        Giving ``alpha`` clears ``weights`` and giving ``weights`` clears ``alpha``; both at
        once is an error.

        Raises:
            ValueError: On an unknown option or an invalid value.

        Example:
            >>> spec = FusionSpec(weights=(1.0, 1.0, 2.0))
            >>> spec.with_overrides(alpha=0.2).weights is None
            True
            >>> spec.with_overrides(alhpa=0.2)
            Traceback (most recent call last):
            ...
            ValueError: unknown option(s) ['alhpa']; fusion options are ['alpha', 'complete_scoring', 'feedback_docs', 'feedback_terms', 'feedback_weight', 'fetch_k', 'k', 'max_per_source', 'method', 'missing', 'normalization', 'rrf_k', 'weights']

        """  # noqa: E501
        unknown = sorted(set(overrides) - set(SPEC_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown}; fusion options are {sorted(SPEC_FIELDS)}"
            )
        changes = dict(overrides)
        if changes.get("alpha") is not None and changes.get("weights") is not None:
            raise ValueError("pass alpha (two retrievers) or weights=[...], not both")
        if "alpha" in changes and "weights" not in changes:
            changes["weights"] = None
        elif changes.get("weights") is not None and "alpha" not in changes:
            changes["alpha"] = None
        return replace(self, **changes)

    @property
    def depth(self) -> int:
        """Candidates gathered per retriever: ``max(fetch_k, k)``."""
        return max(self.fetch_k, self.k)

    @property
    def rank_by_complete_scores(self) -> bool:
        """Whether RRF ranks candidates by their complete scores (``complete_scoring=True``)."""
        return self.complete_scoring is True

    def weights_for(self, n: int) -> FloatArray:
        """Return the weight of each of ``n`` retrievers (alpha needs exactly two).

        Raises:
            ValueError: ``weights`` has not ``n`` values, or ``alpha`` is set and ``n != 2``.

        Example:
            >>> FusionSpec().weights_for(3).tolist()
            [1.0, 1.0, 1.0]
            >>> FusionSpec(alpha=0.2).weights_for(3)
            Traceback (most recent call last):
            ...
            ValueError: alpha applies to exactly two retrievers (vector, keyword); this retriever fuses 3: pass weights=[...] with 3 values

        """  # noqa: E501
        if self.weights is not None:
            return validate_weights(self.weights, n)
        if self.alpha is not None and n != 2:
            raise ValueError(
                f"alpha applies to exactly two retrievers (vector, keyword); this retriever "
                f"fuses {n}: pass weights=[...] with {n} values"
            )
        if n != 2:
            return np.ones(n)
        alpha = 0.5 if self.alpha is None else self.alpha
        return np.asarray(alpha_to_weights(alpha), dtype=np.float64)

    def fusion_key(self) -> tuple[Any, ...]:
        """Return what decides the fusion besides the weights (equal keys fuse together).

        Example:
            >>> FusionSpec(alpha=0.1).fusion_key() == FusionSpec(alpha=0.9).fusion_key()
            True

        """
        norm = self.normalization if self.method is FusionMethod.CONVEX else None
        return (self.method, norm, float(self.rrf_k), self.rank_by_complete_scores, self.missing)


SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FusionSpec))
"""Every field of `FusionSpec`."""

OPTION_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(FusionSpec) if f.metadata.get("per_call")
)
"""The options `FusionRetriever` takes per call (``retriever.invoke(q, alpha=0.3)``)."""

GRID_KEYS: tuple[str, ...] = tuple(f.name for f in fields(FusionSpec) if f.metadata.get("grid"))
"""The settings a tuning grid may vary (re-fused from cached candidates)."""

FEEDBACK_KEYS: tuple[str, ...] = tuple(
    f.name for f in fields(FusionSpec) if f.metadata.get("feedback")
)
"""The feedback settings (each needs its own retrieval pass)."""
