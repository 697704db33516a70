"""Evaluation: BEIR collections, IR metrics (pytrec_eval conventions) and retriever evaluation.

Example:
    >>> from langchain_fusion.evaluation import compute_metrics, mean
    >>> mean(compute_metrics({"q1": ["d2", "d1"]}, {"q1": {"d1": 1}}, ["mrr@10", "hits@1"]))
    {'mrr@10': 0.5, 'hits@1': 0.0}

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

# Tuning, adaptive fusion and plots build on the metrics above (langchain_fusion.tuning,
# langchain_fusion.adaptive): the names of ``__all__`` not imported above are taken from these
# homes (each one's ``__all__``) on first use, so that importing them first does not run into this
# package half-initialized.
_LATER_HOMES = (
    "langchain_fusion.tuning",
    "langchain_fusion.adaptive",
    "langchain_fusion.evaluation.plot",
)

if TYPE_CHECKING:
    from langchain_fusion.adaptive import (
        AdaptiveComparison,
        AdaptiveFusion,
        AdaptiveFusionRetriever,
        TermStats,
        cross_validate_adaptive,
    )
    from langchain_fusion.evaluation.plot import plot_alpha_sweep
    from langchain_fusion.tuning import (
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


# ``langchain_fusion.evaluation.tune`` (the former tuning module) is also the name of the function
# ``tune``: load the module now, then let the attribute resolve to the function on first use.
importlib.import_module("langchain_fusion.evaluation.tune")
del globals()["tune"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        for home in _LATER_HOMES:
            module = importlib.import_module(home)
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
