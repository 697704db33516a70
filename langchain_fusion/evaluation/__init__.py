"""Evaluation: BEIR collections, IR metrics (pytrec_eval conventions) and retriever evaluation.

Example:
    >>> from langchain_fusion.evaluation import compute_metrics, mean
    >>> mean(compute_metrics({"q1": ["d2", "d1"]}, {"q1": {"d1": 1}}, ["mrr@10", "hits@1"]))
    {'mrr@10': 0.5, 'hits@1': 0.0}

"""

from __future__ import annotations

from langchain_fusion.evaluation.adaptive import (
    AdaptiveComparison,
    AdaptiveFusion,
    AdaptiveFusionRetriever,
    TermStats,
    cross_validate_adaptive,
)
from langchain_fusion.evaluation.beir import (
    BeirDataset,
    available_splits,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
)
from langchain_fusion.evaluation.evaluate import (
    EvaluationReport,
    compare,
    evaluate,
    evaluate_run,
)
from langchain_fusion.evaluation.labels import (
    generate_labels,
    load_labels,
    parse_question,
    save_labels,
)
from langchain_fusion.evaluation.metrics import (
    Metric,
    Qrels,
    compute_metrics,
    hit_rate_at_k,
    mean,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
)
from langchain_fusion.evaluation.plot import plot_alpha_sweep
from langchain_fusion.evaluation.tune import (
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
)

__all__ = [
    "BeirDataset",
    "EvaluationReport",
    "Metric",
    "Qrels",
    "available_splits",
    "compare",
    "compute_metrics",
    "evaluate",
    "evaluate_run",
    "hit_rate_at_k",
    "load_beir",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
    # tuning, adaptive fusion, labels, plots
    "AdaptiveComparison",
    "AdaptiveFusion",
    "AdaptiveFusionRetriever",
    "CrossValidation",
    "Fold",
    "PoolCache",
    "TermStats",
    "TuningReport",
    "cross_validate",
    "cross_validate_adaptive",
    "gather_pools",
    "generate_labels",
    "kfold",
    "load_labels",
    "parse_question",
    "plot_alpha_sweep",
    "save_labels",
    "score_settings",
    "simplex_grid",
    "tune",
    "tune_bm25",
    "tune_feedback",
]
