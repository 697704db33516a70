"""Former home of adaptive fusion, re-exported here.

Adaptive fusion (the model, `AdaptiveFusionRetriever` and the cross-validated comparison)
moved next to the retriever, to the [`langchain_fusion.adaptive`][] package.

Example:
    >>> from langchain_fusion.evaluation.adaptive import AdaptiveFusionRetriever
    >>> AdaptiveFusionRetriever.__module__
    'langchain_fusion.adaptive.model'

"""

from __future__ import annotations

from langchain_fusion.adaptive import *  # noqa: F403
from langchain_fusion.adaptive import __all__ as _adaptive_all

__all__ = list(_adaptive_all)
