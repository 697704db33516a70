"""Ranking metrics with the conventions of ``trec_eval`` (pytrec_eval).

A *run* maps each query id to what the system returned for it: a ranked list of document ids (best
first) or a ``{doc_id: score}`` dict (higher is better). *Qrels* map each query id to its judgments
``{doc_id: relevance}``.

Conventions (those of ``trec_eval``; the tests check the values against pytrec_eval):

- A document is relevant when its relevance is > 0; judgments <= 0 are non-relevant.
- nDCG uses linear gain (gain = relevance, as ``trec_eval``'s ``ndcg_cut``) and the discount
  ``1 / log2(rank + 1)``. The ideal DCG ranks *all* judged relevant documents of the query,
  including those the run did not retrieve.
- ``precision@k`` divides by ``k`` even when fewer than ``k`` documents were returned.
- ``mrr@k`` is the reciprocal rank of the first relevant document in the top ``k`` (0 if none);
  ``trec_eval``'s ``recip_rank`` is the same measure without the cut.
- A query whose judgments are all non-relevant scores 0 on every metric and counts in the mean.
  A query with an empty judgments dict has no judgments at all and is not evaluated.
- Score ties in ``{doc_id: score}`` runs are broken as ``trec_eval`` does: by document id,
  descending.
- A ranked list that repeats a document keeps its first occurrence only (later copies are dropped
  and the ranks closed up), so a run of chunks mapped to their parent document is well defined.
- Queries of the run without judgments are ignored.

One deliberate difference: a judged query that is missing from the run scores 0 on every metric
(as with ranx's ``make_comparable=True``); pytrec_eval silently leaves it out of its output, which
inflates the mean of a system that fails on hard queries.

`compute_metrics` is vectorised over queries. For repeated evaluation against the same
judgments (parameter tuning), build a `Qrels` once and pass it instead of the dict: the
relevant documents and ideal DCGs are then prepared once.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "METRIC_FORMS",
    "Metric",
    "MetricName",
    "Qrels",
    "QrelsLike",
    "Run",
    "compute_metrics",
    "hit_rate_at_k",
    "ideal_dcg",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "ndcg_from_gains",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
]

MetricName: TypeAlias = Literal["ndcg", "recall", "mrr", "precision", "hit_rate"]
"""Canonical metric names."""

Run: TypeAlias = Mapping[str, Mapping[str, float] | Sequence[str]]
"""``{query_id: [doc_id, ...]}`` best first, or ``{query_id: {doc_id: score}}``, higher wins."""

_ALIASES: dict[str, MetricName] = {
    "ndcg": "ndcg",
    "recall": "recall",
    "mrr": "mrr",
    "precision": "precision",
    "p": "precision",
    "hit_rate": "hit_rate",
    "hits": "hit_rate",
}

METRIC_FORMS = "ndcg@k, recall@k, mrr@k, precision@k (or p@k), hit_rate@k (or hits@k), with k >= 1"
"""Human-readable list of the metric names `parse_metric` accepts."""

_METRIC_RE = re.compile(r"^\s*([a-z_]+)\s*@\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Metric:
    """A parsed metric name: the measure and its cutoff.

    Attributes:
        name: Canonical measure name (``"ndcg"``, ``"recall"``, ``"mrr"``, ``"precision"``,
            ``"hit_rate"``).
        k: Rank cutoff, >= 1.

    Example:
        >>> Metric("ndcg", 10)
        Metric(name='ndcg', k=10)
        >>> str(Metric("precision", 5))
        'precision@5'

    """

    name: MetricName
    k: int

    def __str__(self) -> str:
        return f"{self.name}@{self.k}"


def parse_metric(name: str | Metric) -> Metric:
    """Parse a metric name such as ``"ndcg@10"`` (case-insensitive).

    Accepted forms: ``ndcg@k``, ``recall@k``, ``mrr@k``, ``precision@k`` or ``p@k``, ``hit_rate@k``
    or ``hits@k``.

    Args:
        name: The metric name, or an already parsed `Metric` (returned unchanged).

    Returns:
        The parsed `Metric`.

    Raises:
        TypeError: If ``name`` is not a string.
        ValueError: If ``name`` is not one of the accepted forms.

    Example:
        >>> parse_metric("nDCG@10")
        Metric(name='ndcg', k=10)
        >>> parse_metric("p@5")
        Metric(name='precision', k=5)

    """
    if isinstance(name, Metric):
        return name
    if not isinstance(name, str):
        msg = f"metric must be a string such as 'ndcg@10', got {type(name).__name__} {name!r}"
        raise TypeError(msg)
    match = _METRIC_RE.match(name)
    measure = _ALIASES.get(match.group(1).lower()) if match else None
    if match is None or measure is None:
        msg = f"unknown metric {name!r}; valid forms: {METRIC_FORMS}"
        raise ValueError(msg)
    k = int(match.group(2))
    if k < 1:
        msg = f"metric {name!r} has cutoff k={k}; k must be >= 1 (valid forms: {METRIC_FORMS})"
        raise ValueError(msg)
    return Metric(measure, k)


def _parse_metrics(metrics: str | Metric | Iterable[str | Metric]) -> list[tuple[str, Metric]]:
    """Parse ``metrics`` into ``(key, Metric)`` pairs, with the keys spelled as the caller did."""
    items = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    if not items:
        msg = f"metrics must name at least one metric ({METRIC_FORMS}), got an empty list"
        raise ValueError(msg)
    parsed: dict[str, Metric] = {}
    for item in items:
        metric = parse_metric(item)
        parsed[item.strip() if isinstance(item, str) else str(item)] = metric
    return list(parsed.items())


# --------------------------------------------------------------------------------------------------
# Judgments
# --------------------------------------------------------------------------------------------------


class Qrels:
    """Relevance judgments prepared for fast, repeated metric computation.

    Keeps, per query, the relevant documents with their gains and the sorted ideal gains; ideal DCGs
    are cached per cutoff. Queries with an empty judgments dict are left out (they have no
    judgments).

    Args:
        qrels: ``{query_id: {doc_id: relevance}}``; relevance is a real number, > 0 is relevant.

    Raises:
        TypeError: If ``qrels`` is not a mapping of mappings of numbers.

    Example:
        >>> qrels = Qrels({"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}, "q3": {}})
        >>> qrels.query_ids
        ('q1', 'q2')
        >>> qrels.num_relevant("q1")
        1
        >>> compute_metrics({"q1": ["d1"], "q2": ["d9", "d3"]}, qrels, ["mrr@10"])
        {'mrr@10': {'q1': 1.0, 'q2': 0.5}}

    """

    __slots__ = ("_gains", "_idcg_cache", "_ideal", "_index", "_judgments", "_num_rel", "query_ids")

    _judgments: dict[str, dict[str, float]]
    query_ids: tuple[str, ...]
    """Ids of the queries that have judgments, in input order."""

    def __init__(self, qrels: Qrels | Mapping[str, Mapping[str, float]]) -> None:
        if isinstance(qrels, Qrels):
            qrels = qrels._judgments
        if not isinstance(qrels, Mapping):
            msg = (
                "qrels must be a mapping {query_id: {doc_id: relevance}}, "
                f"got {type(qrels).__name__}"
            )
            raise TypeError(msg)
        judgments: dict[str, dict[str, float]] = {}
        gains: dict[str, dict[str, float]] = {}
        ideal: list[list[float]] = []
        for qid, docs in qrels.items():
            if not isinstance(docs, Mapping):
                msg = (
                    f"qrels[{qid!r}] must be a mapping {{doc_id: relevance}}, "
                    f"got {type(docs).__name__}"
                )
                raise TypeError(msg)
            if not docs:
                continue
            try:
                positive = {doc_id: float(rel) for doc_id, rel in docs.items() if rel > 0}
            except (TypeError, ValueError):
                doc_id, rel = next((d, r) for d, r in docs.items() if not _is_number(r))
                msg = (
                    f"qrels[{qid!r}][{doc_id!r}] must be a number (relevance), "
                    f"got {type(rel).__name__} {rel!r}"
                )
                raise TypeError(msg) from None
            judgments[qid] = dict(docs)
            gains[qid] = positive
            ideal.append(sorted(positive.values(), reverse=True))
        self._judgments = judgments
        self._gains = gains
        self.query_ids = tuple(gains)
        self._index = {qid: i for i, qid in enumerate(self.query_ids)}
        self._num_rel = np.fromiter(map(len, gains.values()), np.float64, len(gains))
        self._ideal = ideal
        self._idcg_cache: dict[int, NDArray[np.float64]] = {}

    def __len__(self) -> int:
        return len(self.query_ids)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._index

    def __repr__(self) -> str:
        n_rel = int(self._num_rel.sum())
        return f"Qrels({len(self)} queries, {n_rel} relevant judgments)"

    def num_relevant(self, query_id: str) -> int:
        """Count the relevant (relevance > 0) documents judged for ``query_id``.

        Example:
            >>> Qrels({"q": {"a": 1, "b": 2, "c": 0}}).num_relevant("q")
            2

        """
        return int(self._num_rel[self._index[query_id]])

    def relevant(self, query_id: str) -> dict[str, float]:
        """Return the relevant documents of ``query_id`` with their relevance (a copy).

        Example:
            >>> Qrels({"q": {"a": 1, "c": 0}}).relevant("q")
            {'a': 1.0}

        """
        return dict(self._gains[query_id])

    def to_dict(self) -> dict[str, dict[str, float]]:
        """All judgments, including the non-relevant ones, as ``{query_id: {doc_id: relevance}}``.

        Example:
            >>> Qrels({"q": {"a": 1, "c": 0}}).to_dict()
            {'q': {'a': 1, 'c': 0}}

        """
        return {qid: dict(docs) for qid, docs in self._judgments.items()}

    def subset(self, query_ids: Iterable[str]) -> Qrels:
        """Keep the judgments of the given queries only (unknown ids are ignored).

        Example:
            >>> Qrels({"q1": {"a": 1}, "q2": {"b": 1}}).subset(["q2", "q9"]).query_ids
            ('q2',)

        """
        return Qrels({q: self._judgments[q] for q in query_ids if q in self._index})

    def _idcg(self, k: int) -> NDArray[np.float64]:
        """Ideal DCG at cutoff ``k`` for every query, in `query_ids` order (cached)."""
        cached = self._idcg_cache.get(k)
        if cached is None:
            cached = np.fromiter(
                (ideal_dcg(gains, k) for gains in self._ideal), np.float64, len(self._ideal)
            )
            self._idcg_cache[k] = cached
        return cached


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


QrelsLike: TypeAlias = Qrels | Mapping[str, Mapping[str, float]]
"""Judgments as a `Qrels` or a plain ``{query_id: {doc_id: relevance}}`` mapping."""


def _as_qrels(qrels: QrelsLike) -> Qrels:
    return qrels if isinstance(qrels, Qrels) else Qrels(qrels)


_DISCOUNTS: NDArray[np.float64] = 1.0 / np.log2(np.arange(2, 1002, dtype=np.float64))


def _discounts(k: int) -> NDArray[np.float64]:
    """``1 / log2(rank + 1)`` for ranks 1..k."""
    global _DISCOUNTS
    if k > _DISCOUNTS.size:
        _DISCOUNTS = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    return _DISCOUNTS[:k]


# nDCG is computed here and only here: `ndcg_at_k`, `compute_metrics` and the tuner all call
# `ideal_dcg` and `ndcg_from_gains`.


def ideal_dcg(ideal_gains: Sequence[float], k: int) -> float:
    """DCG@k of the ideal ranking: ``ideal_gains`` (sorted best first) at ranks 1, 2, ...

    Example:
        >>> round(ideal_dcg([2.0, 1.0], k=10), 4)  # 2 / log2(2) + 1 / log2(3)
        2.6309

    """
    total: float = sum(map(operator.mul, ideal_gains[:k], _discounts(k).tolist()))
    return total


def ndcg_from_gains(
    gains: NDArray[np.float64], idcg: NDArray[np.float64] | float
) -> NDArray[np.float64]:
    """Return the nDCG of ranked lists given as ``(n_lists, k)`` gains, rank 1 first (0-padded).

    Args:
        gains: The gain of the document at each rank, one row per ranked list; the cutoff is
            the number of columns.
        idcg: The ideal DCG at that cutoff (`ideal_dcg`), one per row or one for all.

    Returns:
        DCG / ideal DCG per row; 0.0 where the ideal DCG is 0 (no relevant document).

    Example:
        >>> import numpy as np
        >>> ndcg_from_gains(np.array([[0.0, 1.0], [1.0, 0.0]]), ideal_dcg([1.0], 2)).round(4)
        array([0.6309, 1.    ])

    """
    dcg = gains @ _discounts(gains.shape[1])
    idcg_rows = np.broadcast_to(np.asarray(idcg, dtype=np.float64), dcg.shape)
    out: NDArray[np.float64] = np.divide(
        dcg, idcg_rows, out=np.zeros_like(dcg), where=idcg_rows > 0
    )
    return out


# --------------------------------------------------------------------------------------------------
# Rankings
# --------------------------------------------------------------------------------------------------

_BY_SCORE_THEN_ID = itemgetter(1, 0)


def _ranking(query_id: str, result: Mapping[str, float] | Sequence[str], depth: int) -> list[str]:
    """Return the top ``depth`` distinct document ids of one query's result, best first."""
    if isinstance(result, Mapping):
        # score descending, ties by document id descending: trec_eval's order
        items = result.items()
        if len(result) > depth:
            top = heapq.nlargest(depth, items, key=_BY_SCORE_THEN_ID)
        else:
            top = sorted(items, key=_BY_SCORE_THEN_ID, reverse=True)
        return [doc_id for doc_id, _ in top]
    if isinstance(result, str) or not isinstance(result, Sequence):
        msg = (
            f"run[{query_id!r}] must be a list of document ids (best first) or a "
            f"{{doc_id: score}} dict, got {type(result).__name__}"
        )
        raise TypeError(msg)
    head = list(result[:depth])
    if len(set(head)) == len(head):
        return head
    # repeated ids: keep each first occurrence and close up the ranks
    return list(itertools.islice(dict.fromkeys(result), depth))


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be an integer >= 1, got {k!r}"
        raise ValueError(msg)


def _single(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> list[float]:
    """Gains (relevance clipped at 0) of the top ``k`` distinct documents of ``ranked``."""
    _check_k(k)
    if isinstance(ranked, str) or not isinstance(ranked, Sequence):
        msg = f"ranked must be a list of document ids (best first), got {type(ranked).__name__}"
        raise TypeError(msg)
    top = list(dict.fromkeys(ranked))[:k]
    return [max(float(judgments.get(doc_id, 0)), 0.0) for doc_id in top]


# --------------------------------------------------------------------------------------------------
# One query
# --------------------------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    """Compute nDCG@k of one ranked list: linear gain, ``log2`` discount (``trec_eval``'s ndcg_cut).

    Args:
        ranked: Document ids, best first (repeated ids count once, at their first position).
        judgments: ``{doc_id: relevance}`` for this query; relevance <= 0 is non-relevant.
        k: Rank cutoff, >= 1.

    Returns:
        DCG@k divided by the ideal DCG@k over all judged relevant documents; 0.0 when the query has
        no relevant document.

    Example:
        >>> round(ndcg_at_k(["a", "b"], {"b": 1}, k=10), 4)  # (1 / log2(3)) / 1
        0.6309
        >>> ndcg_at_k(["b", "a"], {"a": 1, "b": 2}, k=10)
        1.0

    """
    gains = np.zeros((1, k))
    top = _single(ranked, judgments, k)
    gains[0, : len(top)] = top
    ideal = sorted((float(r) for r in judgments.values() if r > 0), reverse=True)
    return float(ndcg_from_gains(gains, ideal_dcg(ideal, k))[0])


def recall_at_k(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    """Fraction of the relevant documents found in the top ``k``.

    Args:
        ranked: Document ids, best first.
        judgments: ``{doc_id: relevance}``; relevance > 0 is relevant.
        k: Rank cutoff, >= 1.

    Returns:
        Relevant retrieved in the top ``k`` / all relevant; 0.0 when the query has no relevant
        document.

    Example:
        >>> recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 2, "d": 0}, k=2)
        0.3333333333333333

    """
    gains = _single(ranked, judgments, k)
    n_relevant = sum(1 for r in judgments.values() if r > 0)
    return sum(1 for g in gains if g > 0) / n_relevant if n_relevant else 0.0


def precision_at_k(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    """Relevant documents in the top ``k``, divided by ``k`` (even if fewer were returned).

    Args:
        ranked: Document ids, best first.
        judgments: ``{doc_id: relevance}``; relevance > 0 is relevant.
        k: Rank cutoff, >= 1.

    Returns:
        Precision at ``k``.

    Example:
        >>> precision_at_k(["a", "x"], {"a": 1}, k=5)
        0.2

    """
    return sum(1 for g in _single(ranked, judgments, k) if g > 0) / k


def mrr_at_k(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0.0 if there is none).

    Args:
        ranked: Document ids, best first.
        judgments: ``{doc_id: relevance}``; relevance > 0 is relevant.
        k: Rank cutoff, >= 1.

    Returns:
        ``1 / rank`` of the first relevant document, or 0.0.

    Example:
        >>> mrr_at_k(["x", "y", "a"], {"a": 1, "x": 0}, k=10)
        0.3333333333333333
        >>> mrr_at_k(["x", "y", "a"], {"a": 1}, k=2)
        0.0

    """
    for rank, gain in enumerate(_single(ranked, judgments, k), start=1):
        if gain > 0:
            return 1.0 / rank
    return 0.0


def hit_rate_at_k(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    """1.0 if a relevant document is in the top ``k``, else 0.0 (averaged over queries: hit rate).

    Args:
        ranked: Document ids, best first.
        judgments: ``{doc_id: relevance}``; relevance > 0 is relevant.
        k: Rank cutoff, >= 1.

    Returns:
        1.0 or 0.0.

    Example:
        >>> hit_rate_at_k(["x", "a"], {"a": 2}, k=2), hit_rate_at_k(["x", "a"], {"a": 2}, k=1)
        (1.0, 0.0)

    """
    return 1.0 if any(g > 0 for g in _single(ranked, judgments, k)) else 0.0


# --------------------------------------------------------------------------------------------------
# Many queries
# --------------------------------------------------------------------------------------------------


def _gain_matrix(run: Run, qrels: Qrels, depth: int) -> NDArray[np.float64]:
    """Return the ``(n_queries, depth)`` gains of the run's top documents, 0-padded, qrels order.

    Ranked lists are looked up directly. ``{doc_id: score}`` results are ranked all at once: the
    scores and gains of every query go into flat arrays sorted by (query, score descending). Only a
    query with tied scores *and* different gains among the tied documents depends on trec_eval's
    tie rule (document id descending); those few are ranked one by one.
    """
    gains = np.zeros((len(qrels), depth))
    list_rows: list[int] = []
    list_flat: list[float] = []
    zeros = [0.0] * depth
    dict_rows: list[int] = []
    dict_lengths: list[int] = []
    dict_scores: list[float] = []
    dict_gains: list[float] = []
    for row, qid in enumerate(qrels.query_ids):
        result = run.get(qid)
        if not result:
            continue
        get = qrels._gains[qid].get
        if isinstance(result, Mapping):
            dict_rows.append(row)
            dict_lengths.append(len(result))
            dict_scores += result.values()
            dict_gains += map(get, result, itertools.repeat(0.0))
        else:
            ranked = _ranking(qid, result, depth)
            list_rows.append(row)
            list_flat += map(get, ranked, zeros)
            list_flat += zeros[len(ranked) :]
    if list_rows:
        gains[list_rows] = np.array(list_flat, dtype=np.float64).reshape(len(list_rows), depth)
    if dict_rows:
        lengths = np.array(dict_lengths)
        owner = np.repeat(np.arange(lengths.size), lengths)
        scores = np.array(dict_scores, dtype=np.float64)
        # order by (query, score descending): rank the scores globally, then sort by an integer key
        # (3x faster than np.lexsort); the order among equal scores is settled below
        score_rank = np.empty(scores.size, dtype=np.int64)
        score_rank[np.argsort(-scores)] = np.arange(scores.size)
        order = np.argsort(owner * scores.size + score_rank)
        owner, scores, flat_gains = owner[order], scores[order], np.array(dict_gains)[order]
        rank = np.arange(order.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        top = rank < depth
        rows = np.array(dict_rows)
        gains[rows[owner[top]], rank[top]] = flat_gains[top]
        tie_matters = (
            (owner[1:] == owner[:-1])
            & (scores[1:] == scores[:-1])
            & (flat_gains[1:] != flat_gains[:-1])
        )
        for tied in np.unique(owner[1:][tie_matters]).tolist():
            row = dict_rows[tied]
            qid = qrels.query_ids[row]
            get = qrels._gains[qid].get
            ranked = _ranking(qid, run[qid], depth)
            gains[row] = 0.0
            gains[row, : len(ranked)] = list(map(get, ranked, zeros))
    return gains


def compute_metrics(
    run: Run,
    qrels: QrelsLike,
    metrics: str | Metric | Iterable[str | Metric] = ("ndcg@10", "recall@100"),
) -> dict[str, dict[str, float]]:
    """Compute ranking metrics for every judged query of ``qrels``.

    See the module docstring for the exact conventions (``trec_eval``'s, except that a judged query
    missing from the run scores 0 instead of being dropped).

    Args:
        run: ``{query_id: [doc_id, ...]}`` best first, or ``{query_id: {doc_id: score}}`` (higher is
            better; ties broken by document id, descending, as ``trec_eval`` does).
        qrels: Judgments ``{query_id: {doc_id: relevance}}`` or a prepared `Qrels` (faster
            when the same judgments are used many times).
        metrics: Metric names such as ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``, ``"p@5"``,
            ``"hits@10"`` (see `parse_metric`); a single name is accepted too.

    Returns:
        ``{metric: {query_id: value}}`` with the metric keys spelled as given and the query ids in
        qrels order.

    Raises:
        ValueError: If a metric name is unknown, ``metrics`` is empty or ``qrels`` has no judged
            query.
        TypeError: If ``run`` or ``qrels`` has the wrong shape.

    Example:
        >>> run = {"q1": ["d1", "d2", "d3"], "q2": {"d4": 0.9, "d5": 0.2}}
        >>> qrels = {"q1": {"d3": 1}, "q2": {"d4": 2, "d6": 1}}
        >>> scores = compute_metrics(run, qrels, ["mrr@10", "recall@1", "p@2"])
        >>> scores["mrr@10"]
        {'q1': 0.3333333333333333, 'q2': 1.0}
        >>> scores["recall@1"], scores["p@2"]
        ({'q1': 0.0, 'q2': 0.5}, {'q1': 0.0, 'q2': 0.5})
        >>> mean(scores)["mrr@10"]
        0.6666666666666666

    """
    arrays = _metric_arrays(run, qrels, metrics)
    query_ids = _as_qrels(qrels).query_ids
    return {
        name: dict(zip(query_ids, values.tolist(), strict=True)) for name, values in arrays.items()
    }


def _metric_arrays(
    run: Run,
    qrels: QrelsLike,
    metrics: str | Metric | Iterable[str | Metric],
) -> dict[str, NDArray[np.float64]]:
    """Compute like `compute_metrics`, one array per metric in ``Qrels.query_ids`` order."""
    parsed = _parse_metrics(metrics)
    if not isinstance(run, Mapping):
        msg = (
            "run must be a mapping {query_id: ranked doc ids or {doc_id: score}}, "
            f"got {type(run).__name__}"
        )
        raise TypeError(msg)
    prepared = _as_qrels(qrels)
    if not len(prepared):
        msg = (
            "qrels has no judged query; pass {query_id: {doc_id: relevance}} with at least one "
            "judgment"
        )
        raise ValueError(msg)
    depth = max(metric.k for _, metric in parsed)
    gains = _gain_matrix(run, prepared, depth)
    relevant = gains > 0
    hits_cum = np.cumsum(relevant, axis=1, dtype=np.float64)
    num_rel = prepared._num_rel
    has_rel = num_rel > 0
    safe_num_rel = np.where(has_rel, num_rel, 1.0)

    out: dict[str, NDArray[np.float64]] = {}
    for key, metric in parsed:
        k = metric.k
        hits = hits_cum[:, k - 1]
        if metric.name == "ndcg":
            value = ndcg_from_gains(gains[:, :k], prepared._idcg(k))
        elif metric.name == "recall":
            value = np.where(has_rel, hits / safe_num_rel, 0.0)
        elif metric.name == "precision":
            value = hits / k
        elif metric.name == "hit_rate":
            value = (hits > 0).astype(np.float64)
        else:  # mrr
            first = np.argmax(relevant[:, :k], axis=1)
            value = np.where(hits > 0, 1.0 / (first + 1.0), 0.0)
        out[key] = value
    return out


def mean(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Average per-query values into one number per metric (the usual "mean over queries").

    Args:
        results: ``{metric: {query_id: value}}``, as returned by `compute_metrics`.

    Returns:
        ``{metric: mean value}``.

    Raises:
        ValueError: If a metric has no query values.

    Example:
        >>> mean({"ndcg@10": {"q1": 1.0, "q2": 0.5}, "recall@100": {"q1": 1.0, "q2": 0.0}})
        {'ndcg@10': 0.75, 'recall@100': 0.5}

    """
    means: dict[str, float] = {}
    for name, per_query in results.items():
        if not per_query:
            msg = f"results[{name!r}] has no query values; cannot average zero queries"
            raise ValueError(msg)
        means[name] = math.fsum(per_query.values()) / len(per_query)
    return means
