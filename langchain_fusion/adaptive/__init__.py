"""Adaptive fusion: choose ``alpha`` per query from features of the query and its candidates.

- [`model`][langchain_fusion.adaptive.model]: the features, `AdaptiveFusion` (the learned
  per-query alpha) and `AdaptiveFusionRetriever` (a `FusionRetriever` that uses it);
- [`comparison`][langchain_fusion.adaptive.comparison]: `cross_validate_adaptive`, whether it
  beats the best fixed alpha on your data.

Also importable from ``langchain_fusion.evaluation`` (the former home).

Example:
    >>> from langchain_fusion.adaptive import query_text_features
    >>> query_text_features("error E-217")["identifier"]
    1.0

"""

from __future__ import annotations

from langchain_fusion.adaptive.comparison import AdaptiveComparison, cross_validate_adaptive
from langchain_fusion.adaptive.model import (
    ADAPTIVE_ALPHAS,
    FEATURES,
    AdaptiveFusion,
    AdaptiveFusionRetriever,
    TermStats,
    pool_features,
    query_features,
    query_text_features,
)

__all__ = [
    "ADAPTIVE_ALPHAS",
    "FEATURES",
    "AdaptiveComparison",
    "AdaptiveFusion",
    "AdaptiveFusionRetriever",
    "TermStats",
    "cross_validate_adaptive",
    "pool_features",
    "query_features",
    "query_text_features",
]
