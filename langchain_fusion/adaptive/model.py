"""Adaptive fusion: choose ``alpha`` per query from features of the query and of its candidates.

A fixed ``alpha`` is a compromise: a query naming an identifier (``read_csv``, ``E-217``,
``4.2.1``) wants the keyword side, a vague natural-language question wants the vector side.
`AdaptiveFusion` predicts, for every alpha of a grid, how good that alpha will be for *this*
query, and uses the best one. The features (see `FEATURES`) describe

* the query: length, how many of its terms BM25 does not know, how rare the known ones are
  (idf), identifiers / code patterns, quoted phrases, digits;
* the two result lists: how peaked each side's scores are (top-1 gap, top-1 over the mean,
  entropy) and how much the two top-10 lists agree.

The model is a multi-output ridge regression (numpy only, deterministic): standardized features
-> the per-query metric at each alpha, centered per query, with the regularization chosen by
inner cross-validation. Strong regularization falls back to the best fixed alpha. It is saved as
a small JSON file.

Use it with `AdaptiveFusionRetriever` (a `FusionRetriever` that computes alpha per query), and
check whether it helps on your data with `cross_validate_adaptive` before shipping it: on BEIR
SciFact and NFCorpus it does **not** reliably beat the best fixed alpha (see
``benchmarks/tune.py``).

Example:
    >>> from langchain_fusion.adaptive import query_text_features
    >>> f = query_text_features('how to fix error E-217 in "battery mode"')
    >>> f["identifier"], f["quoted"]
    (1.0, 1.0)

"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import model_validator

from langchain_fusion.evaluation.metrics import Metric, Qrels, QrelsLike, parse_metric
from langchain_fusion.fusion import FusionMethod, FusionSpec, Normalization, parse_method
from langchain_fusion.retriever import CandidatePool, FusionRetriever
from langchain_fusion.tuning.crossval import best_index, kfold
from langchain_fusion.tuning.grid import expand_grid
from langchain_fusion.tuning.pools import PoolCache, gather_pools, judged_queries, window
from langchain_fusion.tuning.scoring import score_pools

__all__ = [
    "ADAPTIVE_ALPHAS",
    "FEATURES",
    "AdaptiveFusion",
    "AdaptiveFusionRetriever",
    "TermStats",
    "alpha_scores",
    "best_fixed_setting",
    "default_settings",
    "feature_matrix",
    "pool_features",
    "prepare_training",
    "query_features",
    "query_text_features",
]

FEATURES: tuple[str, ...] = (
    "n_terms",
    "frac_unknown",
    "max_idf",
    "mean_idf",
    "identifier",
    "quoted",
    "digits",
    "dense_gap",
    "dense_peak",
    "dense_entropy",
    "bm25_gap",
    "bm25_peak",
    "bm25_entropy",
    "bm25_top",
    "bm25_hits",
    "overlap",
)
"""Feature names, in model order. See `query_text_features` and `pool_features`."""

ADAPTIVE_ALPHAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
"""The default alpha buckets of the model: 0.0, 0.1, ..., 1.0. Coarser than `tune`'s grid on
purpose: fewer outputs, less variance (on SciFact and NFCorpus train, under 5-fold
cross-validation, 11 buckets beat 21)."""

_FORMAT = "langchain-fusion/adaptive"
_VERSION = 1

_IDENTIFIER = re.compile(
    r"""
    \b[A-Za-z_]\w*_\w+\b                 # snake_case: read_csv, __init__
  | \b[A-Za-z_]\w+\.[A-Za-z_]\w+\b       # dotted names: pandas.read_csv, os.path
  | \b[a-z]+[A-Z]\w*\b                   # camelCase: readCsv, iPhone
  | \b[A-Za-z]+-?\d[\w-]*\b              # codes: E-217, IL6, BRCA1, p53, COVID-19
  | \b\d+(?:\.\d+){2,}\b                 # versions: 4.2.1
  | \b[A-Z]{2,}\b                        # acronyms: DNA, BMS
  | \w+\(\)                              # calls: fit()
    """,
    re.VERBOSE,
)
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|'[^'\s][^']*[^'\s]'|`[^`]+`")
_WORD = re.compile(r"\w+")


# ------------------------------------------------------------------------------------ features


@dataclass
class TermStats:
    """Tokenizer and document frequencies of a BM25 index, for the query-term features.

    Attributes:
        tokenize: The BM25 tokenizer (text -> terms).
        doc_freq: Number of documents containing a term (0 = unknown term).
        n_docs: Number of documents.

    Example:
        >>> from langchain_fusion import BM25Index
        >>> index = BM25Index()
        >>> _ = index.add(["red apples", "green apples", "pears"])
        >>> stats = TermStats.from_index(index)
        >>> stats.doc_freq("appl"), stats.n_docs
        (2, 3)

    """

    tokenize: Callable[[str], list[str]]
    doc_freq: Callable[[str], int]
    n_docs: int

    @classmethod
    def from_index(cls, index: Any) -> TermStats | None:
        """Statistics of a `BM25Index`, a `HybridIndex` or a retriever holding one (else None).

        Example:
            >>> TermStats.from_index(object()) is None
            True

        """
        bm25 = index
        if not hasattr(bm25, "doc_freq") and getattr(bm25, "index", None) is not None:
            bm25 = bm25.index  # FusionRetriever -> HybridIndex, BM25Retriever -> BM25Index
        if not hasattr(bm25, "doc_freq") and getattr(bm25, "_bm25", None) is not None:
            bm25 = bm25._bm25  # HybridIndex -> its BM25Index
        if not all(hasattr(bm25, a) for a in ("doc_freq", "tokenizer", "n_live")):
            return None
        return cls(tokenize=bm25.tokenizer, doc_freq=bm25.doc_freq, n_docs=int(bm25.n_live))

    def idf(self, df: int) -> float:
        """Lucene BM25 idf scaled to [0, 1] (1 = a term in a single document).

        Example:
            >>> stats = TermStats(str.split, lambda t: 1, n_docs=100)
            >>> stats.idf(1), round(stats.idf(50), 3)
            (1.0, 0.165)

        """
        n = max(self.n_docs, 1)
        top = math.log1p((n - 1 + 0.5) / 1.5)
        return math.log1p((n - df + 0.5) / (df + 0.5)) / top if top > 0 else 0.0


def query_text_features(query: str, stats: TermStats | None = None) -> dict[str, float]:
    """Features of the query text alone.

    * ``n_terms``: ``log(1 + number of terms)`` (BM25 terms with ``stats``, else words);
    * ``frac_unknown``: fraction of the terms that no document contains (0 without ``stats``);
    * ``max_idf`` / ``mean_idf``: idf of the known terms, scaled to [0, 1];
    * ``identifier``: 1 if the query has a code-like token (``read_csv``, ``E-217``, ``4.2.1``,
      ``camelCase``, ``pandas.read_csv``, an acronym, ``fit()``);
    * ``quoted``: 1 if it quotes a phrase; ``digits``: fraction of words with a digit.

    Example:
        >>> f = query_text_features("pandas read_csv v2.1.0")
        >>> f["identifier"], f["quoted"], round(f["digits"], 3), round(f["n_terms"], 3)
        (1.0, 0.0, 0.6, 1.792)
        >>> query_text_features("why is the sky blue")["identifier"]
        0.0

    """
    words = _WORD.findall(query)
    features = {name: 0.0 for name in FEATURES[:7]}
    features["identifier"] = 1.0 if _IDENTIFIER.search(query) else 0.0
    features["quoted"] = 1.0 if _QUOTED.search(query) else 0.0
    features["digits"] = (
        sum(any(c.isdigit() for c in w) for w in words) / len(words) if words else 0.0
    )
    if stats is None:
        features["n_terms"] = math.log1p(len(words))
        return features
    terms = stats.tokenize(query)
    features["n_terms"] = math.log1p(len(terms))
    if terms:
        dfs = [stats.doc_freq(t) for t in terms]
        known = [stats.idf(df) for df in dfs if df > 0]
        features["frac_unknown"] = 1.0 - len(known) / len(terms)
        if known:
            features["max_idf"] = max(known)
            features["mean_idf"] = sum(known) / len(known)
    return features


def _side(pool: CandidatePool, row: int) -> NDArray[np.float64]:
    """Scores of the candidates a retriever found itself, in its own rank order."""
    found = np.flatnonzero(pool.found_rank[row] > 0)
    order = found[np.argsort(pool.found_rank[row, found], kind="stable")]
    scores: NDArray[np.float64] = pool.raw[row, order]
    finite: NDArray[np.float64] = scores[np.isfinite(scores)]
    return finite


def _peakedness(scores: NDArray[np.float64], top: int = 10) -> tuple[float, float, float]:
    """``(gap, peak, entropy)`` of the top scores of one list (0, 0, 1 when undefined).

    gap = (s1 - s2) / |s1|; peak = (s1 - mean) / |s1| over the top; entropy of the min-max
    normalized top scores as a distribution, divided by log(top) (1 = flat).
    """
    s = scores[:top]
    if s.size == 0:
        return 0.0, 0.0, 1.0
    scale = abs(float(s[0])) or 1.0
    gap = float(s[0] - s[1]) / scale if s.size > 1 else 1.0
    peak = float(s[0] - s.mean()) / scale
    span = float(s.max() - s.min())
    if s.size < 2 or span <= 0:
        return gap, peak, 1.0
    p = (s - s.min()) / span
    p = p / p.sum()
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum()) / math.log(top)
    return gap, peak, entropy


def pool_features(pool: CandidatePool, fetch_k: int | None = None) -> dict[str, float]:
    """Features of the two result lists of a pool (row 0 = vector side, row 1 = keyword side).

    * ``dense_gap``, ``dense_peak``, ``dense_entropy`` and ``bm25_*``: how peaked each side's
      top-10 scores are (see ``_peakedness``): a clear winner vs a flat list;
    * ``bm25_top``: ``log(1 + top BM25 score)``;
    * ``bm25_hits``: how many documents BM25 found, ``log(1 + n) / log(1 + fetch_k)``;
    * ``overlap``: fraction of the vector top 10 also in the keyword top 10.

    Example:
        >>> import numpy as np
        >>> pool = CandidatePool(keys=["a", "b", "c"], names=["dense", "bm25"],
        ...     raw=np.array([[0.9, 0.5, 0.4], [4.0, 0.0, 2.0]]),
        ...     found_rank=np.array([[1, 2, 3], [1, 0, 2]]), has_scores=np.array([True, True]))
        >>> f = pool_features(pool, fetch_k=3)
        >>> [round(f[n], 3) for n in ("dense_gap", "bm25_gap", "overlap", "bm25_hits")]
        [0.444, 0.5, 0.667, 0.792]

    """
    out = {name: 0.0 for name in FEATURES[7:]}
    if pool.raw.shape[0] < 2:
        return out
    dense, bm25 = _side(pool, 0), _side(pool, 1)
    out["dense_gap"], out["dense_peak"], out["dense_entropy"] = _peakedness(dense)
    out["bm25_gap"], out["bm25_peak"], out["bm25_entropy"] = _peakedness(bm25)
    out["bm25_top"] = math.log1p(max(float(bm25[0]), 0.0)) if bm25.size else 0.0
    n_found = int((pool.found_rank[1] > 0).sum())
    depth = fetch_k if fetch_k is not None else max(int(pool.found_rank.max(initial=1)), 1)
    out["bm25_hits"] = math.log1p(n_found) / math.log1p(depth)
    top_dense = set(np.flatnonzero((pool.found_rank[0] > 0) & (pool.found_rank[0] <= 10)).tolist())
    top_bm25 = set(np.flatnonzero((pool.found_rank[1] > 0) & (pool.found_rank[1] <= 10)).tolist())
    out["overlap"] = len(top_dense & top_bm25) / len(top_dense) if top_dense else 0.0
    return out


def query_features(
    query: str, pool: CandidatePool, stats: TermStats | None = None, fetch_k: int | None = None
) -> NDArray[np.float64]:
    """All `FEATURES` of one query as a vector.

    Example:
        >>> import numpy as np
        >>> pool = CandidatePool(keys=["a"], names=["dense", "bm25"], raw=np.array([[0.5], [1.0]]),
        ...     found_rank=np.array([[1], [1]]), has_scores=np.array([True, True]))
        >>> query_features("E-217", pool).shape
        (16,)

    """
    values = {**query_text_features(query, stats), **pool_features(pool, fetch_k)}
    out: NDArray[np.float64] = np.array([values[name] for name in FEATURES], dtype=np.float64)
    return out


# ------------------------------------------------------------------------------------ model


def _fit_ridge(
    x: NDArray[np.float64], y: NDArray[np.float64], l2: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ridge regression on standardized ``x``: returns ``(coef (F, A), intercept (A,))``."""
    intercept = y.mean(axis=0)
    xtx = x.T @ x + l2 * np.eye(x.shape[1])
    coef = np.linalg.solve(xtx, x.T @ (y - intercept))
    return coef, intercept


