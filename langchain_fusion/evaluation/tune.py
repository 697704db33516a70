"""Former home of tuning: it moved to the [`langchain_fusion.tuning`][] package (re-exported here).

Example:
    >>> from langchain_fusion.evaluation.tune import tune
    >>> tune.__module__
    'langchain_fusion.tuning.search'

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_fusion.tuning import (
        BM25_KEYS,
        DEFAULT_ALPHAS,
        DEFAULT_BM25_GRID,
        DEFAULT_FEEDBACK_GRID,
        DEFAULT_NORMALIZATIONS,
        DEFAULT_RRF_K,
        FEEDBACK_KEYS,
        GRID_KEYS,
        CrossValidation,
        Fold,
        PoolCache,
        TuningReport,
        cross_validate,
        gather_pools,
        kfold,
        score_settings,
        simplex_grid,
        tune,
        tune_bm25,
        tune_feedback,
        window,
    )


def __getattr__(name: str) -> Any:
    # Imported on first use: ``langchain_fusion.evaluation`` loads this module while
    # ``langchain_fusion.tuning`` (which builds on evaluation's metrics) may still be loading.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("langchain_fusion.tuning"), name)
    globals()[name] = value
    return value


__all__ = [
    "BM25_KEYS",
    "DEFAULT_ALPHAS",
    "DEFAULT_BM25_GRID",
    "DEFAULT_FEEDBACK_GRID",
    "DEFAULT_NORMALIZATIONS",
    "DEFAULT_RRF_K",
    "FEEDBACK_KEYS",
    "GRID_KEYS",
    "CrossValidation",
    "Fold",
    "PoolCache",
    "TuningReport",
    "cross_validate",
    "gather_pools",
    "kfold",
    "score_settings",
    "simplex_grid",
    "tune",
    "tune_bm25",
    "tune_feedback",
    "window",
]
