"""Scoring fusion settings on cached pools: every setting fused by `fuse_many`, then measured.

Each query's pool is cut to every ``fetch_k`` of the settings once (`window`); the settings of
one window are fused together (`fuse_many`: specs differing only in weights share one
normalization), and the metric is computed on the fused orders with the conventions of
`compute_metrics` (nDCG from `ndcg_from_gains`, the one implementation).

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_fusion.tuning import gather_pools
    >>> r = FusionRetriever.from_texts(["cold battery", "warm car"],
    ...     DeterministicFakeEmbedding(size=8), ids=["1", "2"])
    >>> cache = gather_pools(r, {"q": "battery"}, show_progress=False)
    >>> score_settings(r, cache, {"q": {"1": 1}}, [{"alpha": 0.0}, {"alpha": 1.0}]).shape
    (2, 1)

"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.evaluation.checks import examples
from langchain_fusion.evaluation.metrics import (
    Metric,
    Qrels,
    QrelsLike,
    ideal_dcg,
    ndcg_from_gains,
    parse_metric,
)
from langchain_fusion.fusion import GRID_KEYS, SpecBatch, fuse_many
from langchain_fusion.retriever import CandidatePool, FusionRetriever
from langchain_fusion.tuning.grid import expand_grid
from langchain_fusion.tuning.pools import PoolCache, window

__all__ = ["score_pools", "score_settings"]


@dataclass
class _QueryData:
    """One query's pool, windowed per fetch_k, with candidate gains (internal)."""

    gains: dict[int, NDArray[np.float64]]
    windows: dict[int, CandidatePool]
    idcg: float
    n_relevant: int
    duplicates: dict[int, list[str]]


def _candidate_ids(pool: CandidatePool, id_key: str | None) -> list[str | None]:
    out: list[str | None] = []
    for j, key in enumerate(pool.keys):
        if id_key is None and key.startswith("id:"):
            out.append(key[3:])
            continue
        doc = pool.document(j)
        if id_key is None:
            if not doc.id:
                raise ValueError(
                    f"candidate {doc.page_content[:40]!r} has no id (Document.id is {doc.id!r}); "
                    "set Document.id on the indexed documents or pass id_key='<metadata field>'"
                )
            out.append(doc.id)
        else:
            value = doc.metadata.get(id_key)
            out.append(None if value is None else str(value))
    return out


def _prepare(
    cache: PoolCache,
    qrels: Qrels,
    fetch_ks: Iterable[int],
    depth: int,
    id_key: str | None,
) -> list[_QueryData]:
    data: list[_QueryData] = []
    for qid, pool in zip(cache.query_ids, cache.pools, strict=True):
        relevant = qrels.relevant(qid)
        gains: dict[int, NDArray[np.float64]] = {}
        windows: dict[int, CandidatePool] = {}
        dups: dict[int, list[str]] = {}
        for fk in sorted(set(fetch_ks)):
            w = window(pool, max(fk, depth), complete_scoring=cache.complete_scoring)
            ids = _candidate_ids(w, id_key)
            windows[fk] = w
            gains[fk] = np.array([relevant.get(d, 0.0) if d else 0.0 for d in ids], np.float64)
            if len(set(ids)) < len(ids) or None in ids:
                dups[fk] = [d if d is not None else f"\0{j}" for j, d in enumerate(ids)]
        idcg = ideal_dcg(sorted(relevant.values(), reverse=True), depth)
        data.append(_QueryData(gains, windows, idcg, len(relevant), dups))
    return data


def _metric_values(top_gains: NDArray[np.float64], q: _QueryData, metric: Metric) -> NDArray[Any]:
    """Metric of each row of ``top_gains`` (rows = settings, columns = ranks 1..depth)."""
    k = metric.k
    g: NDArray[np.float64] = top_gains[:, :k]
    if g.shape[1] < k:
        g = np.pad(g, ((0, 0), (0, k - g.shape[1])))
    rel: NDArray[np.bool_] = g > 0
    hits: NDArray[np.float64] = rel.sum(axis=1).astype(np.float64)
    if metric.name == "ndcg":
        return ndcg_from_gains(g, q.idcg)
    if metric.name == "recall":
        return hits / float(q.n_relevant) if q.n_relevant else np.zeros(g.shape[0])
    if metric.name == "precision":
        return hits / k
    if metric.name == "hit_rate":
        return (hits > 0).astype(np.float64)
    first = np.argmax(rel, axis=1)
    return np.where(hits > 0, 1.0 / (first + 1.0), 0.0)