def _standardize(
    x: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (x - mean) / scale, mean, scale


_L2_GRID = (1.0, 10.0, 100.0, 1000.0, 10000.0)


def _choose_l2(
    x: NDArray[np.float64], y: NDArray[np.float64], folds: int = 5, seed: int = 0
) -> float:
    """Pick the ridge strength whose alpha choices score best under inner cross-validation."""
    n = x.shape[0]
    if n < 2 * folds:
        return _L2_GRID[-1]
    best, best_score = _L2_GRID[-1], -math.inf
    splits = kfold(n, folds, seed)
    for l2 in _L2_GRID:
        total = 0.0
        for test in splits:
            train = np.setdiff1d(np.arange(n), test)
            xs, mean, scale = _standardize(x[train])
            coef, intercept = _fit_ridge(xs, y[train], l2)
            pred = ((x[test] - mean) / scale) @ coef + intercept
            total += float(y[test, np.argmax(pred, axis=1)].sum())
        if total > best_score + 1e-12:
            best, best_score = l2, total
    return best


@dataclass
class AdaptiveFusion:
    """A learned per-query alpha: features -> predicted metric at each alpha -> the best alpha.

    Attributes:
        alphas: The alpha grid the model chooses from.
        coef: ``(n_features, n_alphas)`` ridge coefficients on standardized features.
        intercept: ``(n_alphas,)``: the mean (centered) metric curve, i.e. the fixed-alpha
            fallback.
        mean: Feature means (standardization).
        scale: Feature standard deviations (standardization).
        method: ``"convex"`` or ``"rrf"``, the fusion the alphas apply to.
        normalization: Normalization of the convex method.
        rrf_k: RRF constant.
        fetch_k: Candidates per retriever.
        l2: Ridge strength.
        metric: The metric the model was trained on.
        n_train: Number of training queries.
        features: Feature names (`FEATURES`).

    Example:
        >>> import numpy as np
        >>> model = AdaptiveFusion(alphas=(0.0, 1.0), coef=np.zeros((len(FEATURES), 2)),
        ...     intercept=np.array([0.1, 0.0]), mean=np.zeros(len(FEATURES)),
        ...     scale=np.ones(len(FEATURES)))
        >>> pool = CandidatePool(keys=["a"], names=["dense", "bm25"], raw=np.array([[0.5], [1.0]]),
        ...     found_rank=np.array([[1], [1]]), has_scores=np.array([True, True]))
        >>> model.alpha_for("anything", pool)
        0.0

    """

    alphas: tuple[float, ...]
    coef: NDArray[np.float64] = field(repr=False)
    intercept: NDArray[np.float64] = field(repr=False)
    mean: NDArray[np.float64] = field(repr=False)
    scale: NDArray[np.float64] = field(repr=False)
    method: str = FusionMethod.CONVEX.value
    normalization: str = Normalization.MINMAX.value
    rrf_k: float = 60.0
    fetch_k: int = 100
    l2: float = 100.0
    metric: str = "ndcg@10"
    n_train: int = 0
    features: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(
                f"features must be {list(FEATURES)} (this version's), got {list(self.features)}"
            )
        n_f, n_a = len(FEATURES), len(self.alphas)
        if not self.alphas or any(not 0 <= a <= 1 for a in self.alphas):
            raise ValueError(
                f"alphas must be a non-empty list of values in [0, 1], got {self.alphas}"
            )
        for name, arr, shape in (
            ("coef", self.coef, (n_f, n_a)),
            ("intercept", self.intercept, (n_a,)),
            ("mean", self.mean, (n_f,)),
            ("scale", self.scale, (n_f,)),
        ):
            if np.shape(arr) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(arr)}")

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """Predicted (centered) metric at each alpha, for one feature vector or a matrix.

        Example:
            >>> import numpy as np
            >>> m = AdaptiveFusion((0.0, 1.0), np.zeros((16, 2)), np.array([0.0, 0.2]),
            ...                    np.zeros(16), np.ones(16))
            >>> m.predict(np.zeros(16)).tolist()
            [0.0, 0.2]

        """
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        out: NDArray[np.float64] = x @ self.coef + self.intercept
        return out

    def alpha_for(self, query: str, pool: CandidatePool, stats: TermStats | None = None) -> float:
        """Return the alpha predicted best for ``query`` given its candidate pool.

        Args:
            query: The query text.
            pool: Its candidates (``FusionRetriever.gather``), row 0 vector, row 1 keyword.
            stats: BM25 term statistics (`TermStats.from_index`) for the query-term features.

        Example:
            >>> import numpy as np
            >>> m = AdaptiveFusion((0.2, 0.8), np.zeros((16, 2)), np.array([0.0, 0.1]),
            ...                    np.zeros(16), np.ones(16))
            >>> pool = CandidatePool(keys=["a"], names=["d", "k"], raw=np.array([[0.5], [1.0]]),
            ...     found_rank=np.array([[1], [1]]), has_scores=np.array([True, True]))
            >>> m.alpha_for("q", pool)
            0.8

        """
        pred = self.predict(query_features(query, pool, stats, self.fetch_k))
        return float(self.alphas[int(np.argmax(pred))])

    def settings(self) -> dict[str, Any]:
        """Return the fusion settings (besides alpha) the model was trained for.

        Example:
            >>> import numpy as np
            >>> AdaptiveFusion((0.0,), np.zeros((16, 1)), np.zeros(1), np.zeros(16),
            ...                np.ones(16), method="rrf", rrf_k=20).settings()
            {'method': 'rrf', 'rrf_k': 20, 'fetch_k': 100}

        """
        method, implied = parse_method(self.method)
        if method is FusionMethod.RRF:
            return {"method": method.value, "rrf_k": self.rrf_k, "fetch_k": self.fetch_k}
        norm = implied.value if implied is not None else self.normalization
        return {"method": method.value, "normalization": norm, "fetch_k": self.fetch_k}

    # -------------------------------------------------------------------- training

    @classmethod
    def fit(
        cls,
        retriever: FusionRetriever,
        queries: Mapping[str, str],
        qrels: QrelsLike,
        *,
        metric: str | Metric = "ndcg@10",
        setting: Mapping[str, Any] | None = None,
        alphas: Sequence[float] = ADAPTIVE_ALPHAS,
        l2: float | None = None,
        pools: PoolCache | None = None,
        show_progress: bool = True,
        seed: int = 0,
    ) -> AdaptiveFusion:
        """Learn per-query alphas on judged queries (e.g. a train split).

        Args:
            retriever: A two-retriever `FusionRetriever` (vector, keyword).
            queries: ``{query_id: text}``.
            qrels: Judgments.
            metric: The metric to maximize per query.
            setting: Method / normalization / rrf_k / fetch_k to learn alphas for; default:
                the best fixed setting found by `tune` on the same queries.
            alphas: The alpha grid.
            l2: Ridge strength; default chosen by inner 5-fold cross-validation.
            pools: Reuse pools from `gather_pools`.
            show_progress: Show progress bars.
            seed: Seed of the inner cross-validation.

        Returns:
            The trained model.

        Raises:
            ValueError: If the retriever does not fuse exactly two retrievers, or on the
                errors of `tune`.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["E-217 battery", "cold weather", "E-404 error"],
            ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
            >>> model = AdaptiveFusion.fit(r, {"a": "E-217", "b": "weather"},
            ...     {"a": {"1": 1}, "b": {"2": 1}}, alphas=[0.0, 1.0], show_progress=False)
            >>> model.alpha_for("E-217", r.gather("E-217"), TermStats.from_index(r.index))
            0.0

        """
        parsed = parse_metric(metric)
        cache, prepared, base = prepare_training(retriever, queries, qrels, pools, show_progress)
        if setting is None:
            setting = best_fixed_setting(retriever, cache, prepared, parsed, cache.query_ids)
        y = alpha_scores(retriever, cache, prepared, parsed, setting, alphas)
        fk = int(setting.get("fetch_k", cache.fetch_k))
        x = feature_matrix(cache, fk, TermStats.from_index(retriever))
        return cls.train(x, y, alphas, setting, fk, l2, str(metric), seed, base)

    @classmethod
    def train(
        cls,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        alphas: Sequence[float],
        setting: Mapping[str, Any],
        fetch_k: int,
        l2: float | None,
        metric: str,
        seed: int,
        base: FusionRetriever,
    ) -> AdaptiveFusion:
        """Fit the ridge model on features ``x`` and per-alpha metrics ``y`` (one row per query).

        Example:
            >>> import numpy as np
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a"], DeterministicFakeEmbedding(size=8))
            >>> x, y = np.zeros((4, len(FEATURES))), np.array([[1.0, 0.0]] * 4)
            >>> AdaptiveFusion.train(x, y, (0.0, 1.0), {}, 100, 1.0, "ndcg@10", 0, r).alphas
            (0.0, 1.0)

        """
        y_centered = y - y.mean(axis=1, keepdims=True)
        strength = _choose_l2(x, y_centered, seed=seed) if l2 is None else float(l2)
        xs, mean, scale = _standardize(x)
        coef, intercept = _fit_ridge(xs, y_centered, strength)
        return cls(
            alphas=tuple(float(a) for a in alphas),
            coef=coef,
            intercept=intercept,
            mean=mean,
            scale=scale,
            method=str(setting.get("method", base.method)),
            normalization=str(setting.get("normalization", base.normalization)),
            rrf_k=setting.get("rrf_k", base.rrf_k),
            fetch_k=fetch_k,
            l2=strength,
            metric=metric,
            n_train=int(x.shape[0]),
        )

    _train = train  # the former name

    # -------------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Return the model as a JSON-serialisable dict (see `save`).

        Example:
            >>> import numpy as np
            >>> m = AdaptiveFusion((0.0,), np.zeros((16, 1)), np.zeros(1), np.zeros(16),
            ...                    np.ones(16))
            >>> AdaptiveFusion.from_dict(m.to_dict()).alphas
            (0.0,)

        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "features": list(FEATURES),
            "alphas": list(self.alphas),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "method": self.method,
            "normalization": self.normalization,
            "rrf_k": self.rrf_k,
            "fetch_k": self.fetch_k,
            "l2": self.l2,
            "metric": self.metric,
            "n_train": self.n_train,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptiveFusion:
        """Rebuild a model from `to_dict` output.

        Raises:
            ValueError: If the dict is not an adaptive-fusion model of this version.

        Example:
            >>> AdaptiveFusion.from_dict({"format": "x"})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: not an adaptive fusion model: format is 'x', expected ...

        """
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"not an adaptive fusion model: format is {data.get('format')!r}, "
                f"expected {_FORMAT!r}"
            )
        if data.get("version") != _VERSION:
            raise ValueError(
                f"adaptive fusion model version {data.get('version')!r} is not supported "
                f"(this version reads {_VERSION})"
            )
        return cls(
            alphas=tuple(float(a) for a in data["alphas"]),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=np.asarray(data["intercept"], dtype=np.float64),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            method=str(data["method"]),
            normalization=str(data["normalization"]),
            rrf_k=data["rrf_k"],
            fetch_k=int(data["fetch_k"]),
            l2=float(data["l2"]),
            metric=str(data["metric"]),
            n_train=int(data["n_train"]),
            features=tuple(data["features"]),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON.

        Example:
            >>> import numpy as np, tempfile, os
            >>> m = AdaptiveFusion((0.5,), np.zeros((16, 1)), np.zeros(1), np.zeros(16),
            ...                    np.ones(16))
            >>> path = m.save(os.path.join(tempfile.mkdtemp(), "adaptive.json"))
            >>> AdaptiveFusion.load(path).alphas
            (0.5,)

        """
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> AdaptiveFusion:
        """Read a model written by `save`.

        Example:
            >>> AdaptiveFusion.load("/nonexistent/adaptive.json")
            Traceback (most recent call last):
            ...
            FileNotFoundError: adaptive fusion model not found: /nonexistent/adaptive.json

        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"adaptive fusion model not found: {source}")
        return cls.from_dict(json.loads(source.read_text(encoding="utf-8")))

    def as_retriever(self, retriever: FusionRetriever, **kwargs: Any) -> AdaptiveFusionRetriever:
        """Wrap the retrievers of ``retriever`` in an `AdaptiveFusionRetriever` using this model.

        Example:
            >>> import numpy as np
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
            >>> m = AdaptiveFusion((0.0, 1.0), np.zeros((16, 2)), np.array([1.0, 0.0]),
            ...                    np.zeros(16), np.ones(16))
            >>> docs = m.as_retriever(r, k=1).invoke("b")
            >>> docs[0].metadata["fusion"]["weights"]
            {'dense': 0.0, 'bm25': 1.0}

        """
        return AdaptiveFusionRetriever.from_retriever(retriever, self, **kwargs)


