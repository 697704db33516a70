"""Former home of adaptive fusion, re-exported here.

The model and `AdaptiveFusionRetriever` moved next to the retriever, to
[`langchain_fusion.adaptive`][]; the cross-validated comparison to
[`langchain_fusion.tuning.adaptive`][].

Example:
    >>> from langchain_fusion.evaluation.adaptive import AdaptiveFusionRetriever
    >>> AdaptiveFusionRetriever.__module__
    'langchain_fusion.adaptive'

"""

from __future__ import annotations

from langchain_fusion.adaptive import (
    ADAPTIVE_ALPHAS,
    FEATURES,
    AdaptiveFusion,
    AdaptiveFusionRetriever,
    TermStats,
    pool_features,
    query_features,
    query_text_features,
)
from langchain_fusion.tuning.adaptive import AdaptiveComparison, cross_validate_adaptive

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