def score_settings(
    retriever: FusionRetriever,
    cache: PoolCache,
    qrels: QrelsLike,
    settings: Sequence[Mapping[str, Any]],
    *,
    metric: str | Metric = "ndcg@10",
    id_key: str | None = None,
    show_progress: bool = False,
) -> NDArray[np.float64]:
    """Score fusion settings on cached pools: ``(n_settings, n_queries)`` metric values.

    Each setting is a dict of ``method`` (``"convex"``/``"rrf"``), ``alpha`` or ``weights``,
    ``normalization`` (convex), ``rrf_k`` (RRF) and ``fetch_k`` (at most the cache's); missing
    keys take the retriever's values.

    Args:
        retriever: The retriever the pools were gathered with.
        cache: Pools from `gather_pools`.
        qrels: Judgments of the cached queries.
        settings: The settings to score.
        metric: The metric, e.g. ``"ndcg@10"`` (see `parse_metric`).
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        show_progress: Show a progress bar over queries.

    Returns:
        Metric values, one row per setting, one column per query of ``cache``.

    Raises:
        ValueError: On an unknown metric or an invalid setting.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion.tuning import gather_pools
        >>> r = FusionRetriever.from_texts(["cold battery", "warm car"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2"])
        >>> cache = gather_pools(r, {"q": "battery"}, show_progress=False)
        >>> score_settings(r, cache, {"q": {"1": 1}}, [{"alpha": 0.0}], metric="mrr@10")
        array([[1.]])

    """
    parsed = parse_metric(metric)
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    missing = [q for q in cache.query_ids if q not in prepared]
    if missing:
        raise ValueError(f"{len(missing)} cached queries have no judgments ({examples(missing)})")
    resolved: list[dict[str, Any]] = []
    for s in settings:
        unknown = [k for k in s if k not in GRID_KEYS]
        if unknown:
            raise ValueError(
                f"setting has unknown key(s) {unknown}; valid keys are {list(GRID_KEYS)}"
            )
        grid = {k: [v] for k, v in s.items()}
        grid.setdefault("fetch_k", [cache.fetch_k])
        expanded, _ = expand_grid(retriever, grid, cache.fetch_k, parsed.k)
        resolved.append(expanded[0])
    return score_pools(retriever, cache, prepared, resolved, parsed, id_key, show_progress)


def score_pools(
    retriever: FusionRetriever,
    cache: PoolCache,
    qrels: Qrels,
    settings: Sequence[Mapping[str, Any]],
    metric: Metric,
    id_key: str | None,
    show_progress: bool,
) -> NDArray[np.float64]:
    """Score resolved settings (from `expand_grid`) on cached pools; see `score_settings`."""
    depth = metric.k
    fetch_ks = {int(s["fetch_k"]) for s in settings}
    data = _prepare(cache, qrels, fetch_ks, depth, id_key)
    if data and not any(g.any() for q in data for g in q.gains.values()):
        keys = (k for p in cache.pools for k in p.keys)
        judged = (d for q in cache.query_ids for d in qrels.relevant(q))
        warnings.warn(
            "none of the candidate document ids appears in qrels (candidates e.g. "
            f"{examples(keys)}; judged relevant e.g. {examples(judged)}); "
            "check that Document.id (or metadata[id_key]) holds the corpus ids",
            UserWarning,
            stacklevel=3,
        )
    # one batch of specs per fetch_k window; fuse_many fuses specs differing only in weights
    # (an alpha sweep) in one pass
    by_window: dict[int, list[int]] = {}
    for i, s in enumerate(settings):
        by_window.setdefault(int(s["fetch_k"]), []).append(i)
    n_src = len(retriever.sources)
    batches = {
        fk: (
            np.array(rows),
            SpecBatch.of([retriever.fusion_spec(**settings[r]) for r in rows], n_src),
        )
        for fk, rows in by_window.items()
    }
    out = np.zeros((len(settings), len(data)))
    from tqdm.auto import tqdm

    for col, q in enumerate(tqdm(data, desc="Tuning", unit="query", disable=not show_progress)):
        for fk, (rows, batch) in batches.items():
            pool = q.windows[fk]
            if len(pool) == 0:
                continue
            top = _top_gains(fuse_many(pool, batch), q, fk, depth)
            out[rows, col] = _metric_values(top, q, metric)
    return out


def _top_gains(orders: NDArray[np.intp], q: _QueryData, fk: int, depth: int) -> NDArray[np.float64]:
    """Gains of the first ``depth`` documents of each order (a document counts once)."""
    gains = q.gains[fk]
    if fk not in q.duplicates:
        top: NDArray[np.float64] = gains[orders[:, :depth]]
        return top
    ids = q.duplicates[fk]  # several candidates map to one document: the first one counts
    top = np.zeros((orders.shape[0], depth))
    for r, order in enumerate(orders):
        seen: set[str] = set()
        picked: list[int] = []
        for j in order.tolist():
            if ids[j] not in seen:
                seen.add(ids[j])
                picked.append(j)
        g = gains[picked[:depth]]
        top[r, : g.size] = g
    return top