# ------------------------------------------------------------------------------------ retriever


class AdaptiveFusionRetriever(FusionRetriever):
    """A `FusionRetriever` whose alpha is chosen per query by an `AdaptiveFusion` model.

    The method, normalization, ``rrf_k`` and ``fetch_k`` default to the model's. An explicit
    ``alpha=`` or ``weights=`` in a call overrides the model for that call.

    Example:
        >>> import numpy as np
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["error E-217", "cold battery"],
        ...                                DeterministicFakeEmbedding(size=8))
        >>> model = AdaptiveFusion((0.0, 1.0), np.zeros((16, 2)), np.array([1.0, 0.0]),
        ...                        np.zeros(16), np.ones(16))
        >>> r = AdaptiveFusionRetriever.from_index(index, adaptive=model, k=1)
        >>> r.invoke("E-217")[0].page_content
        'error E-217'

    """

    adaptive: AdaptiveFusion

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("adaptive"), AdaptiveFusion):
            data = dict(data)
            for key, value in data["adaptive"].settings().items():
                data.setdefault(key, value)
        return data

    @model_validator(mode="after")
    def _two_sides(self) -> AdaptiveFusionRetriever:
        if len(self.sources) != 2:
            raise ValueError(
                f"AdaptiveFusionRetriever needs exactly two retrievers (vector, keyword); got "
                f"{len(self.sources)}"
            )
        return self

    @classmethod
    def from_retriever(
        cls, retriever: FusionRetriever, adaptive: AdaptiveFusion, **kwargs: Any
    ) -> AdaptiveFusionRetriever:
        """Wrap the retrievers of an existing `FusionRetriever` (its settings are kept).

        Example:
            >>> import numpy as np
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["x"], DeterministicFakeEmbedding(size=8), k=3)
            >>> m = AdaptiveFusion((0.5,), np.zeros((16, 1)), np.zeros(1), np.zeros(16),
            ...                    np.ones(16), method="rrf")
            >>> a = AdaptiveFusionRetriever.from_retriever(r, m)
            >>> a.k, a.method
            (3, 'rrf')

        """
        fields = retriever.model_dump(exclude={"sources", "index"})
        fields.update(adaptive.settings())
        fields.update(kwargs)
        fields.pop("weights", None)
        return cls(sources=retriever.sources, index=retriever.index, adaptive=adaptive, **fields)

    def choose_alpha(self, query: str, pool: CandidatePool) -> float:
        """Return the model's alpha for ``query`` (term statistics from the index when available).

        Example:
            >>> import numpy as np
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> r = FusionRetriever.from_texts(["x y"], DeterministicFakeEmbedding(size=8))
            >>> m = AdaptiveFusion((0.3, 0.7), np.zeros((16, 2)), np.array([0.0, 1.0]),
            ...                    np.zeros(16), np.ones(16))
            >>> a = m.as_retriever(r)
            >>> a.choose_alpha("x", a.gather("x"))
            0.7

        """
        stats = TermStats.from_index(self.index) if self.index is not None else None
        return self.adaptive.alpha_for(query, pool, stats)

    def _spec_for_pool(
        self,
        query: str,
        pool: CandidatePool,
        spec: FusionSpec,
        overrides: dict[str, Any],
    ) -> FusionSpec:
        if "alpha" in overrides or "weights" in overrides:  # an explicit choice wins
            return spec
        return self.fusion_spec(**{**overrides, "alpha": self.choose_alpha(query, pool)})


