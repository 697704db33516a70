"""Tuning: fusion settings, BM25 parameters and feedback chosen on judged queries.

One module per concern:

- [`grid`][langchain_fusion.tuning.grid]: the default search and grid expansion;
- [`pools`][langchain_fusion.tuning.pools]: candidate pools gathered once (`gather_pools`);
- [`scoring`][langchain_fusion.tuning.scoring]: every setting fused by
  [`fuse_many`][langchain_fusion.fusion.fuse_many] on the cached pools and measured;
- [`crossval`][langchain_fusion.tuning.crossval]: k-fold cross-validation of the choice;
- [`crossfit`][langchain_fusion.tuning.crossfit]: out-of-fold retrievers for fine-tuned models;
- [`search`][langchain_fusion.tuning.search]: `tune`; [`report`][langchain_fusion.tuning.report]:
  `TuningReport`;
- [`bm25`][langchain_fusion.tuning.bm25]: `tune_bm25`; [`feedback`][langchain_fusion.tuning.feedback]:
  `tune_feedback`.

Everything is also importable from ``langchain_fusion.evaluation`` (and the former module
``langchain_fusion.evaluation.tune``).

Example:
    >>> from langchain_fusion.tuning import DEFAULT_ALPHAS, GRID_KEYS
    >>> len(DEFAULT_ALPHAS), GRID_KEYS
    (21, ('method', 'alpha', 'weights', 'normalization', 'rrf_k', 'fetch_k'))

"""  # noqa: E501

from __future__ import annotations

from langchain_fusion.fusion import FEEDBACK_KEYS
from langchain_fusion.tuning.bm25 import DEFAULT_BM25_GRID, tune_bm25
from langchain_fusion.tuning.crossval import CrossValidation, Fold, cross_validate, kfold
from langchain_fusion.tuning.feedback import DEFAULT_FEEDBACK_GRID, tune_feedback
from langchain_fusion.tuning.grid import (
    BM25_KEYS,
    DEFAULT_ALPHAS,
    DEFAULT_NORMALIZATIONS,
    DEFAULT_RRF_K,
    GRID_KEYS,
    simplex_grid,
)
from langchain_fusion.tuning.pools import PoolCache, gather_pools, window
from langchain_fusion.tuning.report import TuningReport
from langchain_fusion.tuning.scoring import score_settings
from langchain_fusion.tuning.search import tune

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
