"""Score normalization and fusion on NumPy arrays (pure math, no LangChain).

Every function takes array-likes and returns new float64 (or integer index) arrays. A NaN score
means "this retriever has no score for this candidate"; scores are "higher is better" and ranks
start at 1. One small module per method:

- normalization: [`minmax`][langchain_fusion.fusion.minmax.minmax],
  [`zscore`][langchain_fusion.fusion.zscore.zscore] and [`dbsf`][langchain_fusion.fusion.dbsf.dbsf],
  dispatched by [`normalize`][] (names in [`NORMALIZATIONS`][]);
- fusion: [`convex_fusion`][] (weighted sum of normalized scores) and [`rrf_fusion`][]
  (weighted Reciprocal Rank Fusion), with [`validate_weights`][] and [`alpha_to_weights`][];
- ranks: [`ranks_from_scores`][] and [`top_k`][];
- the whole operation: [`FusionSpec`][] (typed, validated settings, with the names in
  [`FusionMethod`][] and [`Normalization`][]) and [`fuse`][] / [`fuse_many`][] (one pool, one or
  many specs), used by `FusionRetriever`, the tuner and the adaptive retriever alike.

Example:
    >>> from langchain_fusion import fusion
    >>> nan = float("nan")
    >>> cosine = [0.82, 0.75, nan, 0.31]  # vector search; NaN = not retrieved
    >>> bm25 = [nan, 7.5, 12.0, 2.5]  # keyword search
    >>> vector, keyword = fusion.normalize(cosine, "minmax"), fusion.normalize(bm25, "minmax")
    >>> fused = fusion.convex_fusion([vector, keyword], fusion.alpha_to_weights(0.5))
    >>> fused.round(3)
    array([0.5  , 0.695, 0.5  , 0.   ])
    >>> fusion.top_k(fused, 3)  # the tie 0 vs 2 keeps position order
    array([1, 0, 2])
    >>> ranks = [fusion.ranks_from_scores(cosine), fusion.ranks_from_scores(bm25)]
    >>> ranks[0], ranks[1]
    (array([1, 2, 0, 3]), array([0, 2, 1, 3]))
    >>> fusion.top_k(fusion.rrf_fusion(ranks, [1.0, 1.0]), 3)  # RRF rewards agreement: 3 > 0
    array([1, 3, 0])

"""

from __future__ import annotations

from langchain_fusion.fusion.convex import convex_fusion
from langchain_fusion.fusion.dbsf import dbsf
from langchain_fusion.fusion.methods import (
    METHOD_CHOICES,
    METHOD_SHORTHANDS,
    NORMALIZATION_NAMES,
    FusionMethod,
    Normalization,
)
from langchain_fusion.fusion.minmax import minmax
from langchain_fusion.fusion.normalization import NORMALIZATIONS, normalize
from langchain_fusion.fusion.pipeline import (
    FusedResult,
    Pool,
    ScoredPool,
    SpecBatch,
    fuse,
    fuse_many,
)
from langchain_fusion.fusion.ranks import ranks_from_scores, top_k
from langchain_fusion.fusion.rrf import rrf_fusion
from langchain_fusion.fusion.spec import (
    FEEDBACK_KEYS,
    GRID_KEYS,
    OPTION_NAMES,
    SPEC_FIELDS,
    FusionSpec,
    check_feedback,
    parse_method,
    parse_normalization,
)
from langchain_fusion.fusion.weights import alpha_to_weights, validate_weights
from langchain_fusion.fusion.zscore import zscore

__all__ = [
    "FEEDBACK_KEYS",
    "GRID_KEYS",
    "METHOD_CHOICES",
    "METHOD_SHORTHANDS",
    "NORMALIZATIONS",
    "NORMALIZATION_NAMES",
    "OPTION_NAMES",
    "SPEC_FIELDS",
    "FusedResult",
    "FusionMethod",
    "FusionSpec",
    "Normalization",
    "Pool",
    "ScoredPool",
    "SpecBatch",
    "alpha_to_weights",
    "check_feedback",
    "convex_fusion",
    "dbsf",
    "fuse",
    "fuse_many",
    "minmax",
    "normalize",
    "parse_method",
    "parse_normalization",
    "ranks_from_scores",
    "rrf_fusion",
    "top_k",
    "validate_weights",
    "zscore",
]