# ------------------------------------------------------------------------------------ training


def prepare_training(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    pools: PoolCache | None,
    show_progress: bool,
) -> tuple[PoolCache, Qrels, FusionRetriever]:
    """Check a two-retriever `FusionRetriever` and return the judged queries' pools and qrels."""
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(f"retriever must be a FusionRetriever, got {type(retriever).__name__}")
    if len(retriever.sources) != 2:
        raise ValueError(
            f"adaptive fusion needs exactly two retrievers (vector, keyword); this retriever "
            f"fuses {len(retriever.sources)}"
        )
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    if pools is None:
        pools = gather_pools(retriever, queries, prepared, show_progress=show_progress)
    else:
        pools = pools.subset(judged_queries(queries, prepared, stacklevel=4))
    return pools, prepared, retriever


def default_settings(retriever: FusionRetriever, fetch_k: int, cutoff: int) -> list[dict[str, Any]]:
    """Return `tune`'s default grid, expanded (the fixed settings adaptive alpha competes with)."""
    settings, _ = expand_grid(retriever, None, fetch_k, cutoff)
    return settings


def best_fixed_setting(
    retriever: FusionRetriever,
    cache: PoolCache,
    qrels: Qrels,
    metric: Metric,
    query_ids: Sequence[str],
) -> dict[str, Any]:
    """Return the best default-grid setting on ``query_ids`` (ties: first in grid order)."""
    settings = default_settings(retriever, cache.fetch_k, metric.k)
    scores = score_pools(retriever, cache.subset(query_ids), qrels, settings, metric, None, False)
    return dict(settings[best_index(scores.mean(axis=1))])


def alpha_scores(
    retriever: FusionRetriever,
    cache: PoolCache,
    qrels: Qrels,
    metric: Metric,
    setting: Mapping[str, Any],
    alphas: Sequence[float],
) -> NDArray[np.float64]:
    """``(n_queries, n_alphas)`` metric of each query at each alpha of ``setting``."""
    grid = {k: [v] for k, v in setting.items() if k not in ("alpha", "weights")}
    grid["alpha"] = list(alphas)
    settings, _ = expand_grid(retriever, grid, cache.fetch_k, metric.k)
    scores: NDArray[np.float64] = score_pools(
        retriever, cache, qrels, settings, metric, None, False
    )
    return np.ascontiguousarray(scores.T)


def feature_matrix(cache: PoolCache, fetch_k: int, stats: TermStats | None) -> NDArray[np.float64]:
    """Return the `FEATURES` of every cached query (one row each), pools cut to ``fetch_k``."""
    rows = [
        query_features(
            text, window(pool, fetch_k, complete_scoring=cache.complete_scoring), stats, fetch_k
        )
        for text, pool in zip(cache.texts, cache.pools, strict=True)
    ]
    out: NDArray[np.float64] = np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))
    return out
